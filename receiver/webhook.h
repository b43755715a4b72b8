/*
 * One webhook request, from its parts to its answer: the echo GET and the
 * signed POST (PROTOCOL.md §3). No HTTP library here: the front hands in
 * the parts and sends back what this decides.
 */
#ifndef WHR_RECEIVER_WEBHOOK_H
#define WHR_RECEIVER_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "inbox.h"
#include "signature.h"

struct secret_store;

struct webhook_request {
	const char *receiver_id;	/* from the path, percent-decoded */
	size_t receiver_id_len;
	size_t n_signatures;		/* ms-signature header fields */
	const char *signature;		/* the first one's value */
	const char *content_type;	/* NULL when absent */
	const char *body;
	size_t body_len;
	int64_t received_at;		/* microseconds since the epoch */
	size_t max_notifications;	/* more: 413; 0: no limit */
};

struct webhook_reply {
	int status;
	const char *message;		/* short text for the body and the
					 * log; never a secret or a MAC */
	char message_buf[192];
	struct envelope envelope;	/* of an accepted POST */
	const char *delivery_id;	/* for the log; in envelope */
	int64_t attempt;
	size_t notifications;
	bool previous_secret;		/* matched the previous secret */
	enum signature_status signature;	/* why the signature checks
						 * refused it; SIGNATURE_OK
						 * when they did not */
	struct webhook_job *job;	/* status 0: store this, then answer */
};

/* A verified delivery on its way to the inbox: one allocation with
 * copies of its strings; the body is the request's own, which lives
 * until the answer. */
struct webhook_job {
	struct ingest_job ingest;
	char *headers_json;		/* set by the front */
};

/* Checks 1 to 8 of a POST, with the keys of @p secrets. When they pass,
 * reply->status is 0 and reply->job holds the delivery to store: the
 * answer (200, or 503 when it cannot be stored) comes once the inbox has
 * it. */
void webhook_post(const struct secret_store *secrets,
		  const struct webhook_request *req,
		  struct webhook_reply *reply);

/* Checks 1 to 4 of a POST, those its headers decide before the body is
 * read: a secret for the id, exactly one ms-signature, well formed, and
 * of a MAC's length (any other length can only be a mismatch, check 5).
 * @p signature is the first field's value, @p signature_len bytes, not
 * NUL-ended. true when they pass and the body decides the rest; false
 * with reply->status and reply->message set. */
bool webhook_post_head(const struct secret_store *secrets,
		       const char *receiver_id, size_t receiver_id_len,
		       size_t n_signatures, const char *signature,
		       size_t signature_len, struct webhook_reply *reply);

void webhook_job_free(struct webhook_job *job);

/* The echo GET: 404 for an id without a secret, 400 without a non-empty
 * `echo` query parameter, else 200 with @p *echo (malloc'd; the caller
 * frees it; @p *echo_len bytes, which may include NULs) as the exact
 * body. @p query may be NULL. */
void webhook_echo(const struct secret_store *secrets, const char *receiver_id,
		  size_t receiver_id_len, const char *query,
		  struct webhook_reply *reply, char **echo, size_t *echo_len);

void webhook_reply_finish(struct webhook_reply *reply);

/* The value of the query parameter @p name as ASP.NET's
 * ParseQueryString() gives it: names compared case-insensitively, '+' and
 * %XX decoded, several values joined with ','. NULL when absent; its
 * length in @p len (it may hold NULs); -ENOMEM in @p rc. */
char *query_parameter(const char *query, const char *name, size_t *len,
		      int *rc);

/* Decode %XX and %uXXXX (and '+' when @p plus_is_space) in @p len bytes:
 * a malloc'd NUL-terminated copy, its length (which may count NULs) in
 * @p out_len if not NULL; NULL when out of memory. */
char *percent_decode(const char *s, size_t len, bool plus_is_space,
		     size_t *out_len);

#endif /* WHR_RECEIVER_WEBHOOK_H */
