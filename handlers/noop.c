/*
 * The no-op handler: accepts every notification. It measures the
 * framework's own cost in the benchmark.
 */
#include "builtin.h"

#include <errno.h>

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	return WHR_DONE;
}

int
noop_handler_add(struct whr_receiver *r, const char *args,
		 const struct builtin_settings *settings)
{
	struct whr_handler h = {
		.name = "noop",
		.action = "*",
		.fn = on_any,
	};

	if (args != NULL) {
		whr_log(WHR_LOG_ERROR, "handler noop takes no arguments");
		return -EINVAL;
	}
	return whr_receiver_add_handler(r, &h);
}
