/* lib/tok/chat/parse.c: tokens to a syntax tree: the statements of
 * jinja2/parser.py (expressions are in expr.c).
 *
 * Children (kids) by node kind:
 *   BODY: statements            TEXT: val       OUTPUT: expr
 *   IF: cond, body, else|NULL   FOR: target, iter, filter|NULL, body,
 *                                    else|NULL (op: recursive)
 *   SET: target, expr           SET_BLOCK: target, body, filter|NULL
 *   MACRO: body, params...      (param: NAME with kids[0] = default;
 *                                    op: JM_* names the body reads)
 *   CALL_BLOCK: call, body, params... (op: as MACRO, for the caller)
 *   FILTER_BLOCK: filter chain (innermost subject NULL), body
 *   WITH: body, target, expr, target, expr...
 *   ATTR: obj (name)            ITEM: obj, key
 *   SLICE: obj, start, stop, step (each may be NULL)
 *   CALL: fn, args...           FILTER/TEST: subject, args... (kw[i]
 *                                    names kids[i]; TEST op: negated)
 *   BINOP/AND/OR: a, b          NEG/POS/NOT: a
 *   CMP: operands (ops[i] between kids[i] and kids[i+1])
 *   COND: cond, then, else|NULL LIST/TUPLE: items   DICT: k, v, k, v...
 *   CONCAT: parts               NSREF: name, val = attribute string */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/chat/parse.h"

static struct jnode *parse_body(struct parser *p, const char *const *ends,
				const char **which);

static int can_assign(const struct jnode *n)
{
	if (n->kind == JN_NAME)
		return 1;
	if (n->kind != JN_TUPLE)
		return 0;
	for (size_t i = 0; i < n->nkids; i++)
		if (!can_assign(n->kids[i]))
			return 0;
	return 1;
}

static struct jnode *parse_assign_target(struct parser *p, int name_only,
					 const char *end_name,
					 int with_namespace)
{
	struct jnode *n;

	if (with_namespace && jp_cur(p)->type == JT_NAME &&
	    jp_tok_is(jp_look(p), JT_OP, ".")) {
		n = jp_node(p, JN_NSREF);
		if (!n || jp_set_name(p, n, jp_cur(p)->s)) {
			jj_node_free(n);
			return NULL;
		}
		jp_next(p);
		jp_next(p);
		if (jp_cur(p)->type != JT_NAME) {
			jj_node_free(n);
			return jp_fail_tok(p, "an attribute name");
		}
		n->val = jv_strz(jp_cur(p)->s);
		if (!n->val) {
			jj_node_free(n);
			hf_err_set(p->err, HF_ENOMEM, "out of memory");
			return NULL;
		}
		jp_next(p);
		return n;
	}
	if (name_only) {
		if (jp_cur(p)->type != JT_NAME)
			return jp_fail_tok(p, "a name");
		n = jp_node(p, JN_NAME);
		if (!n || jp_set_name(p, n, jp_cur(p)->s)) {
			jj_node_free(n);
			return NULL;
		}
		jp_next(p);
		return n;
	}
	n = jp_tuple(p, 1, 1, end_name, 0);
	if (n && !can_assign(n)) {
		int line = n->line;

		jj_node_free(n);
		hf_err_set(p->err, HF_EFORMAT, "line %d: can't assign to "
			   "this expression", line);
		return NULL;
	}
	return n;
}

/* Expect "%}", then the body up to one of ends (consumed, with *which
 * naming it). */
static struct jnode *parse_statements(struct parser *p,
				      const char *const *ends,
				      const char **which)
{
	jp_skip_op(p, ":");
	if (jp_expect_type(p, JT_BLOCK_END, "'%}'"))
		return NULL;
	return parse_body(p, ends, which);
}

static int parse_signature(struct parser *p, struct jnode *n)
{
	if (jp_expect_op(p, "("))
		return -1;
	while (!jp_is_op(p, ")")) {
		struct jnode *arg;

		if (n->nkids > 2 - (n->kind == JN_MACRO) &&
		    jp_expect_op(p, ","))
			return -1;
		arg = parse_assign_target(p, 1, NULL, 0);
		if (jp_add(p, n, arg) || !arg)
			return -1;
		if (jp_skip_op(p, "=")) {
			struct jnode *d = jp_expression(p, 1);

			if (jp_add(p, arg, d) || !d)
				return -1;
		}
	}
	jp_next(p);
	return 0;
}

static struct jnode *parse_for(struct parser *p)
{
	static const char *const ends1[] = { "endfor", "else", NULL };
	static const char *const ends2[] = { "endfor", NULL };
	struct jnode *n = jp_node(p, JN_FOR), *x;
	const char *which = NULL;

	if (!n)
		return NULL;
	x = parse_assign_target(p, 0, "in", 0);
	if (jp_add(p, n, x) || !x)
		goto fail;
	if (!jp_skip_name(p, "in")) {
		jp_fail_tok(p, "'in'");
		goto fail;
	}
	x = jp_tuple(p, 0, 0, "recursive", 0);
	if (jp_add(p, n, x) || !x)
		goto fail;
	if (jp_skip_name(p, "if")) {
		x = jp_expression(p, 1);
		if (jp_add(p, n, x) || !x)
			goto fail;
	} else if (jp_add(p, n, NULL)) {
		goto fail;
	}
	n->op = jp_skip_name(p, "recursive");
	p->loops++;
	x = parse_statements(p, ends1, &which);
	p->loops--;
	if (jp_add(p, n, x) || !x)
		goto fail;
	if (!strcmp(which, "else")) {
		x = parse_statements(p, ends2, &which);
		if (jp_add(p, n, x) || !x)
			goto fail;
	} else if (jp_add(p, n, NULL)) {
		goto fail;
	}
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_if(struct parser *p)
{
	static const char *const ends1[] = { "elif", "else", "endif", NULL };
	static const char *const ends2[] = { "endif", NULL };
	struct jnode *n = jp_node(p, JN_IF), *x;
	const char *which = NULL;

	if (!n)
		return NULL;
	x = jp_tuple(p, 0, 0, NULL, 0);
	if (jp_add(p, n, x) || !x)
		goto fail;
	x = parse_statements(p, ends1, &which);
	if (jp_add(p, n, x) || !x)
		goto fail;
	if (!strcmp(which, "elif")) {
		struct jnode *b;

		if (jp_enter(p))
			goto fail;
		b = jp_node(p, JN_BODY);
		if (jp_add(p, n, b) || !b)
			goto fail;
		x = parse_if(p);
		p->depth--;
		if (jp_add(p, b, x) || !x)
			goto fail;
	} else if (!strcmp(which, "else")) {
		x = parse_statements(p, ends2, &which);
		if (jp_add(p, n, x) || !x)
			goto fail;
	} else if (jp_add(p, n, NULL)) {
		goto fail;
	}
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_set(struct parser *p)
{
	static const char *const ends[] = { "endset", NULL };
	struct jnode *target, *n, *x;
	const char *which;

	target = parse_assign_target(p, 0, NULL, 1);
	if (!target)
		return NULL;
	if (jp_skip_op(p, "=")) {
		n = jp_node(p, JN_SET);
		if (!n || jp_add(p, n, target)) {
			if (!n)
				jj_node_free(target);
			jj_node_free(n);
			return NULL;
		}
		x = jp_tuple(p, 0, 1, NULL, 0);
		if (jp_add(p, n, x) || !x) {
			jj_node_free(n);
			return NULL;
		}
		return n;
	}
	n = jp_node(p, JN_SET_BLOCK);
	if (!n || jp_add(p, n, target)) {
		if (!n)
			jj_node_free(target);
		jj_node_free(n);
		return NULL;
	}
	x = NULL;
	if (jp_is_op(p, "|")) {
		x = jp_filter(p, NULL, 0);
		if (!x)
			goto fail;
	}
	{
		struct jnode *body = parse_statements(p, ends, &which);

		if (jp_add(p, n, body) || !body) {
			jj_node_free(x);
			goto fail;
		}
	}
	if (jp_add(p, n, x))
		goto fail;
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

/* Which of varargs, kwargs and caller a macro body reads: jinja2 lets a
 * macro take extra arguments only when its body uses them. */
static int uses_names(const struct jnode *n)
{
	int r = 0;

	if (!n)
		return 0;
	if (n->kind == JN_NAME) {
		if (!strcmp(n->name, "varargs"))
			r |= JM_VARARGS;
		else if (!strcmp(n->name, "kwargs"))
			r |= JM_KWARGS;
		else if (!strcmp(n->name, "caller"))
			r |= JM_CALLER;
	}
	for (size_t i = 0; i < n->nkids; i++)
		r |= uses_names(n->kids[i]);
	return r;
}

static struct jnode *parse_macro(struct parser *p)
{
	static const char *const ends[] = { "endmacro", NULL };
	struct jnode *n = jp_node(p, JN_MACRO), *body;
	const char *which;
	int loops = p->loops;

	if (!n)
		return NULL;
	if (jp_cur(p)->type != JT_NAME) {
		jj_node_free(n);
		return jp_fail_tok(p, "a macro name");
	}
	if (jp_set_name(p, n, jp_cur(p)->s) || jp_add(p, n, NULL))
		goto fail;
	jp_next(p);
	if (parse_signature(p, n))
		goto fail;
	p->loops = 0;
	body = parse_statements(p, ends, &which);
	p->loops = loops;
	if (!body)
		goto fail;
	n->kids[0] = body;
	n->op = uses_names(body);
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_call_block(struct parser *p)
{
	static const char *const ends[] = { "endcall", NULL };
	struct jnode *n = jp_node(p, JN_CALL_BLOCK), *x;
	const char *which;
	int loops = p->loops;

	if (!n)
		return NULL;
	if (jp_add(p, n, NULL) || jp_add(p, n, NULL))
		goto fail;
	if (jp_is_op(p, "(") && parse_signature(p, n))
		goto fail;
	x = jp_expression(p, 1);
	if (!x)
		goto fail;
	n->kids[0] = x;
	if (x->kind != JN_CALL) {
		jp_fail(p, "%s", "expected a call");
		goto fail;
	}
	p->loops = 0;
	x = parse_statements(p, ends, &which);
	p->loops = loops;
	if (!x)
		goto fail;
	n->kids[1] = x;
	n->op = uses_names(x);
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_filter_block(struct parser *p)
{
	static const char *const ends[] = { "endfilter", NULL };
	struct jnode *n = jp_node(p, JN_FILTER_BLOCK), *x;
	const char *which;

	if (!n)
		return NULL;
	x = jp_filter(p, NULL, 1);
	if (jp_add(p, n, x) || !x)
		goto fail;
	x = parse_statements(p, ends, &which);
	if (jp_add(p, n, x) || !x)
		goto fail;
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_with(struct parser *p)
{
	static const char *const ends[] = { "endwith", NULL };
	struct jnode *n = jp_node(p, JN_WITH), *x;
	const char *which;

	if (!n || jp_add(p, n, NULL)) {
		jj_node_free(n);
		return NULL;
	}
	while (jp_cur(p)->type != JT_BLOCK_END) {
		if (n->nkids > 1 && jp_expect_op(p, ","))
			goto fail;
		x = parse_assign_target(p, 0, NULL, 0);
		if (jp_add(p, n, x) || !x || jp_expect_op(p, "="))
			goto fail;
		x = jp_expression(p, 1);
		if (jp_add(p, n, x) || !x)
			goto fail;
	}
	x = parse_statements(p, ends, &which);
	if (!x)
		goto fail;
	n->kids[0] = x;
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_generation(struct parser *p)
{
	static const char *const ends[] = { "endgeneration", NULL };
	const char *which;

	/* transformers' AssistantTracker: the body renders unchanged */
	return parse_statements(p, ends, &which);
}

static struct jnode *parse_statement(struct parser *p)
{
	const struct jtok *t = jp_cur(p);
	struct jnode *n = NULL;

	if (t->type != JT_NAME)
		return jp_fail_tok(p, "a tag name");
	if (jp_enter(p))
		return NULL;
	jp_next(p);
	if (!strcmp(t->s, "if")) {
		n = parse_if(p);
	} else if (!strcmp(t->s, "for")) {
		n = parse_for(p);
	} else if (!strcmp(t->s, "set")) {
		n = parse_set(p);
	} else if (!strcmp(t->s, "macro")) {
		n = parse_macro(p);
	} else if (!strcmp(t->s, "call")) {
		n = parse_call_block(p);
	} else if (!strcmp(t->s, "filter")) {
		n = parse_filter_block(p);
	} else if (!strcmp(t->s, "with")) {
		n = parse_with(p);
	} else if (!strcmp(t->s, "generation")) {
		n = parse_generation(p);
	} else if (!strcmp(t->s, "break") || !strcmp(t->s, "continue")) {
		if (!p->loops) {
			p->pos--;
			p->depth--;
			return jp_fail(p, "'%s' outside of a loop", t->s);
		}
		n = jp_node(p, t->s[0] == 'b' ? JN_BREAK : JN_CONTINUE);
		if (n)
			n->line = t->line;
	} else {
		p->pos--;
		n = jp_fail(p, "unknown tag '%s'", t->s);
	}
	p->depth--;
	if (n && jp_expect_type(p, JT_BLOCK_END, "'%}'")) {
		jj_node_free(n);
		return NULL;
	}
	return n;
}

static struct jnode *parse_body(struct parser *p, const char *const *ends,
				const char **which)
{
	struct jnode *body = jp_node(p, JN_BODY), *n;

	if (!body)
		return NULL;
	for (;;) {
		const struct jtok *t = jp_cur(p);

		switch (t->type) {
		case JT_EOF:
			if (ends && ends[0]) {
				char msg[64];

				snprintf(msg, sizeof(msg), "unexpected end of "
					 "template, expected '%s'",
					 ends[0]);
				jp_fail(p, "%s", msg);
				goto fail;
			}
			return body;
		case JT_DATA:
			n = jp_const_node(p, jv_str(t->s, t->len));
			if (n)
				n->kind = JN_TEXT;
			jp_next(p);
			break;
		case JT_VAR_BEGIN:
			jp_next(p);
			n = jp_unary_node(p, JN_OUTPUT, t->line,
				       jp_tuple(p, 0, 1, NULL, 0));
			if (n && jp_expect_type(p, JT_VAR_END, "'}}'")) {
				jj_node_free(n);
				n = NULL;
			}
			break;
		case JT_BLOCK_BEGIN:
			jp_next(p);
			if (ends && jp_cur(p)->type == JT_NAME) {
				for (int i = 0; ends[i]; i++) {
					if (strcmp(jp_cur(p)->s, ends[i]))
						continue;
					*which = ends[i];
					jp_next(p);
					return body;
				}
			}
			n = parse_statement(p);
			break;
		default:
			jp_fail_tok(p, "template data or a tag");
			goto fail;
		}
		if (jp_add(p, body, n) || !n)
			goto fail;
	}
fail:
	jj_node_free(body);
	return NULL;
}

int jj_parse(struct jnode **out, const struct jtoks *t, struct hf_err *err)
{
	struct parser p = { .t = t, .err = err };

	*out = parse_body(&p, NULL, NULL);
	if (!*out)
		return err->code ? err->code : HF_EFORMAT;
	return 0;
}
