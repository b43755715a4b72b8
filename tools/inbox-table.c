/*
 * Output of whr inbox (see inbox-table.h). JSON is written by yajl's
 * generator, so every string is escaped by one well-tested writer.
 */
#include "inbox-table.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_tree.h>

#define CELL_MAX 60	/* characters of a cell shown in a table */

struct table {
	const char *const *titles;
	size_t n_cols, n_rows, cap;
	char **cells;
};

struct table *
table_new(const char *const *titles)
{
	struct table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->titles = titles;
	while (titles[t->n_cols] != NULL)
		t->n_cols++;
	return t;
}

/* A cell as text: NULL as "-", control characters as spaces, cut to
 * CELL_MAX characters (UTF-8 aware). Malloc'd. */
static char *
cell(const char *text)
{
	size_t chars = 0;
	size_t n = 0;
	char *out;

	if (text == NULL)
		return strdup("-");
	out = malloc(strlen(text) + 4);
	if (out == NULL)
		return NULL;
	for (; text[n] != '\0'; n++) {
		if ((text[n] & 0xc0) != 0x80 && chars++ == CELL_MAX) {
			strcpy(out + n, "...");
			return out;
		}
		out[n] = (unsigned char)text[n] < 0x20 ? ' ' : text[n];
	}
	out[n] = '\0';
	return out;
}

int
table_add(struct table *t, const char *const *cells)
{
	size_t c;

	if (t->n_rows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		char **grown = realloc(t->cells,
				       cap * t->n_cols * sizeof(*grown));

		if (grown == NULL)
			return -1;
		t->cells = grown;
		t->cap = cap;
	}
	for (c = 0; c < t->n_cols; c++)
		t->cells[t->n_rows * t->n_cols + c] = cell(cells[c]);
	t->n_rows++;
	return 0;
}

static size_t
display_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

void
table_print(struct table *t, FILE *out)
{
	size_t *widths = calloc(t->n_cols, sizeof(*widths));
	size_t r, c;

	if (widths == NULL)
		return;
	for (c = 0; c < t->n_cols; c++)
		widths[c] = display_width(t->titles[c]);
	for (r = 0; r < t->n_rows; r++) {
		for (c = 0; c < t->n_cols; c++) {
			const char *text = t->cells[r * t->n_cols + c];

			if (text != NULL && display_width(text) > widths[c])
				widths[c] = display_width(text);
		}
	}
	for (c = 0; c < t->n_cols; c++)
		fprintf(out, "%s%-*s", c ? "  " : "",
			c + 1 < t->n_cols ? (int)widths[c] : 0, t->titles[c]);
	fprintf(out, "\n");
	for (r = 0; r < t->n_rows; r++) {
		for (c = 0; c < t->n_cols; c++) {
			const char *text = t->cells[r * t->n_cols + c];

			if (text == NULL)
				text = "?";
			fprintf(out, "%s%s%*s", c ? "  " : "", text,
				c + 1 < t->n_cols
					? (int)(widths[c] - display_width(text))
					: 0, "");
		}
		fprintf(out, "\n");
	}
	if (t->n_rows == 0)
		fprintf(out, "(none)\n");
	free(widths);
}

void
table_free(struct table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void
iso_time(char out[ISO_TIME_SIZE], int64_t us)
{
	/* To the nearest millisecond, as SQLite's strftime('%f') shows it,
	 * which the tool printed before. */
	int64_t ms = (us > 0 ? us : 0) / 1000 + ((us > 0 ? us : 0) % 1000 >= 500);
	int64_t secs = ms / 1000;
	time_t t = (time_t)secs;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, ISO_TIME_SIZE, "?");
		return;
	}
	snprintf(out, ISO_TIME_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms - secs * 1000));
}

/* ---- JSON ----------------------------------------------------------------- */

yajl_gen
json_begin(void)
{
	return yajl_gen_alloc(NULL);
}

void
json_end(yajl_gen g)
{
	const unsigned char *buf;
	size_t len;

	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
		printf("%.*s\n", (int)len, (const char *)buf);
	yajl_gen_free(g);
}

void
json_key(yajl_gen g, const char *key)
{
	if (key != NULL)
		yajl_gen_string(g, (const unsigned char *)key, strlen(key));
}

void
json_text(yajl_gen g, const char *key, const char *value)
{
	json_key(g, key);
	if (value != NULL)
		yajl_gen_string(g, (const unsigned char *)value,
				strlen(value));
	else
		yajl_gen_null(g);
}

void
json_int(yajl_gen g, const char *key, int64_t value)
{
	json_key(g, key);
	yajl_gen_integer(g, (long long)value);
}

void
json_time(yajl_gen g, const char *key, int has, int64_t us)
{
	char iso[ISO_TIME_SIZE];

	if (!has) {
		json_text(g, key, NULL);
		return;
	}
	iso_time(iso, us);
	json_text(g, key, iso);
}

static void
gen_value(yajl_gen g, yajl_val v)
{
	size_t i;

	if (YAJL_IS_STRING(v)) {
		yajl_gen_string(g, (const unsigned char *)v->u.string,
				strlen(v->u.string));
	} else if (YAJL_IS_NUMBER(v)) {
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	} else if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (i = 0; i < v->u.object.len; i++) {
			json_key(g, v->u.object.keys[i]);
			gen_value(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (i = 0; i < v->u.array.len; i++)
			gen_value(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
	} else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(v));
	} else {
		yajl_gen_null(g);
	}
}

void
json_raw(yajl_gen g, const char *key, const char *json)
{
	yajl_val v = json != NULL ? yajl_tree_parse(json, NULL, 0) : NULL;

	json_key(g, key);
	gen_value(g, v);
	yajl_tree_free(v);
}

/* ---- rows ----------------------------------------------------------------- */

void
json_cells(yajl_gen g, const struct cell *cells, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (cells[i].kind == CELL_TEXT)
			json_text(g, cells[i].key, cells[i].text);
		else if (cells[i].kind == CELL_INT)
			json_int(g, cells[i].key, cells[i].value);
		else
			json_time(g, cells[i].key, 1, cells[i].value);
	}
}

bool
output_open(struct output *o, bool json, const char *const *titles)
{
	if (json)
		o->json = json_begin();
	else
		o->table = table_new(titles);
	return o->json != NULL || o->table != NULL;
}

int
output_row(struct output *o, const struct cell *cells, size_t n)
{
	char text[ROW_CELLS_MAX][ISO_TIME_SIZE];
	const char *row[ROW_CELLS_MAX];
	size_t i;

	if (o->json != NULL) {
		yajl_gen_map_open(o->json);
		json_cells(o->json, cells, n);
		yajl_gen_map_close(o->json);
		return 0;
	}
	if (n > ROW_CELLS_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		row[i] = text[i];
		if (cells[i].kind == CELL_TEXT)
			row[i] = cells[i].text != NULL ? cells[i].text
						       : cells[i].none;
		else if (cells[i].kind == CELL_INT)
			snprintf(text[i], sizeof(text[i]), "%lld",
				 (long long)cells[i].value);
		else
			iso_time(text[i], cells[i].value);
	}
	return table_add(o->table, row);
}

void
output_close(struct output *o, bool ok)
{
	if (o->json != NULL) {
		if (ok)
			json_end(o->json);
		else
			yajl_gen_free(o->json);
	} else {
		if (ok)
			table_print(o->table, stdout);
		table_free(o->table);
	}
}
