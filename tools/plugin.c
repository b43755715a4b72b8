/*
 * Plugins for whr serve: `--plugin PATH.so` opens a shared object, checks
 * the struct whr_plugin it exports (see <whr/plugin.h>) and calls its
 * init with the receiver, so it registers its handlers.
 *
 * A name without a slash is taken relative to the current directory, as
 * if written ./NAME: dlopen() would search the library path for it, and a
 * plugin should never be found in a place its user did not name.
 *
 * The shared objects stay open until plugin_unload_all(), which whr serve
 * calls once the receiver (whose handlers, userdata and destroy callbacks
 * may point into them) has been freed. A plugin whose init failed stays
 * open too: it may have registered handlers before it failed. When
 * handlers were left running at shutdown (whr_receiver_run() returned
 * -EBUSY), whr serve does not call it at all: the plugins stay mapped,
 * their handles reachable from here, until the process exits.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <whr/whr.h>

#include "plugin.h"

/* The open shared objects, in load order. */
static void **handles;
static size_t n_handles;
static size_t cap_handles;

static int
keep_handle(void *handle)
{
	if (n_handles == cap_handles) {
		size_t cap = cap_handles ? 2 * cap_handles : 4;
		void **more = realloc(handles, cap * sizeof(*more));

		if (more == NULL)
			return -ENOMEM;
		handles = more;
		cap_handles = cap;
	}
	handles[n_handles++] = handle;
	return 0;
}

/* The path dlopen() gets: @p path itself when it has a slash, else
 * "./PATH". Returns a string to free(), or NULL when out of memory. */
static char *
open_path(const char *path)
{
	size_t len = strlen(path);
	char *out;

	if (strchr(path, '/') != NULL)
		return strdup(path);
	out = malloc(len + 3);
	if (out == NULL)
		return NULL;
	memcpy(out, "./", 2);
	memcpy(out + 2, path, len + 1);
	return out;
}

int
plugin_load(struct whr_receiver *r, const char *path)
{
	const struct whr_plugin *plugin;
	const char *error;
	char *file = NULL;
	void *handle = NULL;
	int rc;

	if (path[0] == '\0') {
		fprintf(stderr, "whr serve: --plugin needs a path\n");
		return -1;
	}
	file = open_path(path);
	if (file == NULL)
		goto err_memory;
	handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		error = dlerror();
		fprintf(stderr, "whr serve: --plugin %s: cannot load: %s\n",
			path, error ? error : "unknown error");
		goto err;
	}
	(void)dlerror();
	plugin = dlsym(handle, "whr_plugin");
	if (plugin == NULL) {
		fprintf(stderr, "whr serve: --plugin %s: not a whr plugin (it "
				"has no whr_plugin symbol: see "
				"WHR_PLUGIN_DEFINE in <whr/plugin.h>)\n",
			path);
		goto err;
	}
	if (plugin->api_version != WHR_PLUGIN_API_VERSION) {
		fprintf(stderr, "whr serve: --plugin %s: built for plugin API "
				"%u, this whr provides %d: rebuild it against "
				"whr %d.%d\n",
			path, plugin->api_version, WHR_PLUGIN_API_VERSION,
			WHR_VERSION_MAJOR, WHR_VERSION_MINOR);
		goto err;
	}
	if (plugin->name == NULL || plugin->name[0] == '\0' ||
	    plugin->init == NULL) {
		fprintf(stderr, "whr serve: --plugin %s: its whr_plugin has no "
				"%s\n",
			path, plugin->init == NULL ? "init function" : "name");
		goto err;
	}

	/* From here on, handlers may point into it: it stays open until the
	 * receiver is freed, whatever init does. */
	if (keep_handle(handle) < 0)
		goto err_memory;
	handle = NULL;
	rc = plugin->init(r);
	if (rc != 0) {
		if (rc < 0)
			fprintf(stderr, "whr serve: --plugin %s: plugin %s "
					"failed to start: %s\n",
				path, plugin->name, strerror(-rc));
		else
			fprintf(stderr, "whr serve: --plugin %s: plugin %s "
					"failed to start: its init returned "
					"%d, not 0 or a negative errno\n",
				path, plugin->name, rc);
		goto err;
	}
	whr_log(WHR_LOG_INFO, "plugin %s%s%s loaded from %s", plugin->name,
		plugin->version ? " " : "",
		plugin->version ? plugin->version : "", path);
	free(file);
	return 0;

err_memory:
	fprintf(stderr, "whr serve: --plugin %s: out of memory\n", path);
err:
	if (handle != NULL)
		dlclose(handle);
	free(file);
	return -1;
}

void
plugin_unload_all(void)
{
	while (n_handles > 0)
		dlclose(handles[--n_handles]);
	free(handles);
	handles = NULL;
	cap_handles = 0;
}
