/*
 * What front.c reads in a request's headers: the signatures counted, the
 * framing checked, and the headers worth keeping with a delivery, as
 * JSON for the inbox.
 */
#include "front-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "webhook-private.h"
#include "whr-private.h"

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

/* evhttp frames a body by the first Content-Length alone. A proxy that
 * reads another one would see other requests on the connection than we
 * do (request smuggling). */
bool
front_content_length_repeated(struct evhttp_request *req)
{
	struct evkeyval *h;
	int n = 0;

	TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next) {
		if ((h->key[0] | 0x20) == 'c' &&
		    ascii_equal_nocase(h->key, "content-length") && ++n > 1)
			return true;
	}
	return false;
}
