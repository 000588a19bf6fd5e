/* lib/tok/chat/ops.c: Python's operators on template values and the
 * sandbox's attribute and item lookup (jinja2/sandbox.py getattr and
 * getitem: attribute first for ".", item first for "[]"). */
#define _GNU_SOURCE	/* memmem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/chat/jinja.h"

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

/* ---- lookups ---- */

struct jv *jx_getattr(struct jctx *cx, struct jv *obj, const char *name)
{
	struct jv *v;

	switch (obj->type) {
	case JV_UNDEF:
		return jx_undef_fail(cx, obj);
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
		return jx_undef_fail(cx, obj);
	case JV_DICT:
		v = jv_dict_get(obj, key);
		if (v)
			return jv_ref(v);
		break;
	case JV_LIST:
		if (intkey && !obj->u.list.view) {
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
				v = jv_str(s + a, ju_offset(s + a, len - a, 1));
				return obj->u.str.safe ? jv_markup(v) : v;
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
		return jx_undef_fail(cx, fn);
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
			return jx_buf_fail(cx, &b);
		}
		if (jx_charge(cx, seq->u.str.len * times / 64))
			return NULL;
		for (int64_t i = 0; i < times && !b.oom; i++)
			jbuf_add(&b, seq->u.str.s, seq->u.str.len);
		if (b.oom)
			return jx_buf_fail(cx, &b);
		return jbuf_take(&b);
	} else {
		struct jv *l = jv_list(seq->u.list.tuple);

		if (!l)
			return jx_oom(cx);
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
					return jx_oom(cx);
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


struct jv *jx_binop(struct jctx *cx, int op, struct jv *a, struct jv *b)
{
	static const char *const names[] = {
		[JO_ADD] = "+", [JO_SUB] = "-", [JO_MUL] = "*",
		[JO_DIV] = "/", [JO_FDIV] = "//", [JO_MOD] = "%",
		[JO_POW] = "** or pow()",
	};
	int64_t r = 0;
	int ovf;

	if (a->type == JV_UNDEF)
		return jx_undef_fail(cx, a);
	if (b->type == JV_UNDEF && !(op == JO_MOD && a->type == JV_STR))
		return jx_undef_fail(cx, b);
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
			if (y < 0 && x == 0)
				return jx_fail(cx, "0.0 cannot be raised to a "
					       "negative power");
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
		/* Markup + str and str + Markup escape the plain str */
		if (b->u.str.safe && !a->u.str.safe)
			jv_html_escape(&s, a->u.str.s, a->u.str.len);
		else
			jbuf_add(&s, a->u.str.s, a->u.str.len);
		if (a->u.str.safe && !b->u.str.safe)
			jv_html_escape(&s, b->u.str.s, b->u.str.len);
		else
			jbuf_add(&s, b->u.str.s, b->u.str.len);
		if (s.oom)
			return jx_buf_fail(cx, &s);
		if (a->u.str.safe || b->u.str.safe)
			return jv_markup(jbuf_take(&s));
		return jbuf_take(&s);
	}
	if (op == JO_ADD && a->type == JV_LIST && b->type == JV_LIST &&
	    a->u.list.tuple == b->u.list.tuple && !a->u.list.view &&
	    !b->u.list.view) {
		struct jv *l = jv_list(a->u.list.tuple);

		if (!l)
			return jx_oom(cx);
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
	if (op == JO_MUL && (a->type == JV_STR || (a->type == JV_LIST &&
	    !a->u.list.view)) && is_intlike(b))
		return repeat(cx, a, intval(b));
	if (op == JO_MUL && (b->type == JV_STR || (b->type == JV_LIST &&
	    !b->u.list.view)) && is_intlike(a))
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
	/* Python takes anything with __getitem__ (dict, list, Undefined)
	 * as a mapping, which need not be used up */
	if (ai < nargs && !(nargs == 1 && (args->type == JV_DICT ||
					   args->type == JV_UNDEF ||
					   (args->type == JV_LIST &&
					    !args->u.list.tuple)))) {
		jbuf_free(&b);
		return jx_fail(cx, "not all arguments converted during string "
			       "formatting");
	}
	if (b.oom)
		return jx_buf_fail(cx, &b);
	return jbuf_take(&b);
}

/* Python ordering: -1, 0, 1, or -2 (and err set) if not comparable. */
static int order(struct jctx *cx, const struct jv *a, const struct jv *b,
		 const char *op)
{
	if (a->type == JV_UNDEF || b->type == JV_UNDEF) {
		jx_undef_fail(cx, a->type == JV_UNDEF ? a : b);
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
	    a->u.list.tuple == b->u.list.tuple && !a->u.list.view &&
	    !b->u.list.view) {
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
		if (jv_unhashable(needle)) {
			jx_fail(cx, "unhashable type: '%s'",
				jv_type_name(jv_unhashable(needle)));
			return -1;
		}
		return jv_dict_get(hay, needle) != NULL;
	default:
		jx_fail(cx, "argument of type '%s' is not iterable",
			jv_type_name(hay));
		return -1;
	}
}

int jx_compare(struct jctx *cx, int op, struct jv *a, struct jv *b)
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

