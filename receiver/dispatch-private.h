/*
 * Running the handlers of one notification and collecting their results.
 */
#ifndef WHR_DISPATCH_PRIVATE_H
#define WHR_DISPATCH_PRIVATE_H

#include "event-private.h"
#include "handler-private.h"

struct dispatch_outcome {
	size_t handlers;	/* how many were called */
	size_t retry;		/* how many asked to be called again */
	size_t reject;		/* how many rejected the notification */
};

/* Call the handlers selected for @p ev's Action, in order, each once.
 * @p scratch holds at least reg->n pointers. Results are logged (retry
 * and reject at warn, with the handler's reason) and counted into @p out. */
void dispatch_event(const struct handler_registry *reg,
		    const struct handler_entry **scratch,
		    struct whr_event *ev, struct dispatch_outcome *out);

#endif /* WHR_DISPATCH_PRIVATE_H */
