/*
 * The storage interface: everything that reads or writes deliveries,
 * notifications and handler outcomes goes through these functions, and
 * no SQL is written anywhere else (the enrollment tracker's own tables
 * aside, which it reaches through the public transaction handle).
 *
 * One struct whr_store is one connection, used by one thread at a time:
 * the inbox's store thread has the writer, each worker a reader, and the
 * whr tools one of either. Two implementations (backends) stand behind
 * it: SQLite keeps the inbox in a file in the data folder (WAL mode), for
 * one whr serve; PostgreSQL keeps it in a database that several replicas
 * share. Callers do not learn which, except through the few capability
 * questions below (whr_store_shared()) and whr_tx_db().
 *
 * The words:
 * - a *delivery* is one verified POST, stored whole before its 200;
 * - each of its notifications is one piece of *work*, with an id the
 *   store gives: ids grow in arrival order, and say nothing else (an
 *   implementation may store one row per delivery and derive the ids);
 * - work is *claimed* before it runs (the claim holds for a lease, so a
 *   dead process's work can be taken over), each handler's *outcome* is
 *   recorded, and the work is *settled*: done, dead, or retrying later.
 *
 * The functions are exported from libwhr under WHR_PRIVATE, for the whr
 * tools built with it: not an API, no ABI promise.
 */
#ifndef WHR_RECEIVER_STORE_H
#define WHR_RECEIVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <whr/handler.h>
#include <whr/log.h>
#include <whr/tx.h>

/* The SQLite inbox's file in the data folder. */
#define STORE_FILE "inbox.sqlite"
/* The schema this whr writes; it reads every version from 1 up to it. */
#define STORE_SCHEMA_VERSION 2
/* The data folder when none is given nor set in WHR_DATA_DIR. */
#define STORE_DEFAULT_DIR "./whr-data"

struct whr_store;

/* The data folder to use: @p given when it is neither NULL nor empty,
 * else WHR_DATA_DIR's value, else STORE_DEFAULT_DIR. Borrowed from
 * @p given or the environment. */
const char *whr_store_location(const char *given);

/* Whether @p location names a PostgreSQL database rather than a data
 * folder: a postgresql:// or postgres:// URL, or a libpq key=value string
 * starting with host= or dbname=. */
bool whr_store_location_is_database(const char *location);

/* Whether database location @p location holds a password (which must
 * not be given on a command line, where every user sees it). */
bool whr_store_location_has_password(const char *location);

/* The database location kept in file @p path (WHR_DATABASE_FILE, which
 * may hold the password): its first line, without the spaces around it.
 * NULL when it cannot be read or names no database, with @p why saying
 * so (never quoting the file). The caller wipes and frees it. */
char *whr_store_location_read(const char *path, char *why, size_t why_size);

enum store_mode {
	STORE_SERVER,		/* create and migrate; the one writer */
	STORE_WORKER,		/* read-only, of this whr's schema: a
				 * worker loading work */
	STORE_READER,		/* read-only, any schema this whr reads
				 * (whr inbox list, show, stats) */
	STORE_WRITER,		/* read-write on an existing inbox of this
				 * whr's schema (whr inbox replay, purge) */
};

/* Open the store at @p location: a data folder (SQLite), or a database
 * (whr_store_location_is_database(): PostgreSQL). On failure returns NULL
 * with @p why saying why in a sentence (nothing is logged; a database's
 * password never appears) and errno: EPROTO for a schema newer than this
 * binary's and EPERM for files whr refuses to use (a symbolic link):
 * lasting problems; ENOENT when a reader or writer finds no inbox there;
 * EINVAL for a database location that cannot be read; else EIO (perhaps
 * passing: a read-only or full disk, a database server away). A commit
 * returns once it is on disk. */
struct whr_store *whr_store_open(const char *location, enum store_mode mode,
				 char *why, size_t why_size);
void whr_store_close(struct whr_store *s);

/* Where the store is, for messages: the SQLite file's path, or the
 * database's URL without its password. */
const char *whr_store_name(const struct whr_store *s);

/* Whether several processes (whr serve replicas) may share this store,
 * so that work comes to each only through claims: PostgreSQL. SQLite's
 * one whr serve per data folder hands fresh work to dispatch directly. */
bool whr_store_shared(const struct whr_store *s);

/* The last error as a short text: what failed, the database's message
 * and its kind ("cannot commit: disk I/O error (disk I/O error)"). */
const char *whr_store_error(const struct whr_store *s);

/* The database's own message of the last error ("disk I/O error"), for a
 * caller that says itself what failed. */
const char *whr_store_cause(const struct whr_store *s);

/* The connection as a transaction handle (whr/tx.h): what transactional
 * handlers write through, inside the store's transaction, and what
 * report queries run on. Borrowed from the store. */
struct whr_tx *whr_store_tx(struct whr_store *s);

/* ---- transactions ----------------------------------------------------- */

/* begin takes the write lock at once. Functions that return an int give
 * 0 or a negative errno (whr_store_error() says why): -EIO and its kin
 * (-ENOSPC, -EROFS) mean "the store cannot take writes now", which the
 * front answers with 503; -EBUSY a lock held too long by another
 * process. */
int whr_store_begin(struct whr_store *s);
int whr_store_commit(struct whr_store *s);
void whr_store_rollback(struct whr_store *s);

/* Whether the next commits wait for the disk (the default), or only
 * reach the log, to be synced with the next commit that waits: for
 * writes nobody is answered for (handler outcomes), which a crash may
 * lose, but never out of order. Outside a transaction only. */
int whr_store_sync_commits(struct whr_store *s, bool synced);

/* Commit one small write, synced: to learn whether writes reach the disk
 * again, or to sync unsynced commits before the end. */
int whr_store_probe(struct whr_store *s);

/* Whether a transaction's writes (ingest, outcomes, states) may go to
 * the database later, their answers read all together at the commit
 * (PostgreSQL: gathered into one statement of each kind and pipelined,
 * one round trip per transaction rather than one per statement; off by
 * default). Then what ingest says of a delivery (its seq, whether it is
 * a duplicate, its work ids) is known only once whr_store_commit()
 * returned; the delivery given to whr_store_ingest() (its strings, body
 * and notifications) is read as late as the commit, so it must stay
 * until the transaction ends; and a write's failure may be told by any
 * later call of the transaction (a write, whr_store_own(), the commit).
 * Anything else (a claim, a handler's statement) sends what was
 * gathered and waits for the answers before it. SQLite: nothing
 * changes. */
void whr_store_pipeline(struct whr_store *s, bool on);

/* Around a transactional handler's call (or its table setup), inside a
 * transaction: its writes go in a savepoint, and meanwhile nothing it
 * does can end the transaction. end keeps its writes when @p keep, else
 * undoes them; -EIO (whr_store_error() names @p handler) when the
 * transaction is gone all the same (the database ended it on an error),
 * so that the whole batch fails; -EAGAIN when @p keep, but a statement of
 * the handler failed, which on PostgreSQL undoes all its writes (they are
 * undone, the transaction goes on): the handler is to run again, never to
 * be recorded done without its writes. */
int whr_store_handler_begin(struct whr_store *s);
int whr_store_handler_end(struct whr_store *s, const char *handler,
			  bool keep);

/* ---- ingest ----------------------------------------------------------- */

struct ingest_notification {
	size_t index;
	const char *action;		/* may be NULL */
	size_t json_start, json_end;	/* in the body */
	char **keys;			/* ordering keys; none: the delivery
					 * is its key */
	size_t n_keys;
	int64_t id;			/* out: its work id */
	bool leased;			/* out: leased to this process as it
					 * was stored (a shared store's
					 * whr_store_claim_at_commit()) */
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

/* Inside a transaction: store a delivery and its work, or, when
 * (receiver_id, delivery_id) is stored already, count the duplicate on
 * the original. */
int whr_store_ingest(struct whr_store *s, struct ingest_delivery *d);

/* ---- work ------------------------------------------------------------- */

/* Where a notification stands. */
enum work_state {
	WORK_PENDING,		/* not run yet, or replayed */
	WORK_RETRYING,		/* a handler asked to be called again */
	WORK_DONE,		/* every handler done */
	WORK_DEAD,		/* a handler rejected it, or retries ran out */
};

const char *work_state_name(enum work_state state);
int work_state_from_name(const char *name, enum work_state *state);

/* Open work, as a claim hands it out: enough to order it (its keys, its
 * time), and perhaps the work itself. Borrowed during the callback, but
 * for @p work, which the callback may take. */
struct store_claim {
	int64_t id;
	char *const *keys;
	size_t n_keys;
	int64_t next_at;	/* microseconds since the epoch */
	/* The work as whr_store_load() would give it now, or NULL: to be
	 * loaded (SQLite's claims; on PostgreSQL, work taken over from a
	 * claim whose lease ran out, or out of memory). The callback takes
	 * it by setting this to NULL, and frees it with store_work_free()
	 * then; what is left here when it returns (whatever it returned)
	 * the store frees. */
	struct store_work *work;
};

/* Claim up to @p limit pieces of open work (pending or retrying) with an
 * id above @p after, in id order, for @p lease_us from now, and call
 * @p fn with each; @p limit < 0: no limit. @p fn returns 0 to go on, a
 * positive number to stop there (0 is returned; the piece it stopped at
 * and the rest are not claimed), or a negative errno to fail with.
 * SQLite: one whr serve per data folder (its lock), so its claims are not
 * written down and last until it exits; every open piece is handed out,
 * due or not, and dispatch orders them.
 * A shared store (PostgreSQL) hands out only *eligible* work: open, due
 * (next_at up to now), not leased by a live claim, and with no older open
 * work sharing one of its keys; each is leased to this process for
 * @p lease_us, timed by the database server's clock (a lease of 0 ends
 * at once: the next claim may take it again), which whr_store_renew()
 * extends and settling ends; its work comes with it (store_claim.work),
 * read in the same statement; next_at is compared with this process's
 * clock. It looks at a window of open work (whr_store_claim_window()):
 * past @p after and past where the last claim that did not fill looked
 * up to, round to the first once a window reaches the last open work,
 * so that eligible work past a long run of work that is not (retrying
 * later, or waiting behind it) is found within a claim per window of
 * that run, and a claim's cost does not grow with it; claims that take
 * all they ask for stay where they are for a while, then look from the
 * oldest again. One process
 * claims at a time: while another one's claim holds the claim lock
 * (until its transaction ends), this one claims nothing and returns
 * -EAGAIN at once. */
int whr_store_claim(struct whr_store *s, int64_t after, int64_t limit,
		    int64_t lease_us,
		    int (*fn)(struct store_claim *c, void *arg),
		    void *arg);

/* On a shared store, inside a transaction (whr_store_begin()): claim up
 * to @p limit pieces of eligible work as whr_store_claim() does (from
 * the first), in that transaction, after its writes so far, whose new
 * work and finished keys it sees. The transaction then commits as a
 * synced one does (whr_store_sync_commits(), made so if it was not): the
 * leases reach the disk with its writes, and the claim waits for no
 * commit of its own. Pipelined, the claim is answered at the commit with
 * the rest. Nothing is handed out before the commit succeeded, when
 * whr_store_take_claimed() does it; a transaction that does not commit
 * leases nothing. A claim that fails fails the transaction; one that
 * finds another process's claim holding the lock claims nothing (then
 * whr_store_take_claimed() returns -EAGAIN). Once a transaction: -EBUSY
 * for a second. 0, or a negative errno; -ENOTSUP on a store that is not
 * shared: claim after the commit there.
 *
 * Pipelined, the deliveries the transaction stored and that were not
 * sent yet (gathered since the last ones sent) are sent now, after the
 * claim lock, and lease up to @p lease_new of their new notifications to
 * this process as they are stored: those eligible then, the first open
 * one of each of their keys (the notification's leased says which, once
 * the commit succeeded; none when the lock was taken). They are not
 * handed out by whr_store_take_claimed(): the caller has their work in
 * hand. @p limit 0: no claim besides. */
int whr_store_claim_at_commit(struct whr_store *s, int64_t limit,
			      int64_t lease_new, int64_t lease_us);

/* After the commit of a transaction that claimed
 * (whr_store_claim_at_commit()): call @p fn with what it claimed, as
 * whr_store_claim() does (the leases hold from the commit; what @p fn
 * stops at is given back). 0 also when the transaction claimed nothing
 * or did not commit; -EAGAIN when its claim found another process's
 * holding the claim lock. Call it before the next transaction begins,
 * which forgets what was not taken: its leases then run out, unrun. */
int whr_store_take_claimed(struct whr_store *s,
			   int (*fn)(struct store_claim *c, void *arg),
			   void *arg);

/* On a shared store, the rows of open work's keys a claim looks at, at
 * most (@p rows; 0: no bound; 1,000 by default, so that a claim's cost
 * does not grow with a backlog of work that is not eligible), from where
 * the last one that did not fill stopped; and how long claims that fill
 * there stay before they look from the oldest open work again, at
 * least (@p away_us, 5 s by default; 0: at once). Tests make them
 * small. Nothing on SQLite. */
void whr_store_claim_window(struct whr_store *s, int64_t rows,
			    int64_t away_us);

/* Whether the last claim (whr_store_claim(), whr_store_take_claimed())
 * took less than it asked for with its window full, so that open work
 * past it may be unread: the next claim looks there, and may find
 * eligible work though this one came short. False after a claim that
 * failed or found the claim lock taken. */
bool whr_store_claim_left(struct whr_store *s);

/* Extend the leases of this process's claims on work @p ids (@p n of
 * them: what it holds) to @p lease_us from now (the database server's
 * clock), those still open and not claimed by another process since,
 * also when a lease ran out meanwhile (the database was away): how many;
 * or a negative errno. Only what the process holds: a claim whose answer
 * was lost with the connection leased work the process never got, which
 * others take once that lease runs out. @p ids NULL: every claim of this process's (a lease of 0
 * then gives them all back, at a clean stop). Nothing to do on SQLite
 * (0). */
int whr_store_renew(struct whr_store *s, const int64_t *ids, size_t n,
		    int64_t lease_us);

/* Inside a transaction, before writing anything of a run of work @p id
 * this process claimed: 0 when the claim is still this process's, which
 * then stays so until the transaction ends (no other claim takes it
 * meanwhile); -ESTALE when it is not (its lease ran out and another
 * process claimed it, or it was settled already): nothing of the run
 * may be written, the other process's run counts. SQLite: always 0. */
int whr_store_own(struct whr_store *s, int64_t id);

/* On a shared store: call @p fn (on a thread of the store's own, so it
 * must only wake the caller's thread) whenever another process committed
 * work that may be eligible to claim now (new work, or work finished,
 * whose keys' next may go), and once whenever the store had to connect
 * again (what it said meanwhile is lost). PostgreSQL: LISTEN on a
 * connection of its own, made again with a backoff when it is lost; the
 * commits that store deliveries or finish work NOTIFY. 0; -ENOTSUP on a
 * store that is not shared. whr_store_close() stops it. */
int whr_store_listen(struct whr_store *s, void (*fn)(void *arg), void *arg);

/* On a shared store whose listener runs (whr_store_listen()): renew the
 * leases of the work @p held lists, as whr_store_renew() does, from the
 * listener's thread and connection, every second (a quarter of
 * @p lease_us when that is shorter), passing over rows a transaction
 * holds locked. The store's own connection may be held for longer than a
 * lease by a transactional handler, and renewing there would wait for
 * it. @p held is called on the listener's thread: it writes at most
 * @p max ids into @p ids and returns how many there are (more than
 * @p max: it is called again with room). 0; -ENOTSUP on a store that is
 * not shared, -EINVAL without a listener. */
int whr_store_keep_leases(struct whr_store *s,
			  size_t (*held)(void *arg, int64_t *ids, size_t max),
			  void *arg, int64_t lease_us);

/* How much open work has an id above @p after; or a negative errno. */
int64_t whr_store_count_open(struct whr_store *s, int64_t after);

/* A handler's recorded outcome on one notification. */
struct store_outcome {
	char *handler;
	enum whr_result result;
	int64_t runs;
	char *reason;
};

/* One notification with everything its run needs: its delivery's
 * envelope, its JSON, and the outcomes of earlier runs. */
struct store_work {
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
	struct store_outcome *outcomes;
	size_t n_outcomes;
	char **keys;
	size_t n_keys;
	int64_t next_at;
	/* When not NULL, the strings and keys above live in this one block
	 * (work built in memory from a delivery), not freed one by one. */
	void *block;
};

void store_work_free(struct store_work *w);

/* Load one piece of work. -ENOENT when it is gone (purged). */
int whr_store_load(struct whr_store *s, int64_t id, struct store_work **out);

/* Inside a transaction: one handler's outcome on work @p id, and the
 * work's new state after a run (settle marks its delivery finished when
 * it was the last open one). On a shared store neither writes anything
 * on work another process claimed since (its lease ran out): that
 * process's run counts; the outcome locks the work until the commit. */
int whr_store_record_outcome(struct whr_store *s, int64_t id,
			     const char *handler, enum whr_result result,
			     const char *reason, int64_t now);
int whr_store_settle(struct whr_store *s, int64_t id, enum work_state state,
		     int64_t next_at, const char *error, int64_t now);

/* A number that changes when another connection commits a change that
 * may make open work appear (whr inbox replay): then open work may be
 * there that no claim handed out. SQLite: its data_version (any other
 * connection's commit); PostgreSQL: a counter that replays raise. */
int64_t whr_store_data_version(struct whr_store *s);

/* The inbox's gauges (/metrics) that are cheap enough to read every
 * second on a shared store, where the other replicas change them too:
 * open work (PostgreSQL finds it by its keys), and when the oldest open
 * work arrived (0: none). On PostgreSQL, once whr_store_listen() runs,
 * its thread counts them on its own connection and this returns the last
 * count: with a backlog a count takes tens of milliseconds, which the
 * store's own connection must not spend between commits. */
struct store_gauges {
	int64_t open;
	int64_t oldest_open_at;
};

int whr_store_gauges(struct whr_store *s, struct store_gauges *out);

/* ---- retention -------------------------------------------------------- */

/* Inside a transaction: delete up to @p limit deliveries finished before
 * @p before, with their work and outcomes; how many, or a negative
 * errno. On a shared store one process purges at a time: the others'
 * purges find 0 meanwhile, at once. */
int whr_store_purge(struct whr_store *s, int64_t before, int limit);

/* ---- backup ------------------------------------------------------------- */

/* A consistent copy of the store, as it was at one moment, written to
 * the file @p dest while whr serve may go on writing (SQLite: the online
 * backup API, the whole database in one read transaction). The copy is
 * made in a temporary file beside @p dest (mode 0600), checked (PRAGMA
 * integrity_check), synced, then renamed to @p dest, so @p dest is never
 * half-written; an existing @p dest is kept, and -EEXIST returned, unless
 * @p replace. The copy is an inbox of its own (no -wal or -shm file): as
 * inbox.sqlite in a data folder, whr serve and the tools open it. 0 or a
 * negative errno; whr_store_error() says why; -ENOTSUP for a database
 * with backup tools of its own (PostgreSQL: pg_dump). */
int whr_store_backup(struct whr_store *s, const char *dest, bool replace);

/* ---- moving to another database: the whr migrate tool ------------------ */

/* A table to copy: each row that @p read gives (SQL of @p from's
 * database) is written by @p write (SQL of @p to's, with $1 to
 * $columns), every column bound as text or NULL. */
struct store_table_copy {
	const char *name;	/* in @p to: it must be empty */
	const char *read;
	const char *write;
	int columns;
};

struct store_copied {
	int64_t deliveries, notifications, outcomes;
	int64_t more;		/* rows of the other tables */
};

/* Inside @p to's open transaction: copy inbox @p from (a data folder's,
 * SQLite) into @p to (a database, PostgreSQL): every delivery with its
 * notifications (their states, runs, times and errors), their ordering
 * keys and their handlers' outcomes, each with the number it had, so
 * that whr inbox and a resend find them as before; new ones are
 * numbered after them. Nothing is claimed. Then the @p n_more tables of
 * @p more (a handler's: the tracker's, whose tables exist in @p to by
 * then). @p from is read in one snapshot, all of it. 0, with @p copied
 * the counts; -ENOTEMPTY when a table of @p to holds rows already;
 * -ENOTSUP for another pair of databases; another negative errno when a
 * side failed. whr_store_error(@p to) says why in every case. */
int whr_store_copy(struct whr_store *from, struct whr_store *to,
		   const struct store_table_copy *more, size_t n_more,
		   struct store_copied *copied);

/* ---- inspecting: the whr inbox tool ------------------------------------ */

/* Times are microseconds since the epoch; a field with a has_ flag is
 * missing when the flag is false. Strings are borrowed during the
 * callback (or until the next call on the store) and may be NULL. */

struct store_filter {
	const char *state;		/* NULL: any */
	const char *action;		/* NULL: any; matched without case */
	bool has_since, has_until;
	int64_t since, until;		/* received in [since, until) */
	int64_t limit;			/* <= 0: no limit */
};

struct store_notification {
	int64_t id;
	int64_t seq;			/* its delivery */
	int64_t received_at;
	const char *receiver_id;
	const char *delivery_id;
	int64_t attempt;
	int64_t index;
	const char *action;
	const char *state;
	int64_t runs;
	int64_t next_at;
	const char *error;
};

/* The notifications @p f selects, newest first. @p fn as for claims. */
int whr_store_list(struct whr_store *s, const struct store_filter *f,
		   int (*fn)(const struct store_notification *n, void *arg),
		   void *arg);

/* The stored delivery whose body Id is @p delivery_id (of receiver
 * @p receiver_id when not NULL), or whose seq is @p seq when
 * @p delivery_id is NULL: *matches says how many there are (one per
 * receiver id), and *found_seq is the last one's. */
int whr_store_find(struct whr_store *s, const char *delivery_id, int64_t seq,
		   const char *receiver_id, int *matches,
		   int64_t *found_seq);

struct store_delivery {
	int64_t seq;
	const char *delivery_id;
	const char *receiver_id;
	int64_t attempt;
	int64_t received_at;
	int64_t duplicates;
	bool has_last_attempt, has_last_duplicate, finished;
	int64_t last_attempt, last_duplicate_at, finished_at;
	const char *headers_json;	/* [[name, value], ...] */
	const char *body;
	size_t body_len;
};

struct store_outcome_row {
	const char *handler;
	const char *result;
	int64_t runs;
	const char *reason;
	int64_t at;
};

/* Delivery @p seq: @p delivery once, then @p notification for each of
 * its notifications in order, with its outcomes by handler name.
 * -ENOENT when there is no such delivery. */
int whr_store_show(struct whr_store *s, int64_t seq,
		   int (*delivery)(const struct store_delivery *d, void *arg),
		   int (*notification)(const struct store_notification *n,
				       const struct store_outcome_row *o,
				       size_t n_outcomes, void *arg),
		   void *arg);

struct store_counts {
	int64_t total, pending, retrying, dead, done;
};

struct store_stats {
	int64_t deliveries;
	int64_t duplicates;		/* received again, summed */
	struct store_counts notifications;
	bool has_oldest_open, has_received;
	int64_t oldest_open;		/* the oldest open work's arrival */
	int64_t first_received, last_received;
	int64_t bytes;			/* the store's size on disk (a
					 * database: its tables') */
};

/* Counts by state, then @p action (may be NULL) for each Action (NULL
 * for none), most frequent first. */
int whr_store_stats(struct whr_store *s, struct store_stats *out,
		    int (*action)(const char *name,
				  const struct store_counts *c, void *arg),
		    void *arg);

struct store_replay {
	int64_t seq;		/* the delivery; 0: every dead notification */
	const char *action;	/* with seq 0: only this Action's */
	bool all_handlers;	/* done ones too, and every handler again */
	int64_t now;
	/* out */
	int replayed;		/* notifications made pending again */
	int open;		/* of the delivery, left to whr serve */
};

/* In a transaction of its own: make finished work pending again (dead
 * work; done work too with all_handlers), forgetting the outcomes of the
 * handlers that are to run again, and restarting its retry budget. Open
 * work is whr serve's, which would write its outcome over the replay: it
 * is only counted. */
int whr_store_replay(struct whr_store *s, struct store_replay *r);

/* ---- for the backends ------------------------------------------------- */

/* One database's implementation of the interface above (store/sqlite.c,
 * store/postgresql.c). Each whr_store_* function forwards to its store's
 * table, with the same contract; store.c does the rest: picking the
 * backend by the location, and inspecting (store/inspect.c), written on
 * the transaction handle. A backend's store begins with struct whr_store,
 * its handle with struct whr_tx and each statement with struct whr_stmt:
 * the tables are all the other files see of them. */
struct store_backend {
	bool shared;		/* whr_store_shared() */
	/* 0, or a negative errno as whr_store_open() says, with *out the
	 * store as far as it was made, its error set, for store.c to
	 * report and close (NULL: out of memory). */
	int (*open)(const char *location, enum store_mode mode,
		    struct whr_store **out);
	void (*close)(struct whr_store *s);
	const char *(*name)(const struct whr_store *s);
	int (*begin)(struct whr_store *s);
	int (*commit)(struct whr_store *s);
	void (*rollback)(struct whr_store *s);
	int (*sync_commits)(struct whr_store *s, bool synced);
	int (*probe)(struct whr_store *s);
	void (*pipeline)(struct whr_store *s, bool on);	/* NULL: none */
	int (*handler_begin)(struct whr_store *s);
	int (*handler_end)(struct whr_store *s, const char *handler,
			   bool keep);
	int (*ingest)(struct whr_store *s, struct ingest_delivery *d);
	int (*claim)(struct whr_store *s, int64_t after, int64_t limit,
		     int64_t lease_us,
		     int (*fn)(struct store_claim *c, void *arg),
		     void *arg);
	/* NULL: not a shared store (-ENOTSUP). */
	int (*claim_at_commit)(struct whr_store *s, int64_t limit,
			       int64_t lease_new, int64_t lease_us);
	/* NULL with claim_at_commit (0). */
	int (*take_claimed)(struct whr_store *s,
			    int (*fn)(struct store_claim *c, void *arg),
			    void *arg);
	/* NULL: claims look at all open work. */
	void (*claim_window)(struct whr_store *s, int64_t rows,
			     int64_t away_us);
	bool (*claim_left)(struct whr_store *s);	/* NULL: false */
	int (*renew)(struct whr_store *s, const int64_t *ids, size_t n,
		     int64_t lease_us);
	/* NULL: claims are the process's until it exits (0). */
	int (*own)(struct whr_store *s, int64_t id);
	/* NULL: not a shared store (-ENOTSUP). */
	int (*listen)(struct whr_store *s, void (*fn)(void *arg), void *arg);
	/* NULL: not a shared store (-ENOTSUP). */
	int (*keep_leases)(struct whr_store *s,
			   size_t (*held)(void *arg, int64_t *ids, size_t max),
			   void *arg, int64_t lease_us);
	/* The gauges as counted elsewhere (the listener's thread), or
	 * -EAGAIN: none yet, read them here. NULL: always read here. */
	int (*counted_gauges)(struct whr_store *s, struct store_gauges *out);
	int64_t (*count_open)(struct whr_store *s, int64_t after);
	int (*load)(struct whr_store *s, int64_t id, struct store_work **out);
	int (*record_outcome)(struct whr_store *s, int64_t id,
			      const char *handler, enum whr_result result,
			      const char *reason, int64_t now);
	int (*settle)(struct whr_store *s, int64_t id, enum work_state state,
		      int64_t next_at, const char *error, int64_t now);
	int64_t (*data_version)(struct whr_store *s);
	int (*purge)(struct whr_store *s, int64_t before, int limit);
	int64_t (*bytes)(struct whr_store *s);	/* store_stats.bytes */
	/* NULL: the database has tools of its own (pg_dump). */
	int (*backup)(struct whr_store *s, const char *dest, bool replace);
};

struct whr_store {
	const struct store_backend *backend;
	struct whr_tx *tx;		/* whr_store_tx() */
	char error[2 * 4096 + 256];	/* whr_store_error(): may name a
					 * folder and a file */
	char cause[1024];		/* whr_store_cause(): the database's
					 * own message */
};

/* The query of whr_store_gauges() in @p db's dialect: open work, and
 * when the oldest arrived, in one row (store/inspect.c). */
const char *store_gauges_sql(enum whr_db db);

/* Set the store's error (its cause none of the database's). */
void store_set_error(struct whr_store *s, const char *fmt, ...)
	WHR_PRINTF(2, 3);

/* The transaction handle's table (whr/tx.h): each whr_tx_* and whr_stmt_*
 * function forwards to it, NULL arguments refused before. */
struct tx_backend {
	enum whr_db db;
	void *(*native)(struct whr_tx *tx);
	int (*exec)(struct whr_tx *tx, const char *sql);
	struct whr_stmt *(*prepare)(struct whr_tx *tx, const char *sql);
	int (*bind_null)(struct whr_stmt *st, int index);
	int (*bind_int)(struct whr_stmt *st, int index, int64_t value);
	int (*bind_text)(struct whr_stmt *st, int index, const char *text);
	int (*step)(struct whr_stmt *st);
	int64_t (*changes)(const struct whr_stmt *st);
	bool (*is_null)(struct whr_stmt *st, int column);
	int64_t (*int_at)(struct whr_stmt *st, int column);
	const char *(*text)(struct whr_stmt *st, int column);
};

struct whr_tx {
	const struct tx_backend *backend;
	struct whr_store *store;	/* whose connection it is */
	char error[512];		/* whr_tx_error(); "" after success */
};

/* Set the handle's error, and its store's too: the store's functions
 * written on the handle (inspect.c) report through it. */
void store_tx_set_error(struct whr_tx *tx, const char *fmt, ...)
	WHR_PRINTF(2, 3);

/* A backend's new store @p s and its transaction handle @p tx, each
 * tied to its table and to the other. */
void store_init(struct whr_store *s, const struct store_backend *backend,
		struct whr_tx *tx, const struct tx_backend *tx_backend);

/* Statements are kept per handle, keyed by their SQL text: a backend's
 * statement begins with this, filled by stmt_cache_add(). */
struct whr_stmt {
	struct whr_tx *tx;
	char *sql;		/* the key, the cache's own */
	bool stepped;		/* run since it was prepared: no more binds */
	size_t hash;
	struct whr_stmt *next_in_bucket;
};

#define STMT_CACHE_BUCKETS 64

struct stmt_cache {
	struct whr_stmt *buckets[STMT_CACHE_BUCKETS];
	size_t n;
};

/* The statement kept for @p sql, or NULL. */
struct whr_stmt *stmt_cache_find(struct stmt_cache *c, const char *sql);

/* Keep @p st, of handle @p tx, for @p sql (copied): 0 or -ENOMEM. */
int stmt_cache_add(struct stmt_cache *c, struct whr_tx *tx,
		   struct whr_stmt *st, const char *sql);

/* Call @p fn on every statement kept. */
void stmt_cache_each(struct stmt_cache *c, void (*fn)(struct whr_stmt *st));

/* Forget every statement, each freed with @p free_stmt after its key. */
void stmt_cache_drop(struct stmt_cache *c,
		     void (*free_stmt)(struct whr_stmt *st));

/* The keys of a notification as its row keeps them, one a line (none:
 * "d:SEQ", its delivery's); NULL when out of memory. */
char *store_join_keys(char **keys, size_t n, int64_t seq);
/* And back: 0 or -ENOMEM (*n says how many were made, to free). */
int store_split_keys(const char *text, char ***keys, size_t *n);
void store_free_keys(char **keys, size_t n);

/* Hand a claim's row to @p fn (whr_store_claim()): work @p id, its keys
 * as stored (one a line), due at @p next_at, with @p work (may be NULL),
 * which this takes in every case: @p fn may take it in turn (struct
 * store_claim), else it is freed here. What @p fn returned, or -ENOMEM
 * (@p fn not called). */
int store_offer_claim(int64_t id, const char *keys, int64_t next_at,
		      struct store_work *work,
		      int (*fn)(struct store_claim *c, void *arg),
		      void *arg);

/* An outcome's result from its stored name ("done", "retry", "reject"). */
enum whr_result store_result_from_name(const char *name);

extern const struct store_backend store_sqlite;
extern const struct store_backend store_postgresql;

#endif /* WHR_RECEIVER_STORE_H */
