/* test/unit/tok/components.c: each pipeline component on small hand-made
 * tokenizer.json snippets; expectations from the HF tokenizers docs and
 * tests (split behaviours, Metaspace, added-token options, WordPiece). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tok/tok.h"

static struct hf_tok *load(const char *json)
{
	struct hf_tok *t = NULL;
	struct hf_err err = { 0 };

	if (hf_tok_load_buf(&t, json, strlen(json), "tokenizer.json", &err))
		fail_msg("load: %s", err.msg);
	return t;
}

/* "tok[s,e]|tok[s,e]|..." of encode(text) */
static char *enc(const struct hf_tok *t, const char *text, const char *pair,
		 int special)
{
	static char out[4096];
	struct hf_tok_ctx *c;
	struct hf_tok_encoding e = { 0 };
	struct hf_err err = { 0 };
	size_t n = 0;

	assert_int_equal(hf_tok_ctx_create(&c, t, &err), 0);
	if (hf_tok_encode(c, text, strlen(text), pair, pair ? strlen(pair) : 0,
			  special, NULL, &e, &err))
		fail_msg("encode: %s", err.msg);
	out[0] = 0;
	for (size_t i = 0; i < e.n; i++) {
		size_t tl;
		const char *s = hf_tok_encoding_token(&e, i, &tl);

		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%.*s[%u,%u]",
				      i ? "|" : "", (int)tl, s, e.offsets[i][0],
				      e.offsets[i][1]);
	}
	hf_tok_encoding_free(&e);
	hf_tok_ctx_free(c);
	return out;
}

static char *dec(const struct hf_tok *t, const uint32_t *ids, size_t n, int skip)
{
	static char out[1024];
	struct hf_err err = { 0 };
	char *s;

	assert_int_equal(hf_tok_decode(t, ids, n, skip, &s, NULL, &err), 0);
	snprintf(out, sizeof(out), "%s", s);
	free(s);
	return out;
}

#define WL_VOCAB "\"vocab\":{\"the\":0,\"-\":1,\"final\":2,\"countdown\":3," \
	"\"the-\":4,\"final-\":5,\"-final\":6,\"-countdown\":7,\"--\":8,\"[UNK]\":9}"

static char *split_with(const char *behavior, int invert, const char *text)
{
	char json[1024];
	struct hf_tok *t;
	static char out[1024];

	snprintf(json, sizeof(json),
		 "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},"
		 "\"behavior\":\"%s\",\"invert\":%s},"
		 "\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"[UNK]\"," WL_VOCAB "}}",
		 behavior, invert ? "true" : "false");
	t = load(json);
	snprintf(out, sizeof(out), "%s", enc(t, text, NULL, 1));
	hf_tok_free(t);
	return out;
}

/* normalizer.rs SplitDelimiterBehavior docs: "the-final--countdown" */
static void test_split_behaviors(void **s)
{
	const char *x = "the-final--countdown";

	assert_string_equal(split_with("Removed", 0, x),
			    "the[0,3]|final[4,9]|countdown[11,20]");
	assert_string_equal(split_with("Isolated", 0, x),
			    "the[0,3]|-[3,4]|final[4,9]|-[9,10]|-[10,11]|countdown[11,20]");
	assert_string_equal(split_with("MergedWithPrevious", 0, x),
			    "the-[0,4]|final-[4,10]|-[10,11]|countdown[11,20]");
	assert_string_equal(split_with("MergedWithNext", 0, x),
			    "the[0,3]|-final[3,9]|-[9,10]|-countdown[10,20]");
	assert_string_equal(split_with("Contiguous", 0, x),
			    "the[0,3]|-[3,4]|final[4,9]|--[9,11]|countdown[11,20]");
	/* invert: the pattern is what we keep */
	assert_string_equal(split_with("Removed", 1, x), "-[3,4]|-[9,10]|-[10,11]");
}

/* metaspace.rs tests: "Hey friend!" and "Hey   friend!" */
static void test_metaspace(void **s)
{
	struct hf_tok *t = load(
		"{\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\","
		"\"prepend_scheme\":\"always\",\"split\":true},"
		"\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"?\":0,"
		"\"\xE2\x96\x81Hey\":1,\"\xE2\x96\x81\x66riend!\":2,\"\xE2\x96\x81\":3}},"
		"\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\","
		"\"prepend_scheme\":\"always\"}}");
	uint32_t ids[] = { 1, 2 };

	assert_string_equal(enc(t, "Hey friend!", NULL, 1),
			    "\xE2\x96\x81Hey[0,3]|\xE2\x96\x81\x66riend![3,11]");
	assert_string_equal(enc(t, "Hey   friend!", NULL, 1),
			    "\xE2\x96\x81Hey[0,3]|\xE2\x96\x81[3,4]|\xE2\x96\x81[4,5]|"
			    "\xE2\x96\x81\x66riend![5,13]");
	assert_string_equal(dec(t, ids, 2, 0), "Hey friend!");
	hf_tok_free(t);
}

/* added_vocabulary.rs options_use_cases: lstrip/rstrip, single_word and
 * normalized matching against the lowercased text */
static void test_added_token_options(void **s)
{
	struct hf_tok *t = load(
		"{\"added_tokens\":["
		"{\"id\":0,\"content\":\"my\",\"single_word\":false,\"lstrip\":true,\"rstrip\":true,\"normalized\":true,\"special\":false},"
		"{\"id\":1,\"content\":\"name\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},"
		"{\"id\":2,\"content\":\"ony\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},"
		"{\"id\":3,\"content\":\"[CLS]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
		"{\"id\":4,\"content\":\"[SEP]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
		"\"normalizer\":{\"type\":\"Lowercase\"},"
		"\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},"
		"\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"?\":5,\"is\":6,\"anthony\":7}}}");
	uint32_t ids[] = { 3, 0, 1, 6, 7, 4 };

	assert_string_equal(enc(t, "[CLS] My name is Anthony [SEP]", NULL, 1),
			    "[CLS][0,5]| my [5,9]|name[9,13]|is[14,16]|anthony[17,24]|[SEP][25,30]");
	/* single_word: "ony" inside "Anthony" and "Tony" is no match */
	assert_string_equal(enc(t, "ony Tony", NULL, 1), "ony[0,3]|?[4,8]");
	assert_string_equal(dec(t, ids, 6, 1), "my name is anthony");
	hf_tok_free(t);
}

#define BPE_VOCAB "\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4,\"abc\":5," \
	"\"<unk>\":6,\"<0x61>\":7,\"<0xC3>\":8,\"<0xA9>\":9}"

static void test_bpe_merge_ranks(void **s)
{
	/* ab ranks before bc: "abc" -> ab + c -> abc; with bc first: a + bc */
	struct hf_tok *t = load("{\"model\":{\"type\":\"BPE\"," BPE_VOCAB
				",\"merges\":[\"a b\",\"b c\",\"ab c\"]}}");
	struct hf_tok *u = load("{\"model\":{\"type\":\"BPE\"," BPE_VOCAB
				",\"merges\":[[\"b\",\"c\"],[\"a\",\"b\"]]}}");

	assert_string_equal(enc(t, "abc", NULL, 1), "abc[0,3]");
	assert_string_equal(enc(t, "abab", NULL, 1), "ab[0,2]|ab[2,4]");
	assert_string_equal(enc(u, "abc", NULL, 1), "a[0,1]|bc[1,3]");
	hf_tok_free(t);
	hf_tok_free(u);
}

static void test_bpe_unk_and_byte_fallback(void **s)
{
	struct hf_tok *t = load("{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\","
				"\"fuse_unk\":true," BPE_VOCAB ",\"merges\":[]}}");
	struct hf_tok *u = load("{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\","
				"\"fuse_unk\":false," BPE_VOCAB ",\"merges\":[]}}");
	struct hf_tok *b = load("{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\","
				"\"byte_fallback\":true," BPE_VOCAB ",\"merges\":[]},"
				"\"decoder\":{\"type\":\"ByteFallback\"}}");
	uint32_t ids[] = { 8, 9, 0, 8 };

	assert_string_equal(enc(t, "axyb", NULL, 1), "a[0,1]|<unk>[1,3]|b[3,4]");
	assert_string_equal(enc(u, "axyb", NULL, 1), "a[0,1]|<unk>[1,2]|<unk>[2,3]|b[3,4]");
	/* é has no token: its two bytes; x has neither: unk */
	assert_string_equal(enc(b, "a\xC3\xA9x", NULL, 1),
			    "a[0,1]|<0xC3>[1,2]|<0xA9>[1,2]|<unk>[2,3]");
	/* a lone byte that is not UTF-8 decodes to U+FFFD */
	assert_string_equal(dec(b, ids, 4, 0), "\xC3\xA9" "a\xEF\xBF\xBD");
	hf_tok_free(t);
	hf_tok_free(u);
	hf_tok_free(b);
}

static void test_bpe_ignore_merges_and_affixes(void **s)
{
	/* ignore_merges: a word in the vocab is taken whole even when the
	 * merges would not build it */
	struct hf_tok *t = load("{\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,"
				BPE_VOCAB ",\"merges\":[\"b c\"]}}");
	struct hf_tok *p = load("{\"model\":{\"type\":\"BPE\",\"continuing_subword_prefix\":\"##\","
				"\"end_of_word_suffix\":\"</w>\",\"vocab\":{\"a\":0,\"##b\":1,"
				"\"##c</w>\":2,\"##b##c</w>\":3},\"merges\":[\"##b ##c</w>\"]},"
				"\"decoder\":{\"type\":\"BPEDecoder\",\"suffix\":\"</w>\"}}");
	uint32_t ids[] = { 0, 3, 0, 2 };

	assert_string_equal(enc(t, "abc", NULL, 1), "abc[0,3]");
	assert_string_equal(enc(t, "abcc", NULL, 1), "a[0,1]|bc[1,3]|c[3,4]");
	assert_string_equal(enc(p, "abc", NULL, 1), "a[0,1]|##b##c</w>[1,3]");
	assert_string_equal(dec(p, ids, 4, 0), "a##b##c a##c");
	hf_tok_free(t);
	hf_tok_free(p);
}

/* the classic WordPiece example, and whole-word unk */
static void test_wordpiece(void **s)
{
	struct hf_tok *t = load(
		"{\"normalizer\":{\"type\":\"BertNormalizer\",\"lowercase\":true},"
		"\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
		"\"model\":{\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\","
		"\"max_input_chars_per_word\":10,\"vocab\":{\"[UNK]\":0,\"un\":1,\"##aff\":2,"
		"\"##able\":3,\"!\":4,\"do\":5,\"n\":6,\"'\":7,\"t\":8}},"
		"\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true}}");
	uint32_t ids[] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	assert_string_equal(enc(t, "Unaffable!", NULL, 1),
			    "un[0,2]|##aff[2,5]|##able[5,9]|![9,10]");
	/* no piece for x: the whole word is unk; too long: unk too */
	assert_string_equal(enc(t, "unx unaffableun", NULL, 1), "[UNK][0,3]|[UNK][4,15]");
	/* cleanup runs on each token: " !" joins, " n" " '" " t" do not */
	assert_string_equal(dec(t, ids, 8, 0), "unaffable! do n ' t");
	hf_tok_free(t);
}

/* clean_text drops is_other (Cc Cf Co) only: noncharacters (U+FDD0,
 * U+FFFF) and unassigned code points (U+0378) stay and become [UNK];
 * U+200B (Cf) and U+E000 (Co) go. BertPreTokenizer's punctuation is
 * Unicode 8.0's: U+2E43 (Po since 10.0) does not split a word. */
static void test_bert_unicode_classes(void **s)
{
	struct hf_tok *t = load(
		"{\"normalizer\":{\"type\":\"BertNormalizer\",\"lowercase\":true},"
		"\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
		"\"model\":{\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\","
		"\"vocab\":{\"[UNK]\":0,\"x\":1,\"y\":2,\"\xE2\xB8\xB9\":3}}}");

	assert_string_equal(enc(t, "x \xEF\xB7\x90 y \xEF\xBF\xBF \xCD\xB8", NULL, 1),
			    "x[0,1]|[UNK][2,3]|y[4,5]|[UNK][6,7]|[UNK][8,9]");
	assert_string_equal(enc(t, "x\xE2\x80\x8By \xEE\x80\x80", NULL, 1),
			    "[UNK][0,3]");
	assert_string_equal(enc(t, "x\xE2\xB9\x83y x\xE2\xB8\xB9y", NULL, 1),
			    "[UNK][0,3]|x[4,5]|\xE2\xB8\xB9[5,6]|y[6,7]");
	hf_tok_free(t);
}

/* Viterbi picks the best-scoring path; unknown chars fuse into one unk */
static void test_unigram(void **s)
{
	struct hf_tok *t = load(
		"{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":["
		"[\"<unk>\",0.0],[\"a\",-1.0],[\"b\",-1.0],[\"ab\",-1.5],[\"abc\",-5.0],"
		"[\"c\",-1.0],[\"bc\",-1.2]]}}");

	/* a + bc (-2.2) beats ab + c (-2.5), a + b + c (-3) and abc (-5) */
	assert_string_equal(enc(t, "abc", NULL, 1), "a[0,1]|bc[1,3]");
	assert_string_equal(enc(t, "ab", NULL, 1), "ab[0,2]");
	/* unknown run: one unk token whose string is the text */
	assert_string_equal(enc(t, "axyb", NULL, 1), "a[0,1]|xy[1,3]|b[3,4]");
	hf_tok_free(t);
}

static void test_normalizers(void **s)
{
	struct hf_tok *t = load(
		"{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":["
		"{\"type\":\"NFKC\"},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"},"
		"{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true},"
		"{\"type\":\"Prepend\",\"prepend\":\"_\"}]},"
		"\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"?\":0,\"_fi a\":1}}}");

	/* the ligature ﬁ becomes "fi", both chars aligned to it; the run of
	 * spaces becomes one, aligned to the last; stripped spaces vanish */
	assert_string_equal(enc(t, "  \xEF\xAC\x81   a ", NULL, 1), "_fi a[2,7]");
	hf_tok_free(t);
}

static void test_template_and_pairs(void **s)
{
	struct hf_tok *t = load(
		"{\"pre_tokenizer\":{\"type\":\"Whitespace\"},"
		"\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":\"[CLS] $A [SEP]\","
		"\"pair\":\"[CLS] $A [SEP] $B:1 [SEP]:1\",\"special_tokens\":{"
		"\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[1],\"tokens\":[\"[CLS]\"]},"
		"\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[2],\"tokens\":[\"[SEP]\"]}}},"
		"\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"?\":0,\"a\":3,\"b\":4,\"c\":5}}}");
	struct hf_tok_ctx *c;
	struct hf_tok_encoding e = { 0 };
	struct hf_err err = { 0 };
	struct hf_tok_trunc tr = { .max_length = 6 };
	uint32_t want_types[] = { 0, 0, 0, 0, 1, 1 };

	assert_string_equal(enc(t, "a b", NULL, 1), "[CLS][0,0]|a[0,1]|b[2,3]|[SEP][0,0]");
	assert_string_equal(enc(t, "a b", NULL, 0), "a[0,1]|b[2,3]");
	assert_int_equal(hf_tok_ctx_create(&c, t, &err), 0);
	/* longest first: 3 specials leave 3 tokens, 2 for the longer first */
	assert_int_equal(hf_tok_encode(c, "a b c", 5, "c b", 3, 1, &tr, &e, &err), 0);
	assert_int_equal(e.n, 6);
	assert_int_equal(e.ids[1], 3);
	assert_int_equal(e.ids[2], 4);
	assert_int_equal(e.ids[4], 5);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(e.type_ids[i], want_types[i]);
	/* only_second too short to lose 4 tokens: an error */
	tr.strategy = HF_TOK_TRUNC_ONLY_SECOND;
	tr.max_length = 4;
	assert_int_equal(hf_tok_encode(c, "a b", 3, "c b", 3, 1, &tr, &e, &err), HF_ERANGE);
	/* a single text: the cut-off part as overlapping windows of 2 (the
	 * template takes 2) moving by 1, left too */
	tr.strategy = HF_TOK_TRUNC_LONGEST_FIRST;
	tr.max_length = 4;
	tr.stride = 1;
	assert_int_equal(hf_tok_encode(c, "a b c b a", 9, NULL, 0, 1, &tr, &e, &err), 0);
	assert_int_equal(e.n, 4);
	assert_int_equal(e.n_overflowing, 3);
	assert_int_equal(e.overflowing[0].ids[1], 4);
	assert_int_equal(e.overflowing[0].ids[2], 5);
	assert_int_equal(e.overflowing[2].n, 4);
	assert_int_equal(e.overflowing[2].ids[1], 4);
	assert_int_equal(e.overflowing[2].ids[2], 3);
	tr.direction = HF_TOK_LEFT;
	assert_int_equal(hf_tok_encode(c, "a b c b a", 9, NULL, 0, 1, &tr, &e, &err), 0);
	assert_int_equal(e.ids[1], 4);
	assert_int_equal(e.ids[2], 3);
	assert_int_equal(e.n_overflowing, 3);
	assert_int_equal(e.overflowing[0].ids[1], 5);
	assert_int_equal(e.overflowing[2].ids[1], 3);
	tr.stride = 0;
	/* left truncation keeps the end */
	tr.strategy = HF_TOK_TRUNC_LONGEST_FIRST;
	tr.direction = HF_TOK_LEFT;
	tr.max_length = 3;
	assert_int_equal(hf_tok_encode(c, "a b c", 5, NULL, 0, 1, &tr, &e, &err), 0);
	assert_int_equal(e.n, 3);
	assert_int_equal(e.ids[1], 5);
	hf_tok_encoding_free(&e);
	hf_tok_ctx_free(c);
	hf_tok_free(t);
}

static void test_padding(void **s)
{
	struct hf_tok *t = load(
		"{\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},"
		"\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"<pad>\":0,\"a\":1,\"?\":2}}}");
	struct hf_tok_input in[2] = { { "a", 1, NULL, 0 }, { "a a a", 5, NULL, 0 } };
	struct hf_tok_encoding out[2] = { { 0 } };
	struct hf_tok_pad pad = { .enabled = 1, .multiple_of = 4, .pad_id = 0,
				  .direction = HF_TOK_LEFT };
	struct hf_err err = { 0 };
	size_t tl;

	assert_int_equal(hf_tok_encode_batch(t, NULL, NULL, in, 2, 1, NULL, &pad, out, &err), 0);
	assert_int_equal(out[0].n, 4);
	assert_int_equal(out[1].n, 4);
	assert_int_equal(out[0].ids[0], 0);
	assert_int_equal(out[0].ids[3], 1);
	assert_int_equal(out[0].attention_mask[0], 0);
	assert_int_equal(out[0].attention_mask[3], 1);
	assert_int_equal(out[0].special_mask[0], 1);
	assert_memory_equal(hf_tok_encoding_token(&out[0], 0, &tl), "<pad>", 5);
	assert_int_equal(out[1].ids[0], 0);
	hf_tok_encoding_free(&out[0]);
	hf_tok_encoding_free(&out[1]);
	hf_tok_free(t);
}

static void test_decoders(void **s)
{
	struct hf_tok *t = load(
		"{\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"?\":0,"
		"\"<pad>\":1,\"h\":2,\"e\":3,\"l\":4,\"o\":5,\"|\":6}},"
		"\"decoder\":{\"type\":\"CTC\",\"pad_token\":\"<pad>\",\"word_delimiter_token\":\"|\",\"cleanup\":true}}");
	struct hf_tok *u = load(
		"{\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"?\":0,"
		"\"xxhixx\":1,\"yo\":2}},"
		"\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\",\"content\":\"x\","
		"\"start\":1,\"stop\":2},{\"type\":\"Replace\",\"pattern\":{\"String\":\"o\"},\"content\":\"0\"},"
		"{\"type\":\"Fuse\"}]}}");
	uint32_t ids[] = { 2, 2, 3, 1, 4, 4, 1, 4, 5, 6, 2, 3 };
	uint32_t ids2[] = { 1, 2 };

	/* CTC: repeats collapse, pads vanish, | is a space */
	assert_string_equal(dec(t, ids, 12, 0), "hello he");
	assert_string_equal(dec(u, ids2, 2, 0), "xhiy0");
	hf_tok_free(t);
	hf_tok_free(u);
}

static void test_byte_level_offsets(void **s)
{
	/* GPT-2 layout: each byte of é is its own char, both aligned to é */
	struct hf_tok *t = load(
		"{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
		"\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"\xC4\xA0\":1,\"\xC3\x83\":2,\"\xC2\xA9\":3,"
		"\"\xC4\xA0\x61\":4},\"merges\":[\"\xC4\xA0 a\"]},"
		"\"decoder\":{\"type\":\"ByteLevel\"}}");
	uint32_t ids[] = { 0, 4, 2, 3 };

	assert_string_equal(enc(t, "a a\xC3\xA9", NULL, 1),
			    "a[0,1]|\xC4\xA0\x61[1,3]|\xC3\x83[3,4]|\xC2\xA9[3,4]");
	assert_string_equal(dec(t, ids, 4, 0), "a a\xC3\xA9");
	hf_tok_free(t);
}

/* unicode_scripts tests: kana and kanji are one script, spaces join */
static void test_unicode_scripts(void **s)
{
	struct hf_tok *t = load(
		"{\"pre_tokenizer\":{\"type\":\"UnicodeScripts\"},"
		"\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"?\":0,"
		"\"\xE3\x81\xA9\xE3\x81\x93\xE3\x81\xA7\xE7\x94\x9F\xE3\x82\x8C\":1,"
		"\"\xE3\x80\x82\":2,\"Yes\":3,\"Apples are \":4,"
		"\"\xE3\x82\x8A\xE3\x82\x93\xE3\x81\x94 \xE6\x9E\x97\xE6\xAA\x8E\":5}}}");

	assert_string_equal(enc(t, "\xE3\x81\xA9\xE3\x81\x93\xE3\x81\xA7\xE7\x94\x9F\xE3\x82\x8C"
				"\xE3\x80\x82Yes", NULL, 1),
			    "\xE3\x81\xA9\xE3\x81\x93\xE3\x81\xA7\xE7\x94\x9F\xE3\x82\x8C[0,5]|"
			    "\xE3\x80\x82[5,6]|Yes[6,9]");
	assert_string_equal(enc(t, "Apples are \xE3\x82\x8A\xE3\x82\x93\xE3\x81\x94 "
				"\xE6\x9E\x97\xE6\xAA\x8E", NULL, 1),
			    "Apples are [0,11]|\xE3\x82\x8A\xE3\x82\x93\xE3\x81\x94 "
			    "\xE6\x9E\x97\xE6\xAA\x8E[11,17]");
	hf_tok_free(t);
}

/* processors/roberta.rs roberta_processing: <s> A </s> </s> B </s>, every
 * type id 0, with or without the special tokens */
static void test_roberta_processing(void **s)
{
	struct hf_tok *t = load(
		"{\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},"
		"\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],"
		"\"cls\":[\"<s>\",0],\"trim_offsets\":true,\"add_prefix_space\":true},"
		"\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"?\",\"vocab\":{\"<s>\":0,"
		"\"?\":1,\"</s>\":2,\"Hello\":12,\"there\":14,\"pair\":15}}}");
	struct hf_tok_ctx *c;
	struct hf_tok_encoding e = { 0 };
	struct hf_err err = { 0 };
	uint32_t want[] = { 0, 12, 14, 2, 2, 15, 2 };

	assert_int_equal(hf_tok_ctx_create(&c, t, &err), 0);
	assert_int_equal(hf_tok_encode(c, "Hello there", 11, "pair", 4, 1, NULL, &e, &err), 0);
	assert_int_equal(e.n, 7);
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(e.ids[i], want[i]);
		assert_int_equal(e.type_ids[i], 0);
		assert_int_equal(e.special_mask[i], i == 0 || i == 3 || i == 4 || i == 6);
	}
	assert_int_equal(hf_tok_encode(c, "Hello there", 11, "pair", 4, 0, NULL, &e, &err), 0);
	assert_int_equal(e.n, 3);
	assert_int_equal(e.type_ids[2], 0);
	hf_tok_encoding_free(&e);
	hf_tok_ctx_free(c);
	hf_tok_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_behaviors),
		cmocka_unit_test(test_metaspace),
		cmocka_unit_test(test_added_token_options),
		cmocka_unit_test(test_bpe_merge_ranks),
		cmocka_unit_test(test_bpe_unk_and_byte_fallback),
		cmocka_unit_test(test_bpe_ignore_merges_and_affixes),
		cmocka_unit_test(test_wordpiece),
		cmocka_unit_test(test_bert_unicode_classes),
		cmocka_unit_test(test_unigram),
		cmocka_unit_test(test_normalizers),
		cmocka_unit_test(test_template_and_pairs),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_decoders),
		cmocka_unit_test(test_byte_level_offsets),
		cmocka_unit_test(test_unicode_scripts),
		cmocka_unit_test(test_roberta_processing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
