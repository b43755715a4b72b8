/*
 * The inbox database: schema and versions, storing deliveries and their
 * duplicates, work rows, outcomes and states, purging, inspecting; on
 * each backend (test-backends.h), and what only a shared store
 * (PostgreSQL) promises: several connections ingesting and claiming at
 * once, keys and leases, migrations and purges one at a time.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store/store.h"
#include "test-backends.h"
#include "util.h"

static char why[8192];

/* The one integer @p sql (SQLite's dialect) gives, through the handle. */
static int64_t
query_int(struct whr_store *s, const char *sql)
{
	return test_query_int(whr_store_tx(s), sql);
}

/* Another connection to the test's store, as @p mode opens it (a
 * server's: another replica). */
static struct whr_store *
open_again(enum store_mode mode)
{
	struct whr_store *other = whr_store_open(test_store_fresh_location(),
						 mode, why, sizeof(why));

	ck_assert_msg(other != NULL, "%s", why);
	return other;
}

/* What the inspecting and claiming callbacks saw, one item after another
 * (the items end in ';'). */
#define SEEN_SIZE 1024

static int
seen_add(char *seen, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
seen_add(char *seen, const char *fmt, ...)
{
	size_t len = strlen(seen);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(seen + len, SEEN_SIZE - len, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < SEEN_SIZE - len, "seen: full");
	return 0;
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

/* Another body: other bytes at other offsets, to tell the bodies of
 * one statement apart. */
static const char body_other[] =
	"{\"Id\":\"x\",\"Properties\":{\"q\":22},\"Attempt\":1,"
	"\"Notifications\":[{\"Action\":\"C\"},{\"Action\":\"D\"}]}";

/* delivery(), with body_other and its actions C and D. */
static void
delivery_other(struct ingest_delivery *d, struct ingest_notification n[2],
	       const char *id)
{
	const char *c = strstr(body_other, "{\"Action\":\"C\"}");
	const char *e = strstr(body_other, "{\"Action\":\"D\"}");
	const char *p = strstr(body_other, "{\"q\"");

	delivery(d, n, id, 1);
	d->body = body_other;
	d->body_len = strlen(body_other);
	d->properties_start = (size_t)(p - body_other);
	d->properties_end = d->properties_start + 8;
	n[0].action = "C";
	n[0].json_start = (size_t)(c - body_other);
	n[0].json_end = n[0].json_start + 14;
	n[1].action = "D";
	n[1].json_start = (size_t)(e - body_other);
	n[1].json_end = n[1].json_start + 14;
}

/* Store delivery @p id in the caller's transaction. */
static void
ingest(struct whr_store *s, const char *id, int64_t attempt,
       int64_t received_at)
{
	struct ingest_delivery d;
	struct ingest_notification n[2];

	delivery(&d, n, id, attempt);
	d.received_at = received_at;
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
}

/* Store delivery @p id (attempt 1, received at 1) in a transaction of
 * its own: notifications 2n-1 and 2n of the nth. */
static void
ingest_committed(struct whr_store *s, const char *id)
{
	ck_assert_int_eq(whr_store_begin(s), 0);
	ingest(s, id, 1, 1);
	ck_assert_int_eq(whr_store_commit(s), 0);
}

/* Settle notification @p id in a transaction of its own. */
static void
settle_committed(struct whr_store *s, int64_t id, enum work_state state,
		 int64_t next_at, const char *error)
{
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_settle(s, id, state, next_at, error, 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
}

static int
collect(struct store_claim *c, void *arg)
{
	return seen_add(arg, "%lld:%zu:%s;", (long long)c->id, c->n_keys,
			c->keys[0]);
}

/* collect(), stopping (without failing) after two. */
static int
collect_two(struct store_claim *c, void *arg)
{
	char *seen = arg;

	if (strchr(seen, ';') != NULL && strchr(seen, ';') !=
	    strrchr(seen, ';'))
		return 1;
	return collect(c, arg);
}

static int
collect_ids(struct store_claim *c, void *arg)
{
	return seen_add(arg, "%lld;", (long long)c->id);
}

/* What a claim of the open work after @p after (@p limit and
 * @p lease_us as whr_store_claim takes them) handed to @p fn, as @p fn
 * wrote it down. Borrowed until the next call. */
static const char *
claimed_by(struct whr_store *s, int64_t after, int64_t limit,
	   int64_t lease_us, int (*fn)(struct store_claim *, void *))
{
	static char seen[SEEN_SIZE];

	seen[0] = '\0';
	ck_assert_int_eq(whr_store_claim(s, after, limit, lease_us, fn, seen),
			 0);
	return seen;
}

/* The ids a claim of all open work leased for @p lease_us: "1;2;". */
static const char *
claimed(struct whr_store *s, int64_t lease_us)
{
	return claimed_by(s, 0, -1, lease_us, collect_ids);
}

START_TEST(store_ingest_and_duplicates)
{
	struct whr_store *s = test_store_fresh();
	struct ingest_delivery d;
	struct ingest_notification n[2];
	struct store_work *w = NULL;

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "d1", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert(!d.duplicate);
	ck_assert_int_eq(d.seq, 1);
	ck_assert_int_eq(n[0].id, 1);
	ck_assert_int_eq(n[1].id, 2);
	/* Same receiver and Id, in the same transaction: a duplicate (on
	 * PostgreSQL, it takes a seq all the same: the next skip one). */
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
	ck_assert_int_eq(query_int(s, "SELECT duplicates FROM deliveries"
				   " WHERE seq = 1"), 1);
	ck_assert_int_eq(query_int(s, "SELECT last_attempt FROM deliveries"
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

	ck_assert_str_eq(claimed_by(s, 0, -1, 0, collect), test_by_db(
		"1:2:lc:c\x1fu1;2:1:d:1;3:2:lc:c\x1fu1;"
		"4:1:d:2;5:2:lc:c\x1fu1;6:1:d:3;",
		"1:2:lc:c\x1fu1;2:1:d:1;4:1:d:3;6:1:d:4;"));

	/* The work window's reads: open rows above an id, in id order, at
	 * most so many; finished ones are skipped, and counted out. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_settle(s, 3, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 5, WORK_RETRYING, 9, "r", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_str_eq(claimed_by(s, 1, 3, 0, collect),
			 test_by_db("2:1:d:1;4:1:d:2;5:2:lc:c\x1fu1;",
				    "2:1:d:1;4:1:d:3;6:1:d:4;"));
	ck_assert_str_eq(claimed_by(s, 5, 3, 0, collect),
			 test_by_db("6:1:d:3;", "6:1:d:4;"));
	ck_assert_str_eq(claimed_by(s, 0, -1, 0, collect_two),
			 "1:2:lc:c\x1fu1;2:1:d:1;");
	ck_assert_int_eq(whr_store_count_open(s, 0), 5);
	ck_assert_int_eq(whr_store_count_open(s, 4), 2);
	ck_assert_int_eq(whr_store_count_open(s, 6), 0);
	test_store_discard(s);
}
END_TEST

START_TEST(store_outcomes_and_finish)
{
	struct whr_store *s = test_store_fresh();
	struct store_work *w = NULL;

	ck_assert_int_eq(whr_store_begin(s), 0);
	ingest(s, "d1", 1, 1);
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
	ck_assert_int_eq(query_int(s,
		"SELECT (SELECT count(*) FROM outcomes) + (SELECT count(*) FROM"
		" notifications) + (SELECT count(*) FROM deliveries)"), 0);
	if (test_backend_db() == WHR_DB_POSTGRESQL)
		ck_assert_int_eq(query_int(s, "SELECT count(*)"
					   " FROM notification_keys"), 0);
	test_store_discard(s);
}
END_TEST

/* Outcome @p handler of @p w, which must be there. */
static const struct store_outcome *
outcome_of(const struct store_work *w, const char *handler)
{
	size_t i;

	for (i = 0; i < w->n_outcomes; i++) {
		if (strcmp(w->outcomes[i].handler, handler) == 0)
			return &w->outcomes[i];
	}
	ck_abort_msg("no outcome of %s on %lld", handler, (long long)w->id);
	return NULL;
}

/* Pipelined (the inbox's transactions; on PostgreSQL what ingest says
 * comes with the commit, several deliveries gathered into one
 * statement): every delivery gets its own answer, a second copy in the
 * same transaction counts as a duplicate, one without notifications or
 * with another receiver's Id does not; outcomes and states of several
 * runs, a second write about a notification after the first. */
START_TEST(store_pipelined_batch)
{
	struct whr_store *s = test_store_fresh();
	struct ingest_delivery d[5];
	struct ingest_notification n[5][2];
	struct store_work *w = NULL;
	int i;

	delivery(&d[0], n[0], "d1", 1);
	delivery_other(&d[1], n[1], NULL);
	delivery(&d[2], n[2], "d1", 4);
	delivery(&d[3], n[3], "d2", 1);
	d[3].n_notifications = 0;
	delivery_other(&d[4], n[4], "d2");
	d[4].receiver_id = "other";
	d[4].received_at = 2;
	whr_store_pipeline(s, true);
	ck_assert_int_eq(whr_store_begin(s), 0);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(whr_store_ingest(s, &d[i]), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	ck_assert(!d[0].duplicate);
	ck_assert_int_eq(d[0].seq, 1);
	ck_assert_int_eq(n[0][0].id, 1);
	ck_assert_int_eq(n[0][1].id, 2);
	ck_assert(!d[1].duplicate);
	ck_assert_int_eq(d[1].seq, 2);
	ck_assert_int_eq(n[1][0].id, 3);
	ck_assert_int_eq(n[1][1].id, 4);
	ck_assert(d[2].duplicate);
	ck_assert_int_eq(d[2].seq, 1);
	/* On PostgreSQL the duplicate took a number from the sequence. */
	ck_assert(!d[3].duplicate);
	ck_assert_int_eq(d[3].seq, test_backend_postgresql() ? 4 : 3);
	ck_assert(!d[4].duplicate);
	ck_assert_int_eq(d[4].seq, test_backend_postgresql() ? 5 : 4);
	ck_assert_int_eq(n[4][0].id, 5);
	ck_assert_int_eq(n[4][1].id, 6);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM deliveries"), 4);
	ck_assert_int_eq(query_int(s, "SELECT duplicates * 10 + last_attempt"
				   " FROM deliveries WHERE seq = 1"), 14);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"), 6);
	/* Each its own body, however many went in one statement. */
	ck_assert_int_eq(whr_store_load(s, 2, &w), 0);
	ck_assert_str_eq(w->json, "{\"Action\":\"B\"}");
	ck_assert_str_eq(w->properties, "{\"p\":1}");
	store_work_free(w);
	ck_assert_int_eq(whr_store_load(s, 3, &w), 0);
	ck_assert_ptr_null(w->delivery_id);
	ck_assert_str_eq(w->action, "C");
	ck_assert_str_eq(w->json, "{\"Action\":\"C\"}");
	ck_assert_str_eq(w->properties, "{\"q\":22}");
	store_work_free(w);
	ck_assert_int_eq(whr_store_load(s, 6, &w), 0);
	ck_assert_str_eq(w->receiver_id, "other");
	ck_assert_str_eq(w->delivery_id, "d2");
	ck_assert_str_eq(w->action, "D");
	ck_assert_str_eq(w->json, "{\"Action\":\"D\"}");
	ck_assert_str_eq(w->properties, "{\"q\":22}");
	ck_assert_int_eq(w->received_at, 2);
	ck_assert_uint_eq(w->n_keys, 1);
	ck_assert_str_eq(w->keys[0], test_by_db("d:4", "d:5"));
	store_work_free(w);

	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h1", WHR_RETRY,
						  "later", 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_RETRYING, 99,
					  "h1: later", 5), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h1", WHR_DONE,
						  NULL, 6), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_DONE, 6, NULL, 6), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 3, "h1", WHR_DONE,
						  NULL, 6), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 3, "h2", WHR_REJECT,
						  "no \"quotes\\\"", 6), 0);
	ck_assert_int_eq(whr_store_settle(s, 3, WORK_DEAD, 6,
					  "h2: no \"quotes\\\"", 6), 0);
	ck_assert_int_eq(whr_store_settle(s, 5, WORK_RETRYING, 77, NULL, 6),
			 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	ck_assert_int_eq(whr_store_load(s, 1, &w), 0);
	ck_assert_int_eq(w->state, WORK_DONE);
	ck_assert_int_eq(w->runs, 2);
	ck_assert_uint_eq(w->n_outcomes, 1);
	ck_assert_int_eq(outcome_of(w, "h1")->result, WHR_DONE);
	ck_assert_int_eq(outcome_of(w, "h1")->runs, 2);
	store_work_free(w);
	ck_assert_int_eq(whr_store_load(s, 3, &w), 0);
	ck_assert_int_eq(w->state, WORK_DEAD);
	ck_assert_int_eq(w->runs, 1);
	ck_assert_int_eq(outcome_of(w, "h1")->result, WHR_DONE);
	ck_assert_int_eq(outcome_of(w, "h1")->runs, 1);
	ck_assert_int_eq(outcome_of(w, "h2")->result, WHR_REJECT);
	ck_assert_str_eq(outcome_of(w, "h2")->reason, "no \"quotes\\\"");
	store_work_free(w);
	ck_assert_int_eq(whr_store_load(s, 5, &w), 0);
	ck_assert_int_eq(w->state, WORK_RETRYING);
	ck_assert_int_eq(w->next_at, 77);
	store_work_free(w);
	/* Finished work's keys are gone; open work keeps its own. */
	if (test_backend_db() == WHR_DB_POSTGRESQL)
		ck_assert_int_eq(query_int(s, "SELECT count(*) FROM"
			" notification_keys WHERE notification_id IN (1, 3)"),
			0);
	ck_assert_int_eq(whr_store_count_open(s, 0), 4);
	test_store_discard(s);
}
END_TEST

START_TEST(store_versions)
{
	struct whr_store *s = test_store_fresh();
	const char *dir = test_store_fresh_location();

	/* Readers and tools open it; a second server open is fine too. */
	whr_store_close(open_again(STORE_WORKER));
	whr_store_close(open_again(STORE_SERVER));
	/* A newer schema is refused, saying so. */
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s), test_by_db(
		"PRAGMA user_version = 9",
		"UPDATE whr_meta SET value = 9 WHERE key IN"
		" ('schema_version', 'schema_compatible')")), 0);
	ck_assert_ptr_null(whr_store_open(dir, STORE_SERVER, why, sizeof(why)));
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_ptr_nonnull(strstr(why, test_by_db(
		"schema version 9, newer than this whr knows (2)",
		"schema version 9, newer than this whr knows (3)")));
	ck_assert_ptr_null(whr_store_open(dir, STORE_WORKER, why, sizeof(why)));
	ck_assert_int_eq(errno, EPROTO);
	test_store_discard(s);

	/* No inbox at all: a reader says so. */
	if (test_backend_db() == WHR_DB_SQLITE) {
		ck_assert_ptr_null(whr_store_open("/nonexistent/whr",
						  STORE_WORKER, why,
						  sizeof(why)));
		ck_assert_int_eq(errno, EIO);
		ck_assert_ptr_nonnull(strstr(why, "/nonexistent/whr/inbox.sqlite: cannot open"));
	} else {
		const char *empty = test_store_location();

		ck_assert_ptr_null(whr_store_open(empty, STORE_WORKER, why,
						  sizeof(why)));
		ck_assert_int_eq(errno, ENOENT);
		ck_assert_ptr_nonnull(strstr(why, "no whr inbox in"));
		ck_assert_ptr_null(whr_store_open(empty, STORE_READER, why,
						  sizeof(why)));
		ck_assert_int_eq(errno, ENOENT);
		test_store_remove(empty);
	}
}
END_TEST

/* A backup: a whole inbox in one file, 0600, never over a file unless
 * told to replace it. */
START_TEST(store_backup)
{
	struct whr_store *s = test_store_fresh();
	struct store_stats st;
	struct whr_store *r;
	char copy_dir[2048 + 8], dest[2048 + 32];
	struct stat sb;

	ingest_committed(s, "d1");

	snprintf(copy_dir, sizeof(copy_dir), "%s",
		 test_store_fresh_location());
	strcat(copy_dir, "/copy");
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
	test_store_discard(s);
}
END_TEST

/* An inbox of version 1 (no retry_from) is brought to version 2 when the
 * server opens it, keeping its rows: their retries count from arrival. */
START_TEST(store_migrates_version_1)
{
	struct whr_store *s = test_store_fresh();
	const char *dir = test_store_fresh_location();
	struct store_work *w = NULL;

	ingest_committed(s, "d1");
	/* What version 1 was: schema_v1 has not changed since. */
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s),
		"ALTER TABLE notifications DROP COLUMN retry_from;"
		"PRAGMA user_version = 1"), 0);
	whr_store_close(s);

	/* A reader (a worker) waits for the server to migrate it. */
	ck_assert_ptr_null(whr_store_open(dir, STORE_WORKER, why, sizeof(why)));
	s = open_again(STORE_SERVER);
	ck_assert_int_eq(query_int(s, "SELECT user_version"
				      " FROM pragma_user_version"), 2);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM"
				      " pragma_table_info('notifications')"
				      " WHERE name = 'retry_from'"), 1);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"),
			 2);
	ck_assert_int_eq(whr_store_load(s, 1, &w), 0);
	ck_assert_int_eq(w->retry_from, 1);	/* received_at */
	store_work_free(w);

	/* A whr of version 1 on the same folder writes its number back (its
	 * probe did): readers still work, and the next start takes the
	 * step as made instead of failing on the column. */
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s),
				     "PRAGMA user_version = 1"), 0);
	whr_store_close(s);
	whr_store_close(open_again(STORE_WORKER));
	s = open_again(STORE_SERVER);
	/* Our own probe never lowers or raises the number. */
	ck_assert_int_eq(whr_store_probe(s), 0);
	ck_assert_int_eq(query_int(s, "SELECT user_version"
				      " FROM pragma_user_version"), 2);
	test_store_discard(s);
}
END_TEST

/* ---- inspecting (whr inbox), on every backend ---------------------------- */

static int
list_ids(const struct store_notification *n, void *arg)
{
	return seen_add(arg, "%lld:%s:%s;", (long long)n->id,
			n->action != NULL ? n->action : "-", n->state);
}

/* The notifications whr inbox list would show with filter @p f. */
static const char *
listed(struct whr_store *tool, const struct store_filter *f)
{
	static char seen[SEEN_SIZE];

	seen[0] = '\0';
	ck_assert_int_eq(whr_store_list(tool, f, list_ids, seen), 0);
	return seen;
}

static int
show_delivery(const struct store_delivery *d, void *arg)
{
	ck_assert_str_eq(d->body, body);
	return seen_add(arg, "seq %lld id %s dup %lld finished %d body %zu;",
			(long long)d->seq, d->delivery_id,
			(long long)d->duplicates, d->finished, d->body_len);
}

static int
show_notification(const struct store_notification *n,
		  const struct store_outcome_row *o, size_t n_outcomes,
		  void *arg)
{
	size_t i;

	seen_add(arg, "%lld:%s", (long long)n->id, n->state);
	for (i = 0; i < n_outcomes; i++)
		seen_add(arg, " %s=%s", o[i].handler, o[i].result);
	return seen_add(arg, ";");
}

static int
count_action(const char *name, const struct store_counts *c, void *arg)
{
	return seen_add(arg, "%s:%lld/%lld;", name != NULL ? name : "-",
			(long long)c->total, (long long)c->dead);
}

START_TEST(store_inspect)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *tool;
	struct store_filter f = { .state = NULL };
	struct store_stats st;
	struct store_replay r = { .seq = 0 };
	char seen[SEEN_SIZE] = "";
	int64_t seq = 0;
	int matches = 0;

	ck_assert_int_eq(whr_store_begin(s), 0);
	ingest(s, "d1", 1, 1);
	ingest(s, "d2", 1, 50);
	ingest(s, "d1", 2, 1);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h", WHR_DONE, NULL, 5),
			 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_DONE, 5, NULL, 5), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 2, "h", WHR_REJECT, "no",
						  5), 0);
	ck_assert_int_eq(whr_store_settle(s, 2, WORK_DEAD, 5, "h: no", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	tool = open_again(STORE_READER);
	ck_assert_str_eq(listed(tool, &f),
			 "4:B:pending;3:A:pending;2:B:dead;1:A:done;");
	f.action = "b";
	f.has_since = true;
	f.since = 2;
	ck_assert_str_eq(listed(tool, &f), "4:B:pending;");
	f = (struct store_filter){ .state = "dead", .limit = 1 };
	ck_assert_str_eq(listed(tool, &f), "2:B:dead;");

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
	tool = open_again(STORE_WRITER);
	r.now = 70;
	ck_assert_int_eq(whr_store_replay(tool, &r), 0);
	ck_assert_int_eq(r.replayed, 1);
	r = (struct store_replay){ .seq = 1, .all_handlers = true, .now = 80 };
	ck_assert_int_eq(whr_store_replay(tool, &r), 0);
	ck_assert_int_eq(r.replayed, 1);
	ck_assert_int_eq(r.open, 1);
	whr_store_close(tool);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"
				   " WHERE state = 'pending'"), 4);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM outcomes"), 0);
	ck_assert_int_eq(query_int(s, "SELECT retry_from FROM notifications"
				   " WHERE id = 1"), 80);
	test_store_discard(s);
}
END_TEST

/* Another connection's replay changes the data version the server
 * watches; its own work does not need to. */
START_TEST(store_data_version)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *tool;
	struct store_replay r = { .seq = 0, .now = 9 };
	int64_t before;

	ingest_committed(s, "d1");
	settle_committed(s, 1, WORK_DEAD, 5, "x");
	before = whr_store_data_version(s);
	ck_assert_int_ge(before, 0);
	tool = open_again(STORE_WRITER);
	ck_assert_int_eq(whr_store_replay(tool, &r), 0);
	ck_assert_int_eq(r.replayed, 1);
	whr_store_close(tool);
	ck_assert_int_ne(whr_store_data_version(s), before);
	test_store_discard(s);
}
END_TEST

/* Which locations are databases, and that a database's password never
 * shows in a message (no server needed). */
/* Opening @p location fails, and the message says no password. */
static void
refused(const char *location, enum store_mode mode)
{
	ck_assert_ptr_null(whr_store_open(location, mode, why, sizeof(why)));
	ck_assert_ptr_null(strstr(why, "s3cr3t"));
}

START_TEST(store_database_location)
{
	ck_assert(whr_store_location_is_database("postgresql://h/db"));
	ck_assert(whr_store_location_is_database("postgres://h/db"));
	ck_assert(whr_store_location_is_database("host=h dbname=db"));
	ck_assert(whr_store_location_is_database("dbname=db"));
	ck_assert(!whr_store_location_is_database("./whr-data"));
	ck_assert(!whr_store_location_is_database("/var/lib/whr"));
	ck_assert(!whr_store_location_is_database("postgresql"));

	/* Nobody listens on port 1: it cannot connect, and says where
	 * without the password. */
	refused("postgresql://whr:s3cr3t-pw@127.0.0.1:1/inbox", STORE_SERVER);
	ck_assert_int_eq(errno, EIO);
	ck_assert_ptr_nonnull(strstr(why, "postgresql://whr@127.0.0.1:1/inbox"));
	ck_assert_ptr_nonnull(strstr(why, "cannot connect"));
	refused("host=127.0.0.1 port=1 password=s3cr3t-pw", STORE_READER);
	/* A location libpq cannot read: its message (which may quote the
	 * password) is not passed on. */
	refused("postgresql://whr:s3cr3t%zz@127.0.0.1/inbox", STORE_READER);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "cannot read the database location"));
}
END_TEST

/* ---- what a shared store promises (PostgreSQL only) --------------------- */

/* Another replica, in a thread of its own: it opens @p location as a
 * server (after @p start, when there is one), runs @p work on the store
 * and closes it. */
struct replica {
	const char *location;
	int (*work)(struct whr_store *s, void *arg);	/* or NULL */
	void *arg;
	pthread_barrier_t *start;	/* or NULL */
	int rc;			/* work's result, or -EIO: not opened */
	bool done;		/* atomic: it has closed the store */
	pthread_t thread;
};

static void *
replica_main(void *arg)
{
	struct replica *r = arg;
	struct whr_store *s;

	if (r->start != NULL)
		pthread_barrier_wait(r->start);
	s = whr_store_open(r->location, STORE_SERVER, NULL, 0);
	r->rc = s == NULL ? -EIO : r->work != NULL ? r->work(s, r->arg) : 0;
	whr_store_close(s);
	__atomic_store_n(&r->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void
replica_start(struct replica *r)
{
	ck_assert_int_eq(pthread_create(&r->thread, NULL, replica_main, r),
			 0);
}

/* What the replica's work returned, once it has ended. */
static int
replica_join(struct replica *r)
{
	ck_assert_int_eq(pthread_join(r->thread, NULL), 0);
	return r->rc;
}

/* What the other replica's batch of store_concurrent_ingest said. */
struct same_batch {
	struct ingest_delivery d[3];
	struct ingest_notification n[3][2];
};

/* The test delivery "same", attempt 2, pipelined between a new one
 * without an Id (body_other) and a new one with ("fresh"): one
 * statement whose rows are a duplicate the conflict found and new ones.
 * What ingest said goes to the struct same_batch @p arg. */
static int
ingest_same(struct whr_store *s, void *arg)
{
	struct same_batch *b = arg;
	int rc, i;

	delivery_other(&b->d[0], b->n[0], NULL);
	delivery(&b->d[1], b->n[1], "same", 2);
	delivery(&b->d[2], b->n[2], "fresh", 1);
	whr_store_pipeline(s, true);
	rc = whr_store_begin(s);
	for (i = 0; rc == 0 && i < 3; i++)
		rc = whr_store_ingest(s, &b->d[i]);
	if (rc == 0)
		rc = whr_store_commit(s);
	return rc;
}

/* Two replicas store the same delivery at the same moment: the second
 * insert waits for the first's commit, and counts a duplicate; both
 * succeed (both answer 200), and it is stored once. The new deliveries
 * of the second's statement get their own rows and work. */
START_TEST(store_concurrent_ingest)
{
	struct whr_store *s = test_store_fresh();
	struct same_batch b;
	struct replica other = {
		.location = test_store_fresh_location(),
		.work = ingest_same,
		.arg = &b,
	};
	struct store_work *w = NULL;
	struct ingest_delivery d;
	struct ingest_notification n[2];
	int i;

	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "same", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert(!d.duplicate);
	replica_start(&other);
	/* The other one is waiting on our row (or has not got there). */
	for (i = 0; i < 30; i++) {
		usleep(10000);
		ck_assert(!__atomic_load_n(&other.done, __ATOMIC_SEQ_CST));
	}
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(replica_join(&other), 0);
	ck_assert(b.d[1].duplicate);
	ck_assert_int_eq(b.d[1].seq, d.seq);
	ck_assert(!b.d[0].duplicate);
	ck_assert(!b.d[2].duplicate);
	ck_assert_int_gt(b.d[0].seq, d.seq);
	ck_assert_int_gt(b.d[2].seq, b.d[0].seq);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM deliveries"), 3);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"),
			 6);
	ck_assert_int_eq(query_int(s, "SELECT duplicates FROM deliveries"
				   " WHERE delivery_id = 'same'"), 1);
	ck_assert_int_eq(query_int(s, "SELECT last_attempt FROM deliveries"
				   " WHERE delivery_id = 'same'"), 2);
	ck_assert_int_eq(whr_store_load(s, b.n[0][1].id, &w), 0);
	ck_assert_int_eq(w->delivery_seq, b.d[0].seq);
	ck_assert_str_eq(w->json, "{\"Action\":\"D\"}");
	store_work_free(w);
	ck_assert_int_eq(whr_store_load(s, b.n[2][0].id, &w), 0);
	ck_assert_int_eq(w->delivery_seq, b.d[2].seq);
	ck_assert_str_eq(w->delivery_id, "fresh");
	ck_assert_str_eq(w->json, "{\"Action\":\"A\"}");
	store_work_free(w);
	ck_assert_int_gt(b.n[2][0].id, b.n[0][1].id);
	test_store_discard(s);
}
END_TEST

#define CLAIM_WORK 300

/* The ids one replica claimed. */
struct claims {
	int64_t ids[CLAIM_WORK];
	size_t n;
};

static int
claim_one(struct store_claim *c, void *arg)
{
	struct claims *k = arg;

	ck_assert_uint_lt(k->n, CLAIM_WORK);
	k->ids[k->n++] = c->id;
	return 0;
}

/* Claim a few at a time until a claim finds nothing more; one that
 * found the other replica's claim holding the lock is made again. */
static int
claim_all(struct whr_store *s, void *arg)
{
	struct claims *k = arg;
	size_t before;
	int rc;

	for (;;) {
		before = k->n;
		rc = whr_store_claim(s, 0, 7, 60 * 1000000LL, claim_one, k);
		if (rc == -EAGAIN) {
			usleep(1000);
			continue;
		}
		if (rc != 0 || k->n == before)
			return rc;
	}
}

/* Two replicas claiming at once never get the same work, and between
 * them get all of it. */
START_TEST(store_concurrent_claims)
{
	struct whr_store *s = test_store_fresh();
	static struct claims k[2];
	static struct replica r[2];
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
		r[i] = (struct replica){
			.location = test_store_fresh_location(),
			.work = claim_all,
			.arg = &k[i],
		};
		replica_start(&r[i]);
	}
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(replica_join(&r[i]), 0);
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
	test_store_discard(s);
}
END_TEST

/* What a claim hands out: the oldest open work of each key (retrying
 * work too keeps younger work of its keys waiting), when it is due and
 * not leased. */
START_TEST(store_claim_eligible)
{
	struct whr_store *s = test_store_fresh();
	int64_t now = 1700000000000000LL;

	/* 1 (u1, u2), 2 (d:1); 3 (u1, u2), 4 (d:2) */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ingest(s, "a", 1, 1);
	ingest(s, "b", 1, 1);
	ck_assert_int_eq(whr_store_commit(s), 0);

	ck_assert_str_eq(claimed(s, 60000000), "1;2;4;");
	/* Leased: not again. */
	ck_assert_str_eq(claimed(s, 60000000), "");

	/* 1 retries later: still open, so 3 (its keys) waits; and 1 is
	 * not due. Settling cleared its lease. */
	settle_committed(s, 1, WORK_RETRYING, now * 2, "r");
	ck_assert_str_eq(claimed(s, 60000000), "");
	/* Due now: 1 again, never 3. */
	settle_committed(s, 1, WORK_RETRYING, 0, "r");
	ck_assert_str_eq(claimed(s, 60000000), "1;");
	/* 1 done: 3 is the oldest open of its keys now. */
	settle_committed(s, 1, WORK_DONE, 0, NULL);
	ck_assert_str_eq(claimed(s, 60000000), "3;");
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"
				   " WHERE lease_owner IS NOT NULL"), 3);
	test_store_discard(s);
}
END_TEST

/* The work claims handed out, taken from them. */
struct taken_work {
	struct store_work *w[8];
	int64_t ids[8];
	size_t n;
};

static int
take_work(struct store_claim *c, void *arg)
{
	struct taken_work *t = arg;

	ck_assert_uint_lt(t->n, ARRAY_LENGTH(t->w));
	t->ids[t->n] = c->id;
	t->w[t->n++] = c->work;
	c->work = NULL;
	return 0;
}

static void
taken_work_free(struct taken_work *t)
{
	while (t->n > 0)
		store_work_free(t->w[--t->n]);
}

/* @p w, as a claim brought it, is what whr_store_load() gives. */
static void
assert_loads_the_same(struct whr_store *s, const struct store_work *w)
{
	struct store_work *l = NULL;
	size_t i;

	ck_assert_int_eq(whr_store_load(s, w->id, &l), 0);
	ck_assert_int_eq(w->delivery_seq, l->delivery_seq);
	ck_assert_uint_eq(w->index, l->index);
	ck_assert_uint_eq(w->count, l->count);
	ck_assert_str_eq(w->receiver_id, l->receiver_id);
	ck_assert_pstr_eq(w->delivery_id, l->delivery_id);
	ck_assert_pstr_eq(w->action, l->action);
	ck_assert_int_eq(w->attempt, l->attempt);
	ck_assert_int_eq(w->received_at, l->received_at);
	ck_assert_int_eq(w->retry_from, l->retry_from);
	ck_assert_uint_eq(w->json_len, l->json_len);
	ck_assert_mem_eq(w->json, l->json, w->json_len + 1);
	ck_assert_uint_eq(w->properties_len, l->properties_len);
	ck_assert_pstr_eq(w->properties, l->properties);
	ck_assert_int_eq(w->state, l->state);
	ck_assert_int_eq(w->runs, l->runs);
	ck_assert_int_eq(w->next_at, l->next_at);
	ck_assert_uint_eq(w->n_keys, l->n_keys);
	for (i = 0; i < w->n_keys; i++)
		ck_assert_str_eq(w->keys[i], l->keys[i]);
	ck_assert_uint_eq(w->n_outcomes, l->n_outcomes);
	for (i = 0; i < w->n_outcomes; i++) {
		const struct store_outcome *o =
			outcome_of(l, w->outcomes[i].handler);

		ck_assert_int_eq(w->outcomes[i].result, o->result);
		ck_assert_int_eq(w->outcomes[i].runs, o->runs);
		ck_assert_pstr_eq(w->outcomes[i].reason, o->reason);
	}
	store_work_free(l);
}

/* A shared store's claim brings the work itself, as a load would read
 * it, so that no worker loads it: its JSON, its delivery's properties
 * (or none), the outcomes of its earlier runs, one piece of work however
 * many outcomes it has. Not retrying work, whose outcomes another
 * replica may have written since the claim's snapshot: a worker loads
 * it. SQLite's claims bring none. */
START_TEST(store_claim_brings_work)
{
	struct whr_store *s = test_store_fresh();
	struct taken_work t = { 0 };
	struct ingest_delivery d;
	struct ingest_notification n[2];
	const struct store_outcome *o;
	size_t i;

	/* 1 (u1, u2), 2 (d:1) of "a"; 3 (u1, u2), 4 (d:2) of "b", which
	 * has no properties. 1 ran once: h1 done, h2 asked for a retry,
	 * due now; 2 ran once: h1 rejected it, h2 asked for a retry. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ingest(s, "a", 1, 1);
	delivery(&d, n, "b", 2);
	d.received_at = 3;
	d.has_properties = false;
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h1", WHR_DONE, NULL,
						  5), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h2", WHR_RETRY,
						  "later", 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_RETRYING, 0, "h2: later",
					  5), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 2, "h1", WHR_REJECT,
						  "no", 5), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 2, "h2", WHR_RETRY,
						  NULL, 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 2, WORK_RETRYING, 0, "h2", 5),
			 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	/* 2 pending again with its outcomes, as a replay leaves it. */
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s), "UPDATE notifications"
				     " SET state = 'pending' WHERE id = 2"), 0);

	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, take_work, &t),
			 0);
	if (!test_backend_postgresql()) {
		ck_assert_uint_eq(t.n, 4);
		for (i = 0; i < t.n; i++)
			ck_assert_ptr_null(t.w[i]);
		test_store_discard(s);
		return;
	}
	/* 3 waits for 1, which shares its keys. */
	ck_assert_uint_eq(t.n, 3);
	ck_assert_int_eq(t.ids[0], 1);
	ck_assert_int_eq(t.ids[1], 2);
	ck_assert_int_eq(t.ids[2], 4);
	ck_assert_ptr_null(t.w[0]);	/* retrying */
	for (i = 1; i < t.n; i++) {
		ck_assert_ptr_nonnull(t.w[i]);
		ck_assert_int_eq(t.w[i]->id, t.ids[i]);
		assert_loads_the_same(s, t.w[i]);
	}

	ck_assert_str_eq(t.w[1]->json, "{\"Action\":\"B\"}");
	ck_assert_uint_eq(t.w[1]->json_len, 14);
	ck_assert_str_eq(t.w[1]->action, "B");
	ck_assert_str_eq(t.w[1]->properties, "{\"p\":1}");
	ck_assert_uint_eq(t.w[1]->properties_len, 7);
	ck_assert_str_eq(t.w[1]->receiver_id, "tenant");
	ck_assert_str_eq(t.w[1]->delivery_id, "a");
	ck_assert_int_eq(t.w[1]->state, WORK_PENDING);
	ck_assert_int_eq(t.w[1]->runs, 1);
	ck_assert_uint_eq(t.w[1]->n_keys, 1);
	ck_assert_str_eq(t.w[1]->keys[0], "d:1");
	ck_assert_uint_eq(t.w[1]->n_outcomes, 2);
	o = outcome_of(t.w[1], "h1");
	ck_assert_int_eq(o->result, WHR_REJECT);
	ck_assert_str_eq(o->reason, "no");
	o = outcome_of(t.w[1], "h2");
	ck_assert_int_eq(o->result, WHR_RETRY);
	ck_assert_ptr_null(o->reason);

	ck_assert_str_eq(t.w[2]->delivery_id, "b");
	ck_assert_int_eq(t.w[2]->delivery_seq, 2);
	ck_assert_uint_eq(t.w[2]->index, 1);
	ck_assert_int_eq(t.w[2]->attempt, 2);
	ck_assert_int_eq(t.w[2]->retry_from, 3);
	ck_assert_ptr_null(t.w[2]->properties);
	ck_assert_uint_eq(t.w[2]->properties_len, 0);
	ck_assert_uint_eq(t.w[2]->n_outcomes, 0);
	ck_assert_int_eq(t.w[2]->state, WORK_PENDING);
	taken_work_free(&t);

	/* 1 done: 3 comes, with its work. Its lease of 0 runs out at once:
	 * the next claim takes it over without its work, which another
	 * replica may have written outcomes of under that lease (a worker
	 * loads it). */
	settle_committed(s, 1, WORK_DONE, 0, NULL);
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 0, take_work, &t), 0);
	ck_assert_uint_eq(t.n, 1);
	ck_assert_int_eq(t.ids[0], 3);
	ck_assert_ptr_nonnull(t.w[0]);
	taken_work_free(&t);
	usleep(1000);
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, take_work, &t),
			 0);
	ck_assert_uint_eq(t.n, 1);
	ck_assert_int_eq(t.ids[0], 3);
	ck_assert_ptr_null(t.w[0]);
	taken_work_free(&t);
	test_store_discard(s);
}
END_TEST

/* A claim made in a transaction (a shared store's) sees the
 * transaction's own writes, hands out nothing before the commit, leases
 * nothing when the transaction does not commit, and makes the commit
 * synchronous; piped (answered with the COMMIT) or not. SQLite's claims
 * hold no lease: -ENOTSUP. */
static void
claim_at_commit(bool piped)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);
	struct taken_work t = { 0 };
	struct ingest_delivery d, bad;
	struct ingest_notification n[2], bad_n[2];

	if (!test_backend_postgresql()) {
		whr_store_pipeline(s, piped);
		ck_assert_int_eq(whr_store_begin(s), 0);
		ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 0, 60000000),
				 -ENOTSUP);
		ck_assert_int_eq(whr_store_commit(s), 0);
		ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), 0);
		ck_assert_uint_eq(t.n, 0);
		whr_store_close(other);
		test_store_discard(s);
		return;
	}
	/* Not in a transaction. */
	ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 0, 60000000), -EINVAL);

	/* 1 (u1, u2) and 2 (d:1), not piped (ingest() lends a delivery
	 * of its stack). Rolled back: nothing was leased. */
	ingest_committed(s, "a");
	whr_store_pipeline(s, piped);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 0, 60000000), 0);
	whr_store_rollback(s);
	ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), 0);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_str_eq(claimed(other, 0), "1;2;");
	usleep(1000);	/* those leases of 0 run out */

	/* With a new delivery, 3 (u1, u2, behind 1) and 4 (d:2), in a
	 * transaction that would not have waited for the disk: the claim
	 * sees 4, whose work it brings; 1 and 2, whose leases ran out,
	 * come to be loaded afresh. Nothing before the commit. */
	ck_assert_int_eq(whr_store_sync_commits(s, false), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "b", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 0, 60000000), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 0, 60000000), -EBUSY);
	/* Not piped, it ran: it holds the claim lock until the commit,
	 * and another's claim is told so. (Piped, it goes to the server
	 * with the COMMIT.) */
	if (!piped) {
		ck_assert_int_eq(query_int(s, "SELECT (current_setting("
					   "'synchronous_commit') = 'on')::int"),
				 1);
		ck_assert_int_eq(whr_store_claim(other, 0, -1, 60000000,
						 take_work, &t), -EAGAIN);
		ck_assert_uint_eq(t.n, 0);
	}
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), 0);
	ck_assert_uint_eq(t.n, 3);
	ck_assert_int_eq(t.ids[0], 1);
	ck_assert_int_eq(t.ids[1], 2);
	ck_assert_int_eq(t.ids[2], 4);
	ck_assert_ptr_null(t.w[0]);
	ck_assert_ptr_null(t.w[1]);
	ck_assert_ptr_nonnull(t.w[2]);
	assert_loads_the_same(s, t.w[2]);
	taken_work_free(&t);
	/* Taken once; leased to s. */
	ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), 0);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_str_eq(claimed(other, 60000000), "");

	/* A write after the claim fails (text that is not UTF-8): the
	 * commit fails, and the claim with it, before any rollback. */
	settle_committed(s, 1, WORK_DONE, 0, NULL);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 0, 60000000), 0);
	delivery(&bad, bad_n, "\xff\xfe", 1);
	if (piped)
		ck_assert_int_eq(whr_store_ingest(s, &bad), 0);
	else
		ck_assert_int_lt(whr_store_ingest(s, &bad), 0);
	ck_assert_int_lt(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), 0);
	ck_assert_uint_eq(t.n, 0);
	whr_store_rollback(s);

	/* Committed, and not taken before the next transaction: it is
	 * forgotten, and its leases hold (until they run out). */
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 0, 60000000), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), 0);
	ck_assert_uint_eq(t.n, 0);
	whr_store_rollback(s);
	ck_assert_str_eq(claimed(other, 60000000), "");
	whr_store_close(other);
	test_store_discard(s);
}

/* The ids of the notifications leased now, in order ("" none). */
static const char *
leased_ids(struct whr_store *s)
{
	return test_query_text(whr_store_tx(s),
		"SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '')"
		" FROM notifications WHERE lease_owner IS NOT NULL");
}

/* Whether each notification of @p d was leased as it was stored, as
 * "10" for two. */
static const char *
leased_flags(const struct ingest_delivery *d)
{
	static char flags[8];
	size_t i;

	for (i = 0; i < d->n_notifications && i < sizeof(flags) - 1; i++)
		flags[i] = d->notifications[i].leased ? '1' : '0';
	flags[i] = '\0';
	return flags;
}

/* Four deliveries: 1, 3, 5, 7 (u1, u2: two keys' rows each) and 2, 4,
 * 6, 8 (d:1 to d:4); 1 and 2 retry in an hour, and 3, 5 and 7 wait
 * behind 1: 4, 6 and 8 are eligible. */
static void
four_waiting_behind_two(struct whr_store *s)
{
	int64_t later = now_realtime_us() + 3600000000LL;
	int i;

	for (i = 1; i <= 4; i++) {
		char id[8];

		snprintf(id, sizeof(id), "w%d", i);
		ingest_committed(s, id);
	}
	settle_committed(s, 1, WORK_RETRYING, later, "later");
	settle_committed(s, 2, WORK_RETRYING, later, "later");
}

/* A claim looks at a window of open work (here 3 keys' rows), from
 * where the last one that took less than it asked for looked up to,
 * round to the first once a window reaches the last open work: work
 * past a run of open work that is not eligible is found within a few
 * claims, each reading no more than its window. */
START_TEST(store_claim_window)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);
	char seen[SEEN_SIZE];

	four_waiting_behind_two(s);
	/* Without a window (the default is larger than the lot), one claim
	 * finds them all; a lease of 0 leaves them free. */
	ck_assert_str_eq(claimed(other, 0), "4;6;8;");

	whr_store_claim_window(s, 3, 60000000);
	/* Rows 1, 1, 2: nothing, with open work past the window; 3, 3, 4;
	 * 5, 5, 6; 7, 7, 8; past the last (the window not full): nothing,
	 * none left, and round again. */
	ck_assert(!whr_store_claim_left(s));
	ck_assert_str_eq(claimed(s, 0), "");
	ck_assert(whr_store_claim_left(s));
	ck_assert_str_eq(claimed(s, 0), "4;");
	ck_assert_str_eq(claimed(s, 0), "6;");
	ck_assert_str_eq(claimed(s, 0), "8;");
	ck_assert_str_eq(claimed(s, 0), "");
	ck_assert(!whr_store_claim_left(s));
	ck_assert_str_eq(claimed(s, 0), "");
	ck_assert_str_eq(claimed(s, 0), "4;");

	/* A claim that took all it asked for leaves the next in the same
	 * window (4 is leased now: nothing else there), which then moves
	 * on; at a commit as well. */
	ck_assert_str_eq(claimed_by(s, 0, 1, 60000000, collect_ids), "6;");
	ck_assert(!whr_store_claim_left(s));
	ck_assert_str_eq(claimed_by(s, 0, 1, 60000000, collect_ids), "");
	seen[0] = '\0';
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 0, 60000000), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_take_claimed(s, collect_ids, seen), 0);
	ck_assert_str_eq(seen, "8;");
	ck_assert_str_eq(claimed(s, 0), "");
	ck_assert_str_eq(claimed(s, 0), "");
	ck_assert_str_eq(claimed(s, 0), "4;");
	whr_store_close(other);
	test_store_discard(s);
}
END_TEST

/* Claims that take all they ask for stay in their window; once they
 * have filled there for a while (5 s by default, or four times as long
 * as getting there took), they look from the oldest open work again,
 * for work that became eligible behind them meanwhile. */
START_TEST(store_claim_window_comes_back)
{
	struct whr_store *s = test_store_fresh();
	int64_t later = now_realtime_us() + 3600000000LL;

	four_waiting_behind_two(s);
	whr_store_claim_window(s, 3, 400000);
	ck_assert_str_eq(claimed(s, 60000000), "");
	/* 2 comes due, below the window; the claims of one (leases of 0:
	 * 4 each time) fill, and stay, for 0.4 s here. */
	settle_committed(s, 2, WORK_RETRYING, 0, "due");
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "4;");
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "4;");
	usleep(500000);
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "4;");
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "2;");

	/* Claims that took long to get there stay four times as long:
	 * 0.15 s to get past 1 and 2 (2 waits an hour again), then 0.6 s
	 * filling there. */
	settle_committed(s, 2, WORK_RETRYING, later, "later");
	whr_store_claim_window(s, 3, 0);
	ck_assert_str_eq(claimed(s, 60000000), "");
	usleep(150000);
	settle_committed(s, 2, WORK_RETRYING, 0, "due");
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "4;");
	usleep(250000);
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "4;");
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "4;");
	usleep(450000);
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "4;");
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "2;");
	test_store_discard(s);
}
END_TEST

/* A notification with more keys than a window holds rows is a
 * candidate in the window its rows begin in, whichever of its keys'
 * rows the window holds. */
START_TEST(store_claim_window_many_keys)
{
	/* The first last in the keys' order (their rows are stored in
	 * it, and a window of 2 held u10 and u11 only). */
	static char *many[] = {
		(char *)"lc:c\x1fu14", (char *)"lc:c\x1fu10",
		(char *)"lc:c\x1fu11", (char *)"lc:c\x1fu12",
		(char *)"lc:c\x1fu13",
	};
	struct whr_store *s = test_store_fresh();
	struct ingest_delivery d;
	struct ingest_notification n[2];

	/* 1 (five keys' rows) and 2 (d:1). */
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "many", 1);
	n[0].keys = many;
	n[0].n_keys = 5;
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	whr_store_claim_window(s, 2, 60000000);
	ck_assert_str_eq(claimed(s, 60000000), "1;");
	ck_assert_str_eq(claimed(s, 60000000), "2;");
	ck_assert_str_eq(claimed(s, 60000000), "");
	test_store_discard(s);
}
END_TEST

/* Delivery @p id as delivery() makes it, its first notification with
 * @p keys. */
static void
keyed_delivery(struct ingest_delivery *d, struct ingest_notification n[2],
	       const char *id, char **keys, size_t n_keys)
{
	delivery(d, n, id, 1);
	n[0].keys = keys;
	n[0].n_keys = n_keys;
}

/* Store @p a and @p b in one pipelined transaction whose claim at the
 * commit leases new work as it is stored (up to 8), and commit. */
static void
ingest_pair_leasing(struct whr_store *s, struct ingest_delivery *a,
		    struct ingest_delivery *b)
{
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_ingest(s, a), 0);
	ck_assert_int_eq(whr_store_ingest(s, b), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 0, 8, 60000000), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
}
/* Pipelined, a claim at the commit leases the batch's new work as it is
 * stored: the first open notification of each of its keys, up to the
 * amount asked, and none while another's claim holds the claim lock, or
 * not pipelined. The work leased so is not handed out again. */
START_TEST(store_leases_new_work_as_stored)
{
	static char *u3[] = { (char *)"lc:c\x1fu3" };
	static char *u4[] = { (char *)"lc:c\x1fu4" };
	static char *u5[] = { (char *)"lc:c\x1fu5" };
	static char *ab_broken[] = { (char *)"lc:c\x1f" "a\nb" };
	static char *ab_spaced[] = { (char *)"lc:c\x1f" "a b" };
	static char *u5_twice[] = {
		(char *)"lc:c\x1fu5", (char *)"lc:c\x1fu5"
	};
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);
	struct taken_work t = { 0 };
	struct ingest_delivery b, c, e, f, g, h, j, k;
	struct ingest_notification nb[2], nc[2], ne[2], nf[2], ng[2], nh[2];
	struct ingest_notification nj[2], nk[2];

	/* 1 (u1, u2) and 2 (d:1), open. */
	ingest_committed(s, "a");
	whr_store_pipeline(s, true);
	/* 3 (u1, u2) behind 1; 4 (d:2), 5 (u3) and 6 (d:3) first of
	 * their keys; 7 and 8 of one delivery without keys (d:4): 8
	 * behind 7. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&b, nb, "b", 1);
	delivery(&c, nc, "c", 1);
	nc[0].keys = u3;
	nc[0].n_keys = 1;
	delivery(&e, ne, "e", 1);
	ne[0].keys = NULL;
	ne[0].n_keys = 0;
	ck_assert_int_eq(whr_store_ingest(s, &b), 0);
	ck_assert_int_eq(whr_store_ingest(s, &c), 0);
	ck_assert_int_eq(whr_store_ingest(s, &e), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 8, 60000000), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(ne[1].id, 8);
	ck_assert_str_eq(leased_flags(&b), "01");
	ck_assert_str_eq(leased_flags(&c), "11");
	ck_assert_str_eq(leased_flags(&e), "10");
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"
		" WHERE lease_owner IS NOT NULL AND lease_until"
		" > (extract(epoch FROM now()) + 50) * 1000000"), 6);
	/* The claim after them found the older work, 1 and 2, but not
	 * those again; another finds nothing (3 and 8 wait). */
	ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), 0);
	ck_assert_uint_eq(t.n, 2);
	ck_assert_int_eq(t.ids[0], 1);
	ck_assert_int_eq(t.ids[1], 2);
	taken_work_free(&t);
	ck_assert_str_eq(leased_ids(s), "1,2,4,5,6,7");
	ck_assert_str_eq(claimed(other, 60000000), "");

	/* At most as many as asked: 9 (u4) and 10 (d:5), not 11 (u3,
	 * behind 5), nor 12 (d:6, past the amount). */
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&f, nf, "f", 1);
	nf[0].keys = u4;
	nf[0].n_keys = 1;
	delivery(&g, ng, "g", 1);
	ng[0].keys = u3;
	ng[0].n_keys = 1;
	ck_assert_int_eq(whr_store_ingest(s, &f), 0);
	ck_assert_int_eq(whr_store_ingest(s, &g), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 0, 2, 60000000), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_str_eq(leased_flags(&f), "11");
	ck_assert_str_eq(leased_flags(&g), "00");
	ck_assert_int_eq(nf[0].id, 9);
	ck_assert_int_eq(ng[1].id, 12);
	ck_assert_str_eq(leased_ids(s), "1,2,4,5,6,7,9,10");

	/* Of one batch's notifications of a key, the first only: 13 (u5,
	 * named twice, not behind itself) and 14 (d:7), not 15 (u5,
	 * behind 13); 16 (d:8). */
	keyed_delivery(&j, nj, "j", u5_twice, 2);
	keyed_delivery(&k, nk, "k", u5, 1);
	ingest_pair_leasing(s, &j, &k);
	ck_assert_int_eq(nk[1].id, 16);
	ck_assert_str_eq(leased_flags(&j), "11");
	ck_assert_str_eq(leased_flags(&k), "01");
	ck_assert_str_eq(leased_ids(s), "1,2,4,5,6,7,9,10,13,14,16");

	/* Keys as stored: a line break in a key is stored as a space, so
	 * 19 (a b) is behind 17 (a, line break, b); 18 and 20 (d:9,
	 * d:10). */
	keyed_delivery(&j, nj, "l", ab_broken, 1);
	keyed_delivery(&k, nk, "m", ab_spaced, 1);
	ingest_pair_leasing(s, &j, &k);
	ck_assert_int_eq(nk[1].id, 20);
	ck_assert_str_eq(leased_flags(&j), "11");
	ck_assert_str_eq(leased_flags(&k), "01");
	ck_assert_str_eq(leased_ids(s),
			 "1,2,4,5,6,7,9,10,13,14,16,17,18,20");

	/* Another's claim holds the claim lock: nothing is leased, and
	 * the caller is told. */
	ck_assert_int_eq(whr_store_begin(other), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(other, 8, 0, 60000000), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&h, nh, "h", 1);
	nh[0].keys = NULL;
	nh[0].n_keys = 0;
	ck_assert_int_eq(whr_store_ingest(s, &h), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 0, 8, 60000000), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), -EAGAIN);
	ck_assert_str_eq(leased_flags(&h), "00");
	ck_assert_int_eq(whr_store_commit(other), 0);
	ck_assert_int_eq(whr_store_take_claimed(other, take_work, &t), 0);
	taken_work_free(&t);

	/* Not pipelined, the deliveries were stored before the claim
	 * lock: nothing is leased as it is stored. */
	whr_store_pipeline(s, false);
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&h, nh, "i", 1);
	nh[0].keys = NULL;
	nh[0].n_keys = 0;
	ck_assert_int_eq(whr_store_ingest(s, &h), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(s, 0, 8, 60000000), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), 0);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_str_eq(leased_flags(&h), "00");
	whr_store_close(other);
	test_store_discard(s);
}
END_TEST

START_TEST(store_claim_at_commit)
{
	claim_at_commit(false);
}
END_TEST

START_TEST(store_claim_at_commit_piped)
{
	claim_at_commit(true);
}
END_TEST

/* A stopped claim leases only what its caller took. */
static int
take_one(struct store_claim *c, void *arg)
{
	int *taken = arg;

	return (*taken)++ == 0 ? 0 : 1;
}

/* A lease that ran out is taken over by the next claim; a renewed one
 * is not; settling ends it. */
START_TEST(store_lease_takeover)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);
	const int64_t held[] = { 1 };
	int taken = 0;

	ingest_committed(s, "a");

	ck_assert_int_eq(whr_store_claim(s, 0, -1, 200000, take_one, &taken),
			 0);
	ck_assert_int_eq(taken, 2);
	/* 2 was given back; 1 is leased. */
	ck_assert_str_eq(claimed(other, 60000000), "2;");
	settle_committed(other, 2, WORK_DONE, 0, NULL);
	ck_assert_int_eq(whr_store_renew(s, held, 1, 200000), 1);
	usleep(100000);
	ck_assert_int_eq(whr_store_renew(s, held, 1, 200000), 1);
	usleep(100000);
	ck_assert_str_eq(claimed(other, 60000000), "");
	/* Its owner died: once the lease ran out, another takes it. */
	usleep(250000);
	ck_assert_str_eq(claimed(other, 60000000), "1;");
	settle_committed(other, 1, WORK_DONE, 0, NULL);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"
				   " WHERE id = 1 AND lease_owner IS NULL"
				   " AND lease_until IS NULL"), 1);
	whr_store_close(other);
	test_store_discard(s);
}
END_TEST

/* Replicas starting at the same moment on an empty database: the
 * migration runs once, and every one of them opens. */
START_TEST(store_migrations_once)
{
	char location[2048];
	pthread_barrier_t start;
	struct replica o[3];
	const char *log;
	const char *p;
	int created = 0;
	size_t i;

	snprintf(location, sizeof(location), "%s", test_store_location());
	test_log_clear();
	pthread_barrier_init(&start, NULL, ARRAY_LENGTH(o));
	for (i = 0; i < ARRAY_LENGTH(o); i++) {
		o[i] = (struct replica){ .location = location,
					 .start = &start };
		replica_start(&o[i]);
	}
	for (i = 0; i < ARRAY_LENGTH(o); i++)
		ck_assert_int_eq(replica_join(&o[i]), 0);
	pthread_barrier_destroy(&start);
	log = test_log_text();
	for (p = log; (p = strstr(p, "created inbox")) != NULL; p++)
		created++;
	ck_assert_msg(created == 1, "%s", log);
	test_store_remove(location);
}
END_TEST

/* One replica purges at a time: another's purge meanwhile finds
 * nothing, at once. */
START_TEST(store_purge_one_at_a_time)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);
	int64_t id;

	ck_assert_int_eq(whr_store_begin(s), 0);
	ingest(s, "a", 1, 1);
	ingest(s, "b", 1, 1);
	for (id = 1; id <= 4; id++)
		ck_assert_int_eq(whr_store_settle(s, id, WORK_DONE, 0, NULL, 5),
				 0);
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
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM deliveries"), 0);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM"
				   " notification_keys"), 0);
	whr_store_close(other);
	test_store_discard(s);
}
END_TEST

/* A whr one version older runs on a schema whose migration kept what it
 * uses (replicas upgraded one at a time); a server open never lowers
 * the version. */
START_TEST(store_runs_on_compatible_schema)
{
	struct whr_store *s = test_store_fresh();

	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s),
		"UPDATE whr_meta SET value = CASE key WHEN 'schema_version'"
		" THEN 4 ELSE 1 END WHERE key IN ('schema_version',"
		" 'schema_compatible')"), 0);
	whr_store_close(open_again(STORE_SERVER));
	whr_store_close(open_again(STORE_WORKER));
	ck_assert_int_eq(query_int(s, "SELECT value FROM whr_meta"
				   " WHERE key = 'schema_version'"), 4);
	test_store_discard(s);
}
END_TEST

static const char open_index[] =
	"SELECT count(*) FROM pg_indexes"
	" WHERE indexname = 'notifications_open'";
static const char compatible[] =
	"SELECT value FROM whr_meta WHERE key = 'schema_compatible'";
/* Version 1's and 2's index of open work, which a fresh inbox has not. */
#define OPEN_INDEX \
	"CREATE INDEX notifications_open ON notifications (id)" \
	" WHERE state IN ('pending', 'retrying');"

/* Run @p sql on inbox @p s (an older schema, made by hand), then open it
 * as a server does: it migrates, logging @p logged (NULL: not looked
 * at). */
static void
reopen_migrated(struct whr_store *s, const char *sql, const char *logged)
{
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s), sql), 0);
	test_log_clear();
	whr_store_close(open_again(STORE_SERVER));
	if (logged != NULL)
		ck_assert_ptr_nonnull(strstr(test_log_text(), logged));
}

/* Version 1 migrates to 3: the notifications' pages keep room for their
 * leases' updates (version 2; a fresh inbox has it too), and the index
 * of open work stays for version 2's whr, which still runs on it. */
START_TEST(store_migrates_to_fill_factor)
{
	static const char half_filled[] =
		"SELECT count(*) FROM pg_class WHERE oid ="
		" 'notifications'::regclass"
		" AND 'fillfactor=50' = ANY (reloptions)";
	struct whr_store *s = test_store_fresh();

	ck_assert_int_eq(query_int(s, half_filled), 1);
	reopen_migrated(s, "ALTER TABLE notifications RESET (fillfactor);"
			OPEN_INDEX " UPDATE whr_meta SET value = 1 WHERE key IN"
			" ('schema_version', 'schema_compatible')",
			"schema version 1, migrated to 3");
	ck_assert_int_eq(query_int(s, half_filled), 1);
	ck_assert_int_eq(query_int(s, open_index), 1);
	ck_assert_int_eq(query_int(s, compatible), 2);
	test_store_discard(s);
}
END_TEST

/* The migration to version 3 gives open work without keys rows its
 * keys (version 3 finds open work by them), an empty keys column its
 * delivery's key, as ingest writes them. */
START_TEST(store_migration_3_gives_open_work_its_keys)
{
	struct whr_store *s = test_store_fresh();
	struct store_gauges g;

	ingest_committed(s, "a");	/* 1: keys u1 and u2; 2: d:1 */
	reopen_migrated(s, OPEN_INDEX
			"UPDATE notifications SET keys = '' WHERE id = 2;"
			" DELETE FROM notification_keys;"
			" UPDATE whr_meta SET value = 2 WHERE key IN"
			" ('schema_version', 'schema_compatible')", NULL);
	ck_assert_str_eq(test_query_text(whr_store_tx(s),
		"SELECT string_agg(notification_id || ':' || key, ' '"
		" ORDER BY notification_id, key) FROM notification_keys"),
		"1:lc:c\x1fu1 1:lc:c\x1fu2 2:d:1");
	ck_assert_str_eq(test_query_text(whr_store_tx(s),
		"SELECT keys FROM notifications WHERE id = 2"), "d:1");
	ck_assert_int_eq(whr_store_gauges(s, &g), 0);
	ck_assert_int_eq(g.open, 2);
	ck_assert_str_eq(claimed(s, 60000000), "1;2;");
	test_store_discard(s);
}
END_TEST

/* Deliveries a and b (notifications 1 to 4), 2 finished done and 3
 * dead; then open work is found, by every way whr asks for it, as 1 (two
 * keys) and 4 (received at 1); then none. */
static void
check_open_work(struct whr_store *s)
{
	struct store_gauges g;
	struct store_stats st;

	ingest_committed(s, "a");
	ingest_committed(s, "b");
	settle_committed(s, 2, WORK_DONE, 5, NULL);
	settle_committed(s, 3, WORK_DEAD, 5, "x");
	ck_assert_int_eq(whr_store_count_open(s, 0), 2);
	ck_assert_int_eq(whr_store_count_open(s, 1), 1);
	ck_assert_int_eq(whr_store_count_open(s, 4), 0);
	ck_assert_int_eq(whr_store_gauges(s, &g), 0);
	ck_assert_int_eq(g.open, 2);
	ck_assert_int_eq(g.oldest_open_at, 1);
	ck_assert_int_eq(whr_store_stats(s, &st, NULL, NULL), 0);
	ck_assert(st.has_oldest_open);
	ck_assert_int_eq(st.oldest_open, 1);
	/* The first by id, for as many as asked. */
	ck_assert_str_eq(claimed_by(s, 0, 1, 0, collect_ids), "1;");
	ck_assert_str_eq(claimed_by(s, 1, -1, 60000000, collect_ids), "4;");
	ck_assert_str_eq(claimed(s, 60000000), "1;");
	ck_assert_int_eq(whr_store_renew(s, NULL, 0, 60000000), 2);
	settle_committed(s, 1, WORK_DONE, 5, NULL);
	settle_committed(s, 4, WORK_DONE, 5, NULL);
	ck_assert_int_eq(whr_store_count_open(s, 0), 0);
	ck_assert_int_eq(whr_store_gauges(s, &g), 0);
	ck_assert_int_eq(g.open, 0);
	ck_assert_int_eq(g.oldest_open_at, 0);
	ck_assert_int_eq(whr_store_stats(s, &st, NULL, NULL), 0);
	ck_assert(!st.has_oldest_open);
	ck_assert_int_eq(whr_store_renew(s, NULL, 0, 60000000), 0);
}

/* Version 3 finds open work by its keys. A new inbox goes without the
 * index of open work, and only version 3 on runs on it; one migrated
 * from version 2 keeps it, and version 2 still runs on it. Open work is
 * found the same either way. */
START_TEST(store_finds_open_work_by_its_keys)
{
	struct whr_store *s = test_store_fresh();

	ck_assert_int_eq(query_int(s, open_index), 0);
	ck_assert_int_eq(query_int(s, compatible), 3);
	check_open_work(s);
	test_store_discard(s);

	s = test_store_fresh();
	reopen_migrated(s, OPEN_INDEX " UPDATE whr_meta SET value = 2"
			" WHERE key IN ('schema_version', 'schema_compatible')",
			"schema version 2, migrated to 3");
	ck_assert_int_eq(query_int(s, open_index), 1);
	ck_assert_int_eq(query_int(s, compatible), 2);
	check_open_work(s);
	test_store_discard(s);
}
END_TEST

static const char *
synchronous_commit(struct whr_store *s)
{
	return test_query_text(whr_store_tx(s),
			       "SELECT current_setting('synchronous_commit')");
}

/* Batches nobody is answered for commit without waiting for the disk;
 * the others, and the probe, wait. */
START_TEST(store_sync_commits)
{
	struct whr_store *s = test_store_fresh();

	ck_assert_int_eq(whr_store_sync_commits(s, false), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_str_eq(synchronous_commit(s), "off");
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_str_eq(synchronous_commit(s), "on");
	ck_assert_int_eq(whr_store_sync_commits(s, true), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_str_eq(synchronous_commit(s), "on");
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_sync_commits(s, false), 0);
	ck_assert_int_eq(whr_store_probe(s), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_str_eq(synchronous_commit(s), "on");
	whr_store_rollback(s);
	test_store_discard(s);
}
END_TEST

/* Whether notification @p id is still this process's to write, checked
 * in a transaction of its own. */
static int
own_alone(struct whr_store *s, int64_t id)
{
	int rc;

	ck_assert_int_eq(whr_store_begin(s), 0);
	rc = whr_store_own(s, id);
	whr_store_rollback(s);
	return rc;
}

/* A claim is checked before a run is written: this process's while no
 * other process claimed it, also after its lease ran out (and renewing
 * extends it again); another's once another claimed it, and locked for
 * the transaction that checked it. */
START_TEST(store_own_claims)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);

	ingest_committed(s, "a");
	ck_assert_str_eq(claimed(s, 100000), "1;2;");
	usleep(150000);
	/* Ran out, nobody took it: still ours, renewed. */
	ck_assert_int_eq(own_alone(s, 1), 0);
	ck_assert_int_eq(whr_store_renew(s, NULL, 0, 60000000), 2);
	ck_assert_str_eq(claimed(other, 60000000), "");
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
	ck_assert_str_eq(claimed(other, 60000000), "");
	ck_assert_int_eq(whr_store_settle(s, 2, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	/* Settled: not open, so not ours either. */
	ck_assert_int_eq(own_alone(s, 2), -ESTALE);
	whr_store_close(other);
	test_store_discard(s);
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
	struct whr_store *s = test_store_fresh();
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
	test_store_discard(s);
}
END_TEST

/* The gauges a shared store's replicas read every second. */
START_TEST(store_gauges)
{
	struct whr_store *s = test_store_fresh();
	struct store_gauges g = { -1, -1 };

	ck_assert_int_eq(whr_store_gauges(s, &g), 0);
	ck_assert_int_eq(g.open, 0);
	ck_assert_int_eq(g.oldest_open_at, 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ingest(s, "a", 1, 1000);
	ingest(s, "b", 1, 2000);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_settle(s, 2, WORK_DEAD, 0, "no", 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_gauges(s, &g), 0);
	ck_assert_int_eq(g.open, 2);
	ck_assert_int_eq(g.oldest_open_at, 2000);
	test_store_discard(s);
}
END_TEST

/* Lock row b, then (after the test's handler waits on b) row a. */
static int
lock_b_then_a(struct whr_store *s, void *arg)
{
	struct whr_tx *tx = whr_store_tx(s);
	int rc = -EIO;

	if (whr_store_begin(s) == 0 &&
	    whr_tx_exec(tx, "UPDATE t SET n = n + 1 WHERE k = 'b'") == 0) {
		usleep(300000);
		rc = whr_tx_exec(tx, "UPDATE t SET n = n + 1 WHERE k = 'a'");
		if (rc == 0)
			rc = whr_store_commit(s);
	}
	whr_store_rollback(s);
	return rc;
}

/* A handler's statement that the database breaks off for a deadlock
 * with another replica ends its batch (-EDEADLK, tried again at once),
 * not with a retry of the handler seconds later. */
START_TEST(store_handler_deadlock)
{
	struct whr_store *s = test_store_fresh();
	struct whr_tx *tx = whr_store_tx(s);
	struct replica other = {
		.location = test_store_fresh_location(),
		.work = lock_b_then_a,
	};
	int rc;

	ck_assert_int_eq(whr_tx_exec(tx, "CREATE TABLE t (k TEXT PRIMARY KEY,"
				     " n INTEGER); INSERT INTO t VALUES"
				     " ('a', 0), ('b', 0)"), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_tx_exec(tx, "UPDATE t SET n = n + 1"
				     " WHERE k = 'a'"), 0);
	replica_start(&other);
	usleep(100000);
	ck_assert_int_eq(whr_store_handler_begin(s), 0);
	rc = whr_tx_exec(tx, "UPDATE t SET n = n + 1 WHERE k = 'b'");
	if (rc == -EDEADLK) {
		ck_assert_int_eq(whr_store_handler_end(s, "h", true), -EDEADLK);
		ck_assert_ptr_nonnull(strstr(whr_store_error(s), "handler h:"));
		whr_store_rollback(s);
		ck_assert_int_eq(replica_join(&other), 0);
	} else {
		/* The other one was chosen: ours went through. */
		ck_assert_int_eq(rc, 0);
		ck_assert_int_eq(whr_store_handler_end(s, "h", true), 0);
		ck_assert_int_eq(whr_store_commit(s), 0);
		ck_assert_int_eq(replica_join(&other), -EDEADLK);
	}
	test_store_discard(s);
}
END_TEST

/* A run whose lease ran out, and that another replica claimed and
 * finished meanwhile, writes nothing when it ends late: the finished
 * notification is not opened again (without its keys), nor its
 * outcomes overwritten. */
static void
late_run_after_takeover(bool piped)
{
	struct whr_store *s = test_store_fresh();

	ingest_committed(s, "a");
	ck_assert_str_eq(claimed(s, 60000000), "1;2;");
	/* Another replica took 1 over and settled it done (by hand: this
	 * process's stores all claim as one). */
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s),
		"INSERT INTO outcomes VALUES (1, 'h', 'done', 1, NULL, 7);"
		" UPDATE notifications SET state = 'done', runs = 1,"
		" lease_owner = NULL, lease_until = NULL WHERE id = 1;"
		" DELETE FROM notification_keys WHERE notification_id = 1"), 0);
	/* This replica's run of 1 ends now, asking for a retry. */
	whr_store_pipeline(s, piped);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h", WHR_RETRY,
						  "late", 9), 0);
	ck_assert_int_eq(whr_store_settle(s, 1, WORK_RETRYING, 0, "late", 9),
			 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"
				   " WHERE id = 1 AND state = 'done'"
				   " AND runs = 1"), 1);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM outcomes"
				   " WHERE notification_id = 1"
				   " AND result = 'done' AND runs = 1"), 1);
	ck_assert_int_eq(whr_store_renew(s, NULL, 0, 0), 1);
	usleep(1000);
	ck_assert_str_eq(claimed(s, 60000000), "2;");
	test_store_discard(s);
}

START_TEST(store_late_run_after_takeover)
{
	late_run_after_takeover(false);
}
END_TEST

/* Piped, outcomes and states go in one statement (ST_FINISH). */
START_TEST(store_late_run_after_takeover_piped)
{
	late_run_after_takeover(true);
}
END_TEST

/* The ids whr_store_keep_leases() renews, set by the test as it goes. */
struct kept {
	int n;
	int64_t ids[2];
};

static size_t
kept_ids(void *arg, int64_t *ids, size_t max)
{
	struct kept *k = arg;
	int n = __atomic_load_n(&k->n, __ATOMIC_SEQ_CST);
	int i;

	for (i = 0; i < n && (size_t)i < max; i++)
		ids[i] = k->ids[i];
	return (size_t)n;
}

/* Leases kept from the listener's connection: renewed while the
 * store's own connection is in a transaction holding one of them locked
 * (as a transactional handler's does), which is passed over, not waited
 * for; given up, they run out and another replica takes them over. */
START_TEST(store_leases_kept_from_the_listener)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);
	struct kept k = { 2, { 1, 2 } };
	int wakes = 0;

	ingest_committed(s, "a");
	ck_assert_str_eq(claimed(s, 400000), "1;2;");
	ck_assert_int_eq(whr_store_keep_leases(s, kept_ids, &k, 400000),
			 -EINVAL);
	ck_assert_int_eq(whr_store_listen(s, count_wake, &wakes), 0);
	ck_assert_int_eq(whr_store_keep_leases(s, kept_ids, &k, 400000), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_own(s, 1), 0);
	/* Two and a half leases: 2 renewed meanwhile, 1 locked. */
	usleep(1000000);
	ck_assert_str_eq(claimed(other, 60000000), "");
	whr_store_rollback(s);
	__atomic_store_n(&k.n, 0, __ATOMIC_SEQ_CST);
	usleep(700000);
	ck_assert_str_eq(claimed(other, 60000000), "1;2;");
	whr_store_close(other);
	test_store_discard(s);
}
END_TEST

/* Two replicas storing work of one key at once: the younger commits
 * first and is claimed; the older, committed after, must not run while
 * the younger is leased (never two of a key at the same time). */
START_TEST(store_key_never_twice_at_once)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);
	struct ingest_delivery d;
	struct ingest_notification n[2];

	/* s takes ids 1 and 2, other 3 and 4; other commits first. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_begin(other), 0);
	delivery(&d, n, "b", 1);
	ck_assert_int_eq(whr_store_ingest(other, &d), 0);
	ck_assert_int_eq(n[0].id, 3);
	ck_assert_int_eq(whr_store_commit(other), 0);
	ck_assert_str_eq(claimed(other, 60000000), "3;4;");
	ck_assert_int_eq(whr_store_commit(s), 0);
	/* 3 runs (leased): 1 shares its keys and waits; 2 does not. */
	ck_assert_str_eq(claimed(s, 60000000), "2;");
	/* 3 finished: 1 is the oldest open of its keys, and free. */
	settle_committed(other, 3, WORK_DONE, 0, NULL);
	ck_assert_str_eq(claimed(s, 60000000), "1;");
	whr_store_close(other);
	test_store_discard(s);
}
END_TEST

/* A run longer than its lease (a transactional handler's, its row locked
 * by its transaction, which renewals pass over): the older work of its
 * keys, committed late, waits for it all the same. Once the run ends
 * unsettled (its replica gone), its lease run out, it is taken over
 * before that older work, which waits for it still. */
START_TEST(store_key_waits_for_a_run_past_its_lease)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);
	struct ingest_delivery d;
	struct ingest_notification n[2];

	/* s takes ids 1 and 2, other 3 and 4; other commits first. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_begin(other), 0);
	delivery(&d, n, "b", 1);
	ck_assert_int_eq(whr_store_ingest(other, &d), 0);
	ck_assert_int_eq(whr_store_commit(other), 0);
	ck_assert_str_eq(claimed(other, 300000), "3;4;");
	ck_assert_int_eq(whr_store_begin(other), 0);
	ck_assert_int_eq(whr_store_own(other, 3), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	usleep(500000);
	/* 3's lease ran out as it runs: 1, of its keys, waits; 4's lease
	 * ran out too, and it is taken over. */
	ck_assert_str_eq(claimed(s, 60000000), "2;4;");
	/* The run ended with nothing written (its replica stopped). */
	whr_store_rollback(other);
	ck_assert_str_eq(claimed(s, 60000000), "3;");
	settle_committed(s, 3, WORK_DONE, 0, NULL);
	ck_assert_str_eq(claimed(s, 60000000), "1;");
	whr_store_close(other);
	test_store_discard(s);
}
END_TEST

/* The blocks of the keys' table and its two indexes this connection's
 * statements read since its statistics last went to the server: a
 * difference within one transaction is what its statements read. */
static int64_t
keys_blocks_read(struct whr_store *s)
{
	return query_int(s, "SELECT sum(pg_stat_get_xact_blocks_fetched(t))"
			    " FROM unnest(ARRAY['notification_keys'::regclass,"
			    " 'notification_keys_pkey',"
			    " 'notification_keys_notification']) AS t");
}

/* keys_blocks_read(), and of the notifications' table and indexes. */
static int64_t
work_blocks_read(struct whr_store *s)
{
	return keys_blocks_read(s) +
	       query_int(s, "SELECT sum(pg_stat_get_xact_blocks_fetched(t))"
			    " FROM unnest(ARRAY['notifications'::regclass,"
			    " 'notifications_pkey',"
			    " 'notifications_delivery']) AS t");
}

static void
must_do(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql,
		      PQerrorMessage(c));
	PQclear(res);
}

/* A settle finds the keys of the work it finishes by looking each up,
 * and so does a claim those of its candidates, never by reading the
 * keys' table or an index through: entries of finished work pile up
 * between vacuums, and a plan made while the queue was small and kept
 * must not read them all at every settle or claim, even when the
 * settle comes after a transactional handler (whose statements may
 * scan). Counted in the blocks of the keys' table and indexes each
 * statement read (the claim's of the notifications' too), after 9,000
 * keys of finished work. */
START_TEST(store_settle_and_claim_read_only_their_keys)
{
	struct whr_store *s = test_store_fresh();
	PGconn *c = PQconnectdb(test_store_fresh_location());
	struct whr_store *other;
	static struct ingest_delivery d[100];
	static struct ingest_notification n[100][2];
	static char ids[100][32];
	static char key[100][2][32];
	static char *keys[100][2];
	char id[32], sql[128], claims[SEEN_SIZE];
	int64_t i, j, next = 1, before, blocks, before_work, work_blocks;
	int k;

	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	/* Work came and went: the statistics say the queue is empty. */
	ingest_committed(s, "first");
	settle_committed(s, next++, WORK_DONE, 0, NULL);
	settle_committed(s, next++, WORK_DONE, 0, NULL);
	must_do(c, "ALTER TABLE notification_keys"
		   " SET (autovacuum_enabled = false)");
	must_do(c, "ALTER TABLE notifications"
		   " SET (autovacuum_enabled = false)");
	must_do(c, "VACUUM ANALYZE notification_keys");
	/* Another replica's claims and settles, their plans made and
	 * kept now, the settles after a transactional handler's work. */
	other = open_again(STORE_SERVER);
	query_int(other, "SELECT count(*) FROM set_config('plan_cache_mode',"
			 " 'force_generic_plan', false)");
	for (i = 0; i < 8; i++) {
		snprintf(id, sizeof(id), "plan-%lld", (long long)i);
		ingest_committed(s, id);
		claimed(other, 60000000);
		ck_assert_int_eq(whr_store_begin(other), 0);
		ck_assert_int_eq(whr_store_handler_begin(other), 0);
		ck_assert_int_eq(whr_store_handler_end(other, "h", true), 0);
		ck_assert_int_eq(whr_store_settle(other, next++, WORK_DONE, 0,
						  NULL, 5), 0);
		ck_assert_int_eq(whr_store_settle(other, next++, WORK_DONE, 0,
						  NULL, 5), 0);
		ck_assert_int_eq(whr_store_commit(other), 0);
	}
	/* 9,000 keys of finished work, not vacuumed away, each of its
	 * own (a pair, and d:SEQ). Piped: the deliveries are read at the
	 * commit. */
	whr_store_pipeline(s, true);
	for (i = 0; i < 30; i++) {
		ck_assert_int_eq(whr_store_begin(s), 0);
		for (j = 0; j < 100; j++) {
			snprintf(ids[j], sizeof(ids[j]), "pile-%lld",
				 (long long)(i * 100 + j));
			delivery(&d[j], n[j], ids[j], 1);
			for (k = 0; k < 2; k++) {
				snprintf(key[j][k], sizeof(key[j][k]),
					 "k%d-%lld", k, (long long)(i * 100 + j));
				keys[j][k] = key[j][k];
			}
			n[j][0].keys = keys[j];
			ck_assert_int_eq(whr_store_ingest(s, &d[j]), 0);
		}
		ck_assert_int_eq(whr_store_commit(s), 0);
		ck_assert_int_eq(whr_store_begin(s), 0);
		for (j = 0; j < 200; j++)
			ck_assert_int_eq(whr_store_settle(s, next++, WORK_DONE,
							  0, NULL, 5), 0);
		ck_assert_int_eq(whr_store_commit(s), 0);
	}
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"
				   " WHERE state = 'done'"), next - 1);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notification_keys"
				   " k JOIN notifications n"
				   " ON n.id = k.notification_id"
				   " WHERE n.state = 'done'"), 0);
	whr_store_pipeline(s, false);
	ingest_committed(s, "last");
	ck_assert_int_eq(whr_store_begin(other), 0);
	before = keys_blocks_read(other);
	ck_assert_int_eq(whr_store_settle(other, next, WORK_DONE, 0, NULL, 5),
			 0);
	blocks = keys_blocks_read(other) - before;
	ck_assert_int_eq(whr_store_commit(other), 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notification_keys"
		 " WHERE notification_id = %lld", (long long)next);
	ck_assert_int_eq(query_int(s, sql), 0);
	ck_assert_msg(blocks <= 24, "the settle read %lld blocks of the keys'"
		      " table and indexes", (long long)blocks);
	/* A claim looks each key of each candidate up (the older work
	 * and the younger leased work of each), and finds its candidates
	 * through the entries of open work's keys by id, which include
	 * those of finished work until a vacuum. */
	ingest_committed(s, "last-but-one");
	ck_assert_int_eq(whr_store_begin(other), 0);
	before = keys_blocks_read(other);
	before_work = work_blocks_read(other);
	ck_assert_int_eq(whr_store_claim_at_commit(other, 8, 0, 60000000), 0);
	blocks = keys_blocks_read(other) - before;
	work_blocks = work_blocks_read(other) - before_work - blocks;
	ck_assert_int_eq(whr_store_commit(other), 0);
	claims[0] = '\0';
	ck_assert_int_eq(whr_store_take_claimed(other, collect_ids, claims), 0);
	snprintf(sql, sizeof(sql), "%lld;%lld;%lld;", (long long)next + 1,
		 (long long)next + 2, (long long)next + 3);
	ck_assert_str_eq(claims, sql);
	/* About 80 of the keys: lookups of 4 keys, twice (20), the walk
	 * by id through the entries of finished work (40), and again,
	 * through the index alone, for the end of the claim's window, as
	 * the claim took less than it asked for (20). A read of a key
	 * index through is 30 more for each key. About 30 of the
	 * notifications: the candidates' rows. (Before schema version 3
	 * the candidates came from an index of open notifications, whose
	 * 6,000 entries of finished work, not vacuumed either, took 275
	 * blocks in all.) */
	ck_assert_msg(blocks <= 90, "the claim read %lld blocks of the keys'"
		      " table and indexes", (long long)blocks);
	ck_assert_msg(work_blocks <= 40, "the claim read %lld blocks of the"
		      " notifications' table and indexes",
		      (long long)work_blocks);
	PQfinish(c);
	whr_store_close(other);
	test_store_discard(s);
}
END_TEST

/* A transactional handler's statements may scan (the inbox's never
 * do); whatever it set, the connection's settings are the inbox's again
 * once it ended, its commit included: a SET of its own would otherwise
 * outlive the transaction, and every claim after it plan with scans. */
START_TEST(store_handler_settings_end_with_it)
{
	static const char scans[] =
		"SELECT current_setting('enable_seqscan') || ' '"
		" || current_setting('enable_bitmapscan')";
	struct whr_store *s = test_store_fresh();

	ck_assert_str_eq(test_query_text(whr_store_tx(s), scans), "off off");
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_handler_begin(s), 0);
	ck_assert_str_eq(test_query_text(whr_store_tx(s), scans), "on on");
	ck_assert_int_eq(whr_tx_exec(whr_store_tx(s),
				     "SET enable_seqscan = on"), 0);
	ck_assert_int_eq(whr_store_handler_end(s, "h", true), 0);
	ck_assert_str_eq(test_query_text(whr_store_tx(s), scans), "off off");
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_str_eq(test_query_text(whr_store_tx(s), scans), "off off");
	test_store_discard(s);
}
END_TEST

/* libpq's PQpipelineSync, made to fail once when asked: the library's
 * calls come here (it is linked into this program), and go on to
 * libpq's. */
static bool fail_next_sync;

int
PQpipelineSync(PGconn *conn)
{
	static int (*real)(PGconn *);

	if (fail_next_sync) {
		fail_next_sync = false;
		return 0;
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "PQpipelineSync");
	ck_assert_ptr_nonnull(real);
	return real(conn);
}

/* A pipelined commit whose sync point could not be sent, on a
 * connection still up, fails; its answers never read, the connection is
 * made again as the failed commit rolls back, the statements libpq held
 * never sent (their COMMIT would have stored "a", answered 503), and
 * the next transaction commits. */
START_TEST(store_pipeline_out_of_step_connects_again)
{
	struct whr_store *s = test_store_fresh();
	struct ingest_delivery d;
	struct ingest_notification n[2];
	struct whr_store *other = open_again(STORE_SERVER);
	int64_t session = query_int(s, "SELECT pg_backend_pid()");
	char sql[128];
	int tries;

	whr_store_pipeline(s, true);
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	fail_next_sync = true;
	ck_assert_int_lt(whr_store_commit(s), 0);
	ck_assert_ptr_nonnull(strstr(whr_store_error(s),
				     "cannot reach the database"));
	whr_store_rollback(s);
	/* Its session ended at once: it may hold locks. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity"
		 " WHERE pid = %lld", (long long)session);
	for (tries = 0; query_int(other, sql) > 0; tries++) {
		ck_assert_int_lt(tries, 500);
		usleep(10000);
	}
	ck_assert_int_ne(query_int(s, "SELECT pg_backend_pid()"), session);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM deliveries"), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&d, n, "b", 1);
	ck_assert_int_eq(whr_store_ingest(s, &d), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	whr_store_pipeline(s, false);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM deliveries"
				   " WHERE delivery_id = 'b'"), 1);
	whr_store_close(other);
	test_store_discard(s);
}
END_TEST

/* A run that held its row locked past its lease (a transactional
 * handler's, which renewals pass over) and goes on after its commit
 * (handlers left) has its lease made whole by that commit: no other
 * replica takes it over as it runs on. Its delivery's other
 * notification, not renewed, is. One settled in its commit keeps no
 * lease. Piped or not. */
static void
long_run_keeps_its_lease(bool piped)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);

	ingest_committed(s, "a");
	ingest_committed(s, "b");
	whr_store_pipeline(s, piped);
	ck_assert_str_eq(claimed(s, 400000), "1;2;4;");
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_own(s, 1), 0);
	usleep(600000);
	ck_assert_int_eq(whr_store_record_outcome(s, 1, "h", WHR_DONE, NULL,
						  5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_own(s, 4), 0);
	ck_assert_int_eq(whr_store_record_outcome(s, 4, "h", WHR_DONE, NULL,
						  5), 0);
	ck_assert_int_eq(whr_store_settle(s, 4, WORK_DONE, 0, NULL, 5), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(query_int(s, "SELECT count(*) FROM notifications"
				   " WHERE id = 4 AND state = 'done'"
				   " AND lease_owner IS NULL"), 1);
	/* 3 waits behind 1 (u1, u2), never claimed. */
	ck_assert_str_eq(claimed(other, 60000000), "2;");
	whr_store_close(other);
	test_store_discard(s);
}

START_TEST(store_long_run_keeps_its_lease)
{
	long_run_keeps_its_lease(false);
}
END_TEST

START_TEST(store_long_run_keeps_its_lease_piped)
{
	long_run_keeps_its_lease(true);
}
END_TEST

/* The same, with each replica claiming in the transaction that stores
 * its work, before either commits: each sees only its own notification
 * of the key, so the second claim must not be made beside the first.
 * It finds the claim lock taken and claims nothing; once the first
 * committed, a claim sees its lease and leaves the older one waiting.
 * Piped or not, and by a claim of its own transaction too. */
static void
claims_one_key_at_a_time(bool piped)
{
	struct whr_store *s = test_store_fresh();
	struct whr_store *other = open_again(STORE_SERVER);
	struct taken_work t = { 0 };
	struct ingest_delivery ds, dother;
	struct ingest_notification ns[2], nother[2];
	char want[64];

	whr_store_pipeline(s, piped);
	/* Each stores a notification of keys u1 and u2 and one of its
	 * delivery's key (piped, s's go to the server at its commit);
	 * other claims first, not piped: its claim runs now and holds the
	 * lock until its commit. */
	ck_assert_int_eq(whr_store_begin(s), 0);
	delivery(&ds, ns, "a", 1);
	ck_assert_int_eq(whr_store_ingest(s, &ds), 0);
	ck_assert_int_eq(whr_store_begin(other), 0);
	delivery(&dother, nother, "b", 1);
	ck_assert_int_eq(whr_store_ingest(other, &dother), 0);
	ck_assert_int_eq(whr_store_claim_at_commit(other, 8, 0, 60000000), 0);
	/* s, meanwhile: nothing, neither in its commit nor alone; it is
	 * told the lock was taken. */
	ck_assert_int_eq(whr_store_claim_at_commit(s, 8, 0, 60000000), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_int_eq(whr_store_take_claimed(s, take_work, &t), -EAGAIN);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_int_eq(whr_store_claim(s, 0, -1, 60000000, take_work, &t),
			 -EAGAIN);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_int_eq(whr_store_commit(other), 0);
	ck_assert_int_eq(whr_store_take_claimed(other, take_work, &t), 0);
	ck_assert_uint_eq(t.n, 2);
	ck_assert_int_eq(t.ids[0], nother[0].id);
	ck_assert_int_eq(t.ids[1], nother[1].id);
	taken_work_free(&t);
	/* other's runs: s's of the same keys waits; the other does not. */
	snprintf(want, sizeof(want), "%lld;", (long long)ns[1].id);
	ck_assert_str_eq(claimed(s, 60000000), want);
	settle_committed(other, nother[0].id, WORK_DONE, 0, NULL);
	snprintf(want, sizeof(want), "%lld;", (long long)ns[0].id);
	ck_assert_str_eq(claimed(s, 60000000), want);
	whr_store_close(other);
	test_store_discard(s);
}

START_TEST(store_claims_one_key_at_a_time)
{
	claims_one_key_at_a_time(false);
}
END_TEST

START_TEST(store_claims_one_key_at_a_time_piped)
{
	claims_one_key_at_a_time(true);
}
END_TEST

TEST_SUITE(store)
{
	ADD_EACH(s, store,
		 store_ingest_and_duplicates,
		 store_outcomes_and_finish,
		 store_pipelined_batch,
		 store_versions,
		 store_inspect,
		 store_data_version,
		 store_gauges,
		 store_claim_brings_work,
		 store_claim_at_commit,
		 store_claim_at_commit_piped);
	if (!test_backend_postgresql()) {
		ADD_EACH(s, store,
			 store_migrates_version_1,
			 store_database_location,
			 store_backup);
		return;
	}
	ADD_EACH(s, store,
		 store_concurrent_ingest,
		 store_concurrent_claims,
		 store_claim_eligible,
		 store_lease_takeover,
		 store_migrations_once,
		 store_purge_one_at_a_time,
		 store_runs_on_compatible_schema,
		 store_migrates_to_fill_factor,
		 store_finds_open_work_by_its_keys,
		 store_migration_3_gives_open_work_its_keys,
		 store_sync_commits,
		 store_own_claims,
		 store_notify_and_listen,
		 store_handler_deadlock,
		 store_late_run_after_takeover,
		 store_late_run_after_takeover_piped,
		 store_key_never_twice_at_once,
		 store_key_waits_for_a_run_past_its_lease,
		 store_settle_and_claim_read_only_their_keys,
		 store_pipeline_out_of_step_connects_again,
		 store_handler_settings_end_with_it,
		 store_leases_new_work_as_stored,
		 store_claim_window,
		 store_claim_window_many_keys,
		 store_claim_window_comes_back,
		 store_long_run_keeps_its_lease,
		 store_long_run_keeps_its_lease_piped,
		 store_claims_one_key_at_a_time,
		 store_claims_one_key_at_a_time_piped,
		 store_leases_kept_from_the_listener);
}
