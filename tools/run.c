/* tools/run.c: hf-run: generate, chat, embed, classify, fill masks, score
 * perplexity or dump logits with a model directory. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/kvfmt.h"
#include "backend/vulkan/backend_vk.h"
#include "cli.h"
#include "core/file.h"
#include "core/json.h"
#include "core/lineedit.h"
#include "core/log.h"
#include "core/utf8.h"
#include "gen/gen.h"
#include "model/model.h"
#include "st/st.h"
#include "tensor/matmul.h"
#include "tok/chat/chat.h"
#include "tok/tok.h"
#include "train/peft.h"

static const char prog[] = "hf-run";

static const char usage[] =
	"usage: hf-run -m <model> [-p <prompt>] [--chat] [--jsonl] [options]\n"
	"       hf-run -m <model> --task embed|classify|fill-mask|logits "
	"[-o <file.safetensors>] [--normalize]\n"
	"       hf-run -m <model> --perplexity [--ctx <n>] [--stride <n>]\n"
	"       hf-run -m <model> --adapter <adapter> --merge -o <dir>\n"
	"options:\n"
	"  -m, --model <model>       model directory, or org/name[@rev] from the Hub cache\n"
	"  -p, --prompt <text>       one prompt instead of reading stdin\n"
	"      --adapter <adapter>   a PEFT LoRA adapter directory, or org/name[@rev]\n"
	"      --merge               fold the adapter into float32 weights at load;\n"
	"                            with -o <dir>: write the merged model there\n"
	"      --chat                apply the chat template (interactive on a tty)\n"
	"      --jsonl               stdin holds JSON records: {\"prompt\"}, "
	"{\"messages\"}, {\"ids\"}, {\"text\"}\n"
	"      --task <task>         generate (default), embed, classify, "
	"fill-mask, logits\n"
	"  -o, --output <file>       --task logits: write a safetensors file\n"
	"  -n, --max-tokens <n>      tokens to generate (default 256)\n"
	"      --temperature <t>     0 is greedy\n"
	"      --top-k <k>           (fill-mask: fills per mask, default 5)\n"
	"      --top-p <p>\n"
	"      --min-p <p>\n"
	"      --repeat-penalty <r>\n"
	"      --seed <n>            sampling seed (default 0)\n"
	"      --stop <text>         stop at this text (repeatable)\n"
	"      --logprobs <n>        top-n log-probabilities per token\n"
	"      --batch <n>           prompts generated together (default 1)\n"
	"      --normalize           --task embed: unit-length embeddings\n"
	"      --perplexity          perplexity of all of stdin\n"
	"      --ctx <n>             context: KV cache tokens per prompt, the "
	"perplexity window\n"
	"      --stride <n>          perplexity stride (default: --ctx / 2)\n"
	"  -t, --threads <n>         threads (default: all CPUs)\n"
	"      --device <dev>        cpu (default), vulkan, or auto (a GPU if "
	"there is one)\n"
	"      --dtype <type>        matmul compute type: f32 (default), bf16\n"
	"      --kv-cache <type>     KV cache type: f32 (default), f16, bf16, "
	"int8, q4\n"
	"  -v, --verbose             timings to stderr\n"
	"  -h, --help\n";

enum task { TASK_GENERATE, TASK_EMBED, TASK_CLASSIFY, TASK_FILL, TASK_LOGITS };

#define MAX_STOP 16

struct opts {
	const char *model, *prompt, *output, *device;
	const char *adapter;	/* --adapter, or NULL */
	int merge;		/* --merge */
	const char *kv_cache;	/* --kv-cache, or NULL */
	int chat, jsonl, verbose, normalize, perplexity;
	int bf16;	/* --dtype bf16 */
	enum task task;
	long max_tokens, top_k, logprobs, batch, threads, ctx, stride;
	double temperature, top_p, min_p, repeat_penalty;
	int have_temp, have_sampling, have_top_k;
	uint64_t seed;
	const char *stop[MAX_STOP];
	int nstop;
};

struct run {
	struct opts o;
	struct hf_model *m;
	struct hf_backend *be;	/* a device backend, or NULL for the CPU */
	struct hf_tok *tok;
	struct hf_tok_ctx *tctx;
	struct hf_chat *chat;
	int64_t eos[HF_CONFIG_MAX_EOS + 8];
	size_t neos;
	struct hf_sample_params sp;
	int tty_out;
	size_t record;
	/* streaming and stop strings, per row of a batch */
	struct rowtext {
		int32_t *ids;
		size_t n, cap;
		size_t printed;	/* bytes of text already streamed */
		char *text;	/* latest decode, cut at a stop string */
	} *rows;
	size_t nrows;
	int stream;
	/* --task logits -o: kept until the end */
	struct kept {
		float *data;
		int64_t shape[2];
	} *keep;
	size_t nkeep;
	double load_ms;
	double t_prompt_ms, t_gen_ms;
	size_t n_prompt, n_gen;
	int past_positions;	/* input past a learned position table: exit 2 */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One JSON record on stdout: compact, UTF-8 as is, 9 significant digits
 * for floats (enough to round-trip a float32). */
static int emit(json_t *v)
{
	int rc = json_dumpf(v, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));

	json_decref(v);
	/* each record as soon as it is whole: for the next command of a
	 * pipeline, and so that Ctrl-C loses none */
	if (rc || fputc('\n', stdout) == EOF || fflush(stdout))
		return -1;
	return 0;
}

static json_t *farray(const float *x, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_real(isfinite(x[i]) ? x[i] : 0.0));
	return a;
}

static json_t *iarray(const int32_t *x, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(x[i]));
	return a;
}

static int need_tok(struct run *r, struct hf_err *err)
{
	if (r->tok)
		return 0;
	return hf_err_set(err, HF_ENOTFOUND,
			  "%s has no tokenizer.json: give {\"ids\": [...]} "
			  "records (--jsonl)", r->o.model);
}

/* Text to ids; add_special: the post-processor's BOS/CLS/SEP. */
static int encode(struct run *r, const char *text, size_t len, int add_special,
		  int32_t **ids, size_t *n, int32_t **types,
		  struct hf_err *err)
{
	struct hf_tok_encoding e = { 0 };
	size_t bad;

	if (!hf_utf8_valid(text, len, &bad))
		return hf_err_set(err, HF_EUTF8,
				  "invalid UTF-8 at byte %zu of the input", bad);
	if (!len) {
		static const char *const what[] = { "generate from", "embed",
						    "classify", "fill", "score" };

		return hf_err_set(err, HF_EINVAL, "empty text: nothing to %s",
				  what[r->o.task]);
	}
	if (need_tok(r, err) ||
	    hf_tok_encode(r->tctx, text, len, NULL, 0, add_special, NULL, &e,
			  err))
		return err->code;
	*ids = malloc((e.n + 1) * sizeof(int32_t));
	if (types)
		*types = malloc((e.n + 1) * sizeof(int32_t));
	if (!*ids || (types && !*types)) {
		hf_tok_encoding_free(&e);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < e.n; i++) {
		(*ids)[i] = (int32_t)e.ids[i];
		if (types)
			(*types)[i] = (int32_t)e.type_ids[i];
	}
	*n = e.n;
	hf_tok_encoding_free(&e);
	if (!*n)
		return hf_err_set(err, HF_EINVAL,
				  "empty prompt: the text encodes to no tokens");
	return 0;
}

static int render_chat(struct run *r, const json_t *messages, char **out,
		       struct hf_err *err)
{
	if (!r->chat) {
		int rc = hf_chat_load(&r->chat, r->o.model, err);

		if (rc)
			return rc;
	}
	return hf_chat_render(r->chat, NULL, messages, NULL, NULL, 1, NULL,
			      out, err);
}

/* A record of input: ids, or text (possibly through the chat template). */
struct input {
	int32_t *ids, *types;
	size_t n;
	char *text;		/* the text given (for fill-mask sequences) */
};

static void input_free(struct input *in)
{
	free(in->ids);
	free(in->types);
	free(in->text);
	memset(in, 0, sizeof(*in));
}

static int input_from_text(struct run *r, const char *s, size_t len,
			   struct input *in, struct hf_err *err)
{
	if (r->o.chat && r->o.task == TASK_GENERATE) {
		json_t *msgs = json_pack("[{s:s, s:s%}]", "role", "user",
					 "content", s, len);
		char *txt = NULL;
		int rc;

		if (!msgs) {
			size_t bad;

			if (!hf_utf8_valid(s, len, &bad))
				return hf_err_set(err, HF_EUTF8,
						  "invalid UTF-8 at byte %zu of "
						  "the input", bad);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		rc = render_chat(r, msgs, &txt, err);
		json_decref(msgs);
		if (!rc)
			rc = encode(r, txt, strlen(txt), 0, &in->ids, &in->n,
				    NULL, err);
		free(txt);
		return rc;
	}
	in->text = strndup(s, len);
	return encode(r, s, len, 1, &in->ids, &in->n,
		      r->o.task == TASK_GENERATE ? NULL : &in->types, err);
}

static int input_from_json(struct run *r, const char *line, size_t len,
			   struct input *in, struct hf_err *err)
{
	json_t *j = NULL, *v;
	int rc = 0;

	if ((rc = hf_json_load_buf(&j, line, len, "record", err)))
		return rc;
	if (!json_is_object(j)) {
		rc = hf_err_set(err, HF_EFORMAT, "record is not a JSON object");
	} else if ((v = json_object_get(j, "ids"))) {
		size_t i;
		json_t *e;

		if (!json_is_array(v) || !json_array_size(v)) {
			rc = hf_err_set(err, HF_EINVAL,
					"\"ids\" must be a non-empty array of "
					"integers");
			goto out;
		}
		in->n = json_array_size(v);
		in->ids = malloc(in->n * sizeof(int32_t));
		if (!in->ids) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		json_array_foreach(v, i, e) {
			json_int_t x = json_integer_value(e);

			if (!json_is_integer(e) || x < 0 ||
			    (size_t)x >= hf_model_vocab(r->m)) {
				rc = hf_err_set(err, HF_ERANGE,
						"\"ids\"[%zu] is not a token id of "
						"this model (0..%zu)", i,
						hf_model_vocab(r->m) - 1);
				goto out;
			}
			in->ids[i] = (int32_t)x;
		}
		if ((v = json_object_get(j, "token_type_ids"))) {
			if (!json_is_array(v) || json_array_size(v) != in->n) {
				rc = hf_err_set(err, HF_EINVAL,
						"\"token_type_ids\" must be an array "
						"as long as \"ids\"");
				goto out;
			}
			in->types = malloc(in->n * sizeof(int32_t));
			if (!in->types) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				goto out;
			}
			json_array_foreach(v, i, e)
				in->types[i] = (int32_t)json_integer_value(e);
		}
	} else if ((v = json_object_get(j, "messages"))) {
		char *txt = NULL;

		if (!json_is_array(v)) {
			rc = hf_err_set(err, HF_EFORMAT,
					"\"messages\" must be an array");
			goto out;
		}
		if (!(rc = render_chat(r, v, &txt, err)))
			rc = encode(r, txt, strlen(txt), 0, &in->ids, &in->n,
				    NULL, err);
		free(txt);
	} else if ((v = json_object_get(j, "prompt")) ||
		   (v = json_object_get(j, "text"))) {
		if (!json_is_string(v))
			rc = hf_err_set(err, HF_EFORMAT,
					"\"prompt\" must be a string");
		else
			rc = input_from_text(r, json_string_value(v),
					     json_string_length(v), in, err);
	} else {
		rc = hf_err_set(err, HF_EFORMAT,
				"record has none of \"prompt\", \"messages\", "
				"\"ids\", \"text\"");
	}
out:
	json_decref(j);
	return rc;
}

/* ---- generation ---- */

static int decode_ids(struct run *r, const int32_t *ids, size_t n,
		      char **out, struct hf_err *err)
{
	uint32_t *u;
	int rc;

	if (!r->tok) {
		*out = strdup("");
		return *out ? 0 : hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	u = malloc((n + 1) * sizeof(*u));
	if (!u)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		u[i] = (uint32_t)ids[i];
	rc = hf_tok_decode(r->tok, u, n, 1, out, NULL, err);
	free(u);
	return rc;
}

/* After each token: decode what the row has, cut at a stop string, and
 * stream the new complete characters to a terminal. */
static int on_token(void *ctx, size_t row, int32_t tok, struct hf_err *err)
{
	struct run *r = ctx;
	struct rowtext *rt = &r->rows[row];
	char *text = NULL;
	size_t len, stop_at = SIZE_MAX;
	int stop = 0;

	if (interrupted()) {	/* Ctrl-C: see generate() and chat_loop() */
		hf_err_set(err, HF_EIO, "interrupted");
		return -1;
	}
	if (rt->n == rt->cap) {
		size_t cap = rt->cap ? 2 * rt->cap : 64;
		int32_t *ids = realloc(rt->ids, cap * sizeof(*ids));

		if (!ids) {
			hf_err_set(err, HF_ENOMEM, "out of memory");
			return -1;
		}
		rt->ids = ids;
		rt->cap = cap;
	}
	rt->ids[rt->n++] = tok;
	/* without streaming or stop strings the text is decoded once, at
	 * the end */
	if (!r->tok || (!r->stream && !r->o.nstop))
		return 0;
	if (decode_ids(r, rt->ids, rt->n, &text, err))
		return -1;
	len = strlen(text);
	for (int i = 0; i < r->o.nstop; i++) {
		const char *p = strstr(text, r->o.stop[i]);

		if (p && (size_t)(p - text) < stop_at)
			stop_at = (size_t)(p - text);
	}
	if (stop_at != SIZE_MAX) {
		text[stop_at] = 0;
		len = stop_at;
		stop = 1;
	}
	if (r->stream) {
		size_t upto = len;

		/* hold back a partial character and a possible stop prefix */
		if (!stop) {
			if (upto >= 3 && !memcmp(text + upto - 3, "\xef\xbf\xbd", 3))
				upto -= 3;
			for (int i = 0; i < r->o.nstop; i++) {
				size_t sl = strlen(r->o.stop[i]);

				for (size_t k = sl - 1; k > 0; k--)
					if (upto >= k && k < sl &&
					    !memcmp(text + upto - k, r->o.stop[i], k)) {
						upto -= k;
						break;
					}
			}
		}
		if (upto > rt->printed) {
			fwrite(text + rt->printed, 1, upto - rt->printed, stdout);
			fflush(stdout);
			rt->printed = upto;
		}
	}
	free(rt->text);
	rt->text = text;
	return stop;
}

static json_t *logprobs_json(struct run *r, const struct hf_gen_row *g)
{
	json_t *a = json_array();
	size_t n = (size_t)r->o.logprobs;

	for (size_t i = 0; i < g->n; i++) {
		json_t *top = json_array();
		const char *ts;
		size_t tl = 0;

		for (size_t k = 0; k < n; k++) {
			const char *s = r->tok ? hf_tok_id_to_token(r->tok,
				(uint32_t)g->lp_ids[i * n + k], &tl) : NULL;

			json_array_append_new(top, json_pack("{s:i, s:s%, s:f}",
				"id", (int)g->lp_ids[i * n + k], "token",
				s ? s : "", s ? tl : 0, "logprob",
				(double)g->lp[i * n + k]));
		}
		ts = r->tok ? hf_tok_id_to_token(r->tok, (uint32_t)g->ids[i], &tl) :
			      NULL;
		json_array_append_new(a, json_pack("{s:i, s:s%, s:f, s:o}",
			"id", (int)g->ids[i], "token", ts ? ts : "", ts ? tl : 0,
			"logprob", (double)g->lp_tok[i], "top", top));
	}
	return a;
}

static int generate(struct run *r, struct input *ins, size_t B,
		    struct hf_err *err)
{
	struct hf_gen_opts go = { 0 };
	struct hf_gen_row *rows = calloc(B, sizeof(*rows));
	const int32_t **pr = calloc(B, sizeof(*pr));
	size_t *lens = calloc(B, sizeof(*lens));
	int rc = 0;

	r->rows = calloc(B, sizeof(*r->rows));
	r->nrows = B;
	if (!rows || !pr || !lens || !r->rows) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t b = 0; b < B; b++) {
		pr[b] = ins[b].ids;
		lens[b] = ins[b].n;
	}
	go.sp = r->sp;
	go.seed = r->o.seed;
	go.max_tokens = (size_t)r->o.max_tokens;
	go.eos = r->eos;
	go.neos = r->neos;
	go.logprobs = (size_t)r->o.logprobs;
	go.n_ctx = (size_t)r->o.ctx;
	go.on_token = on_token;
	go.ctx = r;
	r->stream = r->tty_out && !r->o.jsonl && B == 1 && r->tok;
	interrupt_soft(1);
	rc = hf_gen_run(r->m, pr, lens, B, &go, rows, err);
	interrupt_soft(0);
	if (rc && interrupted()) {
		/* Ctrl-C: the streamed text stays, the unfinished records go */
		if (r->stream)
			fputc('\n', stdout);
		interrupt_exit();
	}
	if (rc)
		goto out;
	for (size_t b = 0; b < B; b++) {
		struct hf_gen_row *g = &rows[b];
		struct rowtext *rt = &r->rows[b];
		const char *text;

		if (!rt->text && r->tok &&
		    (rc = decode_ids(r, g->ids, g->n, &rt->text, err)))
			goto out;
		text = rt->text ? rt->text : "";

		r->t_prompt_ms += b ? 0 : g->prompt_ms;
		r->t_gen_ms += b ? 0 : g->gen_ms;
		r->n_prompt += g->prompt_tokens;
		r->n_gen += g->n;
		if (r->stream) {
			fputs(text + rt->printed, stdout);
			fputc('\n', stdout);
			continue;
		}
		{
			json_t *rec = json_pack("{s:s, s:o, s:s, s:{s:I, s:I, s:f, s:f}}",
				"text", text, "ids", iarray(g->ids, g->n),
				"finish_reason", hf_finish_name(g->finish),
				"usage", "prompt_tokens",
				(json_int_t)g->prompt_tokens, "completion_tokens",
				(json_int_t)g->n, "prompt_ms", g->prompt_ms,
				"gen_ms", g->gen_ms);

			if (r->o.logprobs)
				json_object_set_new(rec, "logprobs",
						    logprobs_json(r, g));
			if (emit(rec)) {
				rc = hf_err_set(err, HF_EIO,
						"cannot write to standard output");
				goto out;
			}
		}
	}
	if (interrupted())	/* after the last token: its records are out */
		interrupt_exit();
out:
	for (size_t b = 0; rows && b < B; b++)
		hf_gen_row_free(&rows[b]);
	for (size_t b = 0; r->rows && b < B; b++) {
		free(r->rows[b].ids);
		free(r->rows[b].text);
	}
	free(r->rows);
	r->rows = NULL;
	free(rows);
	free(pr);
	free(lens);
	return rc;
}

/* ---- the other tasks ---- */

static int task_logits(struct run *r, struct input *in, struct hf_err *err)
{
	size_t V = hf_model_vocab(r->m), T = in->n;
	float *lg = malloc(T * V * sizeof(float));
	int rc;

	if (!lg)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (hf_model_is_encoder(r->m)) {
		struct hf_enc_out eo = { .mlm_logits = lg };

		rc = hf_model_encode(r->m, in->ids, in->types, NULL, 1, T, &eo,
				     err);
	} else {
		struct hf_kv *kv = NULL;
		struct hf_fwd_out fo = { .logits = lg, .all_logits = 1 };

		if (!(rc = hf_kv_new(&kv, r->m, 1, T, err)))
			rc = hf_model_forward(r->m, kv, in->ids, NULL, T, &fo,
					      err);
		hf_kv_free(kv);
	}
	if (rc) {
		free(lg);
		return rc;
	}
	if (!r->o.output) {
		json_t *rows = json_array();

		for (size_t t = 0; t < T; t++)
			json_array_append_new(rows, farray(lg + t * V, V));
		free(lg);
		return emit(json_pack("{s:o, s:o}", "ids", iarray(in->ids, T),
				      "logits", rows)) ?
			       hf_err_set(err, HF_EIO,
					  "cannot write to standard output") : 0;
	}
	{
		struct kept *k = realloc(r->keep, (r->nkeep + 1) * sizeof(*k));

		if (!k) {
			free(lg);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		r->keep = k;
		r->keep[r->nkeep].data = lg;
		r->keep[r->nkeep].shape[0] = (int64_t)T;
		r->keep[r->nkeep].shape[1] = (int64_t)V;
		r->nkeep++;
		return emit(json_pack("{s:o, s:I, s:[I, I]}", "ids",
				      iarray(in->ids, T), "record",
				      (json_int_t)(r->nkeep - 1), "shape",
				      (json_int_t)T, (json_int_t)V)) ?
			       hf_err_set(err, HF_EIO,
					  "cannot write to standard output") : 0;
	}
}

/* The tensors of -o: "logits" for a single record, else "logits.<i>". */
static int write_logits(struct run *r, struct hf_err *err)
{
	struct hf_st_writer *w;
	int rc;

	if (!r->nkeep)
		return hf_err_set(err, HF_EINVAL,
				  "no records: nothing to write to %s",
				  r->o.output);
	if ((rc = hf_st_writer_new(&w, err)))
		return rc;
	for (size_t i = 0; i < r->nkeep; i++) {
		char name[64];

		if (r->nkeep == 1)
			snprintf(name, sizeof(name), "logits");
		else
			snprintf(name, sizeof(name), "logits.%zu", i);
		if ((rc = hf_st_writer_add(w, name, HF_DTYPE_F32, 2,
					   r->keep[i].shape, r->keep[i].data,
					   err)))
			goto out;
	}
	rc = hf_st_writer_write(w, r->o.output, err);
out:
	hf_st_writer_free(w);
	return rc;
}

static int task_embed(struct run *r, struct input *in, struct hf_err *err)
{
	size_t H = hf_model_hidden(r->m), T = in->n, L = hf_model_layers(r->m);
	enum hf_pooling mode;
	int norm = 0, rc;
	float *hid, *emb;

	if ((rc = hf_model_pooling(r->m, &mode, &norm, err)))
		return rc;
	hid = malloc((L + 1) * T * H * sizeof(float));
	emb = malloc(H * sizeof(float));
	if (!hid || !emb) {
		free(hid);
		free(emb);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (hf_model_is_encoder(r->m)) {
		struct hf_enc_out eo = { .hidden = hid };

		rc = hf_model_encode(r->m, in->ids, in->types, NULL, 1, T, &eo,
				     err);
		if (!rc)
			hf_pool_hidden(emb, hid, NULL, 1, T, H, mode,
				       norm || r->o.normalize);
	} else {
		struct hf_kv *kv = NULL;
		struct hf_fwd_out fo = { .hidden = hid };

		if (!(rc = hf_kv_new(&kv, r->m, 1, T, err)))
			rc = hf_model_forward(r->m, kv, in->ids, NULL, T, &fo,
					      err);
		hf_kv_free(kv);
		if (!rc)
			hf_pool_hidden(emb, hid + L * T * H, NULL, 1, T, H, mode,
				       norm || r->o.normalize);
	}
	if (!rc && emit(json_pack("{s:o}", "embedding", farray(emb, H))))
		rc = hf_err_set(err, HF_EIO, "cannot write to standard output");
	free(hid);
	free(emb);
	return rc;
}

static int task_classify(struct run *r, struct input *in, struct hf_err *err)
{
	const struct hf_config *c = hf_model_config(r->m);
	size_t nl = hf_model_num_labels(r->m);
	struct hf_enc_out eo = { 0 };
	const char *pt = NULL;
	float *lg;
	double *p;
	int rc, multi;
	json_t *scores;

	if (!nl)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s has no sequence classification head "
				  "(classifier or score weights)", r->o.model);
	hf_json_str(c->json, "problem_type", NULL, &pt, "config.json", err);
	multi = pt && !strcmp(pt, "multi_label_classification");
	lg = malloc(nl * sizeof(float));
	p = malloc(nl * sizeof(double));
	if (!lg || !p) {
		free(lg);
		free(p);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	eo.class_logits = lg;
	if ((rc = hf_model_encode(r->m, in->ids, in->types, NULL, 1, in->n, &eo,
				  err)))
		goto out;
	{
		double mx = lg[0], s = 0.0;

		for (size_t i = 1; i < nl; i++)
			mx = lg[i] > mx ? lg[i] : mx;
		for (size_t i = 0; i < nl; i++) {
			p[i] = multi ? 1.0 / (1.0 + exp(-lg[i])) : exp(lg[i] - mx);
			s += p[i];
		}
		for (size_t i = 0; !multi && i < nl; i++)
			p[i] /= s;
	}
	scores = json_array();
	{
		size_t best = 0;
		char lab[32];

		for (size_t done = 0; done < nl; done++) {
			size_t b = SIZE_MAX;
			const char *name;

			for (size_t i = 0; i < nl; i++) {
				int used = 0;

				for (size_t k = 0; k < json_array_size(scores); k++)
					used |= json_integer_value(json_object_get(
						json_array_get(scores, k), "id")) ==
						(json_int_t)i;
				if (!used && (b == SIZE_MAX || p[i] > p[b]))
					b = i;
			}
			if (!done)
				best = b;
			snprintf(lab, sizeof(lab), "LABEL_%zu", b);
			name = (int)b < c->n_labels && c->id2label[b] ?
				       c->id2label[b] : lab;
			json_array_append_new(scores, json_pack("{s:s, s:I, s:f}",
				"label", name, "id", (json_int_t)b, "score", p[b]));
		}
		(void)best;
	}
	if (emit(json_pack("{s:O, s:O, s:o}", "label",
			   json_object_get(json_array_get(scores, 0), "label"),
			   "score", json_object_get(json_array_get(scores, 0),
						    "score"),
			   "scores", scores)))
		rc = hf_err_set(err, HF_EIO, "cannot write to standard output");
out:
	free(lg);
	free(p);
	return rc;
}

static int64_t mask_id(struct run *r)
{
	const char *mt = r->tok ? hf_tok_config_str(r->tok, "mask_token") : NULL;
	int64_t id = -1;

	if (mt)
		id = hf_tok_token_to_id(r->tok, mt, strlen(mt));
	if (id < 0 && r->tok)
		id = hf_tok_token_to_id(r->tok, "[MASK]", 6);
	if (id < 0 && r->tok)
		id = hf_tok_token_to_id(r->tok, "<mask>", 6);
	return id;
}

static int task_fill(struct run *r, struct input *in, struct hf_err *err)
{
	size_t V = hf_model_vocab(r->m), T = in->n;
	size_t k = r->o.have_top_k ? (size_t)r->o.top_k : 5;
	int64_t mid = mask_id(r);
	struct hf_enc_out eo = { 0 };
	float *lg;
	json_t *masks;
	int rc;

	if (!hf_model_is_encoder(r->m) || !hf_model_has_mlm(r->m))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s has no masked-LM head for fill-mask",
				  r->o.model);
	if (mid < 0)
		return hf_err_set(err, HF_ENOTFOUND,
				  "the tokenizer of %s has no mask token",
				  r->o.model);
	lg = malloc(T * V * sizeof(float));
	if (!lg)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	eo.mlm_logits = lg;
	if ((rc = hf_model_encode(r->m, in->ids, in->types, NULL, 1, T, &eo,
				  err))) {
		free(lg);
		return rc;
	}
	masks = json_array();
	for (size_t t = 0; t < T; t++) {
		json_t *fills;
		int32_t *top;
		float *lp;

		if (in->ids[t] != mid)
			continue;
		fills = json_array();
		top = malloc(k * sizeof(*top));
		lp = malloc(k * sizeof(*lp));
		if (!top || !lp) {
			free(top);
			free(lp);
			json_decref(fills);
			break;
		}
		hf_logprobs_top(lg + t * V, V, 0, k < V ? k : V, top, lp);
		for (size_t j = 0; j < k && j < V; j++) {
			int32_t save = in->ids[t];
			char *seq = NULL, *tokstr = NULL;

			in->ids[t] = top[j];
			if (decode_ids(r, in->ids, T, &seq, err) ||
			    decode_ids(r, &top[j], 1, &tokstr, err)) {
				in->ids[t] = save;
				free(seq);
				free(top);
				free(lp);
				json_decref(fills);
				json_decref(masks);
				free(lg);
				return err->code;
			}
			in->ids[t] = save;
			json_array_append_new(fills, json_pack("{s:I, s:s, s:f, s:s}",
				"id", (json_int_t)top[j], "token", tokstr,
				"score", exp((double)lp[j]), "sequence", seq));
			free(seq);
			free(tokstr);
		}
		json_array_append_new(masks, json_pack("{s:I, s:o}", "position",
						       (json_int_t)t, "fills", fills));
		free(top);
		free(lp);
	}
	free(lg);
	if (!json_array_size(masks)) {
		json_decref(masks);
		return hf_err_set(err, HF_EINVAL,
				  "no mask token in the input (write %s where a "
				  "word is missing)",
				  hf_tok_config_str(r->tok, "mask_token") ?
					  hf_tok_config_str(r->tok, "mask_token") :
					  "[MASK]");
	}
	return emit(json_pack("{s:o}", "masks", masks)) ?
		       hf_err_set(err, HF_EIO, "cannot write to standard output") :
		       0;
}

static int perplexity(struct run *r, struct hf_err *err)
{
	char *text = NULL;
	size_t len = 0, n = 0, cnt = 0, ctx = (size_t)r->o.ctx;
	int32_t *ids = NULL;
	double nll = 0.0;
	int rc;

	if (hf_model_is_encoder(r->m))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "--perplexity needs a causal (decoder) model");
	if (r->o.prompt) {
		text = strdup(r->o.prompt);
		len = strlen(r->o.prompt);
	} else if ((rc = hf_stream_read(&text, &len, stdin, "standard input",
					err))) {
		return rc;
	}
	if (!len) {
		rc = hf_err_set(err, HF_EINVAL, "%s holds no text to score",
				r->o.prompt ? "the prompt (-p)" : "standard input");
		goto out;
	}
	if (!ctx)
		ctx = hf_model_max_ctx(r->m);
	if (hf_model_max_positions(r->m) && ctx > hf_model_max_positions(r->m))
		ctx = hf_model_max_positions(r->m);
	if ((rc = encode(r, text, len, 1, &ids, &n, NULL, err)) ||
	    (rc = hf_gen_perplexity(r->m, ids, n, ctx,
				    r->o.stride ? (size_t)r->o.stride :
						  (ctx > 1 ? ctx / 2 : 0),
				    &nll, &cnt, err)))
		goto out;
	if (emit(json_pack("{s:f, s:f, s:I}", "perplexity", exp(nll), "nll", nll,
			   "tokens", (json_int_t)cnt)))
		rc = hf_err_set(err, HF_EIO, "cannot write to standard output");
out:
	free(text);
	free(ids);
	return rc;
}

static int run_one(struct run *r, struct input *in, size_t nin,
		   struct hf_err *err)
{
	size_t lim = hf_model_max_positions(r->m);
	int gen = r->o.task == TASK_GENERATE;

	/* no position past a learned table: the input asks too much */
	for (size_t i = 0; lim && i < nin; i++)
		if (in[i].n + (size_t)gen > lim) {
			r->past_positions = 1;
			return hf_err_set(err, HF_ERANGE,
					  "%s of %zu tokens does not fit the %zu "
					  "positions of %s's learned position "
					  "embeddings%s", gen ? "prompt" : "input",
					  in[i].n, lim,
					  hf_model_config(r->m)->model_type,
					  gen ? " (it must leave room for one "
						"more)" : "");
		}
	switch (r->o.task) {
	case TASK_GENERATE:
		if (hf_model_is_encoder(r->m))
			return hf_err_set(err, HF_EUNSUPPORTED,
					  "%s is an encoder (%s): it does not "
					  "generate; use --task embed, classify, "
					  "fill-mask or logits", r->o.model,
					  hf_model_config(r->m)->model_type);
		return generate(r, in, nin, err);
	case TASK_LOGITS:
		return task_logits(r, in, err);
	case TASK_EMBED:
		return task_embed(r, in, err);
	case TASK_CLASSIFY:
		return task_classify(r, in, err);
	case TASK_FILL:
		return task_fill(r, in, err);
	}
	return 0;
}

/* Interactive chat on a terminal: /reset, /exit; the line editor of
 * lib/core/lineedit.h when stderr, where the prompt goes, is a terminal too. */
static int chat_loop(struct run *r, struct hf_err *err)
{
	json_t *msgs = json_array();
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0, edit = isatty(STDERR_FILENO);
	struct hf_le le = { 0 };

	/* no template: say so before the first prompt, not after it */
	if (!r->chat && (rc = hf_chat_load(&r->chat, r->o.model, err))) {
		json_decref(msgs);
		return rc;
	}
	fprintf(stderr, "%s: chatting with %s; /reset starts over, /exit or "
		"end of input quits\n", prog, r->o.model);
	for (;;) {
		struct input in = { 0 };
		char *txt = NULL;

		if (edit) {	/* a terminal on both sides: edit the line */
			enum hf_le_status st;

			free(line);
			line = hf_le_readline(&le, "> ", STDIN_FILENO,
					      STDERR_FILENO, &st);
			if (st == HF_LE_INTR)
				continue;
			if (st == HF_LE_NOMEM) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				break;
			}
			if (!line)
				break;
			len = (ssize_t)strlen(line);
			hf_le_history_add(&le, line);
		} else {
			fputs("> ", stderr);
			fflush(stderr);
			if ((len = getline(&line, &cap, stdin)) < 0)
				break;
		}
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!strcmp(line, "/exit"))
			break;
		if (!strcmp(line, "/reset")) {
			json_array_clear(msgs);
			continue;
		}
		if (!len)
			continue;
		{
			size_t bad;

			if (!hf_utf8_valid(line, (size_t)len, &bad)) {
				fprintf(stderr, "%s: invalid UTF-8 at byte %zu\n",
					prog, bad);
				continue;
			}
		}
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role",
						      "user", "content", line));
		if ((rc = render_chat(r, msgs, &txt, err)) ||
		    (rc = encode(r, txt, strlen(txt), 0, &in.ids, &in.n, NULL,
				 err))) {
			free(txt);
			break;
		}
		free(txt);
		r->rows = NULL;
		{
			/* keep the reply to append it to the conversation */
			struct hf_gen_opts go = { 0 };
			struct hf_gen_row g;
			const int32_t *pr = in.ids;

			r->rows = calloc(1, sizeof(*r->rows));
			r->nrows = 1;
			r->stream = 1;
			go.sp = r->sp;
			go.seed = r->o.seed;
			go.max_tokens = (size_t)r->o.max_tokens;
			go.eos = r->eos;
			go.neos = r->neos;
			go.n_ctx = (size_t)r->o.ctx;
			go.on_token = on_token;
			go.ctx = r;
			interrupt_soft(1);
			rc = r->rows ? hf_gen_run(r->m, &pr, &in.n, 1, &go, &g, err) :
				       hf_err_set(err, HF_ENOMEM, "out of memory");
			interrupt_soft(0);
			if (rc && interrupted()) {
				/* Ctrl-C ends the reply, not the chat: the
				 * question goes too, and the prompt comes back */
				fputc('\n', stdout);
				fflush(stdout);
				json_array_remove(msgs, json_array_size(msgs) - 1);
				rc = 0;
			} else if (!rc) {
				const char *t = r->rows->text ? r->rows->text : "";

				fputs(t + r->rows->printed, stdout);
				fputc('\n', stdout);
				fflush(stdout);
				json_array_append_new(msgs, json_pack("{s:s, s:s}",
					"role", "assistant", "content", t));
				hf_gen_row_free(&g);
			}
			interrupt_clear();
			if (r->rows) {
				free(r->rows->ids);
				free(r->rows->text);
			}
			free(r->rows);
			r->rows = NULL;
		}
		input_free(&in);
		if (rc)
			break;
	}
	free(line);
	hf_le_free(&le);
	json_decref(msgs);
	return rc;
}

/* Read records (lines) from stdin and run them, --batch at a time. */
static int stream_records(struct run *r, struct hf_err *err)
{
	size_t B = r->o.task == TASK_GENERATE ? (size_t)r->o.batch : 1;
	struct input *ins = calloc(B, sizeof(*ins));
	char *line = NULL;
	size_t cap = 0, nin = 0, first = 0;
	ssize_t len;
	int rc = 0;

	if (!ins)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (;;) {
		len = getline(&line, &cap, stdin);
		if (len >= 0) {
			while (len && (line[len - 1] == '\n' ||
				       line[len - 1] == '\r'))
				line[--len] = 0;
			if (r->o.jsonl && !len)
				continue;	/* blank lines between records */
			if (!nin)
				first = r->record;
			rc = r->o.jsonl ?
				input_from_json(r, line, (size_t)len, &ins[nin], err) :
				input_from_text(r, line, (size_t)len, &ins[nin], err);
			if (rc) {
				input_free(&ins[nin]);	/* what it got so far */
				hf_err_prefix(err, "record %zu", r->record + 1);
				break;
			}
			nin++;
			r->record++;
		}
		if (nin && (nin == B || len < 0)) {
			size_t save = r->record;

			r->record = first;
			rc = run_one(r, ins, nin, err);
			r->record = save;
			for (size_t i = 0; i < nin; i++)
				input_free(&ins[i]);
			if (rc) {
				if (nin == 1)
					hf_err_prefix(err, "record %zu", first + 1);
				else
					hf_err_prefix(err, "records %zu-%zu",
						      first + 1, first + nin);
				nin = 0;
				break;
			}
			nin = 0;
		}
		if (len < 0)
			break;
	}
	for (size_t i = 0; i < nin; i++)
		input_free(&ins[i]);
	free(ins);
	free(line);
	return rc;
}

/* EOS ids: generation_config.json's eos_token_id (int or list), else
 * config.json's. */
static int load_eos(struct run *r, struct hf_err *err)
{
	const struct hf_config *c = hf_model_config(r->m);
	char *path = hf_path_join(r->o.model, "generation_config.json");
	json_t *g = NULL, *e;
	int rc = 0;

	r->neos = 0;
	if (path && hf_file_exists(path)) {
		if ((rc = hf_json_load_file(&g, path, err)))
			goto out;
		e = json_object_get(g, "eos_token_id");
		if (json_is_integer(e)) {
			r->eos[r->neos++] = json_integer_value(e);
		} else if (json_is_array(e)) {
			size_t i;
			json_t *v;

			json_array_foreach(e, i, v)
				if (json_is_integer(v) &&
				    r->neos < sizeof(r->eos) / sizeof(r->eos[0]))
					r->eos[r->neos++] = json_integer_value(v);
		}
		/* sampling defaults, as generate() reads them */
		if (!r->o.have_temp && !r->o.have_sampling) {
			int ds = 0;
			double v;

			hf_json_bool(g, "do_sample", 0, &ds, path, err);
			if (ds) {
				r->sp.temperature = 1.0f;
				r->sp.top_k = 50;
				if (!hf_json_num(g, "temperature", 1.0, &v, path, err))
					r->sp.temperature = (float)v;
				if (!hf_json_num(g, "top_k", 50, &v, path, err))
					r->sp.top_k = (size_t)v;
				if (!hf_json_num(g, "top_p", 1.0, &v, path, err))
					r->sp.top_p = (float)v;
				if (!hf_json_num(g, "min_p", 0.0, &v, path, err))
					r->sp.min_p = (float)v;
			}
			if (!hf_json_num(g, "repetition_penalty", 1.0, &v, path,
					 err) && r->o.repeat_penalty < 0)
				r->sp.repeat_penalty = (float)v;
			hf_err_clear(err);
		}
	}
	if (!r->neos)
		for (int i = 0; i < c->n_eos; i++)
			r->eos[r->neos++] = c->eos_token_id[i];
out:
	json_decref(g);
	free(path);
	return rc;
}

static int parse_task(const char *s, enum task *t)
{
	static const char *const names[] = { "generate", "embed", "classify",
					     "fill-mask", "logits" };

	for (int i = 0; i < 5; i++)
		if (!strcmp(s, names[i])) {
			*t = (enum task)i;
			return 0;
		}
	return -1;
}

enum {
	OPT_CHAT = 256, OPT_JSONL, OPT_TASK, OPT_TEMP, OPT_TOPK, OPT_TOPP,
	OPT_MINP, OPT_REP, OPT_SEED, OPT_STOP, OPT_LOGPROBS, OPT_BATCH,
	OPT_NORMALIZE, OPT_PPL, OPT_CTX, OPT_STRIDE, OPT_DTYPE, OPT_DEVICE,
	OPT_ADAPTER, OPT_MERGE,
	OPT_KV_CACHE,
};

static const struct option longopts[] = {
	{ "model", required_argument, NULL, 'm' },
	{ "prompt", required_argument, NULL, 'p' },
	{ "output", required_argument, NULL, 'o' },
	{ "max-tokens", required_argument, NULL, 'n' },
	{ "threads", required_argument, NULL, 't' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "chat", no_argument, NULL, OPT_CHAT },
	{ "jsonl", no_argument, NULL, OPT_JSONL },
	{ "task", required_argument, NULL, OPT_TASK },
	{ "temperature", required_argument, NULL, OPT_TEMP },
	{ "top-k", required_argument, NULL, OPT_TOPK },
	{ "top-p", required_argument, NULL, OPT_TOPP },
	{ "min-p", required_argument, NULL, OPT_MINP },
	{ "repeat-penalty", required_argument, NULL, OPT_REP },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "stop", required_argument, NULL, OPT_STOP },
	{ "logprobs", required_argument, NULL, OPT_LOGPROBS },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "normalize", no_argument, NULL, OPT_NORMALIZE },
	{ "perplexity", no_argument, NULL, OPT_PPL },
	{ "ctx", required_argument, NULL, OPT_CTX },
	{ "stride", required_argument, NULL, OPT_STRIDE },
	{ "dtype", required_argument, NULL, OPT_DTYPE },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "adapter", required_argument, NULL, OPT_ADAPTER },
	{ "merge", no_argument, NULL, OPT_MERGE },
	{ "kv-cache", required_argument, NULL, OPT_KV_CACHE },
	{ NULL, 0, NULL, 0 },
};

static int parse_opts(struct opts *o, int argc, char **argv)
{
	int c;
	long l;

	memset(o, 0, sizeof(*o));
	o->max_tokens = 256;
	o->batch = 1;
	o->repeat_penalty = -1;
	o->top_p = 1.0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:p:o:n:t:vh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'm':
			o->model = optarg;
			break;
		case 'p':
			o->prompt = optarg;
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'n':
			if (parse_long(optarg, 0, 1L << 30, &o->max_tokens))
				return die_usage(prog,
						 "bad --max-tokens '%s'", optarg);
			break;
		case 't':
			if (parse_long(optarg, 1, 1024, &o->threads))
				return die_usage(prog, "bad --threads '%s'",
						 optarg);
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		case OPT_CHAT:
			o->chat = 1;
			break;
		case OPT_JSONL:
			o->jsonl = 1;
			break;
		case OPT_TASK:
			if (parse_task(optarg, &o->task))
				return die_usage(prog,
						 "unknown --task '%s'", optarg);
			break;
		case OPT_TEMP:
			if (parse_double(optarg, &o->temperature) ||
			    o->temperature < 0)
				return die_usage(prog,
						 "bad --temperature '%s'", optarg);
			o->have_temp = 1;
			break;
		case OPT_TOPK:
			if (parse_long(optarg, 0, 1L << 30, &o->top_k))
				return die_usage(prog, "bad --top-k '%s'",
						 optarg);
			o->have_sampling = o->have_top_k = 1;
			break;
		case OPT_TOPP:
			if (parse_double(optarg, &o->top_p) || o->top_p <= 0 ||
			    o->top_p > 1)
				return die_usage(prog, "bad --top-p '%s'",
						 optarg);
			o->have_sampling = 1;
			break;
		case OPT_MINP:
			if (parse_double(optarg, &o->min_p) || o->min_p < 0 ||
			    o->min_p > 1)
				return die_usage(prog, "bad --min-p '%s'",
						 optarg);
			o->have_sampling = 1;
			break;
		case OPT_REP:
			if (parse_double(optarg, &o->repeat_penalty) ||
			    o->repeat_penalty <= 0)
				return die_usage(prog,
						 "bad --repeat-penalty '%s'", optarg);
			break;
		case OPT_SEED:
			if (parse_long(optarg, 0, INT64_MAX >> 1, &l))
				return die_usage(prog, "bad --seed '%s'",
						 optarg);
			o->seed = (uint64_t)l;
			break;
		case OPT_STOP:
			if (o->nstop == MAX_STOP || !*optarg)
				return die_usage(prog,
						 "--stop: at most %d non-empty "
						 "strings", MAX_STOP);
			o->stop[o->nstop++] = optarg;
			break;
		case OPT_LOGPROBS:
			if (parse_long(optarg, 0, 100, &o->logprobs))
				return die_usage(prog,
						 "bad --logprobs '%s' (0..100)",
						 optarg);
			break;
		case OPT_BATCH:
			if (parse_long(optarg, 1, 4096, &o->batch))
				return die_usage(prog, "bad --batch '%s'",
						 optarg);
			break;
		case OPT_NORMALIZE:
			o->normalize = 1;
			break;
		case OPT_PPL:
			o->perplexity = 1;
			break;
		case OPT_CTX:
			if (parse_long(optarg, 2, 1L << 30, &o->ctx))
				return die_usage(prog, "bad --ctx '%s'",
						 optarg);
			break;
		case OPT_STRIDE:
			if (parse_long(optarg, 1, 1L << 30, &o->stride))
				return die_usage(prog, "bad --stride '%s'",
						 optarg);
			break;
		case OPT_DTYPE:
			if (!strcmp(optarg, "f32") || !strcmp(optarg, "float32") ||
			    !strcmp(optarg, "auto")) {
				o->bf16 = 0;
			} else if (!strcmp(optarg, "bf16") ||
				   !strcmp(optarg, "bfloat16")) {
				o->bf16 = 1;
			} else if (!strcmp(optarg, "f16") ||
				   !strcmp(optarg, "float16")) {
				fprintf(stderr, "%s: --dtype %s: f16 compute is not "
					"built (f32 or bf16)\n", prog, optarg);
				return 1;
			} else {
				return die_usage(prog, "bad --dtype '%s' "
						 "(f32 or bf16)", optarg);
			}
			break;
		case OPT_DEVICE:
			o->device = optarg;
			break;
		case OPT_ADAPTER:
			o->adapter = optarg;
			break;
		case OPT_MERGE:
			o->merge = 1;
			break;
		case OPT_KV_CACHE:
			if (hf_kv_type_parse(optarg) < 0)
				return die_usage(prog, "bad --kv-cache '%s' "
						 "(f32, f16, bf16, int8 or q4)",
						 optarg);
			o->kv_cache = optarg;
			break;
		default:
			return die_bad_option(prog, c, argv);
		}
	}
	if (optind < argc)
		return die_usage(prog, "unexpected argument '%s'",
				 argv[optind]);
	if (!o->model)
		return die_usage(prog, "-m <model> is required");
	if (!o->device && getenv("HF_DEVICE") && *getenv("HF_DEVICE"))
		o->device = getenv("HF_DEVICE");
	if (o->device && strcmp(o->device, "cpu") &&
	    strcmp(o->device, "vulkan") && strcmp(o->device, "auto"))
		return die_usage(prog, "unknown device '%s' (--device "
				 "or HF_DEVICE: cpu, vulkan or auto)",
				 o->device);
	if (o->merge && !o->adapter)
		return die_usage(prog, "--merge needs --adapter <adapter>");
	if (o->output && o->merge) {
		if (o->task != TASK_GENERATE || o->prompt || o->chat ||
		    o->perplexity)
			return die_usage(prog, "--merge -o <dir> writes the merged "
					 "model and runs nothing");
		return 0;
	}
	if (o->output && o->task != TASK_LOGITS)
		return die_usage(prog, "-o is for --task logits (or --merge)");
	if (o->chat && o->task != TASK_GENERATE)
		return die_usage(prog, "--chat is for generation");
	/* --perplexity scores all of stdin as plain text: a task, a chat or
	 * records would each be ignored, so they are refused */
	if (o->perplexity && (o->task != TASK_GENERATE || o->chat || o->jsonl))
		return die_usage(prog, "--perplexity scores plain text: not with "
				 "%s", o->chat ? "--chat" : o->jsonl ? "--jsonl" :
				 "--task");
	if (o->normalize && o->task != TASK_EMBED)
		return die_usage(prog, "--normalize is for --task embed");
	if (o->stride && !o->perplexity)
		return die_usage(prog, "--stride is for --perplexity");
	return 0;
}

/* -v on a device: the device time of each op kind over the whole run,
 * from the backend's timestamp queries, largest first. */
static void print_device_profile(struct hf_backend *be)
{
	const char *names[64];
	double ms[64], total = 0;
	size_t n = hf_backend_vulkan_profile(be, names, ms, 64);

	for (size_t i = 0; i < n; i++)
		total += ms[i];
	for (size_t i = 0; i < n; i++) {
		size_t best = i;

		for (size_t j = i + 1; j < n; j++)
			if (ms[j] > ms[best])
				best = j;
		if (best != i) {
			const char *tn = names[i];
			double tm = ms[i];

			names[i] = names[best];
			ms[i] = ms[best];
			names[best] = tn;
			ms[best] = tm;
		}
		fprintf(stderr, "%s: device %-22s %9.2f ms %5.1f%%\n", prog,
			names[i], ms[i], total > 0 ? 100 * ms[i] / total : 0.0);
	}
}

int cmd_run(int argc, char **argv)
{
	struct run r;
	struct hf_err err = { 0 };
	char *tokpath = NULL, *model_dir = NULL, *adapter_dir = NULL;
	double t0;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = parse_opts(&r.o, argc, argv);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (r.o.verbose)
		hf_log_set_level(HF_LOG_INFO);
	t0 = now_ms();
	if (resolve_model(&model_dir, r.o.model, &err))
		return die_err(prog, &err);
	r.o.model = model_dir;
	if (r.o.adapter) {
		if (resolve_model(&adapter_dir, r.o.adapter, &err)) {
			rc = die_err(prog, &err);
			goto out;
		}
		r.o.adapter = adapter_dir;
	}
	if (r.o.merge && r.o.output) {
		if (hf_merge_adapter(r.o.model, r.o.adapter, r.o.output, &err)) {
			rc = die_err(prog, &err);
			goto out;
		}
		printf("%s\n", r.o.output);
		rc = finish_stdout(prog);
		goto out;
	}
	if (r.o.device && (!strcmp(r.o.device, "vulkan") ||
			   (!strcmp(r.o.device, "auto") &&
			    hf_backend_vulkan_has_gpu())) &&
	    hf_backend_vulkan_create(&r.be, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	if (hf_model_open(&r.m, r.o.model, r.be, (int)r.o.threads, &err) ||
	    (r.o.bf16 && hf_backend_cpu_set_compute(hf_model_backend(r.m),
						    HF_DTYPE_BF16, &err))) {
		rc = die_err(prog, &err);
		goto out;
	}
	if (r.o.adapter && hf_peft_apply(r.m, r.o.adapter, r.o.merge, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	if (r.o.kv_cache && !hf_model_is_encoder(r.m) &&
	    hf_model_set_kv_cache(r.m, r.o.kv_cache, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	tokpath = hf_path_join(r.o.model, "tokenizer.json");
	if (tokpath && hf_file_exists(tokpath) &&
	    (hf_tok_load(&r.tok, r.o.model, &err) ||
	     hf_tok_ctx_create(&r.tctx, r.tok, &err))) {
		rc = die_err(prog, &err);
		goto out;
	}
	r.load_ms = now_ms() - t0;
	hf_sample_defaults(&r.sp);
	r.sp.temperature = 0.0f;	/* greedy unless asked */
	if (load_eos(&r, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	if (r.o.have_temp || r.o.have_sampling) {
		r.sp.temperature = r.o.have_temp ? (float)r.o.temperature : 1.0f;
		r.sp.top_k = (size_t)r.o.top_k;
		r.sp.top_p = (float)r.o.top_p;
		r.sp.min_p = (float)r.o.min_p;
	}
	if (r.o.repeat_penalty > 0)
		r.sp.repeat_penalty = (float)r.o.repeat_penalty;
	r.tty_out = isatty(STDOUT_FILENO);
	if (r.o.task == TASK_GENERATE && !r.o.perplexity &&
	    hf_model_is_encoder(r.m)) {
		rc = die(prog, "%s is an encoder (%s): it does not generate; use "
			 "--task embed, classify, fill-mask or logits", r.o.model,
			 hf_model_config(r.m)->model_type);
		goto out;
	}
	if (r.o.verbose) {
		const char *dev = hf_backend_name(hf_model_backend(r.m));
		int cpu = !strcmp(dev, "cpu");

		fprintf(stderr, "%s: loaded %s (%s, %zu layers) in %.0f ms on "
			"%s%s%s%s\n", prog, r.o.model,
			hf_model_config(r.m)->model_type, hf_model_layers(r.m),
			r.load_ms, dev, cpu ? " (" : "",
			cpu ? hf_matmul_isa_name() : "", cpu ? " kernels)" : "");
		if (!hf_model_is_encoder(r.m))
			fprintf(stderr, "%s: KV cache %s: %zu bytes a token "
				"(%.1f MiB a 1024-token context)\n", prog,
				hf_model_kv_cache(r.m),
				hf_model_kv_token_bytes(r.m),
				hf_model_kv_token_bytes(r.m) * 1024.0 /
				1048576.0);
	}
	if (r.o.perplexity) {
		rc = perplexity(&r, &err);
	} else if (r.o.prompt) {
		struct input in = { 0 };

		rc = input_from_text(&r, r.o.prompt, strlen(r.o.prompt), &in, &err);
		if (!rc)
			rc = run_one(&r, &in, 1, &err);
		input_free(&in);
	} else if (r.o.chat && isatty(STDIN_FILENO) && !r.o.jsonl) {
		rc = chat_loop(&r, &err);
	} else {
		rc = stream_records(&r, &err);
	}
	if (!rc && r.o.output)
		rc = write_logits(&r, &err);
	if (rc) {
		rc = die_err(prog, &err);
		if (r.past_positions)
			rc = 2;
		goto out;
	}
	if (r.o.verbose && r.n_prompt)
		fprintf(stderr, "%s: prompt %zu tokens, %.1f tokens/s; generation "
			"%zu tokens, %.1f tokens/s\n", prog, r.n_prompt,
			r.t_prompt_ms > 0 ? r.n_prompt * 1e3 / r.t_prompt_ms : 0.0,
			r.n_gen, r.t_gen_ms > 0 ? r.n_gen * 1e3 / r.t_gen_ms : 0.0);
	if (r.o.verbose && r.be)
		print_device_profile(r.be);
	rc = finish_stdout(prog);
out:
	for (size_t i = 0; i < r.nkeep; i++)
		free(r.keep[i].data);
	free(r.keep);
	hf_chat_free(r.chat);
	hf_tok_ctx_free(r.tctx);
	hf_tok_free(r.tok);
	hf_model_free(r.m);
	hf_backend_free(r.be);
	free(tokpath);
	free(model_dir);
	free(adapter_dir);
	return rc;
}
