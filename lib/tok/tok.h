/* lib/tok/tok.h: HF tokenizer.json pipelines: encode, decode, batches.
 *
 * Encoding follows tokenizers' Tokenizer::encode: added tokens split out
 * of the raw text, the normalizer, added tokens with normalized: true,
 * the pre-tokenizer, the model on each word, truncation (counting the
 * template's special tokens), the post-processor, then (batches) padding.
 * Offsets are code points, as the Python and Node bindings report them.
 * Not done: BPE dropout (ignored: inference), encode_special_tokens, and
 * tokenizer_config.json's add_bos_token/add_eos_token (tokenizer.json's
 * template is used as it is, as the tokenizers library does). */
#ifndef HF_TOK_TOK_H
#define HF_TOK_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct hf_pool;
struct hf_tok;		/* opaque, read-only once loaded: share across threads */
struct hf_tok_ctx;	/* per-thread scratch space and word cache */

/* One encoded sequence (or pair). Offsets are [start, end) in Unicode code
 * points of the input text they come from (text or text_pair), as the HF
 * Python and Node bindings report them; tokens added by the post-processor
 * have [0, 0]. All arrays have n entries. */
struct hf_tok_encoding {
	size_t n, cap;
	uint32_t *ids;
	uint32_t *type_ids;
	uint32_t (*offsets)[2];
	uint8_t *attention_mask;
	uint8_t *special_mask;
	uint8_t *seq;		/* 0: text, 1: text_pair, 255: added by template */
	uint32_t *tok_off;	/* token i is tok_buf[tok_off[i] .. tok_off[i+1]) */
	char *tok_buf;
	size_t tok_len, tok_cap;
	/* What truncation cut off a single sequence: windows of max_length
	 * tokens overlapping by stride, each post-processed like the main
	 * one (HF's Encoding.overflowing). None for pairs. */
	struct hf_tok_encoding *overflowing;
	size_t n_overflowing;
};

/* Token i as a borrowed string (not NUL-terminated); *len gets its size. */
static inline const char *hf_tok_encoding_token(const struct hf_tok_encoding *e,
						size_t i, size_t *len)
{
	*len = e->tok_off[i + 1] - e->tok_off[i];
	return e->tok_buf + e->tok_off[i];
}

void hf_tok_encoding_free(struct hf_tok_encoding *e);	/* zeroes it */

enum hf_tok_trunc_strategy {
	HF_TOK_TRUNC_LONGEST_FIRST = 0,
	HF_TOK_TRUNC_ONLY_FIRST,
	HF_TOK_TRUNC_ONLY_SECOND,
};

enum hf_tok_side { HF_TOK_RIGHT = 0, HF_TOK_LEFT };

/* max_length 0: no truncation. stride: overlap of the overflowing
 * windows (less than max_length minus the template's special tokens). */
struct hf_tok_trunc {
	size_t max_length;
	size_t stride;
	enum hf_tok_trunc_strategy strategy;
	enum hf_tok_side direction;
};

/* enabled 0: no padding; length 0: pad to the longest in the batch. */
struct hf_tok_pad {
	int enabled;
	size_t length;
	size_t multiple_of;	/* 0: none */
	enum hf_tok_side direction;
	uint32_t pad_id, pad_type_id;
	const char *pad_token;	/* borrowed; NULL: the id's token */
};

/* Load <dir>/tokenizer.json and, if present, <dir>/tokenizer_config.json.
 * Errors name the file and the JSON path at fault. */
int hf_tok_load(struct hf_tok **out, const char *dir, struct hf_err *err);
/* Load from a tokenizer.json held in memory; name is used in errors. */
int hf_tok_load_buf(struct hf_tok **out, const char *json, size_t len,
		    const char *name, struct hf_err *err);
void hf_tok_free(struct hf_tok *t);	/* NULL is fine */

/* The truncation and padding blocks of tokenizer.json (borrowed; NULL when
 * the file has none). transformers ignores them by default, and so does
 * hf_tok_encode(); callers pass them explicitly if they want them. */
const struct hf_tok_trunc *hf_tok_file_truncation(const struct hf_tok *t);
const struct hf_tok_pad *hf_tok_file_padding(const struct hf_tok *t);

/* Number of ids: model vocab plus added tokens past its end. */
size_t hf_tok_vocab_size(const struct hf_tok *t);
/* -1 if absent. */
int64_t hf_tok_token_to_id(const struct hf_tok *t, const char *tok, size_t len);
/* Borrowed until hf_tok_free(); NULL if id is out of range. */
const char *hf_tok_id_to_token(const struct hf_tok *t, uint32_t id,
			       size_t *len);
int hf_tok_is_special(const struct hf_tok *t, uint32_t id);

int hf_tok_ctx_create(struct hf_tok_ctx **out, const struct hf_tok *t,
		      struct hf_err *err);
void hf_tok_ctx_free(struct hf_tok_ctx *c);	/* NULL is fine */

/* Encode text (and text_pair when pair != NULL), both valid UTF-8, into
 * out (reused: previous contents are replaced). add_special: run the
 * post-processor's template. trunc may be NULL. Thread-safe for distinct
 * ctx. Invalid UTF-8: HF_EUTF8. */
int hf_tok_encode(struct hf_tok_ctx *c, const char *text, size_t len,
		  const char *pair, size_t pair_len, int add_special,
		  const struct hf_tok_trunc *trunc,
		  struct hf_tok_encoding *out, struct hf_err *err);

/* The normalizer alone on text (valid UTF-8), as tokenizers'
 * normalizer.normalize_str() gives it: no added tokens split out first.
 * *out is malloc'd and NUL-terminated; len_out optional. Thread-safe for
 * distinct ctx. Invalid UTF-8: HF_EUTF8. */
int hf_tok_normalize(struct hf_tok_ctx *c, const char *text, size_t len,
		     char **out, size_t *len_out, struct hf_err *err);

/* Pad encodings in place (to the longest, or pad->length, rounded up to
 * pad->multiple_of), as HF's pad_encodings does. */
int hf_tok_pad(const struct hf_tok *t, struct hf_tok_encoding *encs, size_t n,
	       const struct hf_tok_pad *pad, struct hf_err *err);

/* One input of a batch; pair NULL for single sequences. */
struct hf_tok_input {
	const char *text;
	size_t len;
	const char *pair;
	size_t pair_len;
};

/* Encode n inputs across pool's threads (pool may be NULL), then pad if
 * pad is enabled. outs[n] are (re)filled. On error, err names the index.
 * ctxs: hf_pool_size(pool) contexts of t, one per thread, that the caller
 * keeps between calls so their word caches stay warm; NULL makes
 * temporary ones. */
int hf_tok_encode_batch(const struct hf_tok *t, struct hf_pool *pool,
			struct hf_tok_ctx **ctxs,
			const struct hf_tok_input *in, size_t n,
			int add_special, const struct hf_tok_trunc *trunc,
			const struct hf_tok_pad *pad,
			struct hf_tok_encoding *outs, struct hf_err *err);

/* Decode ids to text through the decoder chain; skip_special drops special
 * added tokens. *out is malloc'd and NUL-terminated; *len optional.
 * Unknown ids are skipped, as HF does (check them first if they matter). */
int hf_tok_decode(const struct hf_tok *t, const uint32_t *ids, size_t n,
		  int skip_special, char **out, size_t *len,
		  struct hf_err *err);

/* tokenizer_config.json values (borrowed; NULL when absent). A string,
 * or an AddedToken object's "content". */
const char *hf_tok_config_str(const struct hf_tok *t, const char *key);
/* model_max_length when the config sets a real one (not int(1e30));
 * returns 1 and *out, else 0. */
int hf_tok_model_max_length(const struct hf_tok *t, size_t *out);

#endif
