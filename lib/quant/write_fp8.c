/* lib/quant/write_fp8.c: FP8 E4M3 weights with 2-D block scales, as
 * transformers' FineGrainedFP8 quantizer makes them
 * (quantizers/quantizer_finegrained_fp8.py: scale = 448 / block absmax,
 * weight = e4m3(clamp(W * scale, -448, 448)), weight_scale_inv =
 * 1 / scale), the layout of DeepSeek-V3 and Qwen FP8 checkpoints. */
#include "quant/qwrite.h"

#include <math.h>
#include <string.h>

/* float32 to E4M3 "fn" (bias 7, no infinities, S.1111.111 the only NaN,
 * max 448), round to nearest even, saturating at +-448: what
 * torch.float8_e4m3fn casts give for values inside the range. */
static uint8_t f32_to_e4m3(float f)
{
	uint8_t sign = signbit(f) ? 0x80 : 0;
	float a = fabsf(f);
	int e;

	if (isnan(f))
		return sign | 0x7f;
	if (a >= 448.0f)
		return sign | 0x7e;
	if (a < 0x1p-6f) {
		/* subnormals are m * 2^-9; m = 8 is the smallest normal,
		 * whose code is 8 too */
		return sign | (uint8_t)rintf(a * 512.0f);
	}
	frexpf(a, &e);
	e -= 1;				/* a = 1.m * 2^e */
	{
		int m = (int)rintf(ldexpf(a, 3 - e));	/* 8 .. 16 */

		if (m == 16) {
			m = 8;
			e++;
		}
		return sign | (uint8_t)((e + 7) << 3 | (m - 8));
	}
}

int hf_quant_fp8(struct hf_qlinear *q, const float *W, size_t rows,
		 size_t cols, size_t br, size_t bc, struct hf_err *err)
{
	size_t nr, nc;
	uint8_t *p;
	float *si;

	memset(q, 0, sizeof(*q));
	if (hf_quant_check_w(W, rows, cols, "fp8", err))
		return err->code;
	if (!br || !bc)
		return hf_err_set(err, HF_EINVAL, "fp8: block %zu x %zu is "
				  "empty", br, bc);
	nr = (rows + br - 1) / br;
	nc = (cols + bc - 1) / bc;
	if (!(p = hf_qlinear_add(q, "weight", HF_DTYPE_F8_E4M3, 2,
				 (int64_t)rows, (int64_t)cols, rows * cols,
				 err)) ||
	    !(si = hf_qlinear_add(q, "weight_scale_inv", HF_DTYPE_F32, 2,
				  (int64_t)nr, (int64_t)nc,
				  nr * nc * sizeof(float), err))) {
		hf_qlinear_free(q);
		return err->code;
	}
	for (size_t bi = 0; bi < nr; bi++)
		for (size_t bj = 0; bj < nc; bj++) {
			size_t r0 = bi * br, r1 = r0 + br < rows ? r0 + br : rows;
			size_t c0 = bj * bc, c1 = c0 + bc < cols ? c0 + bc : cols;
			float m = 0.0f, scale;

			for (size_t r = r0; r < r1; r++)
				for (size_t c = c0; c < c1; c++)
					m = fmaxf(m, fabsf(W[r * cols + c]));
			scale = 448.0f / m;
			if (!isfinite(scale)) {
				/* all zero, or below 448 / FLT_MAX:
				 * transformers gets NaN (0 * inf); keep the
				 * codes 0 and store scale 0 */
				si[bi * nc + bj] = 0.0f;
				continue;
			}
			si[bi * nc + bj] = 1.0f / scale;
			for (size_t r = r0; r < r1; r++)
				for (size_t c = c0; c < c1; c++) {
					float v = W[r * cols + c] * scale;

					v = fminf(fmaxf(v, -448.0f), 448.0f);
					p[r * cols + c] = f32_to_e4m3(v);
				}
		}
	return 0;
}
