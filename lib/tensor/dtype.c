/* lib/tensor/dtype.c: safetensors dtype codes and conversions to and from
 * float32, with AVX2/F16C and AVX-512 bulk paths picked at run time. */
#include "tensor/dtype.h"
#include "core/cpu.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

static const struct {
	const char *name;
	unsigned bits;
} dtypes[HF_DTYPE_COUNT] = {
	[HF_DTYPE_BOOL] = { "BOOL", 8 },
	[HF_DTYPE_U8] = { "U8", 8 },
	[HF_DTYPE_I8] = { "I8", 8 },
	[HF_DTYPE_I16] = { "I16", 16 },
	[HF_DTYPE_U16] = { "U16", 16 },
	[HF_DTYPE_F16] = { "F16", 16 },
	[HF_DTYPE_BF16] = { "BF16", 16 },
	[HF_DTYPE_I32] = { "I32", 32 },
	[HF_DTYPE_U32] = { "U32", 32 },
	[HF_DTYPE_F32] = { "F32", 32 },
	[HF_DTYPE_F64] = { "F64", 64 },
	[HF_DTYPE_I64] = { "I64", 64 },
	[HF_DTYPE_U64] = { "U64", 64 },
	[HF_DTYPE_F8_E4M3] = { "F8_E4M3", 8 },
	[HF_DTYPE_F8_E5M2] = { "F8_E5M2", 8 },
	[HF_DTYPE_F8_E4M3FNUZ] = { "F8_E4M3FNUZ", 8 },
	[HF_DTYPE_F8_E5M2FNUZ] = { "F8_E5M2FNUZ", 8 },
	[HF_DTYPE_F8_E8M0] = { "F8_E8M0", 8 },
	[HF_DTYPE_F6_E2M3] = { "F6_E2M3", 6 },
	[HF_DTYPE_F6_E3M2] = { "F6_E3M2", 6 },
	[HF_DTYPE_F4] = { "F4", 4 },
	[HF_DTYPE_C64] = { "C64", 64 },
};

/* Position in the Rust Dtype enum, which is ordered by increasing
 * alignment (docs/safetensors.md, s. 3); the writer sorts on it. */
static const unsigned char align_rank[HF_DTYPE_COUNT] = {
	[HF_DTYPE_BOOL] = 0,
	[HF_DTYPE_F4] = 1,
	[HF_DTYPE_F6_E2M3] = 2,
	[HF_DTYPE_F6_E3M2] = 3,
	[HF_DTYPE_U8] = 4,
	[HF_DTYPE_I8] = 5,
	[HF_DTYPE_F8_E5M2] = 6,
	[HF_DTYPE_F8_E4M3] = 7,
	[HF_DTYPE_F8_E8M0] = 8,
	[HF_DTYPE_F8_E4M3FNUZ] = 9,
	[HF_DTYPE_F8_E5M2FNUZ] = 10,
	[HF_DTYPE_I16] = 11,
	[HF_DTYPE_U16] = 12,
	[HF_DTYPE_F16] = 13,
	[HF_DTYPE_BF16] = 14,
	[HF_DTYPE_I32] = 15,
	[HF_DTYPE_U32] = 16,
	[HF_DTYPE_F32] = 17,
	[HF_DTYPE_C64] = 18,
	[HF_DTYPE_F64] = 19,
	[HF_DTYPE_I64] = 20,
	[HF_DTYPE_U64] = 21,
};

const char *hf_dtype_name(enum hf_dtype t)
{
	if ((unsigned)t >= HF_DTYPE_COUNT)
		return "?";
	return dtypes[t].name;
}

int hf_dtype_parse(const char *s)
{
	for (int i = 0; i < HF_DTYPE_COUNT; i++)
		if (!strcmp(dtypes[i].name, s))
			return i;
	return -1;
}

unsigned hf_dtype_bits(enum hf_dtype t)
{
	if ((unsigned)t >= HF_DTYPE_COUNT)
		return 0;
	return dtypes[t].bits;
}

unsigned hf_dtype_align_rank(enum hf_dtype t)
{
	if ((unsigned)t >= HF_DTYPE_COUNT)
		return 0;
	return align_rank[t];
}

static inline uint32_t f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

static inline float bits_f32(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

/* binary32 -> binary16, round to nearest, ties to even; overflow gives
 * inf, underflow gives subnormals or zero. NaN keeps its sign and the top
 * payload bits and is made quiet (x86 VCVTPS2PH behaviour). */
uint16_t hf_f32_to_f16(float f)
{
	uint32_t u = f32_bits(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	uint32_t exp = (u >> 23) & 0xff, man = u & 0x7fffff;
	int e;

	if (exp == 0xff)
		return sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0);
	e = (int)exp - 127 + 15;
	if (e >= 0x1f)
		return sign | 0x7c00;
	if (e <= 0) {
		/* subnormal or zero result: shift the full significand
		 * (with its implicit bit) right by 14 - e, rounding */
		uint32_t m, shift, half, rest, q;

		if (e < -10)	/* below half the smallest subnormal */
			return sign;
		m = man | 0x800000;
		shift = (uint32_t)(14 - e);
		q = m >> shift;
		rest = m & ((1u << shift) - 1);
		half = 1u << (shift - 1);
		if (rest > half || (rest == half && (q & 1)))
			q++;
		return sign | (uint16_t)q;	/* q may carry into exp 1 */
	}
	{
		uint32_t q = ((uint32_t)e << 10) | (man >> 13);
		uint32_t rest = man & 0x1fff;

		if (rest > 0x1000 || (rest == 0x1000 && (q & 1)))
			q++;	/* may carry to inf: correct */
		return sign | (uint16_t)q;
	}
}

/* PyTorch's rounding (c10::round_to_nearest_even), NaN -> 0x7FC0. */
uint16_t hf_f32_to_bf16(float f)
{
	uint32_t u = f32_bits(f);

	if ((u & 0x7fffffff) > 0x7f800000)
		return 0x7fc0;
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

/* E4M3 "fn": bias 7, no infinities, S.1111.111 is NaN, max 448. */
float hf_f8e4m3_to_f32(uint8_t v)
{
	unsigned e = (v >> 3) & 0xf, m = v & 7;
	float x;

	if (e == 0xf && m == 7)
		return (v & 0x80) ? -NAN : NAN;
	x = e ? ldexpf((float)(8 + m), (int)e - 7 - 3)
	      : ldexpf((float)m, -6 - 3);
	return (v & 0x80) ? -x : x;
}

/* E5M2: bias 15, IEEE-like with inf and NaN. */
float hf_f8e5m2_to_f32(uint8_t v)
{
	/* e5m2 is the top byte of an f16 */
	return hf_f16_to_f32((uint16_t)v << 8);
}

/* E4M3 "fnuz": bias 8, no inf, no -0; 0x80 is the only NaN. */
float hf_f8e4m3fnuz_to_f32(uint8_t v)
{
	unsigned e = (v >> 3) & 0xf, m = v & 7;
	float x;

	if (v == 0x80)
		return NAN;
	x = e ? ldexpf((float)(8 + m), (int)e - 8 - 3)
	      : ldexpf((float)m, -7 - 3);
	return (v & 0x80) ? -x : x;
}

/* E5M2 "fnuz": bias 16, no inf, no -0; 0x80 is the only NaN. */
float hf_f8e5m2fnuz_to_f32(uint8_t v)
{
	unsigned e = (v >> 2) & 0x1f, m = v & 3;
	float x;

	if (v == 0x80)
		return NAN;
	x = e ? ldexpf((float)(4 + m), (int)e - 16 - 2)
	      : ldexpf((float)m, -15 - 2);
	return (v & 0x80) ? -x : x;
}

/* E8M0 (MX scales): 2^(v - 127), 0xFF is NaN. */
float hf_f8e8m0_to_f32(uint8_t v)
{
	if (v == 0xff)
		return NAN;
	return ldexpf(1.0f, (int)v - 127);
}

/* ---- bulk conversions ---- */

static void f16_to_f32_plain(float *dst, const uint16_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = hf_f16_to_f32(src[i]);
}

static void f32_to_f16_plain(uint16_t *dst, const float *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = hf_f32_to_f16(src[i]);
}

static void bf16_to_f32_plain(float *dst, const uint16_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = hf_bf16_to_f32(src[i]);
}

static void f32_to_bf16_plain(uint16_t *dst, const float *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = hf_f32_to_bf16(src[i]);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HF_DTYPE_X86 1

__attribute__((target("avx2,f16c,fma")))
static void f16_to_f32_avx2(float *dst, const uint16_t *src, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(src + i));

		_mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
	}
	f16_to_f32_plain(dst + i, src + i, n - i);
}

__attribute__((target("avx2,f16c,fma")))
static void f32_to_f16_avx2(uint16_t *dst, const float *src, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256 f = _mm256_loadu_ps(src + i);

		_mm_storeu_si128((__m128i *)(dst + i),
				 _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
	}
	f32_to_f16_plain(dst + i, src + i, n - i);
}

__attribute__((target("avx2")))
static void bf16_to_f32_avx2(float *dst, const uint16_t *src, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(src + i));
		__m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);

		_mm256_storeu_si256((__m256i *)(dst + i), w);
	}
	bf16_to_f32_plain(dst + i, src + i, n - i);
}

/* u + 0x7fff + ((u >> 16) & 1), >> 16, NaN lanes replaced by 0x7fc0. */
__attribute__((target("avx2")))
static void f32_to_bf16_avx2(uint16_t *dst, const float *src, size_t n)
{
	const __m256i one = _mm256_set1_epi32(1);
	const __m256i bias = _mm256_set1_epi32(0x7fff);
	const __m256i qnan = _mm256_set1_epi32(0x7fc0);
	const __m256i absm = _mm256_set1_epi32(0x7fffffff);
	const __m256i inf = _mm256_set1_epi32(0x7f800000);
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m256i r[2];

		for (int k = 0; k < 2; k++) {
			__m256i u = _mm256_loadu_si256(
				(const __m256i *)(src + i + 8 * k));
			__m256i lsb = _mm256_and_si256(
				_mm256_srli_epi32(u, 16), one);
			__m256i v = _mm256_add_epi32(u,
				_mm256_add_epi32(bias, lsb));
			__m256i nan = _mm256_cmpgt_epi32(
				_mm256_and_si256(u, absm), inf);

			v = _mm256_srli_epi32(v, 16);
			r[k] = _mm256_blendv_epi8(v, qnan, nan);
		}
		/* packus works per 128-bit lane: fix the order after */
		__m256i p = _mm256_packus_epi32(r[0], r[1]);

		p = _mm256_permute4x64_epi64(p, 0xd8);
		_mm256_storeu_si256((__m256i *)(dst + i), p);
	}
	f32_to_bf16_plain(dst + i, src + i, n - i);
}

__attribute__((target("avx512f")))
static void f16_to_f32_avx512(float *dst, const uint16_t *src, size_t n)
{
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m256i h = _mm256_loadu_si256((const __m256i *)(src + i));

		_mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
	}
	f16_to_f32_plain(dst + i, src + i, n - i);
}

__attribute__((target("avx512f")))
static void f32_to_f16_avx512(uint16_t *dst, const float *src, size_t n)
{
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512 f = _mm512_loadu_ps(src + i);

		_mm256_storeu_si256((__m256i *)(dst + i),
			_mm512_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
	}
	f32_to_f16_plain(dst + i, src + i, n - i);
}

__attribute__((target("avx512f")))
static void bf16_to_f32_avx512(float *dst, const uint16_t *src, size_t n)
{
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m256i h = _mm256_loadu_si256((const __m256i *)(src + i));
		__m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);

		_mm512_storeu_si512((void *)(dst + i), w);
	}
	bf16_to_f32_plain(dst + i, src + i, n - i);
}

__attribute__((target("avx512f")))
static void f32_to_bf16_avx512(uint16_t *dst, const float *src, size_t n)
{
	const __m512i one = _mm512_set1_epi32(1);
	const __m512i bias = _mm512_set1_epi32(0x7fff);
	const __m512i qnan = _mm512_set1_epi32(0x7fc0);
	const __m512i absm = _mm512_set1_epi32(0x7fffffff);
	const __m512i inf = _mm512_set1_epi32(0x7f800000);
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512i u = _mm512_loadu_si512((const void *)(src + i));
		__m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
		__m512i v = _mm512_add_epi32(u, _mm512_add_epi32(bias, lsb));
		__mmask16 nan = _mm512_cmpgt_epi32_mask(
			_mm512_and_si512(u, absm), inf);

		v = _mm512_mask_mov_epi32(_mm512_srli_epi32(v, 16), nan, qnan);
		_mm256_storeu_si256((__m256i *)(dst + i),
				    _mm512_cvtepi32_epi16(v));
	}
	f32_to_bf16_plain(dst + i, src + i, n - i);
}
#endif

struct kernels {
	void (*f16_to_f32)(float *, const uint16_t *, size_t);
	void (*f32_to_f16)(uint16_t *, const float *, size_t);
	void (*bf16_to_f32)(float *, const uint16_t *, size_t);
	void (*f32_to_bf16)(uint16_t *, const float *, size_t);
};

static struct kernels kern = {
	f16_to_f32_plain, f32_to_f16_plain, bf16_to_f32_plain,
	f32_to_bf16_plain,
};
static pthread_once_t kern_once = PTHREAD_ONCE_INIT;
static const char *kern_name = "plain";

/* Install the kernels of one path; -1 if this CPU cannot run it. */
static int use_kernels(const char *name)
{
	if (!strcmp(name, "plain")) {
		kern.f16_to_f32 = f16_to_f32_plain;
		kern.f32_to_f16 = f32_to_f16_plain;
		kern.bf16_to_f32 = bf16_to_f32_plain;
		kern.f32_to_bf16 = f32_to_bf16_plain;
		kern_name = "plain";
		return 0;
	}
#ifdef HF_DTYPE_X86
	if (!strcmp(name, "avx512") && hf_cpu_has(HF_CPU_AVX512F)) {
		kern.f16_to_f32 = f16_to_f32_avx512;
		kern.f32_to_f16 = f32_to_f16_avx512;
		kern.bf16_to_f32 = bf16_to_f32_avx512;
		kern.f32_to_bf16 = f32_to_bf16_avx512;
		kern_name = "avx512";
		return 0;
	}
	if (!strcmp(name, "avx2") && hf_cpu_has(HF_CPU_AVX2) &&
	    hf_cpu_has(HF_CPU_F16C) && hf_cpu_has(HF_CPU_FMA)) {
		kern.f16_to_f32 = f16_to_f32_avx2;
		kern.f32_to_f16 = f32_to_f16_avx2;
		kern.bf16_to_f32 = bf16_to_f32_avx2;
		kern.f32_to_bf16 = f32_to_bf16_avx2;
		kern_name = "avx2";
		return 0;
	}
#endif
	return -1;
}

static void pick_kernels(void)
{
	if (use_kernels("avx512") && use_kernels("avx2"))
		use_kernels("plain");
}

static const struct kernels *kernels(void)
{
	pthread_once(&kern_once, pick_kernels);
	return &kern;
}

const char *hf_dtype_simd(void)
{
	kernels();
	return kern_name;
}

int hf_dtype_set_simd(const char *name)
{
	kernels();
	return use_kernels(name);
}

void hf_f16_to_f32_n(float *dst, const uint16_t *src, size_t n)
{
	kernels()->f16_to_f32(dst, src, n);
}

void hf_f32_to_f16_n(uint16_t *dst, const float *src, size_t n)
{
	kernels()->f32_to_f16(dst, src, n);
}

void hf_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n)
{
	kernels()->bf16_to_f32(dst, src, n);
}

void hf_f32_to_bf16_n(uint16_t *dst, const float *src, size_t n)
{
	kernels()->f32_to_bf16(dst, src, n);
}

void hf_f16_to_f32_ref(float *dst, const uint16_t *src, size_t n)
{
	f16_to_f32_plain(dst, src, n);
}

void hf_f32_to_f16_ref(uint16_t *dst, const float *src, size_t n)
{
	f32_to_f16_plain(dst, src, n);
}

void hf_bf16_to_f32_ref(float *dst, const uint16_t *src, size_t n)
{
	bf16_to_f32_plain(dst, src, n);
}

void hf_f32_to_bf16_ref(uint16_t *dst, const float *src, size_t n)
{
	f32_to_bf16_plain(dst, src, n);
}

static void f8_n(float *dst, const uint8_t *src, size_t n,
		 float (*one)(uint8_t))
{
	float lut[256];

	for (int v = 0; v < 256; v++)
		lut[v] = one((uint8_t)v);
	for (size_t i = 0; i < n; i++)
		dst[i] = lut[src[i]];
}

/* src may be unaligned (a tensor in a file whose offsets are not a
 * multiple of the element size): F32 and F64 read through memcpy. */
int hf_to_f32_n(float *dst, const void *src, enum hf_dtype t, size_t n)
{
	const unsigned char *s = src;

	switch (t) {
	case HF_DTYPE_F32:
		memmove(dst, src, n * 4);
		return 0;
	case HF_DTYPE_F64:
		for (size_t i = 0; i < n; i++) {
			double d;

			memcpy(&d, s + 8 * i, 8);
			dst[i] = (float)d;
		}
		return 0;
	case HF_DTYPE_F16:
		if ((uintptr_t)src % 2)
			break;
		hf_f16_to_f32_n(dst, src, n);
		return 0;
	case HF_DTYPE_BF16:
		if ((uintptr_t)src % 2)
			break;
		hf_bf16_to_f32_n(dst, src, n);
		return 0;
	case HF_DTYPE_F8_E4M3:
		f8_n(dst, src, n, hf_f8e4m3_to_f32);
		return 0;
	case HF_DTYPE_F8_E5M2:
		f8_n(dst, src, n, hf_f8e5m2_to_f32);
		return 0;
	case HF_DTYPE_F8_E4M3FNUZ:
		f8_n(dst, src, n, hf_f8e4m3fnuz_to_f32);
		return 0;
	case HF_DTYPE_F8_E5M2FNUZ:
		f8_n(dst, src, n, hf_f8e5m2fnuz_to_f32);
		return 0;
	case HF_DTYPE_F8_E8M0:
		f8_n(dst, src, n, hf_f8e8m0_to_f32);
		return 0;
	default:
		return -1;
	}
	/* odd address for a 16-bit type: one element at a time */
	for (size_t i = 0; i < n; i++) {
		uint16_t h;

		memcpy(&h, s + 2 * i, 2);
		dst[i] = t == HF_DTYPE_F16 ? hf_f16_to_f32(h)
					   : hf_bf16_to_f32(h);
	}
	return 0;
}
