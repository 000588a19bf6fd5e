#version 450
/* matvec: the decode product y[t][o] = sum_i x[t][i] * W[o][i] (+ bias[o]),
 * W in nn.Linear layout [out][in]. One workgroup computes ROWS outputs of
 * token gl_WorkGroupID.z.
 * SUBGROUP: each subgroup takes rows in turn and sums one row with its
 * lanes striding over `in`, then subgroupAdd: no shared memory, no
 * barrier (what a CPU driver such as lavapipe needs, and warp-per-row on
 * GPUs). Plain: all invocations stride over one row at a time, then a
 * shared-memory tree reduction. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint ROWS = 2;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 1) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(std430, binding = 3) readonly buffer Bbuf { float bias[]; };
layout(push_constant) uniform PC { uint o[6]; hf_pc_matmul p; } pc;
#include "weights.glsl"

void main()
{
	const uint t = gl_WorkGroupID.z;
	const uint row0 = pc.p.o0 + wg_linear() * ROWS;
	const uint in_ = pc.p.n_in, out_ = pc.p.n_out;
	const uint end = pc.p.o0 + pc.p.rows;
	const uint xb = pc.o[1] + t * in_;
#ifdef SUBGROUP
	for (uint r = gl_SubgroupID; r < ROWS; r += gl_NumSubgroups) {
		const uint o = row0 + r;
		if (o >= end)
			break;
		const uint wb = pc.p.w_off + (o - pc.p.o0) * in_;
		float acc = 0.0;
		for (uint i = gl_SubgroupInvocationID; i < in_;
		     i += gl_SubgroupSize)
			acc += wload(wb + i) * x[xb + i];
		acc = subgroupAdd(acc);
		if (subgroupElect())
			y[pc.o[2] + t * out_ + o] = acc +
				(pc.p.has_bias != 0 ? bias[pc.o[3] + o] : 0.0);
	}
#else
	const uint tid = gl_LocalInvocationID.x;
	for (uint r = 0; r < ROWS; r++) {
		const uint o = row0 + r;
		float acc = 0.0;
		if (o < end) {
			const uint wb = pc.p.w_off + (o - pc.p.o0) * in_;
			for (uint i = tid; i < in_; i += WG)
				acc += wload(wb + i) * x[xb + i];
		}
		acc = wg_sum(acc);	/* uniform: every invocation calls it */
		if (tid == 0 && o < end)
			y[pc.o[2] + t * out_ + o] = acc +
				(pc.p.has_bias != 0 ? bias[pc.o[3] + o] : 0.0);
	}
#endif
}
