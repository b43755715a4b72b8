/*
 * whr serve: the stock receiver. Options of its own (--handler, --plugin,
 * --no-enrollments, the built-in handlers' settings) are taken here; every
 * other option is a receiver setting (whr_receiver_configure).
 *
 * Handlers are registered in the order given on the command line,
 * --handler and --plugin alike. The enrollment tracker comes first unless
 * --no-enrollments is given, or `--handler enrollments` puts it elsewhere.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <whr/whr.h>

#include "builtin.h"
#include "commands.h"
#include "plugin.h"
#include "tool-common.h"

static void
usage(void)
{
	printf("Usage: whr serve [OPTIONS]\n"
	       "\n"
	       "Receive signed webhook deliveries on\n"
	       "  /api/webhooks/incoming/custom[/{id}]\n"
	       "and hand each notification to the handlers.\n"
	       "\n"
	       "Handlers (repeatable; called in the order given; the enrollment\n"
	       "tracker first unless placed or turned off):\n");
	builtin_handler_print_usage(stdout);
	printf("  --plugin PATH.so\n"
	       "        load a plugin that registers its own handlers (see "
	       "docs/handlers.md)\n"
	       "  --no-enrollments\n"
	       "        do not run the enrollment tracker\n"
	       "\n"
	       "Settings of the built-in handlers:\n"
	       "  --exec-timeout SECONDS\n"
	       "        kill a command of an exec handler after this long "
	       "(retry) [%g]\n"
	       "  --exec-max-running N\n"
	       "        at most N commands of exec handlers at once [%d]\n"
	       "\n",
	       BUILTIN_EXEC_TIMEOUT_DEFAULT, BUILTIN_EXEC_MAX_RUNNING_DEFAULT);
}

/* One of our options: `--name VALUE`, `--name=VALUE` or a bare flag.
 * Sets *value and advances *i past it; NULL *value for a bare flag. */
static bool
take_option(int argc, char **argv, int *i, const char *name, bool has_value,
	    const char **value, bool *missing)
{
	size_t len = strlen(name);
	const char *arg = argv[*i];

	*missing = false;
	if (strncmp(arg, name, len) != 0)
		return false;
	if (arg[len] == '=' && has_value) {
		*value = arg + len + 1;
		return true;
	}
	if (arg[len] != '\0')
		return false;
	if (!has_value) {
		*value = NULL;
		return true;
	}
	if (*i + 1 >= argc) {
		*missing = true;
		return true;
	}
	*value = argv[++*i];
	return true;
}

static int
parse_seconds(const char *text, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(v > 0) ||
	    v > 86400.0)
		return -1;
	*out = v;
	return 0;
}

/* A count from 1 to 4096, with the leading blanks and '+' that
 * strtoul() took when whr serve read its counts with it: configurations
 * written then still start. */
static int
parse_count(const char *text, unsigned int *out)
{
	long v;

	while (isspace((unsigned char)*text))
		text++;
	if (*text == '+')
		text++;
	if (tool_parse_long(text, 1, 4096, &v) < 0)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

struct serve_options {
	struct builtin_settings settings;
	bool enrollments;	/* the default tracker */
};

/* First pass: the settings and --no-enrollments, wherever they are, so
 * that handlers given before them see them; they leave argv. Also notes
 * an explicit `--handler enrollments`. */
static int
take_settings(struct serve_options *o, int argc, char **argv)
{
	int kept = 0;
	int i;

	for (i = 0; i < argc; i++) {
		const char *value;
		bool missing;

		if (take_option(argc, argv, &i, "--exec-timeout", true, &value,
				&missing)) {
			if (missing || parse_seconds(value,
					&o->settings.exec_timeout_s) < 0) {
				fprintf(stderr, "whr serve: --exec-timeout needs "
						"seconds, more than 0 and at "
						"most 86400\n");
				return -1;
			}
		} else if (take_option(argc, argv, &i, "--exec-max-running",
				       true, &value, &missing)) {
			if (missing || parse_count(value,
					&o->settings.exec_max_running) < 0) {
				fprintf(stderr, "whr serve: --exec-max-running "
						"needs a count from 1 to 4096\n");
				return -1;
			}
		} else if (take_option(argc, argv, &i, "--no-enrollments",
				       false, &value, &missing)) {
			o->enrollments = false;
		} else {
			if (strcmp(argv[i], "--handler=enrollments") == 0 ||
			    (strcmp(argv[i], "--handler") == 0 &&
			     i + 1 < argc &&
			     strcmp(argv[i + 1], "enrollments") == 0))
				o->enrollments = false;	/* placed by hand */
			argv[kept++] = argv[i];
		}
	}
	return kept;
}

/* Second pass: `--handler X` and `--plugin P`, registered in the order
 * given; the rest of argv is compacted for the receiver. Returns the
 * remaining count or -1. */
static int
take_handlers(struct whr_receiver *r, const struct serve_options *o,
	      int argc, char **argv)
{
	int kept = 0;
	int i;

	if (o->enrollments &&
	    builtin_handler_add(r, "enrollments", &o->settings) < 0)
		return -1;
	for (i = 0; i < argc; i++) {
		const char *value;
		bool missing;

		if (take_option(argc, argv, &i, "--handler", true, &value,
				&missing)) {
			if (missing) {
				fprintf(stderr,
					"whr serve: --handler needs a value\n");
				return -1;
			}
			if (builtin_handler_add(r, value, &o->settings) < 0)
				return -1;
		} else if (take_option(argc, argv, &i, "--plugin", true,
				       &value, &missing)) {
			if (missing) {
				fprintf(stderr,
					"whr serve: --plugin needs a path\n");
				return -1;
			}
			if (plugin_load(r, value) < 0)
				return -1;
		} else {
			argv[kept++] = argv[i];
		}
	}
	return kept;
}

int
cmd_serve(int argc, char **argv)
{
	struct serve_options o = {
		.settings = {
			.exec_timeout_s = BUILTIN_EXEC_TIMEOUT_DEFAULT,
			.exec_max_running = BUILTIN_EXEC_MAX_RUNNING_DEFAULT,
		},
		.enrollments = true,
	};
	struct whr_receiver *r;
	int status = 0;
	int rest;
	int rc = 0;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage();
			break;
		}
	}
	/* The secrets live in this process's memory: no other process of
	 * the same user (an exec handler's command) may read it through
	 * ptrace or /proc/PID/mem, and no core file holds it. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fprintf(stderr, "whr serve: cannot make the process "
			"undumpable: %s\n", strerror(errno));
	r = whr_receiver_new();
	if (r == NULL) {
		fprintf(stderr, "whr serve: out of memory\n");
		return 1;
	}
	if (i < argc) {
		rest = argc;	/* --help: the receiver prints the rest */
	} else {
		rest = take_settings(&o, argc, argv);
		if (rest >= 0)
			rest = take_handlers(r, &o, rest, argv);
	}
	if (rest < 0) {
		status = EXIT_USAGE;
		goto out;
	}
	rc = whr_receiver_configure(r, rest, argv);
	if (rc == 1)
		goto out;
	if (rc < 0) {
		status = EXIT_USAGE;
		goto out;
	}
	rc = whr_receiver_run(r);
	/* A missing or bad setting found at start is a configuration error;
	 * anything else (a port in use) a failure. */
	if (rc == -EINVAL)
		status = EXIT_USAGE;
	else if (rc < 0)
		status = 1;
out:
	whr_receiver_free(r);
	/* -EBUSY: handlers are still running (logged). The receiver keeps
	 * their state, and their code must stay mapped until the process
	 * exits, which it does now. */
	if (rc != -EBUSY)
		plugin_unload_all();
	return status;
}
