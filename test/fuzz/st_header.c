/* test/fuzz/st_header.c: libFuzzer harness for the safetensors header
 * parser and validator (hf_st_open_buf on arbitrary bytes). Every tensor
 * it accepts must lie inside the buffer, past the header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "st/st.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_err err = { 0 };
	struct hf_st *st;
	const uint8_t *lo, *hi;

	if (hf_st_open_buf(&st, data, size, "fuzz", &err)) {
		if (!err.msg[0] || !strstr(err.msg, "fuzz"))
			abort();	/* every error names the input */
		return 0;
	}
	lo = data + 8 + hf_st_header_len(st);
	hi = data + size;
	for (size_t i = 0; i < hf_st_count(st); i++) {
		const struct hf_tensor *t = hf_st_tensor(st, i);
		const uint8_t *p = t->data;

		if (hf_st_get(st, t->name) != t)
			abort();
		if (t->nbytes && (p < lo || p > hi || t->nbytes >
				  (size_t)(hi - p)))
			abort();
		if (t->nbytes)	/* touch both ends: ASan checks the range */
			(void)(*(volatile const uint8_t *)p +
			       *(volatile const uint8_t *)(p + t->nbytes - 1));
	}
	for (size_t i = 0; i < hf_st_meta_count(st); i++) {
		const char *k, *v;

		hf_st_meta(st, i, &k, &v);
		if (!k || !v || hf_st_meta_get(st, k) == NULL)
			abort();
	}
	hf_st_free(st);
	return 0;
}
