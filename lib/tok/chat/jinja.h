/* lib/tok/chat/jinja.h: internals of the Jinja subset interpreter shared by
 * the lexer, parser, evaluator and builtins. Not a public header. */
#ifndef HF_TOK_CHAT_JINJA_H
#define HF_TOK_CHAT_JINJA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Limits that keep hostile templates bounded (fuzzing relies on them). */
#define JJ_MAX_NEST	200		/* parser nesting: blocks, parens */
#define JJ_MAX_DEPTH	1000		/* evaluation recursion depth */
#define JJ_MAX_OUTPUT	(64u << 20)	/* bytes of any one string */
#define JJ_MAX_STEPS	4000000u	/* evaluation work units */
#define JJ_MAX_ITEMS	(1u << 22)	/* elements of one list */

/* ---- values ---- */

enum jv_type {
	JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST,
	JV_DICT, JV_NS, JV_FUNC,
};

struct jctx;
struct jv;
struct jargs;
struct jframe;

/* Where a caller() renders: the frame of its {% call %} block, cleared
 * when the block ends so an escaped caller cannot reach a dead frame. */
struct jcell {
	int refs;
	struct jframe *frame;
};

/* A callable: global, bound method, macro, caller, loop.cycle. */
typedef struct jv *(*jfn)(struct jctx *cx, struct jv *fn,
			  struct jargs *a);

struct jv {
	int type;
	int refs;		/* < 0: static, never freed */
	union {
		int b;
		int64_t i;
		double f;
		struct {
			char *s;	/* NUL-terminated, may hold NULs */
			size_t len;
			int safe;	/* markupsafe.Markup (from safe or
					 * escape): + escapes the other
					 * operand */
		} str;
		struct {
			struct jv **v;
			size_t n, cap;
			int tuple;
			int view;	/* enum jv_view */
		} list;
		struct {		/* JV_DICT and JV_NS */
			struct jv **k, **v;
			size_t n, cap;
			int loop;	/* a for loop's "loop" object */
		} dict;
		struct {
			jfn fn;
			const char *name;	/* static or owned by data */
			struct jv *self;	/* bound value or NULL */
			const void *node;	/* macro / call block AST */
			struct jcell *cell;	/* caller's frame, may expire */
		} func;
		struct {
			char *hint;	/* error text if used, or NULL */
		} undef;
	} u;
};

/* A JV_LIST may stand for one of Python's lazy objects, which behave
 * differently: a generator (from select, map, batch, unique, items,
 * reverse) is always true, has no len(), no index and no JSON form; the
 * dict views (keys(), values(), items()) print as dict_keys([...]). */
enum jv_view { JV_PLAIN, JV_GEN, JV_KEYS, JV_VALUES, JV_ITEMS };

extern struct jv jv_none_v, jv_true_v, jv_false_v, jv_undef_v;
#define JV_NONE_P (&jv_none_v)
#define JV_TRUE_P (&jv_true_v)
#define JV_FALSE_P (&jv_false_v)

struct jv *jv_ref(struct jv *v);
void jv_unref(struct jv *v);
struct jv *jv_bool(int b);
struct jv *jv_int(int64_t i);
struct jv *jv_float(double f);
struct jv *jv_str(const char *s, size_t len);	/* copies */
struct jv *jv_strz(const char *s);
struct jv *jv_str_own(char *s, size_t len);	/* takes s (malloc'd) */
struct jv *jv_list(int tuple);
int jv_list_push(struct jv *l, struct jv *item);	/* takes item */
struct jv *jv_dict(int type);			/* JV_DICT or JV_NS */
int jv_dict_set(struct jv *d, struct jv *k, struct jv *v);	/* takes both */
int jv_dict_sets(struct jv *d, const char *k, struct jv *v);	/* takes v */
struct jv *jv_dict_get(const struct jv *d, const struct jv *k);	/* borrowed */
struct jv *jv_dict_gets(const struct jv *d, const char *k);	/* borrowed */
struct jv *jv_undef(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
struct jv *jv_func(jfn fn, const char *name, struct jv *self,
		   const void *node);

int jv_truthy(const struct jv *v);
int jv_equal(const struct jv *a, const struct jv *b);
int jv_is_num(const struct jv *v);	/* int, float or bool */
/* The part of v Python cannot hash (a list, dict or view), or NULL. */
const struct jv *jv_unhashable(const struct jv *v);
double jv_num(const struct jv *v);
const char *jv_type_name(const struct jv *v);	/* Python type name */
struct jv *jv_from_json(const json_t *j);

/* ---- growable byte buffer ---- */

struct jbuf {
	char *s;
	size_t n, cap;
	int oom;	/* 1: an allocation failed, 2: past JJ_MAX_OUTPUT;
			 * either way the contents are incomplete */
};

void jbuf_add(struct jbuf *b, const char *s, size_t n);
void jbuf_adds(struct jbuf *b, const char *s);
void jbuf_addc(struct jbuf *b, char c);
void jbuf_printf(struct jbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
struct jv *jbuf_take(struct jbuf *b);	/* into a string value */
void jbuf_free(struct jbuf *b);

/* Python str() and repr() of a value, appended to b. */
void jv_str_into(struct jbuf *b, const struct jv *v);
void jv_repr_into(struct jbuf *b, const struct jv *v);
void jv_float_repr(struct jbuf *b, double f);
/* markupsafe.escape of s into b: & < > " ' as entities. */
void jv_html_escape(struct jbuf *b, const char *s, size_t len);
/* v (taken) marked as Markup; NULL stays NULL. */
struct jv *jv_markup(struct jv *v);
/* json.dumps(v, ensure_ascii, indent, separators, sort_keys); indent is
 * the string per level or NULL for one line; -1 and *bad = the offending
 * value's type name on a value JSON cannot hold. */
int jv_tojson(struct jbuf *b, const struct jv *v, const char *indent,
	      const char *item_sep, const char *key_sep, int sort_keys,
	      int ensure_ascii, const char **bad);

/* UTF-8 text by code point. */
size_t ju_count(const char *s, size_t len);
size_t ju_offset(const char *s, size_t len, size_t cp);	/* byte of cp */
int ju_isspace(uint32_t cp);	/* Python str.isspace */
uint32_t ju_decode(const char *s, size_t len, size_t *adv);

/* ---- lexer ---- */

enum jt_type {
	JT_EOF, JT_DATA, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN,
	JT_BLOCK_END, JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP,
};

struct jtok {
	int type;
	int line;
	char *s;	/* DATA, NAME, STRING (unescaped), OP text */
	size_t len;
	int64_t i;
	double f;
};

struct jtoks {
	struct jtok *t;
	size_t n, cap;
};

int jj_lex(struct jtoks *out, const char *src, size_t len,
	   struct hf_err *err);
void jj_toks_free(struct jtoks *t);

/* ---- syntax tree ---- */

enum jn_kind {
	/* statements */
	JN_BODY, JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SET_BLOCK,
	JN_MACRO, JN_CALL_BLOCK, JN_FILTER_BLOCK, JN_BREAK, JN_CONTINUE,
	JN_WITH,
	/* expressions */
	JN_CONST, JN_NAME, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL, JN_FILTER,
	JN_TEST, JN_BINOP, JN_NEG, JN_POS, JN_NOT, JN_AND, JN_OR, JN_CMP,
	JN_COND, JN_LIST, JN_TUPLE, JN_DICT, JN_CONCAT, JN_NSREF,
};

/* JN_MACRO / JN_CALL_BLOCK op: the special names the body reads. */
enum { JM_VARARGS = 1, JM_KWARGS = 2, JM_CALLER = 4 };

/* Operators of JN_BINOP and JN_CMP. */
enum jop {
	JO_ADD, JO_SUB, JO_MUL, JO_DIV, JO_FDIV, JO_MOD, JO_POW,
	JO_EQ, JO_NE, JO_LT, JO_LE, JO_GT, JO_GE, JO_IN, JO_NOTIN,
};

struct jnode {
	int kind;
	int line;
	int op;			/* enum jop; negated test; recursive for */
	char *name;		/* NAME, ATTR, FILTER, TEST, MACRO, NSREF */
	struct jv *val;		/* CONST */
	struct jnode **kids;	/* meaning depends on kind, see parse.c */
	size_t nkids;
	char **kw;		/* keyword names of CALL/FILTER/TEST args:
				 * kw[i] names kids[i], NULL if positional */
	int *ops;		/* JN_CMP operators, nkids - 1 of them */
	char **undef;		/* frame nodes: names that start Undefined */
	size_t nundef;
};

int jj_parse(struct jnode **out, const struct jtoks *t, struct hf_err *err);
/* Fill each frame node's undef list (scope.c). */
int jj_scope(struct jnode *root, struct hf_err *err);
/* Mark slices jinja2's optimizer folds to Undefined (eval.c). */
void jx_mark_folds(struct jnode *n, int in_const);
void jj_node_free(struct jnode *n);

/* ---- evaluation ---- */

struct jargs {
	struct jv **pos;
	size_t npos;
	char **kwn;
	struct jv **kwv;
	size_t nkw;
};

struct jframe {
	struct jframe *parent;
	struct jv *vars;	/* JV_DICT */
	struct jcell *cell;	/* for macros defined here, or NULL */
};

struct jctx {
	struct hf_err *err;
	const char *tname;	/* template name, for messages */
	int line;		/* line being evaluated */
	size_t steps;
	int depth;
	int raised;		/* err holds raise_exception's message */
	struct jframe *root;
};

/* Fail with a template error: "line N: msg"; returns NULL. */
struct jv *jx_fail(struct jctx *cx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Count work; 0 ok, -1 (and err set) past the budget. */
int jx_charge(struct jctx *cx, size_t units);

/* Evaluate; returns a new reference or NULL with cx->err set. */
struct jv *jx_eval(struct jctx *cx, struct jframe *f, const struct jnode *n);
/* Render body into out; 0, or -1 on error. */
int jx_render(struct jctx *cx, const struct jnode *body, struct jv *globals,
	      struct jbuf *out);

/* Shared by eval.c, ops.c and exec.c. Each returns NULL (or -1) with
 * cx->err set on failure. */
struct jv *jx_oom(struct jctx *cx);
struct jv *jx_buf_fail(struct jctx *cx, const struct jbuf *b);
struct jv *jx_undef_fail(struct jctx *cx, const struct jv *u);
struct jv *jx_lookup(struct jframe *f, const char *name);	/* borrowed */
int jx_frame_init(struct jctx *cx, struct jframe *f, struct jframe *parent);
/* End a frame: free its variables, expire its cell. */
void jx_frame_done(struct jframe *f);
int jx_frame_set(struct jctx *cx, struct jframe *f, const char *name,
		 struct jv *v);	/* takes v */
struct jv *jx_iter_items(struct jctx *cx, struct jv *v);
int jx_assign(struct jctx *cx, struct jframe *f, const struct jnode *t,
	      struct jv *v);	/* takes v */
int jx_eval_args(struct jctx *cx, struct jframe *f, const struct jnode *n,
		 size_t from, struct jargs *a);
void jx_args_free(struct jargs *a);
struct jv *jx_eval_filter_chain(struct jctx *cx, struct jframe *f,
				const struct jnode *n, struct jv *subject);
struct jv *jx_binop(struct jctx *cx, int op, struct jv *a, struct jv *b);
/* 1 if v holds a namespace anywhere (storing it in a namespace could
 * make a reference cycle), 0 if not, -1 past the step budget. */
int jx_holds_ns(struct jctx *cx, const struct jv *v);
int jx_compare(struct jctx *cx, int op, struct jv *a, struct jv *b);

/* Attribute / item lookup as Jinja's sandbox does it. */
struct jv *jx_getattr(struct jctx *cx, struct jv *obj, const char *name);
struct jv *jx_getitem(struct jctx *cx, struct jv *obj, struct jv *key);
struct jv *jx_call(struct jctx *cx, struct jv *fn, struct jargs *a);
/* Python's "fmt % args" for str fmt. */
struct jv *jx_percent(struct jctx *cx, struct jv *fmt, struct jv *args);

/* Builtins (builtins.c). Each returns a new reference or NULL on error. */
struct jv *jb_filter(struct jctx *cx, const char *name, struct jv *v,
		     struct jargs *a);
int jb_test(struct jctx *cx, const char *name, struct jv *v,
	    struct jargs *a);	/* 1, 0, or -1 on error */
int jb_has_test(const char *name);
int jb_has_filter(const char *name);
/* A method of a str/dict/list value as a bound function, or NULL (no
 * error) if there is none. */
struct jv *jb_method(struct jctx *cx, struct jv *obj, const char *name);
struct jv *jb_global(const char *name);	/* range, namespace, ... or NULL */
struct jv *jb_str_slice(struct jctx *cx, struct jv *v, struct jv *start,
			struct jv *stop, struct jv *step);
/* Python str(v) as a new string value. */
struct jv *jb_to_str(struct jctx *cx, struct jv *v);

/* Helpers the builtins share (builtins.c). */
/* Argument at position pos or keyword name (NULL: none), borrowed. */
struct jv *jb_arg(struct jargs *a, size_t pos, const char *name);
int jb_arg_bool(struct jargs *a, size_t pos, const char *name, int def);
int jb_want_str(struct jctx *cx, struct jv *v, const char *what);
struct jv *jb_oom(struct jctx *cx);
/* The buffer as a string value; errors for out of memory and size. */
struct jv *jb_take(struct jctx *cx, struct jbuf *b);
/* Push item (taken) onto l; returns l, or NULL with the error set. */
struct jv *jb_list_push(struct jctx *cx, struct jv *l, struct jv *item);
/* An iterable's items as a list (str: characters, dict: keys). */
struct jv *jb_items_of(struct jctx *cx, struct jv *v);
/* Python ordering of a and b: -1, 0, 1, or 2 with the error set. */
int jb_cmp(struct jctx *cx, const struct jv *a, const struct jv *b);
/* dict.items(): a list of (key, value) tuples. */
struct jv *jb_dict_items(struct jctx *cx, struct jv *d);

/* Python str methods on UTF-8 text (text.c). */
enum jt_case { JT_LOWER, JT_UPPER, JT_CAPITALIZE = 3, JT_PYTITLE = 4 };
struct jv *jt_recase(struct jctx *cx, const char *s, size_t len, int mode);
/* Jinja's title filter: words split at [-\s({[<] */
struct jv *jt_title_words(struct jctx *cx, const char *s, size_t len);
/* which: 1 lstrip, 2 rstrip, 3 strip; chars NULL or none: whitespace */
struct jv *jt_strip(struct jctx *cx, struct jv *s, struct jv *chars,
		    int which);
struct jv *jt_replace(struct jctx *cx, struct jv *s, struct jv *old,
		      struct jv *new, struct jv *count);
struct jv *jt_split(struct jctx *cx, struct jv *s, struct jv *sep,
		    struct jv *maxsplit, int right);
struct jv *jt_splitlines(struct jctx *cx, const char *s, size_t len,
			 int keepends);
struct jv *jt_format(struct jctx *cx, struct jv *fmt, struct jargs *a);
int jt_is_case(const struct jv *s, int upper);	/* islower / isupper */
int jt_is_alpha(uint32_t c);
int jt_is_alnum(uint32_t c);

#endif
