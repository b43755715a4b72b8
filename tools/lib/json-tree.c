/*
 * The tools' JSON tree: parsing with yajl's streaming parser, building,
 * and setting a member by path ("Course.Title", "Users[0].Email").
 */
#include "lib/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

void *
json_error(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_size > 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_size, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

struct json_node *
json_tree_new(enum json_kind kind, const char *text, size_t len)
{
	struct json_node *node = calloc(1, sizeof(*node));

	if (node == NULL)
		return NULL;
	node->kind = kind;
	if (text != NULL) {
		node->text = malloc(len + 1);
		if (node->text == NULL) {
			free(node);
			return NULL;
		}
		memcpy(node->text, text, len);
		node->text[len] = '\0';
		node->len = len;
	}
	return node;
}

void
json_tree_free(struct json_node *node)
{
	size_t i;

	if (node == NULL)
		return;
	for (i = 0; i < node->n_kids; i++)
		json_tree_free(node->kids[i]);
	free(node->kids);
	free(node->name);
	free(node->text);
	free(node);
}

int
json_tree_append(struct json_node *parent, const char *name,
		 size_t name_len, struct json_node *value)
{
	if (value == NULL)
		return -ENOMEM;
	if (parent->n_kids == parent->cap_kids) {
		size_t cap = parent->cap_kids ? 2 * parent->cap_kids : 8;
		struct json_node **kids = realloc(parent->kids,
						  cap * sizeof(*kids));

		if (kids == NULL)
			goto err_nomem;
		parent->kids = kids;
		parent->cap_kids = cap;
	}
	if (name != NULL) {
		free(value->name);
		value->name = malloc(name_len + 1);
		if (value->name == NULL)
			goto err_nomem;
		memcpy(value->name, name, name_len);
		value->name[name_len] = '\0';
		value->name_len = name_len;
	}
	parent->kids[parent->n_kids++] = value;
	return 0;

err_nomem:
	json_tree_free(value);
	return -ENOMEM;
}

/* ---- parsing ----------------------------------------------------------- */

struct builder {
	struct json_node *root;
	struct json_node *stack[JSON_MAX_DEPTH];	/* open containers */
	size_t depth;
	char *key;			/* the pending member name */
	size_t key_len;
	int error;			/* -ENOMEM or -E2BIG once a callback
					 * stopped the parser */
};

/* Attach @p node where the parser is: as the root, an array element, or
 * the member named by the pending key. Takes @p node. */
static int
attach(struct builder *b, struct json_node *node)
{
	struct json_node *parent;
	int rc;

	if (node == NULL) {
		b->error = -ENOMEM;
		return 0;
	}
	if (b->depth == 0) {
		b->root = node;
		return 1;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == JSON_OBJECT) {
		rc = json_tree_append(parent, b->key, b->key_len, node);
		free(b->key);
		b->key = NULL;
	} else {
		rc = json_tree_append(parent, NULL, 0, node);
	}
	if (rc < 0) {
		b->error = rc;
		return 0;
	}
	return 1;
}

static int
open_container(struct builder *b, enum json_kind kind)
{
	struct json_node *node;

	if (b->depth == JSON_MAX_DEPTH) {
		b->error = -E2BIG;
		return 0;
	}
	node = json_tree_new(kind, NULL, 0);
	if (!attach(b, node))
		return 0;
	b->stack[b->depth++] = node;
	return 1;
}

static int
cb_literal(void *ctx, const char *text, size_t len)
{
	return attach(ctx, json_tree_new(JSON_LITERAL, text, len));
}

static int
cb_null(void *ctx)
{
	return cb_literal(ctx, "null", 4);
}

static int
cb_boolean(void *ctx, int value)
{
	return value ? cb_literal(ctx, "true", 4) : cb_literal(ctx, "false", 5);
}

static int
cb_string(void *ctx, const unsigned char *text, size_t len)
{
	return attach(ctx, json_tree_new(JSON_STRING, (const char *)text,
					 len));
}

static int
cb_map_key(void *ctx, const unsigned char *text, size_t len)
{
	struct builder *b = ctx;

	free(b->key);
	b->key = malloc(len + 1);
	if (b->key == NULL) {
		b->error = -ENOMEM;
		return 0;
	}
	memcpy(b->key, text, len);
	b->key[len] = '\0';
	b->key_len = len;
	return 1;
}

static int
cb_start_map(void *ctx)
{
	return open_container(ctx, JSON_OBJECT);
}

static int
cb_start_array(void *ctx)
{
	return open_container(ctx, JSON_ARRAY);
}

static int
cb_end(void *ctx)
{
	struct builder *b = ctx;

	b->depth--;
	return 1;
}

static const yajl_callbacks callbacks = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_boolean,
	.yajl_number = cb_literal,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start_map,
	.yajl_map_key = cb_map_key,
	.yajl_end_map = cb_end,
	.yajl_start_array = cb_start_array,
	.yajl_end_array = cb_end,
};

static int
hex4(const char *s, size_t left, unsigned *value)
{
	size_t i;

	*value = 0;
	if (left < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		char c = s[i];

		*value <<= 4;
		if (c >= '0' && c <= '9')
			*value |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*value |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*value |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* yajl 2.1 decodes "\ud800" alone as "?" and "\ud800\u0041" as a wrong
 * code point; Newtonsoft would keep the lone surrogate and its UTF-8
 * encoder would then write U+FFFD. Neither can be reproduced through
 * yajl, so such escapes are refused. Returns the offset of the first
 * one, or -1. */
static long
lone_surrogate_escape(const char *json, size_t len)
{
	bool in_string = false;
	size_t i = 0;
	unsigned u, low;

	while (i < len) {
		char c = json[i];

		if (!in_string) {
			in_string = c == '"';
			i++;
			continue;
		}
		if (c == '"') {
			in_string = false;
			i++;
			continue;
		}
		if (c != '\\' || i + 1 >= len) {
			i++;
			continue;
		}
		if (json[i + 1] != 'u' || hex4(json + i + 2, len - i - 2, &u)) {
			i += 2;
			continue;
		}
		if (u >= 0xdc00 && u <= 0xdfff)
			return (long)i;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (i + 12 > len || json[i + 6] != '\\' ||
			    json[i + 7] != 'u' ||
			    hex4(json + i + 8, len - i - 8, &low) ||
			    low < 0xdc00 || low > 0xdfff)
				return (long)i;
			i += 12;
			continue;
		}
		i += 6;
	}
	return -1;
}

struct json_node *
json_tree_parse(const char *json, size_t len, char *err, size_t err_size)
{
	struct builder b = { 0 };
	yajl_handle h;
	yajl_status status;
	long bad;

	bad = lone_surrogate_escape(json, len);
	if (bad >= 0)
		return json_error(err, err_size,
				  "invalid JSON at byte %ld: an unpaired UTF-16 "
				  "surrogate escape", bad);
	h = yajl_alloc(&callbacks, NULL, &b);
	if (h == NULL)
		return json_error(err, err_size, "out of memory");
	status = yajl_parse(h, (const unsigned char *)json, len);
	if (status == yajl_status_ok)
		status = yajl_complete_parse(h);
	if (status == yajl_status_client_canceled) {
		if (b.error == -E2BIG)
			json_error(err, err_size, "invalid JSON: nested deeper "
				   "than %d levels", JSON_MAX_DEPTH);
		else
			json_error(err, err_size, "out of memory");
		goto err_free;
	}
	if (status != yajl_status_ok) {
		unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
		const char *text = msg != NULL ? (const char *)msg : "error";
		size_t n = strcspn(text, "\n");

		json_error(err, err_size, "invalid JSON near byte %zu: %.*s",
			   yajl_get_bytes_consumed(h), (int)n, text);
		if (msg != NULL)
			yajl_free_error(h, msg);
		goto err_free;
	}
	yajl_free(h);
	free(b.key);
	return b.root;

err_free:
	yajl_free(h);
	free(b.key);
	json_tree_free(b.root);
	return NULL;
}

/* ---- setting by path ---------------------------------------------------- */

static struct json_node *
last_member(const struct json_node *object, const char *name, size_t len)
{
	size_t i;

	/* A name given twice: the last one counts, as in the receiver. */
	for (i = object->n_kids; i-- > 0;) {
		const struct json_node *kid = object->kids[i];

		if (kid->name_len == len && memcmp(kid->name, name, len) == 0)
			return object->kids[i];
	}
	return NULL;
}

/* Put @p value in @p parent's slot @p slot, keeping the member's name. */
static void
replace_kid(struct json_node *parent, size_t slot, struct json_node *value)
{
	struct json_node *old = parent->kids[slot];

	free(value->name);
	value->name = old->name;
	value->name_len = old->name_len;
	old->name = NULL;
	json_tree_free(old);
	parent->kids[slot] = value;
}

static size_t
slot_of(const struct json_node *parent, const struct json_node *kid)
{
	size_t i;

	for (i = 0; i < parent->n_kids; i++) {
		if (parent->kids[i] == kid)
			break;
	}
	return i;
}

/* The syntax of event.h: names separated by '.', "[n]" after a name or
 * another index. */
static bool
path_valid(const char *path)
{
	const char *p = path;

	if (*p == '\0' || *p == '.' || *p == '[')
		return false;
	while (*p != '\0') {
		if (*p == '[') {
			p++;
			if (*p < '0' || *p > '9')
				return false;
			while (*p >= '0' && *p <= '9')
				p++;
			if (*p++ != ']')
				return false;
			if (*p == '.')
				p++;
			else if (*p != '\0' && *p != '[')
				return false;
			else
				continue;
			if (*p == '\0' || *p == '.' || *p == '[')
				return false;
		} else {
			size_t n = strcspn(p, ".[");

			if (n == 0)
				return false;
			p += n;
			if (*p == '.') {
				p++;
				if (*p == '\0' || *p == '.' || *p == '[')
					return false;
			}
		}
	}
	return true;
}

int
json_tree_set_path(struct json_node *root, const char *path,
		   struct json_node *value, char *err, size_t err_size)
{
	struct json_node *cur = root;
	const char *p = path;
	int rc = -EINVAL;

	if (!path_valid(path)) {
		json_error(err, err_size, "malformed path '%s' (expected e.g. "
			   "Course.Title or Users[0].Email)", path);
		goto err;
	}
	if (root->kind != JSON_OBJECT) {
		json_error(err, err_size, "%s: the JSON is not an object", path);
		goto err;
	}
	while (*p != '\0') {
		struct json_node *next;
		const char *step = p;
		bool last;

		if (*p == '[') {
			char *end;
			unsigned long long index;

			errno = 0;
			index = strtoull(p + 1, &end, 10);
			p = end + 1;
			if (*p == '.')
				p++;
			last = *p == '\0';
			if (cur->kind != JSON_ARRAY) {
				json_error(err, err_size, "%s: %.*s is not an "
					   "array", path, (int)(step - path),
					   path);
				goto err;
			}
			if (errno != 0 || index >= cur->n_kids) {
				json_error(err, err_size, "%s: %.*s has %zu "
					   "element%s (array elements must "
					   "exist)", path, (int)(step - path),
					   path, cur->n_kids,
					   cur->n_kids == 1 ? "" : "s");
				rc = -ENOENT;
				goto err;
			}
			if (last) {
				replace_kid(cur, (size_t)index, value);
				return 0;
			}
			cur = cur->kids[index];
			continue;
		}
		p += strcspn(p, ".[");
		last = *p == '\0';
		if (cur->kind != JSON_OBJECT) {
			json_error(err, err_size, "%s: %.*s is not an object",
				   path, (int)(step - path - 1), path);
			goto err;
		}
		next = last_member(cur, step, (size_t)(p - step));
		if (next != NULL && last) {
			replace_kid(cur, slot_of(cur, next), value);
			return 0;
		}
		if (next == NULL && last) {
			rc = json_tree_append(cur, step, (size_t)(p - step),
					      value);
			if (rc < 0)
				json_error(err, err_size, "out of memory");
			return rc;
		}
		if (next == NULL && *p == '[') {
			json_error(err, err_size, "%s: %.*s does not exist "
				   "(array elements must exist)", path,
				   (int)(p - path), path);
			rc = -ENOENT;
			goto err;
		}
		if (next == NULL) {
			next = json_tree_new(JSON_OBJECT, NULL, 0);
			if (next == NULL ||
			    json_tree_append(cur, step, (size_t)(p - step),
					     next) < 0) {
				json_error(err, err_size, "out of memory");
				rc = -ENOMEM;
				goto err;
			}
		}
		if (*p == '.')
			p++;
		cur = next;
	}
	/* not reached: path_valid() leaves a last step */
	json_error(err, err_size, "malformed path '%s'", path);

err:
	json_tree_free(value);
	return rc;
}
