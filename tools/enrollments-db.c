/*
 * whr enrollments: opening the data folder's database for the reports
 * (see enrollments-cmd.h). data_dir_open() checks the inbox, read-only;
 * this checks the enrollment tracker's tables (handlers/
 * enrollments-schema.c) and adds the SQL function whr_fold(), which the
 * reports use to match and order titles and e-mail addresses without
 * regard to case.
 */
#include "enrollments-cmd.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <wctype.h>

#include <sqlite3.h>

#include "enrollments-schema.h"
#include "lib/utf8.h"

/* ---- case folding ------------------------------------------------------ */

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
		size_t k = utf8_next(in + at, len - at, &c);

		if (k == 0) {
			out[n++] = (char)in[at++];
			continue;
		}
		at += k;
		if (c < 0x80)
			c = c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
		else if (loc != (locale_t)0)
			c = (uint32_t)towlower_l((wint_t)c, loc);
		n += utf8_encode(out + n, c);
	}
	sqlite3_result_text64(ctx, out, n, sqlite3_free, SQLITE_UTF8);
}

/* ---- opening ----------------------------------------------------------- */

int
enrollments_sql_error(const struct data_dir *d, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", d->prog, what, sqlite3_errmsg(d->db));
	return 1;
}

/* The enrollment tables' schema version, from their meta table; -1 when
 * it cannot be read. */
static int
tables_version(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int version = -1;

	if (sqlite3_prepare_v2(db,
			       "SELECT value FROM enrollments_meta"
			       " WHERE key = 'schema_version'", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return version;
}

int
enrollments_open(struct data_dir *d, locale_t loc)
{
	int version;
	int rc;

	rc = data_dir_open(d, false);
	if (rc != 0)
		return rc;
	if (d->db == NULL) {
		fprintf(stderr, ENROLLMENTS_PROG ": %s: the enrollment reports "
			"read SQLite only, for now\n", data_dir_name(d));
		rc = 1;
		goto err;
	}
	rc = enrollments_schema_present(d->db);
	if (rc < 0) {
		rc = enrollments_sql_error(d, "cannot read the database");
		goto err;
	}
	if (rc == 0) {
		fprintf(stderr,
			ENROLLMENTS_PROG ": no enrollment data in %s: was whr "
			"serve run with --no-enrollments?\n", d->dir);
		rc = 1;
		goto err;
	}
	version = tables_version(d->db);
	if (version < 1 || version > ENROLLMENTS_SCHEMA_VERSION) {
		fprintf(stderr,
			ENROLLMENTS_PROG ": the enrollment tables in %s have "
			"schema version %d; this whr reads %d: use a newer "
			"whr\n", data_dir_name(d), version, ENROLLMENTS_SCHEMA_VERSION);
		rc = 1;
		goto err;
	}
	if (sqlite3_create_function_v2(d->db, "whr_fold", 1,
				       SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				       (void *)loc, sql_fold, NULL, NULL,
				       NULL) != SQLITE_OK) {
		rc = enrollments_sql_error(d, "cannot open the database");
		goto err;
	}
	return 0;
err:
	data_dir_finish(d);
	return rc;
}
