#version 450
/* glu: activation and gated product, y[r][c] = act(a[r][c]) * b[r][c]
 * (gated, as in LlamaMLP's act(gate_proj(x)) * up_proj(x)) or act(a[r][c]).
 * ACT_SILU: x * sigmoid(x); ACT_GELU: x/2 * (1 + erf(x/sqrt 2)) (exact
 * GELU, BERT); ACT_GELU_TANH: the tanh approximation (gelu_new, GPT-2,
 * gemma); ACT_RELU; ACT_TANH. Offsets and strides let a and b be halves
 * of one fused row (phi3's gate_up_proj). Invocations grid-stride over
 * the elements. */
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

#include "common.glsl"
#include "pc.h"

layout(std430, binding = 0) readonly buffer Abuf { float a[]; };
layout(std430, binding = 1) readonly buffer Bbuf { float b[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC { uint o[HF_PC_NBIND]; hf_pc_glu p; } pc;

/* erf by Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7; GLSL has none. */
float erf_as(float x)
{
	const float t = 1.0 / (1.0 + 0.3275911 * abs(x));
	const float poly = t * (0.254829592 + t * (-0.284496736 +
		t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
	return sign(x) * (1.0 - poly * exp(-x * x));
}

float act(float x)
{
#if defined(ACT_SILU)
	return x / (1.0 + exp(-x));
#elif defined(ACT_GELU)
	return 0.5 * x * (1.0 + erf_as(x * 0.70710678118654752));
#elif defined(ACT_GELU_TANH)
	const float k = 0.79788456080286536;	/* sqrt(2 / pi) */
	return 0.5 * x * (1.0 + tanh_safe(k * (x + 0.044715 * x * x * x)));
#elif defined(ACT_RELU)
	return max(x, 0.0);
#elif defined(ACT_TANH)
	return tanh_safe(x);
#else
#error "define ACT_SILU, ACT_GELU, ACT_GELU_TANH, ACT_RELU or ACT_TANH"
#endif
}

void main()
{
	FOR_ITEMS(i, pc.p.rows * pc.p.cols) {
		const uint r = i / pc.p.cols, c = i % pc.p.cols;
		float v = act(a[pc.o[0] + pc.p.a_off + r * pc.p.a_stride + c]);
		if (pc.p.gated != 0)
			v *= b[pc.o[1] + pc.p.b_off + r * pc.p.b_stride + c];
		y[pc.o[2] + i] = v;
	}
}
