/*
 * Event getters and field paths ("Course.Id", "Users[0].Email").
 */
#include "event.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* One block of scratch memory; the caller's bytes follow the header,
 * aligned for any type. */
struct event_scratch {
	struct event_scratch *next;
	_Alignas(max_align_t) unsigned char data[];
};

void
event_init(struct whr_event *ev, const struct event_fields *fields)
{
	memset(ev, 0, sizeof(*ev));
	ev->f = *fields;
}

void
event_finish(struct whr_event *ev)
{
	while (ev->scratch != NULL) {
		struct event_scratch *next = ev->scratch->next;

		free(ev->scratch);
		ev->scratch = next;
	}
	yajl_tree_free(ev->tree);
	yajl_tree_free(ev->properties_tree);
	free(ev->reason);
	memset(ev, 0, sizeof(*ev));
}

const char *
event_reason(const struct whr_event *ev)
{
	return ev->reason;
}

/* The tree is a cache: parsing on first use is invisible to the caller,
 * so the getters keep taking a const event. */
static yajl_val
lazy_tree(const struct whr_event *cev, bool properties)
{
	struct whr_event *ev = (struct whr_event *)cev;
	yajl_val *tree = properties ? &ev->properties_tree : &ev->tree;
	bool *tried = properties ? &ev->properties_tried : &ev->tree_tried;
	const char *json = properties ? ev->f.properties : ev->f.json;

	if (!*tried && json != NULL) {
		*tried = true;
		*tree = yajl_tree_parse(json, NULL, 0);
	}
	return *tree;
}

yajl_val
event_tree(const struct whr_event *ev)
{
	return lazy_tree(ev, false);
}

void *
event_alloc(struct whr_event *ev, size_t n, size_t size)
{
	struct event_scratch *block;

	if (size != 0 && n > (SIZE_MAX - sizeof(*block)) / size)
		return NULL;
	block = calloc(1, sizeof(*block) + n * size);
	if (block == NULL)
		return NULL;
	block->next = ev->scratch;
	ev->scratch = block;
	return block->data;
}

static yajl_val
object_member(yajl_val obj, const char *name, size_t len)
{
	size_t i;

	if (!YAJL_IS_OBJECT(obj))
		return NULL;
	/* From the end: with a name given twice, the last one counts, as in
	 * the sender's JSON library. */
	for (i = obj->u.object.len; i-- > 0;) {
		const char *key = obj->u.object.keys[i];

		if (strlen(key) == len && memcmp(key, name, len) == 0)
			return obj->u.object.values[i];
	}
	return NULL;
}

/* Walk a path such as "Users[0].Email" from @p root. NULL when any step
 * is missing or the path is malformed. */
static yajl_val
walk(yajl_val root, const char *path)
{
	yajl_val v = root;
	const char *p = path;

	if (path == NULL || *path == '\0' || *path == '.' || *path == '[')
		return NULL;
	while (v != NULL && *p != '\0') {
		if (*p == '[') {
			char *end;
			unsigned long long index;

			if (p[1] < '0' || p[1] > '9')
				return NULL;
			errno = 0;
			index = strtoull(p + 1, &end, 10);
			if (errno != 0 || *end != ']' || !YAJL_IS_ARRAY(v) ||
			    index >= v->u.array.len)
				return NULL;
			v = v->u.array.values[index];
			p = end + 1;
			if (*p == '.' && p[1] != '\0' && p[1] != '.' &&
			    p[1] != '[')
				p++;
			else if (*p != '\0' && *p != '[')
				return NULL;
		} else {
			size_t len = strcspn(p, ".[");

			if (len == 0)
				return NULL;
			v = object_member(v, p, len);
			p += len;
			if (*p == '.') {
				p++;
				if (*p == '\0' || *p == '.' || *p == '[')
					return NULL;
			}
		}
	}
	return v;
}

static yajl_val
lookup(const struct whr_event *ev, const char *path)
{
	return walk(lazy_tree(ev, false), path);
}

/* Why a lookup found nothing: the notification was validated when it
 * arrived, so a tree that could not be built means memory ran out. */
static int
missing(const struct whr_event *ev)
{
	return lazy_tree(ev, false) == NULL ? -ENOMEM : -ENOENT;
}

/* yajl's tree misses INT64_MIN (it overflows negating); any integer that
 * fits counts, as event.h promises. Shared with lms365.c. */
bool
event_integer_value(yajl_val v, int64_t *out)
{
	char *end;
	long long n;

	if (YAJL_IS_INTEGER(v)) {
		*out = v->u.number.i;
		return true;
	}
	if (!YAJL_IS_NUMBER(v) || v->u.number.r == NULL)
		return false;
	errno = 0;
	n = strtoll(v->u.number.r, &end, 10);
	if (errno != 0 || *end != '\0' || end == v->u.number.r)
		return false;
	*out = n;
	return true;
}

static enum whr_value_type
value_type(yajl_val v)
{
	if (v == NULL)
		return WHR_VALUE_MISSING;
	switch (v->type) {
	case yajl_t_string:
		return WHR_VALUE_STRING;
	case yajl_t_number: {
		int64_t ignored;

		return event_integer_value(v, &ignored) ? WHR_VALUE_INTEGER
						  : WHR_VALUE_NUMBER;
	}
	case yajl_t_object:
		return WHR_VALUE_OBJECT;
	case yajl_t_array:
		return WHR_VALUE_ARRAY;
	case yajl_t_true:
	case yajl_t_false:
		return WHR_VALUE_BOOL;
	case yajl_t_null:
		return WHR_VALUE_NULL;
	case yajl_t_any:
		break;
	}
	return WHR_VALUE_MISSING;
}

/* whr_event_NAME(), the public getter of field NAME of the event's
 * fields: a macro, as it defines a function. */
#define FIELD_GETTER(type, name)					\
	WHR_EXPORT type							\
	whr_event_##name(const struct whr_event *ev)			\
	{								\
		return ev->f.name;					\
	}

FIELD_GETTER(const char *, receiver_id)
FIELD_GETTER(const char *, delivery_id)
FIELD_GETTER(int64_t, attempt)
FIELD_GETTER(const char *, action)
FIELD_GETTER(size_t, index)
FIELD_GETTER(size_t, count)
FIELD_GETTER(int64_t, received_at)

WHR_EXPORT const char *
whr_event_json(const struct whr_event *ev, size_t *len)
{
	if (len != NULL)
		*len = ev->f.json_len;
	return ev->f.json;
}

WHR_EXPORT const char *
whr_event_properties_json(const struct whr_event *ev, size_t *len)
{
	if (ev->f.properties == NULL) {
		if (len != NULL)
			*len = 2;
		return "{}";
	}
	if (len != NULL)
		*len = ev->f.properties_len;
	return ev->f.properties;
}

WHR_EXPORT enum whr_value_type
whr_event_type(const struct whr_event *ev, const char *path)
{
	return value_type(lookup(ev, path));
}

WHR_EXPORT const char *
whr_event_string(const struct whr_event *ev, const char *path)
{
	yajl_val v = lookup(ev, path);

	return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

WHR_EXPORT int
whr_event_integer(const struct whr_event *ev, const char *path,
		  int64_t *value)
{
	yajl_val v = lookup(ev, path);

	if (v == NULL)
		return missing(ev);
	if (!event_integer_value(v, value))
		return -EINVAL;
	return 0;
}

WHR_EXPORT int
whr_event_bool(const struct whr_event *ev, const char *path, bool *value)
{
	yajl_val v = lookup(ev, path);

	if (v == NULL)
		return missing(ev);
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return -EINVAL;
	*value = YAJL_IS_TRUE(v);
	return 0;
}

WHR_EXPORT size_t
whr_event_array_length(const struct whr_event *ev, const char *path)
{
	yajl_val v = lookup(ev, path);

	return YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
}

WHR_EXPORT const char *
whr_event_property(const struct whr_event *ev, const char *path)
{
	yajl_val v = walk(lazy_tree(ev, true), path);

	return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

WHR_EXPORT struct sqlite3 *
whr_event_db(const struct whr_event *ev)
{
	struct whr_tx *tx = ev->f.tx;

	return tx != NULL && whr_tx_db(tx) == WHR_DB_SQLITE
		       ? whr_tx_native(tx)
		       : NULL;
}

WHR_EXPORT struct whr_tx *
whr_event_tx(const struct whr_event *ev)
{
	return ev->f.tx;
}

WHR_EXPORT void
whr_event_set_reason(struct whr_event *ev, const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		text = NULL;	/* out of memory: keep no reason */
	free(ev->reason);
	ev->reason = text;
}
