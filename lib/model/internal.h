/* lib/model/internal.h: what the family files share: the model struct,
 * weight binding by HF name, workspace buffers. */
#ifndef HF_MODEL_INTERNAL_H
#define HF_MODEL_INTERNAL_H

#include "core/json.h"
#include "model/model.h"
#include "quant/qconfig.h"
#include "st/st.h"

enum family {
	FAM_GPT2,
	FAM_LLAMA,	/* llama mistral qwen2 qwen3 gemma phi3 mixtral */
	FAM_BERT,
	FAM_ROBERTA,
	FAM_DISTILBERT,
};

enum cls_head {
	CLS_NONE,
	CLS_POOLER,	/* BERT: classifier(pooler_output) */
	CLS_ROBERTA,	/* out_proj(tanh(dense(h[:, 0]))) */
	CLS_DISTIL,	/* classifier(relu(pre_classifier(h[:, 0]))) */
	CLS_SCORE,	/* decoders: score(h[last token]) */
};

/* An nn.Linear: w (out, in) in the weight format the checkpoint stores
 * (read as stored), b (out) F32 or NULL. w.t[0] NULL: not bound. */
struct lin_tap;
struct lin {
	struct hf_wbuf w;
	struct hf_buf *b;
	size_t in, out;
	struct lin_tap *tap;	/* NULL but while a quantizer watches */
	struct lin_lora *lora;	/* NULL but with an unmerged adapter */
};

/* hf_model_set_tap() (tap.c): linear() calls fn with the input before
 * the product, which then reads l->w as fn may have replaced it. */
struct lin_tap {
	hf_lin_tap_fn fn;
	void *ctx;
	size_t l, i;		/* layer, index in hf_model_layer_linears() */
	struct hf_wbuf orig;	/* the weight as bound */
	struct hf_buf *own;	/* F32 replacement (hf_model_linear_replace) */
};

struct layer {
	struct hf_buf *ln1_w, *ln1_b, *ln2_w, *ln2_b;
	struct lin q, k, v, o;
	struct hf_buf *q_norm, *k_norm;	/* qwen3, per head_dim */
	struct lin gate, up, down;	/* gpt2/encoders: up = fc in, down */
	struct lin router;		/* mixtral */
	struct lin *eg, *eu, *ed;	/* experts: w1, w3, w2 */
	size_t window;			/* sliding window, 0: full */
};

struct hf_model {
	char *dir;
	struct hf_config *cfg;
	struct hf_qcfg qcfg;		/* config.json's quantization_config */
	const struct hf_qcfg *qc;	/* &qcfg, or NULL if it has none */
	struct hf_st_model *st;
	struct hf_backend *be;
	int own_be;
	enum family fam;
	int encoder;
	const char *pfx;		/* "model.", "transformer.", "" ... */

	size_t vocab, hidden, nl, hq, hkv, hd, inter, max_pos, ne, topk;
	float eps, attn_scale, emb_scale;
	int norm_add_one;		/* gemma */
	enum hf_act act;
	size_t window;			/* 0: full attention */
	int inv_layer_scale;		/* gpt2 scale_attn_by_inverse_layer_idx */

	/* rope */
	size_t rot_dim;
	float rope_scaling;		/* attention_scaling of cos/sin */
	float *inv_freq_host;		/* (rot_dim / 2) as built at load;
					 * longrope: then the long set */
	struct hf_buf *inv_freq;
	int rope_dynamic;		/* 1 dynamic NTK, 2 longrope */
	double rope_factor, rope_theta;
	size_t dyn_len;			/* seq_len inv_freq was made for */
	size_t rope_orig;		/* longrope: original context */
	int rope_long_on;		/* longrope: the long set is loaded */
	size_t seq_len;			/* hf_model_set_seq_len() */
	int warned_pos;			/* warned of a position past max_pos */

	/* embeddings */
	struct hf_buf *embed, *pos_embed, *type_embed, *emb_ln_w, *emb_ln_b;
	size_t n_pos_rows, n_types;
	int pos_offset;			/* roberta: padding_idx + 1 */
	struct layer *layers;
	struct hf_buf *norm_w, *norm_b;	/* final norm (decoders) */
	struct lin head;		/* lm_head / MLM decoder (w may be
					 * the embedding table) */
	/* MLM transform and pooler */
	struct lin mlm_dense;
	struct hf_buf *mlm_ln_w, *mlm_ln_b;
	struct lin pooler;
	enum cls_head cls;
	struct lin cls1, cls2;
	size_t nlabels;
	size_t weight_bytes;

	/* every buffer made, freed in reverse order (views first) */
	struct hf_buf **bufs;
	size_t nbufs, capbufs;

	struct hf_buf *wsb[40];
	size_t nws;
	/* decoder workspace for ws_n rows; ws_gen counts ws_free() calls,
	 * so a graph recorded on the buffers of one generation is known
	 * stale after */
	size_t ws_n, ws_b;
	unsigned ws_gen;
	int replay;			/* record and replay decode steps */
	int kv_type;			/* caches hf_kv_new() makes:
					 * enum hf_kv_type */
	struct hf_buf *x, *h, *q, *k, *v, *att, *tmp, *g, *u, *ids, *pos;
	struct hf_buf *cols;		/* (n) I32 cache column per token */
	struct hf_buf *lastidx, *hlast, *logits;
	struct hf_buf *router, *rw, *rexp, *xe, *ye, *ridx, *rwt;
	struct lin_tap *taps;		/* (nl, HF_MODEL_LAYER_LIN), or NULL */
	/* unmerged adapters (adapter.c): their low-rank products and the
	 * workspace rows (x A^T, then B) they go through */
	struct lin_lora **loras;
	size_t nloras, lora_r, lora_out;
	struct hf_buf *lora_xa, *lora_xb;
};

struct hf_kv {
	struct hf_model *m;
	size_t B, C, len;
	struct hf_buf **k, **v;		/* per layer (B, C, hkv * hd) */
	int kvt;			/* their type: enum hf_kv_type */
	struct hf_buf *mask;		/* (B, C) F32 */
	float *mask_host;
	int64_t *count;			/* valid tokens per row */
	/* the recorded decode step (T = 1) on this cache, valid while
	 * graph_ok and the workspace is of generation graph_ws */
	struct hf_graph graph;
	int graph_ok, graph_all;
	unsigned graph_ws;
	size_t nreplay;			/* steps replayed */
};

/* The tensor name under the model's prefix, else as given; NULL. */
const struct hf_tensor *find_tensor(struct hf_model *m, const char *name);
/* Remember b so hf_model_free() frees it; returns b. */
struct hf_buf *keep(struct hf_model *m, struct hf_buf *b);
/* Alloc a F32/I32 buffer of n elements, kept until hf_model_free(). */
int ws_alloc(struct hf_model *m, struct hf_buf **out, enum hf_dtype dt,
	     size_t n, struct hf_err *err);
/* Workspace of the forward passes: freed by ws_free() (and at the end). */
int ws_get(struct hf_model *m, struct hf_buf **out, enum hf_dtype dt,
	   size_t n, struct hf_err *err);
void ws_free(struct hf_model *m);

/* Weight binding (weights.c). name is printf-style. A tensor is looked up under the
 * model's prefix first, then as given. Shape: d0 rows and d1 cols (d1 0
 * for a vector). f32: converted into a new F32 buffer (norms, biases);
 * else wrapped in place. Absent and !required: *out = NULL, 0. */
int bind_tensor(struct hf_model *m, struct hf_buf **out, int required,
		int f32, int64_t d0, int64_t d1, struct hf_err *err, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
/* A Linear: the weight stored under <name> (out, in) in whichever weight
 * format the checkpoint has it (tensor/wfmt.h: each format's bind asked
 * in turn), refused if the backend has no product for that format; and,
 * when bias is 1 (required) or 2 (optional), <name>.bias. */
int bind_lin(struct hf_model *m, struct lin *l, size_t out, size_t in,
	     int bias, struct hf_err *err, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
/* Only the weight of a Linear under base (no bias). */
int bind_weight(struct hf_model *m, struct lin *l, size_t out, size_t in,
		struct hf_err *err, const char *base);
/* A Linear over a plain buffer w (out, in) (a tied embedding table, a
 * weight the loader made); l->b is left as it is. */
int lin_plain(struct hf_model *m, struct lin *l, struct hf_buf *w,
	      size_t out, size_t in, struct hf_err *err);
/* y (n, out) = x (n, in) . W^T + b: every family's projections. */
void linear(struct hf_buf *y, struct hf_buf *x, const struct lin *l,
	    size_t n);
/* 1 if a tensor of that name (with or without prefix) exists. */
int has_tensor(struct hf_model *m, const char *name);
/* A view of rows [r0, r0 + n) of a Linear (fused projections). */
int lin_rows(struct hf_model *m, struct lin *dst, const struct lin *src,
	     size_t r0, size_t n, struct hf_err *err);
int parse_act(const char *s, enum hf_act *act, const char *where,
	      struct hf_err *err);

/* Family loaders and passes. */
int llama_load(struct hf_model *m, struct hf_err *err);
int gpt2_load(struct hf_model *m, struct hf_err *err);
int encoder_load(struct hf_model *m, struct hf_err *err);
int rope_init(struct hf_model *m, struct hf_err *err);
/* Update inv_freq of dynamic NTK or longrope for a forward call whose
 * largest position is len - 1. */
int rope_update(struct hf_model *m, size_t len, struct hf_err *err);
int decoder_ws(struct hf_model *m, size_t n, size_t B, int all_logits,
	       struct hf_err *err);
/* Restore tapped weights and free the taps (hf_model_free). */
void taps_free(struct hf_model *m);
/* Adapters (adapter.c): y += the low-rank product of l's adapter;
 * its workspace for n rows (after ws_get's of a forward pass); free. */
void lora_linear(struct hf_buf *y, struct hf_buf *x, const struct lin *l,
		 size_t n);
int lora_ws(struct hf_model *m, size_t n, struct hf_err *err);
void lora_free(struct hf_model *m);

#endif
