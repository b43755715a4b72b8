/*
 * The tools' HTTP client. PLACEHOLDER: issue 3 fills it in.
 */
#include "http-client.h"
