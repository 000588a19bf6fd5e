/* lib/tok/encode.c: the encode pipeline (tokenizer/mod.rs encode and
 * post_process), added-token splitting, truncation, padding, batches. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/pool.h"
#include "core/utf8.h"
#include "tok/internal.h"

/* ---- encodings ---- */

static void free_overflow(struct hf_tok_encoding *e)
{
	for (size_t i = 0; i < e->n_overflowing; i++)
		hf_tok_encoding_free(&e->overflowing[i]);
	free(e->overflowing);
	e->overflowing = NULL;
	e->n_overflowing = 0;
}

void hf_tok_encoding_free(struct hf_tok_encoding *e)
{
	free_overflow(e);
	free(e->ids);
	free(e->type_ids);
	free(e->offsets);
	free(e->attention_mask);
	free(e->special_mask);
	free(e->seq);
	free(e->tok_off);
	free(e->tok_buf);
	memset(e, 0, sizeof(*e));
}

static int enc_reserve(struct hf_tok_encoding *e, size_t n)
{
	size_t c;
	void *p;

	if (!e->tok_off) {
		e->tok_off = calloc(1, sizeof(*e->tok_off));
		if (!e->tok_off)
			return -1;
	}
	if (n <= e->cap)
		return 0;
	c = e->cap ? e->cap : 32;
	while (c < n)
		c *= 2;
#define G(f) do { p = realloc(e->f, c * sizeof(*e->f)); if (!p) return -1; e->f = p; } while (0)
	G(ids);
	G(type_ids);
	G(offsets);
	G(attention_mask);
	G(special_mask);
	G(seq);
#undef G
	p = realloc(e->tok_off, (c + 1) * sizeof(*e->tok_off));
	if (!p)
		return -1;
	e->tok_off = p;
	e->cap = c;
	return 0;
}

static void enc_reset(struct hf_tok_encoding *e)
{
	e->n = 0;
	e->tok_len = 0;
	if (e->tok_off)
		e->tok_off[0] = 0;
}

static int enc_push(struct hf_tok_encoding *e, uint32_t id, uint32_t type,
		    uint32_t s, uint32_t end, int special, int seq,
		    const char *tok, size_t tl)
{
	size_t i = e->n;

	if (enc_reserve(e, i + 1))
		return -1;
	if (e->tok_len + tl > e->tok_cap) {
		size_t c = e->tok_cap ? e->tok_cap * 2 : 256;
		char *b;

		while (c < e->tok_len + tl)
			c *= 2;
		b = realloc(e->tok_buf, c);
		if (!b)
			return -1;
		e->tok_buf = b;
		e->tok_cap = c;
	}
	e->ids[i] = id;
	e->type_ids[i] = type;
	e->offsets[i][0] = s;
	e->offsets[i][1] = end;
	e->attention_mask[i] = 1;
	e->special_mask[i] = (uint8_t)special;
	e->seq[i] = (uint8_t)seq;
	memcpy(e->tok_buf + e->tok_len, tok, tl);
	e->tok_len += tl;
	e->tok_off[i + 1] = (uint32_t)e->tok_len;
	e->n = i + 1;
	return 0;
}

/* ---- added tokens: AddedVocabulary::find_matches ---- */

static int is_word_char(uint32_t c)
{
	if (c < 128)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		       (c >= 'A' && c <= 'Z') || c == '_';
	if (c == 0x200C || c == 0x200D)
		return 1;
	switch (utf8proc_category((utf8proc_int32_t)c)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL:
	case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC:
	case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
	case UTF8PROC_CATEGORY_PC:
		return 1;
	default:
		return 0;
	}
}

static uint32_t last_char(const char *s, size_t n)
{
	size_t q = n - 1, k;

	while (q > 0 && ((unsigned char)s[q] & 0xC0) == 0x80)
		q--;
	return tok_decode1(s + q, n - q, &k);
}

static size_t match_at(const struct atrie *tr, const char *s, size_t n,
		       size_t at, int32_t *tok)
{
	uint32_t node = 0;
	size_t best = 0;

	*tok = -1;
	for (size_t i = at; i < n; i++) {
		uint32_t nx = tr->next[node][(unsigned char)s[i]];

		if (!nx)
			break;
		node = nx - 1;
		if (tr->tok[node] >= 0) {
			*tok = tr->tok[node];
			best = i + 1 - at;
		}
	}
	return best;
}

/* Split piece p (untokenized) of list cur around the added tokens of tr. */
static int split_added(const struct hf_tok *t, const struct atrie *tr,
		       struct tok_ws *ws, int cur, const struct piece *p)
{
	const char *s = ws->ar[cur].s + p->off;
	size_t n = p->len, start_off = 0, i = 0;

	while (i < n) {
		int32_t ti;
		size_t ml, start, stop;
		const struct added *a;

		if (!tr->first[(unsigned char)s[i]] || !(ml = match_at(tr, s, n, i, &ti))) {
			i++;
			continue;
		}
		a = &t->added[ti];
		start = i;
		stop = i + ml;
		i = stop;
		if (a->single_word) {
			int sp = start == 0 || !is_word_char(last_char(s, start));
			size_t k;
			int ep = stop == n || !is_word_char(tok_decode1(s + stop, n - stop, &k));

			if (!sp || !ep)
				continue;
		}
		if (a->lstrip) {
			size_t ns = start;

			while (ns > 0) {
				size_t q = ns - 1, k;

				while (q > 0 && ((unsigned char)s[q] & 0xC0) == 0x80)
					q--;
				if (!tok_is_whitespace(tok_decode1(s + q, ns - q, &k)))
					break;
				ns = q;
			}
			start = ns > start_off ? ns : start_off;
		}
		if (a->rstrip) {
			while (stop < n) {
				size_t k;

				if (!tok_is_whitespace(tok_decode1(s + stop, n - stop, &k)))
					break;
				stop += k;
			}
		}
		if (start_off < start && tok_piece_slice(ws, cur, p, start_off, start))
			return -1;
		{
			size_t before = ws->pl[cur ^ 1].n;

			if (tok_piece_slice(ws, cur, p, start, stop))
				return -1;
			if (ws->pl[cur ^ 1].n > before)
				ws->pl[cur ^ 1].v[before].id = (int32_t)a->id;
		}
		start_off = stop;
	}
	if (start_off < n && tok_piece_slice(ws, cur, p, start_off, n))
		return -1;
	return 0;
}

static int added_stage(const struct hf_tok *t, const struct atrie *tr,
		       struct tok_ws *ws, int cur)
{
	ws->ar[cur ^ 1].len = 0;
	ws->pl[cur ^ 1].n = 0;
	for (size_t i = 0; i < ws->pl[cur].n; i++) {
		const struct piece *p = &ws->pl[cur].v[i];

		if (p->id >= 0 || !tr->n) {
			size_t before = ws->pl[cur ^ 1].n;

			if (tok_piece_slice(ws, cur, p, 0, p->len))
				return -1;
			if (ws->pl[cur ^ 1].n > before) {
				ws->pl[cur ^ 1].v[before].id = p->id;
				ws->pl[cur ^ 1].v[before].shift = p->shift;
			}
			continue;
		}
		if (split_added(t, tr, ws, cur, p))
			return -1;
	}
	return cur ^ 1;
}

/* Run normalizer + added tokens + pre-tokenizer + model on one sequence,
 * appending to raw (offsets in code points of text). */
static int encode_seq(struct hf_tok_ctx *c, const char *text, size_t len,
		      int seq, struct hf_tok_encoding *raw, uint32_t **cidx,
		      size_t *cidx_cap, struct hf_err *err)
{
	const struct hf_tok *t = c->t;
	struct tok_ws *ws = &c->ws;
	int cur = 0;
	struct piece p0 = { 0, (uint32_t)len, 0, -1 };
	uint32_t *ci;

	enc_reset(raw);
	if (!len)
		return 0;
	/* byte -> char index, and the identity alignment */
	if (len + 1 > *cidx_cap) {
		uint32_t *n = realloc(*cidx, (len + 1) * sizeof(*n));

		if (!n)
			goto nomem;
		*cidx = n;
		*cidx_cap = len + 1;
	}
	ci = *cidx;
	ws->ar[0].len = 0;
	ws->pl[0].n = 0;
	if (tok_ar_reserve(&ws->ar[0], len))
		goto nomem;
	memcpy(ws->ar[0].s, text, len);
	{
		size_t i = 0, nc = 0;

		while (i < len) {
			size_t k;

			tok_decode1(text + i, len - i, &k);
			for (size_t j = 0; j < k; j++) {
				ws->ar[0].al[i + j].s = (uint32_t)i;
				ws->ar[0].al[i + j].e = (uint32_t)(i + k);
				ci[i + j] = (uint32_t)nc;
			}
			i += k;
			nc++;
		}
		ci[len] = (uint32_t)nc;
	}
	ws->ar[0].len = len;
	if (tok_pl_push(&ws->pl[0], p0))
		goto nomem;
	if (t->trie_raw.n && (cur = added_stage(t, &t->trie_raw, ws, cur)) < 0)
		goto nomem;
	if (t->norm && (cur = tok_norm_apply(t->norm, ws, cur)) < 0)
		goto nomem;
	if (t->trie_norm.n && (cur = added_stage(t, &t->trie_norm, ws, cur)) < 0)
		goto nomem;
	if (t->pretok && (cur = tok_pretok_apply(t->pretok, ws, cur, 0)) < 0)
		goto nomem;
	for (size_t i = 0; i < ws->pl[cur].n; i++) {
		const struct piece *p = &ws->pl[cur].v[i];
		const char *s = ws->ar[cur].s + p->off;
		const struct al *al = ws->ar[cur].al + p->off;
		int r;

		ws->mt.n = 0;
		if (p->id >= 0) {
			r = tok_mtoks_push(&ws->mt, (uint32_t)p->id, 0, p->len, 1);
		} else {
			r = tok_model_tokenize(&t->model, ws, s, p->len);
			if (r == -2)
				return hf_err_set(err, HF_EFORMAT,
						  "model has no unk token for '%.*s'",
						  (int)(p->len > 64 ? 64 : p->len), s);
		}
		if (r)
			goto nomem;
		for (size_t j = 0; j < ws->mt.n; j++) {
			const struct mtok *m = &ws->mt.v[j];
			uint32_t bs, be, cs, ce;
			const char *ts;
			size_t tl;

			if (m->a < m->b) {
				bs = al[m->a].s;
				be = al[m->b - 1].e;
			} else {
				bs = be = p->shift + m->a;
			}
			/* BytesToCharOffsetConverter */
			if (bs < len) {
				cs = ci[bs];
				if (be < len)
					ce = ci[be];
				else
					ce = be > 0 && be - 1 < len ? ci[be - 1] + 1 : cs + 1;
			} else {
				cs = bs;
				ce = be;
			}
			if (m->text || p->id >= 0) {
				ts = s + m->a;
				tl = m->b - m->a;
			} else {
				/* the model's own string for its id */
				if (m->id < t->model.v.n && t->model.v.tok[m->id]) {
					ts = t->model.v.tok[m->id];
					tl = t->model.v.tok_len[m->id];
				} else if (!(ts = hf_tok_id_to_token(t, m->id, &tl))) {
					ts = "";
					tl = 0;
				}
			}
			if (enc_push(raw, m->id, (uint32_t)seq, cs, ce,
				     0, seq, ts, tl))
				goto nomem;
		}
	}
	return 0;
nomem:
	return hf_err_set(err, HF_ENOMEM, "out of memory encoding %zu bytes", len);
}

/* ---- truncation (utils/truncation.rs) ---- */

static void enc_truncate(struct hf_tok_encoding *e, size_t max,
			 enum hf_tok_side dir)
{
	size_t drop;

	if (e->n <= max)
		return;
	drop = e->n - max;
	if (dir == HF_TOK_LEFT) {
		uint32_t base = e->tok_off[drop];

		memmove(e->ids, e->ids + drop, max * sizeof(*e->ids));
		memmove(e->type_ids, e->type_ids + drop, max * sizeof(*e->type_ids));
		memmove(e->offsets, e->offsets + drop, max * sizeof(*e->offsets));
		memmove(e->attention_mask, e->attention_mask + drop, max);
		memmove(e->special_mask, e->special_mask + drop, max);
		memmove(e->seq, e->seq + drop, max);
		memmove(e->tok_buf, e->tok_buf + base, e->tok_len - base);
		for (size_t i = 0; i <= max; i++)
			e->tok_off[i] = e->tok_off[i + drop] - base;
		e->tok_len -= base;
	} else {
		e->tok_len = e->tok_off[max];
	}
	e->n = max;
}

static int truncate_pair(struct hf_tok_encoding *a, struct hf_tok_encoding *b,
			 const struct hf_tok_trunc *tr, size_t max,
			 struct hf_err *err)
{
	size_t total = a->n + (b ? b->n : 0), rm;

	if (total <= max)
		return 0;
	rm = total - max;
	if (tr->strategy == HF_TOK_TRUNC_LONGEST_FIRST) {
		if (b) {
			size_t n1 = a->n, n2 = b->n;
			int swap = 0;

			if (n1 > n2) {
				swap = 1;
				n1 = b->n;
				n2 = a->n;
			}
			if (n1 > max)
				n2 = n1;
			else
				n2 = n1 > max - n1 ? n1 : max - n1;
			if (n1 + n2 > max) {
				n1 = max / 2;
				n2 = n1 + max % 2;
			}
			if (swap) {
				size_t x = n1;

				n1 = n2;
				n2 = x;
			}
			enc_truncate(a, n1, tr->direction);
			enc_truncate(b, n2, tr->direction);
		} else {
			enc_truncate(a, total - rm, tr->direction);
		}
		return 0;
	}
	{
		struct hf_tok_encoding *tg = tr->strategy == HF_TOK_TRUNC_ONLY_FIRST ? a : b;

		if (!tg)
			return hf_err_set(err, HF_EINVAL,
					  "truncation only_second needs a text pair");
		if (tg->n <= rm)
			return hf_err_set(err, HF_ERANGE,
					  "sequence too short to truncate by %zu tokens "
					  "to max length %zu", rm, max);
		enc_truncate(tg, tg->n - rm, tr->direction);
	}
	return 0;
}

/* ---- post-processing ---- */

/* ByteLevel process_offsets (trim_offsets) on code point offsets */
static void trim_offsets(struct hf_tok_encoding *e, int add_prefix_space)
{
	for (size_t i = 0; i < e->n; i++) {
		size_t tl, lead = 0, trail = 0, nch = 0, j = 0;
		const char *s = hf_tok_encoding_token(e, i, &tl);
		int in_lead = 1;

		while (j < tl) {
			size_t k;
			uint32_t c = tok_decode1(s + j, tl - j, &k);
			int sp = c == 0x120 || tok_is_whitespace(c);

			j += k;
			nch++;
			if (sp) {
				if (in_lead)
					lead++;
				trail++;
			} else {
				in_lead = 0;
				trail = 0;
			}
		}
		if (lead == nch)
			trail = nch;	/* all spaces: the reverse scan sees them all */
		if (lead || trail) {
			if (lead) {
				int first = i == 0 || e->offsets[i][0] == 0;

				if (first && add_prefix_space && lead == 1)
					lead = 0;
				e->offsets[i][0] = e->offsets[i][0] + (uint32_t)lead < e->offsets[i][1] ?
						   e->offsets[i][0] + (uint32_t)lead : e->offsets[i][1];
			}
			if (trail && e->offsets[i][1] >= trail) {
				uint32_t ne = e->offsets[i][1] - (uint32_t)trail;

				e->offsets[i][1] = ne > e->offsets[i][0] ? ne : e->offsets[i][0];
			}
		}
	}
}

static void post_trims(const struct post *p, struct hf_tok_encoding *a,
		       struct hf_tok_encoding *b)
{
	if (!p)
		return;
	if (p->type == PP_SEQ) {
		for (size_t i = 0; i < p->nsub; i++)
			post_trims(&p->sub[i], a, b);
	} else if ((p->type == PP_BYTELEVEL || p->type == PP_ROBERTA) && p->trim_offsets) {
		trim_offsets(a, p->add_prefix_space);
		if (b)
			trim_offsets(b, p->add_prefix_space);
	}
}

static const struct post *post_template(const struct post *p)
{
	if (!p)
		return NULL;
	if (p->type == PP_SEQ) {
		for (size_t i = 0; i < p->nsub; i++) {
			const struct post *q = post_template(&p->sub[i]);

			if (q)
				return q;
		}
		return NULL;
	}
	return p->type == PP_BYTELEVEL ? NULL : p;
}

static size_t post_added(const struct post *p, int pair)
{
	const struct post *q = post_template(p);
	const struct tpl_item *it;
	size_t n, k = 0;

	if (!q)
		return 0;
	it = pair ? q->pair : q->single;
	n = pair ? q->npair : q->nsingle;
	for (size_t i = 0; i < n; i++)
		if (!it[i].is_seq)
			k += it[i].nids;
	return k;
}

static int append_seq(struct hf_tok_encoding *out, const struct hf_tok_encoding *e,
		      uint32_t type)
{
	size_t n = out->n, base = out->tok_len, bytes = e->tok_len;

	if (!e->n)
		return 0;
	if (enc_reserve(out, n + e->n))
		return -1;
	if (base + bytes > out->tok_cap) {
		size_t c = out->tok_cap ? out->tok_cap * 2 : 256;
		char *b;

		while (c < base + bytes)
			c *= 2;
		b = realloc(out->tok_buf, c);
		if (!b)
			return -1;
		out->tok_buf = b;
		out->tok_cap = c;
	}
	memcpy(out->ids + n, e->ids, e->n * sizeof(*e->ids));
	memcpy(out->offsets + n, e->offsets, e->n * sizeof(*e->offsets));
	memcpy(out->attention_mask + n, e->attention_mask, e->n);
	memcpy(out->special_mask + n, e->special_mask, e->n);
	memcpy(out->seq + n, e->seq, e->n);
	memcpy(out->tok_buf + base, e->tok_buf, bytes);
	for (size_t i = 0; i < e->n; i++) {
		out->type_ids[n + i] = type;
		out->tok_off[n + i + 1] = (uint32_t)(base + e->tok_off[i + 1]);
	}
	out->tok_len = base + bytes;
	out->n = n + e->n;
	return 0;
}

static int post_process(const struct hf_tok *t, struct hf_tok_encoding *a,
			struct hf_tok_encoding *b, int add_special,
			struct hf_tok_encoding *out)
{
	const struct post *q = post_template(t->post);

	post_trims(t->post, a, b);
	enc_reset(out);
	if (!q && !b) {
		/* nothing to add: hand a's buffers over (a is scratch) */
		struct hf_tok_encoding x = *out;

		*out = *a;
		*a = x;
		return 0;
	}
	if (!q || (!add_special && (q->type == PP_BERT || q->type == PP_ROBERTA))) {
		/* the pair keeps type id 1, except that Roberta sets all to 0 */
		uint32_t tb = q && q->type == PP_ROBERTA ? 0 : 1;

		if (append_seq(out, a, 0) || (b && append_seq(out, b, tb)))
			return -1;
		return 0;
	}
	{
		const struct tpl_item *it = b ? q->pair : q->single;
		size_t n = b ? q->npair : q->nsingle;

		for (size_t i = 0; i < n; i++) {
			if (it[i].is_seq) {
				const struct hf_tok_encoding *e = it[i].seq ? b : a;

				if (e && append_seq(out, e, it[i].type_id))
					return -1;
				continue;
			}
			if (!add_special)
				continue;
			for (size_t j = 0; j < it[i].nids; j++)
				if (enc_push(out, it[i].ids[j], it[i].type_id, 0, 0, 1,
					     255, it[i].toks[j], strlen(it[i].toks[j])))
					return -1;
		}
	}
	return 0;
}

/* ---- context and public entry points ---- */

struct ctx_extra {
	struct hf_tok_encoding ra, rb;
	uint32_t *cidx;
	size_t cidx_cap;
};

int hf_tok_ctx_create(struct hf_tok_ctx **out, const struct hf_tok *t,
		      struct hf_err *err)
{
	struct hf_tok_ctx *c = calloc(1, sizeof(*c) + sizeof(struct ctx_extra));

	*out = NULL;
	if (!c || tok_ws_init(&c->ws)) {
		free(c);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	c->t = t;
	*out = c;
	return 0;
}

static struct ctx_extra *extra(struct hf_tok_ctx *c)
{
	return (struct ctx_extra *)(c + 1);
}

void hf_tok_ctx_free(struct hf_tok_ctx *c)
{
	if (!c)
		return;
	tok_ws_free(&c->ws);
	hf_tok_encoding_free(&extra(c)->ra);
	hf_tok_encoding_free(&extra(c)->rb);
	free(extra(c)->cidx);
	free(c);
}

static int overflow(const struct hf_tok *t, const struct hf_tok_encoding *a,
		    size_t max, const struct hf_tok_trunc *tr, int add_special,
		    struct hf_tok_encoding *out, struct hf_err *err);

int hf_tok_encode(struct hf_tok_ctx *c, const char *text, size_t len,
		  const char *pair, size_t pair_len, int add_special,
		  const struct hf_tok_trunc *trunc,
		  struct hf_tok_encoding *out, struct hf_err *err)
{
	struct ctx_extra *x = extra(c);
	size_t bad;
	int r;

	if (!hf_utf8_valid(text, len, &bad))
		return hf_err_set(err, HF_EUTF8, "invalid UTF-8 at byte %zu", bad);
	if (pair && !hf_utf8_valid(pair, pair_len, &bad))
		return hf_err_set(err, HF_EUTF8,
				  "invalid UTF-8 in text pair at byte %zu", bad);
	if (len > 0xFFFFFFF0u || pair_len > 0xFFFFFFF0u)
		return hf_err_set(err, HF_ERANGE, "input too long (%zu bytes)", len);
	if ((r = encode_seq(c, text, len, 0, &x->ra, &x->cidx, &x->cidx_cap, err)))
		return r;
	if (pair && (r = encode_seq(c, pair, pair_len, 1, &x->rb, &x->cidx,
				    &x->cidx_cap, err)))
		return r;
	free_overflow(out);
	if (trunc && trunc->max_length) {
		size_t added = add_special ? post_added(c->t->post, pair != NULL) : 0;
		size_t max = trunc->max_length > added ? trunc->max_length - added : 0;

		if (max && trunc->stride >= max)
			return hf_err_set(err, HF_EINVAL,
					  "truncation stride %zu must be less than %zu "
					  "(max length %zu less %zu special tokens)",
					  trunc->stride, max, trunc->max_length, added);
		if (!pair && max && x->ra.n > max &&
		    (r = overflow(c->t, &x->ra, max, trunc, add_special, out, err)))
			return r;
		if (!max) {
			enc_truncate(&x->ra, 0, trunc->direction);
			if (pair)
				enc_truncate(&x->rb, 0, trunc->direction);
		} else if ((r = truncate_pair(&x->ra, pair ? &x->rb : NULL, trunc,
					      max, err))) {
			return r;
		}
	}
	if (enc_reserve(out, 1) || post_process(c->t, &x->ra, pair ? &x->rb : NULL,
						add_special, out))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	return 0;
}

/* Encoding::truncate's windows over a single sequence: every window but
 * the first becomes out->overflowing[], post-processed. */
static int overflow(const struct hf_tok *t, const struct hf_tok_encoding *a,
		    size_t max, const struct hf_tok_trunc *tr, int add_special,
		    struct hf_tok_encoding *out, struct hf_err *err)
{
	size_t len = a->n, step = max - tr->stride, nw = 0, cap = 0;
	size_t (*w)[2] = NULL;
	struct hf_tok_encoding tmp = { 0 };
	int rc = 0;

	if (tr->direction == HF_TOK_RIGHT) {
		for (size_t start = 0;; start += step) {
			size_t stop = start + max < len ? start + max : len;

			if (nw == cap) {
				void *q = realloc(w, (cap = cap ? cap * 2 : 8) * sizeof(*w));

				if (!q)
					goto nomem;
				w = q;
			}
			w[nw][0] = start;
			w[nw++][1] = stop;
			if (stop == len)
				break;
		}
	} else {
		for (size_t last = len;; last = last > step ? last - step : 0) {
			size_t stop = last, start = stop > max ? stop - max : 0;

			if (nw == cap) {
				void *q = realloc(w, (cap = cap ? cap * 2 : 8) * sizeof(*w));

				if (!q)
					goto nomem;
				w = q;
			}
			w[nw][0] = start;
			w[nw++][1] = stop;
			if (!start || last <= step)
				break;
		}
	}
	if (nw > 1) {
		out->overflowing = calloc(nw - 1, sizeof(*out->overflowing));
		if (!out->overflowing)
			goto nomem;
		out->n_overflowing = nw - 1;
	}
	for (size_t k = 1; k < nw; k++) {
		enc_reset(&tmp);
		for (size_t i = w[k][0]; i < w[k][1]; i++) {
			size_t tl;
			const char *s = hf_tok_encoding_token(a, i, &tl);

			if (enc_push(&tmp, a->ids[i], a->type_ids[i], a->offsets[i][0],
				     a->offsets[i][1], a->special_mask[i], a->seq[i], s, tl))
				goto nomem;
		}
		if (enc_reserve(&out->overflowing[k - 1], 1) ||
		    post_process(t, &tmp, NULL, add_special, &out->overflowing[k - 1]))
			goto nomem;
	}
	goto done;
nomem:
	rc = hf_err_set(err, HF_ENOMEM, "out of memory");
done:
	hf_tok_encoding_free(&tmp);
	free(w);
	return rc;
}

static int enc_pad(struct hf_tok_encoding *e, size_t target,
		   const struct hf_tok_pad *p, const char *tok, size_t tl)
{
	size_t add, n = e->n;

	if (n >= target)
		return 0;
	add = target - n;
	for (size_t i = 0; i < add; i++)
		if (enc_push(e, p->pad_id, p->pad_type_id, 0, 0, 1, 255, tok, tl))
			return -1;
	for (size_t i = n; i < target; i++)
		e->attention_mask[i] = 0;
	if (p->direction == HF_TOK_LEFT) {
		/* rotate the pads to the front */
		struct hf_tok_encoding t = { 0 };

		for (size_t i = 0; i < add; i++)
			if (enc_push(&t, p->pad_id, p->pad_type_id, 0, 0, 1, 255, tok, tl)) {
				hf_tok_encoding_free(&t);
				return -1;
			}
		for (size_t i = 0; i < add; i++)
			t.attention_mask[i] = 0;
		for (size_t i = 0; i < n; i++) {
			size_t l;
			const char *s = hf_tok_encoding_token(e, i, &l);

			if (enc_push(&t, e->ids[i], e->type_ids[i], e->offsets[i][0],
				     e->offsets[i][1], e->special_mask[i], e->seq[i], s, l)) {
				hf_tok_encoding_free(&t);
				return -1;
			}
			t.attention_mask[add + i] = e->attention_mask[i];
		}
		hf_tok_encoding_free(e);
		*e = t;
	}
	return 0;
}

int hf_tok_pad(const struct hf_tok *t, struct hf_tok_encoding *encs, size_t n,
	       const struct hf_tok_pad *pad, struct hf_err *err)
{
	size_t target = pad->length, tl = 0;
	const char *tok = pad->pad_token;

	if (!pad->enabled || !n)
		return 0;
	if (!target)
		for (size_t i = 0; i < n; i++)
			if (encs[i].n > target)
				target = encs[i].n;
	if (pad->multiple_of && target % pad->multiple_of)
		target += pad->multiple_of - target % pad->multiple_of;
	if (tok)
		tl = strlen(tok);
	else if (!(tok = hf_tok_id_to_token(t, pad->pad_id, &tl)))
		tok = "";
	for (size_t i = 0; i < n; i++)
		if (enc_pad(&encs[i], target, pad, tok, tl))
			return hf_err_set(err, HF_ENOMEM, "out of memory padding");
	return 0;
}

struct batch_job {
	const struct hf_tok *t;
	struct hf_tok_ctx **ctxs;
	const struct hf_tok_input *in;
	size_t n;
	int add_special;
	const struct hf_tok_trunc *trunc;
	struct hf_tok_encoding *outs;
	int rc[64];
	struct hf_err err[64];
	size_t bad[64];
};

static void batch_run(void *arg, int ith, int nth)
{
	struct batch_job *j = arg;
	struct hf_tok_ctx *c;
	size_t b, e;

	hf_pool_split(j->n, ith, nth, &b, &e);
	if (j->ctxs)
		c = j->ctxs[ith];
	else if (hf_tok_ctx_create(&c, j->t, &j->err[ith])) {
		j->rc[ith] = j->err[ith].code;
		return;
	}
	for (size_t i = b; i < e; i++) {
		const struct hf_tok_input *in = &j->in[i];
		int r = hf_tok_encode(c, in->text, in->len, in->pair, in->pair_len,
				      j->add_special, j->trunc, &j->outs[i],
				      &j->err[ith]);

		if (r) {
			j->rc[ith] = r;
			j->bad[ith] = i;
			break;
		}
	}
	if (!j->ctxs)
		hf_tok_ctx_free(c);
}

int hf_tok_encode_batch(const struct hf_tok *t, struct hf_pool *pool,
			struct hf_tok_ctx **ctxs,
			const struct hf_tok_input *in, size_t n,
			int add_special, const struct hf_tok_trunc *trunc,
			const struct hf_tok_pad *pad,
			struct hf_tok_encoding *outs, struct hf_err *err)
{
	struct batch_job *j;
	int nth = hf_pool_size(pool);

	if (nth > 64)
		return hf_err_set(err, HF_EINVAL, "at most 64 threads");
	j = calloc(1, sizeof(*j));
	if (!j)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	j->t = t;
	j->ctxs = ctxs;
	j->in = in;
	j->n = n;
	j->add_special = add_special;
	j->trunc = trunc;
	j->outs = outs;
	hf_pool_run(pool, batch_run, j);
	for (int i = 0; i < nth; i++) {
		if (j->rc[i]) {
			int rc = j->rc[i];

			hf_err_set(err, rc, "input %zu: %s", j->bad[i], j->err[i].msg);
			free(j);
			return rc;
		}
	}
	free(j);
	if (pad)
		return hf_tok_pad(t, outs, n, pad, err);
	return 0;
}

int hf_tok_normalize(struct hf_tok_ctx *c, const char *text, size_t len,
		     char **out, size_t *len_out, struct hf_err *err)
{
	struct tok_ws *ws = &c->ws;
	struct piece p0 = { 0, (uint32_t)len, 0, -1 };
	size_t bad, n = 0;
	int cur = 0;
	char *s;

	if (!hf_utf8_valid(text, len, &bad))
		return hf_err_set(err, HF_EUTF8, "invalid UTF-8 at byte %zu", bad);
	if (len > 0xFFFFFFF0u)
		return hf_err_set(err, HF_ERANGE, "input too long (%zu bytes)", len);
	ws->ar[0].len = 0;
	ws->pl[0].n = 0;
	if (tok_ar_reserve(&ws->ar[0], len))
		goto nomem;
	memcpy(ws->ar[0].s, text, len);
	for (size_t i = 0; i < len; i++)
		ws->ar[0].al[i] = (struct al){ (uint32_t)i, (uint32_t)i + 1 };
	ws->ar[0].len = len;
	if (len && tok_pl_push(&ws->pl[0], p0))
		goto nomem;
	if (c->t->norm && (cur = tok_norm_apply(c->t->norm, ws, cur)) < 0)
		goto nomem;
	for (size_t i = 0; i < ws->pl[cur].n; i++)
		n += ws->pl[cur].v[i].len;
	s = malloc(n + 1);
	if (!s)
		goto nomem;
	n = 0;
	for (size_t i = 0; i < ws->pl[cur].n; i++) {
		const struct piece *p = &ws->pl[cur].v[i];

		memcpy(s + n, ws->ar[cur].s + p->off, p->len);
		n += p->len;
	}
	s[n] = 0;
	*out = s;
	if (len_out)
		*len_out = n;
	return 0;
nomem:
	return hf_err_set(err, HF_ENOMEM, "out of memory");
}
