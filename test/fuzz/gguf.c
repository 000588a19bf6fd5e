/* test/fuzz/gguf.c: libFuzzer harness for the GGUF reader
 * (hf_gguf_open_buf on arbitrary bytes). Every error names the input;
 * every tensor it accepts lies inside the buffer, past the header, and
 * no two overlap; every value it accepts can be walked without reading
 * outside the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export/gguf_read.h"

static const uint8_t *lo, *hi;

static void touch(const void *p, size_t n)
{
	const uint8_t *b = p;

	if (!n)
		return;
	if (b < lo || b > hi || n > (size_t)(hi - b))
		abort();
	(void)(*(volatile const uint8_t *)b + *(volatile const uint8_t *)
	       (b + n - 1));
}

static void walk(const struct hf_gguf_value *v, int depth)
{
	if (depth > HF_GGUF_MAX_DEPTH)
		abort();
	if (v->type == HF_GGUF_STRING)
		touch(v->str, v->len);
	if (v->type != HF_GGUF_ARRAY)
		return;
	if (v->elem == HF_GGUF_STRING || v->elem == HF_GGUF_ARRAY) {
		if (v->n && !v->items)
			abort();
		for (uint64_t i = 0; i < v->n; i++)
			walk(&v->items[i], depth + 1);
	} else if (v->n) {
		(void)hf_gguf_arr_int(v, 0);
		(void)hf_gguf_arr_float(v, v->n - 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_err err = { 0 };
	struct hf_gguf *g;

	if (hf_gguf_open_buf(&g, data, size, "fuzz", &err)) {
		if (!err.msg[0] || !strstr(err.msg, "fuzz"))
			abort();
		return 0;
	}
	lo = data;
	hi = data + size;
	for (size_t i = 0; i < hf_gguf_kv_count(g); i++) {
		const struct hf_gguf_kv *kv = hf_gguf_kv(g, i);

		if (hf_gguf_get(g, kv->key) != &kv->val)
			abort();
		walk(&kv->val, 0);
	}
	for (size_t i = 0; i < hf_gguf_tensor_count(g); i++) {
		const struct hf_gguf_tensor *t = hf_gguf_tensor(g, i);

		if (hf_gguf_find_tensor(g, t->name) != t ||
		    strlen(t->name) > HF_GGUF_MAX_NAME || t->n_dims > 4)
			abort();
		if (t->nbytes && (const uint8_t *)t->data <
		    data + hf_gguf_data_offset(g))
			abort();
		touch(t->data, t->nbytes);
		if (t->offset % hf_gguf_alignment(g))
			abort();
	}
	/* no overlap: in file order each tensor of nonzero size either
	 * ends before or starts after every other; checked pairwise on
	 * small inputs only (the fuzzer's are small) */
	for (size_t i = 0; i < hf_gguf_tensor_count(g) && i < 64; i++)
		for (size_t j = i + 1; j < hf_gguf_tensor_count(g) && j < 64;
		     j++) {
			const struct hf_gguf_tensor *a = hf_gguf_tensor(g, i);
			const struct hf_gguf_tensor *b = hf_gguf_tensor(g, j);

			if (a->nbytes && b->nbytes &&
			    a->offset < b->offset + b->nbytes &&
			    b->offset < a->offset + a->nbytes)
				abort();
		}
	hf_gguf_free(g);
	return 0;
}
