/* lib/quant/qconfig.h: config.json's quantization_config, the object
 * that tells transformers' loaders (and ours) how the linears of a
 * checkpoint are stored (docs/quantization-formats.md). */
#ifndef HF_QUANT_QCONFIG_H
#define HF_QUANT_QCONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "core/err.h"

enum hf_qmethod {
	HF_QM_BNB,		/* bitsandbytes: load_in_8bit or load_in_4bit */
	HF_QM_GPTQ,
	HF_QM_AWQ,
	HF_QM_BITNET,
	HF_QM_FP8,
};

/* Strings and json pointers are borrowed from the object parsed. */
struct hf_qcfg {
	enum hf_qmethod method;
	const char *quant_method;	/* as written: "bitsandbytes" ... */
	/* bitsandbytes */
	int load_in_8bit, load_in_4bit;
	const char *bnb_4bit_quant_type;	/* "nf4" (default), "fp4" */
	int bnb_4bit_use_double_quant;
	const char *bnb_4bit_compute_dtype;	/* "" if not given */
	double llm_int8_threshold;		/* default 6.0 */
	/* gptq, awq */
	int bits;
	int64_t group_size;		/* -1: one group over the input */
	int desc_act, sym;
	int gptq_v2;			/* format/checkpoint_format gptq_v2 */
	int zero_point;			/* awq, default 1 */
	const char *awq_version;	/* "gemm" */
	/* bitnet: 1 for linear_class "autobitlinear" (weight_scale
	 * multiplies), 0 for "bitlinear" (it divides) */
	int autobitlinear;
	/* fp8: weight_block_size (rows, cols) */
	int64_t fp8_block[2];
	/* modules_to_not_convert or llm_int8_skip_modules: a JSON list of
	 * names, or NULL */
	const json_t *skip;
	const json_t *json;		/* the whole object */
};

/* Parse obj (the quantization_config object); where names it in errors
 * ("<dir>/config.json: quantization_config"). Methods this project does
 * not read, and settings of known methods it does not (AWQ gemv, GPTQ
 * bits other than 2, 3, 4, 8, ...), are HF_EUNSUPPORTED naming them. */
int hf_qcfg_parse(struct hf_qcfg *qc, const json_t *obj, const char *where,
		  struct hf_err *err);

/* Whether the module named by name ("model.layers.0.mlp.down_proj")
 * is in qc's skip list: an entry matches when it is a substring of the
 * name, as transformers tests `key in name`. qc NULL: 0. */
int hf_qcfg_skips(const struct hf_qcfg *qc, const char *name);

/* "bitsandbytes int8", "gptq 4-bit g128" ...: for -v and messages. */
const char *hf_qcfg_describe(const struct hf_qcfg *qc, char *buf,
			     size_t cap);

#endif
