/*
 * The enrollment tracker's tables: created on the first start, migrated by
 * version (enrollments_meta), refused when newer than this binary. Their
 * SQL is written for each database the tracker supports: SQLite and
 * PostgreSQL.
 */
#include "enrollments/enrollments.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include <whr/whr.h>

/*
 * Only the B-trees the tracker's own writes need: with keys as random as
 * GUIDs every index costs a page written per event, so learners,
 * enrollments and enrollment_events are WITHOUT ROWID tables whose
 * primary key is the one lookup the tracker makes. Reports scan; add
 * indexes of your own for your queries (the tracker never drops what it
 * did not create).
 */
static const char sqlite_v1[] =
	"CREATE TABLE enrollments_meta ("
	"  key TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL"
	");"
	"CREATE TABLE courses ("
	"  course_id TEXT PRIMARY KEY COLLATE NOCASE,"
	"  title TEXT,"
	"  url TEXT,"
	"  course_type TEXT,"
	"  site_id TEXT,"
	"  web_id TEXT,"
	"  published INTEGER,"		/* 0, 1, or NULL when never said */
	"  published_at INTEGER,"	/* of the event that said it */
	"  created_at INTEGER,"		/* CourseCreated */
	"  deleted_at INTEGER,"		/* CourseDeleted, unless newer news */
	"  course_event_at INTEGER,"	/* the newest other course event */
	"  updated_at INTEGER NOT NULL"	/* the newest event of the course */
	");"
	"CREATE INDEX courses_title ON courses (title COLLATE NOCASE);"
	"CREATE TABLE learners ("
	"  learner_id TEXT PRIMARY KEY COLLATE NOCASE,"
	"  email TEXT,"
	"  name TEXT,"			/* Users[].Title */
	"  login_name TEXT,"
	"  department TEXT,"
	"  directory_object_id TEXT,"
	"  updated_at INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE enrollments ("
	"  course_id TEXT NOT NULL COLLATE NOCASE,"
	"  learner_id TEXT NOT NULL COLLATE NOCASE,"
	"  cycle INTEGER NOT NULL,"	/* 1, then 2 after a re-enrollment */
	"  enrollment_id TEXT,"		/* Users[].EnrollmentId, newest said */
	"  state TEXT NOT NULL,"
	"  status INTEGER,"		/* EnrollmentStatus, newest said */
	"  status_text TEXT,"
	"  approval_requested_at INTEGER,"
	"  enrolled_at INTEGER,"
	"  started_at INTEGER,"
	"  completed_at INTEGER,"
	"  unenrolled_at INTEGER,"
	"  updated_at INTEGER NOT NULL,"	/* its newest event */
	"  PRIMARY KEY (course_id, learner_id, cycle)"
	") WITHOUT ROWID;"
	/* One row per event and learner (course events: learner ''); the
	 * key keeps a replayed event one row. */
	"CREATE TABLE enrollment_events ("
	"  course_id TEXT NOT NULL COLLATE NOCASE,"
	"  learner_id TEXT NOT NULL COLLATE NOCASE,"
	"  receiver_id TEXT NOT NULL,"
	"  delivery_key TEXT NOT NULL,"	/* delivery Id, or '' */
	"  received_at INTEGER NOT NULL,"
	"  notification_index INTEGER NOT NULL,"
	"  user_index INTEGER,"		/* the learner's place in Users */
	"  delivery_id TEXT,"
	"  action TEXT NOT NULL,"
	"  step INTEGER,"		/* enrollment events: 0..4, in order */
	"  event_at INTEGER NOT NULL,"	/* TimeStamp */
	"  enrollment_id TEXT,"
	"  status INTEGER,"
	"  status_text TEXT,"
	"  cycle INTEGER,"
	"  effect TEXT NOT NULL,"	/* applied | stale */
	"  PRIMARY KEY (course_id, learner_id, receiver_id, delivery_key,"
	"   received_at, notification_index)"
	") WITHOUT ROWID;"
	"INSERT INTO enrollments_meta (key, value) VALUES ('schema_version', 1);";

/*
 * The same tables on PostgreSQL. Ids compare without regard to ASCII
 * case, as SQLite's COLLATE NOCASE does: each table keys on a generated
 * column, the id lowered in the C collation (ASCII only, whatever the
 * database's locale), and the id as sent is kept beside it. Every key
 * is a primary key, so the upserts' ON CONFLICT names it.
 */
#define PG_KEY(name) \
	"  " name "_key TEXT GENERATED ALWAYS AS" \
	" (lower(" name "_id COLLATE \"C\")) STORED,"

static const char postgresql_v1[] =
	"CREATE TABLE enrollments_meta ("
	"  key TEXT PRIMARY KEY,"
	"  value BIGINT NOT NULL"
	");"
	"CREATE TABLE courses ("
	"  course_id TEXT NOT NULL,"
	PG_KEY("course")
	"  title TEXT,"
	"  url TEXT,"
	"  course_type TEXT,"
	"  site_id TEXT,"
	"  web_id TEXT,"
	"  published BIGINT,"
	"  published_at BIGINT,"
	"  created_at BIGINT,"
	"  deleted_at BIGINT,"
	"  course_event_at BIGINT,"
	"  updated_at BIGINT NOT NULL,"
	"  PRIMARY KEY (course_key)"
	");"
	"CREATE TABLE learners ("
	"  learner_id TEXT NOT NULL,"
	PG_KEY("learner")
	"  email TEXT,"
	"  name TEXT,"
	"  login_name TEXT,"
	"  department TEXT,"
	"  directory_object_id TEXT,"
	"  updated_at BIGINT NOT NULL,"
	"  PRIMARY KEY (learner_key)"
	");"
	"CREATE TABLE enrollments ("
	"  course_id TEXT NOT NULL,"
	PG_KEY("course")
	"  learner_id TEXT NOT NULL,"
	PG_KEY("learner")
	"  cycle BIGINT NOT NULL,"
	"  enrollment_id TEXT,"
	"  state TEXT NOT NULL,"
	"  status BIGINT,"
	"  status_text TEXT,"
	"  approval_requested_at BIGINT,"
	"  enrolled_at BIGINT,"
	"  started_at BIGINT,"
	"  completed_at BIGINT,"
	"  unenrolled_at BIGINT,"
	"  updated_at BIGINT NOT NULL,"
	"  PRIMARY KEY (course_key, learner_key, cycle)"
	");"
	"CREATE TABLE enrollment_events ("
	"  course_id TEXT NOT NULL,"
	PG_KEY("course")
	"  learner_id TEXT NOT NULL,"
	PG_KEY("learner")
	"  receiver_id TEXT NOT NULL,"
	"  delivery_key TEXT NOT NULL,"
	"  received_at BIGINT NOT NULL,"
	"  notification_index BIGINT NOT NULL,"
	"  user_index BIGINT,"
	"  delivery_id TEXT,"
	"  action TEXT NOT NULL,"
	"  step BIGINT,"
	"  event_at BIGINT NOT NULL,"
	"  enrollment_id TEXT,"
	"  status BIGINT,"
	"  status_text TEXT,"
	"  cycle BIGINT,"
	"  effect TEXT NOT NULL,"
	"  PRIMARY KEY (course_key, learner_key, receiver_id, delivery_key,"
	"   received_at, notification_index)"
	");"
	"INSERT INTO enrollments_meta (key, value) VALUES ('schema_version', 1);";

/* From SQLite's tables to PostgreSQL's: every column but the keys
 * PostgreSQL's generate. */
#define COPY(table, columns, params, n) \
	{ table, "SELECT " columns " FROM " table, \
	  "INSERT INTO " table " (" columns ") VALUES (" params ")", n }

static const struct enrollments_table_copy copies[] = {
	COPY("courses",
	     "course_id, title, url, course_type, site_id, web_id, published,"
	     " published_at, created_at, deleted_at, course_event_at,"
	     " updated_at",
	     "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12", 12),
	COPY("learners",
	     "learner_id, email, name, login_name, department,"
	     " directory_object_id, updated_at",
	     "$1, $2, $3, $4, $5, $6, $7", 7),
	COPY("enrollments",
	     "course_id, learner_id, cycle, enrollment_id, state, status,"
	     " status_text, approval_requested_at, enrolled_at, started_at,"
	     " completed_at, unenrolled_at, updated_at",
	     "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13", 13),
	COPY("enrollment_events",
	     "course_id, learner_id, receiver_id, delivery_key, received_at,"
	     " notification_index, user_index, delivery_id, action, step,"
	     " event_at, enrollment_id, status, status_text, cycle, effect",
	     "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
	     " $15, $16", 16),
};

size_t
enrollments_copy_tables(const struct enrollments_table_copy **tables)
{
	*tables = copies;
	return sizeof(copies) / sizeof(copies[0]);
}

/* What the tables need of one database. */
struct schema_sql {
	const char *table_exists;	/* ?1 a table's name: a row if it is
					 * there */
	const char *version;		/* the schema version: a row */
	const char *create;		/* the tables of
					 * ENROLLMENTS_SCHEMA_VERSION, and
					 * the version in enrollments_meta */
};

static const struct schema_sql sqlite_sql = {
	.table_exists = "SELECT 1 FROM sqlite_master WHERE type = 'table'"
			" AND name = ?1",
	.version = "SELECT value FROM enrollments_meta"
		   " WHERE key = 'schema_version'",
	.create = sqlite_v1,
};

/* Found by search_path, as the tracker's statements find them. */
static const struct schema_sql postgresql_sql = {
	.table_exists = "SELECT 1 WHERE to_regclass($1::text) IS NOT NULL",
	.version = "SELECT value FROM enrollments_meta"
		   " WHERE key = 'schema_version'",
	.create = postgresql_v1,
};

static const struct schema_sql *const schema_sqls[] = {
	[WHR_DB_SQLITE] = &sqlite_sql,
	[WHR_DB_POSTGRESQL] = &postgresql_sql,
};

/* The tables' SQL for @p tx's database; NULL for one without. */
static const struct schema_sql *
schema_of(struct whr_tx *tx)
{
	size_t db = whr_tx_db(tx);

	return db < sizeof(schema_sqls) / sizeof(schema_sqls[0])
		       ? schema_sqls[db] : NULL;
}

/* The one row of @p st's first column into @p value (@p missing when
 * there is none): 0, or a negative errno. */
static int
read_int(struct whr_stmt *st, int64_t missing, int64_t *value)
{
	int rc;

	if (st == NULL)
		return -EIO;
	rc = whr_stmt_step(st);
	*value = rc > 0 ? whr_stmt_int(st, 0) : missing;
	/* To the end, so that no statement is left open. */
	return rc > 0 ? whr_stmt_run(st) : rc;
}

/* 1 when the table named @p name is there, 0 when not, or a negative
 * errno. */
static int
table_exists(struct whr_tx *tx, const struct schema_sql *sql,
	     const char *name)
{
	struct whr_stmt *st = whr_tx_prepare(tx, sql->table_exists);
	int64_t found;
	int rc;

	if (st != NULL && whr_stmt_bind_text(st, 1, name) < 0)
		return -EIO;
	rc = read_int(st, 0, &found);
	return rc < 0 ? rc : found != 0;
}

static int
schema_version(struct whr_tx *tx, const struct schema_sql *sql,
	       int64_t missing, int64_t *version)
{
	return read_int(whr_tx_prepare(tx, sql->version), missing, version);
}

int
enrollments_schema_read(struct whr_tx *tx, int *version)
{
	const struct schema_sql *sql = schema_of(tx);
	int64_t v;
	int rc;

	if (sql == NULL)
		return -EPROTONOSUPPORT;
	rc = table_exists(tx, sql, "enrollments_meta");
	if (rc <= 0)
		return rc;
	if (schema_version(tx, sql, -1, &v) < 0 || v < INT_MIN || v > INT_MAX)
		v = -1;
	*version = (int)v;
	return 1;
}

int
enrollments_schema_setup(struct whr_tx *tx, void *userdata)
{
	const struct schema_sql *sql = schema_of(tx);
	int64_t version = 0;
	int rc;

	if (sql == NULL)	/* registered for the databases it has */
		return -EPROTO;
	rc = table_exists(tx, sql, "enrollments_meta");
	if (rc > 0)
		rc = schema_version(tx, sql, 0, &version);
	if (rc < 0) {
		whr_log(WHR_LOG_ERROR, "enrollments: cannot read the schema: %s",
			whr_tx_error(tx));
		return rc;
	}
	if (version > ENROLLMENTS_SCHEMA_VERSION) {
		whr_log(WHR_LOG_ERROR,
			"enrollments: the tables have schema version %lld, "
			"newer than this whr knows (%d): run a newer whr, or "
			"--no-enrollments", (long long)version,
			ENROLLMENTS_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (version == 0 && whr_tx_exec(tx, sql->create) < 0) {
		whr_log(WHR_LOG_ERROR,
			"enrollments: cannot create the tables: %s",
			whr_tx_error(tx));
		return -EIO;
	}
	return 0;
}

int
enrollments_schema_register(struct whr_receiver *r, const char *handler)
{
	int rc = whr_receiver_add_tx_setup(r, handler, WHR_DB_SQLITE,
					   enrollments_schema_setup);

	if (rc == 0)
		rc = whr_receiver_add_tx_setup(r, handler, WHR_DB_POSTGRESQL,
					       enrollments_schema_setup);
	return rc;
}
