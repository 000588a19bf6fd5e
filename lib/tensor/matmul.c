/* lib/tensor/matmul.c: y = x . W^T for nn.Linear weights in F32/F16/BF16:
 * the reference loop, the portable kernels, and the dispatch that splits
 * the work across the pool and picks AVX-512, AVX2, NEON or plain C
 * once. */
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

/* bf16(v) as float: round to nearest even, as hf_f32_to_bf16. */
static inline float round_bf16(float v)
{
	return hf_bf16_to_f32(hf_f32_to_bf16(v));
}

/* Columns dequantized at a time by the loops below that read W through
 * its format's traits (a multiple of 8 and of every block size). */
#define CHUNK 256

/* x: (n, in); W (out, in) any format; bias: (out) or NULL; y: (n, out).
 * Sums in double so that it is the most accurate of the paths; bf: on x
 * and W rounded to bf16. */
static void ref_w(float *y, const float *x, const struct hf_weight *w,
		  const float *bias, size_t n, int bf)
{
	size_t in = w->cols, out = w->rows;
	float wr[CHUNK];

	for (size_t t = 0; t < n; t++) {
		const float *xt = x + t * in;

		for (size_t o = 0; o < out; o++) {
			double s = bias ? bias[o] : 0.0;

			for (size_t k0 = 0; k0 < in; k0 += CHUNK) {
				size_t kc = in - k0 < CHUNK ? in - k0 : CHUNK;

				hf_weight_dequant(wr, w, o, 1, k0, kc);
				for (size_t i = 0; i < kc; i++)
					s += bf ? (double)round_bf16(xt[k0 + i]) *
						  round_bf16(wr[i]) :
						  (double)xt[k0 + i] * wr[i];
			}
			y[t * out + o] = (float)s;
		}
	}
}

void hf_matmul_w_ref(float *y, const float *x, const struct hf_weight *w,
		     const float *bias, size_t n)
{
	ref_w(y, x, w, bias, n, 0);
}

void hf_matmul_w_bf16_ref(float *y, const float *x,
			  const struct hf_weight *w, const float *bias,
			  size_t n)
{
	ref_w(y, x, w, bias, n, 1);
}

/* The plain weight (out, in) over w in dtype wt. */
static struct hf_weight plain(const void *w, enum hf_dtype wt, size_t in,
			      size_t out)
{
	struct hf_weight pw;
	int rc = hf_weight_plain(&pw, w, wt, out, in);

	assert(!rc && "hf_matmul: weight dtype must be F32, F16 or BF16");
	(void)rc;
	return pw;
}

void hf_matmul_ref(float *y, const float *x, const void *w, enum hf_dtype wt,
		   const float *bias, size_t n, size_t in, size_t out)
{
	struct hf_weight pw = plain(w, wt, in, out);

	ref_w(y, x, &pw, bias, n, 0);
}

void hf_matmul_bf16_ref(float *y, const float *x, const void *w,
			enum hf_dtype wt, const float *bias, size_t n,
			size_t in, size_t out)
{
	struct hf_weight pw = plain(w, wt, in, out);

	ref_w(y, x, &pw, bias, n, 1);
}

/* ---- portable C kernels ------------------------------------------------ */

/* Row r of W against x, W widened CHUNK columns at a time. Eight partial
 * sums: the compiler keeps them in two SSE registers without needing
 * -ffast-math to reassociate. */
static float dot_c(const float *x, const struct hf_weight *w, size_t r)
{
	size_t in = w->cols, in8 = in & ~(size_t)7;
	float s[8] = { 0 }, wr[CHUNK], sum;

	for (size_t k0 = 0; k0 < in8; k0 += CHUNK) {
		size_t kc = in8 - k0 < CHUNK ? in8 - k0 : CHUNK;

		hf_weight_dequant(wr, w, r, 1, k0, kc);
		for (size_t i = 0; i < kc; i += 8)
			for (int k = 0; k < 8; k++)
				s[k] += x[k0 + i + k] * wr[i + k];
	}
	sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
	if (in8 < in) {
		hf_weight_dequant(wr, w, r, 1, in8, in - in8);
		for (size_t i = 0; i < in - in8; i++)
			sum += x[in8 + i] * wr[i];
	}
	return sum;
}

static void gemv_c(float *y, size_t ldy, const float *x, size_t nt,
		   const struct hf_weight *w, const float *bias, size_t r0,
		   size_t r1)
{
	for (size_t r = r0; r < r1; r++)
		for (size_t t = 0; t < nt; t++)
			y[t * ldy + r] = dot_c(x + t * w->cols, w, r) +
					 (bias ? bias[r] : 0.0f);
}

/* Every format runs here through its traits, so every row is the same,
 * and an ISA without an entry for a format falls back to it. */
#define GENERIC_ROW { gemv_c, hf_weight_dequant, NULL }
const struct mm_kern mm_generic[HF_WFMT_COUNT] = {
	[0 ... HF_WFMT_COUNT - 1] = GENERIC_ROW,
};

/* ---- dispatch ---------------------------------------------------------- */

/* An instruction set: its per-format tables. bf16: the bf16-compute
 * kernels, NULL where there are none (generic, AVX2: bf16 compute then
 * rounds W panels and runs the f32 kernels). */
struct mm_isa {
	const char *name;
	const struct mm_kern *f32;
	const struct mm_bf16_kern *bf16;
};

static const struct mm_isa isas[] = {
	[HF_MATMUL_GENERIC] = { "generic", mm_generic, NULL },
#if defined(__x86_64__) || defined(__i386__)
	[HF_MATMUL_AVX2] = { "avx2", mm_avx2, NULL },
	[HF_MATMUL_AVX512] = { "avx512", mm_avx512, mm_avx512_bf16 },
	[HF_MATMUL_AVX512BF16] = { "avx512bf16", mm_avx512, mm_avx512bf16 },
#endif
#if defined(__aarch64__)
	[HF_MATMUL_NEON] = { "neon", mm_neon, NULL },
#endif
};

static const struct mm_isa *isa_cur;
static pthread_once_t kern_once = PTHREAD_ONCE_INIT;

/* Whether this CPU runs isa. */
static int isa_ok(enum hf_matmul_isa isa)
{
	if (isa == HF_MATMUL_GENERIC)
		return 1;
#if defined(__x86_64__) || defined(__i386__)
	int avx512 = hf_cpu_has(HF_CPU_AVX512F) &&
		hf_cpu_has(HF_CPU_AVX512BW) && hf_cpu_has(HF_CPU_AVX512VL) &&
		hf_cpu_has(HF_CPU_FMA) && hf_cpu_has(HF_CPU_F16C);

	switch (isa) {
	case HF_MATMUL_AVX512BF16:
		return avx512 && hf_cpu_has(HF_CPU_AVX512BF16);
	case HF_MATMUL_AVX512:
		return avx512;
	case HF_MATMUL_AVX2:
		return hf_cpu_has(HF_CPU_AVX2) && hf_cpu_has(HF_CPU_FMA) &&
		       hf_cpu_has(HF_CPU_F16C);
	default:
		break;
	}
#endif
#if defined(__aarch64__)
	if (isa == HF_MATMUL_NEON)
		return 1;	/* in every AArch64 Linux ABI */
#endif
	return 0;
}

#define NISA (sizeof(isas) / sizeof(isas[0]))

/* The best the CPU has, unless HF_CPU names one (generic, avx2, avx512,
 * avx512bf16, neon; isas[] has no name where this build lacks the
 * set). avx512bf16 only if named: its vdpbf16ps ran at half the
 * flops of the FMAs on the Sapphire Rapids we measured (86 against 174
 * GFLOP/s on one core), and the f32 kernels are the same otherwise. */
static void kern_init(void)
{
	const char *e = getenv("HF_CPU");

	for (int i = (int)NISA - 1; e && i >= 0; i--)
		if (isa_ok(i) && !strcmp(e, isas[i].name)) {
			isa_cur = &isas[i];
			return;
		}
	for (int i = (int)NISA - 1; i >= 0; i--)
		if (i != HF_MATMUL_AVX512BF16 && isa_ok(i)) {
			isa_cur = &isas[i];
			return;
		}
}

static const struct mm_isa *get_isa(void)
{
	pthread_once(&kern_once, kern_init);
	return isa_cur;
}

int hf_matmul_set_isa(enum hf_matmul_isa isa)
{
	get_isa();
	if ((size_t)isa >= NISA || !isa_ok(isa))
		return -1;
	isa_cur = &isas[isa];
	return 0;
}

const char *hf_matmul_isa_name(void)
{
	return get_isa()->name;
}

/* The kernels of format fmt: the ISA's entry, else the portable one. */
static const struct mm_kern *fmt_kern(const struct mm_isa *isa,
				      enum hf_wfmt fmt)
{
	return isa->f32[fmt].gemv ? &isa->f32[fmt] : &mm_generic[fmt];
}

static const struct mm_bf16_kern *fmt_bkern(const struct mm_isa *isa,
					    enum hf_wfmt fmt)
{
	return isa->bf16 && isa->bf16[fmt].gemv ? &isa->bf16[fmt] : NULL;
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
	const struct hf_wfmt_traits *tr;
	float *y;
	const float *x;
	const struct hf_weight *w;
	const float *bias;
	size_t n, in, out;
	/* bf16 compute */
	const struct mm_bf16_kern *bk;
	const uint16_t *xb;	/* x rounded, (n, ldx), for bk */
	size_t ldx;
	/* the ISA's float32 GEMM, for formats without their own: their
	 * panels are widened to float32 and multiplied by it */
	mm_gemm_fn g32;
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
			   j->w, j->bias, b, e);
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
	float *s, *wp;

	hf_pool_split(nb, ith, nth, &j0, &j1);
	j0 *= MM_NR;
	j1 = j1 * MM_NR < j->out ? j1 * MM_NR : j->out;
	if (j0 >= j1)
		return;
	init_cols(j, j0, j1);
	if (j->k->gemm) {
		s = scratch_get(SLOT_GEMM, mm_gemm_scratch(j->n));
		if (s) {
			j->k->gemm(j->y, j->out, j->x, j->w, j->n, j0, j1, s);
			return;
		}
	} else if (j->tr->f32_rows) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
			    (int)j->n, (int)(j1 - j0), (int)j->in, 1.0f, j->x,
			    (int)j->in, (const float *)j->w->t[0] + j0 * j->in,
			    (int)j->in, 1.0f, j->y + j0, (int)j->out);
		return;
	} else if (j->g32 && (s = scratch_get(SLOT_GEMM,
					      mm_gemm_scratch(j->n))) &&
		   (wp = scratch_get(SLOT_PANEL, MM_NC * j->in))) {
		for (size_t p = j0; p < j1; p += MM_NC) {
			size_t rows = j1 - p < MM_NC ? j1 - p : MM_NC;
			struct hf_weight pw = { .fmt = HF_WFMT_F32,
						.rows = rows, .cols = j->in,
						.t = { wp } };

			j->k->widen(wp, j->w, p, rows, 0, j->in);
			j->g32(j->y + p, j->out, j->x, &pw, j->n, 0, rows, s);
		}
		return;
	} else if ((s = scratch_get(SLOT_GEMM, PANEL * j->in))) {
		for (size_t p = j0; p < j1; p += PANEL) {
			size_t rows = j1 - p < PANEL ? j1 - p : PANEL;

			j->k->widen(s, j->w, p, rows, 0, j->in);
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
			   j->w, j->bias, j0, j1);
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
	float wr[CHUNK];

	for (size_t t = 0; t < j->n; t++)
		for (size_t o = j0; o < j1; o++) {
			const float *xt = j->x + t * j->in;
			float s = j->bias ? j->bias[o] : 0.0f;

			for (size_t k0 = 0; k0 < j->in; k0 += CHUNK) {
				size_t kc = j->in - k0 < CHUNK ? j->in - k0 :
					    CHUNK;

				hf_weight_dequant(wr, j->w, o, 1, k0, kc);
				for (size_t i = 0; i < kc; i++)
					s += round_bf16(xt[k0 + i]) *
					     round_bf16(wr[i]);
			}
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
				    j->w, j->bias, b, e);
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
	j->bk->gemm(j->y, j->out, j->xb, j->ldx, j->w, j->n, b, e, s);
}

/* Without them, for formats whose values are not bf16 already (those
 * are: the f32 kernels run on them and the rounded x as they are):
 * PANEL rows of W at a time are widened, rounded, and run through the
 * f32 kernels as an f32 W of PANEL rows. j->x is already rounded. */
static void bf16_panels_job(void *ctx, int ith, int nth)
{
	struct job *j = ctx;
	const struct mm_kern *k32 = fmt_kern(get_isa(), HF_WFMT_F32);
	size_t b, e;
	float *wp, *s = NULL;

	split(j, PANEL, ith, nth, &b, &e);
	if (b >= e)
		return;
	wp = scratch_get(SLOT_PANEL, PANEL * j->in);
	if (j->n >= GEMM_MIN_N && k32->gemm)
		s = scratch_get(SLOT_GEMM, mm_gemm_scratch(j->n));
	if (!wp || (j->n >= GEMM_MIN_N && k32->gemm && !s)) {
		bf16_cols_c(j, b, e);
		return;
	}
	if (j->n >= GEMM_MIN_N)
		init_cols(j, b, e);
	for (size_t p = b; p < e; p += PANEL) {
		size_t rows = e - p < PANEL ? e - p : PANEL;
		struct hf_weight pw = { .fmt = HF_WFMT_F32, .rows = rows,
					 .cols = j->in, .t = { wp } };

		j->k->widen(wp, j->w, p, rows, 0, j->in);
		for (size_t i = 0; i < rows * j->in; i++)
			wp[i] = round_bf16(wp[i]);
		if (j->n < GEMM_MIN_N)
			for (size_t t = 0; t < j->n; t += MM_GEMV_NT)
				k32->gemv(j->y + t * j->out + p, j->out,
					  j->x + t * j->in,
					  j->n - t < MM_GEMV_NT ? j->n - t :
					  MM_GEMV_NT, &pw,
					  j->bias ? j->bias + p : NULL, 0,
					  rows);
		else if (k32->gemm)
			k32->gemm(j->y + p, j->out, j->x, &pw, j->n, 0, rows,
				  s);
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

void hf_matmul_w(float *y, const float *x, const struct hf_weight *w,
		 const float *bias, size_t n, enum hf_dtype ct,
		 struct hf_pool *pool)
{
	const struct mm_isa *isa = get_isa();
	struct job j = { fmt_kern(isa, w->fmt), hf_wfmt_traits(w->fmt), y, x,
			 w, bias, n, w->cols, w->rows, fmt_bkern(isa, w->fmt),
			 NULL, 0, isa->f32[HF_WFMT_F32].gemm };

	assert(ct == HF_DTYPE_F32 || ct == HF_DTYPE_BF16);
	if (!n || !j.out)
		return;
	if (!j.in) {
		init_cols(&j, 0, j.out);
		return;
	}
	if (ct == HF_DTYPE_F32)
		hf_pool_run(pool, n < GEMM_MIN_N ? gemv_job : gemm_job, &j);
	else if (round_x(&j))
		hf_pool_run(pool, bf16_c_job, &j);
	else if (j.bk)
		hf_pool_run(pool, bf16_job, &j);
	else if (j.tr->bf16_exact)
		hf_pool_run(pool, n < GEMM_MIN_N ? gemv_job : gemm_job, &j);
	else
		hf_pool_run(pool, bf16_panels_job, &j);
}

void hf_matmul_as(float *y, const float *x, const void *w, enum hf_dtype wt,
		  const float *bias, size_t n, size_t in, size_t out,
		  enum hf_dtype ct, struct hf_pool *pool)
{
	struct hf_weight pw = plain(w, wt, in, out);

	hf_matmul_w(y, x, &pw, bias, n, ct, pool);
}

void hf_matmul(float *y, const float *x, const void *w, enum hf_dtype wt,
	       const float *bias, size_t n, size_t in, size_t out,
	       struct hf_pool *pool)
{
	hf_matmul_as(y, x, w, wt, bias, n, in, out, HF_DTYPE_F32, pool);
}
