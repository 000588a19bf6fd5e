/* lib/quant/calib.c: reading a calibration file into equal sequences of
 * token ids (calib.h says which formats and how they are cut). */
#include "quant/calib.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/utf8.h"
#include "tok/tok.h"

struct toks {
	int32_t *v;
	size_t n, cap;
};

static int push(struct toks *t, int64_t id, struct hf_err *err)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 4096;
		int32_t *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = (int32_t)id;
	return 0;
}

struct reader {
	const char *path, *model_dir;
	size_t vocab;
	struct hf_tok *tok;
	struct hf_tok_ctx *ctx;
	struct hf_tok_encoding enc;
	struct toks t;
};

static int add_text(struct reader *r, const char *s, size_t len, size_t line,
		    struct hf_err *err)
{
	if (!r->tok) {
		struct hf_err e = { 0 };

		if (!r->model_dir || hf_tok_load(&r->tok, r->model_dir, &e))
			return hf_err_set(err, HF_EINVAL,
					  "%s line %zu: text needs the model's "
					  "tokenizer, and %s%s%s; give {\"ids\": "
					  "[...]} records instead", r->path,
					  line, r->model_dir ? "" : "there is none",
					  r->model_dir ? "it could not be loaded: " : "",
					  r->model_dir ? e.msg : "");
		if (hf_tok_ctx_create(&r->ctx, r->tok, err))
			return err->code;
	}
	if (hf_tok_encode(r->ctx, s, len, NULL, 0, 1, NULL, &r->enc, err))
		return hf_err_prefix(err, "%s line %zu", r->path, line);
	for (size_t i = 0; i < r->enc.n; i++)
		if (push(&r->t, r->enc.ids[i], err))
			return err->code;
	return 0;
}

static int add_ids(struct reader *r, const json_t *a, size_t line,
		   struct hf_err *err)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) {
		json_int_t id;

		if (!json_is_integer(v))
			return hf_err_set(err, HF_EFORMAT,
					  "%s line %zu: \"ids\"[%zu] is not an integer",
					  r->path, line, i);
		id = json_integer_value(v);
		if (id < 0 || id > INT32_MAX ||
		    (r->vocab && (size_t)id >= r->vocab))
			return hf_err_set(err, HF_ERANGE,
					  "%s line %zu: token id %lld is outside "
					  "the vocabulary of %zu", r->path, line,
					  (long long)id, r->vocab);
		if (push(&r->t, id, err))
			return err->code;
	}
	return 0;
}

static int add_json(struct reader *r, const char *s, size_t len, size_t line,
		    struct hf_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(s, len, 0, &je), *text, *ids;
	int rc;

	if (!o)
		return hf_err_set(err, HF_EFORMAT, "%s line %zu: bad JSON: %s",
				  r->path, line, je.text);
	text = json_object_get(o, "text");
	ids = json_object_get(o, "ids");
	if (json_is_string(text))
		rc = add_text(r, json_string_value(text),
			      json_string_length(text), line, err);
	else if (json_is_array(ids))
		rc = add_ids(r, ids, line, err);
	else
		rc = hf_err_set(err, HF_EFORMAT,
				"%s line %zu: a record needs \"text\" (a string) "
				"or \"ids\" (an array of token ids)", r->path,
				line);
	json_decref(o);
	return rc;
}

int hf_calib_load(struct hf_calib *c, const char *path,
		  const char *model_dir, size_t samples, size_t seq_len,
		  size_t vocab, struct hf_err *err)
{
	struct reader r = { path, model_dir, vocab, NULL, NULL, { 0 },
			    { 0 } };
	char *buf = NULL;
	size_t len = 0, bad, line = 0, n, T;
	int jsonl = -1, rc = 0;

	memset(c, 0, sizeof(*c));
	if (!seq_len)
		return hf_err_set(err, HF_EINVAL, "a sequence length of 0");
	if (hf_file_read(&buf, &len, path, err))
		return err->code;
	if (!hf_utf8_valid(buf, len, &bad)) {
		for (size_t i = 0; i < bad; i++)
			line += buf[i] == '\n';
		rc = hf_err_set(err, HF_EFORMAT,
				"%s line %zu: invalid UTF-8 at byte %zu", path,
				line + 1, bad);
		goto fail;
	}
	for (size_t at = 0; at < len && !rc;) {
		const char *s = buf + at, *nl = memchr(s, '\n', len - at);
		size_t l = nl ? (size_t)(nl - s) : len - at, b = 0;

		at += l + 1;
		line++;
		if (l && s[l - 1] == '\r')
			l--;
		while (b < l && (s[b] == ' ' || s[b] == '\t'))
			b++;
		if (b == l)
			continue;
		if (jsonl < 0)
			jsonl = s[b] == '{';
		rc = jsonl ? add_json(&r, s, l, line, err) :
			     add_text(&r, s, l, line, err);
	}
	if (rc)
		goto fail;
	if (!r.t.n) {
		rc = hf_err_set(err, HF_EFORMAT,
				"%s: no calibration tokens (the file is empty)",
				path);
		goto fail;
	}
	T = r.t.n < seq_len ? r.t.n : seq_len;
	n = r.t.n / T;
	if (samples && n > samples)
		n = samples;
	c->n = n;
	c->T = T;
	c->ids = malloc(n * T * sizeof(int32_t));
	if (!c->ids) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	memcpy(c->ids, r.t.v, n * T * sizeof(int32_t));
fail:
	if (rc)
		hf_calib_free(c);
	free(buf);
	free(r.t.v);
	hf_tok_encoding_free(&r.enc);
	hf_tok_ctx_free(r.ctx);
	hf_tok_free(r.tok);
	return rc;
}

void hf_calib_free(struct hf_calib *c)
{
	if (!c)
		return;
	free(c->ids);
	memset(c, 0, sizeof(*c));
}
