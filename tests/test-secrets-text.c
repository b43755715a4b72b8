/*
 * Editing a secrets list in its text, for whr register
 * (tools/lib/secrets-text.c): the entry of one id found and set as whr
 * serve reads it, everything else left as it was.
 */
#include <string.h>

#include "test-common.h"

#include "lib/secrets-text.h"

#define S1 "0123456789abcdef0123456789abcdef"
#define S2 "fedcba9876543210fedcba9876543210"
#define NEW "NEW_secret-of-48-characters_0123456789abcdefgh"

static void
assert_set(const char *text, const char *id, const char *expected)
{
	char err[160] = "";
	char *out = secrets_text_set(text, id, NEW, err, sizeof(err));

	ck_assert_msg(out != NULL, "%s", err);
	ck_assert_str_eq(out, expected);
	free(out);
}

START_TEST(secrets_text_set_replaces_in_place)
{
	/* the default id, alone or among others, commas or lines */
	assert_set(S1, "", NEW);
	assert_set(S1 "\n", "", NEW "\n");
	assert_set("  " S1 " ,t2=" S2, "", "  " NEW " ,t2=" S2);
	assert_set("t2=" S2 "\r\n" S1 "\r\n", "", "t2=" S2 "\r\n" NEW "\r\n");
	/* an id, compared without case; spaces around '=' */
	assert_set(S1 ",\nTenant2 = " S2 "\n# not a comment", "tenant2",
		   S1 ",\ntenant2=" NEW "\n# not a comment");
	/* "id==secret" is the id's (empty parts are dropped) */
	assert_set("t2==" S2, "t2", "t2=" NEW);
	/* "=secret" is the default id's */
	assert_set("t2=" S2 ", =" S1, "", "t2=" S2 ", " NEW);
}
END_TEST

START_TEST(secrets_text_set_appends)
{
	assert_set("", "", NEW "\n");
	assert_set("", "t9", "t9=" NEW "\n");
	assert_set(S1, "t9", S1 "\nt9=" NEW "\n");
	assert_set(S1 "\n", "t9", S1 "\nt9=" NEW "\n");
	assert_set("t2=" S2 ",,\n\n", "", "t2=" S2 ",,\n\n" NEW "\n");
	/* an id that is a prefix of another is another id */
	assert_set("t22=" S2, "t2", "t22=" S2 "\nt2=" NEW "\n");
}
END_TEST

START_TEST(secrets_text_find_the_secret)
{
	const char *text = "a=" S1 ", b =  " S2 "  \n";
	struct secrets_entry e;
	char err[160];

	ck_assert_int_eq(secrets_text_find(text, "B", &e, err, sizeof(err)),
			 1);
	ck_assert_uint_eq(e.secret_len, strlen(S2));
	ck_assert(strncmp(e.secret, S2, e.secret_len) == 0);
	ck_assert_uint_eq(e.start, strlen("a=" S1 ", "));
	ck_assert_int_eq(secrets_text_find(text, "", &e, err, sizeof(err)), 0);
	ck_assert_int_eq(secrets_text_find(text, "c", &e, err, sizeof(err)),
			 0);
}
END_TEST

START_TEST(secrets_text_refuses_what_whr_refuses)
{
	static const struct {
		const char *text;
		const char *id;
		const char *why;
	} cases[] = {
		{ S1 ",a=b=" S2, "x", "entry 2 has more than one '='" },
		{ "=,=", "x", "entry 1 has neither an id nor a secret" },
		{ "a=" S1 "\nA=" S2, "a", "entry 2 gives the same id" },
		{ S1 "\n" S2, "", "entry 2 gives the default id" },
	};
	struct secrets_entry e;
	char err[160];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		ck_assert_int_eq(secrets_text_find(cases[i].text, cases[i].id,
						   &e, err, sizeof(err)),
				 -EINVAL);
		ck_assert_msg(strstr(err, cases[i].why) != NULL, "%zu: %s", i,
			      err);
		/* never a part of the text in the reason */
		ck_assert_ptr_null(strstr(err, S1));
		ck_assert_ptr_null(strstr(err, S2));
		ck_assert_ptr_null(secrets_text_set(cases[i].text, cases[i].id,
						    NEW, err, sizeof(err)));
	}
}
END_TEST

START_TEST(secrets_text_ids)
{
	char long_id[SECRETS_ID_MAX + 2];
	char err[160];

	ck_assert(secrets_id_valid(""));
	ck_assert(secrets_id_valid("tenant-2_x.y"));
	ck_assert(!secrets_id_valid("a,b"));
	ck_assert(!secrets_id_valid("a=b"));
	ck_assert(!secrets_id_valid("a b"));
	ck_assert(!secrets_id_valid("a\nb"));
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	ck_assert(!secrets_id_valid(long_id));
	long_id[SECRETS_ID_MAX] = '\0';
	ck_assert(secrets_id_valid(long_id));
	ck_assert_ptr_null(secrets_text_set(S1, "a,b", NEW, err,
					    sizeof(err)));
	ck_assert(strstr(err, "cannot be written") != NULL);
}
END_TEST

TEST_SUITE_OF(secrets_text,
	secrets_text_set_replaces_in_place,
	secrets_text_set_appends,
	secrets_text_find_the_secret,
	secrets_text_refuses_what_whr_refuses,
	secrets_text_ids)
