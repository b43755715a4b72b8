/*
 * Typed Learn365 events: the Actions, the two decoders over every sample
 * and over missing, null, wrong-type and unknown members, and the
 * TimeStamp parser. Expected microseconds were computed independently,
 * with Python's datetime (the comment by each table says how).
 */
#include <whr/lms365.h>

#include <string.h>

#include "decode.h"
#include "event.h"
#include "test-common.h"

/* ---- helpers ---- */

static void
event_from_json(struct whr_event *ev, const char *json, const char *action)
{
	struct event_fields f = {
		.receiver_id = "",
		.delivery_id = "d-1",
		.action = action,
		.attempt = 1,
		.count = 1,
		.json = json,
		.json_len = strlen(json),
	};

	event_init(ev, &f);
}

/* The sample's one notification, cut from the body as the server does
 * (envelope_decode()), and its Action; both freed by the caller. */
static char *
sample_notification(const char *name, char **action)
{
	struct envelope env;
	char err[192];
	size_t len;
	char *body = test_read_sample(name, &len);
	char *json;

	memset(&env, 0, sizeof(env));
	ck_assert_int_eq(envelope_decode(body, len, 0, &env, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(env.n_notifications, 1);
	json = strndup(body + env.notifications[0].start,
		       env.notifications[0].end - env.notifications[0].start);
	ck_assert_ptr_nonnull(json);
	*action = env.notifications[0].action != NULL ?
			  strdup(env.notifications[0].action) : NULL;
	envelope_finish(&env);
	free(body);
	return json;
}

/* ---- the samples ---- */

struct user_want {
	const char *id, *directory_object_id, *enrollment_id, *login_name,
		*title, *department, *email;
};

struct course_want {
	const char *site_id, *web_id, *id, *title, *url, *course_type;
	bool published;
};

struct sample_want {
	const char *name;
	enum whr_lms365_action action;
	int64_t status;			/* enrollment-type only */
	const char *status_text;
	struct course_want course;
	struct user_want users[2];
	size_t n_users;
	const char *timestamp;
	int64_t us;	/* Python: (datetime(..., tzinfo=timezone.utc) -
			 * datetime(1970,1,1,tzinfo=timezone.utc)) //
			 * timedelta(microseconds=1) */
};

#define SITE "b589e9bd-ec86-4a74-886f-2e89ad37d34f"
#define LMS "https://contoso.sharepoint.com/sites/LMS/"

static const struct sample_want samples[] = {
	{
		"CourseEnrollment", WHR_LMS365_COURSE_ENROLLMENT, 0,
		"Enrolled",
		{ SITE, "9bda6315-497f-4ca3-a60c-f55bc34dcce4",
		  "93e39bfc-6336-4098-820f-8608318597b1",
		  "Fire Safety Basics", LMS "FireSafetyBasics", "Course",
		  true },
		{
			{ "c5f80f38-cb2c-47a9-82fd-a7cd3d2539e7",
			  "e441573f-fa57-4c43-bc3f-5c8393b145ed",
			  "c450de69-c527-488f-a701-d95920d0ca77",
			  "i:0#.f|membership|alex.wilber@contoso.com",
			  "Alex Wilber", "Operations",
			  "alex.wilber@contoso.com" },
			{ "4522d0f2-017c-48c5-96e0-244a25d93f17",
			  "6629b393-82ac-421b-b622-fd205b765c83",
			  "dbdcee79-c23e-4b20-a696-c87bde2eadba",
			  "i:0#.f|membership|laerke.ostergaard@contoso.com",
			  /* "Lærke Østergaard", spelled in bytes */
			  "L\xc3\xa6rke \xc3\x98stergaard", "Sales (Nordics)",
			  "laerke.ostergaard@contoso.com" },
		},
		2, "2024-05-01T10:15:30.123Z", 1714558530123000LL,
	},
	{
		"CourseUnenrollment", WHR_LMS365_COURSE_UNENROLLMENT, 4,
		"Unenrolled",
		{ SITE, "2dc1c0fd-8d7c-4848-a9bb-9ca16329eabd",
		  "19992673-c32b-4deb-b3ac-d49f079c4b70",
		  "GDPR Essentials for Managers", LMS "GDPREssentials",
		  "Course", true },
		{
			{ "080ff583-f632-4042-9c04-86b87c2f117c",
			  "4960b95c-f442-4191-b341-f68c5bb74c8e",
			  "327fb820-6832-46be-9ac7-59122c5ce571",
			  "i:0#.f|membership|megan.bowen@contoso.com",
			  "Megan Bowen", "Marketing",
			  "megan.bowen@contoso.com" },
		},
		1, "2024-05-02T08:04:11.5Z", 1714637051500000LL,
	},
	{
		"CourseStarted", WHR_LMS365_COURSE_STARTED, 1, "InProgress",
		{ SITE, "df1c6a90-7179-4807-83e9-50bf03d72cb3",
		  "207247b7-4917-432b-a15a-5f2298f8f431",
		  "New Hire Onboarding", LMS "NewHireOnboarding",
		  "TrainingPlan", true },
		{
			{ "53a3fe8d-723c-40c8-855d-bf7f0f03486c",
			  "5601dfc9-2a70-470d-8af0-61b9665f3700",
			  "3c676f41-ec30-414a-bd17-858435556679",
			  "i:0#.f|membership|diego.siciliani@contoso.com",
			  "Diego Siciliani", "Human Resources",
			  "diego.siciliani@contoso.com" },
		},
		1, "2024-05-03T13:47:02.817Z", 1714744022817000LL,
	},
	{
		"CourseCompleted", WHR_LMS365_COURSE_COMPLETED, 2, "Completed",
		{ SITE, "0a2699ba-bd74-4896-954e-0ba6633a3ba1",
		  "be8df1e2-3768-4987-b1f3-db7c979d1b74",
		  "Excel for Finance: Advanced Formulas",
		  LMS "ExcelForFinance", "Course", true },
		{
			{ "670b83b7-3e7d-493c-9f73-6a4a648be326",
			  "92056324-c1a0-472a-9735-17adc203c4bb",
			  "31ed1251-abae-4250-9c7c-00b9697340f6",
			  "i:0#.f|membership|lynne.robbins@contoso.com",
			  "Lynne Robbins", "Finance",
			  "lynne.robbins@contoso.com" },
		},
		1, "2024-05-06T16:22:45.09Z", 1715012565090000LL,
	},
	{
		"EnrollmentApprovalRequest",
		WHR_LMS365_ENROLLMENT_APPROVAL_REQUEST, 3, "PendingApproval",
		{ SITE, "3755cdd1-d750-404f-85d2-2affa644269c",
		  "87007ad2-5188-4f15-bb10-abbcc95cfba3",
		  "Forklift Operator Certification",
		  LMS "ForkliftCertification", "Course", true },
		{
			{ "69db3c30-242b-4cab-8772-d4ade8c609e1",
			  "cb629046-ff8e-4d57-b84e-00d27b155490",
			  "ce572f5e-2763-437f-b9f0-280d4593e030",
			  "i:0#.f|membership|isaiah.langer@contoso.com",
			  "Isaiah Langer", "Warehouse",
			  "isaiah.langer@contoso.com" },
		},
		1, "2024-05-07T07:30:00Z", 1715067000000000LL,
	},
	{
		"CoursePublished", WHR_LMS365_COURSE_PUBLISHED, 0, NULL,
		{ SITE, "2dc1c0fd-8d7c-4848-a9bb-9ca16329eabd",
		  "19992673-c32b-4deb-b3ac-d49f079c4b70",
		  "GDPR Essentials for Managers", LMS "GDPREssentials",
		  "Course", true },
		{ { 0 } }, 0,
		"2024-04-29T09:00:12.4Z", 1714381212400000LL,
	},
	{
		"CourseUnpublished", WHR_LMS365_COURSE_UNPUBLISHED, 0, NULL,
		{ SITE, "a52dda61-26b7-4992-8355-1a4b0a36cb5e",
		  "433a873b-892b-4444-a8bf-f0cc54afe27f",
		  "Onboarding 2023 (archived)", LMS "Onboarding2023",
		  "TrainingPlan", false },
		{ { 0 } }, 0,
		"2024-05-08T11:59:58.003Z", 1715169598003000LL,
	},
};

static void
check_course(const struct whr_lms365_course *c, const struct course_want *w)
{
	ck_assert_str_eq(c->site_id, w->site_id);
	ck_assert_str_eq(c->web_id, w->web_id);
	ck_assert_str_eq(c->id, w->id);
	ck_assert_str_eq(c->title, w->title);
	ck_assert_str_eq(c->url, w->url);
	ck_assert_str_eq(c->course_type, w->course_type);
	ck_assert(c->has_published);
	ck_assert_int_eq(c->published, w->published);
}

static void
check_user(const struct whr_lms365_user *u, const struct user_want *w)
{
	ck_assert_str_eq(u->id, w->id);
	ck_assert_str_eq(u->directory_object_id, w->directory_object_id);
	ck_assert_str_eq(u->enrollment_id, w->enrollment_id);
	ck_assert_str_eq(u->login_name, w->login_name);
	ck_assert_str_eq(u->title, w->title);
	ck_assert_str_eq(u->department, w->department);
	ck_assert_str_eq(u->email, w->email);
}

START_TEST(lms365_samples)
{
	const struct sample_want *w = &samples[_i];
	struct whr_event ev;
	char *action = NULL;
	char *json = sample_notification(w->name, &action);
	enum whr_lms365_action a = whr_lms365_action_parse(action);
	size_t k;

	ck_assert_str_eq(action, w->name);
	ck_assert_int_eq(a, w->action);
	event_from_json(&ev, json, action);
	if (whr_lms365_is_enrollment(a)) {
		struct whr_lms365_enrollment e;

		ck_assert(!whr_lms365_is_course(a));
		ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, &e), 0);
		ck_assert_int_eq(e.action, w->action);
		ck_assert(e.has_status);
		ck_assert_int_eq(e.status, w->status);
		ck_assert_str_eq(e.status_text, w->status_text);
		check_course(&e.course, &w->course);
		ck_assert_uint_eq(e.n_users, w->n_users);
		for (k = 0; k < w->n_users; k++)
			check_user(&e.users[k], &w->users[k]);
		ck_assert_str_eq(e.timestamp.text, w->timestamp);
		ck_assert(e.timestamp.valid);
		ck_assert_int_eq(e.timestamp.us, w->us);
	} else {
		struct whr_lms365_course_event c;

		ck_assert(whr_lms365_is_course(a));
		ck_assert_int_eq(whr_lms365_course_decode(&ev, &c), 0);
		ck_assert_int_eq(c.action, w->action);
		check_course(&c.course, &w->course);
		ck_assert_str_eq(c.timestamp.text, w->timestamp);
		ck_assert(c.timestamp.valid);
		ck_assert_int_eq(c.timestamp.us, w->us);
	}
	ck_assert_ptr_null(event_reason(&ev));
	event_finish(&ev);
	free(json);
	free(action);
}
END_TEST

/* Decoding twice gives the same borrowed strings, and both users arrays
 * stay valid until event_finish() (valgrind and ASan would notice). */
START_TEST(lms365_decode_twice)
{
	struct whr_event ev;
	struct whr_lms365_enrollment a, b;
	char *action = NULL;
	char *json = sample_notification("CourseEnrollment", &action);

	event_from_json(&ev, json, action);
	ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, &a), 0);
	ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, &b), 0);
	ck_assert_ptr_eq(a.course.title, b.course.title);
	ck_assert_uint_eq(a.n_users, 2);
	ck_assert_str_eq(a.users[1].email, b.users[1].email);
	ck_assert_str_eq(a.users[0].email, "alex.wilber@contoso.com");
	event_finish(&ev);
	free(json);
	free(action);
}
END_TEST

/* ---- missing, null, unknown ---- */

/* A course of which the event said nothing (or only nulls): no member
 * read. */
static void
assert_no_course(const struct whr_lms365_course *c)
{
	const struct {
		const char *member;
		const char *value;
	} texts[] = {
		{ "Id", c->id }, { "Title", c->title }, { "Url", c->url },
		{ "CourseType", c->course_type }, { "SiteId", c->site_id },
		{ "WebId", c->web_id },
	};
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		ck_assert_msg(texts[i].value == NULL, "Course.%s: '%s'",
			      texts[i].member, texts[i].value);
	ck_assert(!c->has_published);
}

START_TEST(lms365_enrollment_missing)
{
	static const char *const cases[] = {
		"{}",
		"{\"Action\":\"CourseStarted\"}",
		("{\"EnrollmentStatus\":null,\"EnrollmentStatusText\":null,"
		 "\"Course\":null,\"Users\":null,\"TimeStamp\":null}"),
	};
	struct whr_lms365_enrollment e;
	struct whr_event ev;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		event_from_json(&ev, cases[i], "CourseStarted");
		memset(&e, 0xa5, sizeof(e));
		ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, &e), 0);
		ck_assert_int_eq(e.action, WHR_LMS365_COURSE_STARTED);
		ck_assert(!e.has_status);
		ck_assert_int_eq(e.status, 0);
		ck_assert_ptr_null(e.status_text);
		assert_no_course(&e.course);
		ck_assert_uint_eq(e.n_users, 0);
		ck_assert_ptr_null(e.users);
		ck_assert_ptr_null(e.timestamp.text);
		ck_assert(!e.timestamp.valid);
		ck_assert_ptr_null(event_reason(&ev));
		event_finish(&ev);
	}
}
END_TEST

START_TEST(lms365_enrollment_nulls_inside)
{
	static const char json[] =
		"{\"Course\":{\"Id\":null,\"Title\":\"T\",\"Url\":null,"
		"\"CourseType\":null,\"SiteId\":null,\"WebId\":null,"
		"\"Published\":null},"
		"\"Users\":[{\"Id\":null,\"Email\":null,\"Title\":null,"
		"\"LoginName\":null,\"Department\":null,"
		"\"DirectoryObjectId\":null,\"EnrollmentId\":null},{}],"
		"\"EnrollmentStatus\":7}";
	struct whr_lms365_enrollment e;
	struct whr_event ev;
	size_t k;

	event_from_json(&ev, json, NULL);
	ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, &e), 0);
	ck_assert_int_eq(e.action, WHR_LMS365_UNKNOWN);
	ck_assert(e.has_status);
	ck_assert_int_eq(e.status, 7);
	ck_assert_ptr_null(e.course.id);
	ck_assert_str_eq(e.course.title, "T");
	ck_assert_ptr_null(e.course.url);
	ck_assert(!e.course.has_published);
	ck_assert(!e.course.published);
	ck_assert_uint_eq(e.n_users, 2);
	for (k = 0; k < 2; k++) {
		ck_assert_ptr_null(e.users[k].id);
		ck_assert_ptr_null(e.users[k].email);
		ck_assert_ptr_null(e.users[k].title);
		ck_assert_ptr_null(e.users[k].login_name);
		ck_assert_ptr_null(e.users[k].department);
		ck_assert_ptr_null(e.users[k].directory_object_id);
		ck_assert_ptr_null(e.users[k].enrollment_id);
	}
	event_finish(&ev);
}
END_TEST

START_TEST(lms365_enrollment_empty_users)
{
	struct whr_lms365_enrollment e;
	struct whr_event ev;

	event_from_json(&ev, "{\"Users\":[],\"EnrollmentStatus\":-3,"
			"\"Course\":{}}", "CourseEnrollment");
	ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, &e), 0);
	ck_assert_uint_eq(e.n_users, 0);
	ck_assert_ptr_null(e.users);
	ck_assert(e.has_status);
	ck_assert_int_eq(e.status, -3);
	ck_assert_ptr_null(e.course.id);
	event_finish(&ev);
}
END_TEST

START_TEST(lms365_course_missing)
{
	static const char *const cases[] = {
		"{}",
		"{\"Id\":null,\"Title\":null,\"Url\":null,\"CourseType\":null,"
		"\"SiteId\":null,\"WebId\":null,\"Published\":null,"
		"\"TimeStamp\":null}",
	};
	struct whr_lms365_course_event c;
	struct whr_event ev;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		event_from_json(&ev, cases[i], "coursedeleted");
		memset(&c, 0xa5, sizeof(c));
		ck_assert_int_eq(whr_lms365_course_decode(&ev, &c), 0);
		ck_assert_int_eq(c.action, WHR_LMS365_COURSE_DELETED);
		assert_no_course(&c.course);
		ck_assert_ptr_null(c.timestamp.text);
		ck_assert(!c.timestamp.valid);
		event_finish(&ev);
	}
}
END_TEST

START_TEST(lms365_unknown_members)
{
	static const char enrollment[] =
		"{\"Extra\":{\"Deep\":[1,2,{}]},\"EnrollmentStatus\":1,"
		"\"Course\":{\"Id\":\"c\",\"Rating\":4.5,\"Tags\":[]},"
		"\"Users\":[{\"Id\":\"u\",\"Manager\":{\"Id\":7},"
		"\"Email\":\"u@x\"}],\"users\":5,\"course\":\"x\","
		"\"TimeStamp\":\"2024-05-07T07:30:00Z\",\"Flag\":true}";
	static const char course[] =
		"{\"Id\":\"c\",\"Course\":42,\"Users\":\"nope\","
		"\"published\":\"x\",\"Published\":false,"
		"\"EnrollmentStatus\":\"x\"}";
	struct whr_lms365_enrollment e;
	struct whr_lms365_course_event c;
	struct whr_event ev;

	event_from_json(&ev, enrollment, "CourseCompleted");
	ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, &e), 0);
	ck_assert_str_eq(e.course.id, "c");
	ck_assert_uint_eq(e.n_users, 1);
	ck_assert_str_eq(e.users[0].id, "u");
	ck_assert_str_eq(e.users[0].email, "u@x");
	ck_assert_int_eq(e.timestamp.us, 1715067000000000LL);
	event_finish(&ev);

	/* For a course-type event, Course and Users are unknown members. */
	event_from_json(&ev, course, "CourseCreated");
	ck_assert_int_eq(whr_lms365_course_decode(&ev, &c), 0);
	ck_assert_int_eq(c.action, WHR_LMS365_COURSE_CREATED);
	ck_assert_str_eq(c.course.id, "c");
	ck_assert(c.course.has_published);
	ck_assert(!c.course.published);
	event_finish(&ev);
}
END_TEST

/* A member given twice: the last counts, as for the field paths. */
START_TEST(lms365_duplicate_members)
{
	struct whr_lms365_course_event c;
	struct whr_event ev;

	event_from_json(&ev, "{\"Title\":5,\"Title\":\"last\","
			"\"Published\":true,\"Published\":false}", NULL);
	ck_assert_int_eq(whr_lms365_course_decode(&ev, &c), 0);
	ck_assert_str_eq(c.course.title, "last");
	ck_assert(!c.course.published);
	ck_assert_str_eq(c.course.title, whr_event_string(&ev, "Title"));
	event_finish(&ev);
}
END_TEST

/* ---- wrong types ---- */

struct bad_case {
	bool course_event;	/* whr_lms365_course_decode() */
	const char *json;
	const char *reason;
};

static const struct bad_case bad_cases[] = {
	{ false, "{\"Course\":{\"Title\":12}}",
	  "Course.Title: expected a string, got a number" },
	{ false, "{\"Course\":{\"Id\":{}}}",
	  "Course.Id: expected a string, got an object" },
	{ false, "{\"Course\":{\"Url\":[]}}",
	  "Course.Url: expected a string, got an array" },
	{ false, "{\"Course\":{\"CourseType\":true}}",
	  "Course.CourseType: expected a string, got a boolean" },
	{ false, "{\"Course\":{\"SiteId\":1.5}}",
	  "Course.SiteId: expected a string, got a number" },
	{ false, "{\"Course\":{\"WebId\":false}}",
	  "Course.WebId: expected a string, got a boolean" },
	{ false, "{\"Course\":{\"Published\":\"true\"}}",
	  "Course.Published: expected a boolean, got a string" },
	{ false, "{\"Course\":{\"Published\":1}}",
	  "Course.Published: expected a boolean, got a number" },
	{ false, "{\"Course\":[]}",
	  "Course: expected an object, got an array" },
	{ false, "{\"Course\":\"c-1\"}",
	  "Course: expected an object, got a string" },
	{ false, "{\"Users\":{}}",
	  "Users: expected an array, got an object" },
	{ false, "{\"Users\":\"u\"}",
	  "Users: expected an array, got a string" },
	{ false, "{\"Users\":[{},{},\"x\"]}",
	  "Users[2]: expected an object, got a string" },
	{ false, "{\"Users\":[7]}",
	  "Users[0]: expected an object, got a number" },
	{ false, "{\"Users\":[{},[]]}",
	  "Users[1]: expected an object, got an array" },
	{ false, "{\"Users\":[{},null]}",
	  "Users[1]: expected an object, got null" },
	{ false, "{\"Users\":[{\"Id\":\"a\"},{\"Email\":5}]}",
	  "Users[1].Email: expected a string, got a number" },
	{ false, "{\"Users\":[{\"Title\":true}]}",
	  "Users[0].Title: expected a string, got a boolean" },
	{ false, "{\"Users\":[{\"LoginName\":{}}]}",
	  "Users[0].LoginName: expected a string, got an object" },
	{ false, "{\"Users\":[{\"Department\":[]}]}",
	  "Users[0].Department: expected a string, got an array" },
	{ false, "{\"Users\":[{\"DirectoryObjectId\":1}]}",
	  "Users[0].DirectoryObjectId: expected a string, got a number" },
	{ false, "{\"Users\":[{\"EnrollmentId\":0}]}",
	  "Users[0].EnrollmentId: expected a string, got a number" },
	{ false, "{\"Users\":[{\"Id\":false}]}",
	  "Users[0].Id: expected a string, got a boolean" },
	{ false, "{\"EnrollmentStatus\":1.5}",
	  "EnrollmentStatus: expected an integer, got a number" },
	{ false, "{\"EnrollmentStatus\":2.0}",
	  "EnrollmentStatus: expected an integer, got a number" },
	{ false, "{\"EnrollmentStatus\":1e2}",
	  "EnrollmentStatus: expected an integer, got a number" },
	{ false, "{\"EnrollmentStatus\":9223372036854775808}",
	  "EnrollmentStatus: expected an integer, got a number" },
	{ false, "{\"EnrollmentStatus\":\"2\"}",
	  "EnrollmentStatus: expected an integer, got a string" },
	{ false, "{\"EnrollmentStatusText\":2}",
	  "EnrollmentStatusText: expected a string, got a number" },
	{ false, "{\"TimeStamp\":1714558530}",
	  "TimeStamp: expected a string, got a number" },
	{ false, "{\"TimeStamp\":\"yesterday\"}",
	  "TimeStamp: not an ISO 8601 date-time: \"yesterday\"" },
	{ false, "{\"TimeStamp\":\"\"}",
	  "TimeStamp: not an ISO 8601 date-time: \"\"" },
	/* Cut to 40 bytes, at a character boundary; quotes escaped. */
	{ false, "{\"TimeStamp\":\"2024-05-01T10:15:30.123Z and then "
		 "some more text that goes on\"}",
	  "TimeStamp: not an ISO 8601 date-time: "
	  "\"2024-05-01T10:15:30.123Z and then some m\"..." },
	{ false, "{\"TimeStamp\":\"a\\\"b\\\\c\\td\"}",
	  "TimeStamp: not an ISO 8601 date-time: \"a\\\"b\\\\c\\x09d\"" },
	{ false, "{\"TimeStamp\":\"0123456789012345678901234567890123456789"
		 "\xc3\xa6\"}",
	  "TimeStamp: not an ISO 8601 date-time: "
	  "\"0123456789012345678901234567890123456789\"..." },
	{ false, "{\"TimeStamp\":\"012345678901234567890123456789012345678"
		 "\xc3\xa6\"}",
	  "TimeStamp: not an ISO 8601 date-time: "
	  "\"012345678901234567890123456789012345678\"..." },
	{ false, "{\"TimeStamp\":\"\xc3\xa6-\"}",
	  "TimeStamp: not an ISO 8601 date-time: \"\xc3\xa6-\"" },
	/* The course-type (flat) members. */
	{ true, "{\"Id\":5}", "Id: expected a string, got a number" },
	{ true, "{\"Title\":[]}", "Title: expected a string, got an array" },
	{ true, "{\"Url\":{}}", "Url: expected a string, got an object" },
	{ true, "{\"CourseType\":1}",
	  "CourseType: expected a string, got a number" },
	{ true, "{\"SiteId\":true}",
	  "SiteId: expected a string, got a boolean" },
	{ true, "{\"WebId\":0.1}", "WebId: expected a string, got a number" },
	{ true, "{\"Published\":\"no\"}",
	  "Published: expected a boolean, got a string" },
	{ true, "{\"TimeStamp\":false}",
	  "TimeStamp: expected a string, got a boolean" },
	{ true, "{\"TimeStamp\":\"2023-02-29T00:00:00Z\"}",
	  "TimeStamp: not an ISO 8601 date-time: \"2023-02-29T00:00:00Z\"" },
	/* Not an object at all: cannot come from the server, must not
	 * crash. */
	{ true, "[]", "notification: expected an object, got an array" },
	{ false, "\"x\"", "notification: expected an object, got a string" },
	{ false, "null", "notification: expected an object, got null" },
};

START_TEST(lms365_wrong_type)
{
	const struct bad_case *c = &bad_cases[_i];
	struct whr_event ev;
	int rc;

	event_from_json(&ev, c->json, "CourseEnrollment");
	if (c->course_event) {
		struct whr_lms365_course_event out;

		rc = whr_lms365_course_decode(&ev, &out);
		ck_assert_ptr_null(out.course.id);
		ck_assert_ptr_null(out.timestamp.text);
	} else {
		struct whr_lms365_enrollment out;

		rc = whr_lms365_enrollment_decode(&ev, &out);
		/* Failure leaves nothing half-filled behind. */
		ck_assert_ptr_null(out.users);
		ck_assert_uint_eq(out.n_users, 0);
		ck_assert_ptr_null(out.timestamp.text);
	}
	ck_assert_msg(rc == -EINVAL, "%s: %d", c->json, rc);
	ck_assert_ptr_nonnull(event_reason(&ev));
	ck_assert_str_eq(event_reason(&ev), c->reason);
	event_finish(&ev);
}
END_TEST

/* One wrong member among the right ones of a real notification (the
 * first learner's department) fails the whole decoding. */
START_TEST(lms365_wrong_type_among_good)
{
	struct whr_lms365_enrollment e;
	struct whr_event ev;
	char *action = NULL;
	char *json = sample_notification("CourseEnrollment", &action);
	char *p = strstr(json, "\"Operations\"");

	ck_assert_ptr_nonnull(p);
	memcpy(p, "123456789012", 12);	/* "Operations" -> a number */
	event_from_json(&ev, json, action);
	ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, &e), -EINVAL);
	ck_assert_str_eq(event_reason(&ev), "Users[0].Department: "
			 "expected a string, got a number");
	event_finish(&ev);
	free(json);
	free(action);
}
END_TEST

START_TEST(lms365_no_json)
{
	struct whr_event ev;
	struct whr_lms365_enrollment e;
	struct whr_lms365_course_event c;
	struct event_fields f = { .receiver_id = "" };

	event_init(&ev, &f);
	ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, &e), -EINVAL);
	ck_assert_str_eq(event_reason(&ev), "notification: missing");
	ck_assert_int_eq(whr_lms365_course_decode(&ev, &c), -EINVAL);
	ck_assert_int_eq(whr_lms365_enrollment_decode(NULL, &e), -EINVAL);
	ck_assert_int_eq(whr_lms365_enrollment_decode(&ev, NULL), -EINVAL);
	ck_assert_int_eq(whr_lms365_course_decode(NULL, &c), -EINVAL);
	ck_assert_int_eq(whr_lms365_course_decode(&ev, NULL), -EINVAL);
	event_finish(&ev);
}
END_TEST

/* ---- Actions ---- */

static const struct {
	const char *name;
	enum whr_lms365_action action;
	bool enrollment;
} actions[] = {
	{ "CourseEnrollment", WHR_LMS365_COURSE_ENROLLMENT, true },
	{ "CourseUnenrollment", WHR_LMS365_COURSE_UNENROLLMENT, true },
	{ "CourseStarted", WHR_LMS365_COURSE_STARTED, true },
	{ "CourseCompleted", WHR_LMS365_COURSE_COMPLETED, true },
	{ "EnrollmentApprovalRequest", WHR_LMS365_ENROLLMENT_APPROVAL_REQUEST,
	  true },
	{ "CoursePublished", WHR_LMS365_COURSE_PUBLISHED, false },
	{ "CourseUnpublished", WHR_LMS365_COURSE_UNPUBLISHED, false },
	{ "CourseCreated", WHR_LMS365_COURSE_CREATED, false },
	{ "CourseDeleted", WHR_LMS365_COURSE_DELETED, false },
};

START_TEST(lms365_actions)
{
	char lower[64], upper[64];
	size_t i, k;

	for (i = 0; i < sizeof(actions) / sizeof(*actions); i++) {
		const char *name = actions[i].name;

		ck_assert_int_eq(actions[i].action, (int)i + 1);
		ck_assert_int_eq(whr_lms365_action_parse(name),
				 actions[i].action);
		ck_assert_str_eq(whr_lms365_action_name(actions[i].action),
				 name);
		ck_assert_int_eq(whr_lms365_action_parse(
				 whr_lms365_action_name(actions[i].action)),
				 actions[i].action);
		for (k = 0; name[k] != '\0'; k++) {
			lower[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ?
						  name[k] + 32 : name[k]);
			upper[k] = (char)(name[k] >= 'a' && name[k] <= 'z' ?
						  name[k] - 32 : name[k]);
		}
		lower[k] = upper[k] = '\0';
		ck_assert_int_eq(whr_lms365_action_parse(lower),
				 actions[i].action);
		ck_assert_int_eq(whr_lms365_action_parse(upper),
				 actions[i].action);
		ck_assert_int_eq(whr_lms365_is_enrollment(actions[i].action),
				 actions[i].enrollment);
		ck_assert_int_eq(whr_lms365_is_course(actions[i].action),
				 !actions[i].enrollment);
	}
}
END_TEST

START_TEST(lms365_actions_unknown)
{
	static const char *const unknown[] = {
		"", "Course", "CourseEnrollments", " CourseEnrollment",
		"CourseEnrollment ", "Course Enrollment", "Unknown",
		"CourseEnro\xc4\xb1lment",
	};
	size_t i;

	ck_assert_int_eq(whr_lms365_action_parse(NULL), WHR_LMS365_UNKNOWN);
	for (i = 0; i < sizeof(unknown) / sizeof(*unknown); i++)
		ck_assert_int_eq(whr_lms365_action_parse(unknown[i]),
				 WHR_LMS365_UNKNOWN);
	ck_assert_ptr_null(whr_lms365_action_name(WHR_LMS365_UNKNOWN));
	ck_assert_ptr_null(whr_lms365_action_name(
		(enum whr_lms365_action)(WHR_LMS365_COURSE_DELETED + 1)));
	ck_assert_ptr_null(whr_lms365_action_name((enum whr_lms365_action)-1));
	ck_assert(!whr_lms365_is_enrollment(WHR_LMS365_UNKNOWN));
	ck_assert(!whr_lms365_is_course(WHR_LMS365_UNKNOWN));
	ck_assert(!whr_lms365_is_course(
		(enum whr_lms365_action)(WHR_LMS365_COURSE_DELETED + 1)));
	ck_assert(!whr_lms365_is_enrollment((enum whr_lms365_action)-1));
}
END_TEST

/* ---- time ---- */

/* Expected values from Python:
 *   (datetime(Y, M, D, h, m, s, us, tzinfo=timezone(timedelta(...))) -
 *    datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
 */
static const struct {
	const char *text;
	int64_t us;
} good_times[] = {
	{ "1970-01-01T00:00:00Z", 0LL },
	{ "1970-01-01T00:00:00", 0LL },
	{ "2024-05-07T07:30:00Z", 1715067000000000LL },
	{ "2024-05-06T16:22:45.09Z", 1715012565090000LL },
	{ "2024-05-02T08:04:11.5Z", 1714637051500000LL },
	{ "2024-05-01T10:15:30.123Z", 1714558530123000LL },
	{ "2024-02-29T12:00:00+05:30", 1709188200000000LL },
	{ "2024-02-29T12:00:00-08:00", 1709236800000000LL },
	{ "2024-02-29T12:00:00+0530", 1709188200000000LL },
	{ "2024-02-29T12:00:00-0945", 1709243100000000LL },
	{ "2000-02-29T23:59:59.1234567", 951868799123456LL },
	{ "2023-12-31T23:59:59.999999999z", 1704067199999999LL },
	{ "2024-05-06T16:22:45.0000001+00:00", 1715012565000000LL },
	{ "1969-12-31T23:59:59.5Z", -500000LL },
	{ "1900-03-01T00:00:00Z", -2203891200000000LL },
	{ "0001-01-01T00:00:00Z", -62135596800000000LL },
	{ "9999-12-31T23:59:59.999999Z", 253402300799999999LL },
	{ "1970-01-01T00:00:00-00:01", 60000000LL },
	{ "1970-01-01T00:00:00+23:59", -86340000000LL },
	{ "1970-01-01T00:00:00.000000000000000000000000000001Z", 0LL },
};

static const char *const bad_times[] = {
	"",
	"2023-02-29T00:00:00Z",		/* not a leap year */
	"1900-02-29T00:00:00Z",		/* nor is 1900 */
	"2024-13-01T00:00:00Z",
	"2024-00-01T00:00:00Z",
	"2024-04-31T00:00:00Z",
	"2024-01-00T00:00:00Z",
	"2024-01-32T00:00:00Z",
	"2024-01-01T24:00:00Z",
	"2024-01-01T23:60:00Z",
	"2024-01-01T23:59:60Z",		/* no leap seconds */
	"2024-01-01T23:59Z",		/* no seconds */
	"2024-01-01T23:59",
	"2024-01-01",
	"2024-01-01T10:15:30Zjunk",
	"2024-01-01T10:15:30Z ",
	" 2024-01-01T10:15:30Z",
	"2024-01-01T10:15:30.123Zx",
	"2024-01-01T10:15:30+05:30x",
	"yesterday",
	"YYYY-MM-DDTHH:MM:SSZ",
	"2024-O1-01T10:15:30Z",
	"2024-01-01T10:15:30+25:00",
	"2024-01-01T10:15:30+05:60",
	"2024-01-01T10:15:30+5:30",
	"2024-01-01T10:15:30+05:3",
	"2024-01-01T10:15:30+05",
	"2024-01-01T10:15:30+",
	"2024-01-01T10:15:30.Z",
	"2024-01-01T10:15:30.",
	"2024-01-01T10:15:30.+01:00",
	"2024-01-01T10:15:30,5Z",
	"2024-01-01 10:15:30Z",
	"0000-01-01T00:00:00Z",
	"10000-01-01T00:00:00Z",
	"-001-01-01T00:00:00Z",
	"24-01-01T10:15:30Z",
	"2024-1-01T10:15:30Z",
	"2024-01-01T1:15:30Z",
	"20240101T101530Z",
	"2024-01-01T10:15:30ZZ",
	"2024-01-01T10:15:30z+01:00",
};

START_TEST(lms365_time_good)
{
	int64_t us = 42;

	ck_assert_msg(whr_lms365_parse_time(good_times[_i].text, &us) == 0,
		      "refused %s", good_times[_i].text);
	ck_assert_msg(us == good_times[_i].us, "%s: %lld, want %lld",
		      good_times[_i].text, (long long)us,
		      (long long)good_times[_i].us);
}
END_TEST

START_TEST(lms365_time_bad)
{
	int64_t us = 42;

	ck_assert_msg(whr_lms365_parse_time(bad_times[_i], &us) == -EINVAL,
		      "accepted \"%s\"", bad_times[_i]);
	ck_assert_int_eq(us, 42);
}
END_TEST

START_TEST(lms365_time_null)
{
	int64_t us = 42;

	ck_assert_int_eq(whr_lms365_parse_time(NULL, &us), -EINVAL);
	ck_assert_int_eq(us, 42);
	ck_assert_int_eq(whr_lms365_parse_time("1970-01-01T00:00:00Z", NULL),
			 -EINVAL);
}
END_TEST

TEST_SUITE(lms365)
{
	TCase *tc;

	tc = tcase_create("samples");
	tcase_add_loop_test(tc, lms365_samples, 0,
			    sizeof(samples) / sizeof(*samples));
	tcase_add_test(tc, lms365_decode_twice);
	suite_add_tcase(s, tc);

	ADD_CASE(s, "missing", lms365_enrollment_missing,
		 lms365_enrollment_nulls_inside, lms365_enrollment_empty_users,
		 lms365_course_missing, lms365_no_json);
	ADD_CASE(s, "unknown_members", lms365_unknown_members,
		 lms365_duplicate_members);

	tc = tcase_create("wrong_type");
	tcase_add_loop_test(tc, lms365_wrong_type, 0,
			    sizeof(bad_cases) / sizeof(*bad_cases));
	tcase_add_test(tc, lms365_wrong_type_among_good);
	suite_add_tcase(s, tc);

	ADD_CASE(s, "actions", lms365_actions, lms365_actions_unknown);

	tc = tcase_create("time");
	tcase_add_loop_test(tc, lms365_time_good, 0,
			    sizeof(good_times) / sizeof(*good_times));
	tcase_add_loop_test(tc, lms365_time_bad, 0,
			    sizeof(bad_times) / sizeof(*bad_times));
	tcase_add_test(tc, lms365_time_null);
	suite_add_tcase(s, tc);
}
