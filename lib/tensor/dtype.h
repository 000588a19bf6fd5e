/* lib/tensor/dtype.h: element types of safetensors files and their
 * conversions to and from float32. */
#ifndef HF_TENSOR_DTYPE_H
#define HF_TENSOR_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Every dtype code of the safetensors format (docs/safetensors.md, s. 3). */
enum hf_dtype {
	HF_DTYPE_BOOL,
	HF_DTYPE_U8,
	HF_DTYPE_I8,
	HF_DTYPE_I16,
	HF_DTYPE_U16,
	HF_DTYPE_F16,
	HF_DTYPE_BF16,
	HF_DTYPE_I32,
	HF_DTYPE_U32,
	HF_DTYPE_F32,
	HF_DTYPE_F64,
	HF_DTYPE_I64,
	HF_DTYPE_U64,
	HF_DTYPE_F8_E4M3,
	HF_DTYPE_F8_E5M2,
	HF_DTYPE_F8_E4M3FNUZ,
	HF_DTYPE_F8_E5M2FNUZ,
	HF_DTYPE_F8_E8M0,
	HF_DTYPE_F6_E2M3,
	HF_DTYPE_F6_E3M2,
	HF_DTYPE_F4,
	HF_DTYPE_C64,
	HF_DTYPE_COUNT
};

/* "F32", "BF16", ... as in safetensors headers. */
const char *hf_dtype_name(enum hf_dtype t);
/* Parse a header dtype string (case-sensitive); -1 if unknown. */
int hf_dtype_parse(const char *s);
/* Bits per element: 4, 6, 8, 16, 32, 64. */
unsigned hf_dtype_bits(enum hf_dtype t);
/* Rank in the reference's Dtype enum, which orders types by increasing
 * alignment (BOOL 0 ... U64 21); writers sort tensors on it. */
unsigned hf_dtype_align_rank(enum hf_dtype t);

/* Scalar widening, exact; inline so that kernels can call it in their
 * inner loops. f16 NaNs keep their payload and come out quiet, as the
 * F16C instruction (VCVTPH2PS) makes them. */
static inline float hf_bf16_to_f32(uint16_t b)
{
	uint32_t u = (uint32_t)b << 16;
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static inline float hf_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
	float f;

	if (exp == 0x1f) {
		u = sign | 0x7f800000 | (man << 13) | (man ? 0x400000 : 0);
	} else if (exp) {
		u = sign | ((exp + 112) << 23) | (man << 13);
	} else if (man) {
		f = (float)man * 0x1p-24f;	/* subnormal: exact in float */
		return sign ? -f : f;
	} else {
		u = sign;
	}
	memcpy(&f, &u, 4);
	return f;
}

/* Scalar narrowing, round-to-nearest-even. */
uint16_t hf_f32_to_f16(float f);
uint16_t hf_f32_to_bf16(float f);	/* NaN -> 0x7FC0 (quiet) */
float hf_f8e4m3_to_f32(uint8_t v);
float hf_f8e5m2_to_f32(uint8_t v);
float hf_f8e4m3fnuz_to_f32(uint8_t v);	/* 0x80 is NaN, bias 8 */
float hf_f8e5m2fnuz_to_f32(uint8_t v);	/* 0x80 is NaN, bias 16 */
float hf_f8e8m0_to_f32(uint8_t v);	/* 2^(v-127), 0xFF is NaN */

/* Bulk conversions of n elements, vectorised where the CPU allows. */
void hf_f16_to_f32_n(float *dst, const uint16_t *src, size_t n);
void hf_f32_to_f16_n(uint16_t *dst, const float *src, size_t n);
void hf_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n);
void hf_f32_to_bf16_n(uint16_t *dst, const float *src, size_t n);

/* The plain C loops behind the above, kept to test the SIMD paths. */
void hf_f16_to_f32_ref(float *dst, const uint16_t *src, size_t n);
void hf_f32_to_f16_ref(uint16_t *dst, const float *src, size_t n);
void hf_bf16_to_f32_ref(float *dst, const uint16_t *src, size_t n);
void hf_f32_to_bf16_ref(uint16_t *dst, const float *src, size_t n);

/* Which bulk path runs: "avx512", "avx2" or "plain" (the best this CPU
 * has, unless set). hf_dtype_set_simd picks one, for tests and benchmarks
 * (not thread-safe against running conversions); -1 if the CPU lacks it. */
const char *hf_dtype_simd(void);
int hf_dtype_set_simd(const char *name);

/* Any float-like dtype (F32 F16 BF16 F64 F8_*) to float32; returns -1 for
 * types with no float meaning. src need not be aligned. */
int hf_to_f32_n(float *dst, const void *src, enum hf_dtype t, size_t n);

#endif
