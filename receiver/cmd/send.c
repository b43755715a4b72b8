/*
 * whr send: not written yet (issue 3).
 */
#include <stdio.h>

#include "commands.h"

int
cmd_send(int argc, char **argv)
{
	fprintf(stderr, "whr send: not implemented yet\n");
	return 1;
}
