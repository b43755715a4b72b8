/*
 * Field paths over arbitrary valid JSON. The input is a JSON object, a
 * NUL byte, then paths separated by NUL bytes. The object is wrapped as
 * {"Properties": J, "Notifications": [J]}; when envelope_decode()
 * accepts that body, every getter is asked every path, and the getters
 * must agree with each other (and whr_event_property() with
 * whr_event_string(), as both read the same JSON).
 */
#include "fuzz-common.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "decode.h"
#include "event.h"

#define PREFIX "{\"Properties\":"
#define MIDDLE ",\"Notifications\":["
#define SUFFIX "]}"

static const char *const default_paths[] = {
	"Action", "Course.Id", "Users[0].Email", "Users", "a[0][1].b",
};

/* An array of @p len elements: [len - 1] is there and [len] is not. */
static void
check_array_ends(const struct whr_event *ev, const char *path, size_t len)
{
	char sub[320];

	if (len == 0 || strlen(path) > 256)
		return;
	snprintf(sub, sizeof(sub), "%s[%zu]", path, len - 1);
	FUZZ_CHECK(whr_event_type(ev, sub) != WHR_VALUE_MISSING);
	snprintf(sub, sizeof(sub), "%s[%zu]", path, len);
	FUZZ_CHECK(whr_event_type(ev, sub) == WHR_VALUE_MISSING);
}

static void
query(const struct whr_event *ev, const char *path, bool same_json)
{
	enum whr_value_type t = whr_event_type(ev, path);
	const char *s = whr_event_string(ev, path);
	size_t len = whr_event_array_length(ev, path);
	int64_t i = 0;
	bool b = false;
	int rc;

	FUZZ_CHECK(t >= WHR_VALUE_MISSING && t <= WHR_VALUE_ARRAY);
	FUZZ_CHECK((s != NULL) == (t == WHR_VALUE_STRING));
	FUZZ_CHECK(len == 0 || t == WHR_VALUE_ARRAY);

	rc = whr_event_integer(ev, path, &i);
	FUZZ_CHECK(rc == (t == WHR_VALUE_INTEGER ? 0 :
			  t == WHR_VALUE_MISSING ? -ENOENT : -EINVAL));
	rc = whr_event_bool(ev, path, &b);
	FUZZ_CHECK(rc == (t == WHR_VALUE_BOOL ? 0 :
			  t == WHR_VALUE_MISSING ? -ENOENT : -EINVAL));

	if (t == WHR_VALUE_ARRAY)
		check_array_ends(ev, path, len);
	if (same_json)
		FUZZ_CHECK(fuzz_same_string(whr_event_property(ev, path), s));
	else
		(void)whr_event_property(ev, path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t json_len = nul != NULL ? (size_t)(nul - data) : size;
	size_t body_len = strlen(PREFIX) + strlen(MIDDLE) + strlen(SUFFIX) +
			  2 * json_len;
	char *body = malloc(body_len);
	char *paths = NULL;
	char *json = NULL;
	char *properties = NULL;
	struct envelope env;
	struct whr_event ev;
	char err[192];
	bool same_json;
	size_t off = 0;

	FUZZ_CHECK(body != NULL);
#define PUT(p, n) (memcpy(body + off, (p), (n)), off += (n))
	PUT(PREFIX, strlen(PREFIX));
	PUT(data, json_len);
	PUT(MIDDLE, strlen(MIDDLE));
	PUT(data, json_len);
	PUT(SUFFIX, strlen(SUFFIX));
#undef PUT
	if (envelope_decode(body, body_len, 0, &env, err, sizeof(err)) < 0)
		goto out;
	if (env.n_notifications == 0 || !env.has_properties)
		goto out_env;

	json = fuzz_strndup(body + env.notifications[0].start,
			    env.notifications[0].end -
				    env.notifications[0].start);
	properties = fuzz_strndup(body + env.properties_start,
				  env.properties_end - env.properties_start);
	same_json = strcmp(json, properties) == 0;
	event_init(&ev, &(struct event_fields){
		.receiver_id = "",
		.action = env.notifications[0].action,
		.count = env.n_notifications,
		.json = json,
		.json_len = strlen(json),
		.properties = properties,
		.properties_len = strlen(properties),
	});
	if (nul == NULL) {
		size_t k;

		for (k = 0; k < sizeof(default_paths) / sizeof(*default_paths);
		     k++)
			query(&ev, default_paths[k], same_json);
	} else {
		/* NUL-separated paths; the copy ends with one more NUL. */
		size_t rest = size - json_len - 1;
		const char *p;

		paths = fuzz_strndup(nul + 1, rest);
		for (p = paths; p <= paths + rest; p += strlen(p) + 1)
			query(&ev, p, same_json);
	}
	event_finish(&ev);
out_env:
	envelope_finish(&env);
out:
	free(paths);
	free(json);
	free(properties);
	free(body);
	return 0;
}
