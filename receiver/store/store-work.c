/*
 * The inbox's rows of deliveries and work: storing a delivery, loading a
 * notification for its handlers, the open work, outcomes and states, and
 * the purge of finished deliveries.
 */
#include "store/store-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "util.h"

static enum whr_result
result_from_name(const char *name)
{
	if (name != NULL && strcmp(name, "done") == 0)
		return WHR_DONE;
	if (name != NULL && strcmp(name, "retry") == 0)
		return WHR_RETRY;
	return WHR_REJECT;
}

static void
bind_text_or_null(sqlite3_stmt *st, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* The keys column: one key a line (a newline inside an id becomes a
 * space: keys only group work, so a merge only costs parallelism). */
static char *
join_keys(char **keys, size_t n, int64_t seq)
{
	size_t len = 0;
	size_t i;
	char *out;
	char *p;

	if (n == 0) {
		out = malloc(32);
		if (out != NULL)
			snprintf(out, 32, "d:%lld", (long long)seq);
		return out;
	}
	for (i = 0; i < n; i++)
		len += strlen(keys[i]) + 1;
	out = malloc(len);
	if (out == NULL)
		return NULL;
	p = out;
	for (i = 0; i < n; i++) {
		size_t k = strlen(keys[i]);
		size_t j;

		for (j = 0; j < k; j++)
			*p++ = keys[i][j] == '\n' ? ' ' : keys[i][j];
		*p++ = i + 1 < n ? '\n' : '\0';
	}
	return out;
}

int
store_ingest(struct store *s, struct ingest_delivery *d)
{
	sqlite3_stmt *st = s->st[ST_INSERT_DELIVERY];
	size_t i;
	int rc;

	sqlite3_bind_text(st, 1, d->receiver_id, -1, SQLITE_STATIC);
	bind_text_or_null(st, 2, d->delivery_id);
	sqlite3_bind_int64(st, 3, d->attempt);
	sqlite3_bind_int64(st, 4, d->received_at);
	sqlite3_bind_text(st, 5, d->headers_json, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 6, d->body, d->body_len, SQLITE_STATIC);
	if (d->has_properties) {
		sqlite3_bind_int64(st, 7, (int64_t)d->properties_start);
		sqlite3_bind_int64(st, 8, (int64_t)d->properties_end);
	}
	sqlite3_bind_int64(st, 9, (int64_t)d->n_notifications);
	rc = store_step_done(s, st, "cannot store a delivery");
	if (rc < 0)
		return rc;

	d->duplicate = sqlite3_changes(s->db) == 0;
	if (d->duplicate) {
		st = s->st[ST_COUNT_DUPLICATE];
		sqlite3_bind_text(st, 1, d->receiver_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, d->delivery_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, d->attempt);
		sqlite3_bind_int64(st, 4, d->received_at);
		rc = sqlite3_step(st);
		d->seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc != SQLITE_ROW)
			return store_fail(s, "cannot count a duplicate");
		return 0;
	}

	d->seq = sqlite3_last_insert_rowid(s->db);
	st = s->st[ST_INSERT_NOTIFICATION];
	for (i = 0; i < d->n_notifications; i++) {
		struct ingest_notification *n = &d->notifications[i];
		char *keys = join_keys(n->keys, n->n_keys, d->seq);

		if (keys == NULL)
			return -ENOMEM;
		sqlite3_bind_int64(st, 1, d->seq);
		sqlite3_bind_int64(st, 2, (int64_t)n->index);
		bind_text_or_null(st, 3, n->action);
		sqlite3_bind_int64(st, 4, (int64_t)n->json_start);
		sqlite3_bind_int64(st, 5, (int64_t)n->json_end);
		sqlite3_bind_text(st, 6, keys, -1, free);
		sqlite3_bind_int64(st, 7, d->received_at);
		rc = store_step_done(s, st, "cannot store a notification");
		if (rc < 0)
			return rc;
		n->id = sqlite3_last_insert_rowid(s->db);
	}
	return 0;
}

/* ---- dispatch -------------------------------------------------------- */

static char *
column_copy(sqlite3_stmt *st, int i, size_t *len)
{
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);
	char *out;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	out = malloc((size_t)n + 1);
	if (out == NULL)
		return NULL;
	if (n > 0)
		memcpy(out, p, (size_t)n);
	out[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
	return out;
}

static int
split_keys(const char *text, char ***keys, size_t *n)
{
	const char *p = text;
	size_t count = 1;
	size_t i;

	for (; *p != '\0'; p++)
		count += *p == '\n';
	*keys = calloc(count, sizeof(**keys));
	if (*keys == NULL)
		return -ENOMEM;
	p = text;
	for (i = 0; i < count; i++) {
		size_t len = strcspn(p, "\n");

		(*keys)[i] = xstrndup(p, len);
		if ((*keys)[i] == NULL) {
			*n = i;
			return -ENOMEM;
		}
		p += len + (p[len] == '\n');
	}
	*n = count;
	return 0;
}

void
stored_work_free(struct stored_work *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->n_outcomes; i++) {
		free(w->outcomes[i].handler);
		free(w->outcomes[i].reason);
	}
	free(w->outcomes);
	if (w->block != NULL) {
		free(w->block);
		free(w);
		return;
	}
	free(w->receiver_id);
	free(w->delivery_id);
	free(w->action);
	free(w->json);
	free(w->properties);
	for (i = 0; i < w->n_keys; i++)
		free(w->keys[i]);
	free(w->keys);
	free(w);
}

static int
load_outcomes(struct store *s, struct stored_work *w)
{
	sqlite3_stmt *st = s->st[ST_LOAD_OUTCOMES];
	int rc;

	sqlite3_bind_int64(st, 1, w->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct stored_outcome *grown =
			realloc(w->outcomes,
				(w->n_outcomes + 1) * sizeof(*grown));
		struct stored_outcome *o;

		if (grown == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		w->outcomes = grown;
		o = &w->outcomes[w->n_outcomes++];
		o->handler = column_copy(st, 0, NULL);
		o->result = result_from_name(
			(const char *)sqlite3_column_text(st, 1));
		o->runs = sqlite3_column_int64(st, 2);
		o->reason = column_copy(st, 3, NULL);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, "cannot load outcomes");
}

int
store_load_work(struct store *s, int64_t id, struct stored_work **out)
{
	sqlite3_stmt *st = s->st[ST_LOAD_WORK];
	struct stored_work *w;
	int rc;

	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->id = id;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		enum work_state state = WORK_PENDING;

		w->delivery_seq = sqlite3_column_int64(st, 0);
		w->index = (size_t)sqlite3_column_int64(st, 1);
		w->count = (size_t)sqlite3_column_int64(st, 2);
		w->receiver_id = column_copy(st, 3, NULL);
		w->delivery_id = column_copy(st, 4, NULL);
		w->action = column_copy(st, 5, NULL);
		w->attempt = sqlite3_column_int64(st, 6);
		w->received_at = sqlite3_column_int64(st, 7);
		w->json = column_copy(st, 8, &w->json_len);
		w->properties = column_copy(st, 9, &w->properties_len);
		work_state_from_name((const char *)sqlite3_column_text(st, 10),
				     &state);
		w->state = state;
		w->runs = sqlite3_column_int64(st, 11);
		rc = split_keys((const char *)sqlite3_column_text(st, 12),
				&w->keys, &w->n_keys) < 0
			     ? SQLITE_NOMEM
			     : SQLITE_ROW;
		w->next_at = sqlite3_column_int64(st, 13);
		w->retry_from = sqlite3_column_int64(st, 14);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE) {
		stored_work_free(w);
		return -ENOENT;
	}
	if (rc != SQLITE_ROW || w->receiver_id == NULL || w->json == NULL) {
		rc = rc == SQLITE_ROW ? -ENOMEM : store_fail(s, "cannot load work");
		stored_work_free(w);
		return rc;
	}
	rc = load_outcomes(s, w);
	if (rc < 0) {
		stored_work_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* Call @p fn on each row of @p st (id, keys, next_at); a positive
 * return from @p fn stops early, a negative one fails. */
static int
each_open(struct store *s, sqlite3_stmt *st,
	  int (*fn)(int64_t id, char **keys, size_t n_keys, int64_t next_at,
		    void *arg),
	  void *arg)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **keys = NULL;
		size_t n = 0;
		int r = split_keys((const char *)sqlite3_column_text(st, 1),
				   &keys, &n);

		if (r == 0)
			r = fn(sqlite3_column_int64(st, 0), keys, n,
			       sqlite3_column_int64(st, 2), arg);
		while (n > 0)
			free(keys[--n]);
		free(keys);
		if (r != 0) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return r < 0 ? r : 0;
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, "cannot list pending work");
}

int
store_each_pending(struct store *s,
		   int (*fn)(int64_t id, char **keys, size_t n_keys,
			     int64_t next_at, void *arg),
		   void *arg)
{
	return each_open(s, s->st[ST_EACH_PENDING], fn, arg);
}

int
store_each_open_after(struct store *s, int64_t after, int64_t limit,
		      int (*fn)(int64_t id, char **keys, size_t n_keys,
				int64_t next_at, void *arg),
		      void *arg)
{
	sqlite3_stmt *st = s->st[ST_OPEN_AFTER];

	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, limit);
	return each_open(s, st, fn, arg);
}

int64_t
store_count_open_after(struct store *s, int64_t after)
{
	sqlite3_stmt *st = s->st[ST_COUNT_OPEN_AFTER];
	int64_t n;

	sqlite3_bind_int64(st, 1, after);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_fail(s, "cannot count pending work");
	}
	n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

int
store_record_handler(struct store *s, int64_t id, const char *handler,
		     enum whr_result result, const char *reason, int64_t now)
{
	sqlite3_stmt *st = s->st[ST_RECORD_HANDLER];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, handler, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, handler_result_name(result), -1, SQLITE_STATIC);
	bind_text_or_null(st, 4, reason);
	sqlite3_bind_int64(st, 5, now);
	return store_step_done(s, st, "cannot record an outcome");
}

int
store_record_state(struct store *s, int64_t id, enum work_state state,
		   int64_t next_at, const char *error, int64_t now)
{
	sqlite3_stmt *st = s->st[ST_RECORD_STATE];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, work_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, next_at);
	bind_text_or_null(st, 4, error);
	sqlite3_bind_int64(st, 5, now);
	return store_step_done(s, st, "cannot record a state");
}

/* ---- retention and change detection ---------------------------------- */

int
store_purge(struct store *s, int64_t before, int limit)
{
	sqlite3_stmt *sel = s->st[ST_PURGE_SELECT];
	int64_t seqs[256];
	int n = 0;
	int rc;
	int i;

	if (limit > (int)ARRAY_LENGTH(seqs))
		limit = (int)ARRAY_LENGTH(seqs);
	sqlite3_bind_int64(sel, 1, before);
	sqlite3_bind_int(sel, 2, limit);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW && n < limit)
		seqs[n++] = sqlite3_column_int64(sel, 0);
	sqlite3_reset(sel);
	sqlite3_clear_bindings(sel);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_fail(s, "cannot list finished deliveries");
	for (i = 0; i < n; i++) {
		static const enum statement steps[] = {
			ST_PURGE_OUTCOMES, ST_PURGE_NOTIFICATIONS,
			ST_PURGE_DELIVERY,
		};
		size_t k;

		for (k = 0; k < ARRAY_LENGTH(steps); k++) {
			sqlite3_bind_int64(s->st[steps[k]], 1, seqs[i]);
			rc = store_step_done(s, s->st[steps[k]], "cannot purge");
			if (rc < 0)
				return rc;
		}
	}
	return n;
}
