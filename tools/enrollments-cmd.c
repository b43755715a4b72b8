/*
 * whr enrollments: what the enrollment tracker knows, read from a data
 * folder's inbox database or a PostgreSQL database (list, summary,
 * history). This file reads the command line and runs the command; see
 * enrollments-cmd.h for the other parts.
 *
 * It opens the database read-only, as `whr inbox` does, so it is safe
 * while whr serve runs: each report is one SQL statement, and one
 * statement sees one consistent snapshot (SQLite's WAL, PostgreSQL's
 * MVCC). It never writes.
 */
#include "enrollments-cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "data-dir.h"
#include "enrollments/enrollments.h"	/* enrollment_state_name() */
#include "time-arg.h"

#define PROGRAM ENROLLMENTS_PROG
/* A usage error: the message, then exit status EXIT_USAGE. */
#define fail_usage(...) tool_usage_error(PROGRAM, __VA_ARGS__)

struct command {
	const char *name;
	unsigned takes;			/* OPT_* */
	int (*run)(const struct data_dir *d, const struct query *q);
	const char *help;
};

#define STATE_NAMES \
	"approval_requested, enrolled, started, completed or unenrolled"

/* ---- help -------------------------------------------------------------- */

#define COMMON_HELP \
	"  --data-dir DIR     the data folder (default: WHR_DATA_DIR,\n" \
	"                     else ./whr-data)\n" \
	"  --database URL     the PostgreSQL database whr serve --database\n" \
	"                     uses (default: the URL in the file\n" \
	"                     WHR_DATABASE_FILE names, else WHR_DATABASE);\n" \
	"                     its password from PGPASSFILE or that file,\n" \
	"                     never on the command line\n" \
	"  --format FORMAT    table (for people, the default), csv (RFC\n" \
	"                     4180: a header row, CRLF line ends) or json\n" \
	"                     (an array of objects; times are ISO 8601\n" \
	"                     UTC strings or null)\n" \
	"  --help             show this help\n"

#define COURSE_HELP \
	"  --course COURSE    only this course: its Course.Id, or its\n" \
	"                     whole title; case is ignored\n"

#define LEARNER_HELP \
	"  --learner LEARNER  only this learner: their Users[].Id or\n" \
	"                     e-mail address; case is ignored\n"

#define TIME_HELP \
	"TIME is a UTC time (2024-05-01T10:15:30Z, 2024-05-01T10:15,\n" \
	"2024-05-01) or an age counted back from now (30s, 90m, 2h, 7d);\n" \
	"--since is inclusive, --until exclusive.\n"

#define EXIT_HELP \
	"\n" \
	"Exit status: 0 success (also when nothing matches), 1 the data\n" \
	"cannot be read (no data folder, no database, no enrollment\n" \
	"tables), 2 usage error.\n"

static const char help_list[] =
	"Usage: whr enrollments [list] [OPTIONS]\n"
	"\n"
	"One row per enrollment: course, learner, state, cycle and the\n"
	"time of each step, ordered by course title, then learner e-mail\n"
	"and name. Only the latest cycle of each (course, learner) unless\n"
	"--all-cycles. Read-only; safe while whr serve runs.\n"
	"\n"
	"Options:\n"
	COURSE_HELP
	LEARNER_HELP
	"  --state STATE      only enrollments in STATE:\n"
	"                     approval_requested, enrolled, started,\n"
	"                     completed or unenrolled\n"
	"  --since TIME       only enrollments updated at or after TIME\n"
	"  --until TIME       only enrollments updated before TIME\n"
	"  --all-cycles       every cycle, not only the latest (a new\n"
	"                     cycle starts with a re-enrollment after an\n"
	"                     unenrollment)\n"
	"  --limit N          at most N rows (default 0: all)\n"
	COMMON_HELP
	"\n"
	TIME_HELP
	"\n"
	"Columns: course_id, course_title, learner_id, email, name,\n"
	"state, cycle, approval_requested_at, enrolled_at, started_at,\n"
	"completed_at, unenrolled_at, updated_at.\n"
	EXIT_HELP;

static const char help_summary[] =
	"Usage: whr enrollments summary [OPTIONS]\n"
	"\n"
	"One row per course, counting the latest cycle of each (course,\n"
	"learner), ordered by course title:\n"
	"  enrolled           in state enrolled, started or completed\n"
	"  started            in state started or completed\n"
	"  completed          in state completed\n"
	"  unenrolled         in state unenrolled\n"
	"  awaiting_approval  in state approval_requested\n"
	"  completion_rate    100 * completed / enrolled, one decimal;\n"
	"                     empty (null) when enrolled is 0\n"
	"  median_days_to_complete\n"
	"                     the median of completed_at - enrolled_at\n"
	"                     in days, one decimal, over the completed\n"
	"                     ones that have both times; empty (null)\n"
	"                     when there are none\n"
	"\n"
	"Options:\n"
	COURSE_HELP
	"  --since TIME       count only enrollments updated at or after\n"
	"                     TIME\n"
	"  --until TIME       count only enrollments updated before TIME\n"
	COMMON_HELP
	"\n"
	TIME_HELP
	EXIT_HELP;

static const char help_history[] =
	"Usage: whr enrollments history [OPTIONS]\n"
	"\n"
	"Every event the tracker applied, oldest first (by the event's\n"
	"TimeStamp): time, action, course, learner, cycle, effect\n"
	"(applied: it moved the state; stale: older than what was known)\n"
	"and the delivery it came in (receiver is null for the default\n"
	"receiver id). Course events (CoursePublished...) have no\n"
	"learner.\n"
	"\n"
	"Options:\n"
	COURSE_HELP
	LEARNER_HELP
	"  --since TIME       only events at or after TIME\n"
	"  --until TIME       only events before TIME\n"
	"  --limit N          at most N rows (default 0: all)\n"
	COMMON_HELP
	"\n"
	TIME_HELP
	"\n"
	"Columns: event_at, action, course_id, course_title, learner_id,\n"
	"email, name, cycle, effect, delivery_id, receiver.\n"
	EXIT_HELP;

static const char help_all[] =
	"Usage: whr enrollments [COMMAND] [OPTIONS]\n"
	"\n"
	"Who enrolled in, started and completed which course, as the\n"
	"enrollment tracker of whr serve recorded it in the data folder's\n"
	"inbox database, or in the PostgreSQL database of --database.\n"
	"Read-only; safe while whr serve runs.\n"
	"\n"
	"Commands:\n"
	"  list      one row per enrollment (the default command)\n"
	"  summary   one row per course: counts, completion rate, median\n"
	"            days to complete\n"
	"  history   every event applied, oldest first\n"
	"\n"
	"Options (whr enrollments COMMAND --help tells which apply):\n"
	COURSE_HELP
	LEARNER_HELP
	"  --state STATE      list: approval_requested, enrolled,\n"
	"                     started, completed or unenrolled\n"
	"  --since TIME, --until TIME\n"
	"                     list, summary: the enrollment's last\n"
	"                     update; history: the event's time\n"
	"  --all-cycles       list: every cycle, not only the latest\n"
	"  --limit N          list, history: at most N rows (0: all)\n"
	COMMON_HELP
	"\n"
	TIME_HELP
	EXIT_HELP;

/* ---- parsing ----------------------------------------------------------- */

static int
parse_limit(const char *text, int64_t *out)
{
	char *end;

	if (!(text[0] >= '0' && text[0] <= '9'))
		return -EINVAL;
	errno = 0;
	*out = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	return 0;
}

static bool
state_valid(const char *name)
{
	enum enrollment_step s;

	for (s = 0; s < ENROLLMENT_STEPS; s++) {
		if (strcmp(name, enrollment_state_name(s)) == 0)
			return true;
	}
	return false;
}

/* ---- the command ------------------------------------------------------- */

static const struct command commands[] = {
	{ "list", OPT_COURSE | OPT_LEARNER | OPT_STATE | OPT_SINCE |
		  OPT_UNTIL | OPT_ALL_CYCLES | OPT_LIMIT, enrollments_list,
	  help_list },
	{ "summary", OPT_COURSE | OPT_SINCE | OPT_UNTIL, enrollments_summary,
	  help_summary },
	{ "history", OPT_COURSE | OPT_LEARNER | OPT_SINCE | OPT_UNTIL |
		     OPT_LIMIT, enrollments_history, help_history },
};

static const char *
option_name(unsigned bit)
{
	switch (bit) {
	case OPT_COURSE: return "--course";
	case OPT_LEARNER: return "--learner";
	case OPT_STATE: return "--state";
	case OPT_SINCE: return "--since";
	case OPT_UNTIL: return "--until";
	case OPT_ALL_CYCLES: return "--all-cycles";
	default: return "--limit";
	}
}

/* After getopt_long() returned '?' for @p arg. */
static int
bad_option(const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (strncmp(arg, "--", 2) != 0)
		return fail_usage("unknown option '-%c'", optopt);
	if (eq != NULL && optopt != 0)
		return fail_usage("option '%.*s' takes no value",
				  (int)(eq - arg), arg);
	return fail_usage("unknown or ambiguous option '%s'", arg);
}

int
cmd_enrollments(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "database", required_argument, NULL, 'D' },
		{ "format", required_argument, NULL, 'f' },
		{ "course", required_argument, NULL, 'c' },
		{ "learner", required_argument, NULL, 'l' },
		{ "state", required_argument, NULL, 's' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "all-cycles", no_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct query q = { .format = REPORT_TABLE };
	const struct command *cmd = &commands[0];
	struct data_dir d;
	bool help = false;
	unsigned bit;
	size_t i;
	int c, rc;

	data_dir_init(&d, PROGRAM);
	/* Options go before or after the command (getopt moves the other
	 * arguments to the end); argv[-1] is "enrollments", getopt's
	 * program name. optind 0 makes glibc's getopt start afresh. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc + 1, argv - 1, ":h", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'd':
			rc = data_dir_option(&d, optarg);
			if (rc != 0)
				return rc;
			break;
		case 'D':
			rc = data_dir_database_option(&d, optarg);
			if (rc != 0)
				return rc;
			break;
		case 'f':
			rc = tool_format_option(PROGRAM, optarg, true,
						&q.format);
			if (rc != 0)
				return rc;
			break;
		case 'c':
			q.filter.course = optarg;
			q.given |= OPT_COURSE;
			break;
		case 'l':
			q.filter.learner = optarg;
			q.given |= OPT_LEARNER;
			break;
		case 's':
			if (!state_valid(optarg))
				return fail_usage("unknown state '%s': use "
						  STATE_NAMES, optarg);
			q.filter.state = optarg;
			q.given |= OPT_STATE;
			break;
		case 'S':
		case 'U':
			bit = c == 'S' ? OPT_SINCE : OPT_UNTIL;
			rc = time_arg_option(PROGRAM, option_name(bit), optarg,
					     c == 'S' ? &q.filter.since
						      : &q.filter.until);
			if (rc != 0)
				return rc;
			q.given |= bit;
			break;
		case 'a':
			q.filter.all_cycles = true;
			q.given |= OPT_ALL_CYCLES;
			break;
		case 'n':
			if (parse_limit(optarg, &q.filter.limit) < 0)
				return fail_usage("bad --limit '%s': give a "
						  "number of rows (0: all)",
						  optarg);
			q.given |= OPT_LIMIT;
			break;
		case 'h':
			help = true;
			break;
		case ':':
			return fail_usage("%s needs a value",
					  argv[optind - 2]);
		default:
			return bad_option(argv[optind - 2]);
		}
	}
	/* argv - 1 was parsed: argv[optind - 1...] are the other
	 * arguments, in order. */
	if (optind <= argc) {
		const char *name = argv[optind - 1];

		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
			if (strcmp(name, commands[i].name) == 0)
				break;
		}
		if (i == sizeof(commands) / sizeof(commands[0]))
			return fail_usage("unknown command '%s': use list, "
					  "summary or history", name);
		cmd = &commands[i];
		if (optind + 1 <= argc)
			return fail_usage("unexpected argument '%s'",
					  argv[optind]);
		if (help) {
			fputs(cmd->help, stdout);
			return 0;
		}
	} else if (help) {
		fputs(help_all, stdout);
		return 0;
	}
	for (bit = 1; bit <= OPT_LIMIT; bit <<= 1) {
		if ((q.given & bit) && !(cmd->takes & bit))
			return fail_usage("%s does not apply to %s",
					  option_name(bit), cmd->name);
	}
	q.filter.has_since = (q.given & OPT_SINCE) != 0;
	q.filter.has_until = (q.given & OPT_UNTIL) != 0;

	rc = enrollments_open(&d);
	if (rc == 0)
		rc = cmd->run(&d, &q);
	data_dir_finish(&d);
	return rc;
}
