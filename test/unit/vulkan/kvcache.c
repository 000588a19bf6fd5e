/* KV caches of every type of backend/kvfmt.h on the Vulkan backend: the
 * same writes (a prompt, then a recorded decode step replayed at the next
 * columns) and attention over them on the CPU and on Vulkan, the
 * attention outputs and the values the caches hold compared. */
#include "vkt.h"

#include "backend/backend.h"
#include "backend/kvfmt.h"
#include "backend/vulkan/backend_vk.h"

static struct hf_backend *vkb, *cpub;

static int setup(void **state)
{
	struct hf_err err = { 0 };

	(void)state;
	setenv("HF_VK_VALIDATE", "1", 1);
	setenv("XDG_CACHE_HOME", vkt_cache_dir(), 1);
	vkt_env();
	if (hf_backend_vulkan_create(&vkb, &err) ||
	    hf_backend_cpu_create(&cpub, 1, &err))
		fail_msg("%s", err.msg);
	return 0;
}

static int teardown(void **state)
{
	unsigned n = hf_vk_validation_errors(hf_backend_vulkan_dev(vkb));

	(void)state;
	hf_backend_free(vkb);
	hf_backend_free(cpub);
	if (n)
		fail_msg("%u validation errors (see stderr)", n);
	return 0;
}

static struct hf_buf *mk(struct hf_backend *be, enum hf_dtype t, size_t n,
			 const void *init, size_t bytes)
{
	struct hf_err err = { 0 };
	struct hf_buf *b;

	if (hf_buf_alloc(&b, be, t, n, &err))
		fail_msg("alloc: %s", err.msg);
	if (init && hf_buf_upload(b, 0, init, bytes, &err))
		fail_msg("upload: %s", err.msg);
	return b;
}

static void get(const struct hf_buf *b, void *dst, size_t bytes)
{
	struct hf_err err = { 0 };

	if (hf_buf_download(b, 0, dst, bytes, &err))
		fail_msg("download on %s: %s", hf_backend_name(b->be), err.msg);
}

enum { B = 2, P = 5, STEPS = 3, C = 12, HQ = 4, HKV = 2 };

/* On be: P prompt tokens per row, then STEPS decode steps replayed from
 * one recording; out gets each attention output, then the caches as
 * float32. */
static void scenario(struct hf_backend *be, int t, size_t d, const float *xs,
		     const float *mask, float *out)
{
	struct hf_err err = { 0 };
	size_t w = HKV * d, qw = HQ * d, rb = hf_kv_bytes(t, w, d);
	enum hf_dtype dt = t == HF_KV_F32 ? HF_DTYPE_F32 : t == HF_KV_F16 ?
		HF_DTYPE_F16 : t == HF_KV_BF16 ? HF_DTYPE_BF16 : HF_DTYPE_U8;
	size_t n = dt == HF_DTYPE_U8 ? B * C * rb : B * C * w;
	int32_t cols[B * P];
	struct hf_buf *ck = mk(be, dt, n, NULL, 0), *cv = mk(be, dt, n, NULL, 0);
	struct hf_buf *q = mk(be, HF_DTYPE_F32, B * P * qw, xs, B * P * qw * 4);
	struct hf_buf *k = mk(be, HF_DTYPE_F32, B * P * w, xs + 7,
			      B * P * w * 4);
	struct hf_buf *v = mk(be, HF_DTYPE_F32, B * P * w, xs + 11,
			      B * P * w * 4);
	struct hf_buf *o = mk(be, HF_DTYPE_F32, B * P * qw, NULL, 0);
	struct hf_buf *bm = mk(be, HF_DTYPE_F32, B * C, mask, B * C * 4);
	struct hf_buf *bc, *q1, *k1, *v1, *o1;
	struct hf_graph g;
	unsigned char *raw = malloc(2 * n * 4);
	size_t at = 0;

	for (size_t i = 0; i < B * P; i++)
		cols[i] = (int32_t)(i % P);
	bc = mk(be, HF_DTYPE_I32, B * P, cols, sizeof(cols));
	hf_op_kv_store_as(ck, k, bc, B, P, C, w, t, d);
	hf_op_kv_store_as(cv, v, bc, B, P, C, w, t, d);
	hf_op_attention_as(o, q, ck, cv, bm, bc, B, P, C, HQ, HKV, d, 1, 0,
			   0.3f, t);
	get(o, out, B * P * qw * 4);
	at += B * P * qw;
	hf_buf_free(bc);
	/* decode: one token a row at column P + s, recorded once */
	for (size_t i = 0; i < B; i++)
		cols[i] = P;
	bc = mk(be, HF_DTYPE_I32, B, cols, B * 4);
	q1 = mk(be, HF_DTYPE_F32, B * qw, xs + 3, B * qw * 4);
	k1 = mk(be, HF_DTYPE_F32, B * w, xs + 5, B * w * 4);
	v1 = mk(be, HF_DTYPE_F32, B * w, xs + 9, B * w * 4);
	o1 = mk(be, HF_DTYPE_F32, B * qw, NULL, 0);
	if (hf_graph_begin(be, &g, &err))
		fail_msg("%s", err.msg);
	hf_op_kv_store_as(ck, k1, bc, B, 1, C, w, t, d);
	hf_op_kv_store_as(cv, v1, bc, B, 1, C, w, t, d);
	hf_op_attention_as(o1, q1, ck, cv, bm, bc, B, 1, C, HQ, HKV, d, 1, 0,
			   0.3f, t);
	if (hf_graph_end(be, &g, &err))
		fail_msg("%s", err.msg);
	for (int s = 0; s < STEPS; s++) {
		if (s) {
			for (size_t i = 0; i < B; i++)
				cols[i] = (int32_t)(P + s);
			if (hf_buf_upload(bc, 0, cols, B * 4, &err) ||
			    hf_buf_upload(k1, 0, xs + 13 * s, B * w * 4, &err) ||
			    hf_graph_replay(be, &g, &err))
				fail_msg("%s", err.msg);
		}
		get(o1, out + at, B * qw * 4);
		at += B * qw;
	}
	get(ck, raw, ck->size);
	get(cv, raw + ck->size, cv->size);
	hf_kv_load(t, out + at, raw, B * C * w, d);
	hf_kv_load(t, out + at + B * C * w, raw + ck->size, B * C * w, d);
	if (hf_backend_status(be, &err))
		fail_msg("%s: %s", hf_backend_name(be), err.msg);
	hf_graph_free(be, &g);
	free(raw);
	hf_buf_free(ck);
	hf_buf_free(cv);
	hf_buf_free(q);
	hf_buf_free(k);
	hf_buf_free(v);
	hf_buf_free(o);
	hf_buf_free(bm);
	hf_buf_free(bc);
	hf_buf_free(q1);
	hf_buf_free(k1);
	hf_buf_free(v1);
	hf_buf_free(o1);
}

static void test_every_type_matches_the_cpu(void **state)
{
	static const size_t dims[] = { 8, 64 };

	(void)state;
	for (int t = 0; t < HF_KV_COUNT; t++)
		for (size_t di = 0; di < 2; di++) {
			size_t d = dims[di], nx = B * P * HQ * d + 64;
			size_t nout = B * P * HQ * d + STEPS * B * HQ * d +
				2 * B * C * HKV * d;
			float *xs = malloc(nx * 4), mask[B * C];
			float *a = malloc(nout * 4), *b = malloc(nout * 4);
			/* a flipped rounding moves a value by one step of the
			 * type; attention outputs are averages of values */
			float tol = t == HF_KV_F32 ? 1e-5f :
				t == HF_KV_F16 || t == HF_KV_BF16 ? 1e-4f : 0.3f;
			size_t bad = 0;

			for (size_t i = 0; i < nx; i++)
				xs[i] = vkt_uniform(-2, 2);
			for (size_t i = 0; i < B * C; i++)
				mask[i] = i == C + 1 ? 0.0f : 1.0f;
			scenario(cpub, t, d, xs, mask, a);
			scenario(vkb, t, d, xs, mask, b);
			for (size_t i = 0; i < nout; i++) {
				float e = fabsf(a[i] - b[i]);

				if (e > tol)
					fail_msg("%s d %zu: [%zu] cpu %g vulkan %g",
						 hf_kv_type_name(t), d, i, a[i],
						 b[i]);
				bad += e > 1e-5f;
			}
			/* only an odd rounding tie may differ */
			if (bad > nout / 100)
				fail_msg("%s d %zu: %zu of %zu values differ",
					 hf_kv_type_name(t), d, bad, nout);
			free(xs);
			free(a);
			free(b);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_type_matches_the_cpu),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
