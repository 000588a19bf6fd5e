/* lib/export/gguf_to_hf.c: a GGUF file written by llama.cpp's converter
 * back into an HF model directory: config.json, generation_config.json,
 * model.safetensors (dequantized, the converter's per-tensor changes
 * undone through the family tables of families.c read in reverse) and a
 * tokenizer.json + tokenizer_config.json rebuilt from the embedded
 * vocabulary the way transformers' GGUF loader rebuilds it
 * (transformers integrations/ggml.py GGUFLlamaConverter,
 * modeling_gguf_pytorch_utils.py load_gguf_checkpoint). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "core/file.h"
#include "core/json.h"
#include "export/export.h"
#include "export/families.h"
#include "export/ggml_types.h"
#include "export/gguf_read.h"
#include "st/st.h"
#include "tensor/dtype.h"

/* SentencePiece token types as llama.cpp stores them. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4,
       TT_UNUSED = 5, TT_BYTE = 6 };

struct imp {
	struct hf_gguf *g;
	const char *path;
	const char *arch;		/* general.architecture, NUL-terminated */
	const char *model_type;
	const struct hf_family *fam;
	char key[160];			/* scratch for "<arch>.<key>" */
	int64_t n_head, n_kv, n_embd, n_expert, head_dim;
	int64_t pos_off;		/* RoBERTa: position rows dropped */
	enum hf_dtype dtype;
	/* the tensor being converted, as the writer asks for it in chunks */
	const void *cache_for;
	unsigned char *cache;
};

/* One tensor of the output: where it comes from and what to undo. */
struct out_tensor {
	struct imp *im;
	const struct hf_gguf_tensor *t;
	const struct hf_fam_tensor *rule;
	int expert;		/* slice of a stacked expert tensor, or -1 */
	int bias;		/* a ".bias" */
	int ndim;
	int64_t shape[4];	/* HF order */
	char name[256];
};

static const char *akey(struct imp *im, const char *k)
{
	snprintf(im->key, sizeof(im->key), "%s.%s", im->arch, k);
	return im->key;
}

/* ---- dequantization ---- */

/* The n elements of t from element 0, as float32. */
static int dequant(struct imp *im, const struct hf_gguf_tensor *t, float *y,
		   size_t n, struct hf_err *err)
{
	const unsigned char *x = t->data;

	switch (t->type) {
	case HF_GGML_F32:
		memcpy(y, x, n * 4);
		return 0;
	case HF_GGML_F16:
		hf_f16_to_f32_n(y, (const uint16_t *)x, n);
		return 0;
	case HF_GGML_BF16:
		hf_bf16_to_f32_n(y, (const uint16_t *)x, n);
		return 0;
	}
	const struct hf_ggml_traits *tr = hf_ggml_traits(t->type);

	if (!tr || !tr->dequantize)
		return hf_err_set(err, HF_EUNSUPPORTED, "'%s': tensor '%s' "
				  "has type %s, which hf cannot dequantize",
				  im->path, t->name,
				  hf_gguf_ggml_type_name(t->type));
	tr->dequantize(x, y, (int64_t)n);
	return 0;
}

/* The HF tensor o in im->dtype into a new buffer of *nbytes. */
static int convert(const struct out_tensor *o, unsigned char **out,
		   size_t *nbytes, struct hf_err *err)
{
	struct imp *im = o->im;
	const struct hf_gguf_tensor *t = o->t;
	size_t all = 1, n = 1;
	float *x = NULL, *y = NULL;
	int rc;

	for (int d = 0; d < HF_GGUF_MAX_DIMS; d++)
		all *= (size_t)t->ne[d];
	for (int d = 0; d < o->ndim; d++)
		n *= (size_t)o->shape[d];
	x = malloc((all ? all : 1) * sizeof(float));
	y = malloc((n ? n : 1) * sizeof(float));
	if (!x || !y) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory for tensor "
				"'%s'", t->name);
		goto fail;
	}
	if ((rc = dequant(im, t, x, all, err)))
		goto fail;
	const float *src = x;

	if (o->expert >= 0)	/* [n_expert, out, in]: one [out, in] */
		src = x + (size_t)o->expert * n;
	unsigned fl = o->rule->flags;

	if (fl & (HF_FAM_PERMUTE_Q | HF_FAM_PERMUTE_K)) {
		/* B4 undone: HF row h*hd + s*hd/2 + j is GGUF row
		 * h*hd + 2j + s (llama.cpp's LlamaModel.permute) */
		int64_t heads = fl & HF_FAM_PERMUTE_Q ? im->n_head : im->n_kv;
		int64_t rows = o->shape[0];
		size_t rl = o->bias ? 1 : (size_t)o->shape[1];
		int64_t hd = heads > 0 ? rows / heads : 0;

		if (heads <= 0 || rows % heads || hd % 2) {
			rc = hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s': "
					"%lld rows do not split into %lld heads "
					"of an even size", im->path, t->name,
					(long long)rows, (long long)heads);
			goto fail;
		}
		for (int64_t h = 0; h < heads; h++)
			for (int64_t s = 0; s < 2; s++)
				for (int64_t j = 0; j < hd / 2; j++)
					memcpy(y + (size_t)(h * hd + s * hd / 2
							    + j) * rl,
					       src + (size_t)(h * hd + 2 * j + s)
					       * rl, rl * sizeof(float));
	} else if ((fl & HF_FAM_POS_OFFSET) && o->ndim == 2) {
		/* RoBERTa: the converter dropped the pad_token_id + 1 rows
		 * no position uses; they come back as zeros */
		size_t skip = (size_t)im->pos_off * (size_t)o->shape[1];

		memset(y, 0, skip * sizeof(float));
		memcpy(y + skip, src, (n - skip) * sizeof(float));
	} else if ((fl & HF_FAM_TRANSPOSE) && !o->bias && o->ndim == 2) {
		/* GGUF [out, in] back to Conv1D's [in, out] */
		size_t in = (size_t)o->shape[0], outn = (size_t)o->shape[1];

		for (size_t r = 0; r < outn; r++)
			for (size_t c = 0; c < in; c++)
				y[c * outn + r] = src[r * in + c];
	} else {
		memcpy(y, src, n * sizeof(float));
	}
	if (fl & HF_FAM_PLUS_ONE)	/* Gemma: the file holds w + 1 */
		for (size_t i = 0; i < n; i++)
			y[i] -= 1.0f;

	size_t es = hf_dtype_bits(im->dtype) / 8;
	unsigned char *b = malloc((n ? n : 1) * es);

	if (!b) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	if (im->dtype == HF_DTYPE_F32)
		memcpy(b, y, n * 4);
	else if (im->dtype == HF_DTYPE_F16)
		hf_f32_to_f16_n((uint16_t *)b, y, n);
	else
		hf_f32_to_bf16_n((uint16_t *)b, y, n);
	*out = b;
	*nbytes = n * es;
	rc = 0;
fail:
	free(x);
	free(y);
	return rc;
}

static int fill(void *ctx, void *buf, size_t off, size_t len,
		struct hf_err *err)
{
	struct out_tensor *o = ctx;
	struct imp *im = o->im;
	size_t nb;
	int rc;

	if (im->cache_for != o) {
		free(im->cache);
		im->cache = NULL;
		im->cache_for = NULL;
		if ((rc = convert(o, &im->cache, &nb, err)))
			return rc;
		im->cache_for = o;
	}
	memcpy(buf, im->cache + off, len);
	return 0;
}

/* ---- config.json ---- */

/* An f32 metadata value as the shortest decimal that reads back to the
 * same float (1e-05, not 9.99999974737875e-06), as config.json had it. */
static double f32_decimal(double v)
{
	char s[40];

	for (int p = 1; p <= 9; p++) {
		snprintf(s, sizeof(s), "%.*g", p, v);
		if ((float)strtod(s, NULL) == (float)v)
			return strtod(s, NULL);
	}
	return v;
}

static json_t *num_of(const struct hf_gguf_value *v)
{
	switch (v->type) {
	case HF_GGUF_F32: return json_real(f32_decimal(v->f));
	case HF_GGUF_F64: return json_real(v->f);
	case HF_GGUF_BOOL: return json_boolean(v->u);
	case HF_GGUF_I8: case HF_GGUF_I16: case HF_GGUF_I32: case HF_GGUF_I64:
		return json_integer(v->i);
	case HF_GGUF_U8: case HF_GGUF_U16: case HF_GGUF_U32: case HF_GGUF_U64:
		return json_integer((json_int_t)v->u);
	default: return NULL;
	}
}

static void set_new(json_t *o, const char *k, json_t *v)
{
	if (v)
		json_object_set_new(o, k, v);
}

/* The first config.json name of a "a|b|c" list, into buf. */
static const char *first_name(const char *from, char *buf, size_t cap)
{
	size_t n = strcspn(from, "|");

	if (n >= cap)
		n = cap - 1;
	memcpy(buf, from, n);
	buf[n] = 0;
	return buf;
}

static const char *architecture_of(const char *mt)
{
	static const char *const map[][2] = {
		{ "llama", "LlamaForCausalLM" },
		{ "mistral", "MistralForCausalLM" },
		{ "mixtral", "MixtralForCausalLM" },
		{ "qwen2", "Qwen2ForCausalLM" },
		{ "qwen3", "Qwen3ForCausalLM" },
		{ "gemma", "GemmaForCausalLM" },
		{ "phi3", "Phi3ForCausalLM" },
		{ "gpt2", "GPT2LMHeadModel" },
		{ "bert", "BertModel" },
		{ "roberta", "RobertaModel" },
		{ "distilbert", "DistilBertModel" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i][0], mt))
			return map[i][1];
	return NULL;
}

static int64_t cfg_int(json_t *c, const char *k, int64_t def)
{
	json_t *v = json_object_get(c, k);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

/* llama3 rope_scaling from the rope_freqs tensor the converter made of it
 * (LlamaModel.generate_extra_tensors): per frequency pair i, factor 1
 * (high band), `factor` (low band) or 1 / ((1 - s) / factor + s) with
 * s = (old / wavelen - lo) / (hi - lo). The scale of (old, lo, hi) is not
 * in the factors, so lo = 1 (every Llama 3.x) fixes it; the others are
 * solved from two smoothed pairs and checked by recomputing every factor
 * as the converter does. */
static int rope_llama3(struct imp *im, const struct hf_gguf_tensor *t,
		       double theta, int64_t dim, json_t *cfg,
		       struct hf_err *err)
{
	int64_t n = t->ne[0];
	float *f = malloc((size_t)(n ? n : 1) * sizeof(float));
	double factor = 0, lo = 1, hi, old;
	int64_t s0 = -1, s1 = -1;
	int rc;

	if (!f)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (t->n_dims != 1 || 2 * n != dim) {
		free(f);
		return hf_err_set(err, HF_EFORMAT, "'%s': rope_freqs.weight "
				  "has %lld factors, want head_dim / 2 = %lld",
				  im->path, (long long)n, (long long)dim / 2);
	}
	if ((rc = dequant(im, t, f, (size_t)n, err))) {
		free(f);
		return rc;
	}
	for (int64_t i = 0; i < n; i++)
		if (f[i] > factor)
			factor = f[i];
	for (int64_t i = 0; i < n; i++)
		if (f[i] != 1.0f && f[i] != (float)factor) {
			if (s0 < 0)
				s0 = i;
			else if (s1 < 0 || i == n - 1)
				s1 = i;
		}
	hi = 4.0;
	old = 8192;
	if (s0 >= 0 && factor > 1) {
		/* smoothed pair i: s_i = (1/f_i - 1/factor) / (1 - 1/factor)
		 * = (old / wl_i - lo) / (hi - lo), wl_i = 2 pi / freq_i */
		double wl[2], sm[2];
		int64_t ix[2] = { s0, s1 };

		for (int k = 0; k < 2 && ix[k] >= 0; k++) {
			wl[k] = 2 * M_PI * pow(theta, (double)(2 * ix[k]) /
					      (double)dim);
			sm[k] = (1.0 / f[ix[k]] - 1.0 / factor) /
				(1.0 - 1.0 / factor);
		}
		if (s1 >= 0) {	/* two equations: old and hi */
			double q = 1 / wl[0] - 1 / wl[1];

			/* old / wl_k = lo + s_k (hi - lo) for k = 0, 1 */
			if (q != 0 && sm[0] != sm[1]) {
				double d = (sm[0] - sm[1]) / q; /* old/(hi-lo) */
				double o0 = lo / (1 / wl[0] - sm[0] / d);

				if (o0 > 0 && isfinite(o0)) {
					old = o0;
					hi = lo + old / d;
				}
			}
		} else {	/* one: Llama 3's hi = 4 */
			old = wl[0] * (lo + sm[0] * (hi - lo));
		}
		hi = round(hi * 1e4) / 1e4;
		old = round(old);
	} else if (factor > 1) {
		/* no smoothed pair: any old between the bands fits; take
		 * the first power of two that does */
		for (old = 2; old < 1e9; old *= 2) {
			int ok = 1;

			for (int64_t i = 0; i < n && ok; i++) {
				double w = 2 * M_PI * pow(theta, (double)(2 *
						i) / (double)dim);

				ok = f[i] == 1.0f ? w < old / hi : w > old / lo;
			}
			if (ok)
				break;
		}
	}
	/* check: the converter's factors from what was found, in float32
	 * freqs and double arithmetic as torch + Python compute them */
	for (int64_t i = 0; i < n; i++) {
		float fq = 1.0f / powf((float)theta, (float)(2 * i) /
				       (float)dim);
		double wl = 2 * M_PI / fq, want;

		if (wl < old / hi)
			want = 1;
		else if (wl > old / lo)
			want = factor;
		else {
			double s = (old / wl - lo) / (hi - lo);

			want = 1 / ((1 - s) / factor + s);
		}
		if (fabs((float)want - f[i]) > 1e-5 * fabs(want)) {
			rc = hf_err_set(err, HF_EUNSUPPORTED, "'%s': "
					"rope_freqs.weight factor %lld is %g, "
					"not what llama3 rope scaling gives "
					"(%g)", im->path, (long long)i, f[i],
					want);
			free(f);
			return rc;
		}
	}
	free(f);
	json_t *rs = json_object();

	json_object_set_new(rs, "factor", json_real(f32_decimal(factor)));
	json_object_set_new(rs, "high_freq_factor", json_real(hi));
	json_object_set_new(rs, "low_freq_factor", json_real(lo));
	json_object_set_new(rs, "original_max_position_embeddings",
			    json_integer((json_int_t)old));
	json_object_set_new(rs, "rope_type", json_string("llama3"));
	json_object_set_new(cfg, "rope_scaling", rs);
	return 0;
}

/* Phi-3's LongRoPE factors (Phi3MiniModel.generate_extra_tensors) back
 * into rope_scaling: long_factor and short_factor from the two tensors,
 * the type from rope.scaling.attn_factor, which the converter computes
 * one way for longrope and another for yarn from
 * max_position_embeddings / original_max_position_embeddings. */
static int rope_phi3(struct imp *im, const struct hf_gguf_tensor *lt,
		     const struct hf_gguf_tensor *st, json_t *cfg,
		     struct hf_err *err)
{
	const struct hf_gguf_tensor *t[2] = { lt, st };
	json_t *rs, *arr[2];
	double af, mp, om;
	uint64_t octx, ctx;
	const char *type = "longrope";
	int rc;

	if (!lt || !st || lt->n_dims != 1 || st->n_dims != 1 ||
	    lt->ne[0] != st->ne[0] || lt->ne[0] < 1 || lt->ne[0] > 65536)
		return hf_err_set(err, HF_EFORMAT, "'%s': rope_factors_long "
				  "and rope_factors_short must be two 1-D "
				  "tensors of the same length", im->path);
	if ((rc = hf_gguf_get_float(im->g, akey(im, "rope.scaling.attn_factor"),
				    -1.0, &af, err)) ||
	    (rc = hf_gguf_get_uint(im->g, akey(im,
			"rope.scaling.original_context_length"), 0, &octx,
			err)) ||
	    (rc = hf_gguf_get_uint(im->g, akey(im, "context_length"), 0, &ctx,
				   err)))
		return rc;
	mp = (double)ctx;
	om = (double)octx;
	if (af >= 0 && om > 0 && mp / om > 1.0) {
		double scale = mp / om;
		float lr = (float)sqrt(1 + log(scale) / log(om));
		float yn = (float)(0.1 * log(scale) + 1.0);

		if ((float)af == yn && (float)af != lr)
			type = "yarn";
		else if ((float)af != lr)
			return hf_err_set(err, HF_EUNSUPPORTED, "'%s': "
					  "rope.scaling.attn_factor %g is "
					  "neither LongRoPE's (%g) nor YaRN's "
					  "(%g) for these context lengths",
					  im->path, af, (double)lr, (double)yn);
	}
	for (int k = 0; k < 2; k++) {
		int64_t n = t[k]->ne[0];
		float *f = malloc((size_t)n * sizeof(float));

		arr[k] = json_array();
		if (!f || !arr[k]) {
			free(f);
			json_decref(arr[0]);
			if (k)
				json_decref(arr[1]);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		if ((rc = dequant(im, t[k], f, (size_t)n, err))) {
			free(f);
			json_decref(arr[0]);
			if (k)
				json_decref(arr[1]);
			return rc;
		}
		for (int64_t i = 0; i < n; i++)
			json_array_append_new(arr[k], json_real(
				f32_decimal(f[i])));
		free(f);
	}
	rs = json_object();
	json_object_set_new(rs, "long_factor", arr[0]);
	json_object_set_new(rs, "short_factor", arr[1]);
	json_object_set_new(rs, "type", json_string(type));
	json_object_set_new(cfg, "rope_scaling", rs);
	return 0;
}

/* YaRN's keys past type / factor / original_context_length
 * (TextModel.set_gguf_parameters) into rope_scaling, under the names
 * transformers reads. */
static int rope_yarn_extra(struct imp *im, json_t *rs, struct hf_err *err)
{
	static const struct { const char *key, *name; } y[] = {
		{ "rope.scaling.yarn_ext_factor", "extrapolation_factor" },
		{ "rope.scaling.yarn_attn_factor", "attention_factor" },
		{ "rope.scaling.yarn_beta_fast", "beta_fast" },
		{ "rope.scaling.yarn_beta_slow", "beta_slow" },
	};

	for (size_t i = 0; i < sizeof(y) / sizeof(y[0]); i++) {
		double v;
		int rc;

		if (!hf_gguf_get(im->g, akey(im, y[i].key)))
			continue;
		if ((rc = hf_gguf_get_float(im->g, akey(im, y[i].key), 0, &v,
					    err)))
			return rc;
		json_object_set_new(rs, y[i].name, json_real(f32_decimal(v)));
	}
	return 0;
}

static int tok_id(struct imp *im, const char *k, int64_t *id,
		  struct hf_err *err)
{
	return hf_gguf_get_int(im->g, k, -1, id, err);
}

/* BertModel, RobertaModel, DistilBertModel: what their config classes
 * need past the keys (families.c's tables), with transformers' defaults
 * for what the converter does not write. DistilBERT's config names its
 * sizes dim, n_heads, n_layers, hidden_dim. */
static int encoder_config(struct imp *im, json_t *c, struct hf_err *err)
{
	const struct hf_gguf_tensor *tt = hf_gguf_find_tensor(im->g,
							"token_types.weight");
	const char *mt = im->model_type;
	uint64_t ctx;
	int rc;

	if ((rc = hf_gguf_get_uint(im->g, akey(im, "context_length"), 0, &ctx,
				   err)))
		return rc;
	if (!ctx)
		return hf_err_set(err, HF_EFORMAT, "'%s': no %s.context_length",
				  im->path, im->arch);
	json_object_set_new(c, "max_position_embeddings",
			    json_integer((json_int_t)ctx + im->pos_off));
	if (!strcmp(mt, "distilbert")) {
		static const char *const ren[][2] = {
			{ "hidden_size", "dim" },
			{ "num_attention_heads", "n_heads" },
			{ "num_hidden_layers", "n_layers" },
			{ "intermediate_size", "hidden_dim" },
		};

		for (size_t i = 0; i < sizeof(ren) / sizeof(ren[0]); i++) {
			json_t *v = json_object_get(c, ren[i][0]);

			if (v) {
				json_object_set(c, ren[i][1], v);
				json_object_del(c, ren[i][0]);
			}
		}
		json_object_del(c, "layer_norm_eps");
		json_object_set_new(c, "activation", json_string("gelu"));
		json_object_set_new(c, "sinusoidal_pos_embds", json_false());
		json_object_set_new(c, "pad_token_id", json_integer(0));
		return 0;
	}
	json_object_set_new(c, "hidden_act", json_string("gelu"));
	json_object_set_new(c, "position_embedding_type",
			    json_string("absolute"));
	json_object_set_new(c, "type_vocab_size", json_integer(
		tt && tt->n_dims == 2 ? (json_int_t)tt->ne[1] : 2));
	json_object_set_new(c, "pad_token_id", json_integer(
		!strcmp(mt, "roberta") ? im->pos_off - 1 : 0));
	return 0;
}

static int build_config(struct imp *im, json_t **out, struct hf_err *err)
{
	struct hf_gguf *g = im->g;
	const struct hf_family *f = im->fam;
	json_t *c = json_object();
	char nb[64];
	int rc;

	json_object_set_new(c, "architectures", json_pack("[s]",
			    architecture_of(im->model_type)));
	json_object_set_new(c, "model_type", json_string(im->model_type));
	for (size_t i = 0; i < f->nkeys; i++) {
		const struct hf_fam_key *k = &f->keys[i];
		const struct hf_gguf_value *v = hf_gguf_get(g, akey(im, k->key));
		const char *name = first_name(k->from, nb, sizeof(nb));

		if (!v || k->derive == HF_FAM_CONST ||
		    k->derive == HF_FAM_FF_4X || k->derive == HF_FAM_ROT_DIM ||
		    k->derive == HF_FAM_HEAD_DIM ||
		    k->derive == HF_FAM_MINUS_POS_OFFSET)
			continue;
		if (v->type == HF_GGUF_STRING || v->type == HF_GGUF_ARRAY)
			return hf_err_set(err, HF_EFORMAT, "'%s': key '%s' is "
					  "%s, want a number", im->path,
					  im->key, hf_gguf_type_name(v->type));
		set_new(c, name, num_of(v));
	}
	/* the shapes the loaders need, from the keys or their defaults */
	int64_t hidden = cfg_int(c, !strcmp(im->model_type, "gpt2") ?
				 "n_embd" : "hidden_size", 0);
	int64_t heads = cfg_int(c, !strcmp(im->model_type, "gpt2") ?
				"n_head" : "num_attention_heads", 0);

	if (hidden <= 0 || heads <= 0 || hidden % heads) {
		json_decref(c);
		return hf_err_set(err, HF_EFORMAT, "'%s': missing or bad "
				  "%s.embedding_length / attention.head_count",
				  im->path, im->arch);
	}
	im->n_embd = hidden;
	im->n_head = heads;
	im->n_kv = cfg_int(c, "num_key_value_heads", heads);
	im->head_dim = cfg_int(c, "head_dim", 0);
	if (strcmp(im->model_type, "gpt2") && !(f->flags & HF_FAM_ENCODER)) {
		uint64_t rd;

		if ((rc = hf_gguf_get_uint(g, akey(im, "rope.dimension_count"),
					   0, &rd, err)))
			goto fail;
		if (!im->head_dim && rd && (int64_t)rd != hidden / heads &&
		    strcmp(im->model_type, "phi3"))
			im->head_dim = (int64_t)rd;
		if (im->head_dim)
			json_object_set_new(c, "head_dim",
					    json_integer(im->head_dim));
		if (!json_object_get(c, "num_key_value_heads"))
			json_object_set_new(c, "num_key_value_heads",
					    json_integer(heads));
		if (!json_object_get(c, "rope_theta"))
			json_object_set_new(c, "rope_theta",
					    json_real(10000.0));
		if (!strcmp(im->model_type, "phi3") && rd &&
		    (int64_t)rd != hidden / heads)
			json_object_set_new(c, "partial_rotary_factor",
					    json_real((double)rd * heads /
						      hidden));
	}
	if (!im->head_dim)
		im->head_dim = hidden / heads;
	im->n_expert = cfg_int(c, "num_local_experts", 0);

	/* vocabulary and head from the tensors */
	const struct hf_gguf_tensor *emb = hf_gguf_find_tensor(g,
							"token_embd.weight");

	if (!emb || emb->n_dims != 2) {
		json_decref(c);
		return hf_err_set(err, HF_EFORMAT, "'%s': no 2-D "
				  "token_embd.weight", im->path);
	}
	json_object_set_new(c, "vocab_size", json_integer(emb->ne[1]));
	json_object_set_new(c, "tie_word_embeddings", json_boolean(
		!hf_gguf_find_tensor(g, "output.weight")));

	/* rope scaling */
	const struct hf_gguf_tensor *rf = hf_gguf_find_tensor(g,
							"rope_freqs.weight");
	const char *rst;
	size_t rsl;

	if (hf_gguf_find_tensor(g, "rope_factors_long.weight") ||
	    hf_gguf_find_tensor(g, "rope_factors_short.weight")) {
		if ((rc = rope_phi3(im, hf_gguf_find_tensor(g,
					"rope_factors_long.weight"),
				    hf_gguf_find_tensor(g,
					"rope_factors_short.weight"), c, err)))
			goto fail;
	} else if (rf) {
		double theta = json_real_value(json_object_get(c,
							       "rope_theta"));

		if (json_is_integer(json_object_get(c, "rope_theta")))
			theta = (double)json_integer_value(
				json_object_get(c, "rope_theta"));
		if ((rc = rope_llama3(im, rf, theta, im->head_dim, c, err)))
			goto fail;
	} else if (!(rc = hf_gguf_get_str(g, akey(im, "rope.scaling.type"),
					  &rst, &rsl, err)) && rst &&
		   !(rsl == 4 && !memcmp(rst, "none", 4))) {
		double fac;
		uint64_t octx;
		json_t *rs = json_object();

		if ((rc = hf_gguf_get_float(g, akey(im, "rope.scaling.factor"),
					    1.0, &fac, err)) ||
		    (rc = hf_gguf_get_uint(g, akey(im,
				"rope.scaling.original_context_length"), 0,
				&octx, err))) {
			json_decref(rs);
			goto fail;
		}
		json_object_set_new(rs, "rope_type", json_stringn(rst, rsl));
		json_object_set_new(rs, "factor", json_real(f32_decimal(fac)));
		if (octx)
			json_object_set_new(rs,
				"original_max_position_embeddings",
				json_integer((json_int_t)octx));
		json_object_set_new(c, "rope_scaling", rs);
		if (rsl == 4 && !memcmp(rst, "yarn", 4) &&
		    (rc = rope_yarn_extra(im, rs, err)))
			goto fail;
	} else if (rc) {
		goto fail;
	} else if (strcmp(im->model_type, "gpt2") &&
		   !(f->flags & HF_FAM_ENCODER)) {
		json_object_set_new(c, "rope_scaling", json_null());
	}

	/* per-family settings the file does not carry: the defaults of
	 * transformers' config classes for what the converter writes */
	const char *mt = im->model_type;

	if (f->flags & HF_FAM_ENCODER) {
		if ((rc = encoder_config(im, c, err)))
			goto fail;
	} else if (!strcmp(mt, "gpt2")) {
		int64_t ff = cfg_int(c, "n_inner", 0);
		int64_t ctx = cfg_int(c, "n_ctx", 1024);

		json_object_set_new(c, "activation_function",
				    json_string("gelu_new"));
		json_object_set_new(c, "n_positions", json_integer(ctx));
		json_object_set_new(c, "n_inner", ff && ff != 4 * hidden ?
				    json_integer(ff) : json_null());
		uint64_t ffl;

		if ((rc = hf_gguf_get_uint(g, akey(im, "feed_forward_length"),
					   0, &ffl, err)))
			goto fail;
		if (ffl && (int64_t)ffl != 4 * hidden)
			json_object_set_new(c, "n_inner",
					    json_integer((json_int_t)ffl));
	} else {
		json_object_set_new(c, "hidden_act", json_string(
			!strcmp(mt, "gemma") ? "gelu_pytorch_tanh" : "silu"));
		if (!strcmp(mt, "gemma"))
			json_object_set_new(c, "hidden_activation",
					    json_string("gelu_pytorch_tanh"));
		if (strcmp(mt, "qwen2"))	/* its q/k/v biases are fixed */
			json_object_set_new(c, "attention_bias", json_boolean(
				hf_gguf_find_tensor(g, "blk.0.attn_q.bias") !=
				NULL));
		if (!strcmp(mt, "llama"))
			json_object_set_new(c, "mlp_bias", json_false());
		if (!strcmp(mt, "qwen2") || !strcmp(mt, "qwen3"))
			json_object_set_new(c, "use_sliding_window",
					    json_false());
		if (!strcmp(mt, "phi3") &&
		    !json_object_get(c, "original_max_position_embeddings"))
			json_object_set_new(c,
				"original_max_position_embeddings",
				json_integer(cfg_int(c,
					"max_position_embeddings", 4096)));
	}
	int64_t id;

	if ((rc = tok_id(im, "tokenizer.ggml.bos_token_id", &id, err)))
		goto fail;
	if (id >= 0)
		json_object_set_new(c, "bos_token_id", json_integer(id));
	if ((rc = tok_id(im, "tokenizer.ggml.eos_token_id", &id, err)))
		goto fail;
	if (id >= 0)
		json_object_set_new(c, "eos_token_id", json_integer(id));
	if ((rc = tok_id(im, "tokenizer.ggml.padding_token_id", &id, err)))
		goto fail;
	if (id >= 0)
		json_object_set_new(c, "pad_token_id", json_integer(id));
	json_object_set_new(c, "torch_dtype", json_string(
		im->dtype == HF_DTYPE_F32 ? "float32" :
		im->dtype == HF_DTYPE_F16 ? "float16" : "bfloat16"));
	json_object_set_new(c, "use_cache", json_true());
	*out = c;
	return 0;
fail:
	json_decref(c);
	return rc;
}

/* ---- tensors ---- */

/* Whether a ggml type is a block format (not f32, f16, bf16). */
static int is_quantized(int type)
{
	return type != HF_GGML_F32 && type != HF_GGML_F16 &&
	       type != HF_GGML_BF16;
}

/* The default dtype: general.file_type's, else the widest of the 2-D
 * tensors' types, quantized ones counting as f32 (their scales are f16,
 * their products need more). */
static enum hf_dtype default_dtype(struct hf_gguf *g)
{
	int have16 = 0, havebf = 0;
	const struct hf_gguf_value *ft = hf_gguf_get(g, "general.file_type");

	/* the converter keeps some 2-D tensors in f32 whatever the type
	 * (ffn_gate_inp, small outputs): its file type says what the
	 * weights were (LlamaFileType: 0 ALL_F32, 1 MOSTLY_F16,
	 * 32 MOSTLY_BF16, the rest quantized) */
	if (ft && ft->type == HF_GGUF_U32)
		return ft->u == 1 ? HF_DTYPE_F16 : ft->u == 32 ?
		       HF_DTYPE_BF16 : HF_DTYPE_F32;

	for (size_t i = 0; i < hf_gguf_tensor_count(g); i++) {
		const struct hf_gguf_tensor *t = hf_gguf_tensor(g, i);

		if (t->n_dims < 2)
			continue;
		if (t->type == HF_GGML_F32 || is_quantized(t->type))
			return HF_DTYPE_F32;
		have16 |= t->type == HF_GGML_F16;
		havebf |= t->type == HF_GGML_BF16;
	}
	if (have16 && havebf)
		return HF_DTYPE_F32;	/* neither holds the other */
	return have16 ? HF_DTYPE_F16 : havebf ? HF_DTYPE_BF16 : HF_DTYPE_F32;
}

static int plan_tensors(struct imp *im, struct out_tensor **out, size_t *n,
			struct hf_err *err)
{
	struct hf_gguf *g = im->g;
	size_t cap = 0, cnt = 0;
	struct out_tensor *v = NULL;

	for (size_t i = 0; i < hf_gguf_tensor_count(g); i++) {
		const struct hf_gguf_tensor *t = hf_gguf_tensor(g, i);
		struct hf_fam_match m;

		if (!strcmp(t->name, "rope_freqs.weight") ||
		    !strcmp(t->name, "rope_factors_long.weight") ||
		    !strcmp(t->name, "rope_factors_short.weight"))
			continue;	/* became rope_scaling */
		if (hf_family_map_gguf(im->fam, t->name, 0, &m) !=
		    HF_FAM_MAPPED) {
			free(v);
			return hf_err_set(err, HF_EUNSUPPORTED, "'%s': tensor "
					  "'%s' has no HF name in family '%s'",
					  im->path, t->name, im->model_type);
		}
		int experts = m.rule->flags & HF_FAM_EXPERTS;
		int64_t ne = experts ? t->ne[2] : 1;

		if (experts && (t->n_dims != 3 || ne != im->n_expert)) {
			free(v);
			return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' "
					  "is not [%lld experts, out, in]",
					  im->path, t->name,
					  (long long)im->n_expert);
		}
		for (int64_t e = 0; e < ne; e++) {
			struct out_tensor *o;

			if (cnt == cap) {
				cap = cap ? 2 * cap : 64;
				void *nv = realloc(v, cap * sizeof(*v));

				if (!nv) {
					free(v);
					return hf_err_set(err, HF_ENOMEM,
							  "out of memory");
				}
				v = nv;
			}
			o = &v[cnt++];
			memset(o, 0, sizeof(*o));
			if (experts &&
			    hf_family_map_gguf(im->fam, t->name, (int)e, &m)) {
				free(v);
				return hf_err_set(err, HF_EINTERNAL, "tensor "
						  "'%s' expert %lld", t->name,
						  (long long)e);
			}
			o->im = im;
			o->t = t;
			o->rule = m.rule;
			o->expert = experts ? (int)e : -1;
			o->bias = !strcmp(m.suffix, ".bias");
			snprintf(o->name, sizeof(o->name), "%s", m.hf);
			o->ndim = experts ? 2 : t->n_dims;
			for (int d = 0; d < o->ndim; d++)
				o->shape[d] = t->ne[o->ndim - 1 - d];
			if ((m.rule->flags & HF_FAM_POS_OFFSET) &&
			    o->ndim == 2)
				o->shape[0] += im->pos_off;
			if ((m.rule->flags & HF_FAM_TRANSPOSE) && !o->bias &&
			    o->ndim == 2) {
				int64_t s = o->shape[0];

				o->shape[0] = o->shape[1];
				o->shape[1] = s;
			}
		}
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* ---- tokenizer ---- */

/* A hash set of token strings -> id (last id wins, as a Python dict
 * built in id order does). */
struct vocab {
	const struct hf_gguf_value *tok;	/* the tokens array */
	size_t cap;
	int64_t *slot;				/* id, or -1 */
};

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static int64_t vocab_find(const struct vocab *v, const char *s, size_t n)
{
	for (size_t i = hash(s, n) & (v->cap - 1);; i = (i + 1) & (v->cap - 1)) {
		int64_t id = v->slot[i];

		if (id < 0)
			return -1;
		if (v->tok->items[id].len == n &&
		    !memcmp(v->tok->items[id].str, s, n))
			return id;
	}
}

static int vocab_init(struct vocab *v, const struct hf_gguf_value *tok)
{
	v->tok = tok;
	v->cap = 16;
	while (v->cap < 2 * tok->n)
		v->cap *= 2;
	if (!(v->slot = malloc(v->cap * sizeof(*v->slot))))
		return -1;
	for (size_t i = 0; i < v->cap; i++)
		v->slot[i] = -1;
	for (uint64_t id = 0; id < tok->n; id++) {
		const char *s = tok->items[id].str;
		size_t n = tok->items[id].len;
		size_t i = hash(s, n) & (v->cap - 1);

		for (;; i = (i + 1) & (v->cap - 1)) {
			int64_t o = v->slot[i];

			if (o < 0 || (tok->items[o].len == n &&
				      !memcmp(tok->items[o].str, s, n)))
				break;
		}
		v->slot[i] = (int64_t)id;
	}
	return 0;
}

struct merge {
	int64_t l, r;		/* token ids of the halves */
	float score;		/* of the merged piece */
	float sl, sr;		/* of the halves, for ties */
	size_t seq;		/* generation order, for a stable sort */
};

static int cmp_merge(const void *a, const void *b)
{
	const struct merge *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_local(const void *a, const void *b)
{
	const struct merge *x = a, *y = b;

	if (x->sl != y->sl)
		return x->sl > y->sl ? -1 : 1;
	if (x->sr != y->sr)
		return x->sr > y->sr ? -1 : 1;
	return 0;
}

static json_t *tok_str(const struct hf_gguf_value *tok, int64_t id)
{
	return json_stringn(tok->items[id].str, tok->items[id].len);
}

/* SentencePiece merges from the scores, as transformers'
 * GGUFTokenizerSkeleton builds them: every split of every piece into two
 * pieces of the vocabulary, ranked by the whole piece's score (highest
 * first; splits of one piece by their halves' scores). */
static int spm_merges(const struct vocab *v, const struct hf_gguf_value *sc,
		      json_t *merges, struct hf_err *err)
{
	const struct hf_gguf_value *tok = v->tok;
	size_t cap = 1024, n = 0;
	struct merge *m = malloc(cap * sizeof(*m));

	if (!m)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (uint64_t id = 0; id < tok->n; id++) {
		const char *s = tok->items[id].str;
		size_t len = tok->items[id].len, start = n;

		if (vocab_find(v, s, len) != (int64_t)id)
			continue;	/* a duplicate: the dict kept the last */
		for (size_t k = 1; k < len; k++) {
			int64_t l, r;

			if (((unsigned char)s[k] & 0xc0) == 0x80)
				continue;	/* split at code points */
			if ((l = vocab_find(v, s, k)) < 0 ||
			    (r = vocab_find(v, s + k, len - k)) < 0)
				continue;
			if (n == cap) {
				void *nm = realloc(m, 2 * cap * sizeof(*m));

				if (!nm) {
					free(m);
					return hf_err_set(err, HF_ENOMEM,
							  "out of memory");
				}
				m = nm;
				cap *= 2;
			}
			m[n++] = (struct merge){
				l, r, (float)hf_gguf_arr_float(sc, id),
				(float)hf_gguf_arr_float(sc, (uint64_t)l),
				(float)hf_gguf_arr_float(sc, (uint64_t)r), 0 };
		}
		qsort(m + start, n - start, sizeof(*m), cmp_local);
	}
	for (size_t i = 0; i < n; i++)
		m[i].seq = i;
	qsort(m, n, sizeof(*m), cmp_merge);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(merges, json_pack("[oo]",
			tok_str(tok, m[i].l), tok_str(tok, m[i].r)));
	free(m);
	return 0;
}

static json_t *template_proc(const struct hf_gguf_value *tok, int64_t bos,
			     int64_t eos)
{
	json_t *single = json_array(), *pair = json_array();
	json_t *sp = json_object();

	for (int p = 0; p < 2; p++) {
		json_t *arr = p ? pair : single;

		for (int s = 0; s <= p; s++) {
			if (bos >= 0)
				json_array_append_new(arr, json_pack(
					"{s:{s:o,s:i}}", "SpecialToken", "id",
					tok_str(tok, bos), "type_id", s));
			json_array_append_new(arr, json_pack("{s:{s:s,s:i}}",
				"Sequence", "id", s ? "B" : "A", "type_id", s));
			if (eos >= 0)
				json_array_append_new(arr, json_pack(
					"{s:{s:o,s:i}}", "SpecialToken", "id",
					tok_str(tok, eos), "type_id", s));
		}
	}
	int64_t ids[2] = { bos, eos };

	for (int k = 0; k < 2; k++) {
		if (ids[k] < 0)
			continue;
		json_t *name = tok_str(tok, ids[k]);

		json_object_set_new(sp, json_string_value(name), json_pack(
			"{s:O,s:[I],s:[O]}", "id", name, "ids",
			(json_int_t)ids[k], "tokens", name));
		json_decref(name);
	}
	return json_pack("{s:s,s:o,s:o,s:o}", "type", "TemplateProcessing",
			 "single", single, "pair", pair, "special_tokens", sp);
}

static json_t *byte_level(int prefix, int trim, int regex)
{
	return json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel",
			 "add_prefix_space", prefix, "trim_offsets", trim,
			 "use_regex", regex);
}

/* The Split regexes llama.cpp's llama-vocab.cpp uses per
 * tokenizer.ggml.pre, as the HF tokenizers of those models spell them. */
static const char llama3_re[] =
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
	"\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
	"\\s+(?!\\S)|\\s+";
static const char qwen2_re[] =
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
	"\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
	"\\s+(?!\\S)|\\s+";

/* The id of the token spelled s, or -1. */
static int64_t tok_named(const struct hf_gguf_value *tok, const char *s)
{
	size_t n = strlen(s);

	for (uint64_t i = 0; i < tok->n; i++)
		if (tok->items[i].len == n && !memcmp(tok->items[i].str, s, n))
			return (int64_t)i;
	return -1;
}

/* A "bert" vocabulary (BertModel.set_vocab: WordPiece in llama.cpp's
 * phantom-space form) back into BERT's tokenizer.json: control tokens as
 * they are, "\u2581x" -> "x" (a word start), any other x -> "##x";
 * BertNormalizer, lowercasing when no other token has an upper-case
 * ASCII letter (what an uncased vocabulary looks like; the file does not
 * say), BertPreTokenizer, [CLS] $A [SEP] (pair: [CLS] $A [SEP] $B:1
 * [SEP]:1), the WordPiece decoder. */
static int build_wordpiece(struct imp *im, const struct hf_gguf_value *tok,
			   const struct hf_gguf_value *tt, json_t **tj,
			   json_t **tc, struct hf_err *err)
{
	struct hf_gguf *g = im->g;
	int64_t cls, sep, unk, pad, mask;
	int add_bos, add_eos, lower = 1, rc;
	json_t *t, *c, *vocab = json_object(), *added = json_array();
	json_t *atd = json_object();

	if ((rc = tok_id(im, "tokenizer.ggml.bos_token_id", &cls, err)) ||
	    (rc = tok_id(im, "tokenizer.ggml.eos_token_id", &sep, err)) ||
	    (rc = tok_id(im, "tokenizer.ggml.unknown_token_id", &unk, err)) ||
	    (rc = tok_id(im, "tokenizer.ggml.padding_token_id", &pad, err)) ||
	    (rc = tok_id(im, "tokenizer.ggml.mask_token_id", &mask, err)) ||
	    (rc = hf_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", 1,
				   &add_bos, err)) ||
	    (rc = hf_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", 1,
				   &add_eos, err)))
		goto fail;
	/* llama.cpp's defaults are BERT's ids; look the spellings up */
	if (cls < 0)
		cls = tok_named(tok, "[CLS]");
	if (sep < 0)
		sep = tok_named(tok, "[SEP]");
	if (unk < 0)
		unk = tok_named(tok, "[UNK]");
	if (pad < 0)
		pad = tok_named(tok, "[PAD]");
	if (mask < 0)
		mask = tok_named(tok, "[MASK]");
	{
		int64_t ids[5] = { cls, sep, unk, pad, mask };

		for (int k = 0; k < 5; k++)
			if (ids[k] >= (int64_t)tok->n) {
				rc = hf_err_set(err, HF_EFORMAT, "'%s': a "
						"special token id %lld past the "
						"%llu tokens", im->path,
						(long long)ids[k],
						(unsigned long long)tok->n);
				goto fail;
			}
	}
	if (unk < 0) {
		rc = hf_err_set(err, HF_EFORMAT, "'%s': a 'bert' vocabulary "
				"without an unknown token", im->path);
		goto fail;
	}
	for (uint64_t i = 0; i < tok->n; i++) {
		int64_t ty = tt ? hf_gguf_arr_int(tt, i) : TT_NORMAL;
		const char *x = tok->items[i].str;
		size_t n = tok->items[i].len;

		if (ty == TT_CONTROL)
			continue;
		for (size_t k = 0; k < n && lower; k++)
			if (x[k] >= 'A' && x[k] <= 'Z')
				lower = 0;
	}
	for (uint64_t i = 0; i < tok->n; i++) {
		int64_t ty = tt ? hf_gguf_arr_int(tt, i) : TT_NORMAL;
		const char *x = tok->items[i].str;
		size_t n = tok->items[i].len;
		char *w = malloc(n + 3);
		size_t wl;

		if (!w) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto fail;
		}
		if (ty == TT_CONTROL) {
			memcpy(w, x, n);
			wl = n;
		} else if (n >= 3 && !memcmp(x, "\342\226\201", 3)) {
			memcpy(w, x + 3, n - 3);
			wl = n - 3;
		} else {
			memcpy(w, "##", 2);
			memcpy(w + 2, x, n);
			wl = n + 2;
		}
		json_t *ws = json_stringn(w, wl);

		free(w);
		if (!ws) {
			rc = hf_err_set(err, HF_EUTF8, "'%s': token %llu is "
					"not valid UTF-8", im->path,
					(unsigned long long)i);
			goto fail;
		}
		if (json_object_get(vocab, json_string_value(ws))) {
			rc = hf_err_set(err, HF_EFORMAT, "'%s': token %llu "
					"('%s') twice in the WordPiece "
					"vocabulary", im->path,
					(unsigned long long)i,
					json_string_value(ws));
			json_decref(ws);
			goto fail;
		}
		json_object_set_new(vocab, json_string_value(ws),
				    json_integer((json_int_t)i));
		if (ty == TT_CONTROL || ty == TT_USER) {
			int special = ty == TT_CONTROL;
			json_t *a = json_pack("{s:I,s:O,s:b,s:b,s:b,s:b,s:b}",
				"id", (json_int_t)i, "content", ws,
				"single_word", 0, "lstrip", 0, "rstrip", 0,
				"normalized", !special, "special", special);
			json_t *d = json_deep_copy(a);
			char ks[32];

			json_array_append_new(added, a);
			json_object_del(d, "id");
			snprintf(ks, sizeof(ks), "%llu", (unsigned long long)i);
			json_object_set_new(atd, ks, d);
		}
		json_decref(ws);
	}
	json_t *single = json_array(), *pair = json_array(), *sp = json_object();
	int64_t ends[2] = { add_bos ? cls : -1, add_eos ? sep : -1 };

	for (int q = 0; q < 2; q++) {
		json_t *arr = q ? pair : single;

		if (ends[0] >= 0)
			json_array_append_new(arr, json_pack("{s:{s:o,s:i}}",
				"SpecialToken", "id", tok_str(tok, ends[0]),
				"type_id", 0));
		for (int sq = 0; sq <= q; sq++) {
			json_array_append_new(arr, json_pack("{s:{s:s,s:i}}",
				"Sequence", "id", sq ? "B" : "A", "type_id",
				sq));
			if (ends[1] >= 0)
				json_array_append_new(arr, json_pack(
					"{s:{s:o,s:i}}", "SpecialToken", "id",
					tok_str(tok, ends[1]), "type_id", sq));
		}
	}
	for (int k = 0; k < 2; k++) {
		if (ends[k] < 0)
			continue;
		json_t *name = tok_str(tok, ends[k]);

		json_object_set_new(sp, json_string_value(name), json_pack(
			"{s:O,s:[I],s:[O]}", "id", name, "ids",
			(json_int_t)ends[k], "tokens", name));
		json_decref(name);
	}
	t = json_object();
	json_object_set_new(t, "version", json_string("1.0"));
	json_object_set_new(t, "truncation", json_null());
	json_object_set_new(t, "padding", json_null());
	json_object_set_new(t, "added_tokens", added);
	json_object_set_new(t, "normalizer", json_pack(
		"{s:s,s:b,s:b,s:n,s:b}", "type", "BertNormalizer",
		"clean_text", 1, "handle_chinese_chars", 1, "strip_accents",
		"lowercase", lower));
	json_object_set_new(t, "pre_tokenizer", json_pack("{s:s}", "type",
				"BertPreTokenizer"));
	json_object_set_new(t, "post_processor", json_pack(
		"{s:s,s:o,s:o,s:o}", "type", "TemplateProcessing", "single",
		single, "pair", pair, "special_tokens", sp));
	json_object_set_new(t, "decoder", json_pack("{s:s,s:s,s:b}", "type",
				"WordPiece", "prefix", "##", "cleanup", 1));
	json_object_set_new(t, "model", json_pack(
		"{s:s,s:o,s:s,s:i,s:o}", "type", "WordPiece", "unk_token",
		tok_str(tok, unk), "continuing_subword_prefix", "##",
		"max_input_chars_per_word", 100, "vocab", vocab));
	c = json_object();
	json_object_set_new(c, "added_tokens_decoder", atd);
	json_object_set_new(c, "clean_up_tokenization_spaces", json_true());
	json_object_set_new(c, "do_lower_case", json_boolean(lower));
	{
		static const char *const nm[] = { "cls_token", "sep_token",
			"unk_token", "pad_token", "mask_token" };
		int64_t ids[5] = { cls, sep, unk, pad, mask };

		for (int k = 0; k < 5; k++)
			json_object_set_new(c, nm[k], ids[k] >= 0 ?
					    tok_str(tok, ids[k]) : json_null());
	}
	json_object_set_new(c, "tokenizer_class",
			    json_string("BertTokenizerFast"));
	*tj = t;
	*tc = c;
	return 0;
fail:
	json_decref(vocab);
	json_decref(added);
	json_decref(atd);
	return rc;
}

static int build_tokenizer(struct imp *im, json_t **tj, json_t **tc,
			   struct hf_err *err)
{
	struct hf_gguf *g = im->g;
	const char *model, *pre, *tmpl;
	size_t ml, pl, tl;
	int rc, add_bos, add_eos, spm, space = 1;
	int64_t bos, eos, unk, pad;
	const struct hf_gguf_value *tok, *sc, *tt, *mg;
	struct vocab v = { 0 };
	json_t *t = NULL, *c = NULL, *added, *vocab, *merges, *atd;

	*tj = *tc = NULL;
	if ((rc = hf_gguf_get_str(g, "tokenizer.ggml.model", &model, &ml,
				  err)))
		return rc;
	if (!model || (ml == 4 && !memcmp(model, "none", 4)))
		return 0;	/* token ids only: no tokenizer files */
	spm = ml == 5 && !memcmp(model, "llama", 5);
	if (ml == 4 && !memcmp(model, "bert", 4)) {
		tok = hf_gguf_get(g, "tokenizer.ggml.tokens");
		tt = hf_gguf_get(g, "tokenizer.ggml.token_type");
		if (!tok || tok->type != HF_GGUF_ARRAY ||
		    tok->elem != HF_GGUF_STRING || tok->n == 0)
			return hf_err_set(err, HF_EFORMAT, "'%s': "
					  "tokenizer.ggml.tokens is missing or "
					  "not an array of strings", im->path);
		if (tt && (tt->type != HF_GGUF_ARRAY ||
			   tt->elem == HF_GGUF_STRING ||
			   tt->elem == HF_GGUF_ARRAY || tt->n != tok->n))
			return hf_err_set(err, HF_EFORMAT, "'%s': "
					  "tokenizer.ggml.token_type is not one "
					  "number per token", im->path);
		return build_wordpiece(im, tok, tt, tj, tc, err);
	}
	if (!spm && !(ml == 4 && !memcmp(model, "gpt2", 4)))
		return hf_err_set(err, HF_EUNSUPPORTED, "'%s': "
				  "tokenizer.ggml.model '%.*s': only 'llama', "
				  "'gpt2' and 'bert' vocabularies are rebuilt",
				  im->path, (int)(ml > 40 ? 40 : ml), model);
	tok = hf_gguf_get(g, "tokenizer.ggml.tokens");
	sc = hf_gguf_get(g, "tokenizer.ggml.scores");
	tt = hf_gguf_get(g, "tokenizer.ggml.token_type");
	mg = hf_gguf_get(g, "tokenizer.ggml.merges");
	if (!tok || tok->type != HF_GGUF_ARRAY || tok->elem != HF_GGUF_STRING
	    || tok->n == 0)
		return hf_err_set(err, HF_EFORMAT, "'%s': "
				  "tokenizer.ggml.tokens is missing or not an "
				  "array of strings", im->path);
#define NUMARR(a, name)							\
	if (a && (a->type != HF_GGUF_ARRAY || a->elem == HF_GGUF_STRING || \
		  a->elem == HF_GGUF_ARRAY || a->n != tok->n))		\
		return hf_err_set(err, HF_EFORMAT, "'%s': %s is not %llu " \
				  "numbers, one per token", im->path, name, \
				  (unsigned long long)tok->n);
	NUMARR(sc, "tokenizer.ggml.scores")
	NUMARR(tt, "tokenizer.ggml.token_type")
#undef NUMARR
	if (spm && !sc)
		return hf_err_set(err, HF_EFORMAT, "'%s': a 'llama' "
				  "vocabulary without tokenizer.ggml.scores",
				  im->path);
	if (!spm && (!mg || mg->type != HF_GGUF_ARRAY ||
		     (mg->n && mg->elem != HF_GGUF_STRING)))
		return hf_err_set(err, HF_EFORMAT, "'%s': a 'gpt2' vocabulary "
				  "without tokenizer.ggml.merges strings",
				  im->path);
	if ((rc = tok_id(im, "tokenizer.ggml.bos_token_id", &bos, err)) ||
	    (rc = tok_id(im, "tokenizer.ggml.eos_token_id", &eos, err)) ||
	    (rc = tok_id(im, "tokenizer.ggml.unknown_token_id", &unk, err)) ||
	    (rc = tok_id(im, "tokenizer.ggml.padding_token_id", &pad, err)) ||
	    (rc = hf_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", spm,
				   &add_bos, err)) ||
	    (rc = hf_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", 0,
				   &add_eos, err)) ||
	    (rc = hf_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", 1,
				   &space, err)) ||
	    (rc = hf_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pl, err)) ||
	    (rc = hf_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &tl,
				  err)))
		return rc;
	int64_t ids[4] = { bos, eos, unk, pad };
	const char *idn[4] = { "bos", "eos", "unknown", "padding" };

	for (int k = 0; k < 4; k++)
		if (ids[k] >= (int64_t)tok->n)
			return hf_err_set(err, HF_EFORMAT, "'%s': "
					  "tokenizer.ggml.%s_token_id %lld is "
					  "past the %llu tokens", im->path,
					  idn[k], (long long)ids[k],
					  (unsigned long long)tok->n);
	if (spm && unk < 0 && tt)
		for (uint64_t i = 0; i < tok->n && unk < 0; i++)
			if (hf_gguf_arr_int(tt, i) == TT_UNKNOWN)
				unk = (int64_t)i;
	for (uint64_t i = 0; i < tok->n; i++) {
		json_t *s = json_stringn(tok->items[i].str, tok->items[i].len);

		if (!s)
			return hf_err_set(err, HF_EUTF8, "'%s': token %llu is "
					  "not valid UTF-8", im->path,
					  (unsigned long long)i);
		json_decref(s);
	}
	if (vocab_init(&v, tok))
		return hf_err_set(err, HF_ENOMEM, "out of memory");

	t = json_object();
	added = json_array();
	atd = json_object();
	vocab = json_object();
	merges = json_array();
	json_object_set_new(t, "version", json_string("1.0"));
	json_object_set_new(t, "truncation", json_null());
	json_object_set_new(t, "padding", json_null());
	/* added tokens: control (and SPM's unknown) special, user-defined
	 * not, both matched whole and not normalized */
	for (uint64_t i = 0; i < tok->n; i++) {
		int64_t ty = tt ? hf_gguf_arr_int(tt, i) : TT_NORMAL;
		int special = ty == TT_CONTROL || (int64_t)i == unk ||
			      (!tt && ((int64_t)i == bos || (int64_t)i == eos));

		if (!special && ty != TT_USER)
			continue;
		json_t *a = json_pack("{s:I,s:o,s:b,s:b,s:b,s:b,s:b}", "id",
			(json_int_t)i, "content", tok_str(tok, (int64_t)i),
			"single_word", 0, "lstrip", 0, "rstrip", 0,
			"normalized", 0, "special", special);
		char ks[32];

		json_array_append(added, a);
		snprintf(ks, sizeof(ks), "%llu", (unsigned long long)i);
		json_t *d = json_deep_copy(a);

		json_object_del(d, "id");
		json_object_set_new(atd, ks, d);
		json_decref(a);
	}
	json_object_set_new(t, "added_tokens", added);
	for (uint64_t i = 0; i < tok->n; i++)
		json_object_setn_new(vocab, tok->items[i].str,
				     tok->items[i].len,
				     json_integer((json_int_t)i));
	if (spm) {
		if ((rc = spm_merges(&v, sc, merges, err)))
			goto fail;
		json_object_set_new(t, "normalizer", space ?
			json_pack("{s:s,s:[{s:s,s:s},{s:s,s:{s:s},s:s}]}",
				  "type", "Sequence", "normalizers", "type",
				  "Prepend", "prepend", "\xe2\x96\x81", "type",
				  "Replace", "pattern", "String", " ",
				  "content", "\xe2\x96\x81") :
			json_pack("{s:s,s:{s:s},s:s}", "type", "Replace",
				  "pattern", "String", " ", "content",
				  "\xe2\x96\x81"));
		json_object_set_new(t, "pre_tokenizer", json_null());
		json_object_set_new(t, "post_processor", add_bos || add_eos ?
			template_proc(tok, add_bos ? bos : -1,
				      add_eos ? eos : -1) : json_null());
		json_t *dec = json_pack("[{s:s,s:{s:s},s:s},{s:s},{s:s}]",
			"type", "Replace", "pattern", "String",
			"\xe2\x96\x81", "content", " ", "type", "ByteFallback",
			"type", "Fuse");

		if (space)
			json_array_append_new(dec, json_pack(
				"{s:s,s:s,s:i,s:i}", "type", "Strip",
				"content", " ", "start", 1, "stop", 0));
		json_object_set_new(t, "decoder", json_pack("{s:s,s:o}",
				    "type", "Sequence", "decoders", dec));
		json_object_set_new(t, "model", json_pack(
			"{s:s,s:n,s:o,s:n,s:n,s:b,s:b,s:b,s:o,s:o}",
			"type", "BPE", "dropout", "unk_token",
			unk >= 0 ? tok_str(tok, unk) : json_null(),
			"continuing_subword_prefix", "end_of_word_suffix",
			"fuse_unk", 1, "byte_fallback", 1, "ignore_merges", 0,
			"vocab", vocab, "merges", merges));
	} else {
		int l3 = pre && pl == 9 && !memcmp(pre, "llama-bpe", 9);
		int q2 = pre && ((pl == 5 && !memcmp(pre, "qwen2", 5)));

		for (uint64_t i = 0; i < mg->n; i++) {
			const char *s = mg->items[i].str;
			size_t n = mg->items[i].len;
			const char *sp = memchr(s, ' ', n);

			if (!sp || sp == s || sp == s + n - 1 ||
			    memchr(sp + 1, ' ', (size_t)(s + n - sp - 1))) {
				rc = hf_err_set(err, HF_EFORMAT, "'%s': merge "
						"%llu is not two tokens and a "
						"space", im->path,
						(unsigned long long)i);
				goto fail;
			}
			json_array_append_new(merges, json_pack("[s%s%]",
				s, (size_t)(sp - s), sp + 1,
				(size_t)(s + n - sp - 1)));
		}
		json_object_set_new(t, "normalizer", q2 ?
				    json_pack("{s:s}", "type", "NFC") :
				    json_null());
		if (l3 || q2)
			json_object_set_new(t, "pre_tokenizer", json_pack(
				"{s:s,s:[{s:s,s:{s:s},s:s,s:b},o]}", "type",
				"Sequence", "pretokenizers", "type", "Split",
				"pattern", "Regex", l3 ? llama3_re : qwen2_re,
				"behavior", "Isolated", "invert", 0,
				byte_level(0, l3, 0)));
		else
			json_object_set_new(t, "pre_tokenizer",
					    byte_level(0, 1, 1));
		json_t *pp = byte_level(!q2, 0, !q2);

		if (add_bos || add_eos)
			pp = json_pack("{s:s,s:[o,o]}", "type", "Sequence",
				       "processors", pp, template_proc(tok,
				       add_bos ? bos : -1,
				       add_eos ? eos : -1));
		json_object_set_new(t, "post_processor", pp);
		json_object_set_new(t, "decoder", byte_level(!q2, !q2, !q2));
		json_object_set_new(t, "model", json_pack(
			"{s:s,s:n,s:n,s:s,s:s,s:b,s:b,s:b,s:o,s:o}",
			"type", "BPE", "dropout", "unk_token",
			"continuing_subword_prefix", "", "end_of_word_suffix",
			"", "fuse_unk", 0, "byte_fallback", 0,
			"ignore_merges", l3, "vocab", vocab, "merges",
			merges));
	}
	vocab = merges = NULL;

	c = json_object();
	json_object_set_new(c, "add_bos_token", json_boolean(add_bos));
	json_object_set_new(c, "add_eos_token", json_boolean(add_eos));
	json_object_set_new(c, "added_tokens_decoder", atd);
	atd = NULL;
	json_object_set_new(c, "bos_token", bos >= 0 ? tok_str(tok, bos) :
			    json_null());
	if (tmpl)
		json_object_set_new(c, "chat_template",
				    json_stringn(tmpl, tl));
	json_object_set_new(c, "clean_up_tokenization_spaces", json_false());
	json_object_set_new(c, "eos_token", eos >= 0 ? tok_str(tok, eos) :
			    json_null());
	if (spm)
		json_object_set_new(c, "legacy", json_true());
	uint64_t ctx;

	if ((rc = hf_gguf_get_uint(g, akey(im, "context_length"), 0, &ctx,
				   err)))
		goto fail;
	if (ctx)
		json_object_set_new(c, "model_max_length",
				    json_integer((json_int_t)ctx));
	json_object_set_new(c, "pad_token", pad >= 0 ? tok_str(tok, pad) :
			    json_null());
	json_object_set_new(c, "tokenizer_class", json_string(
		spm ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast"));
	json_object_set_new(c, "unk_token", unk >= 0 ? tok_str(tok, unk) :
			    json_null());
	free(v.slot);
	*tj = t;
	*tc = c;
	return 0;
fail:
	free(v.slot);
	json_decref(vocab);
	json_decref(merges);
	json_decref(atd);
	json_decref(t);
	json_decref(c);
	return rc;
}

static json_t *generation_config(struct imp *im, struct hf_err *err)
{
	json_t *gc = json_object();
	int64_t id;

	json_object_set_new(gc, "_from_model_config", json_true());
	if (!tok_id(im, "tokenizer.ggml.bos_token_id", &id, err) && id >= 0)
		json_object_set_new(gc, "bos_token_id", json_integer(id));
	if (!tok_id(im, "tokenizer.ggml.eos_token_id", &id, err) && id >= 0)
		json_object_set_new(gc, "eos_token_id", json_integer(id));
	if (!tok_id(im, "tokenizer.ggml.padding_token_id", &id, err) &&
	    id >= 0)
		json_object_set_new(gc, "pad_token_id", json_integer(id));
	return gc;
}

/* ---- the directory ---- */

static int write_json(const char *dir, const char *name, const json_t *v,
		      struct hf_err *err)
{
	char *p = hf_path_join(dir, name);
	int rc = 0;

	if (!p)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (json_dump_file(v, p, JSON_INDENT(2) | JSON_SORT_KEYS))
		rc = hf_err_errno(err, "writing '%s'", p);
	free(p);
	return rc;
}

/* Remove the flat directory we made (its files, then itself). */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d))) {
			char *p;

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if ((p = hf_path_join(dir, e->d_name))) {
				unlink(p);
				free(p);
			}
		}
		closedir(d);
	}
	rmdir(dir);
}

static int pick_family(struct imp *im, struct hf_err *err)
{
	struct hf_gguf *g = im->g;
	const char *arch, *name;
	size_t al, nl;
	uint64_t ne;
	int rc;

	if ((rc = hf_gguf_get_str(g, "general.architecture", &arch, &al,
				  err)))
		return rc;
	if (!arch)
		return hf_err_set(err, HF_EFORMAT, "'%s': no "
				  "general.architecture", im->path);
	if (memchr(arch, 0, al) || al > 60)
		return hf_err_set(err, HF_EFORMAT, "'%s': bad "
				  "general.architecture", im->path);
	im->arch = strndup(arch, al);
	if (!im->arch)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = hf_gguf_get_str(g, "general.name", &name, &nl, err)) ||
	    (rc = hf_gguf_get_uint(g, akey(im, "expert_count"), 0, &ne, err)))
		return rc;
	im->model_type = im->arch;
	if (!strcmp(im->arch, "llama")) {
		/* the converter writes mistral and mixtral as llama:
		 * transformers tells mistral by its general.name, mixtral
		 * has experts */
		int mistral = 0;

		for (size_t i = 0; name && i + 7 <= nl; i++)
			if (!strncasecmp(name + i, "mistral", 7))
				mistral = 1;
		im->model_type = ne ? "mixtral" : mistral ? "mistral" :
				 "llama";
	}
	if (!strcmp(im->arch, "bert")) {
		/* the converter writes bert, roberta and distilbert as bert:
		 * RoBERTa has a byte-level BPE vocabulary (or says so in
		 * general.name), DistilBERT no token type embeddings */
		const char *tm;
		size_t tml;
		int roberta = 0, distil = 0;

		if ((rc = hf_gguf_get_str(g, "tokenizer.ggml.model", &tm, &tml,
					  err)))
			return rc;
		roberta = tm && tml == 4 && !memcmp(tm, "gpt2", 4);
		for (size_t i = 0; name && i + 7 <= nl; i++)
			if (!strncasecmp(name + i, "roberta", 7))
				roberta = 1;
		distil = !hf_gguf_find_tensor(g, "token_types.weight");
		for (size_t i = 0; name && i + 10 <= nl; i++)
			if (!strncasecmp(name + i, "distilbert", 10))
				distil = 1;
		im->model_type = distil ? "distilbert" : roberta ? "roberta" :
				 "bert";
		if (roberta && !distil) {
			int64_t pad;

			if ((rc = tok_id(im, "tokenizer.ggml.padding_token_id",
					 &pad, err)))
				return rc;
			im->pos_off = (pad >= 0 ? pad : 1) + 1;
		}
	}
	im->fam = hf_family_find(im->model_type);
	if (!im->fam ||
	    !architecture_of(im->model_type) ||
	    strcmp(im->fam->arch, im->arch))
		return hf_err_set(err, HF_EUNSUPPORTED, "'%s': architecture "
				  "'%s' cannot be read back into HF layout "
				  "(llama, mistral, mixtral, qwen2, qwen3, "
				  "gemma, phi3, gpt2, bert can)", im->path,
				  im->arch);
	return 0;
}

int hf_gguf_to_hf(const char *path, const char *out_dir,
		  const struct hf_gguf_import_opts *o, struct hf_err *err)
{
	struct imp im = { 0 };
	json_t *cfg = NULL, *gen = NULL, *tj = NULL, *tc = NULL;
	struct out_tensor *ts = NULL;
	struct hf_st_writer *w = NULL;
	char *tmp = NULL, *st = NULL, *old = NULL;
	size_t nts = 0;
	int rc, made = 0;

	im.path = path;
	if (!o->force && (hf_dir_exists(out_dir) || hf_file_exists(out_dir)))
		return hf_err_set(err, HF_EINVAL, "'%s' exists (--force "
				  "replaces it)", out_dir);
	if ((rc = hf_gguf_open(&im.g, path, err)))
		return rc;
	if ((rc = pick_family(&im, err)))
		goto fail;
	if (!o->dtype)
		im.dtype = default_dtype(im.g);
	else if (!strcmp(o->dtype, "f32") || !strcmp(o->dtype, "float32"))
		im.dtype = HF_DTYPE_F32;
	else if (!strcmp(o->dtype, "f16") || !strcmp(o->dtype, "float16"))
		im.dtype = HF_DTYPE_F16;
	else if (!strcmp(o->dtype, "bf16") || !strcmp(o->dtype, "bfloat16"))
		im.dtype = HF_DTYPE_BF16;
	else {
		rc = hf_err_set(err, HF_EINVAL, "dtype '%s': want f32, f16 "
				"or bf16 (float32, float16, bfloat16)",
				o->dtype);
		goto fail;
	}
	if ((rc = build_config(&im, &cfg, err)) ||
	    (rc = plan_tensors(&im, &ts, &nts, err)) ||
	    (rc = build_tokenizer(&im, &tj, &tc, err)))
		goto fail;
	if (!(gen = generation_config(&im, err))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = hf_st_writer_new(&w, err)))
		goto fail;
	for (size_t i = 0; i < nts; i++)
		if ((rc = hf_st_writer_add_fn(w, ts[i].name, im.dtype,
					      ts[i].ndim, ts[i].shape, fill,
					      &ts[i], err)))
			goto fail;

	/* everything goes into <out>.tmp.<pid>, renamed when complete */
	size_t n = strlen(out_dir) + 32;

	if (!(tmp = malloc(n)) || !(old = malloc(n))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(tmp, n, "%s.tmp.%ld", out_dir, (long)getpid());
	snprintf(old, n, "%s.old.%ld", out_dir, (long)getpid());
	if (mkdir(tmp, 0755)) {
		rc = hf_err_errno(err, "creating '%s'", tmp);
		goto fail;
	}
	made = 1;
	if (!(st = hf_path_join(tmp, "model.safetensors"))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = hf_st_writer_write(w, st, err)) ||
	    (rc = write_json(tmp, "config.json", cfg, err)) ||
	    (rc = write_json(tmp, "generation_config.json", gen, err)) ||
	    (tj && (rc = write_json(tmp, "tokenizer.json", tj, err))) ||
	    (tc && (rc = write_json(tmp, "tokenizer_config.json", tc, err))))
		goto fail;
	int had = hf_dir_exists(out_dir) || hf_file_exists(out_dir);

	if (had && rename(out_dir, old)) {
		rc = hf_err_errno(err, "moving the old '%s' aside", out_dir);
		goto fail;
	}
	if (rename(tmp, out_dir)) {
		rc = hf_err_errno(err, "renaming '%s' to '%s'", tmp, out_dir);
		if (had)
			rename(old, out_dir);
		goto fail;
	}
	made = 0;
	if (had) {
		if (hf_dir_exists(old))
			remove_dir(old);
		else
			unlink(old);
	}
	rc = 0;
fail:
	if (made)
		remove_dir(tmp);
	free(tmp);
	free(old);
	free(st);
	hf_st_writer_free(w);
	free(ts);
	free(im.cache);
	json_decref(cfg);
	json_decref(gen);
	json_decref(tj);
	json_decref(tc);
	free((char *)im.arch);
	hf_gguf_free(im.g);
	return rc;
}
