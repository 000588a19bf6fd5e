/* lib/hub/plan.c: the plan: which commit, which files, what is already
 * cached; from the Hub's repo-info answer or from the cache alone. */
#define _GNU_SOURCE	/* asprintf */
#include "hub/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"

void hf_hub_plan_free(struct hf_hub_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nfiles; i++) {
		free(p->files[i].path);
		free(p->files[i].blob_id);
		free(p->files[i].sha256);
	}
	free(p->files);
	free(p->repo_id);
	free(p->revision);
	free(p->commit);
	free(p->dir);
	free(p->local_dir);
	free(p);
}

static int add_file(struct hf_hub_file **v, size_t *n, size_t *cap,
		    const char *path, uint64_t size, const char *blob_id,
		    const char *sha256)
{
	struct hf_hub_file *f;

	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		struct hf_hub_file *nv = realloc(*v, c * sizeof(**v));

		if (!nv)
			return -1;
		*v = nv;
		*cap = c;
	}
	f = &(*v)[*n];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	f->size = size;
	f->blob_id = blob_id ? strdup(blob_id) : NULL;
	f->sha256 = sha256 ? strdup(sha256) : NULL;
	(*n)++;
	if (!f->path || (blob_id && !f->blob_id) || (sha256 && !f->sha256))
		return -1;
	return 0;
}

static void free_files(struct hf_hub_file *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].blob_id);
		free(v[i].sha256);
	}
	free(v);
}

static int matches_any(const char *const *pats, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (hf_hub_glob_match(pats[i], path))
			return 1;
	return 0;
}

/* Move the chosen files of all[] into p->files; frees all[]. */
static int select_files(struct hf_hub_plan *p, const struct hf_hub_request *req,
			struct hf_hub_file *all, size_t n, const char *where,
			struct hf_err *err)
{
	int has_st = 0, rc = 0;
	char *keep = calloc(n ? n : 1, 1);

	if (!keep) {
		free_files(all, n);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const char *b = strrchr(all[i].path, '/');

		b = b ? b + 1 : all[i].path;
		if (strlen(b) > 12 && !strcmp(b + strlen(b) - 12, ".safetensors"))
			has_st = 1;
	}
	if (req->nfiles) {
		for (size_t j = 0; j < req->nfiles; j++) {
			size_t i;

			for (i = 0; i < n; i++)
				if (!strcmp(all[i].path, req->files[j]))
					break;
			if (i == n) {
				rc = hf_err_set(err, HF_ENOTFOUND,
						"file '%s' not found in '%s' at "
						"revision '%s'%s", req->files[j],
						p->repo_id, p->revision, where);
				goto out;
			}
			keep[i] = 1;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			const char *path = all[i].path;

			if (req->ninclude)
				keep[i] = matches_any(req->include, req->ninclude, path);
			else if (p->type == HF_HUB_MODEL)
				keep[i] = hf_hub_default_file(path, has_st);
			else
				keep[i] = 1;
			if (keep[i] && matches_any(req->exclude, req->nexclude, path))
				keep[i] = 0;
		}
	}
	p->files = calloc(n ? n : 1, sizeof(*p->files));
	if (!p->files) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!keep[i])
			continue;
		p->files[p->nfiles++] = all[i];
		memset(&all[i], 0, sizeof(all[i]));
	}
out:
	free(keep);
	free_files(all, n);
	return rc;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(((const struct hf_hub_file *)a)->path,
		      ((const struct hf_hub_file *)b)->path);
}

/* Every file (or symlink to an existing file) under root/rel, recursively,
 * skipping ".cache" and temporary names. */
static int walk(const char *root, const char *rel, struct hf_hub_file **v,
		size_t *n, size_t *cap)
{
	char *dir = rel[0] ? hf_path_join(root, rel) : strdup(root);
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (!dir)
		return -1;
	d = opendir(dir);
	if (!d) {
		free(dir);
		return 0;
	}
	while (!rc && (e = readdir(d))) {
		char *sub, *full;
		struct stat st;

		if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp.") ||
		    strstr(e->d_name, ".incomplete"))
			continue;
		sub = rel[0] ? hf_path_join(rel, e->d_name) : strdup(e->d_name);
		full = sub ? hf_path_join(root, sub) : NULL;
		if (!full) {
			free(sub);
			rc = -1;
			break;
		}
		if (!stat(full, &st)) {
			if (S_ISDIR(st.st_mode))
				rc = walk(root, sub, v, n, cap);
			else if (S_ISREG(st.st_mode))
				rc = add_file(v, n, cap, sub, (uint64_t)st.st_size,
					      NULL, NULL);
		}
		free(sub);
		free(full);
	}
	closedir(d);
	free(dir);
	return rc;
}

/* The plan from what the cache holds: offline, or the Hub unreachable. */
static int plan_from_cache(struct hf_hub_plan *p, struct hf_hub *h,
			   const struct hf_hub_request *req,
			   const char *repo_dir, const char *why,
			   struct hf_err *err)
{
	struct hf_hub_file *all = NULL;
	size_t n = 0, cap = 0;
	char where[600];

	if (req->local_dir)
		return hf_err_set(err, HF_ENET, "%s and --local-dir needs the "
				  "Hub; the cache ('%s') is what answers offline",
				  why, h->cache);
	p->commit = hf_hub_is_commit(p->revision) ? strdup(p->revision) :
		    hub_read_ref(repo_dir, p->revision);
	if (p->commit) {
		if (asprintf(&p->dir, "%s/snapshots/%s", repo_dir, p->commit) < 0)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (!p->commit || !hf_dir_exists(p->dir))
		return hf_err_set(err, HF_ENOTFOUND,
				  "%s and %s '%s' at revision '%s' is not in the "
				  "cache '%s'", why, hf_hub_type_name(p->type),
				  p->repo_id, p->revision, h->cache);
	if (walk(p->dir, "", &all, &n, &cap)) {
		free_files(all, n);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	qsort(all, n, sizeof(*all), cmp_path);
	snprintf(where, sizeof(where), " of the cache (%s)", why);
	p->from_cache = 1;
	if (select_files(p, req, all, n, where, err))
		return err->code;
	for (size_t i = 0; i < p->nfiles; i++)
		p->files[i].cached = 1;
	return 0;
}

static int json_u64(const json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* Siblings of the repo-info answer into all[]. */
static int parse_info(struct hf_hub_plan *p, json_t *info, const char *url,
		      struct hf_hub_file **all, size_t *n, struct hf_err *err)
{
	json_t *sha = json_object_get(info, "sha");
	json_t *sibs = json_object_get(info, "siblings");
	size_t cap = 0, i;
	json_t *s;

	if (!json_is_string(sha) || !hf_hub_is_commit(json_string_value(sha)))
		return hf_err_set(err, HF_EFORMAT,
				  "%s: no commit sha in the answer ('sha')", url);
	if (!json_is_array(sibs))
		return hf_err_set(err, HF_EFORMAT,
				  "%s: no file list in the answer ('siblings')", url);
	if (!(p->commit = strdup(json_string_value(sha))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	json_array_foreach(sibs, i, s) {
		json_t *name = json_object_get(s, "rfilename");
		json_t *lfs = json_object_get(s, "lfs");
		json_t *bid = json_object_get(s, "blobId");
		json_t *sha256 = lfs ? json_object_get(lfs, "sha256") : NULL;
		const char *path;
		uint64_t size = 0;

		if (!json_is_string(name))
			return hf_err_set(err, HF_EFORMAT,
					  "%s: siblings[%zu] has no 'rfilename'",
					  url, i);
		path = json_string_value(name);
		if (!hf_hub_safe_path(path)) {
			hf_log_warn("skipping '%s' in '%s': not a safe relative path",
				    path, p->repo_id);
			continue;
		}
		if (json_u64(s, "size", &size) && lfs)
			json_u64(lfs, "size", &size);
		if (sha256 && (!json_is_string(sha256) ||
			       !hf_hub_is_sha256(json_string_value(sha256))))
			sha256 = NULL;
		if (add_file(all, n, &cap, path, size,
			     json_is_string(bid) ? json_string_value(bid) : NULL,
			     sha256 ? json_string_value(sha256) : NULL))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

int hub_plan_answer(struct hf_hub_plan *p, const struct hf_hub_request *req,
		    json_t *info, const char *url, struct hf_err *err)
{
	struct hf_hub_file *all = NULL;
	size_t n = 0;
	int rc = parse_info(p, info, url, &all, &n, err);

	if (rc) {
		free_files(all, n);
		return rc;
	}
	return select_files(p, req, all, n, "", err);
}

/* Is f already in place: the snapshot link names its blob, which exists? */
static int is_cached(const struct hf_hub_plan *p, const char *repo_dir,
		     const struct hf_hub_file *f)
{
	const char *etag = f->sha256 ? f->sha256 : f->blob_id;
	char *link, *want, got[4096];
	ssize_t n;
	int ok = 0;

	if (!etag)
		return 0;
	if (p->local_dir) {
		char *meta, *data = NULL;

		if (asprintf(&meta, "%s/.cache/huggingface/download/%s.metadata",
			     p->local_dir, f->path) < 0)
			return 0;
		if (!hf_file_read(&data, NULL, meta, NULL)) {
			char *nl = strchr(data, '\n');
			char *nl2 = nl ? strchr(nl + 1, '\n') : NULL;
			char *path = hf_path_join(p->local_dir, f->path);

			ok = nl && nl2 && (size_t)(nl2 - nl - 1) == strlen(etag) &&
			     !strncmp(nl + 1, etag, strlen(etag)) && path &&
			     hf_file_exists(path);
			free(path);
		}
		free(data);
		free(meta);
		return ok;
	}
	if (asprintf(&link, "%s/%s", p->dir, f->path) < 0)
		return 0;
	want = hf_hub_blob_target(f->path, etag);
	n = readlink(link, got, sizeof(got) - 1);
	if (want && n > 0) {
		got[n] = '\0';
		/* a real file (no-symlink mode) or our link to an existing blob */
		ok = !strcmp(got, want) && hf_file_exists(link);
	} else if (n < 0 && errno == EINVAL) {
		ok = hf_file_exists(link);
	}
	free(want);
	free(link);
	return ok;
}

/* Whether a failed repo-info call may be answered from the cache, as
 * huggingface_hub does: connection errors, timeouts, 5xx, 429, 401/403. */
static int may_fall_back(const struct hub_resp *rs)
{
	if (!strcmp(rs->error_code, "RevisionNotFound") ||
	    !strcmp(rs->error_code, "EntryNotFound") ||
	    !strcmp(rs->error_code, "RepoNotFound") ||
	    !strcmp(rs->error_code, "GatedRepo"))
		return 0;
	return rs->curl != CURLE_OK || rs->status >= 500 || rs->status == 429;
}

int hf_hub_plan(struct hf_hub_plan **out, struct hf_hub *h,
		const struct hf_hub_request *req, struct hf_err *err)
{
	struct hf_hub_plan *p = calloc(1, sizeof(*p));
	struct hub_resp rs = { 0 };
	char *folder = NULL, *repo_dir = NULL, *rev = NULL, *url = NULL;
	json_t *info = NULL;
	int rc = 0, attempts = 0;
	CURL *c = NULL;

	*out = NULL;
	if (!p)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	p->type = req->type;
	if (!req->repo_id || !hf_hub_valid_repo_id(req->repo_id)) {
		rc = hf_err_set(err, HF_EINVAL, "'%s' is not a repo id (org/name)",
				req->repo_id ? req->repo_id : "");
		goto fail;
	}
	for (size_t i = 0; i < req->nfiles; i++) {
		if (!hf_hub_safe_path(req->files[i])) {
			rc = hf_err_set(err, HF_EINVAL, "'%s' is not a file path "
					"in a repo", req->files[i]);
			goto fail;
		}
	}
	p->repo_id = strdup(req->repo_id);
	p->revision = strdup(req->revision && *req->revision ? req->revision :
			     "main");
	folder = hf_hub_repo_folder(req->type, req->repo_id);
	repo_dir = folder ? hf_path_join(h->cache, folder) : NULL;
	if (!p->repo_id || !p->revision || !repo_dir)
		goto nomem;
	if (req->local_dir && !(p->local_dir = strdup(req->local_dir)))
		goto nomem;
	if (strstr(p->revision, "..") || p->revision[0] == '/') {
		rc = hf_err_set(err, HF_EINVAL, "'%s' is not a revision",
				p->revision);
		goto fail;
	}
	if (h->offline) {
		rc = plan_from_cache(p, h, req, repo_dir,
				     "offline (HF_HUB_OFFLINE is set)", err);
		if (rc)
			goto fail;
		goto done;
	}
	rev = hf_hub_escape(p->revision, 0);
	if (!rev || asprintf(&url, "%s/api/%ss/%s/revision/%s?blobs=true",
			     h->endpoint, hf_hub_type_name(req->type),
			     req->repo_id, rev) < 0)
		goto nomem;
	if (!(c = hub_curl_new()))
		goto nomem;
	/* With the revision cached, a failure falls back to it at once, as
	 * huggingface_hub does; without, transient failures are retried. */
	{
		char *cached = hf_hub_is_commit(p->revision) ?
			       strdup(p->revision) : hub_read_ref(repo_dir, p->revision);
		char *sd = NULL;
		int have = 0;

		if (cached && asprintf(&sd, "%s/snapshots/%s", repo_dir, cached) >= 0) {
			have = hf_dir_exists(sd);
			free(sd);
		}
		free(cached);
		rc = hub_get_json(h, c, url, have && !req->local_dir ? 0 : h->retries,
				  &info, &rs, &attempts, err);
	}
	if (rc == HF_ENET) {
		struct hf_err net;

		hub_error(&net, h, &rs, url, p->repo_id, p->revision, NULL,
			  attempts);
		if (may_fall_back(&rs) && !req->local_dir) {
			char why[HF_ERR_MSG_MAX + 32];
			struct hf_err e2;

			snprintf(why, sizeof(why), "%s", net.msg);
			if (!plan_from_cache(p, h, req, repo_dir, why, &e2)) {
				hf_log_warn("%s; using the cached snapshot", net.msg);
				rc = 0;
				goto done;
			}
		}
		*err = net;
		rc = net.code;
		goto fail;
	}
	if (rc)
		goto fail;
	if ((rc = hub_plan_answer(p, req, info, url, err)))
		goto fail;
	if (req->local_dir) {
		p->dir = strdup(req->local_dir);
	} else if (asprintf(&p->dir, "%s/snapshots/%s", repo_dir, p->commit) < 0) {
		p->dir = NULL;
	}
	if (!p->dir)
		goto nomem;
	for (size_t i = 0; i < p->nfiles; i++) {
		p->files[i].cached = is_cached(p, repo_dir, &p->files[i]);
		if (!p->files[i].cached)
			p->bytes += p->files[i].size;
	}
done:
	json_decref(info);
	hub_resp_free(&rs);
	if (c)
		curl_easy_cleanup(c);
	free(url);
	free(rev);
	free(folder);
	free(repo_dir);
	*out = p;
	return 0;
nomem:
	rc = hf_err_set(err, HF_ENOMEM, "out of memory");
fail:
	json_decref(info);
	hub_resp_free(&rs);
	if (c)
		curl_easy_cleanup(c);
	free(url);
	free(rev);
	free(folder);
	free(repo_dir);
	hf_hub_plan_free(p);
	return rc;
}
