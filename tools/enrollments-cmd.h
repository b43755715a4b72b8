/*
 * The parts of whr enrollments (its files: enrollments-cmd.c, the
 * command line; enrollments-db.c, opening the data folder's database for
 * the tracker's reports; enrollments-queries.c, the three reports'
 * columns and cells; enrollments-report.c, their output formats). The
 * reports themselves, and all their SQL, are the tracker's
 * (handlers/enrollments/enrollments.h).
 */
#ifndef WHR_TOOLS_ENROLLMENTS_CMD_H
#define WHR_TOOLS_ENROLLMENTS_CMD_H

#include "data-dir.h"
#include "enrollments/enrollments.h"

#define ENROLLMENTS_PROG "whr enrollments"

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

/* What the command line asks; the strings are borrowed from argv. */
struct query {
	struct enrollments_filter filter;
	enum report_format format;
	unsigned given;			/* OPT_* */
};

/* Open @p d's database read-only and check that the enrollment tracker's
 * tables are there, in a schema this whr reads, ready for its reports.
 * 0, or 1 after a message. */
int enrollments_open(struct data_dir *d);

/* The reports: each prints its rows to stdout in q->format. 0, or 1
 * after a message. */
int enrollments_list(const struct data_dir *d, const struct query *q);
int enrollments_summary(const struct data_dir *d, const struct query *q);
int enrollments_history(const struct data_dir *d, const struct query *q);

#endif /* WHR_TOOLS_ENROLLMENTS_CMD_H */
