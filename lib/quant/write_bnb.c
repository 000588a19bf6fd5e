/* lib/quant/write_bnb.c: the bitsandbytes writers, LLM.int8 and 4-bit
 * NF4/FP4 with optional double quantization, as bitsandbytes' default
 * (reference) kernels compute them (bitsandbytes backends/default/
 * ops.py: int8_vectorwise_quant, quantize_blockwise, quantize_4bit;
 * functional.py: quantize_4bit, create_dynamic_map, QuantState.as_dict;
 * utils.py: pack_dict_to_tensor). Also the qlinear helpers the other
 * write_*.c files share. */
#include "quant/qwrite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/formats.h"

void hf_qlinear_free(struct hf_qlinear *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n; i++)
		free(q->t[i].data);
	memset(q, 0, sizeof(*q));
}

void *hf_qlinear_add(struct hf_qlinear *q, const char *suffix,
		     enum hf_dtype dt, int ndim, int64_t d0, int64_t d1,
		     size_t nbytes, struct hf_err *err)
{
	struct hf_qtensor *t;

	if (q->n >= HF_QT_MAX) {
		hf_err_set(err, HF_EINTERNAL, "quantized linear has more than "
			   "%d tensors adding '%s'", HF_QT_MAX, suffix);
		return NULL;
	}
	t = &q->t[q->n];
	memset(t, 0, sizeof(*t));
	/* calloc(0) may return NULL: ask for one byte at least */
	if (!(t->data = calloc(nbytes ? nbytes : 1, 1))) {
		hf_err_set(err, HF_ENOMEM, "out of memory for tensor '%s' "
			   "(%zu bytes)", suffix, nbytes);
		return NULL;
	}
	snprintf(t->suffix, sizeof(t->suffix), "%s", suffix);
	t->dtype = dt;
	t->ndim = ndim;
	t->shape[0] = ndim >= 1 ? d0 : 0;
	t->shape[1] = ndim >= 2 ? d1 : 0;
	t->nbytes = nbytes;
	q->n++;
	return t->data;
}

int hf_quant_check_w(const float *W, size_t rows, size_t cols,
		     const char *fn, struct hf_err *err)
{
	if (!rows || !cols)
		return hf_err_set(err, HF_EINVAL, "%s: empty weight (%zu x %zu)",
				  fn, rows, cols);
	for (size_t i = 0; i < rows * cols; i++)
		if (!isfinite(W[i]))
			return hf_err_set(err, HF_EINVAL, "%s: weight element "
					  "(%zu, %zu) is %g, not a finite "
					  "number", fn, i / cols, i % cols,
					  (double)W[i]);
	return 0;
}

/* ---- LLM.int8 ---------------------------------------------------------------- */

int hf_quant_int8(struct hf_qlinear *q, const float *W, size_t rows,
		  size_t cols, struct hf_err *err)
{
	int8_t *qw;
	float *scb;
	uint8_t *fmt;

	memset(q, 0, sizeof(*q));
	if (hf_quant_check_w(W, rows, cols, "int8", err))
		return err->code;
	if (!(qw = hf_qlinear_add(q, "weight", HF_DTYPE_I8, 2, (int64_t)rows,
				  (int64_t)cols, rows * cols, err)) ||
	    !(scb = hf_qlinear_add(q, "SCB", HF_DTYPE_F32, 1, (int64_t)rows, 0,
				   rows * sizeof(float), err)) ||
	    !(fmt = hf_qlinear_add(q, "weight_format", HF_DTYPE_U8, 0, 0, 0,
				   1, err)))
		goto fail;
	*fmt = 0;	/* "row" */
	for (size_t r = 0; r < rows; r++) {
		const float *w = W + r * cols;
		float m = 0.0f, f;

		for (size_t c = 0; c < cols; c++)
			m = fmaxf(m, fabsf(w[c]));
		scb[r] = m;
		if (m == 0.0f)
			continue;	/* bnb divides by zero here; q stays 0 */
		/* out = round(A * (127 / row_stats)): the factor in f32
		 * first, round half to even as torch.round */
		f = 127.0f / m;
		for (size_t c = 0; c < cols; c++) {
			float v = rintf(w[c] * f);

			qw[r * cols + c] = (int8_t)fminf(fmaxf(v, -127.0f),
							 127.0f);
		}
	}
	return 0;
fail:
	hf_qlinear_free(q);
	return err->code;
}

/* ---- blockwise absmax quantization ---------------------------------------------- */

/* torch.bucketize(v, bounds) (right=False): the number of bounds < v, so
 * a value on a midpoint goes to the lower code. */
static unsigned bucket(float v, const float *bounds, unsigned nb)
{
	unsigned lo = 0, hi = nb;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (bounds[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* quantize_blockwise / quantize_4bit of the default backend: per block
 * of bs of the n values x, absmax = max|x| and the scaled values
 * clamp(x * (1 / max(absmax, 1e-38)), -1, 1); a last partial block
 * divides by its absmax instead, and its stored absmax is the clamped
 * one. codes[i] = bucket of the scaled x[i] (n of them). */
static void blockwise(uint8_t *codes, float *absmax, const float *x,
		      size_t n, size_t bs, const float *bounds, unsigned nb)
{
	size_t full = n - n % bs;

	for (size_t b0 = 0; b0 < n; b0 += bs) {
		size_t len = n - b0 < bs ? n - b0 : bs;
		float m = 0.0f;

		for (size_t i = 0; i < len; i++)
			m = fmaxf(m, fabsf(x[b0 + i]));
		if (b0 < full) {
			float r = 1.0f / fmaxf(m, 1e-38f);

			absmax[b0 / bs] = m;
			for (size_t i = 0; i < len; i++) {
				float s = fminf(fmaxf(x[b0 + i] * r, -1.0f),
						1.0f);

				codes[b0 + i] = (uint8_t)bucket(s, bounds, nb);
			}
		} else {
			m = fmaxf(m, 1e-38f);
			absmax[b0 / bs] = m;
			for (size_t i = 0; i < len; i++) {
				float s = fminf(fmaxf(x[b0 + i] / m, -1.0f),
						1.0f);

				codes[b0 + i] = (uint8_t)bucket(s, bounds, nb);
			}
		}
	}
}

/* torch.linspace(start, end, steps) in float32 as its CPU kernel
 * (aten native/cpu/RangeFactoriesKernel.cpp) computes it on an AVX2
 * machine, which the values of bitsandbytes' dynamic map depend on at
 * the last bit: step = (end - start) / (steps - 1); element i is
 * start + step * i in the first half, end - step * (steps - 1 - i) in
 * the second, both fused multiply-adds; but while 16 or more remain,
 * it writes two vectors of 8, each from its first element b (found as
 * above) as b + step * j, a rounded product then a rounded sum.
 * Checked against torch 1.13 (AVX2): all 256 values of the map agree;
 * an AVX-512 build (vectors of 16) differs by an ulp in some. */
static float lin_at(float start, float end, float step, int steps, int i)
{
	return i < steps / 2 ? fmaf(step, (float)i, start) :
			       fmaf(-step, (float)(steps - i - 1), end);
}

static void linspace_f32(float *out, float start, float end, int steps)
{
	float step = (end - start) / (float)(steps - 1);
	int idx = 0;

	for (; idx + 16 <= steps; idx += 16)
		for (int v = idx; v < idx + 16; v += 8) {
			float b = lin_at(start, end, step, steps, v);

			for (int j = 0; j < 8; j++) {
				volatile float p = step * (float)j; /* no fma */

				out[v + j] = j ? b + p : b;
			}
		}
	for (; idx < steps; idx++)
		out[idx] = lin_at(start, end, step, steps, idx);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/* bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7,
 * total_bits=8), the code of the nested (8-bit) absmax: for exponent
 * i = 0 .. 6, the 2^i midpoints of linspace(0.1, 1, 2^i + 1) times
 * 10^(i - 6), and their negatives; then 0 and 1; sorted. */
static void dynamic_map(float code[256])
{
	float b[65];
	int n = 0;

	for (int i = 0; i < 7; i++) {
		int steps = (1 << i) + 1;
		/* torch multiplies by the Python scalar cast to float32 */
		float p = (float)pow(10.0, i - 6);

		linspace_f32(b, 0.1f, 1.0f, steps);
		for (int k = 0; k + 1 < steps; k++)
			code[n++] = p * ((b[k] + b[k + 1]) / 2.0f);
		for (int k = 0; k + 1 < steps; k++)
			code[n++] = -p * ((b[k] + b[k + 1]) / 2.0f);
	}
	code[n++] = 0.0f;
	code[n++] = 1.0f;
	qsort(code, 256, sizeof(float), cmp_float);
}

/* Python's repr() of a float (what json.dumps writes): the shortest
 * digits that read back as v, fixed notation for decimal exponents
 * -4 <= e < 16 (always with a fractional part), else d.ddde+XX. */
static void py_float_repr(char *buf, size_t cap, double v)
{
	char tmp[40], digits[24];
	int p, e, nd = 0, decpt;
	const char *s;
	size_t o = 0;

	if (v == 0.0) {
		snprintf(buf, cap, "%s", signbit(v) ? "-0.0" : "0.0");
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	s = tmp;
	if (*s == '-')
		s++;
	for (; *s && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9')
			digits[nd++] = *s;
	e = atoi(s + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	decpt = e + 1;
	if (v < 0)
		tmp[o++] = '-';
	if (decpt > -4 && decpt <= 16) {
		if (decpt <= 0) {
			tmp[o++] = '0';
			tmp[o++] = '.';
			for (int i = 0; i < -decpt; i++)
				tmp[o++] = '0';
			for (int i = 0; i < nd; i++)
				tmp[o++] = digits[i];
		} else {
			for (int i = 0; i < decpt; i++)
				tmp[o++] = i < nd ? digits[i] : '0';
			tmp[o++] = '.';
			if (decpt >= nd)
				tmp[o++] = '0';
			for (int i = decpt; i < nd; i++)
				tmp[o++] = digits[i];
		}
		tmp[o] = '\0';
	} else {
		tmp[o++] = digits[0];
		if (nd > 1) {
			tmp[o++] = '.';
			for (int i = 1; i < nd; i++)
				tmp[o++] = digits[i];
		}
		snprintf(tmp + o, sizeof(tmp) - o, "e%c%02d", e < 0 ? '-' : '+',
			 e < 0 ? -e : e);
	}
	snprintf(buf, cap, "%s", tmp);
}

/* ---- 4-bit ------------------------------------------------------------------------ */

int hf_quant_bnb4(struct hf_qlinear *q, const float *W, size_t rows,
		  size_t cols, int fp4, size_t blocksize, int double_quant,
		  const char *dtype, struct hf_err *err)
{
	const float *code = fp4 ? hf_fp4_table : hf_nf4_table;
	const char *qt = fp4 ? "fp4" : "nf4";
	size_t n = rows * cols, nb, nn = 0;
	uint8_t order[16], *codes = NULL, *packed, *state;
	float bounds[15], *absmax = NULL, *qmap;
	char json[512], sfx[64], off[40];
	int len;

	memset(q, 0, sizeof(*q));
	if (hf_quant_check_w(W, rows, cols, "bnb4", err))
		return err->code;
	if (blocksize < 32 || blocksize > 4096 ||
	    (blocksize & (blocksize - 1)))
		return hf_err_set(err, HF_EINVAL, "bnb4: blocksize %zu is not a "
				  "power of two in 32 .. 4096", blocksize);
	if (!dtype || (strcmp(dtype, "bfloat16") && strcmp(dtype, "float16") &&
		       strcmp(dtype, "float32")))
		return hf_err_set(err, HF_EINVAL, "bnb4: dtype '%s' (bfloat16, "
				  "float16, float32)", dtype ? dtype : "(null)");
	nb = (n + blocksize - 1) / blocksize;

	/* _get_4bit_quantize_bounds: order = argsort(code), bounds the
	 * midpoints of the sorted code. torch's sort of 16 keeps equal
	 * keys (FP4's 0 and -0) in index order, as this insertion sort. */
	for (unsigned i = 0; i < 16; i++) {
		unsigned j = i;

		while (j > 0 && code[order[j - 1]] > code[i]) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = (uint8_t)i;
	}
	for (unsigned i = 0; i < 15; i++)
		bounds[i] = (code[order[i]] + code[order[i + 1]]) / 2.0f;

	if (!(codes = malloc(n)) ||
	    !(absmax = malloc(nb * sizeof(float)))) {
		hf_err_set(err, HF_ENOMEM, "bnb4: out of memory for %zu codes",
			   n);
		goto fail;
	}
	blockwise(codes, absmax, W, n, blocksize, bounds, 15);

	if (!(packed = hf_qlinear_add(q, "weight", HF_DTYPE_U8, 2,
				      (int64_t)((n + 1) / 2), 1, (n + 1) / 2,
				      err)))
		goto fail;
	/* element 2i in the high nibble; an odd count pads with the code
	 * of 0.0 */
	for (size_t i = 0; i < n; i += 2) {
		unsigned hi = order[codes[i]];
		unsigned lo = i + 1 < n ? order[codes[i + 1]] :
					  order[bucket(0.0f, bounds, 15)];

		packed[i / 2] = (uint8_t)(hi << 4 | lo);
	}

	if (!double_quant) {
		float *am = hf_qlinear_add(q, "weight.absmax", HF_DTYPE_F32, 1,
					   (int64_t)nb, 0, nb * sizeof(float),
					   err);

		if (!am)
			goto fail;
		memcpy(am, absmax, nb * sizeof(float));
		if (!(qmap = hf_qlinear_add(q, "weight.quant_map", HF_DTYPE_F32,
					    1, 16, 0, 16 * sizeof(float), err)))
			goto fail;
		memcpy(qmap, code, 16 * sizeof(float));
		off[0] = '\0';
	} else {
		float dmap[256], dbounds[255], *nabs, *nmap;
		uint8_t *aq;
		double sum = 0.0;
		float offset;

		/* offset = absmax.mean(); absmax - offset in 8-bit blocks
		 * of 256 with the signed dynamic map */
		for (size_t b = 0; b < nb; b++)
			sum += absmax[b];
		offset = (float)(sum / (double)nb);
		for (size_t b = 0; b < nb; b++)
			absmax[b] -= offset;
		dynamic_map(dmap);
		for (unsigned i = 0; i < 255; i++)
			dbounds[i] = (dmap[i] + dmap[i + 1]) / 2.0f;
		nn = (nb + 255) / 256;
		if (!(aq = hf_qlinear_add(q, "weight.absmax", HF_DTYPE_U8, 1,
					  (int64_t)nb, 0, nb, err)) ||
		    !(qmap = hf_qlinear_add(q, "weight.quant_map", HF_DTYPE_F32,
					    1, 16, 0, 16 * sizeof(float),
					    err)) ||
		    !(nabs = hf_qlinear_add(q, "weight.nested_absmax",
					    HF_DTYPE_F32, 1, (int64_t)nn, 0,
					    nn * sizeof(float), err)) ||
		    !(nmap = hf_qlinear_add(q, "weight.nested_quant_map",
					    HF_DTYPE_F32, 1, 256, 0,
					    256 * sizeof(float), err)))
			goto fail;
		memcpy(qmap, code, 16 * sizeof(float));
		memcpy(nmap, dmap, sizeof(dmap));
		blockwise(aq, nabs, absmax, nb, 256, dbounds, 255);
		/* offset.item(): the float32 as a Python float */
		py_float_repr(off, sizeof(off), (double)offset);
	}

	/* json.dumps(d) of QuantState.as_dict's non-tensor items, in
	 * their insertion order, with the default ", " and ": " */
	len = snprintf(json, sizeof(json), "{\"quant_type\": \"%s\", "
		       "\"blocksize\": %zu, \"dtype\": \"%s\", \"shape\": "
		       "[%zu, %zu]", qt, blocksize, dtype, rows, cols);
	if (double_quant)
		len += snprintf(json + len, sizeof(json) - (size_t)len,
				", \"nested_blocksize\": 256, \"nested_dtype\": "
				"\"float32\", \"nested_offset\": %s", off);
	len += snprintf(json + len, sizeof(json) - (size_t)len, "}");
	snprintf(sfx, sizeof(sfx), "weight.quant_state.bitsandbytes__%s", qt);
	if (!(state = hf_qlinear_add(q, sfx, HF_DTYPE_U8, 1, len, 0,
				     (size_t)len, err)))
		goto fail;
	memcpy(state, json, (size_t)len);
	free(codes);
	free(absmax);
	return 0;
fail:
	free(codes);
	free(absmax);
	hf_qlinear_free(q);
	return err->code;
}
