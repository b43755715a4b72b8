/*
 * The storage interface's tests run on every backend (issue 15), one per
 * run of a test executable: SQLite (a temporary data folder per test), or
 * PostgreSQL when WHR_TEST_POSTGRES names a database (a fresh schema per
 * test, in the cluster tests/integration/whrtest/postgres.py starts for
 * suite postgres).
 */
#ifndef WHR_TEST_BACKENDS_H
#define WHR_TEST_BACKENDS_H

#include <stdbool.h>
#include <stdint.h>

#include <whr/tx.h>

#include "test-common.h"

/* This run's backend's database. */
enum whr_db test_backend_db(void);

/* Whether this run is on PostgreSQL (PostgreSQL-only tests). */
bool test_backend_postgresql(void);

/* Where the backends differ by design: @p sqlite or @p postgresql. */
const char *test_by_db(const char *sqlite, const char *postgresql);

/* A fresh, empty location: a new temporary folder, or a new schema of
 * the test database as a URL. Borrowed until the next call;
 * test_store_remove() removes what it made. */
const char *test_store_location(void);
void test_store_remove(const char *location);

struct whr_store;

/* What most storage tests start from: a new, empty store at a fresh
 * test_store_location(), opened as whr serve opens it;
 * test_store_fresh_location() says where until test_store_discard()
 * closes it and removes the location. */
struct whr_store *test_store_fresh(void);
const char *test_store_fresh_location(void);
void test_store_discard(struct whr_store *s);

/* @p sql, written for SQLite (?1, ?2 ...), in this backend's dialect
 * ($1, $2 ...). Borrowed from a ring of eight buffers. */
const char *test_sql(const char *sql);

/* The one row and column @p sql (in SQLite's dialect) gives on @p tx:
 * an integer, or a text (NULL for NULL; borrowed until the next call). */
int64_t test_query_int(struct whr_tx *tx, const char *sql);
const char *test_query_text(struct whr_tx *tx, const char *sql);

#endif /* WHR_TEST_BACKENDS_H */
