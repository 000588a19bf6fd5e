/* lib/backend/vulkan/device.c: the Vulkan instance (with the validation
 * layer and a messenger that counts its errors), the device list, device
 * selection and the one compute queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_impl.h"
#include "core/log.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const char *vk_result_name(VkResult r)
{
	switch (r) {
	case VK_SUCCESS: return "VK_SUCCESS";
	case VK_NOT_READY: return "VK_NOT_READY";
	case VK_TIMEOUT: return "VK_TIMEOUT";
	case VK_INCOMPLETE: return "VK_INCOMPLETE";
	case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
	case VK_ERROR_OUT_OF_DEVICE_MEMORY:
		return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
	case VK_ERROR_INITIALIZATION_FAILED:
		return "VK_ERROR_INITIALIZATION_FAILED";
	case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
	case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
	case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
	case VK_ERROR_EXTENSION_NOT_PRESENT:
		return "VK_ERROR_EXTENSION_NOT_PRESENT";
	case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
	case VK_ERROR_INCOMPATIBLE_DRIVER:
		return "VK_ERROR_INCOMPATIBLE_DRIVER";
	case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
	case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
	case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
	default: return "VK_ERROR_UNKNOWN";
	}
}

int vk_fail(struct hf_err *err, VkResult r, const char *what)
{
	int code = r == VK_ERROR_OUT_OF_HOST_MEMORY ||
		r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? HF_ENOMEM : HF_EIO;

	return hf_err_set(err, code, "vulkan: %s failed: %s (%d)", what,
			  vk_result_name(r), (int)r);
}

const char *hf_vk_devtype_name(enum hf_vk_devtype t)
{
	switch (t) {
	case HF_VK_DEV_INTEGRATED: return "integrated";
	case HF_VK_DEV_DISCRETE: return "discrete";
	case HF_VK_DEV_VIRTUAL: return "virtual";
	case HF_VK_DEV_CPU: return "cpu";
	default: return "other";
	}
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
	   VkDebugUtilsMessageTypeFlagsEXT type,
	   const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
	struct hf_vk *vk = user;

	if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
		atomic_fetch_add(&vk->validation_errors, 1);
		hf_log_error("vulkan validation: %s", data->pMessage);
	} else if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
		hf_log_warn("vulkan validation: %s", data->pMessage);
	}
	return VK_FALSE;
}

static bool have_layer(const char *name)
{
	uint32_t n = 0;
	VkLayerProperties *l;
	bool found = false;

	if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n)
		return false;
	l = calloc(n, sizeof(*l));
	if (!l)
		return false;
	if (vkEnumerateInstanceLayerProperties(&n, l) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			if (!strcmp(l[i].layerName, name))
				found = true;
	free(l);
	return found;
}

static int make_instance(VkInstance *inst, struct hf_vk *vk, bool validate,
			 struct hf_err *err)
{
	const char *layers[] = { VALIDATION_LAYER };
	const char *exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
	VkApplicationInfo app = {
		.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
		.pApplicationName = "hf",
		.pEngineName = "hf",
		/* 1.2 is what hf needs; 1.3 lets it read 1.3 properties
		 * of devices that have them */
		.apiVersion = VK_API_VERSION_1_3,
	};
	VkDebugUtilsMessengerCreateInfoEXT mci = {
		.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
		.messageSeverity =
			VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
			VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
		.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
			VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
			VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
		.pfnUserCallback = on_message,
		.pUserData = vk,
	};
	VkInstanceCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
		.pApplicationInfo = &app,
	};
	VkResult r;

	if (validate) {
		if (!have_layer(VALIDATION_LAYER))
			return hf_err_set(err, HF_EUNSUPPORTED,
				"vulkan: validation asked for but layer '%s' is not installed (Debian: vulkan-validationlayers)",
				VALIDATION_LAYER);
		ci.enabledLayerCount = 1;
		ci.ppEnabledLayerNames = layers;
		ci.enabledExtensionCount = 1;
		ci.ppEnabledExtensionNames = exts;
		ci.pNext = &mci;
	}
	r = vkCreateInstance(&ci, NULL, inst);
	if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
		return hf_err_set(err, HF_EUNSUPPORTED,
			"vulkan: no Vulkan 1.2 driver found (for a CPU device install mesa-vulkan-drivers)");
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreateInstance");
	if (validate) {
		PFN_vkCreateDebugUtilsMessengerEXT create =
			(PFN_vkCreateDebugUtilsMessengerEXT)
			vkGetInstanceProcAddr(*inst,
					      "vkCreateDebugUtilsMessengerEXT");

		if (!create || (r = create(*inst, &mci, NULL,
					   &vk->messenger)) != VK_SUCCESS) {
			vkDestroyInstance(*inst, NULL);
			*inst = VK_NULL_HANDLE;
			return create ? vk_fail(err, r,
						"vkCreateDebugUtilsMessengerEXT") :
				hf_err_set(err, HF_EUNSUPPORTED,
					   "vulkan: no %s with validation",
					   VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
		}
	}
	return 0;
}

/* The compute queue family: one without graphics when there is one (an
 * async compute queue), else any with compute; -1 if none. */
static int compute_family(VkPhysicalDevice pd, uint32_t *ts_bits)
{
	VkQueueFamilyProperties q[32];
	uint32_t n = 32;
	int best = -1;

	vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
	for (uint32_t i = 0; i < n; i++) {
		if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT))
			continue;
		if (best < 0 || !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
			best = (int)i;
		if (!(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
			break;
	}
	if (best >= 0 && ts_bits)
		*ts_bits = q[best].timestampValidBits;
	return best;
}

static bool has_ext(VkPhysicalDevice pd, const char *name)
{
	uint32_t n = 0;
	VkExtensionProperties *e;
	bool found = false;

	if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) !=
	    VK_SUCCESS)
		return false;
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return false;
	if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) ==
	    VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			if (!strcmp(e[i].extensionName, name))
				found = true;
	free(e);
	return found;
}

static void describe(VkPhysicalDevice pd, struct hf_vk_devinfo *d)
{
	VkPhysicalDeviceSubgroupSizeControlPropertiesEXT ssc = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT,
	};
	VkPhysicalDeviceSubgroupProperties sg = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
	};
	VkPhysicalDeviceDriverProperties drv = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
		.pNext = &sg,
	};
	VkPhysicalDeviceProperties2 p2 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
	};
	VkPhysicalDeviceVulkan11Features f11 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
	};
	VkPhysicalDeviceVulkan12Features f12 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
		.pNext = &f11,
	};
	VkPhysicalDeviceFeatures2 f2 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
		.pNext = &f12,
	};
	VkPhysicalDeviceMemoryProperties mp;
	VkPhysicalDeviceProperties p;
	uint32_t ts = 0;

	memset(d, 0, sizeof(*d));
	vkGetPhysicalDeviceProperties(pd, &p);
	snprintf(d->name, sizeof(d->name), "%s", p.deviceName);
	d->vendor_id = p.vendorID;
	d->device_id = p.deviceID;
	d->api_version = p.apiVersion;
	switch (p.deviceType) {
	case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
		d->type = HF_VK_DEV_INTEGRATED;
		break;
	case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
		d->type = HF_VK_DEV_DISCRETE;
		break;
	case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
		d->type = HF_VK_DEV_VIRTUAL;
		break;
	case VK_PHYSICAL_DEVICE_TYPE_CPU:
		d->type = HF_VK_DEV_CPU;
		break;
	default:
		d->type = HF_VK_DEV_OTHER;
	}
	vkGetPhysicalDeviceMemoryProperties(pd, &mp);
	for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
		if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
			d->device_local_bytes += mp.memoryHeaps[i].size;
	if (p.apiVersion < VK_API_VERSION_1_2)
		return;	/* the 1.1/1.2 queries below need 1.2 */
	p2.pNext = &drv;
	/* core in 1.3 (the instance asks for 1.3), else the extension */
	if (p.apiVersion >= VK_API_VERSION_1_3 ||
	    has_ext(pd, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME))
		sg.pNext = &ssc;
	vkGetPhysicalDeviceProperties2(pd, &p2);
	d->subgroup_min = ssc.minSubgroupSize;
	d->subgroup_max = ssc.maxSubgroupSize;
	snprintf(d->driver, sizeof(d->driver), "%.120s %.120s",
		 drv.driverName, drv.driverInfo);
	d->subgroup_size = sg.subgroupSize;
	d->subgroup_arith =
		(sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
		(sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
		(sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
	vkGetPhysicalDeviceFeatures2(pd, &f2);
	d->fp16 = f12.shaderFloat16;
	d->storage16 = f11.storageBuffer16BitAccess;
	d->coopmat = has_ext(pd, "VK_KHR_cooperative_matrix");
	d->usable = compute_family(pd, &ts) >= 0;
	d->timestamps = d->usable && ts > 0 &&
		p.limits.timestampComputeAndGraphics;
}

static int list(VkInstance inst, VkPhysicalDevice **pds, uint32_t *n,
		struct hf_err *err)
{
	VkResult r = vkEnumeratePhysicalDevices(inst, n, NULL);

	*pds = NULL;
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkEnumeratePhysicalDevices");
	if (!*n)
		return 0;
	*pds = calloc(*n, sizeof(**pds));
	if (!*pds)
		return hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
	r = vkEnumeratePhysicalDevices(inst, n, *pds);
	if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
		free(*pds);
		*pds = NULL;
		return vk_fail(err, r, "vkEnumeratePhysicalDevices");
	}
	return 0;
}

int hf_vk_devices(struct hf_vk_devinfo **out, size_t *n, struct hf_err *err)
{
	VkInstance inst = VK_NULL_HANDLE;
	VkPhysicalDevice *pds = NULL;
	uint32_t np = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = make_instance(&inst, NULL, false, err);
	if (rc)
		return rc;
	rc = list(inst, &pds, &np, err);
	if (!rc && np) {
		*out = calloc(np, sizeof(**out));
		if (!*out) {
			rc = hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
		} else {
			for (uint32_t i = 0; i < np; i++)
				describe(pds[i], &(*out)[i]);
			*n = np;
		}
	}
	free(pds);
	vkDestroyInstance(inst, NULL);
	return rc;
}

static int rank(const struct hf_vk_devinfo *d)
{
	switch (d->type) {
	case HF_VK_DEV_DISCRETE: return 5;
	case HF_VK_DEV_INTEGRATED: return 4;
	case HF_VK_DEV_VIRTUAL: return 3;
	case HF_VK_DEV_CPU: return 2;
	default: return 1;
	}
}

/* Index into pds of the device to use, or -1 with err set. */
static int choose(VkPhysicalDevice *pds, uint32_t n, int want,
		  struct hf_vk_devinfo *info, struct hf_err *err)
{
	const char *env = getenv("HF_VK_DEVICE");
	int best = -1, best_rank = 0;

	if (!n) {
		hf_err_set(err, HF_ENOTFOUND,
			   "vulkan: no Vulkan device found (for a CPU device install mesa-vulkan-drivers)");
		return -1;
	}
	if (!want && env && *env) {
		char *end;
		long v = strtol(env, &end, 10);

		if (*end || v < 0 || v >= (long)n) {
			hf_err_set(err, HF_EINVAL,
				   "vulkan: HF_VK_DEVICE='%s' is not a device index (0..%u)",
				   env, n - 1);
			return -1;
		}
		want = (int)v + 1;
	}
	if (want) {
		if (want < 0 || (uint32_t)want > n) {
			hf_err_set(err, HF_EINVAL,
				   "vulkan: device %d does not exist (0..%u)",
				   want - 1, n - 1);
			return -1;
		}
		describe(pds[want - 1], info);
		if (info->api_version < VK_API_VERSION_1_2 || !info->usable) {
			hf_err_set(err, HF_EUNSUPPORTED,
				   "vulkan: device %d '%s' lacks %s", want - 1,
				   info->name,
				   info->api_version < VK_API_VERSION_1_2 ?
				   "Vulkan 1.2" : "a compute queue");
			return -1;
		}
		return want - 1;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct hf_vk_devinfo d;

		describe(pds[i], &d);
		if (d.api_version < VK_API_VERSION_1_2 || !d.usable)
			continue;
		if (rank(&d) > best_rank) {
			best = (int)i;
			best_rank = rank(&d);
			*info = d;
		}
	}
	if (best < 0)
		hf_err_set(err, HF_EUNSUPPORTED,
			   "vulkan: none of the %u Vulkan devices has Vulkan 1.2 and a compute queue",
			   n);
	return best;
}

static int make_device(struct hf_vk *vk, struct hf_err *err)
{
	const float prio = 1.0f;
	VkDeviceQueueCreateInfo q = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
		.queueFamilyIndex = vk->qfam,
		.queueCount = 1,
		.pQueuePriorities = &prio,
	};
	/* float16 arithmetic only when the *_hmul shaders will run: a
	 * shader declaring Float16 needs the feature enabled */
	VkPhysicalDeviceVulkan12Features f12 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
		.shaderFloat16 = vk->f16_arith,
	};
	VkDeviceCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
		.pNext = vk->f16_arith ? &f12 : NULL,
		.queueCreateInfoCount = 1,
		.pQueueCreateInfos = &q,
	};
	VkResult r;

	/* The slot for cooperative matrices: where info.coopmat, a
	 * matmul kernel on VK_KHR_cooperative_matrix would enable the
	 * extension and its feature here and be chosen in ops.c's
	 * hf_vk_op_matmul_kernel (see shaders/matmul.comp). */
	r = vkCreateDevice(vk->phys, &ci, NULL, &vk->dev);

	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreateDevice");
	vkGetDeviceQueue(vk->dev, vk->qfam, 0, &vk->queue);
	return 0;
}

static bool env_on(const char *name)
{
	const char *e = getenv(name);

	return e && *e && strcmp(e, "0");
}

int hf_vk_open(struct hf_vk **out, const struct hf_vk_opts *opts,
	       struct hf_err *err)
{
	static const struct hf_vk_opts defaults;
	const struct hf_vk_opts *o = opts ? opts : &defaults;
	VkPhysicalDevice *pds = NULL;
	struct hf_vk *vk;
	uint32_t np = 0;
	int rc, idx;

	*out = NULL;
	vk = calloc(1, sizeof(*vk));
	if (!vk)
		return hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
	atomic_init(&vk->validation_errors, 0);
	vk->validate = o->validate || env_on("HF_VK_VALIDATE");
#ifdef HF_VK_DEBUG
	vk->validate = true;
#endif
	rc = make_instance(&vk->inst, vk, vk->validate, err);
	if (rc)
		goto fail;
	rc = list(vk->inst, &pds, &np, err);
	if (rc)
		goto fail;
	idx = choose(pds, np, o->device, &vk->info, err);
	if (idx < 0) {
		rc = err ? err->code : HF_ENOTFOUND;
		goto fail;
	}
	vk->phys = pds[idx];
	vk->qfam = (uint32_t)compute_family(vk->phys, &vk->ts_bits);
	vkGetPhysicalDeviceProperties(vk->phys, &vk->props);
	vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->memprops);
	if (!vk->info.timestamps)
		vk->ts_bits = 0;
	vk->subgroups = vk->info.subgroup_arith && !o->no_subgroups &&
		!env_on("HF_VK_NO_SUBGROUPS");
	vk->rows_attention = vk->subgroups && !o->wg_attention;
	vk->f16_arith = vk->info.fp16 &&
		(o->f16_arith > 0 || (!o->f16_arith && env_on("HF_VK_F16")));
	if (vk->props.limits.maxPushConstantsSize < VK_PC_BYTES) {
		rc = hf_err_set(err, HF_EUNSUPPORTED,
				"vulkan: '%s' has %u bytes of push constants, %d needed",
				vk->info.name,
				vk->props.limits.maxPushConstantsSize,
				VK_PC_BYTES);
		goto fail;
	}
	if (vk->props.limits.maxPerStageDescriptorStorageBuffers < VK_NBIND) {
		rc = hf_err_set(err, HF_EUNSUPPORTED,
				"vulkan: '%s' binds %u storage buffers per stage, %d needed",
				vk->info.name,
				vk->props.limits.maxPerStageDescriptorStorageBuffers,
				VK_NBIND);
		goto fail;
	}
	rc = make_device(vk, err);
	if (rc)
		goto fail;
	rc = vk_mem_init(vk, o, err);
	if (rc)
		goto fail;
	rc = vk_pipe_init(vk, o->cache_dir, err);
	if (rc)
		goto fail;
	hf_log_debug("vulkan: using '%s' (%s, subgroup %u%s%s%s%s)",
		     vk->info.name, hf_vk_devtype_name(vk->info.type),
		     vk->info.subgroup_size,
		     vk->subgroups ? ", subgroup ops" : "",
		     vk->f16_arith ? ", f16 products" : "",
		     vk->info.coopmat ? ", cooperative matrix (unused)" : "",
		     vk->validate ? ", validation" : "");
	free(pds);
	*out = vk;
	return 0;
fail:
	free(pds);
	hf_vk_free(vk);
	return rc;
}

void hf_vk_free(struct hf_vk *vk)
{
	if (!vk)
		return;
	if (vk->dev) {
		vkDeviceWaitIdle(vk->dev);
		vk_pipe_free(vk);
		vk_mem_free(vk);
		vkDestroyDevice(vk->dev, NULL);
	}
	if (vk->messenger) {
		PFN_vkDestroyDebugUtilsMessengerEXT destroy =
			(PFN_vkDestroyDebugUtilsMessengerEXT)
			vkGetInstanceProcAddr(vk->inst,
					      "vkDestroyDebugUtilsMessengerEXT");

		if (destroy)
			destroy(vk->inst, vk->messenger, NULL);
	}
	if (vk->inst)
		vkDestroyInstance(vk->inst, NULL);
	free(vk);
}

const struct hf_vk_devinfo *hf_vk_info(const struct hf_vk *vk)
{
	return &vk->info;
}

unsigned hf_vk_validation_errors(const struct hf_vk *vk)
{
	return atomic_load(&((struct hf_vk *)vk)->validation_errors);
}

bool hf_vk_f16_arith(const struct hf_vk *vk)
{
	return vk->f16_arith;
}

bool hf_vk_validating(const struct hf_vk *vk)
{
	return vk->validate;
}
