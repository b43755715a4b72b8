/*
 * JSON text exactly as Newtonsoft.Json writes it, which is how the
 * ASP.NET WebHooks sender serialises a delivery (JObject.ToString(), i.e.
 * Formatting.Indented with the default JsonTextWriter settings).
 *
 * Layout (Newtonsoft.Json JsonTextWriter.WriteIndent/WriteIndentSpace and
 * JsonWriter.AutoComplete/AutoCompleteClose): every member and every array
 * element starts on a new line indented by two spaces per level (the line
 * end is Environment.NewLine: CRLF on Windows, LF on Mono/Linux); a member
 * is `"name": value`; a container is closed on its own line at its
 * parent's indent, except an empty one, which is `{}` or `[]`; nothing
 * follows the last closing bracket. Formatting.None (our compact style)
 * is the same without line ends, indents or the space after ':'.
 *
 * Strings (names too) are escaped as Newtonsoft's default
 * StringEscapeHandling with '"' as the quote, read from
 * Src/Newtonsoft.Json/Utilities/JavaScriptUtils.cs (JamesNK/Newtonsoft.Json:
 * the DoubleQuoteCharEscapeFlags table, WriteEscapedJavaScriptString,
 * StringUtils.ToCharAsUnicode and MathUtils.IntToHex) and its test
 * JsonConvertTest.EscapeJavaScriptString_UnicodeLinefeeds:
 *   "  -> \"          \  -> \\
 *   U+0008 -> \b   U+0009 -> \t   U+000A -> \n   U+000C -> \f   U+000D -> \r
 *   every other U+0000..U+001F -> \u00XX, lowercase hex (\u001f)
 *   U+0085, U+2028, U+2029 -> \u0085, \u2028, \u2029
 *   everything else as is: '/', '\'', DEL (U+007F), '<', '>', '&' and all
 *   other non-ASCII characters, written as raw UTF-8.
 * Numbers keep the text they had (Newtonsoft would print a .NET number;
 * the sender's own numbers are integers, which print the same).
 */
#include "lib/json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

struct out {
	char *buf;
	size_t len;
	size_t cap;
	int error;		/* -ENOMEM or -EILSEQ, sticky */
	enum json_style style;
};

static void
put(struct out *o, const void *data, size_t n)
{
	if (o->error != 0)
		return;
	if (o->cap - o->len <= n) {
		size_t cap = o->cap ? o->cap : 256;
		char *grown;

		while (cap - o->len <= n) {
			if (cap > SIZE_MAX / 2) {
				o->error = -ENOMEM;
				return;
			}
			cap *= 2;
		}
		grown = realloc(o->buf, cap);
		if (grown == NULL) {
			o->error = -ENOMEM;
			return;
		}
		o->buf = grown;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, data, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* A line end and the indent of @p depth, in the indented styles. */
static void
newline(struct out *o, size_t depth)
{
	static const char spaces[] = "                ";
	size_t n = 2 * depth;

	if (o->style == JSON_STYLE_COMPACT)
		return;
	put_str(o, o->style == JSON_STYLE_INDENTED_CRLF ? "\r\n" : "\n");
	while (n > 0) {
		size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

		put(o, spaces, k);
		n -= k;
	}
}

/* @p s as a JSON string with Newtonsoft's escapes (see the top). */
static void
put_string(struct out *o, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t start = 0;
	size_t i = 0;

	put(o, "\"", 1);
	while (i < len) {
		const char *esc = NULL;
		char ubuf[8];
		size_t n = 1;

		switch (s[i]) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\f': esc = "\\f"; break;
		case '\r': esc = "\\r"; break;
		default:
			if (s[i] < 0x20) {
				snprintf(ubuf, sizeof(ubuf), "\\u%04x", s[i]);
				esc = ubuf;
			} else if (s[i] >= 0x80) {
				n = utf8_next(s + i, len - i, NULL);
				if (n == 0) {
					o->error = o->error ? o->error : -EILSEQ;
					return;
				}
				if (n == 2 && s[i] == 0xc2 && s[i + 1] == 0x85)
					esc = "\\u0085";
				else if (n == 3 && s[i] == 0xe2 &&
					 s[i + 1] == 0x80 && s[i + 2] == 0xa8)
					esc = "\\u2028";
				else if (n == 3 && s[i] == 0xe2 &&
					 s[i + 1] == 0x80 && s[i + 2] == 0xa9)
					esc = "\\u2029";
			}
			break;
		}
		if (esc != NULL) {
			put(o, s + start, i - start);
			put_str(o, esc);
			start = i + n;
		}
		i += n;
	}
	put(o, s + start, i - start);
	put(o, "\"", 1);
}

static void
put_node(struct out *o, const struct json_node *node, size_t depth)
{
	size_t i;

	switch (node->kind) {
	case JSON_STRING:
		put_string(o, node->text, node->len);
		return;
	case JSON_LITERAL:
		put(o, node->text, node->len);
		return;
	case JSON_OBJECT:
	case JSON_ARRAY:
		break;
	}
	put(o, node->kind == JSON_OBJECT ? "{" : "[", 1);
	for (i = 0; i < node->n_kids && o->error == 0; i++) {
		const struct json_node *kid = node->kids[i];

		if (i > 0)
			put(o, ",", 1);
		newline(o, depth + 1);
		if (node->kind == JSON_OBJECT) {
			put_string(o, kid->name, kid->name_len);
			put_str(o, o->style == JSON_STYLE_COMPACT ? ":" : ": ");
		}
		put_node(o, kid, depth + 1);
	}
	if (node->n_kids > 0)
		newline(o, depth);
	put(o, node->kind == JSON_OBJECT ? "}" : "]", 1);
}

char *
json_tree_write(const struct json_node *node, enum json_style style,
		size_t *out_len, char *err, size_t err_size)
{
	struct out o = { .style = style };

	put(&o, "", 0);
	put_node(&o, node, 0);
	if (o.error != 0) {
		free(o.buf);
		return json_error(err, err_size, "%s",
				  o.error == -EILSEQ ?
				  "a string is not valid UTF-8" :
				  "out of memory");
	}
	if (out_len != NULL)
		*out_len = o.len;
	return o.buf;
}

char *
json_reformat(const char *json, size_t len, enum json_style style,
	      size_t *out_len, char *err, size_t err_size)
{
	struct json_node *root;
	char *text;

	root = json_tree_parse(json, len, err, err_size);
	if (root == NULL)
		return NULL;
	text = json_tree_write(root, style, out_len, err, err_size);
	json_tree_free(root);
	return text;
}

char *
json_quote(const char *text)
{
	struct out o = { .style = JSON_STYLE_COMPACT };

	put_string(&o, text, strlen(text));
	if (o.error != 0) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}

char *
json_set_path(const char *json, const char *path, const char *value_json,
	      char *err, size_t err_size)
{
	char why[200];
	struct json_node *root;
	struct json_node *value;
	char *text = NULL;

	root = json_tree_parse(json, strlen(json), why, sizeof(why));
	if (root == NULL)
		return json_error(err, err_size, "%s: %s", path, why);
	value = json_tree_parse(value_json, strlen(value_json), why,
				sizeof(why));
	if (value == NULL) {
		json_error(err, err_size, "%s: the value is not JSON (%s); "
			   "a string needs its quotes, e.g. '\"text\"'", path,
			   why);
		goto out;
	}
	if (json_tree_set_path(root, path, value, err, err_size) < 0)
		goto out;
	text = json_tree_write(root, JSON_STYLE_COMPACT, NULL, err, err_size);
out:
	json_tree_free(root);
	return text;
}
