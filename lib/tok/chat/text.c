/* lib/tok/chat/text.c: Python's str operations on UTF-8 text (strip,
 * split, replace, case mapping by code point with utf8proc, slicing,
 * format) as chat templates call them. */
#define _GNU_SOURCE	/* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/utf8.h"
#include "tok/chat/jinja.h"

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
struct jv *jt_strip(struct jctx *cx, struct jv *s, struct jv *chars,
			int which)
{
	const char *p = s->u.str.s;
	size_t a = 0, b = s->u.str.len, adv;

	if (chars && chars->type != JV_NONE && jb_want_str(cx, chars, "strip "
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

/* conv() targets; JT_LOWER and JT_UPPER share the first two values */
enum { CASE_LOWER = JT_LOWER, CASE_UPPER = JT_UPPER, CASE_TITLE = 2 };

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

int jt_is_alpha(uint32_t c)
{
	int cat = utf8proc_category(c);

	return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

int jt_is_alnum(uint32_t c)
{
	int cat = utf8proc_category(c);

	return jt_is_alpha(c) || (cat >= UTF8PROC_CATEGORY_ND &&
			       cat <= UTF8PROC_CATEGORY_NO);
}

/* mode (enum jt_case): lower / upper of all; capitalize: first title
 * case, the rest lower; Python's str.title: title case after a character
 * that has no case, lower case after one that has. */
struct jv *jt_recase(struct jctx *cx, const char *s, size_t len,
			 int mode)
{
	struct jbuf b = { 0 };
	size_t i = 0, adv;
	int prev_cased = 0;

	while (i < len) {
		uint32_t c = ju_decode(s + i, len - i, &adv);

		switch (mode) {
		case JT_CAPITALIZE:
			c = conv(c, i == 0 ? CASE_TITLE : CASE_LOWER);
			break;
		case JT_PYTITLE:
			c = conv(c, prev_cased ? CASE_LOWER : CASE_TITLE);
			prev_cased = is_cased_letter(c);
			break;
		default:
			c = conv(c, mode);
		}
		add_cp(&b, c);
		i += adv;
	}
	return jb_take(cx, &b);
}

/* Jinja's title filter: each piece after a run of [-\s({[<] starts with
 * an upper-case letter, the rest lower. */
struct jv *jt_title_words(struct jctx *cx, const char *s, size_t len)
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
	return jb_take(cx, &b);
}

struct jv *jt_replace(struct jctx *cx, struct jv *s, struct jv *old,
			      struct jv *new, struct jv *count)
{
	struct jbuf b = { 0 };
	int64_t max = -1, done = 0;
	size_t i = 0, adv;
	const char *p = s->u.str.s;
	size_t len = s->u.str.len, on;

	if (jb_want_str(cx, old, "replace() argument 1") ||
	    jb_want_str(cx, new, "replace() argument 2"))
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
		return jb_take(cx, &b);
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
	return jb_take(cx, &b);
}

/* Python str.split / rsplit. */
struct jv *jt_split(struct jctx *cx, struct jv *s, struct jv *sep,
			    struct jv *maxsplit, int right)
{
	struct jv *l = jv_list(0);
	const char *p = s->u.str.s;
	size_t len = s->u.str.len;
	int64_t max = -1;

	if (!l)
		return jb_oom(cx);
	if (maxsplit && maxsplit->type != JV_NONE) {
		if (maxsplit->type != JV_INT) {
			jv_unref(l);
			return jx_fail(cx, "maxsplit must be an integer");
		}
		max = maxsplit->u.i;
	}
	if (sep && sep->type == JV_NONE)
		sep = NULL;
	if (sep && jb_want_str(cx, sep, "separator")) {
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
					if (!jb_list_push(cx, l, jv_str(p + i,
								len - i)))
						goto fail;
					return l;
				}
				if (!jb_list_push(cx, l, jv_str(p + i,
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
				if (!jb_list_push(cx, l, jv_str(p + i, e - i)))
					goto fail;
				return l;
			}
			a = i;
			while (i < len && !ju_isspace(ju_decode(p + i, len - i,
								&adv)))
				i += adv;
			if (!jb_list_push(cx, l, jv_str(p + a, i - a)))
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
			return jt_split(cx, s, NULL, NULL, 0);
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
				if (!jb_list_push(cx, l, jv_str(p, e)))
					goto fail;
				break;
			}
			if (!jb_list_push(cx, l, jv_str(hit + sl,
						e - (hit - p) - sl)))
				goto fail;
			e = hit - p;
			n++;
		}
		r = jv_list(0);
		if (!r)
			goto fail;
		for (size_t k = l->u.list.n; k-- > 0;)
			if (!jb_list_push(cx, r, jv_ref(l->u.list.v[k]))) {
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

struct jv *jt_splitlines(struct jctx *cx, const char *s, size_t len,
			     int keepends)
{
	struct jv *l = jv_list(0);
	size_t i = 0, start = 0, bl;

	if (!l)
		return jb_oom(cx);
	while (i < len) {
		if (line_break(s, len, i, &bl)) {
			if (!jb_list_push(cx, l, jv_str(s + start, i - start +
						     (keepends ? bl : 0)))) {
				jv_unref(l);
				return NULL;
			}
			start = i + bl;
		}
		i += bl;
	}
	if (start < len && !jb_list_push(cx, l, jv_str(s + start, len - start))) {
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
			return jb_oom(cx);
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
		return v->u.str.safe ? jv_markup(jb_take(cx, &s)) :
		       jb_take(cx, &s);
	}
	r = jv_list(v->u.list.tuple);
	if (!r)
		return jb_oom(cx);
	for (int64_t i = a; st > 0 ? i < b : i > b; i += st)
		if (!jb_list_push(cx, r, jv_ref(v->u.list.v[i]))) {
			jv_unref(r);
			return NULL;
		}
	return r;
}

/* Python str.format with {} / {0} / {name} fields, no format specs. */
struct jv *jt_format(struct jctx *cx, struct jv *fmt, struct jargs *a)
{
	const char *s = fmt->u.str.s;
	size_t len = fmt->u.str.len, i = 0, auto_idx = 0;
	struct jbuf b = { 0 };

	while (i < len) {
		char c = s[i++];

		if (c == '}') {
			if (i >= len || s[i] != '}') {
				jbuf_free(&b);
				return jx_fail(cx, "Single '}' encountered in "
					       "format string");
			}
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
	return jb_take(cx, &b);
}

int jt_is_case(const struct jv *s, int upper)
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
