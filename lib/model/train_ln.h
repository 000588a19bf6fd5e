/* lib/model/train_ln.h: the training forward and backward of the
 * LayerNorm models, GPT-2 (train_gpt2.c) and the BERT-style encoders
 * bert, roberta, distilbert through their masked-LM heads
 * (train_encoder.c, which also holds what both share: parameters,
 * linears, buffers, the head and the loss). train_llama.c's public
 * hf_train_* functions hand a model of these families to the
 * hf_train_ln_* ones here; their contract is train.h's, except that an
 * encoder's loss is the masked-LM one: position t is scored against
 * label t itself (no shift), and BERT's and RoBERTa's pooler (stored,
 * unused by the MLM head) is a parameter that starts frozen (g NULL).
 * Private to lib/model. */
#ifndef HF_MODEL_TRAIN_LN_H
#define HF_MODEL_TRAIN_LN_H

#include "model/internal.h"
#include "model/train.h"

#define LN_NONE ((size_t)-1)

struct ln_lin {
	struct hf_train_lin pub;
	char name[192];
	struct hf_train_adapter ad;
	int has_ad;
	int conv;		/* GPT-2 Conv1D: weight stored [in, out] */
	int quant;		/* the weight is qw (opts.quant_base), as
				 * (out, in) whatever conv says */
	struct hf_weight qw;
};

/* A layer's parameters (into t->p) and linears (into t->lins). */
struct ln_layer {
	size_t ln1w, ln1b, ln2w, ln2b;
	size_t q, k, v, qkv, o, up, down;	/* linears */
	float scale;				/* attention scale */
};

/* One layer's activations for N tokens. GPT-2 (pre-LN): h1 = ln_1(x),
 * r1 = x + attn, x1 = ln_2(r1), out = r1 + mlp(x1). Encoders (post-LN):
 * r1 = x + attn(x), x1 = LN1(r1), r2 = x1 + ffn(x1), out = LN2(r2). */
struct ln_act {
	float *h1, *mean1, *rstd1;
	float *q, *k, *v, *att, *lse;
	float *r1, *x1, *mean2, *rstd2;
	float *u, *a, *r2;
};

struct hf_train_ln {
	struct hf_model *m;
	struct hf_train_opts o;
	struct hf_param *p;
	size_t np, capp;
	struct ln_lin *lins;
	size_t nlin, caplin;
	struct ln_layer *L;
	struct hf_pool *pool;
	int gpt2;
	size_t H, V, I, hq, hd, nl, npos;
	float eps;
	enum hf_act act, mlm_act;
	/* embeddings: word, position, token type (NONE: none), the
	 * encoders' embedding LayerNorm */
	size_t embed, pos, type, elnw, elnb;
	/* GPT-2: ln_f; encoders: the MLM transform (dense, act, LN) */
	size_t fnw, fnb, dense;
	size_t head;			/* the linear of the logits */

	size_t capN, capB;
	void *arena;
	float *xs;			/* (nl + 1, N, H) layer inputs */
	struct ln_act *acts;
	size_t nacts;
	float *e0, *emean, *erstd;	/* encoders: the embedding sum */
	float *mu, *ma, *hfin, *fmean, *frstd;	/* head input */
	float *logits, *lse;
	size_t chunk;
	float *tmp, *fz, *xscr;
	float *dX, *dh, *dr, *dq, *dk, *dv, *datt, *du, *da, *dfz, *dlog;
	int32_t *posid, *typeid, *tgt, *mask;
	float *qscr;			/* a quantized weight's backward tiles */
	size_t nqscr;
};

/* train_encoder.c: the shared pieces */
int ln_add_param(struct hf_train_ln *t, size_t *idx, int required,
		 struct hf_err *err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int ln_want_shape(struct hf_train_ln *t, size_t i, size_t d0, size_t d1,
		  struct hf_err *err);
int ln_add_lin(struct hf_train_ln *t, size_t *idx, size_t layer, size_t out,
	       size_t in, int conv, int bias, struct hf_err *err,
	       const char *fmt, ...)
	__attribute__((format(printf, 9, 10)));
int ln_lin_fwd(struct hf_train_ln *t, size_t li, float *y, const float *x,
	       size_t n, int recompute, struct hf_err *err);
int ln_lin_bwd(struct hf_train_ln *t, size_t li, float *dx, const float *dy,
	       const float *x, size_t n, struct hf_err *err);
float *ln_w(struct hf_train_ln *t, size_t i);
float *ln_g(struct hf_train_ln *t, size_t i);

/* train_quant.c: a quantized base (train.h). The quantization of m in
 * words for messages ("bitsandbytes nf4, double-quant"); the refusal of
 * a quantized m unless o->quant_base (0 when allowed); the weight of
 * module mod (out, in) bound as the checkpoint stores it, its tensors
 * borrowed from m's mapping, and into stored (cap bytes) the module's
 * name as stored ("model." + mod, the checkpoint's prefix). */
const char *train_quant_name(const struct hf_model *m, char *buf,
			     size_t cap);
int train_quant_check(struct hf_model *m, const struct hf_train_opts *o,
		      struct hf_err *err);
int train_quant_bind(struct hf_model *m, struct hf_weight *w, char *stored,
		     size_t cap, const char *mod, size_t out, size_t in,
		     struct hf_err *err);

/* train_gpt2.c */
int ln_gpt2_load(struct hf_train_ln *t, struct hf_err *err);
int ln_gpt2_layer_fwd(struct hf_train_ln *t, size_t l, struct ln_act *A,
		      const float *xin, float *xout, size_t B, size_t T,
		      int recompute, struct hf_err *err);
int ln_gpt2_layer_bwd(struct hf_train_ln *t, size_t l, const struct ln_act *A,
		      const float *xin, size_t B, size_t T,
		      struct hf_err *err);

/* the hf_train_* of train.h for these families */
int hf_train_ln_new(struct hf_train_ln **out, struct hf_model *m,
		    const struct hf_train_opts *opts, struct hf_err *err);
void hf_train_ln_free(struct hf_train_ln *t);
size_t hf_train_ln_nparams(const struct hf_train_ln *t);
struct hf_param *hf_train_ln_param(struct hf_train_ln *t, size_t i);
struct hf_param *hf_train_ln_find(struct hf_train_ln *t, const char *name);
int hf_train_ln_set_trainable(struct hf_train_ln *t, size_t i, int on,
			      struct hf_err *err);
void hf_train_ln_zero_grad(struct hf_train_ln *t);
double hf_train_ln_grad_norm(const struct hf_train_ln *t);
size_t hf_train_ln_nlinears(const struct hf_train_ln *t);
const struct hf_train_lin *hf_train_ln_linear(const struct hf_train_ln *t,
					      size_t i);
int hf_train_ln_set_adapter(struct hf_train_ln *t, size_t i,
			    const struct hf_train_adapter *ad,
			    struct hf_err *err);
int hf_train_ln_step(struct hf_train_ln *t, const int32_t *ids,
		     const int32_t *labels, const int32_t *mask, size_t B,
		     size_t T, double denom, double *loss, size_t *count,
		     struct hf_err *err);
int hf_train_ln_eval(struct hf_train_ln *t, const int32_t *ids,
		     const int32_t *labels, const int32_t *mask, size_t B,
		     size_t T, double *loss, size_t *count, struct hf_err *err);

#endif
