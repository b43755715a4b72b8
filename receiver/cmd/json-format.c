/*
 * Newtonsoft-style JSON formatting and editing. STUB until issue 3's JSON
 * work lands: json_reformat copies its input unchanged.
 */
#include "delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
json_reformat(const char *json, size_t len, enum json_style style,
	      size_t *out_len, char *err, size_t err_size)
{
	char *copy = malloc(len + 1);

	if (copy == NULL) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	memcpy(copy, json, len);
	copy[len] = '\0';
	if (out_len != NULL)
		*out_len = len;
	return copy;
}

char *
json_set_path(const char *json, const char *path, const char *value_json,
	      char *err, size_t err_size)
{
	snprintf(err, err_size, "not implemented yet");
	return NULL;
}

char *
json_quote(const char *text)
{
	size_t len = strlen(text);
	char *q = malloc(len + 3);

	if (q == NULL)
		return NULL;
	q[0] = '"';
	memcpy(q + 1, text, len);
	q[len + 1] = '"';
	q[len + 2] = '\0';
	return q;
}
