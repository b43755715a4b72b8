/*
 * The receiver object's insides, shared by receiver.c (life cycle), the
 * front (HTTP) and webhook.c (per-request logic).
 */
#ifndef WHR_RECEIVER_PRIVATE_H
#define WHR_RECEIVER_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>

#include <whr/receiver.h>

#include "config-private.h"
#include "handler-private.h"
#include "secrets-private.h"

struct event;
struct event_base;
struct front;

struct whr_receiver {
	struct config config;
	struct handler_registry handlers;
	/* room to select handlers for one notification (handlers.n) */
	const struct handler_entry **handler_scratch;

	/* Set while whr_receiver_run() runs. */
	struct secret_store *secrets;
	struct event_base *base;
	struct front *front;
	struct event *stop_event;	/* whr_receiver_stop(), any thread */
	struct event *sigint_event;
	struct event *sigterm_event;
	struct event *drain_timer;	/* graceful shutdown progress */
	int64_t drain_deadline_us;
	bool running;
	bool stopping;

	/* Guards base and stop_requested against whr_receiver_stop(). */
	pthread_mutex_t stop_lock;
	bool stop_requested;
};

#endif /* WHR_RECEIVER_PRIVATE_H */
