/* lib/tensor/matmul_quant_arm.c: AArch64 Advanced SIMD (NEON) kernels for
 * the quantized weight formats (tensor/wfmt.h), for the NEON table of
 * matmul_arm.c: the decode matrix-vector product, and the widening of W
 * panels that the batched product hands to cblas_sgemm. As the AVX2 ones
 * (matmul_quant_x86.c), they dequantize in registers from the packed
 * bytes, to the very float32 values of the format's traits dequant
 * (lib/quant/formats.c): a widened panel equals hf_weight_dequant's bit
 * for bit. Baseline ARMv8.0 NEON only, so nothing needs a run-time check:
 * no dotprod (x is float32, so an integer dot product would first round
 * x, which the formats' numerics do not do). A layout a kernel does not
 * take runs on the portable kernels. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "tensor/matmul_arm.h"
#include "tensor/matmul_kern.h"

#define INLINE static inline __attribute__((always_inline))

static void fallback(float *y, size_t ldy, const float *x, size_t nt,
		     const struct hf_weight *w, const float *bias, size_t r0,
		     size_t r1)
{
	mm_generic[w->fmt].gemv(y, ldy, x, nt, w, bias, r0, r1);
}

/* The kernels below are instantiated for each token count nt (a
 * constant once inlined, so the accumulators stay in registers). */
#define BY_NT(f, ...)							\
	switch (nt) {							\
	case 1: f(__VA_ARGS__, 1); break;				\
	case 2: f(__VA_ARGS__, 2); break;				\
	case 3: f(__VA_ARGS__, 3); break;				\
	default: f(__VA_ARGS__, 4); break;				\
	}

/* 16 signed bytes to four vectors of 4 floats, in order (exact). */
INLINE void s8x16_f32(float32x4_t o[4], int8x16_t b)
{
	int16x8_t l = vmovl_s8(vget_low_s8(b)), h = vmovl_high_s8(b);

	o[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(l)));
	o[1] = vcvtq_f32_s32(vmovl_high_s16(l));
	o[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
	o[3] = vcvtq_f32_s32(vmovl_high_s16(h));
}

static inline float vsum4(const float32x4_t a[4])
{
	return vaddvq_f32(vaddq_f32(vaddq_f32(a[0], a[1]),
				    vaddq_f32(a[2], a[3])));
}

/* a[t][0..3] += w[0..3] . x[t][k .. k + 16): four FMA chains a token,
 * sixteen partial sums per output (the AVX2 kernels keep as many). */
INLINE void fma16(float32x4_t a[MM_GEMV_NT][4], const float32x4_t wv[4],
		  const float *x, size_t in, size_t k, const size_t nt)
{
	for (size_t t = 0; t < nt; t++) {
		const float *xt = x + t * in + k;

		for (int i = 0; i < 4; i++)
			a[t][i] = vfmaq_f32(a[t][i], wv[i],
					    vld1q_f32(xt + 4 * i));
	}
}

/* ---- bitsandbytes LLM.int8 ------------------------------------------------ */

/* y = (x . q[r]) * SCB[r] / 127: the row's factor applied once. */
INLINE void int8_rows(float *y, size_t ldy, const float *x,
		      const struct hf_weight *w, const float *bias,
		      size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, k16 = in & ~(size_t)15;
	const float *scb = w->t[1];

	for (size_t r = r0; r < r1; r++) {
		const size_t R = w->q.roff + r;
		const int8_t *q = (const int8_t *)w->t[0] + R * in;
		float32x4_t a[MM_GEMV_NT][4];
		const float f = scb[R] / 127.0f;

		for (size_t t = 0; t < nt; t++)
			for (int i = 0; i < 4; i++)
				a[t][i] = vdupq_n_f32(0.0f);
		for (size_t k = 0; k < k16; k += 16) {
			float32x4_t wv[4];

			s8x16_f32(wv, vld1q_s8(q + k));
			fma16(a, wv, x, in, k, nt);
		}
		for (size_t t = 0; t < nt; t++) {
			float s = vsum4(a[t]);

			for (size_t k = k16; k < in; k++)
				s += (float)q[k] * x[t * in + k];
			y[t * ldy + r] = s * f + (bias ? bias[r] : 0.0f);
		}
	}
}

void mmqn_gemv_int8(float *y, size_t ldy, const float *x, size_t nt,
		    const struct hf_weight *w, const float *bias, size_t r0,
		    size_t r1)
{
	BY_NT(int8_rows, y, ldy, x, w, bias, r0, r1)
}

void mmqn_widen_int8(float *dst, const struct hf_weight *w, size_t r0,
		     size_t rows, size_t k0, size_t kc)
{
	const float *scb = w->t[1];
	const size_t k16 = kc & ~(size_t)15;

	for (size_t r = 0; r < rows; r++) {
		const size_t R = w->q.roff + r0 + r;
		const int8_t *q = (const int8_t *)w->t[0] + R * w->cols + k0;
		float *d = dst + r * kc, f = scb[R] / 127.0f;

		for (size_t k = 0; k < k16; k += 16) {
			float32x4_t wv[4];

			s8x16_f32(wv, vld1q_s8(q + k));
			for (int i = 0; i < 4; i++)
				vst1q_f32(d + k + 4 * i,
					  vmulq_n_f32(wv[i], f));
		}
		for (size_t k = k16; k < kc; k++)
			d[k] = (float)q[k] * f;
	}
}

/* ---- bitsandbytes 4-bit ----------------------------------------------------- */

/* The kernels take rows of whole blocks of a multiple of 32 codes. */
static int bnb4_fast(const struct hf_weight *w)
{
	return w->q.group && w->q.group % 32 == 0 &&
	       w->cols % w->q.group == 0;
}

/* The expression of formats.c's dequant, so that GCC contracts it alike
 * (into one fmadd on AArch64, where the x86 portable build rounds twice):
 * the widened panels must stay bit for bit the traits' values
 * (test/unit/tensor/matmul_quant_isa.c checks it). */
static float bnb4_absmax(const struct hf_weight *w, size_t b)
{
	if (w->fmt == HF_WFMT_BNB4DQ) {
		const uint8_t *aq = w->t[1];
		const float *nabs = w->t[3], *nmap = w->t[4];

		return nmap[aq[b]] * nabs[b / w->q.group2] + w->q.p0;
	}
	return ((const float *)w->t[1])[b];
}

/* The 16-entry table times am, as four byte planes for tbl: pl[j][i] is
 * byte j of entry i (two rounds of unzipping the even and odd bytes). */
INLINE void bnb4_planes(uint8x16_t pl[4], const float *map, float am)
{
	uint8x16_t f[4], e01, o01, e23, o23;

	for (int i = 0; i < 4; i++)
		f[i] = vreinterpretq_u8_f32(vmulq_n_f32(vld1q_f32(map + 4 * i),
							am));
	e01 = vuzp1q_u8(f[0], f[1]);
	o01 = vuzp2q_u8(f[0], f[1]);
	e23 = vuzp1q_u8(f[2], f[3]);
	o23 = vuzp2q_u8(f[2], f[3]);
	pl[0] = vuzp1q_u8(e01, e23);
	pl[2] = vuzp2q_u8(e01, e23);
	pl[1] = vuzp1q_u8(o01, o23);
	pl[3] = vuzp2q_u8(o01, o23);
}

/* 16 codes (indices 0..15) to their 16 table entries, in order: one tbl
 * per byte plane, then the planes zipped back into floats. */
INLINE void bnb4_lut16(float32x4_t o[4], const uint8x16_t pl[4],
		       uint8x16_t idx)
{
	uint8x16_t p0 = vqtbl1q_u8(pl[0], idx), p1 = vqtbl1q_u8(pl[1], idx);
	uint8x16_t p2 = vqtbl1q_u8(pl[2], idx), p3 = vqtbl1q_u8(pl[3], idx);
	uint16x8_t h0 = vreinterpretq_u16_u8(vzip1q_u8(p0, p1));
	uint16x8_t h1 = vreinterpretq_u16_u8(vzip2q_u8(p0, p1));
	uint16x8_t g0 = vreinterpretq_u16_u8(vzip1q_u8(p2, p3));
	uint16x8_t g1 = vreinterpretq_u16_u8(vzip2q_u8(p2, p3));

	o[0] = vreinterpretq_f32_u16(vzip1q_u16(h0, g0));
	o[1] = vreinterpretq_f32_u16(vzip2q_u16(h0, g0));
	o[2] = vreinterpretq_f32_u16(vzip1q_u16(h1, g1));
	o[3] = vreinterpretq_f32_u16(vzip2q_u16(h1, g1));
}

/* The 32 weights of 16 code bytes, element 2i the high nibble. */
INLINE void bnb4_32(float32x4_t lo[4], float32x4_t hi[4], const uint8_t *c,
		    const uint8x16_t pl[4])
{
	uint8x16_t v = vld1q_u8(c);
	uint8x16_t hn = vshrq_n_u8(v, 4), ln = vandq_u8(v, vdupq_n_u8(15));

	bnb4_lut16(lo, pl, vzip1q_u8(hn, ln));
	bnb4_lut16(hi, pl, vzip2q_u8(hn, ln));
}

INLINE void bnb4_rows(float *y, size_t ldy, const float *x,
		      const struct hf_weight *w, const float *bias,
		      size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, bs = w->q.group;
	const uint8_t *codes = w->t[0];
	const float *map = w->t[2];

	for (size_t r = r0; r < r1; r++) {
		const size_t e0 = (w->q.roff + r) * in;
		float32x4_t a[MM_GEMV_NT][4];

		for (size_t t = 0; t < nt; t++)
			for (int i = 0; i < 4; i++)
				a[t][i] = vdupq_n_f32(0.0f);
		for (size_t k0 = 0; k0 < in; k0 += bs) {
			uint8x16_t pl[4];

			bnb4_planes(pl, map, bnb4_absmax(w, (e0 + k0) / bs));
			for (size_t k = k0; k < k0 + bs; k += 32) {
				float32x4_t lo[4], hi[4];

				bnb4_32(lo, hi, codes + (e0 + k) / 2, pl);
				fma16(a, lo, x, in, k, nt);
				fma16(a, hi, x, in, k + 16, nt);
			}
		}
		for (size_t t = 0; t < nt; t++)
			y[t * ldy + r] = vsum4(a[t]) + (bias ? bias[r] : 0.0f);
	}
}

void mmqn_gemv_bnb4(float *y, size_t ldy, const float *x, size_t nt,
		    const struct hf_weight *w, const float *bias, size_t r0,
		    size_t r1)
{
	if (!bnb4_fast(w)) {
		fallback(y, ldy, x, nt, w, bias, r0, r1);
		return;
	}
	BY_NT(bnb4_rows, y, ldy, x, w, bias, r0, r1)
}

void mmqn_widen_bnb4(float *dst, const struct hf_weight *w, size_t r0,
		     size_t rows, size_t k0, size_t kc)
{
	const size_t in = w->cols, bs = w->q.group;
	const uint8_t *codes = w->t[0];
	const float *map = w->t[2];

	if (!bnb4_fast(w) || k0 % bs || kc % bs) {
		hf_weight_dequant(dst, w, r0, rows, k0, kc);
		return;
	}
	for (size_t r = 0; r < rows; r++) {
		const size_t e0 = (w->q.roff + r0 + r) * in + k0;

		for (size_t kb = 0; kb < kc; kb += bs) {
			uint8x16_t pl[4];

			bnb4_planes(pl, map, bnb4_absmax(w, (e0 + kb) / bs));
			for (size_t k = kb; k < kb + bs; k += 32) {
				float32x4_t lo[4], hi[4];
				float *d = dst + r * kc + k;

				bnb4_32(lo, hi, codes + (e0 + k) / 2, pl);
				for (int i = 0; i < 4; i++) {
					vst1q_f32(d + 4 * i, lo[i]);
					vst1q_f32(d + 16 + 4 * i, hi[i]);
				}
			}
		}
	}
}

/* ---- GPTQ 4-bit and 8-bit ------------------------------------------------------ */

/* 4 bits: a word holds 8 inputs (qweight) or 8 outputs' zeros; 8 bits: 4.
 * A group must not split a word of qweight. */
static int gptq_fast(const struct hf_weight *w)
{
	return (w->q.bits == 4 || w->q.bits == 8) && w->q.group &&
	       w->q.group % (32 / w->q.bits) == 0;
}

/* The scales and zeros of outputs R .. R + 7 (R a multiple of 8) in
 * group g: s as float, z the true zero. */
INLINE void gptq_sz(const struct hf_weight *w, size_t g, size_t R,
		    const unsigned bits, float32x4_t s[2], int32x4_t z[2])
{
	const size_t ld = hf_weight_ld(w);
	const uint32_t *qz = w->t[1];
	const uint16_t *sc = (const uint16_t *)w->t[2] + g * ld + R;
	const uint32x4_t m = vdupq_n_u32((1u << bits) - 1);
	const uint32x4_t zo = vdupq_n_u32(w->q.zoff);
	uint32x4_t z0, z1;

	s[0] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sc)));
	s[1] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sc + 4)));
	if (bits == 4) {
		const int32x4_t sh0 = { 0, -4, -8, -12 };
		const int32x4_t sh1 = { -16, -20, -24, -28 };
		uint32x4_t zw = vdupq_n_u32(qz[g * (ld / 8) + R / 8]);

		z0 = vshlq_u32(zw, sh0);
		z1 = vshlq_u32(zw, sh1);
	} else {
		const int32x4_t sh = { 0, -8, -16, -24 };
		const uint32_t *zr = qz + g * (ld / 4) + R / 4;

		z0 = vshlq_u32(vdupq_n_u32(zr[0]), sh);
		z1 = vshlq_u32(vdupq_n_u32(zr[1]), sh);
	}
	z[0] = vreinterpretq_s32_u32(vandq_u32(vaddq_u32(z0, zo), m));
	z[1] = vreinterpretq_s32_u32(vandq_u32(vaddq_u32(z1, zo), m));
}

/* Field j of the words wd (j * bits a constant once inlined, so the
 * variable shift compiles to an immediate one) as s * (q - z). */
#define GPTQ_W(wd, j, s, z)						\
	vmulq_f32(s, vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(	\
		vandq_u32(vshlq_u32(wd, vdupq_n_s32(-(int)((j) * bits))), \
			  m)), z)))

/* Vectorized over 8 outputs (two vectors): word p of the 8 columns R ..
 * R + 7 holds inputs per * p .. per * p + per - 1 of each. Rows [r0, r1):
 * R = roff + r a multiple of 8, r1 - r0 too. x[t] is read a vector of 4
 * inputs at a time, its lanes broadcast by the FMA. */
INLINE void gptq_rows(float *y, size_t ldy, const float *x,
		      const struct hf_weight *w, const float *bias,
		      size_t r0, size_t r1, const unsigned bits,
		      const size_t nt)
{
	const size_t in = w->cols, ld = hf_weight_ld(w), gs = w->q.group;
	const size_t per = 32 / bits;
	const uint32_t *qw = w->t[0];
	const int32_t *gi = w->t[3];
	const uint32x4_t m = vdupq_n_u32((1u << bits) - 1);

	for (size_t r = r0; r < r1; r += 8) {
		const size_t R = w->q.roff + r;
		float32x4_t a[MM_GEMV_NT][2], s[2] = { vdupq_n_f32(0.0f),
						       vdupq_n_f32(0.0f) };
		int32x4_t z[2] = { vdupq_n_s32(0), vdupq_n_s32(0) };
		size_t g = (size_t)-1;

		for (size_t t = 0; t < nt; t++)
			a[t][0] = a[t][1] = vdupq_n_f32(0.0f);
		for (size_t p = 0; p < in / per; p++) {
			const uint32x4_t wd0 = vld1q_u32(qw + p * ld + R);
			const uint32x4_t wd1 = vld1q_u32(qw + p * ld + R + 4);
			float32x4_t xv[MM_GEMV_NT][2];

			if (!gi && p * per / gs != g) {
				g = p * per / gs;
				gptq_sz(w, g, R, bits, s, z);
			}
			for (size_t t = 0; t < nt; t++) {
				xv[t][0] = vld1q_f32(x + t * in + per * p);
				xv[t][1] = bits == 4 ?
					   vld1q_f32(x + t * in + per * p + 4) :
					   xv[t][0];
			}
#define GPTQ_J(j) if ((j) < per) {					\
				size_t c = per * p + (j);		\
				float32x4_t w0, w1;			\
									\
				if (gi && (size_t)gi[c] != g) {		\
					g = (size_t)gi[c];		\
					gptq_sz(w, g, R, bits, s, z);	\
				}					\
				w0 = GPTQ_W(wd0, (j) % per, s[0], z[0]); \
				w1 = GPTQ_W(wd1, (j) % per, s[1], z[1]); \
				for (size_t t = 0; t < nt; t++) {	\
					a[t][0] = vfmaq_laneq_f32(a[t][0], w0, \
						xv[t][(j) / 4], (j) % 4); \
					a[t][1] = vfmaq_laneq_f32(a[t][1], w1, \
						xv[t][(j) / 4], (j) % 4); \
				}					\
			}
			GPTQ_J(0) GPTQ_J(1) GPTQ_J(2) GPTQ_J(3)
			GPTQ_J(4) GPTQ_J(5) GPTQ_J(6) GPTQ_J(7)
#undef GPTQ_J
		}
		for (size_t t = 0; t < nt; t++) {
			float32x4_t v0 = a[t][0], v1 = a[t][1];

			if (bias) {
				v0 = vaddq_f32(v0, vld1q_f32(bias + r));
				v1 = vaddq_f32(v1, vld1q_f32(bias + r + 4));
			}
			vst1q_f32(y + t * ldy + r, v0);
			vst1q_f32(y + t * ldy + r + 4, v1);
		}
	}
}

INLINE void gptq_rows4(float *y, size_t ldy, const float *x,
		       const struct hf_weight *w, const float *bias,
		       size_t r0, size_t r1, const size_t nt)
{
	gptq_rows(y, ldy, x, w, bias, r0, r1, 4, nt);
}

INLINE void gptq_rows8(float *y, size_t ldy, const float *x,
		       const struct hf_weight *w, const float *bias,
		       size_t r0, size_t r1, const size_t nt)
{
	gptq_rows(y, ldy, x, w, bias, r0, r1, 8, nt);
}

void mmqn_gemv_gptq(float *y, size_t ldy, const float *x, size_t nt,
		    const struct hf_weight *w, const float *bias, size_t r0,
		    size_t r1)
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
	if (b > a) {
		if (w->q.bits == 4)
			BY_NT(gptq_rows4, y, ldy, x, w, bias, a, b)
		else
			BY_NT(gptq_rows8, y, ldy, x, w, bias, a, b)
	}
	if (r1 > b)
		fallback(y, ldy, x, nt, w, bias, b, r1);
}

/* One output row at a time: word c / per of column R gives per inputs,
 * four to a vector. With g_idx each input has its own group: the scales
 * and zeros of the word's inputs are gathered into vectors first. */
INLINE void gptq_widen(float *dst, const struct hf_weight *w, size_t r0,
		       size_t rows, size_t k0, size_t kc, const unsigned bits)
{
	const size_t ld = hf_weight_ld(w), gs = w->q.group, per = 32 / bits;
	const uint32_t *qw = w->t[0], *qz = w->t[1];
	const uint16_t *sc = w->t[2];
	const int32_t *gi = w->t[3];
	const uint32_t mask = (1u << bits) - 1;
	const uint32x4_t m = vdupq_n_u32(mask);
	const int32x4_t sh0 = bits == 4 ? (int32x4_t){ 0, -4, -8, -12 } :
					  (int32x4_t){ 0, -8, -16, -24 };
	const int32x4_t sh1 = { -16, -20, -24, -28 };

	for (size_t r = 0; r < rows; r++) {
		const size_t R = w->q.roff + r0 + r;
		const unsigned zsh = bits * (unsigned)(R % per);
		float *d = dst + r * kc;
		size_t g = (size_t)-1;
		float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
		int32x4_t z0 = vdupq_n_s32(0), z1 = z0;

		for (size_t k = 0; k < kc; k += per) {
			size_t c = k0 + k;
			uint32x4_t wd = vdupq_n_u32(qw[c / per * ld + R]);

			if (gi) {
				float sv[8];
				int32_t zv[8];

				for (size_t j = 0; j < per; j++) {
					size_t gg = (size_t)gi[c + j];
					unsigned zf = qz[gg * (ld / per) +
							 R / per] >> zsh;

					sv[j] = hf_f16_to_f32(sc[gg * ld + R]);
					zv[j] = (int32_t)((zf + w->q.zoff) &
							  mask);
				}
				s0 = vld1q_f32(sv);
				z0 = vld1q_s32(zv);
				if (bits == 4) {
					s1 = vld1q_f32(sv + 4);
					z1 = vld1q_s32(zv + 4);
				}
			} else if (c / gs != g) {
				unsigned zf;

				g = c / gs;
				zf = qz[g * (ld / per) + R / per] >> zsh;
				z0 = z1 = vdupq_n_s32((int32_t)((zf +
								w->q.zoff) &
							       mask));
				s0 = s1 = vdupq_n_f32(hf_f16_to_f32(sc[g * ld +
									R]));
			}
			vst1q_f32(d + k, vmulq_f32(s0, vcvtq_f32_s32(vsubq_s32(
				vreinterpretq_s32_u32(vandq_u32(vshlq_u32(wd,
								sh0), m)),
				z0))));
			if (bits == 4)
				vst1q_f32(d + k + 4, vmulq_f32(s1,
					vcvtq_f32_s32(vsubq_s32(
						vreinterpretq_s32_u32(vandq_u32(
							vshlq_u32(wd, sh1), m)),
						z1))));
		}
	}
}

void mmqn_widen_gptq(float *dst, const struct hf_weight *w, size_t r0,
		     size_t rows, size_t k0, size_t kc)
{
	size_t per = 32 / (w->q.bits ? w->q.bits : 32);

	if (!gptq_fast(w) || k0 % per || kc % per) {
		hf_weight_dequant(dst, w, r0, rows, k0, kc);
		return;
	}
	if (w->q.bits == 4)
		gptq_widen(dst, w, r0, rows, k0, kc, 4);
	else
		gptq_widen(dst, w, r0, rows, k0, kc, 8);
}

/* ---- AWQ ------------------------------------------------------------------------ */

/* Shifts (right, as negative left shifts) of output columns 0 .. 3 and
 * 4 .. 7 in an AWQ word (nibble order 0 2 4 6 1 3 5 7). */
#define AWQ_SH_LO ((int32x4_t){ 0, -16, -4, -20 })
#define AWQ_SH_HI ((int32x4_t){ -8, -24, -12, -28 })

/* The 8 nibbles of word v as outputs 0..3 and 4..7: s * (q - z). */
INLINE void awq_8(float32x4_t o[2], uint32_t v, const float32x4_t s[2],
		  const int32x4_t z[2])
{
	const uint32x4_t m = vdupq_n_u32(15), wd = vdupq_n_u32(v);
	int32x4_t q0 = vreinterpretq_s32_u32(vandq_u32(vshlq_u32(wd,
							AWQ_SH_LO), m));
	int32x4_t q1 = vreinterpretq_s32_u32(vandq_u32(vshlq_u32(wd,
							AWQ_SH_HI), m));

	o[0] = vmulq_f32(s[0], vcvtq_f32_s32(vsubq_s32(q0, z[0])));
	o[1] = vmulq_f32(s[1], vcvtq_f32_s32(vsubq_s32(q1, z[1])));
}

/* Scales and zeros of outputs R .. R + 7 (R a multiple of 8), group g. */
INLINE void awq_sz(const struct hf_weight *w, size_t g, size_t R,
		   float32x4_t s[2], int32x4_t z[2])
{
	const size_t ld = hf_weight_ld(w);
	const uint32_t *qz = w->t[1];
	const uint16_t *sc = (const uint16_t *)w->t[2] + g * ld + R;
	const uint32x4_t m = vdupq_n_u32(15);
	const uint32x4_t zw = vdupq_n_u32(qz[g * (ld / 8) + R / 8]);

	s[0] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sc)));
	s[1] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sc + 4)));
	z[0] = vreinterpretq_s32_u32(vandq_u32(vshlq_u32(zw, AWQ_SH_LO), m));
	z[1] = vreinterpretq_s32_u32(vandq_u32(vshlq_u32(zw, AWQ_SH_HI), m));
}

/* 16 outputs R .. R + 15 (R a multiple of 8) at a time, input by input:
 * word c * ld / 8 + R / 8 + v holds outputs R + 8v .. R + 8v + 7. */
INLINE void awq_rows(float *y, size_t ldy, const float *x,
		     const struct hf_weight *w, const float *bias, size_t r0,
		     size_t r1, const size_t nt)
{
	const size_t in = w->cols, lw = hf_weight_ld(w) / 8, gs = w->q.group;
	const uint32_t *qw = w->t[0];

	for (size_t r = r0; r < r1; r += 16) {
		const size_t R = w->q.roff + r;
		float32x4_t a[MM_GEMV_NT][4], s[2][2];
		int32x4_t z[2][2];

		for (int v = 0; v < 2; v++) {	/* c = 0 sets them */
			s[v][0] = s[v][1] = vdupq_n_f32(0.0f);
			z[v][0] = z[v][1] = vdupq_n_s32(0);
		}
		for (size_t t = 0; t < nt; t++)
			for (int i = 0; i < 4; i++)
				a[t][i] = vdupq_n_f32(0.0f);
		for (size_t c = 0; c < in; c++) {
			const uint32_t *wr = qw + c * lw + R / 8;

			if (c % gs == 0) {
				awq_sz(w, c / gs, R, s[0], z[0]);
				awq_sz(w, c / gs, R + 8, s[1], z[1]);
			}
			for (int v = 0; v < 2; v++) {
				float32x4_t wv[2];

				awq_8(wv, wr[v], s[v], z[v]);
				for (size_t t = 0; t < nt; t++) {
					float xc = x[t * in + c];

					a[t][2 * v] = vfmaq_n_f32(a[t][2 * v],
								  wv[0], xc);
					a[t][2 * v + 1] = vfmaq_n_f32(
						a[t][2 * v + 1], wv[1], xc);
				}
			}
		}
		for (size_t t = 0; t < nt; t++)
			for (int i = 0; i < 4; i++) {
				float32x4_t o = a[t][i];

				if (bias)
					o = vaddq_f32(o, vld1q_f32(bias + r +
								   4 * i));
				vst1q_f32(y + t * ldy + r + 4 * i, o);
			}
	}
}

void mmqn_gemv_awq(float *y, size_t ldy, const float *x, size_t nt,
		   const struct hf_weight *w, const float *bias, size_t r0,
		   size_t r1)
{
	size_t a = r0, b;

	if (!w->q.group) {
		fallback(y, ldy, x, nt, w, bias, r0, r1);
		return;
	}
	while (a < r1 && (w->q.roff + a) % 8)
		a++;
	b = a + (r1 - a) / 16 * 16;
	if (a > r0)
		fallback(y, ldy, x, nt, w, bias, r0, a);
	if (b > a)
		BY_NT(awq_rows, y, ldy, x, w, bias, a, b)
	if (r1 > b)
		fallback(y, ldy, x, nt, w, bias, b, r1);
}

/* v[i]: 4 outputs at input i, to 4 rows of 4 inputs. */
INLINE void transpose4(float32x4_t v[4])
{
	float32x4x2_t t01 = vtrnq_f32(v[0], v[1]), t23 = vtrnq_f32(v[2], v[3]);

	v[0] = vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0]));
	v[1] = vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1]));
	v[2] = vcombine_f32(vget_high_f32(t01.val[0]),
			    vget_high_f32(t23.val[0]));
	v[3] = vcombine_f32(vget_high_f32(t01.val[1]),
			    vget_high_f32(t23.val[1]));
}

/* 8 output rows at a time: the word of input c gives the 8 outputs of
 * that input; 4 inputs make two 4 x 4 tiles, stored transposed. */
void mmqn_widen_awq(float *dst, const struct hf_weight *w, size_t r0,
		    size_t rows, size_t k0, size_t kc)
{
	const size_t lw = hf_weight_ld(w) / 8, gs = w->q.group;
	const uint32_t *qw = w->t[0];

	if (!gs || (w->q.roff + r0) % 8 || rows % 8 || kc % 4 || k0 % 4 ||
	    gs % 4) {
		hf_weight_dequant(dst, w, r0, rows, k0, kc);
		return;
	}
	for (size_t r = 0; r < rows; r += 8) {
		const size_t R = w->q.roff + r0 + r;
		size_t g = (size_t)-1;
		float32x4_t s[2] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
		int32x4_t z[2] = { vdupq_n_s32(0), vdupq_n_s32(0) };

		for (size_t k = 0; k < kc; k += 4) {
			float32x4_t lo[4], hi[4];

			if ((k0 + k) / gs != g) {
				g = (k0 + k) / gs;
				awq_sz(w, g, R, s, z);
			}
			for (int i = 0; i < 4; i++) {
				float32x4_t o[2];

				awq_8(o, qw[(k0 + k + i) * lw + R / 8], s, z);
				lo[i] = o[0];
				hi[i] = o[1];
			}
			transpose4(lo);
			transpose4(hi);
			for (int i = 0; i < 4; i++) {
				vst1q_f32(dst + (r + i) * kc + k, lo[i]);
				vst1q_f32(dst + (r + 4 + i) * kc + k, hi[i]);
			}
		}
	}
}

/* ---- FP8 E4M3 ------------------------------------------------------------------ */

/* 8 E4M3 codes as float, divided by 256 (exactly): the code's bits moved
 * into a float16 (S.EEEE.MMM to S.0EEEE.MMM0000000: exponent bias 15
 * against 7, subnormals included) and widened by fcvtl; S.1111.111 gets
 * the all-ones exponent of a float16 NaN. */
INLINE void e4m3_8(float32x4_t o[2], const uint8_t *p)
{
	uint16x8_t v = vmovl_u8(vld1_u8(p));
	uint16x8_t mag = vandq_u16(v, vdupq_n_u16(0x7f));
	uint16x8_t h = vorrq_u16(vshlq_n_u16(vandq_u16(v, vdupq_n_u16(0x80)),
					     8),
				 vshlq_n_u16(mag, 7));
	uint16x8_t nan = vceqq_u16(mag, vdupq_n_u16(0x7f));
	float16x8_t hf;

	h = vorrq_u16(h, vandq_u16(nan, vdupq_n_u16(0x7c00)));
	hf = vreinterpretq_f16_u16(h);
	o[0] = vcvt_f32_f16(vget_low_f16(hf));
	o[1] = vcvt_high_f32_f16(hf);
}

static int fp8_fast(const struct hf_weight *w)
{
	return w->q.group && w->q.group % 8 == 0 && w->q.group2;
}

/* Per block of columns, the product of the codes (scaled by 1/256) and
 * x in two vectors a token, times the block's scale (and 256: exact). */
INLINE void fp8_rows(float *y, size_t ldy, const float *x,
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
		float32x4_t acc[MM_GEMV_NT];
		float tail[MM_GEMV_NT] = { 0 };

		for (size_t t = 0; t < nt; t++)
			acc[t] = vdupq_n_f32(0.0f);
		for (size_t b = 0; b < nb; b++) {
			size_t k0 = b * bc, k1 = k0 + bc < in ? k0 + bc : in;
			size_t k8 = k0 + (k1 - k0) / 8 * 8;
			float32x4_t a[MM_GEMV_NT][2];
			const float sb = srow[b];

			for (size_t t = 0; t < nt; t++)
				a[t][0] = a[t][1] = vdupq_n_f32(0.0f);
			for (size_t k = k0; k < k8; k += 8) {
				float32x4_t wv[2];

				e4m3_8(wv, p + k);
				for (size_t t = 0; t < nt; t++) {
					const float *xt = x + t * in + k;

					a[t][0] = vfmaq_f32(a[t][0], wv[0],
							    vld1q_f32(xt));
					a[t][1] = vfmaq_f32(a[t][1], wv[1],
							    vld1q_f32(xt + 4));
				}
			}
			for (size_t t = 0; t < nt; t++) {
				acc[t] = vfmaq_n_f32(acc[t],
					vmulq_n_f32(vaddq_f32(a[t][0], a[t][1]),
						    256.0f), sb);
				for (size_t k = k8; k < k1; k++)
					tail[t] += hf_f8e4m3_to_f32(p[k]) * sb *
						   x[t * in + k];
			}
		}
		for (size_t t = 0; t < nt; t++)
			y[t * ldy + r] = vaddvq_f32(acc[t]) + tail[t] +
					 (bias ? bias[r] : 0.0f);
	}
}

void mmqn_gemv_fp8(float *y, size_t ldy, const float *x, size_t nt,
		   const struct hf_weight *w, const float *bias, size_t r0,
		   size_t r1)
{
	if (!fp8_fast(w)) {
		fallback(y, ldy, x, nt, w, bias, r0, r1);
		return;
	}
	BY_NT(fp8_rows, y, ldy, x, w, bias, r0, r1)
}

void mmqn_widen_fp8(float *dst, const struct hf_weight *w, size_t r0,
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

		for (size_t k = 0; k < kc; k += 8) {
			float32x4_t wv[2];
			const float sb = srow[(k0 + k) / bc];

			e4m3_8(wv, p + k0 + k);
			for (int i = 0; i < 2; i++)
				vst1q_f32(dst + r * kc + k + 4 * i,
					  vmulq_n_f32(vmulq_n_f32(wv[i],
								  256.0f),
						      sb));
		}
	}
}

/* ---- BitNet b1.58 ---------------------------------------------------------------- */

/* 16 ternary weights of row R from its packed row: ((b >> sh) & 3) - 1;
 * nsh is -sh (a right shift). */
INLINE void tern16(float32x4_t o[4], const uint8_t *p, int8x16_t nsh)
{
	uint8x16_t v = vandq_u8(vshlq_u8(vld1q_u8(p), nsh), vdupq_n_u8(3));

	s8x16_f32(o, vsubq_s8(vreinterpretq_s8_u8(v), vdupq_n_s8(1)));
}

INLINE void bitnet_rows(float *y, size_t ldy, const float *x,
			const struct hf_weight *w, const float *bias,
			size_t r0, size_t r1, const size_t nt)
{
	const size_t in = w->cols, k16 = in & ~(size_t)15;
	const size_t R4 = hf_weight_ld(w) / 4;

	for (size_t r = r0; r < r1; r++) {
		const size_t R = w->q.roff + r;
		const uint8_t *p = (const uint8_t *)w->t[0] + (R % R4) * in;
		const unsigned shs = 2 * (unsigned)(R / R4);
		const int8x16_t nsh = vdupq_n_s8((int8_t)-(int)shs);
		float32x4_t a[MM_GEMV_NT][4];

		for (size_t t = 0; t < nt; t++)
			for (int i = 0; i < 4; i++)
				a[t][i] = vdupq_n_f32(0.0f);
		for (size_t k = 0; k < k16; k += 16) {
			float32x4_t wv[4];

			tern16(wv, p + k, nsh);
			fma16(a, wv, x, in, k, nt);
		}
		for (size_t t = 0; t < nt; t++) {
			float sum = vsum4(a[t]);

			for (size_t k = k16; k < in; k++)
				sum += (float)((int)((p[k] >> shs) & 3) - 1) *
				       x[t * in + k];
			y[t * ldy + r] = sum * w->q.p0 +
					 (bias ? bias[r] : 0.0f);
		}
	}
}

void mmqn_gemv_bitnet(float *y, size_t ldy, const float *x, size_t nt,
		      const struct hf_weight *w, const float *bias, size_t r0,
		      size_t r1)
{
	BY_NT(bitnet_rows, y, ldy, x, w, bias, r0, r1)
}

void mmqn_widen_bitnet(float *dst, const struct hf_weight *w, size_t r0,
		       size_t rows, size_t k0, size_t kc)
{
	const size_t in = w->cols, R4 = hf_weight_ld(w) / 4;
	const size_t k16 = kc & ~(size_t)15;

	for (size_t r = 0; r < rows; r++) {
		const size_t R = w->q.roff + r0 + r;
		const uint8_t *p = (const uint8_t *)w->t[0] + (R % R4) * in +
				   k0;
		const unsigned shs = 2 * (unsigned)(R / R4);
		const int8x16_t nsh = vdupq_n_s8((int8_t)-(int)shs);
		float *d = dst + r * kc;

		for (size_t k = 0; k < k16; k += 16) {
			float32x4_t wv[4];

			tern16(wv, p + k, nsh);
			for (int i = 0; i < 4; i++)
				vst1q_f32(d + k + 4 * i,
					  vmulq_n_f32(wv[i], w->q.p0));
		}
		for (size_t k = k16; k < kc; k++)
			d[k] = (float)((int)((p[k] >> shs) & 3) - 1) * w->q.p0;
	}
}

#endif
