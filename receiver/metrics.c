/*
 * Metrics (see metrics.h): fixed arrays of relaxed atomic counters, sized
 * when the receiver starts, and the text page built from them.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <whr/lms365.h>
#include <whr/version.h>

#include "handler.h"
#include "util.h"

/* Receiver ids counted by name: those with a secret at start, and those
 * a reload adds, up to this many; then "unknown". */
#define RECEIVERS_MAX 256
#define UNKNOWN_RECEIVER "unknown"

typedef atomic_uint_fast64_t counter;

/* The statuses whr answers with; any other is "other". */
static const int statuses[] = {
	200, 400, 404, 405, 408, 413, 415, 417, 429, 431, 500, 501, 503,
};
#define N_STATUSES (ARRAY_LENGTH(statuses) + 1)

static const char *const failure_names[METRICS_SIGNATURE_FAILURE_COUNT] = {
	[METRICS_SIGNATURE_MISSING] = "missing",
	[METRICS_SIGNATURE_DUPLICATE] = "duplicate",
	[METRICS_SIGNATURE_MALFORMED] = "malformed",
	[METRICS_SIGNATURE_MISMATCH] = "mismatch",
};

static const char *const outcome_names[] = { "done", "retry", "reject" };
#define N_OUTCOMES ARRAY_LENGTH(outcome_names)

/* Upper bounds of histogram buckets; +Inf is implied. */
static const double batch_bounds[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256 };
static const double commit_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
};
static const double handler_bounds[] = {
	0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60,
};
#define MAX_BOUNDS 12

struct histogram {
	const double *bounds;
	size_t n_bounds;
	counter buckets[MAX_BOUNDS + 1];	/* not cumulative; last: +Inf */
	counter count;
	counter sum_micro;	/* the sum, in millionths of the unit */
};

struct receiver_slot {
	char *id;
	counter requests[N_STATUSES];
	counter deliveries[2];		/* stored, duplicate */
};

struct metrics {
	const struct handler_registry *handlers;

	pthread_mutex_t lock;		/* adding a receiver slot */
	struct receiver_slot receivers[RECEIVERS_MAX + 1];	/* +unknown */
	atomic_size_t n_receivers;	/* slots published, unknown aside */

	counter failures[METRICS_SIGNATURE_FAILURE_COUNT];
	counter echo_checks;
	struct histogram batch, commit;

	/* The inbox's gauges, set by its thread. */
	atomic_int_fast64_t open, dead, oldest_open_at;

	/* Handler runs: [handler][action][outcome], the actions being the
	 * distinct ones handlers are registered for, then "other". */
	char **actions;
	size_t n_actions;
	counter *runs;
	struct histogram *durations;	/* one per handler */
};

static void
histogram_init(struct histogram *h, const double *bounds, size_t n)
{
	h->bounds = bounds;
	h->n_bounds = n;
}

static void
histogram_observe(struct histogram *h, double value)
{
	size_t i;

	for (i = 0; i < h->n_bounds && value > h->bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_micro,
				  (uint_fast64_t)(value * 1e6 + 0.5),
				  memory_order_relaxed);
}

static int
action_slot(const struct metrics *m, const char *action)
{
	size_t i;

	for (i = 0; action != NULL && i < m->n_actions; i++) {
		if (ascii_equal_nocase(m->actions[i], action))
			return (int)i;
	}
	return (int)m->n_actions;	/* other */
}

static int
add_action(struct metrics *m, const char *action)
{
	if (action == NULL || action_slot(m, action) < (int)m->n_actions)
		return 0;
	m->actions[m->n_actions] = strdup(action);
	if (m->actions[m->n_actions] == NULL)
		return -1;
	m->n_actions++;
	return 0;
}

/* The Actions handlers are registered for, then those of Learn365 that
 * whr knows, which catch-all handlers see (a fixed set too). */
static int
add_actions(struct metrics *m)
{
	const struct handler_registry *reg = m->handlers;
	size_t n_known = 0;
	size_t i;

	while (whr_lms365_action_name(
		       (enum whr_lms365_action)(n_known + 1)) != NULL)
		n_known++;
	m->actions = calloc(reg->n + n_known + 1, sizeof(*m->actions));
	if (m->actions == NULL)
		return -1;
	for (i = 0; i < reg->n; i++) {
		if (add_action(m, reg->entries[i].action) < 0)
			return -1;
	}
	for (i = 1; i <= n_known; i++) {
		if (add_action(m, whr_lms365_action_name(
					  (enum whr_lms365_action)i)) < 0)
			return -1;
	}
	return 0;
}

struct metrics *
metrics_new(const struct handler_registry *handlers, const char *const *ids,
	    size_t n_ids)
{
	struct metrics *m = calloc(1, sizeof(*m));
	size_t n_handlers = handlers->n;
	size_t i;

	if (m == NULL)
		return NULL;
	m->handlers = handlers;
	pthread_mutex_init(&m->lock, NULL);
	histogram_init(&m->batch, batch_bounds, ARRAY_LENGTH(batch_bounds));
	histogram_init(&m->commit, commit_bounds,
		       ARRAY_LENGTH(commit_bounds));
	if (add_actions(m) < 0)
		goto err;
	m->runs = calloc((n_handlers ? n_handlers : 1) * (m->n_actions + 1) *
				 N_OUTCOMES,
			 sizeof(*m->runs));
	m->durations = calloc(n_handlers ? n_handlers : 1,
			      sizeof(*m->durations));
	if (m->runs == NULL || m->durations == NULL)
		goto err;
	for (i = 0; i < n_handlers; i++)
		histogram_init(&m->durations[i], handler_bounds,
			       ARRAY_LENGTH(handler_bounds));
	m->receivers[RECEIVERS_MAX].id = strdup(UNKNOWN_RECEIVER);
	if (m->receivers[RECEIVERS_MAX].id == NULL)
		goto err;
	for (i = 0; i < n_ids && i < RECEIVERS_MAX; i++) {
		m->receivers[i].id = strdup(ids[i]);
		if (m->receivers[i].id == NULL)
			goto err;
		atomic_store(&m->n_receivers, i + 1);
	}
	return m;
err:
	metrics_free(m);
	return NULL;
}

void
metrics_free(struct metrics *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i <= RECEIVERS_MAX; i++)
		free(m->receivers[i].id);
	for (i = 0; m->actions != NULL && i < m->n_actions; i++)
		free(m->actions[i]);
	free(m->actions);
	free(m->runs);
	free(m->durations);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* The slot of @p id: its own when it has a secret (made on first sight,
 * while there is room), else "unknown". */
static struct receiver_slot *
receiver(struct metrics *m, const char *id, bool known)
{
	size_t n = atomic_load_explicit(&m->n_receivers, memory_order_acquire);
	size_t i;

	/* Not even looked for: a flood of made-up ids costs no search. */
	if (!known)
		return &m->receivers[RECEIVERS_MAX];
	if (id == NULL)
		id = "";
	for (i = 0; i < n; i++) {
		if (strcmp(m->receivers[i].id, id) == 0)
			return &m->receivers[i];
	}
	/* An id a reload brought in: give it a slot of its own. */
	pthread_mutex_lock(&m->lock);
	n = atomic_load_explicit(&m->n_receivers, memory_order_relaxed);
	for (i = 0; i < n && strcmp(m->receivers[i].id, id) != 0; i++)
		;
	if (i == n && n < RECEIVERS_MAX) {
		m->receivers[n].id = strdup(id);
		if (m->receivers[n].id != NULL)
			atomic_store_explicit(&m->n_receivers, n + 1,
					      memory_order_release);
	}
	pthread_mutex_unlock(&m->lock);
	return i < RECEIVERS_MAX && m->receivers[i].id != NULL
		       ? &m->receivers[i]
		       : &m->receivers[RECEIVERS_MAX];
}

static void
bump(counter *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void
metrics_request(struct metrics *m, const char *receiver_id, bool known,
		int status)
{
	struct receiver_slot *r;
	size_t i;

	if (m == NULL)
		return;
	r = receiver(m, receiver_id, known || receiver_id == NULL);
	for (i = 0; i < ARRAY_LENGTH(statuses) && statuses[i] != status; i++)
		;
	bump(&r->requests[i]);
}

void
metrics_signature_failure(struct metrics *m,
			  enum metrics_signature_failure why)
{
	if (m != NULL && why < METRICS_SIGNATURE_FAILURE_COUNT)
		bump(&m->failures[why]);
}

void
metrics_delivery(struct metrics *m, const char *receiver_id, bool duplicate)
{
	if (m != NULL)
		bump(&receiver(m, receiver_id, true)->deliveries[duplicate]);
}

void
metrics_echo_check(struct metrics *m)
{
	if (m != NULL)
		bump(&m->echo_checks);
}

void
metrics_commit(struct metrics *m, size_t batch_size, int64_t commit_us)
{
	if (m == NULL)
		return;
	histogram_observe(&m->batch, (double)batch_size);
	histogram_observe(&m->commit, (double)commit_us / 1e6);
}

void
metrics_set_inbox(struct metrics *m, int64_t open, int64_t dead,
		  int64_t oldest_open_at_us)
{
	if (m == NULL)
		return;
	atomic_store_explicit(&m->open, open, memory_order_relaxed);
	atomic_store_explicit(&m->dead, dead, memory_order_relaxed);
	atomic_store_explicit(&m->oldest_open_at, oldest_open_at_us,
			      memory_order_relaxed);
}

void
metrics_handler_run(struct metrics *m, const struct handler_entry *h,
		    const char *action, enum whr_result result,
		    int64_t duration_us)
{
	size_t handler, outcome;

	if (m == NULL || h < m->handlers->entries ||
	    h >= m->handlers->entries + m->handlers->n)
		return;
	handler = (size_t)(h - m->handlers->entries);
	outcome = result == WHR_DONE ? 0 : result == WHR_RETRY ? 1 : 2;
	bump(&m->runs[(handler * (m->n_actions + 1) +
		       (size_t)action_slot(m, action)) * N_OUTCOMES + outcome]);
	histogram_observe(&m->durations[handler], (double)duration_us / 1e6);
}

/* ---- the page ------------------------------------------------------------- */

struct page {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void WHR_PRINTF(2, 3)
put(struct page *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = p->cap - p->len;

		va_start(ap, fmt);
		n = vsnprintf(p->buf + p->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			p->failed = true;
			return;
		}
		if ((size_t)n < room) {
			p->len += (size_t)n;
			return;
		}
		if (!p->failed) {
			size_t cap = 2 * p->cap + (size_t)n;
			char *grown = realloc(p->buf, cap);

			if (grown != NULL) {
				p->buf = grown;
				p->cap = cap;
				continue;
			}
		}
		p->failed = true;
		return;
	}
}

/* A label value with \, " and newlines escaped, as the format asks. */
static void
put_label(struct page *p, const char *value)
{
	for (; *value != '\0'; value++) {
		if (*value == '\\' || *value == '"')
			put(p, "\\%c", *value);
		else if (*value == '\n')
			put(p, "\\n");
		else
			put(p, "%c", *value);
	}
}

static void
family(struct page *p, const char *name, const char *type, const char *help)
{
	put(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t
get(counter *c)
{
	return (uint64_t)atomic_load_explicit(c, memory_order_relaxed);
}

/* One histogram's series; @p labels: "name=\"value\"," or "". */
static void
put_histogram(struct page *p, const char *name, const char *label,
	      const char *value, struct histogram *h)
{
	uint64_t cumulative = 0;
	size_t i;

	for (i = 0; i <= h->n_bounds; i++) {
		cumulative += get(&h->buckets[i]);
		put(p, "%s_bucket{", name);
		if (label != NULL) {
			put(p, "%s=\"", label);
			put_label(p, value);
			put(p, "\",");
		}
		if (i < h->n_bounds)
			put(p, "le=\"%g\"} %llu\n", h->bounds[i],
			    (unsigned long long)cumulative);
		else
			put(p, "le=\"+Inf\"} %llu\n",
			    (unsigned long long)cumulative);
	}
	put(p, "%s_sum", name);
	if (label != NULL) {
		put(p, "{%s=\"", label);
		put_label(p, value);
		put(p, "\"}");
	}
	put(p, " %.6f\n", (double)get(&h->sum_micro) / 1e6);
	put(p, "%s_count", name);
	if (label != NULL) {
		put(p, "{%s=\"", label);
		put_label(p, value);
		put(p, "\"}");
	}
	put(p, " %llu\n", (unsigned long long)get(&h->count));
}

static void
put_requests(struct page *p, struct metrics *m, size_t n_receivers)
{
	size_t r, s;

	family(p, "whr_requests_total", "counter",
	       "Requests answered, by receiver id and status.");
	for (r = 0; r <= RECEIVERS_MAX; r++) {
		struct receiver_slot *slot = &m->receivers[r];

		if (r >= n_receivers && r != RECEIVERS_MAX)
			continue;
		for (s = 0; s < N_STATUSES; s++) {
			uint64_t v = get(&slot->requests[s]);

			if (v == 0)
				continue;
			put(p, "whr_requests_total{receiver=\"");
			put_label(p, slot->id);
			if (s < ARRAY_LENGTH(statuses))
				put(p, "\",status=\"%d\"} %llu\n",
				    statuses[s], (unsigned long long)v);
			else
				put(p, "\",status=\"other\"} %llu\n",
				    (unsigned long long)v);
		}
	}
}

static void
put_deliveries(struct page *p, struct metrics *m, size_t n_receivers)
{
	static const char *const results[] = { "stored", "duplicate" };
	size_t r, k;

	family(p, "whr_deliveries_total", "counter",
	       "Verified deliveries, stored or recognised as a resend.");
	for (r = 0; r < n_receivers; r++) {
		for (k = 0; k < 2; k++) {
			put(p, "whr_deliveries_total{receiver=\"");
			put_label(p, m->receivers[r].id);
			put(p, "\",result=\"%s\"} %llu\n", results[k],
			    (unsigned long long)get(
				    &m->receivers[r].deliveries[k]));
		}
	}
}

static void
put_runs(struct page *p, struct metrics *m)
{
	size_t h, a, o;

	family(p, "whr_handler_runs_total", "counter",
	       "Handler calls, by Action, handler and outcome.");
	for (h = 0; h < m->handlers->n; h++) {
		for (a = 0; a <= m->n_actions; a++) {
			for (o = 0; o < N_OUTCOMES; o++) {
				uint64_t v = get(&m->runs[(h * (m->n_actions +
								1) + a) *
								  N_OUTCOMES +
							  o]);

				if (v == 0)
					continue;
				put(p, "whr_handler_runs_total{action=\"");
				put_label(p, a < m->n_actions ? m->actions[a]
							      : "other");
				put(p, "\",handler=\"");
				put_label(p, m->handlers->entries[h].name);
				put(p, "\",outcome=\"%s\"} %llu\n",
				    outcome_names[o], (unsigned long long)v);
			}
		}
	}
	family(p, "whr_handler_duration_seconds", "histogram",
	       "How long handler calls took, by handler.");
	for (h = 0; h < m->handlers->n; h++)
		put_histogram(p, "whr_handler_duration_seconds", "handler",
			      m->handlers->entries[h].name,
			      &m->durations[h]);
}

char *
metrics_page(struct metrics *m, int64_t now_us, size_t *len)
{
	struct page p = { .cap = 8192 };
	size_t n_receivers =
		atomic_load_explicit(&m->n_receivers, memory_order_acquire);
	int64_t oldest =
		atomic_load_explicit(&m->oldest_open_at, memory_order_relaxed);
	size_t i;

	p.buf = malloc(p.cap);
	if (p.buf == NULL)
		return NULL;
	family(&p, "whr_build_info", "gauge", "The whr version, as a label.");
	put(&p, "whr_build_info{version=\"%s\"} 1\n", WHR_VERSION_STRING);
	put_requests(&p, m, n_receivers);
	family(&p, "whr_signature_failures_total", "counter",
	       "Deliveries refused by the signature checks, by reason.");
	for (i = 0; i < METRICS_SIGNATURE_FAILURE_COUNT; i++)
		put(&p, "whr_signature_failures_total{reason=\"%s\"} %llu\n",
		    failure_names[i],
		    (unsigned long long)get(&m->failures[i]));
	put_deliveries(&p, m, n_receivers);
	family(&p, "whr_echo_checks_total", "counter",
	       "Registration echo checks answered.");
	put(&p, "whr_echo_checks_total %llu\n",
	    (unsigned long long)get(&m->echo_checks));
	family(&p, "whr_inbox_open_notifications", "gauge",
	       "Notifications not finished yet (pending or retrying).");
	put(&p, "whr_inbox_open_notifications %lld\n",
	    (long long)atomic_load_explicit(&m->open, memory_order_relaxed));
	family(&p, "whr_inbox_oldest_open_seconds", "gauge",
	       "Age of the oldest open notification; 0 when none is open.");
	put(&p, "whr_inbox_oldest_open_seconds %.3f\n",
	    oldest > 0 && now_us > oldest ? (double)(now_us - oldest) / 1e6
					  : 0.0);
	family(&p, "whr_dead_notifications", "gauge",
	       "Notifications a handler rejected or whose retries ran out.");
	put(&p, "whr_dead_notifications %lld\n",
	    (long long)atomic_load_explicit(&m->dead, memory_order_relaxed));
	put_runs(&p, m);
	family(&p, "whr_commit_batch_size", "histogram",
	       "Deliveries and runs committed together (group commit).");
	put_histogram(&p, "whr_commit_batch_size", NULL, NULL, &m->batch);
	family(&p, "whr_commit_sync_seconds", "histogram",
	       "How long a batch's commit took, its sync included.");
	put_histogram(&p, "whr_commit_sync_seconds", NULL, NULL, &m->commit);
	if (p.failed) {
		free(p.buf);
		return NULL;
	}
	*len = p.len;
	return p.buf;
}
