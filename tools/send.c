/*
 * whr send: deliveries as the ASP.NET WebHooks sender makes them, with
 * its retry schedule; one, or --count of them with --concurrency in
 * flight, then a summary. Options: send-options.c.
 */
#include "send.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include <whr/signature.h>

#include "commands.h"

#define FAILURES_SHOWN 10	/* with --count: failed attempts printed */
#define MAX_CAUSES 16

struct cause {
	char name[48];
	long count;
};

struct run {
	const struct send_options *o;
	const char *secret;
	struct http_url url;
	struct event_base *base;
	struct http_client *client;
	bool single;			/* --count 1: print every attempt */
	const char *first_id;		/* the first delivery's Id */
	long started;
	long in_flight;
	long finished;
	long delivered;
	bool starting;			/* inside start_jobs() */
	struct timespec t0;
	int64_t *latencies;		/* of every request */
	size_t n_latencies;
	size_t latencies_cap;
	long failures_shown;
	struct cause causes[MAX_CAUSES];
	size_t n_causes;
};

struct job {				/* one delivery */
	struct run *run;
	long index;
	char id[65];
	long attempt;
	struct event *retry;
};

static void start_jobs(struct run *r);

/* ---- bodies and requests -------------------------------------------- */

/* The body of attempt @p attempt of delivery @p id: malloc'd, or the
 * --file bytes (borrowed; *owned false). NULL after a message. */
static char *
make_body(const struct send_options *o, const char *id, long attempt,
	  size_t *len, bool *owned)
{
	struct delivery d = {
		.id = id,
		.attempt = attempt,
		.properties = o->properties,
		.notifications = (const char *const *)o->notes,
		.n_notifications = o->n_notes,
		.style = o->style,
	};
	char err[160];
	char *body;

	*owned = o->file == NULL;
	if (o->file != NULL) {
		*len = o->file_len;
		return o->file_body;
	}
	body = delivery_body(&d, len, err, sizeof(err));
	if (body == NULL)
		fprintf(stderr, "whr send: cannot build the body: %s\n", err);
	return body;
}

/* Sign @p body and start (or, with @p print, print) its request. */
static int
post(struct run *r, const char *body, size_t len, http_done_fn done,
     void *userdata, bool print)
{
	char signature[WHR_SIGNATURE_HEADER_SIZE];
	struct http_header *headers;
	struct http_request req = {
		.method = "POST",
		.url = &r->url,
		.body = body,
		.body_len = len,
		.expect_continue = r->o->expect_continue,
	};
	int rc;

	rc = tool_post_headers(&r->o->http, r->secret, body, len, signature,
			       &headers, &req.n_headers);
	if (rc == -EIO)
		fprintf(stderr, "whr send: cannot compute the signature\n");
	if (rc < 0)
		return rc;
	req.headers = headers;
	if (print)
		tool_print_request(stdout, &req);
	else
		rc = http_client_start(r->client, &req, done, userdata);
	free(headers);
	return rc;
}

/* ---- deliveries ----------------------------------------------------- */

static void
count_cause(struct run *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n_causes; i++) {
		if (strcmp(r->causes[i].name, name) == 0)
			break;
	}
	if (i == r->n_causes) {
		if (r->n_causes == MAX_CAUSES)
			i = MAX_CAUSES - 1;	/* lumped with the last */
		else
			snprintf(r->causes[r->n_causes++].name,
				 sizeof(r->causes[0].name), "%s", name);
	}
	r->causes[i].count++;
}

static void
job_end(struct job *j, const char *cause)
{
	struct run *r = j->run;

	if (cause == NULL)
		r->delivered++;
	else
		count_cause(r, cause);
	if (j->retry != NULL)
		event_free(j->retry);
	free(j);
	r->in_flight--;
	r->finished++;
	if (r->finished == r->o->count)
		event_base_loopbreak(r->base);
	else if (!r->starting)
		start_jobs(r);
}

static void on_attempt_done(struct http_result *res, void *userdata);

/* Send the job's current attempt (or end the job when it cannot). */
static void
job_attempt(struct job *j)
{
	struct run *r = j->run;
	bool owned;
	size_t len;
	char *body = make_body(r->o, j->id, j->attempt, &len, &owned);
	int rc = body != NULL ? post(r, body, len, on_attempt_done, j,
				     false) : -EINVAL;

	if (owned)
		free(body);
	if (rc < 0)
		job_end(j, "could not send");
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	job_attempt(arg);
}

static void
record_latency(struct run *r, int64_t us)
{
	if (r->n_latencies == r->latencies_cap) {
		size_t cap = r->latencies_cap ? 2 * r->latencies_cap : 1024;
		int64_t *grown = realloc(r->latencies, cap * sizeof(*grown));

		if (grown == NULL)
			return;		/* the percentiles miss a few */
		r->latencies = grown;
		r->latencies_cap = cap;
	}
	r->latencies[r->n_latencies++] = us;
}

/* The line of one attempt: always with --count 1, else failures only. */
static void
report_attempt(struct job *j, const struct http_result *res, bool ok)
{
	struct run *r = j->run;

	if (r->o->http.verbose)
		tool_print_heads(stdout, res);
	if (r->single) {
		printf("attempt %ld: ", j->attempt);
	} else if (ok) {
		return;
	} else if (r->failures_shown++ < FAILURES_SHOWN) {
		printf("delivery %ld%s%s, attempt %ld: ", j->index + 1,
		       j->id[0] != '\0' ? " Id " : "", j->id, j->attempt);
	} else {
		if (r->failures_shown == FAILURES_SHOWN + 1)
			printf("(further failed attempts are only "
			       "counted)\n");
		return;
	}
	tool_print_outcome(stdout, res);
}

static void
on_attempt_done(struct http_result *res, void *userdata)
{
	struct job *j = userdata;
	struct run *r = j->run;
	const struct send_options *o = r->o;
	bool got = res->error == HTTP_OK;
	bool ok = got && res->status >= 200 && res->status < 300;
	char cause[48];
	char t[32];
	struct timeval tv;
	int64_t delay;

	record_latency(r, res->elapsed_us);
	report_attempt(j, res, ok);
	if (ok) {
		if (r->single)
			printf("delivered%s%s on attempt %ld\n",
			       j->id[0] != '\0' ? ": Id " : "", j->id,
			       j->attempt);
		job_end(j, NULL);
		return;
	}
	if (got)
		snprintf(cause, sizeof(cause), "status %d", res->status);
	else
		snprintf(cause, sizeof(cause), "%s",
			 http_error_name(res->error));
	if ((got && res->status == 410) || j->attempt >= o->attempts) {
		if (r->single)
			printf("not delivered%s%s: %s\n",
			       j->id[0] != '\0' ? ": Id " : "", j->id,
			       got && res->status == 410 ?
			       "410 Gone stops the retries (the sender "
			       "drops the delivery)" :
			       o->attempts > 1 ? "no attempt left" :
			       "one attempt (--attempts N retries)");
		job_end(j, cause);
		return;
	}
	delay = send_retry_delay(o, j->attempt);
	j->attempt++;
	if (r->single) {
		tool_format_duration(t, sizeof(t), delay);
		printf("  retrying in %s (Attempt %ld, same Id)\n", t,
		       j->attempt);
	}
	fflush(stdout);
	tv.tv_sec = (time_t)(delay / 1000000);
	tv.tv_usec = (suseconds_t)(delay % 1000000);
	if (j->retry == NULL)
		j->retry = evtimer_new(r->base, on_retry, j);
	if (j->retry == NULL || evtimer_add(j->retry, &tv) < 0)
		job_end(j, "out of memory");
}

static void
start_jobs(struct run *r)
{
	r->starting = true;
	while (r->in_flight < r->o->concurrency && r->started < r->o->count) {
		struct job *j = calloc(1, sizeof(*j));

		r->started++;
		r->in_flight++;
		if (j == NULL) {
			r->in_flight--;
			r->finished++;
			count_cause(r, "out of memory");
			continue;
		}
		j->run = r;
		j->index = r->started - 1;
		j->attempt = 1;
		if (r->o->file != NULL)
			j->id[0] = '\0';
		else if (j->index == 0)
			snprintf(j->id, sizeof(j->id), "%s", r->first_id);
		else if (r->o->id != NULL)
			snprintf(j->id, sizeof(j->id), "%s", r->o->id);
		else if (r->o->file == NULL && delivery_random_id(j->id) < 0)
			snprintf(j->id, sizeof(j->id), "%s",
				 "00000000000000000000000000000000");
		job_attempt(j);
	}
	r->starting = false;
	if (r->finished == r->o->count)
		event_base_loopbreak(r->base);
}

/* ---- the summary ---------------------------------------------------- */

static int
compare_latency(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a;
	int64_t y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with @p pct percent at or below. */
static int64_t
percentile(const struct run *r, size_t pct)
{
	size_t rank = (r->n_latencies * pct + 99) / 100;

	return r->latencies[rank > 0 ? rank - 1 : 0];
}

static void
summary(struct run *r)
{
	struct timespec now;
	double elapsed;
	char t[32];
	char p50[32];
	char p99[32];
	size_t i;

	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (double)(now.tv_sec - r->t0.tv_sec) +
		  (double)(now.tv_nsec - r->t0.tv_nsec) / 1e9;
	tool_format_duration(t, sizeof(t), (int64_t)(elapsed * 1e6));
	printf("sent %ld deliveries in %s: %zu requests, %.1f requests/s\n",
	       r->finished, t, r->n_latencies,
	       elapsed > 0 ? (double)r->n_latencies / elapsed : 0.0);
	printf("delivered %ld, failed %ld", r->delivered,
	       r->finished - r->delivered);
	for (i = 0; i < r->n_causes; i++)
		printf("%s%s: %ld", i == 0 ? " (" : ", ", r->causes[i].name,
		       r->causes[i].count);
	printf("%s\n", r->n_causes > 0 ? ")" : "");
	if (r->n_latencies == 0)
		return;
	qsort(r->latencies, r->n_latencies, sizeof(*r->latencies),
	      compare_latency);
	tool_format_duration(p50, sizeof(p50), percentile(r, 50));
	tool_format_duration(p99, sizeof(p99), percentile(r, 99));
	printf("latency p50 %s, p99 %s\n", p50, p99);
}

/* ---- the command ---------------------------------------------------- */

static void
describe(const struct run *r, const char *first_id, size_t len)
{
	const struct send_options *o = r->o;

	printf("POST %s%s%s%s", r->url.origin, r->url.path,
	       r->url.query != NULL ? "?" : "",
	       r->url.query != NULL ? r->url.query : "");
	if (o->file != NULL)
		printf(": the body of %s, %zu bytes", o->file, len);
	else if (r->single)
		printf(": Id %s, %zu notification%s, %zu bytes", first_id,
		       o->n_notes, o->n_notes == 1 ? "" : "s", len);
	if (!r->single)
		printf(", %ld deliveries, %ld at once", o->count,
		       o->count < o->concurrency ? o->count :
		       o->concurrency);
	printf("\n");
}

int
cmd_send(int argc, char **argv)
{
	struct send_options o;
	struct run r;
	char *secret = NULL;
	char first_id[65] = "";
	char err[256];
	char *body = NULL;
	size_t len = 0;
	bool owned = false;
	int status = EXIT_USAGE;
	int rc;

	memset(&r, 0, sizeof(r));
	signal(SIGPIPE, SIG_IGN);	/* a peer that closes is an outcome */
	rc = send_options_parse(&o, argc, argv);
	if (rc != 0) {
		status = rc > 0 ? 0 : EXIT_USAGE;
		goto out;
	}
	r.o = &o;
	r.single = o.count == 1;
	if (http_url_parse(o.url, &r.url, err, sizeof(err)) < 0) {
		fprintf(stderr, "whr send: %s: %s\n", o.url, err);
		goto out;
	}
	if (tool_secret_load(&o.http, "send", &secret) < 0)
		goto out;
	if (secret == NULL) {
		fprintf(stderr, "whr send: no secret: give --secret-file FILE, "
			"--secret SECRET or the WHR_SECRET variable\n");
		goto out;
	}
	r.secret = secret;
	/* the first body: its errors are usage errors (bad JSON...) */
	if (o.id != NULL) {
		snprintf(first_id, sizeof(first_id), "%s", o.id);
	} else if (delivery_random_id(first_id) < 0) {
		fprintf(stderr, "whr send: no random bytes for an Id\n");
		status = 1;
		goto out;
	}
	r.first_id = first_id;
	body = make_body(&o, first_id, 1, &len, &owned);
	if (body == NULL)
		goto out;
	if (o.dry_run) {
		status = post(&r, body, len, NULL, NULL, true) < 0 ? 1 : 0;
		goto out;
	}
	status = tool_client_new(&o.http, &r.url, "send", &r.base, &r.client);
	if (status != 0)
		goto out;
	describe(&r, first_id, len);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &r.t0);
	start_jobs(&r);
	if (r.finished < o.count)
		event_base_dispatch(r.base);
	if (!r.single)
		summary(&r);
	status = r.delivered == o.count ? 0 : 1;
out:
	if (owned)
		free(body);
	tool_client_free(r.base, r.client);
	http_url_finish(&r.url);
	free(r.latencies);
	tool_secret_free(secret);
	send_options_finish(&o);
	return status;
}
