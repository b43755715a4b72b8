/*
 * The dispatcher (see dispatch.h): the worker threads, the work window,
 * and what becomes of a run once it is settled.
 */
#include "dispatch/dispatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch/scheduler.h"
#include "log.h"
#include "util.h"

#define TAKE_TIMEOUT_US 1000000
#define LOAD_RETRY_US 1000000
/* After the shutdown timeout, how long a worker that is not inside a
 * handler gets to notice and return (it is taking work, loading it or
 * handing a run back: moments). */
#define STRAGGLER_US 1000000
/* A shared store's claims are leased this long, and renewed every
 * second (dispatch_pick_up(), and from the store's listener: see
 * dispatch_held()): a replica that died has its work taken over this
 * long after. SQLite's claims need no lease (one whr serve per
 * folder). */
#define CLAIM_LEASE_US DISPATCH_LEASE_US
/* On a shared store, notifications claimed ahead per worker, at the
 * least and at the most (and never more than the window): what a
 * replica holds, the others cannot run, so it takes little ahead. But a
 * claim comes once a round of the store thread (a commit), and workers
 * that empty what they hold within a round (fast handlers) would wait
 * for the next: so the amount grows while they do (see
 * claim_ahead_next()). */
#define CLAIM_AHEAD_PER_WORKER 4
#define CLAIM_AHEAD_MOST_PER_WORKER 64
/* A claim that found less than it asked for is not made again before
 * this many times its own duration has passed: a claim's cost grows
 * with the open work it must pass over (work blocked behind an older
 * notification of its keys, retries not due), and then it must not
 * take the store thread from the deliveries waiting for their commit. */
#define CLAIM_GAP_FACTOR 4
/* A claim that found another replica's claim holding the claim lock
 * (until that one's commit, a millisecond or a few) is tried again after
 * this long, give or take half, doubled while it finds it taken again,
 * up to the most: it says nothing of the backlog, so neither the pause
 * above nor the amount claimed ahead changes. */
#define CLAIM_BUSY_US 2000
#define CLAIM_BUSY_MOST_US 32000

struct worker {
	struct dispatch *d;
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
	struct whr_store *reader;	/* opened when first needed */
};

struct dispatch {
	struct dispatch_config c;
	char *location;
	const struct handler_registry *reg;
	dispatch_settle_fn settle;
	void *arg;
	struct sched *sched;

	/* The workers. The lock guards their status fields. */
	pthread_mutex_t lock;
	pthread_cond_t finished_cond;
	/* Set by dispatch_stop() when it gives up on some: from then on no
	 * worker starts a handler, nor hands a run back. */
	bool abandoned;
	bool stopping;		/* dispatch_stop() began: no more claims */
	struct worker *w;
	unsigned n;

	/* The store thread's. */
	uint64_t rng;
	bool shared;			/* work by claims only (dispatch_load) */
	int64_t next_claim_us;		/* monotonic: no claim before */
	/* A claim sent in the transaction about to commit
	 * (dispatch_claim_at_commit()): what it asked for (0: none sent)
	 * and when (monotonic). */
	size_t claim_asked;
	bool claim_sent;		/* a claim, or new work leased */
	bool claim_probe;		/* the claim sent is a probe of one */
	int64_t claim_sent_us;
	bool claimed;			/* one committed since the last refill */
	size_t claim_ahead;		/* what claims take ahead now */
	int64_t claim_busy_us;		/* the wait after a claim that found
					 * the lock taken (0: the last did
					 * not) */
	bool claim_answered;		/* one was answered since the amount
					 * last changed */
	bool claim_filled;		/* the last one found all it asked */
	bool claim_put_off;		/* the last one wanted, or the next
					 * look past a window left unread,
					 * waits for next_claim_us */
	int64_t *held;			/* the ids renew() renews */
	size_t n_held;
	/* The work window: while behind, every open notification with an
	 * id up to loaded_through is in memory (or was replayed, for the
	 * rescan to find), and those above it are in the store only. */
	bool behind;
	int64_t loaded_through;		/* INT64_MAX when not behind */
	bool rescan;			/* replayed work may be left */
	int64_t rescan_after;		/* where the rescan goes on */
	int64_t waiting;		/* left in the store at the last load */
	bool report_behind;		/* fell behind since the last refill */
	int64_t fell_behind;		/* left in the store since then */
};

/* ---- what becomes of a run ------------------------------------------------ */

/* xorshift64*: jitter needs spread, not secrecy. */
static double
random01(struct dispatch *d)
{
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return (double)((d->rng * 2685821657736338717ULL) >> 11) /
	       9007199254740992.0;
}

int64_t
retry_delay(const struct retry_policy *p, int64_t run, double r)
{
	int64_t delay = p->delay_us;
	int64_t i;

	for (i = 1; i < run && delay < p->max_delay_us; i++)
		delay *= 2;
	if (delay > p->max_delay_us)
		delay = p->max_delay_us;
	/* Equal jitter: never sooner than half, spread over the rest, so
	 * that many retries due together do not come back together. */
	return delay / 2 + (int64_t)((double)(delay - delay / 2) * r);
}

static void
compose_error(struct run *r, const struct run_handler *h, const char *what,
	      const char *otherwise)
{
	snprintf(r->error, sizeof(r->error), "%s%s: %s", what,
		 h->entry->name, h->reason != NULL ? h->reason : otherwise);
}

enum work_state
dispatch_outcome(struct dispatch *d, struct run *r, int64_t now,
		 int64_t *next_at, const char **error)
{
	const struct run_handler *retry = NULL;
	const struct run_handler *reject = NULL;
	size_t i;

	*next_at = now;
	*error = NULL;
	for (i = 0; i < r->n; i++) {
		const struct run_handler *h = &r->h[i];

		if (h->result == WHR_RETRY && h->ran && retry == NULL)
			retry = h;
		if (h->result == WHR_REJECT && reject == NULL)
			reject = h;
	}
	if (retry != NULL) {
		*error = r->error;
		if (now - r->w->retry_from >= d->c.retry.max_age_us) {
			compose_error(r, retry,
				      "retries ran out (retry-max-age); ",
				      "asked for a retry");
			return WORK_DEAD;
		}
		*next_at = now + retry_delay(&d->c.retry, r->w->runs + 1,
					     random01(d));
		compose_error(r, retry, "", "asked for a retry");
		return WORK_RETRYING;
	}
	if (reject != NULL) {
		*error = r->error;
		compose_error(r, reject, "", "rejected");
		return WORK_DEAD;
	}
	return WORK_DONE;
}

/* Said once its state is committed (a failed batch is written again). */
static void
log_dead(const struct run *run)
{
	struct log_field fields[] = {
		LOG_INT("notification", run->w->id),
		LOG_STR("receiver", run->w->receiver_id),
		LOG_STR("delivery", run->w->delivery_id),
		LOG_STR("action", run->w->action),
		LOG_STR("reason", run->error),
	};

	log_fields(WHR_LOG_WARN, "notification is dead (whr inbox replay brings it back)",
		   fields, ARRAY_LENGTH(fields));
}

void
dispatch_settled(struct dispatch *d, struct run *run, int64_t now)
{
	int64_t id = run->w->id;

	/* What leaves(), the claims' measure, says. */
	if (run->lost) {
		/* Another replica's now: forget it. */
		sched_finish(d->sched, id);
		run_free(run);
	} else if (run_has_next(run)) {
		/* The next handler is a worker's. */
		sched_requeue(d->sched, id, now, run);
	} else if (run->w->state == WORK_RETRYING && d->shared) {
		/* The store hands it out again when it is due, to this
		 * replica or another. */
		sched_finish(d->sched, id);
		run_free(run);
	} else if (run->w->state == WORK_RETRYING) {
		/* A retry reads its outcomes back from the store. */
		sched_requeue(d->sched, id, run->w->next_at, NULL);
		run_free(run);
	} else {
		if (run->w->state == WORK_DEAD)
			log_dead(run);
		sched_finish(d->sched, id);
		run_free(run);
	}
}

void
dispatch_release(struct dispatch *d, struct run *run)
{
	if (!run_has_next(run) && !run_wants_retry(run))
		sched_release(d->sched, run->w->id);
}

/* ---- the work window -------------------------------------------------------- */

size_t
dispatch_count(struct dispatch *d)
{
	return sched_count(d->sched);
}

int64_t
dispatch_waiting(struct dispatch *d)
{
	return d->waiting;
}

int64_t
dispatch_oldest(struct dispatch *d)
{
	return sched_min_id(d->sched);
}

static void
log_behind(struct dispatch *d, int64_t waiting)
{
	whr_log(WHR_LOG_WARN,
		"%lld notifications wait on disk: the handlers are slower than deliveries (the work window of %zu is full; they run in arrival order as it empties)",
		(long long)waiting, d->c.work_window);
}

/* New work that stays in the store only: the dispatcher is behind from
 * it on. A new row's id is above every row's there is, so every open
 * row below it is in memory: the refill starts with this one. */
static void
leave_in_store(struct dispatch *d, int64_t id)
{
	if (!d->behind) {
		d->report_behind = true;
		d->fell_behind = 0;
	}
	if (!d->behind || id - 1 < d->loaded_through)
		d->loaded_through = id - 1;
	d->behind = true;
	d->fell_behind++;
}

bool
dispatch_may_run_now(struct dispatch *d, char *const *keys, size_t n_keys)
{
	return !d->behind && !d->rescan && n_keys > 0 &&
	       !sched_keys_busy(d->sched, keys, n_keys);
}

/* A new notification's ordering keys: its own, or without a learner
 * and course its delivery's (ordered within the delivery), as the store
 * keeps them. */
struct new_keys {
	char *const *keys;
	size_t n;
	char *delivery_key;	/* points at text */
	char text[32];
};

static void
new_keys(const struct ingest_delivery *del, size_t i, struct new_keys *k)
{
	const struct ingest_notification *n = &del->notifications[i];

	k->keys = n->keys;
	k->n = n->n_keys;
	if (k->n == 0) {
		snprintf(k->text, sizeof(k->text), "d:%lld",
			 (long long)del->seq);
		k->delivery_key = k->text;
		k->keys = &k->delivery_key;
		k->n = 1;
	}
}

void
dispatch_offer(struct dispatch *d, const struct ingest_delivery *del, size_t i,
	       struct run *run)
{
	const struct ingest_notification *n = &del->notifications[i];
	struct new_keys k;
	int64_t next_at = del->received_at;
	bool fresh = run == NULL;
	bool taken = false;

	if (run != NULL && !run_has_next(run)) {
		/* Finished in the delivery's own transaction. */
		bool retry = run->w->state == WORK_RETRYING;

		next_at = run->w->next_at;
		if (run->w->state == WORK_DEAD)
			log_dead(run);
		run_free(run);
		run = NULL;
		if (!retry)
			return;
		/* A retry reads its outcomes back from the store. */
	}
	if (d->behind || sched_count(d->sched) >= d->c.work_window) {
		run_free(run);
		leave_in_store(d, n->id);
		return;
	}
	new_keys(del, i, &k);
	if (fresh)
		run = run_from_delivery(d->reg, del, i, k.keys, k.n);
	if (sched_add(d->sched, n->id, k.keys, k.n, next_at, run,
		      &taken) < 0) {
		/* Out of memory: the refill loads it later. */
		leave_in_store(d, n->id);
	}
	if (!taken)
		run_free(run);
}

void
dispatch_hold_wakes(struct dispatch *d)
{
	sched_hold_wakes(d->sched);
}

void
dispatch_release_wakes(struct dispatch *d)
{
	sched_release_wakes(d->sched);
}

void
dispatch_take_leased(struct dispatch *d, const struct ingest_delivery *del,
		     size_t i)
{
	const struct ingest_notification *n = &del->notifications[i];
	struct new_keys k;
	struct run *run;
	bool taken = false;

	new_keys(del, i, &k);
	run = run_from_delivery(d->reg, del, i, k.keys, k.n);
	/* Out of memory: its lease runs out unrenewed, and a claim takes
	 * it over. */
	if (sched_add(d->sched, n->id, k.keys, k.n, del->received_at, run,
		      &taken) < 0)
		whr_log(WHR_LOG_WARN, "notification %lld left to a later "
			"claim: out of memory", (long long)n->id);
	if (!taken)
		run_free(run);
}

/* Open work read from the store into the scheduler: with its run when
 * the claim brought the work (a shared store's), else without (a worker
 * loads it). */
struct load {
	struct dispatch *d;
	size_t room;		/* notifications the window still takes */
	int64_t through;	/* work above it is not this load's */
	int64_t last;		/* the last id read (known or added) */
	int64_t n;		/* ids read */
	bool full;		/* stopped for want of room */
};

static int
load_one(struct store_claim *c, void *arg)
{
	struct load *l = arg;
	struct run *run = NULL;
	bool taken = false;
	int rc;

	if (c->id > l->through)
		return 1;
	if (l->room == 0) {
		l->full = true;
		return 1;
	}
	if (c->work != NULL) {
		/* Taken; NULL when out of memory (then freed): a worker
		 * loads it. */
		run = run_new(l->d->reg, c->work);
		c->work = NULL;
	}
	rc = sched_add(l->d->sched, c->id, c->keys, c->n_keys, c->next_at,
		       run, &taken);
	if (!taken)
		run_free(run);
	if (rc < 0)
		return rc;
	l->last = c->id;
	l->n++;
	if (taken)
		l->room--;
	return 0;
}

/* What a claim found: what @p l took; all it could take when it
 * stopped for want of room (the rest was given back). */
static int64_t
found(const struct load *l)
{
	return l->full ? INT64_MAX : l->n;
}

/* The runs held once @p finishing of them leave. */
static size_t
held_after(struct dispatch *d, size_t finishing)
{
	size_t held = sched_count(d->sched);

	return held > finishing ? held - finishing : 0;
}

/* Whether dispatch_stop() began (set on another thread). */
static bool
stopping(struct dispatch *d)
{
	bool began;

	pthread_mutex_lock(&d->lock);
	began = d->stopping;
	pthread_mutex_unlock(&d->lock);
	return began;
}

/* The most claims take ahead: 64 a worker, never above the window. */
static size_t
claim_ahead_most(const struct dispatch *d)
{
	size_t most = (size_t)d->c.workers * CLAIM_AHEAD_MOST_PER_WORKER;

	return most < d->c.work_window ? most : d->c.work_window;
}

/* The window's room with @p open notifications in it. */
static size_t
window_room_with(const struct dispatch *d, size_t open)
{
	return open < d->c.work_window ? d->c.work_window - open : 0;
}

static size_t
window_room(struct dispatch *d)
{
	return window_room_with(d, sched_count(d->sched));
}

size_t
claim_ahead_next(size_t ahead, size_t held, bool filled, size_t least,
		 size_t most)
{
	if (ahead < least)
		ahead = least;
	if (ahead > most)
		ahead = most;
	if (filled && held == 0)
		return ahead < most / 2 ? 2 * ahead : most;
	if (!filled || held >= ahead / 2)
		return ahead / 2 > least ? ahead / 2 : least;
	return ahead;
}

/* Once a claim was answered, what the next takes ahead, with @p held
 * runs still to finish: between 4 and 64 a worker, and never more than
 * the window, whose room bounds each claim (more than it could never
 * be held, so never cut back). */
static void
adapt_ahead(struct dispatch *d, size_t held)
{
	size_t least = (size_t)d->c.workers * CLAIM_AHEAD_PER_WORKER;
	size_t most = claim_ahead_most(d);

	if (least > most)
		least = most;
	if (d->claim_answered || d->claim_ahead == 0)
		d->claim_ahead = claim_ahead_next(d->claim_ahead, held,
						  d->claim_filled, least,
						  most);
	d->claim_answered = false;
}

/* A shared store: how much a claim asks for now (0: no claim), as much
 * as the window and the workers take; @p finishing of the runs held
 * leave the scheduler as the claim commits. */
static size_t
claim_size(struct dispatch *d, size_t finishing, int64_t now)
{
	size_t held = held_after(d, finishing);
	size_t room = window_room_with(d, held);
	size_t ahead;

	d->claim_put_off = false;
	if (room == 0 || stopping(d))
		return 0;
	adapt_ahead(d, held);
	ahead = d->claim_ahead;
	if (held >= ahead)
		return 0;
	if (now < d->next_claim_us) {
		d->claim_put_off = true;
		return 0;
	}
	return room < ahead - held ? room : ahead - held;
}

/* After a claim sent at @p start that found @p n of the @p asked: one
 * that found less, or failed, is not made again for a while; one that
 * found the claim lock taken (-EAGAIN), soon; one that found less in a
 * window of the store's with open work past it unread
 * (whr_store_claim_left()), again after that while, whatever else
 * happens (the store thread wakes for it), to look there. */
static void
claim_gap(struct dispatch *d, struct whr_store *s, int rc, int64_t n,
	  size_t asked, int64_t start)
{
	if (rc == -EAGAIN) {
		d->claim_busy_us = d->claim_busy_us == 0 ? CLAIM_BUSY_US
							 : 2 * d->claim_busy_us;
		if (d->claim_busy_us > CLAIM_BUSY_MOST_US)
			d->claim_busy_us = CLAIM_BUSY_MOST_US;
		d->next_claim_us = now_monotonic_us() +
			d->claim_busy_us / 2 +
			(int64_t)(random01(d) * (double)d->claim_busy_us);
		/* The store thread waits no longer (dispatch_claim_due()). */
		d->claim_put_off = true;
		return;
	}
	d->claim_busy_us = 0;
	/* A failed one says nothing of what waits. */
	if (rc >= 0)
		d->claim_filled = (size_t)n >= asked;
	d->claim_answered = true;
	d->next_claim_us = d->claim_filled
		? 0 : start + CLAIM_GAP_FACTOR * (now_monotonic_us() - start);
	if (rc >= 0 && !d->claim_filled && whr_store_claim_left(s))
		d->claim_put_off = true;
}

/* A shared store: claim eligible work, unless the last commit did.
 * 0 or a negative errno. */
static int
claim(struct dispatch *d, struct whr_store *s)
{
	struct load l = { .d = d, .through = INT64_MAX };
	int64_t start = now_monotonic_us();
	size_t asked;
	int rc;

	if (d->claimed) {
		d->claimed = false;
		return 0;
	}
	asked = claim_size(d, 0, start);
	if (asked == 0)
		return 0;
	l.room = asked;
	rc = whr_store_claim(s, 0, (int64_t)asked, CLAIM_LEASE_US, load_one,
			     &l);
	claim_gap(d, s, rc, found(&l), asked, start);
	return rc == -EAGAIN ? 0 : rc;
}

/* Whether dispatch_settled() takes @p run out of the scheduler. */
static bool
leaves(const struct dispatch *d, struct run *run)
{
	return run->lost || (!run_has_next(run) &&
			     (d->shared || run->w->state != WORK_RETRYING));
}

int64_t
dispatch_claim_due(const struct dispatch *d)
{
	return d->claim_put_off ? d->next_claim_us : 0;
}

/* How many of a commit's new notifications may be leased as they are
 * stored, with @p finishing of the runs held leaving as it commits: as
 * many as claims take ahead at most, while the last claim found less
 * than it asked for. A claim that found all it asked for may have left
 * older work waiting, which new work must not overtake: the claims
 * then take both, in arrival order. */
static size_t
lease_new_size(struct dispatch *d, size_t finishing)
{
	size_t held = held_after(d, finishing);
	size_t most = claim_ahead_most(d);

	if (d->claim_filled || stopping(d))
		return 0;
	return held < most ? most - held : 0;
}

int
dispatch_claim_at_commit(struct dispatch *d, struct whr_store *s,
			 const struct run_queue *settling)
{
	int64_t start = now_monotonic_us();
	size_t asked, lease_new, room, spare, finishing = 0;
	struct run *run;
	int rc;

	d->claim_asked = 0;
	d->claim_sent = false;
	if (!d->shared)
		return 0;
	STAILQ_FOREACH(run, settling, link)
		finishing += leaves(d, run);
	asked = d->claimed ? 0 : claim_size(d, finishing, start);
	lease_new = lease_new_size(d, finishing);
	/* Leasing new work goes with a claim, of one at least (a probe),
	 * so that older work waiting to be claimed (a retry due, the next
	 * of a key just finished) is found: that claim then fills, and
	 * leasing stops. Not while claims are put off after one that came
	 * short (nothing was waiting then), nor while they wait for the
	 * claim lock. */
	d->claim_probe = lease_new > 0 && asked == 0 && !d->claimed &&
			 !d->claim_put_off && start >= d->next_claim_us;
	if (d->claim_probe)
		asked = 1;
	/* Room kept for what the claim brings: the work it finds is older
	 * than the new work, which must not fill the window before it. */
	room = window_room_with(d, held_after(d, finishing));
	spare = room > asked ? room - asked : 0;
	if (lease_new > spare)
		lease_new = spare;
	if (asked == 0 && lease_new == 0)
		return 0;
	d->claim_asked = asked;
	d->claim_sent = true;
	d->claim_sent_us = start;
	rc = whr_store_claim_at_commit(s, (int64_t)asked, (int64_t)lease_new,
				       CLAIM_LEASE_US);
	return rc < 0 ? rc : 1;
}

void
dispatch_take_claimed(struct dispatch *d, struct whr_store *s,
		      bool committed)
{
	struct load l = { .d = d, .through = INT64_MAX };
	int rc;

	if (!d->claim_sent)
		return;
	if (committed) {
		/* The window's room now, with the batch's runs settled and
		 * its new work leased taken. */
		l.room = window_room(d);
		rc = whr_store_take_claimed(s, load_one, &l);
		if (rc < 0 && rc != -EAGAIN)
			whr_log(WHR_LOG_WARN, "cannot take the work claimed: %s",
				rc == -ENOMEM ? "out of memory"
					      : whr_store_error(s));
		if (d->claim_asked > 0)
			d->claimed = rc == 0;
	} else
		rc = -EIO;	/* perhaps the claim's failure: pause */
	/* Leasing new work only, it found what it found: no claim. */
	if (d->claim_asked > 0 || rc < 0) {
		bool answered = d->claim_answered;

		claim_gap(d, s, rc, found(&l), d->claim_asked,
			  d->claim_sent_us);
		/* A probe's answer changes what claims take ahead no more
		 * than a claim not made would. */
		if (d->claim_probe)
			d->claim_answered = answered;
	}
	d->claim_asked = 0;
	d->claim_sent = false;
}

int
dispatch_load(struct dispatch *d, struct whr_store *s)
{
	struct load l = { .d = d, .through = INT64_MAX };
	int64_t waiting;
	int rc;

	d->rescan = false;
	d->waiting = 0;
	d->shared = whr_store_shared(s);
	if (d->shared)
		return claim(d, s);
	l.room = window_room(d);
	rc = whr_store_claim(s, 0, (int64_t)l.room, CLAIM_LEASE_US, load_one,
			     &l);
	if (rc < 0)
		return rc;
	waiting = whr_store_count_open(s, l.last);
	if (waiting < 0)
		return (int)waiting;
	d->behind = waiting > 0;
	d->loaded_through = d->behind ? l.last : INT64_MAX;
	d->waiting = waiting;
	d->report_behind = false;
	if (d->behind)
		log_behind(d, waiting);
	return 0;
}

/* While behind, load the oldest waiting notifications into the window,
 * once it has room (below 3/4 full), until a load finds fewer than it
 * asked for: then every open notification is in memory and new ones go
 * there directly again.
 *
 * Strictly in id order, which is arrival order: work above
 * loaded_through is loaded lowest first, and new work waits behind it.
 * So of two notifications sharing a key, the older one is always in the
 * scheduler before (or with) the newer one, where it keeps the newer one
 * waiting until it is finished: the per-key order holds across the store
 * and memory. (A replayed notification is older than the newest of its
 * keys; it is found by the rescan and ordered as replays always were.) */
static void
refill(struct dispatch *d, struct whr_store *s)
{
	struct load l = { .d = d, .through = INT64_MAX };
	size_t open;
	int64_t asked;
	int rc;

	if (!d->behind)
		return;
	/* Not for every notification that finishes: a load at a time. */
	open = sched_count(d->sched);
	if (open >= d->c.work_window / 4 * 3)
		return;
	l.room = d->c.work_window - open;
	asked = (int64_t)l.room;
	l.last = d->loaded_through;
	rc = whr_store_claim(s, d->loaded_through, asked, CLAIM_LEASE_US,
			     load_one, &l);
	d->loaded_through = l.last;
	if (rc < 0) {
		whr_log(WHR_LOG_WARN, "cannot load waiting work: %s",
			rc == -ENOMEM ? "out of memory" : whr_store_error(s));
		return;
	}
	if (l.n < asked) {
		d->behind = false;
		d->loaded_through = INT64_MAX;
		whr_log(WHR_LOG_INFO,
			"the inbox caught up: every open notification is in memory again");
	}
}

/* Another process (whr inbox replay) changed the store: queue open work
 * the scheduler does not know yet, as far as the window has room.
 * Replayed work is older than what was loaded, so it may come in below
 * loaded_through; what is above it is the refill's. A rescan cut short
 * for room goes on from where it stopped, once there is room. */
static void
rescan(struct dispatch *d, struct whr_store *s)
{
	struct load l = { .d = d };
	int rc;

	if (!d->rescan)
		return;
	l.room = window_room(d);
	if (l.room == 0)
		return;
	l.through = d->loaded_through;
	l.last = d->rescan_after;
	rc = whr_store_claim(s, d->rescan_after, -1, CLAIM_LEASE_US, load_one,
			     &l);
	d->rescan_after = l.last;
	if (rc < 0)
		whr_log(WHR_LOG_WARN, "cannot rescan the inbox: %s",
			rc == -ENOMEM ? "out of memory" : whr_store_error(s));
	else if (!l.full)
		d->rescan = false;
}

int
dispatch_refill(struct dispatch *d, struct whr_store *s)
{
	int rc;

	if (s != NULL && d->shared) {
		/* What the claim brought goes to the workers at once, as
		 * it was read in one answer. (SQLite's refill below reads
		 * row after row from the disk: each wakes a worker as it
		 * comes.) */
		sched_hold_wakes(d->sched);
		rc = claim(d, s);
		sched_release_wakes(d->sched);
		return rc;
	}
	/* Said once as it falls behind, with what the batches since the
	 * last refill left in the store. */
	if (d->report_behind) {
		log_behind(d, d->fell_behind);
		d->report_behind = false;
	}
	if (s != NULL)
		refill(d, s);
	return 0;
}

/* A shared store: renew the leases of what this replica holds (claimed
 * and not settled yet), and of nothing else. */
static int
renew(struct dispatch *d, struct whr_store *s)
{
	size_t n = sched_ids(d->sched, d->held, d->n_held);
	int rc;

	if (n > d->n_held) {
		int64_t *grown = realloc(d->held, 2 * n * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		d->held = grown;
		d->n_held = 2 * n;
		n = sched_ids(d->sched, d->held, d->n_held);
		if (n > d->n_held)
			n = d->n_held;	/* more came meanwhile: next time */
	}
	/* Holding none: nothing to renew (the store's ids NULL would
	 * mean every lease of this process's, a walk of all open work). */
	if (n == 0)
		return 0;
	rc = whr_store_renew(s, d->held, n, CLAIM_LEASE_US);
	return rc < 0 ? rc : 0;
}

size_t
dispatch_held(struct dispatch *d, int64_t *ids, size_t max)
{
	return sched_ids(d->sched, ids, max);
}

int
dispatch_pick_up(struct dispatch *d, struct whr_store *s, bool changed)
{
	if (d->shared)
		return renew(d, s);
	if (changed) {
		d->rescan = true;
		d->rescan_after = 0;
	}
	rescan(d, s);
	return 0;
}

/* ---- workers ------------------------------------------------------------- */

/* Say which handler the worker is in (NULL: none). False, and nothing
 * set but the end of the last one, once the workers were abandoned: the
 * worker must then stop at once. */
static bool
set_status(struct worker *w, const char *handler, int64_t notification)
{
	bool go;

	pthread_mutex_lock(&w->d->lock);
	go = !w->d->abandoned;
	if (go || handler == NULL) {
		w->handler = handler;
		w->notification = notification;
		w->since_us = now_monotonic_us();
		w->reported = false;
	}
	pthread_mutex_unlock(&w->d->lock);
	return go;
}

static void
set_run(struct worker *w, struct run *run)
{
	pthread_mutex_lock(&w->d->lock);
	w->run = run;
	pthread_mutex_unlock(&w->d->lock);
}

/* Call the run's handlers up to a transactional one or the end. False
 * when the workers were abandoned meanwhile. */
static bool
call_handlers(struct worker *w, struct run *run, int64_t id)
{
	while (run_has_next(run) && !run_next_is_transactional(run)) {
		if (!set_status(w, run->h[run->next].entry->name, id))
			return false;
		run_call_next(run, NULL, w->d->c.metrics);
		if (!set_status(w, NULL, 0))
			return false;
	}
	return true;
}

/* Build the run for a notification taken without its work (after a
 * restart, a replay by whr inbox, or a shared store's claim that did not
 * bring it). NULL with *gone when it was purged meanwhile; NULL alone
 * when it could not be read now. */
static struct run *
load_run(struct worker *w, int64_t id, bool *gone)
{
	struct store_work *work = NULL;
	int rc;

	*gone = false;
	if (w->reader == NULL) {
		char why[512];

		w->reader = whr_store_open(w->d->location, STORE_WORKER, why,
					   sizeof(why));
		if (w->reader == NULL) {
			whr_log(WHR_LOG_ERROR, "worker: %s", why);
			return NULL;
		}
	}
	rc = whr_store_load(w->reader, id, &work);
	if (rc == -ENOENT) {
		*gone = true;
		return NULL;
	}
	if (rc < 0) {
		whr_log(WHR_LOG_ERROR, "cannot load notification %lld: %s",
			(long long)id, whr_store_error(w->reader));
		return NULL;
	}
	return run_new(w->d->reg, work);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct dispatch *d = w->d;

	thread_background();

	for (;;) {
		void *payload = NULL;
		struct run *run;
		bool gone;
		int64_t id;
		int rc = sched_take(d->sched, TAKE_TIMEOUT_US, &id, &payload);

		if (rc == -ESHUTDOWN)
			break;
		if (rc < 0)
			continue;
		run = payload;
		if (run == NULL)
			run = load_run(w, id, &gone);
		if (run == NULL && gone) {
			sched_finish(d->sched, id);
			continue;
		}
		if (run == NULL) {
			/* Unreadable now: try again in a second. */
			sched_requeue(d->sched, id,
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
		d->settle(run, d->arg);
	}
	whr_store_close(w->reader);
	pthread_mutex_lock(&d->lock);
	w->reader = NULL;
	w->finished = true;
	pthread_cond_broadcast(&d->finished_cond);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

void
dispatch_watch(struct dispatch *d)
{
	int64_t now = now_monotonic_us();
	int64_t timeout_us = d->c.handler_timeout_us;
	unsigned i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->n; i++) {
		struct worker *w = &d->w[i];

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
	pthread_mutex_unlock(&d->lock);
}

/* Wait on the lock until every worker returned, or @p deadline
 * (monotonic, microseconds); @p idle_only: only for those not inside a
 * handler. True when none is left to wait for. */
static bool
wait_workers(struct dispatch *d, int64_t deadline, bool idle_only)
{
	struct timespec ts = monotonic_timespec(deadline);
	unsigned i;

	for (;;) {
		for (i = 0; i < d->n; i++) {
			const struct worker *w = &d->w[i];

			if (w->started && !w->finished &&
			    (!idle_only || w->handler == NULL))
				break;
		}
		if (i == d->n)
			return true;
		if (pthread_cond_timedwait(&d->finished_cond, &d->lock,
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

/* Say which workers were given up on, naming their handlers. */
static void
report_left(struct dispatch *d, char *running, size_t size)
{
	unsigned i;

	for (i = 0; i < d->n; i++) {
		struct worker *w = &d->w[i];

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
}

bool
dispatch_stop(struct dispatch *d, int64_t grace_us, char *running,
	      size_t size)
{
	int64_t deadline = now_monotonic_us() + grace_us;
	bool all;
	unsigned i;

	if (running != NULL && size > 0)
		running[0] = '\0';
	if (d == NULL)
		return true;
	sched_close(d->sched);
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	all = wait_workers(d, deadline, false);
	if (!all) {
		/* No handler starts from now on; the workers that are not in
		 * one return in a moment. */
		d->abandoned = true;
		wait_workers(d, now_monotonic_us() + STRAGGLER_US, true);
		/* Zero: every one was idle, only slow to see the end. */
		all = wait_workers(d, 0, false);
	}
	if (!all)
		report_left(d, running, size);
	pthread_mutex_unlock(&d->lock);
	/* The threads left running are detached (their resources go when
	 * they return, if ever before the process exits); the others are
	 * joined. Never cancelled: a handler cut at an arbitrary point could
	 * leave its locks held and its files half written. */
	for (i = 0; i < d->n; i++) {
		struct worker *w = &d->w[i];
		bool finished;

		if (!w->started)
			continue;
		pthread_mutex_lock(&d->lock);
		finished = w->finished;
		pthread_mutex_unlock(&d->lock);
		if (finished)
			pthread_join(w->thread, NULL);
		else
			pthread_detach(w->thread);
		w->started = false;
	}
	return all;
}

void
dispatch_free(struct dispatch *d)
{
	if (d == NULL)
		return;
	sched_free(d->sched, (void (*)(void *))run_free);
	free(d->held);
	pthread_cond_destroy(&d->finished_cond);
	pthread_mutex_destroy(&d->lock);
	free(d->w);
	free(d->location);
	free(d);
}

struct dispatch *
dispatch_start(const struct dispatch_config *config,
	       const struct handler_registry *reg, dispatch_settle_fn settle,
	       void *arg)
{
	struct dispatch *d = calloc(1, sizeof(*d));
	bool cond_ok;
	unsigned i;

	if (d == NULL)
		return NULL;
	d->c = *config;
	d->reg = reg;
	d->settle = settle;
	d->arg = arg;
	d->rng = (uint64_t)now_realtime_us() | 1;
	d->loaded_through = INT64_MAX;
	pthread_mutex_init(&d->lock, NULL);
	cond_ok = cond_init_monotonic(&d->finished_cond) == 0;
	d->location = strdup(config->location);
	d->c.location = d->location;
	d->w = calloc(config->workers, sizeof(*d->w));
	d->sched = sched_new(NULL, NULL);
	if (!cond_ok || d->location == NULL || d->w == NULL ||
	    d->sched == NULL) {
		dispatch_free(d);
		return NULL;
	}
	d->n = config->workers;
	for (i = 0; i < d->n; i++) {
		struct worker *w = &d->w[i];

		w->d = d;
		w->number = i + 1;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			whr_log(WHR_LOG_ERROR, "cannot start worker %u", i + 1);
			if (dispatch_stop(d, INT64_MAX / 2, NULL, 0))
				dispatch_free(d);
			return NULL;
		}
		w->started = true;
	}
	return d;
}
