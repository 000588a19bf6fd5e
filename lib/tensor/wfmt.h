/* lib/tensor/wfmt.h: weight formats, the one seam every matrix product
 * goes through. A format is how a checkpoint stores an nn.Linear weight
 * W (out, in): plain float32/float16/bfloat16 rows today, the quantized
 * layouts of transformers' quantizers (bitsandbytes, GPTQ, AWQ, ...)
 * tomorrow. Each format is one row of a traits table (row size,
 * dequantization of a panel, binding from a checkpoint), after ggml's
 * type_traits; the CPU kernels per instruction set (matmul_kern.h) and
 * the Vulkan shaders (shaders/weights.glsl) add one entry per format.
 * A caller never tests a format by name: it asks the table. */
#ifndef HF_TENSOR_WFMT_H
#define HF_TENSOR_WFMT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tensor/dtype.h"

/* The tensors of each quantized format, t[0] first, are those of
 * docs/quantization-formats.md; lib/quant/ reads (formats.c) and writes
 * them. Element (r, c) of a weight is row roff + r of the stored matrix
 * (a fused projection's part keeps its parent's tensors; see roff). */
enum hf_wfmt {
	HF_WFMT_F32,		/* float32 rows */
	HF_WFMT_F16,		/* float16 rows */
	HF_WFMT_BF16,		/* bfloat16 rows */
	/* bitsandbytes LLM.int8: t0 I8 (rows, cols), t1 SCB F32 (rows);
	 * W = q * SCB[r] / 127 */
	HF_WFMT_INT8,
	/* bitsandbytes 4-bit (nf4, fp4): t0 the codes of the flattened
	 * matrix, two per byte, element 2i in the high nibble; t1 absmax
	 * F32 (one per block of `group` elements of the flat matrix); t2
	 * quant_map F32 [16]. W = quant_map[code] * absmax[e / group] */
	HF_WFMT_BNB4,
	/* the same, double-quantized: t1 absmax U8, t3 nested_absmax F32
	 * (one per group2 = 256 blocks), t4 nested_quant_map F32 [256];
	 * absmax[b] = t4[t1[b]] * t3[b / group2] + p0 (nested_offset) */
	HF_WFMT_BNB4DQ,
	/* GPTQ: t0 qweight I32 (cols * bits / 32, ld) packed along the
	 * input, t1 qzeros I32 (G, ld * bits / 32), t2 scales F16 (G, ld),
	 * t3 g_idx I32 (cols) or NULL (group c / group); bits 2, 3, 4, 8;
	 * W = s * (q - ((z + zoff) & mask)), zoff 1 for the v1 format */
	HF_WFMT_GPTQ,
	/* AWQ gemm: t0 qweight I32 (cols, ld / 8) packed along the output
	 * in the order 0 2 4 6 1 3 5 7, t1 qzeros I32 (G, ld / 8), t2
	 * scales F16 (G, ld); W = s * (q - z) */
	HF_WFMT_AWQ,
	/* BitNet b1.58: t0 U8 (ld / 4, cols), row r in bits 2 (r / (ld / 4))
	 * of packed row r % (ld / 4), as q + 1; W = q * p0 (p0 the scale as
	 * a multiplier: weight_scale, or its inverse for "bitlinear") */
	HF_WFMT_BITNET,
	/* FP8: t0 F8_E4M3 (rows, cols), t1 weight_scale_inv F32
	 * (ceil(ld / group2), ceil(cols / group)); W = fp8 * t1[block] */
	HF_WFMT_FP8,
	HF_WFMT_COUNT
};

/* Tensors a format may need (packed weights, scales, zeros, indices). */
#define HF_WEIGHT_NT 5

/* The parameters of a quantized weight beyond its tensors; zero for the
 * plain formats. */
struct hf_wparam {
	size_t group;		/* elements per scale along a row (or of
				 * the flat matrix: bnb4), 0: none */
	size_t group2;		/* bnb4dq: blocks per nested absmax; fp8:
				 * rows per scale block */
	unsigned bits;		/* gptq, awq */
	unsigned zoff;		/* gptq v1: 1 */
	size_t roff;		/* first row within the stored matrix */
	size_t ld;		/* rows of the stored matrix (the parent's
				 * out), 0: rows */
	float p0;		/* bnb4dq: nested offset; bitnet: scale */
};

/* A weight matrix in host memory, as the CPU kernels read it: W (rows,
 * cols) = (out, in) in format fmt, quantized in groups of `group`
 * elements along a row (0: not grouped). t[0] is the main tensor (the
 * packed weights); t[1..] are the format's others, in the order its
 * traits name them. Pointers are borrowed (usually the mmap). */
struct hf_weight {
	enum hf_wfmt fmt;
	size_t rows, cols;
	struct hf_wparam q;
	const void *t[HF_WEIGHT_NT];
};

/* The rows of the stored matrix of w (q.ld, or rows when 0). */
static inline size_t hf_weight_ld(const struct hf_weight *w)
{
	return w->q.ld ? w->q.ld : w->rows;
}

/* A tensor of a checkpoint, found by name for a format's bind hook;
 * NULL if absent. ctx is the caller's. */
struct hf_tensor;
struct hf_qcfg;		/* quant/qconfig.h: config.json's quantization_config */
typedef const struct hf_tensor *(*hf_wfmt_get_fn)(void *ctx,
						   const char *name);

struct hf_wfmt_traits {
	const char *name;	/* "f32": messages, the shader suffix */
	/* Elements per block along a row and bytes per block of t[0]:
	 * a row of cols elements is cols / block blocks (cols a multiple
	 * of block). Plain formats: 1 element, its dtype's bytes. */
	unsigned block, block_bytes;
	enum hf_dtype dtype;	/* of t[0] as stored */
	unsigned ntensors;	/* t[0 .. ntensors) are used */
	/* t[0] is row-major float32, readable by BLAS in place */
	unsigned f32_rows : 1;
	/* every value is a bfloat16 already: bf16 compute reads W as is */
	unsigned bf16_exact : 1;
	/* Widen rows [r0, r0 + rows) x columns [k0, k0 + kc) of w to
	 * float32, dst (rows, kc) row-major: the portable kernels, the
	 * reference product and the GET_ROWS lookup all go through it. */
	void (*dequant)(float *dst, const struct hf_weight *w, size_t r0,
			size_t rows, size_t k0, size_t kc);
	/* Rows [r0, r0 + n) of w (a fused projection's part, one expert
	 * of a stacked set): the bytes [*off, *off + *len) of tensor i
	 * that hold them, so that a host pointer or a device buffer view
	 * can be cut alike; HF_EUNSUPPORTED where the layout cannot be
	 * cut along rows there. NULL: a row range keeps the whole tensors
	 * and moves q.roff (formats whose rows are not contiguous bytes). */
	int (*span)(const struct hf_weight *w, unsigned i, size_t r0,
		    size_t n, size_t *off, size_t *len, struct hf_err *err);
	/* Bind the weight stored under `base` (as "model.layers.0.mlp.
	 * up_proj": the hook appends ".weight" and the rest) of shape
	 * (rows, cols): 0 and *w filled with its tensors (tn[i] their
	 * checkpoint tensors, for a device to copy); HF_ENOTFOUND when the
	 * checkpoint does not store it in this format (the next row is
	 * asked); another code, err filled, when it does but wrongly. */
	int (*bind)(struct hf_weight *w, const struct hf_tensor **tn,
		    hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		    const char *base, size_t rows, size_t cols,
		    struct hf_err *err);
};

/* The row of fmt (fmt < HF_WFMT_COUNT). */
const struct hf_wfmt_traits *hf_wfmt_traits(enum hf_wfmt fmt);
const char *hf_wfmt_name(enum hf_wfmt fmt);
/* The plain format storing elements of dtype dt, or -1. */
int hf_wfmt_of_dtype(enum hf_dtype dt);
/* "f32, f16, bf16": the formats' names, for messages. */
const char *hf_wfmt_list(void);

/* Bytes of one row of cols elements of t[0], and of rows such rows. */
size_t hf_wfmt_row_bytes(enum hf_wfmt fmt, size_t cols);
static inline size_t hf_wfmt_bytes(enum hf_wfmt fmt, size_t rows,
				   size_t cols)
{
	return rows * hf_wfmt_row_bytes(fmt, cols);
}

/* A plain weight over data (rows, cols) in dtype dt; -1 if dt is not a
 * plain format's. */
int hf_weight_plain(struct hf_weight *w, const void *data, enum hf_dtype dt,
		    size_t rows, size_t cols);
/* Rows [r0, r0 + n) of w, through its format's rows hook. */
int hf_weight_rows(struct hf_weight *dst, const struct hf_weight *w,
		   size_t r0, size_t n, struct hf_err *err);
/* Widen rows [r0, r0 + rows) x columns [k0, k0 + kc) into dst. */
void hf_weight_dequant(float *dst, const struct hf_weight *w, size_t r0,
		       size_t rows, size_t k0, size_t kc);
/* Bind the weight under base in whichever format the checkpoint stores
 * it (each row's bind asked in turn); HF_ENOTFOUND if none. */
int hf_weight_bind(struct hf_weight *w, const struct hf_tensor **tn,
		   hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		   const char *base, size_t rows, size_t cols,
		   struct hf_err *err);

#endif
