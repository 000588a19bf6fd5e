/* lib/quant/write_gptq.c: the GPTQ and AWQ writers: GPTQ's scale/zero
 * and rounding (AutoGPTQ auto_gptq/quantization/quantizer.py), its
 * qweight/qzeros packing (auto_gptq/nn_modules/qlinear/
 * qlinear_cuda_old.py pack), round-to-nearest in that layout, and
 * AutoAWQ's zero-point quantizer with the gemm packing (awq/quantize/
 * quantizer.py pseudo_quantize_tensor, awq/modules/linear/gemm.py
 * from_linear). */
#include "quant/qwrite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void hf_gptq_scale_zero(const float *x, size_t n, size_t stride,
			unsigned bits, int sym, float *scale, uint8_t *zero)
{
	const float maxq = (float)((1u << bits) - 1);
	float xmin = 0.0f, xmax = 0.0f;	/* the range always holds 0 */

	for (size_t i = 0; i < n; i++) {
		xmin = fminf(xmin, x[i * stride]);
		xmax = fmaxf(xmax, x[i * stride]);
	}
	if (sym) {
		xmax = fmaxf(fabsf(xmin), xmax);
		/* quantizer.py mirrors xmin only where it is negative: an
		 * all-positive group keeps xmin 0 */
		if (xmin < 0.0f)
			xmin = -xmax;
	}
	if (xmin == 0.0f && xmax == 0.0f) {
		xmin = -1.0f;
		xmax = 1.0f;
	}
	*scale = (xmax - xmin) / maxq;
	if (sym)
		*zero = (uint8_t)(1u << (bits - 1));	/* (maxq + 1) / 2 */
	else
		*zero = (uint8_t)fminf(fmaxf(rintf(-xmin / *scale), 0.0f),
				       maxq);
}

uint8_t hf_gptq_q(float w, float scale, uint8_t zero, unsigned bits)
{
	float q = rintf(w / scale) + (float)zero;

	return (uint8_t)fminf(fmaxf(q, 0.0f), (float)((1u << bits) - 1));
}

/* OR field j of b bits, value v, into a run of words w[0], w[step],
 * w[2 * step] ..., as AutoGPTQ's pack does with uint32 arithmetic: v
 * may have bits above b (v1's zero - 1 of a zero of 0 is all ones), and
 * those land in the same word's higher fields as there. 3 bits: 32
 * fields per 3 words, fields 10 and 21 split across two words. */
static void pack_or(uint32_t *w, size_t step, size_t j, uint32_t v,
		    unsigned b)
{
	if (b != 3) {
		size_t per = 32 / b;

		w[(j / per) * step] |= v << (b * (j % per));
		return;
	}
	w += (j / 32) * 3 * step;
	j %= 32;
	if (j < 10) {
		w[0] |= v << (3 * j);
	} else if (j == 10) {
		w[0] |= v << 30;
		w[step] |= (v >> 2) & 1;
	} else if (j < 21) {
		w[step] |= v << (3 * (j - 11) + 1);
	} else if (j == 21) {
		w[step] |= v << 31;
		w[2 * step] |= (v >> 1) & 3;
	} else {
		w[2 * step] |= v << (3 * (j - 22) + 2);
	}
}

int hf_gptq_pack(struct hf_qlinear *q, const uint8_t *qv,
		 const float *scales, const uint8_t *zeros,
		 const int32_t *g_idx, size_t rows, size_t cols, size_t G,
		 unsigned bits, int v2, struct hf_err *err)
{
	const unsigned maxq = (1u << bits) - 1;
	uint32_t *qw, *qz;
	uint16_t *sc;
	int32_t *gi;
	size_t zw;

	memset(q, 0, sizeof(*q));
	if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
		return hf_err_set(err, HF_EINVAL, "gptq: %u bits (2, 3, 4, 8)",
				  bits);
	if (!rows || !cols || !G || cols * bits % 32 || rows * bits % 32)
		return hf_err_set(err, HF_EINVAL, "gptq: %u-bit packing needs "
				  "in (%zu) and out (%zu) to fill 32-bit words",
				  bits, cols, rows);
	for (size_t i = 0; i < rows * cols; i++)
		if (qv[i] > maxq)
			return hf_err_set(err, HF_EINVAL, "gptq: q(%zu, %zu) = "
					  "%u does not fit %u bits", i / cols,
					  i % cols, qv[i], bits);
	for (size_t i = 0; i < G * rows; i++)
		if (zeros[i] > maxq || !isfinite(scales[i]))
			return hf_err_set(err, HF_EINVAL, "gptq: group %zu, "
					  "output %zu: zero %u / scale %g out "
					  "of range", i / rows, i % rows,
					  zeros[i], (double)scales[i]);
	for (size_t c = 0; c < cols; c++)
		if (g_idx[c] < 0 || (size_t)g_idx[c] >= G)
			return hf_err_set(err, HF_EINVAL, "gptq: g_idx[%zu] = %d "
					  "is not a group (0 .. %zu)", c,
					  (int)g_idx[c], G - 1);
	zw = rows * bits / 32;
	if (!(qw = hf_qlinear_add(q, "qweight", HF_DTYPE_I32, 2,
				  (int64_t)(cols * bits / 32), (int64_t)rows,
				  cols * bits / 32 * rows * 4, err)) ||
	    !(qz = hf_qlinear_add(q, "qzeros", HF_DTYPE_I32, 2, (int64_t)G,
				  (int64_t)zw, G * zw * 4, err)) ||
	    !(sc = hf_qlinear_add(q, "scales", HF_DTYPE_F16, 2, (int64_t)G,
				  (int64_t)rows, G * rows * 2, err)) ||
	    !(gi = hf_qlinear_add(q, "g_idx", HF_DTYPE_I32, 1, (int64_t)cols,
				  0, cols * 4, err))) {
		hf_qlinear_free(q);
		return err->code;
	}
	/* qweight (cols * bits / 32, rows): input c of output o is field c
	 * of column o, packed down the word rows */
	for (size_t o = 0; o < rows; o++)
		for (size_t c = 0; c < cols; c++)
			pack_or(qw + o, rows, c, qv[o * cols + c], bits);
	/* qzeros (G, rows * bits / 32): packed along the output; v1 keeps
	 * zero - 1 as uint32, so 0 becomes all ones */
	for (size_t g = 0; g < G; g++)
		for (size_t o = 0; o < rows; o++) {
			uint32_t z = zeros[g * rows + o];

			pack_or(qz + g * zw, 1, o, v2 ? z : z - 1u, bits);
		}
	for (size_t i = 0; i < G * rows; i++)
		sc[i] = hf_f32_to_f16(scales[i]);
	memcpy(gi, g_idx, cols * sizeof(int32_t));
	return 0;
}

int hf_quant_rtn(struct hf_qlinear *q, const float *W, size_t rows,
		 size_t cols, unsigned bits, long group_size, int sym,
		 int v2, struct hf_err *err)
{
	size_t gs, G;
	uint8_t *qv = NULL, *zeros = NULL;
	float *scales = NULL;
	int32_t *g_idx = NULL;
	int rc;

	memset(q, 0, sizeof(*q));
	if (hf_quant_check_w(W, rows, cols, "rtn", err))
		return err->code;
	if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
		return hf_err_set(err, HF_EINVAL, "rtn: %u bits (2, 3, 4, 8)",
				  bits);
	if (group_size == 0 || group_size < -1)
		return hf_err_set(err, HF_EINVAL, "rtn: group_size %ld (-1 or "
				  "positive)", group_size);
	gs = group_size < 0 ? cols : (size_t)group_size;
	G = (cols + gs - 1) / gs;
	qv = malloc(rows * cols);
	zeros = malloc(G * rows);
	scales = malloc(G * rows * sizeof(float));
	g_idx = malloc(cols * sizeof(int32_t));
	if (!qv || !zeros || !scales || !g_idx) {
		rc = hf_err_set(err, HF_ENOMEM, "rtn: out of memory for a %zu "
				"x %zu weight", rows, cols);
		goto out;
	}
	for (size_t g = 0; g < G; g++) {
		size_t c0 = g * gs, n = cols - c0 < gs ? cols - c0 : gs;

		for (size_t o = 0; o < rows; o++) {
			const float *w = W + o * cols + c0;
			float s;
			uint8_t z;

			hf_gptq_scale_zero(w, n, 1, bits, sym, &s, &z);
			scales[g * rows + o] = s;
			zeros[g * rows + o] = z;
			for (size_t c = 0; c < n; c++)
				qv[o * cols + c0 + c] = hf_gptq_q(w[c], s, z,
								  bits);
		}
	}
	for (size_t c = 0; c < cols; c++)
		g_idx[c] = (int32_t)(c / gs);
	rc = hf_gptq_pack(q, qv, scales, zeros, g_idx, rows, cols, G, bits,
			  v2, err);
out:
	free(qv);
	free(zeros);
	free(scales);
	free(g_idx);
	return rc;
}

/* Nibble k of an AWQ word holds output column awq_order[k] of its 8. */
static const unsigned awq_order[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };

int hf_quant_awq(struct hf_qlinear *q, const float *W, size_t rows,
		 size_t cols, size_t group_size, struct hf_err *err)
{
	size_t G, lw = rows / 8;
	uint32_t *qw, *qz;
	uint16_t *sc;
	unsigned pos[8];

	memset(q, 0, sizeof(*q));
	if (hf_quant_check_w(W, rows, cols, "awq", err))
		return err->code;
	if (!group_size || rows % 8 || cols % group_size)
		return hf_err_set(err, HF_EINVAL, "awq: needs out (%zu) a "
				  "multiple of 8 and in (%zu) of the group "
				  "size %zu", rows, cols, group_size);
	G = cols / group_size;
	for (unsigned k = 0; k < 8; k++)
		pos[awq_order[k]] = k;
	if (!(qw = hf_qlinear_add(q, "qweight", HF_DTYPE_I32, 2, (int64_t)cols,
				  (int64_t)lw, cols * lw * 4, err)) ||
	    !(qz = hf_qlinear_add(q, "qzeros", HF_DTYPE_I32, 2, (int64_t)G,
				  (int64_t)lw, G * lw * 4, err)) ||
	    !(sc = hf_qlinear_add(q, "scales", HF_DTYPE_F16, 2, (int64_t)G,
				  (int64_t)rows, G * rows * 2, err))) {
		hf_qlinear_free(q);
		return err->code;
	}
	for (size_t o = 0; o < rows; o++) {
		unsigned sh = 4 * pos[o % 8];

		for (size_t g = 0; g < G; g++) {
			const float *w = W + o * cols + g * group_size;
			float mx = w[0], mn = w[0], s, z;

			/* pseudo_quantize_tensor, zero_point: the range is
			 * the group's own (no 0 forced in) */
			for (size_t c = 1; c < group_size; c++) {
				mx = fmaxf(mx, w[c]);
				mn = fminf(mn, w[c]);
			}
			s = fmaxf(mx - mn, 1e-5f) / 15.0f;
			z = fminf(fmaxf(-rintf(mn / s), 0.0f), 15.0f);
			/* from_linear packs round((w_q + z * s) / fp16(s)),
			 * which gives back this q for every 4-bit value */
			for (size_t c = 0; c < group_size; c++) {
				float v = fminf(fmaxf(rintf(w[c] / s) + z,
						      0.0f), 15.0f);

				qw[(g * group_size + c) * lw + o / 8] |=
					(uint32_t)v << sh;
			}
			qz[g * lw + o / 8] |= (uint32_t)z << sh;
			sc[g * rows + o] = hf_f32_to_f16(s);
		}
	}
	return 0;
}
