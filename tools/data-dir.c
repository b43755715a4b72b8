/*
 * What whr inbox and whr enrollments share (see data-dir.h).
 */
#include "data-dir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

	d->store = whr_store_open(d->dir, write ? STORE_WRITER : STORE_READER,
				  why, sizeof(why));
	if (d->store == NULL) {
		fprintf(stderr, "%s: %s\n", d->prog, why);
		return 1;
	}
	return 0;
}

const char *
data_dir_name(const struct data_dir *d)
{
	return d->store != NULL ? whr_store_name(d->store) : d->dir;
}

void
data_dir_finish(struct data_dir *d)
{
	whr_store_close(d->store);
	d->store = NULL;
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
