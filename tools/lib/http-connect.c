/*
 * The tools' HTTP client, connecting: names resolved by the system
 * resolver, a non-blocking connect() to each address in turn (its
 * SO_ERROR read directly, so that a refusal is told from a timeout or an
 * unreachable network), then TLS in a bufferevent_openssl, with the
 * certificate checked against the system store or --cacert, the host
 * name checked, and SNI.
 *
 * getaddrinfo, not evdns: /etc/hosts, nsswitch and search domains then
 * give the answer curl and the sender's own OS would. Each answer (or
 * failure) is kept for the client's life, one run of a tool, so that
 * --concurrency does not resolve per request. The price: --timeout does
 * not bound a slow resolver (glibc's own timeouts apply).
 */
#include "lib/http-client-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

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

void
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

static void connect_next(struct exchange *x);

/* ---- resolving ------------------------------------------------------ */

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

void
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

void
http_client_forget_names(struct http_client *c)
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
