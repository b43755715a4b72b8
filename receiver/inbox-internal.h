/*
 * The inbox's insides, shared by its files:
 *   inbox.c         the store thread, its hand-offs, periodic work, start
 *                   and stop
 *   inbox-batch.c   one batch: a transaction of deliveries, outcomes and
 *                   transactional handlers
 *   inbox-commit.c  what follows its commit: answers, new work to the
 *                   scheduler, runs settled
 *   inbox-window.c  the work window: open work in memory, the rest on disk
 * Nothing here is for other parts of libwhr: they use inbox-private.h.
 */
#ifndef WHR_RECEIVER_INBOX_INTERNAL_H
#define WHR_RECEIVER_INBOX_INTERNAL_H

#include "inbox.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event;
struct ingest_job;
struct run;

#define TICK_US 1000000			/* periodic work */
#define PURGE_EVERY_US (10 * 1000000LL)
#define PURGE_BATCH 200
#define DEFAULT_WORK_WINDOW 10000

struct inbox {
	struct inbox_config c;
	char *data_dir;
	const struct handler_registry *handlers;
	bool any_transactional;		/* a handler is; fixed at start */
	struct store *store;		/* the store thread's */
	int folder_fd;			/* flock()ed: one whr serve per folder */
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
	/* 1 + the index of the handler whose db_setup failed at the last
	 * attempt to open; 0: none did. */
	size_t setup_failing;
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

/* inbox.c */
void inbox_set_health(struct inbox *ib, bool ready, const char *why);
double inbox_random01(struct inbox *ib);
/* Hand stored (or failed) jobs back to the loop for their answers. */
void inbox_post_done(struct inbox *ib, struct ingest_job *jobs);
/* Open the database and queue its pending work; see inbox.c. */
int inbox_open_store(struct inbox *ib);

/* inbox-batch.c */
/* One transaction with @p jobs and @p runs, synced, then answered. */
void inbox_batch(struct inbox *ib, struct ingest_job *jobs, struct run *runs);
/* Outcomes a failed batch could not write, kept in order for a retry. */
void inbox_defer_runs(struct inbox *ib, struct run *runs);

/* inbox-commit.c */
/* A batch is on disk: answer its deliveries, give the new work to the
 * workers, and settle the runs it recorded. */
void inbox_after_commit(struct inbox *ib, struct ingest_job *jobs,
			struct run *runs, int64_t now);
/* The fresh work of a stored notification, its strings in one block.
 * NULL when out of memory: a worker then loads it from the store. */
struct run *inbox_fresh_run(struct inbox *ib, const struct ingest_delivery *d,
			    size_t i, char **keys, size_t n_keys);
/* Said once, as the inbox falls behind. */
void inbox_log_behind(struct inbox *ib, int64_t waiting);

/* inbox-window.c */
/* How many more open notifications the window takes. */
size_t inbox_window_room(struct inbox *ib);
/* While behind: load the oldest waiting work, in id order. */
void inbox_refill(struct inbox *ib);
/* After `whr inbox replay`: find the work it made pending again. */
void inbox_pick_up_changes(struct inbox *ib);
/* At start: the open work, in id order, as far as the window goes; the
 * inbox is behind when there is more. */
int inbox_load_at_start(struct inbox *ib);

#endif /* WHR_RECEIVER_INBOX_INTERNAL_H */
