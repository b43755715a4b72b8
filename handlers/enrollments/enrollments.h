/*
 * The enrollment tracker: who enrolled in, started and completed which
 * course, in tables of the inbox's own database, written through the
 * transaction handle (whr/tx.h) so that each event counts exactly once;
 * and the reports whr enrollments prints from those tables.
 *
 * enrollments.c  the handler (courses, learners, a learner's cycles)
 * schema.c       the tables, for each database the tracker supports, and
 *                their setup
 * report.c       the reports
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

/* Whether @p tx's database holds the tables: 1, with their schema
 * version in @p version (-1 when it cannot be read); 0 when it does
 * not; or a negative errno when the database cannot be read
 * (whr_tx_error() says why), -EPROTONOSUPPORT for a database the
 * tracker has no tables for. */
int enrollments_schema_read(struct whr_tx *tx, int *version);

#endif /* WHR_HANDLERS_ENROLLMENTS_H */
