/* lib/core/pool.c: a fixed thread pool. A job is n slots (ith = 0 .. n-1)
 * that the threads claim from one atomic counter, the caller too: a
 * worker that wakes late (or was preempted by another process) leaves its
 * slot to whoever is free, instead of the caller waiting for it. Workers
 * spin a little between jobs (decode runs hundreds of short jobs per
 * token, microseconds apart), then yield, then sleep on a condition
 * variable; the caller takes the mutex only when a worker sleeps. */
#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Waiting, in nanoseconds: spin this long, then spin with sched_yield()
 * (another runnable thread gets the core) up to the second figure, then
 * sleep. */
#define SPIN_NS 30000
#define YIELD_NS 1000000

struct hf_pool {
	int n;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_cond_t done;
	hf_pool_fn fn;
	void *ctx;
	/* the job's generation (high 32 bits) and its next unclaimed slot
	 * (low 32); a claim is one fetch_add, valid when the slot < n */
	_Atomic uint64_t claim;
	atomic_int left;	/* slots of the current job not yet finished */
	atomic_int sleepers;	/* workers blocked on wake */
	atomic_int caller_sleeps;	/* the caller is blocked on done */
	atomic_int stop;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Step i of a busy wait that started at *t0 (0: not yet read): spin,
 * yield the CPU past SPIN_NS, and past YIELD_NS return 1 (time to
 * block). */
static int wait_step(unsigned i, uint64_t *t0)
{
	uint64_t t;

	cpu_relax();
	if (i % 32)
		return 0;
	t = now_ns();
	if (!*t0)
		*t0 = t;
	if (t - *t0 > YIELD_NS)
		return 1;
	if (t - *t0 > SPIN_NS)
		sched_yield();
	return 0;
}

/* Claim and run slots of whatever job is current until none is left.
 * A claim of slot s < n pins the job: it cannot finish, so fn and ctx
 * (written before the job's claim word) stay its own. Returns the
 * generation last seen. */
static unsigned run_slots(struct hf_pool *p)
{
	for (;;) {
		uint64_t c = atomic_fetch_add(&p->claim, 1);
		unsigned s = (unsigned)c;

		if (s >= (unsigned)p->n)
			return (unsigned)(c >> 32);
		p->fn(p->ctx, (int)s, p->n);
		if (atomic_fetch_sub(&p->left, 1) == 1 &&
		    atomic_load(&p->caller_sleeps)) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

static unsigned gen_of(struct hf_pool *p)
{
	return (unsigned)(atomic_load(&p->claim) >> 32);
}

static void *worker(void *arg)
{
	struct hf_pool *p = arg;
	unsigned seen = gen_of(p);

	for (;;) {
		uint64_t t0 = 0;

		for (unsigned i = 0; gen_of(p) == seen && !wait_step(i, &t0);
		     i++)
			;
		if (gen_of(p) == seen) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while (gen_of(p) == seen && !atomic_load(&p->stop))
				pthread_cond_wait(&p->wake, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop))
			return NULL;
		seen = run_slots(p);
	}
}

int hf_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

int hf_pool_create(struct hf_pool **out, int nthreads, struct hf_err *err)
{
	struct hf_pool *p;

	*out = NULL;
	if (nthreads <= 0)
		nthreads = hf_cpu_count();
	p = calloc(1, sizeof(*p));
	if (!p)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	p->n = nthreads;
	/* generation 0 with every slot taken: no job yet */
	atomic_store(&p->claim, (uint64_t)(unsigned)nthreads);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	p->threads = calloc((size_t)nthreads, sizeof(pthread_t));
	if (!p->threads) {
		p->n = 1;
		hf_pool_free(p);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (int i = 1; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p)) {
			p->n = i;
			hf_pool_free(p);
			return hf_err_set(err, HF_EIO,
					  "cannot start thread %d of %d", i,
					  nthreads);
		}
	}
	*out = p;
	return 0;
}

void hf_pool_free(struct hf_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	/* a new generation with no slots wakes every worker to stop */
	atomic_store(&p->claim, ((uint64_t)(gen_of(p) + 1) << 32) |
				(unsigned)p->n);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		if (p->threads)
			pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	free(p->threads);
	free(p);
}

int hf_pool_size(const struct hf_pool *p)
{
	return p ? p->n : 1;
}

void hf_pool_run(struct hf_pool *p, hf_pool_fn fn, void *ctx)
{
	uint64_t t0 = 0;

	if (!p || p->n == 1) {
		fn(ctx, 0, 1);
		return;
	}
	/* the previous job is finished (left was 0), so no thread reads
	 * fn or ctx until the new claim word publishes them */
	p->fn = fn;
	p->ctx = ctx;
	atomic_store(&p->left, p->n);
	atomic_store(&p->claim, (uint64_t)(gen_of(p) + 1) << 32);
	if (atomic_load(&p->sleepers)) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->wake);
		pthread_mutex_unlock(&p->mu);
	}
	run_slots(p);
	for (unsigned i = 0; atomic_load(&p->left) > 0 && !wait_step(i, &t0);
	     i++)
		;
	if (atomic_load(&p->left) > 0) {
		pthread_mutex_lock(&p->mu);
		atomic_store(&p->caller_sleeps, 1);
		while (atomic_load(&p->left) > 0)
			pthread_cond_wait(&p->done, &p->mu);
		atomic_store(&p->caller_sleeps, 0);
		pthread_mutex_unlock(&p->mu);
	}
}
