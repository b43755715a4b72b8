/*
 * whr verify: what is wrong with an ms-signature value, checked as the
 * receiver checks it (PROTOCOL.md §3: split on '=', parts trimmed, empty
 * parts dropped; exactly sha256 and an even number of hex digits) plus
 * the length of an HMAC-SHA256 (64 digits). Each problem becomes a
 * sentence, and each repair a candidate value that verify.c tries with
 * whr_signature_check(). Findings quote at most a short label of the
 * value (an algorithm name, a character), never its digits.
 */
#include "verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define MAC_DIGITS 64		/* HMAC-SHA256 in hex */
#define MAX_PARTS 8

struct span {
	const char *s;
	size_t n;
};

static bool
is_space(char c)
{
	/* as the receiver trims (receiver/util.h) */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static bool
is_base64(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '+' || c == '/' || c == '-' ||
	       c == '_';
}

static struct span
trim(struct span x)
{
	while (x.n > 0 && is_space(x.s[0])) {
		x.s++;
		x.n--;
	}
	while (x.n > 0 && is_space(x.s[x.n - 1]))
		x.n--;
	return x;
}

static int
finding(struct header_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
finding(struct header_report *r, const char *fmt, ...)
{
	va_list ap;
	char *text;
	int rc;

	if (r->n_findings == HEADER_MAX_FINDINGS)
		return 0;
	va_start(ap, fmt);
	rc = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;
	r->findings[r->n_findings++] = text;
	return 0;
}

/* Try "sha256=" + @p digits (@p n of them) as well. */
static int
candidate(struct header_report *r, const char *digits, size_t n,
	  const char *fix)
{
	char *value;
	size_t i;

	if (r->n_candidates == HEADER_MAX_CANDIDATES)
		return 0;
	if (asprintf(&value, "sha256=%.*s", (int)n, digits) < 0)
		return -ENOMEM;
	for (i = 0; i < r->n_candidates; i++) {
		if (strcmp(r->candidates[i].value, value) == 0) {
			free(value);
			return 0;
		}
	}
	r->candidates[r->n_candidates].value = value;
	r->candidates[r->n_candidates].fix = fix;
	r->n_candidates++;
	r->comparable = true;
	return 0;
}

/* A short, printable rendering of a label (for an algorithm name). */
static void
label(struct span x, char *out, size_t size)
{
	size_t o = 0;
	size_t i;

	for (i = 0; i < x.n && o + 8 < size; i++) {
		unsigned char c = (unsigned char)x.s[i];

		if (i == 16) {
			o += (size_t)snprintf(out + o, size - o, "...");
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

/* The length of a quote character at @p s (ASCII or typographic), or 0. */
static size_t
quote_at(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	if (n >= 1 && (s[0] == '"' || s[0] == '\'' || s[0] == '`'))
		return 1;
	/* U+2018, U+2019, U+201C, U+201D */
	if (n >= 3 && u[0] == 0xe2 && u[1] == 0x80 &&
	    (u[2] == 0x98 || u[2] == 0x99 || u[2] == 0x9c || u[2] == 0x9d))
		return 3;
	return 0;
}

static size_t
quote_before(const char *s, size_t n)
{
	if (n >= 1 && quote_at(s + n - 1, 1) == 1)
		return 1;
	if (n >= 3 && quote_at(s + n - 3, 3) == 3)
		return 3;
	return 0;
}

/* Remove what surrounds the value: the header's name, quotes. */
static int
unwrap(struct header_report *r, struct span *v, bool *changed)
{
	struct span x = *v;
	size_t q1, q2;

	if (x.n > 12 && strncasecmp(x.s, "ms-signature", 12) == 0) {
		struct span rest = { x.s + 12, x.n - 12 };

		rest = trim(rest);
		if (rest.n > 0 && rest.s[0] == ':') {
			if (finding(r, "it includes the header's name "
				    "(\"ms-signature:\"); the value is only "
				    "what follows the colon") < 0)
				return -ENOMEM;
			x.s = rest.s + 1;
			x.n = rest.n - 1;
			x = trim(x);
			*changed = true;
		}
	}
	q1 = quote_at(x.s, x.n);
	q2 = x.n > q1 ? quote_before(x.s + q1, x.n - q1) : 0;
	if (q1 > 0 && q2 > 0) {
		if (finding(r, "it is in quotes, as if copied with them; the "
			    "receiver takes the quotes as part of the value "
			    "and answers 400") < 0)
			return -ENOMEM;
	} else if (q1 > 0 || q2 > 0) {
		if (finding(r, "it has a stray quote at its %s; the receiver "
			    "answers 400", q1 > 0 ? "start" : "end") < 0)
			return -ENOMEM;
	}
	if (q1 > 0 || q2 > 0) {
		x.s += q1;
		x.n -= q1 + q2;
		x = trim(x);
		*changed = true;
	}
	*v = x;
	return 0;
}

/* Split as the receiver does. Returns the number of parts (may exceed
 * MAX_PARTS; only the first MAX_PARTS are kept). */
static size_t
split(struct span v, struct span parts[MAX_PARTS])
{
	size_t n = 0;
	const char *s = v.s;
	const char *end = v.s + v.n;

	for (;;) {
		const char *eq = memchr(s, '=', (size_t)(end - s));
		struct span p = { s, (size_t)((eq ? eq : end) - s) };

		p = trim(p);
		if (p.n > 0) {
			if (n < MAX_PARTS)
				parts[n] = p;
			n++;
		}
		if (eq == NULL)
			break;
		s = eq + 1;
	}
	return n;
}

/* The algorithm label: sha256, another algorithm, or something else. */
static int
check_name(struct header_report *r, struct span name, bool *changed)
{
	static const char *const others[] = {
		"sha1", "sha384", "sha512", "sha224", "md5", "sha3256",
		"sha512256",
	};
	char norm[32];
	char shown[64];
	size_t i, o = 0;

	if (name.n == 6 && strncasecmp(name.s, "sha256", 6) == 0)
		return 0;
	*changed = true;
	label(name, shown, sizeof(shown));
	/* "HMAC-SHA-256", "sha_1" ... */
	for (i = 0; i < name.n && o + 1 < sizeof(norm); i++) {
		char c = name.s[i];

		if (c == '-' || c == '_' || c == ' ')
			continue;
		norm[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	norm[o] = '\0';
	if (strncmp(norm, "hmac", 4) == 0)
		memmove(norm, norm + 4, strlen(norm + 4) + 1);
	if (strcmp(norm, "sha256") == 0)
		return finding(r, "it names the algorithm \"%s\"; the receiver "
			       "accepts only the word sha256 (in any case) and "
			       "answers 400", shown);
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		if (strcmp(norm, others[i]) == 0)
			return finding(r, "it uses another algorithm, \"%s=\"; "
				       "the receiver accepts only sha256= "
				       "(HMAC-SHA256) and answers 400", shown);
	}
	return finding(r, "it starts with \"%s=\" instead of sha256=; the "
		       "receiver answers 400", shown);
}

/* Base64 of 32 bytes (43 characters without the padding the split
 * dropped, or 44 with it): try the hex of the decoded bytes. Returns 1
 * when it was that, 0 when not, -ENOMEM. */
static int
try_base64(struct header_report *r, const char *s, size_t n)
{
	unsigned char in[48];
	unsigned char raw[36];
	char hex[2 * 32 + 1];
	size_t i;

	if (n == 44 && s[43] == '=')
		n = 43;
	if (n != 43)
		return 0;
	for (i = 0; i < n; i++) {
		/* the URL-safe alphabet too */
		in[i] = (unsigned char)(s[i] == '-' ? '+' :
					s[i] == '_' ? '/' : s[i]);
	}
	in[43] = '=';
	if (EVP_DecodeBlock(raw, in, 44) != 33)
		return 0;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02X", raw[i]);
	if (finding(r, "it looks like base64 (%zu characters); the sender "
		    "writes the MAC as hex digits and the receiver answers 400",
		    n) < 0 ||
	    candidate(r, hex, 64, "the header's value decoded from base64 to hex") < 0)
		return -ENOMEM;
	return 1;
}

/* The sentence about a wrong number of digits. */
static int
length_finding(struct header_report *r, size_t n)
{
	const char *what;

	switch (n) {
	case 40:
		what = "the length of an HMAC-SHA1";
		break;
	case 96:
		what = "the length of an HMAC-SHA384";
		break;
	case 128:
		what = "the length of an HMAC-SHA512, or the value twice";
		break;
	default:
		what = NULL;
		break;
	}
	if (what != NULL)
		return finding(r, "it has %zu hex digits, not 64: %s; a wrong "
			       "length never matches", n, what);
	if (n < MAC_DIGITS)
		return finding(r, "it has %zu hex digits, not 64: it is cut "
			       "short (%zu missing), as by a copy that stopped "
			       "early; a wrong length never matches", n,
			       MAC_DIGITS - n);
	return finding(r, "it has %zu hex digits, not 64 (%zu too many); a "
		       "wrong length never matches", n, n - MAC_DIGITS);
}

/* The hex digits: spaces inside, other characters, their number. */
static int
check_digits(struct header_report *r, struct span d, bool changed)
{
	char *digits = malloc(d.n + 1);
	size_t spaces = 0, bad = 0, n = 0, i;
	size_t first_bad = 0;
	bool base64 = true;
	int rc = -ENOMEM;

	if (digits == NULL)
		return -ENOMEM;
	for (i = 0; i < d.n; i++) {
		char c = d.s[i];

		if (is_space(c)) {
			spaces++;
			continue;
		}
		if (!is_base64(c) && !(c == '=' && i == d.n - 1))
			base64 = false;
		if (!is_hex(c)) {
			if (bad++ == 0)
				first_bad = n;
			continue;
		}
		digits[n++] = c;
	}
	digits[n] = '\0';
	if (spaces > 0) {
		if (finding(r, "it has %zu space%s inside the hex digits; the "
			    "receiver answers 400", spaces,
			    spaces == 1 ? "" : "s") < 0)
			goto out;
		changed = true;
	}
	if (bad > 0 && base64 && spaces == 0) {
		rc = try_base64(r, d.s, d.n);
		if (rc != 0) {
			rc = rc < 0 ? rc : 0;
			goto out;
		}
		rc = -ENOMEM;
	}
	if (bad > 0) {
		char shown[16] = "";

		for (i = 0; i < d.n; i++) {
			unsigned char c = (unsigned char)d.s[i];

			if (is_space((char)c) || is_hex((char)c))
				continue;
			if (c >= 0x20 && c < 0x7f)
				snprintf(shown, sizeof(shown), "'%c'", c);
			else
				snprintf(shown, sizeof(shown), "byte 0x%02x", c);
			break;
		}
		if (finding(r, "it has %zu character%s that %s not hex digits "
			    "(the first, %s, after %zu digits); the receiver "
			    "answers 400", bad, bad == 1 ? "" : "s",
			    bad == 1 ? "is" : "are", shown, first_bad) < 0)
			goto out;
		changed = true;
	}
	if (n % 2 != 0 && finding(r, "it has an odd number of hex digits "
				  "(%zu); the receiver answers 400", n) < 0)
		goto out;
	if (n != MAC_DIGITS && length_finding(r, n) < 0)
		goto out;
	if (n > MAC_DIGITS) {
		if (candidate(r, digits, MAC_DIGITS,
			      "only the first 64 digits of the header's value") < 0 ||
		    candidate(r, digits + n - MAC_DIGITS, MAC_DIGITS,
			      "only the last 64 digits of the header's value") < 0)
			goto out;
	} else if (n == MAC_DIGITS && changed) {
		if (candidate(r, digits, n,
			      "the header's value fixed as said above") < 0)
			goto out;
	} else if (n == MAC_DIGITS) {
		r->comparable = true;
	}
	rc = 0;
out:
	free(digits);
	return rc;
}

int
header_analyze(const char *value, struct header_report *r)
{
	struct span parts[MAX_PARTS];
	struct span v = { value, strlen(value) };
	struct span digits;
	bool changed = false;
	size_t n, i;

	memset(r, 0, sizeof(*r));
	v = trim(v);
	if (v.n == 0)
		return finding(r, "it is empty; the receiver needs sha256= and "
			       "64 hex digits and answers 400");
	if (unwrap(r, &v, &changed) < 0)
		return -ENOMEM;
	n = split(v, parts);
	if (n == 0)
		return finding(r, "it has no value, only '='; the receiver "
			       "answers 400");
	if (n == 1) {
		size_t hex = 0, b64 = 0;

		if (parts[0].n == 6 && strncasecmp(parts[0].s, "sha256", 6) == 0)
			return finding(r, "it has no hex digits after the "
				       "algorithm's name; the receiver "
				       "answers 400");
		for (i = 0; i < parts[0].n; i++) {
			hex += is_hex(parts[0].s[i]) || is_space(parts[0].s[i]);
			b64 += is_base64(parts[0].s[i]);
		}
		if (hex < parts[0].n && (b64 < parts[0].n ||
					 (parts[0].n != 43 && parts[0].n != 44)))
			return finding(r, "it is not of the form "
				       "sha256=<hex digits>; the receiver "
				       "answers 400");
		if (finding(r, "the \"sha256=\" prefix is missing; the "
			    "receiver answers 400") < 0)
			return -ENOMEM;
		return check_digits(r, parts[0], true);
	}
	if (n > 2) {
		if (finding(r, "it has %zu parts separated by '='; the receiver "
			    "wants exactly two, sha256 and the hex digits, and "
			    "answers 400", n) < 0)
			return -ENOMEM;
		/* the part after "sha256", else the last one kept */
		digits = parts[n < MAX_PARTS ? n - 1 : MAX_PARTS - 1];
		for (i = 0; i + 1 < n && i + 1 < MAX_PARTS; i++) {
			if (parts[i].n >= 6 &&
			    strncasecmp(parts[i].s + parts[i].n - 6, "sha256",
					6) == 0) {
				digits = parts[i + 1];
				break;
			}
		}
		/* "k1=v1;k2=v2": the value ends at a separator */
		for (i = 0; i < digits.n; i++) {
			if (strchr(";,&", digits.s[i]) != NULL)
				break;
		}
		digits.n = i;
		return check_digits(r, digits, true);
	}
	if (check_name(r, parts[0], &changed) < 0)
		return -ENOMEM;
	return check_digits(r, parts[1], changed);
}

void
header_report_finish(struct header_report *r)
{
	size_t i;

	for (i = 0; i < r->n_findings; i++)
		free(r->findings[i]);
	for (i = 0; i < r->n_candidates; i++)
		free(r->candidates[i].value);
	memset(r, 0, sizeof(*r));
}
