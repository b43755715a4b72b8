/*
 * The tools' HTTP client: libcurl's multi interface on a libevent loop
 * (curl tells which sockets to watch and when to wake it; the loop calls
 * it back), any number of requests in flight, one connection each.
 *
 * What libcurl is made to do, and why:
 * - the request is the one http_request_head() writes, nothing more:
 *   every header of the head goes to CURLOPT_HTTPHEADER in its order,
 *   Host and Content-Length included (curl then adds neither; Host is
 *   removed first, else curl would move it to the top), and the headers
 *   curl would add are removed ("Accept:", "Expect:", "Content-Type:");
 *   no User-Agent is set; the body goes as it is
 *   (CURLOPT_POSTFIELDS with its size); HTTP/1.1, no proxy unless asked;
 * - `Expect: 100-continue` in the head makes curl hold the body back for
 *   HTTP_CONTINUE_WAIT_US, as .NET Framework does;
 * - CURLOPT_TIMEOUT_MS bounds the whole request, name resolution
 *   included, as .NET's HttpClient.Timeout does;
 * - the host name is checked by OpenSSL itself during the handshake
 *   (X509_VERIFY_PARAM_set1_host, set in CURLOPT_SSL_CTX_FUNCTION), so
 *   that CURLINFO_SSL_VERIFYRESULT names a mismatch as it names an
 *   untrusted issuer or an expired certificate;
 * - the cause of a failure comes from CURLINFO_OS_ERRNO (a refusal told
 *   from an unreachable network), CURLINFO_SSL_VERIFYRESULT, and the
 *   phase the request had reached, followed through CURLOPT_DEBUGFUNCTION
 *   (the head and body bytes sent, the answer's first bytes) and
 *   CURLOPT_OPENSOCKETFUNCTION (the addresses tried).
 */
#include "lib/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "lib/utf8.h"

struct dns_failure {			/* why a name did not resolve */
	SLIST_ENTRY(dns_failure) link;
	char *host;
	char reason[128];
};

struct exchange {
	LIST_ENTRY(exchange) link;
	struct http_client *client;
	CURL *easy;
	struct curl_slist *headers;
	http_done_fn done;
	void *userdata;

	char *url;
	char *host;			/* for the certificate check */
	int port;
	bool https;
	char *body;
	size_t body_len;
	bool head_sent;			/* the request head went */
	uint64_t body_out;		/* body bytes sent */
	bool answered;			/* a byte of an answer came */
	bool in_head;			/* between a status line and its
					 * blank line */
	char tried[160];		/* the addresses tried, "a, b" */
	char errbuf[CURL_ERROR_SIZE];
	struct http_result res;
};

struct http_client {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	int64_t timeout_us;
	char *cacert;
	bool insecure;
	bool env_proxy;
	LIST_HEAD(, exchange) active;
	SLIST_HEAD(, dns_failure) dns_failures;
};

/* curl_global_init() once for the clients of the process. */
static int curl_users;

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

static void
append(char *out, size_t size, const char *text)
{
	size_t n = strlen(out);

	if (n + 1 < size)
		snprintf(out + n, size - n, "%s", text);
}

/* ---- results and display -------------------------------------------- */

const char *
http_result_header(const struct http_result *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n_headers; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	}
	return NULL;
}

const char *
http_error_name(enum http_error error)
{
	switch (error) {
	case HTTP_OK:		return "ok";
	case HTTP_ERR_DNS:	return "DNS failure";
	case HTTP_ERR_REFUSED:	return "connection refused";
	case HTTP_ERR_CONNECT:	return "connection failed";
	case HTTP_ERR_TIMEOUT:	return "timeout";
	case HTTP_ERR_TLS:	return "TLS error";
	case HTTP_ERR_CLOSED:	return "connection closed";
	case HTTP_ERR_PROTOCOL:	return "not an HTTP response";
	case HTTP_ERR_INTERNAL:	return "internal error";
	}
	return "error";
}

static void
free_headers(struct http_result *r)
{
	size_t i;

	for (i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	r->headers = NULL;
	r->n_headers = 0;
}

void
http_result_finish(struct http_result *r)
{
	free_headers(r);
	free(r->reason);
	free(r->body);
	free(r->request_head);
	memset(r, 0, sizeof(*r));
}

void
http_escape(char *out, size_t out_size, const void *data, size_t len,
	    size_t max, bool quote)
{
	const unsigned char *s = data;
	size_t n = 0;
	size_t i = 0;

	if (out_size == 0)
		return;
	while (i < len && i < max) {
		char piece[8];
		size_t plen;
		size_t u = s[i] >= 0x80 ? utf8_next(s + i, len - i, NULL) : 0;

		if (u > 0) {
			if (i + u > max)
				break;
			memcpy(piece, s + i, u);
			plen = u;
		} else if (s[i] == '\r') {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\r");
		} else if (s[i] == '\n') {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\n");
		} else if (s[i] == '\t') {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\t");
		} else if (s[i] == '\\' || (quote && s[i] == '"')) {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\%c",
						s[i]);
		} else if (s[i] < 0x20 || s[i] >= 0x7f) {
			plen = (size_t)snprintf(piece, sizeof(piece),
						"\\x%02x", s[i]);
		} else {
			piece[0] = (char)s[i];
			plen = 1;
		}
		if (n + plen + 4 > out_size)
			break;
		memcpy(out + n, piece, plen);
		n += plen;
		i += u > 0 ? u : 1;
	}
	if (i < len && n + 4 <= out_size) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* ---- the answer, as curl hands it over ------------------------------ */

static bool
digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "HTTP/1.1 200 OK": a new head starts (a 1xx before it is interim). */
static int
status_line(struct http_result *r, const char *line)
{
	if (strncmp(line, "HTTP/", 5) != 0 || !digit(line[5]) ||
	    line[6] != '.' || !digit(line[7]) || line[8] != ' ' ||
	    !digit(line[9]) || !digit(line[10]) || !digit(line[11]) ||
	    (line[12] != ' ' && line[12] != '\0'))
		return -EINVAL;
	memcpy(r->version, line, 8);
	r->version[8] = '\0';
	r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 +
		    (line[11] - '0');
	free_headers(r);
	free(r->reason);
	r->reason = strdup(line[12] == ' ' ? line + 13 : "");
	return r->reason != NULL ? 0 : -ENOMEM;
}

static int
header_line(struct http_result *r, char *line)
{
	struct http_response_header *grown;
	char *colon;
	char *value;
	size_t end;

	if ((line[0] == ' ' || line[0] == '\t') && r->n_headers > 0) {
		/* obs-fold: a continuation of the previous value */
		char *prev = r->headers[r->n_headers - 1].value;
		char *joined = NULL;

		if (asprintf(&joined, "%s %s", prev,
			     line + strspn(line, " \t")) < 0)
			return -ENOMEM;
		free(prev);
		r->headers[r->n_headers - 1].value = joined;
		return 0;
	}
	colon = strchr(line, ':');
	if (colon == NULL || colon == line)
		return 0;	/* curl let it through: nothing to keep */
	*colon = '\0';
	value = colon + 1 + strspn(colon + 1, " \t");
	end = strlen(value);
	while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\t'))
		value[--end] = '\0';
	grown = realloc(r->headers, (r->n_headers + 1) * sizeof(*grown));
	if (grown == NULL)
		return -ENOMEM;
	r->headers = grown;
	grown[r->n_headers].name = strdup(line);
	grown[r->n_headers].value = strdup(value);
	r->n_headers++;
	if (grown[r->n_headers - 1].name == NULL ||
	    grown[r->n_headers - 1].value == NULL)
		return -ENOMEM;
	return 0;
}

/* CURLOPT_HEADERFUNCTION: each line of each head, interim ones too. */
static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	struct exchange *x = arg;
	struct http_result *r = &x->res;
	size_t len = size * n;
	char *line;
	int rc = 0;

	x->answered = true;
	line = strndup(data, len);
	if (line == NULL)
		return 0;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		line[--len] = '\0';
	if (!x->in_head) {
		rc = status_line(r, line);
		x->in_head = rc == 0;
	} else if (len > 0) {
		rc = header_line(r, line);
	} else {
		/* the end of a head */
		x->in_head = false;
		if (r->status >= 100 && r->status < 200) {
			r->interim_status = r->status;
			r->status = 0;
			free_headers(r);
		} else if (r->body == NULL) {
			r->body = calloc(1, 1);
			rc = r->body != NULL ? 0 : -ENOMEM;
		}
	}
	free(line);
	/* a first line that is not a status line (-EINVAL): curl judges
	 * the answer itself */
	return rc == -ENOMEM ? 0 : size * n;
}

/* CURLOPT_WRITEFUNCTION: the body; the first HTTP_BODY_KEEP bytes kept. */
static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct exchange *x = arg;
	struct http_result *r = &x->res;
	size_t len = size * n;
	size_t keep = 0;

	if (r->body_len < HTTP_BODY_KEEP) {
		char *grown;

		keep = HTTP_BODY_KEEP - r->body_len;
		keep = keep < len ? keep : len;
		grown = realloc(r->body, r->body_len + keep + 1);
		if (grown == NULL)
			return 0;
		r->body = grown;
		memcpy(r->body + r->body_len, data, keep);
		r->body_len += keep;
		r->body[r->body_len] = '\0';
	}
	r->body_total += len;
	return len;
}

/* The head as sent, an Authorization value hidden. */
static void
keep_request_head(struct exchange *x, const char *data, size_t len)
{
	static const char *const hidden[] = { "Authorization:",
					      "Proxy-Authorization:" };
	char *head = malloc(len + 64);
	size_t n = 0;
	size_t i = 0;

	if (head == NULL)
		return;
	while (i < len) {
		const char *eol = memchr(data + i, '\n', len - i);
		size_t line = eol != NULL ? (size_t)(eol - data - i) + 1 :
			      len - i;
		size_t k;

		for (k = 0; k < 2; k++) {
			if (line > strlen(hidden[k]) &&
			    strncasecmp(data + i, hidden[k],
					strlen(hidden[k])) == 0)
				break;
		}
		if (k < 2 && n + strlen(hidden[k]) + 16 <= len + 64) {
			n += (size_t)sprintf(head + n, "%s (not shown)\r\n",
					     hidden[k]);
		} else {
			memcpy(head + n, data + i, line);
			n += line;
		}
		i += line;
	}
	head[n] = '\0';
	free(x->res.request_head);
	x->res.request_head = head;
}

/* CURLOPT_DEBUGFUNCTION (with CURLOPT_VERBOSE, which then writes
 * nothing itself): where the request is. */
static int
on_debug(CURL *easy, curl_infotype type, char *data, size_t len, void *arg)
{
	struct exchange *x = arg;

	switch (type) {
	case CURLINFO_HEADER_OUT:
		if (!x->head_sent)
			keep_request_head(x, data, len);
		x->head_sent = true;
		break;
	case CURLINFO_DATA_OUT:
		x->body_out += len;
		x->res.body_sent = true;
		break;
	case CURLINFO_HEADER_IN:
	case CURLINFO_DATA_IN:
		x->answered = true;
		break;
	default:
		break;
	}
	return 0;
}

/* ---- connecting ------------------------------------------------------ */

static void
peer_name(char *out, size_t size, const struct sockaddr *sa)
{
	char addr[INET6_ADDRSTRLEN];
	const void *raw;
	int port;

	if (sa->sa_family == AF_INET6) {
		raw = &((const struct sockaddr_in6 *)(const void *)sa)->
		      sin6_addr;
		port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->
			     sin6_port);
	} else {
		raw = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		port = ntohs(((const struct sockaddr_in *)(const void *)sa)->
			     sin_port);
	}
	if (inet_ntop(sa->sa_family, raw, addr, sizeof(addr)) == NULL)
		snprintf(addr, sizeof(addr), "?");
	snprintf(out, size, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
		 addr, port);
}

/* CURLOPT_OPENSOCKETFUNCTION: note the address, open the socket. */
static curl_socket_t
on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct exchange *x = arg;
	char name[64];

	peer_name(name, sizeof(name), &a->addr);
	if (strstr(x->tried, name) == NULL) {
		if (x->tried[0] != '\0')
			append(x->tried, sizeof(x->tried), ", ");
		append(x->tried, sizeof(x->tried), name);
	}
	snprintf(x->res.peer, sizeof(x->res.peer), "%s", name);
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* CURLOPT_SSL_CTX_FUNCTION: the identity to check is the URL's host, a
 * name or an IP address (as SSL_set1_host() takes it), checked by
 * OpenSSL while it verifies the chain. */
static CURLcode
on_ssl_ctx(CURL *easy, void *ssl_ctx, void *arg)
{
	struct exchange *x = arg;
	SSL_CTX *ctx = ssl_ctx;
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);

	/* a peer that closes without close_notify ends the connection
	 * (bodies are framed by their length) */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (x->client->insecure)
		return CURLE_OK;
	if (X509_VERIFY_PARAM_set1_ip_asc(param, x->host) == 1)
		return CURLE_OK;
	return X509_VERIFY_PARAM_set1_host(param, x->host, 0) == 1 ?
	       CURLE_OK : CURLE_OUT_OF_MEMORY;
}

int
http_client_tls_init(struct http_client *c, char *err, size_t err_size)
{
	X509_STORE *store;
	FILE *f;
	int ok;

	if (c->cacert == NULL || c->insecure)
		return 0;
	f = fopen(c->cacert, "r");
	if (f == NULL) {
		snprintf(err, err_size, "cannot read %s: %s", c->cacert,
			 strerror(errno));
		return -EINVAL;
	}
	fclose(f);
	store = X509_STORE_new();
	ok = store != NULL && X509_STORE_load_file(store, c->cacert) == 1;
	X509_STORE_free(store);
	if (!ok) {
		snprintf(err, err_size, "cannot load CA certificates from %s: "
			 "no PEM certificate in it", c->cacert);
		return -EINVAL;
	}
	return 0;
}

/* ---- what went wrong ------------------------------------------------- */

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

/* The reason OpenSSL gave, without curl's and OpenSSL's prefixes:
 * "OpenSSL/3.0.x: error:0A00010B:SSL routines::wrong version number"
 * is "wrong version number". */
static const char *
tls_reason(const char *errbuf)
{
	const char *e = strstr(errbuf, "error:");
	const char *p;
	int colons = 0;

	if (e == NULL)
		return errbuf[0] != '\0' ? errbuf : "the handshake failed";
	for (p = e; *p != '\0'; p++) {
		if (*p == ':' && ++colons == 4)
			return p[1] != '\0' ? p + 1 : errbuf;
	}
	return errbuf;
}

/* The phase a failed request had reached. */
static enum http_phase
phase_of(struct exchange *x)
{
	curl_off_t connected = 0;
	curl_off_t tls = 0;

	curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connected);
	curl_easy_getinfo(x->easy, CURLINFO_APPCONNECT_TIME_T, &tls);
	if (x->answered)
		return HTTP_PHASE_READ;
	if (x->head_sent && x->body_out >= x->body_len)
		return HTTP_PHASE_WAIT;
	if (x->head_sent)
		return HTTP_PHASE_SEND;
	if (x->tried[0] == '\0')
		return HTTP_PHASE_RESOLVE;
	if (connected == 0)
		return HTTP_PHASE_CONNECT;
	if (x->https && tls == 0)
		return HTTP_PHASE_TLS;
	return HTTP_PHASE_SEND;
}

/* Why @p host does not resolve, as getaddrinfo() says: curl only says
 * that it does not. Asked again, once per name and client. */
static const char *
dns_reason(struct http_client *c, const char *host, int port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *addrs = NULL;
	struct dns_failure *f;
	char service[8];
	int rc;

	SLIST_FOREACH(f, &c->dns_failures, link) {
		if (strcmp(f->host, host) == 0)
			return f->reason;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->host = strdup(host)) == NULL) {
		free(f);
		return "out of memory";
	}
	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(host, service, &hints, &addrs);
	if (rc == 0) {
		freeaddrinfo(addrs);
		snprintf(f->reason, sizeof(f->reason), "no answer in time");
	} else {
		snprintf(f->reason, sizeof(f->reason), "%s", rc == EAI_SYSTEM ?
			 strerror(errno) : gai_strerror(rc));
	}
	SLIST_INSERT_HEAD(&c->dns_failures, f, link);
	return f->reason;
}

static void
set_detail(struct exchange *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
set_detail(struct exchange *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->res.detail, sizeof(x->res.detail), fmt, ap);
	va_end(ap);
}

static void
timed_out(struct exchange *x)
{
	char t[32];

	format_duration(t, sizeof(t), x->client->timeout_us);
	switch (x->res.phase) {
	case HTTP_PHASE_RESOLVE:
	case HTTP_PHASE_CONNECT:
		set_detail(x, "timeout: no connection to %s within %s",
			   x->res.peer, t);
		break;
	case HTTP_PHASE_TLS:
		set_detail(x, "timeout: the TLS handshake with %s did not "
			   "finish within %s", x->res.peer, t);
		break;
	case HTTP_PHASE_SEND:
		set_detail(x, "timeout: the request could not be sent to %s "
			   "within %s", x->res.peer, t);
		break;
	case HTTP_PHASE_WAIT:
		set_detail(x, "timeout: no answer from %s within %s (the "
			   "request was sent)", x->res.peer, t);
		break;
	default:
		set_detail(x, "timeout: the answer from %s was not complete "
			   "within %s (%llu body bytes came)", x->res.peer, t,
			   (unsigned long long)x->res.body_total);
		break;
	}
}

static void
tls_failed(struct exchange *x, CURLcode code)
{
	long v = X509_V_OK;

	curl_easy_getinfo(x->easy, CURLINFO_SSL_VERIFYRESULT, &v);
	if (x->res.phase > HTTP_PHASE_TLS) {
		x->res.error = HTTP_ERR_CLOSED;
		set_detail(x, "TLS connection to %s failed: %s", x->res.peer,
			   tls_reason(x->errbuf));
		return;
	}
	x->res.error = HTTP_ERR_TLS;
	x->res.phase = HTTP_PHASE_TLS;
	x->res.verify_result = v;
	if (code == CURLE_PEER_FAILED_VERIFICATION && v != X509_V_OK) {
		set_detail(x, "TLS handshake with %s failed: certificate "
			   "verify failed: %s%s", x->res.peer,
			   X509_verify_cert_error_string(v), verify_hint(v));
		return;
	}
	set_detail(x, "TLS handshake with %s failed: %s%s", x->res.peer,
		   tls_reason(x->errbuf),
		   strstr(x->errbuf, "wrong version number") != NULL ?
		   " (is it plain HTTP, not HTTPS?)" : "");
}

static void
connect_failed(struct exchange *x, long os_errno)
{
	const char *where = x->tried[0] != '\0' ? x->tried : x->res.peer;

	if (os_errno == ECONNREFUSED) {
		x->res.error = HTTP_ERR_REFUSED;
		set_detail(x, "connection refused by %s", where);
	} else {
		x->res.error = HTTP_ERR_CONNECT;
		set_detail(x, "cannot connect to %s: %s", where,
			   os_errno != 0 ? strerror((int)os_errno) :
			   x->errbuf[0] != '\0' ? x->errbuf :
			   "no reason given");
	}
}

static void
closed(struct exchange *x, long os_errno)
{
	struct http_result *r = &x->res;
	curl_off_t length = -1;
	const char *when;

	x->res.error = HTTP_ERR_CLOSED;
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
			  &length);
	if (os_errno != 0 && os_errno != EPIPE) {
		when = r->phase == HTTP_PHASE_SEND ?
		       "while sending the request" :
		       r->phase == HTTP_PHASE_WAIT ? "before answering" :
						     "while answering";
		set_detail(x, "the connection to %s failed %s: %s", r->peer,
			   when, strerror((int)os_errno));
	} else if (!x->answered || (r->status == 0 && !x->in_head &&
				    r->interim_status == 0)) {
		set_detail(x, "the server closed the connection without "
			   "answering");
	} else if (r->status == 0 || x->in_head) {
		set_detail(x, "the server closed the connection in the middle "
			   "of the response headers");
	} else if (length >= 0) {
		set_detail(x, "the server closed the connection after %llu of "
			   "%llu body bytes",
			   (unsigned long long)r->body_total,
			   (unsigned long long)length);
	} else {
		set_detail(x, "the server closed the connection in the middle "
			   "of a chunked body (%llu bytes received)",
			   (unsigned long long)r->body_total);
	}
}

/* What came is not HTTP/1.x: curl took it for HTTP/0.9 (a body without
 * a head), which says what it starts with. */
static void
not_http(struct exchange *x)
{
	struct http_result *r = &x->res;
	size_t len = r->body != NULL ? strcspn(r->body, "\r\n") : 0;
	char shown[96];

	r->phase = HTTP_PHASE_READ;
	if (r->body_len == 0) {
		r->error = HTTP_ERR_CLOSED;
		set_detail(x, "the server closed the connection without "
			   "answering");
		return;
	}
	r->error = HTTP_ERR_PROTOCOL;
	http_escape(shown, sizeof(shown), r->body, len < r->body_len ? len :
		    r->body_len, 60, true);
	set_detail(x, "the answer is not HTTP/1.x; it starts with: \"%s\"",
		   shown);
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->body_total = 0;
}

/* Fill x->res from curl's outcome @p code. */
static void
classify(struct exchange *x, CURLcode code)
{
	struct http_result *r = &x->res;
	curl_off_t us = 0;
	long os_errno = 0;
	char *ip = NULL;
	long port = 0;

	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
	curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
	if (curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK &&
	    ip != NULL && ip[0] != '\0' &&
	    curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_PORT, &port) ==
	    CURLE_OK && port > 0)
		snprintf(r->peer, sizeof(r->peer), strchr(ip, ':') != NULL ?
			 "[%s]:%ld" : "%s:%ld", ip, port);
	r->elapsed_us = (int64_t)us;
	if (x->https && x->head_sent)
		curl_easy_getinfo(x->easy, CURLINFO_SSL_VERIFYRESULT,
				  &r->verify_result);
	if (code == CURLE_OK && x->in_head) {
		/* curl takes a head cut short by the end of the connection
		 * for a whole one */
		code = CURLE_PARTIAL_FILE;
	} else if (code == CURLE_OK && r->status == 0 &&
		   r->interim_status == 0) {
		/* HTTP/0.9 is allowed only to show what came instead */
		not_http(x);
		return;
	}
	if (code == CURLE_OK && r->status >= 200) {
		r->error = HTTP_OK;
		r->phase = HTTP_PHASE_DONE;
		if (r->body == NULL && (r->body = calloc(1, 1)) == NULL)
			code = CURLE_OUT_OF_MEMORY;
		else
			return;
	}
	r->phase = phase_of(x);
	switch (code) {
	case CURLE_COULDNT_RESOLVE_HOST:
		r->error = HTTP_ERR_DNS;
		set_detail(x, "DNS: cannot resolve '%s': %s", x->host,
			   dns_reason(x->client, x->host, x->port));
		break;
	case CURLE_COULDNT_CONNECT:
		connect_failed(x, os_errno);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		r->error = HTTP_ERR_TIMEOUT;
		timed_out(x);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		tls_failed(x, code);
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		closed(x, os_errno);
		break;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_HTTP2:
	case CURLE_OK:		/* a 1xx and nothing after it */
		r->error = HTTP_ERR_PROTOCOL;
		set_detail(x, "the answer is not HTTP/1.x: %s",
			   x->errbuf[0] != '\0' ? x->errbuf :
			   "no final status");
		break;
	case CURLE_OUT_OF_MEMORY:
		r->error = HTTP_ERR_INTERNAL;
		set_detail(x, "out of memory");
		break;
	default:
		r->error = HTTP_ERR_INTERNAL;
		set_detail(x, "%s%s%s", curl_easy_strerror(code),
			   x->errbuf[0] != '\0' ? ": " : "", x->errbuf);
		break;
	}
}

/* ---- requests in flight -------------------------------------------- */

static void
exchange_free(struct exchange *x)
{
	if (x->easy != NULL) {
		curl_multi_remove_handle(x->client->multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	LIST_REMOVE(x, link);
	curl_slist_free_all(x->headers);
	http_result_finish(&x->res);
	free(x->url);
	free(x->host);
	free(x->body);
	free(x);
}

/* Deliver what curl finished. */
static void
check_done(struct http_client *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct exchange *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
				  (char **)&x);
		classify(x, msg->data.result);
		x->done(&x->res, x->userdata);
		exchange_free(x);
	}
}

static void
on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *c = arg;
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
		     ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;

	curl_multi_socket_action(c->multi, fd, action, &running);
	check_done(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *c = arg;
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch @p s as curl asks. */
static int
on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct http_client *c = arg;
	struct event *ev = sockp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (ev != NULL)
			event_free(ev);
		curl_multi_assign(c->multi, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (ev == NULL) {
		ev = event_new(c->base, s, kind, on_socket_event, c);
		if (ev == NULL)
			return -1;
		curl_multi_assign(c->multi, s, ev);
	} else {
		event_del(ev);
		event_assign(ev, c->base, s, kind, on_socket_event, c);
	}
	return event_add(ev, NULL) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: wake curl up after @p ms (-1: never). */
static int
on_timer_change(CURLM *multi, long ms, void *arg)
{
	struct http_client *c = arg;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ms < 0)
		return evtimer_del(c->timer) == 0 ? 0 : -1;
	return evtimer_add(c->timer, &tv) == 0 ? 0 : -1;
}

/* The URL curl fetches: scheme, host and port of the origin, and the
 * canonical path and query of the request line. */
static char *
request_url(const struct http_request *req)
{
	const char *query = req->query != NULL ? req->query : req->url->query;
	char *url = NULL;

	if (asprintf(&url, "%s%s%s%s", req->url->origin, req->url->path,
		     query != NULL && query[0] != '\0' ? "?" : "",
		     query != NULL ? query : "") < 0)
		return NULL;
	return url;
}

/* The head's header lines, in order, and the removal of those curl
 * would add: the whole request is then the head. */
static struct curl_slist *
header_list(const char *head, const struct http_request *req)
{
	static const char *const curl_adds[] = { "Accept", "Expect",
						 "Content-Type" };
	/* curl moves a Host header of the list to the top of the head,
	 * unless the list first removes it: ours then goes in its place */
	struct curl_slist *list = curl_slist_append(NULL, "Host:");
	struct curl_slist *grown;
	const char *line = strstr(head, "\r\n");
	size_t i;

	if (list == NULL)
		return NULL;
	while (line != NULL && line[2] != '\r' && line[2] != '\0') {
		const char *end = strstr(line + 2, "\r\n");
		char *copy = strndup(line + 2, end != NULL ?
				     (size_t)(end - line - 2) : strlen(line));

		grown = copy != NULL ? curl_slist_append(list, copy) : NULL;
		free(copy);
		if (grown == NULL)
			goto nomem;
		list = grown;
		line = end;
	}
	for (i = 0; i < sizeof(curl_adds) / sizeof(curl_adds[0]); i++) {
		char removal[32];

		if (http_headers_have(req->headers, req->n_headers,
				      curl_adds[i]) ||
		    (i == 1 && req->expect_continue))
			continue;
		snprintf(removal, sizeof(removal), "%s:", curl_adds[i]);
		grown = curl_slist_append(list, removal);
		if (grown == NULL)
			goto nomem;
		list = grown;
	}
	return list;
nomem:
	curl_slist_free_all(list);
	return NULL;
}

/* Set the transfer up; false when out of memory. */
static bool
setup(struct exchange *x, const struct http_request *req)
{
	struct http_client *c = x->client;
	CURL *e = x->easy;
	long ms = (long)((c->timeout_us + 999) / 1000);
	bool ok = true;

	ok &= curl_easy_setopt(e, CURLOPT_PRIVATE, x) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_URL, x->url) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") ==
	      CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			       (long)CURL_HTTP_VERSION_1_1) == CURLE_OK;
	/* an answer that is not HTTP then arrives as a body, to be shown */
	ok &= curl_easy_setopt(e, CURLOPT_HTTP09_ALLOWED, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L) ==
	      CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS,
			       (long)(HTTP_CONTINUE_WAIT_US / 1000)) ==
	      CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) ==
	      CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, x) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_VERBOSE, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug) ==
	      CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_DEBUGDATA, x) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION,
			       on_open_socket) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x) == CURLE_OK;
	if (!c->env_proxy)
		ok &= curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK;

	/* TLS: 1.2 at least (.NET's floor), the system store or --cacert
	 * alone, the host checked by OpenSSL (on_ssl_ctx) */
	ok &= curl_easy_setopt(e, CURLOPT_SSLVERSION,
			       (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) ==
	      CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, x) == CURLE_OK;
	if (c->insecure) {
		ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) ==
		      CURLE_OK;
		ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) ==
		      CURLE_OK;
	} else if (c->cacert != NULL) {
		ok &= curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert) ==
		      CURLE_OK;
		ok &= curl_easy_setopt(e, CURLOPT_CAPATH, NULL) == CURLE_OK;
	}

	if (req->user != NULL) {
		ok &= curl_easy_setopt(e, CURLOPT_HTTPAUTH,
				       (long)CURLAUTH_BASIC) == CURLE_OK;
		ok &= curl_easy_setopt(e, CURLOPT_USERNAME, req->user) ==
		      CURLE_OK;
		ok &= curl_easy_setopt(e, CURLOPT_PASSWORD,
				       req->password != NULL ? req->password :
				       "") == CURLE_OK;
	}

	if (strcmp(req->method, "HEAD") == 0) {
		ok &= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
	} else if (strcmp(req->method, "GET") == 0 && req->body_len == 0) {
		ok &= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
	} else if (strcmp(req->method, "POST") == 0 || req->body_len > 0) {
		/* the body as it is, of its own length (it may hold NULs) */
		ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				       (curl_off_t)x->body_len) == CURLE_OK;
		ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body) ==
		      CURLE_OK;
	}
	if (strcmp(req->method, "GET") != 0 &&
	    strcmp(req->method, "POST") != 0 &&
	    strcmp(req->method, "HEAD") != 0)
		ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method) ==
		      CURLE_OK;
	return ok;
}

int
http_client_start(struct http_client *c, const struct http_request *req,
		  http_done_fn done, void *userdata)
{
	struct exchange *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return -ENOMEM;
	x->client = c;
	x->done = done;
	x->userdata = userdata;
	LIST_INSERT_HEAD(&c->active, x, link);
	x->https = req->url->https;
	x->port = req->url->port;
	x->res.verify_result = -1;
	x->host = strdup(req->url->host);
	x->url = request_url(req);
	x->res.request_head = http_request_head(req, NULL);
	x->body = malloc(req->body_len + 1);
	x->headers = x->res.request_head != NULL ?
		     header_list(x->res.request_head, req) : NULL;
	x->easy = curl_easy_init();
	if (x->host == NULL || x->url == NULL || x->res.request_head == NULL ||
	    x->body == NULL || x->headers == NULL || x->easy == NULL)
		goto nomem;
	if (req->body_len > 0)
		memcpy(x->body, req->body, req->body_len);
	x->body[req->body_len] = '\0';
	x->body_len = req->body_len;
	snprintf(x->res.peer, sizeof(x->res.peer),
		 strchr(x->host, ':') != NULL ? "[%s]:%d" : "%s:%d", x->host,
		 x->port);
	if (!setup(x, req) ||
	    curl_multi_add_handle(c->multi, x->easy) != CURLM_OK)
		goto nomem;
	return 0;
nomem:
	exchange_free(x);
	return -ENOMEM;
}

/* ---- the client ----------------------------------------------------- */

struct http_client *
http_client_new(struct event_base *base, const struct http_client_options *o)
{
	struct http_client *c;

	if (curl_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		if (curl_users == 0)
			curl_global_cleanup();
		return NULL;
	}
	curl_users++;	/* http_client_free() counts it down */
	c->base = base;
	c->timeout_us = o->timeout_us;
	c->insecure = o->insecure;
	c->env_proxy = o->env_proxy;
	LIST_INIT(&c->active);
	SLIST_INIT(&c->dns_failures);
	if (o->cacert != NULL && (c->cacert = strdup(o->cacert)) == NULL)
		goto err;
	c->multi = curl_multi_init();
	c->timer = evtimer_new(base, on_timer, c);
	if (c->multi == NULL || c->timer == NULL ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket) !=
	    CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION,
			      on_timer_change) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
		goto err;
	return c;
err:
	http_client_free(c);
	return NULL;
}

void
http_client_free(struct http_client *c)
{
	struct dns_failure *f;

	if (c == NULL)
		return;
	while (!LIST_EMPTY(&c->active))
		exchange_free(LIST_FIRST(&c->active));
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	if (c->timer != NULL)
		event_free(c->timer);
	while ((f = SLIST_FIRST(&c->dns_failures)) != NULL) {
		SLIST_REMOVE_HEAD(&c->dns_failures, link);
		free(f->host);
		free(f);
	}
	free(c->cacert);
	free(c);
	if (--curl_users == 0)
		curl_global_cleanup();
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
