/*
 * What config.c (settings from the environment, the command line and
 * whr_receiver_set()) and config-options.c (the option table and its
 * parsers) share.
 */
#ifndef WHR_RECEIVER_CONFIG_INTERNAL_H
#define WHR_RECEIVER_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define DAY_US ((int64_t)24 * 3600 * 1000000)

struct option_spec {
	const char *name;
	const char *env;	/* NULL: no variable */
	bool flag;		/* accepted on the command line */
	const char *metavar;	/* the value's name in --help */
	const char *default_text;
	const char *help;
	int (*parse)(struct config *c, const struct option_spec *o,
		     const char *value, const char *origin);
};

extern const struct option_spec config_options[];
extern const size_t config_options_count;

/* The parser of --listen: the first --listen replaces the default. */
int config_parse_listen(struct config *c, const struct option_spec *o,
			const char *value, const char *origin);

#endif /* WHR_RECEIVER_CONFIG_INTERNAL_H */
