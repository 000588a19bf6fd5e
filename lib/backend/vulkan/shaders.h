/* lib/backend/vulkan/shaders.h: the SPIR-V embedded in libhf, one entry per
 * shader variant (shaders/meson.build lists them; shaders.c is generated). */
#ifndef HF_BACKEND_VULKAN_SHADERS_H
#define HF_BACKEND_VULKAN_SHADERS_H

#include <stddef.h>
#include <stdint.h>

struct hf_vk_spirv {
	const char *name;	/* "matvec_f16_sg" */
	const uint32_t *code;
	size_t size;		/* bytes */
};

/* Borrowed, static; NULL if no variant has that name. */
const struct hf_vk_spirv *hf_vk_spirv_find(const char *name);

#endif
