/* lib/quant/formats.c: reading the quantized layouts of transformers'
 * quantizers (docs/quantization-formats.md): each format's dequant of a
 * panel, its binding from a checkpoint, and the checks that the tensors
 * agree with config.json's quantization_config. These are the reference
 * the fast kernels (tensor/matmul_*.c) and the shaders are tested
 * against. */
#include "quant/formats.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "quant/qconfig.h"
#include "st/st.h"

const float hf_nf4_table[16] = {
	-1.0f, -0.6961928009986877f, -0.5250730514526367f,
	-0.39491748809814453f, -0.28444138169288635f, -0.18477343022823334f,
	-0.09105003625154495f, 0.0f, 0.07958029955625534f,
	0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
	0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/* E2M1 with bitsandbytes' bias, in bit-pattern order, over 12 */
const float hf_fp4_table[16] = {
	0.0f, 0.0625f / 12, 8.0f / 12, 12.0f / 12, 4.0f / 12, 6.0f / 12,
	2.0f / 12, 3.0f / 12, -0.0f, -0.0625f / 12, -8.0f / 12, -12.0f / 12,
	-4.0f / 12, -6.0f / 12, -2.0f / 12, -3.0f / 12,
};

static size_t row_of(const struct hf_weight *w, size_t r)
{
	return w->q.roff + r;
}

/* ---- bitsandbytes LLM.int8 ------------------------------------------------ */

void hf_int8_dequant(float *dst, const struct hf_weight *w, size_t r0,
		     size_t rows, size_t k0, size_t kc)
{
	const int8_t *q = w->t[0];
	const float *scb = w->t[1];

	for (size_t r = 0; r < rows; r++) {
		size_t R = row_of(w, r0 + r);
		const int8_t *s = q + R * w->cols + k0;
		float f = scb[R] / 127.0f;

		for (size_t k = 0; k < kc; k++)
			dst[r * kc + k] = (float)s[k] * f;
	}
}

int hf_int8_span(const struct hf_weight *w, unsigned i, size_t r0, size_t n,
		 size_t *off, size_t *len, struct hf_err *err)
{
	(void)err;
	if (i == 0) {
		*off = r0 * w->cols;
		*len = n * w->cols;
	} else {
		*off = r0 * sizeof(float);
		*len = n * sizeof(float);
	}
	return 0;
}

/* ---- bitsandbytes 4-bit ----------------------------------------------------- */

static void bnb4_rows(float *dst, const struct hf_weight *w, size_t r0,
		      size_t rows, size_t k0, size_t kc, int dq)
{
	const uint8_t *codes = w->t[0];
	const float *qmap = w->t[2];
	const size_t bs = w->q.group;

	for (size_t r = 0; r < rows; r++) {
		size_t e0 = row_of(w, r0 + r) * w->cols + k0;

		for (size_t k = 0; k < kc; k++) {
			size_t e = e0 + k, b = e / bs;
			uint8_t c = codes[e >> 1];
			float am;

			c = (e & 1) ? (c & 15) : (c >> 4);
			if (dq) {
				const uint8_t *aq = w->t[1];
				const float *nabs = w->t[3], *nmap = w->t[4];

				am = nmap[aq[b]] * nabs[b / w->q.group2] +
				     w->q.p0;
			} else {
				am = ((const float *)w->t[1])[b];
			}
			dst[r * kc + k] = qmap[c] * am;
		}
	}
}

void hf_bnb4_dequant(float *dst, const struct hf_weight *w, size_t r0,
		     size_t rows, size_t k0, size_t kc)
{
	bnb4_rows(dst, w, r0, rows, k0, kc, 0);
}

void hf_bnb4dq_dequant(float *dst, const struct hf_weight *w, size_t r0,
		       size_t rows, size_t k0, size_t kc)
{
	bnb4_rows(dst, w, r0, rows, k0, kc, 1);
}

/* ---- GPTQ and AWQ ------------------------------------------------------------- */

/* Field j of b bits in a row of 32-bit words packed LSB first (3 bits:
 * 32 fields per 3 words, as one 96-bit little-endian number). */
static unsigned field(const uint32_t *words, size_t j, unsigned b)
{
	size_t bit = j * b, wi = bit / 32;
	unsigned sh = bit % 32;
	uint64_t v = words[wi] >> sh;

	if (sh + b > 32)
		v |= (uint64_t)words[wi + 1] << (32 - sh);
	return (unsigned)v & ((1u << b) - 1);
}

/* Field j of a column of fields packed down a (rows, ld) matrix of words:
 * word row j * b / 32 at column o (3 bits: across three word rows). */
static unsigned field_col(const uint32_t *q, size_t ld, size_t j, size_t o,
			  unsigned b)
{
	size_t bit = j * b, wr = bit / 32;
	unsigned sh = bit % 32;
	uint64_t v = q[wr * ld + o] >> sh;

	if (sh + b > 32)
		v |= (uint64_t)q[(wr + 1) * ld + o] << (32 - sh);
	return (unsigned)v & ((1u << b) - 1);
}

void hf_gptq_dequant(float *dst, const struct hf_weight *w, size_t r0,
		     size_t rows, size_t k0, size_t kc)
{
	const uint32_t *qw = w->t[0], *qz = w->t[1];
	const uint16_t *sc = w->t[2];
	const int32_t *gi = w->t[3];
	const unsigned b = w->q.bits, mask = (1u << b) - 1;
	const size_t ld = hf_weight_ld(w), zw = ld * b / 32;

	for (size_t r = 0; r < rows; r++) {
		size_t o = row_of(w, r0 + r);

		for (size_t k = 0; k < kc; k++) {
			size_t c = k0 + k;
			size_t g = gi ? (size_t)gi[c] : c / w->q.group;
			unsigned q = field_col(qw, ld, c, o, b);
			unsigned z = (field(qz + g * zw, o, b) + w->q.zoff) &
				     mask;

			dst[r * kc + k] = hf_f16_to_f32(sc[g * ld + o]) *
					  ((float)q - (float)z);
		}
	}
}

/* Nibble of output column o % 8 in an AWQ word. */
static const unsigned awq_pos[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };

void hf_awq_dequant(float *dst, const struct hf_weight *w, size_t r0,
		    size_t rows, size_t k0, size_t kc)
{
	const uint32_t *qw = w->t[0], *qz = w->t[1];
	const uint16_t *sc = w->t[2];
	const size_t ld = hf_weight_ld(w), lw = ld / 8;

	for (size_t r = 0; r < rows; r++) {
		size_t o = row_of(w, r0 + r);
		unsigned sh = 4 * awq_pos[o % 8];

		for (size_t k = 0; k < kc; k++) {
			size_t c = k0 + k, g = c / w->q.group;
			unsigned q = (qw[c * lw + o / 8] >> sh) & 15;
			unsigned z = (qz[g * lw + o / 8] >> sh) & 15;

			dst[r * kc + k] = hf_f16_to_f32(sc[g * ld + o]) *
					  ((float)q - (float)z);
		}
	}
}

/* ---- BitNet b1.58 ------------------------------------------------------------- */

void hf_bitnet_dequant(float *dst, const struct hf_weight *w, size_t r0,
		       size_t rows, size_t k0, size_t kc)
{
	const uint8_t *p = w->t[0];
	const size_t R = hf_weight_ld(w) / 4;

	for (size_t r = 0; r < rows; r++) {
		size_t o = row_of(w, r0 + r);
		const uint8_t *s = p + (o % R) * w->cols + k0;
		unsigned sh = 2 * (unsigned)(o / R);

		for (size_t k = 0; k < kc; k++)
			dst[r * kc + k] = (float)((int)((s[k] >> sh) & 3) - 1) *
					  w->q.p0;
	}
}

/* ---- FP8 E4M3 with block scales ------------------------------------------------ */

/* hf_f8e4m3_to_f32 by bits: normal numbers rebias the exponent (7 to
 * 127), subnormals are m * 2^-9, S.1111.111 is NaN. */
static inline float e4m3(uint8_t v)
{
	unsigned e = (v >> 3) & 15, m = v & 7;
	uint32_t u;
	float f;

	if (e == 15 && m == 7)
		return (v & 0x80) ? -NAN : NAN;
	if (!e) {
		f = (float)m * 0x1p-9f;
		return (v & 0x80) ? -f : f;
	}
	u = (uint32_t)(v & 0x80) << 24 | (e + 120) << 23 | m << 20;
	memcpy(&f, &u, 4);
	return f;
}

void hf_fp8_dequant(float *dst, const struct hf_weight *w, size_t r0,
		    size_t rows, size_t k0, size_t kc)
{
	const uint8_t *p = w->t[0];
	const float *si = w->t[1];
	const size_t nb = (w->cols + w->q.group - 1) / w->q.group;

	for (size_t r = 0; r < rows; r++) {
		size_t o = row_of(w, r0 + r);
		const uint8_t *s = p + o * w->cols;
		const float *srow = si + (o / w->q.group2) * nb;

		for (size_t k = 0; k < kc; k++) {
			size_t c = k0 + k;

			dst[r * kc + k] = e4m3(s[c]) *
					  srow[c / w->q.group];
		}
	}
}

/* ---- binding ---------------------------------------------------------------------- */

static const struct hf_tensor *getf(hf_wfmt_get_fn get, void *ctx,
				    const char *base, const char *sfx)
{
	char name[512];

	snprintf(name, sizeof(name), "%s.%s", base, sfx);
	return get(ctx, name);
}

/* t is of dtype dt and shape (d0) or (d0, d1) (d1 0: 1-D). */
static int want(const struct hf_tensor *t, enum hf_dtype dt, int64_t d0,
		int64_t d1, struct hf_err *err)
{
	int nd = d1 ? 2 : 1;

	if (t->dtype != dt)
		return hf_err_set(err, HF_EFORMAT,
				  "tensor '%s' has dtype %s, expected %s",
				  t->name, hf_dtype_name(t->dtype),
				  hf_dtype_name(dt));
	if (t->ndim != nd || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
		int64_t w[2] = { d0, d1 };
		char got[128], exp[128];

		hf_shape_str(got, sizeof(got), t->shape, t->ndim);
		hf_shape_str(exp, sizeof(exp), w, nd);
		return hf_err_set(err, HF_EFORMAT,
				  "tensor '%s' has shape %s, expected %s",
				  t->name, got, exp);
	}
	return 0;
}

static const char *method_of(const struct hf_qcfg *qc)
{
	return qc ? qc->quant_method : "none";
}

/* A tensor in format `what` where qc says otherwise. */
static int contradicts(const struct hf_tensor *t, const char *what,
		       const struct hf_qcfg *qc, struct hf_err *err)
{
	if (!qc)
		return hf_err_set(err, HF_EFORMAT,
				  "tensor '%s' is stored %s, but config.json "
				  "has no quantization_config", t->name, what);
	return hf_err_set(err, HF_EFORMAT,
			  "tensor '%s' is stored %s, but config.json's "
			  "quantization_config says quant_method '%s'%s",
			  t->name, what, method_of(qc),
			  qc->method == HF_QM_BNB ?
			  (qc->load_in_8bit ? " (8-bit)" : " (4-bit)") : "");
}

static void init(struct hf_weight *w, enum hf_wfmt f, size_t rows,
		 size_t cols)
{
	memset(w, 0, sizeof(*w));
	w->fmt = f;
	w->rows = rows;
	w->cols = cols;
	w->q.ld = rows;
}

int hf_int8_bind(struct hf_weight *w, const struct hf_tensor **tn,
		 hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		 const char *base, size_t rows, size_t cols,
		 struct hf_err *err)
{
	const struct hf_tensor *t = getf(get, ctx, base, "weight"), *s, *f;

	if (!t || t->dtype != HF_DTYPE_I8)
		return HF_ENOTFOUND;
	if (!qc || qc->method != HF_QM_BNB || !qc->load_in_8bit)
		return contradicts(t, "as bitsandbytes int8", qc, err);
	if (!(s = getf(get, ctx, base, "SCB")))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' is int8 but "
				  "'%s.SCB' is missing", t->name, base);
	if (want(t, HF_DTYPE_I8, (int64_t)rows, (int64_t)cols, err) ||
	    want(s, HF_DTYPE_F32, (int64_t)rows, 0, err))
		return err->code;
	f = getf(get, ctx, base, "weight_format");
	if (f && (f->nbytes < 1 || f->dtype != HF_DTYPE_U8 ||
		  *(const uint8_t *)f->data != 0))
		return hf_err_set(err, HF_EUNSUPPORTED, "tensor '%s': only "
				  "weight_format 0 (row) is supported; "
				  "col32/turing/ampere layouts are legacy",
				  f->name);
	init(w, HF_WFMT_INT8, rows, cols);
	w->t[0] = t->data;
	w->t[1] = s->data;
	tn[0] = t;
	tn[1] = s;
	return 0;
}

/* ---- the quant_state JSON ----------------------------------------------------------- */

static int pow2(int64_t v)
{
	return v > 0 && !(v & (v - 1));
}

int hf_bnb_qstate_parse(struct hf_bnb_qstate *qs, const void *buf,
			size_t len, const char *name, struct hf_err *err)
{
	json_t *j = NULL;
	const char *qt, *dt;
	const json_t *sh, *v;
	int has_nb, has_no, has_nd;
	size_t i;
	int rc;

	memset(qs, 0, sizeof(*qs));
	if ((rc = hf_json_load_buf(&j, buf, len, name, err)))
		return rc;
	if (!json_is_object(j)) {
		rc = hf_err_set(err, HF_EFORMAT, "%s: not a JSON object", name);
		goto out;
	}
	if ((rc = hf_json_req_str(j, "quant_type", &qt, name, err)) ||
	    (rc = hf_json_req_int(j, "blocksize", &qs->blocksize, name, err)) ||
	    (rc = hf_json_str(j, "dtype", "float32", &dt, name, err)))
		goto out;
	if (strcmp(qt, "nf4") && strcmp(qt, "fp4")) {
		rc = hf_err_set(err, HF_EUNSUPPORTED, "%s: quant_type '%s' "
				"(nf4, fp4)", name, qt);
		goto out;
	}
	snprintf(qs->quant_type, sizeof(qs->quant_type), "%s", qt);
	snprintf(qs->dtype, sizeof(qs->dtype), "%s", dt);
	if (!pow2(qs->blocksize)) {
		rc = hf_err_set(err, HF_EFORMAT, "%s: blocksize %lld is not a "
				"power of two", name, (long long)qs->blocksize);
		goto out;
	}
	sh = json_object_get(j, "shape");
	if (!json_is_array(sh) || json_array_size(sh) < 1 ||
	    json_array_size(sh) > 2) {
		rc = hf_err_set(err, HF_EFORMAT, "%s: 'shape' must be a list of "
				"one or two sizes", name);
		goto out;
	}
	qs->ndim = (int)json_array_size(sh);
	json_array_foreach(sh, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > ((int64_t)1 << 40)) {
			rc = hf_err_set(err, HF_EFORMAT, "%s: 'shape' must be a "
					"list of sizes", name);
			goto out;
		}
		qs->shape[i] = json_integer_value(v);
	}
	has_nb = json_object_get(j, "nested_blocksize") != NULL;
	has_no = json_object_get(j, "nested_offset") != NULL;
	has_nd = json_object_get(j, "nested_dtype") != NULL;
	if (has_nb || has_no || has_nd) {
		if (!(has_nb && has_no)) {
			rc = hf_err_set(err, HF_EFORMAT, "%s: nested_blocksize "
					"and nested_offset go together", name);
			goto out;
		}
		if ((rc = hf_json_req_int(j, "nested_blocksize",
					  &qs->nested_blocksize, name, err)) ||
		    (rc = hf_json_req_num(j, "nested_offset",
					  &qs->nested_offset, name, err)))
			goto out;
		if (!pow2(qs->nested_blocksize)) {
			rc = hf_err_set(err, HF_EFORMAT, "%s: nested_blocksize "
					"%lld is not a power of two", name,
					(long long)qs->nested_blocksize);
			goto out;
		}
		qs->nested = 1;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

/* The quant_state tensor of base's weight: one of __nf4, __fp4. */
static const struct hf_tensor *qstate(hf_wfmt_get_fn get, void *ctx,
				      const char *base)
{
	const struct hf_tensor *t;

	t = getf(get, ctx, base, "weight.quant_state.bitsandbytes__nf4");
	return t ? t : getf(get, ctx, base,
			    "weight.quant_state.bitsandbytes__fp4");
}

static int bnb4_bind(struct hf_weight *w, const struct hf_tensor **tn,
		     hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		     const char *base, size_t rows, size_t cols, int dq,
		     struct hf_err *err)
{
	const struct hf_tensor *t = getf(get, ctx, base, "weight");
	const struct hf_tensor *qst, *am, *qm, *na = NULL, *nm = NULL;
	struct hf_bnb_qstate qs;
	size_t n = rows * cols, nb;
	int64_t shape_want[2] = { (int64_t)rows, (int64_t)cols };

	if (!t || hf_wfmt_of_dtype(t->dtype) >= 0 ||
	    !(qst = qstate(get, ctx, base)))
		return HF_ENOTFOUND;
	if (hf_bnb_qstate_parse(&qs, qst->data, qst->nbytes, qst->name, err))
		return err->code;
	if (qs.nested != dq)
		return HF_ENOTFOUND;	/* the other row's */
	if (!qc || qc->method != HF_QM_BNB || !qc->load_in_4bit)
		return contradicts(t, "as bitsandbytes 4-bit", qc, err);
	if (strcmp(qs.quant_type, qc->bnb_4bit_quant_type))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' holds %s codes, "
				  "but quantization_config says "
				  "bnb_4bit_quant_type '%s'", t->name,
				  qs.quant_type, qc->bnb_4bit_quant_type);
	if (qs.nested != !!qc->bnb_4bit_use_double_quant)
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' is %s"
				  "double-quantized, but quantization_config "
				  "says bnb_4bit_use_double_quant %s", t->name,
				  qs.nested ? "" : "not ",
				  qs.nested ? "false" : "true");
	if (qs.ndim != 2 || qs.shape[0] != shape_want[0] ||
	    qs.shape[1] != shape_want[1]) {
		char got[128], exp[128];

		hf_shape_str(got, sizeof(got), qs.shape, qs.ndim);
		hf_shape_str(exp, sizeof(exp), shape_want, 2);
		return hf_err_set(err, HF_EFORMAT, "tensor '%s': quant_state "
				  "shape %s, expected %s", qst->name, got, exp);
	}
	if (t->nbytes != (n + 1) / 2)
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' holds %zu "
				  "bytes, expected %zu for %zu codes", t->name,
				  t->nbytes, (n + 1) / 2, n);
	nb = (n + (size_t)qs.blocksize - 1) / (size_t)qs.blocksize;
	am = getf(get, ctx, base, "weight.absmax");
	qm = getf(get, ctx, base, "weight.quant_map");
	if (!am || !qm)
		return hf_err_set(err, HF_EFORMAT, "'%s.weight' is 4-bit but "
				  "its %s is missing", base,
				  am ? "quant_map" : "absmax");
	if (want(am, dq ? HF_DTYPE_U8 : HF_DTYPE_F32, (int64_t)nb, 0, err) ||
	    want(qm, HF_DTYPE_F32, 16, 0, err))
		return err->code;
	if (dq) {
		size_t nn = (nb + (size_t)qs.nested_blocksize - 1) /
			    (size_t)qs.nested_blocksize;

		na = getf(get, ctx, base, "weight.nested_absmax");
		nm = getf(get, ctx, base, "weight.nested_quant_map");
		if (!na || !nm)
			return hf_err_set(err, HF_EFORMAT, "'%s.weight' is "
					  "double-quantized but its %s is "
					  "missing", base, na ?
					  "nested_quant_map" : "nested_absmax");
		if (want(na, HF_DTYPE_F32, (int64_t)nn, 0, err) ||
		    want(nm, HF_DTYPE_F32, 256, 0, err))
			return err->code;
	}
	init(w, dq ? HF_WFMT_BNB4DQ : HF_WFMT_BNB4, rows, cols);
	w->q.group = (size_t)qs.blocksize;
	w->q.group2 = dq ? (size_t)qs.nested_blocksize : 0;
	w->q.p0 = (float)qs.nested_offset;
	w->t[0] = t->data;
	w->t[1] = am->data;
	w->t[2] = qm->data;
	tn[0] = t;
	tn[1] = am;
	tn[2] = qm;
	if (dq) {
		w->t[3] = na->data;
		w->t[4] = nm->data;
		tn[3] = na;
		tn[4] = nm;
	}
	return 0;
}

int hf_bnb4_bind(struct hf_weight *w, const struct hf_tensor **tn,
		 hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		 const char *base, size_t rows, size_t cols,
		 struct hf_err *err)
{
	return bnb4_bind(w, tn, get, ctx, qc, base, rows, cols, 0, err);
}

int hf_bnb4dq_bind(struct hf_weight *w, const struct hf_tensor **tn,
		   hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		   const char *base, size_t rows, size_t cols,
		   struct hf_err *err)
{
	return bnb4_bind(w, tn, get, ctx, qc, base, rows, cols, 1, err);
}

/* qweight/qzeros/scales of GPTQ (awq 0) or AWQ (awq 1). */
static int packed_bind(struct hf_weight *w, const struct hf_tensor **tn,
		       hf_wfmt_get_fn get, void *ctx,
		       const struct hf_qcfg *qc, const char *base,
		       size_t rows, size_t cols, int awq, struct hf_err *err)
{
	const struct hf_tensor *qw = getf(get, ctx, base, "qweight");
	const struct hf_tensor *qz, *sc, *gi = NULL;
	size_t gs, G, b;

	if (!qw)
		return HF_ENOTFOUND;
	if (!qc || (qc->method != HF_QM_GPTQ && qc->method != HF_QM_AWQ))
		return contradicts(qw, "GPTQ/AWQ-packed (qweight)", qc, err);
	if ((qc->method == HF_QM_AWQ) != awq)
		return HF_ENOTFOUND;
	b = (size_t)qc->bits;
	gs = qc->group_size > 0 ? (size_t)qc->group_size : cols;
	G = (cols + gs - 1) / gs;
	if (!(qz = getf(get, ctx, base, "qzeros")) ||
	    !(sc = getf(get, ctx, base, "scales")))
		return hf_err_set(err, HF_EFORMAT, "'%s.qweight' is present "
				  "but '%s.%s' is missing", base, base,
				  qz ? "scales" : "qzeros");
	if (awq) {
		if (rows % 8 || cols % gs)
			return hf_err_set(err, HF_EFORMAT, "'%s': AWQ needs "
					  "out (%zu) a multiple of 8 and in "
					  "(%zu) of the group size %zu", base,
					  rows, cols, gs);
		if (want(qw, HF_DTYPE_I32, (int64_t)cols, (int64_t)rows / 8,
			 err) ||
		    want(qz, HF_DTYPE_I32, (int64_t)G, (int64_t)rows / 8, err))
			return hf_err_prefix(err, "quantization_config awq "
					     "%zu-bit, group_size %zu", b, gs);
	} else {
		if (cols * b % 32 || rows * b % 32)
			return hf_err_set(err, HF_EFORMAT, "'%s': %zu-bit GPTQ "
					  "needs in (%zu) and out (%zu) to fill "
					  "32-bit words", base, b, cols, rows);
		if (want(qw, HF_DTYPE_I32, (int64_t)(cols * b / 32),
			 (int64_t)rows, err) ||
		    want(qz, HF_DTYPE_I32, (int64_t)G, (int64_t)(rows * b / 32),
			 err))
			return hf_err_prefix(err, "quantization_config bits "
					     "%zu, group_size %lld", b,
					     (long long)qc->group_size);
	}
	if (want(sc, HF_DTYPE_F16, (int64_t)G, (int64_t)rows, err))
		return err->code;
	if (!awq && (gi = getf(get, ctx, base, "g_idx"))) {
		const int32_t *g;

		if (want(gi, HF_DTYPE_I32, (int64_t)cols, 0, err))
			return err->code;
		g = gi->data;
		for (size_t i = 0; i < cols; i++)
			if (g[i] < 0 || (size_t)g[i] >= G)
				return hf_err_set(err, HF_EFORMAT, "tensor "
						  "'%s': g_idx[%zu] = %d is "
						  "not a group (0 .. %zu)",
						  gi->name, i, (int)g[i],
						  G - 1);
		if (!qc->desc_act) {
			/* the trivial map is the same as none */
			size_t i = 0;

			while (i < cols && (size_t)g[i] == i / gs)
				i++;
			if (i < cols)
				return hf_err_set(err, HF_EFORMAT, "tensor "
						  "'%s' permutes the groups, "
						  "but quantization_config "
						  "says desc_act false",
						  gi->name);
			gi = NULL;
		}
	}
	init(w, awq ? HF_WFMT_AWQ : HF_WFMT_GPTQ, rows, cols);
	w->q.group = gs;
	w->q.bits = (unsigned)b;
	w->q.zoff = !awq && !qc->gptq_v2;
	w->t[0] = qw->data;
	w->t[1] = qz->data;
	w->t[2] = sc->data;
	w->t[3] = gi ? gi->data : NULL;
	tn[0] = qw;
	tn[1] = qz;
	tn[2] = sc;
	tn[3] = gi;
	return 0;
}

int hf_gptq_bind(struct hf_weight *w, const struct hf_tensor **tn,
		 hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		 const char *base, size_t rows, size_t cols,
		 struct hf_err *err)
{
	return packed_bind(w, tn, get, ctx, qc, base, rows, cols, 0, err);
}

int hf_awq_bind(struct hf_weight *w, const struct hf_tensor **tn,
		hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		const char *base, size_t rows, size_t cols, struct hf_err *err)
{
	return packed_bind(w, tn, get, ctx, qc, base, rows, cols, 1, err);
}

int hf_bitnet_bind(struct hf_weight *w, const struct hf_tensor **tn,
		   hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		   const char *base, size_t rows, size_t cols,
		   struct hf_err *err)
{
	const struct hf_tensor *t = getf(get, ctx, base, "weight"), *s;
	float v;

	if (!t || t->dtype != HF_DTYPE_U8 ||
	    !(s = getf(get, ctx, base, "weight_scale")))
		return HF_ENOTFOUND;
	if (!qc || qc->method != HF_QM_BITNET)
		return contradicts(t, "as BitNet ternary (weight_scale)", qc,
				   err);
	if (rows % 4)
		return hf_err_set(err, HF_EFORMAT, "'%s': BitNet packs 4 rows "
				  "a byte; out (%zu) is not a multiple of 4",
				  base, rows);
	if (want(t, HF_DTYPE_U8, (int64_t)rows / 4, (int64_t)cols, err))
		return err->code;
	if (hf_tensor_numel(s) != 1 ||
	    hf_to_f32_n(&v, s->data, s->dtype, 1))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' must be one "
				  "float", s->name);
	if (!(v > 0) || !isfinite(v))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' = %g is not a "
				  "positive scale", s->name, (double)v);
	init(w, HF_WFMT_BITNET, rows, cols);
	w->q.p0 = qc->autobitlinear ? v : 1.0f / v;
	w->t[0] = t->data;
	tn[0] = t;
	return 0;
}

int hf_fp8_bind(struct hf_weight *w, const struct hf_tensor **tn,
		hf_wfmt_get_fn get, void *ctx, const struct hf_qcfg *qc,
		const char *base, size_t rows, size_t cols, struct hf_err *err)
{
	const struct hf_tensor *t = getf(get, ctx, base, "weight"), *s;
	size_t br, bc;

	if (!t || t->dtype != HF_DTYPE_F8_E4M3)
		return HF_ENOTFOUND;
	if (!qc || qc->method != HF_QM_FP8)
		return contradicts(t, "as F8_E4M3", qc, err);
	if (!(s = getf(get, ctx, base, "weight_scale_inv")))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' is F8_E4M3 but "
				  "'%s.weight_scale_inv' is missing", t->name,
				  base);
	br = (size_t)qc->fp8_block[0];
	bc = (size_t)qc->fp8_block[1];
	if (want(t, HF_DTYPE_F8_E4M3, (int64_t)rows, (int64_t)cols, err) ||
	    want(s, HF_DTYPE_F32, (int64_t)((rows + br - 1) / br),
		 (int64_t)((cols + bc - 1) / bc), err))
		return err->code;
	init(w, HF_WFMT_FP8, rows, cols);
	w->q.group = bc;
	w->q.group2 = br;
	w->t[0] = t->data;
	w->t[1] = s->data;
	tn[0] = t;
	tn[1] = s;
	return 0;
}
