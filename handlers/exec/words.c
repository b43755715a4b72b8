/*
 * Splitting the exec handler's COMMAND into words (see exec.h).
 */
#include "exec/exec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void
exec_words_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

bool
exec_words_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Appends @p word to the NULL-terminated vector @p *v of @p *n words. */
static int
push_word(char ***v, size_t *n, const char *word)
{
	char **grown = realloc(*v, (*n + 2) * sizeof(**v));

	if (grown == NULL)
		return -ENOMEM;
	*v = grown;
	grown[*n] = strdup(word);
	if (grown[*n] == NULL)
		return -ENOMEM;
	grown[++*n] = NULL;
	return 0;
}

int
exec_words_split(const char *text, char ***argv, const char **error)
{
	char *word = malloc(strlen(text) + 1);
	const char *p = text;
	char **v = NULL;
	size_t n = 0;
	int rc = 0;

	*error = NULL;
	if (word == NULL)
		return -ENOMEM;
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		size_t len = 0;

		while (exec_words_blank(*p))
			p++;
		if (*p == '\0')
			break;
		while (*p != '\0' && !exec_words_blank(*p)) {
			if (*p == '\'') {
				for (p++; *p != '\'' && *p != '\0'; p++)
					word[len++] = *p;
				if (*p == '\0') {
					*error = "unterminated single quote";
					rc = -EINVAL;
					goto out;
				}
				p++;
			} else if (*p == '"') {
				for (p++; *p != '"' && *p != '\0'; p++) {
					if (*p == '\\' &&
					    strchr("\"\\$`", p[1]) != NULL &&
					    p[1] != '\0')
						p++;
					word[len++] = *p;
				}
				if (*p == '\0') {
					*error = "unterminated double quote";
					rc = -EINVAL;
					goto out;
				}
				p++;
			} else if (*p == '\\') {
				if (p[1] == '\0') {
					*error = "a lone backslash at the end";
					rc = -EINVAL;
					goto out;
				}
				word[len++] = p[1];
				p += 2;
			} else {
				word[len++] = *p++;
			}
		}
		word[len] = '\0';
		rc = push_word(&v, &n, word);
		if (rc < 0)
			goto out;
	}
out:
	free(word);
	if (rc < 0) {
		exec_words_free(v);
		v = NULL;
	}
	*argv = v;
	return rc;
}
