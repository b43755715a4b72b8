/*
 * The exec handler: `--handler exec:ACTION=COMMAND` runs COMMAND for each
 * notification of ACTION (or of every Action, for "*"), the notification's
 * JSON on its standard input; its exit status is the outcome.
 *
 * exec.c   the handler, its registration, and how many run at once
 * spawn.c  running one command: input, standard error, time limit, reaping
 * words.c  COMMAND split into words
 */
#ifndef WHR_HANDLERS_EXEC_H
#define WHR_HANDLERS_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include <whr/whr.h>

/* Register an exec handler for @p args ("ACTION=COMMAND"), named
 * "exec:ACTION:N" (N counts the exec handlers added). Each command may
 * run @p timeout_s seconds; at most @p max_running commands of all exec
 * handlers run at once (the last registration's word counts). 0, or a
 * negative errno (logged): -EINVAL for a bad spec or a program that
 * cannot be run. */
int exec_handler_add(struct whr_receiver *r, const char *args,
		     double timeout_s, unsigned int max_running);

/* ---- spawn.c: running one command ---------------------------------------- */

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

/* ---- words.c: COMMAND in words ------------------------------------------- */

/* COMMAND is split into words as a shell would split a simple command,
 * without expanding anything: blanks separate words, '...' keeps
 * everything literally, "..." keeps everything but \" \\ \$ \`
 * (which a backslash escapes, as in sh), and outside quotes a backslash
 * escapes the next character. */

/* Split @p text into words. Returns 0 with a NULL-terminated vector
 * (possibly of no words) in @p *argv, to free with exec_words_free();
 * -EINVAL with @p *error set to what is wrong; or -ENOMEM. */
int exec_words_split(const char *text, char ***argv, const char **error);

/* The blanks that separate words: space, tab, newline. */
bool exec_words_blank(char c);

/* Free a vector of exec_words_split(); NULL is fine. */
void exec_words_free(char **v);

#endif /* WHR_HANDLERS_EXEC_H */
