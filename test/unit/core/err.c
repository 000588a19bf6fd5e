/* Tests for lib/core/err.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "core/err.h"

static void test_set_formats_and_returns_code(void **state)
{
	struct hf_err err = { 0 };

	assert_int_equal(hf_err_set(&err, HF_EFORMAT, "tensor '%s' at %d",
				    "w", 9), HF_EFORMAT);
	assert_int_equal(err.code, HF_EFORMAT);
	assert_string_equal(err.msg, "tensor 'w' at 9");
}

static void test_prefix_prepends_context(void **state)
{
	struct hf_err err = { 0 };

	hf_err_set(&err, HF_EFORMAT, "missing key 'x'");
	assert_int_equal(hf_err_prefix(&err, "'%s'", "config.json"),
			 HF_EFORMAT);
	assert_string_equal(err.msg, "'config.json': missing key 'x'");
}

static void test_errno_names_the_cause(void **state)
{
	struct hf_err err = { 0 };

	errno = ENOENT;
	assert_int_equal(hf_err_errno(&err, "cannot open '%s'", "f"), HF_EIO);
	assert_string_equal(err.msg, "cannot open 'f': No such file or directory");
}

static void test_null_err_is_allowed(void **state)
{
	assert_int_equal(hf_err_set(NULL, HF_EIO, "x"), HF_EIO);
}

static void test_long_message_is_truncated_not_overflowed(void **state)
{
	struct hf_err err = { 0 };
	char big[4096];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	hf_err_set(&err, HF_EIO, "%s", big);
	assert_int_equal(strlen(err.msg), HF_ERR_MSG_MAX - 1);
}

static void test_names(void **state)
{
	assert_string_equal(hf_err_name(HF_EFORMAT), "format");
	assert_string_equal(hf_err_name(999), "unknown");
	assert_string_equal(hf_err_name(-1), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_formats_and_returns_code),
		cmocka_unit_test(test_prefix_prepends_context),
		cmocka_unit_test(test_errno_names_the_cause),
		cmocka_unit_test(test_null_err_is_allowed),
		cmocka_unit_test(test_long_message_is_truncated_not_overflowed),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
