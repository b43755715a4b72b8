/*
 * Delivery bodies as the stock ASP.NET WebHooks sender builds them, for
 * `whr send` and `whr probe` (delivery.c, on the JSON code of lib/json.h).
 */
#ifndef WHR_TOOLS_DELIVERY_H
#define WHR_TOOLS_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/json.h"	/* enum json_style */

struct delivery {
	const char *id;			/* plain text, not JSON; NULL: 32
					 * random lowercase hex */
	int64_t attempt;		/* 1 for a first attempt */
	const char *properties;		/* a JSON object; NULL: {} */
	const char *const *notifications; /* JSON objects (in any style:
					   * they are re-serialised), each
					   * with its Action; not checked */
	size_t n_notifications;
	enum json_style style;
};

/* The body the sender would send: members Id, Attempt, Properties,
 * Notifications, in that order, in @p d->style. Returns malloc'd text
 * (NUL-terminated, length in *len when not NULL), or NULL with a reason
 * in @p err ("notification 2 is not a JSON object", ...). */
char *delivery_body(const struct delivery *d, size_t *len, char *err,
		    size_t err_size);

/* 32 random lowercase hex characters and a NUL; 0 or -EIO. */
int delivery_random_id(char id[33]);

#endif /* WHR_TOOLS_DELIVERY_H */
