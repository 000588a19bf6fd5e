/* lib/train/data.c: JSON Lines training records to labelled rows and
 * batches (see data.h). */
#include "train/data.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "tok/chat/chat.h"
#include "tok/tok.h"

/* ---- PRNG ---- */

uint64_t hf_rng_below(struct hf_rng *r, uint64_t n)
{
	/* accept x < lim, the largest multiple of n that fits 2^64 */
	uint64_t lim = UINT64_MAX - (UINT64_MAX % n + 1) % n, x;

	do
		x = hf_rng_next(r);
	while (x > lim);
	return x % n;
}

float hf_rng_float(struct hf_rng *r)
{
	return (float)(hf_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* ---- the data set ---- */

struct hf_data {
	struct hf_data_opts o;
	size_t samples;
	/* rows: row i is ids[off[i] .. off[i + 1]) */
	int32_t *ids, *labels, *cls;
	size_t n, cap;
	size_t *off;
	size_t rows, rcap;
	int32_t pad_id;
	/* position */
	struct hf_data_pos pos;
	uint64_t perm_epoch;	/* epoch perm was made for; UINT64_MAX: none */
	size_t *perm;
};

/* A sample being built: ids and labels (n). */
struct sample {
	int32_t *ids, *labels;
	size_t n, cap;
};

static int sample_push(struct sample *s, int32_t id, int32_t label)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		int32_t *a = realloc(s->ids, cap * sizeof(*a));

		if (!a)
			return -1;
		s->ids = a;
		a = realloc(s->labels, cap * sizeof(*a));
		if (!a)
			return -1;
		s->labels = a;
		s->cap = cap;
	}
	s->ids[s->n] = id;
	s->labels[s->n] = label;
	s->n++;
	return 0;
}

static int data_push(struct hf_data *d, int32_t id, int32_t label)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 4096;
		int32_t *a = realloc(d->ids, cap * sizeof(*a));

		if (!a)
			return -1;
		d->ids = a;
		a = realloc(d->labels, cap * sizeof(*a));
		if (!a)
			return -1;
		d->labels = a;
		d->cap = cap;
	}
	d->ids[d->n] = id;
	d->labels[d->n] = label;
	d->n++;
	return 0;
}

/* End the row that started at off[rows] (d->n is its end). */
static int row_end(struct hf_data *d, int32_t cls)
{
	if (d->rows + 2 > d->rcap) {
		size_t cap = d->rcap ? 2 * d->rcap : 256;
		size_t *a = realloc(d->off, cap * sizeof(*a));
		int32_t *c;

		if (!a)
			return -1;
		d->off = a;
		c = realloc(d->cls, cap * sizeof(*c));
		if (!c)
			return -1;
		d->cls = c;
		d->rcap = cap;
	}
	d->cls[d->rows] = cls;
	d->rows++;
	d->off[d->rows] = d->n;
	return 0;
}

/* Code points in s[0 .. nbytes). */
static size_t cps(const char *s, size_t nbytes)
{
	size_t n = 0;

	for (size_t i = 0; i < nbytes; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

static int32_t token_id(struct hf_tok *t, const char *key)
{
	const char *s = t ? hf_tok_config_str(t, key) : NULL;
	int64_t id;

	if (!s)
		return -1;
	id = hf_tok_token_to_id(t, s, strlen(s));
	return id >= 0 && id <= INT32_MAX ? (int32_t)id : -1;
}

struct loader {
	const char *path;
	size_t line;
	struct hf_tok *tok;
	struct hf_tok_ctx *ctx;
	const struct hf_chat *chat;
	struct hf_tok_encoding enc;
	int32_t eos;
};

static int need_tok(struct loader *L, const char *what, struct hf_err *err)
{
	if (L->tok)
		return 0;
	return hf_err_set(err, HF_EINVAL, "%s:%zu: a %s record needs a tokenizer", L->path,
			  L->line, what);
}

static int encode(struct loader *L, const char *text, size_t len, int special,
		  struct hf_err *err)
{
	if (hf_tok_encode(L->ctx, text, len, NULL, 0, special, NULL, &L->enc, err))
		return hf_err_prefix(err, "%s:%zu", L->path, L->line);
	return 0;
}

/* {"text"}: every token labelled; then eos. */
static int load_text(struct loader *L, const char *text, size_t len, int add_eos,
		     struct sample *s, struct hf_err *err)
{
	int rc;

	if ((rc = need_tok(L, "text", err)) || (rc = encode(L, text, len, 1, err)))
		return rc;
	for (size_t i = 0; i < L->enc.n; i++)
		if (sample_push(s, (int32_t)L->enc.ids[i], (int32_t)L->enc.ids[i]))
			return HF_ENOMEM;
	if (add_eos && L->eos >= 0 && (!s->n || s->ids[s->n - 1] != L->eos))
		if (sample_push(s, L->eos, L->eos))
			return HF_ENOMEM;
	return 0;
}

/* {"prompt","completion"}: the concatenation encoded once; a token is the
 * completion's when it ends past the prompt's last code point (a token
 * the template adds counts with the completion once one has been seen). */
static int load_prompt(struct loader *L, const char *p, size_t plen,
		       const char *c, size_t clen, int add_eos,
		       struct sample *s, struct hf_err *err)
{
	char *buf;
	size_t pcp = cps(p, plen);
	int seen = 0, rc;

	if ((rc = need_tok(L, "prompt", err)))
		return rc;
	buf = malloc(plen + clen + 1);
	if (!buf)
		return HF_ENOMEM;
	memcpy(buf, p, plen);
	memcpy(buf + plen, c, clen);
	buf[plen + clen] = '\0';
	if ((rc = encode(L, buf, plen + clen, 1, err))) {
		free(buf);
		return rc;
	}
	free(buf);
	for (size_t i = 0; i < L->enc.n; i++) {
		int lab;

		if (L->enc.seq[i] == 255)
			lab = seen;
		else
			lab = L->enc.offsets[i][1] > pcp;
		seen |= lab;
		if (sample_push(s, (int32_t)L->enc.ids[i],
				lab ? (int32_t)L->enc.ids[i] : HF_IGNORE_INDEX))
			return HF_ENOMEM;
	}
	if (add_eos && L->eos >= 0 && (!s->n || s->ids[s->n - 1] != L->eos))
		if (sample_push(s, L->eos, L->eos))
			return HF_ENOMEM;
	return 0;
}

static int render(struct loader *L, const json_t *msgs, const json_t *tools,
		  int add_gen, const json_t *extra, char **out, struct hf_err *err)
{
	if (hf_chat_render(L->chat, NULL, msgs, tools, NULL, add_gen, extra, out, err))
		return hf_err_prefix(err, "%s:%zu: chat template", L->path, L->line);
	return 0;
}

/* A marker appended to an assistant message's content to find where the
 * content ends in a rendering. */
static const char sentinel[] = "\x1bhf-turn-end\x1b";

/* Copy of msgs[0, n) with message i's content followed by the sentinel. */
static json_t *with_sentinel(const json_t *msgs, size_t n, size_t i)
{
	json_t *a = json_array();

	for (size_t j = 0; a && j < n; j++) {
		json_t *m = json_array_get(msgs, j);

		if (j == i) {
			const char *c = json_string_value(json_object_get(m, "content"));
			size_t len = strlen(c);
			char *t = malloc(len + sizeof(sentinel));

			m = json_copy(m);
			if (!t || !m) {
				free(t);
				json_decref(m);
				json_decref(a);
				return NULL;
			}
			memcpy(t, c, len);
			memcpy(t + len, sentinel, sizeof(sentinel));
			json_object_set_new(m, "content", json_string(t));
			free(t);
			json_array_append_new(a, m);
		} else {
			json_array_append(a, m);
		}
	}
	return a;
}

/* {"messages"}: the conversation R rendered once and tokenized; the turn
 * of each assistant message i is found from further renderings:
 *  - it starts at |P|, P = messages[0, i) with the generation prompt,
 *    which must be a prefix of R;
 *  - its content ends where a sentinel appended to the content appears in
 *    the whole conversation rendered again (the text before must be R's);
 *  - it ends after what follows the content both in the whole and in
 *    messages[0, i] rendered alone (the template's end of turn, e.g.
 *    "<|im_end|>\n", and not the next message's header).
 * Tokens of R overlapping a turn are labelled. */
static int load_chat(struct loader *L, const json_t *rec, struct sample *s,
		     struct hf_err *err)
{
	const json_t *msgs = json_object_get(rec, "messages");
	const json_t *tools = json_object_get(rec, "tools");
	json_t *extra = json_object(), *sub = NULL, *v;
	const char *k;
	char *R = NULL, *P = NULL, *RS = NULL, *QS = NULL;
	size_t nturn = 0, (*turn)[2] = NULL, rlen, nm;
	int rc = 0;

	if (!extra)
		return HF_ENOMEM;
	if (!L->chat) {
		rc = hf_err_set(err, HF_EINVAL, "%s:%zu: a messages record needs the model's chat template",
				L->path, L->line);
		goto out;
	}
	if ((rc = need_tok(L, "messages", err)))
		goto out;
	if (!json_is_array(msgs) || !json_array_size(msgs)) {
		rc = hf_err_set(err, HF_EFORMAT, "%s:%zu: \"messages\" must be a non-empty array",
				L->path, L->line);
		goto out;
	}
	nm = json_array_size(msgs);
	if (tools && !json_is_array(tools))
		tools = NULL;
	json_object_foreach((json_t *)rec, k, v)
		if (strcmp(k, "messages") && strcmp(k, "tools"))
			json_object_set(extra, k, v);
	if ((rc = render(L, msgs, tools, 0, extra, &R, err)))
		goto out;
	rlen = strlen(R);
	turn = calloc(nm, sizeof(*turn));
	if (!turn) {
		rc = HF_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nm; i++) {
		const json_t *m = json_array_get(msgs, i);
		const char *role = json_string_value(json_object_get(m, "role"));
		const char *sr, *sq;
		size_t a, c, l;

		if (!json_is_object(m) || !role) {
			rc = hf_err_set(err, HF_EFORMAT, "%s:%zu: message %zu has no \"role\"",
					L->path, L->line, i);
			goto out;
		}
		if (strcmp(role, "assistant"))
			continue;
		if (!json_is_string(json_object_get(m, "content"))) {
			rc = hf_err_set(err, HF_EFORMAT,
					"%s:%zu: message %zu: an assistant \"content\" must be a string",
					L->path, L->line, i);
			goto out;
		}
		/* start: messages[0, i) with the generation prompt */
		json_decref(sub);
		sub = json_array();
		if (!sub) {
			rc = HF_ENOMEM;
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			json_array_append(sub, json_array_get(msgs, j));
		free(P);
		P = NULL;
		if ((rc = render(L, sub, tools, 1, extra, &P, err)))
			goto out;
		a = strlen(P);
		if (a > rlen || memcmp(P, R, a))
			goto unstable;
		/* content end: the sentinel in the whole */
		json_decref(sub);
		if (!(sub = with_sentinel(msgs, nm, i))) {
			rc = HF_ENOMEM;
			goto out;
		}
		free(RS);
		RS = NULL;
		if ((rc = render(L, sub, tools, 0, extra, &RS, err)))
			goto out;
		sr = strstr(RS + (a < strlen(RS) ? a : 0), sentinel);
		if (!sr || (c = (size_t)(sr - RS)) > rlen || c < a || memcmp(RS, R, c))
			goto unstable;
		/* end of turn: agreed on by the whole and messages[0, i] alone */
		json_decref(sub);
		if (!(sub = with_sentinel(msgs, i + 1, i))) {
			rc = HF_ENOMEM;
			goto out;
		}
		free(QS);
		QS = NULL;
		if ((rc = render(L, sub, tools, 0, extra, &QS, err)))
			goto out;
		sq = strstr(QS, sentinel);
		if (!sq)
			goto unstable;
		sr += sizeof(sentinel) - 1;
		sq += sizeof(sentinel) - 1;
		for (l = 0; sr[l] && sr[l] == sq[l]; l++)
			;
		if (c + l > rlen)
			goto unstable;
		turn[nturn][0] = cps(R, a);
		turn[nturn][1] = cps(R, c + l);
		nturn++;
		continue;
unstable:
		rc = hf_err_set(err, HF_EFORMAT,
				"%s:%zu: the chat template does not render message %zu (assistant) the same within and without the rest of the conversation, so its turn cannot be found",
				L->path, L->line, i);
		goto out;
	}
	if ((rc = encode(L, R, rlen, 0, err)))
		goto out;
	for (size_t i = 0; i < L->enc.n; i++) {
		uint32_t ts = L->enc.offsets[i][0], te = L->enc.offsets[i][1];
		int lab = 0;

		for (size_t t = 0; t < nturn && !lab; t++)
			lab = ts < turn[t][1] && te > turn[t][0];
		if (sample_push(s, (int32_t)L->enc.ids[i],
				lab ? (int32_t)L->enc.ids[i] : HF_IGNORE_INDEX)) {
			rc = HF_ENOMEM;
			goto out;
		}
	}
out:
	if (rc == HF_ENOMEM)
		hf_err_set(err, rc, "%s:%zu: out of memory", L->path, L->line);
	json_decref(sub);
	json_decref(extra);
	free(turn);
	free(R);
	free(P);
	free(RS);
	free(QS);
	return rc;
}

/* {"ids","labels"} */
static int load_ids(struct loader *L, const json_t *rec, struct sample *s,
		    struct hf_err *err)
{
	const json_t *ids = json_object_get(rec, "ids");
	const json_t *labels = json_object_get(rec, "labels");
	size_t n;

	if (!json_is_array(ids))
		return hf_err_set(err, HF_EFORMAT, "%s:%zu: \"ids\" must be an array of token ids",
				  L->path, L->line);
	n = json_array_size(ids);
	if (labels && !json_is_null(labels) &&
	    (!json_is_array(labels) || json_array_size(labels) != n))
		return hf_err_set(err, HF_EFORMAT,
				  "%s:%zu: \"labels\" must be an array as long as \"ids\" (%zu)",
				  L->path, L->line, n);
	if (json_is_null(labels))
		labels = NULL;
	for (size_t i = 0; i < n; i++) {
		const json_t *a = json_array_get(ids, i);
		const json_t *b = labels ? json_array_get(labels, i) : a;
		json_int_t x, y;

		if (!json_is_integer(a) || (x = json_integer_value(a)) < 0 || x > INT32_MAX)
			return hf_err_set(err, HF_EFORMAT, "%s:%zu: ids[%zu] is not a token id",
					  L->path, L->line, i);
		if (!json_is_integer(b) || (y = json_integer_value(b)) > INT32_MAX ||
		    (y < 0 && y != HF_IGNORE_INDEX))
			return hf_err_set(err, HF_EFORMAT, "%s:%zu: labels[%zu] is not a token id or -100",
					  L->path, L->line, i);
		if (sample_push(s, (int32_t)x, (int32_t)y))
			return hf_err_set(err, HF_ENOMEM, "%s:%zu: out of memory", L->path, L->line);
	}
	return 0;
}

static int load_record(struct hf_data *d, struct loader *L, const json_t *rec,
		       struct sample *s, int32_t *cls, struct hf_err *err)
{
	const json_t *text = json_object_get(rec, "text");
	const json_t *prompt = json_object_get(rec, "prompt");
	const json_t *completion = json_object_get(rec, "completion");

	*cls = -1;
	if (d->o.classify) {
		const json_t *label = json_object_get(rec, "label");

		if (!json_is_string(text) || !json_is_integer(label))
			return hf_err_set(err, HF_EFORMAT,
					  "%s:%zu: want {\"text\": string, \"label\": integer} for classification",
					  L->path, L->line);
		if (json_integer_value(label) < 0 || json_integer_value(label) > INT32_MAX)
			return hf_err_set(err, HF_EFORMAT, "%s:%zu: label %lld is not a class index",
					  L->path, L->line, (long long)json_integer_value(label));
		*cls = (int32_t)json_integer_value(label);
		return load_text(L, json_string_value(text), json_string_length(text), 0, s, err);
	}
	if (json_object_get(rec, "messages"))
		return load_chat(L, rec, s, err);
	if (json_object_get(rec, "ids"))
		return load_ids(L, rec, s, err);
	if (prompt || completion) {
		if (!json_is_string(prompt) || !json_is_string(completion))
			return hf_err_set(err, HF_EFORMAT,
					  "%s:%zu: \"prompt\" and \"completion\" must both be strings",
					  L->path, L->line);
		return load_prompt(L, json_string_value(prompt), json_string_length(prompt),
				   json_string_value(completion),
				   json_string_length(completion), d->o.add_eos, s, err);
	}
	if (text) {
		if (!json_is_string(text))
			return hf_err_set(err, HF_EFORMAT, "%s:%zu: \"text\" must be a string",
					  L->path, L->line);
		return load_text(L, json_string_value(text), json_string_length(text),
				 d->o.add_eos, s, err);
	}
	return hf_err_set(err, HF_EFORMAT,
			  "%s:%zu: record has none of the known keys (text, prompt/completion, messages, ids)",
			  L->path, L->line);
}

/* Append sample s as rows. */
static int add_sample(struct hf_data *d, struct loader *L, struct sample *s,
		      int32_t cls, struct hf_err *err)
{
	size_t n = s->n, L0 = d->o.seq_len;

	if (L0 && n > L0) {
		if (d->o.truncate)
			n = L0;
		else if (!d->o.pack)
			return hf_err_set(err, HF_ERANGE,
					  "%s:%zu: sample of %zu tokens is longer than --seq-len %zu (truncation is off)",
					  L->path, L->line, s->n, L0);
	}
	if (!n)
		return hf_err_set(err, HF_EFORMAT, "%s:%zu: record gives no tokens", L->path, L->line);
	for (size_t i = 0; i < n; i++) {
		if (data_push(d, s->ids[i], s->labels[i]))
			return hf_err_set(err, HF_ENOMEM, "out of memory reading '%s'", L->path);
		if (d->o.pack && d->n - d->off[d->rows] == L0 && row_end(d, -1))
			return hf_err_set(err, HF_ENOMEM, "out of memory reading '%s'", L->path);
	}
	if (!d->o.pack && row_end(d, cls))
		return hf_err_set(err, HF_ENOMEM, "out of memory reading '%s'", L->path);
	d->samples++;
	return 0;
}

int hf_data_load(struct hf_data **out, const char *path, struct hf_tok *tok,
		 const struct hf_chat *chat, const struct hf_data_opts *o,
		 struct hf_err *err)
{
	struct hf_data *d = calloc(1, sizeof(*d));
	struct loader L = { .path = path, .tok = tok, .chat = chat };
	struct sample s = { 0 };
	char *buf = NULL, *p, *end;
	size_t len;
	int rc = 0;

	*out = NULL;
	if (!d)
		return hf_err_set(err, HF_ENOMEM, "out of memory reading '%s'", path);
	d->o = *o;
	if (d->o.world <= 0)
		d->o.world = 1;
	if (d->o.rank < 0 || d->o.rank >= d->o.world) {
		rc = hf_err_set(err, HF_EINVAL, "rank %d of %d", d->o.rank, d->o.world);
		goto fail;
	}
	if (d->o.pack && (!d->o.seq_len || d->o.classify)) {
		rc = hf_err_set(err, HF_EINVAL, d->o.classify ?
				"packing does not apply to classification" :
				"packing needs a sequence length");
		goto fail;
	}
	d->perm_epoch = UINT64_MAX;
	d->pad_id = token_id(tok, "pad_token");
	L.eos = token_id(tok, "eos_token");
	if (d->pad_id < 0)
		d->pad_id = L.eos >= 0 ? L.eos : 0;
	d->off = malloc(2 * sizeof(*d->off));
	d->cls = malloc(2 * sizeof(*d->cls));
	if (!d->off || !d->cls) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory reading '%s'", path);
		goto fail;
	}
	d->rcap = 2;
	d->off[0] = 0;
	if ((rc = hf_file_read(&buf, &len, path, err)))
		goto fail;
	if (tok && (rc = hf_tok_ctx_create(&L.ctx, tok, err)))
		goto fail;
	for (p = buf; p < buf + len; p = end + 1) {
		json_error_t je;
		json_t *rec;
		int32_t cls;
		size_t n;

		L.line++;
		end = memchr(p, '\n', (size_t)(buf + len - p));
		if (!end)
			end = buf + len;
		n = (size_t)(end - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (strspn(p, " \t") >= n)
			continue;
		rec = json_loadb(p, n, 0, &je);
		if (!rec) {
			rc = hf_err_set(err, HF_EFORMAT, "%s:%zu: bad JSON: %s", path, L.line,
					je.text);
			goto fail;
		}
		if (!json_is_object(rec)) {
			json_decref(rec);
			rc = hf_err_set(err, HF_EFORMAT, "%s:%zu: a record must be a JSON object",
					path, L.line);
			goto fail;
		}
		s.n = 0;
		rc = load_record(d, &L, rec, &s, &cls, err);
		json_decref(rec);
		if (rc == HF_ENOMEM && err && !err->msg[0])
			hf_err_set(err, rc, "%s:%zu: out of memory", path, L.line);
		if (rc || (rc = add_sample(d, &L, &s, cls, err)))
			goto fail;
	}
	if (d->o.pack && d->n > d->off[d->rows] && row_end(d, -1)) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory reading '%s'", path);
		goto fail;
	}
	if (!d->samples) {
		rc = hf_err_set(err, HF_EFORMAT, "%s: no records", path);
		goto fail;
	}
	d->perm = malloc(d->rows * sizeof(*d->perm));
	if (!d->perm) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory reading '%s'", path);
		goto fail;
	}
	free(buf);
	free(s.ids);
	free(s.labels);
	hf_tok_encoding_free(&L.enc);
	hf_tok_ctx_free(L.ctx);
	*out = d;
	return 0;
fail:
	free(buf);
	free(s.ids);
	free(s.labels);
	hf_tok_encoding_free(&L.enc);
	hf_tok_ctx_free(L.ctx);
	hf_data_free(d);
	return rc;
}

void hf_data_free(struct hf_data *d)
{
	if (!d)
		return;
	free(d->ids);
	free(d->labels);
	free(d->cls);
	free(d->off);
	free(d->perm);
	free(d);
}

size_t hf_data_rows(const struct hf_data *d)
{
	return d->rows;
}

size_t hf_data_samples(const struct hf_data *d)
{
	return d->samples;
}

const int32_t *hf_data_row(const struct hf_data *d, size_t i, size_t *len,
			   const int32_t **labels)
{
	if (i >= d->rows)
		return NULL;
	*len = d->off[i + 1] - d->off[i];
	if (labels)
		*labels = d->labels + d->off[i];
	return d->ids + d->off[i];
}

int32_t hf_data_pad_id(const struct hf_data *d)
{
	return d->pad_id;
}

struct hf_data_pos hf_data_tell(const struct hf_data *d)
{
	return d->pos;
}

void hf_data_seek(struct hf_data *d, struct hf_data_pos p)
{
	d->pos = p;
}

static void make_perm(struct hf_data *d, uint64_t epoch)
{
	struct hf_rng r;

	if (d->perm_epoch == epoch)
		return;
	for (size_t i = 0; i < d->rows; i++)
		d->perm[i] = i;
	if (d->o.shuffle) {
		hf_rng_seed(&r, d->o.seed + epoch);
		for (size_t i = d->rows; i > 1; i--) {
			size_t j = (size_t)hf_rng_below(&r, i), t = d->perm[i - 1];

			d->perm[i - 1] = d->perm[j];
			d->perm[j] = t;
		}
	}
	d->perm_epoch = epoch;
}

/* Labels row r's loss counts. */
static size_t row_tokens(const struct hf_data *d, size_t r)
{
	size_t n = 0;

	if (d->o.classify)
		return 1;
	for (size_t i = d->off[r] + (d->o.shift ? 1 : 0); i < d->off[r + 1]; i++)
		n += d->labels[i] != HF_IGNORE_INDEX;
	return n;
}

int hf_data_next(struct hf_data *d, size_t batch, struct hf_batch *b,
		 struct hf_err *err)
{
	size_t W = (size_t)d->o.world, start, end, lo, hi, T = 0;

	if (!batch)
		return hf_err_set(err, HF_EINVAL, "batch size 0");
	if (d->pos.index >= d->rows) {
		d->pos.epoch++;
		d->pos.index = 0;
	}
	make_perm(d, d->pos.epoch);
	start = d->pos.index;
	end = d->rows - start > batch * W ? start + batch * W : d->rows;
	lo = start + (size_t)d->o.rank * batch;
	hi = lo + batch;
	if (lo > end)
		lo = end;
	if (hi > end)
		hi = end;
	b->global_tokens = 0;
	for (size_t i = start; i < end; i++) {
		size_t r = d->perm[i], n = d->off[r + 1] - d->off[r];

		if (n > T)
			T = n;
		b->global_tokens += row_tokens(d, r);
	}
	b->rows = hi - lo;
	b->T = T;
	b->global_rows = end - start;
	b->epoch = d->pos.epoch;
	b->last = end == d->rows;
	b->tokens = 0;
	if (b->rows * T > b->cap || !b->ids) {
		size_t cap = b->rows * T > 0 ? b->rows * T : 1;
		void *a = realloc(b->ids, cap * sizeof(int32_t));

		if (!a)
			goto nomem;
		b->ids = a;
		if (!(a = realloc(b->labels, cap * sizeof(int32_t))))
			goto nomem;
		b->labels = a;
		if (!(a = realloc(b->mask, cap * sizeof(int32_t))))
			goto nomem;
		b->mask = a;
		b->cap = cap;
	}
	if (batch > b->cls_cap) {
		void *a = realloc(b->cls, batch * sizeof(int32_t));

		if (!a)
			goto nomem;
		b->cls = a;
		b->cls_cap = batch;
	}
	for (size_t i = lo; i < hi; i++) {
		size_t r = d->perm[i], o = d->off[r], n = d->off[r + 1] - o;
		size_t row = i - lo;

		for (size_t j = 0; j < T; j++) {
			int in = j < n;

			b->ids[row * T + j] = in ? d->ids[o + j] : d->pad_id;
			b->labels[row * T + j] = in ? d->labels[o + j] : HF_IGNORE_INDEX;
			b->mask[row * T + j] = in;
		}
		b->cls[row] = d->cls[r];
		b->tokens += row_tokens(d, r);
	}
	d->pos.index = end;
	return 0;
nomem:
	return hf_err_set(err, HF_ENOMEM, "out of memory for a batch of %zu x %zu", b->rows, T);
}

void hf_batch_free(struct hf_batch *b)
{
	if (!b)
		return;
	free(b->ids);
	free(b->labels);
	free(b->mask);
	free(b->cls);
	memset(b, 0, sizeof(*b));
}

uint64_t hf_data_steps_per_epoch(const struct hf_data *d, size_t batch,
				 size_t accum)
{
	size_t g = batch * (size_t)d->o.world;
	uint64_t micro = (d->rows + g - 1) / g;

	if (!accum)
		accum = 1;
	return (micro + accum - 1) / accum;
}
