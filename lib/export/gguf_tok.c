/* lib/export/gguf_tok.c: the tokenizer as llama.cpp's converter embeds it
 * in a GGUF (conversion/base.py: _set_vocab_sentencepiece,
 * _set_vocab_gpt2, get_vocab_base, get_vocab_base_pre; BertModel.
 * set_vocab; gguf-py vocab.py SpecialVocab): tokenizer.model read as the
 * SentencePiece protobuf it is, tokenizer.json and tokenizer_config.json
 * through jansson, and the pre-tokenizer check text encoded by lib/tok. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "export/export.h"
#include "export/families.h"
#include "export/gguf.h"
#include "hub/sha256.h"
#include "tok/tok.h"

/* llama.cpp's token types (gguf TokenType, SentencePiece's + 1). */
enum { T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER = 4,
       T_UNUSED = 5, T_BYTE = 6 };

static const char chktxt[] =
	"\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\360\237\232"
	"\200 (normal) \360\237\230\266\342\200\215\360\237\214\253\357"
	"\270\217 (multiple emojis concatenated) \342\234\205 \360\237"
	"\246\231\360\237\246\231 3 33 333 3333 33333 333333 3333333 3"
	"3333333 3.3 3..3 3...3 \341\236\200\341\236\266\341\236\223\341"
	"\237\213\341\236\217\341\237\202\341\236\226\341\236\267\341\236"
	"\237\341\237\201\341\236\237\341\236\242\341\236\266\341\236\205"
	"\360\237\230\201 ?\346\210\221\346\203\263\345\234\250apple\345"
	"\267\245\344\275\2341314151\345\244\251\357\275\236 ------==="
	"==== \320\275\320\265\321\211\320\276 \320\275\320\260 \320\221"
	"\321\212\320\273\320\263\320\260\321\200\321\201\320\272\320\270"
	" ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's"
	" there, 'RE you sure? 'M not sure I'll make it, 'D you like s"
	"ome tea? We'Ve a'lL";

/* convert_hf_to_gguf.py get_vocab_base_pre(): sha256 of str(ids) -> name, in
 * its order; a later entry wins, as its chain of ifs lets it. */
static const struct { const char *hash, *name; } pre_names[] = {
	{ "b6e8e1518dc4305be2fe39c313ed643381c4da5db34a98f6a04c093f8afbe99b", "chatglm-bpe" },
	{ "81d72c7348a9f0ebe86f23298d37debe0a5e71149e29bd283904c02262b27516", "chatglm-bpe" },
	{ "a1336059768a55c99a734006ffb02203cd450fed003e9a71886c88acf24fdbc2", "glm4" },
	{ "9ca2dd618e8afaf09731a7cf6e2105b373ba6a1821559f258b272fe83e6eb902", "glm4" },
	{ "cdf5f35325780597efd76153d4d1c16778f766173908894c04afc20108536267", "glm4" },
	{ "1431a23e583c97432bc230bff598d103ddb5a1f89960c8f1d1051aaa944d0b35", "minerva-7b" },
	{ "7e57df22b1fe23a7b1e1c7f3dc4e3f96d43a4eb0836d0c6bdc3436d7b2f1c664", "hunyuan" },
	{ "bba3b3366b646dbdded5dbc42d59598b849371afc42f7beafa914afaa5b70aa6", "hunyuan-dense" },
	{ "e6ddf9c6686791c12d698d34c31ab9be1fea9af5a3d9a6909783ab382198ae1c", "hy_v4" },
	{ "a6b57017d60e6edb4d88ecc2845188e0eb333a70357e45dcc9b53964a73bbae6", "falcon-h1" },
	{ "60476e1243776c4fb1b993dbd7a5f15ac22f83c80afdf425fa5ae01c8d44ef86", "falcon-h1" },
	{ "3eda48b4c4dc7de733d1a8b3e3b4a85243dbbf704da2ee9d42c6beced8897896", "falcon-h1" },
	{ "48f8e02c0359c0bbdd82f26909171fac1c18a457bb47573ed1fe3bbb2c1cfd4b", "falcon-h1" },
	{ "81212dc7cdb7e0c1074ca62c5aeab0d43c9f52b8a737be7b12a777c953027890", "kimi-k2" },
	{ "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c", "qwen2" },
	{ "1444df51289cfa8063b96f0e62b1125440111bc79a52003ea14b6eac7016fd5f", "qwen35" },
	{ "66b8d4e19ab16c3bfd89bce5d785fb7e0155e8648708a1f42077cb9fe002c273", "grok-2" },
	{ "b3d1dd861f1d4c5c0d2569ce36baf3f90fe8a102db3de50dd71ff860d91be3df", "jina-v2-de" },
	{ "0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4", "gpt-2" },
	{ "9e454714343b69b99b71795c1d27a68c2a1d15dab111f4d353109f966af29da7", "lfm2" },
	{ "846deafc5b0fa786186fa4ae6c7b49903cf2f1d1895bdb80b9120d60be135252", "gemma4" },
	{ "0a766d034107bc736a3f2dc4968fd62e54a3570f1454443e0c5a4cc6bd7941ed", "spark2_5" },
	{ "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5", "llama-bpe" },
	{ "049ecf7629871e3041641907f3de7c733e4dbfdc736f57d882ba0b0845599754", "deepseek-llm" },
	{ "347715f544604f9118bb75ed199f68779f423cabb20db6de6f31b908d04d7821", "deepseek-coder" },
	{ "8aeee3860c56296a157a1fe2fad249ec40aa59b1bb5709f4ade11c4e6fe652ed", "falcon" },
	{ "0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f", "bert-bge" },
	{ "9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e", "falcon3" },
	{ "8e62295832751ca1e8f92f2226f403dea30dc5165e448b5bfa05af5340c64ec7", "bert-bge-large" },
	{ "b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166", "mpt" },
	{ "35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34", "starcoder" },
	{ "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454", "gpt-2" },
	{ "32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3", "stablelm2" },
	{ "6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff", "refact" },
	{ "9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8", "command-r" },
	{ "d772b220ace2baec124bed8cfafce0ead7d6c38a4b65ef11261cf9d5d62246d1", "tiny_aya" },
	{ "52df12b4c8d4176e7481aab4b6e8454d1fd0a210a04a574f6d4e067d10e23c3e", "cohere2moe" },
	{ "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea", "qwen2" },
	{ "b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166", "olmo" },
	{ "a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e", "dbrx" },
	{ "c7699093ba4255a91e702aa38a596aa81669f3525dae06c2953267dde580f448", "jina-v1-en" },
	{ "0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f", "jina-v2-en" },
	{ "171aeeedd6fb548d418a7461d053f11b6f1f1fc9b387bd66640d28a4b9f5c643", "jina-v2-es" },
	{ "27949a2493fc4a9f53f5b9b029c82689cfbe5d3a1929bb25e043089e28466de6", "jina-v2-de" },
	{ "a023e9fdc5a11f034d3ef515b92350e56fb2af1f66c6b6811a4444ea9bf8763d", "jina-v5-nano" },
	{ "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d", "smaug-bpe" },
	{ "c7ea5862a53e4272c035c8238367063e2b270d51faa48c0f09e9d5b54746c360", "poro-chat" },
	{ "7967bfa498ade6b757b064f31e964dddbb80f8f9a4d68d4ba7998fcf281c531a", "jina-v2-code" },
	{ "7fc505bd3104ca1083b150b17d088b59534ede9bde81f0dd2090967d7fe52cee", "viking" },
	{ "b53802fb28e26d645c3a310b34bfe07da813026ec7c7716883404d5e0f8b1901", "jais" },
	{ "bc5108ee1eb6a3d600cadd065f63190fbd0554dbc9e4bbd6a0d977970afc8d2a", "jais-2" },
	{ "7b3e7548e4308f52a76e8229e4e6cc831195d0d1df43aed21ac6c93da05fec5f", "codeshell" },
	{ "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e", "tekken" },
	{ "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249", "smollm" },
	{ "3c30d3ad1d6b64202cd222813e7736c2db6e1bd6d67197090fc1211fbc612ae7", "bloom" },
	{ "bc01ce58980e1db43859146dc51b1758b3b88729b217a74792e9f8d43e479d21", "gpt3-finnish" },
	{ "4e2b24cc4770243d65a2c9ec19770a72f08cffc161adbb73fcbb6b7dd45a0aae", "exaone" },
	{ "fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085", "phi-2" },
	{ "60824e3c0d9401f89943cbb2fff727f0e2d4c545ba4df2d6e4f09a6db0f5b450", "chameleon" },
	{ "8b5a93ed704057481f240da0be7e7dca721d7f8f4755263b6807227a2cbeae65", "roberta-bpe" },
	{ "ad851be1dba641f2e3711822f816db2c265f788b37c63b4e1aeacb9ee92de8eb", "gigachat" },
	{ "d4c8f286ea6b520b3d495c4455483cfa2302c0cfcd4be05d781b6a8a0a7cdaf1", "megrez" },
	{ "877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5", "deepseek-v3" },
	{ "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5", "deepseek-r1-qwen" },
	{ "ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e", "gpt-4o" },
	{ "7dec86086fcc38b66b7bc1575a160ae21cf705be7718b9d5598190d7c12db76f", "superbpe" },
	{ "1994ffd01900cfb37395608534236ecd63f2bd5995d6cb1004dda1af50240f15", "trillion" },
	{ "96a5f08be6259352137b512d4157e333e21df7edd3fcd152990608735a65b224", "bailingmoe" },
	{ "d353350c764d8c3b39c763113960e4fb4919bea5fbf208a0e3b22e8469dc7406", "llama4" },
	{ "0e9433cbbb161f89e264eb32e8e64bfe69e834973ffca5d41d3948a604a3e2a3", "pixtral" },
	{ "d5f1dd6f980fec569fb218a81a7658ac45fc56b38c5a0adeb1c232fbe04ef5ec", "seed-coder" },
	{ "b0a6b1c0bd5998ebd9df08611efde34a4ff03faed45ae09c43e6b31ebd4b94cf", "a.x-4.0" },
	{ "f6791d196f87ce6b56a7d234be618e0d58f8cda3549416635b2bebcd22cd95c4", "midm-2.0" },
	{ "169bf0296a13c4d9b7672313f749eb36501d931022de052aad6e36f2bf34dd51", "lfm2" },
	{ "2085e1638f6c377a0aa4ead21b27bb4cb941bf800df86ed391011769c1758dfb", "exaone4" },
	{ "a1e163ecab2e718a4c829d1148b6e86824ec36163bb71941c3dca9cd5ac25756", "mellum" },
	{ "a0b64b4385f123663873756336c085744376d015ff328bb1d901598f63c44152", "modern-bert" },
	{ "49fc0303c9e0d2c2c565c510f64b2d9b271276acdcdadff733249eda9f7d59df", "afmoe" },
	{ "9b1be57e70d20d9501b2b3186e792d81181ae36ada3903c26f9fea418cf87206", "bailingmoe2" },
	{ "53e325976a6e142379c19b09afcae354f2f496f147afa8f9e189a33fe4e3024e", "granite-docling" },
	{ "f4f37b6c8eb9ea29b3eac6bb8c8487c5ab7885f8d8022e67edc1c68ce8403e95", "minimax-m2" },
	{ "4a2e2abae11ca2b86d570fc5b44be4d5eb5e72cc8f22dd136a94b37da83ab665", "kormo" },
	{ "9d70134b369a70e5735009b6de918f7581b5211f7c074d1f89f753aea8248af1", "youtu" },
	{ "16389f0a1f51ee53e562ffd51c371dc508639ab0e4261502071836e50e223e91", "solar-open" },
	{ "6c81ce329e0802883b22eabab0d3fa48357337ef1ecb45443828bf1f6254833f", "exaone-moe" },
	{ "d30d75d9059f1aa2c19359de71047b3ae408c70875e8a3ccf8c5fba56c9d8af4", "qwen35" },
	{ "b4b8ca1f9769494fbd956ebc4c249de6131fb277a4a3345a7a92c7dd7a55808d", "joyai-llm" },
	{ "e4d54df1ebc1f2b91acd986c5b51aa50837d5faf7c7398e73c1f9e9ee5d19869", "kanana2" },
	{ "862f827721df956049dff5ca81a57f29e575280bc622e290d3bf4e35eca29015", "f2llmv2" },
	{ "62f6fb0a6fd5098caeabb19b07a5c1099cafc8b9c40eab6ea89ece4ec02fbc57", "sarvam-moe" },
	{ "f728162c1315c26e40249849799b4ba3fe584c32084b4795b03eb295e63cb5af", "talkie" },
	{ "36f3066e97b7f3994b379aaacde306c1444c6ae84e81a5ae3cd2b7ed3b8c42d4", "minicpm5" },
	{ "f241072145675bf8322086f115aebad05e9f869557a238bf2150a2a417d1bf60", "granite-embed-multi-97m" },
	{ "789696f5946cc0fc59371f39f6097cafed196b3acded6140432f26bbb1ae1669", "granite-embed-multi-311m" },
	{ "9dcf830ee9990cdbf78cc523a5f7bd9ad8f3f9890c2d3581d2785ad10f07049d", "mellum2" },
	{ "972da7b59cec44d1f0a490a86c96df53859e486e481563e5dddac155013d87ac", "laguna" },
	{ "653660222fb704f61cbf2b618a8ae6502b7f8b20c980f9a5de07ed78e13319cd", "ufakzeka" },
};

const char *hf_gguf_pre_name(const char *hash)
{
	const char *name = NULL;

	for (size_t i = 0; i < sizeof(pre_names) / sizeof(pre_names[0]); i++)
		if (!strcmp(pre_names[i].hash, hash))
			name = pre_names[i].name;
	return name;
}

/* ---- the vocabulary being built ---- */

struct vocab {
	size_t n;
	char **tok;
	size_t *len;
	float *score;		/* NULL: no scores (BPE, WordPiece) */
	int32_t *type;
};

static void vocab_free(struct vocab *v)
{
	for (size_t i = 0; v->tok && i < v->n; i++)
		free(v->tok[i]);
	free(v->tok);
	free(v->len);
	free(v->score);
	free(v->type);
	memset(v, 0, sizeof(*v));
}

static int vocab_set(struct vocab *v, size_t i, const char *s, size_t len)
{
	char *c = malloc(len + 1);

	if (!c)
		return -1;
	memcpy(c, s, len);
	c[len] = 0;
	free(v->tok[i]);
	v->tok[i] = c;
	v->len[i] = len;
	return 0;
}

/* n entries "[PAD<i>]", unused, score pad_score. */
static int vocab_init(struct vocab *v, size_t n, int scores, float pad_score)
{
	char b[32];

	memset(v, 0, sizeof(*v));
	v->n = n;
	v->tok = calloc(n + 1, sizeof(*v->tok));
	v->len = calloc(n + 1, sizeof(*v->len));
	v->type = calloc(n + 1, sizeof(*v->type));
	if (scores)
		v->score = calloc(n + 1, sizeof(*v->score));
	if (!v->tok || !v->len || !v->type || (scores && !v->score))
		return -1;
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(b, sizeof(b), "[PAD%zu]", i);

		if (vocab_set(v, i, b, (size_t)k))
			return -1;
		v->type[i] = T_UNUSED;
		if (scores)
			v->score[i] = pad_score;
	}
	return 0;
}

static int vocab_write(struct hf_gguf_writer *w, const struct vocab *v,
		       struct hf_err *err)
{
	if (hf_gguf_set_arr_str(w, "tokenizer.ggml.tokens",
				(const char *const *)v->tok, v->len, v->n, err))
		return err->code;
	if (v->score && hf_gguf_set_arr(w, "tokenizer.ggml.scores", HF_GGUF_F32,
					v->score, v->n, err))
		return err->code;
	return hf_gguf_set_arr(w, "tokenizer.ggml.token_type", HF_GGUF_I32,
			       v->type, v->n, err);
}

/* TextModel.does_token_look_special. */
static int looks_special(const char *s, size_t n)
{
	static const char *const exact[] = { "<pad>", "<mask>", "<2mass>",
					     "[@BOS@]" };
#define ENDS(str, lit) (n >= sizeof(lit) - 1 &&			\
		       !memcmp((str) + n - (sizeof(lit) - 1), lit,	\
			       sizeof(lit) - 1))
#define STARTS(str, lit) (n >= sizeof(lit) - 1 &&			\
			 !memcmp(str, lit, sizeof(lit) - 1))

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (n == strlen(exact[i]) && !memcmp(s, exact[i], n))
			return 1;
	if (STARTS(s, "<|") && ENDS(s, "|>"))
		return 1;
	if (STARTS(s, "<\357\275\234") && ENDS(s, "\357\275\234>"))
		return 1;	/* <｜ ... ｜> */
	if (STARTS(s, "<unused") && ENDS(s, ">"))
		return 1;
	return 0;
#undef ENDS
#undef STARTS
}

/* s with every U+2581 (the SentencePiece space) replaced by ' ', into v
 * at i: how user-defined added tokens are pre-normalized. */
static int set_unspaced(struct vocab *v, size_t i, const char *s, size_t n)
{
	char *c = malloc(n + 1);
	size_t k = 0;

	if (!c)
		return -1;
	for (size_t j = 0; j < n; j++) {
		if (j + 2 < n + 0 && (unsigned char)s[j] == 0xe2 &&
		    (unsigned char)s[j + 1] == 0x96 &&
		    (unsigned char)s[j + 2] == 0x81) {
			c[k++] = ' ';
			j += 2;
		} else {
			c[k++] = s[j];
		}
	}
	c[k] = 0;
	free(v->tok[i]);
	v->tok[i] = c;
	v->len[i] = k;
	return 0;
}

/* ---- SentencePiece's tokenizer.model (sentencepiece_model.proto) ---- */

struct pb {
	const unsigned char *p, *end;
};

static int pb_varint(struct pb *b, uint64_t *v)
{
	*v = 0;
	for (int s = 0; s < 64; s += 7) {
		if (b->p >= b->end)
			return -1;
		*v |= (uint64_t)(*b->p & 0x7f) << s;
		if (!(*b->p++ & 0x80))
			return 0;
	}
	return -1;
}

/* Skip a field of wire type wt. */
static int pb_skip(struct pb *b, unsigned wt)
{
	uint64_t n;

	switch (wt) {
	case 0:
		return pb_varint(b, &n);
	case 1:
		n = 8;
		break;
	case 2:
		if (pb_varint(b, &n))
			return -1;
		break;
	case 5:
		n = 4;
		break;
	default:
		return -1;
	}
	if (n > (uint64_t)(b->end - b->p))
		return -1;
	b->p += n;
	return 0;
}

struct spm_piece {
	const char *s;
	size_t len;
	float score;
	int type;	/* SentencePiece's: 1 normal ... 6 byte */
};

/* The pieces of a ModelProto (field 1, each a SentencePiece: piece 1,
 * score 2, type 3); *out malloc'd. */
static int spm_parse(struct spm_piece **out, size_t *n, const char *path,
		     const unsigned char *data, size_t len, struct hf_err *err)
{
	struct pb b = { data, data + len };
	struct spm_piece *v = NULL;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	while (b.p < b.end) {
		uint64_t key, l;
		struct pb s;
		struct spm_piece pc = { "", 0, 0.0f, 1 };

		if (pb_varint(&b, &key))
			goto bad;
		if ((key >> 3) != 1 || (key & 7) != 2) {
			if (pb_skip(&b, key & 7))
				goto bad;
			continue;
		}
		if (pb_varint(&b, &l) || l > (uint64_t)(b.end - b.p))
			goto bad;
		s.p = b.p;
		s.end = b.p + l;
		b.p += l;
		while (s.p < s.end) {
			uint64_t k, x;

			if (pb_varint(&s, &k))
				goto bad;
			if ((k >> 3) == 1 && (k & 7) == 2) {
				if (pb_varint(&s, &x) ||
				    x > (uint64_t)(s.end - s.p))
					goto bad;
				pc.s = (const char *)s.p;
				pc.len = (size_t)x;
				s.p += x;
			} else if ((k >> 3) == 2 && (k & 7) == 5) {
				if (s.end - s.p < 4)
					goto bad;
				memcpy(&pc.score, s.p, 4);
				s.p += 4;
			} else if ((k >> 3) == 3 && (k & 7) == 0) {
				if (pb_varint(&s, &x))
					goto bad;
				pc.type = (int)x;
			} else if (pb_skip(&s, k & 7)) {
				goto bad;
			}
		}
		if (*n == cap) {
			size_t c2 = cap ? 2 * cap : 1024;
			struct spm_piece *nv = realloc(v, c2 * sizeof(*nv));

			if (!nv) {
				free(v);
				return hf_err_set(err, HF_ENOMEM, "out of memory");
			}
			v = nv;
			cap = c2;
		}
		v[(*n)++] = pc;
	}
	if (!*n) {
		free(v);
		return hf_err_set(err, HF_EFORMAT, "%s: no SentencePiece pieces",
				  path);
	}
	*out = v;
	return 0;
bad:
	free(v);
	*n = 0;
	return hf_err_set(err, HF_EFORMAT, "%s: malformed SentencePiece model "
			  "at byte %zu", path, (size_t)(b.p - data));
}

/* ---- JSON helpers ---- */

/* A string, or an AddedToken object's content. */
static const char *tok_content(const json_t *e)
{
	if (json_is_string(e))
		return json_string_value(e);
	if (json_is_object(e) &&
	    json_is_string(json_object_get(e, "content")))
		return json_string_value(json_object_get(e, "content"));
	return NULL;
}

static int load_json_opt(json_t **out, const char *dir, const char *name,
			 struct hf_err *err)
{
	char *p = hf_path_join(dir, name);
	int rc = 0;

	*out = NULL;
	if (!p)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (hf_file_exists(p))
		rc = hf_json_load_file(out, p, err);
	free(p);
	return rc;
}

/* ---- SpecialVocab ---- */

struct special {
	const char *typ;	/* "bos" ... */
	const char *key;	/* its GGUF key, NULL: no handler */
	int64_t id;		/* -1: unset */
	int add;		/* -1: unset, else the add_<typ>_token flag */
	const char *add_key;
};

enum { S_BOS, S_EOS, S_UNK, S_SEP, S_PAD, S_CLS, S_MASK, S_EOT, S_EOM,
       S_COUNT };

static void special_init(struct special *s)
{
	static const struct { const char *typ, *key, *add; } t[S_COUNT] = {
		{ "bos", "tokenizer.ggml.bos_token_id",
		  "tokenizer.ggml.add_bos_token" },
		{ "eos", "tokenizer.ggml.eos_token_id",
		  "tokenizer.ggml.add_eos_token" },
		{ "unk", "tokenizer.ggml.unknown_token_id", NULL },
		{ "sep", "tokenizer.ggml.seperator_token_id",
		  "tokenizer.ggml.add_sep_token" },
		{ "pad", "tokenizer.ggml.padding_token_id", NULL },
		{ "cls", NULL, NULL },
		{ "mask", "tokenizer.ggml.mask_token_id", NULL },
		{ "eot", "tokenizer.ggml.eot_token_id", NULL },
		{ "eom", "tokenizer.ggml.eom_token_id", NULL },
	};

	for (int i = 0; i < S_COUNT; i++) {
		s[i].typ = t[i].typ;
		s[i].key = t[i].key;
		s[i].add_key = t[i].add;
		s[i].id = -1;
		s[i].add = -1;
	}
}

/* _set_special_token: the first valid id of a type wins. */
static void special_set(struct special *s, int64_t id, int64_t n_vocab)
{
	if (s->id >= 0 || id < 0)
		return;
	if (n_vocab > 0 && id >= n_vocab) {
		hf_log_warn("special token %s id %lld is out of range (vocab "
			    "%lld); not written", s->typ, (long long)id,
			    (long long)n_vocab);
		return;
	}
	s->id = id;
}

static int64_t added_id(const json_t *added, const char *content)
{
	size_t i;
	json_t *a;

	if (!content)
		return -1;
	json_array_foreach(added, i, a) {
		const json_t *c = json_object_get(a, "content");
		const json_t *id = json_object_get(a, "id");

		if (json_is_string(c) && json_is_integer(id) &&
		    !strcmp(json_string_value(c), content))
			return json_integer_value(id);
	}
	return -1;
}

static const char *tmpl_special(const json_t *e)
{
	const json_t *st = json_object_get(e, "SpecialToken");

	return json_is_object(st) &&
	       json_is_string(json_object_get(st, "id")) ?
	       json_string_value(json_object_get(st, "id")) : NULL;
}

static int streq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* SpecialVocab(dir, load_merges, n_vocab).add_to_gguf(w). tj, tc:
 * tokenizer.json and tokenizer_config.json (NULL if absent). */
static int special_vocab(struct hf_gguf_writer *w, const json_t *tj,
			 const json_t *tc, const json_t *config,
			 const char *dir, int load_merges, int64_t n_vocab,
			 struct hf_err *err)
{
	struct special s[S_COUNT];
	const json_t *added = tj ? json_object_get(tj, "added_tokens") : NULL;
	const char *bos = NULL, *eos = NULL, *cls = NULL, *sep = NULL;
	const char *names[S_COUNT] = { 0 };
	int use_eot = 0;
	json_t *ct_alt = NULL;
	int rc = 0;

	special_init(s);
	if (!json_is_array(added))
		added = NULL;
	if (tj && load_merges) {
		const json_t *m = json_object_get(json_object_get(tj, "model"),
						  "merges");
		size_t nm = json_is_array(m) ? json_array_size(m) : 0;

		if (nm) {
			char **ms = calloc(nm, sizeof(*ms));
			size_t i;
			json_t *e;

			if (!ms)
				return hf_err_set(err, HF_ENOMEM, "out of memory");
			json_array_foreach(m, i, e) {
				if (json_is_string(e)) {
					ms[i] = strdup(json_string_value(e));
				} else if (json_is_array(e) &&
					   json_array_size(e) == 2 &&
					   json_is_string(json_array_get(e, 0)) &&
					   json_is_string(json_array_get(e, 1))) {
					/* pairs: spaces inside a part become
					 * U+0120, as the converter writes them */
					const char *a = json_string_value(
						json_array_get(e, 0));
					const char *b = json_string_value(
						json_array_get(e, 1));
					size_t la = strlen(a), lb = strlen(b);
					char *o = malloc(2 * (la + lb) + 2), *q;

					if ((q = o)) {
						for (const char *c = a; *c; c++)
							if (*c == ' ') {
								*q++ = (char)0xc4;
								*q++ = (char)0xa0;
							} else
								*q++ = *c;
						*q++ = ' ';
						for (const char *c = b; *c; c++)
							if (*c == ' ') {
								*q++ = (char)0xc4;
								*q++ = (char)0xa0;
							} else
								*q++ = *c;
						*q = 0;
					}
					ms[i] = o;
				} else {
					for (size_t k = 0; k < nm; k++)
						free(ms[k]);
					free(ms);
					return hf_err_set(err, HF_EFORMAT,
						"%s/tokenizer.json: model.merges "
						"entry %zu is neither \"a b\" nor "
						"[a, b]", dir, i);
				}
				if (!ms[i])
					break;
			}
			for (size_t k = 0; k < nm && !rc; k++)
				if (!ms[k])
					rc = hf_err_set(err, HF_ENOMEM,
							"out of memory");
			if (!rc)
				rc = hf_gguf_set_arr_str(w, "tokenizer.ggml.merges",
							 (const char *const *)ms,
							 NULL, nm, err);
			for (size_t k = 0; k < nm; k++)
				free(ms[k]);
			free(ms);
			if (rc)
				return rc;
		} else {
			hf_log_warn("%s: a BPE tokenizer without merges", dir);
		}
	}
	if (tc) {
		bos = tok_content(json_object_get(tc, "bos_token"));
		cls = tok_content(json_object_get(tc, "cls_token"));
		eos = tok_content(json_object_get(tc, "eos_token"));
		sep = tok_content(json_object_get(tc, "sep_token"));
		if ((!bos || !*bos) && cls && *cls)
			bos = cls;
		if ((!eos || !*eos) && sep && *sep)
			eos = sep;
	}
	if (tj) {
		const json_t *pp = json_object_get(tj, "post_processor");
		const json_t *list = json_object_get(pp, "processors");
		size_t np = json_is_array(list) ? json_array_size(list) : 1;

		for (size_t i = 0; pp && i < np; i++) {
			const json_t *p = json_is_array(list) ?
					  json_array_get(list, i) : pp;
			const char *type = json_string_value(
				json_object_get(p, "type"));

			if (streq(type, "RobertaProcessing")) {
				s[S_BOS].add = s[S_EOS].add = s[S_SEP].add = 1;
				if (!cls && tc)
					cls = json_string_value(json_array_get(
						json_object_get(p, "cls"), 0));
				if (!sep && tc)
					sep = json_string_value(json_array_get(
						json_object_get(p, "sep"), 0));
			} else if (streq(type, "TemplateProcessing")) {
				const json_t *single = json_object_get(p,
								       "single");
				size_t ns = json_is_array(single) ?
					    json_array_size(single) : 0;
				const char *first, *last;

				if (ns <= 1)
					continue;
				first = tmpl_special(json_array_get(single, 0));
				if (first) {
					if (!tc) {
						bos = first;
					} else if (!streq(first, bos) &&
						   !streq(first, cls)) {
						if (!bos)
							bos = first;
						if (!cls)
							cls = first;
					}
					s[S_BOS].add = streq(first, bos) ||
						       streq(first, cls);
				}
				last = tmpl_special(json_array_get(single,
								   ns - 1));
				if (last) {
					if (!tc) {
						eos = last;
					} else if (!streq(last, eos)) {
						if (eos)
							use_eot = 1;
						names[S_EOT] = eos;
						eos = last;
					}
					s[S_EOS].add = streq(last, eos);
				}
			}
		}
	}
	if (tc) {
		const json_t *ct = json_object_get(tc, "chat_template");
		char *jp = hf_path_join(dir, "chat_template.jinja");

		if (!jp)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if (!ct && hf_file_exists(jp)) {
			char *txt;
			size_t len;

			if ((rc = hf_file_read(&txt, &len, jp, err))) {
				free(jp);
				return rc;
			}
			ct_alt = json_stringn(txt, len);
			free(txt);
			ct = ct_alt;
		}
		free(jp);
		if (json_is_string(ct)) {
			if ((rc = hf_gguf_set_str(w, "tokenizer.chat_template",
						  json_string_value(ct),
						  json_string_length(ct), err)))
				goto out;
		} else if (json_is_array(ct)) {
			size_t i;
			json_t *e;

			json_array_foreach(ct, i, e) {
				const char *nm = json_string_value(
					json_object_get(e, "name"));
				const json_t *t = json_object_get(e, "template");
				char key[256];

				if (!nm || !json_is_string(t))
					continue;
				if (!strcmp(nm, "default"))
					snprintf(key, sizeof(key),
						 "tokenizer.chat_template");
				else
					snprintf(key, sizeof(key),
						 "tokenizer.chat_template.%s", nm);
				if ((rc = hf_gguf_set_str(w, key,
							  json_string_value(t),
							  json_string_length(t),
							  err)))
					goto out;
			}
		}
		names[S_BOS] = bos;
		names[S_EOS] = eos;
		names[S_CLS] = cls;
		names[S_SEP] = sep;
		for (int i = 0; i < S_COUNT; i++) {
			char k[64];
			const json_t *a;

			if (i == S_EOT && !use_eot)
				continue;
			if (i == S_EOM)
				continue;
			snprintf(k, sizeof(k), "add_%s_token", s[i].typ);
			a = json_object_get(tc, k);
			if (json_is_boolean(a))
				s[i].add = json_is_true(a);
			if (i != S_BOS && i != S_EOS && i != S_CLS &&
			    i != S_SEP && i != S_EOT) {
				snprintf(k, sizeof(k), "%s_token", s[i].typ);
				names[i] = tok_content(json_object_get(tc, k));
			}
			if (names[i] && added)
				special_set(&s[i], added_id(added, names[i]),
					    n_vocab);
		}
	}
	for (int i = 0; config && i < S_COUNT; i++) {
		char k[64];
		const json_t *v;

		if (i == S_EOT || i == S_EOM)
			continue;
		snprintf(k, sizeof(k), "%s_token_id", s[i].typ);
		v = json_object_get(config, k);
		if (!v && json_is_object(json_object_get(config, "text_config")))
			v = json_object_get(json_object_get(config,
							    "text_config"), k);
		if (json_is_integer(v))
			special_set(&s[i], json_integer_value(v), n_vocab);
	}
	for (int i = 0; i < S_COUNT && !rc; i++)
		if (s[i].id >= 0 && s[i].key)
			rc = hf_gguf_set_u32(w, s[i].key, (uint32_t)s[i].id,
					     err);
	for (int i = 0; i < S_COUNT && !rc; i++)
		if (s[i].add >= 0 && s[i].add_key)
			rc = hf_gguf_set_bool(w, s[i].add_key, s[i].add, err);
out:
	json_decref(ct_alt);
	return rc;
}

/* ---- vocabularies ---- */

/* _create_vocab_sentencepiece + _set_vocab_sentencepiece. */
static int vocab_spm(struct hf_gguf_writer *w, const char *dir,
		     const char *spm_path, const json_t *tj, const json_t *tc,
		     const json_t *config, int64_t vocab_size,
		     struct hf_err *err)
{
	struct hf_map map = { 0 };
	struct spm_piece *pc = NULL;
	struct vocab v = { 0 };
	json_t *at = NULL;
	size_t np = 0, n;
	int rc;

	if ((rc = hf_map_open(&map, spm_path, err)))
		return rc;
	if ((rc = spm_parse(&pc, &np, spm_path, map.data, map.size, err)))
		goto out;
	n = vocab_size > 0 ? (size_t)vocab_size : np;
	if (vocab_init(&v, n, 1, -10000.0f)) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if (np > n)
		hf_log_warn("%s: pieces from id %zu on are past the model's "
			    "vocabulary (%zu); left out", spm_path, n, n);
	for (size_t i = 0; i < np && i < n; i++) {
		int t = pc[i].type;

		if (vocab_set(&v, i, pc[i].s, pc[i].len)) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		v.score[i] = pc[i].score;
		v.type[i] = t == 2 ? T_UNKNOWN : t == 3 ? T_CONTROL :
			    t == 5 ? T_UNUSED : t == 6 ? T_BYTE : T_NORMAL;
	}
	if ((rc = load_json_opt(&at, dir, "added_tokens.json", err)))
		goto out;
	if (json_is_object(at)) {
		const char *k;
		json_t *id;

		json_object_foreach(at, k, id) {
			int64_t i = json_integer_value(id);

			if (!json_is_integer(id) || i < 0 || (size_t)i >= n)
				continue;
			if (vocab_set(&v, (size_t)i, k, strlen(k))) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				goto out;
			}
			v.score[i] = -1000.0f;
			v.type[i] = T_USER;
		}
	}
	if (tc && json_is_object(json_object_get(tc, "added_tokens_decoder"))) {
		const char *k;
		json_t *d;

		json_object_foreach(json_object_get(tc, "added_tokens_decoder"),
				    k, d) {
			char *end;
			long i = strtol(k, &end, 10);
			const char *c = json_string_value(
				json_object_get(d, "content"));

			if (*end || i < 0 || (size_t)i >= n || !c)
				continue;
			if (json_is_true(json_object_get(d, "special")) ||
			    looks_special(c, strlen(c))) {
				v.type[i] = T_CONTROL;
				rc = vocab_set(&v, (size_t)i, c, strlen(c));
			} else {
				v.type[i] = T_USER;
				rc = set_unspaced(&v, (size_t)i, c, strlen(c));
			}
			if (rc) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				goto out;
			}
			v.score[i] = -1000.0f;
		}
	}
	if ((rc = hf_gguf_set_str(w, "tokenizer.ggml.model", "llama", 5, err)) ||
	    (rc = hf_gguf_set_str(w, "tokenizer.ggml.pre", "default", 7, err)) ||
	    (rc = vocab_write(w, &v, err)))
		goto out;
	rc = special_vocab(w, tj, tc, config, dir, 0, (int64_t)n, err);
out:
	json_decref(at);
	vocab_free(&v);
	free(pc);
	hf_map_close(&map);
	return rc;
}

/* A "<0xXX>" byte piece (LlamaHfVocab.get_token_type's regex). */
static int is_byte_piece(const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdefABCDEF";

	return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' &&
	       strchr(hex, s[3]) && s[3] && strchr(hex, s[4]) && s[4];
}

/* The content of a special-token entry of tokenizer_config.json (or
 * special_tokens_map.json): a string or an AddedToken object. */
static void add_special_name(const char **names, size_t *n, size_t cap,
			     const json_t *e)
{
	const char *c = tok_content(e);

	if (c && *n < cap)
		names[(*n)++] = c;
}

/* LlamaHfVocab + _set_vocab_llama_hf: a SentencePiece-style BPE
 * tokenizer.json (byte_fallback, a Sequence decoder) without
 * tokenizer.model. The base vocabulary in id order, every score -1000,
 * "<0xXX>" pieces BYTE, the ids of transformers' all_special_tokens
 * CONTROL, the rest NORMAL; then the added tokens past the base
 * vocabulary, CONTROL if special tokens, else USER_DEFINED. No padding
 * to config.json's vocab_size (llama.cpp sizes the model from
 * llama.vocab_size). */
static int vocab_llama_hf(struct hf_gguf_writer *w, const char *dir,
			  const json_t *tj, const json_t *tc,
			  const json_t *config, struct hf_err *err)
{
	const json_t *vj = json_object_get(json_object_get(tj, "model"),
					   "vocab");
	const json_t *added = json_object_get(tj, "added_tokens");
	json_t *stm = NULL;
	const char *names[256];
	int64_t *special_ids = NULL;
	size_t nnames = 0, nbase, nadd = 0, n;
	struct vocab v = { 0 };
	const char *k;
	json_t *id, *a;
	size_t i;
	int rc;

	if (!json_is_object(vj))
		return hf_err_set(err, HF_EFORMAT, "%s/tokenizer.json: "
				  "model.vocab is not a token -> id map", dir);
	nbase = json_object_size(vj);
	/* all_special_tokens: tokenizer_config.json's, then
	 * special_tokens_map.json's for what it leaves unset; without
	 * either LlamaTokenizerFast's defaults */
	if ((rc = load_json_opt(&stm, dir, "special_tokens_map.json", err)))
		return rc;
	{
		static const char *const attrs[] = {
			"bos_token", "eos_token", "unk_token", "sep_token",
			"pad_token", "cls_token", "mask_token",
		};
		const json_t *src[2] = { tc, json_is_object(stm) ? stm : NULL };

		for (size_t q = 0; q < sizeof(attrs) / sizeof(attrs[0]); q++) {
			const json_t *e = NULL;

			for (int s = 0; s < 2 && !e; s++)
				if (src[s] && json_object_get(src[s], attrs[q]))
					e = json_object_get(src[s], attrs[q]);
			if (!tc && !src[1] && q < 3) {
				static const char *const dflt[] = {
					"<s>", "</s>", "<unk>" };

				if (nnames < 256)
					names[nnames++] = dflt[q];
				continue;
			}
			add_special_name(names, &nnames, 256, e);
		}
		for (int s = 0; s < 2; s++) {
			const json_t *l = src[s] ? json_object_get(src[s],
				"additional_special_tokens") : NULL;

			if (!json_is_array(l) || !json_array_size(l))
				continue;
			json_array_foreach(l, i, a)
				add_special_name(names, &nnames, 256, a);
			break;
		}
	}
	/* the base vocabulary's ids must be 0 .. nbase - 1 */
	n = nbase;
	json_array_foreach(added, i, a) {
		int64_t x = json_integer_value(json_object_get(a, "id"));

		if (json_is_integer(json_object_get(a, "id")) &&
		    x >= (int64_t)nbase)
			nadd++;
	}
	n += nadd;
	if (vocab_init(&v, n, 1, -1000.0f) ||
	    !(special_ids = calloc(nnames + 1, sizeof(*special_ids)))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t q = 0; q < n; q++)
		v.type[q] = 0;
	json_object_foreach((json_t *)vj, k, id) {
		int64_t x = json_integer_value(id);

		if (!json_is_integer(id) || x < 0 || x >= (int64_t)nbase) {
			rc = hf_err_set(err, HF_EFORMAT, "%s/tokenizer.json: "
					"token '%s' has id %lld, outside the "
					"%zu ids of the vocabulary", dir, k,
					(long long)x, nbase);
			goto out;
		}
		if (vocab_set(&v, (size_t)x, k, strlen(k)))
			goto oom;
		v.type[x] = T_NORMAL;
	}
	json_array_foreach(added, i, a) {
		int64_t x = json_integer_value(json_object_get(a, "id"));
		const char *c = json_string_value(json_object_get(a,
								  "content"));

		if (!c || x < (int64_t)nbase)
			continue;
		if (x >= (int64_t)n || v.type[x]) {
			rc = hf_err_set(err, HF_EFORMAT, "%s/tokenizer.json: "
					"the added tokens past the vocabulary "
					"are not ids %zu to %zu", dir, nbase,
					n - 1);
			goto out;
		}
		if (vocab_set(&v, (size_t)x, c, strlen(c)))
			goto oom;
		v.type[x] = T_USER;
	}
	for (size_t q = 0; q < n; q++)
		if (!v.type[q]) {
			rc = hf_err_set(err, HF_EFORMAT, "%s/tokenizer.json: "
					"no token has id %zu", dir, q);
			goto out;
		}
	/* special ids, as the fast tokenizer's vocabulary (added tokens
	 * included) spells them */
	for (size_t q = 0; q < nnames; q++) {
		special_ids[q] = -1;
		for (size_t t = 0; t < n && special_ids[q] < 0; t++)
			if (!strcmp(v.tok[t], names[q]))
				special_ids[q] = (int64_t)t;
	}
	for (size_t t = 0; t < n; t++) {
		int special = 0;

		for (size_t q = 0; q < nnames; q++)
			if (special_ids[q] == (int64_t)t)
				special = 1;
		if (t < nbase)
			v.type[t] = is_byte_piece(v.tok[t], v.len[t]) ?
				    T_BYTE : special ? T_CONTROL : T_NORMAL;
		else
			v.type[t] = special ? T_CONTROL : T_USER;
	}
	if ((rc = hf_gguf_set_str(w, "tokenizer.ggml.model", "llama", 5, err)) ||
	    (rc = hf_gguf_set_str(w, "tokenizer.ggml.pre", "default", 7, err)) ||
	    (rc = vocab_write(w, &v, err)))
		goto out;
	rc = special_vocab(w, tj, tc, config, dir, 0, (int64_t)n, err);
	goto out;
oom:
	rc = hf_err_set(err, HF_ENOMEM, "out of memory");
out:
	free(special_ids);
	json_decref(stm);
	vocab_free(&v);
	return rc;
}

/* The tokenizer.json model's type; old files leave it out (WordPiece
 * then, inferred from its fields, as tokenizers does). */
static const char *model_type(const json_t *tj)
{
	const json_t *m = json_object_get(tj, "model");
	const char *t = json_string_value(json_object_get(m, "type"));

	if (t)
		return t;
	if (json_object_get(m, "continuing_subword_prefix") ||
	    json_object_get(m, "max_input_chars_per_word"))
		return "WordPiece";
	if (json_object_get(m, "merges"))
		return "BPE";
	if (json_is_array(json_object_get(m, "vocab")))
		return "Unigram";
	return "WordLevel";
}

/* transformers' Llama and Gemma fast tokenizers replace tokenizer.json's
 * post-processor by one built from tokenizer_config.json's add_bos_token
 * (default true) and add_eos_token (default false)
 * (LlamaTokenizerFast.update_post_processor): whether tc asks for that. */
static int hf_post_processor(const json_t *tc, int *bos, int *eos)
{
	static const char *const classes[] = {
		"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer",
		"CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast",
	};
	const char *cls = json_string_value(json_object_get(tc,
							    "tokenizer_class"));
	const json_t *b = json_object_get(tc, "add_bos_token");
	const json_t *e = json_object_get(tc, "add_eos_token");

	for (size_t i = 0; cls && i < sizeof(classes) / sizeof(classes[0]); i++)
		if (!strcmp(cls, classes[i])) {
			*bos = json_is_boolean(b) ? json_is_true(b) : 1;
			*eos = json_is_boolean(e) && json_is_true(e);
			return 1;
		}
	return 0;
}

/* get_vocab_base_pre: sha256 of str(tokenizer.encode(chktxt)), the ids
 * of AutoTokenizer with its special tokens. */
static int pre_name(const char **out, const char *dir, const json_t *tc,
		    struct hf_err *err)
{
	int own = 0, add_bos = 0, add_eos = 0;
	int64_t bos_id = -1, eos_id = -1;
	struct hf_tok *t = NULL;
	struct hf_tok_ctx *c = NULL;
	struct hf_tok_encoding e = { 0 };
	struct hf_sha256 h;
	char hex[65], num[32];
	int rc;

	*out = NULL;
	if ((rc = hf_tok_load(&t, dir, err)))
		return rc;
	if (tc && hf_post_processor(tc, &add_bos, &add_eos)) {
		const char *b = tok_content(json_object_get(tc, "bos_token"));
		const char *s = tok_content(json_object_get(tc, "eos_token"));

		own = 1;
		if (add_bos && b)
			bos_id = hf_tok_token_to_id(t, b, strlen(b));
		if (add_eos && s)
			eos_id = hf_tok_token_to_id(t, s, strlen(s));
	}
	if ((rc = hf_tok_ctx_create(&c, t, err)) ||
	    (rc = hf_tok_encode(c, chktxt, sizeof(chktxt) - 1, NULL, 0, !own,
				NULL, &e, err)))
		goto out;
	hf_sha256_init(&h);
	hf_sha256_update(&h, "[", 1);
	if (bos_id >= 0) {
		int k = snprintf(num, sizeof(num), "%lld", (long long)bos_id);

		hf_sha256_update(&h, num, (size_t)k);
	}
	for (size_t i = 0; i < e.n; i++) {
		int k = snprintf(num, sizeof(num), "%s%u",
				 i || bos_id >= 0 ? ", " : "", e.ids[i]);

		hf_sha256_update(&h, num, (size_t)k);
	}
	if (eos_id >= 0) {
		int k = snprintf(num, sizeof(num), "%s%lld",
				 e.n || bos_id >= 0 ? ", " : "",
				 (long long)eos_id);

		hf_sha256_update(&h, num, (size_t)k);
	}
	hf_sha256_update(&h, "]", 1);
	hf_sha256_hex(&h, hex);
	if (!(*out = hf_gguf_pre_name(hex))) {
		hf_log_warn("%s: the BPE pre-tokenizer was not recognized "
			    "(chkhsh %s); llama.cpp will split text with its "
			    "default regex, which may not match", dir, hex);
		*out = "default";
	}
out:
	hf_tok_encoding_free(&e);
	hf_tok_ctx_free(c);
	hf_tok_free(t);
	return rc;
}

/* get_vocab_base: tokens of the tokenizer.json vocab and its added
 * tokens; BERT's in llama.cpp's phantom-space form. */
static int vocab_base(struct hf_gguf_writer *w, const char *dir,
		      const json_t *tj, const json_t *tc, const json_t *config,
		      int64_t vocab_size, int bert, struct hf_err *err)
{
	const json_t *model = json_object_get(tj, "model");
	const json_t *vj = json_object_get(model, "vocab");
	const json_t *added = json_object_get(tj, "added_tokens");
	struct vocab v = { 0 };
	const char *pre = NULL;
	int64_t maxid = -1;
	size_t n;
	int rc;

	if (!json_is_object(vj))
		return hf_err_set(err, HF_EUNSUPPORTED, "%s/tokenizer.json: "
				  "model.vocab is not a token -> id map (a %s "
				  "model); the GGUF converter does not embed "
				  "it", dir, json_string_value(json_object_get(
				  model, "type")) ? json_string_value(
				  json_object_get(model, "type")) : "unknown");
	{
		const char *k;
		json_t *id;
		size_t i;
		json_t *a;

		json_object_foreach((json_t *)vj, k, id)
			if (json_integer_value(id) > maxid)
				maxid = json_integer_value(id);
		json_array_foreach(added, i, a)
			if (json_integer_value(json_object_get(a, "id")) > maxid)
				maxid = json_integer_value(json_object_get(a,
									   "id"));
	}
	n = vocab_size > 0 ? (size_t)vocab_size : (size_t)(maxid + 1);
	if (maxid >= (int64_t)n)
		return hf_err_set(err, HF_EFORMAT, "%s/tokenizer.json: token "
				  "id %lld is past the model's vocab_size %zu",
				  dir, (long long)maxid, n);
	if ((rc = pre_name(&pre, dir, tc, err)))
		return rc;
	if (vocab_init(&v, n, 0, 0)) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	{
		const char *k;
		json_t *id;
		size_t i;
		json_t *a;

		json_object_foreach((json_t *)vj, k, id) {
			int64_t x = json_integer_value(id);

			if (!json_is_integer(id) || x < 0)
				continue;
			if (vocab_set(&v, (size_t)x, k, strlen(k)))
				goto oom;
			v.type[x] = T_NORMAL;
		}
		json_array_foreach(added, i, a) {
			int64_t x = json_integer_value(json_object_get(a, "id"));
			const char *c = json_string_value(json_object_get(a,
									  "content"));

			if (x < 0 || !c)
				continue;
			if (json_is_true(json_object_get(a, "special")) ||
			    looks_special(c, strlen(c))) {
				v.type[x] = T_CONTROL;
				rc = vocab_set(&v, (size_t)x, c, strlen(c));
			} else {
				v.type[x] = T_USER;
				rc = set_unspaced(&v, (size_t)x, c, strlen(c));
			}
			if (rc)
				goto oom;
		}
	}
	if (bert) {
		/* BertModel.set_vocab: the token type count, then the
		 * phantom space: "##x" -> "x", any other non-control
		 * token t -> "\u2581" t */
		const json_t *tv = config ? json_object_get(config,
							    "type_vocab_size") :
				   NULL;

		if ((rc = hf_gguf_set_u32(w, "tokenizer.ggml.token_type_count",
					  json_is_integer(tv) ?
					  (uint32_t)json_integer_value(tv) : 1,
					  err)))
			goto out;
		for (size_t i = 0; i < n; i++) {
			char *s;

			if (v.type[i] == T_CONTROL)
				continue;
			if (v.len[i] >= 2 && !memcmp(v.tok[i], "##", 2)) {
				memmove(v.tok[i], v.tok[i] + 2, v.len[i] - 1);
				v.len[i] -= 2;
				continue;
			}
			if (!(s = malloc(v.len[i] + 4)))
				goto oom;
			memcpy(s, "\342\226\201", 3);
			memcpy(s + 3, v.tok[i], v.len[i] + 1);
			free(v.tok[i]);
			v.tok[i] = s;
			v.len[i] += 3;
		}
	}
	if ((rc = hf_gguf_set_str(w, "tokenizer.ggml.model", bert ? "bert" :
				  "gpt2", bert ? 4 : 4, err)) ||
	    (rc = hf_gguf_set_str(w, "tokenizer.ggml.pre", pre, strlen(pre),
				  err)) ||
	    (rc = vocab_write(w, &v, err)))
		goto out;
	rc = special_vocab(w, tj, tc, config, dir, !bert, bert ? (int64_t)n : 0,
			   err);
	goto out;
oom:
	rc = hf_err_set(err, HF_ENOMEM, "out of memory");
out:
	vocab_free(&v);
	return rc;
}

int hf_gguf_add_tokenizer(struct hf_gguf_writer *w, const char *dir,
			  const struct hf_family *f, const json_t *config,
			  int64_t vocab_size, struct hf_err *err)
{
	char *spm = hf_path_join(dir, "tokenizer.model");
	json_t *tj = NULL, *tc = NULL;
	int rc;
	enum hf_fam_vocab kind = f ? f->vocab : HF_FAM_VOCAB_SPM_GPT2;

	if (!spm)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = load_json_opt(&tj, dir, "tokenizer.json", err)) ||
	    (rc = load_json_opt(&tc, dir, "tokenizer_config.json", err)))
		goto out;
	if (tc && !json_is_object(tc)) {
		rc = hf_err_set(err, HF_EFORMAT, "%s/tokenizer_config.json: "
				"not a JSON object", dir);
		goto out;
	}
	if (tj && !json_is_object(tj)) {
		rc = hf_err_set(err, HF_EFORMAT, "%s/tokenizer.json: not a "
				"JSON object", dir);
		goto out;
	}
	if (!tj && !hf_file_exists(spm)) {
		/* _set_vocab_none: llama.cpp takes ids as they are */
		rc = hf_gguf_set_str(w, "tokenizer.ggml.model", "none", 4, err);
		goto out;
	}
	if (tj && !hf_file_exists(spm) && !strcmp(model_type(tj), "WordLevel")) {
		/* llama.cpp's vocabularies (llama, gpt2, bert, t5, rwkv,
		 * plamo2) have no whole-word lookup: its WordPiece splits an
		 * unknown word into pieces where WordLevel gives [UNK] */
		rc = hf_err_set(err, HF_EUNSUPPORTED, "%s/tokenizer.json: a "
				"WordLevel tokenizer, which no GGUF tokenizer "
				"model (llama, gpt2, bert, t5, rwkv) reproduces; "
				"llama.cpp could not tokenize for it", dir);
		goto out;
	}
	if (f && !strcmp(f->arch, "llama") && tc &&
	    json_is_boolean(json_object_get(tc, "add_prefix_space")) &&
	    (rc = hf_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix",
				   json_is_true(json_object_get(tc,
						"add_prefix_space")), err)))
		goto out;
	switch (kind) {
	case HF_FAM_VOCAB_SPM:
	case HF_FAM_VOCAB_SPM_GPT2:
		if (hf_file_exists(spm)) {
			rc = vocab_spm(w, dir, spm, tj, tc, config, vocab_size,
				       err);
			break;
		}
		if (kind == HF_FAM_VOCAB_SPM) {
			rc = hf_err_set(err, HF_EUNSUPPORTED, "%s: a %s "
					"tokenizer is read from tokenizer.model, "
					"which is not there", dir, f->model_type);
			break;
		}
		if (tj && !strcmp(model_type(tj), "BPE") &&
		    json_is_true(json_object_get(json_object_get(tj, "model"),
						 "byte_fallback"))) {
			const char *dt = json_string_value(json_object_get(
				json_object_get(tj, "decoder"), "type"));

			if (!streq(dt, "Sequence")) {
				rc = hf_err_set(err, HF_EUNSUPPORTED, "%s/"
						"tokenizer.json: a byte-fallback "
						"BPE with a %s decoder, neither "
						"SentencePiece-style (a Sequence "
						"decoder) nor byte-level; the GGUF "
						"converter has no vocabulary for "
						"it", dir, dt ? dt : "missing");
				break;
			}
			rc = vocab_llama_hf(w, dir, tj, tc, config, err);
			break;
		}
		if (tj && !strcmp(model_type(tj), "Unigram")) {
			rc = hf_err_set(err, HF_EUNSUPPORTED, "%s: a Unigram "
					"tokenizer.json without tokenizer.model: "
					"the GGUF converter embeds a %s Unigram "
					"vocabulary from tokenizer.model only",
					dir, f ? f->model_type : "this");
			break;
		}
		/* Llama 3 style */
		/* fall through */
	case HF_FAM_VOCAB_GPT2:
		if (!tj) {
			rc = hf_err_set(err, HF_EUNSUPPORTED, "%s: no "
					"tokenizer.json for a BPE vocabulary",
					dir);
			break;
		}
		rc = vocab_base(w, dir, tj, tc, config, vocab_size, 0, err);
		break;
	case HF_FAM_VOCAB_BPE_BERT:
		if (tj) {
			const json_t *tv = config ? json_object_get(
				config, "type_vocab_size") : NULL;

			if ((rc = vocab_base(w, dir, tj, tc, config,
					     vocab_size, 0, err)))
				break;
			rc = hf_gguf_set_u32(w, "tokenizer.ggml.token_type_count",
					     json_is_integer(tv) ?
					     (uint32_t)json_integer_value(tv) :
					     1, err);
			break;
		}
		/* fall through */
	case HF_FAM_VOCAB_BERT:
		if (!tj) {
			rc = hf_err_set(err, HF_EUNSUPPORTED, "%s: no "
					"tokenizer.json for a WordPiece "
					"vocabulary", dir);
			break;
		}
		rc = vocab_base(w, dir, tj, tc, config, vocab_size, 1, err);
		break;
	}
out:
	json_decref(tj);
	json_decref(tc);
	free(spm);
	return rc;
}
