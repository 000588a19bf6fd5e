/* lib/train/ops.h: the forward/backward pairs training is built from.
 *
 * Every op is a pair: <op>_forward computes the outputs (and saves what
 * its backward needs: rstd, mean, log-sum-exp), <op>_backward takes the
 * gradient of the outputs and ADDS (+=) into the gradients of the inputs
 * and parameters, so that a tensor read by several ops (the residual
 * stream, a tied embedding, a weight shared by micro-batches) collects
 * them all; callers zero gradients when a step starts. A gradient
 * pointer that is NULL is skipped (a frozen weight, an input that needs
 * none). All float32, row-major, shapes (rows, cols) in the comments.
 *
 * Pointers and sizes in, no allocation inside, no backend state: each
 * pair is a backend-independent call on host memory, what the CPU
 * backend runs and what Vulkan backward shaders will mirror (one shader
 * per function, the same arguments as push constants). The products go
 * through our GEMM (tensor/matmul.h, with its ISA dispatch) in the
 * forward and cblas_sgemm (beta 1, which adds) in the backward; pool may
 * be NULL (one thread) where an op takes one.
 *
 * Fused projections (Phi-3's qkv_proj and gate_up_proj, GPT-2's c_attn)
 * are row views: the weight of q is rows [0, q_out) of the fused
 * (out, in) matrix, contiguous, and its gradient the same rows of the
 * fused gradient, so each part runs hf_linear_* on w + r0 * in and
 * dw + r0 * in (and the bias + r0) with its own output buffer. */
#ifndef HF_TRAIN_OPS_H
#define HF_TRAIN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"	/* enum hf_act, enum hf_rope_mode */
#include "core/pool.h"

/* Label value that counts for nothing (torch's ignore_index). */
#define HF_IGNORE_INDEX (-100)

/* ---- gather rows: embeddings, MoE token gathers ----
 * y (n, dim) = table[ids[i]] (table (rows, dim)); backward
 * dtable[ids[i]] += dy[i]. ids must be in [0, rows) (checked by the
 * caller: a bad id is bad input, not a programmer error). */
void hf_embed_forward(float *y, const float *table, const int32_t *ids,
		      size_t n, size_t dim);
void hf_embed_backward(float *dtable, const float *dy, const int32_t *ids,
		       size_t n, size_t dim);

/* ---- y = x * s (Gemma's sqrt(hidden) embedding scale), n elements;
 * y may equal x. backward dx += s * dy. */
void hf_scale_forward(float *y, const float *x, size_t n, float s);
void hf_scale_backward(float *dx, const float *dy, size_t n, float s);

/* ---- residual add: y = a + b, n elements (y may equal a or b);
 * backward da += dy, db += dy (either NULL). */
void hf_add_forward(float *y, const float *a, const float *b, size_t n);
void hf_add_backward(float *da, float *db, const float *dy, size_t n);

/* ---- nn.Linear: y (n, out) = x (n, in) . W (out, in)^T + b (out) ----
 * b NULL: no bias. y must not overlap x or W. Backward:
 *   dx (n, in)  += dy (n, out) . W
 *   dW (out, in) += dy^T . x
 *   db (out)    += sum over rows of dy
 * Each of dx, dw, db may be NULL. pool splits the columns of dx and
 * the rows of dW among its threads (OpenBLAS itself runs on one). */
void hf_linear_forward(float *y, const float *x, const float *w,
		       const float *b, size_t n, size_t in, size_t out,
		       struct hf_pool *pool);
void hf_linear_backward(float *dx, float *dw, float *db, const float *dy,
			const float *x, const float *w, size_t n, size_t in,
			size_t out, struct hf_pool *pool);
/* The plain loops of both (sums in double), to test the others by. */
void hf_linear_forward_ref(float *y, const float *x, const float *w,
			   const float *b, size_t n, size_t in, size_t out);
void hf_linear_backward_ref(float *dx, float *dw, float *db, const float *dy,
			    const float *x, const float *w, size_t n,
			    size_t in, size_t out);

/* ---- RMSNorm (LlamaRMSNorm, GemmaRMSNorm with add_one) ----
 * y = x * rstd * w' with rstd = 1 / sqrt(mean(x^2) + eps) per row and
 * w' = w (or 1 + w when add_one). x, y: (rows, cols), y may equal x
 * only when no backward follows (backward reads x); w: (cols), or
 * NULL for no weight (w' = 1); rstd: (rows), saved for the backward.
 * Backward: dx += rstd w' dy - x rstd^3 / cols * sum(dy w' x),
 * dw += sum over rows of dy x rstd. */
void hf_rmsnorm_forward(float *y, float *rstd, const float *x,
			const float *w, size_t rows, size_t cols, float eps,
			int add_one);
void hf_rmsnorm_backward(float *dx, float *dw, const float *dy,
			 const float *x, const float *w, const float *rstd,
			 size_t rows, size_t cols, int add_one);

/* ---- LayerNorm (nn.LayerNorm, biased variance) ----
 * y = (x - mean) * rstd * w + b; x, y (rows, cols) (y must not be x);
 * w, b (cols); mean, rstd (rows) saved. Backward as llm.c's
 * layernorm_backward: dx, dw, db added (each may be NULL). */
void hf_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
			  const float *w, const float *b, size_t rows,
			  size_t cols, float eps);
void hf_layernorm_backward(float *dx, float *dw, float *db, const float *dy,
			   const float *x, const float *w, const float *mean,
			   const float *rstd, size_t rows, size_t cols);

/* ---- RoPE ----
 * x (ntok, heads * head_dim) rotated in place: the first rot_dim dims
 * of each head by angle pos[t] * inv_freq[i] (inv_freq (rot_dim / 2):
 * the table lib/model/rope.c built for the model, whatever its scaling),
 * cos and sin times scaling (transformers' attention_scaling), float32
 * angles as in HF and the inference kernel. The rotation is linear and
 * orthogonal (times scaling), so the backward is the inverse rotation:
 * dx += scaling * R(-angle) dy (dx must not alias dy); the dims past
 * rot_dim pass through (dx += dy). */
void hf_rope_forward(float *x, const int32_t *pos, const float *inv_freq,
		     size_t ntok, size_t heads, size_t head_dim,
		     size_t rot_dim, enum hf_rope_mode mode, float scaling);
void hf_rope_backward(float *dx, const float *dy, const int32_t *pos,
		      const float *inv_freq, size_t ntok, size_t heads,
		      size_t head_dim, size_t rot_dim, enum hf_rope_mode mode,
		      float scaling);

/* ---- scaled dot-product attention over one sequence per row ----
 * q (B * T, hq * d), k and v (B * T, hkv * d), o (B * T, hq * d).
 * Query t of row b sees key j of the same row when mask (B, T) (1 keep,
 * 0 padding; NULL: all) keeps j and, when causal, j <= t and, when
 * window > 0, t - j < window (Mistral's sliding window). Head h reads kv
 * head h / (hq / hkv) (GQA, MQA). scores = scale * q . k, softmax in
 * float32 with the row max subtracted, as eager attention. lse
 * (B, hq, T): the log-sum-exp of each query's scores, saved; the
 * backward recomputes the probabilities from it (p = exp(s - lse))
 * instead of storing T^2 of them per head. A query that sees nothing
 * gets zeros (lse -inf) and no gradient. Backward adds into dq, dk, dv
 * (shapes of q, k, v); o is the forward's output. pool splits the work
 * by (row, kv head). */
void hf_attention_forward(float *o, float *lse, const float *q,
			  const float *k, const float *v, const int32_t *mask,
			  size_t B, size_t T, size_t hq, size_t hkv, size_t d,
			  int causal, size_t window, float scale,
			  struct hf_pool *pool);
void hf_attention_backward(float *dq, float *dk, float *dv, const float *dout,
			   const float *q, const float *k, const float *v,
			   const float *o, const float *lse,
			   const int32_t *mask, size_t B, size_t T, size_t hq,
			   size_t hkv, size_t d, int causal, size_t window,
			   float scale, struct hf_pool *pool);

/* ---- activations: y = act(x), n elements (y may equal x only when no
 * backward follows); backward dx += act'(x) dy. */
float hf_act_value(float x, enum hf_act act);
float hf_act_grad(float x, enum hf_act act);
void hf_act_forward(float *y, const float *x, size_t n, enum hf_act act);
void hf_act_backward(float *dx, const float *dy, const float *x, size_t n,
		     enum hf_act act);

/* ---- gated MLP: y = act(g) * u (LlamaMLP SwiGLU, Gemma's GeGLU),
 * n elements; backward dg += act'(g) u dy, du += act(g) dy. */
void hf_glu_forward(float *y, const float *g, const float *u, size_t n,
		    enum hf_act act);
void hf_glu_backward(float *dg, float *du, const float *dy, const float *g,
		     const float *u, size_t n, enum hf_act act);

/* ---- Mixtral routing ----
 * logits (T, E) -> the top k experts idx (T, k), best first, and their
 * weights w (T, k): softmax over all E, the top k renormalised to sum
 * 1 (MixtralSparseMoeBlock), which is the softmax over the k chosen
 * logits, so the backward is that softmax's: dlogits[idx_j] +=
 * w_j (dw_j - sum_i w_i dw_i), nothing for the experts not chosen
 * (their routing is a discrete choice). */
void hf_moe_route_forward(float *w, int32_t *idx, const float *logits,
			  size_t T, size_t E, size_t k);
void hf_moe_route_backward(float *dlogits, const float *dw, const float *w,
			   const int32_t *idx, size_t T, size_t E, size_t k);
/* The weighted scatter-add of expert outputs: y[rows[i]] += w[i] * x[i]
 * for x (n, dim), y (?, dim); backward dx[i] += w[i] * dy[rows[i]],
 * dw[i] += dy[rows[i]] . x[i] (dx or dw NULL: skipped). */
void hf_moe_combine_forward(float *y, const float *x, const float *w,
			    const int32_t *rows, size_t n, size_t dim);
void hf_moe_combine_backward(float *dx, float *dw, const float *dy,
			     const float *x, const float *w,
			     const int32_t *rows, size_t n, size_t dim);

/* ---- final logit softcapping (Gemma 2's final_logit_softcapping):
 * y = cap * tanh(x / cap), n elements (y may equal x); backward from y:
 * dx += (1 - (y / cap)^2) dy. Our forward has no softcapping model yet;
 * the pair is here for the one that gets it. */
void hf_softcap_forward(float *y, const float *x, size_t n, float cap);
void hf_softcap_backward(float *dx, const float *dy, const float *y,
			 size_t n, float cap);

/* ---- softmax cross-entropy (F.cross_entropy, ignore_index -100) ----
 * logits (n, V), targets (n): row r's loss is lse(logits_r) -
 * logits_r[targets_r] (lse saved per row, (n)), skipped when the target
 * is HF_IGNORE_INDEX. Returns the sum over counted rows (in double) and
 * their number in *count; the mean transformers reports is sum / count
 * (the decoder shift, position t scored against label t + 1, is the
 * caller's). A target outside [0, V) other than -100 is the caller's to
 * refuse. Backward: dlogits_r += scale * (softmax(logits_r) -
 * onehot(target_r)) for counted rows, scale the derivative of the loss
 * by each row's CE (1 / count for the mean). The exps are float32 (as
 * torch's), their sums double; pool splits the rows. */
double hf_xent_forward(float *lse, const float *logits, const int32_t *targets,
		       size_t n, size_t V, size_t *count, struct hf_pool *pool);
void hf_xent_backward(float *dlogits, const float *logits, const float *lse,
		      const int32_t *targets, size_t n, size_t V, float scale,
		      struct hf_pool *pool);

#endif
