#version 450
/* set_rows: scatter rows, y[ids[r]][c] = x[src_off + r * src_stride + c];
 * the KV-cache write, with ids the token positions read from the device so
 * a recorded decode step can be replayed at the next position. Ids outside
 * [0, n_table) are skipped. Invocations grid-stride over the elements. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) readonly buffer Ibuf { int ids[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_rows p; } pc;

void main()
{
	FOR_ITEMS(i, pc.p.n * pc.p.cols) {
		const uint r = i / pc.p.cols, c = i % pc.p.cols;
		const int id = ids[pc.o[1] + r];
		if (id >= 0 && uint(id) < pc.p.n_table)
			y[pc.o[2] + uint(id) * pc.p.cols + c] =
				x[pc.o[0] + pc.p.src_off + r * pc.p.src_stride + c];
	}
}
