/* lib/export/gguf.c: the GGUF v3 writer. Metadata values are encoded as
 * they are set (one small buffer per key); tensors are a list of infos
 * whose data a callback streams out when the file is written. */
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "export/ggml_types.h"
#include "export/gguf.h"

#define ALIGNMENT HF_GGUF_DEFAULT_ALIGNMENT

struct buf {
	unsigned char *p;
	size_t n, cap;
};

struct kv {
	char *key;
	struct buf val;		/* u32 type + value, as in the file */
};

struct tinfo {
	char *name;
	int n_dims;
	int64_t ne[HF_GGUF_MAX_DIMS];
	int type;
	uint64_t nbytes, offset;
	hf_gguf_fill_fn fill;
	void *ctx;
};

struct hf_gguf_writer {
	struct kv *kv;
	size_t nkv, capkv;
	struct tinfo *t;
	size_t nt, capt;
	uint64_t data_size;
};

struct hf_gguf_sink {
	FILE *f;
	const char *name;	/* the file, in errors */
	const struct tinfo *t;
	uint64_t written;
};

static int grow(struct buf *b, size_t more)
{
	if (b->n + more > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		unsigned char *p;

		while (cap < b->n + more)
			cap *= 2;
		if (!(p = realloc(b->p, cap)))
			return -1;
		b->p = p;
		b->cap = cap;
	}
	return 0;
}

static int put(struct buf *b, const void *p, size_t n)
{
	if (grow(b, n))
		return -1;
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

/* Little-endian integers of 1..8 bytes. */
static int put_le(struct buf *b, uint64_t v, size_t bytes)
{
	unsigned char s[8];

	for (size_t i = 0; i < bytes; i++)
		s[i] = (unsigned char)(v >> (8 * i));
	return put(b, s, bytes);
}

static int put_str(struct buf *b, const char *s, size_t len)
{
	return put_le(b, len, 8) || put(b, s, len);
}

static size_t type_size(enum hf_gguf_type t)
{
	switch (t) {
	case HF_GGUF_U8: case HF_GGUF_I8: case HF_GGUF_BOOL:
		return 1;
	case HF_GGUF_U16: case HF_GGUF_I16:
		return 2;
	case HF_GGUF_U32: case HF_GGUF_I32: case HF_GGUF_F32:
		return 4;
	case HF_GGUF_U64: case HF_GGUF_I64: case HF_GGUF_F64:
		return 8;
	default:
		return 0;
	}
}

int hf_gguf_writer_new(struct hf_gguf_writer **out, struct hf_err *err)
{
	struct hf_gguf_writer *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!w)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (hf_gguf_set_u32(w, "general.alignment", ALIGNMENT, err)) {
		hf_gguf_writer_free(w);
		return err->code;
	}
	*out = w;
	return 0;
}

void hf_gguf_writer_free(struct hf_gguf_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->nkv; i++) {
		free(w->kv[i].key);
		free(w->kv[i].val.p);
	}
	for (size_t i = 0; i < w->nt; i++)
		free(w->t[i].name);
	free(w->kv);
	free(w->t);
	free(w);
}

static struct kv *find_kv(const struct hf_gguf_writer *w, const char *key)
{
	for (size_t i = 0; i < w->nkv; i++)
		if (!strcmp(w->kv[i].key, key))
			return &w->kv[i];
	return NULL;
}

int hf_gguf_has(const struct hf_gguf_writer *w, const char *key)
{
	return find_kv(w, key) != NULL;
}

/* Take the encoded value b (moved in) as key's. */
static int set(struct hf_gguf_writer *w, const char *key, struct buf *b,
	       struct hf_err *err)
{
	struct kv *k;

	if (!key || !*key) {
		free(b->p);
		return hf_err_set(err, HF_EINVAL, "gguf: an empty metadata key");
	}
	if ((k = find_kv(w, key))) {
		free(k->val.p);
		k->val = *b;
		return 0;
	}
	if (w->nkv == w->capkv) {
		size_t cap = w->capkv ? 2 * w->capkv : 32;
		struct kv *n = realloc(w->kv, cap * sizeof(*n));

		if (!n) {
			free(b->p);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		w->kv = n;
		w->capkv = cap;
	}
	k = &w->kv[w->nkv];
	if (!(k->key = strdup(key))) {
		free(b->p);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	k->val = *b;
	w->nkv++;
	return 0;
}

static int set_scalar(struct hf_gguf_writer *w, const char *key,
		      enum hf_gguf_type t, uint64_t bits, struct hf_err *err)
{
	struct buf b = { 0 };

	if (put_le(&b, t, 4) || put_le(&b, bits, type_size(t))) {
		free(b.p);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return set(w, key, &b, err);
}

int hf_gguf_set_u8(struct hf_gguf_writer *w, const char *key, uint8_t v,
		   struct hf_err *err)
{
	return set_scalar(w, key, HF_GGUF_U8, v, err);
}

int hf_gguf_set_i8(struct hf_gguf_writer *w, const char *key, int8_t v,
		   struct hf_err *err)
{
	return set_scalar(w, key, HF_GGUF_I8, (uint8_t)v, err);
}

int hf_gguf_set_u16(struct hf_gguf_writer *w, const char *key, uint16_t v,
		    struct hf_err *err)
{
	return set_scalar(w, key, HF_GGUF_U16, v, err);
}

int hf_gguf_set_i16(struct hf_gguf_writer *w, const char *key, int16_t v,
		    struct hf_err *err)
{
	return set_scalar(w, key, HF_GGUF_I16, (uint16_t)v, err);
}

int hf_gguf_set_u32(struct hf_gguf_writer *w, const char *key, uint32_t v,
		    struct hf_err *err)
{
	return set_scalar(w, key, HF_GGUF_U32, v, err);
}

int hf_gguf_set_i32(struct hf_gguf_writer *w, const char *key, int32_t v,
		    struct hf_err *err)
{
	return set_scalar(w, key, HF_GGUF_I32, (uint32_t)v, err);
}

int hf_gguf_set_f32(struct hf_gguf_writer *w, const char *key, float v,
		    struct hf_err *err)
{
	uint32_t u;

	memcpy(&u, &v, 4);
	return set_scalar(w, key, HF_GGUF_F32, u, err);
}

int hf_gguf_set_bool(struct hf_gguf_writer *w, const char *key, int v,
		     struct hf_err *err)
{
	return set_scalar(w, key, HF_GGUF_BOOL, v ? 1 : 0, err);
}

int hf_gguf_set_u64(struct hf_gguf_writer *w, const char *key, uint64_t v,
		    struct hf_err *err)
{
	return set_scalar(w, key, HF_GGUF_U64, v, err);
}

int hf_gguf_set_i64(struct hf_gguf_writer *w, const char *key, int64_t v,
		    struct hf_err *err)
{
	return set_scalar(w, key, HF_GGUF_I64, (uint64_t)v, err);
}

int hf_gguf_set_f64(struct hf_gguf_writer *w, const char *key, double v,
		    struct hf_err *err)
{
	uint64_t u;

	memcpy(&u, &v, 8);
	return set_scalar(w, key, HF_GGUF_F64, u, err);
}

int hf_gguf_set_str(struct hf_gguf_writer *w, const char *key,
		    const char *s, size_t len, struct hf_err *err)
{
	struct buf b = { 0 };

	if (put_le(&b, HF_GGUF_STRING, 4) || put_str(&b, s, len)) {
		free(b.p);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return set(w, key, &b, err);
}

int hf_gguf_set_arr(struct hf_gguf_writer *w, const char *key,
		    enum hf_gguf_type elem, const void *data, size_t n,
		    struct hf_err *err)
{
	struct buf b = { 0 };
	size_t es = type_size(elem);
	const unsigned char *p = data;

	if (!es)
		return hf_err_set(err, HF_EINVAL, "gguf: '%s': an array of "
				  "%s is not a numeric array", key,
				  hf_gguf_type_name(elem));
	if (put_le(&b, HF_GGUF_ARRAY, 4) || put_le(&b, elem, 4) ||
	    put_le(&b, n, 8) || grow(&b, n * es))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0;

		switch (es) {
		case 1: { uint8_t x; memcpy(&x, p + i, 1); v = x; break; }
		case 2: { uint16_t x; memcpy(&x, p + 2 * i, 2); v = x; break; }
		case 4: { uint32_t x; memcpy(&x, p + 4 * i, 4); v = x; break; }
		default: memcpy(&v, p + 8 * i, 8); break;
		}
		if (elem == HF_GGUF_BOOL)
			v = v ? 1 : 0;
		put_le(&b, v, es);
	}
	return set(w, key, &b, err);
oom:
	free(b.p);
	return hf_err_set(err, HF_ENOMEM, "out of memory");
}

int hf_gguf_set_arr_str(struct hf_gguf_writer *w, const char *key,
			const char *const *strs, const size_t *lens, size_t n,
			struct hf_err *err)
{
	struct buf b = { 0 };

	if (put_le(&b, HF_GGUF_ARRAY, 4) || put_le(&b, HF_GGUF_STRING, 4) ||
	    put_le(&b, n, 8))
		goto oom;
	for (size_t i = 0; i < n; i++)
		if (put_str(&b, strs[i], lens ? lens[i] : strlen(strs[i])))
			goto oom;
	return set(w, key, &b, err);
oom:
	free(b.p);
	return hf_err_set(err, HF_ENOMEM, "out of memory");
}

static uint64_t pad_to(uint64_t n)
{
	return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
}

int hf_gguf_add_tensor(struct hf_gguf_writer *w, const char *name,
		       int n_dims, const int64_t *ne, int type,
		       hf_gguf_fill_fn fill, void *ctx, struct hf_err *err)
{
	const struct hf_ggml_traits *tr = hf_ggml_traits(type);
	struct tinfo *t;
	uint64_t rows = 1;
	size_t len = name ? strlen(name) : 0;

	if (!len || len > HF_GGUF_MAX_NAME)
		return hf_err_set(err, HF_EINVAL, "gguf: tensor name '%s' is "
				  "not 1 to %d bytes", name ? name : "",
				  HF_GGUF_MAX_NAME);
	for (size_t i = 0; i < w->nt; i++)
		if (!strcmp(w->t[i].name, name))
			return hf_err_set(err, HF_EINVAL, "gguf: tensor '%s' "
					  "added twice", name);
	if (n_dims < 1 || n_dims > HF_GGUF_MAX_DIMS)
		return hf_err_set(err, HF_EINVAL, "gguf: tensor '%s' has %d "
				  "dimensions (1 to %d)", name, n_dims,
				  HF_GGUF_MAX_DIMS);
	if (!tr)
		return hf_err_set(err, HF_EINVAL, "gguf: tensor '%s': unknown "
				  "ggml type %d", name, type);
	for (int i = 0; i < n_dims; i++) {
		if (ne[i] <= 0)
			return hf_err_set(err, HF_EINVAL, "gguf: tensor '%s': "
					  "dimension %d is %lld", name, i,
					  (long long)ne[i]);
		if (i)
			rows *= (uint64_t)ne[i];
	}
	if (ne[0] % tr->blck)
		return hf_err_set(err, HF_EINVAL, "gguf: tensor '%s': rows of "
				  "%lld elements are not whole %s blocks of "
				  "%lld", name, (long long)ne[0], tr->name,
				  (long long)tr->blck);
	if (w->nt == w->capt) {
		size_t cap = w->capt ? 2 * w->capt : 64;
		struct tinfo *n = realloc(w->t, cap * sizeof(*n));

		if (!n)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		w->t = n;
		w->capt = cap;
	}
	t = &w->t[w->nt];
	memset(t, 0, sizeof(*t));
	if (!(t->name = strdup(name)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	t->n_dims = n_dims;
	for (int i = 0; i < HF_GGUF_MAX_DIMS; i++)
		t->ne[i] = i < n_dims ? ne[i] : 1;
	t->type = type;
	t->nbytes = (uint64_t)ne[0] / (uint64_t)tr->blck * tr->bytes * rows;
	t->offset = w->data_size;
	t->fill = fill;
	t->ctx = ctx;
	w->data_size += pad_to(t->nbytes);
	w->nt++;
	return 0;
}

size_t hf_gguf_writer_tensor_count(const struct hf_gguf_writer *w)
{
	return w->nt;
}

size_t hf_gguf_writer_kv_count(const struct hf_gguf_writer *w)
{
	return w->nkv;
}

uint64_t hf_gguf_writer_data_size(const struct hf_gguf_writer *w)
{
	return w->data_size;
}

/* The header, metadata and tensor infos, unpadded. */
static int header(const struct hf_gguf_writer *w, struct buf *b)
{
	if (put_le(b, HF_GGUF_MAGIC, 4) || put_le(b, HF_GGUF_VERSION, 4) ||
	    put_le(b, w->nt, 8) || put_le(b, w->nkv, 8))
		return -1;
	for (size_t i = 0; i < w->nkv; i++)
		if (put_str(b, w->kv[i].key, strlen(w->kv[i].key)) ||
		    put(b, w->kv[i].val.p, w->kv[i].val.n))
			return -1;
	for (size_t i = 0; i < w->nt; i++) {
		const struct tinfo *t = &w->t[i];

		if (put_str(b, t->name, strlen(t->name)) ||
		    put_le(b, (uint64_t)t->n_dims, 4))
			return -1;
		for (int d = 0; d < t->n_dims; d++)
			if (put_le(b, (uint64_t)t->ne[d], 8))
				return -1;
		if (put_le(b, (uint64_t)t->type, 4) ||
		    put_le(b, t->offset, 8))
			return -1;
	}
	return 0;
}

uint64_t hf_gguf_writer_size(const struct hf_gguf_writer *w)
{
	struct buf b = { 0 };
	uint64_t n;

	if (header(w, &b)) {
		free(b.p);
		return 0;
	}
	n = pad_to(b.n) + w->data_size;
	free(b.p);
	return n;
}

int hf_gguf_sink_write(struct hf_gguf_sink *s, const void *buf, size_t len,
		       struct hf_err *err)
{
	if (len > s->t->nbytes - s->written)
		return hf_err_set(err, HF_EINTERNAL, "gguf: tensor '%s': more "
				  "than its %llu bytes written", s->t->name,
				  (unsigned long long)s->t->nbytes);
	if (len && fwrite(buf, 1, len, s->f) != len)
		return hf_err_errno(err, "cannot write '%s'", s->name);
	s->written += len;
	return 0;
}

static int zeros(FILE *f, uint64_t n, const char *name, struct hf_err *err)
{
	static const unsigned char z[ALIGNMENT];

	while (n) {
		size_t k = n < sizeof(z) ? (size_t)n : sizeof(z);

		if (fwrite(z, 1, k, f) != k)
			return hf_err_errno(err, "cannot write '%s'", name);
		n -= k;
	}
	return 0;
}

int hf_gguf_write_stream(struct hf_gguf_writer *w, FILE *f, const char *name,
			 struct hf_err *err)
{
	struct buf b = { 0 };
	int rc;

	if (header(w, &b)) {
		free(b.p);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (fwrite(b.p, 1, b.n, f) != b.n) {
		free(b.p);
		return hf_err_errno(err, "cannot write '%s'", name);
	}
	rc = zeros(f, pad_to(b.n) - b.n, name, err);
	free(b.p);
	if (rc)
		return rc;
	for (size_t i = 0; i < w->nt; i++) {
		const struct tinfo *t = &w->t[i];
		struct hf_gguf_sink s = { f, name, t, 0 };

		if (!t->fill)
			return hf_err_set(err, HF_EINTERNAL, "gguf: tensor "
					  "'%s' has no data", t->name);
		if ((rc = t->fill(t->ctx, &s, err)))
			return rc;
		if (s.written != t->nbytes)
			return hf_err_set(err, HF_EINTERNAL, "gguf: tensor "
					  "'%s': %llu of its %llu bytes "
					  "written", t->name,
					  (unsigned long long)s.written,
					  (unsigned long long)t->nbytes);
		if ((rc = zeros(f, pad_to(t->nbytes) - t->nbytes, name, err)))
			return rc;
	}
	return 0;
}

int hf_gguf_write(struct hf_gguf_writer *w, const char *path,
		  struct hf_err *err)
{
	struct hf_atomic a;
	int rc;

	if ((rc = hf_atomic_open(&a, path, err)))
		return rc;
	if ((rc = hf_gguf_write_stream(w, a.f, strcmp(path, "-") ? path :
				       "standard output", err))) {
		hf_atomic_abort(&a);
		return rc;
	}
	return hf_atomic_commit(&a, err);
}
