/*
 * Output of whr enrollments (see enrollments-report.h): three writers of
 * the rows a report hands over. CSV and JSON stream row by row; a table
 * keeps the rows to measure its columns first.
 */
#include "enrollments-report.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

#define REPLACEMENT 0xfffdu

/* ---- UTF-8 --------------------------------------------------------------- */

/* Columns a code point takes on a terminal: 0 for combining marks and
 * invisible format characters, 2 for East Asian wide and emoji ranges,
 * else 1. A small wcwidth() that needs no locale. */
static size_t
cp_width(uint32_t c)
{
	if ((c >= 0x300 && c <= 0x36f) || (c >= 0x200b && c <= 0x200f) ||
	    (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0x20d0 && c <= 0x20ff))
		return 0;
	if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
	    (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
	    (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
	    (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
	    (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd))
		return 2;
	return 1;
}

static void
put_utf8(FILE *out, uint32_t c)
{
	char buf[4];

	fwrite(buf, 1, utf8_encode(buf, c), out);
}

/* The code point that starts @p s (@p len bytes, at least 1) into @p c,
 * U+FFFD for a byte that does not start well-formed UTF-8; its length in
 * bytes (1 for such a byte). put_utf8() writes the same bytes back for
 * well-formed UTF-8, so CSV and JSON write what they read, mended. */
static size_t
utf8_mended(const unsigned char *s, size_t len, uint32_t *c)
{
	size_t k = utf8_next(s, len, c);

	if (k == 0) {
		*c = REPLACEMENT;
		return 1;
	}
	return k;
}

/* ---- cells --------------------------------------------------------------- */

/* What a terminal would act on rather than show: C0 and C1 controls,
 * and the bidirectional overrides and isolates, which reorder what
 * follows them (a course title comes from outside). */
static bool
is_control(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c < 0xa0) ||
	       (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/* A cell for a table: "-" for none, control characters as spaces, bytes
 * that are not UTF-8 as '?'. Malloc'd; its display width in @p width. */
static char *
table_cell(const struct report_cell *in, size_t *width)
{
	const unsigned char *text = (const unsigned char *)in->text;
	size_t len = in->len, at = 0, n = 0;
	uint32_t c;
	char *cell;

	if (text == NULL) {
		*width = 1;
		return strdup("-");
	}
	cell = malloc(len + 1);
	if (cell == NULL)
		return NULL;
	*width = 0;
	while (at < len) {
		size_t k = utf8_next(text + at, len - at, &c);

		if (k == 0) {
			cell[n++] = '?';
			*width += 1;
			at++;
		} else if (is_control(c)) {
			cell[n++] = ' ';
			*width += 1;
			at += k;
		} else {
			memcpy(cell + n, text + at, k);
			n += k;
			at += k;
			*width += cp_width(c);
		}
	}
	cell[n] = '\0';
	return cell;
}

/* ---- table --------------------------------------------------------------- */

struct grid {
	char **cells;		/* n_rows * n_cols */
	size_t *widths;		/* of each cell, n_rows * n_cols */
	size_t n_rows, cap;
};

static void
grid_finish(struct grid *g, size_t n_cols)
{
	size_t i;

	for (i = 0; i < g->n_rows * n_cols; i++)
		free(g->cells[i]);
	free(g->cells);
	free(g->widths);
}

static int
grid_add_row(struct grid *g, const struct report_cell *row, size_t n_cols)
{
	size_t c;

	if (g->n_rows == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 64;
		char **cells;
		size_t *widths;

		cells = realloc(g->cells, cap * n_cols * sizeof(*cells));
		if (cells == NULL)
			return -ENOMEM;
		g->cells = cells;
		widths = realloc(g->widths, cap * n_cols * sizeof(*widths));
		if (widths == NULL)
			return -ENOMEM;
		g->widths = widths;
		g->cap = cap;
	}
	for (c = 0; c < n_cols; c++) {
		size_t at = g->n_rows * n_cols + c;

		g->cells[at] = table_cell(&row[c], &g->widths[at]);
		if (g->cells[at] == NULL) {
			/* Keep the grid whole for grid_finish(). */
			while (c-- > 0)
				free(g->cells[g->n_rows * n_cols + c]);
			return -ENOMEM;
		}
	}
	g->n_rows++;
	return 0;
}

static void
put_padded(FILE *out, const char *text, size_t width, size_t column,
	   bool right, bool last)
{
	size_t pad = column - width;

	if (right)
		fprintf(out, "%*s%s", (int)pad, "", text);
	else if (last)
		fputs(text, out);
	else
		fprintf(out, "%s%*s", text, (int)pad, "");
}

static void
print_table(FILE *out, const struct grid *g, const struct report_column *cols,
	    size_t n_cols, size_t *columns)
{
	size_t r, c;

	for (c = 0; c < n_cols; c++)
		columns[c] = strlen(cols[c].title); /* ASCII titles */
	for (r = 0; r < g->n_rows; r++) {
		for (c = 0; c < n_cols; c++) {
			if (g->widths[r * n_cols + c] > columns[c])
				columns[c] = g->widths[r * n_cols + c];
		}
	}
	for (c = 0; c < n_cols; c++) {
		fputs(c ? "  " : "", out);
		put_padded(out, cols[c].title, strlen(cols[c].title),
			   columns[c], cols[c].kind != REPORT_TEXT,
			   c + 1 == n_cols);
	}
	fputc('\n', out);
	for (r = 0; r < g->n_rows; r++) {
		for (c = 0; c < n_cols; c++) {
			fputs(c ? "  " : "", out);
			put_padded(out, g->cells[r * n_cols + c],
				   g->widths[r * n_cols + c], columns[c],
				   cols[c].kind != REPORT_TEXT,
				   c + 1 == n_cols);
		}
		fputc('\n', out);
	}
}

/* ---- CSV ----------------------------------------------------------------- */

/* A field as RFC 4180 has it: in double quotes (doubled inside) when it
 * holds a quote, a comma, CR or LF, or starts or ends with a space. */
static void
csv_field(FILE *out, const unsigned char *text, size_t len)
{
	bool quote = len > 0 && (text[0] == ' ' || text[len - 1] == ' ');
	size_t at = 0, i;
	uint32_t c;

	for (i = 0; i < len && !quote; i++)
		quote = text[i] == '"' || text[i] == ',' || text[i] == '\r' ||
			text[i] == '\n';
	if (quote)
		fputc('"', out);
	while (at < len) {
		at += utf8_mended(text + at, len - at, &c);
		if (c == '"')
			fputc('"', out);
		put_utf8(out, c);
	}
	if (quote)
		fputc('"', out);
}

static void
csv_row(FILE *out, const struct report_cell *cells, size_t n_cols)
{
	size_t c;

	for (c = 0; c < n_cols; c++) {
		if (c)
			fputc(',', out);
		if (cells[c].text != NULL)	/* none: an empty field */
			csv_field(out, (const unsigned char *)cells[c].text,
				  cells[c].len);
	}
	fputs("\r\n", out);
}

/* ---- JSON ---------------------------------------------------------------- */

static void
json_string(FILE *out, const unsigned char *text, size_t len)
{
	size_t at = 0;
	uint32_t c;

	fputc('"', out);
	while (at < len) {
		at += utf8_mended(text + at, len - at, &c);
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", (char)c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\r')
			fputs("\\r", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", (unsigned)c);
		else
			put_utf8(out, c);
	}
	fputc('"', out);
}

static void
json_row(FILE *out, const struct report_column *cols,
	 const struct report_cell *cells, size_t n_cols, bool first)
{
	size_t c;

	fputs(first ? "\n  {" : ",\n  {", out);
	for (c = 0; c < n_cols; c++) {
		fprintf(out, "%s\"%s\": ", c ? ", " : "", cols[c].key);
		if (cells[c].text == NULL)
			fputs("null", out);
		else if (cols[c].kind == REPORT_TEXT)
			json_string(out, (const unsigned char *)cells[c].text,
				    cells[c].len);
		else
			fwrite(cells[c].text, 1, cells[c].len, out);
	}
	fputc('}', out);
}

/* ---- the entry points ---------------------------------------------------- */

struct report {
	FILE *out;
	const struct report_column *cols;
	size_t n_cols;
	enum report_format format;
	bool begun;		/* the CSV header or the JSON '[' written */
	size_t n_rows;
	struct grid grid;	/* a table's rows */
	int write_errno;	/* of the first failed write, or 0 */
};

struct report *
report_new(FILE *out, const struct report_column *cols, size_t n_cols,
	   enum report_format format)
{
	struct report *rep = calloc(1, sizeof(*rep));

	if (rep == NULL)
		return NULL;
	rep->out = out;
	rep->cols = cols;
	rep->n_cols = n_cols;
	rep->format = format;
	return rep;
}

/* What comes before the rows: the CSV header, the JSON '['. */
static void
begin(struct report *rep)
{
	size_t c;

	if (rep->begun)
		return;
	rep->begun = true;
	if (rep->format == REPORT_CSV) {
		for (c = 0; c < rep->n_cols; c++)
			fprintf(rep->out, "%s%s", c ? "," : "",
				rep->cols[c].key);
		fputs("\r\n", rep->out);
	} else if (rep->format == REPORT_JSON) {
		fputc('[', rep->out);
	}
}

/* Keep the errno of the first write that failed: what the reports do
 * between writes may change errno. */
static void
check_output(struct report *rep)
{
	if (rep->write_errno == 0 && ferror(rep->out))
		rep->write_errno = errno != 0 ? errno : EIO;
}

int
report_row(struct report *rep, const struct report_cell *cells)
{
	begin(rep);
	switch (rep->format) {
	case REPORT_CSV:
		csv_row(rep->out, cells, rep->n_cols);
		break;
	case REPORT_JSON:
		json_row(rep->out, rep->cols, cells, rep->n_cols,
			 rep->n_rows == 0);
		break;
	case REPORT_TABLE:
	default:
		if (grid_add_row(&rep->grid, cells, rep->n_cols) < 0)
			return -ENOMEM;
		break;
	}
	rep->n_rows++;
	check_output(rep);
	return 0;
}

int
report_finish(struct report *rep, bool complete, const char *empty)
{
	size_t *columns = NULL;
	int rc = 0;

	if (complete)
		begin(rep);
	if (rep->format == REPORT_JSON && rep->begun)
		fputs(rep->n_rows ? "\n]\n" : "]\n", rep->out);
	if (rep->format == REPORT_TABLE && complete) {
		columns = calloc(rep->n_cols, sizeof(*columns));
		if (columns == NULL)
			rc = -ENOMEM;
		else if (rep->grid.n_rows == 0)
			fprintf(rep->out, "%s\n", empty);
		else
			print_table(rep->out, &rep->grid, rep->cols,
				    rep->n_cols, columns);
	}
	errno = 0;
	if (fflush(rep->out) != 0 || ferror(rep->out)) {
		check_output(rep);
		errno = rep->write_errno != 0 ? rep->write_errno : EIO;
		rc = -EPIPE;
	}
	free(columns);
	grid_finish(&rep->grid, rep->n_cols);
	free(rep);
	return rc;
}
