/*
 * whr enrollments: opening the inbox's database for the reports
 * (see enrollments-cmd.h). data_dir_open() checks the inbox, read-only;
 * the tracker checks its own tables (enrollments_report_open()), and this
 * says what is wrong in the tool's words.
 */
#include "enrollments-cmd.h"

#include <errno.h>
#include <stdio.h>

#include "store/store.h"

int
enrollments_open(struct data_dir *d)
{
	int version;
	int rc;

	rc = data_dir_open(d, false);
	if (rc != 0)
		return rc;
	rc = enrollments_report_open(whr_store_tx(d->store), &version);
	switch (rc) {
	case 0:
		return 0;
	case -ENOENT:
		fprintf(stderr,
			ENROLLMENTS_PROG ": no enrollment data in %s: was whr "
			"serve run with --no-enrollments?\n",
			whr_store_location_is_database(d->dir)
				? data_dir_name(d) : d->dir);
		break;
	case -EPROTO:
		fprintf(stderr,
			ENROLLMENTS_PROG ": the enrollment tables in %s have "
			"schema version %d; this whr reads %d: use a newer "
			"whr\n", data_dir_name(d), version,
			ENROLLMENTS_SCHEMA_VERSION);
		break;
	case -EPROTONOSUPPORT:
		fprintf(stderr,
			ENROLLMENTS_PROG ": %s: this whr has no enrollment "
			"reports for its database\n", data_dir_name(d));
		break;
	case -ENOMEM:
		fprintf(stderr, ENROLLMENTS_PROG ": out of memory\n");
		break;
	default:
		data_dir_error(d, "cannot read the database");
		break;
	}
	data_dir_finish(d);
	return 1;
}
