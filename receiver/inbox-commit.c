/*
 * What follows a batch's commit: its deliveries are answered, their new
 * notifications go to the scheduler (or wait on disk while the work
 * window is full: inbox-window.c), and the runs it recorded are settled.
 * Also the in-memory work of a new notification, so that neither a
 * worker nor a handler run in the delivery's transaction reads it back.
 */
#include "inbox-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "dispatch/run.h"
#include "dispatch/scheduler.h"
#include "util.h"

/* Once, as the inbox falls behind. */
void
inbox_log_behind(struct inbox *ib, int64_t waiting)
{
	whr_log(WHR_LOG_WARN,
		"%lld notifications wait on disk: the handlers are slower than deliveries (the work window of %zu is full; they run in arrival order as it empties)",
		(long long)waiting, ib->c.work_window);
}

/* Said once its state is committed (a failed batch is written again). */
static void
log_dead(const struct run *run)
{
	struct log_field fields[] = {
		LOG_INT("notification", run->w->id),
		LOG_STR("receiver", run->w->receiver_id),
		LOG_STR("delivery", run->w->delivery_id),
		LOG_STR("action", run->w->action),
		LOG_STR("reason", run->error),
	};

	log_fields(WHR_LOG_WARN, "notification is dead (whr inbox replay brings it back)",
		   fields, ARRAY_LENGTH(fields));
}

static char *
block_copy(char **p, const char *s, size_t n)
{
	char *here = *p;

	memcpy(here, s, n);
	here[n] = '\0';
	*p += n + 1;
	return here;
}

struct run *
inbox_fresh_run(struct inbox *ib, const struct ingest_delivery *d, size_t i,
		char **keys, size_t n_keys)
{
	const struct ingest_notification *n = &d->notifications[i];
	size_t json_len = n->json_end - n->json_start;
	size_t props_len = d->has_properties
				   ? d->properties_end - d->properties_start
				   : 0;
	size_t size = n_keys * sizeof(char *) + strlen(d->receiver_id) + 1 +
		      json_len + 1 + props_len + 1;
	struct stored_work *w = calloc(1, sizeof(*w));
	char *p;
	size_t k;

	for (k = 0; k < n_keys; k++)
		size += strlen(keys[k]) + 1;
	size += d->delivery_id != NULL ? strlen(d->delivery_id) + 1 : 0;
	size += n->action != NULL ? strlen(n->action) + 1 : 0;
	if (w == NULL || (w->block = malloc(size)) == NULL) {
		free(w);
		return NULL;
	}
	/* The pointers first: the block is aligned for them. */
	w->keys = w->block;
	p = (char *)(w->keys + n_keys);
	for (k = 0; k < n_keys; k++)
		w->keys[k] = block_copy(&p, keys[k], strlen(keys[k]));
	w->n_keys = n_keys;
	w->id = n->id;
	w->delivery_seq = d->seq;
	w->index = n->index;
	w->count = d->n_notifications;
	w->receiver_id = block_copy(&p, d->receiver_id, strlen(d->receiver_id));
	if (d->delivery_id != NULL)
		w->delivery_id = block_copy(&p, d->delivery_id,
					    strlen(d->delivery_id));
	if (n->action != NULL)
		w->action = block_copy(&p, n->action, strlen(n->action));
	w->attempt = d->attempt;
	w->received_at = d->received_at;
	w->retry_from = d->received_at;
	w->json_len = json_len;
	w->json = block_copy(&p, d->body + n->json_start, json_len);
	if (d->has_properties) {
		w->properties_len = props_len;
		w->properties = block_copy(&p, d->body + d->properties_start,
					   props_len);
	}
	w->state = WORK_PENDING;
	w->next_at = d->received_at;
	return run_new(ib->handlers, w);
}

/* New work that stays in the store only: the inbox is behind from it on.
 * A new row's id is above every row's there is (even when purged ids are
 * reused), so every open row below it is in memory: the refill starts
 * with this one. */
static void
leave_on_disk(struct inbox *ib, int64_t id)
{
	if (!ib->behind || id - 1 < ib->loaded_through)
		ib->loaded_through = id - 1;
	ib->behind = true;
}

/* Hand a stored delivery's notifications to the scheduler, or, when the
 * window is full or the inbox is behind, leave them in the store: see
 * inbox_refill(). @p open counts the notifications in memory. */
static void
schedule_stored(struct inbox *ib, struct ingest_job *job, size_t *open,
		int64_t *waiting)
{
	struct ingest_delivery *d = &job->d;
	size_t i;

	for (i = 0; i < d->n_notifications; i++) {
		struct ingest_notification *n = &d->notifications[i];
		char fallback[32];
		char *delivery_key = fallback;
		char **keys = n->keys;
		size_t n_keys = n->n_keys;
		struct run *run = n->run;
		bool fresh = run == NULL;
		int64_t next_at = d->received_at;
		bool taken = false;

		n->run = NULL;
		if (run != NULL && !run_has_next(run)) {
			/* Finished in the delivery's own transaction. */
			bool retry = run->w->state == WORK_RETRYING;

			next_at = run->w->next_at;
			if (run->w->state == WORK_DEAD)
				log_dead(run);
			run_free(run);
			run = NULL;
			if (!retry)
				continue;
			/* A retry reads its outcomes back from the store. */
		}
		if (ib->behind || *open >= ib->c.work_window) {
			run_free(run);
			leave_on_disk(ib, n->id);
			(*waiting)++;
			continue;
		}
		/* No learner and course: ordered within the delivery. */
		if (n_keys == 0) {
			snprintf(fallback, sizeof(fallback), "d:%lld",
				 (long long)d->seq);
			keys = &delivery_key;
			n_keys = 1;
		}
		if (fresh)
			run = inbox_fresh_run(ib, d, i, keys, n_keys);
		if (sched_add(ib->sched, n->id, keys, n_keys, next_at, run,
			      &taken) < 0) {
			/* Out of memory: the refill loads it later. */
			leave_on_disk(ib, n->id);
			(*waiting)++;
		}
		if (!taken)
			run_free(run);
		else
			(*open)++;
	}
}

void
inbox_after_commit(struct inbox *ib, struct ingest_job *jobs, struct run *runs,
		   int64_t now)
{
	struct ingest_job *job;
	bool was_behind = ib->behind;
	size_t open = jobs != NULL ? sched_count(ib->sched) : 0;
	int64_t waiting = 0;

	inbox_set_health(ib, true, NULL);
	for (job = jobs; job != NULL; job = job->next) {
		job->result = job->d.duplicate ? INGEST_DUPLICATE
					       : INGEST_STORED;
		if (!job->d.duplicate)
			schedule_stored(ib, job, &open, &waiting);
	}
	inbox_post_done(ib, jobs);
	if (!was_behind && ib->behind)
		inbox_log_behind(ib, waiting);
	while (runs != NULL) {
		struct run *next = runs->next_queued;
		int64_t id = runs->w->id;

		if (run_has_next(runs)) {
			/* The next handler is a worker's. */
			sched_requeue(ib->sched, id, now, runs);
		} else if (runs->w->state == WORK_RETRYING) {
			/* A retry reads its outcomes back from the store. */
			sched_requeue(ib->sched, id, runs->w->next_at, NULL);
			run_free(runs);
		} else {
			if (runs->w->state == WORK_DEAD)
				log_dead(runs);
			sched_finish(ib->sched, id);
			run_free(runs);
		}
		runs = next;
	}
}
