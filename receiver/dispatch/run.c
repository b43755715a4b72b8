/*
 * A notification's run through its handlers (see run-private.h).
 */
#include "dispatch/run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "log.h"
#include "util.h"

struct run *
run_new(const struct handler_registry *reg, struct stored_work *w)
{
	/* The run and its handlers in one allocation. */
	struct run *r = calloc(1, sizeof(*r) + (reg->n ? reg->n : 1) *
					      sizeof(*r->h));
	const struct handler_entry *on_stack[16];
	const struct handler_entry **selected = on_stack;
	size_t i, k;

	if (r == NULL)
		goto err;
	r->w = w;
	r->h = (struct run_handler *)(r + 1);
	if (reg->n > ARRAY_LENGTH(on_stack))
		selected = calloc(reg->n, sizeof(*selected));
	if (selected == NULL)
		goto err;
	r->n = handler_registry_select(reg, w->action, selected, reg->n);
	for (i = 0; i < r->n; i++) {
		r->h[i].entry = selected[i];
		/* Outcomes are kept by handler name: a handler that was done
		 * or rejected is never called again for this notification
		 * (until a replay clears its outcome). */
		for (k = 0; k < w->n_outcomes; k++) {
			const struct stored_outcome *o = &w->outcomes[k];

			if (o->handler != NULL &&
			    strcmp(o->handler, selected[i]->name) == 0 &&
			    o->result != WHR_RETRY) {
				r->h[i].finished_before = true;
				r->h[i].result = o->result;
			}
		}
	}
	if (selected != on_stack)
		free(selected);
	return r;
err:
	if (selected != on_stack)
		free(selected);
	free(r);
	stored_work_free(w);
	return NULL;
}

void
run_free(struct run *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		free(r->h[i].reason);
	stored_work_free(r->w);
	free(r);
}

bool
run_has_next(struct run *r)
{
	while (r->next < r->n && r->h[r->next].finished_before)
		r->next++;
	return r->next < r->n;
}

bool
run_wants_retry(const struct run *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (r->h[i].ran && r->h[i].result == WHR_RETRY)
			return true;
	}
	return false;
}

bool
run_next_is_transactional(const struct run *r)
{
	return r->next < r->n &&
	       (r->h[r->next].entry->flags & WHR_HANDLER_TRANSACTIONAL) != 0;
}

static void
log_result(const struct run *r, const struct run_handler *h)
{
	const struct stored_work *w = r->w;
	struct log_field fields[] = {
		LOG_STR("handler", h->entry->name),
		LOG_INT("notification", w->id),
		LOG_STR("receiver", w->receiver_id),
		LOG_STR("delivery", w->delivery_id),
		LOG_STR("action", w->action),
		LOG_INT("index", (int64_t)w->index),
		LOG_INT("run", w->runs + 1),
		LOG_STR("result", handler_result_name(h->result)),
		LOG_STR("reason", h->reason),
	};

	log_fields(h->result == WHR_DONE ? WHR_LOG_DEBUG : WHR_LOG_WARN,
		   "handler finished", fields, ARRAY_LENGTH(fields));
}

void
run_call_next(struct run *r, struct sqlite3 *db)
{
	struct run_handler *h = &r->h[r->next++];
	const struct stored_work *w = r->w;
	struct event_fields f = {
		.receiver_id = w->receiver_id,
		.delivery_id = w->delivery_id,
		.action = w->action,
		.attempt = w->attempt,
		.received_at = w->received_at,
		.index = w->index,
		.count = w->count,
		.json = w->json,
		.json_len = w->json_len,
		.properties = w->properties,
		.properties_len = w->properties_len,
		.db = db,
	};
	struct whr_event ev;
	enum whr_result result;

	event_init(&ev, &f);
	result = h->entry->fn(&ev, h->entry->userdata);
	if (result != WHR_DONE && result != WHR_RETRY && result != WHR_REJECT) {
		whr_event_set_reason(&ev,
				     "BUG: handler returned %d, not a whr_result",
				     (int)result);
		result = WHR_REJECT;
	}
	h->ran = true;
	h->result = result;
	free(h->reason);
	h->reason = NULL;
	if (result != WHR_DONE && event_reason(&ev) != NULL)
		h->reason = strdup(event_reason(&ev));
	event_finish(&ev);
	log_result(r, h);
}

int64_t
retry_delay(const struct inbox_config *c, int64_t run, double random01)
{
	int64_t delay = c->retry_delay_us;
	int64_t i;

	for (i = 1; i < run && delay < c->retry_max_delay_us; i++)
		delay *= 2;
	if (delay > c->retry_max_delay_us)
		delay = c->retry_max_delay_us;
	/* Equal jitter: never sooner than half, spread over the rest, so
	 * that many retries due together do not come back together. */
	return delay / 2 + (int64_t)((double)(delay - delay / 2) * random01);
}

enum work_state
run_outcome(struct run *r, const struct inbox_config *c, int64_t now,
	    double random01, int64_t *next_at, const char **error)
{
	const struct run_handler *retry = NULL;
	const struct run_handler *reject = NULL;
	size_t i;

	*next_at = now;
	*error = NULL;
	for (i = 0; i < r->n; i++) {
		const struct run_handler *h = &r->h[i];

		if (h->result == WHR_RETRY && h->ran && retry == NULL)
			retry = h;
		if (h->result == WHR_REJECT && reject == NULL)
			reject = h;
	}
	if (retry != NULL) {
		if (now - r->w->retry_from >= c->retry_max_age_us) {
			snprintf(r->error, sizeof(r->error),
				 "retries ran out (retry-max-age); %s: %s",
				 retry->entry->name,
				 retry->reason != NULL ? retry->reason
						       : "asked for a retry");
			*error = r->error;
			return WORK_DEAD;
		}
		*next_at = now + retry_delay(c, r->w->runs + 1, random01);
		snprintf(r->error, sizeof(r->error), "%s: %s",
			 retry->entry->name,
			 retry->reason != NULL ? retry->reason
					       : "asked for a retry");
		*error = r->error;
		return WORK_RETRYING;
	}
	if (reject != NULL) {
		snprintf(r->error, sizeof(r->error), "%s: %s",
			 reject->entry->name,
			 reject->reason != NULL ? reject->reason : "rejected");
		*error = r->error;
		return WORK_DEAD;
	}
	return WORK_DONE;
}
