/* Plugins: stub until implemented. */
#include <stdio.h>

#include "plugin.h"

int
plugin_load(struct whr_receiver *r, const char *path)
{
	fprintf(stderr, "whr serve: --plugin: not implemented yet\n");
	return -1;
}

void
plugin_unload_all(void)
{
}
