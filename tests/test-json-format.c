/*
 * Newtonsoft-style JSON formatting, quoting and paths
 * (tools/lib: json-format.c, json-tree.c). Delivery bodies and the
 * samples are in test-delivery-body.c.
 */
#include <string.h>

#include "test-common.h"

#include "lib/json.h"

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

/* Refused as "malformed path '<path>'", whatever the value and JSON. */
static const char *const malformed_paths[] = {
	"", ".a", "a.", "a..b", "[0]", "Users[", "Users[]", "Users[x]",
	"Users[-1]", "Users[0]Email", "Users.[0]", "Users[0].",
};

/* json_set_path refuses to set @p path to @p value in @p json, saying
 * @p reason (a part of its message). */
static void
assert_set_refused(const char *json, const char *path, const char *value,
		   const char *reason)
{
	char err[256] = "";
	char *out = json_set_path(json, path, value, err, sizeof(err));

	ck_assert_msg(out == NULL, "%s accepted: %s", path, out);
	ck_assert_msg(strstr(err, reason) != NULL, "%s: got '%s', want '%s'",
		      path, err, reason);
}

START_TEST(json_set_path_errors)
{
	char reason[64];
	size_t i;

	for (i = 0; i < sizeof(malformed_paths) / sizeof(malformed_paths[0]);
	     i++) {
		snprintf(reason, sizeof(reason), "malformed path '%s'",
			 malformed_paths[i]);
		assert_set_refused(doc, malformed_paths[i], "1", reason);
	}
	for (i = 0; i < sizeof(set_errors) / sizeof(set_errors[0]); i++)
		assert_set_refused(set_errors[i].json ? set_errors[i].json
						      : doc,
				   set_errors[i].path, set_errors[i].value,
				   set_errors[i].reason);
}
END_TEST

TEST_SUITE_OF(json_format,
	json_format_indented_nested,
	json_format_empty_containers,
	json_format_control_characters,
	json_format_escapes,
	json_format_numbers_verbatim,
	json_format_styles,
	json_format_invalid_refused,
	json_format_depth_limit,
	json_format_reason_has_offset,
	json_quote_escapes,
	json_set_path_forms,
	json_set_path_errors)
