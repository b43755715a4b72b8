/*
 * What front.c (requests), front-headers.c (what is read in their
 * headers) and front-listen.c (listening sockets) share.
 */
#ifndef WHR_RECEIVER_FRONT_INTERNAL_H
#define WHR_RECEIVER_FRONT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "front/front.h"

struct front {
	struct whr_receiver *r;
	struct event_base *base;
	struct evhttp *http;
	struct conn_tracker *conns;
	struct evhttp_bound_socket **bound;
	size_t n_bound;
	bool stopping;
};

struct evhttp_request;
struct evkeyvalq;
struct webhook_request;

/* front-headers.c */
/* Count the ms-signature headers; keep the first one's value. */
void front_count_signatures(struct evkeyvalq *headers,
			    struct webhook_request *in);
/* The headers worth keeping (no credentials, nothing of the hop or the
 * framing) as [[name, value], ...], in their order; NULL when out of
 * memory. */
char *front_headers_json(struct evkeyvalq *headers);
/* Why the request's body cannot be framed as a proxy would frame it
 * (two Content-Length headers, a body on HEAD or TRACE), or NULL. */
const char *front_framing_error(struct evhttp_request *req);

#endif /* WHR_RECEIVER_FRONT_INTERNAL_H */
