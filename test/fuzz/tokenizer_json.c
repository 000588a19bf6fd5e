/* test/fuzz/tokenizer_json.c: libFuzzer harness for tokenizer.json loading
 * (hf_tok_load_buf on arbitrary bytes), then encode and decode a few
 * strings with whatever loaded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tok/tok.h"

static const char *texts[] = {
	"", " ", "Hello world", "a-b--c  d\te\nf", "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC",
	"<s>[CLS]<|endoftext|> x", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD 12345",
};

static void check(const struct hf_tok_encoding *e, size_t a, size_t b)
{
	for (size_t i = 0; i < e->n; i++) {
		size_t tl;

		(void)hf_tok_encoding_token(e, i, &tl);
		if (e->offsets[i][0] > e->offsets[i][1] ||
		    e->offsets[i][1] > (e->seq[i] == 1 ? b : a))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_err err = { 0 };
	struct hf_tok *t;
	struct hf_tok_ctx *c;
	struct hf_tok_encoding e = { 0 };
	struct hf_tok_trunc tr = { .max_length = 5 };
	const size_t n = sizeof(texts) / sizeof(texts[0]);

	if (hf_tok_load_buf(&t, (const char *)data, size, "tokenizer.json", &err)) {
		if (!strstr(err.msg, "tokenizer.json") && err.code != HF_ENOMEM)
			abort();	/* every error names the file */
		return 0;
	}
	if (hf_tok_ctx_create(&c, t, &err))
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *p = texts[(i + 1) % n];
		char *s;

		if (hf_tok_encode(c, texts[i], strlen(texts[i]), NULL, 0, 1, NULL, &e, &err) == 0) {
			check(&e, strlen(texts[i]), 0);
			if (hf_tok_decode(t, e.ids, e.n, i & 1, &s, NULL, &err) == 0)
				free(s);
		}
		if (hf_tok_encode(c, texts[i], strlen(texts[i]), p, strlen(p), 1, &tr, &e, &err) == 0)
			check(&e, strlen(texts[i]), strlen(p));
	}
	hf_tok_encoding_free(&e);
	hf_tok_ctx_free(c);
	hf_tok_free(t);
	return 0;
}
