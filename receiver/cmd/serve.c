/*
 * whr serve: the stock receiver. Options of its own (--handler) are taken
 * here; every other option is a receiver setting (whr_receiver_configure).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <whr/whr.h>

#include "builtin.h"
#include "commands.h"

static void
usage(void)
{
	printf("Usage: whr serve [OPTIONS]\n"
	       "\n"
	       "Receive signed webhook deliveries on\n"
	       "  /api/webhooks/incoming/custom[/{id}]\n"
	       "and hand each notification to the handlers.\n"
	       "\n"
	       "Handlers (repeatable; called in the order given):\n");
	builtin_handler_print_usage(stdout);
	printf("\n");
}

/* Pull out `--handler X` / `--handler=X`, registering each, and compact
 * the rest of argv for the receiver. Returns the remaining count or -1. */
static int
take_handlers(struct whr_receiver *r, int argc, char **argv)
{
	int kept = 0;
	int i;

	for (i = 0; i < argc; i++) {
		const char *spec = NULL;

		if (strcmp(argv[i], "--handler") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr,
					"whr serve: --handler needs a value\n");
				return -1;
			}
			spec = argv[++i];
		} else if (strncmp(argv[i], "--handler=", 10) == 0) {
			spec = argv[i] + 10;
		}
		if (spec == NULL) {
			argv[kept++] = argv[i];
			continue;
		}
		if (builtin_handler_add(r, spec) < 0)
			return -1;
	}
	return kept;
}

int
cmd_serve(int argc, char **argv)
{
	struct whr_receiver *r;
	int status = 0;
	int rest;
	int rc;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage();
			break;
		}
	}
	r = whr_receiver_new();
	if (r == NULL) {
		fprintf(stderr, "whr serve: out of memory\n");
		return 1;
	}
	rest = i < argc ? argc : take_handlers(r, argc, argv);
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
	return status;
}
