/* test/unit/gen/stories.c: models/stories260k (real trained weights)
 * through the tokenizer and the generation loop reproduces llama.cpp's
 * greedy continuation text exactly (reference.json "greedy"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/json.h"
#include "gen/gen.h"
#include "tok/tok.h"

static void test_greedy_text_equals_llama_cpp(void **state)
{
	struct hf_err err = { 0 };
	const char *models = getenv("HF_MODELS");
	char dir[512], path[600];
	struct hf_model *m;
	struct hf_tok *tok;
	struct hf_tok_ctx *tc;
	struct hf_tok_encoding e = { 0 };
	json_t *ref, *g;
	const char *ptext, *want;
	struct hf_gen_opts o = { 0 };
	struct hf_gen_row row;
	const int32_t *pr;
	int32_t *ids;
	uint32_t *all;
	size_t n, total;
	char *text;

	snprintf(dir, sizeof(dir), "%s/stories260k", models ? models : "models");
	snprintf(path, sizeof(path), "%s/reference.json", dir);
	if (hf_model_open(&m, dir, NULL, 2, &err) ||
	    hf_tok_load(&tok, dir, &err) || hf_tok_ctx_create(&tc, tok, &err) ||
	    hf_json_load_file(&ref, path, &err))
		fail_msg("%s", err.msg);
	g = json_object_get(ref, "greedy");
	ptext = json_string_value(json_object_get(g, "prompt_text"));
	want = json_string_value(json_object_get(g, "text"));
	/* the prompt ids come from the tokenizer, as in hf-run */
	if (hf_tok_encode(tc, ptext, strlen(ptext), NULL, 0, 1, NULL, &e, &err))
		fail_msg("%s", err.msg);
	ids = malloc(e.n * sizeof(*ids));
	for (size_t i = 0; i < e.n; i++) {
		ids[i] = (int32_t)e.ids[i];
		assert_int_equal(ids[i], json_integer_value(json_array_get(
			json_object_get(g, "prompt_ids"), i)));
	}
	n = e.n;
	hf_sample_defaults(&o.sp);
	o.sp.temperature = 0;
	o.max_tokens = (size_t)json_integer_value(json_object_get(g,
							"max_new_tokens"));
	pr = ids;
	if (hf_gen_run(m, &pr, &n, 1, &o, &row, &err))
		fail_msg("%s", err.msg);
	total = n + row.n;
	all = malloc(total * sizeof(*all));
	for (size_t i = 0; i < n; i++)
		all[i] = (uint32_t)ids[i];
	for (size_t i = 0; i < row.n; i++)
		all[n + i] = (uint32_t)row.ids[i];
	if (hf_tok_decode(tok, all, total, 1, &text, NULL, &err))
		fail_msg("%s", err.msg);
	if (strcmp(text, want))
		fail_msg("got  \"%s\"\nwant \"%s\"", text, want);
	printf("stories260k greedy text equals llama.cpp's (%zu tokens)\n",
	       row.n);
	free(text);
	free(all);
	free(ids);
	hf_gen_row_free(&row);
	hf_tok_encoding_free(&e);
	json_decref(ref);
	hf_tok_ctx_free(tc);
	hf_tok_free(tok);
	hf_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greedy_text_equals_llama_cpp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
