/* lib/train/qlora.h: the linear of a frozen base weight kept in its
 * stored format (QLoRA: LoRA over an NF4 base, Dettmers et al. 2023;
 * any format of tensor/wfmt.h: bitsandbytes nf4/fp4 with or without
 * double quantization, LLM.int8, GPTQ, AWQ, BitNet, FP8, or plain
 * f16/bf16 rows), forward and backward on host float32 activations.
 *
 *   y (n, out) = x (n, in) . W^T + b        W (out, in) = w as stored
 *   dx (n, in) += dy (n, out) . W           db (out) += sum_rows dy
 *
 * The forward is the inference product (hf_matmul_w, float32 compute).
 * The backward never widens W whole: each thread takes a range of dx's
 * columns and walks W in tiles of HF_QLORA_TILE rows, dequantizing the
 * tile's part of its columns (hf_weight_dequant) into the caller's
 * scratch and adding dy[:, tile] . tile into dx. There is no dW: the
 * weight is frozen (bitsandbytes' Linear4bit has no weight gradient
 * either). Both match hf_linear_forward/backward over the dequantized
 * W within float reassociation. */
#ifndef HF_TRAIN_QLORA_H
#define HF_TRAIN_QLORA_H

#include <stddef.h>

#include "core/pool.h"
#include "tensor/wfmt.h"

/* Rows of W dequantized at a time. */
#define HF_QLORA_TILE 64

/* Floats of scratch the backward needs for a weight of cols inputs:
 * one tile of rows over all columns (each thread uses its columns'
 * part of it). */
static inline size_t hf_qlinear_scratch(size_t cols)
{
	return (size_t)HF_QLORA_TILE * cols;
}

/* y (n, w->rows) = x (n, w->cols) . W^T (+ b when b != NULL). */
void hf_qlinear_forward(float *y, const float *x, const struct hf_weight *w,
			const float *b, size_t n, struct hf_pool *pool);
/* dx (n, w->cols) += dy (n, w->rows) . W, db (w->rows) += the column
 * sums of dy; dx or db may be NULL. scratch: hf_qlinear_scratch(cols)
 * floats, not shared with another call running at the same time. */
void hf_qlinear_backward(float *dx, float *db, const float *dy,
			 const struct hf_weight *w, size_t n, float *scratch,
			 struct hf_pool *pool);

#endif
