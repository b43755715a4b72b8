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

int
test_backend_count(void)
{
	return 1;
}

bool
test_backend_postgresql(void)
{
	return postgres_url() != NULL;
}

enum whr_db
test_backend_db(int i)
{
	return postgres_url() != NULL ? WHR_DB_POSTGRESQL : WHR_DB_SQLITE;
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
test_store_location(int i)
{
	static char location[2048];
	static unsigned n;
	char sql[128];

	if (test_backend_db(i) == WHR_DB_SQLITE) {
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
test_store_remove(int i, const char *location)
{
	char cmd[4200];
	const char *schema;

	if (test_backend_db(i) == WHR_DB_SQLITE) {
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
test_sql(int i, const char *sql)
{
	static char ring[8][2048];
	static unsigned next;
	char *out = ring[next++ % 8];
	size_t n = 0;

	for (; *sql != '\0' && n + 1 < sizeof(ring[0]); sql++)
		out[n++] = *sql == '?' && test_backend_db(i) ==
						  WHR_DB_POSTGRESQL
				   ? '$'
				   : *sql;
	out[n] = '\0';
	return out;
}

static char fresh_location[2048];

struct whr_store *
test_store_fresh(int i)
{
	char why[8192];
	struct whr_store *s;

	snprintf(fresh_location, sizeof(fresh_location), "%s",
		 test_store_location(i));
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
test_store_discard(int i, struct whr_store *s)
{
	whr_store_close(s);
	test_store_remove(i, fresh_location);
}
