/*
 * whr-test-stuck: a plugin for `whr serve --plugin` whose handler "stuck"
 * (every Action) creates the file $WHR_TEST_STUCK_STARTED (when set),
 * sleeps $WHR_TEST_STUCK_MS milliseconds (default 60000) and then says
 * done: a handler that outlives the shutdown timeout and
 * ignores the stop, for the tests of whr serve leaving it behind.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <whr/whr.h>
#include <whr/plugin.h>

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	const char *ms_text = getenv("WHR_TEST_STUCK_MS");
	const char *started = getenv("WHR_TEST_STUCK_STARTED");
	long ms = ms_text != NULL ? atol(ms_text) : 60000;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	if (started != NULL) {
		int fd = open(started, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		if (fd >= 0)
			close(fd);
	}

	while (nanosleep(&ts, &ts) != 0)
		;
	return WHR_DONE;
}

static const struct whr_handler stuck = {
	.name = "stuck",
	.action = "*",
	.fn = on_any,
};

static int
stuck_init(struct whr_receiver *r)
{
	return whr_receiver_add_handler(r, &stuck);
}

WHR_PLUGIN_DEFINE("stuck", "1.0.0", stuck_init);
