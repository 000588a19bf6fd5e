/* lib/backend/cpu/cpu.c: the CPU backend. Buffers are host memory (wrapped
 * buffers alias the caller's, so mmap'd weights are used in place); each
 * op runs at once, split across the thread pool by rows when there is
 * enough work to pay for waking the threads. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/kvfmt.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tensor/matmul.h"

struct cpu {
	struct hf_backend be;
	struct hf_pool *pool;
	enum hf_dtype compute;	/* of the matmuls: F32 or BF16 */
};

/* Below this many float operations an op runs on the calling thread. */
#define PAR_MIN_WORK 32768

static struct cpu *cpu_of(struct hf_backend *be)
{
	return (struct cpu *)be;
}

/* Buffers of at least this many bytes are mapped straight from the
 * kernel: zero pages committed on first touch, so a KV cache or
 * workspace sized for the whole context is resident only where a run
 * writes it, and freeing one returns its pages at once. */
#define MAP_MIN (1u << 20)

/* 64-byte aligned for SIMD; at least 64 bytes so that empty buffers
 * still have an address. */
static size_t alloc_size(const struct hf_buf *b)
{
	size_t sz = (b->size + 63) / 64 * 64;

	return sz ? sz : 64;
}

static int cpu_buf_alloc(struct hf_backend *be, struct hf_buf *b,
			 struct hf_err *err)
{
	size_t sz = alloc_size(b);

	if (sz >= MAP_MIN) {
		void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return hf_err_set(err, HF_ENOMEM,
					  "out of memory allocating %zu bytes",
					  b->size);
		b->host = p;
		b->dev = p;
		return 0;
	}
	b->host = aligned_alloc(64, sz);
	if (!b->host)
		return hf_err_set(err, HF_ENOMEM,
				  "out of memory allocating %zu bytes", b->size);
	memset(b->host, 0, sz);
	b->dev = b->host;
	return 0;
}

static int cpu_buf_wrap(struct hf_backend *be, struct hf_buf *b,
			const void *host, struct hf_err *err)
{
	b->host = (void *)host;
	b->dev = b->host;
	return 0;
}

static void cpu_buf_free(struct hf_backend *be, struct hf_buf *b)
{
	if (!(b->flags & HF_BUF_OWNED))
		return;
	if (alloc_size(b) >= MAP_MIN)
		munmap(b->host, alloc_size(b));
	else
		free(b->host);
}

static int cpu_upload(struct hf_backend *be, struct hf_buf *b, size_t off,
		      const void *src, size_t bytes, struct hf_err *err)
{
	memcpy((char *)b->host + off, src, bytes);
	return 0;
}

static int cpu_download(struct hf_backend *be, const struct hf_buf *b,
			size_t off, void *dst, size_t bytes,
			struct hf_err *err)
{
	memcpy(dst, (const char *)b->host + off, bytes);
	return 0;
}

struct job {
	struct cpu *c;
	const struct hf_op *op;
	size_t items;
};

#define F(i) ((float *)op->src[i]->host)
#define FD ((float *)op->dst->host)
#define IP(i) ((size_t)op->ip[i])

/* ATTENTION's past: cols[0], the column of the first query (backend.h). */
static size_t att_past(const struct hf_op *op)
{
	const int32_t *cols = op->src[4] ? op->src[4]->host : NULL;

	return cols && cols[0] > 0 ? (size_t)cols[0] : 0;
}

/* Run work items [i0, i1) of op on thread ith. */
static void run_range(struct cpu *c, const struct hf_op *op, size_t i0,
		      size_t i1, int ith)
{
	switch (op->code) {
	case HF_OP_RMSNORM:
		hf_cpu_rmsnorm(FD, F(0), F(1), i0, i1, IP(1), op->fp[0],
			       (int)op->ip[2]);
		break;
	case HF_OP_LAYERNORM:
		hf_cpu_layernorm(FD, F(0), F(1), F(2), i0, i1, IP(1),
				 op->fp[0]);
		break;
	case HF_OP_ROPE:
		hf_cpu_rope(FD, op->src[1]->host, F(2), i0, i1, IP(1), IP(2),
			    IP(3), (int)op->ip[4], op->fp[0]);
		break;
	case HF_OP_SOFTMAX:
		hf_cpu_softmax(FD, i0, i1, IP(1));
		break;
	case HF_OP_ATTENTION:
				hf_cpu_attention(FD, F(0), F(1), F(2), (int)op->ip[8],
				 op->src[3] ? F(3) : NULL, i0, i1, IP(1),
				 IP(2), IP(3), IP(4), IP(5), att_past(op),
				 (int)op->ip[6], IP(7), op->fp[0]);
		break;
	case HF_OP_GLU:
		hf_cpu_glu(FD, F(0), F(1), i0, i1, (int)op->ip[2]);
		break;
	case HF_OP_ACT:
		for (size_t i = i0; i < i1; i++)
			FD[i] = hf_cpu_act1(F(0)[i], (int)op->ip[1]);
		break;
	case HF_OP_ADD:
		for (size_t i = i0; i < i1; i++)
			FD[i] = F(0)[i] + F(1)[i];
		break;
	case HF_OP_SCALE:
		for (size_t i = i0; i < i1; i++)
			FD[i] = F(0)[i] * op->fp[0];
		break;
	case HF_OP_GET_ROWS: {
		size_t dim = IP(1), rows = IP(2);
		const int32_t *ids = op->src[1]->host;
		struct hf_weight tab;

		/* the format was checked in cpu_exec */
		hf_weight_plain(&tab, op->src[0]->host, op->src[0]->dtype,
				rows, dim);
		for (size_t i = i0; i < i1; i++) {
			float *y = FD + i * dim;

			if (ids[i] < 0 || (size_t)ids[i] >= rows)
				memset(y, 0, dim * sizeof(float));
			else
				hf_weight_dequant(y, &tab, (size_t)ids[i], 1,
						  0, dim);
		}
		break;
	}
	case HF_OP_MOE_ROUTE:
		hf_cpu_moe_route(FD, op->src[1]->host, F(0), i0, i1, IP(1),
				 IP(2));
		break;
	default:
		break;
	}
}

static void job_fn(void *ctx, int ith, int nth)
{
	struct job *j = ctx;
	size_t b, e;

	hf_pool_split(j->items, ith, nth, &b, &e);
	if (b < e)
		run_range(j->c, j->op, b, e, ith);
}

/* MATMUL_ID: for each expert, its (token, slot) rows gathered in order,
 * one hf_matmul_as (in the compute type of MATMUL), the outputs
 * scattered back; rows of ids out of range zeroed.
 * Grouped, so each expert's weights are read once per op. */
static int matmul_id(struct cpu *c, const struct hf_op *op,
		     struct hf_err *err)
{
	size_t n = IP(0), k = IP(1), in = IP(2), out = IP(3), E = IP(4);
	size_t nk = n * k;
	const int32_t *ids = op->src[2]->host;
	struct hf_weight all, we;
	const float *x = F(0);
	float *xg = malloc((nk * in + nk * out) * sizeof(float) + 1);
	float *yg = xg + nk * in;
	size_t *rows = malloc(nk * sizeof(*rows) + 1);

	if (!xg || !rows) {
		free(xg);
		free(rows);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	hf_wbuf_host(&all, &op->w);
	for (size_t r = 0; r < nk; r++)
		if (ids[r] < 0 || (size_t)ids[r] >= E)
			memset(FD + r * out, 0, out * sizeof(float));
	for (size_t e = 0; e < E; e++) {
		size_t cnt = 0;

		for (size_t r = 0; r < nk; r++) {
			if (ids[r] != (int32_t)e)
				continue;
			memcpy(xg + cnt * in, x + (op->ip[5] ? r : r / k) * in,
			       in * sizeof(float));
			rows[cnt++] = r;
		}
		if (!cnt)
			continue;
		if (hf_weight_rows(&we, &all, e * out, out, err)) {
			free(xg);
			free(rows);
			return err->code;
		}
		hf_matmul_w(yg, xg, &we, NULL, cnt, c->compute, c->pool);
		for (size_t i = 0; i < cnt; i++)
			memcpy(FD + rows[i] * out, yg + i * out,
			       out * sizeof(float));
	}
	free(xg);
	free(rows);
	return 0;
}

/* A decode step's attention has one item per (row, kv head): 3 on
 * SmolLM2-135M, so 2 threads split it 2:1. With fewer items than twice
 * the threads and enough keys, each item's keys are cut in S splits
 * whose partial results are merged (hf_cpu_attention_split). */
struct att_split {
	const struct hf_op *op;
	float *po, *ml;
	size_t items, S;
};

static void att_split_fn(void *ctx, int ith, int nth)
{
	struct att_split *a = ctx;
	const struct hf_op *op = a->op;
	size_t b, e;

	hf_pool_split(a->items, ith, nth, &b, &e);
	if (b < e)
				hf_cpu_attention_split(a->po, a->ml, F(0), F(1), F(2),
				       (int)op->ip[8],
				       op->src[3] ? F(3) : NULL, b, e, IP(0),
				       IP(1), IP(2), IP(3), IP(4), IP(5),
				       att_past(op), (int)op->ip[6], IP(7),
				       op->fp[0], a->S);
}

/* The plain loop (head_dim over 256, over 64 query heads a kv head), on
 * float32 copies of a cache of another type. */
static int attention_ref(const struct hf_op *op, struct hf_err *err)
{
	int kvt = (int)op->ip[8];
	size_t n = IP(0) * IP(2) * IP(4) * IP(5);
	float *k = F(1), *v = F(2), *kf = NULL, *vf = NULL;

	if (kvt != HF_KV_F32) {
		kf = malloc(n * sizeof(float));
		vf = malloc(n * sizeof(float));
		if (!kf || !vf) {
			free(kf);
			free(vf);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		hf_kv_load(kvt, kf, k, n, IP(5));
		hf_kv_load(kvt, vf, v, n, IP(5));
		k = kf;
		v = vf;
	}
	hf_cpu_attention_ref(FD, F(0), k, v, op->src[3] ? F(3) : NULL, IP(0),
			     IP(1), IP(2), IP(3), IP(4), IP(5), att_past(op),
			     (int)op->ip[6], IP(7), op->fp[0]);
	free(kf);
	free(vf);
	return 0;
}

/* 1 if the op ran split, 0 if it should run whole. */
static int attention_split(struct cpu *c, const struct hf_op *op)
{
	size_t items = hf_cpu_attention_items(IP(0), IP(1), IP(4));
	size_t nth = (size_t)hf_pool_size(c->pool), rows = IP(0) * IP(1) * IP(3);
	struct att_split a = { op, NULL, NULL, 0, 0 };

	if (IP(1) != 1 || nth == 1 || items >= 2 * nth ||
	    att_past(op) + 1 < 128)
		return 0;
	a.S = (2 * nth + items - 1) / items;
	a.S = a.S > 64 ? 64 : a.S;
	a.items = a.S * items;
	a.po = malloc(a.S * rows * IP(5) * sizeof(float));
	a.ml = malloc(a.S * rows * 2 * sizeof(float));
	if (!a.po || !a.ml) {
		free(a.po);
		free(a.ml);
		return 0;
	}
	hf_pool_run(c->pool, att_split_fn, &a);
	hf_cpu_attention_merge(FD, a.po, a.ml, rows, IP(5), a.S);
	free(a.po);
	free(a.ml);
	return 1;
}

static int cpu_supports(struct hf_backend *be, const struct hf_op *op,
			struct hf_err *err);

static int cpu_exec(struct hf_backend *be, const struct hf_op *op,
		    struct hf_err *err)
{
	struct cpu *c = cpu_of(be);
	struct job j = { c, op, 0 };
	size_t work = 0;

	if ((op->code == HF_OP_MATMUL || op->code == HF_OP_MATMUL_ID) &&
	    !cpu_supports(be, op, err))
		return err->code;
	switch (op->code) {
	case HF_OP_MATMUL: {
		struct hf_weight w;

		hf_wbuf_host(&w, &op->w);
		hf_matmul_w(FD, F(0), &w, op->src[2] ? F(2) : NULL, IP(0),
			    c->compute, c->pool);
		return 0;
	}
		case HF_OP_KV_STORE: {
		size_t B = IP(0), T = IP(1), C = IP(2), w = IP(3);
		int kvt = (int)op->ip[4];
		size_t hd = kvt == HF_KV_F32 ? 1 : IP(5);
		size_t rb = hf_kv_bytes(kvt, w, hd);
		const int32_t *cols = op->src[1]->host;

		for (size_t i = 0; i < B * T; i++)
			if (cols[i] >= 0 && (size_t)cols[i] < C)
				hf_kv_store(kvt, (char *)op->dst->host +
					    (i / T * C + (size_t)cols[i]) * rb,
					    F(0) + i * w, w, hd);
		return 0;
	}
	case HF_OP_ADD_ROWS: {
		size_t n = IP(0), dim = IP(1);
		const int32_t *rows = op->src[1]->host;

		for (size_t i = 0; i < n; i++) {
			float *y = FD + (size_t)rows[i] * dim;
			const float *x = F(0) + i * dim;
			float w = F(2)[i];

			for (size_t k = 0; k < dim; k++)
				y[k] += w * x[k];
		}
		return 0;
	}
	case HF_OP_MATMUL_ID:
		return matmul_id(c, op, err);
	case HF_OP_MOE_SUM: {
		size_t n = IP(0), k = IP(1), dim = IP(2);

		/* from zero, slot by slot: with k = 2 the same sum as
		 * ADD_ROWS into zeros in expert order (one addition) */
		for (size_t t = 0; t < n; t++)
			for (size_t i = 0; i < dim; i++) {
				float s = 0.0f;

				for (size_t sl = 0; sl < k; sl++)
					s += F(1)[t * k + sl] *
						F(0)[(t * k + sl) * dim + i];
				FD[t * dim + i] = s;
			}
		return 0;
	}
	case HF_OP_COPY: {
		const char *d = op->dst->host, *sr = op->src[0]->host;

		/* rejected as on a device, so no model comes to rely on it */
		if (d < sr + IP(0) && sr < d + IP(0))
			return hf_err_set(err, HF_EINVAL,
					  "copy between overlapping ranges");
		memcpy(op->dst->host, op->src[0]->host, IP(0));
		return 0;
	}
	case HF_OP_RMSNORM:
	case HF_OP_LAYERNORM:
	case HF_OP_SOFTMAX:
		j.items = IP(0);
		work = IP(0) * IP(1) * 4;
		break;
	case HF_OP_ROPE:
		j.items = IP(0);
		work = IP(0) * IP(1) * IP(3) * 8;
		break;
	case HF_OP_ATTENTION:
		if (att_past(op) + IP(1) > IP(2))
			return hf_err_set(err, HF_EINVAL,
					  "attention: past %zu + %zu queries is over the %zu cache columns",
					  att_past(op), IP(1), IP(2));
				if (IP(5) > 256 || IP(3) / IP(4) > 64)
			return attention_ref(op, err);
		if (attention_split(c, op))
			return 0;
		j.items = hf_cpu_attention_items(IP(0), IP(1), IP(4));
		work = IP(0) * IP(1) * IP(3) * (att_past(op) + IP(1)) * IP(5) * 4;
		break;
	case HF_OP_GLU:
		j.items = IP(0) * IP(1);
		work = j.items * 8;
		break;
	case HF_OP_ACT:
	case HF_OP_ADD:
	case HF_OP_SCALE:
		j.items = IP(0);
		work = j.items;
		break;
	case HF_OP_GET_ROWS:
		if (hf_wfmt_of_dtype(op->src[0]->dtype) < 0)
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "cpu: get_rows: tables of dtype %s are not supported (%s are)",
					  hf_dtype_name(op->src[0]->dtype),
					  hf_wfmt_list());
		j.items = IP(0);
		work = IP(0) * IP(1);
		break;
	case HF_OP_MOE_ROUTE:
		j.items = IP(0);
		work = IP(0) * IP(1) * 8;
		break;
	default:
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "cpu: unknown op code %d",
				  (int)op->code);
	}
	if (work < PAR_MIN_WORK || hf_pool_size(c->pool) == 1)
		run_range(c, op, 0, j.items, 0);
	else
		hf_pool_run(c->pool, job_fn, &j);
	return 0;
}

static void cpu_destroy(struct hf_backend *be)
{
	struct cpu *c = cpu_of(be);

	hf_pool_free(c->pool);
	free(c);
}

/* Every op; any weight format (a format without kernels of this CPU's
 * ISA runs on the portable ones, through its traits); embedding tables
 * in a plain format's dtype. */
static int cpu_supports(struct hf_backend *be, const struct hf_op *op,
			struct hf_err *err)
{
	if ((unsigned)op->code >= HF_OP_COUNT)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "cpu: unknown op code %d", (int)op->code), 0;
	if ((op->code == HF_OP_MATMUL || op->code == HF_OP_MATMUL_ID) &&
	    (unsigned)op->w.fmt >= HF_WFMT_COUNT)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "cpu: matmul: weights of dtype %s are not supported (%s are)",
				  op->w.t[0] ? hf_dtype_name(op->w.t[0]->dtype) :
				  "?", hf_wfmt_list()), 0;
	if (op->code == HF_OP_GET_ROWS && op->src[0] &&
	    hf_wfmt_of_dtype(op->src[0]->dtype) < 0)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "cpu: get_rows: tables of dtype %s are not supported (%s are)",
				  hf_dtype_name(op->src[0]->dtype),
				  hf_wfmt_list()), 0;
	return 1;
}

static const struct hf_backend_ops cpu_ops = {
	.name = "cpu",
	.buf_alloc = cpu_buf_alloc,
	.buf_wrap = cpu_buf_wrap,
	.buf_free = cpu_buf_free,
	.upload = cpu_upload,
	.download = cpu_download,
	.exec = cpu_exec,
	.destroy = cpu_destroy,
	.supports_op = cpu_supports,
};

int hf_backend_cpu_create(struct hf_backend **out, int nthreads,
			  struct hf_err *err)
{
	struct cpu *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (hf_pool_create(&c->pool, nthreads, err)) {
		free(c);
		return err ? err->code : HF_ENOMEM;
	}
	c->be.ops = &cpu_ops;
	c->be.priv = c;
	c->compute = HF_DTYPE_F32;
	*out = &c->be;
	return 0;
}

int hf_backend_cpu_set_compute(struct hf_backend *be, enum hf_dtype dt,
				struct hf_err *err)
{
	if (!be || be->ops != &cpu_ops)
		return hf_err_set(err, HF_EINVAL, "bf16 compute is for the CPU "
				  "backend; '%s' computes in float32",
				  be ? hf_backend_name(be) : "(none)");
	if (dt != HF_DTYPE_F32 && dt != HF_DTYPE_BF16)
		return hf_err_set(err, HF_EINVAL, "compute type '%s': the CPU "
				  "backend computes in f32 or bf16",
				  hf_dtype_name(dt));
	cpu_of(be)->compute = dt;
	return 0;
}

struct hf_pool *hf_backend_cpu_pool(struct hf_backend *be)
{
	if (!be || be->ops != &cpu_ops)
		return NULL;
	return cpu_of(be)->pool;
}
