/*
 * Building delivery bodies as the stock ASP.NET WebHooks sender does, and
 * the JSON handling behind it: Newtonsoft-style formatting and setting a
 * member by path. Used by `whr send`, `whr probe` and `whr verify`.
 */
#ifndef WHR_CMD_DELIVERY_H
#define WHR_CMD_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

enum json_style {
	/* Newtonsoft.Json Formatting.Indented on Windows: two spaces per
	 * level, `"name": value`, CRLF, raw UTF-8, `{}` and `[]` when
	 * empty, no trailing line end. */
	JSON_STYLE_INDENTED_CRLF,
	JSON_STYLE_INDENTED_LF,		/* the same on Linux (Mono) */
	JSON_STYLE_COMPACT,		/* one line, no spaces */
};

/* Re-serialise JSON text (any one value) in @p style. Returns a malloc'd
 * NUL-terminated string (its length in *out_len when not NULL), or NULL
 * with a one-line reason in @p err (invalid JSON with its byte offset,
 * out of memory; @p err may be NULL). Numbers keep their text; strings
 * are re-escaped as Newtonsoft does (json-format.c lists the escapes).
 * Refused: a BOM, comments, anything after the value, invalid UTF-8,
 * escapes of unpaired UTF-16 surrogates, nesting deeper than 512. */
char *json_reformat(const char *json, size_t len, enum json_style style,
		    size_t *out_len, char *err, size_t err_size);

/* In the JSON object @p json, set the member at @p path (event.h syntax:
 * "Course.Title", "Users[0].Email", "Users[1]") to @p value_json (any
 * JSON value: a string needs its quotes), creating missing object members
 * on the way (array elements must exist); a name given twice sets the
 * last one, which is the one the receiver reads. Returns malloc'd compact
 * JSON or NULL with a reason that starts with the path. */
char *json_set_path(const char *json, const char *path,
		    const char *value_json, char *err, size_t err_size);

/* Quote @p text as a JSON string with Newtonsoft's escapes (malloc'd),
 * or NULL when out of memory or when @p text is not UTF-8. */
char *json_quote(const char *text);

struct delivery {
	const char *id;			/* plain text, not JSON; NULL: 32
					 * random lowercase hex */
	int64_t attempt;		/* 1 for a first attempt */
	const char *properties;		/* a JSON object; NULL: {} */
	const char *const *notifications; /* JSON objects (in any style:
					   * they are re-serialised), each
					   * with its Action; not checked */
	size_t n_notifications;
	enum json_style style;
};

/* The body the sender would send: members Id, Attempt, Properties,
 * Notifications, in that order, in @p d->style. Returns malloc'd text
 * (NUL-terminated, length in *len when not NULL), or NULL with a reason
 * in @p err ("notification 2 is not a JSON object", ...). */
char *delivery_body(const struct delivery *d, size_t *len, char *err,
		    size_t err_size);

/* 32 random lowercase hex characters and a NUL; 0 or -EIO. */
int delivery_random_id(char id[33]);

#endif /* WHR_CMD_DELIVERY_H */
