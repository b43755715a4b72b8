/*
 * The event handed to handlers: a view of one notification plus its
 * delivery's envelope. Every pointer in it is borrowed from whoever built
 * it; the JSON trees for field paths are parsed on first use.
 */
#ifndef WHR_RECEIVER_EVENT_H
#define WHR_RECEIVER_EVENT_H

#include <whr/event.h>
#include <whr/tx.h>

#include <yajl/yajl_tree.h>

struct event_fields {
	const char *receiver_id;
	const char *delivery_id;	/* may be NULL */
	const char *action;		/* may be NULL */
	int64_t attempt;
	int64_t received_at;		/* microseconds since the epoch */
	size_t index;
	size_t count;
	const char *json;		/* NUL-terminated */
	size_t json_len;
	const char *properties;		/* NUL-terminated; NULL for "{}" */
	size_t properties_len;
	struct whr_tx *tx;		/* transactional handlers only */
};

struct whr_event {
	struct event_fields f;
	yajl_val tree;			/* of f.json, on first use */
	yajl_val properties_tree;
	bool tree_tried;
	bool properties_tried;
	char *reason;			/* from whr_event_set_reason() */
	struct event_scratch *scratch;	/* event_alloc()'s blocks */
};

void event_init(struct whr_event *ev, const struct event_fields *fields);
void event_finish(struct whr_event *ev);

/* The reason the handler gave, or NULL. Borrowed from the event. */
const char *event_reason(const struct whr_event *ev);

/* The notification's JSON tree, parsed on first use; NULL when it cannot
 * be parsed (out of memory: the notification was validated when it
 * arrived). Borrowed from the event. */
yajl_val event_tree(const struct whr_event *ev);

/* The integer @p v holds, into @p out: true for a JSON number without a
 * fraction or exponent that fits in int64_t (INT64_MIN included, which
 * yajl's tree misses), false for anything else. lms365.c reads its
 * integers with it too, so both accept the same ones. */
bool event_integer_value(yajl_val v, int64_t *out);

/* Per-event scratch memory for what is handed out borrowed from the event
 * (lms365.c's users arrays): @p n zeroed elements of @p size bytes,
 * aligned for any type, freed by event_finish(). NULL when out of memory
 * or when n * size overflows. */
void *event_alloc(struct whr_event *ev, size_t n, size_t size);

#endif /* WHR_RECEIVER_EVENT_H */
