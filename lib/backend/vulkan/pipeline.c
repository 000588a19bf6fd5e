/* lib/backend/vulkan/pipeline.c: compute pipelines, made on first use per
 * (shader variant, specialisation constants) and kept; one descriptor set
 * layout (VK_NBIND storage buffers) and one pipeline layout for all; a
 * VkPipelineCache loaded from and saved to disk, so the driver compiles
 * each shader once per machine rather than once per run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/vulkan/shaders.h"
#include "backend/vulkan/vk_impl.h"
#include "core/file.h"
#include "core/log.h"

/* mkdir -p; 0 or -1 with errno. */
static int make_dirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, 0755) && errno != EEXIST)
		return -1;
	return 0;
}

/* The cache file for this device, malloc'd; NULL when there is no place. */
static char *cache_file(const struct hf_vk *vk, const char *dir)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char *path;
	size_t n;

	if (dir && !*dir)
		return NULL;
	n = (dir ? strlen(dir) : xdg && *xdg ? strlen(xdg) :
	     home ? strlen(home) + 7 : 0) + 64;
	if (!dir && !(xdg && *xdg) && !home)
		return NULL;
	path = malloc(n);
	if (!path)
		return NULL;
	if (dir)
		snprintf(path, n, "%s", dir);
	else if (xdg && *xdg)
		snprintf(path, n, "%s/hf", xdg);
	else
		snprintf(path, n, "%s/.cache/hf", home);
	snprintf(path + strlen(path), n - strlen(path),
		 "/vk-pipelines-%04x-%04x.bin", vk->info.vendor_id,
		 vk->info.device_id);
	return path;
}

/* Initial data for the cache if the file matches this device and driver:
 * the header (Vulkan spec, "Pipeline Cache") carries the pipeline cache
 * UUID, which changes with the driver build. */
static void *cache_load(const struct hf_vk *vk, const char *path,
			size_t *len)
{
	struct hf_err err = { 0 };
	char *data = NULL;
	uint32_t h[4];

	*len = 0;
	if (!path || !hf_file_exists(path) ||
	    hf_file_read(&data, len, path, &err))
		return NULL;
	if (*len < 16 + VK_UUID_SIZE)
		goto stale;
	memcpy(h, data, sizeof(h));
	if (h[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE ||
	    h[2] != vk->props.vendorID || h[3] != vk->props.deviceID ||
	    memcmp(data + 16, vk->props.pipelineCacheUUID, VK_UUID_SIZE))
		goto stale;
	hf_log_debug("vulkan: pipeline cache '%s' (%zu bytes)", path, *len);
	return data;
stale:
	hf_log_debug("vulkan: pipeline cache '%s' is for another driver", path);
	free(data);
	*len = 0;
	return NULL;
}

/* Write the cache through a temporary name; failures are only logged
 * (a missing cache costs time, not correctness). */
static void cache_save(struct hf_vk *vk)
{
	struct hf_atomic a = { 0 };
	struct hf_err err = { 0 };
	size_t len = 0;
	char *dir, *slash;
	void *data;

	if (!vk->cache_path || !vk->cache)
		return;
	if (vkGetPipelineCacheData(vk->dev, vk->cache, &len, NULL) !=
	    VK_SUCCESS || !len)
		return;
	data = malloc(len);
	if (!data)
		return;
	if (vkGetPipelineCacheData(vk->dev, vk->cache, &len, data) !=
	    VK_SUCCESS)
		goto out;
	dir = strdup(vk->cache_path);
	if (!dir)
		goto out;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (make_dirs(dir))
			hf_log_warn("vulkan: cannot make '%s' for the pipeline cache: %s",
				    dir, strerror(errno));
	}
	free(dir);
	if (hf_atomic_open(&a, vk->cache_path, &err) ||
	    fwrite(data, 1, len, a.f) != len ||
	    hf_atomic_commit(&a, &err)) {
		hf_atomic_abort(&a);
		hf_log_warn("vulkan: pipeline cache not saved: %s",
			    err.msg[0] ? err.msg : vk->cache_path);
	}
out:
	free(data);
}

int vk_pipe_init(struct hf_vk *vk, const char *cache_dir, struct hf_err *err)
{
	VkDescriptorSetLayoutBinding b[VK_NBIND];
	VkDescriptorSetLayoutCreateInfo dci = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
		.bindingCount = VK_NBIND,
		.pBindings = b,
	};
	VkPushConstantRange pcr = {
		.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		.size = VK_PC_BYTES,
	};
	VkPipelineLayoutCreateInfo lci = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
		.setLayoutCount = 1,
		.pSetLayouts = &vk->dsl,
		.pushConstantRangeCount = 1,
		.pPushConstantRanges = &pcr,
	};
	VkPipelineCacheCreateInfo cci = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
	};
	void *data;
	size_t len;
	VkResult r;

	for (uint32_t i = 0; i < VK_NBIND; i++)
		b[i] = (VkDescriptorSetLayoutBinding){
			.binding = i,
			.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
			.descriptorCount = 1,
			.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		};
	r = vkCreateDescriptorSetLayout(vk->dev, &dci, NULL, &vk->dsl);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreateDescriptorSetLayout");
	r = vkCreatePipelineLayout(vk->dev, &lci, NULL, &vk->layout);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreatePipelineLayout");
	vk->cache_path = cache_file(vk, cache_dir);
	data = cache_load(vk, vk->cache_path, &len);
	vk->cache_loaded = len;
	cci.initialDataSize = len;
	cci.pInitialData = data;
	r = vkCreatePipelineCache(vk->dev, &cci, NULL, &vk->cache);
	free(data);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreatePipelineCache");
	return 0;
}

void vk_pipe_free(struct hf_vk *vk)
{
	for (size_t i = 0; i < vk->npipes; i++)
		vkDestroyPipeline(vk->dev, vk->pipes[i].pipe, NULL);
	free(vk->pipes);
	vk->pipes = NULL;
	vk->npipes = 0;
	cache_save(vk);
	if (vk->cache)
		vkDestroyPipelineCache(vk->dev, vk->cache, NULL);
	free(vk->cache_path);
	if (vk->layout)
		vkDestroyPipelineLayout(vk->dev, vk->layout, NULL);
	if (vk->dsl)
		vkDestroyDescriptorSetLayout(vk->dev, vk->dsl, NULL);
}

static int make_pipe(struct hf_vk *vk, const struct hf_vk_spirv *sp,
		     const uint32_t *spec, uint32_t nspec, VkPipeline *out,
		     struct hf_err *err)
{
	VkSpecializationMapEntry me[VK_NSPEC];
	VkSpecializationInfo si = {
		.mapEntryCount = nspec,
		.pMapEntries = me,
		.dataSize = nspec * sizeof(uint32_t),
		.pData = spec,
	};
	VkShaderModuleCreateInfo mci = {
		.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
		.codeSize = sp->size,
		.pCode = sp->code,
	};
	VkComputePipelineCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
		.stage = {
			.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
			.stage = VK_SHADER_STAGE_COMPUTE_BIT,
			.pName = "main",
			.pSpecializationInfo = nspec ? &si : NULL,
		},
		.layout = vk->layout,
	};
	VkShaderModule mod;
	VkResult r;

	for (uint32_t i = 0; i < nspec; i++)
		me[i] = (VkSpecializationMapEntry){ i, i * 4, 4 };
	r = vkCreateShaderModule(vk->dev, &mci, NULL, &mod);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreateShaderModule");
	ci.stage.module = mod;
	r = vkCreateComputePipelines(vk->dev, vk->cache, 1, &ci, NULL, out);
	vkDestroyShaderModule(vk->dev, mod, NULL);
	if (r != VK_SUCCESS) {
		vk_fail(err, r, "vkCreateComputePipelines");
		return hf_err_prefix(err, "shader '%s'", sp->name);
	}
	return 0;
}

int vk_pipe_get(struct hf_vk *vk, VkPipeline *out, const char **static_name,
		const char *name, const uint32_t *spec, uint32_t nspec,
		struct hf_err *err)
{
	const struct hf_vk_spirv *sp;
	struct vk_pipe *p;
	int rc;

	if (nspec > VK_NSPEC)
		return hf_err_set(err, HF_EINTERNAL,
				  "vulkan: shader '%s' given %u spec constants",
				  name, nspec);
	for (size_t i = 0; i < vk->npipes; i++) {
		p = &vk->pipes[i];
		if (p->nspec == nspec && !strcmp(p->name, name) &&
		    !memcmp(p->spec, spec, nspec * sizeof(*spec))) {
			*out = p->pipe;
			*static_name = p->name;
			return 0;
		}
	}
	sp = hf_vk_spirv_find(name);
	if (!sp)
		return hf_err_set(err, HF_EINTERNAL,
				  "vulkan: no shader variant '%s' in libhf", name);
	if (vk->npipes == vk->cappipes) {
		size_t cap = vk->cappipes ? 2 * vk->cappipes : 32;

		p = realloc(vk->pipes, cap * sizeof(*p));
		if (!p)
			return hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
		vk->pipes = p;
		vk->cappipes = cap;
	}
	p = &vk->pipes[vk->npipes];
	memset(p, 0, sizeof(*p));
	rc = make_pipe(vk, sp, spec, nspec, &p->pipe, err);
	if (rc)
		return rc;
	p->name = sp->name;
	memcpy(p->spec, spec, nspec * sizeof(*spec));
	p->nspec = nspec;
	vk->npipes++;
	*out = p->pipe;
	*static_name = p->name;
	return 0;
}
