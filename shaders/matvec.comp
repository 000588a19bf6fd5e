#version 450
/* matvec: the decode product y[t][o] = sum_i x[t][i] * W[o][i] (+ bias[o]),
 * W in nn.Linear layout [out][in]. One workgroup computes ROWS outputs of
 * token gl_WorkGroupID.z.
 * SUBGROUP: each subgroup takes four rows at a time and sums them with
 * its lanes striding over `in`, then subgroupAdd: no shared memory, no
 * barrier (what a CPU driver such as lavapipe needs, and warp-per-row on
 * GPUs). ROWS is a multiple of 4. Plain: all invocations stride over one row at a time, then a
 * shared-memory tree reduction. */
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

/* Part of row W[o] . x[t]: the elements first, first + step, ...; with
 * 16-bit weights and an even start, word by word (two weights a load). */
float row_dot(uint wb, uint xb, uint in_, uint first, uint step)
{
	float acc = 0.0;
#ifdef W_PAIRS
	const uint j0 = pc.o[0] + wb;

	if ((j0 & 1) == 0) {
		const uint k0 = j0 >> 1, n2 = in_ >> 1;

		for (uint k = first; k < n2; k += step) {
			const vec2 wv = wload2(k0 + k);
			acc += wv.x * x[xb + 2 * k] + wv.y * x[xb + 2 * k + 1];
		}
		if ((in_ & 1) != 0 && first == 0)
			acc += wload(wb + in_ - 1) * x[xb + in_ - 1];
		return acc;
	}
#endif
	for (uint i = first; i < in_; i += step)
		acc += wload(wb + i) * x[xb + i];
	return acc;
}

void main()
{
	const uint t = gl_WorkGroupID.z;
	const uint row0 = pc.p.o0 + wg_linear() * ROWS;
	const uint in_ = pc.p.n_in, out_ = pc.p.n_out;
	const uint end = pc.p.o0 + pc.p.rows;
	const uint xb = pc.o[1] + t * in_;
#ifdef SUBGROUP
	/* four rows at a time per subgroup: x[k] is loaded once for all
	 * four, and the loop overhead is shared */
	const uint lane = gl_SubgroupInvocationID, step = gl_SubgroupSize;

	for (uint r = gl_SubgroupID * 4; r < ROWS; r += gl_NumSubgroups * 4) {
		const uint o = row0 + r;
		uint wb[4];
		float acc[4] = { 0.0, 0.0, 0.0, 0.0 };

		if (o >= end)
			break;
		/* rows past the end repeat the last; their sums are dropped */
		[[unroll]] for (uint q = 0; q < 4; q++)
			wb[q] = pc.p.w_off + (min(o + q, end - 1) - pc.p.o0) * in_;
#ifdef W_PAIRS
		if (((pc.o[0] + wb[0]) & 1) == 0 && (in_ & 1) == 0) {
			/* every row starts on a word: two weights a load */
			for (uint k = lane; k < in_ / 2; k += step) {
				const float x0 = x[xb + 2 * k];
				const float x1 = x[xb + 2 * k + 1];

				[[unroll]] for (uint q = 0; q < 4; q++) {
					const vec2 wv =
						wload2((pc.o[0] + wb[q]) / 2 + k);
					acc[q] += wv.x * x0 + wv.y * x1;
				}
			}
		} else
#endif
		for (uint k = lane; k < in_; k += step) {
			const float xv = x[xb + k];

			[[unroll]] for (uint q = 0; q < 4; q++)
				acc[q] += wload(wb[q] + k) * xv;
		}
		[[unroll]] for (uint q = 0; q < 4; q++) {
			const float v = subgroupAdd(acc[q]);

			if (subgroupElect() && o + q < end)
				y[pc.o[2] + t * out_ + o + q] = v +
					(pc.p.has_bias != 0 ?
					 bias[pc.o[3] + o + q] : 0.0);
		}
	}
#else
	const uint tid = gl_LocalInvocationID.x;
	for (uint r = 0; r < ROWS; r++) {
		const uint o = row0 + r;
		float acc = 0.0;
		if (o < end)
			acc = row_dot(pc.p.w_off + (o - pc.p.o0) * in_, xb,
				      in_, tid, WG);
		acc = wg_sum(acc);	/* uniform: every invocation calls it */
		if (tid == 0 && o < end)
			y[pc.o[2] + t * out_ + o] = acc +
				(pc.p.has_bias != 0 ? bias[pc.o[3] + o] : 0.0);
	}
#endif
}
