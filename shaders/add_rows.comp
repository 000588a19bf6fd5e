#version 450
/* add_rows: scatter-add, y[rows[i]][c] += w[i] * x[i][c] (w = 1 without
 * weights), the MoE combine of expert outputs. One invocation owns one
 * column c and walks i = 0 .. n-1 in order, so repeated rows neither race
 * nor change the order of the sums (the CPU loop's order). Rows outside
 * [0, n_y) are skipped. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) readonly buffer Rbuf { int rows[]; };
layout(std430, binding = 2) readonly buffer Wbuf { float w[]; };
layout(std430, binding = 3) buffer Ybuf { float y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_add_rows p; } pc;

void main()
{
	const uint c = wg_linear() * WG + gl_LocalInvocationID.x;
	const uint cols = pc.p.cols;

	if (c >= cols)
		return;
	for (uint i = 0; i < pc.p.n; i++) {
		const int r = rows[pc.o[1] + i];
		if (r < 0 || uint(r) >= pc.p.n_y)
			continue;
		const float s = pc.p.has_w != 0 ? w[pc.o[2] + i] : 1.0;
		y[pc.o[3] + uint(r) * cols + c] += s * x[pc.o[0] + i * cols + c];
	}
}
