/* lib/backend/vulkan/vk_impl.h: the state behind vk.h, shared by the files
 * of lib/backend/vulkan (and by its tests, which poke at the device). */
#ifndef HF_BACKEND_VULKAN_VK_IMPL_H
#define HF_BACKEND_VULKAN_VK_IMPL_H

#include <stdatomic.h>
#include <vulkan/vulkan.h>

#include "backend/vulkan/vk.h"

/* Storage-buffer bindings every pipeline declares (unused ones get a small
 * dummy buffer), and the push-constant bytes every pipeline layout has. */
#define VK_NBIND 9	/* shaders/pc.h HF_PC_NBIND */
#define VK_PC_BYTES 128
/* Spec constants a pipeline may set (constant_id 0 .. VK_NSPEC - 1). */
#define VK_NSPEC 6

/* A block of device memory with one VkBuffer over all of it, carved into
 * hf_vk_bufs; free ranges kept sorted by offset and merged on free. */
struct vk_range {
	VkDeviceSize off, size;
};

struct vk_chunk {
	VkDeviceMemory mem;
	VkBuffer buf;
	VkDeviceSize size;
	void *map;		/* host pointer when mapped (UMA), else NULL */
	struct vk_range *free;
	size_t nfree, capfree;
	size_t nlive;
	struct vk_chunk *next;
};

/* A buffer, or a view of one: descriptors always bind the whole root
 * range [off, off + span) of the chunk (aligned), and a view's voff
 * reaches shaders as an element offset in the push constants. */
struct hf_vk_buf {
	struct hf_vk *vk;
	struct vk_chunk *chunk;
	VkDeviceSize off;	/* root's offset in the chunk, aligned */
	VkDeviceSize span;	/* root's bytes reserved (size rounded up) */
	size_t size;		/* bytes of this buffer or view */
	size_t voff;		/* bytes from the root's start (views) */
	bool view;
};

struct vk_pipe {
	const char *name;	/* static, from the shader table */
	uint32_t spec[VK_NSPEC];
	uint32_t nspec;
	VkPipeline pipe;
};

struct hf_vk {
	VkInstance inst;
	VkDebugUtilsMessengerEXT messenger;
	VkPhysicalDevice phys;
	VkDevice dev;
	VkQueue queue;
	uint32_t qfam;
	struct hf_vk_devinfo info;
	VkPhysicalDeviceProperties props;
	VkPhysicalDeviceMemoryProperties memprops;
	atomic_uint validation_errors;
	bool validate;
	bool subgroups;		/* the _sg variants are used */
	bool rows_attention;	/* attention_f32_rows may be used */
	bool f16_arith;		/* the *_hmul variants are used (and
				 * shaderFloat16 enabled on the device) */
	uint32_t ts_bits;	/* timestampValidBits; 0: no timestamps */

	/* memory (mem.c) */
	VkDeviceSize align;
	VkDeviceSize max_range;	/* bytes one binding may span, aligned */
	VkDeviceSize chunk_bytes;
	uint32_t dev_type;	/* memory type of the chunks */
	bool mapped;		/* chunks are host-visible and mapped */
	struct vk_chunk *chunks;
	size_t held, used;

	/* staging ring and transfer commands (mem.c) */
	VkBuffer stage_buf;
	VkDeviceMemory stage_mem;
	unsigned char *stage_map;
	VkDeviceSize stage_size, stage_head;
	VkCommandPool cmd_pool;
	VkCommandBuffer xfer_cb;
	VkFence xfer_fence;
	bool xfer_open;

	/* pipelines (pipeline.c) */
	VkDescriptorSetLayout dsl;
	VkPipelineLayout layout;
	VkPipelineCache cache;
	char *cache_path;	/* NULL: not saved */
	size_t cache_loaded;	/* bytes of it accepted at open */
	struct vk_pipe *pipes;
	size_t npipes, cappipes;
	struct hf_vk_buf *dummy;
};

/* "<what> failed: VK_ERROR_..." into err; returns HF_EIO (HF_ENOMEM for the
 * out-of-memory results). */
int vk_fail(struct hf_err *err, VkResult r, const char *what);
const char *vk_result_name(VkResult r);

/* mem.c */
int vk_mem_init(struct hf_vk *vk, const struct hf_vk_opts *o,
		struct hf_err *err);
void vk_mem_free(struct hf_vk *vk);

/* pipeline.c */
int vk_pipe_init(struct hf_vk *vk, const char *cache_dir, struct hf_err *err);
void vk_pipe_free(struct hf_vk *vk);
/* The pipeline of shader variant name with spec constants spec[0..n). */
int vk_pipe_get(struct hf_vk *vk, VkPipeline *out, const char **static_name,
		const char *name, const uint32_t *spec, uint32_t nspec,
		struct hf_err *err);

/* A buffer bound to a shader, read in elements of elt bytes. */
struct vk_arg {
	const struct hf_vk_buf *buf;	/* NULL: the dummy */
	uint32_t elt;
};

/* seq.c: one dispatch of a compute shader with args at bindings 0..,
 * push constants { element offsets of the args[VK_NBIND], pc },
 * groups * gz workgroups (groups split over x and y past the limit). */
int vk_dispatch(struct hf_vk_seq *s, const char *shader, const uint32_t *spec,
		uint32_t nspec, const struct vk_arg *args, uint32_t nargs,
		const void *pc, size_t pcsize, uint32_t groups, uint32_t gz,
		struct hf_err *err);
/* The device a sequence records for. */
struct hf_vk *vk_seq_dev(struct hf_vk_seq *s);

#endif
