/* Tests for lib/export/gguf_read.c: every value type, nested arrays,
 * tensor infos and data, the typed lookups, and each malformed-file rule
 * on hand-built files (an error names the file and the culprit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/gguf_read.h"

/* ---- a GGUF builder ---- */

static unsigned char buf[1 << 16];
static size_t len;

static void put(uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		buf[len++] = (unsigned char)(v >> (8 * i));
}

static void put_str(const char *s)
{
	put(strlen(s), 8);
	memcpy(buf + len, s, strlen(s));
	len += strlen(s);
}

static void header(uint32_t version, uint64_t nt, uint64_t nkv)
{
	len = 0;
	put(0x46554747u, 4);
	put(version, 4);
	put(nt, 8);
	put(nkv, 8);
}

static void kv_u32(const char *k, uint32_t v)
{
	put_str(k);
	put(4, 4);
	put(v, 4);
}

static void kv_str(const char *k, const char *v)
{
	put_str(k);
	put(8, 4);
	put_str(v);
}

static void tinfo(const char *name, int nd, const uint64_t *ne, int type,
		  uint64_t off)
{
	put_str(name);
	put((uint64_t)nd, 4);
	for (int i = 0; i < nd; i++)
		put(ne[i], 8);
	put((uint64_t)type, 4);
	put(off, 8);
}

static void pad(size_t align)
{
	while (len % align)
		buf[len++] = 0;
}

static struct hf_gguf *open_ok(void)
{
	struct hf_err err = { 0 };
	struct hf_gguf *g;

	if (hf_gguf_open_buf(&g, buf, len, "t.gguf", &err))
		fail_msg("open failed: %s", err.msg);
	return g;
}

/* Open buf[0..n), expect HF_EFORMAT and a message naming the file and
 * holding each NULL-ended fragment. */
static void expect_error_n(size_t n, ...)
{
	struct hf_err err = { 0 };
	struct hf_gguf *g = (struct hf_gguf *)1;
	const char *frag;
	va_list ap;

	assert_int_equal(hf_gguf_open_buf(&g, buf, n, "t.gguf", &err),
			 HF_EFORMAT);
	assert_null(g);
	if (!strstr(err.msg, "'t.gguf'"))
		fail_msg("message '%s' does not name the file", err.msg);
	va_start(ap, n);
	while ((frag = va_arg(ap, const char *)))
		if (!strstr(err.msg, frag))
			fail_msg("message '%s' lacks '%s'", err.msg, frag);
	va_end(ap);
}

#define expect_error(...) expect_error_n(len, __VA_ARGS__, NULL)

/* A small valid file: two pairs, tensors a (f32 [3, 2]) and b (q8_0
 * [32]) with data 0, 1, 2, ... */
static size_t data_at;

static void valid_file(uint32_t version)
{
	static const uint64_t ne_a[2] = { 3, 2 }, ne_b[1] = { 32 };

	header(version, 2, 2);
	kv_str("general.architecture", "llama");
	kv_u32("llama.block_count", 2);
	tinfo("a", 2, ne_a, 0, 0);
	tinfo("b", 1, ne_b, 8, 32);
	pad(32);
	data_at = len;
	for (int i = 0; i < 32 + 34; i++)
		buf[len++] = (unsigned char)i;
	pad(32);
}

static void test_open_reads_pairs_and_tensors(void **state)
{
	for (uint32_t v = 2; v <= 3; v++) {
		struct hf_gguf *g;
		const struct hf_gguf_tensor *a, *b;
		const char *s;
		size_t n;
		uint64_t u;

		valid_file(v);
		g = open_ok();
		assert_int_equal(hf_gguf_version(g), v);
		assert_int_equal(hf_gguf_alignment(g), 32);
		assert_int_equal(hf_gguf_data_offset(g), data_at);
		assert_int_equal(hf_gguf_kv_count(g), 2);
		assert_string_equal(hf_gguf_kv(g, 0)->key,
				    "general.architecture");
		assert_int_equal(hf_gguf_get_str(g, "general.architecture",
						 &s, &n, NULL), 0);
		assert_int_equal(n, 5);
		assert_memory_equal(s, "llama", 5);
		assert_int_equal(hf_gguf_get_uint(g, "llama.block_count", 9,
						  &u, NULL), 0);
		assert_int_equal(u, 2);
		assert_int_equal(hf_gguf_get_uint(g, "absent", 9, &u, NULL),
				 0);
		assert_int_equal(u, 9);
		assert_int_equal(hf_gguf_tensor_count(g), 2);
		a = hf_gguf_find_tensor(g, "a");
		b = hf_gguf_find_tensor(g, "b");
		assert_ptr_equal(a, hf_gguf_tensor(g, 0));
		assert_ptr_equal(b, hf_gguf_tensor(g, 1));
		assert_null(hf_gguf_find_tensor(g, "c"));
		assert_int_equal(a->n_dims, 2);
		assert_int_equal(a->ne[0], 3);
		assert_int_equal(a->ne[1], 2);
		assert_int_equal(a->ne[2], 1);
		assert_int_equal(a->nbytes, 24);
		assert_ptr_equal(a->data, buf + data_at);
		assert_int_equal(b->type, 8);
		assert_int_equal(b->nbytes, 34);
		assert_ptr_equal(b->data, buf + data_at + 32);
		assert_int_equal(*(const unsigned char *)b->data, 32);
		hf_gguf_free(g);
	}
}

static void test_open_reads_every_value_type(void **state)
{
	struct hf_gguf *g;
	const struct hf_gguf_value *v;
	int64_t i;
	double f;
	int b;

	header(3, 0, 16);
	put_str("u8"); put(0, 4); put(200, 1);
	put_str("i8"); put(1, 4); put(0xfe, 1);
	put_str("u16"); put(2, 4); put(60000, 2);
	put_str("i16"); put(3, 4); put(0xfffd, 2);
	put_str("u32"); put(4, 4); put(4000000000u, 4);
	put_str("i32"); put(5, 4); put(0xfffffffcu, 4);
	put_str("f32"); put(6, 4); put(0x3fc00000u, 4);	/* 1.5 */
	put_str("bool"); put(7, 4); put(1, 1);
	put_str("str"); put(8, 4); put_str("h\xc3\xa9");
	put_str("u64"); put(10, 4); put(UINT64_MAX, 8);
	put_str("i64"); put(11, 4); put((uint64_t)-5, 8);
	put_str("f64"); put(12, 4); put(0xc004000000000000ull, 8); /* -2.5 */
	put_str("arr_i32"); put(9, 4); put(5, 4); put(3, 8);
	put(1, 4); put((uint32_t)-2, 4); put(3, 4);
	put_str("arr_str"); put(9, 4); put(8, 4); put(2, 8);
	put_str("a b"); put_str("");
	/* [[1.0], [2.0, 3.0]] as arrays of f32 */
	put_str("arr_arr"); put(9, 4); put(9, 4); put(2, 8);
	put(6, 4); put(1, 8); put(0x3f800000u, 4);
	put(6, 4); put(2, 8); put(0x40000000u, 4); put(0x40400000u, 4);
	put_str("arr_empty"); put(9, 4); put(8, 4); put(0, 8);
	g = open_ok();
	assert_int_equal(hf_gguf_kv_count(g), 16);
#define GET(k) hf_gguf_get(g, k)
	assert_int_equal(GET("u8")->u, 200);
	assert_int_equal(GET("i8")->i, -2);
	assert_int_equal(GET("u16")->u, 60000);
	assert_int_equal(GET("i16")->i, -3);
	assert_int_equal(GET("u32")->u, 4000000000u);
	assert_int_equal(GET("i32")->i, -4);
	assert_true(GET("f32")->f == 1.5);
	assert_int_equal(GET("bool")->u, 1);
	assert_int_equal(GET("str")->len, 3);
	assert_memory_equal(GET("str")->str, "h\xc3\xa9", 3);
	assert_true(GET("u64")->u == UINT64_MAX);
	assert_int_equal(GET("i64")->i, -5);
	assert_true(GET("f64")->f == -2.5);
	v = GET("arr_i32");
	assert_int_equal(v->type, HF_GGUF_ARRAY);
	assert_int_equal(v->elem, HF_GGUF_I32);
	assert_int_equal(v->n, 3);
	assert_int_equal(hf_gguf_arr_int(v, 1), -2);
	assert_true(hf_gguf_arr_float(v, 2) == 3.0);
	v = GET("arr_str");
	assert_int_equal(v->elem, HF_GGUF_STRING);
	assert_int_equal(v->n, 2);
	assert_int_equal(v->items[0].len, 3);
	assert_memory_equal(v->items[0].str, "a b", 3);
	assert_int_equal(v->items[1].len, 0);
	v = GET("arr_arr");
	assert_int_equal(v->elem, HF_GGUF_ARRAY);
	assert_int_equal(v->items[1].elem, HF_GGUF_F32);
	assert_int_equal(v->items[1].n, 2);
	assert_true(hf_gguf_arr_float(&v->items[1], 1) == 3.0);
	assert_true(hf_gguf_arr_float(&v->items[0], 0) == 1.0);
	assert_int_equal(GET("arr_empty")->n, 0);
	/* typed lookups convert what fits and name what does not */
	assert_int_equal(hf_gguf_get_int(g, "u16", 0, &i, NULL), 0);
	assert_int_equal(i, 60000);
	assert_int_equal(hf_gguf_get_float(g, "i8", 0, &f, NULL), 0);
	assert_true(f == -2.0);
	assert_int_equal(hf_gguf_get_bool(g, "bool", 0, &b, NULL), 0);
	assert_int_equal(b, 1);
	{
		struct hf_err err = { 0 };
		uint64_t u;
		const char *s;
		size_t n;

		assert_int_equal(hf_gguf_get_uint(g, "i8", 0, &u, &err),
				 HF_EFORMAT);
		assert_non_null(strstr(err.msg, "'i8'"));
		assert_int_equal(hf_gguf_get_int(g, "u64", 0, &i, &err),
				 HF_EFORMAT);
		assert_int_equal(hf_gguf_get_str(g, "u8", &s, &n, &err),
				 HF_EFORMAT);
		assert_non_null(strstr(err.msg, "'t.gguf'"));
		assert_non_null(strstr(err.msg, "u8"));
		assert_int_equal(hf_gguf_get_bool(g, "str", 0, &b, &err),
				 HF_EFORMAT);
		assert_int_equal(hf_gguf_get_float(g, "arr_i32", 0, &f, &err),
				 HF_EFORMAT);
	}
#undef GET
	hf_gguf_free(g);
}

static void test_custom_alignment_places_data(void **state)
{
	static const uint64_t ne[1] = { 4 };
	struct hf_gguf *g;

	header(3, 2, 1);
	kv_u32("general.alignment", 64);
	tinfo("x", 1, ne, 0, 0);
	tinfo("y", 1, ne, 0, 64);
	pad(64);
	size_t at = len;

	memset(buf + len, 7, 128);
	len += 80;	/* y needs 16 bytes at 64: the file may end there */
	g = open_ok();
	assert_int_equal(hf_gguf_alignment(g), 64);
	assert_int_equal(hf_gguf_data_offset(g), at);
	assert_ptr_equal(hf_gguf_find_tensor(g, "y")->data, buf + at + 64);
	hf_gguf_free(g);
}

static void test_every_truncation_is_refused(void **state)
{
	valid_file(3);
	size_t full = len;

	/* the last tensor ends at data_at + 66: any shorter prefix fails */
	for (size_t n = 0; n < data_at + 66; n++)
		expect_error_n(n, NULL);
	expect_error_n(3, "too short", NULL);
	expect_error_n(10, "truncated", NULL);
	expect_error_n(data_at + 65, "'b'", "past the end", NULL);
	len = full;
	hf_gguf_free(open_ok());
}

static void test_rejects_bad_magic_and_versions(void **state)
{
	valid_file(3);
	buf[0] = 'L';
	expect_error("not a GGUF file", "'LGUF'");
	valid_file(1);
	expect_error("version 1");
	valid_file(4);
	expect_error("version 4", "want 2 or 3");
	valid_file(0x03000000u);	/* 3, written big-endian */
	expect_error("big-endian");
}

static void test_rejects_unknown_value_types(void **state)
{
	header(3, 0, 1);
	put_str("k"); put(13, 4); put(0, 8);
	expect_error("key 'k'", "unknown value type 13");
	header(3, 0, 1);
	put_str("k"); put(9, 4); put(99, 4); put(1, 8); put(0, 8);
	expect_error("key 'k'", "unknown element type 99");
}

static void test_rejects_lengths_and_counts_beyond_the_file(void **state)
{
	header(3, 0, 1);
	put_str("k"); put(8, 4); put(1000, 8); put_str("short");
	expect_error("key 'k'", "1000 bytes long", "past the end");
	header(3, 0, 1);
	put(1ull << 62, 8);	/* the key's own length */
	put(0, 8);
	put(0, 8);
	expect_error("key 0", "past the end");
	/* an array of 2^60 u32: refused before any allocation */
	header(3, 0, 1);
	put_str("k"); put(9, 4); put(4, 4); put(1ull << 60, 8); put(0, 8);
	expect_error("key 'k'", "1152921504606846976 u32 elements");
	header(3, 0, 1);
	put_str("k"); put(9, 4); put(8, 4); put(UINT64_MAX, 8); put(0, 8);
	expect_error("key 'k'", "string elements");
	header(3, 0, 1);
	put_str("k"); put(9, 4); put(9, 4); put(1ull << 40, 8); put(0, 8);
	expect_error("key 'k'", "array elements");
	header(3, 0, UINT64_MAX);
	expect_error("metadata pairs claimed");
	header(3, 1ull << 50, 0);
	put(0, 8);
	expect_error("tensors claimed");
}

static void test_rejects_nesting_too_deep(void **state)
{
	header(3, 0, 1);
	put_str("k"); put(9, 4);
	for (int d = 0; d < HF_GGUF_MAX_DEPTH + 1; d++) {
		put(9, 4);
		put(1, 8);
	}
	put(4, 4); put(0, 8);
	expect_error("key 'k'", "nested");
}

static void test_rejects_bad_keys(void **state)
{
	header(3, 0, 2);
	kv_u32("a", 1);
	kv_u32("a", 2);
	expect_error("key 'a' appears twice");
	header(3, 0, 1);
	kv_u32("", 1);
	expect_error("key 0", "empty");
	header(3, 0, 1);
	put(3, 8); buf[len++] = 'a'; buf[len++] = 0; buf[len++] = 'b';
	put(4, 4); put(1, 4);
	expect_error("NUL");
}

static void test_rejects_bad_alignment(void **state)
{
	header(3, 0, 1);
	kv_u32("general.alignment", 24);
	expect_error("general.alignment 24", "power of 2");
	header(3, 0, 1);
	kv_u32("general.alignment", 0);
	expect_error("general.alignment 0");
	header(3, 0, 1);
	kv_str("general.alignment", "32");
	expect_error("general.alignment", "string", "want u32");
}

static void one_tensor(const char *name, int nd, const uint64_t *ne,
		       int type, uint64_t off, size_t ndata)
{
	header(3, 1, 0);
	tinfo(name, nd, ne, type, off);
	pad(32);
	memset(buf + len, 0, ndata);
	len += ndata;
}

static void test_rejects_bad_tensor_infos(void **state)
{
	static const uint64_t five[5] = { 1, 1, 1, 1, 1 };
	static const uint64_t neg[2] = { 4, 1ull << 63 };
	static const uint64_t big[4] = { 1ull << 32, 1ull << 32, 1, 1 };
	static const uint64_t bytes[2] = { 1ull << 31, 1ull << 31 };
	static const uint64_t q[2] = { 48, 2 };
	static const uint64_t ne[1] = { 8 };
	char longname[80];

	one_tensor("t", 5, five, 0, 0, 32);
	expect_error("tensor 't'", "5 dimensions");
	one_tensor("t", 2, neg, 0, 0, 32);
	expect_error("tensor 't'", "dimension 1", "negative");
	one_tensor("t", 4, big, 0, 0, 32);
	expect_error("tensor 't'", "element count overflows");
	one_tensor("t", 2, bytes, 28, 0, 32);	/* f64: 2^62 * 8 bytes */
	expect_error("tensor 't'", "size in bytes overflows");
	one_tensor("t", 2, q, 8, 0, 128);
	expect_error("tensor 't'", "q8_0", "48 elements", "block of 32");
	one_tensor("t", 1, ne, 4, 0, 32);	/* q4_2: removed from ggml */
	expect_error("tensor 't'", "unknown ggml type 4");
	one_tensor("t", 1, ne, 1000, 0, 32);
	expect_error("tensor 't'", "unknown ggml type 1000");
	one_tensor("t", 1, ne, 0, 16, 64);
	expect_error("tensor 't'", "offset 16", "alignment 32");
	one_tensor("t", 1, ne, 0, 32, 48);
	expect_error("tensor 't'", "past the end");
	one_tensor("t", 1, ne, 0, 1ull << 63, 48);
	expect_error("tensor 't'", "past the end");
	memset(longname, 'n', 64);
	longname[64] = 0;
	one_tensor(longname, 1, ne, 0, 0, 32);
	expect_error("tensor name 0", "64 bytes long");
	one_tensor("", 1, ne, 0, 0, 32);
	expect_error("tensor name 0", "empty");
}

static void test_rejects_duplicate_and_overlapping_tensors(void **state)
{
	static const uint64_t ne[1] = { 16 };	/* 64 bytes of f32 */

	header(3, 2, 0);
	tinfo("x", 1, ne, 0, 0);
	tinfo("x", 1, ne, 0, 64);
	pad(32);
	len += 128;
	expect_error("tensor 'x' appears twice");
	header(3, 2, 0);
	tinfo("x", 1, ne, 0, 0);
	tinfo("y", 1, ne, 0, 32);
	pad(32);
	len += 128;
	expect_error("overlaps", "'x'");
	/* empty tensors may share an offset with anything */
	static const uint64_t zero[2] = { 16, 0 };

	header(3, 3, 0);
	tinfo("x", 1, ne, 0, 0);
	tinfo("e", 2, zero, 0, 0);
	tinfo("y", 1, ne, 0, 64);
	pad(32);
	memset(buf + len, 0, 128);
	len += 128;
	struct hf_gguf *g = open_ok();

	assert_null(hf_gguf_find_tensor(g, "e")->data);
	assert_int_equal(hf_gguf_find_tensor(g, "e")->nbytes, 0);
	hf_gguf_free(g);
}

static void test_open_names_missing_file(void **state)
{
	struct hf_err err = { 0 };
	struct hf_gguf *g = (struct hf_gguf *)1;

	assert_int_not_equal(hf_gguf_open(&g, "/nonexistent/x.gguf", &err),
			     0);
	assert_null(g);
	assert_non_null(strstr(err.msg, "/nonexistent/x.gguf"));
	hf_gguf_free(NULL);
}

static void test_open_maps_a_file(void **state)
{
	char path[] = "/tmp/hf-test-gguf-XXXXXX";
	int fd = mkstemp(path);
	struct hf_err err = { 0 };
	struct hf_gguf *g;
	FILE *f;

	assert_true(fd >= 0);
	valid_file(3);
	f = fdopen(fd, "wb");
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	if (hf_gguf_open(&g, path, &err))
		fail_msg("%s", err.msg);
	assert_string_equal(hf_gguf_path(g), path);
	assert_int_equal(((const unsigned char *)
			  hf_gguf_find_tensor(g, "a")->data)[5], 5);
	hf_gguf_free(g);
	remove(path);
}

static void test_ggml_type_table(void **state)
{
	int64_t e;
	size_t b;

	assert_string_equal(hf_gguf_ggml_type_name(12), "q4_K");
	assert_int_equal(hf_gguf_ggml_block(12, &e, &b), 0);
	assert_int_equal(e, 256);
	assert_int_equal(b, 144);
	assert_int_equal(hf_gguf_ggml_block(14, &e, &b), 0);
	assert_int_equal(b, 210);
	assert_int_equal(hf_gguf_ggml_block(30, &e, &b), 0);
	assert_int_equal(b, 2);
	assert_int_not_equal(hf_gguf_ggml_block(5, &e, &b), 0);
	assert_int_not_equal(hf_gguf_ggml_block(-1, &e, &b), 0);
	assert_null(hf_gguf_ggml_type_name(33));
	assert_string_equal(hf_gguf_type_name(HF_GGUF_ARRAY), "array");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_reads_pairs_and_tensors),
		cmocka_unit_test(test_open_reads_every_value_type),
		cmocka_unit_test(test_custom_alignment_places_data),
		cmocka_unit_test(test_every_truncation_is_refused),
		cmocka_unit_test(test_rejects_bad_magic_and_versions),
		cmocka_unit_test(test_rejects_unknown_value_types),
		cmocka_unit_test(test_rejects_lengths_and_counts_beyond_the_file),
		cmocka_unit_test(test_rejects_nesting_too_deep),
		cmocka_unit_test(test_rejects_bad_keys),
		cmocka_unit_test(test_rejects_bad_alignment),
		cmocka_unit_test(test_rejects_bad_tensor_infos),
		cmocka_unit_test(test_rejects_duplicate_and_overlapping_tensors),
		cmocka_unit_test(test_open_names_missing_file),
		cmocka_unit_test(test_open_maps_a_file),
		cmocka_unit_test(test_ggml_type_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
