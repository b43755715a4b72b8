/*
 * whr: the transaction handle, for handlers that count each event
 * exactly once
 *
 * A handler registered with WHR_HANDLER_TRANSACTIONAL (see handler.h)
 * runs inside the inbox's own transaction: the one that records the
 * handler's "done" for the notification. Whatever it writes through the
 * handle commits together with that mark, or not at all, so its effect
 * happens exactly once, whatever crashes. If it returns WHR_RETRY or
 * WHR_REJECT, its writes are undone.
 *
 * The handle works on whichever database the inbox uses (SQLite in the
 * data folder, or PostgreSQL): whr_tx_db() says which, and the handler
 * writes its SQL for it (placeholders ?1, ?2 ... for SQLite, $1, $2 ...
 * for PostgreSQL). A handler that knows only one database says so by
 * registering table setup for that one only (whr_receiver_add_tx_setup):
 * whr then refuses to start on another.
 *
 *	static enum whr_result
 *	on_completed(struct whr_event *ev, void *userdata)
 *	{
 *		struct whr_tx *tx = whr_event_tx(ev);
 *		struct whr_stmt *st = whr_tx_prepare(tx,
 *			"INSERT INTO completions (course, at) VALUES (?1, ?2)");
 *
 *		if (st == NULL)
 *			return WHR_RETRY;
 *		whr_stmt_bind_text(st, 1, whr_event_string(ev, "Course.Id"));
 *		whr_stmt_bind_int(st, 2, whr_event_received_at(ev));
 *		return whr_stmt_run(st) == 0 ? WHR_DONE : WHR_RETRY;
 *	}
 *
 * Rules:
 * - The handle, its statements and every pointer read from them are
 *   borrowed until the handler (or the table setup) returns.
 * - Never end the transaction: BEGIN, COMMIT and ROLLBACK fail, and
 *   nothing commits unless the inbox's transaction does. Savepoints of
 *   your own are fine. (On PostgreSQL whr refuses such statements by
 *   their text and checks the transaction after the handler returns; a
 *   handler that ends it through whr_tx_native() fails the whole batch.)
 * - On PostgreSQL a statement that fails ends the handler's work: its
 *   later statements fail too, and all its writes are undone. If it
 *   returns WHR_DONE all the same, whr counts a WHR_RETRY instead. So
 *   write what may conflict as INSERT ... ON CONFLICT, rather than
 *   catching -EEXIST and going on as SQLite would let you.
 * - Be quick: transactional handlers run one at a time on the inbox's
 *   thread, in the transactions that store new deliveries.
 * - Statements are kept by whr from call to call, keyed by their SQL
 *   text: preparing the same text again is cheap, and gives the same
 *   statement, reset. Finish reading one statement's rows before you
 *   prepare its text again.
 */
#ifndef WHR_TX_H
#define WHR_TX_H

#include <stdbool.h>
#include <stdint.h>

#include <whr/event.h>

#ifdef __cplusplus
extern "C" {
#endif

struct whr_receiver;

/** A database engine the inbox can use. */
enum whr_db {
	/** SQLite, the inbox file in the data folder. */
	WHR_DB_SQLITE = 1,
	/** PostgreSQL, shared by several replicas. */
	WHR_DB_POSTGRESQL = 2
};

/** The transaction a transactional handler writes in. */
struct whr_tx;

/** A prepared statement of a transaction handle. */
struct whr_stmt;

/**
 * The transaction of a handler registered with WHR_HANDLER_TRANSACTIONAL.
 *
 * @param ev the event the handler was called with
 * @return the handle, borrowed until the handler returns; NULL for a
 *         handler that is not transactional
 */
struct whr_tx *whr_event_tx(const struct whr_event *ev);

/**
 * @param tx a transaction handle
 * @return the database it works on
 */
enum whr_db whr_tx_db(const struct whr_tx *tx);

/**
 * The database's own connection, for what the handle does not offer:
 * a `sqlite3 *` for WHR_DB_SQLITE, a `PGconn *` for WHR_DB_POSTGRESQL.
 * The rules above hold for it too: never end the transaction, never
 * close the connection.
 *
 * @param tx a transaction handle
 * @return the connection, borrowed like the handle
 */
void *whr_tx_native(struct whr_tx *tx);

/**
 * @param tx a transaction handle
 * @return the message of the last failure on it (prepare, bind, step or
 *         exec; a later success does not clear it: test the return
 *         values), or "" when none failed since the last prepare or
 *         exec. Borrowed until the next call on the handle or its
 *         statements.
 */
const char *whr_tx_error(const struct whr_tx *tx);

/**
 * Run SQL without parameters or results, one statement or several
 * separated by semicolons: table setup, for instance.
 *
 * @param tx a transaction handle
 * @param sql the SQL text
 * @return 0, or a negative errno (whr_tx_error() says why): -EEXIST when
 *         a constraint such as a unique key was violated, -EACCES for a
 *         statement that would end the transaction, -EIO for another
 *         database error, -ENOMEM
 */
int whr_tx_exec(struct whr_tx *tx, const char *sql);

/**
 * A statement for @p sql, with no parameter bound, ready to bind and
 * step. Preparing the same text again returns the same statement, reset.
 *
 * @param tx a transaction handle
 * @param sql one SQL statement (copied)
 * @return the statement, borrowed like the handle; NULL when the SQL
 *         cannot be prepared or memory is short (whr_tx_error() says why)
 */
struct whr_stmt *whr_tx_prepare(struct whr_tx *tx, const char *sql);

/**
 * Bind NULL to parameter @p index (1 for ?1 or $1). To run a statement
 * again with other values, prepare its text again (it is the same
 * statement, reset): binding after its first step is refused.
 *
 * @param st a statement, before its first step
 * @param index the parameter's number, from 1
 * @return 0, -EINVAL for an index the statement does not have or a
 *         statement that has run, -ENOMEM
 */
int whr_stmt_bind_null(struct whr_stmt *st, int index);

/**
 * Bind an integer to parameter @p index.
 *
 * @param st a statement, before its first step
 * @param index the parameter's number, from 1
 * @param value the value
 * @return 0, -EINVAL for an index the statement does not have or a
 *         statement that has run, -ENOMEM
 */
int whr_stmt_bind_int(struct whr_stmt *st, int index, int64_t value);

/**
 * Bind UTF-8 text to parameter @p index; NULL binds NULL.
 *
 * @param st a statement, before its first step
 * @param index the parameter's number, from 1
 * @param text the value, copied
 * @return 0, -EINVAL for an index the statement does not have or a
 *         statement that has run, -ENOMEM
 */
int whr_stmt_bind_text(struct whr_stmt *st, int index, const char *text);

/**
 * Execute the statement (at the first call) and move to its next row.
 *
 * @param st a statement
 * @return 1 when a row is there to read, 0 when there are no more rows
 *         (the statement is done), or a negative errno as
 *         whr_tx_exec() gives
 */
int whr_stmt_step(struct whr_stmt *st);

/**
 * Execute a statement that returns no rows (or whose rows you do not
 * need): whr_stmt_step() until it is done.
 *
 * @param st a statement
 * @return 0, or a negative errno as whr_tx_exec() gives
 */
int whr_stmt_run(struct whr_stmt *st);

/**
 * @param st a statement that has run (INSERT, UPDATE or DELETE)
 * @return the number of rows it inserted, changed or deleted
 */
int64_t whr_stmt_changes(const struct whr_stmt *st);

/**
 * @param st a statement on a row (whr_stmt_step() returned 1)
 * @param column the column's number, from 0
 * @return whether the value is NULL (or the column does not exist)
 */
bool whr_stmt_is_null(struct whr_stmt *st, int column);

/**
 * @param st a statement on a row
 * @param column the column's number, from 0
 * @return the value as an integer; 0 for NULL
 */
int64_t whr_stmt_int(struct whr_stmt *st, int column);

/**
 * @param st a statement on a row
 * @param column the column's number, from 0
 * @return the value as UTF-8 text, or NULL for NULL. Borrowed until the
 *         next step, reset or prepare of the statement.
 */
const char *whr_stmt_text(struct whr_stmt *st, int column);

/**
 * Creates or migrates a transactional handler's tables in one database:
 * called inside a transaction whenever the inbox opens its database (at
 * start, and again if it had to reopen it, e.g. after the disk was
 * full). Use CREATE ... IF NOT EXISTS, or a version table of your own.
 *
 * @param tx the inbox's transaction, borrowed until the callback returns
 * @param userdata the handler's userdata
 * @return 0; -EPROTO to stop the receiver from starting (tables it cannot
 *         use, e.g. newer than it knows); another negative errno when it
 *         may work later (a full disk): the inbox then stays closed,
 *         answering 503, and calls it again every second. Log why with
 *         whr_log(): the calls after a failure log nothing.
 */
typedef int (*whr_tx_setup_fn)(struct whr_tx *tx, void *userdata);

/**
 * Register the table setup of the transactional handler named
 * @p handler for database @p db. Call it once for each database the
 * handler supports, after whr_receiver_add_handler() and before
 * whr_receiver_run(). A transactional handler with setups for some
 * databases only stops the receiver from starting on another one, a
 * configuration error (whr_receiver_run() fails with -EINVAL, naming the
 * handler): it never runs without its tables, nor silently less than
 * exactly once.
 *
 * @param r the receiver, not running
 * @param handler the name of a handler registered with
 *        WHR_HANDLER_TRANSACTIONAL
 * @param db the database @p setup is written for
 * @param setup the callback; called with the handler's userdata
 * @return 0, -ENOENT when no transactional handler has that name,
 *         -EEXIST when it has a setup for @p db already, -EINVAL for a
 *         running receiver or a bad argument, -ENOMEM
 */
int whr_receiver_add_tx_setup(struct whr_receiver *r, const char *handler,
			      enum whr_db db, whr_tx_setup_fn setup);

#ifdef __cplusplus
}
#endif

#endif /* WHR_TX_H */
