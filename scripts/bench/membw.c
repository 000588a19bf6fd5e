/* scripts/bench/membw.c: read-only streaming bandwidth, the decode limit.
 *
 * usage: membw [-t <threads>] [-s <MiB>] [-r <reps>] [-a] [-V <variant>]
 *              [-4] [-v]
 *
 * Reads one buffer much larger than the last-level cache the way a
 * decoder reads its weights: read-only, once per pass, on an hf_pool
 * (lib/core/pool.h, the decoder's pool), each thread summing its own
 * contiguous share of 4 KiB rows, split in blocks of 16 rows as gemv_job
 * in lib/tensor/matmul.c splits a matrix. It tries several ways of
 * reading and reports the best, since a probe that reads slower than a
 * decoder is not the machine's limit:
 *
 *   <isa>      avx512 (zmm loads), avx2 (ymm) or generic (C, what the
 *              compiler does for baseline x86-64); each that the CPU
 *              runs, by the checks hf_matmul makes (lib/core/cpu.h)
 *   s<S>       S streams per thread: the share cut into S contiguous
 *              parts read side by side, a 128-byte step in each
 *   g4         the decoder's own order: 4 rows at a time, side by side
 *              (gemv512 and gemv256 in lib/tensor/matmul_x86.c)
 *   pf<D>      software prefetch (prefetcht0) D bytes ahead on every
 *              stream; none without
 *   pin        each pool thread pinned to its own CPU
 *
 * e.g. avx512-s4-pf2k-pin. The default set (in_default) is the best ISA
 * in every order and the others at s4, each with prefetch at 2 KiB and
 * without, pinned and not; -a runs every combination (prefetch at 512
 * bytes and 2 KiB), -V one. Each variant runs one untimed pass
 * and then reps timed passes; its figure is the median of bytes / wall
 * time of one hf_pool_run. -v prints each variant to stderr, and stdout
 * gets one line:
 *   membw <GB/s> GB/s variant <name> threads <t> buffer <MiB> MiB
 *         reps <r> variants <n> llc <MiB> MiB
 * GB/s is the best variant's median (10^9 bytes).
 *
 * -s defaults to 4 times the last-level cache the C library reports, at
 * least 1 GiB and at most a quarter of memory. The buffer is an anonymous
 * mapping in transparent huge pages where the kernel gives them (-4: in
 * 4 KiB pages, as a decoder's mapped weights are), filled by the pool
 * threads first, each its own share.
 *
 * Built by scripts/bench/run with cc against build/lib/libhf.a, without
 * -march: one binary for every x86-64, the ISA chosen at run time. */
#define _GNU_SOURCE
#include <getopt.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/cpu.h"
#include "core/pool.h"

#define ROW 4096	/* bytes: a row of 2048 f16, the 1B shape's width */
#define BLOCK 16	/* rows: gemv_job's GEMV_BLOCK */
#define STEP 128	/* bytes per stream per step: two cache lines */

static const char usage[] =
	"usage: membw [-t <threads>] [-s <MiB>] [-r <reps>] [-a] "
	"[-V <variant>] [-4] [-v]\n";

/* One pass over [p, p + len) in S streams of len / S bytes each (len a
 * multiple of S * STEP), prefetching pf bytes ahead when pf > 0; returns
 * a sum of everything read so the loads stay. One accumulator per stream
 * (the adds are not what limits the loop), of type VT: ADD(acc, q) adds
 * the STEP bytes at q, SUM(acc) folds one to 64 bits. */
#define DEF_READ(isa, TGT, VT, ADD, SUM)				\
static inline __attribute__((always_inline)) TGT uint64_t		\
read_##isa##_n(const char *p, size_t len, size_t pf, const int S)	\
{									\
	size_t l = len / (size_t)S;					\
	VT a[8];							\
	uint64_t r = 0;							\
									\
	memset(a, 0, sizeof(a));					\
	if (pf) {							\
		for (size_t i = 0; i < l; i += STEP) {			\
			_Pragma("GCC unroll 8")				\
			for (int k = 0; k < S; k++) {			\
				const char *q = p + (size_t)k * l + i;	\
									\
				__builtin_prefetch(q + pf, 0, 3);	\
				__builtin_prefetch(q + pf + 64, 0, 3);	\
				ADD(a[k], q);				\
			}						\
		}							\
	} else {							\
		for (size_t i = 0; i < l; i += STEP) {			\
			_Pragma("GCC unroll 8")				\
			for (int k = 0; k < S; k++) {			\
				const char *q = p + (size_t)k * l + i;	\
									\
				ADD(a[k], q);				\
			}						\
		}							\
	}								\
	for (int k = 0; k < S; k++)					\
		r += SUM(a[k]);						\
	return r;							\
}									\
									\
static __attribute__((noinline)) TGT uint64_t				\
read_##isa(const char *p, size_t len, int s, size_t pf)		\
{									\
	switch (s) {							\
	case 1: return read_##isa##_n(p, len, pf, 1);			\
	case 2: return read_##isa##_n(p, len, pf, 2);			\
	case 4: return read_##isa##_n(p, len, pf, 4);			\
	default: return read_##isa##_n(p, len, pf, 8);			\
	}								\
}

/* Plain C: sixteen 64-bit loads a step, summed as a tree. */
#define ADD_C(a, q) do {						\
	const uint64_t *w_ = (const uint64_t *)(q);			\
	(a) += ((w_[0] + w_[1]) + (w_[2] + w_[3])) +			\
	       ((w_[4] + w_[5]) + (w_[6] + w_[7])) +			\
	       ((w_[8] + w_[9]) + (w_[10] + w_[11])) +			\
	       ((w_[12] + w_[13]) + (w_[14] + w_[15]));			\
} while (0)
#define SUM_C(a) (a)
DEF_READ(generic, , uint64_t, ADD_C, SUM_C)

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* Four ymm loads a step. */
#define ADD_256(a, q) do {						\
	const __m256i *v_ = (const __m256i *)(q);			\
	(a) = _mm256_add_epi64((a), _mm256_add_epi64(			\
		_mm256_add_epi64(_mm256_load_si256(v_),			\
				 _mm256_load_si256(v_ + 1)),		\
		_mm256_add_epi64(_mm256_load_si256(v_ + 2),		\
				 _mm256_load_si256(v_ + 3))));		\
} while (0)
#define SUM_256(a) ((uint64_t)_mm256_extract_epi64((a), 0) +		\
	(uint64_t)_mm256_extract_epi64((a), 1) +			\
	(uint64_t)_mm256_extract_epi64((a), 2) +			\
	(uint64_t)_mm256_extract_epi64((a), 3))
DEF_READ(avx2, __attribute__((target("avx2"))), __m256i, ADD_256, SUM_256)

/* Two zmm loads a step. */
#define ADD_512(a, q) do {						\
	const __m512i *v_ = (const __m512i *)(q);			\
	(a) = _mm512_add_epi64((a), _mm512_add_epi64(			\
		_mm512_load_si512(v_), _mm512_load_si512(v_ + 1)));	\
} while (0)
#define SUM_512(a) ((uint64_t)_mm512_reduce_add_epi64(a))
DEF_READ(avx512, __attribute__((target("avx512f"))), __m512i, ADD_512,
	 SUM_512)
#endif

typedef uint64_t (*read_fn)(const char *p, size_t len, int s, size_t pf);

struct isa {
	const char *name;
	read_fn fn;
	int ok;
};

static struct isa isas[] = {
#if defined(__x86_64__) || defined(__i386__)
	{ "avx512", read_avx512, 0 },
	{ "avx2", read_avx2, 0 },
#endif
	{ "generic", read_generic, 1 },
};

#define NISA (int)(sizeof(isas) / sizeof(isas[0]))

/* The checks hf_matmul makes for its AVX-512 and AVX2 paths. */
static void probe_isas(void)
{
#if defined(__x86_64__) || defined(__i386__)
	isas[0].ok = hf_cpu_has(HF_CPU_AVX512F) &&
		hf_cpu_has(HF_CPU_AVX512BW) && hf_cpu_has(HF_CPU_AVX512VL) &&
		hf_cpu_has(HF_CPU_FMA) && hf_cpu_has(HF_CPU_F16C);
	isas[1].ok = hf_cpu_has(HF_CPU_AVX2) && hf_cpu_has(HF_CPU_FMA) &&
		hf_cpu_has(HF_CPU_F16C);
#endif
}

struct variant {
	int isa;	/* index in isas */
	int s;		/* streams, or 0 for g4 */
	size_t pf;	/* prefetch distance in bytes, 0 for none */
	int pin;
};

static void variant_name(char *buf, size_t n, const struct variant *v)
{
	char pf[16] = "";

	if (v->pf)
		snprintf(pf, sizeof(pf), v->pf % 1024 ? "-pf%zu" : "-pf%zuk",
			 v->pf % 1024 ? v->pf : v->pf / 1024);
	if (v->s)
		snprintf(buf, n, "%s-s%d%s%s", isas[v->isa].name, v->s, pf,
			 v->pin ? "-pin" : "");
	else
		snprintf(buf, n, "%s-g4%s%s", isas[v->isa].name, pf,
			 v->pin ? "-pin" : "");
}

/* The inverse, for -V; -1 if name is not one. */
static int variant_parse(struct variant *v, const char *name)
{
	for (int i = 0; i < NISA; i++) {
		size_t l = strlen(isas[i].name);
		const char *p = name + l;
		char *end;

		if (strncmp(name, isas[i].name, l) || *p != '-')
			continue;
		memset(v, 0, sizeof(*v));
		v->isa = i;
		if (!strncmp(p, "-g4", 3)) {
			p += 3;
		} else if (!strncmp(p, "-s", 2)) {
			v->s = (int)strtol(p + 2, &end, 10);
			if (v->s != 1 && v->s != 2 && v->s != 4 && v->s != 8)
				return -1;
			p = end;
		} else {
			return -1;
		}
		if (!strncmp(p, "-pf", 3)) {
			v->pf = strtoul(p + 3, &end, 10);
			if (*end == 'k') {
				v->pf *= 1024;
				end++;
			}
			if (!v->pf)
				return -1;
			p = end;
		}
		if (!strcmp(p, "-pin")) {
			v->pin = 1;
			p += 4;
		}
		return *p ? -1 : 0;
	}
	return -1;
}

/* The default set: the best ISA in every order, with prefetch at 2 KiB
 * or none, pinned or not, and at s4 with prefetch at 512 bytes too; the
 * other ISAs at s4, prefetch at 2 KiB or none, pinned or not. */
static int in_default(const struct variant *v, int top)
{
	if (v->isa == top)
		return v->pf != 512 || v->s == 4;
	return v->s == 4 && v->pf != 512;
}

/* ---- the pool's jobs -------------------------------------------------- */

struct job {
	char *buf;
	size_t rows;
	struct variant v;
	uint64_t sink[256];
	int fill;	/* write the share instead of reading it */
};

static cpu_set_t all_cpus;
static int ncpus;
static atomic_int next_cpu;
static _Thread_local int pinned = -1;	/* the CPU this thread is on */

/* Pin the calling thread to a CPU of its own (the pool's threads take
 * them in turn, whichever slots they run), or give it back every CPU. */
static void place(int pin)
{
	if (pin && pinned < 0) {
		int k = atomic_fetch_add(&next_cpu, 1) % ncpus, c = -1;
		cpu_set_t one;

		for (int i = 0, seen = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &all_cpus) && seen++ == k) {
				c = i;
				break;
			}
		CPU_ZERO(&one);
		if (c >= 0) {
			CPU_SET(c, &one);
			if (!sched_setaffinity(0, sizeof(one), &one))
				pinned = c;
		}
	} else if (!pin && pinned >= 0) {
		sched_setaffinity(0, sizeof(all_cpus), &all_cpus);
		pinned = -1;
	}
}

static void job_fn(void *ctx, int ith, int nth)
{
	struct job *j = ctx;
	size_t nb = j->rows / BLOCK, b, e;
	const char *p;
	read_fn rd = isas[j->v.isa].fn;
	uint64_t s = 0;

	hf_pool_split(nb, ith, nth, &b, &e);
	b *= BLOCK * (size_t)ROW;
	e *= BLOCK * (size_t)ROW;
	if (j->fill) {
		uint64_t *w = (uint64_t *)(j->buf + b);

		for (size_t i = 0; i < (e - b) / 8; i++)
			w[i] = (b / 8 + i) * 0x9E3779B97F4A7C15ull;
		return;
	}
	place(j->v.pin);
	p = j->buf;
	if (j->v.s)
		s = rd(p + b, e - b, j->v.s, j->v.pf);
	else
		for (size_t o = b; o < e; o += 4 * ROW)
			s += rd(p + o, 4 * ROW, 4, j->v.pf);
	j->sink[ith % 256] += s;
}

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

/* Seconds of one pass of j's variant. */
static double pass(struct hf_pool *pool, struct job *j)
{
	double t0 = now();

	hf_pool_run(pool, job_fn, j);
	return now() - t0;
}

static size_t default_mib(size_t *llc_mib)
{
	long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	size_t mib, cap;

	if (llc <= 0)
		llc = sysconf(_SC_LEVEL2_CACHE_SIZE);
	*llc_mib = llc > 0 ? ((size_t)llc + (1 << 20) - 1) >> 20 : 0;
	mib = 4 * *llc_mib > 1024 ? 4 * *llc_mib : 1024;
	cap = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz / 4 >> 20 : mib;
	return mib < cap ? mib : cap;
}

int main(int argc, char **argv)
{
	static const size_t pfs[] = { 0, 512, 2048 };	/* as in_default() */
	static const int streams[] = { 1, 2, 4, 8, 0 };
	int nt = 2, reps = 5, all = 0, verbose = 0, small = 0, c, nv = 0;
	int top = -1;
	size_t mib = 0, llc_mib, bytes;
	const char *only = NULL;
	struct variant vs[256], win;
	struct hf_pool *pool = NULL;
	struct hf_err err = { 0 };
	struct job *j;
	static double t[256][64];
	double bw = 0, b;
	char name[64];

	while ((c = getopt(argc, argv, "t:s:r:aV:4vh")) != -1) {
		switch (c) {
		case 't': nt = atoi(optarg); break;
		case 's': mib = (size_t)atol(optarg); break;
		case 'r': reps = atoi(optarg); break;
		case 'a': all = 1; break;
		case 'V': only = optarg; break;
		case '4': small = 1; break;
		case 'v': verbose = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc || nt < 1 || nt > 256 || reps < 1 || reps > 64) {
		fputs(usage, stderr);
		return 2;
	}
	probe_isas();
	for (int i = 0; i < NISA && top < 0; i++)
		if (isas[i].ok)
			top = i;
	if (only) {
		if (variant_parse(&vs[0], only) || !isas[vs[0].isa].ok) {
			fprintf(stderr, "membw: no variant '%s' on this CPU\n",
				only);
			return 2;
		}
		nv = 1;
	} else {
		for (int i = 0; i < NISA; i++)
			for (size_t s = 0; s < sizeof(streams) / sizeof(int); s++)
				for (size_t f = 0; f < 3; f++)
					for (int pin = 0; pin < 2; pin++) {
						struct variant v = { i,
							streams[s], pfs[f],
							pin };

						if (!isas[i].ok || (!all &&
						    !in_default(&v, top)))
							continue;
						vs[nv++] = v;
					}
	}
	{
		size_t d = default_mib(&llc_mib);

		if (!mib)
			mib = d;
	}
	bytes = mib << 20;
	bytes -= bytes % ((size_t)nt * BLOCK * ROW);
	if (!bytes) {
		fputs(usage, stderr);
		return 2;
	}
	sched_getaffinity(0, sizeof(all_cpus), &all_cpus);
	ncpus = CPU_COUNT(&all_cpus) > 0 ? CPU_COUNT(&all_cpus) : 1;
	j = calloc(1, sizeof(*j));
	if (!j || hf_pool_create(&pool, nt, &err)) {
		fprintf(stderr, "membw: %s\n", j ? err.msg : "out of memory");
		return 1;
	}
	j->buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (j->buf == MAP_FAILED) {
		perror("membw");
		return 1;
	}
	madvise(j->buf, bytes, small ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
	j->rows = bytes / ROW;
	j->fill = 1;
	hf_pool_run(pool, job_fn, j);
	j->fill = 0;
	/* one untimed pass of each, then rounds through all of them, so a
	 * spell of load on the machine falls on every variant alike */
	for (int i = 0; i < nv; i++) {
		j->v = vs[i];
		pass(pool, j);
	}
	for (int r = 0; r < reps; r++)
		for (int i = 0; i < nv; i++) {
			j->v = vs[i];
			t[i][r] = pass(pool, j);
		}
	for (int i = 0; i < nv; i++) {
		qsort(t[i], (size_t)reps, sizeof(double), cmp);
		b = (double)bytes / t[i][reps / 2] / 1e9;
		variant_name(name, sizeof(name), &vs[i]);
		if (verbose)
			fprintf(stderr, "membw: %-24s %6.1f GB/s (best %.1f)\n",
				name, b, (double)bytes / t[i][0] / 1e9);
		if (b > bw) {
			bw = b;
			win = vs[i];
		}
	}
	variant_name(name, sizeof(name), &win);
	{
		uint64_t sink = 0;

		for (int i = 0; i < 256; i++)
			sink += j->sink[i];
		printf("membw %.1f GB/s variant %s threads %d buffer %zu MiB "
		       "reps %d variants %d llc %zu MiB sink %d\n", bw, name, nt,
		       bytes >> 20, reps, nv, llc_mib, (int)(sink & 1));
	}
	munmap(j->buf, bytes);
	hf_pool_free(pool);
	free(j);
	return 0;
}
