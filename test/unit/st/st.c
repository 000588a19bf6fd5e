/* Tests for lib/st/st.c: every validation rule of the reference reader,
 * lookups, metadata, and zero-copy views on the fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "st/st.h"

static char dir[] = "/tmp/hf-test-st-XXXXXX";
static char path[512];

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/t.safetensors", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* Write an 8-byte length (hlen_override if not -1, else the header's),
 * the header bytes, then ndata bytes 0, 1, 2, ... */
static void write_raw(const char *hdr, size_t hlen, int64_t hlen_override,
		      size_t ndata)
{
	FILE *f = fopen(path, "wb");
	uint64_t n = hlen_override >= 0 ? (uint64_t)hlen_override : hlen;
	unsigned char b[8];

	assert_non_null(f);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(n >> (8 * i));
	fwrite(b, 1, 8, f);
	fwrite(hdr, 1, hlen, f);
	for (size_t i = 0; i < ndata; i++)
		fputc((int)(i & 0xff), f);
	fclose(f);
}

static void write_file(const char *hdr, size_t ndata)
{
	write_raw(hdr, strlen(hdr), -1, ndata);
}

/* Open path, expect code and a message holding each of the NULL-ended
 * fragments (the culprit: file, tensor, byte offset). */
static void expect_error(int code, ...)
{
	struct hf_err err = { 0 };
	struct hf_st *st = (struct hf_st *)1;
	const char *frag;
	va_list ap;

	assert_int_equal(hf_st_open(&st, path, &err), code);
	assert_null(st);
	va_start(ap, code);
	while ((frag = va_arg(ap, const char *))) {
		if (!strstr(err.msg, frag))
			fail_msg("message '%s' lacks '%s'", err.msg, frag);
	}
	va_end(ap);
	assert_non_null(strstr(err.msg, path));
}

static struct hf_st *expect_ok(void)
{
	struct hf_err err = { 0 };
	struct hf_st *st;

	if (hf_st_open(&st, path, &err))
		fail_msg("open failed: %s", err.msg);
	return st;
}

#define TWO "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," \
	"\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]}}"

static void test_open_reads_names_shapes_and_data(void **state)
{
	struct hf_st *st;
	const struct hf_tensor *a, *b;
	const unsigned char *base;

	write_file(TWO, 11);
	st = expect_ok();
	assert_int_equal(hf_st_count(st), 2);
	a = hf_st_get(st, "a");
	b = hf_st_get(st, "b");
	assert_non_null(a);
	assert_non_null(b);
	assert_null(hf_st_get(st, "c"));
	assert_int_equal(a->dtype, HF_DTYPE_F32);
	assert_int_equal(a->ndim, 1);
	assert_int_equal(a->shape[0], 2);
	assert_int_equal(a->nbytes, 8);
	assert_int_equal(b->dtype, HF_DTYPE_U8);
	assert_int_equal(b->nbytes, 3);
	base = hf_st_base(st);
	assert_ptr_equal(a->data, base + 8 + strlen(TWO));
	assert_ptr_equal(b->data, base + 8 + strlen(TWO) + 8);
	assert_int_equal(((const unsigned char *)b->data)[0], 8);
	assert_int_equal(hf_st_header_len(st), strlen(TWO));
	hf_st_free(st);
}

static void test_iteration_is_in_data_order(void **state)
{
	/* header order z, y; data order y, z */
	const char *h = "{\"z\":{\"dtype\":\"I8\",\"shape\":[1],"
		"\"data_offsets\":[2,3]},\"y\":{\"dtype\":\"I16\",\"shape\":[],"
		"\"data_offsets\":[0,2]}}";
	struct hf_st *st;

	write_file(h, 3);
	st = expect_ok();
	assert_string_equal(hf_st_tensor(st, 0)->name, "y");
	assert_string_equal(hf_st_tensor(st, 1)->name, "z");
	assert_null(hf_st_tensor(st, 2));
	assert_int_equal(hf_st_tensor(st, 0)->ndim, 0);	/* scalar */
	hf_st_free(st);
}

static void test_accepts_padding_empty_tensors_and_metadata(void **state)
{
	const char *h = "{\"__metadata__\":{\"format\":\"pt\",\"b\":\"x\"},"
		"\"e\":{\"dtype\":\"F16\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
		"\"s\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]}}"
		"       ";
	struct hf_st *st;
	const char *k, *v;

	write_file(h, 2);
	st = expect_ok();
	assert_int_equal(hf_st_count(st), 2);
	assert_int_equal(hf_st_get(st, "e")->nbytes, 0);
	assert_null(hf_st_get(st, "e")->data);
	assert_int_equal(hf_st_meta_count(st), 2);
	hf_st_meta(st, 0, &k, &v);
	assert_string_equal(k, "b");
	assert_string_equal(v, "x");
	assert_string_equal(hf_st_meta_get(st, "format"), "pt");
	assert_null(hf_st_meta_get(st, "nope"));
	hf_st_free(st);
}

static void test_accepts_empty_header_object(void **state)
{
	struct hf_st *st;

	write_file("{}      ", 0);	/* the reference's serialize of {} */
	st = expect_ok();
	assert_int_equal(hf_st_count(st), 0);
	hf_st_free(st);
}

/* serde_json skips leading whitespace, and so does the reference. */
static void test_accepts_leading_whitespace(void **state)
{
	struct hf_st *st;

	write_file(" \n\t{}   ", 0);
	st = expect_ok();
	assert_int_equal(hf_st_count(st), 0);
	hf_st_free(st);
}

static void test_rejects_file_shorter_than_8_bytes(void **state)
{
	FILE *f = fopen(path, "wb");

	fwrite("\x02\0\0", 1, 3, f);
	fclose(f);
	expect_error(HF_EFORMAT, "too short", "3 bytes", NULL);
}

static void test_rejects_header_length_past_the_end(void **state)
{
	write_raw(TWO, strlen(TWO), 4096, 11);
	expect_error(HF_EFORMAT, "header length 4096", "past the end", NULL);
}

static void test_rejects_header_over_100mb(void **state)
{
	write_raw(TWO, strlen(TWO), 100000001, 11);
	expect_error(HF_EFORMAT, "100000001", "limit", NULL);
}

static void test_rejects_truncated_file(void **state)
{
	write_file(TWO, 10);
	expect_error(HF_EFORMAT, "'b'", "past the end", NULL);
}

static void test_rejects_trailing_bytes(void **state)
{
	write_file(TWO, 12);
	expect_error(HF_EFORMAT, "1 byte(s) after the end of the last tensor",
		     "'b'", NULL);
}

static void test_rejects_overlapping_offsets(void **state)
{
	write_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		   "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[6,9]}}",
		   9);
	expect_error(HF_EFORMAT, "tensor 'b'", "overlapping 'a'",
		     "ends at byte 8", NULL);
}

static void test_rejects_shared_storage(void **state)
{
	write_file("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		   "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
		   4);
	expect_error(HF_EFORMAT, "overlapping 'a'", NULL);
}

static void test_rejects_hole_between_tensors(void **state)
{
	write_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		   "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[9,12]}}",
		   12);
	expect_error(HF_EFORMAT, "tensor 'b'", "hole after byte 8", NULL);
}

static void test_rejects_hole_at_start(void **state)
{
	write_file("{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[1,4]}}",
		   4);
	expect_error(HF_EFORMAT, "tensor 'a'", "hole after byte 0", NULL);
}

static void test_rejects_end_before_begin(void **state)
{
	write_file("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
		   "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[3,0]}}",
		   3);
	expect_error(HF_EFORMAT, NULL);
}

static void test_rejects_wrong_dtype_size(void **state)
{
	/* F16 [3] needs 6 bytes, offsets give 8 */
	write_file("{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}",
		   8);
	expect_error(HF_EFORMAT, "tensor 'w'", "need 6 bytes", "hold 8",
		     NULL);
}

static void test_rejects_unknown_dtype(void **state)
{
	write_file("{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,2]}}",
		   2);
	expect_error(HF_EFORMAT, "tensor 'w'", "unknown dtype 'F17'", NULL);
}

static void test_rejects_lowercase_dtype(void **state)
{
	write_file("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
		   4);
	expect_error(HF_EFORMAT, "unknown dtype 'f32'", NULL);
}

static void test_rejects_non_object_json(void **state)
{
	write_file("[1, 2, 3]", 0);
	expect_error(HF_EFORMAT, "header is not a JSON object", NULL);
	write_file("\"abc\"", 0);
	expect_error(HF_EFORMAT, "not valid JSON", NULL);
	write_file("", 0);
	expect_error(HF_EFORMAT, "not valid JSON at byte 8", NULL);
	write_file("{\"a\": [1, 2", 0);
	expect_error(HF_EFORMAT, "not valid JSON", NULL);
}

static void test_rejects_invalid_utf8_key(void **state)
{
	/* 0xff at header byte 2: file byte 10 */
	write_file("{\"\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
		   1);
	expect_error(HF_EUTF8, "not valid UTF-8", "byte 10", NULL);
}

static void test_rejects_duplicate_names(void **state)
{
	write_file("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
		   "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
		   2);
	expect_error(HF_EFORMAT, "tensor 'a' appears twice", NULL);
}

static void test_rejects_non_string_metadata(void **state)
{
	write_file("{\"__metadata__\":{\"format\":\"pt\",\"step\":5},"
		   "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
		   1);
	expect_error(HF_EFORMAT, "__metadata__ key 'step'", NULL);
	write_file("{\"__metadata__\":[1],"
		   "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
		   1);
	expect_error(HF_EFORMAT, "__metadata__", NULL);
}

static void test_rejects_bad_shape_and_offsets(void **state)
{
	write_file("{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}",
		   1);
	expect_error(HF_EFORMAT, "tensor 'w'", "shape[0]", NULL);
	write_file("{\"w\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}",
		   1);
	expect_error(HF_EFORMAT, "shape[0]", NULL);
	write_file("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}",
		   1);
	expect_error(HF_EFORMAT, "tensor 'w'", "data_offsets", NULL);
	write_file("{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1);
	expect_error(HF_EFORMAT, "tensor 'w'", "missing key 'data_offsets'",
		     NULL);
	write_file("{\"w\":5}", 0);
	expect_error(HF_EFORMAT, "tensor 'w'", NULL);
}

static void test_rejects_shape_overflow(void **state)
{
	write_file("{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
		   "\"data_offsets\":[0,8]}}", 8);
	expect_error(HF_EFORMAT, "tensor 'w'", "overflows", NULL);
	write_file("{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
		   "\"data_offsets\":[0,8]}}", 8);
	expect_error(HF_EFORMAT, "tensor 'w'", "overflows", NULL);
}

static void test_sub_byte_dtypes_must_fill_bytes(void **state)
{
	struct hf_st *st;

	write_file("{\"q\":{\"dtype\":\"F4\",\"shape\":[2,3],"
		   "\"data_offsets\":[0,3]}}", 3);
	st = expect_ok();
	assert_int_equal(hf_st_get(st, "q")->nbytes, 3);
	hf_st_free(st);
	write_file("{\"q\":{\"dtype\":\"F4\",\"shape\":[3],"
		   "\"data_offsets\":[0,2]}}", 2);
	expect_error(HF_EFORMAT, "tensor 'q'", "whole bytes", NULL);
	write_file("{\"q\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],"
		   "\"data_offsets\":[0,3]}}", 3);
	st = expect_ok();
	hf_st_free(st);
}

static void test_rejects_more_than_8_dims(void **state)
{
	write_file("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
		   "\"data_offsets\":[0,1]}}", 1);
	expect_error(HF_EUNSUPPORTED, "tensor 'w'", "9 dimensions", NULL);
}

static void test_missing_file_is_named(void **state)
{
	struct hf_err err = { 0 };
	struct hf_st *st;

	assert_int_equal(hf_st_open(&st, "/nonexistent/m.safetensors", &err),
			 HF_EIO);
	assert_non_null(strstr(err.msg, "/nonexistent/m.safetensors"));
}

static void test_open_buf_validates_memory(void **state)
{
	static const char bytes[] = "\x10\0\0\0\0\0\0\0{}              ";
	struct hf_err err = { 0 };
	struct hf_st *st;

	assert_int_equal(hf_st_open_buf(&st, bytes, 24, "mem", &err), 0);
	assert_int_equal(hf_st_count(st), 0);
	hf_st_free(st);
	assert_int_equal(hf_st_open_buf(&st, bytes, 23, "mem", &err),
			 HF_EFORMAT);
	assert_non_null(strstr(err.msg, "'mem'"));
	hf_st_free(NULL);
}

/* The largest model.safetensors under $HF_FIXTURES/models. */
static void largest_fixture(char *out, size_t cap)
{
	const char *fx = getenv("HF_FIXTURES");
	char base[512], p[1024];
	off_t best = -1;
	struct dirent *e;
	DIR *d;

	snprintf(base, sizeof(base), "%s/models", fx ? fx : "test/fixtures");
	d = opendir(base);
	assert_non_null(d);
	while ((e = readdir(d))) {
		struct stat s;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/model.safetensors", base,
			 e->d_name);
		if (stat(p, &s) == 0 && s.st_size > best) {
			best = s.st_size;
			snprintf(out, cap, "%s", p);
		}
	}
	closedir(d);
	assert_true(best > 0);
}

static void test_largest_fixture_is_zero_copy(void **state)
{
	struct hf_err err = { 0 };
	struct hf_st *st;
	char fx[1024], *bytes;
	const unsigned char *lo, *hi;
	size_t len, n;

	largest_fixture(fx, sizeof(fx));
	if (hf_st_open(&st, fx, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(hf_file_read(&bytes, &len, fx, &err), 0);
	assert_int_equal(len, hf_st_size(st));
	lo = (const unsigned char *)hf_st_base(st) + 8 + hf_st_header_len(st);
	hi = (const unsigned char *)hf_st_base(st) + hf_st_size(st);
	n = hf_st_count(st);
	assert_true(n > 10);
	for (size_t i = 0; i < n; i++) {
		const struct hf_tensor *t = hf_st_tensor(st, i);
		const unsigned char *p = t->data;

		if (!t->nbytes)
			continue;
		if (p < lo || p + t->nbytes > hi)
			fail_msg("tensor '%s' at %p is outside the mapping "
				 "[%p, %p)", t->name, (void *)p, (void *)lo,
				 (void *)hi);
		/* the view is the file's own bytes at that offset */
		assert_memory_equal(p, bytes + (p - (const unsigned char *)
				    hf_st_base(st)), t->nbytes);
		assert_ptr_equal(hf_st_get(st, t->name), t);
	}
	free(bytes);
	hf_st_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_reads_names_shapes_and_data),
		cmocka_unit_test(test_iteration_is_in_data_order),
		cmocka_unit_test(test_accepts_padding_empty_tensors_and_metadata),
		cmocka_unit_test(test_accepts_empty_header_object),
		cmocka_unit_test(test_accepts_leading_whitespace),
		cmocka_unit_test(test_rejects_file_shorter_than_8_bytes),
		cmocka_unit_test(test_rejects_header_length_past_the_end),
		cmocka_unit_test(test_rejects_header_over_100mb),
		cmocka_unit_test(test_rejects_truncated_file),
		cmocka_unit_test(test_rejects_trailing_bytes),
		cmocka_unit_test(test_rejects_overlapping_offsets),
		cmocka_unit_test(test_rejects_shared_storage),
		cmocka_unit_test(test_rejects_hole_between_tensors),
		cmocka_unit_test(test_rejects_hole_at_start),
		cmocka_unit_test(test_rejects_end_before_begin),
		cmocka_unit_test(test_rejects_wrong_dtype_size),
		cmocka_unit_test(test_rejects_unknown_dtype),
		cmocka_unit_test(test_rejects_lowercase_dtype),
		cmocka_unit_test(test_rejects_non_object_json),
		cmocka_unit_test(test_rejects_invalid_utf8_key),
		cmocka_unit_test(test_rejects_duplicate_names),
		cmocka_unit_test(test_rejects_non_string_metadata),
		cmocka_unit_test(test_rejects_bad_shape_and_offsets),
		cmocka_unit_test(test_rejects_shape_overflow),
		cmocka_unit_test(test_sub_byte_dtypes_must_fill_bytes),
		cmocka_unit_test(test_rejects_more_than_8_dims),
		cmocka_unit_test(test_missing_file_is_named),
		cmocka_unit_test(test_open_buf_validates_memory),
		cmocka_unit_test(test_largest_fixture_is_zero_copy),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
