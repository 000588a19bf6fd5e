/* lib/tensor/matmul_arm.c: AArch64 Advanced SIMD (NEON) kernels for
 * hf_matmul: the decode matrix-vector product and the widening of W
 * panels for the batched product (which OpenBLAS then runs). NEON is
 * part of every AArch64 Linux ABI, so these need no target attribute
 * and no run-time check. f16 widens with fcvtl (vcvt_f32_f16), bf16 by
 * a 16-bit shift left (vshll_n_u16): both exact. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <stdint.h>

#include "tensor/matmul_arm.h"
#include "tensor/matmul_kern.h"

#define INLINE static inline __attribute__((always_inline))

/* 4 weights from element i of w, widened to float. */
INLINE float32x4_t ld4(const void *w, enum hf_dtype wt, size_t i)
{
	const uint16_t *p = (const uint16_t *)w + i;

	if (wt == HF_DTYPE_F32)
		return vld1q_f32((const float *)w + i);
	if (wt == HF_DTYPE_F16)
		return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
	return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

INLINE float ld1(const void *w, enum hf_dtype wt, size_t i)
{
	if (wt == HF_DTYPE_F32)
		return ((const float *)w)[i];
	if (wt == HF_DTYPE_F16)
		return hf_f16_to_f32(((const uint16_t *)w)[i]);
	return hf_bf16_to_f32(((const uint16_t *)w)[i]);
}

/* R rows of W from row r against nt tokens of x: y[t * ldy + r + q].
 * Two accumulators of 4 lanes per (row, token), 8 columns a step: 8
 * partial sums per output, as the AVX2 kernels keep, which bounds the
 * float32 error alike (test/unit/tensor/matmul.c), and two independent
 * FMA chains. R * nt * 2 <= 16 of the 32 vector registers. The columns
 * past the last multiple of 8 go 4 and then 1 at a time. */
INLINE void rows_neon(int R, int nt, float *y, size_t ldy, const float *x,
		      const void *w, enum hf_dtype wt, const float *bias,
		      size_t in, size_t r)
{
	size_t in8 = in & ~(size_t)7, in4 = in & ~(size_t)3;
	float32x4_t a[4][MM_GEMV_NT][2], x0[MM_GEMV_NT], x1[MM_GEMV_NT];
	float s;

#pragma GCC unroll 4
	for (int q = 0; q < R; q++)
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++)
			a[q][t][0] = a[q][t][1] = vdupq_n_f32(0.0f);
	for (size_t i = 0; i < in8; i += 8) {
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++) {
			x0[t] = vld1q_f32(x + t * in + i);
			x1[t] = vld1q_f32(x + t * in + i + 4);
		}
#pragma GCC unroll 4
		for (int q = 0; q < R; q++) {
			size_t o = (r + q) * in + i;
			float32x4_t w0 = ld4(w, wt, o), w1 = ld4(w, wt, o + 4);

#pragma GCC unroll 4
			for (int t = 0; t < nt; t++) {
				a[q][t][0] = vfmaq_f32(a[q][t][0], w0, x0[t]);
				a[q][t][1] = vfmaq_f32(a[q][t][1], w1, x1[t]);
			}
		}
	}
	if (in4 > in8) {
#pragma GCC unroll 4
		for (int q = 0; q < R; q++) {
			float32x4_t w0 = ld4(w, wt, (r + q) * in + in8);

#pragma GCC unroll 4
			for (int t = 0; t < nt; t++)
				a[q][t][0] = vfmaq_f32(a[q][t][0], w0,
					vld1q_f32(x + t * in + in8));
		}
	}
#pragma GCC unroll 4
	for (int q = 0; q < R; q++)
#pragma GCC unroll 4
		for (int t = 0; t < nt; t++) {
			s = vaddvq_f32(vaddq_f32(a[q][t][0], a[q][t][1]));
			for (size_t i = in4; i < in; i++)
				s += ld1(w, wt, (r + q) * in + i) *
				     x[t * in + i];
			y[t * ldy + r + q] = s + (bias ? bias[r + q] : 0.0f);
		}
}

/* Rows four at a time for one or two tokens, two at a time for three
 * or four (the accumulators must stay in registers). */
INLINE void gemv_neon(int nt, float *y, size_t ldy, const float *x,
		      const void *w, enum hf_dtype wt, const float *bias,
		      size_t in, size_t r0, size_t r1)
{
	size_t r = r0;

	if (nt <= 2)
		for (; r + 4 <= r1; r += 4)
			rows_neon(4, nt, y, ldy, x, w, wt, bias, in, r);
	for (; r + 2 <= r1; r += 2)
		rows_neon(2, nt, y, ldy, x, w, wt, bias, in, r);
	for (; r < r1; r++)
		rows_neon(1, nt, y, ldy, x, w, wt, bias, in, r);
}

INLINE void widen_neon(float *dst, const void *w, enum hf_dtype wt,
		       size_t in, size_t r0, size_t rows, size_t k0,
		       size_t kc)
{
	size_t kc4 = kc & ~(size_t)3;

	for (size_t r = 0; r < rows; r++) {
		size_t o = (r0 + r) * in + k0;
		float *d = dst + r * kc;

		for (size_t k = 0; k < kc4; k += 4)
			vst1q_f32(d + k, ld4(w, wt, o + k));
		for (size_t k = kc4; k < kc; k++)
			d[k] = ld1(w, wt, o + k);
	}
}

/* One entry per plain format (the quantized ones: matmul_quant_arm.c);
 * no own GEMM: the batched product widens panels and calls cblas_sgemm
 * (f32: W in place), whose AArch64 kernels are OpenBLAS's. */
#define NEON_ENTRIES(f, DT)						\
static void gemv_neon_##f(float *y, size_t ldy, const float *x,	\
			  size_t nt, const struct hf_weight *w,		\
			  const float *bias, size_t r0, size_t r1)	\
{									\
	const size_t in = w->cols;					\
	switch (nt) {							\
	case 1: gemv_neon(1, y, ldy, x, w->t[0], DT, bias, in, r0, r1); break; \
	case 2: gemv_neon(2, y, ldy, x, w->t[0], DT, bias, in, r0, r1); break; \
	case 3: gemv_neon(3, y, ldy, x, w->t[0], DT, bias, in, r0, r1); break; \
	case 4: gemv_neon(4, y, ldy, x, w->t[0], DT, bias, in, r0, r1); break; \
	}								\
}									\
static void widen_neon_##f(float *dst, const struct hf_weight *w,	\
			   size_t r0, size_t rows, size_t k0, size_t kc) \
{									\
	widen_neon(dst, w->t[0], DT, w->cols, r0, rows, k0, kc);	\
}
NEON_ENTRIES(f32, HF_DTYPE_F32)
NEON_ENTRIES(f16, HF_DTYPE_F16)
NEON_ENTRIES(bf16, HF_DTYPE_BF16)

const struct mm_kern mm_neon[HF_WFMT_COUNT] = {
	[HF_WFMT_F32] = { gemv_neon_f32, widen_neon_f32, NULL },
	[HF_WFMT_F16] = { gemv_neon_f16, widen_neon_f16, NULL },
	[HF_WFMT_BF16] = { gemv_neon_bf16, widen_neon_bf16, NULL },
	/* the quantized formats: matmul_quant_arm.c */
	MMQN_ENTRIES
};

#endif
