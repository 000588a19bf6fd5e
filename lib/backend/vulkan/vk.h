/* lib/backend/vulkan/vk.h: the Vulkan compute device: device listing and
 * selection, device memory, uploads and downloads, recorded command
 * sequences that replay, and the ops the models run (shaders/).
 *
 * One struct hf_vk is used by one thread at a time. Ops record into a
 * struct hf_vk_seq; nothing runs until hf_vk_seq_run(), which submits the
 * sequence and waits for it. A sequence can be run again and again: it
 * reads its buffers afresh each time, and every value that changes from
 * one decode step to the next (token ids, positions) is read from a
 * device buffer, never baked into the recording.
 *
 * Environment: HF_VK_DEVICE=N picks device N of hf_vk_devices();
 * HF_VK_VALIDATE=1 turns the validation layer on (debug builds always
 * have it); HF_VK_NO_SUBGROUPS=1 uses the shared-memory reductions;
 * HF_VK_F16=1 multiplies f16 weights in float16 where the device has
 * shaderFloat16 (HF_VK_F16=0 or unset: float32, the default); the
 * pipeline cache lives in $XDG_CACHE_HOME/hf (else ~/.cache/hf). */
#ifndef HF_BACKEND_VULKAN_VK_H
#define HF_BACKEND_VULKAN_VK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tensor/dtype.h"
#include "tensor/wfmt.h"

enum hf_vk_devtype {
	HF_VK_DEV_OTHER,
	HF_VK_DEV_INTEGRATED,
	HF_VK_DEV_DISCRETE,
	HF_VK_DEV_VIRTUAL,
	HF_VK_DEV_CPU,		/* lavapipe, SwiftShader */
};

struct hf_vk_devinfo {
	char name[256];
	enum hf_vk_devtype type;
	uint32_t vendor_id, device_id;
	uint32_t api_version;	/* VK_MAKE_API_VERSION packing */
	char driver[256];	/* "llvmpipe (LLVM 15.0.6, 256 bits)", "" */
	uint64_t device_local_bytes;	/* sum of the DEVICE_LOCAL heaps */
	uint32_t subgroup_size;
	uint32_t subgroup_min, subgroup_max;	/* sizes a shader may get
						 * (Vulkan 1.3; 0: unknown) */
	bool subgroup_arith;	/* subgroupAdd/Max in compute shaders */
	bool fp16;		/* shaderFloat16 */
	bool storage16;		/* storageBuffer16BitAccess */
	bool coopmat;		/* VK_KHR_cooperative_matrix */
	bool timestamps;	/* timestamp queries on the compute queue */
	bool usable;		/* Vulkan >= 1.2 and a compute queue */
};

/* "discrete", "integrated", "virtual", "cpu", "other". */
const char *hf_vk_devtype_name(enum hf_vk_devtype t);

/* Every physical device, in the driver's order (the index HF_VK_DEVICE
 * takes). *out is malloc'd, the caller frees it; zero devices is not an
 * error (*n = 0). Fails only when there is no Vulkan loader or driver. */
int hf_vk_devices(struct hf_vk_devinfo **out, size_t *n, struct hf_err *err);

/* Options of hf_vk_open; zeroed means the defaults. */
struct hf_vk_opts {
	int device;		/* index + 1; 0: $HF_VK_DEVICE, else the best
				 * (discrete > integrated > virtual > cpu) */
	bool validate;		/* VK_LAYER_KHRONOS_validation; also on with
				 * HF_VK_VALIDATE=1 and in debug builds */
	bool no_subgroups;	/* use the shared-memory reductions */
	bool force_staging;	/* never map device memory, even on UMA */
	bool wg_attention;	/* tests: attention by whole workgroups even
				 * where a subgroup per query could run */
	size_t chunk_bytes;	/* device memory blocks (256 MiB) */
	size_t staging_bytes;	/* host-visible upload/download ring (64 MiB) */
	const char *cache_dir;	/* pipeline cache; NULL: $XDG_CACHE_HOME/hf
				 * or ~/.cache/hf; "" disables it */
	size_t max_binding;	/* bytes one shader binding may span (tests);
				 * 0: the device's maxStorageBufferRange */
	int f16_arith;		/* products of f16 weights in float16
				 * (the *_hmul shaders) where the device
				 * has shaderFloat16: 1 on, -1 off, 0:
				 * $HF_VK_F16, else off (see the
				 * Vulkan paragraph of hf-run(1) for
				 * why off is the default) */
};

struct hf_vk;

int hf_vk_open(struct hf_vk **out, const struct hf_vk_opts *opts,
	       struct hf_err *err);
/* Waits for the device, saves the pipeline cache, frees everything. All
 * buffers and sequences must have been freed first. */
void hf_vk_free(struct hf_vk *vk);

/* Borrowed, valid until hf_vk_free(). */
const struct hf_vk_devinfo *hf_vk_info(const struct hf_vk *vk);
/* Whether f16 weights are multiplied in float16 (opts.f16_arith on a
 * device with shaderFloat16). */
bool hf_vk_f16_arith(const struct hf_vk *vk);
/* Errors reported by the validation layer since open (0 without it). */
unsigned hf_vk_validation_errors(const struct hf_vk *vk);
bool hf_vk_validating(const struct hf_vk *vk);

/* ---- memory ---------------------------------------------------------- */

/* A range of device memory, suballocated from large blocks. */
struct hf_vk_buf;

int hf_vk_buf_alloc(struct hf_vk *vk, struct hf_vk_buf **out, size_t bytes,
		    struct hf_err *err);
/* bytes [off, off + bytes) of b as a buffer of its own, sharing b's
 * memory; freed (before b) with hf_vk_buf_free. Ops read a view from its
 * first byte: off must be a multiple of the element size they use. */
int hf_vk_buf_view(struct hf_vk_buf **out, struct hf_vk_buf *b, size_t off,
		   size_t bytes, struct hf_err *err);
void hf_vk_buf_free(struct hf_vk_buf *b);	/* NULL is fine */
size_t hf_vk_buf_size(const struct hf_vk_buf *b);

/* Copy host memory to/from a buffer at byte offset off. Uploads are staged
 * through the ring and may still be in flight on return (hf_vk_sync(),
 * hf_vk_seq_run() and downloads wait for them); src may be reused at once.
 * Downloads wait. Not while a sequence runs (runs are synchronous). */
int hf_vk_upload(struct hf_vk *vk, struct hf_vk_buf *dst, size_t off,
		 const void *src, size_t bytes, struct hf_err *err);
int hf_vk_download(struct hf_vk *vk, void *dst, const struct hf_vk_buf *src,
		   size_t off, size_t bytes, struct hf_err *err);
int hf_vk_sync(struct hf_vk *vk, struct hf_err *err);
/* Fill b with zero bytes (queued like an upload). */
int hf_vk_zero(struct hf_vk *vk, struct hf_vk_buf *b, struct hf_err *err);

/* Bytes of device memory held in blocks, and in live buffers. */
void hf_vk_mem_usage(const struct hf_vk *vk, size_t *held, size_t *used);

/* ---- recorded sequences ---------------------------------------------- */

struct hf_vk_seq;

/* Start recording; ops append dispatches until hf_vk_seq_end(). */
int hf_vk_seq_begin(struct hf_vk *vk, struct hf_vk_seq **out,
		    struct hf_err *err);
int hf_vk_seq_end(struct hf_vk_seq *s, struct hf_err *err);
/* Empty s and start recording again, keeping its command buffer,
 * descriptor pools and queries (cheaper than free + begin). */
int hf_vk_seq_reset(struct hf_vk_seq *s, struct hf_err *err);
/* Submit and wait; as often as wanted. */
int hf_vk_seq_run(struct hf_vk_seq *s, struct hf_err *err);
void hf_vk_seq_free(struct hf_vk_seq *s);	/* NULL is fine */

/* Per-dispatch device time of the last run, from timestamp queries: n
 * entries named by the op that recorded them ("matvec_f16_sg"). Borrowed,
 * valid until the next run or free. NULL (n = 0) without timestamps. */
struct hf_vk_timing {
	const char *op;
	double ms;
};
const struct hf_vk_timing *hf_vk_seq_timings(struct hf_vk_seq *s, size_t *n);
size_t hf_vk_seq_dispatches(const struct hf_vk_seq *s);

/* ---- ops --------------------------------------------------------------
 * Each records one dispatch into s. Buffers hold float32 unless a dtype
 * says otherwise; ids and positions are int32. Sizes are checked against
 * the buffers (HF_EINVAL naming the op and the buffer); a NULL optional
 * buffer means absent. Outputs may alias inputs only where a comment says
 * so. */

/* Whether the shaders read weights in format f (a row of ops.c's
 * vk_wfmts). */
bool hf_vk_wfmt_ok(enum hf_wfmt f);

/* y[n][out] = x[n][in] . W[out][in]^T (+ bias[out]); W in nn.Linear
 * layout, in weight format wt (one the shaders read), starting at
 * element w_off (experts of one buffer). Up to 4 tokens (decode) use the matrix-vector shader, more
 * the tiled one. W larger than one storage-buffer binding runs in parts. */
int hf_vk_op_matmul(struct hf_vk_seq *s, struct hf_vk_buf *y,
		    const struct hf_vk_buf *x, const struct hf_vk_buf *w,
		    enum hf_wfmt wt, size_t w_off, const struct hf_vk_buf *bias,
		    uint32_t n, uint32_t in, uint32_t out, struct hf_err *err);

/* The same with the kernel named: tiled = false forces matrix-vector
 * products for every token, true the tiled kernel even for n == 1. */
int hf_vk_op_matmul_kernel(struct hf_vk_seq *s, struct hf_vk_buf *y,
			   const struct hf_vk_buf *x,
			   const struct hf_vk_buf *w, enum hf_wfmt wt,
			   size_t w_off, const struct hf_vk_buf *bias,
			   uint32_t n, uint32_t in, uint32_t out, bool tiled,
			   struct hf_err *err);

/* The indexed product of a mixture-of-experts layer ("mul_mat_id"): for
 * each of the n * k (token, slot) rows r, y[r][out] = x' . W[ids[r]]^T,
 * W holding n_exp matrices (out, in) one after another (in format wt,
 * all in one binding), x' = x[r] when x_slot (x has a row per
 * slot) else x[r / k]. ids (n * k int32) are read on the device, so a
 * recording replays with new routing; an id outside [0, n_exp) gives a
 * row of zeros. Matrix-vector products, one row of y per workgroup row:
 * meant for decode steps (a long prompt reads each expert once per
 * token; hf_vk_op_matmul on the tokens grouped per expert is faster
 * there). */
int hf_vk_op_matmul_id(struct hf_vk_seq *s, struct hf_vk_buf *y,
		       const struct hf_vk_buf *x, bool x_slot,
		       const struct hf_vk_buf *w, enum hf_wfmt wt,
		       uint32_t n_exp, const struct hf_vk_buf *ids, uint32_t n,
		       uint32_t k, uint32_t in, uint32_t out,
		       struct hf_err *err);

/* A weight in one of the quantized formats (tensor/wfmt.h) on the
 * device: the buffers of its tensors t[0 .. ntensors) as stored (GPTQ's
 * t[3], g_idx, may be NULL) and its parameters; W[o][i] is row q.roff +
 * o of the stored matrix of q.ld rows (0: the rows the op reads). Each
 * tensor is read whole, from one binding. */
struct hf_vk_qweight {
	enum hf_wfmt fmt;
	const struct hf_vk_buf *t[HF_WEIGHT_NT];
	struct hf_wparam q;
};

/* Whether f is one of the quantized formats hf_vk_op_matmul_q reads. */
bool hf_vk_wfmt_quant(enum hf_wfmt f);

/* hf_vk_op_matmul_kernel for a quantized W (out, in), each element
 * dequantized in the shader as lib/quant/formats.c does (no float copy
 * of W). kernel: -1 picks as hf_vk_op_matmul does, 0 the matrix-vector
 * shader, 1 the tiled one. The tensors are checked against the shapes
 * the format gives them; HF_EUNSUPPORTED where one is over a binding
 * or an index over 32 bits. g_idx values are trusted (the binding
 * checked them). */
int hf_vk_op_matmul_q(struct hf_vk_seq *s, struct hf_vk_buf *y,
		      const struct hf_vk_buf *x,
		      const struct hf_vk_qweight *w,
		      const struct hf_vk_buf *bias, uint32_t n, uint32_t in,
		      uint32_t out, int kernel, struct hf_err *err);

/* hf_vk_op_matmul_id for a quantized stack: expert e is rows [e * out,
 * (e + 1) * out) of w (from its q.roff). */
int hf_vk_op_matmul_id_q(struct hf_vk_seq *s, struct hf_vk_buf *y,
			 const struct hf_vk_buf *x, bool x_slot,
			 const struct hf_vk_qweight *w, uint32_t n_exp,
			 const struct hf_vk_buf *ids, uint32_t n, uint32_t k,
			 uint32_t in, uint32_t out, struct hf_err *err);

/* The MoE combine: y[t][cols] = sum_j w[t][j] * x[t * k + j][cols],
 * j = 0 .. k - 1 in order, t < n. y must not alias x. */
int hf_vk_op_moe_sum(struct hf_vk_seq *s, struct hf_vk_buf *y,
		     const struct hf_vk_buf *x, const struct hf_vk_buf *w,
		     uint32_t n, uint32_t k, uint32_t cols,
		     struct hf_err *err);

/* RMSNorm over rows of cols: y = x * rsqrt(mean(x^2) + eps) * (w + w_add).
 * w may be NULL (no weight). y may alias x. */
int hf_vk_op_rms_norm(struct hf_vk_seq *s, struct hf_vk_buf *y,
		      const struct hf_vk_buf *x, const struct hf_vk_buf *w,
		      float w_add, uint32_t rows, uint32_t cols, float eps,
		      struct hf_err *err);

/* LayerNorm over rows of cols; w, b may be NULL. y may alias x. */
int hf_vk_op_layer_norm(struct hf_vk_seq *s, struct hf_vk_buf *y,
			const struct hf_vk_buf *x, const struct hf_vk_buf *w,
			const struct hf_vk_buf *b, uint32_t rows, uint32_t cols,
			float eps, struct hf_err *err);

/* Softmax of x * scale over rows of cols. y may alias x. */
int hf_vk_op_softmax(struct hf_vk_seq *s, struct hf_vk_buf *y,
		     const struct hf_vk_buf *x, uint32_t rows, uint32_t cols,
		     float scale, struct hf_err *err);

enum hf_vk_rope {
	HF_VK_ROPE_HALF,	/* rotate_half: (i, i + rot/2), llama & co */
	HF_VK_ROPE_INTERLEAVED,	/* (2i, 2i + 1), GPT-J style */
};

/* Where a tensor of n_tok rows lives inside a buffer: element off of the
 * first row, stride elements between rows (fused QKV rows). */
struct hf_vk_view {
	const struct hf_vk_buf *buf;
	uint32_t off;
	uint32_t stride;
};

struct hf_vk_rope_args {
	enum hf_vk_rope mode;
	uint32_t n_tok, n_head, head_dim, rot_dim;
	float theta_base;
	const struct hf_vk_buf *inv_freq;	/* rot_dim/2 floats, or NULL */
	float mscale;				/* 0 means 1 */
};

/* RoPE of the heads of x into y at positions pos[n_tok]; y may be x (same
 * view). */
int hf_vk_op_rope(struct hf_vk_seq *s, struct hf_vk_view y,
		  struct hf_vk_view x, const struct hf_vk_buf *pos,
		  const struct hf_vk_rope_args *a, struct hf_err *err);

struct hf_vk_attn_args {
	uint32_t n_batch;	/* batch rows; 0 means 1 */
	uint32_t n_q;		/* queries per batch row */
	uint32_t n_head, n_kv_head, head_dim;
	uint32_t n_kv;		/* keys per batch row (filled cache columns) */
	uint32_t kv_batch;	/* elements from one batch row of k, v to the
				 * next; 0: n_kv rows of their stride */
	uint32_t past;		/* query t sits at past + t, unless pos */
	bool causal;		/* key j visible iff j <= position */
	uint32_t window;	/* and position - j < window; 0 for none */
	float scale;		/* usually 1/sqrt(head_dim) */
	float softcap;		/* 0 for none */
	const struct hf_vk_buf *mask;	/* (n_batch, mask_stride) floats,
					 * 0 hides a key; or NULL */
		uint32_t mask_stride;
	int kvt;		/* k, v hold this enum hf_kv_type (kvfmt.h);
				 * views and strides still count values */
};

/* o[n_batch * n_q][n_head * head_dim] = attention of q over k, v (views:
 * rows are tokens, heads contiguous within a row). pos[n_batch * n_q]
 * gives each query's position when not NULL (a replayed decode step reads
 * it from the device), else past + t. A query that sees no key gets
 * zeros. */
int hf_vk_op_attention(struct hf_vk_seq *s, struct hf_vk_buf *o,
		       struct hf_vk_view q, struct hf_vk_view k,
		       struct hf_vk_view v, const struct hf_vk_buf *pos,
		       const struct hf_vk_attn_args *a, struct hf_err *err);

enum hf_vk_act {
	HF_VK_ACT_SILU,
	HF_VK_ACT_GELU,		/* exact, erf */
	HF_VK_ACT_GELU_TANH,	/* gelu_new / gelu_pytorch_tanh */
	HF_VK_ACT_RELU,
	HF_VK_ACT_TANH,
};

/* y[rows][cols] = act(a) * b, or act(a) when b.buf is NULL. */
int hf_vk_op_glu(struct hf_vk_seq *s, struct hf_vk_buf *y,
		 enum hf_vk_act act, struct hf_vk_view a, struct hf_vk_view b,
		 uint32_t rows, uint32_t cols, struct hf_err *err);

/* Embedding gather: y[n][cols] = table[ids[r]][cols] (f32/f16/bf16
 * table of n_table rows). The caller checks the ids; one out of range on
 * the device gives a row of zeros. */
int hf_vk_op_get_rows(struct hf_vk_seq *s, struct hf_vk_buf *y,
		      const struct hf_vk_buf *table, enum hf_dtype tt,
		      uint32_t n_table, const struct hf_vk_buf *ids,
		      uint32_t n, uint32_t cols, struct hf_err *err);

/* Scatter: y[ids[r]][cols] = x row r, r < n; y has n_table rows (the KV
 * cache write at positions read from the device). */
/* set_rows into a KV cache of type kvt (not f32): n_table columns of
 * cols values, head_dim values a head. */
int hf_vk_op_set_rows_kv(struct hf_vk_seq *s, struct hf_vk_buf *y,
			 uint32_t n_table, struct hf_vk_view x,
			 const struct hf_vk_buf *ids, uint32_t n, uint32_t cols,
			 int kvt, uint32_t head_dim, struct hf_err *err);
int hf_vk_op_set_rows(struct hf_vk_seq *s, struct hf_vk_buf *y,
		      uint32_t n_table, struct hf_vk_view x,
		      const struct hf_vk_buf *ids, uint32_t n, uint32_t cols,
		      struct hf_err *err);

/* y[i] = a[i] + b[i % nb], i < n; y may alias a. */
int hf_vk_op_add(struct hf_vk_seq *s, struct hf_vk_buf *y,
		 const struct hf_vk_buf *a, const struct hf_vk_buf *b,
		 uint32_t n, uint32_t nb, struct hf_err *err);
/* y[i] = a[i] * b[i % nb], i < n; y may alias a. */
int hf_vk_op_mul(struct hf_vk_seq *s, struct hf_vk_buf *y,
		 const struct hf_vk_buf *a, const struct hf_vk_buf *b,
		 uint32_t n, uint32_t nb, struct hf_err *err);
/* y[i] = a[i] * scale + bias, i < n; y may alias a. */
int hf_vk_op_scale(struct hf_vk_seq *s, struct hf_vk_buf *y,
		   const struct hf_vk_buf *a, uint32_t n, float scale,
		   float bias, struct hf_err *err);
/* y[dst_off + i] = a[src_off + i], i < n (elements); y must not alias a. */
int hf_vk_op_copy(struct hf_vk_seq *s, struct hf_vk_buf *y, uint32_t dst_off,
		  const struct hf_vk_buf *a, uint32_t src_off, uint32_t n,
		  struct hf_err *err);
/* Byte copies by the transfer engine: regions[i] = { src offset, dst
 * offset, bytes }, any alignment; y must not overlap a. */
int hf_vk_op_copy_bytes(struct hf_vk_seq *s, struct hf_vk_buf *y,
			const struct hf_vk_buf *a, const size_t (*regions)[3],
			uint32_t nregions, struct hf_err *err);

/* y[rows[i]][cols] += w[i] * x[i][cols] for i < n in order (w NULL: 1);
 * y has n_y rows, rows outside are skipped. The MoE combine. */
int hf_vk_op_add_rows(struct hf_vk_seq *s, struct hf_vk_buf *y, uint32_t n_y,
		      const struct hf_vk_buf *x, const struct hf_vk_buf *rows,
		      const struct hf_vk_buf *w, uint32_t n, uint32_t cols,
		      struct hf_err *err);

/* MoE routing: for each of n_tok tokens, the k most probable of n_exp
 * experts under softmax(logits), highest first: ids[n_tok][k] (int32),
 * weights[n_tok][k], renormalised to sum 1 when norm. */
int hf_vk_op_moe_topk(struct hf_vk_seq *s, struct hf_vk_buf *ids,
		      struct hf_vk_buf *weights, const struct hf_vk_buf *logits,
		      uint32_t n_tok, uint32_t n_exp, uint32_t k, bool norm,
		      struct hf_err *err);

#endif
