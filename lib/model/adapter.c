/* lib/model/adapter.c: the linear modules of each family under the names
 * transformers' model classes give them (what PEFT's target_modules are
 * matched against), and LoRA deltas on them: an extra product x A^T B^T
 * after linear()'s own (unmerged), or W + scale B A in float32 in place
 * of the weight (merged). */
#include "model/adapter.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/internal.h"

/* An unmerged adapter of one struct lin: A (r, in) and scale * B
 * (out, r) as plain float32 weights. Merged ones keep only lin and
 * merged = 1, so that a second adapter on the module is refused. */
struct lin_lora {
	struct hf_model *m;
	struct lin *lin;
	struct hf_wbuf a, b;
	size_t r;
	int merged;
};

/* A module and the struct lin pieces it is computed by: fused modules
 * (c_attn, qkv_proj, gate_up_proj) are row ranges of one weight, each
 * piece a struct lin of its rows, in order. */
struct mod {
	struct hf_lin_module pub;
	struct lin *lin[3];
	size_t nlin;
	int expert;
};

struct mods {
	struct hf_model *m;
	struct mod *v;
	size_t n, cap;
	const char *pfx;	/* the module path of the base model */
};

static int add(struct mods *ms, struct hf_err *err, int layer,
	       const char *tensor, struct lin *l0, struct lin *l1,
	       struct lin *l2, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));

/* Add the module named pfx + fmt whose weight is the checkpoint tensor
 * `tensor` (its name under the model's prefix or without; NULL: none),
 * computed by the pieces l0 (, l1, l2). */
static int add(struct mods *ms, struct hf_err *err, int layer,
	       const char *tensor, struct lin *l0, struct lin *l1,
	       struct lin *l2, const char *fmt, ...)
{
	struct mod *d;
	va_list ap;
	char tail[140];

	if (!l0->w.t[0])
		return 0;	/* not bound: not in this checkpoint */
	if (ms->n == ms->cap) {
		size_t cap = ms->cap ? 2 * ms->cap : 64;
		struct mod *nv = realloc(ms->v, cap * sizeof(*nv));

		if (!nv)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		ms->v = nv;
		ms->cap = cap;
	}
	d = &ms->v[ms->n++];
	memset(d, 0, sizeof(*d));
	va_start(ap, fmt);
	vsnprintf(tail, sizeof(tail), fmt, ap);
	va_end(ap);
	snprintf(d->pub.name, sizeof(d->pub.name), "%s%s", ms->pfx, tail);
	if (tensor) {
		const struct hf_tensor *t = find_tensor(ms->m, tensor);

		if (t)
			snprintf(d->pub.tensor, sizeof(d->pub.tensor), "%s",
				 t->name);
	}
	d->lin[0] = l0;
	d->lin[1] = l1;
	d->lin[2] = l2;
	d->nlin = l2 ? 3 : l1 ? 2 : 1;
	d->pub.in = l0->in;
	for (size_t j = 0; j < d->nlin; j++)
		d->pub.out += d->lin[j]->out;
	d->pub.layer = layer;
	return 0;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

#define T(...) (snprintf(tn, sizeof(tn), __VA_ARGS__), tn)

static int llama_mods(struct mods *ms, struct hf_err *err)
{
	struct hf_model *m = ms->m;
	const char *arch = m->cfg->architecture;
	int phi3 = !strcmp(m->cfg->model_type, "phi3");
	char tn[200];

	/* LlamaModel has the blocks at the top; *ForCausalLM etc. under
	 * "model." */
	ms->pfx = strstr(arch, "For") ? "model." : "";
	for (size_t l = 0; l < m->nl; l++) {
		struct layer *L = &m->layers[l];
		int li = (int)l;

		if (phi3 ? add(ms, err, li, T("layers.%zu.self_attn.qkv_proj.weight", l),
			       &L->q, &L->k, &L->v,
			       "layers.%zu.self_attn.qkv_proj", l) :
			   add(ms, err, li, T("layers.%zu.self_attn.q_proj.weight", l),
			       &L->q, NULL, NULL, "layers.%zu.self_attn.q_proj", l) ||
			   add(ms, err, li, T("layers.%zu.self_attn.k_proj.weight", l),
			       &L->k, NULL, NULL, "layers.%zu.self_attn.k_proj", l) ||
			   add(ms, err, li, T("layers.%zu.self_attn.v_proj.weight", l),
			       &L->v, NULL, NULL, "layers.%zu.self_attn.v_proj", l))
			return err->code;
		if (add(ms, err, li, T("layers.%zu.self_attn.o_proj.weight", l),
			&L->o, NULL, NULL, "layers.%zu.self_attn.o_proj", l))
			return err->code;
		if (m->ne) {
			/* MixtralSparseMoeBlock: gate, then experts.E.w1 w2 w3 */
			if (add(ms, err, li,
				T("layers.%zu.block_sparse_moe.gate.weight", l),
				&L->router, NULL, NULL,
				"layers.%zu.block_sparse_moe.gate", l))
				return err->code;
			for (size_t e = 0; e < m->ne; e++) {
				static const char *const w[3] = { "w1", "w2", "w3" };
				struct lin *ls[3] = { &L->eg[e], &L->ed[e], &L->eu[e] };

				for (int k = 0; k < 3; k++) {
					if (add(ms, err, li,
						T("layers.%zu.block_sparse_moe.experts.%zu.%s.weight",
						  l, e, w[k]),
						ls[k], NULL, NULL,
						"layers.%zu.block_sparse_moe.experts.%zu.%s",
						l, e, w[k]))
						return err->code;
					ms->v[ms->n - 1].expert = 1;
				}
			}
			continue;
		}
		if (phi3 ? add(ms, err, li, T("layers.%zu.mlp.gate_up_proj.weight", l),
			       &L->gate, &L->up, NULL,
			       "layers.%zu.mlp.gate_up_proj", l) :
			   add(ms, err, li, T("layers.%zu.mlp.gate_proj.weight", l),
			       &L->gate, NULL, NULL, "layers.%zu.mlp.gate_proj", l) ||
			   add(ms, err, li, T("layers.%zu.mlp.up_proj.weight", l),
			       &L->up, NULL, NULL, "layers.%zu.mlp.up_proj", l))
			return err->code;
		if (add(ms, err, li, T("layers.%zu.mlp.down_proj.weight", l),
			&L->down, NULL, NULL, "layers.%zu.mlp.down_proj", l))
			return err->code;
	}
	ms->pfx = "";
	if (ends_with(arch, "ForCausalLM")) {
		if (add(ms, err, -1, m->head.w.t[0] == m->embed ? NULL :
			"lm_head.weight", &m->head, NULL, NULL, "lm_head"))
			return err->code;
		ms->v[ms->n - 1].pub.head = 1;
	}
	if (m->cls == CLS_SCORE) {
		if (add(ms, err, -1, "score.weight", &m->cls1, NULL, NULL,
			"score"))
			return err->code;
		ms->v[ms->n - 1].pub.cls_head = 1;
	}
	return 0;
}

static int gpt2_mods(struct mods *ms, struct hf_err *err)
{
	struct hf_model *m = ms->m;
	const char *arch = m->cfg->architecture;
	char tn[200];

	/* the blocks are under "transformer." in every class but GPT2Model,
	 * whatever prefix the file's names have */
	ms->pfx = strcmp(arch, "GPT2Model") && *arch ? "transformer." : "";
	for (size_t l = 0; l < m->nl; l++) {
		struct layer *L = &m->layers[l];
		int li = (int)l;
		size_t first = ms->n;

		if (add(ms, err, li, T("h.%zu.attn.c_attn.weight", l), &L->q,
			&L->k, &L->v, "h.%zu.attn.c_attn", l) ||
		    add(ms, err, li, T("h.%zu.attn.c_proj.weight", l), &L->o,
			NULL, NULL, "h.%zu.attn.c_proj", l) ||
		    add(ms, err, li, T("h.%zu.mlp.c_fc.weight", l), &L->up, NULL,
			NULL, "h.%zu.mlp.c_fc", l) ||
		    add(ms, err, li, T("h.%zu.mlp.c_proj.weight", l), &L->down,
			NULL, NULL, "h.%zu.mlp.c_proj", l))
			return err->code;
		for (size_t i = first; i < ms->n; i++) {
			const struct hf_tensor *t =
				hf_st_model_get(m->st, ms->v[i].pub.tensor);

			/* Conv1D (in, out), unless a quantizer stored it
			 * as a Linear */
			ms->v[i].pub.conv1d = t && t->ndim == 2 &&
					      t->shape[0] == (int64_t)ms->v[i].pub.in &&
					      hf_wfmt_of_dtype(t->dtype) >= 0;
		}
	}
	ms->pfx = "";
	if (!strcmp(arch, "GPT2LMHeadModel")) {
		if (add(ms, err, -1, m->head.w.t[0] == m->embed ? NULL :
			"lm_head.weight", &m->head, NULL, NULL, "lm_head"))
			return err->code;
		ms->v[ms->n - 1].pub.head = 1;
	}
	return 0;
}

static int encoder_mods(struct mods *ms, struct hf_err *err)
{
	static const char *const base[] = { "bert.", "roberta.", "distilbert." };
	struct hf_model *m = ms->m;
	const char *arch = m->cfg->architecture;
	int mlm = ends_with(arch, "ForMaskedLM");
	int bare = !strstr(arch, "For");
	char tn[200];

	ms->pfx = bare ? "" : base[m->fam - FAM_BERT];
	for (size_t l = 0; l < m->nl; l++) {
		struct layer *L = &m->layers[l];
		int li = (int)l;

		if (m->fam == FAM_DISTILBERT) {
			static const char *const n[] = {
				"attention.q_lin", "attention.k_lin",
				"attention.v_lin", "attention.out_lin",
				"ffn.lin1", "ffn.lin2",
			};
			struct lin *ls[] = { &L->q, &L->k, &L->v, &L->o,
					     &L->up, &L->down };

			for (int k = 0; k < 6; k++)
				if (add(ms, err, li,
					T("transformer.layer.%zu.%s.weight", l, n[k]),
					ls[k], NULL, NULL,
					"transformer.layer.%zu.%s", l, n[k]))
					return err->code;
		} else {
			static const char *const n[] = {
				"attention.self.query", "attention.self.key",
				"attention.self.value", "attention.output.dense",
				"intermediate.dense", "output.dense",
			};
			struct lin *ls[] = { &L->q, &L->k, &L->v, &L->o,
					     &L->up, &L->down };

			for (int k = 0; k < 6; k++)
				if (add(ms, err, li,
					T("encoder.layer.%zu.%s.weight", l, n[k]),
					ls[k], NULL, NULL,
					"encoder.layer.%zu.%s", l, n[k]))
					return err->code;
		}
	}
	/* BertModel and the classification classes have a pooler; the
	 * masked-LM ones are built without (add_pooling_layer=False), and
	 * RoBERTa's classifier too */
	if (!mlm && (m->fam == FAM_BERT || (m->fam == FAM_ROBERTA && bare)) &&
	    add(ms, err, -1, "pooler.dense.weight", &m->pooler, NULL, NULL,
		"pooler.dense"))
		return err->code;
	ms->pfx = "";
	if (mlm) {
		static const char *const dense[] = {
			"cls.predictions.transform.dense", "lm_head.dense",
			"vocab_transform",
		};
		static const char *const dec[] = {
			"cls.predictions.decoder", "lm_head.decoder",
			"vocab_projector",
		};
		int f = m->fam - FAM_BERT;

		if (add(ms, err, -1, T("%s.weight", dense[f]), &m->mlm_dense,
			NULL, NULL, "%s", dense[f]) ||
		    add(ms, err, -1, m->head.w.t[0] == m->embed ? NULL :
			T("%s.weight", dec[f]), &m->head, NULL, NULL, "%s",
			dec[f]))
			return err->code;
		if (m->head.w.t[0])
			ms->v[ms->n - 1].pub.head = 1;
	}
	switch (m->cls) {
	case CLS_POOLER:
		if (add(ms, err, -1, "classifier.weight", &m->cls2, NULL, NULL,
			"classifier"))
			return err->code;
		ms->v[ms->n - 1].pub.cls_head = 1;
		break;
	case CLS_ROBERTA:
		/* "classifier" is a RobertaClassificationHead, not a
		 * Linear: its dense and out_proj are ordinary modules */
		if (add(ms, err, -1, "classifier.dense.weight", &m->cls1, NULL,
			NULL, "classifier.dense") ||
		    add(ms, err, -1, "classifier.out_proj.weight", &m->cls2,
			NULL, NULL, "classifier.out_proj"))
			return err->code;
		break;
	case CLS_DISTIL:
		if (add(ms, err, -1, "pre_classifier.weight", &m->cls1, NULL,
			NULL, "pre_classifier") ||
		    add(ms, err, -1, "classifier.weight", &m->cls2, NULL, NULL,
			"classifier"))
			return err->code;
		ms->v[ms->n - 1].pub.cls_head = 1;
		break;
	default:
		break;
	}
	return 0;
}

#undef T

static int build(struct hf_model *m, struct mods *ms, struct hf_err *err)
{
	int rc;

	memset(ms, 0, sizeof(*ms));
	ms->m = m;
	switch (m->fam) {
	case FAM_GPT2:
		rc = gpt2_mods(ms, err);
		break;
	case FAM_LLAMA:
		rc = llama_mods(ms, err);
		break;
	default:
		rc = encoder_mods(ms, err);
		break;
	}
	if (rc) {
		free(ms->v);
		ms->v = NULL;
	}
	return rc;
}

int hf_model_modules(struct hf_model *m, struct hf_lin_module **out,
		     size_t *n, struct hf_err *err)
{
	struct mods ms;

	*out = NULL;
	*n = 0;
	if (build(m, &ms, err))
		return err->code;
	*out = calloc(ms.n ? ms.n : 1, sizeof(**out));
	if (!*out) {
		free(ms.v);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < ms.n; i++)
		(*out)[i] = ms.v[i].pub;
	*n = ms.n;
	free(ms.v);
	return 0;
}

/* w of l as float32 (out, in) into dst: each of its tensors read from
 * the host mapping, or downloaded from the device. */
static int weight_f32(const struct lin *l, float *dst, struct hf_err *err)
{
	struct hf_weight hw;
	void *tmp[HF_WEIGHT_NT] = { 0 };
	int rc = 0;

	hf_wbuf_host(&hw, &l->w);
	for (unsigned i = 0; i < HF_WEIGHT_NT && !rc; i++) {
		const struct hf_buf *b = l->w.t[i];

		if (!b || hw.t[i])
			continue;
		if (!(tmp[i] = malloc(b->size ? b->size : 1)))
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		else if (!(rc = hf_buf_download(b, 0, tmp[i], b->size, err)))
			hw.t[i] = tmp[i];
	}
	if (!rc)
		hf_weight_dequant(dst, &hw, 0, l->out, 0, l->in);
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		free(tmp[i]);
	return rc;
}

static struct lin_lora *find_lora(struct hf_model *m, const struct lin *l)
{
	for (size_t i = 0; i < m->nloras; i++)
		if (m->loras[i]->lin == l)
			return m->loras[i];
	return NULL;
}

/* A float32 buffer of n elements holding src, kept by the model. */
static int f32_buf(struct hf_model *m, struct hf_buf **out, const float *src,
		   size_t n, struct hf_err *err)
{
	if (ws_alloc(m, out, HF_DTYPE_F32, n, err))
		return err->code;
	return hf_buf_upload(*out, 0, src, n * sizeof(float), err);
}

/* Piece l (rows [r0, r0 + l->out) of the module's B) gets its delta. */
static int lora_piece(struct hf_model *m, struct lin *l, const float *A,
		      const float *B, size_t r0, size_t r, float scale,
		      int merge, struct hf_err *err)
{
	size_t in = l->in, out = l->out;
	struct lin_lora *ll, **nl;
	float *w = NULL;
	struct hf_buf *b;
	int rc;

	if (!(ll = calloc(1, sizeof(*ll))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	ll->m = m;
	ll->lin = l;
	ll->r = r;
	ll->merged = merge;
	nl = realloc(m->loras, (m->nloras + 1) * sizeof(*nl));
	if (!nl) {
		free(ll);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	m->loras = nl;
	m->loras[m->nloras++] = ll;
	if (merge) {
		/* W + scale * B A, in float32 (as PEFT merges on the CPU),
		 * sums of the r products in double */
		if (!(w = malloc(out * in * sizeof(float))))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if ((rc = weight_f32(l, w, err)))
			goto out;
		for (size_t o = 0; o < out; o++)
			for (size_t i = 0; i < in; i++) {
				double s = 0;

				for (size_t k = 0; k < r; k++)
					s += (double)B[(r0 + o) * r + k] *
					     A[k * in + i];
				w[o * in + i] += (float)(scale * s);
			}
		if ((rc = f32_buf(m, &b, w, out * in, err)) ||
		    (rc = lin_plain(m, l, b, out, in, err)))
			goto out;
		goto out;
	}
	if (!(w = malloc((in > out ? in : out) * r * sizeof(float))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = f32_buf(m, &b, A, r * in, err)) ||
	    (rc = hf_wbuf_plain(&ll->a, b, r, in, err)))
		goto out;
	for (size_t o = 0; o < out; o++)
		for (size_t k = 0; k < r; k++)
			w[o * r + k] = scale * B[(r0 + o) * r + k];
	if ((rc = f32_buf(m, &b, w, out * r, err)) ||
	    (rc = hf_wbuf_plain(&ll->b, b, out, r, err)))
		goto out;
	l->lora = ll;
	if (r > m->lora_r)
		m->lora_r = r;
	if (out > m->lora_out)
		m->lora_out = out;
out:
	free(w);
	return rc;
}

int hf_model_add_lora(struct hf_model *m, size_t i, const float *A,
		      const float *B, size_t r, float scale, int merge,
		      struct hf_err *err)
{
	struct mods ms;
	struct mod *d;
	size_t r0 = 0;
	int rc = 0;

	if (build(m, &ms, err))
		return err->code;
	if (i >= ms.n || !r) {
		rc = hf_err_set(err, HF_EINVAL, "module %zu of %zu, rank %zu",
				i, ms.n, r);
		goto out;
	}
	d = &ms.v[i];
	if (d->expert && !hf_backend_cpu_pool(m->be)) {
		rc = hf_err_set(err, HF_EUNSUPPORTED,
				"%s: an adapter on '%s': adapters on MoE experts "
				"run on the CPU only", m->dir, d->pub.name);
		goto out;
	}
	for (size_t j = 0; j < d->nlin; j++)
		if (find_lora(m, d->lin[j]) || d->lin[j]->tap) {
			rc = hf_err_set(err, HF_EINVAL,
					"%s: module '%s' has an adapter already",
					m->dir, d->pub.name);
			goto out;
		}
	/* a device may still be reading a workspace; the next forward
	 * pass makes one with the adapter's rows */
	if ((rc = hf_backend_sync(m->be, err)))
		goto out;
	ws_free(m);
	for (size_t j = 0; j < d->nlin && !rc; j++) {
		rc = lora_piece(m, d->lin[j], A, B, r0, r, scale, merge, err);
		r0 += d->lin[j]->out;
	}
	if (rc)
		hf_err_prefix(err, "%s: adapter on '%s'", m->dir, d->pub.name);
out:
	free(ms.v);
	return rc;
}

int hf_model_set_linear(struct hf_model *m, size_t i, const float *W,
			const float *b, struct hf_err *err)
{
	struct mods ms;
	struct mod *d;
	size_t r0 = 0;
	int rc = 0;

	if (build(m, &ms, err))
		return err->code;
	if (i >= ms.n) {
		rc = hf_err_set(err, HF_EINVAL, "module %zu of %zu", i, ms.n);
		goto out;
	}
	d = &ms.v[i];
	if (d->expert && !hf_backend_cpu_pool(m->be)) {
		rc = hf_err_set(err, HF_EUNSUPPORTED,
				"%s: '%s': MoE experts are replaced on the CPU only",
				m->dir, d->pub.name);
		goto out;
	}
	if ((rc = hf_backend_sync(m->be, err)))
		goto out;
	ws_free(m);
	for (size_t j = 0; j < d->nlin && !rc; j++) {
		struct lin *l = d->lin[j];
		struct hf_buf *w, *bb;

		/* a tied head gets its own weight; the embeddings stay */
		if ((rc = f32_buf(m, &w, W + r0 * l->in, l->out * l->in, err)) ||
		    (rc = lin_plain(m, l, w, l->out, l->in, err)))
			break;
		if (b && !(rc = f32_buf(m, &bb, b + r0, l->out, err)))
			l->b = bb;
		r0 += l->out;
	}
	if (rc)
		hf_err_prefix(err, "%s: '%s'", m->dir, d->pub.name);
out:
	free(ms.v);
	return rc;
}

int lora_ws(struct hf_model *m, size_t n, struct hf_err *err)
{
	m->lora_xa = m->lora_xb = NULL;
	if (!m->lora_r)
		return 0;
	if (ws_get(m, &m->lora_xa, HF_DTYPE_F32, n * m->lora_r, err) ||
	    ws_get(m, &m->lora_xb, HF_DTYPE_F32, n * m->lora_out, err))
		return err->code;
	return 0;
}

void lora_linear(struct hf_buf *y, struct hf_buf *x, const struct lin *l,
		 size_t n)
{
	const struct lin_lora *ll = l->lora;
	struct hf_model *m = ll->m;

	/* xa (n, r) = x A^T; xb (n, out) = xa (scale B)^T; y += xb */
	hf_op_linear(m->lora_xa, x, &ll->a, NULL, n);
	hf_op_linear(m->lora_xb, m->lora_xa, &ll->b, NULL, n);
	hf_op_add(y, y, m->lora_xb, n * l->out);
}

void lora_free(struct hf_model *m)
{
	for (size_t i = 0; i < m->nloras; i++) {
		if (m->loras[i]->lin->lora == m->loras[i])
			m->loras[i]->lin->lora = NULL;
		free(m->loras[i]);
	}
	free(m->loras);
	m->loras = NULL;
	m->nloras = 0;
}
