/* test/unit/backend/replay_scenario.h: one recorded decode step run on
 * any backend, eagerly or replayed; shared by the CPU op tests and the
 * Vulkan backend tests so both check the same scenario. */
#ifndef HF_TEST_REPLAY_SCENARIO_H
#define HF_TEST_REPLAY_SCENARIO_H

/* A decode step for B 2 rows of one token: q = x . w, RoPE at pos, keys
 * and values into the caches at column cols, attention over them with a
 * mask (row 1 left-padded by one column) and a window of 4. Steps 0..S-1
 * run at columns 0..S-1, eagerly or (replay) recorded at step 0 and
 * replayed after with only x, pos and cols uploaded. out: att of each
 * step, then the key cache. */
#define RB 2
#define RH 16
#define RHD 8
#define RC 7
#define RS 6

static void scenario_replay(struct hf_backend *be, int replay, float *out)
{
	struct hf_err err = { 0 };
	float x[RB * RH], w[RH * RH], mask[RB * RC], inv[RHD / 2];
	struct hf_buf *bx, *bw, *bq, *bk, *bv, *ba, *bm, *bp, *bc, *bf;
	struct hf_graph g;

	for (int i = 0; i < RH * RH; i++)
		w[i] = sinf(0.37f * i);
	for (int i = 0; i < RB * RC; i++)
		mask[i] = i == RC ? 0.0f : 1.0f;
	for (int i = 0; i < RHD / 2; i++)
		inv[i] = powf(10000.0f, -2.0f * i / RHD);
	bx = rmk(be, HF_DTYPE_F32, RB * RH, NULL);
	bw = rmk(be, HF_DTYPE_F32, RH * RH, w);
	bq = rmk(be, HF_DTYPE_F32, RB * RH, NULL);
	ba = rmk(be, HF_DTYPE_F32, RB * RH, NULL);
	bk = rmk(be, HF_DTYPE_F32, RB * RC * RH, NULL);
	bv = rmk(be, HF_DTYPE_F32, RB * RC * RH, NULL);
	bm = rmk(be, HF_DTYPE_F32, RB * RC, mask);
	bp = rmk(be, HF_DTYPE_I32, RB, NULL);
	bc = rmk(be, HF_DTYPE_I32, RB, NULL);
	bf = rmk(be, HF_DTYPE_F32, RHD / 2, inv);
	for (int s = 0; s < RS; s++) {
		/* row 1's first column is padding: its position lags */
		int32_t pos[RB] = { s, s ? s - 1 : 1 }, cols[RB] = { s, s };

		for (int i = 0; i < RB * RH; i++)
			x[i] = cosf(0.11f * i + 0.7f * s);
		if (hf_buf_upload(bx, 0, x, sizeof(x), &err) ||
		    hf_buf_upload(bp, 0, pos, sizeof(pos), &err) ||
		    hf_buf_upload(bc, 0, cols, sizeof(cols), &err))
			fail_msg("%s", err.msg);
		if (replay && s > 0) {
			if (hf_graph_replay(be, &g, &err))
				fail_msg("replay: %s", err.msg);
		} else {
			if (replay && hf_graph_begin(be, &g, &err))
				fail_msg("%s", err.msg);
			hf_op_matmul(bq, bx, bw, NULL, RB, RH, RH);
			hf_op_rope(bq, bp, bf, RB, RH / RHD, RHD, RHD,
				   HF_ROPE_HALF, 1.0f);
			hf_op_kv_store(bk, bq, bc, RB, 1, RC, RH);
			hf_op_kv_store(bv, bx, bc, RB, 1, RC, RH);
			hf_op_attention(ba, bq, bk, bv, bm, bc, RB, 1, RC,
					RH / RHD, RH / RHD / 2, RHD, 1, 4,
					1.0f / sqrtf(RHD));
			if (replay && hf_graph_end(be, &g, &err))
				fail_msg("%s", err.msg);
		}
		if (hf_backend_status(be, &err))
			fail_msg("%s", err.msg);
		rget(ba, out + s * RB * RH);
	}
	rget(bk, out + RS * RB * RH);
	if (replay)
		hf_graph_free(be, &g);
	hf_buf_free(bx);
	hf_buf_free(bw);
	hf_buf_free(bq);
	hf_buf_free(ba);
	hf_buf_free(bk);
	hf_buf_free(bv);
	hf_buf_free(bm);
	hf_buf_free(bp);
	hf_buf_free(bc);
	hf_buf_free(bf);
}

#endif
