/* lib/backend/vulkan/backend_vk.h: the Vulkan implementation of
 * backend/backend.h. Build-independent: without Vulkan in the build the
 * constructor fails with HF_EUNSUPPORTED saying so (novk.c). */
#ifndef HF_BACKEND_VULKAN_BACKEND_VK_H
#define HF_BACKEND_VULKAN_BACKEND_VK_H

#include <stdbool.h>

#include "backend/backend.h"

/* The Vulkan backend on the device hf_vk_open() picks (the best one, or
 * HF_VK_DEVICE=N). Fails naming what is missing: no driver, no device,
 * Vulkan 1.2, a compute queue, or Vulkan left out of this build. */
int hf_backend_vulkan_create(struct hf_backend **out, struct hf_err *err);

/* Whether a Vulkan device that is a real GPU (discrete or integrated, not
 * a CPU driver such as lavapipe) is present: what --device auto asks. */
bool hf_backend_vulkan_has_gpu(void);

/* The device under a Vulkan backend (NULL for any other backend), for
 * profiling: borrowed, valid until hf_backend_free(). */
struct hf_vk *hf_backend_vulkan_dev(struct hf_backend *be);

/* Device time per op code name of the ops run since the last call, summed
 * (timestamp queries); fills at most n entries of names/ms, returns how
 * many. For -v profiling; 0 without timestamps. */
size_t hf_backend_vulkan_profile(struct hf_backend *be, const char **names,
				 double *ms, size_t n);

#endif
