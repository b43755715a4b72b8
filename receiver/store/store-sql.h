/*
 * SQL shared by the server (store.c) and the inbox tool (whr inbox):
 * the statements that change which work is open, so that both mean the
 * same by "replay" and "purge". Parameters: ?1 is the delivery's seq.
 */
#ifndef WHR_RECEIVER_STORE_SQL_H
#define WHR_RECEIVER_STORE_SQL_H

/* Deliveries finished before ?1: received before it, and every
 * notification done or dead, the last of them before it too. A
 * delivery's finish time is not stored: it would cost a write of the
 * delivery's row each time a notification finishes. */
#define SQL_FINISHED_BEFORE \
	"SELECT seq FROM deliveries d WHERE received_at < ?1" \
	" AND NOT EXISTS (SELECT 1 FROM notifications n" \
	" WHERE n.delivery_seq = d.seq AND (n.state IN ('pending', 'retrying')" \
	" OR n.updated_at >= ?1)) ORDER BY received_at"

/* When delivery @p d (an alias in the query) finished; NULL while work
 * is open. */
#define SQL_FINISHED_AT(d) \
	"(SELECT CASE WHEN count(*) = 0 THEN " d ".received_at" \
	" WHEN sum(state IN ('pending', 'retrying')) > 0 THEN NULL" \
	" ELSE max(updated_at) END FROM notifications" \
	" WHERE delivery_seq = " d ".seq)"

/* Purge one delivery and everything about it. */
#define SQL_PURGE_OUTCOMES \
	"DELETE FROM outcomes WHERE notification_id IN" \
	" (SELECT id FROM notifications WHERE delivery_seq = ?1)"
#define SQL_PURGE_NOTIFICATIONS \
	"DELETE FROM notifications WHERE delivery_seq = ?1"
#define SQL_PURGE_DELIVERY \
	"DELETE FROM deliveries WHERE seq = ?1"

/* Replay notification ?1: forget the outcomes of handlers that did not
 * finish well (all of them when ?2 is 1), and make it pending now (?3). */
#define SQL_REPLAY_OUTCOMES \
	"DELETE FROM outcomes WHERE notification_id = ?1" \
	" AND (?2 = 1 OR result <> 'done')"
/* A replayed notification starts over: its retries (their backoff and
 * --retry-max-age) count from the replay. */
#define SQL_REPLAY_NOTIFICATION \
	"UPDATE notifications SET state = 'pending', next_at = ?3," \
	" error = NULL, updated_at = ?3, runs = 0, retry_from = ?3" \
	" WHERE id = ?1 AND state IN ('done', 'dead')"

#endif /* WHR_RECEIVER_STORE_SQL_H */
