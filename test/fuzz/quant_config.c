/* test/fuzz/quant_config.c: libFuzzer harness for the parsers of
 * quantized checkpoints: config.json's quantization_config
 * (hf_qcfg_parse) and a bitsandbytes quant_state JSON tensor
 * (hf_bnb_qstate_parse), on the same arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "quant/formats.h"
#include "quant/qconfig.h"

static void qcfg(const uint8_t *data, size_t size)
{
	struct hf_err err = { 0 };
	struct hf_qcfg qc;
	json_t *j;
	char buf[128];

	if (hf_json_load_buf(&j, (const char *)data, size, "config.json",
			     &err))
		return;
	if (hf_qcfg_parse(&qc, j, "quantization_config", &err)) {
		if (!strstr(err.msg, "quantization_config"))
			abort();	/* every error names the object */
	} else {
		/* what the readers rely on */
		if (qc.method == HF_QM_GPTQ &&
		    (qc.bits < 2 || qc.bits > 8 || qc.group_size == 0 ||
		     qc.group_size < -1))
			abort();
		if (qc.method == HF_QM_AWQ && (qc.bits != 4 ||
					       qc.group_size <= 0))
			abort();
		if (qc.method == HF_QM_FP8 &&
		    (qc.fp8_block[0] <= 0 || qc.fp8_block[1] <= 0))
			abort();
		if (qc.method == HF_QM_BNB &&
		    qc.load_in_4bit == qc.load_in_8bit)
			abort();
		(void)hf_qcfg_skips(&qc, "model.layers.0.mlp.down_proj");
		(void)strlen(hf_qcfg_describe(&qc, buf, sizeof(buf)));
	}
	json_decref(j);
}

static void qstate(const uint8_t *data, size_t size)
{
	struct hf_err err = { 0 };
	struct hf_bnb_qstate qs;

	if (hf_bnb_qstate_parse(&qs, data, size, "quant_state", &err)) {
		if (!strstr(err.msg, "quant_state"))
			abort();
		return;
	}
	if (qs.blocksize <= 0 || (qs.blocksize & (qs.blocksize - 1)) ||
	    qs.ndim < 1 || qs.ndim > 2 || qs.shape[0] < 0 ||
	    (qs.nested && (qs.nested_blocksize <= 0 ||
			   (qs.nested_blocksize &
			    (qs.nested_blocksize - 1)))) ||
	    !memchr(qs.quant_type, 0, sizeof(qs.quant_type)) ||
	    !memchr(qs.dtype, 0, sizeof(qs.dtype)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	qcfg(data, size);
	qstate(data, size);
	return 0;
}
