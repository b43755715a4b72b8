/*
 * The durable inbox (see inbox-private.h): the store thread and its
 * hand-offs. One transaction per batch holds new deliveries, the outcomes
 * of finished runs and the work of transactional handlers, and one sync
 * makes all of it durable (group commit): what arrives during a commit
 * goes in the next. Only then does the loop answer 200 and the scheduler
 * see the new work.
 */
#include "inbox-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <event2/event.h>

#include "log-private.h"
#include "run-private.h"
#include "scheduler-private.h"
#include "whr-private.h"
#include "workers-private.h"

#define TICK_US 1000000			/* periodic work */
#define PURGE_EVERY_US (10 * 1000000LL)
#define PURGE_BATCH 200
#define DEFAULT_WORK_WINDOW 10000

struct inbox {
	struct inbox_config c;
	char *data_dir;
	const struct handler_registry *handlers;
	struct store *store;		/* the store thread's */
	struct sched *sched;
	struct workers *workers;

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ingest_job *in_head, *in_tail;	/* from the loop */
	struct run *runs_head, *runs_tail;	/* from the workers */
	bool stopping;

	/* Answers for the loop: the store thread queues, the eventfd
	 * wakes the loop, which runs the jobs' done callbacks. */
	int done_fd;
	struct event *done_event;
	struct ingest_job *done_head, *done_tail;

	/* Health, for /readyz and 503s. */
	bool ready;
	char why[256];

	/* The store thread's own. */
	char open_error[512];		/* the last one, logged */
	struct run *deferred;		/* runs whose write failed */
	int64_t data_version;
	int64_t last_tick_us;
	int64_t last_purge_us;
	uint64_t rng;

	/* The work window (the store thread's): at most c.work_window open
	 * notifications are in the scheduler; the rest wait in the store.
	 * While behind, every open notification with an id up to
	 * loaded_through is in memory (or was replayed, for the rescan to
	 * find), and those above it are on disk only. */
	bool behind;
	int64_t loaded_through;		/* INT64_MAX when not behind */
	bool rescan;			/* replayed work may be left */
	int64_t rescan_after;		/* where the rescan goes on */
	int64_t waiting_at_start;	/* for the first log line */
};

/* ---- small helpers ----------------------------------------------------- */

static double
random01(struct inbox *ib)
{
	/* xorshift64*: jitter needs spread, not secrecy. */
	ib->rng ^= ib->rng >> 12;
	ib->rng ^= ib->rng << 25;
	ib->rng ^= ib->rng >> 27;
	return (double)((ib->rng * 2685821657736338717ULL) >> 11) /
	       9007199254740992.0;
}

static void
set_health(struct inbox *ib, bool ready, const char *why)
{
	bool changed;

	pthread_mutex_lock(&ib->lock);
	changed = ib->ready != ready;
	ib->ready = ready;
	snprintf(ib->why, sizeof(ib->why), "%.250s", why != NULL ? why : "");
	pthread_mutex_unlock(&ib->lock);
	if (changed && !ready)
		whr_log(WHR_LOG_ERROR,
			"the inbox cannot take writes: %s; answering 503 until it can",
			why);
	else if (changed)
		whr_log(WHR_LOG_INFO, "the inbox takes writes again");
}

bool
inbox_ready(struct inbox *ib, const char **why)
{
	bool ready;

	pthread_mutex_lock(&ib->lock);
	ready = ib->ready;
	*why = ib->why;
	pthread_mutex_unlock(&ib->lock);
	return ready;
}

/* ---- answers to the loop --------------------------------------------- */

static void
post_done(struct inbox *ib, struct ingest_job *jobs)
{
	uint64_t one = 1;
	ssize_t n;

	if (jobs == NULL)
		return;
	pthread_mutex_lock(&ib->lock);
	while (jobs != NULL) {
		struct ingest_job *next = jobs->next;

		jobs->next = NULL;
		if (ib->done_tail != NULL)
			ib->done_tail->next = jobs;
		else
			ib->done_head = jobs;
		ib->done_tail = jobs;
		jobs = next;
	}
	pthread_mutex_unlock(&ib->lock);
	n = write(ib->done_fd, &one, sizeof(one));
	(void)n;
}

static void
run_done_callbacks(struct inbox *ib)
{
	struct ingest_job *jobs;

	pthread_mutex_lock(&ib->lock);
	jobs = ib->done_head;
	ib->done_head = ib->done_tail = NULL;
	pthread_mutex_unlock(&ib->lock);
	while (jobs != NULL) {
		struct ingest_job *next = jobs->next;

		jobs->done(jobs, jobs->done_arg);
		jobs = next;
	}
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	uint64_t count;

	if (read(fd, &count, sizeof(count)) == sizeof(count))
		run_done_callbacks(arg);
}

/* ---- queues ---------------------------------------------------------- */

void
inbox_submit(struct inbox *ib, struct ingest_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&ib->lock);
	if (ib->in_tail != NULL)
		ib->in_tail->next = job;
	else
		ib->in_head = job;
	ib->in_tail = job;
	pthread_cond_signal(&ib->cond);
	pthread_mutex_unlock(&ib->lock);
}

static void
hand_back(struct run *run, void *arg)
{
	struct inbox *ib = arg;

	run->next_queued = NULL;
	pthread_mutex_lock(&ib->lock);
	if (ib->runs_tail != NULL)
		ib->runs_tail->next_queued = run;
	else
		ib->runs_head = run;
	ib->runs_tail = run;
	pthread_cond_signal(&ib->cond);
	pthread_mutex_unlock(&ib->lock);
}

/* ---- after the commit --------------------------------------------------- */

/* Once, as the inbox falls behind. */
static void
log_behind(struct inbox *ib, int64_t waiting)
{
	whr_log(WHR_LOG_WARN,
		"%lld notifications wait on disk: the handlers are slower than deliveries (the work window of %zu is full; they run in arrival order as it empties)",
		(long long)waiting, ib->c.work_window);
}

static void schedule_stored(struct inbox *ib, struct ingest_job *job,
			    size_t *open, int64_t *waiting);
static int open_store(struct inbox *ib);

/* A batch is on disk: answer its deliveries, give the new work to the
 * workers, and settle the runs it recorded. */
static void
after_commit(struct inbox *ib, struct ingest_job *jobs, struct run *runs,
	     int64_t now)
{
	struct ingest_job *job;
	bool was_behind = ib->behind;
	size_t open = jobs != NULL ? sched_count(ib->sched) : 0;
	int64_t waiting = 0;

	set_health(ib, true, NULL);
	for (job = jobs; job != NULL; job = job->next) {
		job->result = job->d.duplicate ? INGEST_DUPLICATE
					       : INGEST_STORED;
		if (!job->d.duplicate)
			schedule_stored(ib, job, &open, &waiting);
	}
	post_done(ib, jobs);
	if (!was_behind && ib->behind)
		log_behind(ib, waiting);
	while (runs != NULL) {
		struct run *next = runs->next_queued;
		int64_t id = runs->w->id;

		if (run_has_next(runs)) {
			/* The next handler is a worker's. */
			sched_requeue(ib->sched, id, now, runs);
		} else if (runs->w->state == WORK_RETRYING) {
			/* A retry reads its outcomes back from the store. */
			sched_requeue(ib->sched, id, runs->w->next_at, NULL);
			run_free(runs);
		} else {
			sched_finish(ib->sched, id);
			run_free(runs);
		}
		runs = next;
	}
}

/* ---- one batch --------------------------------------------------------- */

static char *
block_copy(char **p, const char *s, size_t n)
{
	char *here = *p;

	memcpy(here, s, n);
	here[n] = '\0';
	*p += n + 1;
	return here;
}

/* The fresh work of a stored notification, so that a worker need not
 * read it back from the database: its strings in one block. NULL when
 * out of memory: the worker then loads it. */
static struct run *
fresh_run(struct inbox *ib, const struct ingest_delivery *d, size_t i,
	  char **keys, size_t n_keys)
{
	const struct ingest_notification *n = &d->notifications[i];
	size_t json_len = n->json_end - n->json_start;
	size_t props_len = d->has_properties
				   ? d->properties_end - d->properties_start
				   : 0;
	size_t size = n_keys * sizeof(char *) + strlen(d->receiver_id) + 1 +
		      json_len + 1 + props_len + 1;
	struct stored_work *w = calloc(1, sizeof(*w));
	char *p;
	size_t k;

	for (k = 0; k < n_keys; k++)
		size += strlen(keys[k]) + 1;
	size += d->delivery_id != NULL ? strlen(d->delivery_id) + 1 : 0;
	size += n->action != NULL ? strlen(n->action) + 1 : 0;
	if (w == NULL || (w->block = malloc(size)) == NULL) {
		free(w);
		return NULL;
	}
	/* The pointers first: the block is aligned for them. */
	w->keys = w->block;
	p = (char *)(w->keys + n_keys);
	for (k = 0; k < n_keys; k++)
		w->keys[k] = block_copy(&p, keys[k], strlen(keys[k]));
	w->n_keys = n_keys;
	w->id = n->id;
	w->delivery_seq = d->seq;
	w->index = n->index;
	w->count = d->n_notifications;
	w->receiver_id = block_copy(&p, d->receiver_id, strlen(d->receiver_id));
	if (d->delivery_id != NULL)
		w->delivery_id = block_copy(&p, d->delivery_id,
					    strlen(d->delivery_id));
	if (n->action != NULL)
		w->action = block_copy(&p, n->action, strlen(n->action));
	w->attempt = d->attempt;
	w->received_at = d->received_at;
	w->json_len = json_len;
	w->json = block_copy(&p, d->body + n->json_start, json_len);
	if (d->has_properties) {
		w->properties_len = props_len;
		w->properties = block_copy(&p, d->body + d->properties_start,
					   props_len);
	}
	w->state = WORK_PENDING;
	w->next_at = d->received_at;
	return run_new(ib->handlers, w);
}

/* New work that stays in the store only: the inbox is behind from it on.
 * A new row's id is above every row's there is (even when purged ids are
 * reused), so every open row below it is in memory: the refill starts
 * with this one. */
static void
leave_on_disk(struct inbox *ib, int64_t id)
{
	if (!ib->behind || id - 1 < ib->loaded_through)
		ib->loaded_through = id - 1;
	ib->behind = true;
}

/* Hand a stored delivery's notifications to the scheduler, or, when the
 * window is full or the inbox is behind, leave them in the store: see
 * refill(). @p open counts the notifications in memory. */
static void
schedule_stored(struct inbox *ib, struct ingest_job *job, size_t *open,
		int64_t *waiting)
{
	const struct ingest_delivery *d = &job->d;
	size_t i;

	for (i = 0; i < d->n_notifications; i++) {
		const struct ingest_notification *n = &d->notifications[i];
		char fallback[32];
		char *delivery_key = fallback;
		char **keys = n->keys;
		size_t n_keys = n->n_keys;
		struct run *run;
		bool taken = false;

		if (ib->behind || *open >= ib->c.work_window) {
			leave_on_disk(ib, n->id);
			(*waiting)++;
			continue;
		}
		/* No learner and course: ordered within the delivery. */
		if (n_keys == 0) {
			snprintf(fallback, sizeof(fallback), "d:%lld",
				 (long long)d->seq);
			keys = &delivery_key;
			n_keys = 1;
		}
		run = fresh_run(ib, d, i, keys, n_keys);
		if (sched_add(ib->sched, n->id, keys, n_keys, d->received_at,
			      run, &taken) < 0) {
			/* Out of memory: the refill loads it later. */
			leave_on_disk(ib, n->id);
			(*waiting)++;
		}
		if (!taken)
			run_free(run);
		else
			(*open)++;
	}
}

/* Undo what a failed transaction did to the runs in memory: the
 * transactional handlers it ran are to run again, their results unsaid. */
struct tx_mark {
	struct run *run;
	size_t from;		/* run->next before this batch */
};

static void
undo_transactional(struct tx_mark *marks, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		struct run *run = marks[i].run;

		for (k = marks[i].from; k < run->next; k++) {
			if (run->h[k].entry->flags & WHR_HANDLER_TRANSACTIONAL) {
				run->h[k].ran = false;
				run->h[k].result = WHR_DONE;
				free(run->h[k].reason);
				run->h[k].reason = NULL;
			}
			run->h[k].recorded = false;
		}
		run->next = marks[i].from;
	}
}

/* Run a run's consecutive transactional handlers, each in a savepoint
 * that is rolled back unless it says done. */
static int
run_transactional(struct inbox *ib, struct run *run, int64_t now)
{
	sqlite3 *db = store_db(ib->store);

	while (run_has_next(run) && run_next_is_transactional(run)) {
		struct run_handler *h = &run->h[run->next];
		int rc;

		if (sqlite3_exec(db, "SAVEPOINT handler", NULL, NULL, NULL) !=
		    SQLITE_OK)
			return -EIO;
		run_call_next(run, db);
		if (h->result != WHR_DONE)
			sqlite3_exec(db, "ROLLBACK TO handler", NULL, NULL, NULL);
		if (sqlite3_exec(db, "RELEASE handler", NULL, NULL, NULL) !=
		    SQLITE_OK)
			return -EIO;
		/* Its done mark in the same transaction as its writes. */
		rc = store_record_handler(ib->store, run->w->id,
					  h->entry->name, h->result, h->reason,
					  now);
		if (rc < 0)
			return rc;
		h->recorded = true;
	}
	return 0;
}

/* A run that had every handler: its outcomes and new state. */
static int
record_final(struct inbox *ib, struct run *run, int64_t now,
	     enum work_state *state, int64_t *next_at)
{
	const char *error;
	size_t i;
	int rc;

	for (i = 0; i < run->n; i++) {
		struct run_handler *h = &run->h[i];

		if (!h->ran || h->recorded)
			continue;
		rc = store_record_handler(ib->store, run->w->id,
					  h->entry->name, h->result, h->reason,
					  now);
		if (rc < 0)
			return rc;
		h->recorded = true;
	}
	*state = run_outcome(run, &ib->c, now, random01(ib), next_at, &error);
	if (*state == WORK_DEAD) {
		struct log_field fields[] = {
			LOG_INT("notification", run->w->id),
			LOG_STR("receiver", run->w->receiver_id),
			LOG_STR("delivery", run->w->delivery_id),
			LOG_STR("action", run->w->action),
			LOG_STR("reason", error),
		};

		log_fields(WHR_LOG_WARN, "notification is dead (whr inbox replay brings it back)",
			   fields, ARRAY_LENGTH(fields));
	}
	return store_record_state(ib->store, run->w->id, *state, *next_at,
				  error, now);
}

static void
fail_jobs(struct ingest_job *jobs, const char *why)
{
	for (; jobs != NULL; jobs = jobs->next) {
		jobs->result = INGEST_FAILED;
		snprintf(jobs->error, sizeof(jobs->error), "%.150s", why);
	}
}

static void
defer_runs(struct inbox *ib, struct run *runs)
{
	while (runs != NULL) {
		struct run *next = runs->next_queued;

		runs->next_queued = ib->deferred;
		ib->deferred = runs;
		runs = next;
	}
}

/* One transaction being filled: the deliveries and runs in it, in
 * order, and where each run's transactional handlers started (to undo
 * them in memory if the transaction fails). */
struct batch {
	struct ingest_job *jobs, *jobs_tail;
	struct run *runs, *runs_tail;
	struct tx_mark *marks;
	size_t n_marks, cap_marks;
	size_t size;		/* deliveries and runs */
	int64_t now;
	int rc;			/* the first failure; the rest only waits */
};

/* @p answered: the batch holds deliveries waiting for their 200, so its
 * commit must be synced. Outcomes alone need not be: losing them to a
 * power cut means their handlers run again (at least once), and a
 * transactional handler's writes are lost with its done mark (still
 * exactly once). They reach the disk with the next synced commit, or a
 * checkpoint; a sync less per batch of outcomes is CPU and latency the
 * deliveries waiting for theirs get instead. */
static void
batch_start(struct inbox *ib, struct batch *b, bool answered)
{
	memset(b, 0, sizeof(*b));
	b->now = now_realtime_us();
	if (ib->store == NULL) {
		b->rc = -ENODEV;
		return;
	}
	b->rc = store_sync_commits(ib->store, answered);
	if (b->rc == 0)
		b->rc = store_begin(ib->store);
}

static int
batch_mark(struct batch *b, struct run *run)
{
	if (b->n_marks == b->cap_marks) {
		size_t cap = b->cap_marks ? 2 * b->cap_marks : 64;
		struct tx_mark *grown = realloc(b->marks, cap * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		b->marks = grown;
		b->cap_marks = cap;
	}
	b->marks[b->n_marks].run = run;
	b->marks[b->n_marks++].from = run->next;
	return 0;
}

/* Write deliveries and finished runs into the open transaction. */
static void
batch_add(struct inbox *ib, struct batch *b, struct ingest_job *jobs,
	  struct run *runs)
{
	while (jobs != NULL) {
		struct ingest_job *job = jobs;

		jobs = job->next;
		job->next = NULL;
		if (b->jobs_tail != NULL)
			b->jobs_tail->next = job;
		else
			b->jobs = job;
		b->jobs_tail = job;
		b->size++;
		if (b->rc == 0)
			b->rc = store_ingest(ib->store, &job->d);
	}
	while (runs != NULL) {
		struct run *run = runs;

		runs = run->next_queued;
		run->next_queued = NULL;
		if (b->runs_tail != NULL)
			b->runs_tail->next_queued = run;
		else
			b->runs = run;
		b->runs_tail = run;
		b->size++;
		if (b->rc == 0)
			b->rc = batch_mark(b, run);
		if (b->rc == 0)
			b->rc = run_transactional(ib, run, b->now);
		if (b->rc == 0 && !run_has_next(run)) {
			enum work_state state = WORK_PENDING;
			int64_t next_at = b->now;

			b->rc = record_final(ib, run, b->now, &state, &next_at);
			run->w->state = state;
			run->w->next_at = next_at;
		}
	}
}

/* Commit, durably (the WAL is synced); or fail the batch whole. */
static void
batch_finish(struct inbox *ib, struct batch *b)
{
	char closed[sizeof(ib->why)];
	const char *why;

	if (b->rc == 0)
		b->rc = store_commit(ib->store);
	if (b->rc == 0) {
		free(b->marks);
		after_commit(ib, b->jobs, b->runs, b->now);
		return;
	}
	if (b->rc == -ENODEV) {
		/* The inbox is not open: say why it could not be. */
		pthread_mutex_lock(&ib->lock);
		memcpy(closed, ib->why, sizeof(closed));
		pthread_mutex_unlock(&ib->lock);
		why = closed;
	} else {
		store_rollback(ib->store);
		why = b->rc == -ENOMEM ? "out of memory"
				       : store_error(ib->store);
		set_health(ib, false, why);
	}
	undo_transactional(b->marks, b->n_marks);
	free(b->marks);
	fail_jobs(b->jobs, why);
	post_done(ib, b->jobs);
	defer_runs(ib, b->runs);
}

static void
batch(struct inbox *ib, struct ingest_job *jobs, struct run *runs)
{
	struct batch b;

	batch_start(ib, &b, jobs != NULL);
	batch_add(ib, &b, jobs, runs);
	batch_finish(ib, &b);
}

/* ---- the work window ------------------------------------------------ */

/* Open rows read from the store into the scheduler, without their work
 * (a worker loads it). */
struct load {
	struct inbox *ib;
	size_t room;		/* notifications the window still takes */
	int64_t through;	/* rows above it are not this load's */
	int64_t last;		/* the last row read (known or added) */
	int64_t n;		/* rows read */
	bool full;		/* stopped for want of room */
};

static int
load_one(int64_t id, char **keys, size_t n_keys, int64_t next_at,
	 void *arg)
{
	struct load *l = arg;
	bool taken = false;
	int rc;

	if (id > l->through)
		return 1;
	if (l->room == 0) {
		l->full = true;
		return 1;
	}
	rc = sched_add(l->ib->sched, id, keys, n_keys, next_at, NULL, &taken);
	if (rc < 0)
		return rc;
	l->last = id;
	l->n++;
	if (taken)
		l->room--;
	return 0;
}

static size_t
window_room(struct inbox *ib)
{
	size_t open = sched_count(ib->sched);

	return open < ib->c.work_window ? ib->c.work_window - open : 0;
}

/* While behind, load the oldest waiting notifications into the window,
 * once it has room (below 3/4 full), until a load finds
 * fewer than it asked for: then every open notification is in memory
 * and new ones go there directly again.
 *
 * Strictly in id order, which is arrival order: rows above
 * loaded_through are loaded lowest first, and new ones wait behind them.
 * So of two notifications sharing a key, the older one is always in the
 * scheduler before (or with) the newer one, where it keeps the newer one
 * waiting until it is finished: the per-key order holds across the disk
 * and memory. (A replayed notification is older than the newest of its
 * keys; it is found by the rescan and ordered as replays always were.) */
static void
refill(struct inbox *ib)
{
	struct load l = { .ib = ib, .through = INT64_MAX };
	size_t open;
	int64_t asked;
	int rc;

	if (!ib->behind || ib->store == NULL)
		return;
	/* Not for every notification that finishes: a load at a time. */
	open = sched_count(ib->sched);
	if (open >= ib->c.work_window / 4 * 3)
		return;
	l.room = ib->c.work_window - open;
	asked = (int64_t)l.room;
	l.last = ib->loaded_through;
	rc = store_each_open_after(ib->store, ib->loaded_through, asked,
				   load_one, &l);
	ib->loaded_through = l.last;
	if (rc < 0) {
		whr_log(WHR_LOG_WARN, "cannot load waiting work: %s",
			rc == -ENOMEM ? "out of memory"
				      : store_error(ib->store));
		return;
	}
	if (l.n < asked) {
		ib->behind = false;
		ib->loaded_through = INT64_MAX;
		whr_log(WHR_LOG_INFO,
			"the inbox caught up: every open notification is in memory again");
	}
}

/* Another process (whr inbox replay) changed the store: queue pending
 * work the scheduler does not know yet, as far as the window has room.
 * Replayed rows are older than those loaded, so they may come in below
 * loaded_through; those above it are the refill's. A rescan cut short
 * for room goes on from where it stopped, once there is room. */
static void
rescan(struct inbox *ib)
{
	struct load l = { .ib = ib };
	int rc;

	if (!ib->rescan)
		return;
	l.room = window_room(ib);
	if (l.room == 0)
		return;
	l.through = ib->loaded_through;
	l.last = ib->rescan_after;
	rc = store_each_open_after(ib->store, ib->rescan_after, -1, load_one,
				   &l);
	ib->rescan_after = l.last;
	if (rc < 0)
		whr_log(WHR_LOG_WARN, "cannot rescan the inbox: %s",
			rc == -ENOMEM ? "out of memory"
				      : store_error(ib->store));
	else if (!l.full)
		ib->rescan = false;
}

static void
pick_up_changes(struct inbox *ib)
{
	int64_t version = store_data_version(ib->store);

	if (version != ib->data_version) {
		ib->data_version = version;
		ib->rescan = true;
		ib->rescan_after = 0;
	}
	rescan(ib);
}

/* ---- periodic work ----------------------------------------------------- */

static void
purge(struct inbox *ib, int64_t now)
{
	int n;

	/* A short retention (tests, small disks) is purged as often. */
	if (now - ib->last_purge_us < PURGE_EVERY_US &&
	    now - ib->last_purge_us < ib->c.retain_us)
		return;
	ib->last_purge_us = now;
	if (store_begin(ib->store) < 0)
		return;
	n = store_purge(ib->store, now - ib->c.retain_us, PURGE_BATCH);
	if (n < 0 || store_commit(ib->store) < 0) {
		store_rollback(ib->store);
		return;
	}
	if (n > 0)
		whr_log(WHR_LOG_DEBUG, "purged %d finished deliveries", n);
	if (n == PURGE_BATCH)
		ib->last_purge_us = 0;	/* more to do: again next tick */
}

/* Not ready after a failed write: with no traffic (a load balancer that
 * follows /readyz sends none), nothing else would find out that the disk
 * takes writes again. */
static void
probe(struct inbox *ib)
{
	if (store_probe(ib->store) == 0)
		set_health(ib, true, NULL);
	else
		set_health(ib, false, store_error(ib->store));
}

static void
tick(struct inbox *ib)
{
	int64_t now = now_realtime_us();
	struct run *deferred = ib->deferred;
	const char *why;

	ib->last_tick_us = now_monotonic_us();
	if (ib->store == NULL) {
		if (open_store(ib) < 0)
			return;
		whr_log(WHR_LOG_INFO, "inbox %s/%s opened: %lld notification(s) to handle",
			ib->data_dir, STORE_FILE,
			(long long)sched_count(ib->sched) +
				ib->waiting_at_start);
		set_health(ib, true, NULL);
	}
	workers_watch(ib->workers, ib->c.handler_timeout_us);
	/* Outcomes the store could not take: try them again. */
	ib->deferred = NULL;
	if (deferred != NULL)
		batch(ib, NULL, deferred);
	else if (!inbox_ready(ib, &why))
		probe(ib);
	pick_up_changes(ib);
	refill(ib);
	purge(ib, now);
}

static void *
store_main(void *arg)
{
	struct inbox *ib = arg;

	thread_background();

	for (;;) {
		struct ingest_job *jobs;
		struct run *runs;
		bool stopping;

		pthread_mutex_lock(&ib->lock);
		while (ib->in_head == NULL && ib->runs_head == NULL &&
		       !ib->stopping &&
		       now_monotonic_us() - ib->last_tick_us < TICK_US) {
			int64_t until = now_realtime_us() + TICK_US;
			struct timespec ts = {
				.tv_sec = (time_t)(until / 1000000),
				.tv_nsec = (long)(until % 1000000) * 1000,
			};

			pthread_cond_timedwait(&ib->cond, &ib->lock, &ts);
		}
		jobs = ib->in_head;
		runs = ib->runs_head;
		ib->in_head = ib->in_tail = NULL;
		ib->runs_head = ib->runs_tail = NULL;
		stopping = ib->stopping;
		pthread_mutex_unlock(&ib->lock);

		/* Group commit: what arrived while the last commit was being
		 * synced goes in the next one, all at once. */
		if (jobs != NULL || runs != NULL) {
			batch(ib, jobs, runs);
			refill(ib);
		}
		if (now_monotonic_us() - ib->last_tick_us >= TICK_US)
			tick(ib);
		if (stopping && jobs == NULL && runs == NULL)
			break;
	}
	/* The last outcomes may have been committed without a sync. */
	if (ib->store != NULL && store_probe(ib->store) < 0)
		whr_log(WHR_LOG_WARN, "inbox: cannot sync the last outcomes: %s",
			store_error(ib->store));
	/* Runs whose outcome could not be written are done again at the
	 * next start: drop them. */
	while (ib->deferred != NULL) {
		struct run *next = ib->deferred->next_queued;

		run_free(ib->deferred);
		ib->deferred = next;
	}
	return NULL;
}

/* ---- start and stop ---------------------------------------------------- */

/* The folder entry of the WAL file must be on disk too, or a power loss
 * could lose the file with every commit in it. */
static void
sync_folder(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int
setup_handler_tables(struct inbox *ib)
{
	size_t i;
	int rc;

	rc = store_begin(ib->store);
	if (rc < 0)
		return rc;
	for (i = 0; i < ib->handlers->n; i++) {
		const struct handler_entry *h = &ib->handlers->entries[i];

		if (h->db_setup == NULL)
			continue;
		rc = h->db_setup(store_db(ib->store), h->userdata);
		if (rc < 0) {
			whr_log(WHR_LOG_ERROR,
				"handler %s could not prepare its tables", h->name);
			store_rollback(ib->store);
			return rc;
		}
	}
	rc = store_commit(ib->store);
	if (rc < 0)
		whr_log(WHR_LOG_ERROR, "inbox: %s", store_error(ib->store));
	return rc;
}

/* The open work, in id order, as far as the window goes; the inbox is
 * behind when there is more. */
static int
load_at_start(struct inbox *ib)
{
	struct load l = { .ib = ib, .through = INT64_MAX };
	int64_t waiting;
	int rc;

	ib->rescan = false;
	ib->waiting_at_start = 0;
	l.room = window_room(ib);
	rc = store_each_open_after(ib->store, 0, (int64_t)l.room, load_one,
				   &l);
	if (rc < 0)
		return rc;
	waiting = store_count_open_after(ib->store, l.last);
	if (waiting < 0)
		return (int)waiting;
	ib->behind = waiting > 0;
	ib->loaded_through = ib->behind ? l.last : INT64_MAX;
	ib->waiting_at_start = waiting;
	if (ib->behind)
		log_behind(ib, waiting);
	return 0;
}

/* Open the database and queue its pending work. -EPROTO when it can
 * never work (a newer schema, a handler that cannot set up its tables);
 * another negative errno when it may later (a read-only or full disk). */
static int
open_store(struct inbox *ib)
{
	char why[512];
	struct store *s = store_open(ib->data_dir, STORE_SERVER, why,
				     sizeof(why));
	int rc;

	if (s == NULL) {
		rc = errno == EPROTO ? -EPROTO : -EIO;
		/* Said once, not at every attempt to open it again. */
		if (strcmp(why, ib->open_error) != 0) {
			whr_log(WHR_LOG_ERROR, "%s", why);
			snprintf(ib->open_error, sizeof(ib->open_error), "%s",
				 why);
		}
		set_health(ib, false, why);
		return rc;
	}
	ib->open_error[0] = '\0';
	ib->store = s;
	sync_folder(ib->data_dir);
	rc = setup_handler_tables(ib);
	if (rc < 0)
		goto err;
	ib->data_version = store_data_version(s);
	rc = load_at_start(ib);
	if (rc < 0) {
		whr_log(WHR_LOG_ERROR, "cannot read pending work: %s",
			rc == -ENOMEM ? "out of memory" : store_error(s));
		goto err;
	}
	return 0;
err:
	ib->store = NULL;
	store_close(s);
	return rc;
}

struct inbox *
inbox_start(const struct inbox_config *config,
	    const struct handler_registry *handlers, struct event_base *base)
{
	struct inbox *ib = calloc(1, sizeof(*ib));
	int rc;

	if (ib == NULL)
		return NULL;
	ib->c = *config;
	if (ib->c.work_window == 0)
		ib->c.work_window = DEFAULT_WORK_WINDOW;
	ib->handlers = handlers;
	ib->done_fd = -1;
	ib->ready = true;
	ib->rng = (uint64_t)now_realtime_us() | 1;
	pthread_mutex_init(&ib->lock, NULL);
	pthread_cond_init(&ib->cond, NULL);
	ib->data_dir = strdup(config->data_dir);
	if (ib->data_dir == NULL)
		goto err;
	ib->c.data_dir = ib->data_dir;

	ib->sched = sched_new(NULL, NULL);
	if (ib->sched == NULL)
		goto err;
	/* A disk that cannot be written now may be later (a read-only or
	 * full folder, a mount not there yet): run, answer 503, and try
	 * again every second. A newer schema never works: stop. */
	rc = open_store(ib);
	if (rc == -EPROTO)
		goto err;
	ib->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ib->done_fd < 0)
		goto err;
	ib->done_event = event_new(base, ib->done_fd, EV_READ | EV_PERSIST,
				   on_done, ib);
	if (ib->done_event == NULL || event_add(ib->done_event, NULL) < 0)
		goto err;
	ib->workers = workers_start(ib->c.workers, ib->sched, handlers,
				    ib->data_dir, hand_back, ib);
	if (ib->workers == NULL)
		goto err;
	ib->last_tick_us = now_monotonic_us();
	if (pthread_create(&ib->thread, NULL, store_main, ib) != 0)
		goto err;
	ib->thread_started = true;
	if (ib->store != NULL)
		whr_log(WHR_LOG_INFO,
			"inbox %s/%s: %lld notification(s) to handle, %u worker(s)",
			ib->data_dir, STORE_FILE,
			(long long)sched_count(ib->sched) +
				ib->waiting_at_start,
			ib->c.workers);
	return ib;
err:
	/* No grace limit: the workers may have started a handler already,
	 * and inbox_start() has no way to say that one is left running. A
	 * handler that never returns blocks here; only a failed
	 * pthread_create() gets here with workers running. */
	inbox_stop(ib, INT64_MAX / 2, NULL, 0);
	return NULL;
}

int
inbox_stop(struct inbox *ib, int64_t grace_us, char *running, size_t size)
{
	bool workers_gone = true;

	if (running != NULL && size > 0)
		running[0] = '\0';
	if (ib == NULL)
		return 0;
	if (ib->sched != NULL)
		sched_close(ib->sched);
	/* The store thread runs until the workers are gone: it commits their
	 * last outcomes, and its tick watches them. */
	if (ib->workers != NULL)
		workers_gone = workers_stop(ib->workers, grace_us, running,
					    size);
	pthread_mutex_lock(&ib->lock);
	ib->stopping = true;
	pthread_cond_signal(&ib->cond);
	pthread_mutex_unlock(&ib->lock);
	if (ib->thread_started)
		pthread_join(ib->thread, NULL);
	ib->thread_started = false;
	/* Answers the loop has not seen yet. */
	run_done_callbacks(ib);
	/* Only the store thread wrote to done_fd, and the loop's event is
	 * freed before its base. */
	if (ib->done_event != NULL)
		event_free(ib->done_event);
	ib->done_event = NULL;
	if (ib->done_fd >= 0)
		close(ib->done_fd);
	ib->done_fd = -1;
	store_close(ib->store);
	ib->store = NULL;
	if (!workers_gone) {
		/* A worker still runs a handler: it may yet take our locks
		 * (a run it handed back just before it was given up on),
		 * our scheduler and the registry. Keep them, and the inbox
		 * with them, for as long as the process lives. */
		return -EBUSY;
	}
	workers_free(ib->workers);
	sched_free(ib->sched, (void (*)(void *))run_free);
	pthread_cond_destroy(&ib->cond);
	pthread_mutex_destroy(&ib->lock);
	free(ib->data_dir);
	free(ib);
	return 0;
}
