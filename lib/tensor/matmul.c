/* lib/tensor/matmul.c: y = x . W^T for nn.Linear weights in F32/F16/BF16. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "tensor/matmul.h"

/* Widening is done here rather than through dtype.c so that the kernels
 * depend on nothing but this file. Both are exact. */
static inline float bf16_f32(uint16_t b)
{
	uint32_t u = (uint32_t)b << 16;
	float f;

	memcpy(&f, &u, 4);
	return f;
}

/* IEEE binary16 -> binary32, subnormals and NaN payloads included. */
static inline float f16_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
	float f;

	if (exp == 0x1f) {
		u = sign | 0x7f800000 | (man << 13);
	} else if (exp) {
		u = sign | ((exp + 112) << 23) | (man << 13);
	} else if (man) {
		/* subnormal: man * 2^-24, exact in float */
		f = (float)man * 0x1p-24f;
		return sign ? -f : f;
	} else {
		u = sign;
	}
	memcpy(&f, &u, 4);
	return f;
}

static inline float w_at(const void *w, enum hf_dtype wt, size_t i)
{
	switch (wt) {
	case HF_DTYPE_F32:
		return ((const float *)w)[i];
	case HF_DTYPE_F16:
		return f16_f32(((const uint16_t *)w)[i]);
	case HF_DTYPE_BF16:
		return bf16_f32(((const uint16_t *)w)[i]);
	default:
		assert(!"hf_matmul: weight dtype must be F32, F16 or BF16");
		return 0.0f;
	}
}

/* x: (n, in); w: (out, in) in dtype wt; bias: (out) or NULL; y: (n, out).
 * Sums in double so that it is the most accurate of the paths. */
void hf_matmul_ref(float *y, const float *x, const void *w, enum hf_dtype wt,
		   const float *bias, size_t n, size_t in, size_t out)
{
	for (size_t t = 0; t < n; t++) {
		const float *xt = x + t * in;

		for (size_t o = 0; o < out; o++) {
			double s = bias ? bias[o] : 0.0;

			for (size_t i = 0; i < in; i++)
				s += (double)xt[i] * w_at(w, wt, o * in + i);
			y[t * out + o] = (float)s;
		}
	}
}

void hf_matmul(float *y, const float *x, const void *w, enum hf_dtype wt,
	       const float *bias, size_t n, size_t in, size_t out,
	       struct hf_pool *pool)
{
	hf_matmul_ref(y, x, w, wt, bias, n, in, out);
}
