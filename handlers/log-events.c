/*
 * The log handler: one line per notification, so that an operator can
 * watch events arrive before any other handler exists.
 */
#include "builtin.h"

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	const char *action = whr_event_action(ev);
	const char *delivery = whr_event_delivery_id(ev);

	whr_log(WHR_LOG_INFO,
		"event action=%s delivery=%s attempt=%lld index=%zu/%zu receiver=%s",
		action != NULL ? action : "(none)",
		delivery != NULL ? delivery : "(none)",
		(long long)whr_event_attempt(ev), whr_event_index(ev) + 1,
		whr_event_count(ev), whr_event_receiver_id(ev)[0] != '\0'
					     ? whr_event_receiver_id(ev)
					     : "(default)");
	if (whr_log_get_level() >= WHR_LOG_DEBUG)
		whr_log(WHR_LOG_DEBUG, "event json=%s",
			whr_event_json(ev, NULL));
	return WHR_DONE;
}

int
log_handler_add(struct whr_receiver *r, const char *args,
		const struct builtin_settings *settings)
{
	return builtin_add_for_every_action(r, "log", on_any, args);
}
