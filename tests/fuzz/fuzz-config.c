/*
 * The settings parsers: whr_parse_size() and whr_parse_duration() on the
 * value, then config_set() on a key chosen by the first byte. The rest
 * of the input is the value; a NUL byte in it splits off a second value,
 * set on the same key afterwards (a setting given twice replaces the
 * first). The *-file keys get the path of a temporary file holding the
 * value, so that no fuzzed path is ever opened.
 */
#include "fuzz-common.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <whr/receiver.h>

#include "config.h"

static const char *const keys[] = {
	"listen", "data-dir", "secrets", "secrets-file", "previous-secrets",
	"previous-secrets-file", "max-body", "max-header-size",
	"read-timeout", "idle-timeout", "shutdown-timeout",
	"max-connections", "log-level", "log-format", "no-such-key", "",
};

/* An unlinked temporary file, reached through /proc: nothing is left
 * behind when a run ends, crashes included. */
static char file_path[64];
static int file_fd = -1;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char name[] = "/tmp/whr-fuzz-config-XXXXXX";

	(void)argc;
	(void)argv;
	file_fd = mkstemp(name);
	FUZZ_CHECK(file_fd >= 0);
	FUZZ_CHECK(unlink(name) == 0);
	snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
	return 0;
}

static const char *
file_holding(const char *text)
{
	size_t len = strlen(text);

	FUZZ_CHECK(ftruncate(file_fd, 0) == 0);
	FUZZ_CHECK(pwrite(file_fd, text, len, 0) == (ssize_t)len);
	return file_path;
}

static void
check_parsers(const char *value)
{
	size_t size = 0;
	int64_t us = -1;
	int rc;

	rc = whr_parse_size(value, &size);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0)
		FUZZ_CHECK(value[0] >= '0' && value[0] <= '9');
	rc = whr_parse_duration(value, &us);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0)
		FUZZ_CHECK(us >= 0 && value[0] >= '0' && value[0] <= '9');
}

/* Whatever was accepted stays within the documented bounds. */
static void
check_config(const struct config *c)
{
	size_t i;

	FUZZ_CHECK(c->max_body >= 1 && c->max_body <= 64 * 1024 * 1024);
	FUZZ_CHECK(c->max_header_size >= 1024 &&
		   c->max_header_size <= 1024 * 1024);
	FUZZ_CHECK(c->read_timeout_us >= 1000 &&
		   c->read_timeout_us <= 24LL * 3600 * 1000000);
	FUZZ_CHECK(c->idle_timeout_us >= 1000 &&
		   c->idle_timeout_us <= 24LL * 3600 * 1000000);
	FUZZ_CHECK(c->shutdown_timeout_us >= 1000 &&
		   c->shutdown_timeout_us <= 24LL * 3600 * 1000000);
	FUZZ_CHECK(c->max_connections >= 1 && c->max_connections <= 1000000);
	for (i = 0; i < c->n_listen; i++)
		FUZZ_CHECK(c->listen[i] != NULL && c->listen[i][0] != '\0' &&
			   strchr(c->listen[i], ':') != NULL);
	FUZZ_CHECK(c->data_dir == NULL || c->data_dir[0] != '\0');
	FUZZ_CHECK((c->secrets_file == NULL) ==
		   (c->secrets_from_file.n == 0));
	/* A previous secrets file may be empty (no rotation under way). */
	FUZZ_CHECK(c->previous_file != NULL ||
		   c->previous_from_file.n == 0);
}

static void
set(struct config *c, const char *key, const char *value)
{
	bool is_file = strstr(key, "-file") != NULL;
	int rc;

	check_parsers(value);
	rc = config_set(c, key, is_file && *value != '\0' ?
				file_holding(value) : value, NULL);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOENT);
	FUZZ_CHECK(rc != -ENOENT || strcmp(key, "no-such-key") == 0 ||
		   *key == '\0');
	check_config(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *key;
	struct config c;
	char *value;
	size_t first_len;

	if (size == 0)
		return 0;
	key = keys[data[0] % (sizeof(keys) / sizeof(*keys))];
	/* Deterministic runs: the log settings are process-wide, and
	 * log-level / log-format change them. */
	whr_log_set_level(data[0] & 0x80 ? WHR_LOG_DEBUG : WHR_LOG_INFO);
	whr_log_set_format(data[0] & 0x40 ? WHR_LOG_FORMAT_JSON
					  : WHR_LOG_FORMAT_TEXT);
	value = fuzz_strndup(data + 1, size - 1);
	first_len = strlen(value);

	config_init(&c);
	set(&c, key, value);
	if (first_len < size - 1)
		set(&c, key, value + first_len + 1);
	config_finish(&c);
	free(value);
	return 0;
}
