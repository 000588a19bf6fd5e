/* lib/backend/vulkan/seq.c: recorded command sequences. A sequence is one
 * primary command buffer holding dispatches separated by memory barriers,
 * each with its own descriptor set, recorded once and submitted as often
 * as wanted (a forward pass of one shape). With timestamps, one query
 * before the first dispatch and one after each gives per-op device time. */
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_impl.h"
#include "core/log.h"

#define SETS_PER_POOL 128
/* Dispatches timed per sequence; later ones run untimed. */
#define MAX_QUERIES 4096

struct hf_vk_seq {
	struct hf_vk *vk;
	VkCommandBuffer cb;
	VkFence fence;
	VkDescriptorPool *pools;
	size_t npools;
	size_t cur;		/* the pool sets come from */
	uint32_t sets_left;
	VkQueryPool qp;
	uint32_t nq;
	const char **ops;	/* static shader names, one per dispatch */
	size_t nops, capops;
	struct hf_vk_timing *times;
	size_t ntimes, captimes;
	bool ended;
	bool failed;		/* a dispatch failed: cannot end or run */
};

static void barrier(VkCommandBuffer cb, VkPipelineStageFlags src,
		    VkAccessFlags sa, VkPipelineStageFlags dst,
		    VkAccessFlags da)
{
	VkMemoryBarrier mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = sa,
		.dstAccessMask = da,
	};

	vkCmdPipelineBarrier(cb, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

/* Begin recording into s->cb: the barrier after earlier work, and the
 * first timestamp. */
static VkResult start(struct hf_vk_seq *s)
{
	VkCommandBufferBeginInfo bi = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
	};
	VkResult r = vkBeginCommandBuffer(s->cb, &bi);

	if (r != VK_SUCCESS)
		return r;
	/* uploads and the previous run's writes come before this run */
	barrier(s->cb, VK_PIPELINE_STAGE_TRANSFER_BIT |
		VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT,
		VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_SHADER_WRITE_BIT |
		VK_ACCESS_HOST_WRITE_BIT,
		VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
		VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
	s->nq = 0;
	if (s->qp) {
		vkCmdResetQueryPool(s->cb, s->qp, 0, MAX_QUERIES);
		vkCmdWriteTimestamp(s->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT,
				    s->qp, 0);
		s->nq = 1;
	}
	return VK_SUCCESS;
}

int hf_vk_seq_begin(struct hf_vk *vk, struct hf_vk_seq **out,
		    struct hf_err *err)
{
	VkCommandBufferAllocateInfo cai = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.commandPool = vk->cmd_pool,
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
		.commandBufferCount = 1,
	};
	VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	VkQueryPoolCreateInfo qci = {
		.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
		.queryType = VK_QUERY_TYPE_TIMESTAMP,
		.queryCount = MAX_QUERIES,
	};
	struct hf_vk_seq *s;
	VkResult r;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
	s->vk = vk;
	r = vkAllocateCommandBuffers(vk->dev, &cai, &s->cb);
	if (r != VK_SUCCESS) {
		s->cb = VK_NULL_HANDLE;
		goto fail;
	}
	r = vkCreateFence(vk->dev, &fci, NULL, &s->fence);
	if (r != VK_SUCCESS)
		goto fail;
	if (vk->ts_bits) {
		r = vkCreateQueryPool(vk->dev, &qci, NULL, &s->qp);
		if (r != VK_SUCCESS)
			goto fail;
	}
	r = start(s);
	if (r != VK_SUCCESS)
		goto fail;
	*out = s;
	return 0;
fail:
	hf_vk_seq_free(s);
	return vk_fail(err, r, "recording a command sequence");
}

/* Sets come from the next pool, made when there is none left. */
static int new_pool(struct hf_vk_seq *s, struct hf_err *err)
{
	VkDescriptorPoolSize ps = {
		.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
		.descriptorCount = SETS_PER_POOL * VK_NBIND,
	};
	VkDescriptorPoolCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
		.maxSets = SETS_PER_POOL,
		.poolSizeCount = 1,
		.pPoolSizes = &ps,
	};
	VkDescriptorPool *p;
	VkResult r;

	if (s->npools && s->cur + 1 < s->npools) {
		s->cur++;
		s->sets_left = SETS_PER_POOL;
		return 0;
	}
	p = realloc(s->pools, (s->npools + 1) * sizeof(*p));
	if (!p)
		return hf_err_set(err, HF_ENOMEM, "vulkan: out of memory");
	s->pools = p;
	r = vkCreateDescriptorPool(s->vk->dev, &ci, NULL, &p[s->npools]);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkCreateDescriptorPool");
	s->cur = s->npools++;
	s->sets_left = SETS_PER_POOL;
	return 0;
}

static int fail(struct hf_vk_seq *s, int rc)
{
	s->failed = true;
	return rc;
}

int vk_dispatch(struct hf_vk_seq *s, const char *shader, const uint32_t *spec,
		uint32_t nspec, const struct vk_arg *args, uint32_t nargs,
		const void *pc, size_t pcsize, uint32_t groups, uint32_t gz,
		struct hf_err *err)
{
	uint32_t push[VK_PC_BYTES / 4] = { 0 };
	struct hf_vk *vk = s->vk;
	VkDescriptorBufferInfo bi[VK_NBIND];
	VkWriteDescriptorSet w[VK_NBIND];
	VkDescriptorSetAllocateInfo ai = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
		.descriptorSetCount = 1,
		.pSetLayouts = &vk->dsl,
	};
	const uint32_t maxg = vk->props.limits.maxComputeWorkGroupCount[0];
	uint32_t gx, gy;
	const char *name;
	VkDescriptorSet set;
	VkPipeline pipe;
	VkResult r;
	int rc;

	if (s->ended || s->failed)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: op '%s' recorded into a sequence that is %s",
				  shader, s->ended ? "ended" : "failed");
	if (nargs > VK_NBIND || pcsize > VK_PC_BYTES - 4 * VK_NBIND)
		return fail(s, hf_err_set(err, HF_EINTERNAL,
			    "vulkan: op '%s' has too many bindings or push constants",
			    shader));
	gx = groups < maxg ? groups : maxg;
	gy = gx ? (groups + gx - 1) / gx : 0;
	if (gy > vk->props.limits.maxComputeWorkGroupCount[1] ||
	    gz > vk->props.limits.maxComputeWorkGroupCount[2])
		return fail(s, hf_err_set(err, HF_EUNSUPPORTED,
			    "vulkan: op '%s' needs %u x %u workgroups, over the limits of '%s'",
			    shader, groups, gz, vk->info.name));
	if (!gx || !gz)
		return 0;	/* nothing to do */
	rc = vk_pipe_get(vk, &pipe, &name, shader, spec, nspec, err);
	if (rc)
		return fail(s, rc);
	if (!s->sets_left && (rc = new_pool(s, err)))
		return fail(s, rc);
	ai.descriptorPool = s->pools[s->cur];
	r = vkAllocateDescriptorSets(vk->dev, &ai, &set);
	if (r != VK_SUCCESS)
		return fail(s, vk_fail(err, r, "vkAllocateDescriptorSets"));
	s->sets_left--;
	for (uint32_t i = 0; i < VK_NBIND; i++) {
		const struct hf_vk_buf *b = i < nargs && args[i].buf ?
			args[i].buf : vk->dummy;

		/* bind from the aligned byte at or before the view, at most
		 * one binding's range; the rest of the way is in elements */
		const uint32_t elt = i < nargs ? args[i].elt : 4;
		const VkDeviceSize base = b->voff / vk->align * vk->align;
		VkDeviceSize range = b->span - base;

		if (range > vk->max_range)
			range = vk->max_range;
		if ((b->voff - base) % elt)
			return fail(s, hf_err_set(err, HF_EINVAL,
				    "vulkan: op '%s': binding %u starts at byte %zu, not a multiple of %u",
				    shader, i, b->voff, elt));
		push[i] = (uint32_t)((b->voff - base) / elt);
		bi[i] = (VkDescriptorBufferInfo){ b->chunk->buf, b->off + base,
						   range };
		w[i] = (VkWriteDescriptorSet){
			.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
			.dstSet = set,
			.dstBinding = i,
			.descriptorCount = 1,
			.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
			.pBufferInfo = &bi[i],
		};
	}
	vkUpdateDescriptorSets(vk->dev, VK_NBIND, w, 0, NULL);
	if (s->nops == s->capops) {
		size_t cap = s->capops ? 2 * s->capops : 64;
		const char **o = realloc(s->ops, cap * sizeof(*o));

		if (!o)
			return fail(s, hf_err_set(err, HF_ENOMEM,
						  "vulkan: out of memory"));
		s->ops = o;
		s->capops = cap;
	}
	s->ops[s->nops++] = name;
	vkCmdBindPipeline(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
	vkCmdBindDescriptorSets(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE,
				vk->layout, 0, 1, &set, 0, NULL);
	memcpy(push + VK_NBIND, pc, pcsize);
	vkCmdPushConstants(s->cb, vk->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
			   (uint32_t)(4 * VK_NBIND + pcsize), push);
	vkCmdDispatch(s->cb, gx, gy, gz);
	/* the next op may read what this one wrote (or write what it read) */
	barrier(s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
		VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
		VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
		VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
	if (s->qp && s->nq < MAX_QUERIES && s->nq == s->nops)
		vkCmdWriteTimestamp(s->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT,
				    s->qp, s->nq++);
	return 0;
}

int hf_vk_op_copy_bytes(struct hf_vk_seq *s, struct hf_vk_buf *y,
			const struct hf_vk_buf *a, const size_t (*regions)[3],
			uint32_t nregions, struct hf_err *err)
{
	VkBufferCopy bc[16];

	if (s->ended || s->failed)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: copy recorded into a sequence that is %s",
				  s->ended ? "ended" : "failed");
	for (uint32_t i = 0; i < nregions; i++)
		if (regions[i][0] > a->size ||
		    regions[i][2] > a->size - regions[i][0] ||
		    regions[i][1] > y->size ||
		    regions[i][2] > y->size - regions[i][1])
			return hf_err_set(err, HF_EINVAL,
					  "vulkan: copy of %zu bytes from %zu to %zu is outside buffers of %zu and %zu bytes",
					  regions[i][2], regions[i][0],
					  regions[i][1], a->size, y->size);
	barrier(s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
		VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
		VK_PIPELINE_STAGE_TRANSFER_BIT,
		VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
	for (uint32_t i = 0, n = 0; i < nregions; i++) {
		if (regions[i][2])	/* Vulkan forbids empty regions */
			bc[n++] = (VkBufferCopy){
				a->off + a->voff + regions[i][0],
				y->off + y->voff + regions[i][1],
				regions[i][2],
			};
		if (n && (n == 16 || i + 1 == nregions)) {
			vkCmdCopyBuffer(s->cb, a->chunk->buf, y->chunk->buf, n,
					bc);
			n = 0;
		}
	}
	barrier(s->cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
		VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT,
		VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
		VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
	return 0;
}

int hf_vk_seq_end(struct hf_vk_seq *s, struct hf_err *err)
{
	VkResult r;

	if (s->failed)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: a sequence with a failed op cannot be ended");
	if (s->ended)
		return 0;
	barrier(s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
		VK_ACCESS_SHADER_WRITE_BIT,
		VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_HOST_BIT,
		VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_HOST_READ_BIT);
	r = vkEndCommandBuffer(s->cb);
	if (r != VK_SUCCESS) {
		s->failed = true;
		return vk_fail(err, r, "vkEndCommandBuffer");
	}
	s->ended = true;
	return 0;
}

static void read_timings(struct hf_vk_seq *s)
{
	struct hf_vk *vk = s->vk;
	uint64_t *t;
	uint64_t mask = vk->ts_bits >= 64 ? ~0ull :
		(1ull << vk->ts_bits) - 1;
	double period = vk->props.limits.timestampPeriod;	/* ns/tick */

	s->ntimes = 0;
	if (!s->qp || s->nq < 2)
		return;
	t = malloc(s->nq * sizeof(*t));
	if (!t)
		return;
	if (s->captimes < s->nq - 1) {
		struct hf_vk_timing *tt = realloc(s->times, (s->nq - 1) *
						  sizeof(*tt));

		if (!tt) {
			free(t);
			return;
		}
		s->times = tt;
		s->captimes = s->nq - 1;
	}
	if (s->times &&
	    vkGetQueryPoolResults(vk->dev, s->qp, 0, s->nq,
				  s->nq * sizeof(*t), t, sizeof(*t),
				  VK_QUERY_RESULT_64_BIT |
				  VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS) {
		for (uint32_t i = 0; i + 1 < s->nq; i++) {
			uint64_t d = ((t[i + 1] & mask) - (t[i] & mask)) & mask;

			s->times[i].op = s->ops[i];
			s->times[i].ms = (double)d * period * 1e-6;
		}
		s->ntimes = s->nq - 1;
	}
	free(t);
}

int hf_vk_seq_run(struct hf_vk_seq *s, struct hf_err *err)
{
	struct hf_vk *vk = s->vk;
	VkSubmitInfo si = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.commandBufferCount = 1,
		.pCommandBuffers = &s->cb,
	};
	VkResult r;
	int rc;

	if (!s->ended)
		return hf_err_set(err, HF_EINVAL,
				  "vulkan: a sequence must be ended before it runs");
	rc = hf_vk_sync(vk, err);
	if (rc)
		return rc;
	r = vkQueueSubmit(vk->queue, 1, &si, s->fence);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkQueueSubmit");
	r = vkWaitForFences(vk->dev, 1, &s->fence, VK_TRUE, UINT64_MAX);
	if (r != VK_SUCCESS)
		return vk_fail(err, r, "vkWaitForFences");
	vkResetFences(vk->dev, 1, &s->fence);
	read_timings(s);
	return 0;
}

const struct hf_vk_timing *hf_vk_seq_timings(struct hf_vk_seq *s, size_t *n)
{
	*n = s->ntimes;
	return s->ntimes ? s->times : NULL;
}

int hf_vk_seq_reset(struct hf_vk_seq *s, struct hf_err *err)
{
	VkResult r = vkResetCommandBuffer(s->cb, 0);

	for (size_t i = 0; r == VK_SUCCESS && i < s->npools; i++)
		r = vkResetDescriptorPool(s->vk->dev, s->pools[i], 0);
	s->cur = 0;
	s->sets_left = s->npools ? SETS_PER_POOL : 0;
	s->nops = 0;
	s->ntimes = 0;
	s->ended = false;
	s->failed = false;
	if (r == VK_SUCCESS)
		r = start(s);
	if (r != VK_SUCCESS) {
		s->failed = true;
		return vk_fail(err, r, "resetting a command sequence");
	}
	return 0;
}

struct hf_vk *vk_seq_dev(struct hf_vk_seq *s)
{
	return s->vk;
}

size_t hf_vk_seq_dispatches(const struct hf_vk_seq *s)
{
	return s->nops;
}

void hf_vk_seq_free(struct hf_vk_seq *s)
{
	struct hf_vk *vk;

	if (!s)
		return;
	vk = s->vk;
	for (size_t i = 0; i < s->npools; i++)
		vkDestroyDescriptorPool(vk->dev, s->pools[i], NULL);
	if (s->qp)
		vkDestroyQueryPool(vk->dev, s->qp, NULL);
	if (s->fence)
		vkDestroyFence(vk->dev, s->fence, NULL);
	if (s->cb)
		vkFreeCommandBuffers(vk->dev, vk->cmd_pool, 1, &s->cb);
	free(s->pools);
	free(s->ops);
	free(s->times);
	free(s);
}
