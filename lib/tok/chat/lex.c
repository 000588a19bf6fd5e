/* lib/tok/chat/lex.c: split a template into text and tag tokens the way
 * Jinja2's lexer does with trim_blocks=True and lstrip_blocks=True
 * (jinja2/lexer.py: OptionalLStrip, the block/comment end rules). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "tok/chat/jinja.h"

struct lexer {
	const char *s;
	size_t n, pos;
	int line;
	int line_starting;	/* the last tag's match ended with "\n" */
	struct jtoks *out;
	struct hf_err *err;
};

static struct jtok *push(struct lexer *lx, int type)
{
	struct jtoks *t = lx->out;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct jtok *nt = realloc(t->t, cap * sizeof(*nt));

		if (!nt) {
			hf_err_set(lx->err, HF_ENOMEM, "out of memory");
			return NULL;
		}
		t->t = nt;
		t->cap = cap;
	}
	memset(&t->t[t->n], 0, sizeof(t->t[0]));
	t->t[t->n].type = type;
	t->t[t->n].line = lx->line;
	return &t->t[t->n++];
}

static int push_text(struct lexer *lx, int type, const char *s, size_t n)
{
	struct jtok *t = push(lx, type);

	if (!t)
		return -1;
	t->s = malloc(n + 1);
	if (!t->s)
		return hf_err_set(lx->err, HF_ENOMEM, "out of memory");
	memcpy(t->s, s, n);
	t->s[n] = 0;
	t->len = n;
	return 0;
}

static int fail(struct lexer *lx, const char *msg)
{
	return hf_err_set(lx->err, HF_EFORMAT, "line %d: %s", lx->line, msg);
}

static void count_lines(struct lexer *lx, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (lx->s[i] == '\n')
			lx->line++;
}

/* Length of the Python-whitespace code point at s, or 0. */
static size_t space_at(const char *s, size_t n)
{
	size_t adv;
	uint32_t c;

	if (!n)
		return 0;
	c = ju_decode(s, n, &adv);
	return ju_isspace(c) ? adv : 0;
}

/* Byte length of text with trailing Python whitespace removed. */
static size_t rstrip_len(const char *s, size_t n)
{
	while (n > 0) {
		size_t k = 1;

		/* step back over one code point */
		while (k < n && k < 4 && ((unsigned char)s[n - k] & 0xc0) == 0x80)
			k++;
		if (!space_at(s + n - k, k))
			break;
		n -= k;
	}
	return n;
}

static size_t skip_space(const char *s, size_t n, size_t i)
{
	size_t k;

	while (i < n && (k = space_at(s + i, n - i)))
		i += k;
	return i;
}

/* Emit the text before a tag whose whitespace sign is sign ('-', '+' or
 * 0); lstrip applies to block and comment tags, not to {{ }}. */
static int emit_data(struct lexer *lx, size_t start, size_t end, int sign,
		     int lstrip_ok)
{
	const char *text = lx->s + start;
	size_t n = end - start;

	if (sign == '-') {
		n = rstrip_len(text, n);
	} else if (sign != '+' && lstrip_ok) {
		size_t l = n;

		while (l > 0 && text[l - 1] != '\n')
			l--;
		if ((l > 0 || lx->line_starting) && l < n &&
		    skip_space(text, n, l) == n)
			n = l;
	}
	if (n && push_text(lx, JT_DATA, text, n))
		return -1;
	return 0;
}

/* Match a tag end at pos: "%}" style ends take "+%}", "-%}\s*" or
 * "%}\n?" (trim_blocks); "}}" takes "-}}\s*" or "}}". Returns the match
 * length or 0. */
static size_t match_end(struct lexer *lx, char c1, int trim)
{
	const char *s = lx->s + lx->pos;
	size_t left = lx->n - lx->pos;

	if (trim && left >= 3 && s[0] == '+' && s[1] == c1 && s[2] == '}')
		return 3;
	if (left >= 3 && s[0] == '-' && s[1] == c1 && s[2] == '}')
		return skip_space(s, left, 3);
	if (left >= 2 && s[0] == c1 && s[1] == '}') {
		if (trim && left >= 3 && s[2] == '\n')
			return 3;
		return 2;
	}
	return 0;
}

static const char *const ops3[] = { "//", "**", "==", "!=", "<=", ">=",
	NULL };

static int unescape(struct lexer *lx, struct jtok *t, const char *s,
		    size_t n)
{
	char *o = malloc(n + 1);
	size_t i = 0, k = 0;

	if (!o)
		return hf_err_set(lx->err, HF_ENOMEM, "out of memory");
	while (i < n) {
		char c = s[i++];
		uint32_t cp;
		int digits = 0;

		if (c != '\\' || i >= n) {
			o[k++] = c;
			continue;
		}
		c = s[i++];
		switch (c) {
		case 'n': o[k++] = '\n'; continue;
		case 't': o[k++] = '\t'; continue;
		case 'r': o[k++] = '\r'; continue;
		case 'a': o[k++] = '\a'; continue;
		case 'b': o[k++] = '\b'; continue;
		case 'f': o[k++] = '\f'; continue;
		case 'v': o[k++] = '\v'; continue;
		case '\\': o[k++] = '\\'; continue;
		case '\'': o[k++] = '\''; continue;
		case '"': o[k++] = '"'; continue;
		case '\n': continue;
		case 'x': digits = 2; break;
		case 'u': digits = 4; break;
		case 'U': digits = 8; break;
		default:
			if (c >= '0' && c <= '7') {
				cp = c - '0';
				for (int d = 0; d < 2 && i < n && s[i] >= '0' &&
				     s[i] <= '7'; d++)
					cp = cp * 8 + (s[i++] - '0');
				k += hf_utf8_encode(cp, o + k);
				continue;
			}
			o[k++] = '\\';
			o[k++] = c;
			continue;
		}
		cp = 0;
		for (int d = 0; d < digits; d++, i++) {
			if (i >= n || !isxdigit((unsigned char)s[i])) {
				free(o);
				return fail(lx, "truncated \\x, \\u or \\U "
					    "escape in a string");
			}
			cp = cp * 16 + (isdigit((unsigned char)s[i]) ?
					s[i] - '0' :
					(tolower((unsigned char)s[i]) - 'a' + 10));
		}
		/* surrogates have no UTF-8 form: write U+FFFD instead */
		if (cp >= 0xd800 && cp <= 0xdfff)
			cp = 0xfffd;
		if (cp > 0x10ffff) {
			free(o);
			return fail(lx, "escape out of the Unicode range in a "
				    "string");
		}
		k += hf_utf8_encode(cp, o + k);
	}
	o[k] = 0;
	t->s = o;
	t->len = k;
	return 0;
}

/* End of an integer literal at i as jinja2's integer_re takes it:
 * 0b.., 0o.., 0x.. (set *base), "0" runs (so "01" is 0 then 1), or
 * decimal digits, with single underscores between digits. */
static size_t int_end(struct lexer *lx, size_t i, int *base)
{
	const char *s = lx->s;
	size_t j = i + 1;
	char c = i + 1 < lx->n ? (char)tolower((unsigned char)s[i + 1]) : 0;
	int b = c == 'b' ? 2 : c == 'o' ? 8 : c == 'x' ? 16 : 0;

#define DIGIT(ch) (b == 16 ? isxdigit((unsigned char)(ch)) : \
		   (ch) >= '0' && (ch) < '0' + (b ? b : 10))
	if (s[i] == '0' && b) {
		size_t k = i + 2;

		while (k < lx->n && (DIGIT(s[k]) || (s[k] == '_' &&
		       k + 1 < lx->n && DIGIT(s[k + 1]))))
			k++;
		if (k > i + 2) {
			*base = b;
			return k;
		}
	}
#undef DIGIT
	*base = 10;
	if (s[i] == '0') {
		while (j < lx->n && (s[j] == '0' || (s[j] == '_' &&
		       j + 1 < lx->n && s[j + 1] == '0')))
			j++;
		return j;
	}
	while (j < lx->n && (isdigit((unsigned char)s[j]) || (s[j] == '_' &&
	       j + 1 < lx->n && isdigit((unsigned char)s[j + 1]))))
		j++;
	return j;
}

/* Lex the inside of a {{ }} or {% %} tag up to and including its end. */
static int lex_tag(struct lexer *lx, int block)
{
	char stack[JJ_MAX_NEST];
	int depth = 0;
	int start_line = lx->line;

	for (;;) {
		const char *s = lx->s;
		size_t i = lx->pos, m;
		struct jtok *t;

		if (depth == 0) {
			m = match_end(lx, block ? '%' : '}', block);
			if (m) {
				if (!push(lx, block ? JT_BLOCK_END : JT_VAR_END))
					return -1;
				count_lines(lx, lx->pos, lx->pos + m);
				lx->line_starting = s[lx->pos + m - 1] == '\n';
				lx->pos += m;
				return 0;
			}
		}
		if (i >= lx->n) {
			lx->line = start_line;
			return fail(lx, block ? "unexpected end of template, "
				    "missing '%}'" : "unexpected end of "
				    "template, missing '}}'");
		}
		if ((m = space_at(s + i, lx->n - i))) {
			count_lines(lx, i, i + m);
			lx->pos += m;
			continue;
		}
		if (isdigit((unsigned char)s[i])) {
			size_t j = i;
			int is_float = 0, base = 10;
			char num[80];
			size_t k = 0;

			while (j < lx->n && (isdigit((unsigned char)s[j]) ||
			       (s[j] == '_' && j + 1 < lx->n &&
				isdigit((unsigned char)s[j + 1]))))
				j++;
			if (j + 1 < lx->n && s[j] == '.' &&
			    isdigit((unsigned char)s[j + 1]) &&
			    !(i > 0 && s[i - 1] == '.')) {
				is_float = 1;
				j++;
				while (j < lx->n && (isdigit((unsigned char)s[j]) ||
				       s[j] == '_'))
					j++;
			}
			if (j < lx->n && (s[j] == 'e' || s[j] == 'E')) {
				size_t e = j + 1;

				if (e < lx->n && (s[e] == '+' || s[e] == '-'))
					e++;
				if (e < lx->n && isdigit((unsigned char)s[e])) {
					is_float = 1;
					j = e;
					while (j < lx->n &&
					       (isdigit((unsigned char)s[j]) ||
						(s[j] == '_' && j + 1 < lx->n &&
						 isdigit((unsigned char)s[j + 1]))))
						j++;
				}
			}
			if (!is_float)
				j = int_end(lx, i, &base);
			for (size_t x = i + (base != 10 ? 2 : 0);
			     x < j && k < sizeof(num) - 1; x++)
				if (s[x] != '_')
					num[k++] = s[x];
			num[k] = 0;
			t = push(lx, is_float ? JT_FLOAT : JT_INT);
			if (!t)
				return -1;
			if (is_float) {
				t->f = strtod(num, NULL);
			} else {
				char *end;

				errno = 0;
				t->i = strtoll(num, &end, base);
				if (errno || k > 64)
					return fail(lx, "integer literal too "
						    "large");
			}
			lx->pos = j;
			continue;
		}
		if (isalpha((unsigned char)s[i]) || s[i] == '_') {
			size_t j = i;

			while (j < lx->n && (isalnum((unsigned char)s[j]) ||
			       s[j] == '_'))
				j++;
			if (push_text(lx, JT_NAME, s + i, j - i))
				return -1;
			lx->pos = j;
			continue;
		}
		if (s[i] == '\'' || s[i] == '"') {
			char q = s[i];
			size_t j = i + 1;

			while (j < lx->n && s[j] != q) {
				if (s[j] == '\\' && j + 1 < lx->n)
					j++;
				j++;
			}
			if (j >= lx->n)
				return fail(lx, "unterminated string");
			t = push(lx, JT_STRING);
			if (!t || unescape(lx, t, s + i + 1, j - i - 1))
				return -1;
			count_lines(lx, i, j);
			lx->pos = j + 1;
			continue;
		}
		/* operators */
		m = 0;
		for (int k = 0; ops3[k]; k++)
			if (i + 1 < lx->n && s[i] == ops3[k][0] &&
			    s[i + 1] == ops3[k][1])
				m = 2;
		if (!m && strchr("+-/*%~[](){}=<>.:|,;", s[i]) && s[i])
			m = 1;
		if (!m) {
			char msg[64];

			snprintf(msg, sizeof(msg), "unexpected char '%c'",
				 isprint((unsigned char)s[i]) ? s[i] : '?');
			return fail(lx, msg);
		}
		if (m == 1 && strchr("([{", s[i])) {
			if (depth >= JJ_MAX_NEST)
				return fail(lx, "brackets nested too deeply");
			stack[depth++] = s[i];
		} else if (m == 1 && strchr(")]}", s[i])) {
			char want = s[i] == ')' ? '(' : s[i] == ']' ? '[' : '{';

			if (!depth || stack[depth - 1] != want) {
				char msg[32];

				snprintf(msg, sizeof(msg), "unexpected '%c'",
					 s[i]);
				return fail(lx, msg);
			}
			depth--;
		}
		if (push_text(lx, JT_OP, s + i, m))
			return -1;
		lx->pos += m;
	}
}

/* {% raw %} ... {% endraw %}: returns 1 if a raw block was lexed at
 * tagpos, 0 if the tag is not raw, -1 on error. */
static int lex_raw(struct lexer *lx, size_t textstart, size_t tagpos,
		   int sign)
{
	const char *s = lx->s;
	size_t i = tagpos + 2 + (sign ? 1 : 0), body, j;

	i = skip_space(s, lx->n, i);
	if (lx->n - i < 3 || memcmp(s + i, "raw", 3))
		return 0;
	i = skip_space(s, lx->n, i + 3);
	if (i + 3 <= lx->n && !memcmp(s + i, "-%}", 3))
		i = skip_space(s, lx->n, i + 3);
	else if (i + 2 <= lx->n && !memcmp(s + i, "%}", 2))
		i += 2;
	else
		return 0;
	if (emit_data(lx, textstart, tagpos, sign, 1))
		return -1;
	count_lines(lx, tagpos, i);
	lx->line_starting = s[i - 1] == '\n';
	body = i;
	if (body >= lx->n) {	/* jinja2 stops quietly at "{% raw %}" + EOF */
		lx->pos = body;
		return 1;
	}
	for (j = body; j + 1 < lx->n; j++) {
		size_t k, e;
		int esign = 0;

		if (s[j] != '{' || s[j + 1] != '%')
			continue;
		k = j + 2;
		if (k < lx->n && (s[k] == '-' || s[k] == '+'))
			esign = s[k++];
		k = skip_space(s, lx->n, k);
		if (lx->n - k < 6 || memcmp(s + k, "endraw", 6))
			continue;
		k = skip_space(s, lx->n, k + 6);
		lx->pos = k;
		e = match_end(lx, '%', 1);
		if (!e)
			continue;
		if (emit_data(lx, body, j, esign, 1))
			return -1;
		count_lines(lx, body, k + e);
		lx->line_starting = s[k + e - 1] == '\n';
		lx->pos = k + e;
		return 1;
	}
	fail(lx, "missing end of raw directive");
	return -1;
}

int jj_lex(struct jtoks *out, const char *src, size_t len,
	   struct hf_err *err)
{
	struct lexer lx = { .line = 1, .line_starting = 1, .out = out,
			    .err = err };
	char *s = malloc(len + 1);
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (!s)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	/* Jinja normalizes \r\n and \r to \n and drops one trailing
	 * newline (keep_trailing_newline=False) */
	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\r') {
			s[n++] = '\n';
			if (i + 1 < len && src[i + 1] == '\n')
				i++;
		} else {
			s[n++] = src[i];
		}
	}
	if (n && s[n - 1] == '\n')
		n--;
	s[n] = 0;
	lx.s = s;
	lx.n = n;
	while (lx.pos < lx.n) {
		size_t start = lx.pos, tag;
		const char *p = s + start;
		int kind = 0, sign = 0, r;

		for (tag = start; tag + 1 < n; tag++) {
			if (s[tag] == '{' && (s[tag + 1] == '{' ||
			    s[tag + 1] == '%' || s[tag + 1] == '#')) {
				kind = s[tag + 1];
				break;
			}
		}
		if (!kind) {
			if (push_text(&lx, JT_DATA, p, n - start))
				goto fail;
			break;
		}
		if (tag + 2 < n && (s[tag + 2] == '-' || s[tag + 2] == '+'))
			sign = s[tag + 2];
		if (kind == '%') {
			count_lines(&lx, start, tag);
			r = lex_raw(&lx, start, tag, sign);
			if (r < 0)
				goto fail;
			if (r > 0)
				continue;
		} else {
			count_lines(&lx, start, tag);
		}
		if (emit_data(&lx, start, tag, sign, kind != '{'))
			goto fail;
		/* the data token takes the line the text started on */
		lx.pos = tag + 2 + (sign ? 1 : 0);
		if (kind == '#') {
			size_t j, e = 0, cstart = lx.pos;

			for (j = lx.pos; j + 1 < n; j++) {
				lx.pos = j;
				if ((s[j] == '+' || s[j] == '-') &&
				    j + 2 < n && s[j + 1] == '#' &&
				    s[j + 2] == '}') {
					e = s[j] == '+' ? 3 :
					    skip_space(s + j, n - j, 3);
					break;
				}
				if (s[j] == '#' && s[j + 1] == '}') {
					e = (j + 2 < n && s[j + 2] == '\n') ?
					    3 : 2;
					break;
				}
			}
			if (!e && cstart >= n)
				break;	/* jinja2 stops quietly at "{#" + EOF */
			if (!e) {
				fail(&lx, "missing end of comment tag");
				goto fail;
			}
			count_lines(&lx, tag, j + e);
			lx.line_starting = s[j + e - 1] == '\n';
			lx.pos = j + e;
			continue;
		}
		if (!push(&lx, kind == '{' ? JT_VAR_BEGIN : JT_BLOCK_BEGIN))
			goto fail;
		if (lex_tag(&lx, kind == '%'))
			goto fail;
	}
	if (!push(&lx, JT_EOF))
		goto fail;
	free(s);
	return 0;
fail:
	free(s);
	jj_toks_free(out);
	return err->code ? err->code : HF_EFORMAT;
}

void jj_toks_free(struct jtoks *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->t[i].s);
	free(t->t);
	memset(t, 0, sizeof(*t));
}
