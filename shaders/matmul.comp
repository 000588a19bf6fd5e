#version 450
/* matmul: the prompt product y[t][o] = sum_i x[t][i] * W[o][i] (+ bias[o]),
 * tiled. One workgroup computes a BM x BN tile of y (BM tokens, BN outputs)
 * stepping through `in` BK at a time through shared memory; one invocation
 * computes TM x TN outputs of the tile. WG = (BM / TM) * (BN / TN).
 * Grid: output tiles along x (and y past 65535), token tiles along z. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : enable

layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint BM = 32;
layout(constant_id = 2) const uint BN = 32;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 2;
layout(constant_id = 5) const uint TN = 2;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 1) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(std430, binding = 3) readonly buffer Bbuf { float bias[]; };
layout(push_constant) uniform PC { uint o[6]; hf_pc_matmul p; } pc;
#include "weights.glsl"

shared float xs[BM * BK];
shared float ws[BN * BK];

void main()
{
	const uint tid = gl_LocalInvocationID.x;
	const uint n = pc.p.n, in_ = pc.p.n_in, out_ = pc.p.n_out;
	const uint m0 = gl_WorkGroupID.z * BM;
	const uint n0 = pc.p.o0 + wg_linear() * BN;
	const uint end = pc.p.o0 + pc.p.rows;
	const uint tm0 = (tid / (BN / TN)) * TM;
	const uint tn0 = (tid % (BN / TN)) * TN;
	float acc[TM * TN];

	[[unroll]] for (uint i = 0; i < TM * TN; i++)
		acc[i] = 0.0;
	for (uint k0 = 0; k0 < in_; k0 += BK) {
		for (uint l = tid; l < BM * BK; l += WG) {
			const uint r = l / BK, c = l % BK;
			const uint gm = m0 + r, gk = k0 + c;
			xs[l] = gm < n && gk < in_ ? x[pc.o[1] + gm * in_ + gk] : 0.0;
		}
		for (uint l = tid; l < BN * BK; l += WG) {
			const uint r = l / BK, c = l % BK;
			const uint go = n0 + r, gk = k0 + c;
			ws[l] = go < end && gk < in_ ?
				wload(pc.p.w_off + (go - pc.p.o0) * in_ + gk) :
				0.0;
		}
		barrier();
		for (uint k = 0; k < BK; k++) {
			[[unroll]] for (uint i = 0; i < TM; i++) {
				const float a = xs[(tm0 + i) * BK + k];
				[[unroll]] for (uint j = 0; j < TN; j++)
					acc[i * TN + j] += a * ws[(tn0 + j) * BK + k];
			}
		}
		barrier();
	}
	[[unroll]] for (uint i = 0; i < TM; i++) {
		const uint gm = m0 + tm0 + i;
		[[unroll]] for (uint j = 0; j < TN; j++) {
			const uint go = n0 + tn0 + j;
			if (gm < n && go < end)
				y[pc.o[2] + gm * out_ + go] = acc[i * TN + j] +
					(pc.p.has_bias != 0 ? bias[pc.o[3] + go] : 0.0);
		}
	}
}
