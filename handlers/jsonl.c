/*
 * The jsonl handler (`--handler jsonl:PATH`): one JSON object per
 * notification, one line each, appended to PATH ("-": standard output).
 *
 * Lines never interleave: each is built off the lock, then written under
 * it with one write(2) on an O_APPEND descriptor. A handler returns done
 * only once its line is on disk, but concurrent handlers share the
 * fdatasync (group commit): each writer queues itself under the lock;
 * whoever finds no sync in progress becomes the syncer for everything
 * written so far, and the others wait for the sync that covers their
 * line. Standard output, pipes and terminals are not synced.
 *
 * SIGHUP reopens PATH, for logrotate: the old descriptor is synced and
 * swapped for the new one under the lock.
 */
#include "builtin.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>
#include <unistd.h>

/* A handler waiting for the sync that covers its line: on its stack,
 * queued under the lock, completed by the syncer. */
struct waiter {
	uint64_t seq;		/* its line's number */
	bool done;
	int err;		/* the sync's errno, or 0 */
	struct waiter *next;
};

struct jsonl {
	char *path;		/* as given; "-" for standard output */
	char *name;		/* "jsonl:PATH" */
	struct whr_receiver *r;	/* for the duplicate check only */
	dev_t dev;		/* the file first opened, likewise */
	ino_t ino;

	pthread_mutex_t lock;
	pthread_cond_t synced;	/* a sync ended */
	int fd;
	bool sync;		/* fdatasync works on fd */
	bool syncing;		/* a syncer is in fdatasync, unlocked */
	bool broken_line;	/* a partial line that could not be removed
				 * ends fd (a pipe): start with '\n' */
	uint64_t written;	/* lines written so far */
	struct waiter *waiters;

	struct jsonl *next;	/* in the list of registered files */
};

/* Every registered file, to refuse one given twice. */
static pthread_mutex_t registered_lock = PTHREAD_MUTEX_INITIALIZER;
static struct jsonl *registered;

/* ---- the line -------------------------------------------------------- */

struct buf {
	char *data;
	size_t len;
	size_t size;
	bool failed;
};

static void
buf_reserve(struct buf *b, size_t more)
{
	size_t size;
	char *grown;

	if (b->failed || b->len + more <= b->size)
		return;
	size = b->size != 0 ? b->size : 256;
	while (size < b->len + more)
		size *= 2;
	grown = realloc(b->data, size);
	if (grown == NULL) {
		b->failed = true;
		return;
	}
	b->data = grown;
	b->size = size;
}

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->failed)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at @p s (at most @p n bytes), or
 * 0 when it is not one. */
static size_t
utf8_length(const unsigned char *s, size_t n)
{
	size_t len;
	size_t i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* @p s as a JSON string: quotes, backslashes and control characters
 * escaped; invalid UTF-8 (which the receiver's parser does not let
 * through) becomes U+FFFD rather than an invalid line. */
static void
add_string(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	char esc[8];

	buf_add(b, "\"", 1);
	while (n > 0) {
		size_t len = utf8_length(p, n);

		if (len == 0) {
			buf_adds(b, "\\ufffd");
			len = 1;
		} else if (*p == '"') {
			buf_adds(b, "\\\"");
		} else if (*p == '\\') {
			buf_adds(b, "\\\\");
		} else if (*p == '\n') {
			buf_adds(b, "\\n");
		} else if (*p == '\r') {
			buf_adds(b, "\\r");
		} else if (*p == '\t') {
			buf_adds(b, "\\t");
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			buf_adds(b, esc);
		} else {
			buf_add(b, (const char *)p, len);
		}
		p += len;
		n -= len;
	}
	buf_add(b, "\"", 1);
}

static void
add_string_or_null(struct buf *b, const char *s)
{
	if (s == NULL)
		buf_adds(b, "null");
	else
		add_string(b, s);
}

/* The notification's JSON on one line: whitespace outside strings
 * dropped, strings copied byte for byte. The receiver's parser accepted
 * it, so it is well formed and its strings hold no raw control
 * character; one would still be escaped (same value), never written as
 * a line break. */
static void
add_compact_json(struct buf *b, const char *json, size_t len)
{
	bool in_string = false;
	bool escaped = false;
	size_t start = 0;	/* of the run of bytes not yet copied */
	size_t i;
	char esc[8];

	buf_reserve(b, len);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)json[i];

		if (in_string) {
			if (escaped) {
				escaped = false;
			} else if (c == '\\') {
				escaped = true;
			} else if (c == '"') {
				in_string = false;
			} else if (c < 0x20) {
				buf_add(b, json + start, i - start);
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				buf_adds(b, esc);
				start = i + 1;
			}
		} else if (c == '"') {
			in_string = true;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
			   c == '\f' || c == '\v') {
			buf_add(b, json + start, i - start);
			start = i + 1;
		}
	}
	buf_add(b, json + start, len - start);
}

/* "2026-11-29T08:50:32.123456Z" */
static void
add_time(struct buf *b, int64_t us)
{
	int64_t s = us / 1000000;
	int64_t frac = us % 1000000;
	time_t t;
	struct tm tm;
	char date[32];
	char text[48];

	if (frac < 0) {
		frac += 1000000;
		s--;
	}
	t = (time_t)s;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		buf_adds(b, "null");
		return;
	}
	snprintf(text, sizeof(text), "\"%s.%06dZ\"", date, (int)frac);
	buf_adds(b, text);
}

static void
build_line(struct buf *b, const struct whr_event *ev)
{
	char num[32];
	const char *json;
	size_t len;

	buf_adds(b, "{\"receiver_id\":");
	add_string(b, whr_event_receiver_id(ev));
	buf_adds(b, ",\"delivery_id\":");
	add_string_or_null(b, whr_event_delivery_id(ev));
	snprintf(num, sizeof(num), ",\"attempt\":%lld",
		 (long long)whr_event_attempt(ev));
	buf_adds(b, num);
	buf_adds(b, ",\"action\":");
	add_string_or_null(b, whr_event_action(ev));
	snprintf(num, sizeof(num), ",\"index\":%zu", whr_event_index(ev));
	buf_adds(b, num);
	snprintf(num, sizeof(num), ",\"count\":%zu", whr_event_count(ev));
	buf_adds(b, num);
	buf_adds(b, ",\"received_at\":");
	add_time(b, whr_event_received_at(ev));
	buf_adds(b, ",\"notification\":");
	json = whr_event_json(ev, &len);
	add_compact_json(b, json, len);
	buf_adds(b, "}\n");
}

/* ---- the file -------------------------------------------------------- */

/* Whether fdatasync() means anything on @p fd: not on pipes, terminals,
 * /dev/null (EINVAL), nor on file systems without it. Syncs @p fd. */
static bool
can_sync(int fd)
{
	if (fdatasync(fd) == 0)
		return true;
	return !(errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP);
}

static int
open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
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

/* Wait until line @p seq is synced: become the syncer when no sync runs,
 * else wait for one that covers it. Lock held. Returns the sync's errno
 * or 0. */
static int
wait_synced(struct jsonl *j, uint64_t seq)
{
	struct waiter w = { .seq = seq };
	uint64_t target;
	int fd;
	int err;

	w.next = j->waiters;
	j->waiters = &w;
	while (!w.done) {
		if (j->syncing) {
			pthread_cond_wait(&j->synced, &j->lock);
			continue;
		}
		j->syncing = true;
		target = j->written;
		fd = j->fd;
		pthread_mutex_unlock(&j->lock);
		err = fdatasync(fd) == 0 ? 0 : errno;
		pthread_mutex_lock(&j->lock);
		if (err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP) {
			j->sync = false;
			err = 0;
		}
		complete_waiters(j, target, err);
		j->syncing = false;
		pthread_cond_broadcast(&j->synced);
	}
	return w.err;
}

static enum whr_result
on_any(struct whr_event *ev, void *userdata)
{
	struct jsonl *j = userdata;
	struct buf line = { 0 };
	char msg[128];
	const char *what = "write to";
	int err;

	build_line(&line, ev);
	if (line.failed) {
		free(line.data);
		whr_event_set_reason(ev, "jsonl %s: out of memory", j->path);
		return WHR_RETRY;
	}
	pthread_mutex_lock(&j->lock);
	err = write_line(j, line.data, line.len);
	if (err == 0) {
		j->written++;
		if (j->sync) {
			what = "sync";
			err = wait_synced(j, j->written);
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

/* SIGHUP, on the event-loop thread: a file moved away by logrotate is
 * replaced by a new one at PATH. */
static void
on_hangup(void *userdata)
{
	struct jsonl *j = userdata;
	int fd = open_file(j->path);
	bool sync;
	int old;
	int err = 0;

	if (fd < 0) {
		whr_log_errno(WHR_LOG_WARN,
			      "handler jsonl: cannot reopen %s; still writing to the file open before",
			      j->path);
		return;
	}
	sync = can_sync(fd);
	pthread_mutex_lock(&j->lock);
	/* A syncer is using the old descriptor: let it finish. */
	while (j->syncing)
		pthread_cond_wait(&j->synced, &j->lock);
	if (j->sync && fdatasync(j->fd) < 0)
		err = errno;
	/* Every line of the old file is now as synced as it will be; a
	 * failure sends its handlers to retry, into the new file. */
	complete_waiters(j, j->written, err);
	pthread_cond_broadcast(&j->synced);
	old = j->fd;
	j->fd = fd;
	j->sync = sync;
	j->broken_line = false;
	pthread_mutex_unlock(&j->lock);
	if (err != 0) {
		errno = err;
		whr_log_errno(WHR_LOG_WARN, "handler jsonl: cannot sync %s",
			      j->path);
	}
	close(old);
	whr_log(WHR_LOG_INFO, "handler jsonl: reopened %s", j->path);
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
	if (j->fd >= 0) {
		if (j->sync)
			fdatasync(j->fd);
		close(j->fd);
	}
	pthread_cond_destroy(&j->synced);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j->name);
	free(j);
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
		j->fd = open_file(args);
		if (j->fd >= 0)
			j->sync = can_sync(j->fd);
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
