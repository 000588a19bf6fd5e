/* lib/core/pool.h: a fixed thread pool for data-parallel kernels. */
#ifndef HF_CORE_POOL_H
#define HF_CORE_POOL_H

#include <stddef.h>

#include "core/err.h"

struct hf_pool;

/* A job: called once for each ith in [0, n), n the pool's size, each
 * call on whichever thread of the pool claims it first (the caller's
 * included), so one thread may run several; a call must not assume
 * which thread runs it (per-thread state belongs in thread-local
 * storage). */
typedef void (*hf_pool_fn)(void *ctx, int ith, int nth);

/* nthreads <= 0 picks the number of online CPUs. The caller's thread is
 * thread 0, so a pool of 1 starts no thread. */
int hf_pool_create(struct hf_pool **out, int nthreads, struct hf_err *err);
void hf_pool_free(struct hf_pool *p);	/* NULL is fine */
int hf_pool_size(const struct hf_pool *p);	/* 1 for NULL */

/* Run the n calls of fn and return when all are done. p may be NULL
 * (runs fn(ctx, 0, 1)). Not reentrant: call from one thread at a time. */
void hf_pool_run(struct hf_pool *p, hf_pool_fn fn, void *ctx);

/* The [begin, end) share of n items for thread ith of nth. */
static inline void hf_pool_split(size_t n, int ith, int nth, size_t *begin,
				 size_t *end)
{
	size_t per = n / (size_t)nth, rem = n % (size_t)nth;
	size_t i = (size_t)ith;

	*begin = i * per + (i < rem ? i : rem);
	*end = *begin + per + (i < rem);
}

/* The number of online CPUs (at least 1). */
int hf_cpu_count(void);

#endif
