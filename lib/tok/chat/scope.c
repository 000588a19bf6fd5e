/* lib/tok/chat/scope.c: which names a frame starts with as Undefined.
 *
 * jinja2 compiles each frame (the template, a for body, a macro, a call,
 * set or filter block, a with block) with its own locals (idtracking.py).
 * A name whose first use in a frame, in source order, is an assignment
 * outside any if branch, and which no enclosing frame uses, starts as
 * Undefined: it hides a template variable of the same name, so a loop
 * or macro that reads it before the assignment runs sees Undefined. */
#include <stdlib.h>
#include <string.h>

#include "tok/chat/jinja.h"

enum { USE_LOAD = 1, USE_STORE = 2 };

struct use {
	const char *name;
	int first;	/* USE_LOAD or USE_STORE */
};

struct uses {
	struct use *v;
	size_t n, cap;
	int oom;
};

struct frame_scan {
	struct uses uses;
	const struct jnode **kids;	/* frames nested in this one */
	size_t nkids, capkids;
};

static struct use *find(const struct uses *u, const char *name)
{
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->v[i].name, name))
			return &u->v[i];
	return NULL;
}

static void occur(struct uses *u, const char *name, int how)
{
	if (find(u, name))
		return;
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 16;
		struct use *nv = realloc(u->v, cap * sizeof(*nv));

		if (!nv) {
			u->oom = 1;
			return;
		}
		u->v = nv;
		u->cap = cap;
	}
	u->v[u->n].name = name;
	u->v[u->n++].first = how;
}

static void add_kid(struct frame_scan *s, const struct jnode *n)
{
	if (s->nkids == s->capkids) {
		size_t cap = s->capkids ? s->capkids * 2 : 8;
		const struct jnode **nk = realloc(s->kids, cap * sizeof(*nk));

		if (!nk) {
			s->uses.oom = 1;
			return;
		}
		s->kids = nk;
		s->capkids = cap;
	}
	s->kids[s->nkids++] = n;
}

static void expr(struct frame_scan *s, const struct jnode *n)
{
	if (!n)
		return;
	if (n->kind == JN_NAME)
		occur(&s->uses, n->name, USE_LOAD);
	for (size_t i = 0; i < n->nkids; i++)
		expr(s, n->kids[i]);
}

/* An assignment target; inside an if branch a new name counts as a
 * load (jinja2's branch_update makes it resolve from outside). */
static void store(struct frame_scan *s, const struct jnode *t, int branch)
{
	if (t->kind == JN_NAME)
		occur(&s->uses, t->name, branch ? USE_LOAD : USE_STORE);
	else if (t->kind == JN_NSREF)
		occur(&s->uses, t->name, USE_LOAD);
	else
		for (size_t i = 0; i < t->nkids; i++)
			store(s, t->kids[i], branch);
}

static void stmts(struct frame_scan *s, const struct jnode *body, int branch);

static void stmt(struct frame_scan *s, const struct jnode *n, int branch)
{
	switch (n->kind) {
	case JN_BODY:
		stmts(s, n, branch);
		break;
	case JN_OUTPUT:
		expr(s, n->kids[0]);
		break;
	case JN_IF:
		expr(s, n->kids[0]);
		stmts(s, n->kids[1], 1);
		if (n->kids[2])
			stmts(s, n->kids[2], 1);
		break;
	case JN_FOR:
		expr(s, n->kids[1]);
		add_kid(s, n);
		break;
	case JN_SET:
		expr(s, n->kids[1]);
		store(s, n->kids[0], branch);
		break;
	case JN_SET_BLOCK:
		add_kid(s, n);
		store(s, n->kids[0], branch);
		break;
	case JN_MACRO:
		occur(&s->uses, n->name, branch ? USE_LOAD : USE_STORE);
		add_kid(s, n);
		break;
	case JN_CALL_BLOCK:
		expr(s, n->kids[0]);
		add_kid(s, n);
		break;
	case JN_FILTER_BLOCK:
		expr(s, n->kids[0]);
		add_kid(s, n);
		break;
	case JN_WITH:
		for (size_t i = 2; i < n->nkids; i += 2)
			expr(s, n->kids[i]);
		add_kid(s, n);
		break;
	default:
		break;
	}
}

static void stmts(struct frame_scan *s, const struct jnode *body, int branch)
{
	for (size_t i = 0; body && i < body->nkids; i++)
		stmt(s, body->kids[i], branch);
}

/* A chain of the names each enclosing frame uses. */
struct outer {
	const struct uses *uses;
	const struct outer *up;
};

static int used_outside(const struct outer *o, const char *name)
{
	for (; o; o = o->up)
		if (find(o->uses, name))
			return 1;
	return 0;
}

static void declare_params(struct frame_scan *s, const struct jnode *n)
{
	size_t first = 0;

	switch (n->kind) {
	case JN_FOR:
		store(s, n->kids[0], 0);
		occur(&s->uses, "loop", USE_LOAD);
		return;
	case JN_MACRO:
		first = 1;
		break;
	case JN_CALL_BLOCK:
		first = 2;
		break;
	case JN_WITH:
		for (size_t i = 1; i < n->nkids; i += 2)
			store(s, n->kids[i], 0);
		return;
	default:
		return;
	}
	for (size_t i = first; i < n->nkids; i++)
		occur(&s->uses, n->kids[i]->name, USE_LOAD);
	occur(&s->uses, "varargs", USE_LOAD);
	occur(&s->uses, "kwargs", USE_LOAD);
	occur(&s->uses, "caller", USE_LOAD);
}

static int scan_frame(struct jnode *n, const struct jnode *body,
		      const struct outer *up, struct hf_err *err, int depth)
{
	struct frame_scan s = { 0 };
	struct outer me = { &s.uses, up };
	size_t params, nundef = 0;
	int rc = 0;

	if (depth > JJ_MAX_NEST)
		return hf_err_set(err, HF_EFORMAT, "blocks nested too deeply");
	declare_params(&s, n);
	params = s.uses.n;	/* parameters are never "undefined" */
	stmts(&s, body, 0);
	if (s.uses.oom) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = params; i < s.uses.n; i++)
		if (s.uses.v[i].first == USE_STORE &&
		    !used_outside(up, s.uses.v[i].name))
			nundef++;
	if (nundef) {
		n->undef = calloc(nundef, sizeof(*n->undef));
		if (!n->undef) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		for (size_t i = params; i < s.uses.n; i++)
			if (s.uses.v[i].first == USE_STORE &&
			    !used_outside(up, s.uses.v[i].name) &&
			    !(n->undef[n->nundef++] =
			      strdup(s.uses.v[i].name))) {
				rc = hf_err_set(err, HF_ENOMEM,
						"out of memory");
				goto out;
			}
	}
	for (size_t i = 0; !rc && i < s.nkids; i++) {
		struct jnode *k = (struct jnode *)s.kids[i];
		const struct jnode *kb;

		switch (k->kind) {
		case JN_FOR: kb = k->kids[3]; break;
		case JN_SET_BLOCK: kb = k->kids[1]; break;
		case JN_MACRO: kb = k->kids[0]; break;
		case JN_CALL_BLOCK: kb = k->kids[1]; break;
		case JN_FILTER_BLOCK: kb = k->kids[1]; break;
		default: kb = k->kids[0]; break;	/* JN_WITH */
		}
		rc = scan_frame(k, kb, &me, err, depth + 1);
	}
out:
	free(s.uses.v);
	free(s.kids);
	return rc;
}

int jj_scope(struct jnode *root, struct hf_err *err)
{
	return scan_frame(root, root, NULL, err, 0);
}
