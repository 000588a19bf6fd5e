/* lib/tensor/matmul_bf16.c: bf16 compute for hf_matmul_as on CPUs with
 * AVX512_BF16. x arrives rounded to bf16 (matmul.c); W is read in its
 * stored dtype, bf16 as is, f32 and f16 rounded to bf16 by
 * vcvtne2ps2bf16 (nearest even). vdpbf16ps then adds two bf16 products
 * into each f32 lane: the k axis runs in pairs, one pair per 32-bit lane,
 * and otherwise the kernels mirror the f32 ones in matmul_x86.c. Like
 * the instruction, this path treats bf16 subnormals as zero. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <stdint.h>

#include "tensor/matmul_kern.h"
#include "tensor/matmul_x86.h"

#define TBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16," \
				  "fma,f16c")))

/* 32 weights from element i of w as bf16. */
INLINE TBF __m512i ld32(const void *w, enum hf_dtype wt, size_t i)
{
	const uint16_t *p = (const uint16_t *)w + i;

	if (wt == HF_DTYPE_BF16)
		return _mm512_loadu_si512(p);
	if (wt == HF_DTYPE_F32)
		return (__m512i)_mm512_cvtne2ps_pbh(
			_mm512_loadu_ps((const float *)w + i + 16),
			_mm512_loadu_ps((const float *)w + i));
	return (__m512i)_mm512_cvtne2ps_pbh(
		_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 16))),
		_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)));
}

/* The first kn (< 32) of them, zeros after; reads nothing past them. */
INLINE TBF __m512i ld32m(const void *w, enum hf_dtype wt, size_t i,
			 size_t kn)
{
	const uint16_t *p = (const uint16_t *)w + i;
	__mmask32 m = (__mmask32)((1ull << kn) - 1);
	__mmask16 lo = (__mmask16)m, hi = (__mmask16)(m >> 16);

	if (wt == HF_DTYPE_BF16)
		return _mm512_maskz_loadu_epi16(m, p);
	if (wt == HF_DTYPE_F32)
		return (__m512i)_mm512_cvtne2ps_pbh(
			_mm512_maskz_loadu_ps(hi, (const float *)w + i + 16),
			_mm512_maskz_loadu_ps(lo, (const float *)w + i));
	return (__m512i)_mm512_cvtne2ps_pbh(
		_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(hi, p + 16)),
		_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lo, p)));
}

INLINE TBF __m512 dot2(__m512 acc, __m512i a, __m512i b)
{
	return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

/* ---- matrix-vector (decode) ------------------------------------------- */

/* As in matmul_x86.c: prefetch each W row this far ahead. */
#define PFD 12288
#define PF(w, wt, i) _mm_prefetch((const char *)(w) + \
	((i) << ((wt) == HF_DTYPE_F32 ? 2 : 1)) + PFD, _MM_HINT_T0)

/* R (<= 4) rows of W from r against nt (<= MM_GEMV_NT) tokens. */
INLINE TBF void rows_bf(int R, int nt, float *y, size_t ldy,
			const uint16_t *xb, size_t ldx, const void *w,
			enum hf_dtype wt, const float *bias, size_t in,
			size_t r)
{
	size_t in32 = in & ~(size_t)31, kn = in - in32;
	__m512 a[4][MM_GEMV_NT];
	__m512i xv[MM_GEMV_NT];

#pragma GCC unroll 4
	for (int q = 0; q < R; q++)
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			a[q][t] = _mm512_setzero_ps();
	for (size_t i = 0; i < in32; i += 32) {
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			xv[t] = _mm512_loadu_si512(xb + t * ldx + i);
#pragma GCC unroll 4
		for (int q = 0; q < R; q++) {
			size_t o = (r + q) * in + i;
			__m512i wv;

			PF(w, wt, o);
			wv = ld32(w, wt, o);
#pragma GCC unroll 4
			for (int t = 0; t < nt; t++)
				a[q][t] = dot2(a[q][t], wv, xv[t]);
		}
	}
	if (kn) {
		__mmask32 m = (__mmask32)((1ull << kn) - 1);

#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			xv[t] = _mm512_maskz_loadu_epi16(m, xb + t * ldx + in32);
#pragma GCC unroll 4
		for (int q = 0; q < R; q++) {
			__m512i wv = ld32m(w, wt, (r + q) * in + in32, kn);

#pragma GCC unroll 4
			for (int t = 0; t < nt; t++)
				a[q][t] = dot2(a[q][t], wv, xv[t]);
		}
	}
#pragma GCC unroll 4
	for (int q = 0; q < R; q++)
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			y[t * ldy + r + q] = _mm512_reduce_add_ps(a[q][t]) +
					     (bias ? bias[r + q] : 0.0f);
}

INLINE TBF void gemv_bf(int nt, float *y, size_t ldy, const uint16_t *xb,
			size_t ldx, const void *w, enum hf_dtype wt,
			const float *bias, size_t in, size_t r0, size_t r1)
{
	size_t r = r0;

	for (; r + 4 <= r1; r += 4)
		rows_bf(4, nt, y, ldy, xb, ldx, w, wt, bias, in, r);
	for (; r < r1; r++)
		rows_bf(1, nt, y, ldy, xb, ldx, w, wt, bias, in, r);
}

/* ---- GEMM (prompt processing) ----------------------------------------- */

/* Pack W rows [j, j + nr) x columns [k0, k0 + kc) pair-major:
 * wp[p][r] = (W[j + r][k0 + 2p], W[j + r][k0 + 2p + 1]) as one 32-bit
 * lane, r < MM_NR, zero for r >= nr and past kc. Each row's 32 bf16 are
 * 16 pairs, so a 16 x 16 transpose of 32-bit lanes does it. */
INLINE TBF void pack_w(uint32_t *wp, const void *w, enum hf_dtype wt,
		       size_t in, size_t j, size_t nr, size_t k0, size_t kc)
{
	for (size_t g = 0; g < MM_NR; g += 16) {
		for (size_t k = 0; k < kc; k += 32) {
			size_t kn = kc - k < 32 ? kc - k : 32;
			__m512 v[16];

			for (size_t r = 0; r < 16; r++) {
				size_t o = (j + g + r) * in + k0 + k;

				if (g + r >= nr)
					v[r] = _mm512_setzero_ps();
				else if (kn == 32)
					v[r] = (__m512)ld32(w, wt, o);
				else
					v[r] = (__m512)ld32m(w, wt, o, kn);
			}
			transpose16(v);
			for (size_t q = 0; q < (kn + 1) / 2; q++)
				_mm512_store_ps(wp + (k / 2 + q) * MM_NR + g,
						v[q]);
		}
	}
}

/* Pack x rows [t, t + mr) x columns [k0, k0 + kc) of xb pair-major:
 * xp[p][i] = the pair at k0 + 2p of row i, i < MM_MR. */
INLINE TBF void pack_x(uint32_t *xp, const uint16_t *xb, size_t ldx,
		       size_t mr, size_t k0, size_t kc)
{
	const __mmask16 m14 = (1u << MM_MR) - 1;
	size_t kc2 = (kc + 1) / 2;

	for (size_t p = 0; p < kc2; p += 16) {
		size_t pn = kc2 - p < 16 ? kc2 - p : 16;
		__mmask16 m = (__mmask16)((1u << pn) - 1);
		__m512 v[16];

		for (size_t i = 0; i < 16; i++)
			v[i] = i < mr ? _mm512_maskz_loadu_ps(m,
				(const float *)(xb + i * ldx + k0) + p) :
				_mm512_setzero_ps();
		transpose16(v);
		for (size_t q = 0; q < pn; q++)
			_mm512_mask_storeu_ps(xp + (p + q) * MM_MR, m14, v[q]);
	}
}

/* y[i][0..32) += sum_p xp[p][i] . wp[p][0..32) (two products per lane)
 * for the mr (<= MM_MR) rows of a tile; m0, m1 as in matmul_x86.c. */
INLINE TBF void ukern(int mr, size_t kc2, const uint32_t *xp,
		      const uint32_t *wp, float *y, size_t ldy, __mmask16 m0,
		      __mmask16 m1)
{
	__m512 c0[MM_MR], c1[MM_MR];

#pragma GCC unroll 16
	for (int i = 0; i < mr; i++)
		c0[i] = c1[i] = _mm512_setzero_ps();
	for (size_t p = 0; p < kc2; p++) {
		__m512i b0 = _mm512_load_si512(wp + p * MM_NR);
		__m512i b1 = _mm512_load_si512(wp + p * MM_NR + 16);

#pragma GCC unroll 16
		for (int i = 0; i < mr; i++) {
			__m512i a = _mm512_set1_epi32((int)xp[p * MM_MR + i]);

			c0[i] = dot2(c0[i], a, b0);
			c1[i] = dot2(c1[i], a, b1);
		}
	}
#pragma GCC unroll 16
	for (int i = 0; i < mr; i++) {
		float *yr = y + (size_t)i * ldy;

		_mm512_mask_storeu_ps(yr, m0, _mm512_add_ps(c0[i],
				      _mm512_maskz_loadu_ps(m0, yr)));
		_mm512_mask_storeu_ps(yr + 16, m1, _mm512_add_ps(c1[i],
				      _mm512_maskz_loadu_ps(m1, yr + 16)));
	}
}

static TBF void ukern_any(int mr, size_t kc2, const uint32_t *xp,
			  const uint32_t *wp, float *y, size_t ldy,
			  __mmask16 m0, __mmask16 m1)
{
	switch (mr) {
#define MR_CASE(m) case m: ukern(m, kc2, xp, wp, y, ldy, m0, m1); break;
	MR_CASE(1) MR_CASE(2) MR_CASE(3) MR_CASE(4) MR_CASE(5) MR_CASE(6)
	MR_CASE(7) MR_CASE(8) MR_CASE(9) MR_CASE(10) MR_CASE(11)
	MR_CASE(12) MR_CASE(13) MR_CASE(14)
#undef MR_CASE
	}
}

/* The f32 GEMM's loops (matmul_x86.c) over MB_KC slices: scratch holds
 * the packed W block, MB_KC / 2 x MM_NC lanes, then the x tiles. */
INLINE TBF void gemm_bf(float *y, size_t ldy, const uint16_t *xb,
			size_t ldx, const void *w, enum hf_dtype wt, size_t n,
			size_t in, size_t j0, size_t j1, float *scratch)
{
	uint32_t *wp = (uint32_t *)scratch, *xp = wp + MB_KC / 2 * MM_NC;

	for (size_t k0 = 0; k0 < in; k0 += MB_KC) {
		size_t kc = in - k0 < MB_KC ? in - k0 : MB_KC;
		size_t kc2 = (kc + 1) / 2;

		for (size_t t = 0; t < n; t += MM_MR)
			pack_x(xp + t * (MB_KC / 2), xb + t * ldx, ldx,
			       n - t < MM_MR ? n - t : MM_MR, k0, kc);
		for (size_t jc = j0; jc < j1; jc += MM_NC) {
			size_t nc = j1 - jc < MM_NC ? j1 - jc : MM_NC;

			for (size_t p = 0; p < nc; p += MM_NR)
				pack_w(wp + p * (MB_KC / 2), w, wt, in, jc + p,
				       nc - p < MM_NR ? nc - p : MM_NR, k0, kc);
			for (size_t t = 0; t < n; t += MM_MR) {
				int mr = n - t < MM_MR ? (int)(n - t) : MM_MR;

				for (size_t p = 0; p < nc; p += MM_NR) {
					size_t nr = nc - p < MM_NR ? nc - p : MM_NR;
					__mmask16 m0 = nr >= 16 ? 0xffff :
						(__mmask16)((1u << nr) - 1);
					__mmask16 m1 = nr >= 32 ? 0xffff :
						nr <= 16 ? 0 :
						(__mmask16)((1u << (nr - 16)) - 1);

					ukern_any(mr, kc2, xp + t * (MB_KC / 2),
						  wp + p * (MB_KC / 2),
						  y + t * ldy + jc + p, ldy,
						  m0, m1);
				}
			}
		}
	}
}

#define BF_ENTRIES(f, DT)						\
static TBF void gemv_bf_##f(float *y, size_t ldy, const uint16_t *xb,	\
			    size_t ldx, size_t nt,			\
			    const struct hf_weight *w, const float *bias, \
			    size_t r0, size_t r1)			\
{									\
	const size_t in = w->cols;					\
	switch (nt) {							\
	case 1: gemv_bf(1, y, ldy, xb, ldx, w->t[0], DT, bias, in, r0, r1); break; \
	case 2: gemv_bf(2, y, ldy, xb, ldx, w->t[0], DT, bias, in, r0, r1); break; \
	case 3: gemv_bf(3, y, ldy, xb, ldx, w->t[0], DT, bias, in, r0, r1); break; \
	case 4: gemv_bf(4, y, ldy, xb, ldx, w->t[0], DT, bias, in, r0, r1); break; \
	}								\
}									\
static TBF void gemm_bf_##f(float *y, size_t ldy, const uint16_t *xb,	\
			    size_t ldx, const struct hf_weight *w,	\
			    size_t n, size_t j0, size_t j1,		\
			    float *scratch)				\
{									\
	gemm_bf(y, ldy, xb, ldx, w->t[0], DT, n, w->cols, j0, j1,	\
		scratch);						\
}
BF_ENTRIES(f32, HF_DTYPE_F32)
BF_ENTRIES(f16, HF_DTYPE_F16)
BF_ENTRIES(bf16, HF_DTYPE_BF16)

const struct mm_bf16_kern mm_avx512bf16[HF_WFMT_COUNT] = {
	[HF_WFMT_F32] = { gemv_bf_f32, gemm_bf_f32 },
	[HF_WFMT_F16] = { gemv_bf_f16, gemm_bf_f16 },
	[HF_WFMT_BF16] = { gemv_bf_bf16, gemm_bf_bf16 },
};

#endif
