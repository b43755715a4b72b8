/*
 * The storage interface's inspecting part (store.h: list, find, show,
 * stats, replay): what the whr inbox tool asks of an inbox, also while
 * whr serve runs (reads see a snapshot; replay waits for the write lock
 * on SQLite, for the rows it changes on PostgreSQL). It works through the
 * public transaction handle, like any report, with a table of statements
 * per database (whr_tx_db()), so it needs nothing of a connection's
 * insides.
 */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <whr/tx.h>

#include "util.h"

enum query {
	Q_LIST,
	Q_FIND_SEQ,
	Q_FIND_ID,
	Q_SHOW_DELIVERY,
	Q_SHOW_NOTIFICATIONS,
	Q_OUTCOMES,
	Q_STATS,
	Q_COUNTS,
	Q_COUNTS_BY_ACTION,
	Q_FORGET_OUTCOMES,
	Q_MAKE_PENDING,
	Q_DEAD_IDS,
	Q_DELIVERY_IDS,
	Q_COUNT_OPEN,
	Q_GAUGES,
	Q_CHANGED,		/* raise whr_store_data_version(); NULL: the
				 * database does */
	Q_COUNT,
};

#define NOTIFICATION_COLUMNS \
	"n.id, d.seq, d.received_at, d.receiver_id, d.delivery_id," \
	" d.attempt, n.idx, n.action, n.state, n.runs, n.next_at, n.error"

#define OPEN "('pending', 'retrying')"

/* When delivery d finished: NULL while work is open, else its last
 * notification's update (its arrival when it has none). The same rule
 * as the purge's "finished before" in each backend. */
#define SQLITE_FINISHED_AT \
	"(SELECT CASE WHEN count(*) = 0 THEN d.received_at" \
	" WHEN sum(state IN " OPEN ") > 0 THEN NULL" \
	" ELSE max(updated_at) END FROM notifications" \
	" WHERE delivery_seq = d.seq)"
#define PG_FINISHED_AT \
	"(SELECT CASE WHEN count(*) = 0 THEN d.received_at" \
	" WHEN count(*) FILTER (WHERE state IN " OPEN ") > 0 THEN NULL" \
	" ELSE max(updated_at) END FROM notifications" \
	" WHERE delivery_seq = d.seq)"

#define SQLITE_COUNT_STATES \
	"count(*), coalesce(sum(state = 'pending'), 0)," \
	" coalesce(sum(state = 'retrying'), 0)," \
	" coalesce(sum(state = 'dead'), 0), coalesce(sum(state = 'done'), 0)"
#define PG_COUNT_STATES \
	"count(*), count(*) FILTER (WHERE state = 'pending')," \
	" count(*) FILTER (WHERE state = 'retrying')," \
	" count(*) FILTER (WHERE state = 'dead')," \
	" count(*) FILTER (WHERE state = 'done')"

#define STATS(oldest_open) \
	"SELECT (SELECT count(*) FROM deliveries)," \
	" (SELECT coalesce(sum(duplicates), 0) FROM deliveries)," \
	" " oldest_open "," \
	" (SELECT min(received_at) FROM deliveries)," \
	" (SELECT max(received_at) FROM deliveries)"

/* The oldest open work's arrival, for the gauges and the stats. On
 * SQLite, a read of the notifications (it has no index of state). On
 * PostgreSQL, where open work is found by its keys (postgresql.c,
 * OPEN_WORK), that of the first open notification by id, one lookup in
 * the keys' index: ids are taken as work is stored, so it is the oldest
 * but for another replica's delivery stored at the same moment, older
 * by the time it took to store (a replayed notification keeps its id
 * and its arrival). With the count of open work from the keys' index,
 * the gauges take 20 to 30 ms with 100,000 open, against 180 ms through
 * the index of open work before schema version 3 (reading every open
 * notification's arrival: 1.1 s). */
#define SQLITE_OLDEST_OPEN \
	"(SELECT min(d.received_at) FROM notifications n JOIN" \
	"  deliveries d ON d.seq = n.delivery_seq" \
	"  WHERE n.state IN " OPEN ")"
#define PG_OLDEST_OPEN \
	"(SELECT d.received_at FROM notifications n" \
	"  JOIN deliveries d ON d.seq = n.delivery_seq" \
	"  WHERE n.id = (SELECT min(notification_id)" \
	"  FROM notification_keys))"

/* Parameters are numbered the same in both; PostgreSQL is told the type
 * of one that could be anything (a NULL), and matches an Action without
 * case by lower() where SQLite has COLLATE NOCASE. A limit below 0 is
 * none. Outcomes sort by the handler's name in bytes. */
static const char *const queries[][Q_COUNT] = {
	[WHR_DB_SQLITE] = {
		[Q_LIST] =
			"SELECT " NOTIFICATION_COLUMNS
			" FROM notifications n JOIN deliveries d"
			" ON d.seq = n.delivery_seq"
			" WHERE (?1 IS NULL OR n.state = ?1)"
			" AND (?2 IS NULL OR n.action = ?2 COLLATE NOCASE)"
			" AND (?3 IS NULL OR d.received_at >= ?3)"
			" AND (?4 IS NULL OR d.received_at < ?4)"
			" ORDER BY n.id DESC LIMIT ?5",
		[Q_FIND_SEQ] = "SELECT seq FROM deliveries WHERE seq = ?1",
		[Q_FIND_ID] =
			"SELECT seq FROM deliveries WHERE delivery_id = ?1"
			" AND (?2 IS NULL OR receiver_id = lower(?2))",
		[Q_SHOW_DELIVERY] =
			"SELECT seq, delivery_id, receiver_id, attempt,"
			" received_at, duplicates, last_attempt,"
			" last_duplicate_at, " SQLITE_FINISHED_AT ", headers,"
			" body FROM deliveries d WHERE seq = ?1",
		[Q_SHOW_NOTIFICATIONS] =
			"SELECT " NOTIFICATION_COLUMNS
			" FROM notifications n JOIN deliveries d"
			" ON d.seq = n.delivery_seq WHERE n.delivery_seq = ?1"
			" ORDER BY n.idx",
		[Q_OUTCOMES] =
			"SELECT handler, result, runs, reason, updated_at"
			" FROM outcomes WHERE notification_id = ?1"
			" ORDER BY handler",
		[Q_STATS] = STATS(SQLITE_OLDEST_OPEN),
		[Q_COUNTS] =
			"SELECT " SQLITE_COUNT_STATES " FROM notifications",
		[Q_COUNTS_BY_ACTION] =
			"SELECT action, " SQLITE_COUNT_STATES
			" FROM notifications GROUP BY action"
			" ORDER BY count(*) DESC",
		[Q_FORGET_OUTCOMES] =
			"DELETE FROM outcomes WHERE notification_id = ?1"
			" AND (?2 = 1 OR result <> 'done')",
		[Q_MAKE_PENDING] =
			"UPDATE notifications SET state = 'pending',"
			" next_at = ?2, error = NULL, updated_at = ?2,"
			" runs = 0, retry_from = ?2"
			" WHERE id = ?1 AND state IN ('done', 'dead')",
		[Q_DEAD_IDS] =
			"SELECT id FROM notifications WHERE state = 'dead'"
			" AND (?1 IS NULL OR action = ?1 COLLATE NOCASE)"
			" ORDER BY id",
		[Q_DELIVERY_IDS] =
			"SELECT id FROM notifications"
			" WHERE delivery_seq = ?1 AND (state = 'dead'"
			" OR (?2 = 1 AND state = 'done')) ORDER BY id",
		[Q_COUNT_OPEN] =
			"SELECT count(*) FROM notifications"
			" WHERE delivery_seq = ?1 AND state IN " OPEN,
		[Q_GAUGES] =
			"SELECT (SELECT count(*) FROM notifications"
			"  WHERE state IN " OPEN "), " SQLITE_OLDEST_OPEN,
		/* PRAGMA data_version sees every other connection's
		 * commit. */
		[Q_CHANGED] = NULL,
	},
	[WHR_DB_POSTGRESQL] = {
		[Q_LIST] =
			"SELECT " NOTIFICATION_COLUMNS
			" FROM notifications n JOIN deliveries d"
			" ON d.seq = n.delivery_seq"
			" WHERE ($1::text IS NULL OR n.state = $1)"
			" AND ($2::text IS NULL OR lower(n.action) = lower($2))"
			" AND ($3::bigint IS NULL OR d.received_at >= $3)"
			" AND ($4::bigint IS NULL OR d.received_at < $4)"
			" ORDER BY n.id DESC"
			" LIMIT CASE WHEN $5::bigint < 0 THEN NULL ELSE $5 END",
		[Q_FIND_SEQ] = "SELECT seq FROM deliveries WHERE seq = $1",
		[Q_FIND_ID] =
			"SELECT seq FROM deliveries WHERE delivery_id = $1"
			" AND ($2::text IS NULL OR receiver_id = lower($2))",
		[Q_SHOW_DELIVERY] =
			"SELECT seq, delivery_id, receiver_id, attempt,"
			" received_at, duplicates, last_attempt,"
			" last_duplicate_at, " PG_FINISHED_AT ", headers,"
			" convert_from(body, 'UTF8')"
			" FROM deliveries d WHERE seq = $1",
		[Q_SHOW_NOTIFICATIONS] =
			"SELECT " NOTIFICATION_COLUMNS
			" FROM notifications n JOIN deliveries d"
			" ON d.seq = n.delivery_seq WHERE n.delivery_seq = $1"
			" ORDER BY n.idx",
		[Q_OUTCOMES] =
			"SELECT handler, result, runs, reason, updated_at"
			" FROM outcomes WHERE notification_id = $1"
			" ORDER BY handler COLLATE \"C\"",
		[Q_STATS] = STATS(PG_OLDEST_OPEN),
		[Q_COUNTS] = "SELECT " PG_COUNT_STATES " FROM notifications",
		[Q_COUNTS_BY_ACTION] =
			"SELECT action, " PG_COUNT_STATES
			" FROM notifications GROUP BY action"
			" ORDER BY count(*) DESC",
		[Q_FORGET_OUTCOMES] =
			"DELETE FROM outcomes WHERE notification_id = $1"
			" AND ($2::bigint = 1 OR result <> 'done')",
		/* Open again: its ordering keys come back. */
		[Q_MAKE_PENDING] =
			"WITH p AS (UPDATE notifications SET state = 'pending',"
			"  next_at = $2, error = NULL, updated_at = $2,"
			"  runs = 0, retry_from = $2, lease_owner = NULL,"
			"  lease_until = NULL"
			"  WHERE id = $1 AND state IN ('done', 'dead')"
			"  RETURNING id, keys)"
			" INSERT INTO notification_keys (key, notification_id)"
			" SELECT DISTINCT k, id FROM p,"
			" unnest(string_to_array(keys, E'\\n')) AS k"
			" ON CONFLICT DO NOTHING",
		[Q_DEAD_IDS] =
			"SELECT id FROM notifications WHERE state = 'dead'"
			" AND ($1::text IS NULL OR lower(action) = lower($1))"
			" ORDER BY id",
		[Q_DELIVERY_IDS] =
			"SELECT id FROM notifications"
			" WHERE delivery_seq = $1 AND (state = 'dead'"
			" OR ($2::bigint = 1 AND state = 'done')) ORDER BY id",
		[Q_COUNT_OPEN] =
			"SELECT count(*) FROM notifications"
			" WHERE delivery_seq = $1 AND state IN " OPEN,
		[Q_GAUGES] =
			"SELECT (SELECT count(DISTINCT notification_id)"
			"  FROM notification_keys), " PG_OLDEST_OPEN,
		[Q_CHANGED] =
			"UPDATE whr_meta SET value = value + 1"
			" WHERE key = 'data_version'",
	},
};

/* A step that gave no row where one was due is a failure too (the
 * handle's message is the store's error). */
static int
failed(struct whr_store *s, int rc)
{
	(void)s;
	return rc < 0 ? rc : -EIO;
}

static struct whr_stmt *
prepare(struct whr_store *s, enum query q)
{
	struct whr_tx *tx = whr_store_tx(s);

	return whr_tx_prepare(tx, queries[whr_tx_db(tx)][q]);
}

static void
bind_optional_int(struct whr_stmt *st, int i, bool has, int64_t v)
{
	if (has)
		whr_stmt_bind_int(st, i, v);
}

/* ---- list ---------------------------------------------------------------- */

static void
notification_row(struct whr_stmt *st, int c, struct store_notification *n)
{
	n->id = whr_stmt_int(st, c);
	n->seq = whr_stmt_int(st, c + 1);
	n->received_at = whr_stmt_int(st, c + 2);
	n->receiver_id = whr_stmt_text(st, c + 3);
	n->delivery_id = whr_stmt_text(st, c + 4);
	n->attempt = whr_stmt_int(st, c + 5);
	n->index = whr_stmt_int(st, c + 6);
	n->action = whr_stmt_text(st, c + 7);
	n->state = whr_stmt_text(st, c + 8);
	n->runs = whr_stmt_int(st, c + 9);
	n->next_at = whr_stmt_int(st, c + 10);
	n->error = whr_stmt_text(st, c + 11);
}

WHR_EXPORT int
whr_store_list(struct whr_store *s, const struct store_filter *f,
	       int (*fn)(const struct store_notification *n, void *arg),
	       void *arg)
{
	struct whr_stmt *st = prepare(s, Q_LIST);
	int rc;

	if (st == NULL)
		return -EIO;
	whr_stmt_bind_text(st, 1, f->state);
	whr_stmt_bind_text(st, 2, f->action);
	bind_optional_int(st, 3, f->has_since, f->since);
	bind_optional_int(st, 4, f->has_until, f->until);
	whr_stmt_bind_int(st, 5, f->limit > 0 ? f->limit : -1);
	while ((rc = whr_stmt_step(st)) > 0) {
		struct store_notification n;

		notification_row(st, 0, &n);
		rc = fn(&n, arg);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return rc < 0 ? failed(s, rc) : 0;
}

/* ---- find and show ------------------------------------------------------- */

WHR_EXPORT int
whr_store_find(struct whr_store *s, const char *delivery_id, int64_t seq,
	       const char *receiver_id, int *matches, int64_t *found_seq)
{
	struct whr_stmt *st;
	int rc;

	if (delivery_id == NULL) {
		st = prepare(s, Q_FIND_SEQ);
		if (st != NULL)
			whr_stmt_bind_int(st, 1, seq);
	} else {
		st = prepare(s, Q_FIND_ID);
		if (st != NULL) {
			whr_stmt_bind_text(st, 1, delivery_id);
			whr_stmt_bind_text(st, 2, receiver_id);
		}
	}
	if (st == NULL)
		return -EIO;
	*matches = 0;
	while ((rc = whr_stmt_step(st)) > 0) {
		*found_seq = whr_stmt_int(st, 0);
		(*matches)++;
	}
	return rc < 0 ? failed(s, rc) : 0;
}

static int
show_delivery(struct whr_store *s, int64_t seq,
	      int (*fn)(const struct store_delivery *d, void *arg), void *arg)
{
	struct whr_stmt *st = prepare(s, Q_SHOW_DELIVERY);
	struct store_delivery d;
	int rc;

	if (st == NULL)
		return -EIO;
	whr_stmt_bind_int(st, 1, seq);
	rc = whr_stmt_step(st);
	if (rc <= 0)
		return rc < 0 ? failed(s, rc) : -ENOENT;
	memset(&d, 0, sizeof(d));
	d.seq = whr_stmt_int(st, 0);
	d.delivery_id = whr_stmt_text(st, 1);
	d.receiver_id = whr_stmt_text(st, 2);
	d.attempt = whr_stmt_int(st, 3);
	d.received_at = whr_stmt_int(st, 4);
	d.duplicates = whr_stmt_int(st, 5);
	d.has_last_attempt = !whr_stmt_is_null(st, 6);
	d.last_attempt = whr_stmt_int(st, 6);
	d.has_last_duplicate = !whr_stmt_is_null(st, 7);
	d.last_duplicate_at = whr_stmt_int(st, 7);
	d.finished = !whr_stmt_is_null(st, 8);
	d.finished_at = whr_stmt_int(st, 8);
	d.headers_json = whr_stmt_text(st, 9);
	/* The body as text: it was verified to be JSON, so UTF-8. */
	d.body = whr_stmt_text(st, 10);
	d.body_len = d.body != NULL ? strlen(d.body) : 0;
	rc = fn(&d, arg);
	/* Done with the row: the statement is free for the next call. */
	whr_stmt_run(st);
	return rc;
}

struct outcomes {
	struct store_outcome_row *v;
	char **strings;		/* every string of v, to free */
	size_t n, cap, n_strings;
};

static void
outcomes_clear(struct outcomes *o)
{
	while (o->n_strings > 0)
		free(o->strings[--o->n_strings]);
	o->n = 0;
}

static const char *
keep(struct outcomes *o, const char *text, bool *oom)
{
	char *copy;

	if (text == NULL)
		return NULL;
	copy = strdup(text);
	if (copy == NULL) {
		*oom = true;
		return NULL;
	}
	o->strings[o->n_strings++] = copy;
	return copy;
}

/* The outcomes of notification @p id, by handler name, into @p o. */
static int
load_outcome_rows(struct whr_store *s, int64_t id, struct outcomes *o)
{
	struct whr_stmt *st = prepare(s, Q_OUTCOMES);
	bool oom = false;
	int rc;

	if (st == NULL)
		return -EIO;
	outcomes_clear(o);
	whr_stmt_bind_int(st, 1, id);
	while (!oom && (rc = whr_stmt_step(st)) > 0) {
		struct store_outcome_row *r;

		if (o->n == o->cap) {
			size_t cap = o->cap ? 2 * o->cap : 8;
			void *v = realloc(o->v, cap * sizeof(*o->v));
			void *strings = v != NULL
				? realloc(o->strings, 3 * cap * sizeof(char *))
				: NULL;

			if (v != NULL)
				o->v = v;
			if (strings == NULL)
				return -ENOMEM;
			o->strings = strings;
			o->cap = cap;
		}
		r = &o->v[o->n++];
		r->handler = keep(o, whr_stmt_text(st, 0), &oom);
		r->result = keep(o, whr_stmt_text(st, 1), &oom);
		r->runs = whr_stmt_int(st, 2);
		r->reason = keep(o, whr_stmt_text(st, 3), &oom);
		r->at = whr_stmt_int(st, 4);
	}
	if (oom) {
		whr_stmt_run(st);
		return -ENOMEM;
	}
	return rc < 0 ? failed(s, rc) : 0;
}

WHR_EXPORT int
whr_store_show(struct whr_store *s, int64_t seq,
	       int (*delivery)(const struct store_delivery *d, void *arg),
	       int (*notification)(const struct store_notification *n,
				   const struct store_outcome_row *o,
				   size_t n_outcomes, void *arg),
	       void *arg)
{
	struct outcomes o = { 0 };
	struct whr_stmt *st;
	int rc;

	rc = show_delivery(s, seq, delivery, arg);
	if (rc != 0)
		return rc;
	st = prepare(s, Q_SHOW_NOTIFICATIONS);
	if (st == NULL)
		return -EIO;
	whr_stmt_bind_int(st, 1, seq);
	while ((rc = whr_stmt_step(st)) > 0) {
		struct store_notification n;

		notification_row(st, 0, &n);
		rc = load_outcome_rows(s, n.id, &o);
		if (rc == 0)
			rc = notification(&n, o.v, o.n, arg);
		if (rc != 0)
			break;
	}
	if (rc != 0)
		whr_stmt_run(st);
	outcomes_clear(&o);
	free(o.v);
	free(o.strings);
	return rc < 0 ? failed(s, rc) : 0;
}

/* ---- stats --------------------------------------------------------------- */

static void
counts_row(struct whr_stmt *st, int c, struct store_counts *k)
{
	k->total = whr_stmt_int(st, c);
	k->pending = whr_stmt_int(st, c + 1);
	k->retrying = whr_stmt_int(st, c + 2);
	k->dead = whr_stmt_int(st, c + 3);
	k->done = whr_stmt_int(st, c + 4);
}

/* Query @p q on its first row: the statement, or NULL with *@p rc the
 * errno (no row is a failure too). */
static struct whr_stmt *
first_row(struct whr_store *s, enum query q, int *rc)
{
	struct whr_stmt *st = prepare(s, q);

	if (st == NULL) {
		*rc = -EIO;
		return NULL;
	}
	*rc = whr_stmt_step(st);
	if (*rc <= 0) {
		*rc = failed(s, *rc);
		return NULL;
	}
	return st;
}

WHR_EXPORT int
whr_store_stats(struct whr_store *s, struct store_stats *out,
		int (*action)(const char *name, const struct store_counts *c,
			      void *arg),
		void *arg)
{
	int rc;
	struct whr_stmt *st = first_row(s, Q_STATS, &rc);

	if (st == NULL)
		return rc;
	memset(out, 0, sizeof(*out));
	out->deliveries = whr_stmt_int(st, 0);
	out->duplicates = whr_stmt_int(st, 1);
	out->has_oldest_open = !whr_stmt_is_null(st, 2);
	out->oldest_open = whr_stmt_int(st, 2);
	out->has_received = !whr_stmt_is_null(st, 3);
	out->first_received = whr_stmt_int(st, 3);
	out->last_received = whr_stmt_int(st, 4);
	whr_stmt_run(st);
	out->bytes = s->backend->bytes(s);

	st = first_row(s, Q_COUNTS, &rc);
	if (st == NULL)
		return rc;
	counts_row(st, 0, &out->notifications);
	whr_stmt_run(st);
	if (action == NULL)
		return 0;

	st = prepare(s, Q_COUNTS_BY_ACTION);
	if (st == NULL)
		return -EIO;
	while ((rc = whr_stmt_step(st)) > 0) {
		struct store_counts c;

		counts_row(st, 1, &c);
		rc = action(whr_stmt_text(st, 0), &c, arg);
		if (rc != 0) {
			whr_stmt_run(st);
			return rc < 0 ? rc : 0;
		}
	}
	return rc < 0 ? failed(s, rc) : 0;
}

WHR_EXPORT int
whr_store_gauges(struct whr_store *s, struct store_gauges *out)
{
	int rc;
	struct whr_stmt *st;

	if (s->backend->counted_gauges != NULL &&
	    s->backend->counted_gauges(s, out) == 0)
		return 0;
	st = first_row(s, Q_GAUGES, &rc);
	if (st == NULL)
		return rc;
	out->open = whr_stmt_int(st, 0);
	out->oldest_open_at = whr_stmt_int(st, 1);
	return whr_stmt_run(st);
}

/* ---- replay -------------------------------------------------------------- */

/* Replay notification @p id: forget the outcomes of handlers that did
 * not finish well (all of them with @p all_handlers), and make it
 * pending now; its retries (their backoff and --retry-max-age) count
 * from the replay. */
static int
replay_one(struct whr_store *s, int64_t id, bool all_handlers, int64_t now)
{
	struct whr_stmt *st = prepare(s, Q_FORGET_OUTCOMES);
	int rc;

	if (st == NULL)
		return -EIO;
	whr_stmt_bind_int(st, 1, id);
	whr_stmt_bind_int(st, 2, all_handlers);
	rc = whr_stmt_run(st);
	if (rc < 0)
		return rc;
	st = prepare(s, Q_MAKE_PENDING);
	if (st == NULL)
		return -EIO;
	whr_stmt_bind_int(st, 1, id);
	whr_stmt_bind_int(st, 2, now);
	return whr_stmt_run(st);
}

/* The ids to replay, read whole before any is changed. */
static int
replay_selection(struct whr_store *s, const struct store_replay *r,
		 int64_t **ids, size_t *n)
{
	struct whr_stmt *st;
	size_t cap = 0;
	int rc;

	if (r->seq == 0) {
		st = prepare(s, Q_DEAD_IDS);
		if (st != NULL)
			whr_stmt_bind_text(st, 1, r->action);
	} else {
		/* Finished ones only; not those done already, unless all
		 * handlers run again. */
		st = prepare(s, Q_DELIVERY_IDS);
		if (st != NULL) {
			whr_stmt_bind_int(st, 1, r->seq);
			whr_stmt_bind_int(st, 2, r->all_handlers);
		}
	}
	if (st == NULL)
		return -EIO;
	*ids = NULL;
	*n = 0;
	while ((rc = whr_stmt_step(st)) > 0) {
		if (*n == cap) {
			int64_t *grown;

			cap = cap ? 2 * cap : 64;
			grown = realloc(*ids, cap * sizeof(**ids));
			if (grown == NULL) {
				whr_stmt_run(st);
				return -ENOMEM;
			}
			*ids = grown;
		}
		(*ids)[(*n)++] = whr_stmt_int(st, 0);
	}
	return rc;
}

static int
count_open(struct whr_store *s, int64_t seq, int *open)
{
	struct whr_stmt *st = prepare(s, Q_COUNT_OPEN);
	int rc;

	if (st == NULL)
		return -EIO;
	whr_stmt_bind_int(st, 1, seq);
	rc = whr_stmt_step(st);
	if (rc > 0)
		*open = (int)whr_stmt_int(st, 0);
	whr_stmt_run(st);
	return rc < 0 ? rc : 0;
}

/* Tell whr serve that open work appeared, where the database does not. */
static int
changed(struct whr_store *s)
{
	struct whr_tx *tx = whr_store_tx(s);
	const char *sql = queries[whr_tx_db(tx)][Q_CHANGED];
	struct whr_stmt *st;

	if (sql == NULL)
		return 0;
	st = whr_tx_prepare(tx, sql);
	return st != NULL ? whr_stmt_run(st) : -EIO;
}

WHR_EXPORT int
whr_store_replay(struct whr_store *s, struct store_replay *r)
{
	int64_t *ids = NULL;
	size_t n = 0, i;
	int rc;

	r->replayed = 0;
	r->open = 0;
	rc = whr_store_begin(s);
	if (rc < 0)
		return rc;
	if (r->seq != 0)
		rc = count_open(s, r->seq, &r->open);
	if (rc == 0)
		rc = replay_selection(s, r, &ids, &n);
	for (i = 0; rc == 0 && i < n; i++) {
		rc = replay_one(s, ids[i], r->all_handlers, r->now);
		if (rc == 0)
			r->replayed++;
	}
	free(ids);
	if (rc == 0 && r->replayed > 0)
		rc = changed(s);
	if (rc == 0)
		rc = whr_store_commit(s);
	if (rc < 0) {
		r->replayed = 0;
		whr_store_rollback(s);
	}
	return rc;
}

const char *
store_gauges_sql(enum whr_db db)
{
	return queries[db][Q_GAUGES];
}
