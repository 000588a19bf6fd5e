/* Tests for lib/export/gguf.c (the writer, read back by a minimal parser
 * of this file's own, not lib's reader), lib/export/families.c (every
 * tensor of every model fixture maps to a GGUF name and back) and the
 * tokenizer part of gguf_tok.c (the pre-tokenizer name the converter
 * picks for the tokenizer fixtures). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "export/export.h"
#include "export/families.h"
#include "export/ggml_types.h"
#include "export/gguf.h"
#include "st/st.h"

/* ---- a minimal GGUF parser ---- */

struct rd {
	const unsigned char *p;
	size_t n, off;
};

static uint64_t rd_le(struct rd *r, int bytes)
{
	uint64_t v = 0;

	assert_true(r->off + (size_t)bytes <= r->n);
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[r->off + i] << (8 * i);
	r->off += (size_t)bytes;
	return v;
}

/* A string: *s points into the buffer, *len its bytes. */
static void rd_str(struct rd *r, const char **s, size_t *len)
{
	*len = (size_t)rd_le(r, 8);
	assert_true(r->off + *len <= r->n);
	*s = (const char *)r->p + r->off;
	r->off += *len;
}

static int str_is(const char *s, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(s, want, len);
}

struct kvv {
	char key[96];
	uint32_t type, elem;
	uint64_t u, n;		/* scalar bits; array count */
	size_t at;		/* offset of the value (after the type) */
};

struct parsed {
	unsigned char *data;
	size_t size;
	uint32_t version;
	uint64_t nt, nkv;
	struct kvv kv[64];
	struct {
		char name[64];
		uint32_t nd, type;
		uint64_t ne[4], off;
	} t[32];
	size_t data_start;
};

static size_t scalar_size(uint32_t t)
{
	static const size_t s[] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

	return t < 13 ? s[t] : 0;
}

static void skip_value(struct rd *r, uint32_t t)
{
	if (t == 8) {
		const char *s;
		size_t l;

		rd_str(r, &s, &l);
	} else if (t == 9) {
		uint32_t e = (uint32_t)rd_le(r, 4);
		uint64_t n = rd_le(r, 8);

		for (uint64_t i = 0; i < n; i++)
			skip_value(r, e);
	} else {
		assert_true(scalar_size(t) > 0);
		r->off += scalar_size(t);
	}
}

static void parse(struct parsed *g, const char *path)
{
	struct rd r;
	char *buf;
	size_t len;

	memset(g, 0, sizeof(*g));
	assert_int_equal(hf_file_read(&buf, &len, path, NULL), 0);
	g->data = (unsigned char *)buf;
	g->size = len;
	r.p = g->data;
	r.n = len;
	r.off = 0;
	assert_int_equal(rd_le(&r, 4), 0x46554747u);
	g->version = (uint32_t)rd_le(&r, 4);
	g->nt = rd_le(&r, 8);
	g->nkv = rd_le(&r, 8);
	assert_true(g->nkv <= 64 && g->nt <= 32);
	for (uint64_t i = 0; i < g->nkv; i++) {
		const char *k;
		size_t kl;

		rd_str(&r, &k, &kl);
		assert_true(kl < sizeof(g->kv[i].key));
		memcpy(g->kv[i].key, k, kl);
		g->kv[i].type = (uint32_t)rd_le(&r, 4);
		g->kv[i].at = r.off;
		if (g->kv[i].type == 9) {
			g->kv[i].elem = (uint32_t)rd_le(&r, 4);
			g->kv[i].n = rd_le(&r, 8);
			r.off = g->kv[i].at;
		} else if (g->kv[i].type != 8) {
			size_t s = scalar_size(g->kv[i].type);

			g->kv[i].u = rd_le(&r, (int)s);
			r.off = g->kv[i].at;
		}
		skip_value(&r, g->kv[i].type);
	}
	for (uint64_t i = 0; i < g->nt; i++) {
		const char *s;
		size_t l;

		rd_str(&r, &s, &l);
		memcpy(g->t[i].name, s, l);
		g->t[i].nd = (uint32_t)rd_le(&r, 4);
		for (uint32_t d = 0; d < g->t[i].nd; d++)
			g->t[i].ne[d] = rd_le(&r, 8);
		g->t[i].type = (uint32_t)rd_le(&r, 4);
		g->t[i].off = rd_le(&r, 8);
	}
	g->data_start = (r.off + 31) / 32 * 32;
	for (size_t i = r.off; i < g->data_start; i++)
		assert_int_equal(g->data[i], 0);
}

static const struct kvv *find(const struct parsed *g, const char *key)
{
	for (uint64_t i = 0; i < g->nkv; i++)
		if (!strcmp(g->kv[i].key, key))
			return &g->kv[i];
	return NULL;
}

/* The string value of key (a STRING kv). */
static void get_str(const struct parsed *g, const char *key, const char **s,
		    size_t *len)
{
	const struct kvv *k = find(g, key);
	struct rd r = { g->data, g->size, 0 };

	assert_non_null(k);
	assert_int_equal(k->type, 8);
	r.off = k->at;
	rd_str(&r, s, len);
}

/* ---- the writer ---- */

static char tmpdir[64];

static void path_in(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hf-test-gguf-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) ? -1 : 0;
}

struct src {
	const void *p;
	size_t n;
	size_t piece;	/* write in pieces this big */
};

static int fill(void *ctx, struct hf_gguf_sink *s, struct hf_err *err)
{
	const struct src *x = ctx;

	for (size_t o = 0; o < x->n; o += x->piece) {
		size_t k = x->n - o < x->piece ? x->n - o : x->piece;

		if (hf_gguf_sink_write(s, (const char *)x->p + o, k, err))
			return err->code;
	}
	return 0;
}

static void test_writes_every_value_type(void **state)
{
	struct hf_gguf_writer *w;
	struct hf_err err = { 0 };
	struct parsed g;
	char path[128];
	const char *s;
	size_t len;
	static const char *const strs[] = { "a", "", "hello world" };
	int32_t ints[3] = { -1, 0, 7 };
	float fl[2] = { 1.5f, -2.0f };
	uint8_t bools[3] = { 1, 0, 5 };

	(void)state;
	path_in(path, sizeof(path), "kv.gguf");
	assert_int_equal(hf_gguf_writer_new(&w, &err), 0);
	assert_int_equal(hf_gguf_set_u8(w, "u8", 200, &err), 0);
	assert_int_equal(hf_gguf_set_i8(w, "i8", -5, &err), 0);
	assert_int_equal(hf_gguf_set_u16(w, "u16", 60000, &err), 0);
	assert_int_equal(hf_gguf_set_i16(w, "i16", -30000, &err), 0);
	assert_int_equal(hf_gguf_set_u32(w, "u32", 4000000000u, &err), 0);
	assert_int_equal(hf_gguf_set_i32(w, "i32", -2000000000, &err), 0);
	assert_int_equal(hf_gguf_set_f32(w, "f32", 0.25f, &err), 0);
	assert_int_equal(hf_gguf_set_bool(w, "bool", 3, &err), 0);
	assert_int_equal(hf_gguf_set_str(w, "str", "x\0y", 3, &err), 0);
	assert_int_equal(hf_gguf_set_u64(w, "u64", UINT64_MAX - 1, &err), 0);
	assert_int_equal(hf_gguf_set_i64(w, "i64", INT64_MIN + 3, &err), 0);
	assert_int_equal(hf_gguf_set_f64(w, "f64", -0.125, &err), 0);
	assert_int_equal(hf_gguf_set_arr(w, "ai32", HF_GGUF_I32, ints, 3,
					 &err), 0);
	assert_int_equal(hf_gguf_set_arr(w, "af32", HF_GGUF_F32, fl, 2, &err),
			 0);
	assert_int_equal(hf_gguf_set_arr(w, "abool", HF_GGUF_BOOL, bools, 3,
					 &err), 0);
	assert_int_equal(hf_gguf_set_arr_str(w, "astr", strs, NULL, 3, &err),
			 0);
	/* replaced in place: the key keeps its position */
	assert_int_equal(hf_gguf_set_u8(w, "i8", 9, &err), 0);
	assert_int_not_equal(hf_gguf_set_arr(w, "bad", HF_GGUF_STRING, ints, 1,
					     &err), 0);
	assert_int_not_equal(hf_gguf_set_u8(w, "", 1, &err), 0);
	assert_int_equal(hf_gguf_write(w, path, &err), 0);
	parse(&g, path);
	assert_int_equal(g.version, 3);
	assert_int_equal(g.nt, 0);
	assert_int_equal(g.nkv, 17);
	assert_string_equal(g.kv[0].key, "general.alignment");
	assert_int_equal(g.kv[0].type, HF_GGUF_U32);
	assert_int_equal(g.kv[0].u, 32);
	assert_string_equal(g.kv[2].key, "i8");
	assert_int_equal(g.kv[2].type, HF_GGUF_U8);
	assert_int_equal(g.kv[2].u, 9);
	assert_int_equal(find(&g, "u8")->u, 200);
	assert_int_equal(find(&g, "u16")->u, 60000);
	assert_int_equal(find(&g, "i16")->u, (uint16_t)-30000);
	assert_int_equal(find(&g, "u32")->u, 4000000000u);
	assert_int_equal(find(&g, "i32")->type, HF_GGUF_I32);
	assert_int_equal(find(&g, "i32")->u, (uint32_t)-2000000000);
	assert_int_equal(find(&g, "f32")->u, 0x3e800000u);
	assert_int_equal(find(&g, "bool")->type, HF_GGUF_BOOL);
	assert_int_equal(find(&g, "bool")->u, 1);
	assert_int_equal(find(&g, "u64")->u, UINT64_MAX - 1);
	assert_int_equal(find(&g, "i64")->u, (uint64_t)(INT64_MIN + 3));
	{
		double d;
		uint64_t u = find(&g, "f64")->u;

		memcpy(&d, &u, 8);
		assert_true(d == -0.125);
	}
	get_str(&g, "str", &s, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "x\0y", 3);
	{
		const struct kvv *k = find(&g, "ai32");
		struct rd r = { g.data, g.size, k->at + 12 };

		assert_int_equal(k->elem, HF_GGUF_I32);
		assert_int_equal(k->n, 3);
		assert_int_equal((int32_t)rd_le(&r, 4), -1);
		assert_int_equal((int32_t)rd_le(&r, 4), 0);
		assert_int_equal((int32_t)rd_le(&r, 4), 7);
		k = find(&g, "abool");
		r.off = k->at + 12;
		assert_int_equal(rd_le(&r, 1), 1);
		assert_int_equal(rd_le(&r, 1), 0);
		assert_int_equal(rd_le(&r, 1), 1);	/* nonzero -> 1 */
		k = find(&g, "af32");
		r.off = k->at + 12;
		assert_int_equal(rd_le(&r, 4), 0x3fc00000u);
		assert_int_equal(rd_le(&r, 4), 0xc0000000u);
		k = find(&g, "astr");
		assert_int_equal(k->elem, HF_GGUF_STRING);
		assert_int_equal(k->n, 3);
		r.off = k->at + 12;
		for (int i = 0; i < 3; i++) {
			rd_str(&r, &s, &len);
			assert_true(str_is(s, len, strs[i]));
		}
	}
	assert_int_equal(g.size, g.data_start);
	assert_int_equal(hf_gguf_writer_size(w), g.size);
	free(g.data);
	hf_gguf_writer_free(w);
}

static void test_tensors_aligned_and_streamed(void **state)
{
	struct hf_gguf_writer *w;
	struct hf_err err = { 0 };
	struct parsed g;
	char path[128];
	float a[3] = { 1, 2, 3 };		/* 12 bytes: padded to 32 */
	float b[64];
	unsigned char q[2 * 34];
	int64_t ne_a[1] = { 3 }, ne_b[2] = { 32, 2 }, ne_c[3] = { 4, 2, 2 };
	uint16_t c[16];
	struct src sa = { a, sizeof(a), 5 }, sb = { q, sizeof(q), 7 };
	struct src sc = { c, sizeof(c), 32 };

	(void)state;
	for (int i = 0; i < 64; i++)
		b[i] = (float)(i - 20) / 8.0f;
	for (int i = 0; i < 16; i++)
		c[i] = (uint16_t)(0x3c00 + i);
	hf_ggml_traits(HF_GGML_Q8_0)->quantize(b, q, 64);
	path_in(path, sizeof(path), "t.gguf");
	assert_int_equal(hf_gguf_writer_new(&w, &err), 0);
	assert_int_equal(hf_gguf_set_str(w, "general.architecture", "llama", 5,
					 &err), 0);
	assert_int_equal(hf_gguf_add_tensor(w, "a", 1, ne_a, HF_GGML_F32, fill,
					    &sa, &err), 0);
	assert_int_equal(hf_gguf_add_tensor(w, "blk.0.b.weight", 2, ne_b,
					    HF_GGML_Q8_0, fill, &sb, &err), 0);
	assert_int_equal(hf_gguf_add_tensor(w, "c", 3, ne_c, HF_GGML_F16, fill,
					    &sc, &err), 0);
	assert_int_equal(hf_gguf_writer_tensor_count(w), 3);
	assert_int_equal(hf_gguf_write(w, path, &err), 0);
	parse(&g, path);
	assert_int_equal(g.nt, 3);
	assert_int_equal(g.data_start % 32, 0);
	assert_string_equal(g.t[0].name, "a");
	assert_int_equal(g.t[0].nd, 1);
	assert_int_equal(g.t[0].ne[0], 3);
	assert_int_equal(g.t[0].type, HF_GGML_F32);
	assert_int_equal(g.t[0].off, 0);
	assert_string_equal(g.t[1].name, "blk.0.b.weight");
	assert_int_equal(g.t[1].ne[1], 2);
	assert_int_equal(g.t[1].type, HF_GGML_Q8_0);
	assert_int_equal(g.t[1].off, 32);
	assert_int_equal(g.t[2].off, 32 + 96);	/* 68 bytes padded to 96 */
	assert_int_equal(g.t[2].nd, 3);
	assert_int_equal(g.t[2].ne[2], 2);
	assert_memory_equal(g.data + g.data_start, a, sizeof(a));
	for (size_t i = sizeof(a); i < 32; i++)
		assert_int_equal(g.data[g.data_start + i], 0);
	assert_memory_equal(g.data + g.data_start + 32, q, sizeof(q));
	assert_memory_equal(g.data + g.data_start + 128, c, sizeof(c));
	assert_int_equal(g.size, g.data_start + 128 + 32);
	assert_int_equal(hf_gguf_writer_size(w), g.size);
	free(g.data);
	hf_gguf_writer_free(w);
}

static void test_rejects_bad_tensors(void **state)
{
	struct hf_gguf_writer *w;
	struct hf_err err = { 0 };
	int64_t ne[2] = { 48, 2 }, ok[1] = { 4 }, zero[1] = { 0 };
	char name[80];

	(void)state;
	memset(name, 'x', 64);
	name[64] = 0;
	assert_int_equal(hf_gguf_writer_new(&w, &err), 0);
	/* 48 is not a whole number of q4_K blocks of 256 */
	assert_int_equal(hf_gguf_add_tensor(w, "t", 2, ne, HF_GGML_Q4_K, fill,
					    NULL, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "'t'"));
	assert_int_equal(hf_gguf_add_tensor(w, name, 1, ok, HF_GGML_F32, fill,
					    NULL, &err), HF_EINVAL);
	assert_int_equal(hf_gguf_add_tensor(w, "z", 1, zero, HF_GGML_F32, fill,
					    NULL, &err), HF_EINVAL);
	assert_int_equal(hf_gguf_add_tensor(w, "d", 5, ok, HF_GGML_F32, fill,
					    NULL, &err), HF_EINVAL);
	assert_int_equal(hf_gguf_add_tensor(w, "u", 1, ok, 99, fill, NULL,
					    &err), HF_EINVAL);
	assert_int_equal(hf_gguf_add_tensor(w, "once", 1, ok, HF_GGML_F32, fill,
					    NULL, &err), 0);
	assert_int_equal(hf_gguf_add_tensor(w, "once", 1, ok, HF_GGML_F32, fill,
					    NULL, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "twice"));
	hf_gguf_writer_free(w);
}

/* A fill that writes too little fails the write, and no file is left,
 * neither the output nor its temporary. */
static void test_short_fill_leaves_no_file(void **state)
{
	struct hf_gguf_writer *w;
	struct hf_err err = { 0 };
	char path[128], cmd[256];
	float a[8] = { 0 };
	int64_t ne[1] = { 8 };
	struct src s = { a, sizeof(a) - 4, 4 };

	(void)state;
	path_in(path, sizeof(path), "short.gguf");
	assert_int_equal(hf_gguf_writer_new(&w, &err), 0);
	assert_int_equal(hf_gguf_add_tensor(w, "a", 1, ne, HF_GGML_F32, fill,
					    &s, &err), 0);
	assert_int_not_equal(hf_gguf_write(w, path, &err), 0);
	assert_non_null(strstr(err.msg, "28 of its 32 bytes"));
	assert_false(hf_file_exists(path));
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q short", tmpdir);
	assert_int_not_equal(system(cmd), 0);
	/* and too much */
	s.n = sizeof(a);
	s.piece = 36;
	{
		float big[9] = { 0 };
		struct src t = { big, sizeof(big), 36 };
		struct hf_gguf_writer *w2;

		assert_int_equal(hf_gguf_writer_new(&w2, &err), 0);
		assert_int_equal(hf_gguf_add_tensor(w2, "a", 1, ne, HF_GGML_F32,
						    fill, &t, &err), 0);
		assert_int_not_equal(hf_gguf_write(w2, path, &err), 0);
		assert_false(hf_file_exists(path));
		hf_gguf_writer_free(w2);
	}
	hf_gguf_writer_free(w);
}

/* ---- the family tables ---- */

static const char *fixtures(void)
{
	const char *f = getenv("HF_FIXTURES");

	return f ? f : "test/fixtures";
}

/* Every tensor of the model in dir maps to a GGUF name or is one the
 * converter drops, and the GGUF name maps back to the HF name (the
 * canonical prefix aside). */
static void check_model(const char *dir)
{
	struct hf_st_model *m;
	struct hf_err err = { 0 };
	char *cfgp = hf_path_join(dir, "config.json");
	json_t *cfg = json_load_file(cfgp, 0, NULL);
	const struct hf_family *f;
	size_t mapped = 0;

	assert_non_null(cfg);
	f = hf_family_find(json_string_value(json_object_get(cfg,
							     "model_type")));
	if (!f)
		fail_msg("%s: no family for '%s'", dir,
			 json_string_value(json_object_get(cfg, "model_type")));
	if (hf_st_open_dir(&m, dir, &err))
		fail_msg("%s: %s", dir, err.msg);
	for (size_t i = 0; i < hf_st_model_count(m); i++) {
		const char *name = hf_st_model_tensor(m, i)->name;
		struct hf_fam_match a, b;
		int k = hf_family_map_hf(f, name, &a);
		const char *tail;

		if (k == HF_FAM_SKIPPED)
			continue;
		if (k != HF_FAM_MAPPED)
			fail_msg("%s: '%s' has no GGUF name", dir, name);
		mapped++;
		assert_true(strlen(a.gguf) <= 63);
		assert_int_equal(hf_family_map_gguf(f, a.gguf, a.expert, &b),
				 HF_FAM_MAPPED);
		assert_string_equal(b.gguf, a.gguf);
		assert_string_equal(b.hf, a.hf);
		assert_ptr_equal(b.rule, a.rule);
		/* the canonical name is the original, or it with the
		 * family's first prefix put in front */
		tail = a.hf + strlen(a.hf) - strlen(name);
		if (strcmp(a.hf, name) &&
		    (strlen(a.hf) < strlen(name) || strcmp(tail, name) ||
		     !f->prefixes ||
		     (size_t)(tail - a.hf) != strlen(f->prefixes[0]) ||
		     strncmp(a.hf, f->prefixes[0], strlen(f->prefixes[0]))))
			fail_msg("%s: '%s' comes back as '%s'", dir, name, a.hf);
	}
	assert_true(mapped > 4);
	hf_st_model_free(m);
	json_decref(cfg);
	free(cfgp);
}

static void test_every_fixture_tensor_maps_both_ways(void **state)
{
	static const char *const models[] = {
		"llama-tiny", "llama-tiny-untied", "mistral-tiny",
		"mixtral-tiny", "qwen2-tiny", "qwen3-tiny", "gemma-tiny",
		"phi3-tiny", "gpt2-tiny", "bert-tiny", "roberta-tiny",
		"distilbert-tiny",
	};
	char dir[512];

	(void)state;
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/models/%s", fixtures(),
			 models[i]);
		check_model(dir);
	}
	if (getenv("HF_MODELS")) {
		snprintf(dir, sizeof(dir), "%s/stories260k", getenv("HF_MODELS"));
		check_model(dir);
	}
}

static void test_names_match_the_converter(void **state)
{
	const struct hf_family *f = hf_family_find("llama");
	const struct hf_family *g = hf_family_find("gpt2");
	const struct hf_family *x = hf_family_find("mixtral");
	struct hf_fam_match m;

	(void)state;
	assert_non_null(f);
	assert_string_equal(f->arch, "llama");
	assert_string_equal(x->arch, "llama");
	assert_string_equal(hf_family_find("distilbert")->arch, "bert");
	assert_null(hf_family_find("falcon"));
	assert_null(hf_family_find(NULL));
	assert_non_null(strstr(hf_family_list(), "qwen3"));
	assert_int_equal(hf_family_map_hf(f, "model.layers.12.self_attn.q_proj."
					  "weight", &m), HF_FAM_MAPPED);
	assert_string_equal(m.gguf, "blk.12.attn_q.weight");
	assert_true(m.rule->flags & HF_FAM_PERMUTE_Q);
	assert_int_equal(m.layer, 12);
	assert_int_equal(hf_family_map_hf(f, "model.layers.1.self_attn.k_proj."
					  "bias", &m), HF_FAM_MAPPED);
	assert_string_equal(m.gguf, "blk.1.attn_k.bias");
	assert_true(m.rule->flags & HF_FAM_PERMUTE_K);
	assert_int_equal(hf_family_map_hf(f, "model.layers.01.mlp.up_proj."
					  "weight", &m), HF_FAM_UNKNOWN);
	assert_int_equal(hf_family_map_hf(f, "model.layers.0.mlp.up_proj."
					  "scales", &m), HF_FAM_UNKNOWN);
	assert_int_equal(hf_family_map_hf(x, "model.layers.1.block_sparse_moe."
					  "experts.3.w2.weight", &m),
			 HF_FAM_MAPPED);
	assert_string_equal(m.gguf, "blk.1.ffn_down_exps.weight");
	assert_int_equal(m.expert, 3);
	assert_int_equal(hf_family_map_gguf(x, "blk.1.ffn_up_exps.weight", 2,
					    &m), HF_FAM_MAPPED);
	assert_string_equal(m.hf, "model.layers.1.block_sparse_moe.experts.2."
			    "w3.weight");
	assert_int_equal(hf_family_map_hf(g, "h.0.attn.bias", &m),
			 HF_FAM_SKIPPED);
	assert_int_equal(hf_family_map_hf(g, "transformer.h.0.attn.c_attn.bias",
					  &m), HF_FAM_MAPPED);
	assert_string_equal(m.gguf, "blk.0.attn_qkv.bias");
	assert_int_equal(hf_family_map_hf(g, "lm_head.weight", &m),
			 HF_FAM_MAPPED);
	assert_string_equal(m.hf, "lm_head.weight");
	assert_int_equal(hf_family_map_gguf(g, "blk.3.ffn_down.weight", -1, &m),
			 HF_FAM_MAPPED);
	assert_string_equal(m.hf, "transformer.h.3.mlp.c_proj.weight");
	assert_true(m.rule->flags & HF_FAM_TRANSPOSE);
	assert_int_equal(hf_family_map_gguf(g, "blk.3.nothing.weight", -1, &m),
			 HF_FAM_UNKNOWN);
}

/* ---- the tokenizer ---- */

static void test_pre_tokenizer_names(void **state)
{
	static const struct { const char *dir, *family, *model, *pre; } t[] = {
		{ "gpt2", "gpt2", "gpt2", "gpt-2" },
		{ "llama3_1", "llama", "gpt2", "llama-bpe" },
		{ "qwen3", "qwen3", "gpt2", "qwen2" },
		{ "deepseek_v3", "llama", "gpt2", "deepseek-v3" },
		{ "bert-base-uncased", "bert", "bert", "jina-v2-en" },
	};
	char dir[512], path[128];

	(void)state;
	assert_string_equal(hf_gguf_pre_name("0ef9807a4087ebef797fc749390439009"
					     "c3b9eda9ad1a097abbe738f486c01e5"),
			    "llama-bpe");
	assert_null(hf_gguf_pre_name("00"));
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct hf_gguf_writer *w;
		struct hf_err err = { 0 };
		struct parsed g;
		const char *s;
		size_t len;

		snprintf(dir, sizeof(dir), "%s/tokenizers/%s", fixtures(),
			 t[i].dir);
		path_in(path, sizeof(path), "tok.gguf");
		assert_int_equal(hf_gguf_writer_new(&w, &err), 0);
		if (hf_gguf_add_tokenizer(w, dir, hf_family_find(t[i].family),
					  NULL, 0, &err))
			fail_msg("%s: %s", dir, err.msg);
		assert_int_equal(hf_gguf_write(w, path, &err), 0);
		hf_gguf_writer_free(w);
		parse(&g, path);
		get_str(&g, "tokenizer.ggml.model", &s, &len);
		if (!str_is(s, len, t[i].model))
			fail_msg("%s: model '%.*s', want '%s'", t[i].dir,
				 (int)len, s, t[i].model);
		get_str(&g, "tokenizer.ggml.pre", &s, &len);
		if (!str_is(s, len, t[i].pre))
			fail_msg("%s: pre '%.*s', want '%s'", t[i].dir,
				 (int)len, s, t[i].pre);
		assert_non_null(find(&g, "tokenizer.ggml.tokens"));
		assert_non_null(find(&g, "tokenizer.ggml.token_type"));
		if (!strcmp(t[i].model, "gpt2"))
			assert_true(find(&g, "tokenizer.ggml.merges")->n > 1000);
		free(g.data);
	}
}

/* stories260k's SentencePiece model: llama, 512 pieces with scores, the
 * special ids and add flags of its tokenizer_config.json. */
static void test_sentencepiece_vocab(void **state)
{
	struct hf_gguf_writer *w;
	struct hf_err err = { 0 };
	struct parsed g;
	char dir[512], path[128];
	const char *s;
	size_t len;
	const struct kvv *k;
	struct rd r;

	(void)state;
	if (!getenv("HF_MODELS"))
		skip();
	snprintf(dir, sizeof(dir), "%s/stories260k", getenv("HF_MODELS"));
	path_in(path, sizeof(path), "spm.gguf");
	assert_int_equal(hf_gguf_writer_new(&w, &err), 0);
	if (hf_gguf_add_tokenizer(w, dir, hf_family_find("llama"), NULL, 512,
				  &err))
		fail_msg("%s", err.msg);
	assert_int_equal(hf_gguf_write(w, path, &err), 0);
	hf_gguf_writer_free(w);
	parse(&g, path);
	get_str(&g, "tokenizer.ggml.model", &s, &len);
	assert_true(str_is(s, len, "llama"));
	get_str(&g, "tokenizer.ggml.pre", &s, &len);
	assert_true(str_is(s, len, "default"));
	k = find(&g, "tokenizer.ggml.tokens");
	assert_int_equal(k->n, 512);
	r.p = g.data;
	r.n = g.size;
	r.off = k->at + 12;
	rd_str(&r, &s, &len);
	assert_true(str_is(s, len, "<unk>"));
	assert_int_equal(find(&g, "tokenizer.ggml.scores")->n, 512);
	k = find(&g, "tokenizer.ggml.token_type");
	r.off = k->at + 12;
	/* <unk> is UNKNOWN in the SentencePiece model, but
	 * tokenizer_config.json's added_tokens_decoder marks it special,
	 * and the converter then makes it CONTROL */
	assert_int_equal(rd_le(&r, 4), 3);
	assert_int_equal(rd_le(&r, 4), 3);	/* <s>: control */
	assert_int_equal(rd_le(&r, 4), 3);
	assert_int_equal(rd_le(&r, 4), 6);	/* <0x00>: byte */
	assert_int_equal(find(&g, "tokenizer.ggml.bos_token_id")->u, 1);
	assert_int_equal(find(&g, "tokenizer.ggml.eos_token_id")->u, 2);
	assert_int_equal(find(&g, "tokenizer.ggml.unknown_token_id")->u, 0);
	assert_int_equal(find(&g, "tokenizer.ggml.add_bos_token")->u, 1);
	assert_int_equal(find(&g, "tokenizer.ggml.add_eos_token")->u, 0);
	assert_null(find(&g, "tokenizer.ggml.merges"));
	free(g.data);
}

/* No tokenizer files: "none", and nothing else of the tokenizer. */
static void test_no_tokenizer_is_none(void **state)
{
	struct hf_gguf_writer *w;
	struct hf_err err = { 0 };
	struct parsed g;
	char dir[512], path[128];
	const char *s;
	size_t len;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/models/llama-tiny", fixtures());
	path_in(path, sizeof(path), "none.gguf");
	assert_int_equal(hf_gguf_writer_new(&w, &err), 0);
	assert_int_equal(hf_gguf_add_tokenizer(w, dir, hf_family_find("llama"),
					       NULL, 512, &err), 0);
	assert_int_equal(hf_gguf_write(w, path, &err), 0);
	hf_gguf_writer_free(w);
	parse(&g, path);
	assert_int_equal(g.nkv, 2);
	get_str(&g, "tokenizer.ggml.model", &s, &len);
	assert_true(str_is(s, len, "none"));
	free(g.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writes_every_value_type),
		cmocka_unit_test(test_tensors_aligned_and_streamed),
		cmocka_unit_test(test_rejects_bad_tensors),
		cmocka_unit_test(test_short_fill_leaves_no_file),
		cmocka_unit_test(test_every_fixture_tensor_maps_both_ways),
		cmocka_unit_test(test_names_match_the_converter),
		cmocka_unit_test(test_pre_tokenizer_names),
		cmocka_unit_test(test_sentencepiece_vocab),
		cmocka_unit_test(test_no_tokenizer_is_none),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
