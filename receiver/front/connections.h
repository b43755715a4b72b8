/*
 * Connection accounting for the HTTP front: the limit on open
 * connections, the per-request read deadline and the keep-alive idle
 * timeout. libevent 2.1's evhttp has none of these (2.2 adds some), so
 * they are built on its bufferevent and close-callback hooks.
 */
#ifndef WHR_RECEIVER_CONNECTIONS_H
#define WHR_RECEIVER_CONNECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct evconnlistener;

struct conn_limits {
	unsigned max_connections;
	int64_t read_timeout_us;	/* first byte to complete request */
	int64_t idle_timeout_us;	/* no bytes between requests */
};

struct conn_tracker;

/* Installs itself as @p http's bufferevent factory. */
struct conn_tracker *conn_tracker_new(struct event_base *base,
				      struct evhttp *http,
				      const struct conn_limits *limits);
/* Free after evhttp_free(), whose connection closes it still counts. */
void conn_tracker_free(struct conn_tracker *t);

/* Listeners to pause while the limit is reached. */
int conn_tracker_add_listener(struct conn_tracker *t,
			      struct evconnlistener *listener);
/* The listeners are about to be closed (shutdown): never touch them
 * again. */
void conn_tracker_forget_listeners(struct conn_tracker *t);

/* A complete request arrived: it is busy until its reply is written out
 * (whenever that is). Returns when its first byte arrived (monotonic
 * microseconds), for the request's duration. */
int64_t conn_request_received(struct conn_tracker *t,
			      struct evhttp_request *req);

/* Connections open, and those reading or processing a request. */
size_t conn_tracker_open(const struct conn_tracker *t);
size_t conn_tracker_busy(const struct conn_tracker *t);

#endif /* WHR_RECEIVER_CONNECTIONS_H */
