/*
 * whr: typed Learn365 events
 *
 * Learn365 sends two shapes of notification (PROTOCOL.md §2):
 * - enrollment-type (CourseEnrollment, CourseUnenrollment, CourseStarted,
 *   CourseCompleted, EnrollmentApprovalRequest): a nested `Course`, a
 *   `Users` array (one event may cover several learners), the enrollment
 *   status and a `TimeStamp`;
 * - course-type (CoursePublished, CourseUnpublished, CourseCreated,
 *   CourseDeleted): the course's members flat in the notification.
 *
 * The decoders read a handler's event into a struct. A member that is
 * missing (or JSON null) is NULL, or has its `has_` flag false; a member of
 * the wrong type (a number where text belongs, a `Users` that is not an
 * array, an element of `Users` that is not an object, an
 * `EnrollmentStatus` with a fraction) fails the decoding with -EINVAL and
 * a reason already set on the event (whr_event_set_reason()) that names
 * the member and both types, e.g. `Course.Title: expected a string, got a
 * number` or `Users[2]: expected an object, got a string`, so a handler
 * can simply return WHR_REJECT; unknown members are ignored. Member names
 * are compared exactly; of a member given twice, the last counts (as for
 * field paths).
 *
 * Lifetime: like everything read from an event, the strings and the users
 * array are borrowed from it until the handler returns (see event.h).
 * Nothing needs freeing. An event may be decoded more than once; each
 * result stays valid until the handler returns.
 */
#ifndef WHR_LMS365_H
#define WHR_LMS365_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <whr/event.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The Learn365 Actions whr knows. Values are part of the ABI. */
enum whr_lms365_action {
	WHR_LMS365_UNKNOWN = 0,	/**< any other Action, or none */
	WHR_LMS365_COURSE_ENROLLMENT,
	WHR_LMS365_COURSE_UNENROLLMENT,
	WHR_LMS365_COURSE_STARTED,
	WHR_LMS365_COURSE_COMPLETED,
	WHR_LMS365_ENROLLMENT_APPROVAL_REQUEST,
	WHR_LMS365_COURSE_PUBLISHED,
	WHR_LMS365_COURSE_UNPUBLISHED,
	WHR_LMS365_COURSE_CREATED,
	WHR_LMS365_COURSE_DELETED
};

/**
 * @param action an Action as sent (compared case-insensitively, ASCII
 *        only, nothing trimmed); may be NULL
 * @return its enum value, or WHR_LMS365_UNKNOWN
 */
enum whr_lms365_action whr_lms365_action_parse(const char *action);

/**
 * @param action an enum value
 * @return its canonical spelling ("CourseStarted"), or NULL for
 *         WHR_LMS365_UNKNOWN and values out of range. Static.
 */
const char *whr_lms365_action_name(enum whr_lms365_action action);

/**
 * @param action an enum value
 * @return true for the five enrollment-type Actions
 */
bool whr_lms365_is_enrollment(enum whr_lms365_action action);

/**
 * @param action an enum value
 * @return true for the four course-type Actions
 */
bool whr_lms365_is_course(enum whr_lms365_action action);

/** A course, from `Course` of an enrollment-type event or from the flat
 *  members of a course-type one. */
struct whr_lms365_course {
	const char *id;
	const char *title;
	const char *url;
	const char *course_type;
	const char *site_id;
	const char *web_id;
	bool has_published;	/**< `Published` was given */
	bool published;
};

/** One learner of `Users`. */
struct whr_lms365_user {
	const char *id;
	const char *email;
	const char *title;	/**< the display name */
	const char *login_name;
	const char *department;
	const char *directory_object_id;
	const char *enrollment_id;
};

/** The `TimeStamp` of an event. A decoder fails on a `TimeStamp` that
 *  whr_lms365_parse_time() refuses, so after a successful decoding
 *  @ref valid is true exactly when @ref text is not NULL. */
struct whr_lms365_time {
	const char *text;	/**< as sent, or NULL when missing or null */
	bool valid;		/**< @ref text is an ISO 8601 date-time */
	int64_t us;		/**< if valid: microseconds since the Unix
				 *   epoch, UTC (no zone means UTC) */
};

/** An enrollment-type notification. */
struct whr_lms365_enrollment {
	enum whr_lms365_action action;
	struct whr_lms365_course course;
	const struct whr_lms365_user *users;	/**< @ref n_users of them;
						 *   NULL when there are
						 *   none */
	size_t n_users;
	bool has_status;	/**< `EnrollmentStatus` was given */
	int64_t status;
	const char *status_text;
	struct whr_lms365_time timestamp;
};

/** A course-type notification. */
struct whr_lms365_course_event {
	enum whr_lms365_action action;
	struct whr_lms365_course course;
	struct whr_lms365_time timestamp;
};

/**
 * Read an enrollment-type notification. The Action is not checked against
 * the five: the caller chooses which events it decodes this way (@c
 * action is whr_lms365_action_parse() of whr_event_action()). A missing
 * or null `Course` leaves every course field NULL; a missing, null or
 * empty `Users` gives no users.
 *
 * @param ev the event
 * @param[out] out filled in on success; its pointers are borrowed from
 *             @p ev (see the top of this header); zeroed on failure
 * @return 0; -EINVAL when a member has the wrong type or `TimeStamp` is
 *         not an ISO 8601 date-time (the reason is set on @p ev, e.g.
 *         `TimeStamp: not an ISO 8601 date-time: "yesterday"`); -ENOMEM
 */
int whr_lms365_enrollment_decode(struct whr_event *ev,
				 struct whr_lms365_enrollment *out);

/**
 * Read a course-type notification: the flat members `Id`, `Title`, `Url`,
 * `CourseType`, `SiteId`, `WebId`, `Published` and `TimeStamp`. As for
 * whr_lms365_enrollment_decode(), the Action is not checked.
 *
 * @param ev the event
 * @param[out] out filled in on success; borrowed from @p ev; zeroed on
 *             failure
 * @return as whr_lms365_enrollment_decode()
 */
int whr_lms365_course_decode(struct whr_event *ev,
			     struct whr_lms365_course_event *out);

/**
 * Parse an ISO 8601 date-time as Learn365 sends it:
 * `YYYY-MM-DDTHH:MM:SS`, an optional fraction (`.` and one or more digits,
 * truncated to the microsecond), then `Z`, `z`, `+HH:MM`, `-HH:MM`,
 * `+HHMM`, `-HHMM` or nothing (UTC). Years 0001 to 9999 of the proleptic
 * Gregorian calendar; the day must exist in its month (29 February only
 * in leap years); hours 00-23, minutes and seconds 00-59 (no leap
 * second); offsets up to 23:59. Nothing may follow, not even space. The
 * result does not depend on the locale or the TZ environment variable.
 *
 * @param text the text; NULL is refused
 * @param[out] us microseconds since the Unix epoch, UTC (negative before
 *             1970); untouched on failure
 * @return 0, or -EINVAL when @p text is not such a date-time
 */
int whr_lms365_parse_time(const char *text, int64_t *us);

#ifdef __cplusplus
}
#endif

#endif /* WHR_LMS365_H */
