/*
 * The inbox database (SQLite, WAL): schema, migrations, the statements
 * whr runs on it (store-work.c runs those about deliveries and work),
 * and its transactions. Writes are made by one connection at a time
 * inside explicit transactions; synchronous=FULL makes a commit durable
 * (the WAL is synced) before it returns.
 */
#include "store/store-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "store/store-sql.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 10000


static const char *const statement_sql[ST_COUNT] = {
	[ST_INSERT_DELIVERY] =
		"INSERT INTO deliveries (receiver_id, delivery_id, attempt,"
		" received_at, headers, body, properties_start,"
		" properties_end, notifications)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
		" ON CONFLICT (receiver_id, delivery_id)"
		" WHERE delivery_id IS NOT NULL DO NOTHING",
	[ST_COUNT_DUPLICATE] =
		"UPDATE deliveries SET duplicates = duplicates + 1,"
		" last_attempt = max(coalesce(last_attempt, attempt), ?3),"
		" last_duplicate_at = ?4"
		" WHERE receiver_id = ?1 AND delivery_id = ?2 RETURNING seq",
	[ST_INSERT_NOTIFICATION] =
		"INSERT INTO notifications (delivery_seq, idx, action,"
		" json_start, json_end, keys, state, next_at, updated_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7)",
	[ST_LOAD_WORK] =
		"SELECT n.delivery_seq, n.idx, d.notifications, d.receiver_id,"
		" d.delivery_id, n.action, d.attempt, d.received_at,"
		" substr(d.body, n.json_start + 1, n.json_end - n.json_start),"
		" CASE WHEN d.properties_start IS NULL THEN NULL ELSE"
		"  substr(d.body, d.properties_start + 1,"
		"  d.properties_end - d.properties_start) END,"
		" n.state, n.runs, n.keys, n.next_at,"
		" coalesce(n.retry_from, d.received_at)"
		" FROM notifications n JOIN deliveries d"
		" ON d.seq = n.delivery_seq WHERE n.id = ?1",
	[ST_LOAD_OUTCOMES] =
		"SELECT handler, result, runs, reason FROM outcomes"
		" WHERE notification_id = ?1",
	[ST_EACH_PENDING] =
		"SELECT id, keys, next_at FROM notifications"
		" WHERE state IN ('pending', 'retrying') ORDER BY id",
	/* By rowid from ?1: no scan of what comes before. */
	[ST_OPEN_AFTER] =
		"SELECT id, keys, next_at FROM notifications"
		" WHERE id > ?1 AND state IN ('pending', 'retrying')"
		" ORDER BY id LIMIT ?2",
	[ST_COUNT_OPEN_AFTER] =
		"SELECT count(*) FROM notifications"
		" WHERE id > ?1 AND state IN ('pending', 'retrying')",
	[ST_RECORD_HANDLER] =
		"INSERT INTO outcomes (notification_id, handler, result, runs,"
		" reason, updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?5)"
		" ON CONFLICT (notification_id, handler) DO UPDATE SET"
		" result = excluded.result, runs = runs + 1,"
		" reason = excluded.reason, updated_at = excluded.updated_at",
	[ST_RECORD_STATE] =
		"UPDATE notifications SET state = ?2, runs = runs + 1,"
		" next_at = ?3, error = ?4, updated_at = ?5 WHERE id = ?1",
	[ST_PURGE_SELECT] = SQL_FINISHED_BEFORE " LIMIT ?2",
	[ST_PURGE_OUTCOMES] = SQL_PURGE_OUTCOMES,
	[ST_PURGE_NOTIFICATIONS] = SQL_PURGE_NOTIFICATIONS,
	[ST_PURGE_DELIVERY] = SQL_PURGE_DELIVERY,
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_SAVEPOINT] = "SAVEPOINT " STORE_HANDLER_SAVEPOINT,
	[ST_RELEASE] = "RELEASE " STORE_HANDLER_SAVEPOINT,
	[ST_ROLLBACK_TO] = "ROLLBACK TO " STORE_HANDLER_SAVEPOINT,
};

/* Version 1. Times are microseconds since the Unix epoch; offsets index
 * the stored body, so every notification is kept exactly as received. */
static const char schema_v1[] =
	"CREATE TABLE deliveries ("
	" seq INTEGER PRIMARY KEY,"		/* arrival order */
	" receiver_id TEXT NOT NULL,"
	" delivery_id TEXT,"			/* NULL: the body had no Id */
	" attempt INTEGER NOT NULL,"
	" received_at INTEGER NOT NULL,"
	" headers TEXT NOT NULL,"		/* [[name, value], ...] */
	" body BLOB NOT NULL,"
	" properties_start INTEGER, properties_end INTEGER,"
	" notifications INTEGER NOT NULL,"
	" duplicates INTEGER NOT NULL DEFAULT 0,"
	" last_attempt INTEGER,"
	" last_duplicate_at INTEGER);"
	"CREATE UNIQUE INDEX deliveries_key ON deliveries"
	" (receiver_id, delivery_id) WHERE delivery_id IS NOT NULL;"
	"CREATE INDEX deliveries_received ON deliveries (received_at);"
	"CREATE TABLE notifications ("
	" id INTEGER PRIMARY KEY,"		/* arrival order too */
	" delivery_seq INTEGER NOT NULL,"
	" idx INTEGER NOT NULL,"
	" action TEXT,"
	" json_start INTEGER NOT NULL, json_end INTEGER NOT NULL,"
	" keys TEXT NOT NULL,"			/* ordering keys, one a line */
	" state TEXT NOT NULL,"			/* pending retrying done dead */
	" runs INTEGER NOT NULL DEFAULT 0,"
	" next_at INTEGER NOT NULL,"
	" error TEXT,"
	" updated_at INTEGER NOT NULL);"
	"CREATE INDEX notifications_delivery ON notifications (delivery_seq);"
	/* No index on state: every commit would write its pages, for a scan
	 * made only at start and after whr inbox replay. */

	"CREATE TABLE outcomes ("
	" notification_id INTEGER NOT NULL,"
	" handler TEXT NOT NULL,"
	" result TEXT NOT NULL,"		/* done retry reject */
	" runs INTEGER NOT NULL,"
	" reason TEXT,"
	" updated_at INTEGER NOT NULL,"
	" PRIMARY KEY (notification_id, handler)) WITHOUT ROWID;";

/* The steps from each version to the next: migrations[v - 1] takes
 * version v to v + 1. New databases are made at version 1 and take
 * every step, so both kinds go the same way. A step already there is
 * skipped: a whr of an older version, running on the same folder, may
 * have written its own version number back after the step was made. */
struct migration {
	const char *present;	/* a count, above 0 once the step is made */
	const char *sql;
};

static const struct migration migrations[] = {
	/* 2: a replay restarts a notification's retry budget. NULL: the
	 * delivery's received_at. */
	{ "SELECT count(*) FROM pragma_table_info('notifications')"
	  " WHERE name = 'retry_from'",
	  "ALTER TABLE notifications ADD COLUMN retry_from INTEGER;" },
};
_Static_assert(ARRAY_LENGTH(migrations) == STORE_SCHEMA_VERSION - 1,
	       "one migration step for each version after the first");


static const char *const state_names[] = {
	[WORK_PENDING] = "pending",
	[WORK_RETRYING] = "retrying",
	[WORK_DONE] = "done",
	[WORK_DEAD] = "dead",
};

const char *
work_state_name(enum work_state state)
{
	return state <= WORK_DEAD ? state_names[state] : "unknown";
}

int
work_state_from_name(const char *name, enum work_state *state)
{
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(state_names); i++) {
		if (name != NULL && strcmp(name, state_names[i]) == 0) {
			*state = (enum work_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Keep the error's text and map it to an errno: EIO for "this store
 * cannot take writes now", which the front answers with 503. */
int
store_fail(struct store *s, const char *what)
{
	int code = sqlite3_extended_errcode(s->db);

	snprintf(s->error, sizeof(s->error), "%s: %s (%s)", what,
		 sqlite3_errmsg(s->db), sqlite3_errstr(code));
	switch (code & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	default:
		return -EIO;
	}
}

const char *
store_error(struct store *s)
{
	return s->error[0] != '\0' ? s->error : "no error";
}

struct sqlite3 *
store_db(struct store *s)
{
	return s->db;
}

static int
exec(struct store *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(s, what);
	return 0;
}

/* The one integer @p sql gives (a pragma, a count); -1 on an error. */
static int64_t
query_int(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Create, migrate or check the schema, in one transaction. */
static int
migrate(struct store *s)
{
	int64_t version;
	char sql[64];
	int from, v;
	int rc;

	rc = exec(s, "BEGIN IMMEDIATE", "cannot lock the inbox");
	if (rc < 0)
		return rc;
	version = query_int(s, "PRAGMA user_version");
	if (version < 0) {
		rc = store_fail(s, "cannot read the schema version");
		goto err;
	}
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(s->error, sizeof(s->error),
			 "schema version %lld, newer than this whr knows (%d): "
			 "run a newer whr, or give another --data-dir",
			 (long long)version, STORE_SCHEMA_VERSION);
		store_rollback(s);
		return -EPROTO;
	}
	if (version == 0) {
		rc = exec(s, schema_v1, "cannot create the inbox tables");
		if (rc < 0)
			goto err;
		whr_log(WHR_LOG_INFO, "created inbox %s (schema version %d)",
			s->path, STORE_SCHEMA_VERSION);
		from = 1;
	} else if (version < STORE_SCHEMA_VERSION) {
		whr_log(WHR_LOG_INFO,
			"inbox %s: schema version %lld, migrating to %d",
			s->path, (long long)version, STORE_SCHEMA_VERSION);
		from = (int)version;
	} else {
		from = STORE_SCHEMA_VERSION;
	}
	for (v = from; v < STORE_SCHEMA_VERSION; v++) {
		int64_t present = query_int(s, migrations[v - 1].present);

		if (present < 0) {
			rc = store_fail(s, "cannot migrate the inbox");
			goto err;
		}
		if (present > 0)
			continue;
		rc = exec(s, migrations[v - 1].sql, "cannot migrate the inbox");
		if (rc < 0)
			goto err;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 STORE_SCHEMA_VERSION);
	rc = exec(s, sql, "cannot record the schema version");
	if (rc < 0)
		goto err;
	rc = exec(s, "COMMIT", "cannot commit the inbox schema");
	if (rc < 0)
		goto err;
	return 0;
err:
	store_rollback(s);
	return rc;
}

static int
prepare_all(struct store *s)
{
	size_t i;

	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, statement_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL) != SQLITE_OK)
			return store_fail(s, "cannot prepare a statement");
	}
	return 0;
}

/*
 * While a transactional handler runs, the transaction is the inbox's:
 * the handler may not prepare BEGIN, COMMIT, ROLLBACK or touch the
 * savepoint around it (the authorizer denies them, so they fail with
 * "not authorized"), and nothing may commit (the commit hook turns a
 * commit into a rollback). So its writes commit with its done mark or
 * not at all, even if SQLite itself ended the transaction on an error
 * and the handler went on writing.
 */
static int
guard_authorize(void *arg, int action, const char *a, const char *b,
		const char *db, const char *trigger)
{
	const struct store *s = arg;

	if (!s->in_handler)
		return SQLITE_OK;
	if (action == SQLITE_TRANSACTION)
		return SQLITE_DENY;
	if (action == SQLITE_SAVEPOINT && b != NULL &&
	    sqlite3_stricmp(b, STORE_HANDLER_SAVEPOINT) == 0)
		return SQLITE_DENY;
	return SQLITE_OK;
}

static int
guard_commit(void *arg)
{
	const struct store *s = arg;

	return s->in_handler;
}

struct store *
store_open(const char *dir, enum store_mode mode, char *why, size_t why_size)
{
	struct store *s = calloc(1, sizeof(*s));
	int flags = SQLITE_OPEN_NOMUTEX;
	int error = EIO;
	int rc;

	if (s == NULL)
		return NULL;
	snprintf(s->path, sizeof(s->path), "%s/%s", dir, STORE_FILE);
	if (mode == STORE_SERVER && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(s->error, sizeof(s->error),
			 "cannot create the data folder: %s", strerror(errno));
		goto err;
	}
	if (mode == STORE_SERVER)
		flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	else if (mode == STORE_WRITER)
		flags |= SQLITE_OPEN_READWRITE;
	else
		flags |= SQLITE_OPEN_READONLY;
	rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(s->error, sizeof(s->error), "cannot open: %s",
			 s->db != NULL ? sqlite3_errmsg(s->db)
				       : sqlite3_errstr(rc));
		goto err;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	if (mode == STORE_SERVER) {
		/* WAL lets readers (workers, whr inbox) run beside the
		 * writer; FULL syncs the WAL at each commit, which is what
		 * makes an acknowledged delivery survive a power loss. */
		/* Checkpoints stay SQLite's own (every 1000 pages, on the
		 * writer): a checkpointer beside a busy writer never catches
		 * up, so the WAL would only grow, and every sync with it. */
		if (exec(s, "PRAGMA journal_mode = WAL", "cannot use WAL") < 0 ||
		    exec(s, "PRAGMA synchronous = FULL", "cannot set sync") < 0)
			goto err;
		s->synced = true;
		sqlite3_set_authorizer(s->db, guard_authorize, s);
		sqlite3_commit_hook(s->db, guard_commit, s);
		rc = migrate(s);
		if (rc < 0) {
			error = rc == -EPROTO ? EPROTO : EIO;
			goto err;
		}
	} else {
		int64_t version = query_int(s, "PRAGMA user_version");

		/* An older number on a file this whr serve migrated means a
		 * whr of that version wrote it back: the statements, prepared
		 * below, say whether the tables are what this whr needs. */
		if (version < 1 || version > STORE_SCHEMA_VERSION) {
			snprintf(s->error, sizeof(s->error),
				 "schema version %lld, this whr reads %d%s",
				 (long long)version, STORE_SCHEMA_VERSION,
				 version == 0 ? " (is it a whr inbox?)" : "");
			error = version > STORE_SCHEMA_VERSION ? EPROTO : EIO;
			goto err;
		}
		exec(s, "PRAGMA synchronous = FULL", "cannot set sync");
	}
	if (prepare_all(s) < 0)
		goto err;
	return s;
err:
	snprintf(why, why_size, "inbox %s: %s", s->path, s->error);
	store_close(s);
	errno = error;
	return NULL;
}

void
store_close(struct store *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	/* _v2: a transactional handler may still hold statements on it;
	 * the connection goes once it finalizes them (its destroy). */
	sqlite3_close_v2(s->db);
	free(s);
}


int
store_begin(struct store *s)
{
	return store_step_done(s, s->st[ST_BEGIN], "cannot begin a transaction");
}

int
store_commit(struct store *s)
{
	return store_step_done(s, s->st[ST_COMMIT], "cannot commit");
}

int
store_savepoint(struct store *s)
{
	return store_step_done(s, s->st[ST_SAVEPOINT], "cannot start a savepoint");
}

int
store_release(struct store *s)
{
	return store_step_done(s, s->st[ST_RELEASE], "cannot release a savepoint");
}

int
store_rollback_to(struct store *s)
{
	return store_step_done(s, s->st[ST_ROLLBACK_TO],
			 "cannot roll back to a savepoint");
}

void
store_handler_begin(struct store *s)
{
	s->in_handler = true;
}

int
store_handler_end(struct store *s, const char *handler)
{
	s->in_handler = false;
	if (!sqlite3_get_autocommit(s->db))
		return 0;
	snprintf(s->error, sizeof(s->error),
		 "the transaction ended while handler %s ran: %s", handler,
		 sqlite3_errmsg(s->db));
	return -EIO;
}

int
store_sync_commits(struct store *s, bool synced)
{
	int rc;

	if (s->synced == synced)
		return 0;
	rc = exec(s, synced ? "PRAGMA synchronous = FULL"
			    : "PRAGMA synchronous = NORMAL",
		  "cannot set sync");
	if (rc == 0)
		s->synced = synced;
	return rc;
}

/* A write that reaches the disk, to learn whether the store takes writes
 * again, or to sync what unsynced commits left in the WAL: it rewrites
 * the schema version, so one page is committed and synced. */
int
store_probe(struct store *s)
{
	char sql[64];
	int64_t version = 0;
	int rc;

	rc = store_sync_commits(s, true);
	if (rc == 0)
		rc = store_begin(s);
	/* The version as it is: never a number that could undo a newer
	 * whr's migration. */
	if (rc == 0) {
		version = query_int(s, "PRAGMA user_version");
		if (version < 0)
			rc = store_fail(s, "cannot read");
	}
	if (rc == 0) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld",
			 (long long)version);
		rc = exec(s, sql, "cannot write");
	}
	if (rc == 0)
		rc = store_commit(s);
	if (rc < 0)
		store_rollback(s);
	return rc;
}

void
store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int
store_step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_fail(s, what);
	return 0;
}

int64_t
store_data_version(struct store *s)
{
	return query_int(s, "PRAGMA data_version");
}

