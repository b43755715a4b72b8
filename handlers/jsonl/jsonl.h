/*
 * The jsonl handler (`--handler jsonl:PATH`): one JSON object per
 * notification, one line each, appended to PATH ("-": standard output),
 * synced before the handler returns done, reopened on SIGHUP.
 *
 * jsonl.c  the handler, its registration and the file
 * line.c   the line
 */
#ifndef WHR_HANDLERS_JSONL_H
#define WHR_HANDLERS_JSONL_H

#include <stddef.h>

#include <whr/whr.h>

/* Register a jsonl handler named "jsonl:PATH" on @p r, @p args being
 * PATH. 0, or a negative errno (logged): -EINVAL for no PATH or a file
 * given twice, the -errno of a failed open. */
int jsonl_handler_add(struct whr_receiver *r, const char *args);

/* The line for @p ev, '\n' at its end, of @p len bytes; to free(). NULL
 * when memory is short. */
char *jsonl_line(const struct whr_event *ev, size_t *len);

#endif /* WHR_HANDLERS_JSONL_H */
