/*
 * The durable inbox: the store thread, which owns the store's write side.
 * It takes verified deliveries from the event loop and stores them in
 * batches, one transaction and one sync for all that arrived together
 * (group commit); only then does the loop answer 200. New work goes to
 * dispatch after each commit, and the runs dispatch hands back are
 * settled in the next batch, with the work of transactional handlers.
 * On a shared store (PostgreSQL, several replicas) dispatch claims the
 * work instead, after each commit, when another replica says it made
 * some, and every second.
 *
 *   event loop --inbox_submit()--> store thread: a transaction per batch,
 *   synced; the answers go back to the loop (eventfd), the new work to
 *   dispatch --> workers --runs settled--> store thread
 */
#ifndef WHR_RECEIVER_INBOX_H
#define WHR_RECEIVER_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "dispatch/dispatch.h"
#include "handler.h"
#include "store/store.h"

struct event_base;
struct inbox;

struct inbox_config {
	const char *location;		/* the store: a data folder */
	int64_t retain_us;		/* finished deliveries kept */
};

enum ingest_result {
	INGEST_STORED,		/* new, durable */
	INGEST_DUPLICATE,	/* already stored: durable too */
	INGEST_FAILED,		/* the store could not take it */
};

/* One delivery on its way to the store, owned by the loop. */
struct ingest_job {
	STAILQ_ENTRY(ingest_job) link;
	struct ingest_delivery d;
	enum ingest_result result;
	char error[160];
	void (*done)(struct ingest_job *job, void *arg);	/* on the loop */
	void *done_arg;
};

/* Open the store, prepare the handlers' tables, start dispatch with
 * @p dispatch's settings and the store thread. Completions come back on
 * @p base. NULL (logged) when the data folder or the database cannot be
 * used, with *@p error: -EINVAL when a transactional handler cannot run
 * on the database (a configuration error), -EPROTO for a schema or
 * tables newer than this whr, -EBUSY for a data folder another whr
 * serve uses, else -ENOMEM or -EIO. A store that cannot be opened now
 * (a full disk, a database away) is no failure: the inbox answers 503
 * and tries again every second. */
struct inbox *inbox_start(const struct inbox_config *config,
			  const struct dispatch_config *dispatch,
			  const struct handler_registry *handlers,
			  struct event_base *base, int *error);

/* Stop dispatch, write what it finished, and close. A handler still
 * running after @p grace_us is left behind (see dispatch_stop(), which
 * also fills @p running), its work is run again at the next start, and
 * -EBUSY is returned: the inbox is then kept, never freed, and the
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

#endif /* WHR_RECEIVER_INBOX_H */
