/* test/unit/gen/gen.c: the generation loop on the llama-tiny and
 * gpt2-tiny fixtures: greedy continuations equal the references alone and
 * batched, stop ids, max tokens, context errors, seeded sampling, and
 * perplexity against the reference logits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/json.h"
#include "gen/gen.h"
#include "st/st.h"

static struct hf_model *m;
static json_t *ref;
static struct hf_st *refst;

static int setup(void **state)
{
	struct hf_err err = { 0 };
	const char *fx = getenv("HF_FIXTURES");
	char dir[512], path[600];

	snprintf(dir, sizeof(dir), "%s/models/llama-tiny",
		 fx ? fx : "test/fixtures");
	snprintf(path, sizeof(path), "%s/reference.json", dir);
	if (hf_model_open(&m, dir, NULL, 2, &err) ||
	    hf_json_load_file(&ref, path, &err))
		return fprintf(stderr, "%s\n", err.msg), -1;
	snprintf(path, sizeof(path), "%s/reference.safetensors", dir);
	if (hf_st_open(&refst, path, &err))
		return fprintf(stderr, "%s\n", err.msg), -1;
	return 0;
}

static int teardown(void **state)
{
	hf_model_free(m);
	json_decref(ref);
	hf_st_free(refst);
	return 0;
}

static int32_t *ints(const json_t *a, size_t *n)
{
	size_t i;
	json_t *v;
	int32_t *out = malloc((json_array_size(a) + 1) * sizeof(*out));

	json_array_foreach(a, i, v)
		out[i] = (int32_t)json_integer_value(v);
	*n = json_array_size(a);
	return out;
}

static int32_t *prompt_ids(size_t i, size_t *n)
{
	return ints(json_object_get(json_array_get(json_object_get(ref,
			"prompts"), i), "input_ids"), n);
}

static int32_t *greedy_ids(size_t i, size_t *n)
{
	return ints(json_object_get(json_array_get(json_object_get(ref,
			"prompts"), i), "greedy_new_tokens"), n);
}

static void greedy_opts(struct hf_gen_opts *o, size_t max)
{
	memset(o, 0, sizeof(*o));
	hf_sample_defaults(&o->sp);
	o->sp.temperature = 0;
	o->max_tokens = max;
}

static void test_greedy_batch_equals_references(void **state)
{
	struct hf_err err = { 0 };
	struct hf_gen_opts o;
	struct hf_gen_row rows[3];
	const int32_t *pr[3];
	size_t lens[3], n;
	int32_t *want[3];

	greedy_opts(&o, 16);
	for (size_t i = 0; i < 3; i++) {
		pr[i] = prompt_ids(i, &lens[i]);
		want[i] = greedy_ids(i, &n);
	}
	/* three prompts of different lengths in one left-padded batch */
	assert_int_equal(hf_gen_run(m, pr, lens, 3, &o, rows, &err), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(rows[i].n, 16);
		assert_int_equal(rows[i].finish, HF_FINISH_LENGTH);
		assert_int_equal(rows[i].prompt_tokens, lens[i]);
		for (size_t s = 0; s < 16; s++)
			if (rows[i].ids[s] != want[i][s])
				fail_msg("row %zu step %zu: %d want %d", i, s,
					 rows[i].ids[s], want[i][s]);
		hf_gen_row_free(&rows[i]);
		free((void *)pr[i]);
		free(want[i]);
	}
}

static void test_stops_on_eos_id_and_max_tokens(void **state)
{
	struct hf_err err = { 0 };
	struct hf_gen_opts o;
	struct hf_gen_row r;
	size_t len, n;
	int32_t *p = prompt_ids(0, &len), *want = greedy_ids(0, &n);
	int64_t eos[2] = { 99999, want[3] };
	const int32_t *pr = p;

	greedy_opts(&o, 16);
	o.eos = eos;
	o.neos = 2;
	assert_int_equal(hf_gen_run(m, &pr, &len, 1, &o, &r, &err), 0);
	assert_int_equal(r.finish, HF_FINISH_STOP);
	assert_int_equal(r.n, 3);	/* the EOS itself is not output */
	hf_gen_row_free(&r);
	greedy_opts(&o, 5);
	assert_int_equal(hf_gen_run(m, &pr, &len, 1, &o, &r, &err), 0);
	assert_int_equal(r.finish, HF_FINISH_LENGTH);
	assert_int_equal(r.n, 5);
	hf_gen_row_free(&r);
	free(p);
	free(want);
}

static int stop_after_two(void *ctx, size_t row, int32_t tok,
			  struct hf_err *err)
{
	int *n = ctx;

	return ++n[row] == 2;
}

static void test_callback_can_end_a_row(void **state)
{
	struct hf_err err = { 0 };
	struct hf_gen_opts o;
	struct hf_gen_row r[2];
	size_t lens[2];
	const int32_t *pr[2];
	int counts[2] = { 0, 5 };

	pr[0] = prompt_ids(0, &lens[0]);
	pr[1] = prompt_ids(1, &lens[1]);
	greedy_opts(&o, 8);
	o.on_token = stop_after_two;
	o.ctx = counts;
	assert_int_equal(hf_gen_run(m, pr, lens, 2, &o, r, &err), 0);
	assert_int_equal(r[0].n, 2);
	assert_int_equal(r[0].finish, HF_FINISH_STOP);
	assert_int_equal(r[1].n, 8);
	hf_gen_row_free(&r[0]);
	hf_gen_row_free(&r[1]);
	free((void *)pr[0]);
	free((void *)pr[1]);
}

/* n_ctx sizes the cache: a prompt that leaves no room is an error naming
 * the lengths, generation stops with "length" at the end. */
static void test_context_errors_name_the_length(void **state)
{
	struct hf_err err = { 0 };
	struct hf_gen_opts o;
	struct hf_gen_row r;
	size_t ctx = 100, len = ctx, zero = 0;
	int32_t *p = calloc(ctx + 1, sizeof(*p));
	const int32_t *pr = p;

	greedy_opts(&o, 4);
	o.n_ctx = ctx;
	assert_int_equal(hf_gen_run(m, &pr, &len, 1, &o, &r, &err), HF_ERANGE);
	assert_non_null(strstr(err.msg, "100 tokens does not fit a context of "
			       "100 tokens"));
	assert_int_equal(hf_gen_run(m, &pr, &zero, 1, &o, &r, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "empty"));
	/* two short of the context: generation stops at the end */
	len = ctx - 2;
	assert_int_equal(hf_gen_run(m, &pr, &len, 1, &o, &r, &err), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.finish, HF_FINISH_LENGTH);
	hf_gen_row_free(&r);
	free(p);
}

/* RoPE has a position for every token: llama-tiny runs past its
 * max_position_embeddings (512) when n_ctx does not stop it. */
static void test_rope_runs_past_max_position_embeddings(void **state)
{
	struct hf_err err = { 0 };
	struct hf_gen_opts o;
	struct hf_gen_row r;
	size_t len = hf_model_max_ctx(m) + 8;
	int32_t *p = calloc(len, sizeof(*p));
	const int32_t *pr = p;

	assert_int_equal(hf_model_max_ctx(m), 512);
	assert_int_equal(hf_model_max_positions(m), 0);
	for (size_t i = 0; i < len; i++)
		p[i] = (int32_t)(5 + i % 400);
	greedy_opts(&o, 4);
	assert_int_equal(hf_gen_run(m, &pr, &len, 1, &o, &r, &err), 0);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.finish, HF_FINISH_LENGTH);
	hf_gen_row_free(&r);
	free(p);
}

/* gpt2 has a learned table of n_positions (128) rows: a prompt of 128
 * leaves no room, and n_ctx cannot go past the table. */
static void test_learned_positions_refuse_past_the_table(void **state)
{
	struct hf_err err = { 0 };
	const char *fx = getenv("HF_FIXTURES");
	char dir[512];
	struct hf_model *g;
	struct hf_gen_opts o;
	struct hf_gen_row r;
	size_t len = 128;
	int32_t *p = calloc(len, sizeof(*p));
	const int32_t *pr = p;

	snprintf(dir, sizeof(dir), "%s/models/gpt2-tiny",
		 fx ? fx : "test/fixtures");
	assert_int_equal(hf_model_open(&g, dir, NULL, 2, &err), 0);
	assert_int_equal(hf_model_max_positions(g), 128);
	for (size_t i = 0; i < len; i++)
		p[i] = 5;
	greedy_opts(&o, 4);
	o.n_ctx = 1000;
	assert_int_equal(hf_gen_run(g, &pr, &len, 1, &o, &r, &err), HF_ERANGE);
	assert_non_null(strstr(err.msg, "128 tokens does not fit the 128 "
			       "positions"));
	len = 126;
	assert_int_equal(hf_gen_run(g, &pr, &len, 1, &o, &r, &err), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.finish, HF_FINISH_LENGTH);
	hf_gen_row_free(&r);
	hf_model_free(g);
	free(p);
}

static void test_seeded_sampling_repeats_and_batches(void **state)
{
	struct hf_err err = { 0 };
	struct hf_gen_opts o;
	struct hf_gen_row a, b, c[2];
	size_t lens[2];
	const int32_t *pr[2];

	pr[0] = prompt_ids(0, &lens[0]);
	pr[1] = prompt_ids(2, &lens[1]);
	memset(&o, 0, sizeof(o));
	hf_sample_defaults(&o.sp);
	o.sp.temperature = 1.5f;
	o.sp.top_k = 50;
	o.sp.top_p = 0.95f;
	o.sp.repeat_penalty = 1.1f;
	o.max_tokens = 12;
	o.seed = 1234;
	o.logprobs = 3;
	assert_int_equal(hf_gen_run(m, pr, lens, 1, &o, &a, &err), 0);
	assert_int_equal(hf_gen_run(m, pr, lens, 1, &o, &b, &err), 0);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.ids, b.ids, a.n * sizeof(int32_t));
	/* the same row in a batch samples the same */
	assert_int_equal(hf_gen_run(m, pr, lens, 2, &o, c, &err), 0);
	assert_memory_equal(a.ids, c[0].ids, a.n * sizeof(int32_t));
	for (size_t i = 0; i < a.n; i++) {
		assert_true(a.lp[i * 3] >= a.lp[i * 3 + 1]);
		assert_true(a.lp_tok[i] <= 0.0f);
	}
	hf_gen_row_free(&a);
	hf_gen_row_free(&b);
	hf_gen_row_free(&c[0]);
	hf_gen_row_free(&c[1]);
	free((void *)pr[0]);
	free((void *)pr[1]);
}

/* The reference logits of prompt 0 give the expected mean NLL. */
static void test_perplexity_matches_reference_logits(void **state)
{
	struct hf_err err = { 0 };
	size_t T, V = hf_model_vocab(m), cnt;
	int32_t *ids = prompt_ids(0, &T);
	const float *lg = hf_st_get(refst, "prompt0.logits")->data;
	double want = 0.0, nll;

	for (size_t t = 1; t < T; t++) {
		const float *row = lg + (t - 1) * V;
		double mx = row[0], s = 0.0;

		for (size_t i = 1; i < V; i++)
			mx = row[i] > mx ? row[i] : mx;
		for (size_t i = 0; i < V; i++)
			s += exp(row[i] - mx);
		want += mx + log(s) - row[ids[t]];
	}
	want /= (double)(T - 1);
	assert_int_equal(hf_gen_perplexity(m, ids, T, 0, 0, &nll, &cnt, &err), 0);
	assert_int_equal(cnt, T - 1);
	if (fabs(nll - want) > 1e-5)
		fail_msg("nll %.8f want %.8f", nll, want);
	/* a window of 3 moved by 2 still scores every token once */
	assert_int_equal(hf_gen_perplexity(m, ids, T, 3, 2, &nll, &cnt, &err), 0);
	assert_int_equal(cnt, T - 1);
	assert_true(nll > 0.0);
	free(ids);
}

/* A 300-token window goes through the model in chunks: the NLL equals
 * that of one forward pass over all of it. */
static void test_perplexity_chunks_agree_with_one_pass(void **state)
{
	struct hf_err err = { 0 };
	size_t n = 300, V = hf_model_vocab(m), cnt;
	int32_t *ids = malloc(n * sizeof(*ids));
	float *lg = malloc(n * V * sizeof(float));
	struct hf_kv *kv;
	struct hf_fwd_out fo = { .logits = lg, .all_logits = 1 };
	double want = 0.0, nll;

	for (size_t i = 0; i < n; i++)
		ids[i] = (int32_t)(5 + (i * 7919) % 500);
	assert_int_equal(hf_kv_new(&kv, m, 1, n, &err), 0);
	assert_int_equal(hf_model_forward(m, kv, ids, NULL, n, &fo, &err), 0);
	for (size_t t = 1; t < n; t++) {
		const float *row = lg + (t - 1) * V;
		double mx = row[0], s = 0.0;

		for (size_t i = 1; i < V; i++)
			mx = row[i] > mx ? row[i] : mx;
		for (size_t i = 0; i < V; i++)
			s += exp(row[i] - mx);
		want += mx + log(s) - row[ids[t]];
	}
	want /= (double)(n - 1);
	assert_int_equal(hf_gen_perplexity(m, ids, n, n, n, &nll, &cnt, &err), 0);
	assert_int_equal(cnt, n - 1);
	if (fabs(nll - want) > 1e-5)
		fail_msg("nll %.8f want %.8f", nll, want);
	hf_kv_free(kv);
	free(ids);
	free(lg);
}

/* A prompt longer than the prefill chunk (512) continues as it does
 * when the whole prompt goes through one forward pass. */
static void test_long_prompt_prefills_in_chunks(void **state)
{
	struct hf_err err = { 0 };
	const char *fx = getenv("HF_FIXTURES");
	char dir[512];
	struct hf_model *mm;
	struct hf_kv *kv;
	struct hf_gen_opts o;
	struct hf_gen_row r;
	size_t n = 700, V;
	int32_t *ids = malloc(n * sizeof(*ids)), tok;
	const int32_t *pr = ids;
	float *lg;
	struct hf_fwd_out fo = { 0 };

	snprintf(dir, sizeof(dir), "%s/models/mistral-tiny",
		 fx ? fx : "test/fixtures");
	assert_int_equal(hf_model_open(&mm, dir, NULL, 2, &err), 0);
	V = hf_model_vocab(mm);
	lg = malloc(V * sizeof(float));
	fo.logits = lg;
	for (size_t i = 0; i < n; i++)
		ids[i] = (int32_t)(5 + (i * 7919) % 500);
	greedy_opts(&o, 4);
	assert_int_equal(hf_gen_run(mm, &pr, &n, 1, &o, &r, &err), 0);
	assert_int_equal(r.n, 4);
	assert_int_equal(hf_kv_new(&kv, mm, 1, n + 4, &err), 0);
	assert_int_equal(hf_model_forward(mm, kv, ids, NULL, n, &fo, &err), 0);
	for (size_t s = 0; s < 4; s++) {
		size_t best = 0;

		for (size_t i = 1; i < V; i++)
			best = lg[i] > lg[best] ? i : best;
		tok = (int32_t)best;
		assert_int_equal(tok, r.ids[s]);
		assert_int_equal(hf_model_forward(mm, kv, &tok, NULL, 1, &fo,
						  &err), 0);
	}
	hf_kv_free(kv);
	hf_gen_row_free(&r);
	hf_model_free(mm);
	free(ids);
	free(lg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greedy_batch_equals_references),
		cmocka_unit_test(test_stops_on_eos_id_and_max_tokens),
		cmocka_unit_test(test_callback_can_end_a_row),
		cmocka_unit_test(test_context_errors_name_the_length),
		cmocka_unit_test(test_rope_runs_past_max_position_embeddings),
		cmocka_unit_test(test_learned_positions_refuse_past_the_table),
		cmocka_unit_test(test_seeded_sampling_repeats_and_batches),
		cmocka_unit_test(test_perplexity_matches_reference_logits),
		cmocka_unit_test(test_perplexity_chunks_agree_with_one_pass),
		cmocka_unit_test(test_long_prompt_prefills_in_chunks),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
