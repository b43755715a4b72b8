/*
 * The handlers registered on a receiver, and calling them for one
 * notification in the documented order.
 */
#ifndef WHR_RECEIVER_HANDLER_H
#define WHR_RECEIVER_HANDLER_H

#include <whr/handler.h>

struct handler_entry {
	char *name;
	char *action;		/* NULL for catch-all ("*") */
	whr_handler_fn fn;
	void *userdata;
	whr_destroy_fn destroy;
	unsigned int flags;	/* enum whr_handler_flags */
	whr_db_setup_fn db_setup;
};

struct handler_registry {
	struct handler_entry *entries;
	size_t n;
};

int handler_registry_add(struct handler_registry *reg,
			 const struct whr_handler *handler);
void handler_registry_finish(struct handler_registry *reg);

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
