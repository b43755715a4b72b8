/*
 * Calling handlers for one notification. Until the durable inbox exists
 * this runs on the event loop before the reply; the same function will
 * run on worker threads once it does.
 */
#include "dispatch-private.h"

#include <stdlib.h>

#include "log-private.h"
#include "whr-private.h"

static void
log_result(const struct handler_entry *h, const struct whr_event *ev,
	   enum whr_result result)
{
	const char *reason = event_reason(ev);
	struct log_field fields[] = {
		LOG_STR("handler", h->name),
		LOG_STR("receiver", whr_event_receiver_id(ev)),
		LOG_STR("delivery", whr_event_delivery_id(ev)),
		LOG_INT("attempt", whr_event_attempt(ev)),
		LOG_STR("action", whr_event_action(ev)),
		LOG_INT("index", (int64_t)whr_event_index(ev)),
		LOG_STR("result", handler_result_name(result)),
		LOG_STR("reason", reason),
	};

	log_fields(result == WHR_DONE ? WHR_LOG_DEBUG : WHR_LOG_WARN,
		   "handler finished", fields, ARRAY_LENGTH(fields));
}

void
dispatch_event(const struct handler_registry *reg,
	       const struct handler_entry **scratch, struct whr_event *ev,
	       struct dispatch_outcome *out)
{
	size_t n = handler_registry_select(reg, whr_event_action(ev), scratch,
					   reg->n);
	size_t i;

	for (i = 0; i < n; i++) {
		const struct handler_entry *h = scratch[i];
		enum whr_result result;

		free(ev->reason);
		ev->reason = NULL;
		result = h->fn(ev, h->userdata);
		if (result != WHR_DONE && result != WHR_RETRY &&
		    result != WHR_REJECT) {
			whr_event_set_reason(ev,
					     "BUG: handler returned %d, not a whr_result",
					     (int)result);
			result = WHR_REJECT;
		}
		log_result(h, ev, result);
		out->handlers++;
		if (result == WHR_RETRY)
			out->retry++;
		else if (result == WHR_REJECT)
			out->reject++;
	}
}
