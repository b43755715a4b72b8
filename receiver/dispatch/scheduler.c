/*
 * The scheduler (see scheduler.h).
 *
 * Each key is a group: a list of its notifications in id order. A
 * notification is eligible when it heads every group it belongs to. An
 * eligible one waits in a heap by time until next_at, then in a heap by
 * id until a worker takes it. Taken ones stay at the head of their groups
 * until they finish or are released, which keeps the others of their
 * keys waiting. A released one (done, its outcome not yet on disk) has
 * left its groups but still holds them, so that sched_keys_busy() sees
 * its keys until it finishes.
 *
 * Groups are found by key and entries by id in hash tables; every
 * function here but the public ones is called with the lock held.
 */
#include "dispatch/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "util.h"

enum entry_state {
	ENTRY_WAITING,		/* behind an older one of a key */
	ENTRY_TIMED,		/* eligible, later */
	ENTRY_READY,		/* eligible now */
	ENTRY_RUNNING,		/* taken by a worker */
	ENTRY_RELEASED,		/* done, its outcome not yet on disk */
};

struct group;
struct entry;

struct membership {
	struct entry *entry;
	struct group *group;
	TAILQ_ENTRY(membership) link;	/* in the group, by id */
};

TAILQ_HEAD(membership_list, membership);

struct group {
	char *key;
	size_t hash;
	struct group *next_in_bucket;
	struct membership_list members;	/* by id; the first may run */
	size_t held;		/* released entries of it, not yet finished */
};

struct entry {
	int64_t id;
	int64_t next_at;
	void *payload;
	enum entry_state state;
	size_t heap_pos;
	struct entry *next_in_bucket;
	struct membership *members;
	size_t n_members;
	size_t n_held;		/* released: members[] name the groups held */
};

struct heap {
	struct entry **v;
	size_t n, cap;
	bool by_time;		/* (next_at, id), else id */
};

struct table {
	void **buckets;		/* struct group * or struct entry * */
	size_t n_buckets;
	size_t n;
};

struct sched {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	sched_clock_fn clock;
	void *clock_arg;
	struct table groups;
	struct table entries;
	struct heap timed;
	struct heap ready;
	bool closed;
};

/* sched_hold_wakes(): the scheduler this thread holds (one at a time),
 * how deep, and the wake-ups it owes. A thread's own: no lock. */
static __thread struct sched *held_sched;
static __thread int held_depth;
static __thread size_t wakes_owed;

/* ---- heaps and hash tables ------------------------------------------- */

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

static int
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

static void
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

static size_t
sched_hash_key(const char *key)
{
	size_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return h;
}

static size_t
sched_hash_id(int64_t id)
{
	uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (size_t)(x ^ (x >> 32));
}

static void **
sched_bucket(struct table *t, size_t hash)
{
	return &t->buckets[hash & (t->n_buckets - 1)];
}

/* Keep at most one item per bucket on average. Items carry their hash
 * (groups) or id (entries); @p next_of gives the chain link. */
static int
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

static struct entry *
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

static void
sched_unlink_entry(struct sched *s, struct entry *e)
{
	struct entry **p = (struct entry **)sched_bucket(&s->entries, sched_hash_id(e->id));

	while (*p != e)
		p = &(*p)->next_in_bucket;
	*p = e->next_in_bucket;
	s->entries.n--;
}

/* A new item of @p size bytes, zeroed, once table @p t has room for it;
 * NULL when out of memory. */
static void *
table_new_item(struct table *t, bool groups, size_t size)
{
	if (sched_table_grow(t, groups) < 0)
		return NULL;
	return calloc(1, size);
}

static struct group *
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
	g = table_new_item(&s->groups, true, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->key = strdup(key);
	if (g->key == NULL) {
		free(g);
		return NULL;
	}
	g->hash = hash;
	TAILQ_INIT(&g->members);
	b = sched_bucket(&s->groups, hash);
	g->next_in_bucket = *b;
	*b = g;
	s->groups.n++;
	return g;
}

static void
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

/* ---- eligibility ------------------------------------------------------ */

static int64_t
now(struct sched *s)
{
	return s->clock(s->clock_arg);
}

static struct membership *
first(const struct group *g)
{
	return TAILQ_FIRST(&g->members);
}

static bool
eligible(const struct entry *e)
{
	size_t i;

	for (i = 0; i < e->n_members; i++) {
		if (first(e->members[i].group) != &e->members[i])
			return false;
	}
	return true;
}

/* Put @p e where its eligibility and time say (it is not running). */
static void
place(struct sched *s, struct entry *e)
{
	enum entry_state want;

	if (!eligible(e))
		want = ENTRY_WAITING;
	else if (e->next_at <= now(s))
		want = ENTRY_READY;
	else
		want = ENTRY_TIMED;
	if (want == e->state)
		return;
	if (e->state == ENTRY_TIMED)
		sched_heap_remove(&s->timed, e);
	else if (e->state == ENTRY_READY)
		sched_heap_remove(&s->ready, e);
	e->state = ENTRY_WAITING;
	/* A failed push leaves it waiting; it is placed again when the
	 * one ahead of it finishes. */
	if (want == ENTRY_READY && sched_heap_push(&s->ready, e) == 0)
		e->state = ENTRY_READY;
	else if (want == ENTRY_TIMED && sched_heap_push(&s->timed, e) == 0)
		e->state = ENTRY_TIMED;
	/* One worker is enough for one notification. */
	if (e->state == ENTRY_WAITING)
		return;
	if (held_sched == s)
		wakes_owed++;
	else
		pthread_cond_signal(&s->cond);
}

/* Insert by id, but never ahead of a running one (a replayed old
 * notification goes behind the one in progress). */
static void
insert_member(struct group *g, struct membership *m)
{
	struct membership *after = TAILQ_LAST(&g->members, membership_list);

	while (after != NULL && after->entry->id > m->entry->id &&
	       !(after == first(g) && after->entry->state == ENTRY_RUNNING))
		after = TAILQ_PREV(after, membership_list, link);
	if (after != NULL)
		TAILQ_INSERT_AFTER(&g->members, after, m, link);
	else
		TAILQ_INSERT_HEAD(&g->members, m, link);
}

/* ---- public ----------------------------------------------------------- */

static int64_t
realtime_clock(void *arg)
{
	return now_realtime_us();
}

struct sched *
sched_new(sched_clock_fn clock, void *clock_arg)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (cond_init_monotonic(&s->cond) != 0) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->clock = clock != NULL ? clock : realtime_clock;
	s->clock_arg = clock_arg;
	s->timed.by_time = true;
	return s;
}

static void
free_entry(struct entry *e)
{
	free(e->members);
	free(e);
}

void
sched_free(struct sched *s, void (*free_payload)(void *payload))
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->entries.n_buckets; i++) {
		struct entry *e = s->entries.buckets[i];

		while (e != NULL) {
			struct entry *next = e->next_in_bucket;

			if (free_payload != NULL && e->payload != NULL)
				free_payload(e->payload);
			free_entry(e);
			e = next;
		}
	}
	for (i = 0; i < s->groups.n_buckets; i++) {
		struct group *g = s->groups.buckets[i];

		while (g != NULL) {
			struct group *next = g->next_in_bucket;

			free(g->key);
			free(g);
			g = next;
		}
	}
	free(s->entries.buckets);
	free(s->groups.buckets);
	free(s->timed.v);
	free(s->ready.v);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int
sched_add(struct sched *s, int64_t id, char *const *keys, size_t n_keys,
	  int64_t next_at, void *payload, bool *taken)
{
	struct entry *e;
	size_t i;
	void **b;
	int rc = -ENOMEM;

	*taken = false;
	pthread_mutex_lock(&s->lock);
	if (sched_find_entry(s, id) != NULL) {
		rc = 0;
		goto out;
	}
	e = table_new_item(&s->entries, false, sizeof(*e));
	if (e == NULL)
		goto out;
	e->members = calloc(n_keys ? n_keys : 1, sizeof(*e->members));
	if (e->members == NULL) {
		free(e);
		goto out;
	}
	e->id = id;
	e->next_at = next_at;
	e->payload = payload;
	e->state = ENTRY_WAITING;
	for (i = 0; i < n_keys; i++) {
		struct group *g = sched_find_group(s, keys[i], sched_hash_key(keys[i]),
					     true);
		struct membership *m = &e->members[e->n_members];
		size_t k;

		if (g == NULL)
			goto err_members;
		for (k = 0; k < e->n_members; k++) {
			if (e->members[k].group == g)
				break;	/* a key given twice counts once */
		}
		if (k < e->n_members)
			continue;
		m->entry = e;
		m->group = g;
		insert_member(g, m);
		e->n_members++;
		/* The one it displaced at the head (if any) must wait. */
		if (TAILQ_NEXT(m, link) != NULL && first(g) == m &&
		    TAILQ_NEXT(m, link)->entry->state != ENTRY_RUNNING)
			place(s, TAILQ_NEXT(m, link)->entry);
	}
	b = sched_bucket(&s->entries, sched_hash_id(id));
	e->next_in_bucket = *b;
	*b = e;
	s->entries.n++;
	place(s, e);
	*taken = true;
	rc = 0;
	goto out;

err_members:
	/* Undo the memberships made so far. */
	while (e->n_members > 0) {
		struct membership *m = &e->members[--e->n_members];
		struct group *g = m->group;

		TAILQ_REMOVE(&g->members, m, link);
		if (first(g) == NULL && g->held == 0)
			sched_drop_group(s, g);
		else if (first(g) != NULL &&
			 first(g)->entry->state != ENTRY_RUNNING)
			place(s, first(g)->entry);
	}
	free_entry(e);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* With the lock held: move due timers to ready, take the oldest ready. */
static bool
take_locked(struct sched *s, int64_t *id, void **payload)
{
	int64_t t = now(s);
	struct entry *e;

	while (s->timed.n > 0 && s->timed.v[0]->next_at <= t) {
		e = s->timed.v[0];
		sched_heap_remove(&s->timed, e);
		e->state = ENTRY_WAITING;
		if (sched_heap_push(&s->ready, e) == 0)
			e->state = ENTRY_READY;
	}
	if (s->ready.n == 0)
		return false;
	e = s->ready.v[0];
	sched_heap_remove(&s->ready, e);
	e->state = ENTRY_RUNNING;
	*id = e->id;
	*payload = e->payload;
	e->payload = NULL;
	return true;
}

int
sched_try_take(struct sched *s, int64_t *id, void **payload)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	if (s->closed)
		rc = -ESHUTDOWN;
	else
		rc = take_locked(s, id, payload) ? 0 : -EAGAIN;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
sched_take(struct sched *s, int64_t timeout_us, int64_t *id, void **payload)
{
	int64_t deadline = now(s) + timeout_us;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		int64_t t, wait_us;
		struct timespec ts;

		if (s->closed) {
			rc = -ESHUTDOWN;
			break;
		}
		if (take_locked(s, id, payload))
			break;
		t = now(s);
		if (t >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		wait_us = deadline - t;
		if (s->timed.n > 0 && s->timed.v[0]->next_at - t < wait_us)
			wait_us = s->timed.v[0]->next_at - t;
		ts = monotonic_timespec(now_monotonic_us() +
					(wait_us > 0 ? wait_us : 0));
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Lock the scheduler and find @p id's entry if it is running: NULL when
 * it is not (or not known). The caller unlocks. */
static struct entry *
lock_running(struct sched *s, int64_t id)
{
	struct entry *e;

	pthread_mutex_lock(&s->lock);
	e = sched_find_entry(s, id);
	return e != NULL && e->state == ENTRY_RUNNING ? e : NULL;
}

void
sched_requeue(struct sched *s, int64_t id, int64_t next_at, void *payload)
{
	struct entry *e = lock_running(s, id);

	if (e != NULL) {
		e->next_at = next_at;
		e->payload = payload;
		e->state = ENTRY_WAITING;
		place(s, e);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Leave every group, waking who is then at the head. */
static void
leave_groups(struct sched *s, struct entry *e)
{
	size_t i;

	for (i = 0; i < e->n_members; i++) {
		struct membership *m = &e->members[i];

		TAILQ_REMOVE(&m->group->members, m, link);
	}
	/* Then wake who is now at the head, once every link is gone. */
	for (i = 0; i < e->n_members; i++) {
		struct group *g = e->members[i].group;

		if (first(g) == NULL) {
			if (g->held == 0)
				sched_drop_group(s, g);
		} else if (first(g)->entry->state != ENTRY_RUNNING) {
			place(s, first(g)->entry);
		}
	}
	e->n_members = 0;
}

void
sched_release(struct sched *s, int64_t id)
{
	struct entry *e = lock_running(s, id);

	if (e != NULL) {
		size_t i;

		/* Its groups stay, held, so that sched_keys_busy() still
		 * sees its keys until its outcome is on disk. */
		for (i = 0; i < e->n_members; i++)
			e->members[i].group->held++;
		e->n_held = e->n_members;
		leave_groups(s, e);
		e->state = ENTRY_RELEASED;
	}
	pthread_mutex_unlock(&s->lock);
}

/* A released entry lets go of the groups it held. */
static void
unhold_groups(struct sched *s, struct entry *e)
{
	size_t i;

	for (i = 0; i < e->n_held; i++) {
		struct group *g = e->members[i].group;

		if (--g->held == 0 && first(g) == NULL)
			sched_drop_group(s, g);
	}
	e->n_held = 0;
}

void
sched_finish(struct sched *s, int64_t id)
{
	struct entry *e;

	pthread_mutex_lock(&s->lock);
	e = sched_find_entry(s, id);
	if (e == NULL)
		goto out;
	if (e->state == ENTRY_TIMED)
		sched_heap_remove(&s->timed, e);
	else if (e->state == ENTRY_READY)
		sched_heap_remove(&s->ready, e);
	leave_groups(s, e);
	unhold_groups(s, e);
	sched_unlink_entry(s, e);
	free_entry(e);
out:
	pthread_mutex_unlock(&s->lock);
}

bool
sched_keys_busy(struct sched *s, char *const *keys, size_t n_keys)
{
	bool busy = false;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < n_keys && !busy; i++) {
		const struct group *g = sched_find_group(s, keys[i],
						   sched_hash_key(keys[i]), false);

		busy = g != NULL && (first(g) != NULL || g->held > 0);
	}
	pthread_mutex_unlock(&s->lock);
	return busy;
}

bool
sched_known(struct sched *s, int64_t id)
{
	bool known;

	pthread_mutex_lock(&s->lock);
	known = sched_find_entry(s, id) != NULL;
	pthread_mutex_unlock(&s->lock);
	return known;
}

/* How many items table @p t of @p s holds now. */
static size_t
locked_count(struct sched *s, const struct table *t)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = t->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t
sched_count(struct sched *s)
{
	return locked_count(s, &s->entries);
}

/* Every entry, in no order: the one after @p e (NULL: the first), whose
 * bucket is *@p bucket; NULL after the last. Under the lock. */
static const struct entry *
next_entry(const struct sched *s, const struct entry *e, size_t *bucket)
{
	if (e == NULL)
		*bucket = 0;
	else if (e->next_in_bucket != NULL)
		return e->next_in_bucket;
	else
		++*bucket;
	for (; *bucket < s->entries.n_buckets; ++*bucket) {
		if (s->entries.buckets[*bucket] != NULL)
			return s->entries.buckets[*bucket];
	}
	return NULL;
}

int64_t
sched_min_id(struct sched *s)
{
	const struct entry *e;
	int64_t min = 0;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (e = next_entry(s, NULL, &i); e != NULL; e = next_entry(s, e, &i)) {
		if (min == 0 || e->id < min)
			min = e->id;
	}
	pthread_mutex_unlock(&s->lock);
	return min;
}

size_t
sched_ids(struct sched *s, int64_t *out, size_t max)
{
	const struct entry *e;
	size_t n = 0;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (e = next_entry(s, NULL, &i); e != NULL; e = next_entry(s, e, &i)) {
		if (n < max)
			out[n] = e->id;
		n++;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t
sched_group_count(struct sched *s)
{
	return locked_count(s, &s->groups);
}

void
sched_hold_wakes(struct sched *s)
{
	if (held_depth++ == 0)
		held_sched = s;
}

void
sched_release_wakes(struct sched *s)
{
	size_t owed;

	if (held_sched != s || --held_depth > 0)
		return;
	held_sched = NULL;
	owed = wakes_owed;
	wakes_owed = 0;
	/* A taker woken takes on until nothing is runnable; one signal
	 * wakes one taker at most, and costs next to nothing with none
	 * left waiting. */
	while (owed-- > 0)
		pthread_cond_signal(&s->cond);
}

void
sched_close(struct sched *s)
{
	pthread_mutex_lock(&s->lock);
	s->closed = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}
