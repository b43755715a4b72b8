/*
 * The HTTP front's listening sockets: every --listen address bound (IPv6
 * included, port 0 logged with the port chosen), and closed at stop.
 */
#include "front/front-internal.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "front/connections.h"
#include "log.h"
#include "receiver.h"
#include "util.h"

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
bind_one(struct front *f, const struct addrinfo *ai, const char *spec)
{
	unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC |
			 LEV_OPT_CLOSE_ON_FREE;
	struct evconnlistener *l;
	struct evhttp_bound_socket *bound;
	struct evhttp_bound_socket **grown;
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
	bound = evhttp_bind_listener(f->http, l);
	if (bound == NULL) {
		evconnlistener_free(l);
		return -ENOMEM;
	}
	f->bound[f->n_bound++] = bound;
	rc = conn_tracker_add_listener(f->conns, l);
	if (rc < 0)
		return rc;

	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss,
			&ss_len) == 0)
		format_address((struct sockaddr *)&ss, where, sizeof(where));
	else
		snprintf(where, sizeof(where), "%s", spec);
	whr_log(WHR_LOG_INFO, "listening on %s", where);
	return 0;
}

static int
listen_spec(struct front *f, const char *spec)
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
		rc = bind_one(f, ai, spec);
		if (rc < 0)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

int
front_listen(struct front *f)
{
	const struct config *c = &f->r->config;
	size_t i;
	int rc;

	for (i = 0; i < c->n_listen; i++) {
		rc = listen_spec(f, c->listen[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void
front_stop_accepting(struct front *f)
{
	size_t i;

	f->stopping = true;
	conn_tracker_forget_listeners(f->conns);
	for (i = 0; i < f->n_bound; i++)
		evhttp_del_accept_socket(f->http, f->bound[i]);
	f->n_bound = 0;
}
