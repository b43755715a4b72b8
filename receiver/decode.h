/*
 * Decoding a verified body into its envelope (PROTOCOL.md §3 checks 6 to
 * 8): media type, a JSON object, the Notifications rules, and the members
 * Id, Attempt, Properties and Notifications[*].Action. Pure code, no I/O.
 */
#ifndef WHR_RECEIVER_DECODE_H
#define WHR_RECEIVER_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deeper bodies are refused: yajl's tree code recurses, and Newtonsoft
 * (the sender's serialiser) refuses past 64 too. */
#define DECODE_MAX_DEPTH 64

/* One notification: its bytes in the body, its Action as text, and what
 * orders it: Course.Id and each Users[k].Id (strings only). */
struct notification {
	size_t start;		/* offset of its '{' in the body */
	size_t end;		/* offset just past its '}' */
	char *action;		/* NULL when absent or null */
	char *course_id;	/* NULL when absent or not a string */
	char **user_ids;	/* one per user object; NULL for a user
				 * without a string Id */
	size_t n_users;
};

struct envelope {
	char *id;		/* `Id`; NULL when absent, empty, or not
				 * a string or number */
	int64_t attempt;	/* `Attempt`; 0 when absent or not an
				 * integer */
	bool has_properties;
	size_t properties_start, properties_end;
	struct notification *notifications;
	size_t n_notifications;
	size_t json_start;	/* past a UTF-8 byte order mark, if any */
};

/* Check 6: application/json, text/json, application/ or text/ *+json;
 * parameters ignored; case-insensitive. NULL is not JSON. */
bool media_type_is_json(const char *content_type);

/* Checks 7 and 8, and that every string is Unicode (a lone surrogate
 * escape, "\uD800" without its pair, is refused: it would read as "?",
 * and two different ids could become one). Returns 0, or -EBADMSG with
 * a short reason in @p err (for the 400 body), -E2BIG when there are
 * more than @p max_notifications notifications (0: no limit), or
 * -ENOMEM. */
int envelope_decode(const char *body, size_t len, size_t max_notifications,
		    struct envelope *env, char *err, size_t err_size);

/* Free what envelope_decode() allocated; a zeroed envelope is a no-op. */
void envelope_finish(struct envelope *env);

#endif /* WHR_RECEIVER_DECODE_H */
