/*
 * Moving an inbox from a data folder into a database (store.h,
 * whr_store_copy(); the whr migrate tool): every row read through one
 * transaction handle and written through the other, numbered as it was.
 * SQLite to PostgreSQL, the one way there is a reason to go.
 */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <whr/tx.h>

#include "util.h"

/* The inbox's tables: what is read from SQLite, what is written to
 * PostgreSQL, column for column. Bodies travel as hex: the handle binds
 * text. */
static const struct store_table_copy tables[] = {
	{ "deliveries",
	  "SELECT seq, receiver_id, delivery_id, attempt, received_at,"
	  " headers, hex(body), properties_start, properties_end,"
	  " notifications, duplicates, last_attempt, last_duplicate_at"
	  " FROM deliveries ORDER BY seq",
	  "INSERT INTO deliveries (seq, receiver_id, delivery_id, attempt,"
	  " received_at, headers, body, properties_start, properties_end,"
	  " notifications, duplicates, last_attempt, last_duplicate_at)"
	  " VALUES ($1, $2, $3, $4, $5, $6, decode($7, 'hex'), $8, $9, $10,"
	  " $11, $12, $13)",
	  13 },
	/* With its ordering keys while it is open, as ingest writes
	 * them: a keys column left empty (one key, itself empty) is its
	 * delivery's, so that open work always has a keys row (claims find
	 * open work by its keys). */
	{ "notifications",
	  "SELECT id, delivery_seq, idx, action, json_start, json_end, keys,"
	  " state, runs, next_at, error, updated_at, retry_from"
	  " FROM notifications ORDER BY id",
	  "WITH n AS (INSERT INTO notifications (id, delivery_seq, idx,"
	  " action, json_start, json_end, keys, state, runs, next_at, error,"
	  " updated_at, retry_from) VALUES ($1, $2, $3, $4, $5, $6,"
	  " CASE WHEN $7::text = '' THEN 'd:' || $2::bigint ELSE $7 END, $8,"
	  " $9, $10, $11, $12, $13) RETURNING id, keys, state)"
	  " INSERT INTO notification_keys (key, notification_id)"
	  " SELECT DISTINCT k, id FROM n,"
	  " unnest(string_to_array(keys, E'\\n')) AS k"
	  " WHERE state IN ('pending', 'retrying')",
	  13 },
	{ "outcomes",
	  "SELECT notification_id, handler, result, runs, reason, updated_at"
	  " FROM outcomes ORDER BY notification_id, handler",
	  "INSERT INTO outcomes (notification_id, handler, result, runs,"
	  " reason, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
	  6 },
};

/* New rows are numbered after the copied ones. */
static const char continue_numbering[] =
	"SELECT setval(pg_get_serial_sequence('deliveries', 'seq'),"
	" coalesce((SELECT max(seq) FROM deliveries), 0) + 1, false),"
	" setval(pg_get_serial_sequence('notifications', 'id'),"
	" coalesce((SELECT max(id) FROM notifications), 0) + 1, false)";

/* The one integer of @p sql on @p tx, or a negative errno. */
static int64_t
one_int(struct whr_tx *tx, const char *sql)
{
	struct whr_stmt *st = whr_tx_prepare(tx, sql);
	int64_t v;
	int rc;

	if (st == NULL)
		return -EIO;
	rc = whr_stmt_step(st);
	if (rc <= 0)
		return rc < 0 ? rc : -EIO;
	v = whr_stmt_int(st, 0);
	rc = whr_stmt_run(st);
	return rc < 0 ? rc : v;
}

/* Every row of @p t: how many, or a negative errno. */
static int64_t
copy_table(struct whr_tx *from, struct whr_tx *to,
	   const struct store_table_copy *t)
{
	struct whr_stmt *read = whr_tx_prepare(from, t->read);
	struct whr_stmt *write = whr_tx_prepare(to, t->write);
	int64_t n = 0;
	int rc;
	int c;

	if (read == NULL || write == NULL)
		return -EIO;
	while ((rc = whr_stmt_step(read)) > 0) {
		write = whr_tx_prepare(to, t->write);	/* reset, unbound */
		if (write == NULL)
			return -EIO;
		for (c = 0; c < t->columns && rc >= 0; c++)
			rc = whr_stmt_is_null(read, c)
				? whr_stmt_bind_null(write, c + 1)
				: whr_stmt_bind_text(write, c + 1,
						     whr_stmt_text(read, c));
		if (rc >= 0)
			rc = whr_stmt_run(write);
		if (rc < 0) {
			whr_stmt_run(read);
			return rc;
		}
		n++;
	}
	return rc < 0 ? rc : n;
}

/* @p t's table in @p to holds no row yet: 0, -ENOTEMPTY or another
 * negative errno. */
static int
empty(struct whr_store *to, const struct store_table_copy *t)
{
	char sql[128];
	int64_t there;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", t->name);
	there = one_int(whr_store_tx(to), sql);
	if (there < 0)
		return (int)there;
	if (there > 0) {
		store_set_error(to, "%s holds rows in %s already (%lld): an "
				"inbox is copied into an empty database only",
				whr_store_name(to), t->name, (long long)there);
		return -ENOTEMPTY;
	}
	return 0;
}

/* Copy @p t, saying on @p to what failed, whichever side it was. */
static int64_t
copy_one(struct whr_store *from, struct whr_store *to,
	 const struct store_table_copy *t)
{
	struct whr_tx *src = whr_store_tx(from);
	struct whr_tx *dst = whr_store_tx(to);
	int64_t n = copy_table(src, dst, t);

	if (n >= 0)
		return n;
	if (whr_tx_error(src)[0] != '\0')
		store_set_error(to, "cannot read %s of %s: %s", t->name,
				whr_store_name(from), whr_tx_error(src));
	else
		store_set_error(to, "cannot write %s: %s", t->name,
				whr_tx_error(dst));
	return n;
}

WHR_EXPORT int
whr_store_copy(struct whr_store *from, struct whr_store *to,
	       const struct store_table_copy *more, size_t n_more,
	       struct store_copied *copied)
{
	struct whr_tx *src = whr_store_tx(from);
	struct whr_tx *dst = whr_store_tx(to);
	int64_t counts[ARRAY_LENGTH(tables)];
	size_t i;
	int rc = 0;

	memset(copied, 0, sizeof(*copied));
	if (whr_tx_db(src) != WHR_DB_SQLITE ||
	    whr_tx_db(dst) != WHR_DB_POSTGRESQL) {
		store_set_error(to, "an inbox is copied from a data folder "
				"(SQLite) into a database (PostgreSQL) only");
		return -ENOTSUP;
	}
	for (i = 0; rc == 0 && i < ARRAY_LENGTH(tables); i++)
		rc = empty(to, &tables[i]);
	for (i = 0; rc == 0 && i < n_more; i++)
		rc = empty(to, &more[i]);
	if (rc < 0)
		return rc;
	/* One snapshot of the folder's inbox, however long the copy. */
	rc = whr_tx_exec(src, "BEGIN");
	if (rc < 0)
		store_set_error(to, "cannot read %s: %s", whr_store_name(from),
				whr_tx_error(src));
	for (i = 0; rc == 0 && i < ARRAY_LENGTH(tables); i++) {
		counts[i] = copy_one(from, to, &tables[i]);
		if (counts[i] < 0)
			rc = (int)counts[i];
	}
	for (i = 0; rc == 0 && i < n_more; i++) {
		int64_t n = copy_one(from, to, &more[i]);

		if (n < 0)
			rc = (int)n;
		else
			copied->more += n;
	}
	whr_tx_exec(src, "ROLLBACK");
	if (rc == 0 && one_int(dst, continue_numbering) < 0) {
		store_set_error(to, "cannot number new rows after the copied "
				"ones: %s", whr_tx_error(dst));
		rc = -EIO;
	}
	if (rc < 0)
		return rc;
	copied->deliveries = counts[0];
	copied->notifications = counts[1];
	copied->outcomes = counts[2];
	return 0;
}
