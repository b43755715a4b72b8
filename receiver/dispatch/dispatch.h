/*
 * Dispatch: which stored notification runs when, on which worker thread,
 * through which handlers, and what becomes of it (the retry policy).
 *
 * A notification's run moves forward, one owner at a time:
 *
 *   inbox (store thread)                dispatch
 *   ---------------------               --------------------------------
 *   commits a delivery  --dispatch_offer()-->  the scheduler orders it;
 *                                              a worker takes it, loads it
 *                                              if it came without its work,
 *                                              calls its handlers up to a
 *                                              transactional one or the end
 *   writes its outcomes <--settle callback---  and hands the run back
 *   (and runs its transactional
 *   handlers in that transaction)
 *   commits them        --dispatch_settled()-> finished, or queued again (a
 *                                              retry, or the next handlers)
 *
 * The work window keeps at most work_window open notifications in memory;
 * the rest wait in the store and are loaded in arrival order as the
 * window empties (dispatch_refill(), on the store thread).
 *
 * On a shared store (whr_store_shared(): several replicas on one
 * PostgreSQL) nothing is offered: dispatch_load() and dispatch_refill()
 * claim the work the store says is eligible, a few per worker (more
 * while the workers run out of it: claim_ahead_next()), leased to
 * this replica; a batch's commit leases its own new work as it stores
 * it, while no older work waits to be claimed, which the inbox hands
 * over with dispatch_take_leased(); dispatch_pick_up() renews the
 * leases every second; a run settled retrying leaves memory (the store
 * hands it out again when it is due, to any replica), and one whose
 * claim another replica took over (its lease ran out: run->lost) is
 * forgotten.
 *
 * Threads: dispatch_offer(), dispatch_settled(), dispatch_load(),
 * dispatch_refill(), dispatch_outcome() and dispatch_may_run_now() are
 * the store thread's (one caller at a time); the settle callback runs on
 * worker threads.
 */
#ifndef WHR_RECEIVER_DISPATCH_H
#define WHR_RECEIVER_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "handler.h"
#include "store/store.h"

struct dispatch;
struct metrics;
struct whr_tx;

/* ---- settings --------------------------------------------------------- */

struct retry_policy {
	int64_t delay_us;	/* first retry; doubles each time */
	int64_t max_delay_us;	/* the doubling stops here */
	int64_t max_age_us;	/* after arrival (or a replay); then dead */
};

struct dispatch_config {
	const char *location;		/* the store, for the workers */
	unsigned workers;
	struct retry_policy retry;
	int64_t handler_timeout_us;	/* a handler running longer is
					 * reported */
	size_t work_window;		/* open notifications in memory */
	struct metrics *metrics;	/* may be NULL */
};

/* The delay before retry number @p run (1 for the first retry), with
 * "equal jitter": between half and all of the exponential delay.
 * @p random01 is uniform in [0, 1). */
int64_t retry_delay(const struct retry_policy *p, int64_t run,
		    double random01);

/* On a shared store, what claims take ahead next, once a claim was
 * answered: from @p ahead now (brought between @p least and @p most),
 * twice as much when the workers ran out of what it brought (@p held
 * runs left as the next claim is made: none) and it brought all it
 * asked for (@p filled): they could have run more in a round; half as
 * much when it brought less (the backlog is gone: a replica that dies
 * leaves few leases) or they still hold half of it (they have enough:
 * slow handlers leave the rest to the other replicas). */
size_t claim_ahead_next(size_t ahead, size_t held, bool filled,
			size_t least, size_t most);

/* ---- runs ------------------------------------------------------------- */

/* One run of a notification through its handlers: which handlers apply
 * (those of its Action, then the catch-all ones), which finished in an
 * earlier run (done or rejected: skipped), and what each returned now. */
struct run_handler {
	const struct handler_entry *entry;
	bool finished_before;	/* done or rejected in an earlier run */
	bool ran;		/* called in this run */
	bool recorded;		/* its outcome is written already */
	enum whr_result result;
	char *reason;
};

struct run {
	struct store_work *w;
	struct run_handler *h;
	size_t n;
	size_t next;		/* the next handler to consider */
	STAILQ_ENTRY(run) link;	/* in the inbox's queues */
	bool lost;		/* its claim is another replica's now
				 * (whr_store_own()): nothing of it is
				 * written, and dispatch forgets it */
	char error[256];	/* why it is not done, when composed */
};

STAILQ_HEAD(run_queue, run);

/* Select the handlers for @p w and mark those already finished. Takes
 * @p w. NULL when out of memory (then @p w is freed). */
struct run *run_new(const struct handler_registry *reg, struct store_work *w);

/* The run of a delivery's notification @p i just stored, its strings in
 * one block, so that nobody reads it back. NULL when out of memory (a
 * worker then loads it from the store). */
struct run *run_from_delivery(const struct handler_registry *reg,
			      const struct ingest_delivery *d, size_t i,
			      char *const *keys, size_t n_keys);

void run_free(struct run *r);

/* Skip handlers finished before; true when one is left to call. */
bool run_has_next(struct run *r);
bool run_next_is_transactional(const struct run *r);

/* Whether a handler called in this run asked for a retry. */
bool run_wants_retry(const struct run *r);

/* Call the next handler (a transactional one with @p tx, the
 * transaction it writes in; else NULL) and advance; what it returned and
 * how long it took go to @p metrics (may be NULL). */
void run_call_next(struct run *r, struct whr_tx *tx, struct metrics *metrics);

/* The oldest notification in memory, the oldest open one but for work
 * replayed while the window was full: its id, or 0 when none. */
int64_t dispatch_oldest(struct dispatch *d);

/* ---- the dispatcher ----------------------------------------------------- */

/* Called on a worker's thread with each run it stops with: every
 * handler had its turn, or the next is transactional (the store
 * thread's). It owns the run then. A run finished for good (no handler
 * left, no retry) still holds its keys: the callback lets them go with
 * dispatch_release() once the outcome is queued, so that a key's
 * outcomes queue in the order its runs ran. */
typedef void (*dispatch_settle_fn)(struct run *run, void *arg);

/* Start the workers. @p config and @p reg must outlive the dispatcher.
 * NULL (logged) when they cannot start. */
struct dispatch *dispatch_start(const struct dispatch_config *config,
				const struct handler_registry *reg,
				dispatch_settle_fn settle, void *arg);

/* The open work in @p s, in id order, as far as the window goes (the
 * rest waits: the dispatcher is behind). At start, and after the store
 * was reopened. */
int dispatch_load(struct dispatch *d, struct whr_store *s);

/* Whether a new notification with @p keys may run its handlers now, in
 * the transaction that stores it: only when nothing older with one of
 * its keys is open, in memory or in the store. */
bool dispatch_may_run_now(struct dispatch *d, char *const *keys,
			  size_t n_keys);

/* Around a hand-over of many notifications at once (a commit's): the
 * workers are woken at the end, not one at a time (sched_hold_wakes()).
 * From the thread that hands over. */
void dispatch_hold_wakes(struct dispatch *d);
void dispatch_release_wakes(struct dispatch *d);

/* A delivery's notification @p i is committed: queue it (with @p run
 * when its handlers were begun in the delivery's own transaction, else
 * NULL), or leave it in the store while the window is full. Takes
 * @p run. */
void dispatch_offer(struct dispatch *d, const struct ingest_delivery *del,
		    size_t i, struct run *run);

/* On a shared store, a delivery's notification @p i was leased to this
 * replica as its commit stored it (ingest_notification.leased): queue
 * it, its work from the delivery in hand, as a claim's work. */
void dispatch_take_leased(struct dispatch *d,
			  const struct ingest_delivery *del, size_t i);

/* What the notification of @p run becomes now that every handler had
 * its turn: done, dead (a rejection, or retries older than the retry
 * policy allows), or retrying at *next_at. *error (the run's; borrowed)
 * says why when not done. */
enum work_state dispatch_outcome(struct dispatch *d, struct run *run,
				 int64_t now, int64_t *next_at,
				 const char **error);

/* The outcomes @p run recorded are committed: it is finished, or queued
 * again (its next handler is a worker's, or a retry). Takes @p run. */
void dispatch_settled(struct dispatch *d, struct run *run, int64_t now);

/* For the settle callback: @p run's keys may go to the next of theirs. */
void dispatch_release(struct dispatch *d, struct run *run);

/* After each batch and each second, on the store thread: load waiting
 * work as the window empties (@p s NULL: the store is not open); on a
 * shared store, claim what is eligible (unless the last commit did),
 * also when another replica said it made some. 0, or a negative errno when a shared store could not be
 * read (SQLite's failures are logged). */
int dispatch_refill(struct dispatch *d, struct whr_store *s);

/* On a shared store, inside the transaction a batch is about to commit
 * (whr_store_claim_at_commit()): claim what is eligible then, as
 * dispatch_refill() would after the commit, so that the claim waits for
 * no commit of its own; the transaction settles @p settling (their
 * room is counted free). No claim when the last commit claimed already
 * (its refill has not come yet), or when the last claim's pause lasts.
 * Besides, while the last claim found less than it asked for (no older
 * work waits), the batch's deliveries lease their eligible new work as
 * they are stored, up to what claims take ahead at most: after the
 * commit, dispatch_take_leased() for each. Nothing on a store that is
 * not shared. 1 when it claimed or leases, 0 when not, or a negative
 * errno: the transaction failed with it. */
int dispatch_claim_at_commit(struct dispatch *d, struct whr_store *s,
			     const struct run_queue *settling);

/* On a shared store: when (monotonic) a claim put off is due, one
 * wanted while the last claim's pause (after it found less than it
 * asked for) lasted, or the next look past a window that the last claim
 * left unread (whr_store_claim_left()); 0: none is. Call
 * dispatch_refill() then, so that work committed meanwhile waits no
 * longer. */
int64_t dispatch_claim_due(const struct dispatch *d);

/* After that transaction ended, and after its runs were settled
 * (dispatch_settled()): queue what the claim found when @p committed,
 * and the next dispatch_refill() claims nothing more; when not, nothing
 * was leased, and claims pause a while (the claim may be what failed). */
void dispatch_take_claimed(struct dispatch *d, struct whr_store *s,
			   bool committed);

/* Each second: queue open work another process made pending (whr inbox
 * replay), which no load handed out; @p changed says the store changed
 * since the last call. On a shared store, renew the leases of the work
 * this replica holds instead (the next claim finds replayed work): 0, or
 * a negative errno. */
int dispatch_pick_up(struct dispatch *d, struct whr_store *s, bool changed);

/* What this replica holds of a shared store's work (claimed, not
 * settled): at most @p max ids into @p ids; how many there are. Safe on
 * any thread: for whr_store_keep_leases(), with the lease its claims
 * take, DISPATCH_LEASE_US. */
size_t dispatch_held(struct dispatch *d, int64_t *ids, size_t max);
#define DISPATCH_LEASE_US (15 * 1000000LL)

/* Each second: report handlers running longer than the timeout. */
void dispatch_watch(struct dispatch *d);

/* Notifications in memory (queued, running or being settled), and those
 * left in the store when the window was full at the last load. */
size_t dispatch_count(struct dispatch *d);
int64_t dispatch_waiting(struct dispatch *d);

/* Stop taking work, and wait up to @p grace_us for the workers. A
 * handler still running then is left behind (never cancelled): false,
 * with the names of those handlers in @p running (comma-separated), and
 * the dispatcher and the handler registry must then stay allocated for
 * as long as the process lives. */
bool dispatch_stop(struct dispatch *d, int64_t grace_us, char *running,
		   size_t size);

/* Free after dispatch_stop() returned true. */
void dispatch_free(struct dispatch *d);

#endif /* WHR_RECEIVER_DISPATCH_H */
