/* lib/gen/gen.c: the generation loop (prefill of a left-padded batch,
 * then one token per row per step through the KV cache) and
 * sliding-window perplexity. */
#include "gen/gen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/progress.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void hf_gen_row_free(struct hf_gen_row *r)
{
	if (!r)
		return;
	free(r->ids);
	free(r->lp_tok);
	free(r->lp_ids);
	free(r->lp);
	memset(r, 0, sizeof(*r));
}

static int is_eos(const struct hf_gen_opts *o, int32_t t)
{
	for (size_t i = 0; i < o->neos; i++)
		if (o->eos[i] == t)
			return 1;
	return 0;
}

/* Per row: the history the repetition penalty sees. */
struct rowst {
	struct hf_sampler *s;
	int32_t *hist;
	size_t nhist;
	int done;
};

/* The prompt columns go through the model PREFILL_CHUNK at a time (as
 * llama.cpp's n_ubatch), which bounds the activations of long prompts;
 * only the last chunk computes logits. ids, mask: (B, T). 256 rows
 * keep the tiled products as fast as 512 (SmolLM2-135M bf16, pp512 at
 * 2 threads: 356-500 t/s against 294-368 in alternating runs) with half
 * the activations (6 MB less peak RSS there). */
#define PREFILL_CHUNK 256

static int prefill(struct hf_model *m, struct hf_kv *kv, const int32_t *ids,
		   const int32_t *mask, size_t B, size_t T,
		   struct hf_fwd_out *fo, struct hf_err *err)
{
	size_t cn = T < PREFILL_CHUNK ? T : PREFILL_CHUNK;
	int32_t *ic, *mc;
	int rc = 0;

	if (T <= PREFILL_CHUNK)
		return hf_model_forward(m, kv, ids, mask, T, fo, err);
	ic = malloc(B * cn * sizeof(*ic));
	mc = malloc(B * cn * sizeof(*mc));
	if (!ic || !mc) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t c0 = 0; c0 < T && !rc; c0 += cn) {
		size_t n = T - c0 < cn ? T - c0 : cn;
		struct hf_fwd_out none = { 0 };

		for (size_t b = 0; b < B; b++) {
			memcpy(ic + b * n, ids + b * T + c0, n * sizeof(*ic));
			memcpy(mc + b * n, mask + b * T + c0, n * sizeof(*mc));
		}
		rc = hf_model_forward(m, kv, ic, mc, n, c0 + n == T ? fo : &none,
				      err);
	}
out:
	free(ic);
	free(mc);
	return rc;
}

int hf_gen_run(struct hf_model *m, const int32_t *const *prompts,
	       const size_t *lens, size_t B, const struct hf_gen_opts *o,
	       struct hf_gen_row *rows, struct hf_err *err)
{
	size_t V = hf_model_vocab(m), T = 0;
	size_t lim = hf_model_max_positions(m), ctx = o->n_ctx;
	size_t maxnew = o->max_tokens, nlp = o->logprobs, active;
	struct rowst *st = NULL;
	int32_t *ids = NULL, *mask = NULL, *tok = NULL;
	float *logits = NULL, *work = NULL;
	struct hf_kv *kv = NULL;
	struct hf_fwd_out fo = { 0 };
	double t0, t1;
	int rc = 0;

	memset(rows, 0, B * sizeof(*rows));
	for (size_t b = 0; b < B; b++) {
		if (!lens[b])
			return hf_err_set(err, HF_EINVAL,
					  "empty prompt: nothing to continue");
		if (lim && lens[b] >= lim && (!ctx || ctx >= lim))
			return hf_err_set(err, HF_ERANGE,
					  "prompt of %zu tokens does not fit the "
					  "%zu positions of the model's learned "
					  "position embeddings (it must leave room "
					  "for one more)", lens[b], lim);
		if (ctx && lens[b] >= ctx)
			return hf_err_set(err, HF_ERANGE,
					  "prompt of %zu tokens does not fit a "
					  "context of %zu tokens (it must leave "
					  "room for one more)", lens[b], ctx);
		T = lens[b] > T ? lens[b] : T;
	}
	if (lim && (!ctx || ctx > lim))
		ctx = lim;
	if (ctx && maxnew > ctx - T)
		maxnew = ctx - T;
	st = calloc(B, sizeof(*st));
	ids = calloc(B * T, sizeof(*ids));
	mask = calloc(B * T, sizeof(*mask));
	tok = calloc(B, sizeof(*tok));
	logits = malloc(B * V * sizeof(float));
	work = malloc(V * sizeof(float));
	if (!st || !ids || !mask || !tok || !logits || !work) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t b = 0; b < B; b++) {
		size_t pad = T - lens[b];

		/* left padding: pad ids are never attended to */
		memcpy(ids + b * T + pad, prompts[b], lens[b] * sizeof(int32_t));
		for (size_t t = pad; t < T; t++)
			mask[b * T + t] = 1;
		rows[b].prompt_tokens = lens[b];
		st[b].hist = malloc((lens[b] + maxnew + 1) * sizeof(int32_t));
		rows[b].ids = malloc((maxnew + 1) * sizeof(int32_t));
		rows[b].lp_tok = malloc((maxnew + 1) * sizeof(float));
		if (nlp) {
			rows[b].lp_ids = malloc((maxnew + 1) * nlp * sizeof(int32_t));
			rows[b].lp = malloc((maxnew + 1) * nlp * sizeof(float));
		}
		if (!st[b].hist || !rows[b].ids || !rows[b].lp_tok ||
		    (nlp && (!rows[b].lp_ids || !rows[b].lp))) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		memcpy(st[b].hist, prompts[b], lens[b] * sizeof(int32_t));
		st[b].nhist = lens[b];
		/* one stream per row, so a row samples the same alone */
		if ((rc = hf_sampler_new(&st[b].s, V, &o->sp, o->seed, err)))
			goto out;
	}
	if ((rc = hf_kv_new(&kv, m, B, T + maxnew, err)))
		goto out;
	fo.logits = logits;
	t0 = now_ms();
	/* a prompt in chunks gets the RoPE of the whole prompt in one call */
	hf_model_set_seq_len(m, T);
	rc = prefill(m, kv, ids, mask, B, T, &fo, err);
	hf_model_set_seq_len(m, 0);
	if (rc)
		goto out;
	t1 = now_ms();
	for (size_t b = 0; b < B; b++)
		rows[b].prompt_ms = t1 - t0;
	active = B;
	if (!maxnew)
		for (size_t b = 0; b < B; b++) {
			rows[b].finish = HF_FINISH_LENGTH;
			st[b].done = 1;
			active = 0;
		}
	for (size_t step = 0; active; step++) {
		for (size_t b = 0; b < B; b++) {
			struct hf_gen_row *r = &rows[b];
			float *lg = logits + b * V;
			int32_t t;
			int stop;

			if (st[b].done) {
				mask[b] = 0;
				continue;
			}
			memcpy(work, lg, V * sizeof(float));
			t = hf_sampler_sample(st[b].s, work, st[b].hist,
					      st[b].nhist);
			tok[b] = t;
			mask[b] = 1;
			if (is_eos(o, t)) {
				r->finish = HF_FINISH_STOP;
				st[b].done = 1;
				active--;
				continue;
			}
			/* log_softmax costs a pass over the vocabulary: only
			 * when asked for */
			r->lp_tok[r->n] = nlp ? hf_logprobs_top(lg, V, t, nlp,
					r->lp_ids + r->n * nlp,
					r->lp + r->n * nlp) : 0.0f;
			r->ids[r->n++] = t;
			st[b].hist[st[b].nhist++] = t;
			stop = o->on_token ? o->on_token(o->ctx, b, t, err) : 0;
			if (stop < 0) {
				rc = err->code ? err->code : HF_EINTERNAL;
				goto out;
			}
			if (stop) {
				r->finish = HF_FINISH_STOP;
				st[b].done = 1;
				active--;
			} else if (r->n >= maxnew) {
				r->finish = HF_FINISH_LENGTH;
				st[b].done = 1;
				active--;
			}
		}
		if (!active)
			break;
		/* finished rows ride along as padding */
		for (size_t b = 0; b < B; b++)
			if (st[b].done) {
				tok[b] = 0;
				mask[b] = 0;
			}
		if ((rc = hf_model_forward(m, kv, tok, mask, 1, &fo, err)))
			goto out;
	}
	t0 = now_ms();
	for (size_t b = 0; b < B; b++)
		rows[b].gen_ms = t0 - t1;
out:
	if (st)
		for (size_t b = 0; b < B; b++) {
			hf_sampler_free(st[b].s);
			free(st[b].hist);
		}
	if (rc)
		for (size_t b = 0; b < B; b++)
			hf_gen_row_free(&rows[b]);
	free(st);
	free(ids);
	free(mask);
	free(tok);
	free(logits);
	free(work);
	hf_kv_free(kv);
	return rc;
}

/* Windows go through the model in chunks of PPL_CHUNK tokens (through
 * the KV cache), so the logits held are PPL_CHUNK rows, not ctx. */
#define PPL_CHUNK 256

int hf_gen_perplexity(struct hf_model *m, const int32_t *ids, size_t n,
		      size_t ctx, size_t stride, double *nll, size_t *count,
		      struct hf_err *err)
{
	size_t V = hf_model_vocab(m), prev_end = 0, chunk;
	double sum = 0.0;
	size_t cnt = 0;
	float *lg = NULL;
	struct hf_kv *kv = NULL;
	struct hf_progress bar;
	int rc = 0;

	*nll = 0.0;
	*count = 0;
	if (n < 2)
		return hf_err_set(err, HF_EINVAL,
				  "perplexity needs at least 2 tokens, got %zu", n);
	if (!ctx)
		ctx = hf_model_max_ctx(m);
	if (hf_model_max_positions(m) && ctx > hf_model_max_positions(m))
		ctx = hf_model_max_positions(m);
	if (!ctx || ctx > n)
		ctx = n;
	if (!stride || stride > ctx)
		stride = ctx;
	chunk = ctx < PPL_CHUNK ? ctx : PPL_CHUNK;
	lg = malloc(chunk * V * sizeof(float));
	if (!lg)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = hf_kv_new(&kv, m, 1, ctx, err)))
		goto out;
	hf_progress_init(&bar, "perplexity", n, 0);
	for (size_t begin = 0; begin < n; begin += stride) {
		size_t end = begin + ctx < n ? begin + ctx : n;
		size_t len = end - begin, trg = end - prev_end;

		hf_kv_reset(kv);
		/* one window is one call to the model in transformers */
		hf_model_set_seq_len(m, len);
		for (size_t c0 = 0; c0 < len; c0 += chunk) {
			size_t cn = len - c0 < chunk ? len - c0 : chunk;
			struct hf_fwd_out fo = { .logits = lg, .all_logits = 1 };

			if ((rc = hf_model_forward(m, kv, ids + begin + c0, NULL,
						   cn, &fo, err))) {
				hf_model_set_seq_len(m, 0);
				goto out;
			}
			/* row t predicts t + 1; the targets are the last trg
			 * tokens of the window (never its first) */
			for (size_t t = c0; t < c0 + cn; t++) {
				const float *row = lg + (t - c0) * V;
				float mx = -INFINITY;
				double s = 0.0;

				if (t + 1 >= len || t + 1 < len - trg)
					continue;
				for (size_t i = 0; i < V; i++)
					mx = row[i] > mx ? row[i] : mx;
				for (size_t i = 0; i < V; i++)
					s += exp((double)row[i] - mx);
				sum += (double)mx + log(s) -
				       row[ids[begin + t + 1]];
				cnt++;
			}
		}
		hf_model_set_seq_len(m, 0);
		prev_end = end;
		hf_progress_update(&bar, end);
		if (end == n)
			break;
	}
	hf_progress_finish(&bar);
	*nll = sum / (double)cnt;
	*count = cnt;
out:
	free(lg);
	hf_kv_free(kv);
	return rc;
}
