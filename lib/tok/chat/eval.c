/* lib/tok/chat/eval.c: evaluate the syntax tree with Python/Jinja2
 * semantics: scoping as jinja2's compiler does it (a for body and a macro
 * get their own frame, if does not), the sandbox's attribute and item
 * lookup, Python operators, and Jinja's default Undefined. */
#define _GNU_SOURCE	/* memmem, strndup */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/chat/jinja.h"

enum { FLOW_OK = 0, FLOW_BREAK = 1, FLOW_CONTINUE = 2, FLOW_ERR = -1 };

struct jv *jx_fail(struct jctx *cx, const char *fmt, ...)
{
	char msg[HF_ERR_MSG_MAX];
	va_list ap;

	if (cx->err->code)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hf_err_set(cx->err, HF_EINVAL, "line %d: %s", cx->line, msg);
	return NULL;
}

static struct jv *oom(struct jctx *cx)
{
	if (!cx->err->code)
		hf_err_set(cx->err, HF_ENOMEM, "out of memory");
	return NULL;
}

/* A jbuf that ran out: say why. */
static struct jv *buf_fail(struct jctx *cx, const struct jbuf *b)
{
	if (b->oom == 2 && !cx->err->code) {
		hf_err_set(cx->err, HF_ERANGE, "line %d: output larger than "
			   "%u bytes", cx->line, JJ_MAX_OUTPUT);
		return NULL;
	}
	return oom(cx);
}

int jx_charge(struct jctx *cx, size_t units)
{
	cx->steps += units;
	if (cx->steps <= JJ_MAX_STEPS)
		return 0;
	if (!cx->err->code)
		hf_err_set(cx->err, HF_ERANGE, "line %d: template took more "
			   "than %u steps", cx->line, JJ_MAX_STEPS);
	return -1;
}

/* Using an undefined value where Jinja raises UndefinedError. */
static struct jv *undef_fail(struct jctx *cx, const struct jv *u)
{
	return jx_fail(cx, "%s", u->u.undef.hint ? u->u.undef.hint :
		       "undefined value");
}

static const char *obj_repr(const struct jv *v)
{
	switch (v->type) {
	case JV_NONE: return "None";
	case JV_STR: return "str object";
	case JV_INT: return "int object";
	case JV_FLOAT: return "float object";
	case JV_BOOL: return "bool object";
	case JV_DICT: return "dict object";
	case JV_NS: return "Namespace object";
	case JV_FUNC: return "function object";
	default: return v->type == JV_LIST && v->u.list.tuple ?
			"tuple object" : "list object";
	}
}

/* Undefined "<obj> has no attribute 'name'", as Jinja's message says. */
static struct jv *no_attr(struct jv *obj, const char *name)
{
	if (obj->type == JV_NONE)
		return jv_undef("None has no attribute '%s'", name);
	return jv_undef("'%s' has no attribute '%s'", obj_repr(obj), name);
}

/* ---- frames ---- */

static struct jv *lookup(struct jframe *f, const char *name)
{
	for (; f; f = f->parent) {
		struct jv *v = jv_dict_gets(f->vars, name);

		if (v)
			return v;
	}
	return NULL;
}

static int frame_set(struct jctx *cx, struct jframe *f, const char *name,
		     struct jv *v)
{
	if (!v)
		return -1;
	if (jv_dict_sets(f->vars, name, v)) {
		oom(cx);
		return -1;
	}
	return 0;
}

static int frame_init(struct jctx *cx, struct jframe *f,
		      struct jframe *parent)
{
	f->parent = parent;
	f->vars = jv_dict(JV_DICT);
	if (!f->vars) {
		oom(cx);
		return -1;
	}
	return 0;
}

/* ---- lookups ---- */

struct jv *jx_getattr(struct jctx *cx, struct jv *obj, const char *name)
{
	struct jv *v;

	switch (obj->type) {
	case JV_UNDEF:
		return undef_fail(cx, obj);
	case JV_NS:
		v = jv_dict_gets(obj, name);
		return v ? jv_ref(v) : no_attr(obj, name);
	case JV_STR:
	case JV_LIST:
	case JV_DICT:
		v = jb_method(cx, obj, name);
		if (v || cx->err->code)
			return v;
		if (obj->type == JV_DICT) {
			v = jv_dict_gets(obj, name);
			if (v)
				return jv_ref(v);
		}
		return no_attr(obj, name);
	default:
		return no_attr(obj, name);
	}
}

/* Python index: negative counts from the end; -1 when out of range. */
static long py_index(const struct jv *key, size_t n)
{
	int64_t i = key->type == JV_BOOL ? key->u.b : key->u.i;

	if (i < 0)
		i += (int64_t)n;
	if (i < 0 || i >= (int64_t)n)
		return -1;
	return (long)i;
}

struct jv *jx_getitem(struct jctx *cx, struct jv *obj, struct jv *key)
{
	struct jv *v;
	int intkey = key->type == JV_INT || key->type == JV_BOOL;
	long i;

	switch (obj->type) {
	case JV_UNDEF:
		return undef_fail(cx, obj);
	case JV_DICT:
		v = jv_dict_get(obj, key);
		if (v)
			return jv_ref(v);
		break;
	case JV_LIST:
		if (intkey) {
			i = py_index(key, obj->u.list.n);
			if (i >= 0)
				return jv_ref(obj->u.list.v[i]);
		}
		break;
	case JV_STR:
		if (intkey) {
			const char *s = obj->u.str.s;
			size_t len = obj->u.str.len, a;

			i = py_index(key, ju_count(s, len));
			if (i >= 0) {
				a = ju_offset(s, len, i);
				return jv_str(s + a, ju_offset(s + a, len - a,
							       1));
			}
		}
		break;
	default:
		break;
	}
	if (key->type == JV_STR && obj->type != JV_NONE) {
		v = jx_getattr(cx, obj, key->u.str.s);
		if (!v || v->type != JV_UNDEF)
			return v;
		jv_unref(v);
	}
	if (obj->type == JV_NONE && key->type == JV_STR)
		return jv_undef("None has no attribute '%s'", key->u.str.s);
	if (key->type == JV_STR)
		return no_attr(obj, key->u.str.s);
	{
		struct jbuf b = { 0 };
		struct jv *u;

		jv_repr_into(&b, key);
		u = jv_undef("%s has no element %s", obj_repr(obj),
			     b.s ? b.s : "?");
		jbuf_free(&b);
		return u;
	}
}

struct jv *jx_call(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	if (fn->type == JV_FUNC)
		return fn->u.func.fn(cx, fn, a);
	if (fn->type == JV_UNDEF)
		return undef_fail(cx, fn);
	return jx_fail(cx, "'%s' object is not callable", jv_type_name(fn));
}

/* ---- operators ---- */

static struct jv *type_error2(struct jctx *cx, const char *op,
			      const struct jv *a, const struct jv *b)
{
	return jx_fail(cx, "unsupported operand type(s) for %s: '%s' and "
		       "'%s'", op, jv_type_name(a), jv_type_name(b));
}

static int is_intlike(const struct jv *v)
{
	return v->type == JV_INT || v->type == JV_BOOL;
}

static int64_t intval(const struct jv *v)
{
	return v->type == JV_BOOL ? v->u.b : v->u.i;
}

static struct jv *repeat(struct jctx *cx, struct jv *seq, int64_t times)
{
	if (times < 0)
		times = 0;
	if (seq->type == JV_STR) {
		struct jbuf b = { 0 };

		if (seq->u.str.len && (uint64_t)times > JJ_MAX_OUTPUT /
		    seq->u.str.len) {
			b.oom = 2;
			return buf_fail(cx, &b);
		}
		if (jx_charge(cx, seq->u.str.len * times / 64))
			return NULL;
		for (int64_t i = 0; i < times && !b.oom; i++)
			jbuf_add(&b, seq->u.str.s, seq->u.str.len);
		if (b.oom)
			return buf_fail(cx, &b);
		return jbuf_take(&b);
	} else {
		struct jv *l = jv_list(seq->u.list.tuple);

		if (!l)
			return oom(cx);
		if (seq->u.list.n && (uint64_t)times > JJ_MAX_ITEMS /
		    seq->u.list.n) {
			jv_unref(l);
			return jx_fail(cx, "list too long");
		}
		if (jx_charge(cx, seq->u.list.n * times)) {
			jv_unref(l);
			return NULL;
		}
		for (int64_t i = 0; i < times; i++)
			for (size_t k = 0; k < seq->u.list.n; k++)
				if (jv_list_push(l, jv_ref(seq->u.list.v[k]))) {
					jv_unref(l);
					return oom(cx);
				}
		return l;
	}
}

static struct jv *int_result(struct jctx *cx, int overflow, int64_t r)
{
	if (overflow)
		return jx_fail(cx, "integer overflow");
	return jv_int(r);
}

/* floor division and modulo with Python's signs */
static double py_fmod(double a, double b)
{
	double m = fmod(a, b);

	if (m != 0 && ((m < 0) != (b < 0)))
		m += b;
	return m;
}


static struct jv *binop(struct jctx *cx, int op, struct jv *a, struct jv *b)
{
	static const char *const names[] = {
		[JO_ADD] = "+", [JO_SUB] = "-", [JO_MUL] = "*",
		[JO_DIV] = "/", [JO_FDIV] = "//", [JO_MOD] = "%",
		[JO_POW] = "** or pow()",
	};
	int64_t r = 0;
	int ovf;

	if (a->type == JV_UNDEF)
		return undef_fail(cx, a);
	if (b->type == JV_UNDEF)
		return undef_fail(cx, b);
	if (is_intlike(a) && is_intlike(b)) {
		int64_t x = intval(a), y = intval(b);

		switch (op) {
		case JO_ADD:
			ovf = __builtin_add_overflow(x, y, &r);
			return int_result(cx, ovf, r);
		case JO_SUB:
			ovf = __builtin_sub_overflow(x, y, &r);
			return int_result(cx, ovf, r);
		case JO_MUL:
			ovf = __builtin_mul_overflow(x, y, &r);
			return int_result(cx, ovf, r);
		case JO_DIV:
			if (!y)
				return jx_fail(cx, "division by zero");
			return jv_float((double)x / (double)y);
		case JO_FDIV:
		case JO_MOD:
			if (!y)
				return jx_fail(cx, "integer division or "
					       "modulo by zero");
			if (x == INT64_MIN && y == -1)
				return op == JO_MOD ? jv_int(0) :
				       jx_fail(cx, "integer overflow");
			r = op == JO_FDIV ? x / y : x % y;
			if ((x % y != 0) && ((x < 0) != (y < 0)))
				r = op == JO_FDIV ? r - 1 : r + y;
			return jv_int(r);
		case JO_POW:
			if (y < 0)
				return jv_float(pow((double)x, (double)y));
			r = 1;
			for (int64_t i = 0; i < y; i++) {
				if (__builtin_mul_overflow(r, x, &r))
					return jx_fail(cx, "integer overflow");
				if (r == 0 || r == 1)
					break;
				if (r == -1 && i + 1 < y) {
					r = ((y - i - 1) % 2) ? 1 : -1;
					break;
				}
			}
			return jv_int(r);
		}
	}
	if (jv_is_num(a) && jv_is_num(b)) {
		double x = jv_num(a), y = jv_num(b);

		switch (op) {
		case JO_ADD: return jv_float(x + y);
		case JO_SUB: return jv_float(x - y);
		case JO_MUL: return jv_float(x * y);
		case JO_DIV:
			if (y == 0)
				return jx_fail(cx, "float division by zero");
			return jv_float(x / y);
		case JO_FDIV:
			if (y == 0)
				return jx_fail(cx, "float floor division by "
					       "zero");
			return jv_float(floor(x / y));
		case JO_MOD:
			if (y == 0)
				return jx_fail(cx, "float modulo");
			return jv_float(py_fmod(x, y));
		case JO_POW:
			if (x == 0 && y < 0)
				return jx_fail(cx, "0.0 cannot be raised to a "
					       "negative power");
			return jv_float(pow(x, y));
		}
	}
	if (op == JO_ADD && a->type == JV_STR && b->type == JV_STR) {
		struct jbuf s = { 0 };

		if (jx_charge(cx, (a->u.str.len + b->u.str.len) / 64))
			return NULL;
		jbuf_add(&s, a->u.str.s, a->u.str.len);
		jbuf_add(&s, b->u.str.s, b->u.str.len);
		if (s.oom)
			return buf_fail(cx, &s);
		return jbuf_take(&s);
	}
	if (op == JO_ADD && a->type == JV_LIST && b->type == JV_LIST &&
	    a->u.list.tuple == b->u.list.tuple) {
		struct jv *l = jv_list(a->u.list.tuple);

		if (!l)
			return oom(cx);
		if (jx_charge(cx, a->u.list.n + b->u.list.n)) {
			jv_unref(l);
			return NULL;
		}
		for (size_t i = 0; i < a->u.list.n + b->u.list.n; i++) {
			struct jv *x = i < a->u.list.n ? a->u.list.v[i] :
				       b->u.list.v[i - a->u.list.n];

			if (jv_list_push(l, jv_ref(x))) {
				jv_unref(l);
				return jx_fail(cx, "list too long");
			}
		}
		return l;
	}
	if (op == JO_MUL && (a->type == JV_STR || a->type == JV_LIST) &&
	    is_intlike(b))
		return repeat(cx, a, intval(b));
	if (op == JO_MUL && (b->type == JV_STR || b->type == JV_LIST) &&
	    is_intlike(a))
		return repeat(cx, b, intval(a));
	if (op == JO_MOD && a->type == JV_STR)
		return jx_percent(cx, a, b);
	return type_error2(cx, names[op], a, b);
}

/* "%s %d" % args: the conversions templates use (s r d i f %). */
struct jv *jx_percent(struct jctx *cx, struct jv *fmt, struct jv *args)
{
	struct jbuf b = { 0 };
	size_t i = 0, ai = 0, nargs = 1;
	struct jv **argv = &args;
	const char *s = fmt->u.str.s;

	if (args->type == JV_LIST && args->u.list.tuple) {
		argv = args->u.list.v;
		nargs = args->u.list.n;
	}
	while (i < fmt->u.str.len) {
		char c = s[i++];
		struct jv *a;

		if (c != '%') {
			jbuf_addc(&b, c);
			continue;
		}
		if (i >= fmt->u.str.len) {
			jbuf_free(&b);
			return jx_fail(cx, "incomplete format");
		}
		c = s[i++];
		if (c == '%') {
			jbuf_addc(&b, '%');
			continue;
		}
		if (ai >= nargs) {
			jbuf_free(&b);
			return jx_fail(cx, "not enough arguments for format "
				       "string");
		}
		a = argv[ai++];
		if (c == 's') {
			jv_str_into(&b, a);
		} else if (c == 'r') {
			jv_repr_into(&b, a);
		} else if ((c == 'd' || c == 'i') && jv_is_num(a)) {
			jbuf_printf(&b, "%lld", is_intlike(a) ?
				    (long long)intval(a) :
				    (long long)trunc(jv_num(a)));
		} else if (c == 'f' && jv_is_num(a)) {
			jbuf_printf(&b, "%f", jv_num(a));
		} else {
			jbuf_free(&b);
			return jx_fail(cx, "unsupported format character "
				       "'%c' or argument type", c);
		}
	}
	if (ai < nargs && !(nargs == 1 && args->type == JV_DICT)) {
		jbuf_free(&b);
		return jx_fail(cx, "not all arguments converted during string "
			       "formatting");
	}
	if (b.oom)
		return buf_fail(cx, &b);
	return jbuf_take(&b);
}

/* Python ordering: -1, 0, 1, or -2 (and err set) if not comparable. */
static int order(struct jctx *cx, const struct jv *a, const struct jv *b,
		 const char *op)
{
	if (a->type == JV_UNDEF || b->type == JV_UNDEF) {
		undef_fail(cx, a->type == JV_UNDEF ? a : b);
		return -2;
	}
	if (jv_is_num(a) && jv_is_num(b)) {
		if (is_intlike(a) && is_intlike(b))
			return intval(a) < intval(b) ? -1 :
			       intval(a) > intval(b);
		return jv_num(a) < jv_num(b) ? -1 : jv_num(a) > jv_num(b);
	}
	if (a->type == JV_STR && b->type == JV_STR) {
		size_t n = a->u.str.len < b->u.str.len ? a->u.str.len :
			   b->u.str.len;
		int c = memcmp(a->u.str.s, b->u.str.s, n);

		if (c)
			return c < 0 ? -1 : 1;
		return a->u.str.len < b->u.str.len ? -1 :
		       a->u.str.len > b->u.str.len;
	}
	if (a->type == JV_LIST && b->type == JV_LIST &&
	    a->u.list.tuple == b->u.list.tuple) {
		for (size_t i = 0; i < a->u.list.n && i < b->u.list.n; i++) {
			int c;

			if (jv_equal(a->u.list.v[i], b->u.list.v[i]))
				continue;
			c = order(cx, a->u.list.v[i], b->u.list.v[i], op);
			return c;
		}
		return a->u.list.n < b->u.list.n ? -1 :
		       a->u.list.n > b->u.list.n;
	}
	jx_fail(cx, "'%s' not supported between instances of '%s' and '%s'",
		op, jv_type_name(a), jv_type_name(b));
	return -2;
}

/* needle in hay: 1, 0, or -1 on error */
static int contains(struct jctx *cx, struct jv *hay, struct jv *needle)
{
	switch (hay->type) {
	case JV_UNDEF:
		return 0;	/* Undefined iterates as empty */
	case JV_STR:
		if (needle->type != JV_STR) {
			jx_fail(cx, "'in <string>' requires string as left "
				"operand, not %s", jv_type_name(needle));
			return -1;
		}
		if (!needle->u.str.len)
			return 1;
		if (needle->u.str.len > hay->u.str.len)
			return 0;
		return memmem(hay->u.str.s, hay->u.str.len, needle->u.str.s,
			      needle->u.str.len) != NULL;
	case JV_LIST:
		if (jx_charge(cx, hay->u.list.n))
			return -1;
		for (size_t i = 0; i < hay->u.list.n; i++)
			if (jv_equal(hay->u.list.v[i], needle))
				return 1;
		return 0;
	case JV_DICT:
		return jv_dict_get(hay, needle) != NULL;
	default:
		jx_fail(cx, "argument of type '%s' is not iterable",
			jv_type_name(hay));
		return -1;
	}
}

static int compare(struct jctx *cx, int op, struct jv *a, struct jv *b)
{
	static const char *const names[] = {
		[JO_LT] = "<", [JO_LE] = "<=", [JO_GT] = ">", [JO_GE] = ">=",
	};
	int c, r;

	switch (op) {
	case JO_EQ:
		return jv_equal(a, b);
	case JO_NE:
		return !jv_equal(a, b);
	case JO_IN:
		return contains(cx, b, a);
	case JO_NOTIN:
		r = contains(cx, b, a);
		return r < 0 ? r : !r;
	}
	c = order(cx, a, b, names[op]);
	if (c == -2)
		return -1;
	switch (op) {
	case JO_LT: return c < 0;
	case JO_LE: return c <= 0;
	case JO_GT: return c > 0;
	default: return c >= 0;
	}
}

/* ---- iteration ---- */

/* The items a for loop visits: a new list, or NULL on error. */
static struct jv *iter_items(struct jctx *cx, struct jv *v)
{
	struct jv *l;

	switch (v->type) {
	case JV_LIST:
		return jv_ref(v);
	case JV_UNDEF:
		return jv_list(0);
	case JV_DICT:
		l = jv_list(0);
		if (!l)
			return oom(cx);
		for (size_t i = 0; i < v->u.dict.n; i++)
			if (jv_list_push(l, jv_ref(v->u.dict.k[i]))) {
				jv_unref(l);
				return oom(cx);
			}
		return l;
	case JV_STR: {
		size_t i = 0, adv;

		l = jv_list(0);
		if (!l)
			return oom(cx);
		if (jx_charge(cx, v->u.str.len)) {
			jv_unref(l);
			return NULL;
		}
		while (i < v->u.str.len) {
			ju_decode(v->u.str.s + i, v->u.str.len - i, &adv);
			if (jv_list_push(l, jv_str(v->u.str.s + i, adv))) {
				jv_unref(l);
				return oom(cx);
			}
			i += adv;
		}
		return l;
	}
	default:
		return jx_fail(cx, "'%s' object is not iterable",
			       jv_type_name(v));
	}
}

static int assign(struct jctx *cx, struct jframe *f, const struct jnode *t,
		  struct jv *v);

/* Unpack v into a tuple target. Takes v. */
static int unpack(struct jctx *cx, struct jframe *f, const struct jnode *t,
		  struct jv *v)
{
	struct jv *items = iter_items(cx, v);
	int rc = 0;

	jv_unref(v);
	if (!items)
		return -1;
	if (items->u.list.n != t->nkids) {
		jx_fail(cx, items->u.list.n > t->nkids ?
			"too many values to unpack (expected %zu)" :
			"not enough values to unpack (expected %zu)",
			t->nkids);
		rc = -1;
	}
	for (size_t i = 0; !rc && i < t->nkids; i++)
		rc = assign(cx, f, t->kids[i], jv_ref(items->u.list.v[i]));
	jv_unref(items);
	return rc;
}

/* 1 if v holds a namespace (storing one in a namespace could make a
 * reference cycle), 0 if not, -1 past the step budget. */
static int holds_ns(struct jctx *cx, const struct jv *v)
{
	size_t i;
	int r;

	if (jx_charge(cx, 1))
		return -1;
	if (v->type == JV_NS)
		return 1;
	if (v->type == JV_LIST) {
		for (i = 0; i < v->u.list.n; i++)
			if ((r = holds_ns(cx, v->u.list.v[i])))
				return r;
	} else if (v->type == JV_DICT) {
		for (i = 0; i < v->u.dict.n; i++)
			if ((r = holds_ns(cx, v->u.dict.v[i])))
				return r;
	}
	return 0;
}

/* Bind v (taken) to target t in frame f. */
static int assign(struct jctx *cx, struct jframe *f, const struct jnode *t,
		  struct jv *v)
{
	if (!v)
		return -1;
	if (t->kind == JN_NAME)
		return frame_set(cx, f, t->name, v);
	if (t->kind == JN_TUPLE)
		return unpack(cx, f, t, v);
	if (t->kind == JN_NSREF) {
		struct jv *ns = lookup(f, t->name);
		int r;

		if (!ns || ns->type != JV_NS) {
			jv_unref(v);
			jx_fail(cx, "cannot assign attribute on non-namespace "
				"object");
			return -1;
		}
		r = holds_ns(cx, v);
		if (r) {
			jv_unref(v);
			if (r > 0)
				jx_fail(cx, "cannot store a namespace in a "
					"namespace");
			return -1;
		}
		if (jv_dict_set(ns, jv_ref(t->val), v)) {
			oom(cx);
			return -1;
		}
		return 0;
	}
	jv_unref(v);
	jx_fail(cx, "can't assign to this expression");
	return -1;
}

/* ---- expressions ---- */

static void args_free(struct jargs *a)
{
	for (size_t i = 0; i < a->npos; i++)
		jv_unref(a->pos[i]);
	for (size_t i = 0; i < a->nkw; i++)
		jv_unref(a->kwv[i]);
	free(a->pos);
	free(a->kwn);
	free(a->kwv);
	memset(a, 0, sizeof(*a));
}

/* Evaluate the arguments kids[from..] of a CALL/FILTER/TEST node, with
 * room for one more keyword (caller). */
static int eval_args(struct jctx *cx, struct jframe *f, const struct jnode *n,
		     size_t from, struct jargs *a)
{
	size_t cnt = n->nkids > from ? n->nkids - from : 0;

	memset(a, 0, sizeof(*a));
	a->pos = calloc(cnt + 1, sizeof(*a->pos));
	a->kwn = calloc(cnt + 1, sizeof(*a->kwn));
	a->kwv = calloc(cnt + 1, sizeof(*a->kwv));
	if (!a->pos || !a->kwn || !a->kwv) {
		args_free(a);
		oom(cx);
		return -1;
	}
	for (size_t i = from; i < n->nkids; i++) {
		struct jv *v = jx_eval(cx, f, n->kids[i]);

		if (!v) {
			args_free(a);
			return -1;
		}
		if (n->kw && n->kw[i]) {
			a->kwn[a->nkw] = n->kw[i];
			a->kwv[a->nkw++] = v;
		} else {
			a->pos[a->npos++] = v;
		}
	}
	return 0;
}

static struct jv *eval_filter(struct jctx *cx, struct jframe *f,
			      const struct jnode *n, struct jv *subject)
{
	struct jargs a;
	struct jv *v, *r;

	if (n->kids[0]) {
		v = jx_eval(cx, f, n->kids[0]);
		if (!v)
			return NULL;
	} else {
		v = jv_ref(subject);
	}
	if (v->type == JV_FUNC || !jb_has_filter(n->name)) {
		if (!jb_has_filter(n->name)) {
			jv_unref(v);
			return jx_fail(cx, "no filter named '%s'", n->name);
		}
	}
	if (eval_args(cx, f, n, 1, &a)) {
		jv_unref(v);
		return NULL;
	}
	cx->line = n->line;
	r = jb_filter(cx, n->name, v, &a);
	args_free(&a);
	jv_unref(v);
	return r;
}

/* A filter chain whose innermost subject is NULL, applied to subject. */
static struct jv *eval_filter_chain(struct jctx *cx, struct jframe *f,
				    const struct jnode *n, struct jv *subject)
{
	struct jv *inner, *r;
	struct jnode tmp;

	if (!n->kids[0])
		return eval_filter(cx, f, n, subject);
	inner = eval_filter_chain(cx, f, n->kids[0], subject);
	if (!inner)
		return NULL;
	tmp = *n;
	tmp.kids = malloc(n->nkids * sizeof(*tmp.kids));
	if (!tmp.kids) {
		jv_unref(inner);
		return oom(cx);
	}
	memcpy(tmp.kids, n->kids, n->nkids * sizeof(*tmp.kids));
	tmp.kids[0] = NULL;
	r = eval_filter(cx, f, &tmp, inner);
	free(tmp.kids);
	jv_unref(inner);
	return r;
}

static struct jv *eval_slice(struct jctx *cx, struct jframe *f,
			     const struct jnode *n)
{
	struct jv *obj, *parts[3] = { NULL, NULL, NULL }, *r = NULL;
	int i;

	obj = jx_eval(cx, f, n->kids[0]);
	if (!obj)
		return NULL;
	for (i = 0; i < 3; i++) {
		parts[i] = n->kids[i + 1] ? jx_eval(cx, f, n->kids[i + 1]) :
			   JV_NONE_P;
		if (!parts[i])
			goto out;
	}
	if (obj->type == JV_UNDEF) {
		r = undef_fail(cx, obj);
		goto out;
	}
	if (obj->type != JV_STR && obj->type != JV_LIST) {
		r = jv_undef("%s has no element slice", obj_repr(obj));
		goto out;
	}
	r = jb_str_slice(cx, obj, parts[0], parts[1], parts[2]);
out:
	for (i = 0; i < 3; i++)
		jv_unref(parts[i]);
	jv_unref(obj);
	return r;
}

static struct jv *eval_test(struct jctx *cx, struct jframe *f,
			    const struct jnode *n)
{
	struct jargs a;
	struct jv *v;
	int r;

	if (!jb_has_test(n->name))
		return jx_fail(cx, "no test named '%s'", n->name);
	v = jx_eval(cx, f, n->kids[0]);
	if (!v)
		return NULL;
	if (eval_args(cx, f, n, 1, &a)) {
		jv_unref(v);
		return NULL;
	}
	cx->line = n->line;
	r = jb_test(cx, n->name, v, &a);
	args_free(&a);
	jv_unref(v);
	if (r < 0)
		return NULL;
	return jv_bool(n->op ? !r : r);
}

static struct jv *eval_cmp(struct jctx *cx, struct jframe *f,
			   const struct jnode *n)
{
	struct jv *a = jx_eval(cx, f, n->kids[0]);

	if (!a)
		return NULL;
	for (size_t i = 1; i < n->nkids; i++) {
		struct jv *b = jx_eval(cx, f, n->kids[i]);
		int r;

		if (!b) {
			jv_unref(a);
			return NULL;
		}
		cx->line = n->line;
		r = compare(cx, n->ops[i - 1], a, b);
		jv_unref(a);
		a = b;
		if (r <= 0) {
			jv_unref(a);
			return r < 0 ? NULL : JV_FALSE_P;
		}
	}
	jv_unref(a);
	return JV_TRUE_P;
}

static struct jv *eval_collection(struct jctx *cx, struct jframe *f,
				  const struct jnode *n)
{
	struct jv *c = n->kind == JN_DICT ? jv_dict(JV_DICT) :
		       jv_list(n->kind == JN_TUPLE);

	if (!c)
		return oom(cx);
	for (size_t i = 0; i < n->nkids; i++) {
		struct jv *v = jx_eval(cx, f, n->kids[i]);

		if (!v)
			goto fail;
		if (n->kind != JN_DICT) {
			if (jv_list_push(c, v))
				goto fail_oom;
			continue;
		}
		if (v->type == JV_LIST && !v->u.list.tuple) {
			jv_unref(v);
			jx_fail(cx, "unhashable type: 'list'");
			goto fail;
		}
		if (v->type == JV_DICT || v->type == JV_UNDEF) {
			jx_fail(cx, "unhashable type: '%s'", jv_type_name(v));
			jv_unref(v);
			goto fail;
		}
		struct jv *val = jx_eval(cx, f, n->kids[++i]);

		if (!val) {
			jv_unref(v);
			goto fail;
		}
		if (jv_dict_set(c, v, val))
			goto fail_oom;
	}
	return c;
fail_oom:
	oom(cx);
fail:
	jv_unref(c);
	return NULL;
}

static struct jv *eval_inner(struct jctx *cx, struct jframe *f,
			     const struct jnode *n)
{
	struct jv *a, *b, *r;
	struct jargs args;

	switch (n->kind) {
	case JN_CONST:
		return jv_ref(n->val);
	case JN_NAME:
		a = lookup(f, n->name);
		if (a)
			return jv_ref(a);
		a = jb_global(n->name);
		if (a)
			return a;
		return jv_undef("'%s' is undefined", n->name);
	case JN_ATTR:
		a = jx_eval(cx, f, n->kids[0]);
		if (!a)
			return NULL;
		cx->line = n->line;
		r = jx_getattr(cx, a, n->name);
		jv_unref(a);
		return r;
	case JN_ITEM:
		a = jx_eval(cx, f, n->kids[0]);
		if (!a)
			return NULL;
		b = jx_eval(cx, f, n->kids[1]);
		if (!b) {
			jv_unref(a);
			return NULL;
		}
		cx->line = n->line;
		r = jx_getitem(cx, a, b);
		jv_unref(a);
		jv_unref(b);
		return r;
	case JN_SLICE:
		return eval_slice(cx, f, n);
	case JN_CALL:
		a = jx_eval(cx, f, n->kids[0]);
		if (!a)
			return NULL;
		if (eval_args(cx, f, n, 1, &args)) {
			jv_unref(a);
			return NULL;
		}
		cx->line = n->line;
		r = jx_call(cx, a, &args);
		args_free(&args);
		jv_unref(a);
		return r;
	case JN_FILTER:
		return eval_filter(cx, f, n, NULL);
	case JN_TEST:
		return eval_test(cx, f, n);
	case JN_BINOP:
		a = jx_eval(cx, f, n->kids[0]);
		if (!a)
			return NULL;
		b = jx_eval(cx, f, n->kids[1]);
		if (!b) {
			jv_unref(a);
			return NULL;
		}
		cx->line = n->line;
		r = binop(cx, n->op, a, b);
		jv_unref(a);
		jv_unref(b);
		return r;
	case JN_NEG:
	case JN_POS:
		a = jx_eval(cx, f, n->kids[0]);
		if (!a)
			return NULL;
		cx->line = n->line;
		if (a->type == JV_UNDEF)
			r = undef_fail(cx, a);
		else if (n->kind == JN_POS && jv_is_num(a))
			r = a->type == JV_BOOL ? jv_int(a->u.b) : jv_ref(a);
		else if (a->type == JV_FLOAT)
			r = jv_float(-a->u.f);
		else if (is_intlike(a) && intval(a) != INT64_MIN)
			r = jv_int(-intval(a));
		else if (is_intlike(a))
			r = jx_fail(cx, "integer overflow");
		else
			r = jx_fail(cx, "bad operand type for unary %c: '%s'",
				    n->kind == JN_NEG ? '-' : '+',
				    jv_type_name(a));
		jv_unref(a);
		return r;
	case JN_NOT:
		a = jx_eval(cx, f, n->kids[0]);
		if (!a)
			return NULL;
		r = jv_bool(!jv_truthy(a));
		jv_unref(a);
		return r;
	case JN_AND:
	case JN_OR:
		a = jx_eval(cx, f, n->kids[0]);
		if (!a)
			return NULL;
		if (jv_truthy(a) == (n->kind == JN_OR))
			return a;
		jv_unref(a);
		return jx_eval(cx, f, n->kids[1]);
	case JN_CMP:
		return eval_cmp(cx, f, n);
	case JN_COND:
		a = jx_eval(cx, f, n->kids[0]);
		if (!a)
			return NULL;
		r = NULL;
		if (jv_truthy(a))
			r = jx_eval(cx, f, n->kids[1]);
		else if (n->kids[2])
			r = jx_eval(cx, f, n->kids[2]);
		else
			r = jv_undef("the inline if-expression on line %d "
				     "evaluated to false and no else section "
				     "was defined.", n->line);
		jv_unref(a);
		return r;
	case JN_LIST:
	case JN_TUPLE:
	case JN_DICT:
		return eval_collection(cx, f, n);
	case JN_CONCAT: {
		struct jbuf s = { 0 };

		for (size_t i = 0; i < n->nkids; i++) {
			a = jx_eval(cx, f, n->kids[i]);
			if (!a) {
				jbuf_free(&s);
				return NULL;
			}
			jv_str_into(&s, a);
			jv_unref(a);
		}
		if (s.oom)
			return buf_fail(cx, &s);
		if (jx_charge(cx, s.n / 64)) {
			jbuf_free(&s);
			return NULL;
		}
		return jbuf_take(&s);
	}
	default:
		return jx_fail(cx, "statement used as an expression");
	}
}

struct jv *jx_eval(struct jctx *cx, struct jframe *f, const struct jnode *n)
{
	struct jv *r;

	if (jx_charge(cx, 1))
		return NULL;
	if (++cx->depth > JJ_MAX_DEPTH) {
		cx->depth--;
		if (!cx->err->code)
			hf_err_set(cx->err, HF_ERANGE, "line %d: maximum "
				   "recursion depth exceeded", n->line);
		return NULL;
	}
	cx->line = n->line;
	r = eval_inner(cx, f, n);
	cx->depth--;
	if (!r)
		oom(cx);	/* a NULL without a message: an allocation */
	return r;
}

/* ---- statements ---- */

static int exec_body(struct jctx *cx, struct jframe *f, const struct jnode *b,
		     struct jbuf *out);

static int output(struct jctx *cx, struct jbuf *out, const struct jv *v)
{
	size_t before = out->n;

	jv_str_into(out, v);
	if (out->oom) {
		buf_fail(cx, out);
		return -1;
	}
	return jx_charge(cx, (out->n - before) / 64);
}

/* Render body into a new string value (set blocks, macros, caller). */
static struct jv *capture(struct jctx *cx, struct jframe *f,
			  const struct jnode *body)
{
	struct jbuf b = { 0 };
	int r = exec_body(cx, f, body, &b);

	if (r < 0) {
		jbuf_free(&b);
		return NULL;
	}
	if (b.oom)
		return buf_fail(cx, &b);
	return jbuf_take(&b);
}

static struct jv *make_loop(struct jctx *cx, struct jv *items, size_t i);

static int exec_for(struct jctx *cx, struct jframe *f, const struct jnode *n,
		    struct jbuf *out)
{
	struct jv *seq, *items;
	size_t count;
	int rc = FLOW_OK;

	seq = jx_eval(cx, f, n->kids[1]);
	if (!seq)
		return FLOW_ERR;
	cx->line = n->line;
	items = iter_items(cx, seq);
	jv_unref(seq);
	if (!items)
		return FLOW_ERR;
	if (n->kids[2]) {	/* for x in xs if cond: filter first */
		struct jv *kept = jv_list(0);

		if (!kept) {
			jv_unref(items);
			oom(cx);
			return FLOW_ERR;
		}
		for (size_t i = 0; i < items->u.list.n; i++) {
			struct jframe tf;
			struct jv *c;
			int ok;

			if (frame_init(cx, &tf, f))
				goto filter_fail;
			ok = !assign(cx, &tf, n->kids[0],
				     jv_ref(items->u.list.v[i])) &&
			     (c = jx_eval(cx, &tf, n->kids[2]));
			jv_unref(tf.vars);
			if (!ok)
				goto filter_fail;
			ok = jv_truthy(c);
			jv_unref(c);
			if (ok && jv_list_push(kept,
					       jv_ref(items->u.list.v[i]))) {
				oom(cx);
				goto filter_fail;
			}
			continue;
filter_fail:
			jv_unref(kept);
			jv_unref(items);
			return FLOW_ERR;
		}
		jv_unref(items);
		items = kept;
	}
	count = items->u.list.n;
	for (size_t i = 0; i < count; i++) {
		struct jframe lf;
		int r;

		/* an iteration allocates a frame and a loop object */
		if (jx_charge(cx, 8) || frame_init(cx, &lf, f)) {
			rc = FLOW_ERR;
			break;
		}
		if (assign(cx, &lf, n->kids[0], jv_ref(items->u.list.v[i])) ||
		    frame_set(cx, &lf, "loop", make_loop(cx, items, i))) {
			jv_unref(lf.vars);
			rc = FLOW_ERR;
			break;
		}
		r = exec_body(cx, &lf, n->kids[3], out);
		jv_unref(lf.vars);
		if (r == FLOW_ERR) {
			rc = FLOW_ERR;
			break;
		}
		if (r == FLOW_BREAK)
			break;
	}
	jv_unref(items);
	if (rc == FLOW_OK && count == 0 && n->kids[4])
		rc = exec_body(cx, f, n->kids[4], out);
	return rc;
}

static struct jv *loop_cycle(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	if (!a->npos)
		return jx_fail(cx, "no items for cycling given");
	return jv_ref(a->pos[fn->u.func.self->u.i % (int64_t)a->npos]);
}

/* Static key strings of the loop object (never freed). */
#define LOOP_KEY(name) { .type = JV_STR, .refs = -1, \
	.u.str = { .s = (char *)name, .len = sizeof(name) - 1 } }
static struct jv loop_keys[] = {
	LOOP_KEY("index"), LOOP_KEY("index0"), LOOP_KEY("revindex"),
	LOOP_KEY("revindex0"), LOOP_KEY("first"), LOOP_KEY("last"),
	LOOP_KEY("length"), LOOP_KEY("depth"), LOOP_KEY("depth0"),
	LOOP_KEY("cycle"), LOOP_KEY("previtem"), LOOP_KEY("nextitem"),
};

/* The loop object of item i: a dict built without key searches, since
 * its keys are known to be distinct. */
static struct jv *make_loop(struct jctx *cx, struct jv *items, size_t i)
{
	int64_t n = (int64_t)items->u.list.n, k = (int64_t)i;
	struct jv *vals[12], *l = jv_dict(JV_DICT), *idx = jv_int(k);
	size_t nv = 10;

	vals[0] = jv_int(k + 1);
	vals[1] = jv_ref(idx);
	vals[2] = jv_int(n - k);
	vals[3] = jv_int(n - k - 1);
	vals[4] = jv_bool(k == 0);
	vals[5] = jv_bool(k + 1 == n);
	vals[6] = jv_int(n);
	vals[7] = jv_int(1);
	vals[8] = jv_int(0);
	vals[9] = idx ? jv_func(loop_cycle, "cycle", idx, NULL) : NULL;
	if (k > 0)
		vals[nv++] = jv_ref(items->u.list.v[i - 1]);
	else
		vals[nv++] = NULL;
	if (k + 1 < n)
		vals[nv++] = jv_ref(items->u.list.v[i + 1]);
	else
		vals[nv++] = NULL;
	jv_unref(idx);
	if (l) {
		l->u.dict.k = malloc(12 * sizeof(*l->u.dict.k));
		l->u.dict.v = malloc(12 * sizeof(*l->u.dict.v));
		l->u.dict.cap = 12;
	}
	for (size_t j = 0; j < nv; j++) {
		if (!vals[j] && j < 10)
			goto fail;
	}
	if (!l || !l->u.dict.k || !l->u.dict.v)
		goto fail;
	for (size_t j = 0; j < nv; j++) {
		if (!vals[j])
			continue;
		l->u.dict.k[l->u.dict.n] = &loop_keys[j];
		l->u.dict.v[l->u.dict.n++] = vals[j];
	}
	return l;
fail:
	for (size_t j = 0; j < nv; j++)
		jv_unref(vals[j]);
	jv_unref(l);
	return oom(cx);
}

/* Bind a macro's or caller's parameters (kids[first..]) in frame mf. */
static int bind_params(struct jctx *cx, struct jframe *mf,
		       const struct jnode *n, size_t first, struct jargs *a,
		       const char *what)
{
	size_t nparams = n->nkids - first, used_kw = 0;
	struct jv *varargs, *kwargs;

	for (size_t i = 0; i < nparams; i++) {
		const struct jnode *p = n->kids[first + i];
		struct jv *v = NULL;

		if (i < a->npos)
			v = jv_ref(a->pos[i]);
		for (size_t k = 0; k < a->nkw; k++) {
			if (strcmp(a->kwn[k], p->name))
				continue;
			if (v) {
				jv_unref(v);
				jx_fail(cx, "%s got multiple values for "
					"argument '%s'", what, p->name);
				return -1;
			}
			v = jv_ref(a->kwv[k]);
			used_kw++;
		}
		if (!v && p->nkids)
			v = jx_eval(cx, mf, p->kids[0]);
		else if (!v)
			v = jv_undef("parameter '%s' was not provided",
				     p->name);
		if (frame_set(cx, mf, p->name, v))
			return -1;
	}
	varargs = jv_list(1);
	kwargs = jv_dict(JV_DICT);
	if (frame_set(cx, mf, "varargs", varargs) ||
	    frame_set(cx, mf, "kwargs", kwargs))
		return -1;
	for (size_t i = nparams; i < a->npos; i++)
		if (jv_list_push(varargs, jv_ref(a->pos[i]))) {
			oom(cx);
			return -1;
		}
	for (size_t k = 0; k < a->nkw && used_kw < a->nkw; k++) {
		int known = !strcmp(a->kwn[k], "caller");

		for (size_t i = 0; i < nparams && !known; i++)
			known = !strcmp(a->kwn[k], n->kids[first + i]->name);
		if (known)
			continue;
		if (jv_dict_sets(kwargs, a->kwn[k], jv_ref(a->kwv[k]))) {
			oom(cx);
			return -1;
		}
	}
	return 0;
}

static struct jv *call_macro(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	const struct jnode *m = fn->u.func.node;
	struct jframe mf;
	struct jv *r = NULL, *caller = NULL;
	int line = cx->line;

	if (frame_init(cx, &mf, cx->root))
		return NULL;
	for (size_t k = 0; k < a->nkw; k++)
		if (!strcmp(a->kwn[k], "caller"))
			caller = a->kwv[k];
	if (!bind_params(cx, &mf, m, 1, a, m->name) &&
	    (!caller || !frame_set(cx, &mf, "caller", jv_ref(caller))))
		r = capture(cx, &mf, m->kids[0]);
	jv_unref(mf.vars);
	cx->line = line;
	return r;
}

static struct jv *call_caller(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	const struct jnode *cb = fn->u.func.node;
	struct jcell *cell = fn->u.func.cell;
	struct jframe cf;
	struct jv *r = NULL;

	if (!cell->frame)
		return jx_fail(cx, "caller() used after its call block "
			       "ended");
	if (frame_init(cx, &cf, cell->frame))
		return NULL;
	if (!bind_params(cx, &cf, cb, 2, a, "caller"))
		r = capture(cx, &cf, cb->kids[1]);
	jv_unref(cf.vars);
	return r;
}

static int exec_call_block(struct jctx *cx, struct jframe *f,
			   const struct jnode *n, struct jbuf *out)
{
	const struct jnode *call = n->kids[0];
	struct jcell *cell = calloc(1, sizeof(*cell));
	struct jv *fn = NULL, *caller, *r = NULL;
	struct jargs a;

	if (!cell) {
		oom(cx);
		return FLOW_ERR;
	}
	cell->refs = 1;
	cell->frame = f;
	caller = jv_func(call_caller, "caller", NULL, n);
	if (!caller) {
		free(cell);
		oom(cx);
		return FLOW_ERR;
	}
	caller->u.func.cell = cell;
	fn = jx_eval(cx, f, call->kids[0]);
	if (fn && !eval_args(cx, f, call, 1, &a)) {
		a.kwn[a.nkw] = "caller";
		a.kwv[a.nkw++] = jv_ref(caller);
		cx->line = n->line;
		r = jx_call(cx, fn, &a);
		args_free(&a);
	}
	cell->frame = NULL;
	jv_unref(caller);
	jv_unref(fn);
	if (!r)
		return FLOW_ERR;
	if (output(cx, out, r)) {
		jv_unref(r);
		return FLOW_ERR;
	}
	jv_unref(r);
	return FLOW_OK;
}

static int exec_stmt(struct jctx *cx, struct jframe *f, const struct jnode *n,
		     struct jbuf *out)
{
	struct jv *v, *fv;
	int r;

	cx->line = n->line;
	switch (n->kind) {
	case JN_TEXT:
		jbuf_add(out, n->val->u.str.s, n->val->u.str.len);
		if (out->oom) {
			buf_fail(cx, out);
			return FLOW_ERR;
		}
		return jx_charge(cx, n->val->u.str.len / 64);
	case JN_OUTPUT:
		v = jx_eval(cx, f, n->kids[0]);
		if (!v)
			return FLOW_ERR;
		r = output(cx, out, v);
		jv_unref(v);
		return r ? FLOW_ERR : FLOW_OK;
	case JN_BODY:
		return exec_body(cx, f, n, out);
	case JN_IF:
		v = jx_eval(cx, f, n->kids[0]);
		if (!v)
			return FLOW_ERR;
		r = jv_truthy(v);
		jv_unref(v);
		if (r)
			return exec_body(cx, f, n->kids[1], out);
		if (n->kids[2])
			return exec_body(cx, f, n->kids[2], out);
		return FLOW_OK;
	case JN_FOR:
		return exec_for(cx, f, n, out);
	case JN_SET:
		v = jx_eval(cx, f, n->kids[1]);
		if (!v)
			return FLOW_ERR;
		cx->line = n->line;
		return assign(cx, f, n->kids[0], v) ? FLOW_ERR : FLOW_OK;
	case JN_SET_BLOCK:
		v = capture(cx, f, n->kids[1]);
		if (!v)
			return FLOW_ERR;
		if (n->kids[2]) {
			fv = eval_filter_chain(cx, f, n->kids[2], v);
			jv_unref(v);
			if (!fv)
				return FLOW_ERR;
			v = fv;
		}
		cx->line = n->line;
		return assign(cx, f, n->kids[0], v) ? FLOW_ERR : FLOW_OK;
	case JN_MACRO:
		v = jv_func(call_macro, n->name, NULL, n);
		return frame_set(cx, f, n->name, v) ? FLOW_ERR : FLOW_OK;
	case JN_CALL_BLOCK:
		return exec_call_block(cx, f, n, out);
	case JN_FILTER_BLOCK:
		v = capture(cx, f, n->kids[1]);
		if (!v)
			return FLOW_ERR;
		fv = eval_filter_chain(cx, f, n->kids[0], v);
		jv_unref(v);
		if (!fv)
			return FLOW_ERR;
		r = output(cx, out, fv);
		jv_unref(fv);
		return r ? FLOW_ERR : FLOW_OK;
	case JN_BREAK:
		return FLOW_BREAK;
	case JN_CONTINUE:
		return FLOW_CONTINUE;
	case JN_WITH: {
		struct jframe wf;

		if (frame_init(cx, &wf, f))
			return FLOW_ERR;
		r = FLOW_OK;
		for (size_t i = 1; i + 1 < n->nkids && r == FLOW_OK; i += 2) {
			v = jx_eval(cx, f, n->kids[i + 1]);
			if (!v || assign(cx, &wf, n->kids[i], v))
				r = FLOW_ERR;
		}
		if (r == FLOW_OK)
			r = exec_body(cx, &wf, n->kids[0], out);
		jv_unref(wf.vars);
		return r;
	}
	default:
		jx_fail(cx, "expression used as a statement");
		return FLOW_ERR;
	}
}

static int exec_body(struct jctx *cx, struct jframe *f, const struct jnode *b,
		     struct jbuf *out)
{
	int r = FLOW_OK;

	if (++cx->depth > JJ_MAX_DEPTH) {
		cx->depth--;
		if (!cx->err->code)
			hf_err_set(cx->err, HF_ERANGE, "line %d: maximum "
				   "recursion depth exceeded", b->line);
		return FLOW_ERR;
	}
	for (size_t i = 0; i < b->nkids; i++) {
		if (jx_charge(cx, 1)) {
			r = FLOW_ERR;
			break;
		}
		r = exec_stmt(cx, f, b->kids[i], out);
		if (r != FLOW_OK)
			break;
	}
	cx->depth--;
	if (r == FLOW_ERR && !cx->err->code)
		oom(cx);
	return r;
}

int jx_render(struct jctx *cx, const struct jnode *body, struct jv *globals,
	      struct jbuf *out)
{
	struct jframe root = { .parent = NULL, .vars = globals };

	cx->root = &root;
	return exec_body(cx, &root, body, out) == FLOW_ERR ? -1 : 0;
}
