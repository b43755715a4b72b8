/*
 * whr healthcheck: ask a running whr whether it is ready (GET /readyz)
 * and exit 0 or 1, with one line that says why. A container's
 * HEALTHCHECK runs it: the image needs no shell, curl or wget for it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "commands.h"
#include "tool-common.h"

#define DEFAULT_HOST "127.0.0.1:8080"
#define DEFAULT_TIMEOUT_US (3 * 1000000LL)

enum {
	OPT_TIMEOUT = 1,
	OPT_HELP,
};

static const struct tool_option options[] = {
	{ "timeout", 0, true, OPT_TIMEOUT },
	{ "help", 'h', false, OPT_HELP },
	{ NULL, 0, false, 0 },
};

static void
usage(void)
{
	printf(
"Usage: whr healthcheck [URL] [--timeout DURATION]\n"
"\n"
"GET URL (default http://HOST:PORT/readyz, HOST:PORT being the first\n"
"address of WHR_LISTEN with 0.0.0.0 as 127.0.0.1 and [::] as [::1], or\n"
"127.0.0.1:8080 without it) and print one line: ready, or why not (the\n"
"status and the first line of the answer, refused, timeout...).\n"
"A container's HEALTHCHECK runs it; it needs no shell.\n"
"\n"
"Options:\n"
"  --timeout DURATION   for the whole request, connecting included\n"
"                       (default 3s; 300ms, 5s...)\n"
"  -h, --help           show this help\n"
"\n"
"Exit status: 0 when the answer is 200; 1 otherwise; 2 usage error.\n");
}

/* The default URL, from WHR_LISTEN's first address; malloc'd, or NULL
 * after a message. */
static char *
default_url(void)
{
	const char *listen = getenv("WHR_LISTEN");
	char host[300];
	size_t len;
	char *url;
	int rc;

	if (listen == NULL || listen[0] == '\0')
		listen = DEFAULT_HOST;
	listen += strspn(listen, " \t");
	len = strcspn(listen, ",");
	while (len > 0 && (listen[len - 1] == ' ' || listen[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(host)) {
		fprintf(stderr, "whr healthcheck: cannot tell the address "
			"from WHR_LISTEN: give the URL\n");
		return NULL;
	}
	memcpy(host, listen, len);
	host[len] = '\0';
	/* a wildcard address is reached on the loopback */
	if (strncmp(host, "0.0.0.0:", 8) == 0)
		rc = asprintf(&url, "http://127.0.0.1:%s/readyz", host + 8);
	else if (strncmp(host, "[::]:", 5) == 0)
		rc = asprintf(&url, "http://[::1]:%s/readyz", host + 5);
	else
		rc = asprintf(&url, "http://%s/readyz", host);
	if (rc < 0) {
		fprintf(stderr, "whr healthcheck: out of memory\n");
		return NULL;
	}
	return url;
}

int
cmd_healthcheck(int argc, char **argv)
{
	struct tool_args args = { argc, argv, 0, false };
	struct http_client_options o = { .timeout_us = DEFAULT_TIMEOUT_US };
	struct http_request req = { .method = "GET" };
	struct http_result r;
	struct http_url url;
	struct event_base *base = NULL;
	struct http_client *client = NULL;
	const char *url_text = NULL;
	const char *value;
	char *fallback = NULL;
	char err[256];
	char t[32];
	char line[300];
	int status = EXIT_USAGE;
	int id;

	memset(&url, 0, sizeof(url));
	memset(&r, 0, sizeof(r));
	while ((id = tool_next_arg(&args, options, &value, "healthcheck")) !=
	       TOOL_ARG_END) {
		if (id == TOOL_ARG_ERROR)
			goto out;
		if (id == OPT_HELP) {
			usage();
			status = 0;
			goto out;
		}
		if (id == OPT_TIMEOUT &&
		    tool_parse_timeout(value, "healthcheck", "timeout",
				       &o.timeout_us) < 0)
			goto out;
		if (id == TOOL_ARG_POSITIONAL) {
			if (url_text != NULL) {
				fprintf(stderr, "whr healthcheck: one URL "
					"only ('%s' is a second)\n", value);
				goto out;
			}
			url_text = value;
		}
	}
	if (url_text == NULL && (url_text = fallback = default_url()) == NULL)
		goto out;
	if (http_url_parse(url_text, &url, err, sizeof(err)) < 0) {
		fprintf(stderr, "whr healthcheck: %s: %s\n", url_text, err);
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	status = 1;
	base = event_base_new();
	client = base != NULL ? http_client_new(base, &o) : NULL;
	if (client == NULL) {
		printf("healthcheck: FAIL: out of memory\n");
		goto out;
	}
	req.url = &url;
	if (http_client_run(client, &req, &r) < 0) {
		printf("healthcheck: FAIL: out of memory\n");
		goto out;
	}
	tool_format_duration(t, sizeof(t), r.elapsed_us);
	tool_first_line(line, sizeof(line), &r);
	if (r.error != HTTP_OK) {
		printf("healthcheck: FAIL: %s%s: %s (after %s)\n",
		       url.origin, url.path, r.detail, t);
	} else if (r.status != 200) {
		printf("healthcheck: FAIL: %s%s: %d %s in %s%s%s\n",
		       url.origin, url.path, r.status, r.reason, t,
		       line[0] != '\0' ? ": " : "", line);
	} else {
		printf("healthcheck: ok: %s%s: 200 %s in %s%s%s\n",
		       url.origin, url.path, r.reason, t,
		       line[0] != '\0' ? ": " : "", line);
		status = 0;
	}
out:
	http_result_finish(&r);
	http_client_free(client);
	if (base != NULL)
		event_base_free(base);
	http_url_finish(&url);
	free(fallback);
	return status;
}
