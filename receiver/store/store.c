/*
 * The parts of the storage interface that are the same for every
 * database: where the store is, the names of work states, freeing work.
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

WHR_EXPORT const char *
whr_store_location(const char *given)
{
	const char *env = getenv("WHR_DATA_DIR");

	if (given != NULL && *given != '\0')
		return given;
	if (env != NULL && *env != '\0')
		return env;
	return STORE_DEFAULT_DIR;
}

static const char *const state_names[] = {
	[WORK_PENDING] = "pending",
	[WORK_RETRYING] = "retrying",
	[WORK_DONE] = "done",
	[WORK_DEAD] = "dead",
};

const char *
work_state_name(enum work_state state)
{
	return state <= WORK_DEAD ? state_names[state] : "unknown";
}

int
work_state_from_name(const char *name, enum work_state *state)
{
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(state_names); i++) {
		if (name != NULL && strcmp(name, state_names[i]) == 0) {
			*state = (enum work_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

void
store_work_free(struct store_work *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->n_outcomes; i++) {
		free(w->outcomes[i].handler);
		free(w->outcomes[i].reason);
	}
	free(w->outcomes);
	if (w->block != NULL) {
		free(w->block);
		free(w);
		return;
	}
	free(w->receiver_id);
	free(w->delivery_id);
	free(w->action);
	free(w->json);
	free(w->properties);
	for (i = 0; i < w->n_keys; i++)
		free(w->keys[i]);
	free(w->keys);
	free(w);
}
