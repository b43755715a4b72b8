/*
 * What `whr send`, `whr probe` (and in part `whr healthcheck` and
 * `whr register`) share: reading their command lines (options,
 * durations, headers, the secret), signing a delivery the way the sender
 * does, and printing what happened.
 */
#ifndef WHR_TOOLS_TOOL_COMMON_H
#define WHR_TOOLS_TOOL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <whr/signature.h>

#include "lib/http.h"

/* ---- command lines -------------------------------------------------- */

struct tool_option {
	const char *name;	/* "timeout" for --timeout */
	char short_name;	/* 'v', or 0 */
	bool takes_value;
	int id;
};

enum {
	TOOL_ARG_END = 0,	/* no more arguments */
	TOOL_ARG_POSITIONAL = -1, /* *value is a positional argument */
	TOOL_ARG_ERROR = -2,	/* reported on stderr */
};

struct tool_args {
	int argc;
	char **argv;
	int i;			/* the next one */
	bool positional_only;	/* after "--" */
};

/* The next argument: an option's id (its value, if it takes one, in
 * *value), or one of TOOL_ARG_*. Accepts --name value, --name=value, -v,
 * and "--" before positional arguments. */
int tool_next_arg(struct tool_args *a, const struct tool_option *table,
		  const char **value, const char *cmd);

/* Take option @p id of a command's table (with its value, if it takes
 * one) into @p userdata. 0, or < 0 after a message on stderr. */
typedef int (*tool_option_fn)(void *userdata, int id, const char *value);

/* The command line of a tool that takes one URL and options (send,
 * probe): every option of @p table but TOOL_OPT_HELP goes to @p take, in
 * order; --help calls @p usage. 0 with the URL in *url; 1 when --help was
 * shown; -EINVAL after a message on stderr (a bad option or value, a
 * second URL, none). */
int tool_parse_url_args(int argc, char **argv,
			const struct tool_option *table, const char *cmd,
			void (*usage)(void), tool_option_fn take,
			void *userdata, const char **url);

/* A duration as whr serve reads one (whr_parse_duration(): a whole
 * number with ms, s, m, h or d; a bare number is seconds), at most a
 * week. 0, or -EINVAL. */
int tool_parse_duration(const char *s, int64_t *us);
/* A timeout or a wait: a duration above 0. 0, or -EINVAL after a
 * message on stderr naming whr @p cmd and its --@p option. */
int tool_parse_timeout(const char *value, const char *cmd,
		       const char *option, int64_t *us);
/* A whole number in [min, max]. 0, or -EINVAL. */
int tool_parse_long(const char *s, long min, long max, long *out);
/* "300 ms", "2 s", "1.5 s" */
void tool_format_duration(char *out, size_t size, int64_t us);

/* The options the tools share. */
struct tool_http {
	int64_t timeout_us;		/* --timeout; 100 s like .NET */
	const char *cacert;		/* --cacert */
	bool insecure;			/* --insecure */
	struct http_header *headers;	/* --header, in order; each name
					 * is a malloc'd "Name\0value" */
	size_t n_headers;
	bool verbose;			/* -v */
	const char *secret_arg;		/* --secret */
	const char *secret_file;	/* --secret-file */
};

enum {
	TOOL_OPT_TIMEOUT = 1000,
	TOOL_OPT_CACERT,
	TOOL_OPT_INSECURE,
	TOOL_OPT_HEADER,
	TOOL_OPT_VERBOSE,
	TOOL_OPT_SECRET,
	TOOL_OPT_SECRET_FILE,
	TOOL_OPT_HELP,
};

/* The table rows of the shared options, to put in a command's table. */
#define TOOL_HTTP_OPTIONS \
	{ "timeout", 0, true, TOOL_OPT_TIMEOUT }, \
	{ "cacert", 0, true, TOOL_OPT_CACERT }, \
	{ "insecure", 0, false, TOOL_OPT_INSECURE }, \
	{ "header", 'H', true, TOOL_OPT_HEADER }, \
	{ "verbose", 'v', false, TOOL_OPT_VERBOSE }, \
	{ "secret", 0, true, TOOL_OPT_SECRET }, \
	{ "secret-file", 0, true, TOOL_OPT_SECRET_FILE }, \
	{ "help", 'h', false, TOOL_OPT_HELP }

/* The --help lines of the shared options. */
extern const char tool_http_usage[];

void tool_http_init(struct tool_http *h);
void tool_http_finish(struct tool_http *h);
/* Take a shared option (TOOL_OPT_*, not HELP). 0, or -EINVAL after a
 * message on stderr. */
int tool_http_option(struct tool_http *h, int id, const char *value,
		     const char *cmd);

/* The secret from --secret, --secret-file or WHR_SECRET, in that order
 * (*secret NULL when none is given). Warns on stderr about a secret the
 * receivers refuse (fewer than 32 or more than 128 characters, not
 * UTF-8). 0, or -EINVAL after a message, which never holds the secret.
 * Free it with tool_secret_free(). */
int tool_secret_load(const struct tool_http *h, const char *cmd,
		     char **secret);
void tool_secret_free(char *secret);

/* A secret (or a key) kept in the file @p path: its bytes, one trailing
 * line end dropped; malloc'd (free it with tool_secret_free()), or NULL
 * after a message that names the file as the @p what ("secret file"),
 * never its content: unreadable, larger than 4 KiB, a NUL byte. */
char *tool_secret_file_read(const char *path, const char *cmd,
			    const char *what);

/* ---- samples -------------------------------------------------------- */

/* The built-in sample notification of @p action (compact JSON, static),
 * or NULL: *none says the build has no samples at all; otherwise the
 * samples there are were listed on stderr. */
const char *tool_sample(const char *action, const char *cmd, bool *none);

/* ---- requests and reports ------------------------------------------- */

/* The headers of a delivery POST of @p body (@p len bytes) signed with
 * @p secret, in the sender's order: ms-signature, the --header ones,
 * Content-Type (a --header of either name replaces whr's). The signature
 * is written into @p signature (WHR_SIGNATURE_HEADER_SIZE bytes), which
 * they point to, as to @p h's headers. The array is malloc'd, into *out
 * (free() it), its count into *n. 0, -EIO when the signature cannot be
 * computed, or -ENOMEM. */
int tool_post_headers(const struct tool_http *h, const char *secret,
		      const void *body, size_t len, char *signature,
		      struct http_header **out, size_t *n);

/* An event loop, and the client for these options on it, into *base and
 * *client. 0; 1 after a message (no event loop, out of memory); or
 * EXIT_USAGE after a message when the TLS settings for an https URL
 * cannot be loaded (a bad --cacert). tool_client_free() them, also after
 * a failure. */
int tool_client_new(const struct tool_http *h, const struct http_url *url,
		    const char *cmd, struct event_base **base,
		    struct http_client **client);
/* Free the client, then its loop; NULLs are fine. */
void tool_client_free(struct event_base *base, struct http_client *client);

/* "200 OK in 3.1 ms: first line of the body" or the failure's detail. */
void tool_print_outcome(FILE *out, const struct http_result *r);
/* The body's first line, escaped for display, at most ~200 bytes;
 * "" for an empty body. */
void tool_first_line(char *out, size_t size, const struct http_result *r);
/* -v: the request head ("> ") and the response head ("< "). */
void tool_print_heads(FILE *out, const struct http_result *r);
/* The exact bytes of a request, head and body (--dry-run). */
void tool_print_request(FILE *out, const struct http_request *req);

#endif /* WHR_TOOLS_TOOL_COMMON_H */
