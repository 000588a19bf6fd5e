/* Tests for lib/st/model.c: one name space over a single file or the
 * shards of model.safetensors.index.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "st/st.h"

static char dir[] = "/tmp/hf-test-stm-XXXXXX";

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* Write dir/sub/name holding U8 tensors names[] of 2 bytes each. */
static void shard(const char *sub, const char *name, const char **names)
{
	static const unsigned char d[16] = { 7, 9, 7, 9, 7, 9, 7, 9 };
	const int64_t two = 2;
	struct hf_err err = { 0 };
	struct hf_st_writer *w;
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%s/%s", dir, sub, name);
	assert_int_equal(hf_st_writer_new(&w, &err), 0);
	for (int i = 0; names[i]; i++)	/* each its own bytes */
		assert_int_equal(hf_st_writer_add(w, names[i], HF_DTYPE_U8, 1,
						  &two, d + 2 * i, &err), 0);
	assert_int_equal(hf_st_writer_write(w, p, &err), 0);
	hf_st_writer_free(w);
}

static void index_file(const char *sub, const char *json)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s/model.safetensors.index.json", dir, sub);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(json, f);
	fclose(f);
}

static char *sub_path(const char *sub)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	return p;
}

static const char *s1[] = { "a.weight", "b.weight", NULL };
static const char *s2[] = { "c.weight", NULL };
#define GOOD_INDEX "{\"metadata\":{\"total_size\":6},\"weight_map\":{" \
	"\"a.weight\":\"model-00001-of-00002.safetensors\"," \
	"\"c.weight\":\"model-00002-of-00002.safetensors\"," \
	"\"b.weight\":\"model-00001-of-00002.safetensors\"}}"

static void test_sharded_model_is_one_name_space(void **state)
{
	struct hf_err err = { 0 };
	struct hf_st_model *m;
	const struct hf_tensor *c;

	shard("ok", "model-00001-of-00002.safetensors", s1);
	shard("ok", "model-00002-of-00002.safetensors", s2);
	index_file("ok", GOOD_INDEX);
	if (hf_st_open_dir(&m, sub_path("ok"), &err))
		fail_msg("%s", err.msg);
	assert_int_equal(hf_st_model_count(m), 3);
	assert_int_equal(hf_st_model_nfiles(m), 2);
	assert_non_null(hf_st_model_index(m));
	c = hf_st_model_get(m, "c.weight");
	assert_non_null(c);
	assert_int_equal(((const unsigned char *)c->data)[1], 9);
	assert_ptr_equal(hf_st_model_file_of(m, c), hf_st_model_file(m, 1));
	assert_ptr_equal(hf_st_model_file_of(m, hf_st_model_get(m,
			 "a.weight")), hf_st_model_file(m, 0));
	assert_null(hf_st_model_get(m, "d.weight"));
	assert_string_equal(hf_st_model_tensor(m, 0)->name, "a.weight");
	assert_string_equal(hf_st_model_tensor(m, 2)->name, "c.weight");
	hf_st_model_free(m);
	hf_st_model_free(NULL);
}

static void test_index_naming_a_missing_tensor_fails(void **state)
{
	struct hf_err err = { 0 };
	struct hf_st_model *m;

	shard("miss", "model-00001-of-00002.safetensors", s1);
	shard("miss", "model-00002-of-00002.safetensors", s2);
	/* c.weight is said to be in shard 1 */
	index_file("miss", "{\"weight_map\":{"
		   "\"a.weight\":\"model-00001-of-00002.safetensors\","
		   "\"c.weight\":\"model-00001-of-00002.safetensors\"}}");
	assert_int_equal(hf_st_open_dir(&m, sub_path("miss"), &err),
			 HF_ENOTFOUND);
	assert_null(m);
	assert_non_null(strstr(err.msg, "'c.weight'"));
	assert_non_null(strstr(err.msg, "model-00001-of-00002.safetensors"));
	assert_non_null(strstr(err.msg, "model.safetensors.index.json"));
}

static void test_missing_shard_file_is_named(void **state)
{
	struct hf_err err = { 0 };
	struct hf_st_model *m;

	shard("gone", "model-00001-of-00002.safetensors", s1);
	index_file("gone", GOOD_INDEX);
	assert_int_equal(hf_st_open_dir(&m, sub_path("gone"), &err), HF_EIO);
	assert_non_null(strstr(err.msg, "model-00002-of-00002.safetensors"));
}

static void test_tensor_in_two_shards_fails(void **state)
{
	static const char *dup[] = { "b.weight", "c.weight", NULL };
	struct hf_err err = { 0 };
	struct hf_st_model *m;

	shard("dup", "model-00001-of-00002.safetensors", s1);
	shard("dup", "model-00002-of-00002.safetensors", dup);
	index_file("dup", GOOD_INDEX);
	assert_int_equal(hf_st_open_dir(&m, sub_path("dup"), &err),
			 HF_EFORMAT);
	assert_non_null(strstr(err.msg, "'b.weight' is in both"));
}

static void test_bad_index_is_named(void **state)
{
	struct hf_err err = { 0 };
	struct hf_st_model *m;

	shard("bad", "model-00001-of-00002.safetensors", s1);
	index_file("bad", "{\"metadata\":{}}");
	assert_int_equal(hf_st_open_dir(&m, sub_path("bad"), &err),
			 HF_EFORMAT);
	assert_non_null(strstr(err.msg, "missing key 'weight_map'"));
	index_file("bad", "{\"weight_map\":{\"a.weight\":"
		   "\"../../etc/x.safetensors\"}}");
	assert_int_equal(hf_st_open_dir(&m, sub_path("bad"), &err),
			 HF_EFORMAT);
	assert_non_null(strstr(err.msg, "outside the model directory"));
	index_file("bad", "{\"weight_map\":");
	assert_int_equal(hf_st_open_dir(&m, sub_path("bad"), &err),
			 HF_EFORMAT);
	assert_non_null(strstr(err.msg, "model.safetensors.index.json"));
}

static void test_single_file_directory_and_path(void **state)
{
	struct hf_err err = { 0 };
	struct hf_st_model *m;
	char p[600];

	shard("one", "model.safetensors", s1);
	assert_int_equal(hf_st_open_dir(&m, sub_path("one"), &err), 0);
	assert_int_equal(hf_st_model_count(m), 2);
	assert_null(hf_st_model_index(m));
	hf_st_model_free(m);
	snprintf(p, sizeof(p), "%s/model.safetensors", sub_path("one"));
	assert_int_equal(hf_st_open_dir(&m, p, &err), 0);
	assert_int_equal(hf_st_model_nfiles(m), 1);
	hf_st_model_free(m);
}

static void test_directory_without_weights_fails(void **state)
{
	struct hf_err err = { 0 };
	struct hf_st_model *m;

	mkdir(sub_path("empty"), 0755);
	assert_int_equal(hf_st_open_dir(&m, sub_path("empty"), &err),
			 HF_ENOTFOUND);
	assert_non_null(strstr(err.msg, "empty"));
}

static void test_opens_every_fixture_model(void **state)
{
	static const char *names[] = { "bert-tiny", "distilbert-tiny",
		"gemma-tiny", "gpt2-tiny", "llama-tiny", "llama-tiny-untied",
		"mistral-tiny", "mixtral-tiny", "phi3-tiny", "qwen2-tiny",
		"qwen3-tiny", "roberta-tiny", NULL };
	const char *fx = getenv("HF_FIXTURES");
	struct hf_err err = { 0 };
	char p[512];

	for (const char **n = names; *n; n++) {
		struct hf_st_model *m;

		snprintf(p, sizeof(p), "%s/models/%s",
			 fx ? fx : "test/fixtures", *n);
		if (hf_st_open_dir(&m, p, &err))
			fail_msg("%s: %s", *n, err.msg);
		assert_true(hf_st_model_count(m) > 10);
		hf_st_model_free(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sharded_model_is_one_name_space),
		cmocka_unit_test(test_index_naming_a_missing_tensor_fails),
		cmocka_unit_test(test_missing_shard_file_is_named),
		cmocka_unit_test(test_tensor_in_two_shards_fails),
		cmocka_unit_test(test_bad_index_is_named),
		cmocka_unit_test(test_single_file_directory_and_path),
		cmocka_unit_test(test_directory_without_weights_fails),
		cmocka_unit_test(test_opens_every_fixture_model),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
