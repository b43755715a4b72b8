/*
 * Helpers shared by the fuzz targets; see fuzz-common.h.
 */
#include "fuzz-common.h"

#include <string.h>

#include <whr/log.h>

const char *
__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* The log promises one event per line: no byte below 0x20 may reach a
 * sink (log.c escapes them). Checking it costs one scan per line. */
static void
quiet_sink(enum whr_log_level level, const char *line, void *userdata)
{
	const unsigned char *p;

	(void)level;
	(void)userdata;
	for (p = (const unsigned char *)line; *p != '\0'; p++)
		FUZZ_CHECK(*p >= 0x20);
}

void
fuzz_quiet_log(void)
{
	whr_log_set_handler(quiet_sink, NULL);
}

char *
fuzz_strndup(const void *data, size_t size)
{
	char *copy = malloc(size + 1);

	FUZZ_CHECK(copy != NULL);
	if (size > 0)
		memcpy(copy, data, size);
	copy[size] = '\0';
	return copy;
}
