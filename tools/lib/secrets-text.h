/*
 * A secrets list as whr serve reads it from a file (the stock
 * MS_WebHookReceiverSecret_Custom format: entries `secret` for the
 * default id or `id=secret`, separated by commas or line ends, each part
 * trimmed and empty parts dropped, ids without case), edited for
 * whr register: find the entry of an id, set it, and leave every other
 * byte of the text as it was.
 *
 * Messages name an entry by its position, never by its text: a secret
 * written in the wrong place must not end up on a terminal.
 */
#ifndef WHR_TOOLS_SECRETS_TEXT_H
#define WHR_TOOLS_SECRETS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* The longest receiver id whr serve takes, in bytes. */
#define SECRETS_ID_MAX 256

struct secrets_entry {
	size_t start;			/* the entry, trimmed */
	size_t len;
	const char *secret;		/* its secret, in the text */
	size_t secret_len;
};

/* Can @p id be written into a secrets list: at most SECRETS_ID_MAX
 * bytes, no ',' or '=', no space or control character ("" is the
 * default id)? */
bool secrets_id_valid(const char *id);

/* Find the entry of @p id ("" for the default id, compared without
 * ASCII case) in @p text. 1 with it in *entry, 0 when there is none, or
 * -EINVAL with a reason in @p err when whr serve would refuse the text
 * (an entry with more than one '=', an id given twice), since an edit
 * could not make it right. */
int secrets_text_find(const char *text, const char *id,
		      struct secrets_entry *entry, char *err,
		      size_t err_size);

/* @p text with the entry of @p id set to @p secret: written where the
 * old entry was, else appended on a line of its own. Every other entry,
 * separator and line end stays. Malloc'd, or NULL with a reason
 * in @p err (the text as secrets_text_find() refuses it, an id that
 * secrets_id_valid() refuses, out of memory). */
char *secrets_text_set(const char *text, const char *id, const char *secret,
		       char *err, size_t err_size);

#endif /* WHR_TOOLS_SECRETS_TEXT_H */
