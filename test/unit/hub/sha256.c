/* Tests for lib/hub/sha256.c: FIPS 180-2 appendix B vectors, on the
 * portable code and on SHA-NI where the CPU has it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hub/sha256.h"

static void hex_of(const void *data, size_t n, char out[65])
{
	struct hf_sha256 s;

	hf_sha256_init(&s);
	hf_sha256_update(&s, data, n);
	hf_sha256_hex(&s, out);
}

static void vectors(void)
{
	static const char two_block[] =
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char got[65];
	char *a = malloc(1000000);
	struct hf_sha256 s;

	hex_of("abc", 3, got);
	assert_string_equal(got, "ba7816bf8f01cfea414140de5dae2223"
			    "b00361a396177a9cb410ff61f20015ad");
	hex_of(two_block, strlen(two_block), got);
	assert_string_equal(got, "248d6a61d20638b8e5c026930c3e6039"
			    "a33ce45964ff2167f6ecedd419db06c1");
	hex_of("", 0, got);
	assert_string_equal(got, "e3b0c44298fc1c149afbf4c8996fb924"
			    "27ae41e4649b934ca495991b7852b855");
	/* one million 'a', fed in uneven pieces to cross block edges */
	assert_non_null(a);
	memset(a, 'a', 1000000);
	hf_sha256_init(&s);
	for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 1001 + 1)
		hf_sha256_update(&s, a + off, off + step > 1000000 ? 1000000 - off : step);
	hf_sha256_hex(&s, got);
	assert_string_equal(got, "cdc76e5c9914fb9281a1c7e284d73e67"
			    "f1809a48a497200e046d39ccc7112cd0");
	free(a);
}

static void test_fips_vectors_portable(void **state)
{
	hf_sha256_use_ref(1);
	vectors();
	hf_sha256_use_ref(0);
}

static void test_fips_vectors_fastest(void **state)
{
	vectors();
}

static void test_paths_agree_on_every_length(void **state)
{
	unsigned char buf[300];
	char a[65], b[65];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t n = 0; n <= sizeof(buf); n++) {
		hf_sha256_use_ref(1);
		hex_of(buf, n, a);
		hf_sha256_use_ref(0);
		hex_of(buf, n, b);
		if (strcmp(a, b))
			fail_msg("length %zu: portable %s, fast %s", n, a, b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fips_vectors_portable),
		cmocka_unit_test(test_fips_vectors_fastest),
		cmocka_unit_test(test_paths_agree_on_every_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
