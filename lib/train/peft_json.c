/* lib/train/peft_json.c: adapter_config.json written as PEFT writes it,
 * json.dumps(asdict(config), indent=2, sort_keys=True) (huggingface/peft
 * src/peft/config.py save_pretrained): keys sorted by code point, 2-space
 * indent, ", "-free line ends, Python's float repr, ensure_ascii, and no
 * final newline. */
#include "train/peft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"


/* repr(float): the shortest digits that read back the same, fixed
 * notation for decimal exponents in [-4, 16) (always with a fraction
 * digit), else d.ddde+XX. */
static void py_float(FILE *f, double x)
{
	char buf[40], dig[24];
	int p, e, nd = 0;

	if (x == 0) {
		fputs(signbit(x) ? "-0.0" : "0.0", f);
		return;
	}
	for (p = 0; p < 17; p++) {
		snprintf(buf, sizeof(buf), "%.*e", p, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	/* buf: [-]d[.ddd]e[+-]XX */
	{
		const char *s = buf;

		if (*s == '-') {
			fputc('-', f);
			s++;
		}
		for (; *s != 'e'; s++)
			if (*s != '.')
				dig[nd++] = *s;
		e = atoi(s + 1);
	}
	while (nd > 1 && dig[nd - 1] == '0')
		nd--;
	dig[nd] = 0;
	if (e >= -4 && e < 16) {
		if (e < 0) {
			fputs("0.", f);
			for (int i = 0; i < -e - 1; i++)
				fputc('0', f);
			fputs(dig, f);
		} else {
			for (int i = 0; i <= e; i++)
				fputc(i < nd ? dig[i] : '0', f);
			fputc('.', f);
			if (nd > e + 1)
				fputs(dig + e + 1, f);
			else
				fputc('0', f);
		}
	} else {
		fputc(dig[0], f);
		if (nd > 1)
			fprintf(f, ".%s", dig + 1);
		fprintf(f, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
	}
}

/* A string with ensure_ascii: non-ASCII as \uXXXX (surrogate pairs). */
static void py_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		unsigned c = *p;
		int n = 0;

		if (c < 0x80) {
			p++;
			if (c == '"' || c == '\\')
				fprintf(f, "\\%c", c);
			else if (c == '\n')
				fputs("\\n", f);
			else if (c == '\r')
				fputs("\\r", f);
			else if (c == '\t')
				fputs("\\t", f);
			else if (c == '\b')
				fputs("\\b", f);
			else if (c == '\f')
				fputs("\\f", f);
			else if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc((int)c, f);
			continue;
		}
		n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
		c &= n == 3 ? 0x07 : n == 2 ? 0x0f : 0x1f;
		p++;
		for (int i = 0; i < n && (*p & 0xc0) == 0x80; i++)
			c = (c << 6) | (*p++ & 0x3f);
		if (c >= 0x10000) {
			c -= 0x10000;
			fprintf(f, "\\u%04x\\u%04x", 0xd800 + (c >> 10),
				0xdc00 + (c & 0x3ff));
		} else {
			fprintf(f, "\\u%04x", c);
		}
	}
	fputc('"', f);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void py_dump(FILE *f, const json_t *v, int depth)
{
	size_t i, n;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char **keys;
		const char *k;
		json_t *e;

		n = json_object_size(v);
		if (!n) {
			fputs("{}", f);
			return;
		}
		keys = malloc(n * sizeof(*keys));
		if (!keys)
			return;
		i = 0;
		json_object_foreach((json_t *)v, k, e)
			keys[i++] = k;
		qsort(keys, n, sizeof(*keys), cmp_str);
		fputs("{\n", f);
		for (i = 0; i < n; i++) {
			fprintf(f, "%*s", 2 * (depth + 1), "");
			py_str(f, keys[i]);
			fputs(": ", f);
			py_dump(f, json_object_get(v, keys[i]), depth + 1);
			fputs(i + 1 < n ? ",\n" : "\n", f);
		}
		fprintf(f, "%*s}", 2 * depth, "");
		free(keys);
		return;
	}
	case JSON_ARRAY:
		n = json_array_size(v);
		if (!n) {
			fputs("[]", f);
			return;
		}
		fputs("[\n", f);
		for (i = 0; i < n; i++) {
			fprintf(f, "%*s", 2 * (depth + 1), "");
			py_dump(f, json_array_get(v, i), depth + 1);
			fputs(i + 1 < n ? ",\n" : "\n", f);
		}
		fprintf(f, "%*s]", 2 * depth, "");
		return;
	case JSON_STRING:
		py_str(f, json_string_value(v));
		return;
	case JSON_INTEGER:
		fprintf(f, "%lld", (long long)json_integer_value(v));
		return;
	case JSON_REAL:
		py_float(f, json_real_value(v));
		return;
	case JSON_TRUE:
		fputs("true", f);
		return;
	case JSON_FALSE:
		fputs("false", f);
		return;
	default:
		fputs("null", f);
		return;
	}
}

static json_t *str_json(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *list_json(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* A number as Python keeps it: an int when the config's value was one. */
static json_t *num_json(double x)
{
	if (x == floor(x) && fabs(x) < 1e15)
		return json_integer((json_int_t)x);
	return json_real(x);
}

/* Every key LoraConfig.to_dict() gives in PEFT 0.17 (runtime_config
 * popped), with its value or default. */
static json_t *config_json(const struct hf_peft_config *c)
{
	json_t *o = json_object(), *tm, *lt;

	if (!o)
		return NULL;
	if (c->all_linear)
		tm = json_string("all-linear");
	else if (c->target_regex)
		tm = json_string(c->target_regex);
	else if (c->targets)
		tm = list_json(c->targets, c->ntargets);
	else
		tm = json_null();
	if (c->layers) {
		lt = json_array();
		for (size_t i = 0; lt && i < c->nlayers; i++)
			json_array_append_new(lt, json_integer(c->layers[i]));
	} else {
		lt = json_null();
	}
	json_object_set_new(o, "alora_invocation_tokens", json_null());
	json_object_set_new(o, "alpha_pattern", json_deep_copy(c->alpha_pattern));
	json_object_set_new(o, "arrow_config", json_null());
	json_object_set_new(o, "auto_mapping", json_null());
	json_object_set_new(o, "base_model_name_or_path", str_json(c->base_model));
	json_object_set_new(o, "bias", json_string(c->bias ? c->bias : "none"));
	json_object_set_new(o, "corda_config", json_null());
	json_object_set_new(o, "ensure_weight_tying", json_false());
	json_object_set_new(o, "eva_config", json_null());
	json_object_set_new(o, "exclude_modules",
			    c->exclude_regex ? json_string(c->exclude_regex) :
			    c->exclude ? list_json(c->exclude, c->nexclude) :
			    json_null());
	json_object_set_new(o, "fan_in_fan_out", json_boolean(c->fan_in_fan_out));
	json_object_set_new(o, "inference_mode", json_boolean(c->inference_mode));
	json_object_set_new(o, "init_lora_weights",
			    c->init_str ? json_string(c->init_str) :
			    json_boolean(c->init_lora_weights));
	json_object_set_new(o, "layer_replication", json_null());
	json_object_set_new(o, "layers_pattern",
			    c->layers_pattern ?
			    list_json(c->layers_pattern, c->nlayers_pattern) :
			    json_null());
	json_object_set_new(o, "layers_to_transform", lt);
	json_object_set_new(o, "loftq_config", json_object());
	json_object_set_new(o, "lora_alpha", num_json(c->alpha));
	json_object_set_new(o, "lora_bias", json_boolean(c->lora_bias));
	json_object_set_new(o, "lora_dropout", json_real(c->dropout));
	json_object_set_new(o, "megatron_config", json_null());
	json_object_set_new(o, "megatron_core", json_string("megatron.core"));
	json_object_set_new(o, "modules_to_save",
			    c->modules_to_save ?
			    list_json(c->modules_to_save, c->nmodules_to_save) :
			    json_null());
	json_object_set_new(o, "peft_type", json_string("LORA"));
	json_object_set_new(o, "peft_version", json_string(HF_PEFT_VERSION));
	json_object_set_new(o, "qalora_group_size", json_integer(16));
	json_object_set_new(o, "r", json_integer((json_int_t)c->r));
	json_object_set_new(o, "rank_pattern", json_deep_copy(c->rank_pattern));
	json_object_set_new(o, "revision", str_json(c->revision));
	json_object_set_new(o, "target_modules", tm);
	json_object_set_new(o, "target_parameters", json_null());
	json_object_set_new(o, "task_type", str_json(c->task_type));
	json_object_set_new(o, "trainable_token_indices", json_null());
	json_object_set_new(o, "use_dora", json_boolean(c->use_dora));
	json_object_set_new(o, "use_qalora", json_false());
	json_object_set_new(o, "use_rslora", json_boolean(c->use_rslora));
	return o;
}

int hf_peft_config_dump(const struct hf_peft_config *c, char **out,
			struct hf_err *err)
{
	json_t *o = config_json(c);
	size_t len;
	FILE *f;

	*out = NULL;
	if (!o || !(f = open_memstream(out, &len))) {
		json_decref(o);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	py_dump(f, o, 0);
	json_decref(o);
	if (fclose(f) || !*out) {
		free(*out);
		*out = NULL;
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

int hf_peft_config_write(const struct hf_peft_config *c, const char *path,
			 struct hf_err *err)
{
	struct hf_atomic a;
	char *s;
	int rc;

	if ((rc = hf_peft_config_dump(c, &s, err)))
		return rc;
	if ((rc = hf_atomic_open(&a, path, err))) {
		free(s);
		return rc;
	}
	if (fputs(s, a.f) == EOF) {
		rc = hf_err_errno(err, "%s", path);
		hf_atomic_abort(&a);
	} else {
		rc = hf_atomic_commit(&a, err);
	}
	free(s);
	return rc;
}
