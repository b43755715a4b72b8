/*
 * The jsonl handler (`--handler jsonl:PATH`): one JSON object per
 * notification, one line each, appended to PATH ("-": standard output).
 *
 * This file is the handler and its registration; the file itself (its
 * lines written, synced, and reopened on SIGHUP) is in jsonl-file.c, and
 * the line is built in jsonl-line.c.
 */
#include "builtin.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "jsonl-internal.h"
#include "jsonl-line.h"

/* Every registered file, to refuse one given twice. */
static pthread_mutex_t registered_lock = PTHREAD_MUTEX_INITIALIZER;
static struct jsonl *registered;

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	struct jsonl *j = userdata;
	struct jsonl_line line = { 0 };
	char msg[128];
	const char *what = "write to";
	int err;

	jsonl_line_build(&line, ev);
	if (line.failed) {
		free(line.data);
		whr_event_set_reason(ev, "jsonl %s: out of memory", j->path);
		return WHR_RETRY;
	}
	pthread_mutex_lock(&j->lock);
	err = jsonl_write_line(j, line.data, line.len);
	if (err == 0) {
		j->written++;
		if (j->sync) {
			what = "sync";
			err = jsonl_wait_synced(j, j->written);
		}
	}
	pthread_mutex_unlock(&j->lock);
	free(line.data);
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
	jsonl_sync_round(j, true);
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
jsonl_handler_add(struct whr_receiver *r, const char *args,
		  const struct builtin_settings *settings)
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
		j->fd = jsonl_open_file(args, &created);
		if (j->fd >= 0)
			j->sync = jsonl_can_sync(j->fd);
		/* Failing, the first line's sync tries again. */
		if (j->fd >= 0 && created && jsonl_sync_dir(j->dir) != 0)
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
	return whr_receiver_on_hangup(r, jsonl_on_hangup, j);

err:
	jsonl_free(j);
	return rc;
}
