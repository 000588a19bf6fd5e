/* lib/model/train.h: the training forward and backward of a model: the
 * loss of a batch and the gradient of every parameter, float32, keyed by
 * the names the model's file stores them under.
 *
 * The inference forward (decoder.c, encoder.c) runs in place on one
 * workspace and keeps nothing; training runs its own forward here, one
 * per layer kind: train_llama.c for the Llama family (llama, mistral,
 * mixtral, qwen2, qwen3, gemma, phi3), train_gpt2.c for GPT-2 and
 * train_encoder.c for the encoders (bert, roberta, distilbert) through
 * their masked-LM heads (train_ln.h: what the LayerNorm kinds share),
 * written by hand from the op pairs of lib/train/ops.h on float32
 * copies of the weights, each layer with its own activation buffers
 * (inputs of every product, rstd of every norm, the attention's
 * log-sum-exp), and its backward layer by layer in reverse. With
 * checkpointing only each layer's input is kept and a layer's
 * activations are recomputed just before its backward (one layer's worth
 * of buffers instead of L).
 *
 * Parameters. hf_train_new() upcasts every stored weight of the model
 * (F32, F16 or BF16) into a float32 master copy, one struct hf_param
 * per stored tensor, in a fixed order (embeddings, the layers in order,
 * the final norm, lm_head when it is stored). A tied lm_head is the
 * embedding parameter itself: the head's gradient adds into
 * model.embed_tokens.weight, and there is no lm_head.weight parameter.
 * An optimizer updates p->w in place; the next step reads it. The model
 * itself is never changed: its inference path keeps the weights as
 * loaded.
 *
 * A quantized base (config.json's quantization_config: what hf-quantize
 * writes, bitsandbytes nf4/fp4 with or without double quantization,
 * LLM.int8, GPTQ, BitNet, FP8, and AWQ) is refused unless
 * opts.quant_base is set (adapter training: QLoRA). Then every linear
 * whose weight the checkpoint stores quantized keeps it as stored (a
 * struct hf_weight over the model's mapped tensors, hf_train_lin.qw): it
 * is no parameter, it is frozen, its forward is the inference product
 * and its backward gives dx only, dequantizing one tile of rows at a
 * time (lib/train/qlora.h); the base is never widened to float. What the
 * checkpoint keeps in float (embeddings, norms, biases, an lm_head left
 * out of the quantization) stays a parameter as above. opts.frozen_base
 * does the same for the F16 and BF16 linear weights of an unquantized
 * Llama-family model (LoRA: the base read through hf_matmul_w and the
 * tile dequantization instead of a float32 copy beside the mapped
 * file); a tied lm_head stays the embedding parameter.
 *
 * Linears and adapters (LoRA). Every nn.Linear of the model is a struct
 * hf_train_lin named as transformers names the module
 * ("model.layers.0.self_attn.q_proj", Phi-3's fused
 * "model.layers.0.self_attn.qkv_proj" as one, each Mixtral expert's
 * "...experts.3.w1", "lm_head"), with its weight (and bias) parameter.
 * hf_train_set_adapter() hangs an adapter on one: its forward is called
 * right after the base product with the same input x and adds its
 * output into y (LoRA: y += s B A dropout(x)); its backward is called
 * in the linear's backward with dy and that x, and adds into dx and
 * into its own gradients (which it owns: they are not parameters here).
 * Freeze the base (hf_train_set_trainable(.., 0) on every parameter) and
 * only the adapters learn; a frozen weight still passes dx through.
 * Under checkpointing an adapter's forward runs twice for the same step
 * (recompute 1 the second time, just before its backward) and must give
 * the same output both times (the same dropout mask). x stays valid
 * from the forward call to the end of the backward call.
 *
 * Losses. The causal-LM loss as transformers computes it
 * (ForCausalLMLoss): position t is scored against label t + 1 of its
 * row (the shift is done here), labels of -100 count for nothing, and
 * the loss is the sum of the counted cross-entropies divided by denom:
 * the number of counted labels of the batch when denom is 0 (the mean),
 * or a caller's count over several micro-batches (gradient accumulation
 * with transformers' num_items_in_batch). Encoders score position t
 * against label t (the masked-LM loss, no shift). Gradients ADD into
 * p->g, so accumulation is calling hf_train_step() again;
 * hf_train_zero_grad() starts a new step. Positions are 0 .. T - 1 in
 * every row and the attention mask masks keys only, as a transformers
 * training forward without position_ids does. No dropout (the
 * fixtures' configs have none; attention_dropout is ignored). */
#ifndef HF_MODEL_TRAIN_H
#define HF_MODEL_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/model.h"
#include "tensor/wfmt.h"

struct hf_train;	/* opaque */

struct hf_train_opts {
	int checkpointing;	/* recompute layer activations in backward */
	size_t logit_rows;	/* rows of logits held at a time (the head and
				 * the loss run chunk by chunk, forward and
				 * backward at once); 0: 4M logits' worth */
	int quant_base;		/* keep a quantized base quantized and
				 * frozen (adapters only) instead of
				 * refusing it */
	int frozen_base;	/* Llama family: keep every linear weight
				 * stored as F16 or BF16 as stored, frozen
				 * (adapters only), like a quantized one:
				 * no float32 copy of it */
};

/* A stored tensor as float32 and its gradient. */
struct hf_param {
	const char *name;	/* the stored name, "model.norm.weight" */
	int ndim;
	int64_t shape[2];
	size_t n;		/* elements */
	float *w;		/* (n) master weights */
	float *g;		/* (n) gradient; NULL while frozen */
};

/* One nn.Linear: y (n, out) = x (n, in) . W^T + b. */
struct hf_train_lin {
	const char *name;	/* the module: "model.layers.1.mlp.up_proj" */
	size_t layer;		/* its decoder layer, or (size_t)-1 (lm_head) */
	size_t in, out;
	size_t w, b;		/* parameter indexes; b (size_t)-1: no bias;
				 * w (size_t)-1: the weight is qw */
	/* the frozen quantized weight as stored (opts.quant_base), or
	 * NULL: the weight is parameter w */
	const struct hf_weight *qw;
};

struct hf_train_adapter {
	void *ctx;
	/* y (n, out) += delta(x (n, in)) */
	int (*forward)(void *ctx, float *y, const float *x, size_t n,
		       int recompute, struct hf_err *err);
	/* dx (n, in) += (d delta / d x)^T dy; dy (n, out); own grads += */
	int (*backward)(void *ctx, float *dx, const float *dy, const float *x,
			size_t n, struct hf_err *err);
};

/* Training state for m (borrowed: it must outlive *out; its float
 * weights are copied, its quantized ones borrowed). opts NULL: defaults.
 * Errors: a family without a training forward (HF_EUNSUPPORTED), a
 * quantized base without opts.quant_base (HF_EUNSUPPORTED naming the
 * quantization), a weight in a dtype training cannot read
 * (HF_EUNSUPPORTED naming the tensor), head_dim over 1024. All
 * parameters start trainable, gradients zero. */
int hf_train_new(struct hf_train **out, struct hf_model *m,
		 const struct hf_train_opts *opts, struct hf_err *err);
void hf_train_free(struct hf_train *t);	/* NULL is fine */

/* Parameters, borrowed until hf_train_free(). find: NULL if absent. */
size_t hf_train_nparams(const struct hf_train *t);
struct hf_param *hf_train_param(struct hf_train *t, size_t i);
struct hf_param *hf_train_find(struct hf_train *t, const char *name);
/* on 0 frees p->g (the backward skips dW); on 1 makes it (zeroed). */
int hf_train_set_trainable(struct hf_train *t, size_t i, int on,
			   struct hf_err *err);
void hf_train_zero_grad(struct hf_train *t);
/* sqrt(sum of g^2) over every trainable parameter, summed in double. */
double hf_train_grad_norm(const struct hf_train *t);

/* Linears, borrowed until hf_train_free(). */
size_t hf_train_nlinears(const struct hf_train *t);
const struct hf_train_lin *hf_train_linear(const struct hf_train *t,
					   size_t i);
/* Hang ad (copied; ad->ctx borrowed) on linear i; NULL removes it. */
int hf_train_set_adapter(struct hf_train *t, size_t i,
			 const struct hf_train_adapter *ad, struct hf_err *err);

/* Forward and backward of one batch: ids and labels (B, T), mask (B, T)
 * 1 for a token, 0 for padding (NULL: all tokens). *loss gets the loss
 * (sum of counted CE / denom, or the mean when denom is 0) and *count
 * the labels counted; gradients are added. Errors: ids outside the
 * vocabulary, labels neither -100 nor in it (HF_ERANGE naming row and
 * position), no label counted with denom 0 (HF_EINVAL), and whatever
 * an adapter returns. */
int hf_train_step(struct hf_train *t, const int32_t *ids,
		  const int32_t *labels, const int32_t *mask, size_t B,
		  size_t T, double denom, double *loss, size_t *count,
		  struct hf_err *err);

/* The same forward without backward (evaluation): *loss and *count as
 * above, no gradient touched, no adapter recompute. */
int hf_train_eval(struct hf_train *t, const int32_t *ids,
		  const int32_t *labels, const int32_t *mask, size_t B,
		  size_t T, double *loss, size_t *count, struct hf_err *err);

#endif
