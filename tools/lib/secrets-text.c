/*
 * Finding and setting one entry of a secrets list, in its text (see
 * secrets-text.h). The entries are read as whr serve reads them
 * (receiver/secrets.c), but as spans of the text: what is not changed is
 * written back byte for byte.
 */
#include "lib/secrets-text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

static void
trim(const char *text, size_t *start, size_t *len)
{
	while (*len > 0 && space(text[*start])) {
		(*start)++;
		(*len)--;
	}
	while (*len > 0 && space(text[*start + *len - 1]))
		(*len)--;
}

bool
secrets_id_valid(const char *id)
{
	const unsigned char *p;

	if (strlen(id) > SECRETS_ID_MAX)
		return false;
	for (p = (const unsigned char *)id; *p != '\0'; p++) {
		if (*p <= ' ' || *p == 0x7f || *p == ',' || *p == '=')
			return false;
	}
	return true;
}

/* The parts of the entry [start, start + len) split on '=', trimmed,
 * empty ones dropped: their number (3 meaning three or more), the first
 * two in @p part. */
static size_t
split(const char *text, size_t start, size_t len, size_t part[2][2])
{
	size_t n = 0;
	size_t i = start;
	size_t end = start + len;

	while (i <= end) {
		size_t j = i;
		size_t ps;
		size_t pl;

		while (j < end && text[j] != '=')
			j++;
		ps = i;
		pl = j - i;
		trim(text, &ps, &pl);
		if (pl > 0) {
			if (n < 2) {
				part[n][0] = ps;
				part[n][1] = pl;
			}
			n++;
		}
		i = j + 1;
	}
	return n > 3 ? 3 : n;
}

static bool
same_id(const char *text, size_t start, size_t len, const char *id)
{
	return strlen(id) == len && strncasecmp(text + start, id, len) == 0;
}

int
secrets_text_find(const char *text, const char *id,
		  struct secrets_entry *entry, char *err, size_t err_size)
{
	size_t position = 0;
	size_t i = 0;
	int found = 0;

	while (text[i] != '\0') {
		size_t start = i;
		size_t len;
		size_t part[2][2];
		size_t n;
		size_t id_start = 0;
		size_t id_len = 0;

		while (text[i] != '\0' && text[i] != ',' && text[i] != '\n' &&
		       text[i] != '\r')
			i++;
		len = i - start;
		if (text[i] != '\0')
			i++;
		trim(text, &start, &len);
		if (len == 0)
			continue;
		position++;
		n = split(text, start, len, part);
		if (n == 0 || n == 3) {
			snprintf(err, err_size, "entry %zu %s", position,
				 n == 0 ? "has neither an id nor a secret" :
				 "has more than one '=' (whr serve refuses "
				 "it too)");
			return -EINVAL;
		}
		if (n == 2) {
			id_start = part[0][0];
			id_len = part[0][1];
		}
		if (!same_id(text, id_start, id_len, id))
			continue;
		if (found) {
			snprintf(err, err_size, "entry %zu gives %s a second "
				 "time (whr serve refuses it too)", position,
				 id[0] == '\0' ? "the default id" :
				 "the same id");
			return -EINVAL;
		}
		found = 1;
		entry->start = start;
		entry->len = len;
		entry->secret = text + part[n - 1][0];
		entry->secret_len = part[n - 1][1];
	}
	return found;
}

char *
secrets_text_set(const char *text, const char *id, const char *secret,
		 char *err, size_t err_size)
{
	struct secrets_entry e;
	size_t len = strlen(text);
	char *out = NULL;
	int rc;

	if (!secrets_id_valid(id)) {
		snprintf(err, err_size, "the id cannot be written into a "
			 "secrets list (a ',', '=', space or control "
			 "character, or more than %d bytes)", SECRETS_ID_MAX);
		return NULL;
	}
	rc = secrets_text_find(text, id, &e, err, err_size);
	if (rc < 0)
		return NULL;
	if (rc == 1)
		rc = asprintf(&out, "%.*s%s%s%s%s", (int)e.start, text, id,
			      id[0] != '\0' ? "=" : "", secret,
			      text + e.start + e.len);
	else
		rc = asprintf(&out, "%s%s%s%s%s\n", text,
			      len > 0 && text[len - 1] != '\n' ? "\n" : "",
			      id, id[0] != '\0' ? "=" : "", secret);
	if (rc < 0) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	return out;
}
