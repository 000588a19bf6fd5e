/* lib/export/ggml_kquants.c: ggml's K-quants (q2_K q3_K q4_K q5_K q6_K),
 * 256-element super-blocks of 16 or 32-element sub-blocks whose scales
 * are themselves quantized against an f16 super-scale. Bit for bit what
 * ggml's quantize_row_<t>_ref (the path llama-quantize takes without an
 * importance matrix: quantize_<t>(..., NULL) calls it) and
 * dequantize_row_<t> produce, in ggml/src/ggml-quants.c of the
 * llama.cpp release node-llama-cpp 3.21.1 ships: the same scale
 * searches (make_qkx2_quants, make_qx_quants, make_q3_quants) with
 * their constants, and the same float operations in the same order. */
#include "export/ggml_types.h"

#include <math.h>
#include <string.h>

/* See ggml_types.c: no fused multiply-adds. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define QK_K 256

/* Groups this small count as all zero (ggml's GROUP_MAX_EPS). */
#define GROUP_MAX_EPS 1e-15f

/* Byte layouts of ggml-common.h's block_<t>. */
struct blk_q2_K { uint8_t scales[16]; uint8_t qs[64]; uint8_t d[2]; uint8_t dmin[2]; };
struct blk_q3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint8_t d[2]; };
struct blk_q4_K { uint8_t d[2]; uint8_t dmin[2]; uint8_t scales[12]; uint8_t qs[128]; };
struct blk_q5_K { uint8_t d[2]; uint8_t dmin[2]; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
struct blk_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint8_t d[2]; };

_Static_assert(sizeof(struct blk_q2_K) == 84, "q2_K block");
_Static_assert(sizeof(struct blk_q3_K) == 110, "q3_K block");
_Static_assert(sizeof(struct blk_q4_K) == 144, "q4_K block");
_Static_assert(sizeof(struct blk_q5_K) == 176, "q5_K block");
_Static_assert(sizeof(struct blk_q6_K) == 210, "q6_K block");

static void put_f16(uint8_t *p, float f)
{
	uint16_t h = hf_ggml_fp32_to_fp16(f);

	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(h >> 8);
}

static float get_f16(const uint8_t *p)
{
	return hf_ggml_fp16_to_fp32((uint16_t)(p[0] | p[1] << 8));
}

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* Round half to even by adding 1.5 * 2^23, which leaves the integer in
 * the low mantissa bits; exact for |f| < 2^22. ggml asserts that bound;
 * past it (only from non-finite or absurd input) the result is garbage
 * here as there, not a fault. */
static int nearest_int(float f)
{
	float v = f + 12582912.f;
	int i;

	memcpy(&i, &v, sizeof(i));
	return (i & 0x007fffff) - 0x00400000;
}

/* ---- scale searches ---------------------------------------------------- */

/* make_qkx2_quants: scale and min (returned negated in *the_min, so >= 0)
 * of n values on levels 0..nmax, minimising the weighted squared (or,
 * use_mad, absolute) error over nstep + 1 candidate scales
 * (rmin + rdelta * is + nmax) / (max - min), each refitted by weighted
 * least squares. L: the levels; Laux: n bytes of scratch. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights,
			      uint8_t *L, float *the_min, uint8_t *Laux,
			      float rmin, float rdelta, int nstep, int use_mad)
{
	float min = x[0], max = x[0];
	float sum_w = weights[0];
	float sum_x = sum_w * x[0];

	for (int i = 1; i < n; i++) {
		if (x[i] < min)
			min = x[i];
		if (x[i] > max)
			max = x[i];
		float w = weights[i];
		sum_w += w;
		sum_x += w * x[i];
	}
	if (min > 0)
		min = 0;
	if (max == min) {
		for (int i = 0; i < n; i++)
			L[i] = 0;
		*the_min = -min;
		return 0.f;
	}

	float iscale = nmax / (max - min);
	float scale = 1 / iscale;
	float best_error = 0;

	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * (x[i] - min));

		L[i] = (uint8_t)imax(0, imin(nmax, l));
		float diff = scale * L[i] + min - x[i];
		diff = use_mad ? fabsf(diff) : diff * diff;
		best_error += weights[i] * diff;
	}
	if (nstep < 1) {
		*the_min = -min;
		return scale;
	}
	for (int is = 0; is <= nstep; is++) {
		float sum_l = 0, sum_l2 = 0, sum_xl = 0;

		iscale = (rmin + rdelta * is + nmax) / (max - min);
		for (int i = 0; i < n; i++) {
			int l = nearest_int(iscale * (x[i] - min));
			float w = weights[i];

			l = imax(0, imin(nmax, l));
			Laux[i] = (uint8_t)l;
			sum_l += w * l;
			sum_l2 += w * l * l;
			sum_xl += w * l * x[i];
		}

		float D = sum_w * sum_l2 - sum_l * sum_l;

		if (D > 0) {
			float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
			float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
			float cur_error = 0;

			if (this_min > 0) {
				this_min = 0;
				this_scale = sum_xl / sum_l2;
			}
			for (int i = 0; i < n; i++) {
				float diff = this_scale * Laux[i] + this_min - x[i];
				diff = use_mad ? fabsf(diff) : diff * diff;
				cur_error += weights[i] * diff;
			}
			if (cur_error < best_error) {
				memcpy(L, Laux, (size_t)n);
				best_error = cur_error;
				scale = this_scale;
				min = this_min;
			}
		}
	}
	*the_min = -min;
	return scale;
}

/* make_qx_quants with rmse_type 1 and no importance weights (the only
 * way q6_K's reference calls it): a signed scale for levels -nmax ..
 * nmax-1 (stored + nmax in L), weights x^2, trying 18 scales around
 * -nmax / max and keeping the best least-squares fit. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
	float max = 0, amax = 0;

	for (int i = 0; i < n; i++) {
		float ax = fabsf(x[i]);

		if (ax > amax) {
			amax = ax;
			max = x[i];
		}
	}
	if (amax < GROUP_MAX_EPS) {
		for (int i = 0; i < n; i++)
			L[i] = 0;
		return 0.f;
	}

	float iscale = -nmax / max;
	float sumlx = 0, suml2 = 0;

	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * x[i]);
		float w = x[i] * x[i];

		l = imax(-nmax, imin(nmax - 1, l));
		L[i] = (int8_t)(l + nmax);
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}

	float scale = suml2 ? sumlx / suml2 : 0.0f;
	float best = scale * sumlx;

	for (int is = -9; is <= 9; is++) {
		if (is == 0)
			continue;
		iscale = -(nmax + 0.1f * is) / max;
		sumlx = suml2 = 0;
		for (int i = 0; i < n; i++) {
			int l = nearest_int(iscale * x[i]);
			float w = x[i] * x[i];

			l = imax(-nmax, imin(nmax - 1, l));
			sumlx += w * x[i] * l;
			suml2 += w * l * l;
		}
		if (suml2 > 0 && sumlx * sumlx > best * suml2) {
			for (int i = 0; i < n; i++) {
				int l = nearest_int(iscale * x[i]);

				L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
			}
			scale = sumlx / suml2;
			best = scale * sumlx;
		}
	}
	return scale;
}

/* make_q3_quants with do_rmse: a signed scale for levels -nmax ..
 * nmax-1, then up to 5 passes moving single levels while the weighted
 * (x^2) fit improves. L holds level + nmax. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
	float max = 0, amax = 0;

	for (int i = 0; i < n; i++) {
		float ax = fabsf(x[i]);

		if (ax > amax) {
			amax = ax;
			max = x[i];
		}
	}
	if (amax < GROUP_MAX_EPS) {
		for (int i = 0; i < n; i++)
			L[i] = 0;
		return 0.f;
	}

	float iscale = -nmax / max;
	float sumlx = 0, suml2 = 0;

	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * x[i]);
		float w = x[i] * x[i];

		l = imax(-nmax, imin(nmax - 1, l));
		L[i] = (int8_t)l;
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}
	for (int itry = 0; itry < 5; itry++) {
		int n_changed = 0;

		for (int i = 0; i < n; i++) {
			float w = x[i] * x[i];
			float slx = sumlx - w * x[i] * L[i];

			if (slx > 0) {
				float sl2 = suml2 - w * L[i] * L[i];
				int new_l = nearest_int(x[i] * sl2 / slx);

				new_l = imax(-nmax, imin(nmax - 1, new_l));
				if (new_l != L[i]) {
					slx += w * x[i] * new_l;
					sl2 += w * new_l * new_l;
					if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
						L[i] = (int8_t)new_l;
						sumlx = slx;
						suml2 = sl2;
						n_changed++;
					}
				}
			}
		}
		if (!n_changed)
			break;
	}
	for (int i = 0; i < n; i++)
		L[i] = (int8_t)(L[i] + nmax);
	return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* 2-bit levels of 128 elements into 32 bytes: byte l holds elements l,
 * l + 32, l + 64, l + 96 at bits 0, 2, 4, 6 (q2_K and q3_K). */
static void pack_2bit(uint8_t *qs, const uint8_t *L)
{
	for (int j = 0; j < QK_K; j += 128)
		for (int l = 0; l < 32; l++)
			qs[j / 4 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 2 |
						  L[j + l + 64] << 4 | L[j + l + 96] << 6);
}

/* ---- q2_K: 16 sub-blocks of 16, 4-bit scale and min each --------------- */

void hf_ggml_quantize_q2_K(const float *x, void *vy, int64_t n)
{
	struct blk_q2_K *y = vy;
	const float q4scale = 15.f;
	uint8_t L[QK_K], Laux[16];
	float weights[16], mins[QK_K / 16], scales[QK_K / 16];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max_scale = 0, max_min = 0;

		for (int j = 0; j < QK_K / 16; j++) {
			for (int l = 0; l < 16; l++)
				weights[l] = fabsf(x[16 * j + l]);
			scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j,
						     &mins[j], Laux, -0.5f, 0.1f, 15, 1);
			if (scales[j] > max_scale)
				max_scale = scales[j];
			if (mins[j] > max_min)
				max_min = mins[j];
		}

		if (max_scale > 0) {
			float iscale = q4scale / max_scale;

			for (int j = 0; j < QK_K / 16; j++)
				y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
			put_f16(y[i].d, max_scale / q4scale);
		} else {
			memset(y[i].scales, 0, sizeof(y[i].scales));
			put_f16(y[i].d, 0.f);
		}
		if (max_min > 0) {
			float iscale = q4scale / max_min;

			for (int j = 0; j < QK_K / 16; j++)
				y[i].scales[j] |= (uint8_t)((unsigned)nearest_int(iscale * mins[j]) << 4);
			put_f16(y[i].dmin, max_min / q4scale);
		} else {
			put_f16(y[i].dmin, 0.f);
		}

		for (int j = 0; j < QK_K / 16; j++) {
			const float d = get_f16(y[i].d) * (y[i].scales[j] & 0xf);

			if (!d)
				continue;

			const float dm = get_f16(y[i].dmin) * (y[i].scales[j] >> 4);

			for (int ii = 0; ii < 16; ii++) {
				int l = nearest_int((x[16 * j + ii] + dm) / d);

				L[16 * j + ii] = (uint8_t)imax(0, imin(3, l));
			}
		}
		pack_2bit(y[i].qs, L);
	}
}

void hf_ggml_dequantize_q2_K(const void *vx, float *y, int64_t n)
{
	const struct blk_q2_K *x = vx;

	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d = get_f16(x[i].d);
		const float min = get_f16(x[i].dmin);
		const uint8_t *q = x[i].qs;
		int is = 0;

		for (int h = 0; h < QK_K; h += 128, q += 32) {
			for (int shift = 0; shift < 8; shift += 2) {
				for (int half = 0; half < 32; half += 16) {
					uint8_t sc = x[i].scales[is++];
					float dl = d * (sc & 0xf), ml = min * (sc >> 4);

					for (int l = 0; l < 16; l++)
						*y++ = dl * (int8_t)((q[half + l] >> shift) & 3) - ml;
				}
			}
		}
	}
}

/* ---- q3_K: 16 sub-blocks of 16, signed 6-bit scales -------------------- */

/* Scale j of 16 (6 bits, stored + 32): low 4 bits in a nibble of
 * scales[j % 8], high 2 bits at bit 2 * (j / 4) of scales[8 + j % 4]. */
static int q3_K_scale(const uint8_t *s, int j)
{
	int lo = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
	int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;

	return (lo | hi << 4) - 32;
}

void hf_ggml_quantize_q3_K(const float *x, void *vy, int64_t n)
{
	struct blk_q3_K *y = vy;
	int8_t L[QK_K];
	float scales[QK_K / 16];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max_scale = 0, amax = 0;

		for (int j = 0; j < QK_K / 16; j++) {
			scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);

			float scale = fabsf(scales[j]);

			if (scale > amax) {
				amax = scale;
				max_scale = scales[j];
			}
		}

		memset(y[i].scales, 0, 12);
		if (max_scale) {
			float iscale = -32.f / max_scale;

			for (int j = 0; j < QK_K / 16; j++) {
				int8_t l = (int8_t)nearest_int(iscale * scales[j]);

				l = (int8_t)(imax(-32, imin(31, l)) + 32);
				if (j < 8)
					y[i].scales[j] = (uint8_t)(l & 0xf);
				else
					y[i].scales[j - 8] |= (uint8_t)((l & 0xf) << 4);
				l >>= 4;
				y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
			}
			put_f16(y[i].d, 1 / iscale);
		} else {
			put_f16(y[i].d, 0.f);
		}

		for (int j = 0; j < QK_K / 16; j++) {
			int8_t sc = (int8_t)q3_K_scale(y[i].scales, j);
			float d = get_f16(y[i].d) * sc;

			if (!d)
				continue;
			for (int ii = 0; ii < 16; ii++) {
				int l = nearest_int(x[16 * j + ii] / d);

				L[16 * j + ii] = (int8_t)(imax(-4, imin(3, l)) + 4);
			}
		}

		/* the high bit of element j in bit j / 32 of hmask[j % 32] */
		memset(y[i].hmask, 0, sizeof(y[i].hmask));
		for (int j = 0; j < QK_K; j++) {
			if (L[j] > 3) {
				y[i].hmask[j % 32] |= (uint8_t)(1 << (j / 32));
				L[j] -= 4;
			}
		}
		pack_2bit(y[i].qs, (const uint8_t *)L);
	}
}

void hf_ggml_dequantize_q3_K(const void *vx, float *y, int64_t n)
{
	const struct blk_q3_K *x = vx;

	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d_all = get_f16(x[i].d);
		const uint8_t *q = x[i].qs;
		const uint8_t *hm = x[i].hmask;
		uint8_t m = 1;
		int is = 0;

		for (int h = 0; h < QK_K; h += 128, q += 32) {
			for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
				for (int half = 0; half < 32; half += 16) {
					float dl = d_all * q3_K_scale(x[i].scales, is++);

					for (int l = 0; l < 16; l++)
						*y++ = dl * ((int8_t)((q[half + l] >> shift) & 3) -
							     ((hm[half + l] & m) ? 0 : 4));
				}
			}
		}
	}
}

/* ---- q4_K and q5_K: 8 sub-blocks of 32, 6-bit scale and min each ------- */

/* get_scale_min_k4: sub-block j's 6-bit scale and min from scales[12]. */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
	if (j < 4) {
		*d = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*d = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
		*m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}

/* The shared half of q4_K and q5_K: per sub-block the (scale, min)
 * search, the 6-bit packing of both against the f16 d and dmin, then
 * the levels 0..nmax requantized with the rounded scales. */
static void quantize_kx(const float *x, uint8_t *d_out, uint8_t *dmin_out,
			uint8_t *sc_out, uint8_t *L, int nmax, float rmin, int nstep)
{
	uint8_t Laux[32];
	float weights[32], mins[QK_K / 32], scales[QK_K / 32];
	float max_scale = 0, max_min = 0;

	for (int j = 0; j < QK_K / 32; j++) {
		float sum_x2 = 0;

		for (int l = 0; l < 32; l++)
			sum_x2 += x[32 * j + l] * x[32 * j + l];

		float av_x = sqrtf(sum_x2 / 32);

		for (int l = 0; l < 32; l++)
			weights[l] = av_x + fabsf(x[32 * j + l]);
		scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j,
					     &mins[j], Laux, rmin, 0.1f, nstep, 0);
		if (scales[j] > max_scale)
			max_scale = scales[j];
		if (mins[j] > max_min)
			max_min = mins[j];
	}

	float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
	float inv_min = max_min > 0 ? 63.f / max_min : 0.f;

	for (int j = 0; j < QK_K / 32; j++) {
		uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
		uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);

		ls = ls < 63 ? ls : 63;
		lm = lm < 63 ? lm : 63;
		if (j < 4) {
			sc_out[j] = ls;
			sc_out[j + 4] = lm;
		} else {
			sc_out[j + 4] = (uint8_t)((ls & 0xf) | (lm & 0xf) << 4);
			sc_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
			sc_out[j] |= (uint8_t)((lm >> 4) << 6);
		}
	}
	put_f16(d_out, max_scale / 63.f);
	put_f16(dmin_out, max_min / 63.f);

	for (int j = 0; j < QK_K / 32; j++) {
		uint8_t sc, m;

		scale_min_k4(j, sc_out, &sc, &m);

		const float d = get_f16(d_out) * sc;

		if (!d)
			continue;

		const float dm = get_f16(dmin_out) * m;

		for (int ii = 0; ii < 32; ii++) {
			int l = nearest_int((x[32 * j + ii] + dm) / d);

			L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
		}
	}
}

void hf_ggml_quantize_q4_K(const float *x, void *vy, int64_t n)
{
	struct blk_q4_K *y = vy;
	uint8_t L[QK_K];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		quantize_kx(x, y[i].d, y[i].dmin, y[i].scales, L, 15, -1.f, 20);

		/* chunk c of 64: byte l of qs[32c..] holds element 64c + l
		 * (low nibble) and 64c + 32 + l (high) */
		uint8_t *q = y[i].qs;

		for (int j = 0; j < QK_K; j += 64, q += 32)
			for (int l = 0; l < 32; l++)
				q[l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
	}
}

void hf_ggml_dequantize_q4_K(const void *vx, float *y, int64_t n)
{
	const struct blk_q4_K *x = vx;

	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *q = x[i].qs;
		const float d = get_f16(x[i].d);
		const float min = get_f16(x[i].dmin);

		for (int j = 0, is = 0; j < QK_K; j += 64, q += 32, is += 2) {
			uint8_t sc, m;

			scale_min_k4(is, x[i].scales, &sc, &m);

			const float d1 = d * sc, m1 = min * m;

			scale_min_k4(is + 1, x[i].scales, &sc, &m);

			const float d2 = d * sc, m2 = min * m;

			for (int l = 0; l < 32; l++)
				*y++ = d1 * (q[l] & 0xf) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (q[l] >> 4) - m2;
		}
	}
}

void hf_ggml_quantize_q5_K(const float *x, void *vy, int64_t n)
{
	struct blk_q5_K *y = vy;
	uint8_t L[QK_K];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		quantize_kx(x, y[i].d, y[i].dmin, y[i].scales, L, 31, -0.5f, 15);

		/* low nibbles as q4_K; bit 4 of element 64c + l in bit 2c of
		 * qh[l], of element 64c + 32 + l in bit 2c + 1 */
		uint8_t *ql = y[i].qs, *qh = y[i].qh;
		uint8_t m1 = 1, m2 = 2;

		memset(qh, 0, QK_K / 8);
		for (int c = 0; c < QK_K; c += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
			for (int j = 0; j < 32; j++) {
				int l1 = L[c + j], l2 = L[c + j + 32];

				if (l1 > 15) {
					l1 -= 16;
					qh[j] |= m1;
				}
				if (l2 > 15) {
					l2 -= 16;
					qh[j] |= m2;
				}
				ql[j] = (uint8_t)(l1 | l2 << 4);
			}
		}
	}
}

void hf_ggml_dequantize_q5_K(const void *vx, float *y, int64_t n)
{
	const struct blk_q5_K *x = vx;

	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *ql = x[i].qs, *qh = x[i].qh;
		const float d = get_f16(x[i].d);
		const float min = get_f16(x[i].dmin);
		uint8_t u1 = 1, u2 = 2;

		for (int j = 0, is = 0; j < QK_K; j += 64, ql += 32, is += 2) {
			uint8_t sc, m;

			scale_min_k4(is, x[i].scales, &sc, &m);

			const float d1 = d * sc, m1 = min * m;

			scale_min_k4(is + 1, x[i].scales, &sc, &m);

			const float d2 = d * sc, m2 = min * m;

			for (int l = 0; l < 32; l++)
				*y++ = d1 * ((ql[l] & 0xf) + (qh[l] & u1 ? 16 : 0)) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
			u1 = (uint8_t)(u1 << 2);
			u2 = (uint8_t)(u2 << 2);
		}
	}
}

/* ---- q6_K: 16 sub-blocks of 16, signed 8-bit scales --------------------- */

void hf_ggml_quantize_q6_K(const float *x, void *vy, int64_t n)
{
	struct blk_q6_K *y = vy;
	int8_t L[QK_K];
	float scales[QK_K / 16];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max_scale = 0, max_abs_scale = 0;

		for (int ib = 0; ib < QK_K / 16; ib++) {
			const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
			const float abs_scale = fabsf(scale);

			scales[ib] = scale;
			if (abs_scale > max_abs_scale) {
				max_abs_scale = abs_scale;
				max_scale = scale;
			}
		}

		if (max_abs_scale < GROUP_MAX_EPS) {
			memset(&y[i], 0, sizeof(y[i]));
			put_f16(y[i].d, 0.f);
			continue;
		}

		float iscale = -128.f / max_scale;

		put_f16(y[i].d, 1 / iscale);
		for (int ib = 0; ib < QK_K / 16; ib++)
			y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));

		for (int j = 0; j < QK_K / 16; j++) {
			float d = get_f16(y[i].d) * y[i].scales[j];

			if (!d)
				continue;
			for (int ii = 0; ii < 16; ii++) {
				int l = nearest_int(x[16 * j + ii] / d);

				L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
			}
		}

		/* per half of 128: ql[l] = element l | element l + 64 << 4,
		 * ql[l + 32] = l + 32 | l + 96 << 4 (low 4 bits); qh[l] the
		 * high 2 bits of l, l + 32, l + 64, l + 96 at bits 0, 2, 4, 6 */
		uint8_t *ql = y[i].ql, *qh = y[i].qh;
		const uint8_t *u = (const uint8_t *)L;

		for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
			for (int l = 0; l < 32; l++) {
				ql[l] = (uint8_t)((u[j + l] & 0xf) | (u[j + l + 64] & 0xf) << 4);
				ql[l + 32] = (uint8_t)((u[j + l + 32] & 0xf) | (u[j + l + 96] & 0xf) << 4);
				qh[l] = (uint8_t)(u[j + l] >> 4 | (u[j + l + 32] >> 4) << 2 |
						  (u[j + l + 64] >> 4) << 4 | (u[j + l + 96] >> 4) << 6);
			}
		}
	}
}

void hf_ggml_dequantize_q6_K(const void *vx, float *y, int64_t n)
{
	const struct blk_q6_K *x = vx;

	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d = get_f16(x[i].d);
		const uint8_t *ql = x[i].ql, *qh = x[i].qh;
		const int8_t *sc = x[i].scales;

		for (int h = 0; h < QK_K; h += 128, y += 128, ql += 64, qh += 32, sc += 8) {
			for (int l = 0; l < 32; l++) {
				int is = l / 16;
				const int8_t q1 = (int8_t)((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32;
				const int8_t q2 = (int8_t)((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32;
				const int8_t q3 = (int8_t)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
				const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;

				y[l] = d * sc[is] * q1;
				y[l + 32] = d * sc[is + 2] * q2;
				y[l + 64] = d * sc[is + 4] * q3;
				y[l + 96] = d * sc[is + 6] * q4;
			}
		}
	}
}
