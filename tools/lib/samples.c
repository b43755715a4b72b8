/*
 * The built-in samples: samples/ACTION.json at the repository root,
 * embedded at build time by embed-samples.py (samples-data.c), so that
 * `whr send --sample CourseCompleted` works from an installed binary.
 */
#include "lib/samples.h"

#include <strings.h>

/* samples-data.c, generated */
extern const struct sample samples_data[];
extern const size_t samples_count;

const struct sample *
sample_find(const char *action)
{
	size_t i;

	if (action == NULL)
		return NULL;
	for (i = 0; i < samples_count; i++) {
		if (strcasecmp(samples_data[i].action, action) == 0)
			return &samples_data[i];
	}
	return NULL;
}

const struct sample *
sample_all(size_t *count)
{
	*count = samples_count;
	return samples_data;
}
