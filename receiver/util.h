/*
 * Things every libwhr source file shares: the export marker and small
 * string helpers. Never installed.
 */
#ifndef WHR_RECEIVER_UTIL_H
#define WHR_RECEIVER_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <whr/log.h>

/* Marks a definition as part of the public ABI; everything else is hidden
 * (gnu_symbol_visibility: 'hidden') and whr.sym lists what is exported. */
#define WHR_EXPORT __attribute__((visibility("default")))

#define ARRAY_LENGTH(a) (sizeof(a) / sizeof((a)[0]))

/* ASCII-only case folding: ids, Actions, header names and media types are
 * compared this way (see docs/protocol-notes in the README). */
static inline char
ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool ascii_equal_nocase(const char *a, const char *b);
bool ascii_equal_nocase_n(const char *a, size_t alen, const char *b,
			  size_t blen);
void ascii_lowercase(char *s);

/* Whitespace as .NET's String.Trim() sees it, restricted to ASCII. */
static inline bool
is_trim_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/* Narrow [*start, *start + *len) so it has no leading or trailing space. */
void trim_span(const char **start, size_t *len);

extern const signed char hex_digit_table[256];

/* The value of one hex digit (either case), or -1. */
static inline int
hex_digit_value(char c)
{
	return hex_digit_table[(unsigned char)c] - 1;
}

/* Encode @p len bytes as uppercase hex into @p out (2 * len + 1 bytes). */
void hex_encode_upper(const unsigned char *in, size_t len, char *out);

/* The length of the valid UTF-8 character at @p s (1 to 4 bytes), or 0
 * when the bytes there are not one. */
size_t utf8_char_length(const char *s, size_t avail);

/* Count the Unicode code points of UTF-8 text; -1 when it is not UTF-8. */
long utf8_code_points(const char *s, size_t len);

/* strndup that reports failure through NULL and accepts len == 0. */
char *xstrndup(const char *s, size_t len);

/* Mark the calling thread as a background one (Linux SCHED_BATCH): it
 * no longer preempts the event loop when woken, so the loop finishes
 * what it is doing (and hands over more at once). */
void thread_background(void);

/* Microseconds since the Unix epoch, and on a monotonic clock. */
int64_t now_realtime_us(void);
int64_t now_monotonic_us(void);

/* A condition variable whose timed waits run on the monotonic clock: a
 * step of the wall clock (NTP, an operator, a container's host) neither
 * stretches a wait nor ends it early. 0 or an errno. */
int cond_init_monotonic(pthread_cond_t *cond);

/* For pthread_cond_timedwait() on such a variable: @p at, microseconds
 * on the monotonic clock (now_monotonic_us()). */
struct timespec monotonic_timespec(int64_t at);

#endif /* WHR_RECEIVER_UTIL_H */
