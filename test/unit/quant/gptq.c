/* test/unit/quant/gptq.c: the GPTQ solver against round-to-nearest on
 * correlated inputs, its dead columns, desc_act's g_idx and a case
 * worked by hand; the layer-by-layer driver on the llama-tiny fixture
 * (per layer, GPTQ's output error on the calibration activations below
 * RTN's; the layer runner against the whole forward pass); and the
 * calibration file's refusals. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "model/model.h"
#include "quant/calib.h"
#include "quant/gptq.h"
#include "quant/quantize.h"

static uint64_t rng = 0x243f6a8885a308d3ull;

static double urand(void)	/* [0, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static float nrand(void)
{
	double u = urand() + 1e-12, v = urand();

	return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* ||(W - D) X^T||_F^2 over X (n, cols), in double. */
static double out_err(const float *W, const float *D, const float *X,
		      size_t rows, size_t cols, size_t n)
{
	double e = 0.0;

	for (size_t o = 0; o < rows; o++)
		for (size_t t = 0; t < n; t++) {
			double s = 0.0;

			for (size_t i = 0; i < cols; i++)
				s += ((double)W[o * cols + i] - D[o * cols + i]) *
				     X[t * cols + i];
			e += s * s;
		}
	return e;
}

/* X (n, cols): a few shared factors plus noise, columns of unequal
 * scale, so that inputs are correlated and their Hessian far from
 * diagonal. */
static void correlated(float *X, size_t n, size_t cols)
{
	enum { F = 6 };
	float *A = malloc(F * cols * sizeof(float));

	assert_non_null(A);
	for (size_t i = 0; i < F * cols; i++)
		A[i] = nrand();
	for (size_t t = 0; t < n; t++) {
		float z[F];

		for (size_t f = 0; f < F; f++)
			z[f] = nrand();
		for (size_t i = 0; i < cols; i++) {
			float s = 0.3f * nrand();

			for (size_t f = 0; f < F; f++)
				s += z[f] * A[f * cols + i];
			X[t * cols + i] = s * (0.2f + 2.0f * (float)(i % 7) / 7);
		}
	}
	free(A);
}

static void test_gptq_beats_rtn_on_correlated_inputs(void **state)
{
	const size_t rows = 24, cols = 64, n = 400;
	const unsigned bits[] = { 2, 3, 4, 8 };
	const long groups[] = { 16, -1 };
	float *W = malloc(rows * cols * sizeof(float));
	float *X = malloc(n * cols * sizeof(float));
	float *H = malloc(cols * cols * sizeof(float));
	float *H0 = malloc(cols * cols * sizeof(float));

	(void)state;
	assert_true(W && X && H && H0);
	for (size_t i = 0; i < rows * cols; i++)
		W[i] = 0.1f * nrand();
	correlated(X, n, cols);
	hf_gptq_hessian(H0, X, n, cols, 2.0f / (float)n);
	for (size_t b = 0; b < 4; b++)
		for (size_t g = 0; g < 2; g++)
			for (int act = 0; act < 2; act++)
				for (int sym = 0; sym < 2; sym++) {
					struct hf_gptq_params p = {
						bits[b], groups[g], act, sym,
						0.01f, 0 };
					struct hf_gptq_result rq, rr;
					struct hf_err err = { 0 };
					double eq, er;

					memcpy(H, H0, cols * cols * sizeof(float));
					assert_int_equal(hf_gptq_solve(&rq, W, rows,
								       cols, H, &p,
								       &err), 0);
					assert_int_equal(hf_gptq_rtn(&rr, W, rows,
								     cols, &p,
								     &err), 0);
					eq = out_err(W, rq.deq, X, rows, cols, n);
					er = out_err(W, rr.deq, X, rows, cols, n);
					if (!(eq < er))
						fail_msg("bits %u group %ld desc_act %d sym %d: "
							 "gptq error %g, rtn %g",
							 bits[b], groups[g], act,
							 sym, eq, er);
					/* deq is scales * (q - zeros) */
					for (size_t o = 0; o < rows; o++)
						for (size_t i = 0; i < cols; i++) {
							size_t k = o * cols + i;
							int32_t gi = rq.g_idx[i];
							float s = rq.scales[gi * rows + o];
							float z = rq.zeros[gi * rows + o];

							assert_true(rq.q[k] < (1u << bits[b]));
							assert_true(rq.deq[k] ==
								    s * ((float)rq.q[k] - z));
						}
					hf_gptq_result_free(&rq);
					hf_gptq_result_free(&rr);
				}
	free(W);
	free(X);
	free(H);
	free(H0);
}

static void test_dead_columns_are_zero(void **state)
{
	const size_t rows = 8, cols = 32, n = 100;
	float *W = malloc(rows * cols * sizeof(float));
	float *X = malloc(n * cols * sizeof(float));
	float *H = malloc(cols * cols * sizeof(float));
	struct hf_gptq_params p = { 4, 16, 1, 0, 0.0f, 8 };
	struct hf_gptq_result r;
	struct hf_err err = { 0 };

	(void)state;
	for (size_t i = 0; i < rows * cols; i++)
		W[i] = nrand();
	correlated(X, n, cols);
	for (size_t t = 0; t < n; t++)
		X[t * cols + 3] = X[t * cols + 20] = 0.0f;
	hf_gptq_hessian(H, X, n, cols, 2.0f / (float)n);
	/* damp 0: the dead columns' H[d, d] = 1 alone keeps H definite */
	assert_int_equal(hf_gptq_solve(&r, W, rows, cols, H, &p, &err), 0);
	for (size_t o = 0; o < rows; o++) {
		if (r.deq[o * cols + 3] != 0.0f || r.deq[o * cols + 20] != 0.0f)
			fail_msg("row %zu: dead columns dequantize to %g, %g, want 0",
				 o, r.deq[o * cols + 3], r.deq[o * cols + 20]);
	}
	hf_gptq_result_free(&r);
	free(W);
	free(X);
	free(H);
}

/* H = I: H^-1's Cholesky factor is diagonal, no error moves to other
 * columns, and GPTQ is round-to-nearest. Worked by hand for 4-bit
 * asym: min -0.5, max 1.0, scale 1.5 / 15 = 0.1, zero round(5) = 5,
 * q = round(w / 0.1) + 5. */
static void test_identity_hessian_is_rtn(void **state)
{
	const float W[4] = { 0.1f, -0.5f, 0.3f, 1.0f };
	const uint8_t want[4] = { 6, 0, 8, 15 };
	float H[16] = { 0 };
	struct hf_gptq_params p = { 4, -1, 0, 0, 0.01f, 0 };
	struct hf_gptq_result r, rr;
	struct hf_err err = { 0 };

	(void)state;
	for (int i = 0; i < 4; i++)
		H[i * 5] = 1.0f;
	assert_int_equal(hf_gptq_solve(&r, W, 1, 4, H, &p, &err), 0);
	assert_int_equal(hf_gptq_rtn(&rr, W, 1, 4, &p, &err), 0);
	assert_int_equal(r.G, 1);
	assert_int_equal(r.zeros[0], 5);
	assert_true(fabsf(r.scales[0] - 0.1f) < 1e-7f);
	for (int i = 0; i < 4; i++) {
		if (r.q[i] != want[i] || rr.q[i] != want[i])
			fail_msg("column %d: gptq %u, rtn %u, want %u", i,
				 r.q[i], rr.q[i], want[i]);
		assert_int_equal(r.g_idx[i], 0);
	}
	hf_gptq_result_free(&r);
	hf_gptq_result_free(&rr);
}

/* desc_act: perm = argsort(diag H, descending) = 1, 2, 3, 0, and
 * g_idx[perm[k]] = k / group_size. */
static void test_desc_act_g_idx(void **state)
{
	const float W[8] = { 1, 2, 3, 4, -1, -2, -3, -4 };
	float H[16] = { 0 };
	const float d[4] = { 1, 4, 3, 2 };
	const int32_t want[4] = { 1, 0, 0, 1 };
	struct hf_gptq_params p = { 4, 2, 1, 1, 0.01f, 0 };
	struct hf_gptq_result r;
	struct hf_err err = { 0 };

	(void)state;
	for (int i = 0; i < 4; i++)
		H[i * 5] = d[i];
	assert_int_equal(hf_gptq_solve(&r, W, 2, 4, H, &p, &err), 0);
	for (int i = 0; i < 4; i++)
		if (r.g_idx[i] != want[i])
			fail_msg("g_idx[%d] = %d, want %d", i, r.g_idx[i],
				 want[i]);
	/* sym: zero 8 */
	for (size_t i = 0; i < r.G * r.rows; i++)
		assert_int_equal(r.zeros[i], 8);
	hf_gptq_result_free(&r);
}

/* find_params is the quantizer write_gptq.c implements too. */
static void test_refuses_group_not_dividing(void **state)
{
	float W[48] = { 0 }, H[48 * 48] = { 0 };
	struct hf_gptq_params p = { 4, 32, 0, 1, 0.01f, 0 };
	struct hf_gptq_result r;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_gptq_solve(&r, W, 1, 48, H, &p, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "group size 32"));
	p.group_size = 16;
	p.bits = 5;
	assert_int_equal(hf_gptq_rtn(&r, W, 1, 48, &p, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "5 bits"));
}

/* ---- the model driver ------------------------------------------------------ */

static char model_dir[512];

static const char *tiny(void)
{
	const char *f = getenv("HF_FIXTURES");

	snprintf(model_dir, sizeof(model_dir), "%s/models/llama-tiny",
		 f ? f : "test/fixtures");
	return model_dir;
}

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* 8 records of 48 random ids below llama-tiny's 512. */
static void write_calib(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (int r = 0; r < 8; r++) {
		fputs("{\"ids\": [", f);
		for (int i = 0; i < 48; i++)
			fprintf(f, "%s%d", i ? ", " : "",
				(int)(urand() * 512));
		fputs("]}\n", f);
	}
	assert_int_equal(fclose(f), 0);
}

struct layer_errs {
	struct hf_gptq_params p;
	double gptq[8], rtn[8];
	size_t nlin;
};

/* tr(D H D^T) with D = W - deq: (2 / nseq) ||D X^T||^2 over the very
 * activations the linear saw. */
static double h_err(const float *W, const float *deq, const float *H,
		    size_t rows, size_t cols)
{
	double e = 0.0;
	double *d = malloc(cols * sizeof(double));

	assert_non_null(d);
	for (size_t o = 0; o < rows; o++) {
		for (size_t i = 0; i < cols; i++)
			d[i] = (double)W[o * cols + i] - deq[o * cols + i];
		for (size_t i = 0; i < cols; i++)
			for (size_t j = 0; j < cols; j++)
				e += d[i] * H[i * cols + j] * d[j];
	}
	free(d);
	return e;
}

static int sink(void *ctx, const struct hf_gptq_linear *l, struct hf_err *err)
{
	struct layer_errs *le = ctx;
	const struct hf_gptq_result *r = l->r;
	struct hf_gptq_result rr;

	if (hf_gptq_rtn(&rr, l->W, r->rows, r->cols, &le->p, err))
		return err->code;
	assert_true(l->layer < 8);
	assert_non_null(strstr(l->name, "model.layers."));
	le->gptq[l->layer] += h_err(l->W, r->deq, l->H, r->rows, r->cols);
	le->rtn[l->layer] += h_err(l->W, rr.deq, l->H, r->rows, r->cols);
	le->nlin++;
	/* packed: qweight I32 [in * bits / 32, out], then qzeros, scales,
	 * g_idx */
	assert_true(l->q->n >= 4);
	assert_string_equal(l->q->t[0].suffix, "qweight");
	assert_int_equal(l->q->t[0].shape[0], r->cols * r->bits / 32);
	assert_int_equal(l->q->t[0].shape[1], r->rows);
	hf_gptq_result_free(&rr);
	return 0;
}

static void test_model_gptq_beats_rtn_per_layer(void **state)
{
	char path[] = "/tmp/hf-gptq-calib-XXXXXX";
	int fd = mkstemp(path);
	const struct hf_gptq_params ps[] = {
		{ 4, 16, 0, 1, 0.01f, 0 },
		{ 3, 32, 1, 0, 0.01f, 0 },
		{ 2, -1, 1, 1, 0.01f, 0 },
	};

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	write_calib(path);
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		struct layer_errs le = { ps[k], { 0 }, { 0 }, 0 };
		struct hf_gptq_opts o = { ps[k], path, 0, 32, 1, (int)(k % 2) };
		struct hf_err err = { 0 };

		if (hf_gptq_quantize_model(tiny(), &o, sink, &le, &err))
			fail_msg("%s", err.msg);
		assert_int_equal(le.nlin, 2 * HF_MODEL_LAYER_LIN);
		for (size_t l = 0; l < 2; l++)
			if (!(le.gptq[l] < le.rtn[l]))
				fail_msg("setting %zu layer %zu: gptq error %g, rtn %g",
					 k, l, le.gptq[l], le.rtn[l]);
	}
	unlink(path);
}

static void noop_tap(void *ctx, size_t l, size_t i, struct hf_buf *x,
		     size_t n)
{
	(void)l;
	(void)i;
	(void)x;
	(void)n;
	++*(int *)ctx;
}

/* Layers [0, 1) then [1, 2) from the first's output give the hidden
 * states the whole forward pass gives, taps or not. */
static void test_run_layers_matches_forward(void **state)
{
	enum { B = 2, T = 5 };
	struct hf_model *m;
	struct hf_kv *kv;
	struct hf_err err = { 0 };
	int32_t ids[B * T];
	float *hid, *h1;
	size_t H;
	int calls = 0;
	struct hf_fwd_out out = { 0 };

	(void)state;
	for (int i = 0; i < B * T; i++)
		ids[i] = (int32_t)(urand() * 512);
	if (hf_model_open(&m, tiny(), NULL, 1, &err))
		fail_msg("%s", err.msg);
	H = hf_model_hidden(m);
	assert_int_equal(hf_kv_new(&kv, m, B, T, &err), 0);
	hid = malloc(3 * B * T * H * sizeof(float));
	h1 = malloc(B * T * H * sizeof(float));
	out.hidden = hid;
	assert_int_equal(hf_model_forward(m, kv, ids, NULL, T, &out, &err), 0);
	assert_int_equal(hf_model_set_tap(m, 1, noop_tap, &calls, &err), 0);
	assert_int_equal(hf_model_run_layers(m, kv, ids, T, 0, 1, NULL, h1,
					     &err), 0);
	assert_int_equal(calls, 0);
	for (size_t i = 0; i < B * T * H; i++)
		if (h1[i] != hid[B * T * H + i])
			fail_msg("after layer 0, [%zu]: got %g, want %g", i, h1[i],
				 hid[B * T * H + i]);
	assert_int_equal(hf_model_run_layers(m, kv, ids, T, 1, 2, h1, h1,
					     &err), 0);
	assert_int_equal(calls, HF_MODEL_LAYER_LIN);
	/* hidden[2] is after the final norm: check layer 1's output by
	 * running the model's last layer from hidden[1] once more */
	assert_int_equal(hf_model_set_tap(m, 1, NULL, NULL, &err), 0);
	assert_int_equal(hf_model_run_layers(m, kv, ids, T, 1, 2,
					     hid + B * T * H,
					     hid + 2 * B * T * H, &err), 0);
	for (size_t i = 0; i < B * T * H; i++)
		if (h1[i] != hid[2 * B * T * H + i])
			fail_msg("after layer 1, [%zu]: got %g, want %g", i, h1[i],
				 hid[2 * B * T * H + i]);
	assert_int_equal(hf_model_run_layers(m, kv, ids, T, 1, 2, NULL, h1,
					     &err), HF_EINVAL);
	free(hid);
	free(h1);
	hf_kv_free(kv);
	hf_model_free(m);
}

/* ---- calibration files ----------------------------------------------------- */

static int calib_err(const char *data, size_t n, const char *dir,
		     struct hf_err *err)
{
	char path[] = "/tmp/hf-gptq-calib-XXXXXX";
	int fd = mkstemp(path), rc;
	struct hf_calib c;

	assert_true(fd >= 0);
	close(fd);
	write_file(path, data, n);
	rc = hf_calib_load(&c, path, dir, 0, 4, 512, err);
	if (!rc) {
		assert_int_equal(c.T, 4);
		hf_calib_free(&c);
	}
	unlink(path);
	return rc;
}

static void test_calib_chunks_ids(void **state)
{
	char path[] = "/tmp/hf-gptq-calib-XXXXXX";
	const char *data = "{\"ids\": [1, 2, 3]}\n\n{\"ids\": [4, 5, 6, 7, 8, 9, 10]}\n";
	int fd = mkstemp(path);
	struct hf_calib c;
	struct hf_err err = { 0 };

	(void)state;
	close(fd);
	write_file(path, data, strlen(data));
	assert_int_equal(hf_calib_load(&c, path, NULL, 0, 4, 0, &err), 0);
	assert_int_equal(c.n, 2);	/* 10 tokens: 2 of 4, 2 dropped */
	assert_int_equal(c.T, 4);
	for (int i = 0; i < 8; i++)
		assert_int_equal(c.ids[i], i + 1);
	hf_calib_free(&c);
	assert_int_equal(hf_calib_load(&c, path, NULL, 1, 4, 0, &err), 0);
	assert_int_equal(c.n, 1);
	hf_calib_free(&c);
	assert_int_equal(hf_calib_load(&c, path, NULL, 0, 64, 0, &err), 0);
	assert_int_equal(c.n, 1);	/* all there is: one of 10 */
	assert_int_equal(c.T, 10);
	hf_calib_free(&c);
	unlink(path);
}

static void test_calib_refusals(void **state)
{
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(calib_err("", 0, NULL, &err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "no calibration tokens"));
	assert_int_equal(calib_err("\n  \n", 4, NULL, &err), HF_EFORMAT);
	assert_int_equal(calib_err("{\"ids\": [1]}\n\xff\xfe\n", 15, NULL,
				   &err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "line 2: invalid UTF-8"));
	assert_int_equal(calib_err("{\"ids\": [1]}\n{\"ids\": [2,\n", 25, NULL,
				   &err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "line 2: bad JSON"));
	assert_int_equal(calib_err("{\"x\": 1}\n", 9, NULL, &err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "line 1: a record needs"));
	assert_int_equal(calib_err("{\"ids\": [512]}\n", 15, NULL, &err),
			 HF_ERANGE);
	assert_non_null(strstr(err.msg, "token id 512"));
	/* llama-tiny has no tokenizer.json */
	assert_int_equal(calib_err("some text\n", 10, tiny(), &err),
			 HF_EINVAL);
	assert_non_null(strstr(err.msg, "line 1: text needs the model's tokenizer"));
	assert_int_equal(calib_err("{\"text\": \"hi\"}\n", 15, NULL, &err),
			 HF_EINVAL);
	assert_non_null(strstr(err.msg, "there is none"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gptq_beats_rtn_on_correlated_inputs),
		cmocka_unit_test(test_dead_columns_are_zero),
		cmocka_unit_test(test_identity_hessian_is_rtn),
		cmocka_unit_test(test_desc_act_g_idx),
		cmocka_unit_test(test_refuses_group_not_dividing),
		cmocka_unit_test(test_model_gptq_beats_rtn_per_layer),
		cmocka_unit_test(test_run_layers_matches_forward),
		cmocka_unit_test(test_calib_chunks_ids),
		cmocka_unit_test(test_calib_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
