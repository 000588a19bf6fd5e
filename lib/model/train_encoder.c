/* lib/model/train_encoder.c: the training forward and backward of the
 * BERT-style encoders through their masked-LM heads (modeling_bert.py,
 * modeling_roberta.py, modeling_distilbert.py, eager, no dropout), the
 * same model encoder.c runs: word + position (+ token type 0)
 * embeddings and their LayerNorm, post-LN blocks with bidirectional
 * attention under the key padding mask, the MLM transform (dense, act,
 * LayerNorm) and the decoder (tied to the word embeddings unless
 * stored) with its bias; the loss scores position t against label t.
 * Also what GPT-2 (train_gpt2.c) shares with them: parameters, linears
 * with their adapters, buffers, embeddings, head and loss. */
#include "model/train_ln.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/ops.h"
#include "train/ops_ln.h"
#include "train/qlora.h"

#define NONE LN_NONE
#define MAX_HEAD_DIM 1024	/* the stack rows of ops_attn.c */
#define ZERO(p, n) memset((p), 0, (n) * sizeof(float))

/* ---- parameters ---- */

int ln_add_param(struct hf_train_ln *t, size_t *idx, int required,
		 struct hf_err *err, const char *fmt, ...)
{
	struct hf_model *m = t->m;
	const struct hf_tensor *ts;
	struct hf_param *p;
	char name[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	*idx = NONE;
	ts = find_tensor(m, name);
	if (!ts) {
		if (!required)
			return 0;
		return hf_err_set(err, HF_ENOTFOUND,
				  "%s: missing tensor '%s%s'", m->dir,
				  m->pfx ? m->pfx : "", name);
	}
	for (size_t i = 0; i < t->np; i++)
		if (!strcmp(t->p[i].name, ts->name)) {
			*idx = i;
			return 0;
		}
	if (ts->dtype != HF_DTYPE_F32 && ts->dtype != HF_DTYPE_F16 &&
	    ts->dtype != HF_DTYPE_BF16)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: tensor '%s' has dtype %s; training needs "
				  "F32, F16 or BF16 weights", m->dir, ts->name,
				  hf_dtype_name(ts->dtype));
	if (ts->ndim < 1 || ts->ndim > 2)
		return hf_err_set(err, HF_EFORMAT,
				  "%s: tensor '%s' has %d dims, a parameter "
				  "here has 1 or 2", m->dir, ts->name, ts->ndim);
	if (t->np == t->capp) {
		size_t cap = t->capp ? 2 * t->capp : 64;
		struct hf_param *np = realloc(t->p, cap * sizeof(*np));

		if (!np)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		t->p = np;
		t->capp = cap;
	}
	p = &t->p[t->np];
	memset(p, 0, sizeof(*p));
	p->ndim = ts->ndim;
	p->shape[0] = ts->shape[0];
	p->shape[1] = ts->ndim == 2 ? ts->shape[1] : 1;
	p->n = (size_t)hf_tensor_numel(ts);
	p->name = strdup(ts->name);
	p->w = malloc(p->n * sizeof(float));
	p->g = calloc(p->n, sizeof(float));
	if (!p->name || !p->w || !p->g) {
		free((char *)p->name);
		free(p->w);
		free(p->g);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	hf_to_f32_n(p->w, ts->data, ts->dtype, p->n);
	*idx = t->np++;
	return 0;
}

/* Parameter i is (d0, d1) (d1 0: a vector of d0). */
int ln_want_shape(struct hf_train_ln *t, size_t i, size_t d0, size_t d1,
		  struct hf_err *err)
{
	const struct hf_param *p = &t->p[i];

	if (d1 && (p->ndim != 2 || (size_t)p->shape[0] != d0 ||
		   (size_t)p->shape[1] != d1))
		return hf_err_set(err, HF_EFORMAT,
				  "%s: tensor '%s' is not of shape [%zu, %zu]",
				  t->m->dir, p->name, d0, d1);
	if (!d1 && (p->ndim != 1 || (size_t)p->shape[0] != d0))
		return hf_err_set(err, HF_EFORMAT,
				  "%s: tensor '%s' is not of shape [%zu]",
				  t->m->dir, p->name, d0);
	return 0;
}

/* The linear stored under module name: weight (out, in), or [in, out]
 * for a Conv1D, and the bias (required when bias, else optional). */
int ln_add_lin(struct hf_train_ln *t, size_t *idx, size_t layer, size_t out,
	       size_t in, int conv, int bias, struct hf_err *err,
	       const char *fmt, ...)
{
	struct ln_lin *l;
	char mod[160], name[192];
	size_t w, b;
	va_list ap;
	const struct hf_tensor *ts;
	struct hf_weight qw;
	int quant = 0;

	va_start(ap, fmt);
	vsnprintf(mod, sizeof(mod), fmt, ap);
	va_end(ap);
	/* a quantized base: the weight as stored unless it is plain float
	 * (the modules the quantizer left out) */
	snprintf(name, sizeof(name), "%s.weight", mod);
	ts = find_tensor(t->m, name);
	if (t->o.quant_base && t->m->qc &&
	    (!ts || (ts->dtype != HF_DTYPE_F32 && ts->dtype != HF_DTYPE_F16 &&
		     ts->dtype != HF_DTYPE_BF16))) {
		if (train_quant_bind(t->m, &qw, name, sizeof(name), mod, out,
				     in, err))
			return err->code;
		quant = 1;
		w = NONE;
	} else if (ln_add_param(t, &w, 1, err, "%s.weight", mod) ||
		   ln_want_shape(t, w, conv ? in : out, conv ? out : in,
				 err)) {
		return err->code;
	}
	if (ln_add_param(t, &b, bias, err, "%s.bias", mod) ||
	    (b != NONE && ln_want_shape(t, b, out, 0, err)))
		return err->code;
	if (t->nlin == t->caplin) {
		size_t cap = t->caplin ? 2 * t->caplin : 32;
		struct ln_lin *nl = realloc(t->lins, cap * sizeof(*nl));

		if (!nl)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		t->lins = nl;
		t->caplin = cap;
	}
	l = &t->lins[t->nlin];
	memset(l, 0, sizeof(*l));
	if (quant) {
		snprintf(l->name, sizeof(l->name), "%s", name);
		l->quant = 1;
		l->qw = qw;
		if (hf_qlinear_scratch(in) > t->nqscr)
			t->nqscr = hf_qlinear_scratch(in);
	} else {
		snprintf(l->name, sizeof(l->name), "%.*s",
			 (int)(strlen(t->p[w].name) - strlen(".weight")),
			 t->p[w].name);
	}
	l->conv = conv;
	l->pub.layer = layer;
	l->pub.in = in;
	l->pub.out = out;
	l->pub.w = w;
	l->pub.b = b;
	*idx = t->nlin++;
	return 0;
}

/* The head: the linear of the word embeddings (tied) or of the stored
 * decoder weight, named as transformers names the module, with the
 * bias parameter bias (NONE: none). */
static int add_head(struct hf_train_ln *t, const char *dec, const char *mod,
		    const char *bias, struct hf_err *err)
{
	const char *saved = t->m->pfx;
	struct ln_lin *l;
	size_t w = t->embed, b = NONE;
	char name[200];
	int rc = 0;

	t->m->pfx = "";
	snprintf(name, sizeof(name), "%s.weight", dec ? dec : "");
	if (dec && has_tensor(t->m, name))
		rc = ln_add_param(t, &w, 1, err, "%s", name) ||
		     ln_want_shape(t, w, t->V, t->H, err);
	if (!rc && bias)
		rc = ln_add_param(t, &b, 1, err, "%s", bias) ||
		     ln_want_shape(t, b, t->V, 0, err);
	t->m->pfx = saved;
	if (rc)
		return err->code;
	if (t->nlin == t->caplin) {
		size_t cap = t->caplin ? 2 * t->caplin : 32;
		struct ln_lin *nl = realloc(t->lins, cap * sizeof(*nl));

		if (!nl)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		t->lins = nl;
		t->caplin = cap;
	}
	l = &t->lins[t->nlin];
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", mod);
	l->pub.layer = NONE;
	l->pub.in = t->H;
	l->pub.out = t->V;
	l->pub.w = w;
	l->pub.b = b;
	t->head = t->nlin++;
	return 0;
}

static int ln_pair(struct hf_train_ln *t, size_t *w, size_t *b,
		   struct hf_err *err, const char *base)
{
	return ln_add_param(t, w, 1, err, "%s.weight", base) ||
	       ln_want_shape(t, *w, t->H, 0, err) ||
	       ln_add_param(t, b, 1, err, "%s.bias", base) ||
	       ln_want_shape(t, *b, t->H, 0, err) ? err->code : 0;
}

static int enc_load(struct hf_train_ln *t, struct hf_err *err)
{
	struct hf_model *m = t->m;
	size_t H = t->H, I = t->I;
	int distil = m->fam == FAM_DISTILBERT;
	const char *dense, *ln, *bias, *dec, *hmod;
	char p[160], n[220];
	int rc;

	if ((rc = ln_add_param(t, &t->pos, 1, err,
			       "embeddings.position_embeddings.weight")) ||
	    (rc = ln_want_shape(t, t->pos, t->npos, H, err)))
		return rc;
	if (!distil &&
	    ((rc = ln_add_param(t, &t->type, 1, err,
				"embeddings.token_type_embeddings.weight")) ||
	     (rc = ln_want_shape(t, t->type, m->n_types, H, err))))
		return rc;
	if ((rc = ln_pair(t, &t->elnw, &t->elnb, err, "embeddings.LayerNorm")))
		return rc;
	/* the pooler: stored, unused by the MLM head, so a parameter that
	 * starts frozen (no gradient, as torch leaves its .grad None: the
	 * optimizer skips it), kept so that a written model still has it */
	if (!distil && has_tensor(m, "pooler.dense.weight")) {
		size_t pw, pb;

		if ((rc = ln_add_param(t, &pw, 1, err, "pooler.dense.weight")) ||
		    (rc = ln_want_shape(t, pw, H, H, err)) ||
		    (rc = ln_add_param(t, &pb, 0, err, "pooler.dense.bias")) ||
		    (pb != NONE && (rc = ln_want_shape(t, pb, H, 0, err))))
			return rc;
		free(t->p[pw].g);
		t->p[pw].g = NULL;
		if (pb != NONE) {
			free(t->p[pb].g);
			t->p[pb].g = NULL;
		}
	}
	for (size_t l = 0; l < t->nl; l++) {
		struct ln_layer *L = &t->L[l];
		const char *nm[8] = {
			"attention.self.query", "attention.self.key",
			"attention.self.value", "attention.output.dense",
			"intermediate.dense", "output.dense",
			"attention.output.LayerNorm", "output.LayerNorm" };
		const char *nd[8] = {
			"attention.q_lin", "attention.k_lin", "attention.v_lin",
			"attention.out_lin", "ffn.lin1", "ffn.lin2",
			"sa_layer_norm", "output_layer_norm" };
		const char *const *x = distil ? nd : nm;

		L->qkv = NONE;
		L->scale = m->attn_scale;
		snprintf(p, sizeof(p), distil ? "transformer.layer.%zu." :
						"encoder.layer.%zu.", l);
		if (ln_add_lin(t, &L->q, l, H, H, 0, 1, err, "%s%s", p, x[0]) ||
		    ln_add_lin(t, &L->k, l, H, H, 0, 1, err, "%s%s", p, x[1]) ||
		    ln_add_lin(t, &L->v, l, H, H, 0, 1, err, "%s%s", p, x[2]) ||
		    ln_add_lin(t, &L->o, l, H, H, 0, 1, err, "%s%s", p, x[3]))
			return err->code;
		snprintf(n, sizeof(n), "%s%s", p, x[6]);
		if ((rc = ln_pair(t, &L->ln1w, &L->ln1b, err, n)))
			return rc;
		if (ln_add_lin(t, &L->up, l, I, H, 0, 1, err, "%s%s", p, x[4]) ||
		    ln_add_lin(t, &L->down, l, H, I, 0, 1, err, "%s%s", p, x[5]))
			return err->code;
		snprintf(n, sizeof(n), "%s%s", p, x[7]);
		if ((rc = ln_pair(t, &L->ln2w, &L->ln2b, err, n)))
			return rc;
	}
	switch (m->fam) {
	case FAM_BERT:
		dense = "cls.predictions.transform.dense";
		ln = "cls.predictions.transform.LayerNorm";
		bias = "cls.predictions.bias";
		dec = "cls.predictions.decoder";
		hmod = "cls.predictions.decoder";
		break;
	case FAM_ROBERTA:
		dense = "lm_head.dense";
		ln = "lm_head.layer_norm";
		bias = "lm_head.bias";
		dec = "lm_head.decoder";
		hmod = "lm_head.decoder";
		break;
	default:
		dense = "vocab_transform";
		ln = "vocab_layer_norm";
		bias = "vocab_projector.bias";
		dec = "vocab_projector";
		hmod = "vocab_projector";
		break;
	}
	snprintf(n, sizeof(n), "%s.weight", dense);
	{
		const char *saved = m->pfx;
		int have;

		m->pfx = "";
		have = has_tensor(m, n);
		if (have && !has_tensor(m, bias)) {
			/* older files: the bias only as decoder.bias */
			snprintf(p, sizeof(p), "%s.bias", dec);
			if (has_tensor(m, p))
				bias = p;
		}
		if (have)
			rc = ln_add_lin(t, &t->dense, NONE, H, H, 0, 1, err,
					"%s", dense) ||
			     ln_pair(t, &t->fnw, &t->fnb, err, ln) ? err->code : 0;
		m->pfx = saved;
		if (!have)
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "%s: no masked-LM head in the weights "
					  "(no '%s'); training needs one",
					  m->dir, n);
		if (rc)
			return rc;
	}
	return add_head(t, dec, hmod, bias, err);
}

int hf_train_ln_new(struct hf_train_ln **out, struct hf_model *m,
		    const struct hf_train_opts *opts, struct hf_err *err)
{
	struct hf_train_ln *t;
	int rc;

	*out = NULL;
	if (m->fam != FAM_GPT2 && m->fam != FAM_BERT &&
	    m->fam != FAM_ROBERTA && m->fam != FAM_DISTILBERT)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: model_type '%s' has no training forward",
				  m->dir, m->cfg->model_type);
	if ((rc = train_quant_check(m, opts, err)))
		return rc;
	if (m->hd > MAX_HEAD_DIM)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: head_dim %zu is over the %d training "
				  "supports", m->dir, m->hd, MAX_HEAD_DIM);
	if (m->hq * m->hd != m->hidden)
		return hf_err_set(err, HF_EFORMAT,
				  "%s: %zu heads of %zu are not the hidden size "
				  "%zu", m->dir, m->hq, m->hd, m->hidden);
	t = calloc(1, sizeof(*t));
	if (!t)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	t->m = m;
	if (opts)
		t->o = *opts;
	t->pool = hf_backend_cpu_pool(m->be);
	t->gpt2 = m->fam == FAM_GPT2;
	t->H = m->hidden;
	t->V = m->vocab;
	t->I = m->inter;
	t->hq = m->hq;
	t->hd = m->hd;
	t->nl = m->nl;
	t->npos = m->n_pos_rows;
	t->eps = m->eps;
	t->act = m->act;
	/* RobertaLMHead applies gelu whatever hidden_act says */
	t->mlm_act = m->fam == FAM_ROBERTA ? HF_ACT_GELU_ERF : m->act;
	t->type = t->elnw = t->elnb = t->dense = NONE;
	t->L = calloc(t->nl, sizeof(*t->L));
	if (!t->L) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = ln_add_param(t, &t->embed, 1, err,
			       t->gpt2 ? "wte.weight" :
					 "embeddings.word_embeddings.weight")) ||
	    (rc = ln_want_shape(t, t->embed, t->V, t->H, err)))
		goto fail;
	if (t->gpt2) {
		if ((rc = ln_add_param(t, &t->pos, 1, err, "wpe.weight")) ||
		    (rc = ln_want_shape(t, t->pos, t->npos, t->H, err)) ||
		    (rc = ln_gpt2_load(t, err)) ||
		    /* GPT2LMHeadModel's lm_head is always wte */
		    (rc = add_head(t, NULL, "lm_head", NULL, err)))
			goto fail;
	} else if ((rc = enc_load(t, err))) {
		goto fail;
	}
	for (size_t i = 0; i < t->nlin; i++) {
		t->lins[i].pub.name = t->lins[i].name;
		t->lins[i].pub.qw = t->lins[i].quant ? &t->lins[i].qw : NULL;
	}
	if (t->nqscr && !(t->qscr = malloc(t->nqscr * sizeof(float)))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	*out = t;
	return 0;
fail:
	hf_train_ln_free(t);
	return rc;
}

void hf_train_ln_free(struct hf_train_ln *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->np; i++) {
		free((char *)t->p[i].name);
		free(t->p[i].w);
		free(t->p[i].g);
	}
	free(t->p);
	free(t->lins);
	free(t->L);
	free(t->acts);
	free(t->arena);
	free(t->qscr);
	free(t);
}

size_t hf_train_ln_nparams(const struct hf_train_ln *t)
{
	return t->np;
}

struct hf_param *hf_train_ln_param(struct hf_train_ln *t, size_t i)
{
	return i < t->np ? &t->p[i] : NULL;
}

struct hf_param *hf_train_ln_find(struct hf_train_ln *t, const char *name)
{
	for (size_t i = 0; i < t->np; i++)
		if (!strcmp(t->p[i].name, name))
			return &t->p[i];
	return NULL;
}

int hf_train_ln_set_trainable(struct hf_train_ln *t, size_t i, int on,
			      struct hf_err *err)
{
	struct hf_param *p;

	if (i >= t->np)
		return hf_err_set(err, HF_EINVAL, "no parameter %zu (of %zu)",
				  i, t->np);
	p = &t->p[i];
	if (!on) {
		free(p->g);
		p->g = NULL;
	} else if (!p->g && !(p->g = calloc(p->n, sizeof(float)))) {
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

void hf_train_ln_zero_grad(struct hf_train_ln *t)
{
	for (size_t i = 0; i < t->np; i++)
		if (t->p[i].g)
			ZERO(t->p[i].g, t->p[i].n);
}

double hf_train_ln_grad_norm(const struct hf_train_ln *t)
{
	double s = 0.0;

	for (size_t i = 0; i < t->np; i++)
		if (t->p[i].g)
			for (size_t j = 0; j < t->p[i].n; j++)
				s += (double)t->p[i].g[j] * t->p[i].g[j];
	return sqrt(s);
}

size_t hf_train_ln_nlinears(const struct hf_train_ln *t)
{
	return t->nlin;
}

const struct hf_train_lin *hf_train_ln_linear(const struct hf_train_ln *t,
					      size_t i)
{
	return i < t->nlin ? &t->lins[i].pub : NULL;
}

int hf_train_ln_set_adapter(struct hf_train_ln *t, size_t i,
			    const struct hf_train_adapter *ad,
			    struct hf_err *err)
{
	if (i >= t->nlin)
		return hf_err_set(err, HF_EINVAL, "no linear %zu (of %zu)", i,
				  t->nlin);
	t->lins[i].has_ad = ad != NULL;
	if (ad)
		t->lins[i].ad = *ad;
	return 0;
}

float *ln_w(struct hf_train_ln *t, size_t i)
{
	return i == NONE ? NULL : t->p[i].w;
}

float *ln_g(struct hf_train_ln *t, size_t i)
{
	return i == NONE ? NULL : t->p[i].g;
}

/* ---- linears with their adapters ---- */

int ln_lin_fwd(struct hf_train_ln *t, size_t li, float *y, const float *x,
	       size_t n, int recompute, struct hf_err *err)
{
	struct ln_lin *l = &t->lins[li];
	const float *b = ln_w(t, l->pub.b), *w;

	if (!n)
		return 0;
	w = l->quant ? NULL : t->p[l->pub.w].w;
	if (l->quant)
		hf_qlinear_forward(y, x, &l->qw, b, n, t->pool);
	else if (l->conv)
		hf_conv1d_forward(y, x, w, b, n, l->pub.in, l->pub.out,
				  t->pool);
	else
		hf_linear_forward(y, x, w, b, n, l->pub.in, l->pub.out,
				  t->pool);
	return l->has_ad ? l->ad.forward(l->ad.ctx, y, x, n, recompute, err) :
			   0;
}

int ln_lin_bwd(struct hf_train_ln *t, size_t li, float *dx, const float *dy,
	       const float *x, size_t n, struct hf_err *err)
{
	struct ln_lin *l = &t->lins[li];
	float *db = ln_g(t, l->pub.b), *dw;
	const float *w;

	if (!n)
		return 0;
	dw = l->quant ? NULL : t->p[l->pub.w].g;
	w = l->quant ? NULL : t->p[l->pub.w].w;
	if (l->quant)
		hf_qlinear_backward(dx, db, dy, &l->qw, n, t->qscr, t->pool);
	else if (l->conv)
		hf_conv1d_backward(dx, dw, db, dy, x, w, n, l->pub.in,
				   l->pub.out, t->pool);
	else
		hf_linear_backward(dx, dw, db, dy, x, w, n, l->pub.in,
				   l->pub.out, t->pool);
	return l->has_ad ? l->ad.backward(l->ad.ctx, dx, dy, x, n, err) : 0;
}

/* ---- buffers ---- */

struct carver {
	char *base;
	size_t off;
};

static void *carve(struct carver *c, size_t bytes)
{
	size_t o = c->off;

	c->off += (bytes + 63) & ~(size_t)63;
	return c->base ? c->base + o : NULL;
}

#define F(n) ((float *)carve(c, (n) * sizeof(float)))
#define I32(n) ((int32_t *)carve(c, (n) * sizeof(int32_t)))

static void carve_all(struct hf_train_ln *t, struct carver *c, size_t N,
		      size_t B)
{
	size_t H = t->H, I = t->I;

	t->xs = F((t->nl + 1) * N * H);
	for (size_t i = 0; i < t->nacts; i++) {
		struct ln_act *A = &t->acts[i];

		if (t->gpt2) {
			A->h1 = F(N * H);
			A->mean1 = F(N);
		}
		A->rstd1 = F(N);
		if (!t->gpt2)
			A->mean1 = F(N);
		A->q = F(N * H);
		A->k = F(N * H);
		A->v = F(N * H);
		A->att = F(N * H);
		A->lse = F(B * t->hq * (N / B));
		A->r1 = F(N * H);
		A->x1 = F(N * H);
		A->mean2 = F(N);
		A->rstd2 = F(N);
		A->u = F(N * I);
		A->a = F(N * I);
		if (!t->gpt2)
			A->r2 = F(N * H);
	}
	if (!t->gpt2) {
		t->e0 = F(N * H);
		t->emean = F(N);
		t->erstd = F(N);
		t->mu = F(N * H);
		t->ma = F(N * H);
	}
	t->hfin = F(N * H);
	t->fmean = F(N);
	t->frstd = F(N);
	t->logits = F(t->chunk * t->V);
	t->lse = F(N);
	t->tmp = F(N * H);
	t->xscr = F(N * H);
	t->fz = F(N * 3 * H);
	t->dX = F(N * H);
	t->dh = F(N * H);
	t->dr = F(N * H);
	t->dq = F(N * H);
	t->dk = F(N * H);
	t->dv = F(N * H);
	t->datt = F(N * H);
	t->du = F(N * I);
	t->da = F(N * I);
	t->dfz = F(N * 3 * H);
	t->dlog = F(t->chunk * t->V);
	t->posid = I32(N);
	t->typeid = I32(N);
	t->tgt = I32(N);
	t->mask = I32(N);
}

#undef F
#undef I32

/* Buffers for B rows of T tokens (kept while they are big enough). */
static int buffers(struct hf_train_ln *t, size_t B, size_t T, int keep,
		   struct hf_err *err)
{
	size_t N = B * T, na = keep && !t->o.checkpointing ? t->nl : 1;
	struct carver c = { NULL, 0 };

	if (t->arena && t->capN == N && t->capB == B && t->nacts == na)
		return 0;
	free(t->arena);
	free(t->acts);
	t->arena = NULL;
	t->capN = 0;
	/* the head on chunks of at most 4M logits, as train_llama.c */
	t->chunk = t->o.logit_rows ? t->o.logit_rows :
				     ((size_t)4 << 20) / t->V;
	t->chunk = t->chunk < 1 ? 1 : t->chunk > N ? N : t->chunk;
	t->acts = calloc(na, sizeof(*t->acts));
	if (!t->acts)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	t->nacts = na;
	carve_all(t, &c, N, B);
	c.base = t->arena = malloc(c.off);
	if (!t->arena)
		return hf_err_set(err, HF_ENOMEM,
				  "out of memory for the activations of %zu "
				  "tokens (%zu MiB)", N, c.off >> 20);
	c.off = 0;
	carve_all(t, &c, N, B);
	t->capN = N;
	t->capB = B;
	return 0;
}

/* ---- one encoder layer ---- */

static int enc_layer_fwd(struct hf_train_ln *t, size_t l, struct ln_act *A,
			 const float *xin, float *xout, size_t B, size_t T,
			 int recompute, struct hf_err *err)
{
	const struct ln_layer *L = &t->L[l];
	size_t N = B * T, H = t->H, I = t->I;
	int rc;

	if ((rc = ln_lin_fwd(t, L->q, A->q, xin, N, recompute, err)) ||
	    (rc = ln_lin_fwd(t, L->k, A->k, xin, N, recompute, err)) ||
	    (rc = ln_lin_fwd(t, L->v, A->v, xin, N, recompute, err)))
		return rc;
	hf_attention_forward(A->att, A->lse, A->q, A->k, A->v, t->mask, B, T,
			     t->hq, t->hq, t->hd, 0, 0, L->scale, t->pool);
	if ((rc = ln_lin_fwd(t, L->o, t->tmp, A->att, N, recompute, err)))
		return rc;
	hf_add_forward(A->r1, t->tmp, xin, N * H);
	hf_layernorm_forward(A->x1, A->mean1, A->rstd1, A->r1,
			     ln_w(t, L->ln1w), ln_w(t, L->ln1b), N, H, t->eps);
	if ((rc = ln_lin_fwd(t, L->up, A->u, A->x1, N, recompute, err)))
		return rc;
	hf_act_forward(A->a, A->u, N * I, t->act);
	if ((rc = ln_lin_fwd(t, L->down, t->tmp, A->a, N, recompute, err)))
		return rc;
	hf_add_forward(A->r2, t->tmp, A->x1, N * H);
	hf_layernorm_forward(xout, A->mean2, A->rstd2, A->r2,
			     ln_w(t, L->ln2w), ln_w(t, L->ln2b), N, H, t->eps);
	return 0;
}

/* t->dX holds d xout on entry and d xin on return. */
static int enc_layer_bwd(struct hf_train_ln *t, size_t l,
			 const struct ln_act *A, const float *xin, size_t B,
			 size_t T, struct hf_err *err)
{
	const struct ln_layer *L = &t->L[l];
	size_t N = B * T, H = t->H, I = t->I;
	int rc;

	/* xout = LN2(x1 + down(act(up(x1)))): dr = d r2 */
	ZERO(t->dr, N * H);
	hf_layernorm_backward(t->dr, ln_g(t, L->ln2w), ln_g(t, L->ln2b), t->dX,
			      A->r2, ln_w(t, L->ln2w), A->mean2, A->rstd2, N,
			      H);
	ZERO(t->da, N * I);
	if ((rc = ln_lin_bwd(t, L->down, t->da, t->dr, A->a, N, err)))
		return rc;
	ZERO(t->du, N * I);
	hf_act_backward(t->du, t->da, A->u, N * I, t->act);
	/* d x1 = dr + up^T du, into dr */
	if ((rc = ln_lin_bwd(t, L->up, t->dr, t->du, A->x1, N, err)))
		return rc;
	/* x1 = LN1(xin + o(attn(q, k, v of xin))): dX = d r1 */
	ZERO(t->dX, N * H);
	hf_layernorm_backward(t->dX, ln_g(t, L->ln1w), ln_g(t, L->ln1b), t->dr,
			      A->r1, ln_w(t, L->ln1w), A->mean1, A->rstd1, N,
			      H);
	ZERO(t->datt, N * H);
	if ((rc = ln_lin_bwd(t, L->o, t->datt, t->dX, A->att, N, err)))
		return rc;
	ZERO(t->dq, N * H);
	ZERO(t->dk, N * H);
	ZERO(t->dv, N * H);
	hf_attention_backward(t->dq, t->dk, t->dv, t->datt, A->q, A->k, A->v,
			      A->att, A->lse, t->mask, B, T, t->hq, t->hq,
			      t->hd, 0, 0, L->scale, t->pool);
	/* d xin = d r1 (residual) + the three projections' */
	if ((rc = ln_lin_bwd(t, L->q, t->dX, t->dq, xin, N, err)) ||
	    (rc = ln_lin_bwd(t, L->k, t->dX, t->dk, xin, N, err)) ||
	    (rc = ln_lin_bwd(t, L->v, t->dX, t->dv, xin, N, err)))
		return rc;
	return 0;
}

static int layer_fwd(struct hf_train_ln *t, size_t l, struct ln_act *A,
		     const float *xin, float *xout, size_t B, size_t T,
		     int recompute, struct hf_err *err)
{
	return t->gpt2 ? ln_gpt2_layer_fwd(t, l, A, xin, xout, B, T, recompute,
					   err) :
			 enc_layer_fwd(t, l, A, xin, xout, B, T, recompute,
				       err);
}

static int layer_bwd(struct hf_train_ln *t, size_t l, const struct ln_act *A,
		     const float *xin, size_t B, size_t T, struct hf_err *err)
{
	return t->gpt2 ? ln_gpt2_layer_bwd(t, l, A, xin, B, T, err) :
			 enc_layer_bwd(t, l, A, xin, B, T, err);
}

/* ---- the whole model ---- */

static int check_batch(struct hf_train_ln *t, const int32_t *ids,
		       const int32_t *labels, size_t B, size_t T,
		       struct hf_err *err)
{
	size_t maxT = t->npos - (size_t)t->m->pos_offset;

	if (!B || !T)
		return hf_err_set(err, HF_EINVAL, "empty batch: %zu rows of "
				  "%zu tokens", B, T);
	if (t->npos < (size_t)t->m->pos_offset || T > maxT)
		return hf_err_set(err, HF_ERANGE,
				  "%zu tokens are more than the %zu positions of "
				  "the model", T,
				  t->npos < (size_t)t->m->pos_offset ? 0 : maxT);
	for (size_t i = 0; i < B * T; i++) {
		if (ids[i] < 0 || (size_t)ids[i] >= t->V)
			return hf_err_set(err, HF_ERANGE,
					  "token id %d (row %zu, position %zu) "
					  "is outside the vocabulary of %zu",
					  ids[i], i / T, i % T, t->V);
		if (labels && labels[i] != HF_IGNORE_INDEX &&
		    (labels[i] < 0 || (size_t)labels[i] >= t->V))
			return hf_err_set(err, HF_ERANGE,
					  "label %d (row %zu, position %zu) is "
					  "neither -100 nor in the vocabulary of "
					  "%zu", labels[i], i / T, i % T, t->V);
	}
	return 0;
}

/* The head and the loss on rows of hfin, chunk by chunk; with denom
 * (the backward) also the head's backward into t->dh, zeroed first. */
static int head(struct hf_train_ln *t, size_t N, const double *denom,
		double *sum, struct hf_err *err)
{
	size_t H = t->H, V = t->V, c;
	int rc;

	*sum = 0.0;
	if (denom)
		ZERO(t->dh, N * H);
	for (size_t r0 = 0; r0 < N; r0 += t->chunk) {
		size_t n = N - r0 < t->chunk ? N - r0 : t->chunk;

		if ((rc = ln_lin_fwd(t, t->head, t->logits, t->hfin + r0 * H,
				     n, 0, err)))
			return rc;
		*sum += hf_xent_forward(t->lse + r0, t->logits, t->tgt + r0, n,
					V, &c, t->pool);
		if (!denom)
			continue;
		ZERO(t->dlog, n * V);
		hf_xent_backward(t->dlog, t->logits, t->lse + r0, t->tgt + r0,
				 n, V, (float)(1.0 / *denom), t->pool);
		if ((rc = ln_lin_bwd(t, t->head, t->dh + r0 * H, t->dlog,
				     t->hfin + r0 * H, n, err)))
			return rc;
	}
	return 0;
}

/* The forward of B rows of T tokens and the summed loss (train_llama.c's
 * forward(): keep, denom and the head's backward alike). */
static int forward(struct hf_train_ln *t, const int32_t *ids,
		   const int32_t *labels, const int32_t *mask, size_t B,
		   size_t T, int keep, double *denom, double *sum,
		   size_t *count, struct hf_err *err)
{
	struct hf_model *m = t->m;
	size_t N = B * T, H = t->H, c = 0;
	float *xl;
	int rc;

	if ((rc = check_batch(t, ids, labels, B, T, err)) ||
	    (rc = buffers(t, B, T, keep, err)))
		return rc;
	for (size_t b = 0; b < B; b++) {
		int32_t cnt = 0;

		for (size_t i = 0; i < T; i++) {
			size_t r = b * T + i;

			t->mask[r] = mask ? (mask[r] != 0) : 1;
			t->typeid[r] = 0;
			if (m->fam == FAM_ROBERTA) {
				/* create_position_ids_from_input_ids */
				int pad = ids[r] == m->pos_offset - 1;

				cnt += !pad;
				t->posid[r] = pad ? m->pos_offset - 1 :
						    cnt + m->pos_offset - 1;
			} else {
				t->posid[r] = (int32_t)i;
			}
			if (t->gpt2)
				t->tgt[r] = i + 1 < T ? labels[r + 1] :
							HF_IGNORE_INDEX;
			else
				t->tgt[r] = labels[r];
		}
	}
	hf_embed_forward(t->xs, t->p[t->embed].w, ids, N, H);
	hf_embed_forward(t->tmp, t->p[t->pos].w, t->posid, N, H);
	if (t->gpt2) {
		hf_add_forward(t->xs, t->xs, t->tmp, N * H);
	} else {
		hf_add_forward(t->e0, t->xs, t->tmp, N * H);
		if (t->type != NONE) {
			hf_embed_forward(t->tmp, t->p[t->type].w, t->typeid, N,
					 H);
			hf_add_forward(t->e0, t->e0, t->tmp, N * H);
		}
		hf_layernorm_forward(t->xs, t->emean, t->erstd, t->e0,
				     ln_w(t, t->elnw), ln_w(t, t->elnb), N, H,
				     t->eps);
	}
	for (size_t l = 0; l < t->nl; l++)
		if ((rc = layer_fwd(t, l, &t->acts[t->nacts > 1 ? l : 0],
				    t->xs + l * N * H, t->xs + (l + 1) * N * H,
				    B, T, 0, err)))
			return rc;
	xl = t->xs + t->nl * N * H;
	if (t->gpt2) {
		hf_layernorm_forward(t->hfin, t->fmean, t->frstd, xl,
				     ln_w(t, t->fnw), ln_w(t, t->fnb), N, H,
				     t->eps);
	} else {
		if ((rc = ln_lin_fwd(t, t->dense, t->mu, xl, N, 0, err)))
			return rc;
		hf_act_forward(t->ma, t->mu, N * H, t->mlm_act);
		hf_layernorm_forward(t->hfin, t->fmean, t->frstd, t->ma,
				     ln_w(t, t->fnw), ln_w(t, t->fnb), N, H,
				     t->eps);
	}
	for (size_t r = 0; r < N; r++)
		c += t->tgt[r] != HF_IGNORE_INDEX;
	*count = c;
	if (denom && *denom <= 0) {
		if (!c)
			return hf_err_set(err, HF_EINVAL,
					  t->gpt2 ?
					  "no label to learn from: every label "
					  "after the first position is -100" :
					  "no label to learn from: every label "
					  "is -100");
		*denom = (double)c;
	}
	return head(t, N, denom, sum, err);
}

int hf_train_ln_eval(struct hf_train_ln *t, const int32_t *ids,
		     const int32_t *labels, const int32_t *mask, size_t B,
		     size_t T, double *loss, size_t *count, struct hf_err *err)
{
	double sum;
	int rc;

	if ((rc = forward(t, ids, labels, mask, B, T, 0, NULL, &sum, count,
			  err)))
		return rc;
	*loss = *count ? sum / (double)*count : 0.0;
	return 0;
}

int hf_train_ln_step(struct hf_train_ln *t, const int32_t *ids,
		     const int32_t *labels, const int32_t *mask, size_t B,
		     size_t T, double denom, double *loss, size_t *count,
		     struct hf_err *err)
{
	size_t N = B * T, H = t->H;
	float *xl;
	double sum;
	int rc;

	if ((rc = forward(t, ids, labels, mask, B, T, 1, &denom, &sum, count,
			  err)))
		return rc;
	*loss = sum / denom;
	xl = t->xs + t->nl * N * H;
	/* the final norm (GPT-2) or the MLM transform: dX = d xl */
	ZERO(t->dX, N * H);
	if (t->gpt2) {
		hf_layernorm_backward(t->dX, ln_g(t, t->fnw), ln_g(t, t->fnb),
				      t->dh, xl, ln_w(t, t->fnw), t->fmean,
				      t->frstd, N, H);
	} else {
		ZERO(t->dr, N * H);
		hf_layernorm_backward(t->dr, ln_g(t, t->fnw), ln_g(t, t->fnb),
				      t->dh, t->ma, ln_w(t, t->fnw), t->fmean,
				      t->frstd, N, H);
		ZERO(t->tmp, N * H);
		hf_act_backward(t->tmp, t->dr, t->mu, N * H, t->mlm_act);
		if ((rc = ln_lin_bwd(t, t->dense, t->dX, t->tmp, xl, N, err)))
			return rc;
	}
	for (size_t l = t->nl; l-- > 0;) {
		struct ln_act *A = &t->acts[t->nacts > 1 ? l : 0];
		const float *xin = t->xs + l * N * H;

		if (t->nacts == 1 && t->o.checkpointing &&
		    (rc = layer_fwd(t, l, A, xin, t->xscr, B, T, 1, err)))
			return rc;
		if ((rc = layer_bwd(t, l, A, xin, B, T, err)))
			return rc;
	}
	/* the embeddings: dX = d of their sum (GPT-2) or of their LN */
	if (!t->gpt2) {
		ZERO(t->dr, N * H);
		hf_layernorm_backward(t->dr, ln_g(t, t->elnw), ln_g(t, t->elnb),
				      t->dX, t->e0, ln_w(t, t->elnw), t->emean,
				      t->erstd, N, H);
		memcpy(t->dX, t->dr, N * H * sizeof(float));
		if (t->type != NONE && t->p[t->type].g)
			hf_embed_backward(t->p[t->type].g, t->dX, t->typeid, N,
					  H);
	}
	if (t->p[t->pos].g)
		hf_embed_backward(t->p[t->pos].g, t->dX, t->posid, N, H);
	if (t->p[t->embed].g)
		hf_embed_backward(t->p[t->embed].g, t->dX, ids, N, H);
	return 0;
}
