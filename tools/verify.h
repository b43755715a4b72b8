/*
 * whr verify, internals: what is wrong with an ms-signature value
 * (verify-header.c), the bodies a delivery may have been before it was
 * changed in transit (verify-variants.c), and reading the body and the
 * secret (verify-input.c). Nothing here computes or holds a MAC: every
 * comparison is whr_signature_check() in verify.c.
 */
#ifndef WHR_TOOLS_VERIFY_H
#define WHR_TOOLS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define HEADER_MAX_FINDINGS 12
#define HEADER_MAX_CANDIDATES 4

/* A repaired header value to try, and what it is ("the header's value
 * fixed as said above"). */
struct header_candidate {
	char *value;			/* malloc'd */
	const char *fix;		/* static */
};

struct header_report {
	/* Sentences about the format, in the order of the checks; each
	 * malloc'd. They quote at most the first characters of the value,
	 * never its hex digits. */
	char *findings[HEADER_MAX_FINDINGS];
	size_t n_findings;
	struct header_candidate candidates[HEADER_MAX_CANDIDATES];
	size_t n_candidates;
	/* The value, or a candidate, has the form sha256=<64 hex digits>:
	 * its MAC can be compared at all. */
	bool comparable;
};

/* Look at @p value as the receiver would (PROTOCOL.md §3, checks 3 and
 * 4, plus the length of an HMAC-SHA256) and explain every problem. 0 or
 * -ENOMEM. Free with header_report_finish(), also after a failure. */
int header_analyze(const char *value, struct header_report *r);
void header_report_finish(struct header_report *r);

/* The bodies tried, in order, simplest change first: the line ends
 * changed back, a byte order mark or a final line end added or removed,
 * the JSON re-serialised as the sender writes it (compact, indented CRLF,
 * indented LF), and the combinations. */
struct body_variants;

/* NULL when out of memory. @p body is borrowed until the _free. */
struct body_variants *body_variants_new(const char *body, size_t len);
void body_variants_free(struct body_variants *v);

/* The next variant: its bytes (borrowed until the next call) and what
 * happened to the signed body to make it the one given, e.g. "its CRLF
 * line ends were turned into LF". Returns false when there are no more,
 * or -ENOMEM in *error. */
bool body_variants_next(struct body_variants *v, const char **data,
			size_t *len, const char **change, int *error);

/* verify-input.c */

/* The whole stream or file (at most 64 MiB), NUL-terminated after *len
 * bytes; NULL with errno set. The caller frees it. */
char *verify_read_stream(FILE *f, size_t *len);
char *verify_read_file(const char *path, size_t *len);

/* The secret from --secret @p given, --secret-file @p file (without one
 * final line end) or $WHR_SECRET, malloc'd; NULL after a message on
 * standard error. */
char *verify_load_secret(const char *given, const char *file);

/* The secret without the whitespace and invisible characters at its ends
 * (malloc'd; counted in *lead and *trail), or NULL when it has none. */
char *verify_trim_secret(const char *secret, size_t *lead, size_t *trail);

/* The number of UTF-8 code points of @p s. */
size_t verify_code_points(const char *s);

#endif /* WHR_TOOLS_VERIFY_H */
