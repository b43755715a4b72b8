/*
 * IP addresses and CIDR ranges (netaddr.h).
 */
#include "netaddr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "util.h"

static const uint8_t v4_mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

/* An IPv6 address, or the IPv4 address it maps. */
static void
set_v6(struct netaddr *out, const uint8_t bytes[16])
{
	if (memcmp(bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
		out->len = 4;
		memcpy(out->bytes, bytes + 12, 4);
		return;
	}
	out->len = 16;
	memcpy(out->bytes, bytes, 16);
}

int
netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		out->len = 4;
		memcpy(out->bytes, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		set_v6(out, in6->sin6_addr.s6_addr);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int
netaddr_parse(const char *text, size_t len, struct netaddr *out)
{
	char buf[NETADDR_TEXT_MAX];
	uint8_t bytes[16];

	if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
		text++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, len);
	buf[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, bytes) == 1) {
		out->len = 4;
		memcpy(out->bytes, bytes, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, bytes) == 1) {
		set_v6(out, bytes);
		return 0;
	}
	return -EINVAL;
}

bool
netaddr_equal(const struct netaddr *a, const struct netaddr *b)
{
	return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

void
netaddr_client_block(const struct netaddr *a, struct netaddr *out)
{
	*out = *a;
	if (out->len == 16)
		memset(out->bytes + 8, 0, 8);
}

uint32_t
netaddr_hash(const struct netaddr *a)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	size_t i;

	for (i = 0; i < a->len; i++) {
		h ^= a->bytes[i];
		h *= 16777619u;
	}
	return h;
}

void
netaddr_format(const struct netaddr *a, char *out, size_t size)
{
	if (a->len != 4 && a->len != 16) {
		snprintf(out, size, "-");
		return;
	}
	if (inet_ntop(a->len == 4 ? AF_INET : AF_INET6, a->bytes, out,
		      (socklen_t)size) == NULL)
		snprintf(out, size, "-");
}

int
cidr_parse(const char *text, size_t len, struct cidr *out)
{
	const char *slash = memchr(text, '/', len);
	size_t addr_len = slash != NULL ? (size_t)(slash - text) : len;
	unsigned prefix;
	size_t i;

	if (netaddr_parse(text, addr_len, &out->base) < 0)
		return -EINVAL;
	prefix = out->base.len * 8u;
	if (slash != NULL) {
		const char *digits = slash + 1;
		size_t n = len - addr_len - 1;

		if (n == 0 || n > 3)
			return -EINVAL;
		prefix = 0;
		for (i = 0; i < n; i++) {
			if (digits[i] < '0' || digits[i] > '9')
				return -EINVAL;
			prefix = prefix * 10 + (unsigned)(digits[i] - '0');
		}
		/* ::ffff:a.b.c.d/N counts IPv6 bits: 96 of them are the
		 * mapping's. */
		if (out->base.len == 4 && memchr(text, ':', addr_len) != NULL) {
			if (prefix < 96)
				return -EINVAL;
			prefix -= 96;
		}
		if (prefix > out->base.len * 8u)
			return -EINVAL;
	}
	out->prefix = prefix;
	/* Clear the host bits, so that "10.1.2.3/8" is 10.0.0.0/8. */
	for (i = 0; i < out->base.len; i++) {
		unsigned bit = (unsigned)i * 8;

		if (bit >= prefix)
			out->base.bytes[i] = 0;
		else if (prefix - bit < 8)
			out->base.bytes[i] &= (uint8_t)(0xff << (8 - (prefix - bit)));
	}
	return 0;
}

bool
cidr_contains(const struct cidr *range, const struct netaddr *a)
{
	unsigned full = range->prefix / 8;
	unsigned rest = range->prefix % 8;

	if (a->len != range->base.len)
		return false;
	if (memcmp(a->bytes, range->base.bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a->bytes[full] ^ range->base.bytes[full]) &
		(uint8_t)(0xff << (8 - rest))) == 0;
}

bool
cidr_list_contains(const struct cidr *list, size_t n, const struct netaddr *a)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (cidr_contains(&list[i], a))
			return true;
	}
	return false;
}

/* One X-Forwarded-For entry: an address, perhaps in brackets, perhaps
 * with a port after it (some proxies add one). */
static int
parse_entry(const char *s, size_t len, struct netaddr *out)
{
	const char *colon;

	trim_span(&s, &len);
	if (netaddr_parse(s, len, out) == 0)
		return 0;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close != NULL && close + 1 < s + len && close[1] == ':')
			return netaddr_parse(s, (size_t)(close - s) + 1, out);
		return -EINVAL;
	}
	/* a.b.c.d:port: one colon only, or it is IPv6. */
	colon = memchr(s, ':', len);
	if (colon != NULL &&
	    memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
		if (netaddr_parse(s, (size_t)(colon - s), out) == 0 &&
		    out->len == 4)
			return 0;
	}
	return -EINVAL;
}

void
netaddr_forwarded_client(const struct cidr *trusted, size_t n_trusted,
			 const struct netaddr *peer,
			 const char *const *fields, const size_t *lens,
			 size_t n_fields, struct netaddr *client)
{
	struct netaddr hop = *peer;	/* the nearest address so far */
	size_t f;

	*client = *peer;
	if (!cidr_list_contains(trusted, n_trusted, peer))
		return;
	for (f = n_fields; f-- > 0;) {
		const char *s = fields[f];
		size_t end = lens[f];

		/* The entries of this field, right to left. */
		while (end > 0) {
			size_t start = end;
			struct netaddr a;

			while (start > 0 && s[start - 1] != ',')
				start--;
			if (start < end) {
				const char *e = s + start;
				size_t n = end - start;

				trim_span(&e, &n);
				if (n > 0) {
					if (parse_entry(e, n, &a) < 0) {
						*client = hop;
						return;
					}
					if (!cidr_list_contains(trusted,
								n_trusted, &a)) {
						*client = a;
						return;
					}
					hop = a;
				}
			}
			end = start > 0 ? start - 1 : 0;
		}
	}
	*client = hop;
}
