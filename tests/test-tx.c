/*
 * The transaction handle (whr/tx.h) on each backend (test-backends.h):
 * preparing (and the cache by SQL text), binding, stepping and reading,
 * errors and their errnos, exec, and the guard that keeps a handler from
 * ending the inbox's transaction.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <whr/tx.h>

#include "store/store.h"
#include "test-backends.h"

/* Each test's store and its handle (the fixture). */
static struct whr_store *store;
static struct whr_tx *tx;

static void
store_setup(void)
{
	store = test_store_fresh();
	tx = whr_store_tx(store);
}

static void
store_teardown(void)
{
	test_store_discard(store);
}

/* The inbox's transaction begun, and a handler's guard in it. */
static void
in_handler(void)
{
	ck_assert_int_eq(whr_store_begin(store), 0);
	ck_assert_int_eq(whr_store_handler_begin(store), 0);
}

START_TEST(tx_prepare_bind_step)
{
	struct whr_stmt *ins, *sel;
	char insert[64];
	int i;

	snprintf(insert, sizeof(insert), "%s",
		 test_sql("INSERT INTO t (k, v, n) VALUES (?1, ?2, ?3)"));
	ck_assert_int_eq(whr_tx_db(tx), test_backend_db());
	ck_assert_ptr_nonnull(whr_tx_native(tx));
	ck_assert_str_eq(whr_tx_error(tx), "");
	ck_assert_int_eq(whr_tx_exec(tx, "CREATE TABLE t (k TEXT PRIMARY KEY,"
					 " v TEXT, n BIGINT);"
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
	/* Once run, a statement takes no bindings (each database would
	 * take them its own way): -EINVAL, saying to prepare it again. */
	ck_assert_int_eq(whr_stmt_bind_text(ins, 1, "k8"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(whr_tx_error(tx), "prepare it again"));
	/* The same text is the same statement, reset and without bindings. */
	ck_assert_ptr_eq(whr_tx_prepare(tx, insert), ins);
	ck_assert_int_eq(whr_stmt_bind_text(ins, 1, "k9"), 0);
	ck_assert_int_eq(whr_stmt_run(ins), 0);
	ck_assert_int_eq(whr_stmt_changes(ins), 1);

	sel = whr_tx_prepare(tx, test_sql("SELECT k, v, n FROM t"
					  " WHERE n >= ?1 ORDER BY k"));
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
}
END_TEST

START_TEST(tx_errors)
{
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
	st = whr_tx_prepare(tx, test_sql("INSERT INTO u (k) VALUES (?1)"));
	ck_assert_int_eq(whr_stmt_bind_text(st, 2, "x"), -EINVAL);
	/* A unique key violated is -EEXIST; the statement is usable after. */
	ck_assert_int_eq(whr_stmt_bind_text(st, 1, "a"), 0);
	ck_assert_int_eq(whr_stmt_run(st), 0);
	st = whr_tx_prepare(tx, test_sql("INSERT INTO u (k) VALUES (?1)"));
	ck_assert_int_eq(whr_stmt_bind_text(st, 1, "a"), 0);
	ck_assert_int_eq(whr_stmt_run(st), -EEXIST);
	ck_assert_ptr_nonnull(strstr(whr_tx_error(tx),
				     test_by_db("UNIQUE", "unique")));
	st = whr_tx_prepare(tx, test_sql("INSERT INTO u (k) VALUES (?1)"));
	ck_assert_int_eq(whr_stmt_bind_text(st, 1, "b"), 0);
	ck_assert_int_eq(whr_stmt_run(st), 0);
	ck_assert_str_eq(whr_tx_error(tx), "");
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO nosuch VALUES (1)"),
			 -EIO);
	/* NULL arguments are misuse, not crashes. */
	ck_assert_ptr_null(whr_tx_prepare(NULL, "SELECT 1"));
	ck_assert_int_eq(whr_stmt_step(NULL), -EINVAL);
}
END_TEST

/* Inside a handler's guard, the transaction is the inbox's: BEGIN,
 * COMMIT and ROLLBACK are refused (-EACCES), the handler's writes go
 * with the inbox's commit, and a handler that fails has its writes
 * undone. */
START_TEST(tx_guard)
{
	ck_assert_int_eq(whr_tx_exec(tx, "CREATE TABLE g (k TEXT)"), 0);
	in_handler();
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO g VALUES ('kept')"), 0);
	ck_assert_int_eq(whr_tx_exec(tx, "COMMIT"), -EACCES);
	ck_assert_int_eq(whr_tx_exec(tx, "ROLLBACK"), -EACCES);
	ck_assert_int_eq(whr_tx_exec(tx, "BEGIN"), -EACCES);
	/* Savepoints of its own are fine. */
	ck_assert_int_eq(whr_tx_exec(tx, "SAVEPOINT mine; RELEASE mine"), 0);
	ck_assert_int_eq(whr_store_handler_end(store, "h1", true), 0);

	ck_assert_int_eq(whr_store_handler_begin(store), 0);
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO g VALUES ('undone')"),
			 0);
	ck_assert_int_eq(whr_store_handler_end(store, "h2", false), 0);
	ck_assert_int_eq(whr_store_commit(store), 0);

	ck_assert_str_eq(test_query_text(tx, test_by_db(
		"SELECT group_concat(k) FROM g",
		"SELECT string_agg(k, ',') FROM g")), "kept");
}
END_TEST

/* Statements of SQL built anew at each call pile up in the cache; they
 * are dropped between handlers, and the handle still works. */
START_TEST(tx_cache_bound)
{
	char sql[64];
	int i;

	in_handler();
	for (i = 0; i < 600; i++) {
		struct whr_stmt *st;

		snprintf(sql, sizeof(sql), "SELECT %d", i);
		st = whr_tx_prepare(tx, sql);
		ck_assert_ptr_nonnull(st);
		ck_assert_int_eq(whr_stmt_step(st), 1);
		ck_assert_int_eq(whr_stmt_int(st, 0), i);
	}
	ck_assert_int_eq(whr_store_handler_end(store, "h", true), 0);
	ck_assert_int_eq(whr_store_commit(store), 0);
	ck_assert_ptr_nonnull(whr_tx_prepare(tx, "SELECT 1"));
}
END_TEST

/* PostgreSQL: a statement that fails inside a handler aborts its
 * savepoint: the handler's writes are undone with it, and a handler that
 * says done all the same is told (-EAGAIN), never recorded done without
 * its writes. The transaction goes on. */
START_TEST(tx_failed_statement_in_handler)
{
	ck_assert_int_eq(whr_tx_exec(tx, "CREATE TABLE f (k TEXT PRIMARY KEY)"),
			 0);
	in_handler();
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO f VALUES ('a')"), 0);
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO f VALUES ('a')"),
			 -EEXIST);
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO f VALUES ('b')"), -EIO);
	ck_assert_int_eq(whr_store_handler_end(store, "h1", true), -EAGAIN);
	ck_assert_ptr_nonnull(strstr(whr_store_error(store), "handler h1"));
	/* The next handler and the commit go on. */
	ck_assert_int_eq(whr_store_handler_begin(store), 0);
	ck_assert_int_eq(whr_tx_exec(tx, "INSERT INTO f VALUES ('c')"), 0);
	ck_assert_int_eq(whr_store_handler_end(store, "h2", true), 0);
	/* One that failed and says so: nothing to tell. */
	ck_assert_int_eq(whr_store_handler_begin(store), 0);
	ck_assert_ptr_null(whr_tx_prepare(tx, "SELEKT"));
	ck_assert_int_eq(whr_store_handler_end(store, "h3", false), 0);
	ck_assert_int_eq(whr_store_commit(store), 0);
	ck_assert_str_eq(test_query_text(tx, "SELECT string_agg(k, ',')"
					     " FROM f"), "c");
}
END_TEST

/* PostgreSQL: what the guard refuses, by the statements' text, and what
 * it lets through; and a handler that ended the transaction anyway
 * (through the native connection) fails the batch. */
START_TEST(tx_guard_text)
{
	static const char *const refused[] = {
		"commit", "  END", "ABORT", "begin isolation level serializable",
		"START TRANSACTION", "ROLLBACK", "rollback and chain",
		"ROLLBACK TO whr_handler", "rollback to savepoint WHR_HANDLER",
		"RELEASE whr_handler", "RELEASE SAVEPOINT \"whr_handler\"",
		"SAVEPOINT whr_handler", "PREPARE TRANSACTION 'x'",
		"/* hi */ COMMIT", "-- hi\nCOMMIT",
		"SELECT 1; COMMIT", "SELECT ';'; COMMIT",
		"SELECT $$;$$; COMMIT", "SELECT E'\\';'; COMMIT",
		/* A $ in a name starts no quote; a quote that never ends
		 * hides what follows, so it is refused. */
		"SELECT 1 AS a$b$; COMMIT", "SELECT $q$ x; COMMIT",
	};
	static const char *const allowed[] = {
		"SELECT 'COMMIT'", "SELECT 1 AS commit_count",
		"SELECT $$; COMMIT$$", "SELECT $x$; COMMIT $x$",
		"SELECT 'a;COMMIT'",
		"SELECT \"x;COMMIT\" FROM (SELECT 1 AS \"x;COMMIT\") t",
		"SELECT /* ; COMMIT */ 1",
		"SAVEPOINT mine; ROLLBACK TO SAVEPOINT mine; RELEASE mine",
		"SELECT E'\\';COMMIT'",
		"SELECT 1 AS a$b$",
	};
	size_t i;

	in_handler();
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		ck_assert_msg(whr_tx_exec(tx, refused[i]) == -EACCES, "%s: %s",
			      refused[i], whr_tx_error(tx));
		ck_assert_ptr_null(whr_tx_prepare(tx, refused[i]));
	}
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		ck_assert_msg(whr_tx_exec(tx, allowed[i]) == 0, "%s: %s",
			      allowed[i], whr_tx_error(tx));
	ck_assert_int_eq(whr_store_handler_end(store, "h", true), 0);

	ck_assert_int_eq(whr_store_handler_begin(store), 0);
	PQclear(PQexec(whr_tx_native(tx), "COMMIT"));
	ck_assert_int_eq(whr_store_handler_end(store, "rogue", true), -EIO);
	ck_assert_ptr_nonnull(strstr(whr_store_error(store),
				     "the transaction ended while handler rogue ran"));
	whr_store_rollback(store);
}
END_TEST

TEST_SUITE(tx)
{
	ADD_EACH_WITH_FIXTURE(s, tx, store_setup, store_teardown,
			      tx_prepare_bind_step, tx_errors, tx_guard,
			      tx_cache_bound);
	if (test_backend_postgresql())
		ADD_EACH_WITH_FIXTURE(s, tx, store_setup, store_teardown,
				      tx_failed_statement_in_handler,
				      tx_guard_text);
}
