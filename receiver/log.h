/*
 * Structured log lines inside libwhr: a message plus key=value fields,
 * rendered as text or JSON by log.c.
 */
#ifndef WHR_RECEIVER_LOG_H
#define WHR_RECEIVER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <whr/log.h>

enum log_field_type {
	LOG_FIELD_STRING,
	LOG_FIELD_INT,
	LOG_FIELD_MILLIS,	/* microseconds, printed as milliseconds */
};

struct log_field {
	const char *key;
	enum log_field_type type;
	const char *s;		/* LOG_FIELD_STRING; NULL skips the field */
	int64_t i;
};

#define LOG_STR(k, v) { .key = (k), .type = LOG_FIELD_STRING, .s = (v) }
#define LOG_INT(k, v) { .key = (k), .type = LOG_FIELD_INT, .i = (v) }
#define LOG_MILLIS(k, v) { .key = (k), .type = LOG_FIELD_MILLIS, .i = (v) }

bool log_enabled(enum whr_log_level level);

/* While on, this thread logs nothing, whoever calls the log: for a retry
 * of code (a handler's db_setup) whose failure was already told. */
void log_quiet(bool quiet);

/* While @p buf is not NULL, this thread's lines are not logged: the
 * message of the first error or warning is kept in @p buf (@p size
 * bytes; "" when there was none) for a caller that reports a failure
 * in one line of its own. NULL ends it. */
void log_capture(char *buf, size_t size);

/* One line with a fixed message and fields, e.g. the per-request line. */
void log_fields(enum whr_log_level level, const char *msg,
		const struct log_field *fields, size_t n);

/* Parse "error", "warn", "info", "debug" / "text", "json". */
int log_level_from_string(const char *s, enum whr_log_level *level);
int log_format_from_string(const char *s, enum whr_log_format *format);

#define log_bug(...) whr_log(WHR_LOG_ERROR, "BUG: " __VA_ARGS__)

#endif /* WHR_RECEIVER_LOG_H */
