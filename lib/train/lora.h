/* lib/train/lora.h: the LoRA op (Hu et al. 2021, PEFT's lora.Linear) as a
 * forward/backward pair on host float32 memory, its scaling and its
 * initialisation.
 *
 *   y += scale * (dropout(x) A^T) B^T      x (n, in), A (r, in), B (out, r)
 *   scale = alpha / r, or alpha / sqrt(r) with rslora
 *
 * (huggingface/peft src/peft/tuners/lora/layer.py: Linear.forward,
 * update_layer, reset_lora_parameters). The products run on
 * cblas_sgemm (float sums). Dropout is a mask the caller
 * makes (hf_lora_dropout_mask), so the training loop owns the random
 * stream and a checkpoint can hold it. Pointers and sizes in, no
 * allocation inside; backward adds (+=) into its gradients. */
#ifndef HF_TRAIN_LORA_H
#define HF_TRAIN_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct hf_rng;		/* gen/gen.h */

/* lora_alpha / r, or lora_alpha / sqrt(r) when rslora (use_rslora). */
float hf_lora_scale(double alpha, size_t r, int rslora);

/* PEFT's init_lora_weights=true: A (r, in) ~ kaiming_uniform_(a=sqrt(5)),
 * which is uniform in [-1/sqrt(in), 1/sqrt(in)] (gain sqrt(2/(1+a^2)) =
 * sqrt(1/3) times sqrt(3/fan_in)); B (out, r) = 0. The uniform numbers
 * come from splitmix64 seeded with seed (24-bit floats), so a seed gives
 * the same A on every machine; B may be NULL. */
void hf_lora_init(float *A, float *B, size_t r, size_t in, size_t out,
		  uint64_t seed);

/* Inverted dropout of probability p (torch.nn.Dropout in training):
 * mask[i] = u[i] < p ? 0 : 1 / (1 - p), from uniforms u in [0, 1). */
void hf_lora_dropout_mask(float *mask, const float *u, size_t n, float p);

/* y (n, out) += scale * (xd A^T) B^T with xd = x * mask (mask (n, in), or
 * NULL: no dropout, evaluation). xa (n, r) gets xd A^T, saved for the
 * backward pass (xd itself is recomputed from x and mask). */
void hf_lora_forward(float *y, float *xa, const float *x, const float *mask,
		     const float *A, const float *B, size_t n, size_t in,
		     size_t r, size_t out, float scale);

/* Given dy (n, out): with g = scale * dy B (n, r) into the scratch gxa,
 *   dB (out, r) += scale * dy^T xa
 *   dA (r, in)  += g^T xd
 *   dx (n, in)  += mask * (g A)
 * Any of dx, dA, dB may be NULL (skipped). x, mask, xa as given to the
 * forward pass. */
void hf_lora_backward(float *dx, float *dA, float *dB, float *gxa,
		      const float *dy, const float *x, const float *mask,
		      const float *xa, const float *A, const float *B,
		      size_t n, size_t in, size_t r, size_t out, float scale);
/* The plain loops of both (sums in double), to test the others by; the
 * same arguments and results. */
void hf_lora_forward_ref(float *y, float *xa, const float *x,
			 const float *mask, const float *A, const float *B,
			 size_t n, size_t in, size_t r, size_t out, float scale);
void hf_lora_backward_ref(float *dx, float *dA, float *dB, float *gxa,
			  const float *dy, const float *x, const float *mask,
			  const float *xa, const float *A, const float *B,
			  size_t n, size_t in, size_t r, size_t out,
			  float scale);

/* The merged weight's delta: W (out, in) += scale * B A; with
 * fan_in_fan_out W is stored (in, out) and gets the transpose. Sums in
 * double. sign -1 unmerges. */
void hf_lora_merge(float *W, const float *A, const float *B, size_t in,
		   size_t r, size_t out, float scale, int fan_in_fan_out,
		   int sign);

/* ---- one LoRA linear in training ----
 * The forward and backward of one targeted linear as model/train.h's
 * struct hf_train_adapter calls them (ctx a struct hf_lora_layer):
 *   ad.ctx = &layer; ad.forward = hf_lora_layer_forward;
 *   ad.backward = hf_lora_layer_backward;
 * The forward draws a fresh dropout mask from rng (training and
 * dropout > 0) unless recompute is set, when it reuses the last one, so
 * that a checkpointed layer recomputes the same output; it keeps x A^T
 * for the backward. */
struct hf_lora_layer {
	size_t in, out, r;
	float scale;		/* hf_lora_scale() */
	float dropout;		/* lora_dropout */
	int training;		/* 0: no dropout (evaluation) */
	float *A, *B;		/* (r, in), (out, r): borrowed parameters */
	float *dA, *dB;		/* their gradients (+=), borrowed; NULL: frozen */
	struct hf_rng *rng;	/* borrowed: draws the masks */
	/* owned scratch for cap rows, grown on demand */
	float *xa, *gxa, *mask;
	size_t cap, n;
	int have_mask;
};

int hf_lora_layer_forward(void *ctx, float *y, const float *x, size_t n,
			  int recompute, struct hf_err *err);
int hf_lora_layer_backward(void *ctx, float *dx, const float *dy,
			   const float *x, size_t n, struct hf_err *err);
/* Free the scratch (the borrowed pointers stay); zeroed is fine. */
void hf_lora_layer_free(struct hf_lora_layer *l);

#endif
