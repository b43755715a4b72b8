/*
 * whr migrate: a data folder's inbox and enrollment tracker moved into a
 * PostgreSQL database, for replicas of whr serve --database. The storage
 * interface copies (whr_store_copy()), the tracker says what its tables
 * are; this file reads the command line, opens both sides and says what
 * was done, all in one transaction of the database's.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "data-dir.h"
#include "enrollments/enrollments.h"
#include "store/store.h"

#define PROGRAM "whr migrate"
#define MAX_TABLES 8

static void
usage(void)
{
	fputs(
	"Usage: whr migrate [--data-dir DIR] [--database URL]\n"
	"\n"
	"Copy the inbox of a data folder (SQLite) into an empty PostgreSQL\n"
	"database, for whr serve --database: every delivery with its\n"
	"notifications, their states and handlers' outcomes, numbered as they\n"
	"were (a resend is still recognised, whr inbox shows the same), and the\n"
	"enrollment tracker's courses, learners, enrollments and history. The\n"
	"database gets whr's tables as whr serve would make them; the copy is\n"
	"one transaction: all of it, or nothing. A database that holds\n"
	"deliveries or tracker rows already is refused.\n"
	"\n"
	"Stop whr serve on the folder first: what it stores after the copy\n"
	"began is not copied. Then start the replicas with --database.\n"
	"\n"
	"Options:\n"
	"  --data-dir DIR   the data folder (default: WHR_DATA_DIR, else\n"
	"                   ./whr-data)\n"
	"  --database URL   the PostgreSQL database (default: the URL in the\n"
	"                   file WHR_DATABASE_FILE names, else WHR_DATABASE);\n"
	"                   its password from PGPASSFILE or that file, never\n"
	"                   on the command line\n"
	"  --help           show this help\n"
	"\n"
	"Exit status: 0 copied, 1 nothing copied (the reason is said), 2 usage\n"
	"error.\n", stdout);
}

/* The tracker's tables to copy, when the folder has them: how many into
 * @p out (0: none there), made in @p to if missing; or -1 after a
 * message. */
static int
tracker_tables(struct data_dir *from, struct data_dir *to,
	       struct store_table_copy *out)
{
	const struct enrollments_table_copy *t;
	size_t n, i;
	int version = 0;
	int rc;

	rc = enrollments_schema_read(whr_store_tx(from->store), &version);
	if (rc == 0)
		return 0;	/* whr serve ran with --no-enrollments */
	if (rc < 0) {
		data_dir_error(from, "cannot read the enrollment tables");
		return -1;
	}
	if (version != ENROLLMENTS_SCHEMA_VERSION) {
		fprintf(stderr, PROGRAM ": the enrollment tables in %s have "
			"schema version %d; this whr copies version %d: use "
			"the whr that wrote them\n", data_dir_name(from),
			version, ENROLLMENTS_SCHEMA_VERSION);
		return -1;
	}
	if (enrollments_schema_setup(whr_store_tx(to->store), NULL) < 0) {
		fprintf(stderr, PROGRAM ": cannot make the enrollment tables in "
			"%s\n", data_dir_name(to));
		return -1;
	}
	n = enrollments_copy_tables(&t);
	for (i = 0; i < n && i < MAX_TABLES; i++)
		out[i] = (struct store_table_copy){
			t[i].name, t[i].read, t[i].write, t[i].columns,
		};
	return (int)i;
}

static int
migrate(struct data_dir *from, struct data_dir *to)
{
	struct store_table_copy more[MAX_TABLES];
	struct store_copied copied;
	int n_more;
	int rc;

	rc = whr_store_begin(to->store);
	if (rc < 0)
		return data_dir_error(to, "cannot begin");
	n_more = tracker_tables(from, to, more);
	if (n_more < 0) {
		whr_store_rollback(to->store);
		return 1;
	}
	rc = whr_store_copy(from->store, to->store, more, (size_t)n_more,
			    &copied);
	if (rc == 0)
		rc = whr_store_commit(to->store);
	if (rc < 0) {
		whr_store_rollback(to->store);
		fprintf(stderr, PROGRAM ": nothing copied: %s\n",
			whr_store_error(to->store));
		return 1;
	}
	printf("copied %lld deliveries (%lld notifications, %lld outcomes) "
	       "and %lld rows of the enrollment tracker from %s to %s\n",
	       (long long)copied.deliveries, (long long)copied.notifications,
	       (long long)copied.outcomes, (long long)copied.more,
	       data_dir_name(from), data_dir_name(to));
	return 0;
}

int
cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "database", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct data_dir from, to;
	int c, rc;

	data_dir_init(&from, PROGRAM);
	data_dir_init(&to, PROGRAM);
	/* The folder is never a database from the environment. */
	from.given = true;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc + 1, argv - 1, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			rc = data_dir_option(&from, optarg);
			if (rc != 0)
				return rc;
			break;
		case 'D':
			rc = data_dir_database_option(&to, optarg);
			if (rc != 0)
				return rc;
			break;
		case 'h':
			usage();
			return 0;
		case ':':
			return tool_usage_error(PROGRAM, "%s needs a value",
						argv[optind - 2]);
		default:
			return tool_usage_error(PROGRAM, "unknown option '%s'",
						argv[optind - 2]);
		}
	}
	if (optind <= argc)
		return tool_usage_error(PROGRAM, "unexpected argument '%s'",
					argv[optind - 1]);
	if (whr_store_location_is_database(from.dir))
		return tool_usage_error(PROGRAM, "--data-dir needs a folder");
	rc = data_dir_open(&from, true);
	if (rc == 0)
		rc = data_dir_open_database(&to);
	if (rc == 0)
		rc = migrate(&from, &to);
	data_dir_finish(&to);
	data_dir_finish(&from);
	return rc;
}
