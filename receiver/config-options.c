/*
 * The option table and its parsers: for each option its name (the key
 * for whr_receiver_set() and the flag --name), its environment variable,
 * its default, its help text and how its value is read and checked.
 */
#include "config-internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "util.h"

#define MAX_BODY_LIMIT ((size_t)64 * 1024 * 1024)

/* ---- value parsers --------------------------------------------------- */

int
parse_size(const char *s, size_t *out)
{
	static const struct {
		const char *suffix;
		unsigned long long factor;
	} units[] = {
		{ "", 1 },	{ "b", 1 },
		{ "k", 1ULL << 10 }, { "kb", 1ULL << 10 }, { "kib", 1ULL << 10 },
		{ "m", 1ULL << 20 }, { "mb", 1ULL << 20 }, { "mib", 1ULL << 20 },
		{ "g", 1ULL << 30 }, { "gb", 1ULL << 30 }, { "gib", 1ULL << 30 },
	};
	unsigned long long v;
	char *end;
	size_t i;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -EINVAL;
	for (i = 0; i < ARRAY_LENGTH(units); i++) {
		if (ascii_equal_nocase(end, units[i].suffix)) {
			if (v > SIZE_MAX / units[i].factor)
				return -EINVAL;
			*out = (size_t)(v * units[i].factor);
			return 0;
		}
	}
	return -EINVAL;
}

int
parse_duration_us(const char *s, int64_t *out)
{
	static const struct {
		const char *suffix;
		int64_t factor;
	} units[] = {
		{ "", 1000000 },	{ "s", 1000000 },
		{ "ms", 1000 },		{ "m", 60 * 1000000LL },
		{ "h", 3600 * 1000000LL }, { "d", 86400 * 1000000LL },
	};
	unsigned long long v;
	char *end;
	size_t i;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -EINVAL;
	for (i = 0; i < ARRAY_LENGTH(units); i++) {
		if (ascii_equal_nocase(end, units[i].suffix)) {
			if (v > (unsigned long long)(INT64_MAX /
						     units[i].factor))
				return -EINVAL;
			*out = (int64_t)v * units[i].factor;
			return 0;
		}
	}
	return -EINVAL;
}

static int
bad_value(const struct option_spec *o, const char *origin, const char *value,
	  const char *expected)
{
	whr_log(WHR_LOG_ERROR, "%s: invalid value '%.80s': expected %s",
		origin, value, expected);
	return -EINVAL;
}

/* ---- option parsers ------------------------------------------------- */

/* HOST:PORT with HOST a name, an IPv4 address or a bracketed IPv6 one. */
static bool
listen_address_valid(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (colon == NULL || colon == s || colon[1] == '\0')
		return false;
	if (s[0] == '[' && colon[-1] != ']')
		return false;
	if (s[0] != '[' && memchr(s, ':', (size_t)(colon - s)) != NULL)
		return false;	/* a bare IPv6 address needs brackets */
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return errno == 0 && *end == '\0' && port >= 0 && port <= 65535 &&
	       colon[1] >= '0' && colon[1] <= '9';
}

static int
add_listen(struct config *c, const char *addr, size_t len,
	   const struct option_spec *o, const char *origin)
{
	char *copy = xstrndup(addr, len);
	char **grown;

	if (copy == NULL)
		return -ENOMEM;
	if (!listen_address_valid(copy)) {
		int rc = bad_value(o, origin, copy,
				   "HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");

		free(copy);
		return rc;
	}
	grown = realloc(c->listen, (c->n_listen + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(copy);
		return -ENOMEM;
	}
	c->listen = grown;
	c->listen[c->n_listen++] = copy;
	return 0;
}

/* One address per call; a list (commas or spaces) from the variable.
 * All or nothing: a bad entry leaves the list as it was. */
int
config_parse_listen(struct config *c, const struct option_spec *o,
		    const char *value, const char *origin)
{
	size_t before = c->n_listen;
	const char *s = value;
	int rc = 0;

	while (*s != '\0') {
		size_t len = strcspn(s, ", \t\n");

		if (len > 0) {
			rc = add_listen(c, s, len, o, origin);
			if (rc < 0)
				break;
		}
		s += len;
		if (*s != '\0')
			s++;
	}
	if (rc == 0 && c->n_listen == before)
		rc = bad_value(o, origin, value, "HOST:PORT");
	while (rc < 0 && c->n_listen > before)
		free(c->listen[--c->n_listen]);
	return rc;
}

static int
parse_string(char **field, const struct option_spec *o, const char *value,
	     const char *origin)
{
	char *copy;

	if (*value == '\0')
		return bad_value(o, origin, value, "a non-empty path");
	copy = strdup(value);
	if (copy == NULL)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static int
parse_data_dir(struct config *c, const struct option_spec *o,
	       const char *value, const char *origin)
{
	return parse_string(&c->data_dir, o, value, origin);
}

static int
parse_secret_text(struct secret_list *list, const char *text,
		  bool newlines_separate, const char *origin)
{
	struct secret_list parsed;
	int rc;

	rc = secret_list_parse(text, newlines_separate, origin, &parsed);
	if (rc < 0)
		return rc;
	secret_list_finish(list);
	*list = parsed;
	return 0;
}

static int
parse_secrets(struct config *c, const struct option_spec *o,
	      const char *value, const char *origin)
{
	return parse_secret_text(&c->secrets, value, false, origin);
}

static int
parse_previous(struct config *c, const struct option_spec *o,
	       const char *value, const char *origin)
{
	return parse_secret_text(&c->previous, value, false, origin);
}

/* A file is read and checked when it is named, so that a mistake stops
 * start-up with the file's name in the message. */
static int
parse_secret_file(char **path_field, struct secret_list *list,
		  const struct option_spec *o, const char *value,
		  const char *origin)
{
	char source[PATH_MAX + 32];
	struct secret_list parsed;
	char *text = NULL;
	int rc;

	if (*value == '\0')
		return bad_value(o, origin, value, "a file name");
	rc = secret_file_read(value, &text);
	if (rc < 0)
		return -EINVAL;
	snprintf(source, sizeof(source), "secrets file %s", value);
	/* Into a list of our own: a failed setting leaves the old one. */
	rc = secret_list_parse(text, true, source, &parsed);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	if (rc < 0)
		return rc;
	if (parsed.n == 0) {
		whr_log(WHR_LOG_ERROR, "%s: the file holds no secret", source);
		return -EINVAL;
	}
	rc = parse_string(path_field, o, value, origin);
	if (rc < 0) {
		secret_list_finish(&parsed);
		return rc;
	}
	secret_list_finish(list);
	*list = parsed;
	return 0;
}

static int
parse_secrets_file(struct config *c, const struct option_spec *o,
		   const char *value, const char *origin)
{
	return parse_secret_file(&c->secrets_file, &c->secrets_from_file, o,
				 value, origin);
}

static int
parse_previous_file(struct config *c, const struct option_spec *o,
		    const char *value, const char *origin)
{
	return parse_secret_file(&c->previous_file, &c->previous_from_file, o,
				 value, origin);
}

static int
parse_max_body(struct config *c, const struct option_spec *o,
	       const char *value, const char *origin)
{
	size_t v;

	if (parse_size(value, &v) < 0 || v == 0 || v > MAX_BODY_LIMIT)
		return bad_value(o, origin, value,
				 "a size from 1 byte to 64MiB, e.g. 1MiB");
	c->max_body = v;
	return 0;
}

static int
parse_max_header_size(struct config *c, const struct option_spec *o,
		      const char *value, const char *origin)
{
	size_t v;

	if (parse_size(value, &v) < 0 || v < 1024 || v > 1024 * 1024)
		return bad_value(o, origin, value,
				 "a size from 1KiB to 1MiB, e.g. 16KiB");
	c->max_header_size = v;
	return 0;
}

static int
parse_timeout(int64_t *field, const struct option_spec *o, const char *value,
	      const char *origin)
{
	int64_t v;

	if (parse_duration_us(value, &v) < 0 || v < 1000 || v > DAY_US)
		return bad_value(o, origin, value,
				 "a duration from 1ms to 24h, e.g. 30s, 500ms, 2m");
	*field = v;
	return 0;
}

static int
parse_read_timeout(struct config *c, const struct option_spec *o,
		   const char *value, const char *origin)
{
	return parse_timeout(&c->read_timeout_us, o, value, origin);
}

static int
parse_idle_timeout(struct config *c, const struct option_spec *o,
		   const char *value, const char *origin)
{
	return parse_timeout(&c->idle_timeout_us, o, value, origin);
}

static int
parse_shutdown_timeout(struct config *c, const struct option_spec *o,
		       const char *value, const char *origin)
{
	return parse_timeout(&c->shutdown_timeout_us, o, value, origin);
}

/* A whole number from @p min to @p max, in decimal digits only (no sign,
 * no spaces, no suffix). */
static int
parse_count(const struct option_spec *o, const char *value,
	    const char *origin, unsigned long min, unsigned long max,
	    unsigned long *out)
{
	char expected[64];
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (value[0] < '0' || value[0] > '9' || errno != 0 || *end != '\0' ||
	    v < min || v > max) {
		snprintf(expected, sizeof(expected), "a number from %lu to %lu",
			 min, max);
		return bad_value(o, origin, value, expected);
	}
	*out = v;
	return 0;
}

static int
parse_max_connections(struct config *c, const struct option_spec *o,
		      const char *value, const char *origin)
{
	unsigned long v;

	if (parse_count(o, value, origin, 1, 1000000, &v) < 0)
		return -EINVAL;
	c->max_connections = (unsigned)v;
	return 0;
}

static int
parse_workers(struct config *c, const struct option_spec *o,
	      const char *value, const char *origin)
{
	unsigned long v;

	if (parse_count(o, value, origin, 1, 256, &v) < 0)
		return -EINVAL;
	c->workers = (unsigned)v;
	return 0;
}

static int
parse_work_window(struct config *c, const struct option_spec *o,
		  const char *value, const char *origin)
{
	unsigned long v;

	if (parse_count(o, value, origin, 100, 10000000, &v) < 0)
		return -EINVAL;
	c->work_window = (size_t)v;
	return 0;
}

/* Durations of the inbox: from 1 ms to a year. */
static int
parse_long_duration(int64_t *field, const struct option_spec *o,
		    const char *value, const char *origin)
{
	int64_t v;

	if (parse_duration_us(value, &v) < 0 || v < 1000 || v > 366 * DAY_US)
		return bad_value(o, origin, value,
				 "a duration from 1ms to 366d, e.g. 24h, 7d");
	*field = v;
	return 0;
}

static int
parse_retry_delay(struct config *c, const struct option_spec *o,
		  const char *value, const char *origin)
{
	return parse_long_duration(&c->retry_delay_us, o, value, origin);
}

static int
parse_retry_max_delay(struct config *c, const struct option_spec *o,
		      const char *value, const char *origin)
{
	return parse_long_duration(&c->retry_max_delay_us, o, value, origin);
}

static int
parse_retry_max_age(struct config *c, const struct option_spec *o,
		    const char *value, const char *origin)
{
	return parse_long_duration(&c->retry_max_age_us, o, value, origin);
}

static int
parse_handler_timeout(struct config *c, const struct option_spec *o,
		      const char *value, const char *origin)
{
	return parse_long_duration(&c->handler_timeout_us, o, value, origin);
}

static int
parse_retain(struct config *c, const struct option_spec *o,
	     const char *value, const char *origin)
{
	return parse_long_duration(&c->retain_us, o, value, origin);
}

static int
parse_log_level(struct config *c, const struct option_spec *o,
		const char *value, const char *origin)
{
	enum whr_log_level level;

	if (log_level_from_string(value, &level) < 0)
		return bad_value(o, origin, value,
				 "error, warn, info or debug");
	whr_log_set_level(level);
	return 0;
}

static int
parse_log_format(struct config *c, const struct option_spec *o,
		 const char *value, const char *origin)
{
	enum whr_log_format format;

	if (log_format_from_string(value, &format) < 0)
		return bad_value(o, origin, value, "text or json");
	whr_log_set_format(format);
	return 0;
}

const struct option_spec config_options[] = {
	{ "listen", "WHR_LISTEN", true, "HOST:PORT", CONFIG_DEFAULT_LISTEN,
	  "address to listen on, HOST:PORT or [IPv6]:PORT; repeatable (the "
	  "variable takes a comma-separated list); port 0 picks a free port",
	  config_parse_listen },
	{ "data-dir", "WHR_DATA_DIR", true, "DIR", "./whr-data",
	  "folder for whr's data (the durable inbox)", parse_data_dir },
	{ "secrets", "MS_WebHookReceiverSecret_Custom", false, "LIST", "(none)",
	  "receiver secrets: `secret` or `id=secret`, comma-separated, 32 to "
	  "128 characters each (environment only: never on a command line)",
	  parse_secrets },
	{ "secrets-file", "WHR_SECRETS_FILE", true, "FILE", "(none)",
	  "read the secrets from this file instead (same format, newlines "
	  "also separate entries)", parse_secrets_file },
	{ "previous-secrets", "WHR_PREVIOUS_SECRETS", false, "LIST", "(none)",
	  "one previous secret per id, still accepted during a rotation "
	  "(same format; environment only)", parse_previous },
	{ "previous-secrets-file", "WHR_PREVIOUS_SECRETS_FILE", true, "FILE", "(none)",
	  "read the previous secrets from this file instead",
	  parse_previous_file },
	{ "max-body", "WHR_MAX_BODY", true, "SIZE", "1MiB",
	  "largest request body; larger ones get 413 before they are read",
	  parse_max_body },
	{ "max-header-size", "WHR_MAX_HEADER_SIZE", true, "SIZE", "16KiB",
	  "largest request line and headers together", parse_max_header_size },
	{ "read-timeout", "WHR_READ_TIMEOUT", true, "DURATION", "30s",
	  "longest time to receive one whole request, from its first byte",
	  parse_read_timeout },
	{ "idle-timeout", "WHR_IDLE_TIMEOUT", true, "DURATION", "60s",
	  "how long a kept-alive connection may wait for its next request",
	  parse_idle_timeout },
	{ "shutdown-timeout", "WHR_SHUTDOWN_TIMEOUT", true, "DURATION", "10s",
	  "on SIGTERM, how long requests in progress may take to finish",
	  parse_shutdown_timeout },
	{ "max-connections", "WHR_MAX_CONNECTIONS", true, "N", "1000",
	  "most connections open at once; more wait in the listen queue",
	  parse_max_connections },
	{ "workers", "WHR_WORKERS", true, "N", "one per core",
	  "threads that call the handlers", parse_workers },
	{ "work-window", "WHR_WORK_WINDOW", true, "N", "10000",
	  "most open notifications (pending, retrying, running) held in "
	  "memory; more wait in the inbox on disk, in arrival order",
	  parse_work_window },
	{ "retry-delay", "WHR_RETRY_DELAY", true, "DURATION", "1s",
	  "wait before a handler that asked for a retry runs again; doubled "
	  "each time, with jitter", parse_retry_delay },
	{ "retry-max-delay", "WHR_RETRY_MAX_DELAY", true, "DURATION", "1h",
	  "the longest wait between two retries", parse_retry_max_delay },
	{ "retry-max-age", "WHR_RETRY_MAX_AGE", true, "DURATION", "24h",
	  "how long after its arrival (or last replay) a notification is "
	  "retried; then it is dead", parse_retry_max_age },
	{ "handler-timeout", "WHR_HANDLER_TIMEOUT", true, "DURATION", "60s",
	  "a handler running longer is reported in the log", parse_handler_timeout },
	{ "retain", "WHR_RETAIN", true, "DURATION", "7d",
	  "how long finished deliveries are kept (to recognise resends and "
	  "to inspect them); then they are purged", parse_retain },
	{ "log-level", "WHR_LOG_LEVEL", true, "LEVEL", "info",
	  "error, warn, info or debug", parse_log_level },
	{ "log-format", "WHR_LOG_FORMAT", true, "FORMAT", "text",
	  "text or json (one object per line)", parse_log_format },
};

const size_t config_options_count = ARRAY_LENGTH(config_options);

