/* lib/tok/chat/builtins.c: the filters, tests, globals and str/dict/list
 * methods chat templates use, with the semantics of jinja2/filters.py,
 * jinja2/tests.py, jinja2/sandbox.py (ImmutableSandboxedEnvironment) and
 * Python's str methods; tojson and raise_exception / strftime_now as
 * transformers defines them (utils/chat_template_utils.py). */
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
static struct jv *arg(struct jargs *a, size_t pos, const char *name)
{
	for (size_t i = 0; name && i < a->nkw; i++)
		if (!strcmp(a->kwn[i], name))
			return a->kwv[i];
	return pos < a->npos ? a->pos[pos] : NULL;
}

static int arg_bool(struct jargs *a, size_t pos, const char *name, int def)
{
	struct jv *v = arg(a, pos, name);

	return v ? jv_truthy(v) : def;
}

static int want_str(struct jctx *cx, struct jv *v, const char *what)
{
	if (v && v->type == JV_STR)
		return 0;
	jx_fail(cx, "%s must be a string, not %s", what,
		v ? jv_type_name(v) : "nothing");
	return -1;
}

static struct jv *oom(struct jctx *cx)
{
	if (!cx->err->code)
		hf_err_set(cx->err, HF_ENOMEM, "out of memory");
	return NULL;
}

static struct jv *take(struct jctx *cx, struct jbuf *b)
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
		return oom(cx);
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
	return take(cx, &b);
}

static struct jv *list_push(struct jctx *cx, struct jv *l, struct jv *item)
{
	if (!item)
		return NULL;
	if (jv_list_push(l, item)) {
		if (l->u.list.n >= JJ_MAX_ITEMS)
			return jx_fail(cx, "list too long");
		return oom(cx);
	}
	return l;
}

/* The items of an iterable as a new list (str: characters, dict: keys,
 * undefined: empty). */
static struct jv *items_of(struct jctx *cx, struct jv *v)
{
	struct jv *l;
	size_t i = 0, adv;

	switch (v->type) {
	case JV_LIST:
		return jv_ref(v);
	case JV_UNDEF:
		l = jv_list(0);
		return l ? l : oom(cx);
	case JV_DICT:
		l = jv_list(0);
		if (!l)
			return oom(cx);
		for (i = 0; i < v->u.dict.n; i++)
			if (!list_push(cx, l, jv_ref(v->u.dict.k[i]))) {
				jv_unref(l);
				return NULL;
			}
		return l;
	case JV_STR:
		l = jv_list(0);
		if (!l)
			return oom(cx);
		if (jx_charge(cx, v->u.str.len)) {
			jv_unref(l);
			return NULL;
		}
		while (i < v->u.str.len) {
			ju_decode(v->u.str.s + i, v->u.str.len - i, &adv);
			if (!list_push(cx, l, jv_str(v->u.str.s + i, adv))) {
				jv_unref(l);
				return oom(cx);
			}
			i += adv;
		}
		return l;
	default:
		return jx_fail(cx, "'%s' object is not iterable",
			       jv_type_name(v));
	}
}

/* ---- text helpers ---- */

static int cp_in(uint32_t c, const char *chars, size_t n)
{
	size_t i = 0, adv;

	while (i < n) {
		if (ju_decode(chars + i, n - i, &adv) == c)
			return 1;
		i += adv;
	}
	return 0;
}

/* Python str.strip/lstrip/rstrip: which: 1 left, 2 right, 3 both. */
static struct jv *strip(struct jctx *cx, struct jv *s, struct jv *chars,
			int which)
{
	const char *p = s->u.str.s;
	size_t a = 0, b = s->u.str.len, adv;

	if (chars && chars->type != JV_NONE && want_str(cx, chars, "strip "
							"argument"))
		return NULL;
	if (chars && chars->type == JV_NONE)
		chars = NULL;
	if (which & 1) {
		while (a < b) {
			uint32_t c = ju_decode(p + a, b - a, &adv);

			if (chars ? !cp_in(c, chars->u.str.s, chars->u.str.len) :
			    !ju_isspace(c))
				break;
			a += adv;
		}
	}
	if (which & 2) {
		while (b > a) {
			size_t k = 1;
			uint32_t c;

			while (k < b - a && k < 4 &&
			       ((unsigned char)p[b - k] & 0xc0) == 0x80)
				k++;
			c = ju_decode(p + b - k, k, &adv);
			if (chars ? !cp_in(c, chars->u.str.s, chars->u.str.len) :
			    !ju_isspace(c))
				break;
			b -= k;
		}
	}
	return jv_str(p + a, b - a);
}

enum { CASE_LOWER, CASE_UPPER, CASE_TITLE };

static void add_cp(struct jbuf *b, uint32_t c)
{
	char u[4];
	int n = hf_utf8_encode(c, u);

	jbuf_add(b, u, n ? n : 0);
}

static uint32_t conv(uint32_t c, int how)
{
	if (how == CASE_LOWER)
		return utf8proc_tolower(c);
	if (how == CASE_UPPER)
		return utf8proc_toupper(c);
	return utf8proc_totitle(c);
}

static int is_cased_letter(uint32_t c)
{
	int cat = utf8proc_category(c);

	return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
	       cat == UTF8PROC_CATEGORY_LT;
}

static int is_alpha(uint32_t c)
{
	int cat = utf8proc_category(c);

	return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

static int is_alnum(uint32_t c)
{
	int cat = utf8proc_category(c);

	return is_alpha(c) || (cat >= UTF8PROC_CATEGORY_ND &&
			       cat <= UTF8PROC_CATEGORY_NO);
}

/* mode: CASE_LOWER / CASE_UPPER of all; 3: capitalize (first title,
 * rest lower); 4: Python str.title; 5: swapcase */
static struct jv *recase(struct jctx *cx, const char *s, size_t len,
			 int mode)
{
	struct jbuf b = { 0 };
	size_t i = 0, adv;
	int prev_cased = 0;

	while (i < len) {
		uint32_t c = ju_decode(s + i, len - i, &adv);

		switch (mode) {
		case 3:
			c = conv(c, i == 0 ? CASE_TITLE : CASE_LOWER);
			break;
		case 4:
			c = conv(c, prev_cased ? CASE_LOWER : CASE_TITLE);
			prev_cased = is_cased_letter(c) ||
				     utf8proc_category(c) ==
				     UTF8PROC_CATEGORY_MN;
			if (!is_cased_letter(c))
				prev_cased = is_cased_letter(c);
			break;
		default:
			c = conv(c, mode);
		}
		add_cp(&b, c);
		i += adv;
	}
	return take(cx, &b);
}

/* Jinja's title filter: each piece after a run of [-\s({[<] starts with
 * an upper-case letter, the rest lower. */
static struct jv *jinja_title(struct jctx *cx, const char *s, size_t len)
{
	struct jbuf b = { 0 };
	size_t i = 0, adv;
	int start = 1;

	while (i < len) {
		uint32_t c = ju_decode(s + i, len - i, &adv);
		int sep = ju_isspace(c) || c == '-' || c == '(' || c == '{' ||
			  c == '[' || c == '<';

		if (sep) {
			add_cp(&b, c);
			start = 1;
		} else {
			add_cp(&b, conv(c, start ? CASE_UPPER : CASE_LOWER));
			start = 0;
		}
		i += adv;
	}
	return take(cx, &b);
}

static struct jv *str_replace(struct jctx *cx, struct jv *s, struct jv *old,
			      struct jv *new, struct jv *count)
{
	struct jbuf b = { 0 };
	int64_t max = -1, done = 0;
	size_t i = 0, adv;
	const char *p = s->u.str.s;
	size_t len = s->u.str.len, on;

	if (want_str(cx, old, "replace() argument 1") ||
	    want_str(cx, new, "replace() argument 2"))
		return NULL;
	if (count && count->type != JV_NONE) {
		if (count->type != JV_INT)
			return jx_fail(cx, "replace() count must be an "
				       "integer");
		max = count->u.i;
	}
	on = old->u.str.len;
	if (!on) {	/* insert new before every character and at the end */
		while (i <= len && (max < 0 || done < max)) {
			jbuf_add(&b, new->u.str.s, new->u.str.len);
			done++;
			if (i == len)
				break;
			ju_decode(p + i, len - i, &adv);
			jbuf_add(&b, p + i, adv);
			i += adv;
		}
		if (i < len)
			jbuf_add(&b, p + i, len - i);
		return take(cx, &b);
	}
	while (i < len) {
		const char *hit = (max < 0 || done < max) ?
				  memmem(p + i, len - i, old->u.str.s, on) : NULL;

		if (!hit) {
			jbuf_add(&b, p + i, len - i);
			break;
		}
		jbuf_add(&b, p + i, hit - (p + i));
		jbuf_add(&b, new->u.str.s, new->u.str.len);
		i = hit - p + on;
		done++;
	}
	return take(cx, &b);
}

/* Python str.split / rsplit. */
static struct jv *str_split(struct jctx *cx, struct jv *s, struct jv *sep,
			    struct jv *maxsplit, int right)
{
	struct jv *l = jv_list(0);
	const char *p = s->u.str.s;
	size_t len = s->u.str.len;
	int64_t max = -1;

	if (!l)
		return oom(cx);
	if (maxsplit && maxsplit->type != JV_NONE) {
		if (maxsplit->type != JV_INT) {
			jv_unref(l);
			return jx_fail(cx, "maxsplit must be an integer");
		}
		max = maxsplit->u.i;
	}
	if (sep && sep->type == JV_NONE)
		sep = NULL;
	if (sep && want_str(cx, sep, "separator")) {
		jv_unref(l);
		return NULL;
	}
	if (sep && !sep->u.str.len) {
		jv_unref(l);
		return jx_fail(cx, "empty separator");
	}
	if (jx_charge(cx, len / 16 + 1)) {
		jv_unref(l);
		return NULL;
	}
	if (!right) {
		size_t i = 0, adv;
		int64_t n = 0;

		if (sep) {
			size_t sl = sep->u.str.len;

			for (;;) {
				const char *hit = (max < 0 || n < max) ?
					memmem(p + i, len - i, sep->u.str.s,
					       sl) : NULL;

				if (!hit) {
					if (!list_push(cx, l, jv_str(p + i,
								len - i)))
						goto fail;
					return l;
				}
				if (!list_push(cx, l, jv_str(p + i,
							hit - (p + i))))
					goto fail;
				i = hit - p + sl;
				n++;
			}
		}
		for (;;) {
			size_t a;

			while (i < len && ju_isspace(ju_decode(p + i, len - i,
							       &adv)))
				i += adv;
			if (i >= len)
				return l;
			if (max >= 0 && n >= max) {
				size_t e = len;

				while (e > i) {
					size_t k = 1;

					while (k < e - i && k < 4 &&
					       ((unsigned char)p[e - k] & 0xc0) ==
					       0x80)
						k++;
					if (!ju_isspace(ju_decode(p + e - k, k,
								  &adv)))
						break;
					e -= k;
				}
				if (!list_push(cx, l, jv_str(p + i, e - i)))
					goto fail;
				return l;
			}
			a = i;
			while (i < len && !ju_isspace(ju_decode(p + i, len - i,
								&adv)))
				i += adv;
			if (!list_push(cx, l, jv_str(p + a, i - a)))
				goto fail;
			n++;
		}
	} else {
		/* rsplit: split from the right, then reverse */
		struct jv *r;
		size_t e = len;
		int64_t n = 0;

		if (!sep) {
			jv_unref(l);
			/* whitespace rsplit with a limit is rare: only the
			 * unlimited form is the same as split() */
			if (max >= 0)
				return jx_fail(cx, "rsplit() without a "
					       "separator and with maxsplit is "
					       "not supported");
			return str_split(cx, s, NULL, NULL, 0);
		}
		for (;;) {
			const char *hit = NULL;
			size_t sl = sep->u.str.len;

			if ((max < 0 || n < max) && e >= sl) {
				for (size_t k = e - sl + 1; k-- > 0;)
					if (!memcmp(p + k, sep->u.str.s, sl)) {
						hit = p + k;
						break;
					}
			}
			if (!hit) {
				if (!list_push(cx, l, jv_str(p, e)))
					goto fail;
				break;
			}
			if (!list_push(cx, l, jv_str(hit + sl,
						e - (hit - p) - sl)))
				goto fail;
			e = hit - p;
			n++;
		}
		r = jv_list(0);
		if (!r)
			goto fail;
		for (size_t k = l->u.list.n; k-- > 0;)
			if (!list_push(cx, r, jv_ref(l->u.list.v[k]))) {
				jv_unref(r);
				goto fail;
			}
		jv_unref(l);
		return r;
	}
fail:
	jv_unref(l);
	return NULL;
}

/* Python str.splitlines boundaries. */
static size_t line_break(const char *s, size_t len, size_t i, size_t *blen)
{
	size_t adv;
	uint32_t c = ju_decode(s + i, len - i, &adv);

	if (c == '\r' && i + 1 < len && s[i + 1] == '\n') {
		*blen = 2;
		return 1;
	}
	if (c == '\n' || c == '\r' || c == 0x0b || c == 0x0c ||
	    (c >= 0x1c && c <= 0x1e) || c == 0x85 || c == 0x2028 ||
	    c == 0x2029) {
		*blen = adv;
		return 1;
	}
	*blen = adv;
	return 0;
}

static struct jv *splitlines(struct jctx *cx, const char *s, size_t len,
			     int keepends)
{
	struct jv *l = jv_list(0);
	size_t i = 0, start = 0, bl;

	if (!l)
		return oom(cx);
	while (i < len) {
		if (line_break(s, len, i, &bl)) {
			if (!list_push(cx, l, jv_str(s + start, i - start +
						     (keepends ? bl : 0)))) {
				jv_unref(l);
				return NULL;
			}
			start = i + bl;
		}
		i += bl;
	}
	if (start < len && !list_push(cx, l, jv_str(s + start, len - start))) {
		jv_unref(l);
		return NULL;
	}
	return l;
}

/* ---- slicing ---- */

static int slice_index(struct jctx *cx, struct jv *v, int64_t *out, int *none)
{
	*none = v->type == JV_NONE;
	if (*none)
		return 0;
	if (v->type == JV_INT || v->type == JV_BOOL) {
		*out = v->type == JV_BOOL ? v->u.b : v->u.i;
		return 0;
	}
	jx_fail(cx, "slice indices must be integers or None or have an "
		"__index__ method");
	return -1;
}

struct jv *jb_str_slice(struct jctx *cx, struct jv *v, struct jv *start,
			struct jv *stop, struct jv *step)
{
	int64_t a = 0, b = 0, st = 1, n, lower, upper;
	int an, bn, sn;
	size_t *offs = NULL;
	struct jv *r;

	if (slice_index(cx, start, &a, &an) || slice_index(cx, stop, &b, &bn) ||
	    slice_index(cx, step, &st, &sn))
		return NULL;
	if (sn)
		st = 1;
	if (st == 0)
		return jx_fail(cx, "slice step cannot be zero");
	if (v->type == JV_STR) {
		size_t i = 0, k = 0, adv;

		n = (int64_t)ju_count(v->u.str.s, v->u.str.len);
		offs = malloc((n + 1) * sizeof(*offs));
		if (!offs)
			return oom(cx);
		while (i < v->u.str.len) {
			offs[k++] = i;
			ju_decode(v->u.str.s + i, v->u.str.len - i, &adv);
			i += adv;
		}
		offs[k] = i;
	} else {
		n = (int64_t)v->u.list.n;
	}
	lower = st > 0 ? 0 : -1;
	upper = st > 0 ? n : n - 1;
	if (an) {
		a = st < 0 ? upper : lower;
	} else if (a < 0) {
		a += n;
		if (a < lower)
			a = lower;
	} else if (a > upper) {
		a = upper;
	}
	if (bn) {
		b = st < 0 ? lower : upper;
	} else if (b < 0) {
		b += n;
		if (b < lower)
			b = lower;
	} else if (b > upper) {
		b = upper;
	}
	if (jx_charge(cx, (size_t)(n / 16 + 1))) {
		free(offs);
		return NULL;
	}
	if (v->type == JV_STR) {
		struct jbuf s = { 0 };

		for (int64_t i = a; st > 0 ? i < b : i > b; i += st)
			jbuf_add(&s, v->u.str.s + offs[i], offs[i + 1] - offs[i]);
		free(offs);
		return take(cx, &s);
	}
	r = jv_list(v->u.list.tuple);
	if (!r)
		return oom(cx);
	for (int64_t i = a; st > 0 ? i < b : i > b; i += st)
		if (!list_push(cx, r, jv_ref(v->u.list.v[i]))) {
			jv_unref(r);
			return NULL;
		}
	return r;
}

/* ---- sorting (stable merge sort with a fallible comparison) ---- */

struct sortkey {
	struct jv *key;		/* what is compared */
	struct jv *item;	/* what is returned */
};

static int py_cmp(struct jctx *cx, const struct jv *a, const struct jv *b)
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
			return py_cmp(cx, a->u.list.v[i], b->u.list.v[i]);
		}
		return a->u.list.n < b->u.list.n ? -1 :
		       a->u.list.n > b->u.list.n;
	}
	jx_fail(cx, "'<' not supported between instances of '%s' and '%s'",
		jv_type_name(a), jv_type_name(b));
	return 2;
}

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
		int c = py_cmp(cx, v[j].key, v[i].key);

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
		return oom(cx);
	}
	for (part = strtok_r(path, ".", &save); part && cur;
	     part = strtok_r(NULL, ".", &save)) {
		char *end;
		long long idx = strtoll(part, &end, 10);
		struct jv *key = (*part && !*end) ? jv_int(idx) :
				 jv_strz(part), *next;

		if (!key) {
			jv_unref(cur);
			cur = oom(cx);
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
	return recase(cx, v->u.str.s, v->u.str.len, CASE_LOWER);
}

static struct jv *do_sort(struct jctx *cx, struct jv *v, int reverse,
			  int case_sensitive, struct jv *attr, int by_value)
{
	struct jv *items = items_of(cx, v), *r = NULL;
	struct sortkey *keys = NULL, *tmp = NULL;
	size_t n, i;

	if (!items)
		return NULL;
	n = items->u.list.n;
	keys = calloc(n + 1, sizeof(*keys));
	tmp = calloc(n + 1, sizeof(*tmp));
	if (!keys || !tmp) {
		oom(cx);
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct jv *item = items->u.list.v[i], *k;

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
		oom(cx);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!list_push(cx, r, jv_ref(keys[i].item))) {
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

static struct jv *dict_items(struct jctx *cx, struct jv *d)
{
	struct jv *l = jv_list(0);

	if (!l)
		return oom(cx);
	for (size_t i = 0; i < d->u.dict.n; i++) {
		struct jv *t = jv_list(1);

		if (!t || jv_list_push(t, jv_ref(d->u.dict.k[i])) ||
		    jv_list_push(t, jv_ref(d->u.dict.v[i])) ||
		    jv_list_push(l, t)) {
			jv_unref(l);
			return oom(cx);
		}
	}
	return l;
}

/* ---- tojson ---- */

static struct jv *tojson(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *ind = arg(a, 0, "indent"), *seps = arg(a, 99, "separators");
	struct jbuf b = { 0 };
	const char *item_sep = NULL, *key_sep = NULL, *bad;
	int indent = -1;

	if (ind && ind->type == JV_INT) {
		indent = ind->u.i < 0 ? 0 : ind->u.i > 64 ? 64 : (int)ind->u.i;
	} else if (ind && ind->type != JV_NONE) {
		return jx_fail(cx, "tojson indent must be an integer");
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
		      arg_bool(a, 99, "sort_keys", 0),
		      arg_bool(a, 99, "ensure_ascii", 0), &bad)) {
		jbuf_free(&b);
		if (b.oom)
			return take(cx, &b);
		return jx_fail(cx, "Object of type %s is not JSON "
			       "serializable", bad ? bad : "?");
	}
	return take(cx, &b);
}

/* ---- filters ---- */

static struct jv *f_length(struct jctx *cx, struct jv *v)
{
	switch (v->type) {
	case JV_STR:
		return jv_int(ju_count(v->u.str.s, v->u.str.len));
	case JV_LIST:
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
	struct jv *def = arg(a, 0, "default");
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
	struct jv *def = arg(a, 0, "default");
	double d;

	if (jv_is_num(v))
		return jv_float(jv_num(v));
	if (v->type == JV_STR && !parse_pyfloat(v->u.str.s, v->u.str.len, &d))
		return jv_float(d);
	return def ? jv_ref(def) : jv_float(0.0);
}

static struct jv *f_round(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *pv = arg(a, 0, "precision"), *mv = arg(a, 1, "method");
	int64_t prec = pv && pv->type == JV_INT ? pv->u.i : 0;
	const char *method = mv && mv->type == JV_STR ? mv->u.str.s : "common";
	double x, scale, r;
	char buf[400];

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
	struct jv *sep = arg(a, 0, "d"), *attr = arg(a, 1, "attribute");
	struct jv *items = items_of(cx, v);
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
	return take(cx, &b);
}

static struct jv *f_indent(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *w = arg(a, 0, "width"), *s, *lines;
	int first = arg_bool(a, 1, "first", 0);
	int blank = arg_bool(a, 2, "blank", 0);
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
	s = jb_to_str(cx, v);
	if (!s) {
		jbuf_free(&ind);
		return NULL;
	}
	/* jinja2: s += "\n" before splitlines() */
	jbuf_add(&src, s->u.str.s, s->u.str.len);
	jbuf_addc(&src, '\n');
	jv_unref(s);
	lines = src.oom ? NULL : splitlines(cx, src.s, src.n, 0);
	jbuf_free(&src);
	if (!lines) {
		jbuf_free(&ind);
		return src.oom ? oom(cx) : NULL;
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
	return take(cx, &b);
}

/* select / reject / selectattr / rejectattr */
static struct jv *f_select(struct jctx *cx, struct jv *v, struct jargs *a,
			   int want, int by_attr)
{
	struct jv *items = items_of(cx, v), *out, *attr = NULL;
	struct jargs targs = { 0 };
	const char *test = NULL;
	size_t first = 0;

	if (!items)
		return NULL;
	if (by_attr) {
		attr = arg(a, 0, NULL);
		if (!attr) {
			jv_unref(items);
			return jx_fail(cx, "missing parameter for attribute "
				       "name");
		}
		first = 1;
	}
	if (a->npos > first) {
		if (want_str(cx, a->pos[first], "test name")) {
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
		return oom(cx);
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
		if (r == want && !list_push(cx, out, jv_ref(x)))
			goto fail;
	}
	jv_unref(items);
	return out;
fail:
	jv_unref(items);
	jv_unref(out);
	return NULL;
}

static struct jv *f_map(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *items = items_of(cx, v), *out;
	struct jv *attr = arg(a, 99, "attribute"), *def = arg(a, 99, "default");
	struct jargs fargs = { 0 };
	const char *filter = NULL;

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
		return oom(cx);
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
		if (!r || !list_push(cx, out, r))
			goto fail;
	}
	jv_unref(items);
	return out;
fail:
	jv_unref(items);
	jv_unref(out);
	return NULL;
}

static struct jv *f_unique(struct jctx *cx, struct jv *v, struct jargs *a)
{
	int cs = arg_bool(a, 0, "case_sensitive", 0);
	struct jv *attr = arg(a, 1, "attribute");
	struct jv *items = items_of(cx, v), *out, *seen;

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
		if (!list_push(cx, seen, key) ||
		    !list_push(cx, out, jv_ref(x)))
			goto fail;
	}
	jv_unref(items);
	jv_unref(seen);
	return out;
fail_oom:
	oom(cx);
fail:
	jv_unref(items);
	jv_unref(out);
	jv_unref(seen);
	return NULL;
}

static struct jv *f_minmax(struct jctx *cx, struct jv *v, struct jargs *a,
			   int want_max)
{
	int cs = arg_bool(a, 0, "case_sensitive", 0);
	struct jv *attr = arg(a, 1, "attribute");
	struct jv *sorted = do_sort(cx, v, 0, cs, attr, -1), *r;

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
	struct jv *attr = arg(a, 0, "attribute"), *start = arg(a, 1, "start");
	struct jv *items = items_of(cx, v), *acc;

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

static struct jv *f_batch(struct jctx *cx, struct jv *v, struct jargs *a)
{
	struct jv *nv = arg(a, 0, "linecount"), *fill = arg(a, 1, "fill_with");
	struct jv *items = items_of(cx, v), *out, *cur = NULL;
	int64_t n;

	if (!items)
		return NULL;
	if (!nv || nv->type != JV_INT || nv->u.i < 1) {
		jv_unref(items);
		return jx_fail(cx, "batch size must be a positive integer");
	}
	n = nv->u.i;
	out = jv_list(0);
	if (!out) {
		jv_unref(items);
		return oom(cx);
	}
	for (size_t i = 0; i < items->u.list.n; i++) {
		if (!cur && !(cur = jv_list(0)))
			goto fail;
		if (!list_push(cx, cur, jv_ref(items->u.list.v[i])))
			goto fail;
		if ((int64_t)cur->u.list.n == n) {
			if (!list_push(cx, out, cur)) {
				cur = NULL;
				goto fail;
			}
			cur = NULL;
		}
	}
	if (cur) {
		while (fill && (int64_t)cur->u.list.n < n)
			if (!list_push(cx, cur, jv_ref(fill)))
				goto fail;
		if (!list_push(cx, out, cur)) {
			cur = NULL;
			goto fail;
		}
	}
	jv_unref(items);
	return out;
fail:
	jv_unref(cur);
	jv_unref(items);
	jv_unref(out);
	return cx->err->code ? NULL : oom(cx);
}

static struct jv *f_escape(struct jctx *cx, struct jv *v)
{
	struct jbuf b = { 0 }, s = { 0 };

	jv_str_into(&s, v);
	for (size_t i = 0; i < s.n; i++) {
		switch (s.s[i]) {
		case '&': jbuf_adds(&b, "&amp;"); break;
		case '<': jbuf_adds(&b, "&lt;"); break;
		case '>': jbuf_adds(&b, "&gt;"); break;
		case '"': jbuf_adds(&b, "&#34;"); break;
		case '\'': jbuf_adds(&b, "&#39;"); break;
		default: jbuf_addc(&b, s.s[i]);
		}
	}
	if (!s.s)
		jbuf_add(&b, "", 0);
	jbuf_free(&s);
	return take(cx, &b);
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
		int w = is_alnum(c) || c == '_';

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
	struct jv *items = items_of(cx, v), *r;

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
			return oom(cx);
		res = jb_str_slice(cx, v, JV_NONE_P, JV_NONE_P, m1);
		jv_unref(m1);
		return res;
	}
	items = items_of(cx, v);
	if (!items)
		return NULL;
	r = jv_list(0);
	if (!r) {
		jv_unref(items);
		return oom(cx);
	}
	for (size_t i = items->u.list.n; i-- > 0;)
		if (!list_push(cx, r, jv_ref(items->u.list.v[i]))) {
			jv_unref(r);
			r = NULL;
			break;
		}
	jv_unref(items);
	return r;
}

/* Python str.format with {} / {0} / {name} fields, no format specs. */
static struct jv *str_format(struct jctx *cx, struct jv *fmt, struct jargs *a)
{
	const char *s = fmt->u.str.s;
	size_t len = fmt->u.str.len, i = 0, auto_idx = 0;
	struct jbuf b = { 0 };

	while (i < len) {
		char c = s[i++];

		if (c == '}' && i < len && s[i] == '}') {
			jbuf_addc(&b, '}');
			i++;
			continue;
		}
		if (c != '{') {
			jbuf_addc(&b, c);
			continue;
		}
		if (i < len && s[i] == '{') {
			jbuf_addc(&b, '{');
			i++;
			continue;
		}
		size_t start = i;
		struct jv *v = NULL;

		while (i < len && s[i] != '}')
			i++;
		if (i >= len) {
			jbuf_free(&b);
			return jx_fail(cx, "single '{' encountered in format "
				       "string");
		}
		if (i == start) {
			v = auto_idx < a->npos ? a->pos[auto_idx] : NULL;
			auto_idx++;
		} else if (s[start] >= '0' && s[start] <= '9') {
			size_t k = strtoul(s + start, NULL, 10);

			v = k < a->npos ? a->pos[k] : NULL;
		} else {
			for (size_t k = 0; k < a->nkw; k++)
				if (strlen(a->kwn[k]) == i - start &&
				    !memcmp(a->kwn[k], s + start, i - start))
					v = a->kwv[k];
		}
		if (!v) {
			jbuf_free(&b);
			return jx_fail(cx, "format field '%.*s' has no value",
				       (int)(i - start), s + start);
		}
		jv_str_into(&b, v);
		i++;
	}
	return take(cx, &b);
}

static const char *const filter_names[] = {
	"abs", "attr", "batch", "capitalize", "count", "d", "default",
	"dictsort", "e", "escape", "first", "float", "forceescape", "format",
	"indent", "int", "items", "join", "last", "length", "list", "lower",
	"map", "max", "min", "reject", "rejectattr", "replace", "reverse",
	"round", "safe", "select", "selectattr", "sort", "string", "sum",
	"title", "tojson", "trim", "unique", "upper", "wordcount", NULL,
};

int jb_has_filter(const char *name)
{
	for (int i = 0; filter_names[i]; i++)
		if (!strcmp(filter_names[i], name))
			return 1;
	return 0;
}

struct jv *jb_filter(struct jctx *cx, const char *name, struct jv *v,
		     struct jargs *a)
{
	struct jv *s, *r, *x;

	if (!strcmp(name, "default") || !strcmp(name, "d")) {
		x = arg(a, 0, "default_value");
		if (v->type == JV_UNDEF ||
		    (arg_bool(a, 1, "boolean", 0) && !jv_truthy(v)))
			return x ? jv_ref(x) : jv_str("", 0);
		return jv_ref(v);
	}
	if (!strcmp(name, "length") || !strcmp(name, "count"))
		return f_length(cx, v);
	if (!strcmp(name, "safe"))
		return jv_ref(v);
	if (!strcmp(name, "tojson"))
		return tojson(cx, v, a);
	if (!strcmp(name, "items")) {
		if (v->type == JV_UNDEF)
			return jv_list(0);
		if (v->type != JV_DICT)
			return jx_fail(cx, "Can only get item pairs from a "
				       "mapping.");
		return dict_items(cx, v);
	}
	if (!strcmp(name, "join"))
		return f_join(cx, v, a);
	if (!strcmp(name, "first") || !strcmp(name, "last"))
		return first_last(cx, v, name[0] == 'l');
	if (!strcmp(name, "list")) {
		if (v->type == JV_LIST && v->u.list.tuple) {
			r = jv_list(0);
			for (size_t i = 0; r && i < v->u.list.n; i++)
				if (!list_push(cx, r, jv_ref(v->u.list.v[i]))) {
					jv_unref(r);
					return NULL;
				}
			return r ? r : oom(cx);
		}
		return items_of(cx, v);
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
		return do_sort(cx, v, arg_bool(a, 0, "reverse", 0),
			       arg_bool(a, 1, "case_sensitive", 0),
			       arg(a, 2, "attribute"), -1);
	if (!strcmp(name, "dictsort")) {
		struct jv *by = arg(a, 1, "by");
		int by_value = by && by->type == JV_STR &&
			       !strcmp(by->u.str.s, "value");

		if (v->type != JV_DICT)
			return jx_fail(cx, "dictsort needs a mapping");
		s = dict_items(cx, v);
		if (!s)
			return NULL;
		r = do_sort(cx, s, arg_bool(a, 2, "reverse", 0),
			    arg_bool(a, 0, "case_sensitive", 0), NULL,
			    by_value);
		jv_unref(s);
		return r;
	}
	if (!strcmp(name, "attr")) {
		x = arg(a, 0, "name");
		if (want_str(cx, x, "attr name"))
			return NULL;
		return jx_getattr(cx, v, x->u.str.s);
	}
	if (!strcmp(name, "e") || !strcmp(name, "escape") ||
	    !strcmp(name, "forceescape"))
		return f_escape(cx, v);
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
		r = strip(cx, s, arg(a, 0, "chars"), 3);
	else if (!strcmp(name, "upper"))
		r = recase(cx, s->u.str.s, s->u.str.len, CASE_UPPER);
	else if (!strcmp(name, "lower"))
		r = recase(cx, s->u.str.s, s->u.str.len, CASE_LOWER);
	else if (!strcmp(name, "capitalize"))
		r = recase(cx, s->u.str.s, s->u.str.len, 3);
	else if (!strcmp(name, "title"))
		r = jinja_title(cx, s->u.str.s, s->u.str.len);
	else if (!strcmp(name, "replace"))
		r = str_replace(cx, s, arg(a, 0, "old"), arg(a, 1, "new"),
				arg(a, 2, "count"));
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
			oom(cx);
		}
	} else
		r = jx_fail(cx, "no filter named '%s'", name);
	jv_unref(s);
	return r;
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

static int str_is_case(const struct jv *s, int upper)
{
	size_t i = 0, adv;
	int cased = 0;

	while (i < s->u.str.len) {
		uint32_t c = ju_decode(s->u.str.s + i, s->u.str.len - i, &adv);

		if (is_cased_letter(c)) {
			if (upper ? utf8proc_tolower(c) == (int32_t)c &&
				    utf8proc_toupper(c) != (int32_t)c :
				    utf8proc_toupper(c) == (int32_t)c &&
				    utf8proc_tolower(c) != (int32_t)c)
				return 0;
			cased = 1;
		}
		i += adv;
	}
	return cased;
}

int jb_test(struct jctx *cx, const char *name, struct jv *v, struct jargs *a)
{
	struct jv *o = arg(a, 0, NULL), *r;
	int c;

	if (!strcmp(name, "defined"))
		return v->type != JV_UNDEF;
	if (!strcmp(name, "undefined"))
		return v->type == JV_UNDEF;
	if (!strcmp(name, "none"))
		return v->type == JV_NONE;
	if (!strcmp(name, "string"))
		return v->type == JV_STR;
	if (!strcmp(name, "mapping"))
		return v->type == JV_DICT;
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
	if (!strcmp(name, "callable"))
		return v->type == JV_FUNC;
	if (!strcmp(name, "iterable"))
		return v->type == JV_STR || v->type == JV_LIST ||
		       v->type == JV_DICT || v->type == JV_UNDEF;
	if (!strcmp(name, "sequence"))
		return v->type == JV_STR || v->type == JV_LIST ||
		       v->type == JV_DICT || v->type == JV_UNDEF;
	if (!strcmp(name, "escaped"))
		return 0;
	if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
		struct jv *s = jb_to_str(cx, v);

		if (!s)
			return -1;
		c = str_is_case(s, name[0] == 'u');
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
				oom(cx);
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
		if (v->type == JV_NONE || v->type == JV_UNDEF)
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
	c = py_cmp(cx, v, o);
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

static struct jv *str_method(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	const char *m = fn->u.func.name;
	struct jv *s = fn->u.func.self, *x = arg(a, 0, NULL);

	if (!strcmp(m, "strip"))
		return strip(cx, s, x, 3);
	if (!strcmp(m, "lstrip"))
		return strip(cx, s, x, 1);
	if (!strcmp(m, "rstrip"))
		return strip(cx, s, x, 2);
	if (!strcmp(m, "split") || !strcmp(m, "rsplit"))
		return str_split(cx, s, arg(a, 0, "sep"),
				 arg(a, 1, "maxsplit"), m[0] == 'r');
	if (!strcmp(m, "splitlines"))
		return splitlines(cx, s->u.str.s, s->u.str.len,
				  arg_bool(a, 0, "keepends", 0));
	if (!strcmp(m, "upper"))
		return recase(cx, s->u.str.s, s->u.str.len, CASE_UPPER);
	if (!strcmp(m, "lower") || !strcmp(m, "casefold"))
		return recase(cx, s->u.str.s, s->u.str.len, CASE_LOWER);
	if (!strcmp(m, "capitalize"))
		return recase(cx, s->u.str.s, s->u.str.len, 3);
	if (!strcmp(m, "title"))
		return recase(cx, s->u.str.s, s->u.str.len, 4);
	if (!strcmp(m, "replace"))
		return str_replace(cx, s, x, arg(a, 1, NULL), arg(a, 2, NULL));
	if (!strcmp(m, "format"))
		return str_format(cx, s, a);
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

			if (want_str(cx, p, m))
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
		items = items_of(cx, x);
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
		r = take(cx, &b);
		return r;
	}
	if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") ||
	    !strcmp(m, "rindex") || !strcmp(m, "count")) {
		const char *hit = NULL, *p = s->u.str.s;
		size_t n = s->u.str.len;

		if (want_str(cx, x, m))
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
			return jv_bool(str_is_case(s, m[2] == 'u'));
		while (ok && i < s->u.str.len) {
			uint32_t c = ju_decode(s->u.str.s + i,
					       s->u.str.len - i, &adv);

			if (!strcmp(m, "isdigit"))
				ok = utf8proc_category(c) ==
				     UTF8PROC_CATEGORY_ND;
			else if (!strcmp(m, "isalpha"))
				ok = is_alpha(c);
			else if (!strcmp(m, "isalnum"))
				ok = is_alnum(c);
			else
				ok = ju_isspace(c);
			i += adv;
		}
		return jv_bool(ok);
	}
	return jx_fail(cx, "unknown str method '%s'", m);
}

static struct jv *dict_method(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	const char *m = fn->u.func.name;
	struct jv *d = fn->u.func.self, *r, *l;

	if (!strcmp(m, "get")) {
		struct jv *k = arg(a, 0, NULL), *def = arg(a, 1, NULL);

		if (!k)
			return jx_fail(cx, "get expected at least 1 argument");
		r = jv_dict_get(d, k);
		return jv_ref(r ? r : def ? def : JV_NONE_P);
	}
	if (!strcmp(m, "items"))
		return dict_items(cx, d);
	if (!strcmp(m, "copy")) {
		r = jv_dict(JV_DICT);
		for (size_t i = 0; r && i < d->u.dict.n; i++)
			if (jv_dict_set(r, jv_ref(d->u.dict.k[i]),
					jv_ref(d->u.dict.v[i]))) {
				jv_unref(r);
				r = NULL;
			}
		return r ? r : oom(cx);
	}
	l = jv_list(0);
	if (!l)
		return oom(cx);
	for (size_t i = 0; i < d->u.dict.n; i++)
		if (!list_push(cx, l, jv_ref(m[0] == 'k' ? d->u.dict.k[i] :
					     d->u.dict.v[i]))) {
			jv_unref(l);
			return NULL;
		}
	return l;
}

static struct jv *list_method(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	struct jv *l = fn->u.func.self, *x = arg(a, 0, NULL);
	int64_t c = 0;

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
		"isalnum", "isspace", "islower", "isupper", NULL,
	};
	static const char *const dict_m[] = {
		"get", "items", "keys", "values", "copy", NULL,
	};
	static const char *const list_m[] = { "index", "count", NULL };
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

	for (int i = 0; names[i]; i++) {
		if (strcmp(names[i], name))
			continue;
		r = jv_func(fn, names[i], obj, NULL);
		return r ? r : oom(cx);
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
		return oom(cx);
	for (int64_t i = 0; i < n; i++)
		if (!list_push(cx, l, jv_int(start + i * step))) {
			jv_unref(l);
			return cx->err->code ? NULL : oom(cx);
		}
	return l;
}

static struct jv *g_namespace(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	struct jv *d = jv_dict(strcmp(fn->u.func.name, "dict") ? JV_NS :
			       JV_DICT);

	if (!d)
		return oom(cx);
	for (size_t i = 0; i < a->npos; i++) {
		struct jv *src = a->pos[i];

		if (src->type != JV_DICT) {
			jv_unref(d);
			return jx_fail(cx, "%s() positional argument must be "
				       "a mapping", fn->u.func.name);
		}
		for (size_t k = 0; k < src->u.dict.n; k++)
			if (jv_dict_set(d, jv_ref(src->u.dict.k[k]),
					jv_ref(src->u.dict.v[k]))) {
				jv_unref(d);
				return oom(cx);
			}
	}
	for (size_t i = 0; i < a->nkw; i++) {
		if (d->type == JV_NS && a->kwv[i]->type == JV_NS) {
			jv_unref(d);
			return jx_fail(cx, "cannot store a namespace in a "
				       "namespace");
		}
		if (jv_dict_sets(d, a->kwn[i], jv_ref(a->kwv[i]))) {
			jv_unref(d);
			return oom(cx);
		}
	}
	return d;
}

static struct jv *g_raise(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	struct jv *m = arg(a, 0, NULL);
	struct jbuf b = { 0 };

	if (m)
		jv_str_into(&b, m);
	if (b.oom)
		return oom(cx);
	if (!cx->err->code) {
		hf_err_set(cx->err, HF_EINVAL, "%s", b.s ? b.s : "");
		cx->raised = 1;
	}
	jbuf_free(&b);
	return NULL;
}

static struct jv *g_strftime(struct jctx *cx, struct jv *fn, struct jargs *a)
{
	struct jv *f = arg(a, 0, NULL);
	time_t now = time(NULL);
	struct tm tm;
	size_t cap, n;
	char *buf;

	if (want_str(cx, f, "strftime_now format"))
		return NULL;
	if (f->u.str.len > 4096 || memchr(f->u.str.s, 0, f->u.str.len))
		return jx_fail(cx, "strftime_now format too long");
	if (!localtime_r(&now, &tm))
		return jx_fail(cx, "localtime failed");
	cap = f->u.str.len * 64 + 64;
	buf = malloc(cap);
	if (!buf)
		return oom(cx);
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
	struct jv *sep = arg(a, 0, "sep"), *st = jv_list(1), *r;

	if (!st || jv_list_push(st, sep ? jv_ref(sep) : jv_str(", ", 2)) ||
	    jv_list_push(st, JV_FALSE_P)) {
		jv_unref(st);
		return oom(cx);
	}
	r = jv_func(joiner_call, "joiner", st, NULL);
	jv_unref(st);
	return r ? r : oom(cx);
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
