/* test/unit/gen/sample.c: the logits processors and the seeded RNG. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gen/gen.h"

static int32_t sample1(const struct hf_sample_params *p, const float *lg,
		       size_t V, uint64_t seed)
{
	struct hf_err err = { 0 };
	struct hf_sampler *s;
	float x[16];
	int32_t t;

	assert_int_equal(hf_sampler_new(&s, V, p, seed, &err), 0);
	memcpy(x, lg, V * sizeof(float));
	t = hf_sampler_sample(s, x, NULL, 0);
	hf_sampler_free(s);
	return t;
}

/* counts[V] of n draws from one sampler */
static void draw(const struct hf_sample_params *p, const float *lg, size_t V,
		 size_t n, uint64_t seed, size_t *counts)
{
	struct hf_err err = { 0 };
	struct hf_sampler *s;
	float x[16];

	memset(counts, 0, V * sizeof(*counts));
	assert_int_equal(hf_sampler_new(&s, V, p, seed, &err), 0);
	for (size_t i = 0; i < n; i++) {
		memcpy(x, lg, V * sizeof(float));
		counts[hf_sampler_sample(s, x, NULL, 0)]++;
	}
	hf_sampler_free(s);
}

static void test_rng_same_seed_same_stream(void **state)
{
	struct hf_rng a, b, c;

	hf_rng_seed(&a, 42);
	hf_rng_seed(&b, 42);
	hf_rng_seed(&c, 43);
	for (int i = 0; i < 100; i++) {
		uint64_t x = hf_rng_next(&a);

		assert_true(x == hf_rng_next(&b));
		assert_true(x != hf_rng_next(&c));
	}
	for (int i = 0; i < 1000; i++) {
		double u = hf_rng_uniform(&a);

		assert_true(u >= 0.0 && u < 1.0);
	}
}

static void test_greedy_is_argmax(void **state)
{
	struct hf_sample_params p;
	float lg[5] = { 0.1f, 3.0f, -2.0f, 2.9f, 0 };

	hf_sample_defaults(&p);
	p.temperature = 0;
	assert_int_equal(sample1(&p, lg, 5, 1), 1);
	p.top_k = 1;
	p.temperature = 1;
	for (uint64_t s = 0; s < 20; s++)
		assert_int_equal(sample1(&p, lg, 5, s), 1);
}

static void test_repetition_penalty_divides_positive_multiplies_negative(void **state)
{
	struct hf_err err = { 0 };
	struct hf_sample_params p;
	struct hf_sampler *s;
	float x[3] = { 3.0f, 2.0f, -1.0f };
	int32_t hist[3] = { 0, 2, 0 };

	hf_sample_defaults(&p);
	p.temperature = 0;
	p.repeat_penalty = 2.0f;
	assert_int_equal(hf_sampler_new(&s, 3, &p, 0, &err), 0);
	/* 3 -> 1.5 (once, though 0 occurs twice), -1 -> -2 */
	assert_int_equal(hf_sampler_sample(s, x, hist, 3), 1);
	assert_true(x[0] == 1.5f && x[1] == 2.0f && x[2] == -2.0f);
	hf_sampler_free(s);
}

static void test_sampling_follows_the_distribution(void **state)
{
	struct hf_sample_params p;
	float lg[3] = { logf(0.5f), logf(0.3f), logf(0.2f) };
	size_t c[3], n = 20000;

	hf_sample_defaults(&p);
	draw(&p, lg, 3, n, 7, c);
	assert_true(fabs(c[0] / (double)n - 0.5) < 0.02);
	assert_true(fabs(c[1] / (double)n - 0.3) < 0.02);
	assert_true(fabs(c[2] / (double)n - 0.2) < 0.02);
}

static void test_same_seed_same_samples(void **state)
{
	struct hf_sample_params p;
	float lg[6] = { 0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f };
	size_t c1[6], c2[6];
	int differ = 0;

	hf_sample_defaults(&p);
	for (uint64_t s = 0; s < 50; s++)
		assert_int_equal(sample1(&p, lg, 6, s), sample1(&p, lg, 6, s));
	for (uint64_t s = 0; s < 50; s++)
		differ |= sample1(&p, lg, 6, s) != sample1(&p, lg, 6, s + 1000);
	assert_true(differ);
	draw(&p, lg, 6, 500, 99, c1);
	draw(&p, lg, 6, 500, 99, c2);
	assert_memory_equal(c1, c2, sizeof(c1));
}

static void test_top_k_keeps_k_best(void **state)
{
	struct hf_sample_params p;
	float lg[5] = { 1, 5, 4, 3, 2 };
	size_t c[5];

	hf_sample_defaults(&p);
	p.top_k = 2;
	draw(&p, lg, 5, 2000, 3, c);
	assert_true(c[1] > 0 && c[2] > 0);
	assert_true(c[0] == 0 && c[3] == 0 && c[4] == 0);
}

static void test_top_p_drops_the_tail_as_transformers_does(void **state)
{
	struct hf_sample_params p;
	float lg[3] = { logf(0.5f), logf(0.3f), logf(0.2f) };
	size_t c[3];

	hf_sample_defaults(&p);
	p.top_p = 0.6f;		/* cum from the bottom: 0.2 <= 0.4 drops */
	draw(&p, lg, 3, 3000, 5, c);
	assert_true(c[0] > 0 && c[1] > 0 && c[2] == 0);
	/* renormalised over the two kept: 0.5 / 0.8 */
	assert_true(fabs(c[0] / 3000.0 - 0.625) < 0.03);
	p.top_p = 0.5f;		/* 0.2 and 0.2 + 0.3 <= 0.5: only the top */
	draw(&p, lg, 3, 1000, 5, c);
	assert_true(c[0] == 1000);
}

struct ref_pair {
	float v;
	int32_t i;
};

static int ref_desc(const void *a, const void *b)
{
	const struct ref_pair *x = a, *y = b;

	if (x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return x->i - y->i;
}

/* TopK then TopP as written before the selection: the whole vocabulary
 * sorted once, descending by value then ascending by id. */
static void ref_top_k_top_p(float *x, size_t V, size_t k, float top_p)
{
	struct ref_pair *pr = malloc(V * sizeof(*pr));
	float *prob = malloc(V * sizeof(float));
	float mx = -INFINITY;
	double sum = 0.0, cum = 0.0;

	assert_non_null(pr);
	assert_non_null(prob);
	for (size_t i = 0; i < V; i++)
		pr[i] = (struct ref_pair){ x[i], (int32_t)i };
	qsort(pr, V, sizeof(*pr), ref_desc);
	if (k && k < V) {
		float kth = x[pr[k - 1].i];

		for (size_t i = 0; i < V; i++)
			if (x[i] < kth)
				x[i] = -INFINITY;
	}
	if (top_p < 1.0f) {
		for (size_t i = 0; i < V; i++)
			mx = x[i] > mx ? x[i] : mx;
		for (size_t i = 0; i < V; i++) {
			prob[i] = x[i] == -INFINITY ? 0.0f : expf(x[i] - mx);
			sum += prob[i];
		}
		for (size_t i = 0; i < V; i++)
			prob[i] = (float)(prob[i] / sum);
		for (size_t r = V; r-- > 1;) {
			cum += prob[pr[r].i];
			if (cum <= 1.0 - top_p)
				x[pr[r].i] = -INFINITY;
			else
				break;
		}
	}
	free(pr);
	free(prob);
}

static void test_top_k_top_p_match_a_full_sort(void **state)
{
	enum { V = 3000 };
	static const size_t ks[] = { 0, 1, 2, 40, 50, 999, 2999, 3000 };
	static const float ps[] = { 1.0f, 0.95f, 0.5f, 0.05f };
	static float lg[V], got[V], want[V];
	struct hf_rng r;

	hf_rng_seed(&r, 7);
	for (int rep = 0; rep < 4; rep++) {
		/* rep 0, 2: many ties (few distinct values); 3: some -inf */
		for (size_t i = 0; i < V; i++) {
			double u = hf_rng_uniform(&r);

			lg[i] = rep % 2 ? (float)(u * 20.0 - 10.0) :
					  (float)(int)(u * 12.0);
			if (rep == 3 && i % 7 == 0)
				lg[i] = -INFINITY;
		}
		for (size_t a = 0; a < sizeof(ks) / sizeof(ks[0]); a++)
			for (size_t b = 0; b < sizeof(ps) / sizeof(ps[0]); b++) {
				struct hf_sample_params p;
				struct hf_err err = { 0 };
				struct hf_sampler *s;

				hf_sample_defaults(&p);
				p.top_k = ks[a];
				p.top_p = ps[b];
				memcpy(got, lg, sizeof(lg));
				memcpy(want, lg, sizeof(lg));
				assert_int_equal(hf_sampler_new(&s, V, &p, 1, &err),
						 0);
				hf_sampler_sample(s, got, NULL, 0);
				hf_sampler_free(s);
				ref_top_k_top_p(want, V, ks[a], ps[b]);
				for (size_t i = 0; i < V; i++)
					if (memcmp(&got[i], &want[i], sizeof(float)))
						fail_msg("rep %d top_k %zu top_p %g: "
							 "logit %zu got %g want %g",
							 rep, ks[a], ps[b], i,
							 got[i], want[i]);
			}
	}
}

static void test_min_p_drops_below_fraction_of_top(void **state)
{
	struct hf_sample_params p;
	float lg[3] = { logf(0.5f), logf(0.3f), logf(0.2f) };
	size_t c[3];

	hf_sample_defaults(&p);
	p.min_p = 0.5f;		/* threshold 0.25 */
	draw(&p, lg, 3, 3000, 11, c);
	assert_true(c[0] > 0 && c[1] > 0 && c[2] == 0);
}

static void test_temperature_sharpens(void **state)
{
	struct hf_sample_params p;
	float lg[2] = { 1.0f, 0.0f };
	size_t c[2];

	hf_sample_defaults(&p);
	p.temperature = 0.1f;	/* p(1) = 1 / (1 + e^-10) */
	draw(&p, lg, 2, 5000, 13, c);
	assert_true(c[1] < 5);
}

static void test_logprobs_top_sorted_and_normalised(void **state)
{
	float lg[4] = { 1.0f, 3.0f, 2.0f, 0.0f };
	int32_t ids[2];
	float lp[2], l0;
	double z = exp(1.0) + exp(3.0) + exp(2.0) + exp(0.0);

	l0 = hf_logprobs_top(lg, 4, 0, 2, ids, lp);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 2);
	assert_true(fabs(lp[0] - (3.0 - log(z))) < 1e-6);
	assert_true(fabs(l0 - (1.0 - log(z))) < 1e-6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rng_same_seed_same_stream),
		cmocka_unit_test(test_greedy_is_argmax),
		cmocka_unit_test(test_repetition_penalty_divides_positive_multiplies_negative),
		cmocka_unit_test(test_sampling_follows_the_distribution),
		cmocka_unit_test(test_same_seed_same_samples),
		cmocka_unit_test(test_top_k_keeps_k_best),
		cmocka_unit_test(test_top_p_drops_the_tail_as_transformers_does),
		cmocka_unit_test(test_top_k_top_p_match_a_full_sort),
		cmocka_unit_test(test_min_p_drops_below_fraction_of_top),
		cmocka_unit_test(test_temperature_sharpens),
		cmocka_unit_test(test_logprobs_top_sorted_and_normalised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
