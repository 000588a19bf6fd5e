/* lib/quant/formats.h: the traits hooks of the quantized weight formats
 * (tensor/wfmt.h rows HF_WFMT_INT8 ...), and the parsers behind them
 * that a fuzz harness drives. Internal to lib/. */
#ifndef HF_QUANT_FORMATS_H
#define HF_QUANT_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tensor/wfmt.h"

/* The JSON of a bitsandbytes quant_state.bitsandbytes__<type> tensor. */
struct hf_bnb_qstate {
	char quant_type[8];		/* "nf4", "fp4" */
	int64_t blocksize;
	char dtype[16];			/* "bfloat16" ... */
	int64_t shape[2];		/* [out, in] */
	int ndim;
	int nested;
	int64_t nested_blocksize;
	double nested_offset;
};

/* Parse len bytes of that JSON (name in errors): any key order, the
 * nested keys all or none, blocksizes powers of two. */
int hf_bnb_qstate_parse(struct hf_bnb_qstate *qs, const void *buf,
			size_t len, const char *name, struct hf_err *err);

/* The 16 values of bitsandbytes' NF4 and FP4 codes, in code order. */
extern const float hf_nf4_table[16], hf_fp4_table[16];

/* Per format: dequant, span (NULL: views by roff) and bind hooks. */
#define HF_QFMT_HOOKS(f)						\
	void hf_##f##_dequant(float *dst, const struct hf_weight *w,	\
			      size_t r0, size_t rows, size_t k0,	\
			      size_t kc);				\
	int hf_##f##_bind(struct hf_weight *w,				\
			  const struct hf_tensor **tn,			\
			  hf_wfmt_get_fn get, void *ctx,		\
			  const struct hf_qcfg *qc, const char *base,	\
			  size_t rows, size_t cols, struct hf_err *err);
HF_QFMT_HOOKS(int8)
HF_QFMT_HOOKS(bnb4)
HF_QFMT_HOOKS(bnb4dq)
HF_QFMT_HOOKS(gptq)
HF_QFMT_HOOKS(awq)
HF_QFMT_HOOKS(bitnet)
HF_QFMT_HOOKS(fp8)
#undef HF_QFMT_HOOKS

int hf_int8_span(const struct hf_weight *w, unsigned i, size_t r0, size_t n,
		 size_t *off, size_t *len, struct hf_err *err);

#endif
