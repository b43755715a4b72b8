/*
 * Time arguments of the data-folder tools (whr inbox list --since/--until,
 * whr inbox purge --older-than, whr enrollments --since/--until): a UTC
 * time or an age counted back from now, parsed one way for all of them.
 */
#ifndef WHR_TOOLS_TIME_ARG_H
#define WHR_TOOLS_TIME_ARG_H

#include <stdint.h>

/* What a bad TIME's message says after "bad --since 'X': ". */
#define TIME_ARG_HINT \
	"give a UTC time (2024-05-01T10:15:30Z) or an age (7d)"

/* Now, in microseconds since the epoch (the wall clock). */
int64_t time_arg_now_us(void);

/* An age: a non-negative number (a fraction too: "1.5d") with the unit
 * s, m, h or d, at most 1000000 of the unit ("30s", "90m", "2h", "7d").
 * Into @p out in microseconds: 0, or -EINVAL for anything else (a sign,
 * spaces, another unit, nan, anything after the unit). */
int time_arg_parse_age(const char *text, int64_t *out);

/* A UTC time: "2024-05-01", "2024-05-01T10:15", "2024-05-01T10:15:30",
 * with an optional fraction of a second after the seconds and an
 * optional "Z" (or an offset, "+02:00") after the time of day, each
 * field of its two digits and in range (whr_lms365_parse_time()); or an
 * age (time_arg_parse_age()) counted back from now. Into @p out in
 * microseconds since the epoch: 0, or -EINVAL for anything else,
 * including anything after the time. */
int time_arg_parse(const char *text, int64_t *out);

/* Option @p option ("--since") of tool @p prog ("whr inbox") given
 * @p arg: time_arg_parse() into @p out, 0; or EXIT_USAGE after the
 * message "PROG: bad --since 'ARG': " TIME_ARG_HINT " (see PROG
 * --help)". */
int time_arg_option(const char *prog, const char *option, const char *arg,
		    int64_t *out);

#endif /* WHR_TOOLS_TIME_ARG_H */
