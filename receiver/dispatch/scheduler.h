/*
 * The scheduler: which stored notification a worker may run next.
 *
 * Each notification has ordering keys (a learner and a course, or its
 * delivery). Notifications sharing a key run in the order they arrived
 * and never at the same time: one is eligible only when it is the oldest
 * unfinished one of each of its keys. Among the eligible ones whose time
 * has come, the oldest runs first. Pure bookkeeping in memory, guarded by
 * one lock; time comes from an injectable clock, so tests need no sleeps.
 */
#ifndef WHR_RECEIVER_SCHEDULER_H
#define WHR_RECEIVER_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sched;

/* Microseconds on any steady clock. */
typedef int64_t (*sched_clock_fn)(void *arg);

/* @p clock NULL uses CLOCK_REALTIME (next_at values are wall-clock
 * times, as stored in the inbox). */
struct sched *sched_new(sched_clock_fn clock, void *clock_arg);

/* Frees what is still queued, calling @p free_payload on each payload. */
void sched_free(struct sched *s, void (*free_payload)(void *payload));

/* Queue a notification that may run from @p next_at. Its @p keys are
 * copied; @p payload (may be NULL) is handed to the worker that takes it.
 * Adding an id already known does nothing and returns 0 (the payload is
 * not kept: the caller still owns it, and *taken says so). -ENOMEM. */
int sched_add(struct sched *s, int64_t id, char *const *keys, size_t n_keys,
	      int64_t next_at, void *payload, bool *taken);

/* Wait up to @p timeout_us for a runnable notification and take it.
 * 0 with *id and *payload set; -ETIMEDOUT; -ESHUTDOWN after sched_close(). */
int sched_take(struct sched *s, int64_t timeout_us, int64_t *id,
	       void **payload);

/* Non-blocking sched_take() for tests and single-threaded callers. */
int sched_try_take(struct sched *s, int64_t *id, void **payload);

/* A taken notification runs again from @p next_at (a retry, or the next
 * part of its handlers), still ahead of the others of its keys. */
void sched_requeue(struct sched *s, int64_t id, int64_t next_at,
		   void *payload);

/* A taken notification is finished for good: those behind it may go. */
void sched_finish(struct sched *s, int64_t id);

/* A taken notification's handlers are all done, but its outcome is not
 * on disk yet: those behind it may go, while it stays known (so that a
 * rescan of the store does not queue it again) until sched_finish(). */
void sched_release(struct sched *s, int64_t id);

bool sched_known(struct sched *s, int64_t id);

/* Whether a queued, running or released (outcome not yet on disk)
 * notification has one of @p keys: one sharing none of them may run
 * now, ahead of everything queued, and commit before them. */
bool sched_keys_busy(struct sched *s, char *const *keys, size_t n_keys);

/* Queued, running or released notifications. */
size_t sched_count(struct sched *s);

/* The smallest id queued, running or released; 0 when none. */
int64_t sched_min_id(struct sched *s);

/* The ids queued, running or released, the first @p max of them into
 * @p out (in no order): how many there are. */
size_t sched_ids(struct sched *s, int64_t *out, size_t max);

/* Keys with a notification queued, running or released: for tests. */
size_t sched_group_count(struct sched *s);

/* Hold wake-ups: until sched_release_wakes(), what the calling thread
 * makes runnable wakes no taker, and the release then wakes one per
 * notification made runnable meanwhile. For a thread that hands over
 * many at once (a commit's work): woken one at a time, a taker on the
 * same core preempted the thread handing over, ran one notification and
 * slept again, two context switches a notification. Other threads'
 * wake-ups are not held. Holds nest; a thread holds one scheduler at a
 * time. */
void sched_hold_wakes(struct sched *s);
void sched_release_wakes(struct sched *s);

/* Wake every waiting taker with -ESHUTDOWN; later takes fail too. */
void sched_close(struct sched *s);

#endif /* WHR_RECEIVER_SCHEDULER_H */
