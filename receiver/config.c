/*
 * Receiver settings. Every option is one row of the table below: its
 * name (the key for whr_receiver_set() and the flag --name), its
 * environment variable, its kind (how a value is read and checked), the
 * field of struct config it sets, its bounds, its default and its help.
 * Values come from the environment, the command line and
 * whr_receiver_set(); an unknown name is an error.
 *
 * config_init() gives every option the default the table states;
 * config_resolve() fills in, when a run starts, the defaults that are no
 * value of their own (the listen address when none was given, one worker
 * per core).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <whr/receiver.h>

#include "log.h"
#include "store/store.h"
#include "util.h"

#define MS_US ((int64_t)1000)
#define DAY_US ((int64_t)24 * 3600 * 1000000)
#define MIB ((int64_t)1024 * 1024)

#define DEFAULT_LISTEN "127.0.0.1:8080"

/* ---- value parsers --------------------------------------------------- */

struct unit {
	const char *suffix;
	uint64_t factor;
};

/* Digits, then one of @p units' suffixes (in any case): 0 and the value
 * times the suffix's factor in @p out, or -EINVAL when the text is not
 * of that form or the product exceeds @p max. */
static int
parse_with_unit(const char *text, const struct unit *units, size_t n_units,
		uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;
	size_t i;

	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0)
		return -EINVAL;
	for (i = 0; i < n_units; i++) {
		if (ascii_equal_nocase(end, units[i].suffix)) {
			if (v > max / units[i].factor)
				return -EINVAL;
			*out = v * units[i].factor;
			return 0;
		}
	}
	return -EINVAL;
}

WHR_EXPORT int
whr_parse_size(const char *text, size_t *bytes)
{
	static const struct unit units[] = {
		{ "", 1 },	{ "b", 1 },
		{ "k", 1ULL << 10 }, { "kb", 1ULL << 10 }, { "kib", 1ULL << 10 },
		{ "m", 1ULL << 20 }, { "mb", 1ULL << 20 }, { "mib", 1ULL << 20 },
		{ "g", 1ULL << 30 }, { "gb", 1ULL << 30 }, { "gib", 1ULL << 30 },
	};
	uint64_t v;

	if (text == NULL || bytes == NULL) {
		log_bug("whr_parse_size() needs a text and a result");
		return -EINVAL;
	}
	if (parse_with_unit(text, units, ARRAY_LENGTH(units), SIZE_MAX,
			    &v) < 0)
		return -EINVAL;
	*bytes = (size_t)v;
	return 0;
}

WHR_EXPORT int
whr_parse_duration(const char *text, int64_t *us)
{
	static const struct unit units[] = {
		{ "", 1000000 },	{ "s", 1000000 },
		{ "ms", 1000 },		{ "m", 60 * 1000000ULL },
		{ "h", 3600 * 1000000ULL }, { "d", 86400 * 1000000ULL },
	};
	uint64_t v;

	if (text == NULL || us == NULL) {
		log_bug("whr_parse_duration() needs a text and a result");
		return -EINVAL;
	}
	if (parse_with_unit(text, units, ARRAY_LENGTH(units), INT64_MAX,
			    &v) < 0)
		return -EINVAL;
	*us = (int64_t)v;
	return 0;
}

/* ---- the option table ------------------------------------------------- */

struct option_spec;

/* A kind of value: its name in --help, and the parser that checks a
 * value and sets the option's field of @p c, or logs why not (naming
 * @p origin) and leaves it as it was. */
struct option_kind {
	const char *metavar;
	int (*parse)(struct config *c, const struct option_spec *o,
		     const char *value, const char *origin);
	/* A list, which each parse adds to: the variable's value replaces
	 * what was set before, and the first flag replaces the variable's
	 * list. */
	void (*clear)(struct config *c);
};

struct option_spec {
	const char *name;
	const char *env;		/* NULL: no variable */
	const char *env_alias;		/* another name of it; both set is
					 * an error */
	bool env_only;			/* never on a command line */
	const struct option_kind *kind;
	size_t field;			/* offsetof(struct config, ...) */
	size_t list_field;		/* a secrets file's secrets */
	int64_t min, max;		/* a number's bounds */
	const char *expected;		/* what a bad value should have been */
	const char *default_value;	/* set by config_init() */
	const char *default_text;	/* for --help, when the default is
					 * no value config_init() sets: one
					 * config_resolve() finds, the log's
					 * own, or none */
	const char *help;
};

#define FIELD(name) offsetof(struct config, name)

static void *
field_of(struct config *c, const struct option_spec *o)
{
	return (char *)c + o->field;
}

static int
bad_value(const char *origin, const char *value, const char *expected)
{
	whr_log(WHR_LOG_ERROR, "%s: invalid value '%.80s': expected %s",
		origin, value, expected);
	return -EINVAL;
}

/* -- listen: HOST:PORT, a list -- */

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
	   const char *origin)
{
	char *copy = xstrndup(addr, len);
	char **grown;

	if (copy == NULL)
		return -ENOMEM;
	if (!listen_address_valid(copy)) {
		int rc = bad_value(origin, copy,
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

/* The first @p n addresses go. */
static void
drop_listen(struct config *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(c->listen[i]);
	if (n < c->n_listen)
		memmove(c->listen, c->listen + n,
			(c->n_listen - n) * sizeof(*c->listen));
	c->n_listen -= n;
	c->listen_default = false;
}

static void
clear_listen(struct config *c)
{
	drop_listen(c, c->n_listen);
	free(c->listen);
	c->listen = NULL;
}

/* One address per call; a list (commas or spaces) from the variable.
 * All or nothing: a bad entry leaves the list as it was. The first
 * address given replaces the default that config_resolve() set. */
static int
parse_listen(struct config *c, const struct option_spec *o,
	     const char *value, const char *origin)
{
	size_t before = c->n_listen;
	const char *s = value;
	int rc = 0;

	while (*s != '\0') {
		size_t len = strcspn(s, ", \t\n");

		if (len > 0) {
			rc = add_listen(c, s, len, origin);
			if (rc < 0)
				break;
		}
		s += len;
		if (*s != '\0')
			s++;
	}
	if (rc == 0 && c->n_listen == before)
		rc = bad_value(origin, value, "HOST:PORT");
	while (rc < 0 && c->n_listen > before)
		free(c->listen[--c->n_listen]);
	if (rc == 0 && c->listen_default)
		drop_listen(c, before);
	return rc;
}

/* -- trusted proxies: CIDR ranges, a list -- */

static void
clear_trusted_proxies(struct config *c)
{
	free(c->trusted_proxies);
	c->trusted_proxies = NULL;
	c->n_trusted_proxies = 0;
}

/* One range per call; a list (commas or spaces) from the variable. All
 * or nothing: a bad entry leaves the list as it was. */
static int
parse_trusted_proxies(struct config *c, const struct option_spec *o,
		      const char *value, const char *origin)
{
	size_t before = c->n_trusted_proxies;
	const char *s = value;

	while (*s != '\0') {
		size_t len = strcspn(s, ", \t\n");

		if (len > 0) {
			struct cidr range;
			struct cidr *grown;

			if (cidr_parse(s, len, &range) < 0) {
				c->n_trusted_proxies = before;
				return bad_value(origin, value, o->expected);
			}
			grown = realloc(c->trusted_proxies,
					(c->n_trusted_proxies + 1) *
						sizeof(*grown));
			if (grown == NULL) {
				c->n_trusted_proxies = before;
				return -ENOMEM;
			}
			c->trusted_proxies = grown;
			c->trusted_proxies[c->n_trusted_proxies++] = range;
		}
		s += len;
		if (*s != '\0')
			s++;
	}
	if (c->n_trusted_proxies == before)
		return bad_value(origin, value, o->expected);
	return 0;
}

/* -- a path -- */

static int
set_path(char **field, const char *value, const char *origin)
{
	char *copy;

	if (*value == '\0')
		return bad_value(origin, value, "a non-empty path");
	copy = strdup(value);
	if (copy == NULL)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static int
parse_path(struct config *c, const struct option_spec *o, const char *value,
	   const char *origin)
{
	return set_path(field_of(c, o), value, origin);
}

/* -- the admin address: one HOST:PORT -- */

static int
parse_admin_listen(struct config *c, const struct option_spec *o,
		   const char *value, const char *origin)
{
	if (!listen_address_valid(value))
		return bad_value(origin, value, o->expected);
	return set_path(field_of(c, o), value, origin);
}

/* -- a PostgreSQL database, by its URL or from a file -- */

static void
set_database(struct config *c, char *url)
{
	if (c->database != NULL)
		OPENSSL_cleanse(c->database, strlen(c->database));
	free(c->database);
	c->database = url;
}

/* Never a password on a command line, where every user sees it (ps). */
static int
parse_database(struct config *c, const struct option_spec *o,
	       const char *value, const char *origin)
{
	char *copy;

	if (!whr_store_location_is_database(value)) {
		/* Not quoted: it may hold a password all the same. */
		whr_log(WHR_LOG_ERROR, "%s: invalid value: expected %s",
			origin, o->expected);
		return -EINVAL;
	}
	if (origin[0] == '-' && whr_store_location_has_password(value)) {
		whr_log(WHR_LOG_ERROR,
			"%s: no password on the command line, where every "
			"user sees it: put it in PGPASSFILE, or the whole URL "
			"in a file given by --database-file", origin);
		return -EINVAL;
	}
	copy = strdup(value);
	if (copy == NULL)
		return -ENOMEM;
	set_database(c, copy);
	return 0;
}

static int
parse_database_file(struct config *c, const struct option_spec *o,
		    const char *value, const char *origin)
{
	char why[PATH_MAX + 128];
	char *url;
	int rc;

	if (*value == '\0')
		return bad_value(origin, value, "a file name");
	url = whr_store_location_read(value, why, sizeof(why));
	if (url == NULL) {
		whr_log(WHR_LOG_ERROR, "%s: %s", origin, why);
		return -EINVAL;
	}
	rc = set_path(field_of(c, o), value, origin);
	if (rc < 0) {
		OPENSSL_cleanse(url, strlen(url));
		free(url);
		return rc;
	}
	set_database(c, url);
	return 0;
}

/* -- secrets, from a variable or from a file -- */

/* Into a list of our own first: a failed setting leaves the old one. */
static int
set_secrets(struct secret_list *list, const char *text,
	    bool newlines_separate, const char *source)
{
	struct secret_list parsed;
	int rc;

	rc = secret_list_parse(text, newlines_separate, source, &parsed);
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
	return set_secrets(field_of(c, o), value, false, origin);
}

/* A file is read and checked when it is named, so that a mistake stops
 * start-up with the file's name in the message. A secrets file holds a
 * secret at least; a previous secrets file may be empty (no rotation
 * under way). */
static int
read_secrets_file(struct config *c, const struct option_spec *o,
		  const char *value, const char *origin, bool may_be_empty)
{
	struct secret_list *list =
		(struct secret_list *)(void *)((char *)c + o->list_field);
	struct secret_list parsed = { 0 };
	int rc;

	if (*value == '\0')
		return bad_value(origin, value, "a file name");
	rc = secret_list_load(value, may_be_empty, &parsed);
	if (rc < 0)
		return rc;
	rc = set_path(field_of(c, o), value, origin);
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
	return read_secrets_file(c, o, value, origin, false);
}

static int
parse_previous_file(struct config *c, const struct option_spec *o,
		    const char *value, const char *origin)
{
	return read_secrets_file(c, o, value, origin, true);
}

/* -- numbers: sizes, durations, counts, within the option's bounds -- */

static int
parse_size(struct config *c, const struct option_spec *o, const char *value,
	   const char *origin)
{
	size_t v;

	if (whr_parse_size(value, &v) < 0 || (uint64_t)v < (uint64_t)o->min ||
	    (uint64_t)v > (uint64_t)o->max)
		return bad_value(origin, value, o->expected);
	*(size_t *)field_of(c, o) = v;
	return 0;
}

static int
parse_duration(struct config *c, const struct option_spec *o,
	       const char *value, const char *origin)
{
	int64_t v;

	if (whr_parse_duration(value, &v) < 0 || v < o->min || v > o->max)
		return bad_value(origin, value, o->expected);
	*(int64_t *)field_of(c, o) = v;
	return 0;
}

/* A whole number in decimal digits only (no sign, no spaces, no
 * suffix). */
static int
parse_count(struct config *c, const struct option_spec *o,
	    const char *value, const char *origin)
{
	char expected[64];
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (value[0] < '0' || value[0] > '9' || errno != 0 || *end != '\0' ||
	    v < (unsigned long)o->min || v > (unsigned long)o->max) {
		snprintf(expected, sizeof(expected),
			 "a number from %lu to %lu", (unsigned long)o->min,
			 (unsigned long)o->max);
		return bad_value(origin, value, expected);
	}
	*(unsigned *)field_of(c, o) = (unsigned)v;
	return 0;
}

/* -- a rate: N a second (N, N/s) or a minute (N/m), or off -- */

static int
parse_rate(struct config *c, const struct option_spec *o, const char *value,
	   const char *origin)
{
	unsigned long v;
	double per_s = 1;
	char *end;

	if (ascii_equal_nocase(value, "off")) {
		*(double *)field_of(c, o) = 0;
		return 0;
	}
	errno = 0;
	v = strtoul(value, &end, 10);
	if (value[0] < '0' || value[0] > '9' || errno != 0 ||
	    v > (unsigned long)o->max)
		return bad_value(origin, value, o->expected);
	if (ascii_equal_nocase(end, "/m"))
		per_s = 60;
	else if (*end != '\0' && !ascii_equal_nocase(end, "/s"))
		return bad_value(origin, value, o->expected);
	*(double *)field_of(c, o) = (double)v / per_s;
	return 0;
}

unsigned
config_rate_limit_burst(const struct config *c)
{
	double five = 5 * c->rate_limit;

	if (c->rate_limit_burst != 0)
		return c->rate_limit_burst;
	/* Rounded up; the rate is at most 1000000 a second. */
	return five <= 5 ? 5 : (unsigned)five + ((unsigned)five < five);
}

/* -- the log's settings, process-wide -- */

static int
parse_log_level(struct config *c, const struct option_spec *o,
		const char *value, const char *origin)
{
	enum whr_log_level level;

	if (log_level_from_string(value, &level) < 0)
		return bad_value(origin, value, o->expected);
	whr_log_set_level(level);
	return 0;
}

static int
parse_log_format(struct config *c, const struct option_spec *o,
		 const char *value, const char *origin)
{
	enum whr_log_format format;

	if (log_format_from_string(value, &format) < 0)
		return bad_value(origin, value, o->expected);
	whr_log_set_format(format);
	return 0;
}

static const struct option_kind listen_kind = {
	.metavar = "HOST:PORT", .parse = parse_listen, .clear = clear_listen,
};
static const struct option_kind admin_listen_kind = {
	.metavar = "HOST:PORT", .parse = parse_admin_listen,
};
static const struct option_kind rate_kind = {
	.metavar = "N[/s]", .parse = parse_rate,
};
static const struct option_kind proxy_kind = {
	.metavar = "CIDR", .parse = parse_trusted_proxies,
	.clear = clear_trusted_proxies,
};
static const struct option_kind path_kind = {
	.metavar = "DIR", .parse = parse_path,
};
static const struct option_kind database_kind = {
	.metavar = "URL", .parse = parse_database,
};
static const struct option_kind database_file_kind = {
	.metavar = "FILE", .parse = parse_database_file,
};
static const struct option_kind secrets_kind = {
	.metavar = "LIST", .parse = parse_secrets,
};
static const struct option_kind secrets_file_kind = {
	.metavar = "FILE", .parse = parse_secrets_file,
};
static const struct option_kind previous_file_kind = {
	.metavar = "FILE", .parse = parse_previous_file,
};
static const struct option_kind size_kind = {
	.metavar = "SIZE", .parse = parse_size,
};
static const struct option_kind duration_kind = {
	.metavar = "DURATION", .parse = parse_duration,
};
static const struct option_kind count_kind = {
	.metavar = "N", .parse = parse_count,
};
static const struct option_kind log_level_kind = {
	.metavar = "LEVEL", .parse = parse_log_level,
};
static const struct option_kind log_format_kind = {
	.metavar = "FORMAT", .parse = parse_log_format,
};

/* The bounds of the HTTP timeouts and of the inbox's durations. */
#define TIMEOUT_BOUNDS                                                       \
	.min = MS_US, .max = DAY_US,                                         \
	.expected = "a duration from 1ms to 24h, e.g. 30s, 500ms, 2m"
#define INBOX_DURATION_BOUNDS                                                \
	.min = MS_US, .max = 366 * DAY_US,                                   \
	.expected = "a duration from 1ms to 366d, e.g. 24h, 7d"

static const struct option_spec options[] = {
	{ .name = "listen", .env = "WHR_LISTEN", .kind = &listen_kind,
	  .default_text = DEFAULT_LISTEN,
	  .help = "address to listen on, HOST:PORT or [IPv6]:PORT; repeatable "
		  "(the variable takes a comma-separated list); port 0 picks "
		  "a free port" },
	{ .name = "data-dir", .env = "WHR_DATA_DIR", .kind = &path_kind,
	  .field = FIELD(data_dir), .default_text = "./whr-data",
	  .help = "folder for whr's data (the durable inbox)" },
	{ .name = "database", .env = "WHR_DATABASE", .kind = &database_kind,
	  .expected = "a postgresql://USER@HOST:PORT/DATABASE URL (or libpq "
		      "settings starting with host= or dbname=)",
	  .default_text = "(none: SQLite in the data folder)",
	  .help = "keep the inbox in this PostgreSQL database instead, "
		  "shared by several whr serve replicas "
		  "(postgresql://USER@HOST:PORT/DATABASE); its password from "
		  "PGPASSFILE or --database-file, never on a command line" },
	{ .name = "database-file", .env = "WHR_DATABASE_FILE",
	  .kind = &database_file_kind, .field = FIELD(database_file),
	  .default_text = "(none)",
	  .help = "read the database's URL, password included, from this "
		  "file instead" },
	{ .name = "secrets", .env = "MS_WebHookReceiverSecret_Custom",
	  .env_only = true, .kind = &secrets_kind, .field = FIELD(secrets),
	  .default_text = "(none)",
	  .help = "receiver secrets: `secret` or `id=secret`, "
		  "comma-separated, 32 to 128 characters each (environment "
		  "only: never on a command line)" },
	{ .name = "secrets-file", .env = "WHR_SECRETS_FILE",
	  .env_alias = "MS_WebHookReceiverSecret_Custom_FILE",
	  .kind = &secrets_file_kind, .field = FIELD(secrets_file),
	  .list_field = FIELD(secrets_from_file), .default_text = "(none)",
	  .help = "read the secrets from this file instead (same format, "
		  "newlines also separate entries); read again on SIGHUP and "
		  "when the file changes" },
	{ .name = "previous-secrets", .env = "WHR_PREVIOUS_SECRETS",
	  .env_only = true, .kind = &secrets_kind, .field = FIELD(previous),
	  .default_text = "(none)",
	  .help = "one previous secret per id, still accepted during a "
		  "rotation (same format; environment only)" },
	{ .name = "previous-secrets-file", .env = "WHR_PREVIOUS_SECRETS_FILE",
	  .kind = &previous_file_kind, .field = FIELD(previous_file),
	  .list_field = FIELD(previous_from_file), .default_text = "(none)",
	  .help = "read the previous secrets from this file instead (it may "
		  "be empty); read again with the secrets file" },
	{ .name = "max-body", .env = "WHR_MAX_BODY", .kind = &size_kind,
	  .field = FIELD(max_body), .min = 1, .max = 64 * MIB,
	  .expected = "a size from 1 byte to 64MiB, e.g. 1MiB",
	  .default_value = "1MiB",
	  .help = "largest request body; larger ones get 413 before they are "
		  "read" },
	{ .name = "max-body-memory", .env = "WHR_MAX_BODY_MEMORY",
	  .kind = &size_kind, .field = FIELD(max_body_memory),
	  .min = 64 * 1024, .max = 64 * 1024 * MIB,
	  .expected = "a size from 64KiB to 64GiB, e.g. 32MiB",
	  .default_value = "32MiB",
	  .help = "memory for request bodies being read, all connections "
		  "together, counting the buffers they take (about twice a "
		  "body's size); a body that does not fit waits unread, then "
		  "gets 503 with Retry-After. Bodies up to 64KiB may use all "
		  "of it, larger ones three quarters" },
	{ .name = "max-notifications", .env = "WHR_MAX_NOTIFICATIONS",
	  .kind = &count_kind, .field = FIELD(max_notifications),
	  .min = 1, .max = 1000000, .default_value = "1000",
	  .help = "most notifications in one delivery; more get 413 (Learn365 "
		  "sends a handful)" },
	{ .name = "max-header-size", .env = "WHR_MAX_HEADER_SIZE",
	  .kind = &size_kind, .field = FIELD(max_header_size),
	  .min = 1024, .max = MIB,
	  .expected = "a size from 1KiB to 1MiB, e.g. 16KiB",
	  .default_value = "16KiB",
	  .help = "largest request line and headers together" },
	{ .name = "header-timeout", .env = "WHR_HEADER_TIMEOUT",
	  .kind = &duration_kind, .field = FIELD(header_timeout_us),
	  TIMEOUT_BOUNDS, .default_value = "10s",
	  .help = "longest time to receive a request's line and headers, "
		  "from its first byte" },
	{ .name = "read-timeout", .env = "WHR_READ_TIMEOUT",
	  .kind = &duration_kind, .field = FIELD(read_timeout_us),
	  TIMEOUT_BOUNDS, .default_value = "30s",
	  .help = "longest time to receive one whole request, from its first "
		  "byte" },
	{ .name = "min-body-rate", .env = "WHR_MIN_BODY_RATE",
	  .kind = &size_kind, .field = FIELD(min_body_rate),
	  .min = 0, .max = 1024 * MIB,
	  .expected = "a size from 0 to 1GiB (bytes a second), e.g. 1KiB",
	  .default_value = "1KiB",
	  .help = "bytes a second a request body must keep arriving at after "
		  "its first 10 seconds (measured over each 5 seconds); "
		  "slower, the connection is closed. 0: no minimum" },
	{ .name = "write-timeout", .env = "WHR_WRITE_TIMEOUT",
	  .kind = &duration_kind, .field = FIELD(write_timeout_us),
	  TIMEOUT_BOUNDS, .default_value = "30s",
	  .help = "longest time a client may take to receive an answer, from "
		  "when whr starts sending it; then the connection is "
		  "closed" },
	{ .name = "idle-timeout", .env = "WHR_IDLE_TIMEOUT",
	  .kind = &duration_kind, .field = FIELD(idle_timeout_us),
	  TIMEOUT_BOUNDS, .default_value = "60s",
	  .help = "how long a kept-alive connection may wait for its next "
		  "request" },
	{ .name = "shutdown-timeout", .env = "WHR_SHUTDOWN_TIMEOUT",
	  .kind = &duration_kind, .field = FIELD(shutdown_timeout_us),
	  TIMEOUT_BOUNDS, .default_value = "10s",
	  .help = "on SIGTERM, how long requests in progress may take to "
		  "finish" },
	{ .name = "max-connections", .env = "WHR_MAX_CONNECTIONS",
	  .kind = &count_kind, .field = FIELD(max_connections),
	  .min = 1, .max = 1000000, .default_value = "1000",
	  .help = "most connections open at once; when the table is full, "
		  "the connections idle longest (0.8 s or more) are "
		  "closed to admit new ones, else these wait in the listen "
		  "queue. Lowered at start, with a warning, when the "
		  "descriptor limit (RLIMIT_NOFILE) is smaller" },
	{ .name = "max-connections-per-client",
	  .env = "WHR_MAX_CONNECTIONS_PER_CLIENT", .kind = &count_kind,
	  .field = FIELD(max_connections_per_client), .min = 1,
	  .max = 1000000, .default_value = "64",
	  .help = "most connections open at once from one address (the "
		  "connecting peer's; trusted proxies have no limit); more "
		  "are closed as they come" },
	{ .name = "trusted-proxy", .env = "WHR_TRUSTED_PROXY",
	  .kind = &proxy_kind,
	  .expected = "an IP address or a CIDR range, e.g. 127.0.0.1, "
		      "10.0.0.0/8, fd00::/8",
	  .default_text = "(none)",
	  .help = "a proxy whose X-Forwarded-For whr believes (an address or "
		  "a CIDR range); repeatable (the variable takes a "
		  "comma-separated list). Behind one, a request's client is "
		  "the rightmost address in X-Forwarded-For that is not a "
		  "trusted proxy; connection limits do not apply to it" },
	{ .name = "admin-listen", .env = "WHR_ADMIN_LISTEN",
	  .kind = &admin_listen_kind, .field = FIELD(admin_listen),
	  .expected = "HOST:PORT, e.g. 127.0.0.1:9090 or [::1]:9090",
	  .default_text = "(none: /metrics on the listen addresses)",
	  .help = "serve /metrics, /healthz and /readyz on this address too, "
		  "and /metrics only there (404 on the listen addresses): "
		  "an address for the machine's own checks and Prometheus" },
	{ .name = "rate-limit", .env = "WHR_RATE_LIMIT", .kind = &rate_kind,
	  .field = FIELD(rate_limit), .max = 1000000,
	  .expected = "off, or a number from 0 to 1000000 a second (N or "
		      "N/s) or a minute (N/m), e.g. 1/s",
	  .default_value = "off",
	  .help = "failed requests a client may make on the webhook path, "
		  "per second (N or N/s) or per minute (N/m): refusals "
		  "by its checks (400, 404). Past the limit and its burst, "
		  "the client's failures get 429 with Retry-After until it "
		  "has waited; deliveries that pass are never counted nor "
		  "limited. Per client address (behind a trusted proxy, the "
		  "client it names); the last 4096 clients are remembered" },
	{ .name = "rate-limit-burst", .env = "WHR_RATE_LIMIT_BURST",
	  .kind = &count_kind, .field = FIELD(rate_limit_burst), .min = 1,
	  .max = 1000000,
	  .default_text = "five seconds' worth of --rate-limit, at least 5",
	  .help = "failures a client may make at once before --rate-limit "
		  "applies" },
	{ .name = "workers", .env = "WHR_WORKERS", .kind = &count_kind,
	  .field = FIELD(workers), .min = 1, .max = 256,
	  .default_text = "one per core",
	  .help = "threads that call the handlers" },
	{ .name = "work-window", .env = "WHR_WORK_WINDOW", .kind = &count_kind,
	  .field = FIELD(work_window), .min = 100, .max = 10000000,
	  .default_value = "10000",
	  .help = "most open notifications (pending, retrying, running) held "
		  "in memory; more wait in the inbox on disk, in arrival "
		  "order" },
	{ .name = "retry-delay", .env = "WHR_RETRY_DELAY",
	  .kind = &duration_kind, .field = FIELD(retry_delay_us),
	  INBOX_DURATION_BOUNDS, .default_value = "1s",
	  .help = "wait before a handler that asked for a retry runs again; "
		  "doubled each time, with jitter" },
	{ .name = "retry-max-delay", .env = "WHR_RETRY_MAX_DELAY",
	  .kind = &duration_kind, .field = FIELD(retry_max_delay_us),
	  INBOX_DURATION_BOUNDS, .default_value = "1h",
	  .help = "the longest wait between two retries" },
	{ .name = "retry-max-age", .env = "WHR_RETRY_MAX_AGE",
	  .kind = &duration_kind, .field = FIELD(retry_max_age_us),
	  INBOX_DURATION_BOUNDS, .default_value = "24h",
	  .help = "how long after its arrival (or last replay) a notification "
		  "is retried; then it is dead" },
	{ .name = "handler-timeout", .env = "WHR_HANDLER_TIMEOUT",
	  .kind = &duration_kind, .field = FIELD(handler_timeout_us),
	  INBOX_DURATION_BOUNDS, .default_value = "60s",
	  .help = "a handler running longer is reported in the log" },
	{ .name = "retain", .env = "WHR_RETAIN", .kind = &duration_kind,
	  .field = FIELD(retain_us), INBOX_DURATION_BOUNDS,
	  .default_value = "7d",
	  .help = "how long finished deliveries are kept (to recognise "
		  "resends and to inspect them); then they are purged" },
	{ .name = "log-level", .env = "WHR_LOG_LEVEL", .kind = &log_level_kind,
	  .expected = "error, warn, info or debug", .default_text = "info",
	  .help = "error, warn, info or debug" },
	{ .name = "log-format", .env = "WHR_LOG_FORMAT",
	  .kind = &log_format_kind, .expected = "text or json",
	  .default_text = "text",
	  .help = "text or json (one object per line)" },
};

/* ---- settings from the table ----------------------------------------- */

void
config_init(struct config *c)
{
	size_t i;
	int rc;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < ARRAY_LENGTH(options); i++) {
		const struct option_spec *o = &options[i];

		if (o->default_value == NULL)
			continue;
		/* A number within its bounds: tested to be taken. */
		rc = o->kind->parse(c, o, o->default_value, o->name);
		if (rc < 0)
			log_bug("the default of %s is not valid", o->name);
	}
}

int
config_resolve(struct config *c)
{
	/* A body in flight takes about twice its size in buffers and a
	 * page (front/connections.c): the budget must hold the largest body
	 * and still one small one (64 KiB), or a single slow upload of the
	 * largest size would hold up every delivery. */
	size_t need = 2 * c->max_body + 4096 + 2 * 64 * 1024 + 4096;
	long cores;
	int rc;

	if (need > c->max_body_memory) {
		whr_log(WHR_LOG_ERROR,
			"--max-body-memory is too small for --max-body: give at "
			"least %zu bytes (%zu MiB) for bodies of %zu bytes (a "
			"body in flight takes about twice its size, and room for "
			"a small one must be left)",
			need, (need + (size_t)MIB - 1) / (size_t)MIB,
			c->max_body);
		return -EINVAL;
	}
	if (c->database != NULL && c->pgpassword) {
		whr_log(WHR_LOG_ERROR,
			"PGPASSWORD is not taken: a password there stays in "
			"whr's environment, which its handlers' commands can "
			"read; put it in a password file (PGPASSFILE), or the "
			"whole URL in a file given by --database-file");
		return -EINVAL;
	}
	if (c->n_listen == 0) {
		rc = add_listen(c, DEFAULT_LISTEN, strlen(DEFAULT_LISTEN),
				"listen");
		if (rc < 0)
			return rc;
		c->listen_default = true;
	}
	if (c->workers == 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers = cores > 0 ? (unsigned)cores : 1;
	}
	return 0;
}

void
config_finish(struct config *c)
{
	clear_listen(c);
	clear_trusted_proxies(c);
	free(c->admin_listen);
	free(c->data_dir);
	set_database(c, NULL);
	free(c->database_file);
	free(c->secrets_file);
	free(c->previous_file);
	secret_list_finish(&c->secrets);
	secret_list_finish(&c->secrets_from_file);
	secret_list_finish(&c->previous);
	secret_list_finish(&c->previous_from_file);
	memset(c, 0, sizeof(*c));
}

static const struct option_spec *
find_option(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(options); i++) {
		if (strlen(options[i].name) == len &&
		    memcmp(options[i].name, name, len) == 0)
			return &options[i];
	}
	return NULL;
}

int
config_set(struct config *c, const char *name, const char *value,
	   const char *origin)
{
	const struct option_spec *o = find_option(name, strlen(name));

	if (o == NULL) {
		whr_log(WHR_LOG_ERROR, "unknown setting '%.64s'", name);
		return -ENOENT;
	}
	return o->kind->parse(c, o, value, origin != NULL ? origin : o->name);
}

/* The process's first environment block, as /proc/PID/environ shows it
 * to anyone who may read that file (an exec handler's command, running
 * as whr's user): from /proc/self/stat, fields 50 and 51. Only when it is
 * the block the program was given, which holds some of environ's
 * strings: under valgrind it is valgrind's own, and the program's
 * variables are copies elsewhere, which scrub_variable() wipes. */
static bool
environ_block(char **start, char **end)
{
	char buf[4096];
	unsigned long long lo = 0, hi = 0;
	const char *p;
	char **e;
	ssize_t n;
	int fd, field;

	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command's name may hold anything */
	for (field = 2; p != NULL && field < 51; field++) {
		p = strchr(p + 1, ' ');
		if (p != NULL && field + 1 == 50)
			lo = strtoull(p + 1, NULL, 10);
		else if (p != NULL && field + 1 == 51)
			hi = strtoull(p + 1, NULL, 10);
	}
	if (lo == 0 || hi <= lo)
		return false;
	for (e = environ; e != NULL && *e != NULL; e++) {
		if ((uintptr_t)*e >= lo && (uintptr_t)*e < hi) {
			*start = (char *)(uintptr_t)lo;
			*end = (char *)(uintptr_t)hi;
			return true;
		}
	}
	return false;
}

/* A secret read from the environment must not stay there: unsetenv()
 * only drops it from the list libc keeps, while /proc/PID/environ still
 * shows the first block, to any process of whr's user, and a child
 * (exec, or one a plugin starts) would inherit the variable. Overwrite
 * its bytes wherever they are, then unset it. */
static void
scrub_variable(const char *name)
{
	size_t len = strlen(name);
	char *start, *end, **e;

	for (e = environ; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			explicit_bzero(*e + len + 1, strlen(*e + len + 1));
	}
	if (environ_block(&start, &end)) {
		char *p = start;

		while (p < end) {
			size_t n = strnlen(p, (size_t)(end - p));

			if (n > len && strncmp(p, name, len) == 0 &&
			    p[len] == '=')
				explicit_bzero(p + len + 1, n - len - 1);
			p += n + 1;
		}
	}
	unsetenv(name);
}

/* An option's variable, or its other name: an empty one counts as
 * unset, as in most shells' use. *value NULL when neither is set; both
 * set is an error. */
static int
env_value(const struct option_spec *o, const char **value, const char **name)
{
	const char *v = getenv(o->env);
	const char *alias = o->env_alias != NULL ? getenv(o->env_alias) : NULL;

	if (v != NULL && *v == '\0')
		v = NULL;
	if (alias != NULL && *alias == '\0')
		alias = NULL;
	if (v != NULL && alias != NULL) {
		whr_log(WHR_LOG_ERROR,
			"%s and %s are both set: they are two names of one "
			"setting; set only one", o->env, o->env_alias);
		return -EINVAL;
	}
	*value = v != NULL ? v : alias;
	*name = v != NULL ? o->env : o->env_alias;
	return 0;
}

int
config_from_environment(struct config *c)
{
	const char *pgpassword = getenv("PGPASSWORD");
	size_t i;

	/* libpq would read it at every connection, so it would have to
	 * stay in the environment, where an exec handler's command reads
	 * it (/proc/PID/environ): wiped, and refused with a database
	 * (config_resolve()). */
	if (pgpassword != NULL && *pgpassword != '\0') {
		c->pgpassword = true;
		scrub_variable("PGPASSWORD");
	}
	for (i = 0; i < ARRAY_LENGTH(options); i++) {
		const struct option_spec *o = &options[i];
		const char *value;
		const char *name;
		int rc;

		if (o->env == NULL)
			continue;
		rc = env_value(o, &value, &name);
		if (rc < 0)
			return rc;
		if (value == NULL)
			continue;
		/* The variable's list replaces what was set before. */
		if (o->kind->clear != NULL)
			o->kind->clear(c);
		rc = o->kind->parse(c, o, value, name);
		/* A database URL may hold a password. */
		if (o->kind == &secrets_kind || o->kind == &database_kind)
			scrub_variable(name);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
config_from_arguments(struct config *c, int argc, char **argv)
{
	bool list_seen[ARRAY_LENGTH(options)] = { false };
	int i;

	for (i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const struct option_spec *o;
		const char *value;
		const char *eq;
		char origin[80];
		int rc;

		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			whr_log(WHR_LOG_ERROR,
				"unexpected argument '%.64s' (options start with --)",
				arg);
			return -EINVAL;
		}
		eq = strchr(arg, '=');
		o = find_option(arg + 2, eq != NULL ? (size_t)(eq - arg - 2)
						    : strlen(arg + 2));
		if (o == NULL || o->env_only) {
			whr_log(WHR_LOG_ERROR,
				o == NULL ? "unknown option '%.*s' (see --help)"
					  : "'%.*s' cannot be given on the command line; use its environment variable",
				(int)(eq != NULL ? eq - arg : 64), arg);
			return -EINVAL;
		}
		if (eq != NULL) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			whr_log(WHR_LOG_ERROR, "option --%s needs a value",
				o->name);
			return -EINVAL;
		}
		/* Flags replace the variable's list. */
		if (o->kind->clear != NULL && !list_seen[o - options]) {
			o->kind->clear(c);
			list_seen[o - options] = true;
		}
		snprintf(origin, sizeof(origin), "--%s", o->name);
		rc = o->kind->parse(c, o, value, origin);
		if (rc < 0)
			return rc;
	}
	return 0;
}

const struct secret_list *
config_secrets(const struct config *c, const char **source)
{
	if (c->secrets_file != NULL) {
		*source = c->secrets_file;
		return &c->secrets_from_file;
	}
	*source = "MS_WebHookReceiverSecret_Custom";
	return &c->secrets;
}

const struct secret_list *
config_previous(const struct config *c, const char **source)
{
	if (c->previous_file != NULL) {
		*source = c->previous_file;
		return &c->previous_from_file;
	}
	*source = "WHR_PREVIOUS_SECRETS";
	return &c->previous;
}

/* Print @p text wrapped to 78 columns, each line indented by @p indent. */
static void
print_wrapped(FILE *out, const char *text, int indent)
{
	const int width = 78 - indent;
	const char *s = text;

	while (*s != '\0') {
		int len = (int)strlen(s);
		int cut = len;

		if (len > width) {
			cut = width;
			while (cut > 0 && s[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = width;
		}
		fprintf(out, "%*s%.*s\n", indent, "", cut, s);
		s += cut;
		while (*s == ' ')
			s++;
	}
}

void
config_print_usage(FILE *out)
{
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(options); i++) {
		const struct option_spec *o = &options[i];
		const char *default_text = o->default_value != NULL
						   ? o->default_value
						   : o->default_text;
		char line[256];

		if (!o->env_only)
			fprintf(out, "  --%s %s\n", o->name, o->kind->metavar);
		else
			fprintf(out, "  (environment only) %s %s\n", o->env,
				o->kind->metavar);
		print_wrapped(out, o->help, 8);
		if (!o->env_only && o->env_alias != NULL)
			snprintf(line, sizeof(line),
				 "Default: %s. Environment: %s or %s.",
				 default_text, o->env, o->env_alias);
		else if (!o->env_only && o->env != NULL)
			snprintf(line, sizeof(line),
				 "Default: %s. Environment: %s.",
				 default_text, o->env);
		else
			snprintf(line, sizeof(line), "Default: %s.",
				 default_text);
		print_wrapped(out, line, 8);
	}
}
