/*
 * The storage interface's tests run on every backend (issue 15): SQLite
 * always (a temporary data folder per test), PostgreSQL when
 * WHR_TEST_POSTGRES names a database (a fresh schema per test, in the
 * cluster tests/integration/whrtest/postgres.py starts for suite
 * postgres). A test added with ADD_BACKEND_TEST runs once per backend,
 * with the backend's number in _i.
 */
#ifndef WHR_TEST_BACKENDS_H
#define WHR_TEST_BACKENDS_H

#include <stdbool.h>

#include <whr/tx.h>

#include "test-common.h"

/* Add @p fn to a TCase, looped over the backends. */
#define ADD_BACKEND_TEST(suite, tcase_name, fn)                              \
	do {                                                                 \
		TCase *tc_ = tcase_create(tcase_name);                       \
		tcase_add_loop_test(tc_, fn, 0, test_backend_count());       \
		suite_add_tcase((suite), tc_);                               \
	} while (0)

/* How many backends the tests run on: 1, SQLite; or, with
 * WHR_TEST_POSTGRES, 1, PostgreSQL (the unit suite runs SQLite's). */
int test_backend_count(void);

/* Backend @p i's database. */
enum whr_db test_backend_db(int i);

/* Whether PostgreSQL is among the backends (PostgreSQL-only tests). */
bool test_backend_postgresql(void);

/* A fresh, empty location for backend @p i: a new temporary folder, or a
 * new schema of the test database as a URL. Borrowed until the next
 * call; test_store_remove() removes what it made. */
const char *test_store_location(int i);
void test_store_remove(int i, const char *location);

struct whr_store;

/* What most storage tests start from: a new, empty store on backend
 * @p i at a fresh test_store_location(), opened as whr serve opens it;
 * test_store_fresh_location() says where until test_store_discard()
 * closes it and removes the location. */
struct whr_store *test_store_fresh(int i);
const char *test_store_fresh_location(void);
void test_store_discard(int i, struct whr_store *s);

/* @p sql, written for SQLite (?1, ?2 ...), in backend @p i's dialect
 * ($1, $2 ...). Borrowed from a ring of eight buffers. */
const char *test_sql(int i, const char *sql);

#endif /* WHR_TEST_BACKENDS_H */
