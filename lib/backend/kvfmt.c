/* lib/backend/kvfmt.c: KV-cache element types (kvfmt.h). */
#include "backend/kvfmt.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "tensor/dtype.h"

static const char *const names[HF_KV_COUNT] = {
	"f32", "f16", "bf16", "int8", "q4"
};

const char *hf_kv_type_name(int t)
{
	return t >= 0 && t < HF_KV_COUNT ? names[t] : "?";
}

int hf_kv_type_parse(const char *s)
{
	for (int t = 0; t < HF_KV_COUNT; t++)
		if (!strcasecmp(s, names[t]))
			return t;
	return -1;
}

size_t hf_kv_group(int t, size_t head_dim)
{
	if (t != HF_KV_INT8 && t != HF_KV_Q4)
		return 1;
	return head_dim % 32 == 0 ? 32 : head_dim;
}

int hf_kv_fits(int t, size_t head_dim)
{
	if (t < 0 || t >= HF_KV_COUNT || !head_dim)
		return 0;
	if (t == HF_KV_INT8)
		return head_dim % 4 == 0;
	return t != HF_KV_Q4 || head_dim % 8 == 0;
}

size_t hf_kv_bytes(int t, size_t n, size_t head_dim)
{
	size_t g = hf_kv_group(t, head_dim);

	switch (t) {
	case HF_KV_F16:
	case HF_KV_BF16:
		return n * 2;
	case HF_KV_INT8:
		return n / g * (4 + g);
	case HF_KV_Q4:
		return n / g * (8 + g / 2);
	default:
		return n * 4;
	}
}

/* One group: its scale and the reciprocal the values are rounded by. */
static float group_scale(const float *x, size_t g, float qmax, float *inv)
{
	float amax = 0.0f, s;

	for (size_t i = 0; i < g; i++)
		amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
	s = amax / qmax;
	*inv = s > 0.0f ? 1.0f / s : 0.0f;
	return s;
}

void hf_kv_store(int t, void *dst, const float *x, size_t n,
		 size_t head_dim)
{
	size_t g = hf_kv_group(t, head_dim);
	unsigned char *p = dst;

	switch (t) {
	case HF_KV_F16:
		hf_f32_to_f16_n(dst, x, n);
		return;
	case HF_KV_BF16:
		hf_f32_to_bf16_n(dst, x, n);
		return;
	case HF_KV_INT8:
		for (size_t i0 = 0; i0 < n; i0 += g, p += 4 + g) {
			float inv, s = group_scale(x + i0, g, 127.0f, &inv);

			memcpy(p, &s, 4);
			for (size_t i = 0; i < g; i++)
				p[4 + i] = (unsigned char)(int8_t)
					nearbyintf(x[i0 + i] * inv);
		}
		return;
	case HF_KV_Q4:
		for (size_t i0 = 0; i0 < n; i0 += g, p += 8 + g / 2) {
			float lo = x[i0], hi = x[i0], s, inv;

			for (size_t i = 1; i < g; i++) {
				lo = x[i0 + i] < lo ? x[i0 + i] : lo;
				hi = x[i0 + i] > hi ? x[i0 + i] : hi;
			}
			s = (hi - lo) / 15.0f;
			inv = s > 0.0f ? 1.0f / s : 0.0f;
			memcpy(p, &s, 4);
			memcpy(p + 4, &lo, 4);
			for (size_t i = 0; i < g; i += 2) {
				int a = (int)nearbyintf((x[i0 + i] - lo) * inv);
				int b = (int)nearbyintf((x[i0 + i + 1] - lo) * inv);

				p[8 + i / 2] = (unsigned char)(a | b << 4);
			}
		}
		return;
	default:
		memcpy(dst, x, n * sizeof(float));
	}
}

void hf_kv_load(int t, float *y, const void *src, size_t n,
		size_t head_dim)
{
	size_t g = hf_kv_group(t, head_dim);
	const unsigned char *p = src;

	switch (t) {
	case HF_KV_F16:
		hf_f16_to_f32_n(y, src, n);
		return;
	case HF_KV_BF16:
		hf_bf16_to_f32_n(y, src, n);
		return;
	case HF_KV_INT8:
		for (size_t i0 = 0; i0 < n; i0 += g, p += 4 + g) {
			float s;

			memcpy(&s, p, 4);
			for (size_t i = 0; i < g; i++)
				y[i0 + i] = s * (float)(int8_t)p[4 + i];
		}
		return;
	case HF_KV_Q4:
		for (size_t i0 = 0; i0 < n; i0 += g, p += 8 + g / 2) {
			float s, lo;

			memcpy(&s, p, 4);
			memcpy(&lo, p + 4, 4);
			for (size_t i = 0; i < g; i += 2) {
				y[i0 + i] = lo + s * (float)(p[8 + i / 2] & 15);
				y[i0 + i + 1] = lo + s * (float)(p[8 + i / 2] >> 4);
			}
		}
		return;
	default:
		memcpy(y, src, n * sizeof(float));
	}
}
