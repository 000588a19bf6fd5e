/* lib/export/ggml_types.c: ggml's type table, its fp16/bf16 conversions,
 * and the 32-element block formats (q4_0 q4_1 q5_0 q5_1 q8_0) and the
 * ternary ones (tq1_0 tq2_0), bit for bit what ggml's
 * quantize_row_<t>_ref and dequantize_row_<t> (ggml/src/ggml-quants.c,
 * ggml/src/ggml-impl.h of the llama.cpp release node-llama-cpp 3.21.1
 * ships) produce: the same float operations in the same order. The
 * K-quants are in ggml_kquants.c. */
#include "export/ggml_types.h"
#include "core/pool.h"

#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* A fused multiply-add rounds once where ggml rounds twice: keep every
 * product and sum as written, whatever -march says. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- scalars ---------------------------------------------------------- */

static float from_bits(uint32_t w)
{
	float f;

	memcpy(&f, &w, 4);
	return f;
}

static uint32_t to_bits(float f)
{
	uint32_t w;

	memcpy(&w, &f, 4);
	return w;
}

/* ggml_compute_fp32_to_fp16 (after Maratyszcza/FP16): scaling by 2^112
 * then 2^-110 rounds the mantissa to 10 bits in the float adder, with
 * the exponent bias chosen so that small values round as denormals. */
uint16_t hf_ggml_fp32_to_fp16(float f)
{
	const float scale_to_inf = 0x1.0p+112f;
	const float scale_to_zero = 0x1.0p-110f;
	float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
	const uint32_t w = to_bits(f);
	const uint32_t shl1_w = w + w;
	const uint32_t sign = w & 0x80000000u;
	uint32_t bias = shl1_w & 0xff000000u;

	if (bias < 0x71000000u)
		bias = 0x71000000u;
	base = from_bits((bias >> 1) + 0x07800000u) + base;

	const uint32_t bits = to_bits(base);
	const uint32_t exp_bits = (bits >> 13) & 0x00007c00u;
	const uint32_t mantissa_bits = bits & 0x00000fffu;
	const uint32_t nonsign = exp_bits + mantissa_bits;

	return (uint16_t)((sign >> 16) |
			  (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}

/* ggml_compute_fp16_to_fp32: normals by rebiasing the exponent and a
 * multiply by 2^-112, denormals by a magic-number subtraction. */
float hf_ggml_fp16_to_fp32(uint16_t h)
{
	const uint32_t w = (uint32_t)h << 16;
	const uint32_t sign = w & 0x80000000u;
	const uint32_t two_w = w + w;
	const uint32_t exp_offset = 0xe0u << 23;
	const float exp_scale = 0x1.0p-112f;
	const float normalized = from_bits((two_w >> 4) + exp_offset) * exp_scale;
	const uint32_t magic_mask = 126u << 23;
	const float magic_bias = 0.5f;
	const float denormalized = from_bits((two_w >> 17) | magic_mask) - magic_bias;
	const uint32_t denormalized_cutoff = 1u << 27;

	return from_bits(sign | (two_w < denormalized_cutoff ?
				 to_bits(denormalized) : to_bits(normalized)));
}

/* ggml_compute_fp32_to_bf16: round to nearest even on the bits; a NaN
 * keeps its top 16 bits with the quiet bit set. */
uint16_t hf_ggml_fp32_to_bf16(float f)
{
	const uint32_t u = to_bits(f);

	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 64);
	return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

float hf_ggml_bf16_to_fp32(uint16_t h)
{
	return from_bits((uint32_t)h << 16);
}

static void put_f16(uint8_t *p, float f)
{
	uint16_t h = hf_ggml_fp32_to_fp16(f);

	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(h >> 8);
}

static float get_f16(const uint8_t *p)
{
	return hf_ggml_fp16_to_fp32((uint16_t)(p[0] | p[1] << 8));
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Float to int as ggml's casts compile on x86 (cvttss2si): a value out
 * of int's range, or NaN, gives INT_MIN. Such values come only from
 * non-finite input or a scale whose inverse overflows (a block of
 * subnormals), and the explicit test keeps the cast defined. */
static int to_int(float f)
{
	if (!(f >= -2147483648.0f && f < 2147483648.0f))
		return INT_MIN;
	return (int)f;
}

/* Float to a narrow integer as ggml's casts do on its targets: through
 * int, then its low bits. */
static int8_t to_i8(float f)
{
	return (int8_t)to_int(f);
}

static uint8_t to_u8(float f)
{
	return (uint8_t)to_int(f);
}

/* ---- f32, f16, bf16 --------------------------------------------------- */

static void quantize_f32(const float *x, void *y, int64_t n)
{
	memcpy(y, x, (size_t)n * 4);
}

static void dequantize_f32(const void *x, float *y, int64_t n)
{
	memcpy(y, x, (size_t)n * 4);
}

/* 16-bit rows go through an aligned buffer of host-order halves, which
 * the compiler vectorizes, and are copied (byte-swapped on a big-endian
 * host) to or from the unaligned little-endian row. */
enum { HALF_CHUNK = 256 };

static void put_halves(uint8_t *b, const uint16_t *h, int64_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(b, h, (size_t)n * 2);
#else
	for (int64_t i = 0; i < n; i++) {
		b[2 * i] = (uint8_t)h[i];
		b[2 * i + 1] = (uint8_t)(h[i] >> 8);
	}
#endif
}

static void get_halves(uint16_t *h, const uint8_t *b, int64_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(h, b, (size_t)n * 2);
#else
	for (int64_t i = 0; i < n; i++)
		h[i] = (uint16_t)(b[2 * i] | b[2 * i + 1] << 8);
#endif
}

static void quantize_f16(const float *x, void *y, int64_t n)
{
	uint16_t h[HALF_CHUNK];

	for (int64_t i = 0; i < n; i += HALF_CHUNK) {
		int64_t m = n - i < HALF_CHUNK ? n - i : HALF_CHUNK;

		for (int64_t j = 0; j < m; j++)
			h[j] = hf_ggml_fp32_to_fp16(x[i + j]);
		put_halves((uint8_t *)y + 2 * i, h, m);
	}
}

static void dequantize_f16(const void *x, float *y, int64_t n)
{
	uint16_t h[HALF_CHUNK];

	for (int64_t i = 0; i < n; i += HALF_CHUNK) {
		int64_t m = n - i < HALF_CHUNK ? n - i : HALF_CHUNK;

		get_halves(h, (const uint8_t *)x + 2 * i, m);
		for (int64_t j = 0; j < m; j++)
			y[i + j] = hf_ggml_fp16_to_fp32(h[j]);
	}
}

static void quantize_bf16(const float *x, void *y, int64_t n)
{
	uint16_t h[HALF_CHUNK];

	for (int64_t i = 0; i < n; i += HALF_CHUNK) {
		int64_t m = n - i < HALF_CHUNK ? n - i : HALF_CHUNK;

		for (int64_t j = 0; j < m; j++)
			h[j] = hf_ggml_fp32_to_bf16(x[i + j]);
		put_halves((uint8_t *)y + 2 * i, h, m);
	}
}

static void dequantize_bf16(const void *x, float *y, int64_t n)
{
	uint16_t h[HALF_CHUNK];

	for (int64_t i = 0; i < n; i += HALF_CHUNK) {
		int64_t m = n - i < HALF_CHUNK ? n - i : HALF_CHUNK;

		get_halves(h, (const uint8_t *)x + 2 * i, m);
		for (int64_t j = 0; j < m; j++)
			y[i + j] = hf_ggml_bf16_to_fp32(h[j]);
	}
}

/* ---- 32-element blocks ------------------------------------------------ */

/* Byte layouts of ggml-common.h's block_<t>; every field is bytes, so a
 * block may sit at any address. */
struct blk_q4_0 { uint8_t d[2]; uint8_t qs[16]; };
struct blk_q4_1 { uint8_t d[2]; uint8_t m[2]; uint8_t qs[16]; };
struct blk_q5_0 { uint8_t d[2]; uint8_t qh[4]; uint8_t qs[16]; };
struct blk_q5_1 { uint8_t d[2]; uint8_t m[2]; uint8_t qh[4]; uint8_t qs[16]; };
struct blk_q8_0 { uint8_t d[2]; int8_t qs[32]; };
struct blk_tq1_0 { uint8_t qs[48]; uint8_t qh[4]; uint8_t d[2]; };
struct blk_tq2_0 { uint8_t qs[64]; uint8_t d[2]; };

_Static_assert(sizeof(struct blk_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(struct blk_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(struct blk_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(struct blk_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(struct blk_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(struct blk_tq1_0) == 54, "tq1_0 block");
_Static_assert(sizeof(struct blk_tq2_0) == 66, "tq2_0 block");

/* The element of largest magnitude, signed; the first one on a tie. */
static float signed_absmax(const float *x, int n)
{
	float amax = 0.0f, max = 0.0f;

	for (int j = 0; j < n; j++) {
		if (amax < fabsf(x[j])) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	}
	return max;
}

static void min_max(const float *x, int n, float *min, float *max)
{
	*min = FLT_MAX;
	*max = -FLT_MAX;
	for (int j = 0; j < n; j++) {
		if (x[j] < *min)
			*min = x[j];
		if (x[j] > *max)
			*max = x[j];
	}
}

/* q4_0: d = max / -8 (max the signed absmax), q = min(15, (int8)(x/d +
 * 8.5)); byte j holds element j (low nibble) and j + 16 (high). */
static void quantize_q4_0(const float *x, void *vy, int64_t n)
{
	struct blk_q4_0 *y = vy;

	for (int64_t i = 0; i < n / 32; i++, x += 32) {
		const float d = signed_absmax(x, 32) / -8;
		const float id = d ? 1.0f / d : 0.0f;

		put_f16(y[i].d, d);
		for (int j = 0; j < 16; j++) {
			int8_t q0 = to_i8(x[j] * id + 8.5f);
			int8_t q1 = to_i8(x[j + 16] * id + 8.5f);
			uint8_t l0 = (uint8_t)(q0 < 15 ? q0 : 15);
			uint8_t l1 = (uint8_t)(q1 < 15 ? q1 : 15);

			y[i].qs[j] = (uint8_t)(l0 | l1 << 4);
		}
	}
}

static void dequantize_q4_0(const void *vx, float *y, int64_t n)
{
	const struct blk_q4_0 *x = vx;

	for (int64_t i = 0; i < n / 32; i++, y += 32) {
		const float d = get_f16(x[i].d);

		for (int j = 0; j < 16; j++) {
			y[j] = ((x[i].qs[j] & 0x0f) - 8) * d;
			y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
		}
	}
}

/* q4_1: d = (max - min) / 15, m = min, q = min(15, (int8)((x - min)/d +
 * 0.5)); nibbles as q4_0. */
static void quantize_q4_1(const float *x, void *vy, int64_t n)
{
	struct blk_q4_1 *y = vy;

	for (int64_t i = 0; i < n / 32; i++, x += 32) {
		float min, max;

		min_max(x, 32, &min, &max);

		const float d = (max - min) / 15;
		const float id = d ? 1.0f / d : 0.0f;

		put_f16(y[i].d, d);
		put_f16(y[i].m, min);
		for (int j = 0; j < 16; j++) {
			int8_t q0 = to_i8((x[j] - min) * id + 0.5f);
			int8_t q1 = to_i8((x[j + 16] - min) * id + 0.5f);
			uint8_t l0 = (uint8_t)(q0 < 15 ? q0 : 15);
			uint8_t l1 = (uint8_t)(q1 < 15 ? q1 : 15);

			y[i].qs[j] = (uint8_t)(l0 | l1 << 4);
		}
	}
}

static void dequantize_q4_1(const void *vx, float *y, int64_t n)
{
	const struct blk_q4_1 *x = vx;

	for (int64_t i = 0; i < n / 32; i++, y += 32) {
		const float d = get_f16(x[i].d);
		const float m = get_f16(x[i].m);

		for (int j = 0; j < 16; j++) {
			y[j] = (x[i].qs[j] & 0x0f) * d + m;
			y[j + 16] = (x[i].qs[j] >> 4) * d + m;
		}
	}
}

/* q5_0: d = max / -16, q = min(31, (int8)(x/d + 16.5)); the low nibbles
 * as q4_0, bit 4 of element j in bit j of qh (little-endian u32). */
static void quantize_q5_0(const float *x, void *vy, int64_t n)
{
	struct blk_q5_0 *y = vy;

	for (int64_t i = 0; i < n / 32; i++, x += 32) {
		const float d = signed_absmax(x, 32) / -16;
		const float id = d ? 1.0f / d : 0.0f;
		uint32_t qh = 0;

		put_f16(y[i].d, d);
		for (int j = 0; j < 16; j++) {
			int8_t q0 = to_i8(x[j] * id + 16.5f);
			int8_t q1 = to_i8(x[j + 16] * id + 16.5f);
			uint8_t l0 = (uint8_t)(q0 < 31 ? q0 : 31);
			uint8_t l1 = (uint8_t)(q1 < 31 ? q1 : 31);

			y[i].qs[j] = (uint8_t)((l0 & 0x0f) | (l1 & 0x0f) << 4);
			qh |= (uint32_t)((l0 & 0x10u) >> 4) << j;
			qh |= (uint32_t)((l1 & 0x10u) >> 4) << (j + 16);
		}
		put_u32(y[i].qh, qh);
	}
}

static void dequantize_q5_0(const void *vx, float *y, int64_t n)
{
	const struct blk_q5_0 *x = vx;

	for (int64_t i = 0; i < n / 32; i++, y += 32) {
		const float d = get_f16(x[i].d);
		const uint32_t qh = get_u32(x[i].qh);

		for (int j = 0; j < 16; j++) {
			const int h0 = (qh >> j) << 4 & 0x10;
			const int h1 = (qh >> (j + 12)) & 0x10;

			y[j] = (((x[i].qs[j] & 0x0f) | h0) - 16) * d;
			y[j + 16] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
		}
	}
}

/* q5_1: d = (max - min) / 31, m = min, q = (uint8)((x - min)/d + 0.5);
 * bits as q5_0. */
static void quantize_q5_1(const float *x, void *vy, int64_t n)
{
	struct blk_q5_1 *y = vy;

	for (int64_t i = 0; i < n / 32; i++, x += 32) {
		float min, max;

		min_max(x, 32, &min, &max);

		const float d = (max - min) / 31;
		const float id = d ? 1.0f / d : 0.0f;
		uint32_t qh = 0;

		put_f16(y[i].d, d);
		put_f16(y[i].m, min);
		for (int j = 0; j < 16; j++) {
			uint8_t l0 = to_u8((x[j] - min) * id + 0.5f);
			uint8_t l1 = to_u8((x[j + 16] - min) * id + 0.5f);

			y[i].qs[j] = (uint8_t)((l0 & 0x0f) | (l1 & 0x0f) << 4);
			qh |= (uint32_t)((l0 & 0x10u) >> 4) << j;
			qh |= (uint32_t)((l1 & 0x10u) >> 4) << (j + 16);
		}
		put_u32(y[i].qh, qh);
	}
}

static void dequantize_q5_1(const void *vx, float *y, int64_t n)
{
	const struct blk_q5_1 *x = vx;

	for (int64_t i = 0; i < n / 32; i++, y += 32) {
		const float d = get_f16(x[i].d);
		const float m = get_f16(x[i].m);
		const uint32_t qh = get_u32(x[i].qh);

		for (int j = 0; j < 16; j++) {
			const int h0 = (qh >> j) << 4 & 0x10;
			const int h1 = (qh >> (j + 12)) & 0x10;

			y[j] = ((x[i].qs[j] & 0x0f) | h0) * d + m;
			y[j + 16] = ((x[i].qs[j] >> 4) | h1) * d + m;
		}
	}
}

/* q8_0: d = absmax / 127, q = roundf(x / d) (half away from zero, via
 * the f32 reciprocal as ggml does). */
static void quantize_q8_0(const float *x, void *vy, int64_t n)
{
	struct blk_q8_0 *y = vy;

	for (int64_t i = 0; i < n / 32; i++, x += 32) {
		float amax = 0.0f;

		for (int j = 0; j < 32; j++)
			amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);

		const float d = amax / 127;
		const float id = d ? 1.0f / d : 0.0f;

		put_f16(y[i].d, d);
		for (int j = 0; j < 32; j++)
			y[i].qs[j] = to_i8(roundf(x[j] * id));
	}
}

static void dequantize_q8_0(const void *vx, float *y, int64_t n)
{
	const struct blk_q8_0 *x = vx;

	for (int64_t i = 0; i < n / 32; i++, y += 32) {
		const float d = get_f16(x[i].d);

		for (int j = 0; j < 32; j++)
			y[j] = x[i].qs[j] * d;
	}
}

/* ---- ternary, 256-element blocks ------------------------------------- */

static float absmax(const float *x, int n)
{
	float amax = 0.0f;

	for (int j = 0; j < n; j++)
		amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
	return amax;
}

/* A trit of x: lroundf(x / d) + 1, so -1, 0, 1 -> 0, 1, 2. */
static int trit(float x, float id)
{
	return (int)lroundf(x * id) + 1;
}

/* 5 trits (t0 most significant) in a byte as ceil(v * 256 / 243), so
 * that trit k reads back as ((uint8)(byte * 3^k) * 3) >> 8. */
static uint8_t pack_trits(uint8_t v)
{
	return (uint8_t)(((uint16_t)v * 256 + (243 - 1)) / 243);
}

/* tq1_0: d = absmax; qs[0..31] byte m holds elements m + 32k (k = 0..4),
 * qs[32..47] byte m elements 160 + m + 16k, qh[j] elements 240 + j + 4k
 * (k = 0..3) and a zero fifth trit. */
static void quantize_tq1_0(const float *x, void *vy, int64_t n)
{
	struct blk_tq1_0 *y = vy;

	for (int64_t i = 0; i < n / 256; i++) {
		const float d = absmax(x, 256);
		const float id = d ? 1.0f / d : 0.0f;

		put_f16(y[i].d, d);
		for (int m = 0; m < 32; m++) {
			uint8_t q = 0;

			for (int k = 0; k < 5; k++)
				q = (uint8_t)(q * 3 + trit(x[m + 32 * k], id));
			y[i].qs[m] = pack_trits(q);
		}
		x += 160;
		for (int m = 0; m < 16; m++) {
			uint8_t q = 0;

			for (int k = 0; k < 5; k++)
				q = (uint8_t)(q * 3 + trit(x[m + 16 * k], id));
			y[i].qs[32 + m] = pack_trits(q);
		}
		x += 80;
		for (int j = 0; j < 4; j++) {
			uint8_t q = 0;

			for (int k = 0; k < 4; k++)
				q = (uint8_t)(q * 3 + trit(x[j + 4 * k], id));
			y[i].qh[j] = pack_trits((uint8_t)(q * 3));
		}
		x += 16;
	}
}

static float untrit(uint8_t byte, int k, float d)
{
	static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
	const uint8_t q = (uint8_t)(byte * pow3[k]);
	const int16_t t = (int16_t)(((uint16_t)q * 3) >> 8);

	return (float)(t - 1) * d;
}

static void dequantize_tq1_0(const void *vx, float *y, int64_t n)
{
	const struct blk_tq1_0 *x = vx;

	for (int64_t i = 0; i < n / 256; i++) {
		const float d = get_f16(x[i].d);

		for (int k = 0; k < 5; k++)
			for (int m = 0; m < 32; m++)
				*y++ = untrit(x[i].qs[m], k, d);
		for (int k = 0; k < 5; k++)
			for (int m = 0; m < 16; m++)
				*y++ = untrit(x[i].qs[32 + m], k, d);
		for (int k = 0; k < 4; k++)
			for (int j = 0; j < 4; j++)
				*y++ = untrit(x[i].qh[j], k, d);
	}
}

/* tq2_0: d = absmax; in each 32-byte group byte m holds elements m +
 * 32k at bits 2k (k = 0..3), as trit + 1 in 2 bits. */
static void quantize_tq2_0(const float *x, void *vy, int64_t n)
{
	struct blk_tq2_0 *y = vy;

	for (int64_t i = 0; i < n / 256; i++) {
		const float d = absmax(x, 256);
		const float id = d ? 1.0f / d : 0.0f;

		put_f16(y[i].d, d);
		for (int g = 0; g < 64; g += 32, x += 128) {
			for (int m = 0; m < 32; m++) {
				uint8_t q = 0;

				for (int k = 0; k < 4; k++)
					q = (uint8_t)(q + ((trit(x[m + 32 * k], id) & 3) << 2 * k));
				y[i].qs[g + m] = q;
			}
		}
	}
}

static void dequantize_tq2_0(const void *vx, float *y, int64_t n)
{
	const struct blk_tq2_0 *x = vx;

	for (int64_t i = 0; i < n / 256; i++) {
		const float d = get_f16(x[i].d);

		for (int g = 0; g < 64; g += 32)
			for (int k = 0; k < 4; k++)
				for (int m = 0; m < 32; m++)
					*y++ = (float)(((x[i].qs[g + m] >> 2 * k) & 3) - 1) * d;
	}
}

/* ---- the table -------------------------------------------------------- */

#define T(id, nm, b, sz, q, dq) [id] = { nm, b, sz, q, dq }

static const struct hf_ggml_traits table[HF_GGML_NTYPES] = {
	T(HF_GGML_F32, "f32", 1, 4, quantize_f32, dequantize_f32),
	T(HF_GGML_F16, "f16", 1, 2, quantize_f16, dequantize_f16),
	T(HF_GGML_Q4_0, "q4_0", 32, 18, quantize_q4_0, dequantize_q4_0),
	T(HF_GGML_Q4_1, "q4_1", 32, 20, quantize_q4_1, dequantize_q4_1),
	T(HF_GGML_Q5_0, "q5_0", 32, 22, quantize_q5_0, dequantize_q5_0),
	T(HF_GGML_Q5_1, "q5_1", 32, 24, quantize_q5_1, dequantize_q5_1),
	T(HF_GGML_Q8_0, "q8_0", 32, 34, quantize_q8_0, dequantize_q8_0),
	T(HF_GGML_Q2_K, "q2_K", 256, 84, hf_ggml_quantize_q2_K, hf_ggml_dequantize_q2_K),
	T(HF_GGML_Q3_K, "q3_K", 256, 110, hf_ggml_quantize_q3_K, hf_ggml_dequantize_q3_K),
	T(HF_GGML_Q4_K, "q4_K", 256, 144, hf_ggml_quantize_q4_K, hf_ggml_dequantize_q4_K),
	T(HF_GGML_Q5_K, "q5_K", 256, 176, hf_ggml_quantize_q5_K, hf_ggml_dequantize_q5_K),
	T(HF_GGML_Q6_K, "q6_K", 256, 210, hf_ggml_quantize_q6_K, hf_ggml_dequantize_q6_K),
	T(HF_GGML_BF16, "bf16", 1, 2, quantize_bf16, dequantize_bf16),
	T(HF_GGML_TQ1_0, "tq1_0", 256, 54, quantize_tq1_0, dequantize_tq1_0),
	T(HF_GGML_TQ2_0, "tq2_0", 256, 66, quantize_tq2_0, dequantize_tq2_0),
};

#undef T

const struct hf_ggml_traits *hf_ggml_traits(int type)
{
	if (type < 0 || type >= HF_GGML_NTYPES || !table[type].name)
		return NULL;
	return &table[type];
}

int hf_ggml_type_from_name(const char *name)
{
	if (!name)
		return -1;
	for (int t = 0; t < HF_GGML_NTYPES; t++) {
		const char *a = table[t].name, *b = name;

		if (!a)
			continue;
		while (*a && tolower((unsigned char)*a) == tolower((unsigned char)*b))
			a++, b++;
		if (!*a && !*b)
			return t;
	}
	return -1;
}

struct quantize_job {
	const struct hf_ggml_traits *tr;
	const float *x;
	uint8_t *y;
	int64_t nblocks;
};

static void quantize_share(void *ctx, int ith, int nth)
{
	const struct quantize_job *j = ctx;
	size_t b, e;

	hf_pool_split((size_t)j->nblocks, ith, nth, &b, &e);
	if (e > b)
		j->tr->quantize(j->x + b * j->tr->blck, j->y + b * j->tr->bytes,
				(int64_t)(e - b) * j->tr->blck);
}

void hf_ggml_quantize_pool(const struct hf_ggml_traits *tr, const float *x,
			   void *y, int64_t n, struct hf_pool *pool)
{
	struct quantize_job j = { tr, x, y, n / tr->blck };

	hf_pool_run(pool, quantize_share, &j);
}

size_t hf_ggml_row_size(int type, int64_t n)
{
	const struct hf_ggml_traits *tr = hf_ggml_traits(type);

	if (!tr || n < 0 || n % tr->blck)
		return 0;
	return (size_t)(n / tr->blck) * tr->bytes;
}
