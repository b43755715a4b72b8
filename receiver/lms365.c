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
#include <stddef.h>
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

/* A member of an object that a decoder reads: its name, its JSON type
 * and where its value goes in the output struct. The output starts
 * zeroed: a member absent or null leaves NULL, false or 0 there. */
enum member_type {
	MEMBER_OTHER,		/* read by the decoder's own code */
	MEMBER_STRING,		/* a const char *, borrowed from the tree */
	MEMBER_BOOL,		/* a bool, and `has` set */
	MEMBER_INTEGER,		/* an int64_t, and `has` set */
};

struct member {
	const char *name;
	enum member_type type;
	size_t value;		/* offsetof the value in the output */
	size_t has;		/* offsetof its bool "was given" */
};

/* The values of the members @p m of @p obj, NULL for those it lacks; of
 * a name given twice, the last counts. One pass over the members. */
static void
pick(yajl_val obj, const struct member *m, size_t n, yajl_val *values)
{
	size_t i, k;

	memset(values, 0, n * sizeof(*values));
	for (i = 0; i < obj->u.object.len; i++) {
		const char *key = obj->u.object.keys[i];

		for (k = 0; k < n; k++) {
			if (strcmp(key, m[k].name) == 0) {
				values[k] = obj->u.object.values[i];
				break;
			}
		}
	}
}

/* @p v, the value of the member @p m, into the struct at @p out, or a
 * reason (at @p w) when it has another type. */
static int
get_value(struct whr_event *ev, const struct where *w,
	  const struct member *m, yajl_val v, void *out)
{
	char *base = out;
	int64_t i;

	if (absent(v))
		return 0;
	switch (m->type) {
	case MEMBER_OTHER:
		return 0;
	case MEMBER_STRING:
		if (!YAJL_IS_STRING(v))
			return wrong_type(ev, w, m->name, "a string", v);
		*(const char **)(void *)(base + m->value) = v->u.string;
		return 0;
	case MEMBER_BOOL:
		if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
			return wrong_type(ev, w, m->name, "a boolean", v);
		*(bool *)(base + m->value) = YAJL_IS_TRUE(v);
		break;
	case MEMBER_INTEGER:
		if (!event_integer_value(v, &i))
			return wrong_type(ev, w, m->name, "an integer", v);
		*(int64_t *)(void *)(base + m->value) = i;
		break;
	}
	*(bool *)(base + m->has) = true;
	return 0;
}

/* The typed members among @p m, in their order (picked into @p v). */
static int
get_values(struct whr_event *ev, const struct where *w,
	   const struct member *m, size_t n, const yajl_val *v, void *out)
{
	size_t k;
	int rc;

	for (k = 0; k < n; k++) {
		rc = get_value(ev, w, &m[k], v[k], out);
		if (rc < 0)
			return rc;
	}
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

static const struct member timestamp = {
	"TimeStamp", MEMBER_STRING, offsetof(struct whr_lms365_time, text), 0
};

static int
get_time(struct whr_event *ev, yajl_val v, struct whr_lms365_time *out)
{
	static const struct where top = { NULL, NO_INDEX };
	/* Every quoted byte may take 4 ("\xNN"), plus quotes, "..." and
	 * the NUL. */
	char quoted[4 * QUOTE_MAX + 8];
	int rc;

	memset(out, 0, sizeof(*out));
	rc = get_value(ev, &top, &timestamp, v, out);
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

#define COURSE(field) offsetof(struct whr_lms365_course, field)
#define USER(field) offsetof(struct whr_lms365_user, field)

static const struct member course_members[] = {
	{ "Id", MEMBER_STRING, COURSE(id), 0 },
	{ "Title", MEMBER_STRING, COURSE(title), 0 },
	{ "Url", MEMBER_STRING, COURSE(url), 0 },
	{ "CourseType", MEMBER_STRING, COURSE(course_type), 0 },
	{ "SiteId", MEMBER_STRING, COURSE(site_id), 0 },
	{ "WebId", MEMBER_STRING, COURSE(web_id), 0 },
	{ "Published", MEMBER_BOOL, COURSE(published), COURSE(has_published) },
};

static const struct member user_members[] = {
	{ "Id", MEMBER_STRING, USER(id), 0 },
	{ "Email", MEMBER_STRING, USER(email), 0 },
	{ "Title", MEMBER_STRING, USER(title), 0 },
	{ "LoginName", MEMBER_STRING, USER(login_name), 0 },
	{ "Department", MEMBER_STRING, USER(department), 0 },
	{ "DirectoryObjectId", MEMBER_STRING, USER(directory_object_id), 0 },
	{ "EnrollmentId", MEMBER_STRING, USER(enrollment_id), 0 },
};

/* The course's members of @p obj, an object. */
static int
get_course(struct whr_event *ev, const struct where *w, yajl_val obj,
	   struct whr_lms365_course *c)
{
	yajl_val v[ARRAY_LENGTH(course_members)];

	pick(obj, course_members, ARRAY_LENGTH(course_members), v);
	return get_values(ev, w, course_members, ARRAY_LENGTH(course_members),
			  v, c);
}

static int
get_user(struct whr_event *ev, size_t index, yajl_val obj,
	 struct whr_lms365_user *u)
{
	const struct where w = { "Users", index };
	yajl_val v[ARRAY_LENGTH(user_members)];

	if (!YAJL_IS_OBJECT(obj)) {
		whr_event_set_reason(ev, "Users[%zu]: expected an object, "
				     "got %s", index, type_name(obj));
		return -EINVAL;
	}
	pick(obj, user_members, ARRAY_LENGTH(user_members), v);
	return get_values(ev, &w, user_members, ARRAY_LENGTH(user_members),
			  v, u);
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

#define ENROLLMENT(field) offsetof(struct whr_lms365_enrollment, field)

/* In the order they are checked. */
enum { E_COURSE, E_STATUS, E_STATUS_TEXT, E_USERS, E_TIMESTAMP, E_COUNT };

static const struct member enrollment_members[E_COUNT] = {
	[E_COURSE] = { "Course", MEMBER_OTHER, 0, 0 },
	[E_STATUS] = { "EnrollmentStatus", MEMBER_INTEGER, ENROLLMENT(status),
		       ENROLLMENT(has_status) },
	[E_STATUS_TEXT] = { "EnrollmentStatusText", MEMBER_STRING,
			    ENROLLMENT(status_text), 0 },
	[E_USERS] = { "Users", MEMBER_OTHER, 0, 0 },
	[E_TIMESTAMP] = { "TimeStamp", MEMBER_OTHER, 0, 0 },
};

static int
decode_enrollment(struct whr_event *ev, yajl_val obj, void *result)
{
	static const struct where top = { NULL, NO_INDEX };
	static const struct where in_course = { "Course", NO_INDEX };
	struct whr_lms365_enrollment *out = result;
	yajl_val v[E_COUNT];
	int rc;

	pick(obj, enrollment_members, E_COUNT, v);
	out->action = whr_lms365_action_parse(whr_event_action(ev));
	if (!absent(v[E_COURSE])) {
		if (!YAJL_IS_OBJECT(v[E_COURSE]))
			return wrong_type(ev, &top, "Course", "an object",
					  v[E_COURSE]);
		rc = get_course(ev, &in_course, v[E_COURSE], &out->course);
		if (rc < 0)
			return rc;
	}
	if ((rc = get_values(ev, &top, enrollment_members, E_COUNT, v,
			     out)) < 0 ||
	    (rc = get_users(ev, v[E_USERS], out)) < 0 ||
	    (rc = get_time(ev, v[E_TIMESTAMP], &out->timestamp)) < 0)
		return rc;
	return 0;
}

/* A course event: the course's members at the top, and TimeStamp. */
static int
decode_course(struct whr_event *ev, yajl_val obj, void *result)
{
	static const struct where top = { NULL, NO_INDEX };
	struct whr_lms365_course_event *out = result;
	yajl_val time;
	int rc;

	out->action = whr_lms365_action_parse(whr_event_action(ev));
	pick(obj, &timestamp, 1, &time);
	if ((rc = get_course(ev, &top, obj, &out->course)) < 0 ||
	    (rc = get_time(ev, time, &out->timestamp)) < 0)
		return rc;
	return 0;
}

/* What the public decoders share: @p out (@p size bytes) zeroed, then
 * filled by @p fn from the notification's object; zeroed again when
 * that fails. */
static int
decode(struct whr_event *ev, void *out, size_t size, const char *caller,
       int (*fn)(struct whr_event *ev, yajl_val obj, void *out))
{
	yajl_val obj = NULL;
	int rc;

	if (out == NULL) {
		whr_log(WHR_LOG_ERROR, "BUG: %s called without an output",
			caller);
		return -EINVAL;
	}
	memset(out, 0, size);
	rc = notification(ev, &obj);
	if (rc == 0)
		rc = fn(ev, obj, out);
	if (rc < 0)
		memset(out, 0, size);
	return rc;
}

WHR_EXPORT int
whr_lms365_enrollment_decode(struct whr_event *ev,
			     struct whr_lms365_enrollment *out)
{
	return decode(ev, out, sizeof(*out), __func__, decode_enrollment);
}

WHR_EXPORT int
whr_lms365_course_decode(struct whr_event *ev,
			 struct whr_lms365_course_event *out)
{
	return decode(ev, out, sizeof(*out), __func__, decode_course);
}
