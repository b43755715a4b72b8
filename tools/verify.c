/*
 * whr verify: check an ms-signature value against a body and a secret,
 * with the receiver's exact rules (whr_signature_check()), and when it
 * does not match, find out why: the header's format (verify-header.c),
 * whitespace around the secret, a body changed in transit
 * (verify-variants.c), or else a different secret. It never prints the
 * secret or a MAC: it computes none itself, every comparison is
 * whr_signature_check(), and of the given value it shows only the length
 * and the first characters.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <whr/whr.h>

#include "commands.h"
#include "verify.h"

#define SHOWN_DIGITS 4		/* of the given value, after its '=' */

static void
usage(FILE *out)
{
	fprintf(out,
"Usage: whr verify --signature VALUE [--secret-file FILE | --secret SECRET]\n"
"                  [FILE]\n"
"\n"
"Check an ms-signature value against a delivery body exactly as the\n"
"receiver does (HMAC-SHA256 of the body's exact bytes, keyed with the\n"
"secret's UTF-8 bytes), and when it does not match, say why.\n"
"\n"
"The body is read from FILE, or from standard input without one (or with\n"
"\"-\"). Its bytes count as they are: keep its line ends, and add no final\n"
"newline it did not have.\n"
"\n"
"Options:\n"
"  --signature VALUE   the ms-signature header's value, e.g. \"sha256=9F86...\"\n"
"  --secret-file FILE  read the secret from FILE (one final line end is\n"
"                      not part of it)\n"
"  --secret SECRET     the secret itself (other users may see it in the\n"
"                      process list: prefer --secret-file or WHR_SECRET)\n"
"  --help              show this help\n"
"\n"
"Environment:\n"
"  WHR_SECRET          the secret, when neither --secret nor --secret-file\n"
"                      is given\n"
"\n"
"When the signature does not verify, whr verify checks the likely causes\n"
"in this order and reports every one that applies:\n"
"  1. the header's format: no \"sha256=\" prefix, another algorithm (sha1=),\n"
"     characters that are not hex digits, an odd number of digits, a wrong\n"
"     number (62: cut short), spaces inside, quotes around the value;\n"
"  2. whitespace at the start or end of the secret (it tries the secret\n"
"     without it);\n"
"  3. the body changed in transit: it tries the body with CRLF line ends\n"
"     turned into LF and LF into CRLF, a UTF-8 byte order mark added or\n"
"     removed, a final line end added or removed, the JSON re-serialised\n"
"     (compact, indented with CRLF, indented with LF), and these combined,\n"
"     and names the change that verifies;\n"
"  4. otherwise, a different secret (each receiver id has its own).\n"
"It never prints the secret, the expected signature or any MAC.\n"
"\n"
"Exit status:\n"
"  0  the signature verifies\n"
"  1  it does not verify (the causes found are printed)\n"
"  2  usage error: an unknown or missing option, no secret, a file that\n"
"     cannot be read\n");
}

/* Print a paragraph wrapped at 78 columns: @p first before its first
 * line, @p rest before the others. */
static void
say(const char *first, const char *rest, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
say(const char *first, const char *rest, const char *fmt, ...)
{
	va_list ap;
	char *text;
	const char *p;
	size_t col;
	bool line_start = true;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0) {
		va_end(ap);
		return;
	}
	va_end(ap);
	fputs(first, stdout);
	col = strlen(first);
	for (p = text; *p != '\0';) {
		size_t word = strcspn(p, " ");

		if (!line_start && col + 1 + word > 78) {
			printf("\n%s", rest);
			col = strlen(rest);
			line_start = true;
		}
		if (!line_start) {
			putchar(' ');
			col++;
		}
		fwrite(p, 1, word, stdout);
		col += word;
		line_start = false;
		p += word;
		while (*p == ' ')
			p++;
	}
	putchar('\n');
	free(text);
}

/* The start of the given value, printable: up to its first '=' (when
 * there is one early on) and 4 more characters, so at most 4 digits of a
 * MAC whatever the value looks like. */
static void
print_prefix(const char *value)
{
	const char *eq = strchr(value, '=');
	size_t shown = eq != NULL && eq - value < 24 ?
		       (size_t)(eq - value) + 1 + SHOWN_DIGITS : SHOWN_DIGITS;
	size_t i;

	printf("  signature: %zu characters, starting \"", strlen(value));
	for (i = 0; value[i] != '\0' && i < shown; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	printf("%s\"\n", value[i] != '\0' ? "..." : "");
}

static void
print_secret_notes(const char *secret, size_t lead, size_t trail)
{
	size_t chars = verify_code_points(secret);

	if (lead + trail > 0)
		say("note: ", "      ", "the secret has whitespace or invisible "
		    "characters at its %s; whr serve trims whitespace from the "
		    "secrets it is configured with, so it would check with a "
		    "different secret than this one.",
		    lead && trail ? "start and end" : lead ? "start" : "end");
	if (chars < 32 || chars > 128)
		say("note: ", "      ", "the secret is %zu characters long; the "
		    "receiver accepts secrets of 32 to 128 characters only.",
		    chars);
}

struct match {
	bool found;
	const struct header_candidate *header;	/* NULL: as given */
	bool trimmed;				/* the secret trimmed */
	char *change;				/* NULL: the body as given */
};

/* Try every repaired header and secret on @p body; 1 when one verifies,
 * 0 when none, -EIO when the HMAC cannot be computed. */
static int
try_all(const struct header_report *hr, const char *signature,
	const char *secret, const char *trimmed, const char *body, size_t len,
	struct match *m, bool skip_given)
{
	size_t h, s;

	for (s = 0; s < (trimmed != NULL ? 2u : 1u); s++) {
		for (h = 0; h <= hr->n_candidates; h++) {
			const char *value = h == 0 ? signature :
					    hr->candidates[h - 1].value;
			enum whr_signature_status st;

			if (skip_given && h == 0 && s == 0)
				continue;
			st = whr_signature_check(s == 0 ? secret : trimmed,
						 body, len, value);
			if (st == WHR_SIGNATURE_ERROR)
				return -EIO;
			if (st == WHR_SIGNATURE_OK) {
				m->found = true;
				m->header = h == 0 ? NULL :
					    &hr->candidates[h - 1];
				m->trimmed = s == 1;
				return 1;
			}
		}
	}
	return 0;
}

static int
search(const struct header_report *hr, const char *signature,
       const char *secret, const char *trimmed, const char *body,
       size_t len, struct match *m)
{
	struct body_variants *v;
	const char *data, *change;
	size_t n;
	int error = 0;
	int rc;

	rc = try_all(hr, signature, secret, trimmed, body, len, m, true);
	if (rc != 0)
		return rc;
	v = body_variants_new(body, len);
	if (v == NULL)
		return -ENOMEM;
	while (body_variants_next(v, &data, &n, &change, &error)) {
		rc = try_all(hr, signature, secret, trimmed, data, n, m, false);
		if (rc == 1) {
			m->change = strdup(change);
			rc = m->change != NULL ? 1 : -ENOMEM;
		}
		if (rc != 0)
			break;
	}
	body_variants_free(v);
	return error != 0 ? error : rc;
}

static void
report(const struct header_report *hr, const struct match *m, size_t lead,
       size_t trail)
{
	const char *fixes[3] = { "", "", "" };
	size_t n_fixes = 0;
	char num[8];
	int cause = 0;
	size_t i;

	printf("\nLikely causes, in the order checked:\n");
	if (hr->n_findings > 0) {
		printf("%d. The header's format is wrong:\n", ++cause);
		for (i = 0; i < hr->n_findings; i++)
			say("   - ", "     ", "%s.", hr->findings[i]);
	}
	if (lead + trail > 0) {
		snprintf(num, sizeof(num), "%d. ", ++cause);
		say(num, "   ", "The secret has whitespace or invisible "
		    "characters at its %s (%zu character%s). %s", lead && trail ?
		    "start and end" : lead ? "start" : "end", lead + trail,
		    lead + trail == 1 ? "" : "s",
		    m->found && m->trimmed ? "Without them, the signature "
		    "verifies: they came with a copy and paste or a file's line "
		    "end." : m->found ? "They are not what breaks it here, but "
		    "whr serve trims them from the secrets it is configured "
		    "with." : "Without them it does not verify either.");
	}
	if (m->found && m->change != NULL) {
		snprintf(num, sizeof(num), "%d. ", ++cause);
		say(num, "   ", "The body was changed after it was signed: %s. "
		    "The signature verifies on the body with that undone, so "
		    "whatever carried or stored it (a proxy, a logger, an "
		    "editor, a copy and paste, git's core.autocrlf) changed its "
		    "bytes.", m->change);
	}
	if (m->found) {
		if (m->header != NULL)
			fixes[n_fixes++] = m->header->fix;
		if (m->trimmed)
			fixes[n_fixes++] = "the secret trimmed";
		if (m->change != NULL)
			fixes[n_fixes++] = "the body as it was signed";
		say("\n", "", "It verifies with %s%s%s%s%s.", fixes[0],
		    n_fixes > 1 ? (n_fixes > 2 ? ", " : " and ") : "",
		    n_fixes > 1 ? fixes[1] : "", n_fixes > 2 ? " and " : "",
		    n_fixes > 2 ? fixes[2] : "");
		return;
	}
	snprintf(num, sizeof(num), "%d. ", ++cause);
	if (!hr->comparable) {
		say(num, "   ", "The MAC itself cannot be compared until the "
		    "value has the form sha256=<64 hex digits>: copy the whole "
		    "ms-signature value again, as it was sent.");
		return;
	}
	say(num, "   ", "A different secret: none of the changes tried (line "
	    "ends, a byte order mark, a final line end, the JSON "
	    "re-serialised) makes it verify, so the body was most likely "
	    "signed with another secret, or changed in some other way (cut "
	    "short, edited). Each receiver id has its own secret: a delivery "
	    "to /api/webhooks/incoming/custom/ID is checked with ID's secret, "
	    "and one to /api/webhooks/incoming/custom with the default secret; "
	    "check which registration sent it and that its secret is the one "
	    "given here.");
}

int
cmd_verify(int argc, char **argv)
{
	const char *signature = NULL, *secret_arg = NULL, *secret_file = NULL;
	const char *path = NULL;
	struct header_report hr = { 0 };
	struct match m = { 0 };
	char *secret = NULL, *trimmed = NULL, *body = NULL;
	size_t len = 0, lead = 0, trail = 0;
	enum whr_signature_status st;
	int status = EXIT_USAGE;
	bool options_done = false;
	int i, rc;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		const char *name = NULL;
		size_t k;
		static const struct {
			const char *name;
			size_t len;
		} opts[] = {
			{ "--signature", 11 },
			{ "--secret", 8 },
			{ "--secret-file", 13 },
		};

		if (!options_done && (strcmp(a, "--help") == 0 ||
				      strcmp(a, "-h") == 0)) {
			usage(stdout);
			return 0;
		}
		if (!options_done && strcmp(a, "--") == 0) {
			options_done = true;
			continue;
		}
		for (k = 0; !options_done && k < 3; k++) {
			if (strncmp(a, opts[k].name, opts[k].len) == 0 &&
			    (a[opts[k].len] == '\0' || a[opts[k].len] == '=')) {
				name = opts[k].name;
				slot = k == 0 ? &signature :
				       k == 1 ? &secret_arg : &secret_file;
				break;
			}
		}
		if (slot != NULL) {
			const char *value = strchr(a, '=');

			if (value != NULL) {
				value++;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				fprintf(stderr, "whr verify: %s needs a value\n",
					name);
				return EXIT_USAGE;
			}
			if (*slot != NULL) {
				fprintf(stderr, "whr verify: %s given twice\n",
					name);
				return EXIT_USAGE;
			}
			*slot = value;
			continue;
		}
		if (!options_done && a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "whr verify: unknown option '%s' (see "
				"whr verify --help)\n", a);
			return EXIT_USAGE;
		}
		if (path != NULL) {
			fprintf(stderr, "whr verify: one FILE only\n");
			return EXIT_USAGE;
		}
		path = a;
	}
	if (signature == NULL) {
		fprintf(stderr, "whr verify: --signature VALUE is required (see "
			"whr verify --help)\n");
		return EXIT_USAGE;
	}
	secret = verify_load_secret(secret_arg, secret_file);
	if (secret == NULL)
		goto out;
	if (*secret == '\0') {
		fprintf(stderr, "whr verify: the secret is empty\n");
		goto out;
	}
	if (path == NULL || strcmp(path, "-") == 0) {
		if (isatty(STDIN_FILENO))
			fprintf(stderr, "whr verify: reading the body from "
				"standard input (end it with Ctrl-D)\n");
		body = verify_read_stream(stdin, &len);
	} else {
		body = verify_read_file(path, &len);
	}
	if (body == NULL) {
		fprintf(stderr, "whr verify: cannot read %s: %s\n",
			path != NULL && strcmp(path, "-") != 0 ? path :
			"standard input", strerror(errno));
		goto out;
	}
	trimmed = verify_trim_secret(secret, &lead, &trail);

	st = whr_signature_check(secret, body, len, signature);
	if (st == WHR_SIGNATURE_OK) {
		printf("verifies: the signature matches this body (%zu bytes) "
		       "under this secret\n", len);
		print_secret_notes(secret, lead, trail);
		status = 0;
		goto out;
	}
	status = 1;
	if (st == WHR_SIGNATURE_ERROR ||
	    header_analyze(signature, &hr) < 0) {
		fprintf(stderr, "whr verify: the check failed (out of memory or "
			"an OpenSSL error)\n");
		goto out;
	}
	printf("does not verify: %s\n", whr_signature_status_message(st));
	print_prefix(signature);
	printf("  body: %zu bytes; secret: %zu characters\n", len,
	       verify_code_points(secret));
	print_secret_notes(secret, 0, 0);
	rc = search(&hr, signature, secret,
		    trimmed != NULL && *trimmed != '\0' ? trimmed : NULL,
		    body, len, &m);
	if (rc < 0) {
		fprintf(stderr, "whr verify: the check failed (out of memory or "
			"an OpenSSL error)\n");
		goto out;
	}
	report(&hr, &m, lead, trail);
out:
	header_report_finish(&hr);
	free(m.change);
	if (secret != NULL)
		OPENSSL_cleanse(secret, strlen(secret));
	if (trimmed != NULL)
		OPENSSL_cleanse(trimmed, strlen(trimmed));
	free(secret);
	free(trimmed);
	free(body);
	return status;
}
