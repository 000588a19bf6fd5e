#version 450
/* rms_norm: y = x / sqrt(mean(x^2) + eps) * (w + w_add) over the last axis
 * (transformers LlamaRMSNorm; gemma's stored w - 1 with w_add = 1). One
 * workgroup normalises one row; invocations stride over its columns. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) readonly buffer Wbuf { float w[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_norm p; } pc;

void main()
{
	const uint tid = gl_LocalInvocationID.x;
	const uint row = wg_linear();
	const uint cols = pc.p.cols;

	if (row >= pc.p.rows)
		return;
	const uint b = row * cols;
	float ss = 0.0;
	for (uint i = tid; i < cols; i += WG)
		ss += x[pc.o[0] + b + i] * x[pc.o[0] + b + i];
	ss = wg_sum(ss);
	const float rstd = inversesqrt(ss / float(cols) + pc.p.eps);
	for (uint i = tid; i < cols; i += WG) {
		const float g = pc.p.has_w != 0 ? w[pc.o[1] + i] + pc.p.w_add : 1.0;
		y[pc.o[2] + b + i] = x[pc.o[0] + b + i] * rstd * g;
	}
}
