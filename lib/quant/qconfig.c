/* lib/quant/qconfig.c: quantization_config as transformers' loaders read
 * it (transformers utils/quantization_config.py; GPTQModel's newer keys,
 * docs/quantization-formats.md s. 3). */
#include "quant/qconfig.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"

/* obj[a], else obj[b]: a boolean, def if neither. */
static int bool2(const json_t *obj, const char *a, const char *b, int def,
		 int *out, const char *where, struct hf_err *err)
{
	const json_t *v = json_object_get(obj, a);

	if ((!v || json_is_null(v)) && b)
		return hf_json_bool(obj, b, def, out, where, err);
	return hf_json_bool(obj, a, def, out, where, err);
}

static int parse_bnb(struct hf_qcfg *qc, const json_t *o, const char *w,
		     struct hf_err *err)
{
	const json_t *skip;

	if (bool2(o, "load_in_8bit", "_load_in_8bit", 0, &qc->load_in_8bit,
		  w, err) ||
	    bool2(o, "load_in_4bit", "_load_in_4bit", 0, &qc->load_in_4bit,
		  w, err) ||
	    hf_json_str(o, "bnb_4bit_quant_type", "nf4",
			&qc->bnb_4bit_quant_type, w, err) ||
	    hf_json_bool(o, "bnb_4bit_use_double_quant", 0,
			 &qc->bnb_4bit_use_double_quant, w, err) ||
	    hf_json_str(o, "bnb_4bit_compute_dtype", "",
			&qc->bnb_4bit_compute_dtype, w, err) ||
	    hf_json_num(o, "llm_int8_threshold", 6.0,
			&qc->llm_int8_threshold, w, err))
		return err->code;
	if (qc->load_in_8bit == qc->load_in_4bit)
		return hf_err_set(err, HF_EFORMAT, "%s: exactly one of "
				  "load_in_8bit and load_in_4bit must be true",
				  w);
	if (qc->load_in_4bit && strcmp(qc->bnb_4bit_quant_type, "nf4") &&
	    strcmp(qc->bnb_4bit_quant_type, "fp4"))
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: "
				  "bnb_4bit_quant_type '%s' is not supported "
				  "(nf4, fp4)", w, qc->bnb_4bit_quant_type);
	skip = json_object_get(o, "llm_int8_skip_modules");
	if (skip && !json_is_null(skip))
		qc->skip = skip;
	return 0;
}

static int parse_gptq(struct hf_qcfg *qc, const json_t *o, const char *w,
		      struct hf_err *err)
{
	const char *fmt = NULL;
	int64_t bits, gs;

	if (hf_json_req_int(o, "bits", &bits, w, err) ||
	    hf_json_int(o, "group_size", 128, &gs, w, err) ||
	    hf_json_bool(o, "desc_act", 0, &qc->desc_act, w, err) ||
	    hf_json_bool(o, "sym", 1, &qc->sym, w, err) ||
	    hf_json_str(o, "format", NULL, &fmt, w, err) ||
	    (!fmt && hf_json_str(o, "checkpoint_format", "gptq", &fmt, w,
				 err)))
		return err->code;
	if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: GPTQ bits %lld "
				  "are not supported (2, 3, 4, 8)", w,
				  (long long)bits);
	if (gs == 0 || gs < -1)
		return hf_err_set(err, HF_EFORMAT, "%s: group_size %lld "
				  "(-1 or a positive size)", w, (long long)gs);
	if (!strcmp(fmt, "gptq_v2"))
		qc->gptq_v2 = 1;
	else if (strcmp(fmt, "gptq"))
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: GPTQ format "
				  "'%s' is not supported (gptq, gptq_v2)", w,
				  fmt);
	qc->bits = (int)bits;
	qc->group_size = gs;
	return 0;
}

static int parse_awq(struct hf_qcfg *qc, const json_t *o, const char *w,
		     struct hf_err *err)
{
	int64_t bits, gs;
	const json_t *skip;

	if (hf_json_int(o, "bits", 4, &bits, w, err) ||
	    hf_json_int(o, "group_size", 128, &gs, w, err) ||
	    hf_json_bool(o, "zero_point", 1, &qc->zero_point, w, err) ||
	    hf_json_str(o, "version", "gemm", &qc->awq_version, w, err))
		return err->code;
	if (bits != 4)
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: AWQ bits %lld "
				  "are not supported (4)", w, (long long)bits);
	if (strcasecmp(qc->awq_version, "gemm"))
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: AWQ version "
				  "'%s' is not supported (gemm)", w,
				  qc->awq_version);
	if (!qc->zero_point)
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: AWQ without "
				  "zero_point is not supported", w);
	if (gs <= 0)
		return hf_err_set(err, HF_EFORMAT, "%s: group_size %lld "
				  "(a positive size)", w, (long long)gs);
	qc->bits = 4;
	qc->group_size = gs;
	skip = json_object_get(o, "modules_to_not_convert");
	if (skip && !json_is_null(skip))
		qc->skip = skip;
	return 0;
}

static int parse_bitnet(struct hf_qcfg *qc, const json_t *o, const char *w,
			struct hf_err *err)
{
	const char *lc, *mode;

	if (hf_json_str(o, "linear_class", "bitlinear", &lc, w, err) ||
	    hf_json_str(o, "quantization_mode", "offline", &mode, w, err))
		return err->code;
	if (!strcmp(lc, "autobitlinear"))
		qc->autobitlinear = 1;
	else if (strcmp(lc, "bitlinear"))
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: linear_class '%s' "
				  "is not supported (bitlinear, "
				  "autobitlinear)", w, lc);
	if (strcmp(mode, "offline"))
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: quantization_mode "
				  "'%s' is not supported (offline: packed "
				  "ternary weights)", w, mode);
	return 0;
}

static int parse_fp8(struct hf_qcfg *qc, const json_t *o, const char *w,
		     struct hf_err *err)
{
	const json_t *bs = json_object_get(o, "weight_block_size");
	const char *act;

	if (hf_json_str(o, "activation_scheme", "dynamic", &act, w, err))
		return err->code;
	if (strcmp(act, "dynamic"))
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: activation_scheme "
				  "'%s' is not supported (dynamic)", w, act);
	qc->fp8_block[0] = qc->fp8_block[1] = 128;
	if (bs && !json_is_null(bs)) {
		if (!json_is_array(bs) || json_array_size(bs) != 2 ||
		    !json_is_integer(json_array_get(bs, 0)) ||
		    !json_is_integer(json_array_get(bs, 1)) ||
		    json_integer_value(json_array_get(bs, 0)) <= 0 ||
		    json_integer_value(json_array_get(bs, 1)) <= 0)
			return hf_err_set(err, HF_EFORMAT, "%s: "
					  "weight_block_size must be a list "
					  "of two positive integers", w);
		qc->fp8_block[0] = json_integer_value(json_array_get(bs, 0));
		qc->fp8_block[1] = json_integer_value(json_array_get(bs, 1));
	}
	return 0;
}

int hf_qcfg_parse(struct hf_qcfg *qc, const json_t *obj, const char *where,
		  struct hf_err *err)
{
	const char *qm;
	const json_t *skip;
	int rc;

	memset(qc, 0, sizeof(*qc));
	if (!json_is_object(obj))
		return hf_err_set(err, HF_EFORMAT, "%s: must be an object",
				  where);
	qc->json = obj;
	if (hf_json_req_str(obj, "quant_method", &qm, where, err))
		return err->code;
	qc->quant_method = qm;
	skip = json_object_get(obj, "modules_to_not_convert");
	if (skip && !json_is_null(skip))
		qc->skip = skip;
	if (!strcmp(qm, "bitsandbytes")) {
		qc->method = HF_QM_BNB;
		rc = parse_bnb(qc, obj, where, err);
	} else if (!strcmp(qm, "gptq")) {
		qc->method = HF_QM_GPTQ;
		rc = parse_gptq(qc, obj, where, err);
	} else if (!strcmp(qm, "awq")) {
		qc->method = HF_QM_AWQ;
		rc = parse_awq(qc, obj, where, err);
	} else if (!strcmp(qm, "bitnet")) {
		qc->method = HF_QM_BITNET;
		rc = parse_bitnet(qc, obj, where, err);
	} else if (!strcmp(qm, "fp8")) {
		qc->method = HF_QM_FP8;
		rc = parse_fp8(qc, obj, where, err);
	} else {
		return hf_err_set(err, HF_EUNSUPPORTED, "%s: quant_method '%s' "
				  "is not supported (bitsandbytes, gptq, awq, "
				  "bitnet, fp8)", where, qm);
	}
	if (rc)
		return rc;
	if (qc->skip && !json_is_array(qc->skip))
		return hf_err_set(err, HF_EFORMAT, "%s: the list of modules "
				  "not to convert must be a list of names",
				  where);
	return 0;
}

int hf_qcfg_skips(const struct hf_qcfg *qc, const char *name)
{
	const json_t *v;
	size_t i;

	if (!qc || !qc->skip)
		return 0;
	json_array_foreach(qc->skip, i, v)
		if (json_is_string(v) && *json_string_value(v) &&
		    strstr(name, json_string_value(v)))
			return 1;
	return 0;
}

const char *hf_qcfg_describe(const struct hf_qcfg *qc, char *buf, size_t cap)
{
	switch (qc->method) {
	case HF_QM_BNB:
		if (qc->load_in_8bit)
			snprintf(buf, cap, "bitsandbytes int8");
		else
			snprintf(buf, cap, "bitsandbytes %s%s",
				 qc->bnb_4bit_quant_type,
				 qc->bnb_4bit_use_double_quant ?
				 " double-quant" : "");
		break;
	case HF_QM_GPTQ:
		if (qc->group_size > 0)
			snprintf(buf, cap, "gptq%s %d-bit g%lld",
				 qc->gptq_v2 ? "_v2" : "", qc->bits,
				 (long long)qc->group_size);
		else
			snprintf(buf, cap, "gptq%s %d-bit",
				 qc->gptq_v2 ? "_v2" : "", qc->bits);
		break;
	case HF_QM_AWQ:
		snprintf(buf, cap, "awq %d-bit g%lld", qc->bits,
			 (long long)qc->group_size);
		break;
	case HF_QM_BITNET:
		snprintf(buf, cap, "bitnet b1.58 (%s)",
			 qc->autobitlinear ? "autobitlinear" : "bitlinear");
		break;
	case HF_QM_FP8:
		snprintf(buf, cap, "fp8 e4m3, blocks %lldx%lld",
			 (long long)qc->fp8_block[0],
			 (long long)qc->fp8_block[1]);
		break;
	}
	return buf;
}
