/*
 * The table of built-in handlers: `--handler NAME` or `--handler
 * NAME:ARGS`.
 */
#include "builtin.h"

#include <errno.h>
#include <string.h>

#include "enrollments/enrollments.h"
#include "exec/exec.h"
#include "jsonl/jsonl.h"

struct builtin {
	const char *name;
	const char *usage;
	int (*add)(struct whr_receiver *r, const char *args,
		   const struct builtin_settings *settings);
};

static int
add_enrollments(struct whr_receiver *r, const char *args,
		const struct builtin_settings *settings)
{
	return enrollments_handler_add(r, args);
}

static int
add_jsonl(struct whr_receiver *r, const char *args,
	  const struct builtin_settings *settings)
{
	return jsonl_handler_add(r, args);
}

static int
add_exec(struct whr_receiver *r, const char *args,
	 const struct builtin_settings *settings)
{
	if (settings == NULL)
		return exec_handler_add(r, args, BUILTIN_EXEC_TIMEOUT_DEFAULT,
					BUILTIN_EXEC_MAX_RUNNING_DEFAULT);
	return exec_handler_add(r, args, settings->exec_timeout_s,
				settings->exec_max_running);
}

static const struct builtin builtins[] = {
	{ "enrollments", "the enrollment tracker: courses, learners and "
			 "enrollments in the inbox database, exactly once (on by "
			 "default; see whr enrollments)", add_enrollments },
	{ "jsonl:PATH", "append one JSON object per notification to PATH "
			"(- for standard output); reopened on SIGHUP",
	  add_jsonl },
	{ "exec:ACTION=COMMAND", "run COMMAND (no shell) per notification of "
				 "ACTION (* for all), its JSON on standard "
				 "input; exit 0 done, 75 retry, else reject",
	  add_exec },
	{ "noop", "accept every notification and do nothing (benchmarks, "
		  "smoke tests)", noop_handler_add },
	{ "log", "log one line per notification (Action, delivery, index; "
		 "its JSON too at --log-level debug)", log_handler_add },
};

int
builtin_handler_add(struct whr_receiver *r, const char *spec,
		    const struct builtin_settings *settings)
{
	size_t name_len = strcspn(spec, ":");
	const char *args = spec[name_len] == ':' ? spec + name_len + 1 : NULL;
	size_t i;

	for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		/* The table's name may show its arguments ("jsonl:PATH"). */
		size_t len = strcspn(builtins[i].name, ":");

		if (len == name_len &&
		    strncmp(builtins[i].name, spec, name_len) == 0)
			return builtins[i].add(r, args, settings);
	}
	whr_log(WHR_LOG_ERROR, "unknown handler '%.*s' (see whr serve --help)",
		(int)(name_len > 64 ? 64 : name_len), spec);
	return -ENOENT;
}

int
builtin_add_for_every_action(struct whr_receiver *r, const char *name,
			     whr_handler_fn fn, const char *args)
{
	struct whr_handler h = {
		.name = name,
		.action = "*",
		.fn = fn,
	};

	if (args != NULL) {
		whr_log(WHR_LOG_ERROR, "handler %s takes no arguments", name);
		return -EINVAL;
	}
	return whr_receiver_add_handler(r, &h);
}

void
builtin_handler_print_usage(FILE *out)
{
	size_t i;

	for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		fprintf(out, "  --handler %s\n        %s\n", builtins[i].name,
			builtins[i].usage);
}
