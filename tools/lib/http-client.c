/*
 * The tools' HTTP client: one connection per request, on bufferevents
 * (bufferevent_openssl for https), any number in flight on one loop.
 *
 * Why not evhttp's client (evhttp_make_request): the tools exist to say
 * precisely why a delivery failed, and evhttp's request error callback
 * gets EVREQ_HTTP_EOF or EVREQ_HTTP_TIMEOUT for nearly everything: a
 * refused connection, a reset, a handshake that failed on an expired
 * certificate and a server that closed without answering look alike, and
 * the socket error and the certificate verify result are gone by then.
 * evhttp also writes the body with the headers, so `Expect:
 * 100-continue` cannot wait for the interim answer as .NET does, and its
 * timeout is per read or write, not for the whole request as .NET's
 * HttpClient.Timeout is. So http-connect.c opens the connection by hand
 * (a non-blocking connect(), its SO_ERROR read directly) and runs TLS in
 * a bufferevent_openssl on the connected socket (SSL_get_verify_result()
 * after a failed handshake); this file sends the request, with the
 * deadline and the wait for 100 Continue, and feeds the answer to
 * http-response.c.
 */
#include "lib/http-client-private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

static void
format_duration(char *out, size_t size, int64_t us)
{
	if (us < 1000000)
		snprintf(out, size, "%lld ms", (long long)(us / 1000));
	else if (us % 1000000 == 0)
		snprintf(out, size, "%lld s", (long long)(us / 1000000));
	else
		snprintf(out, size, "%.1f s", (double)us / 1e6);
}

static int64_t
elapsed_us(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t0->tv_sec) * 1000000 +
	       (now.tv_nsec - t0->tv_nsec) / 1000;
}

/* ---- the end of an exchange ----------------------------------------- */

static void
release(struct exchange *x)
{
	if (x->bev != NULL) {
		bufferevent_free(x->bev);	/* closes fd, frees SSL */
		x->bev = NULL;
	}
	if (x->connecting != NULL) {
		event_free(x->connecting);
		x->connecting = NULL;
	}
	if (x->fd >= 0) {
		close(x->fd);
		x->fd = -1;
	}
	if (x->deadline != NULL) {
		event_free(x->deadline);
		x->deadline = NULL;
	}
	if (x->continue_wait != NULL) {
		event_free(x->continue_wait);
		x->continue_wait = NULL;
	}
}

static void
exchange_free(struct exchange *x)
{
	struct http_client *c = x->client;

	release(x);
	if (x->step != NULL)
		event_free(x->step);
	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		c->active = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	http_result_finish(&x->res);
	free(x->host);
	free(x->body);
	free(x);
}

void
exchange_end(struct exchange *x, enum http_error error, const char *fmt, ...)
{
	va_list ap;

	if (x->ended)
		return;
	x->ended = true;
	x->res.error = error;
	x->res.phase = error == HTTP_OK ? HTTP_PHASE_DONE : x->phase;
	x->res.elapsed_us = elapsed_us(&x->t0);
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(x->res.detail, sizeof(x->res.detail), fmt, ap);
		va_end(ap);
	}
	release(x);
	event_active(x->step, EV_TIMEOUT, 1);
}

static void
on_step(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;

	if (!x->ended) {
		exchange_connect(x);
		return;
	}
	x->done(&x->res, x->userdata);
	exchange_free(x);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;
	char t[32];

	format_duration(t, sizeof(t), x->client->timeout_us);
	switch (x->phase) {
	case HTTP_PHASE_RESOLVE:
	case HTTP_PHASE_CONNECT:
		exchange_end(x, HTTP_ERR_TIMEOUT, "timeout: no connection to "
			     "%s within %s", x->res.peer, t);
		break;
	case HTTP_PHASE_TLS:
		exchange_end(x, HTTP_ERR_TIMEOUT, "timeout: the TLS handshake "
			     "with %s did not finish within %s", x->res.peer,
			     t);
		break;
	case HTTP_PHASE_SEND:
		exchange_end(x, HTTP_ERR_TIMEOUT, "timeout: the request could "
			     "not be sent to %s within %s", x->res.peer, t);
		break;
	case HTTP_PHASE_WAIT:
		exchange_end(x, HTTP_ERR_TIMEOUT, "timeout: no answer from %s "
			     "within %s (the request was sent)", x->res.peer,
			     t);
		break;
	default:
		exchange_end(x, HTTP_ERR_TIMEOUT, "timeout: the answer from %s "
			     "was not complete within %s (%llu body bytes "
			     "came)", x->res.peer, t,
			     (unsigned long long)x->res.body_total);
		break;
	}
}

/* ---- sending and reading -------------------------------------------- */

static void
send_body(struct exchange *x)
{
	x->body_pending = false;
	x->res.body_sent = true;
	if (x->continue_wait != NULL)
		event_del(x->continue_wait);
	if (x->body_len > 0 && bufferevent_write(x->bev, x->body,
						 x->body_len) < 0)
		exchange_end(x, HTTP_ERR_INTERNAL, "out of memory");
}

static void
on_continue_wait(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;

	if (x->body_pending)
		send_body(x);
}

static void
send_request(struct exchange *x)
{
	struct timeval wait = { 0, HTTP_CONTINUE_WAIT_US };

	x->phase = HTTP_PHASE_SEND;
	if (bufferevent_write(x->bev, x->res.request_head,
			      strlen(x->res.request_head)) < 0) {
		exchange_end(x, HTTP_ERR_INTERNAL, "out of memory");
		return;
	}
	if (!x->expect_continue || x->body_len == 0) {
		send_body(x);
		return;
	}
	x->body_pending = true;
	x->continue_wait = evtimer_new(x->client->base, on_continue_wait, x);
	if (x->continue_wait == NULL || evtimer_add(x->continue_wait,
						    &wait) < 0)
		exchange_end(x, HTTP_ERR_INTERNAL, "out of memory");
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct exchange *x = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		switch (http_parser_feed(&x->parser, in)) {
		case HTTP_PARSE_INTERIM:
			if (x->res.interim_status == 100 && x->body_pending)
				send_body(x);
			if (x->ended)
				return;
			continue;
		case HTTP_PARSE_MORE:
			if (x->parser.started)
				x->phase = HTTP_PHASE_READ;
			return;
		case HTTP_PARSE_DONE:
			/* an answer before the body was asked for: the body
			 * is never sent (body_sent stays false) */
			x->body_pending = false;
			exchange_end(x, HTTP_OK, NULL);
			return;
		case HTTP_PARSE_ERROR:
			exchange_end(x, HTTP_ERR_PROTOCOL, NULL);
			return;
		}
	}
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct exchange *x = arg;

	if (x->phase == HTTP_PHASE_SEND && !x->body_pending)
		x->phase = HTTP_PHASE_WAIT;
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct exchange *x = arg;
	int sys_error = EVUTIL_SOCKET_ERROR();
	const char *when;

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);

		x->res.verify_result = ssl != NULL ?
				       SSL_get_verify_result(ssl) : -1;
		send_request(x);
		return;
	}
	if (x->https && (x->phase == HTTP_PHASE_TLS ||
			 (what & BEV_EVENT_ERROR))) {
		on_read(bev, x);	/* whatever came before */
		if (!x->ended)
			exchange_tls_failed(x, (what & BEV_EVENT_ERROR) ?
					    sys_error : 0);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && (what & BEV_EVENT_WRITING) &&
	    !(what & BEV_EVENT_READING)) {
		/* The server stopped reading (it may have answered 413 and
		 * closed): its answer, if any, is still to be read. */
		x->body_pending = false;
		return;
	}
	on_read(bev, x);
	if (x->ended)
		return;
	if (what & BEV_EVENT_EOF) {
		if (http_parser_eof(&x->parser) == HTTP_PARSE_DONE)
			exchange_end(x, HTTP_OK, NULL);
		else
			exchange_end(x, HTTP_ERR_CLOSED, NULL);
		return;
	}
	when = x->phase == HTTP_PHASE_SEND ? "while sending the request" :
	       x->phase == HTTP_PHASE_WAIT ? "before answering" :
					     "while answering";
	exchange_end(x, HTTP_ERR_CLOSED, "the connection to %s failed %s: "
		     "%s", x->res.peer, when, strerror(sys_error));
}

void
exchange_ready(struct exchange *x)
{
	bufferevent_setcb(x->bev, on_read, on_write, on_event, x);
	bufferevent_enable(x->bev, EV_READ | EV_WRITE);
	if (!x->https)
		send_request(x);
}

int
http_client_start(struct http_client *c, const struct http_request *req,
		  http_done_fn done, void *userdata)
{
	struct timeval tv = { (time_t)(c->timeout_us / 1000000),
			      (suseconds_t)(c->timeout_us % 1000000) };
	struct exchange *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return -ENOMEM;
	x->client = c;
	x->fd = -1;
	x->done = done;
	x->userdata = userdata;
	x->next = c->active;
	if (c->active != NULL)
		c->active->prev = x;
	c->active = x;
	clock_gettime(CLOCK_MONOTONIC, &x->t0);
	x->https = req->url->https;
	x->port = req->url->port;
	x->expect_continue = req->expect_continue;
	x->res.verify_result = -1;
	x->host = strdup(req->url->host);
	x->res.request_head = http_request_head(req, NULL);
	x->body = malloc(req->body_len + 1);
	x->step = event_new(c->base, -1, 0, on_step, x);
	x->deadline = evtimer_new(c->base, on_deadline, x);
	if (x->host == NULL || x->res.request_head == NULL ||
	    x->body == NULL || x->step == NULL || x->deadline == NULL ||
	    evtimer_add(x->deadline, &tv) < 0) {
		exchange_free(x);
		return -ENOMEM;
	}
	if (req->body_len > 0)
		memcpy(x->body, req->body, req->body_len);
	x->body_len = req->body_len;
	snprintf(x->res.peer, sizeof(x->res.peer),
		 strchr(x->host, ':') != NULL ? "[%s]:%d" : "%s:%d", x->host,
		 x->port);
	http_parser_init(&x->parser, &x->res, strcmp(req->method,
						     "HEAD") == 0);
	event_active(x->step, EV_TIMEOUT, 1);
	return 0;
}

/* ---- the client ----------------------------------------------------- */

struct http_client *
http_client_new(struct event_base *base, const struct http_client_options *o)
{
	struct http_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->base = base;
	c->timeout_us = o->timeout_us;
	c->insecure = o->insecure;
	if (o->cacert != NULL && (c->cacert = strdup(o->cacert)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
http_client_free(struct http_client *c)
{
	if (c == NULL)
		return;
	while (c->active != NULL)
		exchange_free(c->active);
	http_client_forget_names(c);
	if (c->ssl_ctx != NULL)
		SSL_CTX_free(c->ssl_ctx);
	free(c->cacert);
	free(c);
}

struct run_state {
	struct http_result *res;
	bool done;
};

static void
run_done(struct http_result *res, void *userdata)
{
	struct run_state *st = userdata;

	*st->res = *res;
	memset(res, 0, sizeof(*res));
	st->done = true;
}

int
http_client_run(struct http_client *c, const struct http_request *req,
		struct http_result *res)
{
	struct run_state st = { res, false };
	int rc;

	memset(res, 0, sizeof(*res));
	rc = http_client_start(c, req, run_done, &st);
	if (rc < 0)
		return rc;
	while (!st.done)
		event_base_loop(c->base, EVLOOP_ONCE);
	return 0;
}
