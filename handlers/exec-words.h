/*
 * The exec handler's COMMAND, split into words as a shell would split a
 * simple command, without expanding anything: blanks separate words,
 * '...' keeps everything literally, "..." keeps everything but \" \\ \$ \`
 * (which a backslash escapes, as in sh), and outside quotes a backslash
 * escapes the next character.
 */
#ifndef WHR_HANDLERS_EXEC_WORDS_H
#define WHR_HANDLERS_EXEC_WORDS_H

#include <stdbool.h>

/* Split @p text into words. Returns 0 with a NULL-terminated vector
 * (possibly of no words) in @p *argv, to free with exec_words_free();
 * -EINVAL with @p *error set to what is wrong; or -ENOMEM. */
int exec_words_split(const char *text, char ***argv, const char **error);

/* The blanks that separate words: space, tab, newline. */
bool exec_words_blank(char c);

/* Free a vector of exec_words_split(); NULL is fine. */
void exec_words_free(char **v);

#endif /* WHR_HANDLERS_EXEC_WORDS_H */
