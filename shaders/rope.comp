#version 450
/* rope: rotary position embedding of the first rot_dim dims of each head,
 * theta_i = pos * inv_freq[i], inv_freq[i] = base^(-2i / rot_dim) unless
 * given as a buffer (llama3/yarn/longrope scaling precomputed by the host).
 * ROPE_HALF pairs dim i with i + rot_dim/2 (transformers rotate_half);
 * ROPE_INTERLEAVED pairs 2i with 2i + 1 (GPT-J, rotate_every_two).
 * One item is one pair of one head of one token (items grid-strided over
 * the invocations); pairs past rot_dim/2 copy their two dims. x and y
 * may be the same buffer. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) readonly buffer Pbuf { int pos[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(std430, binding = 3) readonly buffer Fbuf { float inv_freq[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_rope p; } pc;

void main()
{
	const uint half_hd = pc.p.head_dim / 2;
	const uint rh = pc.p.rot_dim / 2;

	FOR_ITEMS(gid, pc.p.n_tok * pc.p.n_head * half_hd) {
		const uint j = gid % half_hd;
		const uint h = (gid / half_hd) % pc.p.n_head;
		const uint t = gid / half_hd / pc.p.n_head;
		const uint xb = pc.o[0] + pc.p.x_off + t * pc.p.x_stride +
			h * pc.p.head_dim;
		const uint yb = pc.o[2] + pc.p.y_off + t * pc.p.y_stride +
			h * pc.p.head_dim;

		if (j >= rh) {
			const uint d = pc.p.rot_dim + 2 * (j - rh);
			y[yb + d] = x[xb + d];
			y[yb + d + 1] = x[xb + d + 1];
			continue;
		}
#if defined(ROPE_HALF)
		const uint i0 = j, i1 = j + rh;
#elif defined(ROPE_INTERLEAVED)
		const uint i0 = 2 * j, i1 = 2 * j + 1;
#else
#error "define ROPE_HALF or ROPE_INTERLEAVED"
#endif
		const float f = pc.p.has_inv_freq != 0 ?
			inv_freq[pc.o[3] + j] :
			pow(pc.p.theta_base, -float(2 * j) / float(pc.p.rot_dim));
		const float th = float(pos[pc.o[1] + t]) * f;
		const float c = cos(th) * pc.p.mscale;
		const float s = sin(th) * pc.p.mscale;
		const float x0 = x[xb + i0], x1 = x[xb + i1];

		y[yb + i0] = x0 * c - x1 * s;
		y[yb + i1] = x1 * c + x0 * s;
	}
}
