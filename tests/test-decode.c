/*
 * Body decoding: media types, the JSON object rule, Notifications rules,
 * envelope members, and each notification's exact bytes.
 */
#include <string.h>

#include "decode.h"
#include "util.h"
#include "test-common.h"

/* Why the last decode failed. */
static char err[200];

static int
decode(const char *body, struct envelope *env)
{
	return envelope_decode(body, strlen(body), 0, env, err, sizeof(err));
}

/* Decode @p body, which must be taken. */
static void
decode_ok(const char *body, struct envelope *env)
{
	ck_assert_msg(decode(body, env) == 0, "%s: %s", body, err);
}

static void
assert_slice(const char *body, const struct notification *n,
	     const char *expected)
{
	ck_assert_uint_eq(n->end - n->start, strlen(expected));
	ck_assert_mem_eq(body + n->start, expected, strlen(expected));
}

START_TEST(decode_media_types)
{
	static const char *json[] = {
		"application/json", "application/json; charset=utf-8",
		"APPLICATION/JSON", "text/json", " text/json ; x=y",
		"application/vnd.learn365+json", "text/x+json",
		"application/+json", "Application/Problem+JSON;charset=UTF-8",
	};
	static const char *not_json[] = {
		"", "text/plain", "application/xml", "application/jsonx",
		"application/json+x", "json", "application/", "/json",
		"image/json", "application/x json", "multipart/form-data",
		"application/json/x",
	};
	size_t i;

	for (i = 0; i < sizeof(json) / sizeof(json[0]); i++)
		ck_assert_msg(media_type_is_json(json[i]), "%s", json[i]);
	for (i = 0; i < sizeof(not_json) / sizeof(not_json[0]); i++)
		ck_assert_msg(!media_type_is_json(not_json[i]), "%s",
			      not_json[i]);
	ck_assert(!media_type_is_json(NULL));
}
END_TEST

START_TEST(decode_vector_v0)
{
	size_t len;
	char *body = test_read_file("vectors/v0.body.bin", &len);
	struct envelope env;

	ck_assert_int_eq(envelope_decode(body, len, 0, &env, err, sizeof(err)), 0);
	ck_assert_str_eq(env.id, "1234567890");
	ck_assert_int_eq(env.attempt, 1);
	ck_assert(env.has_properties);
	ck_assert_uint_eq(env.n_notifications, 2);
	ck_assert_str_eq(env.notifications[0].action, "a1");
	ck_assert_str_eq(env.notifications[1].action, "a1");
	/* Slices are the objects as written, CRLF and indentation kept. */
	ck_assert_int_eq(body[env.notifications[0].start], '{');
	ck_assert_int_eq(body[env.notifications[0].end - 1], '}');
	ck_assert_int_eq(body[env.properties_start], '{');
	ck_assert_int_eq(body[env.properties_end - 1], '}');
	ck_assert_ptr_nonnull(memmem(body + env.properties_start,
				     env.properties_end - env.properties_start,
				     "\"p1\": \"pv1\"", 11));
	envelope_finish(&env);
	free(body);
}
END_TEST

START_TEST(decode_members)
{
	const char *body =
		"{\"Id\":\"abc\",\"Attempt\":3,\"Properties\":{\"p\":[1,{\"q\":2}]},"
		"\"Extra\":{\"Notifications\":5},"
		"\"Notifications\":[{\"Action\":\"A\",\"x\":{\"Action\":[]}},"
		"{\"x\":1},{\"Action\":null},{\"Action\":7.5},"
		"{\"Action\":true},{\"Action\":false, \"Action\":\"Last\"}]}";
	struct envelope env;

	decode_ok(body, &env);
	ck_assert_str_eq(env.id, "abc");
	ck_assert_int_eq(env.attempt, 3);
	ck_assert_uint_eq(env.n_notifications, 6);
	ck_assert_str_eq(env.notifications[0].action, "A");
	ck_assert_ptr_null(env.notifications[1].action);
	ck_assert_ptr_null(env.notifications[2].action);
	ck_assert_str_eq(env.notifications[3].action, "7.5");
	ck_assert_str_eq(env.notifications[4].action, "true");
	ck_assert_str_eq(env.notifications[5].action, "Last");
	assert_slice(body, &env.notifications[0],
		     "{\"Action\":\"A\",\"x\":{\"Action\":[]}}");
	assert_slice(body, &env.notifications[5],
		     "{\"Action\":false, \"Action\":\"Last\"}");
	ck_assert_uint_eq(env.properties_end - env.properties_start,
			  strlen("{\"p\":[1,{\"q\":2}]}"));
	envelope_finish(&env);
}
END_TEST

START_TEST(decode_optional_members)
{
	struct envelope env;

	/* Nothing required: no Id, Attempt, Properties or Notifications. */
	decode_ok("{}", &env);
	ck_assert_ptr_null(env.id);
	ck_assert_int_eq(env.attempt, 0);
	ck_assert(!env.has_properties);
	ck_assert_uint_eq(env.n_notifications, 0);
	envelope_finish(&env);

	decode_ok("{\"Notifications\":null,\"Id\":12}", &env);
	ck_assert_str_eq(env.id, "12");
	envelope_finish(&env);

	/* Members are case-sensitive: these are unknown, hence ignored. */
	decode_ok("{\"notifications\":5,\"id\":\"x\"}", &env);
	ck_assert_ptr_null(env.id);
	envelope_finish(&env);

	/* Wrong types of Id/Attempt/Properties read as absent. */
	decode_ok("{\"Id\":{\"a\":1},\"Attempt\":\"2\","
		  "\"Properties\":[1]}", &env);
	ck_assert_ptr_null(env.id);
	ck_assert_int_eq(env.attempt, 0);
	ck_assert(!env.has_properties);
	envelope_finish(&env);

	/* The last of two Notifications counts. */
	decode_ok("{\"Notifications\":[{},{}],"
		  "\"Notifications\":[{\"Action\":\"b\"}]}", &env);
	ck_assert_uint_eq(env.n_notifications, 1);
	ck_assert_str_eq(env.notifications[0].action, "b");
	envelope_finish(&env);
}
END_TEST

START_TEST(decode_bom)
{
	const char *body = "\xef\xbb\xbf{\"Notifications\":[{\"Action\":\"a\"}]}";
	struct envelope env;

	decode_ok(body, &env);
	ck_assert_uint_eq(env.json_start, 3);
	assert_slice(body, &env.notifications[0], "{\"Action\":\"a\"}");
	envelope_finish(&env);
	ck_assert_int_eq(decode("\xef\xbb\xbf", &env), -EBADMSG);
}
END_TEST

START_TEST(decode_bad_bodies)
{
	/* The bodies refused with each message (a part of it). */
	static const struct {
		const char *message;
		const char *bodies[8];	/* NULL ends */
	} refusals[] = {
		{ "body is empty", { "" } },
		{ "not valid JSON",
		  { " ", "{", "{}x", "{} {}", "{\"a\":1,}", "{'a':1}",
		    "{\"a\":\"\xff\"}" } },
		{ "not a JSON object", { "[]", "\"x\"", "42", "null" } },
		{ "Notifications must be an array",
		  { "{\"Notifications\":{}}", "{\"Notifications\":\"x\"}",
		    "{\"Notifications\":1}", "{\"Notifications\":true}" } },
		{ "Notifications[1] is not an object",
		  { "{\"Notifications\":[{},1]}" } },
		{ "Notifications[0] is not an object",
		  { "{\"Notifications\":[null]}", "{\"Notifications\":[[]]}",
		    "{\"Notifications\":[\"a\"]}" } },
		{ "Notifications[0].Action must be",
		  { "{\"Notifications\":[{\"Action\":{}}]}" } },
		{ "Notifications[1].Action must be",
		  { "{\"Notifications\":[{},{\"Action\":[\"a\"]}]}" } },
	};
	size_t i, k;

	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		for (k = 0; refusals[i].bodies[k] != NULL; k++) {
			const char *body = refusals[i].bodies[k];
			struct envelope env;

			ck_assert_msg(decode(body, &env) == -EBADMSG,
				      "'%s' accepted", body);
			ck_assert_msg(strstr(err, refusals[i].message) != NULL,
				      "'%s': '%s' lacks '%s'", body, err,
				      refusals[i].message);
			/* One line: the answer and the log add the
			 * newline. */
			ck_assert_msg(strchr(err, '\n') == NULL &&
					      err[strlen(err) - 1] != ' ',
				      "'%s': '%s' has a line break or ends in "
				      "a space", body, err);
			ck_assert_ptr_null(env.notifications);
		}
	}
}
END_TEST

/* Two different strings never read as one: a lone surrogate escape is
 * refused, a pair and an escaped backslash are not. */
START_TEST(decode_surrogates)
{
	static const struct {
		const char *body;
		int rc;
	} cases[] = {
		{ "{\"Id\":\"sur\\ud800\"}", -EBADMSG },
		{ "{\"Id\":\"sur\\uDBFF\"}", -EBADMSG },
		{ "{\"Id\":\"sur\\udc00\"}", -EBADMSG },
		{ "{\"Id\":\"\\ud800\\u0041\"}", -EBADMSG },
		{ "{\"Id\":\"\\ud800x\"}", -EBADMSG },
		{ "{\"Notifications\":[{\"Course\":{\"Id\":\"c\\udfff\"}}]}",
		  -EBADMSG },
		{ "{\"Properties\":{\"p\":\"\\udbff\"}}", -EBADMSG },
		{ "{\"Id\":\"sur\\ud83d\\ude00\"}", 0 },	/* a pair */
		{ "{\"Id\":\"sur\\\\ud800\"}", 0 },	/* "\\" then "ud800" */
		{ "{\"Id\":\"sur\\\\\\ud83d\\ude00\"}", 0 },
		{ "{\"Id\":\"\\u00e9\\\"\\u0041\"}", 0 },
	};
	struct envelope env;
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(cases); i++) {
		int rc = decode(cases[i].body, &env);

		ck_assert_msg(rc == cases[i].rc, "%s: %d %s", cases[i].body,
			      rc, err);
		if (rc < 0)
			ck_assert_ptr_nonnull(strstr(err, "lone surrogate"));
		else
			envelope_finish(&env);
	}
}
END_TEST

/* An empty Id names no delivery; a number is its text. */
START_TEST(decode_empty_id)
{
	struct envelope env;

	decode_ok("{\"Id\":\"\"}", &env);
	ck_assert_ptr_null(env.id);
	envelope_finish(&env);
	decode_ok("{\"Id\":\"a\",\"Id\":\"\"}", &env);
	ck_assert_ptr_null(env.id);
	envelope_finish(&env);
	decode_ok("{\"Id\":0}", &env);
	ck_assert_str_eq(env.id, "0");
	envelope_finish(&env);
}
END_TEST

/* More notifications than the limit: -E2BIG, decoding stopped there. */
START_TEST(decode_max_notifications)
{
	static const char body[] =
		"{\"Notifications\":[{\"Action\":\"a\"},{},{\"Action\":\"c\"}]}";
	struct envelope env;

	ck_assert_int_eq(envelope_decode(body, strlen(body), 3, &env, err,
					 sizeof(err)), 0);
	ck_assert_uint_eq(env.n_notifications, 3);
	envelope_finish(&env);
	ck_assert_int_eq(envelope_decode(body, strlen(body), 2, &env, err,
					 sizeof(err)), -E2BIG);
	ck_assert_str_eq(err, "the delivery has more than 2 notifications "
			      "(--max-notifications)");
}
END_TEST

START_TEST(decode_depth)
{
	char body[400];
	struct envelope env;
	int depth;

	/* DECODE_MAX_DEPTH levels pass; one more does not. */
	for (depth = DECODE_MAX_DEPTH; depth <= DECODE_MAX_DEPTH + 1; depth++) {
		size_t n = 0;
		int i;

		body[n++] = '{';
		memcpy(body + n, "\"a\":", 4);
		n += 4;
		for (i = 1; i < depth; i++)
			body[n++] = '[';
		for (i = 1; i < depth; i++)
			body[n++] = ']';
		body[n++] = '}';
		body[n] = '\0';
		if (depth == DECODE_MAX_DEPTH) {
			decode_ok(body, &env);
			envelope_finish(&env);
		} else {
			ck_assert_int_eq(decode(body, &env), -EBADMSG);
			ck_assert_ptr_nonnull(strstr(err, "nested deeper"));
		}
	}
}
END_TEST

/* A NUL inside an Action must not shorten it to another Action. */
START_TEST(decode_action_with_nul)
{
	const char *body = "{\"Notifications\":[{\"Action\":\"a1\\u0000x\"}]}";
	struct envelope env;

	decode_ok(body, &env);
	ck_assert_str_eq(env.notifications[0].action, "a1\xef\xbf\xbdx");
	envelope_finish(&env);

	/* The same for an Id, which deduplication will compare. */
	decode_ok("{\"Id\":\"a\\u0000x\"}", &env);
	ck_assert_str_eq(env.id, "a\xef\xbf\xbdx");
	envelope_finish(&env);

	/* A member name with U+0000 would read as another name in the
	 * handlers' view: refused (found by fuzz-decode). */
	ck_assert_int_eq(decode("{\"Notifications\":[{\"Action\\u0000\":0}]}",
				&env), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "U+0000"));
}
END_TEST

/* What orders a notification: Course.Id and each Users[k].Id. */
START_TEST(decode_ordering_members)
{
	const char *body =
		"{\"Notifications\":["
		"{\"Action\":\"a\",\"Course\":{\"Id\":\"c1\",\"Title\":\"t\","
		"\"Sub\":{\"Id\":\"no\"}},\"Users\":[{\"Id\":\"u1\"},"
		"{\"Email\":\"e\"},{\"Id\":5},{\"Id\":\"u4\",\"X\":{\"Id\":\"no\"}}]},"
		"{\"Id\":\"flat\",\"Users\":[[{\"Id\":\"no\"}]],\"Course\":\"str\"},"
		"{\"Users\":[{\"Id\":\"a\"}],\"Users\":[{\"Id\":\"b\"}],"
		"\"Course\":{\"Id\":\"x\"},\"Course\":{\"Id\":\"y\"}}]}";
	struct envelope env;
	const struct notification *n;

	decode_ok(body, &env);
	ck_assert_uint_eq(env.n_notifications, 3);
	n = &env.notifications[0];
	ck_assert_str_eq(n->course_id, "c1");
	ck_assert_uint_eq(n->n_users, 4);
	ck_assert_str_eq(n->user_ids[0], "u1");
	ck_assert_ptr_null(n->user_ids[1]);
	ck_assert_ptr_null(n->user_ids[2]);	/* not a string */
	ck_assert_str_eq(n->user_ids[3], "u4");
	n = &env.notifications[1];
	ck_assert_ptr_null(n->course_id);
	ck_assert_uint_eq(n->n_users, 0);
	/* The last of a repeated member counts, as elsewhere. */
	n = &env.notifications[2];
	ck_assert_str_eq(n->course_id, "y");
	ck_assert_uint_eq(n->n_users, 1);
	ck_assert_str_eq(n->user_ids[0], "b");
	envelope_finish(&env);
}
END_TEST

TEST_SUITE_OF(decode,
	decode_ordering_members,
	decode_action_with_nul,
	decode_media_types,
	decode_vector_v0,
	decode_members,
	decode_optional_members,
	decode_bom,
	decode_bad_bodies,
	decode_depth,
	decode_surrogates,
	decode_empty_id,
	decode_max_notifications)
