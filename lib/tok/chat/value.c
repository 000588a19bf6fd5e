/* lib/tok/chat/value.c: the values templates compute with, printed the way
 * Python prints them (str, repr, json.dumps). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/chat/jinja.h"

struct jv jv_none_v = { .type = JV_NONE, .refs = -1 };
struct jv jv_true_v = { .type = JV_BOOL, .refs = -1, .u.b = 1 };
struct jv jv_false_v = { .type = JV_BOOL, .refs = -1, .u.b = 0 };
struct jv jv_undef_v = { .type = JV_UNDEF, .refs = -1 };

/* ---- buffers ---- */

static int jbuf_grow(struct jbuf *b, size_t more)
{
	size_t want;
	char *s;

	if (b->oom)
		return -1;
	if (more > JJ_MAX_OUTPUT || b->n + more > JJ_MAX_OUTPUT) {
		b->oom = 2;
		return -1;
	}
	want = b->n + more + 1;
	if (want <= b->cap)
		return 0;
	if (want < b->cap * 2)
		want = b->cap * 2;
	if (want < 64)
		want = 64;
	s = realloc(b->s, want);
	if (!s) {
		b->oom = 1;
		return -1;
	}
	b->s = s;
	b->cap = want;
	return 0;
}

void jbuf_add(struct jbuf *b, const char *s, size_t n)
{
	if (jbuf_grow(b, n))
		return;
	if (n)
		memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

void jbuf_adds(struct jbuf *b, const char *s)
{
	jbuf_add(b, s, strlen(s));
}

void jbuf_addc(struct jbuf *b, char c)
{
	jbuf_add(b, &c, 1);
}

void jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		jbuf_add(b, tmp, n);
		return;
	}
	if (jbuf_grow(b, n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->n, n + 1, fmt, ap);
	va_end(ap);
	b->n += n;
}

struct jv *jbuf_take(struct jbuf *b)
{
	struct jv *v;

	if (b->oom) {
		jbuf_free(b);
		return NULL;
	}
	if (!b->s)
		return jv_str("", 0);
	v = jv_str_own(b->s, b->n);
	if (!v)
		free(b->s);
	b->s = NULL;
	b->n = b->cap = 0;
	return v;
}

void jbuf_free(struct jbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->n = b->cap = 0;
}

/* ---- construction ---- */

static struct jv *jv_new(int type)
{
	struct jv *v = calloc(1, sizeof(*v));

	if (v) {
		v->type = type;
		v->refs = 1;
	}
	return v;
}

struct jv *jv_ref(struct jv *v)
{
	if (v && v->refs >= 0)
		v->refs++;
	return v;
}

void jv_unref(struct jv *v)
{
	size_t i;

	if (!v || v->refs < 0 || --v->refs > 0)
		return;
	switch (v->type) {
	case JV_STR:
		free(v->u.str.s);
		break;
	case JV_LIST:
		for (i = 0; i < v->u.list.n; i++)
			jv_unref(v->u.list.v[i]);
		free(v->u.list.v);
		break;
	case JV_DICT:
	case JV_NS:
		for (i = 0; i < v->u.dict.n; i++) {
			jv_unref(v->u.dict.k[i]);
			jv_unref(v->u.dict.v[i]);
		}
		free(v->u.dict.k);
		free(v->u.dict.v);
		break;
	case JV_FUNC:
		jv_unref(v->u.func.self);
		if (v->u.func.cell && --v->u.func.cell->refs == 0)
			free(v->u.func.cell);
		break;
	case JV_UNDEF:
		free(v->u.undef.hint);
		break;
	}
	free(v);
}

struct jv *jv_bool(int b)
{
	return b ? JV_TRUE_P : JV_FALSE_P;
}

struct jv *jv_int(int64_t i)
{
	struct jv *v = jv_new(JV_INT);

	if (v)
		v->u.i = i;
	return v;
}

struct jv *jv_float(double f)
{
	struct jv *v = jv_new(JV_FLOAT);

	if (v)
		v->u.f = f;
	return v;
}

struct jv *jv_str_own(char *s, size_t len)
{
	struct jv *v = jv_new(JV_STR);

	if (!v)
		return NULL;
	v->u.str.s = s;
	v->u.str.len = len;
	return v;
}

struct jv *jv_str(const char *s, size_t len)
{
	char *c = malloc(len + 1);
	struct jv *v;

	if (!c)
		return NULL;
	if (len)
		memcpy(c, s, len);
	c[len] = 0;
	v = jv_str_own(c, len);
	if (!v)
		free(c);
	return v;
}

struct jv *jv_strz(const char *s)
{
	return jv_str(s, strlen(s));
}

struct jv *jv_list(int tuple)
{
	struct jv *v = jv_new(JV_LIST);

	if (v)
		v->u.list.tuple = tuple;
	return v;
}

int jv_list_push(struct jv *l, struct jv *item)
{
	if (!item)
		return -1;
	if (l->u.list.n == l->u.list.cap) {
		size_t cap = l->u.list.cap ? l->u.list.cap * 2 : 4;
		struct jv **nv;

		if (l->u.list.n >= JJ_MAX_ITEMS) {
			jv_unref(item);
			return -1;
		}
		nv = realloc(l->u.list.v, cap * sizeof(*nv));
		if (!nv) {
			jv_unref(item);
			return -1;
		}
		l->u.list.v = nv;
		l->u.list.cap = cap;
	}
	l->u.list.v[l->u.list.n++] = item;
	return 0;
}

struct jv *jv_dict(int type)
{
	return jv_new(type);
}

static long dict_find(const struct jv *d, const struct jv *k)
{
	for (size_t i = 0; i < d->u.dict.n; i++)
		if (jv_equal(d->u.dict.k[i], k))
			return (long)i;
	return -1;
}

int jv_dict_set(struct jv *d, struct jv *k, struct jv *v)
{
	long at;

	if (!k || !v) {
		jv_unref(k);
		jv_unref(v);
		return -1;
	}
	at = dict_find(d, k);
	if (at >= 0) {
		jv_unref(k);
		jv_unref(d->u.dict.v[at]);
		d->u.dict.v[at] = v;
		return 0;
	}
	if (d->u.dict.n == d->u.dict.cap) {
		size_t cap = d->u.dict.cap ? d->u.dict.cap * 2 : 4;
		struct jv **nk = NULL, **nv = NULL;

		if (d->u.dict.n < JJ_MAX_ITEMS) {
			nk = realloc(d->u.dict.k, cap * sizeof(*nk));
			if (nk)
				d->u.dict.k = nk;
			nv = realloc(d->u.dict.v, cap * sizeof(*nv));
			if (nv)
				d->u.dict.v = nv;
		}
		if (!nk || !nv) {
			jv_unref(k);
			jv_unref(v);
			return -1;
		}
		d->u.dict.cap = cap;
	}
	d->u.dict.k[d->u.dict.n] = k;
	d->u.dict.v[d->u.dict.n++] = v;
	return 0;
}

int jv_dict_sets(struct jv *d, const char *k, struct jv *v)
{
	return jv_dict_set(d, jv_strz(k), v);
}

struct jv *jv_dict_get(const struct jv *d, const struct jv *k)
{
	long at = dict_find(d, k);

	return at < 0 ? NULL : d->u.dict.v[at];
}

struct jv *jv_dict_gets(const struct jv *d, const char *k)
{
	size_t n = strlen(k);

	for (size_t i = 0; i < d->u.dict.n; i++) {
		const struct jv *key = d->u.dict.k[i];

		if (key->type == JV_STR && key->u.str.len == n &&
		    !memcmp(key->u.str.s, k, n))
			return d->u.dict.v[i];
	}
	return NULL;
}

struct jv *jv_undef(const char *fmt, ...)
{
	struct jv *v = jv_new(JV_UNDEF);
	va_list ap;
	char tmp[512];

	if (!v)
		return NULL;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(tmp, sizeof(tmp), fmt, ap);
		va_end(ap);
		v->u.undef.hint = strdup(tmp);
	}
	return v;
}

struct jv *jv_func(jfn fn, const char *name, struct jv *self,
		   const void *node)
{
	struct jv *v = jv_new(JV_FUNC);

	if (!v)
		return NULL;
	v->u.func.fn = fn;
	v->u.func.name = name;
	v->u.func.self = jv_ref(self);
	v->u.func.node = node;
	return v;
}

/* ---- Python semantics ---- */

int jv_truthy(const struct jv *v)
{
	switch (v->type) {
	case JV_UNDEF:
	case JV_NONE:
		return 0;
	case JV_BOOL:
		return v->u.b;
	case JV_INT:
		return v->u.i != 0;
	case JV_FLOAT:
		return v->u.f != 0.0;
	case JV_STR:
		return v->u.str.len != 0;
	case JV_LIST:
		return v->u.list.view == JV_GEN || v->u.list.n != 0;
	case JV_DICT:
		return v->u.dict.n != 0;
	default:
		return 1;
	}
}

const struct jv *jv_unhashable(const struct jv *v)
{
	if (v->type == JV_DICT)
		return v;
	if (v->type != JV_LIST || v->u.list.view == JV_GEN)
		return NULL;
	if (!v->u.list.tuple || v->u.list.view)
		return v;
	for (size_t i = 0; i < v->u.list.n; i++) {
		const struct jv *u = jv_unhashable(v->u.list.v[i]);

		if (u)
			return u;
	}
	return NULL;
}

int jv_is_num(const struct jv *v)
{
	return v->type == JV_INT || v->type == JV_FLOAT || v->type == JV_BOOL;
}

double jv_num(const struct jv *v)
{
	switch (v->type) {
	case JV_BOOL:
		return v->u.b;
	case JV_INT:
		return (double)v->u.i;
	case JV_FLOAT:
		return v->u.f;
	default:
		return 0;
	}
}

int jv_equal(const struct jv *a, const struct jv *b)
{
	size_t i;

	if (a == b)
		return 1;
	if (jv_is_num(a) && jv_is_num(b)) {
		if (a->type != JV_FLOAT && b->type != JV_FLOAT) {
			int64_t x = a->type == JV_INT ? a->u.i : a->u.b;
			int64_t y = b->type == JV_INT ? b->u.i : b->u.b;

			return x == y;
		}
		return jv_num(a) == jv_num(b);
	}
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case JV_UNDEF:
	case JV_NONE:
		return 1;
	case JV_STR:
		return a->u.str.len == b->u.str.len &&
		       !memcmp(a->u.str.s, b->u.str.s, a->u.str.len);
	case JV_LIST:
		if (a->u.list.tuple != b->u.list.tuple || a->u.list.view ||
		    b->u.list.view || a->u.list.n != b->u.list.n)
			return 0;
		for (i = 0; i < a->u.list.n; i++)
			if (!jv_equal(a->u.list.v[i], b->u.list.v[i]))
				return 0;
		return 1;
	case JV_DICT:
		if (a->u.dict.n != b->u.dict.n)
			return 0;
		for (i = 0; i < a->u.dict.n; i++) {
			struct jv *o = jv_dict_get(b, a->u.dict.k[i]);

			if (!o || !jv_equal(o, a->u.dict.v[i]))
				return 0;
		}
		return 1;
	default:
		return 0;	/* namespaces and functions: identity */
	}
}

const char *jv_type_name(const struct jv *v)
{
	static const char *names[] = {
		[JV_UNDEF] = "Undefined", [JV_NONE] = "NoneType",
		[JV_BOOL] = "bool", [JV_INT] = "int", [JV_FLOAT] = "float",
		[JV_STR] = "str", [JV_LIST] = "list", [JV_DICT] = "dict",
		[JV_NS] = "Namespace", [JV_FUNC] = "function",
	};

	if (v->type == JV_LIST && v->u.list.view) {
		static const char *views[] = {
			[JV_GEN] = "generator", [JV_KEYS] = "dict_keys",
			[JV_VALUES] = "dict_values", [JV_ITEMS] = "dict_items",
		};

		return views[v->u.list.view];
	}
	if (v->type == JV_LIST && v->u.list.tuple)
		return "tuple";
	return names[v->type];
}

struct jv *jv_from_json(const json_t *j)
{
	struct jv *v;
	const char *k;
	json_t *x;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_NULL:
		return JV_NONE_P;
	case JSON_TRUE:
		return JV_TRUE_P;
	case JSON_FALSE:
		return JV_FALSE_P;
	case JSON_INTEGER:
		return jv_int(json_integer_value(j));
	case JSON_REAL:
		return jv_float(json_real_value(j));
	case JSON_STRING:
		return jv_str(json_string_value(j), json_string_length(j));
	case JSON_ARRAY:
		v = jv_list(0);
		if (!v)
			return NULL;
		json_array_foreach(j, i, x) {
			if (jv_list_push(v, jv_from_json(x))) {
				jv_unref(v);
				return NULL;
			}
		}
		return v;
	case JSON_OBJECT:
		v = jv_dict(JV_DICT);
		if (!v)
			return NULL;
		json_object_foreach((json_t *)j, k, x) {
			if (jv_dict_sets(v, k, jv_from_json(x))) {
				jv_unref(v);
				return NULL;
			}
		}
		return v;
	}
	return NULL;
}

/* ---- UTF-8 by code point ---- */

uint32_t ju_decode(const char *s, size_t len, size_t *adv)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t cp;
	size_t n, i;

	if (u[0] < 0x80) {
		*adv = 1;
		return u[0];
	}
	if ((u[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = u[0] & 0x1f;
	} else if ((u[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = u[0] & 0x0f;
	} else if ((u[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = u[0] & 0x07;
	} else {
		*adv = 1;
		return 0xfffd;
	}
	if (n > len) {
		*adv = 1;
		return 0xfffd;
	}
	for (i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80) {
			*adv = 1;
			return 0xfffd;
		}
		cp = cp << 6 | (u[i] & 0x3f);
	}
	*adv = n;
	return cp;
}

size_t ju_count(const char *s, size_t len)
{
	size_t n = 0, i = 0, adv;

	while (i < len) {
		if ((unsigned char)s[i] < 0x80)
			adv = 1;
		else
			ju_decode(s + i, len - i, &adv);
		i += adv;
		n++;
	}
	return n;
}

size_t ju_offset(const char *s, size_t len, size_t cp)
{
	size_t i = 0, adv;

	while (cp > 0 && i < len) {
		if ((unsigned char)s[i] < 0x80)
			adv = 1;
		else
			ju_decode(s + i, len - i, &adv);
		i += adv;
		cp--;
	}
	return i;
}

int ju_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) ||
	       c == 0x85 || c == 0xa0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

/* ---- printing ---- */

/* Python's float repr: the shortest digits that round-trip, fixed
 * notation for exponents -4..15, else d.ddde+XX. */
void jv_float_repr(struct jbuf *b, double f)
{
	char tmp[40], digits[24];
	int prec, exp, nd = 0;
	char *e;

	if (isnan(f)) {
		jbuf_adds(b, "nan");
		return;
	}
	if (isinf(f)) {
		jbuf_adds(b, f < 0 ? "-inf" : "inf");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	e = strchr(tmp, 'e');
	exp = atoi(e + 1);
	for (char *p = tmp; p < e; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = 0;
	if (signbit(f))
		jbuf_addc(b, '-');
	if (exp >= -4 && exp < 16) {
		if (exp < 0) {
			jbuf_adds(b, "0.");
			for (int i = 0; i < -exp - 1; i++)
				jbuf_addc(b, '0');
			jbuf_add(b, digits, nd);
		} else if (nd <= exp + 1) {
			jbuf_add(b, digits, nd);
			for (int i = nd; i < exp + 1; i++)
				jbuf_addc(b, '0');
			jbuf_adds(b, ".0");
		} else {
			jbuf_add(b, digits, exp + 1);
			jbuf_addc(b, '.');
			jbuf_add(b, digits + exp + 1, nd - exp - 1);
		}
		return;
	}
	jbuf_addc(b, digits[0]);
	if (nd > 1) {
		jbuf_addc(b, '.');
		jbuf_add(b, digits + 1, nd - 1);
	}
	jbuf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}

/* Python str.isprintable, roughly: controls, separators other than the
 * space, surrogates and a few format characters are not. */
static int py_printable(uint32_t c)
{
	if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad)
		return 0;
	if (c == 0x1680 || (c >= 0x2000 && c <= 0x200f) ||
	    (c >= 0x2028 && c <= 0x202f) || (c >= 0x205f && c <= 0x206f) ||
	    c == 0x3000 || c == 0xfeff || (c >= 0xd800 && c <= 0xdfff) ||
	    (c >= 0xe000 && c <= 0xf8ff) || c == 0xfff9 || c == 0xfffa ||
	    c == 0xfffb)
		return 0;
	return 1;
}

void jv_html_escape(struct jbuf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '&': jbuf_adds(b, "&amp;"); break;
		case '<': jbuf_adds(b, "&lt;"); break;
		case '>': jbuf_adds(b, "&gt;"); break;
		case '"': jbuf_adds(b, "&#34;"); break;
		case '\'': jbuf_adds(b, "&#39;"); break;
		default: jbuf_addc(b, s[i]);
		}
	}
}

struct jv *jv_markup(struct jv *v)
{
	if (v && v->type == JV_STR) {
		if (v->refs != 1) {	/* shared: mark a copy */
			struct jv *c = jv_str(v->u.str.s, v->u.str.len);

			jv_unref(v);
			v = c;
			if (!v)
				return NULL;
		}
		v->u.str.safe = 1;
	}
	return v;
}

static void str_repr(struct jbuf *b, const char *s, size_t len)
{
	char q = memchr(s, '\'', len) && !memchr(s, '"', len) ? '"' : '\'';
	size_t i = 0, adv;

	jbuf_addc(b, q);
	while (i < len) {
		uint32_t c = ju_decode(s + i, len - i, &adv);

		if (c == (uint32_t)q || c == '\\') {
			jbuf_addc(b, '\\');
			jbuf_addc(b, (char)c);
		} else if (c == '\n') {
			jbuf_adds(b, "\\n");
		} else if (c == '\r') {
			jbuf_adds(b, "\\r");
		} else if (c == '\t') {
			jbuf_adds(b, "\\t");
		} else if (!py_printable(c)) {
			if (c < 0x100)
				jbuf_printf(b, "\\x%02x", c);
			else if (c < 0x10000)
				jbuf_printf(b, "\\u%04x", c);
			else
				jbuf_printf(b, "\\U%08x", c);
		} else {
			jbuf_add(b, s + i, adv);
		}
		i += adv;
	}
	jbuf_addc(b, q);
}

void jv_repr_into(struct jbuf *b, const struct jv *v)
{
	size_t i;

	switch (v->type) {
	case JV_UNDEF:
		jbuf_adds(b, "Undefined");
		return;
	case JV_STR:
		if (v->u.str.safe)
			jbuf_adds(b, "Markup(");
		str_repr(b, v->u.str.s, v->u.str.len);
		if (v->u.str.safe)
			jbuf_addc(b, ')');
		return;
	case JV_LIST:
		if (v->u.list.view == JV_GEN) {
			/* Python adds the address; there is no matching it */
			jbuf_adds(b, "<generator object>");
			return;
		}
		if (v->u.list.view) {
			jbuf_adds(b, jv_type_name(v));
			jbuf_addc(b, '(');
		}
		jbuf_addc(b, v->u.list.tuple ? '(' : '[');
		for (i = 0; i < v->u.list.n && !b->oom; i++) {
			if (i)
				jbuf_adds(b, ", ");
			jv_repr_into(b, v->u.list.v[i]);
		}
		if (v->u.list.tuple && v->u.list.n == 1)
			jbuf_addc(b, ',');
		jbuf_addc(b, v->u.list.tuple ? ')' : ']');
		if (v->u.list.view)
			jbuf_addc(b, ')');
		return;
	case JV_DICT:
		if (v->u.dict.loop) {	/* jinja2's LoopContext repr */
			const struct jv *ix = jv_dict_gets(v, "index");
			const struct jv *n = jv_dict_gets(v, "length");

			jbuf_printf(b, "<LoopContext %lld/%lld>",
				    ix ? (long long)ix->u.i : 0LL,
				    n ? (long long)n->u.i : 0LL);
			return;
		}
		jbuf_addc(b, '{');
		for (i = 0; i < v->u.dict.n && !b->oom; i++) {
			if (i)
				jbuf_adds(b, ", ");
			jv_repr_into(b, v->u.dict.k[i]);
			jbuf_adds(b, ": ");
			jv_repr_into(b, v->u.dict.v[i]);
		}
		jbuf_addc(b, '}');
		return;
	case JV_NS:
		jbuf_adds(b, "<Namespace ");
		for (i = 0; i < v->u.dict.n && !b->oom; i++) {
			jbuf_adds(b, i ? ", " : "{");
			jv_repr_into(b, v->u.dict.k[i]);
			jbuf_adds(b, ": ");
			jv_repr_into(b, v->u.dict.v[i]);
		}
		jbuf_adds(b, v->u.dict.n ? "}>" : "{}>");
		return;
	default:
		jv_str_into(b, v);
	}
}

void jv_str_into(struct jbuf *b, const struct jv *v)
{
	switch (v->type) {
	case JV_UNDEF:
		return;
	case JV_NONE:
		jbuf_adds(b, "None");
		return;
	case JV_BOOL:
		jbuf_adds(b, v->u.b ? "True" : "False");
		return;
	case JV_INT:
		jbuf_printf(b, "%lld", (long long)v->u.i);
		return;
	case JV_FLOAT:
		jv_float_repr(b, v->u.f);
		return;
	case JV_STR:
		jbuf_add(b, v->u.str.s, v->u.str.len);
		return;
	case JV_FUNC:
		jbuf_printf(b, "<function %s>", v->u.func.name);
		return;
	default:
		jv_repr_into(b, v);
	}
}

/* ---- json.dumps ---- */

static void json_str(struct jbuf *b, const char *s, size_t len, int ascii)
{
	size_t i = 0, adv;

	jbuf_addc(b, '"');
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			jbuf_addc(b, '\\');
			jbuf_addc(b, (char)c);
			i++;
		} else if (c < 0x20) {
			switch (c) {
			case '\n': jbuf_adds(b, "\\n"); break;
			case '\r': jbuf_adds(b, "\\r"); break;
			case '\t': jbuf_adds(b, "\\t"); break;
			case '\b': jbuf_adds(b, "\\b"); break;
			case '\f': jbuf_adds(b, "\\f"); break;
			default: jbuf_printf(b, "\\u%04x", c);
			}
			i++;
		} else if (c >= 0x80 && ascii) {
			uint32_t cp = ju_decode(s + i, len - i, &adv);

			if (cp >= 0x10000) {
				cp -= 0x10000;
				jbuf_printf(b, "\\u%04x\\u%04x",
					    0xd800 + (cp >> 10),
					    0xdc00 + (cp & 0x3ff));
			} else {
				jbuf_printf(b, "\\u%04x", cp);
			}
			i += adv;
		} else {
			jbuf_addc(b, (char)c);
			i++;
		}
	}
	jbuf_addc(b, '"');
}

struct json_opts {
	const char *indent;	/* NULL: one line */
	const char *item_sep, *key_sep;
	int sort_keys, ascii;
	const char **bad;
};

static int json_key(struct jbuf *b, const struct jv *k,
		    const struct json_opts *o)
{
	switch (k->type) {
	case JV_STR:
		json_str(b, k->u.str.s, k->u.str.len, o->ascii);
		return 0;
	case JV_NONE:
		jbuf_adds(b, "\"null\"");
		return 0;
	case JV_BOOL:
		jbuf_adds(b, k->u.b ? "\"true\"" : "\"false\"");
		return 0;
	case JV_INT:
	case JV_FLOAT:
		jbuf_addc(b, '"');
		jv_str_into(b, k);
		jbuf_addc(b, '"');
		return 0;
	default:
		*o->bad = jv_type_name(k);
		return -1;
	}
}

static int key_cmp(const struct jv *a, const struct jv *b)
{
	if (a->type == JV_STR && b->type == JV_STR) {
		size_t n = a->u.str.len < b->u.str.len ?
			   a->u.str.len : b->u.str.len;
		int c = memcmp(a->u.str.s, b->u.str.s, n);

		if (c)
			return c;
		return a->u.str.len < b->u.str.len ? -1 :
		       a->u.str.len > b->u.str.len;
	}
	if (jv_is_num(a) && jv_is_num(b))
		return jv_num(a) < jv_num(b) ? -1 : jv_num(a) > jv_num(b);
	return a->type - b->type;
}

static void newline_indent(struct jbuf *b, const struct json_opts *o,
			   int level)
{
	jbuf_addc(b, '\n');
	for (int i = 0; i < level && !b->oom; i++)
		jbuf_adds(b, o->indent);
}

static int json_val(struct jbuf *b, const struct jv *v,
		    const struct json_opts *o, int level)
{
	size_t i, n;

	if (level > JJ_MAX_NEST) {
		*o->bad = "nesting too deep";
		return -1;
	}
	switch (v->type) {
	case JV_NONE:
		jbuf_adds(b, "null");
		return 0;
	case JV_BOOL:
		jbuf_adds(b, v->u.b ? "true" : "false");
		return 0;
	case JV_INT:
		jbuf_printf(b, "%lld", (long long)v->u.i);
		return 0;
	case JV_FLOAT:
		if (isnan(v->u.f))
			jbuf_adds(b, "NaN");
		else if (isinf(v->u.f))
			jbuf_adds(b, v->u.f < 0 ? "-Infinity" : "Infinity");
		else
			jv_float_repr(b, v->u.f);
		return 0;
	case JV_STR:
		json_str(b, v->u.str.s, v->u.str.len, o->ascii);
		return 0;
	case JV_LIST:
		if (v->u.list.view) {
			*o->bad = jv_type_name(v);
			return -1;
		}
		n = v->u.list.n;
		if (!n) {
			jbuf_adds(b, "[]");
			return 0;
		}
		jbuf_addc(b, '[');
		for (i = 0; i < n; i++) {
			if (i)
				jbuf_adds(b, o->item_sep);
			if (o->indent)
				newline_indent(b, o, level + 1);
			if (json_val(b, v->u.list.v[i], o, level + 1))
				return -1;
		}
		if (o->indent)
			newline_indent(b, o, level);
		jbuf_addc(b, ']');
		return 0;
	case JV_DICT: {
		size_t *ord;

		if (v->u.dict.loop) {
			*o->bad = "LoopContext";
			return -1;
		}
		n = v->u.dict.n;
		if (!n) {
			jbuf_adds(b, "{}");
			return 0;
		}
		ord = malloc(n * sizeof(*ord));
		if (!ord) {
			b->oom = 1;
			return -1;
		}
		for (i = 0; i < n; i++)
			ord[i] = i;
		if (o->sort_keys) {
			/* insertion sort: stable, and dicts are small */
			for (i = 1; i < n; i++) {
				size_t x = ord[i], j = i;

				while (j > 0 && key_cmp(v->u.dict.k[ord[j - 1]],
							v->u.dict.k[x]) > 0) {
					ord[j] = ord[j - 1];
					j--;
				}
				ord[j] = x;
			}
		}
		jbuf_addc(b, '{');
		for (i = 0; i < n; i++) {
			if (i)
				jbuf_adds(b, o->item_sep);
			if (o->indent)
				newline_indent(b, o, level + 1);
			if (json_key(b, v->u.dict.k[ord[i]], o) ||
			    (jbuf_adds(b, o->key_sep), 0) ||
			    json_val(b, v->u.dict.v[ord[i]], o, level + 1)) {
				free(ord);
				return -1;
			}
		}
		free(ord);
		if (o->indent)
			newline_indent(b, o, level);
		jbuf_addc(b, '}');
		return 0;
	}
	default:
		*o->bad = jv_type_name(v);
		return -1;
	}
}

int jv_tojson(struct jbuf *b, const struct jv *v, const char *indent,
	      const char *item_sep, const char *key_sep, int sort_keys,
	      int ensure_ascii, const char **bad)
{
	struct json_opts o = {
		.indent = indent, .sort_keys = sort_keys,
		.ascii = ensure_ascii, .bad = bad,
	};

	/* json.dumps: separators default to (", ", ": "), or (",", ": ")
	 * when indent is given */
	o.item_sep = item_sep ? item_sep : indent ? "," : ", ";
	o.key_sep = key_sep ? key_sep : ": ";
	*bad = NULL;
	return json_val(b, v, &o, 0);
}
