/*
 * whr enrollments: what the enrollment tracker knows, read from a data
 * folder's inbox database (list, summary, history).
 *
 * It opens the database read-only, as `whr inbox` does, so it is safe
 * while whr serve runs: each report is one SQL statement, and SQLite's
 * WAL gives it one consistent snapshot. It never writes. The tables are
 * those of handlers/enrollments-schema.c; the output goes through
 * enrollments-report.c (table, CSV or JSON).
 */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <wctype.h>

#include <sqlite3.h>

#include <whr/log.h>

#include "commands.h"
#include "enrollments-report.h"
#include "enrollments-schema.h"
#include "store-private.h"	/* STORE_FILE, STORE_SCHEMA_VERSION */

#define PROGRAM "whr enrollments"

/* Options, as bits: which ones were given, and which a command takes. */
enum {
	OPT_COURSE = 1 << 0,
	OPT_LEARNER = 1 << 1,
	OPT_STATE = 1 << 2,
	OPT_SINCE = 1 << 3,
	OPT_UNTIL = 1 << 4,
	OPT_ALL_CYCLES = 1 << 5,
	OPT_LIMIT = 1 << 6,
};

struct query {
	const char *dir;
	const char *course;
	const char *learner;
	const char *state;
	int64_t since, until;
	long long limit;		/* 0: no limit */
	enum report_format format;
	unsigned given;			/* OPT_* */
};

struct command {
	const char *name;
	unsigned takes;			/* OPT_* */
	int (*run)(sqlite3 *db, const struct query *q);
	const char *help;
};

#define STATE_NAMES \
	"approval_requested, enrolled, started, completed or unenrolled"
#define TIME_HINT "give a UTC time (2024-05-01T10:15:30Z) or an age (7d)"

static const char *const states[] = {
	ENROLLMENT_STATE_APPROVAL_REQUESTED,
	ENROLLMENT_STATE_ENROLLED,
	ENROLLMENT_STATE_STARTED,
	ENROLLMENT_STATE_COMPLETED,
	ENROLLMENT_STATE_UNENROLLED,
};

/* ---- help -------------------------------------------------------------- */

#define COMMON_HELP \
	"  --data-dir DIR     the data folder (default: WHR_DATA_DIR,\n" \
	"                     else ./whr-data)\n" \
	"  --format FORMAT    table (for people, the default), csv (RFC\n" \
	"                     4180: a header row, CRLF line ends) or json\n" \
	"                     (an array of objects; times are ISO 8601\n" \
	"                     UTC strings or null)\n" \
	"  --help             show this help\n"

#define COURSE_HELP \
	"  --course COURSE    only this course: its Course.Id, or its\n" \
	"                     whole title; case is ignored\n"

#define LEARNER_HELP \
	"  --learner LEARNER  only this learner: their Users[].Id or\n" \
	"                     e-mail address; case is ignored\n"

#define TIME_HELP \
	"TIME is a UTC time (2024-05-01T10:15:30Z, 2024-05-01T10:15,\n" \
	"2024-05-01) or an age counted back from now (30s, 90m, 2h, 7d);\n" \
	"--since is inclusive, --until exclusive.\n"

#define EXIT_HELP \
	"\n" \
	"Exit status: 0 success (also when nothing matches), 1 the data\n" \
	"cannot be read (no data folder, no database, no enrollment\n" \
	"tables), 2 usage error.\n"

static const char help_list[] =
	"Usage: whr enrollments [list] [OPTIONS]\n"
	"\n"
	"One row per enrollment: course, learner, state, cycle and the\n"
	"time of each step, ordered by course title, then learner e-mail\n"
	"and name. Only the latest cycle of each (course, learner) unless\n"
	"--all-cycles. Read-only; safe while whr serve runs.\n"
	"\n"
	"Options:\n"
	COURSE_HELP
	LEARNER_HELP
	"  --state STATE      only enrollments in STATE:\n"
	"                     approval_requested, enrolled, started,\n"
	"                     completed or unenrolled\n"
	"  --since TIME       only enrollments updated at or after TIME\n"
	"  --until TIME       only enrollments updated before TIME\n"
	"  --all-cycles       every cycle, not only the latest (a new\n"
	"                     cycle starts with a re-enrollment after an\n"
	"                     unenrollment)\n"
	"  --limit N          at most N rows (default 0: all)\n"
	COMMON_HELP
	"\n"
	TIME_HELP
	"\n"
	"Columns: course_id, course_title, learner_id, email, name,\n"
	"state, cycle, approval_requested_at, enrolled_at, started_at,\n"
	"completed_at, unenrolled_at, updated_at.\n"
	EXIT_HELP;

static const char help_summary[] =
	"Usage: whr enrollments summary [OPTIONS]\n"
	"\n"
	"One row per course, counting the latest cycle of each (course,\n"
	"learner), ordered by course title:\n"
	"  enrolled           in state enrolled, started or completed\n"
	"  started            in state started or completed\n"
	"  completed          in state completed\n"
	"  unenrolled         in state unenrolled\n"
	"  awaiting_approval  in state approval_requested\n"
	"  completion_rate    100 * completed / enrolled, one decimal;\n"
	"                     empty (null) when enrolled is 0\n"
	"  median_days_to_complete\n"
	"                     the median of completed_at - enrolled_at\n"
	"                     in days, one decimal, over the completed\n"
	"                     ones that have both times; empty (null)\n"
	"                     when there are none\n"
	"\n"
	"Options:\n"
	COURSE_HELP
	"  --since TIME       count only enrollments updated at or after\n"
	"                     TIME\n"
	"  --until TIME       count only enrollments updated before TIME\n"
	COMMON_HELP
	"\n"
	TIME_HELP
	EXIT_HELP;

static const char help_history[] =
	"Usage: whr enrollments history [OPTIONS]\n"
	"\n"
	"Every event the tracker applied, oldest first (by the event's\n"
	"TimeStamp): time, action, course, learner, cycle, effect\n"
	"(applied: it moved the state; stale: older than what was known)\n"
	"and the delivery it came in (receiver is null for the default\n"
	"receiver id). Course events (CoursePublished...) have no\n"
	"learner.\n"
	"\n"
	"Options:\n"
	COURSE_HELP
	LEARNER_HELP
	"  --since TIME       only events at or after TIME\n"
	"  --until TIME       only events before TIME\n"
	"  --limit N          at most N rows (default 0: all)\n"
	COMMON_HELP
	"\n"
	TIME_HELP
	"\n"
	"Columns: event_at, action, course_id, course_title, learner_id,\n"
	"email, name, cycle, effect, delivery_id, receiver.\n"
	EXIT_HELP;

static const char help_all[] =
	"Usage: whr enrollments [COMMAND] [OPTIONS]\n"
	"\n"
	"Who enrolled in, started and completed which course, as the\n"
	"enrollment tracker of whr serve recorded it in the data folder's\n"
	"inbox database. Read-only; safe while whr serve runs.\n"
	"\n"
	"Commands:\n"
	"  list      one row per enrollment (the default command)\n"
	"  summary   one row per course: counts, completion rate, median\n"
	"            days to complete\n"
	"  history   every event applied, oldest first\n"
	"\n"
	"Options (whr enrollments COMMAND --help tells which apply):\n"
	COURSE_HELP
	LEARNER_HELP
	"  --state STATE      list: approval_requested, enrolled,\n"
	"                     started, completed or unenrolled\n"
	"  --since TIME, --until TIME\n"
	"                     list, summary: the enrollment's last\n"
	"                     update; history: the event's time\n"
	"  --all-cycles       list: every cycle, not only the latest\n"
	"  --limit N          list, history: at most N rows (0: all)\n"
	COMMON_HELP
	"\n"
	TIME_HELP
	EXIT_HELP;

/* ---- errors ------------------------------------------------------------ */

static int
fail_usage(const char *fmt, ...) WHR_PRINTF(1, 2);

static int
fail_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROGRAM ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see " PROGRAM " --help)\n");
	return EXIT_USAGE;
}

static int
sql_error(sqlite3 *db, const char *what)
{
	fprintf(stderr, PROGRAM ": %s: %s\n", what, sqlite3_errmsg(db));
	return 1;
}

/* ---- parsing ----------------------------------------------------------- */

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A UTC time: "2024-05-01", "2024-05-01T10:15", "2024-05-01T10:15:30",
 * with an optional fraction of a second and an optional "Z"; or an age
 * ("30s", "90m", "2h", "7d", "1.5d") counted back from now. Microseconds
 * since the epoch; -EINVAL for anything else. Like whr inbox's, but
 * nothing may follow the time. */
static int
parse_time(const char *text, int64_t *out)
{
	struct tm tm = { 0 };
	const char *end;
	int64_t frac = 0, scale = 100000;
	char *unit;
	double n;

	end = strptime(text, "%Y-%m-%d", &tm);
	if (end != NULL && text[0] >= '0' && text[0] <= '9') {
		if (*end == 'T') {
			const char *t = strptime(end + 1, "%H:%M", &tm);

			if (t == NULL)
				return -EINVAL;
			end = t;
			if (*end == ':') {
				t = strptime(end + 1, "%S", &tm);
				if (t == NULL || t != end + 3)
					return -EINVAL;
				end = t;
				if (*end == '.') {
					for (end++; *end >= '0' && *end <= '9';
					     end++, scale /= 10)
						frac += (*end - '0') * scale;
					if (end[-1] == '.')
						return -EINVAL;
				}
			}
			if (*end == 'Z')
				end++;
		}
		if (*end != '\0')
			return -EINVAL;
		*out = (int64_t)timegm(&tm) * 1000000 + frac;
		return 0;
	}
	if (!(text[0] >= '0' && text[0] <= '9'))
		return -EINVAL;
	n = strtod(text, &unit);
	if (unit == text || !isfinite(n) || n < 0 || n > 1e6)
		return -EINVAL;
	if (strcmp(unit, "s") == 0)
		;
	else if (strcmp(unit, "m") == 0)
		n *= 60;
	else if (strcmp(unit, "h") == 0)
		n *= 3600;
	else if (strcmp(unit, "d") == 0)
		n *= 86400;
	else
		return -EINVAL;
	*out = now_us() - (int64_t)(n * 1e6);
	return 0;
}

static int
parse_limit(const char *text, long long *out)
{
	char *end;

	if (!(text[0] >= '0' && text[0] <= '9'))
		return -EINVAL;
	errno = 0;
	*out = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	return 0;
}

static bool
state_valid(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		if (strcmp(name, states[i]) == 0)
			return true;
	}
	return false;
}

/* ---- case folding ------------------------------------------------------ */

static size_t
encode_utf8(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* whr_fold(TEXT): TEXT in lower case, to compare titles and e-mail
 * addresses without regard to case beyond ASCII ("ØSTERGAARD" matches
 * "Østergaard"): SQLite's NOCASE and lower() know ASCII only. Uses the
 * C.UTF-8 locale's tables (the user data) when the system has them, else
 * ASCII; bytes that are not UTF-8 stay as they are. */
static void
sql_fold(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	locale_t loc = (locale_t)sqlite3_user_data(ctx);
	const unsigned char *in = sqlite3_value_text(argv[0]);
	size_t len = (size_t)sqlite3_value_bytes(argv[0]);
	size_t at = 0, n = 0;
	char *out;

	if (in == NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	/* A character of k >= 2 bytes lowers to at most 4 (2 * k) bytes;
	 * ASCII stays one byte. */
	out = sqlite3_malloc64(2 * len + 1);
	if (out == NULL) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	while (at < len) {
		uint32_t c;
		size_t k = report_utf8_next(in + at, len - at, &c);

		if (k == 0) {
			out[n++] = (char)in[at++];
			continue;
		}
		at += k;
		if (c < 0x80)
			c = c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
		else if (loc != (locale_t)0)
			c = (uint32_t)towlower_l((wint_t)c, loc);
		n += encode_utf8(out + n, c);
	}
	sqlite3_result_text64(ctx, out, n, sqlite3_free, SQLITE_UTF8);
}

/* ---- opening ----------------------------------------------------------- */

/* The database of @p dir, read-only, with the enrollment tables checked:
 * 0, or 1 after a message. */
static int
open_db(const char *dir, locale_t loc, sqlite3 **out)
{
	char path[4096];
	sqlite3_stmt *st = NULL;
	struct stat sb;
	sqlite3 *db = NULL;
	int version = -1;
	int rc;

	*out = NULL;
	if (stat(dir, &sb) < 0) {
		fprintf(stderr, PROGRAM ": no data folder %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		fprintf(stderr,
			PROGRAM ": no data folder %s: not a directory\n", dir);
		return 1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE) >=
	    sizeof(path)) {
		fprintf(stderr,
			PROGRAM ": the data folder's name is too long\n");
		return 1;
	}
	if (stat(path, &sb) < 0) {
		fprintf(stderr,
			PROGRAM ": no database in %s (%s: %s): whr serve "
			"creates it on its first start\n", dir, path,
			strerror(errno));
		return 1;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		rc = sql_error(db, "cannot open the database");
		goto err;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, "PRAGMA query_only = 1", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		rc = sql_error(db, "cannot open the database");
		goto err;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version != STORE_SCHEMA_VERSION) {
		fprintf(stderr,
			PROGRAM ": %s is not a whr database this whr reads "
			"(schema version %d; this whr reads %d)\n", path,
			version, STORE_SCHEMA_VERSION);
		rc = 1;
		goto err;
	}
	rc = enrollments_schema_present(db);
	if (rc < 0) {
		rc = sql_error(db, "cannot read the database");
		goto err;
	}
	if (rc == 0) {
		fprintf(stderr,
			PROGRAM ": no enrollment data in %s: was whr serve run "
			"with --no-enrollments?\n", dir);
		rc = 1;
		goto err;
	}
	version = -1;
	if (sqlite3_prepare_v2(db,
			       "SELECT value FROM enrollments_meta"
			       " WHERE key = 'schema_version'", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version < 1 || version > ENROLLMENTS_SCHEMA_VERSION) {
		fprintf(stderr,
			PROGRAM ": the enrollment tables in %s have schema "
			"version %d; this whr reads %d: use a newer whr\n",
			path, version, ENROLLMENTS_SCHEMA_VERSION);
		rc = 1;
		goto err;
	}
	if (sqlite3_create_function_v2(db, "whr_fold", 1,
				       SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				       (void *)loc, sql_fold, NULL, NULL,
				       NULL) != SQLITE_OK) {
		rc = sql_error(db, "cannot open the database");
		goto err;
	}
	*out = db;
	return 0;
err:
	sqlite3_close(db);
	return rc;
}

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

static void
bind_common(sqlite3_stmt *st, const struct query *q)
{
	if (q->course != NULL)
		sqlite3_bind_text(st, 1, q->course, -1, SQLITE_STATIC);
	if (q->learner != NULL)
		sqlite3_bind_text(st, 2, q->learner, -1, SQLITE_STATIC);
	if (q->given & OPT_SINCE)
		sqlite3_bind_int64(st, 3, q->since);
	if (q->given & OPT_UNTIL)
		sqlite3_bind_int64(st, 4, q->until);
}

static int
print_report(sqlite3 *db, sqlite3_stmt *st, const struct query *q,
	     const struct report_column *cols, size_t n_cols,
	     const char *empty)
{
	int rc, err;

	rc = report_print(stdout, st, cols, n_cols, q->format, empty);
	err = errno;
	if (rc == -EIO)
		sql_error(db, "cannot read the enrollments");
	sqlite3_finalize(st);
	if (rc == -ENOMEM)
		fprintf(stderr, PROGRAM ": out of memory\n");
	else if (rc == -EPIPE)
		fprintf(stderr, PROGRAM ": cannot write the output: %s\n",
			strerror(err));
	return rc < 0 ? 1 : 0;
}

static int
run_list(sqlite3 *db, const struct query *q)
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

	if (sqlite3_prepare_v2(db,
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
		" LIMIT ?7", -1, &st, NULL) != SQLITE_OK)
		return sql_error(db, "cannot list the enrollments");
	bind_common(st, q);
	if (q->state != NULL)
		sqlite3_bind_text(st, 5, q->state, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, (q->given & OPT_ALL_CYCLES) != 0);
	sqlite3_bind_int64(st, 7, q->limit > 0 ? q->limit : -1);
	return print_report(db, st, q, cols, sizeof(cols) / sizeof(cols[0]),
			    "no enrollments");
}

static int
run_summary(sqlite3 *db, const struct query *q)
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
	if (sqlite3_prepare_v2(db,
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
		-1, &st, NULL) != SQLITE_OK)
		return sql_error(db, "cannot summarise the enrollments");
	bind_common(st, q);
	return print_report(db, st, q, cols, sizeof(cols) / sizeof(cols[0]),
			    "no courses");
}

static int
run_history(sqlite3 *db, const struct query *q)
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

	if (sqlite3_prepare_v2(db,
		"SELECT " ISO("ev.event_at") ", ev.action,"
		" coalesce(c.course_id, ev.course_id), c.title,"
		" coalesce(l.learner_id, ev.learner_id), l.email, l.name,"
		" ev.cycle, ev.effect,"
		" ev.delivery_id, nullif(ev.receiver_id, '')"
		" FROM enrollment_events ev"
		" LEFT JOIN courses c ON c.course_id = ev.course_id"
		" LEFT JOIN learners l ON l.learner_id = ev.learner_id"
		" WHERE" COURSE_MATCH("ev.course_id")
		" AND" LEARNER_MATCH("ev.learner_id")
		" AND (?3 IS NULL OR ev.event_at >= ?3)"
		" AND (?4 IS NULL OR ev.event_at < ?4)"
		" ORDER BY ev.event_at, ev.event_seq"
		" LIMIT ?5", -1, &st, NULL) != SQLITE_OK)
		return sql_error(db, "cannot read the history");
	bind_common(st, q);
	sqlite3_bind_int64(st, 5, q->limit > 0 ? q->limit : -1);
	return print_report(db, st, q, cols, sizeof(cols) / sizeof(cols[0]),
			    "no enrollment events");
}

/* ---- the command ------------------------------------------------------- */

static const struct command commands[] = {
	{ "list", OPT_COURSE | OPT_LEARNER | OPT_STATE | OPT_SINCE |
		  OPT_UNTIL | OPT_ALL_CYCLES | OPT_LIMIT, run_list,
	  help_list },
	{ "summary", OPT_COURSE | OPT_SINCE | OPT_UNTIL, run_summary,
	  help_summary },
	{ "history", OPT_COURSE | OPT_LEARNER | OPT_SINCE | OPT_UNTIL |
		     OPT_LIMIT, run_history, help_history },
};

static const char *
option_name(unsigned bit)
{
	switch (bit) {
	case OPT_COURSE: return "--course";
	case OPT_LEARNER: return "--learner";
	case OPT_STATE: return "--state";
	case OPT_SINCE: return "--since";
	case OPT_UNTIL: return "--until";
	case OPT_ALL_CYCLES: return "--all-cycles";
	default: return "--limit";
	}
}

/* After getopt_long() returned '?' for @p arg. */
static int
bad_option(const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (strncmp(arg, "--", 2) != 0)
		return fail_usage("unknown option '-%c'", optopt);
	if (eq != NULL && optopt != 0)
		return fail_usage("option '%.*s' takes no value",
				  (int)(eq - arg), arg);
	return fail_usage("unknown or ambiguous option '%s'", arg);
}

int
cmd_enrollments(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'f' },
		{ "course", required_argument, NULL, 'c' },
		{ "learner", required_argument, NULL, 'l' },
		{ "state", required_argument, NULL, 's' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "all-cycles", no_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct query q = { .dir = getenv("WHR_DATA_DIR") };
	const struct command *cmd = &commands[0];
	bool help = false;
	locale_t loc;
	sqlite3 *db = NULL;
	unsigned bit;
	size_t i;
	int c, rc;

	if (q.dir == NULL || *q.dir == '\0')
		q.dir = "./whr-data";
	/* Options go before or after the command (getopt moves the other
	 * arguments to the end); argv[-1] is "enrollments", getopt's
	 * program name. optind 0 makes glibc's getopt start afresh. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc + 1, argv - 1, ":h", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'd':
			if (*optarg == '\0')
				return fail_usage("--data-dir needs a folder");
			q.dir = optarg;
			break;
		case 'f':
			if (report_format_parse(optarg, &q.format) < 0)
				return fail_usage("unknown format '%s': use "
						  "table, csv or json", optarg);
			break;
		case 'c':
			q.course = optarg;
			q.given |= OPT_COURSE;
			break;
		case 'l':
			q.learner = optarg;
			q.given |= OPT_LEARNER;
			break;
		case 's':
			if (!state_valid(optarg))
				return fail_usage("unknown state '%s': use "
						  STATE_NAMES, optarg);
			q.state = optarg;
			q.given |= OPT_STATE;
			break;
		case 'S':
			if (parse_time(optarg, &q.since) < 0)
				return fail_usage("bad --since '%s': "
						  TIME_HINT, optarg);
			q.given |= OPT_SINCE;
			break;
		case 'U':
			if (parse_time(optarg, &q.until) < 0)
				return fail_usage("bad --until '%s': "
						  TIME_HINT, optarg);
			q.given |= OPT_UNTIL;
			break;
		case 'a':
			q.given |= OPT_ALL_CYCLES;
			break;
		case 'n':
			if (parse_limit(optarg, &q.limit) < 0)
				return fail_usage("bad --limit '%s': give a "
						  "number of rows (0: all)",
						  optarg);
			q.given |= OPT_LIMIT;
			break;
		case 'h':
			help = true;
			break;
		case ':':
			return fail_usage("%s needs a value",
					  argv[optind - 2]);
		default:
			return bad_option(argv[optind - 2]);
		}
	}
	/* argv - 1 was parsed: argv[optind - 1...] are the other
	 * arguments, in order. */
	if (optind <= argc) {
		const char *name = argv[optind - 1];

		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
			if (strcmp(name, commands[i].name) == 0)
				break;
		}
		if (i == sizeof(commands) / sizeof(commands[0]))
			return fail_usage("unknown command '%s': use list, "
					  "summary or history", name);
		cmd = &commands[i];
		if (optind + 1 <= argc)
			return fail_usage("unexpected argument '%s'",
					  argv[optind]);
		if (help) {
			fputs(cmd->help, stdout);
			return 0;
		}
	} else if (help) {
		fputs(help_all, stdout);
		return 0;
	}
	for (bit = 1; bit <= OPT_LIMIT; bit <<= 1) {
		if ((q.given & bit) && !(cmd->takes & bit))
			return fail_usage("%s does not apply to %s",
					  option_name(bit), cmd->name);
	}

	loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	rc = open_db(q.dir, loc, &db);
	if (rc == 0)
		rc = cmd->run(db, &q);
	sqlite3_close(db);
	if (loc != (locale_t)0)
		freelocale(loc);
	return rc;
}
