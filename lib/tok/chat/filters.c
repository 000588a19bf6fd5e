/* lib/tok/chat/filters.c: Jinja's filters (jinja2/filters.py) and
 * transformers' tojson (json.dumps with ensure_ascii=False). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/chat/jinja.h"

/* ---- sorting (stable merge sort with a fallible comparison) ---- */

struct sortkey {
	struct jv *key;		/* what is compared */
	struct jv *item;	/* what is returned */
};

static int merge_sort(struct jctx *cx, struct sortkey *v, struct sortkey *tmp,
		      size_t n, int reverse)
{
	size_t h = n / 2, i = 0, j = h, k = 0;

	if (n < 2)
		return 0;
	if (merge_sort(cx, v, tmp, h, reverse) ||
	    merge_sort(cx, v + h, tmp, n - h, reverse))
		return -1;
	if (jx_charge(cx, n))
		return -1;
	while (i < h && j < n) {
		int c = jb_cmp(cx, v[j].key, v[i].key);

		if (c == 2)
			return -1;
		/* take the right one only when strictly before */
		if (reverse ? c > 0 : c < 0)
			tmp[k++] = v[j++];
		else
			tmp[k++] = v[i++];
	}
	while (i < h)
		tmp[k++] = v[i++];
	while (j < n)
		tmp[k++] = v[j++];
	memcpy(v, tmp, n * sizeof(*v));
	return 0;
}

/* Look up "a.b.0" the way Jinja's make_attrgetter does (getitem per
 * part, integers as indices). */
static struct jv *attr_path(struct jctx *cx, struct jv *item, struct jv *attr)
{
	struct jv *cur = jv_ref(item);
	char *path, *save = NULL, *part;

	if (attr->type != JV_STR) {
		struct jv *r = jx_getitem(cx, item, attr);

		jv_unref(cur);
		return r;
	}
	path = strdup(attr->u.str.s);
	if (!path) {
		jv_unref(cur);
		return jb_oom(cx);
	}
	for (part = strtok_r(path, ".", &save); part && cur;
	     part = strtok_r(NULL, ".", &save)) {
		char *end;
		long long idx = strtoll(part, &end, 10);
		struct jv *key = (*part && !*end) ? jv_int(idx) :
				 jv_strz(part), *next;

		if (!key) {
			jv_unref(cur);
			cur = jb_oom(cx);
			break;
		}
		next = jx_getitem(cx, cur, key);
		jv_unref(key);
		jv_unref(cur);
		cur = next;
	}
	free(path);
	return cur;
}

/* Lower-case strings for case-insensitive comparison (Jinja's
 * ignore_case); other values as they are. New reference. */
static struct jv *fold(struct jctx *cx, struct jv *v, int case_sensitive)
{
	if (case_sensitive || v->type != JV_STR)
		return jv_ref(v);
	return jt_recase(cx, v->u.str.s, v->u.str.len, JT_LOWER);
}

/* The sort filter's key, as jinja2's make_multi_attrgetter builds it:
 * a list of the (case-folded) values of the comma-separated attributes.
 * Lists compare element by element with == first, so equal Undefined
 * keys do not raise. */
static struct jv *multi_key(struct jctx *cx, struct jv *item, struct jv *attr,
			    int case_sensitive)
{
	struct jv *key = jv_list(0), *parts;

	if (!key)
		return jb_oom(cx);
	if (attr->type != JV_STR) {
		struct jv *k = attr_path(cx, item, attr);

		if (!k || !jb_list_push(cx, key, fold(cx, k, case_sensitive))) {
			jv_unref(k);
			jv_unref(key);
			return NULL;
		}
		jv_unref(k);
		return key;
	}
	{
		struct jv *comma = jv_str(",", 1);

		parts = comma ? jt_split(cx, attr, comma, NULL, 0) : NULL;
		jv_unref(comma);
	}
	for (size_t i = 0; parts && i < parts->u.list.n; i++) {
		struct jv *k = attr_path(cx, item, parts->u.list.v[i]);

		if (!k || !jb_list_push(cx, key, fold(cx, k, case_sensitive))) {
			jv_unref(k);
			jv_unref(parts);
			jv_unref(key);
			return NULL;
		}
		jv_unref(k);
	}
	if (!parts) {
		jv_unref(key);
		return NULL;
	}
	jv_unref(parts);
	return key;
}

/* by_value >= 0: dictsort's (key, value) pairs by that element; multi:
 * the sort filter's attribute key, else a single attribute (min, max). */
static struct jv *do_sort(struct jctx *cx, struct jv *v, int reverse,
			  int case_sensitive, struct jv *attr, int by_value,
			  int multi)
{
	struct jv *items = jb_items_of(cx, v), *r = NULL;
	struct sortkey *keys = NULL, *tmp = NULL;
	size_t n, i;

	if (!items)
		return NULL;
	n = items->u.list.n;
	keys = calloc(n + 1, sizeof(*keys));
	tmp = calloc(n + 1, sizeof(*tmp));
	if (!keys || !tmp) {
		jb_oom(cx);
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct jv *item = items->u.list.v[i], *k;

		if (multi && attr && attr->type != JV_NONE) {
			keys[i].key = multi_key(cx, item, attr,
						case_sensitive);
			keys[i].item = item;
			if (!keys[i].key)
				goto out;
			continue;
		}
		if (by_value >= 0)	/* dictsort: pairs, by key or value */
			k = jv_ref(item->u.list.v[by_value]);
		else if (attr && attr->type != JV_NONE)
			k = attr_path(cx, item, attr);
		else
			k = jv_ref(item);
		if (!k)
			goto out;
		keys[i].key = fold(cx, k, case_sensitive);
		jv_unref(k);
		keys[i].item = item;
		if (!keys[i].key)
			goto out;
	}
	if (merge_sort(cx, keys, tmp, n, reverse))
		goto out;
	r = jv_list(0);
	if (!r) {
		jb_oom(cx);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!jb_list_push(cx, r, jv_ref(keys[i].item))) {
			jv_unref(r);
			r = NULL;
			goto out;
		}
out:
	for (i = 0; keys && i < n; i++)
		jv_unref(keys[i].key);
	free(keys);
	free(tmp);
	jv_unref(items);
	return r;
}

/* ---- tojson ---- */

static struct jv *tojson(struct jctx *cx, struct jv *v, struct jargs *a)
{
	/* transformers: tojson(x, ensure_ascii=False, indent=None,
	 * separators=None, sort_keys=False) */
	struct jv *ind = jb_arg(a, 1, "indent");
	struct jv *seps = jb_arg(a, 2, "separators");
	struct jbuf b = { 0 };
	const char *item_sep = NULL, *key_sep = NULL, *bad, *indent = NULL;
	char spaces[257];

	/* json.dumps: an int indent is that many spaces, a str is used as
	 * it is */
	if (ind && (ind->type == JV_INT || ind->type == JV_BOOL)) {
		int64_t n = ind->type == JV_BOOL ? ind->u.b : ind->u.i;

		n = n < 0 ? 0 : n > 256 ? 256 : n;
		memset(spaces, ' ', (size_t)n);
		spaces[n] = 0;
		indent = spaces;
	} else if (ind && ind->type == JV_STR) {
		indent = ind->u.str.s;
	} else if (ind && ind->type != JV_NONE) {
		return jx_fail(cx, "tojson indent must be an integer or a "
			       "string");
	}
	if (seps && seps->type == JV_LIST && seps->u.list.n == 2 &&
	    seps->u.list.v[0]->type == JV_STR &&
	    seps->u.list.v[1]->type == JV_STR) {
		item_sep = seps->u.list.v[0]->u.str.s;
		key_sep = seps->u.list.v[1]->u.str.s;
	} else if (seps && seps->type != JV_NONE) {
		return jx_fail(cx, "tojson separators must be a pair of "
			       "strings");
	}
	if (jv_tojson(&b, v, indent, item_sep, key_sep,
		      jb_arg_bool(a, 3, "sort_keys", 0),
		      jb_arg_bool(a, 0, "ensure_ascii", 0), &bad)) {
		jbuf_free(&b);
		if (b.oom)
			return jb_take(cx, &b);
		return jx_fail(cx, "Object of type %s is not JSON "
			       "serializable", bad ? bad : "?");
	}
	return jb_take(cx, &b);
}

/* ---- filters ---- */

static struct jv *f_length(struct jctx *cx, struct jv *v)
{
	switch (v->type) {
	case JV_STR:
		return jv_int(ju_count(v->u.str.s, v->u.str.len));
	case JV_LIST:
		if (v->u.list.view == JV_GEN)
			return jx_fail(cx, "object of type 'generator' has no "
				       "len()");
		return jv_int(v->u.list.n);
	case JV_DICT:
		return jv_int(v->u.dict.n);
	case JV_UNDEF:
		return jv_int(0);
	default:
		return jx_fail(cx, "object of type '%s' has no len()",
			       jv_type_name(v));
	}
}

static int parse_pyint(const char *s, size_t len, int64_t *out)
{
	char buf[64];
	size_t a = 0, b = len, k = 0;
	char *end;

	while (a < b && ju_isspace((unsigned char)s[a]))
		a++;
	while (b > a && ju_isspace((unsigned char)s[b - 1]))
		b--;
	if (b == a || b - a >= sizeof(buf))
		return -1;
	for (size_t i = a; i < b; i++) {
		if (s[i] == '_' && i > a && i + 1 < b && s[i - 1] != '_')
			continue;
		buf[k++] = s[i];
	}
	buf[k] = 0;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return (*end || errno) ? -1 : 0;
}

static int parse_pyfloat(const char *s, size_t len, double *out)
{
	char buf[128];
	char *end;
	size_t a = 0, b = len;

	while (a < b && ju_isspace((unsigned char)s[a]))
		a++;
	while (b > a && ju_isspace((unsigned char)s[b - 1]))
		b--;
	if (b == a || b - a >= sizeof(buf))
		return -1;
	memcpy(buf, s + a, b - a);
	buf[b - a] = 0;
	if (strchr(buf, 'x') || strchr(buf, 'X'))	/* no hex floats */
		return -1;
	*out = strtod(buf, &end);
	return *end ? -1 : 0;
}

static struct jv *f_int(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *def = jb_arg(a, 0, "default");
	int64_t i;
	double d;

	switch (v->type) {
	case JV_INT:
		return jv_ref(v);
	case JV_BOOL:
		return jv_int(v->u.b);
	case JV_FLOAT:
		if (isfinite(v->u.f) && fabs(v->u.f) < 9.2e18)
			return jv_int((int64_t)v->u.f);
		break;
	case JV_STR:
		if (!parse_pyint(v->u.str.s, v->u.str.len, &i))
			return jv_int(i);
		if (!parse_pyfloat(v->u.str.s, v->u.str.len, &d) &&
		    isfinite(d) && fabs(d) < 9.2e18)
			return jv_int((int64_t)d);
		break;
	default:
		break;
	}
	return def ? jv_ref(def) : jv_int(0);
}

static struct jv *f_float(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *def = jb_arg(a, 0, "default");
	double d;

	if (jv_is_num(v))
		return jv_float(jv_num(v));
	if (v->type == JV_STR && !parse_pyfloat(v->u.str.s, v->u.str.len, &d))
		return jv_float(d);
	return def ? jv_ref(def) : jv_float(0.0);
}

static struct jv *f_round(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *pv = jb_arg(a, 0, "precision"), *mv = jb_arg(a, 1, "method");
	int64_t prec = pv && pv->type == JV_INT ? pv->u.i : 0;
	const char *method = mv && mv->type == JV_STR ? mv->u.str.s : "common";
	double x, scale, r;
	char buf[400];

	if (pv && pv->type != JV_INT && pv->type != JV_BOOL)
		return jx_fail(cx, "'%s' object cannot be interpreted as an "
			       "integer", jv_type_name(pv));
	if (pv && pv->type == JV_BOOL)
		prec = pv->u.b;
	if (!jv_is_num(v))
		return jx_fail(cx, "type %s doesn't define __round__ method",
			       jv_type_name(v));
	if (prec > 300 || prec < -300)
		return jx_fail(cx, "round precision out of range");
	x = jv_num(v);
	if (!strcmp(method, "common")) {
		if (v->type != JV_FLOAT)
			return jv_int(v->type == JV_BOOL ? v->u.b : v->u.i);
		if (!isfinite(x))
			return jv_float(x);
		if (prec >= 0) {
			/* correctly rounded, half to even, like Python */
			snprintf(buf, sizeof(buf), "%.*f", (int)prec, x);
			return jv_float(strtod(buf, NULL));
		}
		scale = pow(10, (double)-prec);
		return jv_float(nearbyint(x / scale) * scale);
	}
	scale = pow(10, (double)prec);
	if (!strcmp(method, "floor"))
		r = floor(x * scale) / scale;
	else if (!strcmp(method, "ceil"))
		r = ceil(x * scale) / scale;
	else
		return jx_fail(cx, "method must be common, ceil or floor");
	return jv_float(r);
}

static struct jv *f_join(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *sep = jb_arg(a, 0, "d"), *attr = jb_arg(a, 1, "attribute");
	struct jv *items = jb_items_of(cx, v);
	struct jbuf b = { 0 };

	if (!items)
		return NULL;
	for (size_t i = 0; i < items->u.list.n; i++) {
		struct jv *x = items->u.list.v[i];

		if (i && sep)
			jv_str_into(&b, sep);
		if (attr && attr->type != JV_NONE) {
			x = attr_path(cx, x, attr);
			if (!x) {
				jbuf_free(&b);
				jv_unref(items);
				return NULL;
			}
			jv_str_into(&b, x);
			jv_unref(x);
		} else {
			jv_str_into(&b, x);
		}
	}
	jv_unref(items);
	return jb_take(cx, &b);
}

static struct jv *replace_filter(struct jctx *cx, struct jv *s,
				 struct jargs *a)
{
	struct jv *old = jb_arg(a, 0, "old"), *new = jb_arg(a, 1, "new");
	struct jv *r = NULL;

	if (!old || !new)
		return jx_fail(cx, "replace() needs old and new");
	old = jb_to_str(cx, old);
	new = old ? jb_to_str(cx, new) : NULL;
	if (old && new)
		r = jt_replace(cx, s, old, new, jb_arg(a, 2, "count"));
	jv_unref(old);
	jv_unref(new);
	return r;
}

/* jinja2's do_indent: s += "\n" and s.splitlines(), so only strings. */
static struct jv *f_indent(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *w = jb_arg(a, 0, "width"), *s, *lines;
	int first = jb_arg_bool(a, 1, "first", 0);
	int blank = jb_arg_bool(a, 2, "blank", 0);
	struct jbuf ind = { 0 }, b = { 0 }, src = { 0 };

	if (!w || w->type == JV_INT || w->type == JV_BOOL) {
		int64_t n = w ? (w->type == JV_BOOL ? w->u.b : w->u.i) : 4;

		for (int64_t i = 0; i < n && i < 4096; i++)
			jbuf_addc(&ind, ' ');
	} else if (w->type == JV_STR) {
		jbuf_add(&ind, w->u.str.s, w->u.str.len);
	} else {
		return jx_fail(cx, "indent width must be an integer or a "
			       "string");
	}
	if (v->type != JV_STR) {
		jbuf_free(&ind);
		return jx_fail(cx, "'%s' object has no attribute 'splitlines'",
			       jv_type_name(v));
	}
	s = jb_to_str(cx, v);
	if (!s) {
		jbuf_free(&ind);
		return NULL;
	}
	/* jinja2: s += "\n" before jt_splitlines() */
	jbuf_add(&src, s->u.str.s, s->u.str.len);
	jbuf_addc(&src, '\n');
	jv_unref(s);
	lines = src.oom ? NULL : jt_splitlines(cx, src.s, src.n, 0);
	jbuf_free(&src);
	if (!lines) {
		jbuf_free(&ind);
		return src.oom ? jb_oom(cx) : NULL;
	}
	if (first)
		jbuf_add(&b, ind.s, ind.n);
	for (size_t i = 0; i < lines->u.list.n; i++) {
		struct jv *l = lines->u.list.v[i];

		if (i) {
			jbuf_addc(&b, '\n');
			if (blank || l->u.str.len)
				jbuf_add(&b, ind.s, ind.n);
		}
		jbuf_add(&b, l->u.str.s, l->u.str.len);
	}
	jv_unref(lines);
	jbuf_free(&ind);
	return jb_take(cx, &b);
}

/* Mark l (may be NULL) as a Python generator. */
static struct jv *gen(struct jv *l)
{
	if (l)
		l->u.list.view = JV_GEN;
	return l;
}

static struct jv *empty_gen(struct jctx *cx)
{
	struct jv *l = gen(jv_list(0));

	return l ? l : jb_oom(cx);
}

/* select / reject / selectattr / rejectattr */
static struct jv *f_select(struct jctx *cx, struct jv *v, struct jargs *a,
			   int want, int by_attr)
{
	struct jv *items, *out, *attr = NULL;
	struct jargs targs = { 0 };
	const char *test = NULL;
	size_t first = 0;

	/* jinja2 prepares the test only "if value:" */
	if (!jv_truthy(v))
		return empty_gen(cx);
	items = jb_items_of(cx, v);
	if (!items)
		return NULL;
	if (by_attr) {
		attr = jb_arg(a, 0, NULL);
		if (!attr) {
			jv_unref(items);
			return jx_fail(cx, "missing parameter for attribute "
				       "name");
		}
		first = 1;
	}
	if (a->npos > first) {
		if (jb_want_str(cx, a->pos[first], "test name")) {
			jv_unref(items);
			return NULL;
		}
		test = a->pos[first]->u.str.s;
		if (!jb_has_test(test)) {
			jv_unref(items);
			return jx_fail(cx, "no test named '%s'", test);
		}
		targs.pos = a->pos + first + 1;
		targs.npos = a->npos - first - 1;
	}
	out = jv_list(0);
	if (!out) {
		jv_unref(items);
		return jb_oom(cx);
	}
	for (size_t i = 0; i < items->u.list.n; i++) {
		struct jv *x = items->u.list.v[i];
		struct jv *val = attr ? attr_path(cx, x, attr) : jv_ref(x);
		int r;

		if (!val)
			goto fail;
		if (jx_charge(cx, 1)) {
			jv_unref(val);
			goto fail;
		}
		r = test ? jb_test(cx, test, val, &targs) : jv_truthy(val);
		jv_unref(val);
		if (r < 0)
			goto fail;
		if (r == want && !jb_list_push(cx, out, jv_ref(x)))
			goto fail;
	}
	jv_unref(items);
	return gen(out);
fail:
	jv_unref(items);
	jv_unref(out);
	return NULL;
}

static struct jv *f_map(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *items, *out;
	struct jv *attr = jb_arg(a, 99, "attribute");
	struct jv *def = jb_arg(a, 99, "default");
	struct jargs fargs = { 0 };
	const char *filter = NULL;

	/* jinja2 prepares the map only "if value:" */
	if (!jv_truthy(v))
		return empty_gen(cx);
	items = jb_items_of(cx, v);
	if (!items)
		return NULL;
	if (!attr) {
		if (!a->npos || a->pos[0]->type != JV_STR) {
			jv_unref(items);
			return jx_fail(cx, "map requires a filter name or "
				       "attribute=");
		}
		filter = a->pos[0]->u.str.s;
		if (!jb_has_filter(filter)) {
			jv_unref(items);
			return jx_fail(cx, "no filter named '%s'", filter);
		}
		fargs.pos = a->pos + 1;
		fargs.npos = a->npos - 1;
	}
	out = jv_list(0);
	if (!out) {
		jv_unref(items);
		return jb_oom(cx);
	}
	for (size_t i = 0; i < items->u.list.n; i++) {
		struct jv *x = items->u.list.v[i], *r;

		if (jx_charge(cx, 1))
			goto fail;
		if (filter) {
			r = jb_filter(cx, filter, x, &fargs);
		} else {
			r = attr_path(cx, x, attr);
			if (r && r->type == JV_UNDEF && def) {
				jv_unref(r);
				r = jv_ref(def);
			}
		}
		if (!r || !jb_list_push(cx, out, r))
			goto fail;
	}
	jv_unref(items);
	return gen(out);
fail:
	jv_unref(items);
	jv_unref(out);
	return NULL;
}

static struct jv *f_unique(struct jctx *cx, struct jv *v, struct jargs *a)
{
	int cs = jb_arg_bool(a, 0, "case_sensitive", 0);
	struct jv *attr = jb_arg(a, 1, "attribute");
	struct jv *items = jb_items_of(cx, v), *out, *seen;

	if (!items)
		return NULL;
	out = jv_list(0);
	seen = jv_list(0);
	if (!out || !seen)
		goto fail_oom;
	for (size_t i = 0; i < items->u.list.n; i++) {
		struct jv *x = items->u.list.v[i], *k, *key;
		int dup = 0;

		k = attr && attr->type != JV_NONE ? attr_path(cx, x, attr) :
		    jv_ref(x);
		if (!k)
			goto fail;
		if (jv_unhashable(k)) {	/* jinja2 keeps a set of seen keys */
			jx_fail(cx, "unhashable type: '%s'",
				jv_type_name(jv_unhashable(k)));
			jv_unref(k);
			goto fail;
		}
		key = fold(cx, k, cs);
		jv_unref(k);
		if (!key || jx_charge(cx, seen->u.list.n))
			goto fail;
		for (size_t j = 0; j < seen->u.list.n && !dup; j++)
			dup = jv_equal(seen->u.list.v[j], key);
		if (dup) {
			jv_unref(key);
			continue;
		}
		if (!jb_list_push(cx, seen, key) ||
		    !jb_list_push(cx, out, jv_ref(x)))
			goto fail;
	}
	jv_unref(items);
	jv_unref(seen);
	return gen(out);
fail_oom:
	jb_oom(cx);
fail:
	jv_unref(items);
	jv_unref(out);
	jv_unref(seen);
	return NULL;
}

static struct jv *f_minmax(struct jctx *cx, struct jv *v, struct jargs *a,
			   int want_max)
{
	int cs = jb_arg_bool(a, 0, "case_sensitive", 0);
	struct jv *attr = jb_arg(a, 1, "attribute");
	struct jv *sorted = do_sort(cx, v, 0, cs, attr, -1, 0), *r;

	if (!sorted)
		return NULL;
	if (!sorted->u.list.n) {
		jv_unref(sorted);
		return jv_undef("No aggregated item, sequence was empty.");
	}
	/* max: the first of the largest, as Python's max() keeps it */
	if (want_max) {
		size_t i = sorted->u.list.n - 1;

		r = sorted->u.list.v[i];
	} else {
		r = sorted->u.list.v[0];
	}
	jv_ref(r);
	jv_unref(sorted);
	return r;
}

static struct jv *f_sum(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *attr = jb_arg(a, 0, "attribute"), *start = jb_arg(a, 1, "start");
	struct jv *items = jb_items_of(cx, v), *acc;

	if (!items)
		return NULL;
	acc = start ? jv_ref(start) : jv_int(0);
	for (size_t i = 0; acc && i < items->u.list.n; i++) {
		struct jv *x = attr && attr->type != JV_NONE ?
			       attr_path(cx, items->u.list.v[i], attr) :
			       jv_ref(items->u.list.v[i]), *n = NULL;

		if (!x) {
			jv_unref(acc);
			acc = NULL;
			break;
		}
		if (jv_is_num(acc) && jv_is_num(x)) {
			if (acc->type != JV_FLOAT && x->type != JV_FLOAT) {
				int64_t r;

				if (__builtin_add_overflow(
				    acc->type == JV_BOOL ? acc->u.b : acc->u.i,
				    x->type == JV_BOOL ? x->u.b : x->u.i, &r))
					jx_fail(cx, "integer overflow");
				else
					n = jv_int(r);
			} else {
				n = jv_float(jv_num(acc) + jv_num(x));
			}
		} else {
			jx_fail(cx, "unsupported operand type(s) for +: '%s' "
				"and '%s'", jv_type_name(acc), jv_type_name(x));
		}
		jv_unref(x);
		jv_unref(acc);
		acc = n;
	}
	jv_unref(items);
	return acc;
}

/* jinja2's do_batch: a batch is emitted when it reaches linecount items
 * (so 0 gives a leading empty batch, negative sizes one batch); the last
 * one is padded with fill_with unless that is none. */
static struct jv *f_batch(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *nv = jb_arg(a, 0, "linecount");
	struct jv *fill = jb_arg(a, 1, "fill_with");
	struct jv *items, *out, *cur;
	int64_t n = -1;
	int sized = nv && (nv->type == JV_INT || nv->type == JV_BOOL);

	if (!nv)
		return jx_fail(cx, "batch() missing 1 required positional "
			       "argument: 'linecount'");
	if (sized)
		n = nv->type == JV_BOOL ? nv->u.b : nv->u.i;
	items = jb_items_of(cx, v);
	if (!items)
		return NULL;
	out = gen(jv_list(0));
	cur = jv_list(0);
	if (!out || !cur)
		goto fail;
	for (size_t i = 0; i < items->u.list.n; i++) {
		if (sized && (int64_t)cur->u.list.n == n) {
			if (!jb_list_push(cx, out, cur)) {
				cur = NULL;
				goto fail;
			}
			cur = jv_list(0);
			if (!cur)
				goto fail;
		}
		if (!jb_list_push(cx, cur, jv_ref(items->u.list.v[i])))
			goto fail;
	}
	if (cur->u.list.n) {
		while (sized && fill && fill->type != JV_NONE &&
		       (int64_t)cur->u.list.n < n)
			if (!jb_list_push(cx, cur, jv_ref(fill)))
				goto fail;
		if (!jb_list_push(cx, out, cur)) {
			cur = NULL;
			goto fail;
		}
		cur = NULL;
	}
	jv_unref(cur);
	jv_unref(items);
	return out;
fail:
	jv_unref(cur);
	jv_unref(items);
	jv_unref(out);
	return cx->err->code ? NULL : jb_oom(cx);
}

/* escape: a Markup is left alone; forceescape escapes it anyway. */
static struct jv *f_escape(struct jctx *cx, struct jv *v, int force)
{
	struct jbuf b = { 0 }, s = { 0 };

	if (!force && v->type == JV_STR && v->u.str.safe)
		return jv_ref(v);
	jv_str_into(&s, v);
	jv_html_escape(&b, s.s ? s.s : "", s.n);
	if (!s.s)
		jbuf_add(&b, "", 0);
	jbuf_free(&s);
	return jv_markup(jb_take(cx, &b));
}

static struct jv *f_wordcount(struct jctx *cx, struct jv *v)
{
	struct jv *s = jb_to_str(cx, v);
	size_t i = 0, adv, n = 0;
	int in = 0;

	if (!s)
		return NULL;
	while (i < s->u.str.len) {
		uint32_t c = ju_decode(s->u.str.s + i, s->u.str.len - i, &adv);
		int w = jt_is_alnum(c) || c == '_';

		if (w && !in)
			n++;
		in = w;
		i += adv;
	}
	jv_unref(s);
	return jv_int(n);
}

static struct jv *first_last(struct jctx *cx, struct jv *v, int last)
{
	struct jv *items, *r;

	/* last: next(iter(reversed(seq))) */
	if (last && v->type == JV_LIST && v->u.list.view == JV_GEN)
		return jx_fail(cx, "'generator' object is not reversible");
	items = jb_items_of(cx, v);
	if (!items)
		return NULL;
	if (!items->u.list.n) {
		jv_unref(items);
		return jv_undef(last ? "No last item, sequence was empty." :
				"No first item, sequence was empty.");
	}
	r = jv_ref(items->u.list.v[last ? items->u.list.n - 1 : 0]);
	jv_unref(items);
	return r;
}

static struct jv *reverse(struct jctx *cx, struct jv *v)
{
	struct jv *items, *r;

	if (v->type == JV_STR) {
		struct jv *m1 = jv_int(-1), *res;

		if (!m1)
			return jb_oom(cx);
		res = jb_str_slice(cx, v, JV_NONE_P, JV_NONE_P, m1);
		jv_unref(m1);
		return res;
	}
	items = jb_items_of(cx, v);
	if (!items)
		return NULL;
	r = jv_list(0);
	if (!r) {
		jv_unref(items);
		return jb_oom(cx);
	}
	/* reversed(x) is an iterator; a generator cannot be reversed, so
	 * jinja2 falls back to a reversed list */
	if (!(v->type == JV_LIST && v->u.list.view == JV_GEN))
		r->u.list.view = JV_GEN;
	for (size_t i = items->u.list.n; i-- > 0;)
		if (!jb_list_push(cx, r, jv_ref(items->u.list.v[i]))) {
			jv_unref(r);
			r = NULL;
			break;
		}
	jv_unref(items);
	return r;
}

/* Each filter's parameters after the value, as jinja2/filters.py (and
 * transformers' tojson) declare them; "*" takes anything. */
static const struct {
	const char *name;
	const char *params[5];
} filters[] = {
	{ "abs", { NULL } }, { "attr", { "name" } },
	{ "batch", { "linecount", "fill_with" } }, { "capitalize", { NULL } },
	{ "count", { NULL } }, { "d", { "default_value", "boolean" } },
	{ "default", { "default_value", "boolean" } },
	{ "dictsort", { "case_sensitive", "by", "reverse" } },
	{ "e", { NULL } }, { "escape", { NULL } }, { "first", { NULL } },
	{ "float", { "default" } }, { "forceescape", { NULL } },
	{ "format", { "*" } }, { "indent", { "width", "first", "blank" } },
	{ "int", { "default", "base" } }, { "items", { NULL } },
	{ "join", { "d", "attribute" } }, { "last", { NULL } },
	{ "length", { NULL } }, { "list", { NULL } }, { "lower", { NULL } },
	{ "map", { "*" } }, { "max", { "case_sensitive", "attribute" } },
	{ "min", { "case_sensitive", "attribute" } }, { "reject", { "*" } },
	{ "rejectattr", { "*" } }, { "replace", { "old", "new", "count" } },
	{ "reverse", { NULL } }, { "round", { "precision", "method" } },
	{ "safe", { NULL } }, { "select", { "*" } }, { "selectattr", { "*" } },
	{ "sort", { "reverse", "case_sensitive", "attribute" } },
	{ "string", { NULL } }, { "sum", { "attribute", "start" } },
	{ "title", { NULL } },
	{ "tojson", { "ensure_ascii", "indent", "separators", "sort_keys" } },
	{ "trim", { "chars" } }, { "unique", { "case_sensitive", "attribute" } },
	{ "upper", { NULL } }, { "wordcount", { NULL } },
};

static int find_filter(const char *name)
{
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		if (!strcmp(filters[i].name, name))
			return (int)i;
	return -1;
}

int jb_has_filter(const char *name)
{
	return find_filter(name) >= 0;
}

/* Python's TypeError for arguments the filter does not take. */
static int check_args(struct jctx *cx, int f, struct jargs *a)
{
	const char *const *p = filters[f].params;
	size_t n = 0;

	if (p[0] && !strcmp(p[0], "*"))
		return 0;
	while (n < 5 && p[n])
		n++;
	if (a->npos > n) {
		jx_fail(cx, "%s() takes %zu positional argument(s) but %zu "
			"were given", filters[f].name, n + 1, a->npos + 1);
		return -1;
	}
	for (size_t k = 0; k < a->nkw; k++) {
		size_t i = 0;

		while (i < n && strcmp(p[i], a->kwn[k]))
			i++;
		if (i == n) {
			jx_fail(cx, "%s() got an unexpected keyword argument "
				"'%s'", filters[f].name, a->kwn[k]);
			return -1;
		}
		if (i < a->npos) {
			jx_fail(cx, "%s() got multiple values for argument "
				"'%s'", filters[f].name, a->kwn[k]);
			return -1;
		}
	}
	return 0;
}

struct jv *jb_filter(struct jctx *cx, const char *name, struct jv *v,
		     struct jargs *a)
{
	struct jv *s, *r, *x;
	int f = find_filter(name);

	if (f < 0)
		return jx_fail(cx, "no filter named '%s'", name);
	if (check_args(cx, f, a))
		return NULL;
	/* int(), float() and "s += ..." raise on Undefined */
	if (v->type == JV_UNDEF && (!strcmp(name, "int") ||
	    !strcmp(name, "float") || !strcmp(name, "indent")))
		return jx_undef_fail(cx, v);

	if (!strcmp(name, "default") || !strcmp(name, "d")) {
		x = jb_arg(a, 0, "default_value");
		if (v->type == JV_UNDEF ||
		    (jb_arg_bool(a, 1, "boolean", 0) && !jv_truthy(v)))
			return x ? jv_ref(x) : jv_str("", 0);
		return jv_ref(v);
	}
	if (!strcmp(name, "length") || !strcmp(name, "count"))
		return f_length(cx, v);
	if (!strcmp(name, "safe")) {	/* Markup(value): a string */
		s = jb_to_str(cx, v);
		/* marking a shared string copies it: count the bytes */
		if (s && jx_charge(cx, s->u.str.len / 64)) {
			jv_unref(s);
			return NULL;
		}
		return jv_markup(s);
	}
	if (!strcmp(name, "tojson"))
		return tojson(cx, v, a);
	if (!strcmp(name, "items")) {
		if (v->type == JV_UNDEF)
			return empty_gen(cx);
		if (v->type != JV_DICT)
			return jx_fail(cx, "Can only get item pairs from a "
				       "mapping.");
		return gen(jb_dict_items(cx, v));
	}
	if (!strcmp(name, "join"))
		return f_join(cx, v, a);
	if (!strcmp(name, "first") || !strcmp(name, "last"))
		return first_last(cx, v, name[0] == 'l');
	if (!strcmp(name, "list")) {
		if (v->type == JV_LIST && (v->u.list.tuple ||
					   v->u.list.view)) {
			r = jv_list(0);
			for (size_t i = 0; r && i < v->u.list.n; i++)
				if (!jb_list_push(cx, r, jv_ref(v->u.list.v[i]))) {
					jv_unref(r);
					return NULL;
				}
			return r ? r : jb_oom(cx);
		}
		return jb_items_of(cx, v);
	}
	if (!strcmp(name, "int"))
		return f_int(cx, v, a);
	if (!strcmp(name, "float"))
		return f_float(cx, v, a);
	if (!strcmp(name, "abs")) {
		if (v->type == JV_FLOAT)
			return jv_float(fabs(v->u.f));
		if (v->type == JV_INT && v->u.i != INT64_MIN)
			return jv_int(v->u.i < 0 ? -v->u.i : v->u.i);
		if (v->type == JV_BOOL)
			return jv_int(v->u.b);
		return jx_fail(cx, "bad operand type for abs(): '%s'",
			       jv_type_name(v));
	}
	if (!strcmp(name, "round"))
		return f_round(cx, v, a);
	if (!strcmp(name, "select") || !strcmp(name, "reject"))
		return f_select(cx, v, a, name[0] == 's', 0);
	if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr"))
		return f_select(cx, v, a, name[0] == 's', 1);
	if (!strcmp(name, "map"))
		return f_map(cx, v, a);
	if (!strcmp(name, "unique"))
		return f_unique(cx, v, a);
	if (!strcmp(name, "max") || !strcmp(name, "min"))
		return f_minmax(cx, v, a, name[1] == 'a');
	if (!strcmp(name, "sum"))
		return f_sum(cx, v, a);
	if (!strcmp(name, "batch"))
		return f_batch(cx, v, a);
	if (!strcmp(name, "reverse"))
		return reverse(cx, v);
	if (!strcmp(name, "sort"))
		return do_sort(cx, v, jb_arg_bool(a, 0, "reverse", 0),
			       jb_arg_bool(a, 1, "case_sensitive", 0),
			       jb_arg(a, 2, "attribute"), -1, 1);
	if (!strcmp(name, "dictsort")) {
		struct jv *by = jb_arg(a, 1, "by");
		int by_value = by && by->type == JV_STR &&
			       !strcmp(by->u.str.s, "value");

		if (v->type != JV_DICT)
			return jx_fail(cx, "dictsort needs a mapping");
		s = jb_dict_items(cx, v);
		if (!s)
			return NULL;
		r = do_sort(cx, s, jb_arg_bool(a, 2, "reverse", 0),
			    jb_arg_bool(a, 0, "case_sensitive", 0), NULL,
			    by_value, 0);
		jv_unref(s);
		return r;
	}
	if (!strcmp(name, "attr")) {
		x = jb_arg(a, 0, "name");
		if (jb_want_str(cx, x, "attr name"))
			return NULL;
		return jx_getattr(cx, v, x->u.str.s);
	}
	if (!strcmp(name, "e") || !strcmp(name, "escape") ||
	    !strcmp(name, "forceescape"))
		return f_escape(cx, v, name[0] == 'f');
	if (!strcmp(name, "wordcount"))
		return f_wordcount(cx, v);
	if (!strcmp(name, "indent"))
		return f_indent(cx, v, a);
	/* the rest work on str(value) */
	s = jb_to_str(cx, v);
	if (!s)
		return NULL;
	if (!strcmp(name, "string"))
		r = jv_ref(s);
	else if (!strcmp(name, "trim"))
		r = jt_strip(cx, s, jb_arg(a, 0, "chars"), 3);
	else if (!strcmp(name, "upper"))
		r = jt_recase(cx, s->u.str.s, s->u.str.len, JT_UPPER);
	else if (!strcmp(name, "lower"))
		r = jt_recase(cx, s->u.str.s, s->u.str.len, JT_LOWER);
	else if (!strcmp(name, "capitalize"))
		r = jt_recase(cx, s->u.str.s, s->u.str.len, JT_CAPITALIZE);
	else if (!strcmp(name, "title"))
		r = jt_title_words(cx, s->u.str.s, s->u.str.len);
	else if (!strcmp(name, "replace"))	/* str(old), str(new) */
		r = replace_filter(cx, s, a);
	else if (!strcmp(name, "format")) {
		struct jv *t = jv_list(1);

		r = NULL;
		for (size_t i = 0; t && i < a->npos; i++)
			if (jv_list_push(t, jv_ref(a->pos[i]))) {
				jv_unref(t);
				t = NULL;
			}
		if (t) {
			r = jx_percent(cx, s, t);
			jv_unref(t);
		} else {
			jb_oom(cx);
		}
	} else
		r = jx_fail(cx, "no filter named '%s'", name);
	/* Markup's own strip/upper/lower/capitalize return Markup */
	if (r && s->u.str.safe && (!strcmp(name, "trim") ||
	    !strcmp(name, "upper") || !strcmp(name, "lower") ||
	    !strcmp(name, "capitalize")))
		r = jv_markup(r);
	jv_unref(s);
	return r;
}

