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
 * timeout. The read deadline starts at a request's first byte, seen by a
 * callback on the input buffer that is installed only while the
 * connection is idle (evhttp drains that buffer line by line, and a
 * callback costs something on every drain). One sweeper timer, ticking at
 * a quarter of the read timeout, closes connections past their deadline:
 * no timer per request, and a sender dripping bytes cannot extend it.
 */
#include "front/connections.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "log.h"
#include "util.h"

enum conn_state {
	CONN_IDLE,	/* between requests */
	CONN_READING,	/* some bytes of a request arrived */
	CONN_BUSY,	/* a complete request awaits its reply */
};

struct conn {
	struct conn_tracker *t;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;	/* once registered */
	struct evbuffer_cb_entry *input_cb;	/* while idle */
	struct conn *next_pending;
	struct conn *prev, *next;		/* registered ones */
	uint64_t serial;
	int fd;
	enum conn_state state;
	int64_t request_start_us;
};

struct conn_tracker {
	struct event_base *base;
	struct conn_limits limits;
	struct timeval idle_tv;		/* bufferevent inactivity timeouts */
	struct timeval write_tv;
	struct event *register_event;
	struct event *sweeper;
	struct conn *pending;		/* accepted, not yet registered */
	struct conn *registered;	/* list head */
	struct conn **by_fd;		/* registered, indexed by socket */
	size_t by_fd_len;
	struct evconnlistener **listeners;
	size_t n_listeners;
	size_t open;
	size_t busy;
	uint64_t next_serial;
	int64_t limit_warned_us;
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

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
		     void *arg);

/* The first-byte callback, present only while the connection is idle. */
static void
watch_input(struct conn *c, bool on)
{
	struct evbuffer *input = bufferevent_get_input(c->bev);

	if (on && c->input_cb == NULL) {
		c->input_cb = evbuffer_add_cb(input, on_input, c);
	} else if (!on && c->input_cb != NULL) {
		evbuffer_remove_cb_entry(input, c->input_cb);
		c->input_cb = NULL;
	}
}

static void
conn_free(struct conn *c)
{
	struct conn_tracker *t = c->t;

	set_state(c, CONN_IDLE);
	watch_input(c, false);
	if (c->fd >= 0 && (size_t)c->fd < t->by_fd_len &&
	    t->by_fd[c->fd] == c) {
		t->by_fd[c->fd] = NULL;
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			t->registered = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
	}
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

/* Close connections whose request has taken longer than read-timeout. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct conn_tracker *t = arg;
	int64_t now = now_monotonic_us();
	struct conn *c = t->registered;

	while (c != NULL) {
		struct conn *next = c->next;

		if (c->state == CONN_READING &&
		    now - c->request_start_us >= t->limits.read_timeout_us) {
			struct log_field fields[] = {
				LOG_INT("connection", (int64_t)c->serial),
				LOG_MILLIS("timeout_ms",
					   t->limits.read_timeout_us),
			};

			log_fields(WHR_LOG_INFO,
				   "request not received in time (read-timeout); closing the connection",
				   fields, ARRAY_LENGTH(fields));
			/* Skip on_close's own line: this one says why. */
			set_state(c, CONN_IDLE);
			/* Calls on_close, which frees c. */
			evhttp_connection_free(c->evcon);
		}
		c = next;
	}
}

static void
start_request(struct conn *c)
{
	watch_input(c, false);
	set_state(c, CONN_READING);
	c->request_start_us = now_monotonic_us();
}

static void register_pending(struct conn_tracker *t);

static void
on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;

	if (info->n_added == 0 || c->state != CONN_IDLE)
		return;
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
	watch_input(c, true);
	if (c->input_cb == NULL || index_by_fd(t, c) < 0) {
		/* Without its hooks the connection cannot be governed. */
		whr_log(WHR_LOG_ERROR, "out of memory: closing a new connection");
		bufferevent_decref(c->bev);
		evhttp_connection_set_closecb(c->evcon, on_close, c);
		evhttp_connection_free(c->evcon);
		return;
	}
	c->next = t->registered;
	if (c->next != NULL)
		c->next->prev = c;
	t->registered = c;
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
	bufferevent_set_timeouts(bev, &t->idle_tv, &t->write_tv);
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
		int64_t now = now_monotonic_us();

		t->paused = true;
		set_listeners(t, false);
		/* Once a minute at most: at the limit this happens with every
		 * connection that closes and is replaced. */
		if (t->limit_warned_us == 0 ||
		    now - t->limit_warned_us >= 60 * 1000000LL) {
			t->limit_warned_us = now;
			whr_log(WHR_LOG_WARN,
				"max-connections (%u) reached: not accepting until one closes",
				t->limits.max_connections);
		}
	}
	return bev;
}

struct conn_tracker *
conn_tracker_new(struct event_base *base, struct evhttp *http,
		 const struct conn_limits *limits)
{
	struct conn_tracker *t = calloc(1, sizeof(*t));
	struct timeval tick;

	if (t == NULL)
		return NULL;
	t->base = base;
	t->limits = *limits;
	t->idle_tv = to_timeval(limits->idle_timeout_us);
	t->write_tv = to_timeval(limits->read_timeout_us);

	t->register_event = event_new(base, -1, 0, on_register, t);
	t->sweeper = event_new(base, -1, EV_PERSIST, on_sweep, t);
	if (t->register_event == NULL || t->sweeper == NULL) {
		conn_tracker_free(t);
		return NULL;
	}
	/* A quarter of the timeout: requests are cut between 1 and 1.25
	 * times read-timeout after their first byte. */
	tick = to_timeval(limits->read_timeout_us / 4 > 1000000
				  ? 1000000
				  : limits->read_timeout_us / 4);
	if (event_add(t->sweeper, &tick) < 0) {
		conn_tracker_free(t);
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
	if (t->register_event != NULL)
		event_free(t->register_event);
	if (t->sweeper != NULL)
		event_free(t->sweeper);
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

/* The reply has been written out (evhttp calls this only while the
 * connection lives; a connection that dies first is freed by on_close). */
static void
on_reply_written(struct evhttp_request *req, void *arg)
{
	struct conn *c = arg;

	set_state(c, CONN_IDLE);
	/* A pipelined next request may already be waiting. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		start_request(c);
	else
		watch_input(c, true);
}

int64_t
conn_request_received(struct conn_tracker *t, struct evhttp_request *req)
{
	struct conn *c = conn_of_request(t, req);
	int64_t start;

	if (c == NULL)
		return now_monotonic_us();
	watch_input(c, false);
	start = c->state == CONN_READING ? c->request_start_us
					 : now_monotonic_us();
	/* Busy until the reply is written: a graceful shutdown waits. */
	set_state(c, CONN_BUSY);
	evhttp_request_set_on_complete_cb(req, on_reply_written, c);
	return start;
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
