/*
 * The backends the storage interface's tests run on (test-backends.h).
 */
#include "test-backends.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store/store.h"

static const char *
postgres_url(void)
{
	const char *url = getenv("WHR_TEST_POSTGRES");

	return url != NULL && *url != '\0' ? url : NULL;
}

bool
test_backend_postgresql(void)
{
	return postgres_url() != NULL;
}

enum whr_db
test_backend_db(void)
{
	return postgres_url() != NULL ? WHR_DB_POSTGRESQL : WHR_DB_SQLITE;
}

const char *
test_by_db(const char *sqlite, const char *postgresql)
{
	return test_backend_db() == WHR_DB_SQLITE ? sqlite : postgresql;
}

/* Run @p sql on the test database, as the test's own client. */
static void
admin(const char *sql)
{
	PGconn *c = PQconnectdb(postgres_url());
	PGresult *res;

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "cannot connect: %s",
		      PQerrorMessage(c));
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	res = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql,
		      PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(c);
}

const char *
test_store_location(void)
{
	static char location[2048];
	static unsigned n;
	char sql[128];

	if (test_backend_db() == WHR_DB_SQLITE) {
		snprintf(location, sizeof(location), "/tmp/whr-store-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(location));
		return location;
	}
	/* Each test in a schema of its own, found first by search_path. */
	snprintf(sql, sizeof(sql), "CREATE SCHEMA t_%ld_%u", (long)getpid(),
		 n);
	admin(sql);
	snprintf(location, sizeof(location),
		 "%s%soptions=-csearch_path%%3Dt_%ld_%u", postgres_url(),
		 strchr(postgres_url(), '?') != NULL ? "&" : "?",
		 (long)getpid(), n);
	n++;
	return location;
}

void
test_store_remove(const char *location)
{
	char cmd[4200];
	const char *schema;

	if (test_backend_db() == WHR_DB_SQLITE) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", location);
		ck_assert_int_eq(system(cmd), 0);
		return;
	}
	schema = strstr(location, "search_path%3D");
	ck_assert_ptr_nonnull(schema);
	snprintf(cmd, sizeof(cmd), "DROP SCHEMA %s CASCADE",
		 schema + strlen("search_path%3D"));
	admin(cmd);
}

const char *
test_sql(const char *sql)
{
	static char ring[8][2048];
	static unsigned next;
	char *out = ring[next++ % 8];
	size_t n = 0;

	for (; *sql != '\0' && n + 1 < sizeof(ring[0]); sql++)
		out[n++] = *sql == '?' && test_backend_postgresql() ? '$'
								    : *sql;
	out[n] = '\0';
	return out;
}

static char fresh_location[2048];

struct whr_store *
test_store_fresh(void)
{
	char why[8192];
	struct whr_store *s;

	snprintf(fresh_location, sizeof(fresh_location), "%s",
		 test_store_location());
	s = whr_store_open(fresh_location, STORE_SERVER, why, sizeof(why));
	ck_assert_msg(s != NULL, "%s", why);
	return s;
}

const char *
test_store_fresh_location(void)
{
	return fresh_location;
}

void
test_store_discard(struct whr_store *s)
{
	whr_store_close(s);
	test_store_remove(fresh_location);
}

/* Prepared and stepped to its one row: exactly one, so a query that
 * matched more than it should fails. */
static struct whr_stmt *
one_row(struct whr_tx *tx, const char *sql)
{
	struct whr_stmt *st = whr_tx_prepare(tx, test_sql(sql));

	ck_assert_msg(st != NULL, "%s: %s", sql, whr_tx_error(tx));
	ck_assert_msg(whr_stmt_step(st) == 1, "%s: no row", sql);
	return st;
}

int64_t
test_query_int(struct whr_tx *tx, const char *sql)
{
	struct whr_stmt *st = one_row(tx, sql);
	int64_t v = whr_stmt_int(st, 0);

	ck_assert_msg(whr_stmt_step(st) == 0, "%s: more than one row", sql);
	return v;
}

const char *
test_query_text(struct whr_tx *tx, const char *sql)
{
	static char text[1024];
	struct whr_stmt *st = one_row(tx, sql);
	const char *v = whr_stmt_text(st, 0);

	if (v != NULL)
		snprintf(text, sizeof(text), "%s", v);
	ck_assert_msg(whr_stmt_step(st) == 0, "%s: more than one row", sql);
	return v != NULL ? text : NULL;
}
