/* shaders/weights.glsl: wload(i), element i of the weight buffer `w`
 * (binding 0, element offset pc.o[0]) as float, for each weight format
 * the shaders read (lib/backend/vulkan/ops.c, vk_wfmts). Every format is
 * block-indexed: it defines W_BLOCK, the elements of one block of the
 * bound buffer, and wblock(b, j), element j of absolute block b; wload
 * is the same for all of them. The plain formats' blocks are one float
 * (W_F32) or one uint holding two 16-bit values (W_F16, W_BF16; element
 * 2k in the low half: little-endian, so no 16-bit storage feature is
 * needed). A quantized format adds a section that dequantizes element j
 * of its block (scales and codes), and the matvec/matmul shaders need no
 * change beyond what its W_PAIRS-like fast paths want. The quantized
 * formats, whose rows are not runs of blocks, have their own section
 * (W_QUANT) reached through WROW/WAT.
 * Include after the push-constant block. */
#if defined(W_F32)
layout(std430, binding = 0) readonly buffer Wbuf { float w[]; };

#define W_BLOCK 1u
float wblock(uint b, uint j)
{
	return w[b];
}
#elif defined(W_F16)
layout(std430, binding = 0) readonly buffer Wbuf { uint w[]; };

#define W_BLOCK 2u
float wblock(uint b, uint j)
{
	const vec2 v = unpackHalf2x16(w[b]);
	return j != 0 ? v.y : v.x;
}

/* Elements 2k and 2k + 1 of the bound buffer (absolute word k). */
#define W_PAIRS
vec2 wload2(uint k)
{
	return unpackHalf2x16(w[k]);
}

#ifdef F16_ARITH
/* Elements 2k .. 2k + 3 (absolute words k, k + 1) as float16, for the
 * shaders that multiply in float16 (GL_EXT_shader_explicit_arithmetic_
 * types_float16, enabled by the including shader). */
f16vec4 wload4h(uint k)
{
	return f16vec4(unpackFloat2x16(w[k]), unpackFloat2x16(w[k + 1]));
}
#endif
#elif defined(W_BF16)
layout(std430, binding = 0) readonly buffer Wbuf { uint w[]; };

#define W_BLOCK 2u
float wblock(uint b, uint j)
{
	const uint v = w[b];
	return uintBitsToFloat(j != 0 ? (v & 0xffff0000u) : (v << 16));
}

#define W_PAIRS
vec2 wload2(uint k)
{
	const uint v = w[k];
	return vec2(uintBitsToFloat(v << 16), uintBitsToFloat(v & 0xffff0000u));
}
#elif defined(W_QUANT)
/* The quantized formats (tensor/wfmt.h), read as lib/quant/formats.c
 * reads them: t[0] at binding 0, t[1..4] at bindings 5..8, each as
 * 32-bit words from its element offset pc.o[] (in the unit the host
 * bound it in: bytes for 8-bit tensors, halves for float16, words
 * else), parameters in pc.q (hf_pc_wq). They are not block-indexed:
 * wq(r, c) is element c of row r of the stored matrix, and the shaders
 * ask for WROW(r) and WAT(h, c) instead of wload. Each value is the
 * float the CPU's dequant gives, bit for bit: `precise` keeps the
 * compiler from fusing or reassociating its roundings. */
layout(std430, binding = 0) readonly buffer Wbuf { uint w[]; };
layout(std430, binding = 5) readonly buffer T1buf { uint t1[]; };
layout(std430, binding = 6) readonly buffer T2buf { uint t2[]; };
layout(std430, binding = 7) readonly buffer T3buf { uint t3[]; };
layout(std430, binding = 8) readonly buffer T4buf { uint t4[]; };

/* byte, float16, word and float32 i of a tensor bound at offset ob */
#define QBYTE(b, ob, i) \
	((b[((ob) + (i)) >> 2] >> (8u * (((ob) + (i)) & 3u))) & 0xffu)
#define QHALF(b, ob, i) \
	unpackHalf2x16(b[((ob) + (i)) >> 1] >> (16u * (((ob) + (i)) & 1u))).x
#define QWORD(b, ob, i) (b[(ob) + (i)])
#define QFLOAT(b, ob, i) uintBitsToFloat(b[(ob) + (i)])

#if defined(W_INT8)
/* a / 127 correctly rounded, as the CPU divides: a driver may divide
 * by multiplying with the reciprocal (an ulp or so off), and the float
 * tricks that correct it meet compilers that fuse or reorder. So the
 * fix is in integers: with a = ma 2^ea and the estimate f0 = mf 2^ef
 * (24-bit mantissas), a - 127 f0 = R 2^ef, R = ma 2^(ea - ef) - 127 mf,
 * and the quotient is R / 127 ulps of f0 away from it: round that. */
float div127(float a)
{
	const float f0 = a * (1.0 / 127.0);
	const uint ab = floatBitsToUint(a), fb = floatBitsToUint(f0);
	const int ea = int((ab >> 23) & 255u), ef = int((fb >> 23) & 255u);
	const int ma = int((ab & 0x7fffffu) | 0x800000u);
	const int mf = int((fb & 0x7fffffu) | 0x800000u);
	const int sh = ea - ef;
	int R, adj;

	/* zeros, subnormals, infinities, NaN: as the driver divides */
	if (ea == 0 || ea == 255 || ef == 0 || sh < 6 || sh > 7)
		return a / 127.0;
	R = (ma << sh) - 127 * mf;	/* under 2^31: 24 + 7 bits */
	adj = R >= 0 ? (R + 63) / 127 : -((63 - R) / 127);
	/* below a power of two the ulps halve: leave that rare case */
	if (adj < 0 && mf == 0x800000)
		return a / 127.0;
	return uintBitsToFloat(uint(int(fb) + adj));
}

/* LLM.int8: W = q * (SCB[r] / 127) */
float wq(uint r, uint c)
{
	const int q = bitfieldExtract(int(QBYTE(w, pc.o[0], r * pc.p.n_in + c)),
				      0, 8);
	precise float v = float(q) * div127(QFLOAT(t1, pc.o[5], r));

	return v;
}
#elif defined(W_BNB4) || defined(W_BNB4DQ)
/* bitsandbytes 4-bit: element e of the flat matrix, two codes a byte,
 * e even in the high nibble; W = quant_map[code] * absmax[e / group] */
float wq(uint r, uint c)
{
	const uint e = r * pc.p.n_in + c, b = e / pc.q.group;
	const uint byte = QBYTE(w, pc.o[0], e >> 1);
	const uint code = (e & 1u) != 0 ? (byte & 15u) : (byte >> 4);
#ifdef W_BNB4DQ
	/* absmax = nested_quant_map[q] * nested_absmax + offset, rounded
	 * twice as the CPU does: no fused multiply-add */
	precise float am = QFLOAT(t4, pc.o[8], QBYTE(t1, pc.o[5], b)) *
			   QFLOAT(t3, pc.o[7], b / pc.q.group2);
	am = am + pc.q.p0;
#else
	const float am = QFLOAT(t1, pc.o[5], b);
#endif
	return QFLOAT(t2, pc.o[6], code) * am;
}
#elif defined(W_GPTQ)
/* GPTQ: field j of `bits` bits of column o of a matrix of words (ld
 * columns) packed down the rows, LSB first; 3 bits cross words */
uint gptq_qfield(uint ld, uint j, uint o, uint b)
{
	const uint bit = j * b, wr = bit >> 5, sh = bit & 31u;
	uint v = QWORD(w, pc.o[0], wr * ld + o) >> sh;

	if (sh + b > 32u)
		v |= QWORD(w, pc.o[0], (wr + 1u) * ld + o) << (32u - sh);
	return v & ((1u << b) - 1u);
}

/* field j of the row of zeros starting at word z0, packed along it */
uint gptq_zfield(uint z0, uint j, uint b)
{
	const uint bit = j * b, wi = z0 + (bit >> 5), sh = bit & 31u;
	uint v = QWORD(t1, pc.o[5], wi) >> sh;

	if (sh + b > 32u)
		v |= QWORD(t1, pc.o[5], wi + 1u) << (32u - sh);
	return v & ((1u << b) - 1u);
}

/* W = s[g][o] * (q - ((z[g][o] + zoff) & mask)), g = g_idx[c] or
 * c / group */
float wq(uint o, uint c)
{
	const uint b = pc.q.bits, ld = pc.q.ld, mask = (1u << b) - 1u;
	const uint g = pc.q.has_gidx != 0 ? QWORD(t3, pc.o[7], c) :
		c / pc.q.group;
	const uint q = gptq_qfield(ld, c, o, b);
	const uint z = (gptq_zfield(g * (ld * b / 32u), o, b) + pc.q.zoff) &
		mask;

	return QHALF(t2, pc.o[6], g * ld + o) * (float(q) - float(z));
}
#elif defined(W_AWQ)
/* AWQ gemm: output o in nibble (j / 2 + 4 (j % 2)), j = o % 8, of word
 * o / 8 of each row (the order 0 2 4 6 1 3 5 7); W = s * (q - z) */
float wq(uint o, uint c)
{
	const uint lw = pc.q.ld / 8u, g = c / pc.q.group, j = o & 7u;
	const uint sh = 4u * ((j >> 1) + 4u * (j & 1u));
	const uint q = (QWORD(w, pc.o[0], c * lw + (o >> 3)) >> sh) & 15u;
	const uint z = (QWORD(t1, pc.o[5], g * lw + (o >> 3)) >> sh) & 15u;

	return QHALF(t2, pc.o[6], g * pc.q.ld + o) * (float(q) - float(z));
}
#elif defined(W_BITNET)
/* BitNet: row o in bits 2 (o / R) of packed row o % R, R = ld / 4, as
 * q + 1; W = q * p0 */
float wq(uint o, uint c)
{
	const uint R = pc.q.ld / 4u;
	const uint byte = QBYTE(w, pc.o[0], (o % R) * pc.p.n_in + c);

	return float(int((byte >> (2u * (o / R))) & 3u) - 1) * pc.q.p0;
}
#elif defined(W_FP8)
/* float8 e4m3 (tensor/dtype.c hf_f8e4m3_to_f32: no infinities, 0x7f
 * and 0xff NaN) */
float fp8_e4m3(uint v)
{
	const uint e = (v >> 3) & 15u, m = v & 7u;
	float x;

	if (e == 15u && m == 7u)
		return uintBitsToFloat((v & 0x80u) != 0 ? 0xffc00000u :
				       0x7fc00000u);
	x = e != 0 ? ldexp(float(8u + m), int(e) - 10) : ldexp(float(m), -9);
	return (v & 0x80u) != 0 ? -x : x;
}

/* FP8: W = fp8 * scale_inv[o / group2][c / group] */
float wq(uint o, uint c)
{
	const uint nb = (pc.p.n_in + pc.q.group - 1u) / pc.q.group;

	return fp8_e4m3(QBYTE(w, pc.o[0], o * pc.p.n_in + c)) *
		QFLOAT(t1, pc.o[5], (o / pc.q.group2) * nb + c / pc.q.group);
}
#else
#error "W_QUANT needs the format: W_INT8, W_BNB4, W_BNB4DQ, W_GPTQ, W_AWQ, W_BITNET or W_FP8"
#endif
#else
#error "define W_F32, W_F16, W_BF16 or W_QUANT and a quantized format"
#endif
#if defined(F16_ARITH) && !defined(W_F16)
#error "F16_ARITH is for W_F16"
#endif

#ifdef W_QUANT
/* The row handle of row r of the bound W (experts and parts counted
 * from its first row), and element c of that row: for the quantized
 * formats the row of the stored matrix, for the others the element
 * offset of the row (wload). */
#define WROW(r) (pc.q.roff + (r))
#define WAT(h, c) wq((h), (c))
#else
/* Element i of W (from the bound element offset pc.o[0]). */
float wload(uint i)
{
	const uint e = pc.o[0] + i;
	return wblock(e / W_BLOCK, e % W_BLOCK);
}

#define WROW(r) (pc.p.w_off + (r) * pc.p.n_in)
#define WAT(h, c) wload((h) + (c))
#endif
