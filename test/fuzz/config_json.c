/* test/fuzz/config_json.c: libFuzzer harness for config.json parsing
 * (hf_config_parse on arbitrary bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_err err = { 0 };
	struct hf_config *c;

	if (hf_config_parse(&c, (const char *)data, size, "config.json",
			    &err)) {
		if (!strstr(err.msg, "config.json"))
			abort();	/* every error names the file */
		return 0;
	}
	/* what a model would rely on */
	if (c->hidden_size <= 0 || c->num_attention_heads <= 0 ||
	    c->head_dim <= 0 || c->num_key_value_heads <= 0 ||
	    c->num_attention_heads % c->num_key_value_heads ||
	    c->n_eos < 0 || c->n_eos > HF_CONFIG_MAX_EOS ||
	    !c->model_type || !c->architecture || !c->hidden_act ||
	    !c->torch_dtype || !c->rope_scaling.type)
		abort();
	for (int i = 0; i < c->n_labels; i++)
		if (c->id2label[i])
			(void)strlen(c->id2label[i]);
	hf_config_free(c);
	return 0;
}
