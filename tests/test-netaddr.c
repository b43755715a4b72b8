/*
 * Addresses and ranges (netaddr.c): parsing, matching, and the client a
 * trusted proxy names in X-Forwarded-For.
 */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "netaddr.h"
#include "test-common.h"

static struct netaddr
addr(const char *text)
{
	struct netaddr a;

	ck_assert_msg(netaddr_parse(text, strlen(text), &a) == 0, "%s", text);
	return a;
}

static const char *
text_of(const struct netaddr *a)
{
	static char buf[NETADDR_TEXT_MAX];

	netaddr_format(a, buf, sizeof(buf));
	return buf;
}

START_TEST(netaddr_parse_and_format)
{
	static const struct {
		const char *in;
		const char *out;
	} good[] = {
		{ "127.0.0.1", "127.0.0.1" },
		{ "::1", "::1" },
		{ "[::1]", "::1" },
		{ "::ffff:10.1.2.3", "10.1.2.3" },	/* mapped: IPv4 */
		{ "2001:DB8::7", "2001:db8::7" },
	};
	static const char *bad[] = {
		"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::1::2", "[::1",
		"localhost", "1.2.3.4 ", "1.2.3.4:80",
	};
	struct netaddr a;
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		a = addr(good[i].in);
		ck_assert_str_eq(text_of(&a), good[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(netaddr_parse(bad[i], strlen(bad[i]), &a) < 0,
			      "%s", bad[i]);
	/* A dual-stack socket's view of an IPv4 client. */
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &in6.sin6_addr);
	ck_assert_int_eq(netaddr_from_sockaddr((struct sockaddr *)&in6, &a), 0);
	ck_assert_str_eq(text_of(&a), "192.0.2.1");
	a = addr("192.0.2.1");
	ck_assert(netaddr_equal(&a, &(struct netaddr){ 0 }) == false);
	memset(&a, 0, sizeof(a));
	ck_assert_str_eq(text_of(&a), "-");
}
END_TEST

START_TEST(netaddr_cidr)
{
	static const struct {
		const char *range;
		const char *in;
		const char *out;
	} cases[] = {
		{ "127.0.0.1", "127.0.0.1", "127.0.0.2" },
		{ "10.0.0.0/8", "10.255.1.2", "11.0.0.1" },
		{ "10.1.2.3/8", "10.9.9.9", "9.10.1.2" },	/* host bits */
		{ "192.168.1.128/25", "192.168.1.200", "192.168.1.127" },
		{ "0.0.0.0/0", "8.8.8.8", "::1" },
		{ "fd00::/8", "fd12::1", "fe80::1" },
		{ "::1/128", "::1", "::2" },
		{ "::ffff:10.0.0.0/104", "10.3.2.1", "11.0.0.0" },
		{ "2001:db8::/33", "2001:db8:7fff::1", "2001:db8:8000::1" },
	};
	static const char *bad[] = {
		"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x",
		"10.0.0.0/8/8", "/8", "::ffff:10.0.0.0/8", "10.0.0.0/0008",
	};
	struct cidr c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct netaddr in = addr(cases[i].in);
		struct netaddr out = addr(cases[i].out);

		ck_assert_int_eq(cidr_parse(cases[i].range,
					    strlen(cases[i].range), &c), 0);
		ck_assert_msg(cidr_contains(&c, &in), "%s in %s",
			      cases[i].in, cases[i].range);
		ck_assert_msg(!cidr_contains(&c, &out), "%s not in %s",
			      cases[i].out, cases[i].range);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cidr_parse(bad[i], strlen(bad[i]), &c) < 0,
			      "%s", bad[i]);
}
END_TEST

static const char *
client_of(const char *peer, const char *const *fields, size_t n)
{
	static struct cidr trusted[2];
	size_t lens[8];
	struct netaddr p = addr(peer), client;
	size_t i;

	ck_assert_int_eq(cidr_parse("127.0.0.1", 9, &trusted[0]), 0);
	ck_assert_int_eq(cidr_parse("10.0.0.0/8", 10, &trusted[1]), 0);
	for (i = 0; i < n; i++)
		lens[i] = strlen(fields[i]);
	netaddr_forwarded_client(trusted, 2, &p, fields, lens, n, &client);
	return text_of(&client);
}

START_TEST(netaddr_forwarded_client_is_the_rightmost_untrusted)
{
	const char *one[] = { "203.0.113.7" };
	const char *forged[] = { "1.1.1.1, 203.0.113.7" };
	const char *chain[] = { "198.51.100.1, 203.0.113.7, 10.0.0.5" };
	const char *fields[] = { "198.51.100.1", "203.0.113.7, 10.1.1.1",
				 "10.0.0.5" };
	const char *all_trusted[] = { "10.0.0.9, 10.0.0.5" };
	const char *junk[] = { "203.0.113.7, junk" };
	const char *ports[] = { "[2001:db8::1]:443, 10.0.0.5:8080" };
	const char *v4port[] = { "203.0.113.7:1234" };
	const char *spaces[] = { " ,  203.0.113.9 ,, " };

	/* A peer that is no trusted proxy is the client, whatever it says. */
	ck_assert_str_eq(client_of("192.0.2.1", one, 1), "192.0.2.1");
	ck_assert_str_eq(client_of("127.0.0.1", NULL, 0), "127.0.0.1");
	ck_assert_str_eq(client_of("127.0.0.1", one, 1), "203.0.113.7");
	/* Left of the first untrusted address is that client's word. */
	ck_assert_str_eq(client_of("127.0.0.1", forged, 1), "203.0.113.7");
	ck_assert_str_eq(client_of("127.0.0.1", chain, 1), "203.0.113.7");
	ck_assert_str_eq(client_of("10.2.3.4", fields, 3), "203.0.113.7");
	ck_assert_str_eq(client_of("127.0.0.1", all_trusted, 1), "10.0.0.9");
	/* Not an address: the hop right of it is as far as trust goes. */
	ck_assert_str_eq(client_of("127.0.0.1", junk, 1), "127.0.0.1");
	ck_assert_str_eq(client_of("127.0.0.1", ports, 1), "2001:db8::1");
	ck_assert_str_eq(client_of("127.0.0.1", v4port, 1), "203.0.113.7");
	ck_assert_str_eq(client_of("127.0.0.1", spaces, 1), "203.0.113.9");
}
END_TEST

/* One client for limits: an IPv4 address, or an IPv6 /64. */
START_TEST(netaddr_client_block_groups_ipv6_by_64)
{
	static const char *const same[][2] = {
		{ "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff" },
		{ "2001:db8:1:2::1", "2001:db8:1:2::" },
		{ "::ffff:192.0.2.1", "192.0.2.1" },	/* mapped: IPv4 */
	};
	static const char *const apart[][2] = {
		{ "2001:db8:1:2::1", "2001:db8:1:3::1" },
		{ "192.0.2.1", "192.0.2.2" },
	};
	struct netaddr a, b, ka, kb;
	size_t i;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		a = addr(same[i][0]);
		b = addr(same[i][1]);
		netaddr_client_block(&a, &ka);
		netaddr_client_block(&b, &kb);
		ck_assert_msg(netaddr_equal(&ka, &kb), "%s ~ %s", same[i][0],
			      same[i][1]);
	}
	for (i = 0; i < sizeof(apart) / sizeof(apart[0]); i++) {
		a = addr(apart[i][0]);
		b = addr(apart[i][1]);
		netaddr_client_block(&a, &ka);
		netaddr_client_block(&b, &kb);
		ck_assert_msg(!netaddr_equal(&ka, &kb), "%s ~ %s", apart[i][0],
			      apart[i][1]);
	}
	a = addr("192.0.2.9");
	netaddr_client_block(&a, &ka);
	ck_assert_str_eq(text_of(&ka), "192.0.2.9");
}
END_TEST

TEST_SUITE_OF(netaddr,
	netaddr_client_block_groups_ipv6_by_64,
	netaddr_parse_and_format,
	netaddr_cidr,
	netaddr_forwarded_client_is_the_rightmost_untrusted)
