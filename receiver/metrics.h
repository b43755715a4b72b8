/*
 * Metrics in the Prometheus text format (0.0.4): what the front, the
 * inbox and dispatch count as they work, and the page /metrics serves.
 *
 * Every label takes its values from a set fixed when the receiver
 * starts, so that no request can grow memory by inventing values: a
 * receiver id without a secret counts as "unknown", an Action that no
 * handler is registered for and that is none of Learn365's whr knows as
 * "other", a status whr does not answer with as "other". Never a
 * secret, a signature or a body in a label.
 *
 * Updates are lock-free (relaxed atomics on counters fixed at start) and
 * may come from any thread; the page is built on the event loop.
 */
#ifndef WHR_RECEIVER_METRICS_H
#define WHR_RECEIVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <whr/handler.h>

struct handler_registry;
struct handler_entry;
struct metrics;

/* Why a signature check failed (whr_signature_failures_total). */
enum metrics_signature_failure {
	METRICS_SIGNATURE_MISSING,	/* no ms-signature */
	METRICS_SIGNATURE_DUPLICATE,	/* more than one */
	METRICS_SIGNATURE_MALFORMED,	/* not sha256=<hex> */
	METRICS_SIGNATURE_MISMATCH,	/* a wrong MAC */
	METRICS_SIGNATURE_FAILURE_COUNT,
};

/* The counters for @p handlers (their names and Actions are the labels'
 * sets) and the receiver ids in @p ids (borrowed during the call); NULL
 * when out of memory. */
struct metrics *metrics_new(const struct handler_registry *handlers,
			    const char *const *ids, size_t n_ids);
void metrics_free(struct metrics *m);

/* The front: one finished request to a webhook route (@p receiver_id the
 * URL's id, lowercased; NULL for other routes, counted as receiver "");
 * @p known: the id has a secret (otherwise it counts as "unknown",
 * whatever it is). */
void metrics_request(struct metrics *m, const char *receiver_id, bool known,
		     int status);
void metrics_signature_failure(struct metrics *m,
			       enum metrics_signature_failure why);
void metrics_delivery(struct metrics *m, const char *receiver_id,
		      bool duplicate);
void metrics_echo_check(struct metrics *m);

/* The inbox: a committed batch (deliveries and runs) and how long its
 * commit took; the open and dead notifications, and when the oldest
 * open one arrived (0: none open). */
void metrics_commit(struct metrics *m, size_t batch_size, int64_t commit_us);
void metrics_set_inbox(struct metrics *m, int64_t open, int64_t dead,
		       int64_t oldest_open_at_us);

/* Dispatch: a handler returned @p result for a notification of
 * @p action after @p duration_us. */
void metrics_handler_run(struct metrics *m, const struct handler_entry *h,
			 const char *action, enum whr_result result,
			 int64_t duration_us);

/* The page, malloc'd (free() it), in *@p len bytes; NULL when out of
 * memory. @p now_us: the time the oldest open notification's age is
 * measured against. */
char *metrics_page(struct metrics *m, int64_t now_us, size_t *len);

/* The page's Content-Type. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif /* WHR_RECEIVER_METRICS_H */
