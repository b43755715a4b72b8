/*
 * whr: the event a handler reads
 *
 * One event is one notification of a verified delivery. A delivery (one
 * signed POST) carries one or more notifications; each is handed to the
 * handlers registered for its Action as its own event.
 *
 * Lifetime: an event and every pointer read from it are borrowed. They
 * stay valid until the handler that received the event returns, and no
 * longer. Copy anything you keep.
 *
 * Threads: a handler may run on any thread, but one event is used by one
 * thread at a time. Do not hand it to another thread.
 *
 * Field paths name a member of the notification's JSON object: `Action`,
 * `Course.Id`, `Users[0].Email`, `Users[2]`. Member names are compared
 * exactly (case-sensitive), as they appear in the JSON; `[n]` indexes an
 * array from 0. A path that does not exist is not an error: the getters
 * report it as missing.
 */
#ifndef WHR_EVENT_H
#define WHR_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <whr/log.h>

#ifdef __cplusplus
extern "C" {
#endif

struct whr_event;

/** The JSON type of the value at a path. */
enum whr_value_type {
	WHR_VALUE_MISSING = 0,	/**< no such member, or the path is malformed */
	WHR_VALUE_NULL,
	WHR_VALUE_STRING,
	WHR_VALUE_INTEGER,	/**< a number that fits in int64_t */
	WHR_VALUE_NUMBER,	/**< any other number */
	WHR_VALUE_BOOL,
	WHR_VALUE_OBJECT,
	WHR_VALUE_ARRAY
};

/**
 * @param ev the event
 * @return the receiver id from the URL (`/api/webhooks/incoming/custom/{id}`),
 *         lowercased, or "" for the default receiver. Borrowed (see above).
 */
const char *whr_event_receiver_id(const struct whr_event *ev);

/**
 * @param ev the event
 * @return the delivery's `Id` member, the same on every retry of one
 *         delivery, or NULL when the body has none. Borrowed.
 */
const char *whr_event_delivery_id(const struct whr_event *ev);

/**
 * @param ev the event
 * @return the delivery's `Attempt` member (1, 2, 3 ...), or 0 when the
 *         body has none or it is not an integer
 */
int64_t whr_event_attempt(const struct whr_event *ev);

/**
 * @param ev the event
 * @return the notification's `Action` as text (a number or boolean Action
 *         is given as its JSON text), or NULL when it has none. Borrowed.
 */
const char *whr_event_action(const struct whr_event *ev);

/**
 * @param ev the event
 * @return the position of this notification in the delivery, from 0
 */
size_t whr_event_index(const struct whr_event *ev);

/**
 * @param ev the event
 * @return how many notifications the delivery carries
 */
size_t whr_event_count(const struct whr_event *ev);

/**
 * @param ev the event
 * @return when the delivery was received, in microseconds since the Unix
 *         epoch (UTC)
 */
int64_t whr_event_received_at(const struct whr_event *ev);

/**
 * The notification exactly as it appeared in the body (the bytes of its
 * JSON object, formatting included).
 *
 * @param ev the event
 * @param[out] len if not NULL, set to the length in bytes
 * @return the JSON text, NUL-terminated. Borrowed.
 */
const char *whr_event_json(const struct whr_event *ev, size_t *len);

/**
 * The delivery's `Properties` object exactly as it appeared in the body.
 *
 * @param ev the event
 * @param[out] len if not NULL, set to the length in bytes
 * @return the JSON text, NUL-terminated; "{}" when the body has no
 *         `Properties` object. Borrowed.
 */
const char *whr_event_properties_json(const struct whr_event *ev, size_t *len);

/**
 * @param ev the event
 * @param path a field path (see the top of this header)
 * @return the type of the value at @p path, or WHR_VALUE_MISSING
 */
enum whr_value_type whr_event_type(const struct whr_event *ev,
				   const char *path);

/**
 * @param ev the event
 * @param path a field path
 * @return the string at @p path, or NULL when it is missing or not a
 *         string. Borrowed.
 */
const char *whr_event_string(const struct whr_event *ev, const char *path);

/**
 * @param ev the event
 * @param path a field path
 * @param[out] value set to the integer at @p path on success
 * @return 0 on success, -ENOENT when the path is missing, -EINVAL when the
 *         value is not an integer that fits in int64_t, -ENOMEM
 */
int whr_event_integer(const struct whr_event *ev, const char *path,
		      int64_t *value);

/**
 * @param ev the event
 * @param path a field path
 * @param[out] value set to the boolean at @p path on success
 * @return 0 on success, -ENOENT when the path is missing, -EINVAL when the
 *         value is not true or false, -ENOMEM
 */
int whr_event_bool(const struct whr_event *ev, const char *path, bool *value);

/**
 * @param ev the event
 * @param path a field path, e.g. "Users"
 * @return the number of elements of the array at @p path; 0 when it is
 *         missing or not an array
 */
size_t whr_event_array_length(const struct whr_event *ev, const char *path);

/**
 * @param ev the event
 * @param path a field path inside the delivery's `Properties` object
 * @return the string there, or NULL when it is missing or not a string.
 *         Borrowed.
 */
const char *whr_event_property(const struct whr_event *ev, const char *path);

struct sqlite3;

/**
 * The inbox's database connection, for a handler registered with
 * WHR_HANDLER_TRANSACTIONAL (see handler.h): it is inside the transaction
 * that will also record this handler's done mark. Use it for your own
 * tables; never commit, roll back or close it. If the handler returns
 * WHR_RETRY or WHR_REJECT, its writes are rolled back.
 *
 * @param ev the event
 * @return the connection, borrowed until the handler returns; NULL for a
 *         handler that is not transactional
 */
struct sqlite3 *whr_event_db(const struct whr_event *ev);

/**
 * Give the reason for a WHR_REJECT or WHR_RETRY result. The reason is kept
 * with the handler's outcome and logged. Calling it again replaces it.
 *
 * @param ev the event the handler was called with
 * @param fmt printf format of the reason (the text is copied)
 */
void whr_event_set_reason(struct whr_event *ev, const char *fmt, ...)
	WHR_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif

#endif /* WHR_EVENT_H */
