/*
 * The connections of the HTTP front, governed on top of evhttp (libevent
 * 2.1 has none of this; 2.2 some): the connection table and its limits
 * (in all, per client, file descriptors), each connection's deadlines,
 * its input bounded while whr does not read it, each request's head
 * read and checked before evhttp acts on it, and the memory budget of
 * the bodies being read. Built on evhttp's bufferevent and close hooks.
 */
#ifndef WHR_RECEIVER_CONNECTIONS_H
#define WHR_RECEIVER_CONNECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

struct event_base;
struct evhttp;
struct evhttp_request;
struct evconnlistener;
struct http_head;

struct conn_limits {
	unsigned max_connections;
	unsigned max_per_client;	/* from one peer address */
	const struct cidr *trusted;	/* proxies: no per-client limit,
					 * their X-Forwarded-For believed */
	size_t n_trusted;
	size_t max_header_size;		/* request line and headers */
	size_t max_body;
	size_t max_body_memory;		/* bodies in flight, together */
	size_t min_body_rate;		/* bytes a second; 0: none */
	int64_t header_timeout_us;	/* first byte to the end of the head */
	int64_t read_timeout_us;	/* first byte to complete request */
	int64_t write_timeout_us;	/* an answer, from its start */
	int64_t idle_timeout_us;	/* no bytes between requests */
};

/* A refusal decided from a request's head, answered at once: the
 * connection is closed after it, the body never read. */
struct head_verdict {
	int status;			/* 0: go on */
	const char *message;		/* one line */
	char message_buf[192];
	unsigned retry_after;		/* seconds, for Retry-After; 0: none */
	const char *allow;		/* for Allow (a 405); NULL: none */
};

/* What the tracker tells of a request it answers itself. */
struct head_answer {
	int fd;				/* to write the answer on */
	const struct http_head *head;	/* NULL: none could be read */
	const struct head_verdict *verdict;
	int64_t start_us;		/* its first byte (monotonic) */
	const char *peer;		/* "ADDRESS:PORT" */
	const struct netaddr *client;
	const struct netaddr *peer_address;
};

struct conn_hooks {
	/* A request's head came whole and well formed, from @p client
	 * (see conn_request_client()): may the body be read? Set @p v's
	 * status to refuse it. */
	void (*head)(void *arg, const struct http_head *h,
		     const struct netaddr *client, struct head_verdict *v);
	/* Write the refusal @p a on its socket, and its log line. */
	void (*answer)(void *arg, const struct head_answer *a);
	void *arg;
};

struct conn_tracker;

/* Installs itself as @p http's bufferevent factory. @p limits and
 * @p hooks are copied; limits->trusted is borrowed. */
struct conn_tracker *conn_tracker_new(struct event_base *base,
				      struct evhttp *http,
				      const struct conn_limits *limits,
				      const struct conn_hooks *hooks);
/* Free after evhttp_free(), whose connection closes it still counts. */
void conn_tracker_free(struct conn_tracker *t);

/* How many connections fit the descriptors this process may open: the
 * soft RLIMIT_NOFILE is raised to the hard one first, and what whr holds
 * already, @p n_listeners and a margin for handlers are kept aside. Says
 * so once when fewer than @p wanted fit. */
unsigned conn_fit_descriptors(unsigned wanted, size_t n_listeners);

/* Listeners to pause while the table is full or descriptors run out. */
int conn_tracker_add_listener(struct conn_tracker *t,
			      struct evconnlistener *listener);
/* The listeners are about to be closed (shutdown): never touch them
 * again. */
void conn_tracker_forget_listeners(struct conn_tracker *t);

/* A complete request arrived: it is busy until its answer is written out
 * (whenever that is). Returns when its first byte arrived (monotonic
 * microseconds), for the request's duration. */
int64_t conn_request_received(struct conn_tracker *t,
			      struct evhttp_request *req);
/* Its answer starts: it must be taken within write-timeout. */
void conn_answer_started(struct conn_tracker *t, struct evhttp_request *req);

/* The client of @p req (see front_request_client()), its connection's
 * peer as "ADDRESS:PORT" (borrowed until the connection closes), and
 * whether they differ. 0, or -ENOENT when the connection is gone or
 * unknown. */
int conn_request_client(struct conn_tracker *t, struct evhttp_request *req,
			struct netaddr *client, const char **peer,
			bool *proxied);

/* Connections open, and those reading or processing a request. */
size_t conn_tracker_open(const struct conn_tracker *t);
size_t conn_tracker_busy(const struct conn_tracker *t);

#endif /* WHR_RECEIVER_CONNECTIONS_H */
