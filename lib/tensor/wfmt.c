/* lib/tensor/wfmt.c: the weight-format traits table and what is built on
 * it alone. One row per format; the plain float formats share their
 * hooks, parameterized by the row's dtype. */
#include "tensor/wfmt.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "quant/formats.h"
#include "st/st.h"

/* ---- plain float rows: f32, f16, bf16 ------------------------------------ */

static void dequant_f32(float *dst, const struct hf_weight *w, size_t r0,
			size_t rows, size_t k0, size_t kc)
{
	const float *p = w->t[0];

	for (size_t r = 0; r < rows; r++)
		memcpy(dst + r * kc, p + (r0 + r) * w->cols + k0,
		       kc * sizeof(float));
}

static void dequant_f16(float *dst, const struct hf_weight *w, size_t r0,
			size_t rows, size_t k0, size_t kc)
{
	const uint16_t *p = w->t[0];

	for (size_t r = 0; r < rows; r++) {
		const uint16_t *s = p + (r0 + r) * w->cols + k0;

		for (size_t k = 0; k < kc; k++)
			dst[r * kc + k] = hf_f16_to_f32(s[k]);
	}
}

static void dequant_bf16(float *dst, const struct hf_weight *w, size_t r0,
			 size_t rows, size_t k0, size_t kc)
{
	const uint16_t *p = w->t[0];

	for (size_t r = 0; r < rows; r++) {
		const uint16_t *s = p + (r0 + r) * w->cols + k0;

		for (size_t k = 0; k < kc; k++)
			dst[r * kc + k] = hf_bf16_to_f32(s[k]);
	}
}

/* Any row range of a plain matrix is a plain matrix. */
static int span_plain(const struct hf_weight *w, unsigned i, size_t r0,
		      size_t n, size_t *off, size_t *len, struct hf_err *err)
{
	*off = hf_wfmt_bytes(w->fmt, r0, w->cols);
	*len = hf_wfmt_bytes(w->fmt, n, w->cols);
	return 0;
}

/* <base>.weight of shape (rows, cols) and of the row's dtype. */
static int bind_plain(struct hf_weight *w, const struct hf_tensor **tn,
		      enum hf_wfmt fmt, hf_wfmt_get_fn get, void *ctx,
		      const char *base, size_t rows, size_t cols,
		      struct hf_err *err)
{
	const struct hf_wfmt_traits *tr = hf_wfmt_traits(fmt);
	const struct hf_tensor *t;
	char name[512];

	snprintf(name, sizeof(name), "%s.weight", base);
	t = get(ctx, name);
	if (!t || t->dtype != tr->dtype)
		return HF_ENOTFOUND;
	if (t->ndim != 2 || t->shape[0] != (int64_t)rows ||
	    t->shape[1] != (int64_t)cols) {
		int64_t want[2] = { (int64_t)rows, (int64_t)cols };
		char got[128], exp[128];

		hf_shape_str(got, sizeof(got), t->shape, t->ndim);
		hf_shape_str(exp, sizeof(exp), want, 2);
		return hf_err_set(err, HF_EFORMAT,
				  "tensor '%s' has shape %s, expected %s",
				  t->name, got, exp);
	}
	memset(w, 0, sizeof(*w));
	w->fmt = fmt;
	w->rows = rows;
	w->cols = cols;
	w->q.ld = rows;
	w->t[0] = t->data;
	tn[0] = t;
	return 0;
}

#define BIND_PLAIN(f, F)						\
	static int bind_##f(struct hf_weight *w,			\
			    const struct hf_tensor **tn,		\
			    hf_wfmt_get_fn get, void *ctx,		\
			    const struct hf_qcfg *qc, const char *base,	\
			    size_t rows, size_t cols, struct hf_err *err) \
	{								\
		(void)qc;						\
		return bind_plain(w, tn, F, get, ctx, base, rows, cols,	\
				  err);					\
	}
BIND_PLAIN(f32, HF_WFMT_F32)
BIND_PLAIN(f16, HF_WFMT_F16)
BIND_PLAIN(bf16, HF_WFMT_BF16)

/* ---- the table ------------------------------------------------------------ */

static const struct hf_wfmt_traits traits[HF_WFMT_COUNT] = {
	[HF_WFMT_F32] = {
		.name = "f32", .block = 1, .block_bytes = 4,
		.dtype = HF_DTYPE_F32, .ntensors = 1, .f32_rows = 1,
		.dequant = dequant_f32, .span = span_plain, .bind = bind_f32,
	},
	[HF_WFMT_F16] = {
		.name = "f16", .block = 1, .block_bytes = 2,
		.dtype = HF_DTYPE_F16, .ntensors = 1,
		.dequant = dequant_f16, .span = span_plain, .bind = bind_f16,
	},
	[HF_WFMT_BF16] = {
		.name = "bf16", .block = 1, .block_bytes = 2,
		.dtype = HF_DTYPE_BF16, .ntensors = 1, .bf16_exact = 1,
		.dequant = dequant_bf16, .span = span_plain,
		.bind = bind_bf16,
	},
	/* the quantized formats: lib/quant/formats.c */
	[HF_WFMT_INT8] = {
		.name = "int8", .block = 1, .block_bytes = 1,
		.dtype = HF_DTYPE_I8, .ntensors = 2,
		.dequant = hf_int8_dequant, .span = hf_int8_span,
		.bind = hf_int8_bind,
	},
	[HF_WFMT_BNB4] = {
		.name = "bnb4", .block = 2, .block_bytes = 1,
		.dtype = HF_DTYPE_U8, .ntensors = 3,
		.dequant = hf_bnb4_dequant, .bind = hf_bnb4_bind,
	},
	[HF_WFMT_BNB4DQ] = {
		.name = "bnb4dq", .block = 2, .block_bytes = 1,
		.dtype = HF_DTYPE_U8, .ntensors = 5,
		.dequant = hf_bnb4dq_dequant, .bind = hf_bnb4dq_bind,
	},
	[HF_WFMT_GPTQ] = {
		.name = "gptq", .block = 8, .block_bytes = 4,
		.dtype = HF_DTYPE_I32, .ntensors = 4,
		.dequant = hf_gptq_dequant, .bind = hf_gptq_bind,
	},
	[HF_WFMT_AWQ] = {
		.name = "awq", .block = 8, .block_bytes = 4,
		.dtype = HF_DTYPE_I32, .ntensors = 3,
		.dequant = hf_awq_dequant, .bind = hf_awq_bind,
	},
	[HF_WFMT_BITNET] = {
		.name = "bitnet", .block = 4, .block_bytes = 1,
		.dtype = HF_DTYPE_U8, .ntensors = 1,
		.dequant = hf_bitnet_dequant, .bind = hf_bitnet_bind,
	},
	[HF_WFMT_FP8] = {
		.name = "fp8", .block = 1, .block_bytes = 1,
		.dtype = HF_DTYPE_F8_E4M3, .ntensors = 2,
		.dequant = hf_fp8_dequant, .bind = hf_fp8_bind,
	},
};

const struct hf_wfmt_traits *hf_wfmt_traits(enum hf_wfmt fmt)
{
	assert((unsigned)fmt < HF_WFMT_COUNT);
	return &traits[fmt];
}

const char *hf_wfmt_name(enum hf_wfmt fmt)
{
	return (unsigned)fmt < HF_WFMT_COUNT ? traits[fmt].name : "?";
}

int hf_wfmt_of_dtype(enum hf_dtype dt)
{
	for (int f = 0; f < HF_WFMT_COUNT; f++)
		if (traits[f].block == 1 && traits[f].ntensors == 1 &&
		    traits[f].dtype == dt)
			return f;
	return -1;
}

const char *hf_wfmt_list(void)
{
	static char list[256];

	if (!list[0]) {
		size_t o = 0;

		for (int f = 0; f < HF_WFMT_COUNT && o < sizeof(list); f++)
			if (traits[f].block == 1 && traits[f].ntensors == 1)
				o += (size_t)snprintf(list + o,
						      sizeof(list) - o, "%s%s",
						      o ? ", " : "",
						      traits[f].name);
	}
	return list;
}

size_t hf_wfmt_row_bytes(enum hf_wfmt fmt, size_t cols)
{
	const struct hf_wfmt_traits *tr = hf_wfmt_traits(fmt);

	return (cols + tr->block - 1) / tr->block * tr->block_bytes;
}

int hf_weight_plain(struct hf_weight *w, const void *data, enum hf_dtype dt,
		    size_t rows, size_t cols)
{
	int f = hf_wfmt_of_dtype(dt);

	if (f < 0)
		return -1;
	memset(w, 0, sizeof(*w));
	w->fmt = (enum hf_wfmt)f;
	w->rows = rows;
	w->cols = cols;
	w->t[0] = data;
	return 0;
}

int hf_weight_rows(struct hf_weight *dst, const struct hf_weight *w,
		   size_t r0, size_t n, struct hf_err *err)
{
	if (r0 + n > w->rows)
		return hf_err_set(err, HF_EINTERNAL,
				  "rows [%zu, %zu) of a weight of %zu rows",
				  r0, r0 + n, w->rows);
	const struct hf_wfmt_traits *tr = hf_wfmt_traits(w->fmt);
	struct hf_weight v = *w;

	v.rows = n;
	v.q.ld = hf_weight_ld(w);
	if (!tr->span) {
		v.q.roff += r0;
		*dst = v;
		return 0;
	}
	for (unsigned i = 0; i < tr->ntensors; i++) {
		size_t off, len;
		int rc;

		if (!w->t[i])
			continue;
		if ((rc = tr->span(w, i, r0, n, &off, &len, err)))
			return rc;
		v.t[i] = (const char *)w->t[i] + off;
	}

	*dst = v;
	return 0;
}

void hf_weight_dequant(float *dst, const struct hf_weight *w, size_t r0,
		       size_t rows, size_t k0, size_t kc)
{
	hf_wfmt_traits(w->fmt)->dequant(dst, w, r0, rows, k0, kc);
}

int hf_weight_bind(struct hf_weight *w, const struct hf_tensor **tn,
		   hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		   const char *base, size_t rows, size_t cols,
		   struct hf_err *err)
{
	for (int f = 0; f < HF_WFMT_COUNT; f++) {
		int rc;

		for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
			tn[i] = NULL;
		rc = traits[f].bind(w, tn, get, ctx, qc, base, rows, cols,
				    err);
		if (rc != HF_ENOTFOUND)
			return rc;
	}
	return HF_ENOTFOUND;
}
