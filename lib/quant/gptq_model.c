/* lib/quant/gptq_model.c: GPTQ over a model, layer by layer, on the
 * calibration set: each decoder layer runs once over all sequences, and
 * each of its linears is solved (gptq.c) when the pass reaches it, from
 * the inputs the quantized layers and linears before it give, then
 * multiplied by its dequantized weight for the rest of the pass (the
 * order of GPTQModel's true_sequential, with one layer pass where
 * GPTQModel makes one per subset and one more for the outputs). */
#include "quant/gptq.h"

#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "quant/calib.h"

struct run {
	struct hf_model *m;
	const struct hf_gptq_opts *o;
	hf_gptq_sink sink;
	void *sink_ctx;
	struct hf_err *err;
	int rc;
	struct hf_lin_info info[HF_MODEL_LAYER_LIN];
	size_t nseq;
	float *X;		/* host copy of an input (device backends) */
	size_t xcap;
	float *H, *Hc, *W;	/* the Hessian, the solver's copy, the weight */
	/* which input H belongs to: linears reading the same values (q, k
	 * and v; gate and up) share it, as their Hessians are equal */
	const struct hf_buf *hbuf;
	size_t hn, hcols;
	uint64_t hsum;
	int hvalid;
};

/* A 64-bit digest of n floats, to tell the same input from a new one. */
static uint64_t digest(const float *x, size_t n)
{
	const uint32_t *w = (const uint32_t *)x;
	uint64_t h = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

static void on_linear(void *ctx, size_t l, size_t i, struct hf_buf *x,
		      size_t n)
{
	struct run *r = ctx;
	const struct hf_lin_info *li = &r->info[i];
	struct hf_gptq_result res = { 0 };
	struct hf_qlinear q = { 0 };
	struct hf_gptq_linear out;
	const float *X = x->host;
	size_t rows = li->out, cols = li->in;
	uint64_t sum;

	if (r->o->skip && r->o->skip(r->o->skip_ctx, li->name))
		return;
	if (r->rc)
		return;
	if ((r->rc = hf_backend_sync(hf_model_backend(r->m), r->err)))
		return;
	if (!X) {
		if (n * cols > r->xcap) {
			free(r->X);
			r->xcap = 0;
			if (!(r->X = malloc(n * cols * sizeof(float)))) {
				r->rc = hf_err_set(r->err, HF_ENOMEM,
						   "out of memory");
				return;
			}
			r->xcap = n * cols;
		}
		if ((r->rc = hf_buf_download(x, 0, r->X,
					     n * cols * sizeof(float), r->err)))
			return;
		X = r->X;
	}
	sum = digest(X, n * cols);
	if (!r->hvalid || r->hbuf != x || r->hn != n || r->hcols != cols ||
	    r->hsum != sum) {
		hf_gptq_hessian(r->H, X, n, cols, 2.0f / (float)r->nseq);
		r->hbuf = x;
		r->hn = n;
		r->hcols = cols;
		r->hsum = sum;
		r->hvalid = 1;
	}
	if ((r->rc = hf_model_linear_weight(r->m, l, i, r->W, r->err)))
		return;
	memcpy(r->Hc, r->H, cols * cols * sizeof(float));
	if ((r->rc = hf_gptq_solve(&res, r->W, rows, cols, r->Hc, &r->o->p,
				   r->err))) {
		hf_err_prefix(r->err, "'%s'", li->name);
		return;
	}
	out.name = li->name;
	out.layer = l;
	out.W = r->W;
	out.H = r->H;
	out.ntok = n;
	out.nseq = r->nseq;
	out.r = &res;
	out.q = &q;
	if (!(r->rc = hf_model_linear_replace(r->m, l, i, res.deq, r->err)) &&
	    !(r->rc = hf_gptq_pack(&q, res.q, res.scales, res.zeros, res.g_idx,
				   rows, cols, res.G, res.bits, r->o->v2,
				   r->err)) &&
	    r->sink)
		r->rc = r->sink(r->sink_ctx, &out, r->err);
	if (r->rc)
		hf_err_prefix(r->err, "'%s'", li->name);
	hf_qlinear_free(&q);
	hf_gptq_result_free(&res);
}

int hf_gptq_quantize_model(const char *model_dir,
			   const struct hf_gptq_opts *o, hf_gptq_sink sink,
			   void *ctx, struct hf_err *err)
{
	struct run r = { 0 };
	struct hf_calib cal = { 0 };
	struct hf_model *m = NULL;
	struct hf_kv *kv = NULL;
	float *hid = NULL;
	size_t count, maxin = 0, maxw = 0, N, Hd;
	int rc;

	if ((rc = hf_model_open(&m, model_dir, NULL, o->threads, err)))
		return rc;
	if ((rc = hf_model_layer_linears(m, 0, r.info, &count, err)))
		goto fail;
	for (size_t i = 0; i < count; i++) {
		if (r.info[i].in > maxin)
			maxin = r.info[i].in;
		if (r.info[i].in * r.info[i].out > maxw)
			maxw = r.info[i].in * r.info[i].out;
		if (o->p.group_size > 0 &&
		    r.info[i].in % (size_t)o->p.group_size &&
		    !(o->skip && o->skip(o->skip_ctx, r.info[i].name))) {
			rc = hf_err_set(err, HF_EINVAL,
					"group size %ld does not divide the %zu "
					"inputs of '%s'", o->p.group_size,
					r.info[i].in, r.info[i].name);
			goto fail;
		}
	}
	if ((rc = hf_calib_load(&cal, o->calib, model_dir, o->samples,
				o->seq_len, hf_model_vocab(m), err)))
		goto fail;
	N = cal.n * cal.T;
	Hd = hf_model_hidden(m);
	r.m = m;
	r.o = o;
	r.sink = sink;
	r.sink_ctx = ctx;
	r.err = err;
	r.nseq = cal.n;
	hid = malloc(N * Hd * sizeof(float));
	r.H = malloc(maxin * maxin * sizeof(float));
	r.Hc = malloc(maxin * maxin * sizeof(float));
	r.W = malloc(maxw * sizeof(float));
	if (!hid || !r.H || !r.Hc || !r.W) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = hf_kv_new(&kv, m, cal.n, cal.T, err)))
		goto fail;
	for (size_t l = 0; l < hf_model_layers(m); l++) {
		if ((rc = hf_model_layer_linears(m, l, r.info, &count, err)) ||
		    (rc = hf_model_set_tap(m, l, on_linear, &r, err)))
			goto fail;
		r.hvalid = 0;
		rc = hf_model_run_layers(m, kv, cal.ids, cal.T, l, l + 1,
					 l ? hid : NULL, hid, err);
		if (!rc && r.rc)
			rc = r.rc;
		if (rc)
			goto fail;
		/* layer l never runs again: give its float copies back */
		if ((rc = hf_model_set_tap(m, l, NULL, NULL, err)))
			goto fail;
	}
fail:
	free(r.X);
	free(r.H);
	free(r.Hc);
	free(r.W);
	free(hid);
	hf_kv_free(kv);
	hf_calib_free(&cal);
	hf_model_free(m);
	return rc;
}
