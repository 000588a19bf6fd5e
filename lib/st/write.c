/* lib/st/write.c: write safetensors files as a stream, in the layout of
 * the reference writer (safetensors/src/tensor.rs, prepare()). */
#include "st/st.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/utf8.h"

#define CHUNK (1u << 20)	/* bytes per fwrite or fill call */

struct wtensor {
	char *name;
	enum hf_dtype dtype;
	int ndim;
	int64_t shape[HF_TENSOR_MAX_DIMS];
	uint64_t nbytes;
	const void *data;	/* or fill(ctx, ...) */
	hf_st_fill_fn fill;
	void *ctx;
};

struct hf_st_writer {
	struct wtensor *t;
	size_t n, cap;
	char **meta;		/* key, value pairs */
	size_t nmeta;
	char *header;		/* padded, built by prepare() */
	size_t hlen;
	uint64_t datalen;
	struct wtensor **order;
};

struct sbuf {
	char *s;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *ns;

		while (cap < b->len + n + 1)
			cap *= 2;
		ns = realloc(b->s, cap);
		if (!ns) {
			b->oom = 1;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* A JSON string as serde_json writes it: only '"', '\\' and control
 * characters are escaped; UTF-8 passes through. */
static void sb_json(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	sb_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[7] = "\\u00";

		switch (c) {
		case '"': sb_add(b, "\\\"", 2); continue;
		case '\\': sb_add(b, "\\\\", 2); continue;
		case '\b': sb_add(b, "\\b", 2); continue;
		case '\f': sb_add(b, "\\f", 2); continue;
		case '\n': sb_add(b, "\\n", 2); continue;
		case '\r': sb_add(b, "\\r", 2); continue;
		case '\t': sb_add(b, "\\t", 2); continue;
		}
		if (c < 0x20) {
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			sb_add(b, e, 6);
		} else {
			sb_add(b, s, 1);
		}
	}
	sb_add(b, "\"", 1);
}

static void invalidate(struct hf_st_writer *w)
{
	free(w->header);
	w->header = NULL;
	free(w->order);
	w->order = NULL;
}

int hf_st_writer_new(struct hf_st_writer **out, struct hf_err *err)
{
	struct hf_st_writer *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!w)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (hf_st_writer_meta(w, "format", "pt", err)) {
		hf_st_writer_free(w);
		return HF_ENOMEM;
	}
	*out = w;
	return 0;
}

void hf_st_writer_free(struct hf_st_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++)
		free(w->t[i].name);
	free(w->t);
	for (size_t i = 0; i < 2 * w->nmeta; i++)
		free(w->meta[i]);
	free(w->meta);
	invalidate(w);
	free(w);
}

int hf_st_writer_meta(struct hf_st_writer *w, const char *key,
		      const char *value, struct hf_err *err)
{
	char **nm, *k, *v;

	invalidate(w);
	if (!value) {
		for (size_t i = 0; i < w->nmeta; i++)
			if (!strcmp(w->meta[2 * i], key)) {
				free(w->meta[2 * i]);
				free(w->meta[2 * i + 1]);
				w->nmeta--;
				memmove(w->meta + 2 * i, w->meta + 2 * i + 2,
					2 * (w->nmeta - i) * sizeof(char *));
				break;
			}
		return 0;
	}
	if (!hf_utf8_valid(key, strlen(key), NULL) ||
	    !hf_utf8_valid(value, strlen(value), NULL))
		return hf_err_set(err, HF_EUTF8, "metadata '%s' is not valid "
				  "UTF-8", key);
	for (size_t i = 0; i < w->nmeta; i++)
		if (!strcmp(w->meta[2 * i], key)) {
			if (!(v = strdup(value)))
				return hf_err_set(err, HF_ENOMEM,
						  "out of memory");
			free(w->meta[2 * i + 1]);
			w->meta[2 * i + 1] = v;
			return 0;
		}
	nm = realloc(w->meta, (2 * w->nmeta + 2) * sizeof(*nm));
	if (!nm)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	w->meta = nm;
	k = strdup(key);
	v = strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	w->meta[2 * w->nmeta] = k;
	w->meta[2 * w->nmeta + 1] = v;
	w->nmeta++;
	return 0;
}

static int add(struct hf_st_writer *w, const char *name, enum hf_dtype dtype,
	       int ndim, const int64_t *shape, const void *data,
	       hf_st_fill_fn fill, void *ctx, struct hf_err *err)
{
	struct wtensor *t;
	uint64_t numel = 1, bits;

	if (!hf_utf8_valid(name, strlen(name), NULL))
		return hf_err_set(err, HF_EUTF8, "tensor name is not valid "
				  "UTF-8");
	if (!strcmp(name, "__metadata__"))
		return hf_err_set(err, HF_EINVAL, "'__metadata__' cannot "
				  "name a tensor");
	if ((unsigned)dtype >= HF_DTYPE_COUNT)
		return hf_err_set(err, HF_EINVAL, "tensor '%s': bad dtype %d",
				  name, (int)dtype);
	if (ndim < 0 || ndim > HF_TENSOR_MAX_DIMS)
		return hf_err_set(err, HF_EINVAL, "tensor '%s': %d dimensions "
				  "(at most %d)", name, ndim,
				  HF_TENSOR_MAX_DIMS);
	for (int i = 0; i < ndim; i++)
		if (shape[i] < 0 || __builtin_mul_overflow(numel,
				(uint64_t)shape[i], &numel))
			return hf_err_set(err, HF_EINVAL, "tensor '%s': bad "
					  "shape[%d] = %" PRId64, name, i,
					  shape[i]);
	bits = hf_dtype_bits(dtype);
	if (__builtin_mul_overflow(numel, bits, &numel) || numel % 8)
		return hf_err_set(err, HF_EINVAL, "tensor '%s': its elements "
				  "do not fill whole bytes or overflow", name);
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->t[i].name, name))
			return hf_err_set(err, HF_EINVAL, "tensor '%s' added "
					  "twice", name);
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct wtensor *nt = realloc(w->t, cap * sizeof(*nt));

		if (!nt)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		w->t = nt;
		w->cap = cap;
	}
	invalidate(w);
	t = &w->t[w->n];
	memset(t, 0, sizeof(*t));
	if (!(t->name = strdup(name)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	t->dtype = dtype;
	t->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		t->shape[i] = shape[i];
	t->nbytes = numel / 8;
	t->data = data;
	t->fill = fill;
	t->ctx = ctx;
	w->n++;
	return 0;
}

int hf_st_writer_add(struct hf_st_writer *w, const char *name,
		     enum hf_dtype dtype, int ndim, const int64_t *shape,
		     const void *data, struct hf_err *err)
{
	return add(w, name, dtype, ndim, shape, data, NULL, NULL, err);
}

int hf_st_writer_add_fn(struct hf_st_writer *w, const char *name,
			enum hf_dtype dtype, int ndim, const int64_t *shape,
			hf_st_fill_fn fill, void *ctx, struct hf_err *err)
{
	return add(w, name, dtype, ndim, shape, NULL, fill, ctx, err);
}

/* Descending dtype alignment, then name (bytewise, as Rust's str Ord). */
static int cmp_order(const void *a, const void *b)
{
	const struct wtensor *x = *(struct wtensor *const *)a;
	const struct wtensor *y = *(struct wtensor *const *)b;
	unsigned rx = hf_dtype_align_rank(x->dtype);
	unsigned ry = hf_dtype_align_rank(y->dtype);

	if (rx != ry)
		return rx > ry ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_meta(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_data(const void *a, const void *b)
{
	const struct wtensor *x = *(struct wtensor *const *)a;
	const struct wtensor *y = *(struct wtensor *const *)b;
	uintptr_t p = (uintptr_t)x->data, q = (uintptr_t)y->data;

	return (p > q) - (p < q);
}

/* Like save_file in the reference, refuse two tensors whose bytes
 * overlap in memory: a reader would get two copies of shared storage. */
static int check_shared(struct hf_st_writer *w, struct hf_err *err)
{
	struct wtensor **v = calloc(w->n + 1, sizeof(*v));
	size_t n = 0;
	int rc = 0;

	if (!v)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n; i++)
		if (w->t[i].data && w->t[i].nbytes)
			v[n++] = &w->t[i];
	qsort(v, n, sizeof(*v), cmp_data);
	for (size_t i = 1; i < n; i++)
		if ((uintptr_t)v[i]->data < (uintptr_t)v[i - 1]->data +
		    v[i - 1]->nbytes) {
			rc = hf_err_set(err, HF_EINVAL, "tensors '%s' and '%s' "
					"share memory; save one of them",
					v[i - 1]->name, v[i]->name);
			break;
		}
	free(v);
	return rc;
}

static int prepare(struct hf_st_writer *w, struct hf_err *err)
{
	struct sbuf b = { 0 };
	uint64_t off = 0;
	char num[64];

	int rc;

	if (w->header)
		return 0;
	if ((rc = check_shared(w, err)))
		return rc;
	w->order = calloc(w->n + 1, sizeof(*w->order));
	if (!w->order)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n; i++)
		w->order[i] = &w->t[i];
	qsort(w->order, w->n, sizeof(*w->order), cmp_order);
	/* HashMap order in the reference; sorted here to be deterministic */
	qsort(w->meta, w->nmeta, 2 * sizeof(char *), cmp_meta);

	sb_str(&b, "{");
	if (w->nmeta) {
		sb_str(&b, "\"__metadata__\":{");
		for (size_t i = 0; i < w->nmeta; i++) {
			if (i)
				sb_str(&b, ",");
			sb_json(&b, w->meta[2 * i]);
			sb_str(&b, ":");
			sb_json(&b, w->meta[2 * i + 1]);
		}
		sb_str(&b, "}");
	}
	for (size_t i = 0; i < w->n; i++) {
		const struct wtensor *t = w->order[i];

		if (i || w->nmeta)
			sb_str(&b, ",");
		sb_json(&b, t->name);
		sb_str(&b, ":{\"dtype\":\"");
		sb_str(&b, hf_dtype_name(t->dtype));
		sb_str(&b, "\",\"shape\":[");
		for (int d = 0; d < t->ndim; d++) {
			snprintf(num, sizeof(num), "%s%" PRId64, d ? "," : "",
				 t->shape[d]);
			sb_str(&b, num);
		}
		snprintf(num, sizeof(num), "],\"data_offsets\":[%" PRIu64
			 ",%" PRIu64 "]}", off, off + t->nbytes);
		sb_str(&b, num);
		off += t->nbytes;
	}
	sb_str(&b, "}");
	while (!b.oom && b.len % 8)
		sb_str(&b, " ");
	if (b.oom) {
		free(b.s);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (b.len > HF_ST_MAX_HEADER) {
		free(b.s);
		return hf_err_set(err, HF_ERANGE, "header of %zu bytes is over "
				  "the limit of %u", b.len, HF_ST_MAX_HEADER);
	}
	w->header = b.s;
	w->hlen = b.len;
	w->datalen = off;
	return 0;
}

uint64_t hf_st_writer_size(struct hf_st_writer *w)
{
	if (prepare(w, NULL))
		return 0;
	return 8 + w->hlen + w->datalen;
}

static int put(FILE *f, const void *p, size_t n, const char *name,
	       struct hf_err *err)
{
	if (n && fwrite(p, 1, n, f) != n)
		return hf_err_errno(err, "cannot write '%s'", name);
	return 0;
}

static int put_tensor(FILE *f, const struct wtensor *t, unsigned char *buf,
		      const char *name, struct hf_err *err)
{
	for (uint64_t off = 0; off < t->nbytes; off += CHUNK) {
		size_t len = t->nbytes - off < CHUNK ? (size_t)(t->nbytes - off)
						     : CHUNK;
		const void *p = buf;
		int rc;

		if (!t->fill) {
			p = (const unsigned char *)t->data + off;
		} else {
			if ((rc = t->fill(t->ctx, buf, (size_t)off, len, err)))
				return hf_err_prefix(err, "tensor '%s'",
						     t->name);
		}
		if ((rc = put(f, p, len, name, err)))
			return rc;
	}
	return 0;
}

int hf_st_writer_write_stream(struct hf_st_writer *w, FILE *f,
			      const char *name, struct hf_err *err)
{
	unsigned char len[8], *buf = NULL;
	int rc;

	if ((rc = prepare(w, err)))
		return rc;
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)w->hlen >> (8 * i));
	if ((rc = put(f, len, 8, name, err)) ||
	    (rc = put(f, w->header, w->hlen, name, err)))
		return rc;
	for (size_t i = 0; i < w->n; i++) {
		if (w->order[i]->fill && !buf && !(buf = malloc(CHUNK)))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if ((rc = put_tensor(f, w->order[i], buf, name, err)))
			break;
	}
	free(buf);
	return rc;
}

int hf_st_writer_write(struct hf_st_writer *w, const char *path,
		       struct hf_err *err)
{
	struct hf_atomic a;
	int rc;

	if ((rc = prepare(w, err)))
		return rc;
	if ((rc = hf_atomic_open(&a, path, err)))
		return rc;
	rc = hf_st_writer_write_stream(w, a.f, strcmp(path, "-") ? path :
				       "standard output", err);
	if (rc) {
		hf_atomic_abort(&a);
		return rc;
	}
	return hf_atomic_commit(&a, err);
}
