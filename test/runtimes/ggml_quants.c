/* test/runtimes/ggml_quants.c: our ggml block formats against ggml itself.
 * Built by test/e2e/runtime_ggml.sh from lib/export/ggml_types.c and
 * ggml_kquants.c and linked with the prebuilt libggml-base.so that
 * node-llama-cpp ships (scripts/bootstrap-runtimes). For every type hf
 * writes, rows of many kinds (random, awkward, ties, denormals, huge)
 * are quantized by ggml_quantize_chunk (no importance matrix: the path
 * llama-quantize takes) and by ours, and the bytes must be identical;
 * ggml's to_float and ours must give the same bits on those blocks and
 * on random bytes. f16 and bf16 are also swept over every 16-bit code
 * and over a stride of all 2^32 float bit patterns, NaNs included.
 * Prints the first mismatch of each type (type, case, offset, got, want)
 * and exits 1 if any. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "core/pool.h"
#include "export/ggml_types.h"

static const int types[] = {
	HF_GGML_F32, HF_GGML_F16, HF_GGML_BF16, HF_GGML_Q8_0, HF_GGML_Q4_0,
	HF_GGML_Q4_1, HF_GGML_Q5_0, HF_GGML_Q5_1, HF_GGML_Q2_K, HF_GGML_Q3_K,
	HF_GGML_Q4_K, HF_GGML_Q5_K, HF_GGML_Q6_K, HF_GGML_TQ1_0, HF_GGML_TQ2_0,
};

#define NCASES 18

static const char *case_names[NCASES] = {
	"normal", "uniform", "outlier", "zeros", "constant", "negative",
	"positive", "denormal", "tiny", "huge", "grid-ties", "half-zero-subblocks",
	"sparse", "heavy-tail", "f16-values", "one-sign-flip", "ramp", "ternary",
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_u32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static float unit(void)	/* [0, 1) */
{
	return (float)(next_u32() >> 8) / 16777216.0f;
}

static float normal(void)
{
	double u1 = ((next_u32() >> 8) + 1.0) / 16777217.0, u2 = unit();

	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static void fill(float *x, int64_t n, int c, int64_t blck)
{
	float k = normal() * 3;

	for (int64_t i = 0; i < n; i++) {
		float v = normal();

		switch (c) {
		case 0: x[i] = v; break;
		case 1: x[i] = 2 * unit() - 1; break;
		case 2: x[i] = v * 1e-3f; break;
		case 3: x[i] = 0; break;
		case 4: x[i] = k; break;
		case 5: x[i] = -fabsf(v); break;
		case 6: x[i] = fabsf(v) + 0.5f; break;
		case 7: x[i] = v * 1e-40f; break;
		case 8: x[i] = v * 1e-8f; break;
		case 9: x[i] = v * 1e5f; break;
		case 10: x[i] = (float)((int)(next_u32() % 33) - 16) * 0.125f; break;
		case 11: x[i] = (i / 16) % 2 ? 0 : v; break;
		case 12: x[i] = next_u32() % 17 ? 0 : v; break;
		case 13: x[i] = v * v * v; break;
		case 14: x[i] = hf_ggml_fp16_to_fp32(hf_ggml_fp32_to_fp16(v)); break;
		case 15: x[i] = i % blck == blck / 2 ? -fabsf(v) - 4 : fabsf(v); break;
		case 16: x[i] = (float)(i % blck) / (float)blck - 0.5f; break;
		case 17: x[i] = (float)((int)(next_u32() % 3) - 1) * 0.75f; break;
		}
	}
	if (c == 2)
		for (int64_t b = 0; b < n; b += blck)
			x[b + next_u32() % blck] = (next_u32() & 1 ? 50.0f : -50.0f);
}

static int failures;
static struct hf_pool *pool;

/* memcmp that reports the first differing byte */
static int same(const char *what, int type, const char *cs, const void *got,
		const void *want, size_t bytes)
{
	const uint8_t *g = got, *w = want;

	for (size_t i = 0; i < bytes; i++) {
		if (g[i] != w[i]) {
			fprintf(stderr, "%s %s (%s): byte %zu of %zu: got 0x%02x, want 0x%02x\n",
				what, hf_ggml_traits(type)->name, cs, i, bytes, g[i], w[i]);
			failures++;
			return 0;
		}
	}
	return 1;
}

static void check_type(int t)
{
	const struct hf_ggml_traits *tr = hf_ggml_traits(t);
	const struct ggml_type_traits *gt = ggml_get_type_traits((enum ggml_type)t);
	const int64_t widths[] = { tr->blck, 3 * tr->blck, 4096 };
	const int64_t nrows = 24;
	int checked = 0;

	if (strcmp(gt->type_name, tr->name) || gt->blck_size != tr->blck ||
	    gt->type_size != tr->bytes) {
		fprintf(stderr, "%s: ggml says %s, %lld elements, %zu bytes a block\n",
			tr->name, gt->type_name, (long long)gt->blck_size, gt->type_size);
		failures++;
		return;
	}
	for (size_t wi = 0; wi < sizeof(widths) / sizeof(widths[0]); wi++) {
		const int64_t w = widths[wi], n = w * nrows;
		const size_t rs = hf_ggml_row_size(t, w);
		float *x = malloc(n * sizeof(float));
		float *yo = malloc(n * sizeof(float)), *yg = malloc(n * sizeof(float));
		uint8_t *qo = malloc(rs * nrows), *qg = malloc(rs * nrows);

		if (ggml_row_size((enum ggml_type)t, w) != rs) {
			fprintf(stderr, "%s: row of %lld: ggml %zu bytes, ours %zu\n", tr->name,
				(long long)w, ggml_row_size((enum ggml_type)t, w), rs);
			failures++;
		}
		for (int c = 0; c < NCASES; c++) {
			fill(x, n, c, tr->blck);
			memset(qo, 0xa5, rs * nrows);
			memset(qg, 0x5a, rs * nrows);
			size_t got = ggml_quantize_chunk((enum ggml_type)t, x, qg, 0, nrows, w, NULL);
			tr->quantize(x, qo, n);
			if (got != rs * nrows) {
				fprintf(stderr, "%s: ggml wrote %zu bytes, want %zu\n", tr->name,
					got, rs * nrows);
				failures++;
			}
			if (!same("quantize", t, case_names[c], qo, qg, rs * nrows))
				goto out;
			memset(qo, 0xa5, rs * nrows);
			hf_ggml_quantize_pool(tr, x, qo, n, pool);
			if (!same("quantize on 4 threads", t, case_names[c], qo, qg, rs * nrows))
				goto out;
			checked++;
			if (!gt->to_float)
				continue;	/* f32 */
			gt->to_float(qg, yg, n);
			tr->dequantize(qg, yo, n);
			if (!same("dequantize", t, case_names[c], yo, yg, n * sizeof(float)))
				goto out;
			/* any bytes are a block: scales may be inf or NaN */
			for (size_t i = 0; i < rs * nrows; i++)
				qg[i] = (uint8_t)next_u32();
			gt->to_float(qg, yg, n);
			tr->dequantize(qg, yo, n);
			if (!same("dequantize random bytes", t, case_names[c], yo, yg,
				  n * sizeof(float)))
				goto out;
		}
out:
		free(x);
		free(yo);
		free(yg);
		free(qo);
		free(qg);
	}
	printf("%s: %d row sets identical\n", tr->name, checked);
}

/* f16 and bf16 from every 16-bit code; to them from a stride of all
 * float bit patterns plus the special values, in chunks. */
static void sweep_halves(void)
{
	enum { CH = 1 << 16 };
	static uint16_t h[CH], ho[CH], hg[CH];
	static float f[CH], fo[CH], fg[CH];
	const int ts[2] = { HF_GGML_F16, HF_GGML_BF16 };
	long long n = 0;

	for (int k = 0; k < 2; k++) {
		const struct hf_ggml_traits *tr = hf_ggml_traits(ts[k]);
		const struct ggml_type_traits *gt = ggml_get_type_traits((enum ggml_type)ts[k]);

		for (int i = 0; i < CH; i++)
			h[i] = (uint16_t)i;
		gt->to_float(h, fg, CH);
		tr->dequantize(h, fo, CH);
		if (!same("widen every code", ts[k], "sweep", fo, fg, sizeof(fo)))
			continue;
		for (uint64_t base = 0; base < (1ull << 32); base += (uint64_t)CH * 61) {
			for (int i = 0; i < CH; i++) {
				uint32_t u = (uint32_t)(base + (uint64_t)i * 61);

				memcpy(&f[i], &u, 4);
			}
			ggml_quantize_chunk((enum ggml_type)ts[k], f, hg, 0, 1, CH, NULL);
			tr->quantize(f, ho, CH);
			n += CH;
			if (!same("narrow float bits", ts[k], "sweep", ho, hg, sizeof(ho)))
				break;
		}
		/* around every rounding boundary: each code's midpoint, +-1 ulp */
		for (int i = 0; i < CH; i++) {
			uint32_t u;

			memcpy(&u, &fg[i ^ (i & 1)], 4);
			u += (uint32_t)(i % 3) - 1;
			u += k ? 0x8000u : (i & 2 ? 0x1000u : 0);
			memcpy(&f[i], &u, 4);
		}
		ggml_quantize_chunk((enum ggml_type)ts[k], f, hg, 0, 1, CH, NULL);
		tr->quantize(f, ho, CH);
		same("narrow near midpoints", ts[k], "sweep", ho, hg, sizeof(ho));
	}
	printf("f16, bf16: every code widened, %lld float patterns narrowed\n", n);
}

int main(void)
{
	struct hf_err err = { 0 };

	if (hf_pool_create(&pool, 4, &err)) {
		fprintf(stderr, "ggml_quants: %s\n", err.msg);
		return 1;
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		check_type(types[i]);
	sweep_halves();
	hf_pool_free(pool);
	if (failures) {
		fprintf(stderr, "ggml_quants: %d mismatches\n", failures);
		return 1;
	}
	printf("ggml_quants: all types byte-identical to ggml\n");
	return 0;
}
