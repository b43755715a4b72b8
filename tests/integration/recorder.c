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

/* ---- a line being built ----------------------------------------------
 * In a memory stream (open_memstream), written out in one write(2) by
 * record_line(). */

/* @p n bytes of @p s, escaped; NULL is written as (none). */
static void
put_text_n(FILE *f, const char *s, size_t n)
{
	size_t i;

	if (s == NULL) {
		fputs("(none)", f);
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\')
			fputs("\\\\", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c == '|' || c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void
put_text(FILE *f, const char *s)
{
	put_text_n(f, s, s != NULL ? strlen(s) : 0);
}

static void
put_hex(FILE *f, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "%02x", (unsigned char)s[i]);
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
put_integer(FILE *f, const struct whr_event *ev, const char *path)
{
	int64_t v = 0;
	int rc = whr_event_integer(ev, path, &v);

	if (rc < 0)
		fprintf(f, "err:%d", rc);
	else
		fprintf(f, "%" PRId64, v);
}

static void
put_bool(FILE *f, const struct whr_event *ev, const char *path)
{
	bool v = false;
	int rc = whr_event_bool(ev, path, &v);

	if (rc < 0)
		fprintf(f, "err:%d", rc);
	else
		fputs(v ? "true" : "false", f);
}

/* TYPE=VALUE for one path of $WHR_RECORD_PATHS. */
static void
put_path(FILE *f, const struct whr_event *ev, const char *path)
{
	enum whr_value_type type = whr_event_type(ev, path);

	fprintf(f, "%s=", type_name(type));
	switch (type) {
	case WHR_VALUE_STRING:
		put_text(f, whr_event_string(ev, path));
		break;
	case WHR_VALUE_INTEGER:
		put_integer(f, ev, path);
		break;
	case WHR_VALUE_BOOL:
		put_bool(f, ev, path);
		break;
	case WHR_VALUE_ARRAY:
		fprintf(f, "%zu", whr_event_array_length(ev, path));
		break;
	default:
		break;
	}
}

/* A text field and the separator after it. */
static void
put_field(FILE *f, const char *s)
{
	put_text(f, s);
	fputc('|', f);
}

/* Append @p len bytes of @p text (whole lines) to the record file, in one
 * write(2), so that lines from several threads never mix. */
static void
record_line(struct recorder *rec, const char *text, size_t len)
{
	ssize_t n;

	if (rec->fd < 0)
		return;
	pthread_mutex_lock(&rec->lock);
	n = write(rec->fd, text, len);
	pthread_mutex_unlock(&rec->lock);
	if (n < 0 || (size_t)n != len)
		whr_log_errno(WHR_LOG_ERROR, "recorder: cannot write");
}

static void
record_event(struct recorder *rec, const char *name,
	     const struct whr_event *ev)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	size_t json_len = 0;
	size_t props_len = 0;
	const char *json = whr_event_json(ev, &json_len);
	const char *props = whr_event_properties_json(ev, &props_len);
	bool failed;
	size_t i;

	if (f == NULL) {
		whr_log(WHR_LOG_ERROR, "recorder: out of memory for a line");
		return;
	}
	put_field(f, name);
	put_field(f, whr_event_action(ev));
	fprintf(f, "%zu|%zu|", whr_event_index(ev), whr_event_count(ev));
	put_field(f, whr_event_delivery_id(ev));
	fprintf(f, "%" PRId64 "|", whr_event_attempt(ev));
	put_field(f, whr_event_receiver_id(ev));
	put_field(f, whr_event_string(ev, "Course.Id"));
	put_field(f, whr_event_string(ev, "Users[0].Email"));
	fprintf(f, "%zu|", whr_event_array_length(ev, "Users"));
	put_field(f, whr_event_property(ev, "p1"));
	put_text_n(f, json, json_len < 40 ? json_len : 40);
	fputc('|', f);
	put_field(f, type_name(whr_event_type(ev, "Action")));
	put_field(f, type_name(whr_event_type(ev, "Course")));
	put_integer(f, ev, "EnrollmentStatus");
	fputc('|', f);
	put_bool(f, ev, "Course.Published");
	fprintf(f, "|%" PRId64 "|%zu|", whr_event_received_at(ev), json_len);
	put_hex(f, json, json_len);
	fputc('|', f);
	put_hex(f, props, props_len);
	for (i = 0; i < rec->n_paths; i++) {
		fputc('|', f);
		put_path(f, ev, rec->paths[i]);
	}
	fputc('\n', f);

	failed = ferror(f) != 0;
	if (fclose(f) != 0 || failed)
		whr_log(WHR_LOG_ERROR, "recorder: out of memory for a line");
	else
		record_line(rec, text, len);
	free(text);
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
	int n = snprintf(line, sizeof(line), "destroy|%s\n", s->spec->name);

	record_line(s->rec, line, (size_t)n);
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

/* The receiver (rec->r), with the handlers of the table (slots[i] the
 * userdata of specs[i]) and, as $WHR_RECORD_TX says, the transactional
 * ones; 0, or -1 having said why. */
static int
recorder_receiver(struct recorder *rec, struct slot *slots)
{
	const char *tx_env = getenv("WHR_RECORD_TX");
	bool tx_first = tx_env != NULL && strcmp(tx_env, "first") == 0;
	size_t i;

	rec->r = whr_receiver_new();
	if (rec->r == NULL) {
		fprintf(stderr, "recorder: cannot create a receiver\n");
		return -1;
	}
	if (tx_first && add_tx_handler(rec->r, rec) < 0)
		return -1;
	for (i = 0; i < N_SPECS; i++) {
		struct whr_handler h = {
			.name = specs[i].name,
			.action = specs[i].action,
			.fn = on_event,
			.userdata = &slots[i],
			.destroy = on_destroy,
		};

		slots[i].rec = rec;
		slots[i].spec = &specs[i];
		if (whr_receiver_add_handler(rec->r, &h) < 0) {
			fprintf(stderr, "recorder: cannot add handler %s\n",
				specs[i].name);
			return -1;
		}
	}
	if (tx_env != NULL && !tx_first && add_tx_handler(rec->r, rec) < 0)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	/* Static: a handler left running at shutdown may use them until
	 * the process exits, after main() returned. */
	static struct slot slots[N_SPECS];
	static struct recorder rec;
	int status = 0;
	int rc;

	if (recorder_open(&rec) < 0 || recorder_receiver(&rec, slots) < 0) {
		status = 1;
		goto out;
	}
	/* 1: --help or --version, done; negative: a configuration error,
	 * logged. */
	rc = whr_receiver_configure(rec.r, argc - 1, argv + 1);
	if (rc != 0) {
		status = rc < 0 ? 2 : 0;
		goto out;
	}
	whr_log(WHR_LOG_INFO, "recorder: %zu handlers, libwhr %s", N_SPECS,
		whr_version());
	rc = whr_receiver_run(rec.r);
	/* As whr serve: an incomplete configuration (no secret) is a
	 * configuration error; anything else (a port in use) a failure. */
	if (rc == -EINVAL)
		status = 2;
	else if (rc < 0)
		status = 1;
	if (rc == -EBUSY) {
		if (getenv("WHR_RECORD_AGAIN") != NULL)
			try_again(rec.r);
		/* Handlers still run: whr_receiver_free() keeps them and
		 * their userdata, which is ours, so ours stays too. */
		whr_receiver_free(rec.r);
		if (getenv("WHR_RECORD_EXIT_DELAY_MS") != NULL)
			usleep((useconds_t)atoi(
				getenv("WHR_RECORD_EXIT_DELAY_MS")) * 1000);
		return status;
	}

out:
	whr_receiver_free(rec.r);
	recorder_close(&rec);
	return status;
}
