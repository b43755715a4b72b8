/*
 * The scheduler, on a fake clock: order within a key, parallelism across
 * keys, notifications with several keys, retries at their time, a late
 * (replayed) notification, released ones holding their keys, and the
 * retry backoff.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dispatch/dispatch.h"
#include "dispatch/scheduler.h"
#include "test-common.h"
#include "util.h"

static int64_t fake_now;

static int64_t
fake_clock(void *arg)
{
	return fake_now;
}

/* Each test's scheduler, on the fake clock at 1000 (the fixture). */
static struct sched *sc;

static void
sched_setup(void)
{
	sc = sched_new(fake_clock, NULL);
	ck_assert_ptr_nonnull(sc);
	fake_now = 1000;
}

static void
sched_teardown(void)
{
	sched_free(sc, NULL);
}

static void
add(struct sched *s, int64_t id, const char *k1, const char *k2,
    int64_t next_at)
{
	char *keys[2] = { (char *)k1, (char *)k2 };
	bool taken;

	ck_assert_int_eq(sched_add(s, id, keys, k2 != NULL ? 2 : 1, next_at,
				   NULL, &taken), 0);
	ck_assert(taken);
}

/* Add notifications @p first, @p first + 1 ... with one key each, the
 * keys given in that order, up to NULL. */
static void
add_in_order(struct sched *s, int64_t first, const char *const *keys)
{
	for (; *keys != NULL; keys++)
		add(s, first++, *keys, NULL, 0);
}

#define ADD_IN_ORDER(s, first, ...)                                          \
	add_in_order((s), (first), (const char *const[]){ __VA_ARGS__, NULL })

/* The id a worker would take now, or -1. */
static int64_t
take(struct sched *s)
{
	void *payload;
	int64_t id;

	return sched_try_take(s, &id, &payload) == 0 ? id : -1;
}

/* What workers asking one after another would take now: @p want, in
 * that order, and then nothing (-1 ends @p want). */
static void
takes(struct sched *s, const int64_t *want)
{
	size_t i;

	for (i = 0;; i++) {
		int64_t got = take(s);

		ck_assert_msg(got == want[i], "take %zu: %lld, want %lld", i,
			      (long long)got, (long long)want[i]);
		if (want[i] == -1)
			break;
	}
}

#define TAKES(s, ...) takes((s), (const int64_t[]){ __VA_ARGS__, -1 })

START_TEST(sched_one_key_in_order)
{
	ADD_IN_ORDER(sc, 1, "lc:c|u", "lc:c|u", "lc:c|u");
	/* Never two of one key at a time. */
	TAKES(sc, 1);
	sched_finish(sc, 1);
	TAKES(sc, 2);
	sched_finish(sc, 2);
	TAKES(sc, 3);
	sched_finish(sc, 3);
	ck_assert_uint_eq(sched_count(sc), 0);
}
END_TEST

START_TEST(sched_unrelated_in_parallel)
{
	ADD_IN_ORDER(sc, 1, "a", "b", "a", "c");
	/* Oldest first among those that may run. */
	TAKES(sc, 1, 2, 4);
	sched_finish(sc, 1);
	TAKES(sc, 3);
}
END_TEST

/* An event for two learners waits for both of their queues. */
START_TEST(sched_several_keys)
{
	ADD_IN_ORDER(sc, 1, "u1", "u2");
	add(sc, 3, "u1", "u2", 0);
	add(sc, 4, "u2", NULL, 0);
	TAKES(sc, 1, 2);
	sched_finish(sc, 1);
	ck_assert_int_eq(take(sc), -1);	/* still behind 2 on u2 */
	sched_finish(sc, 2);
	TAKES(sc, 3);	/* 4 is behind 3 on u2 */
	sched_finish(sc, 3);
	TAKES(sc, 4);
}
END_TEST

/* A retry keeps its place: the others of its key wait for it. */
START_TEST(sched_retry_keeps_order)
{
	ADD_IN_ORDER(sc, 1, "k", "k");
	add(sc, 3, "other", NULL, 5000);
	TAKES(sc, 1);
	sched_requeue(sc, 1, 2000, NULL);
	ck_assert_int_eq(take(sc), -1);
	fake_now = 1999;
	ck_assert_int_eq(take(sc), -1);
	fake_now = 2000;
	TAKES(sc, 1);
	sched_finish(sc, 1);
	TAKES(sc, 2);
	fake_now = 5000;
	TAKES(sc, 3);
}
END_TEST

/* An old notification coming back (a replay) runs before younger ones of
 * its key, but never ahead of one already running. */
START_TEST(sched_late_old_notification)
{
	ADD_IN_ORDER(sc, 10, "k", "k");
	TAKES(sc, 10);
	add(sc, 5, "k", NULL, 0);
	ck_assert_int_eq(take(sc), -1);
	sched_finish(sc, 10);
	TAKES(sc, 5);
	sched_finish(sc, 5);
	TAKES(sc, 11);
	sched_finish(sc, 11);

	/* Nothing running: it goes first, and displaces the head. */
	add(sc, 20, "j", NULL, 0);
	add(sc, 15, "j", NULL, 0);
	TAKES(sc, 15);
}
END_TEST

START_TEST(sched_known_and_payload)
{
	char *keys[] = { (char *)"k" };
	int payload = 7;
	void *got = NULL;
	bool taken;
	int64_t id;

	ck_assert_int_eq(sched_add(sc, 1, keys, 1, 0, &payload, &taken), 0);
	ck_assert(taken);
	ck_assert(sched_known(sc, 1));
	/* Known already: not added twice, the payload stays the caller's. */
	ck_assert_int_eq(sched_add(sc, 1, keys, 1, 0, &payload, &taken), 0);
	ck_assert(!taken);
	ck_assert_int_eq(sched_try_take(sc, &id, &got), 0);
	ck_assert_ptr_eq(got, &payload);
	sched_requeue(sc, 1, 0, NULL);
	ck_assert_int_eq(sched_try_take(sc, &id, &got), 0);
	ck_assert_ptr_null(got);
	sched_close(sc);
	ck_assert_int_eq(sched_try_take(sc, &id, &got), -ESHUTDOWN);
	ck_assert_int_eq(sched_take(sc, 1000000, &id, &got), -ESHUTDOWN);
}
END_TEST

/* Many notifications over few keys: each key's order holds, whatever the
 * interleaving of takes and finishes. */
START_TEST(sched_many)
{
	int64_t last_done[8];
	int64_t running[64];
	size_t n_running = 0;
	int64_t id;
	size_t done = 0;
	unsigned seed = 1;

	memset(last_done, 0, sizeof(last_done));
	for (id = 1; id <= 2000; id++) {
		char key[8];

		snprintf(key, sizeof(key), "k%d", (int)(id % 8));
		add(sc, id, key, NULL, 0);
	}
	while (done < 2000) {
		int64_t t = take(sc);

		if (t > 0 && n_running < 64) {
			running[n_running++] = t;
			continue;
		}
		ck_assert_uint_gt(n_running, 0);
		seed = seed * 1103515245 + 12345;
		{
			size_t pick = (seed >> 16) % n_running;
			int64_t f = running[pick];

			ck_assert_int_gt(f, last_done[f % 8]);
			last_done[f % 8] = f;
			running[pick] = running[--n_running];
			sched_finish(sc, f);
			done++;
		}
	}
	ck_assert_uint_eq(sched_count(sc), 0);
}
END_TEST

static bool
busy(struct sched *s, const char *key)
{
	char *keys[1] = { (char *)key };

	return sched_keys_busy(s, keys, 1);
}

/* Released (done, its outcome not yet on disk): the next of its keys may
 * run, but its keys stay busy for a notification that would run in the
 * transaction that stores it, until the outcome is written. */
START_TEST(sched_released_holds_keys)
{
	add(sc, 1, "u1", "u2", 0);
	ck_assert(!busy(sc, "u3"));
	ck_assert(busy(sc, "u1"));
	TAKES(sc, 1);
	sched_release(sc, 1);
	ck_assert(busy(sc, "u1"));
	ck_assert(busy(sc, "u2"));
	ck_assert(sched_known(sc, 1));

	/* The next of a key runs at once; finishing it leaves the hold. */
	add(sc, 2, "u2", NULL, 0);
	TAKES(sc, 2);
	sched_finish(sc, 2);
	ck_assert(busy(sc, "u2"));

	/* A release twice, or of one not running, changes nothing. */
	sched_release(sc, 1);
	sched_release(sc, 99);
	sched_finish(sc, 1);
	ck_assert(!busy(sc, "u1"));
	ck_assert(!busy(sc, "u2"));
	ck_assert(!sched_known(sc, 1));
	ck_assert_uint_eq(sched_count(sc), 0);

	/* A held group that empties and fills again keeps its order. */
	add(sc, 3, "u1", NULL, 0);
	TAKES(sc, 3);
	sched_release(sc, 3);
	ADD_IN_ORDER(sc, 4, "u1", "u1");
	TAKES(sc, 4);
	sched_release(sc, 4);
	TAKES(sc, 5);
	sched_finish(sc, 4);
	sched_finish(sc, 3);
	ck_assert(busy(sc, "u1"));	/* 5 still runs */
	sched_finish(sc, 5);
	ck_assert(!busy(sc, "u1"));
	/* Every group is gone once nothing holds it. */
	ck_assert_uint_eq(sched_group_count(sc), 0);

	/* A key given twice is held once. */
	add(sc, 6, "u1", "u1", 0);
	TAKES(sc, 6);
	sched_release(sc, 6);
	ck_assert_uint_eq(sched_group_count(sc), 1);
	sched_finish(sc, 6);
	ck_assert_uint_eq(sched_group_count(sc), 0);

	/* Left held: the fixture frees it so (valgrind and ASan check). */
	add(sc, 7, "u1", NULL, 0);
	TAKES(sc, 7);
	sched_release(sc, 7);
}
END_TEST

/* A taker blocked in sched_take() on its own thread. */
struct taker {
	pthread_t thread;
	pid_t tid;		/* set before it takes */
	_Atomic int64_t took;	/* the id taken, 0 until then */
};

static void *
taker_main(void *arg)
{
	struct taker *t = arg;
	int64_t id;
	void *payload;

	__atomic_store_n(&t->tid, (pid_t)syscall(SYS_gettid),
			 __ATOMIC_SEQ_CST);
	if (sched_take(sc, 10 * 1000000LL, &id, &payload) == 0)
		t->took = id;
	return NULL;
}

/* Whether thread @p tid of this process sleeps (in sched_take()'s wait:
 * the only place the taker sleeps). */
static bool
sleeping(pid_t tid)
{
	char path[64], line[512];
	const char *state;
	FILE *f;
	bool yes = false;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fgets(line, sizeof(line), f) != NULL &&
	    (state = strrchr(line, ')')) != NULL)
		yes = state[1] == ' ' && state[2] == 'S';
	fclose(f);
	return yes;
}

static void
start_taker(struct taker *t)
{
	int i;

	memset(t, 0, sizeof(*t));
	ck_assert_int_eq(pthread_create(&t->thread, NULL, taker_main, t), 0);
	for (i = 0; i < 10000; i++) {
		pid_t tid = __atomic_load_n(&t->tid, __ATOMIC_SEQ_CST);

		if (tid != 0 && sleeping(tid))
			return;
		usleep(1000);
	}
	ck_abort_msg("the taker never waited");
}

/* Join @p t, which must have taken within 2 s (real time). */
static void
joined_soon(struct taker *t)
{
	int64_t start = now_monotonic_us();

	pthread_join(t->thread, NULL);
	ck_assert_msg(now_monotonic_us() - start < 2 * 1000000LL,
		      "the taker was not woken: it took after its own wait");
	ck_assert_int_ne(t->took, 0);
}

static void *
add_4(void *arg)
{
	add(sc, 4, "u4", NULL, 0);
	return NULL;
}

/* Held wake-ups: what the holding thread makes runnable wakes no
 * waiting taker until the release, which wakes one per notification;
 * holds nest. */
START_TEST(sched_held_wakes_wait_for_the_release)
{
	struct taker a, b;
	pthread_t adder;

	start_taker(&a);
	start_taker(&b);
	sched_hold_wakes(sc);
	sched_hold_wakes(sc);
	add(sc, 1, "u1", NULL, 0);
	add(sc, 2, "u2", NULL, 0);
	usleep(100 * 1000);
	ck_assert_int_eq(a.took, 0);
	ck_assert_int_eq(b.took, 0);
	sched_release_wakes(sc);	/* still held once */
	usleep(100 * 1000);
	ck_assert_int_eq(a.took + b.took, 0);
	sched_release_wakes(sc);
	/* Each woken by the release, each took one: well before the
	 * takers' own wait runs out (10 s; check's timeout is off under
	 * valgrind). */
	joined_soon(&a);
	joined_soon(&b);
	ck_assert_int_eq(a.took + b.took, 3);
	ck_assert_int_ne(a.took, b.took);

	/* Not held: an add wakes a taker at once. */
	start_taker(&a);
	add(sc, 3, "u3", NULL, 0);
	joined_soon(&a);
	ck_assert_int_eq(a.took, 3);

	/* Held by this thread: another thread's add wakes a taker at
	 * once all the same. */
	sched_hold_wakes(sc);
	start_taker(&a);
	ck_assert_int_eq(pthread_create(&adder, NULL, add_4, NULL), 0);
	pthread_join(adder, NULL);
	joined_soon(&a);
	ck_assert_int_eq(a.took, 4);
	sched_release_wakes(sc);
	sched_finish(sc, 1);
	sched_finish(sc, 2);
	sched_finish(sc, 3);
	sched_finish(sc, 4);
}
END_TEST

START_TEST(sched_backoff)
{
	struct retry_policy c = {
		.delay_us = 1000000,
		.max_delay_us = 3600 * 1000000LL,
	};

	/* Equal jitter: between half and all of 1 s, 2 s, 4 s ... */
	ck_assert_int_eq(retry_delay(&c, 1, 0.0), 500000);
	ck_assert_int_eq(retry_delay(&c, 1, 0.999999), 999999);
	ck_assert_int_eq(retry_delay(&c, 2, 0.0), 1000000);
	ck_assert_int_eq(retry_delay(&c, 3, 0.5), 3000000);
	ck_assert_int_eq(retry_delay(&c, 10, 0.0), 256000000);
	/* Capped. */
	ck_assert_int_eq(retry_delay(&c, 13, 0.0), 1800000000LL);
	ck_assert_int_eq(retry_delay(&c, 1000, 0.0), 1800000000LL);
}
END_TEST

/* What a shared store's claims take ahead next (least 8, most 128). */
START_TEST(claim_ahead_adapts)
{
	static const struct {
		size_t ahead, held;
		bool filled;
		size_t next;
	} cases[] = {
		{ 0, 0, false, 8 },	/* at first: the least */
		{ 8, 0, true, 16 },	/* ran out of all it brought */
		{ 64, 0, true, 128 },
		{ 128, 0, true, 128 },	/* no more than the most */
		{ 100, 0, true, 128 },
		{ 500, 0, true, 128 },	/* brought down to the most */
		{ 64, 1, true, 64 },	/* still some held: as it is */
		{ 64, 31, true, 64 },
		{ 64, 32, true, 32 },	/* half held: half as much */
		{ 64, 500, true, 32 },
		{ 16, 8, true, 8 },
		{ 8, 8, true, 8 },	/* no less than the least */
		{ 64, 0, false, 32 },	/* found less: half as much */
		{ 128, 3, false, 64 },
		{ 8, 0, false, 8 },
		{ 3, 0, true, 16 },	/* brought up to the least first */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(claim_ahead_next(cases[i].ahead, cases[i].held,
					       cases[i].filled, 8, 128) ==
			      cases[i].next, "case %zu: %zu", i,
			      claim_ahead_next(cases[i].ahead, cases[i].held,
					       cases[i].filled, 8, 128));
	/* A window smaller than the least: least and most alike. */
	ck_assert_uint_eq(claim_ahead_next(100, 0, true, 100, 100), 100);
	ck_assert_uint_eq(claim_ahead_next(100, 100, true, 100, 100), 100);
}
END_TEST

TEST_SUITE(scheduler)
{
	ADD_EACH_WITH_FIXTURE(s, scheduler, sched_setup, sched_teardown,
			      sched_one_key_in_order,
			      sched_unrelated_in_parallel,
			      sched_several_keys,
			      sched_retry_keeps_order,
			      sched_late_old_notification,
			      sched_known_and_payload,
			      sched_many,
			      sched_released_holds_keys,
			      sched_held_wakes_wait_for_the_release);
	ADD_EACH(s, scheduler, sched_backoff, claim_ahead_adapts);
}
