/* lib/model/tap.c: what a quantizer needs to work layer by layer (GPTQ):
 * the linears of a decoder layer by name, a tap that sees each one's
 * input before its product, and float32 weights put in their place. The
 * forward pass itself stays in decoder.c (hf_model_run_layers). */
#include "model/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const lin_names[HF_MODEL_LAYER_LIN] = {
	"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
	"self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
	"mlp.down_proj",
};

static int check_layers(struct hf_model *m, size_t l, struct hf_err *err)
{
	if (m->encoder || m->fam != FAM_LLAMA || m->ne ||
	    !strcmp(m->cfg->model_type, "phi3"))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: model_type '%s': layer by layer runs "
				  "take decoders with separate q/k/v/o and "
				  "gate/up/down projections", m->dir,
				  m->cfg->model_type);
	if (l >= m->nl)
		return hf_err_set(err, HF_ERANGE, "layer %zu of %zu", l, m->nl);
	return 0;
}

static struct lin *layer_lin(struct hf_model *m, size_t l, size_t i)
{
	struct layer *L = &m->layers[l];
	struct lin *ls[HF_MODEL_LAYER_LIN] = {
		&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down,
	};

	return i < HF_MODEL_LAYER_LIN ? ls[i] : NULL;
}

int hf_model_layer_linears(struct hf_model *m, size_t l,
			   struct hf_lin_info *info, size_t *count,
			   struct hf_err *err)
{
	*count = 0;
	if (check_layers(m, l, err))
		return err->code;
	for (size_t i = 0; i < HF_MODEL_LAYER_LIN; i++) {
		const struct lin *ln = layer_lin(m, l, i);

		snprintf(info[i].name, sizeof(info[i].name), "%slayers.%zu.%s",
			 m->pfx ? m->pfx : "", l, lin_names[i]);
		info[i].out = ln->out;
		info[i].in = ln->in;
	}
	*count = HF_MODEL_LAYER_LIN;
	return 0;
}

int hf_model_linear_weight(struct hf_model *m, size_t l, size_t i,
			   float *dst, struct hf_err *err)
{
	const struct lin *ln;
	struct hf_weight hw;

	if (check_layers(m, l, err))
		return err->code;
	if (!(ln = layer_lin(m, l, i)))
		return hf_err_set(err, HF_ERANGE, "linear %zu of a layer", i);
	if (ln->tap && ln->tap->own)
		return hf_buf_download(ln->tap->own, 0, dst,
				       ln->out * ln->in * sizeof(float), err);
	hf_wbuf_host(&hw, &ln->w);
	if (!hw.t[0])
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: the weights of layer %zu are not in host "
				  "memory", m->dir, l);
	hf_weight_dequant(dst, &hw, 0, ln->out, 0, ln->in);
	return 0;
}

int hf_model_linear_replace(struct hf_model *m, size_t l, size_t i,
			    const float *w, struct hf_err *err)
{
	struct lin *ln;
	struct lin_tap *t;
	size_t n;

	if (check_layers(m, l, err))
		return err->code;
	if (!(ln = layer_lin(m, l, i)) || !(t = ln->tap))
		return hf_err_set(err, HF_EINVAL,
				  "linear %zu of layer %zu has no tap", i, l);
	n = ln->out * ln->in;
	if (!t->own && (hf_buf_alloc(&t->own, m->be, HF_DTYPE_F32, n, err) ||
			hf_wbuf_plain(&ln->w, t->own, ln->out, ln->in, err)))
		return err->code;
	return hf_buf_upload(t->own, 0, w, n * sizeof(float), err);
}

static void untap(struct hf_model *m, size_t l)
{
	for (size_t i = 0; i < HF_MODEL_LAYER_LIN; i++) {
		struct lin *ln = layer_lin(m, l, i);
		struct lin_tap *t = &m->taps[l * HF_MODEL_LAYER_LIN + i];

		if (ln->tap) {
			ln->w = t->orig;
			ln->tap = NULL;
		}
		hf_buf_free(t->own);
		memset(t, 0, sizeof(*t));
	}
}

int hf_model_set_tap(struct hf_model *m, size_t l, hf_lin_tap_fn fn,
		     void *ctx, struct hf_err *err)
{
	if (check_layers(m, l, err))
		return err->code;
	if (!m->taps) {
		if (!fn)
			return 0;
		m->taps = calloc(m->nl * HF_MODEL_LAYER_LIN, sizeof(*m->taps));
		if (!m->taps)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	/* a device may still be reading a replacement */
	if (hf_backend_sync(m->be, err))
		return err->code;
	untap(m, l);
	if (!fn)
		return 0;
	for (size_t i = 0; i < HF_MODEL_LAYER_LIN; i++) {
		struct lin *ln = layer_lin(m, l, i);
		struct lin_tap *t = &m->taps[l * HF_MODEL_LAYER_LIN + i];

		t->fn = fn;
		t->ctx = ctx;
		t->l = l;
		t->i = i;
		t->orig = ln->w;
		ln->tap = t;
	}
	return 0;
}

void taps_free(struct hf_model *m)
{
	struct hf_err e = { 0 };

	if (!m->taps)
		return;
	hf_backend_sync(m->be, &e);
	for (size_t l = 0; l < m->nl; l++)
		untap(m, l);
	free(m->taps);
	m->taps = NULL;
}
