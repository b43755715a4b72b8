/*
 * The rate limit on failures (--rate-limit): a token bucket per client
 * address, in a table of fixed size allocated once. Each failure takes
 * a token; a client without one is over its limit until its bucket
 * refills. When the table is full, the client seen least recently gives
 * its place to a newcomer: memory never grows with the number of
 * addresses. A unit of the front (its own header for front.c and the
 * tests); one thread only, the event loop's.
 */
#ifndef WHR_RECEIVER_RATELIMIT_H
#define WHR_RECEIVER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

struct ratelimit;

/* A table of @p capacity clients (at least 1), each allowed @p rate
 * failures a second (above 0) on average and @p burst (at least 1) at
 * once. NULL when out of memory or a setting is out of range. */
struct ratelimit *ratelimit_new(double rate, unsigned burst,
				size_t capacity);
void ratelimit_free(struct ratelimit *rl);

/* A failure of @p client at @p now_us (monotonic): true when it was
 * within the limit (it took a token); false when the client is over it,
 * with the whole seconds until it may fail again in *@p retry_after_s
 * (at least 1). */
bool ratelimit_fail(struct ratelimit *rl, const struct netaddr *client,
		    int64_t now_us, unsigned *retry_after_s);

/* Clients in the table. */
size_t ratelimit_clients(const struct ratelimit *rl);

#endif /* WHR_RECEIVER_RATELIMIT_H */
