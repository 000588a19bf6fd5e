/* Tests for lib/hub/util.c: cache names, globs, header parsing, backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hub/internal.h"

static void expect_str(char *got, const char *want)
{
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_repo_folder_matches_huggingface_hub(void **state)
{
	expect_str(hf_hub_repo_folder(HF_HUB_MODEL, "gpt2"), "models--gpt2");
	expect_str(hf_hub_repo_folder(HF_HUB_MODEL, "meta-llama/Llama-3.2-1B"),
		   "models--meta-llama--Llama-3.2-1B");
	expect_str(hf_hub_repo_folder(HF_HUB_DATASET, "nyu-mll/glue"),
		   "datasets--nyu-mll--glue");
	expect_str(hf_hub_repo_folder(HF_HUB_SPACE, "a/b"), "spaces--a--b");
	assert_string_equal(hf_hub_url_prefix(HF_HUB_MODEL), "");
	assert_string_equal(hf_hub_url_prefix(HF_HUB_DATASET), "datasets/");
}

static void test_blob_target_is_relative_per_depth(void **state)
{
	expect_str(hf_hub_blob_target("config.json", "abc"), "../../blobs/abc");
	expect_str(hf_hub_blob_target("a/f.bin", "abc"), "../../../blobs/abc");
	expect_str(hf_hub_blob_target("sub/dir/f.bin", "e"), "../../../../blobs/e");
}

static void test_commit_and_sha256_shapes(void **state)
{
	assert_true(hf_hub_is_commit("0123456789abcdef0123456789abcdef01234567"));
	assert_false(hf_hub_is_commit("0123456789ABCDEF0123456789abcdef01234567"));
	assert_false(hf_hub_is_commit("0123456"));	/* short sha: a ref */
	assert_false(hf_hub_is_commit("main"));
	assert_true(hf_hub_is_sha256("e3b0c44298fc1c149afbf4c8996fb924"
				     "27ae41e4649b934ca495991b7852b855"));
	assert_false(hf_hub_is_sha256("0123456789abcdef0123456789abcdef01234567"));
}

static void test_repo_ids_as_huggingface_hub_validates_them(void **state)
{
	assert_true(hf_hub_valid_repo_id("gpt2"));
	assert_true(hf_hub_valid_repo_id("Qwen/Qwen2.5-0.5B-Instruct"));
	assert_true(hf_hub_valid_repo_id("a_b/c.d-e"));
	assert_false(hf_hub_valid_repo_id(""));
	assert_false(hf_hub_valid_repo_id("a/b/c"));
	assert_false(hf_hub_valid_repo_id("/a"));
	assert_false(hf_hub_valid_repo_id("a/"));
	assert_false(hf_hub_valid_repo_id("a--b/c"));
	assert_false(hf_hub_valid_repo_id("a/..b"));
	assert_false(hf_hub_valid_repo_id("a b/c"));
	assert_false(hf_hub_valid_repo_id("a/b@main"));
}

static void test_safe_path_rejects_escapes(void **state)
{
	assert_true(hf_hub_safe_path("config.json"));
	assert_true(hf_hub_safe_path("a/b/c.txt"));
	assert_true(hf_hub_safe_path(".gitattributes"));
	assert_false(hf_hub_safe_path("../x"));
	assert_false(hf_hub_safe_path("a/../../x"));
	assert_false(hf_hub_safe_path("/etc/passwd"));
	assert_false(hf_hub_safe_path("a//b"));
	assert_false(hf_hub_safe_path("a/"));
	assert_false(hf_hub_safe_path("./a"));
	assert_false(hf_hub_safe_path(""));
}

static void test_glob_is_fnmatchcase_on_whole_path(void **state)
{
	assert_true(hf_hub_glob_match("*.json", "config.json"));
	assert_true(hf_hub_glob_match("*.json", "sub/x.json"));	/* * crosses / */
	assert_false(hf_hub_glob_match("*.json", "config.JSON"));	/* case */
	assert_true(hf_hub_glob_match("model-0000?-of-*.safetensors",
				      "model-00001-of-00002.safetensors"));
	assert_true(hf_hub_glob_match("onnx/", "onnx/model.onnx"));
	assert_false(hf_hub_glob_match("onnx/", "onnx"));
	assert_true(hf_hub_glob_match("[!p]*", "config.json"));
	assert_false(hf_hub_glob_match("[!p]*", "pytorch_model.bin"));
	assert_true(hf_hub_glob_match("a\\b", "a\\b"));	/* no escapes */
	assert_false(hf_hub_glob_match("config", "config.json"));
}

static void test_default_selection(void **state)
{
	assert_true(hf_hub_default_file("config.json", 1));
	assert_true(hf_hub_default_file("tokenizer.model", 1));
	assert_true(hf_hub_default_file("merges.txt", 1));
	assert_true(hf_hub_default_file("chat_template.jinja", 1));
	assert_true(hf_hub_default_file("model-00001-of-00002.safetensors", 1));
	assert_true(hf_hub_default_file("model.safetensors.index.json", 1));
	assert_false(hf_hub_default_file("pytorch_model.bin", 1));
	assert_true(hf_hub_default_file("pytorch_model.bin", 0));
	assert_false(hf_hub_default_file("tf_model.h5", 0));
	assert_false(hf_hub_default_file("flax_model.msgpack", 0));
	assert_false(hf_hub_default_file("onnx/model.onnx", 0));
	assert_false(hf_hub_default_file("onnx/config.json", 1));
	assert_false(hf_hub_default_file("README.md", 1));
	assert_false(hf_hub_default_file(".gitattributes", 1));
}

static void test_escape(void **state)
{
	expect_str(hf_hub_escape("refs/pr/1", 0), "refs%2Fpr%2F1");
	expect_str(hf_hub_escape("sub dir/a+b.json", 1), "sub%20dir/a%2Bb.json");
	expect_str(hf_hub_escape("v1.0-rc_2~x", 0), "v1.0-rc_2~x");
}

static void test_etag_normalised(void **state)
{
	char b[80];

	hf_hub_etag_norm(b, sizeof(b), "\"abc123\"");
	assert_string_equal(b, "abc123");
	hf_hub_etag_norm(b, sizeof(b), "W/\"abc123\"");
	assert_string_equal(b, "abc123");
	hf_hub_etag_norm(b, sizeof(b), " plain ");
	assert_string_equal(b, "plain");
	hf_hub_etag_norm(b, 4, "\"abcdef\"");
	assert_string_equal(b, "abc");
}

static void test_content_range(void **state)
{
	uint64_t s, t;

	assert_int_equal(hf_hub_content_range("bytes 100-199/1000", &s, &t), 0);
	assert_int_equal(s, 100);
	assert_int_equal(t, 1000);
	assert_int_equal(hf_hub_content_range("bytes 0-9/*", &s, &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(hf_hub_content_range("bytes */1000", &s, &t), -1);
	assert_int_equal(hf_hub_content_range("items 0-9/10", &s, &t), -1);
	assert_int_equal(hf_hub_content_range("bytes 9-0/10", &s, &t), -1);
	assert_int_equal(hf_hub_content_range("bytes 0-9/9", &s, &t), -1);
}

static void test_retry_after(void **state)
{
	assert_true(hf_hub_retry_after("7", NULL) == 7.0);
	assert_true(hf_hub_retry_after(NULL, "\"api\";r=0;t=55") == 55.0);
	/* RateLimit only counts when nothing remains */
	assert_true(hf_hub_retry_after("3", "\"api\";r=12;t=55") == 3.0);
	/* an HTTP-date is ignored, as upstream does */
	assert_true(hf_hub_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NULL) < 0);
	assert_true(hf_hub_retry_after(NULL, NULL) < 0);
	assert_true(hf_hub_retry_after("", "") < 0);
	/* digits only: no floats, signs, infinities or hex */
	assert_true(hf_hub_retry_after("inf", NULL) < 0);
	assert_true(hf_hub_retry_after("nan", NULL) < 0);
	assert_true(hf_hub_retry_after("-5", NULL) < 0);
	assert_true(hf_hub_retry_after("0x10", NULL) < 0);
	assert_true(hf_hub_retry_after("2.5", NULL) < 0);
	assert_true(hf_hub_retry_after(NULL, "\"api\";r=0;t=inf") < 0);
	/* a wait past the Hub's window is cut to it */
	assert_true(hf_hub_retry_after("86400", NULL) == HF_HUB_MAX_WAIT);
	assert_true(hf_hub_retry_after("99999999999999999999999", NULL) ==
		    HF_HUB_MAX_WAIT);
	assert_true(hf_hub_retry_after(NULL, "\"api\";r=0;t=3600") ==
		    HF_HUB_MAX_WAIT);
}

static void test_backoff_doubles_to_a_cap_with_jitter(void **state)
{
	const double want[] = { 1, 2, 4, 8, 8, 8 };

	for (int a = 0; a < 6; a++) {
		double lo = hf_hub_backoff(a, 0.0), hi = hf_hub_backoff(a, 0.999999);

		if (lo != want[a] / 2 || hi > want[a] || hi < want[a] * 0.99)
			fail_msg("attempt %d: [%g, %g], want [%g, %g]", a, lo, hi,
				 want[a] / 2, want[a]);
	}
	assert_true(hf_hub_backoff(1000, 0.5) == 6.0);
}

static void test_truthy(void **state)
{
	assert_true(hf_hub_truthy("1"));
	assert_true(hf_hub_truthy("YES"));
	assert_true(hf_hub_truthy("True"));
	assert_true(hf_hub_truthy("on"));
	assert_false(hf_hub_truthy("0"));
	assert_false(hf_hub_truthy(""));
	assert_false(hf_hub_truthy(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repo_folder_matches_huggingface_hub),
		cmocka_unit_test(test_blob_target_is_relative_per_depth),
		cmocka_unit_test(test_commit_and_sha256_shapes),
		cmocka_unit_test(test_repo_ids_as_huggingface_hub_validates_them),
		cmocka_unit_test(test_safe_path_rejects_escapes),
		cmocka_unit_test(test_glob_is_fnmatchcase_on_whole_path),
		cmocka_unit_test(test_default_selection),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_etag_normalised),
		cmocka_unit_test(test_content_range),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_backoff_doubles_to_a_cap_with_jitter),
		cmocka_unit_test(test_truthy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
