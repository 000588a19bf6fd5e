/* test/unit/tok/golden.c: every line of the fixtures' golden.jsonl,
 * pairs.jsonl and batch.jsonl, checked against lib/tok. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/file.h"
#include "tok/tok.h"

static int verbose_left = 5;

static const char *fixtures(void)
{
	const char *f = getenv("HF_FIXTURES");

	return f ? f : "test/fixtures";
}

static void say(const char *name, size_t line, const char *what, const char *fmt, ...)
{
	va_list ap;

	if (verbose_left <= 0)
		return;
	verbose_left--;
	fprintf(stderr, "  %s line %zu: %s: ", name, line, what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Compare one encoding with a golden object; returns 1 on a match. */
static int check_enc(const char *name, size_t line, const struct hf_tok_encoding *e,
		     const json_t *g, int types, int masks)
{
	const json_t *ids = json_object_get(g, "ids");
	const json_t *toks = json_object_get(g, "tokens");
	const json_t *offs = json_object_get(g, "offsets");
	const json_t *tids = json_object_get(g, "type_ids");
	const json_t *am = json_object_get(g, "attention_mask");
	const json_t *sm = json_object_get(g, "special_tokens_mask");

	if (json_array_size(ids) != e->n) {
		say(name, line, "length", "got %zu want %zu", e->n, json_array_size(ids));
		for (size_t i = 0; i < e->n && verbose_left >= 0; i++) {
			size_t tl;
			const char *t = hf_tok_encoding_token(e, i, &tl);

			fprintf(stderr, "    %zu: %u '%.*s' [%u,%u]   want %lld '%s'\n", i, e->ids[i],
				(int)tl, t, e->offsets[i][0], e->offsets[i][1],
				i < json_array_size(ids) ? (long long)json_integer_value(json_array_get(ids, i)) : -1LL,
				i < json_array_size(toks) ? json_string_value(json_array_get(toks, i)) : "");
		}
		return 0;
	}
	for (size_t i = 0; i < e->n; i++) {
		size_t tl;
		const char *t = hf_tok_encoding_token(e, i, &tl);
		const char *wt = json_string_value(json_array_get(toks, i));
		const json_t *o = json_array_get(offs, i);

		if ((json_int_t)e->ids[i] != json_integer_value(json_array_get(ids, i))) {
			say(name, line, "id", "index %zu got %u want %lld", i, e->ids[i],
			    (long long)json_integer_value(json_array_get(ids, i)));
			return 0;
		}
		if (!wt || strlen(wt) != tl || memcmp(wt, t, tl)) {
			say(name, line, "token", "index %zu got '%.*s' want '%s'", i, (int)tl, t,
			    wt ? wt : "?");
			return 0;
		}
		if (o && ((json_int_t)e->offsets[i][0] != json_integer_value(json_array_get(o, 0)) ||
			  (json_int_t)e->offsets[i][1] != json_integer_value(json_array_get(o, 1)))) {
			say(name, line, "offsets", "index %zu ('%s') got [%u,%u] want [%lld,%lld]", i,
			    wt, e->offsets[i][0], e->offsets[i][1],
			    (long long)json_integer_value(json_array_get(o, 0)),
			    (long long)json_integer_value(json_array_get(o, 1)));
			return 0;
		}
		if (types && tids && (json_int_t)e->type_ids[i] !=
		    json_integer_value(json_array_get(tids, i))) {
			say(name, line, "type_ids", "index %zu got %u", i, e->type_ids[i]);
			return 0;
		}
		if (masks && am && (json_int_t)e->attention_mask[i] !=
		    json_integer_value(json_array_get(am, i))) {
			say(name, line, "attention_mask", "index %zu got %u", i, e->attention_mask[i]);
			return 0;
		}
		if (masks && sm && (json_int_t)e->special_mask[i] !=
		    json_integer_value(json_array_get(sm, i))) {
			say(name, line, "special_tokens_mask", "index %zu got %u", i, e->special_mask[i]);
			return 0;
		}
	}
	return 1;
}

static int check_decode(const char *name, size_t line, const struct hf_tok *t,
			const struct hf_tok_encoding *e, const json_t *g)
{
	const char *keys[2] = { "decoded", "decoded_skip" };

	for (int skip = 0; skip < 2; skip++) {
		const json_t *w = json_object_get(g, keys[skip]);
		struct hf_err err = { 0 };
		char *out;
		size_t len;

		if (!w)
			continue;
		if (hf_tok_decode(t, e->ids, e->n, skip, &out, &len, &err)) {
			say(name, line, keys[skip], "error %s", err.msg);
			return 0;
		}
		if (len != json_string_length(w) || memcmp(out, json_string_value(w), len)) {
			say(name, line, keys[skip], "got '%s' want '%s'", out, json_string_value(w));
			free(out);
			return 0;
		}
		free(out);
	}
	return 1;
}

struct counts {
	size_t ok, total;
};

static void run_lines(const char *name, const char *file, struct hf_tok *t,
		      struct hf_tok_ctx *c, struct counts *n)
{
	char *path, *buf, *line, *save = NULL;
	struct hf_err err = { 0 };
	size_t ln = 0;
	char rel[256];

	snprintf(rel, sizeof(rel), "tokenizers/%s/%s", name, file);
	path = hf_path_join(fixtures(), rel);
	if (!hf_file_exists(path)) {
		free(path);
		return;
	}
	assert_int_equal(hf_file_read(&buf, NULL, path, &err), 0);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *g = json_loads(line, 0, &je);
		struct hf_tok_encoding e = { 0 };
		const json_t *pair;
		int ok = 0;

		ln++;
		assert_non_null(g);
		n->total++;
		pair = json_object_get(g, "text_pair");
		if (!json_object_get(g, "encodings")) {
			const json_t *tx = json_object_get(g, "text");

			if (hf_tok_encode(c, json_string_value(tx), json_string_length(tx),
					  pair ? json_string_value(pair) : NULL,
					  pair ? json_string_length(pair) : 0,
					  json_is_true(json_object_get(g, "add_special_tokens")),
					  NULL, &e, &err)) {
				say(name, ln, "encode", "%s", err.msg);
			} else {
				ok = check_enc(name, ln, &e, g, 1, 0) &&
				     check_decode(name, ln, t, &e, g);
			}
		} else {
			/* a batch: truncation + padding */
			const json_t *in = json_object_get(g, "inputs");
			const json_t *tr = json_object_get(g, "truncation");
			const json_t *pd = json_object_get(g, "padding");
			const json_t *encs = json_object_get(g, "encodings");
			size_t k = json_array_size(in);
			struct hf_tok_input *inp = calloc(k + 1, sizeof(*inp));
			struct hf_tok_encoding *outs = calloc(k + 1, sizeof(*outs));
			struct hf_tok_trunc trunc = { 0 };
			struct hf_tok_pad pad = { 0 };
			const char *s;

			assert_non_null(inp);
			assert_non_null(outs);
			for (size_t i = 0; i < k; i++) {
				const json_t *x = json_array_get(in, i);

				if (json_is_array(x)) {
					inp[i].text = json_string_value(json_array_get(x, 0));
					inp[i].len = json_string_length(json_array_get(x, 0));
					inp[i].pair = json_string_value(json_array_get(x, 1));
					inp[i].pair_len = json_string_length(json_array_get(x, 1));
				} else {
					inp[i].text = json_string_value(x);
					inp[i].len = json_string_length(x);
				}
			}
			if (tr && !json_is_null(tr)) {
				trunc.max_length = (size_t)json_integer_value(json_object_get(tr, "max_length"));
				trunc.stride = (size_t)json_integer_value(json_object_get(tr, "stride"));
				s = json_string_value(json_object_get(tr, "strategy"));
				trunc.strategy = s && !strcmp(s, "only_first") ? HF_TOK_TRUNC_ONLY_FIRST :
						 s && !strcmp(s, "only_second") ? HF_TOK_TRUNC_ONLY_SECOND :
						 HF_TOK_TRUNC_LONGEST_FIRST;
				s = json_string_value(json_object_get(tr, "direction"));
				trunc.direction = s && !strcmp(s, "left") ? HF_TOK_LEFT : HF_TOK_RIGHT;
			}
			if (pd && !json_is_null(pd)) {
				pad.enabled = 1;
				s = json_string_value(json_object_get(pd, "strategy"));
				if (s && !strcmp(s, "max_length"))
					pad.length = (size_t)json_integer_value(json_object_get(pd, "length"));
				s = json_string_value(json_object_get(pd, "direction"));
				pad.direction = s && !strcmp(s, "left") ? HF_TOK_LEFT : HF_TOK_RIGHT;
				pad.pad_id = (uint32_t)json_integer_value(json_object_get(pd, "pad_id"));
				pad.pad_type_id = (uint32_t)json_integer_value(json_object_get(pd, "pad_type_id"));
				pad.pad_token = json_string_value(json_object_get(pd, "pad_token"));
			}
			if (hf_tok_encode_batch(t, NULL, NULL, inp, k,
						json_is_true(json_object_get(g, "add_special_tokens")),
						&trunc, &pad, outs, &err)) {
				say(name, ln, "batch", "%s", err.msg);
			} else if (json_array_size(encs) != k) {
				say(name, ln, "batch", "%zu encodings, want %zu", k, json_array_size(encs));
			} else {
				ok = 1;
				for (size_t i = 0; i < k && ok; i++)
					ok = check_enc(name, ln, &outs[i], json_array_get(encs, i), 1, 1);
			}
			for (size_t i = 0; i < k; i++)
				hf_tok_encoding_free(&outs[i]);
			free(outs);
			free(inp);
		}
		n->ok += ok;
		hf_tok_encoding_free(&e);
		json_decref(g);
	}
	free(buf);
	free(path);
}

static void check_fixture(const char *name)
{
	char rel[256];
	char *dir;
	struct hf_tok *t;
	struct hf_tok_ctx *c;
	struct hf_err err = { 0 };
	struct counts g = { 0 }, p = { 0 }, b = { 0 };

	snprintf(rel, sizeof(rel), "tokenizers/%s", name);
	dir = hf_path_join(fixtures(), rel);
	if (hf_tok_load(&t, dir, &err))
		fail_msg("%s: %s", name, err.msg);
	assert_int_equal(hf_tok_ctx_create(&c, t, &err), 0);
	run_lines(name, "golden.jsonl", t, c, &g);
	run_lines(name, "pairs.jsonl", t, c, &p);
	run_lines(name, "batch.jsonl", t, c, &b);
	printf("%-18s golden %zu/%zu  pairs %zu/%zu  batch %zu/%zu\n", name,
	       g.ok, g.total, p.ok, p.total, b.ok, b.total);
	fflush(stdout);
	hf_tok_ctx_free(c);
	hf_tok_free(t);
	free(dir);
	assert_true(g.total > 0);
	assert_int_equal(g.ok, g.total);
	assert_int_equal(p.ok, p.total);
	assert_int_equal(b.ok, b.total);
}

#define FIXTURE(fn, name) static void fn(void **s) { (void)s; check_fixture(name); }
FIXTURE(test_golden_gpt2, "gpt2")
FIXTURE(test_golden_llama3_1, "llama3_1")
FIXTURE(test_golden_qwen3, "qwen3")
FIXTURE(test_golden_deepseek_v3, "deepseek_v3")
FIXTURE(test_golden_llama2, "llama2")
FIXTURE(test_golden_llama2_nonlegacy, "llama2-nonlegacy")
FIXTURE(test_golden_bert_base_uncased, "bert-base-uncased")
FIXTURE(test_golden_wordlevel, "wordlevel")
FIXTURE(test_golden_pegasus, "pegasus")

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_gpt2),
		cmocka_unit_test(test_golden_llama3_1),
		cmocka_unit_test(test_golden_qwen3),
		cmocka_unit_test(test_golden_deepseek_v3),
		cmocka_unit_test(test_golden_llama2),
		cmocka_unit_test(test_golden_llama2_nonlegacy),
		cmocka_unit_test(test_golden_bert_base_uncased),
		cmocka_unit_test(test_golden_wordlevel),
		cmocka_unit_test(test_golden_pegasus),
	};

	if (getenv("HF_TOK_VERBOSE"))
		verbose_left = atoi(getenv("HF_TOK_VERBOSE"));
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
