/*
 * The metrics page: its families and their values after known updates,
 * labels from bounded sets only (unknown receiver ids, Actions without a
 * handler), escaping, and the histograms' buckets.
 */
#include <string.h>

#include "handler.h"
#include "metrics.h"
#include "test-common.h"

static enum whr_result
nothing(struct whr_event *ev, void *userdata)
{
	return WHR_DONE;
}

static void
registry(struct handler_registry *reg)
{
	static const struct whr_handler handlers[] = {
		{ .name = "tracker", .action = "*", .fn = nothing },
		{ .name = "mail \"x\"", .action = "CourseCompleted",
		  .fn = nothing },
	};
	size_t i;

	memset(reg, 0, sizeof(*reg));
	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		ck_assert_int_eq(handler_registry_add(reg, &handlers[i]), 0);
}

/* Metrics for registry() into @p reg, and receiver ids @p ids. */
static struct metrics *
start(struct handler_registry *reg, const char *const *ids, size_t n_ids)
{
	struct metrics *m;

	registry(reg);
	m = metrics_new(reg, ids, n_ids);
	ck_assert_ptr_nonnull(m);
	return m;
}

/* The page has @p line as one whole line. */
static void
has_line(const char *page, const char *line)
{
	const char *p = page;
	size_t n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == page || p[-1] == '\n') && p[n] == '\n')
			return;
		p += n;
	}
	ck_abort_msg("no line \"%s\" in:\n%s", line, page);
}

START_TEST(metrics_counts)
{
	static const char *const ids[] = { "", "tenant2" };
	struct handler_registry reg;
	struct metrics *m = start(&reg, ids, 2);
	size_t len = 0;
	char *page;
	int i;

	metrics_request(m, "", true, 200);
	metrics_request(m, "", true, 200);
	metrics_request(m, "tenant2", true, 400);
	metrics_request(m, NULL, true, 404);	/* another route */
	/* Made-up ids all count as one "unknown". */
	for (i = 0; i < 1000; i++) {
		char id[16];

		snprintf(id, sizeof(id), "x%d", i);
		metrics_request(m, id, false, 404);
	}
	metrics_request(m, "", true, 299);
	metrics_signature_failure(m, METRICS_SIGNATURE_MISMATCH);
	metrics_delivery(m, "", false);
	metrics_delivery(m, "", true);
	metrics_echo_check(m);
	metrics_commit(m, 3, 1500);
	metrics_set_inbox(m, 7, 2, 1000000);
	metrics_handler_run(m, &reg.entries[0], "CourseCompleted", WHR_DONE,
			    2000);
	metrics_handler_run(m, &reg.entries[0], "made-up", WHR_RETRY, 2000);
	metrics_handler_run(m, &reg.entries[1], "coursecompleted",
			    WHR_REJECT, 70 * 1000000LL);

	page = metrics_page(m, 4000000, &len);
	ck_assert_ptr_nonnull(page);
	ck_assert_uint_eq(strlen(page), len);
	has_line(page, "# TYPE whr_requests_total counter");
	has_line(page, "whr_requests_total{receiver=\"\",status=\"200\"} 2");
	has_line(page, "whr_requests_total{receiver=\"tenant2\",status=\"400\"} 1");
	has_line(page, "whr_requests_total{receiver=\"\",status=\"404\"} 1");
	has_line(page, "whr_requests_total{receiver=\"unknown\",status=\"404\"} 1000");
	has_line(page, "whr_requests_total{receiver=\"\",status=\"other\"} 1");
	ck_assert_ptr_null(strstr(page, "x999"));
	has_line(page, "whr_signature_failures_total{reason=\"mismatch\"} 1");
	has_line(page, "whr_signature_failures_total{reason=\"missing\"} 0");
	has_line(page, "whr_deliveries_total{receiver=\"\",result=\"stored\"} 1");
	has_line(page, "whr_deliveries_total{receiver=\"\",result=\"duplicate\"} 1");
	has_line(page, "whr_echo_checks_total 1");
	has_line(page, "whr_inbox_open_notifications 7");
	has_line(page, "whr_dead_notifications 2");
	has_line(page, "whr_inbox_oldest_open_seconds 3.000");
	has_line(page, "whr_handler_runs_total{action=\"CourseCompleted\",handler=\"tracker\",outcome=\"done\"} 1");
	has_line(page, "whr_handler_runs_total{action=\"other\",handler=\"tracker\",outcome=\"retry\"} 1");
	has_line(page, "whr_handler_runs_total{action=\"CourseCompleted\",handler=\"mail \\\"x\\\"\",outcome=\"reject\"} 1");
	has_line(page, "whr_handler_duration_seconds_bucket{handler=\"tracker\",le=\"0.001\"} 0");
	has_line(page, "whr_handler_duration_seconds_bucket{handler=\"tracker\",le=\"0.005\"} 2");
	has_line(page, "whr_handler_duration_seconds_bucket{handler=\"mail \\\"x\\\"\",le=\"60\"} 0");
	has_line(page, "whr_handler_duration_seconds_bucket{handler=\"mail \\\"x\\\"\",le=\"+Inf\"} 1");
	has_line(page, "whr_handler_duration_seconds_count{handler=\"tracker\"} 2");
	has_line(page, "whr_handler_duration_seconds_sum{handler=\"tracker\"} 0.004000");
	has_line(page, "whr_commit_batch_size_bucket{le=\"2\"} 0");
	has_line(page, "whr_commit_batch_size_bucket{le=\"4\"} 1");
	has_line(page, "whr_commit_sync_seconds_bucket{le=\"0.0025\"} 1");
	has_line(page, "whr_commit_sync_seconds_count 1");
	ck_assert_ptr_nonnull(strstr(page, "whr_build_info{version=\""));
	free(page);

	/* An id a reload brought in gets a series of its own. */
	metrics_request(m, "tenant3", true, 200);
	page = metrics_page(m, 0, &len);
	has_line(page, "whr_requests_total{receiver=\"tenant3\",status=\"200\"} 1");
	has_line(page, "whr_inbox_oldest_open_seconds 0.000");
	free(page);
	metrics_free(m);
	handler_registry_finish(&reg);
}
END_TEST

/* Catch-all handlers run for any Action: those of Learn365 whr knows
 * have series of their own (in their canonical spelling), made-up ones
 * share "other". */
START_TEST(metrics_known_actions)
{
	static const char *const ids[] = { "" };
	struct handler_registry reg;
	struct metrics *m = start(&reg, ids, 1);
	char *page;
	size_t len;
	int i;

	metrics_handler_run(m, &reg.entries[0], "coursestarted", WHR_DONE, 0);
	metrics_handler_run(m, &reg.entries[0], "CourseDeleted", WHR_DONE, 0);
	for (i = 0; i < 100; i++) {
		char action[16];

		snprintf(action, sizeof(action), "Made%d", i);
		metrics_handler_run(m, &reg.entries[0], action, WHR_DONE, 0);
	}
	page = metrics_page(m, 0, &len);
	ck_assert_ptr_nonnull(page);
	has_line(page, "whr_handler_runs_total{action=\"CourseStarted\",handler=\"tracker\",outcome=\"done\"} 1");
	has_line(page, "whr_handler_runs_total{action=\"CourseDeleted\",handler=\"tracker\",outcome=\"done\"} 1");
	has_line(page, "whr_handler_runs_total{action=\"other\",handler=\"tracker\",outcome=\"done\"} 100");
	ck_assert_ptr_null(strstr(page, "Made"));
	free(page);
	metrics_free(m);
	handler_registry_finish(&reg);
}
END_TEST

TEST_SUITE_OF(metrics,
	metrics_counts,
	metrics_known_actions)
