/*
 * The HTTP/1.1 client of the whr tools (send, probe, healthcheck,
 * register): libcurl's multi interface driven by a libevent loop. The
 * request goes out exactly as built here (its headers in order, nothing
 * of libcurl's own), one request per connection, any number in flight on
 * one event loop, redirects never followed, and every failure classified
 * (see enum http_error) with its cause.
 *
 * The module's files: http-url.c (URLs and request heads), http-client.c
 * (the client on libcurl, results, escaping them for display).
 */
#ifndef WHR_TOOLS_HTTP_H
#define WHR_TOOLS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* The first bytes of a response body kept in struct http_result; the
 * rest is read and counted, not kept. */
#define HTTP_BODY_KEEP (64 * 1024)

/* How long an `Expect: 100-continue` request waits for the interim
 * answer before it sends the body anyway (.NET Framework's default). */
#define HTTP_CONTINUE_WAIT_US (350 * 1000)

/* ---- URLs ----------------------------------------------------------- */

struct http_url {
	bool https;
	char *host;		/* lowercase, IPv6 without brackets */
	int port;		/* always set: 80/443 when the URL has none */
	char *host_header;	/* host, [v6] in brackets, :port when the port
				 * is not the scheme's default */
	char *path;		/* canonical: "/" when empty, dot segments
				 * removed, spaces and non-ASCII
				 * percent-encoded, as .NET's Uri does */
	char *query;		/* after '?', NULL when the URL has none */
	char *origin;		/* scheme://host_header, for messages */
};

/* Parse an http or https URL. 0, or -EINVAL with a reason in @p err
 * (never the URL's user info). http_url_finish() frees the members. */
int http_url_parse(const char *text, struct http_url *url, char *err,
		   size_t err_size);
void http_url_finish(struct http_url *url);

/* The byte "%XX" at @p s stands for (hex digits in either case), or -1
 * when @p s starts no such escape; nothing is read past a byte that
 * does not fit. */
int http_percent_byte(const char *s);

/* ---- requests ------------------------------------------------------- */

struct http_header {
	const char *name;
	const char *value;
};

/* Is one of the @p n @p headers named @p name (any case)? */
bool http_headers_have(const struct http_header *headers, size_t n,
		       const char *name);

struct http_request {
	const char *method;		/* "GET", "POST" */
	const struct http_url *url;
	const char *query;		/* replaces url->query when not NULL
					 * ("" drops it) */
	const struct http_header *headers; /* sent first, in this order */
	size_t n_headers;
	const void *body;
	size_t body_len;
	bool expect_continue;		/* Expect: 100-continue, and wait
					 * for it before the body */
	const char *user;		/* HTTP Basic auth when not NULL,
					 * with @password; the Authorization
					 * header is never kept in a result */
	const char *password;
};

/* The request line and headers exactly as they are sent: @p req's
 * headers in order, then Host (unless @p req has one), Content-Length
 * (for a body or a POST, unless given) and Expect; the blank line
 * included (without Authorization: the client adds it for @p req->user).
 * Malloc'd, NUL-terminated, length in *len; NULL when out of memory. */
char *http_request_head(const struct http_request *req, size_t *len);

/* ---- results -------------------------------------------------------- */

enum http_error {
	HTTP_OK = 0,		/* a final response came (any status) */
	HTTP_ERR_DNS,		/* the host name does not resolve */
	HTTP_ERR_REFUSED,	/* an address refused the connection */
	HTTP_ERR_CONNECT,	/* no connection for another reason */
	HTTP_ERR_TIMEOUT,	/* the timeout passed (see phase) */
	HTTP_ERR_TLS,		/* the TLS handshake failed */
	HTTP_ERR_CLOSED,	/* closed or reset before a whole response */
	HTTP_ERR_PROTOCOL,	/* the answer is not HTTP/1.x */
	HTTP_ERR_INTERNAL,	/* out of memory, no socket... */
};

enum http_phase {
	HTTP_PHASE_RESOLVE,
	HTTP_PHASE_CONNECT,
	HTTP_PHASE_TLS,
	HTTP_PHASE_SEND,	/* writing the request */
	HTTP_PHASE_WAIT,	/* request sent, no answer yet */
	HTTP_PHASE_READ,	/* reading the answer */
	HTTP_PHASE_DONE,
};

struct http_response_header {
	char *name;
	char *value;
};

struct http_result {
	enum http_error error;
	enum http_phase phase;		/* where it ended */
	char detail[320];		/* the specific reason, "" when OK */
	long verify_result;		/* https: X509_V_OK or why the
					 * certificate was refused; -1 before
					 * a handshake */
	char peer[64];			/* "127.0.0.1:8080" (connected) */
	int64_t elapsed_us;		/* from start to the end */

	char *request_head;		/* as sent (http_request_head() until
					 * it is), an Authorization value
					 * replaced by "(not shown)" */
	bool body_sent;			/* false: answered before the
					 * body went (Expect) */

	int status;			/* 0 without a response */
	char version[12];		/* "HTTP/1.1" */
	char *reason;
	int interim_status;		/* the last 1xx seen, or 0 */
	struct http_response_header *headers;	/* as received, in order */
	size_t n_headers;
	char *body;			/* the first HTTP_BODY_KEEP bytes,
					 * NUL-terminated (never NULL when
					 * status != 0) */
	size_t body_len;		/* bytes kept in body */
	uint64_t body_total;		/* bytes received */
};

/* The first value of header @p name (any case), or NULL. */
const char *http_result_header(const struct http_result *r,
			       const char *name);
/* A short name of an error class: "timeout", "connection refused"... */
const char *http_error_name(enum http_error error);
/* Free what a result holds; a zeroed result is fine. */
void http_result_finish(struct http_result *r);

/* Write @p data (at most @p max of its @p len bytes; "..." marks a cut)
 * into @p out for display: valid UTF-8 as it is, \r \n \t \\ and \xNN
 * for control and invalid bytes, and \" too when @p quote. Always
 * NUL-terminates (out_size > 0). */
void http_escape(char *out, size_t out_size, const void *data, size_t len,
		 size_t max, bool quote);

/* ---- the client ----------------------------------------------------- */

struct http_client_options {
	int64_t timeout_us;		/* for each request, from start to
					 * its end, DNS included */
	const char *cacert;		/* PEM file of trusted CAs; NULL: the
					 * system store */
	bool insecure;			/* no certificate checks */
	bool env_proxy;			/* through the proxy of the usual
					 * variables (https_proxy...); else
					 * never through a proxy */
};

struct http_client;

/* Called once per request, on the event loop, never from within
 * http_client_start(). @p res is borrowed until it returns; to keep its
 * contents, copy the struct and zero the original. */
typedef void (*http_done_fn)(struct http_result *res, void *userdata);

/* A client on @p base, which must outlive it. NULL when out of memory. */
struct http_client *http_client_new(struct event_base *base,
				    const struct http_client_options *o);
/* Cancel requests in flight (their callbacks are not called), free. */
void http_client_free(struct http_client *c);

/* Check the TLS settings now (a request would fail on them otherwise),
 * so that a bad --cacert is reported as such: a file that cannot be
 * read, or that holds no certificate. 0 or -EINVAL with a reason in
 * @p err. */
int http_client_tls_init(struct http_client *c, char *err, size_t err_size);

/* Start a request; @p req and everything it points to is copied.
 * 0, or -ENOMEM (then @p done is never called). */
int http_client_start(struct http_client *c, const struct http_request *req,
		      http_done_fn done, void *userdata);

/* One request, start to end: runs the event loop until it is done.
 * @p res receives the result (free it with http_result_finish()).
 * 0, or -ENOMEM. */
int http_client_run(struct http_client *c, const struct http_request *req,
		    struct http_result *res);

#endif /* WHR_TOOLS_HTTP_H */
