/* tools/tokenize.c: hf-tokenize, text lines or JSON Lines in, token ids,
 * tokens and offsets out; --decode reverses; --chat renders templates. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/file.h"
#include "core/json.h"
#include "core/pool.h"
#include "core/utf8.h"
#include "tok/chat/chat.h"
#include "tok/tok.h"

static const char usage[] =
	"usage: hf-tokenize -m <model> [--jsonl] [--ids-only | --count] [--no-special]\n"
	"                   [--max-length <n>] [--truncate [--stride <n>]] [--pad]\n"
	"                   [--batch-size <n>] [--threads <n>] [--lossy]\n"
	"       hf-tokenize -m <model> --decode [--jsonl] [--skip-special]\n"
	"       hf-tokenize -m <model> --chat [--add-generation-prompt] [--template <name>]\n"
	"                   [--ids]\n";

static const char *prog = "hf-tokenize";

enum mode { ENCODE, DECODE, CHAT };

struct opts {
	const char *model;
	enum mode mode;
	int jsonl, ids_only, count, no_special, truncate, pad, lossy;
	int skip_special, add_gen, chat_ids;
	const char *template_name;
	long max_length, batch, threads, stride;
	int max_from_model;	/* --truncate took model_max_length */
};

/* ---- output: a growable buffer flushed to stdout ---- */

struct out {
	char *s;
	size_t n, cap;
	int bad;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (!n)		/* nothing, perhaps from NULL: memcpy must not see it */
		return;
	if (o->n + n > o->cap) {
		size_t c = o->cap ? o->cap * 2 : 1 << 16;
		char *p;

		while (c < o->n + n)
			c *= 2;
		p = realloc(o->s, c);
		if (!p) {
			o->bad = 1;
			return;
		}
		o->s = p;
		o->cap = c;
	}
	memcpy(o->s + o->n, s, n);
	o->n += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putu(struct out *o, unsigned long v)
{
	char b[24];
	int n = 24;

	do {
		b[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, b + n, (size_t)(24 - n));
}

/* A JSON string; s is valid UTF-8, passed through unescaped. */
static void putstr(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t last = 0;

	put(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[6];
		size_t el = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(o, s + last, i - last);
		last = i + 1;
		e[0] = '\\';
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		default:
			e[1] = 'u';
			e[2] = '0';
			e[3] = '0';
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			el = 6;
		}
		put(o, e, el);
	}
	put(o, s + last, n - last);
	put(o, "\"", 1);
}

static int flush_out(struct out *o)
{
	if (o->bad)
		return die(prog, "out of memory");
	if (o->n && (fwrite(o->s, 1, o->n, stdout) != o->n || fflush(stdout)))
		return finish_stdout(prog) ? 1 : die(prog, "cannot write to standard output");
	o->n = 0;
	return 0;
}

/* 1 when the next line can be read without waiting: in stdin's buffer
 * or on the descriptor. A batch ends early when input pauses, so a
 * pipe that feeds lines one by one gets its records back at once. */
static int input_ready(void)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };

#ifdef __GLIBC__
	if (stdin->_IO_read_ptr < stdin->_IO_read_end)
		return 1;
#endif
	return poll(&p, 1, 0) > 0;
}

static void put_encoding(struct out *o, const struct hf_tok_encoding *e,
			 const struct opts *op, int pair);

/* {"ids":[...],"tokens":[...],"offsets":[...]} without the closing brace */
static void put_fields(struct out *o, const struct hf_tok_encoding *e)
{
	puts_(o, "{\"ids\":[");
	for (size_t i = 0; i < e->n; i++) {
		if (i)
			put(o, ",", 1);
		putu(o, e->ids[i]);
	}
	puts_(o, "],\"tokens\":[");
	for (size_t i = 0; i < e->n; i++) {
		size_t tl;
		const char *t = hf_tok_encoding_token(e, i, &tl);

		if (i)
			put(o, ",", 1);
		putstr(o, t, tl);
	}
	puts_(o, "],\"offsets\":[");
	for (size_t i = 0; i < e->n; i++) {
		put(o, i ? ",[" : "[", i ? 2 : 1);
		putu(o, e->offsets[i][0]);
		put(o, ",", 1);
		putu(o, e->offsets[i][1]);
		put(o, "]", 1);
	}
	put(o, "]", 1);
}

static void put_encoding(struct out *o, const struct hf_tok_encoding *e,
			 const struct opts *op, int pair)
{
	if (op->count) {
		putu(o, e->n);
		put(o, "\n", 1);
		return;
	}
	if (op->ids_only) {
		put(o, "[", 1);
		for (size_t i = 0; i < e->n; i++) {
			if (i)
				put(o, ",", 1);
			putu(o, e->ids[i]);
		}
		put(o, "]\n", 2);
		return;
	}
	put_fields(o, e);
	if (pair) {
		puts_(o, ",\"type_ids\":[");
		for (size_t i = 0; i < e->n; i++) {
			if (i)
				put(o, ",", 1);
			putu(o, e->type_ids[i]);
		}
		put(o, "]", 1);
	}
	if (op->pad) {
		puts_(o, ",\"attention_mask\":[");
		for (size_t i = 0; i < e->n; i++) {
			if (i)
				put(o, ",", 1);
			put(o, e->attention_mask[i] ? "1" : "0", 1);
		}
		puts_(o, "],\"special_tokens_mask\":[");
		for (size_t i = 0; i < e->n; i++) {
			if (i)
				put(o, ",", 1);
			put(o, e->special_mask[i] ? "1" : "0", 1);
		}
		put(o, "]", 1);
	}
	if (op->stride >= 0) {
		puts_(o, ",\"overflowing\":[");
		for (size_t k = 0; k < e->n_overflowing; k++) {
			if (k)
				put(o, ",", 1);
			put_fields(o, &e->overflowing[k]);
			put(o, "}", 1);
		}
		put(o, "]", 1);
	}
	put(o, "}\n", 2);
}

/* ---- input ---- */

struct line {
	char *s;
	size_t n;
	size_t no;
};

/* Read one line (without "\n") into *buf; returns its length, -1 at EOF. */
static ssize_t read_line(char **buf, size_t *cap)
{
	ssize_t n = getline(buf, cap, stdin);

	if (n <= 0)
		return -1;
	if ((*buf)[n - 1] == '\n')
		(*buf)[--n] = 0;
	return n;
}

/* Validate or repair line text; returns a malloc'd copy or NULL after a
 * message (rc set). */
static char *take_text(const char *s, size_t n, size_t no, const char *what,
		       const struct opts *op, size_t *outn, int *rc)
{
	size_t bad;
	char *c;

	if (!hf_utf8_valid(s, n, &bad)) {
		if (!op->lossy) {
			*rc = die(prog, "stdin line %zu: %sinvalid UTF-8 at byte %zu "
				  "(use --lossy to replace it with U+FFFD)", no, what, bad);
			return NULL;
		}
		c = hf_utf8_lossy(s, n, outn);
		if (!c)
			*rc = die(prog, "out of memory");
		return c;
	}
	c = malloc(n + 1);
	if (!c) {
		*rc = die(prog, "out of memory");
		return NULL;
	}
	memcpy(c, s, n);
	c[n] = 0;
	*outn = n;
	return c;
}

static int run_encode(struct hf_tok *t, const struct opts *op)
{
	struct hf_err err = { 0 };
	struct hf_pool *pool = NULL;
	struct hf_tok_trunc trunc = { 0 };
	struct hf_tok_pad pad = { 0 };
	size_t cap = op->pad ? (size_t)op->batch : 4096;
	struct hf_tok_input *in = calloc(cap, sizeof(*in));
	struct hf_tok_encoding *enc = calloc(cap, sizeof(*enc));
	size_t *lineno = calloc(cap, sizeof(*lineno));
	size_t *toff = calloc(cap, sizeof(*toff));
	uint8_t *owned = calloc(cap, 1);	/* 1: in[i].text/pair were malloc'd */
	struct out tb = { 0 };	/* plain lines of a batch, back to back */
	struct out o = { 0 };
	char *buf = NULL;
	size_t bcap = 0, no = 0, n = 0;
	int rc = 0, bad = 0;	/* bad: a line of input was refused */
	struct hf_tok_ctx *ctxs[64] = { 0 };

	if (!in || !enc || !lineno || !toff || !owned) {
		rc = die(prog, "out of memory");
		goto done;
	}
	if (hf_pool_create(&pool, (int)op->threads, &err)) {
		rc = die_err(prog, &err);
		goto done;
	}
	for (int i = 0; i < hf_pool_size(pool); i++)
		if (hf_tok_ctx_create(&ctxs[i], t, &err)) {
			rc = die_err(prog, &err);
			goto done;
		}
	if (op->truncate) {
		trunc.max_length = (size_t)op->max_length;
		trunc.strategy = HF_TOK_TRUNC_LONGEST_FIRST;
		trunc.stride = op->stride > 0 ? (size_t)op->stride : 0;
	}
	if (op->pad) {
		int64_t pid = -1;
		const char *ptok = hf_tok_config_str(t, "pad_token");
		const struct hf_tok_pad *fp = hf_tok_file_padding(t);

		pad.enabled = 1;
		pad.length = op->max_length > 0 && !op->max_from_model ?
			     (size_t)op->max_length : 0;
		if (ptok)
			pid = hf_tok_token_to_id(t, ptok, strlen(ptok));
		if (pid < 0 && fp) {
			pid = fp->pad_id;
			ptok = fp->pad_token;
		}
		/* no config: the conventional pad tokens, if special */
		for (const char **w = (const char *[]){ "[PAD]", "<pad>", NULL };
		     pid < 0 && *w; w++) {
			int64_t id = hf_tok_token_to_id(t, *w, strlen(*w));

			if (id >= 0 && hf_tok_is_special(t, (uint32_t)id)) {
				pid = id;
				ptok = *w;
			}
		}
		if (pid < 0) {
			rc = die(prog, "--pad: the model has no pad token "
				 "(tokenizer_config.json pad_token)");
			goto done;
		}
		pad.pad_id = (uint32_t)pid;
		pad.pad_token = ptok;
		{
			const char *side = hf_tok_config_str(t, "padding_side");

			pad.direction = side && !strcmp(side, "left") ? HF_TOK_LEFT : HF_TOK_RIGHT;
		}
	}
	{
		const char *side = hf_tok_config_str(t, "truncation_side");

		trunc.direction = side && !strcmp(side, "left") ? HF_TOK_LEFT : HF_TOK_RIGHT;
	}
	while (!rc && !bad) {
		ssize_t len;

		n = 0;
		tb.n = 0;
		/* a bad line ends the batch: the lines before it are still
		 * encoded and written, then we fail */
		while (n < cap && (!n || op->pad || input_ready()) &&
		       (len = read_line(&buf, &bcap)) >= 0) {
			size_t tl = 0, pl = 0;

			no++;
			memset(&in[n], 0, sizeof(in[n]));
			if (op->jsonl) {
				json_t *j;
				json_error_t je;
				const json_t *tx, *px;
				size_t fl;
				char *fixed = take_text(buf, (size_t)len, no, "", op, &fl, &bad);

				if (!fixed)
					break;
				j = json_loadb(fixed, fl, JSON_ALLOW_NUL, &je);
				free(fixed);
				if (!j) {
					bad = die(prog, "stdin line %zu: bad JSON: %s", no, je.text);
					break;
				}
				tx = json_object_get(j, "text");
				px = json_object_get(j, "text_pair");
				if (!json_is_string(tx) || (px && !json_is_null(px) && !json_is_string(px))) {
					json_decref(j);
					bad = die(prog, "stdin line %zu: want {\"text\": string, "
						  "\"text_pair\": string (optional)}", no);
					break;
				}
				in[n].text = take_text(json_string_value(tx), json_string_length(tx),
						       no, "", op, &tl, &bad);
				if (in[n].text && json_is_string(px))
					in[n].pair = take_text(json_string_value(px),
							       json_string_length(px), no,
							       "text_pair: ", op, &pl, &bad);
				json_decref(j);
				owned[n] = 1;
			} else if (hf_utf8_valid(buf, (size_t)len, NULL)) {
				/* the common case: no copy of its own */
				toff[n] = tb.n;
				put(&tb, buf, (size_t)len);
				tl = (size_t)len;
				owned[n] = 0;
			} else {
				in[n].text = take_text(buf, (size_t)len, no, "", op, &tl, &bad);
				owned[n] = 1;
			}
			if (bad) {
				free((char *)in[n].text);
				free((char *)in[n].pair);
				in[n].text = in[n].pair = NULL;
				break;
			}
			in[n].len = tl;
			in[n].pair_len = pl;
			lineno[n] = no;
			n++;
		}
		if (!n)
			break;
		if (tb.bad) {
			rc = die(prog, "out of memory");
			break;
		}
		for (size_t i = 0; i < n; i++)
			if (!owned[i])
				in[i].text = tb.s ? tb.s + toff[i] : "";
		if (hf_tok_encode_batch(t, pool, ctxs, in, n, !op->no_special,
					op->truncate ? &trunc : NULL, op->pad ? &pad : NULL,
					enc, &err)) {
			rc = die(prog, "stdin line %zu and after: %s", lineno[0], err.msg);
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (op->max_length > 0 && !op->truncate && !op->pad &&
			    enc[i].n > (size_t)op->max_length) {
				flush_out(&o);
				rc = die(prog, "stdin line %zu: %zu tokens, more than "
					 "--max-length %ld (use --truncate)", lineno[i],
					 enc[i].n, op->max_length);
				break;
			}
			put_encoding(&o, &enc[i], op, in[i].pair != NULL);
		}
		for (size_t i = 0; i < n; i++) {
			if (owned[i]) {
				free((char *)in[i].text);
				free((char *)in[i].pair);
			}
			in[i].text = in[i].pair = NULL;
		}
		if (!rc)
			rc = flush_out(&o);
	}
	if (!rc)
		rc = bad;
done:
	for (size_t i = 0; in && owned && i < n; i++) {
		if (owned[i]) {
			free((char *)in[i].text);
			free((char *)in[i].pair);
		}
	}
	for (size_t i = 0; enc && i < cap; i++)
		hf_tok_encoding_free(&enc[i]);
	free(in);
	free(enc);
	free(lineno);
	free(toff);
	free(owned);
	free(tb.s);
	free(buf);
	free(o.s);
	for (int i = 0; i < 64; i++)
		hf_tok_ctx_free(ctxs[i]);
	hf_pool_free(pool);
	return rc;
}

static int run_decode(struct hf_tok *t, const struct opts *op)
{
	struct out o = { 0 };
	char *buf = NULL;
	size_t bcap = 0, no = 0, idcap = 0;
	uint32_t *ids = NULL;
	ssize_t len;
	int rc = 0;

	while (!rc && (len = read_line(&buf, &bcap)) >= 0) {
		json_t *j;
		json_error_t je;
		const json_t *arr;
		struct hf_err err = { 0 };
		char *text;
		size_t tl, n;

		no++;
		j = json_loadb(buf, (size_t)len, 0, &je);
		if (!j) {
			rc = die(prog, "stdin line %zu: bad JSON: %s", no, je.text);
			break;
		}
		arr = op->jsonl ? json_object_get(j, "ids") : j;
		if (!json_is_array(arr)) {
			json_decref(j);
			rc = die(prog, "stdin line %zu: want %s", no,
				 op->jsonl ? "{\"ids\": [...]}" : "an array of ids");
			break;
		}
		n = json_array_size(arr);
		if (n > idcap) {
			uint32_t *p = realloc(ids, n * sizeof(*ids));

			if (!p) {
				json_decref(j);
				rc = die(prog, "out of memory");
				break;
			}
			ids = p;
			idcap = n;
		}
		for (size_t i = 0; i < n; i++) {
			const json_t *v = json_array_get(arr, i);
			json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;

			if (id < 0 || (size_t)id >= hf_tok_vocab_size(t)) {
				rc = die(prog, "stdin line %zu: id %s at index %zu is not in "
					 "the vocabulary (%zu ids)", no,
					 json_is_integer(v) ? "out of range" : "not an integer",
					 i, hf_tok_vocab_size(t));
				break;
			}
			ids[i] = (uint32_t)id;
		}
		json_decref(j);
		if (rc)
			break;
		if (hf_tok_decode(t, ids, n, op->skip_special, &text, &tl, &err)) {
			rc = die_err(prog, &err);
			break;
		}
		puts_(&o, "{\"text\":");
		putstr(&o, text, tl);
		puts_(&o, "}\n");
		free(text);
		if (o.n > 1 << 16 || !input_ready())
			rc = flush_out(&o);
	}
	if (!rc)
		rc = flush_out(&o);
	free(buf);
	free(ids);
	free(o.s);
	return rc;
}

static int run_chat(struct hf_tok *t, const struct opts *op)
{
	struct hf_chat *chat = NULL;
	struct hf_tok_ctx *ctx = NULL;
	struct hf_tok_encoding enc = { 0 };
	struct hf_err err = { 0 };
	struct out o = { 0 };
	char *buf = NULL;
	size_t bcap = 0, no = 0;
	ssize_t len;
	int rc = 0;

	if (hf_chat_load(&chat, op->model, &err))
		return die_err(prog, &err);
	if (op->template_name) {
		int found = 0;

		for (size_t i = 0; i < hf_chat_count(chat); i++)
			found |= !strcmp(hf_chat_name(chat, i), op->template_name);
		if (!found) {
			hf_chat_free(chat);
			return die(prog, "%s: no chat template named '%s'", op->model,
				   op->template_name);
		}
	}
	if (op->chat_ids && hf_tok_ctx_create(&ctx, t, &err)) {
		hf_chat_free(chat);
		return die_err(prog, &err);
	}
	while (!rc && (len = read_line(&buf, &bcap)) >= 0) {
		json_t *j, *extra;
		json_error_t je;
		const json_t *msgs, *tools, *docs, *agp;
		const char *k;
		json_t *v;
		char *text;
		int add_gen = op->add_gen;

		no++;
		j = json_loadb(buf, (size_t)len, 0, &je);
		if (!j) {
			rc = die(prog, "stdin line %zu: bad JSON: %s", no, je.text);
			break;
		}
		msgs = json_object_get(j, "messages");
		if (!json_is_array(msgs)) {
			json_decref(j);
			rc = die(prog, "stdin line %zu: want {\"messages\": [...]}", no);
			break;
		}
		tools = json_object_get(j, "tools");
		docs = json_object_get(j, "documents");
		agp = json_object_get(j, "add_generation_prompt");
		if (json_is_boolean(agp))
			add_gen = json_is_true(agp);
		extra = json_object();
		json_object_foreach(j, k, v) {
			if (strcmp(k, "messages") && strcmp(k, "tools") &&
			    strcmp(k, "documents") && strcmp(k, "add_generation_prompt"))
				json_object_set(extra, k, v);
		}
		if (hf_chat_render(chat, op->template_name, msgs,
				   json_is_array(tools) ? tools : NULL,
				   json_is_array(docs) ? docs : NULL, add_gen, extra,
				   &text, &err)) {
			json_decref(extra);
			json_decref(j);
			rc = die(prog, "stdin line %zu: %s", no, err.msg);
			break;
		}
		json_decref(extra);
		json_decref(j);
		if (op->chat_ids) {
			if (hf_tok_encode(ctx, text, strlen(text), NULL, 0, 0, NULL, &enc, &err)) {
				free(text);
				rc = die(prog, "stdin line %zu: %s", no, err.msg);
				break;
			}
			puts_(&o, "{\"ids\":[");
			for (size_t i = 0; i < enc.n; i++) {
				if (i)
					put(&o, ",", 1);
				putu(&o, enc.ids[i]);
			}
			puts_(&o, "]}\n");
		} else {
			puts_(&o, "{\"text\":");
			putstr(&o, text, strlen(text));
			puts_(&o, "}\n");
		}
		free(text);
		rc = flush_out(&o);
	}
	hf_tok_encoding_free(&enc);
	hf_tok_ctx_free(ctx);
	hf_chat_free(chat);
	free(buf);
	free(o.s);
	return rc;
}

/* --truncate without --max-length: model_max_length, else the file's
 * truncation block. */
static long default_max_length(const struct hf_tok *t)
{
	const struct hf_tok_trunc *ft = hf_tok_file_truncation(t);
	size_t n;

	if (hf_tok_model_max_length(t, &n))
		return (long)n;
	if (ft && ft->max_length)
		return (long)ft->max_length;
	return -1;
}

/* Load the tokenizer of op->model (unless --chat renders text only) and
 * run the chosen mode; returns the exit status. */
static int open_and_run(struct opts *op)
{
	struct hf_err err = { 0 };
	struct hf_tok *t = NULL;
	int rc;

	if (!hf_dir_exists(op->model))
		return die(prog, "%s: no such model directory", op->model);
	/* --chat renders text without the tokenizer unless --ids */
	if ((op->mode != CHAT || op->chat_ids) && hf_tok_load(&t, op->model, &err))
		return die_err(prog, &err);
	if (t && op->truncate && op->max_length < 0) {
		op->max_length = default_max_length(t);
		op->max_from_model = 1;
		if (op->max_length < 0) {
			hf_tok_free(t);
			return die_usage(prog, "--truncate needs --max-length "
					 "(the model sets no limit)");
		}
	}
	if (op->mode == DECODE)
		rc = run_decode(t, op);
	else if (op->mode == CHAT)
		rc = run_chat(t, op);
	else
		rc = run_encode(t, op);
	hf_tok_free(t);
	return rc;
}

int cmd_tokenize(int argc, char **argv)
{
	enum { O_JSONL = 256, O_IDS_ONLY, O_COUNT, O_NO_SPECIAL, O_DECODE,
	       O_SKIP_SPECIAL, O_MAX_LENGTH, O_TRUNCATE, O_PAD, O_BATCH,
	       O_THREADS, O_LOSSY, O_CHAT, O_ADD_GEN, O_TEMPLATE, O_IDS,
	       O_STRIDE };
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "jsonl", no_argument, NULL, O_JSONL },
		{ "ids-only", no_argument, NULL, O_IDS_ONLY },
		{ "count", no_argument, NULL, O_COUNT },
		{ "no-special", no_argument, NULL, O_NO_SPECIAL },
		{ "decode", no_argument, NULL, O_DECODE },
		{ "skip-special", no_argument, NULL, O_SKIP_SPECIAL },
		{ "max-length", required_argument, NULL, O_MAX_LENGTH },
		{ "truncate", no_argument, NULL, O_TRUNCATE },
		{ "stride", required_argument, NULL, O_STRIDE },
		{ "pad", no_argument, NULL, O_PAD },
		{ "batch-size", required_argument, NULL, O_BATCH },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "lossy", no_argument, NULL, O_LOSSY },
		{ "chat", no_argument, NULL, O_CHAT },
		{ "add-generation-prompt", no_argument, NULL, O_ADD_GEN },
		{ "template", required_argument, NULL, O_TEMPLATE },
		{ "ids", no_argument, NULL, O_IDS },
		{ NULL, 0, NULL, 0 },
	};
	struct opts op = { .max_length = -1, .batch = 32, .threads = 0, .stride = -1 };
	struct hf_err err = { 0 };
	char *model_dir;
	int c, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":m:h", lo, NULL)) != -1) {
		switch (c) {
		case 'm': op.model = optarg; break;
		case 'h':
			fputs(usage, stdout);
			return finish_stdout(prog);
		case O_JSONL: op.jsonl = 1; break;
		case O_IDS_ONLY: op.ids_only = 1; break;
		case O_COUNT: op.count = 1; break;
		case O_NO_SPECIAL: op.no_special = 1; break;
		case O_DECODE:
			if (op.mode == CHAT)
				return die_usage(prog, "--decode and --chat exclude each other");
			op.mode = DECODE;
			break;
		case O_SKIP_SPECIAL: op.skip_special = 1; break;
		case O_MAX_LENGTH:
			if (parse_long(optarg, 1, 1L << 30, &op.max_length))
				return die_usage(prog, "--max-length: bad number '%s'", optarg);
			break;
		case O_TRUNCATE: op.truncate = 1; break;
		case O_STRIDE:
			if (parse_long(optarg, 0, 1L << 30, &op.stride))
				return die_usage(prog, "--stride: bad number '%s'", optarg);
			break;
		case O_PAD: op.pad = 1; break;
		case O_BATCH:
			if (parse_long(optarg, 1, 1L << 20, &op.batch))
				return die_usage(prog, "--batch-size: bad number '%s'", optarg);
			break;
		case O_THREADS:
			if (parse_long(optarg, 1, 64, &op.threads))
				return die_usage(prog, "--threads: want 1 to 64, not '%s'", optarg);
			break;
		case O_LOSSY: op.lossy = 1; break;
		case O_CHAT:
			if (op.mode == DECODE)
				return die_usage(prog, "--decode and --chat exclude each other");
			op.mode = CHAT;
			break;
		case O_ADD_GEN: op.add_gen = 1; break;
		case O_TEMPLATE: op.template_name = optarg; break;
		case O_IDS: op.chat_ids = 1; break;
		default:
			return die_bad_option(prog, c, argv);
		}
	}
	if (optind < argc)
		return die_usage(prog, "unexpected argument '%s'", argv[optind]);
	if (!op.model)
		return die_usage(prog, "-m <model> is required");
	if (op.ids_only && op.count)
		return die_usage(prog, "--ids-only and --count exclude each other");
	if (op.stride >= 0 && (!op.truncate || op.ids_only || op.count))
		return die_usage(prog, "--stride needs --truncate (and full records)");
	if (op.mode != ENCODE && (op.ids_only || op.count || op.truncate || op.pad ||
				  op.max_length > 0 || op.no_special))
		return die_usage(prog, "encode options given with --%s",
				 op.mode == DECODE ? "decode" : "chat");
	if (op.mode != DECODE && op.skip_special)
		return die_usage(prog, "--skip-special needs --decode");
	if (op.mode != CHAT && (op.add_gen || op.template_name || op.chat_ids))
		return die_usage(prog, "chat options need --chat");
	if (op.threads == 0)
		op.threads = hf_cpu_count();
	if (resolve_model(&model_dir, op.model, &err))
		return die_err(prog, &err);
	op.model = model_dir;
	rc = open_and_run(&op);
	free(model_dir);
	if (rc)
		return rc;
	return finish_stdout(prog);
}
