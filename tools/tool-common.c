/*
 * What `whr send` and `whr probe` share (see tool-common.h).
 */
#include "tool-common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include <whr/receiver.h>

#include "commands.h"	/* EXIT_USAGE */
#include "lib/samples.h"

/* what receivers accept (PROTOCOL.md §3) */
#define SECRET_MIN 32
#define SECRET_MAX 128
#define SECRET_FILE_MAX 4096

const char tool_http_usage[] =
"  --secret SECRET        the shared secret (visible to other users in\n"
"                         `ps`: prefer --secret-file or WHR_SECRET)\n"
"  --secret-file FILE     read the secret from FILE (one trailing line\n"
"                         end is dropped)\n"
"  -H, --header 'NAME: VALUE'\n"
"                         an extra request header, as registrations'\n"
"                         Headers; repeatable, sent in order. One named\n"
"                         Content-Type, ms-signature or Host replaces\n"
"                         whr's (to test a receiver's refusals)\n"
"  --timeout DURATION     for each request, connecting included\n"
"                         (default 100s, .NET's HttpClient default)\n"
"  --cacert FILE          trust the CA certificates in FILE (PEM)\n"
"                         instead of the system store\n"
"  --insecure             do not check the server's certificate or host\n"
"                         name (the real sender always does)\n"
"  -v, --verbose          print the request and response headers\n"
"  -h, --help             show this help\n"
"\n"
"DURATION is a whole number with ms, s, m or h (a bare number is\n"
"seconds): 300ms, 5s, 2m. https URLs are verified against the system CA\n"
"store (or --cacert), host name included, with SNI.\n";

/* ---- command lines -------------------------------------------------- */

int
tool_next_arg(struct tool_args *a, const struct tool_option *table,
	      const char **value, const char *cmd)
{
	const struct tool_option *o;
	const char *arg;
	const char *eq;
	size_t len;

	*value = NULL;
	if (a->i >= a->argc)
		return TOOL_ARG_END;
	arg = a->argv[a->i++];
	if (a->positional_only || arg[0] != '-' || arg[1] == '\0') {
		*value = arg;
		return TOOL_ARG_POSITIONAL;
	}
	if (strcmp(arg, "--") == 0) {
		a->positional_only = true;
		return tool_next_arg(a, table, value, cmd);
	}
	for (o = table; o->name != NULL; o++) {
		if (arg[1] != '-') {
			if (arg[1] == o->short_name && arg[2] == '\0' &&
			    o->short_name != 0)
				break;
			continue;
		}
		eq = strchr(arg + 2, '=');
		len = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		if (strlen(o->name) == len &&
		    strncmp(arg + 2, o->name, len) == 0)
			break;
	}
	if (o->name == NULL) {
		fprintf(stderr, "whr %s: unknown option '%s' (see whr %s "
			"--help)\n", cmd, arg, cmd);
		return TOOL_ARG_ERROR;
	}
	eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
	if (!o->takes_value) {
		if (eq != NULL) {
			fprintf(stderr, "whr %s: --%s takes no value\n", cmd,
				o->name);
			return TOOL_ARG_ERROR;
		}
		return o->id;
	}
	if (eq != NULL) {
		*value = eq + 1;
	} else if (a->i < a->argc) {
		*value = a->argv[a->i++];
	} else {
		fprintf(stderr, "whr %s: --%s needs a value\n", cmd, o->name);
		return TOOL_ARG_ERROR;
	}
	return o->id;
}

int
tool_parse_url_args(int argc, char **argv, const struct tool_option *table,
		    const char *cmd, void (*usage)(void), tool_option_fn take,
		    void *userdata, const char **url)
{
	struct tool_args args = { argc, argv, 0, false };
	const char *value;
	int id;

	*url = NULL;
	while ((id = tool_next_arg(&args, table, &value, cmd)) !=
	       TOOL_ARG_END) {
		if (id == TOOL_ARG_ERROR)
			return -EINVAL;
		if (id == TOOL_OPT_HELP) {
			usage();
			return 1;
		}
		if (id == TOOL_ARG_POSITIONAL) {
			if (*url != NULL) {
				fprintf(stderr, "whr %s: one URL only ('%s' "
					"is a second)\n", cmd, value);
				return -EINVAL;
			}
			*url = value;
		} else if (take(userdata, id, value) < 0) {
			return -EINVAL;
		}
	}
	if (*url == NULL) {
		fprintf(stderr, "whr %s: which URL? (whr %s URL [OPTIONS]; see "
			"whr %s --help)\n", cmd, cmd, cmd);
		return -EINVAL;
	}
	return 0;
}

int
tool_parse_duration(const char *s, int64_t *us)
{
	/* At most a week: enough for any timeout or retry schedule. */
	const int64_t week_us = 7 * 24 * 3600 * 1000000LL;
	int64_t v;

	/* The syntax of whr serve's durations, from the one parser. */
	if (whr_parse_duration(s, &v) < 0 || v > week_us)
		return -EINVAL;
	*us = v;
	return 0;
}

int
tool_parse_timeout(const char *value, const char *cmd, const char *option,
		   int64_t *us)
{
	if (tool_parse_duration(value, us) < 0 || *us <= 0) {
		fprintf(stderr, "whr %s: --%s: '%s' is not a duration above 0 "
			"(300ms, 5s, 2m)\n", cmd, option, value);
		return -EINVAL;
	}
	return 0;
}

int
tool_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if ((*s < '0' || *s > '9') && *s != '-')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

void
tool_format_duration(char *out, size_t size, int64_t us)
{
	if (us < 10000)
		snprintf(out, size, "%.1f ms", (double)us / 1000.0);
	else if (us < 1000000)
		snprintf(out, size, "%lld ms", (long long)(us / 1000));
	else if (us % 1000000 == 0)
		snprintf(out, size, "%lld s", (long long)(us / 1000000));
	else
		snprintf(out, size, "%.2f s", (double)us / 1e6);
}

void
tool_http_init(struct tool_http *h)
{
	memset(h, 0, sizeof(*h));
	h->timeout_us = 100 * 1000000LL;
}

void
tool_http_finish(struct tool_http *h)
{
	size_t i;

	for (i = 0; i < h->n_headers; i++)
		free((char *)h->headers[i].name);	/* the whole copy */
	free(h->headers);
	memset(h, 0, sizeof(*h));
}

static bool
token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* "Name: value" into h->headers. */
static int
add_header(struct tool_http *h, const char *spec, const char *cmd)
{
	static const char *const refused[] = {
		"Content-Length", "Transfer-Encoding", "Expect",
	};
	const char *colon = strchr(spec, ':');
	struct http_header *grown;
	char *copy;
	char *value;
	size_t i;

	for (i = 0; colon != NULL && spec + i < colon; i++) {
		if (!token_char(spec[i]))
			break;
	}
	if (colon == NULL || colon == spec || spec + i != colon ||
	    strpbrk(colon, "\r\n") != NULL) {
		fprintf(stderr, "whr %s: --header wants 'Name: value' (a name "
			"of letters, digits and -, no line ends)\n", cmd);
		return -EINVAL;
	}
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (strlen(refused[i]) == (size_t)(colon - spec) &&
		    strncasecmp(spec, refused[i], strlen(refused[i])) == 0) {
			fprintf(stderr, "whr %s: whr sets %s itself%s\n", cmd,
				refused[i], i == 2 ?
				" (--expect-continue)" : "");
			return -EINVAL;
		}
	}
	copy = strdup(spec);
	grown = realloc(h->headers, (h->n_headers + 1) * sizeof(*grown));
	if (copy == NULL || grown == NULL) {
		free(copy);
		fprintf(stderr, "whr %s: out of memory\n", cmd);
		return -ENOMEM;
	}
	h->headers = grown;
	value = copy + (colon - spec);
	*value++ = '\0';
	value += strspn(value, " \t");
	for (i = strlen(value); i > 0 && strchr(" \t", value[i - 1]); i--)
		value[i - 1] = '\0';
	h->headers[h->n_headers].name = copy;	/* owns the copy */
	h->headers[h->n_headers].value = value;
	h->n_headers++;
	return 0;
}

int
tool_http_option(struct tool_http *h, int id, const char *value,
		 const char *cmd)
{
	switch (id) {
	case TOOL_OPT_TIMEOUT:
		return tool_parse_timeout(value, cmd, "timeout",
					  &h->timeout_us);
	case TOOL_OPT_CACERT:
		h->cacert = value;
		return 0;
	case TOOL_OPT_INSECURE:
		h->insecure = true;
		return 0;
	case TOOL_OPT_HEADER:
		return add_header(h, value, cmd);
	case TOOL_OPT_VERBOSE:
		h->verbose = true;
		return 0;
	case TOOL_OPT_SECRET:
		h->secret_arg = value;
		return 0;
	case TOOL_OPT_SECRET_FILE:
		h->secret_file = value;
		return 0;
	default:
		return -EINVAL;
	}
}

/* ---- the secret ---------------------------------------------------- */

char *
tool_secret_file_read(const char *path, const char *cmd, const char *what)
{
	char *buf = malloc(SECRET_FILE_MAX + 1);
	FILE *f = fopen(path, "rb");
	size_t n;

	if (buf == NULL || f == NULL) {
		fprintf(stderr, "whr %s: cannot read the %s %s: %s\n", cmd,
			what, path, buf == NULL ? "out of memory" :
			strerror(errno));
		free(buf);
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
	fclose(f);
	if (n > SECRET_FILE_MAX) {
		fprintf(stderr, "whr %s: the %s %s is larger than %d bytes\n",
			cmd, what, path, SECRET_FILE_MAX);
		OPENSSL_cleanse(buf, SECRET_FILE_MAX + 1);
		free(buf);
		return NULL;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (strlen(buf) != n) {
		fprintf(stderr, "whr %s: the %s %s holds a NUL byte\n", cmd,
			what, path);
		OPENSSL_cleanse(buf, n);
		free(buf);
		return NULL;
	}
	return buf;
}

/* Code points of UTF-8 text, or -1 when it is not UTF-8. */
static long
utf8_count(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	long count = 0;

	while (*p != '\0') {
		int n = 0;
		int i;

		if (*p < 0x80)
			n = 1;
		else if (*p >= 0xc2 && *p <= 0xdf)
			n = 2;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 3;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 4;

		if (n == 0)
			return -1;
		for (i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return -1;
		}
		p += n;
		count++;
	}
	return count;
}

int
tool_secret_load(const struct tool_http *h, const char *cmd, char **secret)
{
	const char *env = getenv("WHR_SECRET");
	long chars;

	*secret = NULL;
	if (h->secret_arg != NULL && h->secret_file != NULL) {
		fprintf(stderr, "whr %s: give --secret or --secret-file, not "
			"both\n", cmd);
		return -EINVAL;
	}
	if (h->secret_file != NULL)
		*secret = tool_secret_file_read(h->secret_file, cmd,
						"secret file");
	else if (h->secret_arg != NULL)
		*secret = strdup(h->secret_arg);
	else if (env != NULL && env[0] != '\0')
		*secret = strdup(env);
	else
		return 0;
	if (*secret == NULL)
		return -EINVAL;
	if ((*secret)[0] == '\0') {
		fprintf(stderr, "whr %s: the secret is empty\n", cmd);
		tool_secret_free(*secret);
		*secret = NULL;
		return -EINVAL;
	}
	if (strchr(" \t", (*secret)[0]) != NULL ||
	    strchr(" \t", (*secret)[strlen(*secret) - 1]) != NULL ||
	    strpbrk(*secret, ",=") != NULL)
		fprintf(stderr, "whr %s: warning: the secret starts or ends "
			"with a space or holds ',' or '=': a receiver's secret "
			"list (MS_WebHookReceiverSecret_Custom) cannot hold "
			"it\n", cmd);
	chars = utf8_count(*secret);
	if (chars < 0)
		fprintf(stderr, "whr %s: warning: the secret is not UTF-8 "
			"text; receivers refuse such secrets\n", cmd);
	else if (chars < SECRET_MIN || chars > SECRET_MAX)
		fprintf(stderr, "whr %s: warning: the secret has %ld "
			"characters; receivers (whr serve, ASP.NET) only "
			"accept %d to %d\n", cmd, chars, SECRET_MIN,
			SECRET_MAX);
	return 0;
}

void
tool_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
}

/* ---- samples -------------------------------------------------------- */

const char *
tool_sample(const char *action, const char *cmd, bool *none)
{
	const struct sample *s = sample_find(action);
	const struct sample *all;
	size_t n;
	size_t i;

	all = sample_all(&n);
	*none = n == 0;
	if (s != NULL || n == 0)
		return s != NULL ? s->notification : NULL;
	fprintf(stderr, "whr %s: no sample '%s'; the samples are:", cmd,
		action);
	for (i = 0; i < n; i++)
		fprintf(stderr, " %s", all[i].action);
	fprintf(stderr, "\n");
	return NULL;
}

/* ---- requests and reports ------------------------------------------- */

int
tool_post_headers(const struct tool_http *h, const char *secret,
		  const void *body, size_t len, char *signature,
		  struct http_header **out, size_t *n)
{
	struct http_header *headers;
	size_t i;

	*out = NULL;
	*n = 0;
	if (whr_signature_compute(secret, body, len, signature) < 0)
		return -EIO;
	headers = calloc(h->n_headers + 2, sizeof(*headers));
	if (headers == NULL)
		return -ENOMEM;
	if (!http_headers_have(h->headers, h->n_headers, "ms-signature"))
		headers[(*n)++] = (struct http_header){ "ms-signature",
							signature };
	for (i = 0; i < h->n_headers; i++)
		headers[(*n)++] = h->headers[i];
	if (!http_headers_have(h->headers, h->n_headers, "Content-Type"))
		headers[(*n)++] = (struct http_header){
			"Content-Type", "application/json; charset=utf-8" };
	*out = headers;
	return 0;
}

int
tool_client_new(const struct tool_http *h, const struct http_url *url,
		const char *cmd, struct event_base **base,
		struct http_client **client)
{
	struct http_client_options o = {
		.timeout_us = h->timeout_us,
		.cacert = h->cacert,
		.insecure = h->insecure,
	};
	char err[256];

	*client = NULL;
	*base = event_base_new();
	if (*base == NULL) {
		fprintf(stderr, "whr %s: cannot set up the event loop\n", cmd);
		return 1;
	}
	*client = http_client_new(*base, &o);
	if (*client == NULL) {
		fprintf(stderr, "whr %s: out of memory\n", cmd);
		return 1;
	}
	if (url->https &&
	    http_client_tls_init(*client, err, sizeof(err)) < 0) {
		fprintf(stderr, "whr %s: %s\n", cmd, err);
		return EXIT_USAGE;
	}
	return 0;
}

void
tool_client_free(struct event_base *base, struct http_client *client)
{
	http_client_free(client);
	if (base != NULL)
		event_base_free(base);
}

void
tool_first_line(char *out, size_t size, const struct http_result *r)
{
	size_t len = r->body != NULL ? strcspn(r->body, "\n") : 0;

	if (len > r->body_len)
		len = r->body_len;	/* a NUL inside the body */
	if (len > 0 && r->body[len - 1] == '\r')
		len--;
	http_escape(out, size, r->body, len, 200, false);
	/* more lines follow */
	if (r->body_len > len && strspn(r->body + len, " \t\r\n") <
				 r->body_len - len && strlen(out) + 5 < size)
		strcat(out, " ...");
}

void
tool_print_outcome(FILE *out, const struct http_result *r)
{
	char t[32];
	char line[1024];

	tool_format_duration(t, sizeof(t), r->elapsed_us);
	if (r->error != HTTP_OK) {
		fprintf(out, "%s (after %s)\n", r->detail, t);
		return;
	}
	tool_first_line(line, sizeof(line), r);
	fprintf(out, "%d %s in %s%s%s\n", r->status, r->reason, t,
		line[0] != '\0' ? ": " : "", line);
}

static void
print_prefixed(FILE *out, const char *prefix, const char *text)
{
	while (*text != '\0') {
		size_t len = strcspn(text, "\r\n");
		char shown[1024];

		if (len == 0 && (text[0] == '\r' || text[0] == '\n') &&
		    text[strspn(text, "\r\n")] == '\0')
			break;
		http_escape(shown, sizeof(shown), text, len, 900, false);
		fprintf(out, "%s%s\n", prefix, shown);
		text += len;
		if (*text == '\r')
			text++;
		if (*text == '\n')
			text++;
	}
}

void
tool_print_heads(FILE *out, const struct http_result *r)
{
	size_t i;

	if (r->request_head != NULL)
		print_prefixed(out, "> ", r->request_head);
	if (r->interim_status != 0)
		fprintf(out, "< %s %d (interim)\n", r->version,
			r->interim_status);
	if (r->status == 0)
		return;
	fprintf(out, "< %s %d %s\n", r->version, r->status, r->reason);
	for (i = 0; i < r->n_headers; i++) {
		char shown[1024];

		http_escape(shown, sizeof(shown), r->headers[i].value,
			    strlen(r->headers[i].value), 900, false);
		fprintf(out, "< %s: %s\n", r->headers[i].name, shown);
	}
}

void
tool_print_request(FILE *out, const struct http_request *req)
{
	size_t len;
	char *head = http_request_head(req, &len);

	if (head == NULL) {
		fprintf(stderr, "whr: out of memory\n");
		return;
	}
	fwrite(head, 1, len, out);
	fwrite(req->body, 1, req->body_len, out);
	if (isatty(fileno(out)))
		fputc('\n', out);
	free(head);
}
