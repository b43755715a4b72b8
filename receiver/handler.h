/*
 * The handlers registered on a receiver, and calling them for one
 * notification in the documented order.
 */
#ifndef WHR_RECEIVER_HANDLER_H
#define WHR_RECEIVER_HANDLER_H

#include <whr/handler.h>
#include <whr/tx.h>

/* Table setups by database: index enum whr_db. */
#define HANDLER_DB_SLOTS 3

struct handler_entry {
	char *name;
	char *action;		/* NULL for catch-all ("*") */
	whr_handler_fn fn;
	void *userdata;
	whr_destroy_fn destroy;
	unsigned int flags;	/* enum whr_handler_flags */
	whr_db_setup_fn db_setup;	/* SQLite's, the first API's */
	whr_tx_setup_fn tx_setup[HANDLER_DB_SLOTS];
};

struct handler_registry {
	struct handler_entry *entries;
	size_t n;
};

int handler_registry_add(struct handler_registry *reg,
			 const struct whr_handler *handler);
void handler_registry_finish(struct handler_registry *reg);

/* Register the table setup of transactional handler @p name for @p db:
 * 0, -ENOENT (no transactional handler of that name), -EEXIST (one is
 * there already for @p db), -EINVAL. */
int handler_registry_add_tx_setup(struct handler_registry *reg,
				  const char *name, enum whr_db db,
				  whr_tx_setup_fn setup);

/* Whether every transactional handler can run on @p db: one with table
 * setups for other databases only, or none, cannot on PostgreSQL (a
 * configuration error). 0, or
 * -EINVAL with @p why naming the first that cannot. */
int handler_registry_check_db(const struct handler_registry *reg,
			      enum whr_db db, char *why, size_t why_size);

/* The handlers for @p action in call order: those registered for it, then
 * the catch-all ones, each in registration order. @p action NULL (no
 * Action) selects the catch-all ones only. Fills up to @p max entries of
 * @p out and returns how many match. */
size_t handler_registry_select(const struct handler_registry *reg,
			       const char *action,
			       const struct handler_entry **out, size_t max);

/* Whether any handler is WHR_HANDLER_TRANSACTIONAL. */
bool handler_registry_any_transactional(const struct handler_registry *reg);

const char *handler_result_name(enum whr_result result);

#endif /* WHR_RECEIVER_HANDLER_H */
