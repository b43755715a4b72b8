/*
 * Newtonsoft-style JSON formatting, paths and delivery bodies
 * (receiver/cmd: json-format.c, json-tree.c, delivery.c, samples.c).
 */
#include <string.h>

#include "test-common.h"

#include "delivery.h"
#include "json-tree.h"
#include "samples.h"

/* Reformat @p in (NUL-terminated) and compare with @p want. */
static void
assert_format(const char *in, enum json_style style, const char *want)
{
	char err[256] = "";
	size_t len = 0;
	char *out = json_reformat(in, strlen(in), style, &len, err,
				  sizeof(err));

	ck_assert_msg(out != NULL, "refused %s: %s", in, err);
	ck_assert_msg(strcmp(out, want) == 0, "input %s\n got: %s\nwant: %s",
		      in, out, want);
	ck_assert_uint_eq(len, strlen(want));
	free(out);
}

START_TEST(json_format_indented_nested)
{
	assert_format("{\"a\":1,\"b\":{\"c\":[1,2,{\"d\":null}],\"e\":true},"
		      "\"f\":\"x\"}", JSON_STYLE_INDENTED_CRLF,
		      "{\r\n"
		      "  \"a\": 1,\r\n"
		      "  \"b\": {\r\n"
		      "    \"c\": [\r\n"
		      "      1,\r\n"
		      "      2,\r\n"
		      "      {\r\n"
		      "        \"d\": null\r\n"
		      "      }\r\n"
		      "    ],\r\n"
		      "    \"e\": true\r\n"
		      "  },\r\n"
		      "  \"f\": \"x\"\r\n"
		      "}");
	/* whitespace in the input does not matter; arrays of arrays */
	assert_format(" [ [ ] , [ [ 1 ] ] , false ] ", JSON_STYLE_INDENTED_CRLF,
		      "[\r\n  [],\r\n  [\r\n    [\r\n      1\r\n    ]\r\n  ],\r\n"
		      "  false\r\n]");
	/* any value at the top */
	assert_format("\"s\"", JSON_STYLE_INDENTED_CRLF, "\"s\"");
	assert_format("-12.5e3", JSON_STYLE_INDENTED_CRLF, "-12.5e3");
}
END_TEST

START_TEST(json_format_empty_containers)
{
	assert_format("{}", JSON_STYLE_INDENTED_CRLF, "{}");
	assert_format("[]", JSON_STYLE_INDENTED_CRLF, "[]");
	assert_format("{\"a\":{},\"b\":[],\"c\":[{}],\"d\":[[]]}",
		      JSON_STYLE_INDENTED_CRLF,
		      "{\r\n  \"a\": {},\r\n  \"b\": [],\r\n  \"c\": [\r\n"
		      "    {}\r\n  ],\r\n  \"d\": [\r\n    []\r\n  ]\r\n}");
	assert_format("{\"a\":{},\"b\":[]}", JSON_STYLE_COMPACT,
		      "{\"a\":{},\"b\":[]}");
}
END_TEST

START_TEST(json_format_control_characters)
{
	/* Every U+0000..U+001F, given as an escape, written back as
	 * Newtonsoft writes it: five short forms, else \u00xx lowercase. */
	unsigned c;

	for (c = 0; c < 0x20; c++) {
		char in[16];
		char want[16];

		snprintf(in, sizeof(in), "\"\\u%04X\"", c);
		switch (c) {
		case '\b': snprintf(want, sizeof(want), "\"\\b\""); break;
		case '\t': snprintf(want, sizeof(want), "\"\\t\""); break;
		case '\n': snprintf(want, sizeof(want), "\"\\n\""); break;
		case '\f': snprintf(want, sizeof(want), "\"\\f\""); break;
		case '\r': snprintf(want, sizeof(want), "\"\\r\""); break;
		default:
			snprintf(want, sizeof(want), "\"\\u%04x\"", c);
			break;
		}
		assert_format(in, JSON_STYLE_COMPACT, want);
	}
	/* the same in a member name, amid text */
	assert_format("{\"a\\u001Fb\\u0000c\":\"x\\ty\"}", JSON_STYLE_COMPACT,
		      "{\"a\\u001fb\\u0000c\":\"x\\ty\"}");
}
END_TEST

static const struct {
	const char *in;
	const char *want;
} escape_cases[] = {
	{ "\"say \\\"hi\\\"\"", "\"say \\\"hi\\\"\"" },	/* quotes */
	{ "\"a\\\\b\"", "\"a\\\\b\"" },			/* backslash */
	{ "\"a\\/b\"", "\"a/b\"" },			/* solidus: raw */
	{ "\"it's <b>&amp;</b>\"", "\"it's <b>&amp;</b>\"" },
	{ "\"\\u007f\"", "\"\x7f\"" },			/* DEL: raw */
	{ "\"\\u2028|\\u2029\"", "\"\\u2028|\\u2029\"" },
	{ "\"\xe2\x80\xa8|\xe2\x80\xa9\"", "\"\\u2028|\\u2029\"" },
	{ "\"\\u0085\"", "\"\\u0085\"" },		/* NEL */
	{ "\"\xc2\x85\"", "\"\\u0085\"" },
	{ "\"\\u00e9\\u00C6\"", "\"\xc3\xa9\xc3\x86\"" },	/* non-ASCII: raw */
	{ "\"L\xc3\xa6rke \xc3\x98\"", "\"L\xc3\xa6rke \xc3\x98\"" },
	{ "\"\\u20ac \\ud83d\\ude00\"", "\"\xe2\x82\xac \xf0\x9f\x98\x80\"" },
	{ "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"" },
	{ "\"\\u00a0\\u2027\\u202a\"", "\"\xc2\xa0\xe2\x80\xa7\xe2\x80\xaa\"" },
};

START_TEST(json_format_escapes)
{
	size_t i;

	for (i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++)
		assert_format(escape_cases[i].in, JSON_STYLE_COMPACT,
			      escape_cases[i].want);
}
END_TEST

START_TEST(json_format_numbers_verbatim)
{
	assert_format("[1.50,-0,1e+10,1E-2,0.0,12345678901234567890123,"
		      "-9223372036854775809,1.7976931348623157e309]",
		      JSON_STYLE_COMPACT,
		      "[1.50,-0,1e+10,1E-2,0.0,12345678901234567890123,"
		      "-9223372036854775809,1.7976931348623157e309]");
}
END_TEST

START_TEST(json_format_styles)
{
	const char *in = "{\"a\":[1,{\"b\":\"c\"}],\"d\":{}}";

	assert_format(in, JSON_STYLE_INDENTED_LF,
		      "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"c\"\n"
		      "    }\n  ],\n  \"d\": {}\n}");
	assert_format(in, JSON_STYLE_COMPACT, in);
	assert_format("{ \"a\" : [ 1 , { \"b\" : \"c\" } ] , \"d\" : { } }",
		      JSON_STYLE_COMPACT, in);
}
END_TEST

static const char *const invalid_json[] = {
	"",
	"   ",
	"{",
	"{\"a\":}",
	"[1,]",
	"{\"a\":1} x",
	"{\"a\":1}{}",
	"{'a':1}",
	"{a:1}",
	"/* c */ {}",
	"\xef\xbb\xbf{}",		/* a byte order mark */
	"01",
	"1.",
	"NaN",
	"\"tab\there\"",		/* raw control character */
	"\"\xff\"",			/* not UTF-8 */
	"\"\xc0\x80\"",			/* overlong */
	"\"\xed\xa0\x80\"",		/* an encoded surrogate */
	"\"\xf4\x90\x80\x80\"",		/* beyond U+10FFFF */
	"\"\\ud800\"",			/* lone high surrogate */
	"\"\\udc00\"",			/* lone low surrogate */
	"\"\\ud800\\u0041\"",		/* high surrogate, then not a low one */
	"\"\\x41\"",
};

START_TEST(json_format_invalid_refused)
{
	size_t i;

	for (i = 0; i < sizeof(invalid_json) / sizeof(invalid_json[0]); i++) {
		char err[256] = "";
		char *out = json_reformat(invalid_json[i],
					  strlen(invalid_json[i]),
					  JSON_STYLE_COMPACT, NULL, err,
					  sizeof(err));

		ck_assert_msg(out == NULL, "accepted %s as %s", invalid_json[i],
			      out);
		ck_assert_msg(strlen(err) > 10, "no reason for %s",
			      invalid_json[i]);
		ck_assert_msg(strstr(err, "invalid") != NULL ||
			      strstr(err, "UTF-8") != NULL,
			      "reason for %s: %s", invalid_json[i], err);
	}
}
END_TEST

START_TEST(json_format_depth_limit)
{
	size_t n = JSON_MAX_DEPTH + 1;
	char *deep = malloc(2 * n + 1);
	char err[256] = "";
	char *out;

	ck_assert_ptr_nonnull(deep);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	out = json_reformat(deep, 2 * n, JSON_STYLE_COMPACT, NULL, err,
			    sizeof(err));
	ck_assert_ptr_null(out);
	ck_assert_msg(strstr(err, "nested deeper") != NULL, "%s", err);
	/* one level less is fine */
	out = json_reformat(deep + 1, 2 * n - 2, JSON_STYLE_COMPACT, NULL,
			    err, sizeof(err));
	ck_assert_msg(out != NULL, "%s", err);
	free(out);
	free(deep);
}
END_TEST

START_TEST(json_format_reason_has_offset)
{
	char err[256] = "";

	ck_assert_ptr_null(json_reformat("{\"a\":1,}", 8, JSON_STYLE_COMPACT,
					 NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "invalid JSON near byte 8: parse error") != NULL, "%s", err);
	ck_assert_msg(strchr(err, '\n') == NULL, "%s", err);
	/* a NULL err is allowed */
	ck_assert_ptr_null(json_reformat("[", 1, JSON_STYLE_COMPACT, NULL,
					 NULL, 0));
}
END_TEST

START_TEST(json_quote_escapes)
{
	char *q = json_quote("a\"b\\c/\x01\n\xe2\x80\xa8\xc3\xa9");

	ck_assert_str_eq(q, "\"a\\\"b\\\\c/\\u0001\\n\\u2028\xc3\xa9\"");
	free(q);
	q = json_quote("");
	ck_assert_str_eq(q, "\"\"");
	free(q);
	ck_assert_ptr_null(json_quote("bad \xff"));
	ck_assert_ptr_null(json_quote("\xed\xa0\x80"));
}
END_TEST

static const char *const doc =
	"{\"Action\":\"CourseCompleted\",\"Course\":{\"Id\":\"c1\","
	"\"Title\":\"Old\"},\"Users\":[{\"Email\":\"a@x\"},{\"Email\":\"b@x\"}],"
	"\"Twice\":1,\"Twice\":2}";

static const struct {
	const char *path;
	const char *value;
	const char *want;
} set_cases[] = {
	{ "Course.Title", "\"New\"",
	  "{\"Action\":\"CourseCompleted\",\"Course\":{\"Id\":\"c1\","
	  "\"Title\":\"New\"},\"Users\":[{\"Email\":\"a@x\"},{\"Email\":\"b@x\"}],"
	  "\"Twice\":1,\"Twice\":2}" },
	{ "Users[1].Email", "null",
	  "{\"Action\":\"CourseCompleted\",\"Course\":{\"Id\":\"c1\","
	  "\"Title\":\"Old\"},\"Users\":[{\"Email\":\"a@x\"},{\"Email\":null}],"
	  "\"Twice\":1,\"Twice\":2}" },
	{ "Users[0]", " { \"Id\" : 7 } ",
	  "{\"Action\":\"CourseCompleted\",\"Course\":{\"Id\":\"c1\","
	  "\"Title\":\"Old\"},\"Users\":[{\"Id\":7},{\"Email\":\"b@x\"}],"
	  "\"Twice\":1,\"Twice\":2}" },
	{ "Action", "12.50",
	  "{\"Action\":12.50,\"Course\":{\"Id\":\"c1\","
	  "\"Title\":\"Old\"},\"Users\":[{\"Email\":\"a@x\"},{\"Email\":\"b@x\"}],"
	  "\"Twice\":1,\"Twice\":2}" },
	{ "New", "[]",
	  "{\"Action\":\"CourseCompleted\",\"Course\":{\"Id\":\"c1\","
	  "\"Title\":\"Old\"},\"Users\":[{\"Email\":\"a@x\"},{\"Email\":\"b@x\"}],"
	  "\"Twice\":1,\"Twice\":2,\"New\":[]}" },
	{ "A.B.C", "true",
	  "{\"Action\":\"CourseCompleted\",\"Course\":{\"Id\":\"c1\","
	  "\"Title\":\"Old\"},\"Users\":[{\"Email\":\"a@x\"},{\"Email\":\"b@x\"}],"
	  "\"Twice\":1,\"Twice\":2,\"A\":{\"B\":{\"C\":true}}}" },
	{ "Users[0].Extra.Deep", "\"\\u2028\"",
	  "{\"Action\":\"CourseCompleted\",\"Course\":{\"Id\":\"c1\","
	  "\"Title\":\"Old\"},\"Users\":[{\"Email\":\"a@x\",\"Extra\":{\"Deep\":"
	  "\"\\u2028\"}},{\"Email\":\"b@x\"}],\"Twice\":1,\"Twice\":2}" },
	{ "Twice", "3",		/* the last of a name given twice */
	  "{\"Action\":\"CourseCompleted\",\"Course\":{\"Id\":\"c1\","
	  "\"Title\":\"Old\"},\"Users\":[{\"Email\":\"a@x\"},{\"Email\":\"b@x\"}],"
	  "\"Twice\":1,\"Twice\":3}" },
	{ "Course", "{}",
	  "{\"Action\":\"CourseCompleted\",\"Course\":{},"
	  "\"Users\":[{\"Email\":\"a@x\"},{\"Email\":\"b@x\"}],"
	  "\"Twice\":1,\"Twice\":2}" },
};

START_TEST(json_set_path_forms)
{
	size_t i;

	for (i = 0; i < sizeof(set_cases) / sizeof(set_cases[0]); i++) {
		char err[256] = "";
		char *out = json_set_path(doc, set_cases[i].path,
					  set_cases[i].value, err, sizeof(err));

		ck_assert_msg(out != NULL, "%s: %s", set_cases[i].path, err);
		ck_assert_msg(strcmp(out, set_cases[i].want) == 0,
			      "%s\n got: %s\nwant: %s", set_cases[i].path, out,
			      set_cases[i].want);
		free(out);
	}
}
END_TEST

static const struct {
	const char *json;
	const char *path;
	const char *value;
	const char *reason;	/* a part of the message */
} set_errors[] = {
	{ NULL, "", "1", "malformed path ''" },
	{ NULL, ".a", "1", "malformed path '.a'" },
	{ NULL, "a.", "1", "malformed path 'a.'" },
	{ NULL, "a..b", "1", "malformed path 'a..b'" },
	{ NULL, "[0]", "1", "malformed path '[0]'" },
	{ NULL, "Users[", "1", "malformed path 'Users['" },
	{ NULL, "Users[]", "1", "malformed path 'Users[]'" },
	{ NULL, "Users[x]", "1", "malformed path 'Users[x]'" },
	{ NULL, "Users[-1]", "1", "malformed path 'Users[-1]'" },
	{ NULL, "Users[0]Email", "1", "malformed path 'Users[0]Email'" },
	{ NULL, "Users.[0]", "1", "malformed path 'Users.[0]'" },
	{ NULL, "Users[0].", "1", "malformed path 'Users[0].'" },
	{ NULL, "Users[2].Email", "1",
	  "Users[2].Email: Users has 2 elements (array elements must exist)" },
	{ NULL, "Users[99999999999999999999999]", "1",
	  "Users[99999999999999999999999]: Users has 2 elements" },
	{ NULL, "Missing[0].Email", "1",
	  "Missing[0].Email: Missing does not exist (array elements must "
	  "exist)" },
	{ NULL, "Course.Title.Text", "1",
	  "Course.Title.Text: Course.Title is not an object" },
	{ NULL, "Users[0].Email[0]", "1",
	  "Users[0].Email[0]: Users[0].Email is not an array" },
	{ NULL, "Course[0]", "1", "Course[0]: Course is not an array" },
	{ NULL, "Users.Email", "1", "Users.Email: Users is not an object" },
	{ NULL, "Course.Title", "New", "Course.Title: the value is not JSON" },
	{ NULL, "Course.Title", "", "Course.Title: the value is not JSON" },
	{ NULL, "Course.Title", "1 2", "Course.Title: the value is not JSON" },
	{ "[1]", "a", "1", "a: the JSON is not an object" },
	{ "{\"a\":", "a", "1", "a: invalid JSON near byte" },
};

START_TEST(json_set_path_errors)
{
	size_t i;

	for (i = 0; i < sizeof(set_errors) / sizeof(set_errors[0]); i++) {
		char err[256] = "";
		char *out = json_set_path(set_errors[i].json ?
					  set_errors[i].json : doc,
					  set_errors[i].path,
					  set_errors[i].value, err, sizeof(err));

		ck_assert_msg(out == NULL, "%s accepted: %s",
			      set_errors[i].path, out);
		ck_assert_msg(strstr(err, set_errors[i].reason) != NULL,
			      "%s: got '%s', want '%s'", set_errors[i].path,
			      err, set_errors[i].reason);
	}
}
END_TEST

/* The parts of the vectors, written by hand (not by our formatter). */
static const char *const v0_notes[] = {
	"{\"Action\":\"a1\",\"d1\":\"dv1\"}",
	"{\"Action\":\"a1\",\"d2\":\"http://localhost\"}",
};

static const char *const v1_notes[] = {
	"{\"Action\":\"CourseEnrollment\",\"EnrollmentStatus\":0,"
	"\"EnrollmentStatusText\":\"Enrolled\",\"Course\":{"
	"\"SiteId\":\"3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d\","
	"\"WebId\":\"9a8b7c6d-5e4f-4321-9876-543210fedcba\","
	"\"Id\":\"c0ffee00-1234-4abc-9def-0123456789ab\","
	"\"Title\":\"Fire Safety Basics\","
	"\"Url\":\"https://contoso.sharepoint.com/sites/lms/FireSafety\","
	"\"CourseType\":\"Course\",\"Published\":true},\"Users\":[{"
	"\"Id\":\"7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6\","
	"\"DirectoryObjectId\":\"0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9\","
	"\"EnrollmentId\":\"e1e2e3e4-f5f6-4a7b-8c9d-0a1b2c3d4e5f\","
	"\"LoginName\":\"i:0#.f|membership|alex@contoso.com\","
	"\"Title\":\"Alex Wilber\",\"Department\":\"Operations\","
	"\"Email\":\"alex@contoso.com\"}],"
	"\"TimeStamp\":\"2024-05-01T10:15:30.123Z\"}",
};

static void
assert_body(const struct delivery *d, const char *fixture)
{
	char err[256] = "";
	size_t want_len, len = 0;
	char *want = test_read_file(fixture, &want_len);
	char *body = delivery_body(d, &len, err, sizeof(err));

	ck_assert_msg(body != NULL, "%s", err);
	ck_assert_msg(len == want_len && memcmp(body, want, len) == 0,
		      "%s differs:\n%s", fixture, body);
	free(body);
	free(want);
}

START_TEST(delivery_body_v0)
{
	struct delivery d = {
		.id = "1234567890",
		.attempt = 1,
		.properties = "{\"p1\":\"pv1\"}",
		.notifications = v0_notes,
		.n_notifications = 2,
		.style = JSON_STYLE_INDENTED_CRLF,
	};

	assert_body(&d, "vectors/v0.body.bin");
}
END_TEST

START_TEST(delivery_body_v1_v2)
{
	struct delivery d = {
		.id = "5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071",
		.attempt = 1,
		.properties = NULL,
		.notifications = v1_notes,
		.n_notifications = 1,
		.style = JSON_STYLE_INDENTED_CRLF,
	};

	assert_body(&d, "vectors/v1.body.bin");
	d.attempt = 2;
	d.properties = "{}";
	assert_body(&d, "vectors/v2.body.bin");
}
END_TEST

START_TEST(delivery_body_styles_and_id)
{
	char err[256] = "";
	size_t len, i;
	char *body;
	struct delivery d = {
		.attempt = 3,
		.notifications = v0_notes,
		.n_notifications = 1,
		.style = JSON_STYLE_COMPACT,
	};

	body = delivery_body(&d, &len, err, sizeof(err));
	ck_assert_msg(body != NULL, "%s", err);
	ck_assert_uint_eq(len, strlen(body));
	ck_assert_int_eq(strncmp(body, "{\"Id\":\"", 7), 0);
	for (i = 7; i < 39; i++)
		ck_assert_msg(strchr("0123456789abcdef", body[i]) != NULL &&
			      body[i] != '\0', "%s", body);
	ck_assert_str_eq(body + 39, "\",\"Attempt\":3,\"Properties\":{},"
			 "\"Notifications\":[{\"Action\":\"a1\",\"d1\":\"dv1\"}]}");
	free(body);

	d.id = "x";
	d.style = JSON_STYLE_INDENTED_LF;
	d.n_notifications = 0;
	body = delivery_body(&d, &len, err, sizeof(err));
	ck_assert_msg(body != NULL, "%s", err);
	ck_assert_str_eq(body, "{\n  \"Id\": \"x\",\n  \"Attempt\": 3,\n"
			 "  \"Properties\": {},\n  \"Notifications\": []\n}");
	free(body);
}
END_TEST

START_TEST(delivery_body_errors)
{
	static const char *const notes[] = { "{\"Action\":\"a\"}", "[1]",
					     "{" };
	char err[256] = "";
	struct delivery d = {
		.id = "x",
		.attempt = 1,
		.properties = "[]",
		.notifications = notes,
		.n_notifications = 1,
	};

	ck_assert_ptr_null(delivery_body(&d, NULL, err, sizeof(err)));
	ck_assert_str_eq(err, "Properties is not a JSON object");
	d.properties = "{\"p\":";
	ck_assert_ptr_null(delivery_body(&d, NULL, err, sizeof(err)));
	ck_assert_msg(strncmp(err, "Properties: invalid JSON", 24) == 0, "%s",
		      err);
	d.properties = NULL;
	d.n_notifications = 2;
	ck_assert_ptr_null(delivery_body(&d, NULL, err, sizeof(err)));
	ck_assert_str_eq(err, "notification 2 is not a JSON object");
	d.notifications = notes + 1;
	d.n_notifications = 2;
	ck_assert_ptr_null(delivery_body(&d, NULL, err, sizeof(err)));
	ck_assert_str_eq(err, "notification 1 is not a JSON object");
	d.notifications = notes + 2;
	d.n_notifications = 1;
	ck_assert_ptr_null(delivery_body(&d, NULL, err, sizeof(err)));
	ck_assert_msg(strncmp(err, "notification 1: invalid JSON", 28) == 0,
		      "%s", err);
	d.notifications = notes;
	d.id = "\xff";
	ck_assert_ptr_null(delivery_body(&d, NULL, err, sizeof(err)));
	ck_assert_str_eq(err, "a string is not valid UTF-8");
}
END_TEST

START_TEST(delivery_random_id_hex)
{
	char a[33], b[33];
	size_t i;

	ck_assert_int_eq(delivery_random_id(a), 0);
	ck_assert_int_eq(delivery_random_id(b), 0);
	ck_assert_uint_eq(strlen(a), 32);
	for (i = 0; i < 32; i++)
		ck_assert_msg(strchr("0123456789abcdef", a[i]) != NULL, "%s",
			      a);
	ck_assert_str_ne(a, b);
}
END_TEST

/* ---- the samples -------------------------------------------------------- */

static const char *const sample_names[] = {
	"CourseEnrollment", "CourseUnenrollment", "CourseStarted",
	"CourseCompleted", "CoursePublished", "CourseUnpublished",
	"EnrollmentApprovalRequest",
};

static char *
read_sample(const char *name, size_t *len)
{
	char file[256];
	char *text;

	snprintf(file, sizeof(file), "%s.json", name);
	text = test_read_file_in("WHR_SAMPLES", file, len);
	ck_assert_uint_gt(*len, 0);
	return text;
}

static const struct json_node *
member(const struct json_node *object, const char *name)
{
	size_t i;

	ck_assert_int_eq(object->kind, JSON_OBJECT);
	for (i = 0; i < object->n_kids; i++) {
		if (strcmp(object->kids[i]->name, name) == 0)
			return object->kids[i];
	}
	ck_abort_msg("no member %s", name);
	return NULL;
}

/* Each sample is byte for byte what delivery_body() makes of its parts:
 * so it is exactly what the sender would send. */
START_TEST(samples_are_sender_bodies)
{
	const char *name = sample_names[_i];
	char err[256] = "";
	size_t len, body_len, i;
	char *file = read_sample(name, &len);
	struct json_node *root = json_tree_parse(file, len, err, sizeof(err));
	const struct json_node *notes, *id;
	char **parts;
	char *props, *body;
	struct delivery d = { .style = JSON_STYLE_INDENTED_CRLF };

	ck_assert_msg(root != NULL, "%s: %s", name, err);
	ck_assert_uint_eq(root->n_kids, 4);
	id = member(root, "Id");
	ck_assert_int_eq(id->kind, JSON_STRING);
	ck_assert_uint_eq(id->len, 32);
	for (i = 0; i < 32; i++)
		ck_assert(strchr("0123456789abcdef", id->text[i]) != NULL);
	ck_assert_str_eq(member(root, "Attempt")->text, "1");
	ck_assert_uint_eq(member(root, "Properties")->n_kids, 0);
	notes = member(root, "Notifications");
	ck_assert_uint_ge(notes->n_kids, 1);
	ck_assert_str_eq(member(notes->kids[0], "Action")->text, name);

	props = json_tree_write(member(root, "Properties"), JSON_STYLE_COMPACT,
				NULL, err, sizeof(err));
	parts = calloc(notes->n_kids, sizeof(*parts));
	ck_assert_ptr_nonnull(parts);
	for (i = 0; i < notes->n_kids; i++) {
		parts[i] = json_tree_write(notes->kids[i], JSON_STYLE_COMPACT,
					   NULL, err, sizeof(err));
		ck_assert_ptr_nonnull(parts[i]);
	}
	d.id = id->text;
	d.attempt = 1;
	d.properties = props;
	d.notifications = (const char *const *)parts;
	d.n_notifications = notes->n_kids;
	body = delivery_body(&d, &body_len, err, sizeof(err));
	ck_assert_msg(body != NULL, "%s", err);
	ck_assert_msg(body_len == len && memcmp(body, file, len) == 0,
		      "%s is not what the sender writes:\n%s", name, body);

	free(body);
	for (i = 0; i < notes->n_kids; i++)
		free(parts[i]);
	free(parts);
	free(props);
	json_tree_free(root);
	free(file);
}
END_TEST

/* The embedded copies are the files, and `notification` is the compact
 * form of the first notification. */
START_TEST(samples_embedded)
{
	const char *name = sample_names[_i];
	char lower[64];
	char err[256] = "";
	size_t len, count, i;
	char *file = read_sample(name, &len);
	const struct sample *s = sample_find(name);
	const struct sample *all = sample_all(&count);
	struct json_node *root;
	char *note;

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(count, 7);
	ck_assert_ptr_eq(s, &all[_i]);	/* the order of PROTOCOL.md §2 */
	ck_assert_str_eq(s->action, name);
	ck_assert_uint_eq(s->delivery_len, len);
	ck_assert_int_eq(memcmp(s->delivery, file, len), 0);
	ck_assert_uint_eq(strlen(s->delivery), len);

	for (i = 0; name[i] != '\0' && i < sizeof(lower) - 1; i++)
		lower[i] = (char)(name[i] | 0x20);
	lower[i] = '\0';
	ck_assert_ptr_eq(sample_find(lower), s);

	root = json_tree_parse(file, len, err, sizeof(err));
	ck_assert_msg(root != NULL, "%s", err);
	note = json_tree_write(member(root, "Notifications")->kids[0],
			       JSON_STYLE_COMPACT, NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(note);
	ck_assert_str_eq(s->notification, note);
	free(note);
	json_tree_free(root);
	free(file);
}
END_TEST

START_TEST(samples_unknown)
{
	ck_assert_ptr_null(sample_find("CourseCreated"));
	ck_assert_ptr_null(sample_find(""));
	ck_assert_ptr_null(sample_find("CourseCompleted "));
	ck_assert_ptr_null(sample_find(NULL));
}
END_TEST

TEST_SUITE(json_format)
{
	TCase *tc;

	ADD_TEST(s, "indented_nested", json_format_indented_nested);
	ADD_TEST(s, "empty_containers", json_format_empty_containers);
	ADD_TEST(s, "control_characters", json_format_control_characters);
	ADD_TEST(s, "escapes", json_format_escapes);
	ADD_TEST(s, "numbers_verbatim", json_format_numbers_verbatim);
	ADD_TEST(s, "styles", json_format_styles);
	ADD_TEST(s, "invalid_refused", json_format_invalid_refused);
	ADD_TEST(s, "depth_limit", json_format_depth_limit);
	ADD_TEST(s, "reason_has_offset", json_format_reason_has_offset);
	ADD_TEST(s, "quote", json_quote_escapes);
	ADD_TEST(s, "set_path_forms", json_set_path_forms);
	ADD_TEST(s, "set_path_errors", json_set_path_errors);
	ADD_TEST(s, "delivery_body_v0", delivery_body_v0);
	ADD_TEST(s, "delivery_body_v1_v2", delivery_body_v1_v2);
	ADD_TEST(s, "delivery_body_styles", delivery_body_styles_and_id);
	ADD_TEST(s, "delivery_body_errors", delivery_body_errors);
	ADD_TEST(s, "random_id", delivery_random_id_hex);
	tc = tcase_create("samples");
	tcase_add_loop_test(tc, samples_are_sender_bodies, 0, 7);
	tcase_add_loop_test(tc, samples_embedded, 0, 7);
	tcase_add_test(tc, samples_unknown);
	suite_add_tcase(s, tc);
}
