/*
 * The enrollment tracker's tables: created on the first start, migrated by
 * version (enrollments_meta), refused when newer than this binary.
 */
#include "enrollments/enrollments.h"

#include <errno.h>
#include <stdio.h>

#include <sqlite3.h>

#include <whr/log.h>

/*
 * Only the B-trees the tracker's own writes need: with keys as random as
 * GUIDs every index costs a page written per event, so learners,
 * enrollments and enrollment_events are WITHOUT ROWID tables whose
 * primary key is the one lookup the tracker makes. Reports scan; add
 * indexes of your own for your queries (the tracker never drops what it
 * did not create).
 */
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
