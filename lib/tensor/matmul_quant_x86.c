/* lib/tensor/matmul_quant_x86.c: AVX2 kernels for the quantized weight
 * formats (tensor/wfmt.h), for the AVX2 and AVX-512 tables of
 * matmul_x86.c. Weights are dequantized in registers from the packed
 * bytes, to the very float32 values the format's traits dequant gives
 * (lib/quant/formats.c), and never stored whole. A layout a kernel does
 * not take (a block that is not a multiple of 32, GPTQ bits other than
 * 4, a view not on a word boundary) runs on the portable kernels. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>
#include <string.h>

#include "tensor/matmul_kern.h"
#include "tensor/matmul_x86.h"

static void fallback(float *y, size_t ldy, const float *x, size_t nt,
		     const struct hf_weight *w, const float *bias, size_t r0,
		     size_t r1)
{
	mm_generic[w->fmt].gemv(y, ldy, x, nt, w, bias, r0, r1);
}

/* ---- bitsandbytes LLM.int8 ------------------------------------------------ */

/* The kernels below are instantiated for each token count nt (a
 * constant once inlined, so the accumulators stay in registers). */
#define BY_NT(f, ...)							\
	switch (nt) {							\
	case 1: f(__VA_ARGS__, 1); break;				\
	case 2: f(__VA_ARGS__, 2); break;				\
	case 3: f(__VA_ARGS__, 3); break;				\
	default: f(__VA_ARGS__, 4); break;				\
	}

/* y = (x . q[r]) * SCB[r] / 127: the row's factor applied once. */
INLINE T256 void int8_rows(float *y, size_t ldy, const float *x,
			   const struct hf_weight *w, const float *bias,
			   size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, k16 = in & ~(size_t)15;
	const float *scb = w->t[1];

	for (size_t r = r0; r < r1; r++) {
		const size_t R = w->q.roff + r;
		const int8_t *q = (const int8_t *)w->t[0] + R * in;
		__m256 a[MM_GEMV_NT][2];
		float f = scb[R] / 127.0f;

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = _mm256_setzero_ps();
		for (size_t k = 0; k < k16; k += 16) {
			__m128i b = _mm_loadu_si128((const __m128i *)(q + k));
			__m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
			__m256 w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
				_mm_srli_si128(b, 8)));

			for (size_t t = 0; t < nt; t++) {
				const float *xt = x + t * in + k;

				a[t][0] = _mm256_fmadd_ps(
					w0, _mm256_loadu_ps(xt), a[t][0]);
				a[t][1] = _mm256_fmadd_ps(
					w1, _mm256_loadu_ps(xt + 8), a[t][1]);
			}
		}
		for (size_t t = 0; t < nt; t++) {
			float s = hsum8(_mm256_add_ps(a[t][0], a[t][1]));

			for (size_t k = k16; k < in; k++)
				s += (float)q[k] * x[t * in + k];
			y[t * ldy + r] = s * f + (bias ? bias[r] : 0.0f);
		}
	}
}

T256 void mmq_gemv_int8(float *y, size_t ldy, const float *x, size_t nt,
			const struct hf_weight *w, const float *bias,
			size_t r0, size_t r1)
{
	BY_NT(int8_rows, y, ldy, x, w, bias, r0, r1)
}

/* AVX-512: 16 weights a conversion. */
INLINE T512 void int8_rows512(float *y, size_t ldy, const float *x,
			      const struct hf_weight *w, const float *bias,
			      size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, k32 = in & ~(size_t)31;
	const size_t k64 = in & ~(size_t)63;
	const float *scb = w->t[1];

	for (size_t r = r0; r < r1; r++) {
		const size_t R = w->q.roff + r;
		const int8_t *q = (const int8_t *)w->t[0] + R * in;
		/* four sums per token, 64 weights a step: with two, one
		 * token's FMA chains (4 cycles each) bound the step */
		__m512 a[MM_GEMV_NT][4];
		float f = scb[R] / 127.0f;

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = a[t][2] = a[t][3] =
				_mm512_setzero_ps();
		for (size_t k = 0; k < k64; k += 64) {
			__m512 wv[4];

			for (int i = 0; i < 4; i++)
				wv[i] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
					_mm_loadu_si128((const __m128i *)
							(q + k + 16 * i))));
			for (size_t t = 0; t < nt; t++) {
				const float *xt = x + t * in + k;

				for (int i = 0; i < 4; i++)
					a[t][i] = _mm512_fmadd_ps(wv[i],
						_mm512_loadu_ps(xt + 16 * i),
						a[t][i]);
			}
		}
		for (size_t k = k64; k < k32; k += 32) {
			__m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
				_mm_loadu_si128((const __m128i *)(q + k))));
			__m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
				_mm_loadu_si128((const __m128i *)(q + k + 16))));

			for (size_t t = 0; t < nt; t++) {
				const float *xt = x + t * in + k;

				a[t][0] = _mm512_fmadd_ps(
					w0, _mm512_loadu_ps(xt), a[t][0]);
				a[t][1] = _mm512_fmadd_ps(
					w1, _mm512_loadu_ps(xt + 16), a[t][1]);
			}
		}
		for (size_t t = 0; t < nt; t++) {
			float s = _mm512_reduce_add_ps(_mm512_add_ps(
				_mm512_add_ps(a[t][0], a[t][1]),
				_mm512_add_ps(a[t][2], a[t][3])));

			for (size_t k = k32; k < in; k++)
				s += (float)q[k] * x[t * in + k];
			y[t * ldy + r] = s * f + (bias ? bias[r] : 0.0f);
		}
	}
}

T512 void mmq_gemv_int8_512(float *y, size_t ldy, const float *x, size_t nt,
			    const struct hf_weight *w, const float *bias,
			    size_t r0, size_t r1)
{
	BY_NT(int8_rows512, y, ldy, x, w, bias, r0, r1)
}

T256 void mmq_widen_int8(float *dst, const struct hf_weight *w, size_t r0,
			 size_t rows, size_t k0, size_t kc)
{
	const float *scb = w->t[1];
	const size_t k8 = kc & ~(size_t)7;

	for (size_t r = 0; r < rows; r++) {
		const size_t R = w->q.roff + r0 + r;
		const int8_t *q = (const int8_t *)w->t[0] + R * w->cols + k0;
		float *d = dst + r * kc, f = scb[R] / 127.0f;
		__m256 fv = _mm256_set1_ps(f);

		for (size_t k = 0; k < k8; k += 8)
			_mm256_storeu_ps(d + k, _mm256_mul_ps(fv,
				_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
					_mm_loadl_epi64((const __m128i *)
							(q + k))))));
		for (size_t k = k8; k < kc; k++)
			d[k] = (float)q[k] * f;
	}
}

/* ---- bitsandbytes 4-bit ----------------------------------------------------- */

/* The kernels take rows of whole blocks of a multiple of 32 codes. */
static int bnb4_fast(const struct hf_weight *w)
{
	return w->q.group % 32 == 0 && w->cols % w->q.group == 0;
}

/* The block's absmax as the traits' dequant computes it: inlined into
 * a kernel built for FMA, the compiler would fuse the double-quant
 * product and sum (-ffp-contract=fast) and round once where the
 * portable path rounds twice; the empty asm keeps the product
 * rounded. */
static float bnb4_absmax(const struct hf_weight *w, size_t b)
{
	if (w->fmt == HF_WFMT_BNB4DQ) {
		const uint8_t *aq = w->t[1];
		const float *nabs = w->t[3], *nmap = w->t[4];
		float m = nmap[aq[b]] * nabs[b / w->q.group2];

		__asm__("" : "+x"(m));
		return m + w->q.p0;
	}
	return ((const float *)w->t[1])[b];
}

/* The 32 weights of 16 code bytes, element 2i the high nibble, as the
 * 16-entry table (lo: entries 0-7, hi: 8-15) gives them: four vectors of
 * 8 in element order. */
INLINE T256 void bnb4_32(__m256 out[4], const uint8_t *c, __m256 lo,
			 __m256 hi)
{
	__m128i v = _mm_loadu_si128((const __m128i *)c);
	__m128i m = _mm_set1_epi8(15);
	__m128i hn = _mm_and_si128(_mm_srli_epi16(v, 4), m);
	__m128i ln = _mm_and_si128(v, m);
	__m128i e0 = _mm_unpacklo_epi8(hn, ln), e1 = _mm_unpackhi_epi8(hn, ln);
	__m128i part[4] = { e0, _mm_srli_si128(e0, 8), e1,
			    _mm_srli_si128(e1, 8) };

	for (int i = 0; i < 4; i++) {
		__m256i idx = _mm256_cvtepu8_epi32(part[i]);
		__m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));

		out[i] = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx),
					  _mm256_permutevar8x32_ps(hi, idx),
					  sel);
	}
}

INLINE T256 void bnb4_rows(float *y, size_t ldy, const float *x,
			   const struct hf_weight *w, const float *bias,
			   size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, bs = w->q.group;
	const uint8_t *codes = w->t[0];
	const float *map = w->t[2];
	__m256 tlo = _mm256_loadu_ps(map), thi = _mm256_loadu_ps(map + 8);

	for (size_t r = r0; r < r1; r++) {
		const size_t e0 = (w->q.roff + r) * in;
		__m256 a[MM_GEMV_NT][2];

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = _mm256_setzero_ps();
		for (size_t k0 = 0; k0 < in; k0 += bs) {
			__m256 am = _mm256_set1_ps(bnb4_absmax(w,
							       (e0 + k0) / bs));
			__m256 lo = _mm256_mul_ps(tlo, am);
			__m256 hi = _mm256_mul_ps(thi, am);

			for (size_t k = k0; k < k0 + bs; k += 32) {
				__m256 wv[4];

				bnb4_32(wv, codes + (e0 + k) / 2, lo, hi);
				for (size_t t = 0; t < nt; t++) {
					const float *xt = x + t * in + k;

					a[t][0] = _mm256_fmadd_ps(wv[0],
						_mm256_loadu_ps(xt), a[t][0]);
					a[t][1] = _mm256_fmadd_ps(wv[1],
						_mm256_loadu_ps(xt + 8),
						a[t][1]);
					a[t][0] = _mm256_fmadd_ps(wv[2],
						_mm256_loadu_ps(xt + 16),
						a[t][0]);
					a[t][1] = _mm256_fmadd_ps(wv[3],
						_mm256_loadu_ps(xt + 24),
						a[t][1]);
				}
			}
		}
		for (size_t t = 0; t < nt; t++)
			y[t * ldy + r] = hsum8(_mm256_add_ps(a[t][0], a[t][1])) +
					 (bias ? bias[r] : 0.0f);
	}
}

T256 void mmq_gemv_bnb4(float *y, size_t ldy, const float *x, size_t nt,
			const struct hf_weight *w, const float *bias,
			size_t r0, size_t r1)
{
	if (!bnb4_fast(w)) {
		fallback(y, ldy, x, nt, w, bias, r0, r1);
		return;
	}
	BY_NT(bnb4_rows, y, ldy, x, w, bias, r0, r1)
}

/* AVX-512: the 16-entry table is one register, so 16 weights are one
 * permute. */
INLINE T512 void bnb4_rows512(float *y, size_t ldy, const float *x,
			      const struct hf_weight *w, const float *bias,
			      size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, bs = w->q.group;
	const uint8_t *codes = w->t[0];
	const __m512 tbl = _mm512_loadu_ps(w->t[2]);
	const __m128i m = _mm_set1_epi8(15);

	for (size_t r = r0; r < r1; r++) {
		const size_t e0 = (w->q.roff + r) * in;
		__m512 a[MM_GEMV_NT][2];

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = _mm512_setzero_ps();
		for (size_t k0 = 0; k0 < in; k0 += bs) {
			__m512 tb = _mm512_mul_ps(tbl, _mm512_set1_ps(
				bnb4_absmax(w, (e0 + k0) / bs)));

			for (size_t k = k0; k < k0 + bs; k += 32) {
				__m128i v = _mm_loadu_si128((const __m128i *)
					(codes + (e0 + k) / 2));
				__m128i hn = _mm_and_si128(_mm_srli_epi16(v, 4),
							   m);
				__m128i ln = _mm_and_si128(v, m);
				__m512 w0 = _mm512_permutexvar_ps(
					_mm512_cvtepu8_epi32(
						_mm_unpacklo_epi8(hn, ln)), tb);
				__m512 w1 = _mm512_permutexvar_ps(
					_mm512_cvtepu8_epi32(
						_mm_unpackhi_epi8(hn, ln)), tb);

				for (size_t t = 0; t < nt; t++) {
					const float *xt = x + t * in + k;

					a[t][0] = _mm512_fmadd_ps(w0,
						_mm512_loadu_ps(xt), a[t][0]);
					a[t][1] = _mm512_fmadd_ps(w1,
						_mm512_loadu_ps(xt + 16),
						a[t][1]);
				}
			}
		}
		for (size_t t = 0; t < nt; t++)
			y[t * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(
						 a[t][0], a[t][1])) +
					 (bias ? bias[r] : 0.0f);
	}
}

/* The same on x deinterleaved (bnb4_split): each 32 inputs stored as
 * their 16 even ones, then their 16 odd ones, the order in which the 16
 * code bytes give the weights, high nibbles (even elements) and low ones
 * (odd), so a byte zero-extended to a lane is the index of its low
 * nibble as it is (vpermps reads the low 4 bits) and, shifted right by 4,
 * of its high one: two shuffles less per 32 weights than interleaving
 * the weights, and four sums per token (two steps of 32 alternate). */
INLINE T512 void bnb4_rows512d(float *y, size_t ldy, const float *xe,
			       const struct hf_weight *w, const float *bias,
			       size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, bs = w->q.group;
	const uint8_t *codes = w->t[0];
	const __m512 tbl = _mm512_loadu_ps(w->t[2]);

	for (size_t r = r0; r < r1; r++) {
		const size_t e0 = (w->q.roff + r) * in;
		__m512 a[MM_GEMV_NT][4];

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = a[t][2] = a[t][3] =
				_mm512_setzero_ps();
		for (size_t k0 = 0; k0 < in; k0 += bs) {
			__m512 tb = _mm512_mul_ps(tbl, _mm512_set1_ps(
				bnb4_absmax(w, (e0 + k0) / bs)));

			for (size_t k = k0; k < k0 + bs; k += 32) {
				__m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(
					(const __m128i *)(codes +
							  (e0 + k) / 2)));
				__m512 wh = _mm512_permutexvar_ps(
					_mm512_srli_epi32(v, 4), tb);
				__m512 wl = _mm512_permutexvar_ps(v, tb);
				const size_t p = (k / 32 & 1) * 2;

				for (size_t t = 0; t < nt; t++) {
					const float *xt = xe + t * in + k;

					a[t][p] = _mm512_fmadd_ps(wh,
						_mm512_loadu_ps(xt), a[t][p]);
					a[t][p + 1] = _mm512_fmadd_ps(wl,
						_mm512_loadu_ps(xt + 16),
						a[t][p + 1]);
				}
			}
		}
		for (size_t t = 0; t < nt; t++)
			y[t * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(
				_mm512_add_ps(a[t][0], a[t][1]),
				_mm512_add_ps(a[t][2], a[t][3]))) +
					 (bias ? bias[r] : 0.0f);
	}
}

/* xe: x (nt, in) with each 32 inputs as 16 even, then 16 odd (in a
 * multiple of 32). */
INLINE T512 void bnb4_split(float *xe, const float *x, size_t nt,
			    size_t in)
{
	const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16,
					     18, 20, 22, 24, 26, 28, 30);
	const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));

	for (size_t i = 0; i < nt * in; i += 32) {
		__m512 lo = _mm512_loadu_ps(x + i), hi = _mm512_loadu_ps(x + i +
									  16);

		_mm512_storeu_ps(xe + i, _mm512_permutex2var_ps(lo, ev, hi));
		_mm512_storeu_ps(xe + i + 16, _mm512_permutex2var_ps(lo, od,
								     hi));
	}
}

/* The deinterleaved x of one call, on the stack: larger calls run on
 * the interleaving kernel. */
#define BNB4_XE (16 * 1024)

T512 void mmq_gemv_bnb4_512(float *y, size_t ldy, const float *x, size_t nt,
			    const struct hf_weight *w, const float *bias,
			    size_t r0, size_t r1)
{
	if (!bnb4_fast(w)) {
		fallback(y, ldy, x, nt, w, bias, r0, r1);
		return;
	}
	if (nt * w->cols <= BNB4_XE) {
		float xe[BNB4_XE] __attribute__((aligned(64)));

		bnb4_split(xe, x, nt, w->cols);
		BY_NT(bnb4_rows512d, y, ldy, xe, w, bias, r0, r1)
		return;
	}
	BY_NT(bnb4_rows512, y, ldy, x, w, bias, r0, r1)
}

T256 void mmq_widen_bnb4(float *dst, const struct hf_weight *w, size_t r0,
			 size_t rows, size_t k0, size_t kc)
{
	const size_t in = w->cols, bs = w->q.group;
	const uint8_t *codes = w->t[0];
	const float *map = w->t[2];
	__m256 tlo = _mm256_loadu_ps(map), thi = _mm256_loadu_ps(map + 8);

	if (!bnb4_fast(w) || k0 % bs || kc % bs) {
		hf_weight_dequant(dst, w, r0, rows, k0, kc);
		return;
	}
	for (size_t r = 0; r < rows; r++) {
		const size_t e0 = (w->q.roff + r0 + r) * in + k0;

		for (size_t k0b = 0; k0b < kc; k0b += bs) {
			__m256 am = _mm256_set1_ps(bnb4_absmax(w,
							       (e0 + k0b) / bs));
			__m256 lo = _mm256_mul_ps(tlo, am);
			__m256 hi = _mm256_mul_ps(thi, am);

			for (size_t k = k0b; k < k0b + bs; k += 32) {
				__m256 wv[4];
				float *d = dst + r * kc + k;

				bnb4_32(wv, codes + (e0 + k) / 2, lo, hi);
				for (int i = 0; i < 4; i++)
					_mm256_storeu_ps(d + 8 * i, wv[i]);
			}
		}
	}
}

/* ---- GPTQ 4-bit -------------------------------------------------------------- */

static int gptq_fast(const struct hf_weight *w)
{
	return w->q.bits == 4 && w->q.group % 8 == 0;
}

/* The scales and zeros of outputs R .. R + 7 (R a multiple of 8) in
 * group g: s as float, z the true zero. */
INLINE T256 void gptq_sz(const struct hf_weight *w, size_t g, size_t R,
			 __m256 *s, __m256i *z)
{
	const size_t ld = hf_weight_ld(w);
	const uint32_t *qz = w->t[1];
	const uint16_t *sc = w->t[2];
	__m256i sh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
	__m256i zw = _mm256_set1_epi32((int)qz[g * (ld / 8) + R / 8]);

	*s = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + g * ld +
							       R)));
	*z = _mm256_and_si256(_mm256_add_epi32(_mm256_srlv_epi32(zw, sh),
					       _mm256_set1_epi32(
						       (int)w->q.zoff)),
			      _mm256_set1_epi32(15));
}

/* Vectorized over 8 outputs: word p of the 8 columns R .. R + 7 holds
 * inputs 8p .. 8p + 7 of each. Rows [r0, r1): R = roff + r a multiple of
 * 8, r1 - r0 too. */
INLINE T256 void gptq_rows(float *y, size_t ldy, const float *x,
			   const struct hf_weight *w, const float *bias,
			   size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, ld = hf_weight_ld(w), gs = w->q.group;
	const uint32_t *qw = w->t[0];
	const int32_t *gi = w->t[3];
	const __m256i m = _mm256_set1_epi32(15);

	for (size_t r = r0; r < r1; r += 8) {
		const size_t R = w->q.roff + r;
		/* four sums per token: one chain of FMAs would bound decode
		 * by the FMA latency (8 a word, 4 cycles each) */
		__m256 a[MM_GEMV_NT][4], s = _mm256_setzero_ps();
		__m256i z = _mm256_setzero_si256();
		size_t g = (size_t)-1;

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = a[t][2] = a[t][3] =
				_mm256_setzero_ps();
		for (size_t p = 0; p < in / 8; p++) {
			__m256i wd = _mm256_loadu_si256((const __m256i *)
							(qw + p * ld + R));

			if (!gi && p * 8 / gs != g) {
				g = p * 8 / gs;
				gptq_sz(w, g, R, &s, &z);
			}
#define GPTQ_J(j) {							\
				size_t c = 8 * p + j;			\
				__m256i q = _mm256_and_si256(		\
					_mm256_srli_epi32(wd, 4 * j), m); \
				__m256 wv;				\
									\
				if (gi && (size_t)gi[c] != g) {		\
					g = (size_t)gi[c];		\
					gptq_sz(w, g, R, &s, &z);	\
				}					\
				wv = _mm256_mul_ps(s, _mm256_cvtepi32_ps( \
					_mm256_sub_epi32(q, z)));	\
				for (size_t t = 0; t < nt; t++)		\
					a[t][j & 3] = _mm256_fmadd_ps(wv, \
						_mm256_broadcast_ss(x +	\
							t * in + c),	\
						a[t][j & 3]);		\
			}
			GPTQ_J(0) GPTQ_J(1) GPTQ_J(2) GPTQ_J(3)
			GPTQ_J(4) GPTQ_J(5) GPTQ_J(6) GPTQ_J(7)
#undef GPTQ_J
		}
		for (size_t t = 0; t < nt; t++) {
			__m256 v = _mm256_add_ps(_mm256_add_ps(a[t][0], a[t][1]),
						 _mm256_add_ps(a[t][2], a[t][3]));

			if (bias)
				v = _mm256_add_ps(v, _mm256_loadu_ps(bias + r));
			_mm256_storeu_ps(y + t * ldy + r, v);
		}
	}
}

T256 void mmq_gemv_gptq(float *y, size_t ldy, const float *x, size_t nt,
			const struct hf_weight *w, const float *bias,
			size_t r0, size_t r1)
{
	size_t a = r0, b;

	if (!gptq_fast(w)) {
		fallback(y, ldy, x, nt, w, bias, r0, r1);
		return;
	}
	/* rows up to a word boundary of qzeros, and the tail, portable */
	while (a < r1 && (w->q.roff + a) % 8)
		a++;
	b = a + (r1 - a) / 8 * 8;
	if (a > r0)
		fallback(y, ldy, x, nt, w, bias, r0, a);
	if (b > a)
		BY_NT(gptq_rows, y, ldy, x, w, bias, a, b)
	if (r1 > b)
		fallback(y, ldy, x, nt, w, bias, b, r1);
}

/* AVX-512: 16 outputs a vector (R a multiple of 16); two qzeros words. */
INLINE T512 void gptq_sz16(const struct hf_weight *w, size_t g, size_t R,
			   __m512 *s, __m512i *z)
{
	const size_t ld = hf_weight_ld(w);
	const uint32_t *qz = w->t[1];
	const uint16_t *sc = w->t[2];
	const uint32_t *zr = qz + g * (ld / 8) + R / 8;
	__m512i sh = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28,
				       0, 4, 8, 12, 16, 20, 24, 28);
	__m512i zw = _mm512_inserti64x4(_mm512_castsi256_si512(
		_mm256_set1_epi32((int)zr[0])),
		_mm256_set1_epi32((int)zr[1]), 1);

	*s = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc + g * ld +
								  R)));
	*z = _mm512_and_si512(_mm512_add_epi32(_mm512_srlv_epi32(zw, sh),
					       _mm512_set1_epi32(
						       (int)w->q.zoff)),
			      _mm512_set1_epi32(15));
}

INLINE T512 void gptq_rows512(float *y, size_t ldy, const float *x,
			      const struct hf_weight *w, const float *bias,
			      size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, ld = hf_weight_ld(w), gs = w->q.group;
	const uint32_t *qw = w->t[0];
	const int32_t *gi = w->t[3];
	const __m512i m = _mm512_set1_epi32(15);

	for (size_t r = r0; r < r1; r += 16) {
		const size_t R = w->q.roff + r;
		__m512 a[MM_GEMV_NT][4], s = _mm512_setzero_ps();
		__m512i z = _mm512_setzero_si512();
		size_t g = (size_t)-1;

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = a[t][2] = a[t][3] =
				_mm512_setzero_ps();
		for (size_t p = 0; p < in / 8; p++) {
			__m512i wd = _mm512_loadu_si512(qw + p * ld + R);

			if (!gi && p * 8 / gs != g) {
				g = p * 8 / gs;
				gptq_sz16(w, g, R, &s, &z);
			}
#define GPTQ_J(j) {							\
				size_t c = 8 * p + j;			\
				__m512i q = _mm512_and_si512(		\
					_mm512_srli_epi32(wd, 4 * j), m); \
				__m512 wv;				\
									\
				if (gi && (size_t)gi[c] != g) {		\
					g = (size_t)gi[c];		\
					gptq_sz16(w, g, R, &s, &z);	\
				}					\
				wv = _mm512_mul_ps(s, _mm512_cvtepi32_ps( \
					_mm512_sub_epi32(q, z)));	\
				for (size_t t = 0; t < nt; t++)		\
					a[t][j & 3] = _mm512_fmadd_ps(wv, \
						_mm512_set1_ps(x[t * in + c]), \
						a[t][j & 3]);		\
			}
			GPTQ_J(0) GPTQ_J(1) GPTQ_J(2) GPTQ_J(3)
			GPTQ_J(4) GPTQ_J(5) GPTQ_J(6) GPTQ_J(7)
#undef GPTQ_J
		}
		for (size_t t = 0; t < nt; t++) {
			__m512 v = _mm512_add_ps(_mm512_add_ps(a[t][0], a[t][1]),
						 _mm512_add_ps(a[t][2], a[t][3]));

			if (bias)
				v = _mm512_add_ps(v, _mm512_loadu_ps(bias + r));
			_mm512_storeu_ps(y + t * ldy + r, v);
		}
	}
}

T512 void mmq_gemv_gptq_512(float *y, size_t ldy, const float *x,
			    size_t nt, const struct hf_weight *w,
			    const float *bias, size_t r0, size_t r1)
{
	size_t a = r0, b;

	if (!gptq_fast(w)) {
		fallback(y, ldy, x, nt, w, bias, r0, r1);
		return;
	}
	while (a < r1 && (w->q.roff + a) % 16)
		a++;
	b = a + (r1 - a) / 16 * 16;
	if (a > r0)
		mmq_gemv_gptq(y, ldy, x, nt, w, bias, r0, a);
	if (b > a)
		BY_NT(gptq_rows512, y, ldy, x, w, bias, a, b)
	if (r1 > b)
		mmq_gemv_gptq(y, ldy, x, nt, w, bias, b, r1);
}

/* One output row at a time: word p of column R gives 8 inputs. */
T256 void mmq_widen_gptq(float *dst, const struct hf_weight *w, size_t r0,
			 size_t rows, size_t k0, size_t kc)
{
	const size_t ld = hf_weight_ld(w), gs = w->q.group;
	const uint32_t *qw = w->t[0], *qz = w->t[1];
	const uint16_t *sc = w->t[2];
	const __m256i sh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
	const __m256i m = _mm256_set1_epi32(15);

	if (!gptq_fast(w) || w->t[3] || k0 % 8 || kc % 8) {
		hf_weight_dequant(dst, w, r0, rows, k0, kc);
		return;
	}
	for (size_t r = 0; r < rows; r++) {
		const size_t R = w->q.roff + r0 + r;
		float *d = dst + r * kc;
		size_t g = (size_t)-1;
		__m256 s = _mm256_setzero_ps();
		__m256i z = _mm256_setzero_si256();

		for (size_t k = 0; k < kc; k += 8) {
			size_t c = k0 + k;
			__m256i q;

			if (c / gs != g) {
				unsigned zf;

				g = c / gs;
				zf = (qz[g * (ld / 8) + R / 8] >> (4 * (R % 8)))
				     & 15;
				z = _mm256_set1_epi32((int)((zf + w->q.zoff) &
							    15));
				s = _mm256_set1_ps(hf_f16_to_f32(sc[g * ld +
								   R]));
			}
			q = _mm256_and_si256(_mm256_srlv_epi32(
				_mm256_set1_epi32((int)qw[c / 8 * ld + R]), sh),
				m);
			_mm256_storeu_ps(d + k, _mm256_mul_ps(s,
				_mm256_cvtepi32_ps(_mm256_sub_epi32(q, z))));
		}
	}
}

/* ---- AWQ ------------------------------------------------------------------------ */

/* Shifts of output columns 0 .. 7 in an AWQ word (nibble order 0 2 4 6
 * 1 3 5 7). */
#define AWQ_SHIFTS _mm256_setr_epi32(0, 16, 4, 20, 8, 24, 12, 28)

/* 32 outputs R .. R + 31 (R a multiple of 8) at a time, input by input:
 * word c * ld / 8 + R / 8 + v holds outputs R + 8v .. R + 8v + 7. */
INLINE T256 void awq_rows(float *y, size_t ldy, const float *x,
			  const struct hf_weight *w, const float *bias,
			  size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, ld = hf_weight_ld(w), lw = ld / 8;
	const size_t gs = w->q.group;
	const uint32_t *qw = w->t[0], *qz = w->t[1];
	const uint16_t *sc = w->t[2];
	const __m256i sh = AWQ_SHIFTS, m = _mm256_set1_epi32(15);

	for (size_t r = r0; r < r1; r += 32) {
		const size_t R = w->q.roff + r;
		__m256 a[MM_GEMV_NT][4], s[4] = { 0 };
		__m256i z[4] = { 0 };

		for (size_t t = 0; t < nt; t++)
			for (int v = 0; v < 4; v++)
				a[t][v] = _mm256_setzero_ps();
		for (size_t c = 0; c < in; c++) {
			const uint32_t *wr = qw + c * lw + R / 8;

			if (c % gs == 0) {
				size_t g = c / gs;

				for (int v = 0; v < 4; v++) {
					s[v] = _mm256_cvtph_ps(_mm_loadu_si128(
						(const __m128i *)(sc + g * ld +
								  R + 8 * v)));
					z[v] = _mm256_and_si256(
						_mm256_srlv_epi32(
							_mm256_set1_epi32((int)
							qz[g * lw + R / 8 + v]),
							sh), m);
				}
			}
			for (int v = 0; v < 4; v++) {
				__m256i q = _mm256_and_si256(_mm256_srlv_epi32(
					_mm256_set1_epi32((int)wr[v]), sh), m);
				__m256 wv = _mm256_mul_ps(s[v],
					_mm256_cvtepi32_ps(
						_mm256_sub_epi32(q, z[v])));

				for (size_t t = 0; t < nt; t++)
					a[t][v] = _mm256_fmadd_ps(wv,
						_mm256_broadcast_ss(x + t * in +
								    c),
						a[t][v]);
			}
		}
		for (size_t t = 0; t < nt; t++)
			for (int v = 0; v < 4; v++) {
				__m256 o = a[t][v];

				if (bias)
					o = _mm256_add_ps(o, _mm256_loadu_ps(
						bias + r + 8 * v));
				_mm256_storeu_ps(y + t * ldy + r + 8 * v, o);
			}
	}
}

T256 void mmq_gemv_awq(float *y, size_t ldy, const float *x, size_t nt,
		       const struct hf_weight *w, const float *bias,
		       size_t r0, size_t r1)
{
	size_t a = r0, b;

	while (a < r1 && (w->q.roff + a) % 8)
		a++;
	b = a + (r1 - a) / 32 * 32;
	if (a > r0)
		fallback(y, ldy, x, nt, w, bias, r0, a);
	if (b > a)
		BY_NT(awq_rows, y, ldy, x, w, bias, a, b)
	if (r1 > b)
		fallback(y, ldy, x, nt, w, bias, b, r1);
}

/* Rows r of v[r] (8 x 8) to columns. */
INLINE T256 void transpose8(__m256 v[8])
{
	__m256 t[8], u[8];

	for (int i = 0; i < 8; i += 2) {
		t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
		t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
	}
	for (int i = 0; i < 8; i += 4) {
		u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
		u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
		u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
		u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
	}
	for (int i = 0; i < 4; i++) {
		v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
		v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
	}
}

/* 8 output rows at a time: the word of input c gives the 8 outputs of
 * that input; 8 inputs make an 8 x 8 tile, stored transposed. */
T256 void mmq_widen_awq(float *dst, const struct hf_weight *w, size_t r0,
			size_t rows, size_t k0, size_t kc)
{
	const size_t ld = hf_weight_ld(w), lw = ld / 8, gs = w->q.group;
	const uint32_t *qw = w->t[0], *qz = w->t[1];
	const uint16_t *sc = w->t[2];
	const __m256i sh = AWQ_SHIFTS, m = _mm256_set1_epi32(15);

	if ((w->q.roff + r0) % 8 || rows % 8 || kc % 8 || k0 % 8 || gs % 8) {
		hf_weight_dequant(dst, w, r0, rows, k0, kc);
		return;
	}
	for (size_t r = 0; r < rows; r += 8) {
		const size_t R = w->q.roff + r0 + r;
		size_t g = (size_t)-1;
		__m256 s = _mm256_setzero_ps();
		__m256i z = _mm256_setzero_si256();

		for (size_t k = 0; k < kc; k += 8) {
			__m256 v[8];

			if ((k0 + k) / gs != g) {
				g = (k0 + k) / gs;
				s = _mm256_cvtph_ps(_mm_loadu_si128(
					(const __m128i *)(sc + g * ld + R)));
				z = _mm256_and_si256(_mm256_srlv_epi32(
					_mm256_set1_epi32((int)qz[g * lw +
								 R / 8]), sh),
					m);
			}
			for (int i = 0; i < 8; i++) {
				__m256i q = _mm256_and_si256(_mm256_srlv_epi32(
					_mm256_set1_epi32((int)qw[(k0 + k + i) *
								 lw + R / 8]),
					sh), m);

				v[i] = _mm256_mul_ps(s, _mm256_cvtepi32_ps(
					_mm256_sub_epi32(q, z)));
			}
			transpose8(v);
			for (int i = 0; i < 8; i++)
				_mm256_storeu_ps(dst + (r + i) * kc + k, v[i]);
		}
	}
}

/* ---- FP8 E4M3 ------------------------------------------------------------------ */

/* 8 E4M3 codes to float: normal numbers rebias the exponent, subnormals
 * are m * 2^-9, S.1111.111 is NaN (as hf_f8e4m3_to_f32). */
INLINE T256 __m256 e4m3_8(const uint8_t *p)
{
	__m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
	__m256i sign = _mm256_slli_epi32(_mm256_and_si256(v,
		_mm256_set1_epi32(0x80)), 24);
	__m256i e = _mm256_and_si256(_mm256_srli_epi32(v, 3),
				     _mm256_set1_epi32(15));
	__m256i mm = _mm256_and_si256(v, _mm256_set1_epi32(7));
	__m256i nrm = _mm256_or_si256(_mm256_slli_epi32(_mm256_add_epi32(e,
		_mm256_set1_epi32(120)), 23), _mm256_slli_epi32(mm, 20));
	__m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(mm),
				   _mm256_set1_ps(0x1p-9f));
	__m256 mag = _mm256_blendv_ps(_mm256_castsi256_ps(nrm), sub,
		_mm256_castsi256_ps(_mm256_cmpeq_epi32(e,
			_mm256_setzero_si256())));
	__m256 nan = _mm256_castsi256_ps(_mm256_cmpeq_epi32(
		_mm256_and_si256(v, _mm256_set1_epi32(0x7f)),
		_mm256_set1_epi32(0x7f)));

	mag = _mm256_blendv_ps(mag, _mm256_set1_ps(__builtin_nanf("")), nan);
	return _mm256_or_ps(mag, _mm256_castsi256_ps(sign));
}

static int fp8_fast(const struct hf_weight *w)
{
	return w->q.group % 8 == 0;
}

INLINE T256 void fp8_rows(float *y, size_t ldy, const float *x,
			  const struct hf_weight *w, const float *bias,
			  size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, bc = w->q.group;
	const size_t nb = (in + bc - 1) / bc;
	const float *si = w->t[1];

	for (size_t r = r0; r < r1; r++) {
		const size_t R = w->q.roff + r;
		const uint8_t *p = (const uint8_t *)w->t[0] + R * in;
		const float *srow = si + R / w->q.group2 * nb;
		float acc[MM_GEMV_NT] = { 0 };

		for (size_t b = 0; b < nb; b++) {
			size_t k0 = b * bc, k1 = k0 + bc < in ? k0 + bc : in;
			size_t k8 = k0 + (k1 - k0) / 8 * 8;
			__m256 a[MM_GEMV_NT];
			float tail[MM_GEMV_NT] = { 0 };

			for (size_t t = 0; t < nt; t++)
				a[t] = _mm256_setzero_ps();
			for (size_t k = k0; k < k8; k += 8) {
				__m256 wv = e4m3_8(p + k);

				for (size_t t = 0; t < nt; t++)
					a[t] = _mm256_fmadd_ps(wv,
						_mm256_loadu_ps(x + t * in + k),
						a[t]);
			}
			for (size_t k = k8; k < k1; k++)
				for (size_t t = 0; t < nt; t++)
					tail[t] += hf_f8e4m3_to_f32(p[k]) *
						   x[t * in + k];
			for (size_t t = 0; t < nt; t++)
				acc[t] += (hsum8(a[t]) + tail[t]) * srow[b];
		}
		for (size_t t = 0; t < nt; t++)
			y[t * ldy + r] = acc[t] + (bias ? bias[r] : 0.0f);
	}
}

T256 void mmq_gemv_fp8(float *y, size_t ldy, const float *x, size_t nt,
		       const struct hf_weight *w, const float *bias,
		       size_t r0, size_t r1)
{
	if (!fp8_fast(w)) {
		fallback(y, ldy, x, nt, w, bias, r0, r1);
		return;
	}
	BY_NT(fp8_rows, y, ldy, x, w, bias, r0, r1)
}

T256 void mmq_widen_fp8(float *dst, const struct hf_weight *w, size_t r0,
			size_t rows, size_t k0, size_t kc)
{
	const size_t in = w->cols, bc = w->q.group;
	const size_t nb = (in + bc - 1) / bc;
	const float *si = w->t[1];

	if (!fp8_fast(w) || k0 % 8 || kc % 8) {
		hf_weight_dequant(dst, w, r0, rows, k0, kc);
		return;
	}
	for (size_t r = 0; r < rows; r++) {
		const size_t R = w->q.roff + r0 + r;
		const uint8_t *p = (const uint8_t *)w->t[0] + R * in;
		const float *srow = si + R / w->q.group2 * nb;

		for (size_t k = 0; k < kc; k += 8)
			_mm256_storeu_ps(dst + r * kc + k, _mm256_mul_ps(
				e4m3_8(p + k0 + k),
				_mm256_set1_ps(srow[(k0 + k) / bc])));
	}
}

/* ---- BitNet b1.58 ---------------------------------------------------------------- */

/* 8 ternary weights of row R from its packed row: ((b >> sh) & 3) - 1. */
INLINE T256 __m256 tern8(const uint8_t *p, __m128i sh)
{
	__m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));

	v = _mm256_and_si256(_mm256_srl_epi32(v, sh), _mm256_set1_epi32(3));
	return _mm256_cvtepi32_ps(_mm256_sub_epi32(v, _mm256_set1_epi32(1)));
}

INLINE T256 void bitnet_rows(float *y, size_t ldy, const float *x,
			     const struct hf_weight *w, const float *bias,
			     size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, k8 = in & ~(size_t)7;
	const size_t R4 = hf_weight_ld(w) / 4;

	for (size_t r = r0; r < r1; r++) {
		const size_t R = w->q.roff + r;
		const uint8_t *p = (const uint8_t *)w->t[0] + (R % R4) * in;
		const unsigned shs = 2 * (unsigned)(R / R4);
		const __m128i sh = _mm_cvtsi32_si128((int)shs);
		__m256 a[MM_GEMV_NT];

		for (size_t t = 0; t < nt; t++)
			a[t] = _mm256_setzero_ps();
		for (size_t k = 0; k < k8; k += 8) {
			__m256 wv = tern8(p + k, sh);

			for (size_t t = 0; t < nt; t++)
				a[t] = _mm256_fmadd_ps(wv,
					_mm256_loadu_ps(x + t * in + k), a[t]);
		}
		for (size_t t = 0; t < nt; t++) {
			float sum = hsum8(a[t]);

			for (size_t k = k8; k < in; k++)
				sum += (float)((int)((p[k] >> shs) & 3) - 1) *
				       x[t * in + k];
			y[t * ldy + r] = sum * w->q.p0 +
					 (bias ? bias[r] : 0.0f);
		}
	}
}

T256 void mmq_gemv_bitnet(float *y, size_t ldy, const float *x, size_t nt,
			  const struct hf_weight *w, const float *bias,
			  size_t r0, size_t r1)
{
	BY_NT(bitnet_rows, y, ldy, x, w, bias, r0, r1)
}

T256 void mmq_widen_bitnet(float *dst, const struct hf_weight *w,
			   size_t r0, size_t rows, size_t k0, size_t kc)
{
	const size_t in = w->cols, R4 = hf_weight_ld(w) / 4;
	const size_t k8 = kc & ~(size_t)7;
	const __m256 sc = _mm256_set1_ps(w->q.p0);

	for (size_t r = 0; r < rows; r++) {
		const size_t R = w->q.roff + r0 + r;
		const uint8_t *p = (const uint8_t *)w->t[0] + (R % R4) * in +
				   k0;
		const unsigned shs = 2 * (unsigned)(R / R4);
		const __m128i sh = _mm_cvtsi32_si128((int)shs);
		float *d = dst + r * kc;

		for (size_t k = 0; k < k8; k += 8)
			_mm256_storeu_ps(d + k, _mm256_mul_ps(tern8(p + k, sh),
							      sc));
		for (size_t k = k8; k < kc; k++)
			d[k] = (float)((int)((p[k] >> shs) & 3) - 1) * w->q.p0;
	}
}

/* ---- AVX-512: AWQ, FP8, BitNet decode ------------------------------------------- */

/* AWQ: 32 outputs R .. R + 31 (R a multiple of 8) a step, in two
 * vectors of 16: lanes 0-7 from one word, 8-15 from the next, each lane
 * shifted to its output's nibble (AWQ_SHIFTS twice). The weight is
 * s * (q - z), as the AVX2 kernel and the traits compute it. */
INLINE T512 __m512i awq_words16(const uint32_t *p, __m512i sh)
{
	__m512i v = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)
							   p));

	v = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0,
						       1, 1, 1, 1, 1, 1, 1, 1),
				     v);
	return _mm512_and_si512(_mm512_srlv_epi32(v, sh),
				_mm512_set1_epi32(15));
}

INLINE T512 void awq_rows512(float *y, size_t ldy, const float *x,
			     const struct hf_weight *w, const float *bias,
			     size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, ld = hf_weight_ld(w), lw = ld / 8;
	const size_t gs = w->q.group;
	const uint32_t *qw = w->t[0], *qz = w->t[1];
	const uint16_t *sc = w->t[2];
	const __m512i sh = _mm512_setr_epi32(0, 16, 4, 20, 8, 24, 12, 28,
					     0, 16, 4, 20, 8, 24, 12, 28);

	for (size_t r = r0; r < r1; r += 32) {
		const size_t R = w->q.roff + r;
		__m512 a[MM_GEMV_NT][2], s[2] = { 0 };
		__m512i z[2] = { 0 };

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = _mm512_setzero_ps();
		for (size_t c = 0; c < in; c++) {
			const uint32_t *wr = qw + c * lw + R / 8;

			if (c % gs == 0) {
				size_t g = c / gs;

				for (int v = 0; v < 2; v++) {
					s[v] = _mm512_cvtph_ps(
						_mm256_loadu_si256(
							(const __m256i *)(sc +
							g * ld + R + 16 * v)));
					z[v] = awq_words16(qz + g * lw + R / 8 +
							   2 * v, sh);
				}
			}
			for (int v = 0; v < 2; v++) {
				__m512 wv = _mm512_mul_ps(s[v],
					_mm512_cvtepi32_ps(_mm512_sub_epi32(
						awq_words16(wr + 2 * v, sh),
						z[v])));

				for (size_t t = 0; t < nt; t++)
					a[t][v] = _mm512_fmadd_ps(wv,
						_mm512_set1_ps(x[t * in + c]),
						a[t][v]);
			}
		}
		for (size_t t = 0; t < nt; t++)
			for (int v = 0; v < 2; v++) {
				__m512 o = a[t][v];

				if (bias)
					o = _mm512_add_ps(o, _mm512_loadu_ps(
						bias + r + 16 * v));
				_mm512_storeu_ps(y + t * ldy + r + 16 * v, o);
			}
	}
}

/* The rows before a word boundary and the tail under 32 take the AVX2
 * kernel (itself portable on what it cannot take). */
T512 void mmq_gemv_awq_512(float *y, size_t ldy, const float *x, size_t nt,
			   const struct hf_weight *w, const float *bias,
			   size_t r0, size_t r1)
{
	size_t a = r0, b;

	while (a < r1 && (w->q.roff + a) % 8)
		a++;
	b = a + (r1 - a) / 32 * 32;
	if (a > r0)
		mmq_gemv_awq(y, ldy, x, nt, w, bias, r0, a);
	if (b > a)
		BY_NT(awq_rows512, y, ldy, x, w, bias, a, b)
	if (r1 > b)
		mmq_gemv_awq(y, ldy, x, nt, w, bias, b, r1);
}

/* 16 E4M3 codes to float through f16: S.EEEE.MMM placed as the f16
 * S.0EEEE.MMM0000000 is the code's value times 2^-8 for normal numbers
 * and subnormals alike (f16's bias is 8 more than E4M3's, and both
 * subnormal ranges scale the same), so one vcvtph2ps and an exact
 * multiply by 256 give hf_f8e4m3_to_f32's values; S.1111.111 is NaN. */
INLINE T512 __m512 e4m3_16(const uint8_t *p)
{
	__m128i b = _mm_loadu_si128((const __m128i *)p);
	__m256i v = _mm256_cvtepu8_epi16(b);
	__m256i h = _mm256_or_si256(
		_mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)),
				  8),
		_mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x7f)),
				  7));
	__m512 f = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f));
	__mmask16 nan = _mm_cmpeq_epi8_mask(_mm_and_si128(b,
		_mm_set1_epi8(0x7f)), _mm_set1_epi8(0x7f));

	return _mm512_mask_mov_ps(f, nan, _mm512_set1_ps(__builtin_nanf("")));
}

INLINE T512 void fp8_rows512(float *y, size_t ldy, const float *x,
			     const struct hf_weight *w, const float *bias,
			     size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, bc = w->q.group;
	const size_t nb = (in + bc - 1) / bc;
	const float *si = w->t[1];

	for (size_t r = r0; r < r1; r++) {
		const size_t R = w->q.roff + r;
		const uint8_t *p = (const uint8_t *)w->t[0] + R * in;
		const float *srow = si + R / w->q.group2 * nb;
		__m512 acc[MM_GEMV_NT];
		float tail[MM_GEMV_NT] = { 0 };

		for (size_t t = 0; t < nt; t++)
			acc[t] = _mm512_setzero_ps();
		for (size_t b = 0; b < nb; b++) {
			size_t k0 = b * bc, k1 = k0 + bc < in ? k0 + bc : in;
			size_t k16 = k0 + (k1 - k0) / 16 * 16;
			__m512 a[MM_GEMV_NT], sb = _mm512_set1_ps(srow[b]);
			float tl[MM_GEMV_NT] = { 0 };

			for (size_t t = 0; t < nt; t++)
				a[t] = _mm512_setzero_ps();
			for (size_t k = k0; k < k16; k += 16) {
				__m512 wv = e4m3_16(p + k);

				for (size_t t = 0; t < nt; t++)
					a[t] = _mm512_fmadd_ps(wv,
						_mm512_loadu_ps(x + t * in + k),
						a[t]);
			}
			for (size_t k = k16; k < k1; k++)
				for (size_t t = 0; t < nt; t++)
					tl[t] += hf_f8e4m3_to_f32(p[k]) *
						 x[t * in + k];
			/* the block's scale on its vector of sums */
			for (size_t t = 0; t < nt; t++) {
				acc[t] = _mm512_fmadd_ps(a[t], sb, acc[t]);
				tail[t] += tl[t] * srow[b];
			}
		}
		for (size_t t = 0; t < nt; t++)
			y[t * ldy + r] = _mm512_reduce_add_ps(acc[t]) + tail[t] +
					 (bias ? bias[r] : 0.0f);
	}
}

/* Blocks of a multiple of 16 codes; others take the AVX2 kernel. */
T512 void mmq_gemv_fp8_512(float *y, size_t ldy, const float *x, size_t nt,
			   const struct hf_weight *w, const float *bias,
			   size_t r0, size_t r1)
{
	if (w->q.group % 16) {
		mmq_gemv_fp8(y, ldy, x, nt, w, bias, r0, r1);
		return;
	}
	BY_NT(fp8_rows512, y, ldy, x, w, bias, r0, r1)
}

T512 void mmq_widen_fp8_512(float *dst, const struct hf_weight *w,
			    size_t r0, size_t rows, size_t k0, size_t kc)
{
	const size_t in = w->cols, bc = w->q.group;
	const size_t nb = (in + bc - 1) / bc;
	const float *si = w->t[1];

	if (bc % 16 || k0 % 16 || kc % 16) {
		mmq_widen_fp8(dst, w, r0, rows, k0, kc);
		return;
	}
	for (size_t r = 0; r < rows; r++) {
		const size_t R = w->q.roff + r0 + r;
		const uint8_t *p = (const uint8_t *)w->t[0] + R * in;
		const float *srow = si + R / w->q.group2 * nb;

		for (size_t k = 0; k < kc; k += 16)
			_mm512_storeu_ps(dst + r * kc + k, _mm512_mul_ps(
				e4m3_16(p + k0 + k),
				_mm512_set1_ps(srow[(k0 + k) / bc])));
	}
}

/* BitNet: 32 ternary weights of a row a step, ((b >> sh) & 3) - 1 on 16
 * lanes; the row's one scale at the end. */
INLINE T512 __m512 tern16(const uint8_t *p, __m128i sh)
{
	__m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));

	v = _mm512_and_si512(_mm512_srl_epi32(v, sh), _mm512_set1_epi32(3));
	return _mm512_cvtepi32_ps(_mm512_sub_epi32(v, _mm512_set1_epi32(1)));
}

INLINE T512 void bitnet_rows512(float *y, size_t ldy, const float *x,
				const struct hf_weight *w, const float *bias,
				size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, k32 = in & ~(size_t)31;
	const size_t R4 = hf_weight_ld(w) / 4;

	for (size_t r = r0; r < r1; r++) {
		const size_t R = w->q.roff + r;
		const uint8_t *p = (const uint8_t *)w->t[0] + (R % R4) * in;
		const unsigned shs = 2 * (unsigned)(R / R4);
		const __m128i sh = _mm_cvtsi32_si128((int)shs);
		__m512 a[MM_GEMV_NT][2];

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = _mm512_setzero_ps();
		for (size_t k = 0; k < k32; k += 32) {
			__m512 w0 = tern16(p + k, sh);
			__m512 w1 = tern16(p + k + 16, sh);

			for (size_t t = 0; t < nt; t++) {
				const float *xt = x + t * in + k;

				a[t][0] = _mm512_fmadd_ps(w0,
					_mm512_loadu_ps(xt), a[t][0]);
				a[t][1] = _mm512_fmadd_ps(w1,
					_mm512_loadu_ps(xt + 16), a[t][1]);
			}
		}
		for (size_t t = 0; t < nt; t++) {
			float sum = _mm512_reduce_add_ps(_mm512_add_ps(a[t][0],
								       a[t][1]));

			for (size_t k = k32; k < in; k++)
				sum += (float)((int)((p[k] >> shs) & 3) - 1) *
				       x[t * in + k];
			y[t * ldy + r] = sum * w->q.p0 +
					 (bias ? bias[r] : 0.0f);
		}
	}
}

T512 void mmq_gemv_bitnet_512(float *y, size_t ldy, const float *x,
			      size_t nt, const struct hf_weight *w,
			      const float *bias, size_t r0, size_t r1)
{
	BY_NT(bitnet_rows512, y, ldy, x, w, bias, r0, r1)
}

#endif
