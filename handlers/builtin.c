/*
 * The table of built-in handlers: `--handler NAME` or `--handler
 * NAME:ARGS`.
 */
#include "builtin.h"

#include <errno.h>
#include <string.h>

struct builtin {
	const char *name;
	const char *usage;
	int (*add)(struct whr_receiver *r, const char *args);
};

static const struct builtin builtins[] = {
	{ "noop", "accept every notification and do nothing (benchmarks, "
		  "smoke tests)", noop_handler_add },
	{ "log", "log one line per notification (Action, delivery, index; "
		 "its JSON too at --log-level debug)", log_handler_add },
};

int
builtin_handler_add(struct whr_receiver *r, const char *spec)
{
	size_t name_len = strcspn(spec, ":");
	const char *args = spec[name_len] == ':' ? spec + name_len + 1 : NULL;
	size_t i;

	for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		if (strlen(builtins[i].name) == name_len &&
		    strncmp(builtins[i].name, spec, name_len) == 0)
			return builtins[i].add(r, args);
	}
	whr_log(WHR_LOG_ERROR, "unknown handler '%.*s' (see whr serve --help)",
		(int)(name_len > 64 ? 64 : name_len), spec);
	return -ENOENT;
}

void
builtin_handler_print_usage(FILE *out)
{
	size_t i;

	for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		fprintf(out, "  --handler %s\n        %s\n", builtins[i].name,
			builtins[i].usage);
}
