/* lib/backend/backend.c: what every backend shares: buffer bookkeeping,
 * op records, recording and replay. */
#include "backend/backend.h"
#include "backend/kvfmt.h"

#include <stdlib.h>
#include <string.h>

size_t hf_dtype_size(enum hf_dtype dt, size_t n)
{
	return (n * hf_dtype_bits(dt) + 7) / 8;
}

int hf_backend_supports(struct hf_backend *be, const struct hf_op *op,
			struct hf_err *err)
{
	if (!be->ops->supports_op)
		return 1;
	return be->ops->supports_op(be, op, err);
}

int hf_wbuf_plain(struct hf_wbuf *w, struct hf_buf *b, size_t rows,
		  size_t cols, struct hf_err *err)
{
	int f = hf_wfmt_of_dtype(b->dtype);

	memset(w, 0, sizeof(*w));
	if (f < 0)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "weights of dtype %s are not supported (%s are)",
				  hf_dtype_name(b->dtype), hf_wfmt_list());
	w->fmt = (enum hf_wfmt)f;
	w->rows = rows;
	w->cols = cols;
	w->t[0] = b;
	return 0;
}

void hf_wbuf_host(struct hf_weight *hw, const struct hf_wbuf *w)
{
	memset(hw, 0, sizeof(*hw));
	hw->fmt = w->fmt;
	hw->rows = w->rows;
	hw->cols = w->cols;
	hw->q = w->q;
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		hw->t[i] = w->t[i] ? w->t[i]->host : NULL;
}

size_t hf_wbuf_size(const struct hf_wbuf *w)
{
	size_t n = 0;

	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		n += w->t[i] ? w->t[i]->size : 0;
	return n;
}

int hf_wbuf_rows(struct hf_wbuf *dst, const struct hf_wbuf *w, size_t r0,
		 size_t n, struct hf_err *err)
{
	const struct hf_wfmt_traits *tr = hf_wfmt_traits(w->fmt);
	struct hf_wbuf v = *w;
	struct hf_weight hw;
	int rc = 0;

	if (r0 + n > w->rows)
		return hf_err_set(err, HF_EINTERNAL,
				  "rows [%zu, %zu) of a weight of %zu rows",
				  r0, r0 + n, w->rows);
	hf_wbuf_host(&hw, w);
	v.rows = n;
	v.q.ld = hf_weight_ld(&hw);
	if (!tr->span)
		v.q.roff += r0;
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		v.t[i] = NULL;
	for (unsigned i = 0; i < tr->ntensors && !rc; i++) {
		size_t off = 0, len, es;

		if (!w->t[i])
			continue;
		es = hf_dtype_size(w->t[i]->dtype, 1);
		len = w->t[i]->size;
		/* no span: the whole tensors, row roff on */
		if (tr->span)
			rc = tr->span(&hw, i, r0, n, &off, &len, err);
		if (!rc && (off % es || len % es))
			rc = hf_err_set(err, HF_EINTERNAL,
					"rows [%zu, %zu) of tensor %u are not whole elements",
					r0, r0 + n, i);
		if (!rc)
			rc = hf_buf_view(&v.t[i], w->t[i], off / es, len / es,
					 err);
	}
	if (rc) {
		for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
			hf_buf_free(v.t[i]);
		return rc;
	}
	*dst = v;
	return 0;
}

void hf_backend_free(struct hf_backend *be)
{
	if (be)
		be->ops->destroy(be);
}

const char *hf_backend_name(const struct hf_backend *be)
{
	return be->ops->name;
}

static int keep_err(struct hf_backend *be, const struct hf_err *e, int rc)
{
	if (!be->failed) {
		be->failed = 1;
		be->err = *e;
		if (!be->err.code)
			be->err.code = rc;
	}
	return rc;
}

int hf_backend_status(const struct hf_backend *be, struct hf_err *err)
{
	if (!be->failed)
		return 0;
	if (err)
		*err = be->err;
	return be->err.code ? be->err.code : HF_EINTERNAL;
}

int hf_backend_sync(struct hf_backend *be, struct hf_err *err)
{
	struct hf_err e = { 0 };
	int rc;

	if (be->ops->sync && !be->failed && (rc = be->ops->sync(be, &e)))
		keep_err(be, &e, rc);
	return hf_backend_status(be, err);
}

static struct hf_buf *buf_new(struct hf_backend *be, enum hf_dtype dt,
			      size_t n)
{
	struct hf_buf *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->be = be;
	b->dtype = dt;
	b->n = n;
	b->size = hf_dtype_size(dt, n);
	b->root = b;
	return b;
}

int hf_buf_alloc(struct hf_buf **out, struct hf_backend *be,
		 enum hf_dtype dt, size_t n, struct hf_err *err)
{
	struct hf_buf *b = buf_new(be, dt, n);

	*out = NULL;
	if (!b)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	b->flags = HF_BUF_OWNED;
	if (be->ops->buf_alloc(be, b, err)) {
		free(b);
		return err ? err->code : HF_ENOMEM;
	}
	*out = b;
	return 0;
}

int hf_buf_wrap(struct hf_buf **out, struct hf_backend *be, enum hf_dtype dt,
		size_t n, const void *host, struct hf_err *err)
{
	struct hf_buf *b = buf_new(be, dt, n);

	*out = NULL;
	if (!b)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	b->flags = HF_BUF_WRAPPED;
	if (be->ops->buf_wrap(be, b, host, err)) {
		free(b);
		return err ? err->code : HF_ENOMEM;
	}
	*out = b;
	return 0;
}

int hf_buf_view(struct hf_buf **out, struct hf_buf *b, size_t first,
		size_t n, struct hf_err *err)
{
	struct hf_buf *v;
	size_t off = hf_dtype_size(b->dtype, first);

	*out = NULL;
	if (first > b->n || n > b->n - first)
		return hf_err_set(err, HF_EINTERNAL,
				  "view [%zu, %zu) outside a buffer of %zu",
				  first, first + n, b->n);
	v = buf_new(b->be, b->dtype, n);
	if (!v)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	v->root = b->root;
	v->off = b->off + off;
	v->dev = b->dev;
	v->host = b->host ? (char *)b->host + off : NULL;
	v->flags = HF_BUF_VIEW;
	*out = v;
	return 0;
}

void hf_buf_free(struct hf_buf *b)
{
	if (!b)
		return;
	if (!(b->flags & HF_BUF_VIEW))
		b->be->ops->buf_free(b->be, b);
	free(b);
}

int hf_buf_upload(struct hf_buf *b, size_t off, const void *src,
		  size_t bytes, struct hf_err *err)
{
	if (off > b->size || bytes > b->size - off)
		return hf_err_set(err, HF_EINTERNAL,
				  "upload of %zu bytes at %zu past a buffer of %zu",
				  bytes, off, b->size);
	return b->be->ops->upload(b->be, b, off, src, bytes, err);
}

int hf_buf_download(const struct hf_buf *b, size_t off, void *dst,
		    size_t bytes, struct hf_err *err)
{
	if (off > b->size || bytes > b->size - off)
		return hf_err_set(err, HF_EINTERNAL,
				  "download of %zu bytes at %zu past a buffer of %zu",
				  bytes, off, b->size);
	return b->be->ops->download(b->be, b, off, dst, bytes, err);
}

int hf_graph_begin(struct hf_backend *be, struct hf_graph *g,
		   struct hf_err *err)
{
	if (be->rec)
		return hf_err_set(err, HF_EINVAL, "already recording a graph");
	memset(g, 0, sizeof(*g));
	be->rec = g;
	be->rec_failed = 0;
	return 0;
}

int hf_graph_end(struct hf_backend *be, struct hf_graph *g,
		 struct hf_err *err)
{
	be->rec = NULL;
	if (be->rec_failed)
		return hf_err_set(err, HF_ENOMEM,
				  "out of memory recording a graph");
	if (be->ops->graph_compile)
		return be->ops->graph_compile(be, g, err);
	return 0;
}

int hf_graph_replay(struct hf_backend *be, struct hf_graph *g,
		    struct hf_err *err)
{
	struct hf_err e = { 0 };
	int rc = 0;

	if (be->failed)
		return hf_backend_status(be, err);
	if (be->ops->graph_replay && g->dev)
		rc = be->ops->graph_replay(be, g, &e);
	else
		for (size_t i = 0; i < g->n && !rc; i++)
			if ((rc = be->ops->exec(be, &g->ops[i], &e)))
				hf_err_prefix(&e, "graph op %zu", i);
	if (rc)
		keep_err(be, &e, rc);
	return hf_backend_status(be, err);
}

void hf_graph_free(struct hf_backend *be, struct hf_graph *g)
{
	if (!g)
		return;
	if (g->dev && be->ops->graph_free)
		be->ops->graph_free(be, g);
	free(g->ops);
	memset(g, 0, sizeof(*g));
}

void hf_op_run(struct hf_backend *be, const struct hf_op *op)
{
	struct hf_graph *g = be->rec;
	struct hf_err e = { 0 };
	int rc;

	if (g) {
		if (g->n == g->cap) {
			size_t cap = g->cap ? 2 * g->cap : 64;
			struct hf_op *ops = realloc(g->ops, cap * sizeof(*ops));

			if (!ops)
				be->rec_failed = 1;
			else {
				g->ops = ops;
				g->cap = cap;
			}
		}
		if (g->n < g->cap)
			g->ops[g->n++] = *op;
	}
	if (!be->failed && (rc = be->ops->exec(be, op, &e)))
		keep_err(be, &e, rc);
}

void hf_op_linear(struct hf_buf *y, struct hf_buf *x, const struct hf_wbuf *w,
		  struct hf_buf *bias, size_t n)
{
	struct hf_op op = { HF_OP_MATMUL, y, { x, w->t[0], bias },
			    { (int64_t)n, (int64_t)w->cols,
			      (int64_t)w->rows } };

	op.w = *w;
	hf_op_run(y->be, &op);
}

/* The plain weight over buffer w (rows, cols); a dtype no plain format
 * stores gets the format HF_WFMT_COUNT, which every backend's exec
 * refuses (naming w's dtype) as it refuses any op it cannot run. */
static struct hf_wbuf plain_w(struct hf_buf *w, size_t rows, size_t cols)
{
	struct hf_wbuf wb;

	if (hf_wbuf_plain(&wb, w, rows, cols, NULL)) {
		wb.fmt = HF_WFMT_COUNT;
		wb.rows = rows;
		wb.cols = cols;
		wb.t[0] = w;
	}
	return wb;
}

void hf_op_matmul(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		  struct hf_buf *bias, size_t n, size_t in, size_t out)
{
	struct hf_wbuf wb = plain_w(w, out, in);

	hf_op_linear(y, x, &wb, bias, n);
}

void hf_op_rmsnorm(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		   size_t rows, size_t cols, float eps, int add_one)
{
	struct hf_op op = { HF_OP_RMSNORM, y, { x, w },
			    { (int64_t)rows, (int64_t)cols, add_one },
			    { eps } };

	hf_op_run(y->be, &op);
}

void hf_op_layernorm(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		     struct hf_buf *b, size_t rows, size_t cols, float eps)
{
	struct hf_op op = { HF_OP_LAYERNORM, y, { x, w, b },
			    { (int64_t)rows, (int64_t)cols }, { eps } };

	hf_op_run(y->be, &op);
}

void hf_op_rope(struct hf_buf *x, struct hf_buf *pos, struct hf_buf *inv_freq,
		size_t ntok, size_t heads, size_t head_dim, size_t rot_dim,
		enum hf_rope_mode mode, float scaling)
{
	struct hf_op op = { HF_OP_ROPE, x, { x, pos, inv_freq },
			    { (int64_t)ntok, (int64_t)heads,
			      (int64_t)head_dim, (int64_t)rot_dim, mode },
			    { scaling } };

	hf_op_run(x->be, &op);
}

void hf_op_softmax(struct hf_buf *x, size_t rows, size_t cols)
{
	struct hf_op op = { HF_OP_SOFTMAX, x, { x },
			    { (int64_t)rows, (int64_t)cols } };

	hf_op_run(x->be, &op);
}

void hf_op_kv_store_as(struct hf_buf *cache, struct hf_buf *x,
		       struct hf_buf *cols, size_t B, size_t T, size_t C,
		       size_t width, int kvt, size_t head_dim)
{
	struct hf_op op = { HF_OP_KV_STORE, cache, { x, cols },
			    { (int64_t)B, (int64_t)T, (int64_t)C,
			      (int64_t)width, kvt, (int64_t)head_dim } };

	hf_op_run(cache->be, &op);
}

void hf_op_kv_store(struct hf_buf *cache, struct hf_buf *x,
		    struct hf_buf *cols, size_t B, size_t T, size_t C,
		    size_t width)
{
	hf_op_kv_store_as(cache, x, cols, B, T, C, width, HF_KV_F32, 1);
}

void hf_op_attention_as(struct hf_buf *o, struct hf_buf *q,
			struct hf_buf *k, struct hf_buf *v,
			struct hf_buf *mask, struct hf_buf *cols, size_t B,
			size_t T, size_t C, size_t hq, size_t hkv, size_t d,
			int causal, size_t window, float scale, int kvt)
{
	struct hf_op op = { HF_OP_ATTENTION, o, { q, k, v, mask, cols },
			    { (int64_t)B, (int64_t)T, (int64_t)C, (int64_t)hq,
			      (int64_t)hkv, (int64_t)d, causal,
			      (int64_t)window, kvt },
			    { scale } };

	hf_op_run(o->be, &op);
}

void hf_op_attention(struct hf_buf *o, struct hf_buf *q, struct hf_buf *k,
		     struct hf_buf *v, struct hf_buf *mask, struct hf_buf *cols,
		     size_t B, size_t T, size_t C, size_t hq, size_t hkv,
		     size_t d, int causal, size_t window, float scale)
{
	hf_op_attention_as(o, q, k, v, mask, cols, B, T, C, hq, hkv, d,
			   causal, window, scale, HF_KV_F32);
}

void hf_op_glu(struct hf_buf *y, struct hf_buf *gate, struct hf_buf *up,
	       size_t rows, size_t cols, enum hf_act act)
{
	struct hf_op op = { HF_OP_GLU, y, { gate, up },
			    { (int64_t)rows, (int64_t)cols, act } };

	hf_op_run(y->be, &op);
}

void hf_op_act(struct hf_buf *y, struct hf_buf *x, size_t n, enum hf_act act)
{
	struct hf_op op = { HF_OP_ACT, y, { x }, { (int64_t)n, act } };

	hf_op_run(y->be, &op);
}

void hf_op_add(struct hf_buf *y, struct hf_buf *a, struct hf_buf *b, size_t n)
{
	struct hf_op op = { HF_OP_ADD, y, { a, b }, { (int64_t)n } };

	hf_op_run(y->be, &op);
}

void hf_op_scale(struct hf_buf *y, struct hf_buf *x, size_t n, float s)
{
	struct hf_op op = { HF_OP_SCALE, y, { x }, { (int64_t)n }, { s } };

	hf_op_run(y->be, &op);
}

void hf_op_get_rows(struct hf_buf *y, struct hf_buf *table, struct hf_buf *ids,
		    size_t n, size_t dim, size_t rows)
{
	struct hf_op op = { HF_OP_GET_ROWS, y, { table, ids },
			    { (int64_t)n, (int64_t)dim, (int64_t)rows } };

	hf_op_run(y->be, &op);
}

void hf_op_moe_route(struct hf_buf *w, struct hf_buf *experts,
		     struct hf_buf *logits, size_t T, size_t E, size_t k)
{
	struct hf_op op = { HF_OP_MOE_ROUTE, w, { logits, experts },
			    { (int64_t)T, (int64_t)E, (int64_t)k } };

	hf_op_run(w->be, &op);
}

void hf_op_add_rows(struct hf_buf *y, struct hf_buf *x, struct hf_buf *rows,
		    struct hf_buf *w, size_t n, size_t dim)
{
	struct hf_op op = { HF_OP_ADD_ROWS, y, { x, rows, w },
			    { (int64_t)n, (int64_t)dim } };

	hf_op_run(y->be, &op);
}

void hf_op_matmul_id(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		     struct hf_buf *ids, size_t n, size_t k, size_t in,
		     size_t out, size_t E, int x_slot)
{
	struct hf_op op = { HF_OP_MATMUL_ID, y, { x, w, ids },
			    { (int64_t)n, (int64_t)k, (int64_t)in,
			      (int64_t)out, (int64_t)E, x_slot != 0 } };

	op.w = plain_w(w, E * out, in);
	hf_op_run(y->be, &op);
}

void hf_op_moe_sum(struct hf_buf *y, struct hf_buf *x, struct hf_buf *w,
		   size_t n, size_t k, size_t dim)
{
	struct hf_op op = { HF_OP_MOE_SUM, y, { x, w },
			    { (int64_t)n, (int64_t)k, (int64_t)dim } };

	hf_op_run(y->be, &op);
}

void hf_op_copy(struct hf_buf *dst, struct hf_buf *src, size_t bytes)
{
	struct hf_op op = { HF_OP_COPY, dst, { src }, { (int64_t)bytes } };

	hf_op_run(dst->be, &op);
}
