/* lib/tensor/matmul_kern.h: the kernels behind hf_matmul, one set per
 * instruction set (matmul.c: portable C; matmul_x86.c: AVX2, AVX-512).
 * Internal to lib/tensor. */
#ifndef HF_TENSOR_MATMUL_KERN_H
#define HF_TENSOR_MATMUL_KERN_H

#include <stddef.h>

#include "tensor/dtype.h"

/* Decode, nt <= MM_GEMV_NT tokens at once, W read once:
 * y[t * ldy + r] = x[t] . W[r] (+ bias[r]) for t < nt, r in [r0, r1).
 * x: (nt, in); w: (out, in) in dtype wt; bias: (out), indexed by r. */
#define MM_GEMV_NT 4
typedef void (*mm_gemv_fn)(float *y, size_t ldy, const float *x, size_t nt,
			   const void *w, enum hf_dtype wt, const float *bias,
			   size_t in, size_t r0, size_t r1);

/* Widen rows [r0, r0 + rows) x columns [k0, k0 + kc) of W into dst,
 * row-major (rows, kc): dst[r][k] = W[r0 + r][k0 + k]. */
typedef void (*mm_widen_fn)(float *dst, const void *w, enum hf_dtype wt,
			    size_t in, size_t r0, size_t rows, size_t k0,
			    size_t kc);

/* Batched product for the columns [j0, j1) of y, all n rows; y must
 * already hold the bias (or zeros): the kernel adds x . W^T into it.
 * j0 is a multiple of MM_NR. scratch: mm_gemm_scratch(n) floats,
 * 64-byte aligned. */
typedef void (*mm_gemm_fn)(float *y, const float *x, const void *w,
			   enum hf_dtype wt, size_t n, size_t in, size_t out,
			   size_t j0, size_t j1, float *scratch);

/* GEMM blocking (AVX-512; AVX2 uses half of NR and MR), after BLIS: for
 * each MM_KC slice of the inner dimension, x is packed k-major in tiles
 * of MM_MR tokens, and W in panels of MM_NR rows, MM_NC rows at a time
 * (MM_NC * MM_KC floats, 512 KiB: stays in L2); each x tile (14 KiB,
 * L1) then runs past all the panels of the block. */
#define MM_NR 32
#define MM_MR 14
#define MM_KC 256
#define MM_NC 512

/* The packed W block, then the packed x tiles (n rounded up to the
 * largest tile, MM_MR). */
static inline size_t mm_gemm_scratch(size_t n)
{
	return MM_KC * MM_NC + (n + MM_MR) * MM_KC;
}

struct mm_kern {
	const char *name;
	mm_gemv_fn gemv;
	mm_widen_fn widen;
	mm_gemm_fn gemm;	/* NULL: widen panels and call cblas_sgemm */
};

#if defined(__x86_64__) || defined(__i386__)
extern const struct mm_kern mm_avx2, mm_avx512;
#endif

#endif
