/* The exec handler: stub until implemented. */
#include "builtin.h"

#include <errno.h>

int
exec_handler_add(struct whr_receiver *r, const char *args,
		 const struct builtin_settings *settings)
{
	whr_log(WHR_LOG_ERROR, "handler exec: not implemented yet");
	return -ENOSYS;
}
