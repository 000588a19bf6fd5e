/* lib/tensor/matmul_x86.c: AVX2 and AVX-512 kernels for hf_matmul.
 * Each function carries its own target attribute (no global -march), and
 * matmul.c picks a set once with hf_cpu_has(). f16 widens with
 * F16C (vcvtph2ps), bf16 by a 16-bit shift left: both exact. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>
#include <string.h>

#include "tensor/matmul_kern.h"
#include "tensor/matmul_x86.h"

/* ---- AVX-512 ---------------------------------------------------------- */

/* 16 weights from element i of w, widened to float. */
INLINE T512 __m512 ld16(const void *w, enum hf_dtype wt, size_t i)
{
	const __m256i *p = (const __m256i *)((const uint16_t *)w + i);

	if (wt == HF_DTYPE_F32)
		return _mm512_loadu_ps((const float *)w + i);
	if (wt == HF_DTYPE_F16)
		return _mm512_cvtph_ps(_mm256_loadu_si256(p));
	return _mm512_castsi512_ps(_mm512_slli_epi32(
		_mm512_cvtepu16_epi32(_mm256_loadu_si256(p)), 16));
}

/* The same for the lanes set in m, zero elsewhere; reads nothing past
 * the last set lane. */
INLINE T512 __m512 ld16m(const void *w, enum hf_dtype wt, size_t i,
			 __mmask16 m)
{
	const uint16_t *p = (const uint16_t *)w + i;

	if (wt == HF_DTYPE_F32)
		return _mm512_maskz_loadu_ps(m, (const float *)w + i);
	if (wt == HF_DTYPE_F16)
		return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
	return _mm512_castsi512_ps(_mm512_slli_epi32(
		_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

/* bf16 compute (hf_matmul_as with HF_DTYPE_BF16) on the FMA units: on
 * the Sapphire Rapids we measured, vdpbf16ps (matmul_bf16.c) issues at a
 * quarter of the FMA rate, half the flops, so the f32 kernels below also
 * take x as bf16 rows (widened exactly) and round W to bf16 as they
 * load it: with bf != 0, x is bf16 with rows ldx apart and W loads go
 * through rnd16. Products of bf16 values are exact in f32, so this
 * computes what vdpbf16ps does, up to the order of the sums. */

/* f32 lanes rounded to bf16, nearest even, and widened back: what
 * hf_f32_to_bf16 does (NaN to the quiet 0x7fc0), lane by lane. */
INLINE T512 __m512 rnd16(__m512 v)
{
	__m512i u = _mm512_castps_si512(v);
	__m512i r = _mm512_add_epi32(u, _mm512_add_epi32(
		_mm512_set1_epi32(0x7fff),
		_mm512_and_si512(_mm512_srli_epi32(u, 16),
				 _mm512_set1_epi32(1))));
	__mmask16 nan = _mm512_cmpgt_epu32_mask(
		_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
		_mm512_set1_epi32(0x7f800000));

	r = _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32(0x7fc00000));
	return _mm512_castsi512_ps(_mm512_and_si512(r,
				   _mm512_set1_epi32((int)0xffff0000)));
}

/* ld16 and ld16m for W, rounded to bf16 when bf. */
INLINE T512 __m512 ldw(const void *w, enum hf_dtype wt, size_t i, int bf)
{
	__m512 v = ld16(w, wt, i);

	return bf && wt != HF_DTYPE_BF16 ? rnd16(v) : v;
}

INLINE T512 __m512 ldwm(const void *w, enum hf_dtype wt, size_t i,
			__mmask16 m, int bf)
{
	__m512 v = ld16m(w, wt, i, m);

	return bf && wt != HF_DTYPE_BF16 ? rnd16(v) : v;
}

/* x: float32, or bf16 when bf */
#define XT(bf) ((bf) ? HF_DTYPE_BF16 : HF_DTYPE_F32)

/* Software prefetch distance for the matrix-vector kernels, in bytes
 * ahead of each row: rows are short (1-16 KiB) and four are read at once,
 * which the hardware prefetcher follows poorly. Measured on the 0.5B
 * shape, bf16, 1 thread (mmbench, ms per token): none 96.7, 1 KiB 91.9,
 * 4 KiB 71.6, 8 KiB 71.6, 12 KiB 69.0, 16 KiB 69.4. */
#define PFD 12288
#define PF(w, wt, i) _mm_prefetch((const char *)(w) + \
	((i) << ((wt) == HF_DTYPE_F32 ? 2 : 1)) + PFD, _MM_HINT_T0)

/* R (<= 4) rows of W starting at r against nt (<= MM_GEMV_NT) tokens:
 * each W load feeds nt FMAs and each x load R. */
INLINE T512 void rows512(int R, int nt, int bf, float *y, size_t ldy,
			 const void *x, size_t ldx, const void *w,
			 enum hf_dtype wt, const float *bias, size_t in,
			 size_t r)
{
	size_t in16 = in & ~(size_t)15;
	__mmask16 mt = (__mmask16)((1u << (in & 15)) - 1);
	__m512 a[4][MM_GEMV_NT], xv[MM_GEMV_NT];

#pragma GCC unroll 4
	for (int q = 0; q < R; q++)
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			a[q][t] = _mm512_setzero_ps();
	for (size_t i = 0; i < in16; i += 16) {
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			xv[t] = ld16(x, XT(bf), t * ldx + i);
#pragma GCC unroll 4
		for (int q = 0; q < R; q++) {
			size_t o = (r + q) * in + i;
			__m512 wv;

			PF(w, wt, o);
			wv = ldw(w, wt, o, bf);
#pragma GCC unroll 4
			for (int t = 0; t < nt; t++)
				a[q][t] = _mm512_fmadd_ps(wv, xv[t], a[q][t]);
		}
	}
	if (mt) {
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			xv[t] = ld16m(x, XT(bf), t * ldx + in16, mt);
#pragma GCC unroll 4
		for (int q = 0; q < R; q++) {
			__m512 wv = ldwm(w, wt, (r + q) * in + in16, mt, bf);

#pragma GCC unroll 4
			for (int t = 0; t < nt; t++)
				a[q][t] = _mm512_fmadd_ps(wv, xv[t], a[q][t]);
		}
	}
#pragma GCC unroll 4
	for (int q = 0; q < R; q++)
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			y[t * ldy + r + q] = _mm512_reduce_add_ps(a[q][t]) +
					     (bias ? bias[r + q] : 0.0f);
}

/* Four rows per pass; the rows of a thread's share are contiguous, so W
 * streams through once, in order, for all nt tokens. */
INLINE T512 void gemv512(int nt, int bf, float *y, size_t ldy,
			 const void *x, size_t ldx, const void *w,
			 enum hf_dtype wt, const float *bias, size_t in,
			 size_t r0, size_t r1)
{
	size_t r = r0;

	for (; r + 4 <= r1; r += 4)
		rows512(4, nt, bf, y, ldy, x, ldx, w, wt, bias, in, r);
	for (; r < r1; r++)
		rows512(1, nt, bf, y, ldy, x, ldx, w, wt, bias, in, r);
}

INLINE T512 void widen512(float *dst, const void *w, enum hf_dtype wt,
			  size_t in, size_t r0, size_t rows, size_t k0,
			  size_t kc)
{
	size_t kc16 = kc & ~(size_t)15;
	__mmask16 mt = (__mmask16)((1u << (kc & 15)) - 1);

	for (size_t r = 0; r < rows; r++) {
		size_t o = (r0 + r) * in + k0;
		float *d = dst + r * kc;

		for (size_t k = 0; k < kc16; k += 16)
			_mm512_storeu_ps(d + k, ld16(w, wt, o + k));
		if (mt)
			_mm512_mask_storeu_ps(d + kc16, mt,
					      ld16m(w, wt, o + kc16, mt));
	}
}

/* Pack W rows [j, j + nr) x columns [k0, k0 + kc) k-major:
 * wp[k][r] = W[j + r][k0 + k], r < MM_NR, zero for r >= nr. */
INLINE T512 void pack_w(float *wp, const void *w, enum hf_dtype wt, int bf,
			size_t in, size_t j, size_t nr, size_t k0, size_t kc)
{
	for (size_t g = 0; g < MM_NR; g += 16) {
		for (size_t k = 0; k < kc; k += 16) {
			size_t kn = kc - k < 16 ? kc - k : 16;
			__mmask16 m = (__mmask16)((1u << kn) - 1);
			__m512 v[16];

			for (size_t r = 0; r < 16; r++) {
				size_t o = (j + g + r) * in + k0 + k;

				if (g + r >= nr)
					v[r] = _mm512_setzero_ps();
				else if (kn == 16)
					v[r] = ldw(w, wt, o, bf);
				else
					v[r] = ldwm(w, wt, o, m, bf);
			}
			transpose16(v);
			for (size_t q = 0; q < kn; q++)
				_mm512_store_ps(wp + (k + q) * MM_NR + g, v[q]);
		}
	}
}

/* Pack x rows [t, t + mr) x columns [k0, k0 + kc): xp[k][i] = x[t+i][k0+k],
 * i < MM_MR; lanes past mr hold zeros (the kernel never reads them).
 * 16 x 16 blocks through transpose16, as for W. x: rows ldx apart,
 * float32, or bf16 when bf. */
INLINE T512 void pack_x(float *xp, const void *x, int bf, size_t ldx,
			size_t t, size_t mr, size_t k0, size_t kc)
{
	const __mmask16 m14 = (1u << MM_MR) - 1;

	for (size_t k = 0; k < kc; k += 16) {
		size_t kn = kc - k < 16 ? kc - k : 16;
		__mmask16 m = (__mmask16)((1u << kn) - 1);
		__m512 v[16];

		for (size_t i = 0; i < 16; i++)
			v[i] = i < mr ? ld16m(x, XT(bf), (t + i) * ldx + k0 + k,
					      m) : _mm512_setzero_ps();
		transpose16(v);
		for (size_t q = 0; q < kn; q++)
			_mm512_mask_storeu_ps(xp + (k + q) * MM_MR, m14, v[q]);
	}
}

/* The micro-kernel: y[i][0..32) += sum_k xp[k][i] * wp[k][0..32) for the
 * mr (<= MM_MR) rows of one tile; 2 * mr accumulators (28 of the 32 zmm).
 * m0, m1: the valid columns of each half. */
INLINE T512 void ukern(int mr, size_t kc, const float *xp, const float *wp,
		       float *y, size_t ldy, __mmask16 m0, __mmask16 m1)
{
	__m512 c0[MM_MR], c1[MM_MR];

#pragma GCC unroll 16
	for (int i = 0; i < mr; i++)
		c0[i] = c1[i] = _mm512_setzero_ps();
	for (size_t k = 0; k < kc; k++) {
		__m512 b0 = _mm512_load_ps(wp + k * MM_NR);
		__m512 b1 = _mm512_load_ps(wp + k * MM_NR + 16);

#pragma GCC unroll 16
		for (int i = 0; i < mr; i++) {
			__m512 a = _mm512_set1_ps(xp[k * MM_MR + i]);

			c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
			c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
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

static T512 void ukern_any(int mr, size_t kc, const float *xp,
			   const float *wp, float *y, size_t ldy,
			   __mmask16 m0, __mmask16 m1)
{
	switch (mr) {
#define MR_CASE(m) case m: ukern(m, kc, xp, wp, y, ldy, m0, m1); break;
	MR_CASE(1) MR_CASE(2) MR_CASE(3) MR_CASE(4) MR_CASE(5) MR_CASE(6)
	MR_CASE(7) MR_CASE(8) MR_CASE(9) MR_CASE(10) MR_CASE(11)
	MR_CASE(12) MR_CASE(13) MR_CASE(14)
#undef MR_CASE
	}
}

/* Blocked as in BLIS (see matmul_kern.h). Keeping the x tile in L1 and
 * streaming the W panels from L2, rather than one W panel in L1 and the
 * x tiles streaming, took one thread from 116-138 to 140-146 GFLOP/s on
 * the 0.5B and 1B shapes (n 512; peak 173 measured with a register-only
 * FMA loop). scratch holds the W block (MM_KC x MM_NC) then the x tiles
 * (ceil(n / MM_MR) of MM_KC x MM_MR). */
INLINE T512 void gemm512(int bf, float *y, size_t ldy, const void *x,
			 size_t ldx, const void *w, enum hf_dtype wt, size_t n,
			 size_t in, size_t j0, size_t j1, float *scratch)
{
	float *wp = scratch, *xp = scratch + MM_KC * MM_NC;
	/* equal slices of at most MM_KC, in 16s: no short tail slice */
	size_t ns = (in + MM_KC - 1) / MM_KC;
	size_t ks = ((in + ns - 1) / ns + 15) & ~(size_t)15;

	for (size_t k0 = 0; k0 < in; k0 += ks) {
		size_t kc = in - k0 < ks ? in - k0 : ks;

		for (size_t t = 0; t < n; t += MM_MR)
			pack_x(xp + t * MM_KC, x, bf, ldx, t,
			       n - t < MM_MR ? n - t : MM_MR, k0, kc);
		for (size_t jc = j0; jc < j1; jc += MM_NC) {
			size_t nc = j1 - jc < MM_NC ? j1 - jc : MM_NC;

			for (size_t p = 0; p < nc; p += MM_NR)
				pack_w(wp + p * MM_KC, w, wt, bf, in, jc + p,
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

					ukern_any(mr, kc, xp + t * MM_KC,
						  wp + p * MM_KC,
						  y + t * ldy + jc + p, ldy,
						  m0, m1);
				}
			}
		}
	}
}

/* One set of entries per plain format, the dtype folded into each. */
#define AVX512_ENTRIES(f, DT)						\
static T512 void gemv512_##f(float *y, size_t ldy, const float *x,	\
			     size_t nt, const struct hf_weight *w,	\
			     const float *bias, size_t r0, size_t r1)	\
{									\
	const size_t in = w->cols;					\
	switch (nt) {							\
	case 1: gemv512(1, 0, y, ldy, x, in, w->t[0], DT, bias, in, r0, r1); break; \
	case 2: gemv512(2, 0, y, ldy, x, in, w->t[0], DT, bias, in, r0, r1); break; \
	case 3: gemv512(3, 0, y, ldy, x, in, w->t[0], DT, bias, in, r0, r1); break; \
	case 4: gemv512(4, 0, y, ldy, x, in, w->t[0], DT, bias, in, r0, r1); break; \
	}								\
}									\
static T512 void gemv512_bf16_##f(float *y, size_t ldy,		\
				  const uint16_t *xb, size_t ldx,	\
				  size_t nt, const struct hf_weight *w,	\
				  const float *bias, size_t r0,		\
				  size_t r1)				\
{									\
	const size_t in = w->cols;					\
	switch (nt) {							\
	case 1: gemv512(1, 1, y, ldy, xb, ldx, w->t[0], DT, bias, in, r0, r1); break; \
	case 2: gemv512(2, 1, y, ldy, xb, ldx, w->t[0], DT, bias, in, r0, r1); break; \
	case 3: gemv512(3, 1, y, ldy, xb, ldx, w->t[0], DT, bias, in, r0, r1); break; \
	case 4: gemv512(4, 1, y, ldy, xb, ldx, w->t[0], DT, bias, in, r0, r1); break; \
	}								\
}									\
static T512 void widen512_##f(float *dst, const struct hf_weight *w,	\
			      size_t r0, size_t rows, size_t k0,	\
			      size_t kc)				\
{									\
	widen512(dst, w->t[0], DT, w->cols, r0, rows, k0, kc);		\
}									\
static T512 void gemm512_##f(float *y, size_t ldy, const float *x,	\
			     const struct hf_weight *w, size_t n,	\
			     size_t j0, size_t j1, float *scratch)	\
{									\
	gemm512(0, y, ldy, x, w->cols, w->t[0], DT, n, w->cols, j0, j1,	\
		scratch);						\
}									\
static T512 void gemm512_bf16_##f(float *y, size_t ldy,		\
				  const uint16_t *xb, size_t ldx,	\
				  const struct hf_weight *w, size_t n,	\
				  size_t j0, size_t j1, float *scratch)	\
{									\
	gemm512(1, y, ldy, xb, ldx, w->t[0], DT, n, w->cols, j0, j1,	\
		scratch);						\
}
AVX512_ENTRIES(f32, HF_DTYPE_F32)
AVX512_ENTRIES(f16, HF_DTYPE_F16)
AVX512_ENTRIES(bf16, HF_DTYPE_BF16)

const struct mm_kern mm_avx512[HF_WFMT_COUNT] = {
	[HF_WFMT_F32] = { gemv512_f32, widen512_f32, gemm512_f32 },
	[HF_WFMT_F16] = { gemv512_f16, widen512_f16, gemm512_f16 },
	[HF_WFMT_BF16] = { gemv512_bf16, widen512_bf16, gemm512_bf16 },
	MMQ_ENTRIES_ALL(mmq_gemv_int8_512, mmq_gemv_bnb4_512,
			mmq_gemv_gptq_512, mmq_gemv_awq_512, mmq_gemv_fp8_512,
			mmq_widen_fp8_512, mmq_gemv_bitnet_512)
};

/* bf16 compute on the FMA units: the default for bf16 compute wherever
 * AVX-512 runs (see rnd16). */
const struct mm_bf16_kern mm_avx512_bf16[HF_WFMT_COUNT] = {
	[HF_WFMT_F32] = { gemv512_bf16_f32, gemm512_bf16_f32 },
	[HF_WFMT_F16] = { gemv512_bf16_f16, gemm512_bf16_f16 },
	[HF_WFMT_BF16] = { gemv512_bf16_bf16, gemm512_bf16_bf16 },
};

/* ---- AVX2 ------------------------------------------------------------- */

INLINE T256 __m256 ld8(const void *w, enum hf_dtype wt, size_t i)
{
	const __m128i *p = (const __m128i *)((const uint16_t *)w + i);

	if (wt == HF_DTYPE_F32)
		return _mm256_loadu_ps((const float *)w + i);
	if (wt == HF_DTYPE_F16)
		return _mm256_cvtph_ps(_mm_loadu_si128(p));
	return _mm256_castsi256_ps(_mm256_slli_epi32(
		_mm256_cvtepu16_epi32(_mm_loadu_si128(p)), 16));
}

INLINE T256 float ld1(const void *w, enum hf_dtype wt, size_t i)
{
	uint32_t u;
	float f;

	if (wt == HF_DTYPE_F32)
		return ((const float *)w)[i];
	if (wt == HF_DTYPE_F16)
		return _cvtsh_ss(((const uint16_t *)w)[i]);
	u = (uint32_t)((const uint16_t *)w)[i] << 16;
	memcpy(&f, &u, 4);
	return f;
}

INLINE T256 void rows256(int R, int nt, float *y, size_t ldy, const float *x,
			 const void *w, enum hf_dtype wt, const float *bias,
			 size_t in, size_t r)
{
	size_t in8 = in & ~(size_t)7;
	__m256 a[4][MM_GEMV_NT], xv[MM_GEMV_NT];
	float s[4][MM_GEMV_NT];

#pragma GCC unroll 4
	for (int q = 0; q < R; q++)
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			a[q][t] = _mm256_setzero_ps();
	for (size_t i = 0; i < in8; i += 8) {
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			xv[t] = _mm256_loadu_ps(x + t * in + i);
#pragma GCC unroll 4
		for (int q = 0; q < R; q++) {
			size_t o = (r + q) * in + i;
			__m256 wv;

			PF(w, wt, o);
			wv = ld8(w, wt, o);
#pragma GCC unroll 4
			for (int t = 0; t < nt; t++)
				a[q][t] = _mm256_fmadd_ps(wv, xv[t], a[q][t]);
		}
	}
#pragma GCC unroll 4
	for (int q = 0; q < R; q++)
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++) {
			s[q][t] = hsum8(a[q][t]);
			for (size_t i = in8; i < in; i++)
				s[q][t] += ld1(w, wt, (r + q) * in + i) *
					   x[t * in + i];
			y[t * ldy + r + q] = s[q][t] +
					     (bias ? bias[r + q] : 0.0f);
		}
}

INLINE T256 void gemv256(int nt, float *y, size_t ldy, const float *x,
			 const void *w, enum hf_dtype wt, const float *bias,
			 size_t in, size_t r0, size_t r1)
{
	size_t r = r0;

	for (; r + 4 <= r1; r += 4)
		rows256(4, nt, y, ldy, x, w, wt, bias, in, r);
	for (; r < r1; r++)
		rows256(1, nt, y, ldy, x, w, wt, bias, in, r);
}

INLINE T256 void widen256(float *dst, const void *w, enum hf_dtype wt,
			  size_t in, size_t r0, size_t rows, size_t k0,
			  size_t kc)
{
	size_t kc8 = kc & ~(size_t)7;

	for (size_t r = 0; r < rows; r++) {
		size_t o = (r0 + r) * in + k0;
		float *d = dst + r * kc;

		for (size_t k = 0; k < kc8; k += 8)
			_mm256_storeu_ps(d + k, ld8(w, wt, o + k));
		for (size_t k = kc8; k < kc; k++)
			d[k] = ld1(w, wt, o + k);
	}
}

/* AVX2 GEMM: the AVX-512 scheme at half width, 6 tokens x 16 W rows per
 * tile (12 ymm accumulators of 16). */
#define A2_NR 16
#define A2_MR 6
/* Its slice of the inner dimension: the W panel (16 x 256 floats,
 * 16 KiB) stays in a 32 KiB L1 with an x tile. Within mm_gemm_scratch. */
#define A2_KC 256

/* wp[k][r] = W[j + r][k0 + k] for r < A2_NR, zero for r >= nr: rows are
 * widened 8 at a time and written down the columns of wp. */
INLINE T256 void pack_w256(float *wp, const void *w, enum hf_dtype wt,
			   size_t in, size_t j, size_t nr, size_t k0,
			   size_t kc)
{
	size_t kc8 = kc & ~(size_t)7;

	for (size_t r = 0; r < A2_NR; r++) {
		size_t o = (j + r) * in + k0;
		float t[8];

		if (r >= nr) {
			for (size_t k = 0; k < kc; k++)
				wp[k * A2_NR + r] = 0.0f;
			continue;
		}
		for (size_t k = 0; k < kc8; k += 8) {
			_mm256_storeu_ps(t, ld8(w, wt, o + k));
			for (int q = 0; q < 8; q++)
				wp[(k + q) * A2_NR + r] = t[q];
		}
		for (size_t k = kc8; k < kc; k++)
			wp[k * A2_NR + r] = ld1(w, wt, o + k);
	}
}

static void pack_x256(float *xp, const float *x, size_t in, size_t mr,
		      size_t k0, size_t kc)
{
	for (size_t i = 0; i < mr; i++) {
		const float *xr = x + i * in + k0;

		for (size_t k = 0; k < kc; k++)
			xp[k * A2_MR + i] = xr[k];
	}
}

/* y[i][0..16) += sum_k xp[k][i] * wp[k][0..16), i < mr; m0, m1: lane
 * masks (all ones or zero per lane) of the valid columns of each half. */
INLINE T256 void ukern256(int mr, size_t kc, const float *xp,
			  const float *wp, float *y, size_t ldy, __m256i m0,
			  __m256i m1)
{
	__m256 c0[A2_MR], c1[A2_MR];

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
		c0[i] = c1[i] = _mm256_setzero_ps();
	for (size_t k = 0; k < kc; k++) {
		__m256 b0 = _mm256_load_ps(wp + k * A2_NR);
		__m256 b1 = _mm256_load_ps(wp + k * A2_NR + 8);

#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			__m256 a = _mm256_broadcast_ss(xp + k * A2_MR + i);

			c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
			c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++) {
		float *yr = y + (size_t)i * ldy;

		_mm256_maskstore_ps(yr, m0, _mm256_add_ps(c0[i],
				    _mm256_maskload_ps(yr, m0)));
		_mm256_maskstore_ps(yr + 8, m1, _mm256_add_ps(c1[i],
				    _mm256_maskload_ps(yr + 8, m1)));
	}
}

static T256 void ukern256_any(int mr, size_t kc, const float *xp,
			      const float *wp, float *y, size_t ldy,
			      __m256i m0, __m256i m1)
{
	switch (mr) {
#define MR_CASE(m) case m: ukern256(m, kc, xp, wp, y, ldy, m0, m1); break;
	MR_CASE(1) MR_CASE(2) MR_CASE(3) MR_CASE(4) MR_CASE(5) MR_CASE(6)
#undef MR_CASE
	}
}

/* Lanes [0, n) of 8 set, n clamped to [0, 8]. */
INLINE T256 __m256i lanes(long n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 :
				  n > 8 ? 8 : n)),
				  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

INLINE T256 void gemm256(float *y, size_t ldy, const float *x,
			 const void *w, enum hf_dtype wt, size_t n, size_t in,
			 size_t j0, size_t j1, float *scratch)
{
	float *wp = scratch, *xp = scratch + A2_KC * MM_NR;

	for (size_t k0 = 0; k0 < in; k0 += A2_KC) {
		size_t kc = in - k0 < A2_KC ? in - k0 : A2_KC;

		for (size_t t = 0; t < n; t += A2_MR)
			pack_x256(xp + t * A2_KC, x + t * in, in,
				  n - t < A2_MR ? n - t : A2_MR, k0, kc);
		for (size_t j = j0; j < j1; j += A2_NR) {
			size_t nr = j1 - j < A2_NR ? j1 - j : A2_NR;
			__m256i m0 = lanes((long)nr), m1 = lanes((long)nr - 8);

			pack_w256(wp, w, wt, in, j, nr, k0, kc);
			for (size_t t = 0; t < n; t += A2_MR)
				ukern256_any(n - t < A2_MR ? (int)(n - t) :
					     A2_MR, kc, xp + t * A2_KC, wp,
					     y + t * ldy + j, ldy, m0, m1);
		}
	}
}

#define AVX2_ENTRIES(f, DT)						\
static T256 void gemv256_##f(float *y, size_t ldy, const float *x,	\
			     size_t nt, const struct hf_weight *w,	\
			     const float *bias, size_t r0, size_t r1)	\
{									\
	const size_t in = w->cols;					\
	switch (nt) {							\
	case 1: gemv256(1, y, ldy, x, w->t[0], DT, bias, in, r0, r1); break; \
	case 2: gemv256(2, y, ldy, x, w->t[0], DT, bias, in, r0, r1); break; \
	case 3: gemv256(3, y, ldy, x, w->t[0], DT, bias, in, r0, r1); break; \
	case 4: gemv256(4, y, ldy, x, w->t[0], DT, bias, in, r0, r1); break; \
	}								\
}									\
static T256 void widen256_##f(float *dst, const struct hf_weight *w,	\
			      size_t r0, size_t rows, size_t k0,	\
			      size_t kc)				\
{									\
	widen256(dst, w->t[0], DT, w->cols, r0, rows, k0, kc);		\
}									\
static T256 void gemm256_##f(float *y, size_t ldy, const float *x,	\
			     const struct hf_weight *w, size_t n,	\
			     size_t j0, size_t j1, float *scratch)	\
{									\
	gemm256(y, ldy, x, w->t[0], DT, n, w->cols, j0, j1, scratch);	\
}
AVX2_ENTRIES(f32, HF_DTYPE_F32)
AVX2_ENTRIES(f16, HF_DTYPE_F16)
AVX2_ENTRIES(bf16, HF_DTYPE_BF16)

const struct mm_kern mm_avx2[HF_WFMT_COUNT] = {
	[HF_WFMT_F32] = { gemv256_f32, widen256_f32, gemm256_f32 },
	[HF_WFMT_F16] = { gemv256_f16, widen256_f16, gemm256_f16 },
	[HF_WFMT_BF16] = { gemv256_bf16, widen256_bf16, gemm256_bf16 },
	MMQ_ENTRIES(mmq_gemv_int8, mmq_gemv_bnb4, mmq_gemv_gptq)
};

#endif
