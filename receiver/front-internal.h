/*
 * What front.c (requests) and front-listen.c (listening sockets) share.
 */
#ifndef WHR_FRONT_INTERNAL_H
#define WHR_FRONT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "front-private.h"

struct front {
	struct whr_receiver *r;
	struct event_base *base;
	struct evhttp *http;
	struct conn_tracker *conns;
	struct evhttp_bound_socket **bound;
	size_t n_bound;
	bool stopping;
};

#endif /* WHR_FRONT_INTERNAL_H */
