/*
 * The jsonl handler (`--handler jsonl:PATH`): one JSON object per
 * notification, one line each, appended to PATH ("-": standard output).
 * This file is the handler, its registration, and the file: its lines
 * written and synced, and the file reopened on SIGHUP. The line is built
 * in line.c.
 *
 * Lines never interleave: each is built off the lock (line.c), then
 * written under it with one write(2) on an O_APPEND descriptor. A handler
 * returns done only once its line is on disk, but concurrent handlers
 * share the fdatasync (group commit): each writer queues itself under the
 * lock; whoever finds no sync round in progress runs one for everything
 * written so far, and the others wait for the round that covers their
 * line. Standard output, pipes and terminals are not synced.
 *
 * SIGHUP reopens PATH, for logrotate, on the event-loop thread, which
 * must not block: the callback only opens PATH and swaps descriptors
 * under the lock. The old descriptor is retired: the next sync round
 * syncs and closes it before it completes any of its lines, and a worker
 * thread runs that round at once, so that the moved file is closed
 * without waiting for the next line. When an open creates PATH, its
 * directory is synced too (at start, or by the next round).
 */
#include "jsonl/jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <whr/whr.h>

/* A handler waiting for the sync that covers its line: on its stack,
 * queued under the lock, completed by the syncer. */
struct waiter {
	uint64_t seq;		/* its line's number */
	bool done;
	int err;		/* the sync's errno, or 0 */
	struct waiter *next;
};

/* A descriptor that a SIGHUP replaced, not yet synced and closed. */
struct retired {
	int fd;
	bool sync;		/* fdatasync works on fd */
	uint64_t upto;		/* the number of its last line */
	struct retired *next;
};

struct jsonl {
	char *path;		/* as given; "-" for standard output */
	char *name;		/* "jsonl:PATH" */
	char *dir;		/* PATH's directory */
	struct whr_receiver *r;	/* for the duplicate check only */
	dev_t dev;		/* the file first opened, likewise */
	ino_t ino;

	pthread_mutex_t lock;
	pthread_cond_t synced;	/* a sync round ended, or a SIGHUP came */
	int fd;
	unsigned int gen;	/* counts the descriptors fd has held */
	bool sync;		/* fdatasync works on fd */
	bool syncing;		/* a sync round runs, unlocked */
	bool broken_line;	/* a partial line that could not be removed
				 * ends fd (a pipe): start with '\n' */
	bool dir_unsynced;	/* PATH was created; its directory is not
				 * synced yet */
	uint64_t written;	/* lines written so far */
	struct waiter *waiters;
	struct retired *retired;

	bool worker_started;	/* the worker runs retired descriptors' */
	bool worker_wake;	/* rounds: a SIGHUP left it work */
	bool stopping;
	pthread_t worker;

	struct jsonl *next;	/* in the list of registered files */
};

/* fdatasync()'s errors that mean it does not apply to the descriptor. */
static bool
unsupported(int err)
{
	return err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP;
}

/* Whether fdatasync() means anything on @p fd: not on pipes, terminals,
 * /dev/null (EINVAL), nor on file systems without it. Syncs @p fd. */
static bool
can_sync(int fd)
{
	if (fdatasync(fd) == 0)
		return true;
	return !unsupported(errno);
}

/* Likewise without syncing, for the event-loop thread: regular files and
 * block devices. A file system without fdatasync is found by the first
 * sync. */
static bool
may_sync(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 &&
	       (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

/* Open @p path to append, creating it with mode 0640 if need be; @p
 * created tells whether this open created it (O_EXCL first). */
static int
open_file(const char *path, bool *created)
{
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC;
	int fd;
	int i;

	for (i = 0; i < 3; i++) {
		fd = open(path, flags | O_CREAT | O_EXCL, 0640);
		if (fd >= 0 || errno != EEXIST) {
			*created = fd >= 0;
			return fd;
		}
		fd = open(path, flags);
		if (fd >= 0 || errno != ENOENT) {
			*created = false;
			return fd;
		}
		/* Removed in between, or a dangling symbolic link. */
	}
	*created = true;	/* cannot tell: sync the directory anyway */
	return open(path, flags | O_CREAT, 0640);
}

/* fsync @p dir, so that a file created in it stays after a power cut.
 * Returns 0 or a positive errno. */
static int
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) < 0 && !unsupported(errno))
		err = errno;
	close(fd);
	return err;
}

/* Write all of @p data to j->fd, under the lock. On an error, a partial
 * line is cut off again (a pipe cannot be cut: the next line then starts
 * on a line of its own). Returns 0 or a positive errno. */
static int
write_line(struct jsonl *j, const char *data, size_t len)
{
	size_t done = 0;
	ssize_t n;
	off_t end;
	int err;

	if (j->broken_line) {
		n = write(j->fd, "\n", 1);
		if (n != 1)
			return n < 0 ? errno : EIO;
		j->broken_line = false;
	}
	while (done < len) {
		n = write(j->fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			goto err;
		}
		done += (size_t)n;
	}
	return 0;

err:
	if (done == 0)
		return err;
	/* O_APPEND: the offset is now the end of our partial line. */
	end = lseek(j->fd, 0, SEEK_CUR);
	if (end < 0 || ftruncate(j->fd, end - (off_t)done) < 0)
		j->broken_line = true;
	return err;
}

/* Complete the waiters of lines up to @p upto with @p err. Lock held. */
static void
complete_waiters(struct jsonl *j, uint64_t upto, int err)
{
	struct waiter **p = &j->waiters;

	while (*p != NULL) {
		struct waiter *w = *p;

		if (w->seq <= upto) {
			w->done = true;
			w->err = err;
			*p = w->next;
		} else {
			p = &w->next;
		}
	}
}

/* Sync and close the retired descriptors @p list; returns the number of
 * their last line in @p upto, and the first error or 0. Unlocked. */
static int
sync_retired(struct jsonl *j, struct retired *list, uint64_t *upto)
{
	struct retired *old;
	int first = 0;
	int err;

	*upto = 0;
	while (list != NULL) {
		old = list;
		list = old->next;
		err = 0;
		if (old->sync && fdatasync(old->fd) < 0 && !unsupported(errno))
			err = errno;
		if (err != 0) {
			whr_log_errno(WHR_LOG_WARN,
				      "handler jsonl: cannot sync the file "
				      "moved away from %s", j->path);
			if (first == 0)
				first = err;
		}
		if (old->upto > *upto)
			*upto = old->upto;
		close(old->fd);
		free(old);
	}
	return first;
}

/* After a failed fdatasync of @p fd, the last line that went to it.
 * The kernel reports a writeback error once: the lines written while
 * the sync ran may share the pages it lost, and the next sync of the
 * same descriptor would pass. So they fail with it, and are written
 * again. Lock held. */
static uint64_t
failed_through(struct jsonl *j, int fd, unsigned int gen)
{
	struct retired *r;

	if (j->gen == gen)
		return j->written;
	for (r = j->retired; r != NULL; r = r->next) {
		if (r->fd == fd)
			return r->upto;		/* retired by a SIGHUP since */
	}
	return j->written;
}

/* One sync round, the lock held and no round running: the lock is
 * dropped while it syncs the retired descriptors (then closes them), the
 * directory if PATH was created, and with @p current the descriptor in
 * use; then it completes the waiters of the lines synced. */
static void
sync_round(struct jsonl *j, bool current)
{
	struct retired *list = j->retired;
	bool dir = j->dir_unsynced;
	bool sync = current && j->sync;
	uint64_t target = j->written;
	unsigned int gen = j->gen;
	int fd = j->fd;
	uint64_t upto;
	int old_err;
	int dir_err = 0;
	int err = 0;

	/* fd stays open while unlocked: a SIGHUP only retires it, and
	 * retired descriptors are closed by the next round. */
	j->syncing = true;
	j->retired = NULL;
	j->dir_unsynced = false;
	pthread_mutex_unlock(&j->lock);
	old_err = sync_retired(j, list, &upto);
	if (dir) {
		dir_err = sync_dir(j->dir);
		errno = dir_err;
		if (dir_err != 0)
			whr_log_errno(WHR_LOG_WARN,
				      "handler jsonl: cannot sync the "
				      "directory of %s", j->path);
	}
	if (sync && fdatasync(fd) < 0)
		err = errno;
	pthread_mutex_lock(&j->lock);
	if (unsupported(err)) {
		if (j->gen == gen)
			j->sync = false;
		err = 0;
	}
	if (dir_err != 0)
		j->dir_unsynced = true;		/* the next round tries again */
	/* Lines up to @p upto were in retired descriptors (and a file
	 * created since may hold some of them). */
	complete_waiters(j, upto, old_err != 0 ? old_err : dir_err);
	if (current && err != 0)
		target = failed_through(j, fd, gen);
	if (current)
		complete_waiters(j, target, err != 0 ? err : dir_err);
	j->syncing = false;
	pthread_cond_broadcast(&j->synced);
}

/* Wait until line @p seq is synced: run a round when none runs, else
 * wait for one that covers it. Lock held. Returns the sync's errno or
 * 0. */
static int
wait_synced(struct jsonl *j, uint64_t seq)
{
	struct waiter w = { .seq = seq };
	struct waiter **p;

	w.next = j->waiters;
	j->waiters = &w;
	while (!w.done) {
		if (j->syncing)
			pthread_cond_wait(&j->synced, &j->lock);
		else
			sync_round(j, true);
	}
	/* complete_waiters() took it off the list as it set done. Making
	 * sure costs a short walk, and no list may keep the address of
	 * this frame (gcc -O3 says as much: -Wdangling-pointer). */
	for (p = &j->waiters; *p != NULL; p = &(*p)->next) {
		if (*p == &w) {
			*p = w.next;
			break;
		}
	}
	return w.err;
}

/* The worker: after a SIGHUP, a round for the retired descriptors (and
 * the new file's directory), until jsonl_free() stops it. */
static void *
worker_main(void *userdata)
{
	struct jsonl *j = userdata;

	pthread_mutex_lock(&j->lock);
	while (!j->stopping) {
		if (j->worker_wake && !j->syncing) {
			j->worker_wake = false;
			sync_round(j, false);
		} else {
			pthread_cond_wait(&j->synced, &j->lock);
		}
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

/* Start the worker, with every signal blocked, so that they go to the
 * receiver's threads. Lock held. Without it, the next line's round
 * closes the retired descriptors. */
static void
start_worker(struct jsonl *j)
{
	sigset_t all;
	sigset_t old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&j->worker, NULL, worker_main, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		whr_log(WHR_LOG_WARN,
			"handler jsonl: cannot start a thread: %s; the file "
			"moved away from %s is closed after the next line",
			strerror(err), j->path);
		return;
	}
	j->worker_started = true;
}

/* SIGHUP, on the event-loop thread, which must not block: a file moved
 * away by logrotate is replaced by a new one at PATH. Only open(2) and
 * the lock (never held across a sync): the old descriptor is retired,
 * for a round to sync and close. */
static void
on_hangup(void *userdata)
{
	struct jsonl *j = userdata;
	struct retired *old = malloc(sizeof(*old));
	bool created = false;
	int fd = -1;

	if (old != NULL)
		fd = open_file(j->path, &created);
	if (fd < 0) {
		if (old == NULL)
			errno = ENOMEM;
		whr_log_errno(WHR_LOG_WARN,
			      "handler jsonl: cannot reopen %s; still writing to the file open before",
			      j->path);
		free(old);
		return;
	}
	pthread_mutex_lock(&j->lock);
	old->fd = j->fd;
	old->sync = j->sync;
	old->upto = j->written;
	old->next = j->retired;
	j->retired = old;
	j->fd = fd;
	j->gen++;
	j->sync = may_sync(fd);
	j->broken_line = false;
	if (created)
		j->dir_unsynced = true;
	if (!j->worker_started)
		start_worker(j);
	j->worker_wake = true;
	pthread_cond_broadcast(&j->synced);
	pthread_mutex_unlock(&j->lock);
	whr_log(WHR_LOG_INFO, "handler jsonl: reopened %s", j->path);
}

/* ---- the handler ---------------------------------------------------- */

/* Every registered file, to refuse one given twice. */
static pthread_mutex_t registered_lock = PTHREAD_MUTEX_INITIALIZER;
static struct jsonl *registered;

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	struct jsonl *j = userdata;
	char msg[128];
	const char *what = "write to";
	size_t len;
	char *line;
	int err;

	line = jsonl_line(ev, &len);
	if (line == NULL) {
		whr_event_set_reason(ev, "jsonl %s: out of memory", j->path);
		return WHR_RETRY;
	}
	pthread_mutex_lock(&j->lock);
	err = write_line(j, line, len);
	if (err == 0) {
		j->written++;
		if (j->sync) {
			what = "sync";
			err = wait_synced(j, j->written);
		}
	}
	pthread_mutex_unlock(&j->lock);
	free(line);
	if (err != 0) {
		whr_event_set_reason(ev, "jsonl: cannot %s %s: %s", what,
				     j->path,
				     strerror_r(err, msg, sizeof(msg)));
		return WHR_RETRY;
	}
	return WHR_DONE;
}

/* ---- registration ---------------------------------------------------- */

static void
jsonl_free(void *userdata)
{
	struct jsonl *j = userdata;
	struct jsonl **p;

	if (j == NULL)
		return;
	pthread_mutex_lock(&registered_lock);
	for (p = &registered; *p != NULL; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			break;
		}
	}
	pthread_mutex_unlock(&registered_lock);
	if (j->worker_started) {
		pthread_mutex_lock(&j->lock);
		j->stopping = true;
		pthread_cond_broadcast(&j->synced);
		pthread_mutex_unlock(&j->lock);
		pthread_join(j->worker, NULL);
	}
	/* No handler runs any more: a last round for what is left. */
	pthread_mutex_lock(&j->lock);
	sync_round(j, true);
	pthread_mutex_unlock(&j->lock);
	if (j->fd >= 0)
		close(j->fd);
	pthread_cond_destroy(&j->synced);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j->name);
	free(j->dir);
	free(j);
}

/* PATH's directory: "." without a slash, "/" for a file in the root. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* Register @p j unless the same file is registered on @p r already. */
static bool
register_once(struct jsonl *j)
{
	struct jsonl *other;

	pthread_mutex_lock(&registered_lock);
	for (other = registered; other != NULL; other = other->next) {
		if (other->r == j->r && other->dev == j->dev &&
		    other->ino == j->ino)
			break;
	}
	if (other == NULL) {
		j->next = registered;
		registered = j;
	}
	pthread_mutex_unlock(&registered_lock);
	return other == NULL;
}

int
jsonl_handler_add(struct whr_receiver *r, const char *args)
{
	struct whr_handler h = {
		.action = "*",
		.fn = on_any,
		.destroy = jsonl_free,
	};
	struct jsonl *j;
	struct stat st;
	bool created = false;
	int rc;

	if (args == NULL || args[0] == '\0') {
		whr_log(WHR_LOG_ERROR,
			"handler jsonl needs a file: --handler jsonl:PATH "
			"(jsonl:- for standard output)");
		return -EINVAL;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->fd = -1;
	j->r = r;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->synced, NULL);
	j->path = strdup(args);
	if (j->path == NULL ||
	    asprintf(&j->name, "jsonl:%s", args) < 0) {
		j->name = NULL;
		rc = -ENOMEM;
		goto err;
	}
	if (strcmp(args, "-") == 0) {
		/* Our own descriptor, so that closing it leaves stdout be;
		 * never synced (a terminal, a pipe, a log collector). */
		j->fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		j->sync = false;
	} else {
		j->dir = dir_of(args);
		if (j->dir == NULL) {
			rc = -ENOMEM;
			goto err;
		}
		j->fd = open_file(args, &created);
		if (j->fd >= 0)
			j->sync = can_sync(j->fd);
		/* Failing, the first line's sync tries again. */
		if (j->fd >= 0 && created && sync_dir(j->dir) != 0)
			j->dir_unsynced = true;
	}
	if (j->fd < 0) {
		rc = -errno;
		whr_log_errno(WHR_LOG_ERROR, "handler jsonl: cannot open %s",
			      args);
		goto err;
	}
	if (fstat(j->fd, &st) < 0) {
		rc = -errno;
		whr_log_errno(WHR_LOG_ERROR, "handler jsonl: cannot open %s",
			      args);
		goto err;
	}
	j->dev = st.st_dev;
	j->ino = st.st_ino;
	if (!register_once(j)) {
		whr_log(WHR_LOG_ERROR,
			"handler jsonl: %s is given twice (or two names of one file)",
			args);
		rc = -EINVAL;
		goto err;
	}
	h.name = j->name;
	h.userdata = j;
	/* On failure, this calls jsonl_free(); on success, the receiver
	 * owns @p j, and frees it after its SIGHUP callbacks are done. */
	rc = whr_receiver_add_handler(r, &h);
	if (rc < 0)
		return rc;
	/* Standard output is not reopened: nothing was moved. */
	if (strcmp(args, "-") == 0)
		return 0;
	return whr_receiver_on_hangup(r, on_hangup, j);

err:
	jsonl_free(j);
	return rc;
}
