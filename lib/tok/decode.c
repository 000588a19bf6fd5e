/* lib/tok/decode.c: decoders (token strings -> text) and hf_tok_decode. */
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "tok/internal.h"

size_t tok_u8put(uint32_t c, char *o);

static int sv_push(struct strv *v, const char *s, size_t len)
{
	char *c;

	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		char **a = realloc(v->s, cap * sizeof(*a));
		size_t *l;

		if (!a)
			return -1;
		v->s = a;
		l = realloc(v->len, cap * sizeof(*l));
		if (!l)
			return -1;
		v->len = l;
		v->cap = cap;
	}
	c = malloc(len + 1);
	if (!c)
		return -1;
	memcpy(c, s, len);
	c[len] = 0;
	v->s[v->n] = c;
	v->len[v->n++] = len;
	return 0;
}

static void sv_clear(struct strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->s[i]);
	v->n = 0;
}

static void sv_free(struct strv *v)
{
	sv_clear(v);
	free(v->s);
	free(v->len);
	memset(v, 0, sizeof(*v));
}

/* Replace v with w (taking w's strings). */
static void sv_move(struct strv *v, struct strv *w)
{
	sv_free(v);
	*v = *w;
	memset(w, 0, sizeof(*w));
}

/* Growable string */
struct sb {
	char *s;
	size_t n, cap;
};

static int sb_put(struct sb *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap * 2 : 64;
		char *p;

		while (c < b->n + n + 1)
			c *= 2;
		p = realloc(b->s, c);
		if (!p)
			return -1;
		b->s = p;
		b->cap = c;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
	return 0;
}

/* str.replace(from, to) on all non-overlapping occurrences */
static int str_replace(struct sb *out, const char *s, size_t n, const char *from,
		       const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), i = 0;

	out->n = 0;
	if (sb_put(out, "", 0))
		return -1;
	if (!fl)
		return sb_put(out, s, n);
	while (i < n) {
		if (i + fl <= n && !memcmp(s + i, from, fl)) {
			if (sb_put(out, to, tl))
				return -1;
			i += fl;
		} else {
			if (sb_put(out, s + i, 1))
				return -1;
			i++;
		}
	}
	return 0;
}

static int wp_cleanup(struct sb *b)
{
	static const char *pairs[][2] = {
		{ " .", "." }, { " ?", "?" }, { " !", "!" }, { " ,", "," },
		{ " ' ", "'" }, { " n't", "n't" }, { " 'm", "'m" },
		{ " do not", " don't" }, { " 's", "'s" }, { " 've", "'ve" },
		{ " 're", "'re" },
	};
	struct sb t = { 0 };

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		if (str_replace(&t, b->s, b->n, pairs[i][0], pairs[i][1])) {
			free(t.s);
			return -1;
		}
		b->n = 0;
		if (sb_put(b, t.s, t.n)) {
			free(t.s);
			return -1;
		}
	}
	free(t.s);
	return 0;
}

static int replace_rx(struct sb *out, const char *s, size_t n,
		      const struct rx *rx, const char *with, pcre2_match_data *md)
{
	size_t pos = 0, last = 0, wl = strlen(with);

	out->n = 0;
	if (sb_put(out, "", 0))
		return -1;
	while (pos <= n) {
		int rc = pcre2_match(rx->code, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
		PCRE2_SIZE *ov;

		if (rc < 0)
			break;
		ov = pcre2_get_ovector_pointer(md);
		if (ov[0] == ov[1]) {
			size_t k = 1;

			if (ov[0] >= n)
				break;
			tok_decode1(s + ov[0], n - ov[0], &k);
			pos = ov[0] + k;
			continue;
		}
		if (sb_put(out, s + last, ov[0] - last) || sb_put(out, with, wl))
			return -1;
		last = pos = ov[1];
	}
	return sb_put(out, s + last, n - last);
}

static int dec_one(const struct dec *d, struct strv *v)
{
	struct strv w = { 0 };
	struct sb b = { 0 };
	int r = 0;

	switch (d->type) {
	case D_SEQ:
		for (size_t i = 0; i < d->nsub; i++)
			if (dec_one(&d->sub[i], v))
				return -1;
		return 0;
	case D_BYTELEVEL: {
		for (size_t i = 0; i < v->n && !r; i++) {
			const char *s = v->s[i];
			size_t n = v->len[i], j = 0, mark = b.n;
			int ok = 1;

			while (j < n) {
				size_t k;
				uint32_t c = tok_decode1(s + j, n - j, &k);

				if (c < 0x144 && tok_cp2byte_ok[c]) {
					char by = (char)tok_cp2byte[c];

					r = sb_put(&b, &by, 1);
				} else {
					ok = 0;
					break;
				}
				j += k;
			}
			if (!ok) {
				b.n = mark;
				r = sb_put(&b, s, n);
			}
		}
		if (!r) {
			size_t ol;
			char *l = hf_utf8_lossy(b.s ? b.s : "", b.n, &ol);

			r = !l || sv_push(&w, l, ol);
			free(l);
		}
		break;
	}
	case D_WORDPIECE: {
		size_t pl = strlen(d->prefix);

		for (size_t i = 0; i < v->n && !r; i++) {
			b.n = 0;
			r = sb_put(&b, "", 0);
			if (i && v->len[i] >= pl && !memcmp(v->s[i], d->prefix, pl))
				r = r || sb_put(&b, v->s[i] + pl, v->len[i] - pl);
			else if (i)
				r = r || sb_put(&b, " ", 1) || sb_put(&b, v->s[i], v->len[i]);
			else
				r = r || sb_put(&b, v->s[i], v->len[i]);
			if (!r && d->cleanup)
				r = wp_cleanup(&b);
			r = r || sv_push(&w, b.s, b.n);
		}
		break;
	}
	case D_METASPACE: {
		for (size_t i = 0; i < v->n && !r; i++) {
			size_t j = 0, n = v->len[i];

			b.n = 0;
			r = sb_put(&b, "", 0);
			while (j < n && !r) {
				size_t k;
				uint32_t c = tok_decode1(v->s[i] + j, n - j, &k);

				if (c == d->replacement) {
					if (!(i == 0 && d->scheme != PS_NEVER))
						r = sb_put(&b, " ", 1);
				} else {
					r = sb_put(&b, v->s[i] + j, k);
				}
				j += k;
			}
			r = r || sv_push(&w, b.s, b.n);
		}
		break;
	}
	case D_BPE:
		for (size_t i = 0; i < v->n && !r; i++) {
			r = str_replace(&b, v->s[i], v->len[i], d->suffix,
					i + 1 == v->n ? "" : " ");
			r = r || sv_push(&w, b.s, b.n);
		}
		break;
	case D_BYTEFALLBACK: {
		struct sb bytes = { 0 };
		size_t nbytes = 0;

		for (size_t i = 0; i <= v->n && !r; i++) {
			const char *s = i < v->n ? v->s[i] : NULL;
			int isb = 0;
			unsigned byte = 0;

			if (s && v->len[i] == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') {
				char hx[3] = { s[3], s[4], 0 }, *end;
				int hexok = ((hx[0] >= '0' && hx[0] <= '9') || (hx[0] >= 'A' && hx[0] <= 'F') || (hx[0] >= 'a' && hx[0] <= 'f')) &&
					    ((hx[1] >= '0' && hx[1] <= '9') || (hx[1] >= 'A' && hx[1] <= 'F') || (hx[1] >= 'a' && hx[1] <= 'f'));

				byte = (unsigned)strtoul(hx, &end, 16);
				isb = hexok;
			}
			if (isb) {
				char by = (char)byte;

				r = sb_put(&bytes, &by, 1);
				nbytes++;
				continue;
			}
			if (nbytes) {
				if (hf_utf8_valid(bytes.s, bytes.n, NULL)) {
					r = sv_push(&w, bytes.s, bytes.n);
				} else {
					for (size_t q = 0; q < nbytes && !r; q++)
						r = sv_push(&w, "\xEF\xBF\xBD", 3);
				}
				bytes.n = 0;
				nbytes = 0;
			}
			if (s && !r)
				r = sv_push(&w, s, v->len[i]);
		}
		free(bytes.s);
		break;
	}
	case D_FUSE:
		r = sb_put(&b, "", 0);
		for (size_t i = 0; i < v->n && !r; i++)
			r = sb_put(&b, v->s[i], v->len[i]);
		r = r || sv_push(&w, b.s, b.n);
		break;
	case D_STRIP:
		for (size_t i = 0; i < v->n && !r; i++) {
			const char *s = v->s[i];
			size_t n = v->len[i], a = 0, e = n, cnt = 0;

			/* leading: up to start chars equal to content */
			while (a < n && cnt < d->start) {
				size_t k;
				uint32_t c = tok_decode1(s + a, n - a, &k);

				if (c != d->content)
					break;
				a += k;
				cnt++;
			}
			cnt = 0;
			while (e > a && cnt < d->stop) {
				size_t q = e - 1, k;
				uint32_t c;

				while (q > a && ((unsigned char)s[q] & 0xC0) == 0x80)
					q--;
				c = tok_decode1(s + q, e - q, &k);
				if (c != d->content)
					break;
				e = q;
				cnt++;
			}
			r = sv_push(&w, s + a, e - a);
		}
		break;
	case D_REPLACE: {
		pcre2_match_data *md = pcre2_match_data_create(4, NULL);

		if (!md)
			return -1;
		for (size_t i = 0; i < v->n && !r; i++) {
			r = replace_rx(&b, v->s[i], v->len[i], &d->rx, d->with, md);
			r = r || sv_push(&w, b.s, b.n);
		}
		pcre2_match_data_free(md);
		break;
	}
	case D_CTC: {
		const char *prev = NULL;
		size_t prevlen = 0;

		for (size_t i = 0; i < v->n && !r; i++) {
			struct sb t = { 0 };

			if (prev && prevlen == v->len[i] && !memcmp(prev, v->s[i], prevlen))
				continue;
			prev = v->s[i];
			prevlen = v->len[i];
			r = str_replace(&b, v->s[i], v->len[i], d->pad, "");
			if (!r && d->cleanup) {
				r = wp_cleanup(&b);
				r = r || str_replace(&t, b.s, b.n, d->delim, " ");
				if (!r) {
					b.n = 0;
					r = sb_put(&b, t.s, t.n);
				}
			}
			free(t.s);
			if (!r && b.n)
				r = sv_push(&w, b.s, b.n);
		}
		break;
	}
	}
	free(b.s);
	if (r) {
		sv_free(&w);
		return -1;
	}
	sv_move(v, &w);
	return 0;
}

int tok_dec_apply(const struct dec *d, struct strv *v)
{
	return dec_one(d, v);
}

int hf_tok_decode(const struct hf_tok *t, const uint32_t *ids, size_t n,
		  int skip_special, char **out, size_t *len, struct hf_err *err)
{
	struct strv v = { 0 };
	struct sb b = { 0 };

	for (size_t i = 0; i < n; i++) {
		size_t tl;
		const char *s = hf_tok_id_to_token(t, ids[i], &tl);

		if (!s)
			continue;	/* HF drops ids it does not know */
		if (skip_special && hf_tok_is_special(t, ids[i]))
			continue;
		if (sv_push(&v, s, tl))
			goto nomem;
	}
	if (t->dec) {
		if (tok_dec_apply(t->dec, &v))
			goto nomem;
		if (sb_put(&b, "", 0))
			goto nomem;
		for (size_t i = 0; i < v.n; i++)
			if (sb_put(&b, v.s[i], v.len[i]))
				goto nomem;
	} else {
		if (sb_put(&b, "", 0))
			goto nomem;
		for (size_t i = 0; i < v.n; i++)
			if ((i && sb_put(&b, " ", 1)) || sb_put(&b, v.s[i], v.len[i]))
				goto nomem;
	}
	sv_free(&v);
	*out = b.s;
	if (len)
		*len = b.n;
	return 0;
nomem:
	sv_free(&v);
	free(b.s);
	return hf_err_set(err, HF_ENOMEM, "out of memory decoding %zu ids", n);
}
