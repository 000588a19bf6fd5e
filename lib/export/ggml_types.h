/* lib/export/ggml_types.h: ggml's tensor types as GGUF stores them: block
 * sizes, row sizes, and the reference quantizers and dequantizers, bit for
 * bit what ggml's quantize_row_*_ref / dequantize_row_* (no importance
 * matrix) produce, so a GGUF we write holds the bytes llama-quantize would
 * write from the same f32 data. */
#ifndef HF_EXPORT_GGML_TYPES_H
#define HF_EXPORT_GGML_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* enum ggml_type's values, as they appear in a GGUF tensor info. */
enum hf_ggml_type {
	HF_GGML_F32 = 0,
	HF_GGML_F16 = 1,
	HF_GGML_Q4_0 = 2,
	HF_GGML_Q4_1 = 3,
	HF_GGML_Q5_0 = 6,
	HF_GGML_Q5_1 = 7,
	HF_GGML_Q8_0 = 8,
	HF_GGML_Q8_1 = 9,
	HF_GGML_Q2_K = 10,
	HF_GGML_Q3_K = 11,
	HF_GGML_Q4_K = 12,
	HF_GGML_Q5_K = 13,
	HF_GGML_Q6_K = 14,
	HF_GGML_Q8_K = 15,
	HF_GGML_BF16 = 30,
	HF_GGML_TQ1_0 = 34,
	HF_GGML_TQ2_0 = 35,
	HF_GGML_NTYPES = 40
};

/* One row per type hf knows; NULL from hf_ggml_traits() for any other. */
struct hf_ggml_traits {
	const char *name;	/* ggml's: "f32", "q4_0", "q4_K", "tq1_0" */
	int64_t blck;		/* elements a block (1 for f32/f16/bf16) */
	size_t bytes;		/* bytes a block */
	/* n elements (a multiple of blck) to n / blck blocks and back.
	 * Never NULL. y needs no alignment: blocks are read and written
	 * byte by byte, little-endian, as GGUF stores them. Non-finite
	 * input gives unspecified codes (as in ggml), never a fault. */
	void (*quantize)(const float *x, void *y, int64_t n);
	void (*dequantize)(const void *x, float *y, int64_t n);
};

const struct hf_ggml_traits *hf_ggml_traits(int type);

/* By name ("q4_K", case-insensitive; "q4_k_m" is not a type): -1 if none. */
int hf_ggml_type_from_name(const char *name);

/* Bytes of a row of n elements; 0 if n is not a multiple of the block
 * or the type is unknown. */
size_t hf_ggml_row_size(int type, int64_t n);

struct hf_pool;

/* tr->quantize(x, y, n) with the blocks shared out over pool's threads
 * (NULL: this thread), the same bytes as one call: blocks are
 * independent. For the K-quants' slow scale searches (a few million
 * elements a second a thread). */
void hf_ggml_quantize_pool(const struct hf_ggml_traits *tr, const float *x,
			   void *y, int64_t n, struct hf_pool *pool);

/* ggml's scalar conversions (ggml-impl.h), bit for bit. f32 -> f16
 * rounds to nearest even, overflows to inf, and makes every NaN 0x7e00
 * with its sign; f16 -> f32 is exact (a NaN comes out quiet). f32 ->
 * bf16 rounds to nearest even and makes a NaN quiet keeping its top
 * payload bits; bf16 -> f32 is exact. */
uint16_t hf_ggml_fp32_to_fp16(float f);
float hf_ggml_fp16_to_fp32(uint16_t h);
uint16_t hf_ggml_fp32_to_bf16(float f);
float hf_ggml_bf16_to_fp32(uint16_t h);

/* The K-quants (lib/export/ggml_kquants.c), reached through
 * hf_ggml_traits(); named here for ggml_types.c's table. */
void hf_ggml_quantize_q2_K(const float *x, void *y, int64_t n);
void hf_ggml_dequantize_q2_K(const void *x, float *y, int64_t n);
void hf_ggml_quantize_q3_K(const float *x, void *y, int64_t n);
void hf_ggml_dequantize_q3_K(const void *x, float *y, int64_t n);
void hf_ggml_quantize_q4_K(const float *x, void *y, int64_t n);
void hf_ggml_dequantize_q4_K(const void *x, float *y, int64_t n);
void hf_ggml_quantize_q5_K(const float *x, void *y, int64_t n);
void hf_ggml_dequantize_q5_K(const void *x, float *y, int64_t n);
void hf_ggml_quantize_q6_K(const float *x, void *y, int64_t n);
void hf_ggml_dequantize_q6_K(const void *x, float *y, int64_t n);

#endif
