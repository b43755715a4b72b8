/*
 * The inbox database: schema and versions, storing deliveries and their
 * duplicates, work rows, outcomes and states, purging.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "test-common.h"

static char dir[64];
static char why[512];

static struct whr_store *
fresh_store(void)
{
	struct whr_store *s;

	test_folder_new(dir, sizeof(dir), "store");
	s = whr_store_open(dir, STORE_SERVER, why, sizeof(why));
	ck_assert_ptr_nonnull(s);
	return s;
}

static void
remove_store(struct whr_store *s)
{
	whr_store_close(s);
	test_folder_remove(dir);
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
	{
		sqlite3_stmt *st;

		ck_assert_int_eq(sqlite3_prepare_v2(whr_tx_native(whr_store_tx(s)),
			"SELECT duplicates, last_attempt FROM deliveries WHERE seq = 1",
			-1, &st, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
		ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
		ck_assert_int_eq(sqlite3_column_int(st, 1), 3);
		sqlite3_finalize(st);
	}

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
	ck_assert_str_eq(seen, "1:2:lc:c\x1fu1;2:1:d:1;3:2:lc:c\x1fu1;"
			       "4:1:d:2;5:2:lc:c\x1fu1;6:1:d:3;");

	/* The work window's reads: open rows above an id, in id order, at
	 * most so many; finished ones are skipped, and counted out. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_settle(s, 3, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 5, WORK_RETRYING, 9, "r", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(s, 1, 3, 0, collect, seen), 0);
	ck_assert_str_eq(seen, "2:1:d:1;4:1:d:2;5:2:lc:c\x1fu1;");
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
	sqlite3_stmt *st;

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
	ck_assert_int_eq(sqlite3_prepare_v2(whr_tx_native(whr_store_tx(s)),
		"SELECT (SELECT count(*) FROM outcomes) + (SELECT count(*) FROM"
		" notifications) + (SELECT count(*) FROM deliveries)", -1, &st,
		NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
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
	ck_assert_int_eq(sqlite3_exec(whr_tx_native(whr_store_tx(s)),
				      "PRAGMA user_version = 9", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_ptr_null(whr_store_open(dir, STORE_SERVER, why, sizeof(why)));
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_ptr_nonnull(strstr(why, "schema version 9, newer than this whr knows (2)"));
	ck_assert_ptr_null(whr_store_open(dir, STORE_WORKER, why, sizeof(why)));
	ck_assert_int_eq(errno, EPROTO);
	remove_store(s);

	/* No inbox at all: a reader says so. */
	ck_assert_ptr_null(whr_store_open("/nonexistent/whr", STORE_WORKER, why,
				      sizeof(why)));
	ck_assert_int_eq(errno, EIO);
	ck_assert_ptr_nonnull(strstr(why, "/nonexistent/whr/inbox.sqlite: cannot open"));
}
END_TEST

/* An inbox of version 1 (no retry_from) is brought to version 2 when the
 * server opens it, keeping its rows: their retries count from arrival. */
START_TEST(store_migrates_version_1)
{
	struct whr_store *s = fresh_store();
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

TEST_SUITE(store)
{
	ADD_TEST(s, "ingest_and_duplicates", store_ingest_and_duplicates);
	ADD_TEST(s, "outcomes_and_finish", store_outcomes_and_finish);
	ADD_TEST(s, "versions", store_versions);
	ADD_TEST(s, "migrates_version_1", store_migrates_version_1);
}
