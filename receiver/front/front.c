/*
 * The HTTP front on libevent's evhttp, the only code that knows it: the
 * listening sockets, routing, what is read in a request's headers (and
 * decided from them alone, before the body is read), and the answer with
 * its log line. connections.c governs the connections underneath.
 *
 * Routes:
 *   GET|POST /api/webhooks/incoming/custom[/{id}][/]  the webhook (any case)
 *   GET|HEAD /healthz                                 liveness
 *   GET|HEAD /readyz                                  ready to store
 *   GET      /metrics                                 Prometheus metrics
 * Anything else on the webhook path is 405 with Allow; other paths 404.
 * With --admin-listen, its addresses answer /metrics, /healthz and
 * /readyz (and 404 to the rest), and the others no longer /metrics.
 *
 * Every finished request to the webhook path is counted for /metrics,
 * and its failures of the webhook's checks (400, 404) for the rate
 * limit on failures (--rate-limit), by the client front_request_client()
 * gives. The limit only ever turns a failure into 429: whatever passes
 * the checks is answered as it would be (Learn365's senders share a few
 * addresses with all its tenants, and drop a delivery after two 429s).
 */
#include "front/front.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "config.h"
#include "front/connections.h"
#include "front/head.h"
#include "front/ratelimit.h"
#include "inbox.h"
#include "log.h"
#include "metrics.h"
#include "secrets.h"
#include "util.h"
#include "webhook.h"

#define WEBHOOK_PREFIX "/api/webhooks/incoming/custom"
/* Retry-After of a 503: the sender ignores it; a proxy or a person may
 * not. */
#define RETRY_AFTER_S 30
/* Clients --rate-limit remembers; about 90 bytes each (the option's
 * help and the README give the number). */
#define RATE_LIMIT_CLIENTS 4096
/* Connections at once on --admin-listen: Prometheus, health checks. */
#define ADMIN_MAX_CONNECTIONS 32
#define LIMITED_MESSAGE                                                      \
	"too many failed requests from this client; try again later "        \
	"(rate-limit)"

struct front;

/* Listeners of one kind and the connections they accept: the webhook's
 * (--listen), or the admin's (--admin-listen). */
struct side {
	struct front *f;
	struct evhttp *http;
	struct conn_tracker *conns;
	bool admin;		/* /metrics, /healthz and /readyz only */
};

struct bound {
	struct side *side;
	struct evhttp_bound_socket *socket;
};

struct front {
	/* Borrowed from the receiver (front_new()). */
	const struct config *c;
	struct inbox *inbox;
	const struct secret_store *const *secrets;	/* swapped on reload */
	struct metrics *metrics;
	struct event_base *base;

	struct ratelimit *limit;	/* NULL: no --rate-limit */
	struct side main, admin;	/* admin.http NULL without
					 * --admin-listen */
	struct bound *bound;
	size_t n_bound;
	bool stopping;
};

enum route {
	ROUTE_NONE,
	ROUTE_WEBHOOK,
	ROUTE_HEALTH,
	ROUTE_READY,
	ROUTE_METRICS,
};

/* ---- routing --------------------------------------------------------- */

static bool
span_is(const char *s, size_t len, const char *text)
{
	return len == strlen(text) && memcmp(s, text, len) == 0;
}

/* Match the @p len bytes of @p path; for the webhook, the id's raw
 * (still encoded) span. */
static enum route
route_of(const char *path, size_t len, const char **id, size_t *id_len)
{
	const size_t prefix_len = sizeof(WEBHOOK_PREFIX) - 1;
	const char *rest;
	const char *slash;
	size_t rest_len;
	size_t seg;

	*id = "";
	*id_len = 0;
	if (path == NULL)
		return ROUTE_NONE;
	if (span_is(path, len, "/healthz"))
		return ROUTE_HEALTH;
	if (span_is(path, len, "/readyz"))
		return ROUTE_READY;
	if (span_is(path, len, "/metrics"))
		return ROUTE_METRICS;
	if (len < prefix_len ||
	    !ascii_equal_nocase_n(path, prefix_len, WEBHOOK_PREFIX,
				  prefix_len))
		return ROUTE_NONE;
	rest = path + prefix_len;
	rest_len = len - prefix_len;
	if (rest_len == 0 || span_is(rest, rest_len, "/"))
		return ROUTE_WEBHOOK;
	if (rest[0] != '/')
		return ROUTE_NONE;
	rest++;
	rest_len--;
	slash = memchr(rest, '/', rest_len);
	seg = slash != NULL ? (size_t)(slash - rest) : rest_len;
	if (seg == 0 || (seg != rest_len && seg + 1 != rest_len))
		return ROUTE_NONE;
	*id = rest;
	*id_len = seg;
	return ROUTE_WEBHOOK;
}

/* What @p side serves of @p route: the admin listeners their three
 * paths; the others all but /metrics when there are admin listeners. */
static enum route
route_on(const struct side *side, enum route route)
{
	if (side->admin)
		return route == ROUTE_WEBHOOK ? ROUTE_NONE : route;
	if (route == ROUTE_METRICS && side->f->admin.http != NULL)
		return ROUTE_NONE;
	return route;
}

/* The receiver id of a webhook path, from its raw span: decoded in
 * @p *out (NUL-ended; @p *owned when it is to be freed), or false with a
 * 404 (or 503) in @p reply. */
static bool
receiver_id_of(const char *id, size_t id_len, char **out, bool *owned,
	       struct webhook_reply *reply)
{
	size_t len;

	*owned = false;
	/* Most deliveries go to the default id: no copy to make. */
	if (id_len == 0) {
		*out = (char *)"";
		return true;
	}
	*out = percent_decode(id, id_len, false, &len);
	if (*out == NULL) {
		reply->status = 503;
		reply->message = "out of memory";
		return false;
	}
	*owned = true;
	if (len > RECEIVER_ID_MAX) {
		reply->status = 404;
		reply->message = "receiver id too long";
		return false;
	}
	if (strlen(*out) != len) {
		/* %00 would make "tenant%00x" read as "tenant". */
		reply->status = 404;
		reply->message = "receiver id contains a NUL byte";
		return false;
	}
	return true;
}

static const char *
method_name(enum evhttp_cmd_type method)
{
	switch (method) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "OTHER";
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	}
	return "Status";
}

/* ---- what is read in the headers ------------------------------------- */

/* Count the ms-signature headers; keep the first one's value. */
static void
count_signatures(struct evkeyvalq *headers, struct webhook_request *in)
{
	struct evkeyval *h;

	TAILQ_FOREACH(h, headers, next) {
		/* Cheap first-letter test: this runs for every header. */
		if ((h->key[0] | 0x20) == 'm' &&
		    ascii_equal_nocase(h->key, "ms-signature")) {
			if (in->n_signatures++ == 0)
				in->signature = h->value;
		}
	}
}

/* Headers not worth keeping with a delivery: credentials (the signature
 * among them), and what only the hop or the framing needed. */
static bool
header_kept(const char *name)
{
	static const char *const dropped[] = {
		"ms-signature", "authorization", "proxy-authorization",
		"cookie", "content-length", "connection", "keep-alive",
		"transfer-encoding", "te", "upgrade", "expect",
	};
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(dropped); i++) {
		if (ascii_equal_nocase(name, dropped[i]))
			return false;
	}
	return true;
}

/* Append @p s as a JSON string at @p out; returns the end. Room for six
 * bytes per input byte is enough (\u00XX, or U+FFFD's three). */
static char *
json_string(char *out, const char *s)
{
	size_t left = strlen(s);

	*out++ = '"';
	while (*s != '\0') {
		unsigned char c = (unsigned char)*s;
		size_t n = 1;

		if (c == '"' || c == '\\') {
			*out++ = '\\';
			*out++ = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out += sprintf(out, "\\u%04x", c);
		} else if (c < 0x80) {
			*out++ = (char)c;
		} else if ((n = utf8_char_length(s, left)) > 0) {
			memcpy(out, s, n);
			out += n;
		} else {
			memcpy(out, "\xef\xbf\xbd", 3);	/* not UTF-8 */
			out += 3;
			n = 1;
		}
		s += n;
		left -= n;
	}
	*out++ = '"';
	return out;
}

/* The headers worth keeping (no credentials, nothing of the hop or the
 * framing) as [[name, value], ...], in their order; NULL when out of
 * memory. One allocation, sized for the worst case. */
static char *
headers_json(struct evkeyvalq *headers)
{
	struct evkeyval *h;
	size_t size = 3;
	char *text;
	char *p;

	TAILQ_FOREACH(h, headers, next) {
		if (header_kept(h->key))
			size += 6 * (strlen(h->key) + strlen(h->value)) + 8;
	}
	text = malloc(size);
	if (text == NULL)
		return NULL;
	p = text;
	*p++ = '[';
	TAILQ_FOREACH(h, headers, next) {
		if (!header_kept(h->key))
			continue;
		if (p != text + 1)
			*p++ = ',';
		*p++ = '[';
		p = json_string(p, h->key);
		*p++ = ',';
		p = json_string(p, h->value);
		*p++ = ']';
	}
	*p++ = ']';
	*p = '\0';
	return text;
}

/* ---- one request ----------------------------------------------------- */

struct exchange {
	struct front *f;
	struct side *side;
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	const char *path;
	enum route route;
	char *receiver_id;		/* decoded; NULL off the webhook path */
	bool receiver_id_owned;
	struct webhook_reply reply;
	const char *allow;		/* for a 405 */
	const char *content_type;	/* of a body; NULL: plain text */
	unsigned retry_after;		/* seconds, for a 503 or 429 */
	bool duplicate;			/* stored before */
	size_t request_bytes;
	int64_t start_us;
	char peer[NETADDR_TEXT_MAX + 8];	/* "ADDRESS:PORT"; "": unknown */
	struct netaddr client;		/* front_request_client() */
	bool proxied;			/* the client is not the peer */
};

/* ---- counting: /metrics and the rate limit ---------------------------- */

/* One finished request to the webhook path: under the id its secret is
 * configured with, or as "unknown". */
static void
count_request(struct front *f, const char *receiver_id, int status)
{
	const struct receiver_keys *keys = NULL;

	if (f->metrics == NULL)
		return;
	if (receiver_id != NULL)
		keys = secret_store_find(*f->secrets, receiver_id,
					 strlen(receiver_id));
	metrics_request(f->metrics, keys != NULL ? keys->id : "",
			keys != NULL, status);
}

static void
count_signature_failure(struct front *f, enum signature_status status)
{
	enum metrics_signature_failure why;

	switch (status) {
	case SIGNATURE_MISSING:
		why = METRICS_SIGNATURE_MISSING;
		break;
	case SIGNATURE_DUPLICATE:
		why = METRICS_SIGNATURE_DUPLICATE;
		break;
	case SIGNATURE_MALFORMED:
	case SIGNATURE_NOT_HEX:
		why = METRICS_SIGNATURE_MALFORMED;
		break;
	case SIGNATURE_MISMATCH:
		why = METRICS_SIGNATURE_MISMATCH;
		break;
	default:
		return;	/* it passed, or OpenSSL failed (500) */
	}
	metrics_signature_failure(f->metrics, why);
}

/* A request the webhook's checks refused with @p status: counted by
 * signature failure, and, a 400 or a 404, against its client's limit.
 * true when the client is over it, with the seconds it should wait in
 * @p retry_after: then the answer is 429. */
static bool
over_limit(struct front *f, const struct netaddr *client, int status,
	   enum signature_status signature, unsigned *retry_after)
{
	count_signature_failure(f, signature);
	if (f->limit == NULL || client->len == 0 ||
	    (status != 400 && status != 404))
		return false;
	return !ratelimit_fail(f->limit, client, now_monotonic_us(),
			       retry_after);
}

/* ---- one request, continued ------------------------------------------- */

static void
handle_webhook(struct front *f, struct exchange *x, const char *query)
{
	if (x->method == EVHTTP_REQ_GET) {
		char *echo = NULL;
		size_t echo_len = 0;

		webhook_echo(*f->secrets, x->receiver_id,
			     strlen(x->receiver_id), query, &x->reply, &echo,
			     &echo_len);
		if (echo != NULL) {
			/* The echo body is exactly the value: no newline. */
			evbuffer_add(evhttp_request_get_output_buffer(x->req),
				     echo, echo_len);
			free(echo);
			metrics_echo_check(f->metrics);
		}
	} else if (x->method == EVHTTP_REQ_POST) {
		struct evkeyvalq *headers =
			evhttp_request_get_input_headers(x->req);
		struct evbuffer *buf = evhttp_request_get_input_buffer(x->req);
		struct webhook_request in = {
			.receiver_id = x->receiver_id,
			.receiver_id_len = strlen(x->receiver_id),
			.content_type = evhttp_find_header(headers,
							   "Content-Type"),
			.body_len = evbuffer_get_length(buf),
			.received_at = now_realtime_us(),
			.max_notifications = f->c->max_notifications,
		};

		count_signatures(headers, &in);
		/* One contiguous copy of the body, hashed as received. */
		in.body = in.body_len > 0
				  ? (const char *)evbuffer_pullup(buf, -1)
				  : "";
		x->request_bytes = in.body_len;
		if (in.body == NULL) {
			x->reply.status = 503;
			x->reply.message = "out of memory";
			return;
		}
		webhook_post(*f->secrets, &in, &x->reply);
		if (x->reply.job != NULL) {
			x->reply.job->headers_json = headers_json(headers);
			x->reply.job->ingest.d.headers_json =
				x->reply.job->headers_json;
			if (x->reply.job->headers_json == NULL) {
				webhook_job_free(x->reply.job);
				x->reply.job = NULL;
				x->reply.status = 503;
				x->reply.message = "out of memory";
			}
		}
	} else {
		x->reply.status = 405;
		x->reply.message = "use GET (echo) or POST (deliveries)";
		x->allow = "GET, POST";
	}
}

static void
send_answer(struct front *f, struct exchange *x)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(x->req);
	struct evbuffer *buf = evhttp_request_get_output_buffer(x->req);

	if (x->reply.status != 200 && x->reply.message != NULL) {
		evbuffer_add_printf(buf, "%s\n", x->reply.message);
		evhttp_add_header(out, "Content-Type",
				  "text/plain; charset=utf-8");
	} else if (evbuffer_get_length(buf) > 0) {
		evhttp_add_header(out, "Content-Type",
				  x->content_type != NULL
					  ? x->content_type
					  : "text/plain; charset=utf-8");
	}
	/* A HEAD answer has GET's headers and no body, which libevent 2.1
	 * would send all the same (and the client read as the next
	 * answer). */
	if (x->method == EVHTTP_REQ_HEAD) {
		char length[24];

		snprintf(length, sizeof(length), "%zu",
			 evbuffer_get_length(buf));
		evhttp_add_header(out, "Content-Length", length);
		evbuffer_drain(buf, evbuffer_get_length(buf));
	}
	if (x->allow != NULL)
		evhttp_add_header(out, "Allow", x->allow);
	if (x->retry_after != 0) {
		char seconds[16];

		snprintf(seconds, sizeof(seconds), "%u", x->retry_after);
		evhttp_add_header(out, "Retry-After", seconds);
	}
	if (f->stopping)
		evhttp_add_header(out, "Connection", "close");
	conn_answer_started(x->side->conns, x->req);
	evhttp_send_reply(x->req, x->reply.status,
			  reason_phrase(x->reply.status), NULL);
}

/* One request's log line: what was asked, the answer, who asked. */
struct request_log {
	const char *method;
	const char *path;
	const char *receiver;		/* NULL off the webhook path */
	const struct webhook_reply *reply;
	bool duplicate;
	bool post;			/* bytes counts */
	size_t bytes;
	int64_t start_us;
	const char *peer;		/* "ADDRESS:PORT", NULL: unknown */
	const struct netaddr *client;	/* NULL: the peer is the client */
};

static void
log_request(const struct request_log *r)
{
	const struct webhook_reply *reply = r->reply;
	char client[NETADDR_TEXT_MAX];
	struct log_field fields[14];
	size_t n = 0;

	if (!log_enabled(WHR_LOG_INFO) &&
	    !(reply->status >= 500 && log_enabled(WHR_LOG_WARN)))
		return;
	fields[n++] = (struct log_field)LOG_STR("method", r->method);
	fields[n++] = (struct log_field)LOG_STR("path", r->path);
	fields[n++] = (struct log_field)LOG_STR("receiver", r->receiver);
	fields[n++] = (struct log_field)LOG_INT("status", reply->status);
	fields[n++] = (struct log_field)LOG_MILLIS(
		"duration_ms", now_monotonic_us() - r->start_us);
	if (reply->delivery_id != NULL)
		fields[n++] = (struct log_field)LOG_STR("delivery",
							reply->delivery_id);
	if (reply->attempt != 0)
		fields[n++] = (struct log_field)LOG_INT("attempt",
							reply->attempt);
	if (reply->notifications != 0)
		fields[n++] = (struct log_field)LOG_INT(
			"notifications", (int64_t)reply->notifications);
	if (r->duplicate)
		fields[n++] = (struct log_field)LOG_STR("duplicate", "true");
	if (reply->previous_secret)
		fields[n++] = (struct log_field)LOG_STR("secret", "previous");
	if (r->post)
		fields[n++] = (struct log_field)LOG_INT("bytes",
							(int64_t)r->bytes);
	if (reply->status != 200 && reply->message != NULL)
		fields[n++] = (struct log_field)LOG_STR("error",
							reply->message);
	if (r->peer != NULL)
		fields[n++] = (struct log_field)LOG_STR("remote", r->peer);
	/* Behind a trusted proxy, the client it names (remote= is the
	 * proxy). */
	if (r->client != NULL) {
		netaddr_format(r->client, client, sizeof(client));
		fields[n++] = (struct log_field)LOG_STR("client", client);
	}
	log_fields(reply->status >= 500 ? WHR_LOG_WARN : WHR_LOG_INFO,
		   "request", fields, n);
}

static void
log_exchange(struct exchange *x)
{
	struct request_log r = {
		.method = method_name(x->method),
		.path = x->path,
		.receiver = x->receiver_id,
		.reply = &x->reply,
		.duplicate = x->duplicate,
		.post = x->method == EVHTTP_REQ_POST,
		.bytes = x->request_bytes,
		.start_us = x->start_us,
		.peer = x->peer[0] != '\0' ? x->peer : NULL,
		.client = x->proxied ? &x->client : NULL,
	};

	log_request(&r);
}

static void
finish_exchange(struct exchange *x)
{
	if (x->route == ROUTE_WEBHOOK)
		count_request(x->f, x->receiver_id, x->reply.status);
	log_exchange(x);
	send_answer(x->f, x);
	webhook_reply_finish(&x->reply);
	if (x->receiver_id_owned)
		free(x->receiver_id);
	free(x);
}

/* The inbox has the delivery (or cannot take it): now answer. */
static void
on_stored(struct ingest_job *job, void *arg)
{
	struct exchange *x = arg;

	switch (job->result) {
	case INGEST_DUPLICATE:
		/* A resend is acknowledged like the first copy. */
		x->duplicate = true;
		x->reply.status = 200;
		metrics_delivery(x->f->metrics, job->d.receiver_id, true);
		break;
	case INGEST_STORED:
		x->reply.status = 200;
		metrics_delivery(x->f->metrics, job->d.receiver_id, false);
		break;
	case INGEST_FAILED:
		x->reply.status = 503;
		x->retry_after = RETRY_AFTER_S;
		snprintf(x->reply.message_buf, sizeof(x->reply.message_buf),
			 "the inbox cannot store deliveries now: %.120s",
			 job->error);
		x->reply.message = x->reply.message_buf;
		break;
	}
	webhook_job_free(x->reply.job);
	x->reply.job = NULL;
	finish_exchange(x);
}

static void
answer_ready(struct front *f, struct exchange *x)
{
	char why[256] = "";

	if (x->method != EVHTTP_REQ_GET && x->method != EVHTTP_REQ_HEAD) {
		x->reply.status = 405;
		x->reply.message = "use GET";
		x->allow = "GET, HEAD";
		return;
	}
	if (f->stopping) {
		snprintf(why, sizeof(why), "shutting down");
	} else if (inbox_ready(f->inbox, why, sizeof(why))) {
		x->reply.status = 200;
		evbuffer_add(evhttp_request_get_output_buffer(x->req),
			     "ready\n", 6);
		return;
	}
	x->reply.status = 503;
	x->retry_after = RETRY_AFTER_S;
	snprintf(x->reply.message_buf, sizeof(x->reply.message_buf),
		 "not ready: %.170s", why);
	x->reply.message = x->reply.message_buf;
}

static void
answer_metrics(struct front *f, struct exchange *x)
{
	size_t len = 0;
	char *page;

	if (x->method != EVHTTP_REQ_GET) {
		x->reply.status = 405;
		x->reply.message = "use GET";
		x->allow = "GET";
		return;
	}
	page = f->metrics != NULL
		       ? metrics_page(f->metrics, now_realtime_us(), &len)
		       : NULL;
	if (page == NULL ||
	    evbuffer_add(evhttp_request_get_output_buffer(x->req), page,
			 len) < 0) {
		free(page);
		x->reply.status = 503;
		x->reply.message = "out of memory";
		return;
	}
	free(page);
	x->reply.status = 200;
	x->content_type = METRICS_CONTENT_TYPE;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct side *side = arg;
	struct front *f = side->f;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct exchange *x = calloc(1, sizeof(*x));
	const char *peer;
	const char *id;
	size_t id_len;

	if (x == NULL) {
		evhttp_send_error(req, 503, "out of memory");
		return;
	}
	x->f = f;
	x->side = side;
	x->req = req;
	x->method = evhttp_request_get_command(req);
	x->path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	/* Its framing and Host were checked with its head (head.c). */
	x->start_us = conn_request_received(side->conns, req);
	if (conn_request_client(side->conns, req, &x->client, &peer,
				&x->proxied) == 0) {
		snprintf(x->peer, sizeof(x->peer), "%s", peer);
	} else if (evhttp_request_get_connection(req) != NULL) {
		/* A connection the tracker could not govern (out of
		 * memory): evhttp knows its peer still. */
		char *host = NULL;
		ev_uint16_t port = 0;

		evhttp_connection_get_peer(evhttp_request_get_connection(req),
					   &host, &port);
		if (host != NULL)
			snprintf(x->peer, sizeof(x->peer),
				 strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
				 port);
	}

	x->route = route_on(side, route_of(x->path,
					   x->path != NULL ? strlen(x->path) : 0,
					   &id, &id_len));
	switch (x->route) {
	case ROUTE_HEALTH:
		if (x->method == EVHTTP_REQ_GET || x->method == EVHTTP_REQ_HEAD) {
			x->reply.status = 200;
			evbuffer_add(evhttp_request_get_output_buffer(req),
				     "ok\n", 3);
		} else {
			x->reply.status = 405;
			x->reply.message = "use GET";
			x->allow = "GET, HEAD";
		}
		break;
	case ROUTE_READY:
		answer_ready(f, x);
		break;
	case ROUTE_METRICS:
		answer_metrics(f, x);
		break;
	case ROUTE_WEBHOOK:
		if (receiver_id_of(id, id_len, &x->receiver_id,
				   &x->receiver_id_owned, &x->reply))
			handle_webhook(f, x, evhttp_uri_get_query(uri));
		if (x->reply.job == NULL &&
		    over_limit(f, &x->client, x->reply.status,
			       x->reply.signature, &x->retry_after)) {
			x->reply.status = 429;
			x->reply.message = LIMITED_MESSAGE;
		}
		break;
	case ROUTE_NONE:
		x->reply.status = 404;
		x->reply.message = "not found";
		break;
	}

	if (x->reply.job != NULL) {
		/* Answered once it is on disk (on_stored). */
		x->reply.job->ingest.done = on_stored;
		x->reply.job->ingest.done_arg = x;
		inbox_submit(f->inbox, &x->reply.job->ingest);
		return;
	}
	finish_exchange(x);
}

/* ---- answers from a request's head ---------------------------------- */

/* A request's head came whole (connections.c): what it decides alone is
 * answered before the body is read, which would take memory and time for
 * an answer known already. That is a POST to the webhook path whose
 * receiver id has no secret (404), or without exactly one well-formed
 * ms-signature (400). */
/* A request with a body to a route that takes none: the answer evhttp's
 * turn would give (404, or 405 with Allow), from its head. GET and HEAD
 * go on: their answer does not depend on the body, which evhttp drops. */
static void
refuse_body(enum route route, const struct http_head *h,
	    struct head_verdict *v)
{
	if (route == ROUTE_NONE) {
		v->status = 404;
		v->message = "not found";
		return;
	}
	if (http_head_method_is(h, "GET") || http_head_method_is(h, "HEAD"))
		return;
	v->status = 405;
	v->message = "use GET";
	v->allow = route == ROUTE_METRICS ? "GET" : "GET, HEAD";
}

static void
on_head(void *arg, const struct http_head *h, const struct netaddr *client,
	struct head_verdict *v)
{
	struct side *side = arg;
	struct front *f = side->f;
	struct webhook_reply reply = { 0 };
	const char *path;
	const char *id;
	size_t path_len;
	size_t id_len;
	char *receiver_id;
	bool owned;
	bool go_on;
	enum route route;

	/* A request target in absolute form ("http://host/path") is for a
	 * proxy, and evhttp would route it by a path read another way than
	 * here: whr is not a proxy. */
	if (h->target.len == 0 || h->target.p[0] != '/') {
		v->status = 400;
		v->message = "the request target must be a path: whr is not a "
			     "proxy";
		return;
	}
	path = http_head_path(h, &path_len);
	route = route_on(side, route_of(path, path_len, &id, &id_len));
	if (route != ROUTE_WEBHOOK) {
		/* Where the head decides the answer, a body is not read. */
		if (h->chunked || h->content_length > 0)
			refuse_body(route, h, v);
		return;
	}
	if (!http_head_method_is(h, "POST")) {
		if ((h->chunked || h->content_length > 0) &&
		    !http_head_method_is(h, "GET")) {
			v->status = 405;
			v->message = "use GET (echo) or POST (deliveries)";
			v->allow = "GET, POST";
		}
		return;
	}
	go_on = receiver_id_of(id, id_len, &receiver_id, &owned, &reply) &&
		webhook_post_head(*f->secrets, receiver_id,
				  strlen(receiver_id), h->n_signatures,
				  h->signature.p, h->signature.len, &reply);
	if (owned)
		free(receiver_id);
	if (go_on)
		return;
	if (over_limit(f, client, reply.status, reply.signature,
		       &v->retry_after)) {
		v->status = 429;
		v->message = LIMITED_MESSAGE;
		return;
	}
	v->status = reply.status;
	snprintf(v->message_buf, sizeof(v->message_buf), "%s", reply.message);
	v->message = v->message_buf;
}

/* @p len bytes of @p s, NUL-ended in @p buf (cut to fit). */
static const char *
span_text(const char *s, size_t len, char *buf, size_t size)
{
	if (len >= size)
		len = size - 1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return buf;
}

/* The answer to a request refused from its head (connections.c), written
 * on its socket directly: evhttp never read the request. The connection
 * is closed after it. A best effort: a client that does not read gets
 * none. */
static void
answer_from_head(void *arg, const struct head_answer *a)
{
	struct side *side = arg;
	const struct head_verdict *v = a->verdict;
	const struct http_head *h = a->head;
	bool no_body = h != NULL && http_head_method_is(h, "HEAD");
	struct webhook_reply reply = {
		.status = v->status,
		.message = v->message,
	};
	struct request_log r = {
		.reply = &reply,
		.start_us = a->start_us,
		.peer = a->peer,
	};
	char method[16], path[512], date[40], text[640], retry[40] = "";
	char allow[48] = "";
	char *receiver_id = NULL;
	bool owned = false;
	bool webhook = false;
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		date[0] = '\0';
	if (v->retry_after != 0)
		snprintf(retry, sizeof(retry), "Retry-After: %u\r\n",
			 v->retry_after);
	if (v->allow != NULL)
		snprintf(allow, sizeof(allow), "Allow: %s\r\n", v->allow);
	n = snprintf(text, sizeof(text),
		     "HTTP/1.%d %d %s\r\n"
		     "Date: %s\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "Content-Length: %zu\r\n"
		     "%s%s"
		     "Connection: close\r\n\r\n"
		     "%s%s",
		     h != NULL && h->minor == 0 ? 0 : 1, v->status,
		     reason_phrase(v->status), date, strlen(v->message) + 1,
		     retry, allow,
		     no_body ? "" : v->message, no_body ? "" : "\n");
	if (n > 0)
		(void)send(a->fd, text,
			   (size_t)n < sizeof(text) ? (size_t)n
						    : sizeof(text) - 1,
			   MSG_NOSIGNAL | MSG_DONTWAIT);

	/* A request line could be read (not always: it may be what is
	 * wrong). */
	if (h != NULL && h->method.len > 0 && h->target.len > 0) {
		const char *p;
		const char *id;
		size_t len, id_len;
		struct webhook_reply ignored = { 0 };

		r.method = span_text(h->method.p, h->method.len, method,
				     sizeof(method));
		p = http_head_path(h, &len);
		r.path = span_text(p, len, path, sizeof(path));
		r.post = http_head_method_is(h, "POST");
		webhook = route_on(side, route_of(p, len, &id, &id_len)) ==
			  ROUTE_WEBHOOK;
		if (webhook &&
		    receiver_id_of(id, id_len, &receiver_id, &owned, &ignored))
			r.receiver = receiver_id;
	}
	if (webhook)
		count_request(side->f, r.receiver, v->status);
	if (a->client != NULL && !netaddr_equal(a->client, a->peer_address))
		r.client = a->client;
	log_request(&r);
	if (owned)
		free(receiver_id);
}

int
front_request_client(const struct front *f, struct evhttp_request *req,
		     struct netaddr *client)
{
	const char *peer;
	bool proxied;

	if (conn_request_client(f->main.conns, req, client, &peer,
				&proxied) == 0)
		return 0;
	if (f->admin.conns == NULL)
		return -ENOENT;
	return conn_request_client(f->admin.conns, req, client, &peer,
				   &proxied);
}

/* ---- listening sockets ----------------------------------------------- */

#define LISTEN_BACKLOG 1024

static void
format_address(const struct sockaddr *sa, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, size, "[%s]:%u", host, port);
	} else {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, size, "%s:%u", host, port);
	}
}

static int
bind_one(struct side *side, const struct addrinfo *ai, const char *spec)
{
	struct front *f = side->f;
	unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC |
			 LEV_OPT_CLOSE_ON_FREE;
	struct evconnlistener *l;
	struct evhttp_bound_socket *bound;
	struct bound *grown;
	struct sockaddr_storage ss;
	socklen_t ss_len = sizeof(ss);
	char where[INET6_ADDRSTRLEN + 16];
	int rc;

	/* An IPv6 address means just that, so [::] and 0.0.0.0 can both be
	 * given on one port. */
	if (ai->ai_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	l = evconnlistener_new_bind(f->base, NULL, NULL, flags, LISTEN_BACKLOG,
				    ai->ai_addr, (int)ai->ai_addrlen);
	if (l == NULL) {
		rc = -errno;
		whr_log_errno(WHR_LOG_ERROR, "cannot listen on %s", spec);
		return rc != 0 ? rc : -EADDRNOTAVAIL;
	}
	grown = realloc(f->bound, (f->n_bound + 1) * sizeof(*grown));
	if (grown == NULL) {
		evconnlistener_free(l);
		return -ENOMEM;
	}
	f->bound = grown;
	bound = evhttp_bind_listener(side->http, l);
	if (bound == NULL) {
		evconnlistener_free(l);
		return -ENOMEM;
	}
	f->bound[f->n_bound].side = side;
	f->bound[f->n_bound++].socket = bound;
	rc = conn_tracker_add_listener(side->conns, l);
	if (rc < 0)
		return rc;

	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss,
			&ss_len) == 0)
		format_address((struct sockaddr *)&ss, where, sizeof(where));
	else
		snprintf(where, sizeof(where), "%s", spec);
	whr_log(WHR_LOG_INFO, "listening on %s%s", where,
		side->admin ? " (admin: /metrics, /healthz, /readyz)" : "");
	return 0;
}

static int
listen_spec(struct side *side, const char *spec)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	const struct addrinfo *ai;
	const char *colon = strrchr(spec, ':');
	char host[256];
	size_t host_len = (size_t)(colon - spec);
	const char *host_start = spec;
	int rc;

	/* config.c checked the form: HOST:PORT or [V6]:PORT. */
	if (spec[0] == '[') {
		host_start++;
		host_len -= 2;
	}
	if (host_len >= sizeof(host)) {
		whr_log(WHR_LOG_ERROR, "listen address too long: %.64s", spec);
		return -EINVAL;
	}
	memcpy(host, host_start, host_len);
	host[host_len] = '\0';

	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0) {
		whr_log(WHR_LOG_ERROR, "cannot resolve listen address %s: %s",
			spec, gai_strerror(rc));
		return -EADDRNOTAVAIL;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		rc = bind_one(side, ai, spec);
		if (rc < 0)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

int
front_listen(struct front *f)
{
	size_t i;
	int rc;

	for (i = 0; i < f->c->n_listen; i++) {
		rc = listen_spec(&f->main, f->c->listen[i]);
		if (rc < 0)
			return rc;
	}
	if (f->c->admin_listen != NULL)
		return listen_spec(&f->admin, f->c->admin_listen);
	return 0;
}

void
front_stop_accepting(struct front *f)
{
	size_t i;

	f->stopping = true;
	conn_tracker_forget_listeners(f->main.conns);
	if (f->admin.conns != NULL)
		conn_tracker_forget_listeners(f->admin.conns);
	for (i = 0; i < f->n_bound; i++)
		evhttp_del_accept_socket(f->bound[i].side->http,
					 f->bound[i].socket);
	f->n_bound = 0;
}

size_t
front_busy(const struct front *f)
{
	return conn_tracker_busy(f->main.conns) +
	       (f->admin.conns != NULL ? conn_tracker_busy(f->admin.conns)
				       : 0);
}

/* The evhttp of @p side and its connections, with @p limits. */
static int
side_init(struct front *f, struct side *side, const struct conn_limits *limits,
	  bool admin)
{
	struct conn_hooks hooks = {
		.head = on_head,
		.answer = answer_from_head,
		.arg = side,
	};

	side->f = f;
	side->admin = admin;
	side->http = evhttp_new(f->base);
	if (side->http == NULL)
		return -ENOMEM;
	side->conns = conn_tracker_new(f->base, side->http, limits, &hooks);
	if (side->conns == NULL)
		return -ENOMEM;
	evhttp_set_max_body_size(side->http, (ev_ssize_t)limits->max_body);
	evhttp_set_max_headers_size(side->http,
				    (ev_ssize_t)limits->max_header_size);
	/* Every method reaches us, so that the webhook path can answer 405
	 * with an Allow header instead of evhttp's bare 405. */
	evhttp_set_allowed_methods(side->http,
				   EVHTTP_REQ_GET | EVHTTP_REQ_POST |
					   EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
					   EVHTTP_REQ_DELETE |
					   EVHTTP_REQ_OPTIONS |
					   EVHTTP_REQ_TRACE |
					   EVHTTP_REQ_CONNECT |
					   EVHTTP_REQ_PATCH);
	/* No Content-Type unless a body has one (evhttp adds text/html). */
	evhttp_set_default_content_type(side->http, NULL);
	evhttp_set_gencb(side->http, on_request, side);
	return 0;
}

static void
side_finish(struct side *side)
{
	/* evhttp frees the listeners first, then the connections, whose
	 * closing must not wake a listener. */
	if (side->conns != NULL)
		conn_tracker_forget_listeners(side->conns);
	if (side->http != NULL)
		evhttp_free(side->http);
	conn_tracker_free(side->conns);
}

struct front *
front_new(const struct config *c, struct event_base *base,
	  struct inbox *inbox, const struct secret_store *const *secrets,
	  struct metrics *metrics)
{
	struct conn_limits limits = {
		.max_per_client = c->max_connections_per_client,
		.trusted = c->trusted_proxies,
		.n_trusted = c->n_trusted_proxies,
		.max_header_size = c->max_header_size,
		.max_body = c->max_body,
		.max_body_memory = c->max_body_memory,
		.min_body_rate = c->min_body_rate,
		.header_timeout_us = c->header_timeout_us,
		.read_timeout_us = c->read_timeout_us,
		.write_timeout_us = c->write_timeout_us,
		.idle_timeout_us = c->idle_timeout_us,
	};
	struct conn_limits admin_limits;
	struct front *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->c = c;
	f->inbox = inbox;
	f->secrets = secrets;
	f->metrics = metrics;
	f->base = base;
	/* A few connections at most, and descriptors enough for them
	 * within the margin kept for whr itself. */
	admin_limits = limits;
	admin_limits.max_connections = ADMIN_MAX_CONNECTIONS;
	if (c->admin_listen != NULL &&
	    side_init(f, &f->admin, &admin_limits, true) < 0)
		goto err;
	/* Each listen address may be several sockets (a name with an IPv4
	 * and an IPv6 address): two apiece is the guess. */
	limits.max_connections =
		conn_fit_descriptors(c->max_connections, 2 * c->n_listen);
	if (side_init(f, &f->main, &limits, false) < 0)
		goto err;
	if (c->rate_limit > 0) {
		f->limit = ratelimit_new(c->rate_limit,
					 config_rate_limit_burst(c),
					 RATE_LIMIT_CLIENTS);
		if (f->limit == NULL)
			goto err;
	}
	return f;

err:
	front_free(f);
	return NULL;
}

void
front_free(struct front *f)
{
	if (f == NULL)
		return;
	side_finish(&f->main);
	side_finish(&f->admin);
	ratelimit_free(f->limit);
	free(f->bound);
	free(f);
}
