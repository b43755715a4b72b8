/*
 * The enrollment tracker's tables, in the inbox database. Shared
 * by the tracker, which writes them, and `whr enrollments`, which reads
 * them. All times are microseconds since the Unix epoch, UTC: a step's
 * time is the event's `TimeStamp` (its arrival time when it has none).
 *
 * courses             one row per Course.Id (as sent; compared without
 *                     regard to case)
 * learners            one row per Users[].Id
 * enrollments         one row per (course, learner, cycle); a cycle starts
 *                     with the first event of a learner in a course, and
 *                     again with any step after an unenrollment, so
 *                     history is kept; state is one of
 *                     ENROLLMENT_STATE_*
 * enrollment_events   every event, one row per learner (course events:
 *                     learner ''), with its cycle and whether, in time
 *                     order, it changed something ("applied") or not
 *                     ("stale"); the source the cycles are rebuilt from
 */
#ifndef WHR_HANDLERS_ENROLLMENTS_H
#define WHR_HANDLERS_ENROLLMENTS_H

struct sqlite3;

/* Bumped on every change of the tables; kept in enrollments_meta. */
#define ENROLLMENTS_SCHEMA_VERSION 1

/* States, in the order an enrollment moves through them; "unenrolled"
 * ends a cycle. */
#define ENROLLMENT_STATE_APPROVAL_REQUESTED "approval_requested"
#define ENROLLMENT_STATE_ENROLLED "enrolled"
#define ENROLLMENT_STATE_STARTED "started"
#define ENROLLMENT_STATE_COMPLETED "completed"
#define ENROLLMENT_STATE_UNENROLLED "unenrolled"

/* Create or migrate the tables, inside the caller's transaction. 0, or a
 * negative errno (logged), -EPROTO for tables newer than this binary. */
int enrollments_schema_setup(struct sqlite3 *db);

/* Whether the tables exist in @p db (a read-only reader's question). */
int enrollments_schema_present(struct sqlite3 *db);

#endif /* WHR_HANDLERS_ENROLLMENTS_H */
