/*
 * Runs the suite of one test executable. Exit status is EXIT_SUCCESS or
 * EXIT_FAILURE, never the failure count (a count of 256 would read as 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <whr/log.h>

#include "test-common.h"

char *
test_read_file(const char *relative, size_t *len)
{
	return test_read_file_in("WHR_TEST_DATA", relative, len);
}

char *
test_read_sample(const char *name, size_t *len)
{
	char file[256];
	char *text;

	snprintf(file, sizeof(file), "%s.json", name);
	text = test_read_file_in("WHR_SAMPLES", file, len);
	ck_assert_uint_gt(*len, 0);
	return text;
}

char *
test_read_file_in(const char *dir_env, const char *relative, size_t *len)
{
	const char *dir = getenv(dir_env);
	char path[4096];
	FILE *f;
	char *buf;
	long size;

	ck_assert_msg(dir != NULL, "%s is not set", dir_env);
	snprintf(path, sizeof(path), "%s/%s", dir, relative);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "missing fixture %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	ck_assert_int_ge(size, 0);
	rewind(f);
	buf = malloc((size_t)size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
	buf[size] = '\0';
	fclose(f);
	if (len != NULL)
		*len = (size_t)size;
	return buf;
}

void
test_folder_new(char *dir, size_t size, const char *name)
{
	ck_assert_int_lt(snprintf(dir, size, "/tmp/whr-%s-XXXXXX", name),
			 (int)size);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

void
test_folder_remove(const char *dir)
{
	char cmd[128];

	ck_assert_int_lt(snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir),
			 (int)sizeof(cmd));
	ck_assert_int_eq(system(cmd), 0);
}

Suite *
test_suite_of(const char *unit, const TTest *const *tests, size_t n)
{
	Suite *s = suite_create(unit);

	test_cases_add_each(s, unit, NULL, NULL, tests, n);
	return s;
}

static TCase *
tcase_of(Suite *s, const char *tcase_name, const TTest *const *tests,
	 size_t n)
{
	TCase *tc = tcase_create(tcase_name);
	size_t i;

	for (i = 0; i < n; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	return tc;
}

void
test_cases_add_each(Suite *s, const char *unit, SFun setup, SFun teardown,
		    const TTest *const *tests, size_t n)
{
	size_t len = strlen(unit);
	size_t i;

	for (i = 0; i < n; i++) {
		const char *name = tests[i]->name;
		TCase *tc;

		if (strncmp(name, unit, len) == 0 && name[len] == '_')
			name += len + 1;
		tc = tcase_of(s, name, &tests[i], 1);
		if (setup != NULL || teardown != NULL)
			tcase_add_checked_fixture(tc, setup, teardown);
	}
}

void
test_case_add(Suite *s, const char *tcase_name, const TTest *const *tests,
	      size_t n)
{
	tcase_of(s, tcase_name, tests, n);
}

static char *log_text;
static size_t log_len;

const char *
test_log_text(void)
{
	return log_text != NULL ? log_text : "";
}

void
test_log_clear(void)
{
	free(log_text);
	log_text = NULL;
	log_len = 0;
}

/* Keep expected error messages out of the test output unless asked, and
 * keep them for tests that check what was logged. */
static void
capture_log(enum whr_log_level level, const char *line, void *userdata)
{
	size_t n = strlen(line);
	char *grown = realloc(log_text, log_len + n + 2);

	if (grown != NULL) {
		memcpy(grown + log_len, line, n);
		grown[log_len + n] = '\n';
		grown[log_len + n + 1] = '\0';
		log_text = grown;
		log_len += n + 1;
	}
	if (getenv("WHR_TEST_VERBOSE") != NULL)
		fprintf(stderr, "%s\n", line);
}

int
main(void)
{
	SRunner *sr = srunner_create(test_suite());
	int failed;

	whr_log_set_handler(capture_log, NULL);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	test_log_clear();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
