/* lib/export/gguf.h: a GGUF v3 writer (docs/onnx-gguf-export.md, B1):
 * metadata of every value type (arrays of strings included), tensor
 * infos, general.alignment, and a data section whose tensors are
 * produced while the file is written, so that no model needs to exist in
 * memory whole. The value type codes are gguf_read.h's enum hf_gguf_type. */
#ifndef HF_EXPORT_GGUF_H
#define HF_EXPORT_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "export/gguf_read.h"

#define HF_GGUF_VERSION 3

struct hf_gguf_writer;	/* opaque */
struct hf_gguf_sink;	/* where a tensor's bytes go, while writing */

/* Produce the nbytes of a tensor by hf_gguf_sink_write() calls, in order,
 * in pieces of any size; return 0 or an HF_E* code after filling err.
 * Writing fewer or more bytes than the tensor's size is an error. */
typedef int (*hf_gguf_fill_fn)(void *ctx, struct hf_gguf_sink *s,
			       struct hf_err *err);

int hf_gguf_sink_write(struct hf_gguf_sink *s, const void *buf, size_t len,
		       struct hf_err *err);

/* A writer with general.alignment = 32 set as its first key. */
int hf_gguf_writer_new(struct hf_gguf_writer **out, struct hf_err *err);
void hf_gguf_writer_free(struct hf_gguf_writer *w);	/* NULL is fine */

/* Metadata. Keys are copied; setting a key again replaces its value in
 * place (its position in the file stays). Keys must be non-empty. */
int hf_gguf_set_u8(struct hf_gguf_writer *w, const char *key, uint8_t v,
		   struct hf_err *err);
int hf_gguf_set_i8(struct hf_gguf_writer *w, const char *key, int8_t v,
		   struct hf_err *err);
int hf_gguf_set_u16(struct hf_gguf_writer *w, const char *key, uint16_t v,
		    struct hf_err *err);
int hf_gguf_set_i16(struct hf_gguf_writer *w, const char *key, int16_t v,
		    struct hf_err *err);
int hf_gguf_set_u32(struct hf_gguf_writer *w, const char *key, uint32_t v,
		    struct hf_err *err);
int hf_gguf_set_i32(struct hf_gguf_writer *w, const char *key, int32_t v,
		    struct hf_err *err);
int hf_gguf_set_f32(struct hf_gguf_writer *w, const char *key, float v,
		    struct hf_err *err);
int hf_gguf_set_bool(struct hf_gguf_writer *w, const char *key, int v,
		     struct hf_err *err);
int hf_gguf_set_u64(struct hf_gguf_writer *w, const char *key, uint64_t v,
		    struct hf_err *err);
int hf_gguf_set_i64(struct hf_gguf_writer *w, const char *key, int64_t v,
		    struct hf_err *err);
int hf_gguf_set_f64(struct hf_gguf_writer *w, const char *key, double v,
		    struct hf_err *err);
/* len bytes of s (any bytes; GGUF strings are not NUL-terminated). */
int hf_gguf_set_str(struct hf_gguf_writer *w, const char *key,
		    const char *s, size_t len, struct hf_err *err);
/* n numeric elements of type elem (not STRING or ARRAY) in host order at
 * data: an array of 1, 2, 4 or 8 byte values (BOOL: 1 byte each). */
int hf_gguf_set_arr(struct hf_gguf_writer *w, const char *key,
		    enum hf_gguf_type elem, const void *data, size_t n,
		    struct hf_err *err);
/* n strings: strs[i] of lens[i] bytes (lens NULL: strlen). */
int hf_gguf_set_arr_str(struct hf_gguf_writer *w, const char *key,
			const char *const *strs, const size_t *lens, size_t n,
			struct hf_err *err);

/* Whether key is set. */
int hf_gguf_has(const struct hf_gguf_writer *w, const char *key);

/* A tensor of n_dims (1..4) dimensions ne (ne[0] innermost) of ggml type
 * `type` (ggml_types.h); ne[0] must be a multiple of the type's block.
 * Its bytes come from fill(ctx) when the file is written, in the order
 * tensors were added. Names (copied) are unique, 1..63 bytes. */
int hf_gguf_add_tensor(struct hf_gguf_writer *w, const char *name,
		       int n_dims, const int64_t *ne, int type,
		       hf_gguf_fill_fn fill, void *ctx, struct hf_err *err);

size_t hf_gguf_writer_tensor_count(const struct hf_gguf_writer *w);
size_t hf_gguf_writer_kv_count(const struct hf_gguf_writer *w);
/* Bytes of tensor data (padded) and of the whole file. */
uint64_t hf_gguf_writer_data_size(const struct hf_gguf_writer *w);
uint64_t hf_gguf_writer_size(const struct hf_gguf_writer *w);

/* Write the file to path ("-": stdout) through "<path>.tmp.<pid>"
 * renamed into place only when complete (removed on failure). Never
 * seeks, so stdout may be a pipe. */
int hf_gguf_write(struct hf_gguf_writer *w, const char *path,
		  struct hf_err *err);
/* Write to an open stream (name in errors); does not flush or close. */
int hf_gguf_write_stream(struct hf_gguf_writer *w, FILE *f,
			 const char *name, struct hf_err *err);

#endif
