/*
 * The enrollment tracker's tables: created on the first start, migrated by
 * version (enrollments_meta), refused when newer than this binary.
 */
#include "enrollments-schema.h"

#include <errno.h>
#include <stdio.h>

#include <sqlite3.h>

#include <whr/log.h>

/* Only the indexes the tracker's own writes need: with keys as random as
 * GUIDs every index costs a page written per event, which was a third of
 * the tracker's throughput. Reports scan; add indexes of your own for
 * your queries (the tracker never drops what it did not create). */
static const char schema_v1[] =
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
	"  created_at INTEGER,"		/* CourseCreated */
	"  deleted_at INTEGER,"		/* CourseDeleted */
	"  updated_at INTEGER NOT NULL"	/* the newest event applied */
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
	");"
	"CREATE TABLE enrollments ("
	"  enrollment_seq INTEGER PRIMARY KEY,"
	"  course_id TEXT NOT NULL COLLATE NOCASE,"
	"  learner_id TEXT NOT NULL COLLATE NOCASE,"
	"  cycle INTEGER NOT NULL,"	/* 1, then 2 after a re-enrollment */
	"  enrollment_id TEXT,"		/* Users[].EnrollmentId, as last seen */
	"  state TEXT NOT NULL,"
	"  status INTEGER,"		/* EnrollmentStatus, as last applied */
	"  status_text TEXT,"
	"  approval_requested_at INTEGER,"
	"  enrolled_at INTEGER,"
	"  started_at INTEGER,"
	"  completed_at INTEGER,"
	"  unenrolled_at INTEGER,"
	"  updated_at INTEGER NOT NULL,"	/* the newest event applied */
	"  UNIQUE (course_id, learner_id, cycle)"
	");"
	"CREATE TABLE enrollment_events ("
	"  event_seq INTEGER PRIMARY KEY,"
	"  receiver_id TEXT NOT NULL,"
	"  delivery_id TEXT,"
	"  notification_index INTEGER NOT NULL,"
	"  action TEXT NOT NULL,"
	"  course_id TEXT NOT NULL COLLATE NOCASE,"
	"  learner_id TEXT COLLATE NOCASE,"	/* NULL for course events */
	"  cycle INTEGER,"
	"  event_at INTEGER NOT NULL,"		/* TimeStamp */
	"  received_at INTEGER NOT NULL,"
	"  effect TEXT NOT NULL"		/* applied | stale */
	");"
	/* A replay applies an event again: its history row stays one. */
	"CREATE UNIQUE INDEX enrollment_events_once ON enrollment_events"
	"  (receiver_id, delivery_id, notification_index,"
	"   ifnull(learner_id, ''))"
	"  WHERE delivery_id IS NOT NULL;"
	"INSERT INTO enrollments_meta (key, value) VALUES ('schema_version', 1);";

static int
table_exists(struct sqlite3 *db, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db,
				"SELECT 1 FROM sqlite_master WHERE type = 'table'"
				" AND name = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int
schema_version(struct sqlite3 *db, int *version)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db,
				"SELECT value FROM enrollments_meta"
				" WHERE key = 'schema_version'", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

int
enrollments_schema_present(struct sqlite3 *db)
{
	return table_exists(db, "enrollments_meta");
}

int
enrollments_schema_setup(struct sqlite3 *db)
{
	int version = 0;
	int rc;

	rc = table_exists(db, "enrollments_meta");
	if (rc > 0)
		rc = schema_version(db, &version);
	if (rc < 0) {
		whr_log(WHR_LOG_ERROR, "enrollments: cannot read the schema: %s",
			sqlite3_errmsg(db));
		return rc;
	}
	if (version > ENROLLMENTS_SCHEMA_VERSION) {
		whr_log(WHR_LOG_ERROR,
			"enrollments: the tables have schema version %d, newer "
			"than this whr knows (%d): run a newer whr, or "
			"--no-enrollments", version, ENROLLMENTS_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (version == 0 &&
	    sqlite3_exec(db, schema_v1, NULL, NULL, NULL) != SQLITE_OK) {
		whr_log(WHR_LOG_ERROR,
			"enrollments: cannot create the tables: %s",
			sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}
