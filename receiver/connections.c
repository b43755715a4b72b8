/*
 * Connection accounting on top of evhttp (libevent 2.1).
 *
 * evhttp asks us for each new connection's bufferevent (evhttp_set_bevcb).
 * We count the connection there, and pause the listeners at the limit. To
 * learn when it closes we need its evhttp_connection, which evhttp makes
 * right after: a deferred callback reads it from the bufferevent's
 * callback argument (evhttp sets it to the connection) and registers a
 * close callback. A reference on the bufferevent keeps that read safe even
 * if the connection died in between: freeing clears its callbacks.
 *
 * Timeouts: the bufferevent's own inactivity timeouts give the idle
 * timeout; a timer started by the first byte of a request gives the read
 * deadline, which a slow sender dripping bytes cannot extend.
 */
#include "connections-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "log-private.h"
#include "whr-private.h"

enum conn_state {
	CONN_IDLE,	/* between requests */
	CONN_READING,	/* some bytes of a request arrived */
	CONN_BUSY,	/* a complete request awaits its reply */
};

struct conn {
	struct conn_tracker *t;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;	/* once registered */
	struct evbuffer_cb_entry *input_cb;
	struct event *deadline;
	struct conn *next_pending;
	uint64_t serial;
	int fd;
	enum conn_state state;
	int64_t request_start_us;
};

struct conn_tracker {
	struct event_base *base;
	struct conn_limits limits;
	struct event *register_event;
	struct conn *pending;		/* accepted, not yet registered */
	struct conn **by_fd;		/* registered, indexed by socket */
	size_t by_fd_len;
	struct evconnlistener **listeners;
	size_t n_listeners;
	size_t open;
	size_t busy;
	uint64_t next_serial;
	bool paused;
	bool stopped;
};

static struct timeval
to_timeval(int64_t us)
{
	struct timeval tv = {
		.tv_sec = (time_t)(us / 1000000),
		.tv_usec = (suseconds_t)(us % 1000000),
	};

	return tv;
}

static void
set_listeners(struct conn_tracker *t, bool enable)
{
	size_t i;

	for (i = 0; i < t->n_listeners; i++) {
		if (enable)
			evconnlistener_enable(t->listeners[i]);
		else
			evconnlistener_disable(t->listeners[i]);
	}
}

static void
set_state(struct conn *c, enum conn_state state)
{
	bool was_busy = c->state != CONN_IDLE;
	bool is_busy = state != CONN_IDLE;

	if (was_busy && !is_busy)
		c->t->busy--;
	else if (!was_busy && is_busy)
		c->t->busy++;
	c->state = state;
}

static void
conn_free(struct conn *c)
{
	struct conn_tracker *t = c->t;

	set_state(c, CONN_IDLE);
	if (c->input_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev),
					 c->input_cb);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->fd >= 0 && (size_t)c->fd < t->by_fd_len &&
	    t->by_fd[c->fd] == c)
		t->by_fd[c->fd] = NULL;
	free(c);

	t->open--;
	if (t->paused && !t->stopped &&
	    t->open < t->limits.max_connections) {
		t->paused = false;
		set_listeners(t, true);
	}
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;

	if (c->state == CONN_READING) {
		/* evhttp answers malformed or oversized requests itself
		 * (400, 413) and then closes; this is their log line. */
		struct log_field fields[] = {
			LOG_INT("connection", (int64_t)c->serial),
			LOG_MILLIS("duration_ms",
				   now_monotonic_us() - c->request_start_us),
		};

		log_fields(WHR_LOG_INFO,
			   "connection closed during a request (client gone, or refused by the HTTP parser: malformed, headers too large, body over the limit)",
			   fields, ARRAY_LENGTH(fields));
	}
	conn_free(c);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct log_field fields[] = {
		LOG_INT("connection", (int64_t)c->serial),
		LOG_MILLIS("timeout_ms", c->t->limits.read_timeout_us),
	};

	log_fields(WHR_LOG_INFO,
		   "request not received in time (read-timeout); closing the connection",
		   fields, ARRAY_LENGTH(fields));
	/* Calls on_close, which frees @p c. */
	evhttp_connection_free(c->evcon);
}

static void
start_request(struct conn *c)
{
	struct timeval tv = to_timeval(c->t->limits.read_timeout_us);

	set_state(c, CONN_READING);
	c->request_start_us = now_monotonic_us();
	event_add(c->deadline, &tv);
}

static void register_pending(struct conn_tracker *t);

static void
on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;

	if (info->n_added == 0 || c->state != CONN_IDLE)
		return;
	if (c->evcon == NULL)
		register_pending(c->t);
	if (c->evcon != NULL)
		start_request(c);
}

static int
index_by_fd(struct conn_tracker *t, struct conn *c)
{
	if ((size_t)c->fd >= t->by_fd_len) {
		size_t len = (size_t)c->fd + 64;
		struct conn **grown = realloc(t->by_fd, len * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		memset(grown + t->by_fd_len, 0,
		       (len - t->by_fd_len) * sizeof(*grown));
		t->by_fd = grown;
		t->by_fd_len = len;
	}
	t->by_fd[c->fd] = c;
	return 0;
}

static void
register_one(struct conn *c)
{
	struct conn_tracker *t = c->t;
	void *arg = NULL;

	bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
	c->fd = bufferevent_getfd(c->bev);
	if (arg == NULL || c->fd < 0) {
		/* Closed before we saw it. */
		bufferevent_decref(c->bev);
		c->fd = -1;
		conn_free(c);
		return;
	}
	c->evcon = arg;
	c->deadline = evtimer_new(t->base, on_deadline, c);
	c->input_cb = evbuffer_add_cb(bufferevent_get_input(c->bev),
				      on_input, c);
	if (c->deadline == NULL || c->input_cb == NULL ||
	    index_by_fd(t, c) < 0) {
		/* Without its hooks the connection cannot be governed. */
		whr_log(WHR_LOG_ERROR, "out of memory: closing a new connection");
		bufferevent_decref(c->bev);
		evhttp_connection_set_closecb(c->evcon, on_close, c);
		evhttp_connection_free(c->evcon);
		return;
	}
	evhttp_connection_set_closecb(c->evcon, on_close, c);
	bufferevent_decref(c->bev);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		start_request(c);
}

static void
register_pending(struct conn_tracker *t)
{
	while (t->pending != NULL) {
		struct conn *c = t->pending;

		t->pending = c->next_pending;
		c->next_pending = NULL;
		register_one(c);
	}
}

static void
on_register(evutil_socket_t fd, short what, void *arg)
{
	register_pending(arg);
}

static struct bufferevent *
make_bufferevent(struct event_base *base, void *arg)
{
	struct conn_tracker *t = arg;
	struct timeval idle = to_timeval(t->limits.idle_timeout_us);
	struct timeval write_tv = to_timeval(t->limits.read_timeout_us);
	struct bufferevent *bev;
	struct conn *c;

	bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	c = calloc(1, sizeof(*c));
	if (bev == NULL || c == NULL) {
		whr_log(WHR_LOG_ERROR, "out of memory accepting a connection");
		free(c);
		return bev;	/* NULL lets evhttp make its own */
	}
	/* Inactivity timeouts: reading (between requests and within one)
	 * and writing the reply to a client that does not read it. */
	bufferevent_set_timeouts(bev, &idle, &write_tv);
	bufferevent_incref(bev);

	c->t = t;
	c->bev = bev;
	c->fd = -1;
	c->serial = ++t->next_serial;
	c->next_pending = t->pending;
	t->pending = c;
	event_active(t->register_event, EV_TIMEOUT, 0);

	t->open++;
	if (t->open >= t->limits.max_connections && !t->paused) {
		t->paused = true;
		set_listeners(t, false);
		whr_log(WHR_LOG_WARN,
			"max-connections (%u) reached: not accepting until one closes",
			t->limits.max_connections);
	}
	return bev;
}

struct conn_tracker *
conn_tracker_new(struct event_base *base, struct evhttp *http,
		 const struct conn_limits *limits)
{
	struct conn_tracker *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->base = base;
	t->limits = *limits;
	t->register_event = event_new(base, -1, 0, on_register, t);
	if (t->register_event == NULL) {
		free(t);
		return NULL;
	}
	evhttp_set_bevcb(http, make_bufferevent, t);
	return t;
}

void
conn_tracker_free(struct conn_tracker *t)
{
	if (t == NULL)
		return;
	/* Connections evhttp already freed: drop our references. */
	while (t->pending != NULL) {
		struct conn *c = t->pending;

		t->pending = c->next_pending;
		bufferevent_decref(c->bev);
		free(c);
	}
	event_free(t->register_event);
	free(t->by_fd);
	free(t->listeners);
	free(t);
}

int
conn_tracker_add_listener(struct conn_tracker *t,
			  struct evconnlistener *listener)
{
	struct evconnlistener **grown =
		realloc(t->listeners, (t->n_listeners + 1) * sizeof(*grown));

	if (grown == NULL)
		return -ENOMEM;
	t->listeners = grown;
	t->listeners[t->n_listeners++] = listener;
	return 0;
}

void
conn_tracker_forget_listeners(struct conn_tracker *t)
{
	t->stopped = true;
	t->n_listeners = 0;
}

static struct conn *
conn_of_request(struct conn_tracker *t, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	int fd;

	if (evcon == NULL)
		return NULL;
	register_pending(t);
	bev = evhttp_connection_get_bufferevent(evcon);
	fd = bev != NULL ? bufferevent_getfd(bev) : -1;
	if (fd < 0 || (size_t)fd >= t->by_fd_len || t->by_fd[fd] == NULL ||
	    t->by_fd[fd]->evcon != evcon)
		return NULL;
	return t->by_fd[fd];
}

int64_t
conn_request_received(struct conn_tracker *t, struct evhttp_request *req,
		      struct conn_ticket *ticket)
{
	struct conn *c = conn_of_request(t, req);
	int64_t start;

	ticket->fd = -1;
	ticket->serial = 0;
	if (c == NULL)
		return now_monotonic_us();
	event_del(c->deadline);
	start = c->state == CONN_READING ? c->request_start_us
					 : now_monotonic_us();
	set_state(c, CONN_BUSY);
	ticket->fd = c->fd;
	ticket->serial = c->serial;
	return start;
}

void
conn_reply_sent(struct conn_tracker *t, const struct conn_ticket *ticket)
{
	struct conn *c;

	if (ticket->fd < 0 || (size_t)ticket->fd >= t->by_fd_len)
		return;
	c = t->by_fd[ticket->fd];
	if (c == NULL || c->serial != ticket->serial)
		return;
	set_state(c, CONN_IDLE);
	/* A pipelined next request may already be waiting. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		start_request(c);
}

size_t
conn_tracker_open(const struct conn_tracker *t)
{
	return t->open;
}

size_t
conn_tracker_busy(const struct conn_tracker *t)
{
	return t->busy;
}
