/*
 * The jsonl handler's line: one notification as one JSON object on one
 * line, ending with '\n'.
 */
#ifndef WHR_HANDLERS_JSONL_LINE_H
#define WHR_HANDLERS_JSONL_LINE_H

#include <stdbool.h>
#include <stddef.h>

#include <whr/whr.h>

/* A growing buffer; zeroed to start, its data freed with free(). */
struct jsonl_line {
	char *data;
	size_t len;
	size_t size;
	bool failed;		/* out of memory: data is incomplete */
};

/* Append the line for @p ev to @p b. On failure to allocate, sets
 * b->failed; the caller still frees b->data. */
void jsonl_line_build(struct jsonl_line *b, const struct whr_event *ev);

#endif /* WHR_HANDLERS_JSONL_LINE_H */
