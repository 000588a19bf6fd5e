/* lib/core/pool.c: a fixed thread pool. Workers wait on a generation
 * counter; a job is published by bumping it, and the caller runs its own
 * share before waiting for the others. */
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct hf_pool {
	int n;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_cond_t done;
	hf_pool_fn fn;
	void *ctx;
	atomic_uint gen;	/* bumped for every job */
	atomic_int pending;	/* workers still running the current job */
	int stop;
};

struct worker_arg {
	struct hf_pool *p;
	int ith;
};

static void *worker(void *arg)
{
	struct worker_arg *wa = arg;
	struct hf_pool *p = wa->p;
	int ith = wa->ith;
	unsigned seen = 0;

	free(wa);
	for (;;) {
		unsigned g;
		int spins = 0;

		/* spin briefly: kernels are often called back to back */
		while ((g = atomic_load_explicit(&p->gen, memory_order_acquire))
			       == seen && spins < 20000)
			spins++;
		if (g == seen) {
			pthread_mutex_lock(&p->mu);
			while ((g = atomic_load(&p->gen)) == seen && !p->stop)
				pthread_cond_wait(&p->wake, &p->mu);
			pthread_mutex_unlock(&p->mu);
		}
		if (p->stop)
			return NULL;
		seen = g;
		p->fn(p->ctx, ith, p->n);
		if (atomic_fetch_sub(&p->pending, 1) == 1) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
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
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	p->threads = calloc((size_t)nthreads, sizeof(pthread_t));
	if (!p->threads) {
		hf_pool_free(p);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (int i = 1; i < nthreads; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));

		/* filled before the thread starts: it reads them at once */
		if (wa) {
			wa->p = p;
			wa->ith = i;
		}
		if (!wa || pthread_create(&p->threads[i], NULL, worker, wa)) {
			free(wa);
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
	p->stop = 1;
	atomic_fetch_add(&p->gen, 1);
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
	if (!p || p->n == 1) {
		fn(ctx, 0, 1);
		return;
	}
	p->fn = fn;
	p->ctx = ctx;
	atomic_store(&p->pending, p->n - 1);
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	fn(ctx, 0, p->n);
	for (int spins = 0; atomic_load(&p->pending) > 0 && spins < 200000;
	     spins++)
		;
	if (atomic_load(&p->pending) > 0) {
		pthread_mutex_lock(&p->mu);
		while (atomic_load(&p->pending) > 0)
			pthread_cond_wait(&p->done, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
}
