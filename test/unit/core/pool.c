/* Tests for lib/core/pool.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>

#include "core/pool.h"

struct sum_job {
	const int *v;
	size_t n;
	long partial[16];
	atomic_int calls;
};

static void sum_part(void *ctx, int ith, int nth)
{
	struct sum_job *j = ctx;
	size_t b, e;
	long s = 0;

	hf_pool_split(j->n, ith, nth, &b, &e);
	for (size_t i = b; i < e; i++)
		s += j->v[i];
	j->partial[ith] = s;
	atomic_fetch_add(&j->calls, 1);
}

static void test_run_covers_every_item_once(void **state)
{
	static int v[10007];
	struct hf_pool *p;
	struct hf_err err = { 0 };

	for (int i = 0; i < 10007; i++)
		v[i] = i;
	for (int nt = 1; nt <= 5; nt++) {
		assert_int_equal(hf_pool_create(&p, nt, &err), 0);
		assert_int_equal(hf_pool_size(p), nt);
		for (int rep = 0; rep < 200; rep++) {
			struct sum_job j = { .v = v, .n = 10007 };
			long total = 0;

			hf_pool_run(p, sum_part, &j);
			for (int t = 0; t < nt; t++)
				total += j.partial[t];
			assert_int_equal(total, 10006L * 10007 / 2);
			assert_int_equal(atomic_load(&j.calls), nt);
		}
		hf_pool_free(p);
	}
}

static void test_split_is_a_partition(void **state)
{
	for (size_t n = 0; n < 50; n++)
		for (int nth = 1; nth < 9; nth++) {
			size_t prev = 0;

			for (int t = 0; t < nth; t++) {
				size_t b, e;

				hf_pool_split(n, t, nth, &b, &e);
				assert_int_equal(b, prev);
				assert_true(e >= b && e - b <= n / nth + 1);
				prev = e;
			}
			assert_int_equal(prev, n);
		}
}

static void test_null_pool_runs_inline(void **state)
{
	static int v[3] = { 1, 2, 3 };
	struct sum_job j = { .v = v, .n = 3 };

	hf_pool_run(NULL, sum_part, &j);
	assert_int_equal(j.partial[0], 6);
	hf_pool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_covers_every_item_once),
		cmocka_unit_test(test_split_is_a_partition),
		cmocka_unit_test(test_null_pool_runs_inline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
