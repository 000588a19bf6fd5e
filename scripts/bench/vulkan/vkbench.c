/* scripts/bench/vulkan/vkbench.c: a model on the Vulkan backend, end to
 * end and per op, for scripts/bench/vulkan/run.
 *
 * usage: vkbench -m <model dir> [-p pp] [-g tg] [-r reps]
 *
 * Prints, one "key value ..." line each:
 *   device <name> type <type> subgroup <n>
 *   membw <GB/s>                 copy probe: 2 x bytes / device time,
 *                                best of runs before and after the model
 *   pp <tokens> ms <ms> tok_s <t/s>        prompt of pp tokens, one forward
 *   tg <tokens> ms <ms> tok_s <t/s>        tg greedy decode steps
 *   bytes <B/token> frac <x>     weights read per decode token; fraction
 *                                of membw that tg reaches
 *   op <phase> <shader> ms <ms> share <%>  device time per shader
 * Median of reps for pp and tg. Built with cc against libhf.a. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/vulkan/backend_vk.h"
#include "backend/vulkan/vk.h"
#include "model/model.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

static void die(const char *what, const struct hf_err *err)
{
	fprintf(stderr, "vkbench: %s: %s\n", what, err->msg);
	exit(1);
}

/* Device time of one big copy: the bandwidth a decode step could reach. */
static double membw(struct hf_vk *vk)
{
	/* floats: 64 MiB each way, 512 MiB on a discrete GPU (past its
	 * L2, which reaches 50 MB) */
	const size_t n = (size_t)(hf_vk_info(vk)->type == HF_VK_DEV_DISCRETE ?
				  128 : 16) << 20;
	struct hf_err err = { 0 };
	struct hf_vk_buf *a, *b;
	struct hf_vk_seq *s;
	const struct hf_vk_timing *t;
	double best = 0;
	size_t nt;

	if (hf_vk_buf_alloc(vk, &a, n * 4, &err) ||
	    hf_vk_buf_alloc(vk, &b, n * 4, &err) ||
	    hf_vk_zero(vk, a, &err) || hf_vk_seq_begin(vk, &s, &err) ||
	    hf_vk_op_copy(s, b, 0, a, 0, (uint32_t)n, &err) ||
	    hf_vk_seq_end(s, &err))
		die("bandwidth probe", &err);
	for (int r = 0; r < 3; r++) {
		if (hf_vk_seq_run(s, &err))
			die("bandwidth probe", &err);
		t = hf_vk_seq_timings(s, &nt);
		if (nt && t[0].ms > 0 && 2.0 * n * 4 / (t[0].ms * 1e6) > best)
			best = 2.0 * n * 4 / (t[0].ms * 1e6);
	}
	hf_vk_seq_free(s);
	hf_vk_buf_free(a);
	hf_vk_buf_free(b);
	return best;
}

static void ops(struct hf_backend *be, const char *phase)
{
	const char *names[64];
	double ms[64], total = 0;
	size_t n = hf_backend_vulkan_profile(be, names, ms, 64);

	for (size_t i = 0; i < n; i++)
		total += ms[i];
	for (size_t i = 0; i < n; i++)
		printf("op %s %s ms %.3f share %.1f\n", phase, names[i], ms[i],
		       total > 0 ? 100 * ms[i] / total : 0);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int pp = 512, tg = 128, reps = 1, c;
	struct hf_err err = { 0 };
	struct hf_backend *be;
	struct hf_model *m;
	const struct hf_vk_devinfo *di;
	double tpp[16], ttg[16], bw, t_load;
	size_t V;
	int32_t *ids;
	float *lg;

	while ((c = getopt(argc, argv, "m:p:g:r:")) != -1) {
		switch (c) {
		case 'm': dir = optarg; break;
		case 'p': pp = atoi(optarg); break;
		case 'g': tg = atoi(optarg); break;
		case 'r': reps = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!dir || pp < 1 || tg < 1 || reps < 1 || reps > 16)
		goto usage;
	if (hf_backend_vulkan_create(&be, &err))
		die("vulkan", &err);
	di = hf_vk_info(hf_backend_vulkan_dev(be));
	printf("device %s type %s subgroup %u\n", di->name,
	       hf_vk_devtype_name(di->type), di->subgroup_size);
	bw = membw(hf_backend_vulkan_dev(be));
	t_load = now();
	if (hf_model_open(&m, dir, be, 1, &err))
		die(dir, &err);
	fprintf(stderr, "vkbench: %s loaded in %.2f s\n", dir, now() - t_load);
	V = hf_model_vocab(m);
	ids = malloc(pp * sizeof(*ids));
	lg = malloc(V * sizeof(*lg));
	for (int i = 0; i < pp; i++)
		ids[i] = (int32_t)((i * 7919) % 1000 + 10);
	for (int r = 0; r < reps; r++) {
		struct hf_fwd_out o = { .logits = lg };
		struct hf_kv *kv;
		double t0;

		if (hf_kv_new(&kv, m, 1, pp + tg, &err))
			die("kv cache", &err);
		hf_backend_vulkan_profile(be, NULL, NULL, 0);
		t0 = now();
		if (hf_model_forward(m, kv, ids, NULL, pp, &o, &err))
			die("prompt", &err);
		tpp[r] = now() - t0;
		if (r == reps - 1)
			ops(be, "pp");
		t0 = now();
		for (int s = 0; s < tg; s++) {
			int32_t tok = 0;

			for (size_t v = 1; v < V; v++)
				if (lg[v] > lg[tok])
					tok = (int32_t)v;
			if (hf_model_forward(m, kv, &tok, NULL, 1, &o, &err))
				die("decode", &err);
		}
		ttg[r] = now() - t0;
		fprintf(stderr, "vkbench: run %d: pp%d %.1f ms, tg%d %.1f ms\n",
			r + 1, pp, tpp[r] * 1e3, tg, ttg[r] * 1e3);
		if (r == reps - 1)
			ops(be, "tg");
		hf_kv_free(kv);
	}
	{
		/* the probe again after the runs, the best of both: a busy
		 * machine only ever makes it look slower */
		double bw2 = membw(hf_backend_vulkan_dev(be));
		double a = median(tpp, reps), b = median(ttg, reps);
		size_t bytes = hf_model_weight_bytes(m);

		bw = bw2 > bw ? bw2 : bw;
		printf("membw %.2f\n", bw);

		printf("pp %d ms %.1f tok_s %.2f\n", pp, a * 1e3, pp / a);
		printf("tg %d ms %.1f tok_s %.2f\n", tg, b * 1e3, tg / b);
		printf("bytes %zu frac %.3f\n", bytes,
		       bw > 0 ? bytes * (tg / b) / (bw * 1e9) : 0);
	}
	free(ids);
	free(lg);
	hf_model_free(m);
	hf_backend_free(be);
	return 0;
usage:
	fprintf(stderr, "usage: vkbench -m <model dir> [-p pp] [-g tg] [-r reps]\n");
	return 2;
}
