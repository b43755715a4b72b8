/*
 * Delivery bodies as the ASP.NET WebHooks sender builds them
 * (WebHookSender.CreateWebHookRequestBody: a JObject with Id, Attempt,
 * Properties and Notifications, in that order, serialised with
 * JObject.ToString(), i.e. Newtonsoft's Formatting.Indented).
 */
#include "lib/delivery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "lib/json.h"

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

/* Parse @p json as a JSON object and append it to @p parent (as member
 * @p name, or as an element when @p name is NULL). @p what names it in
 * errors. */
static int
append_object(struct json_node *parent, const char *name, const char *json,
	      const char *what, char *err, size_t err_size)
{
	char why[200];
	struct json_node *node;

	node = json_tree_parse(json, strlen(json), why, sizeof(why));
	if (node == NULL) {
		json_error(err, err_size, "%s: %s", what, why);
		return -EINVAL;
	}
	if (node->kind != JSON_OBJECT) {
		json_tree_free(node);
		json_error(err, err_size, "%s is not a JSON object", what);
		return -EINVAL;
	}
	if (json_tree_append(parent, name, name ? strlen(name) : 0, node) < 0) {
		json_error(err, err_size, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

char *
delivery_body(const struct delivery *d, size_t *len, char *err,
	      size_t err_size)
{
	char id[33];
	char attempt[24];
	char what[48];
	struct json_node *body = NULL;
	struct json_node *list = NULL;
	char *text = NULL;
	size_t i;

	if (d->id == NULL && delivery_random_id(id) < 0)
		return json_error(err, err_size, "no random bytes for an Id");
	snprintf(attempt, sizeof(attempt), "%" PRId64, d->attempt);
	body = json_tree_new(JSON_OBJECT, NULL, 0);
	if (body == NULL)
		goto err_nomem;
	if (json_tree_append(body, "Id", 2,
			     json_tree_new(JSON_STRING,
					   d->id != NULL ? d->id : id,
					   strlen(d->id != NULL ? d->id : id)))
	    < 0 ||
	    json_tree_append(body, "Attempt", 7,
			     json_tree_new(JSON_LITERAL, attempt,
					   strlen(attempt))) < 0)
		goto err_nomem;
	if (append_object(body, "Properties",
			  d->properties != NULL ? d->properties : "{}",
			  "Properties", err, err_size) < 0)
		goto err;
	list = json_tree_new(JSON_ARRAY, NULL, 0);
	if (list == NULL || json_tree_append(body, "Notifications", 13,
					     list) < 0)
		goto err_nomem;
	for (i = 0; i < d->n_notifications; i++) {
		snprintf(what, sizeof(what), "notification %zu", i + 1);
		if (append_object(list, NULL, d->notifications[i], what, err,
				  err_size) < 0)
			goto err;
	}
	text = json_tree_write(body, d->style, len, err, err_size);
	goto err;

err_nomem:
	json_error(err, err_size, "out of memory");
err:
	json_tree_free(body);
	return text;
}
