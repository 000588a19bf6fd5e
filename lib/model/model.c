/* lib/model/model.c: opening a model directory, binding weights by their
 * HF names, KV caches, and what every family shares. */
#include "model/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kvfmt.h"
#include "core/file.h"

struct hf_buf *keep(struct hf_model *m, struct hf_buf *b)
{
	if (!b)
		return NULL;
	if (m->nbufs == m->capbufs) {
		size_t cap = m->capbufs ? 2 * m->capbufs : 256;
		struct hf_buf **nb = realloc(m->bufs, cap * sizeof(*nb));

		if (!nb) {
			hf_buf_free(b);
			return NULL;
		}
		m->bufs = nb;
		m->capbufs = cap;
	}
	m->bufs[m->nbufs++] = b;
	return b;
}

int ws_alloc(struct hf_model *m, struct hf_buf **out, enum hf_dtype dt,
	     size_t n, struct hf_err *err)
{
	struct hf_buf *b;

	if (hf_buf_alloc(&b, m->be, dt, n ? n : 1, err))
		return err->code;
	if (!keep(m, b))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	*out = b;
	return 0;
}

int ws_get(struct hf_model *m, struct hf_buf **out, enum hf_dtype dt,
	   size_t n, struct hf_err *err)
{
	if (m->nws == sizeof(m->wsb) / sizeof(m->wsb[0]))
		return hf_err_set(err, HF_EINTERNAL, "too many workspace buffers");
	if (hf_buf_alloc(out, m->be, dt, n ? n : 1, err))
		return err->code;
	m->wsb[m->nws++] = *out;
	return 0;
}

void ws_free(struct hf_model *m)
{
	while (m->nws)
		hf_buf_free(m->wsb[--m->nws]);
	m->ws_n = 0;
	m->ws_b = 0;
	m->ws_gen++;
}

int parse_act(const char *s, enum hf_act *act, const char *where,
	      struct hf_err *err)
{
	static const struct {
		const char *name;
		enum hf_act act;
	} acts[] = {
		{ "silu", HF_ACT_SILU }, { "swish", HF_ACT_SILU },
		{ "gelu", HF_ACT_GELU_ERF },
		{ "gelu_new", HF_ACT_GELU_TANH },
		{ "gelu_pytorch_tanh", HF_ACT_GELU_TANH },
		{ "gelu_fast", HF_ACT_GELU_TANH },
		{ "relu", HF_ACT_RELU }, { "tanh", HF_ACT_TANH },
	};

	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (!strcmp(s, acts[i].name)) {
			*act = acts[i].act;
			return 0;
		}
	return hf_err_set(err, HF_EUNSUPPORTED,
			  "%s: activation '%s' is not supported", where, s);
}

static const struct {
	const char *type;
	enum family fam;
} families[] = {
	{ "gpt2", FAM_GPT2 },
	{ "llama", FAM_LLAMA }, { "mistral", FAM_LLAMA },
	{ "qwen2", FAM_LLAMA }, { "qwen3", FAM_LLAMA },
	{ "gemma", FAM_LLAMA }, { "phi3", FAM_LLAMA },
	{ "mixtral", FAM_LLAMA },
	{ "bert", FAM_BERT }, { "roberta", FAM_ROBERTA },
	{ "xlm-roberta", FAM_ROBERTA }, { "distilbert", FAM_DISTILBERT },
};

int hf_model_open(struct hf_model **out, const char *dir,
		  struct hf_backend *be, int threads, struct hf_err *err)
{
	struct hf_model *m;
	size_t i;
	int rc;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->dir = strdup(dir))) {
		free(m);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if ((rc = hf_config_load(&m->cfg, dir, err)))
		goto fail;
	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (!strcmp(m->cfg->model_type, families[i].type))
			break;
	if (i == sizeof(families) / sizeof(families[0])) {
		rc = hf_err_set(err, HF_EUNSUPPORTED,
				"%s/config.json: model_type '%s' is not supported "
				"(supported: gpt2, llama, mistral, qwen2, qwen3, "
				"gemma, phi3, mixtral, bert, roberta, distilbert)",
				dir, m->cfg->model_type);
		goto fail;
	}
	m->fam = families[i].fam;
	{
		const json_t *q = json_object_get(m->cfg->json,
						  "quantization_config");
		char where[600];

		snprintf(where, sizeof(where),
			 "%s/config.json: quantization_config", dir);
		if (q && !json_is_null(q)) {
			if ((rc = hf_qcfg_parse(&m->qcfg, q, where, err)))
				goto fail;
			m->qc = &m->qcfg;
		}
	}
	{
		const char *g = getenv("HF_GRAPH");

		m->replay = !g || strcmp(g, "0") != 0;
	}
	if ((rc = hf_st_open_dir(&m->st, dir, err)))
		goto fail;
	if (be) {
		m->be = be;
	} else {
		if ((rc = hf_backend_cpu_create(&m->be, threads, err)))
			goto fail;
		m->own_be = 1;
	}
	/* the CPU computes on the mapped weights in place: map their pages
	 * in now, as part of loading, not a fault at a time in the first
	 * forward pass (a device backend uploads them instead) */
	if (!strcmp(hf_backend_name(m->be), "cpu"))
		for (size_t f = 0; f < hf_st_model_nfiles(m->st); f++) {
			const struct hf_st *st = hf_st_model_file(m->st, f);

			hf_map_prefetch(hf_st_base(st), hf_st_size(st));
		}
	m->vocab = (size_t)m->cfg->vocab_size;
	m->hidden = (size_t)m->cfg->hidden_size;
	m->nl = (size_t)m->cfg->num_hidden_layers;
	m->hq = (size_t)m->cfg->num_attention_heads;
	m->hkv = (size_t)m->cfg->num_key_value_heads;
	m->hd = (size_t)m->cfg->head_dim;
	m->inter = (size_t)m->cfg->intermediate_size;
	m->max_pos = (size_t)m->cfg->max_position_embeddings;
	m->eps = (float)m->cfg->norm_eps;
	if (!m->vocab || !m->hidden || !m->nl || !m->hq || !m->hkv ||
	    !m->hd || m->hq % m->hkv) {
		rc = hf_err_set(err, HF_EFORMAT,
				"%s/config.json: inconsistent sizes (vocab %zu, "
				"hidden %zu, layers %zu, heads %zu, kv heads %zu, "
				"head_dim %zu)", dir, m->vocab, m->hidden, m->nl,
				m->hq, m->hkv, m->hd);
		goto fail;
	}
	m->layers = calloc(m->nl, sizeof(*m->layers));
	if (!m->layers) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	switch (m->fam) {
	case FAM_GPT2:
		rc = gpt2_load(m, err);
		break;
	case FAM_LLAMA:
		rc = llama_load(m, err);
		break;
	default:
		m->encoder = 1;
		rc = encoder_load(m, err);
		break;
	}
	if (rc)
		goto fail;
	*out = m;
	return 0;
fail:
	hf_model_free(m);
	return rc;
}

void hf_model_free(struct hf_model *m)
{
	if (!m)
		return;
	ws_free(m);
	taps_free(m);
	lora_free(m);
	while (m->nbufs)
		hf_buf_free(m->bufs[--m->nbufs]);
	free(m->bufs);
	if (m->layers)
		for (size_t l = 0; l < m->nl; l++) {
			free(m->layers[l].eg);
			free(m->layers[l].eu);
			free(m->layers[l].ed);
		}
	free(m->layers);
	free(m->inv_freq_host);
	if (m->own_be)
		hf_backend_free(m->be);
	hf_st_model_free(m->st);
	hf_config_free(m->cfg);
	free(m->dir);
	free(m);
}

const struct hf_config *hf_model_config(const struct hf_model *m)
{
	return m->cfg;
}

struct hf_backend *hf_model_backend(struct hf_model *m)
{
	return m->be;
}

const char *hf_model_dir(const struct hf_model *m)
{
	return m->dir;
}

int hf_model_is_encoder(const struct hf_model *m)
{
	return m->encoder;
}

size_t hf_model_vocab(const struct hf_model *m)
{
	return m->vocab;
}

size_t hf_model_hidden(const struct hf_model *m)
{
	return m->hidden;
}

size_t hf_model_layers(const struct hf_model *m)
{
	return m->nl;
}

size_t hf_model_max_ctx(const struct hf_model *m)
{
	return m->max_pos;
}

size_t hf_model_max_positions(const struct hf_model *m)
{
	return m->pos_embed ? m->n_pos_rows - (size_t)m->pos_offset : 0;
}

size_t hf_model_experts(const struct hf_model *m)
{
	return m->ne;
}

void hf_model_set_replay(struct hf_model *m, int on)
{
	m->replay = on != 0;
}

size_t hf_model_num_labels(const struct hf_model *m)
{
	return m->cls == CLS_NONE ? 0 : m->nlabels;
}

size_t hf_model_weight_bytes(const struct hf_model *m)
{
	return m->weight_bytes;
}

int hf_model_has_pooler(const struct hf_model *m)
{
	return m->pooler.w.t[0] != NULL;
}

int hf_model_has_mlm(const struct hf_model *m)
{
	return m->encoder && m->head.w.t[0] != NULL;
}

int hf_kv_new(struct hf_kv **out, struct hf_model *m, size_t batch,
	      size_t cap, struct hf_err *err)
{
	struct hf_kv *kv;
	size_t w = m->hkv * m->hd, n;
	enum hf_dtype dt;

	*out = NULL;
	if (m->encoder)
		return hf_err_set(err, HF_EINVAL,
				  "%s: an encoder has no KV cache", m->dir);
	if (!batch || !cap)
		return hf_err_set(err, HF_EINVAL, "empty KV cache");
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	kv->m = m;
	kv->B = batch;
	kv->C = cap;
	kv->k = calloc(m->nl, sizeof(*kv->k));
	kv->v = calloc(m->nl, sizeof(*kv->v));
	kv->mask_host = calloc(batch * cap, sizeof(float));
	kv->count = calloc(batch, sizeof(*kv->count));
	if (!kv->k || !kv->v || !kv->mask_host || !kv->count) {
		hf_kv_free(kv);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	kv->kvt = m->kv_type;
	dt = kv->kvt == HF_KV_F32 ? HF_DTYPE_F32 : kv->kvt == HF_KV_F16 ?
		HF_DTYPE_F16 : kv->kvt == HF_KV_BF16 ? HF_DTYPE_BF16 :
		HF_DTYPE_U8;
	n = dt == HF_DTYPE_U8 ? batch * cap * hf_kv_bytes(kv->kvt, w, m->hd) :
		batch * cap * w;
	for (size_t l = 0; l < m->nl; l++)
		if (hf_buf_alloc(&kv->k[l], m->be, dt, n, err) ||
		    hf_buf_alloc(&kv->v[l], m->be, dt, n, err)) {
			hf_kv_free(kv);
			return hf_err_prefix(err, "KV cache of %zu x %zu tokens",
					     batch, cap);
		}
	if (hf_buf_alloc(&kv->mask, m->be, HF_DTYPE_F32, batch * cap, err)) {
		hf_kv_free(kv);
		return err->code;
	}
	*out = kv;
	return 0;
}

int hf_model_set_kv_cache(struct hf_model *m, const char *type,
			  struct hf_err *err)
{
	int t = hf_kv_type_parse(type);

	if (t < 0)
		return hf_err_set(err, HF_EINVAL,
				  "KV cache type '%s': the types are f32, f16, bf16, int8, q4",
				  type);
	if (m->encoder)
		return hf_err_set(err, HF_EINVAL,
				  "%s: an encoder has no KV cache", m->dir);
	if (!hf_kv_fits(t, m->hd))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: a %s KV cache needs a head size that is a multiple of %d (it is %zu)",
				  m->dir, type, t == HF_KV_Q4 ? 8 : 4, m->hd);
	m->kv_type = t;
	return 0;
}

size_t hf_model_kv_token_bytes(const struct hf_model *m)
{
	if (m->encoder)
		return 0;
	return 2 * m->nl * hf_kv_bytes(m->kv_type, m->hkv * m->hd, m->hd);
}

const char *hf_model_kv_cache(const struct hf_model *m)
{
	return hf_kv_type_name(m->kv_type);
}

void hf_kv_free(struct hf_kv *kv)
{
	if (!kv)
		return;
	hf_graph_free(kv->m->be, &kv->graph);
	for (size_t l = 0; kv->k && l < kv->m->nl; l++)
		hf_buf_free(kv->k[l]);
	for (size_t l = 0; kv->v && l < kv->m->nl; l++)
		hf_buf_free(kv->v[l]);
	free(kv->k);
	free(kv->v);
	hf_buf_free(kv->mask);
	free(kv->mask_host);
	free(kv->count);
	free(kv);
}

void hf_kv_reset(struct hf_kv *kv)
{
	kv->len = 0;
	memset(kv->count, 0, kv->B * sizeof(*kv->count));
	memset(kv->mask_host, 0, kv->B * kv->C * sizeof(float));
}

size_t hf_kv_len(const struct hf_kv *kv)
{
	return kv->len;
}

size_t hf_kv_replays(const struct hf_kv *kv)
{
	return kv->nreplay;
}

size_t hf_kv_cap(const struct hf_kv *kv)
{
	return kv->C;
}
