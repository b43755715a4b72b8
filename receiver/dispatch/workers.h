/*
 * The worker threads: each takes a runnable notification from the
 * scheduler, loads it when it was not handed over in memory, calls its
 * handlers in order until a transactional one (which the store thread
 * runs) or the end, and hands the run back.
 */
#ifndef WHR_RECEIVER_WORKERS_H
#define WHR_RECEIVER_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handler.h"
#include "dispatch/run.h"
#include "dispatch/scheduler.h"

struct workers;

/* @p hand_back is called on the worker's thread with each run it stops
 * with (it owns the run then). A run finished for good still holds its
 * keys: hand_back releases them (sched_release()) as it queues the
 * outcome. */
struct workers *workers_start(unsigned n, struct sched *sched,
			      const struct handler_registry *reg,
			      const char *data_dir,
			      void (*hand_back)(struct run *run, void *arg),
			      void *arg);

/* Log handlers running longer than @p timeout_us (once per call). */
void workers_watch(struct workers *w, int64_t timeout_us);

/* After sched_close(): wait up to @p grace_us for the workers to return
 * and join them. Returns false if some are still in a handler then: no
 * worker starts another handler or hands a run back from then on, those
 * not in a handler are waited for a moment more, and those still running
 * are logged and detached (never cancelled). The workers, the scheduler
 * and the handler registry must then stay allocated for as long as the
 * process lives. The distinct names of the handlers left running go to
 * @p running (comma-separated; "" when none) unless it is NULL. */
bool workers_stop(struct workers *w, int64_t grace_us, char *running,
		  size_t size);

/* Free the workers after workers_stop() returned true, once nothing calls
 * workers_watch() any more. */
void workers_free(struct workers *w);

#endif /* WHR_RECEIVER_WORKERS_H */
