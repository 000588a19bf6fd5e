/* lib/st/st.h: read safetensors files without copying them, one file or
 * a whole (sharded) model, and write them as a stream. */
#ifndef HF_ST_ST_H
#define HF_ST_ST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "tensor/dtype.h"

#define HF_TENSOR_MAX_DIMS 8
/* The reference reader's MAX_HEADER_SIZE. */
#define HF_ST_MAX_HEADER 100000000u

/* A view of one tensor of a mapped file. data points into the mapping
 * (zero-copy; aligned only if the writer aligned it) and is NULL when
 * nbytes is 0; every field is borrowed from the file it came from. */
struct hf_tensor {
	const char *name;
	enum hf_dtype dtype;
	int ndim;
	int64_t shape[HF_TENSOR_MAX_DIMS];
	const void *data;
	size_t nbytes;
};

/* Elements in t (product of the shape; 1 for a scalar). */
uint64_t hf_tensor_numel(const struct hf_tensor *t);

/* "[2, 3]": a shape of ndim dims as errors quote it, into buf (cap). */
void hf_shape_str(char *buf, size_t cap, const int64_t *shape, int ndim);

/* ---- one file ---- */

struct hf_st;	/* opaque */

/* Map path read-only and validate it as strictly as the reference reader
 * (docs/safetensors.md, s. 4); on success *out owns the mapping. */
int hf_st_open(struct hf_st **out, const char *path, struct hf_err *err);

/* Validate a file already in memory (len bytes at buf, not copied: buf
 * must outlive *out); name is used in errors. */
int hf_st_open_buf(struct hf_st **out, const void *buf, size_t len,
		   const char *name, struct hf_err *err);

void hf_st_free(struct hf_st *st);	/* NULL is fine */

/* The path or name given to open; valid until hf_st_free(). */
const char *hf_st_path(const struct hf_st *st);

/* Number of tensors and the i-th in file order (by data offset; empty
 * tensors at one offset keep their header order). */
size_t hf_st_count(const struct hf_st *st);
const struct hf_tensor *hf_st_tensor(const struct hf_st *st, size_t i);

/* Borrowed, valid until hf_st_free(); NULL if absent. */
const struct hf_tensor *hf_st_get(const struct hf_st *st, const char *name);

/* __metadata__: number of entries and the i-th key and value, sorted by
 * key; borrowed until hf_st_free(). hf_st_meta_get returns NULL if key is
 * absent. */
size_t hf_st_meta_count(const struct hf_st *st);
void hf_st_meta(const struct hf_st *st, size_t i, const char **key,
		const char **value);
const char *hf_st_meta_get(const struct hf_st *st, const char *key);

/* The whole mapped file, the header length N and the data section
 * offset (8 + N). */
const void *hf_st_base(const struct hf_st *st);
size_t hf_st_size(const struct hf_st *st);
size_t hf_st_header_len(const struct hf_st *st);

/* ---- a model: one file, or shards under an index ---- */

struct hf_st_model;	/* opaque */

/* path is a directory holding model.safetensors or
 * model.safetensors.index.json and its shards, an index file, or one
 * .safetensors file, or "-": one file read whole from standard input
 * (copied, as a pipe cannot be mapped). All tensors appear in one name
 * space: a name in two
 * shards, or a weight_map entry whose shard lacks the tensor, is an
 * error naming both. */
int hf_st_open_dir(struct hf_st_model **out, const char *path,
		   struct hf_err *err);
void hf_st_model_free(struct hf_st_model *m);	/* NULL is fine */

/* Tensors of all files, shard by shard in index order, each in file
 * order; borrowed until hf_st_model_free(). */
size_t hf_st_model_count(const struct hf_st_model *m);
const struct hf_tensor *hf_st_model_tensor(const struct hf_st_model *m,
					   size_t i);
const struct hf_tensor *hf_st_model_get(const struct hf_st_model *m,
					const char *name);
/* The file that holds tensor t (one returned by this model). */
const struct hf_st *hf_st_model_file_of(const struct hf_st_model *m,
					const struct hf_tensor *t);

/* The files, in the order of the index's sorted shard names. */
size_t hf_st_model_nfiles(const struct hf_st_model *m);
const struct hf_st *hf_st_model_file(const struct hf_st_model *m, size_t i);
/* The index path, or NULL for a single file. */
const char *hf_st_model_index(const struct hf_st_model *m);

/* ---- writing ---- */

struct hf_st_writer;	/* opaque */

/* Fill buf with len bytes of a tensor's data starting at byte off;
 * return 0 or an HF_E* code after filling err. */
typedef int (*hf_st_fill_fn)(void *ctx, void *buf, size_t off, size_t len,
			     struct hf_err *err);

int hf_st_writer_new(struct hf_st_writer **out, struct hf_err *err);
void hf_st_writer_free(struct hf_st_writer *w);	/* NULL is fine */

/* Add a __metadata__ entry (copied). "format": "pt" is there from the
 * start; setting a key again replaces its value, value NULL removes it
 * (with no entries left, the header has no __metadata__). */
int hf_st_writer_meta(struct hf_st_writer *w, const char *key,
		      const char *value, struct hf_err *err);

/* Add a tensor whose numel * bits / 8 bytes are at data (borrowed: they
 * must stay valid until the write ends). The name is copied; a name given
 * twice is an error, and so (when writing) are two tensors whose bytes
 * overlap in memory, as the reference's save_file refuses shared storage. */
int hf_st_writer_add(struct hf_st_writer *w, const char *name,
		     enum hf_dtype dtype, int ndim, const int64_t *shape,
		     const void *data, struct hf_err *err);

/* Same, with the data produced while writing by fill(ctx, ...), in
 * chunks, so no tensor needs to exist in memory whole. */
int hf_st_writer_add_fn(struct hf_st_writer *w, const char *name,
			enum hf_dtype dtype, int ndim, const int64_t *shape,
			hf_st_fill_fn fill, void *ctx, struct hf_err *err);

/* Write the file to path ("-": stdout) through a temporary name renamed
 * into place only when complete. The layout is the reference writer's:
 * tensors by descending dtype alignment then name, offsets contiguous,
 * compact header with __metadata__ first, padded with spaces to a
 * multiple of 8. Never seeks, so stdout may be a pipe. */
int hf_st_writer_write(struct hf_st_writer *w, const char *path,
		       struct hf_err *err);

/* Write to an open stream (name is used in errors); does not flush. */
int hf_st_writer_write_stream(struct hf_st_writer *w, FILE *f,
			      const char *name, struct hf_err *err);

/* Size of the file the writer would produce, in bytes. */
uint64_t hf_st_writer_size(struct hf_st_writer *w);

#endif
