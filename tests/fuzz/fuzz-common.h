/*
 * Shared by the libFuzzer targets: the entry points' prototypes (the
 * project builds with -Wmissing-prototypes), an invariant check that
 * aborts in every build type, and the quiet log sink.
 */
#ifndef WHR_FUZZ_COMMON_H
#define WHR_FUZZ_COMMON_H

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

/* Replace the log sink with one that writes nothing (stderr would slow
 * fuzzing down) but checks that every line is one line. */
void fuzz_quiet_log(void);

/* A NUL-terminated copy of @p size bytes (embedded NULs kept, so C
 * string functions see the text up to the first one). Never NULL: out
 * of memory aborts. The caller frees it. */
char *fuzz_strndup(const void *data, size_t size);

#endif /* WHR_FUZZ_COMMON_H */
