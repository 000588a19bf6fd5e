/* test/runtimes/llamacpp.c: llama.cpp itself (node-llama-cpp's prebuilt
 * libllama and libggml, the headers of the release they were built from)
 * run on a GGUF file, for the export tests to hold hf's numbers and files
 * against. Not part of hf: the test scripts compile it into their temp dir.
 *
 * usage: llamacpp logits <model.gguf> <id,id,...> [<id,id,...> ...]
 *        llamacpp embed <model.gguf> <id,id,...> [<id,id,...> ...]
 *        llamacpp greedy <model.gguf> <id,id,...> <n>
 *        llamacpp tokenize <model.gguf> [--jsonl]
 *        llamacpp quantize <in.gguf> <out.gguf> <type>
 *        llamacpp tensors <a.gguf> <b.gguf>
 *        llamacpp backend
 *
 * logits: one llama_decode of each id list, with an output at every
 *   position, printed as {"ids": [...], "logits": [[...], ...]} (one row per
 *   position), the record hf-run --task logits prints. The context is one
 *   sequence, KV cache f32 and flash attention off (the f16 cache that is
 *   llama.cpp's default rounds K and V to 11 bits, far above the 1e-4 the
 *   f32 comparison needs), batch = ubatch = the context, 2 threads; the
 *   memory is cleared between lists, so each is scored from position 0.
 * embed: the same decode with embeddings on and mean pooling over the
 *   sequence, printed as {"ids": [...], "embedding": [...]}, what hf-run
 *   --task embed gives for an encoder without sentence-transformers files.
 * greedy: the n ids of argmax decoding after the prompt (no stop at EOS),
 *   {"ids": [...]}.
 * tokenize: each line of stdin (or the "text" of each JSON record with
 *   --jsonl) through llama_tokenize with add_special on, so BOS/EOS are
 *   added as the file's tokenizer.ggml.add_bos_token/add_eos_token say, and
 *   parse_special on, so special tokens written in the text are matched as
 *   the HF tokenizers library matches added tokens: {"ids": [...]}, the
 *   record hf-tokenize prints with its default add_special_tokens.
 * quantize: llama_model_quantize() with llama_model_quantize_default_params()
 *   and the ftype llama-quantize's name for <type> gives (Q4_K is Q4_K_M,
 *   Q5_K is Q5_K_M, case does not matter), no importance matrix: what
 *   `llama-quantize in.gguf out.gguf TYPE` writes.
 * tensors: with ggml's gguf reader, every tensor of a against the tensor of
 *   the same name in b: type, shape, then bytes. Prints "N tensors
 *   identical" and exits 0, or names the first difference (tensor, and the
 *   byte and block where the data first differs) on stderr, with the count
 *   of tensors that differ, and exits 1.
 * backend: the path of the CPU backend ggml picks for this machine, to
 *   pass as LLAMACPP_BACKEND to the runs that follow.
 *
 * Exit status: 0 ok, 1 failure (one line on stderr naming the file), 2
 * usage. llama.cpp's own log goes to stderr at warnings and errors only;
 * LLAMACPP_LOG=1 in the environment passes all of it. LLAMACPP_LIBS: the
 * directory of the ggml backends; LLAMACPP_BACKEND: the one to load.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <jansson.h>

#include "ggml-backend.h"
#include "ggml.h"
#include "gguf.h"
#include "llama.h"

static const char usage[] =
	"usage: llamacpp logits <model.gguf> <id,id,...> [<id,id,...> ...]\n"
	"       llamacpp embed <model.gguf> <id,id,...> [<id,id,...> ...]\n"
	"       llamacpp greedy <model.gguf> <id,id,...> <n>\n"
	"       llamacpp tokenize <model.gguf> [--jsonl]\n"
	"       llamacpp quantize <in.gguf> <out.gguf> <type>\n"
	"       llamacpp tensors <a.gguf> <b.gguf>\n"
	"       llamacpp backend\n";

static int verbose_log;
static char cpu_backend[4096];	/* the file ggml loaded its CPU backend from */

static void log_cb(enum ggml_log_level level, const char *text, void *ud)
{
	static const char loaded[] = "loaded CPU backend from ";
	static int last = GGML_LOG_LEVEL_NONE;
	const char *p = strstr(text, loaded);

	(void)ud;
	if (p) {
		snprintf(cpu_backend, sizeof(cpu_backend), "%s",
			 p + strlen(loaded));
		cpu_backend[strcspn(cpu_backend, "\n")] = 0;
	}
	if (level != GGML_LOG_LEVEL_CONT)
		last = level;
	if (verbose_log || last >= GGML_LOG_LEVEL_WARN)
		fputs(text, stderr);
}

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("llamacpp: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int bad_usage(const char *why)
{
	fprintf(stderr, "llamacpp: %s\n%s", why, usage);
	return 2;
}

/* "1,2,3" -> ids; *n set; NULL on a malformed list. */
static llama_token *parse_ids(const char *s, int *n)
{
	size_t cap = 16;
	int k = 0;
	llama_token *ids = malloc(cap * sizeof(*ids));

	if (!ids)
		return NULL;
	for (;;) {
		char *end;
		long v;

		errno = 0;
		v = strtol(s, &end, 10);
		if (end == s || errno || v < 0 || v > INT32_MAX ||
		    (*end && *end != ',')) {
			free(ids);
			return NULL;
		}
		if ((size_t)k == cap) {
			llama_token *t = realloc(ids, 2 * cap * sizeof(*ids));

			if (!t) {
				free(ids);
				return NULL;
			}
			ids = t;
			cap *= 2;
		}
		ids[k++] = (llama_token)v;
		if (!*end)
			break;
		s = end + 1;
	}
	*n = k;
	return ids;
}

/* 0, or 1 after saying why on stderr. */
static int backend_init(void)
{
	const char *dir = getenv("LLAMACPP_LIBS");
	const char *one = getenv("LLAMACPP_BACKEND");

	llama_log_set(log_cb, NULL);
	/* the CPU backends (libggml-cpu-<variant>.so) lie next to libggml;
	 * the test passes that directory, which is also the binary's rpath.
	 * Loading them all opens every variant to pick the best, which costs
	 * more than scoring a tiny model: LLAMACPP_BACKEND names the one to
	 * load (the test finds it once, from the log of a first run) */
	if (one && *one)
		ggml_backend_load(one);
	else if (dir && *dir)
		ggml_backend_load_all_from_path(dir);
	else
		ggml_backend_load_all();
	if (!ggml_backend_dev_count())
		return fail("no ggml backend loaded from '%s' (LLAMACPP_LIBS: "
			    "the directory of libggml-cpu-*.so)", one && *one ?
			    one : dir && *dir ? dir : "the default places");
	llama_backend_init();
	return 0;
}

static struct llama_model *load(const char *path, int vocab_only)
{
	struct llama_model_params mp = llama_model_default_params();

	mp.n_gpu_layers = 0;
	mp.vocab_only = vocab_only;
	return llama_model_load_from_file(path, mp);
}

/* A context of n_ctx tokens, batch = ubatch = n_ctx (an encoder must see
 * its whole input in one ubatch), f32 KV cache, no flash attention. */
static struct llama_context *context(struct llama_model *m, int n_ctx,
				     int embeddings)
{
	struct llama_context_params cp = llama_context_default_params();

	cp.n_ctx = (uint32_t)n_ctx;
	cp.n_batch = (uint32_t)n_ctx;
	cp.n_ubatch = (uint32_t)n_ctx;
	cp.n_seq_max = 1;
	cp.n_threads = 2;
	cp.n_threads_batch = 2;
	cp.type_k = GGML_TYPE_F32;
	cp.type_v = GGML_TYPE_F32;
	cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
	cp.no_perf = true;
	if (embeddings) {
		cp.embeddings = true;
		cp.pooling_type = LLAMA_POOLING_TYPE_MEAN;
	}
	return llama_init_from_model(m, cp);
}

/* Decode ids[0..n) at positions pos0.. in sequence 0, with an output at
 * every position when all_out, else at the last only. */
static int decode(struct llama_context *ctx, const llama_token *ids, int n,
		  int pos0, int all_out)
{
	struct llama_batch b = llama_batch_init(n, 0, 1);
	int rc;

	for (int i = 0; i < n; i++) {
		b.token[i] = ids[i];
		b.pos[i] = pos0 + i;
		b.n_seq_id[i] = 1;
		b.seq_id[i][0] = 0;
		b.logits[i] = all_out || i == n - 1;
	}
	b.n_tokens = n;
	rc = llama_decode(ctx, b);
	llama_batch_free(b);
	return rc;
}

static void print_ids(const llama_token *ids, int n)
{
	putchar('[');
	for (int i = 0; i < n; i++)
		printf(i ? ", %d" : "%d", ids[i]);
	putchar(']');
}

/* %.9g round-trips a float; NaN and Infinity are written as Python's json
 * reads them, so a broken file fails the comparison, not the parse. */
static void print_floats(const float *x, int n)
{
	putchar('[');
	for (int i = 0; i < n; i++) {
		if (i)
			fputs(", ", stdout);
		if (isnan(x[i]))
			fputs("NaN", stdout);
		else if (isinf(x[i]))
			fputs(x[i] > 0 ? "Infinity" : "-Infinity", stdout);
		else
			printf("%.9g", x[i]);
	}
	putchar(']');
}

static int finish_stdout(void)
{
	if (fflush(stdout) || ferror(stdout))
		return fail("writing stdout: %s", strerror(errno));
	return 0;
}

/* logits / embed: every id list in argv[0..argc). */
static int cmd_score(const char *path, int argc, char **argv, int embed)
{
	struct llama_model *m;
	struct llama_context *ctx;
	const struct llama_vocab *vocab;
	llama_token **lists = calloc((size_t)argc, sizeof(*lists));
	int *lens = calloc((size_t)argc, sizeof(*lens));
	int n_ctx = 0, rc = 1, n_vocab, n_embd;

	if (!lists || !lens)
		return fail("out of memory");
	for (int i = 0; i < argc; i++) {
		lists[i] = parse_ids(argv[i], &lens[i]);
		if (!lists[i]) {
			fprintf(stderr, "llamacpp: bad id list '%s'\n%s",
				argv[i], usage);
			rc = 2;
			goto out_lists;
		}
		if (lens[i] > n_ctx)
			n_ctx = lens[i];
	}
	m = load(path, 0);
	if (!m) {
		rc = fail("'%s': llama.cpp could not load the model", path);
		goto out_lists;
	}
	vocab = llama_model_get_vocab(m);
	n_vocab = llama_vocab_n_tokens(vocab);
	n_embd = llama_model_n_embd(m);
	ctx = context(m, n_ctx, embed);
	if (!ctx) {
		rc = fail("'%s': llama.cpp could not make a context of %d tokens",
			  path, n_ctx);
		goto out_model;
	}
	for (int i = 0; i < argc; i++) {
		for (int t = 0; t < lens[i]; t++)
			if (lists[i][t] >= n_vocab) {
				rc = fail("'%s': id %d is past the vocabulary "
					  "(%d tokens)", path, lists[i][t],
					  n_vocab);
				goto out_ctx;
			}
		llama_memory_clear(llama_get_memory(ctx), true);
		if (decode(ctx, lists[i], lens[i], 0, 1)) {
			rc = fail("'%s': llama_decode failed on list %d", path,
				  i);
			goto out_ctx;
		}
		fputs("{\"ids\": ", stdout);
		print_ids(lists[i], lens[i]);
		if (embed) {
			const float *e = llama_get_embeddings_seq(ctx, 0);

			if (!e) {
				rc = fail("'%s': no pooled embedding", path);
				goto out_ctx;
			}
			fputs(", \"embedding\": ", stdout);
			print_floats(e, n_embd);
		} else {
			fputs(", \"logits\": [", stdout);
			for (int t = 0; t < lens[i]; t++) {
				const float *l = llama_get_logits_ith(ctx, t);

				if (!l) {
					rc = fail("'%s': no logits at position %d",
						  path, t);
					goto out_ctx;
				}
				if (t)
					fputs(", ", stdout);
				print_floats(l, n_vocab);
			}
			putchar(']');
		}
		fputs("}\n", stdout);
	}
	rc = finish_stdout();
out_ctx:
	llama_free(ctx);
out_model:
	llama_model_free(m);
out_lists:
	for (int i = 0; i < argc; i++)
		free(lists[i]);
	free(lists);
	free(lens);
	return rc;
}

static int argmax(const float *x, int n)
{
	int best = 0;

	for (int i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

static int cmd_greedy(const char *path, const char *list, const char *count)
{
	struct llama_model *m;
	struct llama_context *ctx;
	llama_token *ids, *out;
	int n, rc = 1, n_vocab;
	char *end;
	long want;

	errno = 0;
	want = strtol(count, &end, 10);
	if (*end || end == count || errno || want < 1 || want > 100000)
		return bad_usage("bad token count");
	ids = parse_ids(list, &n);
	if (!ids)
		return bad_usage("bad id list");
	out = malloc((size_t)want * sizeof(*out));
	m = load(path, 0);
	if (!out || !m) {
		rc = fail("'%s': llama.cpp could not load the model", path);
		goto out_ids;
	}
	n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(m));
	ctx = context(m, n + (int)want, 0);
	if (!ctx) {
		rc = fail("'%s': llama.cpp could not make a context", path);
		goto out_model;
	}
	if (decode(ctx, ids, n, 0, 0)) {
		rc = fail("'%s': llama_decode failed on the prompt", path);
		goto out_ctx;
	}
	for (int k = 0; k < want; k++) {
		out[k] = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
		if (k + 1 < want && decode(ctx, &out[k], 1, n + k, 0)) {
			rc = fail("'%s': llama_decode failed at step %d", path,
				  k + 1);
			goto out_ctx;
		}
	}
	fputs("{\"ids\": ", stdout);
	print_ids(out, (int)want);
	fputs("}\n", stdout);
	rc = finish_stdout();
out_ctx:
	llama_free(ctx);
out_model:
	llama_model_free(m);
out_ids:
	free(out);
	free(ids);
	return rc;
}

/* One line of stdin without its newline, in a buffer that grows; NULL at
 * the end. */
static char *read_line(char **buf, size_t *cap, size_t *len)
{
	ssize_t r = getline(buf, cap, stdin);

	if (r < 0)
		return NULL;
	if (r > 0 && (*buf)[r - 1] == '\n')
		(*buf)[--r] = 0;
	*len = (size_t)r;
	return *buf;
}

static int cmd_tokenize(const char *path, int jsonl)
{
	struct llama_model *m = load(path, 1);
	const struct llama_vocab *vocab;
	char *line = NULL;
	size_t cap = 0, len;
	llama_token *ids = NULL;
	int n_ids = 0, rc = 1, lineno = 0;

	if (!m)
		return fail("'%s': llama.cpp could not load the vocabulary",
			    path);
	vocab = llama_model_get_vocab(m);
	while (read_line(&line, &cap, &len)) {
		json_t *rec = NULL;
		const char *text = line;
		size_t tlen = len;
		int n;

		lineno++;
		if (jsonl) {
			json_error_t jerr;
			json_t *t;

			rec = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
			t = rec ? json_object_get(rec, "text") : NULL;
			if (!json_is_string(t)) {
				json_decref(rec);
				rc = fail("stdin line %d: not a {\"text\": ...} "
					  "record", lineno);
				goto out;
			}
			text = json_string_value(t);
			tlen = json_string_length(t);
		}
		n = llama_tokenize(vocab, text, (int32_t)tlen, ids, n_ids,
				   true, true);
		if (n < 0) {
			llama_token *t = realloc(ids, (size_t)-n * sizeof(*ids));

			if (!t) {
				json_decref(rec);
				rc = fail("out of memory");
				goto out;
			}
			ids = t;
			n_ids = -n;
			n = llama_tokenize(vocab, text, (int32_t)tlen, ids,
					   n_ids, true, true);
		}
		json_decref(rec);
		if (n < 0) {
			rc = fail("'%s': llama_tokenize failed on line %d",
				  path, lineno);
			goto out;
		}
		fputs("{\"ids\": ", stdout);
		print_ids(ids, n);
		fputs("}\n", stdout);
	}
	rc = finish_stdout();
out:
	free(ids);
	free(line);
	llama_model_free(m);
	return rc;
}

/* llama-quantize's names (tools/quantize/quantize.cpp QUANT_OPTIONS) for the
 * types hf-export writes, and the aliases it accepts for them. */
static const struct {
	const char *name;
	enum llama_ftype ftype;
} ftypes[] = {
	{ "F32", LLAMA_FTYPE_ALL_F32 },
	{ "F16", LLAMA_FTYPE_MOSTLY_F16 },
	{ "BF16", LLAMA_FTYPE_MOSTLY_BF16 },
	{ "Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0 },
	{ "Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0 },
	{ "Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1 },
	{ "Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0 },
	{ "Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1 },
	{ "Q2_K", LLAMA_FTYPE_MOSTLY_Q2_K },
	{ "Q3_K", LLAMA_FTYPE_MOSTLY_Q3_K_M },
	{ "Q3_K_S", LLAMA_FTYPE_MOSTLY_Q3_K_S },
	{ "Q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M },
	{ "Q3_K_L", LLAMA_FTYPE_MOSTLY_Q3_K_L },
	{ "Q4_K", LLAMA_FTYPE_MOSTLY_Q4_K_M },
	{ "Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S },
	{ "Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M },
	{ "Q5_K", LLAMA_FTYPE_MOSTLY_Q5_K_M },
	{ "Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S },
	{ "Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M },
	{ "Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K },
	{ "TQ1_0", LLAMA_FTYPE_MOSTLY_TQ1_0 },
	{ "TQ2_0", LLAMA_FTYPE_MOSTLY_TQ2_0 },
};

static int cmd_quantize(const char *in, const char *out, const char *type)
{
	struct llama_model_quantize_params qp =
		llama_model_quantize_default_params();
	size_t i;

	for (i = 0; i < sizeof(ftypes) / sizeof(ftypes[0]); i++)
		if (!strcasecmp(ftypes[i].name, type))
			break;
	if (i == sizeof(ftypes) / sizeof(ftypes[0]))
		return bad_usage("unknown type (llama-quantize's names: q8_0, "
				 "q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K, "
				 "tq1_0, tq2_0, f16, bf16, f32, ...)");
	qp.ftype = ftypes[i].ftype;
	if (llama_model_quantize(in, out, &qp))
		return fail("'%s': llama_model_quantize to %s failed", in,
			    ftypes[i].name);
	return 0;
}

struct gguf_file {
	const char *path;
	struct gguf_context *g;
	FILE *f;
};

static int gguf_open(struct gguf_file *gf, const char *path)
{
	struct gguf_init_params ip = { .no_alloc = true, .ctx = NULL };

	gf->path = path;
	gf->f = NULL;
	gf->g = gguf_init_from_file(path, ip);
	if (!gf->g)
		return fail("'%s': ggml's gguf reader rejects the file", path);
	gf->f = fopen(path, "rb");
	if (!gf->f) {
		gguf_free(gf->g);
		return fail("'%s': %s", path, strerror(errno));
	}
	return 0;
}

static void gguf_close(struct gguf_file *gf)
{
	if (gf->f)
		fclose(gf->f);
	gguf_free(gf->g);
}

/* Tensor id's bytes into buf (size bytes). */
static int gguf_read(struct gguf_file *gf, int64_t id, void *buf, size_t size)
{
	size_t off = gguf_get_data_offset(gf->g) +
		gguf_get_tensor_offset(gf->g, id);

	if (fseeko(gf->f, (off_t)off, SEEK_SET) ||
	    fread(buf, 1, size, gf->f) != size)
		return fail("'%s': tensor '%s' (%zu bytes at %zu) cannot be "
			    "read", gf->path, gguf_get_tensor_name(gf->g, id),
			    size, off);
	return 0;
}

static void shape_str(char *s, size_t n, const int64_t *ne)
{
	int dims = GGML_MAX_DIMS;

	while (dims > 1 && ne[dims - 1] == 1)
		dims--;
	s[0] = 0;
	for (int d = 0; d < dims; d++) {
		size_t k = strlen(s);

		snprintf(s + k, n - k, d ? ", %lld" : "%lld",
			 (long long)ne[d]);
	}
}

static int cmd_tensors(const char *pa, const char *pb)
{
	struct gguf_file a, b;
	int64_t na, nb;
	int rc = 1, differ = 0;
	char first[512] = "";
	unsigned char *ba = NULL, *bb = NULL;

	if (gguf_open(&a, pa))
		return 1;
	if (gguf_open(&b, pb)) {
		gguf_close(&a);
		return 1;
	}
	na = gguf_get_n_tensors(a.g);
	nb = gguf_get_n_tensors(b.g);
	for (int64_t j = 0; j < nb; j++)
		if (gguf_find_tensor(a.g, gguf_get_tensor_name(b.g, j)) < 0) {
			if (!differ++)
				snprintf(first, sizeof(first),
					 "tensor '%s' is in '%s' but not in '%s'",
					 gguf_get_tensor_name(b.g, j), pb, pa);
		}
	for (int64_t i = 0; i < na; i++) {
		const char *name = gguf_get_tensor_name(a.g, i);
		int64_t j = gguf_find_tensor(b.g, name);
		enum ggml_type ta, tb;
		const int64_t *nea, *neb;
		char sa[128], sb[128];
		size_t size;

		if (j < 0) {
			if (!differ++)
				snprintf(first, sizeof(first),
					 "tensor '%s' is in '%s' but not in '%s'",
					 name, pa, pb);
			continue;
		}
		ta = gguf_get_tensor_type(a.g, i);
		tb = gguf_get_tensor_type(b.g, j);
		if (ta != tb) {
			if (!differ++)
				snprintf(first, sizeof(first),
					 "tensor '%s': type %s in '%s', %s in '%s'",
					 name, ggml_type_name(ta), pa,
					 ggml_type_name(tb), pb);
			continue;
		}
		nea = gguf_get_tensor_ne(a.g, i);
		neb = gguf_get_tensor_ne(b.g, j);
		shape_str(sa, sizeof(sa), nea);
		shape_str(sb, sizeof(sb), neb);
		if (memcmp(nea, neb, GGML_MAX_DIMS * sizeof(*nea))) {
			if (!differ++)
				snprintf(first, sizeof(first),
					 "tensor '%s': shape [%s] in '%s', [%s] in '%s'",
					 name, sa, pa, sb, pb);
			continue;
		}
		size = gguf_get_tensor_size(a.g, i);
		if (size != gguf_get_tensor_size(b.g, j)) {
			if (!differ++)
				snprintf(first, sizeof(first),
					 "tensor '%s': %zu bytes in '%s', %zu in '%s'",
					 name, size, pa,
					 gguf_get_tensor_size(b.g, j), pb);
			continue;
		}
		ba = realloc(ba, size ? size : 1);
		bb = realloc(bb, size ? size : 1);
		if (!ba || !bb) {
			rc = fail("out of memory");
			goto out;
		}
		if (gguf_read(&a, i, ba, size) || gguf_read(&b, j, bb, size))
			goto out;
		if (memcmp(ba, bb, size)) {
			size_t k = 0, blk = ggml_type_size(ta);

			while (ba[k] == bb[k])
				k++;
			if (!differ++)
				snprintf(first, sizeof(first),
					 "tensor '%s' (%s [%s]): bytes differ "
					 "first at byte %zu of %zu (block %zu of "
					 "%zu bytes): %02x in '%s', %02x in '%s'",
					 name, ggml_type_name(ta), sa, k, size,
					 k / blk, blk, ba[k], pa, bb[k], pb);
		}
	}
	if (differ) {
		fail("%s (%d tensor%s)", first, differ,
		     differ == 1 ? " differs" : "s differ");
		goto out;
	}
	printf("%lld tensors identical\n", (long long)na);
	rc = finish_stdout();
out:
	free(ba);
	free(bb);
	gguf_close(&a);
	gguf_close(&b);
	return rc;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int rc;

	verbose_log = getenv("LLAMACPP_LOG") && *getenv("LLAMACPP_LOG") &&
		strcmp(getenv("LLAMACPP_LOG"), "0");
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "tensors")) {
		/* needs no backend; llama_log_set also routes ggml's log,
		 * where the gguf reader says why it rejects a file */
		if (argc != 4)
			return bad_usage("tensors takes two files");
		llama_log_set(log_cb, NULL);
		return cmd_tensors(argv[2], argv[3]);
	}
	if (!strcmp(cmd, "backend") && argc == 2) {
		if (backend_init())
			return 1;
		if (!cpu_backend[0])
			return fail("ggml names no CPU backend it loaded");
		puts(cpu_backend);
		return finish_stdout();
	}
	if (((!strcmp(cmd, "logits") || !strcmp(cmd, "embed")) && argc >= 4) ||
	    (!strcmp(cmd, "greedy") && argc == 5) ||
	    (!strcmp(cmd, "tokenize") && (argc == 3 || (argc == 4 &&
	     !strcmp(argv[3], "--jsonl")))) ||
	    (!strcmp(cmd, "quantize") && argc == 5)) {
		if (backend_init())
			return 1;
	} else {
		return bad_usage(argc > 1 ? "bad arguments" : "no command");
	}
	if (cmd[0] == 'l' || cmd[0] == 'e')
		rc = cmd_score(argv[2], argc - 3, argv + 3, cmd[0] == 'e');
	else if (cmd[0] == 'g')
		rc = cmd_greedy(argv[2], argv[3], argv[4]);
	else if (cmd[0] == 't')
		rc = cmd_tokenize(argv[2], argc == 4);
	else
		rc = cmd_quantize(argv[2], argv[3], argv[4]);
	llama_backend_free();
	return rc;
}
