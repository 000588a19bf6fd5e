#version 450
/* get_rows: embedding gather, y[r][c] = table[ids[r]][c] as float, from an
 * f32/f16/bf16 table in its stored dtype. An id outside [0, n_table) gives
 * a zero row (the host checks ids before they reach the device). A table
 * larger than one binding is bound in windows of rows [row0, row0 +
 * n_win), one dispatch each.
 * Invocations grid-stride over the elements. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 1) readonly buffer Ibuf { int ids[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_rows p; } pc;
#include "weights.glsl"

void main()
{
	FOR_ITEMS(i, pc.p.n * pc.p.cols) {
		const uint r = i / pc.p.cols, c = i % pc.p.cols;
		const int id = ids[pc.o[1] + r];
		if (id < 0 || uint(id) >= pc.p.n_table)
			y[pc.o[2] + i] = 0.0;
		else if (uint(id) - pc.p.row0 < pc.p.n_win)
			y[pc.o[2] + i] = wload((uint(id) - pc.p.row0) *
					       pc.p.cols + c);
	}
}
