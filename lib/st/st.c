/* lib/st/st.c: map one safetensors file, validate its header as the
 * reference reader does (safetensors/src/tensor.rs, read_metadata and
 * Metadata::validate) and hand out zero-copy tensor views. */
#include "st/st.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/utf8.h"

struct hf_st {
	char *path;
	struct hf_map map;	/* zeroed when the caller owns the bytes */
	const unsigned char *base;
	size_t size;
	size_t hlen;			/* N */
	size_t n;
	struct hf_tensor *tensors;	/* file order */
	const struct hf_tensor **by_name;
	size_t nmeta;
	char **meta;		/* key, value, key, value ... by key */
	char *names;		/* all tensor names, NUL-separated */
};

/* A tensor while parsing: its header position and offsets. */
struct raw {
	size_t order;
	uint64_t begin, end, nbytes;
	struct hf_tensor t;
};

uint64_t hf_tensor_numel(const struct hf_tensor *t)
{
	uint64_t n = 1;

	for (int i = 0; i < t->ndim; i++)
		n *= (uint64_t)t->shape[i];
	return n;
}

static int cmp_raw(const void *a, const void *b)
{
	const struct raw *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_name(const void *a, const void *b)
{
	const struct hf_tensor *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int cmp_meta(const void *a, const void *b)
{
	char *const *x = a, *const *y = b;

	return strcmp(x[0], y[0]);
}

static int get_u64(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* Fill r from one header entry; errors name the tensor and the file. */
static int parse_tensor(struct raw *r, const char *name, const json_t *v,
			const char *path, struct hf_err *err)
{
	const json_t *dt, *shape, *offs, *x;
	uint64_t numel = 1, bits;
	size_t i;
	int code;

	if (!json_is_object(v))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' in '%s': "
				  "header entry is not a JSON object", name,
				  path);
	dt = json_object_get(v, "dtype");
	shape = json_object_get(v, "shape");
	offs = json_object_get(v, "data_offsets");
	if (!dt || !shape || !offs)
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' in '%s': "
				  "missing key '%s'", name, path,
				  !dt ? "dtype" : !shape ? "shape" :
				  "data_offsets");
	if (!json_is_string(dt))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' in '%s': "
				  "dtype must be a string", name, path);
	code = hf_dtype_parse(json_string_value(dt));
	if (code < 0)
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' in '%s': "
				  "unknown dtype '%s'", name, path,
				  json_string_value(dt));
	r->t.dtype = (enum hf_dtype)code;
	if (!json_is_array(shape))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' in '%s': "
				  "shape must be an array", name, path);
	if (json_array_size(shape) > HF_TENSOR_MAX_DIMS)
		return hf_err_set(err, HF_EUNSUPPORTED, "tensor '%s' in '%s' "
				  "has %zu dimensions; at most %d are "
				  "supported", name, path,
				  json_array_size(shape), HF_TENSOR_MAX_DIMS);
	r->t.ndim = (int)json_array_size(shape);
	json_array_foreach(shape, i, x) {
		uint64_t d;

		if (get_u64(x, &d))
			return hf_err_set(err, HF_EFORMAT, "tensor '%s' in "
					  "'%s': shape[%zu] is not a "
					  "non-negative integer", name, path,
					  i);
		r->t.shape[i] = (int64_t)d;
		if (__builtin_mul_overflow(numel, d, &numel))
			return hf_err_set(err, HF_EFORMAT, "tensor '%s' in "
					  "'%s': shape overflows 64 bits",
					  name, path);
	}
	if (!json_is_array(offs) || json_array_size(offs) != 2 ||
	    get_u64(json_array_get(offs, 0), &r->begin) ||
	    get_u64(json_array_get(offs, 1), &r->end))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' in '%s': "
				  "data_offsets must be [begin, end], two "
				  "non-negative integers", name, path);
	bits = hf_dtype_bits(r->t.dtype);
	if (__builtin_mul_overflow(numel, bits, &r->nbytes))
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' in '%s': "
				  "size overflows 64 bits", name, path);
	if (r->nbytes % 8)
		return hf_err_set(err, HF_EFORMAT, "tensor '%s' in '%s': "
				  "%" PRIu64 " elements of %s do not fill "
				  "whole bytes", name, path, numel,
				  hf_dtype_name(r->t.dtype));
	r->nbytes /= 8;
	return 0;
}

static int parse_meta(struct hf_st *st, const json_t *m, struct hf_err *err)
{
	const char *k;
	json_t *v;
	size_t i = 0;

	if (json_is_null(m))
		return 0;
	if (!json_is_object(m))
		return hf_err_set(err, HF_EFORMAT, "'%s': __metadata__ must "
				  "be a JSON object", st->path);
	st->meta = calloc(2 * json_object_size(m) + 1, sizeof(char *));
	if (!st->meta)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	json_object_foreach((json_t *)m, k, v) {
		if (!json_is_string(v))
			return hf_err_set(err, HF_EFORMAT, "'%s': "
					  "__metadata__ key '%s' must have a "
					  "string value", st->path, k);
		st->meta[2 * i] = strdup(k);
		st->meta[2 * i + 1] = strdup(json_string_value(v));
		st->nmeta = ++i;
		if (!st->meta[2 * i - 2] || !st->meta[2 * i - 1])
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	qsort(st->meta, st->nmeta, 2 * sizeof(char *), cmp_meta);
	return 0;
}

struct span {
	const char *p;
	size_t len;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* jansson reports a duplicate key without naming it: find the first
 * top-level key spelled twice in the (well-formed) JSON text h. */
static int find_dup_key(const char *h, size_t n, char *out, size_t cap)
{
	struct span *k = NULL;
	size_t nk = 0, ck = 0, i = 0;
	int depth = 0, found = 0;

	while (i < n) {
		char c = h[i];

		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == '"') {
			size_t j = i + 1, e;

			while (j < n && h[j] != '"')
				j += h[j] == '\\' ? 2 : 1;
			e = j + 1;
			while (e < n && (h[e] == ' ' || h[e] == '\t' ||
			       h[e] == '\n' || h[e] == '\r'))
				e++;
			if (depth == 1 && e < n && h[e] == ':') {
				if (nk == ck) {
					struct span *nn = realloc(k, (ck = ck ?
						2 * ck : 64) * sizeof(*k));

					if (!nn)
						break;
					k = nn;
				}
				k[nk].p = h + i + 1;
				k[nk++].len = j - i - 1;
			}
			i = j;
		}
		i++;
	}
	if (k)
		qsort(k, nk, sizeof(*k), cmp_span);
	for (i = 1; i < nk; i++)
		if (!cmp_span(&k[i - 1], &k[i])) {
			snprintf(out, cap, "%.*s", (int)(k[i].len < 200 ?
				 k[i].len : 200), k[i].p);
			found = 1;
			break;
		}
	free(k);
	return found;
}

void hf_shape_str(char *buf, size_t cap, const int64_t *shape, int ndim)
{
	size_t n = 0;

	n += (size_t)snprintf(buf, cap, "[");
	for (int i = 0; i < ndim && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64,
				      i ? ", " : "", shape[i]);
	if (n < cap)
		snprintf(buf + n, cap - n, "]");
}

/* Offsets tile the data section exactly, in begin order (rule 3), each
 * tensor's byte count matches its dtype and shape (rule 4), and the last
 * ends at the end of the file (rule 5). */
static int check_layout(struct hf_st *st, struct raw *r, size_t n,
			struct hf_err *err)
{
	uint64_t start = 0, datalen = st->size - 8 - st->hlen;
	const char *prev = NULL;

	for (size_t i = 0; i < n; i++) {
		const char *name = r[i].t.name;
		char shp[160];

		if (r[i].end < r[i].begin)
			return hf_err_set(err, HF_EFORMAT, "tensor '%s' in "
				"'%s': data_offsets [%" PRIu64 ", %" PRIu64
				"] end before they begin", name, st->path,
				r[i].begin, r[i].end);
		if (r[i].begin > start)
			return hf_err_set(err, HF_EFORMAT, "tensor '%s' in "
				"'%s' begins at data byte %" PRIu64 ", leaving "
				"a hole after byte %" PRIu64 "%s%s%s", name,
				st->path, r[i].begin, start,
				prev ? " (the end of '" : "",
				prev ? prev : "", prev ? "')" : "");
		if (r[i].begin < start)
			return hf_err_set(err, HF_EFORMAT, "tensor '%s' in "
				"'%s' begins at data byte %" PRIu64 ", "
				"overlapping '%s', which ends at byte %" PRIu64,
				name, st->path, r[i].begin, prev, start);
		if (r[i].end - r[i].begin != r[i].nbytes) {
			hf_shape_str(shp, sizeof(shp), r[i].t.shape, r[i].t.ndim);
			return hf_err_set(err, HF_EFORMAT, "tensor '%s' in "
				"'%s': dtype %s and shape %s need %" PRIu64
				" bytes, but data_offsets [%" PRIu64 ", %"
				PRIu64 "] hold %" PRIu64, name, st->path,
				hf_dtype_name(r[i].t.dtype), shp, r[i].nbytes,
				r[i].begin, r[i].end, r[i].end - r[i].begin);
		}
		if (r[i].end > datalen)
			return hf_err_set(err, HF_EFORMAT, "tensor '%s' ends "
				"at byte %" PRIu64 ", past the end of '%s' (%zu "
				"bytes)", name, 8 + st->hlen + r[i].end,
				st->path, st->size);
		start = r[i].end;
		prev = name;
	}
	if (start != datalen)
		return hf_err_set(err, HF_EFORMAT, "'%s' has %" PRIu64
			" byte(s) after the end of the last tensor%s%s%s "
			"(byte %" PRIu64 " of %zu)", st->path, datalen - start,
			prev ? " '" : "", prev ? prev : "", prev ? "'" : "",
			8 + st->hlen + start, st->size);
	return 0;
}

static int parse(struct hf_st *st, struct hf_err *err)
{
	const unsigned char *b = st->base;
	struct raw *r = NULL;
	json_t *root = NULL;
	json_error_t je;
	const char *key;
	json_t *v;
	size_t bad, i, namelen = 0;
	uint64_t n;
	char *p;
	int rc = 0;

	if (st->size < 8)
		return hf_err_set(err, HF_EFORMAT, "'%s' is too short for a "
				  "safetensors file (%zu bytes; the header "
				  "length alone takes 8)", st->path, st->size);
	n = 0;
	for (i = 0; i < 8; i++)
		n |= (uint64_t)b[i] << (8 * i);
	if (n > HF_ST_MAX_HEADER)
		return hf_err_set(err, HF_EFORMAT, "'%s': header length %"
				  PRIu64 " is over the limit of %u bytes",
				  st->path, n, HF_ST_MAX_HEADER);
	if (n > st->size - 8)
		return hf_err_set(err, HF_EFORMAT, "'%s': header length %"
				  PRIu64 " points past the end of the file "
				  "(%zu bytes)", st->path, n, st->size);
	st->hlen = (size_t)n;
	if (!hf_utf8_valid((const char *)b + 8, st->hlen, &bad))
		return hf_err_set(err, HF_EUTF8, "'%s': header is not valid "
				  "UTF-8 at byte %zu", st->path, 8 + bad);
	/* The format says the header starts with '{', but the reference
	 * reader leaves that check out (serde_json skips whitespace): a
	 * non-object is caught below. */
	root = json_loadb((const char *)b + 8, st->hlen,
			  JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		char dup[256];

		if (json_error_code(&je) == json_error_duplicate_key &&
		    find_dup_key((const char *)b + 8, st->hlen, dup,
				 sizeof(dup)))
			return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' "
					  "appears twice in the header",
					  st->path, dup);
		return hf_err_set(err, HF_EFORMAT, "'%s': header is not valid "
				  "JSON at byte %zu: %s", st->path,
				  8 + (size_t)je.position, je.text);
	}
	if (!json_is_object(root)) {
		rc = hf_err_set(err, HF_EFORMAT, "'%s': header is not a JSON "
				"object", st->path);
		goto fail;
	}
	r = calloc(json_object_size(root) + 1, sizeof(*r));
	if (!r) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "__metadata__")) {
			if ((rc = parse_meta(st, v, err)))
				goto fail;
			continue;
		}
		r[st->n].order = st->n;
		r[st->n].t.name = key;	/* jansson's until copied below */
		if ((rc = parse_tensor(&r[st->n], key, v, st->path, err)))
			goto fail;
		namelen += strlen(key) + 1;
		st->n++;
	}
	qsort(r, st->n, sizeof(*r), cmp_raw);
	if ((rc = check_layout(st, r, st->n, err)))
		goto fail;

	st->tensors = calloc(st->n + 1, sizeof(*st->tensors));
	st->by_name = calloc(st->n + 1, sizeof(*st->by_name));
	st->names = malloc(namelen + 1);
	if (!st->tensors || !st->by_name || !st->names) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	p = st->names;
	for (i = 0; i < st->n; i++) {
		size_t len = strlen(r[i].t.name) + 1;
		struct hf_tensor *t = &st->tensors[i];

		*t = r[i].t;
		memcpy(p, r[i].t.name, len);
		t->name = p;
		p += len;
		t->nbytes = (size_t)r[i].nbytes;
		t->data = t->nbytes ? b + 8 + st->hlen + r[i].begin : NULL;
		st->by_name[i] = t;
	}
	qsort(st->by_name, st->n, sizeof(*st->by_name), cmp_name);
	/* jansson rejected duplicate keys already; keep the invariant */
	for (i = 1; i < st->n; i++)
		if (!strcmp(st->by_name[i - 1]->name, st->by_name[i]->name)) {
			rc = hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' "
					"appears twice", st->path,
					st->by_name[i]->name);
			goto fail;
		}
fail:
	free(r);
	json_decref(root);
	return rc;
}

static int open_common(struct hf_st **out, struct hf_st *st,
		       struct hf_err *err)
{
	int rc = parse(st, err);

	if (rc) {
		hf_st_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

int hf_st_open(struct hf_st **out, const char *path, struct hf_err *err)
{
	struct hf_st *st = calloc(1, sizeof(*st));
	int rc;

	*out = NULL;
	if (!st || !(st->path = strdup(path))) {
		free(st);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if ((rc = hf_map_open(&st->map, path, err))) {
		hf_st_free(st);
		return rc;
	}
	st->base = st->map.data;
	st->size = st->map.size;
	return open_common(out, st, err);
}

int hf_st_open_buf(struct hf_st **out, const void *buf, size_t len,
		   const char *name, struct hf_err *err)
{
	struct hf_st *st = calloc(1, sizeof(*st));

	*out = NULL;
	if (!st || !(st->path = strdup(name))) {
		free(st);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	st->base = buf;
	st->size = len;
	return open_common(out, st, err);
}

void hf_st_free(struct hf_st *st)
{
	if (!st)
		return;
	hf_map_close(&st->map);
	for (size_t i = 0; i < 2 * st->nmeta; i++)
		free(st->meta[i]);
	free(st->meta);
	free(st->tensors);
	free(st->by_name);
	free(st->names);
	free(st->path);
	free(st);
}

const char *hf_st_path(const struct hf_st *st)
{
	return st->path;
}

size_t hf_st_count(const struct hf_st *st)
{
	return st->n;
}

const struct hf_tensor *hf_st_tensor(const struct hf_st *st, size_t i)
{
	return i < st->n ? &st->tensors[i] : NULL;
}

const struct hf_tensor *hf_st_get(const struct hf_st *st, const char *name)
{
	struct hf_tensor key = { .name = name };
	const struct hf_tensor *kp = &key, *const *hit;

	hit = bsearch(&kp, st->by_name, st->n, sizeof(*st->by_name),
		      cmp_name);
	return hit ? *hit : NULL;
}

size_t hf_st_meta_count(const struct hf_st *st)
{
	return st->nmeta;
}

void hf_st_meta(const struct hf_st *st, size_t i, const char **key,
		const char **value)
{
	*key = i < st->nmeta ? st->meta[2 * i] : NULL;
	*value = i < st->nmeta ? st->meta[2 * i + 1] : NULL;
}

const char *hf_st_meta_get(const struct hf_st *st, const char *key)
{
	for (size_t i = 0; i < st->nmeta; i++)
		if (!strcmp(st->meta[2 * i], key))
			return st->meta[2 * i + 1];
	return NULL;
}

const void *hf_st_base(const struct hf_st *st)
{
	return st->base;
}

size_t hf_st_size(const struct hf_st *st)
{
	return st->size;
}

size_t hf_st_header_len(const struct hf_st *st)
{
	return st->hlen;
}
