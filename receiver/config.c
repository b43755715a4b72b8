/*
 * Receiver settings. Every option is a row of one table
 * (config-options.c): its name (the key for whr_receiver_set() and the
 * flag --name), its environment variable, its default and its parser.
 * Here: the defaults, and settings read from the environment, the
 * command line and whr_receiver_set(); an unknown name is an error.
 */
#include "config-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


#include "log.h"
#include "util.h"

void
config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_body = 1024 * 1024;
	c->max_header_size = 16 * 1024;
	c->read_timeout_us = 30 * 1000000LL;
	c->idle_timeout_us = 60 * 1000000LL;
	c->shutdown_timeout_us = 10 * 1000000LL;
	c->max_connections = 1000;
	c->retry_delay_us = 1000000LL;
	c->retry_max_delay_us = 3600 * 1000000LL;
	c->retry_max_age_us = DAY_US;
	c->handler_timeout_us = 60 * 1000000LL;
	c->retain_us = 7 * DAY_US;
	c->work_window = CONFIG_DEFAULT_WORK_WINDOW;
}

static void
clear_listen(struct config *c)
{
	size_t i;

	for (i = 0; i < c->n_listen; i++)
		free(c->listen[i]);
	free(c->listen);
	c->listen = NULL;
	c->n_listen = 0;
}

void
config_finish(struct config *c)
{
	clear_listen(c);
	free(c->data_dir);
	free(c->secrets_file);
	free(c->previous_file);
	secret_list_finish(&c->secrets);
	secret_list_finish(&c->secrets_from_file);
	secret_list_finish(&c->previous);
	secret_list_finish(&c->previous_from_file);
	memset(c, 0, sizeof(*c));
}

static const struct option_spec *
find_option(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < config_options_count; i++) {
		if (strlen(config_options[i].name) == len &&
		    memcmp(config_options[i].name, name, len) == 0)
			return &config_options[i];
	}
	return NULL;
}

int
config_set(struct config *c, const char *name, const char *value,
	   const char *origin)
{
	const struct option_spec *o = find_option(name, strlen(name));

	if (o == NULL) {
		whr_log(WHR_LOG_ERROR, "unknown setting '%.64s'", name);
		return -ENOENT;
	}
	return o->parse(c, o, value, origin != NULL ? origin : o->name);
}

int
config_from_environment(struct config *c)
{
	size_t i;

	for (i = 0; i < config_options_count; i++) {
		const char *value;
		int rc;

		if (config_options[i].env == NULL)
			continue;
		value = getenv(config_options[i].env);
		if (value == NULL)
			continue;
		/* An empty variable counts as unset, as in most shells' use. */
		if (*value == '\0')
			continue;
		if (config_options[i].parse == config_parse_listen)
			clear_listen(c);
		rc = config_options[i].parse(c, &config_options[i], value, config_options[i].env);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
config_from_arguments(struct config *c, int argc, char **argv)
{
	bool listen_seen = false;
	int i;

	for (i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const struct option_spec *o;
		const char *value;
		const char *eq;
		char origin[80];
		int rc;

		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			whr_log(WHR_LOG_ERROR,
				"unexpected argument '%.64s' (options start with --)",
				arg);
			return -EINVAL;
		}
		eq = strchr(arg, '=');
		o = find_option(arg + 2, eq != NULL ? (size_t)(eq - arg - 2)
						    : strlen(arg + 2));
		if (o == NULL || !o->flag) {
			whr_log(WHR_LOG_ERROR,
				o == NULL ? "unknown option '%.*s' (see --help)"
					  : "'%.*s' cannot be given on the command line; use its environment variable",
				(int)(eq != NULL ? eq - arg : 64), arg);
			return -EINVAL;
		}
		if (eq != NULL) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			whr_log(WHR_LOG_ERROR, "option --%s needs a value",
				o->name);
			return -EINVAL;
		}
		/* Flags replace the variable's list of addresses. */
		if (o->parse == config_parse_listen && !listen_seen) {
			clear_listen(c);
			listen_seen = true;
		}
		snprintf(origin, sizeof(origin), "--%s", o->name);
		rc = o->parse(c, o, value, origin);
		if (rc < 0)
			return rc;
	}
	return 0;
}

const struct secret_list *
config_secrets(const struct config *c, const char **source)
{
	if (c->secrets_file != NULL) {
		*source = c->secrets_file;
		return &c->secrets_from_file;
	}
	*source = "MS_WebHookReceiverSecret_Custom";
	return &c->secrets;
}

const struct secret_list *
config_previous(const struct config *c, const char **source)
{
	if (c->previous_file != NULL) {
		*source = c->previous_file;
		return &c->previous_from_file;
	}
	*source = "WHR_PREVIOUS_SECRETS";
	return &c->previous;
}

/* Print @p text wrapped to 78 columns, each line indented by @p indent. */
static void
print_wrapped(FILE *out, const char *text, int indent)
{
	const int width = 78 - indent;
	const char *s = text;

	while (*s != '\0') {
		int len = (int)strlen(s);
		int cut = len;

		if (len > width) {
			cut = width;
			while (cut > 0 && s[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = width;
		}
		fprintf(out, "%*s%.*s\n", indent, "", cut, s);
		s += cut;
		while (*s == ' ')
			s++;
	}
}

void
config_print_usage(FILE *out)
{
	size_t i;

	for (i = 0; i < config_options_count; i++) {
		const struct option_spec *o = &config_options[i];
		char line[256];

		if (o->flag)
			fprintf(out, "  --%s %s\n", o->name, o->metavar);
		else
			fprintf(out, "  (environment only) %s %s\n", o->env,
				o->metavar);
		print_wrapped(out, o->help, 8);
		if (o->flag && o->env != NULL)
			snprintf(line, sizeof(line),
				 "Default: %s. Environment: %s.",
				 o->default_text, o->env);
		else
			snprintf(line, sizeof(line), "Default: %s.",
				 o->default_text);
		print_wrapped(out, line, 8);
	}
}
