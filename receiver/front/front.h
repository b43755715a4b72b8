/*
 * The HTTP front: the only code that knows evhttp. It routes requests,
 * applies the limits, hands webhook requests to webhook.c, sends the
 * answer and writes the per-request log line.
 */
#ifndef WHR_RECEIVER_FRONT_H
#define WHR_RECEIVER_FRONT_H

#include <stddef.h>

struct config;
struct event_base;
struct evhttp_request;
struct front;
struct inbox;
struct metrics;
struct netaddr;
struct secret_store;

/* A front on @p base with the limits of @p c, that checks requests with
 * the keys *@p secrets points to when each is checked (a reload of the
 * secrets puts another store there), hands deliveries to @p inbox,
 * counts what it answers in @p metrics (may be NULL) and serves them at
 * /metrics. It borrows all five until front_free(). NULL when out of
 * memory. */
struct front *front_new(const struct config *c, struct event_base *base,
			struct inbox *inbox,
			const struct secret_store *const *secrets,
			struct metrics *metrics);
void front_free(struct front *f);

/* Bind every address of the settings' list, then the admin address
 * (logging each, with the port chosen for port 0). Returns 0 or a
 * negative errno (logged). */
int front_listen(struct front *f);

/* Close the listening sockets; connections already open carry on, each
 * answered with Connection: close. */
void front_stop_accepting(struct front *f);

/* Requests being read or processed. */
size_t front_busy(const struct front *f);

/* The client that sent @p req, for the log, metrics and limits: its
 * connection's peer, or, when that is a trusted proxy (--trusted-proxy),
 * the rightmost address in X-Forwarded-For that is not one (what the
 * nearest untrusted hop was seen as; the addresses left of it are that
 * hop's word). Read with the request's head, kept until the next request
 * on the connection. 0, or -ENOENT when the connection is gone. */
int front_request_client(const struct front *f, struct evhttp_request *req,
			 struct netaddr *client);

#endif /* WHR_RECEIVER_FRONT_H */
