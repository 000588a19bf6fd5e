#version 450
/* layer_norm: y = (x - mean) / sqrt(var + eps) * w + b over the last axis
 * (torch.nn.LayerNorm, biased variance). One workgroup normalises one row,
 * in two passes (mean, then centred squares) for accuracy. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) readonly buffer Wbuf { float w[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(std430, binding = 3) readonly buffer Bbuf { float bb[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_norm p; } pc;

void main()
{
	const uint tid = gl_LocalInvocationID.x;
	const uint row = wg_linear();
	const uint cols = pc.p.cols;

	if (row >= pc.p.rows)
		return;
	const uint b = row * cols;
	float s = 0.0;
	for (uint i = tid; i < cols; i += WG)
		s += x[pc.o[0] + b + i];
	const float mean = wg_sum(s) / float(cols);
	float ss = 0.0;
	for (uint i = tid; i < cols; i += WG) {
		const float d = x[pc.o[0] + b + i] - mean;
		ss += d * d;
	}
	const float rstd = inversesqrt(wg_sum(ss) / float(cols) + pc.p.eps);
	for (uint i = tid; i < cols; i += WG) {
		float v = (x[pc.o[0] + b + i] - mean) * rstd;
		if (pc.p.has_w != 0)
			v *= w[pc.o[1] + i];
		if (pc.p.has_b != 0)
			v += bb[pc.o[3] + i];
		y[pc.o[2] + b + i] = v;
	}
}
