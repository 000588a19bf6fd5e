/* Tests for lib/hub/cache.c: refs, symlinks, locks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "hub/internal.h"

static char dir[] = "/tmp/hf-test-hub-cache-XXXXXX";
static char path[512];

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

static const char *at(const char *rel)
{
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return path;
}

static void test_ref_written_whole_with_no_newline(void **state)
{
	const char sha[] = "0123456789abcdef0123456789abcdef01234567";
	struct hf_err err = { 0 };
	char *data = NULL, *ref;
	size_t len;
	struct stat st1, st2;

	assert_int_equal(hub_write_if_changed(at("m/refs/refs/pr/1"), sha, &err), 0);
	assert_int_equal(hf_file_read(&data, &len, at("m/refs/refs/pr/1"), &err), 0);
	assert_int_equal(len, 40);
	assert_string_equal(data, sha);
	free(data);
	ref = hub_read_ref(at("m"), "refs/pr/1");
	assert_non_null(ref);
	assert_string_equal(ref, sha);
	free(ref);
	/* unchanged content: the file is not rewritten */
	stat(at("m/refs/refs/pr/1"), &st1);
	assert_int_equal(hub_write_if_changed(at("m/refs/refs/pr/1"), sha, &err), 0);
	stat(at("m/refs/refs/pr/1"), &st2);
	assert_int_equal(st1.st_ino, st2.st_ino);
	assert_null(hub_read_ref(at("m"), "main"));
}

static void test_ref_that_is_not_a_commit_is_ignored(void **state)
{
	struct hf_err err = { 0 };

	assert_int_equal(hub_write_if_changed(at("m2/refs/main"), "garbage", &err), 0);
	assert_null(hub_read_ref(at("m2"), "main"));
}

static void test_symlink_replaces_an_old_target(void **state)
{
	struct hf_err err = { 0 };
	char buf[256];
	ssize_t n;

	assert_int_equal(hub_symlink("../../blobs/a", at("s/snapshots/c/f"), &err), 0);
	assert_int_equal(hub_symlink("../../blobs/b", at("s/snapshots/c/f"), &err), 0);
	n = readlink(at("s/snapshots/c/f"), buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "../../blobs/b");
}

static void test_lock_excludes_a_second_holder(void **state)
{
	struct hf_err err = { 0 };
	int fd = hub_lock(at(".locks/models--a--b/e.lock"), &err), fd2;

	assert_true(fd >= 0);
	/* flock is per open file: a second open must not get it */
	fd2 = open(at(".locks/models--a--b/e.lock"), O_RDWR);
	assert_true(fd2 >= 0);
	assert_int_equal(flock(fd2, LOCK_EX | LOCK_NB), -1);
	hub_unlock(fd);
	assert_int_equal(flock(fd2, LOCK_EX | LOCK_NB), 0);
	close(fd2);
}

static void test_mkdirs_reports_the_culprit(void **state)
{
	struct hf_err err = { 0 };
	FILE *f = fopen(at("plainfile"), "w");

	fclose(f);
	assert_int_equal(hub_mkdirs(at("plainfile/x/y"), 0, &err), HF_EIO);
	assert_non_null(strstr(err.msg, "plainfile/x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_written_whole_with_no_newline),
		cmocka_unit_test(test_ref_that_is_not_a_commit_is_ignored),
		cmocka_unit_test(test_symlink_replaces_an_old_target),
		cmocka_unit_test(test_lock_excludes_a_second_holder),
		cmocka_unit_test(test_mkdirs_reports_the_culprit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
