/*
 * The webhook endpoint's logic, free of any HTTP library: checks 1 to 9 of
 * PROTOCOL.md §3 for a POST, and the registration echo for a GET.
 */
#include "webhook-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode-private.h"
#include "dispatch-private.h"
#include "event-private.h"
#include "log-private.h"
#include "receiver-private.h"
#include "signature-private.h"
#include "whr-private.h"

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
find_keys(struct whr_receiver *r, const char *id, size_t len,
	  struct webhook_reply *reply)
{
	const struct receiver_keys *keys =
		secret_store_find(r->secrets, id, len);

	if (keys == NULL)
		reply_set(reply, 404, "no secret is configured for this receiver id");
	return keys;
}

/* Copy @p len bytes into a reusable buffer, NUL-terminated. */
static int
scratch_copy(struct scratch *buf, const char *s, size_t len)
{
	if (len + 1 > buf->cap) {
		char *grown = realloc(buf->data, len + 1);

		if (grown == NULL)
			return -ENOMEM;
		buf->data = grown;
		buf->cap = len + 1;
	}
	memcpy(buf->data, s, len);
	buf->data[len] = '\0';
	return 0;
}

/* Run the handlers of every notification now. The reply waits for them:
 * any retry makes it 500, so that the sender tries again. */
static void
run_handlers(struct whr_receiver *r, const struct webhook_request *req,
	     const char *receiver_id, const struct envelope *env,
	     struct webhook_reply *reply)
{
	struct dispatch_outcome outcome = { 0 };
	const char *properties = NULL;
	size_t properties_len = 0;
	size_t i;

	if (r->handlers.n == 0 || env->n_notifications == 0)
		return;
	/* Handlers get NUL-terminated copies; the buffers are kept from one
	 * request to the next. */
	if (env->has_properties) {
		properties_len = env->properties_end - env->properties_start;
		if (scratch_copy(&r->properties_buf,
				 req->body + env->properties_start,
				 properties_len) < 0)
			goto err_memory;
		properties = r->properties_buf.data;
	}
	for (i = 0; i < env->n_notifications; i++) {
		const struct notification *n = &env->notifications[i];
		size_t len = n->end - n->start;
		struct event_fields f = {
			.receiver_id = receiver_id,
			.delivery_id = env->id,
			.action = n->action,
			.attempt = env->attempt,
			.received_at = req->received_at,
			.index = i,
			.count = env->n_notifications,
			.json_len = len,
			.properties = properties,
			.properties_len = properties_len,
		};
		struct whr_event ev;

		if (scratch_copy(&r->json_buf, req->body + n->start, len) < 0)
			goto err_memory;
		f.json = r->json_buf.data;

		event_init(&ev, &f);
		dispatch_event(&r->handlers, r->handler_scratch, &ev,
			       &outcome);
		event_finish(&ev);
	}
	if (outcome.retry > 0)
		reply_set(reply, 500, "a handler asked for this delivery to be retried");
	return;

err_memory:
	reply_set(reply, 503, "out of memory");
}

void
webhook_post(struct whr_receiver *r, const struct webhook_request *req,
	     struct webhook_reply *reply)
{
	const struct receiver_keys *keys;
	struct signature sig;
	enum signature_status status;
	struct envelope *env = &reply->envelope;
	int rc;

	/* 1: a secret for this id. */
	keys = find_keys(r, req->receiver_id, req->receiver_id_len, reply);
	if (keys == NULL)
		return;

	/* 2 to 5: exactly one ms-signature field, well formed, matching. */
	if (req->n_signatures == 0)
		status = SIGNATURE_MISSING;
	else if (req->n_signatures > 1)
		status = SIGNATURE_DUPLICATE;
	else
		status = signature_parse(req->signature, &sig);
	if (status == SIGNATURE_OK)
		status = signature_verify(keys, &sig, req->body,
					  req->body_len);
	if (status != SIGNATURE_OK && status != SIGNATURE_OK_PREVIOUS) {
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
	rc = envelope_decode(req->body, req->body_len, env,
			     reply->message_buf, sizeof(reply->message_buf));
	if (rc == -ENOMEM) {
		reply_set(reply, 503, "out of memory");
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

	/* 9: handled. */
	reply_set(reply, 200, NULL);
	run_handlers(r, req, keys->id, env, reply);
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
webhook_echo(struct whr_receiver *r, const char *receiver_id,
	     size_t receiver_id_len, const char *query,
	     struct webhook_reply *reply, char **echo, size_t *echo_len)
{
	char *value;
	int rc;

	*echo = NULL;
	if (find_keys(r, receiver_id, receiver_id_len, reply) == NULL)
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
