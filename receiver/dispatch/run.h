/*
 * One run of a stored notification through its handlers: which handlers
 * apply (those of its Action, then the catch-all ones), which finished in
 * an earlier run (done or rejected: skipped), what each returned now,
 * and what the notification's state becomes. Shared by the workers and
 * the store thread (which runs the transactional handlers).
 */
#ifndef WHR_RECEIVER_RUN_H
#define WHR_RECEIVER_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handler.h"
#include "inbox.h"
#include "store/store.h"

struct sqlite3;

struct run_handler {
	const struct handler_entry *entry;
	bool finished_before;	/* done or rejected in an earlier run */
	bool ran;		/* called in this run */
	bool recorded;		/* its outcome is written already */
	enum whr_result result;
	char *reason;
};

struct run {
	struct stored_work *w;
	struct run_handler *h;
	size_t n;
	size_t next;		/* the next handler to consider */
	struct run *next_queued;	/* in the store thread's queue */
	char error[256];	/* why it is not done, when composed */
};

/* Select the handlers for @p w and mark those already finished. Takes
 * @p w. NULL when out of memory (then @p w is freed). */
struct run *run_new(const struct handler_registry *reg,
		    struct stored_work *w);
void run_free(struct run *r);

/* Skip handlers finished before; true when one is left to call. */
bool run_has_next(struct run *r);
bool run_next_is_transactional(const struct run *r);

/* Whether a handler called in this run asked for a retry. */
bool run_wants_retry(const struct run *r);

/* Call the next handler (inside the given transaction for a
 * transactional one: @p db; else NULL) and advance. */
void run_call_next(struct run *r, struct sqlite3 *db);

/* What the notification becomes once every handler had its turn: done,
 * dead (a rejection, or retries older than retry-max-age), or retrying at
 * *next_at. *error (static or the run's; borrowed) says why when not
 * done. */
enum work_state run_outcome(struct run *r, const struct inbox_config *c,
			    int64_t now, double random01, int64_t *next_at,
			    const char **error);

#endif /* WHR_RECEIVER_RUN_H */
