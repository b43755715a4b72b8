/*
 * secret_list_parse() in both modes (commas only, as for the variable;
 * commas and newlines, as for a file). A list it accepts must be sound:
 * ids lowercase, unique and trimmed; secrets trimmed, valid UTF-8 of 32
 * to 128 code points, free of separators. Without newlines in the text,
 * both modes must agree. An accepted list must also build a secret store
 * whose keys verify a MAC made with each secret.
 */
#include "fuzz-common.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "secrets.h"
#include "signature.h"

/* Code points of valid UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF); -1 for anything else. Written apart from
 * utf8_code_points() so that the check is not the code under test. */
static long
code_points(const unsigned char *s, size_t len)
{
	long count = 0;
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		unsigned cp;
		unsigned min;
		size_t n;
		size_t k;

		if (c < 0x80) {
			n = 0, cp = c, min = 0;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return -1;
		}
		if (n > len - i - 1)
			return -1;	/* cut short */
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += n + 1;
		count++;
	}
	return count;
}

static void
check_list(const struct secret_list *list, bool newlines_separate)
{
	size_t i;
	size_t j;

	for (i = 0; i < list->n; i++) {
		const struct secret_entry *e = &list->entries[i];
		size_t id_len = strlen(e->id);
		long chars;
		const char *p;

		for (p = e->id; *p != '\0'; p++)
			FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z') && *p != ',' &&
				   *p != '=');
		if (id_len > 0)
			FUZZ_CHECK(!fuzz_is_space(e->id[0]) &&
				   !fuzz_is_space(e->id[id_len - 1]));
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(list->entries[j].id, e->id) != 0);

		FUZZ_CHECK(e->secret != NULL &&
			   strlen(e->secret) == e->secret_len);
		FUZZ_CHECK(e->secret_len > 0 && !fuzz_is_space(e->secret[0]) &&
			   !fuzz_is_space(e->secret[e->secret_len - 1]));
		FUZZ_CHECK(strpbrk(e->secret, ",=") == NULL);
		if (newlines_separate)
			FUZZ_CHECK(strpbrk(e->secret, "\r\n") == NULL &&
				   strpbrk(e->id, "\r\n") == NULL);
		chars = code_points((const unsigned char *)e->secret,
				    e->secret_len);
		FUZZ_CHECK(chars >= SECRET_MIN_CHARS &&
			   chars <= SECRET_MAX_CHARS);
	}
}

static bool
same_lists(const struct secret_list *a, const struct secret_list *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++) {
		if (strcmp(a->entries[i].id, b->entries[i].id) != 0 ||
		    a->entries[i].secret_len != b->entries[i].secret_len ||
		    memcmp(a->entries[i].secret, b->entries[i].secret,
			   a->entries[i].secret_len) != 0)
			return false;
	}
	return true;
}

/* Each secret, current and previous, verifies a MAC made with it. */
static void
check_store(const struct secret_list *list)
{
	static const char body[] = "{\"Id\":\"x\",\"Notifications\":[]}";
	struct secret_store *store = secret_store_new(list, list, "fuzz");
	size_t i;

	FUZZ_CHECK(store != NULL);
	FUZZ_CHECK(secret_store_count(store) == list->n);
	for (i = 0; i < list->n; i++) {
		const struct secret_entry *e = &list->entries[i];
		const struct receiver_keys *k =
			secret_store_find(store, e->id, strlen(e->id));
		struct signature sig = { .decoded_len = SIGNATURE_BYTES };

		FUZZ_CHECK(k != NULL && strcmp(k->id, e->id) == 0);
		fuzz_hmac_sha256(e->secret, e->secret_len, body,
				 sizeof(body) - 1, sig.mac);
		FUZZ_CHECK(signature_verify(k, &sig, body, sizeof(body) - 1) ==
			   SIGNATURE_OK);
	}
	secret_store_free(store);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	struct secret_list commas = { 0 };
	struct secret_list lines = { 0 };
	int rc_commas;
	int rc_lines;

	rc_commas = secret_list_parse(text, false, "fuzz", &commas);
	rc_lines = secret_list_parse(text, true, "fuzz file", &lines);
	FUZZ_CHECK(rc_commas == 0 || rc_commas == -EINVAL);
	FUZZ_CHECK(rc_lines == 0 || rc_lines == -EINVAL);
	if (rc_commas == 0)
		check_list(&commas, false);
	if (rc_lines == 0)
		check_list(&lines, true);
	if (strpbrk(text, "\r\n") == NULL) {
		FUZZ_CHECK(rc_commas == rc_lines);
		if (rc_commas == 0)
			FUZZ_CHECK(same_lists(&commas, &lines));
	}
	/* Keep the HMAC set-up to small lists: it dominates the time. */
	if (rc_lines == 0 && lines.n <= 4)
		check_store(&lines);
	secret_list_finish(&commas);
	secret_list_finish(&lines);
	free(text);
	return 0;
}
