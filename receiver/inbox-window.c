/*
 * The inbox's work window: at most work_window open notifications are in
 * the scheduler; the rest wait in the store and are loaded in id order.
 */
#include "inbox-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "dispatch/run.h"
#include "dispatch/scheduler.h"
#include "util.h"
#include "dispatch/workers.h"

/* Open rows read from the store into the scheduler, without their work
 * (a worker loads it). */
struct load {
	struct inbox *ib;
	size_t room;		/* notifications the window still takes */
	int64_t through;	/* rows above it are not this load's */
	int64_t last;		/* the last row read (known or added) */
	int64_t n;		/* rows read */
	bool full;		/* stopped for want of room */
};

static int
load_one(int64_t id, char **keys, size_t n_keys, int64_t next_at,
	 void *arg)
{
	struct load *l = arg;
	bool taken = false;
	int rc;

	if (id > l->through)
		return 1;
	if (l->room == 0) {
		l->full = true;
		return 1;
	}
	rc = sched_add(l->ib->sched, id, keys, n_keys, next_at, NULL, &taken);
	if (rc < 0)
		return rc;
	l->last = id;
	l->n++;
	if (taken)
		l->room--;
	return 0;
}

size_t
inbox_window_room(struct inbox *ib)
{
	size_t open = sched_count(ib->sched);

	return open < ib->c.work_window ? ib->c.work_window - open : 0;
}

/* While behind, load the oldest waiting notifications into the window,
 * once it has room (below 3/4 full), until a load finds
 * fewer than it asked for: then every open notification is in memory
 * and new ones go there directly again.
 *
 * Strictly in id order, which is arrival order: rows above
 * loaded_through are loaded lowest first, and new ones wait behind them.
 * So of two notifications sharing a key, the older one is always in the
 * scheduler before (or with) the newer one, where it keeps the newer one
 * waiting until it is finished: the per-key order holds across the disk
 * and memory. (A replayed notification is older than the newest of its
 * keys; it is found by the rescan and ordered as replays always were.) */
void
inbox_refill(struct inbox *ib)
{
	struct load l = { .ib = ib, .through = INT64_MAX };
	size_t open;
	int64_t asked;
	int rc;

	if (!ib->behind || ib->store == NULL)
		return;
	/* Not for every notification that finishes: a load at a time. */
	open = sched_count(ib->sched);
	if (open >= ib->c.work_window / 4 * 3)
		return;
	l.room = ib->c.work_window - open;
	asked = (int64_t)l.room;
	l.last = ib->loaded_through;
	rc = store_each_open_after(ib->store, ib->loaded_through, asked,
				   load_one, &l);
	ib->loaded_through = l.last;
	if (rc < 0) {
		whr_log(WHR_LOG_WARN, "cannot load waiting work: %s",
			rc == -ENOMEM ? "out of memory"
				      : store_error(ib->store));
		return;
	}
	if (l.n < asked) {
		ib->behind = false;
		ib->loaded_through = INT64_MAX;
		whr_log(WHR_LOG_INFO,
			"the inbox caught up: every open notification is in memory again");
	}
}

/* Another process (whr inbox replay) changed the store: queue pending
 * work the scheduler does not know yet, as far as the window has room.
 * Replayed rows are older than those loaded, so they may come in below
 * loaded_through; those above it are the refill's. A rescan cut short
 * for room goes on from where it stopped, once there is room. */
static void
rescan(struct inbox *ib)
{
	struct load l = { .ib = ib };
	int rc;

	if (!ib->rescan)
		return;
	l.room = inbox_window_room(ib);
	if (l.room == 0)
		return;
	l.through = ib->loaded_through;
	l.last = ib->rescan_after;
	rc = store_each_open_after(ib->store, ib->rescan_after, -1, load_one,
				   &l);
	ib->rescan_after = l.last;
	if (rc < 0)
		whr_log(WHR_LOG_WARN, "cannot rescan the inbox: %s",
			rc == -ENOMEM ? "out of memory"
				      : store_error(ib->store));
	else if (!l.full)
		ib->rescan = false;
}

void
inbox_pick_up_changes(struct inbox *ib)
{
	int64_t version = store_data_version(ib->store);

	if (version != ib->data_version) {
		ib->data_version = version;
		ib->rescan = true;
		ib->rescan_after = 0;
	}
	rescan(ib);
}

/* The open work, in id order, as far as the window goes; the inbox is
 * behind when there is more. */
int
inbox_load_at_start(struct inbox *ib)
{
	struct load l = { .ib = ib, .through = INT64_MAX };
	int64_t waiting;
	int rc;

	ib->rescan = false;
	ib->waiting_at_start = 0;
	l.room = inbox_window_room(ib);
	rc = store_each_open_after(ib->store, 0, (int64_t)l.room, load_one,
				   &l);
	if (rc < 0)
		return rc;
	waiting = store_count_open_after(ib->store, l.last);
	if (waiting < 0)
		return (int)waiting;
	ib->behind = waiting > 0;
	ib->loaded_through = ib->behind ? l.last : INT64_MAX;
	ib->waiting_at_start = waiting;
	if (ib->behind)
		inbox_log_behind(ib, waiting);
	return 0;
}
