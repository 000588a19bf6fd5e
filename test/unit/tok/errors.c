/* test/unit/tok/errors.c: malformed tokenizer.json and bad input give an
 * error code and a message naming the file, JSON path or byte at fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tok/tok.h"

static void expect_load_error(const char *json, int code, const char *msg)
{
	struct hf_tok *t = (struct hf_tok *)1;
	struct hf_err err = { 0 };

	assert_int_equal(hf_tok_load_buf(&t, json, strlen(json), "tokenizer.json", &err), code);
	assert_null(t);
	if (!strstr(err.msg, msg))
		fail_msg("message '%s' lacks '%s'", err.msg, msg);
}

#define WL "\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"?\":0,\"a\":1}}"

static void test_unknown_model_type_names_path(void **s)
{
	expect_load_error("{\"model\":{\"type\":\"Foo\",\"vocab\":{}}}", HF_EFORMAT,
			  "tokenizer.json: model.type: unknown model 'Foo'");
}

static void test_unknown_component_in_sequence_names_index(void **s)
{
	expect_load_error("{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
			  "{\"type\":\"Bogus\"}]}," WL "}", HF_EFORMAT,
			  "tokenizer.json: normalizer.normalizers[1].type: unknown normalizer 'Bogus'");
	expect_load_error("{\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
			  "{\"type\":\"Nope\"}]}," WL "}", HF_EFORMAT,
			  "tokenizer.json: pre_tokenizer.pretokenizers[0].type: unknown pre-tokenizer 'Nope'");
	expect_load_error("{\"decoder\":{\"type\":\"Zap\"}," WL "}", HF_EFORMAT,
			  "tokenizer.json: decoder.type: unknown decoder 'Zap'");
	expect_load_error("{\"post_processor\":{\"type\":\"Zip\"}," WL "}", HF_EFORMAT,
			  "tokenizer.json: post_processor.type: unknown post-processor 'Zip'");
}

static void test_missing_model_and_type(void **s)
{
	expect_load_error("{\"normalizer\":null}", HF_EFORMAT, "missing key 'model'");
	expect_load_error("{\"normalizer\":{}," WL "}", HF_EFORMAT,
			  "tokenizer.json: normalizer: missing key 'type'");
	expect_load_error("[1,2]", HF_EFORMAT, "top level must be an object");
}

static void test_bad_merges_name_the_entry(void **s)
{
	expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},"
			  "\"merges\":[\"a b\",\"a  b\"]}}", HF_EFORMAT,
			  "tokenizer.json: model.merges[1]: must be two tokens");
	expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},"
			  "\"merges\":[[\"a\",\"b\"]]}}", HF_EFORMAT,
			  "model.merges[0]: merged token 'ab' is not in the vocab");
	expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},"
			  "\"merges\":[[\"a\",\"c\"]]}}", HF_EFORMAT,
			  "is not in the vocab");
	expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}}",
			  HF_EFORMAT, "model.vocab: token 'a' has a bad id");
}

static void test_bad_fields(void **s)
{
	expect_load_error("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
			  "\"behavior\":\"Isolated\"}," WL "}", HF_EFORMAT,
			  "tokenizer.json: pre_tokenizer.pattern: bad regex '('");
	expect_load_error("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},"
			  "\"behavior\":\"Sideways\"}," WL "}", HF_EFORMAT,
			  "pre_tokenizer.behavior: unknown behavior 'Sideways'");
	expect_load_error("{\"pre_tokenizer\":{\"type\":\"Metaspace\",\"prepend_scheme\":\"sometimes\"}," WL "}",
			  HF_EFORMAT, "pre_tokenizer.prepend_scheme: unknown scheme 'sometimes'");
	expect_load_error("{\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"!!\"}," WL "}",
			  HF_EFORMAT, "normalizer.precompiled_charsmap: bad base64");
	expect_load_error("{\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"/////w==\"}," WL "}",
			  HF_EFORMAT, "trie size past the end");
	expect_load_error("{\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":\"[X] $A\","
			  "\"pair\":\"$A $B\",\"special_tokens\":{}}," WL "}", HF_EFORMAT,
			  "post_processor.single.special_tokens: missing token '[X]'");
	expect_load_error("{\"model\":{\"type\":\"Unigram\",\"unk_id\":5,\"vocab\":[[\"a\",0.0]]}}",
			  HF_EFORMAT, "model.unk_id: 5 is past the vocab");
	expect_load_error("{\"added_tokens\":[{\"id\":-1,\"content\":\"x\"}]," WL "}",
			  HF_EFORMAT, "added_tokens[0].id: -1 is out of range");
}

static void test_malformed_json_names_line(void **s)
{
	expect_load_error("{\"model\":\n{\"type\":", HF_EFORMAT, "tokenizer.json");
}

static void test_missing_directory(void **s)
{
	struct hf_tok *t;
	struct hf_err err = { 0 };

	assert_int_equal(hf_tok_load(&t, "/nonexistent/model", &err), HF_ENOTFOUND);
	assert_non_null(strstr(err.msg, "/nonexistent/model/tokenizer.json"));
}

static void test_invalid_utf8_input(void **s)
{
	const char *json = "{" WL "}";
	struct hf_tok *t;
	struct hf_tok_ctx *c;
	struct hf_tok_encoding e = { 0 };
	struct hf_err err = { 0 };

	assert_int_equal(hf_tok_load_buf(&t, json, strlen(json), "t", &err), 0);
	assert_int_equal(hf_tok_ctx_create(&c, t, &err), 0);
	assert_int_equal(hf_tok_encode(c, "ab\xC3(", 4, NULL, 0, 1, NULL, &e, &err), HF_EUTF8);
	assert_string_equal(err.msg, "invalid UTF-8 at byte 2");
	assert_int_equal(hf_tok_encode(c, "a", 1, "\xFF", 1, 1, NULL, &e, &err), HF_EUTF8);
	assert_non_null(strstr(err.msg, "text pair"));
	hf_tok_encoding_free(&e);
	hf_tok_ctx_free(c);
	hf_tok_free(t);
}

static void test_wordpiece_without_unk_fails_on_unknown_word(void **s)
{
	const char *json = "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
			   "\"vocab\":{\"a\":0}}}";
	struct hf_tok *t;
	struct hf_tok_ctx *c;
	struct hf_tok_encoding e = { 0 };
	struct hf_err err = { 0 };

	assert_int_equal(hf_tok_load_buf(&t, json, strlen(json), "t", &err), 0);
	assert_int_equal(hf_tok_ctx_create(&c, t, &err), 0);
	assert_int_equal(hf_tok_encode(c, "a", 1, NULL, 0, 1, NULL, &e, &err), 0);
	assert_int_equal(hf_tok_encode(c, "b", 1, NULL, 0, 1, NULL, &e, &err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "no unk token for 'b'"));
	hf_tok_encoding_free(&e);
	hf_tok_ctx_free(c);
	hf_tok_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_model_type_names_path),
		cmocka_unit_test(test_unknown_component_in_sequence_names_index),
		cmocka_unit_test(test_missing_model_and_type),
		cmocka_unit_test(test_bad_merges_name_the_entry),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_malformed_json_names_line),
		cmocka_unit_test(test_missing_directory),
		cmocka_unit_test(test_invalid_utf8_input),
		cmocka_unit_test(test_wordpiece_without_unk_fails_on_unknown_word),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
