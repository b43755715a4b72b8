/*
 * whr probe: check a URL the way the sender checks it when a webhook is
 * registered (the echo GET), then, given the secret, with one signed
 * test delivery; say exactly why a check fails.
 */
#include "probe.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "lib/delivery.h"
#include "lib/json.h"
#include "tool-common.h"

#define DEFAULT_SAMPLE "CourseEnrollment"

enum {
	OPT_SAMPLE = 1,
};

static const struct tool_option options[] = {
	{ "sample", 0, true, OPT_SAMPLE },
	TOOL_HTTP_OPTIONS,
	{ NULL, 0, false, 0 },
};

struct probe {
	struct tool_http http;
	const char *url_text;
	const char *sample;
	struct http_url url;
	struct event_base *base;
	struct http_client *client;
	char *secret;
};

static void
usage(void)
{
	printf(
"Usage: whr probe URL [OPTIONS]\n"
"\n"
"Check URL the way the ASP.NET WebHooks sender (Learn365) checks it when\n"
"a webhook is registered: GET the URL with its query replaced by\n"
"echo=<32 random lowercase hex digits>, and expect a 2xx answer whose body\n"
"is exactly that value (no quotes, no line end, no JSON). As the sender,\n"
"skip this when the URL has a query parameter named noecho (any case, any\n"
"value or none). With a secret, then POST one signed test delivery to the\n"
"URL as it is, as the sender would, and expect a 2xx.\n"
"\n"
"A failed check says why: the status, a redirect (and where to), a body\n"
"with a line end, in quotes or in JSON, any other body, a timeout, a\n"
"refused connection, a name that does not resolve, or a TLS failure with\n"
"the certificate problem. Redirects are never followed.\n"
"\n"
"Options:\n"
"  --sample ACTION        the test delivery's notification (default\n"
"                         CourseEnrollment; see whr send --help); a minimal\n"
"                         one when this build has no samples\n"
"%s"
"\n"
"The secret (for the test delivery) comes from --secret, --secret-file or\n"
"the WHR_SECRET variable; without one, only the echo is checked.\n"
"\n"
"Exit status: 0 when every check made passes; 1 when one fails; 2 usage\n"
"error (bad option or URL, unknown sample, unreadable --cacert).\n",
	       tool_http_usage);
}

/* ---- the echo ------------------------------------------------------- */

bool
probe_has_noecho(const char *query)
{
	while (query != NULL && *query != '\0') {
		size_t len = strcspn(query, "&");
		size_t name_len = strcspn(query, "&=");
		char name[8];
		size_t n = 0;
		size_t i = 0;

		for (; i < name_len && n < sizeof(name); n++) {
			int byte = i + 2 < name_len
					   ? http_percent_byte(query + i) : -1;

			if (byte >= 0) {
				name[n] = (char)byte;
				i += 3;
			} else {
				name[n] = query[i] == '+' ? ' ' : query[i];
				i++;
			}
		}
		if (n == 6 && strncasecmp(name, "noecho", 6) == 0)
			return true;
		query += len;
		if (*query == '&')
			query++;
	}
	return false;
}

/* The outcome's line, "pass: ..." or "FAIL: ...". */
static void outcome(struct probe_outcome *o, enum probe_check check,
		    const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
outcome(struct probe_outcome *o, enum probe_check check, const char *fmt,
	...)
{
	va_list ap;

	o->check = check;
	va_start(ap, fmt);
	vsnprintf(o->line, sizeof(o->line), fmt, ap);
	va_end(ap);
}

static void
redirect(struct probe_outcome *o, const struct http_result *r)
{
	const char *location = http_result_header(r, "Location");
	char shown[600];

	http_escape(shown, sizeof(shown), location != NULL ? location : "",
		    location != NULL ? strlen(location) : 0, 500, false);
	outcome(o, PROBE_FAIL, "FAIL: %d %s, a redirect to %s. The sender "
		"follows redirects for the echo, but a delivery must never "
		"get one: on a 301, 302 or 303 it sends the POST again as a "
		"GET without the body, a 2xx to that counts as delivered, and "
		"the event is lost (on a 307 or 308 it posts the signed body "
		"to the new location). Register the final URL.", r->status,
		r->reason, location != NULL ? shown :
		"nowhere (no Location header)");
}

/* Run the request @p req: the heads with -v, the time it took into @p t
 * (32 bytes). An answer that is not a redirect is for the caller to
 * judge: true. Otherwise the outcome is set: PROBE_UNREACHABLE when
 * nothing answered, PROBE_FAIL for a redirect (or out of memory). */
static bool
run_check(const struct probe_target *p, const struct http_request *req,
	  struct http_result *r, char *t, struct probe_outcome *o)
{
	o->error = HTTP_ERR_INTERNAL;
	o->status = 0;
	if (http_client_run(p->client, req, r) < 0) {
		outcome(o, PROBE_FAIL, "FAIL: out of memory");
		return false;
	}
	if (p->trace != NULL && p->http->verbose)
		tool_print_heads(p->trace, r);
	tool_format_duration(t, 32, r->elapsed_us);
	o->error = r->error;
	o->status = r->status;
	if (r->error != HTTP_OK) {
		outcome(o, PROBE_UNREACHABLE, "FAIL: %s (after %s)", r->detail,
			t);
		return false;
	}
	if (r->status >= 300 && r->status < 400) {
		redirect(o, r);
		return false;
	}
	return true;
}

/* Why a 2xx echo body is not the value, or NULL when it is. */
static const char *
echo_mismatch(const struct http_result *r, const char *value)
{
	size_t n = strlen(value);
	const char *b = r->body;
	size_t skip = strspn(b, " \t\r\n");

	if (r->body_total == n && memcmp(b, value, n) == 0)
		return NULL;
	if (r->body_len > n && memcmp(b, value, n) == 0 &&
	    strspn(b + n, "\r\n") == r->body_len - n)
		return "the body has a trailing line end: the sender compares "
		       "it exactly, so write the value alone";
	if (r->body_len == n + 2 && b[0] == '"' && b[n + 1] == '"' &&
	    memcmp(b + 1, value, n) == 0)
		return "the body is in quotes (a JSON string): answer the "
		       "bare value as text/plain";
	if (b[skip] == '{' || b[skip] == '[' || b[skip] == '"' ||
	    (http_result_header(r, "Content-Type") != NULL &&
	     strstr(http_result_header(r, "Content-Type"), "json") != NULL))
		return "the body is JSON: answer the bare value as text/plain";
	return "the body is not the echo value";
}

void
probe_echo(const struct probe_target *p, struct probe_outcome *o)
{
	char value[33];
	char query[40];
	char t[32];
	char got[160];
	struct http_request req = {
		.method = "GET",
		.url = p->url,
		.query = query,
		.headers = p->http->headers,
		.n_headers = p->http->n_headers,
	};
	struct http_result r;
	const char *why;

	memset(&r, 0, sizeof(r));
	if (delivery_random_id(value) < 0) {
		outcome(o, PROBE_FAIL, "FAIL: no random bytes for the echo "
			"value");
		return;
	}
	snprintf(query, sizeof(query), "echo=%s", value);
	if (p->trace != NULL) {
		fprintf(p->trace, "echo: GET %s%s?%s\n", p->url->origin,
			p->url->path, query);
		fflush(p->trace);
	}
	if (!run_check(p, &req, &r, t, o)) {
		/* run_check() said why */
	} else if (r.status < 200 || r.status >= 300) {
		tool_first_line(got, sizeof(got), &r);
		outcome(o, PROBE_FAIL, "FAIL: %d %s in %s; the sender wants a "
			"2xx%s%s", r.status, r.reason, t,
			got[0] != '\0' ? ": " : "", got);
	} else if ((why = echo_mismatch(&r, value)) != NULL) {
		http_escape(got, sizeof(got), r.body, r.body_len, 80, true);
		outcome(o, PROBE_FAIL, "FAIL: %s (%d %s in %s): expected "
			"\"%s\", got \"%s\" (%llu bytes)", why, r.status,
			r.reason, t, value, got,
			(unsigned long long)r.body_total);
	} else {
		outcome(o, PROBE_PASS, "pass: %d %s in %s, the body is the "
			"echo value", r.status, r.reason, t);
	}
	http_result_finish(&r);
}

/* ---- the test delivery ---------------------------------------------- */

static const char *
status_hint(int status)
{
	switch (status) {
	case 400:
		return " (the receiver refused the signature or the body: "
		       "does it have this secret?)";
	case 404:
		return " (no receiver at this path, or no secret for its id)";
	case 410:
		return " (the sender would give this delivery up)";
	case 413:
		return " (the body is larger than the receiver accepts)";
	case 415:
		return " (the receiver refuses application/json; "
		       "charset=utf-8)";
	default:
		return status >= 500 ? " (the sender would retry it later)" :
				       "";
	}
}

/* The notification to send, or NULL after a message (*usage set). */
static char *
probe_notification(const char *action, bool *usage)
{
	bool none;
	const char *sample = tool_sample(action, "probe", &none);
	char *quoted;
	char *note = NULL;

	*usage = sample == NULL && !none;
	if (sample != NULL)
		return strdup(sample);
	if (!none)
		return NULL;
	/* no samples in this build: a minimal notification */
	quoted = json_quote(action);
	if (quoted != NULL && asprintf(&note, "{\"Action\":%s}", quoted) < 0)
		note = NULL;
	free(quoted);
	return note;
}

void
probe_delivery(const struct probe_target *p, const char *secret,
	       const char *note, const char *label, struct probe_outcome *o)
{
	const char *const notes[] = { note };
	struct delivery d = {
		.attempt = 1,
		.notifications = notes,
		.n_notifications = note != NULL ? 1 : 0,
		.style = JSON_STYLE_INDENTED_CRLF,
	};
	char signature[WHR_SIGNATURE_HEADER_SIZE];
	struct http_header *headers = NULL;
	struct http_request req = { .method = "POST", .url = p->url };
	struct http_result r;
	char id[33];
	char err[160];
	char t[32];
	char got[300];

	memset(&r, 0, sizeof(r));
	o->error = HTTP_ERR_INTERNAL;
	o->status = 0;
	d.id = delivery_random_id(id) == 0 ? id : NULL;
	req.body = delivery_body(&d, &req.body_len, err, sizeof(err));
	if (req.body == NULL ||
	    tool_post_headers(p->http, secret, req.body, req.body_len,
			      signature, &headers, &req.n_headers) < 0) {
		outcome(o, PROBE_FAIL, "FAIL: cannot build the delivery: %s",
			req.body == NULL ? err : "out of memory");
		goto out;
	}
	req.headers = headers;
	if (p->trace != NULL) {
		fprintf(p->trace, "delivery: POST %s%s%s%s (%s, signed, Id "
			"%s)\n", p->url->origin, p->url->path,
			p->url->query != NULL ? "?" : "",
			p->url->query != NULL ? p->url->query : "", label, id);
		fflush(p->trace);
	}
	if (!run_check(p, &req, &r, t, o)) {
		/* run_check() said why */
	} else if (r.status < 200 || r.status >= 300) {
		tool_first_line(got, sizeof(got), &r);
		outcome(o, PROBE_FAIL, "FAIL: %d %s in %s%s%s%s", r.status,
			r.reason, t, got[0] != '\0' ? ": " : "", got,
			status_hint(r.status));
	} else {
		outcome(o, PROBE_PASS, "pass: %d %s in %s", r.status, r.reason,
			t);
	}
out:
	http_result_finish(&r);
	free((void *)req.body);
	free(headers);
}

/* ---- the command ---------------------------------------------------- */

static int
take(void *userdata, int id, const char *value)
{
	struct probe *p = userdata;

	if (id == OPT_SAMPLE) {
		p->sample = value;
		return 0;
	}
	return tool_http_option(&p->http, id, value, "probe");
}

int
cmd_probe(int argc, char **argv)
{
	struct probe p;
	struct probe_target target = { .trace = stdout };
	struct probe_outcome o;
	char *note = NULL;
	char err[256];
	enum probe_check echo = PROBE_PASS;
	int checks = 0;
	int failed = 0;
	bool usage_error;
	int status = EXIT_USAGE;
	int rc;

	memset(&p, 0, sizeof(p));
	tool_http_init(&p.http);
	p.sample = DEFAULT_SAMPLE;
	signal(SIGPIPE, SIG_IGN);	/* a peer that closes is an outcome */
	rc = tool_parse_url_args(argc, argv, options, "probe", usage, take, &p,
				 &p.url_text);
	if (rc != 0) {
		status = rc > 0 ? 0 : EXIT_USAGE;
		goto out;
	}
	if (http_url_parse(p.url_text, &p.url, err, sizeof(err)) < 0) {
		fprintf(stderr, "whr probe: %s: %s\n", p.url_text, err);
		goto out;
	}
	if (tool_secret_load(&p.http, "probe", &p.secret) < 0)
		goto out;
	if (p.secret != NULL &&
	    (note = probe_notification(p.sample, &usage_error)) == NULL) {
		status = usage_error ? EXIT_USAGE : 1;
		goto out;
	}
	status = tool_client_new(&p.http, &p.url, "probe", &p.base,
				 &p.client);
	if (status != 0)
		goto out;
	target.client = p.client;
	target.url = &p.url;
	target.http = &p.http;
	if (probe_has_noecho(p.url.query)) {
		printf("echo: skipped: the URL has a noecho parameter, so the "
		       "sender does not check it either\n");
	} else {
		probe_echo(&target, &o);
		printf("echo: %s\n", o.line);
		echo = o.check;
		checks++;
		failed += echo != PROBE_PASS;
	}
	if (p.secret == NULL) {
		printf("delivery: skipped: no secret (--secret-file FILE, "
		       "--secret or WHR_SECRET)\n");
	} else if (echo == PROBE_UNREACHABLE) {
		printf("delivery: skipped: the echo got no answer\n");
	} else {
		probe_delivery(&target, p.secret, note, p.sample, &o);
		printf("delivery: %s\n", o.line);
		checks++;
		failed += o.check != PROBE_PASS;
	}
	if (checks == 0)
		printf("probe: nothing was checked\n");
	else if (failed == 0)
		printf("probe: pass\n");
	else
		printf("probe: FAIL (%d of %d checks failed)\n", failed,
		       checks);
	status = failed == 0 ? 0 : 1;
out:
	free(note);
	tool_client_free(p.base, p.client);
	http_url_finish(&p.url);
	tool_secret_free(p.secret);
	tool_http_finish(&p.http);
	return status;
}
