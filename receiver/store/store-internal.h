/*
 * What store.c and store-work.c share: the connection with its prepared
 * statements, and how a failed statement becomes an errno.
 */
#ifndef WHR_RECEIVER_STORE_INTERNAL_H
#define WHR_RECEIVER_STORE_INTERNAL_H

#include <stdbool.h>

#include <sqlite3.h>

#include "store/store.h"

enum statement {
	ST_INSERT_DELIVERY,
	ST_COUNT_DUPLICATE,
	ST_INSERT_NOTIFICATION,
	ST_LOAD_WORK,
	ST_LOAD_OUTCOMES,
	ST_EACH_PENDING,
	ST_OPEN_AFTER,
	ST_COUNT_OPEN_AFTER,
	ST_RECORD_HANDLER,
	ST_RECORD_STATE,
	ST_PURGE_SELECT,
	ST_PURGE_OUTCOMES,
	ST_PURGE_NOTIFICATIONS,
	ST_PURGE_DELIVERY,
	/* Parsed once, not at each use as sqlite3_exec() would. */
	ST_BEGIN,
	ST_COMMIT,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_COUNT,
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	bool synced;		/* synchronous = FULL now */
	bool in_handler;	/* a transactional handler runs: see guard() */
	char path[4096];
	char error[256];
};

/* Keep SQLite's message for store_error(); the errno it means (EIO
 * for "cannot take writes now", which the front answers with 503). */
int store_fail(struct store *s, const char *what);
/* Run a statement that returns no row (or one row we ignore). */
int store_step_done(struct store *s, sqlite3_stmt *st, const char *what);

#endif /* WHR_RECEIVER_STORE_INTERNAL_H */
