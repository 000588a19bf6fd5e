/* test/fuzz/tok_encode.c: libFuzzer harness encoding arbitrary bytes with
 * the fixture tokenizers: the first byte picks one, the rest is the text
 * (invalid UTF-8 must fail cleanly; its lossy repair must encode), split
 * at its middle into a pair too; then decode. Run from the repository
 * root, or set HF_FIXTURES. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "tok/tok.h"

static const char *names[] = {
	"gpt2", "llama3_1", "qwen3", "llama2", "llama2-nonlegacy",
	"bert-base-uncased", "wordlevel", "pegasus", "deepseek_v3",
};
#define N (sizeof(names) / sizeof(names[0]))

static struct hf_tok *toks[N];
static struct hf_tok_ctx *ctxs[N];

static struct hf_tok_ctx *get(size_t i)
{
	char dir[1024];
	const char *fx = getenv("HF_FIXTURES");
	struct hf_err err = { 0 };

	if (ctxs[i])
		return ctxs[i];
	snprintf(dir, sizeof(dir), "%s/tokenizers/%s", fx ? fx : "test/fixtures", names[i]);
	if (hf_tok_load(&toks[i], dir, &err) || hf_tok_ctx_create(&ctxs[i], toks[i], &err)) {
		fprintf(stderr, "tok_encode: %s\n", err.msg);
		abort();
	}
	return ctxs[i];
}

static void run(size_t k, const char *s, size_t len)
{
	struct hf_tok_ctx *c = get(k);
	struct hf_tok_encoding e = { 0 };
	struct hf_tok_trunc tr = { .max_length = 7, .direction = HF_TOK_LEFT };
	struct hf_err err = { 0 };
	size_t half = len / 2;
	char *out;

	while (half < len && ((unsigned char)s[half] & 0xC0) == 0x80)
		half++;
	if (hf_tok_encode(c, s, len, NULL, 0, 1, NULL, &e, &err))
		abort();
	for (size_t i = 0; i < e.n; i++)
		if (e.offsets[i][0] > e.offsets[i][1] || e.offsets[i][1] > len)
			abort();
	if (hf_tok_decode(toks[k], e.ids, e.n, 0, &out, NULL, &err))
		abort();
	if (!hf_utf8_valid(out, strlen(out), NULL))
		abort();
	free(out);
	if (hf_tok_encode(c, s, half, s + half, len - half, 1, &tr, &e, &err) || e.n > 7)
		abort();
	hf_tok_encoding_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_err err = { 0 };
	struct hf_tok_encoding e = { 0 };
	size_t k, len, fl;
	const char *s;
	char *fixed;

	if (!size)
		return 0;
	k = data[0] % N;
	s = (const char *)data + 1;
	len = size - 1;
	if (hf_utf8_valid(s, len, NULL)) {
		run(k, s, len);
		return 0;
	}
	if (hf_tok_encode(get(k), s, len, NULL, 0, 1, NULL, &e, &err) != HF_EUTF8)
		abort();
	fixed = hf_utf8_lossy(s, len, &fl);
	if (!fixed)
		return 0;
	run(k, fixed, fl);
	free(fixed);
	return 0;
}
