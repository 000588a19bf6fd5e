#version 450
/* copy: y[dst_off + i] = a[src_off + i], i < n: slices of fused QKV rows,
 * cache moves. Invocations grid-stride over the elements. */
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
		y[pc.o[1] + pc.p.dst_off + i] = a[pc.o[0] + pc.p.src_off + i];
}
