/*
 * Output of whr enrollments: the rows of a query as an aligned table for
 * people, as CSV (RFC 4180) or as a JSON array of objects for programs.
 * Cells are read as they come from SQLite; text that is not valid UTF-8
 * is mended (U+FFFD in CSV and JSON, '?' in a table), so the output is
 * always valid UTF-8.
 */
#ifndef WHR_TOOLS_ENROLLMENTS_REPORT_H
#define WHR_TOOLS_ENROLLMENTS_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include <sqlite3.h>

#include "data-dir.h"	/* enum report_format */

/* How a column's cells are written; NULL is always "-" in a table, an
 * empty field in CSV and null in JSON. */
enum report_kind {
	REPORT_TEXT,		/* a string */
	REPORT_INT,		/* a whole number, to the right in a table */
	REPORT_DECIMAL,		/* a number with one decimal ("66.7") */
};

struct report_column {
	const char *key;	/* the CSV header and the JSON member name */
	const char *title;	/* the table's column title */
	enum report_kind kind;
};

/* Every row of @p st (its columns in the order of @p cols) to @p out in
 * @p format. A table of no rows is the line @p empty instead; CSV is then
 * the header alone and JSON "[]". 0, -EIO when a step fails (the
 * database's error tells why), -EPIPE when the output cannot be written
 * (errno tells why), -ENOMEM. */
int report_print(FILE *out, sqlite3_stmt *st,
		 const struct report_column *cols, size_t n_cols,
		 enum report_format format, const char *empty);

#endif /* WHR_TOOLS_ENROLLMENTS_REPORT_H */
