/*
 * URLs as the .NET sender uses them, and the request head it writes.
 *
 * evhttp_uri_parse() does the parsing; before it, spaces, control and
 * non-ASCII bytes after the authority are percent-encoded, and after it
 * dot segments are removed from the path: .NET's Uri canonicalises the
 * registered URI that way before it sends anything.
 */
#include "lib/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

static char *
xstrdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int
http_percent_byte(const char *s)
{
	int hi, lo;

	if (s[0] != '%' || (hi = hex_digit(s[1])) < 0 ||
	    (lo = hex_digit(s[2])) < 0)
		return -1;
	return hi * 16 + lo;
}

/* Percent-encode what .NET escapes in a path or query: controls, space,
 * non-ASCII, and "<>\"^`{|}". The scheme and authority are kept. */
static char *
encode_unsafe(const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *sep = strstr(text, "://");
	size_t start = 0;
	size_t len = strlen(text);
	char *out = malloc(3 * len + 1);
	size_t i;
	size_t n = 0;

	if (out == NULL)
		return NULL;
	if (sep != NULL)
		start = (size_t)(sep - text) + 3 + strcspn(sep + 3, "/?#");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (i >= start && (c <= 0x20 || c >= 0x7f ||
				   strchr("<>\"^`{|}", c) != NULL)) {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 0x0f];
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return out;
}

/* RFC 3986 §5.2.4, as .NET applies it to http URIs. @path is not empty. */
static char *
remove_dot_segments(const char *path)
{
	size_t len = strlen(path);
	char *out = malloc(len + 2);
	const char *in = path;
	size_t n = 0;

	if (out == NULL)
		return NULL;
	while (*in != '\0') {
		if (strncmp(in, "../", 3) == 0) {
			in += 3;
		} else if (strncmp(in, "./", 2) == 0) {
			in += 2;
		} else if (strncmp(in, "/./", 3) == 0) {
			in += 2;
		} else if (strcmp(in, "/.") == 0) {
			in = "/";
		} else if (strncmp(in, "/../", 4) == 0 ||
			   strcmp(in, "/..") == 0) {
			in = in[3] == '\0' ? "/" : in + 3;
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;	/* the slash before the segment */
		} else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0) {
			in += strlen(in);
		} else {
			do
				out[n++] = *in++;
			while (*in != '\0' && *in != '/');
		}
	}
	if (n == 0 || out[0] != '/') {
		memmove(out + 1, out, n);
		out[0] = '/';
		n++;
	}
	out[n] = '\0';
	return out;
}

static void
lowercase(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	}
}

int
http_url_parse(const char *text, struct http_url *url, char *err,
	       size_t err_size)
{
	struct evhttp_uri *uri = NULL;
	char *encoded = NULL;
	const char *scheme;
	const char *host;
	const char *path;
	size_t host_len;
	bool v6;
	int rc = -EINVAL;

	memset(url, 0, sizeof(*url));
	encoded = encode_unsafe(text);
	if (encoded == NULL)
		goto nomem;
	uri = evhttp_uri_parse_with_flags(encoded, 0);
	if (uri == NULL) {
		snprintf(err, err_size, "not a valid URL");
		goto out;
	}
	scheme = evhttp_uri_get_scheme(uri);
	if (scheme == NULL || (strcasecmp(scheme, "http") != 0 &&
			       strcasecmp(scheme, "https") != 0)) {
		snprintf(err, err_size,
			 "not an http:// or https:// URL");
		goto out;
	}
	url->https = strcasecmp(scheme, "https") == 0;
	host = evhttp_uri_get_host(uri);
	if (host == NULL || host[0] == '\0') {
		snprintf(err, err_size, "the URL has no host");
		goto out;
	}
	if (evhttp_uri_get_userinfo(uri) != NULL) {
		/* never echoed: it may hold a password */
		snprintf(err, err_size, "user information in a URL "
			 "(user:password@) is not supported");
		goto out;
	}
	url->port = evhttp_uri_get_port(uri);
	if (url->port == 0) {
		snprintf(err, err_size, "port 0 in the URL");
		goto out;
	}
	if (url->port < 0)
		url->port = url->https ? 443 : 80;
	host_len = strlen(host);
	v6 = host[0] == '[';
	url->host = v6 ? strndup(host + 1, host_len - 2) : strdup(host);
	path = evhttp_uri_get_path(uri);
	url->path = remove_dot_segments(path != NULL && path[0] != '\0' ?
					path : "/");
	url->query = xstrdup(evhttp_uri_get_query(uri));
	url->host_header = malloc(host_len + 8);
	url->origin = malloc(host_len + 16);
	if (url->host == NULL || url->path == NULL ||
	    url->host_header == NULL || url->origin == NULL ||
	    (evhttp_uri_get_query(uri) != NULL && url->query == NULL))
		goto nomem;
	lowercase(url->host);
	if (url->port == (url->https ? 443 : 80))
		snprintf(url->host_header, host_len + 8, "%s", host);
	else
		snprintf(url->host_header, host_len + 8, "%s:%d", host,
			 url->port);
	lowercase(url->host_header);
	snprintf(url->origin, host_len + 16, "%s://%s",
		 url->https ? "https" : "http", url->host_header);
	rc = 0;
	goto out;
nomem:
	snprintf(err, err_size, "out of memory");
	rc = -ENOMEM;
out:
	if (rc < 0)
		http_url_finish(url);
	if (uri != NULL)
		evhttp_uri_free(uri);
	free(encoded);
	return rc;
}

void
http_url_finish(struct http_url *url)
{
	free(url->host);
	free(url->host_header);
	free(url->path);
	free(url->query);
	free(url->origin);
	memset(url, 0, sizeof(*url));
}

bool
http_headers_have(const struct http_header *headers, size_t n,
		  const char *name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcasecmp(headers[i].name, name) == 0)
			return true;
	}
	return false;
}

static bool
has_header(const struct http_request *req, const char *name)
{
	return http_headers_have(req->headers, req->n_headers, name);
}

char *
http_request_head(const struct http_request *req, size_t *len)
{
	const char *query = req->query != NULL ? req->query : req->url->query;
	char *text = NULL;
	size_t size = 0;
	FILE *f;
	size_t i;

	f = open_memstream(&text, &size);
	if (f == NULL)
		return NULL;
	fprintf(f, "%s %s%s%s HTTP/1.1\r\n", req->method, req->url->path,
		query != NULL && (req->query == NULL || query[0] != '\0') ?
		"?" : "", query != NULL ? query : "");
	for (i = 0; i < req->n_headers; i++)
		fprintf(f, "%s: %s\r\n", req->headers[i].name,
			req->headers[i].value);
	if (!has_header(req, "Host"))
		fprintf(f, "Host: %s\r\n", req->url->host_header);
	if ((req->body_len > 0 || strcmp(req->method, "POST") == 0) &&
	    !has_header(req, "Content-Length"))
		fprintf(f, "Content-Length: %zu\r\n", req->body_len);
	if (req->expect_continue && !has_header(req, "Expect"))
		fprintf(f, "Expect: 100-continue\r\n");
	fprintf(f, "\r\n");
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	if (len != NULL)
		*len = size;
	return text;
}
