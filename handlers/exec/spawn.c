/*
 * Spawning one command for the exec handler.
 *
 * posix_spawn() rather than fork(): whr is multi-threaded, and a forked
 * copy of a process with a big heap and other threads holding locks can
 * do nothing safely but exec. The child gets descriptors 0, 1 and 2 and
 * nothing else (closefrom in the file actions), default signal
 * dispositions and an empty signal mask (whr ignores SIGPIPE; a command
 * must not inherit that), and a process group of its own, so that a time
 * limit reaches whatever it started too.
 *
 * The parent feeds standard input and drains standard error with poll()
 * on non-blocking pipes, so that neither side can block the other, and
 * checks every CHECK_INTERVAL_MS whether the child has exited: a child
 * that exits while something it started still holds its standard error
 * open is seen to exit. waitid(WNOWAIT) looks without reaping, so the
 * child's pid, and its process group id, stay ours until we are done
 * signalling the group.
 */
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How often a running child is checked for having exited. */
#define CHECK_INTERVAL_MS 50

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Moves @p *fd above the standard descriptors (whr may run with some of
 * 0, 1, 2 closed, and then a pipe could land there and be overwritten by
 * the child's file actions). */
static int
above_stdio(int *fd)
{
	int moved;

	if (*fd > STDERR_FILENO)
		return 0;
	moved = fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	if (moved < 0)
		return -errno;
	close(*fd);
	*fd = moved;
	return 0;
}

static int
make_pipe(int fds[2])
{
	int rc;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	rc = above_stdio(&fds[0]);
	if (rc == 0)
		rc = above_stdio(&fds[1]);
	if (rc < 0) {
		close_fd(&fds[0]);
		close_fd(&fds[1]);
	}
	return rc;
}

static int
set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Keeps the last EXEC_STDERR_TAIL bytes of standard error. */
static void
keep_tail(struct exec_result *out, const char *buf, size_t n)
{
	size_t drop;

	if (n >= EXEC_STDERR_TAIL) {
		memcpy(out->err, buf + n - EXEC_STDERR_TAIL, EXEC_STDERR_TAIL);
		out->err_len = EXEC_STDERR_TAIL;
		return;
	}
	if (out->err_len + n > EXEC_STDERR_TAIL) {
		drop = out->err_len + n - EXEC_STDERR_TAIL;
		memmove(out->err, out->err + drop, out->err_len - drop);
		out->err_len -= drop;
	}
	memcpy(out->err + out->err_len, buf, n);
	out->err_len += n;
}

/* Reads what standard error has now; closes it at end of file or on an
 * error. */
static void
read_stderr(int *fd, struct exec_result *out)
{
	char buf[4096];
	ssize_t n;
	int reads;

	/* Bounded: a command that writes without pause must not keep us
	 * from the clock. */
	for (reads = 0; reads < 16; reads++) {
		n = read(*fd, buf, sizeof(buf));
		if (n > 0) {
			keep_tail(out, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		close_fd(fd);
		return;
	}
}

/* Writes what the pipe takes now; closes it once all is written, or when
 * the command will not read (EPIPE: it closed its end or exited). */
static void
write_stdin(int *fd, const char *input, size_t len, size_t *written,
	    bool *broken)
{
	ssize_t n;

	while (*written < len) {
		n = write(*fd, input + *written, len - *written);
		if (n > 0) {
			*written += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0 && errno == EPIPE)
			*broken = true;
		break;
	}
	close_fd(fd);
}

/* Whether the child has exited, without reaping it. A child that is gone
 * (reaped by someone else: ECHILD) counts as exited. */
static bool
has_exited(pid_t pid)
{
	siginfo_t info;

	memset(&info, 0, sizeof(info));
	while (waitid(P_PID, (id_t)pid, &info,
		      WEXITED | WNOHANG | WNOWAIT) < 0) {
		if (errno != EINTR)
			return true;
	}
	return info.si_pid == pid;
}

double
exec_spawn_now(void)
{
	return now_s();
}

/* When whr is stopping: bring @p deadline forward to the stop's. */
struct stop_watch {
	exec_stop_fn fn;
	bool stopped;		/* the deadline is the stop's */
	double kill_grace_s;	/* between SIGTERM and SIGKILL */
};

static void
watch_stop(struct stop_watch *w, double *deadline)
{
	double term_at, grace;

	if (w == NULL || w->fn == NULL || !w->fn(&term_at, &grace))
		return;
	if (term_at < *deadline) {
		*deadline = term_at;
		w->stopped = true;
		w->kill_grace_s = grace;
	}
}

/* Waits for the child's exit until @p deadline, reading what it writes
 * to standard error meanwhile when @p err_fd is still open. */
static void
wait_exit_until(pid_t pid, double deadline, struct stop_watch *w,
		int *err_fd, struct exec_result *out)
{
	double step = 0.001;

	for (;;) {
		watch_stop(w, &deadline);
		if (*err_fd >= 0)
			read_stderr(err_fd, out);
		if (has_exited(pid) || now_s() >= deadline)
			break;
		sleep_s(step);
		if (step < CHECK_INTERVAL_MS / 1000.0)
			step *= 2;
	}
	/* What it wrote just before it exited. */
	if (*err_fd >= 0)
		read_stderr(err_fd, out);
}

/* Feeds standard input and drains standard error until the child exits
 * (true) or @p deadline (or the stop's, see @p w) passes (false). */
static bool
converse(pid_t pid, int *in_fd, int *err_fd, const char *input,
	 size_t input_len, double deadline, struct stop_watch *w,
	 struct exec_result *out)
{
	size_t written = 0;
	bool broken = false;
	sigset_t pipe_set;
	sigset_t old_mask;
	double next_check;
	bool done = false;

	/* whr ignores SIGPIPE while it runs; in case a program linking
	 * these handlers does not, a write to a command that stopped reading
	 * must not kill us: block SIGPIPE here, and take back one that the
	 * write raised. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);

	if (input_len == 0)
		close_fd(in_fd);
	next_check = now_s() + CHECK_INTERVAL_MS / 1000.0;
	while (!done) {
		struct pollfd p[2];
		int in_i = -1;
		int err_i = -1;
		nfds_t n = 0;
		double left;
		int wait_ms;
		int rc;

		watch_stop(w, &deadline);
		left = deadline - now_s();
		if (left <= 0)
			break;
		if (*in_fd < 0 && *err_fd < 0) {
			/* Both pipes are done: wait for the exit itself. */
			wait_exit_until(pid, deadline, w, err_fd, out);
			done = has_exited(pid);
			break;
		}
		if (*in_fd >= 0) {
			p[n].fd = *in_fd;
			p[n].events = POLLOUT;
			p[n].revents = 0;
			in_i = (int)n++;
		}
		if (*err_fd >= 0) {
			p[n].fd = *err_fd;
			p[n].events = POLLIN;
			p[n].revents = 0;
			err_i = (int)n++;
		}
		wait_ms = left * 1000.0 < CHECK_INTERVAL_MS
				  ? (int)(left * 1000.0) + 1
				  : CHECK_INTERVAL_MS;
		rc = poll(p, n, wait_ms);
		if (rc < 0 && errno != EINTR) {
			/* Cannot watch the pipes: stop talking to it. */
			close_fd(in_fd);
			close_fd(err_fd);
			continue;
		}
		if (rc > 0 && in_i >= 0 && p[in_i].revents != 0)
			write_stdin(in_fd, input, input_len, &written, &broken);
		if (rc > 0 && err_i >= 0 && p[err_i].revents != 0)
			read_stderr(err_fd, out);
		if (rc != 0 && now_s() < next_check)
			continue;
		next_check = now_s() + CHECK_INTERVAL_MS / 1000.0;
		if (has_exited(pid)) {
			/* Exited, while something it started may still hold
			 * its pipes open: take what is there and stop. */
			if (*err_fd >= 0)
				read_stderr(err_fd, out);
			done = true;
		}
	}

	if (broken && !sigismember(&old_mask, SIGPIPE)) {
		struct timespec zero = { 0, 0 };
		sigset_t pending;

		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return done;
}

static int
prepare_spawn(posix_spawn_file_actions_t *fa, posix_spawnattr_t *attr,
	      int in_fd, int err_fd)
{
	sigset_t set;
	int sig;
	int rc;

	rc = posix_spawn_file_actions_adddup2(fa, in_fd, STDIN_FILENO);
	if (rc == 0)
		rc = posix_spawn_file_actions_addopen(fa, STDOUT_FILENO,
						      "/dev/null", O_WRONLY,
						      0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(fa, err_fd,
						      STDERR_FILENO);
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(
			fa, STDERR_FILENO + 1);
	if (rc != 0)
		return -rc;

	/* Default dispositions for the classic signals: ignored ones are
	 * inherited through exec otherwise. */
	sigemptyset(&set);
	for (sig = 1; sig < 32; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaddset(&set, sig);
	}
	rc = posix_spawnattr_setsigdefault(attr, &set);
	sigemptyset(&set);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(attr, &set);
	if (rc == 0)
		rc = posix_spawnattr_setpgroup(attr, 0);
	if (rc == 0)
		rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP |
						    POSIX_SPAWN_SETSIGDEF |
						    POSIX_SPAWN_SETSIGMASK);
	return -rc;
}

/* Whether @p path is something exec would run: 0 or a negative errno. */
static int
check_program(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (access(path, X_OK) < 0)
		return -errno;
	return 0;
}

static enum exec_end
ended_early(const struct stop_watch *w)
{
	return w->stopped ? EXEC_STOPPED : EXEC_TIMED_OUT;
}

int
exec_spawn_run(const char *path, char *const argv[], char *const envp[],
	       const char *input, size_t input_len, double timeout_s,
	       exec_stop_fn stop, struct exec_result *out)
{
	struct stop_watch watch = { .fn = stop, .kill_grace_s = EXEC_KILL_GRACE_S };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int in_pipe[2] = { -1, -1 };
	int err_pipe[2] = { -1, -1 };
	bool fa_ready = false;
	bool attr_ready = false;
	bool exited;
	double start;
	pid_t pid;
	int status;
	int rc;

	out->end = EXEC_SPAWN_FAILED;
	out->status = 0;
	out->seconds = 0;
	out->err_len = 0;

	/* posix_spawn() reports a failed exec too, but not everywhere (not
	 * under valgrind, where the child exits 127): look first. */
	rc = check_program(path);
	if (rc == 0)
		rc = make_pipe(in_pipe);
	if (rc == 0)
		rc = make_pipe(err_pipe);
	if (rc < 0)
		goto fail;
	rc = -posix_spawn_file_actions_init(&fa);
	if (rc < 0)
		goto fail;
	fa_ready = true;
	rc = -posix_spawnattr_init(&attr);
	if (rc < 0)
		goto fail;
	attr_ready = true;
	rc = prepare_spawn(&fa, &attr, in_pipe[0], err_pipe[1]);
	if (rc < 0)
		goto fail;

	start = now_s();
	rc = -posix_spawn(&pid, path, &fa, &attr, argv, envp);
	if (rc < 0)
		goto fail;
	close_fd(&in_pipe[0]);
	close_fd(&err_pipe[1]);
	/* If these fail, poll() and write() still work, only blocking:
	 * unlikely enough (EBADF cannot happen) to go on. */
	set_nonblocking(in_pipe[1]);
	set_nonblocking(err_pipe[0]);

	exited = converse(pid, &in_pipe[1], &err_pipe[0], input, input_len,
			  start + timeout_s, &watch, out);
	close_fd(&in_pipe[1]);
	if (!exited && has_exited(pid))
		exited = true;	/* just at the deadline */
	if (!exited) {
		/* The pid is not reaped yet, so the group id is still ours.
		 * (The child itself too, should it have left the group.)
		 * Standard error stays open through the grace, and is read:
		 * a command cleaning up after SIGTERM that says so there
		 * would die of SIGPIPE instead, its cleanup undone. */
		kill(-pid, SIGTERM);
		kill(pid, SIGTERM);
		wait_exit_until(pid, now_s() + watch.kill_grace_s, NULL,
				&err_pipe[0], out);
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	close_fd(&err_pipe[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			/* Reaped by someone else: we cannot know how it
			 * ended. */
			out->status = errno;
			out->seconds = now_s() - start;
			out->end = exited ? EXEC_LOST : ended_early(&watch);
			rc = 0;
			goto done;
		}
	}
	out->seconds = now_s() - start;
	if (!exited) {
		out->end = ended_early(&watch);
	} else if (WIFEXITED(status)) {
		out->end = EXEC_EXITED;
		out->status = WEXITSTATUS(status);
	} else {
		out->end = EXEC_SIGNALED;
		out->status = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	}
	rc = 0;
	goto done;

fail:
	out->end = EXEC_SPAWN_FAILED;
	out->status = -rc;
done:
	if (attr_ready)
		posix_spawnattr_destroy(&attr);
	if (fa_ready)
		posix_spawn_file_actions_destroy(&fa);
	close_fd(&in_pipe[0]);
	close_fd(&in_pipe[1]);
	close_fd(&err_pipe[0]);
	close_fd(&err_pipe[1]);
	return rc;
}

char *
exec_resolve_program(const char *program, const char *search_path)
{
	size_t program_len = strlen(program);
	int first_error = ENOENT;
	const char *dir;
	char *path;
	int rc;

	if (program_len == 0) {
		errno = ENOENT;
		return NULL;
	}
	if (strchr(program, '/') != NULL) {
		rc = check_program(program);
		if (rc < 0) {
			errno = -rc;
			return NULL;
		}
		return strdup(program);
	}
	if (search_path == NULL)
		search_path = "/bin:/usr/bin";	/* as execvp() */
	dir = search_path;
	for (;;) {
		size_t dir_len = strcspn(dir, ":");

		/* An empty entry is the current directory. */
		path = malloc(dir_len + program_len + 3);
		if (path == NULL) {
			errno = ENOMEM;
			return NULL;
		}
		if (dir_len == 0) {
			strcpy(path, ".");
		} else {
			memcpy(path, dir, dir_len);
			path[dir_len] = '\0';
		}
		strcat(path, "/");
		strcat(path, program);
		rc = check_program(path);
		if (rc == 0)
			return path;
		free(path);
		/* As execvp(): a match we may not run is reported, unless
		 * a later one runs. */
		if ((rc == -EACCES || rc == -EISDIR) && first_error == ENOENT)
			first_error = -rc;
		if (dir[dir_len] == '\0')
			break;
		dir += dir_len + 1;
	}
	errno = first_error;
	return NULL;
}
