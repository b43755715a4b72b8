/*
 * Plugins for whr serve: `--plugin PATH.so` loads a shared object and
 * calls its entry point (see <whr/plugin.h>) so it registers handlers.
 */
#ifndef WHR_TOOLS_PLUGIN_H
#define WHR_TOOLS_PLUGIN_H

#include <whr/whr.h>

/* Load the plugin at @p path and call its entry point with @p r. Returns 0,
 * or -1 with the reason printed (the file and the loader's error, or the
 * API version mismatch). */
int plugin_load(struct whr_receiver *r, const char *path);

/* Unload every plugin loaded; only once the receiver is freed, as its
 * handlers point into them. */
void plugin_unload_all(void);

#endif /* WHR_TOOLS_PLUGIN_H */
