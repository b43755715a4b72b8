/*
 * Log rendering: levels, text escaping, JSON lines that parse.
 */
#include <errno.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "log.h"
#include "test-common.h"

static const char *
last_line(void)
{
	static char line[20000];
	const char *text = test_log_text();
	const char *end = text + strlen(text);
	const char *start;

	ck_assert_ptr_ne(end, text);
	end--;	/* the newline */
	start = end;
	while (start > text && start[-1] != '\n')
		start--;
	ck_assert_uint_lt((size_t)(end - start), sizeof(line));
	memcpy(line, start, (size_t)(end - start));
	line[end - start] = '\0';
	return line;
}

START_TEST(log_levels)
{
	whr_log_set_level(WHR_LOG_WARN);
	test_log_clear();
	whr_log(WHR_LOG_INFO, "hidden");
	whr_log(WHR_LOG_DEBUG, "hidden");
	ck_assert_str_eq(test_log_text(), "");
	whr_log(WHR_LOG_WARN, "shown %d", 1);
	ck_assert_ptr_nonnull(strstr(last_line(), "warn  shown 1"));
	whr_log_set_level(WHR_LOG_INFO);
}
END_TEST

START_TEST(log_text_escaping)
{
	struct log_field f[] = {
		LOG_STR("plain", "abc"),
		LOG_STR("spaced", "a b"),
		LOG_STR("quoted", "say \"hi\"\n"),
		LOG_STR("empty", ""),
		LOG_STR("skipped", NULL),
		LOG_INT("n", -5),
		LOG_MILLIS("ms", 1234),
	};

	whr_log_set_format(WHR_LOG_FORMAT_TEXT);
	test_log_clear();
	log_fields(WHR_LOG_INFO, "line\none", f, sizeof(f) / sizeof(f[0]));
	ck_assert_ptr_null(strchr(last_line(), '\n'));
	ck_assert_ptr_nonnull(strstr(last_line(),
		"info  line\\none plain=abc spaced=\"a b\" quoted=\"say \\\"hi\\\"\\n\" empty=\"\" n=-5 ms=1.234"));
	ck_assert_ptr_null(strstr(last_line(), "skipped"));
}
END_TEST

START_TEST(log_json_parses)
{
	char big[5000];
	struct log_field f[] = {
		LOG_STR("path", "/a\"b\\c\x01"),
		LOG_INT("status", 200),
		LOG_MILLIS("duration_ms", 5),
		LOG_STR("big", big),
	};
	char err[200];
	yajl_val v;
	/* yajl_tree_get() paths end with NULL. */
	const char *keys[][2] = { { "msg", NULL }, { "path", NULL },
				   { "status", NULL }, { "level", NULL },
				   { "time", NULL } };

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	whr_log_set_format(WHR_LOG_FORMAT_JSON);
	test_log_clear();
	log_fields(WHR_LOG_INFO, "request \"quoted\"", f,
		   sizeof(f) / sizeof(f[0]));
	v = yajl_tree_parse(last_line(), err, sizeof(err));
	ck_assert_msg(v != NULL, "not JSON: %s: %s", err, last_line());
	ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(v, keys[0], yajl_t_string)),
			 "request \"quoted\"");
	ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(v, keys[1], yajl_t_string)),
			 "/a\"b\\c\x01");
	ck_assert_int_eq(YAJL_GET_INTEGER(yajl_tree_get(v, keys[2], yajl_t_number)),
			 200);
	ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(v, keys[3], yajl_t_string)),
			 "info");
	ck_assert_ptr_nonnull(yajl_tree_get(v, keys[4], yajl_t_string));
	yajl_tree_free(v);

	/* A huge message still makes one valid JSON line. */
	test_log_clear();
	whr_log(WHR_LOG_ERROR, "%s%s%s", big, big, big);
	v = yajl_tree_parse(last_line(), err, sizeof(err));
	ck_assert_msg(v != NULL, "not JSON: %s", err);
	yajl_tree_free(v);
	whr_log_set_format(WHR_LOG_FORMAT_TEXT);
}
END_TEST

START_TEST(log_errno_and_names)
{
	enum whr_log_level level;
	enum whr_log_format format;

	test_log_clear();
	errno = ENOENT;
	whr_log_errno(WHR_LOG_ERROR, "open %s", "x");
	ck_assert_ptr_nonnull(strstr(last_line(), "open x: No such file"));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(log_level_from_string("WARN", &level), 0);
	ck_assert_int_eq(level, WHR_LOG_WARN);
	ck_assert_int_eq(log_level_from_string("debug", &level), 0);
	ck_assert_int_eq(level, WHR_LOG_DEBUG);
	ck_assert_int_eq(log_level_from_string("loud", &level), -EINVAL);
	ck_assert_int_eq(log_format_from_string("JSON", &format), 0);
	ck_assert_int_eq(format, WHR_LOG_FORMAT_JSON);
	ck_assert_int_eq(log_format_from_string("yaml", &format), -EINVAL);
}
END_TEST

START_TEST(log_capture_keeps_the_first_error)
{
	char why[64];

	whr_log_set_level(WHR_LOG_ERROR);
	test_log_clear();
	log_capture(why, sizeof(why));
	whr_log(WHR_LOG_INFO, "not kept");
	errno = EACCES;
	whr_log_errno(WHR_LOG_WARN, "cannot open %s", "f");
	whr_log(WHR_LOG_ERROR, "the second");
	log_capture(NULL, 0);
	ck_assert_str_eq(test_log_text(), "");
	ck_assert_str_eq(why, "cannot open f: Permission denied");
	whr_log(WHR_LOG_ERROR, "after");
	ck_assert_ptr_nonnull(strstr(last_line(), "after"));

	/* Nothing said: empty; a message longer than the buffer: cut. */
	log_capture(why, sizeof(why));
	ck_assert_str_eq(why, "");
	whr_log(WHR_LOG_ERROR, "%0100d", 7);
	log_capture(NULL, 0);
	ck_assert_uint_eq(strlen(why), sizeof(why) - 1);
	whr_log_set_level(WHR_LOG_INFO);
}
END_TEST

TEST_SUITE_OF(log,
	log_levels,
	log_text_escaping,
	log_json_parses,
	log_errno_and_names,
	log_capture_keeps_the_first_error)
