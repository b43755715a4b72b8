/*
 * The handlers built into the whr command, chosen with `--handler SPEC`:
 * their table (builtin.c), the two small ones (noop.c, log-events.c), and
 * the modules of the others, each in a folder with its header
 * (enrollments/, jsonl/, exec/), registered through it.
 */
#ifndef WHR_HANDLERS_BUILTIN_H
#define WHR_HANDLERS_BUILTIN_H

#include <stdio.h>

#include <whr/whr.h>

/* Settings of the built-in handlers, from whr serve's own options. */
struct builtin_settings {
	double exec_timeout_s;		/* --exec-timeout: a command's limit */
	unsigned int exec_max_running;	/* --exec-max-running */
};

#define BUILTIN_EXEC_TIMEOUT_DEFAULT 60.0
#define BUILTIN_EXEC_MAX_RUNNING_DEFAULT 4

/* Register the built-in handler named by @p spec ("noop", "log",
 * "jsonl:PATH", "exec:ACTION=COMMAND", "enrollments"). Returns 0, -ENOENT
 * for an unknown name (logged), or another negative errno (logged). */
int builtin_handler_add(struct whr_receiver *r, const char *spec,
			const struct builtin_settings *settings);

/* One line per built-in handler, for --help. */
void builtin_handler_print_usage(FILE *out);

/* The small handlers' registration, one per file. @p args is what
 * follows "NAME:" in the spec, or NULL. */
int noop_handler_add(struct whr_receiver *r, const char *args,
		     const struct builtin_settings *settings);
int log_handler_add(struct whr_receiver *r, const char *args,
		    const struct builtin_settings *settings);

/* Register @p fn as handler @p name for every Action: the small handlers,
 * which take no arguments (@p args not NULL: -EINVAL, logged). */
int builtin_add_for_every_action(struct whr_receiver *r, const char *name,
				 whr_handler_fn fn, const char *args);

#endif /* WHR_HANDLERS_BUILTIN_H */
