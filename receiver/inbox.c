/*
 * The durable inbox (see inbox-private.h): the store thread and its
 * hand-offs. One transaction per batch holds new deliveries, the outcomes
 * of finished runs and the work of transactional handlers, and one sync
 * makes all of it durable (group commit). Only then does the loop answer
 * 200 and the scheduler see the new work.
 */
#include "inbox-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
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
#define CHECKPOINT_EVERY_US 200000
#define CHECKPOINT_WAL_BYTES (64 * 1024 * 1024)

struct inbox {
	struct inbox_config c;
	char *data_dir;
	const struct handler_registry *handlers;
	struct store *store;		/* the store thread's */
	struct sched *sched;
	struct workers *workers;

	pthread_t thread;
	bool thread_started;
	pthread_t checkpointer;
	bool checkpointer_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_cond_t checkpoint_cond;
	struct ingest_job *in_head, *in_tail;	/* from the loop */
	struct run *runs_head, *runs_tail;	/* from the workers */
	bool stopping;

	/* Answers for the loop: the store thread queues, the eventfd
	 * wakes the loop, which runs the jobs' done callbacks. */
	int done_fd;
	struct event *done_event;
	struct ingest_job *done_head, *done_tail;

	/* Committed batches waiting for the WAL sync (the syncer's). */
	struct committed *sync_head, *sync_tail;
	pthread_cond_t sync_cond;
	pthread_t syncer;
	bool syncer_started;
	bool syncer_stopping;

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
};

/* A batch committed but not yet synced: its answers and hand-offs wait
 * for the sync (syncer_main). */
struct committed {
	struct committed *next;
	struct ingest_job *jobs;
	struct run *runs;
	int64_t now;
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

/* ---- after the sync ------------------------------------------------------ */

static void schedule_stored(struct inbox *ib, struct ingest_job *job);
static void fail_jobs(struct ingest_job *jobs, const char *why);
static int open_store(struct inbox *ib);

/* A committed batch is on disk (@p rc 0): answer its deliveries, give
 * the new work to the workers, and settle the runs it recorded. */
static void
after_sync(struct inbox *ib, struct committed *c, int rc)
{
	struct ingest_job *job;
	struct run *runs = c->runs;

	if (rc < 0) {
		char why[96];

		/* Committed, but perhaps not durable: no 200. The sender
		 * sends it again; it is then a duplicate, and acknowledged. */
		snprintf(why, sizeof(why), "cannot sync the inbox: %s",
			 strerror(-rc));
		set_health(ib, false, why);
		fail_jobs(c->jobs, why);
	} else {
		set_health(ib, true, NULL);
		for (job = c->jobs; job != NULL; job = job->next) {
			job->result = job->d.duplicate ? INGEST_DUPLICATE
						       : INGEST_STORED;
			if (!job->d.duplicate)
				schedule_stored(ib, job);
		}
	}
	post_done(ib, c->jobs);
	while (runs != NULL) {
		struct run *next = runs->next_queued;
		int64_t id = runs->w->id;

		if (run_has_next(runs)) {
			/* The next handler is a worker's. */
			sched_requeue(ib->sched, id, c->now, runs);
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

/* Group commit's second half: one sync for every batch committed since
 * the last one, while the store thread writes the next. */
static void *
syncer_main(void *arg)
{
	struct inbox *ib = arg;

	for (;;) {
		struct committed *list;
		int rc;

		pthread_mutex_lock(&ib->lock);
		while (ib->sync_head == NULL && !ib->syncer_stopping)
			pthread_cond_wait(&ib->sync_cond, &ib->lock);
		list = ib->sync_head;
		ib->sync_head = ib->sync_tail = NULL;
		pthread_mutex_unlock(&ib->lock);
		if (list == NULL)
			break;	/* stopping, and nothing left */
		rc = store_sync(ib->store);
		while (list != NULL) {
			struct committed *next = list->next;

			after_sync(ib, list, rc);
			free(list);
			list = next;
		}
	}
	return NULL;
}

/* ---- one batch --------------------------------------------------------- */

/* The fresh work of a stored notification, so that a worker need not
 * read it back from the database. NULL when out of memory: the worker
 * then loads it. */
static struct run *
fresh_run(struct inbox *ib, const struct ingest_delivery *d, size_t i,
	  char **keys, size_t n_keys)
{
	const struct ingest_notification *n = &d->notifications[i];
	struct stored_work *w = calloc(1, sizeof(*w));
	size_t k;

	if (w == NULL)
		return NULL;
	w->id = n->id;
	w->delivery_seq = d->seq;
	w->index = n->index;
	w->count = d->n_notifications;
	w->receiver_id = strdup(d->receiver_id);
	w->delivery_id = d->delivery_id != NULL ? strdup(d->delivery_id)
						: NULL;
	w->action = n->action != NULL ? strdup(n->action) : NULL;
	w->attempt = d->attempt;
	w->received_at = d->received_at;
	w->json_len = n->json_end - n->json_start;
	w->json = xstrndup(d->body + n->json_start, w->json_len);
	if (d->has_properties) {
		w->properties_len = d->properties_end - d->properties_start;
		w->properties = xstrndup(d->body + d->properties_start,
					 w->properties_len);
	}
	w->state = WORK_PENDING;
	w->next_at = d->received_at;
	w->keys = calloc(n_keys, sizeof(*w->keys));
	if (w->keys != NULL) {
		for (k = 0; k < n_keys; k++)
			w->keys[w->n_keys++] = strdup(keys[k]);
	}
	if (w->receiver_id == NULL || w->json == NULL || w->keys == NULL ||
	    (d->delivery_id != NULL && w->delivery_id == NULL) ||
	    (n->action != NULL && w->action == NULL) ||
	    (d->has_properties && w->properties == NULL)) {
		stored_work_free(w);
		return NULL;
	}
	for (k = 0; k < w->n_keys; k++) {
		if (w->keys[k] == NULL) {
			stored_work_free(w);
			return NULL;
		}
	}
	return run_new(ib->handlers, w);
}

static void
schedule_stored(struct inbox *ib, struct ingest_job *job)
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

		/* No learner and course: ordered within the delivery. */
		if (n_keys == 0) {
			snprintf(fallback, sizeof(fallback), "d:%lld",
				 (long long)d->seq);
			keys = &delivery_key;
			n_keys = 1;
		}
		run = fresh_run(ib, d, i, keys, n_keys);
		if (sched_add(ib->sched, n->id, keys, n_keys, d->received_at,
			      run, &taken) < 0 || !taken)
			run_free(run);
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

static void
hand_to_syncer(struct inbox *ib, struct ingest_job *jobs, struct run *runs,
	       int64_t now)
{
	struct committed *c = malloc(sizeof(*c));

	if (c == NULL) {
		/* Sync here, then: slower, not wrong. */
		struct committed local = { .jobs = jobs, .runs = runs,
					   .now = now };

		after_sync(ib, &local, store_sync(ib->store));
		return;
	}
	*c = (struct committed){ .jobs = jobs, .runs = runs, .now = now };
	pthread_mutex_lock(&ib->lock);
	if (ib->sync_tail != NULL)
		ib->sync_tail->next = c;
	else
		ib->sync_head = c;
	ib->sync_tail = c;
	pthread_cond_signal(&ib->sync_cond);
	pthread_mutex_unlock(&ib->lock);
}

static void
batch(struct inbox *ib, struct ingest_job *jobs, struct run *runs)
{
	int64_t now = now_realtime_us();
	struct tx_mark *marks = NULL;
	size_t n_marks = 0;
	struct ingest_job *job;
	const char *why;
	struct run *run;
	size_t n_runs = 0;
	int rc;

	if (ib->store == NULL) {
		char closed[sizeof(ib->why)];

		pthread_mutex_lock(&ib->lock);
		memcpy(closed, ib->why, sizeof(closed));
		pthread_mutex_unlock(&ib->lock);
		fail_jobs(jobs, closed);
		post_done(ib, jobs);
		defer_runs(ib, runs);
		return;
	}
	for (run = runs; run != NULL; run = run->next_queued)
		n_runs++;
	marks = calloc(n_runs ? n_runs : 1, sizeof(*marks));
	if (marks == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = store_begin(ib->store);
	if (rc < 0)
		goto fail;
	for (job = jobs; job != NULL; job = job->next) {
		rc = store_ingest(ib->store, &job->d);
		if (rc < 0)
			goto fail_rollback;
	}
	for (run = runs; run != NULL; run = run->next_queued) {
		marks[n_marks].run = run;
		marks[n_marks++].from = run->next;
		rc = run_transactional(ib, run, now);
		if (rc == 0 && !run_has_next(run)) {
			enum work_state state = WORK_PENDING;
			int64_t next_at = now;

			rc = record_final(ib, run, now, &state, &next_at);
			run->w->state = state;
			run->w->next_at = next_at;
		}
		if (rc < 0)
			goto fail_rollback;
	}
	rc = store_commit(ib->store);
	if (rc < 0)
		goto fail_rollback;
	free(marks);
	hand_to_syncer(ib, jobs, runs, now);
	return;

fail_rollback:
	store_rollback(ib->store);
fail:
	undo_transactional(marks, n_marks);
	free(marks);
	why = rc == -ENOMEM ? "out of memory" : store_error(ib->store);
	set_health(ib, false, why);
	fail_jobs(jobs, why);
	post_done(ib, jobs);
	defer_runs(ib, runs);
}

/* ---- periodic work ----------------------------------------------------- */

static int
add_pending(int64_t id, char **keys, size_t n_keys, int64_t next_at,
	    void *arg)
{
	struct inbox *ib = arg;
	bool taken;

	return sched_add(ib->sched, id, keys, n_keys, next_at, NULL, &taken);
}

/* Another process (whr inbox replay) changed the store: queue any
 * pending work the scheduler does not know yet. */
static void
pick_up_changes(struct inbox *ib)
{
	int64_t version = store_data_version(ib->store);

	if (version == ib->data_version)
		return;
	ib->data_version = version;
	if (store_each_pending(ib->store, add_pending, ib) < 0)
		whr_log(WHR_LOG_WARN, "cannot rescan the inbox: %s",
			store_error(ib->store));
}

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

static void
tick(struct inbox *ib)
{
	int64_t now = now_realtime_us();
	struct run *deferred = ib->deferred;

	ib->last_tick_us = now_monotonic_us();
	if (ib->store == NULL) {
		if (open_store(ib) < 0)
			return;
		whr_log(WHR_LOG_INFO, "inbox %s/%s opened: %zu notification(s) to handle",
			ib->data_dir, STORE_FILE, sched_count(ib->sched));
		set_health(ib, true, NULL);
	}
	workers_watch(ib->workers, ib->c.handler_timeout_us);
	/* Outcomes the store could not take: try them again. */
	ib->deferred = NULL;
	if (deferred != NULL)
		batch(ib, NULL, deferred);
	pick_up_changes(ib);
	purge(ib, now);
}

static void *
store_main(void *arg)
{
	struct inbox *ib = arg;

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

		if (jobs != NULL || runs != NULL)
			batch(ib, jobs, runs);
		if (now_monotonic_us() - ib->last_tick_us >= TICK_US)
			tick(ib);
		if (stopping && jobs == NULL && runs == NULL)
			break;
	}
	/* Runs whose outcome could not be written are done again at the
	 * next start: drop them. */
	while (ib->deferred != NULL) {
		struct run *next = ib->deferred->next_queued;

		run_free(ib->deferred);
		ib->deferred = next;
	}
	return NULL;
}

static int64_t
wal_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* The WAL's frames go into the database file here, off the store thread,
 * so that commits (and so answers) never wait for a checkpoint. */
static void *
checkpoint_main(void *arg)
{
	struct inbox *ib = arg;
	struct store *s = NULL;
	bool stopping = false;
	char why[512];
	char wal[4200];

	snprintf(wal, sizeof(wal), "%s/%s-wal", ib->data_dir, STORE_FILE);
	while (!stopping) {
		int64_t until = now_realtime_us() + CHECKPOINT_EVERY_US;
		struct timespec ts = {
			.tv_sec = (time_t)(until / 1000000),
			.tv_nsec = (long)(until % 1000000) * 1000,
		};

		pthread_mutex_lock(&ib->lock);
		if (!ib->stopping)
			pthread_cond_timedwait(&ib->checkpoint_cond, &ib->lock,
					       &ts);
		stopping = ib->stopping;
		pthread_mutex_unlock(&ib->lock);
		/* A checkpoint syncs the database file, which slows the
		 * writer's own syncs: only once the WAL has grown. */
		if (!stopping && wal_size(wal) < CHECKPOINT_WAL_BYTES)
			continue;
		if (s == NULL)
			s = store_open(ib->data_dir, STORE_WRITER, why,
				       sizeof(why));
		if (s != NULL && store_checkpoint(s) < 0)
			whr_log(WHR_LOG_WARN, "inbox checkpoint: %s",
				store_error(s));
	}
	store_close(s);
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
	rc = store_each_pending(s, add_pending, ib);
	if (rc < 0) {
		whr_log(WHR_LOG_ERROR, "cannot read pending work: %s",
			store_error(s));
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
	ib->handlers = handlers;
	ib->done_fd = -1;
	ib->ready = true;
	ib->rng = (uint64_t)now_realtime_us() | 1;
	pthread_mutex_init(&ib->lock, NULL);
	pthread_cond_init(&ib->cond, NULL);
	pthread_cond_init(&ib->checkpoint_cond, NULL);
	pthread_cond_init(&ib->sync_cond, NULL);
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
	if (pthread_create(&ib->syncer, NULL, syncer_main, ib) != 0)
		goto err;
	ib->syncer_started = true;
	if (pthread_create(&ib->thread, NULL, store_main, ib) != 0)
		goto err;
	ib->thread_started = true;
	if (pthread_create(&ib->checkpointer, NULL, checkpoint_main, ib) != 0)
		goto err;
	ib->checkpointer_started = true;
	if (ib->store != NULL)
		whr_log(WHR_LOG_INFO,
			"inbox %s/%s: %zu notification(s) to handle, %u worker(s)",
			ib->data_dir, STORE_FILE, sched_count(ib->sched),
			ib->c.workers);
	return ib;
err:
	inbox_stop(ib, 0);
	return NULL;
}

void
inbox_stop(struct inbox *ib, int64_t grace_us)
{
	bool workers_gone = true;

	if (ib == NULL)
		return;
	if (ib->sched != NULL)
		sched_close(ib->sched);
	if (ib->workers != NULL)
		workers_gone = workers_stop(ib->workers, grace_us);
	pthread_mutex_lock(&ib->lock);
	ib->stopping = true;
	pthread_cond_signal(&ib->cond);
	pthread_cond_signal(&ib->checkpoint_cond);
	pthread_mutex_unlock(&ib->lock);
	if (ib->thread_started)
		pthread_join(ib->thread, NULL);
	/* The store thread has committed its last batch: sync it. */
	pthread_mutex_lock(&ib->lock);
	ib->syncer_stopping = true;
	pthread_cond_signal(&ib->sync_cond);
	pthread_mutex_unlock(&ib->lock);
	if (ib->syncer_started)
		pthread_join(ib->syncer, NULL);
	if (ib->checkpointer_started)
		pthread_join(ib->checkpointer, NULL);
	/* Answers the loop has not seen yet. */
	run_done_callbacks(ib);
	if (!workers_gone) {
		/* A worker still runs a handler with our scheduler and
		 * registry: leave them allocated. */
		store_close(ib->store);
		return;
	}
	if (ib->done_event != NULL)
		event_free(ib->done_event);
	if (ib->done_fd >= 0)
		close(ib->done_fd);
	sched_free(ib->sched, (void (*)(void *))run_free);
	store_close(ib->store);
	pthread_cond_destroy(&ib->cond);
	pthread_cond_destroy(&ib->checkpoint_cond);
	pthread_cond_destroy(&ib->sync_cond);
	pthread_mutex_destroy(&ib->lock);
	free(ib->data_dir);
	free(ib);
}
