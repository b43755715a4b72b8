/*
 * A request's head as it came on the wire (head.h): its end, its request
 * line and the header fields whr decides on before the body, read
 * strictly (RFC 9112 sections 3, 5 and 6).
 */
#include "front/head.h"

#include <string.h>

#include "util.h"

enum {
	SCAN_LINE,	/* inside a line */
	SCAN_START,	/* at a line's first byte */
	SCAN_CR,	/* after a CR at a line's first byte */
};

void
head_scan_init(struct head_scan *s)
{
	s->len = 0;
	s->state = SCAN_START;
}

bool
head_scan_feed(struct head_scan *s, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *lf;

		switch (s->state) {
		case SCAN_LINE:
			lf = memchr(p + i, '\n', n - i);
			if (lf == NULL) {
				s->len += n - i;
				return false;
			}
			s->len += (size_t)(lf - (p + i)) + 1;
			i = (size_t)(lf - p) + 1;
			s->state = SCAN_START;
			break;
		case SCAN_START:
		case SCAN_CR:
			s->len++;
			/* LF or CR LF alone on a line: the empty line. */
			if (p[i] == '\n')
				return true;
			s->state = s->state == SCAN_START && p[i] == '\r'
					   ? SCAN_CR
					   : SCAN_LINE;
			i++;
			break;
		}
	}
	return false;
}

/* RFC 9110 5.6.2: the characters of a token (a method, a field name). */
static const bool tchar[256] = {
	['!'] = true, ['#'] = true, ['$'] = true, ['%'] = true, ['&'] = true,
	['\''] = true, ['*'] = true, ['+'] = true, ['-'] = true, ['.'] = true,
	['^'] = true, ['_'] = true, ['`'] = true, ['|'] = true, ['~'] = true,
	['0'] = true, ['1'] = true, ['2'] = true, ['3'] = true, ['4'] = true,
	['5'] = true, ['6'] = true, ['7'] = true, ['8'] = true, ['9'] = true,
	['A'] = true, ['B'] = true, ['C'] = true, ['D'] = true, ['E'] = true,
	['F'] = true, ['G'] = true, ['H'] = true, ['I'] = true, ['J'] = true,
	['K'] = true, ['L'] = true, ['M'] = true, ['N'] = true, ['O'] = true,
	['P'] = true, ['Q'] = true, ['R'] = true, ['S'] = true, ['T'] = true,
	['U'] = true, ['V'] = true, ['W'] = true, ['X'] = true, ['Y'] = true,
	['Z'] = true, ['a'] = true, ['b'] = true, ['c'] = true, ['d'] = true,
	['e'] = true, ['f'] = true, ['g'] = true, ['h'] = true, ['i'] = true,
	['j'] = true, ['k'] = true, ['l'] = true, ['m'] = true, ['n'] = true,
	['o'] = true, ['p'] = true, ['q'] = true, ['r'] = true, ['s'] = true,
	['t'] = true, ['u'] = true, ['v'] = true, ['w'] = true, ['x'] = true,
	['y'] = true, ['z'] = true,
};

static size_t
token_length(const char *p, const char *end)
{
	const char *s = p;

	while (s < end && tchar[(unsigned char)*s])
		s++;
	return (size_t)(s - p);
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* method SP request-target SP HTTP-version, with single spaces. */
static void
parse_request_line(const char *p, const char *end, struct http_head *h)
{
	const char *s = p;
	size_t n = token_length(s, end);

	h->error = "malformed request line";
	if (n == 0 || s + n >= end || s[n] != ' ')
		return;
	h->method = (struct head_span){ s, n };
	s += n + 1;
	/* Any byte but a space, a CR and NUL: evhttp takes what it can
	 * route, and the log shows the rest escaped. */
	n = 0;
	while (s + n < end && s[n] != ' ' && s[n] != '\r' && s[n] != '\0')
		n++;
	if (n == 0 || s + n >= end || s[n] != ' ')
		return;
	h->target = (struct head_span){ s, n };
	s += n + 1;
	if (end - s != 8 || memcmp(s, "HTTP/", 5) != 0 || !is_digit(s[5]) ||
	    s[6] != '.' || !is_digit(s[7]))
		return;
	h->major = s[5] - '0';
	h->minor = s[7] - '0';
	h->error = h->major == 1 ? NULL : "HTTP version not supported";
}

bool
http_head_start_bad(const char *p, size_t n)
{
	const char *lf = memchr(p, '\n', n);
	const char *end = lf != NULL ? lf : p + n;
	size_t method = token_length(p, end);
	struct http_head h;

	if (method < (size_t)(end - p) && p[method] != ' ')
		return true;
	if (lf == NULL)
		return false;
	if (lf > p && lf[-1] == '\r')
		lf--;
	memset(&h, 0, sizeof(h));
	parse_request_line(p, lf, &h);
	return h.error != NULL;
}

struct field_counts {
	size_t lengths;
	size_t codings;
	size_t hosts;
};

static bool
name_is(const char *name, size_t len, const char *lower)
{
	return ascii_equal_nocase_n(name, len, lower, strlen(lower));
}

/* One field line (without its line end). */
static void
parse_field(const char *p, const char *end, struct http_head *h,
	    struct field_counts *n)
{
	size_t name_len = token_length(p, end);
	const char *value;
	size_t value_len;
	size_t i;

	if (name_len == 0 || p + name_len >= end || p[name_len] != ':') {
		if (name_len > 0 && p + name_len < end &&
		    (p[name_len] == ' ' || p[name_len] == '\t'))
			h->error = "whitespace between a header field name and "
				   "its colon";
		else if (memchr(p, ':', (size_t)(end - p)) == NULL)
			h->error = "a header line without a colon";
		else
			h->error = "invalid character in a header field name";
		return;
	}
	value = p + name_len + 1;
	value_len = (size_t)(end - value);
	if (memchr(value, '\r', value_len) != NULL ||
	    memchr(value, '\0', value_len) != NULL) {
		h->error = "a CR or NUL byte in a header field value";
		return;
	}
	while (value_len > 0 && (*value == ' ' || *value == '\t')) {
		value++;
		value_len--;
	}
	while (value_len > 0 &&
	       (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
		value_len--;

	/* By length first: most fields are none of these. */
	switch (name_len) {
	case 4:
		if (name_is(p, name_len, "host"))
			n->hosts++;
		break;
	case 12:
		if (name_is(p, name_len, "ms-signature") &&
		    h->n_signatures++ == 0)
			h->signature = (struct head_span){ value, value_len };
		break;
	case 14:
		if (!name_is(p, name_len, "content-length"))
			break;
		if (++n->lengths > 1) {
			h->error = "more than one Content-Length header";
			return;
		}
		/* Digits alone: "+5", "5, 5" or "0x5" are read otherwise by
		 * others. 18 of them are more than any body. */
		if (value_len == 0 || value_len > 18) {
			h->error = "invalid Content-Length (digits only)";
			return;
		}
		h->content_length = 0;
		for (i = 0; i < value_len; i++) {
			if (!is_digit(value[i])) {
				h->error = "invalid Content-Length (digits only)";
				return;
			}
			h->content_length = h->content_length * 10 +
					    (value[i] - '0');
		}
		break;
	case 15:
		if (!name_is(p, name_len, "x-forwarded-for"))
			break;
		if (h->n_forwarded == HEAD_FORWARDED_MAX) {
			memmove(h->forwarded, h->forwarded + 1,
				(HEAD_FORWARDED_MAX - 1) *
					sizeof(h->forwarded[0]));
			h->n_forwarded--;
		}
		h->forwarded[h->n_forwarded++] =
			(struct head_span){ value, value_len };
		break;
	case 17:
		if (!name_is(p, name_len, "transfer-encoding"))
			break;
		/* evhttp knows chunked alone; any other coding, or a list,
		 * would frame the body differently for someone else. */
		if (++n->codings > 1 ||
		    !ascii_equal_nocase_n(value, value_len, "chunked", 7)) {
			h->error = "a Transfer-Encoding other than chunked";
			return;
		}
		h->chunked = true;
		break;
	}
}

void
http_head_parse(const char *text, size_t len, struct http_head *h)
{
	const char *end = text + len;
	const char *line = text;
	struct field_counts n = { 0 };
	bool first = true;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	h->major = h->minor = -1;
	while (line < end) {
		const char *lf = memchr(line, '\n', (size_t)(end - line));
		const char *eol;

		if (lf == NULL) {
			h->error = "incomplete request head";
			return;
		}
		eol = lf > line && lf[-1] == '\r' ? lf - 1 : lf;
		if (first) {
			parse_request_line(line, eol, h);
			if (h->error != NULL)
				return;
			first = false;
		} else if (eol == line) {
			break;		/* the empty line */
		} else if (*line == ' ' || *line == '\t') {
			h->error = "a header line folded onto the one before "
				   "(obsolete line folding)";
			return;
		} else {
			parse_field(line, eol, h, &n);
			if (h->error != NULL)
				return;
		}
		line = lf + 1;
	}
	if (first) {
		h->error = "malformed request line";
		return;
	}
	if (h->chunked && h->content_length >= 0) {
		h->error = "both Transfer-Encoding and Content-Length";
		return;
	}
	/* HTTP/1.0 has no chunked coding: a proxy of 1.0 reads such a body
	 * some other way (RFC 9112 §6.1: faulty framing). */
	if (h->chunked && h->minor == 0) {
		h->error = "Transfer-Encoding in an HTTP/1.0 request";
		return;
	}
	if (n.hosts > 1) {
		h->error = "more than one Host header";
		return;
	}
	if (n.hosts == 0 && h->minor >= 1) {
		h->error = "an HTTP/1.1 request without Host";
		return;
	}
	if ((http_head_method_is(h, "HEAD") ||
	     http_head_method_is(h, "TRACE")) &&
	    (h->chunked || h->content_length > 0))
		h->error = "a HEAD or TRACE request has no body";
}

const char *
http_head_path(const struct http_head *h, size_t *len)
{
	const char *q = memchr(h->target.p, '?', h->target.len);

	*len = q != NULL ? (size_t)(q - h->target.p) : h->target.len;
	return h->target.p;
}

bool
http_head_method_is(const struct http_head *h, const char *method)
{
	size_t n = strlen(method);

	return h->method.len == n && memcmp(h->method.p, method, n) == 0;
}
