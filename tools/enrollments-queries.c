/*
 * whr enrollments: the three reports (list, summary, history). The
 * tracker reads them (handlers/enrollments/report.c); this names their
 * columns and turns each row into the cells enrollments-report.c prints.
 */
#include "enrollments-cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "enrollments-report.h"
#include "store/store.h"

/* ---- cells --------------------------------------------------------------- */

/* Room for a number or a time as text. */
#define CELL_SIZE 32

/* The last second SQLite's date functions know, 9999-12-31T23:59:59Z,
 * and their first, -4713-11-24T12:00:00Z (Julian day 0): times beyond
 * are shown as none, as the reports' SQL showed them. */
#define TIME_MAX_S INT64_C(253402300799)
#define TIME_MIN_S INT64_C(-210866760000)

static struct report_cell
text_cell(const char *text)
{
	return (struct report_cell){ text, text != NULL ? strlen(text) : 0 };
}

/* A cell of @p buf, filled by snprintf(): CELL_SIZE bytes. */
static struct report_cell
buf_cell(const char *buf, int n)
{
	return (struct report_cell){ buf, n > 0 ? (size_t)n : 0 };
}

static struct report_cell
int_cell(char buf[CELL_SIZE], int64_t v)
{
	return buf_cell(buf, snprintf(buf, CELL_SIZE, "%" PRId64, v));
}

/* "66.7", or none. */
static struct report_cell
decimal_cell(char buf[CELL_SIZE], bool has, double v)
{
	if (!has)
		return text_cell(NULL);
	return buf_cell(buf, snprintf(buf, CELL_SIZE, "%.1f", v));
}

/* Microseconds since the epoch as "2024-05-01T10:15:30Z", floored to
 * the second; or none. */
static struct report_cell
time_cell(char buf[CELL_SIZE], bool has, int64_t us)
{
	int64_t s = us / 1000000 - (us % 1000000 < 0);
	time_t t = (time_t)s;
	struct tm tm;

	if (!has || s < TIME_MIN_S || s > TIME_MAX_S ||
	    gmtime_r(&t, &tm) == NULL)
		return text_cell(NULL);
	return buf_cell(buf, snprintf(buf, CELL_SIZE,
				      "%04d-%02d-%02dT%02d:%02d:%02dZ",
				      tm.tm_year + 1900, tm.tm_mon + 1,
				      tm.tm_mday, tm.tm_hour, tm.tm_min,
				      tm.tm_sec));
}

/* ---- running a report ---------------------------------------------------- */

#define N_COLUMNS(cols) (sizeof(cols) / sizeof((cols)[0]))

/* Start a report of @p cols on standard output in @p q's format. */
static struct report *
start(const struct query *q, const struct report_column *cols, size_t n)
{
	struct report *rep = report_new(stdout, cols, n, q->format);

	if (rep == NULL)
		fprintf(stderr, ENROLLMENTS_PROG ": out of memory\n");
	return rep;
}

/* After the tracker's report returned @p rc: end @p rep, and say what
 * failed (@p what, when the tracker could not read). 0, or 1. */
static int
finish(const struct data_dir *d, struct report *rep, int rc,
       const char *what, const char *empty)
{
	int out = report_finish(rep, rc == 0, empty);
	int err = errno;

	if (rc == -ENOMEM || out == -ENOMEM) {
		fprintf(stderr, ENROLLMENTS_PROG ": out of memory\n");
		return 1;
	}
	if (rc < 0)
		data_dir_error(d, what);
	else if (out == -EPIPE)
		fprintf(stderr,
			ENROLLMENTS_PROG ": cannot write the output: %s\n",
			strerror(err));
	return rc < 0 || out < 0 ? 1 : 0;
}

/* ---- the reports --------------------------------------------------------- */

static const struct report_column list_columns[] = {
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

static int
list_row(const struct enrollment_row *r, void *rep)
{
	struct report_cell cells[N_COLUMNS(list_columns)];
	char buf[ENROLLMENT_STEPS + 2][CELL_SIZE];
	int i;

	cells[0] = text_cell(r->course_id);
	cells[1] = text_cell(r->course_title);
	cells[2] = text_cell(r->learner_id);
	cells[3] = text_cell(r->email);
	cells[4] = text_cell(r->name);
	cells[5] = text_cell(r->state);
	cells[6] = int_cell(buf[0], r->cycle);
	for (i = 0; i < ENROLLMENT_STEPS; i++)
		cells[7 + i] = time_cell(buf[1 + i], r->has_at[i], r->at[i]);
	cells[7 + ENROLLMENT_STEPS] =
		time_cell(buf[1 + ENROLLMENT_STEPS], true, r->updated_at);
	return report_row(rep, cells);
}

int
enrollments_list(const struct data_dir *d, const struct query *q)
{
	struct report *rep = start(q, list_columns, N_COLUMNS(list_columns));

	if (rep == NULL)
		return 1;
	return finish(d, rep,
		      enrollments_report_list(whr_store_tx(d->store),
					      &q->filter, list_row, rep),
		      "cannot list the enrollments", "no enrollments");
}

static const struct report_column summary_columns[] = {
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

static int
summary_row(const struct enrollments_course_row *r, void *rep)
{
	struct report_cell cells[N_COLUMNS(summary_columns)];
	char buf[7][CELL_SIZE];

	cells[0] = text_cell(r->course_id);
	cells[1] = text_cell(r->course_title);
	cells[2] = int_cell(buf[0], r->enrolled);
	cells[3] = int_cell(buf[1], r->started);
	cells[4] = int_cell(buf[2], r->completed);
	cells[5] = int_cell(buf[3], r->unenrolled);
	cells[6] = int_cell(buf[4], r->awaiting_approval);
	cells[7] = decimal_cell(buf[5], r->has_completion_rate,
				r->completion_rate);
	cells[8] = decimal_cell(buf[6], r->has_median_days, r->median_days);
	return report_row(rep, cells);
}

int
enrollments_summary(const struct data_dir *d, const struct query *q)
{
	struct report *rep = start(q, summary_columns,
				   N_COLUMNS(summary_columns));

	if (rep == NULL)
		return 1;
	return finish(d, rep,
		      enrollments_report_summary(whr_store_tx(d->store),
						 &q->filter, summary_row, rep),
		      "cannot summarise the enrollments", "no courses");
}

static const struct report_column history_columns[] = {
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

static int
history_row(const struct enrollment_event_row *r, void *rep)
{
	struct report_cell cells[N_COLUMNS(history_columns)];
	char at[CELL_SIZE], cycle[CELL_SIZE];

	cells[0] = time_cell(at, true, r->event_at);
	cells[1] = text_cell(r->action);
	cells[2] = text_cell(r->course_id);
	cells[3] = text_cell(r->course_title);
	cells[4] = text_cell(r->learner_id);
	cells[5] = text_cell(r->email);
	cells[6] = text_cell(r->name);
	cells[7] = r->has_cycle ? int_cell(cycle, r->cycle) : text_cell(NULL);
	cells[8] = text_cell(r->effect);
	cells[9] = text_cell(r->delivery_id);
	cells[10] = text_cell(r->receiver_id);
	return report_row(rep, cells);
}

int
enrollments_history(const struct data_dir *d, const struct query *q)
{
	struct report *rep = start(q, history_columns,
				   N_COLUMNS(history_columns));

	if (rep == NULL)
		return 1;
	return finish(d, rep,
		      enrollments_report_history(whr_store_tx(d->store),
						 &q->filter, history_row, rep),
		      "cannot read the history", "no enrollment events");
}
