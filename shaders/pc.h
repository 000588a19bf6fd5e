/* shaders/pc.h: push constants of every shader, shared by the C backend
 * (lib/backend/vulkan) and GLSL. Only uint32_t, int32_t and float members,
 * so the C layout and GLSL's std430 push-constant layout agree; the C side
 * _Static_asserts each size. All offsets and strides count elements. */
#ifndef HF_SHADERS_PC_H
#define HF_SHADERS_PC_H

#ifdef VULKAN
#define uint32_t uint
#define int32_t int
#else
#include <stdint.h>
#endif

/* Storage-buffer bindings of every shader, and so the element offsets
 * (uint o[HF_PC_NBIND]) that open every push-constant block: 0 .. 4 as
 * each shader names them, 5 .. 8 a quantized weight's tensors t[1..4]
 * (shaders/weights.glsl). lib/backend/vulkan's VK_NBIND equals it. */
#define HF_PC_NBIND 9

/* matvec, matmul: y[t][o] = sum_i x[t][i] * W[o][i] (+ bias[o]) for the
 * outputs o0 <= o < o0 + rows; the bound W starts at row o0 (a W larger
 * than a storage-buffer binding is run in parts of rows).
 * matvec_id (mul_mat_id): row t of y uses matrix ids[t] of the n_exp
 * stacked in W (each n_out x n_in) on row t of x (x_slot) or row t / k
 * (the k slots of a token share its input); the bound W holds matrices
 * [e0, e0 + e_win) (stacks larger than a binding run in windows). */
struct hf_pc_matmul {
	uint32_t n;		/* tokens (rows of x and y) */
	uint32_t n_in;		/* columns of x and W */
	uint32_t n_out;		/* columns of y */
	uint32_t has_bias;
	uint32_t w_off;		/* first element of W (experts share a buffer) */
	uint32_t o0;		/* first output of this part */
	uint32_t rows;		/* outputs of this part */
	uint32_t k;		/* matvec_id: slots per token */
	uint32_t x_slot;	/* matvec_id: x has a row per slot */
	uint32_t n_exp;		/* matvec_id: matrices in W */
	uint32_t e0;		/* matvec_id: first matrix bound */
	uint32_t e_win;		/* matvec_id: matrices bound */
};

/* The parameters of a quantized weight (tensor/wfmt.h, struct
 * hf_wparam), after hf_pc_matmul in the matvec/matmul variants of the
 * quantized formats: W[o][i] is row roff + o of the stored matrix of ld
 * rows (roff + e * n_out + o for expert e of matvec_id), dequantized as
 * lib/quant/formats.c does. */
struct hf_pc_wq {
	uint32_t group;		/* elements per scale (bnb4: of the flat
				 * matrix) */
	uint32_t group2;	/* bnb4dq: blocks per nested absmax; fp8:
				 * rows per scale block */
	uint32_t bits;		/* gptq */
	uint32_t zoff;		/* gptq v1: 1 */
	uint32_t roff;
	uint32_t ld;
	float p0;		/* bnb4dq: nested offset; bitnet: scale */
	uint32_t has_gidx;	/* gptq: t[3] (g_idx) is bound */
};

/* rms_norm: y = x / sqrt(mean(x^2) + eps) * (w + w_add);
 * layer_norm: y = (x - mean) / sqrt(var + eps) * w + b. */
struct hf_pc_norm {
	uint32_t rows;
	uint32_t cols;
	float eps;
	uint32_t has_w;
	uint32_t has_b;
	float w_add;		/* gemma stores w - 1 */
};

/* rope: rotate the first rot_dim dims of each head of x by pos * freq. */
struct hf_pc_rope {
	uint32_t n_tok;
	uint32_t n_head;
	uint32_t head_dim;
	uint32_t rot_dim;	/* even, <= head_dim; the rest is copied */
	uint32_t x_off;
	uint32_t x_stride;	/* elements from one token to the next */
	uint32_t y_off;
	uint32_t y_stride;
	float theta_base;	/* inv_freq[i] = base^(-2i/rot_dim) ... */
	uint32_t has_inv_freq;	/* ... unless given as a buffer */
	float mscale;		/* cos and sin are multiplied by it */
};

/* softmax over the last axis of x * scale. */
struct hf_pc_softmax {
	uint32_t rows;
	uint32_t cols;
	float scale;
};

/* attention: o = softmax(q . k^T * scale [capped] [masked]) . v over a
 * cache: batch row b, query t (at position pos[b * n_q + t] when has_pos,
 * else past + t) sees keys j < n_kv with mask[b][j] != 0 (has_mask) and,
 * when causal, j <= pos, and, with a window, pos - j < window. */
struct hf_pc_attn {
	uint32_t n_batch;
	uint32_t n_q;		/* queries per batch row */
	uint32_t n_head;
	uint32_t n_kv_head;	/* divides n_head (GQA) */
	uint32_t head_dim;
	uint32_t n_kv;		/* keys present in each batch row */
	uint32_t kv_batch;	/* elements from one batch row's keys to the next */
	uint32_t past;
	uint32_t has_pos;
	uint32_t has_mask;
	uint32_t mask_stride;	/* elements per batch row of the mask */
	uint32_t causal;
	uint32_t window;	/* 0: none */
	uint32_t q_off;
	uint32_t q_stride;
	uint32_t k_off;
	uint32_t k_stride;
	uint32_t v_off;
	uint32_t v_stride;
	uint32_t o_stride;
	float scale;
	float softcap;		/* 0: none; else s = cap * tanh(s / cap) */
};

/* add_rows: y[rows[i]][c] += w[i] * x[i][c], i < n in order (MoE combine). */
struct hf_pc_add_rows {
	uint32_t n;
	uint32_t cols;
	uint32_t n_y;		/* rows of y; others are skipped */
	uint32_t has_w;
};

/* glu: y[r][c] = act(a[r][c]) * (gated ? b[r][c] : 1). */
struct hf_pc_glu {
	uint32_t rows;
	uint32_t cols;
	uint32_t gated;
	uint32_t a_off;
	uint32_t a_stride;
	uint32_t b_off;
	uint32_t b_stride;
};

/* get_rows: y[r][c] = table[ids[r]][c]; set_rows: y[ids[r]][c] = x[r][c]. */
struct hf_pc_rows {
	uint32_t n;		/* rows gathered or scattered */
	uint32_t cols;
	uint32_t n_table;	/* rows of the table; ids outside give zeros
				 * (get_rows) or are skipped (set_rows) */
	uint32_t src_off;
	uint32_t src_stride;
	uint32_t row0;		/* get_rows: the bound table starts at row0 and */
	uint32_t n_win;		/* holds n_win rows; other ids are left alone */
};

/* add, mul: y[i] = a[i] op b[i % nb]; scale: y[i] = a[i] * s + c;
 * copy: y[dst_off + i] = a[src_off + i]. */
struct hf_pc_elem {
	uint32_t n;
	uint32_t nb;
	float s;
	float c;
	uint32_t src_off;
	uint32_t dst_off;
};

/* moe_topk: per token, softmax over n_exp router logits, the k largest
 * with their probabilities (renormalised to sum 1 when norm). */
struct hf_pc_topk {
	uint32_t n_tok;
	uint32_t n_exp;
	uint32_t k;
	uint32_t norm;
};

/* moe_sum: the MoE combine, y[t][c] = sum_j w[t][j] * x[t * k + j][c],
 * j = 0 .. k - 1 in order. */
struct hf_pc_moe_sum {
	uint32_t n;		/* tokens */
	uint32_t k;		/* slots per token */
	uint32_t cols;
};

#ifdef VULKAN
#undef uint32_t
#undef int32_t
#endif

#endif
