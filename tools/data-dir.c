/*
 * What whr inbox and whr enrollments share (see data-dir.h).
 */
#include "data-dir.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "store/store.h"	/* STORE_FILE, STORE_SCHEMA_VERSION */

void
data_dir_init(struct data_dir *d, const char *prog)
{
	*d = (struct data_dir){ .prog = prog, .dir = getenv("WHR_DATA_DIR") };
	if (d->dir == NULL || *d->dir == '\0')
		d->dir = "./whr-data";
}

int
data_dir_option(struct data_dir *d, const char *arg)
{
	if (*arg == '\0')
		return tool_usage_error(d->prog, "--data-dir needs a folder");
	d->dir = arg;
	return 0;
}

int
data_dir_sql_error(const struct data_dir *d, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", d->prog, what, sqlite3_errmsg(d->db));
	return 1;
}

/* The folder and its database file are there: 0, or 1 after a message. */
static int
check_files(struct data_dir *d)
{
	struct stat sb;

	if (stat(d->dir, &sb) < 0) {
		fprintf(stderr, "%s: no data folder %s: %s\n", d->prog, d->dir,
			strerror(errno));
		return 1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "%s: no data folder %s: not a directory\n",
			d->prog, d->dir);
		return 1;
	}
	if ((size_t)snprintf(d->path, sizeof(d->path), "%s/%s", d->dir,
			     STORE_FILE) >= sizeof(d->path)) {
		fprintf(stderr, "%s: the data folder's name is too long\n",
			d->prog);
		return 1;
	}
	if (stat(d->path, &sb) < 0) {
		fprintf(stderr,
			"%s: no database in %s (%s: %s): whr serve creates it "
			"on its first start\n", d->prog, d->dir, d->path,
			strerror(errno));
		return 1;
	}
	return 0;
}

int
data_dir_open(struct data_dir *d, bool write)
{
	sqlite3_stmt *st = NULL;
	int version = -1;
	int rc;

	rc = check_files(d);
	if (rc != 0)
		return rc;
	if (sqlite3_open_v2(d->path, &d->db,
			    write ? SQLITE_OPEN_READWRITE
				  : SQLITE_OPEN_READONLY,
			    NULL) != SQLITE_OK) {
		rc = data_dir_sql_error(d, "cannot open the database");
		goto err;
	}
	sqlite3_busy_timeout(d->db, 10000);
	if (!write && sqlite3_exec(d->db, "PRAGMA query_only = 1", NULL, NULL,
				   NULL) != SQLITE_OK) {
		rc = data_dir_sql_error(d, "cannot open the database");
		goto err;
	}
	/* A file that is not SQLite fails here: version -1. */
	if (sqlite3_prepare_v2(d->db, "PRAGMA user_version", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	/* Older versions read the same (each step only adds); a change
	 * waits for whr serve to bring the file up to date. */
	if (version < 1 || version > STORE_SCHEMA_VERSION) {
		fprintf(stderr,
			"%s: %s is not a whr database this whr reads (schema "
			"version %d; this whr reads 1 to %d)\n", d->prog,
			d->path, version, STORE_SCHEMA_VERSION);
		rc = 1;
		goto err;
	}
	if (write && version < STORE_SCHEMA_VERSION) {
		fprintf(stderr,
			"%s: %s has schema version %d: start this whr serve "
			"once, which brings it to version %d, then try again\n",
			d->prog, d->path, version, STORE_SCHEMA_VERSION);
		rc = 1;
		goto err;
	}
	return 0;
err:
	data_dir_finish(d);
	return rc;
}

void
data_dir_finish(struct data_dir *d)
{
	sqlite3_close(d->db);
	d->db = NULL;
}

/* ---- command lines ------------------------------------------------- */

int
tool_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see %s --help)\n", prog);
	return EXIT_USAGE;
}

int
tool_format_option(const char *prog, const char *arg, bool csv,
		   enum report_format *out)
{
	if (strcmp(arg, "table") == 0)
		*out = REPORT_TABLE;
	else if (strcmp(arg, "json") == 0)
		*out = REPORT_JSON;
	else if (csv && strcmp(arg, "csv") == 0)
		*out = REPORT_CSV;
	else
		return tool_usage_error(prog, "unknown format '%s': use %s",
					arg, csv ? "table, csv or json"
						 : "table or json");
	return 0;
}
