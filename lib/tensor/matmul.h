/* lib/tensor/matmul.h: the CPU matrix products every model runs on.
 * Weights are in HF nn.Linear layout, W[out][in] row-major, read in place
 * (from the mmap) in their stored dtype; activations are float32. */
#ifndef HF_TENSOR_MATMUL_H
#define HF_TENSOR_MATMUL_H

#include <stddef.h>

#include "core/pool.h"
#include "tensor/dtype.h"
#include "tensor/wfmt.h"

/* y[n][out] = x[n][in] . W^T (+ bias[out] when bias != NULL) for a
 * weight W (out, in) = (w->rows, w->cols) of any format (tensor/wfmt.h),
 * read as stored; ct is the compute type as for hf_matmul_as. The
 * kernels are those of the ISA in use for w's format (its traits
 * through the portable kernels where the ISA has no entry). */
void hf_matmul_w(float *y, const float *x, const struct hf_weight *w,
		 const float *bias, size_t n, enum hf_dtype ct,
		 struct hf_pool *pool);
/* The reference loops for it (sums in double; bf16: x and W rounded). */
void hf_matmul_w_ref(float *y, const float *x, const struct hf_weight *w,
		     const float *bias, size_t n);
void hf_matmul_w_bf16_ref(float *y, const float *x,
			  const struct hf_weight *w, const float *bias,
			  size_t n);

/* hf_matmul_w for a plain weight over w in dtype wt:
 * y[n][out] = x[n][in] . W[out][in]^T (+ bias[out] when bias != NULL).
 * wt is HF_DTYPE_F32, HF_DTYPE_F16 or HF_DTYPE_BF16. n == 1 is the decode
 * matrix-vector product (SIMD, rows split across the pool); n > 1 is the
 * batched product (prompt processing). pool may be NULL (one thread).
 * y must not overlap x, w or bias. Sums in float32; results match
 * hf_matmul_ref within 1e-5 relative (to sum |x w|). Per-thread scratch
 * for n > 1 is allocated on first use and kept (grows with n). */
void hf_matmul(float *y, const float *x, const void *w, enum hf_dtype wt,
	       const float *bias, size_t n, size_t in, size_t out,
	       struct hf_pool *pool);

/* hf_matmul with a compute type ct: HF_DTYPE_F32 is hf_matmul;
 * HF_DTYPE_BF16 rounds x and W to bf16 (nearest even, as torch does; W
 * stored in bf16 is used as is) and sums the products in float32, as
 * PyTorch's CPU bf16 matmul and llama.cpp do. The products of bf16
 * values are exact in float32, so the f32 kernels compute this on the
 * rounded operands (AVX-512 rounds W as it packs it); the avx512bf16 set
 * runs them on vdpbf16ps instead (which counts bf16 subnormals as zero).
 * Results match hf_matmul_bf16_ref within float reassociation. */
void hf_matmul_as(float *y, const float *x, const void *w, enum hf_dtype wt,
		  const float *bias, size_t n, size_t in, size_t out,
		  enum hf_dtype ct, struct hf_pool *pool);

/* The instruction sets of the fast paths. hf_matmul picks the best the
 * CPU has on first use, or the one the HF_CPU environment variable names
 * (generic, avx2, avx512, avx512bf16, neon). avx512bf16 (bf16 compute on
 * vdpbf16ps, f32 as avx512) is never the default: on the Sapphire Rapids
 * measured, vdpbf16ps gave half the flops of the f32 FMAs. */
enum hf_matmul_isa {
	HF_MATMUL_GENERIC,	/* portable C, cblas_sgemm for n > 1 */
	HF_MATMUL_AVX2,		/* AVX2 + FMA + F16C */
	HF_MATMUL_AVX512,	/* AVX-512 F/BW/VL + FMA + F16C */
	HF_MATMUL_AVX512BF16,	/* that + AVX512_BF16 (bf16 compute) */
	HF_MATMUL_NEON,		/* AArch64 Advanced SIMD */
};

/* Force one (tests, benchmarks); -1 if this CPU lacks it. Not to be called
 * while a product runs. */
int hf_matmul_set_isa(enum hf_matmul_isa isa);
/* "generic", "avx2", "avx512", "avx512bf16" or "neon": the one in use. */
const char *hf_matmul_isa_name(void);

/* The plain loop the fast paths are tested against. */
void hf_matmul_ref(float *y, const float *x, const void *w, enum hf_dtype wt,
		   const float *bias, size_t n, size_t in, size_t out);
/* The same on x and W rounded to bf16 (what hf_matmul_as computes for
 * HF_DTYPE_BF16), summed in double. */
void hf_matmul_bf16_ref(float *y, const float *x, const void *w,
			enum hf_dtype wt, const float *bias, size_t n,
			size_t in, size_t out);

#endif
