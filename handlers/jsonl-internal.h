/*
 * What jsonl.c (the handler and its registration) and jsonl-file.c (the
 * file: its lines written and synced, and reopened on SIGHUP) share.
 */
#ifndef WHR_HANDLERS_JSONL_INTERNAL_H
#define WHR_HANDLERS_JSONL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include <whr/whr.h>

struct waiter;		/* in jsonl-file.c */
struct retired;

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

/* Open @p path to append, creating it (mode 0640) if need be; @p created
 * tells whether this open did. The descriptor, or -1 with errno. */
int jsonl_open_file(const char *path, bool *created);
/* Whether fdatasync() works on @p fd; syncs it. */
bool jsonl_can_sync(int fd);
/* fsync directory @p dir: 0 or a positive errno. */
int jsonl_sync_dir(const char *dir);
/* Write one line to j->fd, lock held: 0 or a positive errno. */
int jsonl_write_line(struct jsonl *j, const char *data, size_t len);
/* Wait, lock held, until line @p seq is synced: 0 or the sync's errno. */
int jsonl_wait_synced(struct jsonl *j, uint64_t seq);
/* One sync round, lock held and none running; @p current: j->fd too. */
void jsonl_sync_round(struct jsonl *j, bool current);
/* The SIGHUP callback: reopen PATH, retiring the old descriptor. */
void jsonl_on_hangup(void *userdata);

#endif /* WHR_HANDLERS_JSONL_INTERNAL_H */
