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
 * The rules, per (course, learner):
 * - an enrollment moves through approval_requested, enrolled, started,
 *   completed, and never backwards: an older step arriving late (a retried
 *   CourseStarted after CourseCompleted) fills in that step's time and
 *   leaves the state alone;
 * - an unenrollment ends the cycle, unless it is older than the newest
 *   event already applied (judged by TimeStamp);
 * - an event newer than the unenrollment starts a new cycle, keeping the
 *   old one as history;
 * - every user in Users counts; each event leaves a row per learner in
 *   enrollment_events, applied or stale.
 * An event without a TimeStamp is dated by its arrival.
 */
#include "builtin.h"
#include "enrollments-schema.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include <whr/lms365.h>

enum statement {
	ST_COURSE,
	ST_LEARNER,
	ST_LATEST,
	ST_CYCLE,
	ST_INSERT,
	ST_UPDATE,
	ST_EVENT,
	ST_COUNT
};

static const char *const statement_sql[ST_COUNT] = {
	/* ?10: NULL keeps deleted_at (enrollment events), 1 sets it
	 * (CourseDeleted), 0 clears it (a newer course event). */
	[ST_COURSE] =
	"INSERT INTO courses (course_id, title, url, course_type, site_id,"
	"  web_id, published, updated_at, created_at, deleted_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
	"  CASE ?10 WHEN 1 THEN ?8 END)"
	" ON CONFLICT (course_id) DO UPDATE SET"
	"  title = ifnull(excluded.title, title),"
	"  url = ifnull(excluded.url, url),"
	"  course_type = ifnull(excluded.course_type, course_type),"
	"  site_id = ifnull(excluded.site_id, site_id),"
	"  web_id = ifnull(excluded.web_id, web_id),"
	"  published = ifnull(excluded.published, published),"
	"  created_at = ifnull(created_at, excluded.created_at),"
	"  deleted_at = CASE ?10 WHEN 1 THEN excluded.updated_at"
	"   WHEN 0 THEN NULL ELSE deleted_at END,"
	"  updated_at = excluded.updated_at"
	" WHERE excluded.updated_at >= courses.updated_at",
	[ST_LEARNER] =
	"INSERT INTO learners (learner_id, email, name, login_name,"
	"  department, directory_object_id, updated_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	" ON CONFLICT (learner_id) DO UPDATE SET"
	"  email = ifnull(excluded.email, email),"
	"  name = ifnull(excluded.name, name),"
	"  login_name = ifnull(excluded.login_name, login_name),"
	"  department = ifnull(excluded.department, department),"
	"  directory_object_id = ifnull(excluded.directory_object_id,"
	"   directory_object_id),"
	"  updated_at = excluded.updated_at"
	" WHERE excluded.updated_at >= learners.updated_at",
	[ST_LATEST] =
	"SELECT enrollment_seq, cycle, state, updated_at,"
	"  approval_requested_at, enrolled_at, started_at, completed_at,"
	"  unenrolled_at"
	" FROM enrollments WHERE course_id = ?1 AND learner_id = ?2"
	" ORDER BY cycle DESC LIMIT 1",
	[ST_CYCLE] =
	"SELECT enrollment_seq, cycle, state, updated_at,"
	"  approval_requested_at, enrolled_at, started_at, completed_at,"
	"  unenrolled_at"
	" FROM enrollments WHERE course_id = ?1 AND learner_id = ?2"
	"  AND cycle = ?3",
	[ST_INSERT] =
	"INSERT INTO enrollments (course_id, learner_id, cycle, enrollment_id,"
	"  state, status, status_text, approval_requested_at, enrolled_at,"
	"  started_at, completed_at, unenrolled_at, updated_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[ST_UPDATE] =
	"UPDATE enrollments SET enrollment_id = ifnull(?4, enrollment_id),"
	"  state = ?5, status = ifnull(?6, status),"
	"  status_text = ifnull(?7, status_text),"
	"  approval_requested_at = ?8, enrolled_at = ?9, started_at = ?10,"
	"  completed_at = ?11, unenrolled_at = ?12, updated_at = ?13"
	" WHERE enrollment_seq = ?1",
	[ST_EVENT] =
	"INSERT OR IGNORE INTO enrollment_events (receiver_id, delivery_id,"
	"  notification_index, action, course_id, learner_id, cycle,"
	"  event_at, received_at, effect)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
};

/* The steps of a cycle, in order; their times are columns of enrollments
 * in this order too. */
enum step {
	STEP_APPROVAL_REQUESTED,
	STEP_ENROLLED,
	STEP_STARTED,
	STEP_COMPLETED,
	STEP_UNENROLLED,
	STEP_COUNT
};

static const char *const step_state[STEP_COUNT] = {
	ENROLLMENT_STATE_APPROVAL_REQUESTED,
	ENROLLMENT_STATE_ENROLLED,
	ENROLLMENT_STATE_STARTED,
	ENROLLMENT_STATE_COMPLETED,
	ENROLLMENT_STATE_UNENROLLED,
};

struct tracker {
	sqlite3 *db;			/* the statements' connection */
	sqlite3_stmt *st[ST_COUNT];
};

/* A cycle of a (course, learner), as read and as rewritten. */
struct cycle {
	bool exists;
	bool ended;		/* a later cycle exists: it only gets dates */
	int64_t seq;
	int64_t number;
	enum step state;
	int64_t updated_at;
	bool has_time[STEP_COUNT];
	int64_t time[STEP_COUNT];
};

static void
finalize_all(struct tracker *t)
{
	size_t i;

	for (i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(t->st[i]);
		t->st[i] = NULL;
	}
	t->db = NULL;
}

/* The statement, prepared on @p db and reset for use; NULL on failure. */
static sqlite3_stmt *
statement(struct tracker *t, sqlite3 *db, enum statement which)
{
	if (t->db != db)
		finalize_all(t);
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

static void
bind_time(sqlite3_stmt *st, int i, bool has, int64_t us)
{
	if (has)
		sqlite3_bind_int64(st, i, us);
}

/* Run a statement that returns no row. */
static int
run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static enum step
state_step(const char *state)
{
	enum step s;

	for (s = 0; s < STEP_COUNT; s++)
		if (strcmp(state, step_state[s]) == 0)
			return s;
	return STEP_ENROLLED;	/* not written by us: treat as enrolled */
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

/* Read cycle @p number, or the latest with 0. */
static int
read_cycle(struct tracker *t, sqlite3 *db, const char *course,
	   const char *learner, int64_t number, struct cycle *c)
{
	sqlite3_stmt *st = statement(t, db, number > 0 ? ST_CYCLE : ST_LATEST);
	int rc;
	int i;

	memset(c, 0, sizeof(*c));
	if (st == NULL)
		return -EIO;
	bind_text(st, 1, course);
	bind_text(st, 2, learner);
	if (number > 0)
		sqlite3_bind_int64(st, 3, number);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		c->exists = true;
		c->seq = sqlite3_column_int64(st, 0);
		c->number = sqlite3_column_int64(st, 1);
		c->state = state_step((const char *)sqlite3_column_text(st, 2));
		c->updated_at = sqlite3_column_int64(st, 3);
		for (i = 0; i < STEP_COUNT; i++) {
			c->has_time[i] =
				sqlite3_column_type(st, 4 + i) != SQLITE_NULL;
			c->time[i] = sqlite3_column_int64(st, 4 + i);
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* When the cycle began: its earliest step. */
static int64_t
cycle_start(const struct cycle *c)
{
	int64_t start = c->updated_at;
	int i;

	for (i = 0; i < STEP_COUNT; i++)
		if (c->has_time[i] && c->time[i] < start)
			start = c->time[i];
	return start;
}

/* The cycle an event at @p at belongs to: the latest, unless the event is
 * older than its beginning; then the one before, and so on. */
static int
read_cycle_of(struct tracker *t, sqlite3 *db, const char *course,
	      const char *learner, int64_t at, struct cycle *c)
{
	int rc = read_cycle(t, db, course, learner, 0, c);

	while (rc == 0 && c->exists && c->number > 1 && at < cycle_start(c)) {
		rc = read_cycle(t, db, course, learner, c->number - 1, c);
		c->ended = true;
	}
	return rc;
}

/* Move @p c by one event: returns whether it changed anything the
 * tables show (applied) or not (stale). A new cycle leaves c->exists
 * false with c->number set. */
static bool
apply_step(struct cycle *c, enum step step, int64_t at)
{
	if (!c->exists) {
		c->number = 1;
		goto new_cycle;
	}
	if (c->state == STEP_UNENROLLED) {
		if (!c->ended && step != STEP_UNENROLLED &&
		    at > c->time[STEP_UNENROLLED]) {
			c->number++;
			goto new_cycle;
		}
		/* An older step of the cycle that ended: date it, no more. */
		if (step != STEP_UNENROLLED && !c->has_time[step]) {
			c->has_time[step] = true;
			c->time[step] = at;
			return true;
		}
		return false;
	}
	if (step == STEP_UNENROLLED) {
		if (at < c->updated_at)
			return false;	/* older than what we know */
		c->state = STEP_UNENROLLED;
		c->has_time[step] = true;
		c->time[step] = at;
		c->updated_at = at;
		return true;
	}
	{
		bool changed = false;

		if (!c->has_time[step] || at < c->time[step]) {
			c->has_time[step] = true;
			c->time[step] = at;
			changed = true;
		}
		if (step > c->state) {
			c->state = step;
			changed = true;
		}
		if (at > c->updated_at)
			c->updated_at = at;
		return changed;
	}
new_cycle:
	memset(c->has_time, 0, sizeof(c->has_time));
	c->exists = false;
	c->state = step;
	c->has_time[step] = true;
	c->time[step] = at;
	c->updated_at = at;
	return true;
}

static int
write_cycle(struct tracker *t, sqlite3 *db, const struct cycle *c,
	    const char *course, const struct whr_lms365_user *u,
	    const struct whr_lms365_enrollment *e, bool newest)
{
	sqlite3_stmt *st = statement(t, db, c->exists ? ST_UPDATE : ST_INSERT);
	int i;

	if (st == NULL)
		return -EIO;
	if (c->exists) {
		sqlite3_bind_int64(st, 1, c->seq);
	} else {
		bind_text(st, 1, course);
		bind_text(st, 2, u->id);
		sqlite3_bind_int64(st, 3, c->number);
	}
	/* What the event says of the enrollment counts only when it is the
	 * newest word on it. */
	if (newest || !c->exists) {
		bind_text(st, 4, u->enrollment_id);
		if (e->has_status)
			sqlite3_bind_int64(st, 6, e->status);
		bind_text(st, 7, e->status_text);
	}
	bind_text(st, 5, step_state[c->state]);
	for (i = 0; i < STEP_COUNT; i++)
		bind_time(st, 8 + i, c->has_time[i], c->time[i]);
	sqlite3_bind_int64(st, 13, c->updated_at);
	return run(st);
}

static int
record_event(struct tracker *t, struct whr_event *ev, const char *action,
	     const char *course, const char *learner, int64_t cycle,
	     int64_t at, bool applied)
{
	sqlite3_stmt *st = statement(t, whr_event_db(ev), ST_EVENT);

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, whr_event_receiver_id(ev));
	bind_text(st, 2, whr_event_delivery_id(ev));
	sqlite3_bind_int64(st, 3, (sqlite3_int64)whr_event_index(ev));
	bind_text(st, 4, action);
	bind_text(st, 5, course);
	bind_text(st, 6, learner);
	if (cycle > 0)
		sqlite3_bind_int64(st, 7, cycle);
	sqlite3_bind_int64(st, 8, at);
	sqlite3_bind_int64(st, 9, whr_event_received_at(ev));
	bind_text(st, 10, applied ? "applied" : "stale");
	return run(st);
}

/* @p deleted: NULL keeps deleted_at, 1 sets it, 0 clears it. */
static int
upsert_course(struct tracker *t, sqlite3 *db,
	      const struct whr_lms365_course *c, int published, int64_t at,
	      bool created, int deleted)
{
	sqlite3_stmt *st = statement(t, db, ST_COURSE);

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
		sqlite3_bind_int64(st, 9, at);
	if (deleted >= 0)
		sqlite3_bind_int(st, 10, deleted);
	return run(st);
}

static int
upsert_learner(struct tracker *t, sqlite3 *db,
	       const struct whr_lms365_user *u, int64_t at)
{
	sqlite3_stmt *st = statement(t, db, ST_LEARNER);

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

static int64_t
event_time(struct whr_event *ev, const struct whr_lms365_time *ts)
{
	return ts->valid ? ts->us : whr_event_received_at(ev);
}

static enum whr_result
failed(struct whr_event *ev, const char *what)
{
	whr_event_set_reason(ev, "enrollments: cannot %s: %s", what,
			     sqlite3_errmsg(whr_event_db(ev)));
	return WHR_RETRY;
}

static enum whr_result
on_enrollment(struct tracker *t, struct whr_event *ev,
	      enum whr_lms365_action action)
{
	sqlite3 *db = whr_event_db(ev);
	struct whr_lms365_enrollment e;
	enum step step = STEP_ENROLLED;	/* set by action_step() */
	int64_t at;
	size_t i;

	if (whr_lms365_enrollment_decode(ev, &e) < 0)
		return WHR_REJECT;	/* the decoder gave the reason */
	if (e.course.id == NULL) {
		whr_event_set_reason(ev, "enrollments: Course.Id is missing");
		return WHR_REJECT;
	}
	for (i = 0; i < e.n_users; i++) {
		if (e.users[i].id == NULL) {
			whr_event_set_reason(ev, "enrollments: Users[%zu].Id is "
					     "missing", i);
			return WHR_REJECT;
		}
	}
	action_step(action, &step);
	at = event_time(ev, &e.timestamp);
	if (upsert_course(t, db, &e.course,
			  e.course.has_published ? e.course.published : -1, at,
			  false, -1) < 0)
		return failed(ev, "write the course");
	for (i = 0; i < e.n_users; i++) {
		const struct whr_lms365_user *u = &e.users[i];
		struct cycle c;
		bool applied;
		int64_t newest_before;

		if (upsert_learner(t, db, u, at) < 0)
			return failed(ev, "write the learner");
		if (read_cycle_of(t, db, e.course.id, u->id, at, &c) < 0)
			return failed(ev, "read the enrollment");
		newest_before = c.exists ? c.updated_at : INT64_MIN;
		applied = apply_step(&c, step, at);
		if (applied &&
		    write_cycle(t, db, &c, e.course.id, u, &e,
				at >= newest_before) < 0)
			return failed(ev, "write the enrollment");
		if (record_event(t, ev, whr_lms365_action_name(action),
				 e.course.id, u->id, c.number, at,
				 applied) < 0)
			return failed(ev, "record the event");
	}
	return WHR_DONE;
}

static enum whr_result
on_course(struct tracker *t, struct whr_event *ev,
	  enum whr_lms365_action action)
{
	struct whr_lms365_course_event e;
	int published = -1;
	bool applied;
	int64_t at;

	if (whr_lms365_course_decode(ev, &e) < 0)
		return WHR_REJECT;
	if (e.course.id == NULL) {
		whr_event_set_reason(ev, "enrollments: the course Id is missing");
		return WHR_REJECT;
	}
	if (action == WHR_LMS365_COURSE_PUBLISHED)
		published = 1;
	else if (action == WHR_LMS365_COURSE_UNPUBLISHED)
		published = 0;
	else if (e.course.has_published)
		published = e.course.published;
	at = event_time(ev, &e.timestamp);
	if (upsert_course(t, whr_event_db(ev), &e.course, published, at,
			  action == WHR_LMS365_COURSE_CREATED,
			  action == WHR_LMS365_COURSE_DELETED ? 1 : 0) < 0)
		return failed(ev, "write the course");
	/* The upsert changes nothing when the course knows a newer event. */
	applied = sqlite3_changes(whr_event_db(ev)) > 0;
	if (record_event(t, ev, whr_lms365_action_name(action), e.course.id,
			 NULL, 0, at, applied) < 0)
		return failed(ev, "record the event");
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
	finalize_all(t);
	return enrollments_schema_setup(db);
}

static void
destroy(void *userdata)
{
	struct tracker *t = userdata;

	finalize_all(t);
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
