#version 450
/* matvec: the decode product y[t][o] = sum_i x[t][i] * W[o][i] (+ bias[o]),
 * W in nn.Linear layout [out][in]. One workgroup computes ROWS outputs of
 * token gl_WorkGroupID.z; each invocation sums a strided slice of `in`,
 * then the workgroup reduces (subgroup or shared-memory tree). */
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
	const uint tid = gl_LocalInvocationID.x;
	const uint t = gl_WorkGroupID.z;
	const uint row0 = wg_linear() * ROWS;
	const uint in_ = pc.p.n_in;
	const uint xb = t * in_;
	float acc[ROWS];

	[[unroll]] for (uint r = 0; r < ROWS; r++) {
		const uint o = row0 + r;
		acc[r] = 0.0;
		if (o < pc.p.n_out) {
			const uint wb = pc.p.w_off + o * in_;
			for (uint i = tid; i < in_; i += WG)
				acc[r] += wload(wb + i) * x[pc.o[1] + xb + i];
		}
	}
	[[unroll]] for (uint r = 0; r < ROWS; r++) {
		const uint o = row0 + r;
		const float s = wg_sum(acc[r]);
		if (tid == 0 && o < pc.p.n_out)
			y[pc.o[2] + t * pc.p.n_out + o] = s + (pc.p.has_bias != 0 ? bias[pc.o[3] + o] : 0.0);
	}
}
