/* lib/backend/cpu/kernels.h: the CPU backend's kernels. Each op has a
 * plain single-threaded `_ref` loop that reads like the formula, and a
 * row-range kernel the backend splits across the pool (fused where that
 * saves a pass over memory). Pointers and sizes in, no allocation inside.
 * Shapes as in backend.h. */
#ifndef HF_BACKEND_CPU_KERNELS_H
#define HF_BACKEND_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* Rows [r0, r1) of y = rmsnorm(x) * w (or 1 + w). */
void hf_cpu_rmsnorm(float *y, const float *x, const float *w, size_t r0,
		    size_t r1, size_t cols, float eps, int add_one);
void hf_cpu_rmsnorm_ref(float *y, const float *x, const float *w, size_t rows,
			size_t cols, float eps, int add_one);

void hf_cpu_layernorm(float *y, const float *x, const float *w,
		      const float *b, size_t r0, size_t r1, size_t cols,
		      float eps);
void hf_cpu_layernorm_ref(float *y, const float *x, const float *w,
			  const float *b, size_t rows, size_t cols, float eps);

/* Tokens [t0, t1) of x (ntok, heads * head_dim) rotated in place. */
void hf_cpu_rope(float *x, const int32_t *pos, const float *inv_freq,
		 size_t t0, size_t t1, size_t heads, size_t head_dim,
		 size_t rot_dim, int mode, float scaling);
void hf_cpu_rope_ref(float *x, const int32_t *pos, const float *inv_freq,
		     size_t ntok, size_t heads, size_t head_dim,
		     size_t rot_dim, int mode, float scaling);

void hf_cpu_softmax(float *x, size_t r0, size_t r1, size_t cols);
void hf_cpu_softmax_ref(float *x, size_t rows, size_t cols);

float hf_cpu_act1(float x, int act);
void hf_cpu_glu(float *y, const float *gate, const float *up, size_t i0,
		size_t i1, int act);
void hf_cpu_glu_ref(float *y, const float *gate, const float *up, size_t n,
		    int act);

/* Work items [i0, i1) of hf_cpu_attention_items(): (row, kv head, block
 * of queries). head_dim <= 256 and hq / hkv <= 64 (checked by the
 * backend, which falls back to the _ref loop beyond). */
size_t hf_cpu_attention_items(size_t B, size_t T, size_t hkv);
/* k and v: the cache in the type kvt (backend/kvfmt.h). */
void hf_cpu_attention(float *o, const float *q, const void *k,
		      const void *v, int kvt, const float *mask, size_t i0,
		      size_t i1, size_t T, size_t C, size_t hq, size_t hkv,
		      size_t d, size_t past, int causal, size_t window,
		      float scale);
/* The same with the keys of each item cut in S <= 64 splits (whole
 * blocks of keys each), for decode steps with fewer items than threads:
 * items [i0, i1) of S * hf_cpu_attention_items(); split s writes its
 * unnormalised output to po + s * B * T * hq * d and its running max
 * and sum per (query, head) to ml (S, B * T * hq, 2). merge combines
 * them into o (B * T * hq rows of d), as FlashDecoding does. */
void hf_cpu_attention_split(float *po, float *ml, const float *q,
			    const void *k, const void *v, int kvt,
			    const float *mask, size_t i0, size_t i1, size_t B,
			    size_t T, size_t C, size_t hq, size_t hkv, size_t d,
			    size_t past, int causal, size_t window, float scale,
			    size_t S);
void hf_cpu_attention_merge(float *o, const float *po, const float *ml,
			    size_t rows, size_t d, size_t S);
void hf_cpu_attention_ref(float *o, const float *q, const float *k,
			  const float *v, const float *mask, size_t B,
			  size_t T, size_t C, size_t hq, size_t hkv, size_t d,
			  size_t past, int causal, size_t window, float scale);

/* Rows [t0, t1) of the MoE routing. */
void hf_cpu_moe_route(float *w, int32_t *experts, const float *logits,
		      size_t t0, size_t t1, size_t E, size_t k);

#endif
