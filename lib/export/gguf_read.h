/* lib/export/gguf_read.h: a strict reader of GGUF v2 and v3 files
 * (docs/onnx-gguf-export.md, B1): every key-value pair, nested arrays
 * included, and every tensor info, checked against the file before any
 * of it is used. The file is mapped, nothing is copied but the names. */
#ifndef HF_EXPORT_GGUF_READ_H
#define HF_EXPORT_GGUF_READ_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define HF_GGUF_MAGIC 0x46554747u	/* "GGUF" as bytes 47 47 55 46 */
#define HF_GGUF_MAX_DIMS 4		/* GGML_MAX_DIMS */
#define HF_GGUF_MAX_NAME 63		/* GGML_MAX_NAME - 1 bytes */
#define HF_GGUF_DEFAULT_ALIGNMENT 32
#define HF_GGUF_MAX_DEPTH 8		/* arrays of arrays, at most */

/* Metadata value types (enum gguf_type). */
enum hf_gguf_type {
	HF_GGUF_U8 = 0,
	HF_GGUF_I8 = 1,
	HF_GGUF_U16 = 2,
	HF_GGUF_I16 = 3,
	HF_GGUF_U32 = 4,
	HF_GGUF_I32 = 5,
	HF_GGUF_F32 = 6,
	HF_GGUF_BOOL = 7,
	HF_GGUF_STRING = 8,
	HF_GGUF_ARRAY = 9,
	HF_GGUF_U64 = 10,
	HF_GGUF_I64 = 11,
	HF_GGUF_F64 = 12,
	HF_GGUF_NTYPES
};

/* One value. Scalars: u (unsigned types and BOOL, 0 or the byte), i
 * (signed types), f (F32 widened, F64). STRING: len bytes at str, in the
 * mapping and not NUL-terminated (may hold any bytes). ARRAY: n elements
 * of type elem; numeric ones packed little-endian at raw (unaligned: read
 * them with hf_gguf_arr_int / hf_gguf_arr_float), STRING and ARRAY ones
 * as n values at items. */
struct hf_gguf_value {
	enum hf_gguf_type type;
	uint64_t u;
	int64_t i;
	double f;
	const char *str;
	size_t len;
	enum hf_gguf_type elem;
	uint64_t n;
	const unsigned char *raw;
	const struct hf_gguf_value *items;
};

struct hf_gguf_kv {
	const char *key;	/* NUL-terminated copy */
	struct hf_gguf_value val;
};

/* A tensor as the file describes it; ne[0] is the innermost
 * (contiguous) dimension, dims past n_dims are 1. data points into the
 * mapping (aligned as the file aligns it) and is NULL when nbytes is 0. */
struct hf_gguf_tensor {
	const char *name;	/* NUL-terminated copy, at most 63 bytes */
	int type;		/* enum ggml_type (ggml_types.h) */
	int n_dims;
	int64_t ne[HF_GGUF_MAX_DIMS];
	uint64_t offset;	/* from the start of the data section */
	const void *data;
	size_t nbytes;
};

struct hf_gguf;	/* opaque */

/* Map path and validate all of it: magic, version 2 or 3, counts, every
 * key (non-empty, unique) and value, tensor names (unique, at most 63
 * bytes), types, dimensions, sizes, alignment and offsets (aligned, in
 * the file, not overlapping). Any fault is HF_EFORMAT with a message
 * naming the file and what is wrong; no allocation is larger than the
 * file justifies. */
int hf_gguf_open(struct hf_gguf **out, const char *path, struct hf_err *err);

/* The same over len bytes at buf (borrowed: must outlive *out); name is
 * used in errors. */
int hf_gguf_open_buf(struct hf_gguf **out, const void *buf, size_t len,
		     const char *name, struct hf_err *err);

void hf_gguf_free(struct hf_gguf *g);	/* NULL is fine */

/* Everything below is borrowed until hf_gguf_free(). */
const char *hf_gguf_path(const struct hf_gguf *g);
uint32_t hf_gguf_version(const struct hf_gguf *g);
size_t hf_gguf_alignment(const struct hf_gguf *g);
/* Byte offset of the data section in the file. */
size_t hf_gguf_data_offset(const struct hf_gguf *g);

/* Pairs in file order; lookup by key (NULL if absent). */
size_t hf_gguf_kv_count(const struct hf_gguf *g);
const struct hf_gguf_kv *hf_gguf_kv(const struct hf_gguf *g, size_t i);
const struct hf_gguf_value *hf_gguf_get(const struct hf_gguf *g,
					const char *key);

/* Tensors in file order; lookup by name (NULL if absent). */
size_t hf_gguf_tensor_count(const struct hf_gguf *g);
const struct hf_gguf_tensor *hf_gguf_tensor(const struct hf_gguf *g,
					    size_t i);
const struct hf_gguf_tensor *hf_gguf_find_tensor(const struct hf_gguf *g,
						 const char *name);

/* Typed lookups of key. Absent: *out = def, return 0. Present with a type
 * that does not fit: HF_EFORMAT naming the file, key and type.
 * _uint takes any integer type holding a value >= 0; _int any integer
 * type that fits int64_t; _float F32, F64 or an integer; _bool BOOL;
 * _str STRING (absent: *s = NULL, *len = 0). */
int hf_gguf_get_uint(const struct hf_gguf *g, const char *key, uint64_t def,
		     uint64_t *out, struct hf_err *err);
int hf_gguf_get_int(const struct hf_gguf *g, const char *key, int64_t def,
		    int64_t *out, struct hf_err *err);
int hf_gguf_get_float(const struct hf_gguf *g, const char *key, double def,
		      double *out, struct hf_err *err);
int hf_gguf_get_bool(const struct hf_gguf *g, const char *key, int def,
		     int *out, struct hf_err *err);
int hf_gguf_get_str(const struct hf_gguf *g, const char *key,
		    const char **s, size_t *len, struct hf_err *err);

/* Element i (< v->n) of a numeric array v: as an integer (floats
 * truncated) or as a double. */
int64_t hf_gguf_arr_int(const struct hf_gguf_value *v, uint64_t i);
double hf_gguf_arr_float(const struct hf_gguf_value *v, uint64_t i);

/* "u32", "string", "array"...; "?" for an unknown code. */
const char *hf_gguf_type_name(int type);

/* ggml's name of a tensor type ("f32", "q4_K", "iq2_xxs") and its block
 * (elements, bytes) for every type a GGUF file may hold, including those
 * hf cannot dequantize; NULL / 0 for a code ggml does not define. */
const char *hf_gguf_ggml_type_name(int type);
int hf_gguf_ggml_block(int type, int64_t *elems, size_t *bytes);

#endif
