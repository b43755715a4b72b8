/*
 * ms-signature parsing and verification (PROTOCOL.md §3, checks 3 to 5).
 */
#include "signature.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include <whr/signature.h>

#include "util.h"

enum signature_status
signature_parse(const char *value, struct signature *sig)
{
	const char *part[2] = { NULL, NULL };
	size_t plen[2] = { 0, 0 };
	size_t n = 0;
	const char *s = value;
	size_t i;

	/* Split on '=', trim each part, drop the empty ones. */
	for (;;) {
		const char *end = strchr(s, '=');
		const char *p = s;
		size_t len = end != NULL ? (size_t)(end - s) : strlen(s);

		trim_span(&p, &len);
		if (len > 0) {
			if (n < 2) {
				part[n] = p;
				plen[n] = len;
			}
			n++;
		}
		if (end == NULL)
			break;
		s = end + 1;
	}
	if (n != 2 || !ascii_equal_nocase_n(part[0], plen[0], "sha256", 6))
		return SIGNATURE_MALFORMED;

	if (plen[1] % 2 != 0)
		return SIGNATURE_NOT_HEX;
	memset(sig->mac, 0, sizeof(sig->mac));
	sig->decoded_len = plen[1] / 2;
	/* Check every digit; decode only what fits (a longer value can only
	 * be a mismatch). */
	for (i = 0; i < plen[1]; i += 2) {
		int hi = hex_digit_value(part[1][i]);
		int lo = hex_digit_value(part[1][i + 1]);

		if (hi < 0 || lo < 0)
			return SIGNATURE_NOT_HEX;
		if (i / 2 < SIGNATURE_BYTES)
			sig->mac[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return SIGNATURE_OK;
}

int
signature_compute(EVP_MAC_CTX *ctx, const void *body, size_t len,
		  unsigned char mac[SIGNATURE_BYTES])
{
	size_t out_len = 0;

	/* A NULL key re-initialises the context with the key it already
	 * holds: the key's pads are not recomputed per request. */
	if (!EVP_MAC_init(ctx, NULL, 0, NULL) ||
	    !EVP_MAC_update(ctx, body, len) ||
	    !EVP_MAC_final(ctx, mac, &out_len, SIGNATURE_BYTES) ||
	    out_len != SIGNATURE_BYTES)
		return -1;
	return 0;
}

static bool
matches(EVP_MAC_CTX *ctx, const struct signature *sig, const void *body,
	size_t len, bool *error)
{
	unsigned char expected[SIGNATURE_BYTES];
	bool equal;

	if (signature_compute(ctx, body, len, expected) < 0) {
		*error = true;
		return false;
	}
	/* A wrong length is a mismatch; the comparison itself is constant
	 * time over the 32 bytes. */
	equal = sig->decoded_len == SIGNATURE_BYTES &&
		CRYPTO_memcmp(expected, sig->mac, SIGNATURE_BYTES) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return equal;
}

enum signature_status
signature_verify(const struct receiver_keys *keys, const struct signature *sig,
		 const void *body, size_t len)
{
	bool error = false;

	if (matches(keys->current, sig, body, len, &error))
		return SIGNATURE_OK;
	if (keys->previous != NULL &&
	    matches(keys->previous, sig, body, len, &error))
		return SIGNATURE_OK_PREVIOUS;
	return error ? SIGNATURE_ERROR : SIGNATURE_MISMATCH;
}

const char *
signature_status_message(enum signature_status status)
{
	switch (status) {
	case SIGNATURE_OK:
	case SIGNATURE_OK_PREVIOUS:
		return "signature verified";
	case SIGNATURE_MISSING:
		return "missing ms-signature header";
	case SIGNATURE_DUPLICATE:
		return "more than one ms-signature header";
	case SIGNATURE_MALFORMED:
		return "ms-signature header must have the form sha256=<hex>";
	case SIGNATURE_NOT_HEX:
		return "ms-signature value is not an even number of hex digits";
	case SIGNATURE_MISMATCH:
		return "ms-signature does not match the body";
	case SIGNATURE_ERROR:
		return "signature could not be computed";
	}
	return "bad signature";
}

/* ---- the public, one-off form (whr/signature.h) ------------------------ */

static EVP_MAC_CTX *
one_off_context(const char *secret)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;

	EVP_MAC_free(mac);	/* the context keeps its own reference */
	if (ctx != NULL &&
	    !EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret),
			  params)) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

WHR_EXPORT int
whr_signature_compute(const char *secret, const void *body, size_t len,
		      char header[WHR_SIGNATURE_HEADER_SIZE])
{
	unsigned char mac[SIGNATURE_BYTES];
	EVP_MAC_CTX *ctx;
	int rc;

	if (secret == NULL || (body == NULL && len > 0) || header == NULL)
		return -EINVAL;
	ctx = one_off_context(secret);
	if (ctx == NULL)
		return -EIO;
	rc = signature_compute(ctx, body, len, mac) < 0 ? -EIO : 0;
	EVP_MAC_CTX_free(ctx);
	if (rc == 0) {
		memcpy(header, "sha256=", 7);
		hex_encode_upper(mac, sizeof(mac), header + 7);
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

WHR_EXPORT enum whr_signature_status
whr_signature_check(const char *secret, const void *body, size_t len,
		    const char *header)
{
	struct receiver_keys keys = { 0 };
	struct signature sig;
	enum signature_status status;

	if (secret == NULL || header == NULL || (body == NULL && len > 0))
		return WHR_SIGNATURE_ERROR;
	status = signature_parse(header, &sig);
	if (status == SIGNATURE_MALFORMED)
		return WHR_SIGNATURE_MALFORMED;
	if (status == SIGNATURE_NOT_HEX)
		return WHR_SIGNATURE_NOT_HEX;
	keys.current = one_off_context(secret);
	if (keys.current == NULL)
		return WHR_SIGNATURE_ERROR;
	status = signature_verify(&keys, &sig, body != NULL ? body : "", len);
	EVP_MAC_CTX_free(keys.current);
	switch (status) {
	case SIGNATURE_OK:
	case SIGNATURE_OK_PREVIOUS:
		return WHR_SIGNATURE_OK;
	case SIGNATURE_MISMATCH:
		return WHR_SIGNATURE_MISMATCH;
	default:
		return WHR_SIGNATURE_ERROR;
	}
}

WHR_EXPORT const char *
whr_signature_status_message(enum whr_signature_status status)
{
	switch (status) {
	case WHR_SIGNATURE_OK:
		return signature_status_message(SIGNATURE_OK);
	case WHR_SIGNATURE_MALFORMED:
		return signature_status_message(SIGNATURE_MALFORMED);
	case WHR_SIGNATURE_NOT_HEX:
		return signature_status_message(SIGNATURE_NOT_HEX);
	case WHR_SIGNATURE_MISMATCH:
		return signature_status_message(SIGNATURE_MISMATCH);
	case WHR_SIGNATURE_ERROR:
		break;
	}
	return signature_status_message(SIGNATURE_ERROR);
}
