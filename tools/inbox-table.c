/*
 * Output of whr inbox (see inbox-table.h). JSON comes from SQLite's JSON
 * functions, so every string is escaped by one well-tested writer.
 */
#include "inbox-table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/store-sql.h"

#define CELL_MAX 60	/* characters of a cell shown in a table */

#define ISO(col) \
	"strftime('%Y-%m-%dT%H:%M:%fZ', " col " / 1000000.0, 'unixepoch')"

/* A cell as text: NULL as "-", control characters as spaces, cut to
 * CELL_MAX characters (UTF-8 aware). Malloc'd. */
static char *
cell(sqlite3_stmt *st, int i)
{
	const unsigned char *text = sqlite3_column_text(st, i);
	size_t chars = 0;
	size_t n = 0;
	char *out;

	if (text == NULL)
		return strdup("-");
	out = malloc(strlen((const char *)text) + 4);
	if (out == NULL)
		return NULL;
	for (; text[n] != '\0'; n++) {
		if ((text[n] & 0xc0) != 0x80 && chars++ == CELL_MAX) {
			strcpy(out + n, "...");
			return out;
		}
		out[n] = text[n] < 0x20 ? ' ' : (char)text[n];
	}
	out[n] = '\0';
	return out;
}

static size_t
display_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

int
print_table(sqlite3_stmt *st, const char *const *titles)
{
	size_t n_cols = 0, n_rows = 0, cap = 0;
	char **cells = NULL;
	size_t *widths;
	size_t r, c;
	int rc;

	while (titles[n_cols] != NULL)
		n_cols++;
	widths = calloc(n_cols, sizeof(*widths));
	if (widths == NULL)
		return -1;
	for (c = 0; c < n_cols; c++)
		widths[c] = display_width(titles[c]);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n_rows == cap) {
			char **grown;

			cap = cap ? 2 * cap : 64;
			grown = realloc(cells, cap * n_cols * sizeof(*cells));
			if (grown == NULL)
				break;
			cells = grown;
		}
		for (c = 0; c < n_cols; c++) {
			char *text = cell(st, (int)c);

			cells[n_rows * n_cols + c] = text;
			if (text != NULL && display_width(text) > widths[c])
				widths[c] = display_width(text);
		}
		n_rows++;
	}
	for (c = 0; c < n_cols; c++)
		printf("%s%-*s", c ? "  " : "",
		       c + 1 < n_cols ? (int)widths[c] : 0, titles[c]);
	printf("\n");
	for (r = 0; r < n_rows; r++) {
		for (c = 0; c < n_cols; c++) {
			const char *text = cells[r * n_cols + c];
			size_t pad;

			if (text == NULL)
				text = "?";
			pad = widths[c] - display_width(text);
			printf("%s%s%*s", c ? "  " : "", text,
			       c + 1 < n_cols ? (int)pad : 0, "");
			free(cells[r * n_cols + c]);
		}
		printf("\n");
	}
	if (n_rows == 0)
		printf("(none)\n");
	free(cells);
	free(widths);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
print_json_result(sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_ROW)
		return -1;
	printf("%s\n", sqlite3_column_text(st, 0) != NULL
			       ? (const char *)sqlite3_column_text(st, 0)
			       : "null");
	return 0;
}

/* ---- show -------------------------------------------------------------- */

int
show_text(sqlite3 *db, int64_t seq)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db,
		"SELECT seq, receiver_id, delivery_id, attempt,"
		" " ISO("received_at") ", duplicates, last_attempt,"
		" " ISO("last_duplicate_at") ", " ISO(SQL_FINISHED_AT("d")) ","
		" (SELECT group_concat(json_extract(h.value, '$[0]') || ': ' ||"
		"   json_extract(h.value, '$[1]'), char(10) || '           ')"
		"   FROM json_each(headers) h),"
		" length(body), CAST(body AS TEXT)"
		" FROM deliveries d WHERE seq = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *receiver = (const char *)sqlite3_column_text(st, 1);

		printf("delivery   #%lld\n", (long long)sqlite3_column_int64(st, 0));
		printf("id         %s\n", sqlite3_column_text(st, 2) != NULL
			       ? (const char *)sqlite3_column_text(st, 2)
			       : "(none: the body has no Id)");
		printf("receiver   %s\n", receiver != NULL && *receiver
			       ? receiver : "(default)");
		printf("attempt    %d\n", sqlite3_column_int(st, 3));
		printf("received   %s\n", sqlite3_column_text(st, 4));
		printf("duplicates %d", sqlite3_column_int(st, 5));
		if (sqlite3_column_int(st, 5) > 0)
			printf(" (last with attempt %d, at %s)",
			       sqlite3_column_int(st, 6),
			       sqlite3_column_text(st, 7));
		printf("\nfinished   %s\n", sqlite3_column_text(st, 8) != NULL
			       ? (const char *)sqlite3_column_text(st, 8)
			       : "no: work is open");
		printf("headers    %s\n", sqlite3_column_text(st, 9) != NULL
			       ? (const char *)sqlite3_column_text(st, 9)
			       : "-");
		printf("body       %d bytes\n%s\n", sqlite3_column_int(st, 10),
		       sqlite3_column_text(st, 11));
		rc = 0;
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;

	if (sqlite3_prepare_v2(db,
		"SELECT n.idx, coalesce(n.action, '(no Action)'), n.state,"
		" n.runs, " ISO("n.next_at") ", n.error, o.handler, o.result,"
		" o.runs, o.reason, n.id"
		" FROM notifications n LEFT JOIN outcomes o"
		" ON o.notification_id = n.id WHERE n.delivery_seq = ?1"
		" ORDER BY n.idx, o.handler", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	{
		int last = -1;

		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int idx = sqlite3_column_int(st, 0);

			if (idx != last) {
				const char *state =
					(const char *)sqlite3_column_text(st, 2);

				printf("\nnotification %d (#%lld): %s, %s after %d run(s)",
				       idx, (long long)sqlite3_column_int64(st, 10),
				       sqlite3_column_text(st, 1), state,
				       sqlite3_column_int(st, 3));
				if (strcmp(state, "retrying") == 0 ||
				    strcmp(state, "pending") == 0)
					printf(", next at %s",
					       sqlite3_column_text(st, 4));
				if (sqlite3_column_text(st, 5) != NULL)
					printf("\n  error: %s",
					       sqlite3_column_text(st, 5));
				printf("\n");
				last = idx;
			}
			if (sqlite3_column_text(st, 6) != NULL)
				printf("  handler %-16s %-7s runs %d%s%s\n",
				       sqlite3_column_text(st, 6),
				       sqlite3_column_text(st, 7),
				       sqlite3_column_int(st, 8),
				       sqlite3_column_text(st, 9) ? ": " : "",
				       sqlite3_column_text(st, 9)
					       ? (const char *)sqlite3_column_text(st, 9)
					       : "");
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
show_json(sqlite3 *db, int64_t seq)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db,
		"SELECT json_object('seq', d.seq, 'id', d.delivery_id,"
		" 'receiver', d.receiver_id, 'attempt', d.attempt,"
		" 'received', " ISO("d.received_at") ","
		" 'duplicates', d.duplicates, 'last_attempt', d.last_attempt,"
		" 'finished', " ISO(SQL_FINISHED_AT("d")) ","
		" 'headers', json(d.headers), 'body', CAST(d.body AS TEXT),"
		" 'notifications', (SELECT json_group_array(json_object("
		"  'notification', n.id, 'index', n.idx, 'action', n.action,"
		"  'state', n.state, 'runs', n.runs,"
		"  'next_at', " ISO("n.next_at") ", 'error', n.error,"
		"  'outcomes', (SELECT json_group_array(json_object("
		"   'handler', o.handler, 'result', o.result, 'runs', o.runs,"
		"   'reason', o.reason, 'at', " ISO("o.updated_at") "))"
		"   FROM outcomes o WHERE o.notification_id = n.id)))"
		"  FROM notifications n WHERE n.delivery_seq = d.seq))"
		" FROM deliveries d WHERE d.seq = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	rc = print_json_result(st);
	sqlite3_finalize(st);
	return rc;
}

/* ---- stats ------------------------------------------------------------- */

static long long
file_size(const char *path)
{
	struct stat sb;
	char wal[4200];
	long long size = 0;

	if (stat(path, &sb) == 0)
		size += sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(wal, &sb) == 0)
		size += sb.st_size;
	return size;
}

#define STATS_SQL \
	"SELECT (SELECT count(*) FROM deliveries)," \
	" (SELECT coalesce(sum(duplicates), 0) FROM deliveries)," \
	" (SELECT count(*) FROM notifications WHERE state = 'pending')," \
	" (SELECT count(*) FROM notifications WHERE state = 'retrying')," \
	" (SELECT count(*) FROM notifications WHERE state = 'dead')," \
	" (SELECT count(*) FROM notifications WHERE state = 'done')," \
	" (SELECT " ISO("min(d.received_at)") " FROM notifications n JOIN" \
	"  deliveries d ON d.seq = n.delivery_seq" \
	"  WHERE n.state IN ('pending', 'retrying'))," \
	" (SELECT " ISO("min(received_at)") " FROM deliveries)," \
	" (SELECT " ISO("max(received_at)") " FROM deliveries)"

int
stats_text(sqlite3 *db, const char *path)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, STATS_SQL, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		printf("inbox          %s (%.1f MiB)\n", path,
		       (double)file_size(path) / (1024.0 * 1024.0));
		printf("deliveries     %lld (duplicates received: %lld)\n",
		       sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
		printf("received       %s .. %s\n",
		       sqlite3_column_text(st, 7) ? (const char *)sqlite3_column_text(st, 7) : "-",
		       sqlite3_column_text(st, 8) ? (const char *)sqlite3_column_text(st, 8) : "-");
		printf("notifications  pending %lld, retrying %lld, dead %lld, done %lld\n",
		       sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
		       sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5));
		printf("oldest open    %s\n", sqlite3_column_text(st, 6)
			       ? (const char *)sqlite3_column_text(st, 6)
			       : "-");
		rc = 0;
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	if (sqlite3_prepare_v2(db,
		"SELECT coalesce(action, '(no Action)'), count(*),"
		" sum(state = 'pending'), sum(state = 'retrying'),"
		" sum(state = 'dead'), sum(state = 'done')"
		" FROM notifications GROUP BY action ORDER BY count(*) DESC",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	printf("\n");
	rc = print_table(st, (const char *const[]){
		"ACTION", "TOTAL", "PENDING", "RETRYING", "DEAD", "DONE", NULL });
	sqlite3_finalize(st);
	return rc;
}

int
stats_json(sqlite3 *db, const char *path)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db,
		"SELECT json_object('inbox', ?1, 'bytes', ?2,"
		" 'deliveries', s.d, 'duplicates', s.dup,"
		" 'first_received', s.first, 'last_received', s.last,"
		" 'notifications', json_object('pending', s.p, 'retrying', s.r,"
		"  'dead', s.x, 'done', s.ok), 'oldest_open', s.oldest,"
		" 'actions', (SELECT json_group_array(json_object('action', action,"
		"  'total', count, 'pending', p, 'retrying', r, 'dead', x,"
		"  'done', ok)) FROM (SELECT action, count(*) AS count,"
		"  sum(state = 'pending') AS p, sum(state = 'retrying') AS r,"
		"  sum(state = 'dead') AS x, sum(state = 'done') AS ok"
		"  FROM notifications GROUP BY action ORDER BY count DESC)))"
		" FROM (SELECT s1 AS d, s2 AS dup, s3 AS p, s4 AS r, s5 AS x,"
		"  s6 AS ok, s7 AS oldest, s8 AS first, s9 AS last FROM ("
		"  SELECT (SELECT count(*) FROM deliveries) AS s1,"
		"  (SELECT coalesce(sum(duplicates), 0) FROM deliveries) AS s2,"
		"  (SELECT count(*) FROM notifications WHERE state = 'pending') AS s3,"
		"  (SELECT count(*) FROM notifications WHERE state = 'retrying') AS s4,"
		"  (SELECT count(*) FROM notifications WHERE state = 'dead') AS s5,"
		"  (SELECT count(*) FROM notifications WHERE state = 'done') AS s6,"
		"  (SELECT " ISO("min(d.received_at)") " FROM notifications n"
		"   JOIN deliveries d ON d.seq = n.delivery_seq"
		"   WHERE n.state IN ('pending', 'retrying')) AS s7,"
		"  (SELECT " ISO("min(received_at)") " FROM deliveries) AS s8,"
		"  (SELECT " ISO("max(received_at)") " FROM deliveries) AS s9)) s",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, file_size(path));
	rc = print_json_result(st);
	sqlite3_finalize(st);
	return rc;
}
