/* shaders/common.glsl: what every shader shares: the linear workgroup
 * index (grids wider than 65535 are split over x and y by the host) and
 * workgroup reductions, by subgroup operations when SUBGROUP is defined,
 * else by a shared-memory tree (WG must then be a power of two).
 * The including shader declares `layout(constant_id = 0) const uint WG`
 * and uses it as local_size_x. */
#extension GL_EXT_control_flow_attributes : enable
/* basic subgroup operations are core in compute shaders since Vulkan 1.1 */
#extension GL_KHR_shader_subgroup_basic : require
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#define NEG_INF uintBitsToFloat(0xff800000u)

/* tanh without exp overflow for large |x|. */
float tanh_safe(float x)
{
	const float e = exp(-2.0 * abs(x));
	return sign(x) * (1.0 - e) / (1.0 + e);
}

uint wg_linear()
{
	return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

/* Loop over items [0, n): each subgroup of the grid takes one contiguous
 * chunk (a multiple of its size) and its lanes step through it side by
 * side. On a GPU consecutive lanes touch consecutive items; on a CPU
 * driver, which runs a subgroup's lanes as one SIMD loop, each subgroup
 * streams through memory in order. The host caps the workgroup count
 * (per-workgroup cost dominates small items on CPU drivers). */
#define FOR_ITEMS(i, n) \
	for (uint i##_end = for_items_end(n), \
	     i = for_items_start(n) + gl_SubgroupInvocationID; \
	     i < i##_end; i += gl_SubgroupSize)

uint for_items_chunk(uint n)
{
	const uint sgs = gl_NumWorkGroups.x * gl_NumWorkGroups.y *
		gl_NumSubgroups;
	const uint c = (n + sgs - 1) / sgs;

	return (c + gl_SubgroupSize - 1) / gl_SubgroupSize * gl_SubgroupSize;
}

uint for_items_start(uint n)
{
	return (wg_linear() * gl_NumSubgroups + gl_SubgroupID) *
		for_items_chunk(n);
}

uint for_items_end(uint n)
{
	return min(n, for_items_start(n) + for_items_chunk(n));
}

/* Sums over at most WG/1 subgroups of size >= 1: WG entries suffice. */
shared float red_tmp[WG];

#ifdef SUBGROUP
float wg_sum(float v)
{
	v = subgroupAdd(v);
	if (subgroupElect())
		red_tmp[gl_SubgroupID] = v;
	barrier();
	float r = 0.0;
	for (uint i = 0; i < gl_NumSubgroups; i++)
		r += red_tmp[i];
	barrier();
	return r;
}

float wg_max(float v)
{
	v = subgroupMax(v);
	if (subgroupElect())
		red_tmp[gl_SubgroupID] = v;
	barrier();
	float r = red_tmp[0];
	for (uint i = 1; i < gl_NumSubgroups; i++)
		r = max(r, red_tmp[i]);
	barrier();
	return r;
}
#else
float wg_sum(float v)
{
	const uint tid = gl_LocalInvocationID.x;

	red_tmp[tid] = v;
	barrier();
	for (uint s = WG / 2; s > 0; s >>= 1) {
		if (tid < s)
			red_tmp[tid] += red_tmp[tid + s];
		barrier();
	}
	float r = red_tmp[0];
	barrier();
	return r;
}

float wg_max(float v)
{
	const uint tid = gl_LocalInvocationID.x;

	red_tmp[tid] = v;
	barrier();
	for (uint s = WG / 2; s > 0; s >>= 1) {
		if (tid < s)
			red_tmp[tid] = max(red_tmp[tid], red_tmp[tid + s]);
		barrier();
	}
	float r = red_tmp[0];
	barrier();
	return r;
}
#endif
