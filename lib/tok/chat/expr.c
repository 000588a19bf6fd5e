/* lib/tok/chat/expr.c: the parser's token and node helpers and the
 * expression grammar, with the operator precedence of jinja2/parser.py
 * (condexpr < or < and < not < compare < +,- < ~ < *,/,//,% < ** <
 * unary, then postfix, filters and tests). Node layouts: parse.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/chat/parse.h"

const struct jtok *jp_cur(struct parser *p)
{
	return &p->t->t[p->pos];
}

const struct jtok *jp_look(struct parser *p)
{
	return p->pos + 1 < p->t->n ? &p->t->t[p->pos + 1] : jp_cur(p);
}

void jp_next(struct parser *p)
{
	if (jp_cur(p)->type != JT_EOF)
		p->pos++;
}

int jp_tok_is(const struct jtok *t, int type, const char *s)
{
	return t->type == type && (!s || !strcmp(t->s, s));
}

int jp_is_op(struct parser *p, const char *op)
{
	return jp_tok_is(jp_cur(p), JT_OP, op);
}

int jp_is_name(struct parser *p, const char *name)
{
	return jp_tok_is(jp_cur(p), JT_NAME, name);
}

int jp_skip_op(struct parser *p, const char *op)
{
	if (!jp_is_op(p, op))
		return 0;
	jp_next(p);
	return 1;
}

int jp_skip_name(struct parser *p, const char *name)
{
	if (!jp_is_name(p, name))
		return 0;
	jp_next(p);
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

void *jp_fail(struct parser *p, const char *fmt, const char *arg)
{
	char msg[256];

	if (p->err->code)
		return NULL;
	snprintf(msg, sizeof(msg), fmt, arg);
	hf_err_set(p->err, HF_EFORMAT, "line %d: %s", jp_cur(p)->line, msg);
	return NULL;
}

void *jp_fail_tok(struct parser *p, const char *what)
{
	const struct jtok *t = jp_cur(p);
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

int jp_expect_op(struct parser *p, const char *op)
{
	char what[16];

	if (jp_skip_op(p, op))
		return 0;
	snprintf(what, sizeof(what), "'%s'", op);
	jp_fail_tok(p, what);
	return -1;
}

int jp_expect_type(struct parser *p, int type, const char *what)
{
	if (jp_cur(p)->type == type) {
		jp_next(p);
		return 0;
	}
	jp_fail_tok(p, what);
	return -1;
}

/* ---- nodes ---- */

struct jnode *jp_node(struct parser *p, int kind)
{
	struct jnode *n = calloc(1, sizeof(*n));

	if (!n) {
		hf_err_set(p->err, HF_ENOMEM, "out of memory");
		return NULL;
	}
	n->kind = kind;
	n->line = jp_cur(p)->line;
	return n;
}

/* Append kid (NULL allowed: an absent optional part); kw (copied) names
 * a keyword argument. On failure frees kid and returns -1. */
int jp_add_kw(struct parser *p, struct jnode *n, struct jnode *kid,
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

int jp_add(struct parser *p, struct jnode *n, struct jnode *kid)
{
	return jp_add_kw(p, n, kid, NULL);
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
	for (size_t i = 0; i < n->nundef; i++)
		free(n->undef[i]);
	free(n->undef);
	free(n->kids);
	free(n->kw);
	free(n->ops);
	free(n->name);
	jv_unref(n->val);
	free(n);
}

struct jnode *jp_const_node(struct parser *p, struct jv *v)
{
	struct jnode *n;

	if (!v) {
		hf_err_set(p->err, HF_ENOMEM, "out of memory");
		return NULL;
	}
	n = jp_node(p, JN_CONST);
	if (!n) {
		jv_unref(v);
		return NULL;
	}
	n->val = v;
	return n;
}

struct jnode *jp_unary_node(struct parser *p, int kind, int line,
				struct jnode *a)
{
	struct jnode *n;

	if (!a)
		return NULL;
	n = jp_node(p, kind);
	if (!n) {
		jj_node_free(a);
		return NULL;
	}
	n->line = line;
	if (jp_add(p, n, a)) {
		jj_node_free(n);
		return NULL;
	}
	return n;
}

struct jnode *jp_binary_node(struct parser *p, int kind, int op,
				 struct jnode *a, struct jnode *b)
{
	struct jnode *n;

	if (!a || !b) {
		jj_node_free(a);
		jj_node_free(b);
		return NULL;
	}
	n = jp_node(p, kind);
	if (!n) {
		jj_node_free(a);
		jj_node_free(b);
		return NULL;
	}
	n->op = op;
	n->line = a->line;
	if (jp_add(p, n, a)) {
		jj_node_free(b);
		jj_node_free(n);
		return NULL;
	}
	if (jp_add(p, n, b)) {
		jj_node_free(n);
		return NULL;
	}
	return n;
}

int jp_set_name(struct parser *p, struct jnode *n, const char *s)
{
	n->name = strdup(s);
	if (!n->name)
		return hf_err_set(p->err, HF_ENOMEM, "out of memory");
	return 0;
}

/* ---- expressions ---- */

struct jnode *jp_expression(struct parser *p, int with_condexpr);
static struct jnode *parse_unary(struct parser *p, int with_filter);
struct jnode *jp_tuple(struct parser *p, int simplified,
				 int with_condexpr, const char *end_name,
				 int explicit_parens);
struct jnode *jp_filter(struct parser *p, struct jnode *subject,
				  int start_inline);

int jp_enter(struct parser *p)
{
	if (++p->depth > JJ_MAX_NEST) {
		jp_fail(p, "%s", "expression or block nested too deeply");
		return -1;
	}
	return 0;
}

/* "(" args ")" into n (after its existing kids). */
int jp_call_args(struct parser *p, struct jnode *n)
{
	int any = 0, kw_seen = 0;

	if (jp_expect_op(p, "("))
		return -1;
	while (!jp_is_op(p, ")")) {
		if (any) {
			if (jp_expect_op(p, ","))
				return -1;
			if (jp_is_op(p, ")"))
				break;
		}
		if (jp_is_op(p, "*") || jp_is_op(p, "**")) {
			jp_fail(p, "%s", "*args and **kwargs are not supported");
			return -1;
		}
		if (jp_cur(p)->type == JT_NAME && jp_tok_is(jp_look(p), JT_OP, "=")) {
			char *k = jp_cur(p)->s;

			jp_next(p);
			jp_next(p);
			if (jp_add_kw(p, n, jp_expression(p, 1), k) ||
			    !n->kids[n->nkids - 1])
				return -1;
			kw_seen = 1;
		} else {
			if (kw_seen) {
				jp_fail(p, "%s", "positional argument after "
				     "keyword argument");
				return -1;
			}
			if (jp_add(p, n, jp_expression(p, 1)) ||
			    !n->kids[n->nkids - 1])
				return -1;
		}
		any = 1;
	}
	jp_next(p);
	return 0;
}

struct jnode *jp_primary(struct parser *p)
{
	const struct jtok *t = jp_cur(p);
	struct jnode *n;

	switch (t->type) {
	case JT_NAME:
		if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
			jp_next(p);
			return jp_const_node(p, JV_TRUE_P);
		}
		if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
			jp_next(p);
			return jp_const_node(p, JV_FALSE_P);
		}
		if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
			jp_next(p);
			return jp_const_node(p, JV_NONE_P);
		}
		n = jp_node(p, JN_NAME);
		if (!n || jp_set_name(p, n, t->s)) {
			jj_node_free(n);
			return NULL;
		}
		jp_next(p);
		return n;
	case JT_STRING: {
		struct jbuf b = { 0 };

		while (jp_cur(p)->type == JT_STRING) {
			jbuf_add(&b, jp_cur(p)->s, jp_cur(p)->len);
			jp_next(p);
		}
		return jp_const_node(p, jbuf_take(&b));
	}
	case JT_INT:
		jp_next(p);
		return jp_const_node(p, jv_int(t->i));
	case JT_FLOAT:
		jp_next(p);
		return jp_const_node(p, jv_float(t->f));
	case JT_OP:
		if (!strcmp(t->s, "(")) {
			jp_next(p);
			n = jp_tuple(p, 0, 1, NULL, 1);
			if (n && jp_expect_op(p, ")")) {
				jj_node_free(n);
				return NULL;
			}
			return n;
		}
		if (!strcmp(t->s, "[") || !strcmp(t->s, "{")) {
			int dict = t->s[0] == '{';
			const char *close = dict ? "}" : "]";

			n = jp_node(p, dict ? JN_DICT : JN_LIST);
			if (!n)
				return NULL;
			jp_next(p);
			while (!jp_is_op(p, close)) {
				if (n->nkids && (jp_expect_op(p, ",") ||
						 jp_is_op(p, close)))
					break;
				if (jp_add(p, n, jp_expression(p, 1)) ||
				    !n->kids[n->nkids - 1])
					goto fail_coll;
				if (dict && (jp_expect_op(p, ":") ||
				    jp_add(p, n, jp_expression(p, 1)) ||
				    !n->kids[n->nkids - 1]))
					goto fail_coll;
			}
			if (p->err->code || jp_expect_op(p, close))
				goto fail_coll;
			return n;
fail_coll:
			jj_node_free(n);
			return NULL;
		}
		break;
	}
	return jp_fail_tok(p, "an expression");
}

static struct jnode *parse_subscribed(struct parser *p)
{
	struct jnode *n, *e = NULL;

	if (!jp_is_op(p, ":")) {
		e = jp_expression(p, 1);
		if (!e || !jp_is_op(p, ":"))
			return e;
	}
	n = jp_node(p, JN_SLICE);
	if (!n || jp_add(p, n, NULL) || jp_add(p, n, e)) {
		jj_node_free(n);
		return NULL;
	}
	jp_next(p);	/* the first ':' */
	if (!jp_is_op(p, "]") && !jp_is_op(p, ",") && !jp_is_op(p, ":")) {
		if (jp_add(p, n, jp_expression(p, 1)) || !n->kids[2])
			goto fail;
	} else if (jp_add(p, n, NULL)) {
		goto fail;
	}
	if (jp_skip_op(p, ":") && !jp_is_op(p, "]") && !jp_is_op(p, ",")) {
		if (jp_add(p, n, jp_expression(p, 1)) || !n->kids[3])
			goto fail;
	} else if (jp_add(p, n, NULL)) {
		goto fail;
	}
	return n;
fail:
	jj_node_free(n);
	return NULL;
}

struct jnode *jp_postfix(struct parser *p, struct jnode *obj)
{
	while (obj) {
		struct jnode *n;
		int line = jp_cur(p)->line;

		if (jp_skip_op(p, ".")) {
			const struct jtok *t = jp_cur(p);

			if (t->type == JT_NAME) {
				n = jp_unary_node(p, JN_ATTR, line, obj);
				if (n && jp_set_name(p, n, t->s)) {
					jj_node_free(n);
					return NULL;
				}
				jp_next(p);
			} else if (t->type == JT_INT) {
				n = jp_binary_node(p, JN_ITEM, 0, obj,
						jp_const_node(p, jv_int(t->i)));
				jp_next(p);
			} else {
				jj_node_free(obj);
				return jp_fail_tok(p, "an attribute name");
			}
			obj = n;
		} else if (jp_skip_op(p, "[")) {
			struct jnode *tuple = jp_node(p, JN_TUPLE), *key;

			if (!tuple) {
				jj_node_free(obj);
				return NULL;
			}
			while (!jp_is_op(p, "]")) {
				if (tuple->nkids && jp_expect_op(p, ","))
					break;
				if (jp_add(p, tuple, parse_subscribed(p)) ||
				    !tuple->kids[tuple->nkids - 1])
					break;
			}
			if (p->err->code || jp_expect_op(p, "]") || !tuple->nkids) {
				if (!p->err->code)
					jp_fail(p, "%s", "empty subscript");
				jj_node_free(tuple);
				jj_node_free(obj);
				return NULL;
			}
			for (size_t i = 0; tuple->nkids > 1 &&
			     i < tuple->nkids; i++) {
				if (tuple->kids[i]->kind != JN_SLICE)
					continue;
				jp_fail(p, "%s", "a slice inside a tuple "
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
				obj = jp_binary_node(p, JN_ITEM, 0, obj, key);
			}
		} else if (jp_is_op(p, "(")) {
			n = jp_unary_node(p, JN_CALL, line, obj);
			if (!n || jp_call_args(p, n)) {
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

	if (jp_cur(p)->type != JT_NAME) {
		jp_fail_tok(p, "a name");
		return -1;
	}
	jbuf_adds(&b, jp_cur(p)->s);
	jp_next(p);
	while (jp_is_op(p, ".") && jp_look(p)->type == JT_NAME) {
		jp_next(p);
		jbuf_addc(&b, '.');
		jbuf_adds(&b, jp_cur(p)->s);
		jp_next(p);
	}
	if (b.oom) {
		jbuf_free(&b);
		return hf_err_set(p->err, HF_ENOMEM, "out of memory");
	}
	n->name = b.s;
	return 0;
}

struct jnode *jp_filter(struct parser *p, struct jnode *subject,
				  int start_inline)
{
	while (jp_is_op(p, "|") || start_inline) {
		struct jnode *n = jp_node(p, JN_FILTER);

		if (!start_inline)
			jp_next(p);
		start_inline = 0;
		if (!n || jp_add(p, n, subject)) {
			if (!n)
				jj_node_free(subject);
			jj_node_free(n);
			return NULL;
		}
		subject = n;
		if (parse_dotted_name(p, n) ||
		    (jp_is_op(p, "(") && jp_call_args(p, n))) {
			jj_node_free(n);
			return NULL;
		}
	}
	return subject;
}

static struct jnode *parse_test(struct parser *p, struct jnode *subject)
{
	struct jnode *n = jp_unary_node(p, JN_TEST, jp_cur(p)->line, subject);
	const struct jtok *t;

	jp_next(p);	/* 'is' */
	if (!n)
		return NULL;
	n->op = jp_skip_name(p, "not");
	if (parse_dotted_name(p, n))
		goto fail;
	t = jp_cur(p);
	if (jp_is_op(p, "(")) {
		if (jp_call_args(p, n))
			goto fail;
	} else if ((t->type == JT_NAME || t->type == JT_STRING ||
		    t->type == JT_INT || t->type == JT_FLOAT ||
		    jp_is_op(p, "[") || jp_is_op(p, "{")) &&
		   !jp_is_name(p, "else") && !jp_is_name(p, "or") &&
		   !jp_is_name(p, "and")) {
		struct jnode *arg;

		if (jp_is_name(p, "is")) {
			jp_fail(p, "%s", "you cannot chain multiple tests with is");
			goto fail;
		}
		arg = jp_postfix(p, jp_primary(p));
		if (jp_add(p, n, arg) || !arg)
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
		if (jp_is_op(p, "|"))
			n = jp_filter(p, n, 0);
		else if (jp_is_name(p, "is"))
			n = parse_test(p, n);
		else if (jp_is_op(p, "("))
			n = jp_postfix(p, n);
		else
			break;
	}
	return n;
}

static struct jnode *parse_unary(struct parser *p, int with_filter)
{
	int line = jp_cur(p)->line;
	struct jnode *n;

	if (jp_enter(p))
		return NULL;
	if (jp_skip_op(p, "-"))
		n = jp_unary_node(p, JN_NEG, line, parse_unary(p, 0));
	else if (jp_skip_op(p, "+"))
		n = jp_unary_node(p, JN_POS, line, parse_unary(p, 0));
	else
		n = jp_primary(p);
	n = jp_postfix(p, n);
	if (with_filter)
		n = parse_filter_expr(p, n);
	p->depth--;
	return n;
}

static struct jnode *parse_pow(struct parser *p)
{
	struct jnode *n = parse_unary(p, 1);

	while (n && jp_skip_op(p, "**"))
		n = jp_binary_node(p, JN_BINOP, JO_POW, n, parse_unary(p, 1));
	return n;
}

static struct jnode *parse_math2(struct parser *p)
{
	struct jnode *n = parse_pow(p);

	while (n) {
		int op;

		if (jp_is_op(p, "*"))
			op = JO_MUL;
		else if (jp_is_op(p, "/"))
			op = JO_DIV;
		else if (jp_is_op(p, "//"))
			op = JO_FDIV;
		else if (jp_is_op(p, "%"))
			op = JO_MOD;
		else
			break;
		jp_next(p);
		n = jp_binary_node(p, JN_BINOP, op, n, parse_pow(p));
	}
	return n;
}

static struct jnode *parse_concat(struct parser *p)
{
	struct jnode *n = parse_math2(p), *c;

	if (!n || !jp_is_op(p, "~"))
		return n;
	c = jp_unary_node(p, JN_CONCAT, n->line, n);
	while (c && jp_skip_op(p, "~")) {
		struct jnode *x = parse_math2(p);

		if (jp_add(p, c, x) || !x) {
			jj_node_free(c);
			return NULL;
		}
	}
	return c;
}

static struct jnode *parse_math1(struct parser *p)
{
	struct jnode *n = parse_concat(p);

	while (n && (jp_is_op(p, "+") || jp_is_op(p, "-"))) {
		int op = jp_is_op(p, "+") ? JO_ADD : JO_SUB;

		jp_next(p);
		n = jp_binary_node(p, JN_BINOP, op, n, parse_concat(p));
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
			if (jp_is_op(p, cmp[i].s))
				op = cmp[i].op;
		if (op >= 0) {
			jp_next(p);
		} else if (jp_is_name(p, "in")) {
			jp_next(p);
			op = JO_IN;
		} else if (jp_is_name(p, "not") &&
			   jp_tok_is(jp_look(p), JT_NAME, "in")) {
			jp_next(p);
			jp_next(p);
			op = JO_NOTIN;
		} else {
			break;
		}
		if (!c) {
			c = jp_unary_node(p, JN_CMP, n->line, n);
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

		if (jp_add(p, c, x) || !x) {
			jj_node_free(c);
			return NULL;
		}
	}
	return c ? c : n;
}

static struct jnode *parse_not(struct parser *p)
{
	int line = jp_cur(p)->line;

	if (jp_is_name(p, "not")) {
		struct jnode *n;

		jp_next(p);
		if (jp_enter(p))
			return NULL;
		n = jp_unary_node(p, JN_NOT, line, parse_not(p));
		p->depth--;
		return n;
	}
	return parse_compare(p);
}

static struct jnode *parse_and(struct parser *p)
{
	struct jnode *n = parse_not(p);

	while (n && jp_skip_name(p, "and"))
		n = jp_binary_node(p, JN_AND, 0, n, parse_not(p));
	return n;
}

static struct jnode *parse_or(struct parser *p)
{
	struct jnode *n = parse_and(p);

	while (n && jp_skip_name(p, "or"))
		n = jp_binary_node(p, JN_OR, 0, n, parse_and(p));
	return n;
}

static struct jnode *parse_condexpr(struct parser *p)
{
	struct jnode *n = parse_or(p);

	while (n && jp_is_name(p, "if")) {
		struct jnode *c = jp_node(p, JN_COND), *x;

		jp_next(p);
		if (!c) {
			jj_node_free(n);
			return NULL;
		}
		x = parse_or(p);
		if (jp_add(p, c, x) || !x || jp_add(p, c, n)) {
			if (!x || p->err->code != HF_ENOMEM)
				jj_node_free(n);
			jj_node_free(c);
			return NULL;
		}
		n = c;
		if (jp_skip_name(p, "else")) {
			if (jp_enter(p) || jp_add(p, c, x = parse_condexpr(p)) || !x) {
				jj_node_free(c);
				return NULL;
			}
			p->depth--;
		} else if (jp_add(p, c, NULL)) {
			jj_node_free(c);
			return NULL;
		}
	}
	return n;
}

struct jnode *jp_expression(struct parser *p, int with_condexpr)
{
	struct jnode *n;

	if (jp_enter(p))
		return NULL;
	n = with_condexpr ? parse_condexpr(p) : parse_or(p);
	p->depth--;
	return n;
}

static int tuple_end(struct parser *p, const char *end_name)
{
	int t = jp_cur(p)->type;

	return t == JT_VAR_END || t == JT_BLOCK_END || t == JT_EOF ||
	       jp_is_op(p, ")") || (end_name && jp_is_name(p, end_name));
}

struct jnode *jp_tuple(struct parser *p, int simplified,
				 int with_condexpr, const char *end_name,
				 int explicit_parens)
{
	struct jnode *t = jp_node(p, JN_TUPLE), *x;
	int is_tuple = 0;

	if (!t)
		return NULL;
	for (;;) {
		if (t->nkids && jp_expect_op(p, ","))
			goto fail;
		if (tuple_end(p, end_name))
			break;
		x = simplified ? jp_primary(p) :
		    jp_expression(p, with_condexpr);
		if (jp_add(p, t, x) || !x)
			goto fail;
		if (jp_is_op(p, ","))
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
			return jp_fail_tok(p, "an expression");
		}
	}
	return t;
fail:
	jj_node_free(t);
	return NULL;
}
