/*
 * Typed Learn365 events (lms365.h): the notification's JSON tree read
 * once into structs, with the type of every member checked.
 *
 * The decoders walk each object's members once, keeping the last value
 * of a name given twice (as event.c's paths do), then check the types.
 * Strings are borrowed from the event's tree; the users array comes from
 * the event's scratch memory (event_alloc()), so both live until
 * event_finish().
 */
#include <whr/lms365.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "event.h"
#include "util.h"

static const char *const action_names[] = {
	[WHR_LMS365_COURSE_ENROLLMENT] = "CourseEnrollment",
	[WHR_LMS365_COURSE_UNENROLLMENT] = "CourseUnenrollment",
	[WHR_LMS365_COURSE_STARTED] = "CourseStarted",
	[WHR_LMS365_COURSE_COMPLETED] = "CourseCompleted",
	[WHR_LMS365_ENROLLMENT_APPROVAL_REQUEST] = "EnrollmentApprovalRequest",
	[WHR_LMS365_COURSE_PUBLISHED] = "CoursePublished",
	[WHR_LMS365_COURSE_UNPUBLISHED] = "CourseUnpublished",
	[WHR_LMS365_COURSE_CREATED] = "CourseCreated",
	[WHR_LMS365_COURSE_DELETED] = "CourseDeleted",
};

WHR_EXPORT enum whr_lms365_action
whr_lms365_action_parse(const char *action)
{
	size_t i;

	if (action == NULL)
		return WHR_LMS365_UNKNOWN;
	for (i = 1; i < ARRAY_LENGTH(action_names); i++) {
		if (ascii_equal_nocase(action, action_names[i]))
			return (enum whr_lms365_action)i;
	}
	return WHR_LMS365_UNKNOWN;
}

WHR_EXPORT const char *
whr_lms365_action_name(enum whr_lms365_action action)
{
	/* Unsigned, so that a negative value is out of range too. */
	if ((unsigned int)action == WHR_LMS365_UNKNOWN ||
	    (unsigned int)action >= ARRAY_LENGTH(action_names))
		return NULL;
	return action_names[action];
}

WHR_EXPORT bool
whr_lms365_is_enrollment(enum whr_lms365_action action)
{
	return (unsigned int)action >= WHR_LMS365_COURSE_ENROLLMENT &&
	       (unsigned int)action <= WHR_LMS365_ENROLLMENT_APPROVAL_REQUEST;
}

WHR_EXPORT bool
whr_lms365_is_course(enum whr_lms365_action action)
{
	return (unsigned int)action >= WHR_LMS365_COURSE_PUBLISHED &&
	       (unsigned int)action <= WHR_LMS365_COURSE_DELETED;
}

/* ---- decoding ---- */

/* Where a member lives, for the reason: "Id", "Course.Id",
 * "Users[2].Id". */
struct where {
	const char *parent;	/* NULL at the top */
	size_t index;		/* of the element of parent, or NO_INDEX */
};

#define NO_INDEX ((size_t)-1)
/* The longest part of a bad TimeStamp quoted in a reason, in bytes. */
#define QUOTE_MAX 40

static const char *
type_name(yajl_val v)
{
	switch (v->type) {
	case yajl_t_string:
		return "a string";
	case yajl_t_number:
		return "a number";
	case yajl_t_object:
		return "an object";
	case yajl_t_array:
		return "an array";
	case yajl_t_true:
	case yajl_t_false:
		return "a boolean";
	case yajl_t_null:
		return "null";
	case yajl_t_any:
		break;
	}
	return "a value of unknown type";
}

static int
wrong_type(struct whr_event *ev, const struct where *w, const char *name,
	   const char *expected, yajl_val got)
{
	if (w->parent == NULL)
		whr_event_set_reason(ev, "%s: expected %s, got %s", name,
				     expected, type_name(got));
	else if (w->index == NO_INDEX)
		whr_event_set_reason(ev, "%s.%s: expected %s, got %s",
				     w->parent, name, expected,
				     type_name(got));
	else
		whr_event_set_reason(ev, "%s[%zu].%s: expected %s, got %s",
				     w->parent, w->index, name, expected,
				     type_name(got));
	return -EINVAL;
}

static bool
absent(yajl_val v)
{
	return v == NULL || YAJL_IS_NULL(v);
}

/* The values of the members @p names of @p obj, NULL for those it lacks;
 * of a name given twice, the last counts. One pass over the members. */
static void
pick(yajl_val obj, const char *const *names, size_t n, yajl_val *values)
{
	size_t i, k;

	memset(values, 0, n * sizeof(*values));
	for (i = 0; i < obj->u.object.len; i++) {
		const char *key = obj->u.object.keys[i];

		for (k = 0; k < n; k++) {
			if (strcmp(key, names[k]) == 0) {
				values[k] = obj->u.object.values[i];
				break;
			}
		}
	}
}

static int
get_string(struct whr_event *ev, const struct where *w, const char *name,
	   yajl_val v, const char **out)
{
	*out = NULL;
	if (absent(v))
		return 0;
	if (!YAJL_IS_STRING(v))
		return wrong_type(ev, w, name, "a string", v);
	*out = v->u.string;
	return 0;
}

static int
get_bool(struct whr_event *ev, const struct where *w, const char *name,
	 yajl_val v, bool *has, bool *out)
{
	*has = false;
	*out = false;
	if (absent(v))
		return 0;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return wrong_type(ev, w, name, "a boolean", v);
	*has = true;
	*out = YAJL_IS_TRUE(v);
	return 0;
}

static int
get_integer(struct whr_event *ev, const struct where *w, const char *name,
	    yajl_val v, bool *has, int64_t *out)
{
	*has = false;
	*out = 0;
	if (absent(v))
		return 0;
	if (!event_integer_value(v, out))
		return wrong_type(ev, w, name, "an integer", v);
	*has = true;
	return 0;
}

/* @p text quoted for a reason: at most QUOTE_MAX bytes of it, cut at a
 * character boundary and marked "..." when cut; quotes, backslashes and
 * control characters escaped, so the reason stays one printable line. */
static void
quote(const char *text, char *buf, size_t size)
{
	size_t len = strlen(text), i = 0, o = 0;

	buf[o++] = '"';
	while (i < len) {
		unsigned char c = (unsigned char)text[i];
		size_t n = utf8_char_length(text + i, len - i);
		bool bad = n == 0;	/* not UTF-8: escaped below */

		if (bad)
			n = 1;
		if (i + n > QUOTE_MAX)
			break;
		if (o + 8 > size)
			break;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f || bad) {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		} else {
			memcpy(buf + o, text + i, n);
			o += n;
		}
		i += n;
	}
	buf[o++] = '"';
	if (i < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
}

static int
get_time(struct whr_event *ev, yajl_val v, struct whr_lms365_time *out)
{
	static const struct where top = { NULL, NO_INDEX };
	/* Every quoted byte may take 4 ("\xNN"), plus quotes, "..." and
	 * the NUL. */
	char quoted[4 * QUOTE_MAX + 8];
	int rc;

	memset(out, 0, sizeof(*out));
	rc = get_string(ev, &top, "TimeStamp", v, &out->text);
	if (rc < 0 || out->text == NULL)
		return rc;
	if (whr_lms365_parse_time(out->text, &out->us) < 0) {
		quote(out->text, quoted, sizeof(quoted));
		whr_event_set_reason(ev,
				     "TimeStamp: not an ISO 8601 date-time: %s",
				     quoted);
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	out->valid = true;
	return 0;
}

enum {
	C_ID, C_TITLE, C_URL, C_COURSE_TYPE, C_SITE_ID, C_WEB_ID, C_PUBLISHED,
	C_COUNT
};

static const char *const course_names[C_COUNT] = {
	[C_ID] = "Id",
	[C_TITLE] = "Title",
	[C_URL] = "Url",
	[C_COURSE_TYPE] = "CourseType",
	[C_SITE_ID] = "SiteId",
	[C_WEB_ID] = "WebId",
	[C_PUBLISHED] = "Published",
};

/* The course members among @p v (picked with course_names first). */
static int
get_course(struct whr_event *ev, const struct where *w, const yajl_val *v,
	   struct whr_lms365_course *c)
{
	int rc;

	if ((rc = get_string(ev, w, "Id", v[C_ID], &c->id)) < 0 ||
	    (rc = get_string(ev, w, "Title", v[C_TITLE], &c->title)) < 0 ||
	    (rc = get_string(ev, w, "Url", v[C_URL], &c->url)) < 0 ||
	    (rc = get_string(ev, w, "CourseType", v[C_COURSE_TYPE],
			     &c->course_type)) < 0 ||
	    (rc = get_string(ev, w, "SiteId", v[C_SITE_ID],
			     &c->site_id)) < 0 ||
	    (rc = get_string(ev, w, "WebId", v[C_WEB_ID], &c->web_id)) < 0 ||
	    (rc = get_bool(ev, w, "Published", v[C_PUBLISHED],
			   &c->has_published, &c->published)) < 0)
		return rc;
	return 0;
}

enum {
	U_ID, U_EMAIL, U_TITLE, U_LOGIN_NAME, U_DEPARTMENT,
	U_DIRECTORY_OBJECT_ID, U_ENROLLMENT_ID, U_COUNT
};

static const char *const user_names[U_COUNT] = {
	[U_ID] = "Id",
	[U_EMAIL] = "Email",
	[U_TITLE] = "Title",
	[U_LOGIN_NAME] = "LoginName",
	[U_DEPARTMENT] = "Department",
	[U_DIRECTORY_OBJECT_ID] = "DirectoryObjectId",
	[U_ENROLLMENT_ID] = "EnrollmentId",
};

static int
get_user(struct whr_event *ev, size_t index, yajl_val obj,
	 struct whr_lms365_user *u)
{
	const struct where w = { "Users", index };
	yajl_val v[U_COUNT];
	size_t k;
	const char **fields[U_COUNT] = {
		[U_ID] = &u->id,
		[U_EMAIL] = &u->email,
		[U_TITLE] = &u->title,
		[U_LOGIN_NAME] = &u->login_name,
		[U_DEPARTMENT] = &u->department,
		[U_DIRECTORY_OBJECT_ID] = &u->directory_object_id,
		[U_ENROLLMENT_ID] = &u->enrollment_id,
	};
	int rc;

	if (!YAJL_IS_OBJECT(obj)) {
		whr_event_set_reason(ev, "Users[%zu]: expected an object, "
				     "got %s", index, type_name(obj));
		return -EINVAL;
	}
	pick(obj, user_names, U_COUNT, v);
	for (k = 0; k < U_COUNT; k++) {
		rc = get_string(ev, &w, user_names[k], v[k], fields[k]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int
get_users(struct whr_event *ev, yajl_val v, struct whr_lms365_enrollment *out)
{
	static const struct where top = { NULL, NO_INDEX };
	struct whr_lms365_user *users;
	size_t i, n;
	int rc;

	if (absent(v))
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return wrong_type(ev, &top, "Users", "an array", v);
	n = v->u.array.len;
	if (n == 0)
		return 0;
	users = event_alloc(ev, n, sizeof(*users));
	if (users == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		rc = get_user(ev, i, v->u.array.values[i], &users[i]);
		if (rc < 0)
			return rc;	/* the block stays until
					 * event_finish() */
	}
	out->users = users;
	out->n_users = n;
	return 0;
}

/* The notification's object, or a negative errno (with the reason set
 * when it is not an object). */
static int
notification(struct whr_event *ev, yajl_val *obj)
{
	yajl_val tree;

	if (ev == NULL) {
		whr_log(WHR_LOG_ERROR, "BUG: lms365 decoder called without "
			"an event");
		return -EINVAL;
	}
	if (ev->f.json == NULL) {
		whr_event_set_reason(ev, "notification: missing");
		return -EINVAL;
	}
	tree = event_tree(ev);
	if (tree == NULL)
		return -ENOMEM;
	if (!YAJL_IS_OBJECT(tree)) {
		whr_event_set_reason(ev, "notification: expected an object, "
				     "got %s", type_name(tree));
		return -EINVAL;
	}
	*obj = tree;
	return 0;
}

enum {
	E_STATUS, E_STATUS_TEXT, E_COURSE, E_USERS, E_TIMESTAMP, E_COUNT
};

static const char *const enrollment_names[E_COUNT] = {
	[E_STATUS] = "EnrollmentStatus",
	[E_STATUS_TEXT] = "EnrollmentStatusText",
	[E_COURSE] = "Course",
	[E_USERS] = "Users",
	[E_TIMESTAMP] = "TimeStamp",
};

static int
decode_enrollment(struct whr_event *ev, yajl_val obj,
		  struct whr_lms365_enrollment *out)
{
	static const struct where top = { NULL, NO_INDEX };
	static const struct where in_course = { "Course", NO_INDEX };
	yajl_val v[E_COUNT];
	yajl_val course[C_COUNT];
	int rc;

	pick(obj, enrollment_names, E_COUNT, v);
	out->action = whr_lms365_action_parse(whr_event_action(ev));
	if (!absent(v[E_COURSE])) {
		if (!YAJL_IS_OBJECT(v[E_COURSE]))
			return wrong_type(ev, &top, "Course", "an object",
					  v[E_COURSE]);
		pick(v[E_COURSE], course_names, C_COUNT, course);
		rc = get_course(ev, &in_course, course, &out->course);
		if (rc < 0)
			return rc;
	}
	if ((rc = get_integer(ev, &top, "EnrollmentStatus", v[E_STATUS],
			      &out->has_status, &out->status)) < 0 ||
	    (rc = get_string(ev, &top, "EnrollmentStatusText",
			     v[E_STATUS_TEXT], &out->status_text)) < 0 ||
	    (rc = get_users(ev, v[E_USERS], out)) < 0 ||
	    (rc = get_time(ev, v[E_TIMESTAMP], &out->timestamp)) < 0)
		return rc;
	return 0;
}

WHR_EXPORT int
whr_lms365_enrollment_decode(struct whr_event *ev,
			     struct whr_lms365_enrollment *out)
{
	yajl_val obj = NULL;
	int rc;

	if (out == NULL) {
		whr_log(WHR_LOG_ERROR, "BUG: %s called without an output",
			__func__);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	rc = notification(ev, &obj);
	if (rc == 0)
		rc = decode_enrollment(ev, obj, out);
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

enum { F_TIMESTAMP = C_COUNT, F_COUNT };

static const char *const flat_names[F_COUNT] = {
	[C_ID] = "Id",
	[C_TITLE] = "Title",
	[C_URL] = "Url",
	[C_COURSE_TYPE] = "CourseType",
	[C_SITE_ID] = "SiteId",
	[C_WEB_ID] = "WebId",
	[C_PUBLISHED] = "Published",
	[F_TIMESTAMP] = "TimeStamp",
};

WHR_EXPORT int
whr_lms365_course_decode(struct whr_event *ev,
			 struct whr_lms365_course_event *out)
{
	static const struct where top = { NULL, NO_INDEX };
	yajl_val obj = NULL;
	yajl_val v[F_COUNT];
	int rc;

	if (out == NULL) {
		whr_log(WHR_LOG_ERROR, "BUG: %s called without an output",
			__func__);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	rc = notification(ev, &obj);
	if (rc < 0)
		return rc;
	pick(obj, flat_names, F_COUNT, v);
	out->action = whr_lms365_action_parse(whr_event_action(ev));
	if ((rc = get_course(ev, &top, v, &out->course)) < 0 ||
	    (rc = get_time(ev, v[F_TIMESTAMP], &out->timestamp)) < 0) {
		memset(out, 0, sizeof(*out));
		return rc;
	}
	return 0;
}
