/*
 * The receiver's SIGHUP and stop callbacks (whr_receiver_on_hangup,
 * whr_receiver_on_stop): what registration refuses, and a stop callback
 * called once, with the shutdown timeout, as a run stops.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <whr/whr.h>

#include "test-common.h"

struct seen {
	int calls;
	int64_t grace_us;
};

static void
on_hangup(void *userdata)
{
}

static void
on_stop(int64_t grace_us, void *userdata)
{
	struct seen *seen = userdata;

	seen->calls++;
	seen->grace_us = grace_us;
}

START_TEST(callbacks_refused)
{
	struct whr_receiver *r = whr_receiver_new();

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(whr_receiver_on_stop(NULL, on_stop, NULL), -EINVAL);
	ck_assert_int_eq(whr_receiver_on_stop(r, NULL, NULL), -EINVAL);
	ck_assert_int_eq(whr_receiver_on_hangup(NULL, on_hangup, NULL),
			 -EINVAL);
	ck_assert_int_eq(whr_receiver_on_hangup(r, NULL, NULL), -EINVAL);
	whr_receiver_free(r);
}
END_TEST

/* A stop asked for before the run: the run starts, stops at once, and
 * each stop callback is called once, in order, with the timeout. */
START_TEST(stop_callbacks_called_once_with_the_timeout)
{
	char dir[] = "/tmp/whr-test-callbacks-XXXXXX";
	char data[sizeof(dir) + 8];
	char rm[sizeof(dir) + 16];
	struct seen first = { 0 }, second = { 0 };
	struct whr_receiver *r = whr_receiver_new();

	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(data, sizeof(data), "%s/data", dir);
	ck_assert_int_eq(whr_receiver_set(r, "listen", "127.0.0.1:0"), 0);
	ck_assert_int_eq(whr_receiver_set(r, "data-dir", data), 0);
	ck_assert_int_eq(whr_receiver_set(r, "shutdown-timeout", "2500ms"),
			 0);
	ck_assert_int_eq(whr_receiver_set(r, "secrets",
					  "0123456789abcdef0123456789abcdef"),
			 0);
	ck_assert_int_eq(whr_receiver_on_stop(r, on_stop, &first), 0);
	ck_assert_int_eq(whr_receiver_on_stop(r, on_stop, &second), 0);
	whr_receiver_stop(r);
	ck_assert_int_eq(whr_receiver_run(r), 0);
	ck_assert_int_eq(first.calls, 1);
	ck_assert_int_eq(second.calls, 1);
	ck_assert_int_eq(first.grace_us, 2500000);
	ck_assert_int_eq(second.grace_us, 2500000);
	whr_receiver_free(r);
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(rm), 0);
}
END_TEST

TEST_SUITE_OF(callbacks,
	callbacks_refused,
	stop_callbacks_called_once_with_the_timeout)
