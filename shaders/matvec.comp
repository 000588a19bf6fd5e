#version 450
/* matvec: the decode product y[t][o] = sum_i x[t][i] * W[o][i] (+ bias[o]),
 * W in nn.Linear layout [out][in]. One workgroup computes ROWS outputs of
 * token gl_WorkGroupID.z.
 * SUBGROUP: each subgroup takes four rows at a time and sums them with
 * its lanes striding over `in`, then subgroupAdd: no shared memory, no
 * barrier (what a CPU driver such as lavapipe needs, and warp-per-row on
 * GPUs). ROWS is a multiple of 4. Plain: all invocations stride over one row at a time, then a
 * shared-memory tree reduction.
 * MUL_MAT_ID (matvec_id_*): the indexed product of a mixture-of-experts
 * layer. Workgroup row t of y is a (token, slot) pair and uses matrix
 * ids[t] of the n_exp stacked in W (n_out x n_in each), applied to row t
 * of x (x_slot) or to row t / k (the slots of a token share its input);
 * an id outside [0, n_exp) gives zeros. The ids are read on the device,
 * so a recorded decode step routes each replay afresh. A stack larger
 * than one binding runs in windows of matrices [e0, e0 + e_win), one
 * dispatch each; a row whose matrix is in another window is left to
 * that dispatch (the first writes the zeros).
 * F16_ARITH (*_f16_hmul, f16 weights on a device with shaderFloat16):
 * x is rounded to float16 and the products are taken in float16 four at
 * a time (dot of two f16vec4); each four-term sum is added to the
 * float32 accumulator, so long rows do not accumulate in float16. The
 * host picks it only when n_in % 4 == 0 and W's rows start on a word.
 * Where cooperative matrices come (VK_KHR_cooperative_matrix), they
 * belong in matmul.comp, not here: a matrix-vector product has no tile
 * for them to fill.
 * W_QUANT (*_int8, *_bnb4, *_gptq, ...): a quantized weight, each
 * element dequantized where it is read (weights.glsl wq), no float copy;
 * the whole tensors are bound (one part, one window of experts). */
#extension GL_GOOGLE_include_directive : require
#ifdef F16_ARITH
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint ROWS = 2;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 1) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(std430, binding = 3) readonly buffer Bbuf { float bias[]; };
#ifdef MUL_MAT_ID
layout(std430, binding = 4) readonly buffer Ibuf { int ids[]; };
#endif
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

/* Part of row W[o] . x[t], wb its handle (WROW): the elements first,
 * first + step, ...; with 16-bit weights and an even start, word by word
 * (two weights a load). */
float row_dot(uint wb, uint xb, uint in_, uint first, uint step)
{
	float acc = 0.0;
#ifdef F16_ARITH
	const uint k0 = (pc.o[0] + wb) >> 1;

	for (uint k = first; k < in_ / 4; k += step)
		acc += float(dot(wload4h(k0 + 2 * k), xload4h(xb, k)));
	return acc;
#endif
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
		acc += WAT(wb, i) * x[xb + i];
	return acc;
}

void main()
{
	const uint t = gl_WorkGroupID.z;
	const uint row0 = pc.p.o0 + wg_linear() * ROWS;
	const uint in_ = pc.p.n_in, out_ = pc.p.n_out;
	const uint end = pc.p.o0 + pc.p.rows;
#ifdef MUL_MAT_ID
	const int id = ids[pc.o[4] + t];
	const uint xb = pc.o[1] + (pc.p.x_slot != 0 ? t : t / pc.p.k) * in_;

	/* the same id for the whole workgroup: all return, or none */
	if (id < 0 || uint(id) >= pc.p.n_exp) {
		if (pc.p.e0 == 0)
			for (uint r = gl_LocalInvocationID.x; r < ROWS; r += WG)
				if (row0 + r < end)
					y[pc.o[2] + t * out_ + row0 + r] = 0.0;
		return;
	}
	if (uint(id) < pc.p.e0 || uint(id) - pc.p.e0 >= pc.p.e_win)
		return;
	/* the first row of matrix id in the bound stack */
	const uint wr0 = (uint(id) - pc.p.e0) * out_;
#else
	const uint xb = pc.o[1] + t * in_;
	const uint wr0 = 0;
#endif
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
			wb[q] = WROW(wr0 + min(o + q, end - 1) - pc.p.o0);
#ifdef F16_ARITH
		for (uint k = lane; k < in_ / 4; k += step) {
			const f16vec4 xv = xload4h(xb, k);

			[[unroll]] for (uint q = 0; q < 4; q++)
				acc[q] += float(dot(wload4h((pc.o[0] + wb[q]) / 2 +
							    2 * k), xv));
		}
#else
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
				acc[q] += WAT(wb[q], k) * xv;
		}
#endif
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
			acc = row_dot(WROW(wr0 + o - pc.p.o0), xb,
				      in_, tid, WG);
		acc = wg_sum(acc);	/* uniform: every invocation calls it */
		if (tid == 0 && o < end)
			y[pc.o[2] + t * out_ + o] = acc +
				(pc.p.has_bias != 0 ? bias[pc.o[3] + o] : 0.0);
	}
#endif
}
