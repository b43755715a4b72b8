/*
 * The subcommands of the whr command. Each returns the process's exit
 * status: 0 success, 1 failure at run time (or "not delivered", "does not
 * verify"), 2 a usage or configuration error.
 */
#ifndef WHR_TOOLS_COMMANDS_H
#define WHR_TOOLS_COMMANDS_H

#define EXIT_USAGE 2

int cmd_serve(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_inbox(int argc, char **argv);
int cmd_enrollments(int argc, char **argv);
int cmd_healthcheck(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_register(int argc, char **argv);

#endif /* WHR_TOOLS_COMMANDS_H */
