/*
 * A notification's run through its handlers (see dispatch.h, "runs").
 */
#include "dispatch/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "metrics.h"
#include "log.h"
#include "util.h"

struct run *
run_new(const struct handler_registry *reg, struct store_work *w)
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
			const struct store_outcome *o = &w->outcomes[k];

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
	store_work_free(w);
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
	store_work_free(r->w);
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
	const struct store_work *w = r->w;
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
run_call_next(struct run *r, struct whr_tx *tx, struct metrics *metrics)
{
	struct run_handler *h = &r->h[r->next++];
	const struct store_work *w = r->w;
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
		.tx = tx,
	};
	struct whr_event ev;
	enum whr_result result;
	int64_t start = now_monotonic_us();

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
	metrics_handler_run(metrics, h->entry, w->action, result,
			    now_monotonic_us() - start);
	log_result(r, h);
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
run_from_delivery(const struct handler_registry *reg,
		  const struct ingest_delivery *d, size_t i, char *const *keys,
		  size_t n_keys)
{
	const struct ingest_notification *n = &d->notifications[i];
	size_t json_len = n->json_end - n->json_start;
	size_t props_len = d->has_properties
				   ? d->properties_end - d->properties_start
				   : 0;
	size_t size = n_keys * sizeof(char *) + strlen(d->receiver_id) + 1 +
		      json_len + 1 + props_len + 1;
	struct store_work *w = calloc(1, sizeof(*w));
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
	return run_new(reg, w);
}
