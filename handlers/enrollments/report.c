/*
 * The reports of whr enrollments (list, summary, history), each one SQL
 * statement over the tracker's tables, written for each database the
 * tracker has tables for. One statement is one snapshot of the database,
 * consistent while whr serve writes.
 *
 * On SQLite the reports match and order titles and e-mail addresses
 * through the SQL function whr_fold(), registered on the connection
 * (whr_tx_native()): the one place the tracker needs SQLite's own API.
 * On PostgreSQL through lower(), which lowers beyond ASCII when the
 * database's character type (LC_CTYPE) is a UTF-8 locale (C.UTF-8,
 * en_US.UTF-8 ...), and ASCII only under the C locale.
 */
#include "enrollments/enrollments.h"

#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include <sqlite3.h>

#include <whr/whr.h>

/* ---- SQLite -------------------------------------------------------------- */

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

/* The summary's durations of the completed ones, and the one or two
 * middle ones of each course: the same SQL for both databases, by
 * course column @p key. */
#define MIDDLES(key) \
	" durations AS (SELECT " key "," \
	"  completed_at - enrolled_at AS d," \
	"  row_number() OVER (PARTITION BY " key \
	"   ORDER BY completed_at - enrolled_at) AS rn," \
	"  count(*) OVER (PARTITION BY " key ") AS n" \
	"  FROM latest WHERE state = 'completed'" \
	"  AND enrolled_at IS NOT NULL AND completed_at IS NOT NULL)," \
	" middles AS (SELECT " key ", min(d) AS lo, max(d) AS hi," \
	"  count(*) AS n" \
	"  FROM durations WHERE rn IN ((n + 1) / 2, (n + 2) / 2)" \
	"  GROUP BY " key "),"

/* What the list, the history and the summary select, in both
 * databases. */
#define LIST_COLUMNS \
	"SELECT coalesce(c.course_id, e.course_id), c.title," \
	" coalesce(l.learner_id, e.learner_id), l.email, l.name," \
	" e.state, e.cycle, e.approval_requested_at, e.enrolled_at," \
	" e.started_at, e.completed_at, e.unenrolled_at, e.updated_at" \
	" FROM enrollments e"
#define HISTORY_COLUMNS \
	"SELECT ev.event_at, ev.action," \
	" coalesce(c.course_id, ev.course_id), c.title," \
	" coalesce(l.learner_id, nullif(ev.learner_id, '')), l.email," \
	" l.name, ev.cycle, ev.effect," \
	" ev.delivery_id, nullif(ev.receiver_id, '')" \
	" FROM enrollment_events ev"
#define SUMMARY_COUNTS \
	" coalesce(s.started, 0), coalesce(s.completed, 0)," \
	" coalesce(s.unenrolled, 0), coalesce(s.awaiting, 0)," \
	" m.lo, m.hi, m.n" \
	" FROM ids i"

/* The reports' statements for one database. Each takes ?1 to ?4, the
 * course, learner, since and until of the filter (NULL: any). */
enum report {
	REPORT_LIST,		/* ?5 state, ?6 all cycles, ?7 limit */
	REPORT_SUMMARY,
	REPORT_HISTORY,		/* ?5 limit */
	REPORTS,
};

static const char *const sqlite_sql[REPORTS] = {
	[REPORT_LIST] =
	LIST_COLUMNS
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

	/* The latest cycle of each (course, learner), updated in the
	 * window; every course the tracker knows gets a row, with zeros
	 * when none of its enrollments is in the window. The median is
	 * left to the caller as the one or two middle durations and their
	 * count, so that it is computed as avg() would, in C. */
	[REPORT_SUMMARY] =
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
	MIDDLES("course_id")
	" ids AS (SELECT course_id FROM courses"
	"  UNION SELECT course_id FROM enrollments)"
	" SELECT i.course_id, c.title, coalesce(s.enrolled, 0),"
	SUMMARY_COUNTS
	" LEFT JOIN courses c ON c.course_id = i.course_id"
	" LEFT JOIN counts s ON s.course_id = i.course_id"
	" LEFT JOIN middles m ON m.course_id = i.course_id"
	" WHERE" COURSE_MATCH("i.course_id")
	" AND ?2 IS NULL"
	" ORDER BY whr_fold(c.title) NULLS LAST, c.title, i.course_id",

	[REPORT_HISTORY] =
	HISTORY_COLUMNS
	" LEFT JOIN courses c ON c.course_id = ev.course_id"
	" LEFT JOIN learners l ON l.learner_id = ev.learner_id"
	" WHERE" COURSE_MATCH("ev.course_id")
	" AND" LEARNER_MATCH("ev.learner_id")
	" AND (?3 IS NULL OR ev.event_at >= ?3)"
	" AND (?4 IS NULL OR ev.event_at < ?4)"
	" ORDER BY ev.event_at, ev.step, ev.received_at,"
	"  ev.notification_index, ev.user_index"
	" LIMIT ?5",
};

/* ---- PostgreSQL ---------------------------------------------------------- */

/* The same reports on the same tables (schema.c): ids matched and joined
 * on their key columns (lowered as SQLite's NOCASE compares), text
 * ordered byte by byte and NULLs first, as SQLite orders them. */
#define PG_KEY_IS(key, param) \
	" " key " = lower(" param " COLLATE \"C\")"
#define PG_COURSE_MATCH(key) \
	" ($1::text IS NULL OR" PG_KEY_IS(key, "$1") \
	" OR lower(c.title) = lower($1))"
#define PG_LEARNER_MATCH(key) \
	" ($2::text IS NULL OR" PG_KEY_IS(key, "$2") \
	" OR lower(l.email) = lower($2))"
#define PG_LATEST(e) \
	" " e ".cycle = (SELECT max(x.cycle) FROM enrollments x" \
	" WHERE x.course_key = " e ".course_key" \
	" AND x.learner_key = " e ".learner_key)"
#define PG_WINDOW(column) \
	" AND ($3::bigint IS NULL OR " column " >= $3)" \
	" AND ($4::bigint IS NULL OR " column " < $4)"
#define PG_BYTES " COLLATE \"C\""
#define PG_STATE_COUNT(states) \
	"  count(*) FILTER (WHERE state IN (" states "))"

static const char *const postgresql_sql[REPORTS] = {
	[REPORT_LIST] =
	LIST_COLUMNS
	" LEFT JOIN courses c ON c.course_key = e.course_key"
	" LEFT JOIN learners l ON l.learner_key = e.learner_key"
	" WHERE" PG_COURSE_MATCH("e.course_key")
	" AND" PG_LEARNER_MATCH("e.learner_key")
	PG_WINDOW("e.updated_at")
	" AND ($5::text IS NULL OR e.state = $5)"
	" AND ($6::bigint = 1 OR" PG_LATEST("e") ")"
	" ORDER BY lower(c.title)" PG_BYTES " NULLS LAST,"
	" c.title" PG_BYTES " NULLS FIRST, e.course_key" PG_BYTES ","
	" lower(l.email)" PG_BYTES " NULLS LAST,"
	" lower(l.name)" PG_BYTES " NULLS LAST,"
	" e.learner_key" PG_BYTES ", e.cycle"
	" LIMIT CASE WHEN $7::bigint < 0 THEN NULL ELSE $7 END",

	[REPORT_SUMMARY] =
	"WITH latest AS (SELECT e.course_key, e.state, e.enrolled_at,"
	"  e.completed_at FROM enrollments e WHERE" PG_LATEST("e")
	PG_WINDOW("e.updated_at") "),"
	" counts AS (SELECT course_key,"
	PG_STATE_COUNT("'enrolled', 'started', 'completed'") " AS enrolled,"
	PG_STATE_COUNT("'started', 'completed'") " AS started,"
	PG_STATE_COUNT("'completed'") " AS completed,"
	PG_STATE_COUNT("'unenrolled'") " AS unenrolled,"
	PG_STATE_COUNT("'approval_requested'") " AS awaiting"
	"  FROM latest GROUP BY course_key),"
	MIDDLES("course_key")
	" ids AS (SELECT course_key FROM courses"
	"  UNION SELECT course_key FROM enrollments)"
	" SELECT coalesce(c.course_id, (SELECT min(x.course_id)"
	"  FROM enrollments x WHERE x.course_key = i.course_key)),"
	" c.title, coalesce(s.enrolled, 0),"
	SUMMARY_COUNTS
	" LEFT JOIN courses c ON c.course_key = i.course_key"
	" LEFT JOIN counts s ON s.course_key = i.course_key"
	" LEFT JOIN middles m ON m.course_key = i.course_key"
	" WHERE" PG_COURSE_MATCH("i.course_key")
	" AND $2::text IS NULL"
	" ORDER BY lower(c.title)" PG_BYTES " NULLS LAST,"
	" c.title" PG_BYTES " NULLS FIRST, i.course_key" PG_BYTES,

	[REPORT_HISTORY] =
	HISTORY_COLUMNS
	" LEFT JOIN courses c ON c.course_key = ev.course_key"
	" LEFT JOIN learners l ON l.learner_key = ev.learner_key"
	" WHERE" PG_COURSE_MATCH("ev.course_key")
	" AND" PG_LEARNER_MATCH("ev.learner_key")
	PG_WINDOW("ev.event_at")
	" ORDER BY ev.event_at, ev.step NULLS FIRST, ev.received_at,"
	"  ev.notification_index, ev.user_index NULLS FIRST"
	" LIMIT CASE WHEN $5::bigint < 0 THEN NULL ELSE $5 END",
};

/* whr_fold(TEXT): TEXT in lower case, to compare titles and e-mail
 * addresses without regard to case beyond ASCII ("ØSTERGAARD" matches
 * "Østergaard"): SQLite's NOCASE and lower() know ASCII only. Uses the
 * C.UTF-8 locale (the user data) when the system has it, else ASCII;
 * bytes that are not UTF-8 stay as they are. */
static void
sql_fold(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	locale_t loc = (locale_t)sqlite3_user_data(ctx);
	const unsigned char *in = sqlite3_value_text(argv[0]);
	size_t len = (size_t)sqlite3_value_bytes(argv[0]);
	size_t at = 0, n = 0;
	locale_t old = (locale_t)0;
	mbstate_t state;
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
	if (loc != (locale_t)0)
		old = uselocale(loc);
	memset(&state, 0, sizeof(state));
	while (at < len) {
		wchar_t c;
		size_t k = 0, w;

		if (in[at] >= 'A' && in[at] <= 'Z') {
			out[n++] = (char)(in[at++] + ('a' - 'A'));
			continue;
		}
		if (in[at] >= 0x80 && loc != (locale_t)0)
			k = mbrtowc(&c, (const char *)in + at, len - at,
				    &state);
		if (k == 0 || k > len - at) {	/* ASCII, or not UTF-8 */
			memset(&state, 0, sizeof(state));
			out[n++] = (char)in[at++];
			continue;
		}
		w = wcrtomb(out + n, (wchar_t)towlower((wint_t)c), &state);
		if (w == (size_t)-1) {
			memset(&state, 0, sizeof(state));
			memcpy(out + n, in + at, k);
			w = k;
		}
		n += w;
		at += k;
	}
	if (loc != (locale_t)0)
		uselocale(old);
	sqlite3_result_text64(ctx, out, n, sqlite3_free, SQLITE_UTF8);
}

static void
free_locale(void *loc)
{
	freelocale((locale_t)loc);
}

/* Register whr_fold() on the connection, with a C.UTF-8 locale of its
 * own that the connection frees. */
static int
sqlite_open(struct whr_tx *tx)
{
	locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);

	/* _v2 frees the locale when the function goes, also when it
	 * cannot be made. */
	if (sqlite3_create_function_v2(whr_tx_native(tx), "whr_fold", 1,
				       SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				       (void *)loc, sql_fold, NULL, NULL,
				       loc != (locale_t)0 ? free_locale
							  : NULL) !=
	    SQLITE_OK)
		return -ENOMEM;
	return 0;
}

/* ---- the reports --------------------------------------------------------- */

static const char *const *const report_sql_of[] = {
	[WHR_DB_SQLITE] = sqlite_sql,
	[WHR_DB_POSTGRESQL] = postgresql_sql,
};

int
enrollments_report_open(struct whr_tx *tx, int *version)
{
	int rc;

	*version = 0;
	rc = enrollments_schema_read(tx, version);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ENOENT;
	if (*version < 1 || *version > ENROLLMENTS_SCHEMA_VERSION)
		return -EPROTO;
	switch (whr_tx_db(tx)) {
	case WHR_DB_SQLITE:
		return sqlite_open(tx);
	case WHR_DB_POSTGRESQL:
		return 0;	/* lower() is the server's */
	default:
		return -EPROTONOSUPPORT;
	}
}

/* Report @p which in @p tx's database's SQL, into *@p st with ?1 to ?4
 * bound to @p f's course, learner, since and until (NULL when not
 * given): 0, -EPROTONOSUPPORT for a database the tracker has no tables
 * for, or -EIO (whr_tx_error() says why). */
static int
prepare(struct whr_tx *tx, const struct enrollments_filter *f,
	enum report which, struct whr_stmt **st)
{
	size_t db = whr_tx_db(tx);
	const char *const *sql = db < sizeof(report_sql_of) /
					      sizeof(report_sql_of[0])
					 ? report_sql_of[db] : NULL;

	if (sql == NULL)
		return -EPROTONOSUPPORT;
	*st = whr_tx_prepare(tx, sql[which]);
	if (*st == NULL ||
	    (whr_stmt_bind_text(*st, 1, f->course) |
	     whr_stmt_bind_text(*st, 2, f->learner) |
	     (f->has_since ? whr_stmt_bind_int(*st, 3, f->since) : 0) |
	     (f->has_until ? whr_stmt_bind_int(*st, 4, f->until) : 0)) < 0)
		return -EIO;
	return 0;
}

/* Step @p st to its end, @p row reading each row and handing it to the
 * caller's callback, which @p call holds. */
static int
each_row(struct whr_stmt *st, int (*row)(struct whr_stmt *st, void *call),
	 void *call)
{
	int rc;

	while ((rc = whr_stmt_step(st)) > 0) {
		rc = row(st, call);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return rc;
}

struct list_call {
	int (*fn)(const struct enrollment_row *row, void *arg);
	void *arg;
};

static int
list_row(struct whr_stmt *st, void *call)
{
	struct list_call *c = call;
	struct enrollment_row r;
	int i;

	r.course_id = whr_stmt_text(st, 0);
	r.course_title = whr_stmt_text(st, 1);
	r.learner_id = whr_stmt_text(st, 2);
	r.email = whr_stmt_text(st, 3);
	r.name = whr_stmt_text(st, 4);
	r.state = whr_stmt_text(st, 5);
	r.cycle = whr_stmt_int(st, 6);
	for (i = 0; i < ENROLLMENT_STEPS; i++) {
		r.has_at[i] = !whr_stmt_is_null(st, 7 + i);
		r.at[i] = whr_stmt_int(st, 7 + i);
	}
	r.updated_at = whr_stmt_int(st, 7 + ENROLLMENT_STEPS);
	return c->fn(&r, c->arg);
}

int
enrollments_report_list(struct whr_tx *tx, const struct enrollments_filter *f,
			int (*fn)(const struct enrollment_row *row, void *arg),
			void *arg)
{
	struct list_call call = { fn, arg };
	struct whr_stmt *st;
	int rc = prepare(tx, f, REPORT_LIST, &st);

	if (rc == 0 &&
	    (whr_stmt_bind_text(st, 5, f->state) |
	     whr_stmt_bind_int(st, 6, f->all_cycles) |
	     whr_stmt_bind_int(st, 7, f->limit > 0 ? f->limit : -1)) < 0)
		rc = -EIO;
	return rc < 0 ? rc : each_row(st, list_row, &call);
}

struct summary_call {
	int (*fn)(const struct enrollments_course_row *row, void *arg);
	void *arg;
};

static int
summary_row(struct whr_stmt *st, void *call)
{
	struct summary_call *c = call;
	struct enrollments_course_row r;
	int64_t middles = whr_stmt_int(st, 9);

	r.course_id = whr_stmt_text(st, 0);
	r.course_title = whr_stmt_text(st, 1);
	r.enrolled = whr_stmt_int(st, 2);
	r.started = whr_stmt_int(st, 3);
	r.completed = whr_stmt_int(st, 4);
	r.unenrolled = whr_stmt_int(st, 5);
	r.awaiting_approval = whr_stmt_int(st, 6);
	/* As SQL would: 100.0 * completed / enrolled. */
	r.has_completion_rate = r.enrolled > 0;
	r.completion_rate = r.has_completion_rate
				    ? 100.0 * (double)r.completed /
					      (double)r.enrolled
				    : 0.0;
	/* As avg() of the one or two middle durations would, in days. */
	r.has_median_days = middles > 0;
	r.median_days = 0.0;
	if (r.has_median_days) {
		double sum = (double)whr_stmt_int(st, 7);

		if (middles > 1)
			sum += (double)whr_stmt_int(st, 8);
		r.median_days = sum / (double)middles / 86400000000.0;
	}
	return c->fn(&r, c->arg);
}

int
enrollments_report_summary(struct whr_tx *tx,
			   const struct enrollments_filter *f,
			   int (*fn)(const struct enrollments_course_row *row,
				     void *arg),
			   void *arg)
{
	struct summary_call call = { fn, arg };
	struct whr_stmt *st;
	int rc = prepare(tx, f, REPORT_SUMMARY, &st);

	return rc < 0 ? rc : each_row(st, summary_row, &call);
}

struct history_call {
	int (*fn)(const struct enrollment_event_row *row, void *arg);
	void *arg;
};

static int
history_row(struct whr_stmt *st, void *call)
{
	struct history_call *c = call;
	struct enrollment_event_row r;

	r.event_at = whr_stmt_int(st, 0);
	r.action = whr_stmt_text(st, 1);
	r.course_id = whr_stmt_text(st, 2);
	r.course_title = whr_stmt_text(st, 3);
	r.learner_id = whr_stmt_text(st, 4);
	r.email = whr_stmt_text(st, 5);
	r.name = whr_stmt_text(st, 6);
	r.has_cycle = !whr_stmt_is_null(st, 7);
	r.cycle = whr_stmt_int(st, 7);
	r.effect = whr_stmt_text(st, 8);
	r.delivery_id = whr_stmt_text(st, 9);
	r.receiver_id = whr_stmt_text(st, 10);
	return c->fn(&r, c->arg);
}

int
enrollments_report_history(struct whr_tx *tx,
			   const struct enrollments_filter *f,
			   int (*fn)(const struct enrollment_event_row *row,
				     void *arg),
			   void *arg)
{
	struct history_call call = { fn, arg };
	struct whr_stmt *st;
	int rc = prepare(tx, f, REPORT_HISTORY, &st);

	if (rc == 0 &&
	    whr_stmt_bind_int(st, 5, f->limit > 0 ? f->limit : -1) < 0)
		rc = -EIO;
	return rc < 0 ? rc : each_row(st, history_row, &call);
}
