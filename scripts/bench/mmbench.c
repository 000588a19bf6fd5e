/* scripts/bench/mmbench.c: a model's worth of hf_matmul calls per token,
 * for the kernels-only figures of scripts/bench/run (no hf-run needed).
 *
 * usage: mmbench -m <model dir> [-t threads] [-n tokens] [-r reps]
 *                [-d f32|bf16] [-l matrices]
 *
 * Runs every *_proj.weight of the model (with its bias, as a Qwen2 model
 * would) on n tokens at once, then the head (lm_head.weight, else the tied
 * model.embed_tokens.weight) on one token, as llama.cpp's pp test does;
 * n = 1 is decode. Prints one line per rep and then the median:
 *   mmbench n <n> threads <t> isa <isa> ms <ms> tok_s <t/s> bytes <B>
 *           gflop_s <G>
 * bytes is what one decode token reads of weights; gflop_s counts the
 * multiply-adds of the pass as 2 FLOPs, gflop_s_cpu per CPU second
 * (per thread busy, whatever else the machine runs). -d is the compute type
 * (hf_matmul_as); -l keeps the first matrices only (-l 7: one layer of a
 * Llama) and drops the head, to time the GEMM alone. Built by
 * scripts/bench/run with cc against build/lib/libhf.a. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/pool.h"
#include "st/st.h"
#include "tensor/matmul.h"

struct mat {
	const struct hf_tensor *w;
	float *bias;	/* widened, or NULL */
	size_t in, out;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of all this process's threads: with other work on the
 * machine, flops / cpu() is what a thread does while it runs. */
static double cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int threads = 2, reps = 5, c;
	size_t n = 1, nm = 0, maxin = 0, maxout = 0, bytes = 0;
	size_t limit = (size_t)-1;
	enum hf_dtype ct = HF_DTYPE_F32;
	double flops = 0;	/* per pass: n tokens through the layers, 1 head */
	struct hf_err err = { 0 };
	struct hf_st_model *m;
	struct hf_pool *pool;
	struct mat *mats, head = { 0 };
	const struct hf_tensor *hw;
	float *x, *y;
	double *ms, *cs, sec;

	while ((c = getopt(argc, argv, "m:t:n:r:d:l:")) != -1) {
		switch (c) {
		case 'd':
			if (!strcmp(optarg, "bf16"))
				ct = HF_DTYPE_BF16;
			else if (strcmp(optarg, "f32"))
				goto usage;
			break;
		case 'l': limit = (size_t)atol(optarg); break;
		case 'm': dir = optarg; break;
		case 't': threads = atoi(optarg); break;
		case 'n': n = (size_t)atol(optarg); break;
		case 'r': reps = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!dir || threads < 1 || !n || reps < 1)
		goto usage;
	if (hf_st_open_dir(&m, dir, &err) ||
	    hf_pool_create(&pool, threads, &err)) {
		fprintf(stderr, "mmbench: %s\n", err.msg);
		return 1;
	}
	mats = calloc(hf_st_model_count(m), sizeof(*mats));
	for (size_t i = 0; i < hf_st_model_count(m); i++) {
		const struct hf_tensor *t = hf_st_model_tensor(m, i);
		char bname[512];
		const struct hf_tensor *b;
		struct mat *mt = &mats[nm];

		if (!ends_with(t->name, "_proj.weight") || t->ndim != 2 ||
		    nm >= limit)
			continue;
		mt->w = t;
		mt->out = (size_t)t->shape[0];
		mt->in = (size_t)t->shape[1];
		snprintf(bname, sizeof(bname), "%.*s.bias",
			 (int)(strlen(t->name) - 7), t->name);
		if ((b = hf_st_model_get(m, bname))) {
			mt->bias = malloc(mt->out * sizeof(float));
			hf_to_f32_n(mt->bias, b->data, b->dtype, mt->out);
		}
		nm++;
	}
	hw = hf_st_model_get(m, "lm_head.weight");
	if (!hw)
		hw = hf_st_model_get(m, "model.embed_tokens.weight");
	if (!nm || !hw) {
		fprintf(stderr, "mmbench: no *_proj.weight or head in '%s'\n",
			dir);
		return 1;
	}
	head = (struct mat){ hw, NULL, (size_t)hw->shape[1],
			     (size_t)hw->shape[0] };
	for (size_t i = 0; i <= nm; i++) {
		struct mat *mt = i < nm ? &mats[i] : &head;

		if (i == nm && limit != (size_t)-1)
			break;
		maxin = mt->in > maxin ? mt->in : maxin;
		maxout = mt->out > maxout ? mt->out : maxout;
		bytes += mt->w->nbytes;
		flops += 2.0 * mt->in * mt->out * (i < nm ? n : 1);
	}
	x = malloc(n * maxin * sizeof(float));
	y = malloc(n * maxout * sizeof(float));
	ms = calloc((size_t)reps, sizeof(double));
	cs = calloc((size_t)reps, sizeof(double));
	for (size_t i = 0; i < n * maxin; i++)
		x[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
	/* one untimed pass faults the mapping in */
	for (int r = -1; r < reps; r++) {
		double t0 = now(), c0 = cpu();

		for (size_t i = 0; i < nm; i++)
			hf_matmul_as(y, x, mats[i].w->data, mats[i].w->dtype,
				     mats[i].bias, n, mats[i].in, mats[i].out,
				     ct, pool);
		if (limit == (size_t)-1)
			hf_matmul_as(y, x, head.w->data, head.w->dtype, NULL, 1,
				     head.in, head.out, ct, pool);
		if (r < 0)
			continue;
		ms[r] = (now() - t0) * 1e3;
		cs[r] = cpu() - c0;
		printf("rep %d ms %.2f tok_s %.2f cpu_s %.3f\n", r, ms[r],
		       n / (ms[r] / 1e3), cs[r]);
	}
	qsort(ms, (size_t)reps, sizeof(double), cmp);
	qsort(cs, (size_t)reps, sizeof(double), cmp);
	sec = ms[reps / 2] / 1e3;
	printf("mmbench n %zu threads %d isa %s compute %s ms %.2f tok_s %.2f "
	       "bytes %zu gflop_s %.1f gflop_s_cpu %.1f\n", n, threads,
	       hf_matmul_isa_name(), ct == HF_DTYPE_F32 ? "f32" : "bf16",
	       sec * 1e3, n / sec, bytes, flops / sec / 1e9,
	       flops / cs[reps / 2] / 1e9);
	hf_pool_free(pool);
	hf_st_model_free(m);
	return 0;
usage:
	fprintf(stderr, "usage: mmbench -m <model dir> [-t threads] "
		"[-n tokens] [-r reps] [-d f32|bf16] [-l matrices]\n");
	return 2;
}
