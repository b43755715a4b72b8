/*
 * The no-op handler: accepts every notification. It measures the
 * framework's own cost in the benchmark.
 */
#include "builtin.h"

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	return WHR_DONE;
}

int
noop_handler_add(struct whr_receiver *r, const char *args,
		 const struct builtin_settings *settings)
{
	return builtin_add_for_every_action(r, "noop", on_any, args);
}
