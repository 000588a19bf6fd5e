/* lib/train/sched.c: learning-rate multipliers (see sched.h). */
#include "train/sched.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {
	[HF_SCHED_LINEAR] = "linear",
	[HF_SCHED_COSINE] = "cosine",
	[HF_SCHED_CONSTANT] = "constant",
	[HF_SCHED_CONSTANT_WITH_WARMUP] = "constant_with_warmup",
};

int hf_sched_parse(enum hf_sched_kind *out, const char *name,
		   struct hf_err *err)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i])) {
			*out = (enum hf_sched_kind)i;
			return 0;
		}
	}
	return hf_err_set(err, HF_EINVAL,
			  "unknown schedule '%s' (want linear, cosine, constant or constant_with_warmup)",
			  name);
}

const char *hf_sched_name(enum hf_sched_kind k)
{
	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

int hf_sched_warmup(uint64_t *out, const char *text, uint64_t total,
		    struct hf_err *err)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || *end || errno || !(v >= 0.0) || !isfinite(v))
		return hf_err_set(err, HF_EINVAL,
				  "warmup '%s': want a step count or a ratio in [0, 1)", text);
	if (v < 1.0) {
		*out = (uint64_t)ceil(v * (double)total);
		return 0;
	}
	if (v != floor(v) || v > 1e18)
		return hf_err_set(err, HF_EINVAL,
				  "warmup '%s': a value >= 1 is a step count and must be an integer",
				  text);
	*out = (uint64_t)v;
	return 0;
}

double hf_sched_mult(const struct hf_sched *s, uint64_t step)
{
	double W = (double)s->warmup, T = (double)s->total, x = (double)step;
	double span = T - W > 1.0 ? T - W : 1.0;

	if (s->kind == HF_SCHED_CONSTANT)
		return 1.0;
	if (step < s->warmup)
		return x / (W > 1.0 ? W : 1.0);
	switch (s->kind) {
	case HF_SCHED_LINEAR: {
		double r = (T - x) / span;

		return r > 0.0 ? r : 0.0;
	}
	case HF_SCHED_COSINE: {
		double p = (x - W) / span;
		double r = 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * p));

		return r > 0.0 ? r : 0.0;
	}
	default:
		return 1.0;
	}
}
