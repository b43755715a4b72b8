/*
 * A plugin whose init registers a handler, then fails with -EINVAL (as a
 * plugin does when its configuration is bad). whr serve must stop with
 * the error, and keep the plugin loaded until the receiver is freed: the
 * handler's destroy callback, which lives in this shared object, still
 * runs then and logs "init-fails: destroyed".
 */
#include <errno.h>

#include <whr/whr.h>

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	(void)ev;
	(void)userdata;
	return WHR_DONE;
}

static void
on_destroy(void *userdata)
{
	(void)userdata;
	whr_log(WHR_LOG_INFO, "init-fails: destroyed");
}

static const struct whr_handler init_fails_handler = {
	.name = "init-fails",
	.action = "*",
	.fn = on_any,
	.destroy = on_destroy,
};

static int
init_fails(struct whr_receiver *r)
{
	int rc = whr_receiver_add_handler(r, &init_fails_handler);

	if (rc < 0)
		return rc;
	whr_log(WHR_LOG_ERROR, "init-fails: no configuration");
	return -EINVAL;
}

WHR_PLUGIN_DEFINE("init-fails", "0.0.1", init_fails);
