/*
 * Output of whr enrollments: the rows of a report as an aligned table for
 * people, as CSV (RFC 4180) or as a JSON array of objects for programs.
 * Cells are text as the report gives it; text that is not valid UTF-8 is
 * mended (U+FFFD in CSV and JSON, '?' in a table), so the output is
 * always valid UTF-8.
 */
#ifndef WHR_TOOLS_ENROLLMENTS_REPORT_H
#define WHR_TOOLS_ENROLLMENTS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

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

/* A cell: its text and length in bytes (numbers as digits, "66.7" for
 * REPORT_DECIMAL), or NULL text for none. */
struct report_cell {
	const char *text;
	size_t len;
};

/* A report being written. */
struct report;

/* Start writing rows of @p n_cols columns @p cols (which must outlive
 * the report) to @p out in @p format. NULL without memory. */
struct report *report_new(FILE *out, const struct report_column *cols,
			  size_t n_cols, enum report_format format);

/* One row, a cell per column: written at once (CSV, JSON) or kept until
 * the end (a table, to measure its columns). 0 or -ENOMEM. */
int report_row(struct report *rep, const struct report_cell *cells);

/* The end of the rows: the table is printed (the line @p empty instead
 * when there are no rows; CSV is then the header alone and JSON "[]"),
 * unless @p complete is false (the rows were cut short by a failure);
 * the output is flushed, and @p rep freed. 0, -EPIPE when the output
 * cannot be written (errno tells why), -ENOMEM. */
int report_finish(struct report *rep, bool complete, const char *empty);

#endif /* WHR_TOOLS_ENROLLMENTS_REPORT_H */
