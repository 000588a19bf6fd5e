/* lib/model/decoder.c: the causal decoders. GPT-2 (modeling_gpt2.py) and
 * the Llama family in one pass: modeling_llama.py plus what its relatives
 * change: Mistral (sliding window), Qwen2 (q/k/v bias), Qwen3 (per-head
 * q/k RMSNorm before RoPE), Gemma ((1 + w) RMSNorm, embeddings times
 * sqrt(hidden), GeGLU), Phi-3 (fused qkv_proj and gate_up_proj), Mixtral
 * (top-k sparse MoE in place of the MLP). */
#include "core/log.h"
#include "model/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Decode steps (and short prompts) of at most this many tokens run the
 * MoE layer on the device when its experts are stacked (bind_experts):
 * matrix-vector products per (token, slot), no trip to the host. A
 * longer prompt groups its tokens per expert on the host instead, so
 * each expert's weights are read once, by the tiled product. */
#define MOE_DEV_ROWS 8

/* One projection (which: w1, w3, w2) of every expert of layer l in one
 * buffer (E, out, in), each expert's Linear a view of it: the stacked W
 * MATMUL_ID reads. For device backends, which copy weights anyway; the
 * CPU keeps the mmap'd tensors, one per expert. */
static int bind_experts(struct hf_model *m, struct lin *ls, size_t l,
			const char *which, size_t out, size_t in,
			struct hf_err *err)
{
	const size_t E = m->ne, n = out * in;
	enum hf_dtype dt = HF_DTYPE_F32;
	struct hf_buf *all = NULL, *v;
	char name[160], full[200];

	for (size_t e = 0; e < E; e++) {
		const struct hf_tensor *t;

		snprintf(name, sizeof(name),
			 "layers.%zu.block_sparse_moe.experts.%zu.%s.weight", l,
			 e, which);
		snprintf(full, sizeof(full), "%s%s", m->pfx ? m->pfx : "",
			 name);
		t = hf_st_model_get(m->st, full);
		if (!t)
			t = hf_st_model_get(m->st, name);
		if (!t)
			return hf_err_set(err, HF_ENOTFOUND,
					  "%s: missing tensor '%s'", m->dir,
					  full);
		if (hf_wfmt_of_dtype(t->dtype) < 0)
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "%s: tensor '%s' has dtype %s; stacked experts are read in %s (quantized experts run on the CPU only)",
					  m->dir, t->name,
					  hf_dtype_name(t->dtype), hf_wfmt_list());
		if (t->ndim != 2 || t->shape[0] != (int64_t)out ||
		    t->shape[1] != (int64_t)in)
			return hf_err_set(err, HF_EFORMAT,
					  "%s: tensor '%s' is not of shape [%zu, %zu]",
					  m->dir, t->name, out, in);
		if (!e) {
			dt = t->dtype;
			if (ws_alloc(m, &all, dt, E * n, err))
				return err->code;
			m->weight_bytes += all->size;
		} else if (t->dtype != dt) {
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "%s: tensor '%s' has dtype %s, expert 0's %s",
					  m->dir, t->name,
					  hf_dtype_name(t->dtype),
					  hf_dtype_name(dt));
		}
		if (hf_buf_upload(all, e * hf_dtype_size(dt, n), t->data,
				  hf_dtype_size(dt, n), err))
			return err->code;
	}
	for (size_t e = 0; e < E; e++) {
		if (hf_buf_view(&v, all, e * n, n, err))
			return err->code;
		if (!keep(m, v))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if (lin_plain(m, &ls[e], v, out, in, err))
			return err->code;
	}
	return 0;
}

static int llama_layer(struct hf_model *m, size_t l, struct hf_err *err)
{
	struct layer *L = &m->layers[l];
	const char *mt = m->cfg->model_type;
	size_t H = m->hidden, qo = m->hq * m->hd, ko = m->hkv * m->hd;
	int qkv_bias = !strcmp(mt, "qwen2") ? 1 : m->cfg->attention_bias ? 1 : 0;

	if (bind_tensor(m, &L->ln1_w, 1, 1, (int64_t)H, 0, err,
		 "layers.%zu.input_layernorm.weight", l) ||
	    bind_tensor(m, &L->ln2_w, 1, 1, (int64_t)H, 0, err,
		 "layers.%zu.post_attention_layernorm.weight", l))
		return err->code;
	if (!strcmp(mt, "phi3")) {
		struct lin qkv;

		if (bind_lin(m, &qkv, qo + 2 * ko, H, qkv_bias, err,
			     "layers.%zu.self_attn.qkv_proj", l) ||
		    lin_rows(m, &L->q, &qkv, 0, qo, err) ||
		    lin_rows(m, &L->k, &qkv, qo, ko, err) ||
		    lin_rows(m, &L->v, &qkv, qo + ko, ko, err))
			return err->code;
	} else if (bind_lin(m, &L->q, qo, H, qkv_bias, err,
			    "layers.%zu.self_attn.q_proj", l) ||
		   bind_lin(m, &L->k, ko, H, qkv_bias, err,
			    "layers.%zu.self_attn.k_proj", l) ||
		   bind_lin(m, &L->v, ko, H, qkv_bias, err,
			    "layers.%zu.self_attn.v_proj", l)) {
		return err->code;
	}
	if (bind_lin(m, &L->o, H, qo, m->cfg->attention_bias ? 1 : 0, err,
		     "layers.%zu.self_attn.o_proj", l))
		return err->code;
	if (!strcmp(mt, "qwen3") &&
	    (bind_tensor(m, &L->q_norm, 1, 1, (int64_t)m->hd, 0, err,
		  "layers.%zu.self_attn.q_norm.weight", l) ||
	     bind_tensor(m, &L->k_norm, 1, 1, (int64_t)m->hd, 0, err,
		  "layers.%zu.self_attn.k_norm.weight", l)))
		return err->code;
	if (m->ne) {
		if (bind_lin(m, &L->router, m->ne, H, 0, err,
			     "layers.%zu.block_sparse_moe.gate", l))
			return err->code;
		L->eg = calloc(m->ne, sizeof(struct lin));
		L->eu = calloc(m->ne, sizeof(struct lin));
		L->ed = calloc(m->ne, sizeof(struct lin));
		if (!L->eg || !L->eu || !L->ed)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if (!hf_backend_cpu_pool(m->be))
			return bind_experts(m, L->eg, l, "w1", m->inter, H,
					    err) ||
			       bind_experts(m, L->eu, l, "w3", m->inter, H,
					    err) ||
			       bind_experts(m, L->ed, l, "w2", H, m->inter,
					    err) ? err->code : 0;
		for (size_t e = 0; e < m->ne; e++)
			if (bind_lin(m, &L->eg[e], m->inter, H, 0, err,
				     "layers.%zu.block_sparse_moe.experts.%zu.w1",
				     l, e) ||
			    bind_lin(m, &L->eu[e], m->inter, H, 0, err,
				     "layers.%zu.block_sparse_moe.experts.%zu.w3",
				     l, e) ||
			    bind_lin(m, &L->ed[e], H, m->inter, 0, err,
				     "layers.%zu.block_sparse_moe.experts.%zu.w2",
				     l, e))
				return err->code;
		return 0;
	}
	if (!strcmp(mt, "phi3")) {
		struct lin gu;

		if (bind_lin(m, &gu, 2 * m->inter, H, 0, err,
			     "layers.%zu.mlp.gate_up_proj", l) ||
		    lin_rows(m, &L->gate, &gu, 0, m->inter, err) ||
		    lin_rows(m, &L->up, &gu, m->inter, m->inter, err))
			return err->code;
	} else if (bind_lin(m, &L->gate, m->inter, H, 2, err,
			    "layers.%zu.mlp.gate_proj", l) ||
		   bind_lin(m, &L->up, m->inter, H, 2, err,
			    "layers.%zu.mlp.up_proj", l)) {
		return err->code;
	}
	return bind_lin(m, &L->down, H, m->inter, 2, err,
			"layers.%zu.mlp.down_proj", l);
}

/* The output head: lm_head.weight, or the embeddings when tied. */
static int bind_head(struct hf_model *m, struct hf_err *err)
{
	const char *saved = m->pfx;
	int rc = 0;

	m->head.in = m->hidden;
	m->head.out = m->vocab;
	m->head.b = NULL;
	m->pfx = "";
	if (!m->cfg->tie_word_embeddings || !m->embed)
		rc = bind_weight(m, &m->head, m->vocab, m->hidden, err,
				 "lm_head");
	else
		rc = lin_plain(m, &m->head, m->embed, m->vocab, m->hidden,
			       err);
	m->pfx = saved;
	return rc;
}

int llama_load(struct hf_model *m, struct hf_err *err)
{
	const struct hf_config *c = m->cfg;
	const char *act = c->hidden_act ? c->hidden_act : "silu";
	int gemma = !strcmp(c->model_type, "gemma");

	/* GemmaMLP reads hidden_activation only; unset, it is the tanh
	 * GELU whatever hidden_act says (gemma-2b's says "gelu") */
	if (gemma && !json_is_string(json_object_get(c->text,
						     "hidden_activation")))
		act = "gelu_pytorch_tanh";

	m->pfx = "model.";
	if (parse_act(act, &m->act, "config.json: hidden_act", err))
		return hf_err_prefix(err, "%s", m->dir);
	m->attn_scale = (float)pow((double)m->hd, -0.5);
	m->emb_scale = gemma ? (float)sqrt((double)m->hidden) : 1.0f;
	m->norm_add_one = gemma;
	if (c->sliding_window > 0 && c->use_sliding_window) {
		int64_t mwl = 0;

		/* Qwen2 slides only from layer max_window_layers on */
		if (!strcmp(c->model_type, "qwen2") &&
		    hf_json_int(c->text, "max_window_layers", 0, &mwl,
				"config.json", err))
			return hf_err_prefix(err, "%s", m->dir);
		m->window = (size_t)c->sliding_window;
		for (size_t l = 0; l < m->nl; l++)
			m->layers[l].window = (int64_t)l >= mwl ? m->window : 0;
	}
	if (c->num_local_experts > 0) {
		m->ne = (size_t)c->num_local_experts;
		m->topk = (size_t)c->num_experts_per_tok;
		if (m->ne > 256 || !m->topk || m->topk > m->ne)
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "%s/config.json: %zu experts, %zu per "
					  "token: need 1 <= per token <= experts "
					  "<= 256", m->dir, m->ne, m->topk);
	}
	if (!m->inter)
		return hf_err_set(err, HF_EFORMAT,
				  "%s/config.json: missing key 'intermediate_size'",
				  m->dir);
	if (rope_init(m, err))
		return err->code;
	if (bind_tensor(m, &m->embed, 1, 0, (int64_t)m->vocab, (int64_t)m->hidden,
		 err, "embed_tokens.weight"))
		return err->code;
	for (size_t l = 0; l < m->nl; l++)
		if (llama_layer(m, l, err))
			return err->code;
	if (bind_tensor(m, &m->norm_w, 1, 1, (int64_t)m->hidden, 0, err,
		 "norm.weight"))
		return err->code;
	if (bind_head(m, err))
		return err->code;
	if (has_tensor(m, "score.weight")) {
		m->cls = CLS_SCORE;
		m->nlabels = (size_t)hf_st_model_get(m->st,
						     "score.weight")->shape[0];
		if (bind_lin(m, &m->cls1, m->nlabels, m->hidden, 0, err,
			     "score"))
			return err->code;
	}
	return 0;
}

/* GPT-2's Conv1D stores W as (in, out); make the (out, in) float32 copy
 * hf_matmul takes. Quantized checkpoints store it as a Linear, (out, in)
 * (transformers' quantizers transpose Conv1D weights), in any format. */
static int bind_conv1d(struct hf_model *m, struct lin *l, size_t in,
		       size_t out, const char *base, struct hf_err *err)
{
	struct hf_buf *wt, *w;
	float *src, *dst;
	const struct hf_tensor *t;
	char name[400];

	snprintf(name, sizeof(name), "%s.weight", base);
	t = find_tensor(m, name);
	if (!t || hf_wfmt_of_dtype(t->dtype) < 0)
		return bind_lin(m, l, out, in, 1, err, "%s", base);

	if (bind_tensor(m, &wt, 1, 1, (int64_t)in, (int64_t)out, err, "%s.weight",
		 base) ||
	    bind_tensor(m, &l->b, 1, 1, (int64_t)out, 0, err, "%s.bias", base) ||
	    ws_alloc(m, &w, HF_DTYPE_F32, in * out, err))
		return err->code;
	src = malloc(in * out * sizeof(float));
	dst = malloc(in * out * sizeof(float));
	if (!src || !dst) {
		free(src);
		free(dst);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (hf_buf_download(wt, 0, src, in * out * sizeof(float), err))
		goto fail;
	for (size_t i = 0; i < in; i++)
		for (size_t o = 0; o < out; o++)
			dst[o * in + i] = src[i * out + o];
	if (hf_buf_upload(w, 0, dst, in * out * sizeof(float), err))
		goto fail;
	free(src);
	free(dst);
	if (lin_plain(m, l, w, out, in, err))
		return err->code;
	m->weight_bytes += w->size;
	return 0;
fail:
	free(src);
	free(dst);
	return err->code;
}

int gpt2_load(struct hf_model *m, struct hf_err *err)
{
	const struct hf_config *c = m->cfg;
	size_t E = m->hidden;
	int scale = 1;
	char name[128];

	m->pfx = hf_st_model_get(m->st, "transformer.wte.weight") ?
			 "transformer." : "";
	if (parse_act(c->hidden_act ? c->hidden_act : "gelu_new", &m->act,
		      "config.json: activation_function", err))
		return hf_err_prefix(err, "%s", m->dir);
	if (hf_json_bool(c->text, "scale_attn_weights", 1, &scale,
			 "config.json", err) ||
	    hf_json_bool(c->text, "scale_attn_by_inverse_layer_idx", 0,
			 &m->inv_layer_scale, "config.json", err))
		return hf_err_prefix(err, "%s", m->dir);
	m->attn_scale = scale ? (float)pow((double)m->hd, -0.5) : 1.0f;
	m->emb_scale = 1.0f;
	if (!m->inter)
		m->inter = 4 * E;
	m->n_pos_rows = m->max_pos;
	if (bind_tensor(m, &m->embed, 1, 0, (int64_t)m->vocab, (int64_t)E, err,
		 "wte.weight") ||
	    bind_tensor(m, &m->pos_embed, 1, 0, (int64_t)m->max_pos, (int64_t)E, err,
		 "wpe.weight"))
		return err->code;
	for (size_t l = 0; l < m->nl; l++) {
		struct layer *L = &m->layers[l];
		struct lin qkv;

		snprintf(name, sizeof(name), "h.%zu.attn.c_attn", l);
		if (bind_conv1d(m, &qkv, E, 3 * E, name, err) ||
		    lin_rows(m, &L->q, &qkv, 0, E, err) ||
		    lin_rows(m, &L->k, &qkv, E, E, err) ||
		    lin_rows(m, &L->v, &qkv, 2 * E, E, err))
			return err->code;
		snprintf(name, sizeof(name), "h.%zu.attn.c_proj", l);
		if (bind_conv1d(m, &L->o, E, E, name, err))
			return err->code;
		snprintf(name, sizeof(name), "h.%zu.mlp.c_fc", l);
		if (bind_conv1d(m, &L->up, E, m->inter, name, err))
			return err->code;
		snprintf(name, sizeof(name), "h.%zu.mlp.c_proj", l);
		if (bind_conv1d(m, &L->down, m->inter, E, name, err))
			return err->code;
		if (bind_tensor(m, &L->ln1_w, 1, 1, (int64_t)E, 0, err,
			 "h.%zu.ln_1.weight", l) ||
		    bind_tensor(m, &L->ln1_b, 1, 1, (int64_t)E, 0, err,
			 "h.%zu.ln_1.bias", l) ||
		    bind_tensor(m, &L->ln2_w, 1, 1, (int64_t)E, 0, err,
			 "h.%zu.ln_2.weight", l) ||
		    bind_tensor(m, &L->ln2_b, 1, 1, (int64_t)E, 0, err,
			 "h.%zu.ln_2.bias", l))
			return err->code;
	}
	if (bind_tensor(m, &m->norm_w, 1, 1, (int64_t)E, 0, err, "ln_f.weight") ||
	    bind_tensor(m, &m->norm_b, 1, 1, (int64_t)E, 0, err, "ln_f.bias"))
		return err->code;
	return bind_head(m, err);
}

int decoder_ws(struct hf_model *m, size_t n, size_t B, int all_logits,
	       struct hf_err *err)
{
	size_t H = m->hidden, qo = m->hq * m->hd, ko = m->hkv * m->hd;
	size_t ln = all_logits ? n : B, I = m->inter;
	/* rows of g, u and ye: the device MoE path (stacked experts, up
	 * to MOE_DEV_ROWS tokens) has a row per (token, slot); monotone in
	 * n, as a smaller n reuses the workspace */
	const struct hf_buf *w0 = m->ne ? m->layers[0].eg[0].w.t[0] : NULL;
	size_t nd = (n < MOE_DEV_ROWS ? n : MOE_DEV_ROWS) * m->topk;
	size_t nr = w0 && w0->root != w0 && nd > n ? nd : n;

	/* a decode step (n == B) after a longer prompt gives the prompt's
	 * rows back: the KV cache grows over the generation, and peak
	 * memory should not be the cache plus a prompt's activations */
	if (n <= m->ws_n && B <= m->ws_b && ln * m->vocab <= m->logits->n &&
	    !(n == B && m->ws_n > B))
		return 0;
	ws_free(m);
	/* tmp (the o_proj and down_proj outputs) shares h: h is dead from
	 * the q/k/v and gate/up products to the next norm. Not with
	 * experts, whose gather reads h while their sum fills tmp. */
	if (ws_get(m, &m->x, HF_DTYPE_F32, n * H, err) ||
	    ws_get(m, &m->h, HF_DTYPE_F32, n * H, err) ||
	    (m->ne ? ws_get(m, &m->tmp, HF_DTYPE_F32, n * H, err) :
		     (m->tmp = m->h, 0)) ||
	    ws_get(m, &m->q, HF_DTYPE_F32, n * qo, err) ||
	    ws_get(m, &m->att, HF_DTYPE_F32, n * qo, err) ||
	    ws_get(m, &m->k, HF_DTYPE_F32, n * ko, err) ||
	    ws_get(m, &m->v, HF_DTYPE_F32, n * ko, err) ||
	    ws_get(m, &m->g, HF_DTYPE_F32, nr * I, err) ||
	    ws_get(m, &m->u, HF_DTYPE_F32, nr * I, err) ||
	    ws_get(m, &m->ids, HF_DTYPE_I32, n, err) ||
	    ws_get(m, &m->pos, HF_DTYPE_I32, n, err) ||
	    ws_get(m, &m->cols, HF_DTYPE_I32, n, err) ||
	    ws_get(m, &m->lastidx, HF_DTYPE_I32, n, err) ||
	    ws_get(m, &m->hlast, HF_DTYPE_F32, B * H, err) ||
	    ws_get(m, &m->logits, HF_DTYPE_F32, ln * m->vocab, err))
		return err->code;
	if (m->ne &&
	    (ws_get(m, &m->router, HF_DTYPE_F32, n * m->ne, err) ||
	     ws_get(m, &m->rw, HF_DTYPE_F32, n * m->topk, err) ||
	     ws_get(m, &m->rexp, HF_DTYPE_I32, n * m->topk, err) ||
	     ws_get(m, &m->xe, HF_DTYPE_F32, n * H, err) ||
	     ws_get(m, &m->ye, HF_DTYPE_F32, nr * H, err) ||
	     ws_get(m, &m->ridx, HF_DTYPE_I32, n, err) ||
	     ws_get(m, &m->rwt, HF_DTYPE_F32, n, err)))
		return err->code;
	if (lora_ws(m, n, err))
		return err->code;
	m->ws_n = n;
	m->ws_b = B;
	return 0;
}

/* Whether n tokens run the MoE layers on the device: the experts are
 * stacked (a device backend) and there are few tokens. */
static int moe_on_device(const struct hf_model *m, size_t n)
{
	const struct hf_buf *w = m->ne ? m->layers[0].eg[0].w.t[0] : NULL;

	return w && w->root != w && n <= MOE_DEV_ROWS;
}

/* MixtralSparseMoeBlock: route each token to its top-k experts, run each
 * expert on its tokens, add the weighted outputs into m->tmp. On the
 * device (moe_on_device) every (token, slot) runs its expert by
 * MATMUL_ID, reading the routing from the device, so a recorded decode
 * step replays; else the routing table comes back to the host to group
 * tokens per expert. */
static int moe(struct hf_model *m, struct layer *L, size_t n, float *router_out,
	       struct hf_err *err)
{
	size_t E = m->ne, k = m->topk, H = m->hidden, I = m->inter;
	int32_t *exp = NULL, *rows = NULL;
	float *w = NULL, *wt = NULL;
	int rc = 0;

	linear(m->router, m->h, &L->router, n);
	if (router_out &&
	    (rc = hf_buf_download(m->router, 0, router_out,
				  n * E * sizeof(float), err)))
		return rc;
	hf_op_moe_route(m->rw, m->rexp, m->router, n, E, k);
	if (moe_on_device(m, n)) {
		/* gate and up from each token's row, down from each
		 * (token, slot)'s row of g; then the weighted sum */
		hf_op_matmul_id(m->g, m->h, L->eg[0].w.t[0]->root, m->rexp, n, k,
				H, I, E, 0);
		hf_op_matmul_id(m->u, m->h, L->eu[0].w.t[0]->root, m->rexp, n, k,
				H, I, E, 0);
		hf_op_glu(m->g, m->g, m->u, n * k, I, m->act);
		hf_op_matmul_id(m->ye, m->g, L->ed[0].w.t[0]->root, m->rexp, n, k,
				I, H, E, 1);
		hf_op_moe_sum(m->tmp, m->ye, m->rw, n, k, H);
		return 0;
	}
	exp = malloc(n * k * sizeof(*exp));
	w = malloc(n * k * sizeof(*w));
	rows = malloc(n * sizeof(*rows));
	wt = malloc(n * sizeof(*wt));
	if (!exp || !w || !rows || !wt) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = hf_buf_download(m->rexp, 0, exp, n * k * sizeof(*exp), err)) ||
	    (rc = hf_buf_download(m->rw, 0, w, n * k * sizeof(*w), err)))
		goto out;
	hf_op_scale(m->tmp, m->tmp, n * H, 0.0f);
	for (size_t e = 0; e < E; e++) {
		size_t ne = 0;

		for (size_t t = 0; t < n; t++)
			for (size_t j = 0; j < k; j++)
				if (exp[t * k + j] == (int32_t)e) {
					rows[ne] = (int32_t)t;
					wt[ne++] = w[t * k + j];
				}
		if (!ne)
			continue;
		if ((rc = hf_buf_upload(m->ridx, 0, rows, ne * sizeof(*rows),
					err)) ||
		    (rc = hf_buf_upload(m->rwt, 0, wt, ne * sizeof(*wt), err)))
			goto out;
		hf_op_get_rows(m->xe, m->h, m->ridx, ne, H, n);
		linear(m->g, m->xe, &L->eg[e], ne);
		linear(m->u, m->xe, &L->eu[e], ne);
		hf_op_glu(m->g, m->g, m->u, ne, I, m->act);
		linear(m->ye, m->g, &L->ed[e], ne);
		hf_op_add_rows(m->tmp, m->ye, m->ridx, m->rwt, ne, H);
	}
out:
	free(exp);
	free(w);
	free(rows);
	free(wt);
	return rc;
}

/* hf_model_run_layers(): layers [l0, l1) from hidden states hin (NULL:
 * the embeddings of ids), the residual stream after layer l1 - 1 into
 * hout (no final norm, no logits). */
struct range {
	size_t l0, l1;
	const float *hin;
	float *hout;
};

static int capture(struct hf_buf *b, float *dst, size_t n, struct hf_err *err)
{
	return dst ? hf_buf_download(b, 0, dst, n * sizeof(float), err) : 0;
}

/* The ops of one forward pass of N = B * T tokens whose inputs (ids,
 * pos, cols, lastidx, the mask) are uploaded; the logits are left in
 * m->logits when logits is set. Nothing here depends on the cache length but through those
 * buffers, so a recording replays at any later position. hid and router
 * (downloads between layers) are NULL when recording. */
static int decoder_ops(struct hf_model *m, struct hf_kv *kv, size_t B,
		       size_t T, int logits, int all, float *hid,
		       float *router, const struct range *rg, struct hf_err *err)
{
	size_t C = kv->C, N = B * T, H = m->hidden, ko = m->hkv * m->hd;
	size_t l0 = rg ? rg->l0 : 0, l1 = rg ? rg->l1 : m->nl;
	int gpt2 = m->fam == FAM_GPT2;
	int rc;

	if (rg && rg->hin) {
		if ((rc = hf_buf_upload(m->x, 0, rg->hin, N * H * sizeof(float),
					err)))
			return rc;
	} else {
		hf_op_get_rows(m->x, m->embed, m->ids, N, H, m->vocab);
		if (gpt2) {
			hf_op_get_rows(m->h, m->pos_embed, m->pos, N, H,
				       m->n_pos_rows);
			hf_op_add(m->x, m->x, m->h, N * H);
		} else if (m->emb_scale != 1.0f) {
			hf_op_scale(m->x, m->x, N * H, m->emb_scale);
		}
	}
	for (size_t l = l0; l < l1; l++) {
		struct layer *L = &m->layers[l];
		float scale = m->attn_scale;

		if ((rc = capture(m->x, hid ? hid + l * N * H : NULL, N * H,
				  err)))
			return rc;
		if (gpt2) {
			hf_op_layernorm(m->h, m->x, L->ln1_w, L->ln1_b, N, H,
					m->eps);
			if (m->inv_layer_scale)
				scale /= (float)(l + 1);
		} else {
			hf_op_rmsnorm(m->h, m->x, L->ln1_w, N, H, m->eps,
				      m->norm_add_one);
		}
		linear(m->q, m->h, &L->q, N);
		linear(m->k, m->h, &L->k, N);
		linear(m->v, m->h, &L->v, N);
		if (L->q_norm) {
			hf_op_rmsnorm(m->q, m->q, L->q_norm, N * m->hq, m->hd,
				      m->eps, 0);
			hf_op_rmsnorm(m->k, m->k, L->k_norm, N * m->hkv, m->hd,
				      m->eps, 0);
		}
		if (!gpt2) {
			hf_op_rope(m->q, m->pos, m->inv_freq, N, m->hq, m->hd,
				   m->rot_dim, HF_ROPE_HALF, m->rope_scaling);
			hf_op_rope(m->k, m->pos, m->inv_freq, N, m->hkv, m->hd,
				   m->rot_dim, HF_ROPE_HALF, m->rope_scaling);
		}
		hf_op_kv_store_as(kv->k[l], m->k, m->cols, B, T, C, ko,
				  kv->kvt, m->hd);
		hf_op_kv_store_as(kv->v[l], m->v, m->cols, B, T, C, ko,
				  kv->kvt, m->hd);
		hf_op_attention_as(m->att, m->q, kv->k[l], kv->v[l], kv->mask,
				   m->cols, B, T, C, m->hq, m->hkv, m->hd, 1,
				   L->window, scale, kv->kvt);
		linear(m->tmp, m->att, &L->o, N);
		hf_op_add(m->x, m->x, m->tmp, N * H);
		if (gpt2) {
			hf_op_layernorm(m->h, m->x, L->ln2_w, L->ln2_b, N, H,
					m->eps);
			linear(m->g, m->h, &L->up, N);
			hf_op_act(m->g, m->g, N * m->inter, m->act);
		} else {
			hf_op_rmsnorm(m->h, m->x, L->ln2_w, N, H, m->eps,
				      m->norm_add_one);
		}
		if (m->ne) {
			float *r = router ? router + l * N * m->ne : NULL;

			if ((rc = moe(m, L, N, r, err)))
				return rc;
		} else {
			if (!gpt2) {
				linear(m->g, m->h, &L->gate, N);
				linear(m->u, m->h, &L->up, N);
				hf_op_glu(m->g, m->g, m->u, N, m->inter,
					  m->act);
			}
			linear(m->tmp, m->g, &L->down, N);
		}
		hf_op_add(m->x, m->x, m->tmp, N * H);
	}
	if (rg)
		return capture(m->x, rg->hout, N * H, err);
	if (gpt2)
		hf_op_layernorm(m->h, m->x, m->norm_w, m->norm_b, N, H, m->eps);
	else
		hf_op_rmsnorm(m->h, m->x, m->norm_w, N, H, m->eps,
			      m->norm_add_one);
	if ((rc = capture(m->h, hid ? hid + m->nl * N * H : NULL, N * H, err)))
		return rc;
	if (!logits)
		return 0;
	if (all) {
		linear(m->logits, m->h, &m->head, N);
	} else {
		hf_op_get_rows(m->hlast, m->h, m->lastidx, B, H, N);
		linear(m->logits, m->hlast, &m->head, B);
	}
	return 0;
}

/* One decode step through kv's recorded graph: replay it when it was
 * recorded on the current workspace for the same logits layout, else
 * run the ops once while recording them. Mixtral comes here only when
 * moe() routes on the device; on the host path it downloads the routing
 * to group tokens per expert, which a replay could not redo. */
static int decode_step(struct hf_model *m, struct hf_kv *kv, int all,
		       struct hf_err *err)
{
	struct hf_backend *be = m->be;
	int rc;

	if (kv->graph_ok && kv->graph_ws == m->ws_gen &&
	    kv->graph_all == all) {
		kv->nreplay++;
		return hf_graph_replay(be, &kv->graph, err);
	}
	hf_graph_free(be, &kv->graph);
	kv->graph_ok = 0;
	if ((rc = hf_graph_begin(be, &kv->graph, err)))
		return rc;
	rc = decoder_ops(m, kv, kv->B, 1, 1, all, NULL, NULL, NULL, err);
	if (hf_graph_end(be, &kv->graph, rc ? NULL : err) && !rc)
		rc = err->code ? err->code : HF_EINTERNAL;
	if (!rc && !(rc = hf_backend_status(be, err))) {
		kv->graph_ok = 1;
		kv->graph_ws = m->ws_gen;
		kv->graph_all = all;
	} else {
		hf_graph_free(be, &kv->graph);
	}
	return rc;
}

/* hf_model_forward(), or with rg the layers [rg->l0, rg->l1) alone. */
static int forward(struct hf_model *m, struct hf_kv *kv, const int32_t *ids,
		   const int32_t *mask, size_t T, struct hf_fwd_out *out,
		   const struct range *rg, struct hf_err *err)
{
	size_t B = kv->B, C = kv->C, N = B * T, past = kv->len;
	int all = out && out->all_logits, gpt2 = m->fam == FAM_GPT2;
	float *hid = out ? out->hidden : NULL;
	float *router = out ? out->router : NULL;
	int32_t *pos = NULL, *last = NULL, *cols = NULL;
	size_t maxpos = 0;
	int rc;

	if (m->encoder)
		return hf_err_set(err, HF_EINVAL,
				  "%s: an encoder has no causal forward pass",
				  m->dir);
	if (!T)
		return hf_err_set(err, HF_EINVAL, "empty input: no tokens");
	if (T > C - past)
		return hf_err_set(err, HF_ERANGE,
				  "%zu more tokens do not fit in the context: "
				  "%zu of %zu already used", T, past, C);
	for (size_t i = 0; i < N; i++)
		if (ids[i] < 0 || (size_t)ids[i] >= m->vocab)
			return hf_err_set(err, HF_ERANGE,
					  "token id %d (row %zu, position %zu) is "
					  "outside the vocabulary of %zu", ids[i],
					  i / T, i % T, m->vocab);
	if ((rc = hf_backend_status(m->be, err)))
		return rc;
	if ((rc = decoder_ws(m, N, B, all, err)))
		return rc;
	pos = malloc(N * sizeof(*pos));
	cols = malloc(N * sizeof(*cols));
	last = malloc(B * sizeof(*last));
	if (!pos || !cols || !last) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t b = 0; b < B; b++) {
		int64_t cnt = kv->count[b];

		for (size_t t = 0; t < T; t++) {
			int valid = !mask || mask[b * T + t];

			kv->mask_host[b * C + past + t] = valid ? 1.0f : 0.0f;
			pos[b * T + t] = valid ? (int32_t)cnt++ : 1;
			cols[b * T + t] = (int32_t)(past + t);
			if ((size_t)pos[b * T + t] > maxpos)
				maxpos = (size_t)pos[b * T + t];
		}
		last[b] = (int32_t)(b * T + T - 1);
	}
	if (gpt2 && maxpos >= m->n_pos_rows) {
		rc = hf_err_set(err, HF_ERANGE,
				"position %zu is past the %zu positions of the "
				"model", maxpos, m->n_pos_rows);
		goto out;
	}
	/* RoPE computes any position, as transformers does; say once that
	 * the model was not trained this far */
	if (!gpt2 && m->max_pos && maxpos >= m->max_pos && !m->warned_pos) {
		m->warned_pos = 1;
		hf_log_warn("%s: position %zu is past max_position_embeddings "
			    "(%zu), the context the model was trained for; "
			    "RoPE computes it, the output may degrade", m->dir,
			    maxpos, m->max_pos);
	}
	for (size_t b = 0; b < B; b++)
		for (size_t t = 0; t < T; t++)
			if (!mask || mask[b * T + t])
				kv->count[b]++;
	if ((rc = hf_buf_upload(m->ids, 0, ids, N * sizeof(*ids), err)) ||
	    (rc = hf_buf_upload(m->pos, 0, pos, N * sizeof(*pos), err)) ||
	    (rc = hf_buf_upload(m->cols, 0, cols, N * sizeof(*cols), err)) ||
	    (rc = hf_buf_upload(m->lastidx, 0, last, B * sizeof(*last), err)) ||
	    (rc = hf_buf_upload(kv->mask, 0, kv->mask_host,
				B * C * sizeof(float), err)))
		goto out;
	if (!gpt2 && (rc = rope_update(m, maxpos + 1, err)))
		goto out;
	if (T == 1 && m->replay && (!m->ne || moe_on_device(m, N)) &&
	    !hid && !router && !rg)
		rc = decode_step(m, kv, all, err);
	else
		rc = decoder_ops(m, kv, B, T, out && out->logits, all, hid,
				 router, rg, err);
	if (rc || (rc = hf_backend_status(m->be, err)))
		goto out;
	if (out && out->logits)
		rc = capture(m->logits, out->logits,
			     (all ? N : B) * m->vocab, err);
	kv->len += T;
out:
	free(pos);
	free(cols);
	free(last);
	return rc;
}

int hf_model_forward(struct hf_model *m, struct hf_kv *kv, const int32_t *ids,
		     const int32_t *mask, size_t T, struct hf_fwd_out *out,
		     struct hf_err *err)
{
	return forward(m, kv, ids, mask, T, out, NULL, err);
}

int hf_model_run_layers(struct hf_model *m, struct hf_kv *kv,
			const int32_t *ids, size_t T, size_t l0, size_t l1,
			const float *hin, float *hout, struct hf_err *err)
{
	struct range rg = { l0, l1, hin, hout };

	if (l0 > l1 || l1 > m->nl || (l0 && !hin))
		return hf_err_set(err, HF_EINVAL,
				  "layers [%zu, %zu) of %zu: a range past layer "
				  "0 needs its input hidden states", l0, l1,
				  m->nl);
	hf_kv_reset(kv);
	return forward(m, kv, ids, NULL, T, NULL, &rg, err);
}
