/* lib/backend/vulkan/mem.c: device memory. Buffers are suballocated from
 * large blocks (one VkDeviceMemory and one VkBuffer each, first fit,
 * neighbours merged on free), so a model with hundreds of tensors makes a
 * handful of allocations. Host data goes through a host-visible staging
 * ring, copies batched into one command buffer until the ring fills; on
 * unified memory (integrated GPUs, lavapipe) the blocks are mapped and
 * uploads are plain memcpy. */
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_impl.h"
#include "core/log.h"

#define DEFAULT_CHUNK ((size_t)256 << 20)
#define DEFAULT_STAGING ((size_t)64 << 20)

static VkDeviceSize round_up(VkDeviceSize v, VkDeviceSize a)
{
	return (v + a - 1) / a * a;
}

/* A memory type in bits with all of want, or -1. */
static int find_type(const struct hf_vk *vk, uint32_t bits,
		     VkMemoryPropertyFlags want)
{
	for (uint32_t i = 0; i < vk->memprops.memoryTypeCount; i++)
		if ((bits & (1u << i)) &&
		    (vk->memprops.memoryTypes[i].propertyFlags & want) == want)
			return (int)i;
	return -1;
}

static const VkBufferUsageFlags usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
	VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

/* A buffer of size bytes bound to fresh memory of a type with flags want
 * (type < 0: pick). */
static int make_buffer(struct hf_vk *vk, VkDeviceSize size,
		       VkMemoryPropertyFlags want, int type, VkBuffer *buf,
		       VkDeviceMemory *mem, struct hf_err *err)
{
	VkBufferCreateInfo bci = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = size,
		.usage = usage,
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VkMemoryRequirements req;
	VkMemoryAllocateInfo ai = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
	};
	VkResult r;

	*buf = VK_NULL_HANDLE;
	*mem = VK_NULL_HANDLE;
	r = vkCreateBuffer(vk->dev, &bci, NULL, buf);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreateBuffer");
	vkGetBufferMemoryRequirements(vk->dev, *buf, &req);
	if (type < 0)
		type = find_type(vk, req.memoryTypeBits, want);
	if (type < 0 || !(req.memoryTypeBits & (1u << type))) {
		vkDestroyBuffer(vk->dev, *buf, NULL);
		*buf = VK_NULL_HANDLE;
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: '%s' has no memory type for storage buffers with flags 0x%x",
				  vk->info.name, (unsigned)want);
	}
	ai.allocationSize = req.size;
	ai.memoryTypeIndex = (uint32_t)type;
	r = vkAllocateMemory(vk->dev, &ai, NULL, mem);
	if (r != VK_SUCCESS) {
		vkDestroyBuffer(vk->dev, *buf, NULL);
		*buf = VK_NULL_HANDLE;
		hf_err_set(err, r == VK_ERROR_OUT_OF_DEVICE_MEMORY ||
			   r == VK_ERROR_OUT_OF_HOST_MEMORY ? HF_ENOMEM : HF_EIO,
			   "vulkan: cannot allocate %llu bytes of device memory on '%s': %s",
			   (unsigned long long)req.size, vk->info.name,
			   vk_result_name(r));
		return err ? err->code : HF_ENOMEM;
	}
	r = vkBindBufferMemory(vk->dev, *buf, *mem, 0);
	if (r != VK_SUCCESS) {
		vkFreeMemory(vk->dev, *mem, NULL);
		vkDestroyBuffer(vk->dev, *buf, NULL);
		*buf = VK_NULL_HANDLE;
		*mem = VK_NULL_HANDLE;
		return vk_fail(err, r, "vkBindBufferMemory");
	}
	return 0;
}

static void chunk_free(struct hf_vk *vk, struct vk_chunk *c)
{
	if (c->map)
		vkUnmapMemory(vk->dev, c->mem);
	vkDestroyBuffer(vk->dev, c->buf, NULL);
	vkFreeMemory(vk->dev, c->mem, NULL);
	vk->held -= c->size;
	free(c->free);
	free(c);
}

static int chunk_new(struct hf_vk *vk, VkDeviceSize size,
		     struct vk_chunk **out, struct hf_err *err)
{
	struct vk_chunk *c = calloc(1, sizeof(*c));
	VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
	VkResult r;
	int rc;

	if (!c)
		return hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
	rc = make_buffer(vk, size, want, (int)vk->dev_type, &c->buf, &c->mem,
			 err);
	if (rc) {
		free(c);
		return rc;
	}
	c->size = size;
	if (vk->mapped) {
		r = vkMapMemory(vk->dev, c->mem, 0, VK_WHOLE_SIZE, 0, &c->map);
		if (r != VK_SUCCESS) {
			c->map = NULL;
			vk->held += size;
			chunk_free(vk, c);
			return vk_fail(err, r, "vkMapMemory");
		}
	}
	c->free = malloc(sizeof(*c->free) * 4);
	if (!c->free) {
		vk->held += size;
		chunk_free(vk, c);
		return hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
	}
	c->capfree = 4;
	c->nfree = 1;
	c->free[0] = (struct vk_range){ 0, size };
	vk->held += size;
	c->next = vk->chunks;
	vk->chunks = c;
	*out = c;
	return 0;
}

/* First fit in c; on success *off is set and the range taken. */
static bool take(struct vk_chunk *c, VkDeviceSize span, VkDeviceSize *off)
{
	for (size_t i = 0; i < c->nfree; i++) {
		struct vk_range *f = &c->free[i];

		if (f->size < span)
			continue;
		*off = f->off;
		f->off += span;
		f->size -= span;
		if (!f->size) {
			memmove(f, f + 1, (c->nfree - i - 1) * sizeof(*f));
			c->nfree--;
		}
		return true;
	}
	return false;
}

/* Put [off, off + span) back, merging with its neighbours. */
static int give(struct vk_chunk *c, VkDeviceSize off, VkDeviceSize span)
{
	size_t i = 0;

	while (i < c->nfree && c->free[i].off < off)
		i++;
	if (i > 0 && c->free[i - 1].off + c->free[i - 1].size == off) {
		c->free[i - 1].size += span;
		if (i < c->nfree && off + span == c->free[i].off) {
			c->free[i - 1].size += c->free[i].size;
			memmove(&c->free[i], &c->free[i + 1],
				(c->nfree - i - 1) * sizeof(c->free[0]));
			c->nfree--;
		}
		return 0;
	}
	if (i < c->nfree && off + span == c->free[i].off) {
		c->free[i].off = off;
		c->free[i].size += span;
		return 0;
	}
	if (c->nfree == c->capfree) {
		struct vk_range *f = realloc(c->free,
					     2 * c->capfree * sizeof(*f));

		if (!f)
			return -1;	/* the range leaks until the chunk goes */
		c->free = f;
		c->capfree *= 2;
	}
	memmove(&c->free[i + 1], &c->free[i],
		(c->nfree - i) * sizeof(c->free[0]));
	c->free[i] = (struct vk_range){ off, span };
	c->nfree++;
	return 0;
}

int hf_vk_buf_alloc(struct hf_vk *vk, struct hf_vk_buf **out, size_t bytes,
		    struct hf_err *err)
{
	VkDeviceSize span = round_up(bytes ? bytes : 1, vk->align), off = 0;
	struct hf_vk_buf *b;
	struct vk_chunk *c;
	int rc;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
	for (c = vk->chunks; c; c = c->next)
		if (take(c, span, &off))
			break;
	if (!c) {
		/* big buffers get a block of their own */
		rc = chunk_new(vk, span > vk->chunk_bytes ? span :
			       vk->chunk_bytes, &c, err);
		if (rc) {
			free(b);
			return rc;
		}
		take(c, span, &off);
	}
	c->nlive++;
	vk->used += span;
	b->vk = vk;
	b->chunk = c;
	b->off = off;
	b->span = span;
	b->size = bytes;
	*out = b;
	return 0;
}

int hf_vk_buf_view(struct hf_vk_buf **out, struct hf_vk_buf *b, size_t off,
		   size_t bytes, struct hf_err *err)
{
	struct hf_vk_buf *v;

	*out = NULL;
	if (off > b->size || bytes > b->size - off)
		return hf_err_set(err, HF_ERANGE,
				  "vulkan: view of %zu bytes at %zu is past the end of a %zu-byte buffer",
				  bytes, off, b->size);
	v = malloc(sizeof(*v));
	if (!v)
		return hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
	*v = *b;
	v->voff = b->voff + off;
	v->size = bytes;
	v->view = true;
	*out = v;
	return 0;
}

void hf_vk_buf_free(struct hf_vk_buf *b)
{
	struct hf_vk *vk;
	struct vk_chunk *c, **pp;

	if (!b)
		return;
	if (b->view) {
		free(b);
		return;
	}
	vk = b->vk;
	c = b->chunk;
	if (give(c, b->off, b->span))
		hf_log_warn("vulkan: out of memory freeing a buffer; %llu bytes lost until exit",
			    (unsigned long long)b->span);
	vk->used -= b->span;
	if (!--c->nlive) {
		/* an empty block goes back to the driver, unless it is the
		 * only one (it is about to be reused) */
		if (vk->chunks != c || c->next) {
			for (pp = &vk->chunks; *pp != c; pp = &(*pp)->next)
				;
			*pp = c->next;
			chunk_free(vk, c);
		}
	}
	free(b);
}

size_t hf_vk_buf_size(const struct hf_vk_buf *b)
{
	return b->size;
}

void hf_vk_mem_usage(const struct hf_vk *vk, size_t *held, size_t *used)
{
	*held = vk->held;
	*used = vk->used;
}

/* ---- transfers -------------------------------------------------------- */

static int xfer_begin(struct hf_vk *vk, struct hf_err *err)
{
	VkCommandBufferBeginInfo bi = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
		.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
	};
	VkResult r;

	if (vk->xfer_open) {
		/* each transfer after the first waits for the ones before
		 * it: a fill then an upload to the same bytes, or two
		 * uploads to one place, must land in order */
		VkMemoryBarrier mb = {
			.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
			.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
			.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT |
				VK_ACCESS_TRANSFER_WRITE_BIT,
		};

		vkCmdPipelineBarrier(vk->xfer_cb,
				     VK_PIPELINE_STAGE_TRANSFER_BIT,
				     VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb,
				     0, NULL, 0, NULL);
		return 0;
	}
	r = vkBeginCommandBuffer(vk->xfer_cb, &bi);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkBeginCommandBuffer");
	vk->xfer_open = true;
	return 0;
}

/* Submit the pending copies, wait, and empty the ring. The barrier at the
 * end makes the copies visible to later shaders and host reads. */
int hf_vk_sync(struct hf_vk *vk, struct hf_err *err)
{
	VkMemoryBarrier mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_SHADER_READ_BIT |
			VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT |
			VK_ACCESS_TRANSFER_READ_BIT |
			VK_ACCESS_TRANSFER_WRITE_BIT,
	};
	VkSubmitInfo si = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.commandBufferCount = 1,
		.pCommandBuffers = &vk->xfer_cb,
	};
	VkResult r;

	if (!vk->xfer_open)
		return 0;
	vkCmdPipelineBarrier(vk->xfer_cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
			     VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT |
			     VK_PIPELINE_STAGE_HOST_BIT |
			     VK_PIPELINE_STAGE_TRANSFER_BIT,
			     0, 1, &mb, 0, NULL, 0, NULL);
	vk->xfer_open = false;
	vk->stage_head = 0;
	r = vkEndCommandBuffer(vk->xfer_cb);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkEndCommandBuffer");
	r = vkQueueSubmit(vk->queue, 1, &si, vk->xfer_fence);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkQueueSubmit");
	r = vkWaitForFences(vk->dev, 1, &vk->xfer_fence, VK_TRUE, UINT64_MAX);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkWaitForFences");
	vkResetFences(vk->dev, 1, &vk->xfer_fence);
	vkResetCommandBuffer(vk->xfer_cb, 0);
	return 0;
}

static int check_range(const struct hf_vk_buf *b, size_t off, size_t bytes,
		       const char *what, struct hf_err *err)
{
	if (off > b->size || bytes > b->size - off)
		return hf_err_set(err, HF_ERANGE,
				  "vulkan: %s of %zu bytes at offset %zu is past the end of a %zu-byte buffer",
				  what, bytes, off, b->size);
	return 0;
}

int hf_vk_upload(struct hf_vk *vk, struct hf_vk_buf *dst, size_t off,
		 const void *src, size_t bytes, struct hf_err *err)
{
	const unsigned char *p = src;
	int rc = check_range(dst, off, bytes, "upload", err);

	if (rc)
		return rc;
	if (dst->chunk->map) {
		memcpy((unsigned char *)dst->chunk->map + dst->off + dst->voff +
		       off, src, bytes);
		return 0;
	}
	while (bytes) {
		VkDeviceSize room = vk->stage_size - vk->stage_head, n;
		VkBufferCopy bc;

		if (!room) {
			rc = hf_vk_sync(vk, err);
			if (rc)
				return rc;
			room = vk->stage_size;
		}
		n = bytes < room ? bytes : room;
		rc = xfer_begin(vk, err);
		if (rc)
			return rc;
		memcpy(vk->stage_map + vk->stage_head, p, n);
		bc = (VkBufferCopy){ vk->stage_head, dst->off + dst->voff + off,
				     n };
		vkCmdCopyBuffer(vk->xfer_cb, vk->stage_buf, dst->chunk->buf, 1,
				&bc);
		/* keep the next copy's source 16-byte aligned */
		vk->stage_head = round_up(vk->stage_head + n, 16);
		if (vk->stage_head > vk->stage_size)
			vk->stage_head = vk->stage_size;
		p += n;
		off += n;
		bytes -= n;
	}
	return 0;
}

int hf_vk_zero(struct hf_vk *vk, struct hf_vk_buf *b, struct hf_err *err)
{
	int rc;

	if (b->chunk->map) {
		memset((unsigned char *)b->chunk->map + b->off + b->voff, 0,
		       b->size);
		return 0;
	}
	if ((rc = xfer_begin(vk, err)))
		return rc;
	/* whole root span of a root buffer (a multiple of 4, its own);
	 * a view's range rounded out to words is not ours to clear */
	if (!b->view) {
		vkCmdFillBuffer(vk->xfer_cb, b->chunk->buf, b->off, b->span, 0);
		return 0;
	}
	for (size_t off = 0, n; off < b->size; off += n) {
		static const unsigned char zeros[4096];

		n = b->size - off < sizeof(zeros) ? b->size - off :
			sizeof(zeros);
		if ((rc = hf_vk_upload(vk, b, off, zeros, n, err)))
			return rc;
	}
	return 0;
}

int hf_vk_download(struct hf_vk *vk, void *dst, const struct hf_vk_buf *src,
		   size_t off, size_t bytes, struct hf_err *err)
{
	unsigned char *p = dst;
	int rc = check_range(src, off, bytes, "download", err);

	if (!rc)
		rc = hf_vk_sync(vk, err);
	if (rc)
		return rc;
	if (src->chunk->map) {
		memcpy(dst, (unsigned char *)src->chunk->map + src->off +
		       src->voff + off, bytes);
		return 0;
	}
	while (bytes) {
		VkDeviceSize n = bytes < vk->stage_size ? bytes : vk->stage_size;
		VkBufferCopy bc = { src->off + src->voff + off, 0, n };

		rc = xfer_begin(vk, err);
		if (rc)
			return rc;
		vkCmdCopyBuffer(vk->xfer_cb, src->chunk->buf, vk->stage_buf, 1,
				&bc);
		rc = hf_vk_sync(vk, err);
		if (rc)
			return rc;
		memcpy(p, vk->stage_map, n);
		p += n;
		off += n;
		bytes -= n;
	}
	return 0;
}

/* ---- setup ------------------------------------------------------------ */

int vk_mem_init(struct hf_vk *vk, const struct hf_vk_opts *o,
		struct hf_err *err)
{
	const VkMemoryPropertyFlags uma = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
		VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
		VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
	const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
		VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
	VkBufferCreateInfo bci = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = 4096,
		.usage = usage,
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VkCommandPoolCreateInfo pci = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
		.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
		.queueFamilyIndex = vk->qfam,
	};
	VkCommandBufferAllocateInfo cai = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
		.commandBufferCount = 1,
	};
	VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	VkMemoryRequirements req;
	VkBuffer probe;
	VkResult r;
	int type, rc;

	/* which memory types can hold our storage buffers */
	r = vkCreateBuffer(vk->dev, &bci, NULL, &probe);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreateBuffer");
	vkGetBufferMemoryRequirements(vk->dev, probe, &req);
	vkDestroyBuffer(vk->dev, probe, NULL);

	vk->align = vk->props.limits.minStorageBufferOffsetAlignment;
	if (req.alignment > vk->align)
		vk->align = req.alignment;
	if (vk->align < 16)
		vk->align = 16;
	/* buffers past one binding's range are bound in windows (ops.c) */
	vk->max_range = vk->props.limits.maxStorageBufferRange;
	if (o->max_binding && o->max_binding < vk->max_range)
		vk->max_range = o->max_binding;
	vk->max_range = vk->max_range / vk->align * vk->align;
	if (vk->max_range < 4 * vk->align)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: a binding limit of %zu bytes is too small",
				  (size_t)vk->max_range);
	vk->chunk_bytes = round_up(o->chunk_bytes ? o->chunk_bytes :
				   DEFAULT_CHUNK, vk->align);

	/* a discrete GPU's host-visible device memory is the small BAR
	 * window: keep weights in plain device memory there */
	type = -1;
	if (vk->info.type != HF_VK_DEV_DISCRETE && !o->force_staging)
		type = find_type(vk, req.memoryTypeBits, uma);
	vk->mapped = type >= 0;
	if (type < 0)
		type = find_type(vk, req.memoryTypeBits,
				 VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
	if (type < 0)
		type = find_type(vk, req.memoryTypeBits, 0);
	if (type < 0)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "vulkan: '%s' offers no memory for storage buffers",
				  vk->info.name);
	vk->dev_type = (uint32_t)type;

	r = vkCreateCommandPool(vk->dev, &pci, NULL, &vk->cmd_pool);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreateCommandPool");
	cai.commandPool = vk->cmd_pool;
	r = vkAllocateCommandBuffers(vk->dev, &cai, &vk->xfer_cb);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkAllocateCommandBuffers");
	r = vkCreateFence(vk->dev, &fci, NULL, &vk->xfer_fence);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreateFence");

	vk->stage_size = round_up(o->staging_bytes ? o->staging_bytes :
				  DEFAULT_STAGING, 16);
	rc = make_buffer(vk, vk->stage_size, host, -1, &vk->stage_buf,
			 &vk->stage_mem, err);
	if (rc)
		return hf_err_prefix(err, "staging ring");
	r = vkMapMemory(vk->dev, vk->stage_mem, 0, VK_WHOLE_SIZE, 0,
			(void **)&vk->stage_map);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkMapMemory");
	return hf_vk_buf_alloc(vk, &vk->dummy, 256, err);
}

void vk_mem_free(struct hf_vk *vk)
{
	hf_vk_buf_free(vk->dummy);
	vk->dummy = NULL;
	if (vk->chunks && vk->chunks->nlive)
		hf_log_warn("vulkan: device freed with buffers still allocated");
	while (vk->chunks) {
		struct vk_chunk *c = vk->chunks;

		vk->chunks = c->next;
		chunk_free(vk, c);
	}
	if (vk->stage_map)
		vkUnmapMemory(vk->dev, vk->stage_mem);
	if (vk->stage_buf)
		vkDestroyBuffer(vk->dev, vk->stage_buf, NULL);
	if (vk->stage_mem)
		vkFreeMemory(vk->dev, vk->stage_mem, NULL);
	if (vk->xfer_fence)
		vkDestroyFence(vk->dev, vk->xfer_fence, NULL);
	if (vk->cmd_pool)
		vkDestroyCommandPool(vk->dev, vk->cmd_pool, NULL);
}
