/* lib/train/optim.c: parameters, AdamW, clipping (see optim.h). */
#include "train/optim.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int hf_params_add(struct hf_params *ps, const char *name, int ndim,
		  const int64_t *shape, float *w, float *g, const float *init,
		  struct hf_err *err)
{
	struct hf_optparam *p;
	size_t n = 1;

	if (ndim < 0 || ndim > HF_PARAM_MAX_DIMS)
		return hf_err_set(err, HF_EINVAL, "parameter '%s': %d dims", name, ndim);
	if (!w && g)
		return hf_err_set(err, HF_EINVAL, "parameter '%s': a gradient without weights", name);
	if (hf_params_find(ps, name))
		return hf_err_set(err, HF_EINVAL, "parameter '%s' added twice", name);
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return hf_err_set(err, HF_EINVAL, "parameter '%s': negative dim", name);
		n *= (size_t)shape[i];
	}
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? 2 * ps->cap : 64;
		struct hf_optparam *np = realloc(ps->p, cap * sizeof(*np));

		if (!np)
			return hf_err_set(err, HF_ENOMEM, "out of memory adding parameter '%s'", name);
		ps->p = np;
		ps->cap = cap;
	}
	p = &ps->p[ps->n];
	memset(p, 0, sizeof(*p));
	p->name = strdup(name);
	if (!p->name)
		return hf_err_set(err, HF_ENOMEM, "out of memory adding parameter '%s'", name);
	p->ndim = ndim;
	memcpy(p->shape, shape, (size_t)ndim * sizeof(*shape));
	p->n = n;
	p->decay = hf_param_decays(name);
	if (w) {
		p->w = w;
		p->g = g;
	} else {
		p->owns = 1;
		p->w = calloc(n ? n : 1, sizeof(float));
		p->g = calloc(n ? n : 1, sizeof(float));
		if (!p->w || !p->g) {
			free(p->w);
			free(p->g);
			free(p->name);
			return hf_err_set(err, HF_ENOMEM, "out of memory for parameter '%s' (%zu floats)",
					  name, n);
		}
		if (init)
			memcpy(p->w, init, n * sizeof(float));
	}
	ps->n++;
	return 0;
}

void hf_params_free(struct hf_params *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->p[i].owns) {
			free(ps->p[i].w);
			free(ps->p[i].g);
		}
		free(ps->p[i].name);
	}
	free(ps->p);
	memset(ps, 0, sizeof(*ps));
}

struct hf_optparam *hf_params_find(const struct hf_params *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (!strcmp(ps->p[i].name, name))
			return &ps->p[i];
	return NULL;
}

size_t hf_params_numel(const struct hf_params *ps)
{
	size_t n = 0;

	for (size_t i = 0; i < ps->n; i++)
		n += ps->p[i].n;
	return n;
}

void hf_params_zero_grad(struct hf_params *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		if (ps->p[i].g)
			memset(ps->p[i].g, 0, ps->p[i].n * sizeof(float));
}

void hf_params_scale_grad(struct hf_params *ps, float s)
{
	for (size_t i = 0; i < ps->n; i++)
		for (size_t j = 0; ps->p[i].g && j < ps->p[i].n; j++)
			ps->p[i].g[j] *= s;
}

/* s contains pat at a position where it is preceded by start-of-string or
 * '.' (lead) and followed by end-of-string or '.': (?:^|\.)pat(?:$|\.),
 * or with lead 0 just pat(?:$|\.). */
static int has_component(const char *s, const char *pat, int lead)
{
	size_t n = strlen(pat);

	for (const char *p = strstr(s, pat); p; p = strstr(p + 1, pat)) {
		int before = !lead || p == s || p[-1] == '.';
		int after = p[n] == '\0' || p[n] == '.';

		if (before && after)
			return 1;
	}
	return 0;
}

int hf_param_decays(const char *name)
{
	char low[512];
	size_t i;

	for (i = 0; name[i] && i < sizeof(low) - 1; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[i] = '\0';
	if (strstr(low, "bias") || strstr(low, "layernorm") || strstr(low, "rmsnorm"))
		return 0;
	if (has_component(low, "norm", 1) || has_component(low, "_norm", 0))
		return 0;
	/* GPT-2's nn.LayerNorm modules: h.N.ln_1, h.N.ln_2, ln_f */
	if (has_component(low, "ln_1", 1) || has_component(low, "ln_2", 1) ||
	    has_component(low, "ln_f", 1))
		return 0;
	return 1;
}

float hf_params_clip_grad_norm(struct hf_params *ps, float max_norm)
{
	double tot = 0.0;
	float total, coef;

	/* torch: norms = [vector_norm(g)]; total = vector_norm(stack(norms)) */
	for (size_t i = 0; i < ps->n; i++) {
		double ss = 0.0;	/* millions of terms: sum in double */
		float nrm;

		if (!ps->p[i].g)
			continue;
		for (size_t j = 0; j < ps->p[i].n; j++)
			ss += (double)ps->p[i].g[j] * ps->p[i].g[j];
		nrm = (float)sqrt(ss);
		tot += (double)nrm * nrm;
	}
	total = (float)sqrt(tot);
	if (!(max_norm > 0.0f))
		return total;
	coef = max_norm / (total + 1e-6f);
	if (coef < 1.0f)
		hf_params_scale_grad(ps, coef);
	return total;
}

/* ---- AdamW ---- */

struct hf_adamw {
	struct hf_adamw_opts o;
	uint64_t t;
	size_t n;
	size_t *len;	/* (n) floats per parameter */
	float **m, **v;	/* (n) moments */
};

int hf_adamw_new(struct hf_adamw **out, const struct hf_params *ps,
		 const struct hf_adamw_opts *o, struct hf_err *err)
{
	struct hf_adamw *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a)
		goto nomem;
	a->o = *o;
	a->n = ps->n;
	a->len = calloc(ps->n + 1, sizeof(*a->len));
	a->m = calloc(ps->n + 1, sizeof(*a->m));
	a->v = calloc(ps->n + 1, sizeof(*a->v));
	if (!a->len || !a->m || !a->v)
		goto nomem;
	for (size_t i = 0; i < ps->n; i++) {
		a->len[i] = ps->p[i].n;
		a->m[i] = calloc(ps->p[i].n ? ps->p[i].n : 1, sizeof(float));
		a->v[i] = calloc(ps->p[i].n ? ps->p[i].n : 1, sizeof(float));
		if (!a->m[i] || !a->v[i])
			goto nomem;
	}
	*out = a;
	return 0;
nomem:
	hf_adamw_free(a);
	return hf_err_set(err, HF_ENOMEM, "out of memory for the optimizer's moments (%zu parameters)",
			  hf_params_numel(ps));
}

void hf_adamw_free(struct hf_adamw *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++) {
		if (a->m)
			free(a->m[i]);
		if (a->v)
			free(a->v[i]);
	}
	free(a->m);
	free(a->v);
	free(a->len);
	free(a);
}

void hf_adamw_step(struct hf_adamw *a, struct hf_params *ps, double lr)
{
	double bc1, bc2;
	float decay, b1w, b2, b2w, step, bc2s, eps;

	a->t++;
	/* torch computes these scalars in double (Python floats) and the
	 * tensor ops use them as float32 */
	bc1 = 1.0 - pow(a->o.beta1, (double)a->t);
	bc2 = 1.0 - pow(a->o.beta2, (double)a->t);
	decay = (float)(1.0 - lr * a->o.weight_decay);
	b1w = (float)(1.0 - a->o.beta1);
	b2 = (float)a->o.beta2;
	b2w = (float)(1.0 - a->o.beta2);
	step = (float)-(lr / bc1);
	bc2s = (float)sqrt(bc2);
	eps = (float)a->o.eps;
	for (size_t i = 0; i < ps->n && i < a->n; i++) {
		struct hf_optparam *p = &ps->p[i];
		float *m = a->m[i], *v = a->v[i];
		int wd = p->decay && a->o.weight_decay != 0.0;

		if (!p->g)
			continue;
		for (size_t j = 0; j < p->n; j++) {
			float g = p->g[j], w = p->w[j], den;

			if (wd)
				w *= decay;
			/* lerp(m, g, b1w), b1w < 0.5: m + b1w * (g - m) */
			if (b1w < 0.5f)
				m[j] = m[j] + b1w * (g - m[j]);
			else
				m[j] = g - (g - m[j]) * (1.0f - b1w);
			v[j] = v[j] * b2 + b2w * g * g;
			den = sqrtf(v[j]) / bc2s + eps;
			p->w[j] = w + step * (m[j] / den);
		}
	}
}

uint64_t hf_adamw_steps(const struct hf_adamw *a)
{
	return a->t;
}

void hf_adamw_set_steps(struct hf_adamw *a, uint64_t t)
{
	a->t = t;
}

float *hf_adamw_m(struct hf_adamw *a, size_t i)
{
	return i < a->n ? a->m[i] : NULL;
}

float *hf_adamw_v(struct hf_adamw *a, size_t i)
{
	return i < a->n ? a->v[i] : NULL;
}

const struct hf_adamw_opts *hf_adamw_opts(const struct hf_adamw *a)
{
	return &a->o;
}
