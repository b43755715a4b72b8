/*
 * whr-test-sqlite-only: a plugin for `whr serve --plugin` with one
 * transactional handler, "sqlite-only", whose table setup is SQLite's
 * only (as the first exactly-once handlers were written): whr serve must
 * refuse to start it on another database (exit status 2, naming it),
 * never run it there at least once.
 */
#include <whr/whr.h>
#include <whr/plugin.h>

static int
setup(struct whr_tx *tx, void *userdata)
{
	return whr_tx_exec(tx, "CREATE TABLE IF NOT EXISTS sqlite_only"
			   " (id INTEGER PRIMARY KEY)");
}

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	return WHR_DONE;
}

static const struct whr_handler sqlite_only = {
	.name = "sqlite-only",
	.action = "*",
	.fn = on_any,
	.flags = WHR_HANDLER_TRANSACTIONAL,
};

static int
sqlite_only_init(struct whr_receiver *r)
{
	int rc = whr_receiver_add_handler(r, &sqlite_only);

	if (rc == 0)
		rc = whr_receiver_add_tx_setup(r, "sqlite-only", WHR_DB_SQLITE,
					       setup);
	return rc;
}

WHR_PLUGIN_DEFINE("sqlite-only", "1.0.0", sqlite_only_init);
