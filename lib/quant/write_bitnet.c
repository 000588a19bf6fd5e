/* lib/quant/write_bitnet.c: BitNet b1.58 ternary weights in the layout
 * of microsoft/bitnet-b1.58-2B-4T: absmean quantization as transformers'
 * integrations/bitnet.py WeightQuant computes it, packed four rows to a
 * byte by row blocks as its pack_weights does. */
#include "quant/qwrite.h"

#include <math.h>
#include <string.h>

int hf_quant_bitnet(struct hf_qlinear *q, const float *W, size_t rows,
		    size_t cols, int autobitlinear, enum hf_dtype sdt,
		    struct hf_err *err)
{
	size_t R = rows / 4, esz;
	double sum = 0.0;	/* rows * cols can be 10^8: sum in double */
	float mean, s, v;
	uint8_t *p;
	void *ws;

	memset(q, 0, sizeof(*q));
	if (hf_quant_check_w(W, rows, cols, "bitnet", err))
		return err->code;
	if (rows % 4)
		return hf_err_set(err, HF_EINVAL, "bitnet: out (%zu) is not a "
				  "multiple of 4", rows);
	if (sdt != HF_DTYPE_BF16 && sdt != HF_DTYPE_F16 &&
	    sdt != HF_DTYPE_F32)
		return hf_err_set(err, HF_EINVAL, "bitnet: weight_scale dtype "
				  "%s (BF16, F16, F32)", hf_dtype_name(sdt));
	esz = sdt == HF_DTYPE_F32 ? 4 : 2;
	if (!(p = hf_qlinear_add(q, "weight", HF_DTYPE_U8, 2, (int64_t)R,
				 (int64_t)cols, R * cols, err)) ||
	    !(ws = hf_qlinear_add(q, "weight_scale", sdt, 1, 1, 0, esz, err))) {
		hf_qlinear_free(q);
		return err->code;
	}
	/* s = 1 / mean|W|.clamp(min=1e-5); q = round(W * s).clamp(-1, 1) */
	for (size_t i = 0; i < rows * cols; i++)
		sum += fabsf(W[i]);
	mean = fmaxf((float)(sum / (double)(rows * cols)), 1e-5f);
	s = 1.0f / mean;
	/* packed row r % R holds row r at bits 2 (r / R), as q + 1 */
	for (size_t r = 0; r < rows; r++) {
		unsigned sh = 2 * (unsigned)(r / R);

		for (size_t c = 0; c < cols; c++) {
			float t = fminf(fmaxf(rintf(W[r * cols + c] * s),
					      -1.0f), 1.0f);

			p[(r % R) * cols + c] |= (uint8_t)((int)t + 1) << sh;
		}
	}
	/* AutoBitLinear multiplies its output by weight_scale (mean|W|);
	 * BitLinear divides by it (s) */
	v = autobitlinear ? mean : s;
	if (sdt == HF_DTYPE_F32) {
		memcpy(ws, &v, 4);
	} else {
		uint16_t h = sdt == HF_DTYPE_F16 ? hf_f32_to_f16(v) :
						   hf_f32_to_bf16(v);

		memcpy(ws, &h, 2);
	}
	return 0;
}
