/*
 * completions: an example plugin for `whr serve`.
 *
 * For each learner of a CourseCompleted notification it appends one line,
 * "COURSE-ID<TAB>USER-ID<TAB>TIMESTAMP", to the file named by
 * $COMPLETIONS_FILE (when set), and logs how many completions each course
 * has had since whr started. SIGHUP reopens the file, for log rotation.
 *
 *	make
 *	COMPLETIONS_FILE=completions.tsv whr serve --plugin ./completions.so
 *
 * Delivery to a handler is at least once: after a retry or a crash a line
 * may be written twice, and the counts start at 0 with each start. For
 * exact counts, keep them in the inbox's database (docs/inbox.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <whr/whr.h>

struct course {
	struct course *next;
	unsigned long completions;
	char id[];
};

struct completions {
	pthread_mutex_t lock;	/* handlers run on several threads at once */
	const char *path;	/* $COMPLETIONS_FILE, or NULL */
	int fd;			/* open on path, or -1 */
	struct course *courses;
};

/* Add @p n completions to course @p id; returns its new total, or 0 when
 * out of memory. Called with the lock held. */
static unsigned long
count(struct completions *c, const char *id, size_t n)
{
	struct course *course;

	for (course = c->courses; course != NULL; course = course->next)
		if (strcmp(course->id, id) == 0)
			break;
	if (course == NULL) {
		course = calloc(1, sizeof(*course) + strlen(id) + 1);
		if (course == NULL)
			return 0;
		strcpy(course->id, id);
		course->next = c->courses;
		c->courses = course;
	}
	course->completions += n;
	return course->completions;
}

static enum whr_result
on_completed(struct whr_event *ev, void *userdata)
{
	struct completions *c = userdata;
	struct whr_lms365_enrollment e;
	enum whr_result result = WHR_DONE;
	unsigned long total;
	size_t i;

	if (whr_lms365_enrollment_decode(ev, &e) < 0)
		return WHR_REJECT;	/* the reason is set on the event */
	if (e.course.id == NULL) {
		whr_event_set_reason(ev, "no Course.Id");
		return WHR_REJECT;
	}

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < e.n_users && c->fd >= 0; i++) {
		char line[1024];
		int len;

		len = snprintf(line, sizeof(line), "%s\t%s\t%s\n", e.course.id,
			       e.users[i].id ? e.users[i].id : "",
			       e.timestamp.text ? e.timestamp.text : "");
		if (len < 0 || (size_t)len >= sizeof(line)) {
			whr_event_set_reason(ev, "line too long");
			result = WHR_REJECT;
			break;
		}
		/* One write per line, O_APPEND: lines never interleave. */
		if (write(c->fd, line, (size_t)len) != len) {
			whr_event_set_reason(ev, "cannot write %s: %s",
					     c->path, strerror(errno));
			result = WHR_RETRY;
			break;
		}
	}
	total = result == WHR_DONE ? count(c, e.course.id, e.n_users) : 0;
	pthread_mutex_unlock(&c->lock);

	if (result == WHR_DONE)
		whr_log(WHR_LOG_INFO, "completions: course %s: %lu so far",
			e.course.id, total);
	return result;
}

/* SIGHUP: reopen the file (after logrotate moved it). */
static void
on_hangup(void *userdata)
{
	struct completions *c = userdata;
	int fd;

	fd = open(c->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		whr_log_errno(WHR_LOG_ERROR, "completions: cannot reopen %s",
			      c->path);
		return;	/* keep writing to the old file */
	}
	pthread_mutex_lock(&c->lock);
	close(c->fd);
	c->fd = fd;
	pthread_mutex_unlock(&c->lock);
}

/* Called by whr when the receiver is freed, before the plugin is
 * unloaded. */
static void
completions_free(void *userdata)
{
	struct completions *c = userdata;

	while (c->courses != NULL) {
		struct course *next = c->courses->next;

		free(c->courses);
		c->courses = next;
	}
	if (c->fd >= 0)
		close(c->fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int
completions_init(struct whr_receiver *r)
{
	struct completions *c;
	struct whr_handler h = {
		.name = "completions",
		.action = "CourseCompleted",
		.fn = on_completed,
		.destroy = completions_free,
	};
	int rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->fd = -1;
	c->path = getenv("COMPLETIONS_FILE");
	if (c->path != NULL) {
		c->fd = open(c->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			     0644);
		if (c->fd < 0) {
			rc = -errno;
			whr_log_errno(WHR_LOG_ERROR, "completions: cannot open "
				      "COMPLETIONS_FILE %s", c->path);
			completions_free(c);
			return rc;
		}
	}

	/* From here on whr owns c: it calls completions_free(), even when
	 * the registration fails. */
	h.userdata = c;
	rc = whr_receiver_add_handler(r, &h);
	if (rc == 0 && c->path != NULL)
		rc = whr_receiver_on_hangup(r, on_hangup, c);
	return rc;
}

WHR_PLUGIN_DEFINE("completions", "1.0.0", completions_init);
