/*
 * whr register: the secrets files whr serve reads. A change replaces a
 * file whole and atomically (a temporary file in its folder, written and
 * fsync'd, renamed over it, the folder fsync'd): whr serve, which reads
 * it again when it changes, sees the old file or the new one, never a
 * part. The files keep their owner (whr serve may run as another user
 * than root, who runs this) and are made 0600; put back, they get their
 * mode back too.
 */
#include "register.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/secrets-text.h"

/* whr serve reads at most this much of a secrets file. */
#define SECRETS_FILE_MAX (1024 * 1024)

int
reg_secret_new(char secret[REG_SECRET_LEN + 1])
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[REG_SECRET_LEN];
	size_t got = 0;
	size_t i;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		got += (size_t)n;
	}
	/* 64 symbols: the low 6 bits of each byte, without bias */
	for (i = 0; i < REG_SECRET_LEN; i++)
		secret[i] = alphabet[raw[i] & 63];
	secret[REG_SECRET_LEN] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

/* ---- where the files are --------------------------------------------- */

static int
name_file(struct reg_file *f, const char *path, const char *source)
{
	f->path = strdup(path);
	f->source = source;
	return f->path != NULL ? 0 : -ENOMEM;
}

int
reg_files_locate(struct reg_files *f, const char *current,
		 const char *previous, const char *data_dir)
{
	const char *env;
	char *in_dir = NULL;
	bool defaulted = false;
	int rc = 0;

	memset(f, 0, sizeof(*f));
	f->lock_fd = -1;
	if (current != NULL) {
		rc = name_file(&f->current, current, "--secrets-file");
	} else if ((env = getenv("WHR_SECRETS_FILE")) != NULL &&
		   env[0] != '\0') {
		rc = name_file(&f->current, env, "WHR_SECRETS_FILE");
	} else if ((env = getenv("MS_WebHookReceiverSecret_Custom_FILE")) !=
		   NULL && env[0] != '\0') {
		rc = name_file(&f->current, env,
			       "MS_WebHookReceiverSecret_Custom_FILE");
	} else if (data_dir != NULL) {
		if (asprintf(&in_dir, "%s/secrets", data_dir) < 0)
			return -ENOMEM;
		if (access(in_dir, F_OK) == 0) {
			rc = name_file(&f->current, in_dir,
				       "the data folder's secrets file");
			defaulted = true;
		}
		free(in_dir);
	}
	if (rc < 0)
		return rc;
	if (previous != NULL) {
		rc = name_file(&f->previous, previous,
			       "--previous-secrets-file");
	} else if ((env = getenv("WHR_PREVIOUS_SECRETS_FILE")) != NULL &&
		   env[0] != '\0') {
		rc = name_file(&f->previous, env, "WHR_PREVIOUS_SECRETS_FILE");
	} else if (defaulted) {
		if (asprintf(&in_dir, "%s/previous-secrets", data_dir) < 0)
			return -ENOMEM;
		rc = name_file(&f->previous, in_dir,
			       "the data folder's previous-secrets file");
		free(in_dir);
	}
	return rc;
}

/* ---- reading ---------------------------------------------------------- */

static int
read_file(struct reg_file *f, char *err, size_t err_size)
{
	char *buf = NULL;
	size_t len = 0;
	int fd;

	if (lstat(f->path, &f->st) < 0) {
		if (errno != ENOENT) {
			snprintf(err, err_size, "%s: %s", f->path,
				 strerror(errno));
			return -1;
		}
		f->text = strdup("");
		return f->text != NULL ? 0 : -1;
	}
	if (S_ISLNK(f->st.st_mode)) {
		snprintf(err, err_size, "%s is a symbolic link: name the file "
			 "it points to (whr register replaces the file, which "
			 "would replace the link)", f->path);
		return -1;
	}
	if (!S_ISREG(f->st.st_mode) || f->st.st_size > SECRETS_FILE_MAX) {
		snprintf(err, err_size, "%s is not a regular file of at most "
			 "1 MiB", f->path);
		return -1;
	}
	fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	buf = malloc((size_t)f->st.st_size + 1);
	if (fd < 0 || buf == NULL) {
		snprintf(err, err_size, "cannot read %s: %s", f->path,
			 fd < 0 ? strerror(errno) : "out of memory");
		goto err;
	}
	while (len < (size_t)f->st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)f->st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, err_size, "cannot read %s: %s", f->path,
				 strerror(errno));
			goto err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		snprintf(err, err_size, "%s holds a NUL byte", f->path);
		goto err;
	}
	close(fd);
	f->existed = true;
	f->text = buf;
	return 0;
err:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The folder of @p path, malloc'd. */
static char *
folder_of(const char *path)
{
	char *copy = strdup(path);
	char *dir;

	if (copy == NULL)
		return NULL;
	dir = strdup(dirname(copy));
	free(copy);
	return dir;
}

int
reg_files_load(struct reg_files *f, char *err, size_t err_size)
{
	char *dir = folder_of(f->current.path);
	int rc = -1;

	if (dir == NULL) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	f->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->lock_fd < 0) {
		snprintf(err, err_size, "cannot open the folder %s: %s", dir,
			 strerror(errno));
		goto out;
	}
	if (flock(f->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, err_size, "another whr register is changing the "
			 "secrets in %s: try again when it is done", dir);
		goto out;
	}
	if (access(dir, W_OK) < 0) {
		snprintf(err, err_size, "cannot write into the folder %s "
			 "(whr register replaces the file): %s", dir,
			 strerror(errno));
		goto out;
	}
	if (read_file(&f->current, err, err_size) < 0)
		goto out;
	if (f->previous.path != NULL &&
	    read_file(&f->previous, err, err_size) < 0)
		goto out;
	rc = 0;
out:
	free(dir);
	return rc;
}

char *
reg_files_secret(const struct reg_files *f, const char *id)
{
	struct secrets_entry e;
	char err[160];

	if (f->current.text == NULL ||
	    secrets_text_find(f->current.text, id, &e, err, sizeof(err)) != 1)
		return NULL;
	return strndup(e.secret, e.secret_len);
}

/* ---- writing ---------------------------------------------------------- */

static int
sync_folder(const char *dir, char *err, size_t err_size)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0) {
		snprintf(err, err_size, "cannot sync the folder %s: %s", dir,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Replace @p path with @p text, mode @p mode, owned as @p owner (when
 * not NULL and we may). */
static int
write_atomically(const char *path, const char *text, const struct stat *owner,
		 mode_t mode, char *err, size_t err_size)
{
	char *dir = folder_of(path);
	char *tmp = NULL;
	size_t len = strlen(text);
	size_t done = 0;
	int fd = -1;
	int rc = -1;

	if (dir == NULL || asprintf(&tmp, "%s/.whr-register.XXXXXX", dir) < 0) {
		tmp = NULL;
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);		/* made 0600 */
	if (fd < 0) {
		snprintf(err, err_size, "cannot make a file in %s: %s", dir,
			 strerror(errno));
		goto out;
	}
	if (owner != NULL && geteuid() == 0 &&
	    fchown(fd, owner->st_uid, owner->st_gid) < 0) {
		snprintf(err, err_size, "cannot give %s its owner: %s", path,
			 strerror(errno));
		goto out;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, err_size, "cannot write %s: %s", tmp,
				 strerror(errno));
			goto out;
		}
		done += (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		snprintf(err, err_size, "cannot write %s: %s", tmp,
			 strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) < 0) {
		snprintf(err, err_size, "cannot replace %s: %s", path,
			 strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	rc = sync_folder(dir, err, err_size);
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(dir);
	return rc;
}

/* Set @p id's entry of @p f to @p secret. */
static int
put_entry(struct reg_file *f, const struct stat *owner, const char *id,
	  const char *secret, char *err, size_t err_size)
{
	char why[200];
	char *text = secrets_text_set(f->text, id, secret, why, sizeof(why));
	int rc;

	if (text == NULL) {
		snprintf(err, err_size, "%s: %s", f->path, why);
		return -1;
	}
	rc = write_atomically(f->path, text, owner, 0600, err, err_size);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	if (rc == 0)
		f->changed = true;
	return rc;
}

int
reg_files_put(struct reg_files *f, const char *id, const char *secret,
	      bool *moved, char *err, size_t err_size)
{
	const struct stat *owner = f->current.existed ? &f->current.st : NULL;
	char *old = reg_files_secret(f, id);
	char why[200];
	struct secrets_entry e;
	int rc = -1;

	*moved = false;
	/* Both texts are checked before either file is written. */
	if (secrets_text_find(f->current.text, id, &e, why, sizeof(why)) < 0) {
		snprintf(err, err_size, "%s: %s", f->current.path, why);
		goto out;
	}
	if (old != NULL && f->previous.path == NULL) {
		snprintf(err, err_size, "the secret %s holds for this receiver "
			 "must be kept as the previous one: name the "
			 "previous-secrets file whr serve reads "
			 "(--previous-secrets-file or "
			 "WHR_PREVIOUS_SECRETS_FILE)", f->current.path);
		goto out;
	}
	if (old != NULL &&
	    secrets_text_find(f->previous.text, id, &e, why, sizeof(why)) < 0) {
		snprintf(err, err_size, "%s: %s", f->previous.path, why);
		goto out;
	}
	/* the previous one first: while whr serve reads the two files one
	 * after the other, the old secret is never in neither */
	if (old != NULL) {
		if (put_entry(&f->previous, f->previous.existed ?
			      &f->previous.st : owner, id, old, err,
			      err_size) < 0)
			goto out;
		*moved = true;
	}
	rc = put_entry(&f->current, owner, id, secret, err, err_size);
out:
	if (old != NULL) {
		OPENSSL_cleanse(old, strlen(old));
		free(old);
	}
	return rc;
}

static int
restore_file(struct reg_file *f, char *err, size_t err_size)
{
	char *dir;
	int rc;

	if (!f->changed)
		return 0;
	if (f->existed) {
		rc = write_atomically(f->path, f->text, &f->st,
				      f->st.st_mode & 07777, err, err_size);
	} else {
		dir = folder_of(f->path);
		rc = dir != NULL && unlink(f->path) == 0 ? 0 : -1;
		if (rc < 0)
			snprintf(err, err_size, "cannot remove %s: %s", f->path,
				 dir == NULL ? "out of memory" :
				 strerror(errno));
		else
			rc = sync_folder(dir, err, err_size);
		free(dir);
	}
	if (rc == 0)
		f->changed = false;
	return rc;
}

int
reg_files_restore(struct reg_files *f, char *err, size_t err_size)
{
	/* the secrets file first: the old secret is back where whr serve
	 * looks first before it leaves the previous-secrets file */
	int rc = restore_file(&f->current, err, err_size);

	if (restore_file(&f->previous, err, err_size) < 0)
		rc = -1;
	return rc;
}

static void
file_finish(struct reg_file *f)
{
	if (f->text != NULL) {
		OPENSSL_cleanse(f->text, strlen(f->text));
		free(f->text);
	}
	free(f->path);
	memset(f, 0, sizeof(*f));
}

void
reg_files_finish(struct reg_files *f)
{
	if (f->lock_fd >= 0)
		close(f->lock_fd);
	file_finish(&f->current);
	file_finish(&f->previous);
	f->lock_fd = -1;
}
