/* lib/tok/chat/builtins.c: Jinja's tests (jinja2/tests.py), the globals
 * (range, namespace, dict, joiner; transformers' raise_exception and
 * strftime_now), the str/dict/list methods templates call (with the
 * mutating ones refused as ImmutableSandboxedEnvironment does), and the
 * helpers the builtins share. */
#define _GNU_SOURCE	/* memmem, strndup */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "core/utf8.h"
#include "tok/chat/jinja.h"

#define MAX_RANGE 100000	/* jinja2.sandbox.MAX_RANGE */

/* ---- arguments ---- */

/* Argument at position pos (or keyword name), borrowed; NULL if absent. */
struct jv *jb_arg(struct jargs *a, size_t pos, const char *name)
{
	for (size_t i = 0; name && i < a->nkw; i++)
		if (!strcmp(a->kwn[i], name))
			return a->kwv[i];
	return pos < a->npos ? a->pos[pos] : NULL;
}

int jb_arg_bool(struct jargs *a, size_t pos, const char *name, int def)
{
	struct jv *v = jb_arg(a, pos, name);

	return v ? jv_truthy(v) : def;
}

int jb_want_str(struct jctx *cx, struct jv *v, const char *what)
{
	if (v && v->type == JV_STR)
		return 0;
	jx_fail(cx, "%s must be a string, not %s", what,
		v ? jv_type_name(v) : "nothing");
	return -1;
}

struct jv *jb_oom(struct jctx *cx)
{
	if (!cx->err->code)
		hf_err_set(cx->err, HF_ENOMEM, "out of memory");
	return NULL;
}

struct jv *jb_take(struct jctx *cx, struct jbuf *b)
{
	if (b->oom == 2) {
		jbuf_free(b);
		if (!cx->err->code)
			hf_err_set(cx->err, HF_ERANGE, "line %d: string "
				   "larger than %u bytes", cx->line,
				   JJ_MAX_OUTPUT);
		return NULL;
	}
	if (b->oom) {
		jbuf_free(b);
		return jb_oom(cx);
	}
	if (jx_charge(cx, b->n / 64)) {
		jbuf_free(b);
		return NULL;
	}
	return jbuf_take(b);
}

struct jv *jb_to_str(struct jctx *cx, struct jv *v)
{
	struct jbuf b = { 0 };

	if (v->type == JV_STR)
		return jv_ref(v);
	jv_str_into(&b, v);
	return jb_take(cx, &b);
}

struct jv *jb_list_push(struct jctx *cx, struct jv *l, struct jv *item)
{
	if (!item)
		return NULL;
	if (jv_list_push(l, item)) {
		if (l->u.list.n >= JJ_MAX_ITEMS)
			return jx_fail(cx, "list too long");
		return jb_oom(cx);
	}
	return l;
}

/* The items of an iterable as a new list (str: characters, dict: keys,
 * undefined: empty). */
struct jv *jb_items_of(struct jctx *cx, struct jv *v)
{
	struct jv *l;
	size_t i = 0, adv;

	switch (v->type) {
	case JV_LIST:
		return jv_ref(v);
	case JV_UNDEF:
		l = jv_list(0);
		return l ? l : jb_oom(cx);
	case JV_DICT:
		l = jv_list(0);
		if (!l)
			return jb_oom(cx);
		for (i = 0; i < v->u.dict.n; i++)
			if (!jb_list_push(cx, l, jv_ref(v->u.dict.k[i]))) {
				jv_unref(l);
				return NULL;
			}
		return l;
	case JV_STR:
		l = jv_list(0);
		if (!l)
			return jb_oom(cx);
		if (jx_charge(cx, v->u.str.len)) {
			jv_unref(l);
			return NULL;
		}
		while (i < v->u.str.len) {
			ju_decode(v->u.str.s + i, v->u.str.len - i, &adv);
			if (!jb_list_push(cx, l, jv_str(v->u.str.s + i, adv))) {
				jv_unref(l);
				return jb_oom(cx);
			}
			i += adv;
		}
		return l;
	default:
		return jx_fail(cx, "'%s' object is not iterable",
			       jv_type_name(v));
	}
}

int jb_cmp(struct jctx *cx, const struct jv *a, const struct jv *b)
{
	if (jv_is_num(a) && jv_is_num(b))
		return jv_num(a) < jv_num(b) ? -1 : jv_num(a) > jv_num(b);
	if (a->type == JV_STR && b->type == JV_STR) {
		size_t n = a->u.str.len < b->u.str.len ? a->u.str.len :
			   b->u.str.len;
		int c = memcmp(a->u.str.s, b->u.str.s, n);

		if (c)
			return c < 0 ? -1 : 1;
		return a->u.str.len < b->u.str.len ? -1 :
		       a->u.str.len > b->u.str.len;
	}
	if (a->type == JV_LIST && b->type == JV_LIST) {
		for (size_t i = 0; i < a->u.list.n && i < b->u.list.n; i++) {
			if (jv_equal(a->u.list.v[i], b->u.list.v[i]))
				continue;
			return jb_cmp(cx, a->u.list.v[i], b->u.list.v[i]);
		}
		return a->u.list.n < b->u.list.n ? -1 :
		       a->u.list.n > b->u.list.n;
	}
	jx_fail(cx, "'<' not supported between instances of '%s' and '%s'",
		jv_type_name(a), jv_type_name(b));
	return 2;
}

struct jv *jb_dict_items(struct jctx *cx, struct jv *d)
{
	struct jv *l = jv_list(0);

	if (!l)
		return jb_oom(cx);
	for (size_t i = 0; i < d->u.dict.n; i++) {
		struct jv *t = jv_list(1);

		if (!t || jv_list_push(t, jv_ref(d->u.dict.k[i])) ||
		    jv_list_push(t, jv_ref(d->u.dict.v[i])) ||
		    jv_list_push(l, t)) {
			jv_unref(l);
			return jb_oom(cx);
		}
	}
	return l;
}

/* ---- tests ---- */

static const char *const test_names[] = {
	"boolean", "callable", "defined", "divisibleby", "eq", "equalto",
	"escaped", "even", "false", "filter", "float", "ge", "greaterthan",
	"gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt",
	"mapping", "ne", "none", "number", "odd", "sameas", "sequence",
	"string", "test", "true", "undefined", "upper", "==", "!=", "<",
	"<=", ">", ">=", NULL,
};

int jb_has_test(const char *name)
{
	for (int i = 0; test_names[i]; i++)
		if (!strcmp(test_names[i], name))
			return 1;
	return 0;
}

/* Tests that take one argument besides the value; the rest take none. */
static const char *const tests_with_arg[] = {
	"divisibleby", "eq", "equalto", "ne", "lt", "lessthan", "le", "gt",
	"greaterthan", "ge", "sameas", "in", "==", "!=", "<", "<=", ">", ">=",
	NULL,
};

int jb_test(struct jctx *cx, const char *name, struct jv *v, struct jargs *a)
{
	struct jv *o = jb_arg(a, 0, NULL), *r;
	size_t want = 0;
	int c;

	for (int i = 0; tests_with_arg[i]; i++)
		if (!strcmp(tests_with_arg[i], name))
			want = 1;
	if (a->npos + a->nkw != want) {
		jx_fail(cx, "test '%s' takes %zu argument(s) but %zu were "
			"given", name, want + 1, a->npos + a->nkw + 1);
		return -1;
	}
	if (want && !o)
		o = a->kwv[0];

	if (!strcmp(name, "defined"))
		return v->type != JV_UNDEF;
	if (!strcmp(name, "undefined"))
		return v->type == JV_UNDEF;
	if (!strcmp(name, "none"))
		return v->type == JV_NONE;
	if (!strcmp(name, "string"))
		return v->type == JV_STR;
	if (!strcmp(name, "mapping"))
		return v->type == JV_DICT && !v->u.dict.loop;
	if (!strcmp(name, "number"))
		return jv_is_num(v);
	if (!strcmp(name, "integer"))
		return v->type == JV_INT;
	if (!strcmp(name, "float"))
		return v->type == JV_FLOAT;
	if (!strcmp(name, "boolean"))
		return v->type == JV_BOOL;
	if (!strcmp(name, "true"))
		return v->type == JV_BOOL && v->u.b;
	if (!strcmp(name, "false"))
		return v->type == JV_BOOL && !v->u.b;
	if (!strcmp(name, "callable"))	/* Undefined has __call__ */
		return v->type == JV_FUNC || v->type == JV_UNDEF;
	if (!strcmp(name, "iterable"))
		return v->type == JV_STR || v->type == JV_LIST ||
		       v->type == JV_DICT || v->type == JV_UNDEF;
	if (!strcmp(name, "sequence"))	/* len() and [] */
		return v->type == JV_STR || (v->type == JV_LIST &&
					     !v->u.list.view) ||
		       v->type == JV_DICT || v->type == JV_UNDEF;
	if (!strcmp(name, "escaped"))
		return 0;
	if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
		struct jv *s = jb_to_str(cx, v);

		if (!s)
			return -1;
		c = jt_is_case(s, name[0] == 'u');
		jv_unref(s);
		return c;
	}
	if (!strcmp(name, "filter") || !strcmp(name, "test")) {
		if (v->type != JV_STR)
			return 0;
		return name[0] == 'f' ? jb_has_filter(v->u.str.s) :
		       jb_has_test(v->u.str.s);
	}
	if (!strcmp(name, "odd") || !strcmp(name, "even") ||
	    !strcmp(name, "divisibleby")) {
		struct jv *two = NULL;
		int want_zero = strcmp(name, "odd") != 0;

		if (name[0] == 'd') {
			if (!o) {
				jx_fail(cx, "divisibleby needs a number");
				return -1;
			}
		} else {
			o = two = jv_int(2);
			if (!two) {
				jb_oom(cx);
				return -1;
			}
		}
		if (!jv_is_num(v) || !jv_is_num(o)) {
			jx_fail(cx, "unsupported operand type(s) for %%: '%s' "
				"and '%s'", jv_type_name(v), jv_type_name(o));
			jv_unref(two);
			return -1;
		}
		if (jv_num(o) == 0) {
			jv_unref(two);
			jx_fail(cx, "integer division or modulo by zero");
			return -1;
		}
		if (v->type != JV_FLOAT && o->type != JV_FLOAT) {
			int64_t x = v->type == JV_BOOL ? v->u.b : v->u.i;
			int64_t y = o->type == JV_BOOL ? o->u.b : o->u.i;

			c = y == -1 ? 1 : (x % y == 0);
		} else {
			c = fmod(jv_num(v), jv_num(o)) == 0;
		}
		jv_unref(two);
		return want_zero ? c : !c;
	}
	if (!o) {
		jx_fail(cx, "test '%s' needs an argument", name);
		return -1;
	}
	if (!strcmp(name, "sameas")) {
		if (v->type != o->type)
			return 0;
		if (v->type == JV_NONE)
			return 1;
		if (v->type == JV_BOOL)
			return v->u.b == o->u.b;
		return v == o;
	}
	if (!strcmp(name, "in")) {
		switch (o->type) {
		case JV_STR:
			if (v->type != JV_STR) {
				jx_fail(cx, "'in <string>' requires string as "
					"left operand");
				return -1;
			}
			return memmem(o->u.str.s, o->u.str.len, v->u.str.s,
				      v->u.str.len) != NULL;
		case JV_LIST:
			for (size_t i = 0; i < o->u.list.n; i++)
				if (jv_equal(o->u.list.v[i], v))
					return 1;
			return 0;
		case JV_DICT:
			return jv_dict_get(o, v) != NULL;
		case JV_UNDEF:
			return 0;
		default:
			jx_fail(cx, "argument of type '%s' is not iterable",
				jv_type_name(o));
			return -1;
		}
	}
	if (!strcmp(name, "eq") || !strcmp(name, "equalto") ||
	    !strcmp(name, "=="))
		return jv_equal(v, o);
	if (!strcmp(name, "ne") || !strcmp(name, "!="))
		return !jv_equal(v, o);
	/* orderings */
	if (v->type == JV_UNDEF || o->type == JV_UNDEF) {
		r = jv_undef(NULL);
		jx_fail(cx, "%s", (v->type == JV_UNDEF ? v : o)->u.undef.hint ?
			(v->type == JV_UNDEF ? v : o)->u.undef.hint :
			"undefined value");
		jv_unref(r);
		return -1;
	}
	c = jb_cmp(cx, v, o);
	if (c == 2)
		return -1;
	if (!strcmp(name, "lt") || !strcmp(name, "lessthan") ||
	    !strcmp(name, "<"))
		return c < 0;
	if (!strcmp(name, "le") || !strcmp(name, "<="))
		return c <= 0;
	if (!strcmp(name, "gt") || !strcmp(name, "greaterthan") ||
	    !strcmp(name, ">"))
		return c > 0;
	return c >= 0;
}

/* ---- methods ---- */

/* Pad s to width code points: left and right fill counts. */
static struct jv *pad(struct jctx *cx, struct jv *s, int64_t left,
		      int64_t right, struct jv *fill)
{
	struct jbuf b = { 0 };
	const char *f = " ";
	size_t fl = 1;

	if (fill) {
		if (jb_want_str(cx, fill, "fill character"))
			return NULL;
		if (ju_count(fill->u.str.s, fill->u.str.len) != 1)
			return jx_fail(cx, "The fill character must be exactly "
				       "one character long");
		f = fill->u.str.s;
		fl = fill->u.str.len;
	}
	if (left + right > JJ_MAX_OUTPUT)
		return jx_fail(cx, "padding too wide");
	for (int64_t i = 0; i < left; i++)
		jbuf_add(&b, f, fl);
	jbuf_add(&b, s->u.str.s, s->u.str.len);
	for (int64_t i = 0; i < right; i++)
		jbuf_add(&b, f, fl);
	return jb_take(cx, &b);
}

/* The less common str methods: removeprefix/suffix, partition,
 * ljust/rjust/center/zfill, swapcase. */
static struct jv *str_method_more(struct jctx *cx, const char *m,
				  struct jv *s, struct jargs *a)
{
	struct jv *x = jb_arg(a, 0, NULL), *t;
	const char *p = s->u.str.s;
	size_t n = s->u.str.len;

	if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
		int suffix = m[6] == 's';

		if (jb_want_str(cx, x, m))
			return NULL;
		if (x->u.str.len > n || memcmp(p + (suffix ? n - x->u.str.len :
						    0), x->u.str.s,
					       x->u.str.len))
			return jv_ref(s);
		return jv_str(p + (suffix ? 0 : x->u.str.len),
			      n - x->u.str.len);
	}
	if (!strcmp(m, "partition") || !strcmp(m, "rpartition")) {
		const char *hit = NULL;
		int right = m[0] == 'r';

		if (jb_want_str(cx, x, m))
			return NULL;
		if (!x->u.str.len)
			return jx_fail(cx, "empty separator");
		for (size_t k = 0; k + x->u.str.len <= n; k++) {
			size_t at = right ? n - x->u.str.len - k : k;

			if (!memcmp(p + at, x->u.str.s, x->u.str.len)) {
				hit = p + at;
				break;
			}
		}
		t = jv_list(1);
		if (!t)
			return jb_oom(cx);
		if (!hit) {
			jv_list_push(t, right ? jv_str("", 0) : jv_ref(s));
			jv_list_push(t, jv_str("", 0));
			jv_list_push(t, right ? jv_ref(s) : jv_str("", 0));
		} else {
			jv_list_push(t, jv_str(p, hit - p));
			jv_list_push(t, jv_ref(x));
			jv_list_push(t, jv_str(hit + x->u.str.len,
					       n - (hit - p) - x->u.str.len));
		}
		if (t->u.list.n != 3) {
			jv_unref(t);
			return jb_oom(cx);
		}
		return t;
	}
	if (!strcmp(m, "ljust") || !strcmp(m, "rjust") ||
	    !strcmp(m, "center") || !strcmp(m, "zfill")) {
		int64_t len = (int64_t)ju_count(p, n), w, marg, left;

		if (!x || x->type != JV_INT)
			return jx_fail(cx, "%s() needs an integer width", m);
		w = x->u.i;
		if (w <= len)
			return jv_ref(s);
		marg = w - len;
		if (m[0] == 'l')
			return pad(cx, s, 0, marg, jb_arg(a, 1, NULL));
		if (m[0] == 'r')
			return pad(cx, s, marg, 0, jb_arg(a, 1, NULL));
		if (m[0] == 'c') {
			/* CPython's pad(): the odd space goes left when
			 * both the margin and the width are odd */
			left = marg / 2 + (marg & w & 1);
			return pad(cx, s, left, marg - left,
				   jb_arg(a, 1, NULL));
		}
		{
			struct jv *zero = jv_str("0", 1), *r, *rest;

			if (!zero)
				return jb_oom(cx);
			if (n && (p[0] == '+' || p[0] == '-')) {
				rest = jv_str(p + 1, n - 1);
				r = rest ? pad(cx, rest, marg, 0, zero) : NULL;
				jv_unref(rest);
				if (r) {
					struct jbuf b = { 0 };

					jbuf_addc(&b, p[0]);
					jbuf_add(&b, r->u.str.s, r->u.str.len);
					jv_unref(r);
					r = jb_take(cx, &b);
				}
			} else {
				r = pad(cx, s, marg, 0, zero);
			}
			jv_unref(zero);
			return r;
		}
	}
	if (!strcmp(m, "swapcase")) {
		struct jbuf b = { 0 };
		size_t i = 0, adv;

		while (i < n) {
			uint32_t c = ju_decode(p + i, n - i, &adv);
			uint32_t lo = utf8proc_tolower(c);
			char u[4];
			int k;

			c = lo != c ? lo : (uint32_t)utf8proc_toupper(c);
			k = hf_utf8_encode(c, u);
			jbuf_add(&b, u, k);
			i += adv;
		}
		return jb_take(cx, &b);
	}
	return jx_fail(cx, "unknown str method '%s'", m);
}

static struct jv *str_method_plain(struct jctx *cx, struct jv *fn,
				   struct jargs *a);

/* Markup's methods that return Markup (markupsafe wraps them), and
 * split, which gives a list of Markup. */
static struct jv *str_method(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	static const char *const keep[] = {
		"strip", "lstrip", "rstrip", "upper", "lower", "title",
		"capitalize", "replace", "ljust", "rjust", "center", "zfill",
		"swapcase", NULL,
	};
	const char *m = fn->u.func.name;
	struct jv *r = str_method_plain(cx, fn, a);

	if (!r || !fn->u.func.self->u.str.safe)
		return r;
	for (int i = 0; keep[i]; i++)
		if (!strcmp(keep[i], m))
			return jv_markup(r);
	/* the pieces are new strings (refs 1): marking cannot fail */
	if (r->type == JV_LIST && (!strcmp(m, "split") ||
				   !strcmp(m, "rsplit") ||
				   !strcmp(m, "splitlines")))
		for (size_t i = 0; i < r->u.list.n; i++)
			r->u.list.v[i]->u.str.safe = 1;
	return r;
}

static struct jv *str_method_plain(struct jctx *cx, struct jv *fn,
				   struct jargs *a)
{
	const char *m = fn->u.func.name;
	struct jv *s = fn->u.func.self, *x = jb_arg(a, 0, NULL);

	if (!strcmp(m, "strip"))
		return jt_strip(cx, s, x, 3);
	if (!strcmp(m, "lstrip"))
		return jt_strip(cx, s, x, 1);
	if (!strcmp(m, "rstrip"))
		return jt_strip(cx, s, x, 2);
	if (!strcmp(m, "split") || !strcmp(m, "rsplit"))
		return jt_split(cx, s, jb_arg(a, 0, "sep"),
				 jb_arg(a, 1, "maxsplit"), m[0] == 'r');
	if (!strcmp(m, "splitlines"))
		return jt_splitlines(cx, s->u.str.s, s->u.str.len,
				  jb_arg_bool(a, 0, "keepends", 0));
	if (!strcmp(m, "upper"))
		return jt_recase(cx, s->u.str.s, s->u.str.len, JT_UPPER);
	if (!strcmp(m, "lower") || !strcmp(m, "casefold"))
		return jt_recase(cx, s->u.str.s, s->u.str.len, JT_LOWER);
	if (!strcmp(m, "capitalize"))
		return jt_recase(cx, s->u.str.s, s->u.str.len, JT_CAPITALIZE);
	if (!strcmp(m, "title"))
		return jt_recase(cx, s->u.str.s, s->u.str.len, JT_PYTITLE);
	if (!strcmp(m, "replace"))
		return jt_replace(cx, s, x, jb_arg(a, 1, NULL), jb_arg(a, 2, NULL));
	if (!strcmp(m, "format"))
		return jt_format(cx, s, a);
	if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
		int end = m[0] == 'e';
		struct jv **cands = &x;
		size_t nc = 1;

		if (x && x->type == JV_LIST && x->u.list.tuple) {
			cands = x->u.list.v;
			nc = x->u.list.n;
		}
		for (size_t i = 0; i < nc; i++) {
			struct jv *p = cands[i];

			if (jb_want_str(cx, p, m))
				return NULL;
			if (p->u.str.len > s->u.str.len)
				continue;
			if (!memcmp(s->u.str.s + (end ? s->u.str.len -
						  p->u.str.len : 0),
				    p->u.str.s, p->u.str.len))
				return JV_TRUE_P;
		}
		return JV_FALSE_P;
	}
	if (!strcmp(m, "join")) {
		struct jv *items, *r;
		struct jbuf b = { 0 };

		if (!x)
			return jx_fail(cx, "join() takes exactly one argument");
		items = jb_items_of(cx, x);
		if (!items)
			return NULL;
		for (size_t i = 0; i < items->u.list.n; i++) {
			struct jv *it = items->u.list.v[i];

			if (it->type != JV_STR) {
				jbuf_free(&b);
				jv_unref(items);
				return jx_fail(cx, "sequence item %zu: expected "
					       "str instance, %s found", i,
					       jv_type_name(it));
			}
			if (i)
				jbuf_add(&b, s->u.str.s, s->u.str.len);
			jbuf_add(&b, it->u.str.s, it->u.str.len);
		}
		jv_unref(items);
		r = jb_take(cx, &b);
		return r;
	}
	if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") ||
	    !strcmp(m, "rindex") || !strcmp(m, "count")) {
		const char *hit = NULL, *p = s->u.str.s;
		size_t n = s->u.str.len;

		if (jb_want_str(cx, x, m))
			return NULL;
		if (!strcmp(m, "count")) {
			int64_t c = 0;
			size_t i = 0;

			if (!x->u.str.len)
				return jv_int(ju_count(p, n) + 1);
			while ((hit = memmem(p + i, n - i, x->u.str.s,
					     x->u.str.len))) {
				c++;
				i = hit - p + x->u.str.len;
			}
			return jv_int(c);
		}
		if (m[0] == 'r') {
			for (size_t k = n >= x->u.str.len ?
			     n - x->u.str.len + 1 : 0; k-- > 0;)
				if (!memcmp(p + k, x->u.str.s, x->u.str.len)) {
					hit = p + k;
					break;
				}
		} else {
			hit = x->u.str.len ? memmem(p, n, x->u.str.s,
						    x->u.str.len) : p;
		}
		if (!hit) {
			if (strstr(m, "index"))
				return jx_fail(cx, "substring not found");
			return jv_int(-1);
		}
		return jv_int(ju_count(p, hit - p));
	}
	if (!strncmp(m, "is", 2)) {
		size_t i = 0, adv;
		int ok = s->u.str.len > 0;

		if (!strcmp(m, "islower") || !strcmp(m, "isupper"))
			return jv_bool(jt_is_case(s, m[2] == 'u'));
		while (ok && i < s->u.str.len) {
			uint32_t c = ju_decode(s->u.str.s + i,
					       s->u.str.len - i, &adv);

			if (!strcmp(m, "isnumeric"))
				ok = utf8proc_category(c) >=
				     UTF8PROC_CATEGORY_ND &&
				     utf8proc_category(c) <=
				     UTF8PROC_CATEGORY_NO;
			else if (!strcmp(m, "isdigit") ||
				 !strcmp(m, "isdecimal"))
				ok = utf8proc_category(c) ==
				     UTF8PROC_CATEGORY_ND;
			else if (!strcmp(m, "isalpha"))
				ok = jt_is_alpha(c);
			else if (!strcmp(m, "isalnum"))
				ok = jt_is_alnum(c);
			else
				ok = ju_isspace(c);
			i += adv;
		}
		return jv_bool(ok);
	}
	return str_method_more(cx, m, s, a);
}

static struct jv *dict_method(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	const char *m = fn->u.func.name;
	struct jv *d = fn->u.func.self, *r, *l;

	if (!strcmp(m, "get")) {
		struct jv *k = jb_arg(a, 0, NULL), *def = jb_arg(a, 1, NULL);

		if (!k)
			return jx_fail(cx, "get expected at least 1 argument");
		r = jv_dict_get(d, k);
		return jv_ref(r ? r : def ? def : JV_NONE_P);
	}
	if (!strcmp(m, "items")) {
		l = jb_dict_items(cx, d);
		if (l)
			l->u.list.view = JV_ITEMS;
		return l;
	}
	if (!strcmp(m, "copy")) {
		r = jv_dict(JV_DICT);
		for (size_t i = 0; r && i < d->u.dict.n; i++)
			if (jv_dict_set(r, jv_ref(d->u.dict.k[i]),
					jv_ref(d->u.dict.v[i]))) {
				jv_unref(r);
				r = NULL;
			}
		return r ? r : jb_oom(cx);
	}
	l = jv_list(0);
	if (!l)
		return jb_oom(cx);
	l->u.list.view = m[0] == 'k' ? JV_KEYS : JV_VALUES;
	for (size_t i = 0; i < d->u.dict.n; i++)
		if (!jb_list_push(cx, l, jv_ref(m[0] == 'k' ? d->u.dict.k[i] :
					     d->u.dict.v[i]))) {
			jv_unref(l);
			return NULL;
		}
	return l;
}

static struct jv *list_method(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	struct jv *l = fn->u.func.self, *x = jb_arg(a, 0, NULL);
	int64_t c = 0;

	if (!strcmp(fn->u.func.name, "copy")) {
		struct jv *r = jv_list(0);

		for (size_t i = 0; r && i < l->u.list.n; i++)
			if (!jb_list_push(cx, r, jv_ref(l->u.list.v[i]))) {
				jv_unref(r);
				return NULL;
			}
		return r ? r : jb_oom(cx);
	}
	if (!x)
		return jx_fail(cx, "%s() takes exactly one argument",
			       fn->u.func.name);
	for (size_t i = 0; i < l->u.list.n; i++) {
		if (!jv_equal(l->u.list.v[i], x))
			continue;
		if (!strcmp(fn->u.func.name, "index"))
			return jv_int(i);
		c++;
	}
	if (!strcmp(fn->u.func.name, "index"))
		return jx_fail(cx, "value is not in list");
	return jv_int(c);
}

struct jv *jb_method(struct jctx *cx, struct jv *obj, const char *name)
{
	static const char *const str_m[] = {
		"strip", "lstrip", "rstrip", "split", "rsplit", "splitlines",
		"startswith", "endswith", "upper", "lower", "casefold",
		"capitalize", "title", "replace", "format", "join", "find",
		"rfind", "index", "rindex", "count", "isdigit", "isalpha",
		"isalnum", "isspace", "islower", "isupper", "isnumeric",
		"isdecimal", "removeprefix", "removesuffix", "partition",
		"rpartition", "ljust", "rjust", "center", "zfill", "swapcase",
		NULL,
	};
	static const char *const dict_m[] = {
		"get", "items", "keys", "values", "copy", NULL,
	};
	static const char *const list_m[] = { "index", "count", "copy", NULL };
	/* what ImmutableSandboxedEnvironment refuses */
	static const char *const unsafe[] = {
		"append", "extend", "insert", "pop", "remove", "reverse",
		"sort", "clear", "update", "setdefault", "popitem", "add",
		"discard", "difference_update", "intersection_update",
		"symmetric_difference_update", NULL,
	};
	const char *const *names = obj->type == JV_STR ? str_m :
				   obj->type == JV_DICT ? dict_m : list_m;
	jfn fn = obj->type == JV_STR ? str_method :
		 obj->type == JV_DICT ? dict_method : list_method;
	struct jv *r;

	if ((obj->type == JV_LIST && obj->u.list.view) ||
	    (obj->type == JV_DICT && obj->u.dict.loop))
		return NULL;	/* generators and views: no list methods */
	for (int i = 0; names[i]; i++) {
		if (strcmp(names[i], name))
			continue;
		r = jv_func(fn, names[i], obj, NULL);
		return r ? r : jb_oom(cx);
	}
	if (obj->type != JV_STR) {
		for (int i = 0; unsafe[i]; i++)
			if (!strcmp(unsafe[i], name))
				return jv_undef("access to attribute '%s' of "
						"'%s' object is unsafe.", name,
						jv_type_name(obj));
	}
	if (name[0] == '_' && name[1] == '_')
		return jv_undef("access to attribute '%s' of '%s' object is "
				"unsafe.", name, jv_type_name(obj));
	return NULL;
}

/* ---- globals ---- */

static struct jv *g_range(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	int64_t start = 0, stop, step = 1, n;
	struct jv *l;

	for (size_t i = 0; i < a->npos; i++)
		if (a->pos[i]->type != JV_INT && a->pos[i]->type != JV_BOOL)
			return jx_fail(cx, "'%s' object cannot be interpreted "
				       "as an integer",
				       jv_type_name(a->pos[i]));
#define IV(k) (a->pos[k]->type == JV_BOOL ? a->pos[k]->u.b : a->pos[k]->u.i)
	if (a->npos == 1) {
		stop = IV(0);
	} else if (a->npos == 2 || a->npos == 3) {
		start = IV(0);
		stop = IV(1);
		if (a->npos == 3)
			step = IV(2);
	} else {
		return jx_fail(cx, "range expected 1 to 3 arguments");
	}
#undef IV
	if (!step)
		return jx_fail(cx, "range() arg 3 must not be zero");
	if (step > 0)
		n = stop > start ? (int64_t)(((double)stop - start - 1) / step) + 1 : 0;
	else
		n = stop < start ? (int64_t)(((double)start - stop - 1) / -step) + 1 : 0;
	if (n > MAX_RANGE)
		return jx_fail(cx, "Range too big. The sandbox blocks ranges "
			       "larger than MAX_RANGE (%d).", MAX_RANGE);
	if (jx_charge(cx, n))
		return NULL;
	l = jv_list(0);
	if (!l)
		return jb_oom(cx);
	for (int64_t i = 0; i < n; i++)
		if (!jb_list_push(cx, l, jv_int(start + i * step))) {
			jv_unref(l);
			return cx->err->code ? NULL : jb_oom(cx);
		}
	return l;
}

static struct jv *g_namespace(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	struct jv *d = jv_dict(strcmp(fn->u.func.name, "dict") ? JV_NS :
			       JV_DICT);

	if (!d)
		return jb_oom(cx);
	for (size_t i = 0; i < a->npos; i++) {
		struct jv *src = a->pos[i];

		if (src->type != JV_DICT) {
			jv_unref(d);
			return jx_fail(cx, "%s() positional argument must be "
				       "a mapping", fn->u.func.name);
		}
		if (d->type == JV_NS && jx_holds_ns(cx, src)) {
			jv_unref(d);
			return cx->err->code ? NULL : jx_fail(cx, "cannot store "
				"a namespace in a namespace");
		}
		for (size_t k = 0; k < src->u.dict.n; k++)
			if (jv_dict_set(d, jv_ref(src->u.dict.k[k]),
					jv_ref(src->u.dict.v[k]))) {
				jv_unref(d);
				return jb_oom(cx);
			}
	}
	for (size_t i = 0; i < a->nkw; i++) {
		int r = d->type == JV_NS ? jx_holds_ns(cx, a->kwv[i]) : 0;

		if (r) {
			jv_unref(d);
			return r < 0 ? NULL : jx_fail(cx, "cannot store a "
						      "namespace in a "
						      "namespace");
		}
		if (jv_dict_sets(d, a->kwn[i], jv_ref(a->kwv[i]))) {
			jv_unref(d);
			return jb_oom(cx);
		}
	}
	return d;
}

static struct jv *g_raise(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	struct jv *m = jb_arg(a, 0, NULL);
	struct jbuf b = { 0 };

	if (m)
		jv_str_into(&b, m);
	if (b.oom)
		return jb_oom(cx);
	if (!cx->err->code) {
		hf_err_set(cx->err, HF_EINVAL, "%s", b.s ? b.s : "");
		cx->raised = 1;
	}
	jbuf_free(&b);
	return NULL;
}

static struct jv *g_strftime(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	struct jv *f = jb_arg(a, 0, NULL);
	time_t now = time(NULL);
	struct tm tm;
	size_t cap, n;
	char *buf;

	if (jb_want_str(cx, f, "strftime_now format"))
		return NULL;
	if (f->u.str.len > 4096 || memchr(f->u.str.s, 0, f->u.str.len))
		return jx_fail(cx, "strftime_now format too long");
	if (!localtime_r(&now, &tm))
		return jx_fail(cx, "localtime failed");
	cap = f->u.str.len * 64 + 64;
	buf = malloc(cap);
	if (!buf)
		return jb_oom(cx);
	n = strftime(buf, cap, f->u.str.s, &tm);
	if (!n && f->u.str.len)
		buf[0] = 0;
	return jv_str_own(buf, n);
}

static struct jv *joiner_call(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	/* self: [sep, used]; the first call gives "", later ones sep */
	struct jv *st = fn->u.func.self;

	if (st->u.list.v[1] == JV_FALSE_P) {
		st->u.list.v[1] = JV_TRUE_P;
		return jv_str("", 0);
	}
	return jv_ref(st->u.list.v[0]);
}

static struct jv *g_joiner(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	struct jv *sep = jb_arg(a, 0, "sep"), *st = jv_list(1), *r;

	if (!st || jv_list_push(st, sep ? jv_ref(sep) : jv_str(", ", 2)) ||
	    jv_list_push(st, JV_FALSE_P)) {
		jv_unref(st);
		return jb_oom(cx);
	}
	r = jv_func(joiner_call, "joiner", st, NULL);
	jv_unref(st);
	return r ? r : jb_oom(cx);
}

struct jv *jb_global(const char *name)
{
	static const struct {
		const char *name;
		jfn fn;
	} g[] = {
		{ "range", g_range }, { "namespace", g_namespace },
		{ "dict", g_namespace }, { "raise_exception", g_raise },
		{ "strftime_now", g_strftime }, { "joiner", g_joiner },
	};

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		if (!strcmp(g[i].name, name))
			return jv_func(g[i].fn, g[i].name, NULL, NULL);
	return NULL;
}
