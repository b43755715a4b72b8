/*
 * The inbox's batches: one transaction holds new deliveries, the outcomes
 * of finished runs and the work of transactional handlers (those of a new
 * notification run in the transaction that stores it, when its order
 * allows: run_in_delivery()), and one sync makes all of it durable (group
 * commit). After the commit the loop
 * answers, and the scheduler sees the new work (or, when the work window
 * is full, it waits on disk: inbox-window.c).
 */
#include "inbox-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log-private.h"
#include "run-private.h"
#include "scheduler-private.h"
#include "whr-private.h"
#include "workers-private.h"

/* Once, as the inbox falls behind. */
void
inbox_log_behind(struct inbox *ib, int64_t waiting)
{
	whr_log(WHR_LOG_WARN,
		"%lld notifications wait on disk: the handlers are slower than deliveries (the work window of %zu is full; they run in arrival order as it empties)",
		(long long)waiting, ib->c.work_window);
}

static void schedule_stored(struct inbox *ib, struct ingest_job *job,
			    size_t *open, int64_t *waiting);

/* Said once its state is committed (a failed batch is written again). */
static void
log_dead(const struct run *run)
{
	struct log_field fields[] = {
		LOG_INT("notification", run->w->id),
		LOG_STR("receiver", run->w->receiver_id),
		LOG_STR("delivery", run->w->delivery_id),
		LOG_STR("action", run->w->action),
		LOG_STR("reason", run->error),
	};

	log_fields(WHR_LOG_WARN, "notification is dead (whr inbox replay brings it back)",
		   fields, ARRAY_LENGTH(fields));
}

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

	inbox_set_health(ib, true, NULL);
	for (job = jobs; job != NULL; job = job->next) {
		job->result = job->d.duplicate ? INGEST_DUPLICATE
					       : INGEST_STORED;
		if (!job->d.duplicate)
			schedule_stored(ib, job, &open, &waiting);
	}
	inbox_post_done(ib, jobs);
	if (!was_behind && ib->behind)
		inbox_log_behind(ib, waiting);
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
			if (runs->w->state == WORK_DEAD)
				log_dead(runs);
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
 * inbox_refill(). @p open counts the notifications in memory. */
static void
schedule_stored(struct inbox *ib, struct ingest_job *job, size_t *open,
		int64_t *waiting)
{
	struct ingest_delivery *d = &job->d;
	size_t i;

	for (i = 0; i < d->n_notifications; i++) {
		struct ingest_notification *n = &d->notifications[i];
		char fallback[32];
		char *delivery_key = fallback;
		char **keys = n->keys;
		size_t n_keys = n->n_keys;
		struct run *run = n->run;
		bool fresh = run == NULL;
		int64_t next_at = d->received_at;
		bool taken = false;

		n->run = NULL;
		if (run != NULL && !run_has_next(run)) {
			/* Finished in the delivery's own transaction. */
			bool retry = run->w->state == WORK_RETRYING;

			next_at = run->w->next_at;
			if (run->w->state == WORK_DEAD)
				log_dead(run);
			run_free(run);
			run = NULL;
			if (!retry)
				continue;
			/* A retry reads its outcomes back from the store. */
		}
		if (ib->behind || *open >= ib->c.work_window) {
			run_free(run);
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
		if (fresh)
			run = fresh_run(ib, d, i, keys, n_keys);
		if (sched_add(ib->sched, n->id, keys, n_keys, next_at, run,
			      &taken) < 0) {
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
		run = fresh_run(ib, d, i, n->keys, n->n_keys);
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

