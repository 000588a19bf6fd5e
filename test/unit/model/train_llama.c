/* Tests for lib/model/train_llama.c (train.h) on the model fixtures:
 * checkpointing gives the gradients of the full pass, gradients add
 * across steps, denom scales them, a frozen parameter has none and
 * changes no other, the per-linear adapter hook is called in the
 * forward and the backward and its gradient is the model's (central
 * differences of the loss), the parameter and linear names are the
 * stored ones, and bad input is refused. The losses and gradients
 * against transformers' are test/e2e/finetune_grads.sh's. */
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

static char dir[1024];

static uint64_t rng = 0x9E3779B97F4A7C15ull;

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

/* A batch of random ids, the labels the ids with the first and a few
 * more positions -100. */
static void make_batch(struct hf_model *m, int32_t *ids, int32_t *labels)
{
	size_t V = hf_model_vocab(m);

	for (size_t i = 0; i < B * T; i++) {
		ids[i] = (int32_t)(next() % V);
		labels[i] = i % T < 2 || i % 5 == 3 ? -100 : ids[i];
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

static double step(struct hf_train *t, const int32_t *ids,
		   const int32_t *labels, double denom)
{
	struct hf_err err = { 0 };
	double loss;
	size_t count;

	if (hf_train_step(t, ids, labels, NULL, B, T, denom, &loss, &count,
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

/* Every gradient of a equals f times b's, each parameter within tol
 * relative L2 (1e-5: float sums of per-row terms in another order or
 * onto a non-zero gradient round apart; 0: the same bits). */
static void same_grads(struct hf_train *a, struct hf_train *b, float f,
		       double tol, const char *what)
{
	assert_int_equal(hf_train_nparams(a), hf_train_nparams(b));
	for (size_t i = 0; i < hf_train_nparams(a); i++) {
		struct hf_param *p = hf_train_param(a, i), *q = hf_train_param(b, i);
		double e2 = 0, n2 = 0, worst = -1;
		size_t wj = 0;

		assert_string_equal(p->name, q->name);
		assert_true(!p->g == !q->g);
		for (size_t j = 0; p->g && j < p->n; j++) {
			double d = (double)p->g[j] - (double)f * q->g[j];

			e2 += d * d;
			n2 += (double)f * q->g[j] * f * q->g[j];
			if (fabs(d) > worst) {
				worst = fabs(d);
				wj = j;
			}
		}
		if (p->g && sqrt(e2) > tol * sqrt(n2)) {
			print_error("%s: %s rel L2 %.3g; [%zu] %.9g, want %.9g\n",
				    what, p->name, sqrt(e2 / n2), wj, p->g[wj],
				    f * q->g[wj]);
			fail();
		}
	}
}

static void checkpointing_case(const char *name)
{
	struct hf_model *m = open_fixture(name);
	struct hf_train *a = new_train(m, 0), *b = new_train(m, 1);
	int32_t ids[B * T], labels[B * T];
	double la, lb;

	make_batch(m, ids, labels);
	la = step(a, ids, labels, 0);
	lb = step(b, ids, labels, 0);
	assert_float_equal(la, lb, 0);
	/* the same ops in the same order: the same bits */
	same_grads(b, a, 1.0f, 0, name);
	hf_train_free(a);
	hf_train_free(b);
	hf_model_free(m);
}

static void test_checkpointing_gives_the_same_gradients(void **state)
{
	(void)state;
	checkpointing_case("llama-tiny");
	checkpointing_case("phi3-tiny");
	checkpointing_case("mixtral-tiny");
	checkpointing_case("qwen3-tiny");
}

/* The head in chunks of 5 rows (18 rows: 4 chunks, the last short)
 * gives the gradients of one chunk. */
static void test_logits_in_chunks(void **state)
{
	struct hf_model *m = open_fixture("llama-tiny");
	struct hf_train_opts o = { .logit_rows = 5 };
	struct hf_train *a = new_train(m, 0), *b = NULL;
	int32_t ids[B * T], labels[B * T];
	struct hf_err err = { 0 };
	double la, lb;

	(void)state;
	assert_int_equal(hf_train_new(&b, m, &o, &err), 0);
	make_batch(m, ids, labels);
	la = step(a, ids, labels, 0);
	lb = step(b, ids, labels, 0);
	assert_float_equal(la, lb, 1e-12);
	same_grads(b, a, 1.0f, 1e-5, "chunks of 5");
	assert_float_equal(eval(b, ids, labels), la, 1e-12);
	hf_train_free(a);
	hf_train_free(b);
	hf_model_free(m);
}

static void test_gradients_add_and_denom_scales(void **state)
{
	struct hf_model *m = open_fixture("gemma-tiny");
	struct hf_train *a = new_train(m, 0), *b = new_train(m, 0);
	int32_t ids[B * T], labels[B * T];
	double l1, l2;
	size_t count;
	struct hf_err err = { 0 };

	(void)state;
	make_batch(m, ids, labels);
	l1 = step(a, ids, labels, 0);
	step(b, ids, labels, 0);
	step(b, ids, labels, 0);
	same_grads(b, a, 2.0f, 1e-5, "two steps");
	hf_train_zero_grad(b);
	/* denom: twice the count halves the loss and the gradients */
	assert_int_equal(hf_train_step(b, ids, labels, NULL, B, T, 0, &l2,
				       &count, &err), 0);
	hf_train_zero_grad(b);
	l2 = step(b, ids, labels, 2.0 * (double)count);
	assert_float_equal(l2, l1 / 2, 1e-9);
	same_grads(b, a, 0.5f, 1e-5, "denom");
	/* zero_grad zeroes */
	hf_train_zero_grad(a);
	for (size_t i = 0; i < hf_train_nparams(a); i++)
		for (size_t j = 0; j < hf_train_param(a, i)->n; j++)
			assert_float_equal(hf_train_param(a, i)->g[j], 0, 0);
	hf_train_free(a);
	hf_train_free(b);
	hf_model_free(m);
}

static void test_frozen_parameter_has_no_gradient(void **state)
{
	struct hf_model *m = open_fixture("llama-tiny-untied");
	struct hf_train *a = new_train(m, 0), *b = new_train(m, 0);
	int32_t ids[B * T], labels[B * T];
	struct hf_err err = { 0 };
	size_t frozen = 0;

	(void)state;
	for (size_t i = 0; i < hf_train_nparams(b); i++)
		if (!strcmp(hf_train_param(b, i)->name,
			    "model.layers.1.mlp.up_proj.weight"))
			frozen = i;
	assert_int_not_equal(frozen, 0);
	assert_int_equal(hf_train_set_trainable(b, frozen, 0, &err), 0);
	assert_null(hf_train_param(b, frozen)->g);
	make_batch(m, ids, labels);
	step(a, ids, labels, 0);
	step(b, ids, labels, 0);
	/* the others as before: compare with a's frozen one dropped */
	assert_int_equal(hf_train_set_trainable(a, frozen, 0, &err), 0);
	same_grads(b, a, 1.0f, 0, "frozen");
	assert_int_equal(hf_train_set_trainable(b, frozen, 1, &err), 0);
	assert_non_null(hf_train_param(b, frozen)->g);
	hf_train_free(a);
	hf_train_free(b);
	hf_model_free(m);
}

/* opts.frozen_base keeps every f16/bf16 linear weight as stored (no
 * parameter, hf_train_lin.qw set) and gives the loss and the gradients
 * of what stays a parameter (embeddings, norms) that the float32 copies
 * give with those weights frozen: 1e-5, the same products summed in
 * another order (tensor/matmul's kernels against OpenBLAS). */
static void frozen_base_case(const char *name)
{
	struct hf_model *m = open_fixture(name);
	struct hf_train_opts o = { .frozen_base = 1 };
	struct hf_train *a = new_train(m, 0), *b = NULL;
	int32_t ids[B * T], labels[B * T];
	struct hf_err err = { 0 };
	double la, lb;

	assert_int_equal(hf_train_new(&b, m, &o, &err), 0);
	assert_true(hf_train_nlinears(b) > 0);
	for (size_t i = 0; i < hf_train_nlinears(b); i++) {
		const struct hf_train_lin *l = hf_train_linear(b, i);

		if (!strcmp(l->name, "lm_head") && !hf_train_find(a, "lm_head.weight"))
			continue;	/* tied: the embedding parameter */
		assert_non_null(l->qw);
		assert_int_equal(l->w, (size_t)-1);
		assert_int_equal(hf_train_set_trainable(a, hf_train_linear(a, i)->w, 0,
							&err), 0);
	}
	make_batch(m, ids, labels);
	la = step(a, ids, labels, 0);
	lb = step(b, ids, labels, 0);
	assert_true(fabs(la - lb) <= 1e-5 * fabs(la));
	for (size_t i = 0; i < hf_train_nparams(b); i++) {
		struct hf_param *q = hf_train_param(b, i);
		struct hf_param *p = hf_train_find(a, q->name);
		double e2 = 0, n2 = 0;

		assert_non_null(p);
		assert_non_null(p->g);
		assert_non_null(q->g);
		for (size_t j = 0; j < p->n; j++) {
			double d = (double)q->g[j] - p->g[j];

			e2 += d * d;
			n2 += (double)p->g[j] * p->g[j];
		}
		if (sqrt(e2) > 1e-5 * sqrt(n2)) {
			print_error("%s: %s rel L2 %.3g\n", name, q->name,
				    sqrt(e2 / n2));
			fail();
		}
	}
	hf_train_free(a);
	hf_train_free(b);
	hf_model_free(m);
}

static void test_frozen_base_keeps_the_stored_weights(void **state)
{
	(void)state;
	frozen_base_case("llama-tiny");		/* bf16, tied */
	frozen_base_case("llama-tiny-untied");	/* f16 */
	frozen_base_case("phi3-tiny");		/* fused qkv, gate_up */
}

/* A test adapter: y += x D^T with its own D (out, in) and gradient. */
struct dense {
	float *d, *g;
	size_t in, out;
	int fwd, bwd, recomputes;
};

static int dense_fwd(void *ctx, float *y, const float *x, size_t n,
		     int recompute, struct hf_err *err)
{
	struct dense *a = ctx;

	(void)err;
	a->fwd++;
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

/* Central differences of the eval loss over k elements of x against g;
 * float32 losses near 7 carry about 1e-6 of rounding, 2e-4 of the
 * gradient with a step of 1e-2, so 2e-2 relative catches a missing
 * term (a 100% error) with room. */
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

static void adapter_case(int ckpt)
{
	struct hf_model *m = open_fixture("qwen2-tiny");
	struct hf_train *t = new_train(m, ckpt), *ref = new_train(m, ckpt);
	int32_t ids[B * T], labels[B * T];
	struct hf_err err = { 0 };
	struct dense a = { 0 };
	struct hf_train_adapter ad = { &a, dense_fwd, dense_bwd };
	const struct hf_train_lin *l = NULL;
	struct hf_param *ln;
	size_t li = 0;
	double base, with;

	for (size_t i = 0; i < hf_train_nlinears(t); i++)
		if (!strcmp(hf_train_linear(t, i)->name,
			    "model.layers.0.self_attn.v_proj")) {
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
	with = eval(t, ids, labels);
	assert_true(fabs(with - base) > 1e-4);	/* the forward hook ran */
	step(t, ids, labels, 0);
	assert_int_equal(a.bwd, 1);
	assert_int_equal(a.recomputes, ckpt ? 1 : 0);
	fd_model(t, ids, labels, a.d, a.g, a.in * a.out, "adapter's own");
	/* its dx reaches the layer's input norm */
	ln = hf_train_find(t, "model.layers.0.input_layernorm.weight");
	assert_non_null(ln);
	fd_model(t, ids, labels, ln->w, ln->g, ln->n, "through the adapter");
	/* removed: the model as before */
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
	adapter_case(0);
	adapter_case(1);
}

static void test_names_are_the_stored_ones(void **state)
{
	struct hf_model *m = open_fixture("llama-tiny");
	struct hf_train *t = new_train(m, 0);
	const struct hf_train_lin *head = NULL;
	int qkv = 0;

	(void)state;
	/* tied: no lm_head.weight parameter, the head reads the embedding */
	assert_null(hf_train_find(t, "lm_head.weight"));
	assert_non_null(hf_train_find(t, "model.embed_tokens.weight"));
	for (size_t i = 0; i < hf_train_nlinears(t); i++)
		if (!strcmp(hf_train_linear(t, i)->name, "lm_head"))
			head = hf_train_linear(t, i);
	assert_non_null(head);
	assert_string_equal(hf_train_param(t, head->w)->name,
			    "model.embed_tokens.weight");
	hf_train_free(t);
	hf_model_free(m);

	m = open_fixture("phi3-tiny");
	t = new_train(m, 0);
	for (size_t i = 0; i < hf_train_nlinears(t); i++)
		qkv += !strcmp(hf_train_linear(t, i)->name,
			       "model.layers.1.self_attn.qkv_proj");
	assert_int_equal(qkv, 1);
	assert_non_null(hf_train_find(t, "model.layers.0.mlp.gate_up_proj.weight"));
	assert_non_null(hf_train_find(t, "lm_head.weight"));
	hf_train_free(t);
	hf_model_free(m);
}

static void test_bad_input_is_refused(void **state)
{
	struct hf_model *m = open_fixture("mistral-tiny");
	struct hf_train *t = new_train(m, 0);
	struct hf_err err = { 0 };
	int32_t ids[B * T], labels[B * T];
	double loss;
	size_t count;

	(void)state;
	make_batch(m, ids, labels);
	ids[T + 3] = (int32_t)hf_model_vocab(m);
	assert_int_equal(hf_train_step(t, ids, labels, NULL, B, T, 0, &loss,
				       &count, &err), HF_ERANGE);
	assert_non_null(strstr(err.msg, "(row 1, position 3)"));
	make_batch(m, ids, labels);
	labels[4] = -7;
	assert_int_equal(hf_train_step(t, ids, labels, NULL, B, T, 0, &loss,
				       &count, &err), HF_ERANGE);
	assert_non_null(strstr(err.msg, "label -7 (row 0, position 4)"));
	for (size_t i = 0; i < B * T; i++)
		labels[i] = -100;
	assert_int_equal(hf_train_step(t, ids, labels, NULL, B, T, 0, &loss,
				       &count, &err), HF_EINVAL);
	hf_train_free(t);
	hf_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpointing_gives_the_same_gradients),
		cmocka_unit_test(test_logits_in_chunks),
		cmocka_unit_test(test_gradients_add_and_denom_scales),
		cmocka_unit_test(test_frozen_parameter_has_no_gradient),
		cmocka_unit_test(test_frozen_base_keeps_the_stored_weights),
		cmocka_unit_test(test_adapter_hook),
		cmocka_unit_test(test_names_are_the_stored_ones),
		cmocka_unit_test(test_bad_input_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
