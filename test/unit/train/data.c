/* Tests for lib/train/data.c: records to labelled rows on real
 * tokenizers (stories260k, and the qwen3 and llama3.1 fixtures for chat
 * templates), packing, padding, shuffling, sharding, positions, and each
 * bad input naming the file and line. Expected ids come from the
 * tokenizer itself (encoding the pieces), never from our earlier output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tok/chat/chat.h"
#include "tok/tok.h"
#include "train/data.h"

static char tmpdir[] = "/tmp/hf-data-XXXXXX";
static struct hf_tok *stories, *qwen, *llama;
static struct hf_chat *qwen_chat, *llama_chat;

static char *dir_of(const char *env, const char *def, const char *sub)
{
	const char *root = getenv(env) ? getenv(env) : def;
	char *p = malloc(strlen(root) + strlen(sub) + 2);

	sprintf(p, "%s/%s", root, sub);
	return p;
}

static int setup(void **state)
{
	char *s = dir_of("HF_MODELS", "models", "stories260k");
	char *q = dir_of("HF_FIXTURES", "test/fixtures", "tokenizers/qwen3");
	char *l = dir_of("HF_FIXTURES", "test/fixtures", "tokenizers/llama3_1");
	struct hf_err err = { 0 };

	if (!mkdtemp(tmpdir) || hf_tok_load(&stories, s, &err) ||
	    hf_tok_load(&qwen, q, &err) || hf_chat_load(&qwen_chat, q, &err) ||
	    hf_tok_load(&llama, l, &err) || hf_chat_load(&llama_chat, l, &err)) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	free(s);
	free(q);
	free(l);
	return 0;
}

static int teardown(void **state)
{
	char cmd[64];

	hf_tok_free(stories);
	hf_tok_free(qwen);
	hf_tok_free(llama);
	hf_chat_free(qwen_chat);
	hf_chat_free(llama_chat);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) ? -1 : 0;
}

/* Write text to <tmpdir>/name; returns the path (static buffer). */
static const char *file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* ids of text through tok (special: the post-processor's template). */
static size_t enc(struct hf_tok *t, const char *text, int special, int32_t *ids)
{
	struct hf_tok_ctx *c = NULL;
	struct hf_tok_encoding e = { 0 };
	size_t n;

	assert_int_equal(hf_tok_ctx_create(&c, t, NULL), 0);
	assert_int_equal(hf_tok_encode(c, text, strlen(text), NULL, 0, special, NULL, &e, NULL), 0);
	n = e.n;
	for (size_t i = 0; i < n; i++)
		ids[i] = (int32_t)e.ids[i];
	hf_tok_encoding_free(&e);
	hf_tok_ctx_free(c);
	return n;
}

/* The labelled tokens of row i decoded (malloc'd). */
static char *labelled_text(struct hf_data *d, struct hf_tok *t, size_t i)
{
	const int32_t *lab;
	size_t n, k = 0;
	uint32_t ids[4096];
	char *out = NULL;

	hf_data_row(d, i, &n, &lab);
	for (size_t j = 0; j < n; j++)
		if (lab[j] != HF_IGNORE_INDEX)
			ids[k++] = (uint32_t)lab[j];
	assert_int_equal(hf_tok_decode(t, ids, k, 0, &out, NULL, NULL), 0);
	return out;
}

static void test_text_labels_every_token_and_ends_with_eos(void **state)
{
	struct hf_data_opts o = { .add_eos = 1 };
	struct hf_data *d = NULL;
	struct hf_err err = { 0 };
	int32_t want[256];
	const int32_t *ids, *lab;
	size_t n, nw;
	const char *p = file("text.jsonl", "{\"text\": \"Once upon a time\"}\n\n{\"text\": \"Lily ran.\"}\n");

	assert_int_equal(hf_data_load(&d, p, stories, NULL, &o, &err), 0);
	assert_int_equal(hf_data_rows(d), 2);
	nw = enc(stories, "Lily ran.", 1, want);
	ids = hf_data_row(d, 1, &n, &lab);
	assert_int_equal(n, nw + 1);
	assert_int_equal(ids[0], 1);		/* <s> from the template */
	assert_int_equal(ids[n - 1], 2);	/* </s> */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(lab[i], ids[i]);
		if (i < nw)
			assert_int_equal(ids[i], want[i]);
	}
	hf_data_free(d);
}

static void test_prompt_completion_labels_the_completion_only(void **state)
{
	struct hf_data_opts o = { .add_eos = 1 };
	struct hf_data *d = NULL;
	struct hf_err err = { 0 };
	const char *p = file("pc.jsonl",
			     "{\"prompt\": \"Tom had a red ball.\", \"completion\": \" He played with it.\"}\n");
	char *t;
	const int32_t *lab;
	size_t n, np = enc(stories, "Tom had a red ball.", 1, (int32_t[64]){ 0 });

	assert_int_equal(hf_data_load(&d, p, stories, NULL, &o, &err), 0);
	hf_data_row(d, 0, &n, &lab);
	for (size_t i = 0; i < np; i++)
		assert_int_equal(lab[i], HF_IGNORE_INDEX);
	t = labelled_text(d, stories, 0);
	assert_string_equal(t, "He played with it.</s>");
	free(t);
	hf_data_free(d);
}

static const char conv[] =
	"{\"messages\": [{\"role\": \"user\", \"content\": \"Hi there\"},"
	" {\"role\": \"assistant\", \"content\": \"Hello!\"},"
	" {\"role\": \"user\", \"content\": \"Bye\"},"
	" {\"role\": \"assistant\", \"content\": \"See you\"}]}\n";

/* qwen3 renders the last assistant turn with an empty think block and the
 * earlier one without: each turn is labelled as the whole renders it,
 * with its <|im_end|>\n, and no user text or header. */
static void test_chat_labels_assistant_turns_qwen3(void **state)
{
	struct hf_data_opts o = { 0 };
	struct hf_data *d = NULL;
	struct hf_err err = { 0 };
	char *t;

	assert_int_equal(hf_data_load(&d, file("c.jsonl", conv), qwen, qwen_chat, &o, &err), 0);
	t = labelled_text(d, qwen, 0);
	assert_string_equal(t, "Hello!<|im_end|>\n<think>\n\n</think>\n\nSee you<|im_end|>\n");
	free(t);
	hf_data_free(d);
}

static void test_chat_labels_assistant_turns_llama3(void **state)
{
	struct hf_data_opts o = { 0 };
	struct hf_data *d = NULL;
	struct hf_err err = { 0 };
	char *t;

	assert_int_equal(hf_data_load(&d, file("c.jsonl", conv), llama, llama_chat, &o, &err), 0);
	t = labelled_text(d, llama, 0);
	assert_string_equal(t, "Hello!<|eot_id|>See you<|eot_id|>");
	free(t);
	hf_data_free(d);
}

static void test_ids_and_labels_pass_through(void **state)
{
	struct hf_data_opts o = { 0 };
	struct hf_data *d = NULL;
	struct hf_err err = { 0 };
	const int32_t *ids, *lab;
	size_t n;
	const char *p = file("ids.jsonl", "{\"ids\": [5, 6, 7], \"labels\": [-100, 6, 7]}\n{\"ids\": [9, 8]}\n");

	assert_int_equal(hf_data_load(&d, p, NULL, NULL, &o, &err), 0);
	ids = hf_data_row(d, 0, &n, &lab);
	assert_int_equal(n, 3);
	assert_int_equal(ids[2], 7);
	assert_int_equal(lab[0], HF_IGNORE_INDEX);
	ids = hf_data_row(d, 1, &n, &lab);
	assert_int_equal(lab[1], 8);
	hf_data_free(d);
}

/* 10 records of 3 ids each packed into rows of 4: 30 ids, 8 rows, the last
 * of 2, in file order. */
static void test_pack_fills_rows_of_seq_len(void **state)
{
	struct hf_data_opts o = { .seq_len = 4, .pack = 1 };
	struct hf_data *d = NULL;
	struct hf_err err = { 0 };
	char text[1024] = "";
	size_t n, k = 0;

	for (int i = 0; i < 10; i++)
		sprintf(text + strlen(text), "{\"ids\": [%d, %d, %d]}\n", 3 * i, 3 * i + 1, 3 * i + 2);
	assert_int_equal(hf_data_load(&d, file("p.jsonl", text), NULL, NULL, &o, &err), 0);
	assert_int_equal(hf_data_rows(d), 8);
	assert_int_equal(hf_data_samples(d), 10);
	for (size_t r = 0; r < 8; r++) {
		const int32_t *ids = hf_data_row(d, r, &n, NULL);

		assert_int_equal(n, r < 7 ? 4 : 2);
		for (size_t j = 0; j < n; j++)
			assert_int_equal(ids[j], (int32_t)k++);
	}
	hf_data_free(d);
}

static void test_truncation_cuts_long_samples(void **state)
{
	struct hf_data_opts o = { .seq_len = 2, .truncate = 1 };
	struct hf_data *d = NULL;
	size_t n;

	assert_int_equal(hf_data_load(&d, file("t.jsonl", "{\"ids\": [1, 2, 3]}\n"), NULL, NULL,
				      &o, NULL), 0);
	hf_data_row(d, 0, &n, NULL);
	assert_int_equal(n, 2);
	hf_data_free(d);
}

/* A batch pads to its longest row: pad id (stories: no pad_token, so
 * eos 2), labels -100, mask 0; tokens count shifted labels. */
static void test_batch_pads_and_counts_tokens(void **state)
{
	struct hf_data_opts o = { .shift = 1 };
	struct hf_data *d = NULL;
	struct hf_batch b = { 0 };
	const char *p = file("b.jsonl", "{\"ids\": [5, 6, 7, 8], \"labels\": [5, -100, 7, 8]}\n{\"ids\": [9, 10]}\n");

	assert_int_equal(hf_data_load(&d, p, stories, NULL, &o, NULL), 0);
	assert_int_equal(hf_data_pad_id(d), 2);
	assert_int_equal(hf_data_next(d, 2, &b, NULL), 0);
	assert_int_equal(b.rows, 2);
	assert_int_equal(b.T, 4);
	assert_int_equal(b.ids[4 + 2], 2);
	assert_int_equal(b.labels[4 + 2], HF_IGNORE_INDEX);
	assert_int_equal(b.mask[4 + 1], 1);
	assert_int_equal(b.mask[4 + 2], 0);
	/* row 0: labels 1..3 = -100, 7, 8 -> 2; row 1: label 1 = 10 -> 1 */
	assert_int_equal(b.tokens, 3);
	assert_int_equal(b.global_tokens, 3);
	assert_true(b.last);
	hf_batch_free(&b);
	hf_data_free(d);
}

/* 10 rows of one id each (the id is the row): order of epochs e */
static void epoch_order(struct hf_data *d, size_t batch, int32_t *out, size_t n)
{
	struct hf_batch b = { 0 };
	size_t k = 0;

	while (k < n) {
		assert_int_equal(hf_data_next(d, batch, &b, NULL), 0);
		for (size_t r = 0; r < b.rows; r++)
			out[k++] = b.ids[r * b.T];
	}
	hf_batch_free(&b);
}

static const char *ten(void)
{
	char text[512] = "";

	for (int i = 0; i < 10; i++)
		sprintf(text + strlen(text), "{\"ids\": [%d]}\n", i);
	return file("ten.jsonl", text);
}

static void test_shuffle_is_a_seeded_permutation_per_epoch(void **state)
{
	struct hf_data_opts o = { .shuffle = 1, .seed = 42 };
	struct hf_data *d = NULL, *e = NULL;
	int32_t a[20], b[20], c[20];
	int seen[10] = { 0 }, same = 1, differ = 0;

	assert_int_equal(hf_data_load(&d, ten(), NULL, NULL, &o, NULL), 0);
	assert_int_equal(hf_data_load(&e, ten(), NULL, NULL, &o, NULL), 0);
	epoch_order(d, 3, a, 20);	/* batches of 3: 3, 3, 3, 1 per epoch */
	epoch_order(e, 3, b, 20);
	for (int i = 0; i < 10; i++)
		seen[a[i]]++;
	for (int i = 0; i < 10; i++)
		assert_int_equal(seen[i], 1);
	for (int i = 0; i < 20; i++)
		same &= a[i] == b[i];
	assert_true(same);		/* the same seed, the same order */
	for (int i = 0; i < 10; i++)
		differ |= a[i] != a[10 + i];
	assert_true(differ);		/* epoch 1 is another permutation */
	hf_data_free(e);
	o.seed = 43;
	assert_int_equal(hf_data_load(&e, ten(), NULL, NULL, &o, NULL), 0);
	epoch_order(e, 3, c, 10);
	differ = 0;
	for (int i = 0; i < 10; i++)
		differ |= a[i] != c[i];
	assert_true(differ);
	hf_data_free(e);
	hf_data_free(d);
}

/* The same rows from a position saved mid-epoch and restored in a new
 * data set. */
static void test_seek_resumes_exactly(void **state)
{
	struct hf_data_opts o = { .shuffle = 1, .seed = 7 };
	struct hf_data *d = NULL, *e = NULL;
	struct hf_batch b = { 0 };
	struct hf_data_pos pos;
	int32_t a[16], c[16];

	assert_int_equal(hf_data_load(&d, ten(), NULL, NULL, &o, NULL), 0);
	assert_int_equal(hf_data_next(d, 4, &b, NULL), 0);
	pos = hf_data_tell(d);
	assert_int_equal(pos.index, 4);
	epoch_order(d, 2, a, 16);
	assert_int_equal(hf_data_load(&e, ten(), NULL, NULL, &o, NULL), 0);
	hf_data_seek(e, pos);
	epoch_order(e, 2, c, 16);
	assert_memory_equal(a, c, sizeof(a));
	hf_batch_free(&b);
	hf_data_free(d);
	hf_data_free(e);
}

/* Ranks 0 and 1 of 2 with batch 2 read what one process reads with batch
 * 4: the same rows, in the same order; the last batch of an epoch leaves
 * rank 1 with none. */
static void test_shards_make_the_global_batch(void **state)
{
	struct hf_data_opts o = { .shuffle = 1, .seed = 3, .world = 2 };
	struct hf_data_opts one = { .shuffle = 1, .seed = 3 };
	struct hf_data *r0 = NULL, *r1 = NULL, *d = NULL;
	struct hf_batch b0 = { 0 }, b1 = { 0 }, b = { 0 };

	assert_int_equal(hf_data_load(&r0, ten(), NULL, NULL, &o, NULL), 0);
	o.rank = 1;
	assert_int_equal(hf_data_load(&r1, ten(), NULL, NULL, &o, NULL), 0);
	assert_int_equal(hf_data_load(&d, ten(), NULL, NULL, &one, NULL), 0);
	assert_int_equal(hf_data_steps_per_epoch(r0, 2, 1), 3);
	for (int step = 0; step < 3; step++) {
		assert_int_equal(hf_data_next(r0, 2, &b0, NULL), 0);
		assert_int_equal(hf_data_next(r1, 2, &b1, NULL), 0);
		assert_int_equal(hf_data_next(d, 4, &b, NULL), 0);
		assert_int_equal(b0.global_rows, b.rows);
		assert_int_equal(b0.rows + b1.rows, b.rows);
		for (size_t r = 0; r < b0.rows; r++)
			assert_int_equal(b0.ids[r], b.ids[r]);
		for (size_t r = 0; r < b1.rows; r++)
			assert_int_equal(b1.ids[r], b.ids[b0.rows + r]);
		assert_int_equal(b0.global_tokens, b.global_tokens);
		assert_int_equal(b0.last, step == 2);
	}
	assert_int_equal(b1.rows, 0);	/* 10 = 4 + 4 + 2 */
	hf_batch_free(&b0);
	hf_batch_free(&b1);
	hf_batch_free(&b);
	hf_data_free(r0);
	hf_data_free(r1);
	hf_data_free(d);
}

static void test_classify_reads_labels(void **state)
{
	struct hf_data_opts o = { .classify = 1 };
	struct hf_data *d = NULL;
	struct hf_batch b = { 0 };
	struct hf_err err = { 0 };
	const char *p = file("cls.jsonl", "{\"text\": \"good\", \"label\": 1}\n{\"text\": \"bad\", \"label\": 0}\n");

	assert_int_equal(hf_data_load(&d, p, stories, NULL, &o, &err), 0);
	assert_int_equal(hf_data_next(d, 2, &b, NULL), 0);
	assert_int_equal(b.cls[0], 1);
	assert_int_equal(b.cls[1], 0);
	assert_int_equal(b.tokens, 2);
	hf_batch_free(&b);
	hf_data_free(d);
	p = file("cls.jsonl", "{\"text\": \"good\"}\n");
	assert_int_equal(hf_data_load(&d, p, stories, NULL, &o, &err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "cls.jsonl:1:"));
}

/* Each bad input: one message naming the file and line. */
static void expect_error(const char *name, const char *text, const struct hf_data_opts *o,
			 const struct hf_chat *chat, const char *where, const char *what)
{
	struct hf_data *d = NULL;
	struct hf_err err = { 0 };
	const char *p = file(name, text);

	assert_int_not_equal(hf_data_load(&d, p, stories, chat, o, &err), 0);
	assert_null(d);
	if (!strstr(err.msg, where) || !strstr(err.msg, what))
		fail_msg("%s: want '%s' and '%s' in: %s", name, where, what, err.msg);
	assert_null(strchr(err.msg, '\n'));
}

static void test_bad_input_names_file_and_line(void **state)
{
	struct hf_data_opts o = { 0 }, lim = { .seq_len = 3 };
	struct hf_chat *raising = NULL;

	expect_error("json.jsonl", "{\"text\": \"a\"}\n{\"text\": \n", &o, NULL, "json.jsonl:2:",
		     "bad JSON");
	expect_error("empty.jsonl", "", &o, NULL, "empty.jsonl", "no records");
	expect_error("blank.jsonl", "\n  \n", &o, NULL, "blank.jsonl", "no records");
	expect_error("keys.jsonl", "{\"text\": \"a\"}\n{\"txt\": \"a\"}\n", &o, NULL,
		     "keys.jsonl:2:", "none of the known keys");
	expect_error("long.jsonl", "{\"ids\": [1, 2]}\n{\"ids\": [1, 2, 3, 4]}\n", &lim, NULL,
		     "long.jsonl:2:", "longer than --seq-len 3");
	expect_error("arr.jsonl", "[1, 2]\n", &o, NULL, "arr.jsonl:1:", "JSON object");
	expect_error("lab.jsonl", "{\"ids\": [1, 2], \"labels\": [1]}\n", &o, NULL,
		     "lab.jsonl:1:", "labels");
	expect_error("nochat.jsonl", conv, &o, NULL, "nochat.jsonl:1:", "chat template");
	assert_int_equal(hf_chat_load_string(&raising,
		"{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system message must come first') }}{% endif %}"
		"{% for m in messages %}{{ m['content'] }}{% endfor %}", NULL, NULL), 0);
	expect_error("raise.jsonl", conv, &o, raising, "raise.jsonl:1:",
		     "a system message must come first");
	hf_chat_free(raising);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_labels_every_token_and_ends_with_eos),
		cmocka_unit_test(test_prompt_completion_labels_the_completion_only),
		cmocka_unit_test(test_chat_labels_assistant_turns_qwen3),
		cmocka_unit_test(test_chat_labels_assistant_turns_llama3),
		cmocka_unit_test(test_ids_and_labels_pass_through),
		cmocka_unit_test(test_pack_fills_rows_of_seq_len),
		cmocka_unit_test(test_truncation_cuts_long_samples),
		cmocka_unit_test(test_batch_pads_and_counts_tokens),
		cmocka_unit_test(test_shuffle_is_a_seeded_permutation_per_epoch),
		cmocka_unit_test(test_seek_resumes_exactly),
		cmocka_unit_test(test_shards_make_the_global_batch),
		cmocka_unit_test(test_classify_reads_labels),
		cmocka_unit_test(test_bad_input_names_file_and_line),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
