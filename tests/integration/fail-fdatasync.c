/*
 * A test shim, loaded with LD_PRELOAD into the whr under test: makes one
 * fdatasync() of a chosen file fail with EIO, after a delay, as a disk
 * whose writeback fails would. The kernel reports such an error once,
 * which is what the test around it is about.
 *
 *   WHR_FAIL_FDATASYNC_PATH      part of the file's path to match
 *   WHR_FAIL_FDATASYNC_CALL      which matching call fails (1 = the first)
 *   WHR_FAIL_FDATASYNC_DELAY_MS  how long that call takes first
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int fdatasync(int fd);

static atomic_int matching_calls;

static int
env_int(const char *name)
{
	const char *v = getenv(name);

	return v != NULL ? atoi(v) : 0;
}

static int
matches(int fd)
{
	const char *want = getenv("WHR_FAIL_FDATASYNC_PATH");
	char link[64], target[4096];
	ssize_t n;

	if (want == NULL || *want == '\0')
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	return strstr(target, want) != NULL;
}

int
fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	if (matches(fd) &&
	    atomic_fetch_add(&matching_calls, 1) + 1 ==
		    env_int("WHR_FAIL_FDATASYNC_CALL")) {
		int ms = env_int("WHR_FAIL_FDATASYNC_DELAY_MS");
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		errno = EIO;
		return -1;
	}
	return real(fd);
}
