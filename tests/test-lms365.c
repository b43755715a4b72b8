/*
 * Typed Learn365 events: placeholder until written.
 */
#include <whr/lms365.h>

#include "test-common.h"

START_TEST(lms365_placeholder)
{
	ck_assert_int_eq(whr_lms365_action_parse(NULL), WHR_LMS365_UNKNOWN);
}
END_TEST

TEST_SUITE(lms365)
{
	ADD_TEST(s, "placeholder", lms365_placeholder);
}
