/*
 * The webhook endpoint's logic, free of any HTTP library: checks 1 to 9 of
 * PROTOCOL.md §3 for a POST, and the registration echo for a GET.
 */
#include "webhook.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "log.h"
#include "secrets.h"
#include "signature.h"
#include "util.h"

static void
reply_set(struct webhook_reply *reply, int status, const char *message)
{
	reply->status = status;
	reply->message = message;
}

void
webhook_reply_finish(struct webhook_reply *reply)
{
	envelope_finish(&reply->envelope);
	reply->delivery_id = NULL;
}

static const struct receiver_keys *
find_keys(const struct secret_store *secrets, const char *id, size_t len,
	  struct webhook_reply *reply)
{
	const struct receiver_keys *keys = secret_store_find(secrets, id, len);

	if (keys == NULL)
		reply_set(reply, 404, "no secret is configured for this receiver id");
	return keys;
}

void
webhook_job_free(struct webhook_job *job)
{
	if (job == NULL)
		return;
	free(job->headers_json);
	free(job);	/* everything else is in the same block */
}

/* Bytes a job needs after its struct: the notifications, and every
 * string (ids, Actions, ordering keys) with its NUL. */
static size_t
job_size(const char *receiver_id, const struct envelope *env)
{
	size_t size = env->n_notifications * sizeof(struct ingest_notification);
	size_t i, k;

	size += strlen(receiver_id) + 1;
	size += env->id != NULL ? strlen(env->id) + 1 : 0;
	for (i = 0; i < env->n_notifications; i++) {
		const struct notification *n = &env->notifications[i];

		size += n->action != NULL ? strlen(n->action) + 1 : 0;
		if (n->course_id == NULL)
			continue;
		/* The pointers, aligned. */
		size += n->n_users * sizeof(char *) + sizeof(char *);
		for (k = 0; k < n->n_users; k++) {
			if (n->user_ids[k] != NULL)
				size += 3 + strlen(n->course_id) + 1 +
					strlen(n->user_ids[k]) + 1;
		}
	}
	return size;
}

/* Bump allocation inside the job's block (job_size() made room). */
static char *
take(char **p, size_t n)
{
	char *here = *p;

	*p += n;
	return here;
}

static char *
copy(char **p, const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(take(p, n), s, n);
}

/* A verified delivery as a job for the inbox: one allocation holding
 * every string it needs, with each notification's ordering keys (one
 * per learner of its course, "lc:" course U+001F user; none when it
 * names no course and learner, and the inbox orders it within its
 * delivery). The body is borrowed from the request, which lives until
 * the answer, that is until the inbox is done with the job. */
static struct webhook_job *
make_job(const struct webhook_request *req, const char *receiver_id,
	 const struct envelope *env)
{
	size_t extra = job_size(receiver_id, env);
	struct webhook_job *job = calloc(1, sizeof(*job) + extra);
	struct ingest_delivery *d;
	char *p;
	size_t i, k;

	if (job == NULL)
		return NULL;
	p = (char *)(job + 1);
	d = &job->ingest.d;
	d->notifications = (struct ingest_notification *)(void *)take(
		&p, env->n_notifications * sizeof(*d->notifications));
	d->receiver_id = copy(&p, receiver_id);
	d->delivery_id = env->id != NULL ? copy(&p, env->id) : NULL;
	d->attempt = env->attempt;
	d->received_at = req->received_at;
	d->body = req->body;
	d->body_len = req->body_len;
	d->has_properties = env->has_properties;
	d->properties_start = env->properties_start;
	d->properties_end = env->properties_end;
	d->n_notifications = env->n_notifications;
	for (i = 0; i < env->n_notifications; i++) {
		const struct notification *n = &env->notifications[i];
		struct ingest_notification *out = &d->notifications[i];

		out->index = i;
		out->json_start = n->start;
		out->json_end = n->end;
		out->action = n->action != NULL ? copy(&p, n->action) : NULL;
		if (n->course_id == NULL || n->n_users == 0)
			continue;
		p += (sizeof(char *) - (uintptr_t)p % sizeof(char *)) %
		     sizeof(char *);
		out->keys = (char **)(void *)take(&p, n->n_users * sizeof(char *));
		for (k = 0; k < n->n_users; k++) {
			if (n->user_ids[k] == NULL)
				continue;
			out->keys[out->n_keys] = p;
			p += sprintf(p, "lc:%s\x1f%s", n->course_id,
				     n->user_ids[k]) + 1;
			out->n_keys++;
		}
	}
	return job;
}

/* Checks 2 to 4 of ms-signature fields (and the MAC's length), in
 * PROTOCOL.md's order. */
static enum signature_status
parse_signature(size_t n_signatures, const char *value,
		struct signature *sig)
{
	if (n_signatures == 0)
		return SIGNATURE_MISSING;
	if (n_signatures > 1)
		return SIGNATURE_DUPLICATE;
	return signature_parse(value, sig);
}

bool
webhook_post_head(const struct secret_store *secrets,
		  const char *receiver_id, size_t receiver_id_len,
		  size_t n_signatures, const char *signature,
		  size_t signature_len, struct webhook_reply *reply)
{
	enum signature_status status;
	struct signature sig;
	char small[160];
	char *value = small;

	if (find_keys(secrets, receiver_id, receiver_id_len, reply) == NULL)
		return false;
	/* Longer values than a signature's are rare: copied to the heap. */
	if (n_signatures == 1 && signature_len >= sizeof(small)) {
		value = xstrndup(signature, signature_len);
		if (value == NULL) {
			reply_set(reply, 503, "out of memory");
			return false;
		}
	} else if (n_signatures == 1) {
		memcpy(small, signature, signature_len);
		small[signature_len] = '\0';
	}
	status = parse_signature(n_signatures, value, &sig);
	if (value != small)
		free(value);
	if (status == SIGNATURE_OK && sig.decoded_len != SIGNATURE_BYTES)
		status = SIGNATURE_MISMATCH;
	if (status == SIGNATURE_OK)
		return true;
	reply->signature = status;
	reply_set(reply, 400, signature_status_message(status));
	return false;
}

void
webhook_post(const struct secret_store *secrets,
	     const struct webhook_request *req, struct webhook_reply *reply)
{
	const struct receiver_keys *keys;
	struct signature sig;
	enum signature_status status;
	struct envelope *env = &reply->envelope;
	int rc;

	/* 1: a secret for this id. */
	keys = find_keys(secrets, req->receiver_id, req->receiver_id_len,
			 reply);
	if (keys == NULL)
		return;

	/* 2 to 5: exactly one ms-signature field, well formed, matching. */
	status = parse_signature(req->n_signatures, req->signature, &sig);
	if (status == SIGNATURE_OK)
		status = signature_verify(keys, &sig, req->body,
					  req->body_len);
	if (status != SIGNATURE_OK && status != SIGNATURE_OK_PREVIOUS) {
		reply->signature = status;
		reply_set(reply, status == SIGNATURE_ERROR ? 500 : 400,
			  signature_status_message(status));
		return;
	}
	reply->previous_secret = status == SIGNATURE_OK_PREVIOUS;

	/* 6: a JSON media type. */
	if (!media_type_is_json(req->content_type)) {
		reply_set(reply, 415,
			  "Content-Type must be application/json");
		return;
	}

	/* 7 and 8: a JSON object with well-formed Notifications. */
	rc = envelope_decode(req->body, req->body_len, req->max_notifications,
			     env, reply->message_buf,
			     sizeof(reply->message_buf));
	if (rc == -ENOMEM) {
		reply_set(reply, 503, "out of memory");
		return;
	}
	if (rc == -E2BIG) {
		reply_set(reply, 413, reply->message_buf);
		return;
	}
	if (rc < 0) {
		reply_set(reply, 400, reply->message_buf);
		return;
	}
	reply->delivery_id = env->id;
	if (env->id == NULL)
		whr_log(WHR_LOG_WARN,
			"delivery without an Id accepted; it cannot be recognised if it is sent again");
	reply->attempt = env->attempt;
	reply->notifications = env->n_notifications;

	/* 9: stored durably, then answered; handled from the store. */
	reply->job = make_job(req, keys->id, env);
	if (reply->job == NULL) {
		reply_set(reply, 503, "out of memory");
		return;
	}
	reply_set(reply, 0, NULL);
}

/* ---- the echo GET ---------------------------------------------------- */

/* The value of "%uXXXX" at @p s[i], or -1 when there is none. */
static int
percent_u(const char *s, size_t len, size_t i)
{
	if (i + 5 >= len || s[i] != '%' || (s[i + 1] != 'u' && s[i + 1] != 'U') ||
	    hex_digit_value(s[i + 2]) < 0 || hex_digit_value(s[i + 3]) < 0 ||
	    hex_digit_value(s[i + 4]) < 0 || hex_digit_value(s[i + 5]) < 0)
		return -1;
	return hex_digit_value(s[i + 2]) << 12 | hex_digit_value(s[i + 3]) << 8 |
	       hex_digit_value(s[i + 4]) << 4 | hex_digit_value(s[i + 5]);
}

/* Append code point @p cp as UTF-8 (a lone surrogate becomes U+FFFD, as
 * .NET's decoder makes it). */
static size_t
put_utf8(char *out, unsigned cp)
{
	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd;
	if (cp >= 0x10000) {
		out[0] = (char)(0xf0 | cp >> 18);
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		return 4;
	}
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | cp >> 12);
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

/* HttpUtility.UrlDecode: %XX, %uXXXX and (in queries) '+' for a space;
 * malformed escapes are kept as they are. */
char *
percent_decode(const char *s, size_t len, bool plus_is_space,
	       size_t *out_len)
{
	/* Decoding never grows the text: %uXXXX (6 bytes) is at most 3
	 * bytes of UTF-8, a pair (12) 4. */
	char *out = malloc(len + 1);
	size_t i = 0;
	size_t o = 0;

	if (out == NULL)
		return NULL;
	while (i < len) {
		if (s[i] == '%' && i + 2 < len && hex_digit_value(s[i + 1]) >= 0 &&
		    hex_digit_value(s[i + 2]) >= 0) {
			out[o++] = (char)(hex_digit_value(s[i + 1]) << 4 |
					  hex_digit_value(s[i + 2]));
			i += 3;
		} else if (percent_u(s, len, i) >= 0) {
			unsigned cp = (unsigned)percent_u(s, len, i);
			int low = percent_u(s, len, i + 6);

			i += 6;
			/* A surrogate pair is one character, as in .NET. */
			if (cp >= 0xd800 && cp <= 0xdbff && low >= 0xdc00 &&
			    low <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     ((unsigned)low - 0xdc00);
				i += 6;
			}
			o += put_utf8(out + o, cp);
		} else if (s[i] == '+' && plus_is_space) {
			out[o++] = ' ';
			i++;
		} else {
			out[o++] = s[i++];
		}
	}
	out[o] = '\0';
	if (out_len != NULL)
		*out_len = o;
	return out;
}

char *
query_parameter(const char *query, const char *name, size_t *len, int *rc)
{
	char *result = NULL;
	size_t result_len = 0;
	size_t values = 0;
	const char *s = query;

	*rc = 0;
	*len = 0;
	if (query == NULL)
		return NULL;
	if (*s == '?')
		s++;
	while (*s != '\0') {
		size_t seg = strcspn(s, "&");
		const char *eq = memchr(s, '=', seg);
		char *key;
		size_t key_len;
		char *value;
		bool match;

		/* A segment without '=' is a value without a name. */
		if (eq != NULL) {
			key = percent_decode(s, (size_t)(eq - s), true,
					     &key_len);
			if (key == NULL)
				goto err_memory;
			/* By length: "echo%00x" is not "echo". */
			match = ascii_equal_nocase_n(key, key_len, name,
						     strlen(name));
			free(key);
			if (match) {
				size_t vlen;
				char *grown;

				value = percent_decode(eq + 1,
						       seg - (size_t)(eq - s) - 1,
						       true, &vlen);
				if (value == NULL)
					goto err_memory;
				grown = realloc(result,
						result_len + vlen + 2);
				if (grown == NULL) {
					free(value);
					goto err_memory;
				}
				result = grown;
				/* Several values are joined with ',', empty
				 * ones included, as NameValueCollection does. */
				if (values++ > 0)
					result[result_len++] = ',';
				memcpy(result + result_len, value, vlen + 1);
				result_len += vlen;
				free(value);
			}
		}
		s += seg;
		if (*s == '&')
			s++;
	}
	*len = result_len;
	return result;

err_memory:
	free(result);
	*rc = -ENOMEM;
	return NULL;
}

void
webhook_echo(const struct secret_store *secrets, const char *receiver_id,
	     size_t receiver_id_len, const char *query,
	     struct webhook_reply *reply, char **echo, size_t *echo_len)
{
	char *value;
	int rc;

	*echo = NULL;
	if (find_keys(secrets, receiver_id, receiver_id_len, reply) == NULL)
		return;
	value = query_parameter(query, "echo", echo_len, &rc);
	if (rc < 0) {
		reply_set(reply, 503, "out of memory");
		return;
	}
	if (value == NULL || *echo_len == 0) {
		free(value);
		reply_set(reply, 400,
			  "the echo query parameter is missing or empty");
		return;
	}
	*echo = value;
	reply_set(reply, 200, NULL);
}
