/* scripts/bench/membw.c: read-only streaming bandwidth, the decode limit.
 * usage: membw [threads [MiB [reps]]]; prints "membw <GB/s> ..." on stdout:
 * the median over reps of bytes read / wall time, every thread summing its
 * own contiguous part of one buffer much larger than the caches. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct part {
	const uint64_t *p;
	size_t n;
	pthread_barrier_t *bar;
	int reps;
	uint64_t sink;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double times[64];

/* Four independent 64-byte sums so that the loop is bound by loads, not
 * adds; built with -march=native these are zmm loads. */
typedef uint64_t v8 __attribute__((vector_size(64)));

static uint64_t stream(const uint64_t *p, size_t n)
{
	const v8 *v = (const v8 *)p;
	v8 s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };

	for (size_t i = 0; i + 4 <= n / 8; i += 4) {
		s0 ^= v[i];
		s1 ^= v[i + 1];
		s2 ^= v[i + 2];
		s3 ^= v[i + 3];
	}
	s0 ^= s1 ^ s2 ^ s3;
	return s0[0] + s0[1] + s0[2] + s0[3] + s0[4] + s0[5] + s0[6] + s0[7];
}

static void *worker(void *arg)
{
	struct part *pt = arg;

	for (int r = 0; r < pt->reps; r++) {
		double t0;

		pthread_barrier_wait(pt->bar);
		t0 = now();
		pt->sink += stream(pt->p, pt->n);
		pthread_barrier_wait(pt->bar);
		times[r] = now() - t0;	/* the last writer wins; close enough */
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int nt = argc > 1 ? atoi(argv[1]) : 2;
	size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
	int reps = argc > 3 ? atoi(argv[3]) : 9;
	size_t n = mib << 17;	/* uint64 words */
	uint64_t *buf;
	pthread_t th[64];
	struct part pt[64];
	pthread_barrier_t bar;
	uint64_t sink = 0;

	if (nt < 1 || nt > 64 || reps < 1 || reps > 64 || !mib) {
		fprintf(stderr, "usage: membw [threads [MiB [reps]]]\n");
		return 2;
	}
	buf = aligned_alloc(4096, n * 8);
	if (!buf) {
		perror("membw");
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = i * 0x9E3779B97F4A7C15ull;
	pthread_barrier_init(&bar, NULL, (unsigned)nt);
	for (int t = 0; t < nt; t++) {
		size_t per = n / nt / 32 * 32;

		pt[t] = (struct part){ buf + per * t, per, &bar, reps, 0 };
		pthread_create(&th[t], NULL, worker, &pt[t]);
	}
	for (int t = 0; t < nt; t++) {
		pthread_join(th[t], NULL);
		sink += pt[t].sink;
	}
	qsort(times, reps, sizeof(double), cmp);
	printf("membw %.1f GB/s threads %d buffer %zu MiB best %.1f sink %d\n",
	       (double)(n / nt / 32 * 32 * nt) * 8 / times[reps / 2] / 1e9, nt,
	       mib, (double)(n / nt / 32 * 32 * nt) * 8 / times[0] / 1e9,
	       (int)(sink & 1));
	free(buf);
	return 0;
}
