/*
 * whr: the receiver
 *
 * A receiver is the whole webhook server: it listens for HTTP, answers the
 * registration echo, verifies each delivery's signature, decodes it and
 * calls the handlers registered for its notifications. Create one, register
 * handlers, configure it and run it:
 *
 *	struct whr_receiver *r = whr_receiver_new();
 *	whr_on(r, "CourseCompleted", on_completed, NULL);
 *	if (whr_receiver_configure(r, argc, argv) == 0)
 *		rc = whr_receiver_run(r);
 *	whr_receiver_free(r);
 *
 * Settings have one name each, used in three places: the key for
 * whr_receiver_set() ("max-body"), the command-line flag ("--max-body"),
 * and, for most, an environment variable ("WHR_MAX_BODY"). The README's
 * configuration reference lists them all with their defaults.
 */
#ifndef WHR_RECEIVER_H
#define WHR_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

#include <whr/handler.h>

#ifdef __cplusplus
extern "C" {
#endif

struct whr_receiver;

/**
 * Create a receiver with every setting at its default and no handler.
 *
 * @return the receiver, to be freed with whr_receiver_free(); NULL when
 *         out of memory
 */
struct whr_receiver *whr_receiver_new(void);

/**
 * Free a receiver, its handlers (calling their destroy callbacks) and its
 * sockets. Not while whr_receiver_run() is running. NULL is a no-op.
 *
 * After whr_receiver_run() returned -EBUSY (handlers left running), it
 * frees nothing and calls no destroy callback: a handler still running,
 * or about to return, may use its userdata and the receiver's state for
 * as long as the process lives. It logs a warning and keeps the receiver
 * reachable (a leak checker at exit sees it as still reachable, not
 * lost). The caller should then exit soon, and must keep the handlers'
 * code loaded (no dlclose()) and their userdata valid.
 *
 * @param r the receiver, or NULL
 */
void whr_receiver_free(struct whr_receiver *r);

/**
 * Change one setting. Values are parsed and checked now; the error is
 * logged with the setting's name (never with a secret's value). Settings
 * that hold a list ("listen", "secrets") are replaced by each call except
 * "listen", which appends.
 *
 * @param r the receiver, not running
 * @param key a setting's name, e.g. "max-body"
 * @param value its value as text, e.g. "2MiB"; copied
 * @return 0 on success, -ENOENT for an unknown key, -EINVAL for a bad
 *         value or a running receiver, -ENOMEM
 */
int whr_receiver_set(struct whr_receiver *r, const char *key,
		     const char *value);

/**
 * Read the settings from the environment, then from the command line,
 * which wins. Flags take the forms `--name value` and `--name=value`.
 * `--help` prints the options to standard output and `--version` the
 * version; both then return 1 and the caller should exit with status 0.
 *
 * @param r the receiver, not running
 * @param argc number of arguments in @p argv
 * @param argv the arguments, without the program name
 * @return 0 on success, 1 after --help or --version, -EINVAL (logged) for
 *         an unknown flag or a bad value, -ENOMEM
 */
int whr_receiver_configure(struct whr_receiver *r, int argc, char **argv);

/**
 * Open the listening sockets, serve until whr_receiver_stop(), SIGINT or
 * SIGTERM, then shut down gracefully: stop accepting, let requests in
 * progress and handlers running finish, and return. The
 * "shutdown-timeout" setting bounds the whole shutdown: requests and
 * handlers share one deadline that starts with the stop.
 * SIGPIPE is ignored while it runs.
 *
 * Secrets given by file ("secrets-file", "previous-secrets-file") are
 * read again, both together, on SIGHUP and within two seconds of a
 * change of either file (written in place, replaced by a rename, or
 * reached through a link that now points elsewhere): the new keys verify
 * the requests that come after, connections stay open, and the line
 * "secrets reloaded (WHY): N receiver id(s), ..." is logged. A new set
 * that cannot be used (a file unreadable, a bad entry, no secret) is
 * refused in one error line that says why, and the keys in use stay.
 * Secrets from the environment are read once.
 *
 * A handler still running at the deadline cannot be stopped safely: it is
 * left running on its thread (never cancelled), no other handler is
 * started, its notification is not marked and runs again at the next
 * start, and an error naming it is logged ("stopped with handlers still
 * running after the shutdown timeout: NAME, ..."). The function then
 * returns -EBUSY, whatever else went wrong, and from then on the receiver
 * cannot run again nor take handlers (both fail with -EBUSY), and
 * whr_receiver_free() keeps it and calls no destroy callback. The caller
 * should exit the process without unloading any code a handler may run
 * (see whr serve: exit status 1, plugins left loaded).
 *
 * @param r the receiver
 * @return 0 after a clean stop; -EBUSY when handlers were left running
 *         (above); -EINVAL (logged) when the configuration is incomplete,
 *         e.g. no secret, or a transactional handler cannot run on the
 *         database given (its tables are set up for another database
 *         only); -EADDRINUSE or another negative errno when a socket
 *         cannot be opened
 */
int whr_receiver_run(struct whr_receiver *r);

/**
 * Ask the receiver to shut down gracefully. Safe to call from any thread,
 * including a handler, and from a signal handler; whr_receiver_run()
 * returns once it is done. Called before whr_receiver_run(), it makes the
 * next run stop as soon as it has started.
 *
 * @param r the receiver
 */
void whr_receiver_stop(struct whr_receiver *r);

/**
 * Call @p fn on the receiver's event-loop thread whenever the process gets
 * SIGHUP while whr_receiver_run() runs: the conventional "reopen your
 * files" after log rotation. Callbacks run in registration order; they
 * must be quick and must not block; they run after the secrets files
 * are read again (see whr_receiver_run()). SIGHUP is logged at info level
 * ("SIGHUP: reopening files", or "SIGHUP: nothing to reopen" without any
 * callback) and never ends the process while the receiver runs; outside
 * whr_receiver_run() its disposition is left as it was.
 *
 * The receiver keeps @p fn and @p userdata until whr_receiver_free(),
 * which does not free @p userdata: a handler that registers a callback
 * for its own state frees that state in its destroy callback.
 *
 * @param r the receiver, not yet running
 * @param fn the callback
 * @param userdata passed to @p fn
 * @return 0, -EINVAL when the receiver runs already, -ENOMEM
 */
int whr_receiver_on_hangup(struct whr_receiver *r, void (*fn)(void *userdata),
			   void *userdata);

/**
 * Call @p fn on the receiver's event-loop thread once, when a run begins
 * to stop (SIGINT, SIGTERM or whr_receiver_stop()), or when it fails
 * after its inbox had started handlers (a port in use): no handler then
 * outlives the run. A handler that keeps a stop state across runs must
 * clear it itself before the next one. From then on the
 * receiver takes no new connection, finishes the requests in progress,
 * and waits at most @p grace_us (the shutdown timeout) in all for the
 * handlers still running; one still running after that is left behind
 * (whr_receiver_run() returns -EBUSY). A handler that waits on something
 * slow (a child process, a remote call) can use the callback to cut the
 * wait short in time and return WHR_RETRY: its notification then runs
 * again at the next start. Callbacks run in registration order; they
 * must be quick and must not block.
 *
 * The receiver keeps @p fn and @p userdata until whr_receiver_free(),
 * which does not free @p userdata.
 *
 * @param r the receiver, not yet running
 * @param fn the callback; @p grace_us is the shutdown timeout
 * @param userdata passed to @p fn
 * @return 0, -EINVAL when the receiver runs already, -ENOMEM
 */
int whr_receiver_on_stop(struct whr_receiver *r,
			 void (*fn)(int64_t grace_us, void *userdata),
			 void *userdata);

/**
 * Read a size as the receiver's settings do ("max-body"), for a plugin
 * that reads settings of its own in the same syntax: decimal digits,
 * then optionally a unit, in any case: `B`, `K`/`KB`/`KiB`,
 * `M`/`MB`/`MiB`, `G`/`GB`/`GiB`, all binary ("16KiB" is 16384). No
 * sign, no spaces, no fraction.
 *
 * @param text the text, e.g. "1MiB"
 * @param bytes set to the number of bytes; left as it was on failure
 * @return 0 on success; -EINVAL when @p text is not such a size or the
 *         size does not fit in a size_t
 */
int whr_parse_size(const char *text, size_t *bytes);

/**
 * Read a duration as the receiver's settings do ("read-timeout"), for a
 * plugin that reads settings of its own in the same syntax: decimal
 * digits, then optionally a unit, in any case: `ms`, `s`, `m`, `h`, `d`;
 * a bare number is seconds ("500ms", "30", "7d"). No sign, no spaces, no
 * fraction.
 *
 * @param text the text, e.g. "30s"
 * @param us set to the duration in microseconds; left as it was on
 *        failure
 * @return 0 on success; -EINVAL when @p text is not such a duration or
 *         it does not fit in an int64_t
 */
int whr_parse_duration(const char *text, int64_t *us);

#ifdef __cplusplus
}
#endif

#endif /* WHR_RECEIVER_H */
