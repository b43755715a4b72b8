/*
 * What whr inbox and whr enrollments share (see data-dir.h).
 */
#include "data-dir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <whr/tx.h>

#include "commands.h"
#include "store/store.h"

void
data_dir_init(struct data_dir *d, const char *prog)
{
	*d = (struct data_dir){ .prog = prog, .dir = whr_store_location(NULL) };
}

int
data_dir_option(struct data_dir *d, const char *arg)
{
	if (*arg == '\0')
		return tool_usage_error(d->prog, "--data-dir needs a folder");
	d->dir = arg;
	d->given = true;
	return 0;
}

int
data_dir_database_option(struct data_dir *d, const char *arg)
{
	if (!whr_store_location_is_database(arg))
		return tool_usage_error(d->prog, "--database needs a "
					"postgresql://USER@HOST:PORT/DATABASE "
					"URL");
	if (whr_store_location_has_password(arg))
		return tool_usage_error(d->prog, "no password in --database, "
					"where every user sees it: put it in "
					"PGPASSFILE, or the whole URL in a file "
					"named by WHR_DATABASE_FILE");
	d->dir = arg;
	d->given = true;
	return 0;
}

/* No option said where: a database from the environment, if one is set
 * (the file first, as for whr serve). */
static int
environment_database(struct data_dir *d)
{
	const char *file = getenv("WHR_DATABASE_FILE");
	const char *url = getenv("WHR_DATABASE");
	char why[4200];

	if (d->given)
		return 0;
	if (file != NULL && *file != '\0') {
		d->owned = whr_store_location_read(file, why, sizeof(why));
		if (d->owned == NULL) {
			fprintf(stderr, "%s: WHR_DATABASE_FILE: %s\n", d->prog,
				why);
			return 1;
		}
		d->dir = d->owned;
	} else if (url != NULL && *url != '\0') {
		d->dir = url;
	}
	return 0;
}

int
data_dir_error(const struct data_dir *d, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", d->prog, what,
		d->store != NULL ? whr_store_cause(d->store) : "not open");
	return 1;
}

int
data_dir_open(struct data_dir *d, bool write)
{
	char why[8192 + 512];

	if (environment_database(d) != 0)
		return 1;
	d->store = whr_store_open(d->dir, write ? STORE_WRITER : STORE_READER,
				  why, sizeof(why));
	if (d->store == NULL) {
		fprintf(stderr, "%s: %s\n", d->prog, why);
		return 1;
	}
	return 0;
}

int
data_dir_open_database(struct data_dir *d)
{
	char why[8192 + 512];

	if (environment_database(d) != 0)
		return 1;
	if (!whr_store_location_is_database(d->dir))
		return tool_usage_error(d->prog, "no database: give --database "
					"URL, or set WHR_DATABASE_FILE or "
					"WHR_DATABASE");
	d->store = whr_store_open(d->dir, STORE_SERVER, why, sizeof(why));
	if (d->store == NULL) {
		fprintf(stderr, "%s: %s\n", d->prog, why);
		return 1;
	}
	return 0;
}

const char *
data_dir_name(const struct data_dir *d)
{
	if (d->store != NULL)
		return whr_store_name(d->store);
	return whr_store_location_is_database(d->dir) ? "the database" : d->dir;
}

void
data_dir_finish(struct data_dir *d)
{
	whr_store_close(d->store);
	d->store = NULL;
	if (d->owned != NULL)
		explicit_bzero(d->owned, strlen(d->owned));
	free(d->owned);
	d->owned = NULL;
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
