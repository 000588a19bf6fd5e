/* tools/export.c: hf-export, a model directory written as one GGUF file
 * (lib/export/export.h: hf_gguf_export), as an ONNX model repository, or
 * a GGUF file back into a model directory; a LoRA adapter can be folded
 * into the weights first. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/file.h"
#include "core/progress.h"
#include "export/export.h"

static const char prog[] = "hf-export";

static const char usage[] =
	"usage: hf-export -m <model> [--format gguf] [--type <type>] "
	"-o <file> [--force]\n"
	"                 [--merge-adapter <dir>]\n"
	"       hf-export -m <model> --format onnx -o <dir> [--force] "
	"[--merge-adapter <dir>]\n"
	"       hf-export --from <file.gguf> -o <dir> [--force] "
	"[--dtype <type>]\n"
	"options:\n"
	"  -m, --model <model>       model directory, or org/name[@rev] from "
	"the Hub cache\n"
	"      --format <format>     gguf (default) or onnx\n"
	"      --type <type>         gguf: f32, f16 (default), bf16, q8_0, "
	"q4_0, q4_1, q5_0,\n"
	"                            q5_1, q4_K, q5_K, q6_K, tq1_0, tq2_0\n"
	"  -o, --output <path>       the file (gguf; '-': standard output) or "
	"directory to write\n"
	"      --force               replace an existing output\n"
	"      --from <file.gguf>    write the GGUF file back as an HF model "
	"directory\n"
	"      --dtype <type>        --from: float32, float16 or bfloat16 "
	"weights\n"
	"      --merge-adapter <dir> fold this LoRA adapter into the weights "
	"first\n"
	"  -h, --help\n";

enum { OPT_FORMAT = 256, OPT_TYPE, OPT_FORCE, OPT_FROM, OPT_DTYPE,
       OPT_MERGE };

static const struct option longopts[] = {
	{ "model", required_argument, NULL, 'm' },
	{ "output", required_argument, NULL, 'o' },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "dtype", required_argument, NULL, OPT_DTYPE },
	{ "merge-adapter", required_argument, NULL, OPT_MERGE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	const char *model, *out, *format, *type, *from, *dtype, *adapter;
	int force;
};

static int parse_opts(struct opts *o, int argc, char **argv)
{
	int c;

	memset(o, 0, sizeof(*o));
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
		case OPT_FORMAT:
			if (strcmp(optarg, "gguf") && strcmp(optarg, "onnx"))
				return die_usage(prog, "unknown format '%s' "
						 "(gguf, onnx)", optarg);
			o->format = optarg;
			break;
		case OPT_TYPE:
			if (hf_gguf_export_type_ok(optarg))
				return die_usage(prog, "unknown type '%s' (%s)",
						 optarg, hf_gguf_export_types());
			o->type = optarg;
			break;
		case OPT_FORCE:
			o->force = 1;
			break;
		case OPT_FROM:
			o->from = optarg;
			break;
		case OPT_DTYPE:
			if (strcmp(optarg, "float32") && strcmp(optarg, "f32") &&
			    strcmp(optarg, "float16") && strcmp(optarg, "f16") &&
			    strcmp(optarg, "bfloat16") && strcmp(optarg, "bf16"))
				return die_usage(prog, "bad --dtype '%s' "
						 "(float32, float16, bfloat16)",
						 optarg);
			o->dtype = optarg;
			break;
		case OPT_MERGE:
			o->adapter = optarg;
			break;
		default:
			return die_bad_option(prog, c, argv);
		}
	}
	if (optind < argc)
		return die_usage(prog, "unexpected argument '%s'",
				 argv[optind]);
	if (!o->out)
		return die_usage(prog, "-o <path> is required");
	if (o->from) {
		if (o->model || o->format || o->type || o->adapter)
			return die_usage(prog, "--from reads a GGUF file: it "
					 "takes no -m, --format, --type or "
					 "--merge-adapter");
		if (!strcmp(o->out, "-"))
			return die_usage(prog, "--from writes a directory; "
					 "-o - is for a GGUF file");
		return 0;
	}
	if (o->dtype)
		return die_usage(prog, "--dtype is for --from");
	if (!o->model)
		return die_usage(prog, "-m <model> is required (or --from "
				 "<file.gguf>)");
	if (!o->format)
		o->format = "gguf";
	if (!strcmp(o->format, "onnx")) {
		if (o->type)
			return die_usage(prog, "--type is for --format gguf");
		if (!strcmp(o->out, "-"))
			return die_usage(prog, "--format onnx writes a "
					 "directory; -o - is for a GGUF file");
		return 0;
	}
	if (!o->type)
		o->type = "f16";
	if (!strcmp(o->out, "-") && isatty(STDOUT_FILENO))
		return die_usage(prog, "-o -: standard output is a terminal; "
				 "redirect it to a file or a pipe");
	return 0;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct hf_progress *p = ctx;

	p->total = total;
	hf_progress_update(p, done);
}

static int stop(void *ctx)
{
	(void)ctx;
	return interrupted();
}

static int export_gguf(const struct opts *o)
{
	struct hf_err err = { 0 };
	struct hf_gguf_export_opts eo = { 0 };
	struct hf_progress bar;
	char *dir = NULL;
	int rc, to_stdout = !strcmp(o->out, "-");

	if (resolve_model(&dir, o->model, &err))
		return die_err(prog, &err);
	if (!hf_dir_exists(dir)) {
		rc = die(prog, "model directory '%s' does not exist", dir);
		goto out;
	}
	if (!to_stdout && hf_dir_exists(o->out)) {
		rc = die(prog, "'%s' is a directory; -o names the GGUF file",
			 o->out);
		goto out;
	}
	if (!to_stdout && hf_file_exists(o->out) && !o->force) {
		rc = die(prog, "'%s' exists; --force replaces it", o->out);
		goto out;
	}
	hf_progress_init(&bar, o->type, 0, 1);
	eo.type = o->type;
	eo.progress = on_progress;
	eo.stop = stop;
	eo.ctx = &bar;
	interrupt_soft(1);
	rc = hf_gguf_export(dir, o->out, &eo, &err);
	interrupt_soft(0);
	hf_progress_finish(&bar);
	if (rc) {
		if (interrupted())
			interrupt_exit();
		rc = die_err(prog, &err);
		goto out;
	}
	if (!to_stdout)
		printf("%s\n", o->out);
	rc = finish_stdout(prog);
out:
	free(dir);
	return rc;
}

/* --format onnx: an ONNX model repository in the directory o->out. */
static int export_onnx(const struct opts *o)
{
	struct hf_err err = { 0 };
	char *dir = NULL;
	int rc;

	if (resolve_model(&dir, o->model, &err))
		return die_err(prog, &err);
	if (!hf_dir_exists(dir)) {
		rc = die(prog, "model directory '%s' does not exist", dir);
		goto out;
	}
	if (hf_dir_exists(o->out) && !o->force) {
		rc = die(prog, "'%s' exists; --force replaces it", o->out);
		goto out;
	}
	if (!hf_dir_exists(o->out) && hf_file_exists(o->out)) {
		rc = die(prog, "'%s' is a file; --format onnx writes a "
			 "directory", o->out);
		goto out;
	}
	if (hf_export_onnx(dir, o->out, NULL, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	printf("%s\n", o->out);
	rc = finish_stdout(prog);
out:
	free(dir);
	return rc;
}

/* --merge-adapter: the adapter folded into the model first
 * (hf_merge_adapter, lib/train/merge.c) in a directory under TMPDIR,
 * which the export then reads and which is removed after. */
static int export_merged(struct opts *o)
{
	struct hf_err err = { 0 };
	char *dir = NULL, *ad = NULL, *merged = NULL, tmp[4096];
	const char *td = getenv("TMPDIR");
	int rc;

	if (resolve_model(&dir, o->model, &err) ||
	    resolve_model(&ad, o->adapter, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s/hf-merge-XXXXXX", td && *td ? td : "/tmp");
	if (!mkdtemp(tmp)) {
		rc = die(prog, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (!(merged = hf_path_join(tmp, "model"))) {
		rc = die(prog, "out of memory");
	} else if (hf_merge_adapter(dir, ad, merged, &err)) {
		rc = die_err(prog, &err);
	} else {
		o->model = merged;
		rc = !strcmp(o->format, "onnx") ? export_onnx(o) : export_gguf(o);
	}
	{
		DIR *d = merged ? opendir(merged) : NULL;
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char *f = hf_path_join(merged, e->d_name);

			if (f && e->d_name[0] != '.')
				unlink(f);
			free(f);
		}
		if (d)
			closedir(d);
		if (merged)
			rmdir(merged);
		rmdir(tmp);
	}
out:
	free(merged);
	free(dir);
	free(ad);
	return rc;
}

int cmd_export(int argc, char **argv)
{
	struct opts o;
	int rc;

	if ((rc = parse_opts(&o, argc, argv)))
		return rc < 0 ? 0 : rc;
	if (o.from) {
		struct hf_err err = { 0 };
		struct hf_gguf_import_opts io = { o.dtype, o.force };

		if (hf_gguf_to_hf(o.from, o.out, &io, &err))
			return die_err(prog, &err);
		printf("%s\n", o.out);
		return finish_stdout(prog);
	}
	if (o.adapter)
		return export_merged(&o);
	if (!strcmp(o.format, "onnx"))
		return export_onnx(&o);
	return export_gguf(&o);
}
