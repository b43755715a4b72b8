/*
 * The connections of the HTTP front, on top of evhttp (libevent 2.1).
 *
 * evhttp asks us for each new connection's bufferevent (evhttp_set_bevcb).
 * We count the connection there, and pause the listeners when the table
 * is full. To learn when it closes we need its evhttp_connection, which
 * evhttp makes right after: a deferred callback reads it from the
 * bufferevent's callback argument (evhttp sets it to the connection) and
 * registers a close callback. A reference on the bufferevent keeps that
 * read safe even if the connection died in between: freeing clears its
 * callbacks. Registering also reads the peer's address, for the limit
 * per client.
 *
 * Each request's head is ours before it is evhttp's. The input buffer's
 * front is frozen (evbuffer_freeze) between requests, so that evhttp,
 * which reads line by line, finds no line; a callback on the buffer sees
 * every byte added, finds the head's end, and reads the head strictly
 * (head.c). Only then is the buffer thawed and the head left to evhttp,
 * whose read callback runs right after ours; or the request is refused
 * (a framing error, a body too large, a receiver id without a secret, a
 * bad ms-signature: front.c decides), answered on the socket directly,
 * and the connection drained and closed without evhttp ever acting on
 * it. A read watermark at max-header-size bounds what a head may make us
 * buffer, and reading stops altogether while a request is processed and
 * answered (evhttp 2.1 would go on reading into the buffer, unbounded,
 * while it writes an answer).
 *
 * Bodies take memory from a budget (max-body-memory), reserved when the
 * head is read: one that does not fit waits with its head frozen and its
 * input unread, and gets 503 when it waited too long.
 *
 * Deadlines: the bufferevent's own inactivity timeouts give the idle
 * timeout. Everything else is the sweeper's: one timer, ticking at a
 * quarter of the shortest deadline (a second at most), that walks the
 * connections: no timer per request, and a sender dripping bytes cannot
 * extend a deadline.
 */
#include "front/connections.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "front/head.h"
#include "log.h"
#include "util.h"

#define SECOND_US ((int64_t)1000000)

/* A connection has this long to start its request before a newcomer may
 * take its place in a full table: under a flood of connections, each
 * still gets a chance to send its request. Not much longer, or a good
 * client arriving as a flood fills the table waits about as long. */
#define EVICT_MIN_IDLE_US (SECOND_US * 8 / 10)
/* A refused connection is drained this long for the client to read the
 * answer (closing with unread input would reset the connection, and the
 * answer with it), then closed. */
#define LINGER_US (2 * SECOND_US)
/* A body waits this long for memory, then gets 503. */
#define BODY_WAIT_US (5 * SECOND_US)
/* min-body-rate applies after a body's first seconds, over windows. */
#define BODY_RATE_GRACE_US (10 * SECOND_US)
#define BODY_RATE_WINDOW_US (5 * SECOND_US)
/* A body takes its bytes as read and a contiguous copy to verify: twice
 * its size, and a little for the buffers' own structures. */
#define BODY_OVERHEAD 4096
/* Bodies up to this size may take the whole budget, larger ones three
 * quarters: those of many good senders still fit when large bodies hold
 * the rest. */
#define SMALL_BODY (64 * 1024)
/* A full table admits newcomers this many at a time: each makes room
 * when it is registered, on the next turn of the loop, and until then
 * holds a descriptor more. */
#define ADMIT_BATCH 8
/* After accept() failed for want of descriptors (or memory). */
#define ACCEPT_BACKOFF_US (SECOND_US / 4)
#define LIMIT_RESTORE_US (60 * SECOND_US)
/* Descriptors kept aside for whr itself besides those open at start:
 * handlers' commands and pipes, SQLite's files, plugins. */
#define FD_MARGIN 64
/* Descriptors left free when they ran out: a connection is accepted
 * before another makes room for it, and whr may need a file. */
#define FD_SPARE 8
/* Events an attacker can repeat at will are logged once a minute. */
#define NOTE_INTERVAL_US (60 * SECOND_US)

enum conn_state {
	CONN_NEW,	/* accepted, not yet registered */
	CONN_IDLE,	/* between requests: no byte of one yet */
	CONN_HEAD,	/* a request's head is arriving */
	CONN_WAITING,	/* its head is read; its body waits for memory */
	CONN_BODY,	/* its head is evhttp's; its body is being read */
	CONN_BUSY,	/* a complete request awaits its answer */
	CONN_WRITING,	/* its answer is being written */
	CONN_CLOSING,	/* refused: draining until closed */
};

struct conn {
	struct conn_tracker *t;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;	/* once registered */
	struct evbuffer_cb_entry *input_cb;
	TAILQ_ENTRY(conn) all;			/* registered ones */
	TAILQ_ENTRY(conn) queue;		/* idle or waiting */
	STAILQ_ENTRY(conn) pending;		/* not yet registered */
	uint64_t serial;
	int fd;
	enum conn_state state;
	bool counted;				/* in the peer table */
	bool quiet;				/* closed by us, said why */
	int64_t request_start_us;		/* first byte of a request */
	int64_t since_us;			/* entered its state */
	struct head_scan scan;
	int minor;				/* HTTP/1.minor */
	size_t reserved;			/* body memory taken */
	size_t wanted;				/* waiting for that much */
	uint64_t body_bytes;
	int64_t rate_mark_us;
	uint64_t rate_mark_bytes;
	struct netaddr peer;
	struct netaddr client;			/* of the current request */
	char peer_text[NETADDR_TEXT_MAX + 8];	/* "[ADDRESS]:PORT" */
};

TAILQ_HEAD(conn_list, conn);
STAILQ_HEAD(conn_stack, conn);

/* Connections per peer address: an open-addressing table. */
struct peer_slot {
	struct netaddr addr;		/* len 0: free */
	unsigned count;
};

/* A line an attacker could repeat: written once a minute at most, with
 * the number of times it was not. */
struct note {
	int64_t last_us;
	unsigned long unsaid;
};

struct conn_tracker {
	struct event_base *base;
	struct evhttp *http;
	struct conn_limits limits;
	struct conn_hooks hooks;
	unsigned limit;			/* max_connections, lowered while
					 * descriptors run short */
	struct timeval idle_tv;		/* bufferevent inactivity timeouts */
	struct timeval write_tv;
	struct event *register_event;
	struct event *sweeper;
	struct event *resume;		/* to accept again */
	struct conn_stack pending;	/* accepted, not yet registered */
	struct conn_list registered;
	struct conn_list idle;		/* longest idle first */
	struct conn_list waiting;	/* for body memory, first come first */
	struct conn **by_fd;		/* registered, indexed by socket */
	size_t by_fd_len;
	struct peer_slot *peers;
	size_t peers_cap;		/* a power of two */
	size_t peers_used;
	char *scratch;			/* a head spread over buffers */
	struct evconnlistener **listeners;
	size_t n_listeners;
	bool accepting;
	bool stopped;
	bool listed;			/* in trackers */
	int64_t backoff_until_us;	/* accept() failed */
	int64_t limit_lowered_us;
	size_t open;
	size_t busy;
	uint64_t next_serial;
	size_t body_memory;		/* reserved for bodies */
	size_t trim_released;		/* since the last malloc_trim() */
	size_t trim_closed;
	int64_t trim_us;
	struct note full_note, client_note, accept_note, memory_note;
	struct note head_time_note, read_time_note, write_time_note;
	struct note rate_note, gone_note;
	TAILQ_ENTRY(conn_tracker) trackers;
};

/* Every tracker, to find one from its listener: evhttp makes the
 * listener's callback argument its own, so the accept error callback is
 * given evhttp's, not ours. */
static TAILQ_HEAD(, conn_tracker) trackers = TAILQ_HEAD_INITIALIZER(trackers);
static pthread_mutex_t trackers_lock = PTHREAD_MUTEX_INITIALIZER;

static struct timeval
to_timeval(int64_t us)
{
	struct timeval tv = {
		.tv_sec = (time_t)(us / 1000000),
		.tv_usec = (suseconds_t)(us % 1000000),
	};

	return tv;
}

static bool
note_due(struct note *n, int64_t now)
{
	if (n->last_us != 0 && now - n->last_us < NOTE_INTERVAL_US) {
		n->unsaid++;
		return false;
	}
	n->last_us = now;
	return true;
}

/* What to add to a line of @p n: how many like it went unsaid. */
static const char *
unsaid(struct note *n, char *buf, size_t size)
{
	if (n->unsaid == 0)
		return "";
	snprintf(buf, size, " (and %lu more since the last such line)",
		 n->unsaid);
	n->unsaid = 0;
	return buf;
}

/* The same as a log field's value: NULL (no field) when none. */
static const char *
unsaid_field(struct note *n, char *buf, size_t size)
{
	if (n->unsaid == 0)
		return NULL;
	snprintf(buf, size, "%lu more since the last such line", n->unsaid);
	n->unsaid = 0;
	return buf;
}

/* ---- the peer table --------------------------------------------------- */

static struct peer_slot *
peer_find(struct conn_tracker *t, const struct netaddr *a)
{
	size_t mask = t->peers_cap - 1;
	size_t i;

	if (t->peers_cap == 0)
		return NULL;
	for (i = netaddr_hash(a) & mask; t->peers[i].addr.len != 0;
	     i = (i + 1) & mask) {
		if (netaddr_equal(&t->peers[i].addr, a))
			return &t->peers[i];
	}
	return &t->peers[i];	/* where it would go */
}

static int
peers_grow(struct conn_tracker *t)
{
	size_t cap = t->peers_cap != 0 ? t->peers_cap * 2 : 64;
	struct peer_slot *old = t->peers;
	size_t old_cap = t->peers_cap;
	size_t i;

	t->peers = calloc(cap, sizeof(*t->peers));
	if (t->peers == NULL) {
		t->peers = old;
		return -ENOMEM;
	}
	t->peers_cap = cap;
	for (i = 0; i < old_cap; i++) {
		if (old[i].addr.len != 0)
			*peer_find(t, &old[i].addr) = old[i];
	}
	free(old);
	return 0;
}

/* The slot of @p a, added with a count of 0 when it has none; NULL when
 * out of memory. */
static struct peer_slot *
peer_get(struct conn_tracker *t, const struct netaddr *peer)
{
	struct netaddr block;
	const struct netaddr *a = &block;
	struct peer_slot *p;

	/* Counted by the block a client may take addresses from. */
	netaddr_client_block(peer, &block);
	if ((t->peers_used + 1) * 2 > t->peers_cap && peers_grow(t) < 0)
		return NULL;
	p = peer_find(t, a);
	if (p->addr.len == 0) {
		p->addr = *a;
		p->count = 0;
		t->peers_used++;
	}
	return p;
}

/* One connection of @p a fewer; its slot goes with its last. */
static void
peer_put(struct conn_tracker *t, const struct netaddr *peer)
{
	size_t mask = t->peers_cap - 1;
	struct netaddr block;
	struct peer_slot *p;

	netaddr_client_block(peer, &block);
	p = peer_find(t, &block);
	size_t i, j;

	if (p == NULL || p->addr.len == 0 || --p->count > 0)
		return;
	/* Linear probing: shift back the entries after it that would no
	 * longer be found past the hole. */
	i = (size_t)(p - t->peers);
	j = i;
	for (;;) {
		size_t home;

		t->peers[i].addr.len = 0;
		do {
			j = (j + 1) & mask;
			if (t->peers[j].addr.len == 0)
				goto done;
			home = netaddr_hash(&t->peers[j].addr) & mask;
		} while (i <= j ? (i < home && home <= j)
				: (i < home || home <= j));
		t->peers[i] = t->peers[j];
		i = j;
	}
done:
	t->peers_used--;
}

/* ---- accepting -------------------------------------------------------- */

static void
set_listeners(struct conn_tracker *t, bool enable)
{
	size_t i;

	t->accepting = enable;
	for (i = 0; i < t->n_listeners; i++) {
		if (enable)
			evconnlistener_enable(t->listeners[i]);
		else
			evconnlistener_disable(t->listeners[i]);
	}
}

/* When the longest-idle connection may give its place to a newcomer; 0
 * when none is idle. */
static int64_t
evictable_at(const struct conn_tracker *t)
{
	const struct conn *c = TAILQ_FIRST(&t->idle);

	return c != NULL ? c->since_us + EVICT_MIN_IDLE_US : 0;
}

/* Accept while there is room, or an idle connection to make room, and
 * descriptors did not just run out; otherwise wake when that changes
 * by time alone (a connection that closes or turns idle calls this). */
static void
update_listeners(struct conn_tracker *t)
{
	int64_t now, wake = 0;
	bool want;

	if (t->stopped)
		return;
	now = now_monotonic_us();
	if (now < t->backoff_until_us) {
		want = false;
		wake = t->backoff_until_us;
	} else if (t->open < t->limit) {
		want = true;
	} else if (t->open >= t->limit + ADMIT_BATCH) {
		want = false;	/* registering makes room, then wakes us */
	} else {
		int64_t at = evictable_at(t);

		want = at != 0 && at <= now;
		if (!want && at != 0)
			wake = at;
	}
	if (want != t->accepting)
		set_listeners(t, want);
	if (wake != 0) {
		struct timeval tv = to_timeval(wake - now);

		event_add(t->resume, &tv);
	}
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	update_listeners(arg);
}

/* ---- states ----------------------------------------------------------- */

static bool
is_busy(enum conn_state s)
{
	return s != CONN_NEW && s != CONN_IDLE && s != CONN_CLOSING;
}

static void
set_state(struct conn *c, enum conn_state state)
{
	struct conn_tracker *t = c->t;

	if (is_busy(c->state) && !is_busy(state))
		t->busy--;
	else if (!is_busy(c->state) && is_busy(state))
		t->busy++;
	if (c->state == CONN_IDLE)
		TAILQ_REMOVE(&t->idle, c, queue);
	else if (c->state == CONN_WAITING)
		TAILQ_REMOVE(&t->waiting, c, queue);
	c->state = state;
	c->since_us = now_monotonic_us();
	if (state == CONN_IDLE)
		TAILQ_INSERT_TAIL(&t->idle, c, queue);
	else if (state == CONN_WAITING)
		TAILQ_INSERT_TAIL(&t->waiting, c, queue);
}

static struct evbuffer *
input_of(const struct conn *c)
{
	return bufferevent_get_input(c->bev);
}

/* Between requests and while a head arrives, evhttp finds nothing to
 * read, and the buffer holds a head's worth at most. */
static void
hold_input(struct conn *c)
{
	evbuffer_freeze(input_of(c), 1);
	bufferevent_setwatermark(c->bev, EV_READ, 0,
				 c->t->limits.max_header_size);
}

/* The head is evhttp's to read, and the body behind it (evhttp 2.1 keeps
 * a body whole in the input buffer until it is complete: no high
 * watermark then; the budget accounts for it). */
static void
release_input(struct conn *c)
{
	evbuffer_unfreeze(input_of(c), 1);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
}

static void
discard_input(struct conn *c)
{
	struct evbuffer *in = input_of(c);

	evbuffer_unfreeze(in, 1);
	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_freeze(in, 1);
}

/* ---- the body budget -------------------------------------------------- */

static size_t
body_need(const struct conn_tracker *t, const struct http_head *h)
{
	uint64_t size = h->chunked ? t->limits.max_body
				   : (uint64_t)h->content_length;

	if (!h->chunked && h->content_length <= 0)
		return 0;
	return (size_t)(2 * size + BODY_OVERHEAD);
}

/* Take @p need bytes of the budget, if they fit. One body alone always
 * does, whatever its size: it is bounded by max-body. */
static bool
budget_take(struct conn_tracker *t, size_t need)
{
	size_t cap = t->limits.max_body_memory;

	if (need > 2 * SMALL_BODY + BODY_OVERHEAD)
		cap -= cap / 4;
	if (t->body_memory != 0 && (need > cap || t->body_memory > cap - need))
		return false;
	t->body_memory += need;
	return true;
}

static void admit(struct conn *c);

/* Give back what @p c reserved, and let bodies that waited in. */
static void
budget_release(struct conn *c)
{
	struct conn_tracker *t = c->t;
	struct conn *w, *next;

	if (c->reserved == 0)
		return;
	t->body_memory -= c->reserved;
	t->trim_released += c->reserved;
	c->reserved = 0;
	/* First come, first in; one that does not fit lets those behind
	 * it try. */
	for (w = TAILQ_FIRST(&t->waiting); w != NULL; w = next) {
		next = TAILQ_NEXT(w, queue);
		if (!budget_take(t, w->wanted))
			continue;
		w->reserved = w->wanted;
		w->wanted = 0;
		admit(w);
		/* Its head and what came of its body are in the buffer
		 * already: nothing else may come to wake evhttp. */
		bufferevent_trigger(w->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	}
}

/* ---- closing ---------------------------------------------------------- */

/* Close @p c now, without a word in on_close (the caller said why).
 * Never one whose request awaits its answer: the exchange holds it. */
static void
close_conn(struct conn *c)
{
	c->quiet = true;
	/* Calls on_close, which frees c. */
	evhttp_connection_free(c->evcon);
}

/* Answer the request of @p c from its head (@p h may be NULL), then
 * drain what comes until the client closes or LINGER_US passed. */
static void
refuse(struct conn *c, const struct http_head *h, const struct head_verdict *v)
{
	struct conn_tracker *t = c->t;
	struct head_answer a = {
		.fd = c->fd,
		.head = h,
		.verdict = v,
		.start_us = c->request_start_us,
		.peer = c->peer_text,
		.client = &c->client,
		.peer_address = &c->peer,
	};

	t->hooks.answer(t->hooks.arg, &a);
	/* Nothing more will be said: the FIN tells the client, who may
	 * still be sending. */
	shutdown(c->fd, SHUT_WR);
	set_state(c, CONN_CLOSING);
	budget_release(c);
	discard_input(c);
	bufferevent_enable(c->bev, EV_READ);
}

/* ---- reading a request's head ----------------------------------------- */

static void
start_request(struct conn *c)
{
	set_state(c, CONN_HEAD);
	c->request_start_us = c->since_us;
	c->client = c->peer;
	head_scan_init(&c->scan);
}

/* Scan the bytes of @p in after those scanned: true when the head ended
 * in them. */
static bool
scan_input(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_ptr at;
	struct evbuffer_iovec v[4];
	int n, i;

	while (c->scan.len < evbuffer_get_length(in)) {
		if (evbuffer_ptr_set(in, &at, c->scan.len,
				     EVBUFFER_PTR_SET) < 0)
			return false;
		n = evbuffer_peek(in, -1, &at, v, 4);
		if (n <= 0)
			return false;
		for (i = 0; i < n && i < 4; i++) {
			if (head_scan_feed(&c->scan, v[i].iov_base,
					   v[i].iov_len))
				return true;
		}
	}
	return false;
}

/* The first @p len bytes of the input, contiguous: in place when they
 * are in its first buffer (nearly always), else copied to the tracker's
 * scratch (evbuffer_copyout() refuses a frozen buffer; peeking does
 * not). */
static const char *
input_text(struct conn *c, size_t len)
{
	struct evbuffer *in = input_of(c);
	struct evbuffer_iovec v[8];
	struct evbuffer_ptr at;
	size_t done = 0;
	int n, i;

	n = evbuffer_peek(in, (ev_ssize_t)len, NULL, v, 1);
	if (n >= 1 && v[0].iov_len >= len)
		return v[0].iov_base;
	while (done < len) {
		if (evbuffer_ptr_set(in, &at, done, EVBUFFER_PTR_SET) < 0)
			return NULL;
		n = evbuffer_peek(in, (ev_ssize_t)(len - done), &at, v, 8);
		if (n <= 0)
			return NULL;
		for (i = 0; i < n && i < 8 && done < len; i++) {
			size_t k = v[i].iov_len < len - done ? v[i].iov_len
							      : len - done;

			memcpy(c->t->scratch + done, v[i].iov_base, k);
			done += k;
		}
	}
	return c->t->scratch;
}

/* Read the head that ended at c->scan.len. */
static bool
read_head(struct conn *c, struct http_head *h)
{
	struct conn_tracker *t = c->t;
	const char *text = input_text(c, c->scan.len);
	const char *fields[HEAD_FORWARDED_MAX];
	size_t lens[HEAD_FORWARDED_MAX];
	size_t i;

	if (text == NULL)
		return false;
	http_head_parse(text, c->scan.len, h);
	c->minor = h->minor;
	if (h->n_forwarded > 0 && t->limits.n_trusted > 0) {
		for (i = 0; i < h->n_forwarded; i++) {
			fields[i] = h->forwarded[i].p;
			lens[i] = h->forwarded[i].len;
		}
		netaddr_forwarded_client(t->limits.trusted,
					 t->limits.n_trusted, &c->peer, fields,
					 lens, h->n_forwarded, &c->client);
	}
	return true;
}

/* The head is read and its body may come: evhttp takes it from here. */
static void
admit(struct conn *c)
{
	release_input(c);
	set_state(c, CONN_BODY);
	c->body_bytes = 0;
	c->rate_mark_us = 0;
}

/* A request's bytes arrived (or were there): once its head is whole,
 * decide. */
static void
check_head(struct conn *c)
{
	struct conn_tracker *t = c->t;
	struct evbuffer *in = input_of(c);
	struct head_verdict v = { 0 };
	struct http_head h;
	size_t need;

	if (!scan_input(c, in) || c->scan.len > t->limits.max_header_size) {
		struct evbuffer_iovec first;

		if (c->scan.len < t->limits.max_header_size) {
			/* Not even the start of a request (TLS, say)? */
			if (evbuffer_peek(in, -1, NULL, &first, 1) < 1 ||
			    !http_head_start_bad(first.iov_base,
						 first.iov_len))
				return;
			v.message = "malformed request line";
		} else {
			v.message = "request line and headers larger than "
				    "max-header-size";
		}
		v.status = 400;
		refuse(c, NULL, &v);
		return;
	}
	if (!read_head(c, &h)) {
		v.status = 503;
		v.message = "out of memory";
		refuse(c, NULL, &v);
		return;
	}
	if (h.error != NULL) {
		v.status = 400;
		v.message = h.error;
	} else if (!h.chunked && h.content_length > 0 &&
		   (uint64_t)h.content_length > t->limits.max_body) {
		/* The answer evhttp would give, but before 100 Continue and
		 * in whr's words. */
		v.status = 413;
		snprintf(v.message_buf, sizeof(v.message_buf),
			 "the body is larger than max-body (%zu bytes)",
			 t->limits.max_body);
		v.message = v.message_buf;
	} else {
		t->hooks.head(t->hooks.arg, &h, &c->client, &v);
	}
	if (v.status != 0) {
		refuse(c, &h, &v);
		return;
	}
	need = body_need(t, &h);
	/* Large bodies queue behind those that wait already. */
	if (need == 0 ||
	    ((need <= 2 * SMALL_BODY + BODY_OVERHEAD ||
	      TAILQ_EMPTY(&t->waiting)) &&
	     budget_take(t, need))) {
		c->reserved = need;
		admit(c);
		return;
	}
	c->wanted = need;
	set_state(c, CONN_WAITING);
	if (note_due(&t->memory_note, c->since_us)) {
		char more[80];

		whr_log(WHR_LOG_WARN,
			"max-body-memory (%zu bytes) is taken: request bodies "
			"wait unread, then get 503%s",
			t->limits.max_body_memory,
			unsaid(&t->memory_note, more, sizeof(more)));
	}
}

/* Every change to the input buffer: bytes read, or drained by evhttp. */
static void
on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
	 void *arg)
{
	struct conn *c = arg;

	if (info->n_added == 0)
		return;
	switch (c->state) {
	case CONN_IDLE:
		start_request(c);
		check_head(c);
		break;
	case CONN_HEAD:
		check_head(c);
		break;
	case CONN_BODY:
		c->body_bytes += info->n_added;
		break;
	case CONN_CLOSING:
		discard_input(c);
		break;
	case CONN_NEW:		/* registered before any byte can come */
	case CONN_WAITING:	/* stopped at the watermark */
	case CONN_BUSY:		/* not reading */
	case CONN_WRITING:
		break;
	}
}

/* ---- the sweeper ------------------------------------------------------ */

/* Close @p c, past a deadline: @p msg says which (once a minute). */
static void
cut(struct conn *c, struct note *n, const char *msg, int64_t limit_us)
{
	char more[80];

	if (note_due(n, now_monotonic_us())) {
		struct log_field fields[] = {
			LOG_INT("connection", (int64_t)c->serial),
			LOG_STR("remote", c->peer_text),
			LOG_MILLIS("timeout_ms", limit_us),
			LOG_STR("unlogged", unsaid_field(n, more, sizeof(more))),
		};

		log_fields(WHR_LOG_INFO, msg, fields, ARRAY_LENGTH(fields));
	}
	close_conn(c);
}

static void
cut_read(struct conn *c)
{
	cut(c, &c->t->read_time_note,
	    "request not received in time (read-timeout); closing the "
	    "connection",
	    c->t->limits.read_timeout_us);
}

/* The body of @p c must have come at min-body-rate over the last
 * window, once its first seconds are past. */
static bool
body_too_slow(struct conn *c, int64_t now)
{
	uint64_t rate = c->t->limits.min_body_rate;

	if (rate == 0 || now - c->since_us < BODY_RATE_GRACE_US)
		return false;
	if (c->rate_mark_us == 0) {
		c->rate_mark_us = now;
		c->rate_mark_bytes = c->body_bytes;
		return false;
	}
	if (now - c->rate_mark_us < BODY_RATE_WINDOW_US)
		return false;
	if ((c->body_bytes - c->rate_mark_bytes) * SECOND_US <
	    rate * (uint64_t)(now - c->rate_mark_us))
		return true;
	c->rate_mark_us = now;
	c->rate_mark_bytes = c->body_bytes;
	return false;
}

static void
answer_no_memory(struct conn *c)
{
	struct head_verdict v = {
		.status = 503,
		.message = "no memory for the request body now "
			   "(max-body-memory); try again later",
		.retry_after = 30,
	};
	struct http_head h;

	c->wanted = 0;
	if (read_head(c, &h))
		refuse(c, &h, &v);
	else
		refuse(c, NULL, &v);
}

static void
sweep_one(struct conn *c, int64_t now)
{
	struct conn_tracker *t = c->t;
	const struct conn_limits *l = &t->limits;
	int64_t age = now - c->request_start_us;

	switch (c->state) {
	case CONN_HEAD:
		if (age >= l->header_timeout_us &&
		    l->header_timeout_us < l->read_timeout_us)
			cut(c, &t->head_time_note,
			    "request head not received in time "
			    "(header-timeout); closing the connection",
			    l->header_timeout_us);
		else if (age >= l->read_timeout_us)
			cut_read(c);
		break;
	case CONN_WAITING:
		if (age >= l->read_timeout_us || now - c->since_us >=
							 BODY_WAIT_US)
			answer_no_memory(c);
		break;
	case CONN_BODY:
		if (age >= l->read_timeout_us)
			cut_read(c);
		else if (body_too_slow(c, now))
			cut(c, &t->rate_note,
			    "request body slower than min-body-rate; closing "
			    "the connection",
			    BODY_RATE_WINDOW_US);
		break;
	case CONN_WRITING:
		if (now - c->since_us >= l->write_timeout_us)
			cut(c, &t->write_time_note,
			    "answer not taken in time (write-timeout); closing "
			    "the connection",
			    l->write_timeout_us);
		break;
	case CONN_CLOSING:
		if (now - c->since_us >= LINGER_US)
			close_conn(c);
		break;
	case CONN_NEW:
	case CONN_IDLE:		/* the bufferevent's idle timeout */
	case CONN_BUSY:		/* the exchange's own */
		break;
	}
}

/* Memory that bodies and connections took goes back to the system once
 * they are gone (glibc keeps freed memory for reuse otherwise, and an
 * attack's worth would stay). */
static void
maybe_trim(struct conn_tracker *t, int64_t now)
{
#ifdef __GLIBC__
	if (t->body_memory > t->limits.max_body_memory / 8 ||
	    now - t->trim_us < 5 * SECOND_US ||
	    (t->trim_released < 4u << 20 && t->trim_closed < 256))
		return;
	malloc_trim(0);
	t->trim_us = now;
	t->trim_released = 0;
	t->trim_closed = 0;
#else
	(void)t;
	(void)now;
#endif
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct conn_tracker *t = arg;
	int64_t now = now_monotonic_us();
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&t->registered); c != NULL; c = next) {
		next = TAILQ_NEXT(c, all);
		sweep_one(c, now);
	}
	if (t->limit < t->limits.max_connections &&
	    now - t->limit_lowered_us >= LIMIT_RESTORE_US) {
		t->limit = t->limits.max_connections;
		update_listeners(t);
	}
	maybe_trim(t, now);
}

/* ---- opening and closing ---------------------------------------------- */

static void
conn_free(struct conn *c)
{
	struct conn_tracker *t = c->t;

	set_state(c, CONN_NEW);
	if (c->input_cb != NULL)
		evbuffer_remove_cb_entry(input_of(c), c->input_cb);
	if (c->fd >= 0 && (size_t)c->fd < t->by_fd_len &&
	    t->by_fd[c->fd] == c) {
		t->by_fd[c->fd] = NULL;
		TAILQ_REMOVE(&t->registered, c, all);
	}
	if (c->counted)
		peer_put(t, &c->peer);
	budget_release(c);
	free(c);

	t->open--;
	t->trim_closed++;
	update_listeners(t);
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	struct conn_tracker *t = c->t;

	if (!c->quiet && (c->state == CONN_HEAD || c->state == CONN_BODY ||
			  c->state == CONN_WAITING) &&
	    note_due(&t->gone_note, now_monotonic_us())) {
		/* evhttp answers some malformed requests itself (400, 413
		 * for a chunked body too large, 417) and then closes; this
		 * is their log line. */
		char more[80];
		struct log_field fields[] = {
			LOG_INT("connection", (int64_t)c->serial),
			LOG_STR("remote", c->peer_text),
			LOG_MILLIS("duration_ms",
				   now_monotonic_us() - c->request_start_us),
			LOG_STR("unlogged", unsaid_field(&t->gone_note, more,
							 sizeof(more))),
		};

		log_fields(WHR_LOG_INFO,
			   "connection closed during a request (client gone, "
			   "or refused by the HTTP parser: malformed, body over "
			   "the limit)",
			   fields, ARRAY_LENGTH(fields));
	}
	conn_free(c);
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
read_peer(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	unsigned port = 0;
	char host[NETADDR_TEXT_MAX];

	memset(&c->peer, 0, sizeof(c->peer));
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0 &&
	    netaddr_from_sockaddr((struct sockaddr *)&ss, &c->peer) == 0)
		port = ntohs(ss.ss_family == AF_INET6
				     ? ((struct sockaddr_in6 *)&ss)->sin6_port
				     : ((struct sockaddr_in *)&ss)->sin_port);
	netaddr_format(&c->peer, host, sizeof(host));
	snprintf(c->peer_text, sizeof(c->peer_text),
		 c->peer.len == 16 ? "[%s]:%u" : "%s:%u", host, port);
	c->client = c->peer;
}

/* Make room for a newcomer: the longest-idle connection goes, if it had
 * its chance to send a request. */
static void
evict_for_room(struct conn_tracker *t, int64_t now)
{
	struct conn *victim = TAILQ_FIRST(&t->idle);

	if (t->open <= t->limit || victim == NULL ||
	    now - victim->since_us < EVICT_MIN_IDLE_US)
		return;
	close_conn(victim);
}

/* The peer's count, or false when it has too many connections. */
static bool
count_peer(struct conn *c, int64_t now)
{
	struct conn_tracker *t = c->t;
	struct peer_slot *p;

	/* An address unknown (gone already) is counted nowhere. */
	if (c->peer.len == 0 ||
	    cidr_list_contains(t->limits.trusted, t->limits.n_trusted,
			       &c->peer))
		return true;	/* behind nginx, everyone comes from it */
	p = peer_get(t, &c->peer);
	if (p == NULL)
		return true;	/* uncounted rather than refused */
	if (p->count >= t->limits.max_per_client) {
		if (note_due(&t->client_note, now)) {
			char more[80];

			whr_log(WHR_LOG_WARN,
				"connection from %s refused: "
				"max-connections-per-client (%u) reached%s",
				c->peer_text, t->limits.max_per_client,
				unsaid(&t->client_note, more, sizeof(more)));
		}
		if (p->count == 0)
			peer_put(t, &c->peer);
		return false;
	}
	p->count++;
	c->counted = true;
	return true;
}

static void
register_one(struct conn *c)
{
	struct conn_tracker *t = c->t;
	void *arg = NULL;
	int64_t now = now_monotonic_us();

	bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
	c->fd = bufferevent_getfd(c->bev);
	if (arg == NULL || c->fd < 0) {
		/* Closed before we saw it: ours is the last reference, to
		 * drop once our callback is off its buffer. */
		struct bufferevent *bev = c->bev;

		c->fd = -1;
		conn_free(c);
		bufferevent_decref(bev);
		return;
	}
	c->evcon = arg;
	evhttp_connection_set_closecb(c->evcon, on_close, c);
	bufferevent_decref(c->bev);
	if (index_by_fd(t, c) < 0) {
		/* Without its hooks the connection cannot be governed. */
		whr_log(WHR_LOG_ERROR, "out of memory: closing a new connection");
		close_conn(c);
		return;
	}
	TAILQ_INSERT_TAIL(&t->registered, c, all);
	read_peer(c);
	if (!count_peer(c, now)) {
		close_conn(c);
		return;
	}
	set_state(c, CONN_IDLE);
	evict_for_room(t, now);
	if (evbuffer_get_length(input_of(c)) > 0) {
		start_request(c);
		check_head(c);
	}
}

static void
register_pending(struct conn_tracker *t)
{
	struct conn *c;

	while ((c = STAILQ_FIRST(&t->pending)) != NULL) {
		STAILQ_REMOVE_HEAD(&t->pending, pending);
		register_one(c);
	}
	update_listeners(t);
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
	if (bev != NULL && c != NULL)
		c->input_cb = evbuffer_add_cb(bufferevent_get_input(bev),
					      on_input, c);
	if (bev == NULL || c == NULL || c->input_cb == NULL) {
		whr_log(WHR_LOG_ERROR, "out of memory accepting a connection");
		free(c);
		return bev;	/* NULL lets evhttp make its own */
	}
	/* Inactivity timeouts: reading (between requests) and writing an
	 * answer to a client that takes none of it. */
	bufferevent_set_timeouts(bev, &t->idle_tv, &t->write_tv);
	bufferevent_incref(bev);

	c->t = t;
	c->bev = bev;
	c->fd = -1;
	c->state = CONN_NEW;
	c->serial = ++t->next_serial;
	hold_input(c);
	STAILQ_INSERT_TAIL(&t->pending, c, pending);
	event_active(t->register_event, EV_TIMEOUT, 0);

	t->open++;
	if (t->open >= t->limit) {
		/* update_listeners() below pauses the listeners, or lets a
		 * batch of newcomers in for idle connections to make room. */
		int64_t now = now_monotonic_us();

		if (note_due(&t->full_note, now)) {
			char more[80];

			whr_log(WHR_LOG_WARN,
				"max-connections (%u) reached: connections "
				"idle 0.8 s or more are closed to admit "
				"new ones; otherwise not accepting until one "
				"closes%s",
				t->limit,
				unsaid(&t->full_note, more, sizeof(more)));
		}
		update_listeners(t);
	}
	return bev;
}

/* ---- descriptors ------------------------------------------------------ */

static struct conn_tracker *
tracker_of_listener(struct evconnlistener *l)
{
	struct conn_tracker *t;
	size_t i;

	pthread_mutex_lock(&trackers_lock);
	TAILQ_FOREACH(t, &trackers, trackers) {
		for (i = 0; i < t->n_listeners; i++) {
			if (t->listeners[i] == l)
				goto found;
		}
	}
found:
	pthread_mutex_unlock(&trackers_lock);
	return t;
}

static size_t count_open_descriptors(void);

/* How many connections fit the descriptors now: the soft limit, less
 * those whr holds besides its connections and a few to spare. Without a
 * limit to read (ENFILE is the system's), a sixteenth fewer than open. */
static unsigned
connections_that_fit(const struct conn_tracker *t, int err)
{
	struct rlimit rl;
	size_t others;
	unsigned open = (unsigned)t->open;

	if (err == EMFILE && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		others = count_open_descriptors();
		others = others > t->open ? others - t->open : 0;
		if ((uint64_t)rl.rlim_cur > others + FD_SPARE)
			return (unsigned)(rl.rlim_cur - others - FD_SPARE);
		return 1;
	}
	return open > 16 ? open - open / 16 : open > 1 ? open - 1 : 1;
}

/* accept() failed (libevent retries EAGAIN, EINTR, ECONNABORTED itself).
 * Out of descriptors, trying again at once fails again, as fast as the
 * loop turns (and says so in the log each time, unless told otherwise):
 * lower the table to what the descriptors allow, and close the
 * longest-idle connections, whatever their age, to make room; when none
 * can be closed, stop accepting for a moment. */
static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct conn_tracker *t = tracker_of_listener(l);
	unsigned closed = 0;
	int64_t now;

	if (t == NULL)
		return;
	now = now_monotonic_us();
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		unsigned fit = connections_that_fit(t, err);

		if (fit < t->limit)
			t->limit = fit;
		t->limit_lowered_us = now;
		while ((t->open >= t->limit || closed == 0) &&
		       !TAILQ_EMPTY(&t->idle)) {
			close_conn(TAILQ_FIRST(&t->idle));
			closed++;
		}
	}
	if (closed == 0)
		t->backoff_until_us = now + ACCEPT_BACKOFF_US;
	if (note_due(&t->accept_note, now)) {
		char more[80];

		whr_log(WHR_LOG_WARN,
			"cannot accept connections: %s; closed %u idle "
			"connections to make room, at most %u open for now%s%s",
			strerror(err), closed, t->limit,
			closed == 0 ? ", not accepting for a moment" : "",
			unsaid(&t->accept_note, more, sizeof(more)));
	}
	update_listeners(t);
}

static size_t
count_open_descriptors(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;

	if (d == NULL)
		return 32;	/* a guess: no /proc */
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n > 0 ? n - 1 : 0;	/* not the one reading the folder */
}

unsigned
conn_fit_descriptors(unsigned wanted, size_t n_listeners)
{
	struct rlimit rl;
	size_t reserve;
	unsigned fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return wanted;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit raised = rl;

		raised.rlim_cur = rl.rlim_max;
		/* "unlimited" is capped by the kernel's nr_open. */
		if (setrlimit(RLIMIT_NOFILE, &raised) < 0 &&
		    rl.rlim_max == RLIM_INFINITY) {
			raised.rlim_cur = 1 << 20;
			if (setrlimit(RLIMIT_NOFILE, &raised) < 0)
				raised.rlim_cur = rl.rlim_cur;
		}
		rl.rlim_cur = raised.rlim_cur;
	}
	reserve = count_open_descriptors() + n_listeners + FD_MARGIN;
	if (rl.rlim_cur == RLIM_INFINITY ||
	    (uint64_t)rl.rlim_cur >= (uint64_t)wanted + reserve)
		return wanted;
	fit = rl.rlim_cur > reserve ? (unsigned)(rl.rlim_cur - reserve) : 1;
	whr_log(WHR_LOG_WARN,
		"max-connections lowered from %u to %u: this process may open "
		"%llu files (RLIMIT_NOFILE; raise it with ulimit -n or the "
		"container's nofile limit), and whr keeps %zu of them for "
		"itself (listeners, the inbox, handlers)",
		wanted, fit, (unsigned long long)rl.rlim_cur, reserve);
	return fit;
}

/* ---- the tracker ------------------------------------------------------ */

static int64_t
shortest(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

struct conn_tracker *
conn_tracker_new(struct event_base *base, struct evhttp *http,
		 const struct conn_limits *limits,
		 const struct conn_hooks *hooks)
{
	struct conn_tracker *t = calloc(1, sizeof(*t));
	struct timeval tick;
	int64_t tick_us;

	if (t == NULL)
		return NULL;
	t->base = base;
	t->http = http;
	t->limits = *limits;
	t->hooks = *hooks;
	t->limit = limits->max_connections;
	t->accepting = true;
	t->idle_tv = to_timeval(limits->idle_timeout_us);
	/* A backstop: the sweeper cuts an answer at write-timeout from its
	 * start, and says so; the bufferevent's, twice as long, counts from
	 * the last byte written, so it never comes first. */
	t->write_tv = to_timeval(2 * limits->write_timeout_us);
	STAILQ_INIT(&t->pending);
	TAILQ_INIT(&t->registered);
	TAILQ_INIT(&t->idle);
	TAILQ_INIT(&t->waiting);

	t->scratch = malloc(limits->max_header_size);
	t->register_event = event_new(base, -1, 0, on_register, t);
	t->sweeper = event_new(base, -1, EV_PERSIST, on_sweep, t);
	t->resume = evtimer_new(base, on_resume, t);
	if (t->scratch == NULL || t->register_event == NULL ||
	    t->sweeper == NULL || t->resume == NULL) {
		conn_tracker_free(t);
		return NULL;
	}
	/* A quarter of the shortest deadline: each is met between 1 and
	 * 1.25 times its length. */
	tick_us = shortest(shortest(limits->header_timeout_us,
				    limits->read_timeout_us),
			   limits->write_timeout_us) / 4;
	tick = to_timeval(tick_us > SECOND_US ? SECOND_US
					      : tick_us < 1000 ? 1000 : tick_us);
	if (event_add(t->sweeper, &tick) < 0) {
		conn_tracker_free(t);
		return NULL;
	}
	evhttp_set_bevcb(http, make_bufferevent, t);
	pthread_mutex_lock(&trackers_lock);
	TAILQ_INSERT_TAIL(&trackers, t, trackers);
	t->listed = true;
	pthread_mutex_unlock(&trackers_lock);
	return t;
}

void
conn_tracker_free(struct conn_tracker *t)
{
	struct conn *c;

	if (t == NULL)
		return;
	if (t->listed) {
		pthread_mutex_lock(&trackers_lock);
		TAILQ_REMOVE(&trackers, t, trackers);
		pthread_mutex_unlock(&trackers_lock);
	}
	/* Connections evhttp already freed: drop our references. */
	while ((c = STAILQ_FIRST(&t->pending)) != NULL) {
		STAILQ_REMOVE_HEAD(&t->pending, pending);
		evbuffer_remove_cb_entry(input_of(c), c->input_cb);
		bufferevent_decref(c->bev);
		free(c);
	}
	if (t->register_event != NULL)
		event_free(t->register_event);
	if (t->sweeper != NULL)
		event_free(t->sweeper);
	if (t->resume != NULL)
		event_free(t->resume);
	free(t->scratch);
	free(t->by_fd);
	free(t->peers);
	free(t->listeners);
	free(t);
}

int
conn_tracker_add_listener(struct conn_tracker *t,
			  struct evconnlistener *listener)
{
	struct evconnlistener **grown;

	pthread_mutex_lock(&trackers_lock);
	grown = realloc(t->listeners, (t->n_listeners + 1) * sizeof(*grown));
	if (grown != NULL) {
		t->listeners = grown;
		t->listeners[t->n_listeners++] = listener;
	}
	pthread_mutex_unlock(&trackers_lock);
	if (grown == NULL)
		return -ENOMEM;
	evconnlistener_set_error_cb(listener, on_accept_error);
	if (!t->accepting)
		evconnlistener_disable(listener);
	return 0;
}

void
conn_tracker_forget_listeners(struct conn_tracker *t)
{
	pthread_mutex_lock(&trackers_lock);
	t->stopped = true;
	t->n_listeners = 0;
	pthread_mutex_unlock(&trackers_lock);
	event_del(t->resume);
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

/* The answer has been written out (evhttp calls this only while the
 * connection lives; a connection that dies first is freed by on_close). */
/* Whether evhttp closes the connection after the answer to @p req
 * (evhttp_send_done()'s test): no request after it is answered. */
static bool
closes_after(struct evhttp_request *req, int minor)
{
	const char *in = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Connection");
	const char *out = evhttp_find_header(
		evhttp_request_get_output_headers(req), "Connection");

	if (in != NULL && ascii_equal_nocase(in, "close"))
		return true;
	if (out != NULL && ascii_equal_nocase(out, "close"))
		return true;
	return minor == 0 && (in == NULL || strlen(in) < 10 ||
			      !ascii_equal_nocase_n(in, 10, "keep-alive", 10));
}

static void
on_reply_written(struct evhttp_request *req, void *arg)
{
	struct conn *c = arg;

	budget_release(c);
	set_state(c, CONN_IDLE);
	hold_input(c);
	/* evhttp reads again once this returns; a pipelined next request
	 * may be there already. */
	if (evbuffer_get_length(input_of(c)) > 0 &&
	    !closes_after(req, c->minor)) {
		start_request(c);
		check_head(c);
	}
	update_listeners(c->t);
}

int64_t
conn_request_received(struct conn_tracker *t, struct evhttp_request *req)
{
	struct conn *c = conn_of_request(t, req);
	int64_t start;

	if (c == NULL)
		return now_monotonic_us();
	start = c->state == CONN_BODY ? c->request_start_us
				      : now_monotonic_us();
	/* Busy until the answer is written: a graceful shutdown waits. And
	 * nothing is read meanwhile: evhttp would go on reading into the
	 * input buffer while it writes the answer, without bound for a
	 * client that sends and never reads; what it sends waits in the
	 * kernel's buffers instead, and the client's. */
	set_state(c, CONN_BUSY);
	bufferevent_disable(c->bev, EV_READ);
	evhttp_request_set_on_complete_cb(req, on_reply_written, c);
	return start;
}

void
conn_answer_started(struct conn_tracker *t, struct evhttp_request *req)
{
	struct conn *c = conn_of_request(t, req);

	if (c != NULL && c->state == CONN_BUSY)
		set_state(c, CONN_WRITING);
}

int
conn_request_client(struct conn_tracker *t, struct evhttp_request *req,
		    struct netaddr *client, const char **peer, bool *proxied)
{
	struct conn *c = conn_of_request(t, req);

	if (c == NULL)
		return -ENOENT;
	*client = c->client;
	*peer = c->peer_text;
	*proxied = !netaddr_equal(&c->client, &c->peer);
	return 0;
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
