/* lib/model/model.h: a Hugging Face model directory turned into something
 * that runs: config.json picks the architecture, weights are bound by
 * their HF names from the (memory-mapped) safetensors, and the forward
 * pass is written once against lib/backend.
 *
 * Families: decoders GPT-2 and the Llama family (llama, mistral, qwen2,
 * qwen3, gemma, phi3, mixtral); encoders BERT, RoBERTa, DistilBERT. */
#ifndef HF_MODEL_MODEL_H
#define HF_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/err.h"
#include "model/config.h"

struct hf_model;	/* opaque */
struct hf_kv;		/* a decoder's KV cache for a batch of rows */

/* Open dir (config.json + model.safetensors or shards). be is borrowed and
 * must outlive the model; NULL makes a CPU backend with threads threads
 * (<= 0: all CPUs) that the model owns. Errors name the file, key or
 * tensor at fault: an unknown model_type, a missing tensor, a tensor of
 * the wrong shape or dtype. */
int hf_model_open(struct hf_model **out, const char *dir,
		  struct hf_backend *be, int threads, struct hf_err *err);
void hf_model_free(struct hf_model *m);	/* NULL is fine */

/* Borrowed until hf_model_free(). */
const struct hf_config *hf_model_config(const struct hf_model *m);
struct hf_backend *hf_model_backend(struct hf_model *m);
const char *hf_model_dir(const struct hf_model *m);

int hf_model_is_encoder(const struct hf_model *m);
size_t hf_model_vocab(const struct hf_model *m);
size_t hf_model_hidden(const struct hf_model *m);
size_t hf_model_layers(const struct hf_model *m);
/* The context the model was trained for (max_position_embeddings, 0 if
 * config.json gives none). RoPE models run past it: hf_model_forward()
 * warns once on stderr when a position reaches it. */
size_t hf_model_max_ctx(const struct hf_model *m);
/* Positions the model has: the rows of its learned position table
 * (gpt2, bert, distilbert; roberta less the rows before padding_idx + 1),
 * or 0 for RoPE models, which compute any position. */
size_t hf_model_max_positions(const struct hf_model *m);
/* Experts of a MoE model (0 for dense). */
size_t hf_model_experts(const struct hf_model *m);
/* Labels of a *ForSequenceClassification head (0 when there is none). */
size_t hf_model_num_labels(const struct hf_model *m);
/* Bytes of weights the model reads per token (all matmul weights). */
size_t hf_model_weight_bytes(const struct hf_model *m);

/* ---- decoders ---- */

/* A cache for batch rows of up to cap tokens each. */
int hf_kv_new(struct hf_kv **out, struct hf_model *m, size_t batch,
	      size_t cap, struct hf_err *err);
void hf_kv_free(struct hf_kv *kv);	/* NULL is fine */
/* The type of the caches hf_kv_new() makes from now on: "f32" (default),
 * "f16", "bf16", "int8" or "q4" (backend/kvfmt.h says how each stores a
 * value). */
int hf_model_set_kv_cache(struct hf_model *m, const char *type,
			  struct hf_err *err);
const char *hf_model_kv_cache(const struct hf_model *m);	/* its type */
/* Bytes a token takes in a cache (keys and values of every layer). */
size_t hf_model_kv_token_bytes(const struct hf_model *m);
void hf_kv_reset(struct hf_kv *kv);	/* empty, same size */
size_t hf_kv_len(const struct hf_kv *kv);	/* tokens (columns) held */
size_t hf_kv_cap(const struct hf_kv *kv);

/* What a forward pass writes; NULL pointers are skipped. */
struct hf_fwd_out {
	float *logits;		/* all_logits: (B, T, vocab); else (B, vocab)
				 * for the last column */
	int all_logits;
	float *hidden;		/* (L + 1, B * T, hidden): HF's
				 * output_hidden_states (last after the
				 * final norm) */
	float *router;		/* (L, B * T, experts): MoE router logits */
};

/* Append T columns for every row of kv's batch: ids (B, T); mask (B, T)
 * with 1 for a token and 0 for padding (NULL: all tokens). Positions are
 * cumsum(mask) - 1 per row over everything the cache holds (padding gets
 * 1), as generate() builds them, so a left-padded batch gives the same
 * results per row as each row alone. Errors: ids outside the vocabulary
 * (HF_ERANGE naming the id and where), a full cache or a position past
 * the learned position table (HF_ERANGE). */
int hf_model_forward(struct hf_model *m, struct hf_kv *kv, const int32_t *ids,
		     const int32_t *mask, size_t T, struct hf_fwd_out *out,
		     struct hf_err *err);

/* Decode steps (T = 1) without hidden states or router logits are
 * recorded once per cache (hf_graph_begin/end) and replayed for later
 * tokens, with only token ids, positions, cache columns and the mask
 * uploaded between replays. Mixtral is replayed on a device backend,
 * where routing and the expert products stay on the device; on the CPU
 * it runs eagerly (experts grouped on the host). on = 0 runs every step eagerly. The default is on,
 * unless the environment has HF_GRAPH=0. */
void hf_model_set_replay(struct hf_model *m, int on);
/* Dynamic RoPE (rope_scaling dynamic, longrope) picks its frequencies
 * from the largest position of each forward call, as transformers does
 * per call. A caller that feeds one sequence in several calls (a long
 * prompt in chunks) gives its whole length here first, so that every
 * chunk is rotated as the whole would be in one call; 0 ends that. */
void hf_model_set_seq_len(struct hf_model *m, size_t len);
/* Decode steps on kv that ran as a replay of its recording. */
size_t hf_kv_replays(const struct hf_kv *kv);

/* ---- layer by layer (hf-quantize's GPTQ) ---- */

/* Linears per decoder layer: q, k, v, o, gate, up, down. */
#define HF_MODEL_LAYER_LIN 7

struct hf_lin_info {
	char name[160];		/* "model.layers.0.self_attn.q_proj" */
	size_t out, in;
};

/* The linears of decoder layer l, in the order a forward pass multiplies
 * by them, into info[0 .. *count). HF_EUNSUPPORTED for layers that are
 * not separate q/k/v/o/gate/up/down projections (GPT-2's Conv1D, Phi-3's
 * fused ones, MoE experts) and for encoders. */
int hf_model_layer_linears(struct hf_model *m, size_t l,
			   struct hf_lin_info *info, size_t *count,
			   struct hf_err *err);
/* Linear i of layer l as float32 (out, in) into dst: its weight as the
 * model multiplies by it now (a replacement, once made). */
int hf_model_linear_weight(struct hf_model *m, size_t l, size_t i,
			   float *dst, struct hf_err *err);
/* Multiply by w (out, in) float32 (copied into a buffer the model owns)
 * from now on in place of linear i of layer l, until hf_model_set_tap()
 * with fn NULL restores the weight as bound. Only while layer l has a
 * tap. */
int hf_model_linear_replace(struct hf_model *m, size_t l, size_t i,
			    const float *w, struct hf_err *err);
/* Called with the input x (n, in) of linear i of layer l before each
 * product by it (x is the backend's buffer: hf_buf_download() reads it).
 * It may call hf_model_linear_replace() on that linear, and the product
 * then uses the new weight. */
typedef void (*hf_lin_tap_fn)(void *ctx, size_t l, size_t i,
			      struct hf_buf *x, size_t n);
/* Tap every linear of layer l; fn NULL removes the taps of layer l,
 * restores its weights as bound and frees the replacements. A model
 * without taps runs exactly as before (one NULL test per product). */
int hf_model_set_tap(struct hf_model *m, size_t l, hf_lin_tap_fn fn,
		     void *ctx, struct hf_err *err);
/* Run decoder layers [l0, l1) on B = kv's batch rows of T tokens whose
 * positions are those of a fresh row (kv is reset first): hin (B * T,
 * hidden) the input of layer l0 (NULL when l0 is 0: the embeddings of
 * ids (B, T)); hout (B * T, hidden) gets the residual stream after
 * layer l1 - 1, before any final norm. ids gives the count of tokens
 * (and the embeddings when hin is NULL). */
int hf_model_run_layers(struct hf_model *m, struct hf_kv *kv,
			const int32_t *ids, size_t T, size_t l0, size_t l1,
			const float *hin, float *hout, struct hf_err *err);

/* ---- encoders ---- */

struct hf_enc_out {
	float *hidden;		/* (B, T, hidden): last_hidden_state */
	float *all_hidden;	/* (L + 1, B * T, hidden) */
	float *pooler;		/* (B, hidden): tanh(dense(h[:, 0])) (BERT,
				 * RoBERTa; needs the pooler weights) */
	float *mlm_logits;	/* (B, T, vocab): the masked-LM head */
	float *class_logits;	/* (B, labels): the classification head */
};

/* ids, type_ids (NULL: all 0), mask (NULL: all 1), each (B, T).
 * Also runs the classification head of a decoder
 * *ForSequenceClassification (class_logits only, at the last token). */
int hf_model_encode(struct hf_model *m, const int32_t *ids,
		    const int32_t *type_ids, const int32_t *mask, size_t B,
		    size_t T, struct hf_enc_out *out, struct hf_err *err);

/* ---- sentence embeddings ---- */

enum hf_pooling {
	HF_POOL_MEAN,		/* mean over the tokens the mask keeps */
	HF_POOL_CLS,		/* the first token */
	HF_POOL_MAX,		/* max over kept tokens, per dim */
	HF_POOL_LAST,		/* the last kept token (decoder embedders) */
};

/* How the model's sentence-transformers files pool: modules.json and its
 * Pooling module's config.json (1_Pooling/config.json), and whether a
 * Normalize module follows. Without them: mean for encoders, last token
 * for decoders, no normalisation. */
int hf_model_pooling(const struct hf_model *m, enum hf_pooling *mode,
		     int *normalize, struct hf_err *err);

/* out (B, H) = pooling of hidden (B, T, H) under mask (B, T) (NULL: all
 * kept); sums in double. normalize: divide each row by its L2 norm. */
void hf_pool_hidden(float *out, const float *hidden, const int32_t *mask,
		    size_t B, size_t T, size_t H, enum hf_pooling mode,
		    int normalize);

/* 1 if the weights for out->pooler / mlm_logits / class_logits exist. */
int hf_model_has_pooler(const struct hf_model *m);
int hf_model_has_mlm(const struct hf_model *m);

#endif
