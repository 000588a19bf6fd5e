/* lib/tok/chat/exec.c: run statements: output, if, for (a frame and a
 * loop object per iteration, as jinja2 compiles loops), set, macros and
 * call blocks, filter and with blocks, break and continue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/chat/jinja.h"

enum { FLOW_OK = 0, FLOW_BREAK = 1, FLOW_CONTINUE = 2, FLOW_ERR = -1 };

/* ---- statements ---- */

static int exec_body(struct jctx *cx, struct jframe *f, const struct jnode *b,
		     struct jbuf *out);

static int output(struct jctx *cx, struct jbuf *out, const struct jv *v)
{
	size_t before = out->n;

	jv_str_into(out, v);
	if (out->oom) {
		jx_buf_fail(cx, out);
		return -1;
	}
	return jx_charge(cx, (out->n - before) / 64);
}

/* Render body into a new string value (set blocks, macros, caller). */
/* Start frame f of frame node n: the names jj_scope found assigned
 * before any use start as Undefined, hiding outer values. */
static int declare(struct jctx *cx, struct jframe *f, const struct jnode *n)
{
	for (size_t i = 0; i < n->nundef; i++) {
		if (jv_dict_gets(f->vars, n->undef[i]))
			continue;
		if (jx_frame_set(cx, f, n->undef[i],
				 jv_undef("'%s' is undefined", n->undef[i])))
			return -1;
	}
	return 0;
}

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
		return jx_buf_fail(cx, &b);
	return jbuf_take(&b);
}

/* A set or filter block: its body runs in a frame of its own. */
static struct jv *capture_in_frame(struct jctx *cx, struct jframe *f,
				   const struct jnode *n,
				   const struct jnode *body)
{
	struct jframe bf;
	struct jv *r = NULL;

	if (jx_frame_init(cx, &bf, f))
		return NULL;
	if (!declare(cx, &bf, n))
		r = capture(cx, &bf, body);
	jx_frame_done(&bf);
	return r;
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
	items = jx_iter_items(cx, seq);
	jv_unref(seq);
	if (!items)
		return FLOW_ERR;
	if (n->kids[2]) {	/* for x in xs if cond: filter first */
		struct jv *kept = jv_list(0);

		if (!kept) {
			jv_unref(items);
			jx_oom(cx);
			return FLOW_ERR;
		}
		for (size_t i = 0; i < items->u.list.n; i++) {
			struct jframe tf;
			struct jv *c;
			int ok;

			if (jx_frame_init(cx, &tf, f))
				goto filter_fail;
			ok = !jx_assign(cx, &tf, n->kids[0],
				     jv_ref(items->u.list.v[i])) &&
			     (c = jx_eval(cx, &tf, n->kids[2]));
			jx_frame_done(&tf);
			if (!ok)
				goto filter_fail;
			ok = jv_truthy(c);
			jv_unref(c);
			if (ok && jv_list_push(kept,
					       jv_ref(items->u.list.v[i]))) {
				jx_oom(cx);
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

		/* an iteration allocates a frame and a loop object (about
		 * 16 allocations) */
		if (jx_charge(cx, 32) || jx_frame_init(cx, &lf, f)) {
			rc = FLOW_ERR;
			break;
		}
		if (jx_assign(cx, &lf, n->kids[0], jv_ref(items->u.list.v[i])) ||
		    jx_frame_set(cx, &lf, "loop", make_loop(cx, items, i)) ||
		    declare(cx, &lf, n)) {
			jx_frame_done(&lf);
			rc = FLOW_ERR;
			break;
		}
		r = exec_body(cx, &lf, n->kids[3], out);
		jx_frame_done(&lf);
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
	l->u.dict.loop = 1;
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
	return jx_oom(cx);
}

/* Bind a macro's or caller's parameters (kids[first..]) in frame mf. */
static int bind_params(struct jctx *cx, struct jframe *mf,
		       const struct jnode *n, size_t first, struct jargs *a,
		       const char *what)
{
	size_t nparams = n->nkids - first, used_kw = 0;
	struct jv *varargs, *kwargs;

	/* jinja2.runtime.Macro: extra arguments only if the body reads
	 * varargs / kwargs */
	if (a->npos > nparams && !(n->op & JM_VARARGS)) {
		jx_fail(cx, "macro '%s' takes not more than %zu argument(s)",
			what, nparams);
		return -1;
	}
	for (size_t k = 0; k < a->nkw; k++) {
		int known = 0;

		for (size_t i = 0; i < nparams && !known; i++)
			known = !strcmp(a->kwn[k], n->kids[first + i]->name);
		if (known || (n->op & JM_KWARGS))
			continue;
		if (!strcmp(a->kwn[k], "caller")) {
			if (n->op & JM_CALLER)
				continue;
			jx_fail(cx, "macro '%s' was invoked with two values for "
				"the special caller argument", what);
			return -1;
		}
		jx_fail(cx, "macro '%s' takes no keyword argument '%s'", what,
			a->kwn[k]);
		return -1;
	}

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
		if (jx_frame_set(cx, mf, p->name, v))
			return -1;
	}
	varargs = jv_list(1);
	kwargs = jv_dict(JV_DICT);
	if (jx_frame_set(cx, mf, "varargs", varargs) ||
	    jx_frame_set(cx, mf, "kwargs", kwargs))
		return -1;
	for (size_t i = nparams; i < a->npos; i++)
		if (jv_list_push(varargs, jv_ref(a->pos[i]))) {
			jx_oom(cx);
			return -1;
		}
	for (size_t k = 0; k < a->nkw && used_kw < a->nkw; k++) {
		int known = !strcmp(a->kwn[k], "caller");

		for (size_t i = 0; i < nparams && !known; i++)
			known = !strcmp(a->kwn[k], n->kids[first + i]->name);
		if (known)
			continue;
		if (jv_dict_sets(kwargs, a->kwn[k], jv_ref(a->kwv[k]))) {
			jx_oom(cx);
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

	/* its defining frame, or the template's once that frame ended */
	if (jx_frame_init(cx, &mf, fn->u.func.cell && fn->u.func.cell->frame ?
			  fn->u.func.cell->frame : cx->root))
		return NULL;
	for (size_t k = 0; k < a->nkw; k++)
		if (!strcmp(a->kwn[k], "caller"))
			caller = a->kwv[k];
	if (!bind_params(cx, &mf, m, 1, a, m->name) &&
	    (!caller || !jx_frame_set(cx, &mf, "caller", jv_ref(caller))) &&
	    !declare(cx, &mf, m))
		r = capture(cx, &mf, m->kids[0]);
	jx_frame_done(&mf);
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
	if (jx_frame_init(cx, &cf, cell->frame))
		return NULL;
	if (!bind_params(cx, &cf, cb, 2, a, "caller") && !declare(cx, &cf, cb))
		r = capture(cx, &cf, cb->kids[1]);
	jx_frame_done(&cf);
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
		jx_oom(cx);
		return FLOW_ERR;
	}
	cell->refs = 1;
	cell->frame = f;
	caller = jv_func(call_caller, "caller", NULL, n);
	if (!caller) {
		free(cell);
		jx_oom(cx);
		return FLOW_ERR;
	}
	caller->u.func.cell = cell;
	fn = jx_eval(cx, f, call->kids[0]);
	if (fn && !jx_eval_args(cx, f, call, 1, &a)) {
		a.kwn[a.nkw] = "caller";
		a.kwv[a.nkw++] = jv_ref(caller);
		cx->line = n->line;
		r = jx_call(cx, fn, &a);
		jx_args_free(&a);
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
			jx_buf_fail(cx, out);
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
		return jx_assign(cx, f, n->kids[0], v) ? FLOW_ERR : FLOW_OK;
	case JN_SET_BLOCK:
		v = capture_in_frame(cx, f, n, n->kids[1]);
		if (!v)
			return FLOW_ERR;
		if (n->kids[2]) {
			fv = jx_eval_filter_chain(cx, f, n->kids[2], v);
			jv_unref(v);
			if (!fv)
				return FLOW_ERR;
			v = fv;
		}
		cx->line = n->line;
		return jx_assign(cx, f, n->kids[0], v) ? FLOW_ERR : FLOW_OK;
	case JN_MACRO:
		/* a macro closes over the frame it is defined in */
		if (!f->cell) {
			f->cell = calloc(1, sizeof(*f->cell));
			if (!f->cell) {
				jx_oom(cx);
				return FLOW_ERR;
			}
			f->cell->refs = 1;
			f->cell->frame = f;
		}
		v = jv_func(call_macro, n->name, NULL, n);
		if (v) {
			v->u.func.cell = f->cell;
			f->cell->refs++;
		}
		return jx_frame_set(cx, f, n->name, v) ? FLOW_ERR : FLOW_OK;
	case JN_CALL_BLOCK:
		return exec_call_block(cx, f, n, out);
	case JN_FILTER_BLOCK:
		v = capture_in_frame(cx, f, n, n->kids[1]);
		if (!v)
			return FLOW_ERR;
		fv = jx_eval_filter_chain(cx, f, n->kids[0], v);
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

		if (jx_frame_init(cx, &wf, f))
			return FLOW_ERR;
		r = FLOW_OK;
		for (size_t i = 1; i + 1 < n->nkids && r == FLOW_OK; i += 2) {
			v = jx_eval(cx, f, n->kids[i + 1]);
			if (!v || jx_assign(cx, &wf, n->kids[i], v))
				r = FLOW_ERR;
		}
		if (r == FLOW_OK && declare(cx, &wf, n))
			r = FLOW_ERR;
		if (r == FLOW_OK)
			r = exec_body(cx, &wf, n->kids[0], out);
		jx_frame_done(&wf);
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
		jx_oom(cx);
	return r;
}

int jx_render(struct jctx *cx, const struct jnode *body, struct jv *globals,
	      struct jbuf *out)
{
	/* the template's variables, then its own top-level locals */
	struct jframe context = { .parent = NULL, .vars = globals };
	struct jframe root;
	int rc;

	if (jx_frame_init(cx, &root, &context))
		return -1;
	cx->root = &root;
	rc = declare(cx, &root, body) ? FLOW_ERR :
	     exec_body(cx, &root, body, out);
	jx_frame_done(&root);
	return rc == FLOW_ERR ? -1 : 0;
}

