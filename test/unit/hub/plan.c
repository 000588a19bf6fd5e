/* Tests for lib/hub/plan.c: the plan from a cache that huggingface_hub laid
 * out, offline: refs, snapshots, and the file selection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/internal.h"

#define SHA "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"

static char dir[] = "/tmp/hf-test-hub-plan-XXXXXX";
static char snap[1200];
static struct hf_hub *hub;

static void write_file(const char *rel, const char *data)
{
	char path[1200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

/* models--org--m with refs/main, three blobs and a snapshot linking them */
static int setup(void **state)
{
	static const char *const files[][2] = {
		{ "config.json", "../../blobs/e1" },
		{ "model.safetensors", "../../blobs/e2" },
		{ "pytorch_model.bin", "../../blobs/e2" },
		{ "tokenizer.json", "../../blobs/e1" },
		{ "onnx/model.onnx", "../../../blobs/e3" },
		{ "README.md", "../../blobs/e3" },
	};
	struct hf_hub_opts o = { .offline = 1 };
	struct hf_err err = { 0 };
	char cmd[1400], link[1400];

	if (!mkdtemp(dir))
		return -1;
	snprintf(snap, sizeof(snap), "%s/models--org--m/snapshots/" SHA, dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/onnx' '%s/models--org--m/refs' "
		 "'%s/models--org--m/blobs'", snap, dir, dir);
	if (system(cmd))
		return -1;
	write_file("models--org--m/refs/main", SHA);
	write_file("models--org--m/blobs/e1", "{}");
	write_file("models--org--m/blobs/e2", "weights");
	write_file("models--org--m/blobs/e3", "x");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(link, sizeof(link), "%s/%s", snap, files[i][0]);
		if (symlink(files[i][1], link))
			return -1;
	}
	o.cache_dir = dir;
	return hf_hub_open(&hub, &o, &err);
}

static int teardown(void **state)
{
	char cmd[128];

	hf_hub_free(hub);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* The planned paths, space-separated. */
static int plan_paths(struct hf_hub_request *req, char *out, size_t n,
		      struct hf_err *err)
{
	struct hf_hub_plan *p = NULL;
	int rc;

	req->repo_id = req->repo_id ? req->repo_id : "org/m";
	out[0] = '\0';
	if ((rc = hf_hub_plan(&p, hub, req, err)))
		return rc;
	for (size_t i = 0; i < p->nfiles; i++) {
		strncat(out, p->files[i].path, n - strlen(out) - 2);
		strcat(out, " ");
	}
	hf_hub_plan_free(p);
	return 0;
}

static void test_offline_plan_reads_refs_and_snapshot(void **state)
{
	struct hf_hub_request req = { .repo_id = "org/m" };
	struct hf_hub_plan *p = NULL;
	struct hf_err err = { 0 };

	assert_int_equal(hf_hub_plan(&p, hub, &req, &err), 0);
	assert_string_equal(p->commit, SHA);
	assert_string_equal(p->dir, snap);
	assert_true(p->from_cache);
	assert_int_equal(p->bytes, 0);
	for (size_t i = 0; i < p->nfiles; i++)
		assert_true(p->files[i].cached);
	/* sizes are the blobs' */
	assert_string_equal(p->files[1].path, "model.safetensors");
	assert_int_equal(p->files[1].size, 7);
	assert_int_equal(hf_hub_fetch(hub, p, &err), 0);
	hf_hub_plan_free(p);
}

static void test_default_selection_skips_duplicates(void **state)
{
	struct hf_hub_request req = { 0 };
	struct hf_err err = { 0 };
	char got[512];

	assert_int_equal(plan_paths(&req, got, sizeof(got), &err), 0);
	assert_string_equal(got, "config.json model.safetensors tokenizer.json ");
}

static void test_include_replaces_default_and_exclude_removes(void **state)
{
	const char *inc[] = { "*.json", "onnx/" }, *exc[] = { "tok*" };
	struct hf_hub_request req = { .include = inc, .ninclude = 2,
				      .exclude = exc, .nexclude = 1 };
	struct hf_err err = { 0 };
	char got[512];

	assert_int_equal(plan_paths(&req, got, sizeof(got), &err), 0);
	assert_string_equal(got, "config.json onnx/model.onnx ");
}

static void test_explicit_files_exactly(void **state)
{
	const char *files[] = { "README.md", "pytorch_model.bin" };
	const char *missing[] = { "config.json", "nope.bin" };
	struct hf_hub_request req = { .files = files, .nfiles = 2 };
	struct hf_err err = { 0 };
	char got[512];

	assert_int_equal(plan_paths(&req, got, sizeof(got), &err), 0);
	assert_string_equal(got, "README.md pytorch_model.bin ");
	req.files = missing;
	assert_int_equal(plan_paths(&req, got, sizeof(got), &err), HF_ENOTFOUND);
	assert_string_equal(err.msg, "file 'nope.bin' not found in 'org/m' at "
			    "revision 'main' of the cache (offline "
			    "(HF_HUB_OFFLINE is set))");
}

static void test_offline_misses_name_the_cache(void **state)
{
	struct hf_hub_request req = { .revision = "v2" };
	struct hf_err err = { 0 };
	char got[512], want[1400];

	assert_int_equal(plan_paths(&req, got, sizeof(got), &err), HF_ENOTFOUND);
	snprintf(want, sizeof(want), "offline (HF_HUB_OFFLINE is set) and model "
		 "'org/m' at revision 'v2' is not in the cache '%s'", dir);
	assert_string_equal(err.msg, want);
	req.revision = SHA;
	assert_int_equal(plan_paths(&req, got, sizeof(got), &err), 0);
	req.revision = "../../etc";
	assert_int_equal(plan_paths(&req, got, sizeof(got), &err), HF_EINVAL);
	req.revision = NULL;
	req.repo_id = "org/../m";
	assert_int_equal(plan_paths(&req, got, sizeof(got), &err), HF_EINVAL);
}

static void test_resolve_model_offline(void **state)
{
	struct hf_err err = { 0 };
	char *out = NULL;

	setenv("HF_HUB_CACHE", dir, 1);
	setenv("HF_HUB_OFFLINE", "1", 1);
	assert_int_equal(hf_hub_resolve_model(&out, "org/m", &err), 0);
	assert_string_equal(out, snap);
	free(out);
	assert_int_equal(hf_hub_resolve_model(&out, "org/m@" SHA, &err), 0);
	assert_string_equal(out, snap);
	free(out);
	assert_int_equal(hf_hub_resolve_model(&out, "org/m@v2", &err),
			 HF_ENOTFOUND);
	assert_null(out);
	unsetenv("HF_HUB_CACHE");
	unsetenv("HF_HUB_OFFLINE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offline_plan_reads_refs_and_snapshot),
		cmocka_unit_test(test_default_selection_skips_duplicates),
		cmocka_unit_test(test_include_replaces_default_and_exclude_removes),
		cmocka_unit_test(test_explicit_files_exactly),
		cmocka_unit_test(test_offline_misses_name_the_cache),
		cmocka_unit_test(test_resolve_model_offline),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
