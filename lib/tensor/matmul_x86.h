/* lib/tensor/matmul_x86.h: what the x86 matmul kernels share
 * (matmul_x86.c: f32 compute; matmul_bf16.c: bf16 compute). Internal to
 * lib/tensor. */
#ifndef HF_TENSOR_MATMUL_X86_H
#define HF_TENSOR_MATMUL_X86_H

#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* The sum of the 8 lanes of v. */
INLINE T256 float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v),
			      _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* In-register transpose of 32-bit lanes: on return v[c] holds column c of
 * the 16x16 block whose row r was v[r]. */
INLINE T512 void transpose16(__m512 v[16])
{
	__m512 t[16], u[16];

	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
		t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
	}
	/* u[4g + q]: lane L holds column 4L + q of rows 4g .. 4g + 3 */
	for (int g = 0; g < 4; g++) {
		__m512 lo0 = t[4 * g], hi0 = t[4 * g + 1];
		__m512 lo1 = t[4 * g + 2], hi1 = t[4 * g + 3];

		u[4 * g] = _mm512_shuffle_ps(lo0, lo1, 0x44);
		u[4 * g + 1] = _mm512_shuffle_ps(lo0, lo1, 0xEE);
		u[4 * g + 2] = _mm512_shuffle_ps(hi0, hi1, 0x44);
		u[4 * g + 3] = _mm512_shuffle_ps(hi0, hi1, 0xEE);
	}
	for (int q = 0; q < 4; q++) {
		__m512 a = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88);
		__m512 b = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD);
		__m512 c = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
		__m512 d = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);

		v[q] = _mm512_shuffle_f32x4(a, c, 0x88);
		v[8 + q] = _mm512_shuffle_f32x4(a, c, 0xDD);
		v[4 + q] = _mm512_shuffle_f32x4(b, d, 0x88);
		v[12 + q] = _mm512_shuffle_f32x4(b, d, 0xDD);
	}
}

#endif
