/* lib/tok/load.c: tokenizer.json -> struct hf_tok, with errors that name
 * the JSON path ("tokenizer.json: model.type: unknown model 'Foo'"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"
#include "core/utf8.h"
#include "tok/internal.h"

#define NONE 0xFFFFFFFFu
#define PATH_MAX_ 512

size_t tok_u8put(uint32_t c, char *o);

static int bad(struct hf_err *err, const char *path, const char *what)
{
	return hf_err_set(err, HF_EFORMAT, "%s: %s", path, what);
}

static int get_type(const json_t *j, const char *path, const char **type,
		    struct hf_err *err)
{
	if (!json_is_object(j))
		return bad(err, path, "must be an object");
	return hf_json_req_str(j, "type", type, path, err);
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

static int one_char(const char *s, uint32_t *c, const char *path,
		    const char *key, struct hf_err *err)
{
	size_t k, n = strlen(s);

	if (!n || !hf_utf8_valid(s, n, NULL))
		return hf_err_set(err, HF_EFORMAT, "%s: key '%s' must be one character", path, key);
	*c = tok_decode1(s, n, &k);
	if (k != n)
		return hf_err_set(err, HF_EFORMAT, "%s: key '%s' must be one character", path, key);
	return 0;
}

/* {"String": s} or {"Regex": r} */
static int load_pattern(struct rx *rx, const json_t *j, const char *path,
			struct hf_err *err)
{
	char p[PATH_MAX_];
	const json_t *pat = json_object_get(j, "pattern");
	const json_t *v;

	snprintf(p, sizeof(p), "%s.pattern", path);
	if (!json_is_object(pat))
		return bad(err, p, "must be {\"String\": ...} or {\"Regex\": ...}");
	if ((v = json_object_get(pat, "String")) && json_is_string(v))
		return tok_rx_compile(rx, json_string_value(v), json_string_length(v), 1, p, err);
	if ((v = json_object_get(pat, "Regex")) && json_is_string(v))
		return tok_rx_compile(rx, json_string_value(v), json_string_length(v), 0, p, err);
	return bad(err, p, "must be {\"String\": ...} or {\"Regex\": ...}");
}

static int load_list(const json_t *j, const char *key, const char *path,
		     const json_t **arr, struct hf_err *err)
{
	*arr = json_object_get(j, key);
	if (!json_is_array(*arr))
		return hf_err_set(err, HF_EFORMAT, "%s: key '%s' must be an array", path, key);
	return 0;
}

/* ---- normalizers ---- */

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

static unsigned char *b64dec(const char *s, size_t *outlen)
{
	size_t n = strlen(s), o = 0;
	unsigned char *d = malloc(n / 4 * 3 + 4);
	uint32_t acc = 0;
	int bits = 0;

	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);

		if (s[i] == '=' || s[i] == '\n')
			continue;
		if (v < 0) {
			free(d);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[o++] = (unsigned char)(acc >> bits);
		}
	}
	*outlen = o;
	return d;
}

int tok_norm_load(struct norm *n, const json_t *j, const char *path,
	      struct hf_err *err)
{
	const char *type, *s;
	char p[PATH_MAX_];
	int r;

	memset(n, 0, sizeof(*n));
	if ((r = get_type(j, path, &type, err)))
		return r;
	if (!strcmp(type, "Sequence")) {
		const json_t *arr;

		n->type = N_SEQ;
		if ((r = load_list(j, "normalizers", path, &arr, err)))
			return r;
		n->sub = calloc(json_array_size(arr) + 1, sizeof(*n->sub));
		if (!n->sub)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		for (size_t i = 0; i < json_array_size(arr); i++) {
			snprintf(p, sizeof(p), "%s.normalizers[%zu]", path, i);
			n->nsub++;
			if ((r = tok_norm_load(&n->sub[i], json_array_get(arr, i), p, err)))
				return r;
		}
	} else if (!strcmp(type, "NFC")) {
		n->type = N_NFC;
	} else if (!strcmp(type, "NFD")) {
		n->type = N_NFD;
	} else if (!strcmp(type, "NFKC")) {
		n->type = N_NFKC;
	} else if (!strcmp(type, "NFKD")) {
		n->type = N_NFKD;
	} else if (!strcmp(type, "Lowercase")) {
		n->type = N_LOWER;
	} else if (!strcmp(type, "StripAccents")) {
		n->type = N_STRIP_ACCENTS;
	} else if (!strcmp(type, "Nmt")) {
		n->type = N_NMT;
	} else if (!strcmp(type, "ByteLevel")) {
		n->type = N_BYTELEVEL;
		tok_bytelevel_init();
	} else if (!strcmp(type, "Strip")) {
		n->type = N_STRIP;
		if ((r = hf_json_bool(j, "strip_left", 1, &n->strip_left, path, err)) ||
		    (r = hf_json_bool(j, "strip_right", 1, &n->strip_right, path, err)))
			return r;
	} else if (!strcmp(type, "Replace")) {
		n->type = N_REPLACE;
		if ((r = hf_json_req_str(j, "content", &s, path, err)))
			return r;
		if (!(n->content = xstrdup(s)))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if ((r = load_pattern(&n->rx, j, path, err)))
			return r;
	} else if (!strcmp(type, "Prepend")) {
		n->type = N_PREPEND;
		if ((r = hf_json_req_str(j, "prepend", &s, path, err)))
			return r;
		if (!(n->content = xstrdup(s)))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	} else if (!strcmp(type, "BertNormalizer")) {
		int sa;
		const json_t *v = json_object_get(j, "strip_accents");

		n->type = N_BERT;
		if ((r = hf_json_bool(j, "clean_text", 1, &n->clean_text, path, err)) ||
		    (r = hf_json_bool(j, "handle_chinese_chars", 1, &n->chinese, path, err)) ||
		    (r = hf_json_bool(j, "lowercase", 1, &n->lowercase, path, err)) ||
		    (r = hf_json_bool(j, "strip_accents", 0, &sa, path, err)))
			return r;
		n->strip_accents = (!v || json_is_null(v)) ? n->lowercase : sa;
	} else if (!strcmp(type, "Precompiled")) {
		unsigned char *d;
		size_t dl, ts;

		n->type = N_PRECOMPILED;
		if ((r = hf_json_req_str(j, "precompiled_charsmap", &s, path, err)))
			return r;
		snprintf(p, sizeof(p), "%s.precompiled_charsmap", path);
		if (!(d = b64dec(s, &dl)))
			return bad(err, p, "bad base64");
		if (dl < 4) {
			free(d);
			return bad(err, p, "too short");
		}
		ts = (size_t)d[0] | ((size_t)d[1] << 8) | ((size_t)d[2] << 16) |
		     ((size_t)d[3] << 24);
		if (ts > dl - 4 || ts % 4) {
			free(d);
			return bad(err, p, "trie size past the end of the data");
		}
		n->ntrie = ts / 4;
		n->trie = malloc(ts + 4);
		n->nblob = dl - 4 - ts;
		n->blob = malloc(n->nblob + 1);
		if (!n->trie || !n->blob) {
			free(d);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < n->ntrie; i++) {
			const unsigned char *q = d + 4 + i * 4;

			n->trie[i] = (uint32_t)q[0] | ((uint32_t)q[1] << 8) |
				     ((uint32_t)q[2] << 16) | ((uint32_t)q[3] << 24);
		}
		memcpy(n->blob, d + 4 + ts, n->nblob);
		n->blob[n->nblob] = 0;
		free(d);
	} else {
		snprintf(p, sizeof(p), "%s.type", path);
		return hf_err_set(err, HF_EFORMAT, "%s: unknown normalizer '%s'", p, type);
	}
	return 0;
}

void tok_norm_free(struct norm *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nsub; i++)
		tok_norm_free(&n->sub[i]);
	free(n->sub);
	tok_rx_free(&n->rx);
	free(n->content);
	free(n->trie);
	free(n->blob);
}

/* ---- pre-tokenizers ---- */

static const char GPT2_RX[] =
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int load_behavior(const json_t *j, const char *path, enum split_behavior def,
			 enum split_behavior *b, struct hf_err *err)
{
	const char *s;
	int r;

	if ((r = hf_json_str(j, "behavior", NULL, &s, path, err)))
		return r;
	*b = def;
	if (!s)
		return 0;
	if (!strcmp(s, "Removed"))
		*b = B_REMOVED;
	else if (!strcmp(s, "Isolated"))
		*b = B_ISOLATED;
	else if (!strcmp(s, "MergedWithPrevious"))
		*b = B_MERGED_PREV;
	else if (!strcmp(s, "MergedWithNext"))
		*b = B_MERGED_NEXT;
	else if (!strcmp(s, "Contiguous"))
		*b = B_CONTIGUOUS;
	else
		return hf_err_set(err, HF_EFORMAT, "%s.behavior: unknown behavior '%s'",
				  path, s);
	return 0;
}

static int load_scheme(const json_t *j, const char *path, enum prepend_scheme *ps,
		       struct hf_err *err)
{
	const char *s;
	int aps, r;

	if ((r = hf_json_str(j, "prepend_scheme", NULL, &s, path, err)) ||
	    (r = hf_json_bool(j, "add_prefix_space", 1, &aps, path, err)))
		return r;
	*ps = aps ? PS_ALWAYS : PS_NEVER;
	if (!s)
		return 0;
	if (!strcmp(s, "always"))
		*ps = PS_ALWAYS;
	else if (!strcmp(s, "first"))
		*ps = PS_FIRST;
	else if (!strcmp(s, "never"))
		*ps = PS_NEVER;
	else
		return hf_err_set(err, HF_EFORMAT,
				  "%s.prepend_scheme: unknown scheme '%s'", path, s);
	return 0;
}

int tok_pretok_load(struct pretok *pt, const json_t *j, const char *path,
		struct hf_err *err)
{
	const char *type, *s;
	char p[PATH_MAX_];
	int r;

	memset(pt, 0, sizeof(*pt));
	if ((r = get_type(j, path, &type, err)))
		return r;
	if (!strcmp(type, "Sequence")) {
		const json_t *arr;

		pt->type = P_SEQ;
		if ((r = load_list(j, "pretokenizers", path, &arr, err)))
			return r;
		pt->sub = calloc(json_array_size(arr) + 1, sizeof(*pt->sub));
		if (!pt->sub)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		for (size_t i = 0; i < json_array_size(arr); i++) {
			snprintf(p, sizeof(p), "%s.pretokenizers[%zu]", path, i);
			pt->nsub++;
			if ((r = tok_pretok_load(&pt->sub[i], json_array_get(arr, i), p, err)))
				return r;
		}
	} else if (!strcmp(type, "ByteLevel")) {
		pt->type = P_BYTELEVEL;
		tok_bytelevel_init();
		if ((r = hf_json_bool(j, "add_prefix_space", 1, &pt->add_prefix_space, path, err)) ||
		    (r = hf_json_bool(j, "use_regex", 1, &pt->use_regex, path, err)) ||
		    (r = hf_json_bool(j, "trim_offsets", 1, &pt->trim_offsets, path, err)))
			return r;
		if (pt->use_regex &&
		    (r = tok_rx_compile(&pt->rx, GPT2_RX, strlen(GPT2_RX), 0, path, err)))
			return r;
	} else if (!strcmp(type, "Split")) {
		pt->type = P_SPLIT;
		if ((r = load_pattern(&pt->rx, j, path, err)) ||
		    (r = load_behavior(j, path, B_ISOLATED, &pt->behavior, err)) ||
		    (r = hf_json_bool(j, "invert", 0, &pt->invert, path, err)))
			return r;
	} else if (!strcmp(type, "Metaspace")) {
		pt->type = P_METASPACE;
		if ((r = hf_json_str(j, "replacement", "\xE2\x96\x81", &s, path, err)) ||
		    (r = one_char(s, &pt->replacement, path, "replacement", err)) ||
		    (r = load_scheme(j, path, &pt->scheme, err)) ||
		    (r = hf_json_bool(j, "split", 1, &pt->split, path, err)))
			return r;
	} else if (!strcmp(type, "Whitespace")) {
		static const char wrx[] = "\\w+|[^\\w\\s]+";

		pt->type = P_WHITESPACE;
		if ((r = tok_rx_compile(&pt->rx, wrx, strlen(wrx), 0, path, err)))
			return r;
	} else if (!strcmp(type, "WhitespaceSplit")) {
		pt->type = P_WHITESPACE_SPLIT;
	} else if (!strcmp(type, "BertPreTokenizer")) {
		pt->type = P_BERT;
	} else if (!strcmp(type, "Punctuation")) {
		pt->type = P_PUNCT;
		if ((r = load_behavior(j, path, B_ISOLATED, &pt->behavior, err)))
			return r;
	} else if (!strcmp(type, "Digits")) {
		pt->type = P_DIGITS;
		if ((r = hf_json_bool(j, "individual_digits", 0, &pt->individual_digits, path, err)))
			return r;
	} else if (!strcmp(type, "CharDelimiterSplit") || !strcmp(type, "Delimiter")) {
		pt->type = P_DELIM;
		if ((r = hf_json_req_str(j, "delimiter", &s, path, err)) ||
		    (r = one_char(s, &pt->delim, path, "delimiter", err)))
			return r;
	} else if (!strcmp(type, "FixedLength")) {
		int64_t len;

		pt->type = P_FIXED;
		if ((r = hf_json_int(j, "length", 5, &len, path, err)))
			return r;
		if (len < 1)
			return hf_err_set(err, HF_EFORMAT, "%s.length: must be positive", path);
		pt->length = (size_t)len;
	} else if (!strcmp(type, "UnicodeScripts")) {
		pt->type = P_SCRIPTS;
		if ((r = tok_scripts_compile(pt, path, err)))
			return r;
	} else {
		snprintf(p, sizeof(p), "%s.type", path);
		return hf_err_set(err, HF_EFORMAT, "%s: unknown pre-tokenizer '%s'", p, type);
	}
	return 0;
}

void tok_pretok_free(struct pretok *pt)
{
	if (!pt)
		return;
	for (size_t i = 0; i < pt->nsub; i++)
		tok_pretok_free(&pt->sub[i]);
	free(pt->sub);
	free(pt->script_of_group);
	tok_rx_free(&pt->rx);
}

/* ---- models ---- */

static int vocab_set(struct vocab *v, size_t n, struct hf_err *err)
{
	v->n = n;
	v->tok = calloc(n + 1, sizeof(*v->tok));
	v->tok_len = calloc(n + 1, sizeof(*v->tok_len));
	if (!v->tok || !v->tok_len)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	/* map keys are stable now: point id -> token at them */
	for (size_t e = 0; e < v->map.n; e++) {
		uint32_t id = v->map.val[e];

		if (id < n) {
			v->tok[id] = v->map.keys + v->map.koff[e];
			v->tok_len[id] = v->map.klen[e];
		}
	}
	return 0;
}

static int load_vocab_obj(struct model *m, const json_t *vj, const char *path,
			  struct hf_err *err)
{
	const char *k;
	json_t *val;
	size_t maxid = 0;

	if (!json_is_object(vj))
		return hf_err_set(err, HF_EFORMAT, "%s.vocab: must be an object", path);
	if (tok_smap_init(&m->v.map, json_object_size(vj)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	json_object_foreach((json_t *)vj, k, val) {
		json_int_t id;

		if (!json_is_integer(val) || (id = json_integer_value(val)) < 0 ||
		    id > 0x7FFFFFFF)
			return hf_err_set(err, HF_EFORMAT,
					  "%s.vocab: token '%s' has a bad id", path, k);
		if (tok_smap_put(&m->v.map, k, strlen(k), (uint32_t)id))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if ((size_t)id + 1 > maxid)
			maxid = (size_t)id + 1;
	}
	if (maxid > json_object_size(vj) * 4 + 1024)
		return hf_err_set(err, HF_EFORMAT, "%s.vocab: ids are too sparse", path);
	return vocab_set(&m->v, maxid, err);
}

static void byte_ids(struct model *m)
{
	m->have_bytes = 1;
	for (int b = 0; b < 256; b++) {
		char k[8];

		snprintf(k, sizeof(k), "<0x%02X>", b);
		if (!tok_smap_get(&m->v.map, k, 6, &m->byte_id[b]))
			m->byte_id[b] = NONE;
	}
}

static int opt_str(const json_t *j, const char *key, const char *def, char **out,
		   const char *path, struct hf_err *err)
{
	const char *s;
	int r = hf_json_str(j, key, def, &s, path, err);

	*out = NULL;
	if (r || !s)
		return r;
	if (!(*out = xstrdup(s)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	return 0;
}

static int load_bpe(struct model *m, const json_t *j, const char *path,
		    struct hf_err *err)
{
	const json_t *merges = json_object_get(j, "merges");
	char p[PATH_MAX_];
	int r;
	uint32_t id;

	m->type = M_BPE;
	if ((r = load_vocab_obj(m, json_object_get(j, "vocab"), path, err)))
		return r;
	if ((r = opt_str(j, "unk_token", NULL, &m->unk, path, err)) ||
	    (r = opt_str(j, "continuing_subword_prefix", NULL, &m->prefix, path, err)) ||
	    (r = opt_str(j, "end_of_word_suffix", NULL, &m->suffix, path, err)) ||
	    (r = hf_json_bool(j, "fuse_unk", 0, &m->fuse_unk, path, err)) ||
	    (r = hf_json_bool(j, "byte_fallback", 0, &m->byte_fallback, path, err)) ||
	    (r = hf_json_bool(j, "ignore_merges", 0, &m->ignore_merges, path, err)))
		return r;
	if (m->prefix && !*m->prefix) {
		free(m->prefix);
		m->prefix = NULL;
	}
	if (m->suffix && !*m->suffix) {
		free(m->suffix);
		m->suffix = NULL;
	}
	m->unk_id = -1;
	if (m->unk && tok_smap_get(&m->v.map, m->unk, strlen(m->unk), &id))
		m->unk_id = id;
	if (merges && !json_is_null(merges) && !json_is_array(merges))
		return hf_err_set(err, HF_EFORMAT, "%s.merges: must be an array", path);
	if (merges && json_is_null(merges))
		merges = NULL;
	if (tok_pmap_init(&m->merges, json_array_size(merges) + 1))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(merges); i++) {
		const json_t *e = json_array_get(merges, i);
		const char *a, *b;
		size_t al, bl;
		uint32_t ia, ib, inew;
		char *cat, catb[256];

#define MERGE_PATH() snprintf(p, sizeof(p), "%s.merges[%zu]", path, i)
		if (json_is_string(e)) {
			const char *s = json_string_value(e), *sp = strchr(s, ' ');

			if (!sp || strchr(sp + 1, ' '))
				return MERGE_PATH(), bad(err, p, "must be two tokens separated by one space");
			a = s;
			al = (size_t)(sp - s);
			b = sp + 1;
			bl = strlen(b);
		} else if (json_is_array(e) && json_array_size(e) == 2 &&
			   json_is_string(json_array_get(e, 0)) &&
			   json_is_string(json_array_get(e, 1))) {
			a = json_string_value(json_array_get(e, 0));
			al = json_string_length(json_array_get(e, 0));
			b = json_string_value(json_array_get(e, 1));
			bl = json_string_length(json_array_get(e, 1));
		} else {
			return MERGE_PATH(), bad(err, p, "must be \"a b\" or [\"a\", \"b\"]");
		}
		if (!tok_smap_get(&m->v.map, a, al, &ia) || !tok_smap_get(&m->v.map, b, bl, &ib))
			return MERGE_PATH(), hf_err_set(err, HF_EFORMAT, "%s: token '%.*s' or '%.*s' is not in the vocab",
					  p, (int)al, a, (int)bl, b);
		cat = al + bl < sizeof(catb) ? catb : malloc(al + bl + 1);
		if (!cat)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		memcpy(cat, a, al);
		memcpy(cat + al, b, bl);
		if (!tok_smap_get(&m->v.map, cat, al + bl, &inew)) {
			MERGE_PATH();
			r = hf_err_set(err, HF_EFORMAT, "%s: merged token '%.*s' is not in the vocab",
				       p, (int)(al + bl), cat);
			if (cat != catb)
				free(cat);
			return r;
		}
		if (cat != catb)
			free(cat);
		/* a repeated pair keeps its first (best) rank */
		{
			uint32_t r0, i0;

			if (tok_pmap_get(&m->merges, ia, ib, &r0, &i0))
				continue;
		}
		if (tok_pmap_put(&m->merges, ia, ib, (uint32_t)i, inew))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
#undef MERGE_PATH
	}
	for (int c = 0; c < 128; c++) {
		char k = (char)c;

		if (!tok_smap_get(&m->v.map, &k, 1, &m->char_id[c]))
			m->char_id[c] = NONE;
	}
	if (m->byte_fallback)
		byte_ids(m);
	return 0;
}

static int load_unigram(struct model *m, const json_t *j, const char *path,
			struct hf_err *err)
{
	const json_t *vj = json_object_get(j, "vocab");
	char p[PATH_MAX_];
	int64_t unk;
	int r;

	m->type = M_UNIGRAM;
	if (!json_is_array(vj))
		return hf_err_set(err, HF_EFORMAT, "%s.vocab: must be an array", path);
	if ((r = hf_json_int(j, "unk_id", -1, &unk, path, err)) ||
	    (r = hf_json_bool(j, "byte_fallback", 0, &m->byte_fallback, path, err)))
		return r;
	if (tok_smap_init(&m->v.map, json_array_size(vj)) ||
	    tok_smap_init(&m->prefixes, json_array_size(vj) * 2))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	m->scores = malloc((json_array_size(vj) + 1) * sizeof(double));
	if (!m->scores)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	m->min_score = 1e300;
	for (size_t i = 0; i < json_array_size(vj); i++) {
		const json_t *e = json_array_get(vj, i);
		const char *s;
		size_t sl;

		snprintf(p, sizeof(p), "%s.vocab[%zu]", path, i);
		if (!json_is_array(e) || json_array_size(e) != 2 ||
		    !json_is_string(json_array_get(e, 0)) ||
		    !json_is_number(json_array_get(e, 1)))
			return bad(err, p, "must be [\"piece\", score]");
		s = json_string_value(json_array_get(e, 0));
		sl = json_string_length(json_array_get(e, 0));
		m->scores[i] = json_number_value(json_array_get(e, 1));
		if (m->scores[i] < m->min_score)
			m->min_score = m->scores[i];
		if (tok_smap_put(&m->v.map, s, sl, (uint32_t)i))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		/* proper prefixes at char boundaries */
		for (size_t q = 1; q < sl; q++)
			if (((unsigned char)s[q] & 0xC0) != 0x80 &&
			    tok_smap_put(&m->prefixes, s, q, 1))
				return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (!json_array_size(vj))
		m->min_score = 0;
	if (unk >= (int64_t)json_array_size(vj))
		return hf_err_set(err, HF_EFORMAT, "%s.unk_id: %lld is past the vocab (%zu pieces)",
				  path, (long long)unk, json_array_size(vj));
	m->uni_unk = unk;
	m->unk_id = unk;
	if (m->byte_fallback)
		byte_ids(m);
	return vocab_set(&m->v, json_array_size(vj), err);
}

int tok_model_load(struct model *m, const json_t *j, const char *path,
	       struct hf_err *err)
{
	const char *type;
	char p[PATH_MAX_];
	int r;
	uint32_t id;

	memset(m, 0, sizeof(*m));
	m->unk_id = -1;
	m->uni_unk = -1;
	if (!json_is_object(j))
		return bad(err, path, "must be an object");
	if ((r = hf_json_str(j, "type", NULL, &type, path, err)))
		return r;
	if (!type) {
		/* old files: infer from the fields, as serde's untagged enum */
		const json_t *v = json_object_get(j, "vocab");

		if (json_object_get(j, "merges"))
			type = "BPE";
		else if (json_is_array(v))
			type = "Unigram";
		else if (json_object_get(j, "continuing_subword_prefix") ||
			 json_object_get(j, "max_input_chars_per_word"))
			type = "WordPiece";
		else
			type = "WordLevel";
	}
	if (!strcmp(type, "BPE"))
		return load_bpe(m, j, path, err);
	if (!strcmp(type, "Unigram"))
		return load_unigram(m, j, path, err);
	if (!strcmp(type, "WordPiece")) {
		int64_t mx;

		m->type = M_WORDPIECE;
		if ((r = load_vocab_obj(m, json_object_get(j, "vocab"), path, err)) ||
		    (r = opt_str(j, "unk_token", "[UNK]", &m->unk, path, err)) ||
		    (r = opt_str(j, "continuing_subword_prefix", "##", &m->prefix, path, err)) ||
		    (r = hf_json_int(j, "max_input_chars_per_word", 100, &mx, path, err)))
			return r;
		m->max_chars = mx < 0 ? 0 : (size_t)mx;
		if (tok_smap_get(&m->v.map, m->unk, strlen(m->unk), &id))
			m->unk_id = id;
		return 0;
	}
	if (!strcmp(type, "WordLevel")) {
		m->type = M_WORDLEVEL;
		if ((r = load_vocab_obj(m, json_object_get(j, "vocab"), path, err)) ||
		    (r = opt_str(j, "unk_token", "<unk>", &m->unk, path, err)))
			return r;
		if (tok_smap_get(&m->v.map, m->unk, strlen(m->unk), &id))
			m->unk_id = id;
		return 0;
	}
	snprintf(p, sizeof(p), "%s.type", path);
	return hf_err_set(err, HF_EFORMAT, "%s: unknown model '%s'", p, type);
}

void tok_model_free(struct model *m)
{
	tok_smap_free(&m->v.map);
	tok_smap_free(&m->prefixes);
	free(m->v.tok);
	free(m->v.tok_len);
	tok_pmap_free(&m->merges);
	free(m->unk);
	free(m->prefix);
	free(m->suffix);
	free(m->scores);
}

/* ---- post-processors ---- */

static int tpl_special(struct tpl_item *it, const json_t *specials,
		       const char *path, struct hf_err *err)
{
	const json_t *sp = json_object_get(specials, it->special);
	const json_t *ids, *toks;

	if (!json_is_object(sp))
		return hf_err_set(err, HF_EFORMAT,
				  "%s.special_tokens: missing token '%s' used by the template",
				  path, it->special);
	ids = json_object_get(sp, "ids");
	toks = json_object_get(sp, "tokens");
	if (!json_is_array(ids) || !json_is_array(toks) ||
	    json_array_size(ids) != json_array_size(toks))
		return hf_err_set(err, HF_EFORMAT,
				  "%s.special_tokens.%s: ids and tokens must be arrays of one length",
				  path, it->special);
	it->nids = json_array_size(ids);
	it->ids = calloc(it->nids + 1, sizeof(*it->ids));
	it->toks = calloc(it->nids + 1, sizeof(*it->toks));
	if (!it->ids || !it->toks)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < it->nids; i++) {
		const json_t *a = json_array_get(ids, i), *b = json_array_get(toks, i);

		if (!json_is_integer(a) || json_integer_value(a) < 0 || !json_is_string(b))
			return hf_err_set(err, HF_EFORMAT, "%s.special_tokens.%s: bad entry %zu",
					  path, it->special, i);
		it->ids[i] = (uint32_t)json_integer_value(a);
		if (!(it->toks[i] = xstrdup(json_string_value(b))))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

/* "$A:0 [SEP]:1" and friends (processors/template.rs Piece::try_from) */
static int tpl_parse_word(struct tpl_item *it, const char *w, size_t n)
{
	const char *colon = memchr(w, ':', n);
	size_t base = colon ? (size_t)(colon - w) : n;
	uint32_t type = 0;

	if (colon) {
		char num[16];
		size_t nl = n - base - 1;
		char *end;

		if (!nl || nl >= sizeof(num))
			return -1;
		memcpy(num, colon + 1, nl);
		num[nl] = 0;
		type = (uint32_t)strtoul(num, &end, 10);
		if (*end)
			return -1;
	}
	it->type_id = type;
	if (w[0] == '$') {
		it->is_seq = 1;
		if (base == 1 || (base == 2 && w[1] == 'A')) {
			it->seq = 0;
		} else if (base == 2 && w[1] == 'B') {
			it->seq = 1;
		} else {
			char num[16], *end;

			if (base - 1 >= sizeof(num))
				return -1;
			memcpy(num, w + 1, base - 1);
			num[base - 1] = 0;
			it->seq = 0;
			it->type_id = (uint32_t)strtoul(num, &end, 10);
			if (*end)
				return -1;
		}
		return 0;
	}
	it->special = malloc(base + 1);
	if (!it->special)
		return -1;
	memcpy(it->special, w, base);
	it->special[base] = 0;
	return 0;
}

static int tpl_load(struct tpl_item **out, size_t *nout, const json_t *tj,
		    const json_t *specials, const char *path, struct hf_err *err)
{
	struct tpl_item *v;
	size_t n = 0;
	int r;

	if (json_is_string(tj)) {
		const char *s = json_string_value(tj);
		size_t cnt = 1;

		for (const char *q = s; *q; q++)
			cnt += *q == ' ';
		v = calloc(cnt + 1, sizeof(*v));
		if (!v)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		*out = v;
		while (*s) {
			size_t wl;

			while (*s == ' ')
				s++;
			if (!*s)
				break;
			wl = strcspn(s, " ");
			if (tpl_parse_word(&v[n], s, wl))
				return hf_err_set(err, HF_EFORMAT, "%s: bad template piece '%.*s'",
						  path, (int)wl, s);
			n++;
			*nout = n;
			s += wl;
		}
	} else if (json_is_array(tj)) {
		v = calloc(json_array_size(tj) + 1, sizeof(*v));
		if (!v)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		*out = v;
		for (size_t i = 0; i < json_array_size(tj); i++) {
			const json_t *e = json_array_get(tj, i), *s, *q;
			json_int_t ty;

			if ((s = json_object_get(e, "Sequence"))) {
				const char *id;

				if ((r = hf_json_req_str(s, "id", &id, path, err)))
					return r;
				v[n].is_seq = 1;
				v[n].seq = strcmp(id, "A") != 0;
				q = s;
			} else if ((s = json_object_get(e, "SpecialToken"))) {
				const char *id;

				if ((r = hf_json_req_str(s, "id", &id, path, err)))
					return r;
				if (!(v[n].special = xstrdup(id)))
					return hf_err_set(err, HF_ENOMEM, "out of memory");
				q = s;
			} else {
				return hf_err_set(err, HF_EFORMAT,
						  "%s[%zu]: must be {\"Sequence\": ...} or {\"SpecialToken\": ...}",
						  path, i);
			}
			ty = json_integer_value(json_object_get(q, "type_id"));
			v[n].type_id = ty < 0 ? 0 : (uint32_t)ty;
			n++;
			*nout = n;
		}
	} else {
		return bad(err, path, "must be a string or an array");
	}
	for (size_t i = 0; i < n; i++)
		if (!v[i].is_seq && (r = tpl_special(&v[i], specials, path, err)))
			return r;
	return 0;
}

static int pair_tok(const json_t *j, const char *key, char **tok, uint32_t *id,
		    const char *path, struct hf_err *err)
{
	const json_t *a = json_object_get(j, key);

	if (!json_is_array(a) || json_array_size(a) != 2 ||
	    !json_is_string(json_array_get(a, 0)) ||
	    !json_is_integer(json_array_get(a, 1)))
		return hf_err_set(err, HF_EFORMAT, "%s: key '%s' must be [\"token\", id]",
				  path, key);
	*id = (uint32_t)json_integer_value(json_array_get(a, 1));
	if (!(*tok = xstrdup(json_string_value(json_array_get(a, 0)))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	return 0;
}

/* Bert and Roberta processors as templates */
static int fixed_template(struct post *p, int roberta, struct hf_err *err)
{
	size_t ns = 3, np = roberta ? 6 : 5;
	struct tpl_item *s = calloc(ns, sizeof(*s)), *q = calloc(np, sizeof(*q));
	/* layout: 0 cls, 1 A, 2 sep | pair: cls A sep [sep] B sep */
	int seqs[6] = { -1, 0, -1, roberta ? -1 : 1, roberta ? 1 : -1, -1 };
	int cls_at[6] = { 1, 0, 0, 0, 0, 0 };

	if (!s || !q)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	p->single = s;
	p->pair = q;
	p->nsingle = ns;
	p->npair = np;
	for (size_t i = 0; i < np; i++) {
		struct tpl_item *it = &q[i];

		it->type_id = roberta ? 0 : (i >= 3 ? 1 : 0);
		if (seqs[i] >= 0) {
			it->is_seq = 1;
			it->seq = seqs[i];
			continue;
		}
		it->nids = 1;
		it->ids = malloc(sizeof(*it->ids));
		it->toks = calloc(2, sizeof(*it->toks));
		if (!it->ids || !it->toks)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		it->ids[0] = cls_at[i] ? p->cls_id : p->sep_id;
		it->toks[0] = xstrdup(cls_at[i] ? p->cls : p->sep);
		it->special = xstrdup(cls_at[i] ? p->cls : p->sep);
		if (!it->toks[0] || !it->special)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < ns; i++) {
		struct tpl_item *it = &s[i];

		if (i == 1) {
			it->is_seq = 1;
			continue;
		}
		it->nids = 1;
		it->ids = malloc(sizeof(*it->ids));
		it->toks = calloc(2, sizeof(*it->toks));
		if (!it->ids || !it->toks)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		it->ids[0] = i == 0 ? p->cls_id : p->sep_id;
		it->toks[0] = xstrdup(i == 0 ? p->cls : p->sep);
		it->special = xstrdup(i == 0 ? p->cls : p->sep);
		if (!it->toks[0] || !it->special)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

int tok_post_load(struct post *p, const struct hf_tok *t, const json_t *j,
	      const char *path, struct hf_err *err)
{
	const char *type;
	char q[PATH_MAX_];
	int r;

	memset(p, 0, sizeof(*p));
	if ((r = get_type(j, path, &type, err)))
		return r;
	if (!strcmp(type, "Sequence")) {
		const json_t *arr;

		p->type = PP_SEQ;
		if ((r = load_list(j, "processors", path, &arr, err)))
			return r;
		p->sub = calloc(json_array_size(arr) + 1, sizeof(*p->sub));
		if (!p->sub)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		for (size_t i = 0; i < json_array_size(arr); i++) {
			snprintf(q, sizeof(q), "%s.processors[%zu]", path, i);
			p->nsub++;
			if ((r = tok_post_load(&p->sub[i], t, json_array_get(arr, i), q, err)))
				return r;
		}
	} else if (!strcmp(type, "TemplateProcessing")) {
		const json_t *sp = json_object_get(j, "special_tokens");
		json_t *empty = NULL;

		p->type = PP_TEMPLATE;
		if (!sp || json_is_null(sp))
			sp = empty = json_object();
		snprintf(q, sizeof(q), "%s.single", path);
		r = tpl_load(&p->single, &p->nsingle, json_object_get(j, "single"),
			     sp, q, err);
		snprintf(q, sizeof(q), "%s.pair", path);
		if (!r)
			r = tpl_load(&p->pair, &p->npair, json_object_get(j, "pair"),
				     sp, q, err);
		json_decref(empty);
		if (r)
			return r;
	} else if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
		int rob = type[0] == 'R';

		p->type = rob ? PP_ROBERTA : PP_BERT;
		if ((r = pair_tok(j, "sep", &p->sep, &p->sep_id, path, err)) ||
		    (r = pair_tok(j, "cls", &p->cls, &p->cls_id, path, err)))
			return r;
		if (rob && ((r = hf_json_bool(j, "trim_offsets", 1, &p->trim_offsets, path, err)) ||
			    (r = hf_json_bool(j, "add_prefix_space", 1, &p->add_prefix_space, path, err))))
			return r;
		return fixed_template(p, rob, err);
	} else if (!strcmp(type, "ByteLevel")) {
		p->type = PP_BYTELEVEL;
		tok_bytelevel_init();
		if ((r = hf_json_bool(j, "trim_offsets", 1, &p->trim_offsets, path, err)) ||
		    (r = hf_json_bool(j, "add_prefix_space", 1, &p->add_prefix_space, path, err)))
			return r;
	} else {
		snprintf(q, sizeof(q), "%s.type", path);
		return hf_err_set(err, HF_EFORMAT, "%s: unknown post-processor '%s'", q, type);
	}
	return 0;
}

static void tpl_free(struct tpl_item *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].special);
		free(v[i].ids);
		for (size_t k = 0; v[i].toks && k < v[i].nids; k++)
			free(v[i].toks[k]);
		free(v[i].toks);
	}
	free(v);
}

void tok_post_free(struct post *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nsub; i++)
		tok_post_free(&p->sub[i]);
	free(p->sub);
	tpl_free(p->single, p->nsingle);
	tpl_free(p->pair, p->npair);
	free(p->cls);
	free(p->sep);
}

/* ---- decoders ---- */

int tok_dec_load(struct dec *d, const json_t *j, const char *path,
	     struct hf_err *err)
{
	const char *type, *s;
	char q[PATH_MAX_];
	int r;

	memset(d, 0, sizeof(*d));
	if ((r = get_type(j, path, &type, err)))
		return r;
	if (!strcmp(type, "Sequence")) {
		const json_t *arr;

		d->type = D_SEQ;
		if ((r = load_list(j, "decoders", path, &arr, err)))
			return r;
		d->sub = calloc(json_array_size(arr) + 1, sizeof(*d->sub));
		if (!d->sub)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		for (size_t i = 0; i < json_array_size(arr); i++) {
			snprintf(q, sizeof(q), "%s.decoders[%zu]", path, i);
			d->nsub++;
			if ((r = tok_dec_load(&d->sub[i], json_array_get(arr, i), q, err)))
				return r;
		}
	} else if (!strcmp(type, "ByteLevel")) {
		d->type = D_BYTELEVEL;
		tok_bytelevel_init();
	} else if (!strcmp(type, "WordPiece")) {
		d->type = D_WORDPIECE;
		if ((r = opt_str(j, "prefix", "##", &d->prefix, path, err)) ||
		    (r = hf_json_bool(j, "cleanup", 1, &d->cleanup, path, err)))
			return r;
	} else if (!strcmp(type, "Metaspace")) {
		d->type = D_METASPACE;
		if ((r = hf_json_str(j, "replacement", "\xE2\x96\x81", &s, path, err)) ||
		    (r = one_char(s, &d->replacement, path, "replacement", err)) ||
		    (r = load_scheme(j, path, &d->scheme, err)))
			return r;
	} else if (!strcmp(type, "BPEDecoder")) {
		d->type = D_BPE;
		if ((r = opt_str(j, "suffix", "</w>", &d->suffix, path, err)))
			return r;
	} else if (!strcmp(type, "ByteFallback")) {
		d->type = D_BYTEFALLBACK;
	} else if (!strcmp(type, "Fuse")) {
		d->type = D_FUSE;
	} else if (!strcmp(type, "Strip")) {
		int64_t a, b;

		d->type = D_STRIP;
		if ((r = hf_json_str(j, "content", " ", &s, path, err)) ||
		    (r = one_char(s, &d->content, path, "content", err)) ||
		    (r = hf_json_int(j, "start", 0, &a, path, err)) ||
		    (r = hf_json_int(j, "stop", 0, &b, path, err)))
			return r;
		d->start = a < 0 ? 0 : (size_t)a;
		d->stop = b < 0 ? 0 : (size_t)b;
	} else if (!strcmp(type, "Replace")) {
		d->type = D_REPLACE;
		if ((r = opt_str(j, "content", NULL, &d->with, path, err)))
			return r;
		if (!d->with)
			return hf_err_set(err, HF_EFORMAT, "%s: missing key 'content'", path);
		if ((r = load_pattern(&d->rx, j, path, err)))
			return r;
	} else if (!strcmp(type, "CTC")) {
		d->type = D_CTC;
		if ((r = opt_str(j, "pad_token", "<pad>", &d->pad, path, err)) ||
		    (r = opt_str(j, "word_delimiter_token", "|", &d->delim, path, err)) ||
		    (r = hf_json_bool(j, "cleanup", 1, &d->cleanup, path, err)))
			return r;
	} else {
		snprintf(q, sizeof(q), "%s.type", path);
		return hf_err_set(err, HF_EFORMAT, "%s: unknown decoder '%s'", q, type);
	}
	return 0;
}

void tok_dec_free(struct dec *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nsub; i++)
		tok_dec_free(&d->sub[i]);
	free(d->sub);
	free(d->prefix);
	free(d->suffix);
	tok_rx_free(&d->rx);
	free(d->with);
	free(d->pad);
	free(d->delim);
}

/* ---- added tokens ---- */

static int atrie_add(struct atrie *tr, const char *s, size_t n, int32_t idx)
{
	uint32_t node = 0;

	if (!tr->cap) {
		tr->cap = 64;
		tr->next = calloc(tr->cap, sizeof(*tr->next));
		tr->tok = malloc(tr->cap * sizeof(*tr->tok));
		if (!tr->next || !tr->tok)
			return -1;
		tr->tok[0] = -1;
		tr->n = 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!tr->next[node][c]) {
			if (tr->n == tr->cap) {
				size_t cap = tr->cap * 2;
				void *a = realloc(tr->next, cap * sizeof(*tr->next));

				if (!a)
					return -1;
				tr->next = a;
				a = realloc(tr->tok, cap * sizeof(*tr->tok));
				if (!a)
					return -1;
				tr->tok = a;
				memset(tr->next + tr->cap, 0, (cap - tr->cap) * sizeof(*tr->next));
				tr->cap = cap;
			}
			tr->tok[tr->n] = -1;
			tr->next[node][c] = (uint32_t)++tr->n;
		}
		node = tr->next[node][c] - 1;
	}
	if (tr->tok[node] < 0)	/* the first of equal contents wins */
		tr->tok[node] = idx;
	tr->first[(unsigned char)s[0]] = 1;
	return 0;
}

static void atrie_free(struct atrie *tr)
{
	free(tr->next);
	free(tr->tok);
	memset(tr, 0, sizeof(*tr));
}

/* Normalize a normalized added token's content with the normalizer. */
static int norm_content(struct hf_tok *t, struct added *a, struct hf_err *err)
{
	struct tok_ws ws;
	int cur = 0;
	struct piece p0 = { 0, (uint32_t)a->len, 0, -1 };
	size_t tot = 0;

	if (!t->norm) {
		a->norm = a->content;
		a->norm_len = a->len;
		return 0;
	}
	if (tok_ws_init(&ws) || tok_ar_reserve(&ws.ar[0], a->len + 1))
		goto nomem;
	memcpy(ws.ar[0].s, a->content, a->len);
	for (size_t i = 0; i < a->len; i++)
		ws.ar[0].al[i] = (struct al){ (uint32_t)i, (uint32_t)i + 1 };
	ws.ar[0].len = a->len;
	if (tok_pl_push(&ws.pl[0], p0) || (cur = tok_norm_apply(t->norm, &ws, 0)) < 0)
		goto nomem;
	for (size_t i = 0; i < ws.pl[cur].n; i++)
		tot += ws.pl[cur].v[i].len;
	a->norm = malloc(tot + 1);
	if (!a->norm)
		goto nomem;
	a->norm_len = 0;
	for (size_t i = 0; i < ws.pl[cur].n; i++) {
		memcpy(a->norm + a->norm_len, ws.ar[cur].s + ws.pl[cur].v[i].off,
		       ws.pl[cur].v[i].len);
		a->norm_len += ws.pl[cur].v[i].len;
	}
	a->norm[a->norm_len] = 0;
	tok_ws_free(&ws);
	return 0;
nomem:
	tok_ws_free(&ws);
	return hf_err_set(err, HF_ENOMEM, "out of memory");
}

static int load_added(struct hf_tok *t, const json_t *arr, const char *name,
		      struct hf_err *err)
{
	char p[PATH_MAX_];
	int r;
	size_t maxid = t->model.v.n;

	if (!arr || json_is_null(arr))
		arr = NULL;
	else if (!json_is_array(arr))
		return hf_err_set(err, HF_EFORMAT, "%s: added_tokens: must be an array", name);
	if (tok_smap_init(&t->added_map, arr ? json_array_size(arr) : 1) ||
	    tok_smap_init(&t->special_set, 16))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	t->added = calloc((arr ? json_array_size(arr) : 0) + 1, sizeof(*t->added));
	if (!t->added)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; arr && i < json_array_size(arr); i++) {
		const json_t *e = json_array_get(arr, i);
		struct added *a = &t->added[t->nadded];
		const char *content;
		int64_t id;

		snprintf(p, sizeof(p), "%s: added_tokens[%zu]", name, i);
		if (!json_is_object(e))
			return bad(err, p, "must be an object");
		if ((r = hf_json_req_int(e, "id", &id, p, err)) ||
		    (r = hf_json_req_str(e, "content", &content, p, err)) ||
		    (r = hf_json_bool(e, "special", 0, &a->special, p, err)) ||
		    (r = hf_json_bool(e, "single_word", 0, &a->single_word, p, err)) ||
		    (r = hf_json_bool(e, "lstrip", 0, &a->lstrip, p, err)) ||
		    (r = hf_json_bool(e, "rstrip", 0, &a->rstrip, p, err)) ||
		    (r = hf_json_bool(e, "normalized", !a->special, &a->normalized, p, err)))
			return r;
		if (id < 0 || id > 0x7FFFFFFF)
			return hf_err_set(err, HF_EFORMAT, "%s.id: %lld is out of range", p, (long long)id);
		if (!*content)
			continue;	/* HF ignores empty added tokens */
		a->id = (uint32_t)id;
		a->len = strlen(content);
		if (!(a->content = xstrdup(content)))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if (tok_smap_put(&t->added_map, content, a->len, a->id) ||
		    (a->special && tok_smap_put(&t->special_set, content, a->len, a->id)))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if ((size_t)id + 1 > maxid)
			maxid = (size_t)id + 1;
		t->nadded++;
	}
	if (maxid > t->model.v.n + t->nadded + 1024)
		return hf_err_set(err, HF_EFORMAT, "%s: added_tokens: ids are too sparse", name);
	t->vocab_size = maxid;
	t->added_by_id = calloc(maxid + 1, sizeof(*t->added_by_id));
	if (!t->added_by_id)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < t->nadded; i++)
		t->added_by_id[t->added[i].id] = (uint32_t)i + 1;
	/* tries: special tokens first, then the others, as HF orders them */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < t->nadded; i++) {
			struct added *a = &t->added[i];

			if (a->special != !pass)
				continue;
			if (a->normalized) {
				if ((r = norm_content(t, a, err)))
					return r;
				if (a->norm_len && atrie_add(&t->trie_norm, a->norm, a->norm_len, (int32_t)i))
					return hf_err_set(err, HF_ENOMEM, "out of memory");
			} else if (atrie_add(&t->trie_raw, a->content, a->len, (int32_t)i)) {
				return hf_err_set(err, HF_ENOMEM, "out of memory");
			}
		}
	}
	return 0;
}

/* ---- truncation / padding blocks ---- */

static int load_trunc(struct hf_tok *t, const json_t *j, const char *name,
		      struct hf_err *err)
{
	char p[PATH_MAX_];
	const char *s;
	int64_t v;
	int r;

	if (!j || json_is_null(j))
		return 0;
	snprintf(p, sizeof(p), "%s: truncation", name);
	if (!json_is_object(j))
		return bad(err, p, "must be an object");
	t->has_trunc = 1;
	if ((r = hf_json_int(j, "max_length", 512, &v, p, err)))
		return r;
	t->file_trunc.max_length = v < 0 ? 0 : (size_t)v;
	if ((r = hf_json_int(j, "stride", 0, &v, p, err)))
		return r;
	t->file_trunc.stride = v < 0 ? 0 : (size_t)v;
	if ((r = hf_json_str(j, "strategy", "LongestFirst", &s, p, err)))
		return r;
	if (!strcmp(s, "LongestFirst"))
		t->file_trunc.strategy = HF_TOK_TRUNC_LONGEST_FIRST;
	else if (!strcmp(s, "OnlyFirst"))
		t->file_trunc.strategy = HF_TOK_TRUNC_ONLY_FIRST;
	else if (!strcmp(s, "OnlySecond"))
		t->file_trunc.strategy = HF_TOK_TRUNC_ONLY_SECOND;
	else
		return hf_err_set(err, HF_EFORMAT, "%s.strategy: unknown strategy '%s'", p, s);
	if ((r = hf_json_str(j, "direction", "Right", &s, p, err)))
		return r;
	t->file_trunc.direction = !strcmp(s, "Left") ? HF_TOK_LEFT : HF_TOK_RIGHT;
	return 0;
}

static int load_pad(struct hf_tok *t, const json_t *j, const char *name,
		    struct hf_err *err)
{
	char p[PATH_MAX_];
	const char *s;
	const json_t *st;
	int64_t v;
	int r;

	if (!j || json_is_null(j))
		return 0;
	snprintf(p, sizeof(p), "%s: padding", name);
	if (!json_is_object(j))
		return bad(err, p, "must be an object");
	t->has_pad = 1;
	t->file_pad.enabled = 1;
	st = json_object_get(j, "strategy");
	if (json_is_object(st) && json_is_integer(json_object_get(st, "Fixed")))
		t->file_pad.length = (size_t)json_integer_value(json_object_get(st, "Fixed"));
	if ((r = hf_json_str(j, "direction", "Right", &s, p, err)))
		return r;
	t->file_pad.direction = !strcmp(s, "Left") ? HF_TOK_LEFT : HF_TOK_RIGHT;
	if ((r = hf_json_int(j, "pad_to_multiple_of", 0, &v, p, err)))
		return r;
	t->file_pad.multiple_of = v < 0 ? 0 : (size_t)v;
	if ((r = hf_json_int(j, "pad_id", 0, &v, p, err)))
		return r;
	t->file_pad.pad_id = (uint32_t)v;
	if ((r = hf_json_int(j, "pad_type_id", 0, &v, p, err)))
		return r;
	t->file_pad.pad_type_id = (uint32_t)v;
	if ((r = hf_json_str(j, "pad_token", "[PAD]", &s, p, err)))
		return r;
	if (!(t->file_pad_token = xstrdup(s)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	t->file_pad.pad_token = t->file_pad_token;
	return 0;
}

/* ---- top level ---- */

static int load_json(struct hf_tok **out, const json_t *root, const char *name,
		     struct hf_err *err)
{
	struct hf_tok *t = calloc(1, sizeof(*t));
	char p[PATH_MAX_];
	const json_t *j;
	int r;

	*out = NULL;
	if (!t)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (!json_is_object(root)) {
		r = hf_err_set(err, HF_EFORMAT, "%s: top level must be an object", name);
		goto fail;
	}
	snprintf(p, sizeof(p), "%s: model", name);
	if (!(j = json_object_get(root, "model"))) {
		r = hf_err_set(err, HF_EFORMAT, "%s: missing key 'model'", name);
		goto fail;
	}
	if ((r = tok_model_load(&t->model, j, p, err)))
		goto fail;
	if ((j = json_object_get(root, "normalizer")) && !json_is_null(j)) {
		snprintf(p, sizeof(p), "%s: normalizer", name);
		if (!(t->norm = calloc(1, sizeof(*t->norm)))) {
			r = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto fail;
		}
		if ((r = tok_norm_load(t->norm, j, p, err)))
			goto fail;
	}
	if ((j = json_object_get(root, "pre_tokenizer")) && !json_is_null(j)) {
		snprintf(p, sizeof(p), "%s: pre_tokenizer", name);
		if (!(t->pretok = calloc(1, sizeof(*t->pretok)))) {
			r = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto fail;
		}
		if ((r = tok_pretok_load(t->pretok, j, p, err)))
			goto fail;
	}
	if ((j = json_object_get(root, "post_processor")) && !json_is_null(j)) {
		snprintf(p, sizeof(p), "%s: post_processor", name);
		if (!(t->post = calloc(1, sizeof(*t->post)))) {
			r = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto fail;
		}
		if ((r = tok_post_load(t->post, t, j, p, err)))
			goto fail;
	}
	if ((j = json_object_get(root, "decoder")) && !json_is_null(j)) {
		snprintf(p, sizeof(p), "%s: decoder", name);
		if (!(t->dec = calloc(1, sizeof(*t->dec)))) {
			r = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto fail;
		}
		if ((r = tok_dec_load(t->dec, j, p, err)))
			goto fail;
	}
	if ((r = load_added(t, json_object_get(root, "added_tokens"), name, err)) ||
	    (r = load_trunc(t, json_object_get(root, "truncation"), name, err)) ||
	    (r = load_pad(t, json_object_get(root, "padding"), name, err)))
		goto fail;
	*out = t;
	return 0;
fail:
	hf_tok_free(t);
	return r;
}

int hf_tok_load_buf(struct hf_tok **out, const char *json, size_t len,
		    const char *name, struct hf_err *err)
{
	json_t *root;
	int r;

	*out = NULL;
	if ((r = hf_json_load_buf(&root, json, len, name, err)))
		return r;
	r = load_json(out, root, name, err);
	json_decref(root);
	return r;
}

int hf_tok_load(struct hf_tok **out, const char *dir, struct hf_err *err)
{
	char *path = hf_path_join(dir, "tokenizer.json");
	char *cpath = hf_path_join(dir, "tokenizer_config.json");
	json_t *root = NULL;
	int r;

	*out = NULL;
	if (!path || !cpath) {
		r = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto done;
	}
	if (!hf_file_exists(path)) {
		r = hf_err_set(err, HF_ENOTFOUND, "%s: no such file", path);
		goto done;
	}
	if ((r = hf_json_load_file(&root, path, err)))
		goto done;
	if ((r = load_json(out, root, path, err)))
		goto done;
	if (hf_file_exists(cpath)) {
		json_t *c;

		if ((r = hf_json_load_file(&c, cpath, err))) {
			hf_tok_free(*out);
			*out = NULL;
			goto done;
		}
		(*out)->config = c;
	}
done:
	json_decref(root);
	free(path);
	free(cpath);
	return r;
}

void hf_tok_free(struct hf_tok *t)
{
	if (!t)
		return;
	if (t->norm) {
		tok_norm_free(t->norm);
		free(t->norm);
	}
	if (t->pretok) {
		tok_pretok_free(t->pretok);
		free(t->pretok);
	}
	tok_model_free(&t->model);
	if (t->post) {
		tok_post_free(t->post);
		free(t->post);
	}
	if (t->dec) {
		tok_dec_free(t->dec);
		free(t->dec);
	}
	for (size_t i = 0; i < t->nadded; i++) {
		if (t->added[i].norm != t->added[i].content)
			free(t->added[i].norm);
		free(t->added[i].content);
	}
	free(t->added);
	atrie_free(&t->trie_raw);
	atrie_free(&t->trie_norm);
	tok_smap_free(&t->added_map);
	tok_smap_free(&t->special_set);
	free(t->added_by_id);
	free(t->file_pad_token);
	json_decref(t->config);
	free(t);
}

/* ---- lookups ---- */

const struct hf_tok_trunc *hf_tok_file_truncation(const struct hf_tok *t)
{
	return t->has_trunc ? &t->file_trunc : NULL;
}

const struct hf_tok_pad *hf_tok_file_padding(const struct hf_tok *t)
{
	return t->has_pad ? &t->file_pad : NULL;
}

size_t hf_tok_vocab_size(const struct hf_tok *t)
{
	return t->vocab_size;
}

int64_t hf_tok_token_to_id(const struct hf_tok *t, const char *tok, size_t len)
{
	uint32_t id;

	if (tok_smap_get(&t->added_map, tok, len, &id))
		return id;
	if (tok_smap_get(&t->model.v.map, tok, len, &id))
		return id;
	return -1;
}

const char *hf_tok_id_to_token(const struct hf_tok *t, uint32_t id, size_t *len)
{
	if (id < t->vocab_size && t->added_by_id[id]) {
		const struct added *a = &t->added[t->added_by_id[id] - 1];

		*len = a->len;
		return a->content;
	}
	if (id < t->model.v.n && t->model.v.tok[id]) {
		*len = t->model.v.tok_len[id];
		return t->model.v.tok[id];
	}
	return NULL;
}

int hf_tok_is_special(const struct hf_tok *t, uint32_t id)
{
	size_t len;
	uint32_t v;
	const char *s = hf_tok_id_to_token(t, id, &len);

	return s && tok_smap_get(&t->special_set, s, len, &v);
}

const char *hf_tok_config_str(const struct hf_tok *t, const char *key)
{
	const json_t *v;

	if (!t->config)
		return NULL;
	v = json_object_get(t->config, key);
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
		return json_string_value(json_object_get(v, "content"));
	return NULL;
}

int hf_tok_model_max_length(const struct hf_tok *t, size_t *out)
{
	int64_t v;

	if (!t->config || hf_json_int(t->config, "model_max_length", -1, &v, "", NULL) ||
	    v <= 0 || v > (1 << 30))
		return 0;
	*out = (size_t)v;
	return 1;
}
