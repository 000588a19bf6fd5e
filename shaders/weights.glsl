/* shaders/weights.glsl: wload(i), element i of the weight buffer `w`
 * (binding 0, element offset pc.o[0]) as float, for W_F32, W_F16 and
 * W_BF16. 16-bit weights are read as packed uint pairs (element 2k in the
 * low half: little-endian), so no 16-bit storage feature is needed; the
 * quantized formats add a branch here that dequantises from a block.
 * Include after the push-constant block. */
#if defined(W_F32)
layout(std430, binding = 0) readonly buffer Wbuf { float w[]; };

float wload(uint i)
{
	return w[pc.o[0] + i];
}
#elif defined(W_F16)
layout(std430, binding = 0) readonly buffer Wbuf { uint w[]; };

float wload(uint i)
{
	const uint j = pc.o[0] + i;
	const vec2 v = unpackHalf2x16(w[j >> 1]);
	return (j & 1) != 0 ? v.y : v.x;
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

float wload(uint i)
{
	const uint j = pc.o[0] + i;
	const uint v = w[j >> 1];
	return uintBitsToFloat((j & 1) != 0 ? (v & 0xffff0000u) : (v << 16));
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
