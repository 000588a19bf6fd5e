/* lib/quant/qwrite.h: what the writers of quant/quantize.h share (the
 * write_*.c files). Internal to lib/quant. */
#ifndef HF_QUANT_QWRITE_H
#define HF_QUANT_QWRITE_H

#include "quant/quantize.h"

/* Append a zeroed tensor of nbytes to q: ndim 0 (scalar), 1 ([d0]) or
 * 2 ([d0, d1]). Returns its data, or NULL (err set) if out of memory or
 * q is full; q keeps what it had either way. */
void *hf_qlinear_add(struct hf_qlinear *q, const char *suffix,
		     enum hf_dtype dt, int ndim, int64_t d0, int64_t d1,
		     size_t nbytes, struct hf_err *err);

/* HF_EINVAL naming fn and the first element of W (rows, cols) that is
 * not finite; 0 if all are. */
int hf_quant_check_w(const float *W, size_t rows, size_t cols,
		     const char *fn, struct hf_err *err);

#endif
