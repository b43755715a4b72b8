/*
 * Output of whr inbox: tables for people, JSON for scripts, times in UTC.
 */
#ifndef WHR_TOOLS_INBOX_TABLE_H
#define WHR_TOOLS_INBOX_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <yajl/yajl_gen.h>

/* A table of text cells, printed with its columns aligned. */
struct table;

/* A table with these column titles (NULL-ended); NULL without memory. */
struct table *table_new(const char *const *titles);

/* One row: a cell per column, NULL shown as "-". Cells are copied, with
 * control characters as spaces, cut to 60 characters. -1 without
 * memory. */
int table_add(struct table *t, const char *const *cells);

/* Print the titles and the rows ("(none)" without rows), and free. */
void table_print(struct table *t, FILE *out);
void table_free(struct table *t);

/* @p us (microseconds since the epoch) as 2026-11-29T08:00:00.123Z. */
#define ISO_TIME_SIZE 80

void iso_time(char out[ISO_TIME_SIZE], int64_t us);

/* A compact JSON generator on standard output, and its helpers: a
 * string or null, an integer, a time (ISO, as above) or null. */
yajl_gen json_begin(void);
void json_end(yajl_gen g);	/* prints the document and a newline */
void json_key(yajl_gen g, const char *key);
void json_text(yajl_gen g, const char *key, const char *value);
void json_int(yajl_gen g, const char *key, int64_t value);
void json_time(yajl_gen g, const char *key, int has, int64_t us);
/* A JSON document (text) as a value: parsed and written again. */
void json_raw(yajl_gen g, const char *key, const char *json);

/* One value of a row or an object, named once for both outputs. */
enum cell_kind {
	CELL_TEXT,		/* text; NULL: null, or the table's none */
	CELL_INT,
	CELL_TIME,		/* microseconds since the epoch */
};

struct cell {
	const char *key;	/* its JSON name */
	enum cell_kind kind;
	const char *text;
	int64_t value;
	const char *none;	/* a table's NULL text; NULL: "-" */
};

#define ROW_CELLS_MAX 16

/* @p n cells as members of the JSON object @p g has open. */
void json_cells(yajl_gen g, const struct cell *cells, size_t n);

/* Where rows go: a table for people, or JSON. */
struct output {
	struct table *table;
	yajl_gen json;
};

/* A table with @p titles, or with @p json a JSON document (the caller
 * opens what holds the rows): false when out of memory. */
bool output_open(struct output *o, bool json, const char *const *titles);

/* A row of @p n cells (at most ROW_CELLS_MAX, one per title): a JSON
 * object, or a table row. 0, or -1 without memory. */
int output_row(struct output *o, const struct cell *cells, size_t n);

/* Print what @p o holds when @p ok (the table, or the JSON its caller
 * closed), then free it. */
void output_close(struct output *o, bool ok);

#endif /* WHR_TOOLS_INBOX_TABLE_H */
