/* lib/export/gguf_read.c: parse and validate a GGUF file in place. The
 * checks follow ggml's own reader (ggml/src/gguf.cpp gguf_init_from_file)
 * and go further where it trusts the file: nested arrays, overlapping
 * tensor data and offsets beyond the end are refused too. */
#include "export/gguf_read.h"

#include <stdlib.h>
#include <string.h>

#include "core/file.h"

struct hf_gguf {
	char *path;
	struct hf_map map;	/* zeroed when opened over a buffer */
	const unsigned char *base;
	size_t size;
	uint32_t version;
	size_t alignment;
	size_t data_off;
	size_t nkv;
	struct hf_gguf_kv *kv;
	size_t *kv_sorted;	/* indices of kv by key */
	size_t nt;
	struct hf_gguf_tensor *t;
	size_t *t_sorted;	/* indices of t by name */
	/* every items array of every value, to free them in one place */
	struct hf_gguf_value **blocks;
	size_t nblocks, capblocks;
};

/* ggml's type_traits: elements and bytes a block; 0 where ggml has
 * removed or never defined the code (ggml/src/ggml.c, ggml-common.h). */
static const struct {
	const char *name;
	int64_t blck;
	size_t bytes;
} ggml_blocks[] = {
	[0] = { "f32", 1, 4 },		[1] = { "f16", 1, 2 },
	[2] = { "q4_0", 32, 18 },	[3] = { "q4_1", 32, 20 },
	[6] = { "q5_0", 32, 22 },	[7] = { "q5_1", 32, 24 },
	[8] = { "q8_0", 32, 34 },	[9] = { "q8_1", 32, 36 },
	[10] = { "q2_K", 256, 84 },	[11] = { "q3_K", 256, 110 },
	[12] = { "q4_K", 256, 144 },	[13] = { "q5_K", 256, 176 },
	[14] = { "q6_K", 256, 210 },	[15] = { "q8_K", 256, 292 },
	[16] = { "iq2_xxs", 256, 66 },	[17] = { "iq2_xs", 256, 74 },
	[18] = { "iq3_xxs", 256, 98 },	[19] = { "iq1_s", 256, 50 },
	[20] = { "iq4_nl", 32, 18 },	[21] = { "iq3_s", 256, 110 },
	[22] = { "iq2_s", 256, 82 },	[23] = { "iq4_xs", 256, 136 },
	[24] = { "i8", 1, 1 },		[25] = { "i16", 1, 2 },
	[26] = { "i32", 1, 4 },		[27] = { "i64", 1, 8 },
	[28] = { "f64", 1, 8 },		[29] = { "iq1_m", 256, 56 },
	[30] = { "bf16", 1, 2 },	[34] = { "tq1_0", 256, 54 },
	[35] = { "tq2_0", 256, 66 },	[39] = { "mxfp4", 32, 17 },
	[40] = { "nvfp4", 64, 36 },	[41] = { "q1_0", 128, 18 },
	[42] = { "q2_0", 64, 18 },
};

#define NGGML (int)(sizeof(ggml_blocks) / sizeof(ggml_blocks[0]))

const char *hf_gguf_ggml_type_name(int type)
{
	if (type < 0 || type >= NGGML)
		return NULL;
	return ggml_blocks[type].name;
}

int hf_gguf_ggml_block(int type, int64_t *elems, size_t *bytes)
{
	if (type < 0 || type >= NGGML || !ggml_blocks[type].name) {
		*elems = 0;
		*bytes = 0;
		return -1;
	}
	*elems = ggml_blocks[type].blck;
	*bytes = ggml_blocks[type].bytes;
	return 0;
}

static const char *const type_names[HF_GGUF_NTYPES] = {
	"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string",
	"array", "u64", "i64", "f64",
};

/* Bytes of one scalar of a numeric type; 0 for STRING, ARRAY, unknown. */
static size_t scalar_size(int type)
{
	switch (type) {
	case HF_GGUF_U8: case HF_GGUF_I8: case HF_GGUF_BOOL: return 1;
	case HF_GGUF_U16: case HF_GGUF_I16: return 2;
	case HF_GGUF_U32: case HF_GGUF_I32: case HF_GGUF_F32: return 4;
	case HF_GGUF_U64: case HF_GGUF_I64: case HF_GGUF_F64: return 8;
	default: return 0;
	}
}

const char *hf_gguf_type_name(int type)
{
	if (type < 0 || type >= HF_GGUF_NTYPES)
		return "?";
	return type_names[type];
}

/* ---- the cursor ---- */

struct cur {
	struct hf_gguf *g;
	size_t pos;
	struct hf_err *err;
};

static uint64_t le(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static size_t remain(const struct cur *c)
{
	return c->g->size - c->pos;
}

static int truncated(struct cur *c, size_t need, const char *what)
{
	return hf_err_set(c->err, HF_EFORMAT,
			  "'%s': truncated: %s needs %zu bytes at byte %zu, "
			  "the file has %zu", c->g->path, what, need, c->pos,
			  c->g->size);
}

static int take(struct cur *c, size_t n, uint64_t *v, const char *what)
{
	*v = 0;
	if (remain(c) < n)
		return truncated(c, n, what);
	*v = le(c->g->base + c->pos, n);
	c->pos += n;
	return 0;
}

/* A gguf_string: u64 length, bytes. */
static int take_str(struct cur *c, const char **s, size_t *len,
		    const char *what)
{
	uint64_t n;
	int rc;

	*s = NULL;
	*len = 0;
	if ((rc = take(c, 8, &n, what)))
		return rc;
	if (n > remain(c))
		return hf_err_set(c->err, HF_EFORMAT,
				  "'%s': %s at byte %zu is %llu bytes long, "
				  "past the end of the file (%zu bytes)",
				  c->g->path, what, c->pos - 8,
				  (unsigned long long)n, c->g->size);
	*s = (const char *)c->g->base + c->pos;
	*len = (size_t)n;
	c->pos += (size_t)n;
	return 0;
}

static int keep_block(struct hf_gguf *g, struct hf_gguf_value *b,
		      struct hf_err *err)
{
	if (g->nblocks == g->capblocks) {
		size_t cap = g->capblocks ? 2 * g->capblocks : 16;
		struct hf_gguf_value **nb = realloc(g->blocks,
						    cap * sizeof(*nb));

		if (!nb) {
			free(b);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		g->blocks = nb;
		g->capblocks = cap;
	}
	g->blocks[g->nblocks++] = b;
	return 0;
}

static int read_value(struct cur *c, struct hf_gguf_value *v, int type,
		      int depth, const char *key);

/* ARRAY: u32 elem type, u64 count, elements. The count is checked
 * against the bytes left before anything is allocated: each element
 * takes at least min bytes. */
static int read_array(struct cur *c, struct hf_gguf_value *v, int depth,
		      const char *key)
{
	struct hf_gguf *g = c->g;
	uint64_t et, n;
	size_t at = c->pos, min;
	int rc;

	if ((rc = take(c, 4, &et, "an array's element type")) ||
	    (rc = take(c, 8, &n, "an array's length")))
		return hf_err_prefix(c->err, "key '%s'", key);
	if (et >= HF_GGUF_NTYPES)
		return hf_err_set(c->err, HF_EFORMAT,
				  "'%s': key '%s': array at byte %zu has "
				  "unknown element type %llu", g->path, key,
				  at, (unsigned long long)et);
	if (et == HF_GGUF_ARRAY && depth + 1 >= HF_GGUF_MAX_DEPTH)
		return hf_err_set(c->err, HF_EFORMAT,
				  "'%s': key '%s': arrays nested more than "
				  "%d deep", g->path, key, HF_GGUF_MAX_DEPTH);
	min = et == HF_GGUF_STRING ? 8 : et == HF_GGUF_ARRAY ? 12 :
	      scalar_size((int)et);
	if (n > remain(c) / min)
		return hf_err_set(c->err, HF_EFORMAT,
				  "'%s': key '%s': array at byte %zu claims "
				  "%llu %s elements, more than the %zu bytes "
				  "left in the file hold", g->path, key, at,
				  (unsigned long long)n,
				  hf_gguf_type_name((int)et), remain(c));
	v->elem = (enum hf_gguf_type)et;
	v->n = n;
	if (et != HF_GGUF_STRING && et != HF_GGUF_ARRAY) {
		v->raw = g->base + c->pos;
		c->pos += (size_t)n * min;
		return 0;
	}
	if (n == 0)
		return 0;
	struct hf_gguf_value *items = calloc((size_t)n, sizeof(*items));

	if (!items)
		return hf_err_set(c->err, HF_ENOMEM, "'%s': key '%s': out of "
				  "memory for %llu elements", g->path, key,
				  (unsigned long long)n);
	if ((rc = keep_block(g, items, c->err)))
		return rc;
	v->items = items;
	for (uint64_t i = 0; i < n; i++)
		if ((rc = read_value(c, &items[i], (int)et, depth + 1, key)))
			return rc;
	return 0;
}

static int read_value(struct cur *c, struct hf_gguf_value *v, int type,
		      int depth, const char *key)
{
	size_t sz = scalar_size(type);
	uint64_t x;
	int rc;

	v->type = (enum hf_gguf_type)type;
	if (type == HF_GGUF_STRING) {
		rc = take_str(c, &v->str, &v->len, "a string value");
		return rc ? hf_err_prefix(c->err, "key '%s'", key) : 0;
	}
	if (type == HF_GGUF_ARRAY)
		return read_array(c, v, depth, key);
	if ((rc = take(c, sz, &x, "a value")))
		return hf_err_prefix(c->err, "key '%s'", key);
	switch (type) {
	case HF_GGUF_U8: case HF_GGUF_U16: case HF_GGUF_U32:
	case HF_GGUF_U64: case HF_GGUF_BOOL:
		v->u = x;
		break;
	case HF_GGUF_I8: v->i = (int8_t)x; break;
	case HF_GGUF_I16: v->i = (int16_t)x; break;
	case HF_GGUF_I32: v->i = (int32_t)x; break;
	case HF_GGUF_I64: v->i = (int64_t)x; break;
	case HF_GGUF_F32: {
		uint32_t b = (uint32_t)x;
		float f;

		memcpy(&f, &b, 4);
		v->f = f;
		break;
	}
	case HF_GGUF_F64:
		memcpy(&v->f, &x, 8);
		break;
	}
	return 0;
}

/* A name copied out of the file: no NUL inside, at most max bytes. */
static int copy_name(struct cur *c, char **out, size_t max, const char *what,
		     uint64_t index)
{
	const char *s;
	size_t len, at = c->pos;
	int rc = take_str(c, &s, &len, what);

	if (rc)
		return hf_err_prefix(c->err, "%s %llu", what,
				     (unsigned long long)index);
	if (len == 0)
		return hf_err_set(c->err, HF_EFORMAT, "'%s': %s %llu at byte "
				  "%zu is empty", c->g->path, what,
				  (unsigned long long)index, at);
	if (len > max)
		return hf_err_set(c->err, HF_EFORMAT, "'%s': %s %llu at byte "
				  "%zu is %zu bytes long, more than %zu",
				  c->g->path, what, (unsigned long long)index,
				  at, len, max);
	if (memchr(s, 0, len))
		return hf_err_set(c->err, HF_EFORMAT, "'%s': %s %llu at byte "
				  "%zu holds a NUL byte", c->g->path, what,
				  (unsigned long long)index, at);
	if (!(*out = malloc(len + 1)))
		return hf_err_set(c->err, HF_ENOMEM, "out of memory");
	memcpy(*out, s, len);
	(*out)[len] = 0;
	return 0;
}

/* ---- sorted lookups ---- */

/* A sort key: a name or an offset (with the size, so that empty tensors
 * sort first at one offset), and the index it came from. */
struct skey {
	const char *name;
	uint64_t off, size;
	size_t i;
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct skey *)a)->name,
		      ((const struct skey *)b)->name);
}

static int cmp_off(const void *a, const void *b)
{
	const struct skey *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return 0;
}

/* Sort the n keys and keep their indices in *out (malloc'd). */
static int sorted_index(struct skey *k, size_t n, size_t **out,
			int (*cmp)(const void *, const void *),
			struct hf_err *err)
{
	size_t *ix = malloc((n ? n : 1) * sizeof(*ix));

	if (!ix) {
		free(k);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	qsort(k, n, sizeof(*k), cmp);
	for (size_t i = 0; i < n; i++)
		ix[i] = k[i].i;
	free(k);
	*out = ix;
	return 0;
}

static struct skey *keys(size_t n, struct hf_err *err)
{
	struct skey *k = calloc(n ? n : 1, sizeof(*k));

	if (!k)
		hf_err_set(err, HF_ENOMEM, "out of memory");
	return k;
}

/* ---- the file ---- */

static int read_header(struct hf_gguf *g, struct hf_err *err)
{
	struct cur c = { g, 0, err };
	uint64_t magic, version, nt, nkv, x;
	int rc;

	if (g->size < 4)
		return hf_err_set(err, HF_EFORMAT, "'%s': not a GGUF file: "
				  "%zu bytes, too short for the magic",
				  g->path, g->size);
	take(&c, 4, &magic, "the magic");
	if (magic != HF_GGUF_MAGIC) {
		char shown[5];

		for (int i = 0; i < 4; i++) {
			unsigned char ch = g->base[i];

			shown[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
		}
		shown[4] = 0;
		return hf_err_set(err, HF_EFORMAT, "'%s': not a GGUF file: "
				  "magic '%s' (%02x %02x %02x %02x), want "
				  "'GGUF'", g->path, shown, g->base[0],
				  g->base[1], g->base[2], g->base[3]);
	}
	if ((rc = take(&c, 4, &version, "the version")))
		return rc;
	if (version == 1)
		return hf_err_set(err, HF_EFORMAT, "'%s': GGUF version 1 is "
				  "not supported (32-bit counts); want 2 or 3",
				  g->path);
	if (version != 2 && version != 3) {
		if ((version & 0xffff) == 0 && version >> 16)
			return hf_err_set(err, HF_EFORMAT, "'%s': GGUF "
					  "version %llu: a big-endian file? "
					  "only little-endian is read",
					  g->path,
					  (unsigned long long)version);
		return hf_err_set(err, HF_EFORMAT, "'%s': GGUF version %llu, "
				  "want 2 or 3", g->path,
				  (unsigned long long)version);
	}
	g->version = (uint32_t)version;
	if ((rc = take(&c, 8, &nt, "the tensor count")) ||
	    (rc = take(&c, 8, &nkv, "the metadata count")))
		return rc;
	/* A pair takes at least 8 + 1 (key) + 4 (type) + 1 bytes, a tensor
	 * info 8 + 1 + 4 + 4 + 8: a count the rest of the file cannot hold
	 * is refused before anything is allocated for it. */
	if (nkv > remain(&c) / 14)
		return hf_err_set(err, HF_EFORMAT, "'%s': %llu metadata pairs "
				  "claimed, more than the %zu bytes left can "
				  "hold", g->path, (unsigned long long)nkv,
				  remain(&c));
	if (nt > remain(&c) / 25)
		return hf_err_set(err, HF_EFORMAT, "'%s': %llu tensors "
				  "claimed, more than the %zu bytes left can "
				  "hold", g->path, (unsigned long long)nt,
				  remain(&c));
	g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof(*g->kv));
	g->t = calloc(nt ? (size_t)nt : 1, sizeof(*g->t));
	if (!g->kv || !g->t)
		return hf_err_set(err, HF_ENOMEM, "out of memory");

	for (uint64_t i = 0; i < nkv; i++) {
		struct hf_gguf_kv *kv = &g->kv[i];
		size_t at;

		if ((rc = copy_name(&c, (char **)&kv->key, 65535, "key", i)))
			return rc;
		g->nkv = (size_t)i + 1;
		at = c.pos;
		if ((rc = take(&c, 4, &x, "a value type")))
			return hf_err_prefix(err, "key '%s'", kv->key);
		if (x >= HF_GGUF_NTYPES)
			return hf_err_set(err, HF_EFORMAT, "'%s': key '%s' has "
					  "unknown value type %llu at byte "
					  "%zu", g->path, kv->key,
					  (unsigned long long)x, at);
		if ((rc = read_value(&c, &kv->val, (int)x, 0, kv->key)))
			return rc;
	}
	struct skey *k = keys(g->nkv, err);

	if (!k)
		return HF_ENOMEM;
	for (size_t i = 0; i < g->nkv; i++)
		k[i] = (struct skey){ .name = g->kv[i].key, .i = i };
	if ((rc = sorted_index(k, g->nkv, &g->kv_sorted, cmp_name, err)))
		return rc;
	for (size_t i = 1; i < g->nkv; i++)
		if (!strcmp(g->kv[g->kv_sorted[i - 1]].key,
			    g->kv[g->kv_sorted[i]].key))
			return hf_err_set(err, HF_EFORMAT, "'%s': key '%s' "
					  "appears twice", g->path,
					  g->kv[g->kv_sorted[i]].key);

	g->alignment = HF_GGUF_DEFAULT_ALIGNMENT;
	const struct hf_gguf_value *al = hf_gguf_get(g, "general.alignment");

	if (al) {
		if (al->type != HF_GGUF_U32)
			return hf_err_set(err, HF_EFORMAT, "'%s': key "
					  "'general.alignment' is %s, want "
					  "u32", g->path,
					  hf_gguf_type_name(al->type));
		if (al->u == 0 || (al->u & (al->u - 1)))
			return hf_err_set(err, HF_EFORMAT, "'%s': "
					  "general.alignment %llu is not a "
					  "power of 2", g->path,
					  (unsigned long long)al->u);
		g->alignment = (size_t)al->u;
	}

	for (uint64_t i = 0; i < nt; i++) {
		struct hf_gguf_tensor *t = &g->t[i];
		uint64_t nd, ne, type, off, nel = 1;
		int64_t blck;
		size_t bbytes;

		if ((rc = copy_name(&c, (char **)&t->name, HF_GGUF_MAX_NAME,
				    "tensor name", i)))
			return rc;
		g->nt = (size_t)i + 1;
		if ((rc = take(&c, 4, &nd, "a tensor's dimension count")))
			return hf_err_prefix(err, "tensor '%s'", t->name);
		if (nd > HF_GGUF_MAX_DIMS)
			return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' "
					  "has %llu dimensions, more than %d",
					  g->path, t->name,
					  (unsigned long long)nd,
					  HF_GGUF_MAX_DIMS);
		t->n_dims = (int)nd;
		for (int d = 0; d < HF_GGUF_MAX_DIMS; d++)
			t->ne[d] = 1;
		for (int d = 0; d < (int)nd; d++) {
			if ((rc = take(&c, 8, &ne, "a tensor dimension")))
				return hf_err_prefix(err, "tensor '%s'",
						     t->name);
			if (ne > INT64_MAX)
				return hf_err_set(err, HF_EFORMAT, "'%s': "
						  "tensor '%s' dimension %d is "
						  "%llu, negative as int64",
						  g->path, t->name, d,
						  (unsigned long long)ne);
			t->ne[d] = (int64_t)ne;
		}
		for (int d = 0; d < HF_GGUF_MAX_DIMS; d++) {
			uint64_t n = (uint64_t)t->ne[d];

			if (n && nel > (uint64_t)INT64_MAX / n)
				return hf_err_set(err, HF_EFORMAT, "'%s': "
						  "tensor '%s': the element "
						  "count overflows int64",
						  g->path, t->name);
			nel *= n;
		}
		if ((rc = take(&c, 4, &type, "a tensor's type")))
			return hf_err_prefix(err, "tensor '%s'", t->name);
		if (type > INT32_MAX || hf_gguf_ggml_block((int)type, &blck,
							   &bbytes))
			return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' "
					  "has unknown ggml type %llu",
					  g->path, t->name,
					  (unsigned long long)type);
		t->type = (int)type;
		if (t->ne[0] % blck)
			return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' "
					  "of type %s has rows of %lld "
					  "elements, not a multiple of its "
					  "block of %lld", g->path, t->name,
					  ggml_blocks[type].name,
					  (long long)t->ne[0],
					  (long long)blck);
		/* bytes = ne0 / blck * bbytes * ne1 * ne2 * ne3 */
		{
			uint64_t nb = (uint64_t)(t->ne[0] / blck);

			if (nb && bbytes > SIZE_MAX / nb)
				goto too_big;
			nb *= bbytes;
			for (int d = 1; d < HF_GGUF_MAX_DIMS; d++) {
				uint64_t n = (uint64_t)t->ne[d];

				if (n && nb > SIZE_MAX / n)
					goto too_big;
				nb *= n;
			}
			t->nbytes = (size_t)nb;
		}
		if ((rc = take(&c, 8, &off, "a tensor's offset")))
			return hf_err_prefix(err, "tensor '%s'", t->name);
		if (off % g->alignment)
			return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' "
					  "at data offset %llu, not a "
					  "multiple of the alignment %zu",
					  g->path, t->name,
					  (unsigned long long)off,
					  g->alignment);
		t->offset = off;
		continue;
too_big:
		return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s': its "
				  "size in bytes overflows", g->path, t->name);
	}
	if (!(k = keys(g->nt, err)))
		return HF_ENOMEM;
	for (size_t i = 0; i < g->nt; i++)
		k[i] = (struct skey){ .name = g->t[i].name, .i = i };
	if ((rc = sorted_index(k, g->nt, &g->t_sorted, cmp_name, err)))
		return rc;
	for (size_t i = 1; i < g->nt; i++)
		if (!strcmp(g->t[g->t_sorted[i - 1]].name,
			    g->t[g->t_sorted[i]].name))
			return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' "
					  "appears twice", g->path,
					  g->t[g->t_sorted[i]].name);

	/* The data section starts at the next multiple of the alignment. */
	size_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;

	g->data_off = c.pos + pad;
	if (g->nt && g->data_off > g->size)
		return hf_err_set(err, HF_EFORMAT, "'%s': truncated: the data "
				  "section would start at byte %zu, the file "
				  "has %zu", g->path, g->data_off, g->size);
	size_t avail = g->data_off <= g->size ? g->size - g->data_off : 0;
	size_t *by_off;

	if (!(k = keys(g->nt, err)))
		return HF_ENOMEM;
	for (size_t i = 0; i < g->nt; i++)
		k[i] = (struct skey){ .off = g->t[i].offset,
				      .size = g->t[i].nbytes, .i = i };
	if ((rc = sorted_index(k, g->nt, &by_off, cmp_off, err)))
		return rc;
	uint64_t end = 0;
	const char *prev = NULL;

	for (size_t j = 0; j < g->nt; j++) {
		struct hf_gguf_tensor *t = &g->t[by_off[j]];

		if (t->offset > avail || t->nbytes > avail - t->offset) {
			hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' "
				   "(%zu bytes at data offset %llu) ends "
				   "past the end of the file (%zu bytes of "
				   "data)", g->path, t->name, t->nbytes,
				   (unsigned long long)t->offset, avail);
			free(by_off);
			return HF_EFORMAT;
		}
		if (t->nbytes && t->offset < end) {
			hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' at "
				   "data offset %llu overlaps tensor '%s' "
				   "(ends at %llu)", g->path, t->name,
				   (unsigned long long)t->offset, prev,
				   (unsigned long long)end);
			free(by_off);
			return HF_EFORMAT;
		}
		if (t->nbytes) {
			end = t->offset + t->nbytes;
			prev = t->name;
			t->data = g->base + g->data_off + t->offset;
		}
	}
	free(by_off);
	return 0;
}

static int open_common(struct hf_gguf *g, struct hf_gguf **out,
		       struct hf_err *err)
{
	int rc = read_header(g, err);

	if (rc) {
		hf_gguf_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

int hf_gguf_open_buf(struct hf_gguf **out, const void *buf, size_t len,
		     const char *name, struct hf_err *err)
{
	struct hf_gguf *g = calloc(1, sizeof(*g));

	*out = NULL;
	if (!g || !(g->path = strdup(name))) {
		free(g);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	g->base = buf;
	g->size = len;
	return open_common(g, out, err);
}

int hf_gguf_open(struct hf_gguf **out, const char *path, struct hf_err *err)
{
	struct hf_gguf *g = calloc(1, sizeof(*g));
	int rc;

	*out = NULL;
	if (!g || !(g->path = strdup(path))) {
		free(g);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if ((rc = hf_map_open(&g->map, path, err))) {
		hf_gguf_free(g);
		return rc;
	}
	g->base = g->map.data;
	g->size = g->map.size;
	return open_common(g, out, err);
}

void hf_gguf_free(struct hf_gguf *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nkv; i++)
		free((char *)g->kv[i].key);
	for (size_t i = 0; i < g->nt; i++)
		free((char *)g->t[i].name);
	for (size_t i = 0; i < g->nblocks; i++)
		free(g->blocks[i]);
	free(g->blocks);
	free(g->kv);
	free(g->kv_sorted);
	free(g->t);
	free(g->t_sorted);
	hf_map_close(&g->map);
	free(g->path);
	free(g);
}

const char *hf_gguf_path(const struct hf_gguf *g) { return g->path; }
uint32_t hf_gguf_version(const struct hf_gguf *g) { return g->version; }
size_t hf_gguf_alignment(const struct hf_gguf *g) { return g->alignment; }
size_t hf_gguf_data_offset(const struct hf_gguf *g) { return g->data_off; }
size_t hf_gguf_kv_count(const struct hf_gguf *g) { return g->nkv; }
size_t hf_gguf_tensor_count(const struct hf_gguf *g) { return g->nt; }

const struct hf_gguf_kv *hf_gguf_kv(const struct hf_gguf *g, size_t i)
{
	return i < g->nkv ? &g->kv[i] : NULL;
}

const struct hf_gguf_tensor *hf_gguf_tensor(const struct hf_gguf *g,
					    size_t i)
{
	return i < g->nt ? &g->t[i] : NULL;
}

const struct hf_gguf_value *hf_gguf_get(const struct hf_gguf *g,
					const char *key)
{
	size_t lo = 0, hi = g->kv_sorted ? g->nkv : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hf_gguf_kv *kv = &g->kv[g->kv_sorted[mid]];
		int c = strcmp(key, kv->key);

		if (!c)
			return &kv->val;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct hf_gguf_tensor *hf_gguf_find_tensor(const struct hf_gguf *g,
						 const char *name)
{
	size_t lo = 0, hi = g->t_sorted ? g->nt : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hf_gguf_tensor *t = &g->t[g->t_sorted[mid]];
		int c = strcmp(name, t->name);

		if (!c)
			return t;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- typed lookups ---- */

static int wrong_type(const struct hf_gguf *g, const char *key,
		      const struct hf_gguf_value *v, const char *want,
		      struct hf_err *err)
{
	return hf_err_set(err, HF_EFORMAT, "'%s': key '%s' is %s, want %s",
			  g->path, key, hf_gguf_type_name(v->type), want);
}

static int is_unsigned(int t)
{
	return t == HF_GGUF_U8 || t == HF_GGUF_U16 || t == HF_GGUF_U32 ||
	       t == HF_GGUF_U64;
}

static int is_signed(int t)
{
	return t == HF_GGUF_I8 || t == HF_GGUF_I16 || t == HF_GGUF_I32 ||
	       t == HF_GGUF_I64;
}

int hf_gguf_get_uint(const struct hf_gguf *g, const char *key, uint64_t def,
		     uint64_t *out, struct hf_err *err)
{
	const struct hf_gguf_value *v = hf_gguf_get(g, key);

	*out = def;
	if (!v)
		return 0;
	if (is_unsigned(v->type)) {
		*out = v->u;
		return 0;
	}
	if (is_signed(v->type)) {
		if (v->i < 0)
			return hf_err_set(err, HF_EFORMAT, "'%s': key '%s' is "
					  "%lld, want a count >= 0", g->path,
					  key, (long long)v->i);
		*out = (uint64_t)v->i;
		return 0;
	}
	return wrong_type(g, key, v, "an integer", err);
}

int hf_gguf_get_int(const struct hf_gguf *g, const char *key, int64_t def,
		    int64_t *out, struct hf_err *err)
{
	const struct hf_gguf_value *v = hf_gguf_get(g, key);

	*out = def;
	if (!v)
		return 0;
	if (is_signed(v->type)) {
		*out = v->i;
		return 0;
	}
	if (is_unsigned(v->type)) {
		if (v->u > INT64_MAX)
			return hf_err_set(err, HF_EFORMAT, "'%s': key '%s' is "
					  "%llu, too large", g->path, key,
					  (unsigned long long)v->u);
		*out = (int64_t)v->u;
		return 0;
	}
	return wrong_type(g, key, v, "an integer", err);
}

int hf_gguf_get_float(const struct hf_gguf *g, const char *key, double def,
		      double *out, struct hf_err *err)
{
	const struct hf_gguf_value *v = hf_gguf_get(g, key);

	*out = def;
	if (!v)
		return 0;
	if (v->type == HF_GGUF_F32 || v->type == HF_GGUF_F64)
		*out = v->f;
	else if (is_signed(v->type))
		*out = (double)v->i;
	else if (is_unsigned(v->type))
		*out = (double)v->u;
	else
		return wrong_type(g, key, v, "a number", err);
	return 0;
}

int hf_gguf_get_bool(const struct hf_gguf *g, const char *key, int def,
		     int *out, struct hf_err *err)
{
	const struct hf_gguf_value *v = hf_gguf_get(g, key);

	*out = def;
	if (!v)
		return 0;
	if (v->type != HF_GGUF_BOOL)
		return wrong_type(g, key, v, "bool", err);
	*out = v->u != 0;
	return 0;
}

int hf_gguf_get_str(const struct hf_gguf *g, const char *key,
		    const char **s, size_t *len, struct hf_err *err)
{
	const struct hf_gguf_value *v = hf_gguf_get(g, key);

	*s = NULL;
	*len = 0;
	if (!v)
		return 0;
	if (v->type != HF_GGUF_STRING)
		return wrong_type(g, key, v, "string", err);
	*s = v->str;
	*len = v->len;
	return 0;
}

int64_t hf_gguf_arr_int(const struct hf_gguf_value *v, uint64_t i)
{
	size_t sz = scalar_size(v->elem);
	uint64_t x = le(v->raw + i * sz, sz);

	switch (v->elem) {
	case HF_GGUF_I8: return (int8_t)x;
	case HF_GGUF_I16: return (int16_t)x;
	case HF_GGUF_I32: return (int32_t)x;
	case HF_GGUF_I64: return (int64_t)x;
	case HF_GGUF_F32: case HF_GGUF_F64: {
		double d = hf_gguf_arr_float(v, i);

		if (!(d > -9.2e18 && d < 9.2e18))	/* NaN too */
			return 0;
		return (int64_t)d;
	}
	default: return (int64_t)x;
	}
}

double hf_gguf_arr_float(const struct hf_gguf_value *v, uint64_t i)
{
	size_t sz = scalar_size(v->elem);
	uint64_t x = le(v->raw + i * sz, sz);

	if (v->elem == HF_GGUF_F32) {
		uint32_t b = (uint32_t)x;
		float f;

		memcpy(&f, &b, 4);
		return f;
	}
	if (v->elem == HF_GGUF_F64) {
		double d;

		memcpy(&d, &x, 8);
		return d;
	}
	if (is_signed(v->elem))
		return (double)hf_gguf_arr_int(v, i);
	return (double)x;
}
