/*
 * Shared by the libFuzzer targets: the entry points' prototypes (the
 * project builds with -Wmissing-prototypes), an invariant check that
 * aborts in every build type, and small helpers. Every target logs
 * through a quiet sink (set before libFuzzer starts) that writes nothing
 * but checks that every line is one line.
 */
#ifndef WHR_FUZZ_COMMON_H
#define WHR_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Read by the UBSan runtime: make every report fatal, so that libFuzzer
 * keeps the input as a crash instead of printing and carrying on. */
const char *__ubsan_default_options(void);

/* assert() that survives NDEBUG and names the invariant. */
#define FUZZ_CHECK(cond)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",    \
				__FILE__, __LINE__, #cond);                  \
			abort();                                             \
		}                                                            \
	} while (0)

/* Both NULL, or both strings with the same text. */
bool fuzz_same_string(const char *a, const char *b);

/* Whitespace as .NET's String.Trim() sees it in ASCII; written apart
 * from the library's is_trim_space(), which the targets check. */
bool fuzz_is_space(char c);

/* HMAC-SHA256 of @p size bytes with the key @p secret (@p secret_len
 * bytes), one-shot: apart from the library's reused contexts. */
void fuzz_hmac_sha256(const char *secret, size_t secret_len,
		      const void *data, size_t size, unsigned char mac[32]);

/* A NUL-terminated copy of @p size bytes (embedded NULs kept, so C
 * string functions see the text up to the first one). Never NULL: out
 * of memory aborts. The caller frees it. */
char *fuzz_strndup(const void *data, size_t size);

#endif /* WHR_FUZZ_COMMON_H */
