/*
 * The enrollment tracker's insides, shared by enrollments.c (the handler,
 * courses and learners) and enrollments-cycles.c (a learner's cycles in a
 * course, rebuilt from its events).
 */
#ifndef WHR_HANDLERS_ENROLLMENTS_PRIVATE_H
#define WHR_HANDLERS_ENROLLMENTS_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <whr/whr.h>

struct sqlite3;
struct sqlite3_stmt;

enum tracker_statement {
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

struct tracker {
	struct sqlite3 *db;		/* the statements' connection */
	struct sqlite3_stmt *st[ST_COUNT];
};

/* Statement @p which, prepared on @p db (kept until the connection
 * changes) and reset with no bindings; NULL on failure. */
struct sqlite3_stmt *tracker_statement(struct tracker *t, struct sqlite3 *db,
				       enum tracker_statement which);

/* Finalize every statement (a new connection, or the end). */
void tracker_finalize(struct tracker *t);

/* One learner's part of an enrollment-type event. */
struct step_event {
	const char *course_id;
	const struct whr_lms365_user *user;
	size_t user_index;	/* its place in Users */
	const struct whr_lms365_enrollment *e;
	enum step step;
	int64_t at;		/* TimeStamp, or the arrival */
};

/* Apply @p se to its (course, learner): record the event, and bring the
 * learner's cycles in the course to what its events, in time order, make
 * of them. 0, or -EIO (the connection's error says why) or -ENOMEM. */
int cycles_apply(struct tracker *t, struct whr_event *ev,
		 const struct step_event *se);

#endif /* WHR_HANDLERS_ENROLLMENTS_PRIVATE_H */
