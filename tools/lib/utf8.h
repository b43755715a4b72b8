/*
 * UTF-8 for the tools: reading a code point of well-formed UTF-8 (as the
 * receiver reads it) and writing one.
 */
#ifndef WHR_TOOLS_UTF8_H
#define WHR_TOOLS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The code point that starts @p s (@p len bytes, at least 1) into *cp
 * when @p cp is not NULL: its length in bytes, 1 to 4, or 0 when the
 * bytes are not well-formed UTF-8 (overlong forms, surrogates, values
 * past U+10FFFF and cut sequences are not). */
size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp);

/* Code point @p c (at most U+10FFFF) as UTF-8 into @p out, which has
 * room for 4 bytes: their number. */
size_t utf8_encode(char *out, uint32_t c);

#endif /* WHR_TOOLS_UTF8_H */
