/* lib/model/rope.c: RoPE inverse frequencies as transformers'
 * modeling_rope_utils.py builds them (default, linear, dynamic, llama3,
 * yarn, longrope), in float32 like the torch code, and how they follow
 * the sequence length past max_position_embeddings. */
#include "model/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ROPE_STATIC, ROPE_DYNAMIC, ROPE_LONG };

/* _compute_default_rope_parameters: 1 / base^(arange(0, dim, 2) / dim). */
static void default_inv_freq(float *f, size_t dim, float base)
{
	for (size_t i = 0; i < dim / 2; i++)
		f[i] = 1.0f / powf(base, (float)(2 * i) / (float)dim);
}

/* The pre-scaling context of llama3, yarn and longrope, as transformers
 * 5's standardize_rope_params() settles it: a top-level
 * original_max_position_embeddings (Phi-3 writes one) first, then the one
 * in rope_scaling, else max_position_embeddings. 0 if none. */
static int orig_ctx(struct hf_model *m, int64_t *out, struct hf_err *err)
{
	int64_t top = 0;

	*out = 0;
	if (hf_json_int(m->cfg->text, "original_max_position_embeddings", 0,
			&top, "config.json", err))
		return hf_err_prefix(err, "%s", m->dir);
	*out = top > 0 ? top :
	       m->cfg->rope_scaling.original_max_position_embeddings > 0 ?
	       m->cfg->rope_scaling.original_max_position_embeddings :
	       (int64_t)m->max_pos;
	return 0;
}

/* _compute_llama3_parameters: long wavelengths divided by factor, short
 * ones kept, a smooth blend between. Python scalars meet float32 tensors
 * there, so each is rounded to float where it meets one. */
static void llama3(float *f, size_t n, const struct hf_rope_scaling *rs,
		   double old)
{
	float factor = (float)rs->factor, lo = (float)rs->low_freq_factor;
	float span = (float)(rs->high_freq_factor - rs->low_freq_factor);
	float lo_wl = (float)(old / rs->low_freq_factor);
	float hi_wl = (float)(old / rs->high_freq_factor);

	for (size_t i = 0; i < n; i++) {
		float wl = (float)(2.0 * M_PI) / f[i];
		float v = wl > lo_wl ? f[i] / factor : f[i];

		if (!(wl < hi_wl) && !(wl > lo_wl)) {
			float s = ((float)old / wl - lo) / span;

			v = (1.0f - s) * v / factor + s * v;
		}
		f[i] = v;
	}
}

/* get_mscale of _compute_yarn_parameters. */
static double yarn_mscale(double scale, double mscale)
{
	return scale <= 1.0 ? 1.0 : 0.1 * mscale * log(scale) + 1.0;
}

/* find_correction_dim: the dimension whose wavelength makes num_rot
 * rotations over the original context. */
static double yarn_dim(double num_rot, double dim, double base, double ctx)
{
	return dim * log(ctx / (num_rot * 2.0 * M_PI)) / (2.0 * log(base));
}

/* _compute_yarn_parameters (transformers 4.56 and later): interpolate
 * (divide by factor) the low frequencies, keep (extrapolate) the high
 * ones, a linear ramp between the dims that make beta_fast and beta_slow
 * rotations over original_max_position_embeddings; cos and sin scaled by
 * the attention factor. factor is the one config.json gives (4.50 to
 * 4.55 used max_position_embeddings / original_max_position_embeddings
 * instead where both were set; later releases warn and keep factor),
 * the ratio only when there is no factor. The frequencies do not depend
 * on the sequence length. */
static int yarn(struct hf_model *m, const struct hf_rope_scaling *rs,
		struct hf_err *err)
{
	const json_t *j = rs->json;
	double factor = rs->factor, dim = (double)m->rot_dim, base = m->rope_theta;
	double af, ms, msad, bf, bs, lo, hi;
	int64_t ctx;
	int trunc = 1;
	size_t n = m->rot_dim / 2;

	if (hf_json_num(j, "attention_factor", NAN, &af, "rope_scaling", err) ||
	    hf_json_num(j, "mscale", 0, &ms, "rope_scaling", err) ||
	    hf_json_num(j, "mscale_all_dim", 0, &msad, "rope_scaling", err) ||
	    hf_json_num(j, "beta_fast", 0, &bf, "rope_scaling", err) ||
	    hf_json_num(j, "beta_slow", 0, &bs, "rope_scaling", err) ||
	    hf_json_bool(j, "truncate", 1, &trunc, "rope_scaling", err))
		return hf_err_prefix(err, "%s/config.json", m->dir);
	if (orig_ctx(m, &ctx, err))
		return err->code;
	if (factor <= 0 && ctx > 0)
		factor = (double)m->max_pos / (double)ctx;
	if (factor <= 0 || ctx <= 0)
		return hf_err_set(err, HF_EFORMAT,
				  "%s/config.json: rope_scaling yarn needs a factor "
				  "and max_position_embeddings", m->dir);
	/* `get("beta_fast") or 32`: 0 and null take the default too */
	bf = bf != 0 ? bf : 32;
	bs = bs != 0 ? bs : 1;
	if (isnan(af))
		af = ms != 0 && msad != 0 ? yarn_mscale(factor, ms) /
						    yarn_mscale(factor, msad) :
					    yarn_mscale(factor, 1.0);
	lo = yarn_dim(bf, dim, base, (double)ctx);
	hi = yarn_dim(bs, dim, base, (double)ctx);
	if (trunc) {
		lo = floor(lo);
		hi = ceil(hi);
	}
	lo = lo > 0 ? lo : 0;
	hi = hi < dim - 1 ? hi : dim - 1;
	if (lo == hi)
		hi += 0.001;
	for (size_t i = 0; i < n; i++) {
		float pf = powf((float)base, (float)(2 * i) / (float)dim);
		float ext = 1.0f / pf, itp = 1.0f / ((float)factor * pf);
		float ramp = ((float)i - (float)lo) / (float)(hi - lo);
		float ef;

		ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
		ef = 1.0f - ramp;
		m->inv_freq_host[i] = itp * (1.0f - ef) + ext * ef;
	}
	m->rope_scaling = (float)af;
	return 0;
}

/* One of longrope's factor lists: n numbers. */
static int long_list(struct hf_model *m, const char *key, float *f, size_t n,
		     struct hf_err *err)
{
	const json_t *a = json_object_get(m->cfg->rope_scaling.json, key), *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) != n)
		return hf_err_set(err, HF_EFORMAT,
				  "%s/config.json: rope_scaling longrope needs "
				  "'%s', a list of %zu numbers", m->dir, key, n);
	json_array_foreach(a, i, v) {
		if (!json_is_number(v) || !(json_number_value(v) > 0))
			return hf_err_set(err, HF_EFORMAT,
					  "%s/config.json: rope_scaling '%s'[%zu] "
					  "is not a positive number", m->dir, key,
					  i);
		f[i] = (float)json_number_value(v);
	}
	return 0;
}

/* _compute_longrope_parameters (transformers 5): each frequency divided
 * by short_factor[i] up to original_max_position_embeddings and by
 * long_factor[i] past it; cos and sin scaled by
 * sqrt(1 + log(factor) / log(original)) unless attention_factor is given,
 * factor defaulting to max_position_embeddings / original. (4.x took that
 * ratio even where factor was set; Phi-3 sets none, so both agree.) The
 * short list goes to inv_freq_host[0, n), the long one to [n, 2n). */
static int longrope(struct hf_model *m, struct hf_err *err)
{
	const struct hf_rope_scaling *rs = &m->cfg->rope_scaling;
	size_t n = m->rot_dim / 2;
	double factor = rs->factor, af;
	float *ef = malloc(2 * n * sizeof(float));
	int64_t ctx;
	int rc;

	if (!ef)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = long_list(m, "short_factor", ef, n, err)) ||
	    (rc = long_list(m, "long_factor", ef + n, n, err)))
		goto out;
	if (hf_json_num(rs->json, "attention_factor", NAN, &af, "rope_scaling",
			err) || orig_ctx(m, &ctx, err)) {
		rc = hf_err_prefix(err, "%s/config.json", m->dir);
		goto out;
	}
	if (ctx <= 0) {
		rc = hf_err_set(err, HF_EFORMAT,
				"%s/config.json: rope_scaling longrope needs "
				"original_max_position_embeddings", m->dir);
		goto out;
	}
	if (factor <= 0)
		factor = (double)m->max_pos / (double)ctx;
	if (isnan(af))
		af = factor <= 1.0 ? 1.0 :
		     sqrt(1.0 + log(factor) / log((double)ctx));
	for (size_t i = 0; i < n; i++) {
		float p = powf((float)m->rope_theta, (float)(2 * i) /
						      (float)m->rot_dim);

		m->inv_freq_host[i] = 1.0f / (ef[i] * p);
		m->inv_freq_host[n + i] = 1.0f / (ef[n + i] * p);
	}
	m->rope_scaling = (float)af;
	m->rope_orig = (size_t)ctx;
	m->rope_dynamic = ROPE_LONG;
out:
	free(ef);
	return rc;
}

int rope_init(struct hf_model *m, struct hf_err *err)
{
	const struct hf_rope_scaling *rs = &m->cfg->rope_scaling;
	const char *type = rs->type ? rs->type : "";
	double prf = 1.0;
	int64_t old;
	size_t n;

	if (hf_json_num(m->cfg->text, "partial_rotary_factor", 1.0, &prf,
			"config.json", err))
		return err->code;
	m->rot_dim = (size_t)((double)m->hd * prf);
	m->rot_dim &= ~(size_t)1;
	if (!m->rot_dim || m->rot_dim > m->hd)
		return hf_err_set(err, HF_EFORMAT,
				  "%s/config.json: partial_rotary_factor %g gives "
				  "%zu rotary dims of head_dim %zu", m->dir, prf,
				  m->rot_dim, m->hd);
	n = m->rot_dim / 2;
	m->rope_theta = m->cfg->rope_theta;
	m->rope_scaling = 1.0f;
	m->rope_factor = rs->factor;
	/* room for longrope's second set */
	m->inv_freq_host = malloc(2 * n * sizeof(float));
	if (!m->inv_freq_host)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	default_inv_freq(m->inv_freq_host, m->rot_dim, (float)m->rope_theta);
	if (!*type || !strcmp(type, "default")) {
		/* plain */
	} else if (!strcmp(type, "linear")) {
		for (size_t i = 0; i < n; i++)
			m->inv_freq_host[i] /= (float)rs->factor;
	} else if (!strcmp(type, "llama3")) {
		if (orig_ctx(m, &old, err))
			return err->code;
		if (rs->factor <= 0 || old <= 0 ||
		    rs->high_freq_factor <= rs->low_freq_factor)
			return hf_err_set(err, HF_EFORMAT,
					  "%s/config.json: rope_scaling llama3 needs "
					  "factor, low_freq_factor < high_freq_factor "
					  "and original_max_position_embeddings",
					  m->dir);
		llama3(m->inv_freq_host, n, rs, (double)old);
	} else if (!strcmp(type, "dynamic")) {
		if (rs->factor <= 0)
			return hf_err_set(err, HF_EFORMAT,
					  "%s/config.json: rope_scaling dynamic "
					  "needs a factor", m->dir);
		m->rope_dynamic = ROPE_DYNAMIC;
		m->dyn_len = m->max_pos;
	} else if (!strcmp(type, "yarn")) {
		if (yarn(m, rs, err))
			return err->code;
	} else if (!strcmp(type, "longrope")) {
		if (longrope(m, err))
			return err->code;
	} else {
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s/config.json: rope_scaling type '%s' is not "
				  "supported (default, linear, dynamic, llama3, "
				  "yarn, longrope)",
				  m->dir, type);
	}
	if (ws_alloc(m, &m->inv_freq, HF_DTYPE_F32, n, err) ||
	    hf_buf_upload(m->inv_freq, 0, m->inv_freq_host, n * sizeof(float),
			  err))
		return err->code;
	return 0;
}

/* dynamic_rope_update of transformers, run before each forward call with
 * len = its largest position + 1 (over the batch), or the length
 * hf_model_set_seq_len() announced if that is larger:
 * - dynamic: _compute_dynamic_ntk_parameters grows the base once len
 *   passes max_position_embeddings (and every time it passes the longest
 *   len so far), and goes back to the original base when a call is
 *   shorter than max_position_embeddings again. Keys already in the
 *   cache keep the rotation they were stored with, as in transformers'
 *   cache. There seq_len is a tensor, so the new base is computed in
 *   float32; so it is here.
 * - longrope: the long factors while len is past
 *   original_max_position_embeddings, the short ones otherwise. */
int rope_update(struct hf_model *m, size_t len, struct hf_err *err)
{
	size_t n = m->rot_dim / 2;
	float f[512];
	const float *src = f;

	if (len < m->seq_len)
		len = m->seq_len;
	if (m->rope_dynamic == ROPE_LONG) {
		int on = len > m->rope_orig;

		if (on == m->rope_long_on)
			return 0;
		m->rope_long_on = on;
		src = m->inv_freq_host + (on ? n : 0);
	} else if (m->rope_dynamic == ROPE_DYNAMIC && n <= 512) {
		if (len > m->dyn_len) {
			float fac = (float)m->rope_factor;
			float x = fac * (float)len / (float)m->max_pos -
				  (float)(m->rope_factor - 1.0);
			float base = (float)m->rope_theta *
				     powf(x, (float)((double)m->rot_dim /
						     (double)(m->rot_dim - 2)));

			default_inv_freq(f, m->rot_dim, base);
			m->dyn_len = len;
		} else if (len < m->max_pos && m->dyn_len > m->max_pos) {
			src = m->inv_freq_host;
			m->dyn_len = m->max_pos;
		} else {
			return 0;
		}
	} else {
		return 0;
	}
	return hf_buf_upload(m->inv_freq, 0, src, n * sizeof(float), err);
}

void hf_model_set_seq_len(struct hf_model *m, size_t len)
{
	m->seq_len = len;
}
