/* lib/tok/norm.c: normalizers, with HF's alignment tracking. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tok/internal.h"

int tok_tf_push(struct tf *t, uint32_t cp, int32_t chg)
{
	if (t->n == t->cap) {
		size_t c = t->cap ? t->cap * 2 : 256;
		uint32_t *a = realloc(t->cp, c * sizeof(*a));
		int32_t *b;

		if (!a)
			return -1;
		t->cp = a;
		b = realloc(t->chg, c * sizeof(*b));
		if (!b)
			return -1;
		t->chg = b;
		t->cap = c;
	}
	t->cp[t->n] = cp;
	t->chg[t->n++] = chg;
	return 0;
}

static int piece_copy(struct tok_ws *ws, int cur, const struct piece *p)
{
	struct arena *src = &ws->ar[cur], *dst = &ws->ar[cur ^ 1];
	struct piece np = *p;

	if (tok_ar_reserve(dst, p->len))
		return -1;
	np.off = (uint32_t)dst->len;
	memcpy(dst->s + dst->len, src->s + p->off, p->len);
	memcpy(dst->al + dst->len, src->al + p->off, p->len * sizeof(struct al));
	dst->len += p->len;
	return tok_pl_push(&ws->pl[cur ^ 1], np);
}

static int is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

/* ---- Unicode normalization forms with (char, change) tracking, as the
 * unicode-normalization-alignments crate yields them: a decomposed char's
 * first part has change 0 and the rest 1; a composed char carries the
 * changes of what it absorbed minus one per absorbed char. ---- */

/* Combining classes and decompositions are utf8proc's, less what came
 * after the Unicode 9.0 of unicode-normalization-alignments. */
static int ccc(uint32_t c)
{
	if (tok_ucd_after9(c))
		return 0;
	return utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
}

static int decompose(struct tf *t, const char *s, size_t n, int compat)
{
	utf8proc_option_t opt = UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0);
	size_t i = 0, run = t->n;

	while (i < n) {
		size_t k;
		uint32_t c = tok_decode1(s + i, n - i, &k);
		utf8proc_int32_t buf[32];
		utf8proc_ssize_t m;

		i += k;
		m = tok_ucd_after9(c) ? 0 :
		    utf8proc_decompose_char((utf8proc_int32_t)c, buf, 32, opt, NULL);
		if (m < 1 || m > 32) {
			buf[0] = (utf8proc_int32_t)c;
			m = 1;
		}
		for (utf8proc_ssize_t j = 0; j < m; j++) {
			uint32_t d = (uint32_t)buf[j];

			if (ccc(d) == 0)
				run = t->n;
			if (tok_tf_push(t, d, j > 0))
				return -1;
			/* canonical ordering: bubble the new mark back past
			 * marks of a higher class (stable) */
			if (ccc(d)) {
				for (size_t q = t->n - 1; q > run &&
				     ccc(t->cp[q - 1]) > ccc(t->cp[q]); q--) {
					uint32_t tc = t->cp[q];
					int32_t tg = t->chg[q];

					t->cp[q] = t->cp[q - 1];
					t->chg[q] = t->chg[q - 1];
					t->cp[q - 1] = tc;
					t->chg[q - 1] = tg;
				}
			}
		}
	}
	return 0;
}

static uint32_t compose_pair(uint32_t a, uint32_t b)
{
	utf8proc_int32_t buf[2] = { (utf8proc_int32_t)a, (utf8proc_int32_t)b };

	/* Hangul: LV and LVT syllables */
	if (a >= 0x1100 && a < 0x1113 && b >= 0x1161 && b < 0x1176)
		return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28;
	if (a >= 0xAC00 && a < 0xAC00 + 11172 && (a - 0xAC00) % 28 == 0 &&
	    b > 0x11A7 && b < 0x11C3)
		return a + (b - 0x11A7);
	if (utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE) == 1 &&
	    !tok_ucd_nocomp((uint32_t)buf[0]))
		return (uint32_t)buf[0];
	return 0;
}

/* Recompose t[from..] in place (canonical composition). */
static int recompose(struct tf *t, size_t from)
{
	size_t w = from, comp = (size_t)-1;
	int last = -1;	/* ccc of the last uncomposed char after comp */

	for (size_t r = from; r < t->n; r++) {
		uint32_t c = t->cp[r];
		int32_t g = t->chg[r];
		int cc = ccc(c);

		if (comp != (size_t)-1 && (last == -1 || last < cc)) {
			uint32_t k = compose_pair(t->cp[comp], c);

			if (k && (last == -1 || last < cc)) {
				t->cp[comp] = k;
				t->chg[comp] += g - 1;
				continue;
			}
		}
		if (cc == 0) {
			comp = w;
			last = -1;
		} else {
			last = cc;
		}
		t->cp[w] = c;
		t->chg[w++] = g;
	}
	t->n = w;
	return 0;
}

static int do_unicode(struct tok_ws *ws, int cur, const struct piece *p,
		      enum norm_type type)
{
	const char *s = ws->ar[cur].s + p->off;

	if (is_ascii(s, p->len))
		return piece_copy(ws, cur, p);
	ws->tf.n = 0;
	if (decompose(&ws->tf, s, p->len, type == N_NFKC || type == N_NFKD))
		return -1;
	if (type == N_NFC || type == N_NFKC)
		recompose(&ws->tf, 0);
	return tok_piece_transform(ws, cur, p, 0);
}

/* Lowercase pairs of Unicode 16.0 and 17.0, which utf8proc 2.8 (15.0)
 * lacks and the Rust of tokenizers 0.23.2 has: first, last, offset. */
static const struct {
	uint32_t a, b;
	int32_t d;
} lower_new[] = {
	{ 0x1C89, 0x1C89, 1 }, { 0xA7CB, 0xA7CB, 0x264 - 0xA7CB },
	{ 0xA7CC, 0xA7CC, 1 }, { 0xA7CE, 0xA7CE, 1 }, { 0xA7D2, 0xA7D2, 1 },
	{ 0xA7D4, 0xA7D4, 1 }, { 0xA7DA, 0xA7DA, 1 },
	{ 0xA7DC, 0xA7DC, 0x19B - 0xA7DC }, { 0x10D50, 0x10D65, 0x20 },
	{ 0x16EA0, 0x16EB8, 0x1B },
};

/* char::to_lowercase: full mapping; only U+0130 expands. */
static int push_lower(struct tf *t, uint32_t c)
{
	if (c == 0x130)
		return tok_tf_push(t, 'i', 0) || tok_tf_push(t, 0x307, 1);
	for (size_t i = 0; i < sizeof(lower_new) / sizeof(lower_new[0]); i++)
		if (c >= lower_new[i].a && c <= lower_new[i].b)
			return tok_tf_push(t, (uint32_t)((int32_t)c + lower_new[i].d),
					   0);
	return tok_tf_push(t, (uint32_t)utf8proc_tolower((utf8proc_int32_t)c), 0);
}

static int do_lower(struct tok_ws *ws, int cur, const struct piece *p)
{
	const char *s = ws->ar[cur].s + p->off;

	if (is_ascii(s, p->len)) {
		struct arena *dst = &ws->ar[cur ^ 1];
		size_t at = dst->len;

		if (piece_copy(ws, cur, p))
			return -1;
		for (size_t i = 0; i < p->len; i++) {
			char c = dst->s[at + i];

			if (c >= 'A' && c <= 'Z')
				dst->s[at + i] = (char)(c + 32);
		}
		return 0;
	}
	ws->tf.n = 0;
	for (size_t i = 0; i < p->len;) {
		size_t k;
		uint32_t c = tok_decode1(s + i, p->len - i, &k);

		i += k;
		if (push_lower(&ws->tf, c))
			return -1;
	}
	return tok_piece_transform(ws, cur, p, 0);
}

/* NormalizedString::filter: kept chars absorb the removed ones after them. */
typedef int (*keep_fn)(uint32_t c, const struct norm *n);

static int do_filter_map(struct tok_ws *ws, int cur, const struct piece *p,
			 keep_fn keep, uint32_t (*map)(uint32_t), const struct norm *n)
{
	const char *s = ws->ar[cur].s + p->off;
	size_t initial = 0;
	int any = 0;

	ws->tf.n = 0;
	for (size_t i = 0; i < p->len;) {
		size_t k;
		uint32_t c = tok_decode1(s + i, p->len - i, &k);

		i += k;
		if (keep && !keep(c, n)) {
			if (ws->tf.n)
				ws->tf.chg[ws->tf.n - 1]--;
			else
				initial++;
			any = 1;
			continue;
		}
		if (map) {
			uint32_t m = map(c);

			any |= m != c;
			c = m;
		}
		if (tok_tf_push(&ws->tf, c, 0))
			return -1;
	}
	if (!any)
		return piece_copy(ws, cur, p);
	return tok_piece_transform(ws, cur, p, initial);
}

/* BertNormalizer's strip accents: unicode_categories' is_mark_nonspacing */
static int keep_not_mn(uint32_t c, const struct norm *n)
{
	return !tok_ucd_is_mn(c);
}

/* StripAccents: unicode-normalization's is_combining_mark (category M) */
static int keep_not_mark(uint32_t c, const struct norm *n)
{
	return !tok_ucd_is_mark(c);
}

/* BertNormalizer's clean_text: drop NUL, U+FFFD and is_control, that is
 * unicode_categories' is_other (Cc Cf Co) but for tab, LF and CR.
 * Unassigned code points and noncharacters (Cn) stay. */
static int keep_bert_clean(uint32_t c, const struct norm *n)
{
	if (c == 0 || c == 0xFFFD)
		return 0;
	if (c == '\t' || c == '\n' || c == '\r')
		return 1;
	return !tok_ucd_is_other(c);
}

static uint32_t map_bert_ws(uint32_t c)
{
	if (c == '\t' || c == '\n' || c == '\r' || tok_is_whitespace(c))
		return ' ';
	return c;
}

static int keep_nmt(uint32_t c, const struct norm *n)
{
	return !((c >= 1 && c <= 8) || c == 0xB || (c >= 0xE && c <= 0x1F) ||
		 c == 0x7F || c == 0x8F || c == 0x9F);
}

static uint32_t map_nmt(uint32_t c)
{
	switch (c) {
	case 0x9: case 0xA: case 0xC: case 0xD: case 0x1680:
	case 0x200B: case 0x200C: case 0x200D: case 0x200E: case 0x200F:
	case 0x2028: case 0x2029: case 0x2581: case 0xFEFF: case 0xFFFD:
		return ' ';
	default:
		return c;
	}
}

static int is_chinese(uint32_t c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
	       (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
	       (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int do_chinese(struct tok_ws *ws, int cur, const struct piece *p)
{
	const char *s = ws->ar[cur].s + p->off;
	int any = 0;

	ws->tf.n = 0;
	for (size_t i = 0; i < p->len;) {
		size_t k;
		uint32_t c = tok_decode1(s + i, p->len - i, &k);
		int r;

		i += k;
		if (is_chinese(c)) {
			any = 1;
			r = tok_tf_push(&ws->tf, ' ', 0) || tok_tf_push(&ws->tf, c, 1) ||
			    tok_tf_push(&ws->tf, ' ', 1);
		} else {
			r = tok_tf_push(&ws->tf, c, 0);
		}
		if (r)
			return -1;
	}
	if (!any)
		return piece_copy(ws, cur, p);
	return tok_piece_transform(ws, cur, p, 0);
}

static int do_strip(struct tok_ws *ws, int cur, const struct piece *p,
		    int left, int right)
{
	const char *s = ws->ar[cur].s + p->off;
	size_t nch = 0, lead = 0, trail = 0, i;
	int seen = 0;

	for (i = 0; i < p->len;) {
		size_t k;
		uint32_t c = tok_decode1(s + i, p->len - i, &k);

		i += k;
		nch++;
		if (tok_is_whitespace(c)) {
			if (!seen)
				lead++;
			trail++;
		} else {
			seen = 1;
			trail = 0;
		}
	}
	if (!left)
		lead = 0;
	if (!right)
		trail = 0;
	if (lead == nch)
		trail = left ? 0 : trail;
	if (!lead && !trail)
		return piece_copy(ws, cur, p);
	ws->tf.n = 0;
	{
		size_t idx = 0;

		for (i = 0; i < p->len; idx++) {
			size_t k;
			uint32_t c = tok_decode1(s + i, p->len - i, &k);

			i += k;
			if (idx < lead || idx >= nch - trail)
				continue;
			if (tok_tf_push(&ws->tf, c, idx == nch - trail - 1 ? -(int32_t)trail : 0))
				return -1;
		}
	}
	return tok_piece_transform(ws, cur, p, lead);
}

static int do_prepend(struct tok_ws *ws, int cur, const struct piece *p,
		      const char *text)
{
	const char *s = ws->ar[cur].s + p->off;
	size_t k, tl = strlen(text);
	uint32_t first;
	int idx = 0;

	if (!p->len)
		return piece_copy(ws, cur, p);
	first = tok_decode1(s, p->len, &k);
	ws->tf.n = 0;
	for (size_t i = 0; i < tl; idx++) {
		size_t m;
		uint32_t c = tok_decode1(text + i, tl - i, &m);

		i += m;
		if (tok_tf_push(&ws->tf, c, idx > 0))
			return -1;
	}
	if (tok_tf_push(&ws->tf, first, 1))
		return -1;
	for (size_t i = k; i < p->len;) {
		size_t m;
		uint32_t c = tok_decode1(s + i, p->len - i, &m);

		i += m;
		if (tok_tf_push(&ws->tf, c, 0))
			return -1;
	}
	return tok_piece_transform(ws, cur, p, 0);
}

/* NormalizedString::replace: each match's chars go, the content's chars
 * come in aligned like the last byte of the match. Writes one piece. */
int tok_replace_piece(struct tok_ws *ws, int cur, const struct piece *p,
		      const struct rx *rx, const char *with)
{
	struct arena *src = &ws->ar[cur], *dst = &ws->ar[cur ^ 1];
	const char *s;
	const struct al *sal;
	size_t wl = strlen(with), pos = 0, last = 0;
	struct piece np = *p;

	np.off = (uint32_t)dst->len;
	for (;;) {
		int rc;
		PCRE2_SIZE *ov;
		size_t a, b;

		if (pos > p->len)
			break;
		s = src->s + p->off;
		rc = rx->jit ? pcre2_jit_match(rx->code, (PCRE2_SPTR)s, p->len,
					       pos, PCRE2_NO_UTF_CHECK, ws->md, NULL)
			     : pcre2_match(rx->code, (PCRE2_SPTR)s, p->len, pos,
					   PCRE2_NO_UTF_CHECK, ws->md, NULL);
		if (rc < 0)
			break;
		ov = pcre2_get_ovector_pointer(ws->md);
		a = ov[0];
		b = ov[1];
		if (a == b) {
			/* skip empty matches, one char on */
			size_t k = 1;

			if (a >= p->len)
				break;
			tok_decode1(s + a, p->len - a, &k);
			pos = a + k;
			continue;
		}
		if (tok_ar_reserve(dst, (a - last) + wl))
			return -1;
		sal = src->al + p->off;
		memcpy(dst->s + dst->len, s + last, a - last);
		memcpy(dst->al + dst->len, sal + last, (a - last) * sizeof(struct al));
		dst->len += a - last;
		memcpy(dst->s + dst->len, with, wl);
		for (size_t j = 0; j < wl; j++)
			dst->al[dst->len + j] = sal[b - 1];
		dst->len += wl;
		last = pos = b;
	}
	if (tok_ar_reserve(dst, p->len - last))
		return -1;
	s = src->s + p->off;
	sal = src->al + p->off;
	memcpy(dst->s + dst->len, s + last, p->len - last);
	memcpy(dst->al + dst->len, sal + last, (p->len - last) * sizeof(struct al));
	dst->len += p->len - last;
	np.len = (uint32_t)(dst->len - np.off);
	if (!np.len)
		return 0;
	return tok_pl_push(&ws->pl[cur ^ 1], np);
}

/* ---- SentencePiece precompiled charsmap (darts-clone double array) ---- */

static size_t pc_lookup(const struct norm *n, const char *k, size_t len,
			const char **rep)
{
	uint32_t pos = 0, unit;

	if (!n->ntrie)
		return 0;
	unit = n->trie[0];
	pos ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k[i];

		if (!c)
			break;
		pos ^= c;
		if (pos >= n->ntrie)
			return 0;
		unit = n->trie[pos];
		if ((unit & ((1u << 31) | 0xFF)) != c)
			return 0;
		pos ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
		if (pos >= n->ntrie)
			return 0;
		if ((unit >> 8) & 1) {
			/* first (shortest) match wins, as spm_precompiled */
			uint32_t v = n->trie[pos] & 0x7FFFFFFFu;
			size_t e = v;

			if (v >= n->nblob)
				return 0;
			while (e < n->nblob && n->blob[e])
				e++;
			*rep = n->blob + v;
			return e - v + 1;	/* length + 1: 0 means no match */
		}
	}
	return 0;
}

static int pc_replace(struct tf *t, const char *old, size_t oldlen,
		      const char *rep, size_t replen)
{
	size_t oldc = 0, newc = 0;
	size_t start = t->n;
	long diff;

	for (size_t i = 0; i < oldlen;) {
		size_t k;

		tok_decode1(old + i, oldlen - i, &k);
		i += k;
		oldc++;
	}
	for (size_t i = 0; i < replen;) {
		size_t k;
		uint32_t c = tok_decode1(rep + i, replen - i, &k);

		i += k;
		newc++;
		if (tok_tf_push(t, c, 0))
			return -1;
	}
	diff = (long)newc - (long)oldc;
	if (diff > 0) {
		for (size_t q = t->n; q > start && diff > 0; q--, diff--)
			t->chg[q - 1] = 1;
	} else if (diff < 0 && t->n) {
		t->chg[t->n - 1] += (int32_t)diff;
	}
	return 0;
}

static int do_precompiled(struct tok_ws *ws, int cur, const struct piece *p,
			  const struct norm *n)
{
	const char *s = ws->ar[cur].s + p->off;
	size_t i = 0;
	int modified = 0;

	ws->tf.n = 0;
	while (i < p->len) {
		/* one extended grapheme cluster [i, e) */
		size_t k, e;
		utf8proc_int32_t state = 0;
		uint32_t prev = tok_decode1(s + i, p->len - i, &k);
		const char *rep;
		size_t rl;

		e = i + k;
		while (e < p->len) {
			uint32_t c = tok_decode1(s + e, p->len - e, &k);

			if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev,
							     (utf8proc_int32_t)c, &state))
				break;
			prev = c;
			e += k;
		}
		if (e - i < 6 && (rl = pc_lookup(n, s + i, e - i, &rep))) {
			modified = 1;
			if (pc_replace(&ws->tf, s + i, e - i, rep, rl - 1))
				return -1;
			i = e;
			continue;
		}
		while (i < e) {
			uint32_t c = tok_decode1(s + i, e - i, &k);

			if ((rl = pc_lookup(n, s + i, k, &rep))) {
				modified = 1;
				if (pc_replace(&ws->tf, s + i, k, rep, rl - 1))
					return -1;
			} else if (tok_tf_push(&ws->tf, c, 0)) {
				return -1;
			}
			i += k;
		}
	}
	if (!modified)
		return piece_copy(ws, cur, p);
	return tok_piece_transform(ws, cur, p, 0);
}

static int do_bytelevel(struct tok_ws *ws, int cur, const struct piece *p)
{
	const unsigned char *s = (const unsigned char *)ws->ar[cur].s + p->off;

	ws->tf.n = 0;
	for (size_t i = 0; i < p->len;) {
		size_t k;

		tok_decode1((const char *)s + i, p->len - i, &k);
		for (size_t j = 0; j < k; j++)
			if (tok_tf_push(&ws->tf, tok_byte2cp[s[i + j]], j > 0))
				return -1;
		i += k;
	}
	return tok_piece_transform(ws, cur, p, 0);
}

static int norm_one(const struct norm *n, struct tok_ws *ws, int cur,
		    const struct piece *p)
{
	switch (n->type) {
	case N_NFC: case N_NFD: case N_NFKC: case N_NFKD:
		return do_unicode(ws, cur, p, n->type);
	case N_LOWER:
		return do_lower(ws, cur, p);
	case N_STRIP:
		return do_strip(ws, cur, p, n->strip_left, n->strip_right);
	case N_STRIP_ACCENTS:
		return do_filter_map(ws, cur, p, keep_not_mark, NULL, n);
	case N_STRIP_MN:
		return do_filter_map(ws, cur, p, keep_not_mn, NULL, n);
	case N_REPLACE:
		return tok_replace_piece(ws, cur, p, &n->rx, n->content);
	case N_PREPEND:
		return do_prepend(ws, cur, p, n->content);
	case N_PRECOMPILED:
		return do_precompiled(ws, cur, p, n);
	case N_NMT:
		return do_filter_map(ws, cur, p, keep_nmt, map_nmt, n);
	case N_BYTELEVEL:
		return do_bytelevel(ws, cur, p);
	default:
		return -1;
	}
}

static int stage(struct tok_ws *ws, int cur)
{
	ws->ar[cur ^ 1].len = 0;
	ws->pl[cur ^ 1].n = 0;
	return cur;
}

int tok_norm_apply(const struct norm *n, struct tok_ws *ws, int cur)
{
	if (n->type == N_SEQ) {
		for (size_t i = 0; i < n->nsub && cur >= 0; i++)
			cur = tok_norm_apply(&n->sub[i], ws, cur);
		return cur;
	}
	if (n->type == N_BERT) {
		struct norm sub;
		int fast = 1;

		/* ASCII without control chars: one pass (whitespace -> ' ',
		 * lowercase), alignments unchanged */
		for (size_t i = 0; i < ws->pl[cur].n && fast; i++) {
			const struct piece *p = &ws->pl[cur].v[i];
			const unsigned char *s = (const unsigned char *)ws->ar[cur].s + p->off;

			if (p->id >= 0)
				continue;
			for (size_t k = 0; k < p->len; k++)
				if (s[k] >= 0x7F || (s[k] < 0x20 && s[k] != '\t' &&
						     s[k] != '\n' && s[k] != '\r')) {
					fast = 0;
					break;
				}
		}
		if (fast) {
			stage(ws, cur);
			for (size_t i = 0; i < ws->pl[cur].n; i++) {
				const struct piece *p = &ws->pl[cur].v[i];
				struct arena *dst = &ws->ar[cur ^ 1];
				size_t at = dst->len;

				if (piece_copy(ws, cur, p))
					return -1;
				if (p->id >= 0)
					continue;
				for (size_t k = 0; k < p->len; k++) {
					char c = dst->s[at + k];

					if (n->clean_text && (c == '\t' || c == '\n' || c == '\r'))
						c = ' ';
					if (n->lowercase && c >= 'A' && c <= 'Z')
						c = (char)(c + 32);
					dst->s[at + k] = c;
				}
			}
			return cur ^ 1;
		}

		if (n->clean_text) {
			stage(ws, cur);
			for (size_t i = 0; i < ws->pl[cur].n; i++) {
				const struct piece *p = &ws->pl[cur].v[i];
				int r = p->id >= 0 ? piece_copy(ws, cur, p) :
					do_filter_map(ws, cur, p, keep_bert_clean,
						      map_bert_ws, n);
				if (r)
					return -1;
			}
			cur ^= 1;
		}
		if (n->chinese) {
			stage(ws, cur);
			for (size_t i = 0; i < ws->pl[cur].n; i++) {
				const struct piece *p = &ws->pl[cur].v[i];

				if (p->id >= 0 ? piece_copy(ws, cur, p) :
				    do_chinese(ws, cur, p))
					return -1;
			}
			cur ^= 1;
		}
		memset(&sub, 0, sizeof(sub));
		if (n->strip_accents) {
			sub.type = N_NFD;
			cur = tok_norm_apply(&sub, ws, cur);
			if (cur < 0)
				return -1;
			sub.type = N_STRIP_MN;
			cur = tok_norm_apply(&sub, ws, cur);
			if (cur < 0)
				return -1;
		}
		if (n->lowercase) {
			sub.type = N_LOWER;
			cur = tok_norm_apply(&sub, ws, cur);
		}
		return cur;
	}
	stage(ws, cur);
	for (size_t i = 0; i < ws->pl[cur].n; i++) {
		const struct piece *p = &ws->pl[cur].v[i];

		if (p->id >= 0 ? piece_copy(ws, cur, p) : norm_one(n, ws, cur, p))
			return -1;
	}
	return cur ^ 1;
}

int tok_replace_space(struct tok_ws *ws, int cur, const struct piece *p,
		      const char *rep, size_t rl)
{
	struct arena *src = &ws->ar[cur], *dst = &ws->ar[cur ^ 1];
	const char *s = src->s + p->off;
	const struct al *sal = src->al + p->off;
	struct piece np = *p;

	if (tok_ar_reserve(dst, p->len * rl))
		return -1;
	np.off = (uint32_t)dst->len;
	for (size_t i = 0; i < p->len; i++) {
		if (s[i] == ' ') {
			memcpy(dst->s + dst->len, rep, rl);
			for (size_t j = 0; j < rl; j++)
				dst->al[dst->len + j] = sal[i];
			dst->len += rl;
		} else {
			dst->s[dst->len] = s[i];
			dst->al[dst->len++] = sal[i];
		}
	}
	np.len = (uint32_t)(dst->len - np.off);
	return tok_pl_push(&ws->pl[cur ^ 1], np);
}
