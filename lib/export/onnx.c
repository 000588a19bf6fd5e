/* lib/export/onnx.c: the graphs Optimum exports for hf's families, built
 * from the model as lib/model loads it (its parsed hyperparameters, RoPE
 * frequencies and the checkpoint's tensors by HF name), and written in
 * each weight variant Transformers.js names (docs/onnx-gguf-export.md
 * A1, A2). Opset 17 (LayerNormalization; ReduceMean still takes axes as
 * an attribute), plain ops only but com.microsoft.MatMulNBits in q4. */
#include "export/onnx.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "export/onnx_pb.h"
#include "export/qlin.h"
#include "model/internal.h"

/* A graph under construction: value names live until the graph is
 * written (names[]), weights come from m. */
struct g {
	struct hf_onnx *o;
	struct hf_model *m;
	unsigned var;		/* one HF_ONNX_V_* */
	size_t seq;		/* counter for fresh names */
	char **names;
	size_t nnames, capnames;
	int bad;		/* a weight could not be read: err is set */
	struct hf_err *err;
	const char *embed_f32;	/* the embedding table as f32, once made */
};

static const char *keep_name(struct g *g, char *s)
{
	if (!s)
		goto oom;
	if (g->nnames == g->capnames) {
		size_t cap = g->capnames ? 2 * g->capnames : 1024;
		char **p = realloc(g->names, cap * sizeof(*p));

		if (!p) {
			free(s);
			goto oom;
		}
		g->names = p;
		g->capnames = cap;
	}
	g->names[g->nnames++] = s;
	return s;
oom:
	if (!g->bad)
		hf_err_set(g->err, HF_ENOMEM, "out of memory");
	g->bad = 1;
	return "oom";
}

/* A fresh value name "<hint>_<n>". */
static const char *fresh(struct g *g, const char *hint)
{
	char *s = malloc(strlen(hint) + 24);

	if (s)
		sprintf(s, "%s_%zu", hint, g->seq++);
	return keep_name(g, s);
}

static const char *fmt_name(struct g *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static const char *fmt_name(struct g *g, const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return keep_name(g, strdup(buf));
}

/* One node of one output; in: nin names. */
static const char *opa(struct g *g, const char *op, const char *domain,
		       const struct hf_onnx_attr *at, size_t nat, size_t nin,
		       const char *const *in)
{
	const char *y = fresh(g, op);

	hf_onnx_node(g->o, op, domain, NULL, in, nin, &y, 1, at, nat);
	return y;
}

#define OP1(g, op, a) opa(g, op, NULL, NULL, 0, 1, (const char *[]){ a })
#define OP2(g, op, a, b) \
	opa(g, op, NULL, NULL, 0, 2, (const char *[]){ a, b })
#define OP3(g, op, a, b, c) \
	opa(g, op, NULL, NULL, 0, 3, (const char *[]){ a, b, c })

static struct hf_onnx_attr ai(const char *name, int64_t v)
{
	return (struct hf_onnx_attr){ .name = name, .type = HF_ONNX_ATTR_INT,
				      .i = v };
}

static struct hf_onnx_attr af(const char *name, float v)
{
	return (struct hf_onnx_attr){ .name = name, .type = HF_ONNX_ATTR_FLOAT,
				      .f = v };
}

static struct hf_onnx_attr aints(const char *name, const int64_t *v,
				 size_t n)
{
	return (struct hf_onnx_attr){ .name = name, .type = HF_ONNX_ATTR_INTS,
				      .ints = v, .n = n };
}

/* ---- constants (initializers) ---- */

static const char *c_i64(struct g *g, int ndim, const int64_t *v, size_t n)
{
	const char *name = fresh(g, "const");
	int64_t d = (int64_t)n;

	hf_onnx_init(g->o, name, HF_ONNX_INT64, ndim, &d, v, n * 8);
	return name;
}

/* A 1-D int64 constant of n values. */
static const char *ints(struct g *g, size_t n, ...)
{
	int64_t v[8];
	va_list ap;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		v[i] = va_arg(ap, int64_t);
	va_end(ap);
	return c_i64(g, 1, v, n);
}

static const char *scalar_i64(struct g *g, int64_t v)
{
	return c_i64(g, 0, &v, 1);
}

static const char *scalar_f(struct g *g, float v)
{
	const char *name = fresh(g, "const");

	hf_onnx_init(g->o, name, HF_ONNX_FLOAT, 0, NULL, &v, 4);
	return name;
}

/* ---- weights ---- */

static const struct hf_tensor *qlin_get(void *ctx, const char *name)
{
	return find_tensor(ctx, name);
}

/* The float32 weight name of a quantized checkpoint's linear, as its
 * hf-quantize --dequantize copy stores it (qlin.h), (want) elements:
 * NULL with g->err set; NULL with g->bad clear when no quantized linear
 * stands under name. */
static float *qweight(struct g *g, const char *name, uint64_t want)
{
	struct hf_qlin l;
	int gpt2 = !strcmp(g->m->cfg->model_type, "gpt2");
	float *x;
	int rc = hf_qlin_find(&l, qlin_get, g->m, g->m->qc, gpt2, name,
			      g->err);

	if (rc == HF_ENOTFOUND)
		return NULL;
	g->bad = 1;
	if (rc) {
		hf_err_prefix(g->err, "%s", g->m->dir);
		return NULL;
	}
	if (hf_tensor_numel(&l.t) != want) {
		hf_err_set(g->err, HF_EFORMAT, "%s: quantized tensor '%s' has "
			   "%llu elements, want %llu", g->m->dir, l.main->name,
			   (unsigned long long)hf_tensor_numel(&l.t),
			   (unsigned long long)want);
		return NULL;
	}
	if (!(x = malloc(want * sizeof(float) + 1))) {
		hf_err_set(g->err, HF_ENOMEM, "out of memory");
		return NULL;
	}
	if (hf_qlin_read(&l, x, g->err)) {
		free(x);
		return NULL;
	}
	g->bad = 0;
	return x;
}

/* The tensor name (under the model's prefix first) as float32, (n)
 * elements, a quantized checkpoint's linears dequantized: NULL with
 * g->err set when absent or not a float dtype. The caller frees it. */
static float *weight(struct g *g, const char *name, uint64_t want)
{
	const struct hf_tensor *t;
	float *x;

	if (g->bad)
		return NULL;
	t = find_tensor(g->m, name);
	if (g->m->qc && (!t || hf_wfmt_of_dtype(t->dtype) < 0)) {
		if ((x = qweight(g, name, want)) || g->bad)
			return x;
	}
	if (!t) {
		hf_err_set(g->err, HF_ENOTFOUND, "%s: missing tensor '%s%s'",
			   g->m->dir, g->m->pfx ? g->m->pfx : "", name);
		g->bad = 1;
		return NULL;
	}
	if (hf_tensor_numel(t) != want) {
		hf_err_set(g->err, HF_EFORMAT,
			   "%s: tensor '%s' has %llu elements, want %llu",
			   g->m->dir, t->name,
			   (unsigned long long)hf_tensor_numel(t),
			   (unsigned long long)want);
		g->bad = 1;
		return NULL;
	}
	if (!(x = malloc(want * sizeof(float) + 1))) {
		hf_err_set(g->err, HF_ENOMEM, "out of memory");
		g->bad = 1;
		return NULL;
	}
	if (hf_to_f32_n(x, t->data, t->dtype, want)) {
		hf_err_set(g->err, HF_EUNSUPPORTED,
			   "%s: tensor '%s' has dtype %s; ONNX export reads "
			   "float checkpoints (hf-quantize --dequantize first)",
			   g->m->dir, t->name, hf_dtype_name(t->dtype));
		g->bad = 1;
		free(x);
		return NULL;
	}
	return x;
}

static float *weightf(struct g *g, uint64_t want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static float *weightf(struct g *g, uint64_t want, const char *fmt, ...)
{
	char name[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	return weight(g, name, want);
}

/* An f32 initializer of the values at x (taken: freed here). */
static const char *init_f32(struct g *g, const char *name, float *x,
			    int ndim, const int64_t *dims)
{
	uint64_t n = 1;

	if (!x)
		return "missing";
	for (int i = 0; i < ndim; i++)
		n *= (uint64_t)dims[i];
	hf_onnx_init_own(g->o, name, HF_ONNX_FLOAT, ndim, dims, x,
			 n * sizeof(float));
	return name;
}

/* A float tensor stored in the variant's storage type: f16 (and a Cast
 * back to f32) in fp16, else f32. Norms, biases and embeddings. */
static const char *param(struct g *g, const char *name, float *x, int ndim,
			 const int64_t *dims)
{
	uint64_t n = 1;
	uint16_t *h;
	struct hf_onnx_attr to = ai("to", HF_ONNX_FLOAT);

	if (!x)
		return "missing";
	if (g->var != HF_ONNX_V_FP16)
		return init_f32(g, name, x, ndim, dims);
	for (int i = 0; i < ndim; i++)
		n *= (uint64_t)dims[i];
	if (!(h = malloc(n * 2 + 1))) {
		free(x);
		return keep_name(g, NULL);
	}
	hf_f32_to_f16_n(h, x, n);
	free(x);
	hf_onnx_init_own(g->o, name, HF_ONNX_FLOAT16, ndim, dims, h, n * 2);
	return opa(g, "Cast", NULL, &to, 1, 1, &name);
}

/* A 1-D parameter of n values under an HF name. */
static const char *vec(struct g *g, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static const char *vec(struct g *g, size_t n, const char *fmt, ...)
{
	char name[400];
	va_list ap;
	int64_t d = (int64_t)n;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	return param(g, fmt_name(g, "%s", name), weight(g, name, n), 1, &d);
}

/* y = x . W^T (+ b): w (out, in) float32, taken. The f32 and fp16 forms
 * store W^T [in, out] for MatMul (fp16 Cast back to f32); q8 is
 * quantize_dynamic's pattern: DynamicQuantizeLinear on x, MatMulInteger
 * against int8 W^T with one symmetric scale per output column, Cast, Mul
 * by both scales; q4 is com.microsoft.MatMulNBits on W (out, in) in
 * blocks of 32 along in, symmetric (zero point 8, not stored), as
 * onnxruntime's MatMul4BitsQuantizer writes with is_symmetric. */
static const char *linear_w(struct g *g, const char *x, float *w,
			    size_t out, size_t in, const char *b,
			    const char *name)
{
	const char *y;
	int64_t d[3];

	if (!w)
		return "missing";
	if (g->var == HF_ONNX_V_F32 || g->var == HF_ONNX_V_FP16) {
		float *t = malloc(out * in * sizeof(float) + 1);
		const char *wn;

		if (!t) {
			free(w);
			return keep_name(g, NULL);
		}
		for (size_t o = 0; o < out; o++)
			for (size_t i = 0; i < in; i++)
				t[i * out + o] = w[o * in + i];
		free(w);
		d[0] = (int64_t)in;
		d[1] = (int64_t)out;
		wn = param(g, fmt_name(g, "%s.weight", name), t, 2, d);
		y = OP2(g, "MatMul", x, wn);
	} else if (g->var == HF_ONNX_V_Q8) {
		int8_t *q = malloc(out * in + 1);
		float *s = malloc(out * sizeof(float) + 1);
		const char *qn, *sn, *xq, *xs, *xz, *mm, *sc;
		const char *dq_out[3];
		struct hf_onnx_attr to = ai("to", HF_ONNX_FLOAT);

		if (!q || !s) {
			free(q);
			free(s);
			free(w);
			return keep_name(g, NULL);
		}
		for (size_t o = 0; o < out; o++) {
			float amax = 0;

			for (size_t i = 0; i < in; i++)
				amax = fmaxf(amax, fabsf(w[o * in + i]));
			s[o] = amax > 0 ? amax / 127.0f : 1.0f;
			for (size_t i = 0; i < in; i++) {
				float v = nearbyintf(w[o * in + i] / s[o]);

				v = v > 127 ? 127 : v < -127 ? -127 : v;
				q[i * out + o] = (int8_t)v;
			}
		}
		free(w);
		d[0] = (int64_t)in;
		d[1] = (int64_t)out;
		qn = fmt_name(g, "%s.weight_quantized", name);
		hf_onnx_init_own(g->o, qn, HF_ONNX_INT8, 2, d, q, out * in);
		sn = init_f32(g, fmt_name(g, "%s.weight_scale", name), s, 1,
			      d + 1);
		xq = fresh(g, "x_quantized");
		xs = fresh(g, "x_scale");
		xz = fresh(g, "x_zero_point");
		dq_out[0] = xq;
		dq_out[1] = xs;
		dq_out[2] = xz;
		hf_onnx_node(g->o, "DynamicQuantizeLinear", NULL, NULL, &x, 1,
			     dq_out, 3, NULL, 0);
		mm = opa(g, "MatMulInteger", NULL, NULL, 0, 3,
			 (const char *[]){ xq, qn, xz });
		mm = opa(g, "Cast", NULL, &to, 1, 1, &mm);
		sc = OP2(g, "Mul", xs, sn);
		y = OP2(g, "Mul", mm, sc);
	} else {
		const size_t bs = 32, kb = (in + bs - 1) / bs;
		uint8_t *q = calloc(out * kb * bs / 2 + 1, 1);
		float *s = malloc(out * kb * sizeof(float) + 1);
		const char *qn, *sn;
		struct hf_onnx_attr at[4] = { ai("K", (int64_t)in),
					      ai("N", (int64_t)out),
					      ai("bits", 4),
					      ai("block_size", (int64_t)bs) };

		if (!q || !s) {
			free(q);
			free(s);
			free(w);
			return keep_name(g, NULL);
		}
		for (size_t o = 0; o < out; o++)
			for (size_t k = 0; k < kb; k++) {
				const float *r = w + o * in + k * bs;
				size_t n = in - k * bs < bs ? in - k * bs : bs;
				float mx = 0, sc, id;
				uint8_t *blk = q + (o * kb + k) * bs / 2;

				/* the value of largest magnitude maps to -8 */
				for (size_t i = 0; i < n; i++)
					if (fabsf(r[i]) > fabsf(mx))
						mx = r[i];
				sc = mx / -8.0f;
				id = sc != 0 ? 1.0f / sc : 0.0f;
				s[o * kb + k] = sc;
				for (size_t i = 0; i < bs; i++) {
					float v = i < n ? nearbyintf(r[i] * id) + 8 : 8;
					uint8_t c = (uint8_t)(v < 0 ? 0 : v > 15 ? 15 : v);

					blk[i / 2] |= (uint8_t)(i % 2 ? c << 4 : c);
				}
			}
		free(w);
		d[0] = (int64_t)out;
		d[1] = (int64_t)kb;
		d[2] = (int64_t)(bs / 2);
		qn = fmt_name(g, "%s.weight_Q4", name);
		hf_onnx_init_own(g->o, qn, HF_ONNX_UINT8, 3, d, q,
				 out * kb * bs / 2);
		sn = init_f32(g, fmt_name(g, "%s.weight_scales", name), s, 2, d);
		y = opa(g, "MatMulNBits", "com.microsoft", at, 4, 3,
			(const char *[]){ x, qn, sn });
	}
	return b ? OP2(g, "Add", y, b) : y;
}

/* An nn.Linear stored under base: base.weight (out, in), base.bias if
 * bias. */
static const char *proj(struct g *g, const char *x, const char *base,
			  size_t out, size_t in, int bias)
{
	const char *b = NULL;

	if (bias)
		b = vec(g, out, "%s.bias", base);
	return linear_w(g, x, weightf(g, (uint64_t)out * in, "%s.weight", base),
			out, in, b, base);
}

/* ---- layers ---- */

/* RMSNorm over the last axis, as LlamaRMSNorm: x * rsqrt(mean(x^2) +
 * eps) * w. w is the stored weight, gemma's 1 + w folded in by the
 * caller. */
static const char *rmsnorm(struct g *g, const char *x, const char *w,
			   float eps)
{
	int64_t ax = -1;
	struct hf_onnx_attr at[2] = { aints("axes", &ax, 1), ai("keepdims", 1) };
	const char *sq = OP2(g, "Pow", x, scalar_f(g, 2.0f));
	const char *mean = opa(g, "ReduceMean", NULL, at, 2, 1, &sq);
	const char *r = OP1(g, "Reciprocal",
			    OP1(g, "Sqrt", OP2(g, "Add", mean, scalar_f(g, eps))));

	return OP2(g, "Mul", w, OP2(g, "Mul", x, r));
}

/* An RMSNorm weight of n values; plus one for gemma. */
static const char *rms_weight(struct g *g, size_t n, const char *name)
{
	float *w = weight(g, name, n);
	int64_t d = (int64_t)n;

	if (w && g->m->norm_add_one)
		for (size_t i = 0; i < n; i++)
			w[i] = 1.0f + w[i];
	return param(g, fmt_name(g, "%s", name), w, 1, &d);
}

static const char *layernorm(struct g *g, const char *x, const char *base,
			     size_t n, float eps)
{
	struct hf_onnx_attr at[2] = { ai("axis", -1), af("epsilon", eps) };
	const char *w = vec(g, n, "%s.weight", base);
	const char *b = vec(g, n, "%s.bias", base);

	return opa(g, "LayerNormalization", NULL, at, 2, 3,
		   (const char *[]){ x, w, b });
}

/* ACT2FN, as the loader parsed it. */
static const char *act(struct g *g, const char *x, enum hf_act a)
{
	switch (a) {
	case HF_ACT_SILU:
		return OP2(g, "Mul", x, OP1(g, "Sigmoid", x));
	case HF_ACT_GELU_ERF: {
		/* x * 0.5 * (1 + erf(x / sqrt(2))) */
		const char *e = OP1(g, "Erf", OP2(g, "Div", x,
						  scalar_f(g, (float)M_SQRT2)));
		const char *h = OP2(g, "Mul", x, scalar_f(g, 0.5f));

		return OP2(g, "Mul", h, OP2(g, "Add", e, scalar_f(g, 1.0f)));
	}
	case HF_ACT_GELU_TANH: {
		/* 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) */
		const char *x3 = OP2(g, "Pow", x, scalar_f(g, 3.0f));
		const char *in = OP2(g, "Add", x,
				     OP2(g, "Mul", x3, scalar_f(g, 0.044715f)));
		const char *t = OP1(g, "Tanh", OP2(g, "Mul", in,
				     scalar_f(g, (float)sqrt(2.0 / M_PI))));
		const char *h = OP2(g, "Mul", x, scalar_f(g, 0.5f));

		return OP2(g, "Mul", h, OP2(g, "Add", t, scalar_f(g, 1.0f)));
	}
	case HF_ACT_RELU:
		return OP1(g, "Relu", x);
	case HF_ACT_TANH:
		return OP1(g, "Tanh", x);
	default:
		return OP1(g, "Identity", x);
	}
}

static const char *reshape(struct g *g, const char *x, size_t n, ...)
{
	int64_t v[8];
	va_list ap;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		v[i] = va_arg(ap, int64_t);
	va_end(ap);
	return OP2(g, "Reshape", x, c_i64(g, 1, v, n));
}

static const char *transpose(struct g *g, const char *x, size_t n, ...)
{
	int64_t v[8];
	va_list ap;
	struct hf_onnx_attr at;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		v[i] = va_arg(ap, int64_t);
	va_end(ap);
	at = aints("perm", v, n);
	return opa(g, "Transpose", NULL, &at, 1, 1, &x);
}

static const char *slice_last(struct g *g, const char *x, int64_t a,
			      int64_t b)
{
	return opa(g, "Slice", NULL, NULL, 0, 4,
		   (const char *[]){ x, ints(g, 1, a), ints(g, 1, b),
				     ints(g, 1, (int64_t)-1) });
}

static const char *concat(struct g *g, const char *a, const char *b,
			  int64_t axis)
{
	struct hf_onnx_attr at = ai("axis", axis);

	return opa(g, "Concat", NULL, &at, 1, 2, (const char *[]){ a, b });
}

static const char *unsqueeze(struct g *g, const char *x, const char *axes)
{
	return OP2(g, "Unsqueeze", x, axes);
}

/* apply_rotary_pos_emb on x [B, heads, S, hd]: the first R dims rotated
 * by rotate_half, cos and sin [B, 1, S, R]. */
static const char *rope(struct g *g, const char *x, const char *cos,
			const char *sin, size_t hd, size_t R)
{
	const char *xr = R < hd ? slice_last(g, x, 0, (int64_t)R) : x;
	const char *x1 = slice_last(g, xr, 0, (int64_t)R / 2);
	const char *x2 = slice_last(g, xr, (int64_t)R / 2, (int64_t)R);
	const char *rot = concat(g, OP1(g, "Neg", x2), x1, -1);
	const char *y = OP2(g, "Add", OP2(g, "Mul", xr, cos),
			    OP2(g, "Mul", rot, sin));

	if (R < hd)
		y = concat(g, y, slice_last(g, x, (int64_t)R, (int64_t)hd), -1);
	return y;
}

/* ---- decoders ---- */

static const struct hf_onnx_dim D_B = { 0, "batch_size" };
static const struct hf_onnx_dim D_S = { 0, "sequence_length" };
static const struct hf_onnx_dim D_P = { 0, "past_sequence_length" };
static const struct hf_onnx_dim D_T = {
	0, "past_sequence_length + sequence_length"
};

/* The embedding table (vocab, hidden) as an f32 value, shared by the
 * Gather and a tied head. */
static const char *embed_table(struct g *g, const char *name)
{
	struct hf_model *m = g->m;
	int64_t d[2] = { (int64_t)m->vocab, (int64_t)m->hidden };

	if (!g->embed_f32)
		g->embed_f32 = param(g, fmt_name(g, "%s", name),
				     weight(g, name, m->vocab * m->hidden), 2,
				     d);
	return g->embed_f32;
}

/* The additive attention mask [B, 1, 1, S, T] (0 or float32's minimum,
 * as transformers' eager masks): key column j of row b is seen by query
 * i when attention_mask[b, j] is 1, j <= P + i (P = T - S, the past) and,
 * with a sliding window w, j > P + i - w. */
static const char *dec_mask(struct g *g, const char *qidx, const char *kidx,
			    const char *pad, size_t window)
{
	const char *q = unsqueeze(g, qidx, ints(g, 1, (int64_t)1));	/* [S, 1] */
	const char *k = unsqueeze(g, kidx, ints(g, 1, (int64_t)0));	/* [1, T] */
	const char *ok = OP2(g, "LessOrEqual", k, q);

	if (window) {
		const char *lo = OP2(g, "Sub", q, scalar_i64(g, (int64_t)window));

		ok = OP2(g, "And", ok, OP2(g, "Greater", k, lo));
	}
	ok = OP2(g, "And", ok, pad);
	return OP3(g, "Where", ok, scalar_f(g, 0.0f), scalar_f(g, -FLT_MAX));
}

/* Mixtral's sparse MoE block on h [B, S, H], computed densely: every
 * expert runs on every token and is weighted by its renormalised top-k
 * routing probability (0 when not chosen), which is the sum
 * MixtralSparseMoeBlock forms. The router stays f32 in every variant:
 * a flipped choice would change the output by far more than the
 * weights' rounding. */
static const char *moe(struct g *g, const char *h, size_t l)
{
	struct hf_model *m = g->m;
	size_t H = m->hidden, I = m->inter;
	unsigned var = g->var;
	const char *rl, *pr, *tv, *ti, *sum, *acc = NULL;
	const char *tk_out[2];
	struct hf_onnx_attr sm = ai("axis", -1), tk[2] = { ai("axis", -1),
							   ai("largest", 1) };
	struct hf_onnx_attr kd = ai("keepdims", 1);
	struct hf_onnx_attr to = ai("to", HF_ONNX_FLOAT);
	char base[160];

	g->var = HF_ONNX_V_F32;
	snprintf(base, sizeof(base), "layers.%zu.block_sparse_moe.gate", l);
	rl = proj(g, h, base, m->ne, H, 0);
	g->var = var;
	pr = opa(g, "Softmax", NULL, &sm, 1, 1, &rl);
	tv = fresh(g, "topk_values");
	ti = fresh(g, "topk_indices");
	tk_out[0] = tv;
	tk_out[1] = ti;
	hf_onnx_node(g->o, "TopK", NULL, NULL,
		     (const char *[]){ pr, ints(g, 1, (int64_t)m->topk) }, 2,
		     tk_out, 2, tk, 2);
	sum = opa(g, "ReduceSum", NULL, &kd, 1, 2,
		  (const char *[]){ tv, ints(g, 1, (int64_t)-1) });
	tv = OP2(g, "Div", tv, sum);
	for (size_t e = 0; e < m->ne; e++) {
		const char *hit = OP2(g, "Equal", ti, scalar_i64(g, (int64_t)e));
		const char *we, *gt, *up, *y;

		hit = opa(g, "Cast", NULL, &to, 1, 1, &hit);
		we = opa(g, "ReduceSum", NULL, &kd, 1, 2,
			 (const char *[]){ OP2(g, "Mul", hit, tv),
					   ints(g, 1, (int64_t)-1) });
		snprintf(base, sizeof(base),
			 "layers.%zu.block_sparse_moe.experts.%zu.w1", l, e);
		gt = proj(g, h, base, I, H, 0);
		snprintf(base, sizeof(base),
			 "layers.%zu.block_sparse_moe.experts.%zu.w3", l, e);
		up = proj(g, h, base, I, H, 0);
		snprintf(base, sizeof(base),
			 "layers.%zu.block_sparse_moe.experts.%zu.w2", l, e);
		y = proj(g, OP2(g, "Mul", act(g, gt, m->act), up), base, H, I,
			   0);
		y = OP2(g, "Mul", y, we);
		acc = acc ? OP2(g, "Add", acc, y) : y;
	}
	return acc;
}

/* Rows [r0, r0 + n) of the (rows, in) tensor name, as a new (n, in)
 * float32 matrix: Phi-3's fused qkv_proj and gate_up_proj. */
static float *rows_of(struct g *g, const char *name, size_t rows, size_t in,
		      size_t r0, size_t n)
{
	float *all = weight(g, name, (uint64_t)rows * in), *w;

	if (!all)
		return NULL;
	if (!(w = malloc(n * in * sizeof(float) + 1))) {
		free(all);
		keep_name(g, NULL);
		return NULL;
	}
	memcpy(w, all + r0 * in, n * in * sizeof(float));
	free(all);
	return w;
}

/* Columns [c0, c0 + n) of GPT-2's Conv1D weight name (in, cols), as an
 * (n, in) float32 matrix (transposed into Linear layout). */
static float *conv1d_cols(struct g *g, const char *name, size_t in,
			  size_t cols, size_t c0, size_t n)
{
	float *all = weight(g, name, (uint64_t)in * cols), *w;

	if (!all)
		return NULL;
	if (!(w = malloc(n * in * sizeof(float) + 1))) {
		free(all);
		keep_name(g, NULL);
		return NULL;
	}
	for (size_t o = 0; o < n; o++)
		for (size_t i = 0; i < in; i++)
			w[o * in + i] = all[i * cols + c0 + o];
	free(all);
	return w;
}

/* Elements [e0, e0 + n) of a vector tensor as a parameter. */
static const char *vec_part(struct g *g, const char *name, size_t total,
			    size_t e0, size_t n, const char *as)
{
	float *all = weight(g, name, total), *v;
	int64_t d = (int64_t)n;

	if (!all)
		return "missing";
	if (!(v = malloc(n * sizeof(float) + 1))) {
		free(all);
		return keep_name(g, NULL);
	}
	memcpy(v, all + e0, n * sizeof(float));
	free(all);
	return param(g, fmt_name(g, "%s", as), v, 1, &d);
}

static int decoder_graph(struct g *g)
{
	struct hf_model *m = g->m;
	const int gpt2 = m->fam == FAM_GPT2;
	const int phi3 = !strcmp(m->cfg->model_type, "phi3");
	const size_t H = m->hidden, hq = m->hq, hkv = m->hkv, hd = m->hd;
	const size_t qo = hq * hd, ko = hkv * hd, R = m->rot_dim, I = m->inter;
	const size_t rep = hq / hkv;
	const int qkv_bias = !strcmp(m->cfg->model_type, "qwen2") ||
			     m->cfg->attention_bias;
	struct hf_onnx_dim d2[2] = { D_B, D_S }, dm[2] = { D_B, D_T };
	struct hf_onnx_dim dkv[4] = { D_B, { (int64_t)hkv, NULL }, D_P,
				      { (int64_t)hd, NULL } };
	struct hf_onnx_dim dlg[3] = { D_B, D_S, { (int64_t)m->vocab, NULL } };
	struct hf_onnx_attr tobool = ai("to", HF_ONNX_BOOL);
	struct hf_onnx_attr tof = ai("to", HF_ONNX_FLOAT);
	struct hf_onnx_attr sm = ai("axis", -1);
	const char *x, *T, *S, *P, *qidx, *kidx, *pad, *cos = NULL, *sin = NULL;
	const char *mask_full, *mask_win = NULL, *h, *emb;
	char base[200];

	hf_onnx_input(g->o, "input_ids", HF_ONNX_INT64, 2, d2);
	hf_onnx_input(g->o, "attention_mask", HF_ONNX_INT64, 2, dm);
	hf_onnx_input(g->o, "position_ids", HF_ONNX_INT64, 2, d2);
	for (size_t l = 0; l < m->nl; l++) {
		hf_onnx_input(g->o, fmt_name(g, "past_key_values.%zu.key", l),
			      HF_ONNX_FLOAT, 4, dkv);
		hf_onnx_input(g->o, fmt_name(g, "past_key_values.%zu.value", l),
			      HF_ONNX_FLOAT, 4, dkv);
	}
	hf_onnx_output(g->o, "logits", HF_ONNX_FLOAT, 3, dlg);
	dkv[2] = D_T;
	for (size_t l = 0; l < m->nl; l++) {
		hf_onnx_output(g->o, fmt_name(g, "present.%zu.key", l),
			       HF_ONNX_FLOAT, 4, dkv);
		hf_onnx_output(g->o, fmt_name(g, "present.%zu.value", l),
			       HF_ONNX_FLOAT, 4, dkv);
	}

	/* lengths: S new tokens, T in all, P = T - S in the past */
	S = OP2(g, "Gather", OP1(g, "Shape", "input_ids"), scalar_i64(g, 1));
	T = OP2(g, "Gather", OP1(g, "Shape", "attention_mask"),
		scalar_i64(g, 1));
	P = OP2(g, "Sub", T, S);
	qidx = OP3(g, "Range", P, T, scalar_i64(g, 1));
	kidx = OP3(g, "Range", scalar_i64(g, 0), T, scalar_i64(g, 1));
	pad = opa(g, "Cast", NULL, &tobool, 1, 1,
		  (const char *[]){ "attention_mask" });
	pad = unsqueeze(g, pad, ints(g, 3, (int64_t)1, (int64_t)2, (int64_t)3));
	mask_full = dec_mask(g, qidx, kidx, pad, 0);
	for (size_t l = 0; l < m->nl; l++)
		if (m->layers[l].window && !mask_win)
			mask_win = dec_mask(g, qidx, kidx, pad,
					    m->layers[l].window);

	/* embeddings */
	emb = embed_table(g, gpt2 ? "wte.weight" : "embed_tokens.weight");
	x = OP2(g, "Gather", emb, "input_ids");
	if (gpt2) {
		int64_t d[2] = { (int64_t)m->max_pos, (int64_t)H };
		const char *wpe = param(g, fmt_name(g, "wpe.weight"),
					weight(g, "wpe.weight",
					       m->max_pos * H), 2, d);

		x = OP2(g, "Add", x, OP2(g, "Gather", wpe, "position_ids"));
	} else {
		const size_t n = R / 2;
		float *f = malloc(n * sizeof(float) + 1);
		int64_t d = (int64_t)n;
		const char *inv, *pos, *fr, *e;

		if (!f)
			return hf_err_set(g->err, HF_ENOMEM, "out of memory");
		memcpy(f, m->inv_freq_host, n * sizeof(float));
		inv = init_f32(g, "rope.inv_freq", f, 1, &d);
		if (m->rope_dynamic == 2) {
			/* longrope: the long factors once the largest
			 * position reaches original_max_position_embeddings,
			 * as transformers picks them per call */
			float *lf = malloc(n * sizeof(float) + 1);
			const char *lg, *mx, *on;
			struct hf_onnx_attr kd0 = ai("keepdims", 0);

			if (!lf)
				return hf_err_set(g->err, HF_ENOMEM,
						  "out of memory");
			memcpy(lf, m->inv_freq_host + n, n * sizeof(float));
			lg = init_f32(g, "rope.inv_freq_long", lf, 1, &d);
			mx = opa(g, "ReduceMax", NULL, &kd0, 1, 1,
				 (const char *[]){ "position_ids" });
			on = OP2(g, "GreaterOrEqual", mx,
				 scalar_i64(g, (int64_t)m->rope_orig));
			inv = OP3(g, "Where", on, lg, inv);
		}
		pos = opa(g, "Cast", NULL, &tof, 1, 1,
			  (const char *[]){ "position_ids" });
		pos = unsqueeze(g, pos, ints(g, 1, (int64_t)-1));	/* [B, S, 1] */
		fr = OP2(g, "Mul", pos, inv);				/* [B, S, R/2] */
		e = concat(g, fr, fr, -1);
		cos = OP1(g, "Cos", e);
		sin = OP1(g, "Sin", e);
		if (m->rope_scaling != 1.0f) {
			cos = OP2(g, "Mul", cos, scalar_f(g, m->rope_scaling));
			sin = OP2(g, "Mul", sin, scalar_f(g, m->rope_scaling));
		}
		cos = unsqueeze(g, cos, ints(g, 1, (int64_t)1));	/* [B, 1, S, R] */
		sin = unsqueeze(g, sin, ints(g, 1, (int64_t)1));
		if (m->emb_scale != 1.0f)
			x = OP2(g, "Mul", x, scalar_f(g, m->emb_scale));
	}

	for (size_t l = 0; l < m->nl && !g->bad; l++) {
		const char *q, *k, *v, *pk, *pv, *s, *a, *mask;
		float scale = m->attn_scale;

		if (gpt2) {
			snprintf(base, sizeof(base), "h.%zu.ln_1", l);
			h = layernorm(g, x, base, H, m->eps);
			snprintf(base, sizeof(base), "h.%zu.attn.c_attn.weight", l);
			q = linear_w(g, h, conv1d_cols(g, base, H, 3 * H, 0, H),
				     H, H,
				     vec_part(g, fmt_name(g, "h.%zu.attn.c_attn.bias", l),
					      3 * H, 0, H,
					      fmt_name(g, "h.%zu.attn.q.bias", l)),
				     fmt_name(g, "h.%zu.attn.q", l));
			k = linear_w(g, h, conv1d_cols(g, base, H, 3 * H, H, H),
				     H, H,
				     vec_part(g, fmt_name(g, "h.%zu.attn.c_attn.bias", l),
					      3 * H, H, H,
					      fmt_name(g, "h.%zu.attn.k.bias", l)),
				     fmt_name(g, "h.%zu.attn.k", l));
			v = linear_w(g, h, conv1d_cols(g, base, H, 3 * H, 2 * H, H),
				     H, H,
				     vec_part(g, fmt_name(g, "h.%zu.attn.c_attn.bias", l),
					      3 * H, 2 * H, H,
					      fmt_name(g, "h.%zu.attn.v.bias", l)),
				     fmt_name(g, "h.%zu.attn.v", l));
			if (m->inv_layer_scale)
				scale /= (float)(l + 1);
		} else {
			snprintf(base, sizeof(base),
				 "layers.%zu.input_layernorm.weight", l);
			h = rmsnorm(g, x, rms_weight(g, H, base), m->eps);
			if (phi3) {
				snprintf(base, sizeof(base),
					 "layers.%zu.self_attn.qkv_proj.weight", l);
				q = linear_w(g, h, rows_of(g, base, qo + 2 * ko, H, 0, qo),
					     qo, H, NULL,
					     fmt_name(g, "layers.%zu.self_attn.q_proj", l));
				k = linear_w(g, h, rows_of(g, base, qo + 2 * ko, H, qo, ko),
					     ko, H, NULL,
					     fmt_name(g, "layers.%zu.self_attn.k_proj", l));
				v = linear_w(g, h, rows_of(g, base, qo + 2 * ko, H,
							   qo + ko, ko),
					     ko, H, NULL,
					     fmt_name(g, "layers.%zu.self_attn.v_proj", l));
			} else {
				snprintf(base, sizeof(base),
					 "layers.%zu.self_attn.q_proj", l);
				q = proj(g, h, base, qo, H, qkv_bias);
				snprintf(base, sizeof(base),
					 "layers.%zu.self_attn.k_proj", l);
				k = proj(g, h, base, ko, H, qkv_bias);
				snprintf(base, sizeof(base),
					 "layers.%zu.self_attn.v_proj", l);
				v = proj(g, h, base, ko, H, qkv_bias);
			}
		}
		q = reshape(g, q, 4, (int64_t)0, (int64_t)0, (int64_t)hq,
			    (int64_t)hd);
		k = reshape(g, k, 4, (int64_t)0, (int64_t)0, (int64_t)hkv,
			    (int64_t)hd);
		if (m->layers[l].q_norm) {
			snprintf(base, sizeof(base),
				 "layers.%zu.self_attn.q_norm.weight", l);
			q = rmsnorm(g, q, vec(g, hd, "%s", base), m->eps);
			snprintf(base, sizeof(base),
				 "layers.%zu.self_attn.k_norm.weight", l);
			k = rmsnorm(g, k, vec(g, hd, "%s", base), m->eps);
		}
		q = transpose(g, q, 4, (int64_t)0, (int64_t)2, (int64_t)1,
			      (int64_t)3);				/* [B, hq, S, hd] */
		k = transpose(g, k, 4, (int64_t)0, (int64_t)2, (int64_t)1,
			      (int64_t)3);
		v = transpose(g, reshape(g, v, 4, (int64_t)0, (int64_t)0,
					 (int64_t)hkv, (int64_t)hd),
			      4, (int64_t)0, (int64_t)2, (int64_t)1, (int64_t)3);
		if (!gpt2) {
			q = rope(g, q, cos, sin, hd, R);
			k = rope(g, k, cos, sin, hd, R);
		}
		pk = fmt_name(g, "present.%zu.key", l);
		pv = fmt_name(g, "present.%zu.value", l);
		hf_onnx_node(g->o, "Concat", NULL, NULL,
			     (const char *[]){ fmt_name(g, "past_key_values.%zu.key", l), k },
			     2, &pk, 1, (struct hf_onnx_attr[]){ ai("axis", 2) }, 1);
		hf_onnx_node(g->o, "Concat", NULL, NULL,
			     (const char *[]){ fmt_name(g, "past_key_values.%zu.value", l), v },
			     2, &pv, 1, (struct hf_onnx_attr[]){ ai("axis", 2) }, 1);
		/* GQA without copies: the hq query heads as hkv groups of
		 * rep, against each kv head once: [B, hkv, rep, S, hd] */
		q = reshape(g, q, 5, (int64_t)0, (int64_t)hkv, (int64_t)rep,
			    (int64_t)-1, (int64_t)hd);
		k = unsqueeze(g, pk, ints(g, 1, (int64_t)2));	/* [B, hkv, 1, T, hd] */
		v = unsqueeze(g, pv, ints(g, 1, (int64_t)2));
		k = transpose(g, k, 5, (int64_t)0, (int64_t)1, (int64_t)2,
			      (int64_t)4, (int64_t)3);
		s = OP2(g, "MatMul", q, k);				/* [B, hkv, rep, S, T] */
		s = OP2(g, "Mul", s, scalar_f(g, scale));
		mask = m->layers[l].window ? mask_win : mask_full;
		s = OP2(g, "Add", s, mask);
		s = opa(g, "Softmax", NULL, &sm, 1, 1, &s);
		a = OP2(g, "MatMul", s, v);				/* [B, hkv, rep, S, hd] */
		a = reshape(g, a, 4, (int64_t)0, (int64_t)hq, (int64_t)-1,
			    (int64_t)hd);
		a = transpose(g, a, 4, (int64_t)0, (int64_t)2, (int64_t)1,
			      (int64_t)3);
		a = reshape(g, a, 3, (int64_t)0, (int64_t)0, (int64_t)-1);
		if (gpt2) {
			snprintf(base, sizeof(base), "h.%zu.attn.c_proj.weight", l);
			a = linear_w(g, a, conv1d_cols(g, base, H, H, 0, H), H, H,
				     vec(g, H, "h.%zu.attn.c_proj.bias", l),
				     fmt_name(g, "h.%zu.attn.c_proj", l));
		} else {
			snprintf(base, sizeof(base), "layers.%zu.self_attn.o_proj",
				 l);
			a = proj(g, a, base, H, qo, m->cfg->attention_bias);
		}
		x = OP2(g, "Add", x, a);
		if (gpt2) {
			snprintf(base, sizeof(base), "h.%zu.ln_2", l);
			h = layernorm(g, x, base, H, m->eps);
			snprintf(base, sizeof(base), "h.%zu.mlp.c_fc.weight", l);
			h = linear_w(g, h, conv1d_cols(g, base, H, I, 0, I), I, H,
				     vec(g, I, "h.%zu.mlp.c_fc.bias", l),
				     fmt_name(g, "h.%zu.mlp.c_fc", l));
			h = act(g, h, m->act);
			snprintf(base, sizeof(base), "h.%zu.mlp.c_proj.weight", l);
			h = linear_w(g, h, conv1d_cols(g, base, I, H, 0, H), H, I,
				     vec(g, H, "h.%zu.mlp.c_proj.bias", l),
				     fmt_name(g, "h.%zu.mlp.c_proj", l));
		} else {
			const char *gt, *up;

			snprintf(base, sizeof(base),
				 "layers.%zu.post_attention_layernorm.weight", l);
			h = rmsnorm(g, x, rms_weight(g, H, base), m->eps);
			if (m->ne) {
				h = moe(g, h, l);
			} else {
				if (phi3) {
					snprintf(base, sizeof(base),
						 "layers.%zu.mlp.gate_up_proj.weight", l);
					gt = linear_w(g, h, rows_of(g, base, 2 * I, H, 0, I),
						      I, H, NULL,
						      fmt_name(g, "layers.%zu.mlp.gate_proj", l));
					up = linear_w(g, h, rows_of(g, base, 2 * I, H, I, I),
						      I, H, NULL,
						      fmt_name(g, "layers.%zu.mlp.up_proj", l));
				} else {
					snprintf(base, sizeof(base),
						 "layers.%zu.mlp.gate_proj", l);
					gt = proj(g, h, base, I, H,
						    m->layers[l].gate.b != NULL);
					snprintf(base, sizeof(base),
						 "layers.%zu.mlp.up_proj", l);
					up = proj(g, h, base, I, H,
						    m->layers[l].up.b != NULL);
				}
				h = OP2(g, "Mul", act(g, gt, m->act), up);
				snprintf(base, sizeof(base),
					 "layers.%zu.mlp.down_proj", l);
				h = proj(g, h, base, H, I,
					   m->layers[l].down.b != NULL);
			}
		}
		x = OP2(g, "Add", x, h);
	}
	if (g->bad)
		return g->err->code;
	if (gpt2)
		h = layernorm(g, x, "ln_f", H, m->eps);
	else
		h = rmsnorm(g, x, rms_weight(g, H, "norm.weight"), m->eps);
	{
		const char *lg = "logits", *y;
		const char *saved = m->pfx;

		/* as the loader's bind_head: lm_head.weight unless tied */
		if (!m->cfg->tie_word_embeddings) {
			m->pfx = "";
			y = proj(g, h, "lm_head", m->vocab, H, 0);
			m->pfx = saved;
		} else if (g->var == HF_ONNX_V_F32 || g->var == HF_ONNX_V_FP16) {
			/* tied: the Gather's table, transposed in the graph */
			y = OP2(g, "MatMul", h,
				transpose(g, emb, 2, (int64_t)1, (int64_t)0));
		} else {
			y = linear_w(g, h, weight(g, gpt2 ? "wte.weight" :
						  "embed_tokens.weight",
						  m->vocab * H),
				     m->vocab, H, NULL, "lm_head");
		}
		hf_onnx_node(g->o, "Identity", NULL, NULL, &y, 1, &lg, 1, NULL, 0);
	}
	return g->bad ? g->err->code : 0;
}

/* ---- encoders ---- */

enum { ENC_BASE, ENC_MLM, ENC_CLS };

static int encoder_graph(struct g *g, int task)
{
	struct hf_model *m = g->m;
	const size_t H = m->hidden, I = m->inter, hq = m->hq, hd = m->hd;
	const int distil = m->fam == FAM_DISTILBERT;
	const int roberta = m->fam == FAM_ROBERTA;
	const int types = m->fam == FAM_BERT;
	struct hf_onnx_dim d2[2] = { D_B, D_S };
	struct hf_onnx_dim dh[3] = { D_B, D_S, { (int64_t)H, NULL } };
	struct hf_onnx_dim dp[2] = { D_B, { (int64_t)H, NULL } };
	struct hf_onnx_attr tobool = ai("to", HF_ONNX_BOOL);
	struct hf_onnx_attr toi = ai("to", HF_ONNX_INT64);
	struct hf_onnx_attr sm = ai("axis", -1);
	const char *x, *pos, *mask, *first;
	const char *emb = "embeddings";
	char base[200];
	int64_t d[2];

	hf_onnx_input(g->o, "input_ids", HF_ONNX_INT64, 2, d2);
	hf_onnx_input(g->o, "attention_mask", HF_ONNX_INT64, 2, d2);
	if (types)
		hf_onnx_input(g->o, "token_type_ids", HF_ONNX_INT64, 2, d2);
	if (task == ENC_BASE) {
		hf_onnx_output(g->o, "last_hidden_state", HF_ONNX_FLOAT, 3, dh);
		if (m->pooler.w.t[0])
			hf_onnx_output(g->o, "pooler_output", HF_ONNX_FLOAT, 2,
				       dp);
	} else if (task == ENC_MLM) {
		struct hf_onnx_dim dl[3] = { D_B, D_S,
					     { (int64_t)m->vocab, NULL } };

		hf_onnx_output(g->o, "logits", HF_ONNX_FLOAT, 3, dl);
	} else {
		struct hf_onnx_dim dl[2] = { D_B, { (int64_t)m->nlabels, NULL } };

		hf_onnx_output(g->o, "logits", HF_ONNX_FLOAT, 2, dl);
	}

	d[0] = (int64_t)m->vocab;
	d[1] = (int64_t)H;
	snprintf(base, sizeof(base), "%s.word_embeddings.weight", emb);
	g->embed_f32 = param(g, fmt_name(g, "%s", base),
			     weight(g, base, m->vocab * H), 2, d);
	x = OP2(g, "Gather", g->embed_f32, "input_ids");
	if (!distil) {
		/* inputs_embeds + token_type_embeddings, then positions,
		 * in BertEmbeddings' order */
		const char *tt;

		d[0] = (int64_t)m->n_types;
		tt = param(g, fmt_name(g, "%s.token_type_embeddings.weight", emb),
			   weightf(g, m->n_types * H,
				   "%s.token_type_embeddings.weight", emb), 2, d);
		if (types)
			tt = OP2(g, "Gather", tt, "token_type_ids");
		else
			tt = OP2(g, "Gather", tt, scalar_i64(g, 0));
		x = OP2(g, "Add", x, tt);
	}
	if (roberta) {
		/* create_position_ids_from_input_ids: cumsum of non-pad
		 * tokens, offset by padding_idx; pads get padding_idx */
		const char *pid = scalar_i64(g, m->pos_offset - 1);
		const char *np = OP1(g, "Not", OP2(g, "Equal", "input_ids", pid));
		const char *c;

		np = opa(g, "Cast", NULL, &toi, 1, 1, &np);
		c = OP2(g, "CumSum", np, scalar_i64(g, 1));
		pos = OP2(g, "Add", OP2(g, "Mul", c, np), pid);
	} else {
		const char *S = OP2(g, "Gather", OP1(g, "Shape", "input_ids"),
				    scalar_i64(g, 1));

		pos = OP3(g, "Range", scalar_i64(g, 0), S, scalar_i64(g, 1));
		pos = unsqueeze(g, pos, ints(g, 1, (int64_t)0));
	}
	d[0] = (int64_t)m->max_pos;
	pos = OP2(g, "Gather",
		  param(g, fmt_name(g, "%s.position_embeddings.weight", emb),
			weightf(g, m->max_pos * H, "%s.position_embeddings.weight",
				emb), 2, d), pos);
	x = OP2(g, "Add", x, pos);
	x = layernorm(g, x, "embeddings.LayerNorm", H, m->eps);
	mask = opa(g, "Cast", NULL, &tobool, 1, 1,
		   (const char *[]){ "attention_mask" });
	mask = unsqueeze(g, mask, ints(g, 2, (int64_t)1, (int64_t)2));
	mask = OP3(g, "Where", mask, scalar_f(g, 0.0f), scalar_f(g, -FLT_MAX));

	for (size_t l = 0; l < m->nl && !g->bad; l++) {
		const char *q, *k, *v, *s, *a, *h;
		char p[100];

		if (distil)
			snprintf(p, sizeof(p), "transformer.layer.%zu.", l);
		else
			snprintf(p, sizeof(p), "encoder.layer.%zu.", l);
#define NM(suffix) (snprintf(base, sizeof(base), "%s%s", p, suffix), base)
		q = proj(g, x, NM(distil ? "attention.q_lin" :
				    "attention.self.query"), H, H, 1);
		k = proj(g, x, NM(distil ? "attention.k_lin" :
				    "attention.self.key"), H, H, 1);
		v = proj(g, x, NM(distil ? "attention.v_lin" :
				    "attention.self.value"), H, H, 1);
		q = transpose(g, reshape(g, q, 4, (int64_t)0, (int64_t)0,
					 (int64_t)hq, (int64_t)hd),
			      4, (int64_t)0, (int64_t)2, (int64_t)1, (int64_t)3);
		k = transpose(g, reshape(g, k, 4, (int64_t)0, (int64_t)0,
					 (int64_t)hq, (int64_t)hd),
			      4, (int64_t)0, (int64_t)2, (int64_t)3, (int64_t)1);
		v = transpose(g, reshape(g, v, 4, (int64_t)0, (int64_t)0,
					 (int64_t)hq, (int64_t)hd),
			      4, (int64_t)0, (int64_t)2, (int64_t)1, (int64_t)3);
		s = OP2(g, "Mul", OP2(g, "MatMul", q, k),
			scalar_f(g, m->attn_scale));
		s = OP2(g, "Add", s, mask);
		s = opa(g, "Softmax", NULL, &sm, 1, 1, &s);
		a = OP2(g, "MatMul", s, v);
		a = reshape(g, transpose(g, a, 4, (int64_t)0, (int64_t)2,
					 (int64_t)1, (int64_t)3),
			    3, (int64_t)0, (int64_t)0, (int64_t)-1);
		a = proj(g, a, NM(distil ? "attention.out_lin" :
				    "attention.output.dense"), H, H, 1);
		x = layernorm(g, OP2(g, "Add", a, x),
			      NM(distil ? "sa_layer_norm" :
				 "attention.output.LayerNorm"), H, m->eps);
		h = proj(g, x, NM(distil ? "ffn.lin1" : "intermediate.dense"),
			   I, H, 1);
		h = act(g, h, m->act);
		h = proj(g, h, NM(distil ? "ffn.lin2" : "output.dense"), H, I,
			   1);
		x = layernorm(g, OP2(g, "Add", h, x),
			      NM(distil ? "output_layer_norm" : "output.LayerNorm"),
			      H, m->eps);
#undef NM
	}
	if (g->bad)
		return g->err->code;
	{
		struct hf_onnx_attr ax1 = ai("axis", 1);

		first = opa(g, "Gather", NULL, &ax1, 1, 2,
			    (const char *[]){ x, scalar_i64(g, 0) });	/* [B, H] */
	}
	if (task == ENC_BASE) {
		const char *out = "last_hidden_state";

		hf_onnx_node(g->o, "Identity", NULL, NULL, &x, 1, &out, 1, NULL,
			     0);
		if (m->pooler.w.t[0]) {
			const char *po = "pooler_output";
			const char *y = OP1(g, "Tanh", proj(g, first,
							       "pooler.dense",
							       H, H, 1));

			hf_onnx_node(g->o, "Identity", NULL, NULL, &y, 1, &po, 1,
				     NULL, 0);
		}
	} else if (task == ENC_MLM) {
		const char *lg = "logits", *t, *b, *y;
		const char *dense, *ln, *bias, *dec;
		enum hf_act a = roberta ? HF_ACT_GELU_ERF : m->act;
		const char *saved = m->pfx;

		if (m->fam == FAM_BERT) {
			dense = "cls.predictions.transform.dense";
			ln = "cls.predictions.transform.LayerNorm";
			bias = has_tensor(m, "cls.predictions.bias") ?
				       "cls.predictions.bias" :
				       "cls.predictions.decoder.bias";
			dec = "cls.predictions.decoder.weight";
		} else if (roberta) {
			dense = "lm_head.dense";
			ln = "lm_head.layer_norm";
			bias = has_tensor(m, "lm_head.bias") ? "lm_head.bias" :
							     "lm_head.decoder.bias";
			dec = "lm_head.decoder.weight";
		} else {
			dense = "vocab_transform";
			ln = "vocab_layer_norm";
			bias = "vocab_projector.bias";
			dec = "vocab_projector.weight";
		}
		m->pfx = "";
		t = act(g, proj(g, x, dense, H, H, 1), a);
		t = layernorm(g, t, ln, H, m->eps);
		b = vec(g, m->vocab, "%s", bias);
		if (has_tensor(m, dec))
			y = linear_w(g, t, weight(g, dec, m->vocab * H), m->vocab,
				     H, b, "mlm.decoder");
		else if (g->var == HF_ONNX_V_F32 || g->var == HF_ONNX_V_FP16)
			y = OP2(g, "Add", OP2(g, "MatMul", t,
					      transpose(g, g->embed_f32, 2,
							(int64_t)1, (int64_t)0)),
				b);
		else {
			m->pfx = saved;
			y = linear_w(g, t, weightf(g, m->vocab * H,
						   "%s.word_embeddings.weight",
						   emb),
				     m->vocab, H, b, "mlm.decoder");
		}
		m->pfx = saved;
		hf_onnx_node(g->o, "Identity", NULL, NULL, &y, 1, &lg, 1, NULL,
			     0);
	} else {
		const char *lg = "logits", *y;
		const char *saved = m->pfx;
		size_t nl = m->nlabels;

		m->pfx = "";
		if (m->cls == CLS_POOLER) {
			m->pfx = saved;
			y = OP1(g, "Tanh", proj(g, first, "pooler.dense", H, H, 1));
			m->pfx = "";
			y = proj(g, y, "classifier", nl, H, 1);
		} else if (m->cls == CLS_ROBERTA) {
			y = OP1(g, "Tanh", proj(g, first, "classifier.dense", H,
						  H, 1));
			y = proj(g, y, "classifier.out_proj", nl, H, 1);
		} else {
			y = OP1(g, "Relu", proj(g, first, "pre_classifier", H, H,
						  1));
			y = proj(g, y, "classifier", nl, H, 1);
		}
		m->pfx = saved;
		hf_onnx_node(g->o, "Identity", NULL, NULL, &y, 1, &lg, 1, NULL,
			     0);
	}
	return g->bad ? g->err->code : 0;
}

/* ---- files ---- */

static const char *const suffix[] = { "", "_fp16", "_quantized", "_q4" };

static int build_write(struct hf_model *m, const char *graph, int task,
		       unsigned var, const char *path, int external,
		       struct hf_err *err)
{
	struct g g = { .m = m, .var = var, .err = err };
	int rc;

	if ((rc = hf_onnx_new(&g.o, graph, err)))
		return rc;
	hf_onnx_opset(g.o, "", HF_ONNX_OPSET);
	if (var == HF_ONNX_V_Q4)
		hf_onnx_opset(g.o, "com.microsoft", 1);
	rc = m->encoder ? encoder_graph(&g, task) : decoder_graph(&g);
	if (!rc && !g.bad)
		rc = hf_onnx_write(g.o, path, HF_ONNX_IR, external, err);
	else if (!rc)
		rc = err->code;
	hf_onnx_free(g.o);
	for (size_t i = 0; i < g.nnames; i++)
		free(g.names[i]);
	free(g.names);
	return rc;
}

static int mkdir_p(const char *path, struct hf_err *err)
{
	char *p = strdup(path);

	if (!p)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) && errno != EEXIST) {
			hf_err_errno(err, "cannot create '%s'", p);
			free(p);
			return HF_EIO;
		}
		*s = '/';
	}
	if (mkdir(p, 0755) && errno != EEXIST) {
		hf_err_errno(err, "cannot create '%s'", p);
		free(p);
		return HF_EIO;
	}
	free(p);
	return 0;
}

/* Copy dir/name to out/name through a temporary name; absent is fine. */
static int copy_file(const char *dir, const char *out, const char *name,
		     struct hf_err *err)
{
	char *src = hf_path_join(dir, name), *dst = hf_path_join(out, name);
	char *buf = NULL;
	size_t len;
	struct hf_atomic a;
	int rc = 0;

	if (!src || !dst) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if (!hf_file_exists(src))
		goto out;
	if ((rc = hf_file_read(&buf, &len, src, err)) ||
	    (rc = hf_atomic_open(&a, dst, err)))
		goto out;
	if (len && fwrite(buf, 1, len, a.f) != len) {
		rc = hf_err_errno(err, "cannot write '%s'", dst);
		hf_atomic_abort(&a);
		goto out;
	}
	rc = hf_atomic_commit(&a, err);
out:
	free(buf);
	free(src);
	free(dst);
	return rc;
}

/* A quantized checkpoint's weights go out as floats (or the variants'
 * own blocks): its config.json loses the quantization_config, written
 * as hf-quantize --dequantize writes it. */
static int float_config(const char *out, struct hf_err *err)
{
	char *path = hf_path_join(out, "config.json");
	json_t *c = NULL;
	struct hf_atomic a;
	int rc;

	if (!path)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = hf_json_load_file(&c, path, err)))
		goto out;
	json_object_del(c, "quantization_config");
	if ((rc = hf_atomic_open(&a, path, err)))
		goto out;
	if (json_dumpf(c, a.f, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) ||
	    fputc('\n', a.f) == EOF) {
		hf_atomic_abort(&a);
		rc = hf_err_errno(err, "cannot write '%s'", path);
		goto out;
	}
	rc = hf_atomic_commit(&a, err);
out:
	json_decref(c);
	free(path);
	return rc;
}

int hf_export_onnx(const char *dir, const char *out,
		   const struct hf_onnx_opts *o, struct hf_err *err)
{
	static const char *const files[] = {
		"config.json", "generation_config.json", "tokenizer.json",
		"tokenizer_config.json", "special_tokens_map.json",
		"tokenizer.model", "vocab.txt", "vocab.json", "merges.txt",
		"added_tokens.json", "chat_template.jinja", "modules.json",
		"sentence_bert_config.json",
	};
	struct hf_model *m = NULL;
	unsigned var = o && o->variants ? o->variants : HF_ONNX_V_ALL;
	/* HF_ONNX_EXTERNAL=1 lets a test of the command ask for the side
	 * file on a small model */
	const char *env = getenv("HF_ONNX_EXTERNAL");
	int external = o ? o->external : env && !strcmp(env, "1");
	char *odir = NULL;
	int rc;

	if ((rc = hf_model_open(&m, dir, NULL, 1, err)))
		return rc;
	if (!m->encoder && m->rope_dynamic == 1) {
		rc = hf_err_set(err, HF_EUNSUPPORTED,
				"%s/config.json: rope_scaling 'dynamic' changes "
				"its frequencies with the sequence length; hf "
				"does not export it to ONNX", dir);
		goto out;
	}
	if (!m->encoder && m->cls == CLS_SCORE) {
		rc = hf_err_set(err, HF_EUNSUPPORTED,
				"%s: a %s sequence classifier; ONNX export "
				"writes decoders as causal LMs only", dir,
				m->cfg->model_type);
		goto out;
	}
	if (!(odir = hf_path_join(out, "onnx"))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = mkdir_p(odir, err)))
		goto out;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if ((rc = copy_file(dir, out, files[i], err)))
			goto out;
	if (m->qc && (rc = float_config(out, err)))
		goto out;
	for (int task = 0; task < 3; task++) {
		static const char *const graph[] = { "model", "masked_lm",
						     "sequence_classification" };

		if (task == ENC_MLM && (!m->encoder || !m->head.w.t[0]))
			continue;
		if (task == ENC_CLS && (!m->encoder || m->cls == CLS_NONE))
			continue;
		for (int v = 0; v < 4; v++) {
			char path[4096];

			if (!(var & (1u << v)))
				continue;
			snprintf(path, sizeof(path), "%s/%s%s.onnx", odir,
				 graph[task], suffix[v]);
			hf_log_info("writing %s", path);
			if ((rc = build_write(m, graph[task], task, 1u << v, path,
					      external, err)))
				goto out;
		}
	}
out:
	free(odir);
	hf_model_free(m);
	return rc;
}
