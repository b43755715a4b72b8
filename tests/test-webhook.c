/*
 * The webhook logic without HTTP: the POST checks in order, the echo
 * query, and handler dispatch before the reply.
 */
#include <string.h>

#include "secrets.h"
#include "signature.h"
#include "util.h"
#include "test-common.h"
#include "webhook.h"

#define S1 "0123456789abcdef0123456789abcdef"
#define V1_HEADER "sha256=11BDD3E02E9853644DE5CAF0415E089C871445D509B31388F5A7E5CB705BA8B5"

START_TEST(webhook_query_parameter)
{
	static const struct {
		const char *query;
		const char *value;	/* NULL: absent */
	} cases[] = {
		{ "echo=abc", "abc" },
		{ "?echo=abc", "abc" },
		{ "ECHO=abc", "abc" },
		{ "x=1&echo=a%20b+c", "a b c" },
		{ "echo=%41%zz%4", "A%zz%4" },
		{ "echo=%u0041%u00e9", "A\xc3\xa9" },
		{ "echo=a&echo=b", "a,b" },
		{ "echo=&echo=b", ",b" },
		{ "echo=", "" },
		{ "echo", NULL },
		{ "echoes=1", NULL },
		{ "", NULL },
		{ "e%63ho=x", "x" },
		{ "echo=a=b", "a=b" },
		{ "&&echo=1&", "1" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;
		size_t len;
		char *v = query_parameter(cases[i].query, "echo", &len, &rc);

		ck_assert_int_eq(rc, 0);
		if (cases[i].value == NULL)
			ck_assert_msg(v == NULL, "'%s' gave '%s'",
				      cases[i].query, v);
		else
			ck_assert_msg(v != NULL && strcmp(v, cases[i].value) == 0 &&
				      len == strlen(v),
				      "'%s' gave '%s'", cases[i].query,
				      v != NULL ? v : "(null)");
		free(v);
	}
}
END_TEST

/* NULs survive decoding, and a name with one is another name. */
START_TEST(webhook_query_nul)
{
	size_t len;
	int rc;
	char *v = query_parameter("echo=a%00b", "echo", &len, &rc);

	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(v, "a\0b", 3);
	free(v);
	ck_assert_ptr_null(query_parameter("echo%00x=1", "echo", &len, &rc));
}
END_TEST

START_TEST(webhook_percent_decode)
{
	size_t len;
	char *s = percent_decode("Tenant%202+x%2F", 15, false, &len);

	ck_assert_str_eq(s, "Tenant 2+x/");
	ck_assert_uint_eq(len, 11);
	free(s);
	s = percent_decode("%", 1, true, NULL);
	ck_assert_str_eq(s, "%");
	free(s);
	s = percent_decode("%ud800", 6, true, &len);	/* lone surrogate */
	ck_assert_str_eq(s, "\xef\xbf\xbd");
	free(s);
	s = percent_decode("%uD83D%uDE00|%uDE00", 19, false, &len);
	ck_assert_str_eq(s, "\xf0\x9f\x98\x80|\xef\xbf\xbd");
	free(s);
	s = percent_decode("a%00b", 5, false, &len);
	ck_assert_uint_eq(len, 3);
	free(s);
}
END_TEST

static struct secret_store *
store_with(const char *secrets)
{
	struct secret_list list = { 0 };
	struct secret_list none = { 0 };
	struct secret_store *store;

	ck_assert_int_eq(secret_list_parse(secrets, false, "test", &list), 0);
	store = secret_store_new(&list, &none, "test");
	ck_assert_ptr_nonnull(store);
	secret_list_finish(&list);
	return store;
}

static struct webhook_reply
post(const struct secret_store *store, const char *id, const char *signature,
     size_t n_signatures, const char *content_type, const char *body,
     size_t len)
{
	struct webhook_request in = {
		.receiver_id = id,
		.receiver_id_len = strlen(id),
		.n_signatures = n_signatures,
		.signature = signature,
		.content_type = content_type,
		.body = body,
		.body_len = len,
	};
	struct webhook_reply reply = { 0 };

	webhook_post(store, &in, &reply);
	return reply;
}

START_TEST(webhook_post_checks_in_order)
{
	struct secret_store *store = store_with(S1);
	size_t len;
	char *v1 = test_read_file("vectors/v1.body.bin", &len);
	struct webhook_reply reply;

	reply = post(store, "", V1_HEADER, 1, "application/json", v1, len);
	ck_assert_int_eq(reply.status, 0);	/* to be stored */
	webhook_job_free(reply.job);
	ck_assert_str_eq(reply.delivery_id, "5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071");
	ck_assert_int_eq(reply.attempt, 1);
	ck_assert_uint_eq(reply.notifications, 1);
	ck_assert(!reply.previous_secret);
	webhook_reply_finish(&reply);

	/* 1: unknown id first, whatever else is wrong. */
	reply = post(store, "nobody", NULL, 0, NULL, "", 0);
	ck_assert_int_eq(reply.status, 404);
	/* 2 before 6: a missing signature beats a bad media type. */
	reply = post(store, "", NULL, 0, "text/plain", v1, len);
	ck_assert_int_eq(reply.status, 400);
	ck_assert_str_eq(reply.message, "missing ms-signature header");
	reply = post(store, "", V1_HEADER, 2, "application/json", v1, len);
	ck_assert_int_eq(reply.status, 400);
	ck_assert_str_eq(reply.message, "more than one ms-signature header");
	/* 5 before 6. */
	reply = post(store, "", "sha256=00", 1, "text/plain", v1, len);
	ck_assert_int_eq(reply.status, 400);
	/* 6 before 7: a good signature on a non-JSON type. */
	reply = post(store, "", V1_HEADER, 1, "text/plain", v1, len);
	ck_assert_int_eq(reply.status, 415);
	reply = post(store, "", V1_HEADER, 1, NULL, v1, len);
	ck_assert_int_eq(reply.status, 415);
	free(v1);
	secret_store_free(store);
}
END_TEST

static char *
signed_header(const struct receiver_keys *keys, const char *body)
{
	unsigned char mac[32];
	static char header[80];

	ck_assert_int_eq(signature_compute(keys->current, body, strlen(body),
					   mac), 0);
	strcpy(header, "sha256=");
	hex_encode_upper(mac, 32, header + 7);
	return header;
}

START_TEST(webhook_post_body_rules)
{
	struct secret_store *store = store_with("tenant=" S1);
	const struct receiver_keys *keys = secret_store_find(store,
							     "tenant", 6);
	/* The bodies that get each status (0: taken, a job). */
	static const struct {
		int status;
		const char *bodies[5];	/* NULL ends */
	} cases[] = {
		{ 400, { "", "[]", "{\"Notifications\":{}}",
			 "{\"Notifications\":[1]}" } },
		{ 0, { "{}", "{\"Notifications\":[{\"Action\":1}]}" } },
	};
	size_t i, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (k = 0; cases[i].bodies[k] != NULL; k++) {
			const char *body = cases[i].bodies[k];
			struct webhook_reply reply =
				post(store, "TENANT", signed_header(keys, body),
				     1, "application/json", body,
				     strlen(body));

			ck_assert_msg(reply.status == cases[i].status,
				      "'%s': %d", body, reply.status);
			webhook_job_free(reply.job);
			webhook_reply_finish(&reply);
		}
	}
	secret_store_free(store);
}
END_TEST

/* An accepted delivery becomes a job for the inbox, with its own
 * copies and each notification's ordering keys. */
START_TEST(webhook_post_builds_job)
{
	struct secret_store *store = store_with("Tenant=" S1);
	const struct receiver_keys *keys = secret_store_find(store,
							     "tenant", 6);
	const char *body =
		"{\"Id\":\"d1\",\"Attempt\":2,\"Properties\":{\"p\":1},"
		"\"Notifications\":[{\"Action\":\"B\"},"
		"{\"Action\":\"CourseEnrollment\",\"Course\":{\"Id\":\"c\"},"
		"\"Users\":[{\"Id\":\"u1\"},{\"Email\":\"x\"},{\"Id\":\"u2\"}]}]}";
	struct webhook_reply reply;
	struct ingest_delivery *d;

	reply = post(store, "TENANT", signed_header(keys, body), 1,
		     "application/json", body, strlen(body));
	ck_assert_int_eq(reply.status, 0);
	ck_assert_ptr_nonnull(reply.job);
	d = &reply.job->ingest.d;
	ck_assert_str_eq(d->receiver_id, "tenant");
	ck_assert_str_eq(d->delivery_id, "d1");
	ck_assert_int_eq(d->attempt, 2);
	ck_assert_uint_eq(d->body_len, strlen(body));
	ck_assert_mem_eq(d->body, body, d->body_len);
	ck_assert(d->has_properties);
	ck_assert_uint_eq(d->n_notifications, 2);
	ck_assert_str_eq(d->notifications[0].action, "B");
	/* No course and learner: ordered within the delivery (no keys). */
	ck_assert_uint_eq(d->notifications[0].n_keys, 0);
	/* One key per learner with an Id. */
	ck_assert_uint_eq(d->notifications[1].n_keys, 2);
	ck_assert_str_eq(d->notifications[1].keys[0], "lc:c\x1fu1");
	ck_assert_str_eq(d->notifications[1].keys[1], "lc:c\x1fu2");
	webhook_job_free(reply.job);
	webhook_reply_finish(&reply);
	secret_store_free(store);
}
END_TEST

/* What the headers decide alone, in the same order and with the same
 * answers as after the body. */
START_TEST(webhook_post_head_decides)
{
	static const struct {
		const char *id;
		const char *signature;	/* NULL: none */
		size_t n_signatures;
		int status;		/* 0: the body decides */
		const char *message;
	} cases[] = {
		{ "", V1_HEADER, 1, 0, NULL },
		{ "", "sha256=" "00112233445566778899AABBCCDDEEFF"
		      "00112233445566778899AABBCCDDEEFF", 1, 0, NULL },
		{ "nobody", V1_HEADER, 1, 404, NULL },
		{ "nobody", NULL, 0, 404, NULL },
		{ "", NULL, 0, 400, "missing ms-signature header" },
		{ "", V1_HEADER, 2, 400, "more than one ms-signature header" },
		{ "", "sha1=00", 1, 400, NULL },
		{ "", "sha256=0g", 1, 400, NULL },
		/* Well formed, but no MAC is 3 bytes long. */
		{ "", "sha256=001122", 1, 400, NULL },
	};
	struct secret_store *store = store_with(S1);
	char long_value[400];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct webhook_reply reply = { 0 };
		const char *sig = cases[i].signature;
		bool go_on = webhook_post_head(
			store, cases[i].id, strlen(cases[i].id),
			cases[i].n_signatures, sig, sig != NULL ? strlen(sig) : 0,
			&reply);

		ck_assert_msg(go_on == (cases[i].status == 0), "case %zu", i);
		ck_assert_int_eq(reply.status, cases[i].status);
		if (cases[i].message != NULL)
			ck_assert_str_eq(reply.message, cases[i].message);
	}
	/* A value longer than any signature, not NUL-ended where it ends. */
	memset(long_value, 'A', sizeof(long_value));
	memcpy(long_value, "sha256=", 7);
	{
		struct webhook_reply reply = { 0 };

		ck_assert(!webhook_post_head(store, "", 0, 1, long_value,
					     sizeof(long_value) - 1, &reply));
		ck_assert_int_eq(reply.status, 400);
	}
	secret_store_free(store);
}
END_TEST

TEST_SUITE_OF(webhook,
	webhook_post_head_decides,
	webhook_query_parameter,
	webhook_query_nul,
	webhook_percent_decode,
	webhook_post_checks_in_order,
	webhook_post_body_rules,
	webhook_post_builds_job)
