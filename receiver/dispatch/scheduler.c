/*
 * The scheduler (see scheduler-private.h).
 *
 * Each key is a group: a list of its notifications in id order. A
 * notification is eligible when it heads every group it belongs to. An
 * eligible one waits in a heap by time until next_at, then in a heap by
 * id until a worker takes it. Taken ones stay at the head of their groups
 * until they finish or are released, which keeps the others of their
 * keys waiting. A released one (done, its outcome not yet on disk) has
 * left its groups but still holds them, so that sched_keys_busy() sees
 * its keys until it finishes.
 * The heaps and hash tables themselves are in scheduler-index.c.
 */
#include "dispatch/scheduler-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"


/* ---- eligibility ------------------------------------------------------ */

static int64_t
now(struct sched *s)
{
	return s->clock(s->clock_arg);
}

static bool
eligible(const struct entry *e)
{
	size_t i;

	for (i = 0; i < e->n_members; i++) {
		if (e->members[i].group->head != &e->members[i])
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
	if (e->state != ENTRY_WAITING)
		pthread_cond_signal(&s->cond);
}

/* Insert by id, but never ahead of a running one (a replayed old
 * notification goes behind the one in progress). */
static void
insert_member(struct group *g, struct membership *m)
{
	struct membership *after = g->tail;

	while (after != NULL && after->entry->id > m->entry->id &&
	       !(after == g->head && after->entry->state == ENTRY_RUNNING))
		after = after->prev;
	m->prev = after;
	m->next = after != NULL ? after->next : g->head;
	if (m->next != NULL)
		m->next->prev = m;
	else
		g->tail = m;
	if (after != NULL)
		after->next = m;
	else
		g->head = m;
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
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
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
	if (sched_table_grow(&s->entries, false) < 0)
		goto out;
	e = calloc(1, sizeof(*e));
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
		if (m->next != NULL && g->head == m &&
		    m->next->entry->state != ENTRY_RUNNING)
			place(s, m->next->entry);
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

		if (m->prev != NULL)
			m->prev->next = m->next;
		else
			g->head = m->next;
		if (m->next != NULL)
			m->next->prev = m->prev;
		else
			g->tail = m->prev;
		if (g->head == NULL && g->held == 0)
			sched_drop_group(s, g);
		else if (g->head != NULL &&
			 g->head->entry->state != ENTRY_RUNNING)
			place(s, g->head->entry);
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
		int64_t until;

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
		until = now_realtime_us() + (wait_us > 0 ? wait_us : 0);
		ts.tv_sec = (time_t)(until / 1000000);
		ts.tv_nsec = (long)(until % 1000000) * 1000;
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void
sched_requeue(struct sched *s, int64_t id, int64_t next_at, void *payload)
{
	struct entry *e;

	pthread_mutex_lock(&s->lock);
	e = sched_find_entry(s, id);
	if (e != NULL && e->state == ENTRY_RUNNING) {
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
		struct group *g = m->group;

		if (m->prev != NULL)
			m->prev->next = m->next;
		else
			g->head = m->next;
		if (m->next != NULL)
			m->next->prev = m->prev;
		else
			g->tail = m->prev;
	}
	/* Then wake who is now at the head, once every link is gone. */
	for (i = 0; i < e->n_members; i++) {
		struct group *g = e->members[i].group;

		if (g->head == NULL) {
			if (g->held == 0)
				sched_drop_group(s, g);
		} else if (g->head->entry->state != ENTRY_RUNNING) {
			place(s, g->head->entry);
		}
	}
	e->n_members = 0;
}

void
sched_release(struct sched *s, int64_t id)
{
	struct entry *e;

	pthread_mutex_lock(&s->lock);
	e = sched_find_entry(s, id);
	if (e != NULL && e->state == ENTRY_RUNNING) {
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

		if (--g->held == 0 && g->head == NULL)
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

		busy = g != NULL && (g->head != NULL || g->held > 0);
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

size_t
sched_count(struct sched *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->entries.n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void
sched_close(struct sched *s)
{
	pthread_mutex_lock(&s->lock);
	s->closed = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}
