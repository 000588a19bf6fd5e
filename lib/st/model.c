/* lib/st/model.c: a model's weights as one name space, from a single
 * model.safetensors or from the shards listed in
 * model.safetensors.index.json (docs/safetensors.md, s. 6). */
#include "st/st.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

struct hf_st_model {
	char *index;			/* NULL for one file */
	char *stdin_buf;		/* the bytes of "-", read whole */
	size_t nfiles;
	struct hf_st **files;
	size_t n;
	const struct hf_tensor **tensors;	/* file by file */
	const struct hf_tensor **by_name;
};

static int cmp_name(const void *a, const void *b)
{
	const struct hf_tensor *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

static const struct hf_st *owner(const struct hf_st_model *m,
				 const struct hf_tensor *t)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct hf_st *st = m->files[i];
		size_t n = hf_st_count(st);

		if (n && t >= hf_st_tensor(st, 0) &&
		    t <= hf_st_tensor(st, n - 1))
			return st;
	}
	return NULL;
}

/* Gather every file's tensors, sort by name, reject a name in two files. */
static int build(struct hf_st_model *m, struct hf_err *err)
{
	size_t total = 0, k = 0;

	for (size_t i = 0; i < m->nfiles; i++)
		total += hf_st_count(m->files[i]);
	m->tensors = calloc(total + 1, sizeof(*m->tensors));
	m->by_name = calloc(total + 1, sizeof(*m->by_name));
	if (!m->tensors || !m->by_name)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < m->nfiles; i++)
		for (size_t j = 0; j < hf_st_count(m->files[i]); j++)
			m->tensors[k++] = hf_st_tensor(m->files[i], j);
	m->n = total;
	memcpy(m->by_name, m->tensors, total * sizeof(*m->tensors));
	qsort(m->by_name, total, sizeof(*m->by_name), cmp_name);
	for (size_t i = 1; i < total; i++)
		if (!strcmp(m->by_name[i - 1]->name, m->by_name[i]->name))
			return hf_err_set(err, HF_EFORMAT, "tensor '%s' is in "
				"both '%s' and '%s'", m->by_name[i]->name,
				hf_st_path(owner(m, m->by_name[i - 1])),
				hf_st_path(owner(m, m->by_name[i])));
	return 0;
}

static int safe_shard_name(const char *s)
{
	if (!*s || s[0] == '/')
		return 0;
	for (const char *p = s; *p; ) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += len;
		if (*p == '/')
			p++;
	}
	return 1;
}

static int open_index(struct hf_st_model *m, const char *path,
		      struct hf_err *err)
{
	json_t *root = NULL, *wm, *v;
	const char **shards = NULL;
	const char *key;
	char *dir = NULL, *slash;
	size_t ns = 0;
	int rc;

	if ((rc = hf_json_load_file(&root, path, err)))
		return rc;
	wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
	if (!json_is_object(wm)) {
		rc = hf_err_set(err, HF_EFORMAT, "'%s': %s", path,
				!json_is_object(root) ? "not a JSON object" :
				wm ? "key 'weight_map' must be an object" :
				"missing key 'weight_map'");
		goto fail;
	}
	shards = calloc(json_object_size(wm) + 1, sizeof(*shards));
	dir = strdup(path);
	if (!shards || !dir) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	slash = strrchr(dir, '/');
	if (slash)
		slash[1] = '\0';
	else
		strcpy(dir, ".");
	json_object_foreach(wm, key, v) {
		if (!json_is_string(v)) {
			rc = hf_err_set(err, HF_EFORMAT, "'%s': weight_map "
					"entry '%s' must be a file name",
					path, key);
			goto fail;
		}
		if (!safe_shard_name(json_string_value(v))) {
			rc = hf_err_set(err, HF_EFORMAT, "'%s': weight_map "
					"entry '%s' names '%s', outside the "
					"model directory", path, key,
					json_string_value(v));
			goto fail;
		}
		shards[ns++] = json_string_value(v);
	}
	qsort(shards, ns, sizeof(*shards), cmp_str);
	m->files = calloc(ns + 1, sizeof(*m->files));
	if (!m->files) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < ns; i++) {
		char *sp;

		if (i && !strcmp(shards[i], shards[i - 1]))
			continue;
		shards[m->nfiles] = shards[i];	/* unique, still sorted */
		sp = hf_path_join(dir, shards[i]);
		if (!sp) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto fail;
		}
		rc = hf_st_open(&m->files[m->nfiles], sp, err);
		free(sp);
		if (rc) {
			hf_err_prefix(err, "shard of '%s'", path);
			goto fail;
		}
		m->nfiles++;
	}
	json_object_foreach(wm, key, v) {
		const char *shard = json_string_value(v);
		const char **hit = bsearch(&shard, shards, m->nfiles,
					   sizeof(*shards), cmp_str);

		if (!hit || !hf_st_get(m->files[hit - shards], key)) {
			rc = hf_err_set(err, HF_ENOTFOUND, "'%s' maps tensor "
					"'%s' to '%s', which does not hold it",
					path, key, shard);
			goto fail;
		}
	}
	rc = build(m, err);
	if (!rc)
		for (size_t i = 0; i < m->n; i++)
			if (!json_object_get(wm, m->tensors[i]->name))
				hf_log_warn("tensor '%s' in '%s' is not in "
					    "the weight_map of '%s'",
					    m->tensors[i]->name,
					    hf_st_path(owner(m, m->tensors[i])),
					    path);
fail:
	free(dir);
	free(shards);
	json_decref(root);
	return rc;
}

static int open_single(struct hf_st_model *m, const char *path,
		       struct hf_err *err)
{
	int rc;

	m->files = calloc(1, sizeof(*m->files));
	if (!m->files)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = hf_st_open(&m->files[0], path, err)))
		return rc;
	m->nfiles = 1;
	return build(m, err);
}

int hf_st_open_dir(struct hf_st_model **out, const char *path,
		   struct hf_err *err)
{
	struct hf_st_model *m = calloc(1, sizeof(*m));
	char *p = NULL;
	int rc;

	*out = NULL;
	if (!m)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (!strcmp(path, "-")) {
		size_t len;

		m->files = calloc(1, sizeof(*m->files));
		if (!m->files) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto fail;
		}
		if ((rc = hf_stream_read(&m->stdin_buf, &len, stdin,
					 "standard input", err)) ||
		    (rc = hf_st_open_buf(&m->files[0], m->stdin_buf, len,
					 "standard input", err)))
			goto fail;
		m->nfiles = 1;
		if ((rc = build(m, err)))
			goto fail;
		*out = m;
		return 0;
	}
	if (hf_dir_exists(path)) {
		p = hf_path_join(path, INDEX_NAME);
		if (p && !hf_file_exists(p)) {
			free(p);
			p = hf_path_join(path, SINGLE_NAME);
			if (p && !hf_file_exists(p)) {
				rc = hf_err_set(err, HF_ENOTFOUND, "no %s or "
						"%s in '%s'", SINGLE_NAME,
						INDEX_NAME, path);
				goto fail;
			}
		}
	} else {
		p = strdup(path);
	}
	if (!p) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	if (ends_with(p, ".json")) {
		m->index = p;
		p = NULL;
		rc = open_index(m, m->index, err);
	} else {
		rc = open_single(m, p, err);
	}
	if (rc)
		goto fail;
	free(p);
	*out = m;
	return 0;
fail:
	free(p);
	hf_st_model_free(m);
	return rc;
}

void hf_st_model_free(struct hf_st_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfiles; i++)
		hf_st_free(m->files[i]);
	free(m->files);
	free(m->tensors);
	free(m->by_name);
	free(m->index);
	free(m->stdin_buf);
	free(m);
}

size_t hf_st_model_count(const struct hf_st_model *m)
{
	return m->n;
}

const struct hf_tensor *hf_st_model_tensor(const struct hf_st_model *m,
					   size_t i)
{
	return i < m->n ? m->tensors[i] : NULL;
}

const struct hf_tensor *hf_st_model_get(const struct hf_st_model *m,
					const char *name)
{
	struct hf_tensor key = { .name = name };
	const struct hf_tensor *kp = &key, *const *hit;

	hit = bsearch(&kp, m->by_name, m->n, sizeof(*m->by_name), cmp_name);
	return hit ? *hit : NULL;
}

const struct hf_st *hf_st_model_file_of(const struct hf_st_model *m,
					const struct hf_tensor *t)
{
	return owner(m, t);
}

size_t hf_st_model_nfiles(const struct hf_st_model *m)
{
	return m->nfiles;
}

const struct hf_st *hf_st_model_file(const struct hf_st_model *m, size_t i)
{
	return i < m->nfiles ? m->files[i] : NULL;
}

const char *hf_st_model_index(const struct hf_st_model *m)
{
	return m->index;
}
