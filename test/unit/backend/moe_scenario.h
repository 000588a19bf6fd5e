/* test/unit/backend/moe_scenario.h: one Mixtral-style MoE layer run on
 * any backend, on the device ops (MOE_ROUTE, MATMUL_ID, MOE_SUM) eagerly
 * or recorded once and replayed, or on the host-grouped path the decoder
 * takes for long prompts on the CPU; shared by the CPU op tests and the
 * Vulkan backend tests. The includer defines rmk(be, dtype, n, init) and
 * rget(buf, dst) (download all of buf). */
#ifndef HF_TEST_MOE_SCENARIO_H
#define HF_TEST_MOE_SCENARIO_H

#include "tensor/dtype.h"

/* MN tokens of hidden MH routed to MK of ME experts of inter MI, bf16
 * weights (Mixtral's), MS steps with new inputs (so new routing). */
#define MN 3
#define MH 24
#define MI 20
#define ME 5
#define MK 2
#define MS 4
#define MOUT (MS * MN * MH)

struct moe_bufs {
	struct hf_buf *x, *wr, *router, *rw, *rexp, *wg, *wu, *wd;
	struct hf_buf *g, *u, *ye, *y;
};

static void moe_make(struct hf_backend *be, struct moe_bufs *b)
{
	static uint16_t wg[ME * MI * MH], wu[ME * MI * MH], wd[ME * MH * MI];
	float wr[ME * MH];

	for (int i = 0; i < ME * MI * MH; i++) {
		wg[i] = hf_f32_to_bf16(sinf(0.37f * i));
		wu[i] = hf_f32_to_bf16(cosf(0.23f * i));
		wd[i] = hf_f32_to_bf16(sinf(0.11f * i + 1.0f));
	}
	for (int i = 0; i < ME * MH; i++)
		wr[i] = sinf(1.3f * i);
	b->x = rmk(be, HF_DTYPE_F32, MN * MH, NULL);
	b->wr = rmk(be, HF_DTYPE_F32, ME * MH, wr);
	b->router = rmk(be, HF_DTYPE_F32, MN * ME, NULL);
	b->rw = rmk(be, HF_DTYPE_F32, MN * MK, NULL);
	b->rexp = rmk(be, HF_DTYPE_I32, MN * MK, NULL);
	b->wg = rmk(be, HF_DTYPE_BF16, ME * MI * MH, wg);
	b->wu = rmk(be, HF_DTYPE_BF16, ME * MI * MH, wu);
	b->wd = rmk(be, HF_DTYPE_BF16, ME * MH * MI, wd);
	b->g = rmk(be, HF_DTYPE_F32, MN * MK * MI, NULL);
	b->u = rmk(be, HF_DTYPE_F32, MN * MK * MI, NULL);
	b->ye = rmk(be, HF_DTYPE_F32, MN * MK * MH, NULL);
	b->y = rmk(be, HF_DTYPE_F32, MN * MH, NULL);
}

static void moe_free(struct moe_bufs *b)
{
	struct hf_buf **p = &b->x;

	for (size_t i = 0; i < sizeof(*b) / sizeof(*p); i++)
		hf_buf_free(p[i]);
}

static void moe_input(struct moe_bufs *b, int s)
{
	struct hf_err err = { 0 };
	float x[MN * MH];

	for (int i = 0; i < MN * MH; i++)
		x[i] = cosf(0.17f * i + 0.9f * s);
	if (hf_buf_upload(b->x, 0, x, sizeof(x), &err))
		fail_msg("%s", err.msg);
}

/* The device ops of one MoE layer. */
static void moe_ops(struct moe_bufs *b)
{
	hf_op_matmul(b->router, b->x, b->wr, NULL, MN, MH, ME);
	hf_op_moe_route(b->rw, b->rexp, b->router, MN, ME, MK);
	hf_op_matmul_id(b->g, b->x, b->wg, b->rexp, MN, MK, MH, MI, ME, 0);
	hf_op_matmul_id(b->u, b->x, b->wu, b->rexp, MN, MK, MH, MI, ME, 0);
	hf_op_glu(b->g, b->g, b->u, MN * MK, MI, HF_ACT_SILU);
	hf_op_matmul_id(b->ye, b->g, b->wd, b->rexp, MN, MK, MI, MH, ME, 1);
	hf_op_moe_sum(b->y, b->ye, b->rw, MN, MK, MH);
}

/* MS steps of the device ops, eagerly or (replay) recorded at step 0
 * and replayed; out: y of each step (MOUT floats). */
static void scenario_moe(struct hf_backend *be, int replay, float *out)
{
	struct hf_err err = { 0 };
	struct moe_bufs b;
	struct hf_graph g;

	moe_make(be, &b);
	for (int s = 0; s < MS; s++) {
		moe_input(&b, s);
		if (replay && s > 0) {
			if (hf_graph_replay(be, &g, &err))
				fail_msg("replay: %s", err.msg);
		} else {
			if (replay && hf_graph_begin(be, &g, &err))
				fail_msg("%s", err.msg);
			moe_ops(&b);
			if (replay && hf_graph_end(be, &g, &err))
				fail_msg("%s", err.msg);
		}
		if (hf_backend_status(be, &err))
			fail_msg("%s", err.msg);
		rget(b.y, out + s * MN * MH);
	}
	if (replay)
		hf_graph_free(be, &g);
	moe_free(&b);
}

/* The same MS steps on the host-grouped path of lib/model/decoder.c's
 * moe(): the routing downloaded, each expert's tokens gathered, one
 * matmul per projection on views of the stacked weights, ADD_ROWS into
 * zeros. */
static void scenario_moe_grouped(struct hf_backend *be, float *out)
{
	struct hf_err err = { 0 };
	struct moe_bufs b;
	struct hf_buf *xe, *ridx, *rwt, *vg, *vu, *vd;

	moe_make(be, &b);
	xe = rmk(be, HF_DTYPE_F32, MN * MH, NULL);
	ridx = rmk(be, HF_DTYPE_I32, MN, NULL);
	rwt = rmk(be, HF_DTYPE_F32, MN, NULL);
	for (int s = 0; s < MS; s++) {
		int32_t exp[MN * MK], rows[MN];
		float w[MN * MK], wt[MN];

		moe_input(&b, s);
		hf_op_matmul(b.router, b.x, b.wr, NULL, MN, MH, ME);
		hf_op_moe_route(b.rw, b.rexp, b.router, MN, ME, MK);
		rget(b.rexp, (void *)exp);
		rget(b.rw, w);
		hf_op_scale(b.y, b.y, MN * MH, 0.0f);
		for (int e = 0; e < ME; e++) {
			size_t ne = 0;

			for (int t = 0; t < MN; t++)
				for (int j = 0; j < MK; j++)
					if (exp[t * MK + j] == e) {
						rows[ne] = t;
						wt[ne++] = w[t * MK + j];
					}
			if (!ne)
				continue;
			if (hf_buf_upload(ridx, 0, rows, ne * 4, &err) ||
			    hf_buf_upload(rwt, 0, wt, ne * 4, &err) ||
			    hf_buf_view(&vg, b.wg, (size_t)e * MI * MH,
					MI * MH, &err) ||
			    hf_buf_view(&vu, b.wu, (size_t)e * MI * MH,
					MI * MH, &err) ||
			    hf_buf_view(&vd, b.wd, (size_t)e * MH * MI,
					MH * MI, &err))
				fail_msg("%s", err.msg);
			hf_op_get_rows(xe, b.x, ridx, ne, MH, MN);
			hf_op_matmul(b.g, xe, vg, NULL, ne, MH, MI);
			hf_op_matmul(b.u, xe, vu, NULL, ne, MH, MI);
			hf_op_glu(b.g, b.g, b.u, ne, MI, HF_ACT_SILU);
			hf_op_matmul(b.ye, b.g, vd, NULL, ne, MI, MH);
			hf_op_add_rows(b.y, b.ye, ridx, rwt, ne, MH);
			hf_buf_free(vg);
			hf_buf_free(vu);
			hf_buf_free(vd);
		}
		if (hf_backend_status(be, &err))
			fail_msg("%s", err.msg);
		rget(b.y, out + s * MN * MH);
	}
	hf_buf_free(xe);
	hf_buf_free(ridx);
	hf_buf_free(rwt);
	moe_free(&b);
}

#endif
