/*
 * The storage interface on PostgreSQL (see store.h), through libpq: one
 * database that several whr serve replicas share.
 *
 * The same tables as SQLite's (deliveries, notifications, outcomes), with
 * BIGINT microsecond times and bytea bodies, and:
 * - a unique key on (receiver_id, delivery_id): two replicas storing the
 *   same delivery at once both succeed, one insert wins and the other's
 *   ON CONFLICT DO NOTHING waits for it, then counts a duplicate;
 * - notification_keys, the ordering keys of each open notification (a
 *   finished one's go as it is settled, a replayed one's come back), for
 *   the eligibility rule of claims (whr_store_claim(): only the oldest
 *   open notification of a key is ever handed out): one probe of its
 *   index per key of a candidate, however long a key's history; and the
 *   way to open work (OPEN_WORK, schema version 3), so that settling work
 *   touches no index of notifications (once the index of open work of
 *   older versions is gone);
 * - leases on notifications (lease_owner, lease_until, by the server's
 *   clock): a claim leases what it hands out, its owner renews, settling
 *   clears, and when a replica dies its work is claimed again once its
 *   leases ran out;
 * - whr_meta: the schema version, the oldest version of whr that still
 *   runs on it (migrations add first and remove a release later), and a
 *   counter that whr inbox replay raises (whr_store_data_version()).
 * Migrations run under an advisory lock, so that replicas starting
 * together migrate once; purges take another, one replica at a time.
 *
 * Commits are synchronous (synchronous_commit on) unless the inbox says
 * its next batches only hold outcomes (whr_store_sync_commits()): those
 * commit with SET LOCAL synchronous_commit = off, and reach the disk with
 * the next synchronous commit, never out of order.
 *
 * Also the transaction handle (whr/tx.h) on PostgreSQL: statements
 * prepared by name once per connection, keyed by their SQL text as
 * SQLite's are; parameters sent as text for the server to type; rows
 * read from the PGresult; errors as the same errnos as SQLite's. libpq
 * cannot stop a handler from ending the transaction, so statements that
 * would are refused by their text while a handler runs, and the
 * transaction's state is checked after it returns.
 *
 * The password in a location is never shown: whr_store_name() is the URL
 * without it, and every message from libpq is masked.
 */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "handler.h"
#include "log.h"
#include "util.h"

/* PostgreSQL's schema versions, numbered apart from SQLite's. */
#define SCHEMA_VERSION 3
/* pg_advisory_xact_lock() keys: "whr" and a number. */
#define MIGRATION_LOCK "2003333633"	/* 0x77687201 */
#define PURGE_LOCK "2003333634"		/* 0x77687202 */
#define CLAIM_LOCK "2003333635"		/* 0x77687203 */
/* Taken before every claim: see ST_CLAIM_LOCK. */
#define CLAIM_LOCK_SQL \
	"SELECT set_config('whr.claiming'," \
	" pg_try_advisory_xact_lock(" CLAIM_LOCK ")::text, true)"
/* Statements a handle keeps; more (SQL built anew at each call) are
 * dropped between handlers, never while one runs. */
#define TX_CACHE_MAX 256
#define HANDLER_SAVEPOINT "whr_handler"
#define MAX_PARAMS 21
/* The channel replicas tell each other on that work may be claimed. */
#define CHANNEL "whr_work"
/* Reconnecting after the server went away: at once, then after 50 ms,
 * doubling up to a second, so that whr is back within a second or two of
 * the server's return without knocking on it in a loop meanwhile. */
#define RECONNECT_MIN_US 50000
#define RECONNECT_MAX_US 1000000
/* How long a connection may take, and how long the server may leave a
 * request unacknowledged (a failover that drops packets) before the
 * connection counts as lost: the store thread is never stuck longer. */
#define CONNECT_TIMEOUT_S "5"
#define TCP_USER_TIMEOUT_MS "5000"
/* The gauges of /metrics are counted every second on the listener's
 * connection, or after 200 times the last count's duration when a
 * backlog makes counting slow (0.5 % of the database's time for each
 * replica, while a count takes up to 50 ms: tens of thousands open),
 * but at least every GAUGES_MOST_US (a count of 100 ms then costs 1 %);
 * a count older than GAUGES_STALE_US (the listener lost its connection)
 * is not used. */
#define GAUGES_EVERY_US 1000000
#define GAUGES_COST_FACTOR 200
#define GAUGES_MOST_US (10 * 1000000LL)
#define GAUGES_STALE_US (30 * 1000000LL)
/* The rows of open work's keys a claim looks at, at most (a window,
 * whr_store_claim()): with 100,000 open and none eligible (a handler's
 * service down an hour), each claim read them all, 220 ms, in the
 * transaction that answers the round's deliveries; a window of 1,000
 * takes 1 to 3 ms (bench/README). The next claim looks past it. */
#define CLAIM_WINDOW 1000
/* While claims take all they ask for, they stay in their window, which
 * moves on as its work finishes: older work that became eligible
 * meanwhile (a retry come due, the next of a key) is looked at again
 * once they have filled there this long (claim_moved_on()). */
#define CLAIM_AWAY_MOST_US (5 * 1000000LL)
/* Leases kept from the listener (whr_store_keep_leases()) are renewed
 * this often, or at a quarter of the lease when that is shorter. */
#define RENEW_EVERY_US 1000000

#define OPEN "('pending', 'retrying')"
/*
 * Open work is found by its keys (schema version 3 on), not by an index
 * of notifications by state, so that settling work is a HOT update.
 * notification_keys holds open work's keys only, and every open
 * notification has the keys of its keys column, inserted and deleted in
 * the statement that opens or finishes it (ingest writes d:SEQ where a
 * notification names no learner). OPEN_WORK joins each open
 * notification @p n once, by the row of the first key in its keys
 * column, with the keys' row @p k: read in id order from the keys'
 * index by id, since the inbox's connections never scan a table
 * (SERVER_SETTINGS), so the planner cannot choose to sort every key as
 * it did with DISTINCT (its statistics of a queue: none on a new
 * database, stale by nature). Renewing all of a process's leases
 * (ST_RENEW_ALL, at a clean stop) reads all open work so; claims read
 * a window of it (WINDOW_KEYS).
 */
#define OPEN_WORK(k, n) \
	"notification_keys " k " JOIN notifications " n \
	" ON " n ".id = " k ".notification_id" \
	" AND " k ".key = split_part(" n ".keys, E'\\n', 1)"
/* Leases are timed by the database server's clock, the one clock every
 * replica shares: a replica whose clock runs ahead of the others' must
 * not see their leases run out early (and take their work over while it
 * runs). In microseconds, as whr's times; a subquery, counted once a
 * statement. */
#define DB_NOW_US \
	"(SELECT (extract(epoch FROM statement_timestamp()) * 1000000)::bigint)"

/* ---- schema ------------------------------------------------------------ */

/* Version 1: SQLite's version 2, with keys and leases. */
static const char schema_v1[] =
	"CREATE TABLE whr_meta ("
	" key TEXT PRIMARY KEY,"
	" value BIGINT NOT NULL);"
	"INSERT INTO whr_meta VALUES ('schema_version', 0),"
	" ('schema_compatible', 0), ('data_version', 0);"
	"CREATE TABLE deliveries ("
	" seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" receiver_id TEXT NOT NULL,"
	" delivery_id TEXT,"			/* NULL: the body had no Id */
	" attempt BIGINT NOT NULL,"
	" received_at BIGINT NOT NULL,"
	" headers TEXT NOT NULL,"		/* [[name, value], ...] */
	" body BYTEA NOT NULL,"
	" properties_start BIGINT, properties_end BIGINT,"
	" notifications BIGINT NOT NULL,"
	" duplicates BIGINT NOT NULL DEFAULT 0,"
	" last_attempt BIGINT,"
	" last_duplicate_at BIGINT);"
	"CREATE UNIQUE INDEX deliveries_key ON deliveries"
	" (receiver_id, delivery_id) WHERE delivery_id IS NOT NULL;"
	"CREATE INDEX deliveries_received ON deliveries (received_at);"
	"CREATE TABLE notifications ("
	" id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" delivery_seq BIGINT NOT NULL,"
	" idx BIGINT NOT NULL,"
	" action TEXT,"
	" json_start BIGINT NOT NULL, json_end BIGINT NOT NULL,"
	" keys TEXT NOT NULL,"			/* ordering keys, one a line */
	" state TEXT NOT NULL,"			/* pending retrying done dead */
	" runs BIGINT NOT NULL DEFAULT 0,"
	" next_at BIGINT NOT NULL,"
	" error TEXT,"
	" updated_at BIGINT NOT NULL,"
	" retry_from BIGINT,"
	" lease_owner TEXT,"
	" lease_until BIGINT);"
	"CREATE INDEX notifications_delivery ON notifications (delivery_seq);"
	/* Claims look for open work every second or so, on every replica:
	 * open work only, not a week of finished work. */
	"CREATE INDEX notifications_open ON notifications (id)"
	" WHERE state IN " OPEN ";"
	"CREATE TABLE notification_keys ("
	" key TEXT NOT NULL,"
	" notification_id BIGINT NOT NULL,"
	" PRIMARY KEY (key, notification_id));"
	"CREATE INDEX notification_keys_notification ON notification_keys"
	" (notification_id);"
	"CREATE TABLE outcomes ("
	" notification_id BIGINT NOT NULL,"
	" handler TEXT NOT NULL,"
	" result TEXT NOT NULL,"		/* done retry reject */
	" runs BIGINT NOT NULL,"
	" reason TEXT,"
	" updated_at BIGINT NOT NULL,"
	" PRIMARY KEY (notification_id, handler));";

/*
 * Version 2: room in the notifications' pages for their updates. A
 * claim's lease changes no indexed column, so PostgreSQL can write the
 * row's new version beside the old one without touching the indexes (a
 * HOT update), but only with free space on the page: at the default
 * fill factor, inserts fill every page, and each lease added an entry
 * to each of the table's three indexes. Half a page is kept free (under
 * bench/run's load, 4,253 pages for 70,000 notifications against
 * 4,780 before: the old versions no longer spread over new pages; rows
 * kept a week without updates may take up to twice the room). Pages
 * written before keep their fill. Version 1's whr runs on it unchanged.
 */
static const char schema_v2[] =
	"ALTER TABLE notifications SET (fillfactor = 50);";

/*
 * Version 3: open work is found by its keys (notification_keys, OPEN_WORK)
 * rather than by the partial index notifications_open. Settling work
 * changes its state, a column of that index's predicate, so every settle
 * wrote the row's new version into each of the table's indexes; without
 * the index, the settle is a HOT update, like a lease (bench/README).
 *
 * A database migrated from version 2 keeps the index: version 2's whr
 * claim through it, and run on it while replicas are upgraded one at a
 * time; the next version drops it (DROP INDEX IF EXISTS: a database
 * created by version 3 has none). The step makes sure of what version 3
 * relies on, that every open notification has its keys: a keys column
 * left empty (a copy from SQLite of work with one empty key; ingest
 * writes d:SEQ there) gets d:SEQ, and open work without keys rows gets
 * them. Ingest wrote both since version 1.
 */
static const char schema_v3[] =
	"UPDATE notifications SET keys = 'd:' || delivery_seq"
	" WHERE keys = '';"
	"INSERT INTO notification_keys (key, notification_id)"
	" SELECT DISTINCT k, n.id FROM notifications n,"
	" unnest(string_to_array(n.keys, E'\\n')) AS k"
	" WHERE n.state IN " OPEN " AND NOT EXISTS (SELECT 1"
	" FROM notification_keys x WHERE x.notification_id = n.id)"
	" ON CONFLICT DO NOTHING;";

/* The steps from each version to the next: migrations[v - 1] makes
 * version v. Each adds what its version needs and keeps what the
 * versions since @p compatible use, so that those whr still run on it
 * while replicas are upgraded one at a time; what they no longer need
 * goes in a later step. A database being created has no older whr on
 * it: it goes without what only those use (@p created_without, run
 * right after the step), and then runs only from that version on. */
struct migration {
	const char *sql;
	int compatible;		/* the oldest version that runs on it */
	const char *created_without;	/* NULL: nothing */
};

static const struct migration migrations[] = {
	{ schema_v1, 1, NULL },
	{ schema_v2, 1, NULL },
	{ schema_v3, 2, "DROP INDEX IF EXISTS notifications_open" },
};
_Static_assert(ARRAY_LENGTH(migrations) == SCHEMA_VERSION,
	       "one migration step for each version");

/* ---- the inbox's statements ------------------------------------------- */

enum statement {
	ST_INGEST,
	ST_LOAD_WORK,
	ST_CLAIM_LOCK,
	ST_CLAIM,
	ST_UNCLAIM,
	ST_RENEW,
	ST_RENEW_ALL,
	ST_OWN,
	ST_COUNT_OPEN_AFTER,
	ST_RECORD_OUTCOMES,
	ST_SETTLE,
	ST_FINISH,
	ST_DATA_VERSION,
	ST_PURGE_LOCK,
	ST_PURGE,
	ST_BYTES,
	ST_COUNT,
};

/* A piece of work's columns, as ST_LOAD_WORK and ST_CLAIM return them
 * (notifications n, deliveries d, outcomes o), in enum work_column's
 * order. */
#define WORK_COLUMNS \
	"n.delivery_seq, n.idx, d.notifications, d.receiver_id," \
	" d.delivery_id, n.action, d.attempt, d.received_at," \
	" substring(d.body FROM (n.json_start + 1)::int" \
	"  FOR (n.json_end - n.json_start)::int)," \
	" CASE WHEN d.properties_start IS NULL THEN NULL ELSE" \
	"  substring(d.body FROM (d.properties_start + 1)::int" \
	"  FOR (d.properties_end - d.properties_start)::int) END," \
	" n.state, n.runs, n.keys, n.next_at," \
	" coalesce(n.retry_from, d.received_at)," \
	" o.handler, o.result, o.runs, o.reason, n.id"
/* A claim's window: the first $6 rows of open work's keys by id after
 * $1 (NULL: all of them), @p columns of them, read in id order from
 * the keys' index by id. Each open notification has a row or more (one
 * per key) there: the notifications of a window are its candidates,
 * each once (the rows of one notification come together, and one cut
 * off by the window's end was a candidate in it). */
#define WINDOW_KEYS(columns) \
	"SELECT " columns " FROM notification_keys" \
	" WHERE notification_id > $1 ORDER BY notification_id LIMIT $6"
/* ST_CLAIM's last row: NULL in every column of WORK_COLUMNS and in
 * taken_over (WC_ID NULL tells it), and the end of the claim's window
 * (WC_WINDOW_END): the last id in it when it was full, NULL when it
 * reached the last open work, and NULL too when the claim took all it
 * could (the next one looks at the same window: it is not read twice
 * then). */
#define WINDOW_END_ROW \
	"NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL," \
	" NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL," \
	" NULL, CASE WHEN $6::bigint IS NOT NULL AND ($3::bigint IS NULL" \
	" OR (SELECT count(*) FROM leased) < $3) THEN" \
	" (SELECT CASE WHEN count(*) = $6 THEN max(notification_id) END" \
	" FROM (" WINDOW_KEYS("notification_id") ") w) END"
/* WC_ID's place in the claim's rows, counted from 1 as ORDER BY does. */
#define WC_ID_POSITION "20"

enum work_column {
	WC_SEQ,
	WC_INDEX,
	WC_COUNT,
	WC_RECEIVER_ID,
	WC_DELIVERY_ID,
	WC_ACTION,
	WC_ATTEMPT,
	WC_RECEIVED_AT,
	WC_JSON,
	WC_PROPERTIES,
	WC_STATE,
	WC_RUNS,
	WC_KEYS,
	WC_NEXT_AT,
	WC_RETRY_FROM,
	WC_HANDLER,		/* the outcome's, NULL: none */
	WC_RESULT,
	WC_OUTCOME_RUNS,
	WC_REASON,
	WC_ID,
	WC_TAKEN_OVER,		/* ST_CLAIM's only */
	WC_WINDOW_END,		/* ST_CLAIM's last row's only */
};
_Static_assert(WC_ID == 19 && WC_WINDOW_END == 21,
	       "WC_ID_POSITION and WINDOW_END_ROW follow the columns");

/* Pieces of ST_RECORD_OUTCOMES, ST_SETTLE and ST_FINISH. */
#define OUTCOME_ARRAYS(ids, handlers, results, reasons, ats) \
	"SELECT * FROM unnest(" ids "::bigint[], " handlers "::text[]," \
	" " results "::text[], " reasons "::text[], " ats "::bigint[])" \
	" AS i (id, handler, result, reason, at)"
#define STATE_ARRAYS(ids, states, next_ats, errors, ats) \
	"SELECT * FROM unnest(" ids "::bigint[], " states "::text[]," \
	" " next_ats "::bigint[], " errors "::text[], " ats "::bigint[])" \
	" AS i (id, state, next_at, error, at)"
/* The notifications still open and not another process's (@p owner is
 * this one): their own lock (@p lock, in id order) for those @p which
 * picks out, or the lock their update takes. A notification updated
 * here takes no lock before (the lock and the new version were two
 * records in the WAL and two writes of the row, 1 % of a delivery's
 * CPU, bench/README.md): the update checks the same, on the row's
 * newest version when another transaction changed it meanwhile. */
#define OPEN_AND_OURS(row, owner) \
	"(" row "lease_owner IS NULL OR " row "lease_owner = " owner ")" \
	" AND " row "state IN " OPEN
#define OWN_ROWS(which, owner, lock) \
	"own AS MATERIALIZED (SELECT id FROM notifications" \
	" WHERE " which " AND " OPEN_AND_OURS("", owner) \
	" ORDER BY id " lock ")"
/* The outcomes of @p input for the notifications in @p rows (locked or
 * updated by this statement: the outcome keeps the row locked until
 * the commit, so that no claim takes it over in between). */
#define RECORD_OUTCOMES(input, rows) \
	"INSERT INTO outcomes (notification_id, handler, result, runs," \
	" reason, updated_at) SELECT i.id, i.handler, i.result, 1," \
	" i.reason, i.at FROM " input " i JOIN " rows " USING (id)" \
	" ON CONFLICT (notification_id, handler) DO UPDATE SET" \
	" result = excluded.result, runs = outcomes.runs + 1," \
	" reason = excluded.reason, updated_at = excluded.updated_at"
/* The states of @p input for the notifications still open and not
 * another process's, as the rows s. The arrays are read once, in id
 * order (the order the rows are locked in), and each row is found by
 * its id: the planner, without statistics on a new table, once chose
 * to join the arrays with the rows by reading the whole array again
 * for each row (2.8 ms for 120 states, against 0.5 ms). */
#define SETTLED_ROWS(input, owner) \
	"todo AS MATERIALIZED (SELECT * FROM " input " ORDER BY id)," \
	" s AS (UPDATE notifications n SET state = i.state," \
	" runs = n.runs + 1, next_at = i.next_at, error = i.error," \
	" updated_at = i.at, lease_owner = NULL, lease_until = NULL" \
	" FROM todo i WHERE n.id = i.id AND " OPEN_AND_OURS("n.", owner) \
	" RETURNING n.id, n.keys, i.state)"
/* The keys of the rows s finished, gone. Each key row is looked up by
 * its whole primary key (the key, from the row's keys column, and the
 * id), each lookup a subquery of its own (its LIMIT keeps the planner
 * from making them one join over the table), and deleted by its place
 * (ctid): only the rows found are read. Asked by the id alone, the
 * planner chose, and a prepared plan kept, to read the whole primary
 * key index, whose first column is the key, with the id as a filter: a
 * plan made while the table was small (a queue vacuumed empty), kept
 * as the entries of finished work piled up between vacuums; a round's
 * settle then took 4 ms rather than 0.6. */
#define FINISHED_KEYS_GONE \
	"DELETE FROM notification_keys WHERE ctid = ANY (ARRAY(" \
	" SELECT found.row_ctid FROM s," \
	" unnest(string_to_array(s.keys, E'\\n')) AS finished_key (key)," \
	" LATERAL (SELECT k.ctid AS row_ctid FROM notification_keys k" \
	" WHERE k.key = finished_key.key AND k.notification_id = s.id" \
	" LIMIT 1) found" \
	" WHERE s.state IN ('done', 'dead')))"

static const char *const statement_sql[ST_COUNT] = {
	/*
	 * Deliveries and their notifications, with their keys, in one
	 * statement, the columns as arrays: one element a delivery ($1 to
	 * $10; the bodies one after another in $11) or a notification ($12
	 * to $17, $12 its delivery's place; one without keys gets its
	 * delivery's, d:SEQ). No two of the deliveries share a key: ON
	 * CONFLICT DO UPDATE touches a row once a statement, so the caller
	 * sends a second copy in a statement of its own. A copy stored
	 * already (committed, or earlier in this transaction) is counted as
	 * a duplicate on it by ON CONFLICT DO UPDATE, its row told by its
	 * key (kept). It takes a number from the sequence all the same, so
	 * seqs skip where SQLite's do not, as they do after a rolled-back
	 * transaction: looking the copies up first cost 3 us a delivery.
	 * Two replicas inserting at once meet at the unique key: the
	 * second waits for the first, then counts itself on the first's
	 * row (ON CONFLICT DO UPDATE sees it, committed after this
	 * statement began). The new ones take their numbers as they are
	 * inserted, in place order, so the nth of them is the nth smallest
	 * seq among them (one without an Id has no other key; taking the
	 * numbers here, nextval(), would want a right on the sequence that
	 * inserting does not). A row per notification, or one with NULLs
	 * per delivery: (place, seq, stored anew, idx, id, leased).
	 *
	 * $18 to $20 lease new work to this process as it is stored (the
	 * owner, NULL: none; the lease's length; at most how many), in a
	 * transaction whose claim lock is held (ST_CLAIM_LOCK went first):
	 * the work ST_CLAIM would find eligible, the first open
	 * notification of each of its keys, none open in the table
	 * (notification_keys holds open work's keys only) nor before it
	 * in this statement ($21, one a notification: the caller's
	 * first_of_keys()). The newest work, it has no younger one. Each
	 * key of a candidate is a lookup of its own (a subquery with its
	 * LIMIT), as in ST_CLAIM.
	 */
	[ST_INGEST] =
		"WITH input AS (SELECT * FROM unnest($1::text[], $2::text[],"
		"  $3::bigint[], $4::bigint[], $5::text[], $6::bigint[],"
		"  $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])"
		"  WITH ORDINALITY AS i (receiver_id, delivery_id, attempt,"
		"  received_at, headers, body_start, body_len, properties_start,"
		"  properties_end, notifications, place)),"
		" d AS (INSERT INTO deliveries AS x (receiver_id, delivery_id,"
		"  attempt, received_at, headers, body, properties_start,"
		"  properties_end, notifications)"
		"  SELECT receiver_id, delivery_id, attempt, received_at, headers,"
		"  substring($11::bytea FROM (body_start + 1)::int"
		"   FOR body_len::int),"
		"  properties_start, properties_end, notifications FROM input"
		"  ORDER BY place"
		"  ON CONFLICT (receiver_id, delivery_id)"
		"  WHERE delivery_id IS NOT NULL DO UPDATE SET"
		"  duplicates = x.duplicates + 1,"
		"  last_attempt = greatest(coalesce(x.last_attempt, x.attempt),"
		"   excluded.attempt),"
		"  last_duplicate_at = excluded.received_at"
		"  RETURNING seq, receiver_id, delivery_id, xmax = 0 AS anew),"
		" kept AS (SELECT f.place, d.seq, f.received_at FROM d"
		"  JOIN input f ON f.receiver_id = d.receiver_id"
		"  AND f.delivery_id = d.delivery_id WHERE NOT d.anew),"
		" placed AS (SELECT place, seq, false AS anew, received_at"
		"  FROM kept UNION ALL"
		"  SELECT f.place, a.seq, true, f.received_at"
		"  FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS r"
		"  FROM d WHERE anew) a"
		"  JOIN (SELECT place, received_at,"
		"  row_number() OVER (ORDER BY place) AS r FROM input"
		"  WHERE place NOT IN (SELECT place FROM kept)) f ON f.r = a.r),"
		" input_n AS (SELECT * FROM unnest($12::bigint[],"
		"  $13::bigint[], $14::text[], $15::bigint[], $16::bigint[],"
		"  $17::text[], $21::boolean[]) AS n (place, idx, action,"
		"  json_start, json_end, keys, first)),"
		" new_n AS (SELECT n.place, n.idx, n.action, n.json_start,"
		"  n.json_end, p.seq, p.received_at,"
		"  CASE WHEN n.keys = '' THEN 'd:' || p.seq ELSE n.keys END"
		"  AS keys, n.first FROM input_n n JOIN placed p"
		"  ON p.place = n.place WHERE p.anew),"
		" free AS (SELECT place, idx FROM new_n n WHERE n.first"
		"  AND $18::text IS NOT NULL"
		"  AND current_setting('whr.claiming', true) = 'true'"
		"  AND (SELECT 1 FROM unnest(string_to_array(n.keys, E'\\n'))"
		"   AS k (key) WHERE (SELECT 1 FROM notification_keys x"
		"   WHERE x.key = k.key LIMIT 1) IS NOT NULL LIMIT 1) IS NULL"
		"  ORDER BY place, idx LIMIT $20),"
		" inserted AS (INSERT INTO notifications (delivery_seq, idx,"
		"  action, json_start, json_end, keys, state, next_at,"
		"  updated_at, lease_owner, lease_until)"
		"  SELECT n.seq, n.idx, n.action, n.json_start, n.json_end,"
		"  n.keys, 'pending', n.received_at, n.received_at,"
		"  CASE WHEN f.place IS NOT NULL THEN $18::text END,"
		"  CASE WHEN f.place IS NOT NULL THEN " DB_NOW_US " + $19 END"
		"  FROM new_n n LEFT JOIN free f"
		"  ON f.place = n.place AND f.idx = n.idx"
		"  ORDER BY n.place, n.idx RETURNING id, delivery_seq, idx, keys,"
		"  lease_owner IS NOT NULL AS leased),"
		" keyed AS (INSERT INTO notification_keys"
		"  (key, notification_id)"
		"  SELECT DISTINCT k, id FROM inserted,"
		"  unnest(string_to_array(keys, E'\\n')) AS k)"
		" SELECT p.place, p.seq, p.anew, i.idx, i.id,"
		" coalesce(i.leased, false) FROM placed p"
		" LEFT JOIN inserted i ON i.delivery_seq = p.seq",
	/* Binary results (WORK_COLUMNS): the JSON comes as the bytes
	 * stored; a row per outcome of earlier runs, or one with NULLs. */
	[ST_LOAD_WORK] =
		"SELECT " WORK_COLUMNS
		" FROM notifications n JOIN deliveries d"
		" ON d.seq = n.delivery_seq"
		" LEFT JOIN outcomes o ON o.notification_id = n.id"
		" WHERE n.id = $1",
	/*
	 * Eligible work, leased: open (found by its keys, after id $1),
	 * due ($2 is now), its lease run out (or none), and no older open
	 * notification shares one of its keys, in id order, skipping rows
	 * another claim has locked. Only the oldest open notification of a
	 * key is ever eligible, and a claim leases it to one replica: so a
	 * key's work runs in arrival order and never twice at once, across
	 * replicas, and retrying work keeps the younger work of its keys
	 * waiting. Nor while a younger notification of one of its keys is
	 * leased: ids are taken as rows are inserted, so another replica's
	 * younger work may commit, and be claimed, before this older work
	 * commits (two batches at once); it then waits for the younger
	 * one, so that a key's work never runs twice at once. A lease
	 * counts there until it is settled, given back (ST_UNCLAIM; a
	 * stop's leases of 0 are taken over at once) or taken over, even
	 * run out: a transactional handler's run holds its row locked,
	 * which claims and renewals pass over, so a run longer than the
	 * lease lets the lease run out while it runs. Work whose lease ran
	 * out is taken over without the first rule: the older work waiting
	 * for it must not keep it waiting in turn. $3 NULL: no limit. Both
	 * rules are asked of each candidate (WINDOW_KEYS) in id order until
	 * the limit, key by key from its own keys (an open notification's
	 * keys column holds its notification_keys rows), each key a lookup
	 * in the key's index: written as NOT EXISTS or as joins, the
	 * planner's statistics of a queue (none on a new database, stale
	 * by nature) let it choose to read every key of the table instead,
	 * tens of milliseconds at every claim with a backlog, and a
	 * prepared plan keeps that choice.
	 *
	 * With the work itself, as ST_LOAD_WORK gives it (binary, a row
	 * per outcome, a notification's rows together), so that no worker
	 * loads it: one round trip rather than one per notification. The
	 * outcomes joined are those of this statement's snapshot, and the
	 * row locked may be newer: so the work is good to run only where
	 * no run can have written outcomes the snapshot misses: pending
	 * work (new, or replayed) that no other claim held (its lease owner
	 * NULL in the row as locked). A lease that ran out may
	 * have had outcomes committed under it after the snapshot (a
	 * transactional handler's, on a row only locked, not changed), and
	 * another replica may have settled the row as retrying between the
	 * snapshot and the lock: that work (taken_over) is loaded afresh,
	 * after this claim.
	 *
	 * Only in a transaction that holds the claim lock (ST_CLAIM_LOCK
	 * said so): otherwise it claims nothing.
	 *
	 * The candidates are a window of open work (WINDOW_KEYS): the
	 * notifications of the first $6 rows of keys after $1, read from
	 * the keys' index by id alone, without the rows. The rules above
	 * are asked of each whatever the window. Its end comes in a last
	 * row of its own (WINDOW_END_ROW), NULL when it reached the last
	 * open work: the next claim looks from there (claim_moved_on()).
	 */
	[ST_CLAIM] =
		"WITH eligible AS (SELECT n.id,"
		"  n.lease_owner IS NOT NULL OR n.state = 'retrying'"
		"  AS taken_over FROM (SELECT notification_id,"
		"  lag(notification_id) OVER (ORDER BY notification_id)"
		"  AS previous FROM (" WINDOW_KEYS("notification_id") ") w) f"
		"  JOIN notifications n ON n.id = f.notification_id"
		"  WHERE f.previous IS DISTINCT FROM f.notification_id"
		"  AND current_setting('whr.claiming', true) = 'true'"
		"  AND n.state IN " OPEN
		"  AND n.next_at <= $2"
		"  AND (n.lease_until IS NULL OR n.lease_until < " DB_NOW_US ")"
		"  AND (n.lease_owner IS NOT NULL OR (SELECT o.notification_id"
		"   FROM unnest(string_to_array(n.keys, E'\\n')) AS k (key),"
		"   LATERAL (SELECT notification_id FROM notification_keys"
		"    WHERE key = k.key AND notification_id < n.id LIMIT 1) o"
		"   LIMIT 1) IS NULL)"
		"  AND (SELECT y.notification_id"
		"   FROM unnest(string_to_array(n.keys, E'\\n')) AS k (key),"
		"   LATERAL (SELECT y.notification_id FROM notification_keys y"
		"    JOIN notifications m ON m.id = y.notification_id"
		"    WHERE y.key = k.key AND y.notification_id > n.id"
		"    AND m.lease_owner IS NOT NULL LIMIT 1) y"
		"   LIMIT 1) IS NULL"
		"  ORDER BY f.notification_id LIMIT $3"
		"  FOR UPDATE OF n SKIP LOCKED),"
		" leased AS (UPDATE notifications n SET lease_owner = $4,"
		"  lease_until = " DB_NOW_US " + $5"
		"  FROM eligible e WHERE n.id = e.id"
		"  RETURNING n.*, e.taken_over)"
		" SELECT " WORK_COLUMNS ", n.taken_over, NULL::bigint"
		" FROM leased n JOIN deliveries d ON d.seq = n.delivery_seq"
		" LEFT JOIN outcomes o ON o.notification_id = n.id"
		" UNION ALL SELECT " WINDOW_END_ROW
		" ORDER BY " WC_ID_POSITION " NULLS LAST",
	/*
	 * Claims one at a time, across replicas: the lock is held until
	 * the transaction ends, and ST_CLAIM, a statement after it, sees
	 * every claim made before (committed) with what that claim's
	 * transaction stored. Without it, two replicas storing a
	 * notification of one key each, at the same moment, and claiming
	 * in the same transactions, each saw no other notification of the
	 * key (the other's, not committed yet) and both leased theirs:
	 * two runs of one key at once. Tried, not waited for: a replica
	 * whose claim finds the lock taken claims nothing this time (its
	 * deliveries never wait for another replica's commit), and
	 * ST_CLAIM is told so by a setting of the transaction.
	 */
	[ST_CLAIM_LOCK] = CLAIM_LOCK_SQL,
	/* What a claim's caller did not take. */
	[ST_UNCLAIM] =
		"UPDATE notifications"
		" SET lease_owner = NULL, lease_until = NULL"
		" WHERE id = ANY ($1::bigint[]) AND lease_owner = $2",
	/* Leases still this process's, also one that ran out meanwhile (a
	 * database away for longer than a lease) but that no other replica
	 * claimed: it is still running here. */
	[ST_RENEW] =
		"UPDATE notifications SET lease_until = " DB_NOW_US " + $2"
		" WHERE id = ANY ($3::bigint[]) AND lease_owner = $1"
		" AND state IN " OPEN,
	[ST_RENEW_ALL] =
		"UPDATE notifications SET lease_until = " DB_NOW_US " + $2"
		" WHERE id IN (SELECT n.id FROM " OPEN_WORK("f", "n")
		" WHERE n.lease_owner = $1) AND lease_owner = $1"
		" AND state IN " OPEN,
	/* Locked until the transaction ends, so that no claim takes it
	 * over meanwhile (claims skip locked rows). */
	[ST_OWN] =
		"SELECT (lease_owner IS NOT DISTINCT FROM $2"
		" AND state IN " OPEN ")::int"
		" FROM notifications WHERE id = $1 FOR UPDATE",
	[ST_COUNT_OPEN_AFTER] =
		"SELECT count(DISTINCT notification_id) FROM notification_keys"
		" WHERE notification_id > $1",
	/*
	 * Outcomes, as arrays (one element an outcome; no two of one
	 * notification and handler), written only while the notification
	 * is open and not another replica's (its lease ran out and another
	 * claimed it: that one's run counts; once that one settled it done
	 * or dead, its lease is gone, and a late run here must not open it
	 * again). The outcome locks the row until the commit, so that no
	 * claim takes it over in between. $6: this process.
	 */
	[ST_RECORD_OUTCOMES] =
		"WITH input AS (" OUTCOME_ARRAYS("$1", "$2", "$3", "$4", "$5")
		"), " OWN_ROWS("id = ANY ($1::bigint[])", "$6", "FOR UPDATE")
		" " RECORD_OUTCOMES("input", "own"),
	/*
	 * States, as arrays (one element a notification, none twice), by
	 * the same rule. Finished: its keys go, the next of each may be
	 * claimed.
	 */
	[ST_SETTLE] =
		"WITH input AS (" STATE_ARRAYS("$1", "$2", "$3", "$4", "$5")
		"), " SETTLED_ROWS("input", "$6") " " FINISHED_KEYS_GONE,
	/*
	 * Both, in one statement: a round's outcomes ($1 to $5) and states
	 * ($6 to $10). A notification with a state is updated, and its
	 * outcomes written only where it was; one with outcomes only is
	 * locked for them, after the others (not in one pass by id as
	 * before: two transactions could then lock rows crosswise only if
	 * both took the same rows for their own, open and leased to
	 * neither, and a deadlock is tried again, -EDEADLK). The same as
	 * ST_RECORD_OUTCOMES then ST_SETTLE: outcomes change no
	 * notification, so both find the same rows theirs. $11: this
	 * process.
	 */
	[ST_FINISH] =
		"WITH outcome_input AS ("
		OUTCOME_ARRAYS("$1", "$2", "$3", "$4", "$5") "),"
		" state_input AS ("
		STATE_ARRAYS("$6", "$7", "$8", "$9", "$10") "), "
		OWN_ROWS("id = ANY ($1::bigint[]) AND id <> ALL ($6::bigint[])",
			 "$11", "FOR UPDATE")
		", " SETTLED_ROWS("state_input", "$11")
		", recorded AS (" RECORD_OUTCOMES("outcome_input",
			"(SELECT id FROM own UNION ALL SELECT id FROM s) r")
		") " FINISHED_KEYS_GONE,
	[ST_DATA_VERSION] =
		"SELECT value FROM whr_meta WHERE key = 'data_version'",
	/* Held until the transaction ends: another replica's purge finds
	 * it taken and purges nothing. */
	[ST_PURGE_LOCK] = "SELECT pg_try_advisory_xact_lock(" PURGE_LOCK ")",
	/* Deliveries finished before $1 (the rule of SQLite's purge), at
	 * most $2, with their work, keys and outcomes. */
	[ST_PURGE] =
		"WITH d AS (SELECT seq FROM deliveries d WHERE received_at < $1"
		"  AND NOT EXISTS (SELECT 1 FROM notifications n"
		"  WHERE n.delivery_seq = d.seq AND (n.state IN " OPEN
		"  OR n.updated_at >= $1)) ORDER BY received_at LIMIT $2),"
		" n AS (SELECT id FROM notifications"
		"  WHERE delivery_seq IN (SELECT seq FROM d)),"
		" o AS (DELETE FROM outcomes"
		"  WHERE notification_id IN (SELECT id FROM n)),"
		" k AS (DELETE FROM notification_keys"
		"  WHERE notification_id IN (SELECT id FROM n)),"
		" w AS (DELETE FROM notifications"
		"  WHERE id IN (SELECT id FROM n))"
		" DELETE FROM deliveries WHERE seq IN (SELECT seq FROM d)",
	[ST_BYTES] =
		"SELECT coalesce(sum(pg_total_relation_size(t)), 0) FROM"
		" unnest(ARRAY[to_regclass('deliveries'),"
		" to_regclass('notifications'),"
		" to_regclass('notification_keys'), to_regclass('outcomes'),"
		" to_regclass('whr_meta')]) AS t WHERE t IS NOT NULL",
};

/* ---- the connection --------------------------------------------------- */

/* A growing string. */
struct text {
	char *p;
	size_t len, cap;
	bool oom;
};


/* A statement of the transaction handle: one per distinct SQL text,
 * prepared on the server under its own name. */
struct pg_stmt {
	struct whr_stmt base;	/* first: the handle's view, and the key */
	char name[24];
	int n_params;
	char **params;		/* NULL: NULL */
	PGresult *res;		/* the rows, once run */
	int row, rows;
	bool done;
	int64_t changes;
};

struct pg_tx {
	struct whr_tx base;	/* first: the handle's view */
	struct pg_store *s;
	struct stmt_cache cache;
	unsigned next_name;
};

/* The LISTEN connection of whr_store_listen(), on a thread of its own. */
struct pg_listener {
	struct pg_store *s;
	void (*fn)(void *arg);
	void *arg;
	pthread_t thread;
	int stop_fd;		/* an eventfd: written to stop */
	/* The gauges, counted on the listener's connection (see
	 * count_gauges()); the lock guards them against pg_gauges(). */
	pthread_mutex_t lock;
	struct store_gauges gauges;
	int64_t counted_at;	/* monotonic; 0: never */
	int64_t count_at;	/* the next count, not before */
	/* Leases renewed from here (whr_store_keep_leases()); held NULL:
	 * none. Set under the lock; the rest is the thread's own. */
	size_t (*held)(void *arg, int64_t *ids, size_t max);
	void *held_arg;
	int64_t lease_us;
	int64_t renew_at;	/* monotonic: the next renewal */
	int64_t *ids;
	size_t cap_ids;
};

/* An outcome or a state gathered: its notification, and an outcome's
 * handler (a copy). */
struct gathered_run {
	int64_t id;
	char *handler;
};

/*
 * Pipelined writes gathered into one statement each, their columns as
 * arrays: a statement costs the server about as much as the rows it
 * writes. Sent before anything else goes down the pipe, at the latest
 * at the commit (send_gathered()); what is gathered refers to nothing
 * the caller may free before the commit (the deliveries stay its own
 * until then, whr_store_pipeline()).
 */
struct gathered {
	struct ingest_delivery **deliveries;	/* ST_INGEST's */
	size_t n_deliveries, cap_deliveries;
	size_t body_bytes;
	struct text outcomes[5];	/* ST_RECORD_OUTCOMES' arrays */
	struct gathered_run *outcome_runs;
	size_t n_outcomes, cap_outcomes;
	struct text states[5];		/* ST_SETTLE's arrays */
	int64_t *settled;
	size_t n_settled, cap_settled;
};

struct pg_store {
	struct whr_store base;	/* first: the interface's view */
	PGconn *conn;
	enum store_mode mode;
	bool prepared[ST_COUNT];
	bool synced;		/* the next transactions commit synchronously */
	bool in_tx;		/* begun, not yet committed or rolled back */
	bool in_handler;	/* a transactional handler runs */
	bool handler_deadlock;	/* its failed statement was a deadlock or a
				 * serialization failure */
	bool notify;		/* the transaction made work others may
				 * claim: NOTIFY at its commit */
	bool read_only;		/* the server refused a write: a standby
				 * now (a failover): connect anew */
	bool out_of_step;	/* a pipeline's answers left unread on a
				 * connection still up: they would meet
				 * the next statements; connect anew */
	/* Reconnecting: not before retry_at (monotonic), then backing off
	 * up to RECONNECT_MAX_US while the server stays away. */
	int64_t retry_at, backoff;
	struct pg_tx tx;
	/* Pipelining (whr_store_pipeline()): a transaction's writes are
	 * sent as they come and answered all together, at the commit. */
	bool pipelining;	/* allowed */
	bool piped;		/* in libpq's pipeline mode now */
	int piped_rc;		/* the first failure of what was sent */
	struct pending *queue;	/* what was sent, its answers to come */
	size_t n_queue, cap_queue;
	struct gathered gathered;
	/* A claim made in the transaction (pg_claim_at_commit()): its
	 * answer, kept from the commit to pg_take_claimed(); NULL: none,
	 * or the transaction did not commit. */
	PGresult *claimed;
	bool claim_in_tx;	/* the transaction claimed already */
	/* The new work the ingest statements sent now lease to this
	 * process, at most (0: none), for lease_us: set by
	 * pg_claim_at_commit() while it sends them. */
	int64_t lease_new;
	int64_t lease_us;	/* the last claim's lease (0: none yet) */
	/* Claims look at a window of open work (ST_CLAIM): at most
	 * claim_window rows of keys (0: no bound) after claim_from, where
	 * the last claim that did not fill stopped (0: the oldest), or
	 * where claims fill, until they have filled there for long enough
	 * (claim_moved_on()); and the limit of the claim sent last. */
	int64_t claim_window, claim_from, claim_limit;
	int64_t claim_left_oldest_us;	/* when claim_from left 0 */
	int64_t claim_filling_us;	/* since when claims fill there (0:
					 * the last did not) */
	int64_t claim_away_most_us;	/* CLAIM_AWAY_MOST_US */
	bool claim_left;	/* the last claim came short, its window
				 * short of the newest open work
				 * (whr_store_claim_left()) */
	/* The run the transaction writes (pg_own(), 0: none). */
	int64_t owned_id;
	bool claim_busy;	/* its claim found the claim lock taken */
	struct pg_listener *listener;	/* NULL: none */
	char *location;		/* as given, for the listener (wiped) */
	char *password;		/* to mask; NULL: none given */
	char *notify_sql;	/* NOTIFY whr_work, 'this process' */
	char *notify_commit_sql;	/* the same and COMMIT, one round trip */
	char name[512];		/* the URL without its password */
};

/* A statement sent in pipeline mode, whose answer is read later. */
enum pending_kind {
	PENDING_WRITE,		/* only its success matters */
	PENDING_INGEST,		/* its rows fill in @p deliveries */
	PENDING_COMMIT,		/* COMMIT: answered COMMIT, or it failed */
	PENDING_CLAIM,		/* ST_CLAIM: its answer becomes claimed */
	PENDING_CLAIM_LOCK,	/* ST_CLAIM_LOCK: "false" sets claim_busy */
};

struct pending {
	enum pending_kind kind;
	struct ingest_delivery **deliveries;	/* PENDING_INGEST's, its
						 * own array */
	size_t n_deliveries;
	const char *what;	/* for the error */
};

/* Statements sent before their answers are read: past this, the
 * answers are read (the socket buffers must not fill both ways). */
#define PIPELINE_MAX 256

/* Pipelined deliveries gathered into one statement: at most this many,
 * or this many bytes of bodies (a larger body goes alone). */
#define GATHER_MAX 256
#define GATHER_BYTES_MAX (8 << 20)

static const struct tx_backend tx_postgresql;
static void tx_drop_cache(struct pg_tx *tx);
static void gathered_clear(struct gathered *g);
static void gathered_free(struct gathered *g);
static int reconnect(struct pg_store *s);
static void pg_rollback(struct whr_store *store);
static int drain(struct pg_store *s);

/* The store's error, and the handle's (with the store's). */
#define set_error(s, ...) store_set_error(&(s)->base, __VA_ARGS__)
#define tx_set_error(tx, ...) store_tx_set_error(&(tx)->base, __VA_ARGS__)

static struct pg_store *
pg(struct whr_store *s)
{
	return (struct pg_store *)s;
}

/* ---- messages ------------------------------------------------------------ */

/* libpq's message on one line, without the password, into @p out. */
static void
clean_message(const struct pg_store *s, const char *msg, char *out,
	      size_t size)
{
	size_t n = 0;
	size_t plen = s->password != NULL ? strlen(s->password) : 0;
	const char *p;

	for (p = msg != NULL ? msg : ""; *p != '\0' && n + 1 < size;) {
		if (plen > 0 && strncmp(p, s->password, plen) == 0) {
			size_t k;

			for (k = 0; k < 3 && n + 1 < size; k++)
				out[n++] = '*';
			p += plen;
			continue;
		}
		if (*p == '\n' || *p == '\t' || *p == '\r') {
			if (n > 0 && out[n - 1] != ' ')
				out[n++] = ' ';
			p++;
			continue;
		}
		out[n++] = *p++;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/* A SQLSTATE as the errno the interface promises: EIO and its kin for
 * "the store cannot take writes now" (the front's 503), the same as
 * SQLite's codes give; EDEADLK for a serialization failure or a
 * deadlock, which a batch tried again at once may pass. */
static int
errno_of_state(const char *state)
{
	static const struct {
		const char *state;
		int err;
	} codes[] = {
		{ "53200", ENOMEM },	/* out of memory */
		{ "53100", ENOSPC },	/* disk full */
		{ "25006", EROFS },	/* read-only transaction */
		{ "42501", EACCES },	/* insufficient privilege */
		{ "55P03", EBUSY },	/* lock not available */
		{ "57014", EBUSY },	/* statement timeout */
		{ "40001", EDEADLK },	/* serialization failure */
		{ "40P01", EDEADLK },	/* deadlock */
	};
	size_t i;

	if (state == NULL)
		return -EIO;	/* no answer: the connection is gone */
	/* Class 23, integrity constraints, as SQLITE_CONSTRAINT. */
	if (strncmp(state, "23", 2) == 0)
		return -EEXIST;
	for (i = 0; i < ARRAY_LENGTH(codes); i++) {
		if (strcmp(state, codes[i].state) == 0)
			return -codes[i].err;
	}
	return -EIO;
}

/* Keep the database's message of a failure (@p res, or the connection's
 * when NULL) for whr_store_error(); the errno it means. */
static int
store_fail(struct pg_store *s, const PGresult *res, const char *what)
{
	const char *state = res != NULL
		? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res != NULL
		? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	clean_message(s, primary != NULL ? primary : PQerrorMessage(s->conn),
		      s->base.cause, sizeof(s->base.cause));
	if (state != NULL && strcmp(state, "25006") == 0)
		s->read_only = true;
	if (s->base.cause[0] == '\0')
		snprintf(s->base.cause, sizeof(s->base.cause),
			 "no answer from the server");
	snprintf(s->base.error, sizeof(s->base.error), "%s: %s (%s%s)", what,
		 s->base.cause, state != NULL ? "SQLSTATE " : "",
		 state != NULL ? state : "connection");
	return errno_of_state(state);
}

static const char *
pg_name(const struct whr_store *store)
{
	return ((const struct pg_store *)store)->name;
}

/* ---- running statements ------------------------------------------------- */

/* Parameters of one statement: integers formatted here, text and bytes
 * borrowed from the caller. */
struct params {
	int n;
	const char *values[MAX_PARAMS];
	int lengths[MAX_PARAMS];
	int formats[MAX_PARAMS];
	char numbers[MAX_PARAMS][24];
};

static void
param_text(struct params *p, const char *text)
{
	p->values[p->n] = text;
	p->lengths[p->n] = 0;
	p->formats[p->n++] = 0;
}

static void
param_int(struct params *p, int64_t v)
{
	snprintf(p->numbers[p->n], sizeof(p->numbers[p->n]), "%" PRId64, v);
	param_text(p, p->numbers[p->n]);
}

static void
param_bytes(struct params *p, const void *bytes, size_t len)
{
	p->values[p->n] = bytes;
	p->lengths[p->n] = (int)len;
	p->formats[p->n++] = 1;
}

static bool
result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Outside a transaction, a lost connection (the server restarted, a
 * failover), one on a server that refuses writes, or one out of step
 * (answers left unread) is made again before the next statement, once.
 * Inside one, the statement fails, and with it the transaction. */
static int
connection(struct pg_store *s)
{
	if ((PQstatus(s->conn) == CONNECTION_OK && !s->read_only &&
	     !s->out_of_step) || s->in_tx)
		return 0;
	return reconnect(s);
}

/* Whether a statement that just failed did because the connection was
 * lost, outside a transaction: made again, it is tried once more. (The
 * server's first word after a restart is that it closed the
 * connection: the statement after it works.) */
static bool
lost_between_transactions(struct pg_store *s)
{
	return !s->in_tx && PQstatus(s->conn) == CONNECTION_BAD;
}

/* Run statement @p which, prepared on first use and kept by the
 * connection: its result, or NULL after store_fail() (*rc its errno). */
static PGresult *
run(struct pg_store *s, enum statement which, const struct params *p,
    int binary, const char *what, int *rc)
{
	char name[16];
	PGresult *res;
	int tries = 0;

	snprintf(name, sizeof(name), "whr_%d", (int)which);
	/* What was sent before is answered first, in order. */
	*rc = drain(s);
	if (*rc < 0)
		return NULL;
again:
	*rc = connection(s);
	if (*rc < 0)
		return NULL;
	if (!s->prepared[which]) {
		res = PQprepare(s->conn, name, statement_sql[which], 0, NULL);
		if (!result_ok(res)) {
			*rc = store_fail(s, res, "cannot prepare a statement");
			PQclear(res);
			if (lost_between_transactions(s) && tries++ == 0)
				goto again;
			return NULL;
		}
		PQclear(res);
		s->prepared[which] = true;
	}
	res = PQexecPrepared(s->conn, name, p != NULL ? p->n : 0,
			     p != NULL ? p->values : NULL,
			     p != NULL ? p->lengths : NULL,
			     p != NULL ? p->formats : NULL, binary);
	if (!result_ok(res)) {
		*rc = store_fail(s, res, what);
		PQclear(res);
		if (lost_between_transactions(s) && tries++ == 0)
			goto again;
		return NULL;
	}
	*rc = 0;
	return res;
}

/* Run a statement whose rows (if any) do not matter. */
static int
run_done(struct pg_store *s, enum statement which, const struct params *p,
	 const char *what)
{
	int rc;

	PQclear(run(s, which, p, 0, what, &rc));
	return rc;
}

/* SQL without parameters, by the simple protocol (several statements
 * may go in one round trip): the last one's result, or NULL and
 * @p rc a negative errno. */
static PGresult *
exec_last_result(struct pg_store *s, const char *sql, const char *what,
		 int *rc)
{
	PGresult *res;
	int tries = 0;

	*rc = drain(s);
	if (*rc < 0)
		return NULL;
again:
	*rc = connection(s);
	if (*rc < 0)
		return NULL;
	res = PQexec(s->conn, sql);
	if (!result_ok(res)) {
		*rc = store_fail(s, res, what);
		PQclear(res);
		if (lost_between_transactions(s) && tries++ == 0)
			goto again;
		return NULL;
	}
	*rc = 0;
	return res;
}

static int
exec(struct pg_store *s, const char *sql, const char *what)
{
	int rc;

	PQclear(exec_last_result(s, sql, what, &rc));
	return rc;
}

/* A column as an integer, from text or binary results. */
static int64_t
column_int(const PGresult *res, int row, int col)
{
	const char *v = PQgetvalue(res, row, col);
	const unsigned char *b = (const unsigned char *)v;
	uint64_t u = 0;
	int len, i;

	if (PQgetisnull(res, row, col))
		return 0;
	if (PQfformat(res, col) == 0)
		return strtoll(v, NULL, 10);
	len = PQgetlength(res, row, col);
	for (i = 0; i < len && i < 8; i++)
		u = u << 8 | b[i];
	if (len == 4)
		return (int32_t)(uint32_t)u;
	if (len == 2)
		return (int16_t)(uint16_t)u;
	return (int64_t)u;
}

/* A column's bytes, NUL-terminated, or NULL (for NULL, or out of
 * memory: *oom says which). */
static char *
column_copy(const PGresult *res, int row, int col, size_t *len, bool *oom)
{
	int n = PQgetlength(res, row, col);
	char *out;

	if (PQgetisnull(res, row, col))
		return NULL;
	out = malloc((size_t)n + 1);
	if (out == NULL) {
		*oom = true;
		return NULL;
	}
	memcpy(out, PQgetvalue(res, row, col), (size_t)n);
	out[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
	return out;
}

/* Run a statement for one number: with @p changes how many rows it
 * changed, else its first row's first column (0 without rows); or a
 * negative errno. */
static int64_t
run_number(struct pg_store *s, enum statement which, const struct params *p,
	   const char *what, bool changes)
{
	int rc;
	PGresult *res = run(s, which, p, 0, what, &rc);
	int64_t v;

	if (res == NULL)
		return rc;
	if (changes)
		v = atoi(PQcmdTuples(res));
	else
		v = PQntuples(res) > 0 ? column_int(res, 0, 0) : 0;
	PQclear(res);
	return v;
}

/* Run a statement that changes rows: how many, or a negative errno. */
static int
run_count(struct pg_store *s, enum statement which, const struct params *p,
	  const char *what)
{
	return (int)run_number(s, which, p, what, true);
}

/* The one integer @p which gives; -errno on a failure. */
static int64_t
query_int(struct pg_store *s, enum statement which, const struct params *p,
	  const char *what)
{
	return run_number(s, which, p, what, false);
}

/* ---- text arrays -------------------------------------------------------- */

static void
text_add(struct text *t, const char *s, size_t n)
{
	if (t->oom)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		char *grown;

		while (cap < t->len + n + 1)
			cap *= 2;
		grown = realloc(t->p, cap);
		if (grown == NULL) {
			t->oom = true;
			return;
		}
		t->p = grown;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

/* The next element of an array literal: NULL, or quoted with \ before "
 * and \ (PostgreSQL's rule for array text). The literal is opened by
 * its first element, and closed by array_close(). */
static void
elem_text(struct text *t, const char *v)
{
	text_add(t, t->len == 0 ? "{" : ",", 1);
	if (v == NULL) {
		text_add(t, "NULL", 4);
		return;
	}
	text_add(t, "\"", 1);
	/* A run at a time up to the next character to escape. */
	for (;;) {
		size_t run = strcspn(v, "\"\\");

		text_add(t, v, run);
		v += run;
		if (*v == '\0')
			break;
		text_add(t, "\\", 1);
		text_add(t, v++, 1);
	}
	text_add(t, "\"", 1);
}

/* Tens of these a delivery: digits by hand rather than snprintf(). */
static void
elem_int(struct text *t, int64_t v)
{
	char buf[24];
	char *p = buf + sizeof(buf);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	*--p = t->len == 0 ? '{' : ',';
	text_add(t, p, (size_t)(buf + sizeof(buf) - p));
}

/* The end of an array literal; {} when it has no elements. */
static void
array_close(struct text *t)
{
	if (t->len == 0)
		text_add(t, "{", 1);
	text_add(t, "}", 1);
}

/* @p n ids as an array literal, {1,2,3}, for a bigint[] parameter. */
static void
ids_array(struct text *t, const int64_t *ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		elem_int(t, ids[i]);
	array_close(t);
}

/* ---- schema versions ----------------------------------------------------- */

/* The schema's version and the oldest one that runs on it: 0 and 0 when
 * there is no whr_meta (no inbox yet), or a negative errno. */
static int
read_version(struct pg_store *s, int64_t *version, int64_t *compatible)
{
	PGresult *res = PQexec(s->conn,
		"SELECT to_regclass('whr_meta') IS NOT NULL");
	bool present;
	int rc = 0;

	*version = *compatible = 0;
	if (!result_ok(res) || PQntuples(res) != 1) {
		rc = store_fail(s, res, "cannot read the schema version");
		PQclear(res);
		return rc;
	}
	present = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!present)
		return 0;	/* a database without whr's tables */
	res = PQexec(s->conn,
		"SELECT (SELECT value FROM whr_meta"
		" WHERE key = 'schema_version'),"
		" (SELECT value FROM whr_meta"
		" WHERE key = 'schema_compatible')");
	if (!result_ok(res) || PQntuples(res) != 1)
		rc = store_fail(s, res, "cannot read the schema version");
	else if (PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1)) {
		set_error(s, "%s is not a whr database this whr reads (its "
			  "whr_meta has no schema version)", s->name);
		rc = -EIO;
	} else {
		*version = column_int(res, 0, 0);
		*compatible = column_int(res, 0, 1);
	}
	PQclear(res);
	return rc;
}

/* Whether this whr runs on a schema of @p version. */
static bool
runs_on(int64_t version, int64_t compatible)
{
	return version == SCHEMA_VERSION ||
	       (version > SCHEMA_VERSION && compatible <= SCHEMA_VERSION);
}

/* Create or migrate the schema, in one transaction under the migration
 * lock: replicas starting together wait for the first, then find its
 * work done. */
static int
migrate(struct pg_store *s)
{
	int64_t version, compatible;
	char sql[160];
	int created_compatible = 0;
	int v;
	int rc;

	rc = exec(s, "BEGIN; SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")",
		  "cannot lock the inbox's schema");
	s->in_tx = true;
	if (rc < 0)
		goto err;
	rc = read_version(s, &version, &compatible);
	if (rc < 0)
		goto err;
	if (version > SCHEMA_VERSION && !runs_on(version, compatible)) {
		set_error(s, "schema version %lld, newer than this whr knows "
			  "(%d): run a newer whr, or give another --database",
			  (long long)version, SCHEMA_VERSION);
		rc = -EPROTO;
		goto err;
	}
	for (v = (int)version; v < SCHEMA_VERSION; v++) {
		const struct migration *m = &migrations[v];

		rc = exec(s, m->sql, "cannot migrate the inbox");
		if (rc == 0 && version == 0 && m->created_without != NULL) {
			rc = exec(s, m->created_without,
				  "cannot create the inbox");
			created_compatible = v + 1;
		}
		if (rc < 0)
			goto err;
		snprintf(sql, sizeof(sql),
			 "UPDATE whr_meta SET value = CASE key"
			 " WHEN 'schema_version' THEN %d ELSE %d END"
			 " WHERE key IN"
			 " ('schema_version', 'schema_compatible')",
			 v + 1, m->compatible > created_compatible ?
			 m->compatible : created_compatible);
		rc = exec(s, sql, "cannot record the schema version");
		if (rc < 0)
			goto err;
	}
	rc = exec(s, "COMMIT", "cannot commit the inbox schema");
	s->in_tx = false;
	if (rc < 0)
		goto err;
	if (version == 0)
		whr_log(WHR_LOG_INFO, "created inbox %s (schema version %d)",
			s->name, SCHEMA_VERSION);
	else if (version < SCHEMA_VERSION)
		whr_log(WHR_LOG_INFO,
			"inbox %s: schema version %lld, migrated to %d",
			s->name, (long long)version, SCHEMA_VERSION);
	return 0;
err:
	pg_rollback(&s->base);
	return rc;
}

/* A worker's, or a tool's, check of the schema, with the messages the
 * tools print. */
static int
check_version(struct pg_store *s)
{
	int64_t version, compatible;
	int rc = read_version(s, &version, &compatible);

	if (rc < 0)
		return rc;
	if (version == 0) {
		set_error(s, "no whr inbox in %s: whr serve creates it on its "
			  "first start", s->name);
		return -ENOENT;
	}
	if (version > SCHEMA_VERSION && !runs_on(version, compatible)) {
		set_error(s, "%s has schema version %lld, newer than this whr "
			  "reads (%d): use a newer whr", s->name,
			  (long long)version, SCHEMA_VERSION);
		return -EPROTO;
	}
	if (version < SCHEMA_VERSION && s->mode != STORE_READER) {
		set_error(s, "%s has schema version %lld: start this whr "
			  "serve once, which brings it to version %d, then try "
			  "again", s->name, (long long)version, SCHEMA_VERSION);
		return -EIO;
	}
	return 0;
}

/* ---- opening ------------------------------------------------------------- */

/* Who leases work: this process, for as long as it lives (the host, the
 * pid and when it first opened a store). */
static char lease_owner[320];
static pthread_once_t lease_owner_once = PTHREAD_ONCE_INIT;

static void
make_lease_owner(void)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(lease_owner, sizeof(lease_owner), "%s:%ld:%" PRId64, host,
		 (long)getpid(), now_realtime_us());
}

/* The location's parts for messages, and its password to mask: false
 * when libpq cannot read it (its message is not kept: it may quote the
 * password). */
static bool
describe_location(struct pg_store *s, const char *location)
{
	PQconninfoOption *opts = PQconninfoParse(location, NULL);
	const char *user = NULL, *host = NULL, *port = NULL, *db = NULL;
	PQconninfoOption *o;

	if (opts == NULL)
		return false;
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "password") == 0)
			s->password = strdup(o->val);
		else if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if (strcmp(o->keyword, "host") == 0 ||
			 (host == NULL && strcmp(o->keyword, "hostaddr") == 0))
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	snprintf(s->name, sizeof(s->name), "postgresql://%s%s%s%s%s/%s",
		 user != NULL ? user : "", user != NULL ? "@" : "",
		 host != NULL ? host : "", port != NULL ? ":" : "",
		 port != NULL ? port : "", db != NULL ? db : "");
	PQconninfoFree(opts);
	return true;
}

WHR_EXPORT bool
whr_store_location_has_password(const char *location)
{
	PQconninfoOption *opts = PQconninfoParse(location, NULL);
	PQconninfoOption *o;
	bool has = false;

	for (o = opts; o != NULL && o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL &&
		    o->val[0] != '\0')
			has = true;
	}
	PQconninfoFree(opts);
	return has;
}

/* Whether the server refuses writes: a standby (in recovery), or one
 * whose transactions are read-only by default. PostgreSQL 14 and later
 * say so as the connection is made; older servers, and a pool that
 * passes their word on (pgbouncer), are asked. */
static bool
refuses_writes(struct pg_store *s)
{
	const char *standby = PQparameterStatus(s->conn, "in_hot_standby");
	const char *ro = PQparameterStatus(s->conn,
					   "default_transaction_read_only");
	PGresult *res;
	bool refuses;

	if (standby != NULL && ro != NULL)
		return strcmp(standby, "on") == 0 || strcmp(ro, "on") == 0;
	res = PQexec(s->conn, "SELECT pg_is_in_recovery() OR"
			      " current_setting('default_transaction_read_only')"
			      "::boolean");
	refuses = result_ok(res) && PQntuples(res) == 1 &&
		  strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return refuses;
}

/* A server's connection: the inbox's statements never want a bitmap
 * scan or a sequential scan, nor JIT (why: connected()); set at
 * connect, and again after a handler's savepoint. */
#define SERVER_SETTINGS \
	"SET enable_bitmapscan = off; SET enable_seqscan = off; SET jit = off"

/* A connection made (or made again): 0, or -EIO (-EROFS: a server that
 * refuses writes, to a writer) saying why. */
static int
connected(struct pg_store *s)
{
	if (PQstatus(s->conn) != CONNECTION_OK) {
		clean_message(s, PQerrorMessage(s->conn), s->base.cause,
			      sizeof(s->base.cause));
		snprintf(s->base.error, sizeof(s->base.error),
			 "cannot connect: %s", s->base.cause);
		return -EIO;
	}
	/* A standby (a failover left the location on one) refuses every
	 * write: no connection for a writer. Failing here, reconnect()
	 * backs off as for a server away, where connecting again at each
	 * refused write would take a connection per delivery. Readers and
	 * workers only read: a standby serves them. */
	if ((s->mode == STORE_SERVER || s->mode == STORE_WRITER) &&
	    refuses_writes(s)) {
		s->read_only = true;
		snprintf(s->base.cause, sizeof(s->base.cause),
			 "the server refuses writes: a standby, or read-only "
			 "(give a location that reaches the primary)");
		snprintf(s->base.error, sizeof(s->base.error),
			 "cannot write to %s: %s", s->name, s->base.cause);
		return -EROFS;
	}
	/* Readers (whr inbox list, show, stats) never write. Every
	 * statement of whr's is short: compiling one (JIT, which the
	 * planner's estimate for a claim over a backlog asks for) costs
	 * a hundred milliseconds, a thousand times what it saves. */
	if (s->mode == STORE_READER)
		return exec(s, "SET default_transaction_read_only = on;"
			    " SET jit = off", "cannot open the database");
	/* A claim wants the oldest open work in id order, the first few
	 * of them: an index scan it stops early. Without statistics yet
	 * (a new database), or with some from before a backlog, the
	 * planner takes the open work to be a handful and prefers a
	 * bitmap scan and a sort of all of it (milliseconds per thousand,
	 * at every claim). Nor, checking the keys of each candidate,
	 * does it want a scan of every key (the plan a claim prepared
	 * on a new database keeps: 5 ms at every claim with a backlog of
	 * a thousand). The inbox's own statements never want a bitmap scan
	 * or a sequential scan; a handler's get them back
	 * (pg_handler_begin()). */
	if (s->mode == STORE_SERVER)
		return exec(s, SERVER_SETTINGS, "cannot open the database");
	return exec(s, "SET jit = off", "cannot open the database");
}

/* The settings of every connection: ours first, so that the location's
 * own settings win; the encoding last, as every text whr reads and
 * writes is UTF-8. Keepalives and the user timeout find a server gone
 * without a word (a failover that drops packets) in seconds. */
static const char *const connect_keys[] = {
	"application_name", "connect_timeout", "keepalives",
	"keepalives_idle", "keepalives_interval", "keepalives_count",
	"tcp_user_timeout", "dbname", "client_encoding", NULL,
};

static void
connect_values(const char *location, const char **values)
{
	const char *const ours[] = {
		"whr", CONNECT_TIMEOUT_S, "1", "5", "2", "2",
		TCP_USER_TIMEOUT_MS, location, "UTF8", NULL,
	};

	memcpy(values, ours, sizeof(ours));
}

/* The server's notices and warnings (a connection it ends as it shuts
 * down says why): in whr's log, at debug, not on stderr as libpq would
 * print them. */
static void
on_notice(void *arg, const char *message)
{
	struct pg_store *s = arg;
	char clean[512];

	if (s == NULL)
		return;		/* the listener's: nothing to add */
	clean_message(s, message, clean, sizeof(clean));
	whr_log(WHR_LOG_DEBUG, "database %s: %s", s->name, clean);
}

static int
connect_db(struct pg_store *s, const char *location)
{
	const char *values[ARRAY_LENGTH(connect_keys)];

	connect_values(location, values);
	s->conn = PQconnectdbParams(connect_keys, values, 1);
	if (s->conn == NULL) {
		set_error(s, "out of memory");
		return -ENOMEM;
	}
	PQsetNoticeProcessor(s->conn, on_notice, s);
	return connected(s);
}

static void stop_listener(struct pg_store *s);

static int
pg_open(const char *location, enum store_mode mode, struct whr_store **out)
{
	struct pg_store *s = calloc(1, sizeof(*s));
	char *owner;
	int rc;

	if (s == NULL)
		return -ENOMEM;
	*out = &s->base;
	store_init(&s->base, &store_postgresql, &s->tx.base, &tx_postgresql);
	s->tx.s = s;
	s->mode = mode;
	s->synced = true;
	s->claim_window = CLAIM_WINDOW;
	s->claim_away_most_us = CLAIM_AWAY_MOST_US;
	pthread_once(&lease_owner_once, make_lease_owner);
	if (!describe_location(s, location)) {
		snprintf(s->name, sizeof(s->name), "(a PostgreSQL database)");
		set_error(s, "cannot read the database location: "
				"give a postgresql://USER@HOST:PORT/DATABASE "
				"URL, or key=value settings starting with "
				"host= or dbname=");
		return -EINVAL;
	}
	s->location = strdup(location);
	if (s->location == NULL) {
		set_error(s, "out of memory");
		return -ENOMEM;
	}
	rc = connect_db(s, location);
	if (rc == 0)
		rc = mode == STORE_SERVER ? migrate(s) : check_version(s);
	if (rc == 0) {
		/* Who notified is said, so that a replica's listener can
		 * leave its own notifications aside. */
		owner = PQescapeLiteral(s->conn, lease_owner,
					strlen(lease_owner));
		if (owner != NULL &&
		    asprintf(&s->notify_sql, "NOTIFY " CHANNEL ", %s",
			     owner) < 0)
			s->notify_sql = NULL;
		if (owner != NULL &&
		    asprintf(&s->notify_commit_sql, "NOTIFY " CHANNEL
			     ", %s; COMMIT", owner) < 0)
			s->notify_commit_sql = NULL;
		PQfreemem(owner);
		if (s->notify_sql == NULL || s->notify_commit_sql == NULL) {
			set_error(s, "out of memory");
			rc = -ENOMEM;
		}
	}
	return rc;
}

static void
wipe(char *text)
{
	if (text != NULL) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
}

static void
pg_close(struct whr_store *store)
{
	struct pg_store *s = pg(store);

	stop_listener(s);
	tx_drop_cache(&s->tx);
	PQfinish(s->conn);
	wipe(s->password);
	wipe(s->location);
	free(s->notify_sql);
	free(s->notify_commit_sql);
	free(s->queue);
	gathered_free(&s->gathered);
	PQclear(s->claimed);
	free(s);
}

/* A connection lost (the server restarted, a failover), refusing writes
 * (a standby now) or out of step (answers left unread): connect again
 * now, unless the last attempt failed moments ago: then fail at once
 * (the front answers 503) until it is time to try again, backing off up
 * to a second. Statements prepared on the old connection are gone with
 * it. */
static int
reconnect(struct pg_store *s)
{
	int64_t now = now_monotonic_us();
	int rc;

	if (PQstatus(s->conn) == CONNECTION_OK && !s->read_only &&
	    !s->out_of_step)
		return 0;
	if (now < s->retry_at) {
		snprintf(s->base.error, sizeof(s->base.error),
			 "cannot connect: %s", s->base.cause);
		return -EIO;
	}
	tx_drop_cache(&s->tx);
	memset(s->prepared, 0, sizeof(s->prepared));
	/* Out of step, libpq's buffer may still hold the transaction's
	 * statements, COMMIT too: PQreset() would send them before it
	 * says goodbye, and the server would commit what was reported
	 * failed. Shut, the socket sends nothing more: the server finds
	 * it closed, and rolls back what it had begun. */
	if (s->out_of_step && PQsocket(s->conn) >= 0)
		shutdown(PQsocket(s->conn), SHUT_RDWR);
	/* A server that became a standby: a multi-host location
	 * (target_session_attrs=read-write) finds the new primary. */
	s->read_only = false;
	s->out_of_step = false;
	PQreset(s->conn);
	rc = connected(s);
	if (rc == 0) {
		s->backoff = 0;
		s->retry_at = 0;
		return 0;
	}
	s->backoff = s->backoff == 0 ? RECONNECT_MIN_US
		     : s->backoff >= RECONNECT_MAX_US / 2 ? RECONNECT_MAX_US
		     : 2 * s->backoff;
	s->retry_at = now_monotonic_us() + s->backoff;
	return rc;
}

/* ---- listening -------------------------------------------------------- */

/* Wait until @p fd is ready for @p events (POLLIN, POLLOUT), @p stop_fd
 * is written to, or @p timeout_ms passes (-1: no limit). 1 ready, 0 the
 * time passed, -1 stopped. */
static int
wait_fd(int fd, short events, int stop_fd, int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = stop_fd, .events = POLLIN },
		{ .fd = fd, .events = events },
	};
	int n = poll(p, fd >= 0 ? 2 : 1, timeout_ms);

	if (n < 0)
		return 0;
	if (p[0].revents != 0)
		return -1;
	return n > 0;
}

/* A connection for the listener, made without blocking its stop: NULL
 * when it cannot be made now (or the listener stops). */
static PGconn *
listen_connect(struct pg_listener *l)
{
	const char *values[ARRAY_LENGTH(connect_keys)];
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	int64_t deadline = now_monotonic_us() + 5000000;
	PGconn *c;
	PGresult *res;

	connect_values(l->s->location, values);
	c = PQconnectStartParams(connect_keys, values, 1);
	if (c != NULL)
		PQsetNoticeProcessor(c, on_notice, NULL);
	while (c != NULL && PQstatus(c) != CONNECTION_BAD &&
	       st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		int64_t left = deadline - now_monotonic_us();

		if (left <= 0 ||
		    wait_fd(PQsocket(c), st == PGRES_POLLING_READING ? POLLIN
								     : POLLOUT,
			    l->stop_fd, (int)(left / 1000) + 1) <= 0)
			break;
		st = PQconnectPoll(c);
	}
	if (c == NULL || st != PGRES_POLLING_OK) {
		PQfinish(c);
		return NULL;
	}
	/* Its counts are short statements too (connected()). */
	res = PQexec(c, "LISTEN " CHANNEL "; SET jit = off");
	if (!result_ok(res)) {
		PQclear(res);
		PQfinish(c);
		return NULL;
	}
	PQclear(res);
	return c;
}

/* Whether @p c has a notification from another process; false too when
 * the connection is lost (then it is finished and *c NULL). */
static bool
notified(PGconn **c)
{
	PGnotify *n;
	bool other = false;

	if (!PQconsumeInput(*c)) {
		PQfinish(*c);
		*c = NULL;
		return false;
	}
	while ((n = PQnotifies(*c)) != NULL) {
		if (strcmp(n->extra, lease_owner) != 0)
			other = true;
		PQfreemem(n);
	}
	return other;
}

/* Count the gauges on the listener's connection @p c, when due: with a
 * backlog of tens of thousands a count takes tens of milliseconds,
 * which the inbox's connection would spend between two commits, holding
 * up every delivery waiting for one. */
static void
count_gauges(struct pg_listener *l, PGconn **c)
{
	int64_t start = now_monotonic_us();
	int64_t took;
	PGresult *res;

	if (start < l->count_at)
		return;
	res = PQexec(*c, store_gauges_sql(WHR_DB_POSTGRESQL));
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    PQnfields(res) == 2) {
		pthread_mutex_lock(&l->lock);
		l->gauges.open = column_int(res, 0, 0);
		l->gauges.oldest_open_at = column_int(res, 0, 1);
		l->counted_at = now_monotonic_us();
		pthread_mutex_unlock(&l->lock);
	} else if (PQstatus(*c) == CONNECTION_BAD) {
		PQfinish(*c);
		*c = NULL;
	}
	PQclear(res);
	took = GAUGES_COST_FACTOR * (now_monotonic_us() - start);
	l->count_at = start + (took < GAUGES_EVERY_US	? GAUGES_EVERY_US
			       : took > GAUGES_MOST_US	? GAUGES_MOST_US
							: took);
}

/* The leases of what whr_store_keep_leases()'s caller holds, renewed on
 * the listener's connection, when due. Rows a transaction holds locked
 * are passed over, never waited for: the inbox's own transaction (a
 * handler's, maybe long) holds the row it is writing, which no claim can
 * take meanwhile either. */
static void
renew_leases(struct pg_listener *l, PGconn **c)
{
	static const char sql[] =
		"UPDATE notifications SET lease_until = " DB_NOW_US " + $2"
		" WHERE id IN"
		" (SELECT id FROM notifications WHERE id = ANY ($3::bigint[])"
		" AND lease_owner = $1 AND state IN " OPEN
		" FOR UPDATE SKIP LOCKED)";
	size_t (*held)(void *arg, int64_t *ids, size_t max);
	void *arg;
	int64_t lease_us, now = now_monotonic_us();
	struct text list = { 0 };
	struct params p = { 0 };
	size_t n;
	PGresult *res;

	if (now < l->renew_at)
		return;
	pthread_mutex_lock(&l->lock);
	held = l->held;
	arg = l->held_arg;
	lease_us = l->lease_us;
	pthread_mutex_unlock(&l->lock);
	/* Without a caller yet, a look again a second later. */
	l->renew_at = now + (held != NULL && lease_us / 4 < RENEW_EVERY_US
				     ? lease_us / 4
				     : RENEW_EVERY_US);
	if (held == NULL)
		return;
	while ((n = held(arg, l->ids, l->cap_ids)) > l->cap_ids) {
		int64_t *grown = realloc(l->ids, 2 * n * sizeof(*grown));

		if (grown == NULL)
			return;
		l->ids = grown;
		l->cap_ids = 2 * n;
	}
	if (n == 0)
		return;
	ids_array(&list, l->ids, n);
	if (!list.oom) {
		param_text(&p, lease_owner);
		param_int(&p, lease_us);
		param_text(&p, list.p);
		res = PQexecParams(*c, sql, p.n, NULL, p.values, p.lengths,
				   p.formats, 0);
		if (!result_ok(res) && PQstatus(*c) == CONNECTION_BAD) {
			PQfinish(*c);
			*c = NULL;
		}
		PQclear(res);
	}
	free(list.p);
}

static int
pg_keep_leases(struct whr_store *store,
	       size_t (*held)(void *arg, int64_t *ids, size_t max), void *arg,
	       int64_t lease_us)
{
	struct pg_listener *l = pg(store)->listener;

	if (l == NULL)
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	l->held = held;
	l->held_arg = arg;
	l->lease_us = lease_us;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static int
pg_counted_gauges(struct whr_store *store, struct store_gauges *out)
{
	struct pg_listener *l = pg(store)->listener;
	int rc = -EAGAIN;

	if (l == NULL)
		return rc;
	pthread_mutex_lock(&l->lock);
	if (l->counted_at != 0 &&
	    now_monotonic_us() - l->counted_at < GAUGES_STALE_US) {
		*out = l->gauges;
		rc = 0;
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

static void *
listen_main(void *arg)
{
	struct pg_listener *l = arg;
	int64_t backoff = 0, wait_ms;
	PGconn *c = NULL;

	thread_background();
	for (;;) {
		int ready;

		if (c == NULL) {
			c = listen_connect(l);
			if (c == NULL) {
				backoff = backoff == 0 ? RECONNECT_MIN_US
					  : backoff >= RECONNECT_MAX_US / 2
						  ? RECONNECT_MAX_US
						  : 2 * backoff;
				if (wait_fd(-1, 0, l->stop_fd,
					    (int)(backoff / 1000)) < 0)
					break;
				continue;
			}
			backoff = 0;
			/* What was said while it was away is lost: look. */
			l->fn(l->arg);
		}
		count_gauges(l, &c);
		if (c != NULL)
			renew_leases(l, &c);
		/* What came while they ran was read with their answers: libpq
		 * holds it, the socket no longer says so. */
		if (c != NULL && notified(&c))
			l->fn(l->arg);
		if (c == NULL)
			continue;
		/* Until the next count or renewal (both set ahead now). */
		wait_ms = ((l->renew_at < l->count_at ? l->renew_at
						      : l->count_at) -
			   now_monotonic_us()) / 1000 + 1;
		ready = wait_fd(PQsocket(c), POLLIN, l->stop_fd,
				wait_ms > 0 ? (int)wait_ms : 0);
		if (ready < 0)
			break;
		if (ready > 0 && notified(&c))
			l->fn(l->arg);
	}
	PQfinish(c);
	return NULL;
}

static void
stop_listener(struct pg_store *s)
{
	struct pg_listener *l = s->listener;
	uint64_t one = 1;

	if (l == NULL)
		return;
	if (write(l->stop_fd, &one, sizeof(one)) != sizeof(one))
		whr_log(WHR_LOG_ERROR, "cannot stop the database listener");
	pthread_join(l->thread, NULL);
	close(l->stop_fd);
	pthread_mutex_destroy(&l->lock);
	free(l->ids);
	free(l);
	s->listener = NULL;
}

static int
pg_listen(struct whr_store *store, void (*fn)(void *arg), void *arg)
{
	struct pg_store *s = pg(store);
	struct pg_listener *l;

	if (s->listener != NULL) {
		log_bug("whr_store_listen() twice on one store");
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	*l = (struct pg_listener){ .s = s, .fn = fn, .arg = arg };
	l->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (l->stop_fd < 0) {
		free(l);
		return -errno;
	}
	pthread_mutex_init(&l->lock, NULL);
	if (pthread_create(&l->thread, NULL, listen_main, l) != 0) {
		pthread_mutex_destroy(&l->lock);
		close(l->stop_fd);
		free(l);
		return -EAGAIN;
	}
	s->listener = l;
	return 0;
}

/* ---- pipelining --------------------------------------------------------- */

/* Whether writes go out now and are answered at the commit. */
static bool
deferred(const struct pg_store *s)
{
	return s->pipelining && s->in_tx && !s->in_handler;
}

static int
pipe_enter(struct pg_store *s)
{
	if (s->piped)
		return 0;
	if (PQenterPipelineMode(s->conn) != 1)
		return store_fail(s, NULL, "cannot pipeline statements");
	s->piped = true;
	return 0;
}

/* Room for one more of @p size bytes in *@p array (@p n of @p *cap). */
static bool
grow(void **array, size_t n, size_t *cap, size_t size)
{
	size_t want = *cap ? 2 * *cap : 32;
	void *grown;

	if (n < *cap)
		return true;
	grown = realloc(*array, want * size);
	if (grown == NULL)
		return false;
	*array = grown;
	*cap = want;
	return true;
}

/* Room in the queue for one more statement, made before it is sent:
 * one sent and not queued would leave its answer unread, and the
 * answers after it matched to the wrong statements. */
static int
queue_reserve(struct pg_store *s)
{
	if (!grow((void **)&s->queue, s->n_queue, &s->cap_queue,
		  sizeof(*s->queue))) {
		set_error(s, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int read_answers(struct pg_store *s);

/* After a statement was sent (queue_reserve() first): a failure to
 * send is the pipeline's, and past PIPELINE_MAX the answers are read
 * now. @p deliveries (PENDING_INGEST's) become the queue's, or are
 * freed. */
static int
sent(struct pg_store *s, bool ok, enum pending_kind kind,
     struct ingest_delivery **deliveries, size_t n_deliveries,
     const char *what)
{
	if (!ok) {
		free(deliveries);
		s->piped_rc = store_fail(s, NULL, what);
		return s->piped_rc;
	}
	s->queue[s->n_queue++] = (struct pending){
		kind, deliveries, n_deliveries, what
	};
	return s->n_queue >= PIPELINE_MAX ? read_answers(s) : 0;
}

/* Send SQL without parameters (BEGIN, NOTIFY, COMMIT) down the pipe. */
static int
pipe_simple(struct pg_store *s, const char *sql, enum pending_kind kind,
	    const char *what)
{
	int rc = s->piped_rc;

	if (rc == 0)
		rc = pipe_enter(s);
	if (rc == 0)
		rc = queue_reserve(s);
	if (rc < 0)
		return rc;
	return sent(s, PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL,
					 NULL, 0) == 1, kind, NULL, 0, what);
}

/* Send statement @p which (prepared at the transaction's begin).
 * @p deliveries as sent()'s. */
static int
pipe_prepared(struct pg_store *s, enum statement which,
	      const struct params *p, enum pending_kind kind,
	      struct ingest_delivery **deliveries, size_t n_deliveries,
	      const char *what)
{
	char name[16];
	int rc = s->piped_rc;

	if (rc == 0)
		rc = pipe_enter(s);
	if (rc == 0)
		rc = queue_reserve(s);
	if (rc < 0) {
		free(deliveries);
		return rc;
	}
	snprintf(name, sizeof(name), "whr_%d", (int)which);
	/* libpq copies the parameters out as it sends: they may go. A
	 * claim's rows are read as run() reads them: binary. */
	return sent(s, PQsendQueryPrepared(s->conn, name, p->n, p->values,
					   p->lengths, p->formats,
					   kind == PENDING_CLAIM) == 1,
		    kind, deliveries, n_deliveries, what);
}

static void ingest_rows(const PGresult *res,
			struct ingest_delivery *const *deliveries, size_t n);

/* ST_CLAIM_LOCK's answer: whether this transaction holds the lock. */
static bool
lock_taken(const PGresult *res)
{
	return PQntuples(res) == 1 &&
	       strcmp(PQgetvalue(res, 0, 0), "true") == 0;
}

/* One answer of the pipeline: 0 or the errno it means. */
static int
answer(struct pg_store *s, const struct pending *q, const PGresult *res)
{
	if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
		return -EIO;	/* after the failure said before it */
	if (!result_ok(res))
		return store_fail(s, res, q->what);
	if (q->kind == PENDING_INGEST)
		ingest_rows(res, q->deliveries, q->n_deliveries);
	if (q->kind == PENDING_CLAIM_LOCK)
		s->claim_busy = !lock_taken(res);
	if (q->kind == PENDING_COMMIT &&
	    strcmp(PQcmdStatus((PGresult *)res), "COMMIT") != 0) {
		set_error(s, "cannot commit: the transaction was rolled back "
			  "after a statement failed");
		return -EIO;
	}
	return 0;
}

/* Read the answers to what was sent, in order, and leave pipeline mode:
 * 0, or the first failure's errno (whr_store_error() says what). */
static int
read_answers(struct pg_store *s)
{
	PGresult *res;
	size_t i = 0;
	int rc = s->piped_rc;

	if (!s->piped)
		return 0;
	if (PQpipelineSync(s->conn) != 1) {
		if (rc == 0)
			rc = store_fail(s, NULL, "cannot reach the database");
		goto out;
	}
	for (i = 0; i < s->n_queue; i++) {
		int r;

		res = PQgetResult(s->conn);
		if (res == NULL) {
			if (rc == 0)
				rc = store_fail(s, NULL, s->queue[i].what);
			break;
		}
		r = answer(s, &s->queue[i], res);
		if (rc == 0)
			rc = r;
		if (r == 0 && s->queue[i].kind == PENDING_CLAIM) {
			PQclear(s->claimed);
			s->claimed = res;	/* the commit decides */
		} else
			PQclear(res);
		/* The end of this statement's answer. */
		while ((res = PQgetResult(s->conn)) != NULL)
			PQclear(res);
		if (PQstatus(s->conn) != CONNECTION_OK)
			break;
	}
	/* The sync point's own answer. */
	if (i == s->n_queue && PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQgetResult(s->conn));
out:
	for (i = 0; i < s->n_queue; i++)
		free(s->queue[i].deliveries);
	s->n_queue = 0;
	s->piped_rc = 0;
	s->piped = false;
	/* A lost connection leaves pipeline mode as it is made again; one
	 * still up with answers unread (no sync point, or fewer answers
	 * than statements) is made again too: at the rollback that
	 * follows (pg_rollback()), or else before the next statement. */
	if (PQstatus(s->conn) == CONNECTION_OK &&
	    PQexitPipelineMode(s->conn) != 1) {
		s->out_of_step = true;
		if (rc == 0)
			rc = store_fail(s, NULL, "cannot leave pipeline mode");
	}
	return rc;
}

static int send_gathered(struct pg_store *s);

/* Send what was gathered, read every answer and leave pipeline mode: 0,
 * or the first failure's errno. */
static int
drain(struct pg_store *s)
{
	int rc = send_gathered(s);
	int r = read_answers(s);

	return rc < 0 ? rc : r;
}

static void
pg_pipeline(struct whr_store *store, bool on)
{
	pg(store)->pipelining = on;
}

/* ---- transactions ------------------------------------------------------ */

/* The statements a pipelined transaction sends: prepared before it, as
 * preparing is not done in pipeline mode. */
static int
prepare_pipelined(struct pg_store *s)
{
	static const enum statement piped[] = {
		ST_INGEST, ST_RECORD_OUTCOMES, ST_SETTLE, ST_FINISH,
		ST_CLAIM_LOCK, ST_CLAIM, ST_RENEW,
	};
	char name[16];
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(piped); i++) {
		PGresult *res;

		if (s->prepared[piped[i]])
			continue;
		snprintf(name, sizeof(name), "whr_%d", (int)piped[i]);
		res = PQprepare(s->conn, name, statement_sql[piped[i]], 0,
				NULL);
		if (!result_ok(res)) {
			int rc = store_fail(s, res,
					    "cannot prepare a statement");

			PQclear(res);
			return rc;
		}
		PQclear(res);
		s->prepared[piped[i]] = true;
	}
	return 0;
}

/* A claim's answer that is not to be handed out. */
static void
forget_claimed(struct pg_store *s)
{
	PQclear(s->claimed);
	s->claimed = NULL;
	s->claim_busy = false;
}

static int
pg_begin(struct pg_store *s)
{
	int rc;

	/* Not taken after its commit: its leases run out. */
	forget_claimed(s);
	s->claim_in_tx = false;
	s->owned_id = 0;

	if (s->pipelining) {
		/* BEGIN goes down the pipe with the writes after it. */
		rc = connection(s);
		if (rc == 0)
			rc = prepare_pipelined(s);
		if (rc == 0)
			rc = pipe_simple(s, "BEGIN", PENDING_WRITE,
					 "cannot begin a transaction");
		if (rc == 0 && !s->synced)
			rc = pipe_simple(s, "SET LOCAL synchronous_commit = off",
					 PENDING_WRITE,
					 "cannot begin a transaction");
		s->in_tx = rc == 0;
		return rc;
	}
	rc = exec(s, s->synced ? "BEGIN"
			       : "BEGIN; SET LOCAL synchronous_commit = off",
		  "cannot begin a transaction");
	s->in_tx = rc == 0 || PQtransactionStatus(s->conn) != PQTRANS_IDLE;
	return rc;
}

static int
pg_begin_store(struct whr_store *store)
{
	return pg_begin(pg(store));
}

/* A run that holds its row locked (pg_own()) is passed over by the
 * renewals, which skip locked rows: its lease may run out meanwhile (a
 * long run, or one tried again after a deadlock or an outage), and at
 * the commit the row would be free for another replica to take over
 * while the run goes on (its next handlers). So its lease is made whole
 * in the transaction, from the commit's time (settled, it has none left
 * to keep, and nothing is changed). */
static int
keep_owned_lease(struct pg_store *s)
{
	struct params p = { 0 };
	char list[32];

	if (s->owned_id <= 0 || s->lease_us <= 0)
		return 0;
	snprintf(list, sizeof(list), "{%lld}", (long long)s->owned_id);
	param_text(&p, lease_owner);
	param_int(&p, s->lease_us);
	param_text(&p, list);
	if (s->piped)
		return pipe_prepared(s, ST_RENEW, &p, PENDING_WRITE, NULL, 0,
				     "cannot keep a claim");
	return run_done(s, ST_RENEW, &p, "cannot keep a claim");
}

/* A transaction an error ended commits nothing: COMMIT answers
 * ROLLBACK, which must not pass for a commit. Pipelined, the NOTIFY
 * and the COMMIT follow the writes down the pipe, and every answer
 * comes back now. */
static int
pg_commit(struct whr_store *store)
{
	struct pg_store *s = pg(store);
	PGresult *res;
	int rc;

	rc = send_gathered(s);
	if (rc == 0)
		rc = keep_owned_lease(s);
	if (rc < 0) {
		/* Not all of it went: none of it may be committed. */
		pg_rollback(store);
		return rc;
	}
	if (s->piped) {
		int answered;

		if (s->notify)
			rc = pipe_simple(s, s->notify_sql, PENDING_WRITE,
					 "cannot notify");
		if (rc == 0)
			rc = pipe_simple(s, "COMMIT", PENDING_COMMIT,
					 "cannot commit");
		s->in_tx = false;
		s->notify = false;
		answered = read_answers(s);
		if (rc == 0)
			rc = answered;
		/* COMMIT not sent, or a statement before it failed: the
		 * transaction is still open (or aborted) on the server. */
		if (rc < 0)
			pg_rollback(store);
		return rc;
	}
	res = PQexec(s->conn, s->notify ? s->notify_commit_sql : "COMMIT");
	s->in_tx = false;
	s->notify = false;
	if (!result_ok(res))
		rc = store_fail(s, res, "cannot commit");
	else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		set_error(s, "cannot commit: the transaction was rolled back "
			  "after a statement failed");
		rc = -EIO;
	}
	PQclear(res);
	if (rc < 0) {
		/* Or not known to: no lease of it may be counted on. */
		forget_claimed(s);
	}
	return rc;
}

static void
pg_rollback(struct whr_store *store)
{
	struct pg_store *s = pg(store);

	gathered_clear(&s->gathered);
	drain(s);
	forget_claimed(s);
	s->in_tx = false;
	s->notify = false;
	/* Out of step, the connection is made again now: that ends the
	 * transaction on the server, which may hold locks (libpq sends a
	 * long pipeline's statements before its sync point). The failure
	 * being reported keeps its words, whatever the attempt says. */
	if (s->out_of_step) {
		char error[sizeof(s->base.error)], cause[sizeof(s->base.cause)];

		memcpy(error, s->base.error, sizeof(error));
		memcpy(cause, s->base.cause, sizeof(cause));
		reconnect(s);
		memcpy(s->base.error, error, sizeof(error));
		memcpy(s->base.cause, cause, sizeof(cause));
	} else if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		PQclear(PQexec(s->conn, "ROLLBACK"));
}

static int
pg_sync_commits(struct whr_store *store, bool synced)
{
	pg(store)->synced = synced;
	return 0;
}

/* A synchronous commit of a small write: it flushes the log up to it,
 * with every asynchronous commit before. (A lost connection is made
 * again at the BEGIN.) */
static int
pg_probe(struct whr_store *store)
{
	struct pg_store *s = pg(store);
	int rc;

	s->synced = true;
	rc = pg_begin(s);
	if (rc == 0)
		rc = exec(s, "UPDATE whr_meta SET value = value"
			     " WHERE key = 'schema_version'", "cannot write");
	if (rc == 0)
		rc = pg_commit(store);
	if (rc < 0)
		pg_rollback(store);
	return rc;
}

static int
pg_handler_begin(struct whr_store *store)
{
	struct pg_store *s = pg(store);
	int rc = exec(s, s->mode == STORE_SERVER
			? "SAVEPOINT " HANDLER_SAVEPOINT
			  "; SET LOCAL enable_bitmapscan = on"
			  "; SET LOCAL enable_seqscan = on"
			: "SAVEPOINT " HANDLER_SAVEPOINT,
		      "cannot start a savepoint");

	s->handler_deadlock = false;
	if (rc == 0)
		s->in_handler = true;
	return rc;
}

/* What the handler left: the transaction still open (keep or undo its
 * writes), in error (a statement of its failed: undo them all, which on
 * PostgreSQL is the only way on), or gone (it ended the transaction
 * through the native connection). */
static int
pg_handler_end(struct whr_store *store, const char *handler, bool keep)
{
	struct pg_store *s = pg(store);
	PGTransactionStatusType status = PQtransactionStatus(s->conn);
	int rc;

	s->in_handler = false;
	if (status != PQTRANS_INTRANS && status != PQTRANS_INERROR) {
		set_error(s, "the transaction ended while handler %s ran%s%s",
			  handler, s->tx.base.error[0] != '\0' ? ": " : "",
			  s->tx.base.error);
		return -EIO;
	}
	if (status == PQTRANS_INERROR || !keep) {
		rc = exec(s, "ROLLBACK TO " HANDLER_SAVEPOINT,
			  "cannot roll back to a savepoint");
		if (rc < 0)
			return rc;
	}
	/* Released, the savepoint keeps what SET LOCAL changed in it: the
	 * inbox's statements after it (the run's outcomes and states)
	 * must not be planned, and their plans kept, with the scans the
	 * handler's got back. Set for the session, not the transaction: a
	 * handler's own SET (or RESET) would outlive the commit, and the
	 * claims after it would plan with them. */
	rc = exec(s, s->mode == STORE_SERVER
			? "RELEASE " HANDLER_SAVEPOINT "; " SERVER_SETTINGS
			: "RELEASE " HANDLER_SAVEPOINT,
		  "cannot release a savepoint");
	if (rc == 0 && status == PQTRANS_INERROR && s->handler_deadlock) {
		/* Another replica's transaction in the way: the batch is
		 * tried again at once, not the handler later. */
		set_error(s, "handler %s: %s", handler, s->tx.base.error);
		rc = -EDEADLK;
	} else if (rc == 0 && status == PQTRANS_INERROR && keep) {
		set_error(s, "handler %s: a statement failed (%s), which undid "
			  "its writes: on PostgreSQL a failed statement ends "
			  "the handler's work", handler,
			  s->tx.base.error[0] != '\0' ? s->tx.base.error
						       : "no message");
		rc = -EAGAIN;
	}
	if (s->tx.cache.n > TX_CACHE_MAX)
		tx_drop_cache(&s->tx);
	return rc;
}

/* ---- ingest, outcomes and states, gathered ------------------------------- */

/* Forget what was gathered (sent, or rolled back). */
static void
gathered_clear(struct gathered *g)
{
	size_t i;
	int k;

	g->n_deliveries = 0;
	g->body_bytes = 0;
	for (i = 0; i < g->n_outcomes; i++)
		free(g->outcome_runs[i].handler);
	g->n_outcomes = 0;
	g->n_settled = 0;
	for (k = 0; k < 5; k++) {
		g->outcomes[k].len = 0;
		g->outcomes[k].oom = false;
		g->states[k].len = 0;
		g->states[k].oom = false;
	}
}

static void
gathered_free(struct gathered *g)
{
	int k;

	gathered_clear(g);
	free(g->deliveries);
	free(g->outcome_runs);
	free(g->settled);
	for (k = 0; k < 5; k++) {
		free(g->outcomes[k].p);
		free(g->states[k].p);
	}
}

/* ST_INGEST's arrays: $1 to $10, $12 to $17 and $21, in that order. */
#define INGEST_ARRAYS 17

/* One key of a notification as stored, or none's (@p key NULL: its
 * delivery's, d:SEQ). */
struct key_place {
	const char *key;
	size_t len;
	size_t delivery, notification;	/* places in the statement */
};

static int
key_place_cmp(const void *a, const void *b)
{
	const struct key_place *x = a, *y = b;
	int c;

	if ((x->key == NULL) != (y->key == NULL))
		return x->key == NULL ? 1 : -1;
	if (x->key != NULL) {
		c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
		if (c == 0)
			c = (x->len > y->len) - (x->len < y->len);
	} else
		c = (x->delivery > y->delivery) - (x->delivery < y->delivery);
	if (c != 0)
		return c;
	return (x->notification > y->notification) -
	       (x->notification < y->notification);
}

static bool
same_key(const struct key_place *x, const struct key_place *y)
{
	if (x->key == NULL || y->key == NULL)
		return x->key == NULL && y->key == NULL &&
		       x->delivery == y->delivery;
	return x->len == y->len && memcmp(x->key, y->key, x->len) == 0;
}

/* Which notifications of @p ds come first in them for each of their
 * keys, as the statement sees the keys: @p keys, one a notification in
 * order, joined one a line as stored, '' for none (the delivery's
 * then). Only those (@p first, the same order) may be leased as they
 * are stored (ST_INGEST); the others wait behind an older one of the
 * statement. Worked out here by a sort rather than by a window over
 * the keys in the statement, the dearest part of it (bench/README.md).
 * A notification of a copy stored already counts too: the next of its
 * keys then waits for a claim. 0 or -ENOMEM. */
static int
first_of_keys(struct ingest_delivery *const *ds, size_t n,
	      char *const *keys, bool *first)
{
	struct key_place *all;
	size_t i, j, k, m = 0, at = 0;
	const char *p;

	for (i = 0; i < n; i++) {
		for (j = 0; j < ds[i]->n_notifications; j++, at++) {
			m++;
			for (p = keys[at]; (p = strchr(p, '\n')) != NULL; p++)
				m++;
		}
	}
	all = calloc(m > 0 ? m : 1, sizeof(*all));
	if (all == NULL)
		return -ENOMEM;
	m = 0;
	at = 0;
	for (i = 0; i < n; i++) {
		for (j = 0; j < ds[i]->n_notifications; j++, at++) {
			first[at] = true;
			if (keys[at][0] == '\0') {
				all[m++] = (struct key_place){
					NULL, 0, i, at
				};
				continue;
			}
			for (p = keys[at];; p += k + 1) {
				k = strcspn(p, "\n");
				all[m++] = (struct key_place){ p, k, i, at };
				if (p[k] == '\0')
					break;
			}
		}
	}
	qsort(all, m, sizeof(*all), key_place_cmp);
	/* After the first of a key, every other notification of it (one
	 * naming a key twice is not behind itself). */
	for (k = 1; k < m; k++) {
		if (same_key(&all[k - 1], &all[k]) &&
		    all[k - 1].notification != all[k].notification)
			first[all[k].notification] = false;
	}
	free(all);
	return 0;
}

/* The keys of each notification of @p ds, in order, as ST_INGEST takes
 * them (joined one a line, none as ''): an array of @p n_notifications
 * strings to free, or NULL. */
static char **
joined_keys(struct ingest_delivery *const *ds, size_t n,
	    size_t n_notifications)
{
	char **keys = calloc(n_notifications > 0 ? n_notifications : 1,
			     sizeof(*keys));
	size_t i, j, at = 0;

	if (keys == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		for (j = 0; j < ds[i]->n_notifications; j++, at++) {
			const struct ingest_notification *nt =
				&ds[i]->notifications[j];

			keys[at] = nt->n_keys > 0
				? store_join_keys(nt->keys, nt->n_keys, 0)
				: strdup("");
			if (keys[at] == NULL) {
				while (at > 0)
					free(keys[--at]);
				free(keys);
				return NULL;
			}
		}
	}
	return keys;
}

/* ST_INGEST's parameters for @p n deliveries: the arrays in @p a, the
 * bodies one after another in @p bodies (kept until it was sent). Keys
 * joined one a line, none as '' (the delivery's, made by the server). */
static int
ingest_params(struct ingest_delivery *const *ds, size_t n,
	      struct text a[INGEST_ARRAYS], struct text *bodies,
	      int64_t lease_new, int64_t lease_us, struct params *p)
{
	size_t i, j, n_notifications = 0, at = 0;
	char **keys;
	bool *first;
	int k;

	for (i = 0; i < n; i++)
		n_notifications += ds[i]->n_notifications;
	keys = joined_keys(ds, n, n_notifications);
	first = calloc(n_notifications > 0 ? n_notifications : 1,
		       sizeof(*first));
	/* Leasing none: no notification need be told apart. */
	if (keys == NULL || first == NULL ||
	    (lease_new > 0 && first_of_keys(ds, n, keys, first) < 0)) {
		for (at = 0; keys != NULL && at < n_notifications; at++)
			free(keys[at]);
		free(keys);
		free(first);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct ingest_delivery *d = ds[i];

		d->duplicate = false;
		for (j = 0; j < d->n_notifications; j++)
			d->notifications[j].leased = false;
		elem_text(&a[0], d->receiver_id);
		elem_text(&a[1], d->delivery_id);
		elem_int(&a[2], d->attempt);
		elem_int(&a[3], d->received_at);
		elem_text(&a[4], d->headers_json);
		elem_int(&a[5], (int64_t)bodies->len);
		elem_int(&a[6], (int64_t)d->body_len);
		if (d->body_len > 0)
			text_add(bodies, d->body, d->body_len);
		if (d->has_properties) {
			elem_int(&a[7], (int64_t)d->properties_start);
			elem_int(&a[8], (int64_t)d->properties_end);
		} else {
			elem_text(&a[7], NULL);
			elem_text(&a[8], NULL);
		}
		elem_int(&a[9], (int64_t)d->n_notifications);
		for (j = 0; j < d->n_notifications; j++, at++) {
			const struct ingest_notification *nt =
				&d->notifications[j];

			elem_int(&a[10], (int64_t)i + 1);
			elem_int(&a[11], (int64_t)nt->index);
			elem_text(&a[12], nt->action);
			elem_int(&a[13], (int64_t)nt->json_start);
			elem_int(&a[14], (int64_t)nt->json_end);
			elem_text(&a[15], keys[at]);
			elem_text(&a[16], first[at] ? "t" : "f");
			free(keys[at]);
		}
	}
	free(keys);
	free(first);
	for (k = 0; k < INGEST_ARRAYS; k++) {
		array_close(&a[k]);
		if (a[k].oom)
			return -ENOMEM;
	}
	if (bodies->oom || bodies->len > INT_MAX)
		return -ENOMEM;
	for (k = 0; k < 10; k++)
		param_text(p, a[k].p);
	param_bytes(p, bodies->p != NULL ? bodies->p : "", bodies->len);
	for (k = 10; k < 16; k++)
		param_text(p, a[k].p);
	param_text(p, lease_new > 0 ? lease_owner : NULL);
	param_int(p, lease_us);
	param_int(p, lease_new);
	param_text(p, a[16].p);
	return 0;
}

/* ST_INGEST's rows into the deliveries: each one's seq, whether it is a
 * duplicate, each notification's id and whether it was leased. */
static void
ingest_rows(const PGresult *res, struct ingest_delivery *const *ds,
	    size_t n)
{
	int row;
	size_t i;

	for (row = 0; row < PQntuples(res); row++) {
		int64_t place = column_int(res, row, 0);
		struct ingest_delivery *d;
		int64_t idx;

		if (place < 1 || (uint64_t)place > n)
			continue;
		d = ds[place - 1];
		d->seq = column_int(res, row, 1);
		d->duplicate = strcmp(PQgetvalue(res, row, 2), "t") != 0;
		if (PQgetisnull(res, row, 4))
			continue;
		idx = column_int(res, row, 3);
		for (i = 0; i < d->n_notifications; i++) {
			if ((int64_t)d->notifications[i].index != idx)
				continue;
			d->notifications[i].id = column_int(res, row, 4);
			d->notifications[i].leased =
				strcmp(PQgetvalue(res, row, 5), "t") == 0;
		}
	}
}

/* Store deliveries @p ds: pipelined, the array becomes the pipeline's
 * and what ingest says of them comes with the commit; else now. */
static int
ingest(struct pg_store *s, struct ingest_delivery **ds, size_t n,
       bool piped)
{
	struct text a[INGEST_ARRAYS] = { { 0 } };
	struct text bodies = { 0 };
	struct params p = { 0 };
	PGresult *res;
	int rc, k;

	/* Only pipelined: pg_claim_at_commit() took the claim lock. */
	rc = ingest_params(ds, n, a, &bodies, piped ? s->lease_new : 0,
			   s->lease_us, &p);
	if (rc < 0) {
		set_error(s, "out of memory");
		if (piped)
			free(ds);
	} else if (piped) {
		rc = pipe_prepared(s, ST_INGEST, &p, PENDING_INGEST, ds, n,
				   "cannot store a delivery");
	} else {
		res = run(s, ST_INGEST, &p, 0, "cannot store a delivery",
			  &rc);
		if (res != NULL)
			ingest_rows(res, ds, n);
		PQclear(res);
	}
	for (k = 0; k < INGEST_ARRAYS; k++)
		free(a[k].p);
	free(bodies.p);
	return rc;
}

/* Whether @p d has the key of a delivery gathered (the same statement
 * must not store both). */
static bool
key_gathered(const struct gathered *g, const struct ingest_delivery *d)
{
	size_t i;

	if (d->delivery_id == NULL)
		return false;
	for (i = 0; i < g->n_deliveries; i++) {
		const struct ingest_delivery *o = g->deliveries[i];

		if (o->delivery_id != NULL &&
		    strcmp(o->delivery_id, d->delivery_id) == 0 &&
		    strcmp(o->receiver_id, d->receiver_id) == 0)
			return true;
	}
	return false;
}

static int
pg_ingest(struct whr_store *store, struct ingest_delivery *d)
{
	struct pg_store *s = pg(store);
	struct gathered *g = &s->gathered;
	int rc = 0;

	if (!deferred(s)) {
		rc = ingest(s, &d, 1, false);
		if (rc == 0 && !d->duplicate && d->n_notifications > 0)
			s->notify = true;
		return rc;
	}
	/* New work, the others are told; unless it turns out a duplicate,
	 * which the pipeline says too late for that. */
	if (d->n_notifications > 0)
		s->notify = true;
	if (g->n_deliveries >= GATHER_MAX ||
	    (g->n_deliveries > 0 &&
	     g->body_bytes + d->body_len > GATHER_BYTES_MAX) ||
	    key_gathered(g, d))
		rc = send_gathered(s);
	if (rc < 0)
		return rc;
	if (!grow((void **)&g->deliveries, g->n_deliveries,
		  &g->cap_deliveries, sizeof(*g->deliveries))) {
		set_error(s, "out of memory");
		return -ENOMEM;
	}
	g->deliveries[g->n_deliveries++] = d;
	g->body_bytes += d->body_len;
	return 0;
}

/* Arrays @p a as parameters, closed here. */
static int
array_params(struct pg_store *s, struct text a[5], struct params *p)
{
	int k;

	for (k = 0; k < 5; k++) {
		array_close(&a[k]);
		if (a[k].oom) {
			set_error(s, "out of memory");
			return -ENOMEM;
		}
		param_text(p, a[k].p);
	}
	return 0;
}

/* ST_RECORD_OUTCOMES' and ST_SETTLE's parameters: their arrays (@p a,
 * closed here) and this process. */
static int
run_params(struct pg_store *s, struct text a[5], struct params *p)
{
	int rc = array_params(s, a, p);

	if (rc == 0)
		param_text(p, lease_owner);
	return rc;
}

static void
outcome_elems(struct text a[5], int64_t id, const char *handler,
	      enum whr_result result, const char *reason, int64_t now)
{
	elem_int(&a[0], id);
	elem_text(&a[1], handler);
	elem_text(&a[2], handler_result_name(result));
	elem_text(&a[3], reason);
	elem_int(&a[4], now);
}

static void
state_elems(struct text a[5], int64_t id, enum work_state state,
	    int64_t next_at, const char *error, int64_t now)
{
	elem_int(&a[0], id);
	elem_text(&a[1], work_state_name(state));
	elem_int(&a[2], next_at);
	elem_text(&a[3], error);
	elem_int(&a[4], now);
}

/* Run @p which (ST_RECORD_OUTCOMES or ST_SETTLE) on arrays @p a now. */
static int
run_now(struct pg_store *s, enum statement which, struct text a[5],
	const char *what)
{
	struct params p = { 0 };
	int rc = run_params(s, a, &p);
	int k;

	if (rc == 0)
		rc = run_done(s, which, &p, what);
	for (k = 0; k < 5; k++)
		free(a[k].p);
	return rc;
}

static bool
settle_gathered(const struct gathered *g, int64_t id)
{
	size_t i;

	for (i = 0; i < g->n_settled; i++) {
		if (g->settled[i] == id)
			return true;
	}
	return false;
}

static bool
outcome_gathered(const struct gathered *g, int64_t id, const char *handler)
{
	size_t i;

	for (i = 0; i < g->n_outcomes; i++) {
		if (g->outcome_runs[i].id == id &&
		    strcmp(g->outcome_runs[i].handler, handler) == 0)
			return true;
	}
	return false;
}

/* Gathered, an outcome goes before the states: one of a notification
 * settled already, or a second of a handler, sends what was gathered
 * first, so that each is written in the order it came. */
static int
pg_record_outcome(struct whr_store *store, int64_t id, const char *handler,
		  enum whr_result result, const char *reason, int64_t now)
{
	struct pg_store *s = pg(store);
	struct gathered *g = &s->gathered;
	struct gathered_run *r;
	int rc = 0;

	if (!deferred(s)) {
		struct text a[5] = { { 0 } };

		outcome_elems(a, id, handler, result, reason, now);
		return run_now(s, ST_RECORD_OUTCOMES, a,
			       "cannot record an outcome");
	}
	if (settle_gathered(g, id) || outcome_gathered(g, id, handler))
		rc = send_gathered(s);
	if (rc < 0)
		return rc;
	if (!grow((void **)&g->outcome_runs, g->n_outcomes, &g->cap_outcomes,
		  sizeof(*g->outcome_runs))) {
		set_error(s, "out of memory");
		return -ENOMEM;
	}
	r = &g->outcome_runs[g->n_outcomes];
	r->id = id;
	r->handler = strdup(handler);
	if (r->handler == NULL) {
		set_error(s, "out of memory");
		return -ENOMEM;
	}
	g->n_outcomes++;
	outcome_elems(g->outcomes, id, handler, result, reason, now);
	return 0;
}

static int
pg_settle(struct whr_store *store, int64_t id, enum work_state state,
	  int64_t next_at, const char *error, int64_t now)
{
	struct pg_store *s = pg(store);
	struct gathered *g = &s->gathered;
	int rc = 0;

	/* Finished: the next work of its keys may be claimed now. */
	if (state == WORK_DONE || state == WORK_DEAD)
		s->notify = true;
	if (!deferred(s)) {
		struct text a[5] = { { 0 } };

		state_elems(a, id, state, next_at, error, now);
		return run_now(s, ST_SETTLE, a, "cannot record a state");
	}
	if (settle_gathered(g, id))
		rc = send_gathered(s);
	if (rc < 0)
		return rc;
	if (!grow((void **)&g->settled, g->n_settled, &g->cap_settled,
		  sizeof(*g->settled))) {
		set_error(s, "out of memory");
		return -ENOMEM;
	}
	g->settled[g->n_settled++] = id;
	state_elems(g->states, id, state, next_at, error, now);
	return 0;
}

/* Send what was gathered down the pipe, in the order that keeps each
 * write after those it follows: the deliveries (no run refers to them
 * before the commit), the outcomes, then the states. */
static int
send_gathered(struct pg_store *s)
{
	struct gathered *g = &s->gathered;
	struct params p = { 0 };
	int rc = 0;

	if (g->n_deliveries > 0) {
		/* The array goes with the statement; a new one gathers. */
		struct ingest_delivery **ds = g->deliveries;
		size_t n = g->n_deliveries;

		g->deliveries = NULL;
		g->n_deliveries = g->cap_deliveries = 0;
		rc = ingest(s, ds, n, true);
	}
	if (rc == 0 && (g->n_outcomes > 0 || g->n_settled > 0)) {
		/* Outcomes, states, or both in one statement (ST_FINISH):
		 * the arrays of each there is, then this process. */
		enum statement which = ST_FINISH;
		const char *what = "cannot record a run";

		if (g->n_settled == 0) {
			which = ST_RECORD_OUTCOMES;
			what = "cannot record an outcome";
		} else if (g->n_outcomes == 0) {
			which = ST_SETTLE;
			what = "cannot record a state";
		}
		if (g->n_outcomes > 0)
			rc = array_params(s, g->outcomes, &p);
		if (rc == 0 && g->n_settled > 0)
			rc = array_params(s, g->states, &p);
		if (rc == 0) {
			param_text(&p, lease_owner);
			rc = pipe_prepared(s, which, &p, PENDING_WRITE, NULL, 0,
					   what);
		}
	}
	gathered_clear(g);
	return rc;
}

/* ---- work -------------------------------------------------------------- */

/* The outcomes in rows @p first to @p first + @p n - 1 of a result of
 * WORK_COLUMNS (binary), one piece of work's: one a row, when its
 * handler is not NULL. */
static int
outcomes_from_rows(const PGresult *res, int first, int n,
		   struct store_work *w)
{
	bool oom = false;
	int row;

	if (PQgetisnull(res, first, WC_HANDLER))
		return 0;	/* none yet */
	w->outcomes = calloc((size_t)n, sizeof(*w->outcomes));
	if (w->outcomes == NULL)
		return -ENOMEM;
	for (row = first; !oom && row < first + n; row++) {
		struct store_outcome *o = &w->outcomes[w->n_outcomes++];

		o->handler = column_copy(res, row, WC_HANDLER, NULL, &oom);
		o->result = store_result_from_name(PQgetvalue(res, row,
							      WC_RESULT));
		o->runs = column_int(res, row, WC_OUTCOME_RUNS);
		o->reason = column_copy(res, row, WC_REASON, NULL, &oom);
	}
	return oom ? -ENOMEM : 0;
}

/* Row @p row of a result of WORK_COLUMNS (binary) into @p w, its
 * outcomes aside. */
static int
work_from_row(const PGresult *res, int row, struct store_work *w)
{
	enum work_state state = WORK_PENDING;
	bool oom = false;
	char *text;

	w->id = column_int(res, row, WC_ID);
	w->delivery_seq = column_int(res, row, WC_SEQ);
	w->index = (size_t)column_int(res, row, WC_INDEX);
	w->count = (size_t)column_int(res, row, WC_COUNT);
	w->receiver_id = column_copy(res, row, WC_RECEIVER_ID, NULL, &oom);
	w->delivery_id = column_copy(res, row, WC_DELIVERY_ID, NULL, &oom);
	w->action = column_copy(res, row, WC_ACTION, NULL, &oom);
	w->attempt = column_int(res, row, WC_ATTEMPT);
	w->received_at = column_int(res, row, WC_RECEIVED_AT);
	w->json = column_copy(res, row, WC_JSON, &w->json_len, &oom);
	w->properties = column_copy(res, row, WC_PROPERTIES,
				    &w->properties_len, &oom);
	text = column_copy(res, row, WC_STATE, NULL, &oom);
	work_state_from_name(text, &state);
	free(text);
	w->state = state;
	w->runs = column_int(res, row, WC_RUNS);
	w->next_at = column_int(res, row, WC_NEXT_AT);
	w->retry_from = column_int(res, row, WC_RETRY_FROM);
	text = column_copy(res, row, WC_KEYS, NULL, &oom);
	if (text != NULL && store_split_keys(text, &w->keys, &w->n_keys) < 0)
		oom = true;
	free(text);
	return oom || w->receiver_id == NULL || w->json == NULL ? -ENOMEM : 0;
}

/* The piece of work in rows @p first to @p first + @p n - 1 of a result
 * of WORK_COLUMNS (binary): 0 with *out the caller's (store_work_free()),
 * or -ENOMEM. */
static int
work_from_rows(const PGresult *res, int first, int n,
	       struct store_work **out)
{
	struct store_work *w = calloc(1, sizeof(*w));
	int rc;

	if (w == NULL)
		return -ENOMEM;
	rc = work_from_row(res, first, w);
	if (rc == 0)
		rc = outcomes_from_rows(res, first, n, w);
	if (rc < 0) {
		store_work_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* The rows of a claim's answer that are work: all but the last, which
 * holds the end of its window. */
static int
claimed_rows(const PGresult *res)
{
	int n = PQntuples(res);

	return n > 0 && PQgetisnull(res, n - 1, WC_ID) ? n - 1 : n;
}

/* Give back the leases of rows @p from on of a claim's result. */
static void
unclaim(struct pg_store *s, const PGresult *res, int from)
{
	struct text ids = { 0 };
	struct params p = { 0 };
	int row;

	for (row = from; row < claimed_rows(res); row++)
		elem_int(&ids, column_int(res, row, WC_ID));
	array_close(&ids);
	if (!ids.oom) {
		param_text(&p, ids.p);
		param_text(&p, lease_owner);
		run_done(s, ST_UNCLAIM, &p, "cannot give work back");
	}
	free(ids.p);
}

/* ST_CLAIM's parameters: its window from past @p after and where the
 * last claim stopped. */
static void
claim_params(struct pg_store *s, struct params *p, int64_t after,
	     int64_t limit, int64_t lease_us)
{
	int64_t now = now_realtime_us();

	param_int(p, after > s->claim_from ? after : s->claim_from);
	param_int(p, now);
	if (limit >= 0)
		param_int(p, limit);
	else
		param_text(p, NULL);
	param_text(p, lease_owner);
	param_int(p, lease_us > 0 ? lease_us : 0);
	if (s->claim_window > 0)
		param_int(p, s->claim_window);
	else
		param_text(p, NULL);
	s->claim_limit = limit;
	s->claim_left = false;
}

/* Where the next claim looks, after one that handed out @p taken
 * notifications (all it found unless @p stopped): on in the same window
 * when it filled, as the work past what it took was not looked at;
 * else past its window, or from the oldest when its window reached the
 * newest open work. Claims that fill away from the oldest go back to
 * it once they have filled there for CLAIM_AWAY_MOST_US, or four times
 * as long as they took to get there if longer (a long run of waiting
 * work at the front is not swept again each time). */
static void
claim_moved_on(struct pg_store *s, const PGresult *res, int64_t taken,
	       bool stopped)
{
	int n = PQntuples(res);
	int64_t from = 0, now = now_monotonic_us();

	s->claim_left = false;
	if (stopped || (s->claim_limit >= 0 && taken >= s->claim_limit)) {
		int64_t most;

		if (s->claim_from == 0)
			return;
		if (s->claim_filling_us == 0)
			s->claim_filling_us = now;
		most = 4 * (s->claim_filling_us - s->claim_left_oldest_us);
		if (most < s->claim_away_most_us)
			most = s->claim_away_most_us;
		if (now - s->claim_filling_us >= most) {
			s->claim_from = 0;
			s->claim_filling_us = 0;
		}
		return;
	}
	s->claim_filling_us = 0;
	if (n > 0 && PQgetisnull(res, n - 1, WC_ID) &&
	    !PQgetisnull(res, n - 1, WC_WINDOW_END))
		from = column_int(res, n - 1, WC_WINDOW_END);
	if (from > 0 && s->claim_from == 0)
		s->claim_left_oldest_us = now;
	s->claim_from = from;
	s->claim_left = from > 0;
}

/* Hand the rows of claim @p res (taken) to @p fn, one a notification;
 * give back what @p fn did not take. */
static int
offer_claimed(struct pg_store *s, PGresult *res,
	      int (*fn)(struct store_claim *c, void *arg), void *arg)
{
	int rows = claimed_rows(res);
	int row, n;
	int64_t taken = 0;

	/* A notification's rows (one per outcome) come together. */
	for (row = 0; row < rows; row += n) {
		int64_t id = column_int(res, row, WC_ID);
		struct store_work *work = NULL;
		int r;

		for (n = 1; row + n < rows &&
			    column_int(res, row + n, WC_ID) == id; n++)
			;
		/* Out of memory: offered without it, a worker loads it. */
		if (column_int(res, row, WC_TAKEN_OVER) == 0)
			work_from_rows(res, row, n, &work);
		r = store_offer_claim(id, PQgetvalue(res, row, WC_KEYS),
				      column_int(res, row, WC_NEXT_AT), work,
				      fn, arg);
		if (r != 0) {
			/* Stopped: this one and the rest are not taken. */
			claim_moved_on(s, res, taken, true);
			unclaim(s, res, row);
			PQclear(res);
			return r < 0 ? r : 0;
		}
		taken++;
	}
	claim_moved_on(s, res, taken, false);
	PQclear(res);
	return 0;
}

/* End the transaction pg_claim() made: committed, 0 once it is; or
 * rolled back. On a connection made again meanwhile there is none. */
static int
end_own_claim(struct pg_store *s, bool commit)
{
	PGresult *res;
	int rc = 0;

	if (s->conn == NULL || PQtransactionStatus(s->conn) == PQTRANS_IDLE)
		return 0;
	res = PQexec(s->conn, commit ? "COMMIT" : "ROLLBACK");
	if (commit && !result_ok(res))
		rc = store_fail(s, res, "cannot claim work");
	else if (commit && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		set_error(s, "cannot claim work: the transaction was rolled "
			  "back");
		rc = -EIO;
	}
	PQclear(res);
	return rc;
}

/* Try the claim lock in the transaction open on @p s (ST_CLAIM_LOCK): 1
 * when it holds it, 0 when another process's claim does, or a negative
 * errno. */
static int
claim_lock(struct pg_store *s)
{
	PGresult *res;
	int rc;

	res = run(s, ST_CLAIM_LOCK, NULL, 0, "cannot claim work", &rc);
	if (res == NULL)
		return rc;
	rc = lock_taken(res);
	PQclear(res);
	return rc;
}

/* Outside a transaction, a claim makes one of its own, synchronous (the
 * leases must reach the disk before they count): the claim lock
 * (ST_CLAIM_LOCK) lasts as long as it. A connection lost in between
 * leaves a claim outside any transaction, which claims nothing (it
 * holds no lock). -EAGAIN when another process's claim holds the
 * lock. */
static int
pg_claim(struct whr_store *store, int64_t after, int64_t limit,
	 int64_t lease_us,
	 int (*fn)(struct store_claim *c, void *arg), void *arg)
{
	struct pg_store *s = pg(store);
	struct params p = { 0 };
	bool own_tx = !s->in_tx;
	PGresult *res = NULL;
	int rc = 0;

	s->lease_us = lease_us;
	s->claim_left = false;

	if (own_tx) {
		/* One round trip, answered with the lock's. */
		res = exec_last_result(s, "BEGIN;"
				       " SET LOCAL synchronous_commit = on; "
				       CLAIM_LOCK_SQL, "cannot claim work",
				       &rc);
		if (res != NULL) {
			rc = lock_taken(res);
			PQclear(res);
			res = NULL;
		}
	} else
		rc = claim_lock(s);
	if (rc == 1) {
		claim_params(s, &p, after, limit, lease_us);
		res = run(s, ST_CLAIM, &p, 1, "cannot claim work", &rc);
	} else if (rc == 0)
		rc = -EAGAIN;
	if (own_tx) {
		int ended = end_own_claim(s, res != NULL);

		if (res != NULL && ended < 0) {
			PQclear(res);
			res = NULL;
			rc = ended;
		}
	}
	if (res == NULL)
		return rc;
	return offer_claimed(s, res, fn, arg);
}

static void
pg_claim_window(struct whr_store *store, int64_t rows, int64_t away_us)
{
	struct pg_store *s = pg(store);

	s->claim_window = rows > 0 ? rows : 0;
	s->claim_away_most_us = away_us > 0 ? away_us : 0;
	s->claim_from = 0;
	s->claim_filling_us = 0;
	s->claim_left = false;
}

static bool
pg_claim_left(struct whr_store *store)
{
	return pg(store)->claim_left;
}

/* The claim goes after the transaction's own writes, so that it sees
 * them (new work, keys finished), and is answered with them at the
 * commit, which must then reach the disk before the leases count: a
 * lease lost to a crash of the database would let two replicas run one
 * notification. Pipelined, the deliveries gathered go after the claim
 * lock, and lease up to @p lease_new of their eligible notifications as
 * they are stored (ST_INGEST): no update, nor reading the work back. */
static int
pg_claim_at_commit(struct whr_store *store, int64_t limit, int64_t lease_new,
		   int64_t lease_us)
{
	struct pg_store *s = pg(store);
	struct params p = { 0 };
	PGresult *res;
	int rc = 0;

	if (!s->in_tx) {
		set_error(s, "cannot claim at a commit outside a transaction");
		return -EINVAL;
	}
	if (s->claim_in_tx) {
		set_error(s, "this transaction claimed already");
		return -EBUSY;
	}
	s->claim_in_tx = true;
	s->lease_us = lease_us;
	s->claim_left = false;
	if (deferred(s)) {
		if (!s->synced)
			rc = pipe_simple(s, "SET LOCAL synchronous_commit = on",
					 PENDING_WRITE, "cannot claim work");
		if (rc == 0)
			rc = pipe_prepared(s, ST_CLAIM_LOCK, &p,
					   PENDING_CLAIM_LOCK, NULL, 0,
					   "cannot claim work");
		s->lease_new = lease_new;
		if (rc == 0)
			rc = send_gathered(s);
		s->lease_new = 0;
		if (rc < 0 || limit <= 0)
			return rc;
		claim_params(s, &p, 0, limit, lease_us);
		return pipe_prepared(s, ST_CLAIM, &p, PENDING_CLAIM, NULL, 0,
				     "cannot claim work");
	}
	if (limit <= 0)
		return 0;
	if (!s->synced)
		rc = exec(s, "SET LOCAL synchronous_commit = on",
			  "cannot claim work");
	if (rc == 0)
		rc = claim_lock(s);
	if (rc <= 0) {
		s->claim_busy = rc == 0;
		return rc;
	}
	claim_params(s, &p, 0, limit, lease_us);
	res = run(s, ST_CLAIM, &p, 1, "cannot claim work", &rc);
	s->claimed = res;
	return rc;
}

static int
pg_take_claimed(struct whr_store *store,
		int (*fn)(struct store_claim *c, void *arg), void *arg)
{
	struct pg_store *s = pg(store);
	PGresult *res = s->claimed;
	bool busy = s->claim_busy;

	s->claimed = NULL;
	s->claim_busy = false;
	if (busy) {
		/* Piped, ST_CLAIM ran all the same, and claimed nothing. */
		PQclear(res);
		return -EAGAIN;
	}
	return res != NULL ? offer_claimed(s, res, fn, arg) : 0;
}

static int
pg_renew(struct whr_store *store, const int64_t *ids, size_t n,
	 int64_t lease_us)
{
	struct text list = { 0 };
	struct params p = { 0 };
	int rc;

	param_text(&p, lease_owner);
	param_int(&p, lease_us);
	if (ids == NULL)
		return run_count(pg(store), ST_RENEW_ALL, &p,
				 "cannot renew leases");
	if (n == 0)
		return 0;
	ids_array(&list, ids, n);
	if (list.oom)
		rc = -ENOMEM;
	else {
		param_text(&p, list.p);
		rc = run_count(pg(store), ST_RENEW, &p, "cannot renew leases");
	}
	free(list.p);
	return rc;
}

static int
pg_own(struct whr_store *store, int64_t id)
{
	struct params p = { 0 };
	int64_t own;

	param_int(&p, id);
	param_text(&p, lease_owner);
	own = query_int(pg(store), ST_OWN, &p, "cannot check a claim");
	if (own < 0)
		return (int)own;
	if (own == 0) {
		set_error(pg(store), "notification %lld is no longer this "
			  "replica's: its lease ran out and another claimed "
			  "it", (long long)id);
		return -ESTALE;
	}
	pg(store)->owned_id = id;
	return 0;
}

static int64_t
pg_count_open(struct whr_store *store, int64_t after)
{
	struct params p = { 0 };

	param_int(&p, after);
	return query_int(pg(store), ST_COUNT_OPEN_AFTER, &p,
			 "cannot count pending work");
}

static int
pg_load(struct whr_store *store, int64_t id, struct store_work **out)
{
	struct params p = { 0 };
	PGresult *res;
	int rc;

	param_int(&p, id);
	res = run(pg(store), ST_LOAD_WORK, &p, 1, "cannot load work", &rc);
	if (res == NULL)
		return rc;
	rc = PQntuples(res) == 0
		? -ENOENT : work_from_rows(res, 0, PQntuples(res), out);
	PQclear(res);
	return rc;
}

static int64_t
pg_data_version(struct whr_store *store)
{
	return query_int(pg(store), ST_DATA_VERSION, NULL,
			 "cannot read the data version");
}

/* ---- retention ----------------------------------------------------------- */

static int
pg_purge(struct whr_store *store, int64_t before, int limit)
{
	struct pg_store *s = pg(store);
	struct params p = { 0 };
	PGresult *res;
	int rc;

	res = run(s, ST_PURGE_LOCK, NULL, 0, "cannot purge", &rc);
	if (res == NULL)
		return rc;
	rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!rc)
		return 0;	/* another replica purges */
	param_int(&p, before);
	param_int(&p, limit);
	return run_count(s, ST_PURGE, &p, "cannot purge");
}

static int64_t
pg_bytes(struct whr_store *store)
{
	int64_t n = query_int(pg(store), ST_BYTES, NULL, "cannot measure");

	return n > 0 ? n : 0;
}

/* ---- the transaction handle --------------------------------------------- */

static struct pg_tx *
ptx(struct whr_tx *tx)
{
	return (struct pg_tx *)tx;
}

static struct pg_stmt *
pst(struct whr_stmt *st)
{
	return (struct pg_stmt *)st;
}

/* The handle's view of a failed call; @p res may be NULL. */
static int
tx_fail(struct pg_tx *tx, const PGresult *res)
{
	const char *state = res != NULL
		? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res != NULL
		? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[sizeof(tx->base.error)];
	int rc = errno_of_state(state);

	clean_message(tx->s, primary != NULL ? primary
					     : PQerrorMessage(tx->s->conn),
		      msg, sizeof(msg));
	tx_set_error(tx, "%s",
		     msg[0] != '\0' ? msg : "no answer from the server");
	if (rc == -EDEADLK && tx->s->in_handler)
		tx->s->handler_deadlock = true;
	return rc;
}

static void
clear_params(struct pg_stmt *st)
{
	int i;

	for (i = 0; i < st->n_params; i++) {
		free(st->params[i]);
		st->params[i] = NULL;
	}
}

static void
reset_stmt(struct pg_stmt *st)
{
	PQclear(st->res);
	st->res = NULL;
	st->row = st->rows = 0;
	st->done = false;
}

static void
free_stmt(struct whr_stmt *base)
{
	struct pg_stmt *st = pst(base);

	reset_stmt(st);
	clear_params(st);
	free(st->params);
	free(st);
}

/* Forget the handle's statements, on the server too (one round trip):
 * between handlers, or when closing. */
static void
tx_drop_cache(struct pg_tx *tx)
{
	struct text sql = { 0 };
	size_t i;

	if (tx->cache.n == 0)
		return;
	for (i = 0; i < STMT_CACHE_BUCKETS; i++) {
		struct whr_stmt *st;

		for (st = tx->cache.buckets[i]; st != NULL;
		     st = st->next_in_bucket) {
			text_add(&sql, "DEALLOCATE ", 11);
			text_add(&sql, pst(st)->name, strlen(pst(st)->name));
			text_add(&sql, ";", 1);
		}
	}
	if (!sql.oom && PQstatus(tx->s->conn) == CONNECTION_OK)
		PQclear(PQexec(tx->s->conn, sql.p));
	free(sql.p);
	stmt_cache_drop(&tx->cache, free_stmt);
}

/* ---- refusing what would end the transaction ---- */

static const char *
skip_space_and_comments(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
		       *p == '\f' || *p == '\v')
			p++;
		if (p[0] == '-' && p[1] == '-') {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			int depth = 1;	/* PostgreSQL's nest */

			p += 2;
			while (*p != '\0' && depth > 0) {
				if (p[0] == '/' && p[1] == '*')
					depth++, p++;
				else if (p[0] == '*' && p[1] == '/')
					depth--, p++;
				p++;
			}
		} else {
			return p;
		}
	}
}

/* The next word at @p p (letters, digits, _; or a quoted name, without
 * its quotes) into @p out; returns where it ends. */
static const char *
next_word(const char *p, char *out, size_t size)
{
	size_t n = 0;

	p = skip_space_and_comments(p);
	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (n + 1 < size)
				out[n++] = *p;
		}
		if (*p == '"')
			p++;
		out[n] = '\0';
		return p;
	}
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	       (*p >= '0' && *p <= '9') || *p == '_') {
		if (n + 1 < size)
			out[n++] = *p;
		p++;
	}
	out[n] = '\0';
	return p;
}

static bool
is_tag_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (c & 0x80) != 0 || (!first && c >= '0' && c <= '9');
}

/* Past a dollar-quoted string ($$...$$, $tag$...$tag$) at @p p, or one
 * character ($1, a $ in a name). NULL when the quote never ends: the
 * rest cannot be read as statements, so the caller refuses it. */
static const char *
skip_dollar(const char *p)
{
	const char *tag_end = p + 1;
	size_t len;

	if (*tag_end != '$' && !is_tag_char(*tag_end, true))
		return p + 1;
	while (*tag_end != '$' && is_tag_char(*tag_end, false))
		tag_end++;
	if (*tag_end != '$')
		return p + 1;
	len = (size_t)(tag_end - p) + 1;
	for (p = tag_end + 1; *p != '\0'; p++) {
		if (strncmp(p, tag_end - len + 1, len) == 0)
			return p + len;
	}
	return NULL;
}

/* The end of the statement that starts at @p p: its ; or the end, past
 * quoted text, quoted names, dollar quotes and comments; NULL for a
 * dollar quote that never ends. A $ inside a name ("a$b$") is part of
 * it, not the start of a quote, as PostgreSQL's lexer reads it. */
static const char *
statement_end(const char *p)
{
	const char *start = p;

	while (*p != '\0' && *p != ';') {
		if (*p == '\'' || *p == '"') {
			char q = *p;
			bool escapes = q == '\'' && p > start &&
				       (p[-1] == 'E' || p[-1] == 'e');

			for (p++; *p != '\0';) {
				if (escapes && *p == '\\' && p[1] != '\0')
					p += 2;
				else if (*p == q && p[1] == q)
					p += 2;
				else if (*p++ == q)
					break;
			}
		} else if (*p == '$' && p > start &&
			   (is_tag_char(p[-1], false) || p[-1] == '$')) {
			p++;	/* within a name */
		} else if (*p == '$') {
			p = skip_dollar(p);
			if (p == NULL)
				return NULL;
		} else if ((p[0] == '-' && p[1] == '-') ||
			   (p[0] == '/' && p[1] == '*')) {
			p = skip_space_and_comments(p);
		} else {
			p++;
		}
	}
	return p;
}

/* Whether one statement would end the inbox's transaction or touch the
 * savepoint around the handler. */
static bool
ends_transaction(const char *p)
{
	static const char *const enders[] = {
		"BEGIN", "START", "COMMIT", "END", "ABORT",
	};
	char w[4][64];
	const char *name;
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(w); i++)
		p = next_word(p, w[i], sizeof(w[i]));
	for (i = 0; i < ARRAY_LENGTH(enders); i++) {
		if (ascii_equal_nocase(w[0], enders[i]))
			return true;
	}
	if (ascii_equal_nocase(w[0], "PREPARE"))
		return ascii_equal_nocase(w[1], "TRANSACTION");
	if (ascii_equal_nocase(w[0], "ROLLBACK")) {
		/* ROLLBACK TO [SAVEPOINT] name: fine, but for ours. */
		if (!ascii_equal_nocase(w[1], "TO"))
			return true;
		name = ascii_equal_nocase(w[2], "SAVEPOINT") ? w[3] : w[2];
	} else if (ascii_equal_nocase(w[0], "RELEASE")) {
		name = ascii_equal_nocase(w[1], "SAVEPOINT") ? w[2] : w[1];
	} else if (ascii_equal_nocase(w[0], "SAVEPOINT")) {
		name = w[1];
	} else {
		return false;
	}
	return ascii_equal_nocase(name, HANDLER_SAVEPOINT);
}

/* While a handler runs: -EACCES, saying why, when @p sql holds a
 * statement that would end the transaction. */
static int
guard(struct pg_tx *tx, const char *sql)
{
	const char *p = sql;

	if (!tx->s->in_handler)
		return 0;
	while (*p != '\0') {
		if (ends_transaction(p)) {
			tx_set_error(tx, "not authorized: the transaction is "
				     "the inbox's (BEGIN, COMMIT, ROLLBACK and "
				     "its savepoint are refused)");
			return -EACCES;
		}
		p = statement_end(p);
		if (p == NULL) {
			tx_set_error(tx, "not authorized: a dollar quote that "
				     "never ends");
			return -EACCES;
		}
		if (*p == ';')
			p++;
	}
	return 0;
}

static bool
no_statement(const char *sql)
{
	const char *p = skip_space_and_comments(sql);

	while (*p == ';')
		p = skip_space_and_comments(p + 1);
	return *p == '\0';
}

static void *
pg_tx_native(struct whr_tx *tx)
{
	return ptx(tx)->s->conn;
}

static int
pg_tx_exec(struct whr_tx *base, const char *sql)
{
	struct pg_tx *tx = ptx(base);
	PGresult *res;
	int rc;

	tx->base.error[0] = '\0';
	rc = guard(tx, sql);
	if (rc == 0)
		rc = drain(tx->s);
	if (rc < 0)
		return rc;
	res = PQexec(tx->s->conn, sql);
	rc = result_ok(res) || PQresultStatus(res) == PGRES_EMPTY_QUERY
		? 0 : tx_fail(tx, res);
	PQclear(res);
	return rc;
}

/* Drop the server's prepared statement @p name; a failure only leaves
 * it there (a transaction in error refuses it too). */
static void
deallocate(PGconn *conn, const char *name)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "DEALLOCATE %s", name);
	PQclear(PQexec(conn, sql));
}

static struct whr_stmt *
pg_tx_prepare(struct whr_tx *base, const char *sql)
{
	struct pg_tx *tx = ptx(base);
	struct whr_stmt *kept = stmt_cache_find(&tx->cache, sql);
	struct pg_stmt *st;
	PGresult *res;

	tx->base.error[0] = '\0';
	if (kept != NULL) {
		reset_stmt(pst(kept));
		clear_params(pst(kept));
		return kept;
	}
	if (no_statement(sql)) {
		tx_set_error(tx, "no SQL statement");
		return NULL;
	}
	if (guard(tx, sql) < 0 || drain(tx->s) < 0)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		tx_set_error(tx, "out of memory");
		return NULL;
	}
	snprintf(st->name, sizeof(st->name), "whr_tx_%u", tx->next_name++);
	res = PQprepare(tx->s->conn, st->name, sql, 0, NULL);
	if (!result_ok(res)) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		tx_fail(tx, res);
		/* Several statements: the server's words are not the
		 * handle's. */
		if (state != NULL && strcmp(state, "42601") == 0 &&
		    strstr(tx->base.error, "multiple commands") != NULL)
			tx_set_error(tx, "more than one SQL statement: use "
					 "whr_tx_exec()");
		PQclear(res);
		free(st);
		return NULL;
	}
	PQclear(res);
	res = PQdescribePrepared(tx->s->conn, st->name);
	if (!result_ok(res)) {
		tx_fail(tx, res);
		PQclear(res);
		goto err;
	}
	st->n_params = PQnparams(res);
	PQclear(res);
	if (st->n_params > 0)
		st->params = calloc((size_t)st->n_params, sizeof(char *));
	if ((st->n_params > 0 && st->params == NULL) ||
	    stmt_cache_add(&tx->cache, &tx->base, &st->base, sql) < 0) {
		tx_set_error(tx, "out of memory");
		goto err;
	}
	return &st->base;
err:
	/* The server's statement goes too, or the name would be taken
	 * for the life of the connection. */
	deallocate(tx->s->conn, st->name);
	free(st->params);
	free(st);
	return NULL;
}

/* Parameter @p index to @p value (taken; NULL for NULL). */
static int
bind_value(struct whr_stmt *base, int index, char *value, bool null)
{
	struct pg_stmt *st = pst(base);

	if (index < 1 || index > st->n_params) {
		free(value);
		store_tx_set_error(base->tx, "no parameter of that number");
		return -EINVAL;
	}
	if (value == NULL && !null) {
		store_tx_set_error(base->tx, "out of memory");
		return -ENOMEM;
	}
	free(st->params[index - 1]);
	st->params[index - 1] = value;
	return 0;
}

static int
pg_stmt_bind_null(struct whr_stmt *st, int index)
{
	return bind_value(st, index, NULL, true);
}

static int
pg_stmt_bind_int(struct whr_stmt *st, int index, int64_t value)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, value);
	return bind_value(st, index, strdup(buf), false);
}

static int
pg_stmt_bind_text(struct whr_stmt *st, int index, const char *text)
{
	return bind_value(st, index, text != NULL ? strdup(text) : NULL,
		    text == NULL);
}

static int
pg_stmt_step(struct whr_stmt *base)
{
	struct pg_stmt *st = pst(base);
	struct pg_tx *tx = ptx(base->tx);

	if (st->done)
		return 0;
	if (st->res == NULL) {
		int rc = drain(tx->s);
		PGresult *res;

		if (rc < 0)
			return rc;
		res = PQexecPrepared(tx->s->conn, st->name,
					       st->n_params,
					       (const char *const *)st->params,
					       NULL, NULL, 0);

		if (!result_ok(res)) {
			rc = tx_fail(tx, res);
			PQclear(res);
			return rc;
		}
		st->res = res;
		st->rows = PQntuples(res);
		st->row = -1;
	}
	if (++st->row < st->rows)
		return 1;
	st->done = true;
	st->changes = strtoll(PQcmdTuples(st->res), NULL, 10);
	return 0;
}

static int64_t
pg_stmt_changes(const struct whr_stmt *st)
{
	return ((const struct pg_stmt *)st)->changes;
}

/* On a row, with such a column. */
static bool
on_row(const struct pg_stmt *st, int column)
{
	return st->res != NULL && st->row >= 0 && st->row < st->rows &&
	       column < PQnfields(st->res);
}

static bool
pg_stmt_is_null(struct whr_stmt *base, int column)
{
	struct pg_stmt *st = pst(base);

	return !on_row(st, column) || PQgetisnull(st->res, st->row, column);
}

static int64_t
pg_stmt_int(struct whr_stmt *base, int column)
{
	struct pg_stmt *st = pst(base);
	const char *v;

	if (!on_row(st, column))
		return 0;
	v = PQgetvalue(st->res, st->row, column);
	/* Booleans as SQLite has them. */
	if (v[0] == 't' && v[1] == '\0')
		return 1;
	return strtoll(v, NULL, 10);
}

static const char *
pg_stmt_text(struct whr_stmt *base, int column)
{
	struct pg_stmt *st = pst(base);

	if (!on_row(st, column) || PQgetisnull(st->res, st->row, column))
		return NULL;
	return PQgetvalue(st->res, st->row, column);
}

static const struct tx_backend tx_postgresql = {
	.db = WHR_DB_POSTGRESQL,
	.native = pg_tx_native,
	.exec = pg_tx_exec,
	.prepare = pg_tx_prepare,
	.bind_null = pg_stmt_bind_null,
	.bind_int = pg_stmt_bind_int,
	.bind_text = pg_stmt_bind_text,
	.step = pg_stmt_step,
	.changes = pg_stmt_changes,
	.is_null = pg_stmt_is_null,
	.int_at = pg_stmt_int,
	.text = pg_stmt_text,
};

const struct store_backend store_postgresql = {
	.shared = true,
	.open = pg_open,
	.close = pg_close,
	.name = pg_name,
	.begin = pg_begin_store,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.sync_commits = pg_sync_commits,
	.probe = pg_probe,
	.handler_begin = pg_handler_begin,
	.handler_end = pg_handler_end,
	.ingest = pg_ingest,
	.claim = pg_claim,
	.claim_at_commit = pg_claim_at_commit,
	.take_claimed = pg_take_claimed,
	.claim_window = pg_claim_window,
	.claim_left = pg_claim_left,
	.renew = pg_renew,
	.own = pg_own,
	.listen = pg_listen,
	.keep_leases = pg_keep_leases,
	.counted_gauges = pg_counted_gauges,
	.pipeline = pg_pipeline,
	.count_open = pg_count_open,
	.load = pg_load,
	.record_outcome = pg_record_outcome,
	.settle = pg_settle,
	.data_version = pg_data_version,
	.purge = pg_purge,
	.bytes = pg_bytes,
};
