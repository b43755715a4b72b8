/*
 * whr verify: not written yet (issue 3).
 */
#include <stdio.h>

#include "commands.h"

int
cmd_verify(int argc, char **argv)
{
	fprintf(stderr, "whr verify: not implemented yet\n");
	return 1;
}
