/*
 * The rate limit on failures (see ratelimit.h). The buckets live in one
 * array made at start, found through a hash table of chains (its heads
 * made at start too) and kept in order of use: a lookup moves its bucket
 * to the front, and a newcomer, once the array is full, takes the bucket
 * at the back. The hash is keyed with a random seed, so that nobody can
 * pick addresses that all fall in one chain.
 */
#include "front/ratelimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/queue.h>
#include <sys/random.h>

struct bucket {
	struct netaddr addr;
	double tokens;			/* as of at_us */
	int64_t at_us;
	LIST_ENTRY(bucket) chain;
	TAILQ_ENTRY(bucket) use;	/* most recent first */
};

LIST_HEAD(chain, bucket);

struct ratelimit {
	double per_us;			/* tokens a microsecond */
	double rate;			/* tokens a second */
	double burst;
	uint64_t seed;
	struct chain *heads;
	size_t mask;			/* heads - 1, a power of two less 1 */
	struct bucket *buckets;
	size_t capacity, used;
	TAILQ_HEAD(ratelimit_use, bucket) use;
};

/* The 64-bit finaliser of MurmurHash3: every input bit moves every
 * output bit. */
static uint64_t
mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static struct chain *
chain_of(const struct ratelimit *rl, const struct netaddr *a)
{
	uint64_t w[2] = { 0, 0 };

	memcpy(w, a->bytes, a->len <= sizeof(w) ? a->len : sizeof(w));
	return &rl->heads[mix(mix(rl->seed ^ w[0] ^ a->len) ^ w[1]) &
			  rl->mask];
}

static uint64_t
random_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) ==
	    (ssize_t)sizeof(seed))
		return seed;
	/* No entropy yet (early boot): less unpredictable, still works. */
	return mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
		   (uint64_t)(uintptr_t)&seed);
}

struct ratelimit *
ratelimit_new(double rate, unsigned burst, size_t capacity)
{
	struct ratelimit *rl;
	size_t heads = 1;

	if (!(rate > 0) || !isfinite(rate) || burst < 1 || capacity < 1 ||
	    capacity > SIZE_MAX / 4)
		return NULL;
	rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return NULL;
	/* About two heads a bucket: chains of one, mostly. */
	while (heads < 2 * capacity)
		heads *= 2;
	rl->heads = calloc(heads, sizeof(*rl->heads));
	rl->buckets = calloc(capacity, sizeof(*rl->buckets));
	if (rl->heads == NULL || rl->buckets == NULL) {
		ratelimit_free(rl);
		return NULL;
	}
	rl->mask = heads - 1;
	rl->capacity = capacity;
	rl->rate = rate;
	rl->per_us = rate / 1e6;
	rl->burst = burst;
	rl->seed = random_seed();
	TAILQ_INIT(&rl->use);
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	free(rl->heads);
	free(rl->buckets);
	free(rl);
}

/* The bucket of @p a, moved to the front; a full one for a newcomer. */
static struct bucket *
bucket_of(struct ratelimit *rl, const struct netaddr *a, int64_t now_us)
{
	struct chain *head = chain_of(rl, a);
	struct bucket *b;

	LIST_FOREACH(b, head, chain) {
		if (netaddr_equal(&b->addr, a)) {
			TAILQ_REMOVE(&rl->use, b, use);
			TAILQ_INSERT_HEAD(&rl->use, b, use);
			return b;
		}
	}
	if (rl->used < rl->capacity) {
		b = &rl->buckets[rl->used++];
	} else {
		/* The one seen least recently makes room. */
		b = TAILQ_LAST(&rl->use, ratelimit_use);
		TAILQ_REMOVE(&rl->use, b, use);
		LIST_REMOVE(b, chain);
	}
	b->addr = *a;
	b->tokens = rl->burst;
	b->at_us = now_us;
	LIST_INSERT_HEAD(head, b, chain);
	TAILQ_INSERT_HEAD(&rl->use, b, use);
	return b;
}

bool
ratelimit_fail(struct ratelimit *rl, const struct netaddr *client,
	       int64_t now_us, unsigned *retry_after_s)
{
	struct netaddr block;
	struct bucket *b;
	double wait_s;
	unsigned s;

	/* Counted by the block a client may take addresses from. */
	netaddr_client_block(client, &block);
	b = bucket_of(rl, &block, now_us);
	if (now_us > b->at_us) {
		b->tokens += (double)(now_us - b->at_us) * rl->per_us;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
		b->at_us = now_us;
	}
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return true;
	}
	/* Whole seconds, rounded up: a client that waits that long has a
	 * token again. */
	wait_s = (1 - b->tokens) / rl->rate;
	if (wait_s > 86400)
		wait_s = 86400;
	s = (unsigned)wait_s;
	*retry_after_s = s < wait_s || s == 0 ? s + 1 : s;
	return false;
}

size_t
ratelimit_clients(const struct ratelimit *rl)
{
	return rl->used;
}
