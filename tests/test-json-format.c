/*
 * Newtonsoft-style JSON formatting and delivery bodies (receiver/cmd).
 * PLACEHOLDER: issue 3 fills it in.
 */
#include "test-common.h"

START_TEST(json_format_placeholder)
{
	ck_abort_msg("tests for json-format.c are not written yet");
}
END_TEST

TEST_SUITE(json_format)
{
	ADD_TEST(s, "placeholder", json_format_placeholder);
}
