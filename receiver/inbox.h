/*
 * The durable inbox: the thread that owns the database's write side
 * (group commit of deliveries, handler outcomes and transactional
 * handlers), the worker threads that call the other handlers, and the
 * hand-offs between them and the event loop.
 *
 *   event loop --inbox_submit()--> store thread: one transaction per
 *   batch, synced, then the answers go back to the loop (eventfd) and the
 *   new work to the scheduler --> workers --finished runs--> store thread
 */
#ifndef WHR_RECEIVER_INBOX_H
#define WHR_RECEIVER_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handler.h"
#include "store/store.h"

struct event_base;
struct inbox;

struct inbox_config {
	const char *data_dir;
	unsigned workers;
	int64_t retry_delay_us;		/* first retry; doubles each time */
	int64_t retry_max_delay_us;	/* the doubling stops here */
	int64_t retry_max_age_us;	/* after arrival; then dead */
	int64_t handler_timeout_us;	/* a handler running longer is
					 * reported */
	int64_t retain_us;		/* finished deliveries kept */
	size_t work_window;		/* open notifications in memory at
					 * most; 0: the default, 10000 */
};

enum ingest_result {
	INGEST_STORED,		/* new, durable */
	INGEST_DUPLICATE,	/* already stored: durable too */
	INGEST_FAILED,		/* the store could not take it */
};

/* One delivery on its way to the store, owned by the loop. */
struct ingest_job {
	struct ingest_job *next;
	struct ingest_delivery d;
	enum ingest_result result;
	char error[160];
	void (*done)(struct ingest_job *job, void *arg);	/* on the loop */
	void *done_arg;
};

/* Open the store, prepare the handlers' tables, queue the pending work
 * and start the threads. Completions come back on @p base. NULL (logged)
 * when the data folder or the database cannot be used. */
struct inbox *inbox_start(const struct inbox_config *config,
			  const struct handler_registry *handlers,
			  struct event_base *base);

/* Stop the workers, write what they finished, and close. A handler
 * still running after @p grace_us is left behind (see workers_stop(),
 * which also fills @p running), its work is run again at the next start,
 * and -EBUSY is returned: the inbox is then kept, never freed, and the
 * handler registry must be kept too (a worker may still call into it).
 * 0 otherwise; NULL is a no-op. */
int inbox_stop(struct inbox *ib, int64_t grace_us, char *running,
	       size_t size);

/* Queue a delivery; @p job->done runs on the loop once it is stored (or
 * not). Never blocks on the disk. */
void inbox_submit(struct inbox *ib, struct ingest_job *job);

/* Whether the last write worked; if not, @p why (of @p why_size bytes;
 * may be 0) says why. */
bool inbox_ready(struct inbox *ib, char *why, size_t why_size);

/* The delay before retry number @p run (1 for the first retry), with
 * "equal jitter": between half and all of the exponential delay.
 * @p random01 is uniform in [0, 1). Exposed for tests. */
int64_t retry_delay(const struct inbox_config *c, int64_t run,
		    double random01);

#endif /* WHR_RECEIVER_INBOX_H */
