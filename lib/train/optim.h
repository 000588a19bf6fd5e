/* lib/train/optim.h: trainable parameters as named float32 tensors, AdamW
 * as torch.optim.AdamW computes it, global-norm clipping as
 * torch.nn.utils.clip_grad_norm_ does, and transformers' rule of which
 * parameters get weight decay.
 *
 * Master weights, gradients and both moments are float32 whatever dtype
 * the forward computes in (peft-lora.md s. 8). */
#ifndef HF_TRAIN_OPTIM_H
#define HF_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define HF_PARAM_MAX_DIMS 8

/* One trainable tensor: w and g are float32 (n) in the HF layout of the
 * tensor called name (its shape as stored). */
struct hf_optparam {
	char *name;		/* owned by the set */
	int ndim;
	int64_t shape[HF_PARAM_MAX_DIMS];
	size_t n;		/* product of shape */
	float *w;		/* master weights */
	float *g;		/* gradient, accumulated with += */
	int decay;		/* weight decay applies (hf_param_decays()) */
	int owns;		/* w and g were allocated by the set */
};

/* A list of parameters in the order they were added (the order of the
 * optimizer's moments and of every checkpoint). Zero-initialise it. */
struct hf_params {
	struct hf_optparam *p;
	size_t n, cap;
};

/* Add name with shape. w and g are borrowed buffers of n floats that must
 * outlive the set, or both NULL: the set allocates them (w copied from
 * init when not NULL, else zero; g zero). w with g NULL is a frozen
 * parameter: kept (and written by checkpoints) but skipped by the
 * gradient functions and the optimizer. decay is set by
 * hf_param_decays(name). A name given twice is HF_EINVAL. */
int hf_params_add(struct hf_params *ps, const char *name, int ndim,
		  const int64_t *shape, float *w, float *g, const float *init,
		  struct hf_err *err);
void hf_params_free(struct hf_params *ps);	/* zeroes it; twice is fine */

/* Borrowed until the set changes; NULL if absent. */
struct hf_optparam *hf_params_find(const struct hf_params *ps, const char *name);
/* Total number of float32 values. */
size_t hf_params_numel(const struct hf_params *ps);

void hf_params_zero_grad(struct hf_params *ps);
/* g *= s for every parameter. */
void hf_params_scale_grad(struct hf_params *ps, float s);

/* transformers' Trainer.get_decay_parameter_names: no decay for a name
 * that, lowercased, contains "bias", "layernorm" or "rmsnorm", or matches
 * (^|\.)norm($|\.) or _norm($|\.); nor for the parameters of
 * nn.LayerNorm modules, which the names of the supported families give
 * away as GPT-2's ln_1, ln_2, ln_f (BERT's LayerNorm, DistilBERT's
 * *_layer_norm and RoBERTa's layer_norm are caught by the patterns).
 * Returns 1 when decay applies. */
int hf_param_decays(const char *name);

/* clip_grad_norm_(max_norm, norm_type=2): the global norm, computed as
 * torch does (a float32 norm per tensor, then the norm of those norms),
 * is returned; when max_norm > 0 every gradient is multiplied by
 * min(1, max_norm / (norm + 1e-6)) in float32. max_norm <= 0: no
 * clipping, the norm only. */
float hf_params_clip_grad_norm(struct hf_params *ps, float max_norm);

/* ---- AdamW ---- */

struct hf_adamw_opts {
	double lr;		/* base learning rate (the schedule scales it) */
	double beta1, beta2;
	double eps;
	double weight_decay;
};

/* TrainingArguments' defaults (peft-lora.md s. 7). */
#define HF_ADAMW_DEFAULTS { 5e-5, 0.9, 0.999, 1e-8, 0.0 }

struct hf_adamw;	/* opaque: moments m, v per parameter, step count */

/* Moments for every parameter of ps, zero. ps must keep its parameters
 * (same count and sizes) while the optimizer lives. */
int hf_adamw_new(struct hf_adamw **out, const struct hf_params *ps,
		 const struct hf_adamw_opts *o, struct hf_err *err);
void hf_adamw_free(struct hf_adamw *a);	/* NULL is fine */

/* One step of torch.optim.AdamW at learning rate lr (the base rate times
 * the schedule's multiplier), in float32 as torch's single-tensor CPU
 * path: t += 1; p *= 1 - lr * wd (parameters with decay, wd != 0);
 * m = m.lerp(g, 1 - b1); v = v * b2 + (1 - b2) * g * g;
 * p += -(lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
void hf_adamw_step(struct hf_adamw *a, struct hf_params *ps, double lr);

/* Steps taken (torch's state "step"), and setting it on resume. */
uint64_t hf_adamw_steps(const struct hf_adamw *a);
void hf_adamw_set_steps(struct hf_adamw *a, uint64_t t);
/* The moments of parameter i (n floats each), borrowed until
 * hf_adamw_free(): torch's exp_avg and exp_avg_sq. */
float *hf_adamw_m(struct hf_adamw *a, size_t i);
float *hf_adamw_v(struct hf_adamw *a, size_t i);
const struct hf_adamw_opts *hf_adamw_opts(const struct hf_adamw *a);

#endif
