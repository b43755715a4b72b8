/*
 * whr enrollments: the three reports (list, summary, history), each one
 * SQL statement over the tracker's tables (handlers/enrollments-schema.c)
 * whose rows enrollments-report.c prints. One statement is one snapshot
 * of the database, consistent while whr serve writes.
 */
#include "enrollments-cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "enrollments-report.h"

/* ---- the reports ------------------------------------------------------- */

/* Microseconds since the epoch as "2024-05-01T10:15:30Z" (floored to the
 * second), NULL as NULL. */
#define ISO(col) \
	"strftime('%Y-%m-%dT%H:%M:%SZ', (" col " - ((" col \
	") % 1000000 + 1000000) % 1000000) / 1000000, 'unixepoch')"

/* ?1 a course's id or title, against course id column @p id and the
 * courses row c. */
#define COURSE_MATCH(id) \
	" (?1 IS NULL OR " id " = ?1 OR whr_fold(c.title) = whr_fold(?1))"
#define LEARNER_MATCH(id) \
	" (?2 IS NULL OR " id " = ?2 OR whr_fold(l.email) = whr_fold(?2))"
#define LATEST(e) \
	" " e ".cycle = (SELECT max(x.cycle) FROM enrollments x" \
	" WHERE x.course_id = " e ".course_id" \
	" AND x.learner_id = " e ".learner_id)"

/* @p sql prepared, with ?1 to ?4 bound to the course, learner, since and
 * until that were given (NULL: no filter): 0, or 1 after a message that
 * says @p what failed. */
static int
prepare(const struct data_dir *d, const struct query *q, const char *sql,
	const char *what, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(d->db, sql, -1, st, NULL) != SQLITE_OK)
		return enrollments_sql_error(d, what);
	if (q->course != NULL)
		sqlite3_bind_text(*st, 1, q->course, -1, SQLITE_STATIC);
	if (q->learner != NULL)
		sqlite3_bind_text(*st, 2, q->learner, -1, SQLITE_STATIC);
	if (q->given & OPT_SINCE)
		sqlite3_bind_int64(*st, 3, q->since);
	if (q->given & OPT_UNTIL)
		sqlite3_bind_int64(*st, 4, q->until);
	return 0;
}

/* Print @p st's rows and finalize it: 0, or 1 after a message. */
static int
print_report(const struct data_dir *d, sqlite3_stmt *st,
	     const struct query *q, const struct report_column *cols,
	     size_t n_cols, const char *empty)
{
	int rc, err;

	rc = report_print(stdout, st, cols, n_cols, q->format, empty);
	err = errno;
	if (rc == -EIO)
		enrollments_sql_error(d, "cannot read the enrollments");
	sqlite3_finalize(st);
	if (rc == -ENOMEM)
		fprintf(stderr, ENROLLMENTS_PROG ": out of memory\n");
	else if (rc == -EPIPE)
		fprintf(stderr,
			ENROLLMENTS_PROG ": cannot write the output: %s\n",
			strerror(err));
	return rc < 0 ? 1 : 0;
}

int
enrollments_list(const struct data_dir *d, const struct query *q)
{
	static const struct report_column cols[] = {
		{ "course_id", "COURSE ID", REPORT_TEXT },
		{ "course_title", "COURSE", REPORT_TEXT },
		{ "learner_id", "LEARNER ID", REPORT_TEXT },
		{ "email", "E-MAIL", REPORT_TEXT },
		{ "name", "NAME", REPORT_TEXT },
		{ "state", "STATE", REPORT_TEXT },
		{ "cycle", "CYCLE", REPORT_INT },
		{ "approval_requested_at", "APPROVAL REQUESTED", REPORT_TEXT },
		{ "enrolled_at", "ENROLLED", REPORT_TEXT },
		{ "started_at", "STARTED", REPORT_TEXT },
		{ "completed_at", "COMPLETED", REPORT_TEXT },
		{ "unenrolled_at", "UNENROLLED", REPORT_TEXT },
		{ "updated_at", "UPDATED", REPORT_TEXT },
	};
	sqlite3_stmt *st = NULL;

	if (prepare(d, q,
		"SELECT coalesce(c.course_id, e.course_id), c.title,"
		" coalesce(l.learner_id, e.learner_id), l.email, l.name,"
		" e.state, e.cycle, " ISO("e.approval_requested_at") ","
		" " ISO("e.enrolled_at") ", " ISO("e.started_at") ","
		" " ISO("e.completed_at") ", " ISO("e.unenrolled_at") ","
		" " ISO("e.updated_at")
		" FROM enrollments e"
		" LEFT JOIN courses c ON c.course_id = e.course_id"
		" LEFT JOIN learners l ON l.learner_id = e.learner_id"
		" WHERE" COURSE_MATCH("e.course_id")
		" AND" LEARNER_MATCH("e.learner_id")
		" AND (?3 IS NULL OR e.updated_at >= ?3)"
		" AND (?4 IS NULL OR e.updated_at < ?4)"
		" AND (?5 IS NULL OR e.state = ?5)"
		" AND (?6 OR" LATEST("e") ")"
		" ORDER BY whr_fold(c.title) NULLS LAST, c.title, e.course_id,"
		" whr_fold(l.email) NULLS LAST, whr_fold(l.name) NULLS LAST,"
		" e.learner_id, e.cycle"
		" LIMIT ?7",
		"cannot list the enrollments", &st) != 0)
		return 1;
	if (q->state != NULL)
		sqlite3_bind_text(st, 5, q->state, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, (q->given & OPT_ALL_CYCLES) != 0);
	sqlite3_bind_int64(st, 7, q->limit > 0 ? q->limit : -1);
	return print_report(d, st, q, cols, sizeof(cols) / sizeof(cols[0]),
			    "no enrollments");
}

int
enrollments_summary(const struct data_dir *d, const struct query *q)
{
	static const struct report_column cols[] = {
		{ "course_id", "COURSE ID", REPORT_TEXT },
		{ "course_title", "COURSE", REPORT_TEXT },
		{ "enrolled", "ENROLLED", REPORT_INT },
		{ "started", "STARTED", REPORT_INT },
		{ "completed", "COMPLETED", REPORT_INT },
		{ "unenrolled", "UNENROLLED", REPORT_INT },
		{ "awaiting_approval", "AWAITING APPROVAL", REPORT_INT },
		{ "completion_rate", "COMPLETION %", REPORT_DECIMAL },
		{ "median_days_to_complete", "MEDIAN DAYS", REPORT_DECIMAL },
	};
	sqlite3_stmt *st = NULL;

	/* The latest cycle of each (course, learner), updated in the
	 * window; every course the tracker knows gets a row, with zeros
	 * when none of its enrollments is in the window. */
	if (prepare(d, q,
		"WITH latest AS (SELECT e.course_id, e.state, e.enrolled_at,"
		"  e.completed_at FROM enrollments e WHERE" LATEST("e")
		"  AND (?3 IS NULL OR e.updated_at >= ?3)"
		"  AND (?4 IS NULL OR e.updated_at < ?4)),"
		" counts AS (SELECT course_id,"
		"  sum(state IN ('enrolled', 'started', 'completed'))"
		"   AS enrolled,"
		"  sum(state IN ('started', 'completed')) AS started,"
		"  sum(state = 'completed') AS completed,"
		"  sum(state = 'unenrolled') AS unenrolled,"
		"  sum(state = 'approval_requested') AS awaiting"
		"  FROM latest GROUP BY course_id),"
		" durations AS (SELECT course_id,"
		"  completed_at - enrolled_at AS d,"
		"  row_number() OVER (PARTITION BY course_id"
		"   ORDER BY completed_at - enrolled_at) AS rn,"
		"  count(*) OVER (PARTITION BY course_id) AS n"
		"  FROM latest WHERE state = 'completed'"
		"  AND enrolled_at IS NOT NULL AND completed_at IS NOT NULL),"
		" medians AS (SELECT course_id, avg(d) / 86400000000.0 AS days"
		"  FROM durations WHERE rn IN ((n + 1) / 2, (n + 2) / 2)"
		"  GROUP BY course_id),"
		" ids AS (SELECT course_id FROM courses"
		"  UNION SELECT course_id FROM enrollments)"
		" SELECT i.course_id, c.title, coalesce(s.enrolled, 0),"
		" coalesce(s.started, 0), coalesce(s.completed, 0),"
		" coalesce(s.unenrolled, 0), coalesce(s.awaiting, 0),"
		" CASE WHEN s.enrolled > 0"
		"  THEN 100.0 * s.completed / s.enrolled END,"
		" m.days"
		" FROM ids i"
		" LEFT JOIN courses c ON c.course_id = i.course_id"
		" LEFT JOIN counts s ON s.course_id = i.course_id"
		" LEFT JOIN medians m ON m.course_id = i.course_id"
		" WHERE" COURSE_MATCH("i.course_id")
		" AND ?2 IS NULL"
		" ORDER BY whr_fold(c.title) NULLS LAST, c.title, i.course_id",
		"cannot summarise the enrollments", &st) != 0)
		return 1;
	return print_report(d, st, q, cols, sizeof(cols) / sizeof(cols[0]),
			    "no courses");
}

int
enrollments_history(const struct data_dir *d, const struct query *q)
{
	static const struct report_column cols[] = {
		{ "event_at", "TIME", REPORT_TEXT },
		{ "action", "ACTION", REPORT_TEXT },
		{ "course_id", "COURSE ID", REPORT_TEXT },
		{ "course_title", "COURSE", REPORT_TEXT },
		{ "learner_id", "LEARNER ID", REPORT_TEXT },
		{ "email", "E-MAIL", REPORT_TEXT },
		{ "name", "NAME", REPORT_TEXT },
		{ "cycle", "CYCLE", REPORT_INT },
		{ "effect", "EFFECT", REPORT_TEXT },
		{ "delivery_id", "DELIVERY", REPORT_TEXT },
		{ "receiver", "RECEIVER", REPORT_TEXT },
	};
	sqlite3_stmt *st = NULL;

	if (prepare(d, q,
		"SELECT " ISO("ev.event_at") ", ev.action,"
		" coalesce(c.course_id, ev.course_id), c.title,"
		" coalesce(l.learner_id, nullif(ev.learner_id, '')), l.email, l.name,"
		" ev.cycle, ev.effect,"
		" ev.delivery_id, nullif(ev.receiver_id, '')"
		" FROM enrollment_events ev"
		" LEFT JOIN courses c ON c.course_id = ev.course_id"
		" LEFT JOIN learners l ON l.learner_id = ev.learner_id"
		" WHERE" COURSE_MATCH("ev.course_id")
		" AND" LEARNER_MATCH("ev.learner_id")
		" AND (?3 IS NULL OR ev.event_at >= ?3)"
		" AND (?4 IS NULL OR ev.event_at < ?4)"
		" ORDER BY ev.event_at, ev.step, ev.received_at,"
		"  ev.notification_index, ev.user_index"
		" LIMIT ?5",
		"cannot read the history", &st) != 0)
		return 1;
	sqlite3_bind_int64(st, 5, q->limit > 0 ? q->limit : -1);
	return print_report(d, st, q, cols, sizeof(cols) / sizeof(cols[0]),
			    "no enrollment events");
}

