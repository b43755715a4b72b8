/*
 * The MS_WebHookReceiverSecret_Custom format: good and bad settings, and
 * error messages that name entries without revealing secrets.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "secrets.h"
#include "test-common.h"

#define S32 "0123456789abcdef0123456789abcdef"
#define S32B "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
/* Ids of 256 bytes (the longest) and 257. */
#define ID32 "tenant-id-abcdefghijklmnopqrstuv"
#define ID256 ID32 ID32 ID32 ID32 ID32 ID32 ID32 ID32
#define ID257 ID256 "w"

static int
parse(const char *text, bool newlines, struct secret_list *out)
{
	memset(out, 0, sizeof(*out));
	test_log_clear();
	return secret_list_parse(text, newlines, "TESTVAR", out);
}

static void
assert_entry(const struct secret_list *l, size_t i, const char *id,
	     const char *secret)
{
	ck_assert_uint_lt(i, l->n);
	ck_assert_str_eq(l->entries[i].id, id);
	ck_assert_str_eq(l->entries[i].secret, secret);
	ck_assert_uint_eq(l->entries[i].secret_len, strlen(secret));
}

START_TEST(secrets_good)
{
	struct secret_list l;

	ck_assert_int_eq(parse(S32, false, &l), 0);
	ck_assert_uint_eq(l.n, 1);
	assert_entry(&l, 0, "", S32);
	secret_list_finish(&l);

	/* Trimmed parts, empty parts dropped, ids lowercased. */
	ck_assert_int_eq(parse(" , " S32 " ,, Tenant2 = " S32B " ,", false, &l), 0);
	ck_assert_uint_eq(l.n, 2);
	assert_entry(&l, 0, "", S32);
	assert_entry(&l, 1, "tenant2", S32B);
	secret_list_finish(&l);

	/* `id==secret` is two parts once the empty one is dropped. */
	ck_assert_int_eq(parse("a==" S32, false, &l), 0);
	assert_entry(&l, 0, "a", S32);
	secret_list_finish(&l);

	/* `=secret` is the default id. */
	ck_assert_int_eq(parse("=" S32, false, &l), 0);
	assert_entry(&l, 0, "", S32);
	secret_list_finish(&l);

	/* Nothing at all is an empty list, not an error. */
	ck_assert_int_eq(parse(" , ,", false, &l), 0);
	ck_assert_uint_eq(l.n, 0);
	secret_list_finish(&l);
}
END_TEST

START_TEST(secrets_lengths)
{
	char s[200];
	struct secret_list l;
	size_t i;

	/* 32 and 128 characters are accepted, 31 and 129 are not. */
	memset(s, 'x', sizeof(s));
	s[32] = '\0';
	ck_assert_int_eq(parse(s, false, &l), 0);
	secret_list_finish(&l);
	s[31] = '\0';
	ck_assert_int_eq(parse(s, false, &l), -EINVAL);
	ck_assert_ptr_nonnull(strstr(test_log_text(), "31 characters"));
	memset(s, 'x', sizeof(s));
	s[128] = '\0';
	ck_assert_int_eq(parse(s, false, &l), 0);
	secret_list_finish(&l);
	s[128] = 'x';
	s[129] = '\0';
	ck_assert_int_eq(parse(s, false, &l), -EINVAL);

	/* Code points, not bytes: 32 times "é" is 64 bytes, accepted. */
	s[0] = '\0';
	for (i = 0; i < 32; i++)
		strcat(s, "\xc3\xa9");
	ck_assert_int_eq(parse(s, false, &l), 0);
	ck_assert_uint_eq(l.entries[0].secret_len, 64);
	secret_list_finish(&l);
	s[62] = '\0';	/* 31 code points */
	ck_assert_int_eq(parse(s, false, &l), -EINVAL);

	/* An id of 256 bytes is accepted, 257 is not. */
	ck_assert_int_eq(parse(ID256 "=" S32, false, &l), 0);
	ck_assert_uint_eq(strlen(l.entries[0].id), 256);
	secret_list_finish(&l);
	ck_assert_int_eq(parse(ID257 "=" S32, false, &l), -EINVAL);

	/* Invalid UTF-8 is refused. */
	memset(s, 'x', 40);
	s[40] = '\0';
	s[5] = '\xff';
	ck_assert_int_eq(parse(s, false, &l), -EINVAL);
	ck_assert_ptr_nonnull(strstr(test_log_text(), "UTF-8"));
}
END_TEST

START_TEST(secrets_bad_messages)
{
	static const struct {
		const char *text;
		const char *must_say;
	} cases[] = {
		{ S32 ", tenant2=short", "entry 2 (id 'tenant2')" },
		{ "a=b=" S32, "entry 1 (id 'a') has more than one '='" },
		{ "x=" S32 ", X=" S32B, "entry 2 (id 'x'): the id is configured twice" },
		{ S32 "," S32B, "entry 2 (default id): the id is configured twice" },
		{ S32 ", =", "entry 2 has neither an id nor a secret" },
		{ "id=", "entry 1 (default id): the secret has 2 characters" },
		{ S32 ", " ID257 "=" S32B, "entry 2 (an id of 257 bytes, not shown in case it is a secret): the id has 257 bytes; it may have at most 256" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct secret_list l;

		ck_assert_int_eq(parse(cases[i].text, false, &l), -EINVAL);
		ck_assert_uint_eq(l.n, 0);
		ck_assert_msg(strstr(test_log_text(), cases[i].must_say) != NULL,
			      "case %zu: log '%s' lacks '%s'", i,
			      test_log_text(), cases[i].must_say);
		ck_assert_ptr_nonnull(strstr(test_log_text(), "TESTVAR"));
		/* Never the secret itself. */
		ck_assert_ptr_null(strstr(test_log_text(), S32));
		ck_assert_ptr_null(strstr(test_log_text(), S32B));
		ck_assert_ptr_null(strstr(test_log_text(), "short"));
	}
}
END_TEST

START_TEST(secrets_newlines_in_files)
{
	struct secret_list l;

	ck_assert_int_eq(parse(S32 "\r\ntenant2=" S32B "\n\n", true, &l), 0);
	ck_assert_uint_eq(l.n, 2);
	assert_entry(&l, 1, "tenant2", S32B);
	secret_list_finish(&l);

	/* Without the newline rule, the first line becomes part of an id,
	 * as in the stock parser; it is still accepted. */
	ck_assert_int_eq(parse(S32 "\ntenant2=" S32B, false, &l), 0);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_ptr_nonnull(strchr(l.entries[0].id, '\n'));
	secret_list_finish(&l);
}
END_TEST

/* A secret written where the id goes is not echoed by an error. */
START_TEST(secrets_long_id_not_shown)
{
	struct secret_list l;

	ck_assert_int_eq(parse(S32 "=short", false, &l), -EINVAL);
	ck_assert_ptr_null(strstr(test_log_text(), S32));
	ck_assert_ptr_nonnull(strstr(test_log_text(), "an id of 32 bytes, not shown"));
	ck_assert_int_eq(parse("my id=short", false, &l), -EINVAL);
	ck_assert_ptr_null(strstr(test_log_text(), "my id"));
}
END_TEST

START_TEST(secrets_file)
{
	char path[] = "/tmp/whr-secrets-XXXXXX";
	int fd = mkstemp(path);
	char *text = NULL;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, S32 "\n", 33), 33);
	close(fd);
	ck_assert_int_eq(secret_file_read(path, &text), 0);
	ck_assert_str_eq(text, S32 "\n");
	free(text);
	unlink(path);
	ck_assert_int_eq(secret_file_read(path, &text), -ENOENT);
	ck_assert_int_eq(secret_file_read("/tmp", &text), -EINVAL);
}
END_TEST

START_TEST(secrets_file_load)
{
	char path[] = "/tmp/whr-secrets-XXXXXX";
	struct secret_list l = { 0 };
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "\n " S32 "\r\nt2=" S32B "\n", 72), 72);
	close(fd);
	ck_assert_int_eq(secret_list_load(path, false, &l), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.entries[1].id, "t2");
	secret_list_finish(&l);

	/* Empty: no secret, refused unless it may be (a previous file). */
	ck_assert_int_eq(truncate(path, 0), 0);
	test_log_clear();
	ck_assert_int_eq(secret_list_load(path, false, &l), -EINVAL);
	ck_assert_ptr_nonnull(strstr(test_log_text(), "holds no secret"));
	ck_assert_ptr_nonnull(strstr(test_log_text(), path));
	ck_assert_int_eq(secret_list_load(path, true, &l), 0);
	ck_assert_uint_eq(l.n, 0);
	unlink(path);
	ck_assert_int_eq(secret_list_load(path, true, &l), -EINVAL);
}
END_TEST

START_TEST(secrets_store)
{
	struct secret_list cur, prev;
	struct secret_store *store;
	const struct receiver_keys *k;

	ck_assert_int_eq(parse(S32 ", Tenant2=" S32B, false, &cur), 0);
	ck_assert_int_eq(parse("TENANT2=" S32, false, &prev), 0);
	store = secret_store_new(&cur, &prev, "PREV");
	ck_assert_ptr_nonnull(store);
	ck_assert_uint_eq(secret_store_count(store), 2);
	ck_assert_uint_eq(secret_store_count_previous(store), 1);
	k = secret_store_find(store, "", 0);
	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_null(k->previous);
	k = secret_store_find(store, "tEnAnT2", 7);
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(k->id, "tenant2");
	ck_assert_ptr_nonnull(k->previous);
	ck_assert_ptr_null(secret_store_find(store, "tenant", 6));
	secret_store_free(store);
	secret_list_finish(&prev);

	/* A previous secret needs a current one for its id. */
	ck_assert_int_eq(parse("other=" S32, false, &prev), 0);
	test_log_clear();
	ck_assert_ptr_null(secret_store_new(&cur, &prev, "PREV"));
	ck_assert_ptr_nonnull(strstr(test_log_text(),
				     "PREV: entry 1 (id 'other'): no current secret"));
	secret_list_finish(&prev);
	secret_list_finish(&cur);
}
END_TEST

TEST_SUITE_OF(secrets,
	secrets_good,
	secrets_lengths,
	secrets_bad_messages,
	secrets_newlines_in_files,
	secrets_long_id_not_shown,
	secrets_file,
	secrets_file_load,
	secrets_store)
