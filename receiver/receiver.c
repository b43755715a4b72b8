/*
 * The public receiver object: settings, handlers, and the run loop with
 * its graceful shutdown. struct whr_receiver is this file's own: the
 * front and the webhook logic get what they need passed in.
 */
#include <whr/receiver.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include <whr/version.h>

#include "config.h"
#include "front/front.h"
#include "handler.h"
#include "inbox.h"
#include "store/store.h"
#include "log.h"
#include "metrics.h"
#include "secrets.h"
#include "util.h"

#define DRAIN_POLL_US 20000
#define RUNNING_NAMES_MAX 512
/* How often the secrets files are looked at (see watch_secrets()). */
#define SECRETS_POLL_S 1

/* An application's callback: on SIGHUP (whr_receiver_on_hangup) or at
 * the start of a stop (whr_receiver_on_stop); the other is NULL. */
struct hook {
	void (*hangup)(void *userdata);
	void (*stop)(int64_t grace_us, void *userdata);
	void *userdata;
};

/* What a file is now, through symbolic links: another file (a rename, a
 * swapped link), another size or another time is another stamp. A file
 * that cannot be reached has the stamp of its errno. */
struct file_stamp {
	int error;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

/* A secrets file, watched while running: its stamp when it was last
 * read (or tried), and when it was last looked at. */
struct watched_file {
	const char *path;		/* the config's */
	struct file_stamp read, seen;
};

struct whr_receiver {
	struct config config;
	struct handler_registry handlers;
	struct hook *hooks;		/* in the order they were added */
	size_t n_hooks;
	size_t n_hangup_hooks;

	/* Set while whr_receiver_run() runs. The front reads the secrets
	 * through this pointer, which a reload sets to a new store. */
	struct secret_store *secrets;
	struct watched_file watched[2];	/* the secrets files given */
	size_t n_watched;
	struct event *secrets_timer;	/* looks at them */
	struct event_base *base;
	struct front *front;
	struct inbox *inbox;
	/* What /metrics shows, counted by the front, the inbox and
	 * dispatch; kept with the inbox when handlers were left running. */
	struct metrics *metrics;
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

/* Receivers freed while some of their handlers were still running (see
 * whr_receiver_free()): kept whole, handlers, userdata and inbox, for as
 * long as the process lives, and reachable from here so that a leak
 * checker at exit does not report them. */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct whr_receiver **kept;
static size_t n_kept;

static void
keep_forever(struct whr_receiver *r)
{
	struct whr_receiver **grown;

	pthread_mutex_lock(&kept_lock);
	grown = realloc(kept, (n_kept + 1) * sizeof(*grown));
	if (grown != NULL) {
		kept = grown;
		kept[n_kept++] = r;
	}
	/* Out of memory: r is merely leaked unreachable, still never
	 * freed. */
	pthread_mutex_unlock(&kept_lock);
}

/* Whether handlers of an earlier run are still running: whr_receiver_run()
 * left the inbox behind for them (and returned -EBUSY). */
static bool
handlers_left_running(const struct whr_receiver *r)
{
	return !r->running && r->inbox != NULL;
}

WHR_EXPORT const char *
whr_version(void)
{
	return WHR_VERSION_STRING;
}

WHR_EXPORT struct whr_receiver *
whr_receiver_new(void)
{
	struct whr_receiver *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	/* whr_receiver_stop() writes here: safe from any thread and from a
	 * signal handler, and it needs no locking inside libevent. */
	r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->stop_fd < 0) {
		whr_log_errno(WHR_LOG_ERROR, "eventfd");
		free(r);
		return NULL;
	}
	config_init(&r->config);
	return r;
}

WHR_EXPORT void
whr_receiver_free(struct whr_receiver *r)
{
	if (r == NULL)
		return;
	if (r->running) {
		log_bug("whr_receiver_free() while the receiver runs");
		return;
	}
	if (handlers_left_running(r)) {
		/* A worker may still be in a handler, or about to call the
		 * next one of its run: destroying their userdata or freeing
		 * the registry would pull it from under them. */
		whr_log(WHR_LOG_WARN,
			"handlers are still running: the receiver is kept and "
			"its handlers' destroy callbacks are not called");
		keep_forever(r);
		return;
	}
	handler_registry_finish(&r->handlers);
	free(r->hooks);
	config_finish(&r->config);
	close(r->stop_fd);
	free(r);
}

WHR_EXPORT int
whr_receiver_set(struct whr_receiver *r, const char *key, const char *value)
{
	if (r == NULL || key == NULL || value == NULL) {
		log_bug("whr_receiver_set() needs a receiver, a key and a value");
		return -EINVAL;
	}
	if (r->running) {
		log_bug("settings cannot change while the receiver runs");
		return -EINVAL;
	}
	return config_set(&r->config, key, value, NULL);
}

WHR_EXPORT int
whr_receiver_configure(struct whr_receiver *r, int argc, char **argv)
{
	int i;
	int rc;

	if (r == NULL || argc < 0 || (argc > 0 && argv == NULL)) {
		log_bug("whr_receiver_configure() needs a receiver and arguments");
		return -EINVAL;
	}
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			printf("Options (each also a whr_receiver_set() key):\n");
			config_print_usage(stdout);
			return 1;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("whr %s\n", WHR_VERSION_STRING);
			return 1;
		}
	}
	rc = config_from_environment(&r->config);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EINVAL;
	rc = config_from_arguments(&r->config, argc, argv);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EINVAL;
	return 0;
}

WHR_EXPORT int
whr_receiver_add_handler(struct whr_receiver *r,
			 const struct whr_handler *handler)
{
	int rc;

	if (r == NULL || handler == NULL) {
		log_bug("whr_receiver_add_handler() needs a receiver and a handler");
		rc = -EINVAL;
		goto err;
	}
	if (r->running) {
		log_bug("handlers cannot be added while the receiver runs");
		rc = -EINVAL;
		goto err;
	}
	if (handlers_left_running(r)) {
		whr_log(WHR_LOG_ERROR,
			"cannot add a handler: handlers of the last run are "
			"still running");
		rc = -EBUSY;
		goto err;
	}
	rc = handler_registry_add(&r->handlers, handler);
	if (rc < 0)
		goto err;
	return 0;

err:
	if (handler != NULL && handler->destroy != NULL)
		handler->destroy(handler->userdata);
	return rc;
}

WHR_EXPORT int
whr_on(struct whr_receiver *r, const char *action, whr_handler_fn fn,
       void *userdata)
{
	struct whr_handler h = {
		.action = action,
		.fn = fn,
		.userdata = userdata,
	};

	return whr_receiver_add_handler(r, &h);
}

WHR_EXPORT int
whr_receiver_add_tx_setup(struct whr_receiver *r, const char *handler,
			  enum whr_db db, whr_tx_setup_fn setup)
{
	if (r == NULL) {
		log_bug("whr_receiver_add_tx_setup() needs a receiver");
		return -EINVAL;
	}
	if (r->running || handlers_left_running(r)) {
		log_bug("table setups cannot be added while the receiver runs");
		return -EINVAL;
	}
	return handler_registry_add_tx_setup(&r->handlers, handler, db,
					     setup);
}

/* ---- running --------------------------------------------------------- */

static void
on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct whr_receiver *r = arg;
	size_t busy = front_busy(r->front);

	if (busy == 0) {
		event_base_loopexit(r->base, NULL);
		return;
	}
	if (now_monotonic_us() >= r->drain_deadline_us) {
		whr_log(WHR_LOG_WARN,
			"shutdown-timeout reached with %zu request(s) in progress; closing them",
			busy);
		event_base_loopexit(r->base, NULL);
	}
}

/* The shutdown timeout starts, and the stop hooks hear of it: handlers
 * in progress (an exec command) end within it. */
static void
start_stopping(struct whr_receiver *r)
{
	size_t i;

	r->stopping = true;
	r->drain_deadline_us = now_monotonic_us() +
			       r->config.shutdown_timeout_us;
	for (i = 0; i < r->n_hooks; i++) {
		if (r->hooks[i].stop != NULL)
			r->hooks[i].stop(r->config.shutdown_timeout_us,
					 r->hooks[i].userdata);
	}
}

static void
begin_shutdown(struct whr_receiver *r, const char *why)
{
	struct timeval tick = { 0, DRAIN_POLL_US };

	if (r->stopping)
		return;
	/* First, so that the log line is true when it appears. */
	front_stop_accepting(r->front);
	whr_log(WHR_LOG_INFO,
		"%s: shutting down (no new connections; finishing requests in progress)",
		why);
	start_stopping(r);
	r->drain_timer = event_new(r->base, -1, EV_PERSIST, on_drain_tick, r);
	if (r->drain_timer == NULL || event_add(r->drain_timer, &tick) < 0)
		event_base_loopexit(r->base, NULL);
	else
		on_drain_tick(-1, 0, r);
}

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	uint64_t count;

	if (read(fd, &count, sizeof(count)) == sizeof(count))
		begin_shutdown(arg, "stop requested");
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	begin_shutdown(arg, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- reloading the secrets ------------------------------------------ */

static void
file_stamp(const char *path, struct file_stamp *out)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st) < 0) {
		out->error = errno;
		return;
	}
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	out->size = st.st_size;
	out->mtime = st.st_mtim;
	out->ctime = st.st_ctim;
}

static bool
file_stamp_equal(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->error == b->error && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Read the secrets files again, current and previous together, and put
 * the new keys in place of the old: all or nothing. The variables' lists
 * were read once, at start-up, and stay. A set that cannot be used (a
 * file unreadable, a bad entry, no secret, a previous secret's id
 * without a current one) is refused in one line that says why, and the
 * keys in use stay.
 *
 * All of it runs on the event loop's thread, between two callbacks: a
 * request is verified in one step, with the keys in place at that
 * moment, and nothing keeps a pointer into the old store once its
 * request is verified (a stored delivery has its own copy of its id),
 * so the old store is freed at once. Connections are not touched. */
static void
reload_secrets(struct whr_receiver *r, const char *why)
{
	struct config *c = &r->config;
	struct secret_list current = { 0 }, previous = { 0 };
	const struct secret_list *cur, *prev;
	const char *source, *previous_source;
	struct secret_store *store = NULL;
	char error[1024];
	size_t i;
	int rc = 0;

	/* Stamped before they are read: a change made while they are read
	 * is seen at the next look. */
	for (i = 0; i < r->n_watched; i++) {
		file_stamp(r->watched[i].path, &r->watched[i].read);
		r->watched[i].seen = r->watched[i].read;
	}
	log_capture(error, sizeof(error));
	if (c->secrets_file != NULL)
		rc = secret_list_load(c->secrets_file, false, &current);
	if (rc == 0 && c->previous_file != NULL)
		rc = secret_list_load(c->previous_file, true, &previous);
	if (rc == 0) {
		cur = config_secrets(c, &source);
		prev = config_previous(c, &previous_source);
		store = secret_store_new(c->secrets_file != NULL ? &current
								 : cur,
					 c->previous_file != NULL ? &previous
								  : prev,
					 previous_source);
	}
	log_capture(NULL, 0);
	if (store == NULL) {
		whr_log(WHR_LOG_ERROR,
			"secrets not reloaded (%s), the %zu receiver id(s) in "
			"use are kept: %s", why, secret_store_count(r->secrets),
			error[0] != '\0' ? error : "out of memory");
		secret_list_finish(&current);
		secret_list_finish(&previous);
		return;
	}
	secret_store_free(r->secrets);
	r->secrets = store;
	/* The lists in effect, for the next run. */
	if (c->secrets_file != NULL) {
		secret_list_finish(&c->secrets_from_file);
		c->secrets_from_file = current;
	}
	if (c->previous_file != NULL) {
		secret_list_finish(&c->previous_from_file);
		c->previous_from_file = previous;
	}
	whr_log(WHR_LOG_INFO,
		"secrets reloaded (%s): %zu receiver id(s), %zu with a "
		"previous secret", why, secret_store_count(store),
		secret_store_count_previous(store));
}

/*
 * A secrets file changes in place (a write), by rename (whr register, an
 * editor), or by a swapped symbolic link (Kubernetes' mounted secrets
 * swap a linked folder). Once a second, each file is stat()ed through
 * its links: any of these gives it another stamp. One look costs a
 * stat() per file; it also sees what a watch on the file's folder would
 * miss (a file bind-mounted into a container and changed on the host, a
 * network file system). A change is read once the file has kept its new
 * stamp for one look, so that a file being written in place is not read
 * half-written: a change is in effect within two seconds.
 */
static void
on_secrets_tick(evutil_socket_t fd, short what, void *arg)
{
	struct whr_receiver *r = arg;
	const char *changed = NULL;
	bool settling = false;
	char why[PATH_MAX + 16];
	size_t i;

	for (i = 0; i < r->n_watched; i++) {
		struct watched_file *w = &r->watched[i];
		struct file_stamp now;

		file_stamp(w->path, &now);
		if (!file_stamp_equal(&now, &w->seen)) {
			w->seen = now;
			settling = true;
		} else if (!file_stamp_equal(&now, &w->read) &&
			   changed == NULL) {
			changed = w->path;
		}
	}
	if (changed == NULL || settling)
		return;
	snprintf(why, sizeof(why), "%s changed", changed);
	reload_secrets(r, why);
}

/* The files to watch, stamped as the run starts: what config read a
 * moment before (a change in between is seen with the next change, or
 * SIGHUP). */
static int
watch_secrets(struct whr_receiver *r)
{
	const char *paths[] = { r->config.secrets_file,
				r->config.previous_file };
	struct timeval tick = { SECRETS_POLL_S, 0 };
	size_t i;

	r->n_watched = 0;
	for (i = 0; i < ARRAY_LENGTH(paths); i++) {
		struct watched_file *w = &r->watched[r->n_watched];

		if (paths[i] == NULL)
			continue;
		w->path = paths[i];
		file_stamp(w->path, &w->read);
		w->seen = w->read;
		r->n_watched++;
	}
	if (r->n_watched == 0)
		return 0;
	r->secrets_timer = event_new(r->base, -1, EV_PERSIST, on_secrets_tick,
				     r);
	if (r->secrets_timer == NULL ||
	    event_add(r->secrets_timer, &tick) < 0)
		return -ENOMEM;
	return 0;
}

/* SIGHUP: the secrets files are read again, then the callbacks run, in
 * registration order; never a shutdown. They cannot change while the
 * receiver runs. */
static void
on_hangup(evutil_socket_t sig, short what, void *arg)
{
	struct whr_receiver *r = arg;
	size_t i;

	if (r->n_watched > 0)
		reload_secrets(r, "SIGHUP");
	if (r->n_hangup_hooks == 0) {
		whr_log(WHR_LOG_INFO, "SIGHUP: nothing to reopen");
		return;
	}
	whr_log(WHR_LOG_INFO, "SIGHUP: reopening files");
	for (i = 0; i < r->n_hooks; i++) {
		if (r->hooks[i].hangup != NULL)
			r->hooks[i].hangup(r->hooks[i].userdata);
	}
}

WHR_EXPORT void
whr_receiver_stop(struct whr_receiver *r)
{
	uint64_t one = 1;
	ssize_t n;

	if (r == NULL)
		return;
	n = write(r->stop_fd, &one, sizeof(one));
	(void)n;	/* only fails when already signalled 2^64-2 times */
}

static int
build_secrets(struct whr_receiver *r)
{
	const char *source;
	const char *previous_source;
	const struct secret_list *current =
		config_secrets(&r->config, &source);
	const struct secret_list *previous =
		config_previous(&r->config, &previous_source);

	if (current->n == 0) {
		whr_log(WHR_LOG_ERROR,
			"no receiver secret is configured: set MS_WebHookReceiverSecret_Custom "
			"(32 to 128 characters, or id=secret entries) or give --secrets-file");
		return -EINVAL;
	}
	if (r->config.secrets_file != NULL && r->config.secrets.n > 0)
		whr_log(WHR_LOG_WARN,
			"MS_WebHookReceiverSecret_Custom is ignored: the secrets file %s replaces it",
			r->config.secrets_file);
	r->secrets = secret_store_new(current, previous, previous_source);
	return r->secrets != NULL ? 0 : -EINVAL;
}

/* The metrics of this run: the receiver ids with a secret as it starts
 * (a reload's new ids get their series when first seen), the handlers'
 * names and Actions. */
static int
start_metrics(struct whr_receiver *r)
{
	const char *source;
	const struct secret_list *secrets =
		config_secrets(&r->config, &source);
	const char **ids = calloc(secrets->n + 1, sizeof(*ids));
	size_t i;

	if (ids == NULL)
		return -ENOMEM;
	for (i = 0; i < secrets->n; i++)
		ids[i] = secrets->entries[i].id;
	r->metrics = metrics_new(&r->handlers, ids, secrets->n);
	free(ids);
	return r->metrics != NULL ? 0 : -ENOMEM;
}

static int
start_inbox(struct whr_receiver *r)
{
	const struct config *c = &r->config;
	struct inbox_config ic = {
		.location = c->database != NULL ? c->database
			    : whr_store_location(c->data_dir),
		.retain_us = c->retain_us,
	};
	struct dispatch_config dc = {
		.workers = c->workers,
		.retry = {
			.delay_us = c->retry_delay_us,
			.max_delay_us = c->retry_max_delay_us,
			.max_age_us = c->retry_max_age_us,
		},
		.handler_timeout_us = c->handler_timeout_us,
		.work_window = c->work_window,
		.metrics = r->metrics,
	};
	int rc;

	r->inbox = inbox_start(&ic, &dc, &r->handlers, r->base, &rc);
	return rc;
}

/* How long running handlers may still take: what is left of the
 * shutdown timeout that began with the stop (the same deadline as the
 * requests'), or all of it when none began (no inbox was started). */
static int64_t
handler_grace(const struct whr_receiver *r)
{
	int64_t left;

	if (!r->stopping)
		return r->config.shutdown_timeout_us;
	left = r->drain_deadline_us - now_monotonic_us();
	return left > 0 ? left : 0;
}

/* -EBUSY when handlers were left running: r->inbox then stays set (and
 * allocated) for them. */
static int
release_run_state(struct whr_receiver *r)
{
	char running[RUNNING_NAMES_MAX];
	int rc;

	if (r->stop_event != NULL)
		event_free(r->stop_event);
	r->stop_event = NULL;
	/* A run that failed after the inbox started (a port in use) began
	 * no shutdown: its handlers must stop within the timeout too. */
	if (!r->stopping && r->inbox != NULL)
		start_stopping(r);
	/* The inbox first: its last answers go out through the front. */
	rc = inbox_stop(r->inbox, handler_grace(r), running, sizeof(running));
	if (rc == -EBUSY)
		whr_log(WHR_LOG_ERROR,
			"stopped with handlers still running after the "
			"shutdown timeout: %s; they are left running (their "
			"notifications run again at the next start) and their "
			"destroy callbacks will not be called",
			running[0] != '\0' ? running : "(between handlers)");
	else
		r->inbox = NULL;
	front_free(r->front);
	r->front = NULL;
	/* Workers left running still count their runs. */
	if (rc != -EBUSY) {
		metrics_free(r->metrics);
		r->metrics = NULL;
	}
	if (r->sigint_event != NULL)
		event_free(r->sigint_event);
	if (r->sigterm_event != NULL)
		event_free(r->sigterm_event);
	if (r->drain_timer != NULL)
		event_free(r->drain_timer);
	if (r->secrets_timer != NULL)
		event_free(r->secrets_timer);
	r->sigint_event = r->sigterm_event = r->drain_timer = NULL;
	r->secrets_timer = NULL;
	r->n_watched = 0;
	/* Freeing the event puts back SIGHUP's previous disposition. */
	if (r->sighup_event != NULL)
		event_free(r->sighup_event);
	r->sighup_event = NULL;
	if (r->base != NULL)
		event_base_free(r->base);
	r->base = NULL;
	secret_store_free(r->secrets);
	r->secrets = NULL;
	r->stopping = false;
	r->running = false;
	return rc;
}

WHR_EXPORT int
whr_receiver_run(struct whr_receiver *r)
{
	struct sigaction ignore = { .sa_handler = SIG_IGN };
	struct sigaction old_pipe;
	int rc;

	if (r == NULL || r->running) {
		log_bug("whr_receiver_run() needs a receiver that is not running");
		return -EINVAL;
	}
	if (handlers_left_running(r)) {
		whr_log(WHR_LOG_ERROR,
			"cannot run: handlers of the last run are still running");
		return -EBUSY;
	}
	rc = config_resolve(&r->config);
	if (rc < 0)
		return rc;
	rc = build_secrets(r);
	if (rc < 0)
		return rc;
	r->running = true;

	r->base = event_base_new();
	if (r->base == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	r->sigint_event = evsignal_new(r->base, SIGINT, on_signal, r);
	r->sigterm_event = evsignal_new(r->base, SIGTERM, on_signal, r);
	/* SIGHUP is always caught while running, callbacks or not. */
	r->sighup_event = evsignal_new(r->base, SIGHUP, on_hangup, r);
	if (r->sigint_event == NULL || r->sigterm_event == NULL ||
	    r->sighup_event == NULL ||
	    event_add(r->sigint_event, NULL) < 0 ||
	    event_add(r->sigterm_event, NULL) < 0 ||
	    event_add(r->sighup_event, NULL) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	rc = start_metrics(r);
	if (rc < 0)
		goto out;
	rc = start_inbox(r);
	if (rc < 0)
		goto out;
	rc = watch_secrets(r);
	if (rc < 0)
		goto out;
	r->front = front_new(&r->config, r->base, r->inbox,
			     (const struct secret_store *const *)&r->secrets,
			     r->metrics);
	if (r->front == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = front_listen(r->front);
	if (rc < 0)
		goto out;

	/* A stop requested before the run ends it at once. */
	r->stop_event = event_new(r->base, r->stop_fd, EV_READ | EV_PERSIST,
				  on_stop, r);
	if (r->stop_event == NULL || event_add(r->stop_event, NULL) < 0) {
		rc = -ENOMEM;
		goto out;
	}

	sigaction(SIGPIPE, &ignore, &old_pipe);
	whr_log(WHR_LOG_INFO, "whr %s ready: %zu receiver id(s), %zu handler(s)",
		WHR_VERSION_STRING, secret_store_count(r->secrets),
		r->handlers.n);
	if (event_base_dispatch(r->base) < 0)
		rc = -EIO;
	sigaction(SIGPIPE, &old_pipe, NULL);

out:
	/* Handlers left running outweigh any other failure: the caller must
	 * then keep their code and data. */
	if (release_run_state(r) == -EBUSY)
		rc = -EBUSY;
	else if (rc == 0)
		whr_log(WHR_LOG_INFO, "stopped");
	return rc;
}

/* Add @p h, with a callback of the kind @p kind, for @p call: 0, -ENOMEM,
 * or -EINVAL after a "BUG:" line. */
static int
add_hook(struct whr_receiver *r, const char *call, const char *kind,
	 struct hook h)
{
	struct hook *grown;

	if (r == NULL || (h.hangup == NULL && h.stop == NULL)) {
		log_bug("%s() needs a receiver and a callback", call);
		return -EINVAL;
	}
	if (r->running) {
		log_bug("%s callbacks cannot be added while the receiver runs",
			kind);
		return -EINVAL;
	}
	grown = realloc(r->hooks, (r->n_hooks + 1) * sizeof(*grown));
	if (grown == NULL)
		return -ENOMEM;
	r->hooks = grown;
	r->hooks[r->n_hooks++] = h;
	r->n_hangup_hooks += h.hangup != NULL;
	return 0;
}

WHR_EXPORT int
whr_receiver_on_hangup(struct whr_receiver *r, void (*fn)(void *userdata),
		       void *userdata)
{
	return add_hook(r, "whr_receiver_on_hangup", "SIGHUP",
			(struct hook){ .hangup = fn, .userdata = userdata });
}

WHR_EXPORT int
whr_receiver_on_stop(struct whr_receiver *r,
		     void (*fn)(int64_t grace_us, void *userdata),
		     void *userdata)
{
	return add_hook(r, "whr_receiver_on_stop", "stop",
			(struct hook){ .stop = fn, .userdata = userdata });
}
