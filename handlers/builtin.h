/*
 * The handlers built into the whr command, chosen with `--handler SPEC`.
 */
#ifndef WHR_HANDLERS_BUILTIN_H
#define WHR_HANDLERS_BUILTIN_H

#include <stdio.h>

#include <whr/whr.h>

/* Register the built-in handler named by @p spec ("noop", "log").
 * Returns 0, -ENOENT for an unknown name (logged), or another negative
 * errno. */
int builtin_handler_add(struct whr_receiver *r, const char *spec);

/* One line per built-in handler, for --help. */
void builtin_handler_print_usage(FILE *out);

/* Each handler's registration, one per file. */
int noop_handler_add(struct whr_receiver *r, const char *args);
int log_handler_add(struct whr_receiver *r, const char *args);

#endif /* WHR_HANDLERS_BUILTIN_H */
