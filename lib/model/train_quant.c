/* lib/model/train_quant.c: a quantized base under training (train.h):
 * the refusal when the whole model would train, and the binding of a
 * linear's weight as the checkpoint stores it when only adapters train
 * (QLoRA). Shared by train_llama.c and train_encoder.c. */
#include <stdio.h>
#include <string.h>

#include "model/train_ln.h"

const char *train_quant_name(const struct hf_model *m, char *buf, size_t cap)
{
	const struct hf_qcfg *qc = m->qc;

	if (!qc) {
		snprintf(buf, cap, "not quantized");
	} else if (qc->method == HF_QM_BNB && qc->load_in_4bit) {
		snprintf(buf, cap, "bitsandbytes %s%s",
			 qc->bnb_4bit_quant_type && *qc->bnb_4bit_quant_type ?
			 qc->bnb_4bit_quant_type : "nf4",
			 qc->bnb_4bit_use_double_quant ? ", double-quant" : "");
	} else if (qc->method == HF_QM_BNB) {
		snprintf(buf, cap, "bitsandbytes int8");
	} else if (qc->method == HF_QM_GPTQ || qc->method == HF_QM_AWQ) {
		snprintf(buf, cap, "%s %d-bit", qc->quant_method, qc->bits);
	} else {
		snprintf(buf, cap, "%s", qc->quant_method);
	}
	return buf;
}

int train_quant_check(struct hf_model *m, const struct hf_train_opts *o,
		      struct hf_err *err)
{
	char q[96];

	if (!m->qc || (o && o->quant_base))
		return 0;
	return hf_err_set(err, HF_EUNSUPPORTED,
			  "%s: the model is quantized (%s); full fine-tuning "
			  "needs F32, F16 or BF16 weights: train an adapter "
			  "over it (LoRA, i.e. QLoRA) or dequantize it first "
			  "(hf-quantize --dequantize)", m->dir,
			  train_quant_name(m, q, sizeof(q)));
}

static const struct hf_tensor *get_cb(void *ctx, const char *name)
{
	return find_tensor(ctx, name);
}

int train_quant_bind(struct hf_model *m, struct hf_weight *w, char *stored,
		     size_t cap, const char *mod, size_t out, size_t in,
		     struct hf_err *err)
{
	const char *dot;

	const struct hf_tensor *tn[HF_WEIGHT_NT];
	char name[256];
	int rc;

	memset(w, 0, sizeof(*w));
	rc = hf_weight_bind(w, tn, get_cb, m, m->qc, mod, out, in, err);
	if (rc == HF_ENOTFOUND) {
		snprintf(name, sizeof(name), "%s.weight", mod);
		return hf_err_set(err, HF_ENOTFOUND,
				  "%s: missing tensor '%s%s'", m->dir,
				  m->pfx ? m->pfx : "", name);
	}
	if (rc)
		return hf_err_prefix(err, "%s", m->dir);
	/* t[0]'s name less its last component ("weight", "qweight") */
	dot = strrchr(tn[0]->name, '.');
	snprintf(stored, cap, "%.*s",
		 (int)(dot ? (size_t)(dot - tn[0]->name) : strlen(mod)),
		 dot ? tn[0]->name : mod);
	return 0;
}
