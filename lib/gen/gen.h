/* lib/gen/gen.h: text generation on a decoder: the logits processors of
 * transformers' generate() (repetition penalty, temperature, top-k, top-p,
 * min-p, in that order), a seeded RNG, stop conditions, batches of
 * prompts with left padding, and sliding-window perplexity. */
#ifndef HF_GEN_GEN_H
#define HF_GEN_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/model.h"

/* xoshiro256**, seeded through splitmix64: the same seed gives the same
 * stream on every machine. */
struct hf_rng {
	uint64_t s[4];
};

void hf_rng_seed(struct hf_rng *r, uint64_t seed);
uint64_t hf_rng_next(struct hf_rng *r);
double hf_rng_uniform(struct hf_rng *r);	/* [0, 1), 53 bits */

struct hf_sample_params {
	float temperature;	/* 0: greedy (argmax) */
	size_t top_k;		/* 0: off */
	float top_p;		/* 1: off */
	float min_p;		/* 0: off */
	float repeat_penalty;	/* 1: off */
};

/* The defaults: temperature 1, no top-k/top-p/min-p, penalty 1. */
void hf_sample_defaults(struct hf_sample_params *p);

/* Pick a token from logits (V), which are processed in place. hist
 * (nhist ids: the prompt and what came so far) feeds the repetition
 * penalty. scratch: 2 * V floats and V ints of working room. */
struct hf_sampler;
int hf_sampler_new(struct hf_sampler **out, size_t vocab,
		   const struct hf_sample_params *p, uint64_t seed,
		   struct hf_err *err);
void hf_sampler_free(struct hf_sampler *s);	/* NULL is fine */
int32_t hf_sampler_sample(struct hf_sampler *s, float *logits,
			  const int32_t *hist, size_t nhist);

/* The n most likely tokens of log_softmax(logits) (unprocessed), best
 * first, into ids and lp; and the log-probability of token tok. */
float hf_logprobs_top(const float *logits, size_t V, int32_t tok, size_t n,
		      int32_t *ids, float *lp);

enum hf_finish {
	HF_FINISH_NONE,
	HF_FINISH_STOP,		/* an EOS id or a stop string */
	HF_FINISH_LENGTH,	/* max tokens, or the context is full */
};

const char *hf_finish_name(enum hf_finish f);	/* "stop", "length" */

struct hf_gen_opts {
	struct hf_sample_params sp;
	uint64_t seed;
	size_t max_tokens;
	const int64_t *eos;	/* stop ids (not part of the output) */
	size_t neos;
	size_t logprobs;	/* top-N log-probabilities per token */
	/* KV cache tokens per row, the prompt and what is generated: a
	 * prompt that leaves no room is an error, and generation stops
	 * with finish "length" when it is full. 0: the prompt plus
	 * max_tokens. A model with a learned position table never takes
	 * more than its rows. */
	size_t n_ctx;
	/* Called for each new token of row (not for EOS). Return 1 to end
	 * the row (a stop string matched: finish "stop"), -1 to abort the
	 * whole run (err filled by the callee), 0 to go on. */
	int (*on_token)(void *ctx, size_t row, int32_t tok,
			struct hf_err *err);
	void *ctx;
};

/* What one row produced. ids, lp_tok, lp_ids and lp are malloc'd (free
 * with hf_gen_row_free()); lp_ids/lp hold logprobs entries per token. */
struct hf_gen_row {
	int32_t *ids;
	size_t n;
	enum hf_finish finish;
	float *lp_tok;		/* (n) log-probability of each token (0
				 * unless logprobs > 0) */
	int32_t *lp_ids;	/* (n, logprobs) */
	float *lp;		/* (n, logprobs) */
	size_t prompt_tokens;
	double prompt_ms, gen_ms;
};

void hf_gen_row_free(struct hf_gen_row *r);

/* Generate for B prompts at once (left-padded to the longest, positions
 * cumsum(mask) - 1, so each row gets what it would get alone). rows[B]
 * are filled. A prompt that is empty, or that leaves no room in the
 * context (o->n_ctx, or the learned position table), is an
 * HF_ERANGE/HF_EINVAL error naming its length; generation that reaches
 * the end of the context stops with finish "length". A RoPE model runs
 * past max_position_embeddings (with a warning, see hf_model_forward()). */
int hf_gen_run(struct hf_model *m, const int32_t *const *prompts,
	       const size_t *lens, size_t B, const struct hf_gen_opts *o,
	       struct hf_gen_row *rows, struct hf_err *err);

/* Perplexity of ids (n tokens) with a sliding window of ctx tokens moved
 * by stride (the transformers perplexity recipe: each window scores only
 * the tokens the previous one did not). ctx 0: max_position_embeddings;
 * at most the learned position table, where the model has one. *nll: mean negative
 * log-likelihood per scored token; *count: tokens scored. */
int hf_gen_perplexity(struct hf_model *m, const int32_t *ids, size_t n,
		      size_t ctx, size_t stride, double *nll, size_t *count,
		      struct hf_err *err);

#endif
