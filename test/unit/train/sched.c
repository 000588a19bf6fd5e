/* Tests for lib/train/sched.c: the multipliers of
 * transformers.optimization's schedules, written out here from their
 * lr_lambda functions (peft-lora.md s. 9), and --warmup parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "train/sched.h"

static void test_parse_names(void **state)
{
	enum hf_sched_kind k;
	struct hf_err err = { 0 };

	assert_int_equal(hf_sched_parse(&k, "cosine", &err), 0);
	assert_int_equal(k, HF_SCHED_COSINE);
	assert_int_equal(hf_sched_parse(&k, "constant_with_warmup", &err), 0);
	assert_string_equal(hf_sched_name(k), "constant_with_warmup");
	assert_int_equal(hf_sched_parse(&k, "polynomial", &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "'polynomial'"));
}

/* get_linear_schedule_with_warmup(W = 3, T = 10) */
static void test_linear_with_warmup(void **state)
{
	struct hf_sched s = { HF_SCHED_LINEAR, 3, 10, 0.5 };
	static const double want[] = {
		0.0, 1.0 / 3, 2.0 / 3, 1.0, 6.0 / 7, 5.0 / 7, 4.0 / 7, 3.0 / 7,
		2.0 / 7, 1.0 / 7, 0.0, 0.0,
	};

	for (uint64_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (fabs(hf_sched_mult(&s, i) - want[i]) > 1e-15)
			fail_msg("step %d: got %.17g want %.17g", (int)i, hf_sched_mult(&s, i), want[i]);
}

/* get_cosine_schedule_with_warmup(W = 2, T = 12), num_cycles 0.5 */
static void test_cosine_with_warmup(void **state)
{
	struct hf_sched s = { HF_SCHED_COSINE, 2, 12, 0.5 };

	assert_true(hf_sched_mult(&s, 0) == 0.0);
	assert_true(hf_sched_mult(&s, 1) == 0.5);
	assert_true(hf_sched_mult(&s, 2) == 1.0);
	for (uint64_t i = 2; i < 14; i++) {
		double p = (double)(i - 2) / 10.0;
		double want = fmax(0.0, 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * p)));

		if (fabs(hf_sched_mult(&s, i) - want) > 1e-15)
			fail_msg("step %d: got %.17g want %.17g", (int)i, hf_sched_mult(&s, i), want);
	}
	assert_true(fabs(hf_sched_mult(&s, 7) - 0.5) < 1e-15);	/* half way */
	assert_true(hf_sched_mult(&s, 12) < 1e-15);
}

static void test_constant_kinds(void **state)
{
	struct hf_sched c = { HF_SCHED_CONSTANT, 5, 10, 0.5 };
	struct hf_sched cw = { HF_SCHED_CONSTANT_WITH_WARMUP, 4, 10, 0.5 };

	assert_true(hf_sched_mult(&c, 0) == 1.0);	/* constant ignores W */
	assert_true(hf_sched_mult(&cw, 0) == 0.0);
	assert_true(hf_sched_mult(&cw, 2) == 0.5);
	assert_true(hf_sched_mult(&cw, 4) == 1.0);
	assert_true(hf_sched_mult(&cw, 100) == 1.0);
}

/* W = T: max(1, T - W) keeps linear from dividing by zero */
static void test_no_steps_after_warmup(void **state)
{
	struct hf_sched s = { HF_SCHED_LINEAR, 4, 4, 0.5 };

	assert_true(hf_sched_mult(&s, 3) == 0.75);
	assert_true(hf_sched_mult(&s, 4) == 0.0);
}

static void test_warmup_steps_or_ratio(void **state)
{
	struct hf_err err = { 0 };
	uint64_t w;

	assert_int_equal(hf_sched_warmup(&w, "7", 100, &err), 0);
	assert_int_equal(w, 7);
	assert_int_equal(hf_sched_warmup(&w, "0.03", 100, &err), 0);
	assert_int_equal(w, 3);		/* ceil(0.03 * 100) */
	assert_int_equal(hf_sched_warmup(&w, "0.1", 15, &err), 0);
	assert_int_equal(w, 2);		/* ceil(1.5) */
	assert_int_equal(hf_sched_warmup(&w, "0", 15, &err), 0);
	assert_int_equal(w, 0);
	assert_int_equal(hf_sched_warmup(&w, "1", 15, &err), 0);
	assert_int_equal(w, 1);
	assert_int_equal(hf_sched_warmup(&w, "2.5", 15, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "'2.5'"));
	assert_int_equal(hf_sched_warmup(&w, "-1", 15, &err), HF_EINVAL);
	assert_int_equal(hf_sched_warmup(&w, "x", 15, &err), HF_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_names),
		cmocka_unit_test(test_linear_with_warmup),
		cmocka_unit_test(test_cosine_with_warmup),
		cmocka_unit_test(test_constant_kinds),
		cmocka_unit_test(test_no_steps_after_warmup),
		cmocka_unit_test(test_warmup_steps_or_ratio),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
