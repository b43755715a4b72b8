/*
 * IP addresses and CIDR ranges, as whr tells its clients apart: the
 * address of a connection's peer, the ranges of --trusted-proxy, and the
 * client a trusted proxy names in X-Forwarded-For. An IPv4-mapped IPv6
 * address (a dual-stack socket's view of an IPv4 client) is kept as the
 * IPv4 address it is, so that one range matches it either way.
 */
#ifndef WHR_RECEIVER_NETADDR_H
#define WHR_RECEIVER_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

struct netaddr {
	uint8_t len;		/* 4 (IPv4) or 16 (IPv6); 0: none */
	uint8_t bytes[16];
};

struct cidr {
	struct netaddr base;	/* host bits cleared */
	unsigned prefix;	/* leading bits that must match */
};

/* The address that counts as one client for limits: IPv4 as it is, an
 * IPv6 one as its /64, the block one line (one customer, one host with
 * privacy addresses) is given, which it may draw addresses from at
 * will. */
void netaddr_client_block(const struct netaddr *a, struct netaddr *out);

/* Room for any address as text, with its NUL (INET6_ADDRSTRLEN). */
#define NETADDR_TEXT_MAX 46

/* The address of an AF_INET or AF_INET6 socket address; -EAFNOSUPPORT
 * for any other family. */
int netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out);

/* @p len bytes of text: an IPv4 address, or an IPv6 one, bare or in
 * brackets. 0 or -EINVAL. */
int netaddr_parse(const char *text, size_t len, struct netaddr *out);

bool netaddr_equal(const struct netaddr *a, const struct netaddr *b);
uint32_t netaddr_hash(const struct netaddr *a);

/* The address as text ("-" for none) in @p out, of @p size bytes
 * (NETADDR_TEXT_MAX is enough). */
void netaddr_format(const struct netaddr *a, char *out, size_t size);

/* "ADDRESS" or "ADDRESS/PREFIX" (a bare address is a range of one). 0 or
 * -EINVAL. */
int cidr_parse(const char *text, size_t len, struct cidr *out);

bool cidr_contains(const struct cidr *range, const struct netaddr *a);
bool cidr_list_contains(const struct cidr *list, size_t n,
			const struct netaddr *a);

/* The client behind the proxies of @p trusted: @p fields are the values
 * of the request's X-Forwarded-For fields in order (one list, each proxy
 * having added its peer on the right). Walking from the right, the first
 * address that is not a trusted proxy is the client: the addresses left
 * of it were written by someone whr does not trust. When every address
 * is trusted, the leftmost is the client; when an entry is not an
 * address, the one right of it is (or @p peer). A @p peer that is not
 * trusted is the client itself, whatever the header says. */
void netaddr_forwarded_client(const struct cidr *trusted, size_t n_trusted,
			      const struct netaddr *peer,
			      const char *const *fields, const size_t *lens,
			      size_t n_fields, struct netaddr *client);

#endif /* WHR_RECEIVER_NETADDR_H */
