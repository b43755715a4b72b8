/*
 * A request's head read from the wire (front/head.c): where it ends, and
 * the strict reading that refuses what a proxy could frame otherwise.
 */
#include <string.h>

#include "front/head.h"
#include "test-common.h"

/* The end is found wherever the bytes are cut, as evhttp would find it:
 * lines end with LF, a CR before it is not part of the line. */
START_TEST(head_scan_finds_the_end)
{
	static const struct {
		const char *text;
		size_t end;		/* 0: not whole */
	} cases[] = {
		{ "GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY", 27 },
		{ "GET / HTTP/1.1\nHost: x\n\nBODY", 24 },
		{ "GET / HTTP/1.1\r\nHost: x\n\r\n", 26 },
		{ "GET / HTTP/1.1\r\nHost: x\r\n", 0 },
		{ "GET / HTTP/1.1\r\nX: a\r\r\n\r\n", 25 },
		{ "GET / HTTP/1.1\r\n\r\r\n\r\n", 21 },
		{ "\r\nGET / HTTP/1.1\r\n\r\n", 2 },
		{ "GET / HTTP/1.1\r\nHost: x\r\n\r", 0 },
	};
	size_t i, cut;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *t = cases[i].text;
		size_t len = strlen(t);

		/* In one piece, and cut in two everywhere. */
		for (cut = 0; cut <= len; cut++) {
			struct head_scan s;
			bool found;

			head_scan_init(&s);
			found = head_scan_feed(&s, t, cut);
			if (!found)
				found = head_scan_feed(&s, t + cut, len - cut);
			ck_assert_msg(found == (cases[i].end != 0),
				      "case %zu cut %zu", i, cut);
			if (found)
				ck_assert_uint_eq(s.len, cases[i].end);
		}
	}
}
END_TEST

static void
parse(const char *text, struct http_head *h)
{
	http_head_parse(text, strlen(text), h);
}

START_TEST(head_reads_the_fields_it_needs)
{
	const char *text =
		"POST /api/webhooks/incoming/custom/t1?x=1 HTTP/1.1\r\n"
		"Host: example.com\r\n"
		"Content-Type: application/json\r\n"
		"ms-signature:  sha256=AB \t\r\n"
		"Content-Length: 0042\r\n"
		"X-Forwarded-For: 203.0.113.7\r\n"
		"x-forwarded-for: 10.0.0.1, 10.0.0.2\r\n"
		"MS-Signature: again\r\n"
		"\r\n";
	struct http_head h;
	size_t len;
	const char *path;

	parse(text, &h);
	ck_assert_ptr_null(h.error);
	ck_assert(http_head_method_is(&h, "POST"));
	ck_assert(!http_head_method_is(&h, "post"));
	path = http_head_path(&h, &len);
	ck_assert_uint_eq(len, strlen("/api/webhooks/incoming/custom/t1"));
	ck_assert(memcmp(path, "/api/webhooks/incoming/custom/t1", len) == 0);
	ck_assert_int_eq(h.major, 1);
	ck_assert_int_eq(h.minor, 1);
	ck_assert_int_eq(h.content_length, 42);
	ck_assert(!h.chunked);
	ck_assert_uint_eq(h.n_signatures, 2);
	ck_assert_uint_eq(h.signature.len, 9);
	ck_assert(memcmp(h.signature.p, "sha256=AB", 9) == 0);
	ck_assert_uint_eq(h.n_forwarded, 2);
	ck_assert_uint_eq(h.forwarded[1].len, strlen("10.0.0.1, 10.0.0.2"));

	parse("GET /healthz HTTP/1.0\r\n\r\n", &h);
	ck_assert_ptr_null(h.error);
	ck_assert_int_eq(h.minor, 0);
	ck_assert_int_eq(h.content_length, -1);
	parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n",
	      &h);
	ck_assert_ptr_null(h.error);
	ck_assert(h.chunked);
	/* evhttp routes any target: the log shows it escaped. */
	parse("GET /a\"b\\c\x01 HTTP/1.1\r\nHost: x\r\n\r\n", &h);
	ck_assert_ptr_null(h.error);
}
END_TEST

/* Each refused with the reason given, table-driven. */
START_TEST(head_refuses_what_is_framed_two_ways)
{
	static const struct {
		const char *text;
		const char *error;	/* a part of it */
	} cases[] = {
		{ "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
		  "whitespace between" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nContent-Length\t: 5\r\n\r\n",
		  "whitespace between" },
		{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "whitespace between" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
		  "Content-Length" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
		  "Content-Length" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
		  "Content-Length" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1234567890123456789\r\n\r\n",
		  "Content-Length" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
		  "content-length: 1\r\n\r\n",
		  "more than one Content-Length" },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		  "other than chunked" },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n",
		  "other than chunked" },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 5\r\n\r\n",
		  "both" },
		{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		  "HTTP/1.0" },
		{ "GET / HTTP/1.1\r\n\r\n", "without Host" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		  "more than one Host" },
		{ "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
		  "more than one Host" },
		{ "HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
		  "HEAD or TRACE" },
		{ "TRACE / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		  "HEAD or TRACE" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
		  "folding" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", "CR or NUL" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", "whitespace" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", "without a colon" },
		{ "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", "field name" },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX(1): v\r\n\r\n", "field name" },
		{ "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "request line" },
		{ "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", "request line" },
		{ "GET / http/1.1\r\nHost: x\r\n\r\n", "request line" },
		{ "GET /\r\nHost: x\r\n\r\n", "request line" },
		{ "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "version" },
		{ "\r\n", "request line" },
	};
	struct http_head h;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse(cases[i].text, &h);
		ck_assert_msg(h.error != NULL, "case %zu accepted", i);
		ck_assert_msg(strstr(h.error, cases[i].error) != NULL,
			      "case %zu: %s", i, h.error);
	}
	/* What stays allowed. */
	parse("HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &h);
	ck_assert_ptr_null(h.error);
	parse("GET / HTTP/1.0\r\n\r\n", &h);
	ck_assert_ptr_null(h.error);
	parse("PROPFIND / HTTP/1.1\r\nHost: x\r\nX-A:\r\n\r\n", &h);
	ck_assert_ptr_null(h.error);
}
END_TEST

/* What is not HTTP is seen before a whole head. */
START_TEST(head_start_bad)
{
	ck_assert(!http_head_start_bad("", 0));
	ck_assert(!http_head_start_bad("PO", 2));
	ck_assert(!http_head_start_bad("POST /x HTT", 11));
	ck_assert(!http_head_start_bad("POST /x HTTP/1.1\r\nHo", 20));
	ck_assert(http_head_start_bad("\x16\x03\x01\x02\x00", 5));
	ck_assert(http_head_start_bad("GET\t/", 5));
	ck_assert(http_head_start_bad("GET / HTTP/9.9\r\n", 16));
	ck_assert(http_head_start_bad("GARBAGE\r\n", 9));
}
END_TEST

TEST_SUITE_OF(head,
	head_scan_finds_the_end,
	head_reads_the_fields_it_needs,
	head_refuses_what_is_framed_two_ways,
	head_start_bad)
