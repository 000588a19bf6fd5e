/* lib/quant/gptq.h: GPTQ (Frantar et al. 2022) as AutoGPTQ's
 * auto_gptq/quantization/gptq.py fasterquant() and GPTQModel run it: the
 * solver for one linear given its inputs' Hessian, and the layer-by-layer
 * driver over a model and a calibration set. The integer weights it
 * chooses go to hf_gptq_pack() (quant/quantize.h) as they come out. */
#ifndef HF_QUANT_GPTQ_H
#define HF_QUANT_GPTQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "quant/quantize.h"

struct hf_gptq_params {
	unsigned bits;		/* 2, 3, 4 or 8 */
	long group_size;	/* inputs per group; -1: one group */
	int desc_act;		/* columns by decreasing diag(H) */
	int sym;		/* symmetric: zero 2^(bits-1) */
	float damp;		/* damp_percent: 0.01 in AutoGPTQ */
	size_t block;		/* columns per lazy batch; 0: 128 */
};

/* One linear quantized: in exactly the form hf_gptq_pack() takes. All
 * arrays malloc'd, owned; hf_gptq_result_free() frees and zeroes. */
struct hf_gptq_result {
	size_t rows, cols, G;	/* out, in, groups */
	unsigned bits;
	uint8_t *q;		/* (rows, cols) in 0 .. 2^bits - 1 */
	float *scales;		/* (G, rows) */
	uint8_t *zeros;		/* (G, rows) the true zero point */
	int32_t *g_idx;		/* (cols) the group of each input */
	float *deq;		/* (rows, cols) scales * (q - zeros) */
};

void hf_gptq_result_free(struct hf_gptq_result *r);

/* H (cols, cols) = scale * X^T X over X (n, cols) row-major, both
 * triangles filled (OpenBLAS ssyrk, float32 as upstream). AutoGPTQ's
 * add_batch() makes scale 2 / (sequences seen). */
void hf_gptq_hessian(float *H, const float *X, size_t n, size_t cols,
		     float scale);
/* H += scale * X^T X, the same; for inputs seen in several pieces. */
void hf_gptq_hessian_add(float *H, const float *X, size_t n, size_t cols,
			 float scale);

/* GPTQ of W (rows, cols) = (out, in) row-major against H (cols, cols),
 * which is overwritten. As fasterquant(): dead columns (diag 0) get
 * H[d, d] = 1 and W[:, d] = 0; desc_act permutes by decreasing diag(H)
 * (a stable sort: ties keep column order; torch.argsort does not
 * promise one); damp * mean(diag H) is added to the diagonal; the upper
 * Cholesky factor of H^-1 (LAPACK, in double) drives the column updates,
 * in blocks of p->block with the trailing columns updated once per
 * block (sgemm); a group's scale and zero come from W as it stands at
 * the start of the block that reaches the group's first column (as
 * upstream: W[:, i:i + group_size], not the block's working copy);
 * group_size -1 takes them from the original W. group_size must divide
 * cols (checked). Errors: HF_EINVAL for bad params, HF_ERANGE when the
 * damped H is not positive definite. */
int hf_gptq_solve(struct hf_gptq_result *r, const float *W, size_t rows,
		  size_t cols, float *H, const struct hf_gptq_params *p,
		  struct hf_err *err);

/* Round-to-nearest with the same quantizer and layout (the baseline):
 * groups of group_size consecutive inputs, g_idx i / group_size. */
int hf_gptq_rtn(struct hf_gptq_result *r, const float *W, size_t rows,
		size_t cols, const struct hf_gptq_params *p,
		struct hf_err *err);

/* The quantizer of a group (scale, zero, q) is quant/quantize.h's
 * hf_gptq_scale_zero() and hf_gptq_q(), shared with the writer. */

/* ---- the model driver ---- */

struct hf_gptq_opts {
	struct hf_gptq_params p;
	const char *calib;	/* --calib FILE (calib.h) */
	size_t samples;		/* --calib-samples; 0: all */
	size_t seq_len;		/* --seq-len */
	int threads;		/* CPU backend threads, <= 0: all */
	int v2;			/* pack as gptq_v2 (true zeros); 0: v1 */
	/* linears to leave in float (--skip): skip(skip_ctx, name) true;
	 * they are neither solved nor replaced, and no sink call comes */
	int (*skip)(void *ctx, const char *name);
	void *skip_ctx;
};

/* One quantized linear, as the driver hands it over. Borrowed for the
 * call only. */
struct hf_gptq_linear {
	const char *name;	/* HF module name, "model.layers.0.mlp.up_proj" */
	size_t layer;
	const float *W;		/* (rows, cols) the weight before GPTQ */
	const float *H;		/* (cols, cols) its Hessian, (2/nseq) X^T X,
				 * before dead columns and damping */
	size_t ntok;		/* calibration tokens H sums over */
	size_t nseq;		/* sequences (H's 2/nseq) */
	const struct hf_gptq_result *r;
	const struct hf_qlinear *q;	/* r packed by hf_gptq_pack():
					 * qweight, qzeros, scales, g_idx */
};

/* Called once per quantized linear, in forward order; nonzero stops
 * the run (err filled by the callback). The callback may keep q's
 * tensors by moving them out (taking t[i].data and setting it NULL);
 * what is left is freed after it returns. */
typedef int (*hf_gptq_sink)(void *ctx, const struct hf_gptq_linear *l,
			    struct hf_err *err);

/* GPTQ over the model in model_dir (a Llama-family decoder with
 * separate q/k/v/o, gate/up/down projections; others HF_EUNSUPPORTED)
 * with the calibration set o->calib. Layer by layer, each layer's
 * linears see the calibration hidden states as the already quantized
 * layers (and linears) before them make them: the inputs of o_proj come
 * from the quantized q/k/v, those of down_proj from the quantized
 * gate/up, so it is GPTQModel's true_sequential order. Each layer runs
 * once over all samples as one batch; each linear is solved when the
 * pass reaches it, and its dequantized weight is what the pass then
 * multiplies by. Memory: the hidden states of all samples and one
 * layer's activations for all of them. */
int hf_gptq_quantize_model(const char *model_dir,
			   const struct hf_gptq_opts *o, hf_gptq_sink sink,
			   void *ctx, struct hf_err *err);

#endif
