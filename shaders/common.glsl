/* shaders/common.glsl: what every shader shares: the linear workgroup
 * index (grids wider than 65535 are split over x and y by the host) and
 * workgroup reductions, by subgroup operations when SUBGROUP is defined,
 * else by a shared-memory tree (WG must then be a power of two).
 * The including shader declares `layout(constant_id = 0) const uint WG`
 * and uses it as local_size_x. */
#extension GL_EXT_control_flow_attributes : enable
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
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

/* Grid-stride loop: invocations take items i, i + all invocations, ...,
 * so the host can cap the workgroup count (per-workgroup cost dominates
 * small items on CPU drivers). */
#define FOR_ITEMS(i, n) \
	for (uint i = wg_linear() * WG + gl_LocalInvocationID.x; i < (n); \
	     i += gl_NumWorkGroups.x * gl_NumWorkGroups.y * WG)

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
