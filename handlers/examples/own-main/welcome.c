/*
 * welcome: an example program with its own main() that links libwhr.
 *
 * It receives Learn365's deliveries as `whr serve` does and prints one
 * line for each learner enrolled into a course:
 *
 *	make
 *	MS_WebHookReceiverSecret_Custom=... ./welcome --listen 127.0.0.1:8080
 *
 * It takes the receiver's settings from the environment and the command
 * line (./welcome --help lists them). Exit status: 0 after SIGTERM or
 * SIGINT, 2 for a configuration error, 1 when it cannot run.
 */
#include <errno.h>
#include <stdio.h>

#include <whr/whr.h>

/* Runs on a worker thread, once (at least) per CourseEnrollment. */
static enum whr_result
on_enrollment(struct whr_event *ev, void *userdata)
{
	struct whr_lms365_enrollment e;
	size_t i;

	(void)userdata;	/* none was given to whr_on() */
	if (whr_lms365_enrollment_decode(ev, &e) < 0)
		return WHR_REJECT;	/* the reason is set on the event */
	for (i = 0; i < e.n_users; i++)	/* one printf per line: atomic */
		printf("welcome %s to %s\n",
		       e.users[i].email ? e.users[i].email : "(no email)",
		       e.course.title ? e.course.title : "(untitled)");
	fflush(stdout);
	return WHR_DONE;
}

int
main(int argc, char **argv)
{
	struct whr_receiver *r;
	int status = 0;
	int rc;

	r = whr_receiver_new();
	if (r == NULL) {
		fprintf(stderr, "welcome: out of memory\n");
		return 1;
	}
	if (whr_on(r, "CourseEnrollment", on_enrollment, NULL) < 0) {
		status = 1;
		goto out;
	}
	rc = whr_receiver_configure(r, argc - 1, argv + 1);
	if (rc == 1)
		goto out;	/* --help or --version */
	if (rc < 0) {
		status = 2;	/* the error is logged */
		goto out;
	}
	rc = whr_receiver_run(r);
	if (rc == -EINVAL)
		status = 2;	/* incomplete configuration, e.g. no secret */
	else if (rc < 0)
		status = 1;	/* e.g. the port is in use */
out:
	whr_receiver_free(r);
	return status;
}
