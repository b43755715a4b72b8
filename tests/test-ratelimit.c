/*
 * The rate limit on failures: a burst, then the rate; Retry-After the
 * seconds until a token is back; clients apart; a table that never
 * grows, the client seen least recently making room.
 */
#include <string.h>

#include "front/ratelimit.h"
#include "test-common.h"

#define SECOND 1000000LL

static struct netaddr
v4(unsigned a, unsigned b, unsigned c, unsigned d)
{
	struct netaddr n = { .len = 4 };

	n.bytes[0] = (uint8_t)a;
	n.bytes[1] = (uint8_t)b;
	n.bytes[2] = (uint8_t)c;
	n.bytes[3] = (uint8_t)d;
	return n;
}

static struct netaddr
v6(unsigned i)
{
	struct netaddr n = { .len = 16 };

	/* Clients apart: addresses in /64s of their own (one /64 is one
	 * client for the limit). */
	n.bytes[0] = 0x20;
	n.bytes[1] = 0x01;
	n.bytes[6] = (uint8_t)(i >> 8);
	n.bytes[7] = (uint8_t)i;
	n.bytes[15] = 1;
	return n;
}

START_TEST(ratelimit_burst_then_rate)
{
	struct ratelimit *rl = ratelimit_new(2, 3, 16);
	struct netaddr a = v4(192, 0, 2, 1), b = v4(192, 0, 2, 2);
	int64_t t = 100 * SECOND;
	unsigned wait = 0;
	int i;

	ck_assert_ptr_nonnull(rl);
	for (i = 0; i < 3; i++)
		ck_assert(ratelimit_fail(rl, &a, t, &wait));
	ck_assert(!ratelimit_fail(rl, &a, t, &wait));
	/* Half a second to a token at 2 a second: rounded up. */
	ck_assert_uint_eq(wait, 1);
	/* Another client is not touched. */
	ck_assert(ratelimit_fail(rl, &b, t, &wait));
	/* A token every half second, no more. */
	ck_assert(!ratelimit_fail(rl, &a, t + SECOND / 4, &wait));
	ck_assert(ratelimit_fail(rl, &a, t + SECOND / 2, &wait));
	ck_assert(!ratelimit_fail(rl, &a, t + SECOND / 2, &wait));
	/* Refused failures take nothing: after a long wait, the whole
	 * burst again, never more. */
	t += 60 * SECOND;
	for (i = 0; i < 3; i++)
		ck_assert(ratelimit_fail(rl, &a, t, &wait));
	ck_assert(!ratelimit_fail(rl, &a, t, &wait));
	/* Time that goes backwards (it is monotonic; still) adds none. */
	ck_assert(!ratelimit_fail(rl, &a, t - SECOND, &wait));
	ck_assert_uint_eq(ratelimit_clients(rl), 2);
	ratelimit_free(rl);
}
END_TEST

START_TEST(ratelimit_retry_after)
{
	/* 6 a minute: a token every 10 s. */
	struct ratelimit *rl = ratelimit_new(0.1, 1, 4);
	struct netaddr a = v6(1);
	unsigned wait = 0;

	ck_assert_ptr_nonnull(rl);
	ck_assert(ratelimit_fail(rl, &a, 0, &wait));
	ck_assert(!ratelimit_fail(rl, &a, 0, &wait));
	ck_assert_uint_eq(wait, 10);
	ck_assert(!ratelimit_fail(rl, &a, 2500000, &wait));
	ck_assert_uint_eq(wait, 8);	/* 7.5 s, rounded up */
	ck_assert(ratelimit_fail(rl, &a, 10 * SECOND, &wait));
	ratelimit_free(rl);
}
END_TEST

START_TEST(ratelimit_table_is_bounded)
{
	struct ratelimit *rl = ratelimit_new(1, 2, 8);
	struct netaddr limited = v4(198, 51, 100, 7);
	unsigned wait = 0;
	unsigned i;

	ck_assert_ptr_nonnull(rl);
	ck_assert(ratelimit_fail(rl, &limited, 0, &wait));
	ck_assert(ratelimit_fail(rl, &limited, 0, &wait));
	ck_assert(!ratelimit_fail(rl, &limited, 0, &wait));
	/* Seven others fill the table; the limited client, seen since,
	 * keeps its place. */
	for (i = 0; i < 7; i++) {
		struct netaddr n = v6(i);

		ck_assert(ratelimit_fail(rl, &n, 0, &wait));
	}
	ck_assert(!ratelimit_fail(rl, &limited, 0, &wait));
	ck_assert_uint_eq(ratelimit_clients(rl), 8);
	/* Thousands of addresses: the table stays at 8, each newcomer
	 * taking the place of the one seen least recently. */
	for (i = 100; i < 10000; i++) {
		struct netaddr n = v6(i);

		ck_assert(ratelimit_fail(rl, &n, 0, &wait));
		ck_assert(ratelimit_fail(rl, &n, 0, &wait));
		ck_assert(!ratelimit_fail(rl, &n, 0, &wait));
	}
	ck_assert_uint_eq(ratelimit_clients(rl), 8);
	/* The limited client was pushed out: it starts afresh. */
	ck_assert(ratelimit_fail(rl, &limited, 0, &wait));
	/* The most recent ones are still there, limited. */
	{
		struct netaddr last = v6(9999);

		ck_assert(!ratelimit_fail(rl, &last, 0, &wait));
	}
	ratelimit_free(rl);
}
END_TEST

START_TEST(ratelimit_bad_settings)
{
	ck_assert_ptr_null(ratelimit_new(0, 5, 16));
	ck_assert_ptr_null(ratelimit_new(-1, 5, 16));
	ck_assert_ptr_null(ratelimit_new(1, 0, 16));
	ck_assert_ptr_null(ratelimit_new(1, 5, 0));
	ratelimit_free(NULL);
}
END_TEST

TEST_SUITE_OF(ratelimit,
	ratelimit_burst_then_rate,
	ratelimit_retry_after,
	ratelimit_table_is_bounded,
	ratelimit_bad_settings)
