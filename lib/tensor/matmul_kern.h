/* lib/tensor/matmul_kern.h: the kernels behind hf_matmul, one set per
 * instruction set (matmul.c: portable C; matmul_x86.c: AVX2, AVX-512;
 * matmul_arm.c: NEON).
 * Internal to lib/tensor. */
#ifndef HF_TENSOR_MATMUL_KERN_H
#define HF_TENSOR_MATMUL_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/dtype.h"
#include "tensor/wfmt.h"

/* The kernels of one weight format on one instruction set: a row of
 * the per-ISA tables below, indexed by enum hf_wfmt. W is w (rows, cols)
 * = (out, in); an ISA without an entry for a format (gemv NULL) runs
 * that format on the portable kernels, so a new format needs only its
 * traits (wfmt.c) to work everywhere, and one entry per ISA to be fast.
 *
 * Decode, nt <= MM_GEMV_NT tokens at once, W read once:
 * y[t * ldy + r] = x[t] . W[r] (+ bias[r]) for t < nt, r in [r0, r1).
 * x: (nt, in); bias: (out), indexed by r. */
#define MM_GEMV_NT 4
typedef void (*mm_gemv_fn)(float *y, size_t ldy, const float *x, size_t nt,
			   const struct hf_weight *w, const float *bias,
			   size_t r0, size_t r1);

/* Widen rows [r0, r0 + rows) x columns [k0, k0 + kc) of W into dst,
 * row-major (rows, kc): dst[r][k] = W[r0 + r][k0 + k]. */
typedef void (*mm_widen_fn)(float *dst, const struct hf_weight *w,
			    size_t r0, size_t rows, size_t k0, size_t kc);

/* Batched product for the columns [j0, j1) of y (n rows, ldy apart);
 * y must already hold the bias (or zeros): the kernel adds x . W^T into
 * it. j0 is a multiple of MM_NR. scratch: mm_gemm_scratch(n) floats,
 * 64-byte aligned. */
typedef void (*mm_gemm_fn)(float *y, size_t ldy, const float *x,
			   const struct hf_weight *w, size_t n, size_t j0,
			   size_t j1, float *scratch);

/* GEMM blocking (AVX-512; AVX2 uses half of NR and MR), after BLIS: for
 * each slice of at most MM_KC of the inner dimension (AVX-512 cuts it
 * in equal slices), x is packed k-major in tiles of MM_MR tokens, and W
 * in panels of MM_NR rows, MM_NC rows at a time (MM_NC * MM_KC floats,
 * 512 KiB: stays in the 2 MiB L2); each x tile (28 KiB, in the 48 KiB
 * L1) then runs past all the panels of the block. Against 256 x 512
 * (KC x NC), 512 x 256 halves the passes over y and reads each W row in
 * longer runs when packing: 1B shapes, n 256, 1 and 2 threads, 137 ->
 * 144 GFLOP per CPU second per thread. -D MM_KC=.. -D MM_NC=.. override
 * them, to try others. */
#define MM_NR 32
#define MM_MR 14
#ifndef MM_KC
#define MM_KC 512
#endif
#ifndef MM_NC
#define MM_NC 256
#endif

/* The packed W block, then the packed x tiles (n rounded up to the
 * largest tile, MM_MR). */
static inline size_t mm_gemm_scratch(size_t n)
{
	return MM_KC * MM_NC + (n + MM_MR) * MM_KC;
}

struct mm_kern {
	mm_gemv_fn gemv;	/* NULL: no entry, the portable one runs */
	mm_widen_fn widen;
	mm_gemm_fn gemm;	/* NULL: widen panels and call cblas_sgemm */
};

/* bf16 compute (hf_matmul_as with HF_DTYPE_BF16): x comes already
 * rounded, xb (n, ldx) bf16, ldx even, xb[t][in, ldx) zero. W is read as
 * stored: bf16 as is, f32 and f16 rounded to bf16 (nearest even) on the
 * way. Two sets: the AVX-512 f32 kernels on these operands
 * (matmul_x86.c), and AVX512_BF16's vdpbf16ps, two bf16 products per f32
 * lane (matmul_bf16.c). The scratch is mm_gemm_bf16_scratch(n) floats. */
typedef void (*mm_gemv_bf16_fn)(float *y, size_t ldy, const uint16_t *xb,
				size_t ldx, size_t nt,
				const struct hf_weight *w, const float *bias,
				size_t r0, size_t r1);
typedef void (*mm_gemm_bf16_fn)(float *y, size_t ldy, const uint16_t *xb,
				size_t ldx, const struct hf_weight *w,
				size_t n, size_t j0, size_t j1,
				float *scratch);

/* The vdpbf16ps GEMM blocks as the f32 one, with k counted in bf16 pairs
 * (one 32-bit lane): MB_KC elements of the inner dimension per slice
 * keep the W block (MB_KC / 2 x MM_NC lanes, 512 KiB) and an x tile
 * (14 KiB) at the f32 footprint. */
#define MB_KC 512

static inline size_t mm_gemm_bf16_scratch(size_t n)
{
	size_t a = MB_KC / 2 * MM_NC + (n + MM_MR) * (MB_KC / 2);

	return a > mm_gemm_scratch(n) ? a : mm_gemm_scratch(n);
}

struct mm_bf16_kern {
	mm_gemv_bf16_fn gemv;	/* NULL: no entry for this format */
	mm_gemm_bf16_fn gemm;
};

/* The quantized formats' AVX2 kernels (matmul_quant_x86.c), every one of
 * them, in both the
 * AVX2 and the AVX-512 tables; int8, bitsandbytes 4-bit and GPTQ decode
 * have their own AVX-512 kernels (4-bit: one permute per 16 weights). */
#if defined(__x86_64__) || defined(__i386__)
#define MMQ_DECL(f)							\
	void mmq_gemv_##f(float *y, size_t ldy, const float *x,		\
			  size_t nt, const struct hf_weight *w,		\
			  const float *bias, size_t r0, size_t r1);	\
	void mmq_widen_##f(float *dst, const struct hf_weight *w,	\
			   size_t r0, size_t rows, size_t k0, size_t kc);
MMQ_DECL(int8)
MMQ_DECL(bnb4)
MMQ_DECL(gptq)
MMQ_DECL(awq)
MMQ_DECL(fp8)
MMQ_DECL(bitnet)
#undef MMQ_DECL
void mmq_gemv_bnb4_512(float *y, size_t ldy, const float *x, size_t nt,
		       const struct hf_weight *w, const float *bias,
		       size_t r0, size_t r1);
void mmq_gemv_int8_512(float *y, size_t ldy, const float *x, size_t nt,
		       const struct hf_weight *w, const float *bias,
		       size_t r0, size_t r1);
void mmq_gemv_gptq_512(float *y, size_t ldy, const float *x, size_t nt,
		       const struct hf_weight *w, const float *bias,
		       size_t r0, size_t r1);
/* AVX-512 decode for AWQ, FP8 (and its panels) and BitNet: 16 lanes;
 * what they cannot take (rows off a word boundary, FP8 blocks not a
 * multiple of 16) goes to the AVX2 kernels above. */
void mmq_gemv_awq_512(float *y, size_t ldy, const float *x, size_t nt,
		      const struct hf_weight *w, const float *bias,
		      size_t r0, size_t r1);
void mmq_gemv_fp8_512(float *y, size_t ldy, const float *x, size_t nt,
		      const struct hf_weight *w, const float *bias,
		      size_t r0, size_t r1);
void mmq_widen_fp8_512(float *dst, const struct hf_weight *w, size_t r0,
		       size_t rows, size_t k0, size_t kc);
void mmq_gemv_bitnet_512(float *y, size_t ldy, const float *x, size_t nt,
			 const struct hf_weight *w, const float *bias,
			 size_t r0, size_t r1);
#define MMQ_ENTRIES_ALL(int8, bnb4, gptq, awq, fp8, fp8w, bitnet)	\
	[HF_WFMT_INT8] = { int8, mmq_widen_int8, NULL },		\
	[HF_WFMT_BNB4] = { bnb4, mmq_widen_bnb4, NULL },		\
	[HF_WFMT_BNB4DQ] = { bnb4, mmq_widen_bnb4, NULL },		\
	[HF_WFMT_GPTQ] = { gptq, mmq_widen_gptq, NULL },		\
	[HF_WFMT_AWQ] = { awq, mmq_widen_awq, NULL },			\
	[HF_WFMT_FP8] = { fp8, fp8w, NULL },				\
	[HF_WFMT_BITNET] = { bitnet, mmq_widen_bitnet, NULL },
#define MMQ_ENTRIES(int8, bnb4, gptq)					\
	MMQ_ENTRIES_ALL(int8, bnb4, gptq, mmq_gemv_awq, mmq_gemv_fp8,	\
			mmq_widen_fp8, mmq_gemv_bitnet)
#endif

/* The per-ISA tables, one row per format (enum hf_wfmt). */
extern const struct mm_kern mm_generic[HF_WFMT_COUNT];
#if defined(__x86_64__) || defined(__i386__)
extern const struct mm_kern mm_avx2[HF_WFMT_COUNT], mm_avx512[HF_WFMT_COUNT];
extern const struct mm_bf16_kern mm_avx512_bf16[HF_WFMT_COUNT],
	mm_avx512bf16[HF_WFMT_COUNT];
#endif
#if defined(__aarch64__)
extern const struct mm_kern mm_neon[HF_WFMT_COUNT];
#endif

#endif
