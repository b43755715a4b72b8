/*
 * Time arguments of the data-folder tools (see time-arg.h).
 */
#include "time-arg.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data-dir.h"	/* tool_usage_error() */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int64_t
time_arg_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
time_arg_parse_age(const char *text, int64_t *out)
{
	char *unit;
	double n;

	/* strtod() would also take spaces, a sign, "inf" and "nan". */
	if (!is_digit(text[0]))
		return -EINVAL;
	n = strtod(text, &unit);
	if (unit == text || !isfinite(n) || n < 0 || n > 1e6)
		return -EINVAL;
	if (strcmp(unit, "s") == 0)
		;
	else if (strcmp(unit, "m") == 0)
		n *= 60;
	else if (strcmp(unit, "h") == 0)
		n *= 3600;
	else if (strcmp(unit, "d") == 0)
		n *= 86400;
	else
		return -EINVAL;
	*out = (int64_t)(n * 1e6);
	return 0;
}

/* After "HH:MM" at @p end: ":SS", a fraction and "Z", each optional.
 * Where the time ends, or NULL; the fraction in microseconds. */
static const char *
parse_seconds(const char *end, struct tm *tm, int64_t *frac)
{
	int64_t scale = 100000;
	const char *t;

	*frac = 0;
	if (*end == ':') {
		t = strptime(end + 1, "%S", tm);
		if (t == NULL || t != end + 3)
			return NULL;
		end = t;
		if (*end == '.') {
			/* Digits past the microsecond count for nothing. */
			for (end++; is_digit(*end); end++, scale /= 10)
				*frac += (*end - '0') * scale;
			if (end[-1] == '.')
				return NULL;
		}
	}
	if (*end == 'Z')
		end++;
	return end;
}

int
time_arg_parse(const char *text, int64_t *out)
{
	struct tm tm = { 0 };
	const char *end;
	int64_t frac = 0, age;

	end = strptime(text, "%Y-%m-%d", &tm);
	if (end != NULL && is_digit(text[0])) {
		if (*end == 'T') {
			end = strptime(end + 1, "%H:%M", &tm);
			if (end == NULL)
				return -EINVAL;
			end = parse_seconds(end, &tm, &frac);
			if (end == NULL)
				return -EINVAL;
		}
		if (*end != '\0')
			return -EINVAL;
		*out = (int64_t)timegm(&tm) * 1000000 + frac;
		return 0;
	}
	if (time_arg_parse_age(text, &age) < 0)
		return -EINVAL;
	*out = time_arg_now_us() - age;
	return 0;
}

int
time_arg_option(const char *prog, const char *option, const char *arg,
		int64_t *out)
{
	if (time_arg_parse(arg, out) < 0)
		return tool_usage_error(prog, "bad %s '%s': " TIME_ARG_HINT,
					option, arg);
	return 0;
}
