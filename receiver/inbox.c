/*
 * The durable inbox (see inbox.h): the store thread.
 *
 * One transaction per batch holds new deliveries, the outcomes of runs
 * dispatch handed back and the work of transactional handlers, and one
 * sync makes all of it durable (group commit): what arrives during a
 * commit goes in the next. Only then does the loop answer 200 and
 * dispatch see the new work.
 *
 * Transactional handlers of a new notification run in the transaction
 * that stores it, when nothing older with its keys is open: their writes
 * and done marks then go with the delivery in one commit, instead of a
 * second one after a worker has passed them back.
 *
 * On a shared store (several replicas on one PostgreSQL) none of that
 * hand-off: work reaches dispatch only through claims, which it makes
 * after each commit that may have made work eligible, when another
 * replica says so (the store's listener), and every second; each run
 * with transactional handlers to run commits in a transaction of its
 * own; and a batch the database broke off for a deadlock with another
 * replica is tried again at once.
 */
#include "inbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define TICK_US 1000000			/* periodic work */
#define PURGE_EVERY_US (10 * 1000000LL)
#define PURGE_BATCH 200
/* A batch broken off for a deadlock or a serialization failure with
 * another replica (-EDEADLK) is tried this many times in all. */
#define BATCH_TRIES 4
/* On a shared store, dead work is counted this far apart. */
#define RECOUNT_SHARED_US (60 * 1000000LL)
/* Counting dead work on a shared store holds up the deliveries waiting
 * for the store thread; with a large table it takes tens of
 * milliseconds. It is made again only after this many times its own
 * duration, so that it takes 2 % of the store thread at most. (Open work
 * the store counts on a connection of its own: whr_store_gauges().) */
#define COUNT_COST_FACTOR 50

STAILQ_HEAD(job_queue, ingest_job);

struct inbox {
	struct inbox_config c;
	struct dispatch_config dc;
	char *location;
	const struct handler_registry *handlers;
	bool any_transactional;		/* a handler is; fixed at start */
	struct whr_store *store;	/* the store thread's */
	bool shared;			/* it is shared: work by claims only */
	int folder_fd;			/* flock()ed: one whr serve per folder */
	struct dispatch *dispatch;

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job_queue in;		/* from the loop */
	struct run_queue settled;	/* from the workers */
	bool stopping;
	bool claim_wanted;		/* another replica made work */

	/* Answers for the loop: the store thread queues, the eventfd
	 * wakes the loop, which runs the jobs' done callbacks. */
	int done_fd;
	struct event *done_event;
	struct job_queue done;

	/* Health, for /readyz and 503s. */
	bool ready;
	char why[256];

	/* The store thread's own. */
	char open_error[512];		/* the last one, logged */
	/* 1 + the index of the handler whose table setup failed at the
	 * last attempt to open; 0: none did. */
	size_t setup_failing;
	struct run_queue deferred;	/* runs whose write failed */
	/* Open and dead notifications, for the metrics: counted when the
	 * store opens or another process changed it, followed in between. */
	int64_t open, dead;
	bool counted;
	int64_t counted_at;		/* monotonic */
	int64_t recount_at;		/* not before (shared store) */
	int64_t data_version;
	int64_t last_tick_us;
	int64_t last_purge_us;
};

/* ---- health ------------------------------------------------------------ */

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
inbox_ready(struct inbox *ib, char *why, size_t why_size)
{
	bool ready;

	/* A copy: the store thread may rewrite the reason at any time. */
	pthread_mutex_lock(&ib->lock);
	ready = ib->ready;
	if (why_size > 0)
		snprintf(why, why_size, "%s", ib->why);
	pthread_mutex_unlock(&ib->lock);
	return ready;
}

/* ---- hand-offs ------------------------------------------------------------ */

void
inbox_submit(struct inbox *ib, struct ingest_job *job)
{
	pthread_mutex_lock(&ib->lock);
	STAILQ_INSERT_TAIL(&ib->in, job, link);
	pthread_cond_signal(&ib->cond);
	pthread_mutex_unlock(&ib->lock);
}

/* Dispatch's settle callback, on a worker's thread. */
static void
settle(struct run *run, void *arg)
{
	struct inbox *ib = arg;

	pthread_mutex_lock(&ib->lock);
	STAILQ_INSERT_TAIL(&ib->settled, run, link);
	/* Finished for good (no retry): the next of its keys may go now,
	 * while its outcome is being written. Released under the queue's
	 * lock, so that the next one's outcome queues behind this one's:
	 * outcomes reach the disk in the order a key's runs ran, and a
	 * crash can only run both again, in order. */
	dispatch_release(ib->dispatch, run);
	pthread_cond_signal(&ib->cond);
	pthread_mutex_unlock(&ib->lock);
}

/* Hand stored (or failed) jobs back to the loop for their answers. */
static void
post_done(struct inbox *ib, struct job_queue *jobs)
{
	uint64_t one = 1;
	ssize_t n;

	if (STAILQ_EMPTY(jobs))
		return;
	pthread_mutex_lock(&ib->lock);
	STAILQ_CONCAT(&ib->done, jobs);
	pthread_mutex_unlock(&ib->lock);
	n = write(ib->done_fd, &one, sizeof(one));
	(void)n;
}

static void
run_done_callbacks(struct inbox *ib)
{
	struct job_queue jobs = STAILQ_HEAD_INITIALIZER(jobs);
	struct ingest_job *job;

	pthread_mutex_lock(&ib->lock);
	STAILQ_CONCAT(&jobs, &ib->done);
	pthread_mutex_unlock(&ib->lock);
	/* The callback may free the job: unlink it first. */
	while ((job = STAILQ_FIRST(&jobs)) != NULL) {
		STAILQ_REMOVE_HEAD(&jobs, link);
		job->done(job, job->done_arg);
	}
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	uint64_t count;

	if (read(fd, &count, sizeof(count)) == sizeof(count))
		run_done_callbacks(arg);
}

/* ---- a batch --------------------------------------------------------------- */

#define BATCH_BLOCKED_MAX 64

/* Where a run's transactional handlers started in this batch, to undo
 * them in memory if the transaction fails. */
struct tx_mark {
	struct run *run;
	size_t from;		/* run->next before this batch */
};

/* One transaction being filled: the deliveries and runs in it, in
 * order. */
struct batch {
	struct job_queue jobs;
	struct run_queue runs;
	size_t size;		/* deliveries and runs */
	struct tx_mark *marks;
	size_t n_marks, cap_marks;
	int64_t now;
	int rc;			/* the first failure; the rest only waits */
	/* Keys of this batch's new notifications not finished in it: a
	 * later one with such a key waits its turn in dispatch. */
	char *blocked[BATCH_BLOCKED_MAX];
	size_t n_blocked;
	bool blocked_full;	/* no more room: none runs in the batch */
};

/* Undo what a failed transaction did to the runs in memory: the
 * transactional handlers it ran are to run again, their results unsaid,
 * and the outcomes it wrote are to be written again. */
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

/* Handler @p h's outcome of @p run, written once. */
static int
record_outcome(struct inbox *ib, const struct run *run,
	       struct run_handler *h, int64_t now)
{
	int rc = whr_store_record_outcome(ib->store, run->w->id,
					  h->entry->name, h->result,
					  h->reason, now);

	if (rc >= 0)
		h->recorded = true;
	return rc;
}

/* Run a run's consecutive transactional handlers, each in a savepoint
 * that is undone unless it says done. */
static int
run_transactional(struct inbox *ib, struct run *run, int64_t now)
{
	struct whr_tx *tx = whr_store_tx(ib->store);

	while (run_has_next(run) && run_next_is_transactional(run)) {
		struct run_handler *h = &run->h[run->next];
		int rc;

		rc = whr_store_handler_begin(ib->store);
		if (rc < 0)
			return rc;
		run_call_next(run, tx, ib->dc.metrics);
		rc = whr_store_handler_end(ib->store, h->entry->name,
					   h->result == WHR_DONE);
		if (rc == -EAGAIN) {
			/* A statement of its failed, which undid all its
			 * writes (PostgreSQL): never done without them. */
			h->result = WHR_RETRY;
			free(h->reason);
			h->reason = strdup(whr_store_error(ib->store));
			rc = 0;
		}
		if (rc < 0)
			return rc;
		/* Its done mark in the same transaction as its writes. */
		rc = record_outcome(ib, run, h, now);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A run that had every handler: its outcomes and new state. */
static int
record_final(struct inbox *ib, struct run *run, int64_t now)
{
	const char *error;
	size_t i;
	int rc;

	for (i = 0; i < run->n; i++) {
		struct run_handler *h = &run->h[i];

		if (!h->ran || h->recorded)
			continue;
		rc = record_outcome(ib, run, h, now);
		if (rc < 0)
			return rc;
	}
	run->w->state = dispatch_outcome(ib->dispatch, run, now,
					 &run->w->next_at, &error);
	return whr_store_settle(ib->store, run->w->id, run->w->state,
				run->w->next_at, error, now);
}

/* A run with no handler left: record its outcomes and its new state. */
static int
finish_if_done(struct inbox *ib, struct run *run, int64_t now)
{
	return run_has_next(run) ? 0 : record_final(ib, run, now);
}

static void
fail_jobs(struct job_queue *jobs, const char *why)
{
	struct ingest_job *job;

	STAILQ_FOREACH(job, jobs, link) {
		job->result = INGEST_FAILED;
		snprintf(job->error, sizeof(job->error), "%.150s", why);
	}
}

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
	STAILQ_INIT(&b->jobs);
	STAILQ_INIT(&b->runs);
	b->now = now_realtime_us();
	if (ib->store == NULL) {
		b->rc = -ENODEV;
		return;
	}
	b->rc = whr_store_sync_commits(ib->store, answered);
	if (b->rc == 0)
		b->rc = whr_store_begin(ib->store);
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
 * keys is open, in dispatch, in the store or earlier in this batch. */
static bool
may_run_in_delivery(struct inbox *ib, struct batch *b,
		    const struct ingest_notification *n)
{
	/* Deferred outcomes are older work whose keys may be free already.
	 * On a shared store, another replica may hold older work of the
	 * keys: the claims' rule decides. */
	if (b->rc != 0 || !ib->any_transactional || ib->shared ||
	    !STAILQ_EMPTY(&ib->deferred))
		return false;
	return !batch_blocks(b, n->keys, n->n_keys) &&
	       dispatch_may_run_now(ib->dispatch, n->keys, n->n_keys);
}

/* A new delivery's notifications: each whose first handlers are
 * transactional runs them now. The rest of a run (and a run that could
 * not start) goes to dispatch after the commit. */
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
		run = run_from_delivery(ib->handlers, d, i, n->keys,
					n->n_keys);
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
drop_delivery_runs(struct job_queue *jobs)
{
	struct ingest_job *job;
	size_t i;

	STAILQ_FOREACH(job, jobs, link) {
		for (i = 0; i < job->d.n_notifications; i++) {
			run_free(job->d.notifications[i].run);
			job->d.notifications[i].run = NULL;
		}
	}
}

/* On a shared store: whether @p run's claim is still this replica's
 * (and stays so until the commit). A run another replica took over
 * when its lease ran out is lost: nothing of it is written. */
static bool
own(struct inbox *ib, struct batch *b, struct run *run)
{
	int rc = whr_store_own(ib->store, run->w->id);

	if (rc == -ESTALE) {
		whr_log(WHR_LOG_WARN, "%s: its outcome is not written (the "
			"other replica's run counts)",
			whr_store_error(ib->store));
		run->lost = true;
		return false;
	}
	b->rc = rc;
	return rc == 0;
}

/* Write deliveries and settled runs into the open transaction. */
static void
batch_add(struct inbox *ib, struct batch *b, struct job_queue *jobs,
	  struct run_queue *runs)
{
	struct ingest_job *job;
	struct run *run;

	while ((job = STAILQ_FIRST(jobs)) != NULL) {
		STAILQ_REMOVE_HEAD(jobs, link);
		STAILQ_INSERT_TAIL(&b->jobs, job, link);
		b->size++;
		if (b->rc == 0)
			b->rc = whr_store_ingest(ib->store, &job->d);
		if (b->rc == 0 && !job->d.duplicate)
			run_in_delivery(ib, b, &job->d);
	}
	while ((run = STAILQ_FIRST(runs)) != NULL) {
		STAILQ_REMOVE_HEAD(runs, link);
		STAILQ_INSERT_TAIL(&b->runs, run, link);
		b->size++;
		run->lost = false;
		/* A transactional handler is to run: not on work another
		 * replica took over. (The rest of a run is written only
		 * where the notification is still this replica's, by the
		 * store itself.) */
		if (b->rc == 0 && ib->shared && run_has_next(run) &&
		    run_next_is_transactional(run) && !own(ib, b, run))
			continue;
		if (b->rc == 0)
			b->rc = batch_mark(b, run);
		if (b->rc == 0)
			b->rc = run_transactional(ib, run, b->now);
		if (b->rc == 0)
			b->rc = finish_if_done(ib, run, b->now);
	}
}

/* The open and dead counts after @p run's notification was settled in
 * this commit (new work was counted open). */
static void
count_settled(struct inbox *ib, const struct run *run)
{
	if (run_has_next((struct run *)run) || run->w->state == WORK_RETRYING)
		return;
	ib->open--;
	if (run->w->state == WORK_DEAD)
		ib->dead++;
}

/* A batch is on disk: answer its deliveries, give their new work to
 * dispatch, and settle the runs it recorded. */
static void
after_commit(struct inbox *ib, struct batch *b)
{
	struct ingest_job *job;
	struct run *run;
	size_t i;

	set_health(ib, true, NULL);
	STAILQ_FOREACH(job, &b->jobs, link) {
		job->result = job->d.duplicate ? INGEST_DUPLICATE
					       : INGEST_STORED;
		for (i = 0; !job->d.duplicate &&
			    i < job->d.n_notifications; i++) {
			struct ingest_notification *n =
				&job->d.notifications[i];

			/* Shared: the work is claimed, by this replica or
			 * another, or leased to this one as it was stored. */
			if (ib->shared) {
				if (n->leased)
					dispatch_take_leased(ib->dispatch,
							     &job->d, i);
				continue;
			}
			ib->open++;
			if (n->run != NULL)
				count_settled(ib, n->run);
			dispatch_offer(ib->dispatch, &job->d, i, n->run);
			n->run = NULL;
		}
	}
	post_done(ib, &b->jobs);
	while ((run = STAILQ_FIRST(&b->runs)) != NULL) {
		STAILQ_REMOVE_HEAD(&b->runs, link);
		count_settled(ib, run);
		dispatch_settled(ib->dispatch, run, b->now);
	}
}

/* Commit, durably. */
static void
batch_commit(struct inbox *ib, struct batch *b)
{
	int64_t start = now_monotonic_us();

	b->rc = whr_store_commit(ib->store);
	if (b->rc == 0)
		metrics_commit(ib->dc.metrics, b->size,
			       now_monotonic_us() - start);
}

/* Undo a failed transaction in memory: its transactional handlers are to
 * run again, the runs begun in its deliveries are dropped. */
static void
batch_undo(struct batch *b)
{
	undo_transactional(b->marks, b->n_marks);
	free(b->marks);
	b->marks = NULL;
	b->n_marks = b->cap_marks = 0;
	drop_delivery_runs(&b->jobs);
}

/* Answer a committed batch; or fail it whole. */
static void
batch_finish(struct inbox *ib, struct batch *b)
{
	char closed[sizeof(ib->why)];
	const char *why;

	if (b->rc == 0) {
		free(b->marks);
		after_commit(ib, b);
		return;
	}
	if (b->rc == -ENODEV) {
		/* The inbox is not open: say why it could not be. */
		pthread_mutex_lock(&ib->lock);
		memcpy(closed, ib->why, sizeof(closed));
		pthread_mutex_unlock(&ib->lock);
		why = closed;
	} else {
		whr_store_rollback(ib->store);
		why = b->rc == -ENOMEM ? "out of memory"
				       : whr_store_error(ib->store);
		set_health(ib, false, why);
	}
	batch_undo(b);
	fail_jobs(&b->jobs, why);
	post_done(ib, &b->jobs);
	/* Outcomes a failed batch could not write wait, in order. */
	STAILQ_CONCAT(&ib->deferred, &b->runs);
}

/* One transaction. The database may break it off for a deadlock or a
 * serialization failure with another replica (-EDEADLK): then it is
 * rolled back and tried again at once, a few times, before its
 * deliveries are answered 503. @p claim: on a shared store, it claims
 * the work eligible as it commits too (dispatch_claim_at_commit()); a
 * transaction with a claim that fails for any reason is tried again at
 * once without it, so that no claim (the slowest statement, with a
 * backlog) ever costs deliveries their 200. */
static void
batch_tries(struct inbox *ib, struct job_queue *jobs, struct run_queue *runs,
	    bool claim)
{
	struct batch b;
	int tries = 1;
	int claimed = 0;

	for (;;) {
		batch_start(ib, &b, !STAILQ_EMPTY(jobs));
		batch_add(ib, &b, jobs, runs);
		if (b.rc == 0 && claim) {
			claimed = dispatch_claim_at_commit(ib->dispatch,
							   ib->store, &b.runs);
			b.rc = claimed < 0 ? claimed : 0;
		}
		if (b.rc == 0)
			batch_commit(ib, &b);
		if (b.rc == 0 || b.rc == -ENODEV)
			break;
		if (claimed != 0) {
			dispatch_take_claimed(ib->dispatch, ib->store, false);
			claim = false;
			claimed = 0;
		} else if (b.rc != -EDEADLK || tries++ == BATCH_TRIES)
			break;
		whr_log(WHR_LOG_DEBUG, "batch tried again%s: %s",
			claim ? "" : " without its claim",
			whr_store_error(ib->store));
		whr_store_rollback(ib->store);
		batch_undo(&b);
		STAILQ_CONCAT(jobs, &b.jobs);
		STAILQ_CONCAT(runs, &b.runs);
	}
	/* The commit's work (new, leased, claimed, next of its keys) goes
	 * to the workers at once, after the deliveries' answers. */
	dispatch_hold_wakes(ib->dispatch);
	batch_finish(ib, &b);
	if (claimed > 0)
		dispatch_take_claimed(ib->dispatch, ib->store, b.rc == 0);
	dispatch_release_wakes(ib->dispatch);
}

/* On a shared store, a run with transactional handlers to run commits
 * in a transaction of its own: its locks on rows other replicas write
 * too (the tracker's courses and learners) are held for one run, and
 * taken in the order the handler takes them, never in the order a batch
 * happened to hold runs in, which another replica's batch could hold
 * the other way round (a deadlock). The rest goes in one transaction. */
static void
batch(struct inbox *ib, struct job_queue *jobs, struct run_queue *runs)
{
	struct run_queue alone = STAILQ_HEAD_INITIALIZER(alone);
	struct run_queue rest = STAILQ_HEAD_INITIALIZER(rest);
	struct run *run;

	if (!ib->shared) {
		batch_tries(ib, jobs, runs, false);
		return;
	}
	while ((run = STAILQ_FIRST(runs)) != NULL) {
		STAILQ_REMOVE_HEAD(runs, link);
		if (run_has_next(run) && run_next_is_transactional(run))
			STAILQ_INSERT_TAIL(&alone, run, link);
		else
			STAILQ_INSERT_TAIL(&rest, run, link);
	}
	/* The claim goes in the commit that stores deliveries, synced
	 * anyway, when no transactional run commits after it (and may
	 * finish work whose keys' next is then eligible): else the refill
	 * claims after the round, as after a round of outcomes only, whose
	 * commit need not wait for the disk. */
	if (!STAILQ_EMPTY(jobs) || !STAILQ_EMPTY(&rest))
		batch_tries(ib, jobs, &rest,
			    !STAILQ_EMPTY(jobs) && STAILQ_EMPTY(&alone));
	while ((run = STAILQ_FIRST(&alone)) != NULL) {
		struct run_queue one = STAILQ_HEAD_INITIALIZER(one);
		struct job_queue none = STAILQ_HEAD_INITIALIZER(none);

		STAILQ_REMOVE_HEAD(&alone, link);
		STAILQ_INSERT_TAIL(&one, run, link);
		/* After a failure, the rest wait behind it, in order. */
		if (!STAILQ_EMPTY(&ib->deferred))
			STAILQ_CONCAT(&ib->deferred, &one);
		else
			batch_tries(ib, &none, &one, false);
	}
}

/* ---- periodic work ---------------------------------------------------------- */

static void
purge(struct inbox *ib, int64_t now)
{
	int n;

	/* A short retention (tests, small disks) is purged as often. */
	if (now - ib->last_purge_us < PURGE_EVERY_US &&
	    now - ib->last_purge_us < ib->c.retain_us)
		return;
	ib->last_purge_us = now;
	if (whr_store_begin(ib->store) < 0)
		return;
	n = whr_store_purge(ib->store, now - ib->c.retain_us, PURGE_BATCH);
	if (n < 0 || whr_store_commit(ib->store) < 0) {
		whr_store_rollback(ib->store);
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
	if (whr_store_probe(ib->store) == 0)
		set_health(ib, true, NULL);
	else
		set_health(ib, false, whr_store_error(ib->store));
}

/* Outcomes a failed batch could not write: tried again once a second,
 * in a batch of their own, so that if they keep failing new deliveries
 * do not fail with them. */
static void
retry_deferred(struct inbox *ib)
{
	struct run_queue deferred = STAILQ_HEAD_INITIALIZER(deferred);
	struct job_queue none = STAILQ_HEAD_INITIALIZER(none);

	STAILQ_CONCAT(&deferred, &ib->deferred);
	if (!STAILQ_EMPTY(&deferred))
		batch(ib, &none, &deferred);
}

static int open_store(struct inbox *ib);

/* The gauges of /metrics: open and dead notifications (counted anew when
 * another process changed the store), and the oldest open one's age. On
 * a shared store the other replicas change them all the time: open work
 * and the oldest are read every second (as the store last counted them),
 * dead work is counted (a scan of every notification) a minute apart or
 * more and this
 * replica's own followed in between. */
static void
update_gauges(struct inbox *ib, bool changed)
{
	struct store_work *w = NULL;
	struct store_gauges g;
	int64_t oldest_at = 0;
	int64_t now = now_monotonic_us();
	int64_t id;

	if (ib->dc.metrics == NULL)
		return;
	if (changed || !ib->counted ||
	    (ib->shared && now - ib->counted_at >= RECOUNT_SHARED_US &&
	     now >= ib->recount_at)) {
		struct store_stats st;

		if (whr_store_stats(ib->store, &st, NULL, NULL) == 0) {
			ib->open = st.notifications.pending +
				   st.notifications.retrying;
			ib->dead = st.notifications.dead;
			ib->counted = true;
			ib->counted_at = now;
		}
		ib->recount_at = now + COUNT_COST_FACTOR *
					       (now_monotonic_us() - now);
	}
	if (ib->shared) {
		if (whr_store_gauges(ib->store, &g) == 0) {
			ib->open = g.open;
			oldest_at = g.oldest_open_at;
		}
	} else {
		id = dispatch_oldest(ib->dispatch);
		if (id > 0 && whr_store_load(ib->store, id, &w) == 0) {
			oldest_at = w->received_at;
			store_work_free(w);
		}
	}
	metrics_set_inbox(ib->dc.metrics, ib->open, ib->dead, oldest_at);
}

static void
tick(struct inbox *ib)
{
	int64_t now = now_realtime_us();
	int64_t version;

	ib->last_tick_us = now_monotonic_us();
	if (ib->store == NULL) {
		if (open_store(ib) < 0)
			return;
		whr_log(WHR_LOG_INFO, "inbox %s opened: %lld notification(s) to handle",
			whr_store_name(ib->store),
			(long long)dispatch_count(ib->dispatch) +
				dispatch_waiting(ib->dispatch));
		set_health(ib, true, NULL);
	}
	dispatch_watch(ib->dispatch);
	/* Outcomes the store could not take: try them again. */
	if (!STAILQ_EMPTY(&ib->deferred))
		retry_deferred(ib);
	else if (!inbox_ready(ib, NULL, 0))
		probe(ib);
	if (ib->shared) {
		/* Keep this replica's claims, and claim what became due:
		 * with nothing else to do, this is where a database gone
		 * away is noticed (/readyz). */
		if (dispatch_pick_up(ib->dispatch, ib->store, false) < 0 ||
		    dispatch_refill(ib->dispatch, ib->store) < 0)
			set_health(ib, false, whr_store_error(ib->store));
		update_gauges(ib, false);
		purge(ib, now);
		return;
	}
	version = whr_store_data_version(ib->store);
	dispatch_pick_up(ib->dispatch, ib->store, version != ib->data_version);
	update_gauges(ib, version != ib->data_version);
	ib->data_version = version;
	dispatch_refill(ib->dispatch, ib->store);
	purge(ib, now);
}

static void *
store_main(void *arg)
{
	struct inbox *ib = arg;

	thread_background();

	for (;;) {
		struct job_queue jobs = STAILQ_HEAD_INITIALIZER(jobs);
		struct run_queue runs = STAILQ_HEAD_INITIALIZER(runs);
		/* A claim put off: its time wakes this thread too. */
		int64_t due = ib->shared && ib->store != NULL
			? dispatch_claim_due(ib->dispatch) : 0;
		bool stopping, work, claim;

		pthread_mutex_lock(&ib->lock);
		while (STAILQ_EMPTY(&ib->in) && STAILQ_EMPTY(&ib->settled) &&
		       !ib->stopping && !ib->claim_wanted &&
		       now_monotonic_us() - ib->last_tick_us < TICK_US &&
		       (due == 0 || now_monotonic_us() < due)) {
			int64_t left = due - now_monotonic_us();
			struct timespec ts = monotonic_timespec(
				now_monotonic_us() +
				(due != 0 && left < TICK_US ? left : TICK_US));

			pthread_cond_timedwait(&ib->cond, &ib->lock, &ts);
		}
		STAILQ_CONCAT(&jobs, &ib->in);
		STAILQ_CONCAT(&runs, &ib->settled);
		stopping = ib->stopping;
		claim = ib->claim_wanted ||
			(due != 0 && now_monotonic_us() >= due);
		ib->claim_wanted = false;
		pthread_mutex_unlock(&ib->lock);

		/* Newer outcomes wait behind those a failed batch could
		 * not write, so that none is committed ahead of an older
		 * one (a crash in between would run the older again after
		 * the newer). Deliveries do not wait. */
		if (!STAILQ_EMPTY(&ib->deferred))
			STAILQ_CONCAT(&ib->deferred, &runs);
		work = !STAILQ_EMPTY(&jobs) || !STAILQ_EMPTY(&runs);
		/* Group commit: what arrived while the last commit was being
		 * synced goes in the next one, all at once. */
		/* After a commit, work may be eligible (a shared store:
		 * claimed, unless the commit claimed it; SQLite: loaded
		 * while behind); and when another replica said so, or a
		 * claim put off is due. */
		if (work || (claim && ib->store != NULL && !stopping)) {
			if (work)
				batch(ib, &jobs, &runs);
			dispatch_refill(ib->dispatch, ib->store);
		}
		if (now_monotonic_us() - ib->last_tick_us >= TICK_US)
			tick(ib);
		if (stopping && !work)
			break;
	}
	/* Outcomes kept back by a failed batch: one last try. */
	retry_deferred(ib);
	/* The last outcomes may have been committed without a sync. */
	if (ib->store != NULL && whr_store_probe(ib->store) < 0)
		whr_log(WHR_LOG_WARN, "inbox: cannot sync the last outcomes: %s",
			whr_store_error(ib->store));
	/* Runs whose outcome could not be written are done again at the
	 * next start: drop them. */
	while (!STAILQ_EMPTY(&ib->deferred)) {
		struct run *run = STAILQ_FIRST(&ib->deferred);

		STAILQ_REMOVE_HEAD(&ib->deferred, link);
		run_free(run);
	}
	return NULL;
}

/* ---- opening the store ---------------------------------------------------- */

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

/* Call one handler's table setups, guarded as its calls are: the new
 * API's for this database, and SQLite's first one. *@p ended: a failure
 * of the store's (its error says why), not the handler's own. */
static int
setup_one(struct inbox *ib, const struct handler_entry *h, bool *ended)
{
	struct whr_tx *tx = whr_store_tx(ib->store);
	whr_tx_setup_fn setup = h->tx_setup[whr_tx_db(tx)];
	int rc;
	int end;

	*ended = false;
	if (setup == NULL && h->db_setup == NULL)
		return 0;
	rc = whr_store_handler_begin(ib->store);
	if (rc < 0) {
		*ended = true;
		return rc;
	}
	if (h->db_setup != NULL && whr_tx_db(tx) == WHR_DB_SQLITE)
		rc = h->db_setup(whr_tx_native(tx), h->userdata);
	if (rc == 0 && setup != NULL)
		rc = setup(tx, h->userdata);
	end = whr_store_handler_end(ib->store, h->name, rc == 0);
	if (rc == 0 && end < 0) {
		*ended = true;
		return end;
	}
	return rc;
}

/* Run each transactional handler's table setup. A failure is told once:
 * while it lasts the inbox tries again every second, and those attempts
 * keep that handler's own log lines to themselves. */
static int
setup_handler_tables(struct inbox *ib, char *why, size_t why_size)
{
	size_t i;
	int rc;

	rc = handler_registry_check_db(ib->handlers,
				       whr_tx_db(whr_store_tx(ib->store)), why,
				       why_size);
	if (rc < 0)
		return rc;
	rc = whr_store_begin(ib->store);
	if (rc < 0)
		goto fail;
	for (i = 0; i < ib->handlers->n; i++) {
		const struct handler_entry *h = &ib->handlers->entries[i];
		bool ended;

		log_quiet(ib->setup_failing == i + 1);
		rc = setup_one(ib, h, &ended);
		log_quiet(false);
		if (rc < 0) {
			whr_store_rollback(ib->store);
			snprintf(why, why_size,
				 "handler %s could not prepare its tables "
				 "(inbox %s)%s%s", h->name,
				 whr_store_name(ib->store), ended ? ": " : "",
				 ended ? whr_store_error(ib->store) : "");
			ib->setup_failing = i + 1;
			return rc;
		}
	}
	ib->setup_failing = 0;
	rc = whr_store_commit(ib->store);
	if (rc == 0)
		return 0;
fail:
	snprintf(why, why_size, "inbox %s: %s", whr_store_name(ib->store),
		 whr_store_error(ib->store));
	return rc;
}

/* The inbox cannot be opened now: say why once, not at every attempt,
 * and answer 503 (and /readyz) with the reason until it opens. */
static void
not_open(struct inbox *ib, const char *why)
{
	if (strcmp(why, ib->open_error) != 0) {
		whr_log(WHR_LOG_ERROR, "%s", why);
		snprintf(ib->open_error, sizeof(ib->open_error), "%s", why);
	}
	set_health(ib, false, why);
}

/* Two servers on one folder would both run its work, each in its own
 * order. The lock is the folder's (a flock(), which the kernel drops
 * with the process, kill -9 included); whr inbox takes none. -EBUSY when
 * another process holds it. */
static int
lock_folder(struct inbox *ib, char *why, size_t why_size)
{
	int fd;

	/* A database: replicas share it, each taking work by claims. */
	if (ib->folder_fd >= 0 || whr_store_location_is_database(ib->location))
		return 0;
	fd = open(ib->location, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* not there yet: the store makes it */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;

		close(fd);
		if (err != EWOULDBLOCK)
			return 0;	/* no locks here: go on without */
		snprintf(why, why_size,
			 "inbox %s: another whr serve uses this data folder; "
			 "stop it first, or give another --data-dir",
			 ib->location);
		return -EBUSY;
	}
	ib->folder_fd = fd;
	return 0;
}

/* The store's listener, on its own thread: another replica committed
 * work that this one may claim. */
static void
wake_to_claim(void *arg)
{
	struct inbox *ib = arg;

	pthread_mutex_lock(&ib->lock);
	ib->claim_wanted = true;
	pthread_cond_signal(&ib->cond);
	pthread_mutex_unlock(&ib->lock);
}

/* The store's listener, on its own thread: the work whose leases it
 * renews, so that a transactional handler holding the store thread for
 * longer than a lease does not let them run out. */
static size_t
held_work(void *arg, int64_t *ids, size_t max)
{
	struct inbox *ib = arg;

	return dispatch_held(ib->dispatch, ids, max);
}

/* Open the store and hand its open work to dispatch. -EPROTO when it can
 * never work (a newer schema, a handler's tables newer than it knows),
 * -EBUSY when another whr serve has the folder; another negative errno
 * when it may work later (a read-only or full disk). */
static int
open_store(struct inbox *ib)
{
	char why[512];
	struct whr_store *s;
	int rc;

	/* Before the store is opened (and maybe migrated); once more after,
	 * when that made the folder. */
	rc = lock_folder(ib, why, sizeof(why));
	if (rc < 0) {
		ib->setup_failing = 0;		/* it did not run */
		not_open(ib, why);
		return rc;
	}
	s = whr_store_open(ib->location, STORE_SERVER, why, sizeof(why));
	if (s == NULL) {
		/* A newer schema, or files whr will not use: never works. */
		rc = errno == EPROTO || errno == EPERM ? -EPROTO : -EIO;
		ib->setup_failing = 0;
		not_open(ib, why);
		return rc;
	}
	rc = lock_folder(ib, why, sizeof(why));
	if (rc < 0) {
		whr_store_close(s);
		not_open(ib, why);
		return rc;
	}
	ib->store = s;
	ib->shared = whr_store_shared(s);
	/* Ingest's answers are read after the commit (after_commit()). */
	whr_store_pipeline(s, true);
	if (!ib->shared)
		sync_folder(ib->location);
	rc = setup_handler_tables(ib, why, sizeof(why));
	if (rc == 0) {
		ib->data_version = whr_store_data_version(s);
		rc = dispatch_load(ib->dispatch, s);
		if (rc < 0)
			snprintf(why, sizeof(why),
				 "inbox %s: cannot read pending work: %s",
				 whr_store_name(s),
				 rc == -ENOMEM ? "out of memory"
					       : whr_store_error(s));
	}
	/* Told when another replica made work. Without it (no thread,
	 * say), the claims every second still find it. */
	if (rc == 0 && ib->shared &&
	    (whr_store_listen(s, wake_to_claim, ib) < 0 ||
	     whr_store_keep_leases(s, held_work, ib, DISPATCH_LEASE_US) < 0))
		whr_log(WHR_LOG_WARN, "inbox %s: cannot listen for other "
			"replicas' work: claiming every second only, leases "
			"renewed by the inbox's thread only",
			whr_store_name(s));
	if (rc < 0) {
		ib->store = NULL;
		whr_store_close(s);
		not_open(ib, why);
		return rc;
	}
	ib->open_error[0] = '\0';
	ib->counted = false;
	return 0;
}

/* ---- start and stop ----------------------------------------------------------- */

struct inbox *
inbox_start(const struct inbox_config *config,
	    const struct dispatch_config *dispatch,
	    const struct handler_registry *handlers, struct event_base *base,
	    int *error)
{
	struct inbox *ib = calloc(1, sizeof(*ib));
	int rc = -ENOMEM;

	*error = -ENOMEM;
	if (ib == NULL)
		return NULL;
	ib->c = *config;
	ib->dc = *dispatch;
	ib->handlers = handlers;
	ib->any_transactional = handler_registry_any_transactional(handlers);
	ib->done_fd = -1;
	ib->folder_fd = -1;
	ib->ready = true;
	STAILQ_INIT(&ib->in);
	STAILQ_INIT(&ib->settled);
	STAILQ_INIT(&ib->done);
	STAILQ_INIT(&ib->deferred);
	pthread_mutex_init(&ib->lock, NULL);
	if (cond_init_monotonic(&ib->cond) != 0)
		goto err;
	ib->location = strdup(config->location);
	if (ib->location == NULL)
		goto err;
	ib->c.location = ib->dc.location = ib->location;

	ib->dispatch = dispatch_start(&ib->dc, handlers, settle, ib);
	if (ib->dispatch == NULL)
		goto err;
	/* A disk that cannot be written now may be later (a read-only or
	 * full folder, a mount not there yet, a database away): run, answer
	 * 503, and try again every second. A newer schema never works, a
	 * handler that cannot run on this database is a configuration
	 * error, and a folder in use is most likely a mistake (a second
	 * start): stop. */
	rc = open_store(ib);
	if (rc == -EPROTO || rc == -EBUSY || rc == -EINVAL)
		goto err;
	rc = -ENOMEM;
	ib->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ib->done_fd < 0)
		goto err;
	ib->done_event = event_new(base, ib->done_fd, EV_READ | EV_PERSIST,
				   on_done, ib);
	if (ib->done_event == NULL || event_add(ib->done_event, NULL) < 0)
		goto err;
	ib->last_tick_us = now_monotonic_us();
	if (pthread_create(&ib->thread, NULL, store_main, ib) != 0)
		goto err;
	ib->thread_started = true;
	*error = 0;
	if (ib->store != NULL)
		whr_log(WHR_LOG_INFO,
			"inbox %s: %lld notification(s) to handle, %u worker(s)",
			whr_store_name(ib->store),
			(long long)dispatch_count(ib->dispatch) +
				dispatch_waiting(ib->dispatch),
			ib->dc.workers);
	return ib;
err:
	/* No grace limit: the workers may have started a handler already,
	 * and inbox_start() has no way to say that one is left running. A
	 * handler that never returns blocks here; only a failure after the
	 * workers started gets here with them running. */
	*error = rc;
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
	/* The store thread runs until the workers are gone: it commits their
	 * last outcomes, and its tick watches them. */
	if (ib->dispatch != NULL)
		workers_gone = dispatch_stop(ib->dispatch, grace_us, running,
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
	/* A shared store: the work this replica claimed and did not run is
	 * the others' at once, not when its leases run out. Not while a
	 * handler is left running. */
	if (ib->store != NULL && ib->shared && workers_gone)
		whr_store_renew(ib->store, NULL, 0, 0);
	whr_store_close(ib->store);
	ib->store = NULL;
	if (ib->folder_fd >= 0)
		close(ib->folder_fd);
	ib->folder_fd = -1;
	if (!workers_gone) {
		/* A worker still runs a handler: it may yet take our locks
		 * (a run it handed back just before it was given up on),
		 * dispatch and the registry. Keep them, and the inbox with
		 * them, for as long as the process lives. */
		return -EBUSY;
	}
	/* Runs the store thread never took: it did not start, or a worker
	 * settled after it ended. Their work runs again at the next
	 * start. */
	STAILQ_CONCAT(&ib->deferred, &ib->settled);
	while (!STAILQ_EMPTY(&ib->deferred)) {
		struct run *run = STAILQ_FIRST(&ib->deferred);

		STAILQ_REMOVE_HEAD(&ib->deferred, link);
		run_free(run);
	}
	dispatch_free(ib->dispatch);
	pthread_cond_destroy(&ib->cond);
	pthread_mutex_destroy(&ib->lock);
	free(ib->location);
	free(ib);
	return 0;
}
