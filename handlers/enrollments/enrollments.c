/*
 * The enrollment tracker: who enrolled in, started and completed which
 * course, in tables of the inbox's own database (enrollments.h).
 *
 * It is a transactional handler: it writes through the transaction handle
 * (whr/tx.h), in the transaction that records its done mark, so each
 * event counts exactly once, whatever crashes. Its SQL is written for each
 * database it has tables for (schema.c); the handle keeps the prepared
 * statements from call to call.
 *
 * What the tables say does not depend on the order events arrive in:
 * - a learner's cycles in a course are what its events make of them in
 *   time order (TimeStamp, then step, then arrival), whatever order they
 *   arrived in:
 *   - a step (approval requested, enrolled, started, completed) dates
 *     itself the first time it comes, and moves the state forward, never
 *     back;
 *   - an unenrollment ends the cycle;
 *   - any other step after an unenrollment starts the next cycle;
 *   enrollment id and status are the newest the cycle's events said;
 * - a course's and a learner's fields are the newest said, each judged by
 *   the TimeStamp of the event that said it; older events only fill in
 *   what is missing;
 * - every user in Users counts; each event leaves a row per learner in
 *   enrollment_events, applied or stale, kept once across replays.
 * An event without a TimeStamp is dated by its arrival.
 *
 * The common case, an event newer than every other of its (course,
 * learner), moves the latest cycle by one step. An older one (a retry, a
 * slow delivery, a replay) means the order changed: the cycles are folded
 * again from all the pair's events, and each event's cycle and effect
 * (applied or stale) rewritten. A pair has few events.
 */
#include "enrollments/enrollments.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <whr/whr.h>

enum statement {
	ST_COURSE,
	ST_COURSE_AT,
	ST_LEARNER,
	ST_LATEST,
	ST_CYCLE_PUT,
	ST_CYCLES_DROP,
	ST_EVENT_ADD,
	ST_EVENTS_OF,
	ST_EVENT_SET,
	ST_COUNT
};

/* A field of a course or learner: the newer event's word wins, an older
 * one only fills in a gap. @c is the column, @t the table's name and a
 * dot (PostgreSQL's upsert wants them; "" on SQLite), "excluded" the
 * event. */
#define NEWEST(t, c)							\
	"  " c " = CASE WHEN excluded.updated_at >= " t "updated_at"	\
	"   THEN coalesce(excluded." c ", " t c ")"			\
	"   ELSE coalesce(" t c ", excluded." c ") END,"

/* Published or not, as the newest event that said it. */
#define IF_NEWLY_PUBLISHED(t, c)					\
	"  " c " = CASE WHEN excluded.published IS NOT NULL AND"	\
	"   (" t "published_at IS NULL"					\
	"    OR excluded.published_at >= " t "published_at)"		\
	"   THEN excluded." c " ELSE " t c " END,"

/* The columns of a course or a learner that its newest event decides,
 * the same on both databases. */
#define COURSE_FIELDS(t)						\
	NEWEST(t, "title") NEWEST(t, "url") NEWEST(t, "course_type")	\
	NEWEST(t, "site_id") NEWEST(t, "web_id")			\
	IF_NEWLY_PUBLISHED(t, "published")				\
	IF_NEWLY_PUBLISHED(t, "published_at")
#define LEARNER_FIELDS(t)						\
	NEWEST(t, "email") NEWEST(t, "name") NEWEST(t, "login_name")	\
	NEWEST(t, "department") NEWEST(t, "directory_object_id")

static const char *const sqlite_statements[ST_COUNT] = {
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
	COURSE_FIELDS("")
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
	LEARNER_FIELDS("")
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

/*
 * The same on PostgreSQL (schema.c): $n placeholders, typed where the
 * server cannot tell; coalesce(), greatest() and least() for ifnull()
 * and SQLite's two-argument max() and min() (the same here: no NULL
 * reaches them); ids found by their key columns, lowered in the C
 * collation as SQLite's NOCASE compares; text ordered byte by byte, as
 * SQLite orders it.
 */
#define KEY_IS(column, param) \
	" " column "_key = lower(" param "::text COLLATE \"C\")"
#define PAIR_IS KEY_IS("course", "$1") " AND" KEY_IS("learner", "$2")

static const char *const postgresql_statements[ST_COUNT] = {
	[ST_COURSE] =
	"INSERT INTO courses AS c (course_id, title, url, course_type,"
	"  site_id, web_id, published, published_at, created_at, deleted_at,"
	"  course_event_at, updated_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7,"
	"  CASE WHEN $7::bigint IS NOT NULL THEN $8::bigint END,"
	"  CASE WHEN $9::bigint = 1 THEN $8 END,"
	"  CASE $10::bigint WHEN 1 THEN $8 END,"
	"  CASE $10 WHEN 0 THEN $8 END, $8)"
	" ON CONFLICT (course_key) DO UPDATE SET"
	COURSE_FIELDS("c.")
	"  created_at = least(coalesce(c.created_at, excluded.created_at),"
	"   coalesce(excluded.created_at, c.created_at)),"
	"  deleted_at = CASE"
	"   WHEN $10 = 1 AND excluded.updated_at >="
	"    coalesce(c.course_event_at, excluded.updated_at)"
	"    THEN greatest(coalesce(c.deleted_at, excluded.updated_at),"
	"     excluded.updated_at)"
	"   WHEN $10 = 0 AND excluded.updated_at > c.deleted_at THEN NULL"
	"   ELSE c.deleted_at END,"
	"  course_event_at = CASE WHEN $10 = 0"
	"   THEN greatest(coalesce(c.course_event_at, excluded.updated_at),"
	"    excluded.updated_at) ELSE c.course_event_at END,"
	"  updated_at = greatest(c.updated_at, excluded.updated_at)",
	[ST_COURSE_AT] =
	"SELECT updated_at FROM courses WHERE" KEY_IS("course", "$1"),
	[ST_LEARNER] =
	"INSERT INTO learners AS l (learner_id, email, name, login_name,"
	"  department, directory_object_id, updated_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7)"
	" ON CONFLICT (learner_key) DO UPDATE SET"
	LEARNER_FIELDS("l.")
	"  updated_at = greatest(l.updated_at, excluded.updated_at)",
	[ST_LATEST] =
	"SELECT cycle, state, updated_at, approval_requested_at, enrolled_at,"
	"  started_at, completed_at, unenrolled_at, enrollment_id, status,"
	"  status_text"
	" FROM enrollments WHERE" PAIR_IS
	" ORDER BY cycle DESC LIMIT 1",
	/* INSERT OR REPLACE: every column, the ids' spelling too. */
	[ST_CYCLE_PUT] =
	"INSERT INTO enrollments (course_id, learner_id, cycle,"
	"  enrollment_id, state, status, status_text, approval_requested_at,"
	"  enrolled_at, started_at, completed_at, unenrolled_at, updated_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
	" ON CONFLICT (course_key, learner_key, cycle) DO UPDATE SET"
	"  course_id = excluded.course_id, learner_id = excluded.learner_id,"
	"  enrollment_id = excluded.enrollment_id, state = excluded.state,"
	"  status = excluded.status, status_text = excluded.status_text,"
	"  approval_requested_at = excluded.approval_requested_at,"
	"  enrolled_at = excluded.enrolled_at,"
	"  started_at = excluded.started_at,"
	"  completed_at = excluded.completed_at,"
	"  unenrolled_at = excluded.unenrolled_at,"
	"  updated_at = excluded.updated_at",
	[ST_CYCLES_DROP] =
	"DELETE FROM enrollments WHERE" PAIR_IS " AND cycle > $3::bigint",
	[ST_EVENT_ADD] =
	"INSERT INTO enrollment_events (course_id, learner_id, receiver_id,"
	"  delivery_key, received_at, notification_index, delivery_id,"
	"  action, step, event_at, enrollment_id, status, status_text,"
	"  cycle, effect, user_index)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
	"  $14, $15, $16) ON CONFLICT DO NOTHING",
	[ST_EVENTS_OF] =
	"SELECT step, event_at, received_at, delivery_key, notification_index,"
	"  receiver_id, enrollment_id, status, status_text, cycle, effect"
	" FROM enrollment_events WHERE" PAIR_IS
	"  AND step IS NOT NULL"
	" ORDER BY event_at, step, received_at, delivery_key COLLATE \"C\","
	"  notification_index, receiver_id COLLATE \"C\"",
	[ST_EVENT_SET] =
	"UPDATE enrollment_events SET cycle = $7::bigint, effect = $8::text"
	" WHERE" PAIR_IS " AND receiver_id = $3::text"
	"  AND delivery_key = $4::text AND received_at = $5::bigint"
	"  AND notification_index = $6::bigint",
};

/* The statements for each database the tracker has tables for. */
static const char *const *const statements_of[] = {
	[WHR_DB_SQLITE] = sqlite_statements,
	[WHR_DB_POSTGRESQL] = postgresql_statements,
};

/* Statement @p which, with no parameter bound; NULL when it cannot be
 * prepared (whr_tx_error() says why). */
static struct whr_stmt *
statement(struct whr_tx *tx, enum statement which)
{
	size_t db = whr_tx_db(tx);
	const char *const *sql = db < sizeof(statements_of) /
					      sizeof(statements_of[0])
					 ? statements_of[db] : NULL;

	return sql != NULL ? whr_tx_prepare(tx, sql[which]) : NULL;
}

/* Run @p st, whose parameters were bound with results ORed into
 * @p bound (negative: one failed, whr_tx_error() says why). */
static int
run(struct whr_stmt *st, int bound)
{
	return bound < 0 ? -EIO : whr_stmt_run(st);
}

static const char *const state_names[ENROLLMENT_STEPS] = {
	"approval_requested",
	"enrolled",
	"started",
	"completed",
	"unenrolled",
};

const char *
enrollment_state_name(enum enrollment_step step)
{
	return (unsigned)step < ENROLLMENT_STEPS ? state_names[step] : NULL;
}

/* ---- a learner's cycles in a course -------------------------------------- */

/* One learner's part of an enrollment-type event. */
struct step_event {
	const char *course_id;
	const struct whr_lms365_user *user;
	size_t user_index;	/* its place in Users */
	const struct whr_lms365_enrollment *e;
	enum enrollment_step step;
	int64_t at;		/* TimeStamp, or the arrival */
};

struct cycle {
	int64_t number;		/* 0: none yet */
	enum enrollment_step state;
	bool has_time[ENROLLMENT_STEPS];
	int64_t time[ENROLLMENT_STEPS];
	int64_t updated_at;	/* its newest event */
	char *enrollment_id;	/* owned */
	bool has_status;
	int64_t status;
	char *status_text;	/* owned */
};

/* One stored event of the pair, as read back. */
struct stored_event {
	enum enrollment_step step;
	int64_t at;
	int64_t received_at;
	int64_t index;
	char *receiver_id;
	char *delivery_key;
	char *enrollment_id;
	bool has_status;
	int64_t status;
	char *status_text;
	int64_t cycle;		/* as stored; 0 for NULL */
	bool applied;		/* as stored */
};

static void
cycle_clear(struct cycle *c)
{
	free(c->enrollment_id);
	free(c->status_text);
	memset(c, 0, sizeof(*c));
}

static char *
dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

static char *
column_dup(struct whr_stmt *st, int i, bool *oom)
{
	return dup_or_null(whr_stmt_text(st, i), oom);
}

static enum enrollment_step
state_step(const char *state)
{
	enum enrollment_step s;

	for (s = 0; s < ENROLLMENT_STEPS; s++)
		if (state != NULL && strcmp(state, state_names[s]) == 0)
			return s;
	return ENROLLMENT_ENROLLED;	/* not written by us: enrolled */
}

/* Move @p c by one event, taken in time order. Returns whether the event
 * changed anything (applied) or not (stale). */
static bool
fold_step(struct cycle *c, enum enrollment_step step, int64_t at)
{
	bool applied = false;

	if (c->number == 0 || (c->state == ENROLLMENT_UNENROLLED &&
			       step != ENROLLMENT_UNENROLLED)) {
		int64_t next = c->number + 1;

		cycle_clear(c);
		c->number = next;
		c->state = step;
		c->has_time[step] = true;
		c->time[step] = at;
		c->updated_at = at;
		return true;
	}
	if (at > c->updated_at)
		c->updated_at = at;
	if (step == ENROLLMENT_UNENROLLED) {
		if (c->state == ENROLLMENT_UNENROLLED)
			return false;
		c->state = ENROLLMENT_UNENROLLED;
		c->has_time[step] = true;
		c->time[step] = at;
		return true;
	}
	if (!c->has_time[step]) {
		c->has_time[step] = true;
		c->time[step] = at;
		applied = true;
	}
	if (step > c->state) {
		c->state = step;
		applied = true;
	}
	return applied;
}

/* What an event says of the enrollment: the newest word counts. */
static int
take_words(struct cycle *c, const char *enrollment_id, bool has_status,
	   int64_t status, const char *status_text)
{
	bool oom = false;

	if (enrollment_id != NULL) {
		free(c->enrollment_id);
		c->enrollment_id = dup_or_null(enrollment_id, &oom);
	}
	if (has_status) {
		c->has_status = true;
		c->status = status;
	}
	if (status_text != NULL) {
		free(c->status_text);
		c->status_text = dup_or_null(status_text, &oom);
	}
	return oom ? -ENOMEM : 0;
}

/* What an event did, in enrollment_events.effect. */
static const char *
effect_name(bool applied)
{
	return applied ? "applied" : "stale";
}

/* Bind ?1 and ?2, the pair's course and learner: the key of every
 * statement on one pair. */
static int
bind_pair(struct whr_stmt *st, const struct step_event *se)
{
	return whr_stmt_bind_text(st, 1, se->course_id) |
	       whr_stmt_bind_text(st, 2, se->user->id);
}

/* The latest cycle of the pair, or c->number 0. */
static int
read_latest(struct whr_tx *tx, const struct step_event *se, struct cycle *c)
{
	struct whr_stmt *st = statement(tx, ST_LATEST);
	bool oom = false;
	int rc;
	int i;

	memset(c, 0, sizeof(*c));
	if (st == NULL || bind_pair(st, se) < 0)
		return -EIO;
	rc = whr_stmt_step(st);
	if (rc <= 0)
		return rc;
	c->number = whr_stmt_int(st, 0);
	c->state = state_step(whr_stmt_text(st, 1));
	c->updated_at = whr_stmt_int(st, 2);
	for (i = 0; i < ENROLLMENT_STEPS; i++) {
		c->has_time[i] = !whr_stmt_is_null(st, 3 + i);
		c->time[i] = whr_stmt_int(st, 3 + i);
	}
	c->enrollment_id = column_dup(st, 8, &oom);
	c->has_status = !whr_stmt_is_null(st, 9);
	c->status = whr_stmt_int(st, 9);
	c->status_text = column_dup(st, 10, &oom);
	if (oom)
		return -ENOMEM;
	/* To its end, so that no statement is left open. */
	return whr_stmt_run(st);
}

static int
put_cycle(struct whr_tx *tx, const struct step_event *se,
	  const struct cycle *c)
{
	struct whr_stmt *st = statement(tx, ST_CYCLE_PUT);
	int bound;
	int i;

	if (st == NULL)
		return -EIO;
	bound = bind_pair(st, se) |
		whr_stmt_bind_int(st, 3, c->number) |
		whr_stmt_bind_text(st, 4, c->enrollment_id) |
		whr_stmt_bind_text(st, 5, state_names[c->state]) |
		whr_stmt_bind_text(st, 7, c->status_text) |
		whr_stmt_bind_int(st, 13, c->updated_at);
	if (c->has_status)
		bound |= whr_stmt_bind_int(st, 6, c->status);
	for (i = 0; i < ENROLLMENT_STEPS; i++)
		if (c->has_time[i])
			bound |= whr_stmt_bind_int(st, 8 + i, c->time[i]);
	return run(st, bound);
}

/* Bind what every row of enrollment_events says of the event @p ev:
 * ?1 the course, ?2 the learner ('' for a course event), ?3 to ?7 where
 * the event came from, ?8 its Action, ?10 its time and ?15 its effect. */
static int
bind_event(struct whr_stmt *st, struct whr_event *ev, const char *course,
	   const char *learner, const char *action, int64_t at, bool applied)
{
	const char *delivery = whr_event_delivery_id(ev);

	return whr_stmt_bind_text(st, 1, course) |
	       whr_stmt_bind_text(st, 2, learner) |
	       whr_stmt_bind_text(st, 3, whr_event_receiver_id(ev)) |
	       whr_stmt_bind_text(st, 4, delivery != NULL ? delivery : "") |
	       whr_stmt_bind_int(st, 5, whr_event_received_at(ev)) |
	       whr_stmt_bind_int(st, 6, (int64_t)whr_event_index(ev)) |
	       whr_stmt_bind_text(st, 7, delivery) |
	       whr_stmt_bind_text(st, 8, action) |
	       whr_stmt_bind_int(st, 10, at) |
	       whr_stmt_bind_text(st, 15, effect_name(applied));
}

/* Record the event; @p cycle 0 and !@p applied for "not yet known". */
static int
add_event(struct whr_tx *tx, struct whr_event *ev, const struct step_event *se,
	  int64_t cycle, bool applied)
{
	struct whr_stmt *st = statement(tx, ST_EVENT_ADD);
	const struct whr_lms365_enrollment *e = se->e;
	int bound;

	if (st == NULL)
		return -EIO;
	bound = bind_event(st, ev, se->course_id, se->user->id,
			   whr_lms365_action_name(e->action), se->at,
			   applied) |
		whr_stmt_bind_int(st, 9, (int64_t)se->step) |
		whr_stmt_bind_text(st, 11, se->user->enrollment_id) |
		whr_stmt_bind_text(st, 13, e->status_text) |
		whr_stmt_bind_int(st, 16, (int64_t)se->user_index);
	if (e->has_status)
		bound |= whr_stmt_bind_int(st, 12, e->status);
	if (cycle > 0)
		bound |= whr_stmt_bind_int(st, 14, cycle);
	return run(st, bound);
}

static void
free_events(struct stored_event *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].receiver_id);
		free(v[i].delivery_key);
		free(v[i].enrollment_id);
		free(v[i].status_text);
	}
	free(v);
}

/* One row of ST_EVENTS_OF into @p e. */
static void
stored_event_read(struct whr_stmt *st, struct stored_event *e, bool *oom)
{
	int64_t step = whr_stmt_int(st, 0);
	const char *effect;

	memset(e, 0, sizeof(*e));
	e->step = step >= 0 && step < ENROLLMENT_STEPS
			  ? (enum enrollment_step)step
			  : ENROLLMENT_ENROLLED;
	e->at = whr_stmt_int(st, 1);
	e->received_at = whr_stmt_int(st, 2);
	e->delivery_key = column_dup(st, 3, oom);
	e->index = whr_stmt_int(st, 4);
	e->receiver_id = column_dup(st, 5, oom);
	e->enrollment_id = column_dup(st, 6, oom);
	e->has_status = !whr_stmt_is_null(st, 7);
	e->status = whr_stmt_int(st, 7);
	e->status_text = column_dup(st, 8, oom);
	e->cycle = whr_stmt_int(st, 9);
	effect = whr_stmt_text(st, 10);
	if (effect == NULL)
		*oom = true;	/* the column is NOT NULL */
	e->applied = effect != NULL && strcmp(effect, "applied") == 0;
}

/* Every enrollment event of the pair, in time order. */
static int
read_events(struct whr_tx *tx, const struct step_event *se,
	    struct stored_event **out, size_t *n_out)
{
	struct whr_stmt *st = statement(tx, ST_EVENTS_OF);
	struct stored_event *v = NULL;
	size_t n = 0, cap = 0;
	bool oom = false;
	int rc;

	if (st == NULL || bind_pair(st, se) < 0)
		return -EIO;
	while ((rc = whr_stmt_step(st)) > 0) {
		if (n == cap) {
			size_t grown_cap = cap ? 2 * cap : 16;
			struct stored_event *grown =
				realloc(v, grown_cap * sizeof(*grown));

			if (grown == NULL) {
				oom = true;
				break;
			}
			v = grown;
			cap = grown_cap;
		}
		stored_event_read(st, &v[n++], &oom);
		if (oom)
			break;
	}
	if (oom || rc < 0) {
		free_events(v, n);
		return oom ? -ENOMEM : rc;
	}
	*out = v;
	*n_out = n;
	return 0;
}

static int
set_event(struct whr_tx *tx, const struct step_event *se,
	  const struct stored_event *e, int64_t cycle, bool applied)
{
	struct whr_stmt *st = statement(tx, ST_EVENT_SET);

	if (st == NULL)
		return -EIO;
	return run(st, bind_pair(st, se) |
		       whr_stmt_bind_text(st, 3, e->receiver_id) |
		       whr_stmt_bind_text(st, 4, e->delivery_key) |
		       whr_stmt_bind_int(st, 5, e->received_at) |
		       whr_stmt_bind_int(st, 6, e->index) |
		       whr_stmt_bind_int(st, 7, cycle) |
		       whr_stmt_bind_text(st, 8, effect_name(applied)));
}

static int
drop_cycles_after(struct whr_tx *tx, const struct step_event *se,
		  int64_t last)
{
	struct whr_stmt *st = statement(tx, ST_CYCLES_DROP);

	if (st == NULL)
		return -EIO;
	return run(st, bind_pair(st, se) | whr_stmt_bind_int(st, 3, last));
}

/* The order changed: fold every event of the pair again. */
static int
refold(struct whr_tx *tx, struct whr_event *ev, const struct step_event *se)
{
	struct stored_event *v = NULL;
	struct cycle c = { 0 };
	size_t n = 0;
	size_t i;
	int rc;

	rc = add_event(tx, ev, se, 0, false);
	if (rc == 0)
		rc = read_events(tx, se, &v, &n);
	for (i = 0; rc == 0 && i < n; i++) {
		const struct stored_event *e = &v[i];
		bool applied = fold_step(&c, e->step, e->at);

		rc = take_words(&c, e->enrollment_id, e->has_status, e->status,
				e->status_text);
		if (rc == 0 && (e->cycle != c.number || e->applied != applied))
			rc = set_event(tx, se, e, c.number, applied);
		/* Put a cycle once its last event is in: before the next
		 * event starts another (fold_step's rule), or at the end. */
		if (rc == 0 &&
		    (i + 1 == n || (c.state == ENROLLMENT_UNENROLLED &&
				    v[i + 1].step != ENROLLMENT_UNENROLLED)))
			rc = put_cycle(tx, se, &c);
	}
	if (rc == 0)
		rc = drop_cycles_after(tx, se, c.number);
	cycle_clear(&c);
	free_events(v, n);
	return rc;
}

/* Apply @p se to its (course, learner): record the event, and bring the
 * learner's cycles in the course to what its events, in time order, make
 * of them. */
static int
cycles_apply(struct whr_tx *tx, struct whr_event *ev,
	     const struct step_event *se)
{
	struct cycle c;
	bool applied;
	int rc;

	rc = read_latest(tx, se, &c);
	if (rc < 0)
		goto out;
	if (c.number > 0 && se->at <= c.updated_at) {
		/* Not the newest of its pair: the order changed. */
		cycle_clear(&c);
		return refold(tx, ev, se);
	}
	applied = fold_step(&c, se->step, se->at);
	rc = take_words(&c, se->user->enrollment_id, se->e->has_status,
			se->e->status, se->e->status_text);
	if (rc == 0)
		rc = put_cycle(tx, se, &c);
	if (rc == 0)
		rc = add_event(tx, ev, se, c.number, applied);
out:
	cycle_clear(&c);
	return rc;
}

/* ---- courses and learners ------------------------------------------------ */

static bool
action_step(enum whr_lms365_action action, enum enrollment_step *step)
{
	switch (action) {
	case WHR_LMS365_ENROLLMENT_APPROVAL_REQUEST:
		*step = ENROLLMENT_APPROVAL_REQUESTED;
		return true;
	case WHR_LMS365_COURSE_ENROLLMENT:
		*step = ENROLLMENT_ENROLLED;
		return true;
	case WHR_LMS365_COURSE_STARTED:
		*step = ENROLLMENT_STARTED;
		return true;
	case WHR_LMS365_COURSE_COMPLETED:
		*step = ENROLLMENT_COMPLETED;
		return true;
	case WHR_LMS365_COURSE_UNENROLLMENT:
		*step = ENROLLMENT_UNENROLLED;
		return true;
	default:
		return false;
	}
}

/* @p kind: -1 an enrollment event, 1 CourseDeleted, 0 another course
 * event. @p published: -1 when not said. */
static int
upsert_course(struct whr_tx *tx, const struct whr_lms365_course *c,
	      int published, int64_t at, bool created, int kind)
{
	struct whr_stmt *st = statement(tx, ST_COURSE);
	int bound;

	if (st == NULL)
		return -EIO;
	bound = whr_stmt_bind_text(st, 1, c->id) |
		whr_stmt_bind_text(st, 2, c->title) |
		whr_stmt_bind_text(st, 3, c->url) |
		whr_stmt_bind_text(st, 4, c->course_type) |
		whr_stmt_bind_text(st, 5, c->site_id) |
		whr_stmt_bind_text(st, 6, c->web_id) |
		whr_stmt_bind_int(st, 8, at);
	if (published >= 0)
		bound |= whr_stmt_bind_int(st, 7, published);
	if (created)
		bound |= whr_stmt_bind_int(st, 9, 1);
	if (kind >= 0)
		bound |= whr_stmt_bind_int(st, 10, kind);
	return run(st, bound);
}

/* Whether an event at @p at is news for the course: none newer known. */
static int
course_news(struct whr_tx *tx, const char *id, int64_t at, bool *news)
{
	struct whr_stmt *st = statement(tx, ST_COURSE_AT);
	int rc;

	if (st == NULL || whr_stmt_bind_text(st, 1, id) < 0)
		return -EIO;
	rc = whr_stmt_step(st);
	*news = rc <= 0 || at >= whr_stmt_int(st, 0);
	return rc > 0 ? whr_stmt_run(st) : rc;
}

static int
upsert_learner(struct whr_tx *tx, const struct whr_lms365_user *u, int64_t at)
{
	struct whr_stmt *st = statement(tx, ST_LEARNER);

	if (st == NULL)
		return -EIO;
	return run(st, whr_stmt_bind_text(st, 1, u->id) |
		       whr_stmt_bind_text(st, 2, u->email) |
		       whr_stmt_bind_text(st, 3, u->title) |
		       whr_stmt_bind_text(st, 4, u->login_name) |
		       whr_stmt_bind_text(st, 5, u->department) |
		       whr_stmt_bind_text(st, 6, u->directory_object_id) |
		       whr_stmt_bind_int(st, 7, at));
}

/* A course event's row in enrollment_events (learner ''). */
static int
record_course_event(struct whr_tx *tx, struct whr_event *ev,
		    const char *action, const char *course, int64_t at,
		    bool applied)
{
	struct whr_stmt *st = statement(tx, ST_EVENT_ADD);

	if (st == NULL)
		return -EIO;
	return run(st, bind_event(st, ev, course, "", action, at, applied));
}

/* ---- the handler --------------------------------------------------------- */

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
				     whr_tx_error(whr_event_tx(ev)));
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

/* After a decoder returned @p rc: WHR_DONE to go on with the event, else
 * what to make of it: a retry without memory, a rejection when it could
 * not be decoded (the decoder gave the reason) or names no course
 * (@p course's id, at @p course_path). */
static enum whr_result
decoded(struct whr_event *ev, int rc, const struct whr_lms365_course *course,
	const char *course_path)
{
	if (rc == -ENOMEM)
		return failed(ev, "decode the event", rc);
	if (rc < 0)
		return WHR_REJECT;
	if (id_missing(course->id)) {
		whr_event_set_reason(ev, "enrollments: %s is missing or empty",
				     course_path);
		return WHR_REJECT;
	}
	return WHR_DONE;
}

/* Ids compared as the tables key them: without regard to ASCII case. */
static int
compare_ids(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = *a >= 'A' && *a <= 'Z' ? *a - 'A' + 'a' : *a;
		int y = *b >= 'A' && *b <= 'Z' ? *b - 'A' + 'a' : *b;

		if (x != y || x == '\0')
			return (unsigned char)x - (unsigned char)y;
	}
}

struct user_order {
	const char *id;
	size_t index;
};

/* By id, then by place in Users (the same learner twice: in order). */
static int
compare_users(const void *a, const void *b)
{
	const struct user_order *x = a;
	const struct user_order *y = b;
	int c = compare_ids(x->id, y->id);

	if (c != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * The learners of an event in the order their rows are written: by id.
 * Several replicas sharing one PostgreSQL write the tracker's rows at
 * once, each run in a transaction of its own; a run locks its course's
 * row, then its learners' rows, until it commits. Taken in one order
 * everywhere (one course, then learners by id), two runs can wait for
 * each other only one way round, never both: no deadlock. Each learner's
 * work is its own, so the order changes nothing else.
 */
static int
order_users(const struct whr_lms365_enrollment *e, struct user_order **out)
{
	struct user_order *v = calloc(e->n_users ? e->n_users : 1,
				      sizeof(*v));
	size_t i;

	if (v == NULL)
		return -ENOMEM;
	for (i = 0; i < e->n_users; i++)
		v[i] = (struct user_order){ e->users[i].id, i };
	if (e->n_users > 1)
		qsort(v, e->n_users, sizeof(*v), compare_users);
	*out = v;
	return 0;
}

static enum whr_result
on_enrollment(struct whr_tx *tx, struct whr_event *ev,
	      enum whr_lms365_action action)
{
	struct whr_lms365_enrollment e;
	struct user_order *order = NULL;
	enum whr_result result;
	struct step_event se;
	size_t i;
	int rc;

	result = decoded(ev, whr_lms365_enrollment_decode(ev, &e), &e.course,
			 "Course.Id");
	if (result != WHR_DONE)
		return result;
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
	se.step = ENROLLMENT_ENROLLED;
	action_step(action, &se.step);
	se.at = event_time(ev, &e.timestamp);
	rc = upsert_course(tx, &e.course,
			   e.course.has_published ? e.course.published : -1,
			   se.at, false, -1);
	if (rc < 0)
		return failed(ev, "write the course", rc);
	rc = order_users(&e, &order);
	if (rc < 0)
		return failed(ev, "order the learners", rc);
	result = WHR_DONE;
	for (i = 0; i < e.n_users && result == WHR_DONE; i++) {
		se.user_index = order[i].index;
		se.user = &e.users[se.user_index];
		rc = upsert_learner(tx, se.user, se.at);
		if (rc < 0)
			result = failed(ev, "write the learner", rc);
		else if ((rc = cycles_apply(tx, ev, &se)) < 0)
			result = failed(ev, "write the enrollment", rc);
	}
	free(order);
	return result;
}

static enum whr_result
on_course(struct whr_tx *tx, struct whr_event *ev,
	  enum whr_lms365_action action)
{
	struct whr_lms365_course_event e;
	enum whr_result result;
	int published = -1;
	bool news;
	int64_t at;
	int rc;

	result = decoded(ev, whr_lms365_course_decode(ev, &e), &e.course,
			 "the course Id");
	if (result != WHR_DONE)
		return result;
	if (action == WHR_LMS365_COURSE_PUBLISHED)
		published = 1;
	else if (action == WHR_LMS365_COURSE_UNPUBLISHED)
		published = 0;
	else if (e.course.has_published)
		published = e.course.published;
	at = event_time(ev, &e.timestamp);
	/* The history says whether it was news when it came; the course
	 * row is the same whatever the order. */
	rc = course_news(tx, e.course.id, at, &news);
	if (rc == 0)
		rc = upsert_course(tx, &e.course, published, at,
				   action == WHR_LMS365_COURSE_CREATED,
				   action == WHR_LMS365_COURSE_DELETED ? 1 : 0);
	if (rc < 0)
		return failed(ev, "write the course", rc);
	rc = record_course_event(tx, ev, whr_lms365_action_name(action),
				 e.course.id, at, news);
	if (rc < 0)
		return failed(ev, "record the event", rc);
	return WHR_DONE;
}

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	struct whr_tx *tx = whr_event_tx(ev);
	enum whr_lms365_action action =
		whr_lms365_action_parse(whr_event_action(ev));

	if (whr_lms365_is_enrollment(action))
		return on_enrollment(tx, ev, action);
	if (whr_lms365_is_course(action))
		return on_course(tx, ev, action);
	return WHR_DONE;	/* not ours: nothing to track */
}

int
enrollments_handler_add(struct whr_receiver *r, const char *args)
{
	struct whr_handler h = {
		.name = ENROLLMENTS_HANDLER,
		.action = "*",
		.fn = on_any,
		.flags = WHR_HANDLER_TRANSACTIONAL,
	};
	int rc;

	if (args != NULL) {
		whr_log(WHR_LOG_ERROR, "handler enrollments takes no arguments");
		return -EINVAL;
	}
	rc = whr_receiver_add_handler(r, &h);
	if (rc == 0)
		rc = enrollments_schema_register(r, ENROLLMENTS_HANDLER);
	return rc;
}
