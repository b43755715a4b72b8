/*
 * The exec handler: `--handler exec:ACTION=COMMAND` runs COMMAND for each
 * notification of ACTION (or of every Action, for "*"), the notification's
 * JSON on its standard input. Its exit status is the outcome: 0 done, 75
 * (EX_TEMPFAIL) retry, anything else reject.
 *
 * COMMAND is split into words as a shell would split a simple command,
 * without expanding anything (words.c). No shell runs: write
 * `sh -c '...'` to get one.
 *
 * The program is resolved at startup (PATH, unless it has a slash), so
 * that a typo stops whr rather than rejecting every notification.
 */
#include "exec/exec.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

/* Exit status that asks for a retry (sysexits.h EX_TEMPFAIL). */
#define EXIT_TEMPFAIL 75
/* How much of standard error goes into a reason. */
#define REASON_STDERR_MAX 200
/* How much of a spec is quoted in an error. */
#define SPEC_QUOTE_MAX 200

struct exec_handler {
	char *path;		/* the program, resolved at startup */
	char **argv;		/* NULL-terminated */
	char **env;		/* whr's environment without secrets */
	size_t n_env;
	double timeout_s;
	/* The registration and every running call hold a reference: a
	 * call still running when the receiver is freed (past its
	 * shutdown timeout) keeps its state. */
	atomic_uint refs;
};

/* The cap on commands running at once, across every exec handler. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int running;
	unsigned int max;	/* set by each registration */
	/* whr is stopping (on_receiver_stop): no command starts, and those
	 * running get SIGTERM at term_at, SIGKILL kill_grace_s later. */
	bool stopping;
	double term_at;
	double kill_grace_s;
} slots = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.running = 0,
	.max = 1,
};

/* Exec handlers registered so far: numbers their names. */
static unsigned int exec_handlers_added;

/* The receiver whose stop the exec handlers follow (one whr serve). */
static struct whr_receiver *stop_hooked;

/* Waits for a slot; false when whr began to stop meanwhile. */
static bool
slot_take(void)
{
	bool taken;

	pthread_mutex_lock(&slots.lock);
	while (slots.running >= slots.max && !slots.stopping)
		pthread_cond_wait(&slots.cond, &slots.lock);
	taken = !slots.stopping;
	if (taken)
		slots.running++;
	pthread_mutex_unlock(&slots.lock);
	return taken;
}

/* whr begins to stop, with @p grace_us for its handlers: commands still
 * running are stopped in time for whr to record their retry, and to
 * exit (a fifth of the time is left for that). Of the rest, the last
 * third, at most KILL_GRACE (2 s), lies between SIGTERM and SIGKILL. */
static void
on_receiver_stop(int64_t grace_us, void *userdata)
{
	double budget = (double)grace_us / 1e6 * 0.8;
	double grace = budget / 3 < EXEC_KILL_GRACE_S ? budget / 3
						       : EXEC_KILL_GRACE_S;

	pthread_mutex_lock(&slots.lock);
	slots.stopping = true;
	slots.term_at = exec_spawn_now() + budget - grace;
	slots.kill_grace_s = grace;
	pthread_cond_broadcast(&slots.cond);
	pthread_mutex_unlock(&slots.lock);
}

static bool
stop_time(double *term_at, double *kill_grace_s)
{
	bool stopping;

	pthread_mutex_lock(&slots.lock);
	stopping = slots.stopping;
	*term_at = slots.term_at;
	*kill_grace_s = slots.kill_grace_s;
	pthread_mutex_unlock(&slots.lock);
	return stopping;
}

static void
slot_give(void)
{
	pthread_mutex_lock(&slots.lock);
	slots.running--;
	pthread_cond_signal(&slots.cond);
	pthread_mutex_unlock(&slots.lock);
}

static void
exec_handler_unref(void *userdata)
{
	struct exec_handler *x = userdata;

	if (x == NULL || atomic_fetch_sub(&x->refs, 1) != 1)
		return;
	free(x->path);
	exec_words_free(x->argv);
	exec_words_free(x->env);
	free(x);
}

/* --- the environment --- */

static bool
has_prefix_ci(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && strncasecmp(s, prefix, n) == 0;
}

/* Whether a variable may hold a secret, or a way to one: the receiver's
 * secrets, the previous ones, their files, the tools' WHR_SECRET*, and
 * anything else of ours that speaks of a secret. */
static bool
is_secret_name(const char *name, size_t len)
{
	size_t i;

	if (has_prefix_ci(name, len, "MS_WebHookReceiverSecret"))
		return true;
	if (!has_prefix_ci(name, len, "WHR_"))
		return false;
	for (i = 0; i + 6 <= len; i++) {
		if (strncasecmp(name + i, "SECRET", 6) == 0)
			return true;
	}
	return false;
}

/* The variables the handler sets for each command. */
static const char *const event_vars[] = {
	"WHR_ACTION", "WHR_DELIVERY_ID", "WHR_ATTEMPT", "WHR_RECEIVER_ID",
	"WHR_NOTIFICATION_INDEX",
};
#define N_EVENT_VARS (sizeof(event_vars) / sizeof(event_vars[0]))

static bool
is_event_var(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < N_EVENT_VARS; i++) {
		if (strlen(event_vars[i]) == len &&
		    memcmp(event_vars[i], name, len) == 0)
			return true;
	}
	return false;
}

/* A copy of whr's environment without secrets and without the variables
 * the handler sets itself. */
static int
copy_environment(struct exec_handler *x)
{
	size_t n = 0;
	size_t i;

	for (i = 0; environ != NULL && environ[i] != NULL; i++)
		n++;
	x->env = calloc(n + 1, sizeof(*x->env));
	if (x->env == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t len;

		if (eq == NULL)
			continue;
		len = (size_t)(eq - environ[i]);
		if (is_secret_name(environ[i], len) ||
		    is_event_var(environ[i], len))
			continue;
		x->env[x->n_env] = strdup(environ[i]);
		if (x->env[x->n_env] == NULL)
			return -ENOMEM;
		x->n_env++;
	}
	return 0;
}

/* The environment of one command: the copy plus the event's variables.
 * Only the event's strings are allocated (free with free_event_env). */
static char **
event_env(const struct exec_handler *x, const struct whr_event *ev)
{
	const char *action = whr_event_action(ev);
	const char *delivery = whr_event_delivery_id(ev);
	char **envp;
	size_t i;
	int rc[N_EVENT_VARS];

	envp = calloc(x->n_env + N_EVENT_VARS + 1, sizeof(*envp));
	if (envp == NULL)
		return NULL;
	memcpy(envp, x->env, x->n_env * sizeof(*envp));
	rc[0] = asprintf(&envp[x->n_env + 0], "WHR_ACTION=%s",
			 action != NULL ? action : "");
	rc[1] = asprintf(&envp[x->n_env + 1], "WHR_DELIVERY_ID=%s",
			 delivery != NULL ? delivery : "");
	rc[2] = asprintf(&envp[x->n_env + 2], "WHR_ATTEMPT=%" PRId64,
			 whr_event_attempt(ev));
	rc[3] = asprintf(&envp[x->n_env + 3], "WHR_RECEIVER_ID=%s",
			 whr_event_receiver_id(ev));
	rc[4] = asprintf(&envp[x->n_env + 4], "WHR_NOTIFICATION_INDEX=%zu",
			 whr_event_index(ev));
	for (i = 0; i < N_EVENT_VARS; i++) {
		if (rc[i] < 0)
			envp[x->n_env + i] = NULL;
	}
	for (i = 0; i < N_EVENT_VARS; i++) {
		if (envp[x->n_env + i] == NULL)
			goto err;
	}
	return envp;

err:
	for (i = 0; i < N_EVENT_VARS; i++)
		free(envp[x->n_env + i]);
	free(envp);
	return NULL;
}

static void
free_event_env(const struct exec_handler *x, char **envp)
{
	size_t i;

	for (i = 0; i < N_EVENT_VARS; i++)
		free(envp[x->n_env + i]);
	free(envp);
}

/* --- outcomes --- */

static bool
is_blank_byte(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	       c == '\v';
}

/*
 * The end of standard error, for a reason: its last lines, blanks trimmed,
 * joined with " | ", at most REASON_STDERR_MAX bytes (a longer last line
 * keeps its end, after "..."), control characters as spaces. Writes ""
 * when there is nothing to say.
 */
static void
stderr_summary(const struct exec_result *res, char *out, size_t size)
{
	char text[EXEC_STDERR_TAIL + 1];
	const char *lines[EXEC_STDERR_TAIL];
	size_t n_lines = 0;
	size_t total = 0;
	size_t len = res->err_len;
	size_t start = 0;
	size_t i;
	char *p;
	char *line;
	char *save = NULL;

	out[0] = '\0';
	memcpy(text, res->err, len);
	text[len] = '\0';
	/* The kept tail may begin inside a UTF-8 sequence. */
	if (len == EXEC_STDERR_TAIL) {
		while (start < len &&
		       ((unsigned char)text[start] & 0xC0) == 0x80)
			start++;
	}
	for (p = text + start; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c != '\n' && (c < 0x20 || c == 0x7F))
			*p = ' ';
	}
	for (line = strtok_r(text + start, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end = line + strlen(line);

		while (is_blank_byte(*line))
			line++;
		while (end > line && is_blank_byte(end[-1]))
			*--end = '\0';
		if (*line != '\0')
			lines[n_lines++] = line;
	}
	if (n_lines == 0)
		return;
	/* As many of the last lines as fit. */
	for (i = n_lines; i > 0; i--) {
		size_t add = strlen(lines[i - 1]) + (i < n_lines ? 3 : 0);

		if (total + add > REASON_STDERR_MAX)
			break;
		total += add;
	}
	if (i == n_lines) {
		/* The last line alone is too long: its end. */
		const char *last = lines[n_lines - 1];
		const char *from = last + strlen(last) - REASON_STDERR_MAX;

		while (((unsigned char)*from & 0xC0) == 0x80)
			from++;
		snprintf(out, size, "...%s", from);
		return;
	}
	for (; i < n_lines; i++) {
		size_t used = strlen(out);

		snprintf(out + used, size - used, "%s%s",
			 used > 0 ? " | " : "", lines[i]);
	}
}

static const char *
signal_name(int sig)
{
	const char *abbrev = sigabbrev_np(sig);
	static _Thread_local char name[16];

	if (abbrev == NULL)
		return "unknown signal";
	snprintf(name, sizeof(name), "SIG%s", abbrev);
	return name;
}

/* Signals that end a command from outside rather than say it failed:
 * a supervisor stopping the service (systemctl stop and kill signal the
 * whole cgroup, commands included), a terminal, the OOM killer. The
 * command did nothing wrong: it runs again. A crash (SIGSEGV, SIGABRT)
 * is the command's own, and rejects. */
static bool
killed_from_outside(int sig)
{
	return sig == SIGHUP || sig == SIGINT || sig == SIGQUIT ||
	       sig == SIGTERM || sig == SIGKILL;
}

static enum whr_result
outcome(const struct exec_handler *x, struct whr_event *ev,
	const struct exec_result *res)
{
	char err[REASON_STDERR_MAX + 8];
	const char *sep;

	stderr_summary(res, err, sizeof(err));
	sep = err[0] != '\0' ? ": " : "";
	switch (res->end) {
	case EXEC_EXITED:
		if (res->status == 0)
			return WHR_DONE;
		if (res->status == EXIT_TEMPFAIL) {
			whr_event_set_reason(ev, "exit status %d (temporary "
					     "failure)%s%s", res->status, sep,
					     err);
			return WHR_RETRY;
		}
		whr_event_set_reason(ev, "exit status %d%s%s", res->status, sep,
				     err);
		return WHR_REJECT;
	case EXEC_SIGNALED:
		if (killed_from_outside(res->status)) {
			whr_event_set_reason(ev, "killed by signal %d (%s), "
					     "sent from outside%s%s",
					     res->status,
					     signal_name(res->status), sep, err);
			return WHR_RETRY;
		}
		whr_event_set_reason(ev, "killed by signal %d (%s)%s%s",
				     res->status, signal_name(res->status), sep,
				     err);
		return WHR_REJECT;
	case EXEC_TIMED_OUT:
		whr_event_set_reason(ev, "timed out after %g s (exec-timeout)"
				     "%s%s", x->timeout_s, sep, err);
		return WHR_RETRY;
	case EXEC_STOPPED:
		whr_event_set_reason(ev, "stopped after %.1f s: whr is stopping"
				     "%s%s", res->seconds, sep, err);
		return WHR_RETRY;
	case EXEC_LOST:
		whr_event_set_reason(ev, "lost the command's exit status "
				     "(reaped elsewhere: %s)",
				     strerror(res->status));
		return WHR_RETRY;
	case EXEC_SPAWN_FAILED:
	default:
		/* Arguments and environment too big for exec(2) (one value
		 * over 128 KiB: a huge Action or Id) never fit: no retry
		 * would help this notification. */
		if (res->status == E2BIG) {
			whr_event_set_reason(ev, "cannot run '%s': the event is "
					     "too large for the command's "
					     "environment (%s)", x->path,
					     strerror(res->status));
			return WHR_REJECT;
		}
		whr_event_set_reason(ev, "cannot run '%s': %s", x->path,
				     strerror(res->status));
		return WHR_RETRY;
	}
}

static enum whr_result
on_event(struct whr_event *ev, void *userdata)
{
	struct exec_handler *x = userdata;
	struct exec_result *res = NULL;
	enum whr_result result;
	const char *json;
	size_t json_len;
	char **envp;

	atomic_fetch_add(&x->refs, 1);
	res = malloc(sizeof(*res));
	envp = event_env(x, ev);
	if (res == NULL || envp == NULL) {
		whr_event_set_reason(ev, "out of memory");
		result = WHR_RETRY;
		goto out;
	}
	json = whr_event_json(ev, &json_len);
	/* Waiting for a slot does not count against the time limit. */
	if (!slot_take()) {
		whr_event_set_reason(ev, "not started: whr is stopping");
		result = WHR_RETRY;
		goto out;
	}
	exec_spawn_run(x->path, x->argv, envp, json, json_len, x->timeout_s,
		       stop_time, res);
	slot_give();
	result = outcome(x, ev, res);
	whr_log(WHR_LOG_DEBUG, "exec %s: %s after %.3f s", x->path,
		result == WHR_DONE ? "done"
				   : result == WHR_RETRY ? "retry" : "reject",
		res->seconds);

out:
	if (envp != NULL)
		free_event_env(x, envp);
	free(res);
	exec_handler_unref(x);
	return result;
}

/* SIGCHLD ignored (inherited so from whoever started whr) would have the
 * kernel reap our children before we learn how they ended. */
static void
default_sigchld(void)
{
	struct sigaction sa;

	if (sigaction(SIGCHLD, NULL, &sa) == 0 &&
	    (sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT) != 0)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGCHLD, &sa, NULL);
		whr_log(WHR_LOG_DEBUG, "handler exec: SIGCHLD was ignored; "
				       "set to default so commands can be "
				       "waited for");
	}
}

int
exec_handler_add(struct whr_receiver *r, const char *args, double timeout_s,
		 unsigned int max_running)
{
	struct whr_handler h = { 0 };
	struct exec_handler *x = NULL;
	const char *eq = args != NULL ? strchr(args, '=') : NULL;
	const char *action;
	size_t action_len;
	const char *error;
	char *action_copy = NULL;
	char *name = NULL;
	int rc;

	if (eq == NULL) {
		whr_log(WHR_LOG_ERROR, "handler exec: missing '=' in "
			"'exec:%.*s': the spec is exec:ACTION=COMMAND",
			SPEC_QUOTE_MAX, args != NULL ? args : "");
		return -EINVAL;
	}
	action = args;
	action_len = (size_t)(eq - args);
	while (action_len > 0 && exec_words_blank(*action)) {
		action++;
		action_len--;
	}
	while (action_len > 0 && exec_words_blank(action[action_len - 1]))
		action_len--;
	if (action_len == 0) {
		whr_log(WHR_LOG_ERROR, "handler exec: empty ACTION in "
			"'exec:%.*s' (an Action, or * for all)",
			SPEC_QUOTE_MAX, args);
		return -EINVAL;
	}

	x = calloc(1, sizeof(*x));
	/* The registration's reference, before anything can fail: every
	 * error path below frees x through exec_handler_unref(). */
	if (x != NULL)
		atomic_init(&x->refs, 1);
	action_copy = strndup(action, action_len);
	if (x == NULL || action_copy == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	x->timeout_s = timeout_s;
	rc = exec_words_split(eq + 1, &x->argv, &error);
	if (rc == -EINVAL) {
		whr_log(WHR_LOG_ERROR, "handler exec: %s in COMMAND of "
			"'exec:%.*s'", error, SPEC_QUOTE_MAX, args);
		goto err;
	}
	if (rc < 0)
		goto err;
	if (x->argv[0] == NULL) {
		whr_log(WHR_LOG_ERROR, "handler exec: empty COMMAND in "
			"'exec:%.*s'", SPEC_QUOTE_MAX, args);
		rc = -EINVAL;
		goto err;
	}
	x->path = exec_resolve_program(x->argv[0], getenv("PATH"));
	if (x->path == NULL) {
		rc = -errno;
		if (rc == -ENOMEM)
			goto err;
		whr_log(WHR_LOG_ERROR, "handler exec: cannot run '%s': %s",
			x->argv[0], strerror(-rc));
		rc = -EINVAL;
		goto err;
	}
	rc = copy_environment(x);
	if (rc < 0)
		goto err;
	if (asprintf(&name, "exec:%s:%u", action_copy,
		     exec_handlers_added + 1) < 0) {
		name = NULL;
		rc = -ENOMEM;
		goto err;
	}

	if (stop_hooked != r) {
		rc = whr_receiver_on_stop(r, on_receiver_stop, NULL);
		if (rc < 0)
			goto err;
		stop_hooked = r;
	}
	pthread_mutex_lock(&slots.lock);
	slots.max = max_running;
	if (slots.max == 0)
		slots.max = 1;
	pthread_mutex_unlock(&slots.lock);
	default_sigchld();

	h.name = name;
	h.action = action_copy;
	h.fn = on_event;
	h.userdata = x;
	h.destroy = exec_handler_unref;
	/* whr_receiver_add_handler copies the strings and calls destroy
	 * itself when it fails. */
	rc = whr_receiver_add_handler(r, &h);
	if (rc == 0) {
		exec_handlers_added++;
		whr_log(WHR_LOG_DEBUG, "handler %s runs %s", name, x->path);
	}
	free(name);
	free(action_copy);
	return rc;

err:
	if (rc == -ENOMEM)
		whr_log(WHR_LOG_ERROR, "handler exec: out of memory");
	free(name);
	free(action_copy);
	exec_handler_unref(x);
	return rc;
}
