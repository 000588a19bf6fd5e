#version 450
/* moe_sum: the mixture-of-experts combine after matvec_id: y[t][c] =
 * sum_j w[t][j] * x[t * k + j][c], the k slots of token t summed in slot
 * order from zero (the weights moe_topk wrote, the expert outputs one
 * row per slot). One invocation computes one element of y, the grid
 * striding over all n * cols. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) readonly buffer Wbuf { float wt[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_moe_sum p; } pc;

void main()
{
	const uint cols = pc.p.cols, kk = pc.p.k;

	FOR_ITEMS(i, pc.p.n * cols) {
		const uint t = i / cols, c = i % cols;
		float s = 0.0;

		for (uint j = 0; j < kk; j++)
			s += wt[pc.o[1] + t * kk + j] *
				x[pc.o[0] + (t * kk + j) * cols + c];
		y[pc.o[2] + i] = s;
	}
}
