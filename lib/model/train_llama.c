/* lib/model/train_llama.c: the training forward and backward of the
 * Llama family (train.h): llama, mistral (sliding window), qwen2 (q/k/v
 * bias), qwen3 (per-head q/k RMSNorm), gemma ((1 + w) norms, embeddings
 * times sqrt(hidden), GeGLU), phi3 (fused qkv_proj, gate_up_proj) and
 * mixtral (top-k MoE), the same model decoder.c runs, written per layer
 * from the op pairs of lib/train/ops.h on float32 master weights. */
#include "model/train.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/internal.h"
#include "model/train_ln.h"	/* gpt2, encoders */
#include "train/ops.h"
#include "train/qlora.h"

#define NONE ((size_t)-1)
#define MAX_HEAD_DIM 1024	/* the stack rows of ops.c and ops_attn.c */

struct tlin {
	struct hf_train_lin pub;
	char name[192];
	struct hf_train_adapter ad;
	int has_ad;
	int quant;		/* the weight is qw (quant_base, frozen_base) */
	struct hf_weight qw;
};

/* A layer's parameters (indexes into t->p) and linears (into t->lins). */
struct tlayer {
	size_t ln1, ln2, qn, kn;
	size_t q, k, v, qkv, o, gate, up, gu, down, router;
	size_t *e1, *e2, *e3;	/* experts' w1 (gate), w2 (down), w3 (up) */
	size_t window;
};

/* One layer's activations for N tokens (K slots per token for MoE). */
struct lact {
	float *h1, *rstd1;		/* (N, H), (N) */
	float *qraw, *kraw;		/* before q/k norm (qwen3) */
	float *rstdq, *rstdk;		/* (N * hq), (N * hkv) */
	float *q, *k, *v;		/* after norm and RoPE */
	float *att, *lse;		/* (N, hq * hd), (B, hq, T) */
	float *xmid, *h2, *rstd2;	/* residual after attention */
	float *g, *u, *a;		/* (N or N * K, I) */
	float *rlog, *rw;		/* (N, E), (N, K) */
	int32_t *ridx;			/* (N, K) */
	int32_t *rows, *slot;		/* (N * K): by expert */
	float *sw, *xe, *ye;		/* (N * K), (N * K, H) x2 */
	size_t *eoff;			/* (E + 1) */
};

struct hf_train {
	struct hf_train_ln *ln;	/* gpt2, encoders: train_encoder.c */
	struct hf_model *m;
	struct hf_train_opts o;
	struct hf_param *p;
	size_t np, capp;
	struct tlin *lins;
	size_t nlin, caplin;
	struct tlayer *L;
	size_t embed, norm, head;
	struct hf_pool *pool;
	size_t H, V, I, hq, hkv, hd, qo, ko, E, K, nl, rot;
	int phi3, add_one;
	float eps, emb_scale, attn_scale, rope_scaling;
	enum hf_act act;

	/* activations and scratch for capN tokens, one allocation */
	size_t capN, capB;
	void *arena;
	float *xs;			/* (nl + 1, N, H) layer inputs */
	struct lact *acts;		/* nl, or 1 when checkpointing */
	size_t nacts;
	float *hfin, *rstdf, *logits, *lse;	/* logits: chunk rows */
	size_t chunk;			/* rows of logits at a time */
	float *tmp, *fz;		/* (N, H); fused products */
	float *dX, *dh, *dq, *dk, *dv, *dq2, *dk2, *datt;
	float *dg, *du, *da, *dlog, *dfz, *dxe, *dye, *dsw, *drw, *drl;
	int32_t *pos, *tgt, *mask;
	float *inv_freq;		/* (rot / 2) */
	float *qscr;			/* a quantized weight's backward tiles */
	size_t nqscr;
};

/* ---- parameters ---- */

/* The stored tensor under name (the model's prefix first) as a new
 * float32 parameter: its index, or NONE when absent and not required. */
static int add_param(struct hf_train *t, size_t *idx, int required,
		     struct hf_err *err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int add_param(struct hf_train *t, size_t *idx, int required,
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

/* Check that parameter i is (d0, d1) (d1 0: a vector of d0). */
static int want_shape(struct hf_train *t, size_t i, size_t d0, size_t d1,
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

/* The Linear stored under module name (weight, optional bias). */
static int add_lin(struct hf_train *t, size_t *idx, size_t layer, size_t out,
		   size_t in, struct hf_err *err, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
static int add_lin(struct hf_train *t, size_t *idx, size_t layer, size_t out,
		   size_t in, struct hf_err *err, const char *fmt, ...)
{
	struct tlin *l;
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
	 * (the modules the quantizer left out); a frozen base: an f16 or
	 * bf16 weight as stored, read through the same kernels */
	snprintf(name, sizeof(name), "%s.weight", mod);
	ts = find_tensor(t->m, name);
	if ((t->o.quant_base && t->m->qc &&
	     (!ts || (ts->dtype != HF_DTYPE_F32 && ts->dtype != HF_DTYPE_F16 &&
		      ts->dtype != HF_DTYPE_BF16))) ||
	    (t->o.frozen_base && ts && (ts->dtype == HF_DTYPE_F16 ||
					ts->dtype == HF_DTYPE_BF16))) {
		if (train_quant_bind(t->m, &qw, name, sizeof(name), mod, out,
				     in, err))
			return err->code;
		quant = 1;
		w = NONE;
	} else if (add_param(t, &w, 1, err, "%s.weight", mod) ||
		   want_shape(t, w, out, in, err)) {
		return err->code;
	}
	if (add_param(t, &b, 0, err, "%s.bias", mod) ||
	    (b != NONE && want_shape(t, b, out, 0, err)))
		return err->code;
	if (t->nlin == t->caplin) {
		size_t cap = t->caplin ? 2 * t->caplin : 32;
		struct tlin *nl = realloc(t->lins, cap * sizeof(*nl));

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
	l->pub.layer = layer;
	l->pub.in = in;
	l->pub.out = out;
	l->pub.w = w;
	l->pub.b = b;
	*idx = t->nlin++;
	return 0;
}

static int norm_param(struct hf_train *t, size_t *idx, size_t n,
		      struct hf_err *err, const char *name, size_t l)
{
	return add_param(t, idx, 1, err, name, l) ||
	       want_shape(t, *idx, n, 0, err) ? err->code : 0;
}

static int load_layer(struct hf_train *t, size_t l, struct hf_err *err)
{
	struct tlayer *L = &t->L[l];
	size_t H = t->H, I = t->I;
	const char *a = "layers.%zu.self_attn";
	char base[96];

	L->qn = L->kn = L->q = L->k = L->v = L->qkv = NONE;
	L->gate = L->up = L->gu = L->down = L->router = NONE;
	L->window = t->m->layers[l].window;
	if (norm_param(t, &L->ln1, H, err, "layers.%zu.input_layernorm.weight",
		       l) ||
	    norm_param(t, &L->ln2, H, err,
		       "layers.%zu.post_attention_layernorm.weight", l))
		return err->code;
	snprintf(base, sizeof(base), a, l);
	if (t->phi3) {
		if (add_lin(t, &L->qkv, l, t->qo + 2 * t->ko, H, err,
			    "%s.qkv_proj", base))
			return err->code;
	} else if (add_lin(t, &L->q, l, t->qo, H, err, "%s.q_proj", base) ||
		   add_lin(t, &L->k, l, t->ko, H, err, "%s.k_proj", base) ||
		   add_lin(t, &L->v, l, t->ko, H, err, "%s.v_proj", base)) {
		return err->code;
	}
	if (add_lin(t, &L->o, l, H, t->qo, err, "%s.o_proj", base))
		return err->code;
	if (t->m->layers[l].q_norm &&
	    (norm_param(t, &L->qn, t->hd, err,
			"layers.%zu.self_attn.q_norm.weight", l) ||
	     norm_param(t, &L->kn, t->hd, err,
			"layers.%zu.self_attn.k_norm.weight", l)))
		return err->code;
	if (t->E) {
		if (add_lin(t, &L->router, l, t->E, H, err,
			    "layers.%zu.block_sparse_moe.gate", l))
			return err->code;
		L->e1 = calloc(3 * t->E, sizeof(size_t));
		if (!L->e1)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		L->e2 = L->e1 + t->E;
		L->e3 = L->e2 + t->E;
		for (size_t e = 0; e < t->E; e++) {
			const char *x = "layers.%zu.block_sparse_moe.experts.%zu.w%d";

			if (add_lin(t, &L->e1[e], l, I, H, err, x, l, e, 1) ||
			    add_lin(t, &L->e2[e], l, H, I, err, x, l, e, 2) ||
			    add_lin(t, &L->e3[e], l, I, H, err, x, l, e, 3))
				return err->code;
		}
		return 0;
	}
	snprintf(base, sizeof(base), "layers.%zu.mlp", l);
	if (t->phi3) {
		if (add_lin(t, &L->gu, l, 2 * I, H, err, "%s.gate_up_proj",
			    base))
			return err->code;
	} else if (add_lin(t, &L->gate, l, I, H, err, "%s.gate_proj", base) ||
		   add_lin(t, &L->up, l, I, H, err, "%s.up_proj", base)) {
		return err->code;
	}
	return add_lin(t, &L->down, l, H, I, err, "%s.down_proj", base);
}

int hf_train_new(struct hf_train **out, struct hf_model *m,
		 const struct hf_train_opts *opts, struct hf_err *err)
{
	struct hf_train *t;
	int rc;

	*out = NULL;
	if (m->fam == FAM_GPT2 || m->encoder) {
		/* train_ln.h: the LayerNorm families */
		if (!(t = calloc(1, sizeof(*t))))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if ((rc = hf_train_ln_new(&t->ln, m, opts, err))) {
			free(t);
			return rc;
		}
		t->m = m;
		*out = t;
		return 0;
	}
	if (m->fam != FAM_LLAMA)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: model_type '%s' has no training forward yet "
				  "(the llama family has: llama, mistral, mixtral, "
				  "qwen2, qwen3, gemma, phi3)", m->dir,
				  m->cfg->model_type);
	if ((rc = train_quant_check(m, opts, err)))
		return rc;
	if (m->hd > MAX_HEAD_DIM)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: head_dim %zu is over the %d training "
				  "supports", m->dir, m->hd, MAX_HEAD_DIM);
	t = calloc(1, sizeof(*t));
	if (!t)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	t->m = m;
	if (opts)
		t->o = *opts;
	t->pool = hf_backend_cpu_pool(m->be);
	t->H = m->hidden;
	t->V = m->vocab;
	t->I = m->inter;
	t->hq = m->hq;
	t->hkv = m->hkv;
	t->hd = m->hd;
	t->qo = m->hq * m->hd;
	t->ko = m->hkv * m->hd;
	t->E = m->ne;
	t->K = m->topk;
	t->nl = m->nl;
	t->rot = m->rot_dim;
	t->phi3 = !strcmp(m->cfg->model_type, "phi3");
	t->add_one = m->norm_add_one;
	t->eps = m->eps;
	t->emb_scale = m->emb_scale;
	t->attn_scale = m->attn_scale;
	t->rope_scaling = m->rope_scaling;
	t->act = m->act;
	t->L = calloc(t->nl, sizeof(*t->L));
	t->inv_freq = malloc((t->rot / 2) * sizeof(float));
	if (!t->L || !t->inv_freq) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = add_param(t, &t->embed, 1, err, "embed_tokens.weight")) ||
	    (rc = want_shape(t, t->embed, t->V, t->H, err)))
		goto fail;
	for (size_t l = 0; l < t->nl; l++)
		if ((rc = load_layer(t, l, err)))
			goto fail;
	if ((rc = norm_param(t, &t->norm, t->H, err, "norm.weight", 0)))
		goto fail;
	/* the head as bind_head() binds it: the embeddings when tied */
	if (m->cfg->tie_word_embeddings && m->embed) {
		struct tlin *l;
		int frozen = t->o.frozen_base;

		/* never frozen_base: its weight is the embedding parameter,
		 * which may train */
		t->o.frozen_base = 0;
		rc = add_lin(t, &t->head, NONE, t->V, t->H, err, "embed_tokens");
		t->o.frozen_base = frozen;
		if (rc)
			goto fail;
		l = &t->lins[t->head];
		snprintf(l->name, sizeof(l->name), "lm_head");
	} else {
		const char *saved = m->pfx;

		m->pfx = "";
		rc = add_lin(t, &t->head, NONE, t->V, t->H, err, "lm_head");
		m->pfx = saved;
		if (rc)
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
	hf_train_free(t);
	return rc;
}

void hf_train_free(struct hf_train *t)
{
	if (!t)
		return;
	hf_train_ln_free(t->ln);
	for (size_t i = 0; i < t->np; i++) {
		free((char *)t->p[i].name);
		free(t->p[i].w);
		free(t->p[i].g);
	}
	free(t->p);
	free(t->lins);
	if (t->L)
		for (size_t l = 0; l < t->nl; l++)
			free(t->L[l].e1);
	free(t->L);
	free(t->acts);
	free(t->arena);
	free(t->inv_freq);
	free(t->qscr);
	free(t);
}

size_t hf_train_nparams(const struct hf_train *t)
{
	if (t->ln)
		return hf_train_ln_nparams(t->ln);
	return t->np;
}

struct hf_param *hf_train_param(struct hf_train *t, size_t i)
{
	if (t->ln)
		return hf_train_ln_param(t->ln, i);
	return i < t->np ? &t->p[i] : NULL;
}

struct hf_param *hf_train_find(struct hf_train *t, const char *name)
{
	if (t->ln)
		return hf_train_ln_find(t->ln, name);
	for (size_t i = 0; i < t->np; i++)
		if (!strcmp(t->p[i].name, name))
			return &t->p[i];
	return NULL;
}

int hf_train_set_trainable(struct hf_train *t, size_t i, int on,
			   struct hf_err *err)
{
	struct hf_param *p;

	if (t->ln)
		return hf_train_ln_set_trainable(t->ln, i, on, err);
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

void hf_train_zero_grad(struct hf_train *t)
{
	if (t->ln) {
		hf_train_ln_zero_grad(t->ln);
		return;
	}
	for (size_t i = 0; i < t->np; i++)
		if (t->p[i].g)
			memset(t->p[i].g, 0, t->p[i].n * sizeof(float));
}

double hf_train_grad_norm(const struct hf_train *t)
{
	double s = 0.0;

	if (t->ln)
		return hf_train_ln_grad_norm(t->ln);
	for (size_t i = 0; i < t->np; i++)
		if (t->p[i].g)
			for (size_t j = 0; j < t->p[i].n; j++)
				s += (double)t->p[i].g[j] * t->p[i].g[j];
	return sqrt(s);
}

size_t hf_train_nlinears(const struct hf_train *t)
{
	if (t->ln)
		return hf_train_ln_nlinears(t->ln);
	return t->nlin;
}

const struct hf_train_lin *hf_train_linear(const struct hf_train *t, size_t i)
{
	if (t->ln)
		return hf_train_ln_linear(t->ln, i);
	return i < t->nlin ? &t->lins[i].pub : NULL;
}

int hf_train_set_adapter(struct hf_train *t, size_t i,
			 const struct hf_train_adapter *ad, struct hf_err *err)
{
	if (t->ln)
		return hf_train_ln_set_adapter(t->ln, i, ad, err);
	if (i >= t->nlin)
		return hf_err_set(err, HF_EINVAL, "no linear %zu (of %zu)", i,
				  t->nlin);
	t->lins[i].has_ad = ad != NULL;
	if (ad)
		t->lins[i].ad = *ad;
	return 0;
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

static void carve_act(struct hf_train *t, struct carver *c, struct lact *A,
		      size_t N, size_t B)
{
	size_t H = t->H, I = t->I, NK = N * (t->E ? t->K : 1);

	A->h1 = F(N * H);
	A->rstd1 = F(N);
	if (t->L[0].qn != NONE) {
		A->qraw = F(N * t->qo);
		A->kraw = F(N * t->ko);
		A->rstdq = F(N * t->hq);
		A->rstdk = F(N * t->hkv);
	}
	A->q = F(N * t->qo);
	A->k = F(N * t->ko);
	A->v = F(N * t->ko);
	A->att = F(N * t->qo);
	A->lse = F(B * t->hq * (N / B));
	A->xmid = F(N * H);
	A->h2 = F(N * H);
	A->rstd2 = F(N);
	A->g = F(NK * I);
	A->u = F(NK * I);
	A->a = F(NK * I);
	if (t->E) {
		A->rlog = F(N * t->E);
		A->rw = F(N * t->K);
		A->ridx = I32(N * t->K);
		A->rows = I32(NK);
		A->slot = I32(NK);
		A->sw = F(NK);
		A->xe = F(NK * H);
		A->ye = F(NK * H);
		A->eoff = (size_t *)carve(c, (t->E + 1) * sizeof(size_t));
	}
}

static void carve_all(struct hf_train *t, struct carver *c, size_t N,
		      size_t B)
{
	size_t H = t->H, I = t->I, NK = N * (t->E ? t->K : 1);
	size_t fz = 2 * I > t->qo + 2 * t->ko ? 2 * I : t->qo + 2 * t->ko;

	t->xs = F((t->nl + 1) * N * H);
	for (size_t i = 0; i < t->nacts; i++)
		carve_act(t, c, &t->acts[i], N, B);
	t->hfin = F(N * H);
	t->rstdf = F(N);
	t->logits = F(t->chunk * t->V);
	t->lse = F(N);
	t->tmp = F(N * H);
	t->fz = F(N * fz);
	t->dX = F(N * H);
	t->dh = F(N * H);
	t->dq = F(N * t->qo);
	t->dk = F(N * t->ko);
	t->dv = F(N * t->ko);
	t->dq2 = F(N * t->qo);
	t->dk2 = F(N * t->ko);
	t->datt = F(N * t->qo);
	t->dg = F(NK * I);
	t->du = F(NK * I);
	t->da = F(NK * I);
	t->dlog = F(t->chunk * t->V);
	t->dfz = F(N * fz);
	if (t->E) {
		t->dxe = F(NK * H);
		t->dye = F(NK * H);
		t->dsw = F(NK);
		t->drw = F(N * t->K);
		t->drl = F(N * t->E);
	}
	t->pos = I32(N);
	t->tgt = I32(N);
	t->mask = I32(N);
}

#undef F
#undef I32

/* Buffers for B rows of T tokens (kept while they are big enough). */
static int buffers(struct hf_train *t, size_t B, size_t T, int keep,
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
	/* the head runs on chunks of rows of at most 4M logits, forward
	 * and backward at once, so (N, V) is never held (49152 x 2048
	 * would be 400 MB, twice over with its gradient) */
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

/* ---- linears with their adapters ---- */

static int lin_fwd(struct hf_train *t, size_t li, float *y, const float *x,
		   size_t n, int recompute, struct hf_err *err)
{
	struct tlin *l = &t->lins[li];
	const float *b = l->pub.b != NONE ? t->p[l->pub.b].w : NULL;

	if (!n)
		return 0;
	if (l->quant)
		hf_qlinear_forward(y, x, &l->qw, b, n, t->pool);
	else
		hf_linear_forward(y, x, t->p[l->pub.w].w, b, n, l->pub.in,
				  l->pub.out, t->pool);
	return l->has_ad ? l->ad.forward(l->ad.ctx, y, x, n, recompute, err) :
			   0;
}

static int lin_bwd(struct hf_train *t, size_t li, float *dx, const float *dy,
		   const float *x, size_t n, struct hf_err *err)
{
	struct tlin *l = &t->lins[li];
	float *db = l->pub.b != NONE ? t->p[l->pub.b].g : NULL;

	if (!n)
		return 0;
	if (l->quant)
		hf_qlinear_backward(dx, db, dy, &l->qw, n, t->qscr, t->pool);
	else
		hf_linear_backward(dx, t->p[l->pub.w].g, db, dy, x,
				   t->p[l->pub.w].w, n, l->pub.in, l->pub.out,
				   t->pool);
	return l->has_ad ? l->ad.backward(l->ad.ctx, dx, dy, x, n, err) : 0;
}

/* Columns [c0, c0 + w) of src (n, ld) into dst (n, w), and back. */
static void cols_get(float *dst, const float *src, size_t n, size_t ld,
		     size_t c0, size_t w)
{
	for (size_t r = 0; r < n; r++)
		memcpy(dst + r * w, src + r * ld + c0, w * sizeof(float));
}

static void cols_put(float *dst, const float *src, size_t n, size_t ld,
		     size_t c0, size_t w)
{
	for (size_t r = 0; r < n; r++)
		memcpy(dst + r * ld + c0, src + r * w, w * sizeof(float));
}

static float *gw(struct hf_train *t, size_t i)
{
	return i == NONE ? NULL : t->p[i].w;
}

static float *gg(struct hf_train *t, size_t i)
{
	return i == NONE ? NULL : t->p[i].g;
}

/* ---- one layer ---- */

static int moe_fwd(struct hf_train *t, const struct tlayer *L,
		   struct lact *A, size_t N, int recompute, struct hf_err *err)
{
	size_t E = t->E, K = t->K, H = t->H, I = t->I, s = 0;
	int rc;

	if ((rc = lin_fwd(t, L->router, A->rlog, A->h2, N, recompute, err)))
		return rc;
	hf_moe_route_forward(A->rw, A->ridx, A->rlog, N, E, K);
	/* slots grouped by expert, tokens in order within one */
	for (size_t e = 0; e < E; e++) {
		A->eoff[e] = s;
		for (size_t i = 0; i < N * K; i++)
			if (A->ridx[i] == (int32_t)e) {
				A->rows[s] = (int32_t)(i / K);
				A->slot[s] = (int32_t)i;
				A->sw[s++] = A->rw[i];
			}
	}
	A->eoff[E] = s;
	hf_embed_forward(A->xe, A->h2, A->rows, N * K, H);
	for (size_t e = 0; e < E; e++) {
		size_t o = A->eoff[e], n = A->eoff[e + 1] - o;

		if ((rc = lin_fwd(t, L->e1[e], A->g + o * I, A->xe + o * H, n,
				  recompute, err)) ||
		    (rc = lin_fwd(t, L->e3[e], A->u + o * I, A->xe + o * H, n,
				  recompute, err)))
			return rc;
		hf_glu_forward(A->a + o * I, A->g + o * I, A->u + o * I, n * I,
			       t->act);
		if ((rc = lin_fwd(t, L->e2[e], A->ye + o * H, A->a + o * I, n,
				  recompute, err)))
			return rc;
	}
	memset(t->tmp, 0, N * H * sizeof(float));
	hf_moe_combine_forward(t->tmp, A->ye, A->sw, A->rows, N * K, H);
	return 0;
}

/* Layer l from xin (N, H) to xout; activations into A. */
static int layer_fwd(struct hf_train *t, size_t l, struct lact *A,
		     const float *xin, float *xout, size_t B, size_t T,
		     int recompute, struct hf_err *err)
{
	const struct tlayer *L = &t->L[l];
	size_t N = B * T, H = t->H, I = t->I, qo = t->qo, ko = t->ko;
	int rc;

	hf_rmsnorm_forward(A->h1, A->rstd1, xin, gw(t, L->ln1), N, H, t->eps,
			   t->add_one);
	if (t->phi3) {
		if ((rc = lin_fwd(t, L->qkv, t->fz, A->h1, N, recompute, err)))
			return rc;
		cols_get(A->q, t->fz, N, qo + 2 * ko, 0, qo);
		cols_get(A->k, t->fz, N, qo + 2 * ko, qo, ko);
		cols_get(A->v, t->fz, N, qo + 2 * ko, qo + ko, ko);
	} else if ((rc = lin_fwd(t, L->q, A->q, A->h1, N, recompute, err)) ||
		   (rc = lin_fwd(t, L->k, A->k, A->h1, N, recompute, err)) ||
		   (rc = lin_fwd(t, L->v, A->v, A->h1, N, recompute, err))) {
		return rc;
	}
	if (L->qn != NONE) {
		memcpy(A->qraw, A->q, N * qo * sizeof(float));
		memcpy(A->kraw, A->k, N * ko * sizeof(float));
		hf_rmsnorm_forward(A->q, A->rstdq, A->qraw, gw(t, L->qn),
				   N * t->hq, t->hd, t->eps, 0);
		hf_rmsnorm_forward(A->k, A->rstdk, A->kraw, gw(t, L->kn),
				   N * t->hkv, t->hd, t->eps, 0);
	}
	hf_rope_forward(A->q, t->pos, t->inv_freq, N, t->hq, t->hd, t->rot,
			HF_ROPE_HALF, t->rope_scaling);
	hf_rope_forward(A->k, t->pos, t->inv_freq, N, t->hkv, t->hd, t->rot,
			HF_ROPE_HALF, t->rope_scaling);
	hf_attention_forward(A->att, A->lse, A->q, A->k, A->v, t->mask, B, T,
			     t->hq, t->hkv, t->hd, 1, L->window, t->attn_scale,
			     t->pool);
	if ((rc = lin_fwd(t, L->o, t->tmp, A->att, N, recompute, err)))
		return rc;
	hf_add_forward(A->xmid, xin, t->tmp, N * H);
	hf_rmsnorm_forward(A->h2, A->rstd2, A->xmid, gw(t, L->ln2), N, H,
			   t->eps, t->add_one);
	if (t->E) {
		if ((rc = moe_fwd(t, L, A, N, recompute, err)))
			return rc;
	} else {
		if (t->phi3) {
			if ((rc = lin_fwd(t, L->gu, t->fz, A->h2, N, recompute,
					  err)))
				return rc;
			cols_get(A->g, t->fz, N, 2 * I, 0, I);
			cols_get(A->u, t->fz, N, 2 * I, I, I);
		} else if ((rc = lin_fwd(t, L->gate, A->g, A->h2, N, recompute,
					 err)) ||
			   (rc = lin_fwd(t, L->up, A->u, A->h2, N, recompute,
					 err))) {
			return rc;
		}
		hf_glu_forward(A->a, A->g, A->u, N * I, t->act);
		if ((rc = lin_fwd(t, L->down, t->tmp, A->a, N, recompute, err)))
			return rc;
	}
	hf_add_forward(xout, A->xmid, t->tmp, N * H);
	return 0;
}

#define ZERO(p, n) memset((p), 0, (n) * sizeof(float))

/* dh (N, H) = the gradient of h2 from the experts and the router. */
static int moe_bwd(struct hf_train *t, const struct tlayer *L,
		   const struct lact *A, size_t N, struct hf_err *err)
{
	size_t E = t->E, K = t->K, H = t->H, I = t->I, NK = N * K;
	int rc;

	ZERO(t->dye, NK * H);
	ZERO(t->dsw, NK);
	hf_moe_combine_backward(t->dye, t->dsw, t->dX, A->ye, A->sw, A->rows,
				NK, H);
	for (size_t s = 0; s < NK; s++)
		t->drw[A->slot[s]] = t->dsw[s];
	ZERO(t->dxe, NK * H);
	ZERO(t->da, NK * I);
	ZERO(t->dg, NK * I);
	ZERO(t->du, NK * I);
	for (size_t e = 0; e < E; e++) {
		size_t o = A->eoff[e], n = A->eoff[e + 1] - o;

		if ((rc = lin_bwd(t, L->e2[e], t->da + o * I, t->dye + o * H,
				  A->a + o * I, n, err)))
			return rc;
		hf_glu_backward(t->dg + o * I, t->du + o * I, t->da + o * I,
				A->g + o * I, A->u + o * I, n * I, t->act);
		if ((rc = lin_bwd(t, L->e1[e], t->dxe + o * H, t->dg + o * I,
				  A->xe + o * H, n, err)) ||
		    (rc = lin_bwd(t, L->e3[e], t->dxe + o * H, t->du + o * I,
				  A->xe + o * H, n, err)))
			return rc;
	}
	ZERO(t->dh, N * H);
	hf_embed_backward(t->dh, t->dxe, A->rows, NK, H);
	ZERO(t->drl, N * E);
	hf_moe_route_backward(t->drl, t->drw, A->rw, A->ridx, N, E, K);
	return lin_bwd(t, L->router, t->dh, t->drl, A->h2, N, err);
}

/* t->dX holds d xout on entry and d xin on return. */
static int layer_bwd(struct hf_train *t, size_t l, const struct lact *A,
		     const float *xin, size_t B, size_t T, struct hf_err *err)
{
	const struct tlayer *L = &t->L[l];
	size_t N = B * T, H = t->H, I = t->I, qo = t->qo, ko = t->ko;
	float *dqf, *dkf;
	int rc;

	/* the MLP: xout = xmid + mlp(rmsnorm(xmid)) */
	if (t->E) {
		if ((rc = moe_bwd(t, L, A, N, err)))
			return rc;
	} else {
		ZERO(t->da, N * I);
		if ((rc = lin_bwd(t, L->down, t->da, t->dX, A->a, N, err)))
			return rc;
		ZERO(t->dg, N * I);
		ZERO(t->du, N * I);
		hf_glu_backward(t->dg, t->du, t->da, A->g, A->u, N * I, t->act);
		ZERO(t->dh, N * H);
		if (t->phi3) {
			cols_put(t->dfz, t->dg, N, 2 * I, 0, I);
			cols_put(t->dfz, t->du, N, 2 * I, I, I);
			if ((rc = lin_bwd(t, L->gu, t->dh, t->dfz, A->h2, N,
					  err)))
				return rc;
		} else if ((rc = lin_bwd(t, L->gate, t->dh, t->dg, A->h2, N,
					 err)) ||
			   (rc = lin_bwd(t, L->up, t->dh, t->du, A->h2, N,
					 err))) {
			return rc;
		}
	}
	hf_rmsnorm_backward(t->dX, gg(t, L->ln2), t->dh, A->xmid,
			    gw(t, L->ln2), A->rstd2, N, H, t->add_one);
	/* attention: xmid = xin + o(attn(rope(norm(q)), ...)) */
	ZERO(t->datt, N * qo);
	if ((rc = lin_bwd(t, L->o, t->datt, t->dX, A->att, N, err)))
		return rc;
	ZERO(t->dq, N * qo);
	ZERO(t->dk, N * ko);
	ZERO(t->dv, N * ko);
	hf_attention_backward(t->dq, t->dk, t->dv, t->datt, A->q, A->k, A->v,
			      A->att, A->lse, t->mask, B, T, t->hq, t->hkv,
			      t->hd, 1, L->window, t->attn_scale, t->pool);
	ZERO(t->dq2, N * qo);
	ZERO(t->dk2, N * ko);
	hf_rope_backward(t->dq2, t->dq, t->pos, t->inv_freq, N, t->hq, t->hd,
			 t->rot, HF_ROPE_HALF, t->rope_scaling);
	hf_rope_backward(t->dk2, t->dk, t->pos, t->inv_freq, N, t->hkv, t->hd,
			 t->rot, HF_ROPE_HALF, t->rope_scaling);
	dqf = t->dq2;
	dkf = t->dk2;
	if (L->qn != NONE) {
		ZERO(t->dq, N * qo);
		ZERO(t->dk, N * ko);
		hf_rmsnorm_backward(t->dq, gg(t, L->qn), t->dq2, A->qraw,
				    gw(t, L->qn), A->rstdq, N * t->hq, t->hd,
				    0);
		hf_rmsnorm_backward(t->dk, gg(t, L->kn), t->dk2, A->kraw,
				    gw(t, L->kn), A->rstdk, N * t->hkv, t->hd,
				    0);
		dqf = t->dq;
		dkf = t->dk;
	}
	ZERO(t->dh, N * H);
	if (t->phi3) {
		cols_put(t->dfz, dqf, N, qo + 2 * ko, 0, qo);
		cols_put(t->dfz, dkf, N, qo + 2 * ko, qo, ko);
		cols_put(t->dfz, t->dv, N, qo + 2 * ko, qo + ko, ko);
		if ((rc = lin_bwd(t, L->qkv, t->dh, t->dfz, A->h1, N, err)))
			return rc;
	} else if ((rc = lin_bwd(t, L->q, t->dh, dqf, A->h1, N, err)) ||
		   (rc = lin_bwd(t, L->k, t->dh, dkf, A->h1, N, err)) ||
		   (rc = lin_bwd(t, L->v, t->dh, t->dv, A->h1, N, err))) {
		return rc;
	}
	hf_rmsnorm_backward(t->dX, gg(t, L->ln1), t->dh, xin, gw(t, L->ln1),
			    A->rstd1, N, H, t->add_one);
	return 0;
}

/* ---- the whole model ---- */

static int check_batch(struct hf_train *t, const int32_t *ids,
		       const int32_t *labels, size_t B, size_t T,
		       struct hf_err *err)
{
	if (!B || !T)
		return hf_err_set(err, HF_EINVAL, "empty batch: %zu rows of "
				  "%zu tokens", B, T);
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
static int head(struct hf_train *t, size_t N, const double *denom,
		double *sum, struct hf_err *err)
{
	size_t H = t->H, V = t->V, c;
	int rc;

	*sum = 0.0;
	if (denom)
		ZERO(t->dh, N * H);
	for (size_t r0 = 0; r0 < N; r0 += t->chunk) {
		size_t n = N - r0 < t->chunk ? N - r0 : t->chunk;

		if ((rc = lin_fwd(t, t->head, t->logits, t->hfin + r0 * H, n, 0,
				  err)))
			return rc;
		*sum += hf_xent_forward(t->lse + r0, t->logits, t->tgt + r0, n,
					V, &c, t->pool);
		if (!denom)
			continue;
		ZERO(t->dlog, n * V);
		hf_xent_backward(t->dlog, t->logits, t->lse + r0, t->tgt + r0,
				 n, V, (float)(1.0 / *denom), t->pool);
		if ((rc = lin_bwd(t, t->head, t->dh + r0 * H, t->dlog,
				  t->hfin + r0 * H, n, err)))
			return rc;
	}
	return 0;
}

/* The forward of B rows of T tokens and the summed loss; keep:
 * activations of every layer (or, checkpointing, only the layer
 * inputs) for a backward, whose loss is divided by *denom (<= 0 on
 * entry: the count, set here), and the head's backward is done here
 * (into t->dh). */
static int forward(struct hf_train *t, const int32_t *ids,
		   const int32_t *labels, const int32_t *mask, size_t B,
		   size_t T, int keep, double *denom, double *sum,
		   size_t *count, struct hf_err *err)
{
	struct hf_model *m = t->m;
	size_t N = B * T, H = t->H, c = 0;
	int rc;

	if ((rc = check_batch(t, ids, labels, B, T, err)) ||
	    (rc = buffers(t, B, T, keep, err)))
		return rc;
	/* RoPE's table for this length (dynamic and longrope change
	 * with it), as the inference forward takes it */
	if ((rc = rope_update(m, T, err)) ||
	    (rc = hf_buf_download(m->inv_freq, 0, t->inv_freq,
				  (t->rot / 2) * sizeof(float), err)))
		return rc;
	for (size_t b = 0; b < B; b++)
		for (size_t i = 0; i < T; i++) {
			size_t r = b * T + i;

			t->pos[r] = (int32_t)i;
			t->mask[r] = mask ? (mask[r] != 0) : 1;
			t->tgt[r] = i + 1 < T ? labels[r + 1] : HF_IGNORE_INDEX;
		}
	hf_embed_forward(t->xs, t->p[t->embed].w, ids, N, H);
	if (t->emb_scale != 1.0f)
		hf_scale_forward(t->xs, t->xs, N * H, t->emb_scale);
	for (size_t l = 0; l < t->nl; l++)
		if ((rc = layer_fwd(t, l, &t->acts[t->nacts > 1 ? l : 0],
				    t->xs + l * N * H, t->xs + (l + 1) * N * H,
				    B, T, 0, err)))
			return rc;
	hf_rmsnorm_forward(t->hfin, t->rstdf, t->xs + t->nl * N * H,
			   gw(t, t->norm), N, H, t->eps, t->add_one);
	for (size_t r = 0; r < N; r++)
		c += t->tgt[r] != HF_IGNORE_INDEX;
	*count = c;
	if (denom && *denom <= 0) {
		if (!c)
			return hf_err_set(err, HF_EINVAL,
					  "no label to learn from: every label "
					  "after the first position is -100");
		*denom = (double)c;
	}
	return head(t, N, denom, sum, err);
}

int hf_train_eval(struct hf_train *t, const int32_t *ids,
		  const int32_t *labels, const int32_t *mask, size_t B,
		  size_t T, double *loss, size_t *count, struct hf_err *err)
{
	double sum;
	int rc;

	if (t->ln)
		return hf_train_ln_eval(t->ln, ids, labels, mask, B, T, loss,
					count, err);
	if ((rc = forward(t, ids, labels, mask, B, T, 0, NULL, &sum, count,
			  err)))
		return rc;
	*loss = *count ? sum / (double)*count : 0.0;
	return 0;
}

int hf_train_step(struct hf_train *t, const int32_t *ids,
		  const int32_t *labels, const int32_t *mask, size_t B,
		  size_t T, double denom, double *loss, size_t *count,
		  struct hf_err *err)
{
	size_t N = B * T, H = t->H;
	double sum;
	int rc;

	if (t->ln)
		return hf_train_ln_step(t->ln, ids, labels, mask, B, T, denom,
					loss, count, err);
	/* the forward, and the head's backward chunk by chunk with it */
	if ((rc = forward(t, ids, labels, mask, B, T, 1, &denom, &sum, count,
			  err)))
		return rc;
	*loss = sum / denom;
	/* the final norm */
	ZERO(t->dX, N * H);
	hf_rmsnorm_backward(t->dX, gg(t, t->norm), t->dh,
			    t->xs + t->nl * N * H, gw(t, t->norm), t->rstdf,
			    N, H, t->add_one);
	for (size_t l = t->nl; l-- > 0;) {
		struct lact *A = &t->acts[t->nacts > 1 ? l : 0];
		const float *xin = t->xs + l * N * H;

		if (t->nacts == 1 &&
		    t->o.checkpointing &&
		    (rc = layer_fwd(t, l, A, xin, t->tmp, B, T, 1, err)))
			return rc;
		if ((rc = layer_bwd(t, l, A, xin, B, T, err)))
			return rc;
	}
	if (t->p[t->embed].g) {
		if (t->emb_scale != 1.0f)
			hf_scale_forward(t->dX, t->dX, N * H, t->emb_scale);
		hf_embed_backward(t->p[t->embed].g, t->dX, ids, N, H);
	}
	return 0;
}
