/*
 * whr_lms365_parse_time() (lms365.h): Learn365's TimeStamp, an ISO 8601
 * date and time with an optional fraction and offset, to microseconds
 * since the Unix epoch, in the proleptic Gregorian calendar whatever the
 * process's time zone or locale.
 */
#include <whr/lms365.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* @p n ASCII digits at @p p as a number; false when one is not a digit
 * (the NUL that ends the text is not, so this never reads past it). */
static bool
digits(const char *p, int n, int *out)
{
	int v = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil; negative before 1970). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

WHR_EXPORT int
whr_lms365_parse_time(const char *text, int64_t *us)
{
	const char *p = text;
	int year, month, day, hour, minute, second;
	int64_t frac = 0, offset = 0, secs;

	if (text == NULL || us == NULL)
		return -EINVAL;
	/* Each step checks its bytes in order and stops at the first that
	 * does not fit, so the NUL ending the text is never passed. */
	if (!digits(p, 4, &year) || p[4] != '-' ||
	    !digits(p + 5, 2, &month) || p[7] != '-' ||
	    !digits(p + 8, 2, &day) || p[10] != 'T' ||
	    !digits(p + 11, 2, &hour) || p[13] != ':' ||
	    !digits(p + 14, 2, &minute) || p[16] != ':' ||
	    !digits(p + 17, 2, &second))
		return -EINVAL;
	p += 19;
	if (year < 1 || month < 1 || month > 12 || day < 1 ||
	    day > days_in_month(year, month) || hour > 23 || minute > 59 ||
	    second > 59)
		return -EINVAL;

	if (*p == '.') {
		int n = 0;

		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		/* Kept to the microsecond: later digits are dropped. */
		for (; *p >= '0' && *p <= '9'; p++, n++) {
			if (n < 6)
				frac = frac * 10 + (*p - '0');
		}
		for (; n < 6; n++)
			frac *= 10;
	}

	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		int oh, om;

		p++;
		if (!digits(p, 2, &oh))
			return -EINVAL;
		p += 2;
		if (*p == ':')
			p++;
		if (!digits(p, 2, &om))
			return -EINVAL;
		p += 2;
		if (oh > 23 || om > 59)
			return -EINVAL;
		offset = sign * (int64_t)(oh * 3600 + om * 60);
	}
	if (*p != '\0')
		return -EINVAL;

	secs = days_from_civil(year, month, day) * 86400 + hour * 3600 +
	       minute * 60 + second - offset;
	*us = secs * 1000000 + frac;
	return 0;
}
