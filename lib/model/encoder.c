/* lib/model/encoder.c: the BERT-style encoders (modeling_bert.py,
 * modeling_roberta.py, modeling_distilbert.py): post-LayerNorm blocks,
 * bidirectional attention with a padding mask, pooler, masked-LM heads
 * and *ForSequenceClassification heads. */
#include "model/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int bind_ln(struct hf_model *m, struct hf_buf **w, struct hf_buf **b,
		   const char *base, struct hf_err *err)
{
	if (bind_tensor(m, w, 1, 1, (int64_t)m->hidden, 0, err, "%s.weight", base) ||
	    bind_tensor(m, b, 1, 1, (int64_t)m->hidden, 0, err, "%s.bias", base))
		return err->code;
	return 0;
}

static int encoder_layer(struct hf_model *m, size_t l, struct hf_err *err)
{
	struct layer *L = &m->layers[l];
	size_t H = m->hidden, I = m->inter;
	char p[160], n[220];

	if (m->fam == FAM_DISTILBERT) {
		snprintf(p, sizeof(p), "transformer.layer.%zu.", l);
		if (bind_lin(m, &L->q, H, H, 1, err, "%sattention.q_lin", p) ||
		    bind_lin(m, &L->k, H, H, 1, err, "%sattention.k_lin", p) ||
		    bind_lin(m, &L->v, H, H, 1, err, "%sattention.v_lin", p) ||
		    bind_lin(m, &L->o, H, H, 1, err, "%sattention.out_lin", p) ||
		    bind_lin(m, &L->up, I, H, 1, err, "%sffn.lin1", p) ||
		    bind_lin(m, &L->down, H, I, 1, err, "%sffn.lin2", p))
			return err->code;
		snprintf(n, sizeof(n), "%ssa_layer_norm", p);
		if (bind_ln(m, &L->ln1_w, &L->ln1_b, n, err))
			return err->code;
		snprintf(n, sizeof(n), "%soutput_layer_norm", p);
		return bind_ln(m, &L->ln2_w, &L->ln2_b, n, err);
	}
	snprintf(p, sizeof(p), "encoder.layer.%zu.", l);
	if (bind_lin(m, &L->q, H, H, 1, err, "%sattention.self.query", p) ||
	    bind_lin(m, &L->k, H, H, 1, err, "%sattention.self.key", p) ||
	    bind_lin(m, &L->v, H, H, 1, err, "%sattention.self.value", p) ||
	    bind_lin(m, &L->o, H, H, 1, err, "%sattention.output.dense", p) ||
	    bind_lin(m, &L->up, I, H, 1, err, "%sintermediate.dense", p) ||
	    bind_lin(m, &L->down, H, I, 1, err, "%soutput.dense", p))
		return err->code;
	snprintf(n, sizeof(n), "%sattention.output.LayerNorm", p);
	if (bind_ln(m, &L->ln1_w, &L->ln1_b, n, err))
		return err->code;
	snprintf(n, sizeof(n), "%soutput.LayerNorm", p);
	return bind_ln(m, &L->ln2_w, &L->ln2_b, n, err);
}

/* Masked-LM head; absent in a bare *Model checkpoint (then no logits). */
static int bind_mlm(struct hf_model *m, struct hf_err *err)
{
	const char *dense, *ln, *bias, *dec;
	size_t H = m->hidden;

	switch (m->fam) {
	case FAM_BERT:
		dense = "cls.predictions.transform.dense";
		ln = "cls.predictions.transform.LayerNorm";
		bias = has_tensor(m, "cls.predictions.bias") ?
			       "cls.predictions.bias" :
			       "cls.predictions.decoder.bias";
		dec = "cls.predictions.decoder.weight";
		break;
	case FAM_ROBERTA:
		dense = "lm_head.dense";
		ln = "lm_head.layer_norm";
		bias = has_tensor(m, "lm_head.bias") ? "lm_head.bias" :
						     "lm_head.decoder.bias";
		dec = "lm_head.decoder.weight";
		break;
	default:
		dense = "vocab_transform";
		ln = "vocab_layer_norm";
		bias = "vocab_projector.bias";
		dec = "vocab_projector.weight";
		break;
	}
	{
		char w[200];

		snprintf(w, sizeof(w), "%s.weight", dense);
		if (!has_tensor(m, w))
			return 0;
	}
	if (bind_lin(m, &m->mlm_dense, H, H, 1, err, "%s", dense) ||
	    bind_ln(m, &m->mlm_ln_w, &m->mlm_ln_b, ln, err) ||
	    bind_tensor(m, &m->head.b, 1, 1, (int64_t)m->vocab, 0, err, "%s", bias))
		return err->code;
	if (has_tensor(m, dec)) {
		char base[200];

		/* dec names the weight; its Linear is the name without it */
		snprintf(base, sizeof(base), "%.*s", (int)(strlen(dec) - 7),
			 dec);
		if (bind_weight(m, &m->head, m->vocab, H, err, base))
			return err->code;
	} else if (lin_plain(m, &m->head, m->embed, m->vocab, H, err)) {
		/* tied to the word embeddings */
		return err->code;
	}
	return 0;
}

static int bind_cls(struct hf_model *m, struct hf_err *err)
{
	const struct hf_tensor *t;
	size_t H = m->hidden;
	const char *saved = m->pfx;
	int rc = 0;

	m->pfx = "";
	if ((t = hf_st_model_get(m->st, "classifier.out_proj.weight"))) {
		m->cls = CLS_ROBERTA;
		m->nlabels = (size_t)t->shape[0];
		rc = bind_lin(m, &m->cls1, H, H, 1, err, "classifier.dense") ||
		     bind_lin(m, &m->cls2, m->nlabels, H, 1, err,
			      "classifier.out_proj");
	} else if (hf_st_model_get(m->st, "pre_classifier.weight") &&
		   (t = hf_st_model_get(m->st, "classifier.weight"))) {
		m->cls = CLS_DISTIL;
		m->nlabels = (size_t)t->shape[0];
		rc = bind_lin(m, &m->cls1, H, H, 1, err, "pre_classifier") ||
		     bind_lin(m, &m->cls2, m->nlabels, H, 1, err, "classifier");
	} else if ((t = hf_st_model_get(m->st, "classifier.weight")) &&
		   m->pooler.w.t[0]) {
		m->cls = CLS_POOLER;
		m->nlabels = (size_t)t->shape[0];
		rc = bind_lin(m, &m->cls2, m->nlabels, H, 1, err, "classifier");
	}
	m->pfx = saved;
	return rc ? err->code : 0;
}

int encoder_load(struct hf_model *m, struct hf_err *err)
{
	const struct hf_config *c = m->cfg;
	static const char *const pfx[] = { "bert.", "roberta.", "distilbert." };
	const char *act = c->hidden_act ? c->hidden_act : "gelu";
	size_t H = m->hidden;
	const char *pet = NULL;
	char probe[96];

	snprintf(probe, sizeof(probe), "%sembeddings.word_embeddings.weight",
		 pfx[m->fam - FAM_BERT]);
	m->pfx = hf_st_model_get(m->st, probe) ? pfx[m->fam - FAM_BERT] : "";
	if (parse_act(act, &m->act, "config.json: hidden_act", err))
		return hf_err_prefix(err, "%s", m->dir);
	if (hf_json_str(c->text, "position_embedding_type", "absolute", &pet,
			"config.json", err))
		return hf_err_prefix(err, "%s", m->dir);
	if (strcmp(pet, "absolute"))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s/config.json: position_embedding_type '%s' "
				  "is not supported (absolute only)", m->dir, pet);
	if (m->fam == FAM_DISTILBERT)
		m->eps = 1e-12f;	/* hard-coded in modeling_distilbert */
	if (!m->inter)
		return hf_err_set(err, HF_EFORMAT,
				  "%s/config.json: missing key 'intermediate_size'",
				  m->dir);
	m->attn_scale = (float)(1.0 / sqrt((double)m->hd));
	m->n_pos_rows = m->max_pos;
	if (m->fam == FAM_ROBERTA)
		m->pos_offset = (int)c->pad_token_id + 1;
	if (bind_tensor(m, &m->embed, 1, 0, (int64_t)m->vocab, (int64_t)H, err,
		 "embeddings.word_embeddings.weight") ||
	    bind_tensor(m, &m->pos_embed, 1, 0, (int64_t)m->max_pos, (int64_t)H, err,
		 "embeddings.position_embeddings.weight") ||
	    bind_ln(m, &m->emb_ln_w, &m->emb_ln_b, "embeddings.LayerNorm", err))
		return err->code;
	if (m->fam != FAM_DISTILBERT) {
		m->n_types = c->type_vocab_size > 0 ?
				     (size_t)c->type_vocab_size : 2;
		if (bind_tensor(m, &m->type_embed, 1, 0, (int64_t)m->n_types,
			 (int64_t)H, err,
			 "embeddings.token_type_embeddings.weight"))
			return err->code;
		if (has_tensor(m, "pooler.dense.weight") &&
		    bind_lin(m, &m->pooler, H, H, 1, err, "pooler.dense"))
			return err->code;
	}
	for (size_t l = 0; l < m->nl; l++)
		if (encoder_layer(m, l, err))
			return err->code;
	if (bind_mlm(m, err) || bind_cls(m, err))
		return err->code;
	return 0;
}


/* Decoder *ForSequenceClassification: score() at each row's last token
 * (HF picks the last non-pad token; rows are right-aligned here). */
static int decoder_classify(struct hf_model *m, const int32_t *ids,
			    const int32_t *mask, size_t B, size_t T,
			    float *out, struct hf_err *err)
{
	size_t H = m->hidden, nl = m->nlabels;
	float *hid = NULL;
	struct hf_kv *kv = NULL;
	struct hf_buf *x = NULL, *y = NULL;
	int rc;

	hid = malloc((m->nl + 1) * B * T * H * sizeof(float));
	if (!hid)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t b = 0; b < B; b++) {
		struct hf_fwd_out fo = { .hidden = hid };
		size_t last = T - 1;

		if (mask)
			while (last > 0 && !mask[b * T + last])
				last--;
		if ((rc = hf_kv_new(&kv, m, 1, T, err)) ||
		    (rc = hf_model_forward(m, kv, ids + b * T,
					   mask ? mask + b * T : NULL, T, &fo,
					   err)))
			goto out;
		hf_kv_free(kv);
		kv = NULL;
		if ((rc = hf_buf_alloc(&x, m->be, HF_DTYPE_F32, H, err)) ||
		    (rc = hf_buf_alloc(&y, m->be, HF_DTYPE_F32, nl, err)) ||
		    (rc = hf_buf_upload(x, 0, hid + (m->nl * T + last) * H,
					H * sizeof(float), err)))
			goto out;
		linear(y, x, &m->cls1, 1);
		if ((rc = hf_buf_download(y, 0, out + b * nl, nl * sizeof(float),
					  err)))
			goto out;
		hf_buf_free(x);
		hf_buf_free(y);
		x = y = NULL;
	}
	rc = 0;
out:
	hf_kv_free(kv);
	hf_buf_free(x);
	hf_buf_free(y);
	free(hid);
	return rc;
}

int hf_model_encode(struct hf_model *m, const int32_t *ids,
		    const int32_t *type_ids, const int32_t *mask, size_t B,
		    size_t T, struct hf_enc_out *out, struct hf_err *err)
{
	size_t N = B * T, H = m->hidden, I = m->inter;
	struct hf_buf *x, *h, *tmp, *q, *k, *v, *att, *g, *bid, *bpos, *btype;
	struct hf_buf *bmask, *first, *hf, *pool;
	int32_t *pos = NULL, *fidx = NULL;
	float *maskf = NULL;
	int rc;

	if (!m->encoder) {
		if (out->class_logits && m->cls == CLS_SCORE)
			return decoder_classify(m, ids, mask, B, T,
						out->class_logits, err);
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: a %s decoder has no encoder outputs", m->dir,
				  m->cfg->model_type);
	}
	if (!N)
		return hf_err_set(err, HF_EINVAL, "empty input: no tokens");
	if (T > m->max_pos - (size_t)m->pos_offset)
		return hf_err_set(err, HF_ERANGE,
				  "%zu tokens are more than the %zu positions of "
				  "the model", T,
				  m->max_pos - (size_t)m->pos_offset);
	for (size_t i = 0; i < N; i++) {
		if (ids[i] < 0 || (size_t)ids[i] >= m->vocab)
			return hf_err_set(err, HF_ERANGE,
					  "token id %d (row %zu, position %zu) is "
					  "outside the vocabulary of %zu", ids[i],
					  i / T, i % T, m->vocab);
		if (type_ids && m->type_embed &&
		    (type_ids[i] < 0 || (size_t)type_ids[i] >= m->n_types))
			return hf_err_set(err, HF_ERANGE,
					  "token type id %d is outside [0, %zu)",
					  type_ids[i], m->n_types);
	}
	if (out->mlm_logits && !m->head.w.t[0])
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: no masked-LM head in the weights", m->dir);
	if (out->pooler && !m->pooler.w.t[0])
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: no pooler in the weights", m->dir);
	if (out->class_logits && m->cls == CLS_NONE)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: no classification head in the weights",
				  m->dir);
	ws_free(m);
	pos = calloc(N, sizeof(*pos));
	fidx = calloc(B, sizeof(*fidx));
	maskf = calloc(N, sizeof(*maskf));
	if (!pos || !fidx || !maskf) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t b = 0; b < B; b++) {
		int32_t cnt = 0;

		fidx[b] = (int32_t)(b * T);
		for (size_t t = 0; t < T; t++) {
			size_t i = b * T + t;

			maskf[i] = !mask || mask[i] ? 1.0f : 0.0f;
			if (m->fam == FAM_ROBERTA) {
				/* create_position_ids_from_input_ids */
				int pad = ids[i] == m->pos_offset - 1;

				cnt += !pad;
				pos[i] = pad ? m->pos_offset - 1 :
					       cnt + m->pos_offset - 1;
			} else {
				pos[i] = (int32_t)t;
			}
		}
	}
	if ((rc = ws_get(m, &x, HF_DTYPE_F32, N * H, err)) ||
	    (rc = ws_get(m, &h, HF_DTYPE_F32, N * H, err)) ||
	    (rc = ws_get(m, &tmp, HF_DTYPE_F32, N * H, err)) ||
	    (rc = ws_get(m, &q, HF_DTYPE_F32, N * H, err)) ||
	    (rc = ws_get(m, &k, HF_DTYPE_F32, N * H, err)) ||
	    (rc = ws_get(m, &v, HF_DTYPE_F32, N * H, err)) ||
	    (rc = ws_get(m, &att, HF_DTYPE_F32, N * H, err)) ||
	    (rc = ws_get(m, &g, HF_DTYPE_F32, N * (I > H ? I : H), err)) ||
	    (rc = ws_get(m, &bid, HF_DTYPE_I32, N, err)) ||
	    (rc = ws_get(m, &bpos, HF_DTYPE_I32, N, err)) ||
	    (rc = ws_get(m, &btype, HF_DTYPE_I32, N, err)) ||
	    (rc = ws_get(m, &bmask, HF_DTYPE_F32, N, err)) ||
	    (rc = ws_get(m, &first, HF_DTYPE_I32, B, err)) ||
	    (rc = ws_get(m, &hf, HF_DTYPE_F32, B * H, err)) ||
	    (rc = ws_get(m, &pool, HF_DTYPE_F32, B * H, err)) ||
	    (rc = lora_ws(m, N, err)) ||
	    (rc = hf_buf_upload(bid, 0, ids, N * sizeof(*ids), err)) ||
	    (rc = hf_buf_upload(bpos, 0, pos, N * sizeof(*pos), err)) ||
	    (rc = hf_buf_upload(bmask, 0, maskf, N * sizeof(*maskf), err)) ||
	    (rc = hf_buf_upload(first, 0, fidx, B * sizeof(*fidx), err)) ||
	    (type_ids && (rc = hf_buf_upload(btype, 0, type_ids,
					     N * sizeof(*type_ids), err))))
		goto out;

	hf_op_get_rows(x, m->embed, bid, N, H, m->vocab);
	hf_op_get_rows(h, m->pos_embed, bpos, N, H, m->n_pos_rows);
	hf_op_add(x, x, h, N * H);
	if (m->type_embed) {
		hf_op_get_rows(h, m->type_embed, btype, N, H, m->n_types);
		hf_op_add(x, x, h, N * H);
	}
	hf_op_layernorm(x, x, m->emb_ln_w, m->emb_ln_b, N, H, m->eps);
	for (size_t l = 0; l < m->nl; l++) {
		struct layer *L = &m->layers[l];

		if (out->all_hidden &&
		    (rc = hf_buf_download(x, 0, out->all_hidden + l * N * H,
					  N * H * sizeof(float), err)))
			goto out;
		linear(q, x, &L->q, N);
		linear(k, x, &L->k, N);
		linear(v, x, &L->v, N);
		/* k, v (B * T, H) are a cache of C = T columns */
		hf_op_attention(att, q, k, v, bmask, NULL, B, T, T, m->hq,
				m->hq, m->hd, 0, 0, m->attn_scale);
		linear(tmp, att, &L->o, N);
		hf_op_add(tmp, tmp, x, N * H);
		hf_op_layernorm(x, tmp, L->ln1_w, L->ln1_b, N, H, m->eps);
		linear(g, x, &L->up, N);
		hf_op_act(g, g, N * I, m->act);
		linear(tmp, g, &L->down, N);
		hf_op_add(tmp, tmp, x, N * H);
		hf_op_layernorm(x, tmp, L->ln2_w, L->ln2_b, N, H, m->eps);
	}
	if ((out->all_hidden &&
	     (rc = hf_buf_download(x, 0, out->all_hidden + m->nl * N * H,
				   N * H * sizeof(float), err))) ||
	    (out->hidden && (rc = hf_buf_download(x, 0, out->hidden,
						  N * H * sizeof(float), err))))
		goto out;
	hf_op_get_rows(hf, x, first, B, H, N);
	if (m->pooler.w.t[0] && (out->pooler || m->cls == CLS_POOLER)) {
		linear(pool, hf, &m->pooler, B);
		hf_op_act(pool, pool, B * H, HF_ACT_TANH);
		if (out->pooler &&
		    (rc = hf_buf_download(pool, 0, out->pooler,
					  B * H * sizeof(float), err)))
			goto out;
	}
	if (out->class_logits) {
		struct hf_buf *y = att;	/* (B, labels) fits in N * H */

		if (m->cls == CLS_POOLER) {
			linear(y, pool, &m->cls2, B);
		} else {
			linear(tmp, hf, &m->cls1, B);
			hf_op_act(tmp, tmp, B * H, m->cls == CLS_ROBERTA ?
							 HF_ACT_TANH : HF_ACT_RELU);
			linear(y, tmp, &m->cls2, B);
		}
		if ((rc = hf_buf_download(y, 0, out->class_logits,
					  B * m->nlabels * sizeof(float), err)))
			goto out;
	}
	if (out->mlm_logits) {
		struct hf_buf *lg;
		enum hf_act act = m->fam == FAM_ROBERTA ? HF_ACT_GELU_ERF :
							  m->act;

		if ((rc = ws_get(m, &lg, HF_DTYPE_F32, N * m->vocab, err)))
			goto out;
		linear(tmp, x, &m->mlm_dense, N);
		hf_op_act(tmp, tmp, N * H, act);
		hf_op_layernorm(tmp, tmp, m->mlm_ln_w, m->mlm_ln_b, N, H,
				m->eps);
		linear(lg, tmp, &m->head, N);
		rc = hf_buf_download(lg, 0, out->mlm_logits,
				     N * m->vocab * sizeof(float), err);
	}
out:
	if (!rc)
		rc = hf_backend_status(m->be, err);
	ws_free(m);
	free(pos);
	free(fidx);
	free(maskf);
	return rc;
}
