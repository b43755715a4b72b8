/*
 * signature_parse() on arbitrary header values, checked against a small
 * model of PROTOCOL.md §3 checks 3 and 4, then signature_verify() against
 * a fixed secret store (a current and a previous secret for the default
 * id). Also: a header formatted from the real MAC of the input, in any of
 * the accepted spellings, must verify.
 */
#include "fuzz-common.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "secrets.h"
#include "signature.h"

/* tests/data/vectors: v1's secret is current, v0's the previous one. */
#define CURRENT_SECRET "0123456789abcdef0123456789abcdef"
#define PREVIOUS_SECRET "123456789012345678901234567890123456789012345678"

static struct secret_store *store;
static const struct receiver_keys *keys;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct secret_list current = { 0 };
	struct secret_list previous = { 0 };

	(void)argc;
	(void)argv;
	FUZZ_CHECK(secret_list_parse(CURRENT_SECRET, false, "fuzz",
				     &current) == 0);
	FUZZ_CHECK(secret_list_parse(PREVIOUS_SECRET, false, "fuzz",
				     &previous) == 0);
	store = secret_store_new(&current, &previous, "fuzz");
	FUZZ_CHECK(store != NULL);
	keys = secret_store_find(store, "", 0);
	FUZZ_CHECK(keys != NULL && keys->previous != NULL);
	secret_list_finish(&current);
	secret_list_finish(&previous);
	return 0;
}

/* A hex digit's value, or -1 (apart from the library's table). */
static int
hex_value(char c)
{
	static const char digits[] = "0123456789abcdef";
	const char *at = c != '\0' ? strchr(digits, tolower((unsigned char)c))
				   : NULL;

	return at != NULL ? (int)(at - digits) : -1;
}

/* The model: split on '=', trim, drop empty parts; exactly two, the
 * first "sha256" in any case, the second an even run of hex digits.
 * Written apart from the library's splitting (strchr, trim_span): one
 * pass that notes each part's first and last non-blank character. */
static enum signature_status
model_parse(const char *value, unsigned char mac[SIGNATURE_BYTES],
	    size_t *decoded_len)
{
	const char *part[2] = { NULL, NULL };
	size_t plen[2] = { 0, 0 };
	size_t n = 0;
	size_t first = 0, last = 0;
	bool in_part = false;
	size_t i;

	for (i = 0;; i++) {
		char c = value[i];

		if (c == '=' || c == '\0') {
			if (in_part && n < 2) {
				part[n] = value + first;
				plen[n] = last - first + 1;
			}
			n += in_part;
			in_part = false;
			if (c == '\0')
				break;
		} else if (!fuzz_is_space(c)) {
			if (!in_part)
				first = i;
			in_part = true;
			last = i;
		}
	}
	if (n != 2 || plen[0] != 6 || strncasecmp(part[0], "sha256", 6) != 0)
		return SIGNATURE_MALFORMED;
	if (plen[1] % 2 != 0)
		return SIGNATURE_NOT_HEX;
	for (i = 0; i < plen[1]; i++) {
		if (hex_value(part[1][i]) < 0)
			return SIGNATURE_NOT_HEX;
	}
	*decoded_len = plen[1] / 2;
	if (*decoded_len == SIGNATURE_BYTES) {
		for (i = 0; i < SIGNATURE_BYTES; i++) {
			const char *h = part[1] + 2 * i;

			mac[i] = (unsigned char)(hex_value(h[0]) << 4 |
						 hex_value(h[1]));
		}
	}
	return SIGNATURE_OK;
}

/* Format @p mac as an accepted header, in a spelling chosen by @p style:
 * any case of the name and the digits, spaces around each part, "==". */
static void
format_header(const unsigned char mac[SIGNATURE_BYTES], unsigned style,
	      char *out, size_t out_size)
{
	static const char *const names[] = { "sha256", "SHA256", "Sha256" };
	const char *digits = style & 1 ? "0123456789abcdef"
				       : "0123456789ABCDEF";
	char hex[2 * SIGNATURE_BYTES + 1];
	size_t i;

	for (i = 0; i < SIGNATURE_BYTES; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 0x0f];
	}
	hex[2 * SIGNATURE_BYTES] = '\0';
	snprintf(out, out_size, "%s%s%s%s%s%s%s",
		 style & 2 ? " \t" : "", names[(style >> 2) % 3],
		 style & 16 ? " " : "", style & 32 ? "==" : "=",
		 style & 64 ? " " : "", hex, style & 128 ? "\r\n " : "");
}

static void
check_real_mac(const char *secret, const uint8_t *data, size_t size,
	       unsigned style, enum signature_status expected)
{
	unsigned char mac[SIGNATURE_BYTES];
	struct signature sig;
	char header[128];

	fuzz_hmac_sha256(secret, strlen(secret), data, size, mac);
	format_header(mac, style, header, sizeof(header));
	FUZZ_CHECK(signature_parse(header, &sig) == SIGNATURE_OK);
	FUZZ_CHECK(sig.decoded_len == SIGNATURE_BYTES);
	FUZZ_CHECK(memcmp(sig.mac, mac, SIGNATURE_BYTES) == 0);
	FUZZ_CHECK(signature_verify(keys, &sig, data, size) == expected);

	/* One bit off, or one byte short, is a mismatch. */
	sig.mac[style % SIGNATURE_BYTES] ^= (unsigned char)(1u << (style % 8));
	FUZZ_CHECK(signature_verify(keys, &sig, data, size) ==
		   SIGNATURE_MISMATCH);
	header[strcspn(header, "\r")] = '\0';
	header[strlen(header) - 2] = '\0';
	FUZZ_CHECK(signature_parse(header, &sig) == SIGNATURE_OK);
	FUZZ_CHECK(sig.decoded_len == SIGNATURE_BYTES - 1);
	FUZZ_CHECK(signature_verify(keys, &sig, data, size) ==
		   SIGNATURE_MISMATCH);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value = fuzz_strndup(data, size);
	unsigned char model_mac[SIGNATURE_BYTES];
	size_t model_len = 0;
	enum signature_status expected;
	enum signature_status status;
	struct signature sig;
	unsigned style = size > 0 ? data[0] : 0;

	memset(&sig, 0xa5, sizeof(sig));
	status = signature_parse(value, &sig);
	expected = model_parse(value, model_mac, &model_len);
	FUZZ_CHECK(status == expected);
	if (status == SIGNATURE_OK) {
		FUZZ_CHECK(sig.decoded_len == model_len);
		/* The bytes are specified only when there are 32 of them. */
		if (model_len == SIGNATURE_BYTES)
			FUZZ_CHECK(memcmp(sig.mac, model_mac,
					  SIGNATURE_BYTES) == 0);
		status = signature_verify(keys, &sig, data, size);
		FUZZ_CHECK(status == SIGNATURE_MISMATCH);
	}
	free(value);

	/* The input as a body: its real MAC verifies under either secret. */
	check_real_mac(CURRENT_SECRET, data, size, style, SIGNATURE_OK);
	check_real_mac(PREVIOUS_SECRET, data, size, style,
		       SIGNATURE_OK_PREVIOUS);
	return 0;
}
