/*
 * The checks of whr probe, which whr register makes too: the sender's
 * echo GET and a signed delivery, each judged, and explained when it
 * fails, the same way for both commands.
 */
#ifndef WHR_TOOLS_PROBE_H
#define WHR_TOOLS_PROBE_H

#include <stdbool.h>
#include <stdio.h>

#include "lib/http.h"
#include "tool-common.h"

enum probe_check {
	PROBE_PASS,
	PROBE_FAIL,		/* answered, wrongly */
	PROBE_UNREACHABLE,	/* no answer at all */
};

/* Where the checks go and how. */
struct probe_target {
	struct http_client *client;
	const struct http_url *url;
	const struct tool_http *http;	/* --header (for the echo and the
					 * delivery), -v */
	FILE *trace;			/* each request's line ("echo: GET
					 * URL"), and with -v the heads;
					 * NULL: nothing */
};

struct probe_outcome {
	enum probe_check check;
	enum http_error error;		/* HTTP_OK when an answer came */
	int status;			/* its status; 0 without one */
	char line[1024];		/* "pass: 200 OK in 3.1 ms..." or
					 * "FAIL: why", no line end */
};

/* Does @p query (NULL: none) have a parameter named noecho (any case,
 * the name percent-decoded as .NET's query parsing does)? The sender
 * then skips the echo. */
bool probe_has_noecho(const char *query);

/* GET the URL with its query replaced by echo=<32 random hex digits>
 * and expect a 2xx whose body is exactly that value. */
void probe_echo(const struct probe_target *t, struct probe_outcome *o);

/* POST one delivery signed with @p secret to the URL as it is and
 * expect a 2xx. It carries @p note (a notification, JSON), or with a
 * NULL @p note none at all ("Notifications": []: stored by whr, seen by
 * no handler). @p label names it in the trace line ("CourseEnrollment"). */
void probe_delivery(const struct probe_target *t, const char *secret,
		    const char *note, const char *label,
		    struct probe_outcome *o);

#endif /* WHR_TOOLS_PROBE_H */
