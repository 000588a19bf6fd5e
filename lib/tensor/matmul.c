/* lib/tensor/matmul.c: y = x . W^T for nn.Linear weights in F32/F16/BF16:
 * the reference loop, the portable kernels, and the dispatch that splits
 * the work across the pool and picks AVX-512, AVX2 or plain C once. */
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/cpu.h"
#include "tensor/matmul.h"
#include "tensor/matmul_kern.h"

static inline float w_at(const void *w, enum hf_dtype wt, size_t i)
{
	switch (wt) {
	case HF_DTYPE_F32:
		return ((const float *)w)[i];
	case HF_DTYPE_F16:
		return hf_f16_to_f32(((const uint16_t *)w)[i]);
	case HF_DTYPE_BF16:
		return hf_bf16_to_f32(((const uint16_t *)w)[i]);
	default:
		assert(!"hf_matmul: weight dtype must be F32, F16 or BF16");
		return 0.0f;
	}
}

/* x: (n, in); w: (out, in) in dtype wt; bias: (out) or NULL; y: (n, out).
 * Sums in double so that it is the most accurate of the paths. */
void hf_matmul_ref(float *y, const float *x, const void *w, enum hf_dtype wt,
		   const float *bias, size_t n, size_t in, size_t out)
{
	for (size_t t = 0; t < n; t++) {
		const float *xt = x + t * in;

		for (size_t o = 0; o < out; o++) {
			double s = bias ? bias[o] : 0.0;

			for (size_t i = 0; i < in; i++)
				s += (double)xt[i] * w_at(w, wt, o * in + i);
			y[t * out + o] = (float)s;
		}
	}
}

/* ---- portable C kernels ------------------------------------------------ */

/* Eight partial sums per row: the compiler keeps them in two SSE
 * registers without needing -ffast-math to reassociate. */
static inline float dot_c(const float *x, const void *w, enum hf_dtype wt,
			  size_t o, size_t in)
{
	float s[8] = { 0 }, r;
	size_t i = 0;

	for (; i + 8 <= in; i += 8)
		for (int k = 0; k < 8; k++)
			s[k] += x[i + k] * w_at(w, wt, o + i + k);
	r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
	for (; i < in; i++)
		r += x[i] * w_at(w, wt, o + i);
	return r;
}

static void gemv_c(float *y, size_t ldy, const float *x, size_t nt,
		   const void *w, enum hf_dtype wt, const float *bias,
		   size_t in, size_t r0, size_t r1)
{
	for (size_t r = r0; r < r1; r++)
		for (size_t t = 0; t < nt; t++)
			y[t * ldy + r] = dot_c(x + t * in, w, wt, r * in, in) +
					 (bias ? bias[r] : 0.0f);
}

static void widen_c(float *dst, const void *w, enum hf_dtype wt, size_t in,
		    size_t r0, size_t rows, size_t k0, size_t kc)
{
	for (size_t r = 0; r < rows; r++)
		for (size_t k = 0; k < kc; k++)
			dst[r * kc + k] = w_at(w, wt, (r0 + r) * in + k0 + k);
}

static const struct mm_kern mm_generic = {
	"generic", gemv_c, widen_c, NULL,
};

/* ---- dispatch ---------------------------------------------------------- */

static const struct mm_kern *kern;
static pthread_once_t kern_once = PTHREAD_ONCE_INIT;

static const struct mm_kern *isa_kern(enum hf_matmul_isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
	if (isa == HF_MATMUL_AVX512 && hf_cpu_has(HF_CPU_AVX512F) &&
	    hf_cpu_has(HF_CPU_AVX512BW) && hf_cpu_has(HF_CPU_AVX512VL) &&
	    hf_cpu_has(HF_CPU_FMA) && hf_cpu_has(HF_CPU_F16C))
		return &mm_avx512;
	if (isa == HF_MATMUL_AVX2 && hf_cpu_has(HF_CPU_AVX2) &&
	    hf_cpu_has(HF_CPU_FMA) && hf_cpu_has(HF_CPU_F16C))
		return &mm_avx2;
#endif
	if (isa == HF_MATMUL_GENERIC)
		return &mm_generic;
	return NULL;
}

/* The best the CPU has, unless HF_CPU names one (generic, avx2, avx512). */
static void kern_init(void)
{
	const char *e = getenv("HF_CPU");

	if (e && !strcmp(e, "generic"))
		kern = isa_kern(HF_MATMUL_GENERIC);
	else if (e && !strcmp(e, "avx2"))
		kern = isa_kern(HF_MATMUL_AVX2);
	else if (e && !strcmp(e, "avx512"))
		kern = isa_kern(HF_MATMUL_AVX512);
	if (!kern)
		kern = isa_kern(HF_MATMUL_AVX512);
	if (!kern)
		kern = isa_kern(HF_MATMUL_AVX2);
	if (!kern)
		kern = isa_kern(HF_MATMUL_GENERIC);
}

static const struct mm_kern *get_kern(void)
{
	pthread_once(&kern_once, kern_init);
	return kern;
}

int hf_matmul_set_isa(enum hf_matmul_isa isa)
{
	const struct mm_kern *k = isa_kern(isa);

	get_kern();
	if (!k)
		return -1;
	kern = k;
	return 0;
}

const char *hf_matmul_isa_name(void)
{
	return get_kern()->name;
}

/* ---- per-thread scratch ------------------------------------------------- */

/* Each thread (pool workers included) keeps one 64-byte aligned buffer
 * that only grows; freed when the thread exits. */
struct scratch {
	float *p;
	size_t n;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v)
{
	struct scratch *s = v;

	free(s->p);
	free(s);
}

static void scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

/* NULL if out of memory. */
static float *scratch_get(size_t n)
{
	struct scratch *s;

	pthread_once(&scratch_once, scratch_init);
	s = pthread_getspecific(scratch_key);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || pthread_setspecific(scratch_key, s)) {
			free(s);
			return NULL;
		}
	}
	if (s->n < n) {
		size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
		float *p = aligned_alloc(64, bytes);

		if (!p)
			return NULL;
		free(s->p);
		s->p = p;
		s->n = n;
	}
	return s->p;
}

/* ---- the products ------------------------------------------------------- */

struct job {
	const struct mm_kern *k;
	float *y;
	const float *x;
	const void *w;
	enum hf_dtype wt;
	const float *bias;
	size_t n, in, out;
};

/* Rows of W per block handed to a thread: 16 rows keep a block's share
 * aligned to cache lines for every dtype and leave the 4-row kernels no
 * tail except at the end of W. */
#define GEMV_BLOCK 16

static void gemv_job(void *ctx, int ith, int nth)
{
	struct job *j = ctx;
	size_t nb = (j->out + GEMV_BLOCK - 1) / GEMV_BLOCK, b, e;

	hf_pool_split(nb, ith, nth, &b, &e);
	b *= GEMV_BLOCK;
	e = e * GEMV_BLOCK < j->out ? e * GEMV_BLOCK : j->out;
	for (size_t t = 0; t < j->n && b < e; t += MM_GEMV_NT)
		j->k->gemv(j->y + t * j->out, j->out, j->x + t * j->in,
			   j->n - t < MM_GEMV_NT ? j->n - t : MM_GEMV_NT,
			   j->w, j->wt, j->bias, j->in, b, e);
}

/* y[:, j0:j1] = bias or 0, before the kernels add into it. */
static void init_cols(struct job *j, size_t j0, size_t j1)
{
	for (size_t t = 0; t < j->n; t++) {
		float *yr = j->y + t * j->out;

		if (j->bias)
			memcpy(yr + j0, j->bias + j0, (j1 - j0) * sizeof(float));
		else
			memset(yr + j0, 0, (j1 - j0) * sizeof(float));
	}
}

/* Rows of W widened per cblas_sgemm call when there is no own GEMM (the
 * generic path). Each pool thread calls cblas_sgemm on its own columns,
 * so OpenBLAS should run one thread per call: OPENBLAS_NUM_THREADS=1, as
 * the tests set it; with more, the calls still give the same result. */
#define PANEL 64

/* Columns of y in MM_NR blocks, contiguous per thread. */
static void gemm_job(void *ctx, int ith, int nth)
{
	struct job *j = ctx;
	size_t nb = (j->out + MM_NR - 1) / MM_NR, j0, j1;
	float *s;

	hf_pool_split(nb, ith, nth, &j0, &j1);
	j0 *= MM_NR;
	j1 = j1 * MM_NR < j->out ? j1 * MM_NR : j->out;
	if (j0 >= j1)
		return;
	init_cols(j, j0, j1);
	if (j->k->gemm) {
		s = scratch_get(mm_gemm_scratch(j->n));
		if (s) {
			j->k->gemm(j->y, j->x, j->w, j->wt, j->n, j->in, j->out,
				   j0, j1, s);
			return;
		}
	} else if (j->wt == HF_DTYPE_F32) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
			    (int)j->n, (int)(j1 - j0), (int)j->in, 1.0f, j->x,
			    (int)j->in, (const float *)j->w + j0 * j->in,
			    (int)j->in, 1.0f, j->y + j0, (int)j->out);
		return;
	} else if ((s = scratch_get(PANEL * j->in))) {
		for (size_t p = j0; p < j1; p += PANEL) {
			size_t rows = j1 - p < PANEL ? j1 - p : PANEL;

			j->k->widen(s, j->w, j->wt, j->in, p, rows, 0, j->in);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				    (int)j->n, (int)rows, (int)j->in, 1.0f,
				    j->x, (int)j->in, s, (int)j->in, 1.0f,
				    j->y + p, (int)j->out);
		}
		return;
	}
	/* out of memory for scratch: the matrix-vector kernel needs none */
	for (size_t t = 0; t < j->n; t += MM_GEMV_NT)
		j->k->gemv(j->y + t * j->out, j->out, j->x + t * j->in,
			   j->n - t < MM_GEMV_NT ? j->n - t : MM_GEMV_NT,
			   j->w, j->wt, j->bias, j->in, j0, j1);
}

/* Up to this many tokens, the matrix-vector kernel (reading W once for
 * all of them) beats packing W for the GEMM. */
#define GEMM_MIN_N (MM_GEMV_NT + 1)

void hf_matmul(float *y, const float *x, const void *w, enum hf_dtype wt,
	       const float *bias, size_t n, size_t in, size_t out,
	       struct hf_pool *pool)
{
	struct job j = { get_kern(), y, x, w, wt, bias, n, in, out };

	assert(wt == HF_DTYPE_F32 || wt == HF_DTYPE_F16 ||
	       wt == HF_DTYPE_BF16);
	if (!n || !out)
		return;
	if (!in) {
		init_cols(&j, 0, out);
		return;
	}
	hf_pool_run(pool, n < GEMM_MIN_N ? gemv_job : gemm_job, &j);
}
