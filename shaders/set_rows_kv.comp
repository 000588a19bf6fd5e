#version 450
/* set_rows_kv: the KV-cache write of set_rows.comp into a cache of the
 * types of lib/backend/kvfmt.h (KV_F16, KV_BF16, KV_INT8, KV_Q4), bound
 * as uint words: row r of x goes to cache column ids[r], a column of
 * cols values being row_words words. Each invocation writes one unit: a
 * word of two values (f16, bf16) or a group of G values with its scale
 * (int8; q4: and minimum), rounding to nearest even as the CPU does. Ids
 * outside [0, n_table) are skipped. Here n_win holds head_dim. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) readonly buffer Ibuf { int ids[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { uint y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_rows p; } pc;

#define HD pc.p.n_win
#define G ((HD % 32u) == 0u ? 32u : HD)
#if defined(KV_F16) || defined(KV_BF16)
#define UE 2u			/* values a unit */
#define UW 1u			/* words a unit */
#elif defined(KV_INT8)
#define UE G
#define UW (1u + G / 4u)
#else
#define UE G
#define UW (2u + G / 8u)
#endif

void main()
{
	const uint units = pc.p.cols / UE;

	FOR_ITEMS(i, pc.p.n * units) {
		const uint r = i / units, u = i % units;
		const int id = ids[pc.o[1] + r];
		if (id < 0 || uint(id) >= pc.p.n_table)
			continue;
		const uint xs = pc.o[0] + pc.p.src_off + r * pc.p.src_stride +
			u * UE;
		const uint yw = pc.o[2] + uint(id) * (units * UW) + u * UW;
#if defined(KV_F16)
		y[yw] = packHalf2x16(vec2(x[xs], x[xs + 1u]));
#elif defined(KV_BF16)
		uint lo = floatBitsToUint(x[xs]), hi = floatBitsToUint(x[xs + 1u]);
		lo = (lo + 0x7FFFu + ((lo >> 16) & 1u)) >> 16;
		hi = (hi + 0x7FFFu + ((hi >> 16) & 1u)) >> 16;
		y[yw] = lo | (hi << 16);
#elif defined(KV_INT8)
		float amax = 0.0;
		for (uint e = 0; e < G; e++)
			amax = max(amax, abs(x[xs + e]));
		const float s = amax / 127.0;
		const float inv = s > 0.0 ? 1.0 / s : 0.0;
		y[yw] = floatBitsToUint(s);
		for (uint w = 0; w < G / 4u; w++) {
			uint word = 0u;
			for (uint b = 0; b < 4u; b++)
				word |= (uint(int(roundEven(x[xs + w * 4u + b] *
							   inv))) & 0xFFu) << (8u * b);
			y[yw + 1u + w] = word;
		}
#else
		float lo = x[xs], hi = x[xs];
		for (uint e = 1; e < G; e++) {
			lo = min(lo, x[xs + e]);
			hi = max(hi, x[xs + e]);
		}
		const float s = (hi - lo) / 15.0;
		const float inv = s > 0.0 ? 1.0 / s : 0.0;
		y[yw] = floatBitsToUint(s);
		y[yw + 1u] = floatBitsToUint(lo);
		for (uint w = 0; w < G / 8u; w++) {
			uint word = 0u;
			for (uint b = 0; b < 8u; b++)
				word |= (uint(roundEven((x[xs + w * 8u + b] - lo) *
							inv)) & 15u) << (4u * b);
			y[yw + 2u + w] = word;
		}
#endif
	}
}
