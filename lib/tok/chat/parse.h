/* lib/tok/chat/parse.h: the parser's state and helpers shared by
 * expr.c (expressions) and parse.c (statements). Private to lib/tok/chat. */
#ifndef HF_TOK_CHAT_PARSE_H
#define HF_TOK_CHAT_PARSE_H

#include "tok/chat/jinja.h"

struct parser {
	const struct jtoks *t;
	size_t pos;
	struct hf_err *err;
	int depth;
	int loops;	/* enclosing for loops (break/continue allowed) */
};

/* Tokens. */
const struct jtok *jp_cur(struct parser *p);
const struct jtok *jp_look(struct parser *p);	/* the one after cur */
void jp_next(struct parser *p);
int jp_tok_is(const struct jtok *t, int type, const char *s);
int jp_is_op(struct parser *p, const char *op);
int jp_is_name(struct parser *p, const char *name);
int jp_skip_op(struct parser *p, const char *op);	/* 1 if skipped */
int jp_skip_name(struct parser *p, const char *name);
/* Set a syntax error "line N: ..." (once); return NULL. */
void *jp_fail(struct parser *p, const char *fmt, const char *arg);
void *jp_fail_tok(struct parser *p, const char *what);
int jp_expect_op(struct parser *p, const char *op);	/* 0 or -1 */
int jp_expect_type(struct parser *p, int type, const char *what);
int jp_enter(struct parser *p);	/* nesting depth check: 0 or -1 */

/* Nodes. add/add_kw free kid when they fail. */
struct jnode *jp_node(struct parser *p, int kind);
int jp_add_kw(struct parser *p, struct jnode *n, struct jnode *kid,
	      const char *kw);
int jp_add(struct parser *p, struct jnode *n, struct jnode *kid);
struct jnode *jp_const_node(struct parser *p, struct jv *v);
struct jnode *jp_unary_node(struct parser *p, int kind, int line,
			    struct jnode *a);
struct jnode *jp_binary_node(struct parser *p, int kind, int op,
			     struct jnode *a, struct jnode *b);
int jp_set_name(struct parser *p, struct jnode *n, const char *s);

/* Expressions (expr.c), as jinja2/parser.py's parse_* of the same name. */
struct jnode *jp_expression(struct parser *p, int with_condexpr);
struct jnode *jp_tuple(struct parser *p, int simplified, int with_condexpr,
		       const char *end_name, int explicit_parens);
struct jnode *jp_filter(struct parser *p, struct jnode *subject,
			int start_inline);
struct jnode *jp_primary(struct parser *p);
struct jnode *jp_postfix(struct parser *p, struct jnode *obj);
int jp_call_args(struct parser *p, struct jnode *n);

#endif
