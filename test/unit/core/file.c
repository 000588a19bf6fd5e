/* Tests for lib/core/file.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"

static char dir[] = "/tmp/hf-test-file-XXXXXX";

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

static void test_map_reads_file_bytes(void **state)
{
	char *p = hf_path_join(dir, "a.bin");
	struct hf_map m;
	struct hf_err err = { 0 };
	FILE *f = fopen(p, "wb");

	fwrite("hello", 1, 5, f);
	fclose(f);
	assert_int_equal(hf_map_open(&m, p, &err), 0);
	assert_int_equal(m.size, 5);
	assert_memory_equal(m.data, "hello", 5);
	hf_map_close(&m);
	hf_map_close(&m);
	free(p);
}

static void test_map_missing_file_names_it(void **state)
{
	struct hf_map m;
	struct hf_err err = { 0 };

	assert_int_equal(hf_map_open(&m, "/nonexistent/x.safetensors", &err),
			 HF_EIO);
	assert_non_null(strstr(err.msg, "'/nonexistent/x.safetensors'"));
}

static void test_atomic_commit_renames_and_abort_leaves_nothing(void **state)
{
	char *p = hf_path_join(dir, "out.txt");
	struct hf_atomic a;
	struct hf_err err = { 0 };
	char *got;

	assert_int_equal(hf_atomic_open(&a, p, &err), 0);
	fputs("partial", a.f);
	fflush(a.f);
	assert_false(hf_file_exists(p));	/* not under its name yet */
	hf_atomic_abort(&a);
	assert_false(hf_file_exists(p));

	assert_int_equal(hf_atomic_open(&a, p, &err), 0);
	fputs("done", a.f);
	assert_int_equal(hf_atomic_commit(&a, &err), 0);
	assert_int_equal(hf_file_read(&got, NULL, p, &err), 0);
	assert_string_equal(got, "done");
	free(got);
	free(p);
}

static void test_path_join(void **state)
{
	char *a = hf_path_join("d", "f"), *b = hf_path_join("d/", "f");

	assert_string_equal(a, "d/f");
	assert_string_equal(b, "d/f");
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_reads_file_bytes),
		cmocka_unit_test(test_map_missing_file_names_it),
		cmocka_unit_test(test_atomic_commit_renames_and_abort_leaves_nothing),
		cmocka_unit_test(test_path_join),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
