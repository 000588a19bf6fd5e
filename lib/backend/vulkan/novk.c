/* lib/backend/vulkan/novk.c: the Vulkan backend's entry points in a build
 * without Vulkan (-Dvulkan=disabled, or no libvulkan-dev/glslc): each says
 * so, so --device vulkan fails with a message rather than a link error. */
#include "backend/vulkan/backend_vk.h"
#include "backend/vulkan/vk.h"

int hf_backend_vulkan_create(struct hf_backend **out, struct hf_err *err)
{
	*out = NULL;
	return hf_err_set(err, HF_EUNSUPPORTED,
			  "vulkan: this hf was built without Vulkan (install libvulkan-dev and glslc, then rebuild with -Dvulkan=enabled)");
}

bool hf_backend_vulkan_has_gpu(void)
{
	return false;
}

struct hf_vk *hf_backend_vulkan_dev(struct hf_backend *be)
{
	return NULL;
}

size_t hf_backend_vulkan_profile(struct hf_backend *be, const char **names,
				 double *ms, size_t n)
{
	return 0;
}

const char *hf_vk_devtype_name(enum hf_vk_devtype t)
{
	return "other";
}

int hf_vk_devices(struct hf_vk_devinfo **out, size_t *n, struct hf_err *err)
{
	*out = NULL;
	*n = 0;
	return hf_err_set(err, HF_EUNSUPPORTED,
			  "vulkan: this hf was built without Vulkan (install libvulkan-dev and glslc, then rebuild with -Dvulkan=enabled)");
}
