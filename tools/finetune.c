/* tools/finetune.c: hf-finetune, fine-tune a model on JSON Lines data.
 * Today: --grads, the loss and float32 gradients of the first batch
 * (lib/model/train.h), the check every training mode is built on. The
 * training loop and its options join the same parser: an option is a
 * row of longopts, a field of struct opts and a line of usage. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model/model.h"
#include "model/train.h"
#include "st/st.h"
#include "core/file.h"
#include "core/json.h"
#include "core/progress.h"
#include "tok/chat/chat.h"
#include "tok/tok.h"
#include "train/ckpt.h"
#include "train/data.h"
#include "train/mpi.h"
#include "train/optim.h"
#include "train/lora.h"
#include "train/peft.h"
#include "gen/gen.h"
#include "model/adapter.h"
#include "train/sched.h"
#include <sys/stat.h>

static const char prog[] = "hf-finetune";

static const char usage[] =
	"usage: hf-finetune -m <model> --data <file.jsonl> [options] -o <dir>\n"
	"       hf-finetune -m <model> --data <file.jsonl> [--batch <n>] "
	"--grads <out.safetensors>\n"
	"                   [--checkpointing] [-t <threads>]\n"
	"options:\n"
	"  -o, --output <dir>         write the fine-tuned model (and checkpoint-N/)\n"
	"      --epochs <n>           passes over the data (default 3)\n"
	"      --max-steps <n>        optimizer steps, overriding --epochs\n"
	"      --grad-accum <n>       micro-batches an optimizer step (default 1)\n"
	"      --lr <rate>            peak learning rate (default 5e-5)\n"
	"      --weight-decay <w>     AdamW's decoupled decay (default 0)\n"
	"      --warmup <n|ratio>     warmup steps, or a ratio of all in [0, 1)\n"
	"      --schedule <name>      linear (default), cosine, constant,\n"
	"                             constant_with_warmup\n"
	"      --clip <norm>          clip the global gradient norm (default 1; 0 off)\n"
	"      --eval <file.jsonl>    records to report eval_loss on\n"
	"      --eval-every <n>       evaluate every n steps (default: at the end)\n"
	"      --save-every <n>       write a resumable checkpoint every n steps\n"
	"      --resume <dir>         continue from a checkpoint (or the latest in dir)\n"
	"      --seed <n>             data order (default 42)\n"
	"      --seq-len <n>          longest row in tokens (default 1024)\n"
	"      --pack                 pack records into rows of --seq-len\n"
	"      --truncate             cut records longer than --seq-len\n"
	"      --lora-r <r>           train a LoRA adapter of rank r (base frozen);\n"
	"                             -o gets adapter_config.json and\n"
	"                             adapter_model.safetensors as PEFT saves them\n"
	"      --lora-alpha <a>       LoRA scaling numerator (default 8)\n"
	"      --lora-dropout <p>     dropout on the adapters' input (default 0)\n"
	"      --target <list>        modules to adapt: q_proj,v_proj,... or\n"
	"                             all-linear (default: PEFT's for the model type)\n"
	"      --rslora               scale by alpha / sqrt(r) instead of alpha / r\n"
	"  -m, --model <model>        model directory, or org/name[@rev] from "
	"the Hub cache\n"
	"      --data <file.jsonl>    training records, one JSON object a line\n"
	"      --batch <n>            records per batch and rank (default 8; 1 with\n"
	"                             --grads)\n"
	"      --grads <file>         write the gradients of the first batch "
	"(float32\n"
	"                             safetensors) and print its loss and "
	"gradient norm;\n"
	"                             nothing is updated\n"
	"      --checkpointing        recompute each layer's activations in the "
	"backward\n"
	"                             pass (less memory, one more forward)\n"
	"  -t, --threads <n>          compute threads (default: all CPUs)\n"
	"  -h, --help\n";

struct opts {
	const char *model, *data, *grads;
	long batch, threads;
	int checkpointing;
	/* the training loop */
	const char *out, *eval, *resume, *warmup;
	long epochs, max_steps, grad_accum, eval_every, save_every, seed, seq_len;
	double lr, weight_decay, clip;
	enum hf_sched_kind schedule;
	int pack, truncate;
	/* LoRA */
	long lora_r;
	double lora_alpha, lora_dropout;
	const char *target;
	int rslora;
};

enum { OPT_DATA = 256, OPT_BATCH, OPT_GRADS, OPT_CKPT,
       OPT_EPOCHS, OPT_MAX_STEPS, OPT_ACCUM, OPT_LR, OPT_WD, OPT_WARMUP,
       OPT_SCHED, OPT_CLIP, OPT_EVAL, OPT_EVAL_EVERY, OPT_SAVE_EVERY,
       OPT_RESUME, OPT_SEED, OPT_SEQ_LEN, OPT_PACK, OPT_TRUNCATE,
       OPT_LORA_R, OPT_LORA_ALPHA, OPT_LORA_DROPOUT, OPT_TARGET, OPT_RSLORA };

static const struct option longopts[] = {
	{ "model", required_argument, NULL, 'm' },
	{ "data", required_argument, NULL, OPT_DATA },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "grads", required_argument, NULL, OPT_GRADS },
	{ "checkpointing", no_argument, NULL, OPT_CKPT },
	{ "output", required_argument, NULL, 'o' },
	{ "epochs", required_argument, NULL, OPT_EPOCHS },
	{ "max-steps", required_argument, NULL, OPT_MAX_STEPS },
	{ "grad-accum", required_argument, NULL, OPT_ACCUM },
	{ "lr", required_argument, NULL, OPT_LR },
	{ "weight-decay", required_argument, NULL, OPT_WD },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "schedule", required_argument, NULL, OPT_SCHED },
	{ "clip", required_argument, NULL, OPT_CLIP },
	{ "eval", required_argument, NULL, OPT_EVAL },
	{ "eval-every", required_argument, NULL, OPT_EVAL_EVERY },
	{ "save-every", required_argument, NULL, OPT_SAVE_EVERY },
	{ "resume", required_argument, NULL, OPT_RESUME },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "seq-len", required_argument, NULL, OPT_SEQ_LEN },
	{ "pack", no_argument, NULL, OPT_PACK },
	{ "truncate", no_argument, NULL, OPT_TRUNCATE },
	{ "lora-r", required_argument, NULL, OPT_LORA_R },
	{ "lora-alpha", required_argument, NULL, OPT_LORA_ALPHA },
	{ "lora-dropout", required_argument, NULL, OPT_LORA_DROPOUT },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "rslora", no_argument, NULL, OPT_RSLORA },
	{ "threads", required_argument, NULL, 't' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* 0 to go on, -1 after --help, 2 on a usage error. */
static int parse_opts(struct opts *o, int argc, char **argv)
{
	struct hf_err err = { 0 };
	int c, batch_set = 0;
	long *lp;
	double *dp;
	const char *name;

	memset(o, 0, sizeof(*o));
	o->batch = 8;
	o->epochs = 3;
	o->grad_accum = 1;
	o->lr = 5e-5;
	o->clip = 1.0;
	o->seed = 42;
	o->seq_len = 1024;
	o->schedule = HF_SCHED_LINEAR;
	o->lora_alpha = 8.0;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":m:t:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->out = optarg;
			break;
		case OPT_EVAL:
			o->eval = optarg;
			break;
		case OPT_RESUME:
			o->resume = optarg;
			break;
		case OPT_PACK:
			o->pack = 1;
			break;
		case OPT_TRUNCATE:
			o->truncate = 1;
			break;
		case OPT_LORA_R:
			if (parse_long(optarg, 1, 1L << 20, &o->lora_r))
				return die_usage(prog, "--lora-r '%s': want a rank, 1 or more", optarg);
			break;
		case OPT_LORA_ALPHA:
			if (parse_double(optarg, &o->lora_alpha) || !isfinite(o->lora_alpha))
				return die_usage(prog, "--lora-alpha '%s': want a number", optarg);
			break;
		case OPT_LORA_DROPOUT:
			if (parse_double(optarg, &o->lora_dropout) || !(o->lora_dropout >= 0.0) ||
			    !(o->lora_dropout < 1.0))
				return die_usage(prog, "--lora-dropout '%s': want a probability in [0, 1)",
						 optarg);
			break;
		case OPT_TARGET:
			if (!*optarg)
				return die_usage(prog, "--target: want module names or all-linear");
			o->target = optarg;
			break;
		case OPT_RSLORA:
			o->rslora = 1;
			break;
		case OPT_SCHED:
			if (hf_sched_parse(&o->schedule, optarg, &err))
				return die_usage(prog, "--schedule: %s", err.msg);
			break;
		case OPT_WARMUP:
			{
				uint64_t w;

				if (hf_sched_warmup(&w, optarg, 1, &err))
					return die_usage(prog, "--%s", err.msg);
			}
			o->warmup = optarg;
			break;
		case OPT_EPOCHS: lp = &o->epochs; name = "epochs"; goto count;
		case OPT_MAX_STEPS: lp = &o->max_steps; name = "max-steps"; goto count;
		case OPT_ACCUM: lp = &o->grad_accum; name = "grad-accum"; goto count;
		case OPT_EVAL_EVERY: lp = &o->eval_every; name = "eval-every"; goto count;
		case OPT_SAVE_EVERY: lp = &o->save_every; name = "save-every"; goto count;
		case OPT_SEED: lp = &o->seed; name = "seed"; goto count;
		case OPT_SEQ_LEN: lp = &o->seq_len; name = "seq-len"; goto count;
count:
			if (parse_long(optarg, c == OPT_SEED || c == OPT_EVAL_EVERY ||
					       c == OPT_SAVE_EVERY || c == OPT_MAX_STEPS ? 0 : 1,
				       1L << 40, lp))
				return die_usage(prog, "--%s '%s': want a whole number%s", name,
						 optarg, c == OPT_SEED ? "" : ", 1 or more");
			break;
		case OPT_LR: dp = &o->lr; name = "lr"; goto real;
		case OPT_WD: dp = &o->weight_decay; name = "weight-decay"; goto real;
		case OPT_CLIP: dp = &o->clip; name = "clip"; goto real;
real:
			if (parse_double(optarg, dp) || !(*dp >= 0.0) || !isfinite(*dp))
				return die_usage(prog, "--%s '%s': want a number, 0 or more", name,
						 optarg);
			break;
		case 'm':
			o->model = optarg;
			break;
		case OPT_DATA:
			o->data = optarg;
			break;
		case OPT_BATCH:
			if (parse_long(optarg, 1, 1L << 20, &o->batch))
				return die_usage(prog, "--batch '%s': want a "
						 "count of records, 1 or more",
						 optarg);
			batch_set = 1;
			break;
		case OPT_GRADS:
			o->grads = optarg;
			break;
		case OPT_CKPT:
			o->checkpointing = 1;
			break;
		case 't':
			if (parse_long(optarg, 1, 4096, &o->threads))
				return die_usage(prog, "--threads '%s': want a "
						 "number of threads, 1 to 4096",
						 optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return die_bad_option(prog, c, argv);
		}
	}
	if (optind < argc)
		return die_usage(prog, "unexpected argument '%s'", argv[optind]);
	if (!o->model)
		return die_usage(prog, "-m <model> is required");
	if (!o->data)
		return die_usage(prog, "--data <file.jsonl> is required");
	if (o->grads) {
		if (!batch_set)
			o->batch = 1;
		if (o->out)
			return die_usage(prog, "--grads and -o exclude each other");
		return 0;
	}
	if (!o->out)
		return die_usage(prog, "-o <dir> (or --grads <file>) is required");
	if (o->pack && !o->seq_len)
		return die_usage(prog, "--pack needs --seq-len");
	if (!o->lora_r && (o->target || o->rslora || o->lora_dropout > 0.0 || o->lora_alpha != 8.0))
		return die_usage(prog, "--lora-alpha, --lora-dropout, --target and --rslora need --lora-r <r>");
	return 0;
}

/* One batch of B records of T tokens, row-major. */
struct batch {
	int32_t *ids, *labels;
	size_t B, T;
};

/* Array key of record obj into dst (n values), each an integer in
 * int32 range. */
static int int_list(const json_t *a, int32_t *dst, const char *path,
		    size_t line, const char *key, struct hf_err *err)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) {
		json_int_t x;

		if (!json_is_integer(v))
			return hf_err_set(err, HF_EFORMAT,
					  "%s:%zu: '%s'[%zu] is not an integer",
					  path, line, key, i);
		x = json_integer_value(v);
		if (x < INT32_MIN || x > INT32_MAX)
			return hf_err_set(err, HF_ERANGE,
					  "%s:%zu: '%s'[%zu] = %lld is out of "
					  "range", path, line, key, i,
					  (long long)x);
		dst[i] = (int32_t)x;
	}
	return 0;
}

/* The first B records {"ids": [...], "labels": [...]} of path ("labels"
 * absent: the ids), all of one length. Blank lines are skipped. A
 * minimal reader of the pre-tokenized records that --grads needs; the
 * other record kinds are lib/train/data's. */
static int read_batch(struct batch *bt, const char *path, size_t B,
		      struct hf_err *err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0, got = 0;
	ssize_t len;
	int rc = 0;

	memset(bt, 0, sizeof(*bt));
	if (!f)
		return hf_err_set(err, HF_EIO, "cannot open '%s': %s", path,
				  strerror(errno));
	while (got < B && (len = getline(&line, &cap, f)) >= 0) {
		json_error_t je;
		json_t *r, *ids, *lab;
		size_t n;

		lineno++;
		if (strspn(line, " \t\r\n") == (size_t)len)
			continue;
		r = json_loadb(line, (size_t)len, 0, &je);
		if (!r) {
			rc = hf_err_set(err, HF_EFORMAT,
					"%s:%zu: malformed JSON: %s", path,
					lineno, je.text);
			goto out;
		}
		ids = json_object_get(r, "ids");
		lab = json_object_get(r, "labels");
		if (!json_is_object(r) || !json_is_array(ids) ||
		    (lab && !json_is_array(lab))) {
			rc = hf_err_set(err, HF_EFORMAT,
					"%s:%zu: want a record {\"ids\": [...], "
					"\"labels\": [...]}", path, lineno);
			json_decref(r);
			goto out;
		}
		n = json_array_size(ids);
		if (!n || (lab && json_array_size(lab) != n)) {
			rc = hf_err_set(err, HF_EFORMAT,
					n ? "%s:%zu: %zu labels for %zu ids" :
					    "%s:%zu: no ids",
					path, lineno,
					lab ? json_array_size(lab) : 0, n);
			json_decref(r);
			goto out;
		}
		if (!got) {
			bt->T = n;
			bt->ids = malloc(B * n * sizeof(int32_t));
			bt->labels = malloc(B * n * sizeof(int32_t));
			if (!bt->ids || !bt->labels) {
				rc = hf_err_set(err, HF_ENOMEM,
						"out of memory");
				json_decref(r);
				goto out;
			}
		} else if (n != bt->T) {
			rc = hf_err_set(err, HF_EFORMAT,
					"%s:%zu: %zu ids, the first record has "
					"%zu (the records of a batch must be of "
					"one length)", path, lineno, n, bt->T);
			json_decref(r);
			goto out;
		}
		rc = int_list(ids, bt->ids + got * n, path, lineno, "ids", err);
		if (!rc)
			rc = int_list(lab ? lab : ids, bt->labels + got * n,
				      path, lineno, lab ? "labels" : "ids",
				      err);
		json_decref(r);
		if (rc)
			goto out;
		got++;
	}
	if (ferror(f)) {
		rc = hf_err_set(err, HF_EIO, "cannot read '%s': %s", path,
				strerror(errno));
	} else if (!got) {
		rc = hf_err_set(err, HF_EFORMAT, "%s: no records", path);
	} else if (got < B) {
		rc = hf_err_set(err, HF_EFORMAT,
				"%s: %zu record%s, --batch %zu needs %zu", path,
				got, got == 1 ? "" : "s", B, B);
	}
	bt->B = got;
out:
	free(line);
	fclose(f);
	return rc;
}

/* Every trainable parameter's gradient, F32, under its stored name. */
static int write_grads(struct hf_train *t, const char *path,
		       struct hf_err *err)
{
	struct hf_st_writer *w = NULL;
	int rc;

	if ((rc = hf_st_writer_new(&w, err)))
		return rc;
	for (size_t i = 0; i < hf_train_nparams(t); i++) {
		const struct hf_param *p = hf_train_param(t, i);

		if (p->g && (rc = hf_st_writer_add(w, p->name, HF_DTYPE_F32,
						   p->ndim, p->shape, p->g,
						   err)))
			goto out;
	}
	rc = hf_st_writer_write(w, path, err);
out:
	hf_st_writer_free(w);
	return rc;
}

static int grads(const struct opts *o, struct hf_model *m)
{
	struct hf_err err = { 0 };
	struct hf_train_opts to = { .checkpointing = o->checkpointing };
	struct hf_train *t = NULL;
	struct batch bt;
	double loss;
	size_t count;
	int rc;

	if (read_batch(&bt, o->data, (size_t)o->batch, &err) ||
	    hf_train_new(&t, m, &to, &err) ||
	    hf_train_step(t, bt.ids, bt.labels, NULL, bt.B, bt.T, 0, &loss,
			  &count, &err) ||
	    write_grads(t, o->grads, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	printf("{\"loss\": %.9g, \"grad_norm\": %.9g}\n", loss,
	       hf_train_grad_norm(t));
	rc = 0;
out:
	hf_train_free(t);
	free(bt.ids);
	free(bt.labels);
	return rc;
}

/* ---- the training loop (lib/train: optim, sched, data, ckpt, mpi) ---- */

/* Shortest text that reads back as the same double, as Python's repr. */
static void num(char *buf, size_t cap, double v)
{
	if (!isfinite(v)) {
		snprintf(buf, cap, "null");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(buf, cap, "%.1f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* The options a checkpoint records; a resume must give the same ones
 * (those that change the trajectory: all but eval, saving and output). */
static json_t *options_json(const struct opts *o, int world)
{
	json_t *j = json_pack("{s:f, s:f, s:s, s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:i}",
			 "lr", o->lr, "weight_decay", o->weight_decay,
			 "schedule", hf_sched_name(o->schedule),
			 "warmup", o->warmup ? o->warmup : "0", "clip", o->clip,
			 "epochs", (json_int_t)o->epochs, "max_steps", (json_int_t)o->max_steps,
			 "batch", (json_int_t)o->batch, "grad_accum", (json_int_t)o->grad_accum,
			 "seed", (json_int_t)o->seed, "seq_len", (json_int_t)o->seq_len,
			 "pack", o->pack, "truncate", o->truncate, "world", world);

	if (j && o->lora_r)
		json_object_set_new(j, "lora", json_pack("{s:I, s:f, s:f, s:s, s:b}",
							 "r", (json_int_t)o->lora_r,
							 "alpha", o->lora_alpha,
							 "dropout", o->lora_dropout,
							 "target", o->target ? o->target : "",
							 "rslora", o->rslora));
	return j;
}

static int same_options(const char *dir, const json_t *was, const json_t *now,
			struct hf_err *err)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)now, k, v) {
		json_t *w = json_object_get(was, k);

		if (!w || !json_equal(w, v)) {
			char *a = w ? json_dumps(w, JSON_ENCODE_ANY) : NULL;
			char *b = json_dumps(v, JSON_ENCODE_ANY);
			int rc = hf_err_set(err, HF_EINVAL,
					    "checkpoint '%s' was made with %s %s, this run has %s (a resume continues the same run)",
					    dir, k, a ? a : "nothing", b ? b : "?");

			free(a);
			free(b);
			return rc;
		}
	}
	return 0;
}

struct run {
	const struct opts *o;
	const char *model_dir;
	struct hf_train *t;
	struct hf_params ps;		/* trainable: what AdamW updates */
	struct hf_params all;		/* every parameter: what is written */
	struct hf_adamw *opt;
	struct hf_data *data, *eval;
	struct hf_train_state st;
	uint64_t total, per_epoch;
	int rank, world;
	char *last_ckpt;		/* the checkpoint written last, to replace */
	/* LoRA (--lora-r): the adapters hung on the targeted linears; ps
	 * holds their A and B under PEFT's keys, all is unused */
	struct hf_peft_config pc;
	struct hf_lora_layer *lora;
	struct hf_peft_tensors *lt;
	size_t nlora;
};

/* Every parameter of t into all (w borrowed; g NULL while frozen), the
 * trainable ones into ps too. */
static int bind_params(struct run *r, struct hf_err *err)
{
	for (size_t i = 0; i < hf_train_nparams(r->t); i++) {
		struct hf_param *p = hf_train_param(r->t, i);
		int rc = hf_params_add(&r->all, p->name, p->ndim, p->shape, p->w, p->g, NULL, err);

		if (!rc && p->g)
			rc = hf_params_add(&r->ps, p->name, p->ndim, p->shape, p->w, p->g, NULL, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* --target's list (comma separated) or all-linear into c. */
static int lora_targets(struct hf_peft_config *c, const char *spec, struct hf_err *err)
{
	const char *p = spec;

	if (!strcmp(spec, "all-linear")) {
		c->all_linear = 1;
		return 0;
	}
	while (*p) {
		size_t len = strcspn(p, ",");
		char **t;

		if (!len)
			return hf_err_set(err, HF_EINVAL, "--target '%s': an empty module name", spec);
		t = realloc(c->targets, (c->ntargets + 1) * sizeof(*t));
		if (!t)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		c->targets = t;
		if (!(t[c->ntargets] = strndup(p, len)))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		c->ntargets++;
		p += len;
		if (*p == ',' && !*++p)
			return hf_err_set(err, HF_EINVAL, "--target '%s': an empty module name", spec);
	}
	return 0;
}

/* LoRA: the config from the options, the targets resolved on m by PEFT's
 * rules, the base frozen, an hf_lora_layer on each targeted linear with
 * A (PEFT's init, seeded per module) and B (zero) as the only trainable
 * parameters, named as PEFT saves them. */
static int lora_setup(struct run *r, struct hf_model *m, const char *model_type,
		      struct hf_err *err)
{
	const struct opts *o = r->o;
	struct hf_lin_module *mods = NULL;
	struct hf_peft_target *tg = NULL;
	size_t nmods = 0, ntg = 0;
	float *init = NULL;
	int rc;

	if ((rc = hf_peft_config_init(&r->pc, err)))
		return rc;
	r->pc.r = (size_t)o->lora_r;
	r->pc.alpha = o->lora_alpha;
	r->pc.dropout = o->lora_dropout;
	r->pc.use_rslora = o->rslora;
	free(r->pc.base_model);
	if (!(r->pc.base_model = strdup(o->model)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (o->target && (rc = lora_targets(&r->pc, o->target, err)))
		return rc;
	if ((rc = hf_model_modules(m, &mods, &nmods, err)) ||
	    (rc = hf_peft_targets(&r->pc, model_type, mods, nmods, &tg, &ntg, "--target", err)))
		goto out;
	for (size_t i = 0; i < hf_train_nparams(r->t); i++)
		if ((rc = hf_train_set_trainable(r->t, i, 0, err)))
			goto out;
	r->lora = calloc(ntg, sizeof(*r->lora));
	r->lt = calloc(ntg, sizeof(*r->lt));
	if (!r->lora || !r->lt) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	r->nlora = ntg;
	for (size_t k = 0; k < ntg; k++) {
		const struct hf_lin_module *md = &mods[tg[k].module];
		size_t li = hf_train_nlinears(r->t), rk = tg[k].r;
		char key[512];
		int64_t sa[2] = { (int64_t)rk, (int64_t)md->in };
		int64_t sb[2] = { (int64_t)md->out, (int64_t)rk };

		for (size_t i = 0; i < hf_train_nlinears(r->t); i++)
			if (!strcmp(hf_train_linear(r->t, i)->name, md->name)) {
				li = i;
				break;
			}
		/* a checkpoint stored without the module's prefix (GPT-2's
		 * "h.0.attn.c_attn" of "transformer.h.0.attn.c_attn") */
		for (size_t i = 0; li == hf_train_nlinears(r->t) && i < hf_train_nlinears(r->t); i++) {
			const char *ln = hf_train_linear(r->t, i)->name;
			size_t a = strlen(md->name), b = strlen(ln);

			/* one component of prefix: its first dot is where ln starts */
			if (a > b && strchr(md->name, '.') == md->name + a - b - 1 &&
			    !strcmp(md->name + a - b, ln))
				li = i;
		}
		if (li == hf_train_nlinears(r->t)) {
			rc = hf_err_set(err, HF_EUNSUPPORTED, "--target: module '%s' has no training linear",
					md->name);
			goto out;
		}
		free(init);
		if (!(init = malloc(rk * md->in * sizeof(float)))) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		hf_lora_init(init, NULL, rk, md->in, md->out, (uint64_t)o->seed * 1000003u + k);
		hf_peft_key(key, sizeof(key), md->name, "lora_A.weight");
		if ((rc = hf_params_add(&r->ps, key, 2, sa, NULL, NULL, init, err)))
			goto out;
		hf_peft_key(key, sizeof(key), md->name, "lora_B.weight");
		if ((rc = hf_params_add(&r->ps, key, 2, sb, NULL, NULL, NULL, err)))
			goto out;
		r->lora[k] = (struct hf_lora_layer){
			.in = md->in, .out = md->out, .r = rk, .scale = tg[k].scale,
			.dropout = (float)o->lora_dropout, .training = 1, .rng = &r->st.rng,
		};
		r->lt[k] = (struct hf_peft_tensors){ .r = rk, .in = md->in, .out = md->out };
		if (!(r->lt[k].module = strdup(md->name))) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		/* PEFT sets fan_in_fan_out for a Conv1D target (GPT-2) */
		if (md->conv1d)
			r->pc.fan_in_fan_out = 1;
		tg[k].module = li;	/* now the training linear */
	}
	/* the set is complete: its buffers no longer move */
	for (size_t k = 0; k < ntg; k++) {
		struct hf_train_adapter ad = { &r->lora[k], hf_lora_layer_forward,
					       hf_lora_layer_backward };
		struct hf_optparam *a = &r->ps.p[2 * k], *b = &r->ps.p[2 * k + 1];

		r->lora[k].A = a->w;
		r->lora[k].dA = a->g;
		r->lora[k].B = b->w;
		r->lora[k].dB = b->g;
		r->lt[k].A = a->w;
		r->lt[k].B = b->w;
		if ((rc = hf_train_set_adapter(r->t, tg[k].module, &ad, err)))
			goto out;
	}
out:
	free(init);
	free(tg);
	free(mods);
	return rc;
}

static void lora_free(struct run *r)
{
	for (size_t k = 0; k < r->nlora; k++) {
		hf_lora_layer_free(&r->lora[k]);
		free((char *)r->lt[k].module);
	}
	free(r->lora);
	free(r->lt);
	hf_peft_config_free(&r->pc);
}

static void lora_training(struct run *r, int on)
{
	for (size_t k = 0; k < r->nlora; k++)
		r->lora[k].training = on;
}

/* The weights file of a checkpoint: the adapter or the whole model. */
static const char *weights_file(const struct run *r)
{
	return r->o->lora_r ? "adapter_model.safetensors" : "model.safetensors";
}

/* The adapter's config into dir (a checkpoint is an adapter directory
 * too): as hf_peft_save writes it, all-linear resolved to the names. */
static int write_adapter_config(struct run *r, const char *dir, struct hf_err *err)
{
	char *path = hf_path_join(dir, "adapter_config.json");
	struct hf_peft_config c = r->pc;
	char **names = NULL;
	int rc;

	if (!path)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (c.all_linear) {
		if (!(names = malloc((r->nlora ? r->nlora : 1) * sizeof(*names)))) {
			free(path);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		for (size_t k = 0; k < r->nlora; k++)
			names[k] = (char *)r->lt[k].module;
		c.targets = names;
		c.ntargets = r->nlora;
		c.all_linear = 0;
	}
	rc = hf_peft_config_write(&c, path, err);
	free(names);
	free(path);
	return rc;
}

/* A resumable checkpoint <out>/checkpoint-<step>: the weights, moments,
 * state and the model's files (so it is a model directory too). The one
 * written before it is removed once this one is in place. */
static int save_checkpoint(struct run *r, struct hf_err *err)
{
	char name[64], *dir;
	struct hf_ckpt *ck = NULL;
	int rc;

	snprintf(name, sizeof(name), "checkpoint-%" PRIu64, r->st.step);
	if (!(dir = hf_path_join(r->o->out, name)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	r->st.pos = hf_data_tell(r->data);
	if ((rc = hf_ckpt_begin(&ck, dir, err)) ||
	    (rc = hf_ckpt_write_params(hf_ckpt_tmpdir(ck), weights_file(r),
					r->o->lora_r ? &r->ps : &r->all, err)) ||
	    (rc = hf_ckpt_write_optim(ck, r->opt, &r->ps, err)) ||
	    (rc = hf_ckpt_write_state(ck, &r->st, err)) ||
	    (r->o->lora_r ? (rc = write_adapter_config(r, hf_ckpt_tmpdir(ck), err)) :
	     (rc = hf_ckpt_copy_model_files(hf_ckpt_tmpdir(ck), r->model_dir, 1, err)))) {
		hf_ckpt_abort(ck);
		free(dir);
		return rc;
	}
	if ((rc = hf_ckpt_commit(ck, err))) {
		free(dir);
		return rc;
	}
	if (r->last_ckpt && strcmp(r->last_ckpt, dir))
		hf_ckpt_remove(r->last_ckpt, NULL);
	free(r->last_ckpt);
	r->last_ckpt = dir;
	return 0;
}

/* Restore weights, moments, step, data position and RNG from --resume. */
static int resume(struct run *r, const json_t *config, const json_t *options,
		  struct hf_err *err)
{
	char *dir = NULL;
	int rc;

	if ((rc = hf_ckpt_find(&dir, r->o->resume, err)))
		return rc;
	hf_train_state_clear(&r->st);
	if (!(rc = hf_ckpt_read_state(dir, &r->st, err)) &&
	    !(rc = hf_ckpt_check_config(dir, &r->st, config, err)) &&
	    !(rc = same_options(dir, r->st.options, options, err)) &&
	    !(rc = hf_ckpt_read_params(dir, weights_file(r), r->o->lora_r ? &r->ps : &r->all,
				       err)) &&
	    !(rc = hf_ckpt_read_optim(dir, r->opt, &r->ps, err))) {
		if (hf_adamw_steps(r->opt) != r->st.step)
			rc = hf_err_set(err, HF_EFORMAT, "checkpoint '%s': optimizer step %" PRIu64 " but trainer step %" PRIu64,
					dir, hf_adamw_steps(r->opt), r->st.step);
		hf_data_seek(r->data, r->st.pos);
	}
	/* a checkpoint of this output is the one the next save replaces */
	if (!rc && !strncmp(dir, r->o->out, strlen(r->o->out)) &&
	    !strncmp(dir + strlen(r->o->out), "/checkpoint-", 12))
		r->last_ckpt = strdup(dir);
	json_decref(r->st.options);
	json_decref(r->st.config);
	r->st.options = json_incref((json_t *)options);
	r->st.config = json_incref((json_t *)config);
	free(dir);
	return rc;
}

/* Mean loss over every counted label of the eval set. */
static int evaluate(struct run *r, double *out, struct hf_err *err)
{
	struct hf_batch b = { 0 };
	double sum = 0.0;
	size_t n = 0;
	int rc = 0;

	hf_data_seek(r->eval, (struct hf_data_pos){ 0, 0 });
	lora_training(r, 0);
	do {
		double loss;
		size_t count;

		if ((rc = hf_data_next(r->eval, (size_t)r->o->batch, &b, err)))
			break;
		if (!b.tokens)
			continue;
		if ((rc = hf_train_eval(r->t, b.ids, b.labels, b.mask, b.rows, b.T, &loss,
					&count, err)))
			break;
		sum += loss * (double)count;
		n += count;
	} while (!b.last);
	hf_batch_free(&b);
	lora_training(r, 1);
	if (!rc && !n)
		rc = hf_err_set(err, HF_EINVAL, "%s: no label tokens to evaluate on", r->o->eval);
	if (!rc)
		*out = sum / (double)n;
	return rc;
}

/* The final model: every parameter as F32 model.safetensors plus the base
 * model's files, into -o (each file written then renamed). */
static int write_model(struct run *r, struct hf_err *err)
{
	if (r->o->lora_r)
		return hf_peft_save(r->o->out, &r->pc, r->lt, r->nlora, err);
	int rc = hf_ckpt_write_params(r->o->out, "model.safetensors", &r->all, err);

	return rc ? rc : hf_ckpt_copy_model_files(r->o->out, r->model_dir, 1, err);
}

/* One optimizer step: up to grad_accum micro-batches (not past the end of
 * an epoch), the loss of each a sum over its labels divided by the label
 * count of the whole accumulated global batch (transformers'
 * num_items_in_batch), so accumulation and ranks give one big batch;
 * gradients summed over ranks, clipped, AdamW at the schedule's rate. */
static int step(struct run *r, struct hf_batch *mb, double out[4],
		struct hf_err *err)
{
	size_t k = 0, tokens = 0;
	double sums[2] = { 0.0, 0.0 };	/* loss, input tokens */
	double lr;
	int rc;

	hf_params_zero_grad(&r->ps);
	do {
		if ((rc = hf_data_next(r->data, (size_t)r->o->batch, &mb[k], err)))
			return rc;
		tokens += mb[k].global_tokens;
	} while (!mb[k++].last && k < (size_t)r->o->grad_accum);
	if (!tokens)
		return hf_err_set(err, HF_EINVAL, "%s: a batch has no label tokens (every label -100)",
				  r->o->data);
	for (size_t i = 0; i < k; i++) {
		double loss;
		size_t count;

		if (!mb[i].rows || !mb[i].tokens)
			continue;
		if ((rc = hf_train_step(r->t, mb[i].ids, mb[i].labels, mb[i].mask, mb[i].rows,
					mb[i].T, (double)tokens, &loss, &count, err)))
			return rc;
		sums[0] += loss;
		for (size_t j = 0; j < mb[i].rows * mb[i].T; j++)
			sums[1] += mb[i].mask[j];
	}
	for (size_t i = 0; i < r->ps.n; i++)
		if ((rc = hf_mpi_allreduce_sum(r->ps.p[i].g, r->ps.p[i].n, err)))
			return rc;
	if ((rc = hf_mpi_allreduce_sum_f64(sums, 2, err)))
		return rc;
	out[0] = sums[0];
	out[1] = hf_params_clip_grad_norm(&r->ps, (float)r->o->clip);
	{
		struct hf_sched s = { r->o->schedule, 0, r->total, 0.5 };
		uint64_t w = 0;

		if (r->o->warmup && (rc = hf_sched_warmup(&w, r->o->warmup, r->total, err)))
			return rc;
		s.warmup = w;
		lr = r->o->lr * hf_sched_mult(&s, r->st.step);
	}
	hf_adamw_step(r->opt, &r->ps, lr);
	r->st.step++;
	out[2] = lr;
	out[3] = sums[1];
	return 0;
}

static int print_metrics(struct run *r, const double m[4], double secs,
			 const double *eval)
{
	char loss[32], gn[32], lr[32], tps[32], ep[32], ev[32], ppl[32];

	num(loss, sizeof(loss), m[0]);
	num(gn, sizeof(gn), m[1]);
	num(lr, sizeof(lr), m[2]);
	num(tps, sizeof(tps), secs > 0 ? round(m[3] / secs * 10.0) / 10.0 : 0.0);
	num(ep, sizeof(ep), round((double)r->st.step / (double)r->per_epoch * 1e4) / 1e4);
	printf("{\"step\": %" PRIu64 ", \"epoch\": %s, \"loss\": %s, \"lr\": %s, \"grad_norm\": %s, \"tokens_per_s\": %s",
	       r->st.step, ep, loss, lr, gn, tps);
	if (eval) {
		num(ev, sizeof(ev), *eval);
		num(ppl, sizeof(ppl), exp(*eval));
		printf(", \"eval_loss\": %s, \"eval_perplexity\": %s", ev, ppl);
	}
	printf("}\n");
	return fflush(stdout) ? -1 : 0;
}

static int load_data(struct run *r, struct hf_data **out, const char *path,
		     int shuffle, int shard, struct hf_err *err)
{
	struct hf_tok *tok = NULL;
	struct hf_chat *chat = NULL;
	struct hf_err e2 = { 0 };
	char *tj = hf_path_join(r->model_dir, "tokenizer.json");
	struct hf_data_opts d = {
		.seq_len = (size_t)r->o->seq_len, .pack = r->o->pack,
		.truncate = r->o->truncate, .shuffle = shuffle,
		.seed = (uint64_t)r->o->seed, .shift = 1, .add_eos = 1,
		.rank = shard ? r->rank : 0, .world = shard ? r->world : 1,
	};
	int rc = 0;

	if (tj && hf_file_exists(tj))
		rc = hf_tok_load(&tok, r->model_dir, err);
	free(tj);
	if (!rc && hf_chat_load(&chat, r->model_dir, &e2) && e2.code != HF_ENOTFOUND)
		rc = hf_err_set(err, e2.code, "%s", e2.msg);
	if (!rc)
		rc = hf_data_load(out, path, tok, chat, &d, err);
	hf_chat_free(chat);
	hf_tok_free(tok);
	return rc;
}

static int train(const struct opts *o, struct hf_model *m, const char *model_dir)
{
	struct hf_err err = { 0 };
	/* LoRA: the base's linears stay as stored, quantized (QLoRA) or
	 * f16/bf16, frozen */
	struct hf_train_opts to = { .checkpointing = o->checkpointing,
				    .quant_base = o->lora_r != 0,
				    .frozen_base = o->lora_r != 0 };
	struct hf_adamw_opts ao = HF_ADAMW_DEFAULTS;
	struct run r = { .o = o, .model_dir = model_dir };
	struct hf_batch *mb = NULL;
	struct hf_progress pb;
	json_t *config = NULL, *options = NULL;
	char *cfg = hf_path_join(model_dir, "config.json");
	int rc = 1, sig = 0;

	r.rank = hf_mpi_rank();
	r.world = hf_mpi_size();
	ao.lr = o->lr;
	ao.weight_decay = o->weight_decay;
	options = options_json(o, r.world);
	if (!cfg || hf_json_load_file(&config, cfg, &err) ||
	    load_data(&r, &r.data, o->data, 1, 1, &err) ||
	    (o->eval && load_data(&r, &r.eval, o->eval, 0, 0, &err)) ||
	    hf_train_new(&r.t, m, &to, &err))
		goto fail;
	if (o->lora_r) {
		const char *mt = json_string_value(json_object_get(config, "model_type"));

		if (lora_setup(&r, m, mt ? mt : "", &err))
			goto fail;
	} else if (bind_params(&r, &err)) {
		goto fail;
	}
	if (hf_adamw_new(&r.opt, &r.ps, &ao, &err))
		goto fail;
	if (r.rank == 0 && mkdir(o->out, 0755) && errno != EEXIST) {
		hf_err_errno(&err, "cannot create '%s'", o->out);
		goto fail;
	}
	r.per_epoch = hf_data_steps_per_epoch(r.data, (size_t)o->batch, (size_t)o->grad_accum);
	r.total = o->max_steps > 0 ? (uint64_t)o->max_steps : (uint64_t)o->epochs * r.per_epoch;
	r.st.options = json_incref(options);
	r.st.config = json_incref(config);
	hf_rng_seed(&r.st.rng, (uint64_t)o->seed);
	if (o->resume && resume(&r, config, options, &err))
		goto fail;
	mb = calloc((size_t)o->grad_accum, sizeof(*mb));
	if (!mb) {
		hf_err_set(&err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	hf_ckpt_signals_install();
	if (r.rank == 0)
		hf_progress_init(&pb, "train", r.total, 0);
	while (r.st.step < r.total) {
		double mt[4] = { 0 }, t0 = hf_now(), ev = 0.0, secs;
		int32_t s;
		int do_eval;

		if (step(&r, mb, mt, &err))
			goto fail;
		secs = hf_now() - t0;
		do_eval = r.eval && ((o->eval_every && r.st.step % (uint64_t)o->eval_every == 0) ||
				     r.st.step == r.total);
		if (do_eval && r.rank == 0 && evaluate(&r, &ev, &err))
			goto fail;
		if (r.rank == 0) {
			if (print_metrics(&r, mt, secs, do_eval ? &ev : NULL)) {
				hf_err_set(&err, HF_EIO, "cannot write the metrics to stdout");
				goto fail;
			}
			hf_progress_update(&pb, r.st.step);
		}
		s = hf_ckpt_signal();
		if (hf_mpi_allreduce_max_i32(&s, &err))
			goto fail;
		if (r.rank == 0 && (s || (o->save_every && r.st.step % (uint64_t)o->save_every == 0 &&
					  r.st.step < r.total)) &&
		    save_checkpoint(&r, &err))
			goto fail;
		if (s) {
			sig = s;
			break;
		}
	}
	if (r.rank == 0) {
		hf_progress_finish(&pb);
		if (sig)
			fprintf(stderr, "%s: %s at step %" PRIu64 ": resume with --resume %s\n", prog,
				sig == SIGINT ? "interrupted" : "terminated", r.st.step, r.last_ckpt);
		else if (write_model(&r, &err))
			goto fail;
	}
	rc = sig ? 128 + sig : 0;
	goto out;
fail:
	if (r.world > 1) {
		fprintf(stderr, "%s: rank %d: %s\n", prog, r.rank, err.msg);
		hf_mpi_abort(1);
	}
	rc = die_err(prog, &err);
out:
	hf_ckpt_signals_restore();
	for (long i = 0; mb && i < o->grad_accum; i++)
		hf_batch_free(&mb[i]);
	free(mb);
	free(cfg);
	free(r.last_ckpt);
	json_decref(config);
	json_decref(options);
	hf_train_state_clear(&r.st);
	hf_adamw_free(r.opt);
	hf_params_free(&r.ps);
	hf_params_free(&r.all);
	hf_data_free(r.data);
	hf_data_free(r.eval);
	hf_train_free(r.t);
	lora_free(&r);
	return rc;
}

int cmd_finetune(int argc, char **argv)
{
	struct hf_err err = { 0 };
	struct hf_model *m = NULL;
	struct opts o;
	char *dir = NULL;
	int rc;

	if ((rc = parse_opts(&o, argc, argv)))
		return rc < 0 ? 0 : rc;
	if (resolve_model(&dir, o.model, &err) ||
	    hf_model_open(&m, dir, NULL, (int)o.threads, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	if (o.grads) {
		rc = grads(&o, m);
	} else if (hf_mpi_init(&err)) {
		rc = die_err(prog, &err);
	} else {
		rc = train(&o, m, dir);
		hf_mpi_finalize();
	}
	if (!rc)
		rc = finish_stdout(prog);
out:
	hf_model_free(m);
	free(dir);
	return rc;
}
