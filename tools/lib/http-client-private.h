/*
 * Inside the tools' HTTP client: a request in flight (struct exchange),
 * shared by the request code (http-client.c) and the connection code
 * (http-connect.c), and the response parser (http-response.c) they feed.
 */
#ifndef WHR_CMD_HTTP_CLIENT_PRIVATE_H
#define WHR_CMD_HTTP_CLIENT_PRIVATE_H

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "lib/http-client.h"

struct bufferevent;
struct evbuffer;
struct event;

/* Longest response head (status line and headers) accepted. */
#define HTTP_HEAD_MAX (64 * 1024)

enum http_parse {
	HTTP_PARSE_MORE,	/* needs more bytes */
	HTTP_PARSE_INTERIM,	/* a 1xx was read (res->interim_status):
				 * call again for the final answer */
	HTTP_PARSE_DONE,	/* a whole final response */
	HTTP_PARSE_ERROR,	/* not HTTP: res->detail says why */
};

struct http_parser {
	int state;
	bool no_body;		/* the answer to a HEAD request */
	bool started;		/* a byte of a response was read */
	size_t head_size;	/* bytes of the current head so far */
	uint64_t left;		/* of the body or of the current chunk */
	struct http_result *res;
};

void http_parser_init(struct http_parser *p, struct http_result *res,
		      bool head_request);
/* Consume what it can of @p in into p->res (status, headers, body). */
enum http_parse http_parser_feed(struct http_parser *p, struct evbuffer *in);
/* The connection ended: HTTP_PARSE_DONE when a body read to the end of
 * the connection is complete, HTTP_PARSE_ERROR (with res->detail)
 * otherwise. */
enum http_parse http_parser_eof(struct http_parser *p);

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
	struct http_parser parser;
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

/* http-client.c: record the outcome (the detail, unless @p fmt is NULL
 * and a detail is already written), close everything, and deliver it
 * from the loop. Once only. */
void exchange_end(struct exchange *x, enum http_error error,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* http-client.c: x->bev is connected (TLS still to shake hands): take
 * over its callbacks and, over plain TCP, send the request. */
void exchange_ready(struct exchange *x);

/* http-connect.c: resolve, connect, and wrap in TLS for https; then
 * exchange_ready(), or exchange_end() with the reason. */
void exchange_connect(struct exchange *x);
/* http-connect.c: TLS failed (in the handshake or later): end with the
 * most specific reason (the certificate check, OpenSSL's, @p sys_error). */
void exchange_tls_failed(struct exchange *x, int sys_error);
/* http-connect.c: forget the resolved names. */
void http_client_forget_names(struct http_client *c);

#endif /* WHR_CMD_HTTP_CLIENT_PRIVATE_H */
