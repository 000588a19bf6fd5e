/* Render every record of test/fixtures/chat_templates/<name>.jsonl with
 * tokenizers/<name>/ and compare with the golden bytes (made by
 * @huggingface/jinja and cross-checked with Python Jinja2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"
#include "tok/chat/chat.h"

static const char *fixtures(void)
{
	const char *d = getenv("HF_FIXTURES");

	return d ? d : "test/fixtures";
}

/* Print where got and want first differ. */
static void show_diff(const char *got, const char *want)
{
	size_t i = 0;

	while (got[i] && got[i] == want[i])
		i++;
	fprintf(stderr, "  first difference at byte %zu\n  got:  \"%.80s\"\n"
		"  want: \"%.80s\"\n", i, got + i, want + i);
}

/* Returns the number of records that did not match. */
static int run_file(const char *name, int *total)
{
	char path[4096], dir[4096];
	struct hf_err err = { 0 };
	struct hf_chat *c = NULL;
	char *buf = NULL, *line, *save = NULL;
	int n = 0, ok = 0;

	snprintf(path, sizeof(path), "%s/chat_templates/%s.jsonl", fixtures(),
		 name);
	snprintf(dir, sizeof(dir), "%s/tokenizers/%s", fixtures(), name);
	assert_int_equal(hf_file_read(&buf, NULL, path, &err), 0);
	if (hf_chat_load(&c, dir, &err))
		fail_msg("load %s: %s", dir, err.msg);
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *rec = NULL, *want, *kw;
		char *got = NULL;
		int rc;

		assert_int_equal(hf_json_load_buf(&rec, line, strlen(line),
						  path, &err), 0);
		kw = json_object_get(rec, "kwargs");
		rc = hf_chat_render(c, NULL, json_object_get(rec, "messages"),
				    json_object_get(rec, "tools"), NULL,
				    json_is_true(json_object_get(rec,
						"add_generation_prompt")),
				    kw, &got, &err);
		want = json_object_get(rec, "rendered");
		n++;
		if (want) {
			if (rc) {
				fprintf(stderr, "%s #%d %s: error: %s\n", name,
					n, json_string_value(json_object_get(
					rec, "name")), err.msg);
			} else if (strcmp(got, json_string_value(want))) {
				fprintf(stderr, "%s #%d %s: mismatch\n", name,
					n, json_string_value(json_object_get(
					rec, "name")));
				show_diff(got, json_string_value(want));
			} else {
				ok++;
			}
		} else if (rc) {
			ok++;	/* the golden is an error too */
		} else {
			fprintf(stderr, "%s #%d: rendered, golden is error "
				"'%s'\n", name, n, json_string_value(
				json_object_get(rec, "error")));
		}
		free(got);
		json_decref(rec);
	}
	printf("chat: %s.jsonl: %d/%d match\n", name, ok, n);
	hf_chat_free(c);
	free(buf);
	*total += n;
	return n - ok;
}

static void test_fixture_renders_are_byte_identical(void **state)
{
	char path[4096];
	struct dirent *e;
	int bad = 0, total = 0, files = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/chat_templates", fixtures());
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char name[256];

		if (n <= 6 || strcmp(e->d_name + n - 6, ".jsonl") ||
		    n - 6 >= sizeof(name))
			continue;
		memcpy(name, e->d_name, n - 6);
		name[n - 6] = 0;
		bad += run_file(name, &total);
		files++;
	}
	closedir(d);
	assert_true(files >= 5);
	assert_true(total >= 100);
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_renders_are_byte_identical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
