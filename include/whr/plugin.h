/*
 * whr: plugins for `whr serve`
 *
 * A plugin is a shared object that registers handlers into the stock
 * receiver, so that you need no program of your own:
 *
 *	whr serve --plugin ./completions.so
 *
 * It defines one entry point with WHR_PLUGIN_DEFINE():
 *
 *	static int
 *	completions_init(struct whr_receiver *r)
 *	{
 *		return whr_on(r, "CourseCompleted", on_completed, NULL);
 *	}
 *
 *	WHR_PLUGIN_DEFINE("completions", "1.0.0", completions_init);
 *
 * and is built against an installed whr with nothing but
 * `pkg-config --cflags --libs whr` (see handlers/examples/plugin/).
 *
 * When init runs: once, at start-up, before the receiver runs (before it
 * reads its own settings or opens a socket), in the order of the
 * command line, --plugin and --handler alike. Handlers are called in
 * registration order (those of the notification's Action, then the
 * catch-all ones: see handler.h), so a plugin's come after those of the
 * options before it and before those of the options after it.
 *
 * What init may do: register handlers (whr_receiver_add_handler(),
 * whr_on()), SIGHUP callbacks (whr_receiver_on_hangup()) and stop
 * callbacks (whr_receiver_on_stop()), log
 * (whr_log()), and read its own configuration, from the environment
 * (e.g. `COMPLETIONS_FILE`) or from files it names. It must not call
 * whr_receiver_set(), whr_receiver_configure(), whr_receiver_run() or
 * whr_receiver_free(): the receiver belongs to whr serve. A thread it
 * starts must be stopped by a destroy callback, before the unloading.
 *
 * Lifetime: the shared object stays loaded until the receiver has been
 * freed (after every handler's destroy callback ran), then is unloaded.
 * Handlers, userdata and destroy callbacks may therefore point into it.
 * Free what init allocated in a destroy callback (struct whr_handler),
 * not in a destructor of the shared object.
 *
 * Threads: the plugin's handlers follow the rules of every handler (see
 * handler.h): called on any thread, several at once, at least once each;
 * guard shared state. init itself runs on the main thread, alone.
 *
 * Compatibility: a plugin records the plugin API version it was built
 * for (WHR_PLUGIN_API_VERSION of the headers it was compiled with); whr
 * refuses to load a plugin built for another one. Rebuild the plugin
 * against the whr that loads it.
 */
#ifndef WHR_PLUGIN_H
#define WHR_PLUGIN_H

#include <whr/handler.h>
#include <whr/receiver.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The version of struct whr_plugin and of the rules above. It changes
 * when either changes incompatibly, and a plugin built for another
 * version is refused.
 */
#define WHR_PLUGIN_API_VERSION 1

/**
 * A plugin's entry point.
 *
 * @param r the receiver of whr serve, not yet configured or running;
 *        borrowed: valid until the shared object is unloaded
 * @return 0; or a negative errno (e.g. -EINVAL for a bad configuration)
 *         to stop whr serve from starting: it exits with status 2 and
 *         prints strerror() of it, so log the details with whr_log()
 *         first
 */
typedef int (*whr_plugin_init_fn)(struct whr_receiver *r);

/**
 * What a plugin exports under the name `whr_plugin`. Define it with
 * WHR_PLUGIN_DEFINE() rather than by hand. Its layout is part of the
 * plugin ABI, versioned by @ref api_version.
 */
struct whr_plugin {
	/** WHR_PLUGIN_API_VERSION of the headers the plugin was built
	 *  with; checked before any other member is read. It stays the
	 *  first member in every version of this struct. */
	unsigned int api_version;
	/** A short name for logs, e.g. "completions"; required. */
	const char *name;
	/** The plugin's own version for logs, e.g. "1.0.0"; may be NULL. */
	const char *version;
	/** The entry point (see whr_plugin_init_fn); required. */
	whr_plugin_init_fn init;
};

#if defined(__GNUC__)
/** Makes @ref WHR_PLUGIN_DEFINE's symbol visible with
 *  -fvisibility=hidden too. */
#define WHR_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define WHR_PLUGIN_EXPORT
#endif

/* How WHR_PLUGIN_DEFINE() declares and defines its symbol, so that it has
 * C linkage from C++ too. Not for direct use. */
#ifdef __cplusplus
#define WHR_PLUGIN_LINKAGE_DECL_ extern "C"
#define WHR_PLUGIN_LINKAGE_DEF_ extern "C"
#else
#define WHR_PLUGIN_LINKAGE_DECL_ extern
#define WHR_PLUGIN_LINKAGE_DEF_
#endif

/**
 * Define the plugin's exported `whr_plugin`: once per shared object, at
 * file scope, followed by a semicolon.
 *
 * @param plugin_name a string literal: the name for logs
 * @param plugin_version a string literal: the plugin's version, or NULL
 * @param init_fn the entry point, a function
 *        `int init_fn(struct whr_receiver *r)` (see whr_plugin_init_fn)
 */
#define WHR_PLUGIN_DEFINE(plugin_name, plugin_version, init_fn)	\
	WHR_PLUGIN_LINKAGE_DECL_ WHR_PLUGIN_EXPORT				\
	const struct whr_plugin whr_plugin;				\
	WHR_PLUGIN_LINKAGE_DEF_ WHR_PLUGIN_EXPORT				\
	const struct whr_plugin whr_plugin = {				\
		WHR_PLUGIN_API_VERSION,					\
		(plugin_name),						\
		(plugin_version),					\
		(init_fn)						\
	}

#ifdef __cplusplus
}
#endif

#endif /* WHR_PLUGIN_H */
