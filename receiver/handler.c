/*
 * The handler registry: registration, selection by Action, teardown.
 */
#include "handler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

int
handler_registry_add(struct handler_registry *reg,
		     const struct whr_handler *handler)
{
	struct handler_entry *grown;
	struct handler_entry e = { 0 };
	char fallback[32];
	size_t i;

	if (handler->fn == NULL || handler->action == NULL ||
	    handler->action[0] == '\0') {
		log_bug("a handler needs a callback and an Action (or \"*\")");
		return -EINVAL;
	}
	if ((handler->flags & ~(unsigned)WHR_HANDLER_TRANSACTIONAL) != 0) {
		log_bug("unknown handler flags 0x%x", handler->flags);
		return -EINVAL;
	}
	if (handler->name == NULL)
		snprintf(fallback, sizeof(fallback), "handler-%zu", reg->n + 1);
	for (i = 0; i < reg->n; i++) {
		if (strcmp(reg->entries[i].name, handler->name != NULL
							 ? handler->name
							 : fallback) == 0) {
			log_bug("two handlers are named '%s'",
				reg->entries[i].name);
			return -EINVAL;
		}
	}

	e.name = strdup(handler->name != NULL ? handler->name : fallback);
	if (strcmp(handler->action, "*") != 0)
		e.action = strdup(handler->action);
	grown = realloc(reg->entries, (reg->n + 1) * sizeof(*grown));
	if (e.name == NULL || (strcmp(handler->action, "*") != 0 &&
			       e.action == NULL) || grown == NULL) {
		free(e.name);
		free(e.action);
		if (grown != NULL)
			reg->entries = grown;
		return -ENOMEM;
	}
	e.fn = handler->fn;
	e.userdata = handler->userdata;
	e.destroy = handler->destroy;
	e.flags = handler->flags;
	e.db_setup = handler->db_setup;
	reg->entries = grown;
	reg->entries[reg->n++] = e;
	return 0;
}

static bool
db_known(enum whr_db db)
{
	return db == WHR_DB_SQLITE || db == WHR_DB_POSTGRESQL;
}

static const char *
db_name(enum whr_db db)
{
	return db == WHR_DB_POSTGRESQL ? "PostgreSQL" : "SQLite";
}

int
handler_registry_add_tx_setup(struct handler_registry *reg, const char *name,
			      enum whr_db db, whr_tx_setup_fn setup)
{
	size_t i;

	if (name == NULL || setup == NULL || !db_known(db)) {
		log_bug("a table setup needs a handler's name, a known "
			"database and a callback");
		return -EINVAL;
	}
	for (i = 0; i < reg->n; i++) {
		struct handler_entry *e = &reg->entries[i];

		if (strcmp(e->name, name) != 0 ||
		    !(e->flags & WHR_HANDLER_TRANSACTIONAL))
			continue;
		if (e->tx_setup[db] != NULL) {
			log_bug("handler %s has a %s table setup already",
				name, db_name(db));
			return -EEXIST;
		}
		e->tx_setup[db] = setup;
		return 0;
	}
	log_bug("no transactional handler is named '%s'", name);
	return -ENOENT;
}

int
handler_registry_check_db(const struct handler_registry *reg, enum whr_db db,
			  char *why, size_t why_size)
{
	size_t i;

	for (i = 0; i < reg->n; i++) {
		const struct handler_entry *e = &reg->entries[i];
		bool some = e->db_setup != NULL;
		enum whr_db k;

		if (!(e->flags & WHR_HANDLER_TRANSACTIONAL))
			continue;
		for (k = WHR_DB_SQLITE; k <= WHR_DB_POSTGRESQL; k++)
			some = some || e->tx_setup[k] != NULL;
		/* The first API's db_setup is SQLite's. */
		if (e->tx_setup[db] != NULL ||
		    (db == WHR_DB_SQLITE && (e->db_setup != NULL || !some)))
			continue;
		/* On another database than SQLite, a handler must say it
		 * knows it: one written for the first API (whr_event_db())
		 * would find no connection there. */
		snprintf(why, why_size,
			 "handler %s cannot run on %s: it sets up its tables "
			 "for %s (register a table setup for %s with "
			 "whr_receiver_add_tx_setup(), an empty one if it needs "
			 "no tables)", e->name, db_name(db),
			 some ? "another database only" : "no database",
			 db_name(db));
		return -EINVAL;
	}
	return 0;
}

void
handler_registry_finish(struct handler_registry *reg)
{
	size_t i;

	for (i = 0; i < reg->n; i++) {
		struct handler_entry *e = &reg->entries[i];

		if (e->destroy != NULL)
			e->destroy(e->userdata);
		free(e->name);
		free(e->action);
	}
	free(reg->entries);
	reg->entries = NULL;
	reg->n = 0;
}

size_t
handler_registry_select(const struct handler_registry *reg,
			const char *action, const struct handler_entry **out,
			size_t max)
{
	size_t n = 0;
	size_t i;

	if (action != NULL) {
		for (i = 0; i < reg->n; i++) {
			const struct handler_entry *e = &reg->entries[i];

			if (e->action != NULL &&
			    ascii_equal_nocase(e->action, action)) {
				if (n < max)
					out[n] = e;
				n++;
			}
		}
	}
	for (i = 0; i < reg->n; i++) {
		if (reg->entries[i].action == NULL) {
			if (n < max)
				out[n] = &reg->entries[i];
			n++;
		}
	}
	return n;
}

const char *
handler_result_name(enum whr_result result)
{
	switch (result) {
	case WHR_DONE:
		return "done";
	case WHR_RETRY:
		return "retry";
	case WHR_REJECT:
		return "reject";
	}
	return "invalid";
}

bool
handler_registry_any_transactional(const struct handler_registry *reg)
{
	size_t i;

	for (i = 0; i < reg->n; i++) {
		if (reg->entries[i].flags & WHR_HANDLER_TRANSACTIONAL)
			return true;
	}
	return false;
}
