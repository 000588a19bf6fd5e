/* lib/backend/backend.h: the compute interface every model is written
 * against, once. A backend owns buffers (which may live on a device) and
 * runs ops on them; the CPU backend (cpu/) runs them in host memory with
 * the thread pool, a Vulkan backend (vulkan/) on a GPU.
 *
 * How a backend is built:
 *  - Buffers. hf_buf_alloc() makes a buffer of n elements of a dtype;
 *    hf_buf_wrap() makes one over host memory the caller keeps alive (the
 *    CPU backend aliases it: mmap'd weights are never copied; a device
 *    backend uploads it). hf_buf_view() is a window [off, off + size) of
 *    another buffer (weights of a fused projection, one layer's KV cache).
 *    hf_buf_upload()/hf_buf_download() move bytes to and from the host.
 *  - Ops. Every op is one struct hf_op (an op code, a destination, up to
 *    five source buffers, integer and float parameters whose meaning is
 *    listed per op below) handed to the backend's exec(). The typed
 *    functions hf_op_*() build the record; models call those.
 *  - Graphs. Between hf_graph_begin() and hf_graph_end() every op is also
 *    appended to the graph's list of records. The ops have run by the time
 *    hf_graph_end() returns; hf_graph_replay() runs the same records again
 *    on whatever the buffers hold now (new token ids, positions). The CPU
 *    backend replays by calling exec() per record; a device backend turns
 *    the list into one command buffer (its graph_compile hook) and submits
 *    it. Parameters inside a record are fixed: what changes between
 *    replays must live in a buffer: token ids, RoPE positions and the
 *    cache columns KV_STORE and ATTENTION write and read (their `cols`
 *    source). The decoders record one decode step per cache and replay
 *    it for each later token. Mixtral's decode step replays too where
 *    its experts sit in one buffer per projection (a device backend):
 *    MOE_ROUTE, MATMUL_ID and MOE_SUM route it without the host; on
 *    the CPU it stays eager, grouping tokens per expert on the host.
 *  - Ordering. Ops run in issue order; a device backend may queue them and
 *    must finish them before hf_buf_download() returns.
 *  - Errors. An op that cannot run (a device failure, an unsupported
 *    shape) fills the backend's first error and later ops are skipped;
 *    hf_backend_status() reports it, as do hf_backend_sync(),
 *    hf_graph_replay() and (on a device) every later download.
 *
 * Dtypes: activations are float32 (HF_DTYPE_F32); token ids, positions and
 * expert ids are int32 (HF_DTYPE_I32); embedding tables may be in any
 * plain weight format's dtype (F32, F16, BF16). Matmul weights are a
 * struct hf_wbuf: a weight format (tensor/wfmt.h) and the buffers of its
 * tensors, read as stored. hf_backend_supports() says whether a backend
 * runs an op as built (a weight format it has kernels for), so that a
 * model refuses at load what would fail at its first token.
 *
 * Shapes are row-major and given in the comments as (rows, cols). */
#ifndef HF_BACKEND_BACKEND_H
#define HF_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/pool.h"
#include "tensor/dtype.h"
#include "tensor/wfmt.h"

struct hf_backend;

struct hf_buf {
	struct hf_backend *be;
	enum hf_dtype dtype;
	size_t n;		/* elements */
	size_t size;		/* bytes */
	struct hf_buf *root;	/* the buffer this views, or itself */
	size_t off;		/* bytes from the start of root */
	void *host;		/* host address of element 0, or NULL when the
				 * buffer lives only on a device */
	void *dev;		/* backend handle (of root) */
	unsigned flags;		/* HF_BUF_* */
};

enum {
	HF_BUF_OWNED = 1,	/* the backend allocated the memory */
	HF_BUF_WRAPPED = 2,	/* caller's memory (CPU aliases it) */
	HF_BUF_VIEW = 4,	/* a window of root */
};

/* A weight matrix W (rows, cols) = (out, in) in format fmt with its
 * parameters q (tensor/wfmt.h): the buffers of the format's tensors
 * (t[0] the packed weights; the rest as its traits name them, NULL past
 * ntensors or where optional). Views of rows go through hf_wbuf_rows(). */
struct hf_wbuf {
	enum hf_wfmt fmt;
	size_t rows, cols;
	struct hf_wparam q;
	struct hf_buf *t[HF_WEIGHT_NT];
};

/* Activation functions for HF_OP_ACT and HF_OP_GLU. */
enum hf_act {
	HF_ACT_SILU,		/* x * sigmoid(x) */
	HF_ACT_GELU_ERF,	/* 0.5 x (1 + erf(x / sqrt 2)): "gelu" */
	HF_ACT_GELU_TANH,	/* "gelu_new", "gelu_pytorch_tanh" */
	HF_ACT_RELU,
	HF_ACT_TANH,
	HF_ACT_COUNT
};

/* RoPE conventions. */
enum hf_rope_mode {
	HF_ROPE_HALF,		/* rotate_half (HF Llama and the GPT-NeoX
				 * layout): pairs (i, i + rot/2) */
	HF_ROPE_INTERLEAVED,	/* GPT-J / Meta layout: pairs (2i, 2i + 1) */
};

enum hf_op_code {
	/* y (n, out) = x (n, in) . W (out, in)^T + bias (out).
	 * dst y F32, src0 x F32, w the weight (src1 its t[0]), src2 bias
	 * F32 or NULL. ip: n, in, out. CPU: hf_matmul_w(). */
	HF_OP_MATMUL,
	/* y = x / sqrt(mean(x^2) + eps) * (w or 1 + w), rows of cols.
	 * dst y, src0 x (may equal dst), src1 w (cols) F32.
	 * ip: rows, cols, add_one (Gemma's (1 + w)). fp: eps. */
	HF_OP_RMSNORM,
	/* y = (x - mean) / sqrt(var + eps) * w + b, biased variance.
	 * dst y, src0 x (may equal dst), src1 w, src2 b (cols).
	 * ip: rows, cols. fp: eps. */
	HF_OP_LAYERNORM,
	/* Rotary embedding in place on x (ntok, heads * head_dim): the first
	 * rot_dim dims of each head rotate by angle pos[t] * inv_freq[i],
	 * cos and sin scaled by fp0 (HF attention_scaling, 1 mostly).
	 * dst x, src0 x, src1 pos (ntok) I32, src2 inv_freq (rot_dim / 2) F32.
	 * ip: ntok, heads, head_dim, rot_dim, mode (enum hf_rope_mode).
	 * fp: scaling. Angles and cos/sin are float32, as in HF. */
	HF_OP_ROPE,
	/* Softmax over each row in place. dst x, src0 x. ip: rows, cols. */
	HF_OP_SOFTMAX,
	/* Write new keys or values into a cache: c[b][cols[b*T + t]] =
	 * x[b*T + t]; a column outside [0, C) writes nothing.
	 	 * dst c (B, C, width), src0 x (B * T, width), src1 cols (B * T) I32.
	 * The cache holds the type kvt (backend/kvfmt.h: a column is
	 * hf_kv_bytes(kvt, width, head_dim) bytes).
	 * ip: B, T, C, width, kvt, head_dim. */
	HF_OP_KV_STORE,
	/* Scaled dot-product attention over a cache.
	 * dst o (B * T, hq * d), src0 q (B * T, hq * d), src1 k (B, C, hkv * d),
	 * src2 v (B, C, hkv * d), src3 mask (B, C) F32 (1 keep, 0 pad) or NULL,
	 * src4 cols (B * T) I32 or NULL. Query t of row b sits at cache
	 * column cols[b*T + t], which must be past + t with one past for the
	 * whole batch (the CPU reads past from cols[0]; NULL: past 0). It
	 * sees columns j < past + T with mask[b][j] != 0 and, when causal,
	 * j <= past + t, and, when window > 0, (past + t) - j < window. With
	 * cols, only causal attention is supported. Head h reads kv head
	 	 * h / (hq / hkv) (GQA, MQA). A query that sees nothing gets zeros.
	 * k and v hold the type kvt (backend/kvfmt.h).
	 * ip: B, T, C, hq, hkv, d, causal, window, kvt. fp: scale. */
	HF_OP_ATTENTION,
	/* y = act(gate) * up, (rows, cols) each; gate and up may be views.
	 * dst y, src0 gate, src1 up. ip: rows, cols, act. */
	HF_OP_GLU,
	/* y = act(x), n elements. dst y, src0 x (may equal dst). ip: n, act. */
	HF_OP_ACT,
	/* y = a + b, n elements. dst y, src0 a, src1 b. ip: n. */
	HF_OP_ADD,
	/* y = x * s. dst y, src0 x. ip: n. fp: s. */
	HF_OP_SCALE,
	/* Gather rows: y[i] = float(table[ids[i]]) for an embedding lookup
	 * (table F32/F16/BF16) or picking rows of an activation.
	 * dst y (n, dim) F32, src0 table (rows, dim), src1 ids (n) I32.
	 * ip: n, dim, rows (ids outside [0, rows) give zeros). */
	HF_OP_GET_ROWS,
	/* Mixtral routing: softmax over each row of router logits, the top k
	 * experts, their probabilities renormalised to sum 1.
	 * dst weights (T, k) F32, src0 logits (T, E) F32, src1 experts (T, k)
	 * I32 (written, best first). ip: T, E, k. */
	HF_OP_MOE_ROUTE,
	/* Scatter-add for MoE: y[rows[i]] += w[i] * x[i].
	 * dst y (?, dim), src0 x (n, dim), src1 rows (n) I32, src2 w (n) F32.
	 * ip: n, dim. */
	HF_OP_ADD_ROWS,
	/* Mixture-of-experts products ("mul_mat_id"): for each of the n * k
	 * (token, slot) rows r, y[r] = x' . W[ids[r]]^T with W the E
	 * matrices (out, in) stacked and x' = x[r] when x_slot, else
	 * x[r / k] (the slots of a token share its input). An id outside
	 * [0, E) gives a row of zeros. The ids are read when the op runs,
	 * so a recorded graph routes each replay afresh.
	 * dst y (n * k, out) F32, src0 x (n or n * k, in) F32, w the
	 * stack (E * out, in), expert e its rows [e * out, (e + 1) * out)
	 * (src1 its t[0]), src2 ids (n * k) I32 (the experts of
	 * HF_OP_MOE_ROUTE). ip: n, k, in, out, E, x_slot. CPU:
	 * hf_matmul_w() per expert on its rows gathered in order. */
	HF_OP_MATMUL_ID,
	/* The MoE combine: y[t] = sum_j w[t][j] * x[t * k + j], j = 0 ..
	 * k - 1 in order, from zero. dst y (n, dim), src0 x (n * k, dim),
	 * src1 w (n, k) F32. ip: n, k, dim. */
	HF_OP_MOE_SUM,
	/* Copy n bytes: dst <- src0. ip: bytes. The two ranges must not
	 * overlap (a device copies them with the transfer engine, which
	 * does not order overlapping bytes; Vulkan rejects it). */
	HF_OP_COPY,
	HF_OP_COUNT
};

#define HF_OP_NSRC 5

struct hf_op {
	enum hf_op_code code;
	struct hf_buf *dst;
	struct hf_buf *src[HF_OP_NSRC];
	int64_t ip[10];
	float fp[2];
	struct hf_wbuf w;	/* MATMUL, MATMUL_ID: the weight */
};

/* A recorded forward pass: a growing list of op records. */
struct hf_graph {
	struct hf_op *ops;
	size_t n, cap;
	void *dev;		/* the backend's compiled form, or NULL */
};

/* What a backend implements. Buffers: alloc fills b->dev (and b->host
 * when host-visible); wrap aliases or uploads host; free releases what
 * alloc or wrap made (never called for views). exec runs one op.
 * graph_compile (optional) prepares g->dev after the first recording;
 * graph_replay (optional, else exec per record) runs it; graph_free
 * releases g->dev. sync waits for queued work. exec, graph_replay and
 * sync return 0 or an HF_E* code with err filled. */
struct hf_backend_ops {
	const char *name;
	int (*buf_alloc)(struct hf_backend *be, struct hf_buf *b,
			 struct hf_err *err);
	int (*buf_wrap)(struct hf_backend *be, struct hf_buf *b,
			const void *host, struct hf_err *err);
	void (*buf_free)(struct hf_backend *be, struct hf_buf *b);
	int (*upload)(struct hf_backend *be, struct hf_buf *b, size_t off,
		      const void *src, size_t bytes, struct hf_err *err);
	int (*download)(struct hf_backend *be, const struct hf_buf *b,
			size_t off, void *dst, size_t bytes,
			struct hf_err *err);
	int (*exec)(struct hf_backend *be, const struct hf_op *op,
		    struct hf_err *err);
	int (*graph_compile)(struct hf_backend *be, struct hf_graph *g,
			     struct hf_err *err);
	int (*graph_replay)(struct hf_backend *be, struct hf_graph *g,
			    struct hf_err *err);
	void (*graph_free)(struct hf_backend *be, struct hf_graph *g);
	int (*sync)(struct hf_backend *be, struct hf_err *err);
	void (*destroy)(struct hf_backend *be);
	/* 1 if exec can run op (its code, formats and dtypes), else 0 and
	 * err says why. */
	int (*supports_op)(struct hf_backend *be, const struct hf_op *op,
			   struct hf_err *err);
};

struct hf_backend {
	const struct hf_backend_ops *ops;
	struct hf_graph *rec;	/* recording into this, or NULL */
	int rec_failed;		/* a record could not be appended */
	struct hf_err err;	/* the first op that failed, if failed */
	int failed;
	void *priv;
};

/* The CPU backend with nthreads threads (<= 0: all CPUs). */
int hf_backend_cpu_create(struct hf_backend **out, int nthreads,
			  struct hf_err *err);
/* Its pool, for callers that run their own loops (NULL if not CPU). */
struct hf_pool *hf_backend_cpu_pool(struct hf_backend *be);
/* The compute type of its matmuls: HF_DTYPE_F32 (the default) or
 * HF_DTYPE_BF16 (inputs rounded to bf16, float32 sums: hf_matmul_as);
 * everything else stays float32. HF_EINVAL for another backend or type. */
int hf_backend_cpu_set_compute(struct hf_backend *be, enum hf_dtype dt,
				struct hf_err *err);

void hf_backend_free(struct hf_backend *be);	/* NULL is fine */
const char *hf_backend_name(const struct hf_backend *be);
/* Wait for queued ops; 0, or the first error of any op so far. */
int hf_backend_sync(struct hf_backend *be, struct hf_err *err);
/* 0, or the first error of an op issued so far (err filled). */
int hf_backend_status(const struct hf_backend *be, struct hf_err *err);

/* Buffers. Each constructor's result is freed with hf_buf_free(); views
 * must be freed before their root. */
int hf_buf_alloc(struct hf_buf **out, struct hf_backend *be,
		 enum hf_dtype dt, size_t n, struct hf_err *err);
/* host must outlive the buffer (CPU aliases it, read only in practice). */
int hf_buf_wrap(struct hf_buf **out, struct hf_backend *be, enum hf_dtype dt,
		size_t n, const void *host, struct hf_err *err);
/* Elements [first, first + n) of b (in b's dtype). */
int hf_buf_view(struct hf_buf **out, struct hf_buf *b, size_t first,
		size_t n, struct hf_err *err);
void hf_buf_free(struct hf_buf *b);	/* NULL is fine */
int hf_buf_upload(struct hf_buf *b, size_t off, const void *src,
		  size_t bytes, struct hf_err *err);
int hf_buf_download(const struct hf_buf *b, size_t off, void *dst,
		    size_t bytes, struct hf_err *err);
/* Bytes of n elements of dt (a whole number of bytes: dtypes under 8
 * bits are packed). Weight formats count theirs with hf_wfmt_bytes(). */
size_t hf_dtype_size(enum hf_dtype dt, size_t n);

/* Whether be runs op as built: 1, or 0 with err saying why
 * (HF_EUNSUPPORTED). */
int hf_backend_supports(struct hf_backend *be, const struct hf_op *op,
			struct hf_err *err);

/* A plain weight over b (rows, cols), its format from b's dtype;
 * HF_EUNSUPPORTED if no plain format stores that dtype. */
int hf_wbuf_plain(struct hf_wbuf *w, struct hf_buf *b, size_t rows,
		  size_t cols, struct hf_err *err);
/* Rows [r0, r0 + n) of w as views (each new buffer in dst->t, freed by
 * the caller with hf_buf_free before w's); HF_EUNSUPPORTED where the
 * format cannot be cut there. */
int hf_wbuf_rows(struct hf_wbuf *dst, const struct hf_wbuf *w, size_t r0,
		 size_t n, struct hf_err *err);
/* The host view of w (CPU, or a host-visible device buffer). */
void hf_wbuf_host(struct hf_weight *hw, const struct hf_wbuf *w);
/* The size in bytes of all of w's tensors. */
size_t hf_wbuf_size(const struct hf_wbuf *w);

/* Recording. begin fails if already recording. After end, a failed
 * append (out of memory) is reported and the graph must not be replayed. */
int hf_graph_begin(struct hf_backend *be, struct hf_graph *g,
		   struct hf_err *err);
int hf_graph_end(struct hf_backend *be, struct hf_graph *g,
		 struct hf_err *err);
/* Run the records again; 0, or the first error (err filled). */
int hf_graph_replay(struct hf_backend *be, struct hf_graph *g,
		    struct hf_err *err);
void hf_graph_free(struct hf_backend *be, struct hf_graph *g);

/* Issue one op (records it while recording). A failure is kept for
 * hf_backend_status(); once one op failed, later ops are skipped. */
void hf_op_run(struct hf_backend *be, const struct hf_op *op);

/* Typed constructors for every op; see enum hf_op_code for meanings. */
/* y = x . W^T + bias for W a weight of any format (n rows of x). */
void hf_op_linear(struct hf_buf *y, struct hf_buf *x, const struct hf_wbuf *w,
		  struct hf_buf *bias, size_t n);
/* The same for a plain W (out, in) in buffer w. */
void hf_op_matmul(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		  struct hf_buf *bias, size_t n, size_t in, size_t out);
void hf_op_rmsnorm(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		   size_t rows, size_t cols, float eps, int add_one);
void hf_op_layernorm(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		     struct hf_buf *b, size_t rows, size_t cols, float eps);
void hf_op_rope(struct hf_buf *x, struct hf_buf *pos, struct hf_buf *inv_freq,
		size_t ntok, size_t heads, size_t head_dim, size_t rot_dim,
		enum hf_rope_mode mode, float scaling);
void hf_op_softmax(struct hf_buf *x, size_t rows, size_t cols);
void hf_op_kv_store(struct hf_buf *cache, struct hf_buf *x,
		    struct hf_buf *cols, size_t B, size_t T, size_t C,
		    size_t width);
void hf_op_attention(struct hf_buf *o, struct hf_buf *q, struct hf_buf *k,
		     struct hf_buf *v, struct hf_buf *mask, struct hf_buf *cols,
		     size_t B, size_t T, size_t C, size_t hq, size_t hkv,
		     size_t d, int causal, size_t window, float scale);
/* The same over a cache of another type (enum hf_kv_type). */
void hf_op_kv_store_as(struct hf_buf *cache, struct hf_buf *x,
		       struct hf_buf *cols, size_t B, size_t T, size_t C,
		       size_t width, int kvt, size_t head_dim);
void hf_op_attention_as(struct hf_buf *o, struct hf_buf *q,
			struct hf_buf *k, struct hf_buf *v,
			struct hf_buf *mask, struct hf_buf *cols, size_t B,
			size_t T, size_t C, size_t hq, size_t hkv, size_t d,
			int causal, size_t window, float scale, int kvt);
void hf_op_glu(struct hf_buf *y, struct hf_buf *gate, struct hf_buf *up,
	       size_t rows, size_t cols, enum hf_act act);
void hf_op_act(struct hf_buf *y, struct hf_buf *x, size_t n, enum hf_act act);
void hf_op_add(struct hf_buf *y, struct hf_buf *a, struct hf_buf *b, size_t n);
void hf_op_scale(struct hf_buf *y, struct hf_buf *x, size_t n, float s);
void hf_op_get_rows(struct hf_buf *y, struct hf_buf *table, struct hf_buf *ids,
		    size_t n, size_t dim, size_t rows);
void hf_op_moe_route(struct hf_buf *w, struct hf_buf *experts,
		     struct hf_buf *logits, size_t T, size_t E, size_t k);
void hf_op_add_rows(struct hf_buf *y, struct hf_buf *x, struct hf_buf *rows,
		    struct hf_buf *w, size_t n, size_t dim);
void hf_op_matmul_id(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		     struct hf_buf *ids, size_t n, size_t k, size_t in,
		     size_t out, size_t E, int x_slot);
void hf_op_moe_sum(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		   size_t n, size_t k, size_t dim);
void hf_op_copy(struct hf_buf *dst, struct hf_buf *src, size_t bytes);

#endif
