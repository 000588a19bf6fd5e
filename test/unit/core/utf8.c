/* Tests for lib/core/utf8.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

static void test_valid_accepts_all_lengths(void **state)
{
	const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";

	assert_true(hf_utf8_valid(s, strlen(s), NULL));
	assert_int_equal(hf_utf8_count(s, strlen(s)), 4);
}

static void test_valid_rejects_bad_sequences_with_offset(void **state)
{
	static const struct {
		const char *s;
		size_t bad;
	} cases[] = {
		{ "ab\x80", 2 },		/* lone continuation */
		{ "\xC0\xAF", 0 },		/* overlong */
		{ "x\xE0\x80\xAF", 1 },		/* overlong 3-byte */
		{ "\xED\xA0\x80", 0 },		/* surrogate */
		{ "ok\xF4\x90\x80\x80", 2 },	/* > U+10FFFF */
		{ "\xE2\x82", 0 },		/* truncated */
		{ "\xFF", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t bad = 999;

		assert_false(hf_utf8_valid(cases[i].s, strlen(cases[i].s),
					   &bad));
		assert_int_equal(bad, cases[i].bad);
	}
}

static void test_encode_decode_round_trip_every_scalar(void **state)
{
	char buf[4];

	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		uint32_t back = 0;
		int n = hf_utf8_encode(cp, buf);

		if (cp >= 0xD800 && cp <= 0xDFFF) {
			assert_int_equal(n, 0);
			continue;
		}
		assert_int_not_equal(n, 0);
		assert_int_equal(hf_utf8_decode(buf, (size_t)n, &back), n);
		assert_int_equal(back, cp);
	}
	assert_int_equal(hf_utf8_encode(0x110000, buf), 0);
}

static void test_lossy_replaces_maximal_subparts(void **state)
{
	/* Python: b"a\xe2\x82b\xff".decode(errors="replace")
	 * == "a\ufffdb\ufffd" */
	size_t n;
	char *s = hf_utf8_lossy("a\xE2\x82" "b\xFF", 5, &n);

	assert_non_null(s);
	assert_string_equal(s, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
	assert_int_equal(n, strlen(s));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_accepts_all_lengths),
		cmocka_unit_test(test_valid_rejects_bad_sequences_with_offset),
		cmocka_unit_test(test_encode_decode_round_trip_every_scalar),
		cmocka_unit_test(test_lossy_replaces_maximal_subparts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
