/* lib/export/qlin.h: the linears of a quantized HF checkpoint (the
 * formats of tensor/wfmt.h that hf-quantize writes and lib/quant reads)
 * seen by the exporters as the float32 tensors `hf-quantize --dequantize`
 * would write in their place: same name ("<base>.weight"), same layout
 * (GPT-2's Conv1D transposed back to (in, out)), same values (the
 * format's own dequantizer, hf_weight_dequant). One linear at a time, so
 * a model is never widened whole. */
#ifndef HF_EXPORT_QLIN_H
#define HF_EXPORT_QLIN_H

#include "core/err.h"
#include "st/st.h"
#include "tensor/wfmt.h"

struct hf_qcfg;

/* A quantized linear, bound. t is the float weight it stands for: name
 * "<base>.weight", dtype F32, 2-D, data NULL (read it with
 * hf_qlin_read), nbytes those of its packed main tensor. t.name points
 * into name: do not copy the struct once found. */
struct hf_qlin {
	struct hf_tensor t;
	char name[400];
	const struct hf_tensor *main;	/* the packed weight (or qweight) */
	struct hf_weight w;		/* (out, in) */
	int conv;			/* GPT-2 Conv1D: t is (in, out) */
};

/* What a checkpoint tensor is to an exporter. */
enum hf_qlin_role {
	HF_QLIN_NONE,	/* a tensor of its own (float weights, biases) */
	HF_QLIN_MAIN,	/* the packed weight of a quantized linear */
	HF_QLIN_AUX,	/* its scales, zeros, indices, quant_state... */
};

/* Whether module base ("transformer.h.0.attn.c_attn") of a GPT-2
 * checkpoint (gpt2) is a Conv1D (c_attn, c_proj, c_fc, q_attn), whose W
 * is stored (in, out). */
int hf_qlin_conv1d(int gpt2, const char *base);

/* The role of the checkpoint tensor t, looking its neighbours up by name
 * through get(ctx, name). */
enum hf_qlin_role hf_qlin_role(const struct hf_tensor *t, hf_wfmt_get_fn get,
			       void *ctx);

/* Bind the quantized linear whose float weight would be called name
 * ("model.layers.0.mlp.up_proj.weight"), stored in qc's format, its
 * tensors found through get: 0 and *l filled; HF_ENOTFOUND when no
 * quantized linear stands under that name (a float tensor, or none);
 * HF_EFORMAT or HF_EUNSUPPORTED naming the tensor when one does but hf
 * cannot read it. gpt2: the checkpoint is GPT-2's (its c_attn, c_proj,
 * c_fc are Conv1D). */
int hf_qlin_find(struct hf_qlin *l, hf_wfmt_get_fn get, void *ctx,
		 const struct hf_qcfg *qc, int gpt2, const char *name,
		 struct hf_err *err);

/* l's float32 values into x (hf_tensor_numel(&l->t) of them), in l->t's
 * layout: what the dequantized float32 checkpoint stores, bit for bit. */
int hf_qlin_read(const struct hf_qlin *l, float *x, struct hf_err *err);

#endif
