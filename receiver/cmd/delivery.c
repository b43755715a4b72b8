/*
 * Delivery bodies as the ASP.NET sender builds them. STUB: compact only,
 * members concatenated.
 */
#include "delivery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

int
delivery_random_id(char id[33])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[16];
	int i;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	for (i = 0; i < 16; i++) {
		id[2 * i] = digits[raw[i] >> 4];
		id[2 * i + 1] = digits[raw[i] & 0x0f];
	}
	id[32] = '\0';
	return 0;
}

char *
delivery_body(const struct delivery *d, size_t *len, char *err,
	      size_t err_size)
{
	char id[33];
	size_t cap = 256;
	size_t i;
	char *body;
	size_t n;

	if (d->id == NULL && delivery_random_id(id) < 0) {
		snprintf(err, err_size, "no random bytes");
		return NULL;
	}
	cap += d->properties != NULL ? strlen(d->properties) : 2;
	for (i = 0; i < d->n_notifications; i++)
		cap += strlen(d->notifications[i]) + 1;
	cap += d->id != NULL ? strlen(d->id) : 32;
	body = malloc(cap);
	if (body == NULL) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	n = (size_t)snprintf(body, cap,
			     "{\"Id\":\"%s\",\"Attempt\":%lld,\"Properties\":%s,\"Notifications\":[",
			     d->id != NULL ? d->id : id, (long long)d->attempt,
			     d->properties != NULL ? d->properties : "{}");
	for (i = 0; i < d->n_notifications; i++)
		n += (size_t)snprintf(body + n, cap - n, "%s%s", i ? "," : "",
				      d->notifications[i]);
	n += (size_t)snprintf(body + n, cap - n, "]}");
	*len = n;
	return body;
}
