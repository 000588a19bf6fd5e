/* lib/tok/pretok.c: pre-tokenizers: split pieces into words. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tok/internal.h"

int tok_replace_piece(struct tok_ws *ws, int cur, const struct piece *p,
		      const struct rx *rx, const char *with);

static int ml_push(struct mlist *l, uint32_t a, uint32_t b, int m)
{
	if (l->n == l->cap) {
		size_t c = l->cap ? l->cap * 2 : 256;
		struct mseg *v = realloc(l->v, c * sizeof(*v));

		if (!v)
			return -1;
		l->v = v;
		l->cap = c;
	}
	l->v[l->n++] = (struct mseg){ a, b, m };
	return 0;
}

int tok_is_punct(uint32_t c)
{
	if (c < 128)
		return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) ||
		       (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
	return tok_ucd_is_punct(c);	/* unicode_categories, Unicode 8.0 */
}

static int is_numeric(uint32_t c)
{
	if (c < 128)
		return c >= '0' && c <= '9';
	switch (utf8proc_category((utf8proc_int32_t)c)) {
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_NO:
		return 1;
	default:
		return 0;
	}
}

/* Regex matches of a piece (Pattern::find_matches for a regex). */
static int find_rx(struct tok_ws *ws, const struct rx *rx, const char *s,
		   size_t n, struct mlist *ml)
{
	size_t pos = 0, prev = 0;

	ml->n = 0;
	while (pos <= n) {
		int rc = rx->jit ? pcre2_jit_match(rx->code, (PCRE2_SPTR)s, n, pos,
						   PCRE2_NO_UTF_CHECK, ws->md, NULL)
				 : pcre2_match(rx->code, (PCRE2_SPTR)s, n, pos,
					       PCRE2_NO_UTF_CHECK, ws->md, NULL);
		PCRE2_SIZE *ov;
		size_t a, b;

		if (rc < 0)
			break;
		ov = pcre2_get_ovector_pointer(ws->md);
		a = ov[0];
		b = ov[1];
		if (a == b) {
			size_t k = 1;

			if (a >= n)
				break;
			tok_decode1(s + a, n - a, &k);
			pos = a + k;
			continue;
		}
		if (prev != a && ml_push(ml, (uint32_t)prev, (uint32_t)a, 0))
			return -1;
		if (ml_push(ml, (uint32_t)a, (uint32_t)b, 1))
			return -1;
		prev = pos = b;
	}
	if (prev != n && ml_push(ml, (uint32_t)prev, (uint32_t)n, 0))
		return -1;
	return 0;
}

/* Char predicate matches: each matching char is a match of its own. */
static int find_pred(const char *s, size_t n, int (*pred)(uint32_t, const void *),
		     const void *arg, struct mlist *ml)
{
	size_t prev = 0;

	ml->n = 0;
	for (size_t i = 0; i < n;) {
		size_t k;
		uint32_t c = tok_decode1(s + i, n - i, &k);

		if (pred(c, arg)) {
			if (prev != i && ml_push(ml, (uint32_t)prev, (uint32_t)i, 0))
				return -1;
			if (ml_push(ml, (uint32_t)i, (uint32_t)(i + k), 1))
				return -1;
			prev = i + k;
		}
		i += k;
	}
	if (prev != n && ml_push(ml, (uint32_t)prev, (uint32_t)n, 0))
		return -1;
	return 0;
}

/* NormalizedString::split: apply the behavior and emit the slices. */
static int split_emit(struct tok_ws *ws, int cur, const struct piece *p,
		      struct mlist *ml, enum split_behavior b, int invert)
{
	struct mseg *v = ml->v;
	size_t n = ml->n, w = 0;
	int prevm = 0;

	if (invert)
		for (size_t i = 0; i < n; i++)
			v[i].m = !v[i].m;
	switch (b) {
	case B_ISOLATED:
		for (size_t i = 0; i < n; i++)
			v[i].m = 0;
		w = n;
		break;
	case B_REMOVED:
		w = n;
		break;
	case B_CONTIGUOUS:
		for (size_t i = 0; i < n; i++) {
			int m = v[i].m;

			if (m == prevm && w)
				v[w - 1].b = v[i].b;
			else
				v[w++] = (struct mseg){ v[i].a, v[i].b, 0 };
			prevm = m;
		}
		break;
	case B_MERGED_PREV:
		for (size_t i = 0; i < n; i++) {
			int m = v[i].m;

			if (m && !prevm && w)
				v[w - 1].b = v[i].b;
			else
				v[w++] = (struct mseg){ v[i].a, v[i].b, 0 };
			prevm = m;
		}
		break;
	case B_MERGED_NEXT:
		/* reverse fold, then the result reads back to front */
		for (size_t i = n; i-- > 0;) {
			int m = v[i].m;

			if (m && !prevm && w)
				v[n - w].a = v[i].a;
			else {
				w++;
				v[n - w] = (struct mseg){ v[i].a, v[i].b, 0 };
			}
			prevm = m;
		}
		memmove(v, v + n - w, w * sizeof(*v));
		break;
	}
	for (size_t i = 0; i < w; i++) {
		if (b == B_REMOVED && v[i].m)
			continue;
		if (tok_piece_slice(ws, cur, p, v[i].a, v[i].b))
			return -1;
	}
	return 0;
}

static int pred_ws(uint32_t c, const void *a)
{
	return tok_is_whitespace(c);
}

static int pred_punct(uint32_t c, const void *a)
{
	return tok_is_punct(c);
}

static int pred_num(uint32_t c, const void *a)
{
	return is_numeric(c);
}

static int pred_eq(uint32_t c, const void *a)
{
	return c == *(const uint32_t *)a;
}

static int piece_keep(struct tok_ws *ws, int cur, const struct piece *p)
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

/* HF NormalizedString::prepend of one char */
static int prepend_char(struct tok_ws *ws, int cur, const struct piece *p,
			uint32_t c)
{
	const char *s = ws->ar[cur].s + p->off;
	size_t k;
	uint32_t first = tok_decode1(s, p->len, &k);

	ws->tf.n = 0;
	if (tok_tf_push(&ws->tf, c, 0) || tok_tf_push(&ws->tf, first, 1))
		return -1;
	for (size_t i = k; i < p->len;) {
		uint32_t d = tok_decode1(s + i, p->len - i, &k);

		i += k;
		if (tok_tf_push(&ws->tf, d, 0))
			return -1;
	}
	return tok_piece_transform(ws, cur, p, 0);
}

/* ---- UnicodeScripts: split where the script changes ---- */

/* PCRE2 knows the scripts; one alternation with a group per script tells
 * which one a char has. Names PCRE2 does not know are left out. */
static const char *const script_names[] = {
	"Adlam", "Ahom", "Anatolian_Hieroglyphs", "Arabic", "Armenian", "Avestan",
	"Balinese", "Bamum", "Bassa_Vah", "Batak", "Bengali", "Bhaiksuki",
	"Bopomofo", "Brahmi", "Braille", "Buginese", "Buhid",
	"Canadian_Aboriginal", "Carian", "Caucasian_Albanian", "Chakma", "Cham",
	"Cherokee", "Chorasmian", "Common", "Coptic", "Cuneiform", "Cypriot",
	"Cypro_Minoan", "Cyrillic", "Deseret", "Devanagari", "Dives_Akuru",
	"Dogra", "Duployan", "Egyptian_Hieroglyphs", "Elbasan", "Elymaic",
	"Ethiopic", "Georgian", "Glagolitic", "Gothic", "Grantha", "Greek",
	"Gujarati", "Gunjala_Gondi", "Gurmukhi", "Han", "Hangul",
	"Hanifi_Rohingya", "Hanunoo", "Hatran", "Hebrew", "Hiragana",
	"Imperial_Aramaic", "Inherited", "Inscriptional_Pahlavi",
	"Inscriptional_Parthian", "Javanese", "Kaithi", "Kannada", "Katakana",
	"Kawi", "Kayah_Li", "Kharoshthi", "Khitan_Small_Script", "Khmer",
	"Khojki", "Khudawadi", "Lao", "Latin", "Lepcha", "Limbu", "Linear_A",
	"Linear_B", "Lisu", "Lycian", "Lydian", "Mahajani", "Makasar",
	"Malayalam", "Mandaic", "Manichaean", "Marchen", "Masaram_Gondi",
	"Medefaidrin", "Meetei_Mayek", "Mende_Kikakui", "Meroitic_Cursive",
	"Meroitic_Hieroglyphs", "Miao", "Modi", "Mongolian", "Mro", "Multani",
	"Myanmar", "Nabataean", "Nag_Mundari", "Nandinagari", "New_Tai_Lue",
	"Newa", "Nko", "Nushu", "Nyiakeng_Puachue_Hmong", "Ogham", "Ol_Chiki",
	"Old_Hungarian", "Old_Italic", "Old_North_Arabian", "Old_Permic",
	"Old_Persian", "Old_Sogdian", "Old_South_Arabian", "Old_Turkic",
	"Old_Uyghur", "Oriya", "Osage", "Osmanya", "Pahawh_Hmong", "Palmyrene",
	"Pau_Cin_Hau", "Phags_Pa", "Phoenician", "Psalter_Pahlavi", "Rejang",
	"Runic", "Samaritan", "Saurashtra", "Sharada", "Shavian", "Siddham",
	"SignWriting", "Sinhala", "Sogdian", "Sora_Sompeng", "Soyombo",
	"Sundanese", "Syloti_Nagri", "Syriac", "Tagalog", "Tagbanwa", "Tai_Le",
	"Tai_Tham", "Tai_Viet", "Takri", "Tamil", "Tangsa", "Tangut", "Telugu",
	"Thaana", "Thai", "Tibetan", "Tifinagh", "Tirhuta", "Toto", "Ugaritic",
	"Vai", "Vithkuqi", "Wancho", "Warang_Citi", "Yezidi", "Yi",
	"Zanabazar_Square",
};

#define N_SCRIPTS (sizeof(script_names) / sizeof(script_names[0]))

int tok_scripts_compile(struct pretok *pt, const char *where, struct hf_err *err)
{
	char *pat = malloc(N_SCRIPTS * 40 + 1);
	size_t n = 0;
	int ng = 0;

	if (!pat)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	pt->nsub = 0;
	pt->han = pt->hiragana = pt->katakana = -3;
	for (size_t i = 0; i < N_SCRIPTS; i++) {
		if (!strcmp(script_names[i], "Han"))
			pt->han = (int)i;
		else if (!strcmp(script_names[i], "Hiragana"))
			pt->hiragana = (int)i;
		else if (!strcmp(script_names[i], "Katakana"))
			pt->katakana = (int)i;
	}
	pt->script_of_group = calloc(N_SCRIPTS + 1, sizeof(*pt->script_of_group));
	if (!pt->script_of_group) {
		free(pat);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < N_SCRIPTS; i++) {
		char one[64];
		int ec;
		PCRE2_SIZE eo;
		pcre2_code *c;

		snprintf(one, sizeof(one), "\\p{sc:%s}", script_names[i]);
		c = pcre2_compile((PCRE2_SPTR)one, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
				  &ec, &eo, NULL);
		if (!c)
			continue;
		pcre2_code_free(c);
		n += (size_t)sprintf(pat + n, "%s(%s)", ng ? "|" : "", one);
		pt->script_of_group[++ng] = (int)i;
	}
	pt->ngroups = ng;
	pt->rx.code = pcre2_compile((PCRE2_SPTR)pat, n, PCRE2_UTF | PCRE2_ANCHORED,
				    &(int){ 0 }, &(PCRE2_SIZE){ 0 }, NULL);
	free(pat);
	if (!pt->rx.code)
		return hf_err_set(err, HF_EINTERNAL, "%s: cannot build the script table", where);
	pt->rx.jit = pcre2_jit_compile(pt->rx.code, PCRE2_JIT_COMPLETE) == 0;
	return 0;
}

/* pre_tokenizers/unicode_scripts: fixed_script() folds Hiragana and
 * Katakana (and U+30FC) into Han; ' ' is "Any" and never splits. */
static int script_of(const struct pretok *pt, struct tok_ws *ws, const char *s,
		     size_t n, size_t at, uint32_t c)
{
	PCRE2_SIZE *ov;
	int rc, id = -2;

	if (c == ' ')
		return -1;
	if (c == 0x30FC)
		return pt->han;
	rc = pt->rx.jit ? pcre2_jit_match(pt->rx.code, (PCRE2_SPTR)s, n, at,
					  PCRE2_NO_UTF_CHECK, ws->md_big, NULL)
			: pcre2_match(pt->rx.code, (PCRE2_SPTR)s, n, at,
				      PCRE2_NO_UTF_CHECK, ws->md_big, NULL);
	if (rc > 1) {
		ov = pcre2_get_ovector_pointer(ws->md_big);
		for (int g = 1; g < rc; g++)
			if (ov[2 * g] != PCRE2_UNSET) {
				id = pt->script_of_group[g];
				break;
			}
	}
	if (id == pt->hiragana || id == pt->katakana)
		id = pt->han;
	return id;
}

static int scripts_split(const struct pretok *pt, struct tok_ws *ws, int cur,
			 const struct piece *p)
{
	const char *s = ws->ar[cur].s + p->off;
	int last = -3;	/* none yet */
	size_t start = (size_t)-1;

	if (!ws->md_big && !(ws->md_big = pcre2_match_data_create(N_SCRIPTS + 2, NULL)))
		return -1;
	for (size_t i = 0; i < p->len;) {
		size_t k;
		uint32_t c = tok_decode1(s + i, p->len - i, &k);
		int sc = script_of(pt, ws, s, p->len, i, c);

		if (sc != -1 && last != sc) {
			if (start != (size_t)-1 && tok_piece_slice(ws, cur, p, start, i))
				return -1;
			start = i;
		}
		if (sc != -1)
			last = sc;
		i += k;
	}
	if (start != (size_t)-1 && tok_piece_slice(ws, cur, p, start, p->len))
		return -1;
	return 0;
}

static int stage(struct tok_ws *ws, int cur)
{
	ws->ar[cur ^ 1].len = 0;
	ws->pl[cur ^ 1].n = 0;
	return cur;
}

/* Run f on each untokenized piece of list cur; pieces already tokens are
 * kept. Returns the new cur. */
#define FOR_PIECES(ws, cur, ...)						\
	do {									\
		stage(ws, cur);							\
		for (size_t pi_ = 0; pi_ < (ws)->pl[cur].n; pi_++) {		\
			const struct piece *p = &(ws)->pl[cur].v[pi_];		\
			if (p->id >= 0) {					\
				if (piece_keep(ws, cur, p))			\
					return -1;				\
				continue;					\
			}							\
			__VA_ARGS__							\
		}								\
		cur ^= 1;							\
	} while (0)

static int bytelevel_map(struct tok_ws *ws, int cur, const struct piece *p)
{
	const unsigned char *s = (const unsigned char *)ws->ar[cur].s + p->off;
	struct arena *src = &ws->ar[cur], *dst = &ws->ar[cur ^ 1];
	struct piece np = *p;

	/* every byte becomes one char of the byte-level alphabet, aligned
	 * like its char (the transform of HF's ByteLevel pre-tokenizer) */
	if (tok_ar_reserve(dst, p->len * 2))
		return -1;
	np.off = (uint32_t)dst->len;
	for (size_t i = 0; i < p->len; i++) {
		uint32_t c = tok_byte2cp[s[i]];
		struct al a = src->al[p->off + i];
		char *o = dst->s + dst->len;

		/* bytes of one char share the char's alignment already */
		if (c < 0x80) {
			o[0] = (char)c;
			dst->al[dst->len++] = a;
		} else {
			o[0] = (char)(0xC0 | (c >> 6));
			o[1] = (char)(0x80 | (c & 0x3F));
			dst->al[dst->len++] = a;
			dst->al[dst->len++] = a;
		}
	}
	np.len = (uint32_t)(dst->len - np.off);
	return tok_pl_push(&ws->pl[cur ^ 1], np);
}

int tok_pretok_apply(const struct pretok *pt, struct tok_ws *ws, int cur,
		 size_t orig_start)
{
	struct mlist *ml = &ws->ml;

	switch (pt->type) {
	case P_SEQ:
		for (size_t i = 0; i < pt->nsub && cur >= 0; i++)
			cur = tok_pretok_apply(&pt->sub[i], ws, cur, orig_start);
		return cur;
	case P_BYTELEVEL:
		if (pt->add_prefix_space) {
			FOR_PIECES(ws, cur, {
				if (p->len && ws->ar[cur].s[p->off] != ' ') {
					if (prepend_char(ws, cur, p, ' '))
						return -1;
				} else if (piece_keep(ws, cur, p)) {
					return -1;
				}
			});
		}
		if (pt->use_regex) {
			FOR_PIECES(ws, cur, {
				if (find_rx(ws, &pt->rx, ws->ar[cur].s + p->off, p->len, ml) ||
				    split_emit(ws, cur, p, ml, B_ISOLATED, 0))
					return -1;
			});
		}
		FOR_PIECES(ws, cur, {
			if (bytelevel_map(ws, cur, p))
				return -1;
		});
		return cur;
	case P_SPLIT:
		FOR_PIECES(ws, cur, {
			if (find_rx(ws, &pt->rx, ws->ar[cur].s + p->off, p->len, ml) ||
			    split_emit(ws, cur, p, ml, pt->behavior, pt->invert))
				return -1;
		});
		return cur;
	case P_WHITESPACE:
		FOR_PIECES(ws, cur, {
			if (find_rx(ws, &pt->rx, ws->ar[cur].s + p->off, p->len, ml) ||
			    split_emit(ws, cur, p, ml, B_REMOVED, 1))
				return -1;
		});
		return cur;
	case P_WHITESPACE_SPLIT:
		FOR_PIECES(ws, cur, {
			if (find_pred(ws->ar[cur].s + p->off, p->len, pred_ws, NULL, ml) ||
			    split_emit(ws, cur, p, ml, B_REMOVED, 0))
				return -1;
		});
		return cur;
	case P_BERT:
		FOR_PIECES(ws, cur, {
			if (find_pred(ws->ar[cur].s + p->off, p->len, pred_ws, NULL, ml) ||
			    split_emit(ws, cur, p, ml, B_REMOVED, 0))
				return -1;
		});
		/* fallthrough */
	case P_PUNCT:
		FOR_PIECES(ws, cur, {
			if (find_pred(ws->ar[cur].s + p->off, p->len, pred_punct, NULL, ml) ||
			    split_emit(ws, cur, p, ml,
				       pt->type == P_BERT ? B_ISOLATED : pt->behavior, 0))
				return -1;
		});
		return cur;
	case P_DIGITS:
		FOR_PIECES(ws, cur, {
			if (find_pred(ws->ar[cur].s + p->off, p->len, pred_num, NULL, ml) ||
			    split_emit(ws, cur, p, ml,
				       pt->individual_digits ? B_ISOLATED : B_CONTIGUOUS, 0))
				return -1;
		});
		return cur;
	case P_DELIM:
		FOR_PIECES(ws, cur, {
			if (find_pred(ws->ar[cur].s + p->off, p->len, pred_eq, &pt->delim, ml) ||
			    split_emit(ws, cur, p, ml, B_REMOVED, 0))
				return -1;
		});
		return cur;
	case P_FIXED:
		FOR_PIECES(ws, cur, {
			const char *s = ws->ar[cur].s + p->off;
			size_t i = 0, start = 0, nc = 0;

			while (i < p->len) {
				size_t k;

				tok_decode1(s + i, p->len - i, &k);
				i += k;
				if (++nc == pt->length || i == p->len) {
					if (tok_piece_slice(ws, cur, p, start, i))
						return -1;
					start = i;
					nc = 0;
				}
			}
		});
		return cur;
	case P_METASPACE: {
		char rep[4];
		size_t rl = 0;

		rl = tok_u8put(pt->replacement, rep);
		/* replace ' ' with the replacement, prepend it, split */
		FOR_PIECES(ws, cur, {
			const char *s = ws->ar[cur].s + p->off;
			int has_space = memchr(s, ' ', p->len) != NULL;

			if (has_space) {
				if (tok_replace_space(ws, cur, p, rep, rl))
					return -1;
			} else if (piece_keep(ws, cur, p)) {
				return -1;
			}
		});
		if (pt->scheme != PS_NEVER) {
			FOR_PIECES(ws, cur, {
				const char *s = ws->ar[cur].s + p->off;
				int starts = p->len >= rl && !memcmp(s, rep, rl);

				if (!starts && p->len &&
				    (pt->scheme == PS_ALWAYS || p->shift == orig_start)) {
					if (prepend_char(ws, cur, p, pt->replacement))
						return -1;
				} else if (piece_keep(ws, cur, p)) {
					return -1;
				}
			});
		}
		if (pt->split) {
			uint32_t r = pt->replacement;

			FOR_PIECES(ws, cur, {
				if (find_pred(ws->ar[cur].s + p->off, p->len, pred_eq, &r, ml) ||
				    split_emit(ws, cur, p, ml, B_MERGED_NEXT, 0))
					return -1;
			});
		}
		return cur;
	}
	case P_SCRIPTS:
		FOR_PIECES(ws, cur, {
			if (scripts_split(pt, ws, cur, p))
				return -1;
		});
		return cur;
	}
	return -1;
}
