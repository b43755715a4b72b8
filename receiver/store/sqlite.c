/*
 * The storage interface on SQLite (see store.h): the inbox is one file in
 * the data folder, in WAL mode, so that readers (workers, whr inbox) run
 * beside the one writer. synchronous=FULL syncs the WAL at each commit:
 * that is what makes an acknowledged delivery survive a power loss.
 *
 * Also the transaction handle (whr/tx.h) on SQLite: handlers' statements
 * are kept in a cache keyed by their SQL text, for the life of the
 * connection.
 *
 * Times are microseconds since the Unix epoch; notifications are offsets
 * into their delivery's stored body, so every one is kept exactly as
 * received.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sqlite3.h>

#include "handler.h"
#include "log.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 10000
/* Statements a handle keeps; more (SQL built anew at each call) are
 * dropped between handlers, never while one runs. */
#define TX_CACHE_MAX 256
#define HANDLER_SAVEPOINT "whr_handler"
/* The longest name of the store's file, or of a backup's. */
#define PATH_BYTES 4096

/* ---- schema ------------------------------------------------------------ */

/* Version 1. */
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

/* Deliveries finished before ?1: received before it, and every
 * notification done or dead, the last of them before it too. A
 * delivery's finish time is not stored: it would cost a write of the
 * delivery's row each time a notification finishes. */
#define SQL_FINISHED_BEFORE \
	"SELECT seq FROM deliveries d WHERE received_at < ?1" \
	" AND NOT EXISTS (SELECT 1 FROM notifications n" \
	" WHERE n.delivery_seq = d.seq AND (n.state IN ('pending', 'retrying')" \
	" OR n.updated_at >= ?1)) ORDER BY received_at LIMIT ?2"

/* The statements of the inbox's own work, prepared once per connection:
 * not at each use, as sqlite3_exec() would. */
enum statement {
	ST_INSERT_DELIVERY,
	ST_COUNT_DUPLICATE,
	ST_INSERT_NOTIFICATION,
	ST_LOAD_WORK,
	ST_LOAD_OUTCOMES,
	ST_OPEN_AFTER,
	ST_COUNT_OPEN_AFTER,
	ST_RECORD_OUTCOME,
	ST_SETTLE,
	ST_PURGE_SELECT,
	ST_PURGE_OUTCOMES,
	ST_PURGE_NOTIFICATIONS,
	ST_PURGE_DELIVERY,
	ST_BEGIN,
	ST_COMMIT,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_COUNT,
};

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
	/* By rowid from ?1: no scan of what comes before. */
	[ST_OPEN_AFTER] =
		"SELECT id, keys, next_at FROM notifications"
		" WHERE id > ?1 AND state IN ('pending', 'retrying')"
		" ORDER BY id LIMIT ?2",
	[ST_COUNT_OPEN_AFTER] =
		"SELECT count(*) FROM notifications"
		" WHERE id > ?1 AND state IN ('pending', 'retrying')",
	[ST_RECORD_OUTCOME] =
		"INSERT INTO outcomes (notification_id, handler, result, runs,"
		" reason, updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?5)"
		" ON CONFLICT (notification_id, handler) DO UPDATE SET"
		" result = excluded.result, runs = runs + 1,"
		" reason = excluded.reason, updated_at = excluded.updated_at",
	[ST_SETTLE] =
		"UPDATE notifications SET state = ?2, runs = runs + 1,"
		" next_at = ?3, error = ?4, updated_at = ?5 WHERE id = ?1",
	[ST_PURGE_SELECT] = SQL_FINISHED_BEFORE,
	[ST_PURGE_OUTCOMES] =
		"DELETE FROM outcomes WHERE notification_id IN"
		" (SELECT id FROM notifications WHERE delivery_seq = ?1)",
	[ST_PURGE_NOTIFICATIONS] =
		"DELETE FROM notifications WHERE delivery_seq = ?1",
	[ST_PURGE_DELIVERY] = "DELETE FROM deliveries WHERE seq = ?1",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_SAVEPOINT] = "SAVEPOINT " HANDLER_SAVEPOINT,
	[ST_RELEASE] = "RELEASE " HANDLER_SAVEPOINT,
	[ST_ROLLBACK_TO] = "ROLLBACK TO " HANDLER_SAVEPOINT,
};

/* ---- the connection --------------------------------------------------- */

static const struct tx_backend tx_sqlite;
static void lite_rollback(struct whr_store *store);

/* A statement of the transaction handle: one per distinct SQL text. */
struct lite_stmt {
	struct whr_stmt base;	/* first: the handle's view, and the key */
	sqlite3_stmt *st;
	bool done;		/* stepped to the end: 0 until reset */
	int64_t changes;
};

struct lite_tx {
	struct whr_tx base;	/* first: the handle's view */
	struct lite_store *s;
	struct stmt_cache cache;
};

struct lite_store {
	struct whr_store base;	/* first: the interface's view */
	sqlite3 *db;
	enum store_mode mode;
	sqlite3_stmt *st[ST_COUNT];	/* prepared on first use */
	bool synced;		/* synchronous = FULL now */
	bool in_handler;	/* a transactional handler runs: see guard */
	struct lite_tx tx;
	char path[4096];
};

static void tx_drop_cache(struct lite_tx *tx);

/* The store's error, and the handle's (with the store's). */
#define set_error(s, ...) store_set_error(&(s)->base, __VA_ARGS__)
#define tx_set_error(tx, ...) store_tx_set_error(&(tx)->base, __VA_ARGS__)

static struct lite_store *
lite(struct whr_store *s)
{
	return (struct lite_store *)s;
}

/* An SQLite result code as the errno the interface promises: EIO and
 * its kin for "this store cannot take writes now", which the front
 * answers with 503. */
static int
errno_of(int code)
{
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
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_AUTH:
		return -EACCES;
	default:
		return -EIO;
	}
}

/* Keep SQLite's message for whr_store_error(); the errno it means. */
static int
store_fail(struct lite_store *s, const char *what)
{
	int code = sqlite3_extended_errcode(s->db);

	snprintf(s->base.cause, sizeof(s->base.cause), "%s",
		 sqlite3_errmsg(s->db));
	snprintf(s->base.error, sizeof(s->base.error), "%s: %s (%s)", what,
		 s->base.cause, sqlite3_errstr(code));
	return errno_of(code);
}

static const char *
lite_name(const struct whr_store *store)
{
	return ((const struct lite_store *)store)->path;
}

static int
exec(struct lite_store *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(s, what);
	return 0;
}

/* The one integer @p sql gives (a pragma, a count); -1 on an error. */
static int64_t
query_int(struct lite_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Statement @p which, prepared on first use and kept. */
static sqlite3_stmt *
statement(struct lite_store *s, enum statement which)
{
	if (s->st[which] == NULL &&
	    sqlite3_prepare_v3(s->db, statement_sql[which], -1,
			       SQLITE_PREPARE_PERSISTENT, &s->st[which],
			       NULL) != SQLITE_OK) {
		store_fail(s, "cannot prepare a statement");
		return NULL;
	}
	return s->st[which];
}

/* Run a statement that returns no row (or one we ignore), then reset it
 * and clear its bindings. */
static int
step_done(struct lite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_fail(s, what);
	return 0;
}

static int
run_statement(struct lite_store *s, enum statement which, const char *what)
{
	sqlite3_stmt *st = statement(s, which);

	return st != NULL ? step_done(s, st, what) : -EIO;
}

static void
bind_text_or_null(sqlite3_stmt *st, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* ---- schema versions --------------------------------------------------- */

/* Create, migrate or check the schema, in one transaction. */
static int
migrate(struct lite_store *s)
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
		set_error(s, "schema version %lld, newer than this whr knows (%d): "
			 "run a newer whr, or give another --data-dir",
			 (long long)version, STORE_SCHEMA_VERSION);
		lite_rollback(&s->base);
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
	lite_rollback(&s->base);
	return rc;
}

/* A reader's or a tool's check of the schema version, with the messages
 * the tools print. The worker's reader needs this whr's statements; an
 * older file (migrated by whr serve when it starts) reads the same for
 * the tools (each step only adds), but they change only the current
 * one. */
static int
check_version(struct lite_store *s)
{
	int64_t version = query_int(s, "PRAGMA user_version");

	/* An older number on a file this whr serve migrated means a whr of
	 * that version wrote it back: the statements, prepared when first
	 * used, say whether the tables are what this whr needs. */
	if (version < 1 || version > STORE_SCHEMA_VERSION) {
		set_error(s, "%s is not a whr database this whr reads (schema "
			 "version %d; this whr reads 1 to %d)", s->path,
			 (int)version, STORE_SCHEMA_VERSION);
		return version > STORE_SCHEMA_VERSION ? -EPROTO : -EIO;
	}
	if (s->mode == STORE_WRITER && version < STORE_SCHEMA_VERSION) {
		set_error(s, "%s has schema version %d: start this whr serve "
			 "once, which brings it to version %d, then try again",
			 s->path, (int)version, STORE_SCHEMA_VERSION);
		return -EIO;
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
	const struct lite_store *s = arg;

	if (!s->in_handler)
		return SQLITE_OK;
	if (action == SQLITE_TRANSACTION)
		return SQLITE_DENY;
	if (action == SQLITE_SAVEPOINT && b != NULL &&
	    sqlite3_stricmp(b, HANDLER_SAVEPOINT) == 0)
		return SQLITE_DENY;
	return SQLITE_OK;
}

static int
guard_commit(void *arg)
{
	const struct lite_store *s = arg;

	return s->in_handler;
}

/* The folder and its database file are there (the tools' opens): 0, or
 * -ENOENT with the reason in s->base.error. */
static int
check_files(struct lite_store *s, const char *dir)
{
	struct stat sb;

	if (stat(dir, &sb) < 0) {
		set_error(s, "no data folder %s: %s",
			 dir, strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(sb.st_mode)) {
		set_error(s, "no data folder %s: not a directory", dir);
		return -ENOENT;
	}
	if (stat(s->path, &sb) < 0) {
		set_error(s, "no database in %s (%s: %s): whr serve creates it "
			 "on its first start", dir, s->path, strerror(errno));
		return -ENOENT;
	}
	return 0;
}

/* Open the server's connection: create the folder and the file, WAL,
 * the handler guard, the schema. */
/* The inbox holds learners' names and e-mails: its files are the
 * owner's alone (0600), whatever the umask or the folder's mode, and
 * never reached through a symbolic link, which could make whr create or
 * write a file elsewhere. SQLite gives the -wal and -shm files the
 * database file's mode, so the database is made 0600 first; files an
 * older whr left wider are narrowed. */
static const char *const store_suffixes[] = { "", "-wal", "-shm" };

static int
refuse_links(struct lite_store *s)
{
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(store_suffixes); i++) {
		char path[sizeof(s->path) + 8];
		struct stat sb;

		snprintf(path, sizeof(path), "%s%s", s->path,
			 store_suffixes[i]);
		if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
			set_error(s, "%s is a symbolic link: whr opens its "
				  "inbox files only where they are (move the "
				  "file there, or give --data-dir the folder "
				  "it is in)", path);
			return -EPERM;
		}
	}
	return 0;
}

static int
secure_files(struct lite_store *s)
{
	size_t i;
	int rc = refuse_links(s);

	if (rc < 0)
		return rc;
	for (i = 0; i < ARRAY_LENGTH(store_suffixes); i++) {
		char path[sizeof(s->path) + 8];
		struct stat sb;
		int fd;

		snprintf(path, sizeof(path), "%s%s", s->path,
			 store_suffixes[i]);
		fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC |
				  (i == 0 ? O_CREAT : 0), 0600);
		if (fd < 0 && errno == ENOENT)
			continue;	/* SQLite makes it, 0600 like the
					 * database */
		if (fd < 0) {
			set_error(s, "cannot open %s: %s", path,
				  strerror(errno));
			return errno == EROFS || errno == EACCES ? -EROFS
								  : -EIO;
		}
		if (fstat(fd, &sb) == 0 && !S_ISREG(sb.st_mode)) {
			close(fd);
			set_error(s, "%s is not a regular file", path);
			return -EPERM;
		}
		if ((sb.st_mode & 077) != 0 && fchmod(fd, 0600) < 0) {
			set_error(s, "cannot make %s private (0600): %s", path,
				  strerror(errno));
			close(fd);
			return -EIO;
		}
		close(fd);
	}
	return 0;
}

static int
open_server(struct lite_store *s, const char *dir)
{
	int rc;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		set_error(s, "cannot create the data folder: %s", strerror(errno));
		return -EIO;
	}
	rc = secure_files(s);
	if (rc < 0)
		return rc;
	rc = sqlite3_open_v2(s->path, &s->db,
			     SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_READWRITE |
				     SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	/* Checkpoints stay SQLite's own (every 1000 pages, on the writer):
	 * a checkpointer beside a busy writer never catches up, so the WAL
	 * would only grow, and every sync with it. */
	if (exec(s, "PRAGMA journal_mode = WAL", "cannot use WAL") < 0 ||
	    exec(s, "PRAGMA synchronous = FULL", "cannot set sync") < 0)
		return -EIO;
	s->synced = true;
	sqlite3_set_authorizer(s->db, guard_authorize, s);
	sqlite3_commit_hook(s->db, guard_commit, s);
	return migrate(s);
}

static bool
on_read_only_mount(const char *dir)
{
	struct statvfs sv;

	return statvfs(dir, &sv) == 0 && (sv.f_flag & ST_RDONLY) != 0;
}

/* Open s->path as an immutable database: no locks, no -shm. */
static int
open_immutable(struct lite_store *s)
{
	char uri[3 * sizeof(s->path) + 32];
	char *p = uri;
	const char *c;

	p += sprintf(p, "file:");
	for (c = s->path; *c != '\0'; c++) {
		/* What a URI's path cannot hold as it is. */
		if (*c == '%' || *c == '?' || *c == '#')
			p += sprintf(p, "%%%02X", (unsigned char)*c);
		else
			*p++ = *c;
	}
	strcpy(p, "?immutable=1");
	if (sqlite3_open_v2(uri, &s->db,
			    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_READONLY |
				    SQLITE_OPEN_URI | SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_extended_result_codes(s->db, 1);
	return 0;
}

static int
open_other(struct lite_store *s, const char *dir)
{
	bool tool = s->mode == STORE_READER || s->mode == STORE_WRITER;
	int flags = SQLITE_OPEN_NOMUTEX;
	int rc;

	if (tool) {
		rc = check_files(s, dir);
		if (rc < 0)
			return rc;
	}
	rc = refuse_links(s);
	if (rc < 0)
		return rc;
	flags |= s->mode == STORE_WRITER ? SQLITE_OPEN_READWRITE
					  : SQLITE_OPEN_READONLY;
	rc = sqlite3_open_v2(s->path, &s->db, flags | SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	if (s->mode == STORE_READER && query_int(s, "PRAGMA user_version") < 0 &&
	    on_read_only_mount(dir)) {
		/* A WAL database needs its -shm file to be read, and a
		 * read-only mount cannot have one made: nothing writes
		 * there, so read it as an immutable file. */
		sqlite3_close_v2(s->db);
		s->db = NULL;
		rc = open_immutable(s);
		if (rc < 0)
			return rc;
	}
	if (s->mode == STORE_READER &&
	    exec(s, "PRAGMA query_only = 1", "cannot open the database") < 0)
		return -EIO;
	rc = check_version(s);
	if (rc < 0)
		return rc;
	if (s->mode == STORE_WRITER)
		exec(s, "PRAGMA synchronous = FULL", "cannot set sync");
	if (s->mode == STORE_WORKER) {
		/* What a worker runs: its tables must be this whr's. */
		if (statement(s, ST_LOAD_WORK) == NULL ||
		    statement(s, ST_LOAD_OUTCOMES) == NULL)
			return -EIO;
	}
	return 0;
}

static int
lite_open(const char *location, enum store_mode mode, struct whr_store **out)
{
	struct lite_store *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	*out = &s->base;
	store_init(&s->base, &store_sqlite, &s->tx.base, &tx_sqlite);
	s->mode = mode;
	s->tx.s = s;
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s/%s", location,
			     STORE_FILE) >= sizeof(s->path)) {
		set_error(s, "the data folder's name is too long");
		return -EIO;
	}
	rc = mode == STORE_SERVER ? open_server(s, location)
				  : open_other(s, location);
	if (rc < 0 && s->base.error[0] == '\0')
		set_error(s, "cannot open: %s",
			  s->db != NULL ? sqlite3_errmsg(s->db)
					: "out of memory");
	return rc;
}

static void
lite_close(struct whr_store *store)
{
	struct lite_store *s = lite(store);
	size_t i;

	tx_drop_cache(&s->tx);
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	/* _v2: a handler may still hold statements of its own on the
	 * connection (whr_event_db()); it goes once they are finalized. */
	sqlite3_close_v2(s->db);
	free(s);
}

/* ---- transactions ------------------------------------------------------ */

static int
lite_begin(struct whr_store *store)
{
	struct lite_store *s = lite(store);

	return run_statement(s, ST_BEGIN, "cannot begin a transaction");
}

static int
lite_commit(struct whr_store *store)
{
	struct lite_store *s = lite(store);

	return run_statement(s, ST_COMMIT, "cannot commit");
}

static void
lite_rollback(struct whr_store *store)
{
	struct lite_store *s = lite(store);

	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int
lite_sync_commits(struct whr_store *store, bool synced)
{
	struct lite_store *s = lite(store);
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

/* A write that reaches the disk: it rewrites the schema version, so one
 * page is committed and synced. */
static int
lite_probe(struct whr_store *store)
{
	struct lite_store *s = lite(store);
	char sql[64];
	int64_t version = 0;
	int rc;

	rc = lite_sync_commits(&s->base, true);
	if (rc == 0)
		rc = lite_begin(&s->base);
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
		rc = lite_commit(&s->base);
	if (rc < 0)
		lite_rollback(&s->base);
	return rc;
}

static int
lite_handler_begin(struct whr_store *store)
{
	struct lite_store *s = lite(store);
	int rc = run_statement(s, ST_SAVEPOINT, "cannot start a savepoint");

	if (rc == 0)
		s->in_handler = true;
	return rc;
}

/* A statement a handler left part-way through its rows: reset, so that
 * none stays open across the commit. */
static void
reset_if_busy(struct whr_stmt *base)
{
	struct lite_stmt *st = (struct lite_stmt *)base;

	if (sqlite3_stmt_busy(st->st))
		sqlite3_reset(st->st);
}

static int
lite_handler_end(struct whr_store *store, const char *handler, bool keep)
{
	struct lite_store *s = lite(store);
	int rc;

	s->in_handler = false;
	stmt_cache_each(&s->tx.cache, reset_if_busy);
	if (sqlite3_get_autocommit(s->db)) {
		set_error(s, "the transaction ended while handler %s ran: %s",
			 handler, sqlite3_errmsg(s->db));
		return -EIO;
	}
	if (!keep) {
		rc = run_statement(s, ST_ROLLBACK_TO,
				   "cannot roll back to a savepoint");
		if (rc < 0)
			return rc;
	}
	rc = run_statement(s, ST_RELEASE, "cannot release a savepoint");
	/* Statements of SQL built anew at each call pile up: drop them
	 * now that none is in use. */
	if (s->tx.cache.n > TX_CACHE_MAX)
		tx_drop_cache(&s->tx);
	return rc;
}

/* ---- ingest ------------------------------------------------------------ */

static int
count_duplicate(struct lite_store *s, struct ingest_delivery *d)
{
	sqlite3_stmt *st = statement(s, ST_COUNT_DUPLICATE);
	int rc;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, d->receiver_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, d->delivery_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, d->attempt);
	sqlite3_bind_int64(st, 4, d->received_at);
	rc = sqlite3_step(st);
	d->seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW ? 0 : store_fail(s, "cannot count a duplicate");
}

static int
lite_ingest(struct whr_store *store, struct ingest_delivery *d)
{
	struct lite_store *s = lite(store);
	sqlite3_stmt *st = statement(s, ST_INSERT_DELIVERY);
	size_t i;
	int rc;

	if (st == NULL)
		return -EIO;
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
	rc = step_done(s, st, "cannot store a delivery");
	if (rc < 0)
		return rc;
	d->duplicate = sqlite3_changes(s->db) == 0;
	if (d->duplicate)
		return count_duplicate(s, d);

	d->seq = sqlite3_last_insert_rowid(s->db);
	st = statement(s, ST_INSERT_NOTIFICATION);
	if (st == NULL)
		return -EIO;
	for (i = 0; i < d->n_notifications; i++) {
		struct ingest_notification *n = &d->notifications[i];
		char *keys = store_join_keys(n->keys, n->n_keys, d->seq);

		if (keys == NULL)
			return -ENOMEM;
		sqlite3_bind_int64(st, 1, d->seq);
		sqlite3_bind_int64(st, 2, (int64_t)n->index);
		bind_text_or_null(st, 3, n->action);
		sqlite3_bind_int64(st, 4, (int64_t)n->json_start);
		sqlite3_bind_int64(st, 5, (int64_t)n->json_end);
		sqlite3_bind_text(st, 6, keys, -1, free);
		sqlite3_bind_int64(st, 7, d->received_at);
		rc = step_done(s, st, "cannot store a notification");
		if (rc < 0)
			return rc;
		n->id = sqlite3_last_insert_rowid(s->db);
	}
	return 0;
}

/* ---- work -------------------------------------------------------------- */

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
lite_claim(struct whr_store *store, int64_t after, int64_t limit,
	   int64_t lease_us,
	   int (*fn)(struct store_claim *c, void *arg), void *arg)
{
	struct lite_store *s = lite(store);
	sqlite3_stmt *st = statement(s, ST_OPEN_AFTER);
	int rc;

	/* One whr serve per folder: its claims need no record. */
	(void)lease_us;
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int r = store_offer_claim(sqlite3_column_int64(st, 0),
			(const char *)sqlite3_column_text(st, 1),
			sqlite3_column_int64(st, 2), NULL, fn, arg);

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

static int64_t
lite_count_open(struct whr_store *store, int64_t after)
{
	struct lite_store *s = lite(store);
	sqlite3_stmt *st = statement(s, ST_COUNT_OPEN_AFTER);
	int64_t n;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, after);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_fail(s, "cannot count pending work");
	}
	n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

static int
load_outcomes(struct lite_store *s, struct store_work *w)
{
	sqlite3_stmt *st = statement(s, ST_LOAD_OUTCOMES);
	int rc;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, w->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_outcome *grown =
			realloc(w->outcomes,
				(w->n_outcomes + 1) * sizeof(*grown));
		struct store_outcome *o;

		if (grown == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		w->outcomes = grown;
		o = &w->outcomes[w->n_outcomes++];
		o->handler = column_copy(st, 0, NULL);
		o->result = store_result_from_name(
			(const char *)sqlite3_column_text(st, 1));
		o->runs = sqlite3_column_int64(st, 2);
		o->reason = column_copy(st, 3, NULL);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, "cannot load outcomes");
}

/* The columns of ST_LOAD_WORK into @p w: SQLITE_ROW, or SQLITE_NOMEM. */
static int
work_from_row(sqlite3_stmt *st, struct store_work *w)
{
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
	work_state_from_name((const char *)sqlite3_column_text(st, 10), &state);
	w->state = state;
	w->runs = sqlite3_column_int64(st, 11);
	w->next_at = sqlite3_column_int64(st, 13);
	w->retry_from = sqlite3_column_int64(st, 14);
	if (store_split_keys((const char *)sqlite3_column_text(st, 12),
			     &w->keys, &w->n_keys) < 0 ||
	    w->receiver_id == NULL || w->json == NULL)
		return SQLITE_NOMEM;
	return SQLITE_ROW;
}

static int
lite_load(struct whr_store *store, int64_t id, struct store_work **out)
{
	struct lite_store *s = lite(store);
	sqlite3_stmt *st = statement(s, ST_LOAD_WORK);
	struct store_work *w;
	int rc;

	if (st == NULL)
		return -EIO;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->id = id;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = work_from_row(st, w);
	else if (rc != SQLITE_DONE)
		rc = store_fail(s, "cannot load work");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		rc = load_outcomes(s, w);
	else if (rc == SQLITE_DONE)
		rc = -ENOENT;
	else if (rc == SQLITE_NOMEM)
		rc = -ENOMEM;
	if (rc < 0) {
		store_work_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int
lite_record_outcome(struct whr_store *store, int64_t id, const char *handler,
			 enum whr_result result, const char *reason,
			 int64_t now)
{
	struct lite_store *s = lite(store);
	sqlite3_stmt *st = statement(s, ST_RECORD_OUTCOME);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, handler, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, handler_result_name(result), -1, SQLITE_STATIC);
	bind_text_or_null(st, 4, reason);
	sqlite3_bind_int64(st, 5, now);
	return step_done(s, st, "cannot record an outcome");
}

static int
lite_settle(struct whr_store *store, int64_t id, enum work_state state,
		 int64_t next_at, const char *error, int64_t now)
{
	struct lite_store *s = lite(store);
	sqlite3_stmt *st = statement(s, ST_SETTLE);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, work_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, next_at);
	bind_text_or_null(st, 4, error);
	sqlite3_bind_int64(st, 5, now);
	return step_done(s, st, "cannot record a state");
}

/* One whr serve per folder: its claims are not written down. */
static int
lite_renew(struct whr_store *store, const int64_t *ids, size_t n,
	   int64_t lease_us)
{
	return 0;
}

static int64_t
lite_data_version(struct whr_store *store)
{
	return query_int(lite(store), "PRAGMA data_version");
}

/* The database file and its WAL. */
static int64_t
lite_bytes(struct whr_store *store)
{
	struct lite_store *s = lite(store);
	char wal[sizeof(s->path) + 8];
	struct stat sb;
	int64_t size = 0;

	if (stat(s->path, &sb) == 0)
		size += sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	if (stat(wal, &sb) == 0)
		size += sb.st_size;
	return size;
}

/* ---- retention ----------------------------------------------------------- */

/* Purge up to @p limit (at most 256) deliveries. */
static int
purge_some(struct lite_store *s, int64_t before, int limit)
{
	static const enum statement steps[] = {
		ST_PURGE_OUTCOMES, ST_PURGE_NOTIFICATIONS, ST_PURGE_DELIVERY,
	};
	sqlite3_stmt *sel = statement(s, ST_PURGE_SELECT);
	int64_t seqs[256];
	int n = 0;
	int rc;
	int i;

	if (sel == NULL)
		return -EIO;
	sqlite3_bind_int64(sel, 1, before);
	sqlite3_bind_int(sel, 2, limit);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW && n < limit)
		seqs[n++] = sqlite3_column_int64(sel, 0);
	sqlite3_reset(sel);
	sqlite3_clear_bindings(sel);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_fail(s, "cannot list finished deliveries");
	for (i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < ARRAY_LENGTH(steps); k++) {
			sqlite3_stmt *st = statement(s, steps[k]);

			if (st == NULL)
				return -EIO;
			sqlite3_bind_int64(st, 1, seqs[i]);
			rc = step_done(s, st, "cannot purge");
			if (rc < 0)
				return rc;
		}
	}
	return n;
}

static int
lite_purge(struct whr_store *store, int64_t before, int limit)
{
	struct lite_store *s = lite(store);
	int total = 0;

	while (total < limit) {
		int chunk = limit - total > 256 ? 256 : limit - total;
		int n = purge_some(s, before, chunk);

		if (n < 0)
			return n;
		total += n;
		if (n < chunk)
			break;
	}
	return total;
}

/* ---- backup ------------------------------------------------------------- */

/* The backup's files beside @p tmp that SQLite may have left. */
static void
remove_backup_files(const char *tmp)
{
	static const char *const suffixes[] = { "", "-journal", "-wal",
						"-shm" };
	char path[PATH_BYTES + 32];
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(suffixes); i++) {
		snprintf(path, sizeof(path), "%s%s", tmp, suffixes[i]);
		unlink(path);
	}
}

/* Copy the whole database in one step: one read transaction, so the
 * copy is the database as of one commit. (Copied in parts, a commit of
 * whr serve between two parts would start the copy over, and under a
 * steady flow of deliveries it might never end.) A WAL reader holds the
 * writer up only in that checkpoints cannot go past it meanwhile. The
 * lock is waited for as long as the store's other statements wait. */
static int
backup_copy(struct lite_store *s, sqlite3 *db)
{
	sqlite3_backup *b = sqlite3_backup_init(db, "main", s->db, "main");
	int waited = 0;
	int rc;

	if (b == NULL) {
		set_error(s, "cannot start the copy: %s", sqlite3_errmsg(db));
		return errno_of(sqlite3_extended_errcode(db));
	}
	for (;;) {
		rc = sqlite3_backup_step(b, -1);
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) ||
		    waited >= BUSY_TIMEOUT_MS)
			break;
		sqlite3_sleep(20);
		waited += 20;
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		set_error(s, "cannot copy the inbox: %s", sqlite3_errstr(rc));
		return errno_of(rc);
	}
	return 0;
}

/* The copy on its own: out of WAL mode (one file, readable without a
 * -shm, also on a read-only medium; whr serve puts it back in WAL mode
 * when it opens it), then checked page by page. */
static int
backup_check(struct lite_store *s, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	const char *first;
	int rc;

	if (sqlite3_exec(db, "PRAGMA journal_mode = DELETE", NULL, NULL,
			 NULL) != SQLITE_OK) {
		set_error(s, "cannot finish the copy: %s", sqlite3_errmsg(db));
		return errno_of(sqlite3_extended_errcode(db));
	}
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		set_error(s, "cannot check the copy: %s", sqlite3_errmsg(db));
		rc = errno_of(sqlite3_extended_errcode(db));
		goto out;
	}
	first = (const char *)sqlite3_column_text(st, 0);
	if (first == NULL || strcmp(first, "ok") != 0) {
		set_error(s, "the copy fails its integrity check: %s",
			  first != NULL ? first : "no answer");
		rc = -EIO;
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Sync a file (or folder) by name. */
static int
sync_path(const char *path, int flags)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Put @p tmp in the place of @p dest, which must not exist unless
 * @p replace. */
static int
backup_rename(struct lite_store *s, const char *tmp, const char *dest,
	      bool replace)
{
	char dir[PATH_BYTES];
	char *slash;
	int rc;

	if (replace) {
		rc = rename(tmp, dest);
	} else {
		rc = renameat2(AT_FDCWD, tmp, AT_FDCWD, dest,
			       RENAME_NOREPLACE);
		/* A file system without it: a link cannot replace either. */
		if (rc < 0 && (errno == EINVAL || errno == ENOSYS)) {
			rc = link(tmp, dest);
			if (rc == 0)
				unlink(tmp);
		}
	}
	if (rc < 0) {
		rc = -errno;
		set_error(s, rc == -EEXIST ? "%s exists" : "cannot write %s: %s",
			  dest, strerror(-rc));
		return rc;
	}
	/* The name too must reach the disk. */
	snprintf(dir, sizeof(dir), "%s", dest);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(dir, ".");
	rc = sync_path(dir, O_DIRECTORY);
	if (rc < 0) {
		set_error(s, "cannot sync the folder of %s: %s", dest,
			  strerror(-rc));
		return rc;
	}
	return 0;
}

static int
lite_backup(struct whr_store *store, const char *dest, bool replace)
{
	struct lite_store *s = lite(store);
	char tmp[PATH_BYTES];
	struct stat sb;
	sqlite3 *db = NULL;
	int fd;
	int rc;

	if (!replace && lstat(dest, &sb) == 0) {
		set_error(s, "%s exists", dest);
		return -EEXIST;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", dest) >=
	    sizeof(tmp)) {
		set_error(s, "the name %s is too long", dest);
		return -ENAMETOOLONG;
	}
	/* 0600: the inbox's data is its owner's alone. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		set_error(s, "cannot create a file beside %s: %s", dest,
			  strerror(-rc));
		return rc;
	}
	close(fd);
	if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE |
					      SQLITE_OPEN_NOMUTEX |
					      SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK) {
		set_error(s, "cannot open %s: %s", tmp,
			  db != NULL ? sqlite3_errmsg(db) : "out of memory");
		rc = -EIO;
		goto err;
	}
	sqlite3_extended_result_codes(db, 1);
	rc = backup_copy(s, db);
	if (rc == 0)
		rc = backup_check(s, db);
	if (sqlite3_close(db) != SQLITE_OK && rc == 0) {
		set_error(s, "cannot close %s", tmp);
		rc = -EIO;
	}
	db = NULL;
	if (rc == 0 && (rc = sync_path(tmp, 0)) < 0)
		set_error(s, "cannot sync %s: %s", tmp, strerror(-rc));
	if (rc == 0)
		rc = backup_rename(s, tmp, dest, replace);
	if (rc < 0)
		goto err;
	return 0;
err:
	sqlite3_close(db);
	remove_backup_files(tmp);
	return rc;
}

/* ---- the transaction handle ----------------------------------------------- */

static struct lite_tx *
ltx(struct whr_tx *tx)
{
	return (struct lite_tx *)tx;
}

static struct lite_stmt *
lst(struct whr_stmt *st)
{
	return (struct lite_stmt *)st;
}

/* The handle's view of a failed SQLite call. */
static int
tx_fail(struct lite_tx *tx)
{
	int code = sqlite3_extended_errcode(tx->s->db);

	tx_set_error(tx, "%s", sqlite3_errmsg(tx->s->db));
	return errno_of(code);
}

static void
free_stmt(struct whr_stmt *st)
{
	sqlite3_finalize(lst(st)->st);
	free(st);
}

static void
tx_drop_cache(struct lite_tx *tx)
{
	stmt_cache_drop(&tx->cache, free_stmt);
}

static void *
lite_tx_native(struct whr_tx *tx)
{
	return ltx(tx)->s->db;
}

static int
lite_tx_exec(struct whr_tx *base, const char *sql)
{
	struct lite_tx *tx = ltx(base);

	tx->base.error[0] = '\0';
	if (sqlite3_exec(tx->s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return tx_fail(tx);
	return 0;
}

static struct whr_stmt *
lite_tx_prepare(struct whr_tx *base, const char *sql)
{
	struct lite_tx *tx = ltx(base);
	struct whr_stmt *kept = stmt_cache_find(&tx->cache, sql);
	struct lite_stmt *st;
	const char *tail = NULL;

	tx->base.error[0] = '\0';
	if (kept != NULL) {
		st = lst(kept);
		sqlite3_reset(st->st);
		sqlite3_clear_bindings(st->st);
		st->done = false;
		return kept;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		tx_set_error(tx, "out of memory");
		return NULL;
	}
	if (sqlite3_prepare_v3(tx->s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
			       &st->st, &tail) != SQLITE_OK ||
	    st->st == NULL) {
		tx_set_error(tx, "%s", st->st == NULL &&
					       sqlite3_errcode(tx->s->db) ==
						       SQLITE_OK
					       ? "no SQL statement"
					       : sqlite3_errmsg(tx->s->db));
		sqlite3_finalize(st->st);
		free(st);
		return NULL;
	}
	while (tail != NULL && (*tail == ' ' || *tail == '\t' ||
				*tail == '\n' || *tail == '\r' || *tail == ';'))
		tail++;
	if (tail != NULL && *tail != '\0') {
		tx_set_error(tx, "more than one SQL statement: use "
				 "whr_tx_exec()");
		free_stmt(&st->base);
		return NULL;
	}
	if (stmt_cache_add(&tx->cache, &tx->base, &st->base, sql) < 0) {
		tx_set_error(tx, "out of memory");
		free_stmt(&st->base);
		return NULL;
	}
	return &st->base;
}

static int
bind_result(struct whr_stmt *st, int rc)
{
	if (rc == SQLITE_OK)
		return 0;
	if (rc == SQLITE_RANGE) {
		store_tx_set_error(st->tx, "no parameter of that number");
		return -EINVAL;
	}
	return tx_fail(ltx(st->tx));
}

static int
lite_stmt_bind_null(struct whr_stmt *st, int index)
{
	return bind_result(st, sqlite3_bind_null(lst(st)->st, index));
}

static int
lite_stmt_bind_int(struct whr_stmt *st, int index, int64_t value)
{
	return bind_result(st, sqlite3_bind_int64(lst(st)->st, index, value));
}

static int
lite_stmt_bind_text(struct whr_stmt *st, int index, const char *text)
{
	if (text == NULL)
		return bind_result(st, sqlite3_bind_null(lst(st)->st, index));
	return bind_result(st, sqlite3_bind_text(lst(st)->st, index, text, -1,
						 SQLITE_TRANSIENT));
}

static int
lite_stmt_step(struct whr_stmt *base)
{
	struct lite_stmt *st = lst(base);
	struct lite_tx *tx = ltx(base->tx);
	int rc;

	if (st->done)
		return 0;
	rc = sqlite3_step(st->st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		st->done = true;
		st->changes = sqlite3_changes(tx->s->db);
		return 0;
	}
	rc = tx_fail(tx);
	sqlite3_reset(st->st);
	return rc;
}

static int64_t
lite_stmt_changes(const struct whr_stmt *st)
{
	return ((const struct lite_stmt *)st)->changes;
}

static bool
lite_stmt_is_null(struct whr_stmt *st, int column)
{
	return column >= sqlite3_column_count(lst(st)->st) ||
	       sqlite3_column_type(lst(st)->st, column) == SQLITE_NULL;
}

static int64_t
lite_stmt_int(struct whr_stmt *st, int column)
{
	return sqlite3_column_int64(lst(st)->st, column);
}

static const char *
lite_stmt_text(struct whr_stmt *st, int column)
{
	return (const char *)sqlite3_column_text(lst(st)->st, column);
}

static const struct tx_backend tx_sqlite = {
	.db = WHR_DB_SQLITE,
	.native = lite_tx_native,
	.exec = lite_tx_exec,
	.prepare = lite_tx_prepare,
	.bind_null = lite_stmt_bind_null,
	.bind_int = lite_stmt_bind_int,
	.bind_text = lite_stmt_bind_text,
	.step = lite_stmt_step,
	.changes = lite_stmt_changes,
	.is_null = lite_stmt_is_null,
	.int_at = lite_stmt_int,
	.text = lite_stmt_text,
};

const struct store_backend store_sqlite = {
	.shared = false,
	.open = lite_open,
	.close = lite_close,
	.name = lite_name,
	.begin = lite_begin,
	.commit = lite_commit,
	.rollback = lite_rollback,
	.sync_commits = lite_sync_commits,
	.probe = lite_probe,
	.handler_begin = lite_handler_begin,
	.handler_end = lite_handler_end,
	.ingest = lite_ingest,
	.claim = lite_claim,
	.renew = lite_renew,
	.count_open = lite_count_open,
	.load = lite_load,
	.record_outcome = lite_record_outcome,
	.settle = lite_settle,
	.data_version = lite_data_version,
	.purge = lite_purge,
	.bytes = lite_bytes,
	.backup = lite_backup,
};
