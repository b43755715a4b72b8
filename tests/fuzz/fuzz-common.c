/*
 * Helpers shared by the fuzz targets; see fuzz-common.h.
 */
#include "fuzz-common.h"

#include <string.h>

#include <openssl/evp.h>

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

/* stderr would slow fuzzing down. */
__attribute__((constructor)) static void
quiet_log(void)
{
	whr_log_set_handler(quiet_sink, NULL);
}

bool
fuzz_same_string(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool
fuzz_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

void
fuzz_hmac_sha256(const char *secret, size_t secret_len, const void *data,
		 size_t size, unsigned char mac[32])
{
	size_t out_len = 0;

	FUZZ_CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret,
			     secret_len, data, size, mac, 32,
			     &out_len) != NULL);
	FUZZ_CHECK(out_len == 32);
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
