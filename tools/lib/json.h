/*
 * JSON for the tools, written exactly as Newtonsoft.Json writes it (the
 * ASP.NET WebHooks sender's serialiser): re-serialising JSON text in the
 * sender's styles, setting a member by path, quoting a string; used by
 * `whr send`, `whr probe` and `whr verify`.
 *
 * Underneath, a small JSON tree (json-tree.c), parsed with yajl's
 * streaming parser and edited by path, and its writer (json-format.c).
 * Unlike yajl_tree, a node keeps string lengths (a string may hold U+0000)
 * and the text of every number as it was written.
 */
#ifndef WHR_TOOLS_JSON_H
#define WHR_TOOLS_JSON_H

#include <stdbool.h>
#include <stddef.h>

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

/* ---- the tree ------------------------------------------------------- */

/* Deepest nesting accepted from a parser (the receiver accepts 64). */
#define JSON_MAX_DEPTH 512

enum json_kind {
	JSON_OBJECT,
	JSON_ARRAY,
	JSON_STRING,	/* text: the decoded UTF-8 bytes */
	JSON_LITERAL,	/* text: a number, true, false or null as written */
};

struct json_node {
	enum json_kind kind;
	char *name;			/* its member name inside an object,
					 * else NULL */
	size_t name_len;
	char *text;			/* JSON_STRING and JSON_LITERAL */
	size_t len;
	struct json_node **kids;	/* members or elements, in order */
	size_t n_kids;
	size_t cap_kids;
};

/* Format a reason into @p err (when @p err is not NULL); returns NULL so
 * that callers can `return json_error(...)`. */
void *json_error(char *err, size_t err_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parse one JSON value (no BOM, no comments, nothing after it). Strings
 * must be valid UTF-8 and escapes of lone UTF-16 surrogates are refused
 * (yajl would decode them wrongly). Returns the tree, to be freed with
 * json_tree_free(), or NULL with a reason that gives the byte offset. */
struct json_node *json_tree_parse(const char *json, size_t len, char *err,
				  size_t err_size);

/* A new node of @p kind; @p text (@p len bytes, may be NULL for
 * containers) is copied. NULL when out of memory. */
struct json_node *json_tree_new(enum json_kind kind, const char *text,
				size_t len);

/* Free @p node and everything under it; NULL is a no-op. */
void json_tree_free(struct json_node *node);

/* Append @p value to the container @p parent, as member @p name (copied;
 * NULL inside an array). Takes @p value, also on failure (-ENOMEM);
 * a NULL @p value (a failed json_tree_new()) is -ENOMEM. */
int json_tree_append(struct json_node *parent, const char *name,
		     size_t name_len, struct json_node *value);

/* Set the member at @p path (event.h syntax) of the object @p root to
 * @p value, creating missing object members on the way. Takes @p value,
 * also on failure. 0, or -EINVAL / -ENOENT / -ENOMEM with a reason that
 * names the path. */
int json_tree_set_path(struct json_node *root, const char *path,
		       struct json_node *value, char *err, size_t err_size);

/* Write @p node in @p style (json-format.c). Returns malloc'd text (NUL
 * terminated, length in *out_len when not NULL) or NULL with a reason. */
char *json_tree_write(const struct json_node *node, enum json_style style,
		      size_t *out_len, char *err, size_t err_size);

#endif /* WHR_TOOLS_JSON_H */
