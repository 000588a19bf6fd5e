/* tools/inspect.c: hf-inspect, a summary of a model or safetensors file
 * (config, tensors by layer, sizes, metadata), as text or JSON, and a
 * check of every file of a model directory. */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/file.h"
#include "core/json.h"
#include "backend/vulkan/vk.h"
#include "model/config.h"
#include "st/st.h"

static const char usage[] =
	"usage: hf-inspect [--json] <file|dir|org/name[@rev]|->\n"
	"       hf-inspect --validate <file|dir|org/name[@rev]|->\n"
	"       hf-inspect --devices [--json]\n";

static const char *prog = "hf-inspect";

/* A tensor and where its name puts it: "<prefix><layer>.<rest>" for the
 * first all-digit component (model.layers.3.mlp...), else layer -1. */
struct entry {
	const struct hf_tensor *t;
	size_t prefix_len;
	long layer;
	const char *rest;
};

static void split_layer(struct entry *e)
{
	const char *n = e->t->name, *p = n;

	e->layer = -1;
	e->prefix_len = 0;
	e->rest = n;
	while (*p) {
		const char *end = p + strcspn(p, ".");
		const char *q = p;

		while (q < end && *q >= '0' && *q <= '9')
			q++;
		if (q == end && end > p && end - p < 9 && *end == '.') {
			e->layer = strtol(p, NULL, 10);
			e->prefix_len = (size_t)(p - n);
			e->rest = end + 1;
			return;
		}
		p = *end ? end + 1 : end;
	}
}

/* Plain tensors first, by name; then layers by prefix and number, each
 * layer's tensors by the rest of the name. */
static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c;

	if ((x->layer < 0) != (y->layer < 0))
		return x->layer < 0 ? -1 : 1;
	if (x->layer < 0)
		return strcmp(x->t->name, y->t->name);
	c = strncmp(x->t->name, y->t->name, x->prefix_len < y->prefix_len ?
		    x->prefix_len : y->prefix_len);
	if (c || x->prefix_len != y->prefix_len)
		return c ? c : x->prefix_len < y->prefix_len ? -1 : 1;
	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	return strcmp(x->rest, y->rest);
}

static void shape_str(char *buf, size_t cap, const struct hf_tensor *t)
{
	size_t n = (size_t)snprintf(buf, cap, "[");

	for (int i = 0; i < t->ndim && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64,
				      i ? ", " : "", t->shape[i]);
	if (n < cap)
		snprintf(buf + n, cap - n, "]");
}

static void human(char *buf, size_t cap, double v, const char *unit)
{
	static const char *sfx[] = { "", "K", "M", "G", "T" };
	int i = 0;

	while (v >= 1000 && i < 4) {
		v /= 1000;
		i++;
	}
	if (i == 0)
		snprintf(buf, cap, "%.0f%s%s", v, *unit ? " " : "", unit);
	else
		snprintf(buf, cap, "%.1f %s%s", v, sfx[i], unit);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

struct model {
	const char *path;
	int is_dir;
	struct hf_st_model *st;
	struct hf_config *cfg;	/* NULL when there is no config.json */
	struct entry *e;
	size_t n;
	uint64_t params, tensor_bytes, disk_bytes;
	uint64_t per_dtype[HF_DTYPE_COUNT];
};

static void model_free(struct model *m)
{
	hf_st_model_free(m->st);
	hf_config_free(m->cfg);
	free(m->e);
}

static int model_open(struct model *m, const char *path, struct hf_err *err)
{
	int rc;

	memset(m, 0, sizeof(*m));
	m->path = path;
	m->is_dir = hf_dir_exists(path);
	if ((rc = hf_st_open_dir(&m->st, path, err)))
		return rc;
	if (m->is_dir) {
		char *cp = hf_path_join(path, "config.json");

		if (!cp)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if (hf_file_exists(cp))
			rc = hf_config_load(&m->cfg, cp, err);
		free(cp);
		if (rc)
			return rc;
	}
	m->n = hf_st_model_count(m->st);
	m->e = calloc(m->n + 1, sizeof(*m->e));
	if (!m->e)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < m->n; i++) {
		const struct hf_tensor *t = hf_st_model_tensor(m->st, i);

		m->e[i].t = t;
		split_layer(&m->e[i]);
		m->params += hf_tensor_numel(t);
		m->tensor_bytes += t->nbytes;
		m->per_dtype[t->dtype]++;
	}
	qsort(m->e, m->n, sizeof(*m->e), cmp_entry);
	for (size_t i = 0; i < hf_st_model_nfiles(m->st); i++)
		m->disk_bytes += hf_st_size(hf_st_model_file(m->st, i));
	return 0;
}

static void print_id(int64_t id)
{
	if (id < 0)
		printf("-");
	else
		printf("%" PRId64, id);
}

static void print_config(const struct hf_config *c)
{
	const struct hf_rope_scaling *r = &c->rope_scaling;

	printf("architecture  %s (%s)\n", *c->architecture ?
	       c->architecture : "-", c->model_type);
	printf("config        vocab %" PRId64 ", hidden %" PRId64
	       ", intermediate %" PRId64 ", layers %" PRId64 ", heads %"
	       PRId64 ", kv heads %" PRId64 ", head dim %" PRId64 "\n",
	       c->vocab_size, c->hidden_size, c->intermediate_size,
	       c->num_hidden_layers, c->num_attention_heads,
	       c->num_key_value_heads, c->head_dim);
	printf("              context %" PRId64 ", %s %g, act %s",
	       c->max_position_embeddings,
	       *c->norm_eps_key ? c->norm_eps_key : "norm eps", c->norm_eps,
	       *c->hidden_act ? c->hidden_act : "-");
	if (strcmp(c->model_type, "bert") && strcmp(c->model_type, "roberta")
	    && strcmp(c->model_type, "distilbert") &&
	    strcmp(c->model_type, "gpt2"))
		printf(", rope theta %g", c->rope_theta);
	if (*r->type)
		printf(", rope scaling %s (factor %g)", r->type, r->factor);
	printf("\n              tied embeddings %s, dtype %s",
	       c->tie_word_embeddings ? "yes" : "no",
	       *c->torch_dtype ? c->torch_dtype : "-");
	if (c->num_local_experts)
		printf(", experts %" PRId64 " (top %" PRId64 ")",
		       c->num_local_experts, c->num_experts_per_tok);
	if (c->sliding_window && c->use_sliding_window)
		printf(", sliding window %" PRId64, c->sliding_window);
	printf("\n              bos ");
	print_id(c->bos_token_id);
	printf(", eos ");
	for (int i = 0; i < c->n_eos; i++)
		printf("%s%" PRId64, i ? "," : "", c->eos_token_id[i]);
	if (!c->n_eos)
		printf("-");
	printf(", pad ");
	print_id(c->pad_token_id);
	printf("\n");
}

static void print_text(const struct model *m)
{
	char a[64], b[64], shp[256];
	size_t i = 0;

	printf("model         %s\n", m->path);
	if (m->cfg)
		print_config(m->cfg);
	for (size_t f = 0; f < hf_st_model_nfiles(m->st); f++) {
		const struct hf_st *st = hf_st_model_file(m->st, f);

		printf("%s %s (%zu bytes, %zu tensors)\n", f ? "             " :
		       "files        ", base_name(hf_st_path(st)),
		       hf_st_size(st), hf_st_count(st));
		for (size_t k = 0; k < hf_st_meta_count(st); k++) {
			const char *key, *val;

			hf_st_meta(st, k, &key, &val);
			printf("                metadata %s = %s\n", key, val);
		}
	}
	human(a, sizeof(a), (double)m->params, "");
	human(b, sizeof(b), (double)m->tensor_bytes, "B");
	printf("parameters    %" PRIu64 " (%s)\n", m->params, a);
	printf("size          %s of tensor data, %" PRIu64 " bytes on disk\n",
	       b, m->disk_bytes);
	printf("dtypes       ");
	for (int t = 0; t < HF_DTYPE_COUNT; t++)
		if (m->per_dtype[t])
			printf(" %s x%" PRIu64, hf_dtype_name(t),
			       m->per_dtype[t]);
	printf("\ntensors       %zu\n", m->n);
	while (i < m->n) {
		const struct entry *e = &m->e[i];
		size_t j = i;
		uint64_t p = 0;

		if (e->layer < 0) {
			shape_str(shp, sizeof(shp), e->t);
			printf("  %-44s %-7s %s\n", e->t->name,
			       hf_dtype_name(e->t->dtype), shp);
			i++;
			continue;
		}
		while (j < m->n && m->e[j].layer == e->layer &&
		       m->e[j].prefix_len == e->prefix_len &&
		       !strncmp(m->e[j].t->name, e->t->name, e->prefix_len))
			p += hf_tensor_numel(m->e[j++].t);
		human(a, sizeof(a), (double)p, "");
		printf("  %.*s%ld (%zu tensors, %s parameters)\n",
		       (int)e->prefix_len, e->t->name, e->layer, j - i, a);
		for (; i < j; i++) {
			shape_str(shp, sizeof(shp), m->e[i].t);
			printf("    %-42s %-7s %s\n", m->e[i].rest,
			       hf_dtype_name(m->e[i].t->dtype), shp);
		}
	}
}

static json_t *config_json(const struct hf_config *c)
{
	json_t *o = json_object(), *eos = json_array();

	for (int i = 0; i < c->n_eos; i++)
		json_array_append_new(eos, json_integer(c->eos_token_id[i]));
	json_object_set_new(o, "model_type", json_string(c->model_type));
	json_object_set_new(o, "architecture", json_string(c->architecture));
	json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
	json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
	json_object_set_new(o, "intermediate_size",
			    json_integer(c->intermediate_size));
	json_object_set_new(o, "num_hidden_layers",
			    json_integer(c->num_hidden_layers));
	json_object_set_new(o, "num_attention_heads",
			    json_integer(c->num_attention_heads));
	json_object_set_new(o, "num_key_value_heads",
			    json_integer(c->num_key_value_heads));
	json_object_set_new(o, "head_dim", json_integer(c->head_dim));
	json_object_set_new(o, "max_position_embeddings",
			    json_integer(c->max_position_embeddings));
	json_object_set_new(o, "norm_eps", json_real(c->norm_eps));
	json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
	json_object_set_new(o, "rope_scaling", *c->rope_scaling.type ?
			    json_string(c->rope_scaling.type) : json_null());
	json_object_set_new(o, "tie_word_embeddings",
			    json_boolean(c->tie_word_embeddings));
	json_object_set_new(o, "hidden_act", json_string(c->hidden_act));
	json_object_set_new(o, "torch_dtype", json_string(c->torch_dtype));
	json_object_set_new(o, "bos_token_id", c->bos_token_id < 0 ?
			    json_null() : json_integer(c->bos_token_id));
	json_object_set_new(o, "eos_token_id", eos);
	json_object_set_new(o, "pad_token_id", c->pad_token_id < 0 ?
			    json_null() : json_integer(c->pad_token_id));
	if (c->num_local_experts) {
		json_object_set_new(o, "num_local_experts",
				    json_integer(c->num_local_experts));
		json_object_set_new(o, "num_experts_per_tok",
				    json_integer(c->num_experts_per_tok));
	}
	return o;
}

static json_t *model_json(const struct model *m)
{
	json_t *o = json_object(), *files = json_array(), *ts = json_array();
	json_t *dt = json_object();

	json_object_set_new(o, "path", json_string(m->path));
	json_object_set_new(o, "config", m->cfg ? config_json(m->cfg) :
			    json_null());
	for (size_t f = 0; f < hf_st_model_nfiles(m->st); f++) {
		const struct hf_st *st = hf_st_model_file(m->st, f);
		json_t *fo = json_object(), *meta = json_object();

		for (size_t k = 0; k < hf_st_meta_count(st); k++) {
			const char *key, *val;

			hf_st_meta(st, k, &key, &val);
			json_object_set_new(meta, key, json_string(val));
		}
		json_object_set_new(fo, "file",
				    json_string(base_name(hf_st_path(st))));
		json_object_set_new(fo, "bytes",
				    json_integer((json_int_t)hf_st_size(st)));
		json_object_set_new(fo, "header_bytes", json_integer(
				    (json_int_t)hf_st_header_len(st)));
		json_object_set_new(fo, "tensors",
				    json_integer((json_int_t)hf_st_count(st)));
		json_object_set_new(fo, "metadata", meta);
		json_array_append_new(files, fo);
	}
	json_object_set_new(o, "files", files);
	json_object_set_new(o, "parameters", json_integer((json_int_t)
			    m->params));
	json_object_set_new(o, "tensor_bytes", json_integer((json_int_t)
			    m->tensor_bytes));
	json_object_set_new(o, "bytes_on_disk", json_integer((json_int_t)
			    m->disk_bytes));
	for (int t = 0; t < HF_DTYPE_COUNT; t++)
		if (m->per_dtype[t])
			json_object_set_new(dt, hf_dtype_name(t), json_integer(
					    (json_int_t)m->per_dtype[t]));
	json_object_set_new(o, "dtypes", dt);
	for (size_t i = 0; i < m->n; i++) {
		const struct entry *e = &m->e[i];
		const struct hf_st *st = hf_st_model_file_of(m->st, e->t);
		json_t *to = json_object(), *shape = json_array();

		for (int d = 0; d < e->t->ndim; d++)
			json_array_append_new(shape,
					      json_integer(e->t->shape[d]));
		json_object_set_new(to, "name", json_string(e->t->name));
		json_object_set_new(to, "dtype",
				    json_string(hf_dtype_name(e->t->dtype)));
		json_object_set_new(to, "shape", shape);
		json_object_set_new(to, "bytes",
				    json_integer((json_int_t)e->t->nbytes));
		json_object_set_new(to, "layer", e->layer < 0 ? json_null() :
				    json_integer(e->layer));
		json_object_set_new(to, "file",
				    json_string(base_name(hf_st_path(st))));
		json_array_append_new(ts, to);
	}
	json_object_set_new(o, "tensors", ts);
	return o;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file a model directory holds that hf reads: the weights (all
 * shards), config.json, every other .json and .safetensors file. */
static int validate_dir(const char *dir, struct hf_err *err)
{
	struct model m;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int rc;

	if ((rc = model_open(&m, dir, err))) {
		model_free(&m);
		return rc;
	}
	printf("ok  weights: %zu tensors in %zu file%s\n", m.n,
	       hf_st_model_nfiles(m.st),
	       hf_st_model_nfiles(m.st) == 1 ? "" : "s");
	if (!m.cfg) {
		model_free(&m);
		return hf_err_set(err, HF_ENOTFOUND, "no config.json in '%s'",
				  dir);
	}
	printf("ok  config.json: %s\n", m.cfg->model_type);
	model_free(&m);

	if (!(d = opendir(dir)))
		return hf_err_errno(err, "cannot read directory '%s'", dir);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !(has_suffix(de->d_name, ".json") ||
		    has_suffix(de->d_name, ".safetensors")))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 16) *
					    sizeof(*names));

			if (!nn) {
				rc = hf_err_set(err, HF_ENOMEM,
						"out of memory");
				break;
			}
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name))) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			break;
		}
		n++;
	}
	closedir(d);
	if (!rc)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n && !rc; i++) {
		char *p = hf_path_join(dir, names[i]);

		if (!p) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			break;
		}
		if (has_suffix(names[i], ".json")) {
			json_t *j;

			if (!(rc = hf_json_load_file(&j, p, err)))
				json_decref(j);
			if (!rc && strcmp(names[i], "config.json"))
				printf("ok  %s\n", names[i]);
		} else {
			struct hf_st *st;

			if (!(rc = hf_st_open(&st, p, err)))
				printf("ok  %s: %zu tensors\n", names[i],
				       hf_st_count(st));
			hf_st_free(st);
		}
		free(p);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int validate(const char *path, struct hf_err *err)
{
	struct hf_st_model *m;
	int rc;

	if (hf_dir_exists(path))
		return validate_dir(path, err);
	if ((rc = hf_st_open_dir(&m, path, err)))
		return rc;
	printf("ok  %s: %zu tensors in %zu file%s\n", path,
	       hf_st_model_count(m), hf_st_model_nfiles(m),
	       hf_st_model_nfiles(m) == 1 ? "" : "s");
	hf_st_model_free(m);
	return 0;
}

/* The Vulkan devices, in the order HF_VK_DEVICE numbers them. */
static int print_devices(int as_json, struct hf_err *err)
{
	struct hf_vk_devinfo *d;
	json_t *arr;
	size_t n;

	if (hf_vk_devices(&d, &n, err))
		return err->code;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct hf_vk_devinfo *v = &d[i];

		if (as_json) {
			json_array_append_new(arr, json_pack(
				"{s:I, s:s, s:s, s:s, s:I, s:I, s:b, s:b, s:b, s:b}",
				"index", (json_int_t)i, "name", v->name,
				"type", hf_vk_devtype_name(v->type),
				"driver", v->driver,
				"memory_bytes", (json_int_t)v->device_local_bytes,
				"subgroup_size", (json_int_t)v->subgroup_size,
				"fp16", v->fp16, "storage16", v->storage16,
				"cooperative_matrix", v->coopmat,
				"usable", v->usable));
			continue;
		}
		printf("%zu  %s (%s%s%s)\n   memory %.1f GB, subgroup %u, "
		       "Vulkan %u.%u, fp16 %s, 16-bit storage %s, "
		       "cooperative matrix %s%s\n", i, v->name,
		       hf_vk_devtype_name(v->type), v->driver[0] ? ", " : "",
		       v->driver, v->device_local_bytes / 1e9,
		       v->subgroup_size, (v->api_version >> 22) & 0x7F,
		       (v->api_version >> 12) & 0x3FF, v->fp16 ? "yes" : "no",
		       v->storage16 ? "yes" : "no", v->coopmat ? "yes" : "no",
		       v->usable ? "" : " (not usable: needs Vulkan 1.2 "
		       "and a compute queue)");
	}
	if (as_json)
		hf_json_dumpf_line(arr, stdout);
	else if (!n)
		printf("no Vulkan devices\n");
	json_decref(arr);
	free(d);
	return 0;
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "validate", no_argument, NULL, 'V' },
		{ "devices", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hf_err err = { 0 };
	struct model m;
	char *path = NULL;
	int c, as_json = 0, check = 0, devices = 0, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			as_json = 1;
			break;
		case 'V':
			check = 1;
			break;
		case 'D':
			devices = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return finish_stdout(prog);
		default:
			return die_bad_option(prog, c, argv);
		}
	}
	if (devices) {
		if (check || optind != argc)
			return die_usage(prog, "--devices takes no "
					 "operand and no --validate");
		if (print_devices(as_json, &err))
			return die_err(prog, &err);
		return finish_stdout(prog);
	}
	if (optind != argc - 1)
		return die_usage(prog, optind == argc ?
				 "a file or directory is required" :
				 "one file or directory only");
	if (as_json && check)
		return die_usage(prog, "--json and --validate do not "
				 "go together");
	if (!strcmp(argv[optind], "-") && isatty(STDIN_FILENO))
		return die_usage(prog, "'-' reads a safetensors file from standard "
				 "input, which is a terminal");
	if (resolve_model(&path, argv[optind], &err))
		return die_err(prog, &err);
	if (check) {
		rc = validate(path, &err);
		free(path);
		if (rc) {
			finish_stdout(prog);
			return die_err(prog, &err);
		}
		return finish_stdout(prog);
	}
	rc = model_open(&m, path, &err);	/* m.path is path: freed last */
	if (rc) {
		model_free(&m);
		free(path);
		return die_err(prog, &err);
	}
	if (as_json) {
		json_t *j = model_json(&m);

		rc = hf_json_dumpf_line(j, stdout);
		json_decref(j);
	} else {
		print_text(&m);
	}
	model_free(&m);
	free(path);
	return finish_stdout(prog);
}
