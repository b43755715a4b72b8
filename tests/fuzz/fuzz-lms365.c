/*
 * The typed Learn365 decoders over arbitrary bytes. The input is given,
 * as it is, as a notification to whr_lms365_enrollment_decode() and
 * whr_lms365_course_decode(), and as text to whr_lms365_parse_time().
 * Invariants: the decoders return 0, -EINVAL with a one-line reason, or
 * -ENOMEM only when the bytes are not JSON; what they return agrees with
 * the field-path getters; a time that parses without a fraction or zone
 * prints back the same through gmtime_r().
 */
#include "fuzz-common.h"

#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <whr/lms365.h>

#include "event.h"

static void
check_reason(const struct whr_event *ev)
{
	const unsigned char *p = (const unsigned char *)event_reason(ev);

	FUZZ_CHECK(p != NULL);
	FUZZ_CHECK(*p != '\0');
	for (; *p != '\0'; p++)
		FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
}

static void
check_time(const struct whr_lms365_time *t)
{
	int64_t us;

	FUZZ_CHECK(t->valid == (t->text != NULL));
	if (t->valid) {
		FUZZ_CHECK(whr_lms365_parse_time(t->text, &us) == 0);
		FUZZ_CHECK(us == t->us);
	}
}

/* The string members of a struct: the path's last name, and where. */
struct string_member {
	const char *name;
	size_t offset;
};

#define COURSE(name, field)                                                  \
	{ name, offsetof(struct whr_lms365_course, field) }
#define USER(name, field)                                                    \
	{ name, offsetof(struct whr_lms365_user, field) }

static const struct string_member course_strings[] = {
	COURSE("Id", id), COURSE("Title", title), COURSE("Url", url),
	COURSE("CourseType", course_type), COURSE("SiteId", site_id),
	COURSE("WebId", web_id),
};

static const struct string_member user_strings[] = {
	USER("Id", id), USER("Email", email), USER("Title", title),
	USER("LoginName", login_name), USER("Department", department),
	USER("DirectoryObjectId", directory_object_id),
	USER("EnrollmentId", enrollment_id),
};

/* Each string member of the struct at @p s agrees with the getter at
 * @p prefix and its name; every byte is read, so ASan sees a dangling
 * one. */
static void
check_strings(const struct whr_event *ev, const char *prefix, const void *s,
	      const struct string_member *m, size_t n)
{
	char path[64];
	size_t i;

	for (i = 0; i < n; i++) {
		const char *value = *(const char *const *)(const void *)(
			(const char *)s + m[i].offset);

		snprintf(path, sizeof(path), "%s%s", prefix, m[i].name);
		FUZZ_CHECK(fuzz_same_string(value, whr_event_string(ev, path)));
	}
}

static void
check_course(const struct whr_event *ev, const char *prefix,
	     const struct whr_lms365_course *c)
{
	char path[32];
	bool b = false;

	check_strings(ev, prefix, c, course_strings,
		      sizeof(course_strings) / sizeof(*course_strings));
	snprintf(path, sizeof(path), "%sPublished", prefix);
	FUZZ_CHECK(c->has_published == (whr_event_bool(ev, path, &b) == 0));
	FUZZ_CHECK(!c->has_published || c->published == b);
}

static void
enrollment(struct whr_event *ev, bool is_json)
{
	struct whr_lms365_enrollment e;
	int64_t status = 0;
	char path[64];
	size_t k;
	int rc = whr_lms365_enrollment_decode(ev, &e);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	FUZZ_CHECK(rc != -ENOMEM || !is_json);
	if (rc == -EINVAL)
		check_reason(ev);
	if (rc != 0) {
		FUZZ_CHECK(e.users == NULL && e.n_users == 0);
		return;
	}
	FUZZ_CHECK(is_json);
	FUZZ_CHECK(e.action ==
		   whr_lms365_action_parse(whr_event_action(ev)));
	check_course(ev, "Course.", &e.course);
	FUZZ_CHECK(e.has_status ==
		   (whr_event_integer(ev, "EnrollmentStatus", &status) == 0));
	FUZZ_CHECK(!e.has_status || e.status == status);
	FUZZ_CHECK(fuzz_same_string(e.status_text,
			       whr_event_string(ev, "EnrollmentStatusText")));
	FUZZ_CHECK(e.n_users == whr_event_array_length(ev, "Users"));
	FUZZ_CHECK((e.users == NULL) == (e.n_users == 0));
	for (k = 0; k < e.n_users; k++) {
		snprintf(path, sizeof(path), "Users[%zu].", k);
		check_strings(ev, path, &e.users[k], user_strings,
			      sizeof(user_strings) / sizeof(*user_strings));
	}
	FUZZ_CHECK(fuzz_same_string(e.timestamp.text,
			       whr_event_string(ev, "TimeStamp")));
	check_time(&e.timestamp);
}

static void
course(struct whr_event *ev, bool is_json)
{
	struct whr_lms365_course_event c;
	int rc = whr_lms365_course_decode(ev, &c);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	FUZZ_CHECK(rc != -ENOMEM || !is_json);
	if (rc == -EINVAL)
		check_reason(ev);
	if (rc != 0)
		return;
	FUZZ_CHECK(is_json);
	check_course(ev, "", &c.course);
	FUZZ_CHECK(fuzz_same_string(c.timestamp.text,
			       whr_event_string(ev, "TimeStamp")));
	check_time(&c.timestamp);
}

/* A time without fraction or zone (or with a bare Z) must print back
 * the same through the C library's own calendar. */
static void
parse_time(const char *text)
{
	/* 0001-01-01 and 9999-12-31, with a day of offsets either side. */
	const int64_t min = -62135596800000000LL - 86400000000LL;
	const int64_t max = 253402300799999999LL + 86400000000LL;
	int64_t us = 42;
	size_t len = strlen(text);
	char back[64];
	struct tm tm;
	time_t t;

	if (whr_lms365_parse_time(text, &us) < 0) {
		FUZZ_CHECK(us == 42);
		return;
	}
	FUZZ_CHECK(us >= min && us <= max);
	if (len == 19 || (len == 20 && (text[19] == 'Z' ||
					text[19] == 'z'))) {
		FUZZ_CHECK(us % 1000000 == 0);
		t = (time_t)(us / 1000000);
		FUZZ_CHECK(gmtime_r(&t, &tm) != NULL);
		snprintf(back, sizeof(back), "%04d-%02d-%02dT%02d:%02d:%02d",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
		FUZZ_CHECK(strncmp(back, text, 19) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = fuzz_strndup(data, size);
	struct whr_event ev;
	bool is_json;

	parse_time(json);

	/* The Action the server would give: the member, when a string. */
	event_init(&ev, &(struct event_fields){
		.receiver_id = "",
		.count = 1,
		.json = json,
		.json_len = strlen(json),
	});
	is_json = event_tree(&ev) != NULL;
	ev.f.action = whr_event_string(&ev, "Action");
	enrollment(&ev, is_json);
	course(&ev, is_json);
	/* Twice on one event: the scratch memory of both stays valid. */
	enrollment(&ev, is_json);
	event_finish(&ev);
	free(json);
	return 0;
}
