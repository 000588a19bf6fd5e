/* lib/train/ops_ln.h: the op pairs the LayerNorm models (GPT-2, the
 * BERT encoders) need beyond ops.h: GPT-2's Conv1D, a linear whose
 * weight is stored transposed, [in, out], as modeling_gpt2.py keeps it.
 * Same conventions as ops.h: float32, row-major, the backward ADDS into
 * every gradient, a NULL gradient is skipped. */
#ifndef HF_TRAIN_OPS_LN_H
#define HF_TRAIN_OPS_LN_H

#include <stddef.h>

#include "core/pool.h"

/* ---- Conv1D: y (n, out) = x (n, in) . W (in, out) + b (out) ----
 * b NULL: no bias; y must not overlap x or W. Backward:
 *   dx (n, in)   += dy (n, out) . W^T
 *   dW (in, out) += x^T . dy
 *   db (out)     += sum over rows of dy
 * pool splits the columns of y / dx and the rows of dW. */
void hf_conv1d_forward(float *y, const float *x, const float *w,
		       const float *b, size_t n, size_t in, size_t out,
		       struct hf_pool *pool);
void hf_conv1d_backward(float *dx, float *dw, float *db, const float *dy,
			const float *x, const float *w, size_t n, size_t in,
			size_t out, struct hf_pool *pool);

#endif
