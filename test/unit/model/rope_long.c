/* test/unit/model/rope_long.c: a yarn-scaled RoPE model past its
 * max_position_embeddings. The qwen3-tiny weights under a config of our
 * own (written to a temporary directory: rope_scaling yarn, factor 4,
 * max_position_embeddings 64) run 184 tokens, 120 past the 64, and the
 * logits at every position equal a float64 forward written out here from
 * modeling_qwen3.py and _compute_yarn_parameters of transformers'
 * modeling_rope_utils.py (inverse frequencies and attention factor). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "gen/gen.h"
#include "model/model.h"
#include "st/st.h"

/* qwen3-tiny: 2 layers, hidden 64, 4 heads of 24, 2 kv heads, MLP 96 */
#define L 2
#define H 64
#define NQ 4
#define NKV 2
#define HD 24
#define FF 96
#define V 640
#define THETA 1e6
#define EPS 1e-6
#define MAXPOS 64
#define FACTOR 4.0
#define T (MAXPOS + 120)	/* 120 tokens past max_position_embeddings */
#define PROMPT 120

/* 2e-4: the library runs in float32 (angles pos * inv_freq rounded to
 * float32: ~1e-5 at position 183), the reference in double; measured
 * about 1e-5 (printed). The wrong attention factor moves them by ~1e-1. */
#define TOL 2e-4

static const char config[] =
	"{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\", "
	"\"attention_bias\": false, \"bos_token_id\": 1, \"eos_token_id\": 2, "
	"\"head_dim\": 24, \"hidden_act\": \"silu\", \"hidden_size\": 64, "
	"\"intermediate_size\": 96, \"max_position_embeddings\": 64, "
	"\"num_attention_heads\": 4, \"num_hidden_layers\": 2, "
	"\"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-06, "
	"\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}, "
	"\"rope_theta\": 1000000, \"tie_word_embeddings\": true, "
	"\"torch_dtype\": \"bfloat16\", \"use_sliding_window\": false, "
	"\"vocab_size\": 640}";

static char dir[64], cfg_path[96], st_path[96];
static struct hf_model *m;
static struct hf_st *wst;
static int32_t ids[T];

/* The fixture's safetensors through a link, the config written here. */
static int setup(void **state)
{
	struct hf_err err = { 0 };
	const char *fx = getenv("HF_FIXTURES");
	char src[600], *abs;
	FILE *f;

	snprintf(src, sizeof(src), "%s/models/qwen3-tiny/model.safetensors",
		 fx ? fx : "test/fixtures");
	abs = realpath(src, NULL);
	snprintf(dir, sizeof(dir), "/tmp/hf-rope-long-XXXXXX");
	if (!abs || !mkdtemp(dir))
		return fprintf(stderr, "cannot set up %s\n", src), -1;
	snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", dir);
	snprintf(st_path, sizeof(st_path), "%s/model.safetensors", dir);
	f = fopen(cfg_path, "w");
	if (!f || fputs(config, f) == EOF || fclose(f) || symlink(abs, st_path))
		return fprintf(stderr, "cannot write %s\n", dir), free(abs), -1;
	free(abs);
	if (hf_model_open(&m, dir, NULL, 2, &err) ||
	    hf_st_open(&wst, st_path, &err))
		return fprintf(stderr, "%s\n", err.msg), -1;
	/* a fixed spread of ids, none special */
	for (size_t t = 0; t < T; t++)
		ids[t] = (int32_t)(5 + (t * 7919 + 13) % (V - 5));
	return 0;
}

static int teardown(void **state)
{
	hf_model_free(m);
	hf_st_free(wst);
	unlink(cfg_path);
	unlink(st_path);
	rmdir(dir);
	return 0;
}

/* A BF16 tensor of n elements widened to double (bf16 is the top half of
 * a float32). */
static double *w(const char *fmt, int l, size_t n)
{
	char name[128];
	const struct hf_tensor *t;
	const uint16_t *b;
	double *out = malloc(n * sizeof(double));

	snprintf(name, sizeof(name), fmt, l);
	t = hf_st_get(wst, name);
	assert_non_null(t);
	assert_int_equal(t->dtype, HF_DTYPE_BF16);
	assert_int_equal(hf_tensor_numel(t), n);
	b = t->data;
	for (size_t i = 0; i < n; i++) {
		uint32_t u = (uint32_t)b[i] << 16;
		float f;

		memcpy(&f, &u, sizeof(f));
		out[i] = f;
	}
	return out;
}

/* y (rows, cols) = x (rows, in) W^T, W (cols, in). */
static void matmul(double *y, const double *x, const double *W, size_t rows,
		   size_t in, size_t cols)
{
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < cols; c++) {
			double s = 0;

			for (size_t i = 0; i < in; i++)
				s += x[r * in + i] * W[c * in + i];
			y[r * cols + c] = s;
		}
}

/* Qwen3RMSNorm over rows of n. */
static void rmsnorm(double *y, const double *x, const double *g, size_t rows,
		    size_t n)
{
	for (size_t r = 0; r < rows; r++) {
		double ss = 0;

		for (size_t i = 0; i < n; i++)
			ss += x[r * n + i] * x[r * n + i];
		ss = 1 / sqrt(ss / n + EPS);
		for (size_t i = 0; i < n; i++)
			y[r * n + i] = x[r * n + i] * ss * g[i];
	}
}

/* _compute_yarn_parameters with factor 4, max_position_embeddings 64 as
 * the original context (no original_max_position_embeddings), beta_fast
 * 32, beta_slow 1, truncate: inv (HD / 2), returns attention_factor. */
static double yarn(double *inv)
{
	double d = HD, lo, hi;

	lo = floor(d * log(MAXPOS / (32 * 2 * M_PI)) / (2 * log(THETA)));
	hi = ceil(d * log(MAXPOS / (1 * 2 * M_PI)) / (2 * log(THETA)));
	lo = lo > 0 ? lo : 0;
	hi = hi < d - 1 ? hi : d - 1;
	if (lo == hi)
		hi += 0.001;
	for (int i = 0; i < HD / 2; i++) {
		double pf = pow(THETA, 2.0 * i / d);
		double ramp = (i - lo) / (hi - lo), ext;

		ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
		ext = 1 - ramp;	/* inv_freq_extrapolation_factor */
		inv[i] = 1 / (FACTOR * pf) * (1 - ext) + 1 / pf * ext;
	}
	/* get_mscale(factor), mscale 1 */
	return 0.1 * log(FACTOR) + 1.0;
}

/* apply_rotary_pos_emb (rotate_half) on n heads of x at position p, cos
 * and sin times the attention factor. */
static void rope(double *x, size_t n, size_t p, const double *inv, double af)
{
	for (size_t h = 0; h < n; h++) {
		double *xh = x + h * HD;

		for (int i = 0; i < HD / 2; i++) {
			double c = cos(p * inv[i]) * af, s = sin(p * inv[i]) * af;
			double a = xh[i], b = xh[i + HD / 2];

			xh[i] = a * c - b * s;
			xh[i + HD / 2] = b * c + a * s;
		}
	}
}

static double *dalloc(size_t n)
{
	double *p = malloc(n * sizeof(double));

	assert_non_null(p);
	return p;
}

/* One layer's weights in double. */
struct lw {
	double *ln1, *ln2, *q, *k, *v, *o, *qn, *kn, *gate, *up, *down;
};

static void layer_load(struct lw *lw, int l)
{
	lw->ln1 = w("model.layers.%d.input_layernorm.weight", l, H);
	lw->ln2 = w("model.layers.%d.post_attention_layernorm.weight", l, H);
	lw->q = w("model.layers.%d.self_attn.q_proj.weight", l, NQ * HD * H);
	lw->k = w("model.layers.%d.self_attn.k_proj.weight", l, NKV * HD * H);
	lw->v = w("model.layers.%d.self_attn.v_proj.weight", l, NKV * HD * H);
	lw->o = w("model.layers.%d.self_attn.o_proj.weight", l, H * NQ * HD);
	lw->qn = w("model.layers.%d.self_attn.q_norm.weight", l, HD);
	lw->kn = w("model.layers.%d.self_attn.k_norm.weight", l, HD);
	lw->gate = w("model.layers.%d.mlp.gate_proj.weight", l, FF * H);
	lw->up = w("model.layers.%d.mlp.up_proj.weight", l, FF * H);
	lw->down = w("model.layers.%d.mlp.down_proj.weight", l, H * FF);
}

static void layer_free(struct lw *lw)
{
	free(lw->ln1);
	free(lw->ln2);
	free(lw->q);
	free(lw->k);
	free(lw->v);
	free(lw->o);
	free(lw->qn);
	free(lw->kn);
	free(lw->gate);
	free(lw->up);
	free(lw->down);
}

/* Qwen3ForCausalLM on ids[0, T), eager attention: logits (T, V). */
static void reference(double *logits)
{
	double inv[HD / 2], af = yarn(inv);
	double *h = dalloc(T * H), *x = dalloc(T * H), *o = dalloc(T * H);
	double *q = dalloc(T * NQ * HD), *att = dalloc(T * NQ * HD);
	double *k = dalloc(T * NKV * HD), *v = dalloc(T * NKV * HD);
	double *g = dalloc(T * FF), *u = dalloc(T * FF), *p = dalloc(T);
	double *emb = w("model.embed_tokens.weight", 0, (size_t)V * H);

	for (size_t t = 0; t < T; t++)
		memcpy(h + t * H, emb + (size_t)ids[t] * H, H * sizeof(double));
	for (int l = 0; l < L; l++) {
		struct lw lw;

		layer_load(&lw, l);
		rmsnorm(x, h, lw.ln1, T, H);
		matmul(q, x, lw.q, T, H, NQ * HD);
		matmul(k, x, lw.k, T, H, NKV * HD);
		matmul(v, x, lw.v, T, H, NKV * HD);
		rmsnorm(q, q, lw.qn, T * NQ, HD);
		rmsnorm(k, k, lw.kn, T * NKV, HD);
		for (size_t t = 0; t < T; t++) {
			rope(q + t * NQ * HD, NQ, t, inv, af);
			rope(k + t * NKV * HD, NKV, t, inv, af);
		}
		/* causal softmax(q k^T / sqrt(HD)) v, kv head = head / 2 */
		for (size_t t = 0; t < T; t++)
			for (int hq = 0; hq < NQ; hq++) {
				const double *qt = q + (t * NQ + hq) * HD;
				int kh = hq / (NQ / NKV);
				double mx = -INFINITY, sum = 0;

				for (size_t s = 0; s <= t; s++) {
					const double *ks = k + (s * NKV + kh) * HD;
					double d = 0;

					for (int i = 0; i < HD; i++)
						d += qt[i] * ks[i];
					p[s] = d / sqrt((double)HD);
					mx = p[s] > mx ? p[s] : mx;
				}
				for (size_t s = 0; s <= t; s++)
					sum += p[s] = exp(p[s] - mx);
				for (int i = 0; i < HD; i++) {
					double a = 0;

					for (size_t s = 0; s <= t; s++)
						a += p[s] * v[(s * NKV + kh) * HD + i];
					att[(t * NQ + hq) * HD + i] = a / sum;
				}
			}
		matmul(o, att, lw.o, T, NQ * HD, H);
		for (size_t i = 0; i < T * H; i++)
			h[i] += o[i];
		rmsnorm(x, h, lw.ln2, T, H);
		matmul(g, x, lw.gate, T, H, FF);
		matmul(u, x, lw.up, T, H, FF);
		for (size_t i = 0; i < T * FF; i++)
			g[i] = g[i] / (1 + exp(-g[i])) * u[i];
		matmul(o, g, lw.down, T, FF, H);
		for (size_t i = 0; i < T * H; i++)
			h[i] += o[i];
		layer_free(&lw);
	}
	{
		double *nw = w("model.norm.weight", 0, H);

		rmsnorm(x, h, nw, T, H);
		free(nw);
	}
	matmul(logits, x, emb, T, H, V);	/* tied head */
	free(h);
	free(x);
	free(o);
	free(q);
	free(att);
	free(k);
	free(v);
	free(g);
	free(u);
	free(p);
	free(emb);
}

/* The prompt in one call (120 rows: already 56 past 64), then one token
 * at a time through the KV cache to position 183. */
static void test_yarn_logits_past_max_position_embeddings(void **state)
{
	struct hf_err err = { 0 };
	struct hf_kv *kv = NULL;
	float *got = malloc((size_t)T * V * sizeof(float));
	double *want = malloc((size_t)T * V * sizeof(double)), worst = 0;
	size_t wi = 0;

	assert_int_equal(hf_model_max_ctx(m), MAXPOS);
	assert_int_equal(hf_model_max_positions(m), 0);
	assert_int_equal(hf_kv_new(&kv, m, 1, T, &err), 0);
	{
		struct hf_fwd_out fo = { .logits = got, .all_logits = 1 };

		if (hf_model_forward(m, kv, ids, NULL, PROMPT, &fo, &err))
			fail_msg("%s", err.msg);
	}
	for (size_t t = PROMPT; t < T; t++) {
		struct hf_fwd_out fo = { .logits = got + t * V };

		if (hf_model_forward(m, kv, ids + t, NULL, 1, &fo, &err))
			fail_msg("position %zu: %s", t, err.msg);
	}
	hf_kv_free(kv);
	reference(want);
	for (size_t i = 0; i < (size_t)T * V; i++)
		if (fabs(got[i] - want[i]) > worst) {
			worst = fabs(got[i] - want[i]);
			wi = i;
		}
	printf("yarn logits, %d positions: largest difference %.3g "
	       "(position %zu, id %zu: got %.7g want %.7g)\n", T, worst,
	       wi / V, wi % V, got[wi], want[wi]);
	if (worst > TOL)
		fail_msg("position %zu, id %zu: got %.7g want %.7g", wi / V,
			 wi % V, got[wi], want[wi]);
	free(got);
	free(want);
}

/* hf_gen_run on a 120-token prompt, 64 new tokens greedily: no refusal,
 * and each token is the reference's argmax wherever its top two are
 * further apart than TOL. */
static void test_generation_runs_past_max_position_embeddings(void **state)
{
	struct hf_err err = { 0 };
	struct hf_gen_opts o;
	struct hf_gen_row r;
	const int32_t *pr = ids;
	size_t len = PROMPT, checked = 0;
	double *want = malloc((size_t)T * V * sizeof(double));

	memset(&o, 0, sizeof(o));
	hf_sample_defaults(&o.sp);
	o.sp.temperature = 0;
	o.max_tokens = T - PROMPT;
	if (hf_gen_run(m, &pr, &len, 1, &o, &r, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(r.n, T - PROMPT);
	assert_int_equal(r.finish, HF_FINISH_LENGTH);
	for (size_t i = 0; i < r.n; i++)
		ids[PROMPT + i] = r.ids[i];
	reference(want);
	for (size_t i = 0; i < r.n; i++) {
		const double *row = want + (PROMPT - 1 + i) * V;
		size_t best = 0;
		double second = -INFINITY;

		for (size_t j = 1; j < V; j++)
			if (row[j] > row[best])
				best = j;
		for (size_t j = 0; j < V; j++)
			if (j != best && row[j] > second)
				second = row[j];
		if (row[best] - second <= TOL)
			continue;
		checked++;
		if ((size_t)r.ids[i] != best)
			fail_msg("token %zu (position %zu): got %d want %zu", i,
				 PROMPT + i, r.ids[i], best);
	}
	printf("greedy past 64: %zu of %zu tokens checked against the "
	       "reference argmax\n", checked, r.n);
	assert_true(checked > r.n / 2);
	hf_gen_row_free(&r);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yarn_logits_past_max_position_embeddings),
		cmocka_unit_test(test_generation_runs_past_max_position_embeddings),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
