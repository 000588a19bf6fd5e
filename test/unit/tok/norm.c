/* test/unit/tok/norm.c: normalizers against tokenizers' own character
 * tables. The BertNormalizer walk checks every code point against
 * data/bert-ucd.txt, written by data/gen-bert-ucd.py from bert.rs and the
 * tables of the crates it uses (unicode_categories 0.1.1, Unicode 8.0;
 * unicode-normalization-alignments 0.1.12, Unicode 9.0). The Lowercase
 * and NFC walks check against the library's own output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tok/tok.h"

#define NCP 0x110000

enum { CC = 1, CF = 2, CO = 4, MN = 8, WS = 16, CJK = 32 };

struct ucd {
	uint8_t cls[NCP];
	uint32_t *nfd[NCP];	/* full canonical decomposition, 0-ended */
};

static struct ucd *ucd_load(void)
{
	struct ucd *u = calloc(1, sizeof(*u));
	FILE *f = fopen(BERT_UCD, "r");
	char line[256];

	if (!u || !f)
		fail_msg("cannot read %s", BERT_UCD);
	while (fgets(line, sizeof(line), f)) {
		char name[8];
		unsigned a, b;
		int at;

		if (line[0] == '#')
			continue;
		if (sscanf(line, "%7s %x%n", name, &a, &at) != 2 || a >= NCP)
			fail_msg("bad line in %s: %s", BERT_UCD, line);
		if (!strcmp(name, "nfd")) {
			uint32_t d[8];
			int n = 0, k;

			while (n < 7 && sscanf(line + at, "%x%n", &b, &k) == 1) {
				d[n++] = b;
				at += k;
			}
			d[n] = 0;
			u->nfd[a] = malloc(sizeof(d));
			memcpy(u->nfd[a], d, sizeof(d));
			continue;
		}
		if (sscanf(line + at, "%x", &b) != 1 || b >= NCP || b < a)
			fail_msg("bad line in %s: %s", BERT_UCD, line);
		for (unsigned c = a; c <= b; c++)
			u->cls[c] |= !strcmp(name, "cc") ? CC : !strcmp(name, "cf") ? CF :
				     !strcmp(name, "co") ? CO : !strcmp(name, "mn") ? MN :
				     !strcmp(name, "ws") ? WS : !strcmp(name, "cjk") ? CJK : 0;
	}
	fclose(f);
	return u;
}

static void ucd_free(struct ucd *u)
{
	for (size_t c = 0; c < NCP; c++)
		free(u->nfd[c]);
	free(u);
}

static size_t put8(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xC0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xE0 | c >> 12);
		o[1] = (char)(0x80 | (c >> 6 & 0x3F));
		o[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | c >> 18);
	o[1] = (char)(0x80 | (c >> 12 & 0x3F));
	o[2] = (char)(0x80 | (c >> 6 & 0x3F));
	o[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* NFD of one code point, then drop Mn: do_strip_accents */
static size_t strip_accents(const struct ucd *u, uint32_t c, char *o)
{
	uint32_t one[2] = { c, 0 }, hangul[4] = { 0 };
	const uint32_t *d = u->nfd[c] ? u->nfd[c] : one;
	size_t n = 0;

	if (c >= 0xAC00 && c < 0xAC00 + 11172) {	/* Unicode ch. 3.12 */
		uint32_t s = c - 0xAC00;

		hangul[0] = 0x1100 + s / 588;
		hangul[1] = 0x1161 + s % 588 / 28;
		hangul[2] = s % 28 ? 0x11A7 + s % 28 : 0;
		d = hangul;
	}
	for (; *d; d++)
		if (!(u->cls[*d] & MN))
			n += put8(*d, o + n);
	return n;
}

/* bert.rs's normalize() on the one-char string c, lowercase off */
static size_t bert_want(const struct ucd *u, uint32_t c, char *o)
{
	size_t n = 0;

	if (c == 0 || c == 0xFFFD ||
	    (c != '\t' && c != '\n' && c != '\r' && (u->cls[c] & (CC | CF | CO))))
		return 0;
	if (c == '\t' || c == '\n' || c == '\r' || (u->cls[c] & WS)) {
		o[0] = ' ';
		return 1;
	}
	if (u->cls[c] & CJK)
		o[n++] = ' ';
	n += strip_accents(u, c, o + n);
	if (u->cls[c] & CJK)
		o[n++] = ' ';
	return n;
}

static void hex(const char *s, size_t n, char *o)
{
	o[0] = 0;
	for (size_t i = 0; i < n && i < 16; i++)
		sprintf(o + 3 * i, "%02X ", (unsigned char)s[i]);
}

static void test_bert_normalizer_every_code_point(void **state)
{
	static const char json[] =
		"{\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,"
		"\"handle_chinese_chars\":true,\"strip_accents\":true,"
		"\"lowercase\":false},"
		"\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"[UNK]\","
		"\"vocab\":{\"[UNK]\":0}}}";
	struct ucd *u = ucd_load();
	struct hf_tok *t = NULL;
	struct hf_tok_ctx *c = NULL;
	struct hf_err err = { 0 };
	size_t bad = 0, checked = 0;

	assert_int_equal(hf_tok_load_buf(&t, json, strlen(json), "bert", &err), 0);
	assert_int_equal(hf_tok_ctx_create(&c, t, &err), 0);
	for (uint32_t cp = 0; cp < NCP; cp++) {
		char in[4], want[64], *got = NULL, hg[64], hw[64];
		size_t nin, nwant, ngot;

		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		nin = put8(cp, in);
		nwant = bert_want(u, cp, want);
		if (hf_tok_normalize(c, in, nin, &got, &ngot, &err))
			fail_msg("U+%04X: %s", cp, err.msg);
		checked++;
		if (ngot != nwant || memcmp(got, want, ngot)) {
			if (bad++ < 20) {
				hex(got, ngot, hg);
				hex(want, nwant, hw);
				print_error("U+%04X: got [%s] want [%s]\n", cp, hg, hw);
			}
		}
		free(got);
	}
	if (bad)
		fail_msg("%zu of %zu code points differ from tokenizers", bad, checked);
	assert_int_equal(checked, NCP - 0x800);
	hf_tok_ctx_free(c);
	hf_tok_free(t);
	ucd_free(u);
}

/* Every code point through the Lowercase and NFC normalizers against
 * data/tokenizers-walk.txt: what tokenizers 0.23.2 itself made of each
 * (data/gen-tokenizers-walk.js), where it changed it. */
static void walk_library(const char *name, const char *normalizer)
{
	static uint32_t *want[NCP];
	FILE *f = fopen(TOKENIZERS_WALK, "r");
	char json[256], line[256];
	struct hf_tok *t = NULL;
	struct hf_tok_ctx *c = NULL;
	struct hf_err err = { 0 };
	size_t bad = 0, nl = strlen(name);

	if (!f)
		fail_msg("cannot read %s", TOKENIZERS_WALK);
	while (fgets(line, sizeof(line), f)) {
		unsigned a, b;
		int at, k, n = 0;
		uint32_t d[8];

		if (strncmp(line, name, nl) || line[nl] != ' ')
			continue;
		if (sscanf(line + nl, "%x%n", &a, &at) != 1 || a >= NCP)
			fail_msg("bad line in %s: %s", TOKENIZERS_WALK, line);
		while (n < 7 && sscanf(line + nl + at, "%x%n", &b, &k) == 1) {
			d[n++] = b;
			at += k;
		}
		d[n] = 0;
		want[a] = malloc(sizeof(d));
		memcpy(want[a], d, sizeof(d));
	}
	fclose(f);
	snprintf(json, sizeof(json), "{\"normalizer\":%s,\"model\":{\"type\":"
		 "\"WordLevel\",\"unk_token\":\"u\",\"vocab\":{\"u\":0}}}",
		 normalizer);
	assert_int_equal(hf_tok_load_buf(&t, json, strlen(json), name, &err), 0);
	assert_int_equal(hf_tok_ctx_create(&c, t, &err), 0);
	for (uint32_t cp = 0; cp < NCP; cp++) {
		char in[4], w[64], *got = NULL, hg[64], hw[64];
		size_t nin, nw = 0, ngot;

		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		nin = put8(cp, in);
		if (want[cp])
			for (const uint32_t *p = want[cp]; *p; p++)
				nw += put8(*p, w + nw);
		else
			nw = put8(cp, w);
		if (hf_tok_normalize(c, in, nin, &got, &ngot, &err))
			fail_msg("U+%04X: %s", cp, err.msg);
		if ((ngot != nw || memcmp(got, w, nw)) && bad++ < 20) {
			hex(got, ngot, hg);
			hex(w, nw, hw);
			print_error("%s U+%04X: got [%s] want [%s]\n", name, cp, hg, hw);
		}
		free(got);
		free(want[cp]);
		want[cp] = NULL;
	}
	hf_tok_ctx_free(c);
	hf_tok_free(t);
	if (bad)
		fail_msg("%s: %zu code points differ from tokenizers", name, bad);
}

/* Rust's to_lowercase of tokenizers 0.23.2 is Unicode 17.0's */
static void test_lowercase_every_code_point(void **state)
{
	walk_library("lower", "{\"type\":\"Lowercase\"}");
}

/* U+2ADC and U+1D15E..U+1D1C0 are composition exclusions */
static void test_nfc_every_code_point(void **state)
{
	walk_library("nfc", "{\"type\":\"NFC\"}");
}

static char *norm_with(const char *normalizer, const char *text)
{
	static char out[256];
	char json[512];
	struct hf_tok *t = NULL;
	struct hf_tok_ctx *c = NULL;
	struct hf_err err = { 0 };
	char *s;

	snprintf(json, sizeof(json),
		 "{\"normalizer\":%s,\"model\":{\"type\":\"WordLevel\","
		 "\"unk_token\":\"u\",\"vocab\":{\"u\":0}}}", normalizer);
	assert_int_equal(hf_tok_load_buf(&t, json, strlen(json), "n", &err), 0);
	assert_int_equal(hf_tok_ctx_create(&c, t, &err), 0);
	assert_int_equal(hf_tok_normalize(c, text, strlen(text), &s, NULL, &err), 0);
	snprintf(out, sizeof(out), "%s", s);
	free(s);
	hf_tok_ctx_free(c);
	hf_tok_free(t);
	return out;
}

/* Unicode 9.0 had no data for what came later: U+32FF (12.1) keeps its
 * NFKC form, U+11938 (13.0) its NFD form, U+1DFA (14.0, ccc 218 in
 * utf8proc) is not moved before U+0301 (ccc 230) */
static void test_nfkc_leaves_code_points_after_unicode_9(void **state)
{
	assert_string_equal(norm_with("{\"type\":\"NFKC\"}", "\xE3\x8B\xBF"),
			    "\xE3\x8B\xBF");
	assert_string_equal(norm_with("{\"type\":\"NFD\"}", "\xF0\x91\xA4\xB8"),
			    "\xF0\x91\xA4\xB8");
	assert_string_equal(norm_with("{\"type\":\"NFKD\"}", "\xE2\x91\xA0"), "1");
	assert_string_equal(norm_with("{\"type\":\"NFD\"}",
				      "a\xCC\x81\xE1\xB7\xBA"),
			    "a\xCC\x81\xE1\xB7\xBA");
	assert_string_equal(norm_with("{\"type\":\"NFD\"}", "a\xCC\x81\xCC\xA3"),
			    "a\xCC\xA3\xCC\x81");
}

/* StripAccents takes is_combining_mark (Unicode 9.0): U+0300 goes,
 * U+1AC1 (Mn since 14.0) stays */
static void test_strip_accents_marks_of_unicode_9(void **state)
{
	assert_string_equal(norm_with("{\"type\":\"StripAccents\"}",
				      "e\xCC\x80\xE1\xAB\x81"), "e\xE1\xAB\x81");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bert_normalizer_every_code_point),
		cmocka_unit_test(test_lowercase_every_code_point),
		cmocka_unit_test(test_nfc_every_code_point),
		cmocka_unit_test(test_nfkc_leaves_code_points_after_unicode_9),
		cmocka_unit_test(test_strip_accents_marks_of_unicode_9),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
