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
 * HttpClient.Timeout is. So this file opens the connection by hand: names
 * resolved by the system resolver, a non-blocking connect() to each
 * address in turn (its SO_ERROR read directly, so that a refusal is told
 * from a timeout or an unreachable network), then TLS in a
 * bufferevent_openssl on the connected socket, with the certificate
 * checked against the system store or --cacert, the host name checked,
 * and SNI (SSL_get_verify_result() after a failed handshake). It then
 * sends the request, with the deadline and the wait for 100 Continue,
 * and feeds the answer to http-response.c.
 */
#include "lib/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "lib/http-response.h"

/* ---- requests in flight -------------------------------------------- */

struct dns_entry {
	struct dns_entry *next;
	char *host;
	int port;
	int error;			/* getaddrinfo's; 0: resolved */
	int sys_errno;			/* for EAI_SYSTEM */
	struct addrinfo *addrs;
};

struct exchange {
	struct http_client *client;
	struct exchange *prev;
	struct exchange *next;
	http_done_fn done;
	void *userdata;

	char *host;
	int port;
	bool https;
	char *body;
	size_t body_len;
	bool expect_continue;
	bool body_pending;		/* held back for 100 Continue */
	struct timespec t0;

	enum http_phase phase;
	struct event *step;		/* deferred: begin, then deliver */
	struct event *deadline;
	struct event *continue_wait;
	struct event *connecting;	/* EV_WRITE on fd while connecting */
	int fd;
	const struct addrinfo *next_addr;
	bool refused;
	struct bufferevent *bev;
	struct http_parser *parser;
	struct http_result res;
	bool ended;
};

struct http_client {
	struct event_base *base;
	int64_t timeout_us;
	char *cacert;
	bool insecure;
	SSL_CTX *ssl_ctx;
	struct dns_entry *dns;
	struct exchange *active;
};

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

/* Record the outcome (the detail, unless @p fmt is NULL and a detail is
 * already written), close everything, and deliver it from the loop. Once
 * only. */
static void exchange_end(struct exchange *x, enum http_error error,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

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
	http_parser_free(x->parser);
	http_result_finish(&x->res);
	free(x->host);
	free(x->body);
	free(x);
}

static void
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

/* ---- TLS ------------------------------------------------------------ */

int
http_client_tls_init(struct http_client *c, char *err, size_t err_size)
{
	SSL_CTX *ctx;
	FILE *f;

	if (c->ssl_ctx != NULL)
		return 0;
	if (c->cacert != NULL && !c->insecure) {
		f = fopen(c->cacert, "r");
		if (f == NULL) {
			snprintf(err, err_size, "cannot read %s: %s",
				 c->cacert, strerror(errno));
			return -EINVAL;
		}
		fclose(f);
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		snprintf(err, err_size, "cannot set up TLS: %s",
			 ERR_reason_error_string(ERR_get_error()));
		return -EINVAL;
	}
	/* .NET's floor; a peer that closes without close_notify simply
	 * ends the connection (bodies are framed by their length). */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(ctx, c->insecure ? SSL_VERIFY_NONE :
			   SSL_VERIFY_PEER, NULL);
	if (!c->insecure &&
	    (c->cacert != NULL ?
	     SSL_CTX_load_verify_locations(ctx, c->cacert, NULL) :
	     SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		unsigned long e = ERR_get_error();

		snprintf(err, err_size, "cannot load CA certificates%s%s: %s",
			 c->cacert != NULL ? " from " : "",
			 c->cacert != NULL ? c->cacert : "",
			 e != 0 ? ERR_reason_error_string(e) : "unknown");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	c->ssl_ctx = ctx;
	return 0;
}

static const char *
verify_hint(long v)
{
	switch (v) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		return " (its issuer is not a trusted CA: the sender refuses "
		       "it too; --cacert FILE trusts a private CA here)";
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return " (the certificate is not for the URL's host)";
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return " (renew it)";
	default:
		return "";
	}
}

/* TLS failed (in the handshake or later): end with the most specific
 * reason (the certificate check, OpenSSL's, @p sys_error). */
static void
exchange_tls_failed(struct exchange *x, int sys_error)
{
	SSL *ssl = bufferevent_openssl_get_ssl(x->bev);
	unsigned long e;
	unsigned long first = 0;
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	const char *when = x->phase == HTTP_PHASE_TLS ?
			   "TLS handshake with" : "TLS connection to";
	char reason[160];

	/* the first error OpenSSL can name (libevent may add others) */
	while ((e = bufferevent_get_openssl_error(x->bev)) != 0) {
		if (first == 0 && ERR_reason_error_string(e) != NULL)
			first = e;
	}
	if (x->phase == HTTP_PHASE_TLS)
		x->res.verify_result = v;
	if (v != X509_V_OK && x->phase == HTTP_PHASE_TLS) {
		exchange_end(x, HTTP_ERR_TLS, "%s %s failed: certificate "
			     "verify failed: %s%s", when, x->res.peer,
			     X509_verify_cert_error_string(v),
			     verify_hint(v));
		return;
	}
	if (first != 0) {
		snprintf(reason, sizeof(reason), "%s%s",
			 ERR_reason_error_string(first),
			 ERR_GET_REASON(first) == SSL_R_WRONG_VERSION_NUMBER ?
			 " (is it plain HTTP, not HTTPS?)" : "");
	} else if (sys_error != 0) {
		snprintf(reason, sizeof(reason), "%s", strerror(sys_error));
	} else {
		snprintf(reason, sizeof(reason), "the server closed the "
			 "connection");
	}
	exchange_end(x, x->phase == HTTP_PHASE_TLS ? HTTP_ERR_TLS :
		     HTTP_ERR_CLOSED, "%s %s failed: %s", when, x->res.peer,
		     reason);
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
		switch (http_parser_feed(x->parser, in)) {
		case HTTP_PARSE_INTERIM:
			if (x->res.interim_status == 100 && x->body_pending)
				send_body(x);
			if (x->ended)
				return;
			continue;
		case HTTP_PARSE_MORE:
			if (http_parser_started(x->parser))
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
		if (http_parser_eof(x->parser) == HTTP_PARSE_DONE)
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

/* x->bev is connected (TLS still to shake hands): take over its
 * callbacks and, over plain TCP, send the request. */
static void
exchange_ready(struct exchange *x)
{
	bufferevent_setcb(x->bev, on_read, on_write, on_event, x);
	bufferevent_enable(x->bev, EV_READ | EV_WRITE);
	if (!x->https)
		send_request(x);
}

static void connect_next(struct exchange *x);

/* ---- resolving ------------------------------------------------------ */

/* getaddrinfo, not evdns: /etc/hosts, nsswitch and search domains then
 * give the answer curl and the sender's own OS would. Each answer (or
 * failure) is kept for the client's life, one run of a tool, so that
 * --concurrency does not resolve per request. The price: --timeout does
 * not bound a slow resolver (glibc's own timeouts apply). */

static const struct dns_entry *
resolve(struct http_client *c, const char *host, int port)
{
	struct addrinfo hints;
	struct dns_entry *e;
	char service[8];

	for (e = c->dns; e != NULL; e = e->next) {
		if (e->port == port && strcmp(e->host, host) == 0)
			return e;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->host = strdup(host)) == NULL) {
		free(e);
		return NULL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	e->port = port;
	e->error = getaddrinfo(host, service, &hints, &e->addrs);
	e->sys_errno = errno;
	e->next = c->dns;
	c->dns = e;
	return e;
}

/* Resolve, connect, and wrap in TLS for https; then exchange_ready(), or
 * exchange_end() with the reason. */
static void
exchange_connect(struct exchange *x)
{
	const struct dns_entry *e = resolve(x->client, x->host, x->port);

	if (e == NULL) {
		exchange_end(x, HTTP_ERR_INTERNAL, "out of memory");
	} else if (e->error != 0) {
		exchange_end(x, HTTP_ERR_DNS, "DNS: cannot resolve '%s': %s",
			     x->host, e->error == EAI_SYSTEM ?
			     strerror(e->sys_errno) : gai_strerror(e->error));
	} else {
		x->next_addr = e->addrs;
		connect_next(x);
	}
}

/* ---- connecting ------------------------------------------------------ */

static bool
is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}

static void
connected(struct exchange *x)
{
	struct event_base *base = x->client->base;
	char err[256];
	SSL *ssl;

	if (x->connecting != NULL) {
		event_free(x->connecting);
		x->connecting = NULL;
	}
	if (!x->https) {
		x->bev = bufferevent_socket_new(base, x->fd,
						BEV_OPT_CLOSE_ON_FREE);
	} else {
		if (http_client_tls_init(x->client, err, sizeof(err)) < 0) {
			exchange_end(x, HTTP_ERR_TLS, "%s", err);
			return;
		}
		ssl = SSL_new(x->client->ssl_ctx);
		if (ssl == NULL) {
			exchange_end(x, HTTP_ERR_INTERNAL, "out of memory");
			return;
		}
		/* SNI for names only (RFC 6066); the identity checked is
		 * the URL's host, a name or an IP address */
		if (!is_ip_literal(x->host))
			SSL_set_tlsext_host_name(ssl, x->host);
		if (!x->client->insecure)
			SSL_set1_host(ssl, x->host);
		/* On failure (out of memory) libevent may have freed ssl
		 * or not: leaking it is the safe side. */
		x->bev = bufferevent_openssl_socket_new(base, x->fd, ssl,
			BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		x->phase = HTTP_PHASE_TLS;
	}
	if (x->bev == NULL) {
		exchange_end(x, HTTP_ERR_INTERNAL, "out of memory");
		return;
	}
	x->fd = -1;	/* the bufferevent's now */
	exchange_ready(x);
}

static void
connect_failed(struct exchange *x, int error)
{
	size_t n = strlen(x->res.detail);
	char *d = x->res.detail + n;
	size_t room = sizeof(x->res.detail) - n;

	if (error == ECONNREFUSED && (n == 0 || x->refused)) {
		snprintf(d, room, "%s%s", n == 0 ?
			 "connection refused by " : ", ", x->res.peer);
	} else {
		snprintf(d, room, "%scannot connect to %s: %s",
			 n == 0 ? "" : "; ", x->res.peer, strerror(error));
	}
	x->refused = x->refused || error == ECONNREFUSED;
	close(x->fd);
	x->fd = -1;
}

static void
on_connecting(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;
	int error = 0;
	socklen_t len = sizeof(error);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
		error = errno;
	if (error == 0) {
		connected(x);
		return;
	}
	event_free(x->connecting);
	x->connecting = NULL;
	connect_failed(x, error);
	connect_next(x);
}

static void
peer_name(char *out, size_t size, const struct sockaddr *sa)
{
	char addr[INET6_ADDRSTRLEN];
	const void *raw;
	int port;

	if (sa->sa_family == AF_INET6) {
		raw = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	} else {
		raw = &((const struct sockaddr_in *)sa)->sin_addr;
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	}
	if (inet_ntop(sa->sa_family, raw, addr, sizeof(addr)) == NULL)
		snprintf(addr, sizeof(addr), "?");
	snprintf(out, size, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
		 addr, port);
}

static void
connect_next(struct exchange *x)
{
	const struct addrinfo *ai;
	int one = 1;

	x->phase = HTTP_PHASE_CONNECT;
	while ((ai = x->next_addr) != NULL) {
		x->next_addr = ai->ai_next;
		peer_name(x->res.peer, sizeof(x->res.peer), ai->ai_addr);
		x->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
			       SOCK_CLOEXEC, IPPROTO_TCP);
		if (x->fd < 0) {
			exchange_end(x, HTTP_ERR_INTERNAL, "no socket: %s",
				     strerror(errno));
			return;
		}
		/* no Nagle: the head and the body (or TLS records) must not
		 * wait for the peer's delayed ACK */
		setsockopt(x->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(x->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			connected(x);
			return;
		}
		if (errno == EINPROGRESS) {
			x->connecting = event_new(x->client->base, x->fd,
						  EV_WRITE, on_connecting, x);
			if (x->connecting == NULL ||
			    event_add(x->connecting, NULL) < 0)
				exchange_end(x, HTTP_ERR_INTERNAL,
					     "out of memory");
			return;
		}
		connect_failed(x, errno);
	}
	exchange_end(x, x->refused ? HTTP_ERR_REFUSED : HTTP_ERR_CONNECT,
		     NULL);
}

/* Forget the resolved names. */
static void
forget_names(struct http_client *c)
{
	struct dns_entry *e;

	while ((e = c->dns) != NULL) {
		c->dns = e->next;
		if (e->addrs != NULL)
			freeaddrinfo(e->addrs);
		free(e->host);
		free(e);
	}
}

/* ---- a request, start to end --------------------------------------- */

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
	x->parser = http_parser_new(&x->res, strcmp(req->method,
						    "HEAD") == 0);
	x->step = event_new(c->base, -1, 0, on_step, x);
	x->deadline = evtimer_new(c->base, on_deadline, x);
	if (x->host == NULL || x->res.request_head == NULL ||
	    x->body == NULL || x->parser == NULL || x->step == NULL ||
	    x->deadline == NULL || evtimer_add(x->deadline, &tv) < 0) {
		exchange_free(x);
		return -ENOMEM;
	}
	if (req->body_len > 0)
		memcpy(x->body, req->body, req->body_len);
	x->body_len = req->body_len;
	snprintf(x->res.peer, sizeof(x->res.peer),
		 strchr(x->host, ':') != NULL ? "[%s]:%d" : "%s:%d", x->host,
		 x->port);
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
	forget_names(c);
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
