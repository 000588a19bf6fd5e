/* lib/model/train_gpt2.c: the training forward and backward of one
 * GPT-2 block (modeling_gpt2.py, eager, no dropout): pre-LayerNorm,
 * the fused Conv1D c_attn (columns q, then k, then v), causal attention
 * with the key mask, c_proj, the residual, ln_2, c_fc, the activation
 * (gelu_new), mlp.c_proj, the residual; the rest of the model (wte and
 * wpe, ln_f, the head tied to wte, the loss) is train_encoder.c's. */
#include "model/train_ln.h"

#include <stdio.h>
#include <string.h>

#include "train/ops.h"

int ln_gpt2_load(struct hf_train_ln *t, struct hf_err *err)
{
	size_t H = t->H, I = t->I;

	for (size_t l = 0; l < t->nl; l++) {
		struct ln_layer *L = &t->L[l];

		L->q = L->k = L->v = LN_NONE;
		L->scale = t->m->attn_scale;
		if (t->m->inv_layer_scale)
			L->scale /= (float)(l + 1);
		if (ln_add_param(t, &L->ln1w, 1, err, "h.%zu.ln_1.weight", l) ||
		    ln_want_shape(t, L->ln1w, H, 0, err) ||
		    ln_add_param(t, &L->ln1b, 1, err, "h.%zu.ln_1.bias", l) ||
		    ln_want_shape(t, L->ln1b, H, 0, err) ||
		    ln_add_lin(t, &L->qkv, l, 3 * H, H, 1, 1, err,
			       "h.%zu.attn.c_attn", l) ||
		    ln_add_lin(t, &L->o, l, H, H, 1, 1, err,
			       "h.%zu.attn.c_proj", l) ||
		    ln_add_param(t, &L->ln2w, 1, err, "h.%zu.ln_2.weight", l) ||
		    ln_want_shape(t, L->ln2w, H, 0, err) ||
		    ln_add_param(t, &L->ln2b, 1, err, "h.%zu.ln_2.bias", l) ||
		    ln_want_shape(t, L->ln2b, H, 0, err) ||
		    ln_add_lin(t, &L->up, l, I, H, 1, 1, err, "h.%zu.mlp.c_fc",
			       l) ||
		    ln_add_lin(t, &L->down, l, H, I, 1, 1, err,
			       "h.%zu.mlp.c_proj", l))
			return err->code;
	}
	if (ln_add_param(t, &t->fnw, 1, err, "ln_f.weight") ||
	    ln_want_shape(t, t->fnw, H, 0, err) ||
	    ln_add_param(t, &t->fnb, 1, err, "ln_f.bias") ||
	    ln_want_shape(t, t->fnb, H, 0, err))
		return err->code;
	return 0;
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

int ln_gpt2_layer_fwd(struct hf_train_ln *t, size_t l, struct ln_act *A,
		      const float *xin, float *xout, size_t B, size_t T,
		      int recompute, struct hf_err *err)
{
	const struct ln_layer *L = &t->L[l];
	size_t N = B * T, H = t->H, I = t->I;
	int rc;

	hf_layernorm_forward(A->h1, A->mean1, A->rstd1, xin, ln_w(t, L->ln1w),
			     ln_w(t, L->ln1b), N, H, t->eps);
	if ((rc = ln_lin_fwd(t, L->qkv, t->fz, A->h1, N, recompute, err)))
		return rc;
	cols_get(A->q, t->fz, N, 3 * H, 0, H);
	cols_get(A->k, t->fz, N, 3 * H, H, H);
	cols_get(A->v, t->fz, N, 3 * H, 2 * H, H);
	hf_attention_forward(A->att, A->lse, A->q, A->k, A->v, t->mask, B, T,
			     t->hq, t->hq, t->hd, 1, 0, L->scale, t->pool);
	if ((rc = ln_lin_fwd(t, L->o, t->tmp, A->att, N, recompute, err)))
		return rc;
	hf_add_forward(A->r1, xin, t->tmp, N * H);
	hf_layernorm_forward(A->x1, A->mean2, A->rstd2, A->r1,
			     ln_w(t, L->ln2w), ln_w(t, L->ln2b), N, H, t->eps);
	if ((rc = ln_lin_fwd(t, L->up, A->u, A->x1, N, recompute, err)))
		return rc;
	hf_act_forward(A->a, A->u, N * I, t->act);
	if ((rc = ln_lin_fwd(t, L->down, t->tmp, A->a, N, recompute, err)))
		return rc;
	hf_add_forward(xout, A->r1, t->tmp, N * H);
	return 0;
}

#define ZERO(p, n) memset((p), 0, (n) * sizeof(float))

/* t->dX holds d xout on entry and d xin on return. */
int ln_gpt2_layer_bwd(struct hf_train_ln *t, size_t l, const struct ln_act *A,
		      const float *xin, size_t B, size_t T, struct hf_err *err)
{
	const struct ln_layer *L = &t->L[l];
	size_t N = B * T, H = t->H, I = t->I;
	int rc;

	/* xout = r1 + c_proj(act(c_fc(ln_2(r1)))) */
	ZERO(t->da, N * I);
	if ((rc = ln_lin_bwd(t, L->down, t->da, t->dX, A->a, N, err)))
		return rc;
	ZERO(t->du, N * I);
	hf_act_backward(t->du, t->da, A->u, N * I, t->act);
	ZERO(t->dh, N * H);
	if ((rc = ln_lin_bwd(t, L->up, t->dh, t->du, A->x1, N, err)))
		return rc;
	hf_layernorm_backward(t->dX, ln_g(t, L->ln2w), ln_g(t, L->ln2b), t->dh,
			      A->r1, ln_w(t, L->ln2w), A->mean2, A->rstd2, N,
			      H);
	/* r1 = xin + c_proj(attn(c_attn(ln_1(xin)))) */
	ZERO(t->datt, N * H);
	if ((rc = ln_lin_bwd(t, L->o, t->datt, t->dX, A->att, N, err)))
		return rc;
	ZERO(t->dq, N * H);
	ZERO(t->dk, N * H);
	ZERO(t->dv, N * H);
	hf_attention_backward(t->dq, t->dk, t->dv, t->datt, A->q, A->k, A->v,
			      A->att, A->lse, t->mask, B, T, t->hq, t->hq,
			      t->hd, 1, 0, L->scale, t->pool);
	cols_put(t->dfz, t->dq, N, 3 * H, 0, H);
	cols_put(t->dfz, t->dk, N, 3 * H, H, H);
	cols_put(t->dfz, t->dv, N, 3 * H, 2 * H, H);
	ZERO(t->dh, N * H);
	if ((rc = ln_lin_bwd(t, L->qkv, t->dh, t->dfz, A->h1, N, err)))
		return rc;
	hf_layernorm_backward(t->dX, ln_g(t, L->ln1w), ln_g(t, L->ln1b), t->dh,
			      xin, ln_w(t, L->ln1w), A->mean1, A->rstd1, N, H);
	return 0;
}
