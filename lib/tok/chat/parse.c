/* lib/tok/chat/parse.c: tokens to a syntax tree, following the grammar and
 * operator precedence of jinja2/parser.py.
 *
 * Children (kids) by node kind:
 *   BODY: statements            TEXT: val       OUTPUT: expr
 *   IF: cond, body, else|NULL   FOR: target, iter, filter|NULL, body,
 *                                    else|NULL (op: recursive)
 *   SET: target, expr           SET_BLOCK: target, body, filter|NULL
 *   MACRO: body, params...      (param: NAME with kids[0] = default)
 *   CALL_BLOCK: call, body, params...
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
#include <stdlib.h>
#include <string.h>

#include "tok/chat/jinja.h"

struct parser {
	const struct jtoks *t;
	size_t pos;
	struct hf_err *err;
	int depth;
	int loops;	/* enclosing for loops (break/continue allowed) */
};

static const struct jtok *cur(struct parser *p)
{
	return &p->t->t[p->pos];
}

static const struct jtok *look(struct parser *p)
{
	return p->pos + 1 < p->t->n ? &p->t->t[p->pos + 1] : cur(p);
}

static void next(struct parser *p)
{
	if (cur(p)->type != JT_EOF)
		p->pos++;
}

static int tok_is(const struct jtok *t, int type, const char *s)
{
	return t->type == type && (!s || !strcmp(t->s, s));
}

static int is_op(struct parser *p, const char *op)
{
	return tok_is(cur(p), JT_OP, op);
}

static int is_name(struct parser *p, const char *name)
{
	return tok_is(cur(p), JT_NAME, name);
}

static int skip_op(struct parser *p, const char *op)
{
	if (!is_op(p, op))
		return 0;
	next(p);
	return 1;
}

static int skip_name(struct parser *p, const char *name)
{
	if (!is_name(p, name))
		return 0;
	next(p);
	return 1;
}

static const char *describe(const struct jtok *t)
{
	switch (t->type) {
	case JT_EOF: return "end of template";
	case JT_DATA: return "template data";
	case JT_VAR_BEGIN: return "'{{'";
	case JT_VAR_END: return "'}}'";
	case JT_BLOCK_BEGIN: return "'{%'";
	case JT_BLOCK_END: return "'%}'";
	case JT_INT: return "integer";
	case JT_FLOAT: return "float";
	case JT_STRING: return "string";
	default: return NULL;
	}
}

static void *fail(struct parser *p, const char *fmt, const char *arg)
{
	char msg[256];

	if (p->err->code)
		return NULL;
	snprintf(msg, sizeof(msg), fmt, arg);
	hf_err_set(p->err, HF_EFORMAT, "line %d: %s", cur(p)->line, msg);
	return NULL;
}

static void *fail_tok(struct parser *p, const char *what)
{
	const struct jtok *t = cur(p);
	const char *d = describe(t);
	char got[128];

	if (d)
		snprintf(got, sizeof(got), "%s", d);
	else
		snprintf(got, sizeof(got), "'%.100s'", t->s);
	if (p->err->code)
		return NULL;
	hf_err_set(p->err, HF_EFORMAT, "line %d: expected %s, got %s",
		   t->line, what, got);
	return NULL;
}

static int expect_op(struct parser *p, const char *op)
{
	char what[16];

	if (skip_op(p, op))
		return 0;
	snprintf(what, sizeof(what), "'%s'", op);
	fail_tok(p, what);
	return -1;
}

static int expect_type(struct parser *p, int type, const char *what)
{
	if (cur(p)->type == type) {
		next(p);
		return 0;
	}
	fail_tok(p, what);
	return -1;
}

/* ---- nodes ---- */

static struct jnode *node(struct parser *p, int kind)
{
	struct jnode *n = calloc(1, sizeof(*n));

	if (!n) {
		hf_err_set(p->err, HF_ENOMEM, "out of memory");
		return NULL;
	}
	n->kind = kind;
	n->line = cur(p)->line;
	return n;
}

/* Append kid (NULL allowed: an absent optional part); kw (copied) names
 * a keyword argument. On failure frees kid and returns -1. */
static int add_kw(struct parser *p, struct jnode *n, struct jnode *kid,
		  const char *kw)
{
	struct jnode **nk = realloc(n->kids, (n->nkids + 1) * sizeof(*nk));
	char **nkw;

	if (!nk)
		goto oom;
	n->kids = nk;
	if (kw || n->kw) {
		nkw = realloc(n->kw, (n->nkids + 1) * sizeof(*nkw));
		if (!nkw)
			goto oom;
		if (!n->kw)
			memset(nkw, 0, n->nkids * sizeof(*nkw));
		n->kw = nkw;
		n->kw[n->nkids] = NULL;
		if (kw && !(n->kw[n->nkids] = strdup(kw)))
			goto oom;
	}
	n->kids[n->nkids++] = kid;
	return 0;
oom:
	jj_node_free(kid);
	hf_err_set(p->err, HF_ENOMEM, "out of memory");
	return -1;
}

static int add(struct parser *p, struct jnode *n, struct jnode *kid)
{
	return add_kw(p, n, kid, NULL);
}

void jj_node_free(struct jnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++) {
		jj_node_free(n->kids[i]);
		if (n->kw)
			free(n->kw[i]);
	}
	free(n->kids);
	free(n->kw);
	free(n->ops);
	free(n->name);
	jv_unref(n->val);
	free(n);
}

static struct jnode *const_node(struct parser *p, struct jv *v)
{
	struct jnode *n;

	if (!v) {
		hf_err_set(p->err, HF_ENOMEM, "out of memory");
		return NULL;
	}
	n = node(p, JN_CONST);
	if (!n) {
		jv_unref(v);
		return NULL;
	}
	n->val = v;
	return n;
}

static struct jnode *unary_node(struct parser *p, int kind, int line,
				struct jnode *a)
{
	struct jnode *n;

	if (!a)
		return NULL;
	n = node(p, kind);
	if (!n) {
		jj_node_free(a);
		return NULL;
	}
	n->line = line;
	if (add(p, n, a)) {
		jj_node_free(n);
		return NULL;
	}
	return n;
}

static struct jnode *binary_node(struct parser *p, int kind, int op,
				 struct jnode *a, struct jnode *b)
{
	struct jnode *n;

	if (!a || !b) {
		jj_node_free(a);
		jj_node_free(b);
		return NULL;
	}
	n = node(p, kind);
	if (!n) {
		jj_node_free(a);
		jj_node_free(b);
		return NULL;
	}
	n->op = op;
	n->line = a->line;
	if (add(p, n, a)) {
		jj_node_free(b);
		jj_node_free(n);
		return NULL;
	}
	if (add(p, n, b)) {
		jj_node_free(n);
		return NULL;
	}
	return n;
}

static int set_name(struct parser *p, struct jnode *n, const char *s)
{
	n->name = strdup(s);
	if (!n->name)
		return hf_err_set(p->err, HF_ENOMEM, "out of memory");
	return 0;
}

/* ---- expressions ---- */

static struct jnode *parse_expression(struct parser *p, int with_condexpr);
static struct jnode *parse_unary(struct parser *p, int with_filter);
static struct jnode *parse_tuple(struct parser *p, int simplified,
				 int with_condexpr, const char *end_name,
				 int explicit_parens);
static struct jnode *parse_filter(struct parser *p, struct jnode *subject,
				  int start_inline);

static int enter(struct parser *p)
{
	if (++p->depth > JJ_MAX_NEST) {
		fail(p, "%s", "expression or block nested too deeply");
		return -1;
	}
	return 0;
}

/* "(" args ")" into n (after its existing kids). */
static int parse_call_args(struct parser *p, struct jnode *n)
{
	int any = 0, kw_seen = 0;

	if (expect_op(p, "("))
		return -1;
	while (!is_op(p, ")")) {
		if (any) {
			if (expect_op(p, ","))
				return -1;
			if (is_op(p, ")"))
				break;
		}
		if (is_op(p, "*") || is_op(p, "**")) {
			fail(p, "%s", "*args and **kwargs are not supported");
			return -1;
		}
		if (cur(p)->type == JT_NAME && tok_is(look(p), JT_OP, "=")) {
			char *k = cur(p)->s;

			next(p);
			next(p);
			if (add_kw(p, n, parse_expression(p, 1), k) ||
			    !n->kids[n->nkids - 1])
				return -1;
			kw_seen = 1;
		} else {
			if (kw_seen) {
				fail(p, "%s", "positional argument after "
				     "keyword argument");
				return -1;
			}
			if (add(p, n, parse_expression(p, 1)) ||
			    !n->kids[n->nkids - 1])
				return -1;
		}
		any = 1;
	}
	next(p);
	return 0;
}

static struct jnode *parse_primary(struct parser *p)
{
	const struct jtok *t = cur(p);
	struct jnode *n;

	switch (t->type) {
	case JT_NAME:
		if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
			next(p);
			return const_node(p, JV_TRUE_P);
		}
		if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
			next(p);
			return const_node(p, JV_FALSE_P);
		}
		if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
			next(p);
			return const_node(p, JV_NONE_P);
		}
		n = node(p, JN_NAME);
		if (!n || set_name(p, n, t->s)) {
			jj_node_free(n);
			return NULL;
		}
		next(p);
		return n;
	case JT_STRING: {
		struct jbuf b = { 0 };

		while (cur(p)->type == JT_STRING) {
			jbuf_add(&b, cur(p)->s, cur(p)->len);
			next(p);
		}
		return const_node(p, jbuf_take(&b));
	}
	case JT_INT:
		next(p);
		return const_node(p, jv_int(t->i));
	case JT_FLOAT:
		next(p);
		return const_node(p, jv_float(t->f));
	case JT_OP:
		if (!strcmp(t->s, "(")) {
			next(p);
			n = parse_tuple(p, 0, 1, NULL, 1);
			if (n && expect_op(p, ")")) {
				jj_node_free(n);
				return NULL;
			}
			return n;
		}
		if (!strcmp(t->s, "[") || !strcmp(t->s, "{")) {
			int dict = t->s[0] == '{';
			const char *close = dict ? "}" : "]";

			n = node(p, dict ? JN_DICT : JN_LIST);
			if (!n)
				return NULL;
			next(p);
			while (!is_op(p, close)) {
				if (n->nkids && (expect_op(p, ",") ||
						 is_op(p, close)))
					break;
				if (add(p, n, parse_expression(p, 1)) ||
				    !n->kids[n->nkids - 1])
					goto fail_coll;
				if (dict && (expect_op(p, ":") ||
				    add(p, n, parse_expression(p, 1)) ||
				    !n->kids[n->nkids - 1]))
					goto fail_coll;
			}
			if (p->err->code || expect_op(p, close))
				goto fail_coll;
			return n;
fail_coll:
			jj_node_free(n);
			return NULL;
		}
		break;
	}
	return fail_tok(p, "an expression");
}

static struct jnode *parse_subscribed(struct parser *p)
{
	struct jnode *n, *e = NULL;

	if (!is_op(p, ":")) {
		e = parse_expression(p, 1);
		if (!e || !is_op(p, ":"))
			return e;
	}
	n = node(p, JN_SLICE);
	if (!n || add(p, n, NULL) || add(p, n, e)) {
		jj_node_free(n);
		return NULL;
	}
	next(p);	/* the first ':' */
	if (!is_op(p, "]") && !is_op(p, ",") && !is_op(p, ":")) {
		if (add(p, n, parse_expression(p, 1)) || !n->kids[2])
			goto fail;
	} else if (add(p, n, NULL)) {
		goto fail;
	}
	if (skip_op(p, ":") && !is_op(p, "]") && !is_op(p, ",")) {
		if (add(p, n, parse_expression(p, 1)) || !n->kids[3])
			goto fail;
	} else if (add(p, n, NULL)) {
		goto fail;
	}
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_postfix(struct parser *p, struct jnode *obj)
{
	while (obj) {
		struct jnode *n;
		int line = cur(p)->line;

		if (skip_op(p, ".")) {
			const struct jtok *t = cur(p);

			if (t->type == JT_NAME) {
				n = unary_node(p, JN_ATTR, line, obj);
				if (n && set_name(p, n, t->s)) {
					jj_node_free(n);
					return NULL;
				}
				next(p);
			} else if (t->type == JT_INT) {
				n = binary_node(p, JN_ITEM, 0, obj,
						const_node(p, jv_int(t->i)));
				next(p);
			} else {
				jj_node_free(obj);
				return fail_tok(p, "an attribute name");
			}
			obj = n;
		} else if (skip_op(p, "[")) {
			struct jnode *tuple = node(p, JN_TUPLE), *key;

			if (!tuple) {
				jj_node_free(obj);
				return NULL;
			}
			while (!is_op(p, "]")) {
				if (tuple->nkids && expect_op(p, ","))
					break;
				if (add(p, tuple, parse_subscribed(p)) ||
				    !tuple->kids[tuple->nkids - 1])
					break;
			}
			if (p->err->code || expect_op(p, "]") || !tuple->nkids) {
				if (!p->err->code)
					fail(p, "%s", "empty subscript");
				jj_node_free(tuple);
				jj_node_free(obj);
				return NULL;
			}
			for (size_t i = 0; tuple->nkids > 1 &&
			     i < tuple->nkids; i++) {
				if (tuple->kids[i]->kind != JN_SLICE)
					continue;
				fail(p, "%s", "a slice inside a tuple "
				     "subscript is not supported");
				jj_node_free(tuple);
				jj_node_free(obj);
				return NULL;
			}
			if (tuple->nkids > 1) {
				key = tuple;
			} else {
				key = tuple->kids[0];
				tuple->nkids = 0;
				jj_node_free(tuple);
			}
			if (key->kind == JN_SLICE) {
				key->kids[0] = obj;
				key->line = line;
				obj = key;
			} else {
				obj = binary_node(p, JN_ITEM, 0, obj, key);
			}
		} else if (is_op(p, "(")) {
			n = unary_node(p, JN_CALL, line, obj);
			if (!n || parse_call_args(p, n)) {
				jj_node_free(n);
				return NULL;
			}
			obj = n;
		} else {
			break;
		}
	}
	return obj;
}

static int parse_dotted_name(struct parser *p, struct jnode *n)
{
	struct jbuf b = { 0 };

	if (cur(p)->type != JT_NAME) {
		fail_tok(p, "a name");
		return -1;
	}
	jbuf_adds(&b, cur(p)->s);
	next(p);
	while (is_op(p, ".") && look(p)->type == JT_NAME) {
		next(p);
		jbuf_addc(&b, '.');
		jbuf_adds(&b, cur(p)->s);
		next(p);
	}
	if (b.oom) {
		jbuf_free(&b);
		return hf_err_set(p->err, HF_ENOMEM, "out of memory");
	}
	n->name = b.s;
	return 0;
}

static struct jnode *parse_filter(struct parser *p, struct jnode *subject,
				  int start_inline)
{
	while (is_op(p, "|") || start_inline) {
		struct jnode *n = node(p, JN_FILTER);

		if (!start_inline)
			next(p);
		start_inline = 0;
		if (!n || add(p, n, subject)) {
			if (!n)
				jj_node_free(subject);
			jj_node_free(n);
			return NULL;
		}
		subject = n;
		if (parse_dotted_name(p, n) ||
		    (is_op(p, "(") && parse_call_args(p, n))) {
			jj_node_free(n);
			return NULL;
		}
	}
	return subject;
}

static struct jnode *parse_test(struct parser *p, struct jnode *subject)
{
	struct jnode *n = unary_node(p, JN_TEST, cur(p)->line, subject);
	const struct jtok *t;

	next(p);	/* 'is' */
	if (!n)
		return NULL;
	n->op = skip_name(p, "not");
	if (parse_dotted_name(p, n))
		goto fail;
	t = cur(p);
	if (is_op(p, "(")) {
		if (parse_call_args(p, n))
			goto fail;
	} else if ((t->type == JT_NAME || t->type == JT_STRING ||
		    t->type == JT_INT || t->type == JT_FLOAT ||
		    is_op(p, "[") || is_op(p, "{")) &&
		   !is_name(p, "else") && !is_name(p, "or") &&
		   !is_name(p, "and")) {
		struct jnode *arg;

		if (is_name(p, "is")) {
			fail(p, "%s", "you cannot chain multiple tests with is");
			goto fail;
		}
		arg = parse_postfix(p, parse_primary(p));
		if (add(p, n, arg) || !arg)
			goto fail;
	}
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_filter_expr(struct parser *p, struct jnode *n)
{
	while (n) {
		if (is_op(p, "|"))
			n = parse_filter(p, n, 0);
		else if (is_name(p, "is"))
			n = parse_test(p, n);
		else if (is_op(p, "("))
			n = parse_postfix(p, n);
		else
			break;
	}
	return n;
}

static struct jnode *parse_unary(struct parser *p, int with_filter)
{
	int line = cur(p)->line;
	struct jnode *n;

	if (enter(p))
		return NULL;
	if (skip_op(p, "-"))
		n = unary_node(p, JN_NEG, line, parse_unary(p, 0));
	else if (skip_op(p, "+"))
		n = unary_node(p, JN_POS, line, parse_unary(p, 0));
	else
		n = parse_primary(p);
	n = parse_postfix(p, n);
	if (with_filter)
		n = parse_filter_expr(p, n);
	p->depth--;
	return n;
}

static struct jnode *parse_pow(struct parser *p)
{
	struct jnode *n = parse_unary(p, 1);

	while (n && skip_op(p, "**"))
		n = binary_node(p, JN_BINOP, JO_POW, n, parse_unary(p, 1));
	return n;
}

static struct jnode *parse_math2(struct parser *p)
{
	struct jnode *n = parse_pow(p);

	while (n) {
		int op;

		if (is_op(p, "*"))
			op = JO_MUL;
		else if (is_op(p, "/"))
			op = JO_DIV;
		else if (is_op(p, "//"))
			op = JO_FDIV;
		else if (is_op(p, "%"))
			op = JO_MOD;
		else
			break;
		next(p);
		n = binary_node(p, JN_BINOP, op, n, parse_pow(p));
	}
	return n;
}

static struct jnode *parse_concat(struct parser *p)
{
	struct jnode *n = parse_math2(p), *c;

	if (!n || !is_op(p, "~"))
		return n;
	c = unary_node(p, JN_CONCAT, n->line, n);
	while (c && skip_op(p, "~")) {
		struct jnode *x = parse_math2(p);

		if (add(p, c, x) || !x) {
			jj_node_free(c);
			return NULL;
		}
	}
	return c;
}

static struct jnode *parse_math1(struct parser *p)
{
	struct jnode *n = parse_concat(p);

	while (n && (is_op(p, "+") || is_op(p, "-"))) {
		int op = is_op(p, "+") ? JO_ADD : JO_SUB;

		next(p);
		n = binary_node(p, JN_BINOP, op, n, parse_concat(p));
	}
	return n;
}

static struct jnode *parse_compare(struct parser *p)
{
	static const struct { const char *s; int op; } cmp[] = {
		{ "==", JO_EQ }, { "!=", JO_NE }, { "<", JO_LT },
		{ "<=", JO_LE }, { ">", JO_GT }, { ">=", JO_GE },
	};
	struct jnode *n = parse_math1(p), *c = NULL;

	while (n) {
		int op = -1;

		for (size_t i = 0; i < sizeof(cmp) / sizeof(cmp[0]); i++)
			if (is_op(p, cmp[i].s))
				op = cmp[i].op;
		if (op >= 0) {
			next(p);
		} else if (is_name(p, "in")) {
			next(p);
			op = JO_IN;
		} else if (is_name(p, "not") &&
			   tok_is(look(p), JT_NAME, "in")) {
			next(p);
			next(p);
			op = JO_NOTIN;
		} else {
			break;
		}
		if (!c) {
			c = unary_node(p, JN_CMP, n->line, n);
			if (!c)
				return NULL;
		}
		int *ops = realloc(c->ops, c->nkids * sizeof(*ops));

		if (!ops) {
			jj_node_free(c);
			hf_err_set(p->err, HF_ENOMEM, "out of memory");
			return NULL;
		}
		c->ops = ops;
		ops[c->nkids - 1] = op;
		struct jnode *x = parse_math1(p);

		if (add(p, c, x) || !x) {
			jj_node_free(c);
			return NULL;
		}
	}
	return c ? c : n;
}

static struct jnode *parse_not(struct parser *p)
{
	int line = cur(p)->line;

	if (is_name(p, "not")) {
		struct jnode *n;

		next(p);
		if (enter(p))
			return NULL;
		n = unary_node(p, JN_NOT, line, parse_not(p));
		p->depth--;
		return n;
	}
	return parse_compare(p);
}

static struct jnode *parse_and(struct parser *p)
{
	struct jnode *n = parse_not(p);

	while (n && skip_name(p, "and"))
		n = binary_node(p, JN_AND, 0, n, parse_not(p));
	return n;
}

static struct jnode *parse_or(struct parser *p)
{
	struct jnode *n = parse_and(p);

	while (n && skip_name(p, "or"))
		n = binary_node(p, JN_OR, 0, n, parse_and(p));
	return n;
}

static struct jnode *parse_condexpr(struct parser *p)
{
	struct jnode *n = parse_or(p);

	while (n && is_name(p, "if")) {
		struct jnode *c = node(p, JN_COND), *x;

		next(p);
		if (!c) {
			jj_node_free(n);
			return NULL;
		}
		x = parse_or(p);
		if (add(p, c, x) || !x || add(p, c, n)) {
			if (!x || p->err->code != HF_ENOMEM)
				jj_node_free(n);
			jj_node_free(c);
			return NULL;
		}
		n = c;
		if (skip_name(p, "else")) {
			if (enter(p) || add(p, c, x = parse_condexpr(p)) || !x) {
				jj_node_free(c);
				return NULL;
			}
			p->depth--;
		} else if (add(p, c, NULL)) {
			jj_node_free(c);
			return NULL;
		}
	}
	return n;
}

static struct jnode *parse_expression(struct parser *p, int with_condexpr)
{
	struct jnode *n;

	if (enter(p))
		return NULL;
	n = with_condexpr ? parse_condexpr(p) : parse_or(p);
	p->depth--;
	return n;
}

static int tuple_end(struct parser *p, const char *end_name)
{
	int t = cur(p)->type;

	return t == JT_VAR_END || t == JT_BLOCK_END || t == JT_EOF ||
	       is_op(p, ")") || (end_name && is_name(p, end_name));
}

static struct jnode *parse_tuple(struct parser *p, int simplified,
				 int with_condexpr, const char *end_name,
				 int explicit_parens)
{
	struct jnode *t = node(p, JN_TUPLE), *x;
	int is_tuple = 0;

	if (!t)
		return NULL;
	for (;;) {
		if (t->nkids && expect_op(p, ","))
			goto fail;
		if (tuple_end(p, end_name))
			break;
		x = simplified ? parse_primary(p) :
		    parse_expression(p, with_condexpr);
		if (add(p, t, x) || !x)
			goto fail;
		if (is_op(p, ","))
			is_tuple = 1;
		else
			break;
	}
	if (!is_tuple) {
		if (t->nkids) {
			x = t->kids[0];
			t->nkids = 0;
			jj_node_free(t);
			return x;
		}
		if (!explicit_parens) {
			jj_node_free(t);
			return fail_tok(p, "an expression");
		}
	}
	return t;
fail:
	jj_node_free(t);
	return NULL;
}

/* ---- statements ---- */

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

	if (with_namespace && cur(p)->type == JT_NAME &&
	    tok_is(look(p), JT_OP, ".")) {
		n = node(p, JN_NSREF);
		if (!n || set_name(p, n, cur(p)->s)) {
			jj_node_free(n);
			return NULL;
		}
		next(p);
		next(p);
		if (cur(p)->type != JT_NAME) {
			jj_node_free(n);
			return fail_tok(p, "an attribute name");
		}
		n->val = jv_strz(cur(p)->s);
		if (!n->val) {
			jj_node_free(n);
			hf_err_set(p->err, HF_ENOMEM, "out of memory");
			return NULL;
		}
		next(p);
		return n;
	}
	if (name_only) {
		if (cur(p)->type != JT_NAME)
			return fail_tok(p, "a name");
		n = node(p, JN_NAME);
		if (!n || set_name(p, n, cur(p)->s)) {
			jj_node_free(n);
			return NULL;
		}
		next(p);
		return n;
	}
	n = parse_tuple(p, 1, 1, end_name, 0);
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
	skip_op(p, ":");
	if (expect_type(p, JT_BLOCK_END, "'%}'"))
		return NULL;
	return parse_body(p, ends, which);
}

static int parse_signature(struct parser *p, struct jnode *n)
{
	if (expect_op(p, "("))
		return -1;
	while (!is_op(p, ")")) {
		struct jnode *arg;

		if (n->nkids > 2 - (n->kind == JN_MACRO) &&
		    expect_op(p, ","))
			return -1;
		arg = parse_assign_target(p, 1, NULL, 0);
		if (add(p, n, arg) || !arg)
			return -1;
		if (skip_op(p, "=")) {
			struct jnode *d = parse_expression(p, 1);

			if (add(p, arg, d) || !d)
				return -1;
		}
	}
	next(p);
	return 0;
}

static struct jnode *parse_for(struct parser *p)
{
	static const char *const ends1[] = { "endfor", "else", NULL };
	static const char *const ends2[] = { "endfor", NULL };
	struct jnode *n = node(p, JN_FOR), *x;
	const char *which = NULL;

	if (!n)
		return NULL;
	x = parse_assign_target(p, 0, "in", 0);
	if (add(p, n, x) || !x)
		goto fail;
	if (!skip_name(p, "in")) {
		fail_tok(p, "'in'");
		goto fail;
	}
	x = parse_tuple(p, 0, 0, "recursive", 0);
	if (add(p, n, x) || !x)
		goto fail;
	if (skip_name(p, "if")) {
		x = parse_expression(p, 1);
		if (add(p, n, x) || !x)
			goto fail;
	} else if (add(p, n, NULL)) {
		goto fail;
	}
	n->op = skip_name(p, "recursive");
	p->loops++;
	x = parse_statements(p, ends1, &which);
	p->loops--;
	if (add(p, n, x) || !x)
		goto fail;
	if (!strcmp(which, "else")) {
		x = parse_statements(p, ends2, &which);
		if (add(p, n, x) || !x)
			goto fail;
	} else if (add(p, n, NULL)) {
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
	struct jnode *n = node(p, JN_IF), *x;
	const char *which = NULL;

	if (!n)
		return NULL;
	x = parse_tuple(p, 0, 0, NULL, 0);
	if (add(p, n, x) || !x)
		goto fail;
	x = parse_statements(p, ends1, &which);
	if (add(p, n, x) || !x)
		goto fail;
	if (!strcmp(which, "elif")) {
		struct jnode *b;

		if (enter(p))
			goto fail;
		b = node(p, JN_BODY);
		if (add(p, n, b) || !b)
			goto fail;
		x = parse_if(p);
		p->depth--;
		if (add(p, b, x) || !x)
			goto fail;
	} else if (!strcmp(which, "else")) {
		x = parse_statements(p, ends2, &which);
		if (add(p, n, x) || !x)
			goto fail;
	} else if (add(p, n, NULL)) {
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
	if (skip_op(p, "=")) {
		n = node(p, JN_SET);
		if (!n || add(p, n, target)) {
			if (!n)
				jj_node_free(target);
			jj_node_free(n);
			return NULL;
		}
		x = parse_tuple(p, 0, 1, NULL, 0);
		if (add(p, n, x) || !x) {
			jj_node_free(n);
			return NULL;
		}
		return n;
	}
	n = node(p, JN_SET_BLOCK);
	if (!n || add(p, n, target)) {
		if (!n)
			jj_node_free(target);
		jj_node_free(n);
		return NULL;
	}
	x = NULL;
	if (is_op(p, "|")) {
		x = parse_filter(p, NULL, 0);
		if (!x)
			goto fail;
	}
	{
		struct jnode *body = parse_statements(p, ends, &which);

		if (add(p, n, body) || !body) {
			jj_node_free(x);
			goto fail;
		}
	}
	if (add(p, n, x))
		goto fail;
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_macro(struct parser *p)
{
	static const char *const ends[] = { "endmacro", NULL };
	struct jnode *n = node(p, JN_MACRO), *body;
	const char *which;
	int loops = p->loops;

	if (!n)
		return NULL;
	if (cur(p)->type != JT_NAME) {
		jj_node_free(n);
		return fail_tok(p, "a macro name");
	}
	if (set_name(p, n, cur(p)->s) || add(p, n, NULL))
		goto fail;
	next(p);
	if (parse_signature(p, n))
		goto fail;
	p->loops = 0;
	body = parse_statements(p, ends, &which);
	p->loops = loops;
	if (!body)
		goto fail;
	n->kids[0] = body;
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_call_block(struct parser *p)
{
	static const char *const ends[] = { "endcall", NULL };
	struct jnode *n = node(p, JN_CALL_BLOCK), *x;
	const char *which;
	int loops = p->loops;

	if (!n)
		return NULL;
	if (add(p, n, NULL) || add(p, n, NULL))
		goto fail;
	if (is_op(p, "(") && parse_signature(p, n))
		goto fail;
	x = parse_expression(p, 1);
	if (!x)
		goto fail;
	n->kids[0] = x;
	if (x->kind != JN_CALL) {
		fail(p, "%s", "expected a call");
		goto fail;
	}
	p->loops = 0;
	x = parse_statements(p, ends, &which);
	p->loops = loops;
	if (!x)
		goto fail;
	n->kids[1] = x;
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_filter_block(struct parser *p)
{
	static const char *const ends[] = { "endfilter", NULL };
	struct jnode *n = node(p, JN_FILTER_BLOCK), *x;
	const char *which;

	if (!n)
		return NULL;
	x = parse_filter(p, NULL, 1);
	if (add(p, n, x) || !x)
		goto fail;
	x = parse_statements(p, ends, &which);
	if (add(p, n, x) || !x)
		goto fail;
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

static struct jnode *parse_with(struct parser *p)
{
	static const char *const ends[] = { "endwith", NULL };
	struct jnode *n = node(p, JN_WITH), *x;
	const char *which;

	if (!n || add(p, n, NULL)) {
		jj_node_free(n);
		return NULL;
	}
	while (cur(p)->type != JT_BLOCK_END) {
		if (n->nkids > 1 && expect_op(p, ","))
			goto fail;
		x = parse_assign_target(p, 0, NULL, 0);
		if (add(p, n, x) || !x || expect_op(p, "="))
			goto fail;
		x = parse_expression(p, 1);
		if (add(p, n, x) || !x)
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
	const struct jtok *t = cur(p);
	struct jnode *n = NULL;

	if (t->type != JT_NAME)
		return fail_tok(p, "a tag name");
	if (enter(p))
		return NULL;
	next(p);
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
			return fail(p, "'%s' outside of a loop", t->s);
		}
		n = node(p, t->s[0] == 'b' ? JN_BREAK : JN_CONTINUE);
		if (n)
			n->line = t->line;
	} else {
		p->pos--;
		n = fail(p, "unknown tag '%s'", t->s);
	}
	p->depth--;
	if (n && expect_type(p, JT_BLOCK_END, "'%}'")) {
		jj_node_free(n);
		return NULL;
	}
	return n;
}

static struct jnode *parse_body(struct parser *p, const char *const *ends,
				const char **which)
{
	struct jnode *body = node(p, JN_BODY), *n;

	if (!body)
		return NULL;
	for (;;) {
		const struct jtok *t = cur(p);

		switch (t->type) {
		case JT_EOF:
			if (ends && ends[0]) {
				char msg[64];

				snprintf(msg, sizeof(msg), "unexpected end of "
					 "template, expected '%s'",
					 ends[0]);
				fail(p, "%s", msg);
				goto fail;
			}
			return body;
		case JT_DATA:
			n = const_node(p, jv_str(t->s, t->len));
			if (n)
				n->kind = JN_TEXT;
			next(p);
			break;
		case JT_VAR_BEGIN:
			next(p);
			n = unary_node(p, JN_OUTPUT, t->line,
				       parse_tuple(p, 0, 1, NULL, 0));
			if (n && expect_type(p, JT_VAR_END, "'}}'")) {
				jj_node_free(n);
				n = NULL;
			}
			break;
		case JT_BLOCK_BEGIN:
			next(p);
			if (ends && cur(p)->type == JT_NAME) {
				for (int i = 0; ends[i]; i++) {
					if (strcmp(cur(p)->s, ends[i]))
						continue;
					*which = ends[i];
					next(p);
					return body;
				}
			}
			n = parse_statement(p);
			break;
		default:
			fail_tok(p, "template data or a tag");
			goto fail;
		}
		if (add(p, body, n) || !n)
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
