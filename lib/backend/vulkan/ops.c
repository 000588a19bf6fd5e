/* lib/backend/vulkan/ops.c: the ops of vk.h: check sizes against the
 * buffers (the device cannot report an out-of-bounds access), fill the
 * push constants of shaders/pc.h, pick the variant and block sizes, and
 * record the dispatch. */
#include <stdio.h>
#include <string.h>

#include "backend/kvfmt.h"
#include "backend/vulkan/vk_impl.h"

/* shaders/pc.h, by a path relative to this file: libhf's include path is
 * lib/ only */
#include "../../../shaders/pc.h"

_Static_assert(sizeof(struct hf_pc_matmul) == 48, "hf_pc_matmul layout");
_Static_assert(sizeof(struct hf_pc_moe_sum) == 12, "hf_pc_moe_sum layout");
_Static_assert(sizeof(struct hf_pc_norm) == 24, "hf_pc_norm layout");
_Static_assert(sizeof(struct hf_pc_rope) == 44, "hf_pc_rope layout");
_Static_assert(sizeof(struct hf_pc_softmax) == 12, "hf_pc_softmax layout");
_Static_assert(sizeof(struct hf_pc_attn) == 88, "hf_pc_attn layout");
_Static_assert(sizeof(struct hf_pc_add_rows) == 16, "hf_pc_add_rows layout");
_Static_assert(sizeof(struct hf_pc_glu) == 28, "hf_pc_glu layout");
_Static_assert(sizeof(struct hf_pc_rows) == 28, "hf_pc_rows layout");
_Static_assert(sizeof(struct hf_pc_elem) == 24, "hf_pc_elem layout");
_Static_assert(sizeof(struct hf_pc_topk) == 16, "hf_pc_topk layout");
_Static_assert(sizeof(struct hf_pc_wq) == 32, "hf_pc_wq layout");
_Static_assert(VK_NBIND == HF_PC_NBIND, "bindings");
_Static_assert(4 * VK_NBIND + sizeof(struct hf_pc_attn) <= VK_PC_BYTES,
	       "push constants");
_Static_assert(4 * VK_NBIND + sizeof(struct hf_pc_matmul) +
	       sizeof(struct hf_pc_wq) <= VK_PC_BYTES, "push constants");

/* Workgroup sizes: powers of two (the shared-memory reductions need it),
 * a multiple of every subgroup size met so far (4 .. 64). */
#define WG_ELEM 256
#define WG_ROW 128
#define WG_MATVEC 64
#define MATVEC_ROWS 2
#define WG_ATTN 32
#define WG_ROWS_ATTN 64
/* matmul tile: BM x BN outputs, BK deep, TM x TN per invocation */
#define MM_BM 64
#define MM_BN 64
#define MM_BK 16
#define MM_TM 4
#define MM_TN 4
/* its subgroup variant: BM x BN per workgroup of SG_WG, TM x TN per
 * subgroup tile */
#define SG_WG 64
#define SG_BM 16
#define SG_BN 32
#define SG_TM 4
#define SG_TN 4

#define seq_vk vk_seq_dev
/* a float32 or int32 binding */
#define A(buf) { (buf), 4 }

/* Whether bytes from the start of b fit one binding (vk_dispatch binds
 * from the aligned byte at or before it). */
static bool fits(const struct hf_vk_buf *b, uint64_t bytes)
{
	return b->voff % b->vk->align + bytes <= b->vk->max_range;
}

/* A view of bytes [off, off + n) of b, on the stack. */
static struct hf_vk_buf window(const struct hf_vk_buf *b, uint64_t off,
			       uint64_t n)
{
	struct hf_vk_buf v = *b;

	v.voff = b->voff + off;
	v.size = n;
	v.view = true;
	return v;
}

/* Element count n of elt bytes each must fit in b (and in one binding);
 * "what" names it. */
static int need(const char *op, const char *what, const struct hf_vk_buf *b,
		uint64_t n, uint64_t elt, struct hf_err *err)
{
	if (!b)
		return hf_err_set(err, HF_EINVAL, "vulkan: %s: no buffer for %s",
				  op, what);
	if (n * elt > hf_vk_buf_size(b))
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: %s: %s needs %llu bytes, its buffer has %zu",
				  op, what, (unsigned long long)(n * elt),
				  hf_vk_buf_size(b));
	if (n > UINT32_MAX)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: %s: %s has %llu elements, over 2^32",
				  op, what, (unsigned long long)n);
	if (!fits(b, n * elt))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: %s: %s spans %llu bytes, over the %llu bytes one binding may span on '%s'",
				  op, what, (unsigned long long)(n * elt),
				  (unsigned long long)b->vk->max_range,
				  b->vk->info.name);
	return 0;
}

/* A view of rows of len elements: the last element must be in the
 * buffer. stride 0 means len (packed rows). */
static int need_view(const char *op, const char *what,
		     struct hf_vk_view *v, uint32_t rows, uint32_t len,
		     struct hf_err *err)
{
	if (!v->stride)
		v->stride = len;
	if (!rows || !len)
		return 0;
	return need(op, what, v->buf,
		    (uint64_t)v->off + (uint64_t)(rows - 1) * v->stride + len,
		    4, err);
}

/* The weight formats the shaders read (shaders/weights.glsl), one row
 * each: whether there are matvec/matmul/get_rows variants (named
 * <shader>_<format name>), and whether a float16-product variant
 * (_hmul) exists. The quantized formats (quant) have matvec, matmul
 * and matvec_id variants only, reached through hf_vk_op_matmul_q and
 * hf_vk_op_matmul_id_q, which bind each tensor t[i] in units of elt[i]
 * bytes (the size of its dtype). A format without a row here is
 * refused by supports_op before a model binds it. */
static const struct vk_wfmt {
	bool ok, hmul, quant;
	uint8_t elt[HF_WEIGHT_NT];
} vk_wfmts[HF_WFMT_COUNT] = {
	[HF_WFMT_F32] = { true, false, false, { 4 } },
	[HF_WFMT_F16] = { true, true, false, { 2 } },
	[HF_WFMT_BF16] = { true, false, false, { 2 } },
	[HF_WFMT_INT8] = { true, false, true, { 1, 4 } },
	[HF_WFMT_BNB4] = { true, false, true, { 1, 4, 4 } },
	[HF_WFMT_BNB4DQ] = { true, false, true, { 1, 1, 4, 4, 4 } },
	[HF_WFMT_GPTQ] = { true, false, true, { 4, 4, 2, 4 } },
	[HF_WFMT_AWQ] = { true, false, true, { 4, 4, 2 } },
	[HF_WFMT_BITNET] = { true, false, true, { 1 } },
	[HF_WFMT_FP8] = { true, false, true, { 1, 4 } },
};

bool hf_vk_wfmt_ok(enum hf_wfmt f)
{
	return (unsigned)f < HF_WFMT_COUNT && vk_wfmts[f].ok;
}

bool hf_vk_wfmt_quant(enum hf_wfmt f)
{
	return hf_vk_wfmt_ok(f) && vk_wfmts[f].quant;
}

/* The suffix of the plain formats' variants (the quantized ones go
 * through the _q ops). */
static const char *wsuffix(enum hf_wfmt f)
{
	return hf_vk_wfmt_ok(f) && !vk_wfmts[f].quant ? hf_wfmt_name(f) :
		NULL;
}

/* The unit a binding of W is aligned to: one block of t[0]. */
static unsigned wbytes(enum hf_wfmt f)
{
	return hf_wfmt_traits(f)->block_bytes;
}

/* Whether f16 weights bound from byte voff, element w_off on, n_in a
 * row, take the float16-product variant: the device and the user want
 * it, the format has one, and every row starts on a word with whole
 * f16vec4 blocks (what the shaders' F16_ARITH paths assume). */
static bool hmul(struct hf_vk_seq *s, enum hf_wfmt f, size_t voff,
		 uint64_t w_off, uint32_t in)
{
	return seq_vk(s)->f16_arith && vk_wfmts[f].hmul && in % 4 == 0 &&
		(voff / 2 + w_off) % 2 == 0;
}

static const char *variant(struct hf_vk_seq *s, char *buf, size_t n,
			   const char *base)
{
	snprintf(buf, n, "%.24s%s", base, seq_vk(s)->subgroups ? "_sg" : "");
	return buf;
}

static uint32_t cdiv(uint64_t a, uint64_t b)
{
	return (uint32_t)((a + b - 1) / b);
}

/* Workgroups for n items of a grid-stride shader: enough to fill a GPU,
 * few on a CPU driver, where each workgroup costs microseconds. */
static uint32_t egroups(struct hf_vk_seq *s, uint64_t n)
{
	uint32_t cap = seq_vk(s)->info.type == HF_VK_DEV_CPU ? 64 : 4096;
	uint32_t g = cdiv(n, WG_ELEM);

	return g < cap ? g : cap;
}

/* Rows of a part of W (or of a table) of row_bytes each that one binding
 * holds: all of them when they fit. 0 if not even one row does. */
static uint64_t part_rows(const struct hf_vk_buf *b, uint64_t rows,
			  uint64_t row_bytes)
{
	uint64_t per;

	if (fits(b, rows * row_bytes))
		return rows;
	per = (b->vk->max_range - b->vk->align) / row_bytes;
	return per < rows ? per : rows;
}

/* Rows of W per matvec workgroup: subgroups take two groups of four
 * rows each per workgroup, so a workgroup does enough to pay for itself
 * on a CPU driver. */
static uint32_t matvec_rows(struct hf_vk_seq *s)
{
	const uint32_t sg = seq_vk(s)->info.subgroup_size;

	return seq_vk(s)->subgroups && sg && sg <= WG_MATVEC ?
		8 * (WG_MATVEC / sg) : MATVEC_ROWS;
}

/* One dispatch of the product variant base (tiled: matmul_*, else
 * matvec_*) over rows outputs of n tokens. */
static int mm_dispatch(struct hf_vk_seq *s, const char *base, bool tiled,
		       const struct vk_arg *b, uint32_t nb, const void *pc,
		       size_t pcsize, uint32_t rows, uint32_t n,
		       struct hf_err *err)
{
	char name[32];

	variant(s, name, sizeof(name), base);
	if (tiled && seq_vk(s)->subgroups) {
		const uint32_t spec[] = {
			SG_WG, SG_BM, SG_BN, 1, SG_TM, SG_TN,
		};

		return vk_dispatch(s, name, spec, 6, b, nb, pc, pcsize,
				   cdiv(rows, SG_BN), cdiv(n, SG_BM), err);
	} else if (tiled) {
		const uint32_t spec[] = {
			(MM_BM / MM_TM) * (MM_BN / MM_TN), MM_BM, MM_BN,
			MM_BK, MM_TM, MM_TN,
		};

		return vk_dispatch(s, name, spec, 6, b, nb, pc, pcsize,
				   cdiv(rows, MM_BN), cdiv(n, MM_BM), err);
	} else {
		const uint32_t wr = matvec_rows(s);
		const uint32_t spec[] = { WG_MATVEC, wr };

		return vk_dispatch(s, name, spec, 2, b, nb, pc, pcsize,
				   cdiv(rows, wr), n, err);
	}
}

int hf_vk_op_matmul_kernel(struct hf_vk_seq *s, struct hf_vk_buf *y,
			   const struct hf_vk_buf *x,
			   const struct hf_vk_buf *w, enum hf_wfmt wt,
			   size_t w_off, const struct hf_vk_buf *bias,
			   uint32_t n, uint32_t in, uint32_t out, bool tiled,
			   struct hf_err *err)
{
	const char *sfx = wsuffix(wt), *op = "matmul";
	const uint64_t eb = wbytes(wt), row = hf_wfmt_row_bytes(wt, in);
	uint64_t per;
	char base[32];
	int rc;

	if (!sfx)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: matmul: weights in format %s are not supported",
				  hf_wfmt_name(wt));
	if ((rc = need(op, "x", x, (uint64_t)n * in, 4, err)) ||
	    (rc = need(op, "y", y, (uint64_t)n * out, 4, err)) ||
	    (bias && (rc = need(op, "bias", bias, out, 4, err))))
		return rc;
	if (!w || hf_wfmt_row_bytes(wt, w_off) + (uint64_t)out * row > w->size)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: matmul: W of %u x %u at element %zu is past the end of its %zu-byte buffer",
				  out, in, w_off, w ? w->size : 0);
	/* W too big for one binding runs in parts of whole rows */
	per = part_rows(w, out, row);
	if (!per && out)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: matmul: one row of W (%llu bytes) is over the %llu bytes one binding may span",
				  (unsigned long long)row,
				  (unsigned long long)w->vk->max_range);
	for (uint32_t o0 = 0; o0 < out; o0 += (uint32_t)per) {
		const uint32_t rows = out - o0 < per ? out - o0 : (uint32_t)per;
		struct hf_vk_buf wv = window(w, hf_wfmt_row_bytes(wt, w_off) +
					     (uint64_t)o0 * row, rows * row);
		const struct vk_arg b[4] = { { &wv, eb }, A(x), A(y), A(bias) };
		struct hf_pc_matmul pc = { n, in, out, bias != NULL, 0, o0,
					   rows, 0, 0, 0, 0, 0 };

		snprintf(base, sizeof(base), "%s_%s%s",
			 tiled ? "matmul" : "matvec", sfx,
			 hmul(s, wt, wv.voff, 0, in) ? "_hmul" : "");
		if ((rc = mm_dispatch(s, base, tiled, b, 4, &pc, sizeof(pc),
				      rows, n, err)))
			return rc;
	}
	return 0;
}

int hf_vk_op_matmul(struct hf_vk_seq *s, struct hf_vk_buf *y,
		    const struct hf_vk_buf *x, const struct hf_vk_buf *w,
		    enum hf_wfmt wt, size_t w_off, const struct hf_vk_buf *bias,
		    uint32_t n, uint32_t in, uint32_t out, struct hf_err *err)
{
	/* a few tokens read W once each faster than tiles fill */
	return hf_vk_op_matmul_kernel(s, y, x, w, wt, w_off, bias, n, in, out,
				      n > 4, err);
}

int hf_vk_op_matmul_id(struct hf_vk_seq *s, struct hf_vk_buf *y,
		       const struct hf_vk_buf *x, bool x_slot,
		       const struct hf_vk_buf *w, enum hf_wfmt wt,
		       uint32_t n_exp, const struct hf_vk_buf *ids, uint32_t n,
		       uint32_t k, uint32_t in, uint32_t out,
		       struct hf_err *err)
{
	const char *sfx = wsuffix(wt), *op = "matmul_id";
	const uint64_t eb = wbytes(wt), nk = (uint64_t)n * k;
	const uint64_t mat = (uint64_t)out * hf_wfmt_row_bytes(wt, in);
	const uint32_t wr = matvec_rows(s);
	const uint32_t spec[] = { WG_MATVEC, wr };
	uint64_t per;
	char name[32], base[32];
	int rc;

	if (!sfx)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: matmul_id: weights in format %s are not supported",
				  hf_wfmt_name(wt));
	if (!k)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: matmul_id: 0 slots per token");
	if (nk > UINT32_MAX)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: matmul_id: %u tokens x %u slots is over 2^32",
				  n, k);
	if ((rc = need(op, "x", x, (x_slot ? nk : n) * in, 4, err)) ||
	    (rc = need(op, "y", y, nk * out, 4, err)) ||
	    (rc = need(op, "ids", ids, nk, 4, err)))
		return rc;
	if (!w || (uint64_t)n_exp * mat > w->size)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: matmul_id: %u matrices of %u x %u are past the end of W's %zu-byte buffer",
				  n_exp, out, in, w ? w->size : 0);
	/* the stack in windows of whole matrices when it is over one
	 * binding: the rows of each window's ids, one dispatch each */
	per = part_rows(w, n_exp, mat);
	if (!per && n_exp)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: matmul_id: one matrix (%llu bytes) is over the %llu bytes one binding may span",
				  (unsigned long long)mat,
				  (unsigned long long)w->vk->max_range);
	for (uint32_t e0 = 0; e0 < n_exp || e0 == 0; e0 += (uint32_t)per) {
		const uint32_t ew = n_exp - e0 < per ? n_exp - e0 :
			(uint32_t)per;
		struct hf_vk_buf wv = window(w, (uint64_t)e0 * mat,
					     (uint64_t)ew * mat);
		const struct vk_arg b[5] = {
			{ &wv, (uint32_t)eb }, A(x), A(y), A(NULL), A(ids),
		};
		struct hf_pc_matmul pc = { (uint32_t)nk, in, out, 0, 0, 0, out,
					   k, x_slot, n_exp, e0, ew };

		snprintf(base, sizeof(base), "matvec_id_%s%s", sfx,
			 hmul(s, wt, wv.voff, 0, in) ? "_hmul" : "");
		if ((rc = vk_dispatch(s, variant(s, name, sizeof(name), base),
				      spec, 2, b, 5, &pc, sizeof(pc),
				      cdiv(out, wr), (uint32_t)nk, err)))
			return rc;
		if (!per)
			break;
	}
	return 0;
}

/* ---- quantized weights ---------------------------------------------------- */

static const char *const tnames[HF_WEIGHT_NT] = {
	"t[0]", "t[1]", "t[2]", "t[3]", "t[4]",
};

/* Check the tensors of a quantized W (in columns, rows rows read from
 * q.roff) against the sizes its format gives them, and fill the
 * bindings (0 and 5 .. 8) and the parameters the shaders read. */
static int qweight(const char *op, const struct hf_vk_qweight *w,
		   uint32_t in, uint64_t rows, struct vk_arg *b,
		   struct hf_pc_wq *pq, struct hf_err *err)
{
	const struct hf_wparam *q = &w->q;
	const uint64_t R = (uint64_t)q->roff + rows;
	const uint64_t ld = q->ld ? q->ld : R, e = R * in;
	const char *fn = hf_wfmt_name(w->fmt);
	uint64_t bytes[HF_WEIGHT_NT] = { 0 };
	bool opt3 = false;
	int rc;

	if (!hf_vk_wfmt_quant(w->fmt))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: %s: no quantized shaders for weights in format %s",
				  op, fn);
	if (R > ld || ld > UINT32_MAX || q->roff > UINT32_MAX)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: %s: rows [%zu, %llu) of a %s weight of %llu rows",
				  op, q->roff, (unsigned long long)R, fn,
				  (unsigned long long)ld);
	if (e > UINT32_MAX)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: %s: a %s weight of %llu x %u elements, over 2^32",
				  op, fn, (unsigned long long)R, in);
	switch (w->fmt) {
	case HF_WFMT_INT8:
		bytes[0] = e;
		bytes[1] = R * 4;
		break;
	case HF_WFMT_BNB4:
	case HF_WFMT_BNB4DQ: {
		const bool dq = w->fmt == HF_WFMT_BNB4DQ;
		uint64_t nb;

		if (!q->group || (dq && !q->group2))
			goto bad;
		nb = (e + q->group - 1) / q->group;
		bytes[0] = (e + 1) / 2;
		bytes[1] = dq ? nb : nb * 4;
		bytes[2] = 16 * 4;
		if (dq) {
			bytes[3] = (nb + q->group2 - 1) / q->group2 * 4;
			bytes[4] = 256 * 4;
		}
		break;
	}
	case HF_WFMT_GPTQ: {
		const uint64_t bits = q->bits;
		uint64_t G;

		if ((bits != 2 && bits != 3 && bits != 4 && bits != 8) ||
		    in * bits % 32 || ld * bits % 32 ||
		    (!w->t[3] && !q->group))
			goto bad;
		/* with g_idx the groups are as many as the scales hold */
		G = w->t[3] ? (w->t[2] ? w->t[2]->size / (ld * 2) : 0) :
			(in + q->group - 1) / q->group;
		if (!G)
			goto bad;
		bytes[0] = in * bits / 32 * ld * 4;
		bytes[1] = G * (ld * bits / 32) * 4;
		bytes[2] = G * ld * 2;
		bytes[3] = w->t[3] ? (uint64_t)in * 4 : 0;
		opt3 = true;
		break;
	}
	case HF_WFMT_AWQ: {
		uint64_t G;

		if (ld % 8 || !q->group)
			goto bad;
		G = (in + q->group - 1) / q->group;
		bytes[0] = (uint64_t)in * (ld / 8) * 4;
		bytes[1] = G * (ld / 8) * 4;
		bytes[2] = G * ld * 2;
		break;
	}
	case HF_WFMT_BITNET:
		if (ld % 4)
			goto bad;
		bytes[0] = ld / 4 * in;
		break;
	case HF_WFMT_FP8:
		if (!q->group || !q->group2)
			goto bad;
		bytes[0] = e;
		bytes[1] = (R + q->group2 - 1) / q->group2 *
			   ((in + q->group - 1) / q->group) * 4;
		break;
	default:
		goto bad;
	}
	for (unsigned i = 0; i < hf_wfmt_traits(w->fmt)->ntensors; i++) {
		const uint32_t elt = vk_wfmts[w->fmt].elt[i];

		if (!w->t[i] && opt3 && i == 3)
			continue;
		if ((rc = need(op, tnames[i], w->t[i],
			       (bytes[i] + elt - 1) / elt, elt, err)))
			return rc;
		b[i ? 4 + i : 0] = (struct vk_arg){ w->t[i], elt };
	}
	*pq = (struct hf_pc_wq){
		(uint32_t)q->group, (uint32_t)q->group2, q->bits, q->zoff,
		(uint32_t)q->roff, (uint32_t)ld, q->p0, w->t[3] != NULL,
	};
	return 0;
bad:
	return hf_err_set(err, HF_EINVAL,
			  "vulkan: %s: a %s weight of %llu x %u with group %zu, group2 %zu, bits %u cannot be read",
			  op, fn, (unsigned long long)ld, in, q->group,
			  q->group2, q->bits);
}

/* The push constants of the quantized variants. */
struct pc_q {
	struct hf_pc_matmul p;
	struct hf_pc_wq q;
};

int hf_vk_op_matmul_q(struct hf_vk_seq *s, struct hf_vk_buf *y,
		      const struct hf_vk_buf *x,
		      const struct hf_vk_qweight *w,
		      const struct hf_vk_buf *bias, uint32_t n, uint32_t in,
		      uint32_t out, int kernel, struct hf_err *err)
{
	const char *op = "matmul";
	const bool tiled = kernel < 0 ? n > 4 : kernel != 0;
	struct vk_arg b[VK_NBIND] = {
		A(NULL), A(x), A(y), A(bias), A(NULL),
		A(NULL), A(NULL), A(NULL), A(NULL),
	};
	struct pc_q pc = { { n, in, out, bias != NULL, 0, 0, out, 0, 0, 0, 0,
			     0 } };
	char base[32];
	int rc;

	if ((rc = need(op, "x", x, (uint64_t)n * in, 4, err)) ||
	    (rc = need(op, "y", y, (uint64_t)n * out, 4, err)) ||
	    (bias && (rc = need(op, "bias", bias, out, 4, err))) ||
	    (rc = qweight(op, w, in, out, b, &pc.q, err)))
		return rc;
	snprintf(base, sizeof(base), "%s_%s", tiled ? "matmul" : "matvec",
		 hf_wfmt_name(w->fmt));
	return mm_dispatch(s, base, tiled, b, VK_NBIND, &pc, sizeof(pc), out,
			   n, err);
}

int hf_vk_op_matmul_id_q(struct hf_vk_seq *s, struct hf_vk_buf *y,
			 const struct hf_vk_buf *x, bool x_slot,
			 const struct hf_vk_qweight *w, uint32_t n_exp,
			 const struct hf_vk_buf *ids, uint32_t n, uint32_t k,
			 uint32_t in, uint32_t out, struct hf_err *err)
{
	const char *op = "matmul_id";
	const uint64_t nk = (uint64_t)n * k;
	const uint32_t wr = matvec_rows(s);
	const uint32_t spec[] = { WG_MATVEC, wr };
	struct vk_arg b[VK_NBIND] = {
		A(NULL), A(x), A(y), A(NULL), A(ids),
		A(NULL), A(NULL), A(NULL), A(NULL),
	};
	struct pc_q pc;
	char name[32], base[32];
	int rc;

	if (!k)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: matmul_id: 0 slots per token");
	if (nk > UINT32_MAX)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: matmul_id: %u tokens x %u slots is over 2^32",
				  n, k);
	if ((rc = need(op, "x", x, (x_slot ? nk : n) * in, 4, err)) ||
	    (rc = need(op, "y", y, nk * out, 4, err)) ||
	    (rc = need(op, "ids", ids, nk, 4, err)) ||
	    (rc = qweight(op, w, in, (uint64_t)n_exp * out, b, &pc.q, err)))
		return rc;
	/* the whole stack in one window */
	pc.p = (struct hf_pc_matmul){ (uint32_t)nk, in, out, 0, 0, 0, out, k,
				      x_slot, n_exp, 0, n_exp };
	snprintf(base, sizeof(base), "matvec_id_%s", hf_wfmt_name(w->fmt));
	return vk_dispatch(s, variant(s, name, sizeof(name), base), spec, 2,
			   b, VK_NBIND, &pc, sizeof(pc), cdiv(out, wr),
			   (uint32_t)nk, err);
}

int hf_vk_op_moe_sum(struct hf_vk_seq *s, struct hf_vk_buf *y,
		     const struct hf_vk_buf *x, const struct hf_vk_buf *w,
		     uint32_t n, uint32_t k, uint32_t cols,
		     struct hf_err *err)
{
	const struct vk_arg b[3] = { A(x), A(w), A(y) };
	const uint32_t spec[] = { WG_ELEM };
	struct hf_pc_moe_sum pc = { n, k, cols };
	int rc;

	if ((rc = need("moe_sum", "x", x, (uint64_t)n * k * cols, 4, err)) ||
	    (rc = need("moe_sum", "w", w, (uint64_t)n * k, 4, err)) ||
	    (rc = need("moe_sum", "y", y, (uint64_t)n * cols, 4, err)))
		return rc;
	return vk_dispatch(s, "moe_sum_f32", spec, 1, b, 3, &pc, sizeof(pc),
			   egroups(s, (uint64_t)n * cols), 1, err);
}

int hf_vk_op_rms_norm(struct hf_vk_seq *s, struct hf_vk_buf *y,
		      const struct hf_vk_buf *x, const struct hf_vk_buf *w,
		      float w_add, uint32_t rows, uint32_t cols, float eps,
		      struct hf_err *err)
{
	struct hf_pc_norm pc = { rows, cols, eps, w != NULL, 0, w_add };
	const struct vk_arg b[3] = { A(x), A(w), A(y) };
	const uint32_t spec[] = { WG_ROW };
	char name[32];
	int rc;

	if ((rc = need("rms_norm", "x", x, (uint64_t)rows * cols, 4, err)) ||
	    (rc = need("rms_norm", "y", y, (uint64_t)rows * cols, 4, err)) ||
	    (w && (rc = need("rms_norm", "w", w, cols, 4, err))))
		return rc;
	return vk_dispatch(s, variant(s, name, sizeof(name), "rms_norm_f32"),
			   spec, 1, b, 3, &pc, sizeof(pc), rows, 1, err);
}

int hf_vk_op_layer_norm(struct hf_vk_seq *s, struct hf_vk_buf *y,
			const struct hf_vk_buf *x, const struct hf_vk_buf *w,
			const struct hf_vk_buf *bb, uint32_t rows,
			uint32_t cols, float eps, struct hf_err *err)
{
	struct hf_pc_norm pc = { rows, cols, eps, w != NULL, bb != NULL, 0 };
	const struct vk_arg b[4] = { A(x), A(w), A(y), A(bb) };
	const uint32_t spec[] = { WG_ROW };
	const char *op = "layer_norm";
	char name[32];
	int rc;

	if ((rc = need(op, "x", x, (uint64_t)rows * cols, 4, err)) ||
	    (rc = need(op, "y", y, (uint64_t)rows * cols, 4, err)) ||
	    (w && (rc = need(op, "w", w, cols, 4, err))) ||
	    (bb && (rc = need(op, "b", bb, cols, 4, err))))
		return rc;
	return vk_dispatch(s, variant(s, name, sizeof(name), "layer_norm_f32"),
			   spec, 1, b, 4, &pc, sizeof(pc), rows, 1, err);
}

int hf_vk_op_softmax(struct hf_vk_seq *s, struct hf_vk_buf *y,
		     const struct hf_vk_buf *x, uint32_t rows, uint32_t cols,
		     float scale, struct hf_err *err)
{
	struct hf_pc_softmax pc = { rows, cols, scale };
	const struct vk_arg b[2] = { A(x), A(y) };
	const uint32_t spec[] = { WG_ROW };
	char name[32];
	int rc;

	if ((rc = need("softmax", "x", x, (uint64_t)rows * cols, 4, err)) ||
	    (rc = need("softmax", "y", y, (uint64_t)rows * cols, 4, err)))
		return rc;
	return vk_dispatch(s, variant(s, name, sizeof(name), "softmax_f32"),
			   spec, 1, b, 2, &pc, sizeof(pc), rows, 1, err);
}

int hf_vk_op_rope(struct hf_vk_seq *s, struct hf_vk_view y,
		  struct hf_vk_view x, const struct hf_vk_buf *pos,
		  const struct hf_vk_rope_args *a, struct hf_err *err)
{
	const uint32_t row = a->n_head * a->head_dim;
	struct hf_pc_rope pc;
	const struct vk_arg b[4] = {
		A(x.buf), A(pos), A(y.buf), A(a->inv_freq),
	};
	const uint32_t spec[] = { WG_ELEM };
	int rc;

	if (a->head_dim % 2 || a->rot_dim % 2 || a->rot_dim > a->head_dim)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: rope: head_dim %u and rot_dim %u must be even, rot_dim <= head_dim",
				  a->head_dim, a->rot_dim);
	if ((rc = need_view("rope", "x", &x, a->n_tok, row, err)) ||
	    (rc = need_view("rope", "y", &y, a->n_tok, row, err)) ||
	    (rc = need("rope", "pos", pos, a->n_tok, 4, err)) ||
	    (a->inv_freq && (rc = need("rope", "inv_freq", a->inv_freq,
				       a->rot_dim / 2, 4, err))))
		return rc;
	pc = (struct hf_pc_rope){
		a->n_tok, a->n_head, a->head_dim, a->rot_dim, x.off, x.stride,
		y.off, y.stride, a->theta_base, a->inv_freq != NULL,
		a->mscale != 0.0f ? a->mscale : 1.0f,
	};
	return vk_dispatch(s, a->mode == HF_VK_ROPE_HALF ? "rope_half_f32" :
			   "rope_interleaved_f32", spec, 1, b, 4, &pc,
			   sizeof(pc),
			   egroups(s, (uint64_t)a->n_tok * a->n_head *
				   a->head_dim / 2), 1, err);
}

/* Whether the subgroup-per-query attention can run: subgroup arithmetic,
 * and a subgroup size the driver cannot change under us. */
static bool rows_attention(struct hf_vk_seq *s)
{
	const struct hf_vk_devinfo *d = &seq_vk(s)->info;

	return seq_vk(s)->rows_attention && d->subgroup_size &&
		d->subgroup_min == d->subgroup_size &&
		d->subgroup_max == d->subgroup_size &&
		d->subgroup_size <= WG_ROWS_ATTN;
}

/* Bytes of the first n values of an attention's k or v cache. */
static uint64_t kv_bytes(const struct hf_vk_attn_args *a, uint64_t n)
{
	return hf_kv_bytes(a->kvt, (size_t)n, a->head_dim);
}

int hf_vk_op_attention(struct hf_vk_seq *s, struct hf_vk_buf *o,
		       struct hf_vk_view q, struct hf_vk_view k,
		       struct hf_vk_view v, const struct hf_vk_buf *pos,
		       const struct hf_vk_attn_args *a, struct hf_err *err)
{
	const char *op = "attention";
	const uint32_t hd = a->head_dim, nb = a->n_batch ? a->n_batch : 1;
	const uint32_t kvrow = a->n_kv_head * hd;
	const uint32_t maxd = (hd + WG_ATTN - 1) / WG_ATTN * WG_ATTN;
	const uint32_t spec[] = { WG_ATTN, maxd ? maxd : WG_ATTN };
	const struct vk_arg b[6] = {
		A(q.buf), A(k.buf), A(v.buf), A(o), A(pos), A(a->mask),
	};
		uint32_t kv_batch;
	struct hf_pc_attn pc;
	char name[32], base[24];
	int rc;

	if (!hf_kv_fits(a->kvt, hd) || (a->kvt != HF_KV_F32 && hd % 2))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: attention: a %s cache of head_dim %u",
				  hf_kv_type_name(a->kvt), hd);
	if (!a->n_kv_head || a->n_head % a->n_kv_head)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: attention: %u heads are not a multiple of %u kv heads",
				  a->n_head, a->n_kv_head);
	if (hd > 1024)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: attention: head_dim %u is over 1024",
				  hd);
	if (!k.stride)
		k.stride = kvrow;
	if (!v.stride)
		v.stride = kvrow;
	kv_batch = a->kv_batch ? a->kv_batch : a->n_kv * k.stride;
	if ((rc = need_view(op, "q", &q, nb * a->n_q, a->n_head * hd, err)) ||
	    	    (a->n_kv && ((rc = need(op, "k", k.buf, kv_bytes(a, k.off +
				    (uint64_t)(nb - 1) * kv_batch +
				    (uint64_t)(a->n_kv - 1) * k.stride + kvrow),
				    1, err)) ||
			 (rc = need(op, "v", v.buf, kv_bytes(a, v.off +
				    (uint64_t)(nb - 1) * kv_batch +
				    (uint64_t)(a->n_kv - 1) * v.stride + kvrow),
				    1, err)))) ||
	    (rc = need(op, "o", o, (uint64_t)nb * a->n_q * a->n_head * hd, 4,
		       err)) ||
	    (pos && (rc = need(op, "pos", pos, nb * a->n_q, 4, err))) ||
	    (a->mask && (rc = need(op, "mask", a->mask,
				   (uint64_t)(nb - 1) * a->mask_stride +
				   a->n_kv, 4, err))))
		return rc;
	pc = (struct hf_pc_attn){
		nb, a->n_q, a->n_head, a->n_kv_head, hd, a->n_kv, kv_batch,
		a->past, pos != NULL, a->mask != NULL, a->mask_stride,
		a->causal, a->window, q.off, q.stride, k.off, k.stride, v.off,
		v.stride, a->n_head * hd, a->scale, a->softcap,
	};
	if (rows_attention(s)) {
		/* a subgroup per (query, head): only where every subgroup
		 * has the reported size, so NDL dims per lane cover hd */
		const uint32_t sg = seq_vk(s)->info.subgroup_size;
		const uint32_t pairs = 2 * (WG_ROWS_ATTN / sg);
		const uint32_t rspec[] = {
			WG_ROWS_ATTN, WG_ATTN, pairs, (hd + sg - 1) / sg,
		};

				snprintf(name, sizeof(name), "attention_%s_rows",
			 hf_kv_type_name(a->kvt));
		return vk_dispatch(s, name, rspec, 4, b, 6,
				   &pc, sizeof(pc),
				   cdiv((uint64_t)nb * a->n_q * a->n_head,
					pairs), 1, err);
	}
		snprintf(base, sizeof(base), "attention_%s", hf_kv_type_name(a->kvt));
	return vk_dispatch(s, variant(s, name, sizeof(name), base),
			   spec, 2, b, 6, &pc, sizeof(pc),
			   nb * a->n_q * a->n_head, 1, err);
}

int hf_vk_op_glu(struct hf_vk_seq *s, struct hf_vk_buf *y,
		 enum hf_vk_act act, struct hf_vk_view a, struct hf_vk_view bv,
		 uint32_t rows, uint32_t cols, struct hf_err *err)
{
	static const char *names[] = {
		[HF_VK_ACT_SILU] = "glu_silu_f32",
		[HF_VK_ACT_GELU] = "glu_gelu_f32",
		[HF_VK_ACT_GELU_TANH] = "glu_gelu_tanh_f32",
		[HF_VK_ACT_RELU] = "glu_relu_f32",
		[HF_VK_ACT_TANH] = "glu_tanh_f32",
	};
	const struct vk_arg b[3] = { A(a.buf), A(bv.buf), A(y) };
	const uint32_t spec[] = { WG_ELEM };
	struct hf_pc_glu pc;
	int rc;

	if ((unsigned)act > HF_VK_ACT_TANH)
		return hf_err_set(err, HF_EINVAL, "vulkan: glu: activation %d",
				  (int)act);
	if ((rc = need_view("glu", "a", &a, rows, cols, err)) ||
	    (bv.buf && (rc = need_view("glu", "b", &bv, rows, cols, err))) ||
	    (rc = need("glu", "y", y, (uint64_t)rows * cols, 4, err)))
		return rc;
	pc = (struct hf_pc_glu){ rows, cols, bv.buf != NULL, a.off, a.stride,
				 bv.off, bv.stride };
	return vk_dispatch(s, names[act], spec, 1, b, 3, &pc, sizeof(pc),
			   egroups(s, (uint64_t)rows * cols), 1, err);
}

int hf_vk_op_get_rows(struct hf_vk_seq *s, struct hf_vk_buf *y,
		      const struct hf_vk_buf *table, enum hf_dtype tt,
		      uint32_t n_table, const struct hf_vk_buf *ids,
		      uint32_t n, uint32_t cols, struct hf_err *err)
{
	const int tf = hf_wfmt_of_dtype(tt);
	const char *sfx = tf < 0 ? NULL : wsuffix((enum hf_wfmt)tf);
	const uint32_t spec[] = { WG_ELEM };
	uint64_t row, per;
	char name[32];
	int rc;

	if (!sfx)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: get_rows: tables of dtype %s are not supported",
				  hf_dtype_name(tt));
	row = hf_wfmt_row_bytes((enum hf_wfmt)tf, cols);
	if ((rc = need("get_rows", "ids", ids, n, 4, err)) ||
	    (rc = need("get_rows", "y", y, (uint64_t)n * cols, 4, err)))
		return rc;
	if (!table || (uint64_t)n_table * row > table->size)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: get_rows: a table of %u x %u is past the end of its %zu-byte buffer",
				  n_table, cols, table ? table->size : 0);
	/* a table too big for one binding is read in windows of rows */
	per = part_rows(table, n_table, row);
	if (!per && n_table)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: get_rows: one row (%llu bytes) is over the %llu bytes one binding may span",
				  (unsigned long long)row,
				  (unsigned long long)table->vk->max_range);
	snprintf(name, sizeof(name), "get_rows_%s", sfx);
	for (uint32_t r0 = 0; r0 < n_table || r0 == 0; r0 += (uint32_t)per) {
		const uint32_t nw = n_table - r0 < per ? n_table - r0 :
			(uint32_t)per;
		struct hf_vk_buf tv = window(table, (uint64_t)r0 * row,
					     (uint64_t)nw * row);
		const struct vk_arg b[3] = { { &tv, wbytes((enum hf_wfmt)tf) },
					     A(ids), A(y) };
		struct hf_pc_rows pc = { n, cols, n_table, 0, 0, r0, nw };

		if ((rc = vk_dispatch(s, name, spec, 1, b, 3, &pc, sizeof(pc),
				      egroups(s, (uint64_t)n * cols), 1, err)))
			return rc;
		if (!per)
			break;
	}
	return 0;
}

int hf_vk_op_set_rows(struct hf_vk_seq *s, struct hf_vk_buf *y,
		      uint32_t n_table, struct hf_vk_view x,
		      const struct hf_vk_buf *ids, uint32_t n, uint32_t cols,
		      struct hf_err *err)
{
	const struct vk_arg b[3] = { A(x.buf), A(ids), A(y) };
	const uint32_t spec[] = { WG_ELEM };
	struct hf_pc_rows pc;
	int rc;

	if ((rc = need_view("set_rows", "x", &x, n, cols, err)) ||
	    (rc = need("set_rows", "ids", ids, n, 4, err)) ||
	    (rc = need("set_rows", "y", y, (uint64_t)n_table * cols, 4, err)))
		return rc;
	pc = (struct hf_pc_rows){ n, cols, n_table, x.off, x.stride, 0, 0 };
	return vk_dispatch(s, "set_rows_f32", spec, 1, b, 3, &pc, sizeof(pc),
			   egroups(s, (uint64_t)n * cols), 1, err);
}

int hf_vk_op_set_rows_kv(struct hf_vk_seq *s, struct hf_vk_buf *y,
			 uint32_t n_table, struct hf_vk_view x,
			 const struct hf_vk_buf *ids, uint32_t n, uint32_t cols,
			 int kvt, uint32_t head_dim, struct hf_err *err)
{
	const struct vk_arg b[3] = { A(x.buf), A(ids), A(y) };
	const uint32_t spec[] = { WG_ELEM };
	const uint32_t units = kvt == HF_KV_F16 || kvt == HF_KV_BF16 ?
		cols / 2 : cols / (uint32_t)hf_kv_group(kvt, head_dim);
	struct hf_pc_rows pc;
	char name[32];
	int rc;

	if (kvt == HF_KV_F32 || !hf_kv_fits(kvt, head_dim) || head_dim % 2 ||
	    cols % head_dim)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: set_rows: a %s cache of head_dim %u",
				  hf_kv_type_name(kvt), head_dim);
	if ((rc = need_view("set_rows", "x", &x, n, cols, err)) ||
	    (rc = need("set_rows", "ids", ids, n, 4, err)) ||
	    (rc = need("set_rows", "y", y, (uint64_t)n_table *
		       hf_kv_bytes(kvt, cols, head_dim), 1, err)))
		return rc;
	pc = (struct hf_pc_rows){ n, cols, n_table, x.off, x.stride, 0,
				  head_dim };
	snprintf(name, sizeof(name), "set_rows_kv_%s", hf_kv_type_name(kvt));
	return vk_dispatch(s, name, spec, 1, b, 3, &pc, sizeof(pc),
			   egroups(s, (uint64_t)n * units), 1, err);
}

static int binary(struct hf_vk_seq *s, const char *name,
		  struct hf_vk_buf *y, const struct hf_vk_buf *a,
		  const struct hf_vk_buf *bb, uint32_t n, uint32_t nb,
		  struct hf_err *err)
{
	const struct vk_arg b[3] = { A(a), A(bb), A(y) };
	const uint32_t spec[] = { WG_ELEM };
	struct hf_pc_elem pc = { n, nb, 0, 0, 0, 0 };
	int rc;

	if (!nb)
		return hf_err_set(err, HF_EINVAL, "vulkan: %s: nb is 0", name);
	if ((rc = need(name, "a", a, n, 4, err)) ||
	    (rc = need(name, "b", bb, nb, 4, err)) ||
	    (rc = need(name, "y", y, n, 4, err)))
		return rc;
	return vk_dispatch(s, name, spec, 1, b, 3, &pc, sizeof(pc),
			   egroups(s, n), 1, err);
}

int hf_vk_op_add(struct hf_vk_seq *s, struct hf_vk_buf *y,
		 const struct hf_vk_buf *a, const struct hf_vk_buf *b,
		 uint32_t n, uint32_t nb, struct hf_err *err)
{
	return binary(s, "add_f32", y, a, b, n, nb, err);
}

int hf_vk_op_mul(struct hf_vk_seq *s, struct hf_vk_buf *y,
		 const struct hf_vk_buf *a, const struct hf_vk_buf *b,
		 uint32_t n, uint32_t nb, struct hf_err *err)
{
	return binary(s, "mul_f32", y, a, b, n, nb, err);
}

int hf_vk_op_scale(struct hf_vk_seq *s, struct hf_vk_buf *y,
		   const struct hf_vk_buf *a, uint32_t n, float scale,
		   float bias, struct hf_err *err)
{
	const struct vk_arg b[2] = { A(a), A(y) };
	const uint32_t spec[] = { WG_ELEM };
	struct hf_pc_elem pc = { n, 0, scale, bias, 0, 0 };
	int rc;

	if ((rc = need("scale", "a", a, n, 4, err)) ||
	    (rc = need("scale", "y", y, n, 4, err)))
		return rc;
	return vk_dispatch(s, "scale_f32", spec, 1, b, 2, &pc, sizeof(pc),
			   egroups(s, n), 1, err);
}

int hf_vk_op_copy(struct hf_vk_seq *s, struct hf_vk_buf *y, uint32_t dst_off,
		  const struct hf_vk_buf *a, uint32_t src_off, uint32_t n,
		  struct hf_err *err)
{
	const struct vk_arg b[2] = { A(a), A(y) };
	const uint32_t spec[] = { WG_ELEM };
	struct hf_pc_elem pc = { n, 0, 0, 0, src_off, dst_off };
	int rc;

	if ((rc = need("copy", "a", a, (uint64_t)src_off + n, 4, err)) ||
	    (rc = need("copy", "y", y, (uint64_t)dst_off + n, 4, err)))
		return rc;
	return vk_dispatch(s, "copy_f32", spec, 1, b, 2, &pc, sizeof(pc),
			   egroups(s, n), 1, err);
}

int hf_vk_op_moe_topk(struct hf_vk_seq *s, struct hf_vk_buf *ids,
		      struct hf_vk_buf *weights, const struct hf_vk_buf *logits,
		      uint32_t n_tok, uint32_t n_exp, uint32_t k, bool norm,
		      struct hf_err *err)
{
	const struct vk_arg b[3] = { A(logits), A(ids), A(weights) };
	const uint32_t spec[] = { 64 };
	struct hf_pc_topk pc = { n_tok, n_exp, k, norm };
	int rc;

	if (!k || k > n_exp)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: moe_topk: k = %u of %u experts", k,
				  n_exp);
	if ((rc = need("moe_topk", "logits", logits, (uint64_t)n_tok * n_exp,
		       4, err)) ||
	    (rc = need("moe_topk", "ids", ids, (uint64_t)n_tok * k, 4, err)) ||
	    (rc = need("moe_topk", "weights", weights, (uint64_t)n_tok * k, 4,
		       err)))
		return rc;
	return vk_dispatch(s, "moe_topk_f32", spec, 1, b, 3, &pc, sizeof(pc),
			   cdiv(n_tok, 64), 1, err);
}

int hf_vk_op_add_rows(struct hf_vk_seq *s, struct hf_vk_buf *y, uint32_t n_y,
		      const struct hf_vk_buf *x, const struct hf_vk_buf *rows,
		      const struct hf_vk_buf *w, uint32_t n, uint32_t cols,
		      struct hf_err *err)
{
	const struct vk_arg b[4] = { A(x), A(rows), A(w), A(y) };
	const uint32_t spec[] = { 64 };
	struct hf_pc_add_rows pc = { n, cols, n_y, w != NULL };
	int rc;

	if ((rc = need("add_rows", "x", x, (uint64_t)n * cols, 4, err)) ||
	    (rc = need("add_rows", "rows", rows, n, 4, err)) ||
	    (w && (rc = need("add_rows", "w", w, n, 4, err))) ||
	    (rc = need("add_rows", "y", y, (uint64_t)n_y * cols, 4, err)))
		return rc;
	return vk_dispatch(s, "add_rows_f32", spec, 1, b, 4, &pc, sizeof(pc),
			   cdiv(cols, 64), 1, err);
}
