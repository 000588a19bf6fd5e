/* lib/train/sched.h: learning-rate schedules as transformers.optimization
 * defines them (get_scheduler): a multiplier of the base rate for each
 * optimizer step s = 0, 1, ..., T - 1, stepped once per optimizer step
 * (peft-lora.md s. 9). */
#ifndef HF_TRAIN_SCHED_H
#define HF_TRAIN_SCHED_H

#include <stdint.h>

#include "core/err.h"

enum hf_sched_kind {
	HF_SCHED_LINEAR = 0,		/* transformers' default */
	HF_SCHED_COSINE,
	HF_SCHED_CONSTANT,		/* no warmup: 1 throughout */
	HF_SCHED_CONSTANT_WITH_WARMUP,
};

struct hf_sched {
	enum hf_sched_kind kind;
	uint64_t warmup;	/* W: warmup steps */
	uint64_t total;		/* T: total optimizer steps */
	double num_cycles;	/* cosine: 0.5, one half-cosine */
};

/* "linear", "cosine", "constant", "constant_with_warmup" (the
 * lr_scheduler_type names); anything else is HF_EINVAL naming it. */
int hf_sched_parse(enum hf_sched_kind *out, const char *name,
		   struct hf_err *err);
const char *hf_sched_name(enum hf_sched_kind k);

/* --warmup: an integer >= 0 is exact steps; a number in [0, 1) is a
 * ratio of total steps, W = ceil(ratio * total) (transformers v5's
 * warmup_steps, and warmup_ratio before it). Anything else (negative,
 * not a number, a non-integer >= 1) is HF_EINVAL naming the text. */
int hf_sched_warmup(uint64_t *out, const char *text, uint64_t total,
		    struct hf_err *err);

/* The multiplier at optimizer step s (0-based: the first step uses s = 0,
 * so with warmup it trains at rate 0, as LambdaLR does):
 *   s < W:            s / max(1, W)        (all but constant)
 *   linear:           max(0, (T - s) / max(1, T - W))
 *   cosine:           max(0, 0.5 (1 + cos(pi * 2 * num_cycles * p))),
 *                     p = (s - W) / max(1, T - W)
 *   constant(_with_warmup): 1 */
double hf_sched_mult(const struct hf_sched *s, uint64_t step);

#endif
