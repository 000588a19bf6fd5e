#version 450
/* binary: y[i] = a[i] op b[i % nb], b broadcast over rows of a (a bias or
 * norm weight of nb elements, or a residual with nb = n). OP_ADD or
 * OP_MUL. Invocations grid-stride over the elements; y may alias a. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Abuf { float a[]; };
layout(std430, binding = 1) readonly buffer Bbuf { float b[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_elem p; } pc;

void main()
{
	FOR_ITEMS(i, pc.p.n) {
#if defined(OP_ADD)
		y[pc.o[2] + i] = a[pc.o[0] + i] + b[pc.o[1] + i % pc.p.nb];
#elif defined(OP_MUL)
		y[pc.o[2] + i] = a[pc.o[0] + i] * b[pc.o[1] + i % pc.p.nb];
#else
#error "define OP_ADD or OP_MUL"
#endif
	}
}
