#version 450
/* matmul: the prompt product y[t][o] = sum_i x[t][i] * W[o][i] (+ bias[o]),
 * tiled. One workgroup computes a BM x BN tile of y (BM tokens, BN
 * outputs). Grid: output tiles along x (and y past 65535), token tiles
 * along z.
 * Plain: the workgroup steps through `in` BK at a time through shared
 * memory; one invocation computes TM x TN outputs of the tile, and
 * WG = (BM / TM) * (BN / TN).
 * SUBGROUP: no shared memory, no barrier. Each subgroup takes TM x TN
 * sub-tiles in turn; its lanes split `in` (consecutive k side by side, so
 * rows of x and W are read in order, coalesced on a GPU and streamed on a
 * CPU driver), each keeping TM x TN partial sums, reduced at the end with
 * subgroupAdd. BK is unused.
 * F16_ARITH (matmul_f16_hmul*, f16 weights on a device with
 * shaderFloat16): x rounded to float16, products in float16 four at a
 * time (dot of two f16vec4, from shared float16 tiles in the plain
 * kernel), each four-term sum added to the float32 accumulators. The
 * host picks it only when n_in % 4 == 0 and W's rows start on a word.
 * Cooperative matrices (VK_KHR_cooperative_matrix, reported as
 * hf_vk_devinfo.coopmat) would be a third kernel here: a subgroup
 * loading BM x BK and BK x BN float16 tiles into coopmat operands and
 * accumulating a float32 BM x BN coopmat, chosen by ops.c where the
 * SUBGROUP one is now. Not written: glslc 2023.2 cannot compile
 * GL_KHR_cooperative_matrix and no device here offers it to test on.
 * W_QUANT (matmul_int8, matmul_gptq, ...): a quantized weight, each
 * element dequantized where it is loaded (weights.glsl wq: into the
 * shared tile, or straight into the sums). */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : enable
#ifdef F16_ARITH
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

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
layout(push_constant) uniform PC {
	uint o[HF_PC_NBIND];
	hf_pc_matmul p;
#ifdef W_QUANT
	hf_pc_wq q;
#endif
} pc;
#include "weights.glsl"

#ifdef F16_ARITH
/* x[xb + 4k .. xb + 4k + 3] rounded to float16 */
f16vec4 xload4h(uint xb, uint k)
{
	return f16vec4(x[xb + 4 * k], x[xb + 4 * k + 1], x[xb + 4 * k + 2],
		       x[xb + 4 * k + 3]);
}
#endif

#ifdef SUBGROUP
void main()
{
	const uint n = pc.p.n, in_ = pc.p.n_in, out_ = pc.p.n_out;
	const uint mb = gl_WorkGroupID.z * BM;
	const uint nb = pc.p.o0 + wg_linear() * BN;
	const uint end = pc.p.o0 + pc.p.rows;
	const uint lane = gl_SubgroupInvocationID, step = gl_SubgroupSize;
	const uint tiles = (BM / TM) * (BN / TN);

	for (uint st = gl_SubgroupID; st < tiles; st += gl_NumSubgroups) {
		const uint m0 = mb + (st / (BN / TN)) * TM;
		const uint n0 = nb + (st % (BN / TN)) * TN;
		uint xr[TM], wr[TN];
		float acc[TM * TN];

		if (m0 >= n || n0 >= end)
			continue;	/* uniform in the subgroup */
		/* rows past the edge repeat the last one; their sums are
		 * dropped below */
		[[unroll]] for (uint i = 0; i < TM; i++)
			xr[i] = pc.o[1] + min(m0 + i, n - 1) * in_;
		[[unroll]] for (uint j = 0; j < TN; j++)
			wr[j] = WROW(min(n0 + j, end - 1) - pc.p.o0);
		[[unroll]] for (uint i = 0; i < TM * TN; i++)
			acc[i] = 0.0;
#ifdef F16_ARITH
		for (uint k = lane; k < in_ / 4; k += step) {
			f16vec4 xv[TM];

			[[unroll]] for (uint i = 0; i < TM; i++)
				xv[i] = xload4h(xr[i], k);
			[[unroll]] for (uint j = 0; j < TN; j++) {
				const f16vec4 wv =
					wload4h((pc.o[0] + wr[j]) / 2 + 2 * k);

				[[unroll]] for (uint i = 0; i < TM; i++)
					acc[i * TN + j] += float(dot(xv[i], wv));
			}
		}
#else
		for (uint k = lane; k < in_; k += step) {
			float xv[TM];

			[[unroll]] for (uint i = 0; i < TM; i++)
				xv[i] = x[xr[i] + k];
			[[unroll]] for (uint j = 0; j < TN; j++) {
				const float wv = WAT(wr[j], k);

				[[unroll]] for (uint i = 0; i < TM; i++)
					acc[i * TN + j] += xv[i] * wv;
			}
		}
#endif
		[[unroll]] for (uint i = 0; i < TM; i++)
			[[unroll]] for (uint j = 0; j < TN; j++) {
				const float v = subgroupAdd(acc[i * TN + j]);
				const uint gm = m0 + i, go = n0 + j;

				if (lane == 0 && gm < n && go < end)
					y[pc.o[2] + gm * out_ + go] = v +
						(pc.p.has_bias != 0 ?
						 bias[pc.o[3] + go] : 0.0);
			}
	}
}
#else
#ifdef F16_ARITH
#define TILE_T float16_t
#else
#define TILE_T float
#endif
shared TILE_T xs[BM * BK];
shared TILE_T ws[BN * BK];

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
			xs[l] = TILE_T(gm < n && gk < in_ ?
				       x[pc.o[1] + gm * in_ + gk] : 0.0);
		}
		for (uint l = tid; l < BN * BK; l += WG) {
			const uint r = l / BK, c = l % BK;
			const uint go = n0 + r, gk = k0 + c;
			ws[l] = TILE_T(go < end && gk < in_ ?
				WAT(WROW(go - pc.p.o0), gk) :
				0.0);
		}
		barrier();
#ifdef F16_ARITH
		/* BK is a multiple of 4 */
		for (uint k = 0; k < BK; k += 4) {
			[[unroll]] for (uint i = 0; i < TM; i++) {
				const uint a = (tm0 + i) * BK + k;
				const f16vec4 av = f16vec4(xs[a], xs[a + 1],
							   xs[a + 2], xs[a + 3]);

				[[unroll]] for (uint j = 0; j < TN; j++) {
					const uint b = (tn0 + j) * BK + k;

					acc[i * TN + j] += float(dot(av,
						f16vec4(ws[b], ws[b + 1],
							ws[b + 2], ws[b + 3])));
				}
			}
		}
#else
		for (uint k = 0; k < BK; k++) {
			[[unroll]] for (uint i = 0; i < TM; i++) {
				const float a = xs[(tm0 + i) * BK + k];
				[[unroll]] for (uint j = 0; j < TN; j++)
					acc[i * TN + j] += a * ws[(tn0 + j) * BK + k];
			}
		}
#endif
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
#endif
