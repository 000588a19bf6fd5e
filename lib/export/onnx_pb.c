/* lib/export/onnx_pb.c: protobuf wire encoding and the ONNX ModelProto
 * writer (docs/onnx-gguf-export.md A3, A4). Nodes and graph inputs and
 * outputs are encoded as they are added; initializers are kept until
 * the write, which streams them so that no weight is copied twice. */
#include "export/onnx_pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

/* ---- wire format ---- */

void hf_pb_free(struct hf_pb *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int grow(struct hf_pb *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->oom)
		return -1;
	if (b->len + n <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	if (!(p = realloc(b->p, cap))) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void hf_pb_raw(struct hf_pb *b, const void *p, size_t n)
{
	if (!n || grow(b, n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

size_t hf_pb_varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

void hf_pb_varint(struct hf_pb *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	hf_pb_raw(b, tmp, n);
}

void hf_pb_key(struct hf_pb *b, unsigned field, unsigned wire)
{
	hf_pb_varint(b, (uint64_t)field << 3 | wire);
}

void hf_pb_int(struct hf_pb *b, unsigned field, int64_t v)
{
	hf_pb_key(b, field, HF_PB_VARINT);
	hf_pb_varint(b, (uint64_t)v);
}

void hf_pb_float(struct hf_pb *b, unsigned field, float v)
{
	uint8_t le[4];
	uint32_t u;

	memcpy(&u, &v, 4);
	for (int i = 0; i < 4; i++)
		le[i] = (uint8_t)(u >> (8 * i));
	hf_pb_key(b, field, HF_PB_I32);
	hf_pb_raw(b, le, 4);
}

void hf_pb_bytes(struct hf_pb *b, unsigned field, const void *p, size_t n)
{
	hf_pb_key(b, field, HF_PB_LEN);
	hf_pb_varint(b, n);
	hf_pb_raw(b, p, n);
}

void hf_pb_str(struct hf_pb *b, unsigned field, const char *s)
{
	hf_pb_bytes(b, field, s, strlen(s));
}

void hf_pb_msg(struct hf_pb *b, unsigned field, const struct hf_pb *sub)
{
	if (sub->oom)
		b->oom = 1;
	hf_pb_bytes(b, field, sub->p, sub->len);
}

void hf_pb_packed_int(struct hf_pb *b, unsigned field, const int64_t *v,
		      size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += hf_pb_varint_len((uint64_t)v[i]);
	hf_pb_key(b, field, HF_PB_LEN);
	hf_pb_varint(b, len);
	for (size_t i = 0; i < n; i++)
		hf_pb_varint(b, (uint64_t)v[i]);
}

void hf_pb_packed_float(struct hf_pb *b, unsigned field, const float *v,
			size_t n)
{
	hf_pb_key(b, field, HF_PB_LEN);
	hf_pb_varint(b, 4 * n);
	for (size_t i = 0; i < n; i++) {
		uint8_t le[4];
		uint32_t u;

		memcpy(&u, &v[i], 4);
		for (int k = 0; k < 4; k++)
			le[k] = (uint8_t)(u >> (8 * k));
		hf_pb_raw(b, le, 4);
	}
}

/* ---- ONNX messages ---- */

/* ModelProto */
enum { M_IR = 1, M_PRODUCER = 2, M_PRODUCER_VER = 3, M_GRAPH = 7,
       M_OPSET = 8, M_META = 14 };
/* GraphProto */
enum { G_NODE = 1, G_NAME = 2, G_INIT = 5, G_INPUT = 11, G_OUTPUT = 12 };
/* NodeProto */
enum { N_IN = 1, N_OUT = 2, N_NAME = 3, N_OP = 4, N_ATTR = 5, N_DOMAIN = 7 };
/* AttributeProto */
enum { A_NAME = 1, A_F = 2, A_I = 3, A_S = 4, A_T = 5, A_FLOATS = 7,
       A_INTS = 8, A_TYPE = 20 };
/* TensorProto */
enum { T_DIMS = 1, T_TYPE = 2, T_NAME = 8, T_RAW = 9, T_EXT = 13,
       T_LOCATION = 14 };

size_t hf_onnx_type_size(int t)
{
	switch (t) {
	case HF_ONNX_FLOAT:
	case HF_ONNX_INT32:
		return 4;
	case HF_ONNX_UINT8:
	case HF_ONNX_INT8:
	case HF_ONNX_BOOL:
		return 1;
	case HF_ONNX_INT64:
		return 8;
	case HF_ONNX_FLOAT16:
		return 2;
	default:
		return 0;
	}
}

struct init {
	char *name;
	int type, ndim;
	int64_t dims[8];
	void *data;
	size_t nbytes;
	uint64_t ext_off;	/* offset in the side file, when there */
	int ext;
};

struct hf_onnx {
	char *name;
	struct hf_pb opsets, meta, nodes, io;
	size_t nnodes;
	struct init *inits;
	size_t ninits, capinits;
	uint64_t init_bytes;
	int bad;		/* a builder call failed */
	char why[256];		/* its reason */
};

int hf_onnx_new(struct hf_onnx **out, const char *name, struct hf_err *err)
{
	struct hf_onnx *o = calloc(1, sizeof(*o));

	*out = NULL;
	if (!o || !(o->name = strdup(name))) {
		free(o);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	*out = o;
	return 0;
}

void hf_onnx_free(struct hf_onnx *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->ninits; i++) {
		free(o->inits[i].name);
		free(o->inits[i].data);
	}
	free(o->inits);
	hf_pb_free(&o->opsets);
	hf_pb_free(&o->meta);
	hf_pb_free(&o->nodes);
	hf_pb_free(&o->io);
	free(o->name);
	free(o);
}

static int bad(struct hf_onnx *o, const char *why)
{
	if (!o->bad) {
		o->bad = 1;
		snprintf(o->why, sizeof(o->why), "%s", why);
	}
	return -1;
}

static int check(struct hf_onnx *o, const struct hf_pb *b)
{
	return b->oom ? bad(o, "out of memory") : o->bad ? -1 : 0;
}

int hf_onnx_opset(struct hf_onnx *o, const char *domain, int64_t version)
{
	struct hf_pb m = { 0 };

	hf_pb_str(&m, 1, domain);
	hf_pb_int(&m, 2, version);
	hf_pb_msg(&o->opsets, M_OPSET, &m);
	hf_pb_free(&m);
	return check(o, &o->opsets);
}

int hf_onnx_meta(struct hf_onnx *o, const char *key, const char *value)
{
	struct hf_pb m = { 0 };

	hf_pb_str(&m, 1, key);
	hf_pb_str(&m, 2, value);
	hf_pb_msg(&o->meta, M_META, &m);
	hf_pb_free(&m);
	return check(o, &o->meta);
}

/* ValueInfoProto { name, TypeProto { Tensor { elem_type, shape } } } */
static int value_info(struct hf_onnx *o, unsigned field, const char *name,
		      int type, int ndim, const struct hf_onnx_dim *dims)
{
	struct hf_pb vi = { 0 }, tp = { 0 }, tt = { 0 }, sh = { 0 }, d = { 0 };

	if (!hf_onnx_type_size(type) || ndim < 0)
		return bad(o, "graph input or output of a bad type");
	for (int i = 0; i < ndim; i++) {
		d.len = 0;
		if (dims[i].param)
			hf_pb_str(&d, 2, dims[i].param);
		else
			hf_pb_int(&d, 1, dims[i].v);
		hf_pb_msg(&sh, 1, &d);
	}
	hf_pb_int(&tt, 1, type);
	hf_pb_msg(&tt, 2, &sh);
	hf_pb_msg(&tp, 1, &tt);
	hf_pb_str(&vi, 1, name);
	hf_pb_msg(&vi, 2, &tp);
	hf_pb_msg(&o->io, field, &vi);
	hf_pb_free(&vi);
	hf_pb_free(&tp);
	hf_pb_free(&tt);
	hf_pb_free(&sh);
	hf_pb_free(&d);
	return check(o, &o->io);
}

int hf_onnx_input(struct hf_onnx *o, const char *name, int type, int ndim,
		  const struct hf_onnx_dim *dims)
{
	return value_info(o, G_INPUT, name, type, ndim, dims);
}

int hf_onnx_output(struct hf_onnx *o, const char *name, int type, int ndim,
		   const struct hf_onnx_dim *dims)
{
	return value_info(o, G_OUTPUT, name, type, ndim, dims);
}

static uint64_t numel(int ndim, const int64_t *dims)
{
	uint64_t n = 1;

	for (int i = 0; i < ndim; i++)
		n *= (uint64_t)dims[i];
	return n;
}

int hf_onnx_init_own(struct hf_onnx *o, const char *name, int type, int ndim,
		     const int64_t *dims, void *data, size_t nbytes)
{
	struct init *in;

	if (ndim < 0 || ndim > 8 || !hf_onnx_type_size(type) ||
	    numel(ndim, dims) * hf_onnx_type_size(type) != nbytes) {
		free(data);
		return bad(o, "initializer whose size does not match its shape");
	}
	for (int i = 0; i < ndim; i++)
		if (dims[i] < 0) {
			free(data);
			return bad(o, "initializer with a negative dim");
		}
	if (o->ninits == o->capinits) {
		size_t cap = o->capinits ? 2 * o->capinits : 64;
		struct init *p = realloc(o->inits, cap * sizeof(*p));

		if (!p) {
			free(data);
			return bad(o, "out of memory");
		}
		o->inits = p;
		o->capinits = cap;
	}
	in = &o->inits[o->ninits];
	memset(in, 0, sizeof(*in));
	if (!(in->name = strdup(name))) {
		free(data);
		return bad(o, "out of memory");
	}
	in->type = type;
	in->ndim = ndim;
	if (ndim)
		memcpy(in->dims, dims, (size_t)ndim * sizeof(int64_t));
	in->data = data;
	in->nbytes = nbytes;
	o->ninits++;
	o->init_bytes += nbytes;
	return 0;
}

int hf_onnx_init(struct hf_onnx *o, const char *name, int type, int ndim,
		 const int64_t *dims, const void *data, size_t nbytes)
{
	void *p = malloc(nbytes ? nbytes : 1);

	if (!p)
		return bad(o, "out of memory");
	if (nbytes)
		memcpy(p, data, nbytes);
	return hf_onnx_init_own(o, name, type, ndim, dims, p, nbytes);
}

/* TensorProto of a small constant, with its bytes in raw_data. */
static void tensor_msg(struct hf_pb *b, const struct hf_onnx_tensor *t)
{
	uint64_t n = numel(t->ndim, t->dims);

	hf_pb_packed_int(b, T_DIMS, t->dims, (size_t)t->ndim);
	hf_pb_int(b, T_TYPE, t->type);
	hf_pb_bytes(b, T_RAW, t->data, n * hf_onnx_type_size(t->type));
}

static int attr_msg(struct hf_onnx *o, struct hf_pb *b,
		    const struct hf_onnx_attr *a)
{
	struct hf_pb t = { 0 };

	hf_pb_str(b, A_NAME, a->name);
	switch (a->type) {
	case HF_ONNX_ATTR_FLOAT:
		hf_pb_float(b, A_F, a->f);
		break;
	case HF_ONNX_ATTR_INT:
		hf_pb_int(b, A_I, a->i);
		break;
	case HF_ONNX_ATTR_STRING:
		hf_pb_str(b, A_S, a->s);
		break;
	case HF_ONNX_ATTR_TENSOR:
		if (!a->t || !hf_onnx_type_size(a->t->type))
			return bad(o, "tensor attribute without a tensor");
		tensor_msg(&t, a->t);
		hf_pb_msg(b, A_T, &t);
		hf_pb_free(&t);
		break;
	case HF_ONNX_ATTR_FLOATS:
		hf_pb_packed_float(b, A_FLOATS, a->floats, a->n);
		break;
	case HF_ONNX_ATTR_INTS:
		hf_pb_packed_int(b, A_INTS, a->ints, a->n);
		break;
	default:
		return bad(o, "attribute of an unknown type");
	}
	hf_pb_int(b, A_TYPE, a->type);
	return 0;
}

int hf_onnx_node(struct hf_onnx *o, const char *op, const char *domain,
		 const char *name, const char *const *in, size_t nin,
		 const char *const *out, size_t nout,
		 const struct hf_onnx_attr *attrs, size_t nattr)
{
	struct hf_pb n = { 0 }, a = { 0 };
	char auto_name[32];

	if (o->bad)
		return -1;
	for (size_t i = 0; i < nin; i++)
		hf_pb_str(&n, N_IN, in[i] ? in[i] : "");
	for (size_t i = 0; i < nout; i++) {
		if (!out[i] || !*out[i]) {
			hf_pb_free(&n);
			return bad(o, "node output without a name");
		}
		hf_pb_str(&n, N_OUT, out[i]);
	}
	if (!name) {
		snprintf(auto_name, sizeof(auto_name), "n%zu", o->nnodes);
		name = auto_name;
	}
	hf_pb_str(&n, N_NAME, name);
	hf_pb_str(&n, N_OP, op);
	for (size_t i = 0; i < nattr; i++) {
		a.len = 0;
		if (attr_msg(o, &a, &attrs[i]))
			break;
		hf_pb_msg(&n, N_ATTR, &a);
	}
	if (domain && *domain)
		hf_pb_str(&n, N_DOMAIN, domain);
	if (!o->bad)
		hf_pb_msg(&o->nodes, G_NODE, &n);
	hf_pb_free(&n);
	hf_pb_free(&a);
	if (check(o, &o->nodes))
		return -1;
	o->nnodes++;
	return 0;
}

size_t hf_onnx_node_count(const struct hf_onnx *o)
{
	return o->nnodes;
}

uint64_t hf_onnx_init_bytes(const struct hf_onnx *o)
{
	return o->init_bytes;
}

/* ---- writing ---- */

/* The TensorProto of initializer in up to (not including) its raw data:
 * with inline data, that ends with raw_data's key and length, and the
 * bytes follow; external, it is whole. */
static void init_head(struct hf_pb *b, const struct init *in,
		      const char *location)
{
	hf_pb_packed_int(b, T_DIMS, in->dims, (size_t)in->ndim);
	hf_pb_int(b, T_TYPE, in->type);
	hf_pb_str(b, T_NAME, in->name);
	if (in->ext) {
		struct hf_pb e = { 0 };
		char num[32];

		hf_pb_str(&e, 1, "location");
		hf_pb_str(&e, 2, location);
		hf_pb_msg(b, T_EXT, &e);
		e.len = 0;
		snprintf(num, sizeof(num), "%llu",
			 (unsigned long long)in->ext_off);
		hf_pb_str(&e, 1, "offset");
		hf_pb_str(&e, 2, num);
		hf_pb_msg(b, T_EXT, &e);
		e.len = 0;
		snprintf(num, sizeof(num), "%zu", in->nbytes);
		hf_pb_str(&e, 1, "length");
		hf_pb_str(&e, 2, num);
		hf_pb_msg(b, T_EXT, &e);
		hf_pb_free(&e);
		hf_pb_int(b, T_LOCATION, 1);
	} else {
		hf_pb_key(b, T_RAW, HF_PB_LEN);
		hf_pb_varint(b, in->nbytes);
	}
}

static int put(FILE *f, const void *p, size_t n, const char *path,
	       struct hf_err *err)
{
	if (n && fwrite(p, 1, n, f) != n)
		return hf_err_errno(err, "cannot write '%s'", path);
	return 0;
}

/* The side file: each external initializer at the next multiple of
 * HF_ONNX_EXT_ALIGN. */
static int write_data(struct hf_onnx *o, const char *dpath,
		      struct hf_atomic *a, struct hf_err *err)
{
	static const uint8_t zero[HF_ONNX_EXT_ALIGN];
	uint64_t off = 0;
	int rc;

	if ((rc = hf_atomic_open(a, dpath, err)))
		return rc;
	for (size_t i = 0; i < o->ninits; i++) {
		struct init *in = &o->inits[i];
		uint64_t pad;

		if (!in->ext)
			continue;
		pad = (HF_ONNX_EXT_ALIGN - off % HF_ONNX_EXT_ALIGN) %
		      HF_ONNX_EXT_ALIGN;
		if ((rc = put(a->f, zero, (size_t)pad, dpath, err)) ||
		    (rc = put(a->f, in->data, in->nbytes, dpath, err)))
			return rc;
		in->ext_off = off + pad;
		off += pad + in->nbytes;
	}
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int hf_onnx_write(struct hf_onnx *o, const char *path, int64_t ir,
		  int external, struct hf_err *err)
{
	struct hf_atomic data = { 0 }, a = { 0 };
	struct hf_pb head = { 0 }, gname = { 0 }, *ih = NULL;
	char *dpath = NULL;
	const char *loc;
	uint64_t glen;
	size_t nbig = 0;
	int rc = 0;

	if (o->bad)
		return hf_err_set(err, strcmp(o->why, "out of memory") ?
					       HF_EINVAL : HF_ENOMEM,
				  "%s: %s", path, o->why);
	if (!(dpath = malloc(strlen(path) + 6)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	sprintf(dpath, "%s_data", path);
	loc = base_name(dpath);
	if (o->init_bytes > HF_ONNX_EXT_AUTO)
		external = 1;
	for (size_t i = 0; i < o->ninits; i++) {
		o->inits[i].ext = external &&
				  o->inits[i].nbytes >= HF_ONNX_EXT_MIN;
		nbig += o->inits[i].ext;
	}
	if (nbig && (rc = write_data(o, dpath, &data, err)))
		goto fail;
	if (!(ih = calloc(o->ninits ? o->ninits : 1, sizeof(*ih)))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	/* GraphProto's length: every part is known before writing */
	hf_pb_str(&gname, G_NAME, o->name);
	glen = o->nodes.len + gname.len + o->io.len;
	for (size_t i = 0; i < o->ninits; i++) {
		uint64_t tlen;

		init_head(&ih[i], &o->inits[i], loc);
		if (ih[i].oom)
			break;
		tlen = ih[i].len + (o->inits[i].ext ? 0 : o->inits[i].nbytes);
		glen += hf_pb_varint_len((uint64_t)G_INIT << 3 | HF_PB_LEN) +
			hf_pb_varint_len(tlen) + tlen;
	}
	hf_pb_int(&head, M_IR, ir);
	hf_pb_str(&head, M_PRODUCER, "hf");
	hf_pb_str(&head, M_PRODUCER_VER, "1");
	hf_pb_raw(&head, o->opsets.p, o->opsets.len);
	hf_pb_raw(&head, o->meta.p, o->meta.len);
	hf_pb_key(&head, M_GRAPH, HF_PB_LEN);
	hf_pb_varint(&head, glen);
	for (size_t i = 0; i < o->ninits; i++)
		head.oom |= ih[i].oom;
	if (head.oom || gname.oom) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	if (!external && glen + head.len >= ((uint64_t)1 << 31) - 1) {
		rc = hf_err_set(err, HF_EINTERNAL,
				"%s: the graph is %llu bytes without its weights, "
				"past protobuf's 2 GiB", path,
				(unsigned long long)glen);
		goto fail;
	}
	if ((rc = hf_atomic_open(&a, path, err)) ||
	    (rc = put(a.f, head.p, head.len, path, err)) ||
	    (rc = put(a.f, o->nodes.p, o->nodes.len, path, err)) ||
	    (rc = put(a.f, gname.p, gname.len, path, err)))
		goto fail;
	for (size_t i = 0; i < o->ninits; i++) {
		struct hf_pb k = { 0 };
		const struct init *in = &o->inits[i];
		uint64_t tlen = ih[i].len + (in->ext ? 0 : in->nbytes);

		hf_pb_key(&k, G_INIT, HF_PB_LEN);
		hf_pb_varint(&k, tlen);
		if (k.oom) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto fail;
		}
		rc = put(a.f, k.p, k.len, path, err);
		hf_pb_free(&k);
		if (rc || (rc = put(a.f, ih[i].p, ih[i].len, path, err)) ||
		    (!in->ext &&
		     (rc = put(a.f, in->data, in->nbytes, path, err))))
			goto fail;
	}
	if ((rc = put(a.f, o->io.p, o->io.len, path, err)))
		goto fail;
	if (nbig && (rc = hf_atomic_commit(&data, err)))
		goto fail;
	rc = hf_atomic_commit(&a, err);
fail:
	if (rc) {
		hf_atomic_abort(&a);
		hf_atomic_abort(&data);
	}
	for (size_t i = 0; ih && i < o->ninits; i++)
		hf_pb_free(&ih[i]);
	free(ih);
	hf_pb_free(&head);
	hf_pb_free(&gname);
	free(dpath);
	return rc;
}
