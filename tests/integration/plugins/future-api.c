/*
 * A plugin built for a plugin API this whr does not provide (999), as if
 * compiled against the headers of a future whr. whr serve --plugin must
 * refuse it before it reads any other member or calls init.
 */
#include <whr/plugin.h>

static int
future_init(struct whr_receiver *r)
{
	(void)r;
	return 0;
}

#undef WHR_PLUGIN_API_VERSION
#define WHR_PLUGIN_API_VERSION 999
WHR_PLUGIN_DEFINE("future", "9.9.9", future_init);
