/*
 * A test shim, loaded with LD_PRELOAD into the whr under test: its
 * wall clock (CLOCK_REALTIME, as clock_gettime() gives it, which is how
 * whr reads it) runs WHR_TEST_CLOCK_OFFSET_S seconds ahead, or behind
 * when negative, as on a machine whose clock is off. The monotonic
 * clocks are left alone.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

int clock_gettime(clockid_t clock, struct timespec *ts);

static long
offset_s(void)
{
	const char *v = getenv("WHR_TEST_CLOCK_OFFSET_S");

	return v != NULL ? atol(v) : 0;
}

int
clock_gettime(clockid_t clock, struct timespec *ts)
{
	int (*real)(clockid_t, struct timespec *) =
		(int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT,
							     "clock_gettime");
	int rc = real(clock, ts);

	if (rc == 0 && (clock == CLOCK_REALTIME ||
			clock == CLOCK_REALTIME_COARSE))
		ts->tv_sec += offset_s();
	return rc;
}

