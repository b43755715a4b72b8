/*
 * whr-test-recorder: a program that uses libwhr the way a customer's
 * would (only <whr/whr.h>, linked against the shared library), for the
 * integration tests. It registers handlers, then configures and runs the
 * receiver with its command line:
 *
 *	whr-test-recorder [receiver options]	(as `whr serve`, without
 *						the word serve)
 *
 * Exit status: 0 after a clean stop (or --help, --version), 2 for a
 * configuration error (a bad option, no secret), 1 when it cannot run
 * (a port in use) or when handlers were still running at the end of the
 * shutdown timeout (whr_receiver_run() returned -EBUSY: the recorder then
 * keeps its state for them, and waits $WHR_RECORD_EXIT_DELAY_MS before it
 * exits, so that a test can see what a handler returning late does).
 * With $WHR_RECORD_AGAIN set it then tries to add a handler and to run
 * again, and prints what those returned (both must refuse: -EBUSY).
 *
 * Handlers, in registration order:
 *	a1	Action "a1"
 *	enroll	Action "CourseEnrollment"
 *	retry	Action "RetryMe", returns WHR_RETRY with a reason
 *	reject	Action "RejectMe", returns WHR_REJECT with a reason
 *	all	every Action ("*")
 *	all2	every Action ("*")
 *
 * Each call appends one line to the file named by $WHR_RECORD (one
 * write(2) per line, O_APPEND), fields separated by '|':
 *
 *	 0 handler name
 *	 1 whr_event_action, or (none)
 *	 2 whr_event_index
 *	 3 whr_event_count
 *	 4 whr_event_delivery_id, or (none)
 *	 5 whr_event_attempt
 *	 6 whr_event_receiver_id ("" for the default id)
 *	 7 whr_event_string "Course.Id", or (none)
 *	 8 whr_event_string "Users[0].Email", or (none)
 *	 9 whr_event_array_length "Users"
 *	10 whr_event_property "p1", or (none)
 *	11 the first 40 bytes of whr_event_json
 *	12 whr_event_type "Action" (missing, null, string, integer, number,
 *	   bool, object, array)
 *	13 whr_event_type "Course"
 *	14 whr_event_integer "EnrollmentStatus": the value, or err:RC
 *	15 whr_event_bool "Course.Published": true, false, or err:RC
 *	16 whr_event_received_at
 *	17 the length whr_event_json reports
 *	18 whr_event_json, in hex (the exact bytes)
 *	19 whr_event_properties_json, in hex
 *	20... one field per path of $WHR_RECORD_PATHS (comma-separated):
 *	   TYPE=VALUE, VALUE being the string, integer, boolean or array
 *	   length read with the getter of that type (empty for others)
 *
 * Text fields escape '\\', '|', CR, LF and other control bytes as \\,
 * \x7c, \r, \n and \xHH, so a line is always one line. When the receiver
 * is freed each handler's destroy callback appends "destroy|NAME".
 *
 * When $WHR_RECORD_STOP_ACTION is set, handler "all" calls
 * whr_receiver_stop() (from the handler, as the API allows) for a
 * notification with that Action. $WHR_RECORD_RETRIES=N makes handler
 * "retry" ask for N retries of a notification, then say done (without it,
 * it always asks). $WHR_RECORD_SLEEP_MS makes handler "all" sleep that
 * long. $WHR_RECORD_TX=1 adds a transactional catch-all handler "tx"
 * (see on_tx) after the others; $WHR_RECORD_TX=first, before them (so
 * it runs in the transaction that stores the delivery, when it can).
 * For Action "TxCommit", "tx" tries to end the transaction it runs in,
 * which whr must refuse; for "TxAbort", on its first run, it makes SQLite
 * roll that transaction back, then writes. $WHR_RECORD_TX_SETUP_COMMIT
 * makes its db_setup try to prepare COMMIT (whr must refuse).
 * $WHR_RECORD_TX_SETUP_FAIL=N makes its db_setup log an error and fail
 * (-EIO) its first N calls, as a full disk would. $WHR_RECORD_TX_NO adds
 * a second transactional catch-all "txno" right after "tx", which rejects
 * Action "TxRetry".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <whr/whr.h>

#define MAX_PATHS 32
#define MAX_RETRY_COUNTS 4096

/* How many times the retry handler saw one notification. */
struct retry_count {
	char key[96];
	int runs;
};

struct recorder {
	struct whr_receiver *r;
	const char *stop_action;	/* $WHR_RECORD_STOP_ACTION, or NULL */
	int retries;		/* $WHR_RECORD_RETRIES: retry, then done; -1
				 * for always */
	int sleep_ms;		/* $WHR_RECORD_SLEEP_MS, in handler "all" */
	struct retry_count counts[MAX_RETRY_COUNTS];
	size_t n_counts;
	int fd;			/* -1: record nothing */
	pthread_mutex_t lock;
	char *paths_text;	/* a copy of $WHR_RECORD_PATHS, split */
	const char *paths[MAX_PATHS];
	size_t n_paths;
	int setup_failures;	/* $WHR_RECORD_TX_SETUP_FAIL: still to come */
};

struct handler_spec {
	const char *name;
	const char *action;
	enum whr_result result;
};

struct slot {
	struct recorder *rec;
	const struct handler_spec *spec;
};

static const struct handler_spec specs[] = {
	{ "a1", "a1", WHR_DONE },
	{ "enroll", "CourseEnrollment", WHR_DONE },
	{ "retry", "RetryMe", WHR_RETRY },
	{ "reject", "RejectMe", WHR_REJECT },
	{ "all", "*", WHR_DONE },
	{ "all2", "*", WHR_DONE },
};

#define N_SPECS (sizeof(specs) / sizeof(specs[0]))

/* ---- a line being built ---------------------------------------------- */

struct line {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;
};

static void
line_add(struct line *l, const char *s, size_t n)
{
	if (l->failed)
		return;
	if (l->len + n + 1 > l->cap) {
		size_t cap = l->cap ? l->cap : 256;
		char *grown;

		while (l->len + n + 1 > cap)
			cap *= 2;
		grown = realloc(l->buf, cap);
		if (grown == NULL) {
			l->failed = true;
			return;
		}
		l->buf = grown;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	l->buf[l->len] = '\0';
}

static void
line_printf(struct line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
line_printf(struct line *l, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		l->failed = true;
		return;
	}
	line_add(l, tmp, (size_t)n);
}

static void
line_sep(struct line *l)
{
	line_add(l, "|", 1);
}

/* @p n bytes of @p s, escaped; NULL is written as (none). */
static void
line_text_n(struct line *l, const char *s, size_t n)
{
	size_t i;

	if (s == NULL) {
		line_add(l, "(none)", 6);
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\')
			line_add(l, "\\\\", 2);
		else if (c == '\n')
			line_add(l, "\\n", 2);
		else if (c == '\r')
			line_add(l, "\\r", 2);
		else if (c == '|' || c < 0x20 || c == 0x7f)
			line_printf(l, "\\x%02x", c);
		else
			line_add(l, s + i, 1);
	}
}

static void
line_text(struct line *l, const char *s)
{
	line_text_n(l, s, s != NULL ? strlen(s) : 0);
}

static void
line_hex(struct line *l, const char *s, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		char pair[2] = {
			digits[(unsigned char)s[i] >> 4],
			digits[(unsigned char)s[i] & 0x0f],
		};

		line_add(l, pair, 2);
	}
}

static const char *
type_name(enum whr_value_type type)
{
	switch (type) {
	case WHR_VALUE_MISSING:
		return "missing";
	case WHR_VALUE_NULL:
		return "null";
	case WHR_VALUE_STRING:
		return "string";
	case WHR_VALUE_INTEGER:
		return "integer";
	case WHR_VALUE_NUMBER:
		return "number";
	case WHR_VALUE_BOOL:
		return "bool";
	case WHR_VALUE_OBJECT:
		return "object";
	case WHR_VALUE_ARRAY:
		return "array";
	}
	return "invalid";
}

static void
line_integer(struct line *l, const struct whr_event *ev, const char *path)
{
	int64_t v = 0;
	int rc = whr_event_integer(ev, path, &v);

	if (rc < 0)
		line_printf(l, "err:%d", rc);
	else
		line_printf(l, "%" PRId64, v);
}

static void
line_bool(struct line *l, const struct whr_event *ev, const char *path)
{
	bool v = false;
	int rc = whr_event_bool(ev, path, &v);

	if (rc < 0)
		line_printf(l, "err:%d", rc);
	else
		line_add(l, v ? "true" : "false", v ? 4 : 5);
}

/* TYPE=VALUE for one path of $WHR_RECORD_PATHS. */
static void
line_path(struct line *l, const struct whr_event *ev, const char *path)
{
	enum whr_value_type type = whr_event_type(ev, path);

	line_add(l, type_name(type), strlen(type_name(type)));
	line_add(l, "=", 1);
	switch (type) {
	case WHR_VALUE_STRING:
		line_text(l, whr_event_string(ev, path));
		break;
	case WHR_VALUE_INTEGER:
		line_integer(l, ev, path);
		break;
	case WHR_VALUE_BOOL:
		line_bool(l, ev, path);
		break;
	case WHR_VALUE_ARRAY:
		line_printf(l, "%zu", whr_event_array_length(ev, path));
		break;
	default:
		break;
	}
}

static void
record_event(struct recorder *rec, const char *name,
	     const struct whr_event *ev)
{
	struct line l = { 0 };
	size_t json_len = 0;
	size_t props_len = 0;
	const char *json = whr_event_json(ev, &json_len);
	const char *props = whr_event_properties_json(ev, &props_len);
	size_t i;

	line_text(&l, name);
	line_sep(&l);
	line_text(&l, whr_event_action(ev));
	line_sep(&l);
	line_printf(&l, "%zu|%zu|", whr_event_index(ev), whr_event_count(ev));
	line_text(&l, whr_event_delivery_id(ev));
	line_sep(&l);
	line_printf(&l, "%" PRId64 "|", whr_event_attempt(ev));
	line_text(&l, whr_event_receiver_id(ev));
	line_sep(&l);
	line_text(&l, whr_event_string(ev, "Course.Id"));
	line_sep(&l);
	line_text(&l, whr_event_string(ev, "Users[0].Email"));
	line_sep(&l);
	line_printf(&l, "%zu|", whr_event_array_length(ev, "Users"));
	line_text(&l, whr_event_property(ev, "p1"));
	line_sep(&l);
	line_text_n(&l, json, json_len < 40 ? json_len : 40);
	line_sep(&l);
	line_text(&l, type_name(whr_event_type(ev, "Action")));
	line_sep(&l);
	line_text(&l, type_name(whr_event_type(ev, "Course")));
	line_sep(&l);
	line_integer(&l, ev, "EnrollmentStatus");
	line_sep(&l);
	line_bool(&l, ev, "Course.Published");
	line_sep(&l);
	line_printf(&l, "%" PRId64 "|%zu|", whr_event_received_at(ev),
		    json_len);
	line_hex(&l, json, json_len);
	line_sep(&l);
	line_hex(&l, props, props_len);
	for (i = 0; i < rec->n_paths; i++) {
		line_sep(&l);
		line_path(&l, ev, rec->paths[i]);
	}
	line_add(&l, "\n", 1);

	if (l.failed) {
		whr_log(WHR_LOG_ERROR, "recorder: out of memory for a line");
	} else if (rec->fd >= 0) {
		ssize_t n;

		pthread_mutex_lock(&rec->lock);
		n = write(rec->fd, l.buf, l.len);
		pthread_mutex_unlock(&rec->lock);
		if (n < 0 || (size_t)n != l.len)
			whr_log_errno(WHR_LOG_ERROR, "recorder: cannot write");
	}
	free(l.buf);
}

/* ---- handlers -------------------------------------------------------- */

/* Count this run of the retry handler on this notification. */
static int
runs_of(struct recorder *rec, struct whr_event *ev)
{
	const char *delivery = whr_event_delivery_id(ev);
	char key[96];
	size_t i;
	int runs = 0;

	snprintf(key, sizeof(key), "%.80s#%zu",
		 delivery != NULL ? delivery : "", whr_event_index(ev));
	pthread_mutex_lock(&rec->lock);
	for (i = 0; i < rec->n_counts; i++) {
		if (strcmp(rec->counts[i].key, key) == 0)
			break;
	}
	if (i == rec->n_counts && i < MAX_RETRY_COUNTS) {
		snprintf(rec->counts[i].key, sizeof(rec->counts[i].key), "%s",
			 key);
		rec->n_counts++;
	}
	if (i < rec->n_counts)
		runs = ++rec->counts[i].runs;
	pthread_mutex_unlock(&rec->lock);
	return runs;
}

/* ---- the transactional handler (WHR_RECORD_TX=1) ------------------------
 * Counts each notification it applies in the inbox's own database, in
 * the transaction of its done mark: every count must end at exactly 1,
 * whatever crashes. For Action "TxRetry" it writes, then asks for a retry
 * on its first run: that write must be rolled back. */

static int
tx_setup(struct sqlite3 *db, void *userdata)
{
	struct recorder *rec = userdata;

	if (getenv("WHR_RECORD_TX_SETUP_COMMIT") != NULL) {
		sqlite3_stmt *st = NULL;

		/* Kept for later, it would end a batch: refused now. */
		if (sqlite3_prepare_v2(db, "COMMIT", -1, &st, NULL) ==
		    SQLITE_OK)
			whr_log(WHR_LOG_INFO, "recorder: setup COMMIT: allowed");
		else
			whr_log(WHR_LOG_INFO, "recorder: setup COMMIT: %s",
				sqlite3_errmsg(db));
		sqlite3_finalize(st);
	}
	if (rec->setup_failures > 0) {
		rec->setup_failures--;
		whr_log(WHR_LOG_ERROR, "recorder: tx cannot prepare its table");
		return -EIO;
	}
	return sqlite3_exec(db,
			    "CREATE TABLE IF NOT EXISTS recorder_applied ("
			    " delivery TEXT NOT NULL, idx INTEGER NOT NULL,"
			    " applied INTEGER NOT NULL,"
			    " PRIMARY KEY (delivery, idx))",
			    NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static enum whr_result
on_late(struct whr_event *ev, void *userdata)
{
	return WHR_DONE;
}

/* Action "TxCommit": a handler that tries to end the inbox's transaction
 * must be refused each time; it logs what it was told. */
static enum whr_result
try_to_end_the_transaction(struct whr_event *ev, struct sqlite3 *db)
{
	static const char *const tries[] = {
		"COMMIT", "ROLLBACK", "RELEASE whr_handler", "BEGIN",
	};
	size_t i;

	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		if (sqlite3_exec(db, tries[i], NULL, NULL, NULL) == SQLITE_OK) {
			whr_event_set_reason(ev, "%s worked", tries[i]);
			return WHR_REJECT;
		}
		whr_log(WHR_LOG_INFO, "recorder: %s: %s", tries[i],
			sqlite3_errmsg(db));
	}
	return WHR_DONE;
}

static enum whr_result
on_tx(struct whr_event *ev, void *userdata)
{
	struct recorder *rec = userdata;
	struct sqlite3 *db = whr_event_db(ev);
	const char *delivery = whr_event_delivery_id(ev);
	const char *action = whr_event_action(ev);
	sqlite3_stmt *st = NULL;
	int rc;

	if (db == NULL) {
		whr_event_set_reason(ev, "no database: not transactional?");
		return WHR_REJECT;
	}
	if (action != NULL && strcmp(action, "TxAbort") == 0 &&
	    runs_of(rec, ev) == 1) {
		/* ON CONFLICT ROLLBACK: SQLite ends the whole transaction
		 * itself; the write below then runs on its own, and must not
		 * commit. */
		sqlite3_exec(db, "INSERT INTO recorder_applied"
				 " VALUES ('abort', 0, 1)", NULL, NULL, NULL);
		sqlite3_exec(db, "INSERT OR ROLLBACK INTO recorder_applied"
				 " VALUES ('abort', 0, 1)", NULL, NULL, NULL);
	}
	rc = sqlite3_prepare_v2(db,
				"INSERT INTO recorder_applied VALUES (?1, ?2, 1)"
				" ON CONFLICT (delivery, idx) DO UPDATE SET"
				" applied = applied + 1",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, delivery != NULL ? delivery : "",
				  -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)whr_event_index(ev));
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		whr_event_set_reason(ev, "sqlite: %s", sqlite3_errmsg(db));
		return WHR_RETRY;
	}
	if (action != NULL && strcmp(action, "TxCommit") == 0)
		return try_to_end_the_transaction(ev, db);
	if (action != NULL && strcmp(action, "TxRetry") == 0 &&
	    runs_of(rec, ev) == 1) {
		whr_event_set_reason(ev, "first run of TxRetry");
		return WHR_RETRY;
	}
	return WHR_DONE;
}

/* After a run that left handlers running, the receiver must refuse
 * another handler and another run (both -EBUSY): say what it answered. */
static void
try_again(struct whr_receiver *r)
{
	int added = whr_on(r, "a1", on_late, NULL);
	int ran = whr_receiver_run(r);

	fprintf(stderr, "recorder: after -EBUSY: add_handler %d, run %d\n",
		added, ran);
}

static enum whr_result
on_txno(struct whr_event *ev, void *userdata)
{
	const char *action = whr_event_action(ev);

	if (action == NULL || strcmp(action, "TxRetry") != 0)
		return WHR_DONE;
	whr_event_set_reason(ev, "txno says no");
	return WHR_REJECT;
}

static int
add_tx_handler(struct whr_receiver *r, struct recorder *rec)
{
	struct whr_handler tx = {
		.name = "tx",
		.action = "*",
		.fn = on_tx,
		.userdata = rec,
		.flags = WHR_HANDLER_TRANSACTIONAL,
		.db_setup = tx_setup,
	};

	struct whr_handler txno = {
		.name = "txno",
		.action = "*",
		.fn = on_txno,
		.flags = WHR_HANDLER_TRANSACTIONAL,
	};

	if (whr_receiver_add_handler(r, &tx) < 0) {
		fprintf(stderr, "recorder: cannot add handler tx\n");
		return -1;
	}
	if (getenv("WHR_RECORD_TX_NO") != NULL &&
	    whr_receiver_add_handler(r, &txno) < 0) {
		fprintf(stderr, "recorder: cannot add handler txno\n");
		return -1;
	}
	return 0;
}

static enum whr_result
on_event(struct whr_event *ev, void *userdata)
{
	const struct slot *s = userdata;
	const char *delivery = whr_event_delivery_id(ev);

	record_event(s->rec, s->spec->name, ev);
	if (s->rec->sleep_ms > 0 && strcmp(s->spec->name, "all") == 0)
		usleep((useconds_t)s->rec->sleep_ms * 1000);
	if (s->spec->result == WHR_RETRY && s->rec->retries >= 0 &&
	    runs_of(s->rec, ev) > s->rec->retries)
		return WHR_DONE;
	if (s->rec->stop_action != NULL && strcmp(s->spec->name, "all") == 0 &&
	    whr_event_action(ev) != NULL &&
	    strcmp(whr_event_action(ev), s->rec->stop_action) == 0)
		whr_receiver_stop(s->rec->r);
	if (delivery == NULL)
		delivery = "(none)";
	if (s->spec->result == WHR_RETRY)
		whr_event_set_reason(ev,
				     "recorder asks to retry delivery %s "
				     "index %zu",
				     delivery, whr_event_index(ev));
	else if (s->spec->result == WHR_REJECT)
		whr_event_set_reason(ev,
				     "recorder rejects delivery %s index %zu",
				     delivery, whr_event_index(ev));
	return s->spec->result;
}

static void
on_destroy(void *userdata)
{
	const struct slot *s = userdata;
	char line[64];
	int n;

	if (s->rec->fd < 0)
		return;
	n = snprintf(line, sizeof(line), "destroy|%s\n", s->spec->name);
	pthread_mutex_lock(&s->rec->lock);
	if (write(s->rec->fd, line, (size_t)n) != n)
		whr_log_errno(WHR_LOG_ERROR, "recorder: cannot write");
	pthread_mutex_unlock(&s->rec->lock);
}

/* ---- set-up ---------------------------------------------------------- */

static int
recorder_open(struct recorder *rec)
{
	const char *path = getenv("WHR_RECORD");
	const char *paths = getenv("WHR_RECORD_PATHS");
	char *p;

	rec->fd = -1;
	rec->stop_action = getenv("WHR_RECORD_STOP_ACTION");
	rec->retries = getenv("WHR_RECORD_RETRIES") != NULL
			       ? atoi(getenv("WHR_RECORD_RETRIES"))
			       : -1;
	rec->setup_failures = getenv("WHR_RECORD_TX_SETUP_FAIL") != NULL
				      ? atoi(getenv("WHR_RECORD_TX_SETUP_FAIL"))
				      : 0;
	rec->sleep_ms = getenv("WHR_RECORD_SLEEP_MS") != NULL
				? atoi(getenv("WHR_RECORD_SLEEP_MS"))
				: 0;
	pthread_mutex_init(&rec->lock, NULL);
	if (path != NULL && *path != '\0') {
		rec->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			       0600);
		if (rec->fd < 0) {
			fprintf(stderr, "recorder: cannot open %s: %s\n", path,
				strerror(errno));
			return -1;
		}
	}
	if (paths != NULL && *paths != '\0') {
		rec->paths_text = strdup(paths);
		if (rec->paths_text == NULL)
			return -1;
		for (p = strtok(rec->paths_text, ","); p != NULL;
		     p = strtok(NULL, ",")) {
			if (rec->n_paths == MAX_PATHS) {
				fprintf(stderr,
					"recorder: more than %d paths\n",
					MAX_PATHS);
				return -1;
			}
			rec->paths[rec->n_paths++] = p;
		}
	}
	return 0;
}

static void
recorder_close(struct recorder *rec)
{
	if (rec->fd >= 0)
		close(rec->fd);
	free(rec->paths_text);
	pthread_mutex_destroy(&rec->lock);
}

int
main(int argc, char **argv)
{
	/* Static: a handler left running at shutdown may use them until
	 * the process exits, after main() returned. */
	static struct slot slots[N_SPECS];
	static struct recorder rec;
	struct whr_receiver *r = NULL;
	const char *tx_env;
	int status = 0;
	size_t i;
	int rc;

	if (recorder_open(&rec) < 0) {
		status = 1;
		goto out;
	}
	r = whr_receiver_new();
	if (r == NULL) {
		fprintf(stderr, "recorder: cannot create a receiver\n");
		status = 1;
		goto out;
	}
	rec.r = r;
	tx_env = getenv("WHR_RECORD_TX");
	if (tx_env != NULL && strcmp(tx_env, "first") == 0 &&
	    add_tx_handler(r, &rec) < 0) {
		status = 1;
		goto out;
	}
	for (i = 0; i < N_SPECS; i++) {
		struct whr_handler h = {
			.name = specs[i].name,
			.action = specs[i].action,
			.fn = on_event,
			.userdata = &slots[i],
			.destroy = on_destroy,
		};

		slots[i].rec = &rec;
		slots[i].spec = &specs[i];
		if (whr_receiver_add_handler(r, &h) < 0) {
			fprintf(stderr, "recorder: cannot add handler %s\n",
				specs[i].name);
			status = 1;
			goto out;
		}
	}

	if (tx_env != NULL && strcmp(tx_env, "first") != 0 &&
	    add_tx_handler(r, &rec) < 0) {
		status = 1;
		goto out;
	}

	rc = whr_receiver_configure(r, argc - 1, argv + 1);
	if (rc == 1)
		goto out;	/* --help or --version */
	if (rc < 0) {
		status = 2;
		goto out;
	}
	whr_log(WHR_LOG_INFO, "recorder: %zu handlers, libwhr %s", N_SPECS,
		whr_version());
	rc = whr_receiver_run(r);
	/* As whr serve: an incomplete configuration (no secret) is a
	 * configuration error; anything else (a port in use) a failure. */
	if (rc == -EINVAL)
		status = 2;
	else if (rc < 0)
		status = 1;
	if (rc == -EBUSY) {
		if (getenv("WHR_RECORD_AGAIN") != NULL)
			try_again(r);
		/* Handlers still run: whr_receiver_free() keeps them and
		 * their userdata, which is ours, so ours stays too. */
		whr_receiver_free(r);
		if (getenv("WHR_RECORD_EXIT_DELAY_MS") != NULL)
			usleep((useconds_t)atoi(
				getenv("WHR_RECORD_EXIT_DELAY_MS")) * 1000);
		return status;
	}

out:
	whr_receiver_free(r);
	recorder_close(&rec);
	return status;
}
