/*
 * whr: logging
 *
 * One process-wide log, shared by the library and the code that uses it.
 * Lines go to standard error unless whr_log_set_handler() replaces the sink.
 */
#ifndef WHR_LOG_H
#define WHR_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WHR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define WHR_PRINTF(fmt, args)
#endif

/** Severity of a log line; a level includes every level above it. */
enum whr_log_level {
	WHR_LOG_ERROR = 0,
	WHR_LOG_WARN = 1,
	WHR_LOG_INFO = 2,
	WHR_LOG_DEBUG = 3
};

/** How lines are written. */
enum whr_log_format {
	WHR_LOG_FORMAT_TEXT = 0,	/**< `time level message key=value ...` */
	WHR_LOG_FORMAT_JSON = 1		/**< one JSON object per line */
};

/**
 * A log sink.
 *
 * @param level the line's level
 * @param line the formatted line without a trailing newline; borrowed
 *        until the sink returns
 * @param userdata the pointer given to whr_log_set_handler()
 *
 * The sink may be called from several threads at once.
 */
typedef void (*whr_log_fn)(enum whr_log_level level, const char *line,
			   void *userdata);

/**
 * Replace the sink. NULL restores the default, which writes each line to
 * standard error with a single write(2).
 *
 * @param fn the new sink, or NULL
 * @param userdata passed to every call of @p fn
 */
void whr_log_set_handler(whr_log_fn fn, void *userdata);

/**
 * Set the most verbose level that is written (default WHR_LOG_INFO).
 *
 * @param level the level
 */
void whr_log_set_level(enum whr_log_level level);

/**
 * @return the current level
 */
enum whr_log_level whr_log_get_level(void);

/**
 * Choose text or JSON lines (default text).
 *
 * @param format the format
 */
void whr_log_set_format(enum whr_log_format format);

/**
 * Write one line; use the whr_log() macro, which adds the source position.
 *
 * @param level the line's level
 * @param file source file (kept at DEBUG level only)
 * @param line source line
 * @param fmt printf format of the message
 */
void whr_log_at(enum whr_log_level level, const char *file, int line,
		const char *fmt, ...) WHR_PRINTF(4, 5);

/**
 * As whr_log_at(), with ": " and strerror(errno) appended to the message.
 */
void whr_log_errno_at(enum whr_log_level level, const char *file, int line,
		      const char *fmt, ...) WHR_PRINTF(4, 5);

/** Log a printf-style message at @p level. */
#define whr_log(level, ...) \
	whr_log_at((level), __FILE__, __LINE__, __VA_ARGS__)

/** Log a printf-style message at @p level, followed by strerror(errno). */
#define whr_log_errno(level, ...) \
	whr_log_errno_at((level), __FILE__, __LINE__, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* WHR_LOG_H */
