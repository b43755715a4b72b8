/*
 * The inbox's batches: one transaction holds new deliveries, the outcomes
 * of finished runs and the work of transactional handlers (those of a new
 * notification run in the transaction that stores it, when its order
 * allows: run_in_delivery()), and one sync makes all of it durable (group
 * commit). What follows the commit is in inbox-commit.c.
 */
#include "inbox-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "dispatch/run.h"
#include "dispatch/scheduler.h"
#include "util.h"

/* Undo what a failed transaction did to the runs in memory: the
 * transactional handlers it ran are to run again, their results unsaid,
 * and the outcomes it wrote are to be written again. */
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

		for (k = 0; k < run->next; k++) {
			struct run_handler *h = &run->h[k];
			bool tx = h->entry->flags & WHR_HANDLER_TRANSACTIONAL;

			/* Not one finished in an earlier run: its result
			 * is the stored one. */
			if (k >= marks[i].from && tx && !h->finished_before) {
				h->ran = false;
				h->result = WHR_DONE;
				free(h->reason);
				h->reason = NULL;
			}
			/* A worker's handlers are recorded only by
			 * record_final(), in this batch; a transactional
			 * one from before it was committed then. */
			if (k >= marks[i].from || !tx)
				h->recorded = false;
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

		rc = store_savepoint(ib->store);
		if (rc < 0)
			return rc;
		store_handler_begin(ib->store);
		run_call_next(run, db);
		rc = store_handler_end(ib->store, h->entry->name);
		if (rc == 0 && h->result != WHR_DONE)
			rc = store_rollback_to(ib->store);
		if (rc < 0)
			return rc;
		rc = store_release(ib->store);
		if (rc < 0)
			return rc;
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
	*state = run_outcome(run, &ib->c, now, inbox_random01(ib), next_at, &error);
	return store_record_state(ib->store, run->w->id, *state, *next_at,
				  error, now);
}

/* A run with no handler left: record its outcomes and its new state. */
static int
finish_if_done(struct inbox *ib, struct run *run, int64_t now)
{
	enum work_state state = WORK_PENDING;
	int64_t next_at = now;
	int rc;

	if (run_has_next(run))
		return 0;
	rc = record_final(ib, run, now, &state, &next_at);
	run->w->state = state;
	run->w->next_at = next_at;
	return rc;
}

static void
fail_jobs(struct ingest_job *jobs, const char *why)
{
	for (; jobs != NULL; jobs = jobs->next) {
		jobs->result = INGEST_FAILED;
		snprintf(jobs->error, sizeof(jobs->error), "%.150s", why);
	}
}

/* Keep runs whose outcomes wait (those of a failed batch, and those
 * behind them), in their order, after those kept before them. */
void
inbox_defer_runs(struct inbox *ib, struct run *runs)
{
	struct run **tail = &ib->deferred;

	while (*tail != NULL)
		tail = &(*tail)->next_queued;
	*tail = runs;
}

#define BATCH_BLOCKED_MAX 64

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
	/* Keys of this batch's new notifications not finished in it: a
	 * later one with such a key waits its turn in the scheduler. */
	char *blocked[BATCH_BLOCKED_MAX];
	size_t n_blocked;
	bool blocked_full;	/* no more room: none runs in the batch */
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

static bool
batch_blocks(const struct batch *b, char *const *keys, size_t n_keys)
{
	size_t i, k;

	if (b->blocked_full)
		return true;
	for (i = 0; i < b->n_blocked; i++) {
		for (k = 0; k < n_keys; k++) {
			if (strcmp(b->blocked[i], keys[k]) == 0)
				return true;
		}
	}
	return false;
}

static void
batch_block(struct batch *b, char *const *keys, size_t n_keys)
{
	size_t k;

	for (k = 0; k < n_keys; k++) {
		if (b->n_blocked == BATCH_BLOCKED_MAX) {
			b->blocked_full = true;
			return;
		}
		b->blocked[b->n_blocked++] = keys[k];
	}
}

/* Whether a new notification may run its handlers now, in the
 * transaction that stores it: only when nothing older with one of its
 * keys is open, in memory or on disk, so the order per key holds. */
static bool
may_run_in_delivery(struct inbox *ib, struct batch *b,
		    const struct ingest_notification *n)
{
	/* Deferred outcomes are older work whose keys may be free already. */
	if (b->rc != 0 || ib->behind || ib->rescan || !ib->any_transactional ||
	    ib->deferred != NULL)
		return false;
	return n->n_keys > 0 && !batch_blocks(b, n->keys, n->n_keys) &&
	       !sched_keys_busy(ib->sched, n->keys, n->n_keys);
}

/* A new delivery's notifications: each whose first handlers are
 * transactional runs them now, so their writes and done marks go with
 * the delivery in one commit instead of a second one after a worker
 * has passed them back. The rest of a run (and a run that could not
 * start) goes to the scheduler after the commit: schedule_stored(). */
static void
run_in_delivery(struct inbox *ib, struct batch *b, struct ingest_delivery *d)
{
	bool earlier_open = false;	/* in this delivery: keep its order */
	size_t i;

	for (i = 0; i < d->n_notifications && b->rc == 0; i++) {
		struct ingest_notification *n = &d->notifications[i];
		struct run *run;

		if (earlier_open || !may_run_in_delivery(ib, b, n)) {
			batch_block(b, n->keys, n->n_keys);
			earlier_open = true;
			continue;
		}
		run = inbox_fresh_run(ib, d, i, n->keys, n->n_keys);
		n->run = run;
		if (run == NULL ||
		    (run_has_next(run) && !run_next_is_transactional(run))) {
			/* A worker's handler first (or no memory). */
			batch_block(b, n->keys, n->n_keys);
			earlier_open = true;
			continue;
		}
		b->rc = run_transactional(ib, run, b->now);
		if (b->rc == 0)
			b->rc = finish_if_done(ib, run, b->now);
		if (run_has_next(run) || run->w->state == WORK_RETRYING) {
			batch_block(b, n->keys, n->n_keys);
			earlier_open = true;
		}
	}
}

/* A failed batch: the runs begun in it are undone with it. */
static void
drop_delivery_runs(struct ingest_job *jobs)
{
	size_t i;

	for (; jobs != NULL; jobs = jobs->next) {
		for (i = 0; i < jobs->d.n_notifications; i++) {
			run_free(jobs->d.notifications[i].run);
			jobs->d.notifications[i].run = NULL;
		}
	}
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
		if (b->rc == 0 && !job->d.duplicate)
			run_in_delivery(ib, b, &job->d);
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
		if (b->rc == 0)
			b->rc = finish_if_done(ib, run, b->now);
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
		inbox_after_commit(ib, b->jobs, b->runs, b->now);
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
		inbox_set_health(ib, false, why);
	}
	undo_transactional(b->marks, b->n_marks);
	free(b->marks);
	drop_delivery_runs(b->jobs);
	fail_jobs(b->jobs, why);
	inbox_post_done(ib, b->jobs);
	inbox_defer_runs(ib, b->runs);
}

void
inbox_batch(struct inbox *ib, struct ingest_job *jobs, struct run *runs)
{
	struct batch b;

	batch_start(ib, &b, jobs != NULL);
	batch_add(ib, &b, jobs, runs);
	batch_finish(ib, &b);
}

