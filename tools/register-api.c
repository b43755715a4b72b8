/*
 * whr register: the registrations API (Microsoft's WebHookRegistrations
 * controller, as Learn365 serves it; PROTOCOL.md "Registration API") and
 * the registrations it keeps, as JSON trees: a change is made to the
 * tree the API gave, so that a PUT sends back every member, Secret,
 * Headers, Properties and those this version does not know.
 */
#include "register.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "lib/utf8.h"

#define LEARN365_PATH "/webhooks/registrations"

const char *const reg_events[] = {
	"CourseEnrollment",
	"CourseUnenrollment",
	"CourseStarted",
	"CourseCompleted",
	"CoursePublished",
	"CourseUnpublished",
	"EnrollmentApprovalRequest",
	"CourseCreated",
	"CourseDeleted",
	"UserCreated",
	"UserDeleted",
	"*",
	NULL,
};

const char *
reg_event(const char *name)
{
	size_t i;

	for (i = 0; reg_events[i] != NULL; i++) {
		if (strcasecmp(reg_events[i], name) == 0)
			return reg_events[i];
	}
	return NULL;
}

/* ---- registrations --------------------------------------------------- */

static struct json_node **
member_slot(const struct json_node *reg, const char *name)
{
	size_t i;

	if (reg == NULL || reg->kind != JSON_OBJECT)
		return NULL;
	/* the last one of a name given twice: the one .NET reads */
	for (i = reg->n_kids; i > 0; i--) {
		const struct json_node *m = reg->kids[i - 1];

		if (m->name_len == strlen(name) &&
		    strncasecmp(m->name, name, m->name_len) == 0)
			return &reg->kids[i - 1];
	}
	return NULL;
}

struct json_node *
reg_member(const struct json_node *reg, const char *name)
{
	struct json_node **slot = member_slot(reg, name);

	return slot != NULL ? *slot : NULL;
}

const char *
reg_string(const struct json_node *reg, const char *name)
{
	const struct json_node *m = reg_member(reg, name);

	return m != NULL && m->kind == JSON_STRING &&
	       strlen(m->text) == m->len ? m->text : NULL;
}

struct json_node *
reg_string_node(const char *text)
{
	return json_tree_new(JSON_STRING, text, strlen(text));
}

int
reg_set(struct json_node *reg, const char *name, struct json_node *value)
{
	struct json_node **slot = member_slot(reg, name);

	if (value == NULL)
		return -ENOMEM;
	if (slot == NULL)
		return json_tree_append(reg, name, strlen(name), value);
	value->name = (*slot)->name;
	value->name_len = (*slot)->name_len;
	(*slot)->name = NULL;
	json_tree_free(*slot);
	*slot = value;
	return 0;
}

void
reg_drop(struct json_node *reg, const char *name)
{
	struct json_node **slot;

	while ((slot = member_slot(reg, name)) != NULL) {
		size_t i = (size_t)(slot - reg->kids);

		json_tree_free(*slot);
		memmove(&reg->kids[i], &reg->kids[i + 1],
			(reg->n_kids - i - 1) * sizeof(*reg->kids));
		reg->n_kids--;
	}
}

bool
reg_secret_fits_api(const char *secret)
{
	const unsigned char *s = (const unsigned char *)secret;
	size_t len = strlen(secret);
	size_t units = 0;
	size_t i = 0;

	while (i < len) {
		uint32_t cp = 0;
		size_t n = utf8_next(s + i, len - i, &cp);

		if (n == 0)
			return false;
		units += cp > 0xffff ? 2 : 1;
		i += n;
	}
	return units >= REG_API_SECRET_MIN && units <= REG_API_SECRET_MAX;
}

/* ---- calls ------------------------------------------------------------ */

int
reg_api_init(struct reg_api *a, struct event_base *base, const char *api_url,
	     const char *user, const char *key, const char *cacert,
	     int64_t timeout_us, char *err, size_t err_size)
{
	struct http_client_options o = {
		.timeout_us = timeout_us,
		.cacert = cacert,
		.env_proxy = true,
	};
	struct http_url url;
	size_t len;
	int rc;

	memset(a, 0, sizeof(*a));
	a->base = base;
	rc = http_url_parse(api_url, &url, err, err_size);
	if (rc < 0)
		return -EINVAL;
	if (!url.https) {
		snprintf(err, err_size, "the API is reached over HTTPS only "
			 "(its key would cross the network in clear)");
		http_url_finish(&url);
		return -EINVAL;
	}
	len = strlen(url.path);
	while (len > 0 && url.path[len - 1] == '/')
		url.path[--len] = '\0';
	if (len >= 14 && strcasecmp(url.path + len - 14, "/registrations") == 0)
		rc = asprintf(&a->collection, "%s%s", url.origin, url.path);
	else
		rc = asprintf(&a->collection, "%s%s%s", url.origin, url.path,
			      LEARN365_PATH);
	http_url_finish(&url);
	a->user = strdup(user);
	a->key = strdup(key);
	a->client = http_client_new(base, &o);
	if (rc < 0 || a->user == NULL || a->key == NULL || a->client == NULL) {
		snprintf(err, err_size, "out of memory");
		reg_api_finish(a);
		return -ENOMEM;
	}
	if (http_client_tls_init(a->client, err, err_size) < 0) {
		reg_api_finish(a);
		return -EINVAL;
	}
	return 0;
}

void
reg_api_finish(struct reg_api *a)
{
	http_client_free(a->client);
	free(a->collection);
	free(a->user);
	if (a->key != NULL) {
		OPENSSL_cleanse(a->key, strlen(a->key));
		free(a->key);
	}
	memset(a, 0, sizeof(*a));
}

void
reg_reply_finish(struct reg_reply *r)
{
	json_tree_free(r->json);
	memset(r, 0, sizeof(*r));
}

/* The API's message: "Message" of a JSON answer, with the ModelState's
 * messages of the first form of 400; else the body's first line. */
static void
api_message(const struct http_result *res, const struct json_node *json,
	    char *out, size_t size)
{
	const struct json_node *state = reg_member(json, "ModelState");
	const char *message = reg_string(json, "Message");
	size_t n;
	size_t i;
	size_t k;

	out[0] = '\0';
	if (message == NULL) {
		size_t len = res->body != NULL ? strcspn(res->body, "\r\n") : 0;

		if (len > res->body_len)
			len = res->body_len;
		http_escape(out, size, res->body, len, 600, false);
		return;
	}
	http_escape(out, size, message, strlen(message), 600, false);
	if (state == NULL || state->kind != JSON_OBJECT)
		return;
	for (i = 0; i < state->n_kids; i++) {
		const struct json_node *m = state->kids[i];

		for (k = 0; m->kind == JSON_ARRAY && k < m->n_kids; k++) {
			if (m->kids[k]->kind != JSON_STRING)
				continue;
			n = strlen(out);
			if (n + 8 >= size)
				return;
			snprintf(out + n, size - n, " ");
			http_escape(out + n + 1, size - n - 1,
				    m->kids[k]->text, m->kids[k]->len, 300,
				    false);
		}
	}
}

static void
explain(struct reg_reply *reply, const struct http_result *res,
	const char *what, const char *id, const char *collection)
{
	char message[800];

	api_message(res, reply->json, message, sizeof(message));
	switch (res->status) {
	case 400:
		snprintf(reply->why, sizeof(reply->why), "the API refused %s "
			 "(400 Bad Request): %s", what, message[0] != '\0' ?
			 message : "(no message: an empty answer)");
		break;
	case 401:
		snprintf(reply->why, sizeof(reply->why), "the API refused the "
			 "credentials (401 %s%s%s): check the API key "
			 "(WHR_LEARN365_API_KEY or --api-key-file) and the "
			 "user (WHR_LEARN365_API_USER)", res->reason,
			 message[0] != '\0' ? ": " : "", message);
		break;
	case 404:
		if (id != NULL)
			snprintf(reply->why, sizeof(reply->why), "%s: the API "
				 "has no such registration (404 %s)", what,
				 res->reason);
		else
			snprintf(reply->why, sizeof(reply->why), "%s: %s is "
				 "not the registrations API (404 %s): see "
				 "--api and WHR_LEARN365_API", what,
				 collection, res->reason);
		break;
	default:
		snprintf(reply->why, sizeof(reply->why), "the API answered %d "
			 "%s to %s%s%s", res->status, res->reason, what,
			 message[0] != '\0' ? ": " : "", message);
		break;
	}
}

int
reg_api_call(struct reg_api *a, const char *method, const char *id,
	     const char *body, struct reg_reply *reply)
{
	static const struct http_header json_headers[] = {
		{ "Accept", "application/json" },
		{ "Content-Type", "application/json; charset=utf-8" },
	};
	struct http_request req = {
		.method = method,
		.headers = json_headers,
		.n_headers = body != NULL ? 2 : 1,
		.body = body,
		.body_len = body != NULL ? strlen(body) : 0,
		.user = a->user,
		.password = a->key,
	};
	struct http_result res;
	struct http_url url;
	char what[200];
	char err[256];
	char *target = NULL;
	int rc = -1;

	memset(reply, 0, sizeof(*reply));
	memset(&res, 0, sizeof(res));
	memset(&url, 0, sizeof(url));
	if (id != NULL)
		snprintf(what, sizeof(what), "%s of registration %s", method,
			 id);
	else
		snprintf(what, sizeof(what), "%s %s", method,
			 strcmp(method, "GET") == 0 ? "of the registrations" :
			 "of the registration");
	if (asprintf(&target, "%s%s%s", a->collection, id != NULL ? "/" : "",
		     id != NULL ? id : "") < 0) {
		target = NULL;
		snprintf(reply->why, sizeof(reply->why), "out of memory");
		goto out;
	}
	if (http_url_parse(target, &url, err, sizeof(err)) < 0) {
		snprintf(reply->why, sizeof(reply->why), "%s: %s", target,
			 err);
		goto out;
	}
	req.url = &url;
	if (http_client_run(a->client, &req, &res) < 0) {
		snprintf(reply->why, sizeof(reply->why), "out of memory");
		goto out;
	}
	if (res.error != HTTP_OK) {
		reply->maybe_done = res.phase >= HTTP_PHASE_WAIT &&
				    strcmp(method, "GET") != 0;
		snprintf(reply->why, sizeof(reply->why), "the API at %s, %s: "
			 "%s", url.origin, what, res.detail);
		goto out;
	}
	reply->status = res.status;
	if (res.body_len > 0 && res.body_total == res.body_len)
		reply->json = json_tree_parse(res.body, res.body_len, NULL, 0);
	if (res.status < 200 || res.status >= 300) {
		explain(reply, &res, what, id, a->collection);
		goto out;
	}
	rc = 0;
out:
	http_result_finish(&res);
	http_url_finish(&url);
	free(target);
	return rc;
}
