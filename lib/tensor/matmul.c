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

/* Debian's OpenBLAS (the pthread build) starts a server thread per CPU
 * when it is loaded, and each spins on sched_yield for 2^28 TSC ticks
 * (about 0.1 s) before it sleeps: CPU taken from our pool, and from
 * hf-pull's hash thread, at every start of the binary. We never use them:
 * each pool thread calls cblas_sgemm on its own columns. So as soon as
 * the library is loaded, OpenBLAS is set to one thread and, where the
 * build has the call, its server is stopped. In that order: setting the
 * thread count restarts a stopped server. */
int blas_thread_shutdown_(void) __attribute__((weak));

__attribute__((constructor)) static void blas_one_thread(void)
{
	openblas_set_num_threads(1);
	if (blas_thread_shutdown_)
		blas_thread_shutdown_();
}

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

/* bf16(v) as float: round to nearest even, as hf_f32_to_bf16. */
static inline float round_bf16(float v)
{
	return hf_bf16_to_f32(hf_f32_to_bf16(v));
}

void hf_matmul_bf16_ref(float *y, const float *x, const void *w,
			enum hf_dtype wt, const float *bias, size_t n,
			size_t in, size_t out)
{
	for (size_t t = 0; t < n; t++) {
		const float *xt = x + t * in;

		for (size_t o = 0; o < out; o++) {
			double s = bias ? bias[o] : 0.0;

			for (size_t i = 0; i < in; i++)
				s += (double)round_bf16(xt[i]) *
				     round_bf16(w_at(w, wt, o * in + i));
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

/* kern: the f32 kernels; bkern: the bf16 ones, NULL where there are none
 * (generic, AVX2: bf16 compute then rounds and runs kern). */
static const struct mm_kern *kern;
static const struct mm_bf16_kern *bkern;
static pthread_once_t kern_once = PTHREAD_ONCE_INIT;

/* 0 and the kernels of isa, or -1 if the CPU lacks it. */
static int isa_kern(enum hf_matmul_isa isa, const struct mm_kern **k,
		    const struct mm_bf16_kern **bk)
{
	*bk = NULL;
#if defined(__x86_64__) || defined(__i386__)
	int avx512 = hf_cpu_has(HF_CPU_AVX512F) &&
		hf_cpu_has(HF_CPU_AVX512BW) && hf_cpu_has(HF_CPU_AVX512VL) &&
		hf_cpu_has(HF_CPU_FMA) && hf_cpu_has(HF_CPU_F16C);

	if (isa == HF_MATMUL_AVX512BF16 && avx512 &&
	    hf_cpu_has(HF_CPU_AVX512BF16)) {
		*k = &mm_avx512;
		*bk = &mm_avx512bf16;
		return 0;
	}
	if (isa == HF_MATMUL_AVX512 && avx512) {
		*k = &mm_avx512;
		*bk = &mm_avx512_bf16;
		return 0;
	}
	if (isa == HF_MATMUL_AVX2 && hf_cpu_has(HF_CPU_AVX2) &&
	    hf_cpu_has(HF_CPU_FMA) && hf_cpu_has(HF_CPU_F16C)) {
		*k = &mm_avx2;
		return 0;
	}
#endif
	if (isa == HF_MATMUL_GENERIC) {
		*k = &mm_generic;
		return 0;
	}
	return -1;
}

/* The best the CPU has, unless HF_CPU names one (generic, avx2, avx512,
 * avx512bf16). avx512bf16 only if named: its vdpbf16ps ran at half the
 * flops of the FMAs on the Sapphire Rapids we measured (86 against 174
 * GFLOP/s on one core), and the f32 kernels are the same otherwise. */
static void kern_init(void)
{
	static const char *const names[] = {
		[HF_MATMUL_GENERIC] = "generic", [HF_MATMUL_AVX2] = "avx2",
		[HF_MATMUL_AVX512] = "avx512",
		[HF_MATMUL_AVX512BF16] = "avx512bf16",
	};
	const char *e = getenv("HF_CPU");

	for (int i = HF_MATMUL_AVX512BF16; e && i >= 0; i--)
		if (!strcmp(e, names[i]) && !isa_kern(i, &kern, &bkern))
			return;
	for (int i = HF_MATMUL_AVX512; i >= 0; i--)
		if (!isa_kern(i, &kern, &bkern))
			return;
}

static const struct mm_kern *get_kern(void)
{
	pthread_once(&kern_once, kern_init);
	return kern;
}

int hf_matmul_set_isa(enum hf_matmul_isa isa)
{
	const struct mm_kern *k;
	const struct mm_bf16_kern *bk;

	get_kern();
	if (isa_kern(isa, &k, &bk))
		return -1;
	kern = k;
	bkern = bk;
	return 0;
}

const char *hf_matmul_isa_name(void)
{
	get_kern();
	return bkern ? bkern->name : kern->name;
}

/* ---- per-thread scratch ------------------------------------------------- */

/* Each thread (pool workers included) keeps a few 64-byte aligned
 * buffers that only grow; freed when the thread exits. */
enum slot {
	SLOT_GEMM,	/* the kernels' packing */
	SLOT_X,		/* the caller's: x rounded to bf16, for all threads */
	SLOT_PANEL,	/* W rows rounded to bf16 (no bf16 kernels) */
	NSLOT
};

struct scratch {
	float *p;
	size_t n;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v)
{
	struct scratch *s = v;

	for (int i = 0; i < NSLOT; i++)
		free(s[i].p);
	free(s);
}

static void scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

/* n floats in this thread's buffer for slot; NULL if out of memory. */
static float *scratch_get(enum slot slot, size_t n)
{
	struct scratch *s;

	pthread_once(&scratch_once, scratch_init);
	s = pthread_getspecific(scratch_key);
	if (!s) {
		s = calloc(NSLOT, sizeof(*s));
		if (!s || pthread_setspecific(scratch_key, s)) {
			free(s);
			return NULL;
		}
	}
	s += slot;
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
	/* bf16 compute */
	const struct mm_bf16_kern *bk;
	const uint16_t *xb;	/* x rounded, (n, ldx), for bk */
	size_t ldx;
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
 * and OpenBLAS runs each call on the calling thread (blas_one_thread). */
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
		s = scratch_get(SLOT_GEMM, mm_gemm_scratch(j->n));
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
	} else if ((s = scratch_get(SLOT_GEMM, PANEL * j->in))) {
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

/* Rows [b, e) of W for the (n < GEMM_MIN_N) or columns of y (else)
 * that thread ith of nth computes: whole blocks of blk rows. */
static void split(const struct job *j, size_t blk, int ith, int nth,
		  size_t *b, size_t *e)
{
	hf_pool_split((j->out + blk - 1) / blk, ith, nth, b, e);
	*b *= blk;
	*e = *e * blk < j->out ? *e * blk : j->out;
}

/* ---- bf16 compute ------------------------------------------------------- */

/* The last resort when scratch runs out: rounds as it goes. */
static void bf16_cols_c(struct job *j, size_t j0, size_t j1)
{
	for (size_t t = 0; t < j->n; t++)
		for (size_t o = j0; o < j1; o++) {
			const float *xt = j->x + t * j->in;
			float s = j->bias ? j->bias[o] : 0.0f;

			for (size_t i = 0; i < j->in; i++)
				s += round_bf16(xt[i]) *
				     round_bf16(w_at(j->w, j->wt, o * j->in + i));
			j->y[t * j->out + o] = s;
		}
}

/* With bf16 kernels: x already rounded into j->xb. */
static void bf16_job(void *ctx, int ith, int nth)
{
	struct job *j = ctx;
	size_t b, e;
	float *s;

	if (j->n < GEMM_MIN_N) {
		split(j, GEMV_BLOCK, ith, nth, &b, &e);
		for (size_t t = 0; t < j->n && b < e; t += MM_GEMV_NT)
			j->bk->gemv(j->y + t * j->out, j->out,
				    j->xb + t * j->ldx, j->ldx,
				    j->n - t < MM_GEMV_NT ? j->n - t : MM_GEMV_NT,
				    j->w, j->wt, j->bias, j->in, b, e);
		return;
	}
	split(j, MM_NR, ith, nth, &b, &e);
	if (b >= e)
		return;
	s = scratch_get(SLOT_GEMM, mm_gemm_bf16_scratch(j->n));
	if (!s) {
		bf16_cols_c(j, b, e);
		return;
	}
	init_cols(j, b, e);
	j->bk->gemm(j->y, j->xb, j->ldx, j->w, j->wt, j->n, j->in, j->out,
		    b, e, s);
}

/* Without them, for f32 and f16 W (bf16 W needs no rounding: the f32
 * kernels run on it and the rounded x as they are): PANEL rows of W at a
 * time are widened, rounded, and run through the f32 kernels as an f32
 * W of PANEL rows. j->x is already rounded. */
static void bf16_panels_job(void *ctx, int ith, int nth)
{
	struct job *j = ctx;
	size_t b, e;
	float *wp, *s = NULL;

	split(j, PANEL, ith, nth, &b, &e);
	if (b >= e)
		return;
	wp = scratch_get(SLOT_PANEL, PANEL * j->in);
	if (j->n >= GEMM_MIN_N && j->k->gemm)
		s = scratch_get(SLOT_GEMM, mm_gemm_scratch(j->n));
	if (!wp || (j->n >= GEMM_MIN_N && j->k->gemm && !s)) {
		bf16_cols_c(j, b, e);
		return;
	}
	if (j->n >= GEMM_MIN_N)
		init_cols(j, b, e);
	for (size_t p = b; p < e; p += PANEL) {
		size_t rows = e - p < PANEL ? e - p : PANEL;

		j->k->widen(wp, j->w, j->wt, j->in, p, rows, 0, j->in);
		for (size_t i = 0; i < rows * j->in; i++)
			wp[i] = round_bf16(wp[i]);
		if (j->n < GEMM_MIN_N)
			for (size_t t = 0; t < j->n; t += MM_GEMV_NT)
				j->k->gemv(j->y + t * j->out + p, j->out,
					   j->x + t * j->in,
					   j->n - t < MM_GEMV_NT ? j->n - t :
					   MM_GEMV_NT, wp, HF_DTYPE_F32,
					   j->bias ? j->bias + p : NULL, j->in,
					   0, rows);
		else if (j->k->gemm)
			j->k->gemm(j->y + p, j->x, wp, HF_DTYPE_F32, j->n,
				   j->in, j->out, 0, rows, s);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				    (int)j->n, (int)rows, (int)j->in, 1.0f,
				    j->x, (int)j->in, wp, (int)j->in, 1.0f,
				    j->y + p, (int)j->out);
	}
}

/* x rounded to bf16 into the caller's scratch: as bf16 rows of ldx
 * (even, zero padded) for the bf16 kernels, else as floats. */
static int round_x(struct job *j)
{
	if (j->bk) {
		uint16_t *xb;

		j->ldx = (j->in + 1) & ~(size_t)1;
		xb = (uint16_t *)scratch_get(SLOT_X, (j->n * j->ldx + 1) / 2);
		if (!xb)
			return -1;
		for (size_t t = 0; t < j->n; t++) {
			hf_f32_to_bf16_n(xb + t * j->ldx, j->x + t * j->in,
					 j->in);
			if (j->ldx > j->in)
				xb[t * j->ldx + j->in] = 0;
		}
		j->xb = xb;
	} else {
		float *xr = scratch_get(SLOT_X, j->n * j->in);

		if (!xr)
			return -1;
		for (size_t i = 0; i < j->n * j->in; i++)
			xr[i] = round_bf16(j->x[i]);
		j->x = xr;
	}
	return 0;
}

static void bf16_c_job(void *ctx, int ith, int nth)
{
	struct job *j = ctx;
	size_t b, e;

	split(j, GEMV_BLOCK, ith, nth, &b, &e);
	bf16_cols_c(j, b, e);
}

void hf_matmul_as(float *y, const float *x, const void *w, enum hf_dtype wt,
		  const float *bias, size_t n, size_t in, size_t out,
		  enum hf_dtype ct, struct hf_pool *pool)
{
	struct job j = { get_kern(), y, x, w, wt, bias, n, in, out,
			 bkern, NULL, 0 };

	assert(wt == HF_DTYPE_F32 || wt == HF_DTYPE_F16 ||
	       wt == HF_DTYPE_BF16);
	assert(ct == HF_DTYPE_F32 || ct == HF_DTYPE_BF16);
	if (!n || !out)
		return;
	if (!in) {
		init_cols(&j, 0, out);
		return;
	}
	if (ct == HF_DTYPE_F32)
		hf_pool_run(pool, n < GEMM_MIN_N ? gemv_job : gemm_job, &j);
	else if (round_x(&j))
		hf_pool_run(pool, bf16_c_job, &j);
	else if (j.bk)
		hf_pool_run(pool, bf16_job, &j);
	else if (wt == HF_DTYPE_BF16)
		hf_pool_run(pool, n < GEMM_MIN_N ? gemv_job : gemm_job, &j);
	else
		hf_pool_run(pool, bf16_panels_job, &j);
}

void hf_matmul(float *y, const float *x, const void *w, enum hf_dtype wt,
	       const float *bias, size_t n, size_t in, size_t out,
	       struct hf_pool *pool)
{
	hf_matmul_as(y, x, w, wt, bias, n, in, out, HF_DTYPE_F32, pool);
}
