/*
 * whr register: subscribe to Learn365 events from the command line. The
 * command and its flows (register.c), the registrations API
 * (register-api.c), the secrets files whr serve reads (register-files.c).
 */
#ifndef WHR_TOOLS_REGISTER_H
#define WHR_TOOLS_REGISTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "lib/http.h"
#include "lib/json.h"

/* The secret whr register makes: 48 characters of A-Z a-z 0-9 - _
 * (6 bits each: 288 bits), which both the API (32 to 64) and whr serve
 * (32 to 128, no ',' or '=') take. */
#define REG_SECRET_LEN 48

/* What the API takes (PROTOCOL.md, "Registration API"): a Secret of 32
 * to 64 UTF-16 units. */
#define REG_API_SECRET_MIN 32
#define REG_API_SECRET_MAX 64

/* ---- the registrations API (register-api.c) ------------------------- */

struct reg_api {
	struct event_base *base;	/* borrowed */
	struct http_client *client;
	char *collection;		/* https://HOST/webhooks/
					 * registrations */
	char *user;
	char *key;			/* wiped when freed */
};

/* The outcome of a call. */
struct reg_reply {
	int status;			/* 0: no answer */
	bool maybe_done;		/* no answer after the request went:
					 * it may have been carried out */
	struct json_node *json;		/* the answer's body (JSON) */
	char why[1400];			/* a failure, for people; it may
					 * quote the API's message */
};

/* Set up calls to the API at @p api_url: https only; the collection is
 * the URL itself when its path ends in /registrations, else the URL with
 * /webhooks/registrations (Learn365's path) added. The credentials are
 * copied. 0, or -EINVAL with a reason in @p err. */
int reg_api_init(struct reg_api *a, struct event_base *base,
		 const char *api_url, const char *user, const char *key,
		 const char *cacert, int64_t timeout_us, char *err,
		 size_t err_size);
void reg_api_finish(struct reg_api *a);

/* @p method on the collection (@p id NULL) or on one registration, with
 * the JSON @p body (NULL: none). 0 on a 2xx answer (its JSON body, if
 * any, in reply->json), else -1 with reply->why: the API's 400 message
 * as it came, 401 as a key to check, 404 as no such registration, or why
 * nothing answered. reg_reply_finish() in either case. */
int reg_api_call(struct reg_api *a, const char *method, const char *id,
		 const char *body, struct reg_reply *reply);
void reg_reply_finish(struct reg_reply *r);

/* ---- registrations (register-api.c) --------------------------------- */

/* The events the API takes as Filters, in their canonical spelling; "*"
 * is all of them. NULL-terminated. */
extern const char *const reg_events[];

/* The canonical spelling of the event @p name (any case), or NULL. */
const char *reg_event(const char *name);

/* The member @p name of the object @p reg (compared without case, as
 * .NET's model binding does), or NULL. */
struct json_node *reg_member(const struct json_node *reg, const char *name);
/* Its text when it is a string, else NULL. */
const char *reg_string(const struct json_node *reg, const char *name);
/* Set member @p name (keeping the spelling of one already there) to
 * @p value, which it takes, also on failure. 0 or -ENOMEM. */
int reg_set(struct json_node *reg, const char *name, struct json_node *value);
/* Remove member @p name, if there. */
void reg_drop(struct json_node *reg, const char *name);
/* A string node, or NULL when out of memory. */
struct json_node *reg_string_node(const char *text);

/* Does the Secret of a registration fit what the API takes? Counts
 * UTF-16 units, as .NET does. */
bool reg_secret_fits_api(const char *secret);

/* ---- the secrets files (register-files.c) --------------------------- */

struct reg_file {
	char *path;			/* NULL: not named */
	const char *source;		/* where the name came from */
	bool existed;
	char *text;			/* as read ("" when missing);
					 * wiped when freed */
	struct stat st;			/* when it existed */
	bool changed;			/* written by us */
};

struct reg_files {
	struct reg_file current;	/* the secrets file */
	struct reg_file previous;	/* the previous-secrets file */
	int lock_fd;			/* the secrets file's folder,
					 * locked */
};

/* Which files whr serve reads: --secrets-file (@p current), else
 * WHR_SECRETS_FILE, else MS_WebHookReceiverSecret_Custom_FILE, else
 * DATA_DIR/secrets when it exists; and --previous-secrets-file
 * (@p previous), else WHR_PREVIOUS_SECRETS_FILE, else
 * DATA_DIR/previous-secrets with the data folder's secrets file. A file
 * not found leaves its path NULL. 0 or -ENOMEM. */
int reg_files_locate(struct reg_files *f, const char *current,
		     const char *previous, const char *data_dir);

/* Lock the secrets file's folder against another whr register, and read
 * both files (a missing one reads as empty): 0, or -1 with a reason in
 * @p err (a link, not a regular file, a folder we cannot write...). */
int reg_files_load(struct reg_files *f, char *err, size_t err_size);

/* The secret the secrets file holds for @p id, malloc'd, or NULL (none,
 * or out of memory). Free it with tool_secret_free(). */
char *reg_files_secret(const struct reg_files *f, const char *id);

/* Write @p secret for receiver @p id into the secrets file and move the
 * secret it held for @p id (if any) to the previous-secrets file, each
 * atomically (a temporary file, fsync, rename, fsync of the folder),
 * mode 0600, with the owner of the file it replaces. *moved says whether
 * an old secret was moved. 0, or -1 with a reason in @p err: then
 * nothing was changed, or reg_files_restore() undoes what was. */
int reg_files_put(struct reg_files *f, const char *id, const char *secret,
		  bool *moved, char *err, size_t err_size);

/* Put the files back as they were read (remove one we made). 0, or -1
 * with a reason in @p err. */
int reg_files_restore(struct reg_files *f, char *err, size_t err_size);

/* Unlock, wipe and free. */
void reg_files_finish(struct reg_files *f);

/* A new secret, REG_SECRET_LEN characters and a NUL, from getrandom().
 * 0 or -EIO. */
int reg_secret_new(char secret[REG_SECRET_LEN + 1]);

#endif /* WHR_TOOLS_REGISTER_H */
