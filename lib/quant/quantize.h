/* lib/quant/quantize.h: quantizing one nn.Linear weight into the tensors
 * of a transformers quantizer's checkpoint (docs/quantization-formats.md),
 * byte for byte as bitsandbytes, GPTQModel/AutoGPTQ, AutoAWQ, BitNet and
 * the FP8 checkpoints write them. hf-quantize (tools/quantize.c) runs
 * these over a model; quant/formats.c reads what they write. */
#ifndef HF_QUANT_QUANTIZE_H
#define HF_QUANT_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tensor/dtype.h"

/* One tensor of a quantized linear: its name after the module's
 * ("weight", "SCB", "weight.absmax", "qweight" ...), dtype, shape and
 * data (malloc'd, owned). */
#define HF_QT_MAX 8
struct hf_qtensor {
	char suffix[64];
	enum hf_dtype dtype;
	int ndim;
	int64_t shape[2];		/* ndim 0: a scalar */
	void *data;
	size_t nbytes;
};

/* The tensors of one quantized linear, in the order they are made. */
struct hf_qlinear {
	size_t n;
	struct hf_qtensor t[HF_QT_MAX];
};

void hf_qlinear_free(struct hf_qlinear *q);

/* W is (rows, cols) = (out, in) row-major float32 in every function. */

/* bitsandbytes LLM.int8: weight I8, SCB F32 (rows), weight_format U8
 * scalar 0. SCB is the row's absmax; q = round(W * 127 / SCB) (a zero
 * row: SCB 0, q 0). */
int hf_quant_int8(struct hf_qlinear *q, const float *W, size_t rows,
		  size_t cols, struct hf_err *err);

/* bitsandbytes 4-bit: fp4 0 nf4, 1 fp4; blocksize a power of two in
 * 32 .. 4096; double_quant: absmax in 8-bit blocks of 256. dtype is the
 * original weight's, as quant_state names it ("bfloat16", "float16",
 * "float32"). Tensors: weight U8 [ceil(n/2), 1], weight.absmax,
 * weight.quant_map, (weight.nested_absmax, weight.nested_quant_map),
 * weight.quant_state.bitsandbytes__nf4|fp4. */
int hf_quant_bnb4(struct hf_qlinear *q, const float *W, size_t rows,
		  size_t cols, int fp4, size_t blocksize, int double_quant,
		  const char *dtype, struct hf_err *err);

/* GPTQ packing of integer weights already chosen (by the GPTQ solver or
 * round-to-nearest): qv (rows, cols) in 0 .. 2^bits - 1, scales and
 * zeros (G, rows) per group and output, g_idx (cols) the group of each
 * input column. v2 0: the v1 format (zeros stored minus one). Tensors:
 * qweight, qzeros, scales F16, g_idx. */
int hf_gptq_pack(struct hf_qlinear *q, const uint8_t *qv,
		 const float *scales, const uint8_t *zeros,
		 const int32_t *g_idx, size_t rows, size_t cols, size_t G,
		 unsigned bits, int v2, struct hf_err *err);

/* GPTQ's per-group scale and zero of a range of weights (the quantizer
 * of AutoGPTQ's quantizer.py): over x[i * stride], i < n, asymmetric or
 * sym. The range always includes 0; sym mirrors it only where the
 * minimum is negative (an all-positive group keeps min 0). */
void hf_gptq_scale_zero(const float *x, size_t n, size_t stride,
			unsigned bits, int sym, float *scale, uint8_t *zero);
/* q = clamp(round(w / scale) + zero, 0, 2^bits - 1) (round half even,
 * as torch.round). */
uint8_t hf_gptq_q(float w, float scale, uint8_t zero, unsigned bits);

/* Round-to-nearest in the GPTQ layout (the baseline GPTQ is measured
 * against): groups of group_size inputs (-1: all), g_idx trivial. */
int hf_quant_rtn(struct hf_qlinear *q, const float *W, size_t rows,
		 size_t cols, unsigned bits, long group_size, int sym,
		 int v2, struct hf_err *err);

/* AutoAWQ's quantizer (zero_point, 4-bit, gemm packing) without the
 * activation-aware search: qweight, qzeros, scales F16. */
int hf_quant_awq(struct hf_qlinear *q, const float *W, size_t rows,
		 size_t cols, size_t group_size, struct hf_err *err);

/* BitNet b1.58 absmean ternary, microsoft/bitnet-b1.58-2B-4T layout:
 * weight U8 [rows/4, cols] (rows a multiple of 4), weight_scale [1] of
 * dtype sdt (BF16, F16 or F32); autobitlinear 1: weight_scale = mean|W|
 * (multiplies), 0: 1 / mean|W| (divides, "bitlinear"). */
int hf_quant_bitnet(struct hf_qlinear *q, const float *W, size_t rows,
		    size_t cols, int autobitlinear, enum hf_dtype sdt,
		    struct hf_err *err);

/* FP8 E4M3 with block scales (DeepSeek-V3 / Qwen FP8): weight F8_E4M3,
 * weight_scale_inv F32 [ceil(rows/br), ceil(cols/bc)]; as transformers'
 * FineGrainedFP8 quantizer, scale = 448 / block absmax, weight =
 * e4m3(W * scale) (round to nearest even, saturating), weight_scale_inv
 * = 1 / scale (an all-zero block: 0). */
int hf_quant_fp8(struct hf_qlinear *q, const float *W, size_t rows,
		 size_t cols, size_t br, size_t bc, struct hf_err *err);

#endif
