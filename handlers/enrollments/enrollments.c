/*
 * The enrollment tracker: who enrolled in, started and completed which
 * course, in tables of the inbox's own database (enrollments-schema.h).
 *
 * It is a transactional handler: its writes commit in the transaction
 * that records its done mark, so each event counts exactly once, whatever
 * crashes. It runs on the inbox's thread, so it keeps its prepared
 * statements from call to call, for the connection db_setup was last
 * called with.
 *
 * What the tables say does not depend on the order events arrive in:
 * - a learner's cycles in a course are what its events make of them in
 *   time order (enrollments-cycles.c);
 * - a course's and a learner's fields are the newest said, each judged by
 *   the TimeStamp of the event that said it; older events only fill in
 *   what is missing;
 * - every user in Users counts; each event leaves a row per learner in
 *   enrollment_events, applied or stale, kept once across replays.
 * An event without a TimeStamp is dated by its arrival.
 */
#include "builtin.h"
#include "enrollments/private.h"
#include "enrollments/enrollments.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* A field of a course or learner: the newer event's word wins, an older
 * one only fills in a gap. @c is the column, "excluded" the event. */
#define NEWEST(c)							\
	"  " c " = CASE WHEN excluded.updated_at >= updated_at"		\
	"   THEN ifnull(excluded." c ", " c ")"			\
	"   ELSE ifnull(" c ", excluded." c ") END,"

static const char *const statement_sql[ST_COUNT] = {
	/* ?7 published or NULL; ?9 1 for CourseCreated; ?10 NULL for an
	 * enrollment event, 1 for CourseDeleted, 0 another course event. */
	[ST_COURSE] =
	"INSERT INTO courses (course_id, title, url, course_type, site_id,"
	"  web_id, published, published_at, created_at, deleted_at,"
	"  course_event_at, updated_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?7 IS NOT NULL THEN ?8"
	"  END, CASE WHEN ?9 THEN ?8 END, CASE ?10 WHEN 1 THEN ?8 END,"
	"  CASE ?10 WHEN 0 THEN ?8 END, ?8)"
	" ON CONFLICT (course_id) DO UPDATE SET"
	NEWEST("title") NEWEST("url") NEWEST("course_type")
	NEWEST("site_id") NEWEST("web_id")
	"  published = CASE WHEN excluded.published IS NOT NULL AND"
	"   (published_at IS NULL OR excluded.published_at >= published_at)"
	"   THEN excluded.published ELSE published END,"
	"  published_at = CASE WHEN excluded.published IS NOT NULL AND"
	"   (published_at IS NULL OR excluded.published_at >= published_at)"
	"   THEN excluded.published_at ELSE published_at END,"
	"  created_at = min(ifnull(created_at, excluded.created_at),"
	"   ifnull(excluded.created_at, created_at)),"
	/* Deleted, unless a newer course event says otherwise. */
	"  deleted_at = CASE"
	"   WHEN ?10 = 1 AND excluded.updated_at >="
	"    ifnull(course_event_at, excluded.updated_at)"
	"    THEN max(ifnull(deleted_at, excluded.updated_at),"
	"     excluded.updated_at)"
	"   WHEN ?10 = 0 AND excluded.updated_at > deleted_at THEN NULL"
	"   ELSE deleted_at END,"
	"  course_event_at = CASE WHEN ?10 = 0"
	"   THEN max(ifnull(course_event_at, excluded.updated_at),"
	"    excluded.updated_at) ELSE course_event_at END,"
	"  updated_at = max(updated_at, excluded.updated_at)",
	[ST_COURSE_AT] =
	"SELECT updated_at FROM courses WHERE course_id = ?1",
	[ST_LEARNER] =
	"INSERT INTO learners (learner_id, email, name, login_name,"
	"  department, directory_object_id, updated_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	" ON CONFLICT (learner_id) DO UPDATE SET"
	NEWEST("email") NEWEST("name") NEWEST("login_name")
	NEWEST("department") NEWEST("directory_object_id")
	"  updated_at = max(updated_at, excluded.updated_at)",
	[ST_LATEST] =
	"SELECT cycle, state, updated_at, approval_requested_at, enrolled_at,"
	"  started_at, completed_at, unenrolled_at, enrollment_id, status,"
	"  status_text"
	" FROM enrollments WHERE course_id = ?1 AND learner_id = ?2"
	" ORDER BY cycle DESC LIMIT 1",
	[ST_CYCLE_PUT] =
	"INSERT OR REPLACE INTO enrollments (course_id, learner_id, cycle,"
	"  enrollment_id, state, status, status_text, approval_requested_at,"
	"  enrolled_at, started_at, completed_at, unenrolled_at, updated_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[ST_CYCLES_DROP] =
	"DELETE FROM enrollments WHERE course_id = ?1 AND learner_id = ?2"
	"  AND cycle > ?3",
	[ST_EVENT_ADD] =
	"INSERT INTO enrollment_events (course_id, learner_id, receiver_id,"
	"  delivery_key, received_at, notification_index, delivery_id,"
	"  action, step, event_at, enrollment_id, status, status_text,"
	"  cycle, effect, user_index)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	"  ?14, ?15, ?16) ON CONFLICT DO NOTHING",
	[ST_EVENTS_OF] =
	"SELECT step, event_at, received_at, delivery_key, notification_index,"
	"  receiver_id, enrollment_id, status, status_text, cycle, effect"
	" FROM enrollment_events WHERE course_id = ?1 AND learner_id = ?2"
	"  AND step IS NOT NULL"
	" ORDER BY event_at, step, received_at, delivery_key,"
	"  notification_index, receiver_id",
	[ST_EVENT_SET] =
	"UPDATE enrollment_events SET cycle = ?7, effect = ?8"
	" WHERE course_id = ?1 AND learner_id = ?2 AND receiver_id = ?3"
	"  AND delivery_key = ?4 AND received_at = ?5"
	"  AND notification_index = ?6",
};

void
tracker_finalize(struct tracker *t)
{
	size_t i;

	for (i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(t->st[i]);
		t->st[i] = NULL;
	}
	t->db = NULL;
}

sqlite3_stmt *
tracker_statement(struct tracker *t, sqlite3 *db, enum tracker_statement which)
{
	if (t->db != db)
		tracker_finalize(t);
	t->db = db;
	if (t->st[which] == NULL &&
	    sqlite3_prepare_v3(db, statement_sql[which], -1,
			       SQLITE_PREPARE_PERSISTENT, &t->st[which],
			       NULL) != SQLITE_OK)
		return NULL;
	sqlite3_reset(t->st[which]);
	sqlite3_clear_bindings(t->st[which]);
	return t->st[which];
}

static void
bind_text(sqlite3_stmt *st, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

/* Run a statement that returns no row. */
static int
run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static bool
action_step(enum whr_lms365_action action, enum step *step)
{
	switch (action) {
	case WHR_LMS365_ENROLLMENT_APPROVAL_REQUEST:
		*step = STEP_APPROVAL_REQUESTED;
		return true;
	case WHR_LMS365_COURSE_ENROLLMENT:
		*step = STEP_ENROLLED;
		return true;
	case WHR_LMS365_COURSE_STARTED:
		*step = STEP_STARTED;
		return true;
	case WHR_LMS365_COURSE_COMPLETED:
		*step = STEP_COMPLETED;
		return true;
	case WHR_LMS365_COURSE_UNENROLLMENT:
		*step = STEP_UNENROLLED;
		return true;
	default:
		return false;
	}
}

/* @p kind: -1 an enrollment event, 1 CourseDeleted, 0 another course
 * event. @p published: -1 when not said. */
static int
upsert_course(struct tracker *t, sqlite3 *db,
	      const struct whr_lms365_course *c, int published, int64_t at,
	      bool created, int kind)
{
	sqlite3_stmt *st = tracker_statement(t, db, ST_COURSE);

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, c->id);
	bind_text(st, 2, c->title);
	bind_text(st, 3, c->url);
	bind_text(st, 4, c->course_type);
	bind_text(st, 5, c->site_id);
	bind_text(st, 6, c->web_id);
	if (published >= 0)
		sqlite3_bind_int(st, 7, published);
	sqlite3_bind_int64(st, 8, at);
	if (created)
		sqlite3_bind_int(st, 9, 1);
	if (kind >= 0)
		sqlite3_bind_int(st, 10, kind);
	return run(st);
}

/* Whether an event at @p at is news for the course: none newer known. */
static int
course_news(struct tracker *t, sqlite3 *db, const char *id, int64_t at,
	    bool *news)
{
	sqlite3_stmt *st = tracker_statement(t, db, ST_COURSE_AT);
	int rc;

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, id);
	rc = sqlite3_step(st);
	*news = rc != SQLITE_ROW || at >= sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int
upsert_learner(struct tracker *t, sqlite3 *db,
	       const struct whr_lms365_user *u, int64_t at)
{
	sqlite3_stmt *st = tracker_statement(t, db, ST_LEARNER);

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, u->id);
	bind_text(st, 2, u->email);
	bind_text(st, 3, u->title);
	bind_text(st, 4, u->login_name);
	bind_text(st, 5, u->department);
	bind_text(st, 6, u->directory_object_id);
	sqlite3_bind_int64(st, 7, at);
	return run(st);
}

/* A course event's row in enrollment_events (learner ''). */
static int
record_course_event(struct tracker *t, struct whr_event *ev,
		    const char *action, const char *course, int64_t at,
		    bool applied)
{
	sqlite3_stmt *st = tracker_statement(t, whr_event_db(ev),
					     ST_EVENT_ADD);
	const char *delivery = whr_event_delivery_id(ev);

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, course);
	bind_text(st, 2, "");
	bind_text(st, 3, whr_event_receiver_id(ev));
	bind_text(st, 4, delivery != NULL ? delivery : "");
	sqlite3_bind_int64(st, 5, whr_event_received_at(ev));
	sqlite3_bind_int64(st, 6, (sqlite3_int64)whr_event_index(ev));
	bind_text(st, 7, delivery);
	bind_text(st, 8, action);
	sqlite3_bind_int64(st, 10, at);
	bind_text(st, 15, applied ? "applied" : "stale");
	return run(st);
}

static int64_t
event_time(struct whr_event *ev, const struct whr_lms365_time *ts)
{
	return ts->valid ? ts->us : whr_event_received_at(ev);
}

static enum whr_result
failed(struct whr_event *ev, const char *what, int rc)
{
	if (rc == -ENOMEM)
		whr_event_set_reason(ev, "enrollments: cannot %s: out of "
				     "memory", what);
	else
		whr_event_set_reason(ev, "enrollments: cannot %s: %s", what,
				     sqlite3_errmsg(whr_event_db(ev)));
	return WHR_RETRY;
}

/* An id that names nothing: absent, empty or only spaces. An empty
 * learner id would also read as the course events' marker in the
 * history (learner ''). */
static bool
id_missing(const char *id)
{
	if (id == NULL)
		return true;
	while (*id == ' ' || *id == '\t' || *id == '\r' || *id == '\n')
		id++;
	return *id == '\0';
}

static enum whr_result
on_enrollment(struct tracker *t, struct whr_event *ev,
	      enum whr_lms365_action action)
{
	sqlite3 *db = whr_event_db(ev);
	struct whr_lms365_enrollment e;
	struct step_event se;
	size_t i;
	int rc;

	rc = whr_lms365_enrollment_decode(ev, &e);
	if (rc == -ENOMEM)
		return failed(ev, "decode the event", rc);
	if (rc < 0)
		return WHR_REJECT;	/* the decoder gave the reason */
	if (id_missing(e.course.id)) {
		whr_event_set_reason(ev, "enrollments: Course.Id is missing "
				     "or empty");
		return WHR_REJECT;
	}
	for (i = 0; i < e.n_users; i++) {
		if (id_missing(e.users[i].id)) {
			whr_event_set_reason(ev, "enrollments: Users[%zu].Id is "
					     "missing or empty", i);
			return WHR_REJECT;
		}
	}
	memset(&se, 0, sizeof(se));
	se.course_id = e.course.id;
	se.e = &e;
	se.step = STEP_ENROLLED;
	action_step(action, &se.step);
	se.at = event_time(ev, &e.timestamp);
	rc = upsert_course(t, db, &e.course,
			   e.course.has_published ? e.course.published : -1,
			   se.at, false, -1);
	if (rc < 0)
		return failed(ev, "write the course", rc);
	for (i = 0; i < e.n_users; i++) {
		se.user = &e.users[i];
		se.user_index = i;
		rc = upsert_learner(t, db, se.user, se.at);
		if (rc < 0)
			return failed(ev, "write the learner", rc);
		rc = cycles_apply(t, ev, &se);
		if (rc < 0)
			return failed(ev, "write the enrollment", rc);
	}
	return WHR_DONE;
}

static enum whr_result
on_course(struct tracker *t, struct whr_event *ev,
	  enum whr_lms365_action action)
{
	sqlite3 *db = whr_event_db(ev);
	struct whr_lms365_course_event e;
	int published = -1;
	bool news;
	int64_t at;
	int rc;

	rc = whr_lms365_course_decode(ev, &e);
	if (rc == -ENOMEM)
		return failed(ev, "decode the event", rc);
	if (rc < 0)
		return WHR_REJECT;
	if (id_missing(e.course.id)) {
		whr_event_set_reason(ev, "enrollments: the course Id is missing "
				     "or empty");
		return WHR_REJECT;
	}
	if (action == WHR_LMS365_COURSE_PUBLISHED)
		published = 1;
	else if (action == WHR_LMS365_COURSE_UNPUBLISHED)
		published = 0;
	else if (e.course.has_published)
		published = e.course.published;
	at = event_time(ev, &e.timestamp);
	/* The history says whether it was news when it came; the course
	 * row is the same whatever the order. */
	rc = course_news(t, db, e.course.id, at, &news);
	if (rc == 0)
		rc = upsert_course(t, db, &e.course, published, at,
				   action == WHR_LMS365_COURSE_CREATED,
				   action == WHR_LMS365_COURSE_DELETED ? 1 : 0);
	if (rc < 0)
		return failed(ev, "write the course", rc);
	rc = record_course_event(t, ev, whr_lms365_action_name(action),
				 e.course.id, at, news);
	if (rc < 0)
		return failed(ev, "record the event", rc);
	return WHR_DONE;
}

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	struct tracker *t = userdata;
	enum whr_lms365_action action =
		whr_lms365_action_parse(whr_event_action(ev));

	if (whr_lms365_is_enrollment(action))
		return on_enrollment(t, ev, action);
	if (whr_lms365_is_course(action))
		return on_course(t, ev, action);
	return WHR_DONE;	/* not ours: nothing to track */
}

static int
setup(sqlite3 *db, void *userdata)
{
	struct tracker *t = userdata;

	/* A new connection (the inbox reopened its database): the old
	 * statements belong to the old one. */
	tracker_finalize(t);
	return enrollments_schema_setup(db);
}

static void
destroy(void *userdata)
{
	struct tracker *t = userdata;

	tracker_finalize(t);
	free(t);
}

int
enrollments_handler_add(struct whr_receiver *r, const char *args,
			const struct builtin_settings *settings)
{
	struct tracker *t;
	struct whr_handler h = {
		.name = "enrollments",
		.action = "*",
		.fn = on_any,
		.destroy = destroy,
		.flags = WHR_HANDLER_TRANSACTIONAL,
		.db_setup = setup,
	};

	if (args != NULL) {
		whr_log(WHR_LOG_ERROR, "handler enrollments takes no arguments");
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	h.userdata = t;
	return whr_receiver_add_handler(r, &h);
}
