/*
 * The jsonl handler's line: one notification as one JSON object on one
 * line (see docs/handlers.md, "The line").
 */
#include "jsonl/jsonl.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A growing buffer; zeroed to start. */
struct buf {
	char *data;
	size_t len;
	size_t size;
	bool failed;		/* out of memory: data is incomplete */
};

static void
buf_reserve(struct buf *b, size_t more)
{
	size_t size;
	char *grown;

	if (b->failed || b->len + more <= b->size)
		return;
	size = b->size != 0 ? b->size : 256;
	while (size < b->len + more)
		size *= 2;
	grown = realloc(b->data, size);
	if (grown == NULL) {
		b->failed = true;
		return;
	}
	b->data = grown;
	b->size = size;
}

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->failed)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at @p s (at most @p n bytes), or
 * 0 when it is not one. */
static size_t
utf8_length(const unsigned char *s, size_t n)
{
	size_t len;
	size_t i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* @p s as a JSON string: quotes, backslashes and control characters
 * escaped; invalid UTF-8 (which the receiver's parser does not let
 * through) becomes U+FFFD rather than an invalid line. */
static void
add_string(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	char esc[8];

	buf_add(b, "\"", 1);
	while (n > 0) {
		size_t len = utf8_length(p, n);

		if (len == 0) {
			buf_adds(b, "\\ufffd");
			len = 1;
		} else if (*p == '"') {
			buf_adds(b, "\\\"");
		} else if (*p == '\\') {
			buf_adds(b, "\\\\");
		} else if (*p == '\n') {
			buf_adds(b, "\\n");
		} else if (*p == '\r') {
			buf_adds(b, "\\r");
		} else if (*p == '\t') {
			buf_adds(b, "\\t");
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			buf_adds(b, esc);
		} else {
			buf_add(b, (const char *)p, len);
		}
		p += len;
		n -= len;
	}
	buf_add(b, "\"", 1);
}

static void
add_string_or_null(struct buf *b, const char *s)
{
	if (s == NULL)
		buf_adds(b, "null");
	else
		add_string(b, s);
}

/* The notification's JSON on one line: whitespace outside strings
 * dropped, strings copied byte for byte. The receiver's parser accepted
 * it, so it is well formed and its strings hold no raw control
 * character; one would still be escaped (same value), never written as
 * a line break. */
static void
add_compact_json(struct buf *b, const char *json, size_t len)
{
	bool in_string = false;
	bool escaped = false;
	size_t start = 0;	/* of the run of bytes not yet copied */
	size_t i;
	char esc[8];

	buf_reserve(b, len);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)json[i];

		if (in_string) {
			if (escaped) {
				escaped = false;
			} else if (c == '\\') {
				escaped = true;
			} else if (c == '"') {
				in_string = false;
			} else if (c < 0x20) {
				buf_add(b, json + start, i - start);
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				buf_adds(b, esc);
				start = i + 1;
			}
		} else if (c == '"') {
			in_string = true;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
			   c == '\f' || c == '\v') {
			buf_add(b, json + start, i - start);
			start = i + 1;
		}
	}
	buf_add(b, json + start, len - start);
}

/* "2026-11-29T08:50:32.123456Z" */
static void
add_time(struct buf *b, int64_t us)
{
	int64_t s = us / 1000000;
	int64_t frac = us % 1000000;
	time_t t;
	struct tm tm;
	char date[32];
	char text[48];

	if (frac < 0) {
		frac += 1000000;
		s--;
	}
	t = (time_t)s;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		buf_adds(b, "null");
		return;
	}
	snprintf(text, sizeof(text), "\"%s.%06dZ\"", date, (int)frac);
	buf_adds(b, text);
}

char *
jsonl_line(const struct whr_event *ev, size_t *line_len)
{
	struct buf line = { 0 };
	struct buf *b = &line;
	char num[32];
	const char *json;
	size_t len;

	buf_adds(b, "{\"receiver_id\":");
	add_string(b, whr_event_receiver_id(ev));
	buf_adds(b, ",\"delivery_id\":");
	add_string_or_null(b, whr_event_delivery_id(ev));
	snprintf(num, sizeof(num), ",\"attempt\":%lld",
		 (long long)whr_event_attempt(ev));
	buf_adds(b, num);
	buf_adds(b, ",\"action\":");
	add_string_or_null(b, whr_event_action(ev));
	snprintf(num, sizeof(num), ",\"index\":%zu", whr_event_index(ev));
	buf_adds(b, num);
	snprintf(num, sizeof(num), ",\"count\":%zu", whr_event_count(ev));
	buf_adds(b, num);
	buf_adds(b, ",\"received_at\":");
	add_time(b, whr_event_received_at(ev));
	buf_adds(b, ",\"notification\":");
	json = whr_event_json(ev, &len);
	add_compact_json(b, json, len);
	buf_adds(b, "}\n");
	if (line.failed) {
		free(line.data);
		return NULL;
	}
	*line_len = line.len;
	return line.data;
}
