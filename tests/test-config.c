/*
 * Settings: value parsers, the option table, environment and flags.
 */
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <whr/receiver.h>

#include "config.h"
#include "test-common.h"

#define S32 "0123456789abcdef0123456789abcdef"

/* whr_parse_size() and whr_parse_duration(), the public parsers: each
 * text of @p good gives its value; each of @p bad is refused (-EINVAL),
 * and a failure leaves the result as it was. */
struct parsed {
	const char *text;
	int64_t value;
};

static void
assert_parser(int (*parse)(const char *text, int64_t *v),
	      const struct parsed *good, size_t n_good,
	      const char *const *bad, size_t n_bad)
{
	int64_t v = 0;
	size_t i;

	for (i = 0; i < n_good; i++) {
		ck_assert_msg(parse(good[i].text, &v) == 0, "%s", good[i].text);
		ck_assert_int_eq(v, good[i].value);
	}
	for (i = 0; i < n_bad; i++) {
		v = 42;
		ck_assert_msg(parse(bad[i], &v) == -EINVAL, "%s", bad[i]);
		ck_assert_int_eq(v, 42);
	}
}

/* whr_parse_size() through an int64_t, what it writes passed on. */
static int
parse_size(const char *text, int64_t *v)
{
	size_t size = (size_t)*v;
	int rc = whr_parse_size(text, &size);

	*v = (int64_t)size;
	return rc;
}

START_TEST(config_sizes)
{
	static const struct parsed good[] = {
		{ "0", 0 }, { "1", 1 }, { "2048", 2048 }, { "1b", 1 },
		{ "1k", 1024 }, { "1KiB", 1024 }, { "16kb", 16384 },
		{ "1MiB", 1048576 }, { "2m", 2097152 }, { "1GiB", 1073741824 },
		{ "1B", 1 }, { "1KB", 1024 }, { "1mib", 1048576 },
		{ "3G", 3221225472U }, { "007k", 7168 },
	};
	static const char *const bad[] = {
		"", "k", "-1", "1.5MiB", "1 MiB", "1TiB", "1MiBs", "0x10",
		"99999999999999999999", "18446744073709551615k",
		" 1", "+1", "1 ", "1kk", "1ib", "1e3",
	};
	size_t v;

	assert_parser(parse_size, good, sizeof(good) / sizeof(good[0]), bad,
		      sizeof(bad) / sizeof(bad[0]));
	ck_assert_int_eq(whr_parse_size(NULL, &v), -EINVAL);
	ck_assert_int_eq(whr_parse_size("1", NULL), -EINVAL);
}
END_TEST

START_TEST(config_durations)
{
	static const struct parsed good[] = {
		{ "30", 30000000 }, { "30s", 30000000 }, { "500ms", 500000 },
		{ "2m", 120000000 }, { "1h", 3600000000LL }, { "0", 0 },
		{ "1d", 86400000000LL }, { "7D", 604800000000LL },
		{ "1MS", 1000 }, { "2S", 2000000 }, { "0ms", 0 },
		{ "106751991d", 106751991 * 86400000000LL },
		{ "9223372036854ms", 9223372036854000LL },
	};
	static const char *const bad[] = {
		"", "s", "-1s", "1.5s", "1 s", "10us", "1w",
		"99999999999999999999h", "106751992d", "9223372036855s",
		" 1s", "+1s", "1s ", "1sec", "1mss", "1e3",
	};
	int64_t v;

	assert_parser(whr_parse_duration, good, sizeof(good) / sizeof(good[0]),
		      bad, sizeof(bad) / sizeof(bad[0]));
	ck_assert_int_eq(whr_parse_duration(NULL, &v), -EINVAL);
	ck_assert_int_eq(whr_parse_duration("1s", NULL), -EINVAL);
}
END_TEST

START_TEST(config_defaults)
{
	struct config c;

	config_init(&c);
	ck_assert_uint_eq(c.max_body, 1048576);
	ck_assert_uint_eq(c.max_header_size, 16384);
	ck_assert_int_eq(c.read_timeout_us, 30000000);
	ck_assert_int_eq(c.idle_timeout_us, 60000000);
	ck_assert_int_eq(c.shutdown_timeout_us, 10000000);
	ck_assert_uint_eq(c.max_connections, 1000);
	ck_assert_uint_eq(c.n_listen, 0);
	/* Issue 13's: the front facing the internet. */
	ck_assert_int_eq(c.header_timeout_us, 10000000);
	ck_assert_int_eq(c.write_timeout_us, 30000000);
	ck_assert_uint_eq(c.max_body_memory, 32 * 1048576);
	ck_assert_uint_eq(c.min_body_rate, 1024);
	ck_assert_uint_eq(c.max_connections_per_client, 64);
	ck_assert_uint_eq(c.n_trusted_proxies, 0);
	config_finish(&c);
}
END_TEST

/* The defaults that are no value of their own, resolved as a run
 * starts; an address given later replaces the default one. */
START_TEST(config_resolve_defaults)
{
	struct config c;

	config_init(&c);
	ck_assert_uint_eq(c.work_window, 10000);
	ck_assert_int_eq(c.retry_delay_us, 1000000);
	ck_assert_int_eq(c.retry_max_delay_us, 3600000000LL);
	ck_assert_int_eq(c.retry_max_age_us, 86400000000LL);
	ck_assert_int_eq(c.handler_timeout_us, 60000000);
	ck_assert_int_eq(c.retain_us, 7 * 86400000000LL);
	ck_assert_uint_eq(c.workers, 0);
	ck_assert_int_eq(config_resolve(&c), 0);
	ck_assert_uint_ge(c.workers, 1);
	ck_assert_uint_eq(c.n_listen, 1);
	ck_assert_str_eq(c.listen[0], "127.0.0.1:8080");
	ck_assert_int_eq(config_set(&c, "listen", "[::1]:9", NULL), 0);
	ck_assert_int_eq(config_set(&c, "listen", "127.0.0.1:9", NULL), 0);
	ck_assert_uint_eq(c.n_listen, 2);
	ck_assert_str_eq(c.listen[0], "[::1]:9");
	ck_assert_int_eq(config_set(&c, "workers", "3", NULL), 0);
	ck_assert_int_eq(config_resolve(&c), 0);
	ck_assert_uint_eq(c.workers, 3);
	ck_assert_uint_eq(c.n_listen, 2);
	config_finish(&c);

	/* A bad address does not drop the default. */
	config_init(&c);
	ck_assert_int_eq(config_resolve(&c), 0);
	ck_assert_int_eq(config_set(&c, "listen", "bad", NULL), -EINVAL);
	ck_assert_uint_eq(c.n_listen, 1);
	ck_assert_str_eq(c.listen[0], "127.0.0.1:8080");
	config_finish(&c);
}
END_TEST

START_TEST(config_set_values)
{
	static const struct {
		const char *key;
		const char *value;
		int rc;
	} cases[] = {
		{ "max-body", "2KiB", 0 },
		{ "max-body", "0", -EINVAL },
		{ "max-body", "65MiB", -EINVAL },
		{ "max-header-size", "512", -EINVAL },
		{ "max-header-size", "64KiB", 0 },
		{ "read-timeout", "250ms", 0 },
		{ "read-timeout", "0", -EINVAL },
		{ "idle-timeout", "25h", -EINVAL },
		{ "max-connections", "0", -EINVAL },
		{ "max-connections", "12", 0 },
		{ "max-connections", "12x", -EINVAL },
		{ "max-connections-per-client", "0", -EINVAL },
		{ "max-connections-per-client", "8", 0 },
		{ "header-timeout", "2s", 0 },
		{ "header-timeout", "0", -EINVAL },
		{ "write-timeout", "1m", 0 },
		{ "max-body-memory", "1KiB", -EINVAL },
		{ "max-body-memory", "4MiB", 0 },
		{ "min-body-rate", "0", 0 },
		{ "min-body-rate", "2GiB", -EINVAL },
		{ "trusted-proxy", "127.0.0.1", 0 },
		{ "trusted-proxy", "10.0.0.0/8, fd00::/8", 0 },
		{ "trusted-proxy", "10.0.0.0/33", -EINVAL },
		{ "trusted-proxy", "127.0.0.2,nope", -EINVAL },
		{ "trusted-proxy", "", -EINVAL },
		{ "log-level", "bogus", -EINVAL },
		{ "log-format", "xml", -EINVAL },
		{ "listen", "127.0.0.1:80", 0 },
		{ "listen", "[::1]:0", 0 },
		{ "listen", "localhost:65535", 0 },
		{ "listen", "::1:80", -EINVAL },
		{ "listen", "127.0.0.1", -EINVAL },
		{ "listen", "127.0.0.1:65536", -EINVAL },
		{ "listen", "127.0.0.1:-1", -EINVAL },
		{ "listen", ":80", -EINVAL },
		{ "listen", "[::1:80", -EINVAL },
		{ "data-dir", "", -EINVAL },
		{ "secrets", "short", -EINVAL },
		{ "secrets", S32, 0 },
		{ "no-such-key", "1", -ENOENT },
	};
	struct config c;
	size_t i;

	config_init(&c);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = config_set(&c, cases[i].key, cases[i].value, NULL);

		ck_assert_msg(rc == cases[i].rc, "%s=%s: %d", cases[i].key,
			      cases[i].value, rc);
	}
	ck_assert_uint_eq(c.max_body, 2048);
	ck_assert_uint_eq(c.max_header_size, 65536);
	ck_assert_int_eq(c.read_timeout_us, 250000);
	ck_assert_uint_eq(c.max_connections, 12);
	ck_assert_uint_eq(c.n_listen, 3);
	ck_assert_str_eq(c.listen[1], "[::1]:0");
	ck_assert_uint_eq(c.max_connections_per_client, 8);
	ck_assert_int_eq(c.header_timeout_us, 2000000);
	ck_assert_int_eq(c.write_timeout_us, 60000000);
	ck_assert_uint_eq(c.max_body_memory, 4 * 1048576);
	ck_assert_uint_eq(c.min_body_rate, 0);
	/* Added, one call or a list at a time; a bad entry adds nothing. */
	ck_assert_uint_eq(c.n_trusted_proxies, 3);
	ck_assert_uint_eq(c.trusted_proxies[2].prefix, 8);
	ck_assert_uint_eq(c.trusted_proxies[2].base.len, 16);
	/* A list with a bad entry adds nothing. */
	ck_assert_int_eq(config_set(&c, "listen", "127.0.0.1:9,bad", NULL),
			 -EINVAL);
	ck_assert_uint_eq(c.n_listen, 3);
	config_finish(&c);
}
END_TEST

/* Issue 14's: /metrics on an address of its own, the rate limit on
 * failures and its burst. */
START_TEST(config_admin_and_rate_limit)
{
	static const struct {
		const char *key;
		const char *value;
		int rc;
		double rate;
	} cases[] = {
		{ "rate-limit", "5", 0, 5 },
		{ "rate-limit", "5/s", 0, 5 },
		{ "rate-limit", "30/m", 0, 0.5 },
		{ "rate-limit", "30/M", 0, 0.5 },
		{ "rate-limit", "0", 0, 0 },
		{ "rate-limit", "off", 0, 0 },
		{ "rate-limit", "1000000", 0, 1000000 },
		{ "rate-limit", "1000001", -EINVAL, 1000000 },
		{ "rate-limit", "-1", -EINVAL, 1000000 },
		{ "rate-limit", "5/h", -EINVAL, 1000000 },
		{ "rate-limit", "1.5", -EINVAL, 1000000 },
		{ "rate-limit", "", -EINVAL, 1000000 },
		{ "rate-limit", "/s", -EINVAL, 1000000 },
	};
	struct config c;
	size_t i;

	config_init(&c);
	ck_assert(c.rate_limit == 0);
	ck_assert_ptr_null(c.admin_listen);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = config_set(&c, cases[i].key, cases[i].value, NULL);

		ck_assert_msg(rc == cases[i].rc && c.rate_limit == cases[i].rate,
			      "%s=%s: %d, %g", cases[i].key, cases[i].value, rc,
			      c.rate_limit);
	}
	/* The burst: five seconds' worth, at least 5, unless given. */
	ck_assert_int_eq(config_set(&c, "rate-limit", "3", NULL), 0);
	ck_assert_uint_eq(config_rate_limit_burst(&c), 15);
	ck_assert_int_eq(config_set(&c, "rate-limit", "10/m", NULL), 0);
	ck_assert_uint_eq(config_rate_limit_burst(&c), 5);
	ck_assert_int_eq(config_set(&c, "rate-limit", "90/m", NULL), 0);
	ck_assert_uint_eq(config_rate_limit_burst(&c), 8);	/* 7.5 */
	ck_assert_int_eq(config_set(&c, "rate-limit-burst", "0", NULL),
			 -EINVAL);
	ck_assert_int_eq(config_set(&c, "rate-limit-burst", "2", NULL), 0);
	ck_assert_uint_eq(config_rate_limit_burst(&c), 2);

	ck_assert_int_eq(config_set(&c, "admin-listen", "127.0.0.1", NULL),
			 -EINVAL);
	ck_assert_int_eq(config_set(&c, "admin-listen", "", NULL), -EINVAL);
	ck_assert_int_eq(config_set(&c, "admin-listen", "[::1]:9090", NULL),
			 0);
	ck_assert_int_eq(config_set(&c, "admin-listen", "0.0.0.0:0", NULL),
			 0);
	ck_assert_str_eq(c.admin_listen, "0.0.0.0:0");
	config_finish(&c);
}
END_TEST

START_TEST(config_environment_then_flags)
{
	char *argv[] = { "--max-body", "4KiB", "--listen=127.0.0.1:1",
			 "--listen", "127.0.0.1:2", "--trusted-proxy",
			 "192.0.2.0/24", "--trusted-proxy=::1" };
	struct config c;

	setenv("WHR_MAX_BODY", "3KiB", 1);
	setenv("WHR_IDLE_TIMEOUT", "5s", 1);
	setenv("WHR_LISTEN", "127.0.0.1:7, [::1]:8", 1);
	setenv("MS_WebHookReceiverSecret_Custom", S32, 1);
	setenv("WHR_READ_TIMEOUT", "", 1);	/* empty: unset */
	setenv("WHR_TRUSTED_PROXY", "127.0.0.1 10.0.0.0/8", 1);
	config_init(&c);
	ck_assert_int_eq(config_from_environment(&c), 0);
	ck_assert_uint_eq(c.max_body, 3072);
	ck_assert_int_eq(c.idle_timeout_us, 5000000);
	ck_assert_int_eq(c.read_timeout_us, 30000000);
	ck_assert_uint_eq(c.n_listen, 2);
	ck_assert_str_eq(c.listen[1], "[::1]:8");
	ck_assert_uint_eq(c.secrets.n, 1);
	ck_assert_uint_eq(c.n_trusted_proxies, 2);

	/* Flags win; the first --listen replaces the variable's list, the
	 * first --trusted-proxy the variable's. */
	ck_assert_int_eq(config_from_arguments(
				 &c, (int)(sizeof(argv) / sizeof(argv[0])),
				 argv),
			 0);
	ck_assert_uint_eq(c.max_body, 4096);
	ck_assert_uint_eq(c.n_listen, 2);
	ck_assert_str_eq(c.listen[0], "127.0.0.1:1");
	ck_assert_str_eq(c.listen[1], "127.0.0.1:2");
	ck_assert_uint_eq(c.n_trusted_proxies, 2);
	ck_assert_uint_eq(c.trusted_proxies[0].prefix, 24);
	ck_assert_uint_eq(c.trusted_proxies[1].prefix, 128);
	config_finish(&c);
	unsetenv("WHR_TRUSTED_PROXY");

	setenv("WHR_MAX_BODY", "lots", 1);
	config_init(&c);
	test_log_clear();
	ck_assert_int_eq(config_from_environment(&c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(test_log_text(), "WHR_MAX_BODY"));
	config_finish(&c);
}
END_TEST

START_TEST(config_bad_flags)
{
	static struct {
		int argc;
		char *argv[2];
		const char *message;
	} cases[] = {
		{ 1, { "--nope" }, "unknown option '--nope'" },
		{ 1, { "--nope=1" }, "unknown option '--nope'" },
		{ 1, { "serve" }, "unexpected argument 'serve'" },
		{ 1, { "--max-body" }, "--max-body needs a value" },
		{ 2, { "--max-body", "big" }, "--max-body: invalid value 'big'" },
		{ 1, { "--secrets=" S32 }, "cannot be given on the command line" },
		{ 1, { "--" }, "unexpected argument" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config c;

		config_init(&c);
		test_log_clear();
		ck_assert_int_ne(config_from_arguments(&c, cases[i].argc,
						       cases[i].argv), 0);
		ck_assert_msg(strstr(test_log_text(), cases[i].message) != NULL,
			      "case %zu: '%s' lacks '%s'", i, test_log_text(),
			      cases[i].message);
		ck_assert_ptr_null(strstr(test_log_text(), S32));
		config_finish(&c);
	}
}
END_TEST

START_TEST(config_secrets_file_wins)
{
	char path[] = "/tmp/whr-config-XXXXXX";
	int fd = mkstemp(path);
	const char *text = "tenant=" S32 "\n" S32 "\n";
	const struct secret_list *l;
	const char *source;
	struct config c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	config_init(&c);
	ck_assert_int_eq(config_set(&c, "secrets", S32, NULL), 0);
	l = config_secrets(&c, &source);
	ck_assert_uint_eq(l->n, 1);
	ck_assert_str_eq(source, "MS_WebHookReceiverSecret_Custom");
	ck_assert_int_eq(config_set(&c, "secrets-file", path, NULL), 0);
	l = config_secrets(&c, &source);
	ck_assert_uint_eq(l->n, 2);
	ck_assert_str_eq(source, path);
	config_finish(&c);

	/* A file without any secret is an error, and a failed second
	 * setting keeps the first one whole (found by fuzz-config). */
	config_init(&c);
	ck_assert_int_eq(config_set(&c, "secrets-file", path, NULL), 0);
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, "\n\n", 2), 2);
	close(fd);
	ck_assert_int_eq(config_set(&c, "secrets-file", path, NULL), -EINVAL);
	l = config_secrets(&c, &source);
	ck_assert_uint_eq(l->n, 2);
	config_finish(&c);
	unlink(path);
}
END_TEST

TEST_SUITE_OF(config,
	config_sizes,
	config_durations,
	config_defaults,
	config_resolve_defaults,
	config_set_values,
	config_admin_and_rate_limit,
	config_environment_then_flags,
	config_bad_flags,
	config_secrets_file_wins)
