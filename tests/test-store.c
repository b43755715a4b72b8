/*
 * The inbox database: schema and versions, storing deliveries and their
 * duplicates, work rows, outcomes and states, purging, inspecting; on
 * each backend (test-backends.h), and what only a shared store
 * (PostgreSQL) promises: several connections ingesting and claiming at
 * once, keys and leases, migrations and purges one at a time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/store.h"
#include "test-backends.h"
#include "util.h"

static char dir[2048];
static char why[8192];

static struct whr_store *
fresh_store_on(int backend)
{
	struct whr_store *s;

	snprintf(dir, sizeof(dir), "%s", test_store_location(backend));
	s = whr_store_open(dir, STORE_SERVER, why, sizeof(why));
	ck_assert_msg(s != NULL, "%s", why);
	return s;
}

#define fresh_store() fresh_store_on(_i)

static void
remove_store_on(int backend, struct whr_store *s)
{
	whr_store_close(s);
	test_store_remove(backend, dir);
}

#define remove_store(s) remove_store_on(_i, (s))

/* The one integer @p sql (SQLite's dialect) gives, through the handle. */
static int64_t
query_int(int backend, struct whr_store *s, const char *sql)
{
	struct whr_stmt *st = whr_tx_prepare(whr_store_tx(s),
					     test_sql(backend, sql));
	int64_t v;

	ck_assert_msg(st != NULL, "%s: %s", sql, whr_tx_error(whr_store_tx(s)));
	ck_assert_int_eq(whr_stmt_step(st), 1);
	v = whr_stmt_int(st, 0);
	ck_assert_int_eq(whr_stmt_run(st), 0);
	return v;
}

/* What differs by design: SQLite's claims hand out all open work (one
 * whr serve orders it in memory); a shared store's only what is
 * eligible, the oldest open work of each key. */
static const char *
by_db(int backend, const char *sqlite, const char *postgresql)
{
	return test_backend_db(backend) == WHR_DB_SQLITE ? sqlite : postgresql;
}

static const char body[] =
	"{\"Id\":\"d1\",\"Attempt\":1,\"Properties\":{\"p\":1},"
	"\"Notifications\":[{\"Action\":\"A\"},{\"Action\":\"B\"}]}";

static void
delivery(struct ingest_delivery *d, struct ingest_notification n[2],
	 const char *id, int64_t attempt)
{
	static char *keys[] = { (char *)"lc:c\x1fu1", (char *)"lc:c\x1fu2" };
	const char *a = strstr(body, "{\"Action\":\"A\"}");
	const char *b = strstr(body, "{\"Action\":\"B\"}");

	memset(n, 0, 2 * sizeof(*n));
	n[0] = (struct ingest_notification){
		.index = 0, .action = "A",
		.json_start = (size_t)(a - body),
		.json_end = (size_t)(a - body) + 14,
		.keys = keys, .n_keys = 2,
	};
	n[1] = (struct ingest_notification){
		.index = 1, .action = "B",
		.json_start = (size_t)(b - body),
		.json_end = (size_t)(b - body) + 14,
	};
	*d = (struct ingest_delivery){
		.receiver_id = "tenant",
		.delivery_id = id,
		.attempt = attempt,
		.received_at = 1,
		.headers_json = "[[\"Host\",\"x\"]]",
		.body = body,
		.body_len = strlen(body),
		.has_properties = true,
		.properties_start = (size_t)(strstr(body, "{\"p\"") - body),
		.properties_end = (size_t)(strstr(body, "{\"p\"") - body) + 7,
		.notifications = n,
		.n_notifications = 2,
	};
}

static int
collect(const struct store_claim *c, void *arg)
{
	char *seen = arg;
	char item[64];

	snprintf(item, sizeof(item), "%lld:%zu:%s;", (long long)c->id,
		 c->n_keys, c->keys[0]);
	strcat(seen, item);
	return 0;
}

/* collect(), stopping (without failing) after two. */
static int
collect_two(const struct store_claim *c, void *arg)
{
	char *seen = arg;

	if (strchr(seen, ';') != NULL && strchr(seen, ';') !=
	    strrchr(seen, ';'))
		return 1;
	return collect(c, arg);
}

START_TEST(store_ingest_and_duplicates)
{
	struct whr_store *s = fresh_store();
	struct ingest_delivery d;
	struct ingest_notification n[2];
	struct store_work *w = NULL;
	char seen[256] = "";

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "d1", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert(!d.duplicate);
	ck_assert_int_eq(d.seq, 1);
	ck_assert_int_eq(n[0].id, 1);
	ck_assert_int_eq(n[1].id, 2);
	/* Same receiver and Id, in the same transaction: a duplicate. */
	delivery(&d, n, "d1", 3);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert(d.duplicate);
	ck_assert_int_eq(d.seq, 1);
	/* Without an Id: never a duplicate. */
	delivery(&d, n, NULL, 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert(!d.duplicate);
	delivery(&d, n, NULL, 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert(!d.duplicate);
	ck_assert_int_eq(whr_store_commit(s), 0);

	/* The duplicate is counted on the original, with its Attempt. */
	ck_assert_int_eq(query_int(_i, s, "SELECT duplicates FROM deliveries"
				   " WHERE seq = 1"), 1);
	ck_assert_int_eq(query_int(_i, s, "SELECT last_attempt FROM deliveries"
				   " WHERE seq = 1"), 3);

	ck_assert_int_eq(whr_store_load(s, 1, &w), 0);
	ck_assert_str_eq(w->receiver_id, "tenant");
	ck_assert_str_eq(w->delivery_id, "d1");
	ck_assert_str_eq(w->action, "A");
	ck_assert_str_eq(w->json, "{\"Action\":\"A\"}");
	ck_assert_str_eq(w->properties, "{\"p\":1}");
	ck_assert_uint_eq(w->count, 2);
	ck_assert_uint_eq(w->n_keys, 2);
	ck_assert_str_eq(w->keys[1], "lc:c\x1fu2");
	ck_assert_int_eq(w->state, WORK_PENDING);
	store_work_free(w);
	/* A notification without keys is ordered within its delivery. */
	ck_assert_int_eq(whr_store_load(s, 2, &w), 0);
	ck_assert_uint_eq(w->n_keys, 1);
	ck_assert_str_eq(w->keys[0], "d:1");
	store_work_free(w);
	ck_assert_int_eq(whr_store_load(s, 99, &w), -ENOENT);

	ck_assert_int_eq(whr_store_claim(s, 0, -1, 0, collect, seen), 0);
	ck_assert_str_eq(seen, by_db(_i,
		"1:2:lc:c\x1fu1;2:1:d:1;3:2:lc:c\x1fu1;"
		"4:1:d:2;5:2:lc:c\x1fu1;6:1:d:3;",
		"1:2:lc:c\x1fu1;2:1:d:1;4:1:d:2;6:1:d:3;"));

	/* The work window's reads: open rows above an id, in id order, at
	 * most so many; finished ones are skipped, and counted out. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_settle(s, 3, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 5, WORK_RETRYING, 9, "r", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(s, 1, 3, 0, collect, seen), 0);
	ck_assert_str_eq(seen, by_db(_i, "2:1:d:1;4:1:d:2;5:2:lc:c\x1fu1;",
				     "2:1:d:1;4:1:d:2;6:1:d:3;"));
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(s, 5, 3, 0, collect, seen), 0);
	ck_assert_str_eq(seen, "6:1:d:3;");
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 0, collect_two, seen),
			 0);
	ck_assert_str_eq(seen, "1:2:lc:c\x1fu1;2:1:d:1;");
	ck_assert_int_eq(whr_store_count_open(s, 0), 5);
	ck_assert_int_eq(whr_store_count_open(s, 4), 2);
	ck_assert_int_eq(whr_store_count_open(s, 6), 0);
	remove_store(s);
}
END_TEST

START_TEST(store_outcomes_and_finish)
{
	struct whr_store *s = fresh_store();
	struct ingest_delivery d;
	struct ingest_notification n[2];
	struct store_work *w = NULL;

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "d1", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h1", WHR_DONE, NULL, 5), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h2", WHR_RETRY, "later", 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_RETRYING, 99, "h2: later", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	ck_assert_int_eq(whr_store_load(s, 1, &w), 0);
	ck_assert_int_eq(w->state, WORK_RETRYING);
	ck_assert_int_eq(w->runs, 1);
	ck_assert_int_eq(w->next_at, 99);
	ck_assert_uint_eq(w->n_outcomes, 2);
	store_work_free(w);

	/* The delivery is finished when its last notification is: purged
	 * only then, and once that is older than the limit. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h2", WHR_DONE, NULL, 6), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_DONE, 6, NULL, 6), 0);
	ck_assert_int_eq(whr_store_settle(s, 2, WORK_DEAD, 7, "h: no", 7), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_load(s, 1, &w), 0);
	ck_assert_int_eq(w->runs, 2);
	ck_assert_uint_eq(w->n_outcomes, 2);
	store_work_free(w);

	/* Purged once older than the limit, with its rows. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_purge(s, 7, 100), 0);
	ck_assert_int_eq(whr_store_purge(s, 8, 100), 1);
	ck_assert_int_eq(whr_store_purge(s, 8, 100), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_load(s, 1, &w), -ENOENT);
	ck_assert_int_eq(query_int(_i, s,
		"SELECT (SELECT count(*) FROM outcomes) + (SELECT count(*) FROM"
		" notifications) + (SELECT count(*) FROM deliveries)"), 0);
	if (test_backend_db(_i) == WHR_DB_POSTGRESQL)
		ck_assert_int_eq(query_int(_i, s, "SELECT count(*)"
					   " FROM notification_keys"), 0);
	remove_store(s);
}
END_TEST

START_TEST(store_versions)
{
	struct whr_store *s = fresh_store();
	struct whr_store *r;

	/* Readers and tools open it; a second server open is fine too. */
	r = whr_store_open(dir, STORE_WORKER, why, sizeof(why));
	ck_assert_ptr_nonnull(r);
	whr_store_close(r);
	r = whr_store_open(dir, STORE_SERVER, why, sizeof(why));
	ck_assert_ptr_nonnull(r);
	whr_store_close(r);
	/* A newer schema is refused, saying so. */
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s), by_db(_i,
		"PRAGMA user_version = 9",
		"UPDATE whr_meta SET value = 9 WHERE key IN"
		" ('schema_version', 'schema_compatible')")), 0);
	ck_assert_ptr_null(whr_store_open(dir, STORE_SERVER, why, sizeof(why)));
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_ptr_nonnull(strstr(why, by_db(_i,
		"schema version 9, newer than this whr knows (2)",
		"schema version 9, newer than this whr knows (1)")));
	ck_assert_ptr_null(whr_store_open(dir, STORE_WORKER, why, sizeof(why)));
	ck_assert_int_eq(errno, EPROTO);
	remove_store(s);

	/* No inbox at all: a reader says so. */
	if (test_backend_db(_i) == WHR_DB_SQLITE) {
		ck_assert_ptr_null(whr_store_open("/nonexistent/whr",
						  STORE_WORKER, why,
						  sizeof(why)));
		ck_assert_int_eq(errno, EIO);
		ck_assert_ptr_nonnull(strstr(why, "/nonexistent/whr/inbox.sqlite: cannot open"));
	} else {
		const char *empty = test_store_location(_i);

		ck_assert_ptr_null(whr_store_open(empty, STORE_WORKER, why,
						  sizeof(why)));
		ck_assert_int_eq(errno, ENOENT);
		ck_assert_ptr_nonnull(strstr(why, "no whr inbox in"));
		ck_assert_ptr_null(whr_store_open(empty, STORE_READER, why,
						  sizeof(why)));
		ck_assert_int_eq(errno, ENOENT);
		test_store_remove(_i, empty);
	}
}
END_TEST

/* A backup: a whole inbox in one file, 0600, never over a file unless
 * told to replace it. */
START_TEST(store_backup)
{
	struct whr_store *s = fresh_store_on(0);
	struct ingest_notification n[2];
	struct ingest_delivery d;
	struct store_stats st;
	struct whr_store *r;
	char copy_dir[sizeof(dir) + 8], dest[sizeof(dir) + 32];
	struct stat sb;

	delivery(&d, n, "d1", 1);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	snprintf(copy_dir, sizeof(copy_dir), "%s/copy", dir);
	ck_assert_int_eq(mkdir(copy_dir, 0700), 0);
	snprintf(dest, sizeof(dest), "%s/inbox.sqlite", copy_dir);
	ck_assert_int_eq(whr_store_backup(s, dest, false), 0);
	ck_assert_int_eq(stat(dest, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	r = whr_store_open(copy_dir, STORE_READER, why, sizeof(why));
	ck_assert_msg(r != NULL, "%s", why);
	ck_assert_int_eq(whr_store_stats(r, &st, NULL, NULL), 0);
	ck_assert_int_eq(st.deliveries, 1);
	ck_assert_int_eq(st.notifications.total, 2);
	whr_store_close(r);

	ck_assert_int_eq(whr_store_backup(s, dest, false), -EEXIST);
	ck_assert_ptr_nonnull(strstr(whr_store_error(s), "exists"));
	ck_assert_int_eq(whr_store_backup(s, dest, true), 0);
	ck_assert_int_eq(whr_store_backup(s, "/nonexistent/whr/x", true),
			 -ENOENT);
	remove_store_on(0, s);
}
END_TEST

/* An inbox of version 1 (no retry_from) is brought to version 2 when the
 * server opens it, keeping its rows: their retries count from arrival. */
START_TEST(store_migrates_version_1)
{
	struct whr_store *s = fresh_store_on(0);
	struct ingest_delivery d;
	struct ingest_notification n[2];
	struct store_work *w = NULL;
	sqlite3_stmt *st;

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "d1", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	/* What version 1 was: schema_v1 has not changed since. */
	ck_assert_int_eq(sqlite3_exec(whr_tx_native(whr_store_tx(s)),
		"ALTER TABLE notifications DROP COLUMN retry_from;"
		"PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	whr_store_close(s);

	/* A reader (a worker) waits for the server to migrate it. */
	ck_assert_ptr_null(whr_store_open(dir, STORE_WORKER, why, sizeof(why)));
	s = whr_store_open(dir, STORE_SERVER, why, sizeof(why));
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(sqlite3_prepare_v2(whr_tx_native(whr_store_tx(s)),
		"SELECT (SELECT user_version FROM pragma_user_version),"
		" (SELECT count(*) FROM pragma_table_info('notifications')"
		"  WHERE name = 'retry_from'),"
		" (SELECT count(*) FROM notifications)", -1, &st, NULL),
		SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 2);
	ck_assert_int_eq(sqlite3_column_int(st, 1), 1);
	ck_assert_int_eq(sqlite3_column_int(st, 2), 2);
	sqlite3_finalize(st);
	ck_assert_int_eq(whr_store_load(s, 1, &w), 0);
	ck_assert_int_eq(w->retry_from, 1);	/* received_at */
	store_work_free(w);

	/* A whr of version 1 on the same folder writes its number back (its
	 * probe did): readers still work, and the next start takes the
	 * step as made instead of failing on the column. */
	ck_assert_int_eq(sqlite3_exec(whr_tx_native(whr_store_tx(s)), "PRAGMA user_version = 1",
				      NULL, NULL, NULL), SQLITE_OK);
	whr_store_close(s);
	s = whr_store_open(dir, STORE_WORKER, why, sizeof(why));
	ck_assert_msg(s != NULL, "%s", why);
	whr_store_close(s);
	s = whr_store_open(dir, STORE_SERVER, why, sizeof(why));
	ck_assert_msg(s != NULL, "%s", why);
	/* Our own probe never lowers or raises the number. */
	ck_assert_int_eq(whr_store_probe(s), 0);
	ck_assert_int_eq(sqlite3_prepare_v2(whr_tx_native(whr_store_tx(s)),
		"SELECT user_version FROM pragma_user_version", -1, &st, NULL),
		SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 2);
	sqlite3_finalize(st);
	remove_store(s);
}
END_TEST

/* ---- inspecting (whr inbox), on every backend ---------------------------- */

static int
list_ids(const struct store_notification *n, void *arg)
{
	char *seen = arg;
	char item[96];

	snprintf(item, sizeof(item), "%lld:%s:%s;", (long long)n->id,
		 n->action != NULL ? n->action : "-", n->state);
	strcat(seen, item);
	return 0;
}

static int
show_delivery(const struct store_delivery *d, void *arg)
{
	char *seen = arg;
	char item[256];

	snprintf(item, sizeof(item), "seq %lld id %s dup %lld finished %d "
		 "body %zu;", (long long)d->seq, d->delivery_id,
		 (long long)d->duplicates, d->finished, d->body_len);
	ck_assert_str_eq(d->body, body);
	strcat(seen, item);
	return 0;
}

static int
show_notification(const struct store_notification *n,
		  const struct store_outcome_row *o, size_t n_outcomes,
		  void *arg)
{
	char *seen = arg;
	char item[128];
	size_t i;

	snprintf(item, sizeof(item), "%lld:%s", (long long)n->id, n->state);
	strcat(seen, item);
	for (i = 0; i < n_outcomes; i++) {
		snprintf(item, sizeof(item), " %s=%s", o[i].handler,
			 o[i].result);
		strcat(seen, item);
	}
	strcat(seen, ";");
	return 0;
}

static int
count_action(const char *name, const struct store_counts *c, void *arg)
{
	char *seen = arg;
	char item[96];

	snprintf(item, sizeof(item), "%s:%lld/%lld;", name != NULL ? name : "-",
		 (long long)c->total, (long long)c->dead);
	strcat(seen, item);
	return 0;
}

START_TEST(store_inspect)
{
	struct whr_store *s = fresh_store();
	struct whr_store *tool;
	struct ingest_delivery d;
	struct ingest_notification n[2];
	struct store_filter f = { .state = NULL };
	struct store_stats st;
	struct store_replay r = { .seq = 0 };
	char seen[1024] = "";
	int64_t seq = 0;
	int matches = 0;

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "d1", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	delivery(&d, n, "d2", 1);
	d.received_at = 50;
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	delivery(&d, n, "d1", 2);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h", WHR_DONE, NULL, 5),
			 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_DONE, 5, NULL, 5), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 2, "h", WHR_REJECT, "no",
						  5), 0);
	ck_assert_int_eq(whr_store_settle(s, 2, WORK_DEAD, 5, "h: no", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	tool = whr_store_open(dir, STORE_READER, why, sizeof(why));
	ck_assert_msg(tool != NULL, "%s", why);
	ck_assert_int_eq(whr_store_list(tool, &f, list_ids, seen), 0);
	ck_assert_str_eq(seen, "4:B:pending;3:A:pending;2:B:dead;1:A:done;");
	seen[0] = '\0';
	f.action = "b";
	f.has_since = true;
	f.since = 2;
	ck_assert_int_eq(whr_store_list(tool, &f, list_ids, seen), 0);
	ck_assert_str_eq(seen, "4:B:pending;");
	seen[0] = '\0';
	f = (struct store_filter){ .state = "dead", .limit = 1 };
	ck_assert_int_eq(whr_store_list(tool, &f, list_ids, seen), 0);
	ck_assert_str_eq(seen, "2:B:dead;");

	ck_assert_int_eq(whr_store_find(tool, "d2", 0, NULL, &matches, &seq),
			 0);
	ck_assert_int_eq(matches, 1);
	ck_assert_int_eq(seq, 2);
	ck_assert_int_eq(whr_store_find(tool, "d2", 0, "TENANT", &matches,
					&seq), 0);
	ck_assert_int_eq(matches, 1);
	ck_assert_int_eq(whr_store_find(tool, "d2", 0, "other", &matches,
					&seq), 0);
	ck_assert_int_eq(matches, 0);
	ck_assert_int_eq(whr_store_find(tool, NULL, 1, NULL, &matches, &seq),
			 0);
	ck_assert_int_eq(matches, 1);

	seen[0] = '\0';
	ck_assert_int_eq(whr_store_show(tool, 1, show_delivery,
					show_notification, seen), 0);
	ck_assert_str_eq(seen, "seq 1 id d1 dup 1 finished 1 body 92;"
			       "1:done h=done;2:dead h=reject;");
	ck_assert_int_eq(whr_store_show(tool, 9, show_delivery,
					show_notification, seen), -ENOENT);

	seen[0] = '\0';
	ck_assert_int_eq(whr_store_stats(tool, &st, count_action, seen), 0);
	ck_assert_int_eq(st.deliveries, 2);
	ck_assert_int_eq(st.duplicates, 1);
	ck_assert_int_eq(st.notifications.total, 4);
	ck_assert_int_eq(st.notifications.pending, 2);
	ck_assert_int_eq(st.notifications.done, 1);
	ck_assert_int_eq(st.notifications.dead, 1);
	ck_assert(st.has_oldest_open);
	ck_assert_int_eq(st.oldest_open, 50);
	ck_assert_int_eq(st.first_received, 1);
	ck_assert_int_eq(st.last_received, 50);
	ck_assert_int_gt(st.bytes, 0);
	ck_assert(strcmp(seen, "A:2/0;B:2/1;") == 0 ||
		  strcmp(seen, "B:2/1;A:2/0;") == 0);
	whr_store_close(tool);

	/* Replay: the dead notification again, its failed outcome
	 * forgotten. */
	tool = whr_store_open(dir, STORE_WRITER, why, sizeof(why));
	ck_assert_msg(tool != NULL, "%s", why);
	r.now = 70;
	ck_assert_int_eq(whr_store_replay(tool, &r), 0);
	ck_assert_int_eq(r.replayed, 1);
	r = (struct store_replay){ .seq = 1, .all_handlers = true, .now = 80 };
	ck_assert_int_eq(whr_store_replay(tool, &r), 0);
	ck_assert_int_eq(r.replayed, 1);
	ck_assert_int_eq(r.open, 1);
	whr_store_close(tool);
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM notifications"
				   " WHERE state = 'pending'"), 4);
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM outcomes"), 0);
	ck_assert_int_eq(query_int(_i, s, "SELECT retry_from FROM notifications"
				   " WHERE id = 1"), 80);
	remove_store(s);
}
END_TEST

/* Another connection's replay changes the data version the server
 * watches; its own work does not need to. */
START_TEST(store_data_version)
{
	struct whr_store *s = fresh_store();
	struct whr_store *tool;
	struct ingest_delivery d;
	struct ingest_notification n[2];
	struct store_replay r = { .seq = 0, .now = 9 };
	int64_t before;

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "d1", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_DEAD, 5, "x", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	before = whr_store_data_version(s);
	ck_assert_int_ge(before, 0);
	tool = whr_store_open(dir, STORE_WRITER, why, sizeof(why));
	ck_assert_msg(tool != NULL, "%s", why);
	ck_assert_int_eq(whr_store_replay(tool, &r), 0);
	ck_assert_int_eq(r.replayed, 1);
	whr_store_close(tool);
	ck_assert_int_ne(whr_store_data_version(s), before);
	remove_store(s);
}
END_TEST

/* Which locations are databases, and that a database's password never
 * shows in a message (no server needed). */
START_TEST(store_database_location)
{
	struct whr_store *s;

	ck_assert(whr_store_location_is_database("postgresql://h/db"));
	ck_assert(whr_store_location_is_database("postgres://h/db"));
	ck_assert(whr_store_location_is_database("host=h dbname=db"));
	ck_assert(whr_store_location_is_database("dbname=db"));
	ck_assert(!whr_store_location_is_database("./whr-data"));
	ck_assert(!whr_store_location_is_database("/var/lib/whr"));
	ck_assert(!whr_store_location_is_database("postgresql"));

	/* Nobody listens on port 1: it cannot connect, and says where
	 * without the password. */
	s = whr_store_open("postgresql://whr:s3cr3t-pw@127.0.0.1:1/inbox",
			   STORE_SERVER, why, sizeof(why));
	ck_assert_ptr_null(s);
	ck_assert_int_eq(errno, EIO);
	ck_assert_ptr_nonnull(strstr(why, "postgresql://whr@127.0.0.1:1/inbox"));
	ck_assert_ptr_nonnull(strstr(why, "cannot connect"));
	ck_assert_ptr_null(strstr(why, "s3cr3t"));
	s = whr_store_open("host=127.0.0.1 port=1 password=s3cr3t-pw",
			   STORE_READER, why, sizeof(why));
	ck_assert_ptr_null(s);
	ck_assert_ptr_null(strstr(why, "s3cr3t"));
	/* A location libpq cannot read: its message (which may quote the
	 * password) is not passed on. */
	s = whr_store_open("postgresql://whr:s3cr3t%zz@127.0.0.1/inbox",
			   STORE_READER, why, sizeof(why));
	ck_assert_ptr_null(s);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(strstr(why, "s3cr3t"));
	ck_assert_ptr_nonnull(strstr(why, "cannot read the database location"));
}
END_TEST

/* ---- what a shared store promises (PostgreSQL only) --------------------- */

struct ingester {
	const char *location;
	bool done;
	int rc;
	bool duplicate;
	pthread_t thread;
};

static void *
ingest_thread(void *arg)
{
	struct ingester *g = arg;
	struct whr_store *s = whr_store_open(g->location, STORE_SERVER, NULL,
					     0);
	struct ingest_delivery d;
	struct ingest_notification n[2];

	g->rc = -EIO;
	if (s != NULL) {
		delivery(&d, n, "same", 2);
		g->rc = whr_store_begin(s);
		if (g->rc == 0)
			g->rc = whr_store_ingest(s, &d);
		if (g->rc == 0)
			g->rc = whr_store_commit(s);
		g->duplicate = d.duplicate;
		whr_store_close(s);
	}
	__atomic_store_n(&g->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Two replicas store the same delivery at the same moment: the second
 * insert waits for the first's commit, and counts a duplicate; both
 * succeed (both answer 200), and it is stored once. */
START_TEST(store_concurrent_ingest)
{
	struct whr_store *s = fresh_store();
	struct ingester other = { .location = dir };
	struct ingest_delivery d;
	struct ingest_notification n[2];
	int i;

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "same", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert(!d.duplicate);
	ck_assert_int_eq(pthread_create(&other.thread, NULL, ingest_thread,
					&other), 0);
	/* The other one is waiting on our row (or has not got there). */
	for (i = 0; i < 30; i++) {
		usleep(10000);
		ck_assert(!__atomic_load_n(&other.done, __ATOMIC_SEQ_CST));
	}
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(pthread_join(other.thread, NULL), 0);
	ck_assert_int_eq(other.rc, 0);
	ck_assert(other.duplicate);
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM deliveries"), 1);
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM notifications"),
			 2);
	ck_assert_int_eq(query_int(_i, s, "SELECT duplicates FROM deliveries"),
			 1);
	ck_assert_int_eq(query_int(_i, s, "SELECT last_attempt FROM deliveries"),
			 2);
	remove_store(s);
}
END_TEST

#define CLAIM_WORK 300

struct claimer {
	const char *location;
	int64_t ids[CLAIM_WORK];
	size_t n;
	int rc;
	pthread_t thread;
};

static int
claim_one(const struct store_claim *c, void *arg)
{
	struct claimer *k = arg;

	ck_assert_uint_lt(k->n, CLAIM_WORK);
	k->ids[k->n++] = c->id;
	return 0;
}

static void *
claim_thread(void *arg)
{
	struct claimer *k = arg;
	struct whr_store *s = whr_store_open(k->location, STORE_SERVER, NULL,
					     0);
	size_t before;

	k->rc = s != NULL ? 0 : -EIO;
	do {
		before = k->n;
		if (k->rc == 0)
			k->rc = whr_store_claim(s, 0, 7, 60 * 1000000LL,
						claim_one, k);
	} while (k->rc == 0 && k->n > before);
	whr_store_close(s);
	return NULL;
}

/* Two replicas claiming at once never get the same work, and between
 * them get all of it. */
START_TEST(store_concurrent_claims)
{
	struct whr_store *s = fresh_store();
	static struct claimer k[2];
	static char *keys[CLAIM_WORK];
	static char key_text[CLAIM_WORK][16];
	static struct ingest_notification many[CLAIM_WORK];
	struct ingest_delivery d;
	struct ingest_notification n[2];
	char seen[CLAIM_WORK + 1] = { 0 };
	size_t i, j;

	/* One delivery of many notifications, each a key of its own. */
	delivery(&d, n, "many", 1);
	for (i = 0; i < CLAIM_WORK; i++) {
		snprintf(key_text[i], sizeof(key_text[i]), "k%zu", i);
		keys[i] = key_text[i];
		many[i] = n[0];
		many[i].index = i;
		many[i].keys = &keys[i];
		many[i].n_keys = 1;
	}
	d.notifications = many;
	d.n_notifications = CLAIM_WORK;
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	for (i = 0; i < 2; i++) {
		memset(&k[i], 0, sizeof(k[i]));
		k[i].location = dir;
		ck_assert_int_eq(pthread_create(&k[i].thread, NULL,
						claim_thread, &k[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(k[i].thread, NULL), 0);
		ck_assert_int_eq(k[i].rc, 0);
		for (j = 0; j < k[i].n; j++) {
			ck_assert_int_ge(k[i].ids[j], 1);
			ck_assert_int_le(k[i].ids[j], CLAIM_WORK);
			ck_assert_msg(!seen[k[i].ids[j]],
				      "work %lld claimed twice",
				      (long long)k[i].ids[j]);
			seen[k[i].ids[j]] = 1;
		}
	}
	ck_assert_uint_eq(k[0].n + k[1].n, CLAIM_WORK);
	remove_store(s);
}
END_TEST

static int
collect_ids(const struct store_claim *c, void *arg)
{
	char *seen = arg;
	char item[32];

	snprintf(item, sizeof(item), "%lld;", (long long)c->id);
	strcat(seen, item);
	return 0;
}

/* What a claim hands out: the oldest open work of each key (retrying
 * work too keeps younger work of its keys waiting), when it is due and
 * not leased. */
START_TEST(store_claim_eligible)
{
	struct whr_store *s = fresh_store();
	struct ingest_delivery d;
	struct ingest_notification n[2];
	char seen[256] = "";
	int64_t now = 1700000000000000LL;

	/* 1 (u1, u2), 2 (d:1); 3 (u1, u2), 4 (d:2) */
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	delivery(&d, n, "b", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "1;2;4;");
	/* Leased: not again. */
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "");

	/* 1 retries later: still open, so 3 (its keys) waits; and 1 is
	 * not due. Settling cleared its lease. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_RETRYING, now * 2, "r",
					  5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "");
	/* Due now: 1 again, never 3. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_RETRYING, 0, "r", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "1;");
	/* 1 done: 3 is the oldest open of its keys now. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "3;");
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM notifications"
				   " WHERE lease_owner IS NOT NULL"), 3);
	remove_store(s);
}
END_TEST

/* A stopped claim leases only what its caller took. */
static int
take_one(const struct store_claim *c, void *arg)
{
	int *taken = arg;

	return (*taken)++ == 0 ? 0 : 1;
}

/* A lease that ran out is taken over by the next claim; a renewed one
 * is not; settling ends it. */
START_TEST(store_lease_takeover)
{
	struct whr_store *s = fresh_store();
	struct whr_store *other = whr_store_open(dir, STORE_SERVER, why,
						 sizeof(why));
	struct ingest_delivery d;
	struct ingest_notification n[2];
	const int64_t held[] = { 1 };
	char seen[256] = "";
	int taken = 0;

	ck_assert_ptr_nonnull(other);
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	ck_assert_int_eq(whr_store_claim(s, 0, -1, 200000, take_one, &taken),
			 0);
	ck_assert_int_eq(taken, 2);
	/* 2 was given back; 1 is leased. */
	ck_assert_int_eq(whr_store_claim(other, 0, -1, 60000000, collect_ids,
					 seen), 0);
	ck_assert_str_eq(seen, "2;");
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_begin(other), 0);
	ck_assert_int_eq(whr_store_settle(other, 2, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_commit(other), 0);
	ck_assert_int_eq(whr_store_renew(s, held, 1, 200000), 1);
	usleep(100000);
	ck_assert_int_eq(whr_store_renew(s, held, 1, 200000), 1);
	usleep(100000);
	ck_assert_int_eq(whr_store_claim(other, 0, -1, 60000000, collect_ids,
					 seen), 0);
	ck_assert_str_eq(seen, "");
	/* Its owner died: once the lease ran out, another takes it. */
	usleep(250000);
	ck_assert_int_eq(whr_store_claim(other, 0, -1, 60000000, collect_ids,
					 seen), 0);
	ck_assert_str_eq(seen, "1;");
	ck_assert_int_eq(whr_store_begin(other), 0);
	ck_assert_int_eq(whr_store_settle(other, 1, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_commit(other), 0);
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM notifications"
				   " WHERE id = 1 AND lease_owner IS NULL"
				   " AND lease_until IS NULL"), 1);
	whr_store_close(other);
	remove_store(s);
}
END_TEST

struct opener {
	const char *location;
	pthread_barrier_t *start;
	bool opened;
	pthread_t thread;
};

static void *
open_thread(void *arg)
{
	struct opener *o = arg;
	char err[1024];
	struct whr_store *s;

	pthread_barrier_wait(o->start);
	s = whr_store_open(o->location, STORE_SERVER, err, sizeof(err));
	o->opened = s != NULL;
	whr_store_close(s);
	return NULL;
}

/* Replicas starting at the same moment on an empty database: the
 * migration runs once, and every one of them opens. */
START_TEST(store_migrations_once)
{
	const char *location = test_store_location(_i);
	pthread_barrier_t start;
	struct opener o[3];
	const char *log;
	const char *p;
	int created = 0;
	size_t i;

	snprintf(dir, sizeof(dir), "%s", location);
	test_log_clear();
	pthread_barrier_init(&start, NULL, ARRAY_LENGTH(o));
	for (i = 0; i < ARRAY_LENGTH(o); i++) {
		o[i] = (struct opener){ .location = dir, .start = &start };
		ck_assert_int_eq(pthread_create(&o[i].thread, NULL, open_thread,
						&o[i]), 0);
	}
	for (i = 0; i < ARRAY_LENGTH(o); i++) {
		ck_assert_int_eq(pthread_join(o[i].thread, NULL), 0);
		ck_assert(o[i].opened);
	}
	pthread_barrier_destroy(&start);
	log = test_log_text();
	for (p = log; (p = strstr(p, "created inbox")) != NULL; p++)
		created++;
	ck_assert_msg(created == 1, "%s", log);
	test_store_remove(_i, dir);
}
END_TEST

/* One replica purges at a time: another's purge meanwhile finds
 * nothing, at once. */
START_TEST(store_purge_one_at_a_time)
{
	struct whr_store *s = fresh_store();
	struct whr_store *other = whr_store_open(dir, STORE_SERVER, why,
						 sizeof(why));
	struct ingest_delivery d;
	struct ingest_notification n[2];

	ck_assert_ptr_nonnull(other);
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	delivery(&d, n, "b", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 2, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 3, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 4, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_purge(s, 100, 1), 1);
	ck_assert_int_eq(whr_store_begin(other), 0);
	ck_assert_int_eq(whr_store_purge(other, 100, 10), 0);
	whr_store_rollback(other);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_begin(other), 0);
	ck_assert_int_eq(whr_store_purge(other, 100, 10), 1);
	ck_assert_int_eq(whr_store_commit(other), 0);
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM deliveries"), 0);
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM"
				   " notification_keys"), 0);
	whr_store_close(other);
	remove_store(s);
}
END_TEST

/* A whr one version older runs on a schema whose migration kept what it
 * uses (replicas upgraded one at a time); a server open never lowers
 * the version. */
START_TEST(store_runs_on_compatible_schema)
{
	struct whr_store *s = fresh_store();
	struct whr_store *r;

	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s),
		"UPDATE whr_meta SET value = CASE key WHEN 'schema_version'"
		" THEN 2 ELSE 1 END WHERE key IN ('schema_version',"
		" 'schema_compatible')"), 0);
	r = whr_store_open(dir, STORE_SERVER, why, sizeof(why));
	ck_assert_msg(r != NULL, "%s", why);
	whr_store_close(r);
	r = whr_store_open(dir, STORE_WORKER, why, sizeof(why));
	ck_assert_msg(r != NULL, "%s", why);
	whr_store_close(r);
	ck_assert_int_eq(query_int(_i, s, "SELECT value FROM whr_meta"
				   " WHERE key = 'schema_version'"), 2);
	remove_store(s);
}
END_TEST

static const char *
setting(int backend, struct whr_store *s, const char *name)
{
	static char value[64];
	struct whr_stmt *st = whr_tx_prepare(whr_store_tx(s),
		test_sql(backend, "SELECT current_setting(?1)"));

	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(whr_stmt_bind_text(st, 1, name), 0);
	ck_assert_int_eq(whr_stmt_step(st), 1);
	snprintf(value, sizeof(value), "%s", whr_stmt_text(st, 0));
	ck_assert_int_eq(whr_stmt_run(st), 0);
	return value;
}

/* Batches nobody is answered for commit without waiting for the disk;
 * the others, and the probe, wait. */
START_TEST(store_sync_commits)
{
	struct whr_store *s = fresh_store();

	ck_assert_int_eq(whr_store_sync_commits(s, false), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_str_eq(setting(_i, s, "synchronous_commit"), "off");
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_str_eq(setting(_i, s, "synchronous_commit"), "on");
	ck_assert_int_eq(whr_store_sync_commits(s, true), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_str_eq(setting(_i, s, "synchronous_commit"), "on");
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_sync_commits(s, false), 0);
	ck_assert_int_eq(whr_store_probe(s), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_str_eq(setting(_i, s, "synchronous_commit"), "on");
	whr_store_rollback(s);
	remove_store(s);
}
END_TEST


/* A claim is checked before a run is written: this process's while no
 * other process claimed it, also after its lease ran out (and renewing
 * extends it again); another's once another claimed it, and locked for
 * the transaction that checked it. */
START_TEST(store_own_claims)
{
	struct whr_store *s = fresh_store();
	struct whr_store *other = whr_store_open(dir, STORE_SERVER, why,
						 sizeof(why));
	struct ingest_delivery d;
	struct ingest_notification n[2];
	char seen[256] = "";

	ck_assert_ptr_nonnull(other);
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 100000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "1;2;");
	usleep(150000);
	/* Ran out, nobody took it: still ours, renewed. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_own(s, 1), 0);
	whr_store_rollback(s);
	ck_assert_int_eq(whr_store_renew(s, NULL, 0, 60000000), 2);
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(other, 0, -1, 60000000, collect_ids,
					 seen), 0);
	ck_assert_str_eq(seen, "");
	/* Ran out again and claimed by another replica (this process's
	 * stores all claim as one: another process's claim, by hand). */
	ck_assert_int_eq(whr_store_renew(s, NULL, 0, 0), 2);
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(other),
		"UPDATE notifications SET lease_owner = 'elsewhere:1:2',"
		" lease_until = 9000000000000000 WHERE id = 1"), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_own(s, 1), -ESTALE);
	ck_assert_int_eq(whr_store_own(s, 2), 0);
	/* Checked, it stays ours until the commit: no claim takes it. */
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(other, 0, -1, 60000000, collect_ids,
					 seen), 0);
	ck_assert_str_eq(seen, "");
	ck_assert_int_eq(whr_store_settle(s, 2, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	/* Settled: not open, so not ours either. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_own(s, 2), -ESTALE);
	whr_store_rollback(s);
	whr_store_close(other);
	remove_store(s);
}
END_TEST

static void
count_wake(void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static bool
wait_wakes(int *wakes, int at_least)
{
	int i;

	for (i = 0; i < 300; i++) {
		if (__atomic_load_n(wakes, __ATOMIC_SEQ_CST) >= at_least)
			return true;
		usleep(10000);
	}
	return false;
}

/* A commit that stores work or finishes it tells the other replicas
 * (NOTIFY, its payload this process); the listener wakes for others'
 * notifications, not for this process's own. */
START_TEST(store_notify_and_listen)
{
	struct whr_store *s = fresh_store();
	const char *url = getenv("WHR_TEST_POSTGRES");
	PGconn *watcher = PQconnectdb(url);
	struct ingest_delivery d;
	struct ingest_notification n[2];
	PGnotify *note;
	int wakes = 0;
	int before;

	ck_assert_int_eq(PQstatus(watcher), CONNECTION_OK);
	PQclear(PQexec(watcher, "LISTEN whr_work"));
	ck_assert_int_eq(whr_store_listen(s, count_wake, &wakes), 0);
	/* Once as it connects: what was said before is not known. */
	ck_assert(wait_wakes(&wakes, 1));

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	usleep(100000);
	ck_assert_int_eq(PQconsumeInput(watcher), 1);
	note = PQnotifies(watcher);
	ck_assert_ptr_nonnull(note);
	ck_assert_ptr_nonnull(strchr(note->extra, ':'));
	PQfreemem(note);
	/* Its own: no wake. A duplicate, or a retry: no notification. */
	before = __atomic_load_n(&wakes, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert(d.duplicate);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_RETRYING, 0, "r", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	usleep(100000);
	ck_assert_int_eq(PQconsumeInput(watcher), 1);
	ck_assert_ptr_null(PQnotifies(watcher));
	ck_assert_int_eq(__atomic_load_n(&wakes, __ATOMIC_SEQ_CST), before);
	/* Another's: a wake. */
	PQclear(PQexec(watcher, "NOTIFY whr_work, 'elsewhere:1:2'"));
	ck_assert(wait_wakes(&wakes, before + 1));
	PQfinish(watcher);
	remove_store(s);
}
END_TEST

/* The gauges a shared store's replicas read every second. */
START_TEST(store_gauges)
{
	struct whr_store *s = fresh_store();
	struct store_gauges g = { -1, -1 };
	struct ingest_delivery d;
	struct ingest_notification n[2];

	ck_assert_int_eq(whr_store_gauges(s, &g), 0);
	ck_assert_int_eq(g.open, 0);
	ck_assert_int_eq(g.oldest_open_at, 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	d.received_at = 1000;
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	delivery(&d, n, "b", 1);
	d.received_at = 2000;
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 2, WORK_DEAD, 0, "no", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_gauges(s, &g), 0);
	ck_assert_int_eq(g.open, 2);
	ck_assert_int_eq(g.oldest_open_at, 2000);
	remove_store(s);
}
END_TEST

struct locker {
	const char *location;
	int rc;
	pthread_t thread;
};

/* Lock row b, then (after the test's handler waits on b) row a. */
static void *
lock_thread(void *arg)
{
	struct locker *k = arg;
	struct whr_store *s = whr_store_open(k->location, STORE_SERVER, NULL,
					     0);
	struct whr_tx *tx;

	k->rc = -EIO;
	if (s == NULL)
		return NULL;
	tx = whr_store_tx(s);
	if (whr_store_begin(s) == 0 &&
	    whr_tx_exec(tx, "UPDATE t SET n = n + 1 WHERE k = 'b'") == 0) {
		usleep(300000);
		k->rc = whr_tx_exec(tx, "UPDATE t SET n = n + 1 WHERE k = 'a'");
		if (k->rc == 0)
			k->rc = whr_store_commit(s);
	}
	whr_store_rollback(s);
	whr_store_close(s);
	return NULL;
}

/* A handler's statement that the database breaks off for a deadlock
 * with another replica ends its batch (-EDEADLK, tried again at once),
 * not with a retry of the handler seconds later. */
START_TEST(store_handler_deadlock)
{
	struct whr_store *s = fresh_store();
	struct whr_tx *tx = whr_store_tx(s);
	struct locker other = { .location = dir };
	int rc;

	ck_assert_int_eq(whr_tx_exec(tx, "CREATE TABLE t (k TEXT PRIMARY KEY,"
				     " n INTEGER); INSERT INTO t VALUES"
				     " ('a', 0), ('b', 0)"), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_tx_exec(tx, "UPDATE t SET n = n + 1"
				     " WHERE k = 'a'"), 0);
	ck_assert_int_eq(pthread_create(&other.thread, NULL, lock_thread,
					&other), 0);
	usleep(100000);
	ck_assert_int_eq(whr_store_handler_begin(s), 0);
	rc = whr_tx_exec(tx, "UPDATE t SET n = n + 1 WHERE k = 'b'");
	if (rc == -EDEADLK) {
		ck_assert_int_eq(whr_store_handler_end(s, "h", true), -EDEADLK);
		ck_assert_ptr_nonnull(strstr(whr_store_error(s), "handler h:"));
		whr_store_rollback(s);
		ck_assert_int_eq(pthread_join(other.thread, NULL), 0);
		ck_assert_int_eq(other.rc, 0);
	} else {
		/* The other one was chosen: ours went through. */
		ck_assert_int_eq(rc, 0);
		ck_assert_int_eq(whr_store_handler_end(s, "h", true), 0);
		ck_assert_int_eq(whr_store_commit(s), 0);
		ck_assert_int_eq(pthread_join(other.thread, NULL), 0);
		ck_assert_int_eq(other.rc, -EDEADLK);
	}
	remove_store(s);
}
END_TEST

/* A run whose lease ran out, and that another replica claimed and
 * finished meanwhile, writes nothing when it ends late: the finished
 * notification is not opened again (without its keys), nor its
 * outcomes overwritten. */
START_TEST(store_late_run_after_takeover)
{
	struct whr_store *s = fresh_store();
	struct ingest_delivery d;
	struct ingest_notification n[2];
	char seen[256] = "";

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "1;2;");
	/* Another replica took 1 over and settled it done (by hand: this
	 * process's stores all claim as one). */
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s),
		"INSERT INTO outcomes VALUES (1, 'h', 'done', 1, NULL, 7);"
		" UPDATE notifications SET state = 'done', runs = 1,"
		" lease_owner = NULL, lease_until = NULL WHERE id = 1;"
		" DELETE FROM notification_keys WHERE notification_id = 1"), 0);
	/* This replica's run of 1 ends now, asking for a retry. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h", WHR_RETRY,
						  "late", 9), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_RETRYING, 0, "late", 9),
			 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM notifications"
				   " WHERE id = 1 AND state = 'done'"
				   " AND runs = 1"), 1);
	ck_assert_int_eq(query_int(_i, s, "SELECT count(*) FROM outcomes"
				   " WHERE notification_id = 1"
				   " AND result = 'done' AND runs = 1"), 1);
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_renew(s, NULL, 0, 0), 1);
	usleep(1000);
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "2;");
	remove_store(s);
}
END_TEST

/* Two replicas storing work of one key at once: the younger commits
 * first and is claimed; the older, committed after, must not run while
 * the younger is leased (never two of a key at the same time). */
START_TEST(store_key_never_twice_at_once)
{
	struct whr_store *s = fresh_store();
	struct whr_store *other = whr_store_open(dir, STORE_SERVER, why,
						 sizeof(why));
	struct ingest_delivery d;
	struct ingest_notification n[2];
	char seen[256] = "";

	ck_assert_ptr_nonnull(other);
	/* s takes ids 1 and 2, other 3 and 4; other commits first. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_begin(other), 0);
	delivery(&d, n, "b", 1);
	ck_assert_int_eq(whr_store_ingest(other, &d), 0);
	ck_assert_int_eq(n[0].id, 3);
	ck_assert_int_eq(whr_store_commit(other), 0);
	ck_assert_int_eq(whr_store_claim(other, 0, -1, 60000000, collect_ids,
					 seen), 0);
	ck_assert_str_eq(seen, "3;4;");
	ck_assert_int_eq(whr_store_commit(s), 0);
	/* 3 runs (leased): 1 shares its keys and waits; 2 does not. */
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "2;");
	/* 3 finished: 1 is the oldest open of its keys, and free. */
	ck_assert_int_eq(whr_store_begin(other), 0);
	ck_assert_int_eq(whr_store_settle(other, 3, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_commit(other), 0);
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, collect_ids, seen),
			 0);
	ck_assert_str_eq(seen, "1;");
	whr_store_close(other);
	remove_store(s);
}
END_TEST

TEST_SUITE(store)
{
	ADD_BACKEND_TEST(s, "ingest_and_duplicates", store_ingest_and_duplicates);
	ADD_BACKEND_TEST(s, "outcomes_and_finish", store_outcomes_and_finish);
	ADD_BACKEND_TEST(s, "versions", store_versions);
	ADD_BACKEND_TEST(s, "inspect", store_inspect);
	ADD_BACKEND_TEST(s, "data_version", store_data_version);
	ADD_BACKEND_TEST(s, "gauges", store_gauges);
	if (!test_backend_postgresql()) {
		ADD_TEST(s, "migrates_version_1", store_migrates_version_1);
		ADD_TEST(s, "database_location", store_database_location);
		ADD_TEST(s, "backup", store_backup);
		return;
	}
	ADD_BACKEND_TEST(s, "concurrent_ingest", store_concurrent_ingest);
	ADD_BACKEND_TEST(s, "concurrent_claims", store_concurrent_claims);
	ADD_BACKEND_TEST(s, "claim_eligible", store_claim_eligible);
	ADD_BACKEND_TEST(s, "lease_takeover", store_lease_takeover);
	ADD_BACKEND_TEST(s, "migrations_once", store_migrations_once);
	ADD_BACKEND_TEST(s, "purge_one_at_a_time", store_purge_one_at_a_time);
	ADD_BACKEND_TEST(s, "runs_on_compatible_schema",
			 store_runs_on_compatible_schema);
	ADD_BACKEND_TEST(s, "sync_commits", store_sync_commits);
	ADD_BACKEND_TEST(s, "own_claims", store_own_claims);
	ADD_BACKEND_TEST(s, "notify_and_listen", store_notify_and_listen);
	ADD_BACKEND_TEST(s, "handler_deadlock", store_handler_deadlock);
	ADD_BACKEND_TEST(s, "late_run_after_takeover",
			 store_late_run_after_takeover);
	ADD_BACKEND_TEST(s, "key_never_twice_at_once",
			 store_key_never_twice_at_once);
}
