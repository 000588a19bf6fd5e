#version 450
/* softmax: y = exp(s - max s) / sum exp(s - max s), s = x * scale, over the
 * last axis. One workgroup handles one row. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_softmax p; } pc;

void main()
{
	const uint tid = gl_LocalInvocationID.x;
	const uint row = wg_linear();
	const uint cols = pc.p.cols;
	const float sc = pc.p.scale;

	if (row >= pc.p.rows)
		return;
	const uint b = row * cols;
	float m = NEG_INF;
	for (uint i = tid; i < cols; i += WG)
		m = max(m, x[pc.o[0] + b + i] * sc);
	m = wg_max(m);
	float s = 0.0;
	for (uint i = tid; i < cols; i += WG)
		s += exp(x[pc.o[0] + b + i] * sc - m);
	const float inv = 1.0 / wg_sum(s);
	for (uint i = tid; i < cols; i += WG)
		y[pc.o[1] + b + i] = exp(x[pc.o[0] + b + i] * sc - m) * inv;
}
