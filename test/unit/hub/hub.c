/* Tests for lib/hub/hub.c: settings from the environment, repo specs, the
 * and -m resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/internal.h"

static char dir[] = "/tmp/hf-test-hub-XXXXXX";
static char buf[1024];

static const char *at(const char *rel)
{
	snprintf(buf, sizeof(buf), "%s/%s", dir, rel);
	return buf;
}

static void clear_env(void)
{
	static const char *const vars[] = {
		"HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
		"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH",
		"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME",
		"HF_HUB_DISABLE_IMPLICIT_TOKEN", NULL,
	};

	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

static int setup(void **state)
{
	clear_env();
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void write_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static void test_settings_from_the_environment(void **state)
{
	struct hf_hub *h = NULL;
	struct hf_err err = { 0 };

	clear_env();
	setenv("HF_HOME", dir, 1);
	setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
	assert_int_equal(hf_hub_open(&h, NULL, &err), 0);
	assert_string_equal(hf_hub_endpoint(h), "http://127.0.0.1:9");
	assert_string_equal(h->origin, "http://127.0.0.1:9");
	assert_string_equal(hf_hub_cache_dir(h), at("hub"));
	assert_null(h->token);
	assert_int_equal(h->jobs, 4);
	assert_false(h->offline);
	hf_hub_free(h);

	setenv("HUGGINGFACE_HUB_CACHE", "/legacy", 1);
	setenv("HF_HUB_CACHE", "/new", 1);
	setenv("HF_HUB_OFFLINE", "TRUE", 1);
	assert_int_equal(hf_hub_open(&h, NULL, &err), 0);
	assert_string_equal(hf_hub_cache_dir(h), "/new");
	assert_true(h->offline);
	hf_hub_free(h);
	clear_env();
}

static void test_token_precedence(void **state)
{
	struct hf_hub_opts o = { 0 };
	struct hf_hub *h = NULL;
	struct hf_err err = { 0 };

	clear_env();
	setenv("HF_HOME", dir, 1);
	write_file(at("token"), "  hf_file\r\n");
	assert_int_equal(hf_hub_open(&h, NULL, &err), 0);
	assert_string_equal(h->token, "hf_file");
	hf_hub_free(h);
	setenv("HUGGING_FACE_HUB_TOKEN", "hf_legacy", 1);
	assert_int_equal(hf_hub_open(&h, NULL, &err), 0);
	assert_string_equal(h->token, "hf_legacy");
	hf_hub_free(h);
	setenv("HF_TOKEN", "hf_env", 1);
	assert_int_equal(hf_hub_open(&h, NULL, &err), 0);
	assert_string_equal(h->token, "hf_env");
	hf_hub_free(h);
	o.token = "hf_opt";
	assert_int_equal(hf_hub_open(&h, &o, &err), 0);
	assert_string_equal(h->token, "hf_opt");
	hf_hub_free(h);
	unsetenv("HF_TOKEN");
	unsetenv("HUGGING_FACE_HUB_TOKEN");
	write_file(at("token"), "\n");
	assert_int_equal(hf_hub_open(&h, NULL, &err), 0);
	assert_null(h->token);	/* empty means none */
	hf_hub_free(h);
	unlink(at("token"));
	clear_env();
}

static void test_bad_endpoint_is_refused(void **state)
{
	struct hf_hub_opts o = { .endpoint = "huggingface.co" };
	struct hf_hub *h = NULL;
	struct hf_err err = { 0 };

	assert_int_equal(hf_hub_open(&h, &o, &err), HF_EINVAL);
	assert_null(h);
	assert_string_equal(err.msg, "endpoint 'huggingface.co' is not an http(s) URL");
}

static void test_parse_spec(void **state)
{
	struct hf_err err = { 0 };
	char *id, *rev;

	assert_int_equal(hf_hub_parse_spec(&id, &rev, "Qwen/Qwen2.5-0.5B@v1.0", &err), 0);
	assert_string_equal(id, "Qwen/Qwen2.5-0.5B");
	assert_string_equal(rev, "v1.0");
	free(id);
	free(rev);
	assert_int_equal(hf_hub_parse_spec(&id, &rev, "gpt2", &err), 0);
	assert_string_equal(id, "gpt2");
	assert_null(rev);
	free(id);
	assert_int_equal(hf_hub_parse_spec(&id, &rev, "a/b/c", &err), HF_EINVAL);
	assert_int_equal(hf_hub_parse_spec(&id, &rev, "../x", &err), HF_EINVAL);
	assert_int_equal(hf_hub_parse_spec(&id, &rev, "a/b@", &err), HF_EINVAL);
	assert_int_equal(hf_hub_parse_spec(&id, &rev, "", &err), HF_EINVAL);
	assert_string_equal(err.msg, "'' is not a repo id (org/name[@revision])");
}

static void test_resolve_model_takes_a_directory_as_is(void **state)
{
	struct hf_err err = { 0 };
	char *out = NULL;

	assert_int_equal(hf_hub_resolve_model(&out, dir, &err), 0);
	assert_string_equal(out, dir);
	free(out);
	assert_int_equal(hf_hub_resolve_model(&out, "./no/such/dir", &err),
			 HF_EINVAL);
	assert_string_equal(err.msg, "'./no/such/dir' is neither a directory nor "
			    "a Hub repo id (org/name[@revision])");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_from_the_environment),
		cmocka_unit_test(test_token_precedence),
		cmocka_unit_test(test_bad_endpoint_is_refused),
		cmocka_unit_test(test_parse_spec),
		cmocka_unit_test(test_resolve_model_takes_a_directory_as_is),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
