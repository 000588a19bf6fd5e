/* Tests for lib/backend/vulkan/backend_vk.c op by op: the same scenario
 * (buffers, views, ops, a recorded graph replayed on new contents) run on
 * the CPU backend and on the Vulkan backend, results compared. Covers the
 * op codes the model fixtures do not reach (softmax, copy, standalone
 * activations) and views at offsets no shader binding could start at. */
#include "vkt.h"

#include "backend/backend.h"
#include "backend/vulkan/backend_vk.h"

static struct hf_backend *vkb, *cpub;

static int setup(void **state)
{
	struct hf_err err = { 0 };

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

	hf_backend_free(vkb);
	hf_backend_free(cpub);
	if (n)
		fail_msg("%u validation errors (see stderr)", n);
	return 0;
}

static struct hf_buf *mk(struct hf_backend *be, enum hf_dtype t, size_t n,
			 const void *init)
{
	struct hf_err err = { 0 };
	struct hf_buf *b;

	if (hf_buf_alloc(&b, be, t, n, &err))
		fail_msg("alloc: %s", err.msg);
	if (init && hf_buf_upload(b, 0, init, hf_dtype_size(t, n), &err))
		fail_msg("upload: %s", err.msg);
	return b;
}

static struct hf_buf *view(struct hf_buf *b, size_t first, size_t n)
{
	struct hf_err err = { 0 };
	struct hf_buf *v;

	if (hf_buf_view(&v, b, first, n, &err))
		fail_msg("view: %s", err.msg);
	return v;
}

static void get(const struct hf_buf *b, void *dst)
{
	struct hf_err err = { 0 };

	if (hf_buf_download(b, 0, dst, b->size, &err))
		fail_msg("download on %s: %s", hf_backend_name(b->be), err.msg);
}

/* Inputs shared by both runs of a scenario. */
#define NX 203
static float xin[NX], win[NX], lin[6 * 5];
static int32_t rows_in[4] = { 3, 0, 3, 1 };

static void inputs(void)
{
	for (int i = 0; i < NX; i++) {
		xin[i] = vkt_uniform(-4, 4);
		win[i] = vkt_uniform(-1, 1);
	}
	for (int i = 0; i < 6 * 5; i++)
		lin[i] = vkt_uniform(-2, 2);
	lin[2 * 5 + 1] = lin[2 * 5 + 4] = 3.0f;	/* a tie for the top 2 */
}

/* Results of scenario_misc, in order. */
#define NOUT (NX * 5 + NX + 40 + 6 * 2 * 2 + 5 * 7 + 64)

static void scenario_misc(struct hf_backend *be, float *out)
{
	struct hf_buf *x = mk(be, HF_DTYPE_F32, NX, xin);
	struct hf_buf *w = mk(be, HF_DTYPE_F32, NX, win);
	struct hf_buf *y = mk(be, HF_DTYPE_F32, NX, NULL);
	struct hf_buf *lg = mk(be, HF_DTYPE_F32, 6 * 5, lin);
	struct hf_buf *rw = mk(be, HF_DTYPE_F32, 6 * 2, NULL);
	struct hf_buf *re = mk(be, HF_DTYPE_I32, 6 * 2, NULL);
	struct hf_buf *rows = mk(be, HF_DTYPE_I32, 4, rows_in);
	struct hf_buf *acc = mk(be, HF_DTYPE_F32, 5 * 7, NULL);
	struct hf_buf *cache = mk(be, HF_DTYPE_F32, 2 * 2 * 4 * 4 + 1, NULL);
	struct hf_buf *xv, *yv, *layer, *g;
	float *o = out;
	int32_t ids[12];

	/* every activation, standalone, on a view at an odd offset */
	for (int a = 0; a < HF_ACT_COUNT; a++) {
		xv = view(x, 1, NX - 1);
		yv = view(y, 0, NX - 1);
		hf_op_act(yv, xv, NX - 1, (enum hf_act)a);
		hf_buf_free(xv);
		hf_buf_free(yv);
		get(y, o);
		o[NX - 1] = 0;	/* not written */
		o += NX;
	}
	/* softmax in place over 7 rows of 29, after scale and add */
	hf_op_scale(y, x, NX, 0.75f);
	hf_op_add(y, y, w, NX);
	hf_op_softmax(y, 7, 29);
	get(y, o);
	o += NX;
	/* copy bytes between views */
	xv = view(x, 17, 40);
	yv = view(y, 3, 40);
	hf_op_copy(yv, xv, 40 * sizeof(float));
	hf_buf_free(xv);
	hf_buf_free(yv);
	{
		float tmp[NX];

		get(y, tmp);
		memcpy(o, tmp + 3, 40 * sizeof(float));
		o += 40;
	}
	/* MoE routing and the combine */
	hf_op_moe_route(rw, re, lg, 6, 5, 2);
	get(rw, o);
	get(re, ids);
	for (int i = 0; i < 12; i++)
		o[12 + i] = (float)ids[i];
	o += 24;
	g = view(x, 5, 4 * 7);
	hf_op_add_rows(acc, g, rows, w, 4, 7);
	hf_buf_free(g);
	get(acc, o);
	o += 5 * 7;
	/* KV store into layer 1 of a cache (B 2, C 4, width 4), past 1 */
	layer = view(cache, 1 + 2 * 4 * 4, 2 * 4 * 4);
	xv = view(x, 9, 2 * 2 * 4);
	{
		const int32_t c[4] = { 1, 2, 1, 2 };
		struct hf_buf *bc = mk(be, HF_DTYPE_I32, 4, c);

		hf_op_kv_store(layer, xv, bc, 2, 2, 4, 4);
		hf_buf_free(bc);
	}
	hf_buf_free(xv);
	hf_buf_free(layer);
	{
		float tmp[2 * 2 * 4 * 4 + 1];

		get(cache, tmp);
		memcpy(o, tmp + 1, 64 * sizeof(float));
	}
	hf_buf_free(x);
	hf_buf_free(w);
	hf_buf_free(y);
	hf_buf_free(lg);
	hf_buf_free(rw);
	hf_buf_free(re);
	hf_buf_free(rows);
	hf_buf_free(acc);
	hf_buf_free(cache);
}

/* 2e-6 absolute + 1e-5 relative: float32 exp/tanh/erf on both sides,
 * different formulas for erf and different summation orders. */
static void test_misc_ops_match_the_cpu_backend(void **state)
{
	static float got[NOUT], want[NOUT];

	inputs();
	scenario_misc(cpub, want);
	scenario_misc(vkb, got);
	vkt_close_to("misc ops", got, want, NOUT, 2e-6, 1e-5);
}

/* A decode-style step recorded as a graph: matmul on a bf16 view of a
 * fused weight, rmsnorm, rope, kv store, attention over the cache; run,
 * then replayed twice on new contents of x. */
#define H 24
#define HD 8
#define NH 3
#define NT 5
#define CAP 9

static void scenario_graph(struct hf_backend *be, float *out, size_t *nout)
{
	struct hf_err err = { 0 };
	uint16_t wb[2 * H * H + 1];
	float *inv = malloc(HD / 2 * sizeof(float));
	int32_t pos[NT], c01[2] = { 0, 1 };
	struct hf_buf *w, *wv, *x, *q, *kc, *vc, *att, *bp, *bf, *nw, *bc;
	struct hf_graph g;
	size_t n = 0;

	for (int i = 0; i < 2 * H * H + 1; i++)
		wb[i] = hf_f32_to_bf16(win[i % NX] * 0.5f);
	for (int i = 0; i < HD / 2; i++)
		inv[i] = powf(10000.0f, -2.0f * i / HD);
	for (int t = 0; t < NT; t++)
		pos[t] = t + 2;
	w = mk(be, HF_DTYPE_BF16, 2 * H * H + 1, wb);
	wv = view(w, H * H + 1, H * H);	/* odd: starts mid-word */
	x = mk(be, HF_DTYPE_F32, NT * H, xin);
	q = mk(be, HF_DTYPE_F32, NT * H, NULL);
	kc = mk(be, HF_DTYPE_F32, CAP * H, NULL);
	vc = mk(be, HF_DTYPE_F32, CAP * H, NULL);
	att = mk(be, HF_DTYPE_F32, NT * H, NULL);
	bp = mk(be, HF_DTYPE_I32, NT, pos);
	bf = mk(be, HF_DTYPE_F32, HD / 2, inv);
	nw = mk(be, HF_DTYPE_F32, H, win + 1);
	/* an earlier step filled columns 0 and 1 */
	bc = mk(be, HF_DTYPE_I32, 2, c01);
	hf_op_kv_store(kc, x, bc, 1, 2, CAP, H);
	hf_op_kv_store(vc, x, bc, 1, 2, CAP, H);
	hf_buf_free(bc);
	bc = mk(be, HF_DTYPE_I32, NT, pos);	/* columns 2.. as positions */
	if (hf_graph_begin(be, &g, &err))
		fail_msg("%s", err.msg);
	hf_op_matmul(q, x, wv, NULL, NT, H, H);
	hf_op_rmsnorm(q, q, nw, NT, H, 1e-5f, 1);
	hf_op_rope(q, bp, bf, NT, NH, HD, HD, HF_ROPE_HALF, 1.0f);
	hf_op_kv_store(kc, q, bc, 1, NT, CAP, H);
	hf_op_kv_store(vc, x, bc, 1, NT, CAP, H);
	hf_op_attention(att, q, kc, vc, NULL, bc, 1, NT, CAP, NH, NH, HD, 1, 0,
			1.0f / sqrtf(HD));
	if (hf_graph_end(be, &g, &err))
		fail_msg("%s", err.msg);
	get(att, out + n);
	n += NT * H;
	for (int r = 0; r < 2; r++) {
		float nx[NT * H];

		for (int i = 0; i < NT * H; i++)
			nx[i] = xin[(i * 7 + r * 13) % NX] * 0.25f;
		if (hf_buf_upload(x, 0, nx, sizeof(nx), &err))
			fail_msg("%s", err.msg);
		if (hf_graph_replay(be, &g, &err))
			fail_msg("%s", err.msg);
		get(att, out + n);
		n += NT * H;
	}
	get(kc, out + n);
	n += CAP * H;
	*nout = n;
	hf_graph_free(be, &g);
	hf_buf_free(wv);
	hf_buf_free(w);
	hf_buf_free(x);
	hf_buf_free(q);
	hf_buf_free(kc);
	hf_buf_free(vc);
	hf_buf_free(att);
	hf_buf_free(bp);
	hf_buf_free(bf);
	hf_buf_free(nw);
	hf_buf_free(bc);
	free(inv);
}

/* 1e-5: float32 products of 24 terms and softmax over at most 7 keys,
 * summed in different orders. */
static void test_graph_replay_matches_the_cpu_backend(void **state)
{
	static float got[3 * NT * H + CAP * H], want[3 * NT * H + CAP * H];
	size_t ng, nw;

	inputs();
	scenario_graph(cpub, want, &nw);
	scenario_graph(vkb, got, &ng);
	assert_int_equal(ng, nw);
	vkt_close_to("graph", got, want, nw, 1e-5, 1e-5);
	/* the replays computed something new */
	assert_true(memcmp(got, got + NT * H, NT * H * sizeof(float)) != 0);
}


#define rmk mk
#define rget get

#include "../backend/replay_scenario.h"

#define RN (RS * RB * RH + RB * RC * RH)

/* Replayed on the device equals eager on the device (the same dispatches:
 * 0 tolerance would do, 1e-6 leaves room for a driver's reordering), and
 * both equal the CPU backend within 1e-5 (float32, different orders). */
static void test_replay_at_new_positions_equals_eager_ops(void **state)
{
	static float eager[RN], replayed[RN], cpu[RN];

	scenario_replay(vkb, 0, eager);
	scenario_replay(vkb, 1, replayed);
	scenario_replay(cpub, 0, cpu);
	vkt_close_to("replay vs eager", replayed, eager, RN, 1e-6, 0);
	vkt_close_to("eager vs cpu", eager, cpu, RN, 1e-5, 1e-5);
	assert_true(memcmp(eager, eager + RB * RH, RB * RH * sizeof(float)));
}

#include "../backend/moe_scenario.h"

/* A Mixtral-style MoE layer on the device ops (router, MOE_ROUTE,
 * MATMUL_ID, GLU, MOE_SUM; bf16 experts stacked in one buffer), recorded
 * once and replayed on new inputs, so new routing read on the device:
 * replayed equals eager on the device (the same dispatches; 1e-6 for a
 * driver's reordering), and eager equals the CPU backend and the
 * host-grouped path (tiled products per expert) on the device within 1e-5
 * absolute + 1e-5 relative (float32 sums of 20-24 terms in other orders,
 * float32 exp in SiLU and the routing softmax on both). */
static void test_moe_layer_replayed_matches_the_cpu_backend(void **state)
{
	static float eager[MOUT], replayed[MOUT], cpu[MOUT], grouped[MOUT];

	scenario_moe(vkb, 0, eager);
	scenario_moe(vkb, 1, replayed);
	scenario_moe(cpub, 0, cpu);
	scenario_moe_grouped(vkb, grouped);
	vkt_close_to("moe replay vs eager", replayed, eager, MOUT, 1e-6, 0);
	vkt_close_to("moe eager vs cpu", eager, cpu, MOUT, 1e-5, 1e-5);
	vkt_close_to("moe eager vs host-grouped on the device", eager,
		     grouped, MOUT, 1e-5, 1e-5);
	assert_true(memcmp(eager, eager + MN * MH, MN * MH * sizeof(float)));
}

static void test_failed_op_is_reported_by_the_next_download(void **state)
{
	struct hf_err err = { 0 };
	struct hf_backend *be;
	struct hf_buf *a, *b;
	float v[4];

	if (hf_backend_vulkan_create(&be, &err))
		fail_msg("%s", err.msg);
	a = mk(be, HF_DTYPE_F32, 4, NULL);
	b = mk(be, HF_DTYPE_I8, 4, NULL);
	/* int8 weights are not (yet) a matmul dtype on the device */
	hf_op_matmul(a, a, b, NULL, 1, 2, 2);
	assert_int_equal(hf_buf_download(a, 0, v, sizeof(v), &err),
			 HF_EUNSUPPORTED);
	assert_non_null(strstr(err.msg, "matmul"));
	hf_buf_free(a);
	hf_buf_free(b);
	hf_backend_free(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_misc_ops_match_the_cpu_backend),
		cmocka_unit_test(test_graph_replay_matches_the_cpu_backend),
		cmocka_unit_test(test_replay_at_new_positions_equals_eager_ops),
		cmocka_unit_test(test_moe_layer_replayed_matches_the_cpu_backend),
		cmocka_unit_test(test_failed_op_is_reported_by_the_next_download),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
