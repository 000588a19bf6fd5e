/* lib/model/weights.c: binding a checkpoint's tensors by their HF names
 * (norms, embeddings, biases, and linears in any weight format, through
 * the format traits of tensor/wfmt.h), and the one linear() every family
 * runs its projections through. */
#include "model/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct hf_tensor *find_tensor(struct hf_model *m, const char *name)
{
	const struct hf_tensor *t = NULL;
	char full[512];

	if (m->pfx && *m->pfx) {
		snprintf(full, sizeof(full), "%s%s", m->pfx, name);
		t = hf_st_model_get(m->st, full);
	}
	return t ? t : hf_st_model_get(m->st, name);
}

int has_tensor(struct hf_model *m, const char *name)
{
	return find_tensor(m, name) != NULL;
}

static int unsupported(struct hf_model *m, const struct hf_tensor *t,
		       struct hf_err *err)
{
	return hf_err_set(err, HF_EUNSUPPORTED,
			  "%s: tensor '%s' has dtype %s; weights in %s are supported",
			  m->dir, t->name, hf_dtype_name(t->dtype),
			  hf_wfmt_list());
}

static int vbind(struct hf_model *m, struct hf_buf **out, int required,
		 int f32, int64_t d0, int64_t d1, struct hf_err *err,
		 const char *fmt, va_list ap)
{
	char name[400];
	const struct hf_tensor *t;
	int64_t want[2] = { d0, d1 };
	int wnd = d1 ? 2 : 1;
	size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
	struct hf_buf *b;

	*out = NULL;
	vsnprintf(name, sizeof(name), fmt, ap);
	t = find_tensor(m, name);
	if (!t) {
		if (!required)
			return 0;
		return hf_err_set(err, HF_ENOTFOUND,
				  "%s: missing tensor '%s%s'", m->dir,
				  m->pfx && *m->pfx ? m->pfx : "", name);
	}
	if (t->ndim != wnd || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
		char got[128], exp[128];

		hf_shape_str(got, sizeof(got), t->shape, t->ndim);
		hf_shape_str(exp, sizeof(exp), want, wnd);
		return hf_err_set(err, HF_EFORMAT,
				  "%s: tensor '%s' has shape %s, expected %s",
				  m->dir, t->name, got, exp);
	}
	if (hf_wfmt_of_dtype(t->dtype) < 0)
		return unsupported(m, t, err);
	if (f32 && t->dtype != HF_DTYPE_F32) {
		float *tmp = malloc(n * sizeof(float));

		if (!tmp)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		hf_to_f32_n(tmp, t->data, t->dtype, n);
		if (ws_alloc(m, &b, HF_DTYPE_F32, n, err) ||
		    hf_buf_upload(b, 0, tmp, n * sizeof(float), err)) {
			free(tmp);
			return err->code;
		}
		free(tmp);
	} else {
		if (hf_buf_wrap(&b, m->be, t->dtype, n, t->data, err))
			return err->code;
		if (!keep(m, b))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	*out = b;
	return 0;
}

int bind_tensor(struct hf_model *m, struct hf_buf **out, int required,
		int f32, int64_t d0, int64_t d1, struct hf_err *err,
		const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vbind(m, out, required, f32, d0, d1, err, fmt, ap);
	va_end(ap);
	return rc;
}

static const struct hf_tensor *get_cb(void *ctx, const char *name)
{
	return find_tensor(ctx, name);
}

/* Whether the backend runs a product on w; an error naming the tensor if
 * not. */
static int check_backend(struct hf_model *m, const struct lin *l,
			 const char *base, struct hf_err *err)
{
	struct hf_op op = { HF_OP_MATMUL, NULL, { NULL, l->w.t[0] },
			    { 1, (int64_t)l->in, (int64_t)l->out } };
	struct hf_err e = { 0 };

	op.w = l->w;
	if (hf_backend_supports(m->be, &op, &e))
		return 0;
	return hf_err_set(err, HF_EUNSUPPORTED, "%s: '%s%s': %s", m->dir,
			  m->pfx ? m->pfx : "", base, e.msg);
}

int bind_weight(struct hf_model *m, struct lin *l, size_t out, size_t in,
		struct hf_err *err, const char *base)
{
	const struct hf_tensor *tn[HF_WEIGHT_NT];
	struct hf_weight hw;
	const struct hf_wfmt_traits *tr;
	char name[400];
	int rc;

	l->in = in;
	l->out = out;
	memset(&l->w, 0, sizeof(l->w));
	rc = hf_weight_bind(&hw, tn, get_cb, m, m->qc, base, out, in, err);
	if (rc == HF_ENOTFOUND) {
		const struct hf_tensor *t;

		snprintf(name, sizeof(name), "%s.weight", base);
		if ((t = find_tensor(m, name)))
			return unsupported(m, t, err);
		return hf_err_set(err, HF_ENOTFOUND,
				  "%s: missing tensor '%s%s'", m->dir,
				  m->pfx && *m->pfx ? m->pfx : "", name);
	}
	if (rc)
		return hf_err_prefix(err, "%s", m->dir);
	tr = hf_wfmt_traits(hw.fmt);
	l->w.fmt = hw.fmt;
	l->w.rows = out;
	l->w.cols = in;
	l->w.q = hw.q;
	for (unsigned i = 0; i < tr->ntensors; i++) {
		struct hf_buf *b;

		if (!tn[i])
			continue;
		if (hf_buf_wrap(&b, m->be, tn[i]->dtype,
				(size_t)hf_tensor_numel(tn[i]), tn[i]->data,
				err))
			return err->code;
		if (!keep(m, b))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		l->w.t[i] = b;
	}
	m->weight_bytes += hf_wbuf_size(&l->w);
	return check_backend(m, l, base, err);
}

int bind_lin(struct hf_model *m, struct lin *l, size_t out, size_t in,
	     int bias, struct hf_err *err, const char *fmt, ...)
{
	char base[360];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(base, sizeof(base), fmt, ap);
	va_end(ap);
	l->b = NULL;
	if (bind_weight(m, l, out, in, err, base))
		return err->code;
	if (bias && bind_tensor(m, &l->b, bias == 1, 1, (int64_t)out, 0, err,
			 "%s.bias", base))
		return err->code;
	return 0;
}

int lin_plain(struct hf_model *m, struct lin *l, struct hf_buf *w,
	      size_t out, size_t in, struct hf_err *err)
{
	l->in = in;
	l->out = out;
	if (hf_wbuf_plain(&l->w, w, out, in, err))
		return hf_err_prefix(err, "%s", m->dir);
	return 0;
}

int lin_rows(struct hf_model *m, struct lin *dst, const struct lin *src,
	     size_t r0, size_t n, struct hf_err *err)
{
	struct hf_wbuf w;
	struct hf_buf *b = NULL;

	if (hf_wbuf_rows(&w, &src->w, r0, n, err))
		return hf_err_prefix(err, "%s: rows of a fused projection",
				     m->dir);
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		if (w.t[i] && !keep(m, w.t[i]))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (src->b && (hf_buf_view(&b, src->b, r0, n, err) || !keep(m, b)))
		return err->code ? err->code :
		       hf_err_set(err, HF_ENOMEM, "out of memory");
	dst->w = w;
	dst->b = b;
	dst->in = src->in;
	dst->out = n;
	return 0;
}

void linear(struct hf_buf *y, struct hf_buf *x, const struct lin *l, size_t n)
{
	if (l->tap)
		l->tap->fn(l->tap->ctx, l->tap->l, l->tap->i, x, n);
	hf_op_linear(y, x, &l->w, l->b, n);
	if (l->lora)
		lora_linear(y, x, l, n);
}
