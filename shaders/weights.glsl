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
 * change beyond what its W_PAIRS-like fast paths want.
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
#else
#error "define W_F32, W_F16 or W_BF16"
#endif
#if defined(F16_ARITH) && !defined(W_F16)
#error "F16_ARITH is for W_F16"
#endif

/* Element i of W (from the bound element offset pc.o[0]). */
float wload(uint i)
{
	const uint e = pc.o[0] + i;
	return wblock(e / W_BLOCK, e % W_BLOCK);
}
