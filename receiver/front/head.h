/*
 * A request's head (its request line and header fields) as it came on
 * the wire, read before evhttp reads it: where it ends, what whr decides
 * on before the body (the framing, Host, ms-signature, X-Forwarded-For),
 * and whether it is framed one way only (RFC 9112). evhttp is lenient
 * where a proxy in front may not be: it takes "Content-Length : 5" for a
 * header of another name and "+5" for a length. Pure code over bytes,
 * no I/O; a unit of the front, for connections.c, front.c and tests.
 */
#ifndef WHR_RECEIVER_HEAD_H
#define WHR_RECEIVER_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Finding the end of a head in bytes that arrive piece by piece: lines
 * end with LF, a CR before it is not part of the line, and the first
 * empty line ends the head (evbuffer's EVBUFFER_EOL_CRLF, as evhttp
 * reads it). */
struct head_scan {
	size_t len;		/* bytes scanned so far */
	unsigned char state;
};

void head_scan_init(struct head_scan *s);
/* Scan the next @p n bytes: true when the head ended in them, with
 * s->len its length (the bytes after it are not scanned). */
bool head_scan_feed(struct head_scan *s, const char *p, size_t n);

struct head_span {
	const char *p;		/* into the head's text; not NUL-ended */
	size_t len;
};

/* X-Forwarded-For fields kept: the last ones, whose right ends name the
 * nearest hops. */
#define HEAD_FORWARDED_MAX 8

struct http_head {
	struct head_span method;
	struct head_span target;	/* as sent: path and query */
	int major, minor;		/* HTTP version */
	int64_t content_length;		/* -1: none */
	bool chunked;
	size_t n_signatures;		/* ms-signature fields */
	struct head_span signature;	/* the first one's value, trimmed */
	struct head_span forwarded[HEAD_FORWARDED_MAX];	/* in order */
	size_t n_forwarded;
	const char *error;		/* why it is refused with 400, or
					 * NULL */
};

/* Read the head in @p text, @p len bytes ending with its empty line (as
 * head_scan_feed() found it). When it breaks the rules, h->error says
 * which, for a 400 and the log: a malformed request line, an HTTP
 * version other than 1.x, a line folded onto the one before, a field
 * name that is no token (whitespace before the colon among others), CR
 * or NUL in a value, a Content-Length that is not digits alone or given
 * twice, a Transfer-Encoding other than chunked or with a
 * Content-Length, an HTTP/1.1 request without exactly one Host, a HEAD
 * or TRACE request with a body. */
void http_head_parse(const char *text, size_t len, struct http_head *h);

/* The first @p n bytes of a head, before it is whole: true when they
 * cannot start a request line (a method that is no token, a first line
 * that is no request line). What is not HTTP (TLS, say) is refused at
 * once, not after header-timeout. */
bool http_head_start_bad(const char *p, size_t n);

/* @p h's target up to its query, in @p len. */
const char *http_head_path(const struct http_head *h, size_t *len);

bool http_head_method_is(const struct http_head *h, const char *method);

#endif /* WHR_RECEIVER_HEAD_H */
