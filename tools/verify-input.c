/*
 * whr verify: its inputs. The body and the secret are read as bytes;
 * the secret's invisible ends are found so that verify.c can try it
 * without them.
 */
#include "verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY_MAX_INPUT (64u << 20)	/* the receiver's largest --max-body */

/* The whole of @p f, at most VERIFY_MAX_INPUT bytes; NULL with errno set. */
char *
verify_read_stream(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);

	while (buf != NULL) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (ferror(f)) {
			free(buf);
			return NULL;
		}
		if (got == 0 || feof(f))
			break;
		if (n == cap) {
			char *grown;

			if (cap >= VERIFY_MAX_INPUT) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap *= 2;
			grown = realloc(buf, cap + 1);
			if (grown == NULL)
				free(buf);
			buf = grown;
		}
	}
	if (buf == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

char *
verify_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;
	int saved;

	if (f == NULL)
		return NULL;
	data = verify_read_stream(f, len);
	saved = errno;
	fclose(f);
	errno = saved;
	return data;
}

/* The secret from the options or WHR_SECRET; NULL after a message. */
char *
verify_load_secret(const char *given, const char *file)
{
	const char *env = getenv("WHR_SECRET");
	char *secret;
	size_t len;

	if (given != NULL && file != NULL) {
		fprintf(stderr, "whr verify: give --secret or --secret-file, "
			"not both\n");
		return NULL;
	}
	if (given == NULL && file == NULL && (env == NULL || *env == '\0')) {
		fprintf(stderr, "whr verify: no secret: give --secret-file "
			"FILE, WHR_SECRET or --secret (see whr verify "
			"--help)\n");
		return NULL;
	}
	if (file == NULL) {
		secret = strdup(given != NULL ? given : env);
		if (secret == NULL)
			fprintf(stderr, "whr verify: out of memory\n");
		return secret;
	}
	secret = verify_read_file(file, &len);
	if (secret == NULL) {
		fprintf(stderr, "whr verify: cannot read the secret file %s: "
			"%s\n", file, strerror(errno));
		return NULL;
	}
	if (memchr(secret, '\0', len) != NULL) {
		fprintf(stderr, "whr verify: the secret file %s holds a NUL "
			"byte\n", file);
		free(secret);
		return NULL;
	}
	if (len > 0 && secret[len - 1] == '\n')
		secret[--len] = '\0';
	if (len > 0 && secret[len - 1] == '\r')
		secret[--len] = '\0';
	return secret;
}

/* Characters that are invisible at the ends of a pasted secret: ASCII
 * whitespace (which whr serve trims from its configuration), no-break
 * space, zero-width space, a byte order mark. Their length at @p s. */
static size_t
invisible_at(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	if (n >= 1 && strchr(" \t\n\r\v\f", s[0]) != NULL && s[0] != '\0')
		return 1;
	if (n >= 2 && u[0] == 0xc2 && u[1] == 0xa0)
		return 2;
	if (n >= 3 && ((u[0] == 0xe2 && u[1] == 0x80 && u[2] == 0x8b) ||
		       (u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf)))
		return 3;
	return 0;
}

static size_t
invisible_before(const char *s, size_t n)
{
	size_t k;

	for (k = 1; k <= 3 && k <= n; k++) {
		if (invisible_at(s + n - k, k) == k)
			return k;
	}
	return 0;
}

/* The secret without invisible characters at its ends (malloc'd), or
 * NULL when it has none. Counts them. */
char *
verify_trim_secret(const char *secret, size_t *lead, size_t *trail)
{
	const char *s = secret;
	size_t n = strlen(secret);
	size_t k;
	char *t;

	*lead = *trail = 0;
	while (n > 0 && (k = invisible_at(s, n)) > 0) {
		s += k;
		n -= k;
		(*lead)++;
	}
	while (n > 0 && (k = invisible_before(s, n)) > 0) {
		n -= k;
		(*trail)++;
	}
	if (*lead == 0 && *trail == 0)
		return NULL;
	t = strndup(s, n);
	return t;
}

size_t
verify_code_points(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}
