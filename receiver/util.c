/*
 * Small string, hex, UTF-8 and clock helpers shared by libwhr.
 */
#include "util.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool
ascii_equal_nocase_n(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return false;
	/* Senders mostly use the canonical case: try the cheap test first. */
	if (memcmp(a, b, alen) == 0)
		return true;
	for (i = 0; i < alen; i++) {
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	}
	return true;
}

bool
ascii_equal_nocase(const char *a, const char *b)
{
	return ascii_equal_nocase_n(a, strlen(a), b, strlen(b));
}

void
ascii_lowercase(char *s)
{
	for (; *s != '\0'; s++)
		*s = ascii_lower(*s);
}

void
trim_span(const char **start, size_t *len)
{
	const char *s = *start;
	size_t n = *len;

	while (n > 0 && is_trim_space(s[0])) {
		s++;
		n--;
	}
	while (n > 0 && is_trim_space(s[n - 1]))
		n--;
	*start = s;
	*len = n;
}

/* Each byte's hex value plus one; 0 for a byte that is not a digit. */
const signed char hex_digit_table[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
	['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
	['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14,
	['E'] = 15, ['F'] = 16,
};

void
hex_encode_upper(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

size_t
utf8_char_length(const char *s, size_t avail)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char c;
	size_t extra;
	uint32_t cp;
	size_t k;

	if (avail == 0)
		return 0;
	c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		extra = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		extra = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		extra = 3;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail <= extra)
		return 0;
	for (k = 1; k <= extra; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((extra == 2 && cp < 0x800) ||
	    (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return extra + 1;
}

long
utf8_code_points(const char *s, size_t len)
{
	long count = 0;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_char_length(s + i, len - i);

		if (n == 0)
			return -1;
		i += n;
		count++;
	}
	return count;
}

char *
xstrndup(const char *s, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return NULL;
	if (len > 0)
		memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

void
thread_background(void)
{
#ifdef SCHED_BATCH
	struct sched_param param = { .sched_priority = 0 };

	/* Best effort: a refusal only costs some context switches. */
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
#endif
}

static int64_t
clock_us(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
now_realtime_us(void)
{
	return clock_us(CLOCK_REALTIME);
}

int64_t
now_monotonic_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

int
cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc = pthread_condattr_init(&attr);

	if (rc != 0)
		return rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}

struct timespec
monotonic_timespec(int64_t at)
{
	if (at < 0)
		at = 0;
	return (struct timespec){
		.tv_sec = (time_t)(at / 1000000),
		.tv_nsec = (long)(at % 1000000) * 1000,
	};
}
