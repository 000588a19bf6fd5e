/* test/unit/model/fixtures.c: every model fixture against its reference
 * outputs (test/fixtures/models/README.md): logits at every position,
 * hidden states, greedy continuations with the KV cache, the left-padded
 * batch, Mixtral router logits, encoder outputs and pooled embeddings;
 * and models/stories260k against llama.cpp's logits and greedy ids.
 * Each check prints its largest difference. */
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
#include "model/model.h"
#include "st/st.h"

/* Tolerances, from the fixtures README: logits 1e-4 (float32 vs float64
 * differ by <= 8e-6 there); hidden states and pooled outputs 1e-5;
 * stories260k 1e-3 (llama.cpp reference, logits up to ~22). */
#define TOL_LOGITS 1e-4
#define TOL_HIDDEN 1e-5
#define TOL_STORIES 1e-3

static const char *const decoders[] = {
	"gpt2-tiny", "llama-tiny", "llama-tiny-untied", "mistral-tiny",
	"qwen2-tiny", "qwen3-tiny", "gemma-tiny", "phi3-tiny", "mixtral-tiny",
};
static const char *const encoders[] = {
	"bert-tiny", "roberta-tiny", "distilbert-tiny",
};
#define NDEC (sizeof(decoders) / sizeof(decoders[0]))
#define NENC (sizeof(encoders) / sizeof(encoders[0]))

struct fx {
	char dir[512];
	struct hf_model *m;
	struct hf_st *ref;
	json_t *js;
};

static void fx_open(struct fx *f, const char *root, const char *name,
		    const char *refname)
{
	struct hf_err err = { 0 };
	char path[600];

	snprintf(f->dir, sizeof(f->dir), "%s/%s", root, name);
	if (hf_model_open(&f->m, f->dir, NULL, 2, &err))
		fail_msg("%s: %s", name, err.msg);
	snprintf(path, sizeof(path), "%s/%s.safetensors", f->dir, refname);
	if (hf_st_open(&f->ref, path, &err))
		fail_msg("%s", err.msg);
	snprintf(path, sizeof(path), "%s/%s.json", f->dir, refname);
	if (hf_json_load_file(&f->js, path, &err))
		fail_msg("%s", err.msg);
}

static void fx_close(struct fx *f)
{
	hf_model_free(f->m);
	hf_st_free(f->ref);
	json_decref(f->js);
}

#include "fixture_check.h"

static void test_decoder_logits_every_position(void **state)
{
	for (size_t d = 0; d < NDEC; d++) {
		struct fx f;
		double mx = 0.0;
		size_t V, np;

		fx_open(&f, fixtures_root(), decoders[d], "reference");
		V = hf_model_vocab(f.m);
		np = json_array_size(json_object_get(f.js, "prompts"));
		for (size_t p = 0; p < np; p++) {
			struct hf_err err = { 0 };
			struct hf_kv *kv;
			size_t T;
			int32_t *ids = ints(json_object_get(prompt(&f, p),
							    "input_ids"), &T);
			float *lg = malloc(T * V * sizeof(float));
			struct hf_fwd_out o = { .logits = lg, .all_logits = 1 };
			const float *want = ref_f32(&f, "prompt%zu.logits", p);
			char what[128];
			double dd;

			if (hf_kv_new(&kv, f.m, 1, T, &err) ||
			    hf_model_forward(f.m, kv, ids, NULL, T, &o, &err))
				fail_msg("%s: %s", decoders[d], err.msg);
			snprintf(what, sizeof(what), "%s prompt%zu.logits",
				 decoders[d], p);
			dd = cmp(what, lg, want, T * V, TOL_LOGITS);
			check_argmax(what, lg, want, T, V);
			mx = dd > mx ? dd : mx;
			hf_kv_free(kv);
			free(ids);
			free(lg);
		}
		printf("%-18s logits max abs diff %.3g\n", decoders[d], mx);
		fx_close(&f);
	}
}

static void test_decoder_hidden_states_and_router_logits(void **state)
{
	for (size_t d = 0; d < NDEC; d++) {
		struct fx f;
		struct hf_err err = { 0 };
		struct hf_kv *kv;
		size_t T, H, L, E;
		int32_t *ids;
		float *hid, *router = NULL;
		struct hf_fwd_out o = { 0 };
		char what[128];
		double dh, dr = 0.0;

		fx_open(&f, fixtures_root(), decoders[d], "reference");
		H = hf_model_hidden(f.m);
		L = hf_model_layers(f.m);
		E = hf_model_experts(f.m);
		ids = ints(json_object_get(prompt(&f, 0), "input_ids"), &T);
		hid = malloc((L + 1) * T * H * sizeof(float));
		o.hidden = hid;
		if (E) {
			router = malloc(L * T * E * sizeof(float));
			o.router = router;
		}
		if (hf_kv_new(&kv, f.m, 1, T, &err) ||
		    hf_model_forward(f.m, kv, ids, NULL, T, &o, &err))
			fail_msg("%s: %s", decoders[d], err.msg);
		snprintf(what, sizeof(what), "%s prompt0.hidden_states",
			 decoders[d]);
		dh = cmp(what, hid, ref_f32(&f, "prompt0.hidden_states"),
			 (L + 1) * T * H, TOL_HIDDEN);
		if (E) {
			snprintf(what, sizeof(what), "%s prompt0.router_logits",
				 decoders[d]);
			dr = cmp(what, router, ref_f32(&f, "prompt0.router_logits"),
				 L * T * E, TOL_HIDDEN);
		}
		printf("%-18s hidden states max abs diff %.3g", decoders[d], dh);
		if (E)
			printf(", router logits %.3g", dr);
		printf("\n");
		hf_kv_free(kv);
		free(ids);
		free(hid);
		free(router);
		fx_close(&f);
	}
}

/* Prefill, then one token at a time through the KV cache. */
static void test_decoder_greedy_with_kv_cache(void **state)
{
	for (size_t d = 0; d < NDEC; d++) {
		struct fx f;
		double mx = 0.0;
		size_t V, np;

		fx_open(&f, fixtures_root(), decoders[d], "reference");
		V = hf_model_vocab(f.m);
		np = json_array_size(json_object_get(f.js, "prompts"));
		for (size_t p = 0; p < np; p++) {
			struct hf_err err = { 0 };
			struct hf_kv *kv;
			size_t T, G;
			int32_t *ids = ints(json_object_get(prompt(&f, p),
							    "input_ids"), &T);
			int32_t *want = ints(json_object_get(prompt(&f, p),
					     "greedy_new_tokens"), &G);
			const float *wl = ref_f32(&f, "prompt%zu.greedy_logits", p);
			float *lg = malloc(V * sizeof(float));
			struct hf_fwd_out o = { .logits = lg };
			char what[128];

			if (hf_kv_new(&kv, f.m, 1, T + G, &err) ||
			    hf_model_forward(f.m, kv, ids, NULL, T, &o, &err))
				fail_msg("%s: %s", decoders[d], err.msg);
			for (size_t s = 0; s < G; s++) {
				int32_t tok = (int32_t)argmax(lg, V);
				double dd;

				snprintf(what, sizeof(what),
					 "%s prompt%zu greedy step %zu", decoders[d],
					 p, s);
				dd = cmp(what, lg, wl + s * V, V, TOL_LOGITS);
				mx = dd > mx ? dd : mx;
				if (tok != want[s])
					fail_msg("%s: token %d, want %d", what, tok,
						 want[s]);
				if (s + 1 < G &&
				    hf_model_forward(f.m, kv, &tok, NULL, 1, &o,
						     &err))
					fail_msg("%s: %s", what, err.msg);
			}
			hf_kv_free(kv);
			free(ids);
			free(want);
			free(lg);
		}
		printf("%-18s greedy 16 tokens equal, step logits max abs diff "
		       "%.3g\n", decoders[d], mx);
		fx_close(&f);
	}
}

/* Replayed decode steps (one recording per cache, replayed with new ids,
 * positions and columns) against the eager ops: the same 16 greedy
 * tokens, step logits within TOL_LOGITS of each other and of the
 * reference. Mixtral decodes eagerly (its routing goes through the
 * host), so it must show no replays. */
static void test_decoder_replayed_decode_equals_eager(void **state)
{
	for (size_t d = 0; d < NDEC; d++) {
		struct fx f;
		double mx = 0.0;
		size_t V, np;

		fx_open(&f, fixtures_root(), decoders[d], "reference");
		V = hf_model_vocab(f.m);
		np = json_array_size(json_object_get(f.js, "prompts"));
		for (size_t p = 0; p < np; p++) {
			size_t T, G, nr;
			int32_t *ids = ints(json_object_get(prompt(&f, p),
							    "input_ids"), &T);
			int32_t *want = ints(json_object_get(prompt(&f, p),
					     "greedy_new_tokens"), &G);
			const float *wl = ref_f32(&f, "prompt%zu.greedy_logits", p);
			float *le = malloc((G + 1) * V * sizeof(float));
			float *lr = malloc((G + 1) * V * sizeof(float));
			int32_t *te = malloc(G * sizeof(*te));
			int32_t *tr = malloc(G * sizeof(*tr));
			char what[128];

			assert_int_equal(greedy_run(f.m, ids, T, G, 0, te, le), 0);
			nr = greedy_run(f.m, ids, T, G, 1, tr, lr);
			assert_int_equal(nr, hf_model_experts(f.m) ? 0 : G - 2);
			for (size_t s = 0; s < G; s++) {
				double dd;

				snprintf(what, sizeof(what),
					 "%s prompt%zu replayed step %zu",
					 decoders[d], p, s);
				if (tr[s] != te[s] || tr[s] != want[s])
					fail_msg("%s: token %d, eager %d, want %d",
						 what, tr[s], te[s], want[s]);
				dd = cmp(what, lr + s * V, le + s * V, V,
					 TOL_LOGITS);
				mx = dd > mx ? dd : mx;
				cmp(what, lr + s * V, wl + s * V, V, TOL_LOGITS);
			}
			free(ids);
			free(want);
			free(le);
			free(lr);
			free(te);
			free(tr);
		}
		printf("%-18s replayed greedy 16 tokens equal eager, step "
		       "logits max abs diff %.3g\n", decoders[d], mx);
		fx_close(&f);
	}
}

/* The left-padded batch: logits at the real positions, then the batched
 * greedy continuation equal to each row's own. */
static void test_decoder_left_padded_batch(void **state)
{
	for (size_t d = 0; d < NDEC; d++) {
		struct fx f;
		struct hf_err err = { 0 };
		struct hf_kv *kv;
		const json_t *bj;
		size_t n, nm, T, V, G = 16, B = 2;
		int32_t *ids, *mask, *want[2];
		float *lg;
		const float *wl;
		struct hf_fwd_out o = { .all_logits = 1 };
		double mx = 0.0;
		char what[128];

		fx_open(&f, fixtures_root(), decoders[d], "reference");
		V = hf_model_vocab(f.m);
		bj = json_object_get(f.js, "batch");
		T = json_array_size(json_array_get(json_object_get(bj, "input_ids"),
						   0));
		ids = malloc(B * T * sizeof(*ids));
		mask = malloc(B * T * sizeof(*mask));
		for (size_t b = 0; b < B; b++) {
			int32_t *r = ints(json_array_get(json_object_get(bj,
						"input_ids"), b), &n);
			int32_t *mr = ints(json_array_get(json_object_get(bj,
						"attention_mask"), b), &nm);

			memcpy(ids + b * T, r, T * sizeof(*r));
			memcpy(mask + b * T, mr, T * sizeof(*mr));
			want[b] = ints(json_array_get(json_object_get(bj,
						"greedy_new_tokens"), b), &G);
			free(r);
			free(mr);
		}
		lg = malloc(B * T * V * sizeof(float));
		o.logits = lg;
		wl = ref_f32(&f, "batch.logits");
		if (hf_kv_new(&kv, f.m, B, T + G, &err) ||
		    hf_model_forward(f.m, kv, ids, mask, T, &o, &err))
			fail_msg("%s: %s", decoders[d], err.msg);
		for (size_t i = 0; i < B * T; i++) {
			double dd;

			if (!mask[i])
				continue;
			snprintf(what, sizeof(what), "%s batch.logits row %zu pos %zu",
				 decoders[d], i / T, i % T);
			dd = cmp(what, lg + i * V, wl + i * V, V, TOL_LOGITS);
			check_argmax(what, lg + i * V, wl + i * V, 1, V);
			mx = dd > mx ? dd : mx;
		}
		for (size_t s = 0; s < G; s++) {
			int32_t tok[2];

			for (size_t b = 0; b < B; b++) {
				const float *row = s ? lg + b * V :
						       lg + (b * T + T - 1) * V;

				tok[b] = (int32_t)argmax(row, V);
				if (tok[b] != want[b][s])
					fail_msg("%s batch row %zu step %zu: token "
						 "%d, want %d", decoders[d], b, s,
						 tok[b], want[b][s]);
			}
			o.all_logits = 0;
			if (s + 1 < G &&
			    hf_model_forward(f.m, kv, tok, NULL, 1, &o, &err))
				fail_msg("%s: %s", decoders[d], err.msg);
		}
		printf("%-18s batch (left padding) logits max abs diff %.3g, "
		       "greedy rows equal\n", decoders[d], mx);
		hf_kv_free(kv);
		free(ids);
		free(mask);
		free(want[0]);
		free(want[1]);
		free(lg);
		fx_close(&f);
	}
}

static void test_encoder_outputs(void **state)
{
	for (size_t d = 0; d < NENC; d++) {
		struct fx f;
		double mh = 0, mp = 0, ml = 0, mm = 0, ma = 0;
		size_t V, H, L, np;

		fx_open(&f, fixtures_root(), encoders[d], "reference");
		V = hf_model_vocab(f.m);
		H = hf_model_hidden(f.m);
		L = hf_model_layers(f.m);
		np = json_array_size(json_object_get(f.js, "prompts"));
		for (size_t p = 0; p < np; p++) {
			struct hf_err err = { 0 };
			size_t T, nt;
			const json_t *pj = prompt(&f, p);
			int32_t *ids = ints(json_object_get(pj, "input_ids"), &T);
			int32_t *tt = json_object_get(pj, "token_type_ids") ?
				ints(json_object_get(pj, "token_type_ids"), &nt) :
				NULL;
			float *hid = malloc(T * H * sizeof(float));
			float *all = malloc((L + 1) * T * H * sizeof(float));
			float *pool = malloc(H * sizeof(float));
			float *lg = malloc(T * V * sizeof(float));
			float *mean = malloc(H * sizeof(float));
			struct hf_enc_out o = { .hidden = hid, .mlm_logits = lg,
						.all_hidden = p ? NULL : all };
			char what[160];
			double x;

			if (hf_model_has_pooler(f.m))
				o.pooler = pool;
			if (hf_model_encode(f.m, ids, tt, NULL, 1, T, &o, &err))
				fail_msg("%s: %s", encoders[d], err.msg);
			snprintf(what, sizeof(what), "%s prompt%zu", encoders[d], p);
			x = cmp(what, hid, ref_f32(&f, "prompt%zu.last_hidden_state",
						   p), T * H, TOL_HIDDEN);
			mh = x > mh ? x : mh;
			x = cmp(what, lg, ref_f32(&f, "prompt%zu.logits", p),
				T * V, TOL_LOGITS);
			check_argmax(what, lg, ref_f32(&f, "prompt%zu.logits", p),
				     T, V);
			ml = x > ml ? x : ml;
			if (o.pooler) {
				x = cmp(what, pool, ref_f32(&f,
					"prompt%zu.pooler_output", p), H,
					TOL_HIDDEN);
				mp = x > mp ? x : mp;
			}
			hf_pool_hidden(mean, hid, NULL, 1, T, H, HF_POOL_MEAN, 0);
			x = cmp(what, mean, ref_f32(&f, "prompt%zu.mean_pooled", p),
				H, TOL_HIDDEN);
			mm = x > mm ? x : mm;
			if (!p)
				ma = cmp(what, all, ref_f32(&f,
					 "prompt0.hidden_states"), (L + 1) * T * H,
					 TOL_HIDDEN);
			free(ids);
			free(tt);
			free(hid);
			free(all);
			free(pool);
			free(lg);
			free(mean);
		}
		printf("%-18s max abs diff: last_hidden_state %.3g, hidden_states "
		       "%.3g, pooler %.3g, mean_pooled %.3g, mlm logits %.3g\n",
		       encoders[d], mh, ma, mp, mm, ml);
		fx_close(&f);
	}
}

static void test_encoder_right_padded_batch(void **state)
{
	for (size_t d = 0; d < NENC; d++) {
		struct fx f;
		struct hf_err err = { 0 };
		const json_t *bj;
		size_t B = 2, T, H, n;
		int32_t *ids, *mask, *tt;
		float *hid, *mean;
		const float *wh;
		struct hf_enc_out o = { 0 };
		double mx = 0, mm;

		fx_open(&f, fixtures_root(), encoders[d], "reference");
		H = hf_model_hidden(f.m);
		bj = json_object_get(f.js, "batch");
		T = json_array_size(json_array_get(json_object_get(bj, "input_ids"),
						   0));
		ids = malloc(B * T * sizeof(*ids));
		mask = malloc(B * T * sizeof(*mask));
		tt = calloc(B * T, sizeof(*tt));
		for (size_t b = 0; b < B; b++) {
			int32_t *r = ints(json_array_get(json_object_get(bj,
						"input_ids"), b), &n);
			int32_t *mr = ints(json_array_get(json_object_get(bj,
						"attention_mask"), b), &n);

			memcpy(ids + b * T, r, T * sizeof(*r));
			memcpy(mask + b * T, mr, T * sizeof(*mr));
			free(r);
			free(mr);
			if (json_object_get(bj, "token_type_ids")) {
				r = ints(json_array_get(json_object_get(bj,
					 "token_type_ids"), b), &n);
				memcpy(tt + b * T, r, T * sizeof(*r));
				free(r);
			}
		}
		hid = malloc(B * T * H * sizeof(float));
		mean = malloc(B * H * sizeof(float));
		o.hidden = hid;
		if (hf_model_encode(f.m, ids, tt, mask, B, T, &o, &err))
			fail_msg("%s: %s", encoders[d], err.msg);
		wh = ref_f32(&f, "batch.last_hidden_state");
		for (size_t i = 0; i < B * T; i++) {
			char what[128];
			double x;

			if (!mask[i])
				continue;
			snprintf(what, sizeof(what), "%s batch row %zu pos %zu",
				 encoders[d], i / T, i % T);
			x = cmp(what, hid + i * H, wh + i * H, H, TOL_HIDDEN);
			mx = x > mx ? x : mx;
		}
		hf_pool_hidden(mean, hid, mask, B, T, H, HF_POOL_MEAN, 0);
		mm = cmp("batch.mean_pooled", mean, ref_f32(&f, "batch.mean_pooled"),
			 B * H, TOL_HIDDEN);
		printf("%-18s batch (right padding) hidden max abs diff %.3g, "
		       "mean_pooled %.3g\n", encoders[d], mx, mm);
		free(ids);
		free(mask);
		free(tt);
		free(hid);
		free(mean);
		fx_close(&f);
	}
}

static void test_stories260k_logits_and_greedy_ids(void **state)
{
	const char *models = getenv("HF_MODELS");
	struct fx f;
	struct hf_err err = { 0 };
	const json_t *gj;
	double mx = 0.0;
	size_t V, np, T, G;
	int32_t *ids, *want;
	float *lg;
	struct hf_kv *kv;
	struct hf_fwd_out o = { 0 };

	fx_open(&f, models ? models : "models", "stories260k", "reference");
	V = hf_model_vocab(f.m);
	np = json_array_size(json_object_get(f.js, "prompts"));
	for (size_t p = 0; p < np; p++) {
		const struct hf_tensor *t;
		char name[64], what[64];

		snprintf(name, sizeof(name), "prompt%zu.ids", p);
		t = hf_st_get(f.ref, name);
		assert_non_null(t);
		T = (size_t)t->shape[0];
		lg = malloc(T * V * sizeof(float));
		o.logits = lg;
		o.all_logits = 1;
		if (hf_kv_new(&kv, f.m, 1, T, &err) ||
		    hf_model_forward(f.m, kv, t->data, NULL, T, &o, &err))
			fail_msg("stories260k: %s", err.msg);
		snprintf(what, sizeof(what), "stories260k prompt%zu", p);
		{
			double x = cmp(what, lg, ref_f32(&f, "prompt%zu.logits", p),
				       T * V, TOL_STORIES);

			mx = x > mx ? x : mx;
		}
		check_argmax(what, lg, ref_f32(&f, "prompt%zu.logits", p), T, V);
		hf_kv_free(kv);
		free(lg);
	}
	gj = json_object_get(f.js, "greedy");
	ids = ints(json_object_get(gj, "prompt_ids"), &T);
	want = ints(json_object_get(gj, "output_ids"), &G);
	lg = malloc(V * sizeof(float));
	o.logits = lg;
	o.all_logits = 0;
	if (hf_kv_new(&kv, f.m, 1, T + G, &err) ||
	    hf_model_forward(f.m, kv, ids, NULL, T, &o, &err))
		fail_msg("stories260k: %s", err.msg);
	for (size_t s = 0; s < G; s++) {
		int32_t tok = (int32_t)argmax(lg, V);

		if (tok != want[s])
			fail_msg("stories260k greedy step %zu: %d, want %d", s, tok,
				 want[s]);
		if (s + 1 < G && hf_model_forward(f.m, kv, &tok, NULL, 1, &o, &err))
			fail_msg("stories260k: %s", err.msg);
	}
	printf("stories260k        logits max abs diff %.3g (vs llama.cpp), "
	       "greedy %zu ids equal\n", mx, G);
	hf_kv_free(kv);
	free(ids);
	free(want);
	free(lg);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decoder_logits_every_position),
		cmocka_unit_test(test_decoder_hidden_states_and_router_logits),
		cmocka_unit_test(test_decoder_greedy_with_kv_cache),
		cmocka_unit_test(test_decoder_replayed_decode_equals_eager),
		cmocka_unit_test(test_decoder_left_padded_batch),
		cmocka_unit_test(test_encoder_outputs),
		cmocka_unit_test(test_encoder_right_padded_batch),
		cmocka_unit_test(test_stories260k_logits_and_greedy_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
