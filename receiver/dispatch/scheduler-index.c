/*
 * The scheduler's indexes: two heaps of eligible entries (one by time,
 * one by id) and two hash tables (entries by id, groups by key).
 */
#include "dispatch/scheduler-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- heaps ----------------------------------------------------------- */

static bool
before(const struct heap *h, const struct entry *a, const struct entry *b)
{
	if (h->by_time && a->next_at != b->next_at)
		return a->next_at < b->next_at;
	return a->id < b->id;
}

static void
heap_set(struct heap *h, size_t i, struct entry *e)
{
	h->v[i] = e;
	e->heap_pos = i;
}

static void
heap_up(struct heap *h, size_t i)
{
	struct entry *e = h->v[i];

	while (i > 0 && before(h, e, h->v[(i - 1) / 2])) {
		heap_set(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(h, i, e);
}

static void
heap_down(struct heap *h, size_t i)
{
	struct entry *e = h->v[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(h, h->v[c + 1], h->v[c]))
			c++;
		if (!before(h, h->v[c], e))
			break;
		heap_set(h, i, h->v[c]);
		i = c;
	}
	heap_set(h, i, e);
}

int
sched_heap_push(struct heap *h, struct entry *e)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 64;
		struct entry **grown = realloc(h->v, cap * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		h->v = grown;
		h->cap = cap;
	}
	heap_set(h, h->n++, e);
	heap_up(h, h->n - 1);
	return 0;
}

void
sched_heap_remove(struct heap *h, struct entry *e)
{
	size_t i = e->heap_pos;
	struct entry *last = h->v[--h->n];

	if (i == h->n)
		return;
	heap_set(h, i, last);
	heap_up(h, i);
	heap_down(h, last->heap_pos);
}

/* ---- hash tables ------------------------------------------------------ */

size_t
sched_hash_key(const char *key)
{
	size_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return h;
}

size_t
sched_hash_id(int64_t id)
{
	uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (size_t)(x ^ (x >> 32));
}

void **
sched_bucket(struct table *t, size_t hash)
{
	return &t->buckets[hash & (t->n_buckets - 1)];
}

/* Keep at most one item per bucket on average. Items carry their hash
 * (groups) or id (entries); @p next_of gives the chain link. */
int
sched_table_grow(struct table *t, bool groups)
{
	size_t n = t->n_buckets ? 2 * t->n_buckets : 64;
	void **old = t->buckets;
	size_t old_n = t->n_buckets;
	size_t i;

	if (t->n < t->n_buckets)
		return 0;
	t->buckets = calloc(n, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		t->buckets = old;
		return old != NULL ? 0 : -ENOMEM;	/* keep working, slower */
	}
	t->n_buckets = n;
	for (i = 0; i < old_n; i++) {
		void *item = old[i];

		while (item != NULL) {
			void *next;
			void **b;

			if (groups) {
				struct group *g = item;

				next = g->next_in_bucket;
				b = sched_bucket(t, g->hash);
				g->next_in_bucket = *b;
			} else {
				struct entry *e = item;

				next = e->next_in_bucket;
				b = sched_bucket(t, sched_hash_id(e->id));
				e->next_in_bucket = *b;
			}
			*b = item;
			item = next;
		}
	}
	free(old);
	return 0;
}

struct entry *
sched_find_entry(struct sched *s, int64_t id)
{
	struct entry *e;

	if (s->entries.n_buckets == 0)
		return NULL;
	e = *sched_bucket(&s->entries, sched_hash_id(id));
	while (e != NULL && e->id != id)
		e = e->next_in_bucket;
	return e;
}

void
sched_unlink_entry(struct sched *s, struct entry *e)
{
	struct entry **p = (struct entry **)sched_bucket(&s->entries, sched_hash_id(e->id));

	while (*p != e)
		p = &(*p)->next_in_bucket;
	*p = e->next_in_bucket;
	s->entries.n--;
}

struct group *
sched_find_group(struct sched *s, const char *key, size_t hash, bool create)
{
	struct group *g = NULL;
	void **b;

	if (s->groups.n_buckets > 0) {
		g = *sched_bucket(&s->groups, hash);
		while (g != NULL && (g->hash != hash || strcmp(g->key, key) != 0))
			g = g->next_in_bucket;
	}
	if (g != NULL || !create)
		return g;
	if (sched_table_grow(&s->groups, true) < 0)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->key = strdup(key);
	if (g->key == NULL) {
		free(g);
		return NULL;
	}
	g->hash = hash;
	b = sched_bucket(&s->groups, hash);
	g->next_in_bucket = *b;
	*b = g;
	s->groups.n++;
	return g;
}

void
sched_drop_group(struct sched *s, struct group *g)
{
	struct group **p = (struct group **)sched_bucket(&s->groups, g->hash);

	while (*p != g)
		p = &(*p)->next_in_bucket;
	*p = g->next_in_bucket;
	s->groups.n--;
	free(g->key);
	free(g);
}
