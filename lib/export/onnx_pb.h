/* lib/export/onnx_pb.h: the ONNX protobuf written by hand (proto2 wire
 * format: varints, length-delimited fields, nested messages), and a model
 * builder on top of it: nodes, initializers, typed graph inputs and
 * outputs with symbolic dims, opset imports, external data.
 * Field numbers: onnx/onnx onnx/onnx.in.proto (docs/onnx-gguf-export.md A3). */
#ifndef HF_EXPORT_ONNX_PB_H
#define HF_EXPORT_ONNX_PB_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* ---- wire format ---- */

enum { HF_PB_VARINT = 0, HF_PB_I64 = 1, HF_PB_LEN = 2, HF_PB_I32 = 5 };

/* A growable byte buffer; an allocation failure sets oom and later
 * appends do nothing, so a sequence of appends is checked once. */
struct hf_pb {
	uint8_t *p;
	size_t len, cap;
	int oom;
};

void hf_pb_free(struct hf_pb *b);	/* frees p, zeroes b */
size_t hf_pb_varint_len(uint64_t v);	/* bytes of v as a varint */
void hf_pb_raw(struct hf_pb *b, const void *p, size_t n);
void hf_pb_varint(struct hf_pb *b, uint64_t v);
void hf_pb_key(struct hf_pb *b, unsigned field, unsigned wire);
/* int32/int64/enum/bool: negative values as 10-byte varints, as protobuf
 * writes them. */
void hf_pb_int(struct hf_pb *b, unsigned field, int64_t v);
void hf_pb_float(struct hf_pb *b, unsigned field, float v);
void hf_pb_bytes(struct hf_pb *b, unsigned field, const void *p, size_t n);
void hf_pb_str(struct hf_pb *b, unsigned field, const char *s);
/* A sub-message: the bytes of sub, length-prefixed. */
void hf_pb_msg(struct hf_pb *b, unsigned field, const struct hf_pb *sub);
void hf_pb_packed_int(struct hf_pb *b, unsigned field, const int64_t *v,
		      size_t n);
void hf_pb_packed_float(struct hf_pb *b, unsigned field, const float *v,
			size_t n);

/* ---- ONNX ---- */

/* TensorProto.DataType */
enum hf_onnx_type {
	HF_ONNX_FLOAT = 1,
	HF_ONNX_UINT8 = 2,
	HF_ONNX_INT8 = 3,
	HF_ONNX_INT32 = 6,
	HF_ONNX_INT64 = 7,
	HF_ONNX_BOOL = 9,
	HF_ONNX_FLOAT16 = 10,
};

/* Bytes per element of t (1 for BOOL), 0 if hf does not write t. */
size_t hf_onnx_type_size(int t);

/* AttributeProto.AttributeType */
enum hf_onnx_attr_type {
	HF_ONNX_ATTR_FLOAT = 1,
	HF_ONNX_ATTR_INT = 2,
	HF_ONNX_ATTR_STRING = 3,
	HF_ONNX_ATTR_TENSOR = 4,
	HF_ONNX_ATTR_FLOATS = 6,
	HF_ONNX_ATTR_INTS = 7,
};

/* A small tensor value: Constant's "value", ConstantOfShape's. */
struct hf_onnx_tensor {
	int type;			/* enum hf_onnx_type */
	int ndim;
	const int64_t *dims;
	const void *data;		/* numel * size bytes, little-endian */
};

struct hf_onnx_attr {
	const char *name;
	int type;			/* enum hf_onnx_attr_type */
	float f;
	int64_t i;
	const char *s;
	const int64_t *ints;		/* INTS: n of them */
	const float *floats;		/* FLOATS: n of them */
	size_t n;
	const struct hf_onnx_tensor *t;
};

/* A graph input or output dim: param NULL for a fixed size v, else a
 * symbolic name ("batch_size"). */
struct hf_onnx_dim {
	int64_t v;
	const char *param;
};

struct hf_onnx;	/* opaque: a model being built */

/* A model whose graph is called name, with no opset imports yet. */
int hf_onnx_new(struct hf_onnx **out, const char *name, struct hf_err *err);
void hf_onnx_free(struct hf_onnx *o);	/* NULL is fine */

/* The builder calls below return 0, or -1 after an allocation failure
 * or a bad argument, which hf_onnx_write() then reports: a graph can be
 * built without checking each call. */

/* Import domain ("" = ai.onnx, "com.microsoft") at version. */
int hf_onnx_opset(struct hf_onnx *o, const char *domain, int64_t version);
/* A metadata_props entry. */
int hf_onnx_meta(struct hf_onnx *o, const char *key, const char *value);

int hf_onnx_input(struct hf_onnx *o, const char *name, int type, int ndim,
		  const struct hf_onnx_dim *dims);
int hf_onnx_output(struct hf_onnx *o, const char *name, int type, int ndim,
		   const struct hf_onnx_dim *dims);

/* An initializer; the nbytes at data are copied (nbytes must be numel
 * times the element size). */
int hf_onnx_init(struct hf_onnx *o, const char *name, int type, int ndim,
		 const int64_t *dims, const void *data, size_t nbytes);
/* Same, taking ownership of data, a malloc'd block (freed by the model,
 * or here on failure): no copy of a large weight. */
int hf_onnx_init_own(struct hf_onnx *o, const char *name, int type, int ndim,
		     const int64_t *dims, void *data, size_t nbytes);

/* A node, appended in order: the caller adds them topologically sorted.
 * domain NULL or "" is ai.onnx; name NULL gets "n<index>"; an input ""
 * is an omitted optional input. */
int hf_onnx_node(struct hf_onnx *o, const char *op, const char *domain,
		 const char *name, const char *const *in, size_t nin,
		 const char *const *out, size_t nout,
		 const struct hf_onnx_attr *attrs, size_t nattr);

/* Counts, for tests and logs. */
size_t hf_onnx_node_count(const struct hf_onnx *o);
uint64_t hf_onnx_init_bytes(const struct hf_onnx *o);

/* Initializers of at least this many bytes go to the side file when
 * data is external (as onnx's convert_model_to_external_data). */
#define HF_ONNX_EXT_MIN 1024
/* Past this many bytes of initializers the data is external whatever
 * the caller asks: a protobuf message cannot reach 2 GiB. */
#define HF_ONNX_EXT_AUTO ((uint64_t)2000 * 1000 * 1000)
/* Side-file offsets are multiples of this (mmap's page size). */
#define HF_ONNX_EXT_ALIGN 4096

/* Write the model to path (IR version ir), through a temporary name
 * renamed into place when complete. external: 1 puts every initializer
 * of HF_ONNX_EXT_MIN bytes or more into "<path>_data" (entries location
 * = its base name, offset, length), 0 does that only past
 * HF_ONNX_EXT_AUTO. The side file is renamed first, so the .onnx never
 * exists without its data. Reports any builder error first. */
int hf_onnx_write(struct hf_onnx *o, const char *path, int64_t ir,
		  int external, struct hf_err *err);

#endif
