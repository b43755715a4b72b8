/*
 * The receiver object's insides, shared by receiver.c (life cycle), the
 * front (HTTP) and webhook.c (per-request logic).
 */
#ifndef WHR_RECEIVER_RECEIVER_H
#define WHR_RECEIVER_RECEIVER_H

#include <stdbool.h>

#include <whr/receiver.h>

#include "config.h"
#include "handler.h"
#include "secrets.h"

struct event;
struct event_base;
struct front;
struct inbox;

/* A SIGHUP callback (whr_receiver_on_hangup). */
struct hangup_hook {
	void (*fn)(void *userdata);
	void *userdata;
};

/* A callback at the start of a stop (whr_receiver_on_stop). */
struct stop_hook {
	void (*fn)(int64_t grace_us, void *userdata);
	void *userdata;
};

struct whr_receiver {
	struct config config;
	struct handler_registry handlers;
	struct hangup_hook *hangup_hooks;	/* whr_receiver_on_hangup() */
	size_t n_hangup_hooks;
	struct stop_hook *stop_hooks;		/* whr_receiver_on_stop() */
	size_t n_stop_hooks;

	/* Set while whr_receiver_run() runs. */
	struct secret_store *secrets;
	struct event_base *base;
	struct front *front;
	struct inbox *inbox;
	struct event *stop_event;	/* reads stop_fd */
	struct event *sigint_event;
	struct event *sigterm_event;
	struct event *sighup_event;	/* caught while running */
	struct event *drain_timer;	/* graceful shutdown progress */
	int64_t drain_deadline_us;
	bool running;
	bool stopping;

	/* An eventfd: whr_receiver_stop() adds to it, from any thread or a
	 * signal handler; the loop reads it. */
	int stop_fd;
};

#endif /* WHR_RECEIVER_RECEIVER_H */
