/*
 * Reading an HTTP/1.x response as it arrives (http-response.c), a unit of
 * the tools' HTTP client: the client feeds it what a connection brings,
 * and it fills a struct http_result. Only the client and its tests use
 * this header.
 */
#ifndef WHR_TOOLS_HTTP_RESPONSE_H
#define WHR_TOOLS_HTTP_RESPONSE_H

#include <stdbool.h>

#include "lib/http.h"

struct evbuffer;

enum http_parse {
	HTTP_PARSE_MORE,	/* needs more bytes */
	HTTP_PARSE_INTERIM,	/* a 1xx was read (res->interim_status):
				 * call again for the final answer */
	HTTP_PARSE_DONE,	/* a whole final response */
	HTTP_PARSE_ERROR,	/* not HTTP: res->detail says why */
};

struct http_parser;

/* A parser that reads one response into @p res, which must outlive it
 * (the answer to a HEAD request when @p head_request: it has no body).
 * NULL when out of memory. */
struct http_parser *http_parser_new(struct http_result *res,
				    bool head_request);
/* NULL is a no-op. */
void http_parser_free(struct http_parser *p);

/* Consume what it can of @p in into the result (status, headers, body). */
enum http_parse http_parser_feed(struct http_parser *p, struct evbuffer *in);
/* The connection ended: HTTP_PARSE_DONE when a body read to the end of
 * the connection is complete, HTTP_PARSE_ERROR (with res->detail)
 * otherwise. */
enum http_parse http_parser_eof(struct http_parser *p);
/* Has a byte of a response been read? */
bool http_parser_started(const struct http_parser *p);

#endif /* WHR_TOOLS_HTTP_RESPONSE_H */
