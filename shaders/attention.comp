#version 450
/* attention: flash-attention style scaled dot-product attention. One
 * workgroup computes the output of one query for one head; it walks the
 * keys WG at a time (one key per invocation), keeping a running max m, a
 * running sum l and the output accumulator rescaled as m grows (online
 * softmax, Milakov & Gimelshein 2018; Dao et al. 2022), so no score row
 * longer than WG is ever stored, whatever the context. Visibility: see
 * hf_pc_attn in pc.h. GQA: head h reads kv head h / (n_head / n_kv_head).
 * Each invocation owns output dims d = tid + i * WG, i < MAXD / WG.
 * Layouts: row r = b * n_q + t of q is q[q_off + r * q_stride ...], head h
 * at + h * head_dim; key j of batch row b at k_off + b * kv_batch +
 * j * k_stride + kvh * head_dim; v likewise; o row r at r * o_stride.
 * SUBGROUP_ROWS: one subgroup per (query, head), PAIRS of them per
 * workgroup, no shared memory and no barrier: lanes own NDL dims each
 * (q and the output accumulator in registers), keys go by one at a time
 * with the score summed by subgroupAdd, rows of k and v read in order.
 * The host picks it where the subgroup size is fixed, so that NDL dims
 * per lane cover head_dim. */
#extension GL_GOOGLE_include_directive : require
/* KV_F16, KV_BF16, KV_INT8, KV_Q4: k and v hold that type (kv.glsl). */

layout(constant_id = 0) const uint WG = 32;
layout(constant_id = 1) const uint MAXD = 128;	/* head_dim <= MAXD */
layout(constant_id = 2) const uint PAIRS = 16;	/* SUBGROUP_ROWS: per workgroup */
layout(constant_id = 3) const uint NDL = 4;	/* SUBGROUP_ROWS: dims per lane */
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Qbuf { float q[]; };
#include "kv.glsl"
#ifdef KV_WORDS
/* a cache of another type: element e of the float32 layout, at k_off */
layout(std430, binding = 1) readonly buffer Kbuf { uint k[]; };
layout(std430, binding = 2) readonly buffer Vbuf { uint v[]; };
#define KAT(e) KV_LOAD(k, pc.o[1], (e) - pc.o[1])
#define VAT(e) KV_LOAD(v, pc.o[2], (e) - pc.o[2])
#else
layout(std430, binding = 1) readonly buffer Kbuf { float k[]; };
layout(std430, binding = 2) readonly buffer Vbuf { float v[]; };
#define KAT(e) k[e]
#define VAT(e) v[e]
#endif
layout(std430, binding = 3) writeonly buffer Obuf { float o[]; };
layout(std430, binding = 4) readonly buffer Pbuf { int pos[]; };
layout(std430, binding = 5) readonly buffer Mbuf { float mask[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_attn p; } pc;

#ifdef SUBGROUP_ROWS
void main()
{
	const uint lane = gl_SubgroupInvocationID, sgs = gl_SubgroupSize;
	const uint hd = pc.p.head_dim;

	for (uint pr = gl_SubgroupID; pr < PAIRS; pr += gl_NumSubgroups) {
		const uint g = wg_linear() * PAIRS + pr;
		const uint h = g % pc.p.n_head;
		const uint r = g / pc.p.n_head;	/* query row b * n_q + t */
		const uint b = r / pc.p.n_q;

		if (b >= pc.p.n_batch)
			break;	/* uniform in the subgroup */
		const uint kvh = h / (pc.p.n_head / pc.p.n_kv_head);
		const uint qb = pc.o[0] + pc.p.q_off + r * pc.p.q_stride +
			h * hd;
		const uint kb = pc.o[1] + pc.p.k_off + b * pc.p.kv_batch +
			kvh * hd;
		const uint vb = pc.o[2] + pc.p.v_off + b * pc.p.kv_batch +
			kvh * hd;
		const uint mb = pc.o[5] + b * pc.p.mask_stride;
		const int pt = pc.p.has_pos != 0 ? pos[pc.o[4] + r] :
			int(pc.p.past + r % pc.p.n_q);
		uint end = pc.p.n_kv, start = 0;
		float qv[NDL], acc[NDL];
		float m = NEG_INF, l = 0.0;

		if (pc.p.causal != 0)
			end = min(end, uint(max(pt + 1, 0)));
		if (pc.p.window != 0 && pt + 1 > int(pc.p.window))
			start = uint(pt + 1 - int(pc.p.window));
		/* lanes own dims d = lane + i * sgs: q and the output stay in
		 * registers; keys go by one at a time, rows read in order */
		[[unroll]] for (uint i = 0; i < NDL; i++) {
			const uint d = lane + i * sgs;

			qv[i] = d < hd ? q[qb + d] : 0.0;
			acc[i] = 0.0;
		}
		for (uint j = start; j < end; j++) {
			float part = 0.0, s;

			if (pc.p.has_mask != 0 && mask[mb + j] == 0.0)
				continue;	/* uniform: one key for all */
			[[unroll]] for (uint i = 0; i < NDL; i++) {
				const uint d = lane + i * sgs;
				if (d < hd)
					part += qv[i] *
						KAT(kb + j * pc.p.k_stride + d);
			}
			s = subgroupAdd(part) * pc.p.scale;
			if (pc.p.softcap != 0.0)
				s = pc.p.softcap * tanh_safe(s / pc.p.softcap);
			const float mn = max(m, s);
			const float corr = exp(m - mn);	/* 0 while m = -inf */
			const float pj = exp(s - mn);

			l = l * corr + pj;
			[[unroll]] for (uint i = 0; i < NDL; i++) {
				const uint d = lane + i * sgs;
				if (d < hd)
					acc[i] = acc[i] * corr + pj *
						VAT(vb + j * pc.p.v_stride + d);
			}
			m = mn;
		}
		const float inv = l > 0.0 ? 1.0 / l : 0.0;
		const uint ob = pc.o[3] + r * pc.p.o_stride + h * hd;
		[[unroll]] for (uint i = 0; i < NDL; i++) {
			const uint d = lane + i * sgs;
			if (d < hd)
				o[ob + d] = acc[i] * inv;
		}
	}
}
#else
shared float qs[MAXD];
shared float ps[WG];

const uint ND = (MAXD + WG - 1) / WG;

void main()
{
	const uint tid = gl_LocalInvocationID.x;
	const uint g = wg_linear();
	const uint h = g % pc.p.n_head;
	const uint r = g / pc.p.n_head;	/* query row b * n_q + t */
	const uint b = r / pc.p.n_q;
	const uint hd = pc.p.head_dim;

	if (b >= pc.p.n_batch)
		return;
	const uint kvh = h / (pc.p.n_head / pc.p.n_kv_head);
	const uint qb = pc.o[0] + pc.p.q_off + r * pc.p.q_stride + h * hd;
	const uint kb = pc.o[1] + pc.p.k_off + b * pc.p.kv_batch + kvh * hd;
	const uint vb = pc.o[2] + pc.p.v_off + b * pc.p.kv_batch + kvh * hd;
	const uint mb = pc.o[5] + b * pc.p.mask_stride;
	for (uint d = tid; d < hd; d += WG)
		qs[d] = q[qb + d];

	const int pt = pc.p.has_pos != 0 ? pos[pc.o[4] + r] :
		int(pc.p.past + r % pc.p.n_q);
	uint end = pc.p.n_kv, start = 0;
	if (pc.p.causal != 0)
		end = min(end, uint(max(pt + 1, 0)));
	if (pc.p.window != 0 && pt + 1 > int(pc.p.window))
		start = uint(pt + 1 - int(pc.p.window));
	float acc[ND];
	[[unroll]] for (uint i = 0; i < ND; i++)
		acc[i] = 0.0;
	float m = NEG_INF, l = 0.0;
	barrier();

	for (uint j0 = start; j0 < end; j0 += WG) {
		const uint j = j0 + tid;
		bool ok = j < end;
		float s = NEG_INF;
		if (ok && pc.p.has_mask != 0)
			ok = mask[mb + j] != 0.0;
		if (ok) {
			float dot = 0.0;
			for (uint d = 0; d < hd; d++)
				dot += qs[d] * KAT(kb + j * pc.p.k_stride + d);
			s = dot * pc.p.scale;
			if (pc.p.softcap != 0.0)
				s = pc.p.softcap * tanh_safe(s / pc.p.softcap);
		}
		const float mn = max(m, wg_max(s));
		if (mn == NEG_INF)
			continue;	/* uniform: every key so far masked */
		const float pj = ok ? exp(s - mn) : 0.0;
		const float corr = exp(m - mn);	/* 0 while m = -inf */
		ps[tid] = pj;
		l = l * corr + wg_sum(pj);	/* its barrier publishes ps */
		const uint nb = min(WG, end - j0);
		[[unroll]] for (uint i = 0; i < ND; i++) {
			const uint d = tid + i * WG;
			if (d < hd) {
				float a = acc[i] * corr;
				for (uint jj = 0; jj < nb; jj++)
					a += ps[jj] * VAT(vb + (j0 + jj) *
							pc.p.v_stride + d);
				acc[i] = a;
			}
		}
		m = mn;
		barrier();
	}
	const float inv = l > 0.0 ? 1.0 / l : 0.0;
	const uint ob = pc.o[3] + r * pc.p.o_stride + h * hd;
	[[unroll]] for (uint i = 0; i < ND; i++) {
		const uint d = tid + i * WG;
		if (d < hd)
			o[ob + d] = acc[i] * inv;
	}
}
#endif
