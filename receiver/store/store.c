/*
 * The parts of the storage interface that are the same for every
 * database: where the store is and which backend it takes, the
 * forwarding of each whr_store_* function and of the transaction handle
 * to the backend's table, the names of work states, freeing work.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

WHR_EXPORT const char *
whr_store_location(const char *given)
{
	const char *env = getenv("WHR_DATA_DIR");

	if (given != NULL && *given != '\0')
		return given;
	if (env != NULL && *env != '\0')
		return env;
	return STORE_DEFAULT_DIR;
}

WHR_EXPORT bool
whr_store_location_is_database(const char *location)
{
	static const char *const prefixes[] = {
		"postgresql://", "postgres://", "host=", "dbname=",
	};
	size_t i;

	for (i = 0; location != NULL && i < ARRAY_LENGTH(prefixes); i++) {
		if (strncmp(location, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	}
	return false;
}

#define LOCATION_FILE_MAX 4096

WHR_EXPORT char *
whr_store_location_read(const char *path, char *why, size_t why_size)
{
	char buf[LOCATION_FILE_MAX + 1];
	const char *start = buf;
	char *out = NULL;
	size_t len = 0;
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_size, "cannot open %s: %s", path,
			 strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > LOCATION_FILE_MAX) {
		snprintf(why, why_size, "%s is not a regular file of at most "
			 "%d bytes", path, LOCATION_FILE_MAX);
		goto out;
	}
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, why_size, "cannot read %s: %s", path,
				 strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	len = strcspn(buf, "\r\n");
	trim_span(&start, &len);
	out = xstrndup(start, len);
	if (out == NULL)
		snprintf(why, why_size, "out of memory");
	else if (!whr_store_location_is_database(out)) {
		snprintf(why, why_size, "%s holds no database URL "
			 "(postgresql://...)", path);
		explicit_bzero(out, strlen(out));
		free(out);
		out = NULL;
	}
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return out;
}

/* ---- forwarding to the backend ---------------------------------------- */

WHR_EXPORT struct whr_store *
whr_store_open(const char *location, enum store_mode mode, char *why,
	       size_t why_size)
{
	const struct store_backend *b = whr_store_location_is_database(location)
						? &store_postgresql
						: &store_sqlite;
	struct whr_store *s = NULL;
	int rc = b->open(location, mode, &s);

	if (rc == 0)
		return s;
	if (s == NULL) {
		snprintf(why, why_size, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	/* The tools' messages name the store themselves; the server's and
	 * the workers' are about the inbox. */
	if (mode == STORE_READER || mode == STORE_WRITER)
		snprintf(why, why_size, "%s", s->error);
	else
		snprintf(why, why_size, "inbox %s: %s", whr_store_name(s),
			 s->error);
	whr_store_close(s);
	errno = rc == -EPROTO ? EPROTO
		: rc == -ENOENT ? ENOENT
		: rc == -EPERM ? EPERM
		: rc == -EINVAL ? EINVAL
		: EIO;
	return NULL;
}

WHR_EXPORT void
whr_store_close(struct whr_store *s)
{
	if (s != NULL)
		s->backend->close(s);
}

WHR_EXPORT const char *
whr_store_name(const struct whr_store *s)
{
	return s->backend->name(s);
}

WHR_EXPORT const char *
whr_store_error(const struct whr_store *s)
{
	return s->error[0] != '\0' ? s->error : "no error";
}

WHR_EXPORT const char *
whr_store_cause(const struct whr_store *s)
{
	return s->cause[0] != '\0' ? s->cause : whr_store_error(s);
}

void
store_set_error(struct whr_store *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	s->cause[0] = '\0';
}

WHR_EXPORT bool
whr_store_shared(const struct whr_store *s)
{
	return s->backend->shared;
}

WHR_EXPORT struct whr_tx *
whr_store_tx(struct whr_store *s)
{
	return s->tx;
}

WHR_EXPORT int
whr_store_begin(struct whr_store *s)
{
	return s->backend->begin(s);
}

WHR_EXPORT int
whr_store_commit(struct whr_store *s)
{
	return s->backend->commit(s);
}

WHR_EXPORT void
whr_store_rollback(struct whr_store *s)
{
	s->backend->rollback(s);
}

WHR_EXPORT int
whr_store_sync_commits(struct whr_store *s, bool synced)
{
	return s->backend->sync_commits(s, synced);
}

WHR_EXPORT int
whr_store_probe(struct whr_store *s)
{
	return s->backend->probe(s);
}

WHR_EXPORT void
whr_store_pipeline(struct whr_store *s, bool on)
{
	if (s->backend->pipeline != NULL)
		s->backend->pipeline(s, on);
}

WHR_EXPORT int
whr_store_handler_begin(struct whr_store *s)
{
	return s->backend->handler_begin(s);
}

WHR_EXPORT int
whr_store_handler_end(struct whr_store *s, const char *handler, bool keep)
{
	return s->backend->handler_end(s, handler, keep);
}

WHR_EXPORT int
whr_store_ingest(struct whr_store *s, struct ingest_delivery *d)
{
	return s->backend->ingest(s, d);
}

WHR_EXPORT int
whr_store_claim(struct whr_store *s, int64_t after, int64_t limit,
		int64_t lease_us,
		int (*fn)(struct store_claim *c, void *arg), void *arg)
{
	return s->backend->claim(s, after, limit, lease_us, fn, arg);
}

WHR_EXPORT int
whr_store_claim_at_commit(struct whr_store *s, int64_t limit,
			  int64_t lease_new, int64_t lease_us)
{
	if (s->backend->claim_at_commit == NULL) {
		store_set_error(s, "this store is not shared: its claims hold no lease");
		return -ENOTSUP;
	}
	return s->backend->claim_at_commit(s, limit, lease_new, lease_us);
}

WHR_EXPORT void
whr_store_claim_window(struct whr_store *s, int64_t rows, int64_t away_us)
{
	if (s->backend->claim_window != NULL)
		s->backend->claim_window(s, rows, away_us);
}

WHR_EXPORT bool
whr_store_claim_left(struct whr_store *s)
{
	return s->backend->claim_left != NULL && s->backend->claim_left(s);
}

WHR_EXPORT int
whr_store_take_claimed(struct whr_store *s,
		       int (*fn)(struct store_claim *c, void *arg), void *arg)
{
	return s->backend->take_claimed != NULL
		? s->backend->take_claimed(s, fn, arg) : 0;
}

WHR_EXPORT int
whr_store_renew(struct whr_store *s, const int64_t *ids, size_t n,
		int64_t lease_us)
{
	return s->backend->renew(s, ids, n, lease_us);
}

WHR_EXPORT int
whr_store_own(struct whr_store *s, int64_t id)
{
	return s->backend->own != NULL ? s->backend->own(s, id) : 0;
}

WHR_EXPORT int
whr_store_listen(struct whr_store *s, void (*fn)(void *arg), void *arg)
{
	if (s->backend->listen == NULL)
		return -ENOTSUP;
	return s->backend->listen(s, fn, arg);
}

WHR_EXPORT int
whr_store_keep_leases(struct whr_store *s,
		      size_t (*held)(void *arg, int64_t *ids, size_t max),
		      void *arg, int64_t lease_us)
{
	if (s->backend->keep_leases == NULL)
		return -ENOTSUP;
	return s->backend->keep_leases(s, held, arg, lease_us);
}

WHR_EXPORT int64_t
whr_store_count_open(struct whr_store *s, int64_t after)
{
	return s->backend->count_open(s, after);
}

WHR_EXPORT int
whr_store_load(struct whr_store *s, int64_t id, struct store_work **out)
{
	return s->backend->load(s, id, out);
}

WHR_EXPORT int
whr_store_record_outcome(struct whr_store *s, int64_t id, const char *handler,
			 enum whr_result result, const char *reason,
			 int64_t now)
{
	return s->backend->record_outcome(s, id, handler, result, reason, now);
}

WHR_EXPORT int
whr_store_settle(struct whr_store *s, int64_t id, enum work_state state,
		 int64_t next_at, const char *error, int64_t now)
{
	return s->backend->settle(s, id, state, next_at, error, now);
}

WHR_EXPORT int64_t
whr_store_data_version(struct whr_store *s)
{
	return s->backend->data_version(s);
}

WHR_EXPORT int
whr_store_backup(struct whr_store *s, const char *dest, bool replace)
{
	if (s->backend->backup == NULL) {
		store_set_error(s, "this database is backed up with its own "
				"tools (PostgreSQL: pg_dump), not by whr");
		return -ENOTSUP;
	}
	return s->backend->backup(s, dest, replace);
}

WHR_EXPORT int
whr_store_purge(struct whr_store *s, int64_t before, int limit)
{
	return s->backend->purge(s, before, limit);
}

/* ---- the transaction handle (whr/tx.h) -------------------------------- */

/* The cache's key is the SQL text, which a handler prepares a few times
 * per event, and which is long (the tracker's longest is 1.3 KB): so it
 * is hashed eight bytes at a time, each word multiplied in and folded
 * down so that all its bytes reach the low bits the buckets use. A byte
 * at a time (FNV-1a) cost the tracker a sixth of its instructions. */
static size_t
hash_text(const char *s)
{
	size_t len = strlen(s);
	uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ len;
	uint64_t w;

	for (; len >= 8; s += 8, len -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, s, len);
	h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
	return (size_t)(h ^ (h >> 32));
}

struct whr_stmt *
stmt_cache_find(struct stmt_cache *c, const char *sql)
{
	size_t hash = hash_text(sql);
	struct whr_stmt *st;

	for (st = c->buckets[hash % STMT_CACHE_BUCKETS]; st != NULL;
	     st = st->next_in_bucket) {
		if (st->hash == hash && strcmp(st->sql, sql) == 0)
			return st;
	}
	return NULL;
}

int
stmt_cache_add(struct stmt_cache *c, struct whr_tx *tx, struct whr_stmt *st,
	       const char *sql)
{
	struct whr_stmt **bucket;

	st->sql = strdup(sql);
	if (st->sql == NULL)
		return -ENOMEM;
	st->tx = tx;
	st->hash = hash_text(sql);
	bucket = &c->buckets[st->hash % STMT_CACHE_BUCKETS];
	st->next_in_bucket = *bucket;
	*bucket = st;
	c->n++;
	return 0;
}

void
stmt_cache_each(struct stmt_cache *c, void (*fn)(struct whr_stmt *st))
{
	size_t i;

	for (i = 0; i < STMT_CACHE_BUCKETS; i++) {
		struct whr_stmt *st;

		for (st = c->buckets[i]; st != NULL; st = st->next_in_bucket)
			fn(st);
	}
}

void
stmt_cache_drop(struct stmt_cache *c, void (*free_stmt)(struct whr_stmt *st))
{
	size_t i;

	for (i = 0; i < STMT_CACHE_BUCKETS; i++) {
		while (c->buckets[i] != NULL) {
			struct whr_stmt *st = c->buckets[i];

			c->buckets[i] = st->next_in_bucket;
			free(st->sql);
			free_stmt(st);
		}
	}
	c->n = 0;
}

WHR_EXPORT enum whr_db
whr_tx_db(const struct whr_tx *tx)
{
	/* No handle: what the first API's handlers knew. */
	return tx != NULL ? tx->backend->db : WHR_DB_SQLITE;
}

WHR_EXPORT void *
whr_tx_native(struct whr_tx *tx)
{
	return tx != NULL ? tx->backend->native(tx) : NULL;
}

WHR_EXPORT const char *
whr_tx_error(const struct whr_tx *tx)
{
	return tx != NULL ? tx->error : "";
}

void
store_tx_set_error(struct whr_tx *tx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tx->error, sizeof(tx->error), fmt, ap);
	va_end(ap);
	snprintf(tx->store->error, sizeof(tx->store->error), "%s", tx->error);
	snprintf(tx->store->cause, sizeof(tx->store->cause), "%s", tx->error);
}

WHR_EXPORT int
whr_tx_exec(struct whr_tx *tx, const char *sql)
{
	if (tx == NULL || sql == NULL) {
		log_bug("whr_tx_exec() needs a transaction and SQL");
		return -EINVAL;
	}
	return tx->backend->exec(tx, sql);
}

WHR_EXPORT struct whr_stmt *
whr_tx_prepare(struct whr_tx *tx, const char *sql)
{
	struct whr_stmt *st;

	if (tx == NULL || sql == NULL) {
		log_bug("whr_tx_prepare() needs a transaction and SQL");
		return NULL;
	}
	st = tx->backend->prepare(tx, sql);
	if (st != NULL)
		st->stepped = false;
	return st;
}

/* Whether parameters may be bound to @p st: not once it has run, which
 * the two databases would take differently (SQLite refuses, PostgreSQL
 * would run the old bindings); the same text prepared again is the
 * same statement, reset. */
static bool
bindable(struct whr_stmt *st)
{
	if (st == NULL)
		return false;
	if (st->stepped) {
		store_tx_set_error(st->tx, "the statement has run: prepare "
				   "it again to run it again");
		return false;
	}
	return true;
}

WHR_EXPORT int
whr_stmt_bind_null(struct whr_stmt *st, int index)
{
	return bindable(st) ? st->tx->backend->bind_null(st, index) : -EINVAL;
}

WHR_EXPORT int
whr_stmt_bind_int(struct whr_stmt *st, int index, int64_t value)
{
	return bindable(st) ? st->tx->backend->bind_int(st, index, value)
			    : -EINVAL;
}

WHR_EXPORT int
whr_stmt_bind_text(struct whr_stmt *st, int index, const char *text)
{
	return bindable(st) ? st->tx->backend->bind_text(st, index, text)
			    : -EINVAL;
}

WHR_EXPORT int
whr_stmt_step(struct whr_stmt *st)
{
	if (st == NULL)
		return -EINVAL;
	st->stepped = true;
	return st->tx->backend->step(st);
}

WHR_EXPORT int
whr_stmt_run(struct whr_stmt *st)
{
	int rc;

	while ((rc = whr_stmt_step(st)) > 0)
		;
	return rc;
}

WHR_EXPORT int64_t
whr_stmt_changes(const struct whr_stmt *st)
{
	return st != NULL ? st->tx->backend->changes(st) : 0;
}

WHR_EXPORT bool
whr_stmt_is_null(struct whr_stmt *st, int column)
{
	return st == NULL || column < 0 ||
	       st->tx->backend->is_null(st, column);
}

WHR_EXPORT int64_t
whr_stmt_int(struct whr_stmt *st, int column)
{
	return st != NULL && column >= 0 ? st->tx->backend->int_at(st, column)
					 : 0;
}

WHR_EXPORT const char *
whr_stmt_text(struct whr_stmt *st, int column)
{
	return st != NULL && column >= 0 ? st->tx->backend->text(st, column)
					 : NULL;
}

static const char *const state_names[] = {
	[WORK_PENDING] = "pending",
	[WORK_RETRYING] = "retrying",
	[WORK_DONE] = "done",
	[WORK_DEAD] = "dead",
};

const char *
work_state_name(enum work_state state)
{
	return state <= WORK_DEAD ? state_names[state] : "unknown";
}

int
work_state_from_name(const char *name, enum work_state *state)
{
	size_t i;

	for (i = 0; i < ARRAY_LENGTH(state_names); i++) {
		if (name != NULL && strcmp(name, state_names[i]) == 0) {
			*state = (enum work_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- for the backends ------------------------------------------------- */

/* One key a line (a newline inside an id becomes a space: keys only group
 * work, so a merge only costs parallelism). */
char *
store_join_keys(char **keys, size_t n, int64_t seq)
{
	size_t len = 0;
	size_t i;
	char *out;
	char *p;

	if (n == 0) {
		out = malloc(32);
		if (out != NULL)
			snprintf(out, 32, "d:%lld", (long long)seq);
		return out;
	}
	for (i = 0; i < n; i++)
		len += strlen(keys[i]) + 1;
	out = malloc(len);
	if (out == NULL)
		return NULL;
	p = out;
	for (i = 0; i < n; i++) {
		size_t k = strlen(keys[i]);
		size_t j;

		for (j = 0; j < k; j++)
			*p++ = keys[i][j] == '\n' ? ' ' : keys[i][j];
		*p++ = i + 1 < n ? '\n' : '\0';
	}
	return out;
}

int
store_split_keys(const char *text, char ***keys, size_t *n)
{
	const char *p = text;
	size_t count = 1;
	size_t i;

	for (; *p != '\0'; p++)
		count += *p == '\n';
	*keys = calloc(count, sizeof(**keys));
	if (*keys == NULL)
		return -ENOMEM;
	p = text;
	for (i = 0; i < count; i++) {
		size_t len = strcspn(p, "\n");

		(*keys)[i] = xstrndup(p, len);
		if ((*keys)[i] == NULL) {
			*n = i;
			return -ENOMEM;
		}
		p += len + (p[len] == '\n');
	}
	*n = count;
	return 0;
}

void
store_free_keys(char **keys, size_t n)
{
	while (n > 0)
		free(keys[--n]);
	free(keys);
}

void
store_init(struct whr_store *s, const struct store_backend *backend,
	   struct whr_tx *tx, const struct tx_backend *tx_backend)
{
	s->backend = backend;
	s->tx = tx;
	tx->backend = tx_backend;
	tx->store = s;
}

int
store_offer_claim(int64_t id, const char *keys, int64_t next_at,
		  struct store_work *work,
		  int (*fn)(struct store_claim *c, void *arg),
		  void *arg)
{
	struct store_claim c = { .id = id, .next_at = next_at, .work = work };
	char **split = NULL;
	int rc = store_split_keys(keys, &split, &c.n_keys);

	if (rc == 0) {
		c.keys = split;
		rc = fn(&c, arg);
	}
	/* Not taken. */
	store_work_free(c.work);
	store_free_keys(split, c.n_keys);
	return rc;
}

enum whr_result
store_result_from_name(const char *name)
{
	if (name != NULL && strcmp(name, "done") == 0)
		return WHR_DONE;
	if (name != NULL && strcmp(name, "retry") == 0)
		return WHR_RETRY;
	return WHR_REJECT;
}

void
store_work_free(struct store_work *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->n_outcomes; i++) {
		free(w->outcomes[i].handler);
		free(w->outcomes[i].reason);
	}
	free(w->outcomes);
	if (w->block != NULL) {
		free(w->block);
		free(w);
		return;
	}
	free(w->receiver_id);
	free(w->delivery_id);
	free(w->action);
	free(w->json);
	free(w->properties);
	for (i = 0; i < w->n_keys; i++)
		free(w->keys[i]);
	free(w->keys);
	free(w);
}
