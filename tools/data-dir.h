/*
 * What the data-folder tools, whr inbox and whr enrollments, share: the
 * store they read (--data-dir DIR or --database URL, the last given;
 * else the file WHR_DATABASE_FILE names, else WHR_DATABASE, else
 * WHR_DATA_DIR, else ./whr-data), opening it through the storage
 * interface with the same checks and messages, the --format option, and
 * how they report usage and store errors. Every message starts with the
 * tool's name ("whr inbox: "), and never shows a database's password.
 */
#ifndef WHR_TOOLS_DATA_DIR_H
#define WHR_TOOLS_DATA_DIR_H

#include <stdbool.h>

#include <whr/log.h>	/* WHR_PRINTF */

struct whr_store;

struct data_dir {
	const char *prog;	/* "whr inbox": the messages' prefix */
	const char *dir;	/* a folder or a database URL; borrowed:
				 * argv, the environment, or owned */
	char *owned;		/* a URL read from WHR_DATABASE_FILE */
	bool given;		/* by an option: the environment's unread */
	struct whr_store *store;	/* NULL until opened */
};

/* @p prog names the tool in messages; the folder is the store's default
 * (WHR_DATA_DIR's, else ./whr-data) until data_dir_option(). */
void data_dir_init(struct data_dir *d, const char *prog);

/* --data-dir @p arg: 0, or EXIT_USAGE after a message (an empty name). */
int data_dir_option(struct data_dir *d, const char *arg);

/* --database @p arg: 0, or EXIT_USAGE after a message (no database URL,
 * or one with a password, which a command line shows every user). */
int data_dir_database_option(struct data_dir *d, const char *arg);

/* Open the folder's store, read-only (queries only) unless @p write: 0,
 * or 1 after a message on stderr when there is no such folder, it is not
 * a directory, it holds no database, or the file is not a whr database
 * of a schema this whr reads (any version up to its own to read; to
 * write, its own: the server upgrades older ones on start). Waits up to
 * 10 s for a writer's lock. */
int data_dir_open(struct data_dir *d, bool write);

/* Open the database (--database, else WHR_DATABASE_FILE's, else
 * WHR_DATABASE) to write to it, making whr's tables there as whr serve
 * would (whr migrate): 0; EXIT_USAGE after a message when no database
 * was given (a data folder is not taken); 1 after a message when it
 * cannot be opened. */
int data_dir_open_database(struct data_dir *d);

/* The folder's store file or the database (without its password), for
 * messages. */
const char *data_dir_name(const struct data_dir *d);

/* Close the database (none open: nothing). */
void data_dir_finish(struct data_dir *d);

/* "PROG: WHAT: the store's message" on stderr; returns 1 (the exit
 * status of a runtime failure). */
int data_dir_error(const struct data_dir *d, const char *what);

/* ---- command lines ------------------------------------------------- */

/* "PROG: message (see PROG --help)" on stderr; returns EXIT_USAGE. */
int tool_usage_error(const char *prog, const char *fmt, ...)
	WHR_PRINTF(2, 3);

enum report_format {
	REPORT_TABLE,
	REPORT_CSV,
	REPORT_JSON,
};

/* --format @p arg: "table", "json", and "csv" when @p csv. 0, or
 * EXIT_USAGE after a message that lists the formats the tool takes. */
int tool_format_option(const char *prog, const char *arg, bool csv,
		       enum report_format *out);

#endif /* WHR_TOOLS_DATA_DIR_H */
