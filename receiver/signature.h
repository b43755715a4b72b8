/*
 * The ms-signature header: parsing and HMAC-SHA256 verification, in the
 * order and with the outcomes of PROTOCOL.md §3 (checks 2 to 5). Pure
 * code, no I/O.
 */
#ifndef WHR_RECEIVER_SIGNATURE_H
#define WHR_RECEIVER_SIGNATURE_H

#include <stddef.h>

#include "secrets.h"

#define SIGNATURE_BYTES 32	/* HMAC-SHA256 */

enum signature_status {
	SIGNATURE_OK,		/* matches the current secret */
	SIGNATURE_OK_PREVIOUS,	/* matches the id's previous secret */
	SIGNATURE_MISSING,	/* no ms-signature header field */
	SIGNATURE_DUPLICATE,	/* more than one ms-signature field */
	SIGNATURE_MALFORMED,	/* not `sha256=<hex>` after split/trim */
	SIGNATURE_NOT_HEX,	/* the value has non-hex characters or an
				 * odd length */
	SIGNATURE_MISMATCH,	/* well formed, but not this body's MAC */
	SIGNATURE_ERROR,	/* OpenSSL failed */
};

/* A parsed header: the decoded bytes when there are exactly 32 of them;
 * any other length can only be a mismatch. */
struct signature {
	unsigned char mac[SIGNATURE_BYTES];
	size_t decoded_len;
};

/* Checks 3 and 4: split @p value on '=', trim, drop empty parts; exactly
 * `sha256` (any case) and hex. Returns SIGNATURE_OK, _MALFORMED or
 * _NOT_HEX. */
enum signature_status signature_parse(const char *value,
				      struct signature *sig);

/* Check 5: compare @p sig in constant time with HMAC-SHA256 of the body
 * under the current, then the previous secret of @p keys. */
enum signature_status signature_verify(const struct receiver_keys *keys,
				       const struct signature *sig,
				       const void *body, size_t len);

/* Compute HMAC-SHA256 of a body with a ready context (key already set). */
int signature_compute(EVP_MAC_CTX *ctx, const void *body, size_t len,
		      unsigned char mac[SIGNATURE_BYTES]);

/* A short reason for an HTTP error body and the log; never a MAC. */
const char *signature_status_message(enum signature_status status);

#endif /* WHR_RECEIVER_SIGNATURE_H */
