/* The enrollment tracker: stub until implemented. */
#include "builtin.h"

#include <errno.h>

int
enrollments_handler_add(struct whr_receiver *r, const char *args,
			const struct builtin_settings *settings)
{
	return 0;
}
