/*
 * query_parameter() and percent_decode(), as used for the echo GET. The
 * input is a query string; with a NUL byte in it, the bytes before the
 * first NUL are the parameter name and the rest is the query. Decoding
 * never grows the text, so no result is longer than its input.
 */
#include "fuzz-common.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "webhook.h"

static void
check_parameter(const char *query, const char *name)
{
	size_t len = 12345;
	char *value;
	int rc = 1;

	value = query_parameter(query, name, &len, &rc);
	FUZZ_CHECK(rc == 0);
	if (value == NULL) {
		FUZZ_CHECK(len == 0);
		return;
	}
	FUZZ_CHECK(len <= strlen(query) && value[len] == '\0');
	FUZZ_CHECK(strlen(value) <= len);
	free(value);
}

static void
check_decode(const char *s, size_t len, bool plus_is_space)
{
	size_t out_len = len + 1;
	char *out = percent_decode(s, len, plus_is_space, &out_len);

	FUZZ_CHECK(out != NULL);
	FUZZ_CHECK(out_len <= len && out[out_len] == '\0');
	FUZZ_CHECK(strlen(out) <= out_len);
	if (memchr(out, '\0', out_len) == NULL)
		FUZZ_CHECK(strlen(out) == out_len);
	/* Nothing to decode: the text comes back as it was. */
	if (memchr(s, '%', len) == NULL &&
	    (!plus_is_space || memchr(s, '+', len) == NULL))
		FUZZ_CHECK(out_len == len && memcmp(out, s, len) == 0);
	free(out);
	/* The length is optional. */
	free(percent_decode(s, len, plus_is_space, NULL));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	char *query;
	char *name = NULL;

	/* The raw bytes, NULs included, with exact bounds for ASan. */
	check_decode((const char *)data, size, false);
	check_decode((const char *)data, size, true);

	if (nul != NULL) {
		name = fuzz_strndup(data, (size_t)(nul - data));
		query = fuzz_strndup(nul + 1, size - (size_t)(nul - data) - 1);
		check_parameter(query, name);
	} else {
		query = fuzz_strndup(data, size);
	}
	check_parameter(query, "echo");
	check_parameter(query, "noecho");
	check_parameter(query, "");
	{
		size_t len = 1;
		int rc = 1;

		FUZZ_CHECK(query_parameter(NULL, "echo", &len, &rc) == NULL &&
			   rc == 0 && len == 0);
	}
	free(name);
	free(query);
	return 0;
}
