/* lib/export/onnx.h: a model directory as the ONNX graphs Optimum
 * exports, in the repository layout Transformers.js loads
 * (docs/onnx-gguf-export.md part A). */
#ifndef HF_EXPORT_ONNX_H
#define HF_EXPORT_ONNX_H

#include "core/err.h"

/* The weight variants, by Transformers.js' dtype file suffixes. */
enum {
	HF_ONNX_V_F32 = 1u << 0,	/* model.onnx */
	HF_ONNX_V_FP16 = 1u << 1,	/* model_fp16.onnx: f16 weights */
	HF_ONNX_V_Q8 = 1u << 2,		/* model_quantized.onnx: int8 */
	HF_ONNX_V_Q4 = 1u << 3,		/* model_q4.onnx: MatMulNBits */
	HF_ONNX_V_ALL = 15,
};

struct hf_onnx_opts {
	unsigned variants;	/* HF_ONNX_V_* bits; 0: all */
	int external;		/* 1: weights in <file>_data whatever the
				 * size; 0: only past 2 GB */
};

/* The ONNX opset hf writes, and the IR version that goes with it. */
#define HF_ONNX_OPSET 17
#define HF_ONNX_IR 8

/* Export the model in dir to out, a directory (made if absent; files in
 * it are replaced): out/onnx/<graph><suffix>.onnx for each variant, plus
 * config.json, generation_config.json and the tokenizer files copied.
 * Graphs: decoders (gpt2 and the llama family, mixtral included) get
 * "model": input_ids, attention_mask, position_ids,
 * past_key_values.N.key/.value [batch, kv_heads, past, head_dim] in;
 * logits and present.N.key/.value out, one graph for prefill and decode.
 * Encoders (bert, roberta, distilbert) get "model" (last_hidden_state,
 * and pooler_output where the weights have a pooler), "masked_lm"
 * (logits) and "sequence_classification" (logits [batch, labels]) where
 * the weights have those heads. Each file is written through a temporary
 * name. o NULL: all variants, external data only past 2 GB (or always
 * when the environment has HF_ONNX_EXTERNAL=1). Errors name
 * the file, tensor or setting at fault: an architecture or RoPE scaling
 * with no ONNX form here, a quantized checkpoint. */
int hf_export_onnx(const char *dir, const char *out,
		   const struct hf_onnx_opts *o, struct hf_err *err);

#endif
