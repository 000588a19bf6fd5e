#version 450
/* moe_topk: mixture-of-experts routing. For each token, softmax over the
 * n_exp router logits, then the k most probable experts, highest first
 * (ties to the lower index, as torch.topk on CPU), with their
 * probabilities, renormalised to sum 1 when norm (Mixtral; Qwen-MoE's
 * norm_topk_prob). One invocation routes one token. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Lbuf { float logits[]; };
layout(std430, binding = 1) writeonly buffer Ibuf { int ids[]; };
layout(std430, binding = 2) writeonly buffer Wbuf { float wt[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_topk p; } pc;

void main()
{
	const uint t = wg_linear() * WG + gl_LocalInvocationID.x;
	const uint ne = pc.p.n_exp, kk = pc.p.k;

	if (t >= pc.p.n_tok)
		return;
	const uint b = t * ne;
	float mx = NEG_INF;
	for (uint e = 0; e < ne; e++)
		mx = max(mx, logits[pc.o[0] + b + e]);
	float sum = 0.0;
	for (uint e = 0; e < ne; e++)
		sum += exp(logits[pc.o[0] + b + e] - mx);

	/* Selection sort by threshold: the next pick is the largest logit
	 * below the previous pick (or equal with a higher index). */
	float prev = uintBitsToFloat(0x7f800000u);
	int prev_id = -1;
	float picked = 0.0;
	for (uint r = 0; r < kk; r++) {
		int best = -1;
		float bv = NEG_INF;
		for (uint e = 0; e < ne; e++) {
			const float l = logits[pc.o[0] + b + e];
			const bool after = l < prev ||
				(l == prev && int(e) > prev_id);
			if (after && (best < 0 || l > bv)) {
				best = int(e);
				bv = l;
			}
		}
		const float pr = exp(bv - mx) / sum;
		ids[pc.o[1] + t * kk + r] = best;
		wt[pc.o[2] + t * kk + r] = pr;
		picked += pr;
		prev = bv;
		prev_id = best;
	}
	if (pc.p.norm != 0)
		for (uint r = 0; r < kk; r++)
			wt[pc.o[2] + t * kk + r] /= picked;
}
