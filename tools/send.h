/*
 * whr send: its options (send-options.c, send-notes.c) and the run
 * (send.c).
 */
#ifndef WHR_TOOLS_SEND_H
#define WHR_TOOLS_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/delivery.h"
#include "tool-common.h"

struct send_options {
	struct tool_http http;
	const char *url;
	char **notes;			/* the notifications (JSON) */
	size_t n_notes;
	char *properties;		/* a JSON object; NULL: {} */
	const char *id;			/* NULL: random, per delivery */
	const char *file;		/* --file: the body as it is */
	char *file_body;
	size_t file_len;
	enum json_style style;
	long attempts;
	int64_t *delays;		/* before retry 1, 2...; the last
					 * repeats */
	size_t n_delays;
	long count;
	long concurrency;
	bool expect_continue;
	bool dry_run;

	/* while parsing */
	const char *last_action;	/* the last note came from
					 * --action: its Action */
	bool last_changed;		/* --data or --set followed it */
	bool compact;
	const char *line_ends;
};

/* Parse `whr send` arguments. 0; 1 when --help was printed; -EINVAL
 * after a message on stderr. send_options_finish() in every case. */
int send_options_parse(struct send_options *o, int argc, char **argv);
void send_options_finish(struct send_options *o);

/* send-notes.c: the options that build the notifications. Each returns
 * 0, or -EINVAL (-ENOMEM) after a message on stderr. */
int send_add_sample(struct send_options *o, const char *action);
int send_add_action(struct send_options *o, const char *action);
int send_set_data(struct send_options *o, const char *data);
/* --set PATH=TEXT (@p json false) or --set-json PATH=JSON */
int send_set_member(struct send_options *o, const char *spec, bool json);
/* @p text made compact (malloc'd) when it is one JSON value (an object
 * when @p object); else NULL after saying why, naming it @p what. */
char *send_json_compact(const char *text, bool object, const char *what);

/* The wait before retry number @p retry (1 for the second attempt). */
int64_t send_retry_delay(const struct send_options *o, long retry);

#endif /* WHR_TOOLS_SEND_H */
