/*
 * The event getters and field paths.
 */
#include <string.h>

#include "event.h"
#include "test-common.h"

static const char *notification =
	"{\"Action\":\"CourseEnrollment\",\"EnrollmentStatus\":1,"
	"\"Course\":{\"Id\":\"c-1\",\"Title\":\"Safety\",\"Published\":true,"
	"\"Score\":9.5,\"Big\":123456789012,\"Min\":-9223372036854775808,\"Over\":9223372036854775808,\"Huge\":1e400,\"Nothing\":null},"
	"\"Users\":[{\"Id\":\"u1\",\"Email\":\"a@x.org\"},"
	"{\"Id\":\"u2\",\"Email\":\"b@x.org\",\"Tags\":[\"t0\",\"t1\"]}],"
	"\"a.b\":1,\"Dup\":1,\"Dup\":\"last\"}";

static void
make_event(struct whr_event *ev, const char *properties)
{
	struct event_fields f = {
		.receiver_id = "tenant2",
		.delivery_id = "d-1",
		.action = "CourseEnrollment",
		.attempt = 2,
		.received_at = 1700000000000000LL,
		.index = 1,
		.count = 3,
		.json = notification,
		.json_len = strlen(notification),
		.properties = properties,
		.properties_len = properties != NULL ? strlen(properties) : 0,
	};

	event_init(ev, &f);
}

START_TEST(event_envelope)
{
	struct whr_event ev;
	size_t len;

	make_event(&ev, NULL);
	ck_assert_str_eq(whr_event_receiver_id(&ev), "tenant2");
	ck_assert_str_eq(whr_event_delivery_id(&ev), "d-1");
	ck_assert_str_eq(whr_event_action(&ev), "CourseEnrollment");
	ck_assert_int_eq(whr_event_attempt(&ev), 2);
	ck_assert_uint_eq(whr_event_index(&ev), 1);
	ck_assert_uint_eq(whr_event_count(&ev), 3);
	ck_assert_int_eq(whr_event_received_at(&ev), 1700000000000000LL);
	ck_assert_str_eq(whr_event_json(&ev, &len), notification);
	ck_assert_uint_eq(len, strlen(notification));
	ck_assert_str_eq(whr_event_properties_json(&ev, &len), "{}");
	ck_assert_uint_eq(len, 2);
	ck_assert_ptr_null(whr_event_property(&ev, "p1"));
	event_finish(&ev);
}
END_TEST

START_TEST(event_paths)
{
	struct whr_event ev;
	int64_t i = 0;
	bool b = false;

	make_event(&ev, NULL);
	ck_assert_str_eq(whr_event_string(&ev, "Action"), "CourseEnrollment");
	ck_assert_str_eq(whr_event_string(&ev, "Course.Id"), "c-1");
	ck_assert_str_eq(whr_event_string(&ev, "Users[0].Email"), "a@x.org");
	ck_assert_str_eq(whr_event_string(&ev, "Users[1].Email"), "b@x.org");
	ck_assert_str_eq(whr_event_string(&ev, "Users[1].Tags[1]"), "t1");
	ck_assert_str_eq(whr_event_string(&ev, "Dup"), "last");
	ck_assert_uint_eq(whr_event_array_length(&ev, "Users"), 2);
	ck_assert_uint_eq(whr_event_array_length(&ev, "Users[1].Tags"), 2);
	ck_assert_uint_eq(whr_event_array_length(&ev, "Course"), 0);

	ck_assert_int_eq(whr_event_integer(&ev, "EnrollmentStatus", &i), 0);
	ck_assert_int_eq(i, 1);
	ck_assert_int_eq(whr_event_integer(&ev, "Course.Big", &i), 0);
	ck_assert_int_eq(i, 123456789012LL);
	ck_assert_int_eq(whr_event_integer(&ev, "Course.Min", &i), 0);
	ck_assert_int_eq(i, INT64_MIN);
	ck_assert_int_eq(whr_event_type(&ev, "Course.Min"), WHR_VALUE_INTEGER);
	ck_assert_int_eq(whr_event_integer(&ev, "Course.Over", &i), -EINVAL);
	ck_assert_int_eq(whr_event_type(&ev, "Course.Over"), WHR_VALUE_NUMBER);
	ck_assert_int_eq(whr_event_integer(&ev, "Course.Score", &i), -EINVAL);
	ck_assert_int_eq(whr_event_integer(&ev, "Course.Title", &i), -EINVAL);
	ck_assert_int_eq(whr_event_integer(&ev, "Course.Nope", &i), -ENOENT);
	ck_assert_int_eq(whr_event_bool(&ev, "Course.Published", &b), 0);
	ck_assert(b);
	ck_assert_int_eq(whr_event_bool(&ev, "Course.Id", &b), -EINVAL);
	ck_assert_int_eq(whr_event_bool(&ev, "Nope", &b), -ENOENT);

	ck_assert_int_eq(whr_event_type(&ev, "Course"), WHR_VALUE_OBJECT);
	ck_assert_int_eq(whr_event_type(&ev, "Users"), WHR_VALUE_ARRAY);
	ck_assert_int_eq(whr_event_type(&ev, "Course.Id"), WHR_VALUE_STRING);
	ck_assert_int_eq(whr_event_type(&ev, "Course.Big"), WHR_VALUE_INTEGER);
	ck_assert_int_eq(whr_event_type(&ev, "Course.Score"), WHR_VALUE_NUMBER);
	ck_assert_int_eq(whr_event_type(&ev, "Course.Huge"), WHR_VALUE_NUMBER);
	ck_assert_int_eq(whr_event_type(&ev, "Course.Published"), WHR_VALUE_BOOL);
	ck_assert_int_eq(whr_event_type(&ev, "Course.Nothing"), WHR_VALUE_NULL);
	/* Not a string: NULL, whatever the type. */
	ck_assert_ptr_null(whr_event_string(&ev, "Course.Big"));
	ck_assert_ptr_null(whr_event_string(&ev, "Course.Nothing"));
	ck_assert_ptr_null(whr_event_string(&ev, "Course"));
	event_finish(&ev);
}
END_TEST

START_TEST(event_bad_paths)
{
	static const char *paths[] = {
		"", ".", "..", "Course.", ".Course", "Course..Id", "course.id",
		"Users[", "Users[]", "Users[x]", "Users[-1]", "Users[2]",
		"Users[0]Email", "Users[0].", "Users.0", "[0]", "Course[0]",
		"Users[99999999999999999999]", "Course.Id.More", "a.b",
		"Users[0].[0]", "Users[ 0]",
	};
	struct whr_event ev;
	size_t i;

	make_event(&ev, NULL);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		ck_assert_msg(whr_event_type(&ev, paths[i]) == WHR_VALUE_MISSING,
			      "path '%s' found", paths[i]);
	ck_assert_int_eq(whr_event_type(&ev, NULL), WHR_VALUE_MISSING);
	event_finish(&ev);
}
END_TEST

START_TEST(event_properties)
{
	struct whr_event ev;
	const char *props = "{\"p1\":\"pv1\",\"Nested\":{\"Tenant\":\"t\"},\"n\":1}";
	size_t len;

	make_event(&ev, props);
	ck_assert_str_eq(whr_event_properties_json(&ev, &len), props);
	ck_assert_uint_eq(len, strlen(props));
	ck_assert_str_eq(whr_event_property(&ev, "p1"), "pv1");
	ck_assert_str_eq(whr_event_property(&ev, "Nested.Tenant"), "t");
	ck_assert_ptr_null(whr_event_property(&ev, "n"));
	ck_assert_ptr_null(whr_event_property(&ev, "P1"));
	event_finish(&ev);
}
END_TEST

START_TEST(event_set_reason)
{
	struct whr_event ev;

	make_event(&ev, NULL);
	ck_assert_ptr_null(event_reason(&ev));
	whr_event_set_reason(&ev, "no %s", "course");
	ck_assert_str_eq(event_reason(&ev), "no course");
	whr_event_set_reason(&ev, "replaced %d", 2);
	ck_assert_str_eq(event_reason(&ev), "replaced 2");
	event_finish(&ev);
}
END_TEST

TEST_SUITE_OF(event,
	event_envelope,
	event_paths,
	event_bad_paths,
	event_properties,
	event_set_reason)
