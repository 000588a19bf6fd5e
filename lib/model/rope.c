/* lib/model/rope.c: RoPE inverse frequencies as transformers'
 * modeling_rope_utils.py builds them (default, linear, dynamic, llama3,
 * yarn), in float32 like the torch code. */
#include "model/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* _compute_default_rope_parameters: 1 / base^(arange(0, dim, 2) / dim). */
static void default_inv_freq(float *f, size_t dim, float base)
{
	for (size_t i = 0; i < dim / 2; i++)
		f[i] = 1.0f / powf(base, (float)(2 * i) / (float)dim);
}

/* _compute_llama3_parameters: long wavelengths divided by factor, short
 * ones kept, a smooth blend between. */
static void llama3(float *f, size_t n, const struct hf_rope_scaling *rs)
{
	float factor = (float)rs->factor, lo = (float)rs->low_freq_factor;
	float hi = (float)rs->high_freq_factor;
	float old = (float)rs->original_max_position_embeddings;
	float lo_wl = (float)((double)old / rs->low_freq_factor);
	float hi_wl = (float)((double)old / rs->high_freq_factor);

	for (size_t i = 0; i < n; i++) {
		float wl = (1.0f / f[i]) * (float)(2.0 * M_PI);
		float v = wl > lo_wl ? f[i] / factor : f[i];

		if (!(wl < hi_wl) && !(wl > lo_wl)) {
			float s = ((1.0f / wl) * old - lo) / (hi - lo);

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

/* _compute_yarn_parameters: interpolate (divide by factor) the low
 * frequencies, keep (extrapolate) the high ones, a linear ramp between
 * the dims beta_fast and beta_slow rotations long; cos and sin scaled by
 * the attention factor. */
static int yarn(struct hf_model *m, const struct hf_rope_scaling *rs,
		struct hf_err *err)
{
	const json_t *j = rs->json;
	double factor = rs->factor, dim = (double)m->rot_dim, base = m->rope_theta;
	double ctx = (double)m->max_pos, af = 0, ms = 0, msad = 0, bf, bs, lo, hi;
	int trunc = 1;
	size_t n = m->rot_dim / 2;

	if (hf_json_num(j, "attention_factor", 0, &af, "rope_scaling", err) ||
	    hf_json_num(j, "mscale", 0, &ms, "rope_scaling", err) ||
	    hf_json_num(j, "mscale_all_dim", 0, &msad, "rope_scaling", err) ||
	    hf_json_num(j, "beta_fast", 32, &bf, "rope_scaling", err) ||
	    hf_json_num(j, "beta_slow", 1, &bs, "rope_scaling", err) ||
	    hf_json_bool(j, "truncate", 1, &trunc, "rope_scaling", err))
		return hf_err_prefix(err, "%s/config.json", m->dir);
	if (factor <= 0)
		return hf_err_set(err, HF_EFORMAT,
				  "%s/config.json: rope_scaling yarn needs a factor",
				  m->dir);
	/* DeepSeek-V3 and others: the ratio of the two contexts is what
	 * scales attention */
	if (rs->original_max_position_embeddings > 0) {
		ctx = (double)rs->original_max_position_embeddings;
		factor = (double)m->max_pos / ctx;
	}
	if (af <= 0)
		af = ms > 0 && msad > 0 ? yarn_mscale(factor, ms) /
						  yarn_mscale(factor, msad) :
					  yarn_mscale(factor, 1.0);
	lo = yarn_dim(bf, dim, base, ctx);
	hi = yarn_dim(bs, dim, base, ctx);
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

int rope_init(struct hf_model *m, struct hf_err *err)
{
	const struct hf_rope_scaling *rs = &m->cfg->rope_scaling;
	const char *type = rs->type ? rs->type : "";
	double prf = 1.0;
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
	m->inv_freq_host = malloc(n * sizeof(float));
	if (!m->inv_freq_host)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	default_inv_freq(m->inv_freq_host, m->rot_dim, (float)m->rope_theta);
	if (!*type || !strcmp(type, "default")) {
		/* plain */
	} else if (!strcmp(type, "linear")) {
		for (size_t i = 0; i < n; i++)
			m->inv_freq_host[i] /= (float)rs->factor;
	} else if (!strcmp(type, "llama3")) {
		if (rs->factor <= 0 || rs->original_max_position_embeddings <= 0 ||
		    rs->high_freq_factor <= rs->low_freq_factor)
			return hf_err_set(err, HF_EFORMAT,
					  "%s/config.json: rope_scaling llama3 needs "
					  "factor, low_freq_factor < high_freq_factor "
					  "and original_max_position_embeddings",
					  m->dir);
		llama3(m->inv_freq_host, n, rs);
	} else if (!strcmp(type, "dynamic")) {
		if (rs->factor <= 0)
			return hf_err_set(err, HF_EFORMAT,
					  "%s/config.json: rope_scaling dynamic "
					  "needs a factor", m->dir);
		m->rope_dynamic = 1;
		m->dyn_len = m->max_pos;
	} else if (!strcmp(type, "yarn")) {
		if (yarn(m, rs, err))
			return err->code;
	} else {
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s/config.json: rope_scaling type '%s' is not "
				  "supported (default, linear, dynamic, llama3, "
				  "yarn)",
				  m->dir, type);
	}
	if (ws_alloc(m, &m->inv_freq, HF_DTYPE_F32, n, err) ||
	    hf_buf_upload(m->inv_freq, 0, m->inv_freq_host, n * sizeof(float),
			  err))
		return err->code;
	return 0;
}

/* dynamic_rope_update: grow the base when the sequence passes
 * max_position_embeddings, back to the original when it is short again. */
int rope_update(struct hf_model *m, size_t len, struct hf_err *err)
{
	size_t n = m->rot_dim / 2;
	float f[512];
	double base;

	if (!m->rope_dynamic || n > 512)
		return 0;
	if (len > m->dyn_len) {
		double dim = (double)m->rot_dim;

		base = m->rope_theta *
		       pow(m->rope_factor * (double)len / (double)m->max_pos -
			   (m->rope_factor - 1.0), dim / (dim - 2.0));
		default_inv_freq(f, m->rot_dim, (float)base);
		m->dyn_len = len;
	} else if (len < m->max_pos && m->dyn_len > m->max_pos) {
		memcpy(f, m->inv_freq_host, n * sizeof(float));
		m->dyn_len = m->max_pos;
	} else {
		return 0;
	}
	return hf_buf_upload(m->inv_freq, 0, f, n * sizeof(float), err);
}
