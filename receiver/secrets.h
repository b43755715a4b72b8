/*
 * Receiver secrets: parsing the stock MS_WebHookReceiverSecret_Custom
 * format, and the per-id HMAC keys built from it.
 */
#ifndef WHR_RECEIVER_SECRETS_H
#define WHR_RECEIVER_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#define SECRET_MIN_CHARS 32
#define SECRET_MAX_CHARS 128
/* The longest id, in bytes (percent-decoded in a URL). */
#define RECEIVER_ID_MAX 256

/* One `id=secret` entry as configured; the id is lowercased, "" for the
 * default receiver. */
struct secret_entry {
	char *id;
	char *secret;
	size_t secret_len;
};

struct secret_list {
	struct secret_entry *entries;
	size_t n;
};

/*
 * Parse @p text in the stock format: entries separated by commas (and by
 * newlines when @p newlines_separate), each `secret` or `id=secret`, parts
 * trimmed and empty parts dropped, 32 to 128 code points per secret, no id
 * twice. @p source names the setting in error messages ("entry 2 (id
 * 'tenant2') of MS_WebHookReceiverSecret_Custom: ..."), which never
 * contain a secret. Returns 0 or -EINVAL (logged), -ENOMEM.
 */
int secret_list_parse(const char *text, bool newlines_separate,
		      const char *source, struct secret_list *out);

/* Free the entries, wiping the secrets first. A zeroed list is a no-op. */
void secret_list_finish(struct secret_list *list);

/* Read a whole secrets file into a NUL-terminated string; the caller
 * wipes and frees it. Returns 0 or a negative errno (logged). */
int secret_file_read(const char *path, char **text);

/* Read and parse the secrets file @p path (newlines separate entries
 * too); a file without a secret is refused unless @p may_be_empty (a
 * previous secrets file between two rotations). Messages name the file.
 * Returns 0, -EINVAL (logged) or -ENOMEM. */
int secret_list_load(const char *path, bool may_be_empty,
		     struct secret_list *out);

/* The keys of one receiver id, set up once: HMAC contexts with the key
 * loaded, re-initialised per request without re-hashing the key. */
struct receiver_keys {
	char *id;
	EVP_MAC_CTX *current;
	EVP_MAC_CTX *previous;	/* NULL without a previous secret */
};

struct secret_store;

/* Build the keys; every id of @p previous must be one of @p current.
 * Returns NULL (logged) on error. */
struct secret_store *secret_store_new(const struct secret_list *current,
				      const struct secret_list *previous,
				      const char *previous_source);
void secret_store_free(struct secret_store *store);

/* Find an id (compared case-insensitively); NULL when it has no secret. */
const struct receiver_keys *secret_store_find(const struct secret_store *store,
					      const char *id, size_t id_len);
size_t secret_store_count(const struct secret_store *store);
/* How many ids have a previous secret too. */
size_t secret_store_count_previous(const struct secret_store *store);

#endif /* WHR_RECEIVER_SECRETS_H */
