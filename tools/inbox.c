/*
 * whr inbox: look into a data folder's inbox, and put work back.
 *
 * It opens the same SQLite file as the server, safely while the server
 * runs: reads see a consistent snapshot (WAL), and the few writes
 * (replay, purge) wait for the server's write lock; the server notices
 * them within a second and takes the replayed work. JSON output is built
 * by SQLite's own JSON functions.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "commands.h"
#include "data-dir.h"
#include "inbox-table.h"
#include "store/store-sql.h"
#include "time-arg.h"

#define PROGRAM "whr inbox"
/* A usage error: the message, then exit status EXIT_USAGE. */
#define fail_usage(...) tool_usage_error(PROGRAM, __VA_ARGS__)

#define DEFAULT_LIMIT 100

struct tool {
	struct data_dir d;	/* the folder, its path and database */
	bool json;
};

static void
usage(FILE *out)
{
	fprintf(out,
		"Usage: whr inbox [--data-dir DIR] [--format table|json] COMMAND\n"
		"\n"
		"Look into the inbox of a data folder (safe while whr serve runs).\n"
		"\n"
		"Commands:\n"
		"  list [--state STATE] [--action A] [--since T] [--until T] [--limit N]\n"
		"        notifications, newest first; STATE is pending, retrying,\n"
		"        dead or done; T is a UTC time (2026-11-29T08:00:00Z,\n"
		"        2026-11-29T08:00, 2026-11-29) or an age counted back from\n"
		"        now (30s, 90m, 2h, 1.5d); --since is inclusive, --until\n"
		"        exclusive; N defaults to %d (0: no limit)\n"
		"  show ID [--receiver R]\n"
		"        a delivery: headers, body, and each handler's outcomes; ID\n"
		"        is the body's Id, or #SEQ for the stored sequence number\n"
		"  replay ID [--receiver R] [--all-handlers]\n"
		"        run a delivery's finished notifications again: those that\n"
		"        died, or the done ones too with --all-handlers; open ones\n"
		"        (pending, retrying) are left to whr serve\n"
		"  replay --dead [--action A]\n"
		"        run every dead notification's unfinished handlers again\n"
		"  purge --older-than AGE\n"
		"        delete deliveries finished longer ago than AGE, 500 to a\n"
		"        transaction\n"
		"  stats\n"
		"        counts by state and Action, the oldest open work, the size\n"
		"\n"
		"Options:\n"
		"  --data-dir DIR   the data folder (default: WHR_DATA_DIR, else ./whr-data)\n"
		"  --format FORMAT  table (for people, the default) or json\n"
		"\n"
		"Exit status: 0 success, 1 not found or the inbox cannot be read,\n"
		"2 usage error.\n",
		DEFAULT_LIMIT);
}

static bool
state_name_valid(const char *name)
{
	static const char *const states[] = {
		"pending", "retrying", "dead", "done",
	};
	size_t i;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		if (strcmp(name, states[i]) == 0)
			return true;
	}
	return false;
}

#define ISO(col) \
	"strftime('%Y-%m-%dT%H:%M:%fZ', " col " / 1000000.0, 'unixepoch')"

/* ---- list -------------------------------------------------------------- */

static int
cmd_list(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "action", required_argument, NULL, 'a' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = NULL, *action = NULL;
	int64_t since = 0, until = 0;
	bool has_since = false, has_until = false;
	long limit = DEFAULT_LIMIT;
	sqlite3_stmt *st = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!state_name_valid(optarg))
				return fail_usage("unknown state '%s': use "
						  "pending, retrying, dead or done",
						  optarg);
			state = optarg;
			break;
		case 'a':
			action = optarg;
			break;
		case 'S':
			rc = time_arg_option(PROGRAM, "--since", optarg,
					     &since);
			if (rc != 0)
				return rc;
			has_since = true;
			break;
		case 'U':
			rc = time_arg_option(PROGRAM, "--until", optarg,
					     &until);
			if (rc != 0)
				return rc;
			has_until = true;
			break;
		case 'l':
			limit = strtol(optarg, NULL, 10);
			if (limit < 0)
				return fail_usage("bad --limit '%s'", optarg);
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return fail_usage("unexpected argument '%s'", argv[optind]);
	rc = data_dir_open(&t->d, false);
	if (rc != 0)
		return rc;

#define LIST_FROM \
	" FROM notifications n JOIN deliveries d ON d.seq = n.delivery_seq" \
	" WHERE (?1 IS NULL OR n.state = ?1)" \
	" AND (?2 IS NULL OR n.action = ?2 COLLATE NOCASE)" \
	" AND (?3 IS NULL OR d.received_at >= ?3)" \
	" AND (?4 IS NULL OR d.received_at < ?4)" \
	" ORDER BY n.id DESC LIMIT ?5"
	if (t->json)
		rc = sqlite3_prepare_v2(t->d.db,
			"SELECT json_group_array(json(o)) FROM (SELECT json_object("
			"'notification', n.id, 'seq', d.seq,"
			" 'received', " ISO("d.received_at") ","
			" 'receiver', d.receiver_id, 'id', d.delivery_id,"
			" 'attempt', d.attempt, 'index', n.idx,"
			" 'action', n.action, 'state', n.state, 'runs', n.runs,"
			" 'error', n.error) AS o" LIST_FROM ")",
			-1, &st, NULL);
	else
		rc = sqlite3_prepare_v2(t->d.db,
			"SELECT n.id, d.seq, " ISO("d.received_at") ","
			" d.receiver_id, d.delivery_id, d.attempt, n.idx,"
			" n.action, n.state, n.runs, n.error" LIST_FROM,
			-1, &st, NULL);
	if (rc != SQLITE_OK)
		return data_dir_sql_error(&t->d, "cannot list");
	if (state != NULL)
		sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	if (action != NULL)
		sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
	if (has_since)
		sqlite3_bind_int64(st, 3, since);
	if (has_until)
		sqlite3_bind_int64(st, 4, until);
	sqlite3_bind_int64(st, 5, limit == 0 ? -1 : limit);
	if (t->json)
		rc = print_json_result(st);
	else
		rc = print_table(st, (const char *const[]){
			"NOTIF", "SEQ", "RECEIVED (UTC)", "RECEIVER", "ID",
			"ATTEMPT", "IDX", "ACTION", "STATE", "RUNS", "ERROR",
			NULL });
	sqlite3_finalize(st);
	return rc < 0 ? data_dir_sql_error(&t->d, "cannot list") : 0;
}

/* ---- finding a delivery -------------------------------------------------- */

/* The seq of delivery ID ("#SEQ" or the body's Id, with an optional
 * receiver id). 0 on success, 1 (and a message) when not found or
 * ambiguous. */
static int
find_delivery(struct tool *t, const char *id, const char *receiver,
	      int64_t *seq)
{
	sqlite3_stmt *st = NULL;
	int found = 0;

	if (id[0] == '#') {
		if (sqlite3_prepare_v2(t->d.db,
				       "SELECT seq FROM deliveries WHERE seq = ?1",
				       -1, &st, NULL) != SQLITE_OK)
			return data_dir_sql_error(&t->d, "cannot look up");
		sqlite3_bind_int64(st, 1, strtoll(id + 1, NULL, 10));
	} else {
		if (sqlite3_prepare_v2(t->d.db,
				       "SELECT seq FROM deliveries WHERE delivery_id = ?1"
				       " AND (?2 IS NULL OR receiver_id = lower(?2))",
				       -1, &st, NULL) != SQLITE_OK)
			return data_dir_sql_error(&t->d, "cannot look up");
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (receiver != NULL)
			sqlite3_bind_text(st, 2, receiver, -1, SQLITE_STATIC);
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		found++;
	}
	sqlite3_finalize(st);
	if (found == 0) {
		fprintf(stderr, PROGRAM ": no delivery %s%s%s in %s\n", id,
			receiver != NULL ? " for receiver " : "",
			receiver != NULL ? receiver : "", t->d.path);
		return 1;
	}
	if (found > 1) {
		fprintf(stderr,
			PROGRAM ": %d deliveries have Id %s (one per receiver id): "
			"give --receiver, or #SEQ\n", found, id);
		return 1;
	}
	return 0;
}

/* ---- show -------------------------------------------------------------- */

static int
cmd_show(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "receiver", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *receiver = NULL;
	int64_t seq = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'r')
			return EXIT_USAGE;
		receiver = optarg;
	}
	if (optind + 1 != argc)
		return fail_usage("show needs one ID");
	rc = data_dir_open(&t->d, false);
	if (rc == 0)
		rc = find_delivery(t, argv[optind], receiver, &seq);
	if (rc != 0)
		return rc;
	rc = t->json ? show_json(t->d.db, seq) : show_text(t->d.db, seq);
	return rc < 0 ? data_dir_sql_error(&t->d, "cannot show") : 0;
}

/* ---- replay and purge --------------------------------------------------- */

static int
replay_notifications(struct tool *t, sqlite3_stmt *select, bool all_handlers,
		     int *count)
{
	static const char *const steps[] = {
		SQL_REPLAY_OUTCOMES, SQL_REPLAY_NOTIFICATION,
	};
	int64_t now = time_arg_now_us();
	sqlite3_stmt *st[2] = { NULL, NULL };
	int rc = -1;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (sqlite3_prepare_v2(t->d.db, steps[i], -1, &st[i], NULL) !=
		    SQLITE_OK)
			goto out;
	}
	*count = 0;
	while ((rc = sqlite3_step(select)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(select, 0);

		for (i = 0; i < 2; i++) {
			sqlite3_bind_int64(st[i], 1, id);
			if (i == 0)
				sqlite3_bind_int(st[i], 2, all_handlers);
			if (i == 1)
				sqlite3_bind_int64(st[i], 3, now);
			if (sqlite3_step(st[i]) != SQLITE_DONE)
				goto out;
			sqlite3_reset(st[i]);
		}
		(*count)++;
	}
	rc = rc == SQLITE_DONE ? 0 : -1;
out:
	for (i = 0; i < 2; i++)
		sqlite3_finalize(st[i]);
	return rc == 0 ? 0 : -1;
}

/* How many notifications of delivery @p seq are open (pending or
 * retrying): an SQLite result code. */
static int
count_open(struct tool *t, int64_t seq, int *n_open)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(t->d.db,
		"SELECT count(*) FROM notifications WHERE delivery_seq = ?1"
		" AND state IN ('pending', 'retrying')", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, seq);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*n_open = sqlite3_column_int(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

static int
cmd_replay(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "receiver", required_argument, NULL, 'r' },
		{ "all-handlers", no_argument, NULL, 'A' },
		{ "dead", no_argument, NULL, 'D' },
		{ "action", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *receiver = NULL, *action = NULL;
	bool all_handlers = false, dead = false;
	int n_open = 0;
	sqlite3_stmt *select = NULL;
	int64_t seq = 0;
	int count = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			receiver = optarg;
			break;
		case 'A':
			all_handlers = true;
			break;
		case 'D':
			dead = true;
			break;
		case 'a':
			action = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (dead ? optind != argc : optind + 1 != argc)
		return fail_usage("replay needs one ID, or --dead");
	rc = data_dir_open(&t->d, true);
	if (rc != 0)
		return rc;
	if (sqlite3_exec(t->d.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return data_dir_sql_error(&t->d, "cannot lock the inbox");
	if (dead) {
		rc = sqlite3_prepare_v2(t->d.db,
			"SELECT id FROM notifications WHERE state = 'dead'"
			" AND (?1 IS NULL OR action = ?1 COLLATE NOCASE)"
			" ORDER BY id", -1, &select, NULL);
		if (rc == SQLITE_OK && action != NULL)
			sqlite3_bind_text(select, 1, action, -1, SQLITE_STATIC);
	} else {
		rc = find_delivery(t, argv[optind], receiver, &seq);
		if (rc != 0) {
			sqlite3_exec(t->d.db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		rc = count_open(t, seq, &n_open);
		/* Finished ones only: open work is the server's, which would
		 * write its own outcome over the replay. Not the ones done
		 * already, unless all handlers run again. */
		if (rc == SQLITE_OK)
			rc = sqlite3_prepare_v2(t->d.db,
				"SELECT id FROM notifications"
				" WHERE delivery_seq = ?1 AND (state = 'dead'"
				" OR (?2 = 1 AND state = 'done')) ORDER BY id",
				-1, &select, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_int64(select, 1, seq);
			sqlite3_bind_int(select, 2, all_handlers);
		}
	}
	if (rc != SQLITE_OK ||
	    replay_notifications(t, select, all_handlers, &count) < 0 ||
	    sqlite3_exec(t->d.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = data_dir_sql_error(&t->d, "cannot replay");
		sqlite3_finalize(select);
		sqlite3_exec(t->d.db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	sqlite3_finalize(select);
	if (t->json && dead)
		printf("{\"replayed\":%d}\n", count);
	else if (t->json)
		printf("{\"replayed\":%d,\"open\":%d}\n", count, n_open);
	else if (count == 0 && n_open > 0)
		printf("nothing to replay: %s has %d notification(s) still "
		       "open (pending or retrying), which whr serve runs\n",
		       argv[optind], n_open);
	else if (count == 0 && !dead && all_handlers)
		printf("nothing to replay: %s has no notifications\n",
		       argv[optind]);
	else if (count == 0 && !dead)
		printf("nothing to replay: every handler of %s is done "
		       "(--all-handlers runs them again)\n", argv[optind]);
	else
		printf("replayed %d notification(s); a running whr serve "
		       "takes them within a second%s\n", count,
		       n_open > 0 ? " (the ones still open were left to it)"
				: "");
	return 0;
}

/* Deliveries purged per transaction: the server waits for the lock
 * (a few seconds at most, then it answers 503), so no transaction may
 * hold it long, however much there is to purge. */
#define PURGE_CLI_BATCH 500

/* One transaction purging up to PURGE_CLI_BATCH deliveries finished
 * before @p before; how many in @p n. An SQLite result code; on an
 * error the transaction is left for the caller to roll back once it has
 * read the message. */
static int
purge_batch(struct tool *t, int64_t before, int *n)
{
	static const char *const steps[] = {
		SQL_PURGE_OUTCOMES, SQL_PURGE_NOTIFICATIONS, SQL_PURGE_DELIVERY,
	};
	sqlite3_stmt *select = NULL;
	sqlite3_stmt *st[3] = { NULL, NULL, NULL };
	size_t i;
	int rc;

	*n = 0;
	rc = sqlite3_exec(t->d.db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_prepare_v2(t->d.db, SQL_FINISHED_BEFORE " LIMIT ?2", -1,
				&select, NULL);
	for (i = 0; rc == SQLITE_OK && i < 3; i++)
		rc = sqlite3_prepare_v2(t->d.db, steps[i], -1, &st[i], NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(select, 1, before);
		sqlite3_bind_int(select, 2, PURGE_CLI_BATCH);
		while ((rc = sqlite3_step(select)) == SQLITE_ROW) {
			for (i = 0; i < 3; i++) {
				sqlite3_bind_int64(st[i], 1,
						   sqlite3_column_int64(select, 0));
				if (sqlite3_step(st[i]) != SQLITE_DONE)
					break;
				sqlite3_reset(st[i]);
			}
			if (i < 3)
				break;
			(*n)++;
		}
		rc = rc == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(select);
	for (i = 0; i < 3; i++)
		sqlite3_finalize(st[i]);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(t->d.db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

static int
cmd_purge(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t age = 0, before;
	bool given = false;
	int count = 0, n;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'o' || time_arg_parse_age(optarg, &age) < 0)
			return fail_usage("purge needs --older-than AGE, e.g. 30d");
		given = true;
	}
	if (!given || optind != argc)
		return fail_usage("purge needs --older-than AGE, e.g. 30d");
	before = time_arg_now_us() - age;
	rc = data_dir_open(&t->d, true);
	if (rc != 0)
		return rc;
	do {
		rc = purge_batch(t, before, &n);
		if (rc != SQLITE_OK) {
			rc = data_dir_sql_error(&t->d, rc == SQLITE_BUSY
					? "cannot lock the inbox"
					: "cannot purge");
			sqlite3_exec(t->d.db, "ROLLBACK", NULL, NULL, NULL);
			/* The batches before it stay purged: say so, where a
			 * script reads the count. */
			if (count > 0 && t->json)
				printf("{\"purged\":%d}\n", count);
			else if (count > 0)
				fprintf(stderr, "%s: purged %d finished "
					"deliveries before the error\n",
					t->d.prog, count);
			return rc;
		}
		count += n;
	} while (n == PURGE_CLI_BATCH);
	if (t->json)
		printf("{\"purged\":%d}\n", count);
	else
		printf("purged %d finished deliveries\n", count);
	return 0;
}

/* ---- stats ------------------------------------------------------------- */

static int
cmd_stats(struct tool *t, int argc, char **argv)
{
	int rc;

	if (argc > 1)
		return fail_usage("unexpected argument '%s'", argv[1]);
	rc = data_dir_open(&t->d, false);
	if (rc != 0)
		return rc;
	rc = t->json ? stats_json(t->d.db, t->d.path) : stats_text(t->d.db, t->d.path);
	return rc < 0 ? data_dir_sql_error(&t->d, "cannot count") : 0;
}

/* ---- the command ------------------------------------------------------- */

int
cmd_inbox(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tool t = { .json = false };
	enum report_format format;
	const char *sub;
	int c, rc;

	data_dir_init(&t.d, PROGRAM);
	/* Global options come before the subcommand ("+": stop there);
	 * optind 0 makes glibc's getopt start afresh. */
	optind = 0;
	while ((c = getopt_long(argc + 1, argv - 1, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			rc = data_dir_option(&t.d, optarg);
			if (rc != 0)
				return rc;
			break;
		case 'f':
			rc = tool_format_option(PROGRAM, optarg, false,
						&format);
			if (rc != 0)
				return rc;
			t.json = format == REPORT_JSON;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind > argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	sub = argv[0];
	optind = 0;	/* subcommands parse argv[1...] */
	if (strcmp(sub, "list") == 0)
		rc = cmd_list(&t, argc, argv);
	else if (strcmp(sub, "show") == 0)
		rc = cmd_show(&t, argc, argv);
	else if (strcmp(sub, "replay") == 0)
		rc = cmd_replay(&t, argc, argv);
	else if (strcmp(sub, "purge") == 0)
		rc = cmd_purge(&t, argc, argv);
	else if (strcmp(sub, "stats") == 0)
		rc = cmd_stats(&t, argc, argv);
	else
		rc = fail_usage("unknown command '%s'", sub);
	data_dir_finish(&t.d);
	return rc;
}
