/* lib/backend/vulkan/backend_vk.c: backend/backend.h on a Vulkan device.
 * Buffers live in device memory (wrapped host memory is uploaded once,
 * through the staging ring); exec() appends each op to an open command
 * sequence, submitted when the host needs a result (download, upload,
 * sync) or when it grows long; a recorded graph becomes one sequence of
 * its own that replays with a single submit.
 *
 * The first failure is returned by exec() or graph_replay() (backend.c
 * keeps it for hf_backend_status()), and kept here too: every later
 * download returns it, so a model never reads results of an op that did
 * not run. */
#include <stdlib.h>
#include <string.h>

#include "backend/kvfmt.h"
#include "backend/vulkan/backend_vk.h"
#include "backend/vulkan/vk_impl.h"
#include "core/log.h"

/* Ops queued before a submit is forced: bounds descriptor pools. */
#define MAX_PENDING 2048
#define PROF_MAX 64

struct vkbe {
	struct hf_backend be;
	struct hf_vk *vk;
	struct hf_vk_seq *pending;	/* exec'd ops not yet submitted */
	struct hf_vk_seq *spare;	/* a finished one, to reset and reuse */
	size_t npending;
	bool failed;
	struct hf_err err;		/* the first failure */
	/* device time per shader, summed over submits */
	const char *prof_name[PROF_MAX];
	double prof_ms[PROF_MAX];
	size_t nprof;
};

static struct vkbe *vkbe_of(struct hf_backend *be)
{
	return (struct vkbe *)be;
}

static void fail(struct vkbe *v, const struct hf_err *e)
{
	if (v->failed)
		return;
	v->failed = true;
	v->err = *e;
	hf_log_error("%s", e->msg);
}

static void profile(struct vkbe *v, struct hf_vk_seq *s)
{
	const struct hf_vk_timing *t;
	size_t n, j;

	t = hf_vk_seq_timings(s, &n);
	for (size_t i = 0; i < n; i++) {
		for (j = 0; j < v->nprof; j++)
			if (!strcmp(v->prof_name[j], t[i].op))
				break;
		if (j == v->nprof) {
			if (v->nprof == PROF_MAX)
				continue;
			v->prof_name[v->nprof] = t[i].op;
			v->prof_ms[v->nprof++] = 0;
		}
		v->prof_ms[j] += t[i].ms;
	}
}

/* Submit what exec() queued and wait for it. */
static int flush(struct vkbe *v, struct hf_err *err)
{
	struct hf_vk_seq *s = v->pending;
	int rc;

	if (!s)
		return 0;
	v->pending = NULL;
	v->npending = 0;
	rc = hf_vk_seq_end(s, err);
	if (!rc)
		rc = hf_vk_seq_run(s, err);
	if (!rc)
		profile(v, s);
	if (!rc && !v->spare)
		v->spare = s;
	else
		hf_vk_seq_free(s);
	return rc;
}

/* Bytes [off, off + size) of d as a view in tmp. */
static struct hf_vk_buf *narrow(struct hf_vk_buf *tmp,
				const struct hf_vk_buf *d, size_t off,
				size_t size)
{
	*tmp = *d;
	tmp->voff = d->voff + off;
	tmp->size = size;
	tmp->view = true;
	return tmp;
}

static int sticky(struct vkbe *v, struct hf_err *err)
{
	if (!v->failed)
		return 0;
	if (err)
		*err = v->err;
	return v->err.code ? v->err.code : HF_EINTERNAL;
}

/* ---- buffers ------------------------------------------------------------ */

/* A hf_vk_buf for b: its root's device buffer, narrowed to b when b is a
 * view (tmp holds the narrowed copy). NULL for NULL. */
static struct hf_vk_buf *dbuf(const struct hf_buf *b, struct hf_vk_buf *tmp)
{
	struct hf_vk_buf *root;

	if (!b)
		return NULL;
	root = b->root->dev;
	if (b == b->root || (!b->off && b->size == root->size))
		return root;
	*tmp = *root;
	tmp->voff = root->voff + b->off;
	tmp->size = b->size;
	tmp->view = true;
	return tmp;
}

static int be_alloc(struct hf_backend *be, struct hf_buf *b,
		    struct hf_err *err)
{
	struct vkbe *v = vkbe_of(be);
	struct hf_vk_buf *d;
	int rc = hf_vk_buf_alloc(v->vk, &d, b->size ? b->size : 4, err);

	if (rc)
		return rc;
	/* zeroed, as the CPU backend's are */
	if ((rc = hf_vk_zero(v->vk, d, err))) {
		hf_vk_buf_free(d);
		return rc;
	}
	b->dev = d;
	b->host = NULL;
	return 0;
}

static int be_wrap(struct hf_backend *be, struct hf_buf *b, const void *host,
		   struct hf_err *err)
{
	struct vkbe *v = vkbe_of(be);
	struct hf_vk_buf *d;
	int rc = hf_vk_buf_alloc(v->vk, &d, b->size ? b->size : 4, err);

	if (rc)
		return rc;
	if ((rc = flush(v, err)) ||
	    (rc = hf_vk_upload(v->vk, d, 0, host, b->size, err))) {
		hf_vk_buf_free(d);
		return rc;
	}
	b->dev = d;
	b->host = NULL;	/* the device copy is the buffer */
	return 0;
}

static void be_free(struct hf_backend *be, struct hf_buf *b)
{
	struct vkbe *v = vkbe_of(be);
	struct hf_err err = { 0 };

	/* queued ops may still read it */
	if (v->pending && flush(v, &err))
		fail(v, &err);
	hf_vk_buf_free(b->dev);
	b->dev = NULL;
}

static int be_upload(struct hf_backend *be, struct hf_buf *b, size_t off,
		     const void *src, size_t bytes, struct hf_err *err)
{
	struct vkbe *v = vkbe_of(be);
	struct hf_vk_buf tmp;
	int rc;

	/* ops queued before the upload read the old contents */
	if ((rc = flush(v, err)))
		return rc;
	return hf_vk_upload(v->vk, dbuf(b, &tmp), off, src, bytes, err);
}

static int be_download(struct hf_backend *be, const struct hf_buf *b,
		       size_t off, void *dst, size_t bytes,
		       struct hf_err *err)
{
	struct vkbe *v = vkbe_of(be);
	struct hf_vk_buf tmp;
	int rc;

	if ((rc = flush(v, err))) {
		fail(v, err);
		return rc;
	}
	if ((rc = sticky(v, err)))
		return rc;
	return hf_vk_download(v->vk, dst, dbuf(b, &tmp), off, bytes, err);
}

/* ---- ops ---------------------------------------------------------------- */

#define IP(i) ((uint32_t)op->ip[i])
#define D(i, t) dbuf(op->src[i], &t)

static int too_big(const struct hf_op *op, struct hf_err *err)
{
	for (int i = 0; i < 10; i++)
		if (op->ip[i] < 0 || op->ip[i] > UINT32_MAX)
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "vulkan: op %d parameter %d = %lld is outside 32 bits",
					  (int)op->code, i, (long long)op->ip[i]);
	return 0;
}

static int be_supports(struct hf_backend *be, const struct hf_op *op,
		       struct hf_err *err);

/* The device view of a quantized op->w; tmp holds narrowed views. */
static void qweight(struct hf_vk_qweight *qw, const struct hf_op *op,
		    struct hf_vk_buf tmp[HF_WEIGHT_NT])
{
	qw->fmt = op->w.fmt;
	qw->q = op->w.q;
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		qw->t[i] = dbuf(op->w.t[i], &tmp[i]);
}

/* Record op into s. */
static int record(struct hf_vk_seq *s, const struct hf_op *op,
		  struct hf_err *err)
{
	struct hf_vk_buf t0, t1, t2, t3, ty;
	struct hf_vk_buf *y = dbuf(op->dst, &ty);
	int rc = too_big(op, err);

	if (rc)
		return rc;
	if ((op->code == HF_OP_MATMUL || op->code == HF_OP_MATMUL_ID) &&
	    !be_supports(NULL, op, err))
		return err->code;
	if ((op->code == HF_OP_MATMUL || op->code == HF_OP_MATMUL_ID) &&
	    hf_vk_wfmt_quant(op->w.fmt)) {
		struct hf_vk_buf tq[HF_WEIGHT_NT];
		struct hf_vk_qweight qw;

		qweight(&qw, op, tq);
		if (op->code == HF_OP_MATMUL)
			return hf_vk_op_matmul_q(s, y, D(0, t0), &qw, D(2, t2),
						 IP(0), IP(1), IP(2), -1, err);
		return hf_vk_op_matmul_id_q(s, y, D(0, t0), op->ip[5] != 0,
					    &qw, IP(4), D(2, t2), IP(0), IP(1),
					    IP(2), IP(3), err);
	}
	switch (op->code) {
	case HF_OP_MATMUL:
		return hf_vk_op_matmul(s, y, D(0, t0), D(1, t1), op->w.fmt, 0,
				       D(2, t2), IP(0), IP(1), IP(2), err);
	case HF_OP_RMSNORM:
		return hf_vk_op_rms_norm(s, y, D(0, t0), D(1, t1),
					 op->ip[2] ? 1.0f : 0.0f, IP(0), IP(1),
					 op->fp[0], err);
	case HF_OP_LAYERNORM:
		return hf_vk_op_layer_norm(s, y, D(0, t0), D(1, t1), D(2, t2),
					   IP(0), IP(1), op->fp[0], err);
	case HF_OP_ROPE: {
		struct hf_vk_rope_args a = {
			op->ip[4] == HF_ROPE_HALF ? HF_VK_ROPE_HALF :
				HF_VK_ROPE_INTERLEAVED,
			IP(0), IP(1), IP(2), IP(3), 10000.0f, D(2, t2),
			op->fp[0],
		};
		struct hf_vk_view vx = { D(0, t0), 0, 0 };
		struct hf_vk_view vy = { y, 0, 0 };

		if (op->src[0] == op->dst)
			vy.buf = vx.buf;
		return hf_vk_op_rope(s, vy, vx, D(1, t1), &a, err);
	}
	case HF_OP_SOFTMAX:
		return hf_vk_op_softmax(s, y, D(0, t0), IP(0), IP(1), 1.0f,
					err);
	case HF_OP_KV_STORE: {
		/* c[b][cols[b * T + t]] = x[b * T + t]: a scatter per batch
		 * row at columns read from the device, so a replay writes
		 * the next column */
		const uint32_t B = IP(0), T = IP(1), C = IP(2), w = IP(3);
		const int kvt = (int)op->ip[4];
		const uint32_t hd = kvt == HF_KV_F32 ? 1 : IP(5);
		const size_t rb = hf_kv_bytes(kvt, w, hd);
		struct hf_vk_buf *cols = D(1, t1), yb, ib;

		for (uint32_t b = 0; b < B; b++) {
			struct hf_vk_view x = { D(0, t0), b * T * w, w };

			narrow(&yb, y, (size_t)b * C * rb, (size_t)C * rb);
			narrow(&ib, cols, (size_t)b * T * 4, (size_t)T * 4);
			rc = kvt == HF_KV_F32 ?
				hf_vk_op_set_rows(s, &yb, C, x, &ib, T, w, err) :
				hf_vk_op_set_rows_kv(s, &yb, C, x, &ib, T, w,
						     kvt, hd, err);
			if (rc)
				return rc;
		}
		return 0;
	}
	case HF_OP_ATTENTION: {
		/* with cols, each query's column comes from the device and
		 * the causal bound (j <= column) ends its keys, so the
		 * recording holds no cache length: all C columns are in
		 * range, the mask and causality pick the ones seen */
		const uint32_t B = IP(0), T = IP(1), C = IP(2), hkv = IP(4);
		const uint32_t d = IP(5);
		struct hf_buf *cols = op->src[4];
		struct hf_vk_buf t4;
		struct hf_vk_attn_args a = {
			.n_batch = B, .n_q = T, .n_head = IP(3),
			.n_kv_head = hkv, .head_dim = d,
			.n_kv = cols ? C : T, .kv_batch = C * hkv * d,
			.causal = op->ip[6] != 0, .window = IP(7),
			.scale = op->fp[0], .mask = D(3, t3), .mask_stride = C,
			.kvt = (int)op->ip[8],
		};
		struct hf_vk_view q = { D(0, t0), 0, 0 };
		struct hf_vk_view k = { D(1, t1), 0, 0 };
		struct hf_vk_view v = { D(2, t2), 0, 0 };

		if (cols && !a.causal)
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "vulkan: attention: cache columns from a buffer need causal attention");
		if (a.n_kv > C)
			return hf_err_set(err, HF_EINVAL,
					  "vulkan: attention: %u queries is over the %u cache columns",
					  T, C);
		return hf_vk_op_attention(s, y, q, k, v, D(4, t4), &a, err);
	}
	case HF_OP_GLU:
	case HF_OP_ACT: {
		const bool glu = op->code == HF_OP_GLU;
		const int act = (int)op->ip[glu ? 2 : 1];
		struct hf_vk_view g = { D(0, t0), 0, 0 };
		struct hf_vk_view u = { glu ? D(1, t1) : NULL, 0, 0 };

		if (act < 0 || act >= HF_ACT_COUNT)
			return hf_err_set(err, HF_EINVAL,
					  "vulkan: activation %d", act);
		/* enum hf_act and enum hf_vk_act list the same functions in
		 * the same order */
		return hf_vk_op_glu(s, y, (enum hf_vk_act)act, g, u,
				    glu ? IP(0) : 1, glu ? IP(1) : IP(0), err);
	}
	case HF_OP_ADD:
		return hf_vk_op_add(s, y, D(0, t0), D(1, t1), IP(0),
				    IP(0) ? IP(0) : 1, err);
	case HF_OP_SCALE:
		return hf_vk_op_scale(s, y, D(0, t0), IP(0), op->fp[0], 0.0f,
				      err);
	case HF_OP_GET_ROWS:
		return hf_vk_op_get_rows(s, y, D(0, t0), op->src[0]->dtype,
					 IP(2), D(1, t1), IP(0), IP(1), err);
	case HF_OP_MOE_ROUTE: {
		/* dst: weights; src1: the experts, written */
		struct hf_vk_buf *ids = dbuf(op->src[1], &t1);

		return hf_vk_op_moe_topk(s, ids, y, D(0, t0), IP(0), IP(1),
					 IP(2), true, err);
	}
	case HF_OP_ADD_ROWS:
		return hf_vk_op_add_rows(s, y, (uint32_t)(op->dst->size /
							  4 / (IP(1) ? IP(1) : 1)),
					 D(0, t0), D(1, t1), D(2, t2), IP(0),
					 IP(1), err);
	case HF_OP_MATMUL_ID:
		return hf_vk_op_matmul_id(s, y, D(0, t0), op->ip[5] != 0,
					  D(1, t1), op->w.fmt, IP(4),
					  D(2, t2), IP(0), IP(1), IP(2), IP(3),
					  err);
	case HF_OP_MOE_SUM:
		return hf_vk_op_moe_sum(s, y, D(0, t0), D(1, t1), IP(0), IP(1),
					IP(2), err);
	case HF_OP_COPY: {
		const size_t reg[1][3] = { { 0, 0, (size_t)op->ip[0] } };

		if (op->src[0]->root == op->dst->root &&
		    op->src[0]->off < op->dst->off + reg[0][2] &&
		    op->dst->off < op->src[0]->off + reg[0][2])
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "vulkan: copy between overlapping ranges of one buffer");
		return hf_vk_op_copy_bytes(s, y, D(0, t0), reg, 1, err);
	}
	default:
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: unknown op code %d",
				  (int)op->code);
	}
}

static int be_exec(struct hf_backend *be, const struct hf_op *op,
		   struct hf_err *err)
{
	struct vkbe *v = vkbe_of(be);
	int rc;

	if ((rc = sticky(v, err)))
		return rc;
	if (!v->pending && v->spare) {
		v->pending = v->spare;
		v->spare = NULL;
		if ((rc = hf_vk_seq_reset(v->pending, err))) {
			hf_vk_seq_free(v->pending);
			v->pending = NULL;
			fail(v, err);
			return rc;
		}
	}
	if (!v->pending && (rc = hf_vk_seq_begin(v->vk, &v->pending, err))) {
		fail(v, err);
		return rc;
	}
	if ((rc = record(v->pending, op, err))) {
		fail(v, err);
		hf_vk_seq_free(v->pending);
		v->pending = NULL;
		v->npending = 0;
		return rc;
	}
	if (++v->npending >= MAX_PENDING && (rc = flush(v, err)))
		fail(v, err);
	return rc;
}

/* ---- graphs -------------------------------------------------------------- */

static int be_graph_compile(struct hf_backend *be, struct hf_graph *g,
			    struct hf_err *err)
{
	struct vkbe *v = vkbe_of(be);
	struct hf_vk_seq *s;
	int rc;

	if ((rc = sticky(v, err)) || (rc = hf_vk_seq_begin(v->vk, &s, err)))
		return rc;
	for (size_t i = 0; i < g->n; i++)
		if ((rc = record(s, &g->ops[i], err))) {
			hf_vk_seq_free(s);
			return hf_err_prefix(err, "graph op %zu", i);
		}
	if ((rc = hf_vk_seq_end(s, err))) {
		hf_vk_seq_free(s);
		return rc;
	}
	g->dev = s;
	return 0;
}

static int be_graph_replay(struct hf_backend *be, struct hf_graph *g,
			   struct hf_err *err)
{
	struct vkbe *v = vkbe_of(be);
	int rc;

	if ((rc = sticky(v, err)))
		return rc;
	if ((rc = flush(v, err)) || (rc = hf_vk_seq_run(g->dev, err))) {
		fail(v, err);
		return rc;
	}
	profile(v, g->dev);
	return 0;
}

static void be_graph_free(struct hf_backend *be, struct hf_graph *g)
{
	hf_vk_seq_free(g->dev);
	g->dev = NULL;
}

static int be_sync(struct hf_backend *be, struct hf_err *err)
{
	struct vkbe *v = vkbe_of(be);
	int rc;

	if ((rc = flush(v, err)))
		fail(v, err);
	else
		rc = sticky(v, err);
	return rc;
}

static void be_destroy(struct hf_backend *be)
{
	struct vkbe *v = vkbe_of(be);
	struct hf_err err = { 0 };

	if (flush(v, &err))
		hf_log_error("%s", err.msg);
	hf_vk_seq_free(v->spare);
	hf_vk_free(v->vk);
	free(v);
}

/* The ops record() knows, with weights in the formats the shaders read
 * (quantized ones whose tensors each fit a binding) and embedding tables
 * in their dtypes. */
static int be_supports(struct hf_backend *be, const struct hf_op *op,
		       struct hf_err *err)
{
	int tf;

	switch (op->code) {
	case HF_OP_MATMUL:
	case HF_OP_MATMUL_ID:
		/* a quantized weight is read whole, each tensor from one
		 * binding (plain ones run in parts of rows) */
		if (be && hf_vk_wfmt_quant(op->w.fmt)) {
			const struct hf_vk *vk = vkbe_of(be)->vk;

			for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
				if (op->w.t[i] && op->w.t[i]->size +
				    vk->align > vk->max_range)
					return hf_err_set(err, HF_EUNSUPPORTED,
							  "vulkan: matmul: tensor %u of a %s weight (%zu bytes) is over the %llu bytes one binding may span on '%s'",
							  i, hf_wfmt_name(op->w.fmt),
							  op->w.t[i]->size,
							  (unsigned long long)vk->max_range,
							  vk->info.name), 0;
		}
		if (hf_vk_wfmt_ok(op->w.fmt))
			return 1;
		if ((unsigned)op->w.fmt >= HF_WFMT_COUNT)
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "vulkan: matmul: weights of dtype %s are not supported",
					  op->w.t[0] ? hf_dtype_name(op->w.t[0]->dtype) :
					  "?"), 0;
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: matmul: no shaders for weights in format %s",
				  hf_wfmt_name(op->w.fmt)), 0;
	case HF_OP_GET_ROWS:
		tf = op->src[0] ? hf_wfmt_of_dtype(op->src[0]->dtype) : -1;
		if (tf >= 0 && hf_vk_wfmt_ok((enum hf_wfmt)tf))
			return 1;
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: get_rows: no shader for tables of dtype %s",
				  op->src[0] ? hf_dtype_name(op->src[0]->dtype) :
				  "?"), 0;
	default:
		if ((unsigned)op->code < HF_OP_COUNT)
			return 1;
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: unknown op code %d", (int)op->code), 0;
	}
}

static const struct hf_backend_ops vk_ops = {
	.name = "vulkan",
	.buf_alloc = be_alloc,
	.buf_wrap = be_wrap,
	.buf_free = be_free,
	.upload = be_upload,
	.download = be_download,
	.exec = be_exec,
	.graph_compile = be_graph_compile,
	.graph_replay = be_graph_replay,
	.graph_free = be_graph_free,
	.sync = be_sync,
	.destroy = be_destroy,
	.supports_op = be_supports,
};

int hf_backend_vulkan_create(struct hf_backend **out, struct hf_err *err)
{
	struct vkbe *v = calloc(1, sizeof(*v));
	int rc;

	*out = NULL;
	if (!v)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = hf_vk_open(&v->vk, NULL, err))) {
		free(v);
		return rc;
	}
	v->be.ops = &vk_ops;
	v->be.priv = v;
	*out = &v->be;
	return 0;
}

bool hf_backend_vulkan_has_gpu(void)
{
	struct hf_vk_devinfo *d = NULL;
	struct hf_err err = { 0 };
	size_t n = 0;
	bool gpu = false;

	if (hf_vk_devices(&d, &n, &err))
		return false;
	for (size_t i = 0; i < n; i++)
		if (d[i].usable && (d[i].type == HF_VK_DEV_DISCRETE ||
				    d[i].type == HF_VK_DEV_INTEGRATED))
			gpu = true;
	free(d);
	return gpu;
}

struct hf_vk *hf_backend_vulkan_dev(struct hf_backend *be)
{
	if (!be || be->ops != &vk_ops)
		return NULL;
	return vkbe_of(be)->vk;
}

size_t hf_backend_vulkan_profile(struct hf_backend *be, const char **names,
				 double *ms, size_t n)
{
	struct vkbe *v;
	size_t k;

	if (!be || be->ops != &vk_ops)
		return 0;
	v = vkbe_of(be);
	k = v->nprof < n ? v->nprof : n;
	for (size_t i = 0; i < k; i++) {
		names[i] = v->prof_name[i];
		ms[i] = v->prof_ms[i];
	}
	v->nprof = 0;
	return k;
}
