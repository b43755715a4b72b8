/*
 * What scheduler.c (the rules: who may run when) and scheduler-index.c
 * (its heaps and hash tables) share. Every function here is called with
 * the scheduler's lock held.
 */
#ifndef WHR_RECEIVER_SCHEDULER_INTERNAL_H
#define WHR_RECEIVER_SCHEDULER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch/scheduler.h"

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
	struct membership *prev, *next;	/* in the group, by id */
};

struct group {
	char *key;
	size_t hash;
	struct group *next_in_bucket;
	struct membership *head, *tail;
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

/* Heaps of eligible entries: push is -ENOMEM or 0. */
int sched_heap_push(struct heap *h, struct entry *e);
void sched_heap_remove(struct heap *h, struct entry *e);
/* Hash tables: groups by key, entries by id. */
size_t sched_hash_key(const char *key);
size_t sched_hash_id(int64_t id);
void **sched_bucket(struct table *t, size_t hash);
int sched_table_grow(struct table *t, bool groups);
struct entry *sched_find_entry(struct sched *s, int64_t id);
void sched_unlink_entry(struct sched *s, struct entry *e);
struct group *sched_find_group(struct sched *s, const char *key, size_t hash,
			       bool create);
void sched_drop_group(struct sched *s, struct group *g);

#endif /* WHR_RECEIVER_SCHEDULER_INTERNAL_H */
