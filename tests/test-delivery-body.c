/*
 * Delivery bodies as the sender writes them, and the samples
 * (tools/lib: delivery.c, samples.c, on json-format.c and json-tree.c).
 */
#include <string.h>

#include "test-common.h"

#include "lib/delivery.h"
#include "lib/json.h"
#include "lib/samples.h"

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

/* Why the last call failed. */
static char err[256];

/* The body @p d makes (its length in @p len), which it must make; the
 * caller frees it. */
static char *
body_of(const struct delivery *d, size_t *len)
{
	char *body = delivery_body(d, len, err, sizeof(err));

	ck_assert_msg(body != NULL, "%s", err);
	return body;
}

/* Why @p d makes no body. */
static const char *
refusal(const struct delivery *d)
{
	err[0] = '\0';
	ck_assert_ptr_null(delivery_body(d, NULL, err, sizeof(err)));
	return err;
}

static void
assert_body(const struct delivery *d, const char *fixture)
{
	size_t want_len, len = 0;
	char *want = test_read_file(fixture, &want_len);
	char *body = body_of(d, &len);

	ck_assert_msg(len == want_len && memcmp(body, want, len) == 0,
		      "%s differs:\n%s", fixture, body);
	free(body);
	free(want);
}

/* The test vectors, and the parts that make each. */
static const struct {
	const char *fixture;
	struct delivery parts;
} vectors[] = {
	{ "vectors/v0.body.bin",
	  { "1234567890", 1, "{\"p1\":\"pv1\"}", v0_notes, 2,
	    JSON_STYLE_INDENTED_CRLF } },
	{ "vectors/v1.body.bin",
	  { "5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071", 1, NULL, v1_notes, 1,
	    JSON_STYLE_INDENTED_CRLF } },
	{ "vectors/v2.body.bin",
	  { "5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071", 2, "{}", v1_notes, 1,
	    JSON_STYLE_INDENTED_CRLF } },
};

START_TEST(delivery_body_vectors)
{
	assert_body(&vectors[_i].parts, vectors[_i].fixture);
}
END_TEST

START_TEST(delivery_body_styles_and_id)
{
	size_t len, i;
	char *body;
	struct delivery d = {
		.attempt = 3,
		.notifications = v0_notes,
		.n_notifications = 1,
		.style = JSON_STYLE_COMPACT,
	};

	body = body_of(&d, &len);
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
	body = body_of(&d, &len);
	ck_assert_str_eq(body, "{\n  \"Id\": \"x\",\n  \"Attempt\": 3,\n"
			 "  \"Properties\": {},\n  \"Notifications\": []\n}");
	free(body);
}
END_TEST

START_TEST(delivery_body_errors)
{
	static const char *const notes[] = { "{\"Action\":\"a\"}", "[1]",
					     "{" };
	struct delivery d = {
		.id = "x",
		.attempt = 1,
		.properties = "[]",
		.notifications = notes,
		.n_notifications = 1,
	};

	ck_assert_str_eq(refusal(&d), "Properties is not a JSON object");
	d.properties = "{\"p\":";
	ck_assert_msg(strncmp(refusal(&d), "Properties: invalid JSON", 24) == 0,
		      "%s", err);
	d.properties = NULL;
	d.n_notifications = 2;
	ck_assert_str_eq(refusal(&d), "notification 2 is not a JSON object");
	d.notifications = notes + 1;
	d.n_notifications = 2;
	ck_assert_str_eq(refusal(&d), "notification 1 is not a JSON object");
	d.notifications = notes + 2;
	d.n_notifications = 1;
	ck_assert_msg(strncmp(refusal(&d), "notification 1: invalid JSON",
			      28) == 0, "%s", err);
	d.notifications = notes;
	d.id = "\xff";
	ck_assert_str_eq(refusal(&d), "a string is not valid UTF-8");
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
	size_t len, body_len, i;
	char *file = test_read_sample(name, &len);
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
	body = body_of(&d, &body_len);
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
	size_t len, count, i;
	char *file = test_read_sample(name, &len);
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

TEST_SUITE(delivery_body)
{
	TCase *tc;

	tc = tcase_create("delivery_body_vectors");
	tcase_add_loop_test(tc, delivery_body_vectors, 0,
			    sizeof(vectors) / sizeof(vectors[0]));
	suite_add_tcase(s, tc);
	ADD_TEST(s, "delivery_body_styles", delivery_body_styles_and_id);
	ADD_TEST(s, "delivery_body_errors", delivery_body_errors);
	ADD_TEST(s, "random_id", delivery_random_id_hex);
	tc = tcase_create("samples");
	tcase_add_loop_test(tc, samples_are_sender_bodies, 0, 7);
	tcase_add_loop_test(tc, samples_embedded, 0, 7);
	tcase_add_test(tc, samples_unknown);
	suite_add_tcase(s, tc);
}
