/* Tests for lib/export/onnx_pb.c: wire bytes against protobuf's
 * documented encodings, and whole models read back by a minimal protobuf
 * decoder written here from the wire format alone (it shares no code
 * with the writer), inline and with external data. */
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

#include "core/file.h"
#include "export/onnx_pb.h"

static char dir[] = "/tmp/hf-test-onnxpb-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* ---- the independent decoder ---- */

/* One field of a message: number, wire type, and its value: v for
 * varints and fixed32, or the bytes [p, p + n) of a length-delimited. */
struct fld {
	unsigned num, wire;
	uint64_t v;
	const uint8_t *p;
	size_t n;
};

struct msg {
	const uint8_t *p;
	size_t n;
};

static uint64_t rd_varint(const uint8_t **p, const uint8_t *end)
{
	uint64_t v = 0;
	int shift = 0;

	for (;;) {
		assert_true(*p < end);
		assert_true(shift < 64);
		uint8_t c = *(*p)++;

		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
		shift += 7;
	}
}

/* The next field of m at *pos; 0 at the end. */
static int next(struct msg m, size_t *pos, struct fld *f)
{
	const uint8_t *p = m.p + *pos, *end = m.p + m.n;
	uint64_t key;

	if (p >= end)
		return 0;
	key = rd_varint(&p, end);
	f->num = (unsigned)(key >> 3);
	f->wire = (unsigned)(key & 7);
	f->p = NULL;
	f->n = 0;
	switch (f->wire) {
	case 0:
		f->v = rd_varint(&p, end);
		break;
	case 2:
		f->n = (size_t)rd_varint(&p, end);
		assert_true(f->n <= (size_t)(end - p));
		f->p = p;
		p += f->n;
		break;
	case 5:
		assert_true(end - p >= 4);
		f->v = p[0] | p[1] << 8 | p[2] << 16 | (uint64_t)p[3] << 24;
		p += 4;
		break;
	default:
		fail_msg("unexpected wire type %u", f->wire);
	}
	*pos = (size_t)(p - m.p);
	return 1;
}

/* The k-th occurrence of field num (wire type wire); 0 if absent. */
static int get(struct msg m, unsigned num, unsigned wire, int k,
	       struct fld *out)
{
	size_t pos = 0;
	struct fld f = { 0 };

	while (next(m, &pos, &f))
		if (f.num == num) {
			assert_int_equal(f.wire, wire);
			if (k-- == 0) {
				*out = f;
				return 1;
			}
		}
	return 0;
}

static int count(struct msg m, unsigned num)
{
	size_t pos = 0;
	struct fld f = { 0 };
	int n = 0;

	while (next(m, &pos, &f))
		n += f.num == num;
	return n;
}

static struct msg sub(struct msg m, unsigned num, int k)
{
	struct fld f = { 0 };

	assert_true(get(m, num, 2, k, &f));
	return (struct msg){ f.p, f.n };
}

static int64_t ival(struct msg m, unsigned num)
{
	struct fld f = { 0 };

	assert_true(get(m, num, 0, 0, &f));
	return (int64_t)f.v;
}

static void assert_str(struct msg m, unsigned num, int k, const char *want)
{
	struct fld f = { 0 };

	assert_true(get(m, num, 2, k, &f));
	assert_int_equal(f.n, strlen(want));
	assert_memory_equal(f.p, want, f.n);
}

/* A packed repeated varint field into v (cap), returning the count. */
static size_t packed(struct msg m, unsigned num, int64_t *v, size_t cap)
{
	struct fld f = { 0 };
	size_t n = 0;
	const uint8_t *p, *end;

	if (!get(m, num, 2, 0, &f))
		return 0;
	p = f.p;
	end = f.p + f.n;
	while (p < end) {
		assert_true(n < cap);
		v[n++] = (int64_t)rd_varint(&p, end);
	}
	return n;
}

/* ---- wire bytes ---- */

static void test_varints_are_protobufs_encoding(void **state)
{
	struct hf_pb b = { 0 };
	static const uint8_t want[] = {
		0x08, 0x96, 0x01,	/* field 1 = 150 (the docs' example) */
		0x10, 0xac, 0x02,	/* field 2 = 300 */
		0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x01,			/* field 3 = -1: ten bytes */
		0x22, 0x03, 'a', 'b', 'c',	/* field 4 = "abc" */
		0x2d, 0x00, 0x00, 0x80, 0x3f,	/* field 5 = 1.0f */
	};

	(void)state;
	hf_pb_int(&b, 1, 150);
	hf_pb_int(&b, 2, 300);
	hf_pb_int(&b, 3, -1);
	hf_pb_str(&b, 4, "abc");
	hf_pb_float(&b, 5, 1.0f);
	assert_false(b.oom);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.p, want, sizeof(want));
	assert_int_equal(hf_pb_varint_len(127), 1);
	assert_int_equal(hf_pb_varint_len(128), 2);
	assert_int_equal(hf_pb_varint_len(UINT64_MAX), 10);
	hf_pb_free(&b);
}

static void test_packed_ints_and_submessages(void **state)
{
	struct hf_pb b = { 0 }, s = { 0 };
	static const int64_t v[] = { 3, 270, 86942 };
	/* the protobuf docs' packed example: 22 06 03 8E 02 9E A7 05 */
	static const uint8_t want[] = { 0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e,
					0xa7, 0x05, 0x3a, 0x03, 0x08, 0x96,
					0x01 };

	(void)state;
	hf_pb_packed_int(&b, 4, v, 3);
	hf_pb_int(&s, 1, 150);
	hf_pb_msg(&b, 7, &s);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.p, want, sizeof(want));
	hf_pb_free(&b);
	hf_pb_free(&s);
}

/* ---- whole models ---- */

static char *read_all(const char *path, size_t *len)
{
	char *buf;
	struct hf_err err = { 0 };

	assert_int_equal(hf_file_read(&buf, len, path, &err), 0);
	return buf;
}

/* A model with two inputs (one symbolic dim each), a MatMul against a
 * 2x3 initializer, a Constant with a tensor attribute, a contrib node
 * with int and float attributes, and a big initializer (4 KiB). */
static struct hf_onnx *sample(void)
{
	struct hf_onnx *o;
	struct hf_err err = { 0 };
	static const float w[6] = { 1, 2, 3, 4, 5, 6 };
	static const int64_t wd[2] = { 2, 3 }, cd[1] = { 2 }, bd[1] = { 1024 };
	static const int64_t cv[2] = { 7, -8 }, perm[3] = { 0, 2, 1 };
	float *big = malloc(1024 * sizeof(float));
	struct hf_onnx_dim xd[3] = { { 0, "batch_size" },
				     { 0, "sequence_length" }, { 2, NULL } };
	struct hf_onnx_tensor ct = { HF_ONNX_INT64, 1, cd, cv };
	struct hf_onnx_attr ca = { .name = "value",
				   .type = HF_ONNX_ATTR_TENSOR, .t = &ct };
	struct hf_onnx_attr qa[3] = {
		{ .name = "K", .type = HF_ONNX_ATTR_INT, .i = 2 },
		{ .name = "alpha", .type = HF_ONNX_ATTR_FLOAT, .f = 0.5f },
		{ .name = "perm", .type = HF_ONNX_ATTR_INTS, .ints = perm,
		  .n = 3 },
	};
	const char *mm_in[2] = { "x", "w" }, *mm_out[1] = { "y" };
	const char *c_out[1] = { "c" }, *q_in[3] = { "y", "", "c" };
	const char *q_out[1] = { "z" };

	assert_non_null(big);
	for (int i = 0; i < 1024; i++)
		big[i] = (float)i;
	assert_int_equal(hf_onnx_new(&o, "g", &err), 0);
	assert_int_equal(hf_onnx_opset(o, "", 17), 0);
	assert_int_equal(hf_onnx_opset(o, "com.microsoft", 1), 0);
	assert_int_equal(hf_onnx_meta(o, "k", "v"), 0);
	assert_int_equal(hf_onnx_input(o, "x", HF_ONNX_FLOAT, 3, xd), 0);
	assert_int_equal(hf_onnx_output(o, "z", HF_ONNX_FLOAT, 3, xd), 0);
	assert_int_equal(hf_onnx_init(o, "w", HF_ONNX_FLOAT, 2, wd, w,
				      sizeof(w)), 0);
	assert_int_equal(hf_onnx_init_own(o, "big", HF_ONNX_FLOAT, 1, bd, big,
					  1024 * sizeof(float)), 0);
	assert_int_equal(hf_onnx_node(o, "MatMul", NULL, NULL, mm_in, 2,
				      mm_out, 1, NULL, 0), 0);
	assert_int_equal(hf_onnx_node(o, "Constant", NULL, "const0", NULL, 0,
				      c_out, 1, &ca, 1), 0);
	assert_int_equal(hf_onnx_node(o, "Q", "com.microsoft", NULL, q_in, 3,
				      q_out, 1, qa, 3), 0);
	assert_int_equal(hf_onnx_node_count(o), 3);
	assert_int_equal(hf_onnx_init_bytes(o), sizeof(w) + 4096);
	return o;
}

static void check_common(struct msg model)
{
	struct msg g, n, a, t, vi, dim;
	int64_t v[8];
	struct fld f = { 0 };

	assert_int_equal(ival(model, 1), 8);		/* ir_version */
	assert_str(model, 2, 0, "hf");
	assert_int_equal(count(model, 8), 2);		/* opset_import */
	assert_str(sub(model, 8, 0), 1, 0, "");
	assert_int_equal(ival(sub(model, 8, 0), 2), 17);
	assert_str(sub(model, 8, 1), 1, 0, "com.microsoft");
	assert_str(sub(model, 14, 0), 1, 0, "k");
	assert_str(sub(model, 14, 0), 2, 0, "v");
	g = sub(model, 7, 0);
	assert_str(g, 2, 0, "g");
	assert_int_equal(count(g, 1), 3);
	n = sub(g, 1, 0);
	assert_str(n, 4, 0, "MatMul");
	assert_str(n, 1, 0, "x");
	assert_str(n, 1, 1, "w");
	assert_str(n, 2, 0, "y");
	assert_str(n, 3, 0, "n0");
	assert_int_equal(count(n, 7), 0);		/* default domain */
	n = sub(g, 1, 1);
	assert_str(n, 3, 0, "const0");
	a = sub(n, 5, 0);
	assert_str(a, 1, 0, "value");
	assert_int_equal(ival(a, 20), 4);		/* TENSOR */
	t = sub(a, 5, 0);
	assert_int_equal(packed(t, 1, v, 8), 1);
	assert_int_equal(v[0], 2);
	assert_int_equal(ival(t, 2), 7);		/* INT64 */
	assert_true(get(t, 9, 2, 0, &f));
	assert_int_equal(f.n, 16);
	{
		int64_t c[2];

		memcpy(c, f.p, 16);
		assert_int_equal(c[0], 7);
		assert_int_equal(c[1], -8);
	}
	n = sub(g, 1, 2);
	assert_str(n, 4, 0, "Q");
	assert_str(n, 7, 0, "com.microsoft");
	assert_str(n, 1, 1, "");			/* omitted input */
	assert_int_equal(count(n, 5), 3);
	a = sub(n, 5, 0);
	assert_str(a, 1, 0, "K");
	assert_int_equal(ival(a, 3), 2);
	assert_int_equal(ival(a, 20), 2);
	a = sub(n, 5, 1);
	assert_true(get(a, 2, 5, 0, &f));
	{
		uint32_t u = (uint32_t)f.v;
		float x;

		memcpy(&x, &u, 4);
		assert_true(x == 0.5f);
	}
	a = sub(n, 5, 2);
	assert_int_equal(ival(a, 20), 7);
	assert_int_equal(packed(a, 8, v, 8), 3);
	assert_int_equal(v[1], 2);
	/* input x: [batch_size, sequence_length, 2] FLOAT */
	vi = sub(g, 11, 0);
	assert_str(vi, 1, 0, "x");
	t = sub(sub(vi, 2, 0), 1, 0);			/* tensor_type */
	assert_int_equal(ival(t, 1), 1);
	assert_int_equal(count(sub(t, 2, 0), 1), 3);
	dim = sub(sub(t, 2, 0), 1, 0);
	assert_str(dim, 2, 0, "batch_size");
	dim = sub(sub(t, 2, 0), 1, 2);
	assert_int_equal(ival(dim, 1), 2);
	assert_int_equal(count(dim, 2), 0);
	assert_str(sub(g, 12, 0), 1, 0, "z");
	/* initializer w: dims [2, 3], FLOAT, raw data inline */
	t = sub(g, 5, 0);
	assert_str(t, 8, 0, "w");
	assert_int_equal(packed(t, 1, v, 8), 2);
	assert_int_equal(v[0], 2);
	assert_int_equal(v[1], 3);
	assert_int_equal(ival(t, 2), 1);
	assert_true(get(t, 9, 2, 0, &f));
	assert_int_equal(f.n, 24);
	{
		float w[6];

		memcpy(w, f.p, 24);
		assert_true(w[0] == 1.0f && w[5] == 6.0f);
	}
}

static void test_model_reads_back(void **state)
{
	struct hf_onnx *o = sample();
	struct hf_err err = { 0 };
	char *path = hf_path_join(dir, "inline.onnx"), *dpath, *buf;
	size_t len;
	struct msg model, t;
	struct fld f = { 0 };

	(void)state;
	assert_int_equal(hf_onnx_write(o, path, 8, 0, &err), 0);
	hf_onnx_free(o);
	buf = read_all(path, &len);
	model = (struct msg){ (const uint8_t *)buf, len };
	check_common(model);
	t = sub(sub(model, 7, 0), 5, 1);
	assert_str(t, 8, 0, "big");
	assert_true(get(t, 9, 2, 0, &f));
	assert_int_equal(f.n, 4096);
	{
		float x;

		memcpy(&x, f.p + 4 * 1000, 4);
		assert_true(x == 1000.0f);
	}
	assert_int_equal(count(t, 13), 0);
	dpath = hf_path_join(dir, "inline.onnx_data");
	assert_false(hf_file_exists(dpath));
	free(buf);
	free(dpath);
	free(path);
}

static void test_external_data_entries(void **state)
{
	struct hf_onnx *o = sample();
	struct hf_err err = { 0 };
	char *path = hf_path_join(dir, "ext.onnx"), *buf, *data;
	char *dpath = hf_path_join(dir, "ext.onnx_data");
	size_t len, dlen;
	struct msg model, t, e;
	struct fld f = { 0 };
	long off = -1, n = -1;

	(void)state;
	assert_int_equal(hf_onnx_write(o, path, 8, 1, &err), 0);
	hf_onnx_free(o);
	buf = read_all(path, &len);
	model = (struct msg){ (const uint8_t *)buf, len };
	check_common(model);			/* small w stays inline */
	t = sub(sub(model, 7, 0), 5, 1);
	assert_str(t, 8, 0, "big");
	assert_false(get(t, 9, 2, 0, &f));		/* no raw_data */
	assert_int_equal(ival(t, 14), 1);		/* EXTERNAL */
	assert_int_equal(count(t, 13), 3);
	for (int k = 0; k < 3; k++) {
		char key[16] = { 0 }, val[32] = { 0 };

		e = sub(t, 13, k);
		assert_true(get(e, 1, 2, 0, &f));
		memcpy(key, f.p, f.n < 15 ? f.n : 15);
		assert_true(get(e, 2, 2, 0, &f));
		memcpy(val, f.p, f.n < 31 ? f.n : 31);
		if (!strcmp(key, "location"))
			assert_string_equal(val, "ext.onnx_data");
		else if (!strcmp(key, "offset"))
			off = atol(val);
		else if (!strcmp(key, "length"))
			n = atol(val);
		else
			fail_msg("unexpected external_data key '%s'", key);
	}
	assert_int_equal(off % 4096, 0);
	assert_int_equal(n, 4096);
	data = read_all(dpath, &dlen);
	assert_true((size_t)(off + n) <= dlen);
	{
		float x;

		memcpy(&x, data + off + 4 * 777, 4);
		assert_true(x == 777.0f);
	}
	free(data);
	free(buf);
	free(dpath);
	free(path);
}

static void test_bad_initializer_is_reported_at_write(void **state)
{
	struct hf_onnx *o;
	struct hf_err err = { 0 };
	static const int64_t d[1] = { 3 };
	float x[2] = { 0 };
	char *path = hf_path_join(dir, "bad.onnx");

	(void)state;
	assert_int_equal(hf_onnx_new(&o, "g", &err), 0);
	assert_int_equal(hf_onnx_init(o, "w", HF_ONNX_FLOAT, 1, d, x,
				      sizeof(x)), -1);
	assert_int_not_equal(hf_onnx_write(o, path, 8, 0, &err), 0);
	assert_non_null(strstr(err.msg, "does not match its shape"));
	assert_non_null(strstr(err.msg, "bad.onnx"));
	assert_false(hf_file_exists(path));
	hf_onnx_free(o);
	free(path);
}

static void test_unwritable_path_leaves_nothing(void **state)
{
	struct hf_onnx *o = sample();
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_onnx_write(o, "/nonexistent-dir/m.onnx", 8, 1,
				       &err), HF_EIO);
	assert_non_null(strstr(err.msg, "/nonexistent-dir/m.onnx"));
	hf_onnx_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varints_are_protobufs_encoding),
		cmocka_unit_test(test_packed_ints_and_submessages),
		cmocka_unit_test(test_model_reads_back),
		cmocka_unit_test(test_external_data_entries),
		cmocka_unit_test(test_bad_initializer_is_reported_at_write),
		cmocka_unit_test(test_unwritable_path_leaves_nothing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
