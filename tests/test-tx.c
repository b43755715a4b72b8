/*
 * The transaction handle (whr/tx.h) on SQLite: preparing (and the cache
 * by SQL text), binding, stepping and reading, errors and their errnos,
 * exec, and the guard that keeps a handler from ending the inbox's
 * transaction.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <whr/tx.h>

#include "store/store.h"
#include "test-common.h"

static char dir[64];

static struct whr_store *
fresh_store(void)
{
	char why[512];
	struct whr_store *s;

	snprintf(dir, sizeof(dir), "/tmp/whr-tx-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	s = whr_store_open(dir, STORE_SERVER, why, sizeof(why));
	ck_assert_msg(s != NULL, "%s", why);
	return s;
}

static void
remove_store(struct whr_store *s)
{
	char cmd[128];

	whr_store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(tx_prepare_bind_step)
{
	struct whr_store *s = fresh_store();
	struct whr_tx *tx = whr_store_tx(s);
	struct whr_stmt *ins, *sel;
	static const char insert[] = "INSERT INTO t (k, v, n) VALUES (?1, ?2, ?3)";
	int i;

	ck_assert_int_eq(whr_tx_db(tx), WHR_DB_SQLITE);
	ck_assert_ptr_nonnull(whr_tx_native(tx));
	ck_assert_str_eq(whr_tx_error(tx), "");
	ck_assert_int_eq(whr_tx_exec(tx, "CREATE TABLE t (k TEXT PRIMARY KEY,"
					 " v TEXT, n INTEGER);"
					 "CREATE INDEX t_n ON t (n)"), 0);

	for (i = 0; i < 3; i++) {
		char key[8];

		snprintf(key, sizeof(key), "k%d", i);
		ins = whr_tx_prepare(tx, insert);
		ck_assert_ptr_nonnull(ins);
		/* Text is copied: the buffer may change before the step. */
		ck_assert_int_eq(whr_stmt_bind_text(ins, 1, key), 0);
		key[0] = 'x';
		ck_assert_int_eq(whr_stmt_bind_text(ins, 2, i == 1 ? NULL : "v"),
				 0);
		ck_assert_int_eq(whr_stmt_bind_int(ins, 3, INT64_C(1) << (40 + i)),
				 0);
		ck_assert_int_eq(whr_stmt_run(ins), 0);
		ck_assert_int_eq(whr_stmt_changes(ins), 1);
		/* Done: stepping again does not run it again. */
		ck_assert_int_eq(whr_stmt_step(ins), 0);
	}
	/* The same text is the same statement, reset and without bindings. */
	ck_assert_ptr_eq(whr_tx_prepare(tx, insert), ins);
	ck_assert_int_eq(whr_stmt_bind_text(ins, 1, "k9"), 0);
	ck_assert_int_eq(whr_stmt_run(ins), 0);

	sel = whr_tx_prepare(tx, "SELECT k, v, n FROM t WHERE n >= ?1 ORDER BY k");
	ck_assert_ptr_nonnull(sel);
	ck_assert_int_eq(whr_stmt_bind_int(sel, 1, INT64_C(1) << 41), 0);
	ck_assert_int_eq(whr_stmt_step(sel), 1);
	ck_assert_str_eq(whr_stmt_text(sel, 0), "k1");
	ck_assert(whr_stmt_is_null(sel, 1));
	ck_assert_ptr_null(whr_stmt_text(sel, 1));
	ck_assert_int_eq(whr_stmt_int(sel, 2), INT64_C(1) << 41);
	ck_assert_int_eq(whr_stmt_step(sel), 1);
	ck_assert_str_eq(whr_stmt_text(sel, 0), "k2");
	ck_assert(!whr_stmt_is_null(sel, 1));
	ck_assert(whr_stmt_is_null(sel, 7));	/* no such column */
	ck_assert_int_eq(whr_stmt_step(sel), 0);
	remove_store(s);
}
END_TEST

START_TEST(tx_errors)
{
	struct whr_store *s = fresh_store();
	struct whr_tx *tx = whr_store_tx(s);
	struct whr_stmt *st;

	ck_assert_int_eq(whr_tx_exec(tx, "CREATE TABLE u (k TEXT PRIMARY KEY)"),
			 0);
	/* Bad SQL: NULL, and the database's message. */
	ck_assert_ptr_null(whr_tx_prepare(tx, "SELEKT 1"));
	ck_assert_ptr_nonnull(strstr(whr_tx_error(tx), "syntax error"));
	/* One statement only; none at all is an error too. */
	ck_assert_ptr_null(whr_tx_prepare(tx, "SELECT 1; SELECT 2"));
	ck_assert_ptr_nonnull(strstr(whr_tx_error(tx), "more than one"));
	ck_assert_ptr_null(whr_tx_prepare(tx, "  "));
	ck_assert_ptr_nonnull(whr_tx_prepare(tx, "SELECT 1;"));
	/* A parameter the statement does not have. */
	st = whr_tx_prepare(tx, "INSERT INTO u (k) VALUES (?1)");
	ck_assert_int_eq(whr_stmt_bind_text(st, 2, "x"), -EINVAL);
	/* A unique key violated is -EEXIST; the statement is usable after. */
	ck_assert_int_eq(whr_stmt_bind_text(st, 1, "a"), 0);
	ck_assert_int_eq(whr_stmt_run(st), 0);
	st = whr_tx_prepare(tx, "INSERT INTO u (k) VALUES (?1)");
	ck_assert_int_eq(whr_stmt_bind_text(st, 1, "a"), 0);
	ck_assert_int_eq(whr_stmt_run(st), -EEXIST);
	ck_assert_ptr_nonnull(strstr(whr_tx_error(tx), "UNIQUE"));
	st = whr_tx_prepare(tx, "INSERT INTO u (k) VALUES (?1)");
	ck_assert_int_eq(whr_stmt_bind_text(st, 1, "b"), 0);
	ck_assert_int_eq(whr_stmt_run(st), 0);
	ck_assert_str_eq(whr_tx_error(tx), "");
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO nosuch VALUES (1)"),
			 -EIO);
	/* NULL arguments are misuse, not crashes. */
	ck_assert_ptr_null(whr_tx_prepare(NULL, "SELECT 1"));
	ck_assert_int_eq(whr_stmt_step(NULL), -EINVAL);
	remove_store(s);
}
END_TEST

/* Inside a handler's guard, the transaction is the inbox's: BEGIN,
 * COMMIT and ROLLBACK are refused (-EACCES), the handler's writes go
 * with the inbox's commit, and a handler that fails has its writes
 * undone. */
START_TEST(tx_guard)
{
	struct whr_store *s = fresh_store();
	struct whr_tx *tx = whr_store_tx(s);
	struct whr_stmt *st;

	ck_assert_int_eq(whr_tx_exec(tx, "CREATE TABLE g (k TEXT)"), 0);
	ck_assert_int_eq(whr_store_begin(s), 0);

	ck_assert_int_eq(whr_store_handler_begin(s), 0);
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO g VALUES ('kept')"), 0);
	ck_assert_int_eq(whr_tx_exec(tx, "COMMIT"), -EACCES);
	ck_assert_int_eq(whr_tx_exec(tx, "ROLLBACK"), -EACCES);
	ck_assert_int_eq(whr_tx_exec(tx, "BEGIN"), -EACCES);
	/* Savepoints of its own are fine. */
	ck_assert_int_eq(whr_tx_exec(tx, "SAVEPOINT mine; RELEASE mine"), 0);
	ck_assert_int_eq(whr_store_handler_end(s, "h1", true), 0);

	ck_assert_int_eq(whr_store_handler_begin(s), 0);
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO g VALUES ('undone')"),
			 0);
	ck_assert_int_eq(whr_store_handler_end(s, "h2", false), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);

	st = whr_tx_prepare(tx, "SELECT group_concat(k) FROM g");
	ck_assert_int_eq(whr_stmt_step(st), 1);
	ck_assert_str_eq(whr_stmt_text(st, 0), "kept");
	ck_assert_int_eq(whr_stmt_run(st), 0);
	remove_store(s);
}
END_TEST

/* Statements of SQL built anew at each call pile up in the cache; they
 * are dropped between handlers, and the handle still works. */
START_TEST(tx_cache_bound)
{
	struct whr_store *s = fresh_store();
	struct whr_tx *tx = whr_store_tx(s);
	char sql[64];
	int i;

	ck_assert_int_eq(whr_store_begin(s), 0);
	ck_assert_int_eq(whr_store_handler_begin(s), 0);
	for (i = 0; i < 600; i++) {
		struct whr_stmt *st;

		snprintf(sql, sizeof(sql), "SELECT %d", i);
		st = whr_tx_prepare(tx, sql);
		ck_assert_ptr_nonnull(st);
		ck_assert_int_eq(whr_stmt_step(st), 1);
		ck_assert_int_eq(whr_stmt_int(st, 0), i);
	}
	ck_assert_int_eq(whr_store_handler_end(s, "h", true), 0);
	ck_assert_int_eq(whr_store_commit(s), 0);
	ck_assert_ptr_nonnull(whr_tx_prepare(tx, "SELECT 1"));
	remove_store(s);
}
END_TEST

TEST_SUITE(tx)
{
	ADD_TEST(s, "prepare_bind_step", tx_prepare_bind_step);
	ADD_TEST(s, "errors", tx_errors);
	ADD_TEST(s, "guard", tx_guard);
	ADD_TEST(s, "cache_bound", tx_cache_bound);
}
