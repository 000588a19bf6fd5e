/* lib/export/qlin.c: a quantized checkpoint's linears as the float32
 * tensors of its dequantized copy (qlin.h). hf-quantize --dequantize
 * writes that copy through these same functions, so an export of the
 * quantized checkpoint reads the very floats an export of that copy
 * reads. */
#include "export/qlin.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "quant/qconfig.h"

/* The tensors a quantized linear stores besides its main one and its
 * bias, after "<base>.". */
static const char *const aux[] = {
	"SCB", "weight_format", "weight.absmax", "weight.quant_map",
	"weight.nested_absmax", "weight.nested_quant_map",
	"weight.quant_state.bitsandbytes__nf4",
	"weight.quant_state.bitsandbytes__fp4", "qzeros", "scales", "g_idx",
	"weight_scale", "weight_scale_inv",
};

static int ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* A ".weight" of these dtypes is a packed weight, never a float one. */
static int packed_dtype(enum hf_dtype d)
{
	return d == HF_DTYPE_I8 || d == HF_DTYPE_U8 || d == HF_DTYPE_F8_E4M3;
}

/* Whether base ("model.layers.0.mlp.up_proj") is a quantized linear:
 * its main tensor, or NULL. */
static const struct hf_tensor *main_of(const char *base, hf_wfmt_get_fn get,
				       void *ctx)
{
	char name[512];
	const struct hf_tensor *t;

	if (snprintf(name, sizeof(name), "%s.qweight", base) >=
	    (int)sizeof(name))
		return NULL;
	if ((t = get(ctx, name)))
		return t;
	snprintf(name, sizeof(name), "%s.weight", base);
	t = get(ctx, name);
	return t && packed_dtype(t->dtype) ? t : NULL;
}

enum hf_qlin_role hf_qlin_role(const struct hf_tensor *t, hf_wfmt_get_fn get,
			       void *ctx)
{
	size_t n = strlen(t->name);
	char base[512];

	if (ends(t->name, ".qweight") ||
	    (ends(t->name, ".weight") && packed_dtype(t->dtype)))
		return HF_QLIN_MAIN;
	for (size_t i = 0; i < sizeof(aux) / sizeof(aux[0]); i++) {
		size_t k = strlen(aux[i]);

		if (n <= k + 1 || n - k - 1 >= sizeof(base) ||
		    strcmp(t->name + n - k, aux[i]) || t->name[n - k - 1] != '.')
			continue;
		memcpy(base, t->name, n - k - 1);
		base[n - k - 1] = 0;
		if (main_of(base, get, ctx))
			return HF_QLIN_AUX;
	}
	return HF_QLIN_NONE;
}

int hf_qlin_conv1d(int gpt2, const char *base)
{
	const char *d = strrchr(base, '.');
	const char *l = d ? d + 1 : base;

	return gpt2 && (!strcmp(l, "c_attn") || !strcmp(l, "c_proj") ||
			!strcmp(l, "c_fc") || !strcmp(l, "q_attn"));
}

/* bitsandbytes 4-bit keeps the (out, in) shape in its quant_state. */
static int bnb4_shape(const char *base, hf_wfmt_get_fn get, void *ctx,
		      size_t *rows, size_t *cols, struct hf_err *err)
{
	char name[512];
	const struct hf_tensor *qs;
	json_t *js = NULL, *sh;
	int rc = 0;

	snprintf(name, sizeof(name), "%s.weight.quant_state.bitsandbytes__nf4",
		 base);
	if (!(qs = get(ctx, name))) {
		snprintf(name, sizeof(name), "%s.weight.quant_state."
			 "bitsandbytes__fp4", base);
		qs = get(ctx, name);
	}
	if (!qs)
		return hf_err_set(err, HF_EFORMAT, "tensor '%s.weight' is U8 "
				  "but has no quant_state", base);
	if (hf_json_load_buf(&js, qs->data, qs->nbytes, qs->name, err))
		return err->code;
	sh = json_object_get(js, "shape");
	if (!json_is_array(sh) || json_array_size(sh) != 2 ||
	    !json_is_integer(json_array_get(sh, 0)) ||
	    !json_is_integer(json_array_get(sh, 1)) ||
	    json_integer_value(json_array_get(sh, 0)) <= 0 ||
	    json_integer_value(json_array_get(sh, 1)) <= 0) {
		rc = hf_err_set(err, HF_EFORMAT, "%s: 'shape' must be "
				"[out, in]", qs->name);
	} else {
		*rows = (size_t)json_integer_value(json_array_get(sh, 0));
		*cols = (size_t)json_integer_value(json_array_get(sh, 1));
	}
	json_decref(js);
	return rc;
}

int hf_qlin_find(struct hf_qlin *l, hf_wfmt_get_fn get, void *ctx,
		 const struct hf_qcfg *qc, int gpt2, const char *name,
		 struct hf_err *err)
{
	const struct hf_tensor *tn[HF_WEIGHT_NT];
	const struct hf_tensor *t;
	size_t n = strlen(name), rows = 0, cols = 0;
	char base[400];
	int rc;

	memset(l, 0, sizeof(*l));
	if (!qc || !ends(name, ".weight") || n - 7 >= sizeof(base))
		return HF_ENOTFOUND;
	memcpy(base, name, n - 7);
	base[n - 7] = 0;
	if (!(t = main_of(base, get, ctx)))
		return HF_ENOTFOUND;
	if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0)
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' is not a "
				  "matrix of a quantized linear", t->name);
	if (ends(t->name, ".qweight")) {
		unsigned bits = qc->bits > 0 ? (unsigned)qc->bits : 4;

		if (qc->method == HF_QM_AWQ) {
			rows = (size_t)t->shape[1] * 8;
			cols = (size_t)t->shape[0];
		} else {
			rows = (size_t)t->shape[1];
			cols = (size_t)t->shape[0] * 32 / bits;
		}
	} else if (qc->method == HF_QM_BITNET && t->dtype == HF_DTYPE_U8) {
		rows = (size_t)t->shape[0] * 4;
		cols = (size_t)t->shape[1];
	} else if (t->dtype == HF_DTYPE_U8) {
		if ((rc = bnb4_shape(base, get, ctx, &rows, &cols, err)))
			return rc;
	} else {
		rows = (size_t)t->shape[0];
		cols = (size_t)t->shape[1];
	}
	rc = hf_weight_bind(&l->w, tn, get, ctx, qc, base, rows, cols, err);
	if (rc == HF_ENOTFOUND)
		return hf_err_set(err, HF_EUNSUPPORTED, "tensor '%s' (%s) is "
				  "stored in no format hf reads", t->name,
				  hf_dtype_name(t->dtype));
	if (rc)
		return rc;
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->main = t;
	l->conv = hf_qlin_conv1d(gpt2, base);
	l->t.name = l->name;
	l->t.dtype = HF_DTYPE_F32;
	l->t.ndim = 2;
	l->t.shape[0] = (int64_t)(l->conv ? cols : rows);
	l->t.shape[1] = (int64_t)(l->conv ? rows : cols);
	l->t.data = NULL;
	l->t.nbytes = t->nbytes;
	return 0;
}

int hf_qlin_read(const struct hf_qlin *l, float *x, struct hf_err *err)
{
	size_t rows = l->w.rows, cols = l->w.cols;
	float *y;

	if (!l->conv) {
		hf_weight_dequant(x, &l->w, 0, rows, 0, cols);
		return 0;
	}
	if (!(y = malloc(rows * cols * sizeof(float) + 1)))
		return hf_err_set(err, HF_ENOMEM, "out of memory: '%s' needs "
				  "%zu floats", l->name, rows * cols);
	hf_weight_dequant(y, &l->w, 0, rows, 0, cols);
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < cols; c++)
			x[c * rows + r] = y[r * cols + c];
	free(y);
	return 0;
}
