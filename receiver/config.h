/*
 * The receiver's settings: one table of named options shared by
 * whr_receiver_set(), the command line and the environment.
 */
#ifndef WHR_RECEIVER_CONFIG_H
#define WHR_RECEIVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <whr/log.h>

#include "secrets.h"

#define CONFIG_DEFAULT_LISTEN "127.0.0.1:8080"
#define CONFIG_DEFAULT_WORK_WINDOW 10000

struct config {
	char **listen;			/* "HOST:PORT", "[V6]:PORT" */
	size_t n_listen;
	char *data_dir;
	size_t max_body;
	size_t max_header_size;
	int64_t read_timeout_us;
	int64_t idle_timeout_us;
	int64_t shutdown_timeout_us;
	unsigned max_connections;

	/* The inbox and its workers. */
	unsigned workers;		/* 0: one per core */
	int64_t retry_delay_us;
	int64_t retry_max_delay_us;
	int64_t retry_max_age_us;
	int64_t handler_timeout_us;
	int64_t retain_us;
	size_t work_window;		/* open notifications in memory */

	/* Secrets: a file, when given, replaces the variable. */
	struct secret_list secrets;		/* from the variable */
	struct secret_list secrets_from_file;
	char *secrets_file;
	struct secret_list previous;
	struct secret_list previous_from_file;
	char *previous_file;
};

void config_init(struct config *c);
void config_finish(struct config *c);

/* Set one option by name; @p origin says where the value came from, for
 * messages ("--max-body", "WHR_MAX_BODY"). 0, -ENOENT or -EINVAL. */
int config_set(struct config *c, const char *name, const char *value,
	       const char *origin);

/* Environment first, then flags; see whr_receiver_configure(). */
int config_from_environment(struct config *c);
int config_from_arguments(struct config *c, int argc, char **argv);

/* The secrets in effect after the file-or-variable rule; with their
 * sources' names for messages. */
const struct secret_list *config_secrets(const struct config *c,
					 const char **source);
const struct secret_list *config_previous(const struct config *c,
					  const char **source);

/* Write the option reference (flags, variables, defaults) to @p out. */
void config_print_usage(FILE *out);

/* Parsers shared with the whr command: "1MiB", "30s". */
int parse_size(const char *s, size_t *out);
int parse_duration_us(const char *s, int64_t *out);

#endif /* WHR_RECEIVER_CONFIG_H */
