/*
 * Body decoding with yajl's streaming parser: one pass, no tree. The
 * parser's byte offsets give each notification's exact JSON text, so
 * handlers later see it as the sender wrote it.
 */
#include "decode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "util.h"

enum top_key {
	TOP_OTHER,
	TOP_ID,
	TOP_ATTEMPT,
	TOP_PROPERTIES,
	TOP_NOTIFICATIONS,
};

/* The members of a notification that whr reads while decoding. */
enum member {
	MEMBER_OTHER,
	MEMBER_ACTION,
	MEMBER_COURSE,
	MEMBER_USERS,
};

struct decoder {
	yajl_handle yajl;
	struct envelope *env;
	size_t base;		/* offset of the parsed text in the body */
	size_t capacity;	/* of env->notifications */
	unsigned depth;		/* containers open before the next value */
	enum top_key top_key;
	bool in_properties;
	bool in_notifications;	/* inside the Notifications array */
	bool in_notification;	/* inside one of its objects */
	enum member member;	/* its member being read (depth 3) */
	/* The ordering keys: Course.Id and Users[*].Id. */
	bool in_course;		/* inside its Course object */
	bool in_users;		/* inside its Users array */
	bool in_user;		/* inside one of Users' objects */
	bool key_is_id;		/* the Course/User member being read */
	bool no_memory;
	size_t max_notifications;	/* 0: no limit */
	bool too_many;
	char *err;
	size_t err_size;
};

static int
fail(struct decoder *d, const char *fmt, ...) WHR_PRINTF(2, 3);

static int
fail(struct decoder *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, d->err_size, fmt, ap);
	va_end(ap);
	return 0;	/* tells yajl to stop */
}

static size_t
offset(const struct decoder *d)
{
	return d->base + yajl_get_bytes_consumed(d->yajl);
}

static struct notification *
current_notification(struct decoder *d)
{
	return &d->env->notifications[d->env->n_notifications - 1];
}

static void
drop_users(struct notification *n)
{
	size_t i;

	for (i = 0; i < n->n_users; i++)
		free(n->user_ids[i]);
	free(n->user_ids);
	n->user_ids = NULL;
	n->n_users = 0;
}

static void
drop_notifications(struct envelope *env)
{
	size_t i;

	for (i = 0; i < env->n_notifications; i++) {
		free(env->notifications[i].action);
		free(env->notifications[i].course_id);
		drop_users(&env->notifications[i]);
	}
	env->n_notifications = 0;
}

/* A copy in which U+0000 (allowed in JSON, fatal to a C string) becomes
 * U+FFFD: an Action "a1\u0000x" must not read as "a1", nor an Id
 * "a\u0000x" as "a". */
static char *
nul_safe_copy(const char *text, size_t len)
{
	size_t nuls = 0;
	size_t i, o = 0;
	char *copy;

	for (i = 0; i < len; i++)
		nuls += text[i] == '\0';
	if (nuls == 0)
		return xstrndup(text, len);
	copy = malloc(len + 2 * nuls + 1);
	if (copy == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (text[i] == '\0') {
			memcpy(copy + o, "\xef\xbf\xbd", 3);
			o += 3;
		} else {
			copy[o++] = text[i];
		}
	}
	copy[o] = '\0';
	return copy;
}

/* Replace the string at @p slot with a copy of @p text (NULL: none);
 * the last value of a member given twice counts. 0 (stop) when out of
 * memory. */
static int
set_text(struct decoder *d, char **slot, const char *text, size_t len)
{
	free(*slot);
	*slot = text != NULL ? nul_safe_copy(text, len) : NULL;
	if (text != NULL && *slot == NULL) {
		d->no_memory = true;
		return 0;
	}
	return 1;
}

/* A user object opens: room for its Id (NULL until read). */
static int
add_user(struct decoder *d)
{
	struct notification *n = current_notification(d);
	char **grown = realloc(n->user_ids, (n->n_users + 1) * sizeof(*grown));

	if (grown == NULL) {
		d->no_memory = true;
		return 0;
	}
	n->user_ids = grown;
	n->user_ids[n->n_users++] = NULL;
	return 1;
}

/* The value being read is a notification's Action. */
static bool
at_action(const struct decoder *d)
{
	return d->depth == 3 && d->in_notification &&
	       d->member == MEMBER_ACTION;
}

/* An object or an array where an Action was expected. */
static int
action_not_scalar(struct decoder *d)
{
	return fail(d,
		    "Notifications[%zu].Action must be a string, number or boolean",
		    d->env->n_notifications - 1);
}

/* A scalar (or null) value: what it means depends on where it is. */
static int
on_scalar(struct decoder *d, const char *text, size_t len, bool is_string,
	  bool is_number)
{
	struct notification *n;

	if (d->depth == 0)
		return fail(d, "body is not a JSON object");

	if (d->depth == 1) {
		switch (d->top_key) {
		case TOP_ID:
			/* Last one wins, as with Newtonsoft's JObject. An
			 * empty Id names no delivery: as if absent. */
			if (!set_text(d, &d->env->id,
				      (is_string || is_number) && len > 0
					      ? text
					      : NULL,
				      len))
				return 0;
			break;
		case TOP_ATTEMPT: {
			char buf[32];
			char *end;
			long long v;

			d->env->attempt = 0;
			if (!is_number || len >= sizeof(buf))
				break;
			memcpy(buf, text, len);
			buf[len] = '\0';
			errno = 0;
			v = strtoll(buf, &end, 10);
			if (errno == 0 && *end == '\0')
				d->env->attempt = v;
			break;
		}
		case TOP_PROPERTIES:
			d->env->has_properties = false;
			break;
		case TOP_NOTIFICATIONS:
			if (text == NULL && !is_string && !is_number) {
				/* null: no notifications */
				drop_notifications(d->env);
				break;
			}
			return fail(d, "Notifications must be an array of objects");
		case TOP_OTHER:
			break;
		}
		return 1;
	}

	if (d->depth == 2 && d->in_notifications)
		return fail(d, "Notifications[%zu] is not an object",
			    d->env->n_notifications);

	n = d->env->n_notifications > 0 ? current_notification(d) : NULL;
	if (at_action(d))
		return set_text(d, &n->action, text, len);
	/* Course.Id, a string; anything else leaves the notification
	 * without. */
	if (d->depth == 4 && d->in_course && d->key_is_id)
		return set_text(d, &n->course_id, is_string ? text : NULL, len);
	/* Users[k].Id for the user object being read (the last one
	 * opened). */
	if (d->depth == 5 && d->in_user && d->key_is_id)
		return set_text(d, &n->user_ids[n->n_users - 1],
				is_string ? text : NULL, len);
	return 1;
}

static int
cb_null(void *ctx)
{
	return on_scalar(ctx, NULL, 0, false, false);
}

static int
cb_boolean(void *ctx, int value)
{
	/* A boolean Action is matched as "true"/"false", in any case. */
	return on_scalar(ctx, value ? "true" : "false", value ? 4 : 5, false,
			 false);
}

static int
cb_number(void *ctx, const char *text, size_t len)
{
	return on_scalar(ctx, text, len, false, true);
}

static int
cb_string(void *ctx, const unsigned char *text, size_t len)
{
	return on_scalar(ctx, (const char *)text, len, true, false);
}

static bool
key_is(const unsigned char *key, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(key, name, len) == 0;
}

static int
cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct decoder *d = ctx;

	/* Handlers read members through yajl's tree (event.c), which keeps
	 * names as C strings: "Action\u0000x" would read as "Action" there
	 * while this decoder saw another name. No sender writes U+0000 in a
	 * name: refuse the body rather than disagree about it. */
	if (memchr(key, '\0', len) != NULL)
		return fail(d, "a member name contains U+0000");

	/* Member names are case-sensitive, as in Newtonsoft's JObject. */
	if (d->depth == 1) {
		if (key_is(key, len, "Id"))
			d->top_key = TOP_ID;
		else if (key_is(key, len, "Attempt"))
			d->top_key = TOP_ATTEMPT;
		else if (key_is(key, len, "Properties"))
			d->top_key = TOP_PROPERTIES;
		else if (key_is(key, len, "Notifications"))
			d->top_key = TOP_NOTIFICATIONS;
		else
			d->top_key = TOP_OTHER;
	} else if (d->depth == 3 && d->in_notification) {
		if (key_is(key, len, "Action"))
			d->member = MEMBER_ACTION;
		else if (key_is(key, len, "Course"))
			d->member = MEMBER_COURSE;
		else if (key_is(key, len, "Users"))
			d->member = MEMBER_USERS;
		else
			d->member = MEMBER_OTHER;
	} else if ((d->depth == 4 && d->in_course) ||
		   (d->depth == 5 && d->in_user)) {
		d->key_is_id = key_is(key, len, "Id");
	}
	return 1;
}

/* An object or array where Id or Attempt was expected: as if absent. */
static void
reset_top_value(struct decoder *d)
{
	if (d->top_key == TOP_ID) {
		free(d->env->id);
		d->env->id = NULL;
	} else if (d->top_key == TOP_ATTEMPT) {
		d->env->attempt = 0;
	}
}

static int
open_container(struct decoder *d)
{
	if (d->depth >= DECODE_MAX_DEPTH)
		return fail(d, "JSON nested deeper than %d levels",
			    DECODE_MAX_DEPTH);
	d->depth++;
	return 1;
}

static int
cb_start_map(void *ctx)
{
	struct decoder *d = ctx;

	if (at_action(d))
		return action_not_scalar(d);
	if (d->depth == 1 && d->top_key == TOP_PROPERTIES) {
		d->in_properties = true;
		d->env->has_properties = true;
		d->env->properties_start = offset(d) - 1;
	} else if (d->depth == 1 && d->top_key == TOP_NOTIFICATIONS) {
		return fail(d, "Notifications must be an array of objects");
	} else if (d->depth == 1) {
		reset_top_value(d);
	} else if (d->depth == 2 && d->in_notifications) {
		struct envelope *env = d->env;

		if (d->max_notifications > 0 &&
		    env->n_notifications == d->max_notifications) {
			d->too_many = true;
			return fail(d, "the delivery has more than %zu "
				    "notifications (--max-notifications)",
				    d->max_notifications);
		}
		if (env->n_notifications == d->capacity) {
			size_t cap = d->capacity ? 2 * d->capacity : 4;
			struct notification *grown =
				realloc(env->notifications,
					cap * sizeof(*grown));

			if (grown == NULL) {
				d->no_memory = true;
				return 0;
			}
			env->notifications = grown;
			d->capacity = cap;
		}
		env->notifications[env->n_notifications++] =
			(struct notification){ .start = offset(d) - 1 };
		d->in_notification = true;
		d->member = MEMBER_OTHER;
	} else if (d->depth == 3 && d->in_notification &&
		   d->member == MEMBER_COURSE) {
		d->in_course = true;
		d->key_is_id = false;
	} else if (d->depth == 4 && d->in_users) {
		if (!add_user(d))
			return 0;
		d->in_user = true;
		d->key_is_id = false;
	}
	return open_container(d);
}

static int
cb_end_map(void *ctx)
{
	struct decoder *d = ctx;

	d->depth--;
	if (d->depth == 1 && d->in_properties) {
		d->in_properties = false;
		d->env->properties_end = offset(d);
	} else if (d->depth == 2 && d->in_notification) {
		d->in_notification = false;
		current_notification(d)->end = offset(d);
	} else if (d->depth == 3 && d->in_course) {
		d->in_course = false;
	} else if (d->depth == 4 && d->in_user) {
		d->in_user = false;
	}
	return 1;
}

static int
cb_start_array(void *ctx)
{
	struct decoder *d = ctx;

	if (d->depth == 0)
		return fail(d, "body is not a JSON object");
	if (at_action(d))
		return action_not_scalar(d);
	if (d->depth == 1) {
		if (d->top_key == TOP_NOTIFICATIONS) {
			drop_notifications(d->env);
			d->in_notifications = true;
		} else if (d->top_key == TOP_PROPERTIES) {
			d->env->has_properties = false;
		} else {
			reset_top_value(d);
		}
	} else if (d->depth == 2 && d->in_notifications) {
		return fail(d, "Notifications[%zu] is not an object",
			    d->env->n_notifications);
	} else if (d->depth == 3 && d->in_notification &&
		   d->member == MEMBER_USERS) {
		/* The last Users member counts. */
		drop_users(current_notification(d));
		d->in_users = true;
	}
	return open_container(d);
}

static int
cb_end_array(void *ctx)
{
	struct decoder *d = ctx;

	d->depth--;
	if (d->depth == 1)
		d->in_notifications = false;
	else if (d->depth == 3 && d->in_users)
		d->in_users = false;
	return 1;
}

static const yajl_callbacks callbacks = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_boolean,
	.yajl_number = cb_number,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start_map,
	.yajl_map_key = cb_map_key,
	.yajl_end_map = cb_end_map,
	.yajl_start_array = cb_start_array,
	.yajl_end_array = cb_end_array,
};

void
envelope_finish(struct envelope *env)
{
	drop_notifications(env);
	free(env->notifications);
	free(env->id);
	memset(env, 0, sizeof(*env));
}

/* Whether the JSON text (valid: every backslash is inside a string)
 * has a \u escape of a surrogate that is not half of a pair. yajl
 * would read it as "?", so that "sur\ud800" and "sur\ud801" (or a real
 * "sur?") became one id. */
static bool
has_lone_surrogate(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *bs = memchr(s + i, '\\', len - i);
		unsigned v;

		if (bs == NULL)
			return false;
		i = (size_t)(bs - s);
		if (i + 1 < len && s[i + 1] != 'u') {
			i += 2;		/* another escape: \\ \" \n ... */
			continue;
		}
		if (i + 6 > len)
			return false;
		v = (unsigned)(hex_digit_value(s[i + 2]) << 12 |
			       hex_digit_value(s[i + 3]) << 8 |
			       hex_digit_value(s[i + 4]) << 4 |
			       hex_digit_value(s[i + 5]));
		i += 6;
		if (v >= 0xdc00 && v <= 0xdfff)
			return true;	/* a low half alone */
		if (v < 0xd800 || v > 0xdbff)
			continue;
		/* A high half: a low half must follow at once. */
		if (i + 6 > len || s[i] != '\\' || s[i + 1] != 'u')
			return true;
		v = (unsigned)(hex_digit_value(s[i + 2]) << 12 |
			       hex_digit_value(s[i + 3]) << 8 |
			       hex_digit_value(s[i + 4]) << 4 |
			       hex_digit_value(s[i + 5]));
		if (v < 0xdc00 || v > 0xdfff)
			return true;
		i += 6;
	}
	return false;
}

int
envelope_decode(const char *body, size_t len, size_t max_notifications,
		struct envelope *env, char *err, size_t err_size)
{
	struct decoder d = {
		.env = env,
		.max_notifications = max_notifications,
		.err = err,
		.err_size = err_size,
	};
	yajl_status status;
	int rc = 0;

	memset(env, 0, sizeof(*env));
	err[0] = '\0';

	/* .NET's reader skips a UTF-8 byte order mark; so do we. */
	if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0)
		d.base = 3;
	env->json_start = d.base;
	if (len == d.base) {
		snprintf(err, err_size, "body is empty");
		return -EBADMSG;
	}

	d.yajl = yajl_alloc(&callbacks, NULL, &d);
	if (d.yajl == NULL)
		return -ENOMEM;
	status = yajl_parse(d.yajl, (const unsigned char *)body + d.base,
			    len - d.base);
	if (status == yajl_status_ok)
		status = yajl_complete_parse(d.yajl);

	if (d.no_memory) {
		rc = -ENOMEM;
	} else if (status == yajl_status_client_canceled) {
		rc = d.too_many ? -E2BIG : -EBADMSG;
	} else if (status != yajl_status_ok) {
		unsigned char *msg = yajl_get_error(d.yajl, 0, NULL, 0);
		size_t n;

		snprintf(err, err_size, "body is not valid JSON: %s",
			 msg != NULL ? (const char *)msg : "parse error");
		yajl_free_error(d.yajl, msg);
		/* yajl ends its message with a newline: the answer and the
		 * log line add their own. */
		n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		rc = -EBADMSG;
	}
	yajl_free(d.yajl);
	/* It hops from backslash to backslash with memchr(): no prefilter
	 * (memmem() for "\\u" cost more than the scan). */
	if (rc == 0 && has_lone_surrogate(body + d.base, len - d.base)) {
		snprintf(err, err_size, "body has a lone surrogate escape "
			 "(\\uD800 to \\uDFFF without its pair): not Unicode "
			 "text");
		rc = -EBADMSG;
	}
	if (rc < 0)
		envelope_finish(env);
	return rc;
}

/* The span of the media type before parameters, trimmed. */
bool
media_type_is_json(const char *content_type)
{
	const char *type = content_type;
	const char *slash;
	const char *sub;
	size_t type_len;
	size_t sub_len;
	size_t len;

	if (content_type == NULL)
		return false;
	len = strcspn(content_type, ";");
	trim_span(&type, &len);
	slash = memchr(type, '/', len);
	if (slash == NULL)
		return false;
	type_len = (size_t)(slash - type);
	sub = slash + 1;
	sub_len = len - type_len - 1;
	if (sub_len == 0 || memchr(sub, ' ', sub_len) != NULL ||
	    memchr(sub, '/', sub_len) != NULL)
		return false;
	if (!ascii_equal_nocase_n(type, type_len, "application", 11) &&
	    !ascii_equal_nocase_n(type, type_len, "text", 4))
		return false;
	if (ascii_equal_nocase_n(sub, sub_len, "json", 4))
		return true;
	return sub_len >= 5 &&
	       ascii_equal_nocase_n(sub + sub_len - 5, 5, "+json", 5);
}
