/*
 * whr send: the notifications of a delivery, built as the options come:
 * --sample, --action with --data, then --set and --set-json on the last
 * one, in order.
 */
#include "send.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

char *
send_json_compact(const char *text, bool object, const char *what)
{
	char err[160];
	char *compact = json_reformat(text, strlen(text), JSON_STYLE_COMPACT,
				      NULL, err, sizeof(err));

	if (compact == NULL) {
		fprintf(stderr, "whr send: %s is not valid JSON: %s\n", what,
			err);
		return NULL;
	}
	if (object && compact[0] != '{') {
		fprintf(stderr, "whr send: %s must be a JSON object\n", what);
		free(compact);
		return NULL;
	}
	return compact;
}

/* Does the compact JSON object @p json have a member "Action"? */
static bool
has_action(const char *json)
{
	bool in_string = false;
	int depth = 0;
	const char *p;

	for (p = json; *p != '\0'; p++) {
		if (in_string) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				in_string = false;
		} else if (*p == '"') {
			/* a name: first in the object, or after a comma */
			if (depth == 1 && (p[-1] == '{' || p[-1] == ',') &&
			    strncmp(p, "\"Action\":", 9) == 0)
				return true;
			in_string = true;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			depth--;
		}
	}
	return false;
}

/* ---- notifications -------------------------------------------------- */

static int
add_note(struct send_options *o, char *json)
{
	char **grown;

	if (json == NULL) {
		fprintf(stderr, "whr send: out of memory\n");
		return -ENOMEM;
	}
	grown = realloc(o->notes, (o->n_notes + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(json);
		fprintf(stderr, "whr send: out of memory\n");
		return -ENOMEM;
	}
	o->notes = grown;
	o->notes[o->n_notes++] = json;
	o->last_changed = false;
	return 0;
}

int
send_add_sample(struct send_options *o, const char *action)
{
	bool none;
	const char *note = tool_sample(action, "send", &none);

	if (note != NULL) {
		o->last_action = NULL;
		return add_note(o, strdup(note));
	}
	if (none)
		fprintf(stderr, "whr send: this build has no built-in samples "
			"(use --action ACTION --data JSON)\n");
	return -EINVAL;
}

/* {"Action":A, and the members of the compact object @p data} */
static char *
action_note(const char *action, const char *data)
{
	char *quoted = json_quote(action);
	size_t len = data != NULL ? strlen(data) - 2 : 0;
	char *note = NULL;

	if (quoted == NULL)
		return NULL;
	if (asprintf(&note, "{\"Action\":%s%s%.*s}", quoted,
		     len > 0 ? "," : "", (int)len,
		     data != NULL ? data + 1 : "") < 0)
		note = NULL;
	free(quoted);
	return note;
}

int
send_add_action(struct send_options *o, const char *action)
{
	char *quoted = json_quote(action);

	if (quoted == NULL) {
		fprintf(stderr, "whr send: --action: not UTF-8 text (or out "
			"of memory)\n");
		return -EINVAL;
	}
	free(quoted);
	o->last_action = action;
	return add_note(o, action_note(action, NULL));
}

int
send_set_data(struct send_options *o, const char *data)
{
	char *compact;
	char *note;

	if (o->n_notes == 0 || o->last_action == NULL || o->last_changed) {
		fprintf(stderr, "whr send: --data goes right after its "
			"--action (to change a sample, use --set)\n");
		return -EINVAL;
	}
	compact = send_json_compact(data, true, "--data");
	if (compact == NULL)
		return -EINVAL;
	if (has_action(compact)) {
		fprintf(stderr, "whr send: --data must not hold Action (it "
			"comes from --action)\n");
		free(compact);
		return -EINVAL;
	}
	note = action_note(o->last_action, compact);
	free(compact);
	if (note == NULL) {
		fprintf(stderr, "whr send: out of memory\n");
		return -ENOMEM;
	}
	free(o->notes[o->n_notes - 1]);
	o->notes[o->n_notes - 1] = note;
	o->last_changed = true;
	return 0;
}

int
send_set_member(struct send_options *o, const char *spec, bool json)
{
	const char *flag = json ? "--set-json" : "--set";
	const char *eq = strchr(spec, '=');
	char *path = NULL;
	char *value = NULL;
	char *note;
	char err[160];
	int rc = -EINVAL;

	if (o->n_notes == 0) {
		fprintf(stderr, "whr send: %s changes the notification given "
			"before it: put it after --sample or --action\n",
			flag);
		return -EINVAL;
	}
	if (eq == NULL || eq == spec) {
		fprintf(stderr, "whr send: %s wants PATH=%s, e.g. "
			"Course.Title=%s\n", flag, json ? "JSON" : "TEXT",
			json ? "'\"New\"'" : "New");
		return -EINVAL;
	}
	path = strndup(spec, (size_t)(eq - spec));
	value = json ? send_json_compact(eq + 1, false, "the --set-json value")
		     : json_quote(eq + 1);
	if (json && value == NULL)
		goto out;
	if (path == NULL || value == NULL) {
		fprintf(stderr, "whr send: %s\n", value == NULL && !json ?
			"--set: not UTF-8 text (or out of memory)" :
			"out of memory");
		goto out;
	}
	note = json_set_path(o->notes[o->n_notes - 1], path, value, err,
			     sizeof(err));
	if (note == NULL) {
		/* the reason starts with the path */
		fprintf(stderr, "whr send: %s: %s\n", flag, err);
		goto out;
	}
	free(o->notes[o->n_notes - 1]);
	o->notes[o->n_notes - 1] = note;
	o->last_changed = true;
	rc = 0;
out:
	free(path);
	free(value);
	return rc;
}

