/* lib/tok/model.c: the models (BPE, WordPiece, WordLevel, Unigram) and
 * the per-thread word cache in front of them. */
#include <stdlib.h>
#include <string.h>

#include "tok/internal.h"

#define NONE 0xFFFFFFFFu

static int buf_reserve(struct tok_ws *ws, size_t n)
{
	if (n > ws->buf_cap) {
		size_t c = ws->buf_cap ? ws->buf_cap : 256;
		char *b;

		while (c < n)
			c *= 2;
		b = realloc(ws->buf, c);
		if (!b)
			return -1;
		ws->buf = b;
		ws->buf_cap = c;
	}
	return 0;
}

static int sym_reserve(struct tok_ws *ws, size_t n)
{
	if (n > ws->sym_cap) {
		size_t c = ws->sym_cap ? ws->sym_cap : 64;

		while (c < n)
			c *= 2;
#define GROW(p) do { void *q_ = realloc(p, c * sizeof(*(p))); if (!q_) return -1; p = q_; } while (0)
		GROW(ws->sym_id);
		GROW(ws->sym_len);
		GROW(ws->sym_rank);
		GROW(ws->sym_next);
		GROW(ws->sym_prev);
#undef GROW
		ws->sym_cap = c;
	}
	return 0;
}

static int vocab_get(const struct model *m, const char *s, size_t n, uint32_t *id)
{
	return tok_smap_get(&m->v.map, s, n, id);
}

/* ---- BPE merge loop with a min-heap of (rank, position) ---- */

static int hless(struct hent a, struct hent b)
{
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static int bpe_heap(const struct model *m, struct tok_ws *ws, size_t ns)
{
	uint32_t *sid = ws->sym_id, *slen_ = ws->sym_len;
	int32_t *next = ws->sym_next, *prev = ws->sym_prev;
	size_t hn = 0;
	struct hent *heap_v = ws->heap;
	size_t heap_cap = ws->heap_cap;

	if (heap_cap < ns * 3 + 8) {
		struct hent *h = realloc(heap_v, (ns * 3 + 8) * sizeof(*h));

		if (!h)
			return -1;
		ws->heap = heap_v = h;
		ws->heap_cap = heap_cap = ns * 3 + 8;
	}
#define HPUSH(R, P) do {							\
		struct hent e_ = { (R), (P) };					\
		size_t k_ = hn++;						\
		if (hn > heap_cap) {						\
			struct hent *h_ = realloc(heap_v, heap_cap * 2 * sizeof(*h_)); \
			if (!h_)						\
				return -1;					\
			ws->heap = heap_v = h_;					\
			ws->heap_cap = heap_cap *= 2;				\
		}								\
		while (k_ > 0 && hless(e_, heap_v[(k_ - 1) / 2])) {		\
			heap_v[k_] = heap_v[(k_ - 1) / 2];			\
			k_ = (k_ - 1) / 2;					\
		}								\
		heap_v[k_] = e_;						\
	} while (0)
	for (size_t i = 0; i < ns; i++)
		if (ws->sym_rank[i] != NONE)
			HPUSH(ws->sym_rank[i], (int32_t)i);
	/* sym_len 0 marks a merged-away symbol */
	while (hn) {
		struct hent top = heap_v[0], last = heap_v[--hn];
		size_t k = 0;
		uint32_t r, nid;
		int32_t i = top.pos, j;

		/* sift last down from the root */
		for (;;) {
			size_t c = 2 * k + 1;

			if (c >= hn)
				break;
			if (c + 1 < hn && hless(heap_v[c + 1], heap_v[c]))
				c++;
			if (!hless(heap_v[c], last))
				break;
			heap_v[k] = heap_v[c];
			k = c;
		}
		if (hn)
			heap_v[k] = last;
		if (!slen_[i] || (j = next[i]) < 0)
			continue;
		if (!tok_pmap_get(&m->merges, sid[i], sid[j], &r, &nid) || r != top.rank)
			continue;
		sid[i] = nid;
		slen_[i] += slen_[j];
		slen_[j] = 0;
		next[i] = next[j];
		if (next[j] >= 0)
			prev[next[j]] = i;
		if (prev[i] >= 0 && tok_pmap_get(&m->merges, sid[prev[i]], sid[i], &r, &nid))
			HPUSH(r, prev[i]);
		if (next[i] >= 0 && tok_pmap_get(&m->merges, sid[i], sid[next[i]], &r, &nid))
			HPUSH(r, i);
	}
#undef HPUSH
	return 0;
}

/* ---- BPE (models/bpe/model.rs merge_word + word.rs merge_all) ---- */

static int bpe_word(const struct model *m, struct tok_ws *ws, const char *w,
		    size_t len)
{
	size_t ns = 0, plen = m->prefix ? strlen(m->prefix) : 0;
	size_t slen = m->suffix ? strlen(m->suffix) : 0;
	uint32_t unk_id = NONE, unk_len = 0, id;
	int have_unk = 0;
	uint32_t *sid, *slen_, *rank;
	int32_t *next, *prev;
	size_t off;

	if (m->ignore_merges && vocab_get(m, w, len, &id))
		return tok_mtoks_push(&ws->mt, id, 0, (uint32_t)len, 0);
	if (sym_reserve(ws, len + 1) || buf_reserve(ws, len + plen + slen + 8))
		return -1;
	sid = ws->sym_id;
	slen_ = ws->sym_len;
	for (size_t i = 0; i < len;) {
		size_t k;
		int found;
		unsigned char c0 = (unsigned char)w[i];

		tok_decode1(w + i, len - i, &k);
		const char *key = w + i;
		size_t kl = k;

		if (!plen && !slen && c0 < 0x80) {
			id = m->char_id[c0];
			found = id != NONE;
		} else {
			if ((i > 0 && plen) || (i + k == len && slen)) {
				char *b = ws->buf;

				kl = 0;
				if (i > 0 && plen) {
					memcpy(b, m->prefix, plen);
					kl = plen;
				}
				memcpy(b + kl, w + i, k);
				kl += k;
				if (i + k == len && slen) {
					memcpy(b + kl, m->suffix, slen);
					kl += slen;
				}
				key = b;
			}
			found = vocab_get(m, key, kl, &id);
		}
		if (!found && m->byte_fallback && m->have_bytes) {
			/* all bytes of the (prefixed) string, one token each; a
			 * pending unk stays pending, as in HF */
			int ok = 1;

			for (size_t j = 0; j < kl; j++)
				if (m->byte_id[(unsigned char)key[j]] == NONE)
					ok = 0;
			if (ok) {
				if (sym_reserve(ws, ns + kl + 2))
					return -1;
				sid = ws->sym_id;
				slen_ = ws->sym_len;
				for (size_t j = 0; j < kl; j++) {
					sid[ns] = m->byte_id[(unsigned char)key[j]];
					slen_[ns++] = 1;
				}
				i += k;
				continue;
			}
		}
		if (found) {
			if (have_unk) {
				sid[ns] = unk_id;
				slen_[ns++] = unk_len;
				have_unk = 0;
			}
			if (sym_reserve(ws, ns + 2))
				return -1;
			sid = ws->sym_id;
			slen_ = ws->sym_len;
			sid[ns] = id;
			slen_[ns++] = (uint32_t)k;
		} else if (m->unk_id >= 0) {
			if (have_unk && m->fuse_unk) {
				unk_len += (uint32_t)k;
			} else {
				if (have_unk) {
					sid[ns] = unk_id;
					slen_[ns++] = unk_len;
				}
				have_unk = 1;
				unk_id = (uint32_t)m->unk_id;
				unk_len = (uint32_t)k;
			}
		}
		i += k;
	}
	if (have_unk) {
		sid[ns] = unk_id;
		slen_[ns++] = unk_len;
	}
	if (!ns)
		return 0;
	rank = ws->sym_rank;
	next = ws->sym_next;
	prev = ws->sym_prev;
	for (size_t i = 0; i < ns; i++) {
		uint32_t r, nid;

		next[i] = i + 1 < ns ? (int32_t)(i + 1) : -1;
		prev[i] = (int32_t)i - 1;
		rank[i] = NONE;
		if (i + 1 < ns && tok_pmap_get(&m->merges, sid[i], sid[i + 1], &r, &nid))
			rank[i] = r;
	}
	/* merge the lowest-ranked adjacent pair (leftmost on ties) until none
	 * is left; the same order as HF's heap of (rank, position). Short
	 * words scan for the minimum; long ones use a heap like HF. */
	if (ns > 48) {
		if (bpe_heap(m, ws, ns))
			return -1;
	} else {
		for (;;) {
			uint32_t best = NONE, r, nid = 0;
			int32_t bi = -1, j;

			for (int32_t i = 0; i >= 0; i = next[i])
				if (rank[i] < best) {
					best = rank[i];
					bi = i;
				}
			if (bi < 0)
				break;
			j = next[bi];
			tok_pmap_get(&m->merges, sid[bi], sid[j], &r, &nid);
			sid[bi] = nid;
			slen_[bi] += slen_[j];
			next[bi] = next[j];
			if (next[j] >= 0)
				prev[next[j]] = bi;
			rank[bi] = NONE;
			if (next[bi] >= 0 && tok_pmap_get(&m->merges, sid[bi], sid[next[bi]], &r, &nid))
				rank[bi] = r;
			if (prev[bi] >= 0) {
				int32_t p = prev[bi];

				rank[p] = NONE;
				if (tok_pmap_get(&m->merges, sid[p], sid[bi], &r, &nid))
					rank[p] = r;
			}
		}
	}
	off = 0;
	for (int32_t i = 0; i >= 0; i = next[i]) {
		if (tok_mtoks_push(&ws->mt, sid[i], (uint32_t)off, (uint32_t)(off + slen_[i]), 0))
			return -1;
		off += slen_[i];
	}
	return 0;
}

/* ---- WordPiece (models/wordpiece/mod.rs) ---- */

static int wp_word(const struct model *m, struct tok_ws *ws, const char *w,
		   size_t len)
{
	size_t nch = 0, start = 0, mark = ws->mt.n;
	size_t plen = m->prefix ? strlen(m->prefix) : 0;
	uint32_t id;

	for (size_t i = 0; i < len;) {
		size_t k;

		tok_decode1(w + i, len - i, &k);
		i += k;
		nch++;
	}
	if (nch > m->max_chars)
		goto unk;
	if (buf_reserve(ws, len + plen + 1))
		return -1;
	while (start < len) {
		size_t end = len;
		int found = 0;

		while (start < end) {
			const char *key = w + start;
			size_t kl = end - start;

			if (start > 0) {
				memcpy(ws->buf, m->prefix, plen);
				memcpy(ws->buf + plen, w + start, end - start);
				key = ws->buf;
				kl += plen;
			}
			if (vocab_get(m, key, kl, &id)) {
				found = 1;
				break;
			}
			/* drop the last char */
			end--;
			while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80)
				end--;
		}
		if (!found)
			goto unk;
		if (tok_mtoks_push(&ws->mt, id, (uint32_t)start, (uint32_t)end, 0))
			return -1;
		start = end;
	}
	return 0;
unk:
	ws->mt.n = mark;
	if (m->unk_id < 0)
		return -2;
	return tok_mtoks_push(&ws->mt, (uint32_t)m->unk_id, 0, (uint32_t)len, 0);
}

/* ---- WordLevel ---- */

static int wl_word(const struct model *m, struct tok_ws *ws, const char *w,
		   size_t len)
{
	uint32_t id;

	if (vocab_get(m, w, len, &id))
		return tok_mtoks_push(&ws->mt, id, 0, (uint32_t)len, 0);
	if (m->unk_id < 0)
		return -2;
	return tok_mtoks_push(&ws->mt, (uint32_t)m->unk_id, 0, (uint32_t)len, 0);
}

/* ---- Unigram (models/unigram/model.rs encode_optimized) ---- */

static int uni_reserve(struct tok_ws *ws, size_t n)
{
	if (n > ws->u_cap) {
		size_t c = ws->u_cap ? ws->u_cap : 64;
		void *p;

		while (c < n)
			c *= 2;
		if (!(p = realloc(ws->u_score, c * sizeof(double))))
			return -1;
		ws->u_score = p;
		if (!(p = realloc(ws->u_start, c * sizeof(int32_t))))
			return -1;
		ws->u_start = p;
		if (!(p = realloc(ws->u_id, c * sizeof(int32_t))))
			return -1;
		ws->u_id = p;
		ws->u_cap = c;
	}
	return 0;
}

/* The prefix map (m->v.map is shared with vocab lookups) holds every piece;
 * m->trie_* hold a hash set of proper prefixes: a lookup of w[s..e)
 * there says whether longer pieces may follow. */
static int uni_prefix(const struct model *m, const char *s, size_t n)
{
	uint32_t v;

	return tok_smap_get(&m->prefixes, s, n, &v);
}

/* One Viterbi segment [a, b): its piece, else its bytes (byte_fallback),
 * else unk with the text as the token string. */
static int uni_push(const struct model *m, struct tok_ws *ws, const char *w,
		    size_t a, size_t b)
{
	uint32_t id;

	if (vocab_get(m, w + a, b - a, &id))
		return tok_mtoks_push(&ws->mt, id, (uint32_t)a, (uint32_t)b, 0);
	if (m->byte_fallback) {
		int ok = 1;

		for (size_t j = a; j < b; j++)
			if (m->byte_id[(unsigned char)w[j]] == NONE)
				ok = 0;
		if (ok) {
			for (size_t j = a; j < b; j++)
				if (tok_mtoks_push(&ws->mt, m->byte_id[(unsigned char)w[j]],
					       (uint32_t)a, (uint32_t)b, 0))
					return -1;
			return 0;
		}
	}
	if (m->uni_unk < 0)
		return -2;
	return tok_mtoks_push(&ws->mt, (uint32_t)m->uni_unk, (uint32_t)a, (uint32_t)b, 1);
}

static int uni_word(const struct model *m, struct tok_ws *ws, const char *w,
		    size_t len)
{
	double unk_score = m->min_score - 10.0;
	double *score;
	int32_t *st, *id;
	size_t mark;

	if (uni_reserve(ws, len + 1))
		return -1;
	score = ws->u_score;
	st = ws->u_start;
	id = ws->u_id;
	for (size_t i = 0; i <= len; i++) {
		st[i] = -1;
		score[i] = 0;
		id[i] = -1;
	}
	st[0] = 0;
	for (size_t s = 0; s < len;) {
		size_t k, mb;
		int single = 0;
		double base = score[s];

		tok_decode1(w + s, len - s, &mb);
		for (size_t e = s + mb; e <= len; e += k) {
			uint32_t pid;

			if (vocab_get(m, w + s, e - s, &pid) && pid < m->v.n && m->scores) {
				double cand = m->scores[pid] + base;

				if (st[e] < 0 || cand > score[e]) {
					score[e] = cand;
					st[e] = (int32_t)s;
					id[e] = (int32_t)pid;
				}
				if (e - s == mb)
					single = 1;
			}
			if (e == len || !uni_prefix(m, w + s, e - s))
				break;
			tok_decode1(w + e, len - e, &k);
		}
		if (!single) {
			double cand = unk_score + base;
			size_t e = s + mb;

			if (st[e] < 0 || cand > score[e]) {
				score[e] = cand;
				st[e] = (int32_t)s;
				id[e] = m->uni_unk >= 0 ? (int32_t)m->uni_unk : -2;
			}
		}
		s += mb;
	}
	/* walk back; fuse consecutive unks; emit in order */
	mark = ws->mt.n;
	{
		size_t e = len;
		/* collect segments reversed into the sym arrays */
		size_t nseg = 0;

		if (sym_reserve(ws, len + 1))
			return -1;
		while (e > 0) {
			size_t s = (size_t)st[e];
			int is_unk = id[e] == (int32_t)m->uni_unk || id[e] == -2;

			if (is_unk && nseg && ws->sym_rank[nseg - 1] == 1) {
				/* extend the previous (later) unk run leftwards */
				ws->sym_id[nseg - 1] = (uint32_t)s;
			} else {
				ws->sym_id[nseg] = (uint32_t)s;	/* start */
				ws->sym_len[nseg] = (uint32_t)e;	/* end */
				ws->sym_rank[nseg] = is_unk;
				nseg++;
			}
			e = s;
		}
		for (size_t i = nseg; i-- > 0;) {
			int r = uni_push(m, ws, w, ws->sym_id[i], ws->sym_len[i]);

			if (r) {
				ws->mt.n = mark;
				return r;
			}
		}
	}
	return 0;
}

/* ---- word cache: word bytes -> model tokens, per thread ---- */

#define CACHE_SLOTS (1u << 15)
#define CACHE_MAX_WORD 128

static void cache_clear(struct tok_ws *ws)
{
	memset(ws->c_hash, 0, (ws->c_mask + 1) * sizeof(*ws->c_hash));
	ws->c_used = 0;
	ws->c_klen_total = 0;
	ws->c_tn_total = 0;
}

static int cache_init(struct tok_ws *ws)
{
	size_t n = CACHE_SLOTS;

	ws->c_hash = calloc(n, sizeof(*ws->c_hash));
	ws->c_koff = malloc(n * sizeof(*ws->c_koff));
	ws->c_klen = malloc(n * sizeof(*ws->c_klen));
	ws->c_toff = malloc(n * sizeof(*ws->c_toff));
	ws->c_tn = malloc(n * sizeof(*ws->c_tn));
	ws->c_kcap = n * 16;
	ws->c_keys = malloc(ws->c_kcap);
	ws->c_tcap = n * 4;
	ws->c_toks = malloc(ws->c_tcap * sizeof(*ws->c_toks));
	if (!ws->c_hash || !ws->c_koff || !ws->c_klen || !ws->c_toff ||
	    !ws->c_tn || !ws->c_keys || !ws->c_toks)
		return -1;
	ws->c_mask = n - 1;
	return 0;
}

int tok_model_tokenize(const struct model *m, struct tok_ws *ws, const char *w,
		   size_t len)
{
	uint64_t h = 0;
	size_t slot = 0, mark = ws->mt.n;
	int r, cacheable = len && len <= CACHE_MAX_WORD;

	if (!len)
		return 0;
	if (cacheable) {
		if (!ws->c_hash && cache_init(ws))
			return -1;
		h = tok_hash(w, len) | 1;
		for (slot = h & ws->c_mask; ws->c_hash[slot]; slot = (slot + 1) & ws->c_mask) {
			if (ws->c_hash[slot] == h && ws->c_klen[slot] == len &&
			    !memcmp(ws->c_keys + ws->c_koff[slot], w, len)) {
				const struct mtok *t = ws->c_toks + ws->c_toff[slot];

				for (uint32_t i = 0; i < ws->c_tn[slot]; i++)
					if (tok_mtoks_push(&ws->mt, t[i].id, t[i].a, t[i].b, t[i].text))
						return -1;
				return 0;
			}
		}
	}
	switch (m->type) {
	case M_BPE:
		r = bpe_word(m, ws, w, len);
		break;
	case M_WORDPIECE:
		r = wp_word(m, ws, w, len);
		break;
	case M_WORDLEVEL:
		r = wl_word(m, ws, w, len);
		break;
	case M_UNIGRAM:
		r = uni_word(m, ws, w, len);
		break;
	default:
		r = -1;
	}
	if (r || !cacheable)
		return r;
	{
		size_t nt = ws->mt.n - mark;

		if (ws->c_used * 4 >= (ws->c_mask + 1) * 3 ||
		    ws->c_klen_total + len > ws->c_kcap ||
		    ws->c_tn_total + nt > ws->c_tcap) {
			cache_clear(ws);
			for (slot = h & ws->c_mask; ws->c_hash[slot];
			     slot = (slot + 1) & ws->c_mask)
				;
		}
		if (nt > ws->c_tcap)
			return 0;
		ws->c_hash[slot] = h;
		ws->c_koff[slot] = (uint32_t)ws->c_klen_total;
		ws->c_klen[slot] = (uint32_t)len;
		memcpy(ws->c_keys + ws->c_klen_total, w, len);
		ws->c_klen_total += len;
		ws->c_toff[slot] = (uint32_t)ws->c_tn_total;
		ws->c_tn[slot] = (uint32_t)nt;
		if (nt)		/* a word of no tokens: mt.v may be NULL */
			memcpy(ws->c_toks + ws->c_tn_total, ws->mt.v + mark,
			       nt * sizeof(struct mtok));
		ws->c_tn_total += nt;
		ws->c_used++;
	}
	return 0;
}
