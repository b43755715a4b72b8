/*
 * The durable inbox (see inbox-private.h): the store thread and its
 * hand-offs, periodic work, start and stop (inbox-internal.h says which
 * file does what). One transaction per batch holds new deliveries, the outcomes
 * of finished runs and the work of transactional handlers, and one sync
 * makes all of it durable (group commit): what arrives during a commit
 * goes in the next. Only then does the loop answer 200 and the scheduler
 * see the new work.
 */
#include "inbox-internal.h"

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

#include <sqlite3.h>

#include <event2/event.h>

#include "log.h"
#include "dispatch/run.h"
#include "dispatch/scheduler.h"
#include "util.h"
#include "dispatch/workers.h"

/* ---- small helpers ----------------------------------------------------- */

double
inbox_random01(struct inbox *ib)
{
	/* xorshift64*: jitter needs spread, not secrecy. */
	ib->rng ^= ib->rng >> 12;
	ib->rng ^= ib->rng << 25;
	ib->rng ^= ib->rng >> 27;
	return (double)((ib->rng * 2685821657736338717ULL) >> 11) /
	       9007199254740992.0;
}

void
inbox_set_health(struct inbox *ib, bool ready, const char *why)
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

/* ---- answers to the loop --------------------------------------------- */

void
inbox_post_done(struct inbox *ib, struct ingest_job *jobs)
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
	/* Finished for good (no retry): the next of its keys may go now,
	 * while its outcome is being written. Released under the queue's
	 * lock, so that the next one's outcome queues behind this one's:
	 * outcomes reach the disk in the order a key's runs ran, and a
	 * crash can only run both again, in order. */
	if (!run_has_next(run) && !run_wants_retry(run))
		sched_release(ib->sched, run->w->id);
	pthread_cond_signal(&ib->cond);
	pthread_mutex_unlock(&ib->lock);
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
		inbox_set_health(ib, true, NULL);
	else
		inbox_set_health(ib, false, store_error(ib->store));
}

/* Outcomes a failed batch could not write: tried again once a second,
 * in a batch of their own, so that if they keep failing new deliveries
 * do not fail with them. */
static void
retry_deferred(struct inbox *ib)
{
	struct run *deferred = ib->deferred;

	ib->deferred = NULL;
	if (deferred != NULL)
		inbox_batch(ib, NULL, deferred);
}

static void
tick(struct inbox *ib)
{
	int64_t now = now_realtime_us();

	ib->last_tick_us = now_monotonic_us();
	if (ib->store == NULL) {
		if (inbox_open_store(ib) < 0)
			return;
		whr_log(WHR_LOG_INFO, "inbox %s/%s opened: %lld notification(s) to handle",
			ib->data_dir, STORE_FILE,
			(long long)sched_count(ib->sched) +
				ib->waiting_at_start);
		inbox_set_health(ib, true, NULL);
	}
	workers_watch(ib->workers, ib->c.handler_timeout_us);
	/* Outcomes the store could not take: try them again. */
	if (ib->deferred != NULL)
		retry_deferred(ib);
	else if (!inbox_ready(ib, NULL, 0))
		probe(ib);
	inbox_pick_up_changes(ib);
	inbox_refill(ib);
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

		/* Newer outcomes wait behind those a failed batch could
		 * not write, so that none is committed ahead of an older
		 * one (a crash in between would run the older again after
		 * the newer). Deliveries do not wait. */
		if (ib->deferred != NULL && runs != NULL) {
			inbox_defer_runs(ib, runs);
			runs = NULL;
		}
		/* Group commit: what arrived while the last commit was being
		 * synced goes in the next one, all at once. */
		if (jobs != NULL || runs != NULL) {
			inbox_batch(ib, jobs, runs);
			inbox_refill(ib);
		}
		if (now_monotonic_us() - ib->last_tick_us >= TICK_US)
			tick(ib);
		if (stopping && jobs == NULL && runs == NULL)
			break;
	}
	/* Outcomes kept back by a failed batch: one last try. */
	retry_deferred(ib);
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

/* Run each transactional handler's db_setup, guarded as its calls are
 * (store_handler_begin()). A failure is told once: while it lasts the
 * inbox tries again every second, and those attempts keep that
 * handler's own log lines to themselves. */
static int
setup_handler_tables(struct inbox *ib, char *why, size_t why_size)
{
	size_t i;
	int rc;

	rc = store_begin(ib->store);
	if (rc < 0)
		goto fail;
	for (i = 0; i < ib->handlers->n; i++) {
		const struct handler_entry *h = &ib->handlers->entries[i];
		int ended;

		if (h->db_setup == NULL)
			continue;
		log_quiet(ib->setup_failing == i + 1);
		store_handler_begin(ib->store);
		rc = h->db_setup(store_db(ib->store), h->userdata);
		ended = store_handler_end(ib->store, h->name);
		log_quiet(false);
		if (rc < 0 || ended < 0) {
			store_rollback(ib->store);
			snprintf(why, why_size,
				 "handler %s could not prepare its tables (inbox %s/%s)%s%s",
				 h->name, ib->data_dir, STORE_FILE,
				 ended < 0 ? ": " : "",
				 ended < 0 ? store_error(ib->store) : "");
			ib->setup_failing = i + 1;
			return rc < 0 ? rc : ended;
		}
	}
	ib->setup_failing = 0;
	rc = store_commit(ib->store);
	if (rc == 0)
		return 0;
fail:
	snprintf(why, why_size, "inbox %s/%s: %s", ib->data_dir, STORE_FILE,
		 store_error(ib->store));
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
	inbox_set_health(ib, false, why);
}

/* Two servers on one folder would both run its work, each in its own
 * order. The lock is the folder's (a flock(), which the kernel drops
 * with the process, kill -9 included); whr inbox takes none. -EBUSY when
 * another process holds it. */
static int
lock_folder(struct inbox *ib, char *why, size_t why_size)
{
	int fd;

	if (ib->folder_fd >= 0)
		return 0;
	fd = open(ib->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
			 ib->data_dir);
		return -EBUSY;
	}
	ib->folder_fd = fd;
	return 0;
}

/* Open the database and queue its pending work. -EPROTO when it can
 * never work (a newer schema, a handler's tables newer than it knows),
 * -EBUSY when another whr serve has the folder; another negative errno
 * when it may work later (a read-only or full disk). */
int
inbox_open_store(struct inbox *ib)
{
	char why[512];
	struct store *s;
	int rc;

	/* Before the store is opened (and maybe migrated); once more after,
	 * when that made the folder. */
	rc = lock_folder(ib, why, sizeof(why));
	if (rc < 0) {
		ib->setup_failing = 0;		/* it did not run */
		not_open(ib, why);
		return rc;
	}
	s = store_open(ib->data_dir, STORE_SERVER, why, sizeof(why));
	if (s == NULL) {
		rc = errno == EPROTO ? -EPROTO : -EIO;
		ib->setup_failing = 0;
		not_open(ib, why);
		return rc;
	}
	rc = lock_folder(ib, why, sizeof(why));
	if (rc < 0) {
		store_close(s);
		not_open(ib, why);
		return rc;
	}
	ib->store = s;
	sync_folder(ib->data_dir);
	rc = setup_handler_tables(ib, why, sizeof(why));
	if (rc == 0) {
		ib->data_version = store_data_version(s);
		rc = inbox_load_at_start(ib);
		if (rc < 0)
			snprintf(why, sizeof(why),
				 "inbox %s/%s: cannot read pending work: %s",
				 ib->data_dir, STORE_FILE,
				 rc == -ENOMEM ? "out of memory"
					       : store_error(s));
	}
	if (rc < 0) {
		ib->store = NULL;
		store_close(s);
		not_open(ib, why);
		return rc;
	}
	ib->open_error[0] = '\0';
	return 0;
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
	ib->any_transactional = handler_registry_any_transactional(handlers);
	ib->done_fd = -1;
	ib->folder_fd = -1;
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
	 * again every second. A newer schema never works, and a folder in
	 * use is most likely a mistake (a second start): stop. */
	rc = inbox_open_store(ib);
	if (rc == -EPROTO || rc == -EBUSY)
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
	if (ib->folder_fd >= 0)
		close(ib->folder_fd);
	ib->folder_fd = -1;
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
