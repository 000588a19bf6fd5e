/* Tests for lib/model/train_gpt2.c and train_encoder.c (train.h through
 * train_ln.h) on the gpt2, bert, roberta and distilbert fixtures:
 * checkpointing gives the bits of the full pass; a right-padded batch
 * (pad ids, mask 0, labels -100) gives the loss and gradients of its
 * rows run alone, so padding keys are masked and roberta's positions
 * skip the pads; the adapter hook on GPT-2's fused Conv1D c_attn and on
 * a BERT query is called in the forward and the backward and its
 * gradient, and the gradient through it, are the model's (central
 * differences); names are the stored ones (no lm_head.weight; the
 * pooler frozen); bad input is refused. The losses and gradients against
 * transformers' are test/e2e/finetune_grads.sh's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/train.h"

#define B 2
#define T 9

static const char *const all[] = { "gpt2-tiny", "bert-tiny", "roberta-tiny",
				   "distilbert-tiny" };
static char dir[1024];
static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static struct hf_model *open_fixture(const char *name)
{
	const char *fx = getenv("HF_FIXTURES");
	struct hf_err err = { 0 };
	struct hf_model *m = NULL;

	snprintf(dir, sizeof(dir), "%s/models/%s", fx ? fx : "test/fixtures",
		 name);
	if (hf_model_open(&m, dir, NULL, 1, &err)) {
		print_error("%s: %s\n", dir, err.msg);
		fail();
	}
	return m;
}

/* Random ids >= 5 (never a pad or special id), labels the ids with a
 * few positions -100 (position 0 stays: the encoders score it). */
static void make_batch(struct hf_model *m, int32_t *ids, int32_t *labels)
{
	size_t V = hf_model_vocab(m);

	for (size_t i = 0; i < B * T; i++) {
		ids[i] = (int32_t)(5 + next() % (V - 5));
		labels[i] = i % 5 == 3 ? -100 : ids[i];
	}
}

static struct hf_train *new_train(struct hf_model *m, int ckpt)
{
	struct hf_train_opts o = { .checkpointing = ckpt };
	struct hf_err err = { 0 };
	struct hf_train *t = NULL;

	if (hf_train_new(&t, m, &o, &err)) {
		print_error("hf_train_new: %s\n", err.msg);
		fail();
	}
	return t;
}

static double stepn(struct hf_train *t, const int32_t *ids,
		    const int32_t *labels, const int32_t *mask, size_t rows,
		    double denom)
{
	struct hf_err err = { 0 };
	double loss;
	size_t count;

	if (hf_train_step(t, ids, labels, mask, rows, T, denom, &loss, &count,
			  &err)) {
		print_error("hf_train_step: %s\n", err.msg);
		fail();
	}
	return loss;
}

static double eval(struct hf_train *t, const int32_t *ids,
		   const int32_t *labels)
{
	struct hf_err err = { 0 };
	double loss;
	size_t count;

	if (hf_train_eval(t, ids, labels, NULL, B, T, &loss, &count, &err)) {
		print_error("hf_train_eval: %s\n", err.msg);
		fail();
	}
	return loss;
}

/* Every gradient of a equals b's within tol relative L2 (0: the same
 * bits), or within an L2 of floor: the attention's key bias has a zero
 * gradient in exact arithmetic (softmax ignores a constant added to
 * every score), so a float32 one is rounding of 1e-8 or so. */
static void same_grads(struct hf_train *a, struct hf_train *b, double tol,
		       double floor, const char *what)
{
	assert_int_equal(hf_train_nparams(a), hf_train_nparams(b));
	for (size_t i = 0; i < hf_train_nparams(a); i++) {
		struct hf_param *p = hf_train_param(a, i), *q = hf_train_param(b, i);
		double e2 = 0, n2 = 0;

		assert_string_equal(p->name, q->name);
		assert_true(!p->g == !q->g);
		for (size_t j = 0; p->g && j < p->n; j++) {
			double d = (double)p->g[j] - q->g[j];

			e2 += d * d;
			n2 += (double)q->g[j] * q->g[j];
		}
		if (p->g && sqrt(e2) > tol * sqrt(n2) + floor) {
			print_error("%s: %s rel L2 %.3g\n", what, p->name,
				    sqrt(e2 / n2));
			fail();
		}
	}
}

static void test_checkpointing_gives_the_same_gradients(void **state)
{
	(void)state;
	for (size_t k = 0; k < 4; k++) {
		struct hf_model *m = open_fixture(all[k]);
		struct hf_train *a = new_train(m, 0), *b = new_train(m, 1);
		int32_t ids[B * T], labels[B * T];

		make_batch(m, ids, labels);
		assert_float_equal(stepn(a, ids, labels, NULL, B, 0),
				   stepn(b, ids, labels, NULL, B, 0), 0);
		same_grads(b, a, 0, 0, all[k]);
		hf_train_free(a);
		hf_train_free(b);
		hf_model_free(m);
	}
}

/* Row 1 of 4 tokens right-padded to T: the batch's loss and gradients
 * are the sums of those of each row run alone (one denom for all), and
 * other ids under the mask change nothing (roberta: its positions come
 * from the pad ids, so there they stay pads). */
static void test_padding_is_masked(void **state)
{
	int32_t pad[4] = { 0, 0, 1, 0 };	/* pad_token_id of each */

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		struct hf_model *m = open_fixture(all[k]);
		struct hf_train *a = new_train(m, 0), *b = new_train(m, 0);
		struct hf_train *c = new_train(m, 0);
		int32_t ids[B * T], labels[B * T], mask[B * T];
		double la, lb;

		make_batch(m, ids, labels);
		for (size_t i = 0; i < B * T; i++) {
			mask[i] = i < T || i % T < 4;
			if (!mask[i]) {
				ids[i] = pad[k];
				labels[i] = -100;
			}
		}
		la = stepn(a, ids, labels, mask, B, 20);
		lb = stepn(b, ids, labels, mask, 1, 20) +
		     stepn(b, ids + T, labels + T, mask + T, 1, 20);
		assert_float_equal(la, lb, 1e-5 * la);
		same_grads(a, b, 1e-5, 1e-6, all[k]);
		/* other ids under the mask change nothing */
		for (size_t i = T; i < B * T; i++)
			if (!mask[i])
				ids[i] = pad[k] + 3 + (int32_t)i;
		if (k == 2)	/* roberta's positions come from the pad ids */
			for (size_t i = T; i < B * T; i++)
				if (!mask[i])
					ids[i] = pad[k];
		assert_float_equal(stepn(c, ids, labels, mask, B, 20), la,
				   1e-6 * la);
		same_grads(c, a, 1e-6, 1e-6, all[k]);
		hf_train_free(a);
		hf_train_free(b);
		hf_train_free(c);
		hf_model_free(m);
	}
}

/* A test adapter: y += x D^T with its own D (out, in) and gradient. */
struct dense {
	float *d, *g;
	size_t in, out;
	int bwd, recomputes;
};

static int dense_fwd(void *ctx, float *y, const float *x, size_t n,
		     int recompute, struct hf_err *err)
{
	struct dense *a = ctx;

	(void)err;
	a->recomputes += recompute;
	for (size_t r = 0; r < n; r++)
		for (size_t o = 0; o < a->out; o++) {
			double s = 0;

			for (size_t i = 0; i < a->in; i++)
				s += (double)x[r * a->in + i] * a->d[o * a->in + i];
			y[r * a->out + o] += (float)s;
		}
	return 0;
}

static int dense_bwd(void *ctx, float *dx, const float *dy, const float *x,
		     size_t n, struct hf_err *err)
{
	struct dense *a = ctx;

	(void)err;
	a->bwd++;
	for (size_t r = 0; r < n; r++)
		for (size_t o = 0; o < a->out; o++)
			for (size_t i = 0; i < a->in; i++) {
				dx[r * a->in + i] += dy[r * a->out + o] *
						     a->d[o * a->in + i];
				a->g[o * a->in + i] += dy[r * a->out + o] *
						       x[r * a->in + i];
			}
	return 0;
}

/* Central differences of the eval loss over 24 elements of x against g
 * (2e-2 relative: train_llama's test explains the bar). */
static void fd_model(struct hf_train *t, const int32_t *ids,
		     const int32_t *labels, float *x, const float *g, size_t n,
		     const char *what)
{
	double e2 = 0, n2 = 0;

	for (size_t k = 0; k < 24; k++) {
		size_t i = (k * 7919) % n;
		float save = x[i];
		double lp, lm, fd;

		x[i] = save + 1e-2f;
		lp = eval(t, ids, labels);
		x[i] = save - 1e-2f;
		lm = eval(t, ids, labels);
		x[i] = save;
		fd = (lp - lm) / 2e-2;
		e2 += (fd - g[i]) * (fd - g[i]);
		n2 += fd * fd;
	}
	if (!(sqrt(e2) <= 2e-2 * sqrt(n2))) {
		print_error("%s: rel L2 error %.3g of |fd| %.3g\n", what,
			    sqrt(e2 / n2), sqrt(n2));
		fail();
	}
}

static void adapter_case(const char *fx, const char *lin, const char *below,
			 int ckpt)
{
	struct hf_model *m = open_fixture(fx);
	struct hf_train *t = new_train(m, ckpt), *ref = new_train(m, ckpt);
	int32_t ids[B * T], labels[B * T];
	struct hf_err err = { 0 };
	struct dense a = { 0 };
	struct hf_train_adapter ad = { &a, dense_fwd, dense_bwd };
	const struct hf_train_lin *l = NULL;
	struct hf_param *p;
	size_t li = 0;
	double base;

	for (size_t i = 0; i < hf_train_nlinears(t); i++)
		if (!strcmp(hf_train_linear(t, i)->name, lin)) {
			l = hf_train_linear(t, i);
			li = i;
		}
	assert_non_null(l);
	a.in = l->in;
	a.out = l->out;
	a.d = malloc(a.in * a.out * sizeof(float));
	a.g = calloc(a.in * a.out, sizeof(float));
	for (size_t i = 0; i < a.in * a.out; i++)
		a.d[i] = ((float)(next() % 2001) / 1000.0f - 1.0f) * 0.3f;
	make_batch(m, ids, labels);
	base = eval(t, ids, labels);
	assert_int_equal(hf_train_set_adapter(t, li, &ad, &err), 0);
	assert_true(fabs(eval(t, ids, labels) - base) > 1e-4);
	stepn(t, ids, labels, NULL, B, 0);
	assert_int_equal(a.bwd, 1);
	assert_int_equal(a.recomputes, ckpt ? 1 : 0);
	fd_model(t, ids, labels, a.d, a.g, a.in * a.out, "adapter's own");
	p = hf_train_find(t, below);
	assert_non_null(p);
	fd_model(t, ids, labels, p->w, p->g, p->n, "through the adapter");
	assert_int_equal(hf_train_set_adapter(t, li, NULL, &err), 0);
	assert_float_equal(eval(t, ids, labels), eval(ref, ids, labels), 0);
	free(a.d);
	free(a.g);
	hf_train_free(t);
	hf_train_free(ref);
	hf_model_free(m);
}

static void test_adapter_hook(void **state)
{
	(void)state;
	for (int ckpt = 0; ckpt < 2; ckpt++) {
		adapter_case("gpt2-tiny", "h.0.attn.c_attn", "h.0.ln_1.weight",
			     ckpt);
		adapter_case("bert-tiny",
			     "bert.encoder.layer.1.attention.self.query",
			     "bert.encoder.layer.0.output.LayerNorm.weight",
			     ckpt);
	}
}

static void test_names_are_the_stored_ones(void **state)
{
	static const char *const heads[] = { "lm_head", "cls.predictions.decoder",
					     "lm_head.decoder",
					     "vocab_projector" };
	static const char *const embed[] = {
		"wte.weight", "bert.embeddings.word_embeddings.weight",
		"roberta.embeddings.word_embeddings.weight",
		"distilbert.embeddings.word_embeddings.weight" };

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		struct hf_model *m = open_fixture(all[k]);
		struct hf_train *t = new_train(m, 0);
		const struct hf_train_lin *h =
			hf_train_linear(t, hf_train_nlinears(t) - 1);

		assert_string_equal(hf_train_param(t, 0)->name, embed[k]);
		/* the tied head is the embedding itself */
		assert_string_equal(h->name, heads[k]);
		assert_int_equal(h->w, 0);
		assert_int_equal(h->layer, (size_t)-1);
		for (size_t i = 0; i < hf_train_nparams(t); i++) {
			const char *n = hf_train_param(t, i)->name;

			/* the pooler: kept, frozen (the MLM head reads none) */
			if (strstr(n, "pooler"))
				assert_null(hf_train_param(t, i)->g);
			assert_null(strstr(n, "lm_head.weight"));
		}
		hf_train_free(t);
		hf_model_free(m);
	}
	{
		struct hf_model *m = open_fixture("gpt2-tiny");
		struct hf_train *t = new_train(m, 0);
		struct hf_param *p = hf_train_find(t, "h.1.mlp.c_fc.weight");

		/* Conv1D: [in, out] as stored */
		assert_non_null(p);
		assert_null(hf_train_find(t, "h.0.attn.bias"));	/* a buffer */
		hf_train_free(t);
		hf_model_free(m);
		m = open_fixture("bert-tiny");
		t = new_train(m, 0);
		assert_non_null(hf_train_find(t, "bert.pooler.dense.weight"));
		assert_null(hf_train_find(t, "bert.pooler.dense.weight")->g);
		hf_train_free(t);
		hf_model_free(m);
		m = open_fixture("gpt2-tiny");
		t = new_train(m, 0);
		p = hf_train_find(t, "h.1.mlp.c_fc.weight");
		assert_non_null(p);
		assert_int_equal(p->shape[0], 64);
		assert_int_equal(p->shape[1], 256);
		assert_string_equal(hf_train_linear(t, 0)->name,
				    "h.0.attn.c_attn");
		assert_int_equal(hf_train_linear(t, 0)->out, 192);
		hf_train_free(t);
		hf_model_free(m);
	}
}

static void test_bad_input_is_refused(void **state)
{
	struct hf_model *m = open_fixture("roberta-tiny");
	struct hf_train *t = new_train(m, 0);
	struct hf_err err = { 0 };
	int32_t *ids = calloc(4096, sizeof(int32_t));
	int32_t *lab = calloc(4096, sizeof(int32_t));
	double loss;
	size_t count;

	(void)state;
	assert_non_null(ids);
	assert_non_null(lab);
	for (size_t i = 0; i < 4096; i++) {
		ids[i] = 7;
		lab[i] = -100;
	}
	assert_int_equal(hf_train_step(t, ids, lab, NULL, 1, 8, 0, &loss,
				       &count, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "every label is -100"));
	assert_int_equal(hf_train_step(t, ids, lab, NULL, 1, 4096, 0, &loss,
				       &count, &err), HF_ERANGE);
	assert_non_null(strstr(err.msg, "positions of the model"));
	ids[3] = 100000;
	assert_int_equal(hf_train_step(t, ids, lab, NULL, 1, 8, 0, &loss,
				       &count, &err), HF_ERANGE);
	assert_non_null(strstr(err.msg, "token id 100000 (row 0, position 3)"));
	free(ids);
	free(lab);
	hf_train_free(t);
	hf_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpointing_gives_the_same_gradients),
		cmocka_unit_test(test_padding_is_masked),
		cmocka_unit_test(test_adapter_hook),
		cmocka_unit_test(test_names_are_the_stored_ones),
		cmocka_unit_test(test_bad_input_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
