/* test/unit/vulkan/vkt.h: what the Vulkan tests share: a device opened
 * with the validation layer on (a test fails on any validation error),
 * buffer helpers, random data and comparisons that print the first
 * mismatch. Included by one test file each. */
#ifndef HF_TEST_VKT_H
#define HF_TEST_VKT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/vulkan/vk.h"
#include "core/err.h"

/* A scratch directory for the pipeline cache, so tests never write to
 * the user's ~/.cache. */
static char vkt_dir[64];

static inline const char *vkt_cache_dir(void)
{
	if (!vkt_dir[0]) {
		snprintf(vkt_dir, sizeof(vkt_dir), "/tmp/hf-vk-test-XXXXXX");
		if (!mkdtemp(vkt_dir))
			fail_msg("mkdtemp failed");
	}
	return vkt_dir;
}

/* The validation layer with synchronization validation too: a missing
 * barrier between two dispatches is an error like any other. */
static inline void vkt_env(void)
{
	setenv("VK_LAYER_ENABLES",
	       "VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT", 0);
}

static inline struct hf_vk *vkt_open_with(struct hf_vk_opts o)
{
	struct hf_err err = { 0 };
	struct hf_vk *vk = NULL;

	vkt_env();
	o.validate = true;
	if (!o.cache_dir)
		o.cache_dir = vkt_cache_dir();
	if (hf_vk_open(&vk, &o, &err))
		fail_msg("hf_vk_open: %s", err.msg);
	return vk;
}

static inline struct hf_vk *vkt_open(void)
{
	struct hf_vk_opts o = { 0 };

	return vkt_open_with(o);
}

static inline void vkt_close(struct hf_vk *vk)
{
	unsigned n = hf_vk_validation_errors(vk);

	hf_vk_free(vk);
	if (n)
		fail_msg("%u validation errors (see stderr)", n);
}

/* call must take &err as its last argument, named err. */
#define VKT_CHECK(expr) do { \
	struct hf_err err = { 0 }; \
	if ((expr) != 0) \
		fail_msg("%s:%d: %s", __FILE__, __LINE__, err.msg); \
} while (0)

static inline struct hf_vk_buf *vkt_buf(struct hf_vk *vk, const void *data,
				 size_t bytes)
{
	struct hf_err err = { 0 };
	struct hf_vk_buf *b;

	if (hf_vk_buf_alloc(vk, &b, bytes, &err))
		fail_msg("alloc %zu: %s", bytes, err.msg);
	if (data && hf_vk_upload(vk, b, 0, data, bytes, &err))
		fail_msg("upload: %s", err.msg);
	return b;
}

static inline void vkt_get(struct hf_vk *vk, void *dst, const struct hf_vk_buf *b,
		    size_t bytes)
{
	struct hf_err err = { 0 };

	if (hf_vk_download(vk, dst, b, 0, bytes, &err))
		fail_msg("download: %s", err.msg);
}

/* xorshift: the same inputs on every run. */
static uint32_t vkt_rng = 0x9e3779b9u;

static inline float vkt_uniform(float lo, float hi)
{
	vkt_rng ^= vkt_rng << 13;
	vkt_rng ^= vkt_rng >> 17;
	vkt_rng ^= vkt_rng << 5;
	return lo + (hi - lo) * (float)(vkt_rng >> 8) / 16777216.0f;
}

static inline float *vkt_rand(size_t n, float lo, float hi)
{
	float *p = malloc((n ? n : 1) * sizeof(*p));

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = vkt_uniform(lo, hi);
	return p;
}

/* |got - want| <= atol + rtol * |want| everywhere, else fail naming the
 * first index that is not. */
static inline void vkt_close_to(const char *what, const float *got,
			 const float *want, size_t n, double atol, double rtol)
{
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);

		if (!(d <= atol + rtol * fabs(want[i])))
			fail_msg("%s: index %zu: got %.9g, want %.9g (|diff| %.3g)",
				 what, i, got[i], want[i], d);
	}
}

#endif
