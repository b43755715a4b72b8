/*
 * Worker threads (see workers-private.h).
 */
#include "dispatch/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store/store.h"
#include "util.h"

#define TAKE_TIMEOUT_US 1000000
#define LOAD_RETRY_US 1000000
/* After the shutdown timeout, how long a worker that is not inside a
 * handler gets to notice and return (it is taking work, loading it or
 * handing a run back: moments). */
#define STRAGGLER_US 1000000

struct worker {
	struct workers *pool;
	pthread_t thread;
	unsigned number;
	bool started;
	bool finished;		/* the thread returned */
	/* What it is doing, for the handler-timeout report. */
	const char *handler;	/* NULL between handlers */
	int64_t notification;
	int64_t since_us;
	bool reported;
	/* Its run and its reader here rather than on its stack only: a
	 * worker left in a handler at shutdown keeps them reachable, so a
	 * leak checker at exit does not report them. */
	struct run *run;
	struct store *reader;	/* opened when first needed */
};

struct workers {
	struct sched *sched;
	const struct handler_registry *reg;
	char *data_dir;
	void (*hand_back)(struct run *run, void *arg);
	void *arg;
	pthread_mutex_t lock;	/* guards the workers' status fields */
	pthread_cond_t finished_cond;
	/* Set by workers_stop() when it gives up on some: from then on no
	 * worker starts a handler, nor hands a run back. */
	bool abandoned;
	struct worker *w;
	unsigned n;
};

/* Say which handler the worker is in (NULL: none). False, and nothing
 * set but the end of the last one, once the workers were abandoned: the
 * worker must then stop at once. */
static bool
set_status(struct worker *w, const char *handler, int64_t notification)
{
	bool go;

	pthread_mutex_lock(&w->pool->lock);
	go = !w->pool->abandoned;
	if (go || handler == NULL) {
		w->handler = handler;
		w->notification = notification;
		w->since_us = now_monotonic_us();
		w->reported = false;
	}
	pthread_mutex_unlock(&w->pool->lock);
	return go;
}

static void
set_run(struct worker *w, struct run *run)
{
	pthread_mutex_lock(&w->pool->lock);
	w->run = run;
	pthread_mutex_unlock(&w->pool->lock);
}

/* Call the run's handlers up to a transactional one or the end. False
 * when the workers were abandoned meanwhile. */
static bool
call_handlers(struct worker *w, struct run *run, int64_t id)
{
	while (run_has_next(run) && !run_next_is_transactional(run)) {
		if (!set_status(w, run->h[run->next].entry->name, id))
			return false;
		run_call_next(run, NULL);
		if (!set_status(w, NULL, 0))
			return false;
	}
	return true;
}

/* Build the run for a notification taken without its data (after a
 * restart, or a replay by whr inbox). NULL with *gone when it was purged
 * meanwhile; NULL alone when it could not be read now. */
static struct run *
load_run(struct workers *pool, struct store **reader, int64_t id, bool *gone)
{
	struct stored_work *work = NULL;
	int rc;

	*gone = false;
	if (*reader == NULL) {
		char why[512];

		*reader = store_open(pool->data_dir, STORE_READER, why,
				     sizeof(why));
		if (*reader == NULL) {
			whr_log(WHR_LOG_ERROR, "worker: %s", why);
			return NULL;
		}
	}
	rc = store_load_work(*reader, id, &work);
	if (rc == -ENOENT) {
		*gone = true;
		return NULL;
	}
	if (rc < 0) {
		whr_log(WHR_LOG_ERROR, "cannot load notification %lld: %s",
			(long long)id, store_error(*reader));
		return NULL;
	}
	return run_new(pool->reg, work);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct workers *pool = w->pool;

	thread_background();

	for (;;) {
		void *payload = NULL;
		struct run *run;
		bool gone;
		int64_t id;
		int rc = sched_take(pool->sched, TAKE_TIMEOUT_US, &id, &payload);

		if (rc == -ESHUTDOWN)
			break;
		if (rc < 0)
			continue;
		run = payload;
		if (run == NULL)
			run = load_run(pool, &w->reader, id, &gone);
		if (run == NULL && gone) {
			sched_finish(pool->sched, id);
			continue;
		}
		if (run == NULL) {
			/* Unreadable now: try again in a second. */
			sched_requeue(pool->sched, id,
				      now_realtime_us() + LOAD_RETRY_US, NULL);
			continue;
		}
		set_run(w, run);
		if (!call_handlers(w, run, id)) {
			/* The receiver stopped without waiting for us any
			 * more: nothing may be handed back. What was not
			 * written runs again at the next start. */
			set_run(w, NULL);
			run_free(run);
			break;
		}
		set_run(w, NULL);
		pool->hand_back(run, pool->arg);
	}
	store_close(w->reader);
	pthread_mutex_lock(&pool->lock);
	w->reader = NULL;
	w->finished = true;
	pthread_cond_broadcast(&pool->finished_cond);
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

struct workers *
workers_start(unsigned n, struct sched *sched,
	      const struct handler_registry *reg, const char *data_dir,
	      void (*hand_back)(struct run *run, void *arg), void *arg)
{
	struct workers *pool = calloc(1, sizeof(*pool));
	unsigned i;

	if (pool == NULL)
		return NULL;
	pool->w = calloc(n, sizeof(*pool->w));
	pool->data_dir = strdup(data_dir);
	if (pool->w == NULL || pool->data_dir == NULL) {
		free(pool->w);
		free(pool->data_dir);
		free(pool);
		return NULL;
	}
	pool->sched = sched;
	pool->reg = reg;
	pool->hand_back = hand_back;
	pool->arg = arg;
	pool->n = n;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->finished_cond, NULL);
	for (i = 0; i < n; i++) {
		struct worker *w = &pool->w[i];

		w->pool = pool;
		w->number = i + 1;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			whr_log(WHR_LOG_ERROR, "cannot start worker %u", i + 1);
			sched_close(sched);
			if (workers_stop(pool, INT64_MAX / 2, NULL, 0))
				workers_free(pool);
			return NULL;
		}
		w->started = true;
	}
	return pool;
}

void
workers_watch(struct workers *pool, int64_t timeout_us)
{
	int64_t now = now_monotonic_us();
	unsigned i;

	pthread_mutex_lock(&pool->lock);
	for (i = 0; i < pool->n; i++) {
		struct worker *w = &pool->w[i];

		if (w->handler == NULL || w->reported ||
		    now - w->since_us < timeout_us)
			continue;
		w->reported = true;
		whr_log(WHR_LOG_WARN,
			"handler %s has been running for %lld s on notification %lld "
			"(handler-timeout %lld ms); its worker is blocked",
			w->handler, (long long)((now - w->since_us) / 1000000),
			(long long)w->notification,
			(long long)(timeout_us / 1000));
	}
	pthread_mutex_unlock(&pool->lock);
}

/* Wait on the pool's lock until every worker returned, or @p deadline
 * (realtime, microseconds); @p idle_only: only for those not inside a
 * handler. True when none is left to wait for. */
static bool
wait_workers(struct workers *pool, int64_t deadline, bool idle_only)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000),
		.tv_nsec = (long)(deadline % 1000000) * 1000,
	};
	unsigned i;

	for (;;) {
		for (i = 0; i < pool->n; i++) {
			const struct worker *w = &pool->w[i];

			if (w->started && !w->finished &&
			    (!idle_only || w->handler == NULL))
				break;
		}
		if (i == pool->n)
			return true;
		if (pthread_cond_timedwait(&pool->finished_cond, &pool->lock,
					   &ts) == ETIMEDOUT)
			return false;
	}
}

/* Add @p name to the comma-separated list in @p buf unless it is there. */
static void
add_name(char *buf, size_t size, const char *name)
{
	size_t len = strlen(name);
	size_t used;
	const char *p;

	for (p = buf; (p = strstr(p, name)) != NULL; p += len) {
		if ((p == buf || p[-1] == ' ') &&
		    (p[len] == ',' || p[len] == '\0'))
			return;
	}
	used = strlen(buf);
	snprintf(buf + used, size - used, "%s%s", used > 0 ? ", " : "",
		 name);
}

bool
workers_stop(struct workers *pool, int64_t grace_us, char *running,
	     size_t size)
{
	int64_t deadline = now_realtime_us() + grace_us;
	bool all;
	unsigned i;

	if (running != NULL && size > 0)
		running[0] = '\0';
	if (pool == NULL)
		return true;
	pthread_mutex_lock(&pool->lock);
	all = wait_workers(pool, deadline, false);
	if (!all) {
		/* No handler starts from now on; the workers that are not in
		 * one return in a moment. */
		pool->abandoned = true;
		wait_workers(pool, now_realtime_us() + STRAGGLER_US, true);
		/* Zero: every one was idle, only slow to see the end. */
		all = wait_workers(pool, 0, false);
	}
	for (i = 0; i < pool->n && !all; i++) {
		struct worker *w = &pool->w[i];

		if (!w->started || w->finished)
			continue;
		if (w->handler != NULL) {
			whr_log(WHR_LOG_ERROR,
				"worker %u is still in handler %s (notification %lld) "
				"after the shutdown timeout; leaving it (the "
				"notification runs again at the next start)",
				w->number, w->handler,
				(long long)w->notification);
			if (running != NULL && size > 0)
				add_name(running, size, w->handler);
		} else {
			whr_log(WHR_LOG_ERROR,
				"worker %u did not stop after the shutdown timeout; "
				"leaving it", w->number);
		}
	}
	pthread_mutex_unlock(&pool->lock);
	/* The threads left running are detached (their resources go when
	 * they return, if ever before the process exits); the others are
	 * joined. Never cancelled: a handler cut at an arbitrary point could
	 * leave its locks held and its files half written. */
	for (i = 0; i < pool->n; i++) {
		struct worker *w = &pool->w[i];
		bool finished;

		if (!w->started)
			continue;
		pthread_mutex_lock(&pool->lock);
		finished = w->finished;
		pthread_mutex_unlock(&pool->lock);
		if (finished)
			pthread_join(w->thread, NULL);
		else
			pthread_detach(w->thread);
		w->started = false;
	}
	return all;
}

void
workers_free(struct workers *pool)
{
	if (pool == NULL)
		return;
	pthread_cond_destroy(&pool->finished_cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->w);
	free(pool->data_dir);
	free(pool);
}
