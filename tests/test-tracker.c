/*
 * The enrollment tracker on the transaction handle, as it uses it: the
 * handle's statement cache (keyed by SQL text, reset and unbound on each
 * prepare, its bind errors), the tracker's tables and their versions,
 * and its reports (whr_fold(), the summary's arithmetic done as SQL
 * did it).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "enrollments/enrollments.h"
#include "store/store.h"
#include "test-backends.h"

/* Run @p sql (several statements) in a transaction of its own. */
static void
exec_committed(struct whr_store *s, const char *sql)
{
	struct whr_tx *tx = whr_store_tx(s);

	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_msg(whr_tx_exec(tx, sql) == 0, "%s: %s", sql,
		      whr_tx_error(tx));
	ck_assert_int_eq(whr_store_commit(s), 0);
}

/* A store with the tracker's tables, made by its own setup. */
static struct whr_store *
tracker_store(void)
{
	struct whr_store *s = test_store_fresh();
	struct whr_tx *tx = whr_store_tx(s);

	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(enrollments_schema_setup(tx, NULL), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	return s;
}

/* ---- the statement cache --------------------------------------------- */

/* Texts that a hash of a few of their bytes, or of their length, would
 * take for one another: each must still get a statement of its own. */
START_TEST(tracker_statements_by_text)
{
	/* Each gives the number in it. */
	static const char *const texts[] = {
		"SELECT 1", "SELECT 2", "SELECT 10", "SELECT 11",
		"SELECT 12345678", "SELECT 12345679",
		"SELECT 1234567812345678", "SELECT 1234567912345678",
		"SELECT 1234567812345679", "SELECT  1", "SELECT 1 ",
	};
	struct whr_store *s = test_store_fresh();
	struct whr_tx *tx = whr_store_tx(s);
	struct whr_stmt *st[sizeof(texts) / sizeof(texts[0])];
	size_t i, j;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		st[i] = whr_tx_prepare(tx, texts[i]);
		ck_assert_ptr_nonnull(st[i]);
		for (j = 0; j < i; j++)
			ck_assert_ptr_ne(st[i], st[j]);
	}
	/* Again, in the other order: the same statements, each its own. */
	for (i = sizeof(texts) / sizeof(texts[0]); i-- > 0;) {
		ck_assert_ptr_eq(whr_tx_prepare(tx, texts[i]), st[i]);
		ck_assert_msg(test_query_int(tx, texts[i]) ==
				      strtoll(texts[i] + strlen("SELECT"), NULL,
					      10),
			      "%s", texts[i]);
	}
	test_store_discard(s);
}
END_TEST

/* The tracker binds only what an event says and leaves the rest NULL,
 * and reads one row of a statement without stepping past it: preparing
 * the text again must unbind and reset it. */
START_TEST(tracker_prepare_resets_and_unbinds)
{
	struct whr_store *s = test_store_fresh();
	struct whr_tx *tx = whr_store_tx(s);
	struct whr_stmt *st;

	exec_committed(s, "CREATE TABLE t (x INTEGER);"
			  "INSERT INTO t VALUES (1), (2), (3)");
	st = whr_tx_prepare(tx, "SELECT ?1 IS NULL, ?2");
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(whr_stmt_bind_int(st, 1, 7), 0);
	ck_assert_int_eq(whr_stmt_bind_text(st, 2, "a"), 0);
	ck_assert_int_eq(whr_stmt_step(st), 1);
	ck_assert_int_eq(whr_stmt_int(st, 0), 0);
	ck_assert_str_eq(whr_stmt_text(st, 1), "a");
	ck_assert_ptr_eq(whr_tx_prepare(tx, "SELECT ?1 IS NULL, ?2"), st);
	ck_assert_int_eq(whr_stmt_step(st), 1);
	ck_assert_int_eq(whr_stmt_int(st, 0), 1);
	ck_assert(whr_stmt_is_null(st, 1));
	ck_assert_ptr_null(whr_stmt_text(st, 1));

	/* Left on its first row, then prepared again: from the start. */
	st = whr_tx_prepare(tx, "SELECT x FROM t ORDER BY x");
	ck_assert_int_eq(whr_stmt_step(st), 1);
	ck_assert_int_eq(whr_stmt_int(st, 0), 1);
	ck_assert_ptr_eq(whr_tx_prepare(tx, "SELECT x FROM t ORDER BY x"),
			 st);
	ck_assert_int_eq(whr_stmt_step(st), 1);
	ck_assert_int_eq(whr_stmt_int(st, 0), 1);
	/* Run to its end: done, and done it stays. */
	ck_assert_int_eq(whr_stmt_run(st), 0);
	ck_assert_int_eq(whr_stmt_step(st), 0);
	test_store_discard(s);
}
END_TEST

/* The tracker ORs its binds' results and runs nothing when one failed:
 * each failure is negative, and the handle says why. */
START_TEST(tracker_bind_failures)
{
	static const int bad[] = { 0, -1, 3, 1000 };
	struct whr_store *s = test_store_fresh();
	struct whr_tx *tx = whr_store_tx(s);
	struct whr_stmt *st;
	size_t i;

	st = whr_tx_prepare(tx, "SELECT ?1, ?2");
	ck_assert_ptr_nonnull(st);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(whr_stmt_bind_int(st, bad[i], 1), -EINVAL);
		ck_assert_str_ne(whr_tx_error(tx), "");
		ck_assert_int_eq(whr_stmt_bind_text(st, bad[i], "x"), -EINVAL);
		ck_assert_int_eq(whr_stmt_bind_null(st, bad[i]), -EINVAL);
		ck_assert_int_lt(whr_stmt_bind_int(st, 1, 1) |
					 whr_stmt_bind_int(st, bad[i], 1),
				 0);
	}
	ck_assert_int_eq(whr_stmt_bind_text(st, 2, NULL), 0);
	ck_assert_ptr_null(whr_tx_prepare(tx, "SELECT nonsense FROM"));
	ck_assert_str_ne(whr_tx_error(tx), "");
	test_store_discard(s);
}
END_TEST

/* ---- the tables -------------------------------------------------------- */

/* What the report tool finds: the tables' presence and version. */
START_TEST(tracker_schema_versions)
{
	static const struct {
		const char *sql;	/* NULL: the tracker's own setup */
		int read;		/* enrollments_schema_read() */
		int version;		/* its version, when read is 1 */
		int open;		/* enrollments_report_open() */
		int setup;		/* enrollments_schema_setup() again */
	} cases[] = {
		{ "CREATE TABLE other (x)", 0, 0, -ENOENT, 0 },
		{ NULL, 1, 1, 0, 0 },
		{ "CREATE TABLE enrollments_meta (key TEXT PRIMARY KEY,"
		  " value INTEGER NOT NULL);"
		  "INSERT INTO enrollments_meta VALUES ('schema_version', 99)",
		  1, 99, -EPROTO, -EPROTO },
		{ "CREATE TABLE enrollments_meta (key TEXT PRIMARY KEY,"
		  " value INTEGER NOT NULL)",
		  1, -1, -EPROTO, -EIO },
		{ "CREATE TABLE enrollments_meta (key TEXT PRIMARY KEY,"
		  " value INTEGER NOT NULL);"
		  "INSERT INTO enrollments_meta VALUES ('schema_version', 0)",
		  1, 0, -EPROTO, -EIO },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct whr_store *s = cases[i].sql == NULL ? tracker_store()
							   : test_store_fresh();
		struct whr_tx *tx = whr_store_tx(s);
		int version = -42;

		if (cases[i].sql != NULL)
			exec_committed(s, cases[i].sql);
		ck_assert_int_eq(enrollments_schema_read(tx, &version),
				 cases[i].read);
		if (cases[i].read == 1)
			ck_assert_int_eq(version, cases[i].version);
		version = -42;
		ck_assert_int_eq(enrollments_report_open(tx, &version),
				 cases[i].open);
		if (cases[i].open == -EPROTO)
			ck_assert_int_eq(version, cases[i].version);
		ck_assert_int_eq(whr_store_begin(s), 0);
		ck_assert_int_eq(enrollments_schema_setup(tx, NULL),
				 cases[i].setup);
		whr_store_rollback(s);
		test_store_discard(s);
	}
}
END_TEST

/* ---- the reports --------------------------------------------------------- */

START_TEST(tracker_fold)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "ABC xyz 09", "abc xyz 09" },
		{ "ÆRØ Sailing", "ærø sailing" },
		{ "ØSTERGAARD", "østergaard" },
		{ "ÄÖÜ", "äöü" },
		{ "ΣΊΣΥΦΟΣ", "σίσυφοσ" },
		{ "ЖУК", "жук" },
		/* Not UTF-8: the bytes stay, the ASCII around them folds. */
		{ "A\xff" "B", "a\xff" "b" },
		{ "\xc3" "A", "\xc3" "a" },		/* a cut sequence */
		{ "\xc0\x81", "\xc0\x81" },		/* overlong */
		{ "\xed\xa0\x80", "\xed\xa0\x80" },	/* a surrogate */
		{ "日本語 ABC", "日本語 abc" },
		{ "😀X", "😀x" },
	};
	struct whr_store *s = tracker_store();
	struct whr_tx *tx = whr_store_tx(s);
	struct whr_stmt *st;
	int version;
	size_t i;

	ck_assert_int_eq(enrollments_report_open(tx, &version), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st = whr_tx_prepare(tx, "SELECT whr_fold(?1)");
		ck_assert_ptr_nonnull(st);
		ck_assert_int_eq(whr_stmt_bind_text(st, 1, cases[i].in), 0);
		ck_assert_int_eq(whr_stmt_step(st), 1);
		ck_assert_str_eq(whr_stmt_text(st, 0), cases[i].out);
	}
	st = whr_tx_prepare(tx, "SELECT whr_fold(NULL)");
	ck_assert_int_eq(whr_stmt_step(st), 1);
	ck_assert(whr_stmt_is_null(st, 0));
	test_store_discard(s);
}
END_TEST

struct summary {
	int rows;
	struct enrollments_course_row row;
};

static int
keep_summary(const struct enrollments_course_row *row, void *arg)
{
	struct summary *sum = arg;

	sum->rows++;
	sum->row = *row;
	sum->row.course_id = NULL;	/* borrowed: not kept */
	sum->row.course_title = NULL;
	return 0;
}

/* That the report's @p has and @p value, computed in C, are what SQLite
 * gives for @p sql, NULL and every bit of the double alike. */
static void
assert_as_sql(struct whr_tx *tx, const char *sql, bool has, double value,
	      size_t case_no)
{
	sqlite3_stmt *st = NULL;
	double want;

	ck_assert_int_eq(sqlite3_prepare_v2(whr_tx_native(tx), sql, -1, &st,
					    NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(has, sqlite3_column_type(st, 0) != SQLITE_NULL);
	want = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	if (has)
		ck_assert_msg(memcmp(&want, &value, sizeof(want)) == 0,
			      "case %zu: %.17g, SQL %.17g: %s", case_no,
			      value, want, sql);
}

/* The summary's median and completion rate come out as SQLite's avg()
 * and arithmetic made them before, to the last bit: the output shows
 * them rounded to one decimal, and a value on a rounding edge must round
 * the same way. */
START_TEST(tracker_summary_as_sql)
{
	static const struct {
		int64_t durations[5];	/* completed ones; 0 ends */
		int enrolled_only;	/* and this many enrolled */
	} cases[] = {
		{ { 0 }, 0 },
		{ { 0 }, 3 },
		{ { 86400000000 }, 0 },
		{ { 1, 2 }, 1 },
		{ { 3, 1, 2 }, 2 },
		{ { 129600000000, 43200000000, 1 }, 5 },
		{ { 1000000000000007, 3, 999999999999999 }, 0 },
		{ { 8640000000, 17280000000, 25920000001, 34560000000 }, 7 },
		{ { -5000000, 7 }, 1 },
	};
	size_t i, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct whr_store *s = tracker_store();
		struct whr_tx *tx = whr_store_tx(s);
		struct enrollments_filter f = { 0 };
		struct summary sum = { 0 };
		char sql[512];
		int completed = 0, version;

		for (k = 0; k < 5 && cases[i].durations[k] != 0; k++) {
			snprintf(sql, sizeof(sql),
				 "INSERT INTO enrollments (course_id,"
				 " learner_id, cycle, state, enrolled_at,"
				 " completed_at, updated_at) VALUES ('c',"
				 " 'l%zu', 1, 'completed', 1000, %lld, 1)",
				 k, (long long)(1000 + cases[i].durations[k]));
			exec_committed(s, sql);
			completed++;
		}
		for (k = 0; k < (size_t)cases[i].enrolled_only; k++) {
			snprintf(sql, sizeof(sql),
				 "INSERT INTO enrollments (course_id,"
				 " learner_id, cycle, state, enrolled_at,"
				 " updated_at) VALUES ('c', 'e%zu', 1,"
				 " 'enrolled', 5, 1)", k);
			exec_committed(s, sql);
		}
		exec_committed(s, "INSERT INTO courses (course_id, updated_at)"
				  " VALUES ('c', 1)");
		ck_assert_int_eq(enrollments_report_open(tx, &version), 0);
		ck_assert_int_eq(enrollments_report_summary(tx, &f,
							    keep_summary,
							    &sum),
				 0);
		ck_assert_int_eq(sum.rows, 1);
		ck_assert_int_eq(sum.row.completed, completed);
		ck_assert_int_eq(sum.row.enrolled,
				 completed + cases[i].enrolled_only);

		/* As the report's SQL computed them before. */
		assert_as_sql(tx,
			"WITH d AS (SELECT completed_at - enrolled_at AS d,"
			" row_number() OVER (ORDER BY completed_at -"
			" enrolled_at) AS rn, count(*) OVER () AS n"
			" FROM enrollments WHERE state = 'completed')"
			" SELECT avg(d) / 86400000000.0 FROM d"
			" WHERE rn IN ((n + 1) / 2, (n + 2) / 2)",
			sum.row.has_median_days, sum.row.median_days, i);
		assert_as_sql(tx,
			"SELECT CASE WHEN e > 0 THEN 100.0 * c / e END"
			" FROM (SELECT sum(state IN ('enrolled', 'started',"
			" 'completed')) AS e, sum(state = 'completed') AS c"
			" FROM enrollments)",
			sum.row.has_completion_rate, sum.row.completion_rate,
			i);
		test_store_discard(s);
	}
}
END_TEST

TEST_SUITE(tracker)
{
	/* These tests are SQLite's (sqlite3 calls, whr_fold() as SQLite
	 * has it), as they were on their own folders before test-backends
	 * gave them its store: that store must not follow WHR_TEST_POSTGRES
	 * from the environment here. */
	unsetenv("WHR_TEST_POSTGRES");
	ADD_EACH(s, tracker,
		 tracker_statements_by_text,
		 tracker_prepare_resets_and_unbinds,
		 tracker_bind_failures,
		 tracker_schema_versions,
		 tracker_fold,
		 tracker_summary_as_sql);
}
