/*
 * whr verify: the bodies a delivery may have been when it was signed,
 * before something in transit changed it into the body given. Each is a
 * base (the body itself, its line ends changed back, or its JSON
 * re-serialised as the sender writes it) with a UTF-8 byte order mark and
 * a final line end added, removed or kept; simplest changes first.
 */
#include "verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

#define BOM "\xef\xbb\xbf"

enum base {
	BASE_AS_GIVEN,
	BASE_TO_CRLF,		/* bare LF -> CRLF */
	BASE_TO_LF,		/* CRLF -> LF */
	BASE_COMPACT,
	BASE_INDENTED_CRLF,
	BASE_INDENTED_LF,
	N_BASES
};

enum bom_op { BOM_KEEP, BOM_REMOVE, BOM_ADD, N_BOM_OPS };
enum tail_op { TAIL_KEEP, TAIL_REMOVE, TAIL_ADD_CRLF, TAIL_ADD_LF, N_TAIL_OPS };

/* What happened in transit when the signed body was the base. */
static const char *const base_change[N_BASES] = {
	[BASE_TO_CRLF] = "its CRLF line ends were turned into LF",
	[BASE_TO_LF] = "its LF line ends were turned into CRLF",
	[BASE_COMPACT] = "its JSON was re-serialised (it was signed compact, "
			 "on one line)",
	[BASE_INDENTED_CRLF] = "its JSON was re-serialised (it was signed "
			       "indented with CRLF line ends, as the sender "
			       "writes it on Windows)",
	[BASE_INDENTED_LF] = "its JSON was re-serialised (it was signed "
			     "indented with LF line ends, as the sender writes "
			     "it on Linux)",
};

struct body_variants {
	const char *body;
	size_t len;
	char *base[N_BASES];		/* NULL: not tried */
	size_t base_len[N_BASES];
	size_t next;			/* base * ops + bom * tails + tail */
	char *buf;			/* the current variant */
	char change[400];
};

static bool
has_bom(const char *s, size_t n)
{
	return n >= 3 && memcmp(s, BOM, 3) == 0;
}

static bool
ends_with_newline(const char *s, size_t n)
{
	return n > 0 && s[n - 1] == '\n';
}

/* @p s with every bare LF turned into CRLF (@p to_crlf) or every CRLF
 * into LF; NULL when nothing would change or out of memory (*error). */
static char *
convert_line_ends(const char *s, size_t n, bool to_crlf, size_t *out_len,
		  int *error)
{
	char *out = malloc(2 * n + 1);
	size_t o = 0, i;
	bool changed = false;

	if (out == NULL) {
		*error = -ENOMEM;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (to_crlf && s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) {
			out[o++] = '\r';
			changed = true;
		} else if (!to_crlf && s[i] == '\r' && i + 1 < n &&
			   s[i + 1] == '\n') {
			changed = true;
			continue;
		}
		out[o++] = s[i];
	}
	if (!changed) {
		free(out);
		return NULL;
	}
	*out_len = o;
	return out;
}

struct body_variants *
body_variants_new(const char *body, size_t len)
{
	static const enum json_style styles[] = {
		JSON_STYLE_COMPACT, JSON_STYLE_INDENTED_CRLF,
		JSON_STYLE_INDENTED_LF,
	};
	struct body_variants *v = calloc(1, sizeof(*v));
	const char *json = body;
	size_t json_len = len;
	int error = 0;
	size_t i, k;

	if (v == NULL)
		return NULL;
	v->body = body;
	v->len = len;
	v->base[BASE_AS_GIVEN] = (char *)body;	/* not owned */
	v->base_len[BASE_AS_GIVEN] = len;
	v->base[BASE_TO_CRLF] = convert_line_ends(body, len, true,
						  &v->base_len[BASE_TO_CRLF],
						  &error);
	v->base[BASE_TO_LF] = convert_line_ends(body, len, false,
						&v->base_len[BASE_TO_LF],
						&error);
	if (error != 0)
		goto err;
	/* The sender never writes a BOM: re-serialise what follows it. */
	if (has_bom(json, json_len)) {
		json += 3;
		json_len -= 3;
	}
	for (i = 0; i < 3; i++) {
		enum base b = (enum base)(BASE_COMPACT + i);
		char *text = json_reformat(json, json_len, styles[i],
					   &v->base_len[b], NULL, 0);

		if (text == NULL)
			continue;	/* not JSON (or no memory): skip */
		/* Only a text no other base has. */
		for (k = 0; k < (size_t)b; k++) {
			if (v->base[k] != NULL &&
			    v->base_len[k] == v->base_len[b] &&
			    memcmp(v->base[k], text, v->base_len[b]) == 0)
				break;
		}
		if (k < (size_t)b)
			free(text);
		else
			v->base[b] = text;
	}
	return v;

err:
	body_variants_free(v);
	return NULL;
}

void
body_variants_free(struct body_variants *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 1; i < N_BASES; i++)
		free(v->base[i]);
	free(v->buf);
	free(v);
}

static void
describe(struct body_variants *v, enum base b, bool bom_before,
	 bool bom_after, bool nl_before, bool nl_after)
{
	const char *parts[3];
	size_t n = 0, i, o = 0;

	if (base_change[b] != NULL)
		parts[n++] = base_change[b];
	if (bom_before && !bom_after)
		parts[n++] = "a UTF-8 byte order mark was removed";
	else if (!bom_before && bom_after)
		parts[n++] = "a UTF-8 byte order mark was added";
	if (nl_before && !nl_after)
		parts[n++] = "its final line end was removed";
	else if (!nl_before && nl_after)
		parts[n++] = "a line end was added at its end";
	v->change[0] = '\0';
	for (i = 0; i < n; i++) {
		o += (size_t)snprintf(v->change + o, sizeof(v->change) - o,
				      "%s%s", i == 0 ? "" :
				      i + 1 == n ? " and " : ", ", parts[i]);
		if (o >= sizeof(v->change))
			break;
	}
}

bool
body_variants_next(struct body_variants *v, const char **data, size_t *len,
		   const char **change, int *error)
{
	*error = 0;
	while (v->next < (size_t)N_BASES * N_BOM_OPS * N_TAIL_OPS) {
		size_t index = v->next++;
		enum base b = (enum base)(index / (N_BOM_OPS * N_TAIL_OPS));
		enum bom_op bom = (enum bom_op)(index / N_TAIL_OPS % N_BOM_OPS);
		enum tail_op tail = (enum tail_op)(index % N_TAIL_OPS);
		const char *s = v->base[b];
		size_t n = v->base_len[b];
		bool bom_in = s != NULL && has_bom(s, n);
		bool nl_in = s != NULL && ends_with_newline(s, n);
		size_t start = 0, end = n, o = 0;
		char *grown;

		if (s == NULL || (b == BASE_AS_GIVEN && bom == BOM_KEEP &&
				  tail == TAIL_KEEP))
			continue;
		if ((bom == BOM_REMOVE && !bom_in) || (bom == BOM_ADD && bom_in))
			continue;
		if ((tail == TAIL_REMOVE && !nl_in) ||
		    (tail >= TAIL_ADD_CRLF && nl_in))
			continue;
		if (bom == BOM_REMOVE)
			start = 3;
		if (tail == TAIL_REMOVE)
			end -= end >= 2 && s[end - 2] == '\r' ? 2 : 1;
		if (end < start)
			continue;
		grown = realloc(v->buf, n + 6);
		if (grown == NULL) {
			*error = -ENOMEM;
			return false;
		}
		v->buf = grown;
		if (bom == BOM_ADD) {
			memcpy(v->buf, BOM, 3);
			o = 3;
		}
		memcpy(v->buf + o, s + start, end - start);
		o += end - start;
		if (tail == TAIL_ADD_CRLF)
			v->buf[o++] = '\r';
		if (tail >= TAIL_ADD_CRLF)
			v->buf[o++] = '\n';
		/* described from the body given to the one signed */
		describe(v, b, has_bom(v->buf, o), has_bom(v->body, v->len),
			 ends_with_newline(v->buf, o),
			 ends_with_newline(v->body, v->len));
		*data = v->buf;
		*len = o;
		*change = v->change;
		return true;
	}
	return false;
}
