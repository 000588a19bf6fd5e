#version 450
/* scale: y[i] = a[i] * s + c (gemma's embedding scale, residual scaling).
 * Invocations grid-stride over the elements; y may alias a. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Abuf { float a[]; };
layout(std430, binding = 1) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_elem p; } pc;

void main()
{
	FOR_ITEMS(i, pc.p.n)
		y[pc.o[1] + i] = a[pc.o[0] + i] * pc.p.s + pc.p.c;
}
