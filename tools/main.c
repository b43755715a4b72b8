/*
 * whr: the command. `whr serve` runs the receiver; send, probe and
 * verify are the tools to test an endpoint without the real sender.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <whr/whr.h>

#include "commands.h"

struct command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "serve", "receive webhooks (whr serve --help for its options)",
	  cmd_serve },
	{ "send", "send a signed delivery as the ASP.NET sender does",
	  cmd_send },
	{ "probe", "check a URL the way the sender checks it at registration",
	  cmd_probe },
	{ "verify", "check an ms-signature and say why it does not match",
	  cmd_verify },
	{ "inbox", "list, show and replay stored deliveries (whr inbox --help)",
	  cmd_inbox },
	{ "enrollments", "who enrolled in, started and completed which course "
			 "(whr enrollments --help)", cmd_enrollments },
	{ "healthcheck", "exit 0 when a running whr is ready (GET /readyz)",
	  cmd_healthcheck },
	{ "migrate", "move a data folder's inbox into PostgreSQL "
		     "(whr migrate --help)", cmd_migrate },
	{ "register", "subscribe to Learn365 events: create, list, rotate... "
		      "(whr register --help)", cmd_register },
};

static void
usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"whr %s: receive Learn365 / ASP.NET WebHooks deliveries\n"
		"\n"
		"Usage: whr COMMAND [OPTIONS]\n"
		"\n"
		"Commands:\n",
		whr_version());
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(out,
		"\n"
		"Options:\n"
		"  --help      show this help\n"
		"  --version   show the version\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage or configuration error.\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("whr %s\n", whr_version());
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 2, argv + 2);
	}
	fprintf(stderr, "whr: unknown command '%s' (see whr --help)\n",
		argv[1]);
	return EXIT_USAGE;
}
