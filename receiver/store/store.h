/*
 * The inbox database: an SQLite file in WAL mode under the data folder,
 * holding every acknowledged delivery, one row of work per notification,
 * and each handler's outcome. All SQL lives in store.c; one struct store
 * is one connection, used by one thread at a time.
 */
#ifndef WHR_RECEIVER_STORE_H
#define WHR_RECEIVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <whr/handler.h>

#define STORE_FILE "inbox.sqlite"
#define STORE_SCHEMA_VERSION 2

struct run;
struct sqlite3;
struct store;

enum store_mode {
	STORE_SERVER,		/* create and migrate; the writer */
	STORE_READER,		/* read-only; fails if the file is missing */
	STORE_WRITER,		/* read-write on an existing inbox (tools) */
};

/* Where a notification stands. */
enum work_state {
	WORK_PENDING,		/* not run yet, or replayed */
	WORK_RETRYING,		/* a handler asked to be called again */
	WORK_DONE,		/* every handler done */
	WORK_DEAD,		/* a handler rejected it, or retries ran out */
};

const char *work_state_name(enum work_state state);
int work_state_from_name(const char *name, enum work_state *state);

/* Open (creating the folder and file in STORE_SERVER mode). On failure
 * returns NULL with @p why saying why (nothing is logged) and errno
 * EPROTO for a schema newer than this binary's (a lasting problem), else
 * EIO (perhaps passing: a read-only or full disk). A commit returns once
 * it is on disk (synchronous=FULL). */
struct store *store_open(const char *dir, enum store_mode mode, char *why,
			  size_t why_size);
void store_close(struct store *s);
struct sqlite3 *store_db(struct store *s);

/* Transactions. begin takes the write lock at once (BEGIN IMMEDIATE). */
int store_begin(struct store *s);
int store_commit(struct store *s);
/* One savepoint inside a transaction (a transactional handler's): its
 * writes are kept by release, or undone by rollback_to then release. */
int store_savepoint(struct store *s);
int store_release(struct store *s);
int store_rollback_to(struct store *s);
#define STORE_HANDLER_SAVEPOINT "whr_handler"
/* Around a transactional handler's call: meanwhile the connection refuses
 * to end or commit the transaction. end: -EIO (store_error() says why)
 * when the transaction is gone all the same (SQLite rolled it back on an
 * error), so the batch fails whole. */
void store_handler_begin(struct store *s);
int store_handler_end(struct store *s, const char *handler);
/* Whether the next commits wait for the disk (the default), or only reach
 * the WAL file, to be synced with the next commit that waits: for writes
 * nobody is answered for (handler outcomes), which a crash may lose, but
 * never out of order, as the WAL is synced as a whole. Outside a
 * transaction only. */
int store_sync_commits(struct store *s, bool synced);
/* Commit one small write, synced: to learn whether writes reach the disk
 * again, or to sync unsynced commits before the end. 0, or a negative
 * errno with store_error() saying why. */
int store_probe(struct store *s);
void store_rollback(struct store *s);

/* The last error as a short text, and whether it means "the disk or the
 * file cannot take writes" (full, read-only, I/O error, corrupt). */
const char *store_error(struct store *s);

/* ---- ingest (writer) ------------------------------------------------- */

struct ingest_notification {
	size_t index;
	const char *action;		/* may be NULL */
	size_t json_start, json_end;	/* in the body */
	char **keys;			/* ordering keys, at least one */
	size_t n_keys;
	int64_t id;			/* out: its row id */
	struct run *run;		/* the inbox's: its handlers begun in
					 * the delivery's own transaction */
};

struct ingest_delivery {
	const char *receiver_id;	/* lowercased */
	const char *delivery_id;	/* may be NULL: never a duplicate */
	int64_t attempt;
	int64_t received_at;		/* microseconds since the epoch */
	const char *headers_json;	/* [[name, value], ...] */
	const char *body;
	size_t body_len;
	bool has_properties;
	size_t properties_start, properties_end;
	struct ingest_notification *notifications;
	size_t n_notifications;
	/* out */
	int64_t seq;			/* the stored delivery */
	bool duplicate;			/* an earlier copy was kept instead */
};

/* Inside a transaction: store a delivery, or, when (receiver_id,
 * delivery_id) is already stored, count the duplicate on the original.
 * 0 or a negative errno (store_error() says why). */
int store_ingest(struct store *s, struct ingest_delivery *d);

/* ---- dispatch -------------------------------------------------------- */

/* A handler's recorded outcome on one notification. */
struct stored_outcome {
	char *handler;
	enum whr_result result;
	int64_t runs;
	char *reason;
};

/* Everything a worker needs to build events and skip finished handlers. */
struct stored_work {
	int64_t id;
	int64_t delivery_seq;
	size_t index, count;
	char *receiver_id;
	char *delivery_id;
	char *action;
	int64_t attempt;
	int64_t received_at;
	int64_t retry_from;		/* --retry-max-age counts from here:
					 * received_at, or the last replay */
	char *json;			/* the notification, NUL-terminated */
	size_t json_len;
	char *properties;		/* NULL: none */
	size_t properties_len;
	enum work_state state;
	int64_t runs;			/* times the notification was taken */
	struct stored_outcome *outcomes;
	size_t n_outcomes;
	char **keys;
	size_t n_keys;
	int64_t next_at;
	/* When not NULL, the strings and keys above live in this one block
	 * (work handed over in memory), and are not freed one by one. */
	void *block;
};

void stored_work_free(struct stored_work *w);

/* Load one notification. -ENOENT when it is gone (purged). */
int store_load_work(struct store *s, int64_t id, struct stored_work **out);

/* Call @p fn for every pending or retrying notification, in id order,
 * with its keys and next run time (the work itself is loaded later).
 * @p fn returns 0 to go on, a positive number to stop there (0 is
 * returned), or a negative errno to fail with. */
int store_each_pending(struct store *s,
		       int (*fn)(int64_t id, char **keys, size_t n_keys,
				 int64_t next_at, void *arg),
		       void *arg);

/* The same for at most @p limit of them with an id above @p after (a
 * read by rowid: what comes before is not scanned). */
int store_each_open_after(struct store *s, int64_t after, int64_t limit,
			  int (*fn)(int64_t id, char **keys, size_t n_keys,
				    int64_t next_at, void *arg),
			  void *arg);

/* How many pending or retrying notifications have an id above @p after;
 * or a negative errno. */
int64_t store_count_open_after(struct store *s, int64_t after);

/* One handler's outcome, in the transaction that finishes its run. */
int store_record_handler(struct store *s, int64_t id, const char *handler,
			 enum whr_result result, const char *reason,
			 int64_t now);

/* The notification's new state after a run; marks the delivery finished
 * when it was the last open one. */
int store_record_state(struct store *s, int64_t id, enum work_state state,
		       int64_t next_at, const char *error, int64_t now);

/* ---- retention and change detection ---------------------------------- */

/* Delete up to @p limit deliveries finished before @p before; returns how
 * many, or a negative errno. */
int store_purge(struct store *s, int64_t before, int limit);

/* A number that changes when another connection commits a change. */
int64_t store_data_version(struct store *s);

#endif /* WHR_RECEIVER_STORE_H */
