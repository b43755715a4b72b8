/*
 * Reading an HTTP/1.x response as it arrives: status line, headers, and
 * a body framed by Content-Length, chunked, or the end of the connection
 * (RFC 9112 §6.3). Also what a struct http_result holds, and escaping
 * received text for display.
 */
#include "lib/http-response.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "lib/http.h"
#include "lib/utf8.h"

/* Longest response head (status line and headers) accepted. */
#define HTTP_HEAD_MAX (64 * 1024)

enum {
	S_STATUS,
	S_HEADERS,
	S_LENGTH,		/* Content-Length bytes to go */
	S_CHUNK_SIZE,
	S_CHUNK_DATA,
	S_CHUNK_END,		/* the CRLF after a chunk */
	S_TRAILERS,
	S_UNTIL_EOF,
	S_DONE,
};

/* ---- results and display -------------------------------------------- */

const char *
http_result_header(const struct http_result *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n_headers; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	}
	return NULL;
}

const char *
http_error_name(enum http_error error)
{
	switch (error) {
	case HTTP_OK:		return "ok";
	case HTTP_ERR_DNS:	return "DNS failure";
	case HTTP_ERR_REFUSED:	return "connection refused";
	case HTTP_ERR_CONNECT:	return "connection failed";
	case HTTP_ERR_TIMEOUT:	return "timeout";
	case HTTP_ERR_TLS:	return "TLS error";
	case HTTP_ERR_CLOSED:	return "connection closed";
	case HTTP_ERR_PROTOCOL:	return "not an HTTP response";
	case HTTP_ERR_INTERNAL:	return "internal error";
	}
	return "error";
}

static void
free_headers(struct http_result *r)
{
	size_t i;

	for (i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	r->headers = NULL;
	r->n_headers = 0;
}

void
http_result_finish(struct http_result *r)
{
	free_headers(r);
	free(r->reason);
	free(r->body);
	free(r->request_head);
	memset(r, 0, sizeof(*r));
}

void
http_escape(char *out, size_t out_size, const void *data, size_t len,
	    size_t max, bool quote)
{
	const unsigned char *s = data;
	size_t n = 0;
	size_t i = 0;

	if (out_size == 0)
		return;
	while (i < len && i < max) {
		char piece[8];
		size_t plen;
		size_t u = s[i] >= 0x80 ? utf8_next(s + i, len - i, NULL) : 0;

		if (u > 0) {
			if (i + u > max)
				break;
			memcpy(piece, s + i, u);
			plen = u;
		} else if (s[i] == '\r') {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\r");
		} else if (s[i] == '\n') {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\n");
		} else if (s[i] == '\t') {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\t");
		} else if (s[i] == '\\' || (quote && s[i] == '"')) {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\%c",
						s[i]);
		} else if (s[i] < 0x20 || s[i] >= 0x7f) {
			plen = (size_t)snprintf(piece, sizeof(piece),
						"\\x%02x", s[i]);
		} else {
			piece[0] = (char)s[i];
			plen = 1;
		}
		if (n + plen + 4 > out_size)
			break;
		memcpy(out + n, piece, plen);
		n += plen;
		i += u > 0 ? u : 1;
	}
	if (i < len && n + 4 <= out_size) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* ---- the parser ---------------------------------------------------- */

struct http_parser {
	int state;
	bool no_body;		/* the answer to a HEAD request */
	bool started;		/* a byte of a response was read */
	size_t head_size;	/* bytes of the current head so far */
	uint64_t left;		/* of the body or of the current chunk */
	struct http_result *res;
};

struct http_parser *
http_parser_new(struct http_result *res, bool head_request)
{
	struct http_parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->state = S_STATUS;
	p->no_body = head_request;
	p->res = res;
	return p;
}

void
http_parser_free(struct http_parser *p)
{
	free(p);
}

bool
http_parser_started(const struct http_parser *p)
{
	return p->started;
}

static enum http_parse
fail(struct http_parser *p, const char *what, const char *text)
{
	char shown[96];

	if (text != NULL) {
		http_escape(shown, sizeof(shown), text, strlen(text), 60,
			    true);
		snprintf(p->res->detail, sizeof(p->res->detail),
			 "%s: \"%s\"", what, shown);
	} else {
		snprintf(p->res->detail, sizeof(p->res->detail), "%s", what);
	}
	return HTTP_PARSE_ERROR;
}

/* The next line of the head, or NULL (*error set when it is too long). */
static char *
read_line(struct http_parser *p, struct evbuffer *in, bool *error)
{
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);

	*error = false;
	if (line == NULL) {
		if (p->head_size + evbuffer_get_length(in) > HTTP_HEAD_MAX)
			*error = true;
		return NULL;
	}
	p->head_size += n + 2;
	if (p->head_size > HTTP_HEAD_MAX || strlen(line) != n) {
		free(line);
		*error = true;
		return NULL;
	}
	return line;
}

static bool
digit(char c)
{
	return c >= '0' && c <= '9';
}

static enum http_parse
parse_status(struct http_parser *p, char *line)
{
	struct http_result *r = p->res;
	enum http_parse rc = HTTP_PARSE_MORE;

	if (strncmp(line, "HTTP/", 5) != 0 || !digit(line[5]) ||
	    line[6] != '.' || !digit(line[7]) || line[8] != ' ' ||
	    !digit(line[9]) || !digit(line[10]) || !digit(line[11]) ||
	    (line[12] != ' ' && line[12] != '\0')) {
		rc = fail(p, "the answer is not HTTP/1.x; it starts with",
			  line);
		goto out;
	}
	memcpy(r->version, line, 8);
	r->version[8] = '\0';
	r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 +
		    (line[11] - '0');
	free(r->reason);
	r->reason = strdup(line[12] == ' ' ? line + 13 : "");
	if (r->reason == NULL)
		rc = fail(p, "out of memory", NULL);
	else
		p->state = S_HEADERS;
out:
	free(line);
	return rc;
}

static enum http_parse
add_header(struct http_parser *p, char *line)
{
	struct http_result *r = p->res;
	struct http_response_header *grown;
	char *colon;
	char *value;
	size_t end;

	if ((line[0] == ' ' || line[0] == '\t') && r->n_headers > 0) {
		/* obs-fold: a continuation of the previous value */
		char *prev = r->headers[r->n_headers - 1].value;
		char *joined = malloc(strlen(prev) + strlen(line) + 2);

		if (joined == NULL)
			return fail(p, "out of memory", NULL);
		sprintf(joined, "%s %s", prev, line + strspn(line, " \t"));
		free(prev);
		r->headers[r->n_headers - 1].value = joined;
		return HTTP_PARSE_MORE;
	}
	colon = strchr(line, ':');
	if (colon == NULL || colon == line)
		return fail(p, "a response header line without a name",
			    line);
	*colon = '\0';
	value = colon + 1 + strspn(colon + 1, " \t");
	end = strlen(value);
	while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\t'))
		value[--end] = '\0';
	grown = realloc(r->headers, (r->n_headers + 1) * sizeof(*grown));
	if (grown == NULL)
		return fail(p, "out of memory", NULL);
	r->headers = grown;
	grown[r->n_headers].name = strdup(line);
	grown[r->n_headers].value = strdup(value);
	r->n_headers++;
	if (grown[r->n_headers - 1].name == NULL ||
	    grown[r->n_headers - 1].value == NULL)
		return fail(p, "out of memory", NULL);
	return HTTP_PARSE_MORE;
}

/* Does the comma-separated list @p list end with @p token? */
static bool
last_token_is(const char *list, const char *token)
{
	const char *last = strrchr(list, ',');
	size_t len;

	last = last != NULL ? last + 1 : list;
	last += strspn(last, " \t");
	len = strcspn(last, " \t;");
	return len == strlen(token) && strncasecmp(last, token, len) == 0;
}

/* The head is complete: an interim answer, or how the body is framed. */
static enum http_parse
head_done(struct http_parser *p)
{
	struct http_result *r = p->res;
	const char *te = http_result_header(r, "Transfer-Encoding");
	bool have_length = false;
	uint64_t length = 0;
	size_t i;

	p->head_size = 0;
	if (r->status >= 100 && r->status < 200) {
		if (r->status == 101)
			return fail(p, "101 Switching Protocols, which was "
				    "not asked for", NULL);
		r->interim_status = r->status;
		r->status = 0;
		free_headers(r);
		p->state = S_STATUS;
		return HTTP_PARSE_INTERIM;
	}
	free(r->body);
	r->body = calloc(1, 1);
	if (r->body == NULL)
		return fail(p, "out of memory", NULL);
	for (i = 0; i < r->n_headers; i++) {
		const char *v = r->headers[i].value;
		char *end;
		unsigned long long n;

		if (strcasecmp(r->headers[i].name, "Content-Length") != 0)
			continue;
		errno = 0;
		n = strtoull(v, &end, 10);
		if (!digit(v[0]) || *end != '\0' || errno != 0 ||
		    (have_length && n != length))
			return fail(p, "a bad Content-Length", v);
		have_length = true;
		length = n;
	}
	if (p->no_body || r->status == 204 || r->status == 304) {
		p->state = S_DONE;
	} else if (te != NULL) {
		p->state = last_token_is(te, "chunked") ? S_CHUNK_SIZE :
			   S_UNTIL_EOF;
	} else if (have_length) {
		p->left = length;
		p->state = length > 0 ? S_LENGTH : S_DONE;
	} else {
		p->state = S_UNTIL_EOF;
	}
	return p->state == S_DONE ? HTTP_PARSE_DONE : HTTP_PARSE_MORE;
}

/* Move up to @p n body bytes from @p in into the result. */
static enum http_parse
take_body(struct http_parser *p, struct evbuffer *in, size_t n)
{
	struct http_result *r = p->res;
	size_t keep = 0;

	if (r->body_len < HTTP_BODY_KEEP) {
		char *grown;

		keep = HTTP_BODY_KEEP - r->body_len;
		keep = keep < n ? keep : n;
		grown = realloc(r->body, r->body_len + keep + 1);
		if (grown == NULL)
			return fail(p, "out of memory", NULL);
		r->body = grown;
		evbuffer_remove(in, r->body + r->body_len, keep);
		r->body_len += keep;
		r->body[r->body_len] = '\0';
	}
	evbuffer_drain(in, n - keep);
	r->body_total += n;
	return HTTP_PARSE_MORE;
}

static enum http_parse
chunk_size(struct http_parser *p, char *line)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(line, &end, 16);
	end += strspn(end, " \t");
	if (!((line[0] >= '0' && line[0] <= '9') ||
	      (line[0] >= 'a' && line[0] <= 'f') ||
	      (line[0] >= 'A' && line[0] <= 'F')) || errno != 0 ||
	    (*end != '\0' && *end != ';')) {
		enum http_parse rc = fail(p, "a bad chunk size line", line);

		free(line);
		return rc;
	}
	free(line);
	p->left = n;
	p->state = n > 0 ? S_CHUNK_DATA : S_TRAILERS;
	return HTTP_PARSE_MORE;
}

enum http_parse
http_parser_feed(struct http_parser *p, struct evbuffer *in)
{
	enum http_parse rc = HTTP_PARSE_MORE;

	if (evbuffer_get_length(in) > 0)
		p->started = true;
	while (rc == HTTP_PARSE_MORE && p->state != S_DONE) {
		size_t avail = evbuffer_get_length(in);
		bool too_long;
		char *line = NULL;

		switch (p->state) {
		case S_STATUS:
		case S_HEADERS:
		case S_CHUNK_SIZE:
		case S_CHUNK_END:
		case S_TRAILERS:
			line = read_line(p, in, &too_long);
			if (too_long)
				return fail(p, "response headers (or a chunk "
					    "line) longer than 64 KiB", NULL);
			if (line == NULL)
				return HTTP_PARSE_MORE;
			break;
		default:
			if (avail == 0)
				return HTTP_PARSE_MORE;
			break;
		}
		switch (p->state) {
		case S_STATUS:
			rc = parse_status(p, line);
			break;
		case S_HEADERS:
			if (line[0] == '\0')
				rc = head_done(p);
			else
				rc = add_header(p, line);
			free(line);
			break;
		case S_LENGTH:
		case S_CHUNK_DATA:
			rc = take_body(p, in, p->left < avail ?
				       (size_t)p->left : avail);
			p->left -= p->left < avail ? p->left : avail;
			if (p->left == 0)
				p->state = p->state == S_LENGTH ? S_DONE :
					   S_CHUNK_END;
			break;
		case S_UNTIL_EOF:
			rc = take_body(p, in, avail);
			break;
		case S_CHUNK_SIZE:
			p->head_size = 0;
			rc = chunk_size(p, line);
			break;
		case S_CHUNK_END:
			if (line[0] != '\0')
				rc = fail(p, "no line end after a chunk",
					  line);
			p->state = S_CHUNK_SIZE;
			free(line);
			break;
		case S_TRAILERS:
			if (line[0] == '\0')
				p->state = S_DONE;
			free(line);
			break;
		}
	}
	if (rc == HTTP_PARSE_MORE && p->state == S_DONE)
		rc = HTTP_PARSE_DONE;
	return rc;
}

enum http_parse
http_parser_eof(struct http_parser *p)
{
	struct http_result *r = p->res;

	switch (p->state) {
	case S_DONE:
	case S_UNTIL_EOF:
		p->state = S_DONE;
		return HTTP_PARSE_DONE;
	case S_STATUS:
	case S_HEADERS:
		/* S_STATUS after a byte: after a 100 Continue */
		if (p->state == S_STATUS && !p->started)
			return fail(p, "the server closed the connection "
				    "without answering", NULL);
		return fail(p, "the server closed the connection in the "
			    "middle of the response headers", NULL);
	case S_LENGTH:
		snprintf(r->detail, sizeof(r->detail),
			 "the server closed the connection after %llu of "
			 "%llu body bytes",
			 (unsigned long long)r->body_total,
			 (unsigned long long)(r->body_total + p->left));
		return HTTP_PARSE_ERROR;
	default:
		snprintf(r->detail, sizeof(r->detail),
			 "the server closed the connection in the middle "
			 "of a chunked body (%llu bytes received)",
			 (unsigned long long)r->body_total);
		return HTTP_PARSE_ERROR;
	}
}
