/*
 * ms-signature parsing and HMAC verification: the shared vectors
 * (Microsoft's own constant included), every header form of PROTOCOL.md
 * §3, previous secrets, and RFC 4231 for the HMAC itself.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <whr/signature.h>

#include "secrets.h"
#include "signature.h"
#include "test-common.h"

#define V0_SECRET "123456789012345678901234567890123456789012345678"
#define V0_HEADER "sha256=DCDEB62502988CDEDE464AF6A97566D61288C446CFC46F74F341E11173FF30A1"
#define V1_SECRET "0123456789abcdef0123456789abcdef"
#define V1_HEX "11BDD3E02E9853644DE5CAF0415E089C871445D509B31388F5A7E5CB705BA8B5"
#define V2_HEADER "sha256=1F44ABC47772A0092ACC9CE4CE810210843578AF4FA97F7EE71E57044EB8582F"

static struct secret_store *
store_for(const char *current, const char *previous)
{
	struct secret_list cur = { 0 };
	struct secret_list prev = { 0 };
	struct secret_store *store;

	ck_assert_int_eq(secret_list_parse(current, false, "test", &cur), 0);
	if (previous != NULL)
		ck_assert_int_eq(secret_list_parse(previous, false, "test",
						   &prev), 0);
	store = secret_store_new(&cur, &prev, "test");
	ck_assert_ptr_nonnull(store);
	secret_list_finish(&cur);
	secret_list_finish(&prev);
	return store;
}

static enum signature_status
check(struct secret_store *store, const char *header, const char *body,
      size_t len)
{
	const struct receiver_keys *keys = secret_store_find(store, "", 0);
	struct signature sig;
	enum signature_status status;

	ck_assert_ptr_nonnull(keys);
	status = signature_parse(header, &sig);
	if (status != SIGNATURE_OK)
		return status;
	return signature_verify(keys, &sig, body, len);
}

START_TEST(signature_vectors)
{
	struct secret_store *s0 = store_for(V0_SECRET, NULL);
	struct secret_store *s1 = store_for(V1_SECRET, NULL);
	size_t l0, l1, l2;
	char *v0 = test_read_file("vectors/v0.body.bin", &l0);
	char *v1 = test_read_file("vectors/v1.body.bin", &l1);
	char *v2 = test_read_file("vectors/v2.body.bin", &l2);

	ck_assert_uint_eq(l0, 239);
	ck_assert_uint_eq(l1, 1078);
	ck_assert_uint_eq(l2, 1078);
	ck_assert_int_eq(check(s0, V0_HEADER, v0, l0), SIGNATURE_OK);
	ck_assert_int_eq(check(s1, "sha256=" V1_HEX, v1, l1), SIGNATURE_OK);
	ck_assert_int_eq(check(s1, V2_HEADER, v2, l2), SIGNATURE_OK);
	/* Each body's signature is its own. */
	ck_assert_int_eq(check(s1, V2_HEADER, v1, l1), SIGNATURE_MISMATCH);
	ck_assert_int_eq(check(s0, "sha256=" V1_HEX, v1, l1),
			 SIGNATURE_MISMATCH);
	free(v0);
	free(v1);
	free(v2);
	secret_store_free(s0);
	secret_store_free(s1);
}
END_TEST

/* The forms PROTOCOL.md §3 and the vectors' README accept or refuse. */
START_TEST(signature_header_forms)
{
	static const struct {
		const char *header;
		enum signature_status expected;
	} cases[] = {
		{ "sha256=" V1_HEX, SIGNATURE_OK },
		{ "sha256=11bdd3e02e9853644de5caf0415e089c871445d509b31388f5a7e5cb705ba8b5",
		  SIGNATURE_OK },
		{ " SHA256 = " V1_HEX " ", SIGNATURE_OK },
		{ "Sha256=" V1_HEX, SIGNATURE_OK },
		{ "sha256==" V1_HEX, SIGNATURE_OK },
		{ "=sha256=" V1_HEX "=", SIGNATURE_OK },
		{ "\tsha256\t=\t" V1_HEX, SIGNATURE_OK },
		{ "sha256", SIGNATURE_MALFORMED },
		{ "sha256=", SIGNATURE_MALFORMED },
		{ "=", SIGNATURE_MALFORMED },
		{ "", SIGNATURE_MALFORMED },
		{ "sha1=" V1_HEX, SIGNATURE_MALFORMED },
		{ "sha2566=" V1_HEX, SIGNATURE_MALFORMED },
		{ "k1=v1;k2=v2", SIGNATURE_MALFORMED },
		{ "sha256=" V1_HEX "=extra", SIGNATURE_MALFORMED },
		{ V1_HEX, SIGNATURE_MALFORMED },
		{ "sha256=" V1_HEX "0", SIGNATURE_NOT_HEX },	/* 65 digits */
		{ "sha256=11BD D3E0", SIGNATURE_NOT_HEX },
		{ "sha256=ZZ", SIGNATURE_NOT_HEX },
		{ "sha256=0x11", SIGNATURE_NOT_HEX },
		/* 62 digits: hex, but the wrong length, so a mismatch. */
		{ "sha256=11BDD3E02E9853644DE5CAF0415E089C871445D509B31388F5A7E5CB705BA8",
		  SIGNATURE_MISMATCH },
		{ "sha256=" V1_HEX "00", SIGNATURE_MISMATCH },
		{ "sha256=01BDD3E02E9853644DE5CAF0415E089C871445D509B31388F5A7E5CB705BA8B5",
		  SIGNATURE_MISMATCH },
	};
	struct secret_store *s1 = store_for(V1_SECRET, NULL);
	size_t len;
	char *v1 = test_read_file("vectors/v1.body.bin", &len);
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum signature_status got =
			check(s1, cases[i].header, v1, len);

		ck_assert_msg(got == cases[i].expected,
			      "case %zu '%s': got %d, expected %d", i,
			      cases[i].header, got, cases[i].expected);
	}
	free(v1);
	secret_store_free(s1);
}
END_TEST

START_TEST(signature_body_changed)
{
	struct secret_store *s1 = store_for(V1_SECRET, NULL);
	size_t len;
	char *v1 = test_read_file("vectors/v1.body.bin", &len);
	char *lf = malloc(len);
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (v1[i] != '\r')
			lf[n++] = v1[i];
	}
	ck_assert_uint_eq(n, 1046);
	ck_assert_int_eq(check(s1, "sha256=" V1_HEX, lf, n),
			 SIGNATURE_MISMATCH);
	ck_assert_int_eq(check(s1, "sha256=" V1_HEX, v1, len - 1),
			 SIGNATURE_MISMATCH);
	free(lf);
	free(v1);
	secret_store_free(s1);
}
END_TEST

/* The v1 vector and its header, checked with a store of these secrets. */
static enum signature_status
check_v1_with(const char *current, const char *previous)
{
	struct secret_store *s = store_for(current, previous);
	size_t len;
	char *v1 = test_read_file("vectors/v1.body.bin", &len);
	enum signature_status status = check(s, "sha256=" V1_HEX, v1, len);

	free(v1);
	secret_store_free(s);
	return status;
}

START_TEST(signature_wrong_secret)
{
	ck_assert_int_eq(check_v1_with(V1_SECRET "x", NULL),
			 SIGNATURE_MISMATCH);
}
END_TEST

START_TEST(signature_previous_secret)
{
	ck_assert_int_eq(check_v1_with("ffffffffffffffffffffffffffffffff",
				       V1_SECRET),
			 SIGNATURE_OK_PREVIOUS);
	/* The current secret wins when both would match. */
	ck_assert_int_eq(check_v1_with(V1_SECRET, V1_SECRET), SIGNATURE_OK);
}
END_TEST

/* RFC 4231 test case 2, twice on one context: the reused key must give
 * the same MAC each time. */
START_TEST(signature_rfc4231_and_reuse)
{
	static const unsigned char expected[] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
		0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
		0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
		0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
	};
	const char *data = "what do ya want for nothing?";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	unsigned char out[SIGNATURE_BYTES];
	int round;

	ck_assert_int_eq(EVP_MAC_init(ctx, (const unsigned char *)"Jefe", 4,
				      params), 1);
	for (round = 0; round < 3; round++) {
		ck_assert_int_eq(signature_compute(ctx, data, strlen(data),
						   out), 0);
		ck_assert_mem_eq(out, expected, sizeof(expected));
	}
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}
END_TEST

START_TEST(signature_messages_have_no_mac)
{
	enum signature_status s;

	for (s = SIGNATURE_OK; s <= SIGNATURE_ERROR; s++) {
		const char *msg = signature_status_message(s);

		ck_assert_ptr_nonnull(msg);
		ck_assert(strlen(msg) < 80);
		ck_assert_ptr_null(strstr(msg, "11BD"));
	}
}
END_TEST

/* The public one-off API agrees with the vectors and the receiver. */
START_TEST(signature_public_api)
{
	size_t l0, l1;
	char *v0 = test_read_file("vectors/v0.body.bin", &l0);
	char *v1 = test_read_file("vectors/v1.body.bin", &l1);
	char header[WHR_SIGNATURE_HEADER_SIZE];

	ck_assert_int_eq(whr_signature_compute(V0_SECRET, v0, l0, header), 0);
	ck_assert_str_eq(header, V0_HEADER);
	ck_assert_int_eq(whr_signature_compute(V1_SECRET, v1, l1, header), 0);
	ck_assert_str_eq(header, "sha256=" V1_HEX);
	ck_assert_int_eq(whr_signature_compute(NULL, v1, l1, header), -EINVAL);

	ck_assert_int_eq(whr_signature_check(V1_SECRET, v1, l1, " SHA256 = " V1_HEX),
			 WHR_SIGNATURE_OK);
	ck_assert_int_eq(whr_signature_check(V1_SECRET, v1, l1 - 1, header),
			 WHR_SIGNATURE_MISMATCH);
	ck_assert_int_eq(whr_signature_check(V0_SECRET, v1, l1, header),
			 WHR_SIGNATURE_MISMATCH);
	ck_assert_int_eq(whr_signature_check(V1_SECRET, v1, l1, "sha1=" V1_HEX),
			 WHR_SIGNATURE_MALFORMED);
	ck_assert_int_eq(whr_signature_check(V1_SECRET, v1, l1, "sha256=ABC"),
			 WHR_SIGNATURE_NOT_HEX);
	ck_assert_int_eq(whr_signature_check(V1_SECRET, NULL, 0, NULL),
			 WHR_SIGNATURE_ERROR);
	/* An empty body has a MAC too. */
	ck_assert_int_eq(whr_signature_compute(V1_SECRET, "", 0, header), 0);
	ck_assert_int_eq(whr_signature_check(V1_SECRET, "", 0, header),
			 WHR_SIGNATURE_OK);
	ck_assert_str_eq(whr_signature_status_message(WHR_SIGNATURE_MISMATCH),
			 "ms-signature does not match the body");
	free(v0);
	free(v1);
}
END_TEST

TEST_SUITE_OF(signature,
	signature_public_api,
	signature_vectors,
	signature_header_forms,
	signature_body_changed,
	signature_wrong_secret,
	signature_previous_secret,
	signature_rfc4231_and_reuse,
	signature_messages_have_no_mac)
