/* Typed Learn365 events: stub until implemented. */
#include <errno.h>
#include <strings.h>

#include <whr/lms365.h>

#include "whr-private.h"



WHR_EXPORT enum whr_lms365_action
whr_lms365_action_parse(const char *action)
{
	return WHR_LMS365_UNKNOWN;
}

WHR_EXPORT const char *
whr_lms365_action_name(enum whr_lms365_action action)
{
	return NULL;
}

WHR_EXPORT bool
whr_lms365_is_enrollment(enum whr_lms365_action action)
{
	return false;
}

WHR_EXPORT bool
whr_lms365_is_course(enum whr_lms365_action action)
{
	return false;
}

WHR_EXPORT int
whr_lms365_enrollment_decode(struct whr_event *ev,
			     struct whr_lms365_enrollment *out)
{
	return -ENOSYS;
}

WHR_EXPORT int
whr_lms365_course_decode(struct whr_event *ev,
			 struct whr_lms365_course_event *out)
{
	return -ENOSYS;
}

WHR_EXPORT int
whr_lms365_parse_time(const char *text, int64_t *us)
{
	return -ENOSYS;
}
