/*
 * The scheduler, on a fake clock: order within a key, parallelism across
 * keys, notifications with several keys, retries at their time, a late
 * (replayed) notification, released ones holding their keys, and the
 * retry backoff.
 */
#include <string.h>

#include "dispatch/dispatch.h"
#include "dispatch/scheduler.h"
#include "test-common.h"

static int64_t fake_now;

static int64_t
fake_clock(void *arg)
{
	return fake_now;
}

static struct sched *
new_sched(void)
{
	struct sched *s = sched_new(fake_clock, NULL);

	ck_assert_ptr_nonnull(s);
	fake_now = 1000;
	return s;
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

/* The id a worker would take now, or -1. */
static int64_t
take(struct sched *s)
{
	void *payload;
	int64_t id;

	return sched_try_take(s, &id, &payload) == 0 ? id : -1;
}

START_TEST(sched_one_key_in_order)
{
	struct sched *s = new_sched();

	add(s, 1, "lc:c|u", NULL, 0);
	add(s, 2, "lc:c|u", NULL, 0);
	add(s, 3, "lc:c|u", NULL, 0);
	ck_assert_int_eq(take(s), 1);
	/* Never two of one key at a time. */
	ck_assert_int_eq(take(s), -1);
	sched_finish(s, 1);
	ck_assert_int_eq(take(s), 2);
	ck_assert_int_eq(take(s), -1);
	sched_finish(s, 2);
	ck_assert_int_eq(take(s), 3);
	sched_finish(s, 3);
	ck_assert_uint_eq(sched_count(s), 0);
	sched_free(s, NULL);
}
END_TEST

START_TEST(sched_unrelated_in_parallel)
{
	struct sched *s = new_sched();

	add(s, 1, "a", NULL, 0);
	add(s, 2, "b", NULL, 0);
	add(s, 3, "a", NULL, 0);
	add(s, 4, "c", NULL, 0);
	/* Oldest first among those that may run. */
	ck_assert_int_eq(take(s), 1);
	ck_assert_int_eq(take(s), 2);
	ck_assert_int_eq(take(s), 4);
	ck_assert_int_eq(take(s), -1);
	sched_finish(s, 1);
	ck_assert_int_eq(take(s), 3);
	sched_free(s, NULL);
}
END_TEST

/* An event for two learners waits for both of their queues. */
START_TEST(sched_several_keys)
{
	struct sched *s = new_sched();

	add(s, 1, "u1", NULL, 0);
	add(s, 2, "u2", NULL, 0);
	add(s, 3, "u1", "u2", 0);
	add(s, 4, "u2", NULL, 0);
	ck_assert_int_eq(take(s), 1);
	ck_assert_int_eq(take(s), 2);
	ck_assert_int_eq(take(s), -1);
	sched_finish(s, 1);
	ck_assert_int_eq(take(s), -1);	/* still behind 2 on u2 */
	sched_finish(s, 2);
	ck_assert_int_eq(take(s), 3);
	ck_assert_int_eq(take(s), -1);	/* 4 is behind 3 on u2 */
	sched_finish(s, 3);
	ck_assert_int_eq(take(s), 4);
	sched_free(s, NULL);
}
END_TEST

/* A retry keeps its place: the others of its key wait for it. */
START_TEST(sched_retry_keeps_order)
{
	struct sched *s = new_sched();

	add(s, 1, "k", NULL, 0);
	add(s, 2, "k", NULL, 0);
	add(s, 3, "other", NULL, 5000);
	ck_assert_int_eq(take(s), 1);
	sched_requeue(s, 1, 2000, NULL);
	ck_assert_int_eq(take(s), -1);
	fake_now = 1999;
	ck_assert_int_eq(take(s), -1);
	fake_now = 2000;
	ck_assert_int_eq(take(s), 1);
	sched_finish(s, 1);
	ck_assert_int_eq(take(s), 2);
	ck_assert_int_eq(take(s), -1);
	fake_now = 5000;
	ck_assert_int_eq(take(s), 3);
	sched_free(s, NULL);
}
END_TEST

/* An old notification coming back (a replay) runs before younger ones of
 * its key, but never ahead of one already running. */
START_TEST(sched_late_old_notification)
{
	struct sched *s = new_sched();

	add(s, 10, "k", NULL, 0);
	add(s, 11, "k", NULL, 0);
	ck_assert_int_eq(take(s), 10);
	add(s, 5, "k", NULL, 0);
	ck_assert_int_eq(take(s), -1);
	sched_finish(s, 10);
	ck_assert_int_eq(take(s), 5);
	sched_finish(s, 5);
	ck_assert_int_eq(take(s), 11);
	sched_finish(s, 11);

	/* Nothing running: it goes first, and displaces the head. */
	add(s, 20, "j", NULL, 0);
	add(s, 15, "j", NULL, 0);
	ck_assert_int_eq(take(s), 15);
	ck_assert_int_eq(take(s), -1);
	sched_free(s, NULL);
}
END_TEST

START_TEST(sched_known_and_payload)
{
	struct sched *s = new_sched();
	char *keys[] = { (char *)"k" };
	int payload = 7;
	void *got = NULL;
	bool taken;
	int64_t id;

	ck_assert_int_eq(sched_add(s, 1, keys, 1, 0, &payload, &taken), 0);
	ck_assert(taken);
	ck_assert(sched_known(s, 1));
	/* Known already: not added twice, the payload stays the caller's. */
	ck_assert_int_eq(sched_add(s, 1, keys, 1, 0, &payload, &taken), 0);
	ck_assert(!taken);
	ck_assert_int_eq(sched_try_take(s, &id, &got), 0);
	ck_assert_ptr_eq(got, &payload);
	sched_requeue(s, 1, 0, NULL);
	ck_assert_int_eq(sched_try_take(s, &id, &got), 0);
	ck_assert_ptr_null(got);
	sched_close(s);
	ck_assert_int_eq(sched_try_take(s, &id, &got), -ESHUTDOWN);
	ck_assert_int_eq(sched_take(s, 1000000, &id, &got), -ESHUTDOWN);
	sched_free(s, NULL);
}
END_TEST

/* Many notifications over few keys: each key's order holds, whatever the
 * interleaving of takes and finishes. */
START_TEST(sched_many)
{
	struct sched *s = new_sched();
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
		add(s, id, key, NULL, 0);
	}
	while (done < 2000) {
		int64_t t = take(s);

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
			sched_finish(s, f);
			done++;
		}
	}
	ck_assert_uint_eq(sched_count(s), 0);
	sched_free(s, NULL);
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
	struct sched *s = new_sched();

	add(s, 1, "u1", "u2", 0);
	ck_assert(!busy(s, "u3"));
	ck_assert(busy(s, "u1"));
	ck_assert_int_eq(take(s), 1);
	sched_release(s, 1);
	ck_assert(busy(s, "u1"));
	ck_assert(busy(s, "u2"));
	ck_assert(sched_known(s, 1));

	/* The next of a key runs at once; finishing it leaves the hold. */
	add(s, 2, "u2", NULL, 0);
	ck_assert_int_eq(take(s), 2);
	sched_finish(s, 2);
	ck_assert(busy(s, "u2"));

	/* A release twice, or of one not running, changes nothing. */
	sched_release(s, 1);
	sched_release(s, 99);
	sched_finish(s, 1);
	ck_assert(!busy(s, "u1"));
	ck_assert(!busy(s, "u2"));
	ck_assert(!sched_known(s, 1));
	ck_assert_uint_eq(sched_count(s), 0);

	/* A held group that empties and fills again keeps its order. */
	add(s, 3, "u1", NULL, 0);
	ck_assert_int_eq(take(s), 3);
	sched_release(s, 3);
	add(s, 4, "u1", NULL, 0);
	add(s, 5, "u1", NULL, 0);
	ck_assert_int_eq(take(s), 4);
	ck_assert_int_eq(take(s), -1);
	sched_release(s, 4);
	ck_assert_int_eq(take(s), 5);
	sched_finish(s, 4);
	sched_finish(s, 3);
	ck_assert(busy(s, "u1"));	/* 5 still runs */
	sched_finish(s, 5);
	ck_assert(!busy(s, "u1"));
	/* Every group is gone once nothing holds it. */
	ck_assert_uint_eq(sched_group_count(s), 0);

	/* A key given twice is held once. */
	add(s, 6, "u1", "u1", 0);
	ck_assert_int_eq(take(s), 6);
	sched_release(s, 6);
	ck_assert_uint_eq(sched_group_count(s), 1);
	sched_finish(s, 6);
	ck_assert_uint_eq(sched_group_count(s), 0);

	/* Freed while a group is held (valgrind and ASan check). */
	add(s, 7, "u1", NULL, 0);
	ck_assert_int_eq(take(s), 7);
	sched_release(s, 7);
	sched_free(s, NULL);
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

TEST_SUITE_OF(scheduler,
	sched_one_key_in_order,
	sched_unrelated_in_parallel,
	sched_several_keys,
	sched_retry_keeps_order,
	sched_late_old_notification,
	sched_known_and_payload,
	sched_many,
	sched_released_holds_keys,
	sched_backoff)
