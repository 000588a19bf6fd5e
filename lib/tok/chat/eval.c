/* lib/tok/chat/eval.c: evaluate expressions with Python/Jinja2 semantics
 * and Jinja's default Undefined; frames, assignment and the limits. */
#define _GNU_SOURCE	/* memmem, strndup */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/chat/jinja.h"

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

struct jv *jx_oom(struct jctx *cx)
{
	if (!cx->err->code)
		hf_err_set(cx->err, HF_ENOMEM, "out of memory");
	return NULL;
}

/* A jbuf that ran out: say why. */
struct jv *jx_buf_fail(struct jctx *cx, const struct jbuf *b)
{
	if (b->oom == 2 && !cx->err->code) {
		hf_err_set(cx->err, HF_ERANGE, "line %d: output larger than "
			   "%u bytes", cx->line, JJ_MAX_OUTPUT);
		return NULL;
	}
	return jx_oom(cx);
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
struct jv *jx_undef_fail(struct jctx *cx, const struct jv *u)
{
	return jx_fail(cx, "%s", u->u.undef.hint ? u->u.undef.hint :
		       "undefined value");
}

/* ---- frames ---- */

struct jv *jx_lookup(struct jframe *f, const char *name)
{
	for (; f; f = f->parent) {
		struct jv *v = jv_dict_gets(f->vars, name);

		if (v)
			return v;
	}
	return NULL;
}

int jx_frame_set(struct jctx *cx, struct jframe *f, const char *name,
		     struct jv *v)
{
	if (!v)
		return -1;
	if (jv_dict_sets(f->vars, name, v)) {
		jx_oom(cx);
		return -1;
	}
	return 0;
}

int jx_frame_init(struct jctx *cx, struct jframe *f,
		      struct jframe *parent)
{
	f->parent = parent;
	f->cell = NULL;
	f->vars = jv_dict(JV_DICT);
	if (!f->vars) {
		jx_oom(cx);
		return -1;
	}
	return 0;
}

void jx_frame_done(struct jframe *f)
{
	jv_unref(f->vars);
	f->vars = NULL;
	if (f->cell) {
		f->cell->frame = NULL;
		if (--f->cell->refs == 0)
			free(f->cell);
		f->cell = NULL;
	}
}

/* ---- iteration ---- */

/* The items a for loop visits: a new list, or NULL on error. */
struct jv *jx_iter_items(struct jctx *cx, struct jv *v)
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
			return jx_oom(cx);
		for (size_t i = 0; i < v->u.dict.n; i++)
			if (jv_list_push(l, jv_ref(v->u.dict.k[i]))) {
				jv_unref(l);
				return jx_oom(cx);
			}
		return l;
	case JV_STR: {
		size_t i = 0, adv;

		l = jv_list(0);
		if (!l)
			return jx_oom(cx);
		if (jx_charge(cx, v->u.str.len)) {
			jv_unref(l);
			return NULL;
		}
		while (i < v->u.str.len) {
			ju_decode(v->u.str.s + i, v->u.str.len - i, &adv);
			if (jv_list_push(l, jv_str(v->u.str.s + i, adv))) {
				jv_unref(l);
				return jx_oom(cx);
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

/* Unpack v into a tuple target. Takes v. */
static int unpack(struct jctx *cx, struct jframe *f, const struct jnode *t,
		  struct jv *v)
{
	struct jv *items = jx_iter_items(cx, v);
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
		rc = jx_assign(cx, f, t->kids[i], jv_ref(items->u.list.v[i]));
	jv_unref(items);
	return rc;
}

int jx_holds_ns(struct jctx *cx, const struct jv *v)
{
	size_t i;
	int r;

	if (jx_charge(cx, 1))
		return -1;
	if (v->type == JV_NS)
		return 1;
	if (v->type == JV_LIST) {
		for (i = 0; i < v->u.list.n; i++)
			if ((r = jx_holds_ns(cx, v->u.list.v[i])))
				return r;
	} else if (v->type == JV_DICT) {
		for (i = 0; i < v->u.dict.n; i++)
			if ((r = jx_holds_ns(cx, v->u.dict.k[i])) ||
			    (r = jx_holds_ns(cx, v->u.dict.v[i])))
				return r;
	} else if (v->type == JV_FUNC && v->u.func.self) {
		return jx_holds_ns(cx, v->u.func.self);
	}
	return 0;
}

/* Bind v (taken) to target t in frame f. */
int jx_assign(struct jctx *cx, struct jframe *f, const struct jnode *t,
		  struct jv *v)
{
	if (!v)
		return -1;
	if (t->kind == JN_NAME)
		return jx_frame_set(cx, f, t->name, v);
	if (t->kind == JN_TUPLE)
		return unpack(cx, f, t, v);
	if (t->kind == JN_NSREF) {
		struct jv *ns = jx_lookup(f, t->name);
		int r;

		if (!ns || ns->type != JV_NS) {
			jv_unref(v);
			jx_fail(cx, "cannot assign attribute on non-namespace "
				"object");
			return -1;
		}
		r = jx_holds_ns(cx, v);
		if (r) {
			jv_unref(v);
			if (r > 0)
				jx_fail(cx, "cannot store a namespace in a "
					"namespace");
			return -1;
		}
		if (jv_dict_set(ns, jv_ref(t->val), v)) {
			jx_oom(cx);
			return -1;
		}
		return 0;
	}
	jv_unref(v);
	jx_fail(cx, "can't assign to this expression");
	return -1;
}

/* ---- expressions ---- */

static int is_intlike(const struct jv *v)
{
	return v->type == JV_INT || v->type == JV_BOOL;
}

static int64_t intval(const struct jv *v)
{
	return v->type == JV_BOOL ? v->u.b : v->u.i;
}

void jx_args_free(struct jargs *a)
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
int jx_eval_args(struct jctx *cx, struct jframe *f, const struct jnode *n,
		     size_t from, struct jargs *a)
{
	size_t cnt = n->nkids > from ? n->nkids - from : 0;

	memset(a, 0, sizeof(*a));
	a->pos = calloc(cnt + 1, sizeof(*a->pos));
	a->kwn = calloc(cnt + 1, sizeof(*a->kwn));
	a->kwv = calloc(cnt + 1, sizeof(*a->kwv));
	if (!a->pos || !a->kwn || !a->kwv) {
		jx_args_free(a);
		jx_oom(cx);
		return -1;
	}
	for (size_t i = from; i < n->nkids; i++) {
		struct jv *v = jx_eval(cx, f, n->kids[i]);

		if (!v) {
			jx_args_free(a);
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

	/* unknown filters inside if statements fail only when reached */
	if (!jb_has_filter(n->name))
		return jx_fail(cx, "no filter named '%s'", n->name);
	if (n->kids[0]) {
		v = jx_eval(cx, f, n->kids[0]);
		if (!v)
			return NULL;
	} else {
		v = jv_ref(subject);
	}
	if (jx_eval_args(cx, f, n, 1, &a)) {
		jv_unref(v);
		return NULL;
	}
	cx->line = n->line;
	r = jb_filter(cx, n->name, v, &a);
	jx_args_free(&a);
	jv_unref(v);
	return r;
}

/* A filter chain whose innermost subject is NULL, applied to subject. */
struct jv *jx_eval_filter_chain(struct jctx *cx, struct jframe *f,
				    const struct jnode *n, struct jv *subject)
{
	struct jv *inner, *r;
	struct jnode tmp;

	if (!n->kids[0])
		return eval_filter(cx, f, n, subject);
	inner = jx_eval_filter_chain(cx, f, n->kids[0], subject);
	if (!inner)
		return NULL;
	tmp = *n;
	tmp.kids = malloc(n->nkids * sizeof(*tmp.kids));
	if (!tmp.kids) {
		jv_unref(inner);
		return jx_oom(cx);
	}
	memcpy(tmp.kids, n->kids, n->nkids * sizeof(*tmp.kids));
	tmp.kids[0] = NULL;
	r = eval_filter(cx, f, &tmp, inner);
	free(tmp.kids);
	jv_unref(inner);
	return r;
}

/* Whether jinja2's optimizer can evaluate n at compile time: literals
 * and pure operations on them (no names, no calls: a sandbox never
 * folds calls). */
static int is_const(const struct jnode *n)
{
	if (!n)
		return 1;
	switch (n->kind) {
	case JN_NAME:
	case JN_CALL:
	case JN_NSREF:
		return 0;
	case JN_FILTER:	/* @pass_context filters are not folded */
		if (!strcmp(n->name, "map") || !strcmp(n->name, "select") ||
		    !strcmp(n->name, "reject") ||
		    !strcmp(n->name, "selectattr") ||
		    !strcmp(n->name, "rejectattr"))
			return 0;
		/* fall through */
	default:
		for (size_t i = 0; i < n->nkids; i++)
			if (!is_const(n->kids[i]))
				return 0;
		return 1;
	}
}

/* jinja2 compiles a slice to a plain Python subscript, so slicing what
 * cannot be sliced raises; but its optimizer first folds constant
 * expressions through the sandbox's getitem, which gives Undefined. A
 * folded Undefined survives only inside a larger constant expression or
 * as a whole {{ }} expression (Const.from_untrusted refuses it alone).
 * Mark those slices (op = 1). */
void jx_mark_folds(struct jnode *n, int in_const)
{
	if (!n)
		return;
	if (n->kind == JN_SLICE && in_const && is_const(n))
		n->op = 1;
	for (size_t i = 0; i < n->nkids; i++) {
		struct jnode *k = n->kids[i];
		int kc = n->kind == JN_OUTPUT ? 1 :
			 (n->kind >= JN_CONST && is_const(n));

		jx_mark_folds(k, kc);
	}
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
		r = jx_undef_fail(cx, obj);
		goto out;
	}
	/* see jx_mark_folds() */
	if (n->op && obj->type != JV_STR &&
	    !(obj->type == JV_LIST && !obj->u.list.view)) {
		r = jv_undef("%s object has no element slice",
			     jv_type_name(obj));
		goto out;
	}
	if (obj->type == JV_DICT) {
		r = jx_fail(cx, "unhashable type: 'slice'");
		goto out;
	}
	if (obj->type != JV_STR && (obj->type != JV_LIST ||
				     obj->u.list.view)) {
		r = jx_fail(cx, "'%s' object is not subscriptable",
			    jv_type_name(obj));
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
	if (jx_eval_args(cx, f, n, 1, &a)) {
		jv_unref(v);
		return NULL;
	}
	cx->line = n->line;
	r = jb_test(cx, n->name, v, &a);
	jx_args_free(&a);
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
		r = jx_compare(cx, n->ops[i - 1], a, b);
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
		return jx_oom(cx);
	for (size_t i = 0; i < n->nkids; i++) {
		struct jv *v = jx_eval(cx, f, n->kids[i]);

		if (!v)
			goto fail;
		if (n->kind != JN_DICT) {
			if (jv_list_push(c, v))
				goto fail_oom;
			continue;
		}
		if (jv_unhashable(v)) {
			jx_fail(cx, "unhashable type: '%s'",
				jv_type_name(jv_unhashable(v)));
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
	jx_oom(cx);
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
		a = jx_lookup(f, n->name);
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
		if (jx_eval_args(cx, f, n, 1, &args)) {
			jv_unref(a);
			return NULL;
		}
		cx->line = n->line;
		r = jx_call(cx, a, &args);
		jx_args_free(&args);
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
		r = jx_binop(cx, n->op, a, b);
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
			r = jx_undef_fail(cx, a);
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
			return jx_buf_fail(cx, &s);
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
		jx_oom(cx);	/* a NULL without a message: an allocation */
	return r;
}

