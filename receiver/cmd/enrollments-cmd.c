/* whr enrollments: stub until implemented. */
#include <stdio.h>

#include "commands.h"

int
cmd_enrollments(int argc, char **argv)
{
	fprintf(stderr, "whr enrollments: not implemented yet\n");
	return 1;
}
