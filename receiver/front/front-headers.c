/*
 * What front.c reads in a request's headers: the signatures counted, the
 * framing checked, and the headers worth keeping with a delivery, as
 * JSON for the inbox.
 */
#include "front/front-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "webhook.h"
#include "util.h"

void
front_count_signatures(struct evkeyvalq *headers, struct webhook_request *in)
{
	struct evkeyval *h;

	TAILQ_FOREACH(h, headers, next) {
		/* Cheap first-letter test: this runs for every header. */
		if ((h->key[0] | 0x20) == 'm' &&
		    ascii_equal_nocase(h->key, "ms-signature")) {
			if (in->n_signatures++ == 0)
				in->signature = h->value;
		}
	}
}

/* Headers not worth keeping with a delivery: credentials (the signature
 * among them), and what only the hop or the framing needed. */
static bool
header_kept(const char *name)
{
	static const char *const dropped[] = {
		"ms-signature", "authorization", "proxy-authorization",
		"cookie", "content-length", "connection", "keep-alive",
		"transfer-encoding", "te", "upgrade", "expect",
	};
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(dropped); i++) {
		if (ascii_equal_nocase(name, dropped[i]))
			return false;
	}
	return true;
}

/* Append @p s as a JSON string at @p out; returns the end. Room for six
 * bytes per input byte is enough (\u00XX, or U+FFFD's three). */
static char *
json_string(char *out, const char *s)
{
	size_t left = strlen(s);

	*out++ = '"';
	while (*s != '\0') {
		unsigned char c = (unsigned char)*s;
		size_t n = 1;

		if (c == '"' || c == '\\') {
			*out++ = '\\';
			*out++ = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out += sprintf(out, "\\u%04x", c);
		} else if (c < 0x80) {
			*out++ = (char)c;
		} else if ((n = utf8_char_length(s, left)) > 0) {
			memcpy(out, s, n);
			out += n;
		} else {
			memcpy(out, "\xef\xbf\xbd", 3);	/* not UTF-8 */
			out += 3;
			n = 1;
		}
		s += n;
		left -= n;
	}
	*out++ = '"';
	return out;
}

/* One allocation, sized for the worst case. */
char *
front_headers_json(struct evkeyvalq *headers)
{
	struct evkeyval *h;
	size_t size = 3;
	char *text;
	char *p;

	TAILQ_FOREACH(h, headers, next) {
		if (header_kept(h->key))
			size += 6 * (strlen(h->key) + strlen(h->value)) + 8;
	}
	text = malloc(size);
	if (text == NULL)
		return NULL;
	p = text;
	*p++ = '[';
	TAILQ_FOREACH(h, headers, next) {
		if (!header_kept(h->key))
			continue;
		if (p != text + 1)
			*p++ = ',';
		*p++ = '[';
		p = json_string(p, h->key);
		*p++ = ',';
		p = json_string(p, h->value);
		*p++ = ']';
	}
	*p++ = ']';
	*p = '\0';
	return text;
}

/* evhttp frames a body by the first Content-Length alone, and reads
 * none at all for HEAD and TRACE. A proxy that frames the request
 * otherwise would see other requests on the connection than we do
 * (request smuggling): why, or NULL when the framing is clear. */
const char *
front_framing_error(struct evhttp_request *req)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	bool no_body = method == EVHTTP_REQ_HEAD || method == EVHTTP_REQ_TRACE;
	struct evkeyval *h;
	int lengths = 0;

	TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next) {
		/* Cheap first-letter test: this runs for every header. */
		char c = (char)(h->key[0] | 0x20);

		if (c == 'c' && ascii_equal_nocase(h->key, "content-length")) {
			if (++lengths > 1)
				return "more than one Content-Length header";
			if (no_body && strcmp(h->value, "0") != 0)
				return "a HEAD or TRACE request has no body";
		} else if (c == 't' && no_body &&
			   ascii_equal_nocase(h->key, "transfer-encoding")) {
			return "a HEAD or TRACE request has no body";
		}
	}
	return NULL;
}
