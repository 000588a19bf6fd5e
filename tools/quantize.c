/* tools/quantize.c: hf-quantize, write a model directory whose linears are
 * stored the way a transformers quantizer stores them (bitsandbytes int8
 * and 4-bit, BitNet, FP8, GPTQ; docs/quantization-formats.md), or turn
 * such a checkpoint back into floats. The quantizers are lib/quant/
 * (quantize.h); the reader used for --dequantize is the one hf-run binds
 * weights with (tensor/wfmt.h). */
#define _GNU_SOURCE	/* nftw */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/file.h"
#include "core/json.h"
#include "core/progress.h"
#include "export/qlin.h"
#include "quant/qconfig.h"
#include "quant/quantize.h"
#include "st/st.h"
#include "tensor/dtype.h"
#include "tensor/wfmt.h"

/* the solver and its driver, where this tree has them (HF_NO_GPTQ: not) */
#if !defined(HF_NO_GPTQ) && __has_include("quant/gptq.h")
#include "quant/gptq.h"
#define HAVE_GPTQ 1
#else
#define HAVE_GPTQ 0
#endif

static const char prog[] = "hf-quantize";

static const char usage[] =
	"usage: hf-quantize -m <model> --method int8|nf4|fp4|bitnet|fp8|gptq "
	"-o <dir> [--force]\n"
	"                   [--skip <pattern>]... [--max-shard-size <n>] "
	"[--threshold <t>]\n"
	"                   [--block-size <n>] [--double-quant] "
	"[--compute-dtype <type>]\n"
	"                   [--calib <file>] [--calib-samples <n>] "
	"[--seq-len <n>] [--bits <n>]\n"
	"                   [--group-size <n>] [--desc-act] [--sym|--asym] "
	"[--damp <f>]\n"
	"                   [--format gptq|gptq_v2]\n"
	"       hf-quantize -m <model> --dequantize -o <dir> [--force] "
	"[--dtype <type>]\n"
	"options:\n"
	"  -m, --model <model>       model directory, or org/name[@rev] from the Hub cache\n"
	"      --method <method>     int8, nf4, fp4, bitnet, fp8, gptq\n"
	"  -o, --output <dir>        the model directory to write ('-': one "
	"safetensors file to stdout)\n"
	"      --force               replace <dir> if it is a model directory\n"
	"      --skip <pattern>      keep modules whose name holds <pattern> in "
	"float (repeatable)\n"
	"      --max-shard-size <n>  bytes per weights file, K/M/G suffixes "
	"(default 5G)\n"
	"      --threshold <t>       int8: llm_int8_threshold (default 6.0)\n"
	"      --block-size <n>      nf4, fp4: elements per absmax, a power of "
	"two 32..4096 (default 64)\n"
	"      --double-quant        nf4, fp4: quantize the absmax too (blocks "
	"of 256)\n"
	"      --compute-dtype <t>   nf4, fp4: float32 (default), float16, "
	"bfloat16\n"
	"      --calib <file>        gptq: calibration text lines, {\"text\"} or "
	"{\"ids\"} records\n"
	"      --calib-samples <n>   gptq: samples used (default 128)\n"
	"      --seq-len <n>         gptq: tokens per sample (default 512)\n"
	"      --bits <n>            gptq: 2, 3, 4 (default) or 8\n"
	"      --group-size <n>      gptq: inputs per scale, -1: one group "
	"(default 128)\n"
	"      --desc-act            gptq: columns in order of decreasing "
	"Hessian diagonal\n"
	"      --sym, --asym         gptq: symmetric (default) or asymmetric "
	"zeros\n"
	"      --damp <f>            gptq: damp_percent (default 0.01)\n"
	"      --format <f>          gptq: gptq (default) or gptq_v2\n"
	"      --dequantize          write a float checkpoint of a quantized "
	"model\n"
	"      --dtype <type>        --dequantize: float32 (default), float16, "
	"bfloat16\n"
	"  -h, --help\n";

enum method { M_NONE, M_INT8, M_NF4, M_FP4, M_BITNET, M_FP8, M_GPTQ };

static const char *const method_names[] = {
	"", "int8", "nf4", "fp4", "bitnet", "fp8", "gptq",
};

/* Options a method reads; any other given is refused, not ignored. */
enum {
	G_THRESHOLD = 1 << 0, G_BLOCK = 1 << 1, G_DQ = 1 << 2,
	G_COMPUTE = 1 << 3, G_GPTQ = 1 << 4, G_DTYPE = 1 << 5,
	G_SKIP = 1 << 6,
};

#define MAX_SKIP 64

struct opts {
	const char *model, *out;
	enum method method;
	int dequantize, force;
	unsigned given;
	const char *skip[MAX_SKIP];
	int nskip;
	uint64_t max_shard;
	double threshold;
	long block_size;
	int double_quant;
	const char *compute_dtype;
	/* gptq */
	const char *calib, *format;
	long calib_samples, seq_len, bits, group_size;
	int desc_act, sym;
	double damp;
	/* --dequantize */
	enum hf_dtype dtype;
};

enum {
	OPT_METHOD = 256, OPT_FORCE, OPT_SKIP, OPT_SHARD, OPT_THRESHOLD,
	OPT_BLOCK, OPT_DQ, OPT_COMPUTE, OPT_CALIB, OPT_CALIB_N, OPT_SEQ,
	OPT_BITS, OPT_GROUP, OPT_DESC, OPT_SYM, OPT_ASYM, OPT_DAMP,
	OPT_FORMAT, OPT_DEQUANT, OPT_DTYPE,
};

static const struct option longopts[] = {
	{ "model", required_argument, NULL, 'm' },
	{ "output", required_argument, NULL, 'o' },
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "skip", required_argument, NULL, OPT_SKIP },
	{ "max-shard-size", required_argument, NULL, OPT_SHARD },
	{ "threshold", required_argument, NULL, OPT_THRESHOLD },
	{ "block-size", required_argument, NULL, OPT_BLOCK },
	{ "double-quant", no_argument, NULL, OPT_DQ },
	{ "compute-dtype", required_argument, NULL, OPT_COMPUTE },
	{ "calib", required_argument, NULL, OPT_CALIB },
	{ "calib-samples", required_argument, NULL, OPT_CALIB_N },
	{ "seq-len", required_argument, NULL, OPT_SEQ },
	{ "bits", required_argument, NULL, OPT_BITS },
	{ "group-size", required_argument, NULL, OPT_GROUP },
	{ "desc-act", no_argument, NULL, OPT_DESC },
	{ "sym", no_argument, NULL, OPT_SYM },
	{ "asym", no_argument, NULL, OPT_ASYM },
	{ "damp", required_argument, NULL, OPT_DAMP },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "dequantize", no_argument, NULL, OPT_DEQUANT },
	{ "dtype", required_argument, NULL, OPT_DTYPE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* "float32", "f32" ... to the torch name and the safetensors dtype. */
static int parse_float_dtype(const char *s, const char **torch,
			     enum hf_dtype *dt)
{
	static const struct { const char *a, *b, *torch; enum hf_dtype dt; }
	names[] = {
		{ "float32", "f32", "float32", HF_DTYPE_F32 },
		{ "float16", "f16", "float16", HF_DTYPE_F16 },
		{ "bfloat16", "bf16", "bfloat16", HF_DTYPE_BF16 },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i].a) || !strcmp(s, names[i].b)) {
			if (torch)
				*torch = names[i].torch;
			if (dt)
				*dt = names[i].dt;
			return 0;
		}
	return -1;
}

static const char *torch_name(enum hf_dtype dt)
{
	return dt == HF_DTYPE_BF16 ? "bfloat16" :
	       dt == HF_DTYPE_F16 ? "float16" : "float32";
}

/* "5G", "200M", "4096": bytes. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	if (*end == 'K' || *end == 'k')
		mul = 1ull << 10;
	else if (*end == 'M' || *end == 'm')
		mul = 1ull << 20;
	else if (*end == 'G' || *end == 'g')
		mul = 1ull << 30;
	if (mul > 1 && *++end == 'B')
		end++;
	if (*end || !v || v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->max_shard = 5ull << 30;
	o->threshold = 6.0;
	o->block_size = 64;
	o->compute_dtype = "float32";
	o->format = "gptq";
	o->calib_samples = 128;
	o->seq_len = 512;
	o->bits = 4;
	o->group_size = 128;
	o->sym = 1;
	o->damp = 0.01;
	o->dtype = HF_DTYPE_F32;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hm:o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return finish_stdout(prog) ? 1 : -1;
		case 'm':
			o->model = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case OPT_METHOD:
			o->method = M_NONE;
			for (int i = 1; i <= M_GPTQ; i++)
				if (!strcmp(optarg, method_names[i]))
					o->method = (enum method)i;
			if (!o->method)
				return die_usage(prog, "unknown method '%s' "
						 "(int8, nf4, fp4, bitnet, fp8, "
						 "gptq)", optarg);
			break;
		case OPT_FORCE:
			o->force = 1;
			break;
		case OPT_SKIP:
			if (o->nskip == MAX_SKIP)
				return die_usage(prog, "more than %d --skip",
						 MAX_SKIP);
			if (!*optarg)
				return die_usage(prog, "--skip: an empty "
						 "pattern would skip every "
						 "module");
			o->skip[o->nskip++] = optarg;
			o->given |= G_SKIP;
			break;
		case OPT_SHARD:
			if (parse_size(optarg, &o->max_shard))
				return die_usage(prog, "bad --max-shard-size "
						 "'%s'", optarg);
			break;
		case OPT_THRESHOLD:
			if (parse_double(optarg, &o->threshold) ||
			    !(o->threshold >= 0))
				return die_usage(prog, "bad --threshold '%s'",
						 optarg);
			o->given |= G_THRESHOLD;
			break;
		case OPT_BLOCK:
			if (parse_long(optarg, 1, 1L << 30, &o->block_size))
				return die_usage(prog, "bad --block-size '%s'",
						 optarg);
			if (o->block_size & (o->block_size - 1) ||
			    o->block_size < 32 || o->block_size > 4096)
				return die_usage(prog, "--block-size %ld is not "
						 "a power of two in 32 .. 4096",
						 o->block_size);
			o->given |= G_BLOCK;
			break;
		case OPT_DQ:
			o->double_quant = 1;
			o->given |= G_DQ;
			break;
		case OPT_COMPUTE:
			if (parse_float_dtype(optarg, &o->compute_dtype, NULL))
				return die_usage(prog, "bad --compute-dtype "
						 "'%s' (float32, float16, "
						 "bfloat16)", optarg);
			o->given |= G_COMPUTE;
			break;
		case OPT_CALIB:
			o->calib = optarg;
			o->given |= G_GPTQ;
			break;
		case OPT_CALIB_N:
			if (parse_long(optarg, 1, 1L << 20, &o->calib_samples))
				return die_usage(prog, "bad --calib-samples "
						 "'%s'", optarg);
			o->given |= G_GPTQ;
			break;
		case OPT_SEQ:
			if (parse_long(optarg, 1, 1L << 20, &o->seq_len))
				return die_usage(prog, "bad --seq-len '%s'",
						 optarg);
			o->given |= G_GPTQ;
			break;
		case OPT_BITS:
			if (parse_long(optarg, 2, 8, &o->bits) ||
			    (o->bits != 2 && o->bits != 3 && o->bits != 4 &&
			     o->bits != 8))
				return die_usage(prog, "bad --bits '%s' (2, 3, "
						 "4, 8)", optarg);
			o->given |= G_GPTQ;
			break;
		case OPT_GROUP:
			if (parse_long(optarg, -1, 1L << 30, &o->group_size) ||
			    !o->group_size)
				return die_usage(prog, "bad --group-size '%s' "
						 "(-1 or a positive size)",
						 optarg);
			o->given |= G_GPTQ;
			break;
		case OPT_DESC:
			o->desc_act = 1;
			o->given |= G_GPTQ;
			break;
		case OPT_SYM:
		case OPT_ASYM:
			o->sym = c == OPT_SYM;
			o->given |= G_GPTQ;
			break;
		case OPT_DAMP:
			if (parse_double(optarg, &o->damp) || !(o->damp > 0) ||
			    o->damp >= 1)
				return die_usage(prog, "bad --damp '%s' (a "
						 "fraction, 0 < f < 1)", optarg);
			o->given |= G_GPTQ;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "gptq") && strcmp(optarg, "gptq_v2"))
				return die_usage(prog, "bad --format '%s' "
						 "(gptq, gptq_v2)", optarg);
			o->format = optarg;
			o->given |= G_GPTQ;
			break;
		case OPT_DEQUANT:
			o->dequantize = 1;
			break;
		case OPT_DTYPE:
			if (parse_float_dtype(optarg, NULL, &o->dtype))
				return die_usage(prog, "bad --dtype '%s' "
						 "(float32, float16, bfloat16)",
						 optarg);
			o->given |= G_DTYPE;
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
	if (!o->out)
		return die_usage(prog, "-o <dir> is required");
	if (!strcmp(o->out, "-") && isatty(STDOUT_FILENO))
		return die_usage(prog, "-o -: standard output is a terminal; "
				 "redirect it to a file or a pipe");
	if (o->dequantize) {
		if (o->method)
			return die_usage(prog, "--dequantize and --method "
					 "exclude each other");
		if (o->given & ~G_DTYPE)
			return die_usage(prog, "--dequantize takes no "
					 "quantization options");
		return 0;
	}
	if (!o->method)
		return die_usage(prog, "--method is required (int8, nf4, fp4, "
				 "bitnet, fp8, gptq), or --dequantize");
	{
		unsigned allowed = G_SKIP;
		const char *what = "this method";

		switch (o->method) {
		case M_INT8:
			allowed |= G_THRESHOLD;
			break;
		case M_NF4:
		case M_FP4:
			allowed |= G_BLOCK | G_DQ | G_COMPUTE;
			break;
		case M_GPTQ:
			allowed |= G_GPTQ;
			break;
		default:
			break;
		}
		what = method_names[o->method];
		if (o->given & ~allowed & G_DTYPE)
			return die_usage(prog, "--dtype is for --dequantize");
		if (o->given & ~allowed & G_THRESHOLD)
			return die_usage(prog, "--threshold is for --method "
					 "int8, not %s", what);
		if (o->given & ~allowed & (G_BLOCK | G_DQ | G_COMPUTE))
			return die_usage(prog, "--block-size, --double-quant "
					 "and --compute-dtype are for --method "
					 "nf4 and fp4, not %s", what);
		if (o->given & ~allowed & G_GPTQ)
			return die_usage(prog, "the GPTQ options are for "
					 "--method gptq, not %s", what);
	}
	if (o->method == M_GPTQ && !o->calib)
		return die_usage(prog, "--method gptq needs --calib <file>");
	return 0;
}

/* ---- which weights are quantized -------------------------------------------- */

/* Whether some dot-separated part of name is a number: a layer index
 * (model.layers.3..., h.3..., encoder.layer.3...). */
static int has_index(const char *name)
{
	const char *p = name;

	while (*p) {
		const char *e = strchr(p, '.');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		size_t d = strspn(p, "0123456789");

		if (n && d == n)
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

/* The last part of a module name ("model.layers.0.mlp.gate" -> "gate"). */
static const char *leaf(const char *base)
{
	const char *d = strrchr(base, '.');

	return d ? d + 1 : base;
}

static int icontains(const char *s, const char *w)
{
	size_t n = strlen(w);

	for (; *s; s++)
		if (!strncasecmp(s, w, n))
			return 1;
	return 0;
}

static int skipped(const struct opts *o, const char *base)
{
	for (int i = 0; i < o->nskip; i++)
		if (strstr(base, o->skip[i]))
			return 1;
	return 0;
}

/* hf_gptq_opts.skip: the linears --skip keeps in float. */
static int gptq_skip(void *ctx, const char *name)
{
	return skipped(ctx, name);
}

/* Whether transformers' quantizers replace the module of t (its
 * "<base>.weight") with a quantized linear: a 2-D weight of a linear in
 * a transformer block, not an embedding, a norm, the head or a MoE
 * router (mixtral's block_sparse_moe.gate, the routers named gate or
 * router elsewhere), not in --skip. base gets the module's name. */
static int quantizable(const struct opts *o, const struct hf_tensor *t,
		       char *base, size_t cap)
{
	size_t n = strlen(t->name);
	const char *l;

	if (n < 7 || strcmp(t->name + n - 7, ".weight") || t->ndim != 2 ||
	    n - 7 >= cap)
		return 0;
	memcpy(base, t->name, n - 7);
	base[n - 7] = 0;
	l = leaf(base);
	if (!has_index(base) || icontains(base, "embed") ||
	    icontains(base, "norm") || strstr(base, "lm_head") ||
	    !strcmp(l, "gate") || !strcmp(l, "router") ||
	    !strcmp(l, "shared_expert_gate"))
		return 0;
	return !skipped(o, base);
}

/* ---- the output ---------------------------------------------------------------- */

/* The shards being written: tensors are added to the current writer, and
 * what they point to (quantized tensors, converted copies) is kept until
 * its shard is on disk. */
struct out {
	const char *dir;	/* the temporary directory; NULL: stdout */
	uint64_t max_shard;
	struct hf_st_writer *w;
	size_t nshards;
	json_t *map;		/* tensor name -> shard number */
	uint64_t total;		/* bytes of tensor data */
	void **owned;
	size_t nowned, capowned;
	struct hf_qlinear *ql;
	size_t nql, capql;
};

static int own(struct out *s, void *p, struct hf_err *err)
{
	if (s->nowned == s->capowned) {
		size_t cap = s->capowned ? 2 * s->capowned : 64;
		void **n = realloc(s->owned, cap * sizeof(*n));

		if (!n) {
			free(p);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		s->owned = n;
		s->capowned = cap;
	}
	s->owned[s->nowned++] = p;
	return 0;
}

static void release(struct out *s)
{
	for (size_t i = 0; i < s->nowned; i++)
		free(s->owned[i]);
	s->nowned = 0;
	for (size_t i = 0; i < s->nql; i++)
		hf_qlinear_free(&s->ql[i]);
	s->nql = 0;
}

static char *shard_tmp(const struct out *s, size_t i)
{
	char name[64];

	snprintf(name, sizeof(name), "shard-%05zu.safetensors", i + 1);
	return hf_path_join(s->dir, name);
}

/* Write the current shard (if it holds anything) and start the next. */
static int flush_shard(struct out *s, struct hf_err *err)
{
	char *path;
	int rc;

	if (!s->w)
		return 0;
	if (!s->dir) {
		rc = hf_st_writer_write(s->w, "-", err);
	} else {
		if (!(path = shard_tmp(s, s->nshards)))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		rc = hf_st_writer_write(s->w, path, err);
		free(path);
	}
	hf_st_writer_free(s->w);
	s->w = NULL;
	release(s);
	if (rc)
		return rc;
	s->nshards++;
	return 0;
}

/* Make room for bytes more in the current shard. */
static int room(struct out *s, uint64_t bytes, struct hf_err *err)
{
	if (s->dir && s->w && hf_st_writer_size(s->w) + bytes > s->max_shard &&
	    flush_shard(s, err))
		return err->code;
	if (!s->w && hf_st_writer_new(&s->w, err))
		return err->code;
	return 0;
}

static int add(struct out *s, const char *name, enum hf_dtype dt, int ndim,
	       const int64_t *shape, const void *data, struct hf_err *err)
{
	uint64_t n = 1;

	if (hf_st_writer_add(s->w, name, dt, ndim, shape, data, err))
		return err->code;
	for (int i = 0; i < ndim; i++)
		n *= (uint64_t)shape[i];
	s->total += n * hf_dtype_bits(dt) / 8;
	if (json_object_set_new(s->map, name,
				json_integer((json_int_t)s->nshards)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	return 0;
}

/* Keep q (moved in) until its shard is written, and add its tensors as
 * "<base>.<suffix>". */
static int add_qlinear(struct out *s, const char *base, struct hf_qlinear *q,
		       struct hf_err *err)
{
	struct hf_qlinear *k;
	uint64_t bytes = 0;
	char name[512];

	for (size_t i = 0; i < q->n; i++)
		bytes += q->t[i].nbytes;
	if (room(s, bytes, err)) {
		hf_qlinear_free(q);
		return err->code;
	}
	if (s->nql == s->capql) {
		size_t cap = s->capql ? 2 * s->capql : 32;
		struct hf_qlinear *n = realloc(s->ql, cap * sizeof(*n));

		if (!n) {
			hf_qlinear_free(q);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		s->ql = n;
		s->capql = cap;
	}
	k = &s->ql[s->nql++];
	*k = *q;
	memset(q, 0, sizeof(*q));
	for (size_t i = 0; i < k->n; i++) {
		const struct hf_qtensor *t = &k->t[i];

		snprintf(name, sizeof(name), "%s.%s", base, t->suffix);
		if (add(s, name, t->dtype, t->ndim, t->shape, t->data, err))
			return err->code;
	}
	return 0;
}

/* A tensor of the input as it is (its bytes stay in the mapping). */
static int add_as_is(struct out *s, const struct hf_tensor *t,
		     struct hf_err *err)
{
	if (room(s, t->nbytes, err))
		return err->code;
	return add(s, t->name, t->dtype, t->ndim, t->shape, t->data, err);
}

/* n floats (malloc'd, owned from here on) stored as dtype dt. */
static int add_floats(struct out *s, const char *name, float *x, size_t n,
		      enum hf_dtype dt, int ndim, const int64_t *shape,
		      struct hf_err *err)
{
	void *data = x;

	if (dt != HF_DTYPE_F32) {
		uint16_t *h = malloc(n * sizeof(*h) + 1);

		if (!h) {
			free(x);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		if (dt == HF_DTYPE_BF16)
			hf_f32_to_bf16_n(h, x, n);
		else
			hf_f32_to_f16_n(h, x, n);
		free(x);
		data = h;
	}
	if (room(s, n * hf_dtype_bits(dt) / 8, err)) {
		free(data);
		return err->code;
	}
	if (own(s, data, err))
		return err->code;
	return add(s, name, dt, ndim, shape, data, err);
}

/* After the last tensor: model.safetensors, or the shards renamed
 * model-0000i-of-0000n.safetensors and their index. */
static int finish_shards(struct out *s, struct hf_err *err)
{
	char name[64];
	char *from = NULL, *to = NULL;
	json_t *idx = NULL, *map = NULL;
	const char *k;
	json_t *v;
	int rc = 0;

	if (!s->w && hf_st_writer_new(&s->w, err))	/* no tensors at all */
		return err->code;
	if (flush_shard(s, err))
		return err->code;
	if (!s->dir)
		return 0;
	if (s->nshards == 1) {
		from = shard_tmp(s, 0);
		to = hf_path_join(s->dir, "model.safetensors");
		if (!from || !to)
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		else if (rename(from, to))
			rc = hf_err_errno(err, "cannot rename '%s'", from);
		goto out;
	}
	map = json_object();
	for (size_t i = 0; i < s->nshards && !rc; i++) {
		free(from);
		free(to);
		snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors",
			 i + 1, s->nshards);
		from = shard_tmp(s, i);
		to = hf_path_join(s->dir, name);
		if (!from || !to)
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		else if (rename(from, to))
			rc = hf_err_errno(err, "cannot rename '%s'", from);
	}
	if (rc)
		goto out;
	json_object_foreach(s->map, k, v) {
		snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors",
			 (size_t)json_integer_value(v) + 1, s->nshards);
		json_object_set_new(map, k, json_string(name));
	}
	idx = json_pack("{s:{s:I},s:O}", "metadata", "total_size",
			(json_int_t)s->total, "weight_map", map);
	free(to);
	to = hf_path_join(s->dir, "model.safetensors.index.json");
	if (!idx || !to) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	{
		struct hf_atomic a;

		if ((rc = hf_atomic_open(&a, to, err)))
			goto out;
		if (json_dumpf(idx, a.f, JSON_INDENT(2) | JSON_SORT_KEYS) ||
		    fputc('\n', a.f) == EOF) {
			hf_atomic_abort(&a);
			rc = hf_err_errno(err, "cannot write '%s'", to);
			goto out;
		}
		rc = hf_atomic_commit(&a, err);
	}
out:
	free(from);
	free(to);
	json_decref(idx);
	json_decref(map);
	return rc;
}

/* ---- the work ------------------------------------------------------------------ */

struct job {
	const struct opts *o;
	const char *dir;		/* the model directory read */
	json_t *config;
	int gpt2;
	struct hf_st_model *st;
	struct hf_qcfg qc;		/* --dequantize: the model's */
	struct hf_progress bar;
	uint64_t done;
};

static const struct hf_tensor *get_cb(void *ctx, const char *name)
{
	return hf_st_model_get(ctx, name);
}

/* The float32 (rows, cols) = (out, in) matrix of the weight t
 * (transposed from GPT-2's Conv1D (in, out)); malloc'd. */
static int read_weight(float **out, const struct hf_tensor *t, int conv,
		       struct hf_err *err)
{
	size_t a = (size_t)t->shape[0], b = (size_t)t->shape[1];
	float *x = malloc(a * b * sizeof(float) + 1), *y;

	if (!x)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (hf_to_f32_n(x, t->data, t->dtype, a * b)) {
		free(x);
		return hf_err_set(err, HF_EUNSUPPORTED, "tensor '%s' is stored "
				  "%s, not as floats: hf-quantize quantizes "
				  "float weights", t->name,
				  hf_dtype_name(t->dtype));
	}
	if (!conv) {
		*out = x;
		return 0;
	}
	if (!(y = malloc(a * b * sizeof(float) + 1))) {
		free(x);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < a; i++)
		for (size_t j = 0; j < b; j++)
			y[j * a + i] = x[i * b + j];
	free(x);
	*out = y;
	return 0;
}

/* Checks of a weight's shape against the method, before any work. */
static int check_shape(const struct opts *o, const char *base, size_t rows,
		       size_t cols, struct hf_err *err)
{
	if (o->method == M_BITNET && rows % 4)
		return hf_err_set(err, HF_EINVAL, "'%s': BitNet packs 4 rows "
				  "a byte; out (%zu) is not a multiple of 4 "
				  "(--skip it to keep it in float)", base,
				  rows);
	if (o->method == M_GPTQ) {
		if (o->group_size > 0 && cols % (size_t)o->group_size)
			return hf_err_set(err, HF_EINVAL, "'%s': group size "
					  "%ld does not divide its width, in "
					  "= %zu", base, o->group_size, cols);
		if (cols * (size_t)o->bits % 32 ||
		    rows * (size_t)o->bits % 32)
			return hf_err_set(err, HF_EINVAL, "'%s': %ld-bit GPTQ "
					  "needs in (%zu) and out (%zu) to fill "
					  "32-bit words", base, o->bits, cols,
					  rows);
	}
	return 0;
}

static int quantize_one(struct job *j, struct hf_qlinear *q, const float *W,
			size_t rows, size_t cols, enum hf_dtype dt,
			struct hf_err *err)
{
	const struct opts *o = j->o;
	enum hf_dtype sdt = dt == HF_DTYPE_BF16 || dt == HF_DTYPE_F16 ?
			    dt : HF_DTYPE_F32;

	memset(q, 0, sizeof(*q));
	switch (o->method) {
	case M_INT8:
		return hf_quant_int8(q, W, rows, cols, err);
	case M_NF4:
	case M_FP4:
		return hf_quant_bnb4(q, W, rows, cols, o->method == M_FP4,
				     (size_t)o->block_size, o->double_quant,
				     torch_name(sdt), err);
	case M_BITNET:
		return hf_quant_bitnet(q, W, rows, cols, 1, sdt, err);
	case M_FP8:
		return hf_quant_fp8(q, W, rows, cols, 128, 128, err);
	default:
		return hf_err_set(err, HF_EINTERNAL, "no quantizer for '%s'",
				  method_names[o->method]);
	}
}

/* The skip list for the config: --skip's patterns, or JSON null. */
static json_t *skip_list(const struct opts *o)
{
	json_t *a;

	if (!o->nskip)
		return json_null();
	a = json_array();
	for (int i = 0; i < o->nskip; i++)
		json_array_append_new(a, json_string(o->skip[i]));
	return a;
}

/* quantization_config as transformers' config classes write it
 * (to_dict, keys sorted as save_pretrained sorts them). */
static json_t *qconfig_json(const struct opts *o)
{
	switch (o->method) {
	case M_INT8:
	case M_NF4:
	case M_FP4: {
		int b4 = o->method != M_INT8;

		/* BitsAndBytesConfig.to_dict() */
		return json_pack("{s:b,s:b,s:s,s:s,s:s,s:b,s:b,s:b,s:o,s:f,"
				 "s:b,s:b,s:s}",
				 "_load_in_4bit", b4, "_load_in_8bit", !b4,
				 "bnb_4bit_compute_dtype",
				 b4 ? o->compute_dtype : "float32",
				 "bnb_4bit_quant_storage", "uint8",
				 "bnb_4bit_quant_type",
				 o->method == M_FP4 ? "fp4" : "nf4",
				 "bnb_4bit_use_double_quant",
				 b4 && o->double_quant,
				 "llm_int8_enable_fp32_cpu_offload", 0,
				 "llm_int8_has_fp16_weight", 0,
				 "llm_int8_skip_modules", skip_list(o),
				 "llm_int8_threshold", o->threshold,
				 "load_in_4bit", b4, "load_in_8bit", !b4,
				 "quant_method", "bitsandbytes");
	}
	case M_BITNET:
		/* BitNetQuantConfig, microsoft/bitnet-b1.58-2B-4T's values */
		return json_pack("{s:s,s:o,s:s,s:s,s:f,s:b}",
				 "linear_class", "autobitlinear",
				 "modules_to_not_convert", skip_list(o),
				 "quant_method", "bitnet",
				 "quantization_mode", "offline",
				 "rms_norm_eps", 1e-6, "use_rms_norm", 0);
	case M_FP8:
		/* FineGrainedFP8Config */
		return json_pack("{s:s,s:o,s:s,s:[i,i]}",
				 "activation_scheme", "dynamic",
				 "modules_to_not_convert", skip_list(o),
				 "quant_method", "fp8",
				 "weight_block_size", 128, 128);
	case M_GPTQ:
		/* GPTQConfig / GPTQModel: the format under both keys */
		return json_pack("{s:i,s:b,s:s,s:f,s:b,s:s,s:I,s:{s:[s]},"
				 "s:o,s:s,s:b,s:b,s:b}",
				 "bits", (int)o->bits,
				 "cache_block_outputs", 1,
				 "checkpoint_format", o->format,
				 "damp_percent", o->damp,
				 "desc_act", o->desc_act,
				 "format", o->format,
				 "group_size", (json_int_t)o->group_size,
				 "meta", "quantizer", "hf:" HF_VERSION,
				 "modules_to_not_convert", skip_list(o),
				 "quant_method", "gptq",
				 "static_groups", 0, "sym", o->sym,
				 "true_sequential", 1);
	default:
		return NULL;
	}
}

#if HAVE_GPTQ
/* GPTQ's driver (quant/gptq.h) hands over each linear it has solved, in
 * forward order; it is packed here as it comes. done: the modules
 * written quantized. */
struct gptq_sink {
	struct job *j;
	struct out *s;
	json_t *done;
};

static int gptq_take(void *ctx, const struct hf_gptq_linear *l,
		     struct hf_err *err)
{
	struct gptq_sink *g = ctx;
	const struct hf_gptq_result *r = l->r;
	struct hf_qlinear q = { 0 };

	if (skipped(g->j->o, l->name))
		return 0;	/* written in float with the rest */
	if (hf_gptq_pack(&q, r->q, r->scales, r->zeros, r->g_idx, r->rows,
			 r->cols, r->G, r->bits,
			 !strcmp(g->j->o->format, "gptq_v2"), err)) {
		hf_qlinear_free(&q);
		return hf_err_prefix(err, "'%s'", l->name);
	}
	if (json_object_set_new(g->done, l->name, json_true())) {
		hf_qlinear_free(&q);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	g->j->done += r->rows * r->cols * sizeof(float);
	hf_progress_update(&g->j->bar, g->j->done);
	return add_qlinear(g->s, l->name, &q, err);
}

/* GPTQ with calibration over the model, then every tensor it did not
 * replace as it is. */
static int quantize_gptq(struct job *j, struct out *s, struct hf_err *err)
{
	const struct opts *o = j->o;
	struct hf_gptq_opts go = { 0 };
	struct gptq_sink g = { j, s, json_object() };
	char base[400];
	int rc;

	if (!g.done)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	go.p.bits = (unsigned)o->bits;
	go.p.group_size = o->group_size;
	go.p.desc_act = o->desc_act;
	go.p.sym = o->sym;
	go.p.damp = (float)o->damp;
	go.calib = o->calib;
	go.samples = (size_t)o->calib_samples;
	go.seq_len = (size_t)o->seq_len;
	go.skip = gptq_skip;
	go.skip_ctx = (void *)o;
	rc = hf_gptq_quantize_model(j->dir, &go, gptq_take, &g, err);
	for (size_t i = 0; !rc && i < hf_st_model_count(j->st); i++) {
		const struct hf_tensor *t = hf_st_model_tensor(j->st, i);

		if (quantizable(o, t, base, sizeof(base)) &&
		    json_object_get(g.done, base))
			continue;
		rc = add_as_is(s, t, err);
	}
	json_decref(g.done);
	return rc;
}
#else
/* GPTQ: calibration (lib/quant/calib.c) and the solver and model driver
 * (lib/quant/gptq.h) are not in this build; the command checks its
 * options and shapes and stops here. */
static int quantize_gptq(struct job *j, struct out *s, struct hf_err *err)
{
	(void)j;
	(void)s;
	return hf_err_set(err, HF_EUNSUPPORTED, "--method gptq is not built "
			  "in: this hf has no GPTQ solver (lib/quant/gptq.c)");
}
#endif

static int tick(struct job *j, const struct hf_tensor *t, struct hf_err *err)
{
	j->done += t->nbytes;
	hf_progress_update(&j->bar, j->done);
	if (interrupted())
		return hf_err_set(err, HF_EIO, "interrupted");
	return 0;
}

static int run_quantize(struct job *j, struct out *s, struct hf_err *err)
{
	const struct opts *o = j->o;
	size_t n = hf_st_model_count(j->st);
	char base[400];

	/* shapes first: a bad one is refused before anything is written */
	for (size_t i = 0; i < n; i++) {
		const struct hf_tensor *t = hf_st_model_tensor(j->st, i);
		int conv;

		if (!quantizable(o, t, base, sizeof(base)))
			continue;
		if (hf_wfmt_of_dtype(t->dtype) < 0 &&
		    t->dtype != HF_DTYPE_F64)
			return hf_err_set(err, HF_EUNSUPPORTED, "tensor '%s' "
					  "is stored %s, not as floats: is "
					  "'%s' quantized already?", t->name,
					  hf_dtype_name(t->dtype), j->dir);
		conv = hf_qlin_conv1d(j->gpt2, base);
		if (check_shape(o, base, (size_t)t->shape[conv ? 1 : 0],
				(size_t)t->shape[conv ? 0 : 1], err))
			return err->code;
	}
	if (o->method == M_GPTQ)
		return quantize_gptq(j, s, err);
	for (size_t i = 0; i < n; i++) {
		const struct hf_tensor *t = hf_st_model_tensor(j->st, i);
		struct hf_qlinear q;
		float *W = NULL;
		size_t rows, cols;
		int conv;

		if (!quantizable(o, t, base, sizeof(base))) {
			if (add_as_is(s, t, err) || tick(j, t, err))
				return err->code;
			continue;
		}
		conv = hf_qlin_conv1d(j->gpt2, base);
		rows = (size_t)t->shape[conv ? 1 : 0];
		cols = (size_t)t->shape[conv ? 0 : 1];
		if (read_weight(&W, t, conv, err))
			return err->code;
		if (quantize_one(j, &q, W, rows, cols, t->dtype, err)) {
			free(W);
			hf_qlinear_free(&q);
			return hf_err_prefix(err, "'%s'", t->name);
		}
		free(W);
		if (add_qlinear(s, base, &q, err) || tick(j, t, err))
			return err->code;
	}
	return 0;
}

/* ---- --dequantize ------------------------------------------------------------ */

/* Each quantized linear as the float32 tensor it stands for (export/qlin.h:
 * the same reader the exporters use), its other tensors dropped, every
 * other tensor as it is or in --dtype. */
static int run_dequantize(struct job *j, struct out *s, struct hf_err *err)
{
	const struct opts *o = j->o;
	size_t n = hf_st_model_count(j->st);
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		const struct hf_tensor *t = hf_st_model_tensor(j->st, i);
		enum hf_qlin_role role = hf_qlin_role(t, get_cb, j->st);

		if (role == HF_QLIN_MAIN) {
			struct hf_qlin l;
			char name[400];
			size_t len = strlen(t->name);
			size_t m;
			float *x;

			len -= len > 8 && !strcmp(t->name + len - 8,
						  ".qweight") ? 8 : 7;
			snprintf(name, sizeof(name), "%.*s.weight", (int)len,
				 t->name);
			if ((rc = hf_qlin_find(&l, get_cb, j->st, &j->qc,
					       j->gpt2, name, err)))
				break;
			m = (size_t)hf_tensor_numel(&l.t);
			if (!(x = malloc(m * sizeof(float) + 1))) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				break;
			}
			if ((rc = hf_qlin_read(&l, x, err))) {
				free(x);
				break;
			}
			rc = add_floats(s, l.t.name, x, m, o->dtype, 2,
					l.t.shape, err);
		} else if (role == HF_QLIN_AUX) {
			rc = 0;
		} else if ((o->given & G_DTYPE) && t->dtype != o->dtype &&
			   (t->dtype == HF_DTYPE_F32 ||
			    t->dtype == HF_DTYPE_F16 ||
			    t->dtype == HF_DTYPE_BF16)) {
			size_t m = (size_t)hf_tensor_numel(t);
			float *x = malloc(m * sizeof(float) + 1);

			if (!x) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				break;
			}
			hf_to_f32_n(x, t->data, t->dtype, m);
			rc = add_floats(s, t->name, x, m, o->dtype, t->ndim,
					t->shape, err);
		} else {
			rc = add_as_is(s, t, err);
		}
		if (!rc)
			rc = tick(j, t, err);
	}
	return rc;
}

/* ---- files and directories ------------------------------------------------------ */

/* The small files of a model directory that go along with its weights. */
static const char *const side_files[] = {
	"generation_config.json", "tokenizer.json", "tokenizer_config.json",
	"special_tokens_map.json", "added_tokens.json", "vocab.json",
	"vocab.txt", "merges.txt", "tokenizer.model", "spiece.model",
	"sentencepiece.bpe.model", "chat_template.jinja", "chat_template.json",
	"preprocessor_config.json", "processor_config.json",
};

static int copy_file(const char *from, const char *to, struct hf_err *err)
{
	struct hf_atomic a;
	char *buf;
	size_t len;
	int rc;

	if ((rc = hf_file_read(&buf, &len, from, err)))
		return rc;
	if ((rc = hf_atomic_open(&a, to, err))) {
		free(buf);
		return rc;
	}
	if (fwrite(buf, 1, len, a.f) != len) {
		free(buf);
		hf_atomic_abort(&a);
		return hf_err_errno(err, "cannot write '%s'", to);
	}
	free(buf);
	return hf_atomic_commit(&a, err);
}

static int copy_side_files(const char *from, const char *to,
			   struct hf_err *err)
{
	for (size_t i = 0; i < sizeof(side_files) / sizeof(side_files[0]);
	     i++) {
		char *a = hf_path_join(from, side_files[i]);
		char *b = hf_path_join(to, side_files[i]);
		int rc = 0;

		if (!a || !b)
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		else if (hf_file_exists(a))
			rc = copy_file(a, b, err);
		free(a);
		free(b);
		if (rc)
			return rc;
	}
	return 0;
}

static int write_json(const json_t *v, const char *path, struct hf_err *err)
{
	struct hf_atomic a;
	int rc;

	if ((rc = hf_atomic_open(&a, path, err)))
		return rc;
	if (json_dumpf(v, a.f, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) ||
	    fputc('\n', a.f) == EOF) {
		hf_atomic_abort(&a);
		return hf_err_errno(err, "cannot write '%s'", path);
	}
	return hf_atomic_commit(&a, err);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The output directory may be replaced (--force) if it is empty or a
 * model directory: never a directory of something else. */
static int replaceable(const char *dir)
{
	char *cfg = hf_path_join(dir, "config.json");
	int ok = cfg && hf_file_exists(cfg);
	DIR *d;
	struct dirent *e;

	free(cfg);
	if (ok || !(d = opendir(dir)))
		return ok;
	ok = 1;
	while (ok && (e = readdir(d)))
		ok = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return ok;
}

/* Move tmp into place as dir, replacing what was there (checked). */
static int commit_dir(const char *tmp, const char *dir, struct hf_err *err)
{
	struct stat st;
	char *old;
	size_t n = strlen(dir) + 32;

	if (lstat(dir, &st)) {
		if (rename(tmp, dir))
			return hf_err_errno(err, "cannot rename '%s' to '%s'",
					    tmp, dir);
		return 0;
	}
	if (!(old = malloc(n)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	snprintf(old, n, "%s.old.%ld", dir, (long)getpid());
	if (rename(dir, old)) {
		hf_err_errno(err, "cannot move '%s' aside", dir);
		free(old);
		return HF_EIO;
	}
	if (rename(tmp, dir)) {
		hf_err_errno(err, "cannot rename '%s' to '%s'", tmp, dir);
		rename(old, dir);
		free(old);
		return HF_EIO;
	}
	rm_tree(old);
	free(old);
	return 0;
}

static int prepare_config(struct job *j, struct hf_err *err)
{
	const struct opts *o = j->o;
	const json_t *q = json_object_get(j->config, "quantization_config");
	char buf[128];

	if (o->dequantize) {
		if (!q || json_is_null(q))
			return hf_err_set(err, HF_EINVAL, "'%s' is not "
					  "quantized: its config.json has no "
					  "quantization_config", j->dir);
		if (hf_qcfg_parse(&j->qc, q, "config.json: quantization_config",
				  err))
			return hf_err_prefix(err, "%s", j->dir);
		return 0;
	}
	if (q && !json_is_null(q)) {
		struct hf_qcfg qc;
		struct hf_err e = { 0 };

		if (hf_qcfg_parse(&qc, q, "quantization_config", &e))
			return hf_err_set(err, HF_EINVAL, "'%s' is quantized "
					  "already (%s); quantize the float "
					  "model", j->dir, e.msg);
		return hf_err_set(err, HF_EINVAL, "'%s' is quantized already "
				  "(%s); --dequantize turns it back into "
				  "floats", j->dir,
				  hf_qcfg_describe(&qc, buf, sizeof(buf)));
	}
	return 0;
}

/* The config.json of the output. */
static int output_config(struct job *j, json_t **out, struct hf_err *err)
{
	const struct opts *o = j->o;
	json_t *c = json_deep_copy(j->config);

	if (!c)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (o->dequantize) {
		json_object_del(c, "quantization_config");
		if (o->given & G_DTYPE) {
			const char *tn = torch_name(o->dtype);

			json_object_set_new(c, "torch_dtype", json_string(tn));
			if (json_object_get(c, "dtype"))
				json_object_set_new(c, "dtype",
						    json_string(tn));
		}
	} else {
		json_t *q = qconfig_json(o);

		if (!q) {
			json_decref(c);
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		}
		json_object_set_new(c, "quantization_config", q);
	}
	*out = c;
	return 0;
}

int cmd_quantize(int argc, char **argv)
{
	struct hf_err err = { 0 };
	struct opts o;
	struct job j = { 0 };
	struct out s = { 0 };
	char *dir = NULL, *cfgpath = NULL, *tmp = NULL, *outcfg = NULL;
	json_t *newcfg = NULL;
	int rc, to_stdout;

	if ((rc = parse_opts(&o, argc, argv)))
		return rc < 0 ? 0 : rc;
	to_stdout = !strcmp(o.out, "-");
	j.o = &o;
	if (resolve_model(&dir, o.model, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	j.dir = dir;
	if (!hf_dir_exists(dir)) {
		rc = die(prog, "model directory '%s' does not exist", dir);
		goto out;
	}
	cfgpath = hf_path_join(dir, "config.json");
	if (!cfgpath || hf_json_load_file(&j.config, cfgpath, &err) ||
	    prepare_config(&j, &err)) {
		rc = cfgpath ? die_err(prog, &err) : die(prog, "out of memory");
		goto out;
	}
	if (!json_is_object(j.config)) {
		rc = die(prog, "%s: not a JSON object", cfgpath);
		goto out;
	}
	j.gpt2 = json_is_string(json_object_get(j.config, "model_type")) &&
		 !strcmp(json_string_value(json_object_get(j.config,
							   "model_type")),
			 "gpt2");
	if (!to_stdout && (hf_dir_exists(o.out) || hf_file_exists(o.out))) {
		if (!o.force) {
			rc = die(prog, "'%s' exists; --force replaces it",
				 o.out);
			goto out;
		}
		if (!replaceable(o.out)) {
			rc = die(prog, "'%s' exists and is not a model "
				 "directory; not replacing it", o.out);
			goto out;
		}
	}
	if (hf_st_open_dir(&j.st, dir, &err) || output_config(&j, &newcfg,
							      &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	if (!to_stdout) {
		size_t n = strlen(o.out) + 32;
		char *end;

		if (!(tmp = malloc(n))) {
			rc = die(prog, "out of memory");
			goto out;
		}
		snprintf(tmp, n, "%s", o.out);
		end = tmp + strlen(tmp);
		while (end > tmp + 1 && end[-1] == '/')
			*--end = 0;	/* "out/" names "out" */
		snprintf(end, n - (size_t)(end - tmp), ".tmp.%ld",
			 (long)getpid());
		if (mkdir(tmp, 0777)) {
			rc = die(prog, "cannot create '%s': %s", tmp,
				 strerror(errno));
			free(tmp);
			tmp = NULL;
			goto out;
		}
		s.dir = tmp;
	}
	s.max_shard = o.max_shard;
	if (!(s.map = json_object())) {
		rc = die(prog, "out of memory");
		goto out;
	}
	{
		uint64_t total = 0;

		for (size_t i = 0; i < hf_st_model_count(j.st); i++)
			total += hf_st_model_tensor(j.st, i)->nbytes;
		hf_progress_init(&j.bar, o.dequantize ? "dequantizing" :
				 method_names[o.method], total, 1);
	}
	interrupt_soft(1);
	rc = o.dequantize ? run_dequantize(&j, &s, &err) :
			    run_quantize(&j, &s, &err);
	if (!rc)
		rc = finish_shards(&s, &err);
	hf_progress_finish(&j.bar);
	if (!rc && tmp) {
		outcfg = hf_path_join(tmp, "config.json");
		if (!outcfg)
			rc = hf_err_set(&err, HF_ENOMEM, "out of memory");
		else if (!(rc = write_json(newcfg, outcfg, &err)) &&
			 !(rc = copy_side_files(dir, tmp, &err)))
			rc = commit_dir(tmp, o.out, &err);
	}
	interrupt_soft(0);
	if (rc) {
		if (interrupted()) {
			if (tmp)
				rm_tree(tmp);
			interrupt_exit();
		}
		rc = die_err(prog, &err);
		goto out;
	}
	if (!to_stdout) {
		free(tmp);
		tmp = NULL;
		printf("%s\n", o.out);
	}
	rc = finish_stdout(prog);
out:
	if (tmp)
		rm_tree(tmp);
	free(tmp);
	if (s.w)
		hf_st_writer_free(s.w);
	release(&s);
	free(s.owned);
	free(s.ql);
	json_decref(s.map);
	json_decref(newcfg);
	json_decref(j.config);
	hf_st_model_free(j.st);
	free(outcfg);
	free(cfgpath);
	free(dir);
	return rc;
}
