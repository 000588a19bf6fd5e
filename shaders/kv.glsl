/* kv.glsl: reading a KV cache of the types of lib/backend/kvfmt.h, bound
 * as uint words. KV_LOAD(buf, w0, e) is element e (counted as in a
 * float32 cache) of the cache whose first word is w0. int8 and q4 keep
 * groups of KVG values: a float32 scale (q4: and a float32 minimum), then
 * the values (int8: a byte each; q4: a nibble each, low nibble first). KVG is 32
 * where head_dim is a multiple of 32, else head_dim (a multiple of 4 for
 * int8, of 8 for q4). */
#define KVG ((pc.p.head_dim % 32u) == 0u ? 32u : pc.p.head_dim)

#if defined(KV_F16)
#define KV_WORDS 1
#define KV_LOAD(buf, w0, e) (unpackHalf2x16(buf[(w0) + (e) / 2u])[(e) & 1u])
#elif defined(KV_BF16)
#define KV_WORDS 1
#define KV_LOAD(buf, w0, e) uintBitsToFloat(((e) & 1u) != 0u ? \
	(buf[(w0) + (e) / 2u] & 0xFFFF0000u) : (buf[(w0) + (e) / 2u] << 16))
#elif defined(KV_INT8)
#define KV_WORDS 1
#define KVGW (1u + KVG / 4u)
float kv_i8(uint sw, uint w, uint i)
{
	return uintBitsToFloat(sw) *
		float(bitfieldExtract(int(w), int((i & 3u) * 8u), 8));
}
#define KV_LOAD(buf, w0, e) kv_i8(buf[(w0) + ((e) / KVG) * KVGW], \
	buf[(w0) + ((e) / KVG) * KVGW + 1u + ((e) % KVG) / 4u], (e) % KVG)
#elif defined(KV_Q4)
#define KV_WORDS 1
#define KVGW (2u + KVG / 8u)
float kv_q4(uint sw, uint mw, uint w, uint i)
{
	return uintBitsToFloat(mw) + uintBitsToFloat(sw) *
		float(bitfieldExtract(w, int((i & 7u) * 4u), 4));
}
#define KV_LOAD(buf, w0, e) kv_q4(buf[(w0) + ((e) / KVG) * KVGW], \
	buf[(w0) + ((e) / KVG) * KVGW + 1u], \
	buf[(w0) + ((e) / KVG) * KVGW + 2u + ((e) % KVG) / 8u], (e) % KVG)
#endif
