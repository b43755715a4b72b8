/*
 * Receiver secrets, in the format of ASP.NET WebHooks'
 * MS_WebHookReceiverSecret_Custom setting (docs: PROTOCOL.md §3), and the
 * HMAC keys built from them once at start-up.
 *
 * Error messages name an entry by its position and id, never by its
 * secret. The HMAC contexts are used by one thread at a time: the event
 * loop, which verifies every request.
 */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "log.h"
#include "util.h"

#define SECRETS_FILE_MAX_BYTES (1024 * 1024)

struct secret_store {
	struct receiver_keys *keys;
	size_t n;
	EVP_MAC *mac;
};

/* An id that could be a secret put in the wrong place (long enough, or
 * holding spaces or control characters) is not printed. */
static bool
id_printable(const char *id)
{
	const char *p;

	if (strlen(id) >= SECRET_MIN_CHARS)
		return false;
	for (p = id; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	}
	return true;
}

/* Describe an entry for an error message: position, then id. */
static void
entry_name(char *buf, size_t size, size_t position, const char *id)
{
	if (id == NULL || *id == '\0')
		snprintf(buf, size, "entry %zu (default id)", position);
	else if (!id_printable(id))
		snprintf(buf, size,
			 "entry %zu (an id of %zu bytes, not shown in case it is a secret)",
			 position, strlen(id));
	else
		snprintf(buf, size, "entry %zu (id '%s')", position, id);
}

void
secret_list_finish(struct secret_list *list)
{
	size_t i;

	for (i = 0; i < list->n; i++) {
		free(list->entries[i].id);
		if (list->entries[i].secret != NULL) {
			OPENSSL_cleanse(list->entries[i].secret,
					list->entries[i].secret_len);
			free(list->entries[i].secret);
		}
	}
	free(list->entries);
	list->entries = NULL;
	list->n = 0;
}

/* Split [s, s + len) on '=', trimming parts and dropping empty ones, as
 * .NET's Split + Trim + RemoveEmptyEntries does. Fills up to 3 spans and
 * returns how many parts there are (3 meaning "three or more"). */
static size_t
split_entry(const char *s, size_t len, const char *part[3], size_t plen[3])
{
	size_t n = 0;
	size_t i = 0;

	while (i <= len) {
		size_t j = i;
		const char *p;
		size_t pl;

		while (j < len && s[j] != '=')
			j++;
		p = s + i;
		pl = j - i;
		trim_span(&p, &pl);
		if (pl > 0) {
			if (n < 3) {
				part[n] = p;
				plen[n] = pl;
			}
			n++;
		}
		i = j + 1;
	}
	return n > 3 ? 3 : n;
}

static int
add_entry(struct secret_list *out, size_t position, const char *source,
	  const char *id, size_t id_len, const char *secret,
	  size_t secret_len)
{
	struct secret_entry *grown;
	char name[128];
	char *id_copy;
	long chars;
	size_t i;

	id_copy = xstrndup(id, id_len);
	if (id_copy == NULL)
		return -ENOMEM;
	ascii_lowercase(id_copy);
	entry_name(name, sizeof(name), position, id_copy);

	/* A longer one could never be reached: the front refuses it. */
	if (id_len > RECEIVER_ID_MAX) {
		whr_log(WHR_LOG_ERROR,
			"%s: %s: the id has %zu bytes; it may have at most %d",
			source, name, id_len, RECEIVER_ID_MAX);
		goto err_invalid;
	}

	chars = utf8_code_points(secret, secret_len);
	if (chars < 0) {
		whr_log(WHR_LOG_ERROR, "%s: %s: the secret is not valid UTF-8",
			source, name);
		goto err_invalid;
	}
	if (chars < SECRET_MIN_CHARS || chars > SECRET_MAX_CHARS) {
		whr_log(WHR_LOG_ERROR,
			"%s: %s: the secret has %ld characters; it must have %d to %d",
			source, name, chars, SECRET_MIN_CHARS,
			SECRET_MAX_CHARS);
		goto err_invalid;
	}
	for (i = 0; i < out->n; i++) {
		if (strcmp(out->entries[i].id, id_copy) == 0) {
			whr_log(WHR_LOG_ERROR,
				"%s: %s: the id is configured twice (ids are not case-sensitive)",
				source, name);
			goto err_invalid;
		}
	}

	grown = realloc(out->entries, (out->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(id_copy);
		return -ENOMEM;
	}
	out->entries = grown;
	out->entries[out->n].id = id_copy;
	out->entries[out->n].secret = xstrndup(secret, secret_len);
	out->entries[out->n].secret_len = secret_len;
	if (out->entries[out->n].secret == NULL) {
		free(id_copy);
		return -ENOMEM;
	}
	out->n++;
	return 0;

err_invalid:
	free(id_copy);
	return -EINVAL;
}

int
secret_list_parse(const char *text, bool newlines_separate,
		  const char *source, struct secret_list *out)
{
	struct secret_list list = { 0 };
	size_t position = 0;
	const char *s = text;
	int rc;

	while (*s != '\0') {
		const char *part[3];
		size_t plen[3];
		const char *entry = s;
		size_t len;
		size_t n;

		while (*s != '\0' && *s != ',' &&
		       !(newlines_separate && (*s == '\n' || *s == '\r')))
			s++;
		len = (size_t)(s - entry);
		if (*s != '\0')
			s++;
		trim_span(&entry, &len);
		if (len == 0)
			continue;	/* empty entries are dropped */
		position++;

		n = split_entry(entry, len, part, plen);
		if (n == 0) {
			whr_log(WHR_LOG_ERROR,
				"%s: entry %zu has neither an id nor a secret",
				source, position);
			rc = -EINVAL;
			goto err;
		}
		if (n == 3) {
			char name[128];
			char *id = xstrndup(part[0], plen[0]);

			if (id == NULL) {
				rc = -ENOMEM;
				goto err;
			}
			entry_name(name, sizeof(name), position, id);
			free(id);
			whr_log(WHR_LOG_ERROR,
				"%s: %s has more than one '='; write it as id=secret",
				source, name);
			rc = -EINVAL;
			goto err;
		}
		if (n == 1)
			rc = add_entry(&list, position, source, "", 0, part[0],
				       plen[0]);
		else
			rc = add_entry(&list, position, source, part[0],
				       plen[0], part[1], plen[1]);
		if (rc < 0)
			goto err;
	}
	*out = list;
	return 0;

err:
	secret_list_finish(&list);
	return rc;
}

int
secret_file_read(const char *path, char **text)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd;
	int rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		whr_log_errno(WHR_LOG_ERROR, "cannot open secrets file %s",
			      path);
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		whr_log_errno(WHR_LOG_ERROR, "cannot stat secrets file %s",
			      path);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > SECRETS_FILE_MAX_BYTES) {
		whr_log(WHR_LOG_ERROR,
			"secrets file %s is not a regular file of at most %d bytes",
			path, SECRETS_FILE_MAX_BYTES);
		rc = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			whr_log_errno(WHR_LOG_ERROR,
				      "cannot read secrets file %s", path);
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		whr_log(WHR_LOG_ERROR, "secrets file %s contains a NUL byte",
			path);
		rc = -EINVAL;
		goto out;
	}
	*text = buf;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	close(fd);
	return rc;
}

int
secret_list_load(const char *path, bool may_be_empty,
		 struct secret_list *out)
{
	char source[PATH_MAX + 32];
	struct secret_list parsed = { 0 };
	char *text = NULL;
	int rc;

	rc = secret_file_read(path, &text);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EINVAL;
	snprintf(source, sizeof(source), "secrets file %s", path);
	rc = secret_list_parse(text, true, source, &parsed);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	if (rc < 0)
		return rc;
	if (parsed.n == 0 && !may_be_empty) {
		whr_log(WHR_LOG_ERROR, "%s: the file holds no secret", source);
		return -EINVAL;
	}
	*out = parsed;
	return 0;
}

static EVP_MAC_CTX *
mac_context_new(EVP_MAC *mac, const char *secret, size_t len)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);

	if (ctx == NULL)
		return NULL;
	/* The key is the secret's UTF-8 bytes, untouched (PROTOCOL.md §1). */
	if (!EVP_MAC_init(ctx, (const unsigned char *)secret, len, params)) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void
secret_store_free(struct secret_store *store)
{
	size_t i;

	if (store == NULL)
		return;
	for (i = 0; i < store->n; i++) {
		free(store->keys[i].id);
		EVP_MAC_CTX_free(store->keys[i].current);
		EVP_MAC_CTX_free(store->keys[i].previous);
	}
	free(store->keys);
	EVP_MAC_free(store->mac);
	free(store);
}

struct secret_store *
secret_store_new(const struct secret_list *current,
		 const struct secret_list *previous,
		 const char *previous_source)
{
	struct secret_store *store;
	size_t i;

	store = calloc(1, sizeof(*store));
	if (store == NULL)
		return NULL;
	store->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	store->keys = calloc(current->n ? current->n : 1, sizeof(*store->keys));
	if (store->mac == NULL || store->keys == NULL)
		goto err_crypto;

	for (i = 0; i < current->n; i++) {
		struct receiver_keys *k = &store->keys[i];

		k->id = strdup(current->entries[i].id);
		k->current = mac_context_new(store->mac,
					     current->entries[i].secret,
					     current->entries[i].secret_len);
		store->n++;
		if (k->id == NULL || k->current == NULL)
			goto err_crypto;
	}
	for (i = 0; i < previous->n; i++) {
		const struct secret_entry *e = &previous->entries[i];
		struct receiver_keys *k = (struct receiver_keys *)
			secret_store_find(store, e->id, strlen(e->id));
		char name[128];

		if (k == NULL) {
			entry_name(name, sizeof(name), i + 1, e->id);
			whr_log(WHR_LOG_ERROR,
				"%s: %s: no current secret is configured for this id",
				previous_source, name);
			goto err;
		}
		k->previous = mac_context_new(store->mac, e->secret,
					      e->secret_len);
		if (k->previous == NULL)
			goto err_crypto;
	}
	return store;

err_crypto:
	whr_log(WHR_LOG_ERROR, "cannot set up HMAC-SHA256 keys (OpenSSL)");
err:
	secret_store_free(store);
	return NULL;
}

const struct receiver_keys *
secret_store_find(const struct secret_store *store, const char *id,
		  size_t id_len)
{
	size_t i;

	for (i = 0; i < store->n; i++) {
		const char *kid = store->keys[i].id;

		if (ascii_equal_nocase_n(kid, strlen(kid), id, id_len))
			return &store->keys[i];
	}
	return NULL;
}

size_t
secret_store_count(const struct secret_store *store)
{
	return store->n;
}

size_t
secret_store_count_previous(const struct secret_store *store)
{
	size_t i, n = 0;

	for (i = 0; i < store->n; i++)
		n += store->keys[i].previous != NULL;
	return n;
}
