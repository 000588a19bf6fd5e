/* lib/tok/util.c: hash maps, regexes, arenas and HF-style transforms. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tok/internal.h"

/* ---- hashing ---- */

uint64_t tok_hash(const char *k, size_t len)
{
	/* FNV-1a over 8-byte words, then a final mix (fast on short keys) */
	uint64_t h = 0xcbf29ce484222325ull ^ len;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, k + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

int tok_smap_init(struct smap *m, size_t hint)
{
	size_t sz = 16;

	memset(m, 0, sizeof(*m));
	while (sz < hint * 2)
		sz <<= 1;
	m->slots = calloc(sz, sizeof(*m->slots));
	if (!m->slots)
		return -1;
	m->mask = sz - 1;
	return 0;
}

void tok_smap_free(struct smap *m)
{
	free(m->slots);
	free(m->koff);
	free(m->klen);
	free(m->val);
	free(m->keys);
	memset(m, 0, sizeof(*m));
}

static int smap_grow(struct smap *m)
{
	size_t sz = (m->mask + 1) * 2;
	uint32_t *s = calloc(sz, sizeof(*s));

	if (!s)
		return -1;
	for (size_t e = 0; e < m->n; e++) {
		size_t i = tok_hash(m->keys + m->koff[e], m->klen[e]) & (sz - 1);

		while (s[i])
			i = (i + 1) & (sz - 1);
		s[i] = (uint32_t)e + 1;
	}
	free(m->slots);
	m->slots = s;
	m->mask = sz - 1;
	return 0;
}

int tok_smap_put(struct smap *m, const char *k, size_t len, uint32_t v)
{
	size_t i;

	if ((m->n + 1) * 2 > m->mask + 1 && smap_grow(m))
		return -1;
	i = tok_hash(k, len) & m->mask;
	for (; m->slots[i]; i = (i + 1) & m->mask) {
		uint32_t e = m->slots[i] - 1;

		if (m->klen[e] == len && !memcmp(m->keys + m->koff[e], k, len)) {
			m->val[e] = v;
			return 0;
		}
	}
	if (m->n == m->cap) {
		size_t c = m->cap ? m->cap * 2 : 64;
		uint32_t *a = realloc(m->koff, c * sizeof(*a));

		if (!a)
			return -1;
		m->koff = a;
		a = realloc(m->klen, c * sizeof(*a));
		if (!a)
			return -1;
		m->klen = a;
		a = realloc(m->val, c * sizeof(*a));
		if (!a)
			return -1;
		m->val = a;
		m->cap = c;
	}
	if (m->klen_total + len + 1 > m->kcap) {
		size_t c = m->kcap ? m->kcap : 1024;
		char *kk;

		while (c < m->klen_total + len + 1)
			c *= 2;
		kk = realloc(m->keys, c);
		if (!kk)
			return -1;
		m->keys = kk;
		m->kcap = c;
	}
	memcpy(m->keys + m->klen_total, k, len);
	m->keys[m->klen_total + len] = 0;
	m->koff[m->n] = (uint32_t)m->klen_total;
	m->klen[m->n] = (uint32_t)len;
	m->val[m->n] = v;
	m->klen_total += len + 1;
	m->slots[i] = (uint32_t)++m->n;
	return 0;
}

int tok_smap_get(const struct smap *m, const char *k, size_t len, uint32_t *v)
{
	size_t i;

	if (!m->slots)
		return 0;
	i = tok_hash(k, len) & m->mask;
	for (; m->slots[i]; i = (i + 1) & m->mask) {
		uint32_t e = m->slots[i] - 1;

		if (m->klen[e] == len && !memcmp(m->keys + m->koff[e], k, len)) {
			*v = m->val[e];
			return 1;
		}
	}
	return 0;
}

int tok_pmap_init(struct pmap *m, size_t n)
{
	size_t sz = 16;

	while (sz < n * 2)
		sz <<= 1;
	m->keys = calloc(sz, sizeof(*m->keys));
	m->rank = malloc(sz * sizeof(*m->rank));
	m->id = malloc(sz * sizeof(*m->id));
	m->mask = sz - 1;
	m->n = 0;
	if (!m->keys || !m->rank || !m->id)
		return -1;
	return 0;
}

void tok_pmap_free(struct pmap *m)
{
	free(m->keys);
	free(m->rank);
	free(m->id);
	memset(m, 0, sizeof(*m));
}

/* The first rank wins for a repeated pair, as HF's HashMap collect keeps
 * the last: both are rare; we keep the lowest rank. */
int tok_pmap_put(struct pmap *m, uint32_t a, uint32_t b, uint32_t rank,
	     uint32_t id)
{
	uint64_t k = (((uint64_t)a << 32) | b) + 1;
	size_t i = (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20) & m->mask;

	if ((m->n + 1) * 2 > m->mask + 1)
		return -1;
	for (;; i = (i + 1) & m->mask) {
		if (m->keys[i] == k) {
			m->rank[i] = rank;
			m->id[i] = id;
			return 0;
		}
		if (!m->keys[i])
			break;
	}
	m->keys[i] = k;
	m->rank[i] = rank;
	m->id[i] = id;
	m->n++;
	return 0;
}

/* ---- regex ---- */

/* Rust/Oniguruma \w and \s differ from PCRE2's UCP defaults; rewrite the
 * escapes (outside and inside classes) into explicit property sets. */
static const char RX_W[] = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}";
static const char RX_S[] = "\\p{White_Space}";

static int sb_add(char **b, size_t *n, size_t *cap, const char *s, size_t len)
{
	if (*n + len + 1 > *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		char *nb;

		while (c < *n + len + 1)
			c *= 2;
		nb = realloc(*b, c);
		if (!nb)
			return -1;
		*b = nb;
		*cap = c;
	}
	memcpy(*b + *n, s, len);
	*n += len;
	(*b)[*n] = 0;
	return 0;
}

static char *rx_rewrite(const char *p, size_t len, int literal)
{
	char *b = NULL;
	size_t n = 0, cap = 0;
	int in_class = 0;

	if (sb_add(&b, &n, &cap, "", 0))
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		int r = 0;

		if (literal) {
			if (strchr("\\^$.|?*+()[]{}", c) && c) {
				char e[2] = { '\\', c };

				r = sb_add(&b, &n, &cap, e, 2);
			} else {
				r = sb_add(&b, &n, &cap, &c, 1);
			}
		} else if (c == '\\' && i + 1 < len) {
			char d = p[i + 1];

			i++;
			if (d == 'w' || d == 's') {
				const char *cls = d == 'w' ? RX_W : RX_S;

				if (!in_class)
					r = sb_add(&b, &n, &cap, "[", 1);
				if (!r)
					r = sb_add(&b, &n, &cap, cls, strlen(cls));
				if (!r && !in_class)
					r = sb_add(&b, &n, &cap, "]", 1);
			} else if ((d == 'W' || d == 'S') && !in_class) {
				const char *cls = d == 'W' ? RX_W : RX_S;

				r = sb_add(&b, &n, &cap, "[^", 2);
				if (!r)
					r = sb_add(&b, &n, &cap, cls, strlen(cls));
				if (!r)
					r = sb_add(&b, &n, &cap, "]", 1);
			} else {
				char e[2] = { '\\', d };

				r = sb_add(&b, &n, &cap, e, 2);
			}
		} else {
			if (c == '[' && !in_class) {
				in_class = 1;
				r = sb_add(&b, &n, &cap, &c, 1);
				/* a leading ] or ^] is literal */
				if (!r && i + 1 < len && p[i + 1] == '^') {
					r = sb_add(&b, &n, &cap, "^", 1);
					i++;
				}
				if (!r && i + 1 < len && p[i + 1] == ']') {
					r = sb_add(&b, &n, &cap, "\\]", 2);
					i++;
				}
			} else if (c == '[' && in_class) {
				in_class++;
				r = sb_add(&b, &n, &cap, &c, 1);
			} else if (c == ']' && in_class) {
				in_class--;
				r = sb_add(&b, &n, &cap, &c, 1);
			} else {
				r = sb_add(&b, &n, &cap, &c, 1);
			}
		}
		if (r) {
			free(b);
			return NULL;
		}
	}
	return b;
}

int tok_rx_compile(struct rx *r, const char *pat, size_t len, int literal,
	       const char *where, struct hf_err *err)
{
	int ec;
	PCRE2_SIZE eo;
	char *p = rx_rewrite(pat, len, literal);

	memset(r, 0, sizeof(*r));
	if (!p)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	r->code = pcre2_compile((PCRE2_SPTR)p, strlen(p),
				PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK,
				&ec, &eo, NULL);
	free(p);
	if (!r->code) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(ec, msg, sizeof(msg));
		return hf_err_set(err, HF_EFORMAT,
				  "%s: bad regex '%.*s': %s at offset %zu",
				  where, (int)(len > 200 ? 200 : len), pat,
				  (char *)msg, (size_t)eo);
	}
	r->jit = pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0;
	return 0;
}

void tok_rx_free(struct rx *r)
{
	if (r->code)
		pcre2_code_free(r->code);
	r->code = NULL;
}

/* ---- byte level ---- */

uint32_t tok_byte2cp[256];
uint8_t tok_cp2byte_ok[0x144];
uint8_t tok_cp2byte[0x144];

static void bytelevel_table(void)
{
	uint32_t n = 0;

	for (int b = 0; b < 256; b++) {
		int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
			   (b >= 0xAE && b <= 0xFF);
		uint32_t cp = keep ? (uint32_t)b : 0x100 + n++;

		tok_cp2byte_ok[cp] = 1;
		tok_cp2byte[cp] = (uint8_t)b;
		tok_byte2cp[b] = cp;
	}
}

void tok_bytelevel_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, bytelevel_table);
}

/* ---- unicode ---- */

int tok_is_whitespace(uint32_t c)
{
	return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
	       c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

uint32_t tok_decode1(const char *s, size_t len, size_t *n)
{
	const unsigned char *u = (const unsigned char *)s;

	if (u[0] < 0x80) {
		*n = 1;
		return u[0];
	}
	if ((u[0] & 0xE0) == 0xC0 && len >= 2) {
		*n = 2;
		return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
	}
	if ((u[0] & 0xF0) == 0xE0 && len >= 3) {
		*n = 3;
		return ((uint32_t)(u[0] & 0x0F) << 12) |
		       ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
	}
	if (len >= 4) {
		*n = 4;
		return ((uint32_t)(u[0] & 0x07) << 18) |
		       ((uint32_t)(u[1] & 0x3F) << 12) |
		       ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
	}
	*n = 1;
	return 0xFFFD;
}

/* ---- arenas ---- */

int tok_ar_reserve(struct arena *a, size_t extra)
{
	size_t c;
	char *s;
	struct al *al;

	if (a->len + extra <= a->cap)
		return 0;
	c = a->cap ? a->cap * 2 : 4096;
	while (c < a->len + extra)
		c *= 2;
	s = realloc(a->s, c);
	if (!s)
		return -1;
	a->s = s;
	al = realloc(a->al, c * sizeof(*al));
	if (!al)
		return -1;
	a->al = al;
	a->cap = c;
	return 0;
}

int tok_pl_push(struct plist *l, struct piece p)
{
	if (l->n == l->cap) {
		size_t c = l->cap ? l->cap * 2 : 64;
		struct piece *v = realloc(l->v, c * sizeof(*v));

		if (!v)
			return -1;
		l->v = v;
		l->cap = c;
	}
	l->v[l->n++] = p;
	return 0;
}

int tok_piece_slice(struct tok_ws *ws, int cur, const struct piece *p, size_t a,
		size_t b)
{
	struct arena *src = &ws->ar[cur], *dst = &ws->ar[cur ^ 1];
	struct piece np;

	if (a >= b)
		return 0;	/* HF drops empty splits */
	if (tok_ar_reserve(dst, b - a))
		return -1;
	np.off = (uint32_t)dst->len;
	np.len = (uint32_t)(b - a);
	np.shift = src->al[p->off + a].s;
	np.id = -1;
	memcpy(dst->s + dst->len, src->s + p->off + a, b - a);
	memcpy(dst->al + dst->len, src->al + p->off + a, (b - a) * sizeof(struct al));
	dst->len += b - a;
	return tok_pl_push(&ws->pl[cur ^ 1], np);
}

static size_t u8len(uint32_t c)
{
	return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

size_t tok_u8put(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xC0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xE0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		o[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	o[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* NormalizedString::transform over a whole piece: each (c, change) of
 * ws->tf; change 1 inserts a char aligned like the byte before it, 0
 * replaces the next source char, -N replaces it and removes N more. An
 * empty result leaves no piece (HF drops empty splits later anyway, and an
 * empty piece tokenizes to nothing). */
int tok_piece_transform(struct tok_ws *ws, int cur, const struct piece *p,
		    size_t initial)
{
	struct arena *src = &ws->ar[cur], *dst = &ws->ar[cur ^ 1];
	const char *s = src->s + p->off;
	const struct al *sal = src->al + p->off;
	size_t off = 0, need = 0;
	struct piece np;

	for (size_t i = 0; i < initial && off < p->len; i++) {
		size_t k;

		tok_decode1(s + off, p->len - off, &k);
		off += k;
	}
	for (size_t i = 0; i < ws->tf.n; i++)
		need += u8len(ws->tf.cp[i]);
	if (tok_ar_reserve(dst, need))
		return -1;
	np.off = (uint32_t)dst->len;
	np.id = -1;
	for (size_t i = 0; i < ws->tf.n; i++) {
		uint32_t c = ws->tf.cp[i];
		int32_t ch = ws->tf.chg[i];
		struct al a;
		size_t k, w;

		if (ch > 0) {
			if (off < 1) {
				a.s = a.e = p->shift;
			} else {
				a = sal[off - 1];
			}
		} else {
			if (off < p->len) {
				a = sal[off];
				tok_decode1(s + off, p->len - off, &k);
				off += k;
			} else {
				/* past the end: HF would panic; align to the end */
				a = p->len ? sal[p->len - 1] : (struct al){ p->shift, p->shift };
			}
			for (int32_t r = 0; r < -ch && off < p->len; r++) {
				tok_decode1(s + off, p->len - off, &k);
				off += k;
			}
		}
		w = tok_u8put(c, dst->s + dst->len);
		for (size_t j = 0; j < w; j++)
			dst->al[dst->len + j] = a;
		dst->len += w;
	}
	np.len = (uint32_t)(dst->len - np.off);
	/* HF keeps the piece's original offsets when it transforms in place */
	np.shift = p->shift;
	if (!np.len)
		return 0;
	return tok_pl_push(&ws->pl[cur ^ 1], np);
}

int tok_mtoks_push(struct mtoks *t, uint32_t id, uint32_t a, uint32_t b, int text)
{
	if (t->n == t->cap) {
		size_t c = t->cap ? t->cap * 2 : 256;
		struct mtok *v = realloc(t->v, c * sizeof(*v));

		if (!v)
			return -1;
		t->v = v;
		t->cap = c;
	}
	t->v[t->n++] = (struct mtok){ id, a, b, text };
	return 0;
}

int tok_ws_init(struct tok_ws *ws)
{
	memset(ws, 0, sizeof(*ws));
	ws->md = pcre2_match_data_create(4, NULL);
	return ws->md ? 0 : -1;
}

void tok_ws_free(struct tok_ws *ws)
{
	for (int i = 0; i < 2; i++) {
		free(ws->ar[i].s);
		free(ws->ar[i].al);
		free(ws->pl[i].v);
	}
	free(ws->ml.v);
	free(ws->heap);
	free(ws->tf.cp);
	free(ws->tf.chg);
	free(ws->mt.v);
	if (ws->md)
		pcre2_match_data_free(ws->md);
	if (ws->md_big)
		pcre2_match_data_free(ws->md_big);
	free(ws->sym_id);
	free(ws->sym_len);
	free(ws->sym_rank);
	free(ws->sym_next);
	free(ws->sym_prev);
	free(ws->u_score);
	free(ws->u_start);
	free(ws->u_id);
	free(ws->c_hash);
	free(ws->c_koff);
	free(ws->c_klen);
	free(ws->c_toff);
	free(ws->c_tn);
	free(ws->c_keys);
	free(ws->c_toks);
	free(ws->buf);
	memset(ws, 0, sizeof(*ws));
}
