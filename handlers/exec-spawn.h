/*
 * Spawning one command for the exec handler: its standard input fed from
 * memory, its standard error's end kept, a time limit, and the child
 * always reaped.
 */
#ifndef WHR_HANDLERS_EXEC_SPAWN_H
#define WHR_HANDLERS_EXEC_SPAWN_H

#include <stdbool.h>
#include <stddef.h>

/* After SIGTERM, how long a command has before SIGKILL. */
#define EXEC_KILL_GRACE_S 2.0

/* How much of the end of a command's standard error is kept. */
#define EXEC_STDERR_TAIL 1024

/* How a command ended. */
enum exec_end {
	EXEC_EXITED,		/* exited; status is its exit status */
	EXEC_SIGNALED,		/* killed by a signal we did not send */
	EXEC_TIMED_OUT,		/* past the time limit; we killed it */
	EXEC_STOPPED,		/* cut short as whr stops; we killed it */
	EXEC_SPAWN_FAILED,	/* never ran; status is the errno */
	EXEC_LOST,		/* reaped by someone else: status unknown */
};

struct exec_result {
	enum exec_end end;
	int status;		/* exit status, signal number or errno */
	double seconds;		/* how long it ran */
	/* The last bytes it wrote to standard error (not NUL-terminated). */
	char err[EXEC_STDERR_TAIL];
	size_t err_len;
};

/* Asked while a command runs: whether whr is stopping, and if so, from
 * when (@p term_at, in exec_spawn_now() seconds) the command gets
 * SIGTERM, and how long after that SIGKILL (@p kill_grace_s). */
typedef bool (*exec_stop_fn)(double *term_at, double *kill_grace_s);

/* The clock of deadlines: CLOCK_MONOTONIC, in seconds. */
double exec_spawn_now(void);

/*
 * Run the program at @p path (no PATH search) with @p argv and @p envp in
 * a process group of its own, with no descriptor of ours but its
 * standard input (a pipe carrying @p input, then end of file), standard
 * output (/dev/null) and standard error (a pipe we read). Waits until it
 * exits, or @p timeout_s has passed: then its group gets SIGTERM, and
 * SIGKILL 2 s later. When @p stop (may be NULL) says so, that happens
 * earlier, at its time (EXEC_STOPPED). The child is reaped before this
 * returns. Thread-safe.
 *
 * Returns 0 when the command ran, or a negative errno when it could not
 * be started (the program is gone, no descriptors or processes left);
 * @p out is filled in either way (EXEC_SPAWN_FAILED, the errno as
 * status).
 */
int exec_spawn_run(const char *path, char *const argv[], char *const envp[],
		   const char *input, size_t input_len, double timeout_s,
		   exec_stop_fn stop, struct exec_result *out);

/*
 * Resolve @p program as execvp() would: a name with a slash is used as
 * is, another is looked for in the directories of @p search_path (NULL:
 * the system default). Returns a path to free(), or NULL with errno set
 * (ENOENT, EACCES, EISDIR, ENOMEM).
 */
char *exec_resolve_program(const char *program, const char *search_path);

#endif /* WHR_HANDLERS_EXEC_SPAWN_H */
