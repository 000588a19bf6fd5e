/* lib/gen/sample.c: the RNG and the logits processors of generate(), in
 * transformers' order: RepetitionPenaltyLogitsProcessor, then the
 * Temperature, TopK, TopP and MinP warpers, then multinomial sampling
 * (or argmax when the temperature is 0). */
#include "gen/gen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void hf_rng_seed(struct hf_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t hf_rng_next(struct hf_rng *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

double hf_rng_uniform(struct hf_rng *r)
{
	return (double)(hf_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

void hf_sample_defaults(struct hf_sample_params *p)
{
	p->temperature = 1.0f;
	p->top_k = 0;
	p->top_p = 1.0f;
	p->min_p = 0.0f;
	p->repeat_penalty = 1.0f;
}

struct pair {
	float v;
	int32_t i;
};

/* Descending by value, then ascending by id (a total, stable order). */
static int by_logit_desc(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	if (x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return x->i - y->i;
}

struct hf_sampler {
	size_t V;
	struct hf_sample_params p;
	struct hf_rng rng;
	float *prob;		/* V */
	int32_t *idx;		/* V */
	struct pair *pairs;	/* V */
	unsigned char *seen;	/* V */
};

int hf_sampler_new(struct hf_sampler **out, size_t vocab,
		   const struct hf_sample_params *p, uint64_t seed,
		   struct hf_err *err)
{
	struct hf_sampler *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	s->V = vocab;
	s->p = *p;
	hf_rng_seed(&s->rng, seed);
	s->prob = malloc(vocab * sizeof(float));
	s->idx = malloc(vocab * sizeof(int32_t));
	s->pairs = malloc(vocab * sizeof(struct pair));
	s->seen = calloc(vocab, 1);
	if (!s->prob || !s->idx || !s->pairs || !s->seen) {
		hf_sampler_free(s);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	*out = s;
	return 0;
}

void hf_sampler_free(struct hf_sampler *s)
{
	if (!s)
		return;
	free(s->prob);
	free(s->idx);
	free(s->pairs);
	free(s->seen);
	free(s);
}

/* softmax of the kept (finite) logits into prob; returns the max. */
static void softmax(float *prob, const float *x, size_t V)
{
	float mx = -INFINITY;
	double sum = 0.0;

	for (size_t i = 0; i < V; i++)
		mx = x[i] > mx ? x[i] : mx;
	for (size_t i = 0; i < V; i++) {
		prob[i] = x[i] == -INFINITY ? 0.0f : expf(x[i] - mx);
		sum += prob[i];
	}
	for (size_t i = 0; i < V; i++)
		prob[i] = (float)(prob[i] / sum);
}

/* The k-th largest of v[0 .. n) (k >= 1, counting equal values), v
 * reordered: quickselect with a three-way partition, so a run of equal
 * values (-inf after an earlier warper) stays linear. */
static float kth_largest(float *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n;	/* the answer's rank k - 1 is in [lo, hi) */

	k--;
	while (hi - lo > 1) {
		float a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi - 1];
		float piv = a < b ? (b < c ? b : (a < c ? c : a)) :
				    (a < c ? a : (b < c ? c : b));
		size_t lt = lo, i = lo, gt = hi;

		/* [lo, lt) > piv, [lt, i) == piv, [gt, hi) < piv */
		while (i < gt) {
			float t = v[i];

			if (t > piv) {
				v[i++] = v[lt];
				v[lt++] = t;
			} else if (t < piv) {
				v[i] = v[--gt];
				v[gt] = t;
			} else {
				i++;
			}
		}
		if (k < lt)
			hi = lt;
		else if (k < gt)
			return piv;
		else
			lo = gt;
	}
	return v[lo];
}

static int32_t argmax(const float *x, size_t V)
{
	size_t b = 0;

	for (size_t i = 1; i < V; i++)
		if (x[i] > x[b])
			b = i;
	return (int32_t)b;
}

int32_t hf_sampler_sample(struct hf_sampler *s, float *x, const int32_t *hist,
			  size_t nhist)
{
	const struct hf_sample_params *p = &s->p;
	size_t V = s->V;
	double u, acc;

	/* RepetitionPenaltyLogitsProcessor: once per distinct id */
	if (p->repeat_penalty != 1.0f && nhist) {
		for (size_t i = 0; i < nhist; i++) {
			int32_t t = hist[i];

			if (t < 0 || (size_t)t >= V || s->seen[t])
				continue;
			s->seen[t] = 1;
			x[t] = x[t] < 0 ? x[t] * p->repeat_penalty :
					  x[t] / p->repeat_penalty;
		}
		for (size_t i = 0; i < nhist; i++)
			if (hist[i] >= 0 && (size_t)hist[i] < V)
				s->seen[hist[i]] = 0;
	}
	if (p->temperature <= 0.0f)
		return argmax(x, V);
	if (p->temperature != 1.0f)
		for (size_t i = 0; i < V; i++)
			x[i] /= p->temperature;
	/* TopKLogitsWarper: drop what is below the k-th value (ties stay).
	 * The k-th value by selection, not by sorting the vocabulary (49k
	 * entries: milliseconds a token) */
	if (p->top_k && p->top_k < V) {
		float kth;

		memcpy(s->prob, x, V * sizeof(float));
		kth = kth_largest(s->prob, V, p->top_k);
		for (size_t i = 0; i < V; i++)
			if (x[i] < kth)
				x[i] = -INFINITY;
	}
	/* TopPLogitsWarper: in ascending order, drop tokens while the
	 * cumulative probability stays <= 1 - top_p; the top one stays.
	 * Only the finite logits need an order: the -inf ones (what TopK
	 * dropped) come last in descending order and add exactly 0. */
	if (p->top_p < 1.0f) {
		double cum = 0.0;
		size_t nk = 0;

		for (size_t i = 0; i < V; i++)
			if (x[i] != -INFINITY) {
				s->pairs[nk].v = x[i];
				s->pairs[nk++].i = (int32_t)i;
			}
		qsort(s->pairs, nk, sizeof(*s->pairs), by_logit_desc);
		for (size_t i = 0; i < nk; i++)
			s->idx[i] = s->pairs[i].i;
		softmax(s->prob, x, V);
		for (size_t r = nk; r-- > 1;) {
			int32_t t = s->idx[r];

			cum += s->prob[t];
			if (cum <= 1.0 - p->top_p)
				x[t] = -INFINITY;
			else
				break;
		}
	}
	/* MinPLogitsWarper: drop p < min_p * p_max */
	if (p->min_p > 0.0f) {
		float top;

		softmax(s->prob, x, V);
		top = s->prob[argmax(s->prob, V)];
		for (size_t i = 0; i < V; i++)
			if (s->prob[i] < p->min_p * top)
				x[i] = -INFINITY;
	}
	softmax(s->prob, x, V);
	u = hf_rng_uniform(&s->rng);
	acc = 0.0;
	for (size_t i = 0; i < V; i++) {
		acc += s->prob[i];
		if (u < acc && s->prob[i] > 0.0f)
			return (int32_t)i;
	}
	/* rounding left u past the total: the last kept token */
	for (size_t i = V; i-- > 0;)
		if (s->prob[i] > 0.0f)
			return (int32_t)i;
	return argmax(x, V);
}

float hf_logprobs_top(const float *x, size_t V, int32_t tok, size_t n,
		      int32_t *ids, float *lp)
{
	float mx = -INFINITY;
	double sum = 0.0;
	float lse;

	for (size_t i = 0; i < V; i++)
		mx = x[i] > mx ? x[i] : mx;
	for (size_t i = 0; i < V; i++)
		sum += exp((double)x[i] - mx);
	lse = mx + (float)log(sum);
	/* n is small: selection by repeated scans */
	for (size_t j = 0; j < n && j < V; j++) {
		int32_t best = -1;

		for (size_t i = 0; i < V; i++) {
			int taken = 0;

			for (size_t k = 0; k < j; k++)
				taken |= ids[k] == (int32_t)i;
			if (!taken && (best < 0 || x[i] > x[best]))
				best = (int32_t)i;
		}
		ids[j] = best;
		lp[j] = x[best] - lse;
	}
	return x[tok] - lse;
}

const char *hf_finish_name(enum hf_finish f)
{
	switch (f) {
	case HF_FINISH_STOP:
		return "stop";
	case HF_FINISH_LENGTH:
		return "length";
	default:
		return "none";
	}
}
