/*
 * The sample deliveries of the seven Learn365 Actions (samples/ACTION.json),
 * built into the binary for `whr send --sample` and `whr probe`.
 */
#ifndef WHR_CMD_SAMPLES_H
#define WHR_CMD_SAMPLES_H

#include <stddef.h>

struct sample {
	const char *action;		/* "CourseEnrollment" */
	const char *delivery;		/* the whole sample body, as in
					 * samples/<action>.json */
	size_t delivery_len;
	const char *notification;	/* its first notification, compact
					 * JSON */
};

/* The sample for @p action, compared case-insensitively; NULL if none. */
const struct sample *sample_find(const char *action);

/* All samples, in a stable order; *count receives their number. */
const struct sample *sample_all(size_t *count);

#endif /* WHR_CMD_SAMPLES_H */
