/*
 * whr probe: not written yet (issue 3).
 */
#include <stdio.h>

#include "commands.h"

int
cmd_probe(int argc, char **argv)
{
	fprintf(stderr, "whr probe: not implemented yet\n");
	return 1;
}
