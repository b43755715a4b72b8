/*
 * whr inbox: look into a data folder's inbox, and put work back.
 *
 * It opens the server's store through the storage interface, safely
 * while the server runs: reads see a consistent snapshot, and the few
 * writes (replay, purge) wait for the server's write lock; the server
 * notices them within a second and takes the replayed work.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "commands.h"
#include "data-dir.h"
#include "inbox-table.h"
#include "store/store.h"
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
		"Usage: whr inbox [--data-dir DIR | --database URL] [--format table|json]\n"
		"                 COMMAND [OPTIONS]\n"
		"\n"
		"Look into the inbox of a data folder or a PostgreSQL database (safe\n"
		"while whr serve runs).\n"
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
		"  backup DEST [--force]\n"
		"        a consistent copy of the inbox, taken while whr serve runs,\n"
		"        into the file DEST (mode 0600; written whole or not at all,\n"
		"        and checked); an existing DEST is replaced only with --force.\n"
		"        To restore it: stop whr serve, put it in the data folder as\n"
		"        inbox.sqlite, remove inbox.sqlite-wal and -shm, start\n"
		"\n"
		"Options (before the command or after it):\n"
		"  --data-dir DIR   the data folder (default: WHR_DATA_DIR, else ./whr-data)\n"
		"  --database URL   the PostgreSQL database whr serve --database uses\n"
		"                   (default: the URL in the file WHR_DATABASE_FILE\n"
		"                   names, else WHR_DATABASE); its password from\n"
		"                   PGPASSFILE or that file, never on the command line\n"
		"  --format FORMAT  table (for people, the default) or json\n"
		"\n"
		"Exit status: 0 success, 1 not found or the inbox cannot be read,\n"
		"2 usage error.\n",
		DEFAULT_LIMIT);
}

/* --data-dir, --database and --format: before the command word, and
 * after it among the command's own options, whose values are letters. */
enum {
	OPT_DATA_DIR = 256,
	OPT_DATABASE,
	OPT_FORMAT,
};

#define COMMON_OPTIONS \
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR }, \
	{ "database", required_argument, NULL, OPT_DATABASE }, \
	{ "format", required_argument, NULL, OPT_FORMAT }

/* getopt_long()'s @p c for a common option: 0, or EXIT_USAGE (after a
 * message). */
static int
common_option(struct tool *t, int c)
{
	enum report_format format;
	int rc;

	switch (c) {
	case OPT_DATA_DIR:
		return data_dir_option(&t->d, optarg);
	case OPT_DATABASE:
		return data_dir_database_option(&t->d, optarg);
	case OPT_FORMAT:
		rc = tool_format_option(PROGRAM, optarg, false, &format);
		if (rc == 0)
			t->json = format == REPORT_JSON;
		return rc;
	default:
		return EXIT_USAGE;
	}
}

/* The next of a command's own options (getopt_long()'s letter, '?' for
 * an unknown one), taking the common ones on the way: -1 at the end, or
 * with *rc EXIT_USAGE (after a message) on a bad common one. */
static int
next_option(struct tool *t, int argc, char **argv,
	    const struct option *opts, int *rc)
{
	int c;

	*rc = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c < OPT_DATA_DIR)
			return c;
		*rc = common_option(t, c);
		if (*rc != 0)
			return -1;
	}
	return -1;
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

/* The inbox of a command that takes no arguments (list, stats), opened
 * to read: 0, or the exit status. */
static int
open_to_read(struct tool *t, int argc, char **argv)
{
	if (optind != argc)
		return fail_usage("unexpected argument '%s'", argv[optind]);
	return data_dir_open(&t->d, false);
}

/* ---- list -------------------------------------------------------------- */

static const char *const list_titles[] = {
	"NOTIF", "SEQ", "RECEIVED (UTC)", "RECEIVER", "ID", "ATTEMPT", "IDX",
	"ACTION", "STATE", "RUNS", "ERROR", NULL,
};

static int
list_row(const struct store_notification *n, void *arg)
{
	const struct cell row[] = {
		{ "notification", CELL_INT, .value = n->id },
		{ "seq", CELL_INT, .value = n->seq },
		{ "received", CELL_TIME, .value = n->received_at },
		{ "receiver", CELL_TEXT, .text = n->receiver_id },
		{ "id", CELL_TEXT, .text = n->delivery_id },
		{ "attempt", CELL_INT, .value = n->attempt },
		{ "index", CELL_INT, .value = n->index },
		{ "action", CELL_TEXT, .text = n->action },
		{ "state", CELL_TEXT, .text = n->state },
		{ "runs", CELL_INT, .value = n->runs },
		{ "error", CELL_TEXT, .text = n->error },
	};

	return output_row(arg, row, sizeof(row) / sizeof(row[0]));
}

static int
cmd_list(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "action", required_argument, NULL, 'a' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "limit", required_argument, NULL, 'l' },
		COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct store_filter f = { .limit = DEFAULT_LIMIT };
	struct output o = { NULL, NULL };
	long limit;
	int c, rc;

	while ((c = next_option(t, argc, argv, opts, &rc)) != -1) {
		switch (c) {
		case 's':
			if (!state_name_valid(optarg))
				return fail_usage("unknown state '%s': use "
						  "pending, retrying, dead or done",
						  optarg);
			f.state = optarg;
			break;
		case 'a':
			f.action = optarg;
			break;
		case 'S':
			f.has_since = true;
			rc = time_arg_option(PROGRAM, "--since", optarg,
					     &f.since);
			break;
		case 'U':
			f.has_until = true;
			rc = time_arg_option(PROGRAM, "--until", optarg,
					     &f.until);
			break;
		case 'l':
			limit = strtol(optarg, NULL, 10);
			if (limit < 0)
				return fail_usage("bad --limit '%s'", optarg);
			f.limit = limit;
			break;
		default:
			return EXIT_USAGE;
		}
		if (rc != 0)
			return rc;
	}
	if (rc != 0)
		return rc;
	rc = open_to_read(t, argc, argv);
	if (rc != 0)
		return rc;
	if (!output_open(&o, t->json, list_titles))
		return data_dir_error(&t->d, "cannot list: out of memory");
	if (o.json != NULL)
		yajl_gen_array_open(o.json);
	rc = whr_store_list(t->d.store, &f, list_row, &o);
	if (o.json != NULL)
		yajl_gen_array_close(o.json);
	output_close(&o, rc == 0);
	return rc < 0 ? data_dir_error(&t->d, "cannot list") : 0;
}

/* ---- finding a delivery -------------------------------------------------- */

/* The seq of delivery ID ("#SEQ" or the body's Id, with an optional
 * receiver id). 0 on success, 1 (and a message) when not found or
 * ambiguous. */
static int
find_delivery(struct tool *t, const char *id, const char *receiver,
	      int64_t *seq)
{
	int found = 0;
	int rc;

	if (id[0] == '#')
		rc = whr_store_find(t->d.store, NULL, strtoll(id + 1, NULL, 10),
				    NULL, &found, seq);
	else
		rc = whr_store_find(t->d.store, id, 0, receiver, &found, seq);
	if (rc < 0)
		return data_dir_error(&t->d, "cannot look up");
	if (found == 0) {
		fprintf(stderr, PROGRAM ": no delivery %s%s%s in %s\n", id,
			receiver != NULL ? " for receiver " : "",
			receiver != NULL ? receiver : "",
			data_dir_name(&t->d));
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

/* The headers ([[name, value], ...]) as "name: value" lines, the ones
 * after the first indented under it. */
static void
print_headers(const char *json)
{
	yajl_val v = json != NULL ? yajl_tree_parse(json, NULL, 0) : NULL;
	size_t i;
	bool any = false;

	printf("headers    ");
	for (i = 0; YAJL_IS_ARRAY(v) && i < v->u.array.len; i++) {
		yajl_val h = v->u.array.values[i];

		if (!YAJL_IS_ARRAY(h) || h->u.array.len != 2 ||
		    !YAJL_IS_STRING(h->u.array.values[0]) ||
		    !YAJL_IS_STRING(h->u.array.values[1]))
			continue;
		printf("%s%s: %s", any ? "\n           " : "",
		       h->u.array.values[0]->u.string,
		       h->u.array.values[1]->u.string);
		any = true;
	}
	printf("%s\n", any ? "" : "-");
	yajl_tree_free(v);
}

static int
show_delivery_text(const struct store_delivery *d, void *arg)
{
	char when[ISO_TIME_SIZE];

	printf("delivery   #%lld\n", (long long)d->seq);
	printf("id         %s\n", d->delivery_id != NULL
		       ? d->delivery_id : "(none: the body has no Id)");
	printf("receiver   %s\n", d->receiver_id != NULL && *d->receiver_id
		       ? d->receiver_id : "(default)");
	printf("attempt    %lld\n", (long long)d->attempt);
	iso_time(when, d->received_at);
	printf("received   %s\n", when);
	printf("duplicates %lld", (long long)d->duplicates);
	if (d->duplicates > 0) {
		iso_time(when, d->last_duplicate_at);
		printf(" (last with attempt %lld, at %s)",
		       (long long)d->last_attempt,
		       d->has_last_duplicate ? when : "-");
	}
	iso_time(when, d->finished_at);
	printf("\nfinished   %s\n", d->finished ? when : "no: work is open");
	print_headers(d->headers_json);
	printf("body       %zu bytes\n%s\n", d->body_len,
	       d->body != NULL ? d->body : "");
	return 0;
}

static int
show_notification_text(const struct store_notification *n,
		       const struct store_outcome_row *o, size_t n_outcomes,
		       void *arg)
{
	size_t i;

	printf("\nnotification %lld (#%lld): %s, %s after %lld run(s)",
	       (long long)n->index, (long long)n->id,
	       n->action != NULL ? n->action : "(no Action)", n->state,
	       (long long)n->runs);
	if (strcmp(n->state, "retrying") == 0 ||
	    strcmp(n->state, "pending") == 0) {
		char when[ISO_TIME_SIZE];

		iso_time(when, n->next_at);
		printf(", next at %s", when);
	}
	if (n->error != NULL)
		printf("\n  error: %s", n->error);
	printf("\n");
	for (i = 0; i < n_outcomes; i++)
		printf("  handler %-16s %-7s runs %lld%s%s\n", o[i].handler,
		       o[i].result, (long long)o[i].runs,
		       o[i].reason != NULL ? ": " : "",
		       o[i].reason != NULL ? o[i].reason : "");
	return 0;
}

static int
show_delivery_json(const struct store_delivery *d, void *arg)
{
	const struct cell head[] = {
		{ "seq", CELL_INT, .value = d->seq },
		{ "id", CELL_TEXT, .text = d->delivery_id },
		{ "receiver", CELL_TEXT, .text = d->receiver_id },
		{ "attempt", CELL_INT, .value = d->attempt },
		{ "received", CELL_TIME, .value = d->received_at },
		{ "duplicates", CELL_INT, .value = d->duplicates },
	};
	yajl_gen g = arg;

	json_cells(g, head, sizeof(head) / sizeof(head[0]));
	json_key(g, "last_attempt");
	if (d->has_last_attempt)
		yajl_gen_integer(g, (long long)d->last_attempt);
	else
		yajl_gen_null(g);
	json_time(g, "finished", d->finished, d->finished_at);
	json_raw(g, "headers", d->headers_json);
	json_text(g, "body", d->body);
	json_key(g, "notifications");
	yajl_gen_array_open(g);
	return 0;
}

static int
show_notification_json(const struct store_notification *n,
		       const struct store_outcome_row *o, size_t n_outcomes,
		       void *arg)
{
	const struct cell head[] = {
		{ "notification", CELL_INT, .value = n->id },
		{ "index", CELL_INT, .value = n->index },
		{ "action", CELL_TEXT, .text = n->action },
		{ "state", CELL_TEXT, .text = n->state },
		{ "runs", CELL_INT, .value = n->runs },
		{ "next_at", CELL_TIME, .value = n->next_at },
		{ "error", CELL_TEXT, .text = n->error },
	};
	yajl_gen g = arg;
	size_t i;

	yajl_gen_map_open(g);
	json_cells(g, head, sizeof(head) / sizeof(head[0]));
	json_key(g, "outcomes");
	yajl_gen_array_open(g);
	for (i = 0; i < n_outcomes; i++) {
		const struct cell outcome[] = {
			{ "handler", CELL_TEXT, .text = o[i].handler },
			{ "result", CELL_TEXT, .text = o[i].result },
			{ "runs", CELL_INT, .value = o[i].runs },
			{ "reason", CELL_TEXT, .text = o[i].reason },
			{ "at", CELL_TIME, .value = o[i].at },
		};

		yajl_gen_map_open(g);
		json_cells(g, outcome, sizeof(outcome) / sizeof(outcome[0]));
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	return 0;
}

static int
cmd_show(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "receiver", required_argument, NULL, 'r' },
		COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	const char *receiver = NULL;
	int64_t seq = 0;
	yajl_gen g;
	int c, rc;

	while ((c = next_option(t, argc, argv, opts, &rc)) != -1) {
		if (c != 'r')
			return EXIT_USAGE;
		receiver = optarg;
	}
	if (rc != 0)
		return rc;
	if (optind + 1 != argc)
		return fail_usage("show needs one ID");
	rc = data_dir_open(&t->d, false);
	if (rc == 0)
		rc = find_delivery(t, argv[optind], receiver, &seq);
	if (rc != 0)
		return rc;
	if (!t->json) {
		rc = whr_store_show(t->d.store, seq, show_delivery_text,
				    show_notification_text, NULL);
		return rc < 0 ? data_dir_error(&t->d, "cannot show") : 0;
	}
	g = json_begin();
	if (g == NULL)
		return data_dir_error(&t->d, "cannot show: out of memory");
	yajl_gen_map_open(g);
	rc = whr_store_show(t->d.store, seq, show_delivery_json,
			    show_notification_json, g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	if (rc < 0) {
		yajl_gen_free(g);
		return data_dir_error(&t->d, "cannot show");
	}
	json_end(g);
	return 0;
}

/* ---- replay and purge --------------------------------------------------- */

static int
cmd_replay(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "receiver", required_argument, NULL, 'r' },
		{ "all-handlers", no_argument, NULL, 'A' },
		{ "dead", no_argument, NULL, 'x' },
		{ "action", required_argument, NULL, 'a' },
		COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct store_replay r = { .now = time_arg_now_us() };
	const char *receiver = NULL;
	bool dead = false;
	int c, rc;

	while ((c = next_option(t, argc, argv, opts, &rc)) != -1) {
		switch (c) {
		case 'r':
			receiver = optarg;
			break;
		case 'A':
			r.all_handlers = true;
			break;
		case 'x':
			dead = true;
			break;
		case 'a':
			r.action = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (rc != 0)
		return rc;
	if (dead ? optind != argc : optind + 1 != argc)
		return fail_usage("replay needs one ID, or --dead");
	rc = data_dir_open(&t->d, true);
	if (rc != 0)
		return rc;
	if (!dead) {
		rc = find_delivery(t, argv[optind], receiver, &r.seq);
		if (rc != 0)
			return rc;
		r.action = NULL;
	}
	rc = whr_store_replay(t->d.store, &r);
	if (rc < 0)
		return data_dir_error(&t->d, rc == -EBUSY
				      ? "cannot lock the inbox"
				      : "cannot replay");
	if (t->json && dead)
		printf("{\"replayed\":%d}\n", r.replayed);
	else if (t->json)
		printf("{\"replayed\":%d,\"open\":%d}\n", r.replayed, r.open);
	else if (r.replayed == 0 && r.open > 0)
		printf("nothing to replay: %s has %d notification(s) still "
		       "open (pending or retrying), which whr serve runs\n",
		       argv[optind], r.open);
	else if (r.replayed == 0 && !dead && r.all_handlers)
		printf("nothing to replay: %s has no notifications\n",
		       argv[optind]);
	else if (r.replayed == 0 && !dead)
		printf("nothing to replay: every handler of %s is done "
		       "(--all-handlers runs them again)\n", argv[optind]);
	else
		printf("replayed %d notification(s); a running whr serve "
		       "takes them within a second%s\n", r.replayed,
		       r.open > 0 ? " (the ones still open were left to it)"
				  : "");
	return 0;
}

/* Deliveries purged per transaction: the server waits for the lock
 * (a few seconds at most, then it answers 503), so no transaction may
 * hold it long, however much there is to purge. */
#define PURGE_CLI_BATCH 500

/* One transaction purging up to PURGE_CLI_BATCH deliveries finished
 * before @p before: how many, or a negative errno (rolled back). */
static int
purge_batch(struct tool *t, int64_t before)
{
	int n = whr_store_begin(t->d.store);

	if (n == 0)
		n = whr_store_purge(t->d.store, before, PURGE_CLI_BATCH);
	if (n >= 0) {
		int rc = whr_store_commit(t->d.store);

		if (rc < 0)
			n = rc;
	}
	if (n < 0)
		whr_store_rollback(t->d.store);
	return n;
}

static int
cmd_purge(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	int64_t age = 0, before;
	bool given = false;
	int count = 0, n;
	int c, rc;

	while ((c = next_option(t, argc, argv, opts, &rc)) != -1) {
		if (c != 'o' || time_arg_parse_age(optarg, &age) < 0)
			return fail_usage("purge needs --older-than AGE, e.g. 30d");
		given = true;
	}
	if (rc != 0)
		return rc;
	if (!given || optind != argc)
		return fail_usage("purge needs --older-than AGE, e.g. 30d");
	before = time_arg_now_us() - age;
	rc = data_dir_open(&t->d, true);
	if (rc != 0)
		return rc;
	do {
		n = purge_batch(t, before);
		if (n < 0) {
			rc = data_dir_error(&t->d, n == -EBUSY
					    ? "cannot lock the inbox"
					    : "cannot purge");
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

/* ---- backup ------------------------------------------------------------ */

static int
cmd_backup(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'F' },
		COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	bool force = false;
	struct stat sb;
	const char *dest;
	int c, rc;

	while ((c = next_option(t, argc, argv, opts, &rc)) != -1) {
		if (c != 'F')
			return EXIT_USAGE;
		force = true;
	}
	if (rc != 0)
		return rc;
	if (optind + 1 != argc)
		return fail_usage("backup needs one DEST, the file to write");
	dest = argv[optind];
	rc = data_dir_open(&t->d, false);
	if (rc != 0)
		return rc;
	rc = whr_store_backup(t->d.store, dest, force);
	if (rc == -EEXIST) {
		fprintf(stderr, PROGRAM ": %s exists: give --force to replace "
			"it\n", dest);
		return 1;
	}
	if (rc < 0)
		return data_dir_error(&t->d, "cannot back up");
	if (stat(dest, &sb) < 0)
		sb.st_size = 0;
	if (t->json) {
		yajl_gen g = json_begin();

		if (g == NULL)
			return data_dir_error(&t->d, "out of memory");
		yajl_gen_map_open(g);
		json_text(g, "backup", dest);
		json_int(g, "bytes", sb.st_size);
		yajl_gen_map_close(g);
		json_end(g);
	} else
		printf("backed up %s to %s (%.1f MiB)\n", data_dir_name(&t->d),
		       dest, (double)sb.st_size / (1024.0 * 1024.0));
	return 0;
}

/* ---- stats ------------------------------------------------------------- */

static const char *const stats_titles[] = {
	"ACTION", "TOTAL", "PENDING", "RETRYING", "DEAD", "DONE", NULL,
};

static int
stats_action(const char *name, const struct store_counts *k, void *arg)
{
	const struct cell row[] = {
		{ "action", CELL_TEXT, .text = name, .none = "(no Action)" },
		{ "total", CELL_INT, .value = k->total },
		{ "pending", CELL_INT, .value = k->pending },
		{ "retrying", CELL_INT, .value = k->retrying },
		{ "dead", CELL_INT, .value = k->dead },
		{ "done", CELL_INT, .value = k->done },
	};

	return output_row(arg, row, sizeof(row) / sizeof(row[0]));
}

static void
stats_text(const struct tool *t, const struct store_stats *s)
{
	char first[ISO_TIME_SIZE], last[ISO_TIME_SIZE];
	char oldest[ISO_TIME_SIZE];

	iso_time(first, s->first_received);
	iso_time(last, s->last_received);
	iso_time(oldest, s->oldest_open);
	printf("inbox          %s (%.1f MiB)\n", data_dir_name(&t->d),
	       (double)s->bytes / (1024.0 * 1024.0));
	printf("deliveries     %lld (duplicates received: %lld)\n",
	       (long long)s->deliveries, (long long)s->duplicates);
	printf("received       %s .. %s\n", s->has_received ? first : "-",
	       s->has_received ? last : "-");
	printf("notifications  pending %lld, retrying %lld, dead %lld, done %lld\n",
	       (long long)s->notifications.pending,
	       (long long)s->notifications.retrying,
	       (long long)s->notifications.dead,
	       (long long)s->notifications.done);
	printf("oldest open    %s\n", s->has_oldest_open ? oldest : "-");
}

static void
stats_json_head(const struct tool *t, yajl_gen g, const struct store_stats *s)
{
	json_text(g, "inbox", data_dir_name(&t->d));
	json_int(g, "bytes", s->bytes);
	json_int(g, "deliveries", s->deliveries);
	json_int(g, "duplicates", s->duplicates);
	json_time(g, "first_received", s->has_received, s->first_received);
	json_time(g, "last_received", s->has_received, s->last_received);
	json_key(g, "notifications");
	yajl_gen_map_open(g);
	json_int(g, "pending", s->notifications.pending);
	json_int(g, "retrying", s->notifications.retrying);
	json_int(g, "dead", s->notifications.dead);
	json_int(g, "done", s->notifications.done);
	yajl_gen_map_close(g);
	json_time(g, "oldest_open", s->has_oldest_open, s->oldest_open);
}

static int
cmd_stats(struct tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct output o = { NULL, NULL };
	struct store_stats s;
	int rc;

	if (next_option(t, argc, argv, opts, &rc) != -1)
		return EXIT_USAGE;	/* stats has no options of its own */
	if (rc != 0)
		return rc;
	rc = open_to_read(t, argc, argv);
	if (rc != 0)
		return rc;
	/* The totals first, then the table or array by Action. */
	rc = whr_store_stats(t->d.store, &s, NULL, NULL);
	if (rc < 0)
		return data_dir_error(&t->d, "cannot count");
	if (!output_open(&o, t->json, stats_titles))
		return data_dir_error(&t->d, "cannot count: out of memory");
	if (o.json != NULL) {
		yajl_gen_map_open(o.json);
		stats_json_head(t, o.json, &s);
		json_key(o.json, "actions");
		yajl_gen_array_open(o.json);
	}
	rc = whr_store_stats(t->d.store, &s, stats_action, &o);
	if (o.json != NULL) {
		yajl_gen_array_close(o.json);
		yajl_gen_map_close(o.json);
	} else if (rc == 0) {
		stats_text(t, &s);
		printf("\n");
	}
	output_close(&o, rc == 0);
	return rc < 0 ? data_dir_error(&t->d, "cannot count") : 0;
}

/* ---- the command ------------------------------------------------------- */

int
cmd_inbox(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tool t = { .json = false };
	const char *sub;
	int c, rc;

	data_dir_init(&t.d, PROGRAM);
	/* Global options come before the subcommand ("+": stop there);
	 * optind 0 makes glibc's getopt start afresh. */
	optind = 0;
	while ((c = getopt_long(argc + 1, argv - 1, "+h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		rc = common_option(&t, c);
		if (rc != 0)
			return rc;
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
	else if (strcmp(sub, "backup") == 0)
		rc = cmd_backup(&t, argc, argv);
	else
		rc = fail_usage("unknown command '%s'", sub);
	data_dir_finish(&t.d);
	return rc;
}
