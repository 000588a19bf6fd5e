/* lib/tok/internal.h: the pipeline's data types, shared by lib/tok/ only. */
#ifndef HF_TOK_INTERNAL_H
#define HF_TOK_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <stddef.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/err.h"
#include "tok/tok.h"

/* ---- string -> id hash map (open addressing, keys in one arena) ---- */
struct smap {
	uint32_t *slots;	/* entry index + 1; 0 = empty */
	size_t mask;
	uint32_t *koff, *klen;	/* per entry: key in keys[] */
	uint32_t *val;
	char *keys;
	size_t n, cap, klen_total, kcap;
};
int tok_smap_init(struct smap *m, size_t hint);
void tok_smap_free(struct smap *m);
/* Insert or overwrite; returns 0 or -1 on ENOMEM. */
int tok_smap_put(struct smap *m, const char *k, size_t len, uint32_t v);
/* 1 and *v if found. */
int tok_smap_get(const struct smap *m, const char *k, size_t len, uint32_t *v);
uint64_t tok_hash(const char *k, size_t len);

/* ---- (u32, u32) -> (rank, id) map for BPE merges ---- */
struct pmap {
	uint64_t *keys;		/* (a << 32 | b) + 1; 0 = empty */
	uint32_t *rank, *id;
	size_t mask, n;
};
int tok_pmap_init(struct pmap *m, size_t n);
void tok_pmap_free(struct pmap *m);
int tok_pmap_put(struct pmap *m, uint32_t a, uint32_t b, uint32_t rank,
	     uint32_t id);
static inline int tok_pmap_get(const struct pmap *m, uint32_t a, uint32_t b,
			   uint32_t *rank, uint32_t *id)
{
	uint64_t k = (((uint64_t)a << 32) | b) + 1;
	size_t i = (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20) & m->mask;

	for (;; i = (i + 1) & m->mask) {
		if (m->keys[i] == k) {
			*rank = m->rank[i];
			*id = m->id[i];
			return 1;
		}
		if (!m->keys[i])
			return 0;
	}
}

/* ---- regex ---- */
struct rx {
	pcre2_code *code;
	int jit;
};
/* Compile an Oniguruma-style pattern from tokenizer.json (or, literal=1,
 * an escaped string). */
int tok_rx_compile(struct rx *r, const char *pat, size_t len, int literal,
	       const char *where, struct hf_err *err);
void tok_rx_free(struct rx *r);

/* ---- normalized pieces ---- */

/* Alignment of one normalized byte: the original byte range [s, e) of the
 * input it comes from (absolute, in the whole input). */
struct al {
	uint32_t s, e;
};

/* A piece of normalized text in an arena: bytes [off, off+len) of the
 * arena's s[] and al[]. shift: original byte offset where the piece
 * starts; id: added-token id when the piece is one, else -1. */
struct piece {
	uint32_t off, len;
	uint32_t shift;
	int32_t id;
};

struct arena {
	char *s;
	struct al *al;
	size_t len, cap;
};

struct plist {
	struct piece *v;
	size_t n, cap;
};

/* Scratch for (code point, change) transformations, as HF's
 * NormalizedString::transform takes them. */
struct tf {
	uint32_t *cp;
	int32_t *chg;
	size_t n, cap;
};

struct tok_ws;

/* ---- components ---- */
enum norm_type {
	N_SEQ, N_NFC, N_NFD, N_NFKC, N_NFKD, N_LOWER, N_STRIP,
	N_STRIP_ACCENTS, N_REPLACE, N_PREPEND, N_BERT, N_PRECOMPILED,
	N_NMT, N_BYTELEVEL,
	N_STRIP_MN,	/* BertNormalizer's accent strip: only Mn */
};

struct norm {
	enum norm_type type;
	struct norm *sub;	/* N_SEQ */
	size_t nsub;
	int strip_left, strip_right;	/* N_STRIP */
	struct rx rx;		/* N_REPLACE */
	char *content;		/* N_REPLACE content, N_PREPEND text */
	int clean_text, chinese, strip_accents, lowercase;	/* N_BERT */
	/* N_PRECOMPILED: darts-clone trie units and the replacement blob */
	uint32_t *trie;
	size_t ntrie;
	char *blob;
	size_t nblob;
};

enum split_behavior {
	B_REMOVED, B_ISOLATED, B_MERGED_PREV, B_MERGED_NEXT, B_CONTIGUOUS,
};

enum pretok_type {
	P_SEQ, P_BYTELEVEL, P_SPLIT, P_METASPACE, P_WHITESPACE,
	P_WHITESPACE_SPLIT, P_BERT, P_PUNCT, P_DIGITS, P_DELIM,
	P_SCRIPTS, P_FIXED,
};

enum prepend_scheme { PS_ALWAYS, PS_FIRST, PS_NEVER };

struct pretok {
	enum pretok_type type;
	struct pretok *sub;
	size_t nsub;
	int add_prefix_space, use_regex, trim_offsets;	/* ByteLevel */
	struct rx rx;			/* Split, ByteLevel, Whitespace */
	enum split_behavior behavior;
	int invert;
	uint32_t replacement;		/* Metaspace */
	enum prepend_scheme scheme;
	int split;
	int individual_digits;
	uint32_t delim;
	size_t length;
	int *script_of_group;		/* UnicodeScripts: group -> script */
	int ngroups;
	int han, hiragana, katakana;	/* their script ids */
};
int tok_scripts_compile(struct pretok *pt, const char *where, struct hf_err *err);

enum model_type { M_BPE, M_WORDPIECE, M_WORDLEVEL, M_UNIGRAM };

struct vocab {
	struct smap map;	/* token -> id */
	char **tok;		/* id -> token (NUL-terminated), NULL if hole */
	uint32_t *tok_len;
	size_t n;		/* ids [0, n) */
	char *store;
};

struct model {
	enum model_type type;
	struct vocab v;
	/* BPE */
	struct pmap merges;
	char *unk;		/* unk token (BPE, WordPiece, WordLevel) */
	int64_t unk_id;
	char *prefix, *suffix;	/* continuing_subword_prefix, end_of_word_suffix */
	int fuse_unk, byte_fallback, ignore_merges;
	uint32_t byte_id[256];	/* <0xXX> ids when byte_fallback */
	int have_bytes;
	uint32_t char_id[128];	/* ASCII single-char ids (BPE, no prefix) */
	/* WordPiece */
	size_t max_chars;
	/* Unigram */
	double *scores;
	double min_score;
	struct smap prefixes;	/* every proper byte prefix of a piece */
	int64_t uni_unk;
};

enum post_type { PP_SEQ, PP_TEMPLATE, PP_BERT, PP_ROBERTA, PP_BYTELEVEL };

struct tpl_item {
	int is_seq;		/* 1: $A/$B, 0: special token */
	int seq;		/* 0 A, 1 B */
	uint32_t type_id;
	char *special;		/* key into specials */
	uint32_t *ids;		/* special's ids */
	char **toks;
	size_t nids;
};

struct post {
	enum post_type type;
	struct post *sub;
	size_t nsub;
	struct tpl_item *single, *pair;
	size_t nsingle, npair;
	int trim_offsets, add_prefix_space;
	uint32_t cls_id, sep_id;
	char *cls, *sep;
};

enum dec_type {
	D_SEQ, D_BYTELEVEL, D_WORDPIECE, D_METASPACE, D_BPE, D_BYTEFALLBACK,
	D_FUSE, D_STRIP, D_REPLACE, D_CTC,
};

struct dec {
	enum dec_type type;
	struct dec *sub;
	size_t nsub;
	char *prefix;		/* WordPiece */
	int cleanup;
	uint32_t replacement;	/* Metaspace */
	enum prepend_scheme scheme;
	char *suffix;		/* BPEDecoder */
	uint32_t content;	/* Strip */
	size_t start, stop;
	struct rx rx;		/* Replace */
	char *with;
	char *pad, *delim;	/* CTC */
};

struct added {
	char *content;
	size_t len;
	uint32_t id;
	int single_word, lstrip, rstrip, normalized, special;
	char *norm;		/* normalized content (for normalized tokens) */
	size_t norm_len;
};

/* Byte trie over added-token contents, leftmost-longest matching. */
struct atrie {
	uint32_t (*next)[256];	/* node -> child+1 (0: none) */
	int32_t *tok;		/* node -> added index or -1 */
	size_t n, cap;
	uint8_t first[256];
};

struct hf_tok {
	struct norm *norm;
	struct pretok *pretok;
	struct model model;
	struct post *post;
	struct dec *dec;
	struct added *added;
	size_t nadded;
	struct atrie trie_raw, trie_norm;
	struct smap added_map;		/* content -> id */
	struct smap special_set;	/* contents of special added tokens */
	uint32_t *added_by_id;	/* id -> added index + 1, size vocab_size */
	size_t vocab_size;
	struct hf_tok_trunc file_trunc;
	struct hf_tok_pad file_pad;
	int has_trunc, has_pad;
	char *file_pad_token;
	json_t *config;
};

/* Byte-level table (GPT-2 bytes_to_unicode) */
extern uint32_t tok_byte2cp[256];
extern uint8_t tok_cp2byte_ok[0x144];
extern uint8_t tok_cp2byte[0x144];
void tok_bytelevel_init(void);

/* ---- model output ---- */
struct mtok {
	uint32_t id;
	uint32_t a, b;		/* byte range in the word (normalized) */
	int text;		/* 1: token string is the word bytes [a, b) */
};

struct mtoks {
	struct mtok *v;
	size_t n, cap;
};

int tok_mtoks_push(struct mtoks *t, uint32_t id, uint32_t a, uint32_t b, int text);

/* A match list over one piece: [a, b) with is_match, covering it. */
struct mseg {
	uint32_t a, b;
	int m;
};

struct mlist {
	struct mseg *v;
	size_t n, cap;
};

/* BPE heap entry: a candidate merge */
struct hent {
	uint32_t rank;
	int32_t pos;
};

/* workspace for one thread */
struct tok_ws {
	struct mlist ml;
	struct hent *heap;
	size_t heap_cap;
	struct arena ar[2];
	struct plist pl[2];
	struct tf tf;
	struct mtoks mt;
	pcre2_match_data *md;
	pcre2_match_data *md_big;	/* UnicodeScripts: a group per script */
	/* BPE scratch */
	uint32_t *sym_id, *sym_len, *sym_rank;
	int32_t *sym_next, *sym_prev;
	size_t sym_cap;
	/* Unigram scratch */
	double *u_score;
	int32_t *u_start, *u_id;
	size_t u_cap;
	/* word cache */
	uint64_t *c_hash;
	uint32_t *c_koff, *c_klen, *c_toff, *c_tn;
	size_t c_mask, c_used;
	char *c_keys;
	size_t c_klen_total, c_kcap;
	struct mtok *c_toks;
	size_t c_tn_total, c_tcap;
	/* misc byte buffer */
	char *buf;
	size_t buf_cap;
};

struct hf_tok_ctx {
	const struct hf_tok *t;
	struct tok_ws ws;
};

/* loaders (load.c): each fills err with the JSON path */
int tok_norm_load(struct norm *n, const json_t *j, const char *path,
	      struct hf_err *err);
void tok_norm_free(struct norm *n);
int tok_pretok_load(struct pretok *p, const json_t *j, const char *path,
		struct hf_err *err);
void tok_pretok_free(struct pretok *p);
int tok_model_load(struct model *m, const json_t *j, const char *path,
	       struct hf_err *err);
void tok_model_free(struct model *m);
int tok_post_load(struct post *p, const struct hf_tok *t, const json_t *j,
	      const char *path, struct hf_err *err);
void tok_post_free(struct post *p);
int tok_dec_load(struct dec *d, const json_t *j, const char *path,
	     struct hf_err *err);
void tok_dec_free(struct dec *d);

/* pipeline stages: operate on ws->pl[cur]/ar[cur], leave the result in
 * ws->pl[cur ^ 1] and return the new cur (or -1 on ENOMEM). */
int tok_norm_apply(const struct norm *n, struct tok_ws *ws, int cur);
int tok_pretok_apply(const struct pretok *p, struct tok_ws *ws, int cur,
		 size_t orig_start);
/* Tokenize one word: bytes w[0..len) -> ws->mt (appended). */
int tok_model_tokenize(const struct model *m, struct tok_ws *ws, const char *w,
		   size_t len);

int tok_ws_init(struct tok_ws *ws);
void tok_ws_free(struct tok_ws *ws);

/* arena helpers */
int tok_ar_reserve(struct arena *a, size_t extra);
int tok_pl_push(struct plist *l, struct piece p);
/* Copy src bytes [a, b) of piece p (arena src) as a new piece in dst. */
int tok_piece_slice(struct tok_ws *ws, int cur, const struct piece *p, size_t a,
		size_t b);
/* Apply ws->tf (HF transform semantics) to piece p of arena src, writing
 * a new piece into the other arena / plist. initial: chars removed at the
 * start. */
int tok_piece_transform(struct tok_ws *ws, int cur, const struct piece *p,
		    size_t initial);

int tok_tf_push(struct tf *t, uint32_t cp, int32_t chg);
size_t tok_u8put(uint32_t c, char *o);
/* Replace every ' ' of p with rep (rl bytes), aligned like the space. */
int tok_replace_space(struct tok_ws *ws, int cur, const struct piece *p,
		      const char *rep, size_t rl);
int tok_replace_piece(struct tok_ws *ws, int cur, const struct piece *p,
		      const struct rx *rx, const char *with);

/* Unicode helpers */
int tok_is_whitespace(uint32_t c);	/* Rust char::is_whitespace */
int tok_is_punct(uint32_t c);		/* ASCII punct or Unicode P* */

/* Character classes as tokenizers' crates have them, older than the
 * Unicode utf8proc knows (ucd.c, made by gen-ucd.py). unicode_categories
 * 0.1.1, Unicode 8.0: is_other (Cc Cf Co: not Cn, so unassigned code
 * points and noncharacters stay), is_mark_nonspacing, is_punctuation.
 * unicode-normalization-alignments 0.1.12, Unicode 9.0: is_combining_mark,
 * and after9: code points that utf8proc decomposes or gives a combining
 * class but 9.0 has no data for (they pass normalization untouched). */
int tok_ucd_is_other(uint32_t c);
int tok_ucd_is_mn(uint32_t c);
int tok_ucd_is_punct(uint32_t c);
int tok_ucd_is_mark(uint32_t c);
int tok_ucd_after9(uint32_t c);
/* Composites utf8proc forms that the 9.0 composition table has not: the
 * CompositionExclusions utf8proc 2.8 misses (U+2ADC, U+1D15E..). */
int tok_ucd_nocomp(uint32_t c);
uint32_t tok_decode1(const char *s, size_t len, size_t *n);

/* decoders (decode.c) */
struct strv {
	char **s;
	size_t *len;
	size_t n, cap;
};
int tok_dec_apply(const struct dec *d, struct strv *v);

#endif
