/*
 * The receiver's settings: one table of named options (config.c) shared
 * by whr_receiver_set(), the command line and the environment, and the
 * one place their defaults are resolved.
 */
#ifndef WHR_RECEIVER_CONFIG_H
#define WHR_RECEIVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <whr/log.h>

#include "netaddr.h"
#include "secrets.h"

struct config {
	char **listen;			/* "HOST:PORT", "[V6]:PORT" */
	size_t n_listen;
	bool listen_default;		/* set by config_resolve(): the
					 * first address given replaces it */
	char *data_dir;
	char *database;			/* a PostgreSQL URL, maybe with its
					 * password (wiped when freed);
					 * NULL: SQLite in data_dir */
	char *database_file;		/* where it was read from */
	bool pgpassword;		/* PGPASSWORD was set (and wiped) */
	size_t max_body;
	size_t max_header_size;
	size_t max_body_memory;		/* bodies in flight, all together */
	size_t min_body_rate;		/* bytes a second; 0: none */
	int64_t header_timeout_us;
	int64_t read_timeout_us;
	int64_t write_timeout_us;
	int64_t idle_timeout_us;
	int64_t shutdown_timeout_us;
	unsigned max_connections;
	unsigned max_connections_per_client;
	unsigned max_notifications;	/* in one delivery */
	struct cidr *trusted_proxies;	/* --trusted-proxy */
	size_t n_trusted_proxies;
	char *admin_listen;		/* /metrics and health there only;
					 * NULL: on the listen addresses */
	double rate_limit;		/* failures a second per client;
					 * 0: no limit */
	unsigned rate_limit_burst;	/* 0: config_rate_limit_burst()'s */

	/* The inbox and its workers. */
	unsigned workers;		/* 0 until config_resolve(): one
					 * per core */
	int64_t retry_delay_us;
	int64_t retry_max_delay_us;
	int64_t retry_max_age_us;
	int64_t handler_timeout_us;
	int64_t retain_us;
	unsigned work_window;		/* open notifications in memory */

	/* Secrets: a file, when given, replaces the variable. */
	struct secret_list secrets;		/* from the variable */
	struct secret_list secrets_from_file;
	char *secrets_file;
	struct secret_list previous;
	struct secret_list previous_from_file;
	char *previous_file;
};

/* Every option at the default its table row states. */
void config_init(struct config *c);
void config_finish(struct config *c);

/* Fill in the defaults that are no value of their own, as a run starts:
 * the listen address when none was given, one worker per core. The data
 * folder is the store's to resolve. 0 or -ENOMEM. */
int config_resolve(struct config *c);

/* The burst of --rate-limit: --rate-limit-burst, or by default five
 * seconds' worth of the rate, and at least 5. */
unsigned config_rate_limit_burst(const struct config *c);

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

#endif /* WHR_RECEIVER_CONFIG_H */
