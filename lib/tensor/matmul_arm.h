/* lib/tensor/matmul_arm.h: the quantized formats' NEON kernels
 * (matmul_quant_arm.c), for the NEON table of matmul_arm.c. Internal to
 * lib/tensor. */
#ifndef HF_TENSOR_MATMUL_ARM_H
#define HF_TENSOR_MATMUL_ARM_H

#if defined(__aarch64__)
#include "tensor/matmul_kern.h"

#define MMQN_DECL(f)							\
	void mmqn_gemv_##f(float *y, size_t ldy, const float *x,	\
			   size_t nt, const struct hf_weight *w,	\
			   const float *bias, size_t r0, size_t r1);	\
	void mmqn_widen_##f(float *dst, const struct hf_weight *w,	\
			    size_t r0, size_t rows, size_t k0, size_t kc);
MMQN_DECL(int8)
MMQN_DECL(bnb4)
MMQN_DECL(gptq)
MMQN_DECL(awq)
MMQN_DECL(fp8)
MMQN_DECL(bitnet)
#undef MMQN_DECL

#define MMQN_ENTRIES							\
	[HF_WFMT_INT8] = { mmqn_gemv_int8, mmqn_widen_int8, NULL },	\
	[HF_WFMT_BNB4] = { mmqn_gemv_bnb4, mmqn_widen_bnb4, NULL },	\
	[HF_WFMT_BNB4DQ] = { mmqn_gemv_bnb4, mmqn_widen_bnb4, NULL },	\
	[HF_WFMT_GPTQ] = { mmqn_gemv_gptq, mmqn_widen_gptq, NULL },	\
	[HF_WFMT_AWQ] = { mmqn_gemv_awq, mmqn_widen_awq, NULL },	\
	[HF_WFMT_FP8] = { mmqn_gemv_fp8, mmqn_widen_fp8, NULL },	\
	[HF_WFMT_BITNET] = { mmqn_gemv_bitnet, mmqn_widen_bitnet, NULL },
#endif

#endif
