/*
 * whr: ms-signature on its own
 *
 * The receiver checks signatures itself; these functions are for programs
 * that sign deliveries (test senders) or check them outside a receiver,
 * with exactly the receiver's rules (PROTOCOL.md §3, checks 3 to 5).
 */
#ifndef WHR_SIGNATURE_H
#define WHR_SIGNATURE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Room for "sha256=" + 64 hex digits + NUL. */
#define WHR_SIGNATURE_HEADER_SIZE 72

/** What a signature check found, in the receiver's order of checks. */
enum whr_signature_status {
	WHR_SIGNATURE_OK = 0,		/**< matches */
	WHR_SIGNATURE_MALFORMED,	/**< not `sha256=<value>` after the
					 *   value is split on '=', its
					 *   parts trimmed and empty ones
					 *   dropped */
	WHR_SIGNATURE_NOT_HEX,		/**< the value is not an even number
					 *   of hex digits */
	WHR_SIGNATURE_MISMATCH,		/**< well formed, but not the MAC of
					 *   this body under this secret
					 *   (a wrong length included) */
	WHR_SIGNATURE_ERROR		/**< the HMAC could not be computed */
};

/**
 * Compute the header value a sender puts in `ms-signature`:
 * "sha256=" and the uppercase hex of HMAC-SHA256(UTF-8 secret, body).
 *
 * @param secret the secret, used as its bytes (no trimming)
 * @param body the exact body bytes
 * @param len their length
 * @param[out] header at least WHR_SIGNATURE_HEADER_SIZE bytes
 * @return 0, or -EINVAL for a NULL argument, -EIO when OpenSSL fails
 */
int whr_signature_compute(const char *secret, const void *body, size_t len,
			  char header[WHR_SIGNATURE_HEADER_SIZE]);

/**
 * Check an `ms-signature` value against a body and a secret, with the
 * receiver's exact rules. The comparison is constant-time.
 *
 * @param secret the secret
 * @param body the exact body bytes
 * @param len their length
 * @param header the header field's value, e.g. "sha256=ABC..."
 * @return the first check that failed, or WHR_SIGNATURE_OK
 */
enum whr_signature_status whr_signature_check(const char *secret,
					      const void *body, size_t len,
					      const char *header);

/**
 * @param status a result of whr_signature_check()
 * @return a short English description; static storage. It never contains
 *         a MAC or a secret.
 */
const char *whr_signature_status_message(enum whr_signature_status status);

#ifdef __cplusplus
}
#endif

#endif /* WHR_SIGNATURE_H */
