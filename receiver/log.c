/*
 * The process-wide log: level filter, text or JSON rendering, and the
 * sink (standard error by default). Settings are meant to be made at
 * start-up, before other threads log.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define LINE_MAX_BYTES 16384
#define MESSAGE_MAX_BYTES 2048	/* input bytes of a message kept */
#define VALUE_MAX_BYTES 256	/* input bytes of a field value kept */

static enum whr_log_level log_level = WHR_LOG_INFO;
static enum whr_log_format log_format = WHR_LOG_FORMAT_TEXT;
static whr_log_fn log_sink;
static void *log_sink_userdata;

static const char *const level_names[] = {
	[WHR_LOG_ERROR] = "error",
	[WHR_LOG_WARN] = "warn",
	[WHR_LOG_INFO] = "info",
	[WHR_LOG_DEBUG] = "debug",
};

/* A bounded line being built; once full, further text is dropped and the
 * line ends with "..." so truncation is visible. */
struct line {
	char buf[LINE_MAX_BYTES];
	size_t len;
	bool truncated;
};

static void
line_append(struct line *l, const char *s, size_t n)
{
	size_t room = sizeof(l->buf) - 4 - l->len;	/* "...\0" */

	if (n > room) {
		n = room;
		l->truncated = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
line_append_str(struct line *l, const char *s)
{
	line_append(l, s, strlen(s));
}

static void
line_printf(struct line *l, const char *fmt, ...) WHR_PRINTF(2, 3);

static void
line_printf(struct line *l, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		line_append(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n
							    : sizeof(tmp) - 1);
}

/* JSON string contents: quotes, backslashes and control bytes escaped;
 * at most @p max input bytes, then "...". */
static void
line_append_json_max(struct line *l, const char *s, size_t max)
{
	const char *start = s;
	size_t left = strlen(s);

	for (; *s != '\0'; s++, left--) {
		unsigned char c = (unsigned char)*s;

		if ((size_t)(s - start) >= max) {
			line_append(l, "...", 3);
			break;
		}
		/* Lines must be UTF-8 whatever a client sent: whole
		 * characters are copied, any other byte becomes U+FFFD. */
		if (c >= 0x80) {
			size_t n = utf8_char_length(s, left);

			if (n == 0) {
				line_append(l, "\xef\xbf\xbd", 3);
			} else {
				line_append(l, s, n);
				s += n - 1;
				left -= n - 1;
			}
			continue;
		}

		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };

			line_append(l, esc, 2);
		} else if (c == '\n') {
			line_append(l, "\\n", 2);
		} else if (c < 0x20 || c == 0x7f) {
			line_printf(l, "\\u%04x", c);
		} else {
			line_append(l, s, 1);
		}
	}
}

static void
line_append_json(struct line *l, const char *s)
{
	line_append_json_max(l, s, VALUE_MAX_BYTES);
}

/* Text values: bare when they are plain, else quoted with escapes, so
 * that one event is always one line. */
static void
line_append_text_value(struct line *l, const char *s)
{
	const char *p;
	bool plain = *s != '\0' && strlen(s) <= VALUE_MAX_BYTES;

	for (p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c == '"' || c == '\\' || c == '=' ||
		    c >= 0x7f) {
			plain = false;
			break;
		}
	}
	if (plain) {
		line_append_str(l, s);
		return;
	}
	line_append(l, "\"", 1);
	line_append_json(l, s);
	line_append(l, "\"", 1);
}

/* A free-text message: escaped as a JSON string's contents, so control
 * bytes cannot break the one-line rule and the line stays UTF-8. */
static void
line_append_message(struct line *l, const char *s)
{
	line_append_json_max(l, s, MESSAGE_MAX_BYTES);
}

/* A line's time, level and message. */
static void
line_start(struct line *l, enum whr_log_level level, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];

	l->len = 0;
	l->truncated = false;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_format == WHR_LOG_FORMAT_JSON) {
		line_append_str(l, "{\"time\":\"");
		line_append_str(l, stamp);
		line_printf(l, ".%03ldZ\",\"level\":\"%s\"",
			    ts.tv_nsec / 1000000, level_names[level]);
		line_append_str(l, ",\"msg\":\"");
		line_append_json_max(l, msg, MESSAGE_MAX_BYTES);
		line_append(l, "\"", 1);
	} else {
		line_append_str(l, stamp);
		line_printf(l, ".%03ldZ %-5s ", ts.tv_nsec / 1000000,
			    level_names[level]);
		line_append_message(l, msg);
	}
}

static void
line_field(struct line *l, const struct log_field *f)
{
	bool json = log_format == WHR_LOG_FORMAT_JSON;

	if (f->type == LOG_FIELD_STRING && f->s == NULL)
		return;
	if (json) {
		line_append(l, ",\"", 2);
		line_append_json(l, f->key);
		line_append(l, "\":", 2);
	} else {
		line_append(l, " ", 1);
		line_append_str(l, f->key);
		line_append(l, "=", 1);
	}
	switch (f->type) {
	case LOG_FIELD_STRING:
		if (json) {
			line_append(l, "\"", 1);
			line_append_json(l, f->s);
			line_append(l, "\"", 1);
		} else {
			line_append_text_value(l, f->s);
		}
		break;
	case LOG_FIELD_INT:
		line_printf(l, "%lld", (long long)f->i);
		break;
	case LOG_FIELD_MILLIS:
		line_printf(l, "%lld.%03lld", (long long)(f->i / 1000),
			    (long long)(f->i % 1000));
		break;
	}
}

static void
line_finish(struct line *l, enum whr_log_level level)
{
	/* Bounded messages and values make this unreachable in practice;
	 * still, a cut JSON line would not parse, so say so plainly. */
	if (l->truncated && log_format == WHR_LOG_FORMAT_JSON) {
		l->len = 0;
		line_append_str(l, "{\"level\":\"");
		line_append_str(l, level_names[level]);
		line_append_str(l, "\",\"msg\":\"log line too long\"");
	} else if (l->truncated) {
		/* Do not leave half a UTF-8 character before the "...". */
		size_t end = l->len;

		while (end > 0 && ((unsigned char)l->buf[end - 1] & 0xc0) == 0x80)
			end--;
		if (end > 0 && (unsigned char)l->buf[end - 1] >= 0xc0 &&
		    utf8_char_length(l->buf + end - 1, l->len - end + 1) == 0)
			l->len = end - 1;
		memcpy(l->buf + l->len, "...", 3);
		l->len += 3;
	}
	if (log_format == WHR_LOG_FORMAT_JSON)
		l->buf[l->len++] = '}';
	l->buf[l->len] = '\0';

	if (log_sink != NULL) {
		log_sink(level, l->buf, log_sink_userdata);
	} else {
		/* One write per line keeps lines whole when threads log at
		 * once; the newline takes the place of the NUL. */
		ssize_t r;

		l->buf[l->len] = '\n';
		r = write(STDERR_FILENO, l->buf, l->len + 1);
		(void)r;
	}
}

/* Set by log_quiet() and log_capture() for the thread that calls it
 * only. */
static __thread bool thread_quiet;
static __thread char *thread_capture;
static __thread size_t thread_capture_size;

void
log_quiet(bool quiet)
{
	thread_quiet = quiet;
}

void
log_capture(char *buf, size_t size)
{
	thread_capture = buf != NULL && size > 0 ? buf : NULL;
	thread_capture_size = size;
	if (thread_capture != NULL)
		buf[0] = '\0';
}

/* Whether the line is captured instead of written (log_capture()). */
static bool
captured(enum whr_log_level level, const char *msg)
{
	if (thread_capture == NULL)
		return false;
	if (level <= WHR_LOG_WARN && thread_capture[0] == '\0')
		snprintf(thread_capture, thread_capture_size, "%s", msg);
	return true;
}

bool
log_enabled(enum whr_log_level level)
{
	return level <= log_level && !thread_quiet;
}

void
log_fields(enum whr_log_level level, const char *msg,
	   const struct log_field *fields, size_t n)
{
	struct line l;
	size_t i;

	if (!log_enabled(level) || captured(level, msg))
		return;
	line_start(&l, level, msg);
	for (i = 0; i < n; i++)
		line_field(&l, &fields[i]);
	line_finish(&l, level);
}

static void
log_message(enum whr_log_level level, const char *file, int lineno,
	    const char *msg)
{
	struct line l;
	char where[128];

	if (captured(level, msg))
		return;
	line_start(&l, level, msg);
	if (log_level >= WHR_LOG_DEBUG && file != NULL) {
		struct log_field f = LOG_STR("source", where);

		snprintf(where, sizeof(where), "%s:%d", file, lineno);
		line_field(&l, &f);
	}
	line_finish(&l, level);
}

/* The message @p fmt makes, with ": " and the text of errno @p err after
 * it when @p err is not NULL, logged if anyone would see it. */
static void log_va(enum whr_log_level level, const char *file, int line,
		   const int *err, const char *fmt, va_list ap)
	WHR_PRINTF(5, 0);

static void
log_va(enum whr_log_level level, const char *file, int line,
       const int *err, const char *fmt, va_list ap)
{
	char msg[LINE_MAX_BYTES];
	char text[128];
	size_t n;

	if (!log_enabled(level) && thread_capture == NULL)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err != NULL) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s",
			 strerror_r(*err, text, sizeof(text)));
	}
	log_message(level, file, line, msg);
}

WHR_EXPORT void
whr_log_at(enum whr_log_level level, const char *file, int line,
	   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_va(level, file, line, NULL, fmt, ap);
	va_end(ap);
}

WHR_EXPORT void
whr_log_errno_at(enum whr_log_level level, const char *file, int line,
		 const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_va(level, file, line, &saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

WHR_EXPORT void
whr_log_set_handler(whr_log_fn fn, void *userdata)
{
	log_sink = fn;
	log_sink_userdata = userdata;
}

WHR_EXPORT void
whr_log_set_level(enum whr_log_level level)
{
	if (level > WHR_LOG_DEBUG)
		level = WHR_LOG_DEBUG;
	log_level = level;
}

WHR_EXPORT enum whr_log_level
whr_log_get_level(void)
{
	return log_level;
}

WHR_EXPORT void
whr_log_set_format(enum whr_log_format format)
{
	log_format = format == WHR_LOG_FORMAT_JSON ? WHR_LOG_FORMAT_JSON
						   : WHR_LOG_FORMAT_TEXT;
}

int
log_level_from_string(const char *s, enum whr_log_level *level)
{
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(level_names); i++) {
		if (ascii_equal_nocase(s, level_names[i])) {
			*level = (enum whr_log_level)i;
			return 0;
		}
	}
	if (ascii_equal_nocase(s, "warning")) {
		*level = WHR_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

int
log_format_from_string(const char *s, enum whr_log_format *format)
{
	if (ascii_equal_nocase(s, "text")) {
		*format = WHR_LOG_FORMAT_TEXT;
		return 0;
	}
	if (ascii_equal_nocase(s, "json")) {
		*format = WHR_LOG_FORMAT_JSON;
		return 0;
	}
	return -EINVAL;
}
