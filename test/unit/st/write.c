/* Tests for lib/st/write.c: byte layout against the reference writer's
 * own test vectors, ordering, round trips, pipes and atomic failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/file.h"
#include "st/st.h"

static char dir[] = "/tmp/hf-test-stw-XXXXXX";

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

static char *tmp(const char *name)
{
	char *p = hf_path_join(dir, name);

	assert_non_null(p);
	return p;
}

static struct hf_st_writer *writer(void)
{
	struct hf_err err = { 0 };
	struct hf_st_writer *w;

	assert_int_equal(hf_st_writer_new(&w, &err), 0);
	return w;
}

static void write_ok(struct hf_st_writer *w, const char *p)
{
	struct hf_err err = { 0 };

	if (hf_st_writer_write(w, p, &err))
		fail_msg("write failed: %s", err.msg);
}

static void read_all(const char *p, char **buf, size_t *len)
{
	struct hf_err err = { 0 };

	assert_int_equal(hf_file_read(buf, len, p, &err), 0);
}

/* safetensors/src/tensor.rs test_serialization and
 * test_serialization_forced_alignement: the exact bytes, no metadata. */
static void test_layout_matches_reference_vectors(void **state)
{
	static const float v[6] = { 0, 1, 2, 3, 4, 5 };
	static const char h1[] = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],"
		"\"data_offsets\":[0,24]}}";
	static const char h2[] = "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],"
		"\"data_offsets\":[0,24]}}       ";
	const int64_t s1[3] = { 1, 2, 3 }, s2[4] = { 1, 1, 2, 3 };
	struct hf_err err = { 0 };
	struct hf_st_writer *w;
	char *p = tmp("ref.safetensors"), *buf;
	size_t len;

	assert_int_equal(sizeof(h1) - 1, 64);
	assert_int_equal(sizeof(h2) - 1, 72);
	w = writer();
	assert_int_equal(hf_st_writer_meta(w, "format", NULL, &err), 0);
	assert_int_equal(hf_st_writer_add(w, "attn.0", HF_DTYPE_F32, 3, s1, v,
					  &err), 0);
	write_ok(w, p);
	hf_st_writer_free(w);
	read_all(p, &buf, &len);
	assert_int_equal(len, 8 + 64 + 24);
	assert_memory_equal(buf, "\x40\0\0\0\0\0\0\0", 8);
	assert_memory_equal(buf + 8, h1, 64);
	assert_memory_equal(buf + 72, v, 24);
	free(buf);

	w = writer();
	assert_int_equal(hf_st_writer_meta(w, "format", NULL, &err), 0);
	assert_int_equal(hf_st_writer_add(w, "attn0", HF_DTYPE_F32, 4, s2, v,
					  &err), 0);
	assert_int_equal(hf_st_writer_size(w), 8 + 72 + 24);
	write_ok(w, p);
	hf_st_writer_free(w);
	read_all(p, &buf, &len);
	assert_int_equal(len, 8 + 72 + 24);
	assert_memory_equal(buf, "\x48\0\0\0\0\0\0\0", 8);
	assert_memory_equal(buf + 8, h2, 72);
	free(buf);

	/* test_empty with metadata {"framework": "pt"} */
	w = writer();
	assert_int_equal(hf_st_writer_meta(w, "format", NULL, &err), 0);
	assert_int_equal(hf_st_writer_meta(w, "framework", "pt", &err), 0);
	write_ok(w, p);
	hf_st_writer_free(w);
	read_all(p, &buf, &len);
	assert_int_equal(len, 48);
	assert_memory_equal(buf, "\x28\0\0\0\0\0\0\0"
			    "{\"__metadata__\":{\"framework\":\"pt\"}}     ", 48);
	free(buf);
	free(p);
}

static void test_orders_by_alignment_then_name_with_format_first(void **state)
{
	static const unsigned char bytes[64] = { 0 };
	const int64_t one = 1, two = 2;
	struct hf_err err = { 0 };
	struct hf_st_writer *w = writer();
	char *p = tmp("order.safetensors"), *buf, *hdr;
	const char *want = "{\"__metadata__\":{\"format\":\"pt\"},"
		"\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
		"\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
		"\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]},"
		"\"a.x\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[20,22]},"
		"\"z\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[22,24]},"
		"\"q\\\"\\n\\u0001\":{\"dtype\":\"BOOL\",\"shape\":[],"
		"\"data_offsets\":[24,25]}}";
	size_t len, hlen;

	assert_int_equal(hf_st_writer_add(w, "z", HF_DTYPE_U8, 1, &two, bytes,
					  &err), 0);
	assert_int_equal(hf_st_writer_add(w, "c", HF_DTYPE_F32, 1, &one, bytes + 8,
					  &err), 0);
	assert_int_equal(hf_st_writer_add(w, "a.x", HF_DTYPE_BF16, 1, &one,
					  bytes + 16, &err), 0);
	assert_int_equal(hf_st_writer_add(w, "a", HF_DTYPE_F32, 1, &two, bytes + 24,
					  &err), 0);
	assert_int_equal(hf_st_writer_add(w, "q\"\n\x01", HF_DTYPE_BOOL, 0,
					  NULL, bytes + 40, &err), 0);
	assert_int_equal(hf_st_writer_add(w, "b", HF_DTYPE_I64, 1, &one, bytes + 48,
					  &err), 0);
	write_ok(w, p);
	hf_st_writer_free(w);
	read_all(p, &buf, &len);
	hlen = 0;
	for (int i = 0; i < 8; i++)
		hlen |= (size_t)(unsigned char)buf[i] << (8 * i);
	assert_int_equal(hlen % 8, 0);
	hdr = buf + 8;
	if (strncmp(hdr, want, strlen(want)))
		fail_msg("header\n got %.*s\nwant %s", (int)hlen, hdr, want);
	for (size_t i = strlen(want); i < hlen; i++)
		assert_int_equal(hdr[i], ' ');
	assert_true(hlen - strlen(want) < 8);
	assert_int_equal(len, 8 + hlen + 25);
	free(buf);
	free(p);
}

static void test_round_trip_every_dtype(void **state)
{
	struct hf_err err = { 0 };
	struct hf_st_writer *w = writer();
	struct hf_st *st;
	unsigned char data[HF_DTYPE_COUNT][64];
	char *p = tmp("all.safetensors"), name[32];
	const int64_t shape[2] = { 2, 4 };	/* 8 elements: F4 and F6 fill bytes */

	for (int t = 0; t < HF_DTYPE_COUNT; t++) {
		for (int i = 0; i < 64; i++)
			data[t][i] = (unsigned char)(t * 31 + i);
		snprintf(name, sizeof(name), "t.%s", hf_dtype_name(t));
		assert_int_equal(hf_st_writer_add(w, name, t, 2, shape,
						  data[t], &err), 0);
	}
	assert_int_equal(hf_st_writer_meta(w, "note", "ünï", &err), 0);
	write_ok(w, p);
	hf_st_writer_free(w);
	if (hf_st_open(&st, p, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(hf_st_count(st), HF_DTYPE_COUNT);
	assert_string_equal(hf_st_meta_get(st, "format"), "pt");
	assert_string_equal(hf_st_meta_get(st, "note"), "ünï");
	for (int t = 0; t < HF_DTYPE_COUNT; t++) {
		const struct hf_tensor *x;

		snprintf(name, sizeof(name), "t.%s", hf_dtype_name(t));
		x = hf_st_get(st, name);
		assert_non_null(x);
		assert_int_equal(x->dtype, t);
		assert_int_equal(x->ndim, 2);
		assert_int_equal(x->shape[1], 4);
		assert_int_equal(x->nbytes, hf_dtype_bits(t));
		assert_memory_equal(x->data, data[t], x->nbytes);
		/* descending alignment keeps every tensor aligned */
		assert_int_equal((uintptr_t)x->data %
				 (hf_dtype_bits(t) >= 8 ? hf_dtype_bits(t) / 8
				  : 1), 0);
	}
	hf_st_free(st);
	free(p);
}

/* Bytes i of a tensor: (i * 7) & 0xff, produced in chunks. */
static int fill_pattern(void *ctx, void *buf, size_t off, size_t len,
			struct hf_err *err)
{
	unsigned char *b = buf;
	int *calls = ctx;

	(*calls)++;
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)((off + i) * 7);
	return 0;
}

static int fill_fails(void *ctx, void *buf, size_t off, size_t len,
		      struct hf_err *err)
{
	if (off > 0)
		return hf_err_set(err, HF_EIO, "source went away at %zu", off);
	memset(buf, 0, len);
	return 0;
}

static void test_fill_callback_streams_big_tensor(void **state)
{
	const int64_t shape[1] = { 3 * 1024 * 1024 + 5 };
	struct hf_err err = { 0 };
	struct hf_st_writer *w = writer();
	struct hf_st *st;
	char *p = tmp("big.safetensors");
	const unsigned char *d;
	int calls = 0;

	assert_int_equal(hf_st_writer_add_fn(w, "big", HF_DTYPE_U8, 1, shape,
					     fill_pattern, &calls, &err), 0);
	write_ok(w, p);
	hf_st_writer_free(w);
	assert_int_equal(calls, 4);	/* 1 MiB chunks */
	assert_int_equal(hf_st_open(&st, p, &err), 0);
	d = hf_st_get(st, "big")->data;
	for (size_t i = 0; i < (size_t)shape[0]; i++)
		if (d[i] != (unsigned char)(i * 7))
			fail_msg("byte %zu: got %u want %u", i, d[i],
				 (unsigned char)(i * 7));
	hf_st_free(st);
	free(p);
}

static void test_failure_leaves_no_file(void **state)
{
	const int64_t shape[1] = { 2 * 1024 * 1024 };
	struct hf_err err = { 0 };
	struct hf_st_writer *w = writer();
	char *p = tmp("fail.safetensors"), cmd[600];

	assert_int_equal(hf_st_writer_add_fn(w, "x", HF_DTYPE_U8, 1, shape,
					     fill_fails, NULL, &err), 0);
	assert_int_equal(hf_st_writer_write(w, p, &err), HF_EIO);
	assert_non_null(strstr(err.msg, "tensor 'x'"));
	assert_non_null(strstr(err.msg, "went away"));
	hf_st_writer_free(w);
	assert_false(hf_file_exists(p));
	/* nor a temporary beside it */
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' | grep fail)\"",
		 dir);
	assert_int_equal(system(cmd), 0);
	free(p);
}

static void test_writes_through_a_pipe(void **state)
{
	static const uint16_t h[4] = { 0x3c00, 0x4000, 0xc000, 0x7c00 };
	const int64_t shape[2] = { 2, 2 };
	struct hf_err err = { 0 };
	struct hf_st *st;
	int fds[2], status;
	pid_t pid;
	FILE *in;
	char *buf;
	size_t len;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct hf_st_writer *w;
		FILE *out = fdopen(fds[1], "wb");

		close(fds[0]);
		if (hf_st_writer_new(&w, &err) ||
		    hf_st_writer_add(w, "h", HF_DTYPE_F16, 2, shape, h, &err) ||
		    hf_st_writer_write_stream(w, out, "pipe", &err) ||
		    fclose(out))
			_exit(1);
		hf_st_writer_free(w);
		_exit(0);
	}
	close(fds[1]);
	in = fdopen(fds[0], "rb");
	assert_int_equal(hf_stream_read(&buf, &len, in, "pipe", &err), 0);
	fclose(in);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (hf_st_open_buf(&st, buf, len, "pipe", &err))
		fail_msg("%s", err.msg);
	assert_memory_equal(hf_st_get(st, "h")->data, h, 8);
	hf_st_free(st);
	free(buf);
}

static void test_rejects_bad_tensors(void **state)
{
	static const unsigned char d[4];
	const int64_t neg = -1, three = 3, one = 1;
	struct hf_err err = { 0 };
	struct hf_st_writer *w = writer();

	assert_int_equal(hf_st_writer_add(w, "n", HF_DTYPE_U8, 1, &neg, d,
					  &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "'n'"));
	assert_int_equal(hf_st_writer_add(w, "f4", HF_DTYPE_F4, 1, &three, d,
					  &err), HF_EINVAL);
	assert_int_equal(hf_st_writer_add(w, "__metadata__", HF_DTYPE_U8, 1,
					  &one, d, &err), HF_EINVAL);
	assert_int_equal(hf_st_writer_add(w, "bad\xff", HF_DTYPE_U8, 1, &one,
					  d, &err), HF_EUTF8);
	assert_int_equal(hf_st_writer_add(w, "ok", HF_DTYPE_U8, 1, &one, d,
					  &err), 0);
	assert_int_equal(hf_st_writer_add(w, "ok", HF_DTYPE_U8, 1, &one, d,
					  &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "'ok' added twice"));
	hf_st_writer_free(w);
	hf_st_writer_free(NULL);
}

static void test_refuses_shared_memory(void **state)
{
	static const float d[8];
	const int64_t four = 4, two = 2;
	struct hf_err err = { 0 };
	struct hf_st_writer *w = writer();
	char *p = tmp("shared.safetensors");

	assert_int_equal(hf_st_writer_add(w, "a", HF_DTYPE_F32, 1, &four, d,
					  &err), 0);
	assert_int_equal(hf_st_writer_add(w, "b", HF_DTYPE_F32, 1, &two, d + 4,
					  &err), 0);
	write_ok(w, p);		/* adjacent is fine */
	assert_int_equal(hf_st_writer_add(w, "tied", HF_DTYPE_F32, 1, &two,
					  d + 3, &err), 0);
	assert_int_equal(hf_st_writer_write(w, p, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "'a' and 'tied' share memory"));
	hf_st_writer_free(w);
	free(p);
}

/* Re-writing a fixture gives a file with the same tensors and bytes. */
static void test_rewrites_fixture_losslessly(void **state)
{
	const char *fx = getenv("HF_FIXTURES");
	char src[512], *p = tmp("copy.safetensors");
	struct hf_err err = { 0 };
	struct hf_st *a, *b;
	struct hf_st_writer *w = writer();

	snprintf(src, sizeof(src), "%s/models/gpt2-tiny/model.safetensors",
		 fx ? fx : "test/fixtures");
	assert_int_equal(hf_st_open(&a, src, &err), 0);
	for (size_t i = 0; i < hf_st_count(a); i++) {
		const struct hf_tensor *t = hf_st_tensor(a, i);

		assert_int_equal(hf_st_writer_add(w, t->name, t->dtype, t->ndim,
						  t->shape, t->data, &err), 0);
	}
	write_ok(w, p);
	hf_st_writer_free(w);
	assert_int_equal(hf_st_open(&b, p, &err), 0);
	assert_int_equal(hf_st_count(b), hf_st_count(a));
	assert_int_equal(hf_st_size(b) - hf_st_header_len(b),
			 hf_st_size(a) - hf_st_header_len(a));
	for (size_t i = 0; i < hf_st_count(a); i++) {
		const struct hf_tensor *t = hf_st_tensor(a, i);
		const struct hf_tensor *u = hf_st_get(b, t->name);

		assert_non_null(u);
		assert_int_equal(u->dtype, t->dtype);
		assert_int_equal(u->ndim, t->ndim);
		assert_memory_equal(u->shape, t->shape,
				    sizeof(int64_t) * (size_t)t->ndim);
		assert_int_equal(u->nbytes, t->nbytes);
		assert_memory_equal(u->data, t->data, t->nbytes);
	}
	hf_st_free(a);
	hf_st_free(b);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_matches_reference_vectors),
		cmocka_unit_test(test_orders_by_alignment_then_name_with_format_first),
		cmocka_unit_test(test_round_trip_every_dtype),
		cmocka_unit_test(test_fill_callback_streams_big_tensor),
		cmocka_unit_test(test_failure_leaves_no_file),
		cmocka_unit_test(test_writes_through_a_pipe),
		cmocka_unit_test(test_rejects_bad_tensors),
		cmocka_unit_test(test_refuses_shared_memory),
		cmocka_unit_test(test_rewrites_fixture_losslessly),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
