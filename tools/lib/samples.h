/*
 * The sample deliveries of the seven Learn365 Actions (samples/ACTION.json),
 * built into the binary for `whr send --sample` and `whr probe`
 * (tools/lib/embed-samples.py generates samples-data.c at build time).
 */
#ifndef WHR_TOOLS_SAMPLES_H
#define WHR_TOOLS_SAMPLES_H

#include <stddef.h>

/* All strings are NUL-terminated and in static storage. */
struct sample {
	const char *action;		/* "CourseEnrollment" */
	const char *delivery;		/* the whole sample body, byte for
					 * byte samples/<action>.json:
					 * indented, CRLF, Attempt 1, its
					 * own fixed Id */
	size_t delivery_len;
	const char *notification;	/* its first notification, compact
					 * JSON (as json_reformat() writes
					 * it in JSON_STYLE_COMPACT) */
};

/* The sample for @p action, compared case-insensitively (ASCII); NULL if
 * none or @p action is NULL. */
const struct sample *sample_find(const char *action);

/* All samples, in the order of PROTOCOL.md §2 (CourseEnrollment,
 * CourseUnenrollment, CourseStarted, CourseCompleted, CoursePublished,
 * CourseUnpublished, EnrollmentApprovalRequest); *count receives their
 * number. */
const struct sample *sample_all(size_t *count);

#endif /* WHR_TOOLS_SAMPLES_H */
