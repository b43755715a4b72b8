/*
 * whr: handlers
 *
 * A handler is a C callback registered for one Action ("CourseCompleted")
 * or for every Action ("*"). For each notification of a verified delivery,
 * whr calls the handlers registered for its Action, then the catch-all
 * ones, each in registration order, each once. Actions are compared
 * case-insensitively.
 *
 * Rules a handler must follow:
 * - Everything it is handed is borrowed until it returns (see event.h).
 * - It may be called on any thread, and several handlers (or the same one,
 *   for other notifications) may run at the same time; guard shared state.
 * - It may block (on a database, on a remote API). It never talks HTTP:
 *   it returns a result and whr acts on it.
 * - Delivery to a handler is at least once: a handler may see the same
 *   notification again (after a retry, a crash or a replay), so it should
 *   be idempotent.
 *
 * Exactly once, for handlers that keep their state in the inbox's own
 * database: register with WHR_HANDLER_TRANSACTIONAL and write through the
 * transaction handle (whr/tx.h: whr_event_tx()), which is inside the very
 * transaction that records the handler's "done". Its writes and its done
 * mark are committed together or not at all, so its effect happens
 * exactly once, whatever crashes. Such a handler runs on the inbox's own
 * thread, with others in one transaction: it must be quick and never end
 * the transaction. When it is among a new notification's first handlers
 * and nothing older about the same learner and course is open, that
 * transaction is the one that stores the delivery (before its 200). Its
 * tables are made by the table setup it registers for each database it
 * supports (whr_receiver_add_tx_setup()).
 *
 * The first form of this, still supported on SQLite: whr_event_db()
 * gives the inbox's sqlite3 connection, and db_setup (below) creates the
 * tables; BEGIN, COMMIT and ROLLBACK fail there with "not authorized".
 * Such a handler may keep prepared statements from call to call: db_setup
 * is called again whenever the inbox opens its database anew (finalize
 * the old statements then), and statements still held are finalized in
 * the handler's destroy callback (the connection is closed only once
 * they are).
 */
#ifndef WHR_HANDLER_H
#define WHR_HANDLER_H

#include <whr/event.h>

#ifdef __cplusplus
extern "C" {
#endif

struct whr_receiver;

/** What a handler made of a notification. */
enum whr_result {
	/** Handled; final. */
	WHR_DONE = 0,
	/** A transient failure: call this handler again later, with backoff. */
	WHR_RETRY = 1,
	/** A permanent failure: never call this handler for it again; the
	 *  notification is kept as dead, with the reason given through
	 *  whr_event_set_reason(). */
	WHR_REJECT = 2
};

/**
 * A handler callback.
 *
 * @param ev the notification; borrowed until the callback returns
 * @param userdata the pointer given at registration
 * @return WHR_DONE, WHR_RETRY or WHR_REJECT
 */
typedef enum whr_result (*whr_handler_fn)(struct whr_event *ev,
					  void *userdata);

/**
 * Frees a handler's userdata when the receiver is freed.
 *
 * @param userdata the pointer given at registration
 */
typedef void (*whr_destroy_fn)(void *userdata);

struct sqlite3;

/**
 * Prepares a transactional handler's tables in the inbox database: called
 * inside a transaction whenever the inbox opens its database (at start,
 * and again if it had to reopen it, e.g. after the disk was full): create
 * tables and indexes with IF NOT EXISTS, migrate them, and drop prepared
 * statements made on an earlier connection.
 *
 * @param db the inbox's connection; borrowed until the callback returns
 * @param userdata the handler's userdata
 * @return 0; -EPROTO to stop the receiver from starting (tables it
 *         cannot use, e.g. newer than it knows); another negative errno
 *         when it may work later (a full disk): the inbox then stays
 *         closed, answering 503, and calls it again every second. Once
 *         the receiver runs (a reopen), -EPROTO is handled like the
 *         others: it keeps answering 503 with the reason rather than stop
 *         and leave the sender with no answer. Log why with whr_log(): the
 *         calls after a failure log nothing, so the reason is told once.
 */
typedef int (*whr_db_setup_fn)(struct sqlite3 *db, void *userdata);

/** Flags of struct whr_handler. */
enum whr_handler_flags {
	/** Runs inside the inbox transaction that records its done mark;
	 *  see the top of this header and whr_event_db(). */
	WHR_HANDLER_TRANSACTIONAL = 1 << 0
};

/**
 * A handler's full description, filled in by the caller and copied by
 * whr_receiver_add_handler(). Its layout is part of the ABI.
 */
struct whr_handler {
	/** A short stable name for logs and for the record of outcomes
	 *  (copied); NULL gives "handler-N", N its registration position. */
	const char *name;
	/** The Action it handles, or "*" for all (copied). */
	const char *action;
	/** The callback; required. */
	whr_handler_fn fn;
	/** Passed to @ref fn and to @ref destroy. */
	void *userdata;
	/** Called once with @ref userdata when the receiver is freed, except
	 *  after whr_receiver_run() returned -EBUSY (handlers were left
	 *  running at shutdown): then never. May be NULL. It is called also
	 *  when registration fails. */
	whr_destroy_fn destroy;
	/** enum whr_handler_flags, or 0. */
	unsigned int flags;
	/** For a transactional handler: creates its tables; may be NULL. */
	whr_db_setup_fn db_setup;
};

/**
 * Register a handler described by @p handler. Handlers can be added only
 * before whr_receiver_run().
 *
 * @param r the receiver
 * @param handler the description; copied, so it may live on the stack
 * @return 0 on success, -EINVAL for a missing callback or Action, a
 *         duplicate name, or a receiver already running; -EBUSY after a
 *         run that left handlers running; -ENOMEM
 */
int whr_receiver_add_handler(struct whr_receiver *r,
			     const struct whr_handler *handler);

/**
 * Register @p fn for @p action: the short form of
 * whr_receiver_add_handler() without a name or destructor.
 *
 * @param r the receiver
 * @param action an Action, or "*" for all
 * @param fn the callback
 * @param userdata passed to @p fn
 * @return as whr_receiver_add_handler()
 */
int whr_on(struct whr_receiver *r, const char *action, whr_handler_fn fn,
	   void *userdata);

#ifdef __cplusplus
}
#endif

#endif /* WHR_HANDLER_H */
