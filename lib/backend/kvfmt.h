/* lib/backend/kvfmt.h: the element types a decoder's KV cache can hold.
 * A cache column (one token of one batch row) is width = kv_heads *
 * head_dim values, stored one after another in the chosen type:
 *   f32, f16, bf16: the values, each converted (round to nearest even);
 *   int8: groups of g values, each a float32 scale s then g int8 q with
 *         x ~ s * q, s = max|x| / 127;
 *   q4:   groups of g values, each a float32 scale s, a float32 minimum
 *         m, then g / 2 bytes of 4-bit q (low nibble first) with
 *         x ~ m + s * q, s = (max x - m) / 15.
 * g is 32 where head_dim is a multiple of 32, else head_dim, so a group
 * never spans two heads and a head's slice of a column is whole groups
 * (head_dim a multiple of 4 for int8, of 8 for q4).
 * Rounding is to nearest, ties to even, of x * (1 / s) (q4: of
 * (x - m) * (1 / s)). */
#ifndef HF_BACKEND_KVFMT_H
#define HF_BACKEND_KVFMT_H

#include <stddef.h>
#include <stdint.h>

enum hf_kv_type {
	HF_KV_F32,
	HF_KV_F16,
	HF_KV_BF16,
	HF_KV_INT8,
	HF_KV_Q4,
	HF_KV_COUNT
};

/* "f32", "f16", "bf16", "int8", "q4"; parse gives -1 for anything else. */
const char *hf_kv_type_name(int t);
int hf_kv_type_parse(const char *s);

/* Values a scale covers (1 for the float types). */
size_t hf_kv_group(int t, size_t head_dim);
/* 0 if head_dim cannot be stored as t (int8: head_dim % 4 != 0, q4:
 * head_dim % 8 != 0, so that groups stay whole 4-byte words). */
int hf_kv_fits(int t, size_t head_dim);
/* Bytes of n values starting at a group boundary (n whole groups). */
size_t hf_kv_bytes(int t, size_t n, size_t head_dim);

/* Store n values x (whole groups) at dst. */
void hf_kv_store(int t, void *dst, const float *x, size_t n,
		 size_t head_dim);
/* Load n values (whole groups) stored at src into y. */
void hf_kv_load(int t, float *y, const void *src, size_t n,
		size_t head_dim);

#endif
