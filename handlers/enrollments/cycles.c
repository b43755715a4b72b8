/*
 * A learner's cycles in a course, as its events make them when taken in
 * time order (TimeStamp, then step, then arrival), whatever order they
 * arrived in:
 * - a step (approval requested, enrolled, started, completed) dates
 *   itself the first time it comes, and moves the state forward, never
 *   back;
 * - an unenrollment ends the cycle;
 * - any other step after an unenrollment starts the next cycle.
 * Enrollment id and status are the newest the cycle's events said.
 *
 * The common case, an event newer than every other of its (course,
 * learner), moves the latest cycle by one step. An older one (a retry, a
 * slow delivery, a replay) means the order changed: the cycles are folded
 * again from all the pair's events, and each event's cycle and effect
 * (applied or stale) rewritten. A pair has few events.
 */
#include "enrollments/private.h"
#include "enrollments/enrollments.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

static const char *const step_state[STEP_COUNT] = {
	ENROLLMENT_STATE_APPROVAL_REQUESTED,
	ENROLLMENT_STATE_ENROLLED,
	ENROLLMENT_STATE_STARTED,
	ENROLLMENT_STATE_COMPLETED,
	ENROLLMENT_STATE_UNENROLLED,
};

struct cycle {
	int64_t number;		/* 0: none yet */
	enum step state;
	bool has_time[STEP_COUNT];
	int64_t time[STEP_COUNT];
	int64_t updated_at;	/* its newest event */
	char *enrollment_id;	/* owned */
	bool has_status;
	int64_t status;
	char *status_text;	/* owned */
};

/* One stored event of the pair, as read back. */
struct stored_event {
	enum step step;
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
column_dup(sqlite3_stmt *st, int i, bool *oom)
{
	return dup_or_null((const char *)sqlite3_column_text(st, i), oom);
}

static enum step
state_step(const char *state)
{
	enum step s;

	for (s = 0; s < STEP_COUNT; s++)
		if (state != NULL && strcmp(state, step_state[s]) == 0)
			return s;
	return STEP_ENROLLED;	/* not written by us: treat as enrolled */
}

/* Move @p c by one event, taken in time order. Returns whether the event
 * changed anything (applied) or not (stale). */
static bool
fold_step(struct cycle *c, enum step step, int64_t at)
{
	bool applied = false;

	if (c->number == 0 ||
	    (c->state == STEP_UNENROLLED && step != STEP_UNENROLLED)) {
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
	if (step == STEP_UNENROLLED) {
		if (c->state == STEP_UNENROLLED)
			return false;
		c->state = STEP_UNENROLLED;
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

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

/* The latest cycle of the pair, or c->number 0. */
static int
read_latest(struct tracker *t, sqlite3 *db, const struct step_event *se,
	    struct cycle *c)
{
	sqlite3_stmt *st = tracker_statement(t, db, ST_LATEST);
	bool oom = false;
	int rc;
	int i;

	memset(c, 0, sizeof(*c));
	if (st == NULL)
		return -EIO;
	bind_text(st, 1, se->course_id);
	bind_text(st, 2, se->user->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		c->number = sqlite3_column_int64(st, 0);
		c->state = state_step((const char *)sqlite3_column_text(st, 1));
		c->updated_at = sqlite3_column_int64(st, 2);
		for (i = 0; i < STEP_COUNT; i++) {
			c->has_time[i] =
				sqlite3_column_type(st, 3 + i) != SQLITE_NULL;
			c->time[i] = sqlite3_column_int64(st, 3 + i);
		}
		c->enrollment_id = column_dup(st, 8, &oom);
		c->has_status = sqlite3_column_type(st, 9) != SQLITE_NULL;
		c->status = sqlite3_column_int64(st, 9);
		c->status_text = column_dup(st, 10, &oom);
	}
	sqlite3_reset(st);
	if (oom)
		return -ENOMEM;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int
put_cycle(struct tracker *t, sqlite3 *db, const struct step_event *se,
	  const struct cycle *c)
{
	sqlite3_stmt *st = tracker_statement(t, db, ST_CYCLE_PUT);
	int i;

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, se->course_id);
	bind_text(st, 2, se->user->id);
	sqlite3_bind_int64(st, 3, c->number);
	bind_text(st, 4, c->enrollment_id);
	bind_text(st, 5, step_state[c->state]);
	if (c->has_status)
		sqlite3_bind_int64(st, 6, c->status);
	bind_text(st, 7, c->status_text);
	for (i = 0; i < STEP_COUNT; i++)
		if (c->has_time[i])
			sqlite3_bind_int64(st, 8 + i, c->time[i]);
	sqlite3_bind_int64(st, 13, c->updated_at);
	return step_done(st);
}

/* Record the event; @p cycle 0 and !@p applied for "not yet known". */
static int
add_event(struct tracker *t, struct whr_event *ev, const struct step_event *se,
	  int64_t cycle, bool applied)
{
	sqlite3_stmt *st = tracker_statement(t, whr_event_db(ev), ST_EVENT_ADD);
	const char *delivery = whr_event_delivery_id(ev);
	const struct whr_lms365_enrollment *e = se->e;

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, se->course_id);
	bind_text(st, 2, se->user->id);
	bind_text(st, 3, whr_event_receiver_id(ev));
	bind_text(st, 4, delivery != NULL ? delivery : "");
	sqlite3_bind_int64(st, 5, whr_event_received_at(ev));
	sqlite3_bind_int64(st, 6, (sqlite3_int64)whr_event_index(ev));
	bind_text(st, 7, delivery);
	bind_text(st, 8, whr_lms365_action_name(e->action));
	sqlite3_bind_int(st, 9, (int)se->step);
	sqlite3_bind_int64(st, 10, se->at);
	bind_text(st, 11, se->user->enrollment_id);
	if (e->has_status)
		sqlite3_bind_int64(st, 12, e->status);
	bind_text(st, 13, e->status_text);
	if (cycle > 0)
		sqlite3_bind_int64(st, 14, cycle);
	bind_text(st, 15, applied ? "applied" : "stale");
	sqlite3_bind_int64(st, 16, (sqlite3_int64)se->user_index);
	return step_done(st);
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

/* Every enrollment event of the pair, in time order. */
static int
read_events(struct tracker *t, sqlite3 *db, const struct step_event *se,
	    struct stored_event **out, size_t *n_out)
{
	sqlite3_stmt *st = tracker_statement(t, db, ST_EVENTS_OF);
	struct stored_event *v = NULL;
	size_t n = 0, cap = 0;
	bool oom = false;
	int rc;

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, se->course_id);
	bind_text(st, 2, se->user->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct stored_event *e;
		int step;

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
		e = &v[n++];
		memset(e, 0, sizeof(*e));
		step = sqlite3_column_int(st, 0);
		e->step = step >= 0 && step < STEP_COUNT ? (enum step)step
							 : STEP_ENROLLED;
		e->at = sqlite3_column_int64(st, 1);
		e->received_at = sqlite3_column_int64(st, 2);
		e->delivery_key = column_dup(st, 3, &oom);
		e->index = sqlite3_column_int64(st, 4);
		e->receiver_id = column_dup(st, 5, &oom);
		e->enrollment_id = column_dup(st, 6, &oom);
		e->has_status = sqlite3_column_type(st, 7) != SQLITE_NULL;
		e->status = sqlite3_column_int64(st, 7);
		e->status_text = column_dup(st, 8, &oom);
		e->cycle = sqlite3_column_int64(st, 9);
		e->applied = strcmp((const char *)sqlite3_column_text(st, 10),
				    "applied") == 0;
	}
	sqlite3_reset(st);
	if (oom || (rc != SQLITE_ROW && rc != SQLITE_DONE)) {
		free_events(v, n);
		return oom ? -ENOMEM : -EIO;
	}
	*out = v;
	*n_out = n;
	return 0;
}

static int
set_event(struct tracker *t, sqlite3 *db, const struct step_event *se,
	  const struct stored_event *e, int64_t cycle, bool applied)
{
	sqlite3_stmt *st = tracker_statement(t, db, ST_EVENT_SET);

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, se->course_id);
	bind_text(st, 2, se->user->id);
	bind_text(st, 3, e->receiver_id);
	bind_text(st, 4, e->delivery_key);
	sqlite3_bind_int64(st, 5, e->received_at);
	sqlite3_bind_int64(st, 6, e->index);
	sqlite3_bind_int64(st, 7, cycle);
	bind_text(st, 8, applied ? "applied" : "stale");
	return step_done(st);
}

static int
drop_cycles_after(struct tracker *t, sqlite3 *db, const struct step_event *se,
		  int64_t last)
{
	sqlite3_stmt *st = tracker_statement(t, db, ST_CYCLES_DROP);

	if (st == NULL)
		return -EIO;
	bind_text(st, 1, se->course_id);
	bind_text(st, 2, se->user->id);
	sqlite3_bind_int64(st, 3, last);
	return step_done(st);
}

/* The order changed: fold every event of the pair again. */
static int
refold(struct tracker *t, struct whr_event *ev, const struct step_event *se)
{
	sqlite3 *db = whr_event_db(ev);
	struct stored_event *v = NULL;
	struct cycle c = { 0 };
	size_t n = 0;
	size_t i;
	int rc;

	rc = add_event(t, ev, se, 0, false);
	if (rc == 0)
		rc = read_events(t, db, se, &v, &n);
	for (i = 0; rc == 0 && i < n; i++) {
		const struct stored_event *e = &v[i];
		bool applied = fold_step(&c, e->step, e->at);

		rc = take_words(&c, e->enrollment_id, e->has_status, e->status,
				e->status_text);
		if (rc == 0 && (e->cycle != c.number || e->applied != applied))
			rc = set_event(t, db, se, e, c.number, applied);
		/* Put a cycle once its last event is in: before the next
		 * event starts another (fold_step's rule), or at the end. */
		if (rc == 0 && (i + 1 == n || (c.state == STEP_UNENROLLED &&
					       v[i + 1].step != STEP_UNENROLLED)))
			rc = put_cycle(t, db, se, &c);
	}
	if (rc == 0)
		rc = drop_cycles_after(t, db, se, c.number);
	cycle_clear(&c);
	free_events(v, n);
	return rc;
}

int
cycles_apply(struct tracker *t, struct whr_event *ev,
	     const struct step_event *se)
{
	sqlite3 *db = whr_event_db(ev);
	struct cycle c;
	bool applied;
	int rc;

	rc = read_latest(t, db, se, &c);
	if (rc < 0)
		goto out;
	if (c.number > 0 && se->at <= c.updated_at) {
		/* Not the newest of its pair: the order changed. */
		cycle_clear(&c);
		return refold(t, ev, se);
	}
	applied = fold_step(&c, se->step, se->at);
	rc = take_words(&c, se->user->enrollment_id, se->e->has_status,
			se->e->status, se->e->status_text);
	if (rc == 0)
		rc = put_cycle(t, db, se, &c);
	if (rc == 0)
		rc = add_event(t, ev, se, c.number, applied);
out:
	cycle_clear(&c);
	return rc;
}
