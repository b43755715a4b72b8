/*
 * whr send: its command line, into struct send_options (the
 * notifications are built as their options come: send-notes.c).
 */
#include "send.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <whr/log.h>	/* WHR_PRINTF */

#include "commands.h"

#define FILE_MAX (64 * 1024 * 1024)

enum {
	OPT_SAMPLE = 1,
	OPT_ACTION,
	OPT_DATA,
	OPT_SET,
	OPT_SET_JSON,
	OPT_FILE,
	OPT_ID,
	OPT_PROPERTIES,
	OPT_COMPACT,
	OPT_LINE_ENDS,
	OPT_ATTEMPTS,
	OPT_RETRY_DELAYS,
	OPT_COUNT,
	OPT_CONCURRENCY,
	OPT_EXPECT_CONTINUE,
	OPT_DRY_RUN,
};

/* A command line whr send refuses: the message, after "whr send: ", on
 * stderr; -EINVAL. */
static int refuse(const char *fmt, ...) WHR_PRINTF(1, 2);

static int
refuse(const char *fmt, ...)
{
	va_list ap;

	fputs("whr send: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -EINVAL;
}

static const struct tool_option options[] = {
	{ "sample", 0, true, OPT_SAMPLE },
	{ "action", 0, true, OPT_ACTION },
	{ "data", 0, true, OPT_DATA },
	{ "set", 0, true, OPT_SET },
	{ "set-json", 0, true, OPT_SET_JSON },
	{ "file", 0, true, OPT_FILE },
	{ "id", 0, true, OPT_ID },
	{ "properties", 0, true, OPT_PROPERTIES },
	{ "compact", 0, false, OPT_COMPACT },
	{ "line-ends", 0, true, OPT_LINE_ENDS },
	{ "attempts", 0, true, OPT_ATTEMPTS },
	{ "retry-delays", 0, true, OPT_RETRY_DELAYS },
	{ "count", 0, true, OPT_COUNT },
	{ "concurrency", 0, true, OPT_CONCURRENCY },
	{ "expect-continue", 0, false, OPT_EXPECT_CONTINUE },
	{ "dry-run", 0, false, OPT_DRY_RUN },
	TOOL_HTTP_OPTIONS,
	{ NULL, 0, false, 0 },
};

static void
usage(void)
{
	printf(
"Usage: whr send URL [OPTIONS]\n"
"\n"
"Send a delivery to URL exactly as the ASP.NET WebHooks sender (Learn365)\n"
"does: a JSON body with the members Id, Attempt, Properties, Notifications,\n"
"indented like Newtonsoft.Json with CRLF line ends, Content-Type\n"
"application/json; charset=utf-8, and ms-signature: sha256=HEX, the\n"
"uppercase HMAC-SHA256 of the body under the UTF-8 secret.\n"
"\n"
"What to send: --sample, or --action, repeatable and mixed (one delivery\n"
"with several notifications, in order), or --file:\n"
"  --sample ACTION        a built-in realistic notification of ACTION:\n"
"                         CourseEnrollment, CourseUnenrollment,\n"
"                         CourseStarted, CourseCompleted, CoursePublished,\n"
"                         CourseUnpublished, EnrollmentApprovalRequest\n"
"  --action ACTION        a notification with this Action (put first) ...\n"
"  --data JSON            ... and these other members, a JSON object; right\n"
"                         after its --action (default: none)\n"
"  --set PATH=TEXT        in the notification given just before (by --sample\n"
"                         or --action), set the member PATH (Course.Title,\n"
"                         Users[0].Email) to the JSON string TEXT; missing\n"
"                         object members are created; repeatable, in order\n"
"  --set-json PATH=JSON   the same with any JSON value: 42, true, {\"a\":1}\n"
"  --file FILE            send FILE's bytes as the body, unchanged: no new\n"
"                         Id or Attempt (--count and --attempts resend it\n"
"                         as it is, so the Ids repeat)\n"
"\n"
"The body:\n"
"  --id ID                the delivery's Id: letters, digits, - and _, up\n"
"                         to 64 (default: 32 random lowercase hex digits,\n"
"                         new for each delivery, kept by its retries)\n"
"  --properties JSON      the Properties object (default {})\n"
"  --compact              one line without spaces instead of indented\n"
"  --line-ends crlf|lf    crlf (default) as the sender on Windows writes;\n"
"                         lf as it does on Linux (Mono)\n"
"\n"
"Sending:\n"
"  --attempts N           attempts per delivery, 1 to 100 (default 1; the\n"
"                         stock sender's schedule is --attempts 3)\n"
"  --retry-delays LIST    comma-separated waits before each retry, counted\n"
"                         from the end of the failed attempt; the last one\n"
"                         repeats (default 60,240: the stock 1 and 4\n"
"                         minutes); e.g. 100ms,200ms\n"
"  --count N              send N deliveries, each with its own Id (default\n"
"                         1), and print a summary: sent, delivered, failed\n"
"                         by cause, elapsed, requests/s, p50/p99 latency\n"
"  --concurrency C        deliveries in flight at once, 1 to 1000\n"
"                         (default 1)\n"
"  --expect-continue      send Expect: 100-continue and wait up to 350 ms\n"
"                         for the interim answer before the body, as .NET\n"
"                         Framework does\n"
"  --dry-run              print the first request's exact bytes (headers,\n"
"                         ms-signature included, and body) and send nothing\n"
"%s"
"\n"
"The secret comes from --secret, --secret-file or the WHR_SECRET variable.\n"
"It is never printed. Receivers accept 32 to 128 characters; a shorter one\n"
"is used, with a warning.\n"
"\n"
"Each attempt prints its status, time and the first line of the answer's\n"
"body (with --count, only failed attempts do). A 2xx answer delivers; 410\n"
"Gone stops at once; anything else (another status, a timeout, a\n"
"connection error) is retried with the same Id and Attempt + 1, signed\n"
"again since the body changed. Redirects are never followed.\n"
"\n"
"Exit status: 0 delivered (every delivery, with --count); 1 not delivered;\n"
"2 usage error (bad option or value, bad JSON, no secret, unknown sample).\n",
	       tool_http_usage);
}

/* ---- other values --------------------------------------------------- */

static int
parse_delays(struct send_options *o, const char *list)
{
	const char *p = list;

	free(o->delays);
	o->delays = NULL;
	o->n_delays = 0;
	for (;;) {
		size_t len = strcspn(p, ",");
		char item[32];
		int64_t *grown;

		if (len == 0 || len >= sizeof(item))
			goto bad;
		memcpy(item, p, len);
		item[len] = '\0';
		grown = realloc(o->delays, (o->n_delays + 1) * sizeof(*grown));
		if (grown == NULL)
			goto bad;
		o->delays = grown;
		if (tool_parse_duration(item, &o->delays[o->n_delays]) < 0)
			goto bad;
		o->n_delays++;
		if (p[len] == '\0')
			return 0;
		p += len + 1;
	}
bad:
	return refuse("--retry-delays: '%s' is not a list of durations, "
		      "e.g. 60,240 or 100ms,200ms", list);
}

static int
read_file(struct send_options *o, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *grown;
	size_t n;

	if (f == NULL)
		return refuse("cannot read %s: %s", path, strerror(errno));
	o->file = path;
	for (;;) {
		grown = realloc(o->file_body, o->file_len + 65536);
		if (grown == NULL)
			break;
		o->file_body = grown;
		n = fread(o->file_body + o->file_len, 1, 65536, f);
		o->file_len += n;
		if (n < 65536 || o->file_len > FILE_MAX)
			break;
	}
	if (grown == NULL || ferror(f) || o->file_len > FILE_MAX) {
		refuse("cannot read %s: %s", path, grown == NULL
		       ? "out of memory" : ferror(f) ? strerror(errno)
						     : "larger than 64 MiB");
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	return 0;
}

static bool
id_valid(const char *id)
{
	size_t len = strspn(id, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");

	return len > 0 && len <= 64 && id[len] == '\0';
}

/* ---- the whole command line ----------------------------------------- */

static int
take(void *userdata, int id, const char *value)
{
	struct send_options *o = userdata;
	long n;

	switch (id) {
	case OPT_SAMPLE:
		return send_add_sample(o, value);
	case OPT_ACTION:
		return send_add_action(o, value);
	case OPT_DATA:
		return send_set_data(o, value);
	case OPT_SET:
	case OPT_SET_JSON:
		return send_set_member(o, value, id == OPT_SET_JSON);
	case OPT_FILE:
		if (o->file != NULL)
			return refuse("one --file only");
		return read_file(o, value);
	case OPT_ID:
		if (!id_valid(value))
			return refuse("--id: letters, digits, - and _ only, "
				      "1 to 64 of them");
		o->id = value;
		return 0;
	case OPT_PROPERTIES:
		free(o->properties);
		o->properties = send_json_compact(value, true, "--properties");
		return o->properties != NULL ? 0 : -EINVAL;
	case OPT_COMPACT:
		o->compact = true;
		return 0;
	case OPT_LINE_ENDS:
		if (strcasecmp(value, "crlf") != 0 &&
		    strcasecmp(value, "lf") != 0)
			return refuse("--line-ends is crlf or lf");
		o->line_ends = value;
		return 0;
	case OPT_RETRY_DELAYS:
		return parse_delays(o, value);
	case OPT_EXPECT_CONTINUE:
		o->expect_continue = true;
		return 0;
	case OPT_DRY_RUN:
		o->dry_run = true;
		return 0;
	case OPT_ATTEMPTS:
	case OPT_COUNT:
	case OPT_CONCURRENCY:
		if (tool_parse_long(value, 1, id == OPT_ATTEMPTS ? 100 :
				    id == OPT_COUNT ? 100000000 : 1000,
				    &n) < 0)
			return refuse("--%s: '%s' is out of range (see whr "
				      "send --help)", id == OPT_ATTEMPTS
				      ? "attempts" : id == OPT_COUNT ? "count"
				      : "concurrency", value);
		*(id == OPT_ATTEMPTS ? &o->attempts : id == OPT_COUNT ?
		  &o->count : &o->concurrency) = n;
		return 0;
	default:
		return tool_http_option(&o->http, id, value, "send");
	}
}

/* What only makes sense together. */
static int
check(struct send_options *o)
{
	if (o->file == NULL && o->n_notes == 0)
		return refuse("what to send? --sample ACTION, --action ACTION "
			      "[--data JSON] or --file FILE");
	if (o->file != NULL && (o->n_notes > 0 || o->properties != NULL ||
				o->id != NULL || o->compact ||
				o->line_ends != NULL))
		return refuse("--file sends the file as it is: --sample, "
			      "--action, --properties, --id, --compact and "
			      "--line-ends do not go with it");
	if (o->file != NULL && (o->count > 1 || o->attempts > 1))
		fprintf(stderr, "whr send: warning: --file is sent as it is: "
			"every request carries the same Id and Attempt\n");
	else if (o->id != NULL && o->count > 1)
		fprintf(stderr, "whr send: warning: --id with --count: every "
			"delivery carries the same Id\n");
	if (o->compact)
		o->style = JSON_STYLE_COMPACT;
	else if (o->line_ends != NULL && strcasecmp(o->line_ends, "lf") == 0)
		o->style = JSON_STYLE_INDENTED_LF;
	else
		o->style = JSON_STYLE_INDENTED_CRLF;
	return 0;
}

int
send_options_parse(struct send_options *o, int argc, char **argv)
{
	static const int64_t stock_delays[] = { 60 * 1000000LL,
						240 * 1000000LL };
	int rc;

	memset(o, 0, sizeof(*o));
	tool_http_init(&o->http);
	o->attempts = 1;
	o->count = 1;
	o->concurrency = 1;
	o->delays = malloc(sizeof(stock_delays));
	if (o->delays == NULL)
		return -ENOMEM;
	memcpy(o->delays, stock_delays, sizeof(stock_delays));
	o->n_delays = 2;
	rc = tool_parse_url_args(argc, argv, options, "send", usage, take, o,
				 &o->url);
	if (rc != 0)
		return rc;
	return check(o);
}

void
send_options_finish(struct send_options *o)
{
	size_t i;

	for (i = 0; i < o->n_notes; i++)
		free(o->notes[i]);
	free(o->notes);
	free(o->delays);
	free(o->file_body);
	free(o->properties);
	tool_http_finish(&o->http);
	memset(o, 0, sizeof(*o));
}

int64_t
send_retry_delay(const struct send_options *o, long retry)
{
	size_t i = (size_t)retry - 1;

	return o->delays[i < o->n_delays ? i : o->n_delays - 1];
}
