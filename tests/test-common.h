/*
 * Shared by the Check unit tests: each test-<unit>.c ends with
 * TEST_SUITE_OF(<unit>, <tests>...) listing its tests, or, where a suite
 * needs more (loop tests, tests only some backends run), with
 * TEST_SUITE(<unit>) { ... }; test-main.c runs the one suite linked into
 * the executable.
 */
#ifndef WHR_TEST_COMMON_H
#define WHR_TEST_COMMON_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>

Suite *test_suite(void);

/* Add @p fn to a TCase named after the behaviour it checks. */
#define ADD_TEST(suite, tcase_name, fn)                                      \
	do {                                                                 \
		TCase *tc_ = tcase_create(tcase_name);                       \
		tcase_add_test(tc_, fn);                                     \
		suite_add_tcase((suite), tc_);                               \
	} while (0)

#define TEST_SUITE(name)                                                     \
	static void test_suite_fill_(Suite *s);                              \
	Suite *test_suite(void)                                              \
	{                                                                    \
		Suite *s = suite_create(#name);                              \
		test_suite_fill_(s);                                         \
		return s;                                                    \
	}                                                                    \
	static void test_suite_fill_(Suite *s)

/* The suite @p unit with one TCase per test, named after the behaviour
 * (the test's name less "<unit>_"), so that a name is written once. */
Suite *test_suite_of(const char *unit, const TTest *const *tests,
		     size_t n);

/* Add @p tests to @p s as test_suite_of() does, @p setup and
 * @p teardown (either may be NULL) run around each in its own process
 * (a checked fixture). */
void test_cases_add_each(Suite *s, const char *unit, SFun setup,
			 SFun teardown, const TTest *const *tests, size_t n);

/* Add the tests @p tests to one TCase @p tcase_name of @p s. */
void test_case_add(Suite *s, const char *tcase_name,
		   const TTest *const *tests, size_t n);

/* A suite that is a plain list of tests, each a TCase of its own:
 * TEST_SUITE_OF(config, config_sizes, config_durations, ...). */
#define TEST_SUITE_OF(name, ...)                                             \
	Suite *test_suite(void)                                              \
	{                                                                    \
		const TTest *tests_[] = { __VA_ARGS__ };                     \
		return test_suite_of(#name, tests_,                          \
				     sizeof(tests_) / sizeof(tests_[0]));    \
	}

/* Inside TEST_SUITE, for a suite that adds some tests only on one
 * backend: each test a TCase of its own, as in TEST_SUITE_OF. */
#define ADD_EACH(suite, unit, ...)                                           \
	ADD_EACH_WITH_FIXTURE(suite, unit, NULL, NULL, __VA_ARGS__)

/* The same, each test between @p setup and @p teardown. */
#define ADD_EACH_WITH_FIXTURE(suite, unit, setup, teardown, ...)             \
	do {                                                                 \
		const TTest *tests_[] = { __VA_ARGS__ };                     \
		test_cases_add_each((suite), #unit, (setup), (teardown),     \
				    tests_,                                  \
				    sizeof(tests_) / sizeof(tests_[0]));     \
	} while (0)

/* Inside TEST_SUITE: several tests in one TCase named after the
 * behaviour they share. */
#define ADD_CASE(suite, tcase_name, ...)                                     \
	do {                                                                 \
		const TTest *tests_[] = { __VA_ARGS__ };                     \
		test_case_add((suite), (tcase_name), tests_,                 \
			      sizeof(tests_) / sizeof(tests_[0]));           \
	} while (0)

/* Read a fixture under tests/data (WHR_TEST_DATA is set by meson). The
 * caller frees the result; the test fails when the file is missing. */
char *test_read_file(const char *relative, size_t *len);
/* The same, in the folder named by the environment variable @p dir_env. */
char *test_read_file_in(const char *dir_env, const char *relative,
			size_t *len);
/* The sample delivery body NAME.json (WHR_SAMPLES), not empty. */
char *test_read_sample(const char *name, size_t *len);

/* A new, empty folder /tmp/whr-NAME-XXXXXX into @p dir (@p size bytes,
 * at least 64), for a store; test_folder_remove() deletes it and all it
 * holds. */
void test_folder_new(char *dir, size_t size, const char *name);
void test_folder_remove(const char *dir);

/* Every log line written since the test started (or the last clear),
 * newline-separated; borrowed until the next log line or clear. */
const char *test_log_text(void);
void test_log_clear(void);

#endif /* WHR_TEST_COMMON_H */
