/* lib/export/gguf_export.c: a model directory -> one GGUF file, as
 * llama.cpp's convert_hf_to_gguf.py writes it at f32/f16/bf16 and as
 * llama-quantize then writes the quantized types from that f32 file
 * (src/llama-quant.cpp: tensor_allows_quantization,
 * llama_tensor_get_type_impl, tensor_type_fallback), with ggml's
 * reference quantizers (ggml_types.h). One tensor is held in float32 at
 * a time, while the writer streams it out. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "export/export.h"
#include "export/families.h"
#include "export/ggml_types.h"
#include "export/gguf.h"
#include "export/qlin.h"
#include "model/config.h"
#include "quant/qconfig.h"
#include "st/st.h"
#include "tensor/dtype.h"

/* llama_ftype values, and the ggml type each file type starts from. */
static const struct ftype {
	const char *name;
	unsigned ftype;
	int base;		/* ggml type of the quantizable weights */
	int quantized;		/* llama-quantize's rules apply */
} ftypes[] = {
	{ "f32", 0, HF_GGML_F32, 0 },
	{ "f16", 1, HF_GGML_F16, 0 },
	{ "bf16", 32, HF_GGML_BF16, 0 },
	{ "q8_0", 7, HF_GGML_Q8_0, 1 },
	{ "q4_0", 2, HF_GGML_Q4_0, 1 },
	{ "q4_1", 3, HF_GGML_Q4_1, 1 },
	{ "q5_0", 8, HF_GGML_Q5_0, 1 },
	{ "q5_1", 9, HF_GGML_Q5_1, 1 },
	{ "q4_K", 15, HF_GGML_Q4_K, 1 },	/* LLAMA_FTYPE_MOSTLY_Q4_K_M */
	{ "q5_K", 17, HF_GGML_Q5_K, 1 },	/* LLAMA_FTYPE_MOSTLY_Q5_K_M */
	{ "q6_K", 18, HF_GGML_Q6_K, 1 },
	{ "tq1_0", 36, HF_GGML_TQ1_0, 1 },
	{ "tq2_0", 37, HF_GGML_TQ2_0, 1 },
};
#define NFTYPES (sizeof(ftypes) / sizeof(ftypes[0]))
enum { FT_Q4_K_M = 15, FT_Q5_K_M = 17, FT_TQ1_0 = 36, FT_TQ2_0 = 37 };

static const struct ftype *find_ftype(const char *name)
{
	for (size_t i = 0; name && i < NFTYPES; i++)
		if (!strcmp(ftypes[i].name, name))
			return &ftypes[i];
	return NULL;
}

const char *hf_gguf_export_types(void)
{
	static char buf[160];

	if (!buf[0])
		for (size_t i = 0; i < NFTYPES; i++) {
			size_t n = strlen(buf);

			snprintf(buf + n, sizeof(buf) - n, "%s%s",
				 i ? ", " : "", ftypes[i].name);
		}
	return buf;
}

int hf_gguf_export_type_ok(const char *name)
{
	return find_ftype(name) ? 0 : -1;
}

/* ---- the plan: one entry per GGUF tensor ---- */

#define MAX_SRC 256		/* experts stacked into one tensor */

struct item {
	char name[64];
	const struct hf_fam_tensor *rule;	/* NULL: rope_freqs */
	int layer;
	int n_dims;
	int64_t ne[4];
	int type;
	const struct hf_tensor *src[MAX_SRC];	/* experts in order */
	int nsrc;
	float *extra;		/* rope_freqs' values (owned) */
	struct job *job;
};

struct job {
	const char *dir;
	json_t *cfg;		/* config.json */
	struct hf_config *c;
	const struct hf_family *fam;
	const struct ftype *ft;
	struct hf_st_model *st;
	struct item *it;
	size_t n, cap;
	int64_t n_expert;
	int tied;		/* no output tensor */
	/* a quantized checkpoint: its config, and its linears as the
	 * float32 tensors of its dequantized copy (qlin.h), owned */
	int quant, gpt2;
	struct hf_qcfg qc;
	struct hf_qlin **ql;
	size_t nql;
	const struct hf_gguf_export_opts *o;
	uint64_t done, total;
	struct hf_err *err;	/* for the fill callbacks */
};

static struct item *new_item(struct job *j, struct hf_err *err)
{
	if (j->n == j->cap) {
		size_t cap = j->cap ? 2 * j->cap : 64;
		struct item *n = realloc(j->it, cap * sizeof(*n));

		if (!n) {
			hf_err_set(err, HF_ENOMEM, "out of memory");
			return NULL;
		}
		j->it = n;
		j->cap = cap;
	}
	memset(&j->it[j->n], 0, sizeof(j->it[0]));
	return &j->it[j->n++];
}

static int is_float(enum hf_dtype d)
{
	return d == HF_DTYPE_F32 || d == HF_DTYPE_F16 || d == HF_DTYPE_BF16;
}

/* LlamaModel.generate_extra_tensors: llama3 rope_scaling as per-frequency
 * factors, in float32 as torch computes them. */
static int rope_freqs(struct job *j, struct hf_err *err)
{
	const struct hf_rope_scaling *rs = &j->c->rope_scaling;
	const json_t *rj = rs->json;
	int64_t dim = j->c->head_dim;
	double base = j->c->rope_theta, factor, lo, hi, old;
	struct item *it;

	if (!(j->fam->flags & HF_FAM_ROPE_FREQS) || !rs->type ||
	    strcasecmp(rs->type, "llama3"))
		return 0;
#define GETF(k, d) (json_is_number(json_object_get(rj, k)) ?		\
		    json_number_value(json_object_get(rj, k)) : (d))
	factor = GETF("factor", 8.0);
	lo = GETF("low_freq_factor", 1.0);
	hi = GETF("high_freq_factor", 4.0);
	old = GETF("original_max_position_embeddings", 8192);
#undef GETF
	if (dim <= 0 || dim % 2)
		return hf_err_set(err, HF_EFORMAT, "%s/config.json: head_dim "
				  "%lld cannot carry llama3 rope factors",
				  j->dir, (long long)dim);
	if (!(it = new_item(j, err)))
		return err->code;
	snprintf(it->name, sizeof(it->name), "rope_freqs.weight");
	it->layer = -1;
	it->n_dims = 1;
	it->ne[0] = dim / 2;
	it->type = HF_GGML_F32;
	if (!(it->extra = malloc((size_t)(dim / 2) * sizeof(float))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (int64_t i = 0; i < dim / 2; i++) {
		/* torch: base ** (arange(0, dim, 2, float32) / dim), f32 */
		float e = (float)(2 * i) / (float)dim;
		float freq = 1.0f / powf((float)base, e);
		double wavelen = 2 * M_PI / freq;
		double lw = old / lo, hw = old / hi, f;

		if (wavelen < hw) {
			f = 1;
		} else if (wavelen > lw) {
			f = factor;
		} else {
			double smooth = (old / wavelen - lo) / (hi - lo);

			f = 1 / ((1 - smooth) / factor + smooth);
		}
		it->extra[i] = (float)f;
	}
	return 0;
}

/* The GGUF shape of an HF tensor under rule r: dims reversed, Conv1D
 * transposed back first, RoBERTa's unused position rows dropped. */
static int shape_of(struct job *j, const struct hf_fam_tensor *r,
		    const struct hf_tensor *t, const char *suffix,
		    int64_t *ne, int *n_dims, struct hf_err *err)
{
	int64_t sh[HF_TENSOR_MAX_DIMS];
	int nd = t->ndim;

	if (nd < 1 || nd > 3)
		return hf_err_set(err, HF_EUNSUPPORTED, "tensor '%s' has %d "
				  "dimensions; GGUF weights here have 1 to 3",
				  t->name, nd);
	memcpy(sh, t->shape, sizeof(sh));
	if ((r->flags & HF_FAM_TRANSPOSE) && nd == 2 &&
	    !strcmp(suffix, ".weight")) {
		int64_t x = sh[0];

		sh[0] = sh[1];
		sh[1] = x;
	}
	if ((r->flags & HF_FAM_POS_OFFSET) && nd == 2) {
		int64_t off = j->c->pad_token_id >= 0 ?
			      j->c->pad_token_id + 1 : 0;

		if (off >= sh[0])
			return hf_err_set(err, HF_EFORMAT, "tensor '%s': %lld "
					  "rows, fewer than pad_token_id + 1",
					  t->name, (long long)sh[0]);
		sh[0] -= off;
	}
	for (int i = 0; i < nd; i++)
		ne[i] = sh[nd - 1 - i];
	*n_dims = nd;
	return 0;
}

static int ends(const char *s, const char *suffix);

static const struct hf_tensor *get_cb(void *ctx, const char *name)
{
	return hf_st_model_get(ctx, name);
}

/* For a quantized checkpoint: *t, one of its tensors, as the plan sees
 * it: the float32 weight of the dequantized copy for a quantized
 * linear's main tensor, NULL for the linear's other tensors, else *t. */
static int quantized_src(struct job *j, const struct hf_tensor **t,
			 struct hf_err *err)
{
	enum hf_qlin_role role = hf_qlin_role(*t, get_cb, j->st);
	struct hf_qlin *l, **n;
	char name[400];
	size_t len = strlen((*t)->name);
	int rc;

	if (role == HF_QLIN_AUX)
		*t = NULL;
	if (role != HF_QLIN_MAIN)
		return 0;
	if (ends((*t)->name, ".qweight"))
		len -= 8;
	else
		len -= 7;
	snprintf(name, sizeof(name), "%.*s.weight", (int)len, (*t)->name);
	if (!(n = realloc(j->ql, (j->nql + 1) * sizeof(*n))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	j->ql = n;
	if (!(l = malloc(sizeof(*l))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = hf_qlin_find(l, get_cb, j->st, &j->qc, j->gpt2, name,
			       err))) {
		free(l);
		if (rc == HF_ENOTFOUND)
			rc = hf_err_set(err, HF_EINTERNAL, "tensor '%s': no "
					"quantized linear", (*t)->name);
		return hf_err_prefix(err, "%s", j->dir);
	}
	j->ql[j->nql++] = l;
	*t = &l->t;
	return 0;
}

/* The quantized linear t stands for, or NULL: t is a checkpoint's own. */
static const struct hf_qlin *qlin_of(const struct job *j,
				     const struct hf_tensor *t)
{
	for (size_t i = 0; i < j->nql; i++)
		if (&j->ql[i]->t == t)
			return j->ql[i];
	return NULL;
}

/* Whether it holds a BitNet checkpoint's ternary linears. */
static int bitnet_item(const struct job *j, const struct item *it)
{
	return j->quant && j->qc.method == HF_QM_BITNET && it->rule &&
	       it->nsrc > 0 && qlin_of(j, it->src[0]);
}

/* Phi3MiniModel.generate_extra_tensors: LongRoPE's factors as the
 * rope_factors_long / rope_factors_short tensors (families.c). */
static int rope_factors(struct job *j, struct hf_err *err)
{
	float *v[2];
	int64_t n;
	int rc;

	if ((rc = hf_family_rope_factors(j->fam, j->c, j->dir, &v[0], &v[1],
					 &n, err)) || !n)
		return rc;
	for (int k = 0; k < 2; k++) {
		struct item *it = new_item(j, err);

		if (!it) {
			free(v[k]);
			if (!k)
				free(v[1]);
			return err->code;
		}
		snprintf(it->name, sizeof(it->name), "%s",
			 k ? "rope_factors_short.weight" :
			 "rope_factors_long.weight");
		it->layer = -1;
		it->n_dims = 1;
		it->ne[0] = n;
		it->type = HF_GGML_F32;
		it->extra = v[k];
	}
	return 0;
}

static int plan(struct job *j, struct hf_err *err)
{
	size_t n = hf_st_model_count(j->st);
	int have_output = 0;
	int rc;

	if ((rc = rope_freqs(j, err)) || (rc = rope_factors(j, err)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		const struct hf_tensor *t = hf_st_model_tensor(j->st, i);
		struct hf_fam_match m;
		struct item *it = NULL;
		int k;

		/* a quantized linear's main tensor stands for its float
		 * weight; its scales and zeros have no GGUF tensor */
		if (j->quant && (rc = quantized_src(j, &t, err)))
			return rc;
		if (!t)
			continue;
		k = hf_family_map_hf(j->fam, t->name, &m);
		if (k == HF_FAM_SKIPPED)
			continue;
		if (k == HF_FAM_UNKNOWN)
			return hf_err_set(err, HF_EUNSUPPORTED, "%s: tensor "
					  "'%s' has no GGUF name in the %s "
					  "table", j->dir, t->name,
					  j->fam->model_type);
		if ((j->fam->flags & HF_FAM_NO_HEAD) &&
		    !strcmp(m.gguf, "output.weight"))
			continue;
		if (!is_float(t->dtype))
			return hf_err_set(err, HF_EUNSUPPORTED, "%s: tensor "
					  "'%s' is %s; GGUF export reads "
					  "float32, float16 and bfloat16 "
					  "weights", j->dir, t->name,
					  hf_dtype_name(t->dtype));
		if (!strcmp(m.gguf, "output.weight"))
			have_output = 1;
		if (m.rule->flags & HF_FAM_EXPERTS) {
			if (m.expert >= MAX_SRC || m.expert >= j->n_expert)
				return hf_err_set(err, HF_EFORMAT, "%s: tensor "
						  "'%s': expert %d of %lld",
						  j->dir, t->name, m.expert,
						  (long long)j->n_expert);
			for (size_t q = 0; q < j->n; q++)
				if (!strcmp(j->it[q].name, m.gguf))
					it = &j->it[q];
		}
		if (!it) {
			if (!(it = new_item(j, err)))
				return err->code;
			snprintf(it->name, sizeof(it->name), "%s", m.gguf);
			it->rule = m.rule;
			it->layer = m.layer;
			if ((rc = shape_of(j, m.rule, t, m.suffix, it->ne,
					   &it->n_dims, err)))
				return rc;
			if (m.rule->flags & HF_FAM_EXPERTS) {
				if (it->n_dims != 2)
					return hf_err_set(err, HF_EFORMAT,
						"%s: expert tensor '%s' is not "
						"2-D", j->dir, t->name);
				it->ne[2] = j->n_expert;
				it->n_dims = 3;
				it->nsrc = (int)j->n_expert;
			} else {
				it->nsrc = 1;
			}
		}
		if (m.rule->flags & HF_FAM_EXPERTS) {
			if (it->src[m.expert])
				return hf_err_set(err, HF_EFORMAT, "%s: expert "
						  "tensor '%s' twice", j->dir,
						  t->name);
			if (t->ndim != 2 || t->shape[1] != it->ne[0] ||
			    t->shape[0] != it->ne[1])
				return hf_err_set(err, HF_EFORMAT, "%s: expert "
						  "tensor '%s' differs in shape "
						  "from expert 0's", j->dir,
						  t->name);
			it->src[m.expert] = t;
		} else {
			it->src[0] = t;
		}
		j->total += t->nbytes;
	}
	for (size_t q = 0; q < j->n; q++)
		for (int e = 0; j->it[q].rule && e < j->it[q].nsrc; e++)
			if (!j->it[q].src[e])
				return hf_err_set(err, HF_EFORMAT, "%s: '%s' "
						  "lacks expert %d", j->dir,
						  j->it[q].name, e);
	j->tied = !have_output;
	return 0;
}

/* ---- tensor types ---- */

static int ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* The converter's type at f32/f16/bf16 (ModelBase.prepare_tensors). */
static int converter_type(const struct item *it, int base)
{
	if (it->n_dims <= 1 || ends(it->name, "_norm.weight"))
		return HF_GGML_F32;
	if (strstr(it->name, "ffn_gate_inp.") ||
	    !strcmp(it->name, "position_embd.weight") ||
	    !strcmp(it->name, "token_types.weight") ||
	    !ends(it->name, ".weight"))
		return HF_GGML_F32;
	return base;
}

/* llama-quant.cpp tensor_allows_quantization (the parts that can name a
 * tensor these families have). */
static int allows_quantization(const struct item *it)
{
	const char *n = it->name;

	return it->n_dims >= 2 && ends(n, "weight") &&
	       !strstr(n, "_norm.weight") && !strstr(n, "ffn_gate_inp.weight") &&
	       strcmp(n, "position_embd.weight") &&
	       strcmp(n, "token_types.weight");
}

enum cat { C_OTHER, C_OUTPUT, C_TOKEN_EMBD, C_QKV, C_KV_B, C_V, C_K, C_Q,
	   C_ATTN_OUT, C_FFN_UP, C_FFN_GATE, C_FFN_DOWN };

/* tensor_get_category. */
static enum cat category(const char *n)
{
	if (!strcmp(n, "output.weight"))
		return C_OUTPUT;
	if (!strcmp(n, "token_embd.weight") ||
	    !strcmp(n, "per_layer_token_embd.weight"))
		return C_TOKEN_EMBD;
	if (strstr(n, "attn_qkv.weight"))
		return C_QKV;
	if (strstr(n, "attn_kv_b.weight"))
		return C_KV_B;
	if (strstr(n, "attn_v.weight"))
		return C_V;
	if (strstr(n, "attn_k.weight"))
		return C_K;
	if (strstr(n, "attn_q.weight"))
		return C_Q;
	if (strstr(n, "attn_output.weight"))
		return C_ATTN_OUT;
	if (strstr(n, "ffn_up"))
		return C_FFN_UP;
	if (strstr(n, "ffn_gate"))
		return C_FFN_GATE;
	if (strstr(n, "ffn_down"))
		return C_FFN_DOWN;
	return C_OTHER;
}

static int use_more_bits(int i, int n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int64_t blck(int type)
{
	return hf_ggml_traits(type)->blck;
}

/* tensor_type_fallback. */
static int fallback(const struct item *it, int target)
{
	int64_t ncols = it->ne[0];
	int r = target;

	if (ncols % blck(target) == 0)
		return target;
	switch (target) {
	case HF_GGML_Q2_K:
	case HF_GGML_Q3_K:
	case HF_GGML_TQ1_0:
	case HF_GGML_TQ2_0:
		r = HF_GGML_Q4_0;
		break;
	case HF_GGML_Q4_K:
		r = HF_GGML_Q5_0;
		break;
	case HF_GGML_Q5_K:
		r = HF_GGML_Q5_1;
		break;
	case HF_GGML_Q6_K:
		r = HF_GGML_Q8_0;
		break;
	default:
		break;
	}
	if (ncols % blck(r))
		r = HF_GGML_F16;
	return r;
}

/* Counters llama-quantize keeps while it walks the tensors. */
struct qstate {
	int n_attention_wv, i_attention_wv, i_ffn_down, n_layer;
	int64_t n_expert;
	int tied, is_70b;
};

/* llama_tensor_get_type_impl for the file types hf writes. */
static int quant_type(struct qstate *qs, const struct item *it,
		      const struct ftype *ft)
{
	enum cat c = category(it->name);
	int t = ft->base;
	unsigned f = ft->ftype;

	if (c == C_OUTPUT || (qs->tied && c == C_TOKEN_EMBD)) {
		if (it->ne[0] % blck(t))
			t = HF_GGML_Q8_0;
		else if (t != HF_GGML_Q8_0)
			t = HF_GGML_Q6_K;
	} else if (c == C_TOKEN_EMBD) {
		if (f == FT_TQ1_0 || f == FT_TQ2_0)
			t = HF_GGML_Q4_K;
	} else if (c == C_V || c == C_QKV || c == C_KV_B) {
		if ((f == FT_Q4_K_M || f == FT_Q5_K_M) &&
		    use_more_bits(qs->i_attention_wv, qs->n_attention_wv))
			t = HF_GGML_Q6_K;
		if (qs->is_70b && (t == HF_GGML_Q3_K || t == HF_GGML_Q4_K))
			t = HF_GGML_Q5_K;
		if (qs->n_expert == 8)
			t = HF_GGML_Q8_0;
		qs->i_attention_wv++;
	} else if (c == C_K) {
		if (qs->n_expert == 8)
			t = HF_GGML_Q8_0;
	} else if (c == C_FFN_DOWN) {
		int i_layer = qs->n_expert > 1 && it->layer >= 0 ? it->layer :
			      qs->i_ffn_down;

		if ((f == FT_Q4_K_M || f == FT_Q5_K_M) &&
		    use_more_bits(i_layer, qs->n_layer))
			t = HF_GGML_Q6_K;
		qs->i_ffn_down++;
	} else if (c == C_ATTN_OUT) {
		if (qs->n_expert == 8 && f == FT_Q4_K_M)
			t = HF_GGML_Q5_K;
	}
	return fallback(it, t);
}

/* llama-quantize walks tensors by layer, then name (weight_name_comparer
 * of llama_model_loader's weights_map): its counters follow that order. */
static int by_layer_name(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a;
	const struct item *y = *(const struct item *const *)b;
	int lx = -1, ly = -1;

	sscanf(x->name, "blk.%d.", &lx);
	sscanf(y->name, "blk.%d.", &ly);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int assign_types(struct job *j, struct hf_err *err)
{
	struct qstate qs = { 0 };
	struct item **order;

	for (size_t i = 0; i < j->n; i++)
		j->it[i].type = j->ft->quantized ? HF_GGML_F32 :
				converter_type(&j->it[i], j->ft->base);
	if (!j->ft->quantized)
		return 0;
	if (!(order = malloc(j->n * sizeof(*order) + 1)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < j->n; i++) {
		enum cat c = category(j->it[i].name);

		order[i] = &j->it[i];
		if (c == C_V || c == C_QKV || c == C_KV_B)
			qs.n_attention_wv++;
	}
	qsort(order, j->n, sizeof(*order), by_layer_name);
	qs.n_layer = (int)j->c->num_hidden_layers;
	qs.n_expert = j->n_expert;
	qs.tied = j->tied;
	qs.is_70b = !strcmp(j->fam->arch, "llama") && qs.n_layer == 80;
	for (size_t i = 0; i < j->n; i++) {
		struct item *it = order[i];

		if (allows_quantization(it))
			it->type = quant_type(&qs, it, j->ft);
	}
	free(order);
	return 0;
}

/* The combinations of a quantized checkpoint and a file type that hf
 * refuses (man/hf-export.1): the ternary types take a BitNet checkpoint
 * only (any other would be requantized to 1.58 bits), and from one its
 * linears must all get that ternary type, so that their values carry
 * over; a row llama-quantize's rules give another type (Q4_0 where a row
 * is not whole 256-element blocks) would change them. */
static int check_quantized(struct job *j, struct hf_err *err)
{
	char buf[128];
	int tq = j->ft->base == HF_GGML_TQ1_0 || j->ft->base == HF_GGML_TQ2_0;

	if (!j->quant || !tq)
		return 0;
	if (j->qc.method != HF_QM_BITNET)
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: a %s checkpoint "
				  "cannot be exported as %s: the ternary types "
				  "hold BitNet b1.58 weights only", j->dir,
				  hf_qcfg_describe(&j->qc, buf, sizeof(buf)),
				  j->ft->name);
	for (size_t i = 0; i < j->n; i++) {
		const struct item *it = &j->it[i];

		if (bitnet_item(j, it) && it->type != j->ft->base)
			return hf_err_set(err, HF_EUNSUPPORTED, "%s: a bitnet "
				"checkpoint as %s: '%s' (rows of %lld values) would "
				"be %s, not %s, and lose its ternary values; "
				"export its hf-quantize --dequantize copy to "
				"accept that", j->dir, j->ft->name,
				it->src[0]->name, (long long)it->ne[0],
				hf_ggml_traits(it->type)->name, j->ft->name);
	}
	return 0;
}

/* ---- tensor data ---- */

/* Rows of one head: new row 2i <- old row i, 2i + 1 <- old i + hd / 2
 * (LlamaModel.permute: reshape (n_head, 2, hd/2, ...), swap 1 and 2). */
static int permute(float *x, int64_t rows, int64_t cols, int64_t n_head,
		   const char *name, struct hf_err *err)
{
	int64_t hd;
	float *tmp;

	if (n_head <= 0 || rows % n_head || (rows / n_head) % 2)
		return hf_err_set(err, HF_EFORMAT, "tensor '%s': %lld rows do "
				  "not split into %lld heads of an even size",
				  name, (long long)rows, (long long)n_head);
	hd = rows / n_head;
	if (!(tmp = malloc((size_t)(hd * cols) * sizeof(float))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (int64_t h = 0; h < n_head; h++) {
		float *b = x + h * hd * cols;

		memcpy(tmp, b, (size_t)(hd * cols) * sizeof(float));
		for (int64_t i = 0; i < hd / 2; i++) {
			memcpy(b + (2 * i) * cols, tmp + i * cols,
			       (size_t)cols * sizeof(float));
			memcpy(b + (2 * i + 1) * cols, tmp + (i + hd / 2) * cols,
			       (size_t)cols * sizeof(float));
		}
	}
	free(tmp);
	return 0;
}

/* The float32 values of one source tensor in GGUF order, into x. */
static int read_src(struct job *j, const struct item *it,
		    const struct hf_tensor *t, float *x, struct hf_err *err)
{
	const struct hf_fam_tensor *r = it->rule;
	const struct hf_qlin *l = qlin_of(j, t);
	uint64_t n = hf_tensor_numel(t);
	int weight = ends(t->name, ".weight");
	int rc;

	if (l) {
		if ((rc = hf_qlin_read(l, x, err)))
			return rc;
	} else if (hf_to_f32_n(x, t->data, t->dtype, (size_t)n)) {
		return hf_err_set(err, HF_EUNSUPPORTED, "tensor '%s': cannot "
				  "read %s", t->name, hf_dtype_name(t->dtype));
	}
	if (r->flags & HF_FAM_PLUS_ONE) {
		/* data_torch + 1 in the tensor's dtype after the
		 * converter's upcast: float16 stays float16 */
		for (uint64_t i = 0; i < n; i++)
			x[i] = t->dtype == HF_DTYPE_F16 ?
			       hf_f16_to_f32(hf_ggml_fp32_to_fp16(x[i] + 1.0f)) :
			       x[i] + 1.0f;
	}
	if ((r->flags & HF_FAM_TRANSPOSE) && weight && t->ndim == 2) {
		int64_t a = t->shape[0], b = t->shape[1];
		float *y = malloc((size_t)n * sizeof(float) + 1);

		if (!y)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		for (int64_t p = 0; p < a; p++)
			for (int64_t q = 0; q < b; q++)
				y[q * a + p] = x[p * b + q];
		memcpy(x, y, (size_t)n * sizeof(float));
		free(y);
	}
	if ((r->flags & HF_FAM_POS_OFFSET) && t->ndim == 2) {
		int64_t off = j->c->pad_token_id + 1;
		int64_t cols = t->shape[1];

		memmove(x, x + off * cols,
			(size_t)((t->shape[0] - off) * cols) * sizeof(float));
	}
	if (r->flags & (HF_FAM_PERMUTE_Q | HF_FAM_PERMUTE_K)) {
		int64_t heads = r->flags & HF_FAM_PERMUTE_Q ?
				j->c->num_attention_heads :
				j->c->num_key_value_heads;
		int64_t rows = t->shape[0];
		int64_t cols = t->ndim == 2 ? t->shape[1] : 1;

		if ((rc = permute(x, rows, cols, heads, t->name, err)))
			return rc;
	}
	return 0;
}

/* A BitNet linear in a ternary type must come out as it went in: each
 * element the sign of the checkpoint's (or 0) times the block's scale,
 * the checkpoint's one scale rounded to the f16 the block stores. y:
 * room for k floats. */
static int check_ternary(const struct hf_ggml_traits *tr, const float *x,
			 const void *q, float *y, int64_t k, uint64_t off,
			 const char *name, struct hf_err *err)
{
	tr->dequantize(q, y, k);
	for (int64_t b = 0; b < k; b += tr->blck) {
		float amax = 0, d;

		for (int64_t i = b; i < b + tr->blck; i++)
			amax = fmaxf(amax, fabsf(x[i]));
		d = hf_ggml_fp16_to_fp32(hf_ggml_fp32_to_fp16(amax));
		if (amax > 0 && !(isfinite(d) && d > 0))
			return hf_err_set(err, HF_ERANGE, "tensor '%s': BitNet "
					  "scale %g has no f16 form for %s",
					  name, amax, tr->name);
		for (int64_t i = b; i < b + tr->blck; i++) {
			float want = x[i] > 0 ? d : x[i] < 0 ? -d : 0.0f;

			if (y[i] != want || (x[i] != 0 && fabsf(x[i]) != amax))
				return hf_err_set(err, HF_EINTERNAL, "tensor "
					"'%s': element %llu is %g in the "
					"checkpoint, %g in %s: not ternary "
					"values of one scale", name,
					(unsigned long long)(off + (uint64_t)i),
					x[i], y[i], tr->name);
		}
	}
	return 0;
}

/* Convert n floats to type and hand them to the sink, a slice at a time;
 * ternary: hold the blocks to check_ternary. */
static int emit(struct job *j, struct hf_gguf_sink *s, const float *x,
		uint64_t n, int64_t row, int type, const char *name,
		int ternary, struct hf_err *err)
{
	const struct hf_ggml_traits *tr = hf_ggml_traits(type);
	int64_t rows_per = row > 0 ? (1 << 16) / row + 1 : 1;
	uint64_t step = (uint64_t)(rows_per * row);
	size_t cap = hf_ggml_row_size(type, row) * (size_t)rows_per;
	unsigned char *buf;
	float *y = NULL;
	int rc = 0;

	if (type == HF_GGML_F32)
		return hf_gguf_sink_write(s, x, (size_t)n * sizeof(float), err);
	if (!tr || !tr->quantize || !cap)
		return hf_err_set(err, HF_EUNSUPPORTED, "tensor '%s': hf cannot "
				  "write ggml type %d", name, type);
	if (!(buf = malloc(cap)) ||
	    (ternary && !(y = malloc((size_t)step * sizeof(float))))) {
		free(buf);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (uint64_t off = 0; off < n && !rc; off += step) {
		uint64_t k = n - off < step ? n - off : step;

		if (j->o && j->o->stop && j->o->stop(j->o->ctx)) {
			rc = hf_err_set(err, HF_EINVAL, "interrupted");
			break;
		}
		tr->quantize(x + off, buf, (int64_t)k);
		if (ternary && (rc = check_ternary(tr, x + off, buf, y,
						   (int64_t)k, off, name, err)))
			break;
		rc = hf_gguf_sink_write(s, buf, hf_ggml_row_size(type, row) *
					(size_t)(k / (uint64_t)row), err);
	}
	free(buf);
	free(y);
	return rc;
}

static int fill_item(void *ctx, struct hf_gguf_sink *s, struct hf_err *err)
{
	struct item *it = ctx;
	struct job *j = it->job;
	uint64_t n = 1, per, cap;
	float *x;
	int rc = 0;

	if (j->o && j->o->stop && j->o->stop(j->o->ctx))
		return hf_err_set(err, HF_EINVAL, "interrupted");
	for (int i = 0; i < it->n_dims; i++)
		n *= (uint64_t)it->ne[i];
	if (it->extra)
		return emit(j, s, it->extra, n, it->ne[0], it->type, it->name,
			    0, err);
	per = n / (uint64_t)it->nsrc;
	/* a source may hold more than its GGUF part (RoBERTa's rows) */
	cap = n;
	if (it->nsrc == 1 && hf_tensor_numel(it->src[0]) > cap)
		cap = hf_tensor_numel(it->src[0]);
	if (!(x = malloc((size_t)cap * sizeof(float) + 1)))
		return hf_err_set(err, HF_ENOMEM, "out of memory: tensor '%s' "
				  "needs %llu floats", it->name,
				  (unsigned long long)n);
	for (int e = 0; e < it->nsrc && !rc; e++)
		rc = read_src(j, it, it->src[e], x + (uint64_t)e * per, err);
	if (!rc)
		rc = emit(j, s, x, n, it->ne[0], it->type, it->name,
			  bitnet_item(j, it) && (it->type == HF_GGML_TQ1_0 ||
						 it->type == HF_GGML_TQ2_0),
			  err);
	free(x);
	for (int e = 0; !rc && e < it->nsrc; e++)
		j->done += it->src[e]->nbytes;
	if (!rc && j->o && j->o->progress)
		j->o->progress(j->o->ctx, j->done, j->total);
	return rc;
}

/* ---- metadata ---- */

/* The first key of `from` ("a|b|c") that config.json holds. */
static const json_t *config_value(const json_t *cfg, const char *from)
{
	char k[128];

	while (from && *from) {
		const char *bar = strchr(from, '|');
		size_t n = bar ? (size_t)(bar - from) : strlen(from);
		const json_t *v;

		if (n < sizeof(k)) {
			memcpy(k, from, n);
			k[n] = 0;
			v = json_object_get(cfg, k);
			if (v && !json_is_null(v))
				return v;
		}
		from = bar ? bar + 1 : NULL;
	}
	return NULL;
}

static int put_key(struct hf_gguf_writer *w, const char *arch,
		   const struct hf_fam_key *k, double v, struct hf_err *err)
{
	char key[160];

	snprintf(key, sizeof(key), "%s.%s", arch, k->key);
	switch (k->type) {
	case HF_GGUF_U32:
		if (!(v >= 0 && v <= 4294967295.0))
			return hf_err_set(err, HF_ERANGE, "'%s' = %g does not "
					  "fit a u32", key, v);
		return hf_gguf_set_u32(w, key, (uint32_t)v, err);
	case HF_GGUF_F32:
		return hf_gguf_set_f32(w, key, (float)v, err);
	case HF_GGUF_BOOL:
		return hf_gguf_set_bool(w, key, v != 0, err);
	default:
		return hf_err_set(err, HF_EINTERNAL, "'%s': bad key type", key);
	}
}

static int arch_keys(struct job *j, struct hf_gguf_writer *w,
		     struct hf_err *err)
{
	const struct hf_family *f = j->fam;
	const struct hf_config *c = j->c;
	int rc;

	for (size_t i = 0; i < f->nkeys; i++) {
		const struct hf_fam_key *k = &f->keys[i];
		const json_t *v = config_value(j->cfg, k->from);
		double x;

		switch (k->derive) {
		case HF_FAM_FROM_CONFIG:
		case HF_FAM_REQUIRED:
		case HF_FAM_DEFAULT:
		case HF_FAM_MINUS_POS_OFFSET:
			if (!v && k->derive == HF_FAM_DEFAULT) {
				x = k->value;
				break;
			}
			if (!v && k->derive == HF_FAM_FROM_CONFIG)
				continue;
			if (!json_is_number(v) && !json_is_boolean(v))
				return hf_err_set(err, HF_EFORMAT, "%s/config."
						  "json: %s '%s' for %s.%s",
						  j->dir, v ? "no number in" :
						  "no", k->from, f->arch,
						  k->key);
			x = json_is_boolean(v) ? json_is_true(v) :
			    json_number_value(v);
			if (k->derive == HF_FAM_MINUS_POS_OFFSET &&
			    c->pad_token_id >= 0)
				x -= (double)(c->pad_token_id + 1);
			break;
		case HF_FAM_HEAD_DIM:
			x = json_is_integer(v) ? json_number_value(v) :
			    (double)(c->hidden_size / c->num_attention_heads);
			break;
		case HF_FAM_ROT_DIM: {
			double p = json_is_number(v) ? json_number_value(v) :
				   1.0;

			x = (double)((int64_t)(p * (double)c->hidden_size) /
				     c->num_attention_heads);
			break;
		}
		case HF_FAM_FF_4X:
			if (!json_is_integer(v))
				return hf_err_set(err, HF_EFORMAT, "%s/config."
						  "json: no '%s'", j->dir,
						  k->from);
			x = 4.0 * json_number_value(v);
			break;
		case HF_FAM_CONST:
		default:
			x = k->value;
			break;
		}
		if ((rc = put_key(w, f->arch, k, x, err)))
			return rc;
	}
	if (f->flags & HF_FAM_ROPE_SCALING) {
		const struct hf_rope_scaling *rs = &c->rope_scaling;
		char key[160];

		if (rs->type && rs->type[0] && rs->factor > 0 &&
		    (!strcmp(rs->type, "linear") || !strcmp(rs->type, "yarn"))) {
			snprintf(key, sizeof(key), "%s.rope.scaling.type",
				 f->arch);
			if ((rc = hf_gguf_set_str(w, key, rs->type,
						  strlen(rs->type), err)))
				return rc;
			snprintf(key, sizeof(key), "%s.rope.scaling.factor",
				 f->arch);
			if ((rc = hf_gguf_set_f32(w, key, (float)rs->factor,
						  err)))
				return rc;
			if (!strcmp(rs->type, "yarn")) {
				snprintf(key, sizeof(key), "%s.rope.scaling."
					 "original_context_length", f->arch);
				if ((rc = hf_gguf_set_u32(w, key, (uint32_t)
					rs->original_max_position_embeddings,
					err)))
					return rc;
			}
		} else if (rs->type && rs->type[0] &&
			   strcasecmp(rs->type, "llama3") &&
			   strcmp(rs->type, "default")) {
			return hf_err_set(err, HF_EUNSUPPORTED, "%s/config."
					  "json: rope_scaling type '%s' has no "
					  "GGUF form for %s", j->dir, rs->type,
					  f->arch);
		}
	}
	if ((rc = hf_family_rope_keys(w, f, c, j->dir, err)))
		return rc;
	return 0;
}

static const char *base_name(const char *dir)
{
	static char buf[256];
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	snprintf(buf, sizeof(buf), "%.*s", (int)n, dir);
	{
		char *s = strrchr(buf, '/');

		return s && s[1] ? s + 1 : buf;
	}
}

/* ---- the export ---- */

int hf_gguf_export(const char *dir, const char *out,
		   const struct hf_gguf_export_opts *o, struct hf_err *err)
{
	struct job j = { 0 };
	struct hf_gguf_writer *w = NULL;
	char *cfgpath = hf_path_join(dir, "config.json");
	const json_t *q, *mt;
	const char *name;
	int rc;

	j.dir = dir;
	j.o = o;
	j.err = err;
	if (!cfgpath)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (!(j.ft = find_ftype(o ? o->type : NULL))) {
		rc = hf_err_set(err, HF_EINVAL, "unknown GGUF type '%s' (%s)",
				o && o->type ? o->type : "", 
				hf_gguf_export_types());
		goto out;
	}
	if ((rc = hf_json_load_file(&j.cfg, cfgpath, err)))
		goto out;
	if (!json_is_object(j.cfg)) {
		rc = hf_err_set(err, HF_EFORMAT, "%s: not a JSON object",
				cfgpath);
		goto out;
	}
	mt = json_object_get(j.cfg, "model_type");
	if (!json_is_string(mt)) {
		rc = hf_err_set(err, HF_EFORMAT, "%s: no \"model_type\"",
				cfgpath);
		goto out;
	}
	if (!(j.fam = hf_family_find(json_string_value(mt)))) {
		rc = hf_err_set(err, HF_EUNSUPPORTED, "%s: architecture '%s' "
				"has no GGUF table (GGUF export knows %s)",
				cfgpath, json_string_value(mt),
				hf_family_list());
		goto out;
	}
	q = json_object_get(j.cfg, "quantization_config");
	if (q && !json_is_null(q)) {
		if ((rc = hf_qcfg_parse(&j.qc, q, "config.json: "
					"quantization_config", err))) {
			hf_err_prefix(err, "%s", dir);
			goto out;
		}
		j.quant = 1;
		j.gpt2 = !strcmp(json_string_value(mt), "gpt2");
	}
	if ((rc = hf_config_load(&j.c, cfgpath, err)))
		goto out;
	j.n_expert = j.c->num_local_experts;
	if ((rc = hf_st_open_dir(&j.st, dir, err)) || (rc = plan(&j, err)) ||
	    (rc = assign_types(&j, err)) || (rc = check_quantized(&j, err)))
		goto out;
	if ((rc = hf_gguf_writer_new(&w, err)))
		goto out;
	name = o->name ? o->name : base_name(dir);
	if ((rc = hf_gguf_set_str(w, "general.architecture", j.fam->arch,
				  strlen(j.fam->arch), err)) ||
	    (rc = hf_gguf_set_str(w, "general.type", "model", 5, err)) ||
	    (rc = hf_gguf_set_str(w, "general.name", name, strlen(name),
				  err)) ||
	    (rc = arch_keys(&j, w, err)) ||
	    (rc = hf_gguf_set_u32(w, "general.file_type", j.ft->ftype, err)) ||
	    (rc = hf_gguf_set_u32(w, "general.quantization_version", 2, err)))
		goto out;
	if (!hf_gguf_has(w, "llama.vocab_size") &&
	    !strcmp(j.fam->arch, "llama")) {
		rc = hf_err_set(err, HF_EFORMAT, "%s: no vocab_size", cfgpath);
		goto out;
	}
	if ((rc = hf_gguf_add_tokenizer(w, dir, j.fam, j.cfg,
					j.c->vocab_size, err)))
		goto out;
	{
		/* llama.cpp sizes a tokenizer-less vocabulary from
		 * <arch>.vocab_size */
		const struct hf_gguf_writer *cw = w;
		char key[96];

		/* and a BERT's token types from the vocabulary's key,
		 * which a tokenizer-less export must still carry */
		if ((j.fam->flags & HF_FAM_ENCODER) &&
		    !hf_gguf_has(cw, "tokenizer.ggml.token_type_count") &&
		    (rc = hf_gguf_set_u32(w, "tokenizer.ggml.token_type_count",
					  j.c->type_vocab_size > 0 ?
					  (uint32_t)j.c->type_vocab_size : 1,
					  err)))
			goto out;
		snprintf(key, sizeof(key), "%s.vocab_size", j.fam->arch);
		if (!hf_gguf_has(cw, "tokenizer.ggml.tokens") &&
		    !hf_gguf_has(cw, key) &&
		    (rc = hf_gguf_set_u32(w, key, (uint32_t)j.c->vocab_size,
					  err)))
			goto out;
	}
	for (size_t i = 0; i < j.n; i++) {
		j.it[i].job = &j;
		if ((rc = hf_gguf_add_tensor(w, j.it[i].name, j.it[i].n_dims,
					     j.it[i].ne, j.it[i].type,
					     fill_item, &j.it[i], err)))
			goto out;
	}
	rc = hf_gguf_write(w, out, err);
out:
	hf_gguf_writer_free(w);
	for (size_t i = 0; i < j.n; i++)
		free(j.it[i].extra);
	free(j.it);
	for (size_t i = 0; i < j.nql; i++)
		free(j.ql[i]);
	free(j.ql);
	hf_st_model_free(j.st);
	hf_config_free(j.c);
	json_decref(j.cfg);
	free(cfgpath);
	return rc;
}
