/*
 * The enrollment tracker: who enrolled in, started and completed which
 * course, in tables of the inbox's own database, written through the
 * transaction handle (whr/tx.h) so that each event counts exactly once;
 * and the reports whr enrollments prints from those tables.
 *
 * enrollments.c  the handler (courses, learners, a learner's cycles)
 * schema.c       the tables, for each database the tracker supports, and
 *                their setup
 * report.c       the reports of whr enrollments
 *
 * The tables (all times are microseconds since the Unix epoch, UTC: a
 * step's time is the event's `TimeStamp`, its arrival time when it has
 * none):
 *
 * courses             one row per Course.Id (as sent; compared without
 *                     regard to case)
 * learners            one row per Users[].Id
 * enrollments         one row per (course, learner, cycle); a cycle starts
 *                     with the first event of a learner in a course, and
 *                     again with any step after an unenrollment, so
 *                     history is kept; state is a step's name
 *                     (enrollment_state_name())
 * enrollment_events   every event, one row per learner (course events:
 *                     learner ''), with its cycle and whether, in time
 *                     order, it changed something ("applied") or not
 *                     ("stale"); the source the cycles are rebuilt from
 * enrollments_meta    the schema's version
 */
#ifndef WHR_HANDLERS_ENROLLMENTS_H
#define WHR_HANDLERS_ENROLLMENTS_H

#include <stdbool.h>
#include <stdint.h>

#include <whr/whr.h>

/* The handler's name, in logs and in the inbox's record of outcomes. */
#define ENROLLMENTS_HANDLER "enrollments"

/* Bumped on every change of the tables; kept in enrollments_meta. */
#define ENROLLMENTS_SCHEMA_VERSION 1

/* The steps of a cycle, in the order an enrollment moves through them;
 * an unenrollment ends a cycle. Their times are columns of enrollments
 * in this order too. */
enum enrollment_step {
	ENROLLMENT_APPROVAL_REQUESTED,
	ENROLLMENT_ENROLLED,
	ENROLLMENT_STARTED,
	ENROLLMENT_COMPLETED,
	ENROLLMENT_UNENROLLED,
	ENROLLMENT_STEPS
};

/* The state an enrollment is in after @p step, as the tables write it:
 * "approval_requested", "enrolled", "started", "completed" or
 * "unenrolled". A static string; NULL out of range. */
const char *enrollment_state_name(enum enrollment_step step);

/* ---- the handler (enrollments.c) ---------------------------------------- */

/* Register the tracker with @p r: a transactional catch-all handler named
 * ENROLLMENTS_HANDLER, with its table setup. @p args must be NULL (it
 * takes none). 0, or a negative errno (logged). */
int enrollments_handler_add(struct whr_receiver *r, const char *args);

/* ---- the tables (schema.c) ---------------------------------------------- */

/* Register the tables' setup of the handler named @p handler for each
 * database the tracker has tables for (whr_receiver_add_tx_setup()). */
int enrollments_schema_register(struct whr_receiver *r, const char *handler);

/* The tables' setup (a whr_tx_setup_fn, inside the caller's
 * transaction): creates them on the first start; 0, or a negative errno
 * (logged), -EPROTO for tables newer than this whr. */
int enrollments_schema_setup(struct whr_tx *tx, void *userdata);

/* Whether @p tx's database holds the tables: 1, with their schema
 * version in @p version (-1 when it cannot be read); 0 when it does
 * not; or a negative errno when the database cannot be read
 * (whr_tx_error() says why), -EPROTONOSUPPORT for a database the
 * tracker has no tables for. */
int enrollments_schema_read(struct whr_tx *tx, int *version);

/* One of the tracker's tables as whr migrate copies it from a data
 * folder (SQLite) into a database (PostgreSQL), where the setup made the
 * tables: the rows @p read gives (SQLite's SQL), each written by @p write
 * (PostgreSQL's, with $1 to $columns). */
struct enrollments_table_copy {
	const char *name;
	const char *read;
	const char *write;
	int columns;
};

/* The tracker's tables of ENROLLMENTS_SCHEMA_VERSION, in an order to copy
 * them in: how many, with *@p tables pointing to them (static). */
size_t enrollments_copy_tables(const struct enrollments_table_copy **tables);

/* ---- the reports (report.c) -------------------------------------------- */

/*
 * What whr enrollments prints, read through a transaction handle on the
 * inbox's database (whr_store_tx() of a store the tool opened): each
 * report is one statement, so one consistent snapshot while whr serve
 * writes. Rows are handed to @p fn one at a time, in the report's order;
 * their strings are borrowed until @p fn returns. @p fn returns 0 to go
 * on, a positive number to stop there (the report then returns 0), or a
 * negative errno to fail with. Times are microseconds since the epoch.
 * Each report returns 0, @p fn's negative errno, or another negative
 * errno when the database cannot be read (whr_tx_error() says why).
 */

/* Which rows a report selects; zeroed, it selects all. */
struct enrollments_filter {
	const char *course;	/* its Course.Id or whole title, case
				 * ignored (beyond ASCII too) */
	const char *learner;	/* list, history: Users[].Id or e-mail,
				 * case ignored */
	const char *state;	/* list: enrollment_state_name()'s */
	bool has_since, has_until;
	int64_t since, until;	/* list, summary: the enrollment's last
				 * update in [since, until); history: the
				 * event's time */
	bool all_cycles;	/* list: every cycle, not only the latest */
	int64_t limit;		/* list, history: at most this many rows;
				 * <= 0: all */
};

/* One enrollment: a (course, learner, cycle). */
struct enrollment_row {
	const char *course_id;	/* as the course's row spells it */
	const char *course_title;	/* NULL: none known */
	const char *learner_id;	/* as the learner's row spells it */
	const char *email;	/* NULL: none known, likewise below */
	const char *name;
	const char *state;	/* enrollment_state_name()'s */
	int64_t cycle;		/* 1, 2 ... */
	bool has_at[ENROLLMENT_STEPS];	/* the step was taken, */
	int64_t at[ENROLLMENT_STEPS];	/* at this time */
	int64_t updated_at;	/* the newest event applied */
};

/* One course, counting the latest cycle of each of its learners. */
struct enrollments_course_row {
	const char *course_id;
	const char *course_title;	/* NULL: none known */
	int64_t enrolled;	/* enrolled, started or completed */
	int64_t started;	/* started or completed */
	int64_t completed;
	int64_t unenrolled;
	int64_t awaiting_approval;	/* approval requested */
	bool has_completion_rate;	/* false when enrolled is 0 */
	double completion_rate;	/* 100 * completed / enrolled */
	bool has_median_days;	/* false when no completed one has both
				 * times */
	double median_days;	/* of completed_at - enrolled_at, in days,
				 * over the completed ones */
};

/* One event the tracker recorded, for one learner. */
struct enrollment_event_row {
	int64_t event_at;	/* its TimeStamp (its arrival without) */
	const char *action;
	const char *course_id;
	const char *course_title;	/* NULL: none known */
	const char *learner_id;	/* NULL for a course event */
	const char *email;	/* NULL: none known, likewise below */
	const char *name;
	bool has_cycle;		/* false for a course event */
	int64_t cycle;
	const char *effect;	/* "applied" or "stale" */
	const char *delivery_id;	/* NULL: the delivery had no Id */
	const char *receiver_id;	/* NULL: the default receiver */
};

/* Check that @p tx's database holds the tracker's tables in a schema
 * this whr reads, and ready it for the reports (on SQLite, the SQL
 * function whr_fold(), which compares titles and e-mail addresses
 * without regard to case). 0; -ENOENT when the tables are not there (whr
 * serve ran with --no-enrollments); -EPROTO when their schema version,
 * in @p version (-1 when it cannot be read), is not one this whr reads;
 * -EPROTONOSUPPORT for a database the tracker has no tables for;
 * -ENOMEM; or another negative errno when the database cannot be read
 * (whr_tx_error() says why). */
int enrollments_report_open(struct whr_tx *tx, int *version);

/* One row per enrollment, by course title (case ignored), then the
 * learner's e-mail address and name (case ignored; none last), then
 * cycle. */
int enrollments_report_list(struct whr_tx *tx,
			    const struct enrollments_filter *f,
			    int (*fn)(const struct enrollment_row *row,
				      void *arg),
			    void *arg);

/* One row per course the tracker knows (zeros when none of its
 * enrollments is in the window), by title. */
int enrollments_report_summary(struct whr_tx *tx,
			       const struct enrollments_filter *f,
			       int (*fn)(const struct enrollments_course_row
						 *row,
					 void *arg),
			       void *arg);

/* Every event the tracker recorded, oldest first (by TimeStamp, then
 * step, then arrival). */
int enrollments_report_history(struct whr_tx *tx,
			       const struct enrollments_filter *f,
			       int (*fn)(const struct enrollment_event_row
						 *row,
					 void *arg),
			       void *arg);

#endif /* WHR_HANDLERS_ENROLLMENTS_H */
