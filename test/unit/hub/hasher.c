/* Tests for lib/hub/hasher.c: whatever the interleaving of writer and
 * hasher, the hash is that of the file; tiny slots make the queue fill,
 * the spare slot and the read-back paths run often. */
#define _GNU_SOURCE	/* O_DIRECT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/internal.h"
#include "hub/sha256.h"

static int temp_file(void)
{
	char path[] = "/tmp/hf-test-hasher.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static void sha_hex(const unsigned char *p, size_t n, char out[65])
{
	struct hf_sha256 s;

	hf_sha256_init(&s);
	hf_sha256_update(&s, p, n);
	hf_sha256_hex(&s, out);
}

static void fill_random(unsigned char *p, size_t n, unsigned *seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)rand_r(seed);
}

/* Write data[from..n) through the hasher in random pieces of at most
 * slot bytes, as download.c does: take a slot, fill, write, pass back. */
static void write_through(struct hub_hasher *hs, int fd,
			  const unsigned char *data, size_t from, size_t n,
			  size_t slot, unsigned *seed)
{
	while (from < n) {
		size_t k = 1 + (size_t)rand_r(seed) % slot;
		char *s = hub_hasher_slot(hs);

		if (k > n - from)
			k = n - from;
		memcpy(s, data + from, k);
		assert_int_equal(write(fd, s, k), (ssize_t)k);
		hub_hasher_wrote(hs, s, k);
		from += k;
	}
}

static void test_hash_is_the_files_for_any_interleaving(void **state)
{
	enum { N = 300000 };
	unsigned char *data = malloc(N);
	unsigned seed = 1;

	(void)state;
	assert_non_null(data);
	for (int round = 0; round < 40; round++) {
		size_t slot = 1 + (size_t)rand_r(&seed) % 5000;
		unsigned nslots = 1 + (unsigned)rand_r(&seed) % 4;
		size_t n = (size_t)rand_r(&seed) % N;
		struct hub_hasher *hs;
		char want[65], got[65];
		int fd = temp_file();

		fill_random(data, n, &seed);
		sha_hex(data, n, want);
		assert_int_equal(hub_hasher_start(&hs, fd, 0, slot, nslots), 0);
		write_through(hs, fd, data, 0, n, slot, &seed);
		assert_int_equal(hub_hasher_finish(hs, n, 0, got, NULL), 0);
		if (strcmp(got, want))
			fail_msg("round %d (slot %zu x %u, %zu bytes): got %s, want %s",
				 round, slot, nslots, n, got, want);
		close(fd);
	}
	free(data);
}

/* A resume: the hasher reads the prefix back while the writer, finding
 * the queue full, fills the spare slot, which is read back in turn. */
static void test_resumed_prefix_then_slots(void **state)
{
	enum { PREFIX = 3 << 20, N = PREFIX + 500000 };
	unsigned char *data = malloc(N);
	unsigned seed = 7;

	(void)state;
	assert_non_null(data);
	fill_random(data, N, &seed);
	for (int round = 0; round < 5; round++) {
		struct hub_hasher *hs;
		char want[65], got[65];
		int fd = temp_file();

		sha_hex(data, N, want);
		assert_int_equal(write(fd, data, PREFIX), PREFIX);
		assert_int_equal(hub_hasher_start(&hs, fd, PREFIX, 4096, 2), 0);
		write_through(hs, fd, data, PREFIX, N, 4096, &seed);
		assert_int_equal(hub_hasher_finish(hs, N, 0, got, NULL), 0);
		assert_string_equal(got, want);
		close(fd);
	}
	free(data);
}

static void test_reset_hashes_only_what_follows(void **state)
{
	enum { N = 200000 };
	unsigned char *a = malloc(N), *b = malloc(N);
	unsigned seed = 3;
	struct hub_hasher *hs;
	char want[65], got[65];
	int fd = temp_file();

	(void)state;
	assert_true(a && b);
	fill_random(a, N, &seed);
	fill_random(b, N, &seed);
	assert_int_equal(write(fd, a, 1000), 1000);
	assert_int_equal(hub_hasher_start(&hs, fd, 1000, 512, 3), 0);
	write_through(hs, fd, a, 1000, N, 512, &seed);
	hub_hasher_reset(hs);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	write_through(hs, fd, b, 0, N / 2, 512, &seed);
	sha_hex(b, N / 2, want);
	assert_int_equal(hub_hasher_finish(hs, N / 2, 0, got, NULL), 0);
	assert_string_equal(got, want);
	close(fd);
	free(a);
	free(b);
}

static void test_finish_rejects_a_short_count(void **state)
{
	struct hub_hasher *hs;
	char got[65];
	int fd = temp_file();

	(void)state;
	assert_int_equal(hub_hasher_start(&hs, fd, 0, 64, 2), 0);
	write_through(hs, fd, (const unsigned char *)"abcdef", 0, 6, 64, &(unsigned){ 1 });
	assert_int_equal(hub_hasher_finish(hs, 7, 0, got, NULL), EIO);
	close(fd);
}

static void test_a_file_shorter_than_said_is_a_read_error(void **state)
{
	struct hub_hasher *hs;
	char got[65];
	int fd = temp_file();

	(void)state;
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_int_equal(hub_hasher_start(&hs, fd, 10, 64, 2), 0);
	assert_int_equal(hub_hasher_finish(hs, 10, 0, got, NULL), EIO);
	close(fd);
}

static void test_cancel_stops_at_once(void **state)
{
	struct hub_hasher *hs;
	char got[65];
	int fd = temp_file();

	(void)state;
	assert_int_equal(hub_hasher_start(&hs, fd, 0, 64, 2), 0);
	write_through(hs, fd, (const unsigned char *)"abcdef", 0, 6, 64, &(unsigned){ 1 });
	assert_int_equal(hub_hasher_finish(hs, 6, 1, got, NULL), ECANCELED);
	close(fd);
}

/* Put data[from..n) through a writing hasher: whole slots when full (so
 * that direct writes line up), else random pieces; it writes them. */
static void put_through(struct hub_hasher *hs, const unsigned char *data,
			size_t from, size_t n, size_t slot, int full,
			unsigned *seed)
{
	while (from < n) {
		size_t k = full ? slot : 1 + (size_t)rand_r(seed) % slot;
		char *s = hub_hasher_slot(hs);

		if (k > n - from)
			k = n - from;
		memcpy(s, data + from, k);
		assert_int_equal(hub_hasher_put(hs, s, k), 0);
		from += k;
	}
}

/* The same file opened for direct writes, or -1 where the file system
 * takes none. */
static int direct_fd(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_WRONLY | O_DIRECT);
}

static void assert_file_is(int fd, const unsigned char *data, size_t n)
{
	unsigned char *got = malloc(n + 1);

	assert_non_null(got);
	assert_int_equal(pread(fd, got, n + 1, 0), (ssize_t)n);
	assert_memory_equal(got, data, n);
	free(got);
}

static void test_writing_hasher_writes_the_file_it_hashes(void **state)
{
	enum { N = 300000 };
	unsigned char *data = malloc(N);
	unsigned seed = 5;

	(void)state;
	assert_non_null(data);
	for (int round = 0; round < 24; round++) {
		/* whole 8 KiB slots (direct writes where they line up) or
		 * random pieces of small slots; half resume a prefix */
		int full = round % 2, direct = 0;
		size_t slot = full ? 8192 : 1 + (size_t)rand_r(&seed) % 3000;
		size_t prefix = round % 4 >= 2 ? 8192 * (size_t)(round % 3) + 100 * full : 0;
		unsigned nslots = 1 + (unsigned)rand_r(&seed) % 4;
		struct hub_hasher *hs;
		char want[65], got[65];
		int fd = temp_file(), dfd = direct_fd(fd);

		fill_random(data, N, &seed);
		sha_hex(data, N, want);
		assert_int_equal(write(fd, data, prefix), (ssize_t)prefix);
		assert_int_equal(hub_hasher_start_writing(&hs, fd, dfd, prefix,
							  slot, nslots), 0);
		put_through(hs, data, prefix, N, slot, full, &seed);
		assert_int_equal(hub_hasher_sync(hs, &direct), 0);
		assert_int_equal(hub_hasher_finish(hs, N, 0, got, NULL), 0);
		assert_string_equal(got, want);
		assert_file_is(fd, data, N);
		if (full && !prefix && dfd >= 0)
			assert_true(direct);
		if (dfd >= 0)
			close(dfd);
		close(fd);
	}
	free(data);
}

static void test_writing_hasher_reset_drops_queued_writes(void **state)
{
	enum { N = 100000 };
	unsigned char *a = malloc(N), *b = malloc(N);
	unsigned seed = 7;
	struct hub_hasher *hs;
	char want[65], got[65];
	int fd = temp_file(), direct = 0;

	(void)state;
	assert_true(a && b);
	fill_random(a, N, &seed);
	fill_random(b, N, &seed);
	assert_int_equal(hub_hasher_start_writing(&hs, fd, -1, 0, 700, 3), 0);
	put_through(hs, a, 0, N, 700, 0, &seed);
	hub_hasher_reset(hs);
	/* nothing of a may land after this */
	assert_int_equal(ftruncate(fd, 0), 0);
	put_through(hs, b, 0, N / 2, 700, 0, &seed);
	assert_int_equal(hub_hasher_sync(hs, &direct), 0);
	sha_hex(b, N / 2, want);
	assert_int_equal(hub_hasher_finish(hs, N / 2, 0, got, NULL), 0);
	assert_string_equal(got, want);
	assert_file_is(fd, b, N / 2);
	close(fd);
	free(a);
	free(b);
}

static void test_writing_hasher_reports_a_failed_write(void **state)
{
	struct hub_hasher *hs;
	char got[65];
	int fd = temp_file(), direct = 0, e = 0;
	char path[64];
	int ro;

	(void)state;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY);
	assert_true(ro >= 0);
	assert_int_equal(hub_hasher_start_writing(&hs, ro, -1, 0, 64, 2), 0);
	for (int i = 0; i < 10 && !e; i++) {
		char *s = hub_hasher_slot(hs);

		memset(s, 'x', 64);
		e = hub_hasher_put(hs, s, 64);
	}
	if (!e)
		e = hub_hasher_sync(hs, &direct);
	assert_int_equal(e, EBADF);
	assert_int_equal(hub_hasher_sync(hs, &direct), EBADF);
	hub_hasher_finish(hs, 0, 1, got, NULL);
	close(ro);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_is_the_files_for_any_interleaving),
		cmocka_unit_test(test_resumed_prefix_then_slots),
		cmocka_unit_test(test_reset_hashes_only_what_follows),
		cmocka_unit_test(test_finish_rejects_a_short_count),
		cmocka_unit_test(test_a_file_shorter_than_said_is_a_read_error),
		cmocka_unit_test(test_cancel_stops_at_once),
		cmocka_unit_test(test_writing_hasher_writes_the_file_it_hashes),
		cmocka_unit_test(test_writing_hasher_reset_drops_queued_writes),
		cmocka_unit_test(test_writing_hasher_reports_a_failed_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
