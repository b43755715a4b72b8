/*
 * Time arguments of the data-folder tools (see time-arg.h).
 */
#include "time-arg.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#include <whr/lms365.h>

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
	const char *p = text;
	double n;

	/* Digits, an optional fraction, one unit: nothing strtod() would
	 * also take (spaces, a sign, hex, an exponent, "inf", "nan"). */
	if (!is_digit(*p))
		return -EINVAL;
	while (is_digit(*p))
		p++;
	if (*p == '.') {
		if (!is_digit(p[1]))
			return -EINVAL;
		for (p++; is_digit(*p); p++)
			;
	}
	if (p[0] == '\0' || p[1] != '\0')
		return -EINVAL;
	n = strtod(text, NULL);
	if (!isfinite(n) || n > 1e6)
		return -EINVAL;
	switch (*p) {
	case 's':
		break;
	case 'm':
		n *= 60;
		break;
	case 'h':
		n *= 3600;
		break;
	case 'd':
		n *= 86400;
		break;
	default:
		return -EINVAL;
	}
	*out = (int64_t)(n * 1e6);
	return 0;
}

/* Whether @p text is @p n digits. */
static bool
digits(const char *text, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_digit(text[i]))
			return false;
	}
	return true;
}

int
time_arg_parse(const char *text, int64_t *out)
{
	char full[64];
	int64_t age;

	/* A date, or a date and time to the minute, stands for its first
	 * second; the rest is what Learn365's TimeStamps are, and parsed
	 * as strictly (two digits each, days of the month, no leap
	 * seconds): the same parser. No zone means UTC. */
	if (strlen(text) == 10 && digits(text, 4) && text[4] == '-') {
		snprintf(full, sizeof(full), "%sT00:00:00Z", text);
		text = full;
	} else if (strlen(text) >= 16 && strlen(text) < 40 &&
		   text[10] == 'T' && text[13] == ':' &&
		   strchr("Zz+-", text[16]) != NULL) {
		/* To the minute, maybe with a zone after it. */
		snprintf(full, sizeof(full), "%.16s:00%s", text, text + 16);
		text = full;
	}
	if (digits(text, 4) && text[4] == '-')
		return whr_lms365_parse_time(text, out) < 0 ? -EINVAL : 0;
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
