/*
 * envelope_decode() on arbitrary bodies, and media_type_is_json() on the
 * same bytes as a header value. When a body decodes, its spans must be
 * sound, and every notification must work as a whr_event: its JSON parses
 * again, and its Action agrees with what the getters read.
 */
#include "fuzz-common.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "decode.h"
#include "event.h"

static const char *const paths[] = {
	"Action", "Course.Id", "Course.Published", "Users", "Users[0].Email",
	"Users[1]", "EnrollmentStatus", "TimeStamp", "Id", "a1",
};

static bool
is_object_span(const char *body, size_t len, size_t lo, size_t start,
	       size_t end)
{
	return lo <= start && start < end && end <= len &&
	       body[start] == '{' && body[end - 1] == '}';
}

/* The Action the decoder saw must be the one a handler reads by path. */
static void
check_action(const struct whr_event *ev, const char *action)
{
	enum whr_value_type t = whr_event_type(ev, "Action");
	const char *s;
	bool b;

	if (action == NULL) {
		FUZZ_CHECK(t == WHR_VALUE_MISSING || t == WHR_VALUE_NULL);
		return;
	}
	switch (t) {
	case WHR_VALUE_STRING:
		/* The decoder turns U+0000 into U+FFFD; the tree's C string
		 * ends at the first U+0000. Up to there, they are equal. */
		s = whr_event_string(ev, "Action");
		if (strstr(action, "\xef\xbf\xbd") == NULL)
			FUZZ_CHECK(strcmp(s, action) == 0);
		else
			FUZZ_CHECK(strncmp(s, action, strlen(s)) == 0);
		break;
	case WHR_VALUE_BOOL:
		FUZZ_CHECK(whr_event_bool(ev, "Action", &b) == 0);
		FUZZ_CHECK(strcmp(action, b ? "true" : "false") == 0);
		break;
	case WHR_VALUE_INTEGER:
	case WHR_VALUE_NUMBER:
		break;
	default:
		FUZZ_CHECK(!"Action has a value the decoder did not report");
	}
}

static void
check_event(const struct envelope *env, size_t i, const char *json,
	    size_t json_len, const char *properties)
{
	struct event_fields f = {
		.receiver_id = "",
		.delivery_id = env->id,
		.action = env->notifications[i].action,
		.attempt = env->attempt,
		.index = i,
		.count = env->n_notifications,
		.json = json,
		.json_len = json_len,
		.properties = properties,
		.properties_len = properties != NULL ? strlen(properties) : 0,
	};
	struct whr_event ev;
	const char *text;
	size_t len;
	int64_t v;
	size_t k;

	event_init(&ev, &f);
	text = whr_event_json(&ev, &len);
	FUZZ_CHECK(text == json && len == json_len);
	text = whr_event_properties_json(&ev, &len);
	FUZZ_CHECK(text != NULL && strlen(text) == len);
	/* A validated notification always parses again: a missing path is
	 * -ENOENT, never the -ENOMEM of a tree that could not be built. */
	FUZZ_CHECK(whr_event_integer(&ev, "No.Such[0].Path", &v) == -ENOENT);
	check_action(&ev, f.action);
	for (k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
		(void)whr_event_type(&ev, paths[k]);
		(void)whr_event_string(&ev, paths[k]);
		(void)whr_event_array_length(&ev, paths[k]);
		(void)whr_event_integer(&ev, paths[k], &v);
		(void)whr_event_property(&ev, paths[k]);
	}
	whr_event_set_reason(&ev, "notification %zu of %zu", i, f.count);
	FUZZ_CHECK(event_reason(&ev) != NULL);
	event_finish(&ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct envelope env;
	char err[192];
	char *text;
	char *json = NULL;
	char *properties = NULL;
	size_t lo;
	size_t i;
	int rc;

	/* The same bytes as a Content-Type value: must not crash. */
	text = fuzz_strndup(data, size);
	(void)media_type_is_json(text);
	free(text);

	memset(err, 'x', sizeof(err));
	rc = envelope_decode(body, size, 0, &env, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	if (rc < 0) {
		FUZZ_CHECK(err[0] != '\0');
		FUZZ_CHECK(env.id == NULL && env.notifications == NULL &&
			   env.n_notifications == 0);
		envelope_finish(&env);
		return 0;
	}
	FUZZ_CHECK(err[0] == '\0');

	lo = env.json_start;
	FUZZ_CHECK(lo == 0 ||
		   (lo == 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0));
	if (env.has_properties) {
		FUZZ_CHECK(is_object_span(body, size, lo, env.properties_start,
					  env.properties_end));
		properties = fuzz_strndup(body + env.properties_start,
					  env.properties_end -
						  env.properties_start);
	}
	for (i = 0; i < env.n_notifications; i++) {
		const struct notification *n = &env.notifications[i];

		FUZZ_CHECK(is_object_span(body, size, lo, n->start, n->end));
		/* In order, and disjoint from each other and Properties. */
		if (i > 0)
			FUZZ_CHECK(env.notifications[i - 1].end <= n->start);
		if (env.has_properties)
			FUZZ_CHECK(n->end <= env.properties_start ||
				   env.properties_end <= n->start);
	}
	for (i = 0; i < env.n_notifications; i++) {
		const struct notification *n = &env.notifications[i];

		json = fuzz_strndup(body + n->start, n->end - n->start);
		check_event(&env, i, json, n->end - n->start, properties);
		free(json);
	}
	free(properties);
	envelope_finish(&env);
	return 0;
}
