/*
 * A request's head from the wire (front/head.c): the end is found the
 * same however the bytes are cut; a head that reads without error is
 * sound (a token method, HTTP/1.x, spans inside the text, one framing);
 * no prefix of a good head is taken for something that is not HTTP
 * (whr would refuse a slow sender's good request); and the client behind
 * trusted proxies is read from any X-Forwarded-For without harm.
 */
#include "fuzz-common.h"

#include <string.h>

#include "front/head.h"
#include "netaddr.h"

static bool
inside(const struct head_span *s, const char *text, size_t len)
{
	return s->len == 0 ||
	       (s->p >= text && s->p + s->len <= text + len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct head_scan whole, bytes;
	bool found, found_bytes = false;
	struct http_head h;
	size_t i;

	head_scan_init(&whole);
	found = head_scan_feed(&whole, text, size);
	head_scan_init(&bytes);
	for (i = 0; i < size && !found_bytes; i++)
		found_bytes = head_scan_feed(&bytes, text + i, 1);
	FUZZ_CHECK(found == found_bytes);
	if (!found)
		return 0;
	FUZZ_CHECK(whole.len == bytes.len && whole.len <= size);

	http_head_parse(text, whole.len, &h);
	if (h.error != NULL)
		return 0;
	FUZZ_CHECK(h.method.len > 0 && h.target.len > 0);
	FUZZ_CHECK(inside(&h.method, text, whole.len));
	FUZZ_CHECK(inside(&h.target, text, whole.len));
	FUZZ_CHECK(inside(&h.signature, text, whole.len));
	FUZZ_CHECK(h.major == 1 && h.minor >= 0 && h.minor <= 9);
	FUZZ_CHECK(h.content_length >= -1);
	FUZZ_CHECK(!(h.chunked && h.content_length >= 0));
	FUZZ_CHECK(h.n_forwarded <= HEAD_FORWARDED_MAX);
	for (i = 0; i < h.n_forwarded; i++)
		FUZZ_CHECK(inside(&h.forwarded[i], text, whole.len));
	for (i = 0; i <= whole.len && i <= 512; i++)
		FUZZ_CHECK(!http_head_start_bad(text, i));

	{
		struct cidr trusted[2];
		const char *fields[HEAD_FORWARDED_MAX];
		size_t lens[HEAD_FORWARDED_MAX];
		struct netaddr peer, client;

		FUZZ_CHECK(cidr_parse("127.0.0.0/8", 11, &trusted[0]) == 0);
		FUZZ_CHECK(cidr_parse("::1", 3, &trusted[1]) == 0);
		FUZZ_CHECK(netaddr_parse("127.0.0.1", 9, &peer) == 0);
		for (i = 0; i < h.n_forwarded; i++) {
			fields[i] = h.forwarded[i].p;
			lens[i] = h.forwarded[i].len;
		}
		netaddr_forwarded_client(trusted, 2, &peer, fields, lens,
					 h.n_forwarded, &client);
		FUZZ_CHECK(client.len == 4 || client.len == 16);
	}
	return 0;
}
