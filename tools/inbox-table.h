/*
 * Output of whr inbox: tables for people, JSON for scripts.
 */
#ifndef WHR_TOOLS_INBOX_TABLE_H
#define WHR_TOOLS_INBOX_TABLE_H

#include <stdint.h>

#include <sqlite3.h>

/* Every row of @p st as a table with these column titles (NULL-ended);
 * long cells are cut. 0, or -1 when a step fails. */
int print_table(sqlite3_stmt *st, const char *const *titles);

/* The first column of the first row: a JSON document built by SQL. */
int print_json_result(sqlite3_stmt *st);

/* A delivery with its notifications and outcomes. */
int show_text(sqlite3 *db, int64_t seq);
int show_json(sqlite3 *db, int64_t seq);

/* Counts by state and Action, the oldest open work, the file's size. */
int stats_text(sqlite3 *db, const char *path);
int stats_json(sqlite3 *db, const char *path);

#endif /* WHR_TOOLS_INBOX_TABLE_H */
