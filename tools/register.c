/*
 * whr register: subscribe to Learn365 events from the command line.
 *
 * `create` and `rotate` make a strong secret and, in this order, write it
 * into the secrets file whr serve reads (the old one of that receiver id
 * kept as previous), wait until the URL accepts a delivery signed with
 * it (whr serve reloads its secrets), run the sender's echo check, and
 * only then call the API; a failed step puts the files back. The other
 * subcommands are calls to the API; a change fetches the registration,
 * changes it and PUTs it back whole, its Secret included (a PUT without
 * one makes the API generate a new one, which whr would not know).
 */
#include "register.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "commands.h"
#include "data-dir.h"
#include "lib/secrets-text.h"
#include "probe.h"
#include "tool-common.h"

#define PROG "whr register"
#define DEFAULT_API "https://api.365.systems"
#define API_TIMEOUT_US (30 * 1000000LL)
#define WAIT_US (30 * 1000000LL)
#define WAIT_STEP_US (250 * 1000LL)
#define PROBE_TIMEOUT_US (10 * 1000000LL)
#define MAX_FILTERS 64
#define MAX_REPLICAS 64

enum {
	OPT_API = 1,
	OPT_API_KEY_FILE,
	OPT_CACERT,
	OPT_TIMEOUT,
	OPT_FORMAT,
	OPT_SHOW_SECRET,
	OPT_SECRETS_FILE,
	OPT_PREVIOUS_FILE,
	OPT_DATA_DIR,
	OPT_RECEIVER_ID,
	OPT_WAIT,
	OPT_REPLICA,
	OPT_FILTER,
	OPT_DESCRIPTION,
	OPT_PAUSED,
	OPT_HELP,
	OPT_COUNT,
};

static const struct tool_option options[] = {
	{ "api", 0, true, OPT_API },
	{ "api-key-file", 0, true, OPT_API_KEY_FILE },
	{ "cacert", 0, true, OPT_CACERT },
	{ "timeout", 0, true, OPT_TIMEOUT },
	{ "format", 0, true, OPT_FORMAT },
	{ "show-secret", 0, false, OPT_SHOW_SECRET },
	{ "secrets-file", 0, true, OPT_SECRETS_FILE },
	{ "previous-secrets-file", 0, true, OPT_PREVIOUS_FILE },
	{ "data-dir", 0, true, OPT_DATA_DIR },
	{ "receiver-id", 0, true, OPT_RECEIVER_ID },
	{ "wait", 0, true, OPT_WAIT },
	{ "replica", 0, true, OPT_REPLICA },
	{ "filter", 0, true, OPT_FILTER },
	{ "description", 0, true, OPT_DESCRIPTION },
	{ "paused", 0, false, OPT_PAUSED },
	{ "help", 'h', false, OPT_HELP },
	{ NULL, 0, false, 0 },
};

#define BIT(opt) (1u << (opt))
/* The options every subcommand takes. */
#define COMMON (BIT(OPT_API) | BIT(OPT_API_KEY_FILE) | BIT(OPT_CACERT) | \
		BIT(OPT_TIMEOUT) | BIT(OPT_FORMAT) | BIT(OPT_SHOW_SECRET))
/* Those of the subcommands that write a secret. */
#define SECRETS (BIT(OPT_SECRETS_FILE) | BIT(OPT_PREVIOUS_FILE) | \
		 BIT(OPT_DATA_DIR) | BIT(OPT_RECEIVER_ID) | BIT(OPT_WAIT) | \
		 BIT(OPT_REPLICA))

struct reg;

struct subcommand {
	const char *name;
	bool takes_arg;			/* URL or ID */
	unsigned options;		/* BIT()s besides COMMON */
	int (*run)(struct reg *r);
};

struct reg {
	const struct subcommand *sub;
	const char *arg;
	unsigned given;			/* BIT()s of the options given */

	const char *api_url;
	const char *api_key_file;
	const char *cacert;
	int64_t timeout_us;
	int64_t wait_us;
	enum report_format format;
	bool show_secret;
	const char *secrets_file;
	const char *previous_file;
	struct data_dir data;
	const char *receiver_id;
	const char *replicas[MAX_REPLICAS];
	size_t n_replicas;
	const char *filters[MAX_FILTERS];
	size_t n_filters;
	const char *description;
	bool paused;

	struct event_base *base;
	struct reg_api api;
	FILE *out;			/* progress: stdout, stderr with
					 * --format json */
};

static void
usage(void)
{
	printf(
"Usage: whr register SUBCOMMAND [ARGS] [OPTIONS]\n"
"\n"
"Subscribe to Learn365 events: register this whr with Learn365's webhook\n"
"registrations API, with a strong secret kept where whr serve reads it.\n"
"\n"
"Subcommands:\n"
"  create URL [--filter EVENT]... [--description TEXT] [--paused]\n"
"        register URL (whr's /api/webhooks/incoming/custom[/ID]); in this\n"
"        order: make a secret of 48 characters (A-Z a-z 0-9 - _, from\n"
"        getrandom), write it into the secrets file for the receiver id\n"
"        of URL (the secret already there moves to the previous-secrets\n"
"        file), wait until URL accepts a delivery signed with it (every\n"
"        250 ms, --wait at most: whr serve reloads its secrets), run the\n"
"        sender's echo check, and only then POST the registration. A\n"
"        failed step puts the files back and says which step failed.\n"
"        Without --filter: every event.\n"
"  list                  the registrations\n"
"  show ID               one registration\n"
"  pause ID              stop deliveries (the API checks the echo again)\n"
"  resume ID             start them again\n"
"  update ID [--filter EVENT]... [--description TEXT]\n"
"                        replace the filters, the description or both\n"
"  rotate ID             a new secret, in create's order: written (the old\n"
"                        one kept as previous) and accepted by whr, then\n"
"                        the echo check and the PUT; deliveries signed\n"
"                        with either secret are accepted throughout\n"
"  delete ID             delete the registration (the secrets files stay)\n"
"\n"
"pause, resume, update and rotate fetch the registration, change it and\n"
"PUT it back whole: its Secret, Headers and Properties included.\n"
"\n"
"EVENT: CourseEnrollment, CourseUnenrollment, CourseStarted,\n"
"CourseCompleted, CoursePublished, CourseUnpublished,\n"
"EnrollmentApprovalRequest, CourseCreated, CourseDeleted, UserCreated,\n"
"UserDeleted (any case), or * for all.\n"
"\n"
"Options:\n"
"  --api URL              the API (default " DEFAULT_API ", or\n"
"                         WHR_LEARN365_API; /webhooks/registrations is\n"
"                         added unless the path ends in /registrations);\n"
"                         HTTPS only, the certificate checked\n"
"  --api-key-file FILE    read the API key from FILE (one trailing line\n"
"                         end is dropped) instead of WHR_LEARN365_API_KEY\n"
"  --cacert FILE          trust the CA certificates in FILE (PEM) instead\n"
"                         of the system store, for the API and URL\n"
"  --timeout DURATION     for each call to the API (default 30s)\n"
"  --format table|json    table (default) for people; json for scripts:\n"
"                         the registration(s) as the API gives them on\n"
"                         standard output, progress on standard error\n"
"  --show-secret          show the Secret, which is never shown otherwise;\n"
"                         create and rotate without a secrets file they\n"
"                         can write then print the new secret for you to\n"
"                         put where whr serve reads it\n"
"  -h, --help             show this help\n"
"\n"
"create and rotate:\n"
"  --secrets-file FILE    the secrets file whr serve reads (default\n"
"                         WHR_SECRETS_FILE, else\n"
"                         MS_WebHookReceiverSecret_Custom_FILE, else\n"
"                         DATA_DIR/secrets when it exists, as scripts/run\n"
"                         makes it)\n"
"  --previous-secrets-file FILE\n"
"                         where the old secret goes (default\n"
"                         WHR_PREVIOUS_SECRETS_FILE, else\n"
"                         DATA_DIR/previous-secrets with DATA_DIR/secrets)\n"
"  --data-dir DIR         whr's data folder (default WHR_DATA_DIR, else\n"
"                         ./whr-data)\n"
"  --receiver-id ID       the receiver id, when URL's path does not end in\n"
"                         /custom or /custom/ID (a proxy that rewrites\n"
"                         it); '' is the default id\n"
"  --wait DURATION        how long whr may take to accept the new secret\n"
"                         (default 30s)\n"
"  --replica URL          also wait until URL, the address of one replica\n"
"                         of whr serve behind the registered URL, accepts\n"
"                         the new secret (rotate: and the old one);\n"
"                         repeatable: one per replica (docs/register.md)\n"
"\n"
"The API's credentials, for HTTP Basic auth, never on a command line:\n"
"WHR_LEARN365_API_USER (default empty) and WHR_LEARN365_API_KEY or\n"
"--api-key-file.\n"
"\n"
"Exit status: 0 done; 1 refused or failed (by the API, by the URL, or a\n"
"file); 2 usage error (bad option or value, no API key, a URL that is\n"
"not absolute http or https, an unknown event).\n");
}

/* ---- small things ----------------------------------------------------- */

static int64_t
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Registration ids are 32 hex digits; letters, digits, - and _ here. */
static bool
id_valid(const char *id)
{
	size_t len = strspn(id, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");

	return len > 0 && len <= 128 && id[len] == '\0';
}

static int
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "whr register: ..." on stderr; returns 1. */
static int
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 1;
}

static void
receiver_name(char *out, size_t size, const char *id)
{
	if (id[0] == '\0')
		snprintf(out, size, "the default receiver id");
	else
		snprintf(out, size, "receiver id '%s'", id);
}

/* The receiver id of @p url: --receiver-id, else the segment after
 * /custom at the end of its path (percent-decoded, lowercased), "" for
 * a path ending in /custom. Malloc'd, or NULL after a message. */
static char *
receiver_id(const struct reg *r, const struct http_url *url)
{
	const char *path = url->path;
	size_t len = strlen(path);
	const char *last;
	const char *before;
	char *id;
	size_t n = 0;
	size_t i;

	if (r->receiver_id != NULL) {
		id = strdup(r->receiver_id);
		goto check;
	}
	while (len > 1 && path[len - 1] == '/')
		len--;
	for (last = path + len; last > path && last[-1] != '/'; last--)
		;
	for (before = last - 1; before > path && before[-1] != '/'; before--)
		;
	if ((size_t)(path + len - last) == 6 &&
	    strncasecmp(last, "custom", 6) == 0) {
		id = strdup("");
	} else if (last - 1 > path && last - 1 - before == 6 &&
		   strncasecmp(before, "custom", 6) == 0) {
		id = strndup(last, (size_t)(path + len - last));
	} else {
		fprintf(stderr, PROG ": %s: cannot tell the receiver id: whr "
			"serves /api/webhooks/incoming/custom[/ID]; behind a "
			"proxy that rewrites the path, give --receiver-id ID "
			"('' for the default id)\n", r->arg);
		return NULL;
	}
	/* percent-decoded as whr serve decodes the path */
	for (i = 0; id != NULL && id[i] != '\0'; i++) {
		int byte = http_percent_byte(id + i);

		if (byte >= 0) {
			id[n++] = (char)byte;
			i += 2;
		} else {
			id[n++] = id[i];
		}
	}
	if (id != NULL)
		id[n] = '\0';
check:
	if (id == NULL) {
		fail("out of memory");
		return NULL;
	}
	for (i = 0; id[i] != '\0'; i++) {
		if (id[i] >= 'A' && id[i] <= 'Z')
			id[i] = (char)(id[i] - 'A' + 'a');
	}
	if (!secrets_id_valid(id)) {
		fprintf(stderr, PROG ": the receiver id cannot be written "
			"into whr's secrets (no ',', '=', space or control "
			"character, at most %d bytes)\n", SECRETS_ID_MAX);
		free(id);
		return NULL;
	}
	return id;
}

/* ---- output ------------------------------------------------------------ */

/* @p text for a table: control characters escaped, at most @p max
 * bytes of it. */
static void
cell(char *out, size_t size, const char *text, size_t max)
{
	http_escape(out, size, text != NULL ? text : "",
		    text != NULL ? strlen(text) : 0, max, false);
}

static void
filters_text(const struct json_node *reg, char *out, size_t size)
{
	const struct json_node *f = reg_member(reg, "Filters");
	size_t i;

	out[0] = '\0';
	for (i = 0; f != NULL && f->kind == JSON_ARRAY && i < f->n_kids; i++) {
		size_t n = strlen(out);

		if (f->kids[i]->kind != JSON_STRING)
			continue;
		snprintf(out + n, size - n, "%s", n > 0 ? "," : "");
		n = strlen(out);
		http_escape(out + n, size - n, f->kids[i]->text,
			    f->kids[i]->len, 200, false);
	}
}

static bool
is_paused(const struct json_node *reg)
{
	const struct json_node *p = reg_member(reg, "IsPaused");

	return p != NULL && p->kind == JSON_LITERAL &&
	       strcmp(p->text, "true") == 0;
}

static void
show_table(const struct reg *r, const struct json_node *reg)
{
	const struct json_node *headers = reg_member(reg, "Headers");
	const struct json_node *props = reg_member(reg, "Properties");
	char text[2048];
	char *json;
	size_t i;

	cell(text, sizeof(text), reg_string(reg, "Id"), 200);
	printf("Id           %s\n", text);
	cell(text, sizeof(text), reg_string(reg, "WebHookUri"), 1500);
	printf("WebHookUri   %s\n", text);
	filters_text(reg, text, sizeof(text));
	printf("Filters      %s\n", text);
	printf("IsPaused     %s\n", is_paused(reg) ? "true" : "false");
	cell(text, sizeof(text), reg_string(reg, "Description"), 1500);
	printf("Description  %s\n", text);
	/* Header values may be credentials of a proxy: names only. */
	printf("Headers      ");
	for (i = 0; headers != NULL && headers->kind == JSON_OBJECT &&
		    i < headers->n_kids; i++) {
		http_escape(text, sizeof(text), headers->kids[i]->name,
			    headers->kids[i]->name_len, 200, false);
		printf("%s%s", i > 0 ? ", " : "", text);
	}
	printf("%s\n", headers != NULL && headers->kind == JSON_OBJECT &&
	       headers->n_kids > 0 ? " (values not shown)" : "(none)");
	json = props != NULL && props->kind == JSON_OBJECT &&
	       props->n_kids > 0 ?
	       json_tree_write(props, JSON_STYLE_COMPACT, NULL, NULL, 0) :
	       NULL;
	cell(text, sizeof(text), json != NULL ? json : "(none)", 1500);
	printf("Properties   %s\n", text);
	free(json);
	if (r->show_secret) {
		cell(text, sizeof(text), reg_string(reg, "Secret"), 300);
		printf("Secret       %s\n", text);
	} else {
		printf("Secret       (not shown; --show-secret shows it)\n");
	}
}

static void
list_table(const struct reg *r, const struct json_node *list)
{
	size_t width[3] = { 2, 7, 3 };	/* ID, FILTERS, URI */
	char text[3][1600];
	char description[1600];
	char secret[300];
	size_t i;
	size_t k;

	for (i = 0; i < list->n_kids; i++) {
		cell(text[0], sizeof(text[0]), reg_string(list->kids[i], "Id"),
		     200);
		filters_text(list->kids[i], text[1], sizeof(text[1]));
		cell(text[2], sizeof(text[2]),
		     reg_string(list->kids[i], "WebHookUri"), 1500);
		for (k = 0; k < 3; k++)
			width[k] = strlen(text[k]) > width[k] ?
				   strlen(text[k]) : width[k];
	}
	printf("%-*s  %-6s  %-*s  %-*s  %s%s\n", (int)width[0], "ID", "STATE",
	       (int)width[1], "FILTERS", (int)width[2], "URI", "DESCRIPTION",
	       r->show_secret ? "  SECRET" : "");
	for (i = 0; i < list->n_kids; i++) {
		const struct json_node *reg = list->kids[i];

		cell(text[0], sizeof(text[0]), reg_string(reg, "Id"), 200);
		filters_text(reg, text[1], sizeof(text[1]));
		cell(text[2], sizeof(text[2]), reg_string(reg, "WebHookUri"),
		     1500);
		cell(description, sizeof(description),
		     reg_string(reg, "Description"), 1500);
		cell(secret, sizeof(secret), reg_string(reg, "Secret"), 200);
		printf("%-*s  %-6s  %-*s  %-*s  %s%s%s\n", (int)width[0],
		       text[0], is_paused(reg) ? "paused" : "active",
		       (int)width[1], text[1], (int)width[2], text[2],
		       description, r->show_secret ? "  " : "",
		       r->show_secret ? secret : "");
	}
	if (list->n_kids == 0)
		printf("(no registrations)\n");
}

/* A registration, or a list of them, as asked: its Secret dropped
 * unless --show-secret. */
static int
print_registrations(const struct reg *r, struct json_node *node)
{
	char err[160];
	char *text;
	size_t i;

	if (!r->show_secret) {
		if (node->kind == JSON_ARRAY) {
			for (i = 0; i < node->n_kids; i++)
				reg_drop(node->kids[i], "Secret");
		} else {
			reg_drop(node, "Secret");
		}
	}
	if (r->format != REPORT_JSON) {
		if (node->kind == JSON_ARRAY)
			list_table(r, node);
		else
			show_table(r, node);
		return 0;
	}
	text = json_tree_write(node, JSON_STYLE_INDENTED_LF, NULL, err,
			       sizeof(err));
	if (text == NULL)
		return fail("cannot write the JSON: %s", err);
	printf("%s\n", text);
	free(text);
	return 0;
}

/* ---- the API ----------------------------------------------------------- */

/* GET registration @p id (or the list, @p id NULL) into *out. 0, or 1
 * after a message. */
static int
fetch(struct reg *r, const char *id, struct json_node **out)
{
	struct reg_reply reply;
	enum json_kind want = id != NULL ? JSON_OBJECT : JSON_ARRAY;

	*out = NULL;
	if (reg_api_call(&r->api, "GET", id, NULL, &reply) < 0) {
		fail("%s", reply.why);
		reg_reply_finish(&reply);
		return 1;
	}
	if (reply.json == NULL || reply.json->kind != want) {
		reg_reply_finish(&reply);
		return fail("the API's answer is not a JSON %s",
			    id != NULL ? "object" : "array");
	}
	*out = reply.json;
	reply.json = NULL;
	reg_reply_finish(&reply);
	return 0;
}

/* PUT @p reg back whole as registration @p id. 0, or 1 after a message. */
static int
put_back(struct reg *r, const char *id, const struct json_node *reg,
	 struct reg_reply *reply)
{
	char err[160];
	char *body = json_tree_write(reg, JSON_STYLE_COMPACT, NULL, err,
				     sizeof(err));
	int rc;

	memset(reply, 0, sizeof(*reply));
	if (body == NULL) {
		snprintf(reply->why, sizeof(reply->why), "%s", err);
		return -1;
	}
	rc = reg_api_call(&r->api, "PUT", id, body, reply);
	OPENSSL_cleanse(body, strlen(body));
	free(body);
	return rc;
}

/* A change of a registration keeps its Secret: one the API would refuse
 * back (or none at all, which it would replace) stops it. */
static int
check_kept_secret(const char *id, const struct json_node *reg)
{
	const char *secret = reg_string(reg, "Secret");

	if (secret == NULL)
		return fail("the API gave registration %s without its Secret: "
			    "a PUT without it would make the API generate a "
			    "new one, which whr does not know; nothing was "
			    "changed", id);
	if (!reg_secret_fits_api(secret))
		return fail("registration %s has a Secret the API refuses "
			    "(it takes 32 to 64 characters): a PUT that keeps "
			    "it would fail; give it a new one with whr "
			    "register rotate %s", id, id);
	return 0;
}

/* ---- the receiver ------------------------------------------------------ */

struct receiver {
	const char *url_text;		/* as given */
	struct tool_http http;		/* no --header: none */
	struct http_url url;
	struct http_client *client;
	struct probe_target target;
};

static int
receiver_open(struct reg *r, struct receiver *rx, const char *url_text)
{
	struct http_client_options o = {
		.timeout_us = PROBE_TIMEOUT_US,
		.cacert = r->cacert,
	};
	char err[256];

	memset(rx, 0, sizeof(*rx));
	rx->url_text = url_text;
	tool_http_init(&rx->http);
	if (http_url_parse(url_text, &rx->url, err, sizeof(err)) < 0)
		return fail("%s: %s", url_text, err);
	rx->client = http_client_new(r->base, &o);
	if (rx->client == NULL)
		return fail("out of memory");
	if (rx->url.https &&
	    http_client_tls_init(rx->client, err, sizeof(err)) < 0)
		return fail("%s", err);
	rx->target = (struct probe_target){ .client = rx->client,
					    .url = &rx->url,
					    .http = &rx->http };
	return 0;
}

static void
receiver_close(struct receiver *rx)
{
	http_client_free(rx->client);
	http_url_finish(&rx->url);
	tool_http_finish(&rx->http);
}

/* Failures of the wait that waiting does not mend. */
static bool
hopeless(const struct probe_outcome *o)
{
	return o->error == HTTP_ERR_DNS || o->error == HTTP_ERR_TLS ||
	       (o->error == HTTP_OK && ((o->status >= 300 && o->status < 400) ||
					o->status == 413 || o->status == 415));
}

/* Send signed deliveries (no notification in them) until one is
 * accepted, every WAIT_STEP_US, for r->wait_us at most. 0 with the time
 * it took in @p took, or -1 with the last outcome in @p o. */
static int
wait_accepted(struct reg *r, struct receiver *rx, const char *secret,
	      struct probe_outcome *o, int64_t *took)
{
	int64_t start = now_us();
	int64_t deadline = start + r->wait_us;

	for (;;) {
		int64_t attempt = now_us();

		probe_delivery(&rx->target, secret, NULL, "no notification", o);
		*took = now_us() - start;
		if (o->check == PROBE_PASS)
			return 0;
		if (hopeless(o) || attempt + WAIT_STEP_US >= deadline)
			return -1;
		if (now_us() < attempt + WAIT_STEP_US)
			usleep((useconds_t)(attempt + WAIT_STEP_US - now_us()));
	}
}

/* ---- create and rotate ------------------------------------------------- */

struct change {
	const char *what;		/* "create", "rotate" */
	struct reg_files files;
	bool files_named;		/* a secrets file to write */
	bool written;
	char *receiver;			/* the receiver id */
	char secret[REG_SECRET_LEN + 1];
	char *old_secret;		/* rotate: the registration's */
};

static void
change_finish(struct change *c)
{
	reg_files_finish(&c->files);
	free(c->receiver);
	OPENSSL_cleanse(c->secret, sizeof(c->secret));
	tool_secret_free(c->old_secret);
}

/* Step @p step failed: put the files back, say so. Returns 1. */
static int
step_failed(struct change *c, int step, const char *name, const char *why)
{
	char err[512];

	fprintf(stderr, PROG ": %s: step %d of 4 (%s) failed: %s\n", c->what,
		step, name, why);
	if (!c->written)
		return 1;
	if (reg_files_restore(&c->files, err, sizeof(err)) < 0)
		fprintf(stderr, PROG ": and the secrets files could not be "
			"put back: %s\n", err);
	else
		fprintf(stderr, PROG ": the secrets files are back as they "
			"were (whr serve reloads them)\n");
	return 1;
}

/* Where the new secret goes: the files whr serve reads, or none with
 * --show-secret. 0, or 1/EXIT_USAGE after a message. */
static int
locate_files(struct reg *r, struct change *c)
{
	char err[512];

	if (reg_files_locate(&c->files, r->secrets_file, r->previous_file,
			     r->data.dir) < 0)
		return fail("out of memory");
	c->files_named = c->files.current.path != NULL;
	if (!c->files_named) {
		if (r->show_secret)
			return 0;
		fprintf(stderr, PROG ": %s: no secrets file to write the new "
			"secret into: give the one whr serve reads "
			"(--secrets-file FILE, WHR_SECRETS_FILE, or %s/secrets "
			"as scripts/run makes it)%s, or --show-secret to print "
			"the secret and put it there yourself\n", c->what,
			r->data.dir, getenv("MS_WebHookReceiverSecret_Custom") ?
			"; whr register cannot change "
			"MS_WebHookReceiverSecret_Custom" : "");
		return 1;
	}
	if (reg_files_load(&c->files, err, sizeof(err)) < 0)
		return fail("%s: %s", c->what, err);
	return 0;
}

/* Step 2 for one address of whr: the new secret accepted (rotate: the
 * old one still accepted, as previous). 0, or 1 after a message (and
 * the files put back). */
static int
accepted_at(struct reg *r, struct change *c, struct receiver *rx,
	    const char *url)
{
	const char *prev = c->files.previous.path;
	struct probe_outcome o;
	char why[1200];
	char t[32];
	int64_t took;

	if (wait_accepted(r, rx, c->secret, &o, &took) < 0) {
		tool_format_duration(t, sizeof(t), hopeless(&o) ? took :
				     r->wait_us);
		snprintf(why, sizeof(why), "%s did not accept a delivery "
			 "signed with the new secret within %s: %s%s", url, t,
			 o.line, hopeless(&o) ? "" : " (is whr serve reading "
			 "this secrets file? It reads it again when it "
			 "changes)");
		return step_failed(c, 2, "waiting for whr to accept the new "
				   "secret", why);
	}
	tool_format_duration(t, sizeof(t), took);
	fprintf(r->out, "whr: %s accepts the new secret (after %s: %s)\n", url,
		t, o.line);
	if (c->old_secret == NULL)
		return 0;
	/* rotate: the registration's secret, now previous, must still be
	 * accepted until the PUT and after it (retries are signed with it) */
	probe_delivery(&rx->target, c->old_secret, NULL, "no notification",
		       &o);
	if (o.check != PROBE_PASS) {
		snprintf(why, sizeof(why), "%s no longer accepts the "
			 "registration's current secret: %s (does whr serve "
			 "read the previous-secrets file %s?)", url, o.line,
			 prev != NULL ? prev : "(none)");
		return step_failed(c, 2, "the old secret kept as previous",
				   why);
	}
	fprintf(r->out, "whr: %s still accepts the old secret, as previous\n",
		url);
	return 0;
}

/* Steps 1 and 2: the new secret written, and accepted at the URL and at
 * each --replica. 0, or 1 after a message (and the files put back). */
static int
write_and_wait(struct reg *r, struct change *c, struct receiver *rx)
{
	struct receiver replica;
	char who[300];
	char why[1200];
	bool moved;
	size_t i;
	int status;

	receiver_name(who, sizeof(who), c->receiver);
	if (reg_files_put(&c->files, c->receiver, c->secret, &moved, why,
			  sizeof(why)) < 0) {
		c->written = c->files.current.changed ||
			     c->files.previous.changed;
		return step_failed(c, 1, "writing the new secret", why);
	}
	c->written = true;
	fprintf(r->out, "secrets: a new secret for %s in %s%s%s%s\n", who,
		c->files.current.path, moved ? " (the old one kept in " : "",
		moved ? c->files.previous.path : "", moved ? ")" : "");
	fflush(r->out);
	status = accepted_at(r, c, rx, rx->url_text);
	for (i = 0; status == 0 && i < r->n_replicas; i++) {
		status = receiver_open(r, &replica, r->replicas[i]);
		if (status != 0)
			status = step_failed(c, 2, "waiting for whr to accept "
					     "the new secret", "a --replica "
					     "URL that cannot be used");
		else
			status = accepted_at(r, c, &replica, r->replicas[i]);
		receiver_close(&replica);
	}
	return status;
}

/* Every --replica is a URL of the same receiver id. 0, or EXIT_USAGE
 * after a message. */
static int
check_replicas(struct reg *r, const struct change *c)
{
	struct http_url url;
	char err[256];
	char *id;
	size_t i;
	bool same;

	for (i = 0; i < r->n_replicas; i++) {
		if (http_url_parse(r->replicas[i], &url, err, sizeof(err)) < 0)
			return tool_usage_error(PROG, "--replica %s: %s",
						r->replicas[i], err);
		id = receiver_id(r, &url);
		http_url_finish(&url);
		if (id == NULL)
			return EXIT_USAGE;
		same = strcmp(id, c->receiver) == 0;
		free(id);
		if (!same)
			return tool_usage_error(PROG, "--replica %s: not the "
						"receiver id of %s",
						r->replicas[i],
						r->sub->name[0] == 'c' ?
						"URL" : "the registration");
	}
	return 0;
}

/* Steps 1 to 3: the new secret written and accepted by whr (unless no
 * secrets file is named: --show-secret), then the echo. 0, or 1 after a
 * message (and the files put back). */
static int
prepare(struct reg *r, struct change *c, struct receiver *rx)
{
	struct probe_outcome o;
	char who[300];
	char why[1200];
	int status;

	receiver_name(who, sizeof(who), c->receiver);
	if (reg_secret_new(c->secret) < 0)
		return fail("%s: no random bytes for a secret", c->what);
	if (c->files_named) {
		status = write_and_wait(r, c, rx);
		if (status != 0)
			return status;
	} else {
		fprintf(r->out, "secrets: none written (no secrets file); put "
			"the secret below where whr serve reads it, for %s\n",
			who);
	}
	if (probe_has_noecho(rx->url.query)) {
		fprintf(r->out, "echo: skipped: the URL has a noecho "
			"parameter, so the API does not check it either\n");
		return 0;
	}
	probe_echo(&rx->target, &o);
	if (o.check != PROBE_PASS) {
		snprintf(why, sizeof(why), "the API would refuse the URL: "
			 "echo: %s", o.line);
		return step_failed(c, 3, "the echo check", why);
	}
	fprintf(r->out, "echo: %s\n", o.line);
	return 0;
}

/* The API's answer to the last step. 0, or 1 after a message. */
static int
last_step(struct reg *r, struct change *c, struct reg_reply *reply, int rc)
{
	char why[sizeof(reply->why) + 300];

	if (rc == 0)
		return 0;
	if (reply->maybe_done) {
		fprintf(stderr, PROG ": %s: step 4 of 4 (the call to the API): "
			"%s\n" PROG ": it may have been carried out: the new "
			"secret stays (the old one is still accepted as "
			"previous); see whr register list\n", c->what,
			reply->why);
		return 1;
	}
	snprintf(why, sizeof(why), "%s; nothing was %s", reply->why,
		 strcmp(c->what, "create") == 0 ? "registered" : "changed");
	return step_failed(c, 4, "the call to the API", why);
}

static void
print_secret(const struct reg *r, const struct change *c)
{
	if (r->show_secret)
		fprintf(r->out, "secret: %s\n", c->secret);
}

static struct json_node *
filters_node(const struct reg *r)
{
	struct json_node *list = json_tree_new(JSON_ARRAY, NULL, 0);
	size_t i;

	for (i = 0; list != NULL && i < r->n_filters; i++) {
		if (json_tree_append(list, NULL, 0,
				     reg_string_node(r->filters[i])) < 0) {
			json_tree_free(list);
			return NULL;
		}
	}
	return list;
}

/* A registration of @p url with URI already? */
static const char *
registered_as(const struct json_node *list, const char *url)
{
	size_t i;

	for (i = 0; i < list->n_kids; i++) {
		const char *uri = reg_string(list->kids[i], "WebHookUri");

		if (uri != NULL && strcasecmp(uri, url) == 0)
			return reg_string(list->kids[i], "Id");
	}
	return NULL;
}

static int
cmd_create(struct reg *r)
{
	struct change c = { .what = "create" };
	struct receiver rx = { 0 };
	struct reg_reply reply = { 0 };
	struct json_node *list = NULL;
	struct json_node *body = NULL;
	const char *description = r->description != NULL ? r->description :
				  "";
	const char *paused = r->paused ? "true" : "false";
	const char *existing;
	char *text = NULL;
	char err[160];
	int status = 1;
	int rc;

	if (receiver_open(r, &rx, r->arg) != 0) {
		status = EXIT_USAGE;
		goto out;
	}
	c.receiver = receiver_id(r, &rx.url);
	if (c.receiver == NULL) {
		status = EXIT_USAGE;
		goto out;
	}
	status = check_replicas(r, &c);
	if (status != 0)
		goto out;
	status = 1;
	/* the credentials and the API first, before any file changes */
	if (fetch(r, NULL, &list) != 0)
		goto out;
	existing = registered_as(list, r->arg);
	if (existing != NULL) {
		fail("create: %s is registered already, as %s: change it with "
		     "whr register update, rotate, pause or resume %s", r->arg,
		     existing, existing);
		goto out;
	}
	status = locate_files(r, &c);
	if (status != 0 || (status = prepare(r, &c, &rx)) != 0)
		goto out;
	status = 1;
	body = json_tree_new(JSON_OBJECT, NULL, 0);
	if (body == NULL ||
	    reg_set(body, "WebHookUri", reg_string_node(r->arg)) < 0 ||
	    reg_set(body, "Secret", reg_string_node(c.secret)) < 0 ||
	    reg_set(body, "Description", reg_string_node(description)) < 0 ||
	    reg_set(body, "IsPaused", json_tree_new(JSON_LITERAL, paused,
						    strlen(paused))) < 0 ||
	    reg_set(body, "Filters", filters_node(r)) < 0 ||
	    (text = json_tree_write(body, JSON_STYLE_COMPACT, NULL, err,
				    sizeof(err))) == NULL) {
		step_failed(&c, 4, "the call to the API", "out of memory");
		goto out;
	}
	rc = reg_api_call(&r->api, "POST", NULL, text, &reply);
	if (last_step(r, &c, &reply, rc) != 0)
		goto out;
	fprintf(r->out, "registered: %s\n",
		reply.json != NULL && reg_string(reply.json, "Id") != NULL ?
		reg_string(reply.json, "Id") : "(the API gave no Id)");
	print_secret(r, &c);
	fflush(r->out);
	status = 0;
	if (reply.json != NULL && reply.json->kind == JSON_OBJECT)
		status = print_registrations(r, reply.json);
out:
	if (text != NULL) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	json_tree_free(body);
	json_tree_free(list);
	reg_reply_finish(&reply);
	receiver_close(&rx);
	change_finish(&c);
	return status;
}

static int
cmd_rotate(struct reg *r)
{
	struct change c = { .what = "rotate" };
	struct receiver rx = { 0 };
	struct reg_reply reply = { 0 };
	struct json_node *reg = NULL;
	struct probe_outcome o;
	const char *uri;
	int status = 1;
	int rc;

	if (fetch(r, r->arg, &reg) != 0)
		goto out;
	uri = reg_string(reg, "WebHookUri");
	if (uri == NULL) {
		fail("rotate: registration %s has no WebHookUri", r->arg);
		goto out;
	}
	if (receiver_open(r, &rx, uri) != 0 ||
	    (c.receiver = receiver_id(r, &rx.url)) == NULL)
		goto out;
	status = check_replicas(r, &c);
	if (status != 0)
		goto out;
	status = 1;
	if (reg_string(reg, "Secret") != NULL &&
	    (c.old_secret = strdup(reg_string(reg, "Secret"))) == NULL)
		goto out;
	status = locate_files(r, &c);
	if (status != 0)
		goto out;
	if (c.old_secret != NULL && c.files_named) {
		/* Only an old secret whr accepts now must stay accepted. */
		probe_delivery(&rx.target, c.old_secret, NULL,
			       "no notification", &o);
		if (o.check != PROBE_PASS) {
			fprintf(r->out, "whr: does not accept the "
				"registration's current secret now (%s): "
				"deliveries signed with it fail already\n",
				o.line);
			tool_secret_free(c.old_secret);
			c.old_secret = NULL;
		}
	}
	status = prepare(r, &c, &rx);
	if (status != 0)
		goto out;
	status = 1;
	if (reg_set(reg, "Secret", reg_string_node(c.secret)) < 0) {
		step_failed(&c, 4, "the call to the API", "out of memory");
		goto out;
	}
	rc = put_back(r, r->arg, reg, &reply);
	if (last_step(r, &c, &reply, rc) != 0)
		goto out;
	fprintf(r->out, "rotated: %s now signs with the new secret\n", r->arg);
	print_secret(r, &c);
	fflush(r->out);
	status = print_registrations(r, reg);
out:
	json_tree_free(reg);
	reg_reply_finish(&reply);
	receiver_close(&rx);
	change_finish(&c);
	return status;
}

/* ---- the other subcommands -------------------------------------------- */

static int
cmd_list(struct reg *r)
{
	struct json_node *list;
	int status = fetch(r, NULL, &list);

	if (status == 0)
		status = print_registrations(r, list);
	json_tree_free(list);
	return status;
}

static int
cmd_show(struct reg *r)
{
	struct json_node *reg;
	int status = fetch(r, r->arg, &reg);

	if (status == 0)
		status = print_registrations(r, reg);
	json_tree_free(reg);
	return status;
}

static int
cmd_delete(struct reg *r)
{
	struct reg_reply reply;
	int status = 0;

	if (reg_api_call(&r->api, "DELETE", r->arg, NULL, &reply) < 0)
		status = fail("%s", reply.why);
	else
		fprintf(r->out, "deleted: %s (the secrets files are as they "
			"were)\n", r->arg);
	reg_reply_finish(&reply);
	return status;
}

/* pause, resume, update: fetch, change, PUT back whole. */
static int
change_registration(struct reg *r)
{
	bool pause = strcmp(r->sub->name, "pause") == 0;
	bool update = strcmp(r->sub->name, "update") == 0;
	struct reg_reply reply = { 0 };
	struct json_node *reg = NULL;
	int status = fetch(r, r->arg, &reg);

	if (status != 0)
		goto out;
	if (!update && is_paused(reg) == pause) {
		fprintf(r->out, "%s: %s is %s already\n", r->sub->name, r->arg,
			pause ? "paused" : "active");
		status = print_registrations(r, reg);
		goto out;
	}
	status = check_kept_secret(r->arg, reg);
	if (status != 0)
		goto out;
	status = 1;
	if ((!update && reg_set(reg, "IsPaused",
				json_tree_new(JSON_LITERAL,
					      pause ? "true" : "false",
					      pause ? 4 : 5)) < 0) ||
	    (update && r->n_filters > 0 &&
	     reg_set(reg, "Filters", filters_node(r)) < 0) ||
	    (update && r->description != NULL &&
	     reg_set(reg, "Description",
		     reg_string_node(r->description)) < 0)) {
		fail("out of memory");
		goto out;
	}
	if (put_back(r, r->arg, reg, &reply) < 0) {
		fail("%s: %s%s", r->sub->name, reply.why, reply.maybe_done ?
		     " (it may have been carried out: see whr register show)" :
		     "; nothing was changed");
		goto out;
	}
	fprintf(r->out, "%s: %s %s\n", r->sub->name, r->arg,
		update ? "updated" : pause ? "paused" : "resumed");
	fflush(r->out);
	status = print_registrations(r, reg);
out:
	json_tree_free(reg);
	reg_reply_finish(&reply);
	return status;
}

static const struct subcommand subcommands[] = {
	{ "create", true, SECRETS | BIT(OPT_FILTER) | BIT(OPT_DESCRIPTION) |
	  BIT(OPT_PAUSED), cmd_create },
	{ "list", false, 0, cmd_list },
	{ "show", true, 0, cmd_show },
	{ "pause", true, 0, change_registration },
	{ "resume", true, 0, change_registration },
	{ "update", true, BIT(OPT_FILTER) | BIT(OPT_DESCRIPTION),
	  change_registration },
	{ "rotate", true, SECRETS, cmd_rotate },
	{ "delete", true, 0, cmd_delete },
};

/* ---- the command line -------------------------------------------------- */

static const char *
option_name(int id)
{
	const struct tool_option *o;

	for (o = options; o->name != NULL && o->id != id; o++)
		;
	return o->name != NULL ? o->name : "?";
}

static int
take(struct reg *r, int id, const char *value)
{
	const char *event;

	switch (id) {
	case OPT_API:
		r->api_url = value;
		return 0;
	case OPT_API_KEY_FILE:
		r->api_key_file = value;
		return 0;
	case OPT_CACERT:
		r->cacert = value;
		return 0;
	case OPT_TIMEOUT:
	case OPT_WAIT:
		if (tool_parse_timeout(value, "register", option_name(id),
				       id == OPT_TIMEOUT ? &r->timeout_us :
				       &r->wait_us) < 0)
			return EXIT_USAGE;
		return 0;
	case OPT_FORMAT:
		return tool_format_option(PROG, value, false, &r->format);
	case OPT_SHOW_SECRET:
		r->show_secret = true;
		return 0;
	case OPT_SECRETS_FILE:
	case OPT_PREVIOUS_FILE:
		if (value[0] == '\0')
			return tool_usage_error(PROG, "--%s needs a file name",
						id == OPT_SECRETS_FILE ?
						"secrets-file" :
						"previous-secrets-file");
		*(id == OPT_SECRETS_FILE ? &r->secrets_file :
		  &r->previous_file) = value;
		return 0;
	case OPT_DATA_DIR:
		return data_dir_option(&r->data, value);
	case OPT_RECEIVER_ID:
		r->receiver_id = value;
		return 0;
	case OPT_REPLICA:
		if (r->n_replicas == MAX_REPLICAS)
			return tool_usage_error(PROG, "more than %d --replica",
						MAX_REPLICAS);
		r->replicas[r->n_replicas++] = value;
		return 0;
	case OPT_FILTER:
		event = reg_event(value);
		if (event == NULL)
			return tool_usage_error(PROG, "--filter %s: not an "
						"event the API takes", value);
		if (r->n_filters == MAX_FILTERS)
			return tool_usage_error(PROG, "more than %d --filter",
						MAX_FILTERS);
		r->filters[r->n_filters++] = event;
		return 0;
	case OPT_DESCRIPTION:
		r->description = value;
		return 0;
	case OPT_PAUSED:
		r->paused = true;
		return 0;
	default:
		return EXIT_USAGE;
	}
}

static int
parse(struct reg *r, int argc, char **argv)
{
	struct tool_args args = { argc, argv, 0, false };
	const char *value;
	const char *env;
	size_t i;
	int id;
	int rc;

	while ((id = tool_next_arg(&args, options, &value, "register")) !=
	       TOOL_ARG_END) {
		if (id == TOOL_ARG_ERROR)
			return EXIT_USAGE;
		if (id == OPT_HELP) {
			usage();
			return -1;
		}
		if (id != TOOL_ARG_POSITIONAL) {
			r->given |= BIT(id);
			rc = take(r, id, value);
			if (rc != 0)
				return rc;
			continue;
		}
		if (r->sub == NULL) {
			for (i = 0; i < sizeof(subcommands) /
				    sizeof(subcommands[0]); i++) {
				if (strcmp(value, subcommands[i].name) == 0)
					r->sub = &subcommands[i];
			}
			if (r->sub == NULL)
				return tool_usage_error(PROG, "no subcommand "
							"'%s'", value);
		} else if (r->sub->takes_arg && r->arg == NULL) {
			r->arg = value;
		} else {
			return tool_usage_error(PROG, "%s: '%s' is one "
						"argument too many",
						r->sub->name, value);
		}
	}
	if (r->sub == NULL)
		return tool_usage_error(PROG, "which subcommand? create, list, "
					"show, pause, resume, update, rotate "
					"or delete");
	if (r->sub->takes_arg && r->arg == NULL)
		return tool_usage_error(PROG, "%s: which %s?", r->sub->name,
					strcmp(r->sub->name, "create") == 0 ?
					"URL" : "ID (see whr register list)");
	for (id = 1; id < OPT_COUNT; id++) {
		if ((r->given & BIT(id)) && !((COMMON | r->sub->options) &
					      BIT(id)))
			return tool_usage_error(PROG, "%s does not take --%s",
						r->sub->name, option_name(id));
	}
	if (strcmp(r->sub->name, "update") == 0 && r->n_filters == 0 &&
	    r->description == NULL)
		return tool_usage_error(PROG, "update: what? --filter EVENT "
					"or --description TEXT");
	if (strcmp(r->sub->name, "create") == 0) {
		struct http_url url;
		char err[256];

		if (http_url_parse(r->arg, &url, err, sizeof(err)) < 0)
			return tool_usage_error(PROG, "%s: the API takes an "
						"absolute http:// or https:// "
						"URL only: %s", r->arg, err);
		http_url_finish(&url);
	} else if (r->sub->takes_arg && !id_valid(r->arg)) {
		return tool_usage_error(PROG, "%s: '%s' is not a registration "
					"id (see whr register list)",
					r->sub->name, r->arg);
	}
	if (r->api_url == NULL) {
		env = getenv("WHR_LEARN365_API");
		r->api_url = env != NULL && env[0] != '\0' ? env : DEFAULT_API;
	}
	return 0;
}

/* The API key: --api-key-file, else WHR_LEARN365_API_KEY. Malloc'd, or
 * NULL after a message. */
static char *
api_key(const struct reg *r)
{
	const char *env = getenv("WHR_LEARN365_API_KEY");
	char *key;

	if (r->api_key_file != NULL) {
		key = tool_secret_file_read(r->api_key_file, "register",
					    "API key file");
		if (key != NULL && key[0] == '\0') {
			fprintf(stderr, PROG ": the API key file %s is "
				"empty\n", r->api_key_file);
			tool_secret_free(key);
			key = NULL;
		}
		return key;
	}
	if (env == NULL || env[0] == '\0') {
		tool_usage_error(PROG, "no API key: set WHR_LEARN365_API_KEY "
				 "or give --api-key-file FILE (never on the "
				 "command line)");
		return NULL;
	}
	key = strdup(env);
	if (key == NULL)
		fail("out of memory");
	return key;
}

int
cmd_register(int argc, char **argv)
{
	struct reg r = {
		.timeout_us = API_TIMEOUT_US,
		.wait_us = WAIT_US,
		.format = REPORT_TABLE,
	};
	const char *user = getenv("WHR_LEARN365_API_USER");
	char *key = NULL;
	char err[512];
	int status;

	data_dir_init(&r.data, PROG);
	signal(SIGPIPE, SIG_IGN);	/* a peer that closes is an outcome */
	status = parse(&r, argc, argv);
	if (status != 0)
		return status < 0 ? 0 : status;
	r.out = r.format == REPORT_JSON ? stderr : stdout;
	key = api_key(&r);
	if (key == NULL)
		return EXIT_USAGE;
	r.base = event_base_new();
	if (r.base == NULL) {
		status = fail("cannot set up the event loop");
		goto out;
	}
	if (reg_api_init(&r.api, r.base, r.api_url, user != NULL ? user : "",
			 key, r.cacert, r.timeout_us, err, sizeof(err)) < 0) {
		status = tool_usage_error(PROG, "--api %s: %s", r.api_url,
					  err);
		goto out;
	}
	status = r.sub->run(&r);
out:
	reg_api_finish(&r.api);
	if (r.base != NULL)
		event_base_free(r.base);
	tool_secret_free(key);
	return status;
}
