/* lib/train/peft.c: PEFT LoRA adapters read and written as PEFT does
 * (huggingface/peft src/peft/tuners/lora/config.py LoraConfig,
 * src/peft/config.py save_pretrained, src/peft/tuners/tuners_utils.py
 * check_target_module_exists and _maybe_include_all_linear_layers,
 * src/peft/utils/other.py get_pattern_key, src/peft/utils/constants.py
 * TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
#include "train/peft.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/json.h"
#include "st/st.h"
#include "tensor/dtype.h"

/* ---- regular expressions: Python's re on module names ---- */

/* pat, a Python regex, as a POSIX extended one between pre and post:
 * \d \w \s become bracket expressions, (?: a plain group, and lazy
 * quantifiers greedy ones (the same yes or no for a whole-name match). */
static int py_regex(regex_t *re, const char *pre, const char *pat,
		    const char *post)
{
	size_t n = strlen(pat);
	char *s = malloc(strlen(pre) + strlen(post) + 16 * n + 1), *o = s;
	int rc;

	if (!s)
		return -1;
	o += sprintf(o, "%s", pre);
	for (size_t i = 0; i < n; i++) {
		if (pat[i] == '\\' && i + 1 < n &&
		    strchr("dwsDWS", pat[i + 1])) {
			static const char *const cls[] = {
				"[0-9]", "[A-Za-z0-9_]", "[[:space:]]",
				"[^0-9]", "[^A-Za-z0-9_]", "[^[:space:]]",
			};

			o += sprintf(o, "%s", cls[strchr("dwsDWS", pat[++i]) -
						  "dwsDWS"]);
		} else if (pat[i] == '\\' && i + 1 < n) {
			*o++ = pat[i++];
			*o++ = pat[i];
		} else if (pat[i] == '(' && pat[i + 1] == '?' &&
			   pat[i + 2] == ':') {
			*o++ = '(';
			i += 2;
		} else if (pat[i] == '?' && i > 0 && strchr("*+?}", pat[i - 1]) &&
			   !(i > 1 && pat[i - 2] == '\\')) {
			continue;
		} else {
			*o++ = pat[i];
		}
	}
	o += sprintf(o, "%s", post);
	rc = regcomp(re, s, REG_EXTENDED | REG_NOSUB);
	free(s);
	return rc ? -1 : 0;
}

/* re.fullmatch(pat, s); -1 if pat does not compile. */
static int fullmatch(const char *pat, const char *s)
{
	regex_t re;
	int m;

	if (py_regex(&re, "^(", pat, ")$"))
		return -1;
	m = !regexec(&re, s, 0, NULL, 0);
	regfree(&re);
	return m;
}

/* The layer index PEFT reads from a module name: re.match(r".*?\.[^.]*
 * \.(\d+)\.", key), or with layers_pattern p: r".*?\.{p}\.(\d+)\.". The
 * lazy prefix takes the first dot where the rest matches; -1: none. */
static long layer_index(const struct hf_peft_config *c, const char *key)
{
	for (const char *d = strchr(key, '.'); d; d = strchr(d + 1, '.')) {
		const char *p = d + 1, *q;

		if (!c->nlayers_pattern) {
			q = strchr(p, '.');	/* [^.]* then a dot */
			if (!q)
				return -1;
			p = q + 1;
		} else {
			size_t k;

			for (k = 0; k < c->nlayers_pattern; k++) {
				/* p starts with {pattern}\. : try each
				 * prefix of the rest that ends at a dot */
				const char *e;
				int ok = 0;

				for (e = strchr(p, '.'); e && !ok;
				     e = strchr(e + 1, '.')) {
					char *head = strndup(p, (size_t)(e - p));
					const char *dd = e + 1;

					if (!head)
						return -1;
					if (fullmatch(c->layers_pattern[k], head) == 1 &&
					    *dd >= '0' && *dd <= '9') {
						const char *z = dd;

						while (*z >= '0' && *z <= '9')
							z++;
						if (*z == '.') {
							free(head);
							return strtol(dd, NULL, 10);
						}
					}
					free(head);
				}
			}
			continue;
		}
		q = p;
		while (*q >= '0' && *q <= '9')
			q++;
		if (q > p && *q == '.')
			return strtol(p, NULL, 10);
	}
	return -1;
}

static int in_list(char **list, size_t n, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < n; i++) {
		size_t el = strlen(list[i]);

		if (!strcmp(key, list[i]) ||
		    (kl > el && key[kl - el - 1] == '.' &&
		     !strcmp(key + kl - el, list[i])))
			return 1;
	}
	return 0;
}

int hf_peft_match(const struct hf_peft_config *c, const char *key)
{
	int found = 0;

	if (c->exclude_regex ? fullmatch(c->exclude_regex, key) == 1 :
			       in_list(c->exclude, c->nexclude, key))
		return 0;
	/* modules_to_save: re.match(rf"(^|.*\.){m}($|\..*)", key) */
	for (size_t i = 0; i < c->nmodules_to_save; i++) {
		regex_t re;
		int m;

		if (py_regex(&re, "^(|.*\\.)(", c->modules_to_save[i],
			     ")($|\\..*)"))
			continue;
		m = !regexec(&re, key, 0, NULL, 0);
		regfree(&re);
		if (m)
			return 0;
	}
	if (c->target_regex)
		return fullmatch(c->target_regex, key) == 1;
	for (size_t i = 0; i < c->ntargets; i++)
		if (!strcmp(key, c->targets[i]))
			return 1;	/* named whole: no layer filter */
	found = in_list(c->targets, c->ntargets, key);
	if (found && c->layers) {
		long li = layer_index(c, key);

		found = 0;
		for (size_t i = 0; li >= 0 && i < c->nlayers; i++)
			if (c->layers[i] == li)
				found = 1;
	}
	return found;
}

/* ---- the config ---- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void hf_peft_config_free(struct hf_peft_config *c)
{
	if (!c)
		return;
	free(c->task_type);
	free(c->base_model);
	free(c->revision);
	free_list(c->targets, c->ntargets);
	free(c->target_regex);
	free_list(c->exclude, c->nexclude);
	free(c->exclude_regex);
	free(c->bias);
	free(c->init_str);
	free_list(c->modules_to_save, c->nmodules_to_save);
	free(c->layers);
	free_list(c->layers_pattern, c->nlayers_pattern);
	json_decref(c->rank_pattern);
	json_decref(c->alpha_pattern);
	memset(c, 0, sizeof(*c));
}

int hf_peft_config_init(struct hf_peft_config *c, struct hf_err *err)
{
	memset(c, 0, sizeof(*c));
	c->task_type = strdup("CAUSAL_LM");
	c->bias = strdup("none");
	c->r = 8;
	c->alpha = 8;
	c->init_lora_weights = 1;
	c->inference_mode = 1;
	c->rank_pattern = json_object();
	c->alpha_pattern = json_object();
	if (!c->task_type || !c->bias || !c->rank_pattern || !c->alpha_pattern) {
		hf_peft_config_free(c);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

/* obj[key]: null/absent, a string (*str), or a list of strings (*list). */
static int str_or_list(const json_t *obj, const char *key, char **str,
		       char ***list, size_t *n, const char *where,
		       struct hf_err *err)
{
	const json_t *v = json_object_get(obj, key);
	size_t i;
	json_t *e;

	*str = NULL;
	*list = NULL;
	*n = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		*str = strdup(json_string_value(v));
		return *str ? 0 : hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (!json_is_array(v))
		return hf_err_set(err, HF_EFORMAT,
				  "%s: key '%s' is not a string or a list of "
				  "strings", where, key);
	*list = calloc(json_array_size(v) + 1, sizeof(**list));
	if (!*list)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return hf_err_set(err, HF_EFORMAT,
					  "%s: key '%s': item %zu is not a string",
					  where, key, i);
		if (!((*list)[(*n)++] = strdup(json_string_value(e))))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

static int opt_str(const json_t *o, const char *key, const char *def,
		   char **out, const char *where, struct hf_err *err)
{
	const char *s;

	if (hf_json_str(o, key, def, &s, where, err))
		return err->code;
	*out = dup_or_null(s);
	return s && !*out ? hf_err_set(err, HF_ENOMEM, "out of memory") : 0;
}

static int load_obj(struct hf_peft_config *c, const json_t *o,
		    const char *where, struct hf_err *err)
{
	const char *pt;
	const json_t *v;
	char *tstr = NULL;
	int64_t r;
	size_t i;
	json_t *e;

	if (!json_is_object(o))
		return hf_err_set(err, HF_EFORMAT, "%s: not a JSON object", where);
	if (hf_json_str(o, "peft_type", NULL, &pt, where, err))
		return err->code;
	if (!pt)
		return hf_err_set(err, HF_EFORMAT, "%s: missing key 'peft_type'",
				  where);
	if (strcmp(pt, "LORA"))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: peft_type '%s' is not supported (LORA only)",
				  where, pt);
	free(c->task_type);
	free(c->bias);
	c->task_type = c->bias = NULL;
	if (opt_str(o, "task_type", NULL, &c->task_type, where, err) ||
	    opt_str(o, "base_model_name_or_path", NULL, &c->base_model, where,
		    err) ||
	    opt_str(o, "revision", NULL, &c->revision, where, err) ||
	    opt_str(o, "bias", "none", &c->bias, where, err) ||
	    hf_json_int(o, "r", 8, &r, where, err) ||
	    hf_json_num(o, "lora_alpha", 8, &c->alpha, where, err) ||
	    hf_json_num(o, "lora_dropout", 0, &c->dropout, where, err) ||
	    hf_json_bool(o, "fan_in_fan_out", 0, &c->fan_in_fan_out, where, err) ||
	    hf_json_bool(o, "use_rslora", 0, &c->use_rslora, where, err) ||
	    hf_json_bool(o, "use_dora", 0, &c->use_dora, where, err) ||
	    hf_json_bool(o, "lora_bias", 0, &c->lora_bias, where, err) ||
	    hf_json_bool(o, "inference_mode", 1, &c->inference_mode, where,
			 err))
		return err->code;
	if (r <= 0 || r > 1 << 20)
		return hf_err_set(err, HF_EFORMAT, "%s: r %lld is not a rank",
				  where, (long long)r);
	c->r = (size_t)r;
	if (str_or_list(o, "target_modules", &tstr, &c->targets, &c->ntargets,
			where, err))
		return free(tstr), err->code;
	if (tstr && !strcmp(tstr, "all-linear")) {
		c->all_linear = 1;
		free(tstr);
	} else {
		c->target_regex = tstr;
	}
	if (str_or_list(o, "exclude_modules", &c->exclude_regex, &c->exclude,
			&c->nexclude, where, err))
		return err->code;
	if ((v = json_object_get(o, "init_lora_weights")) && json_is_string(v)) {
		c->init_lora_weights = -1;
		if (!(c->init_str = strdup(json_string_value(v))))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	} else if (hf_json_bool(o, "init_lora_weights", 1,
				&c->init_lora_weights, where, err)) {
		return err->code;
	}
	{
		char *s = NULL;

		if (str_or_list(o, "modules_to_save", &s, &c->modules_to_save,
				&c->nmodules_to_save, where, err))
			return free(s), err->code;
		if (s) {	/* one name */
			c->modules_to_save = calloc(1, sizeof(char *));
			if (!c->modules_to_save)
				return free(s), hf_err_set(err, HF_ENOMEM,
							   "out of memory");
			c->modules_to_save[0] = s;
			c->nmodules_to_save = 1;
		}
		s = NULL;
		if (str_or_list(o, "layers_pattern", &s, &c->layers_pattern,
				&c->nlayers_pattern, where, err))
			return free(s), err->code;
		if (s) {
			c->layers_pattern = calloc(1, sizeof(char *));
			if (!c->layers_pattern)
				return free(s), hf_err_set(err, HF_ENOMEM,
							   "out of memory");
			c->layers_pattern[0] = s;
			c->nlayers_pattern = 1;
		}
	}
	v = json_object_get(o, "layers_to_transform");
	if (v && json_is_integer(v)) {
		if (!(c->layers = malloc(sizeof(*c->layers))))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		c->layers[0] = json_integer_value(v);
		c->nlayers = 1;
	} else if (v && json_is_array(v)) {
		if (!(c->layers = calloc(json_array_size(v) + 1,
					 sizeof(*c->layers))))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		json_array_foreach(v, i, e) {
			if (!json_is_integer(e))
				return hf_err_set(err, HF_EFORMAT,
						  "%s: key 'layers_to_transform': "
						  "item %zu is not an integer",
						  where, i);
			c->layers[c->nlayers++] = json_integer_value(e);
		}
	} else if (v && !json_is_null(v)) {
		return hf_err_set(err, HF_EFORMAT,
				  "%s: key 'layers_to_transform' is not an "
				  "integer or a list", where);
	}
	for (int k = 0; k < 2; k++) {
		const char *key = k ? "alpha_pattern" : "rank_pattern";
		json_t **dst = k ? &c->alpha_pattern : &c->rank_pattern;
		const char *pk;

		v = json_object_get(o, key);
		if (v && !json_is_null(v) && !json_is_object(v))
			return hf_err_set(err, HF_EFORMAT,
					  "%s: key '%s' is not an object", where,
					  key);
		json_object_foreach((json_t *)v, pk, e)
			if (!json_is_number(e))
				return hf_err_set(err, HF_EFORMAT,
						  "%s: key '%s': '%s' is not a "
						  "number", where, key, pk);
		json_decref(*dst);
		*dst = v && json_is_object(v) ? json_deep_copy(v) : json_object();
		if (!*dst)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

int hf_peft_config_load(struct hf_peft_config *c, const char *path,
			struct hf_err *err)
{
	json_t *o;
	int rc;

	if ((rc = hf_peft_config_init(c, err)))
		return rc;
	if ((rc = hf_json_load_file(&o, path, err))) {
		hf_peft_config_free(c);
		return rc;
	}
	rc = load_obj(c, o, path, err);
	json_decref(o);
	if (rc)
		hf_peft_config_free(c);
	return rc;
}

void hf_peft_key(char *buf, size_t cap, const char *module, const char *what)
{
	snprintf(buf, cap, "base_model.model.%s.%s", module, what);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- targets ---- */

/* TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING for our families
 * (phi3 and distilbert have none: PEFT asks for target_modules). */
static const char *const *default_targets(const char *model_type)
{
	static const char *const qv[] = { "q_proj", "v_proj", NULL };
	static const char *const gpt2[] = { "c_attn", NULL };
	static const char *const bert[] = { "query", "value", NULL };
	static const struct {
		const char *type;
		const char *const *t;
	} map[] = {
		{ "gpt2", gpt2 }, { "bert", bert }, { "roberta", bert },
		{ "xlm-roberta", bert }, { "llama", qv }, { "mistral", qv },
		{ "mixtral", qv }, { "gemma", qv }, { "qwen2", qv },
		{ "qwen3", qv },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].type, model_type))
			return map[i].t;
	return NULL;
}

/* get_pattern_key: the first pattern p of obj with re.match(
 * rf"(.*\.)?({p})$", key), its value in *v. */
static int pattern_value(const json_t *obj, const char *key, double *v)
{
	const char *p;
	json_t *e;

	json_object_foreach((json_t *)obj, p, e) {
		regex_t re;
		int m;

		if (py_regex(&re, "^(.*\\.)?(", p, ")$"))
			continue;
		m = !regexec(&re, key, 0, NULL, 0);
		regfree(&re);
		if (m) {
			*v = json_number_value(e);
			return 1;
		}
	}
	return 0;
}

/* "q_proj, k_proj, ...": the distinct last components of mods' names. */
static void module_kinds(char *buf, size_t cap, const struct hf_lin_module *mods,
			 size_t n)
{
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && len + 1 < cap; i++) {
		const char *t = strrchr(mods[i].name, '.');
		int seen = 0;

		t = t ? t + 1 : mods[i].name;
		for (size_t j = 0; j < i && !seen; j++) {
			const char *u = strrchr(mods[j].name, '.');

			seen = !strcmp(u ? u + 1 : mods[j].name, t);
		}
		if (!seen)
			len += (size_t)snprintf(buf + len, cap - len, "%s%s",
						len ? ", " : "", t);
	}
}

static void targets_str(char *buf, size_t cap, const struct hf_peft_config *c)
{
	size_t len = 0;

	if (c->target_regex) {
		snprintf(buf, cap, "'%s'", c->target_regex);
		return;
	}
	len = (size_t)snprintf(buf, cap, "[");
	for (size_t i = 0; i < c->ntargets && len < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s'%s'",
					i ? ", " : "", c->targets[i]);
	if (len < cap)
		snprintf(buf + len, cap - len, "]");
}

int hf_peft_targets(const struct hf_peft_config *c, const char *model_type,
		    const struct hf_lin_module *mods, size_t nmods,
		    struct hf_peft_target **out, size_t *n, const char *where,
		    struct hf_err *err)
{
	struct hf_peft_config eff = *c;
	char **names = NULL;
	int has_head = 0, rc = 0;

	*out = NULL;
	*n = 0;
	if (c->all_linear) {
		/* every Linear and Conv1D but the output embeddings (or,
		 * for SEQ_CLS without one, the score/classifier head), by
		 * full name */
		names = calloc(nmods + 1, sizeof(*names));
		if (!names)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		for (size_t i = 0; i < nmods; i++)
			has_head |= mods[i].head;
		eff.ntargets = 0;
		for (size_t i = 0; i < nmods; i++) {
			if (mods[i].head ||
			    (!has_head && mods[i].cls_head && c->task_type &&
			     !strcmp(c->task_type, "SEQ_CLS")))
				continue;
			names[eff.ntargets++] = (char *)mods[i].name;
		}
		eff.targets = names;
		eff.target_regex = NULL;
	} else if (!c->targets && !c->target_regex) {
		const char *const *d = default_targets(model_type);

		if (!d)
			return hf_err_set(err, HF_EFORMAT,
					  "%s: target_modules is not given and "
					  "PEFT has no default for model_type '%s'",
					  where, model_type);
		names = calloc(4, sizeof(*names));
		if (!names)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		for (eff.ntargets = 0; d[eff.ntargets]; eff.ntargets++)
			names[eff.ntargets] = (char *)d[eff.ntargets];
		eff.targets = names;
	}
	if (eff.target_regex && fullmatch(eff.target_regex, "") < 0) {
		rc = hf_err_set(err, HF_EFORMAT,
				"%s: target_modules '%s' is not a regular "
				"expression we can read", where,
				eff.target_regex);
		goto out;
	}
	*out = calloc(nmods + 1, sizeof(**out));
	if (!*out) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nmods; i++) {
		struct hf_peft_target *t = &(*out)[*n];
		double v;

		if (!hf_peft_match(&eff, mods[i].name))
			continue;
		t->module = i;
		t->r = c->r;
		t->alpha = c->alpha;
		if (pattern_value(c->rank_pattern, mods[i].name, &v)) {
			if (v < 1 || v != floor(v)) {
				rc = hf_err_set(err, HF_EFORMAT,
						"%s: rank_pattern gives '%s' rank %g",
						where, mods[i].name, v);
				goto out;
			}
			t->r = (size_t)v;
		}
		if (pattern_value(c->alpha_pattern, mods[i].name, &v))
			t->alpha = v;
		t->scale = (float)(c->use_rslora ? t->alpha / sqrt((double)t->r) :
					   t->alpha / (double)t->r);
		(*n)++;
	}
	if (!*n) {
		char tg[300], kinds[400];

		targets_str(tg, sizeof(tg), &eff);
		module_kinds(kinds, sizeof(kinds), mods, nmods);
		rc = hf_err_set(err, HF_ENOTFOUND,
				"%s: target_modules %s match no module of the "
				"%s model (its linear modules: %s)", where, tg,
				model_type, kinds);
	}
out:
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	free(names);
	return rc;
}

/* ---- an adapter directory ---- */

struct hf_peft {
	char *dir, *st_path;
	struct hf_peft_config cfg;
	struct hf_st *st;
};

int hf_peft_open(struct hf_peft **out, const char *dir, struct hf_err *err)
{
	struct hf_peft *p;
	char *cfg;
	int rc;

	*out = NULL;
	if (!hf_dir_exists(dir))
		return hf_err_set(err, HF_ENOTFOUND,
				  "%s: no such adapter directory", dir);
	if (!(p = calloc(1, sizeof(*p))) || !(p->dir = strdup(dir))) {
		free(p);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	cfg = hf_path_join(dir, "adapter_config.json");
	p->st_path = hf_path_join(dir, "adapter_model.safetensors");
	if (!cfg || !p->st_path) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	if (!hf_file_exists(cfg)) {
		rc = hf_err_set(err, HF_ENOTFOUND,
				"%s: no adapter_config.json: not a PEFT adapter "
				"directory", dir);
		goto fail;
	}
	if ((rc = hf_peft_config_load(&p->cfg, cfg, err)))
		goto fail;
	if (!hf_file_exists(p->st_path)) {
		char *bin = hf_path_join(dir, "adapter_model.bin");

		rc = hf_err_set(err, HF_ENOTFOUND,
				bin && hf_file_exists(bin) ?
				"%s: adapter_model.bin (a pickle) is not read: "
				"save the adapter with safe_serialization" :
				"%s: no adapter_model.safetensors", dir);
		free(bin);
		goto fail;
	}
	if ((rc = hf_st_open(&p->st, p->st_path, err)))
		goto fail;
	free(cfg);
	*out = p;
	return 0;
fail:
	free(cfg);
	hf_peft_free(p);
	return rc;
}

void hf_peft_free(struct hf_peft *p)
{
	if (!p)
		return;
	hf_st_free(p->st);
	hf_peft_config_free(&p->cfg);
	free(p->st_path);
	free(p->dir);
	free(p);
}

const struct hf_peft_config *hf_peft_config(const struct hf_peft *p)
{
	return &p->cfg;
}

void hf_peft_deltas_free(struct hf_peft_delta *d, size_t n)
{
	for (size_t i = 0; d && i < n; i++) {
		free(d[i].A);
		free(d[i].B);
		free(d[i].W);
		free(d[i].bias);
	}
	free(d);
}

/* Tensor name as float32 (d0, d1) into a new array. */
static int read_f32(const struct hf_peft *p, const char *name, int64_t d0,
		    int64_t d1, const char *module, float **out,
		    struct hf_err *err)
{
	const struct hf_tensor *t = hf_st_get(p->st, name);
	int64_t want[2] = { d0, d1 };
	char got[96], exp[96];

	*out = NULL;
	if (!t)
		return hf_err_set(err, HF_ENOTFOUND,
				  "%s: missing tensor '%s' of target module '%s'",
				  p->st_path, name, module);
	if (t->dtype != HF_DTYPE_F32 && t->dtype != HF_DTYPE_F16 &&
	    t->dtype != HF_DTYPE_BF16)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: tensor '%s' has dtype %s (F32, F16 or "
				  "BF16 are read)", p->st_path, name,
				  hf_dtype_name(t->dtype));
	if (t->ndim != 2 || t->shape[0] != d0 || t->shape[1] != d1) {
		hf_shape_str(got, sizeof(got), t->shape, t->ndim);
		hf_shape_str(exp, sizeof(exp), want, 2);
		return hf_err_set(err, HF_EFORMAT,
				  "%s: tensor '%s' has shape %s, expected %s for "
				  "module '%s'", p->st_path, name, got, exp,
				  module);
	}
	if (!(*out = malloc((size_t)(d0 * d1) * sizeof(float))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	hf_to_f32_n(*out, t->data, t->dtype, (size_t)(d0 * d1));
	return 0;
}

int hf_peft_deltas(const struct hf_peft *p, const char *model_type,
		   const struct hf_lin_module *mods, size_t nmods,
		   struct hf_peft_delta **out, size_t *n, struct hf_err *err)
{
	const struct hf_peft_config *c = &p->cfg;
	struct hf_peft_target *tg = NULL;
	char *used = NULL, where[600];
	size_t nt = 0, nst = hf_st_count(p->st);
	int rc;

	*out = NULL;
	*n = 0;
	snprintf(where, sizeof(where), "%s/adapter_config.json", p->dir);
	if (c->use_dora)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: use_dora: DoRA adapters are not supported",
				  where);
	if (c->lora_bias)
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: lora_bias: adapters with a lora_B bias are "
				  "not supported", where);
	if (c->bias && strcmp(c->bias, "none"))
		return hf_err_set(err, HF_EUNSUPPORTED,
				  "%s: bias '%s': adapters with trained biases "
				  "are not supported (bias \"none\" only)", where,
				  c->bias);
	if ((rc = hf_peft_targets(c, model_type, mods, nmods, &tg, &nt, where,
				  err)))
		return rc;
	*out = calloc(nt + nmods + 1, sizeof(**out));
	used = calloc(nst + 1, 1);
	if (!*out || !used) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nt; i++) {
		const struct hf_lin_module *md = &mods[tg[i].module];
		struct hf_peft_delta *d = &(*out)[(*n)++];
		char ka[300], kb[300];

		d->module = tg[i].module;
		d->r = tg[i].r;
		d->scale = tg[i].scale;
		hf_peft_key(ka, sizeof(ka), md->name, "lora_A.weight");
		hf_peft_key(kb, sizeof(kb), md->name, "lora_B.weight");
		if ((rc = read_f32(p, ka, (int64_t)d->r, (int64_t)md->in,
				   md->name, &d->A, err)) ||
		    (rc = read_f32(p, kb, (int64_t)md->out, (int64_t)d->r,
				   md->name, &d->B, err)))
			goto out;
		for (size_t k = 0; k < nst; k++) {
			const char *tn = hf_st_tensor(p->st, k)->name;

			if (!strcmp(tn, ka) || !strcmp(tn, kb))
				used[k] = 1;
		}
	}
	/* modules_to_save: whole Linears, saved under the module's own
	 * name (PEFT drops "modules_to_save.default" from the keys), the
	 * weight in the base's stored layout (Conv1D: (in, out)) */
	for (size_t i = 0; i < nmods && c->nmodules_to_save; i++) {
		const struct hf_lin_module *md = &mods[i];
		struct hf_peft_delta *d;
		char kw[300], kbias[300];
		float *w;
		size_t kw_i = nst, kb_i = nst;

		hf_peft_key(kw, sizeof(kw), md->name, "weight");
		hf_peft_key(kbias, sizeof(kbias), md->name, "bias");
		for (size_t k = 0; k < nst; k++) {
			const char *tn = hf_st_tensor(p->st, k)->name;

			if (!strcmp(tn, kw))
				kw_i = k;
			else if (!strcmp(tn, kbias))
				kb_i = k;
		}
		if (kw_i == nst)
			continue;
		d = &(*out)[(*n)++];
		d->module = i;
		if ((rc = read_f32(p, kw, (int64_t)(md->conv1d ? md->in : md->out),
				   (int64_t)(md->conv1d ? md->out : md->in),
				   md->name, &w, err)))
			goto out;
		if (md->conv1d) {
			if (!(d->W = malloc(md->in * md->out * sizeof(float)))) {
				free(w);
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				goto out;
			}
			for (size_t a = 0; a < md->in; a++)
				for (size_t b = 0; b < md->out; b++)
					d->W[b * md->in + a] = w[a * md->out + b];
			free(w);
		} else {
			d->W = w;
		}
		used[kw_i] = 1;
		if (kb_i < nst) {
			const struct hf_tensor *t = hf_st_tensor(p->st, kb_i);

			if (t->ndim != 1 || t->shape[0] != (int64_t)md->out) {
				rc = hf_err_set(err, HF_EFORMAT,
						"%s: tensor '%s' is not of shape [%zu]",
						p->st_path, kbias, md->out);
				goto out;
			}
			if (!(d->bias = malloc(md->out * sizeof(float)))) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				goto out;
			}
			hf_to_f32_n(d->bias, t->data, t->dtype, md->out);
			used[kb_i] = 1;
		}
	}
	/* whatever else the file holds would be dropped silently */
	for (size_t k = 0; k < nst; k++) {
		const char *tn = hf_st_tensor(p->st, k)->name;

		if (used[k])
			continue;
		if (strstr(tn, "lora_embedding_"))
			rc = hf_err_set(err, HF_EUNSUPPORTED,
					"%s: tensor '%s': adapters on embeddings "
					"are not supported", p->st_path, tn);
		else if (strstr(tn, "lora_magnitude_vector"))
			rc = hf_err_set(err, HF_EUNSUPPORTED,
					"%s: tensor '%s': DoRA adapters are not "
					"supported", p->st_path, tn);
		else if (strstr(tn, ".lora_A.") || strstr(tn, ".lora_B."))
			rc = hf_err_set(err, HF_EFORMAT,
					"%s: tensor '%s' is for a module the "
					"config does not target, or that the "
					"model does not have", p->st_path, tn);
		else
			rc = hf_err_set(err, HF_EUNSUPPORTED,
					"%s: tensor '%s' is not a LoRA weight "
					"nor a Linear of modules_to_save (trained "
					"biases, embeddings and norms in "
					"modules_to_save are not supported)",
					p->st_path, tn);
		goto out;
	}
	rc = 0;
out:
	if (rc) {
		hf_peft_deltas_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	free(used);
	free(tg);
	return rc;
}

int hf_peft_apply(struct hf_model *m, const char *dir, int merge,
		  struct hf_err *err)
{
	struct hf_peft *p = NULL;
	struct hf_lin_module *mods = NULL;
	struct hf_peft_delta *d = NULL;
	size_t nm = 0, nd = 0;
	int rc;

	if ((rc = hf_peft_open(&p, dir, err)) ||
	    (rc = hf_model_modules(m, &mods, &nm, err)) ||
	    (rc = hf_peft_deltas(p, hf_model_config(m)->model_type, mods, nm,
				 &d, &nd, err)))
		goto out;
	for (size_t i = 0; i < nd && !rc; i++)
		rc = d[i].W ? hf_model_set_linear(m, d[i].module, d[i].W,
						  d[i].bias, err) :
		     hf_model_add_lora(m, d[i].module, d[i].A, d[i].B, d[i].r,
				       d[i].scale, merge, err);
out:
	hf_peft_deltas_free(d, nd);
	free(mods);
	hf_peft_free(p);
	return rc;
}

/* ---- writing ---- */

int hf_peft_save(const char *dir, const struct hf_peft_config *c,
		 const struct hf_peft_tensors *t, size_t n, struct hf_err *err)
{
	struct hf_st_writer *w = NULL;
	struct hf_peft_config rc_cfg;
	char *cp = NULL, *sp = NULL, **names = NULL;
	int rc;

	/* PEFT resolves "all-linear" into the set of full module names
	 * before it saves: the names of the modules written */
	if (c->all_linear) {
		if (!(names = calloc(n + 1, sizeof(*names))))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++)
			names[i] = (char *)t[i].module;
		qsort(names, n, sizeof(*names), cmp_str);
		rc_cfg = *c;
		rc_cfg.all_linear = 0;
		rc_cfg.target_regex = NULL;
		rc_cfg.targets = names;
		rc_cfg.ntargets = n;
		c = &rc_cfg;
	}
	if (mkdir(dir, 0777) && errno != EEXIST) {
		free(names);
		return hf_err_errno(err, "%s", dir);
	}
	cp = hf_path_join(dir, "adapter_config.json");
	sp = hf_path_join(dir, "adapter_model.safetensors");
	if (!cp || !sp) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = hf_st_writer_new(&w, err)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		char k[300];
		int64_t sa[2] = { (int64_t)t[i].r, (int64_t)t[i].in };
		int64_t sb[2] = { (int64_t)t[i].out, (int64_t)t[i].r };

		hf_peft_key(k, sizeof(k), t[i].module, "lora_A.weight");
		if ((rc = hf_st_writer_add(w, k, HF_DTYPE_F32, 2, sa, t[i].A,
					   err)))
			goto out;
		hf_peft_key(k, sizeof(k), t[i].module, "lora_B.weight");
		if ((rc = hf_st_writer_add(w, k, HF_DTYPE_F32, 2, sb, t[i].B,
					   err)))
			goto out;
	}
	if ((rc = hf_st_writer_write(w, sp, err)) ||
	    (rc = hf_peft_config_write(c, cp, err)))
		goto out;
out:
	hf_st_writer_free(w);
	free(names);
	free(cp);
	free(sp);
	return rc;
}
