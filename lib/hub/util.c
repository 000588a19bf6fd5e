/* lib/hub/util.c: pure helpers: names, paths, globs, headers, backoff. */
#include "hub/internal.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_hex(const char *s, size_t n)
{
	size_t i;

	if (!s)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

int hf_hub_is_commit(const char *rev)
{
	return rev && strlen(rev) == 40 && is_hex(rev, 40);
}

int hf_hub_is_sha256(const char *s)
{
	return s && strlen(s) == 64 && is_hex(s, 64);
}

const char *hf_hub_type_name(enum hf_hub_repo_type t)
{
	switch (t) {
	case HF_HUB_DATASET:
		return "dataset";
	case HF_HUB_SPACE:
		return "space";
	default:
		return "model";
	}
}

const char *hf_hub_url_prefix(enum hf_hub_repo_type t)
{
	switch (t) {
	case HF_HUB_DATASET:
		return "datasets/";
	case HF_HUB_SPACE:
		return "spaces/";
	default:
		return "";
	}
}

/* huggingface_hub's repo_folder_name(): "{type}s--" + id with "/" -> "--". */
char *hf_hub_repo_folder(enum hf_hub_repo_type t, const char *repo_id)
{
	const char *type = hf_hub_type_name(t);
	size_t n = strlen(type) + 3 + 2 * strlen(repo_id) + 1;
	char *out = malloc(n), *o;

	if (!out)
		return NULL;
	o = out + sprintf(out, "%ss--", type);
	for (const char *p = repo_id; *p; p++) {
		if (*p == '/') {
			*o++ = '-';
			*o++ = '-';
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

char *hf_hub_blob_target(const char *path, const char *etag)
{
	size_t depth = 2;	/* snapshots/<commit>/ */
	char *out, *o;

	for (const char *p = path; *p; p++)
		depth += *p == '/';
	out = malloc(3 * depth + strlen("blobs/") + strlen(etag) + 1);
	if (!out)
		return NULL;
	o = out;
	while (depth--) {
		memcpy(o, "../", 3);
		o += 3;
	}
	sprintf(o, "blobs/%s", etag);
	return out;
}

int hf_hub_safe_path(const char *path)
{
	const char *p = path;

	if (!*p || *p == '/')
		return 0;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			return 0;
	}
	return strchr(path, '\\') == NULL;
}

int hf_hub_glob_match(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);
	int r;

	/* Python's fnmatchcase: no escapes, "/" not special */
	if (n && pattern[n - 1] == '/') {
		char *p = malloc(n + 2);

		if (!p)
			return 0;
		memcpy(p, pattern, n);
		p[n] = '*';
		p[n + 1] = '\0';
		r = fnmatch(p, path, FNM_NOESCAPE) == 0;
		free(p);
		return r;
	}
	return fnmatch(pattern, path, FNM_NOESCAPE) == 0;
}

int hf_hub_default_file(const char *path, int has_safetensors)
{
	/* alternative exports of the same weights */
	static const char *const skip_dirs[] = {
		"onnx/", "openvino/", "coreml/", "tflite/", "gguf/", NULL,
	};
	static const char *const keep[] = {
		"*.json", "*.txt", "*.model", "*.tiktoken", "*.jinja",
		"tokenizer*", "*.safetensors", NULL,
	};
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (path[0] == '.' || strstr(path, "/."))
		return 0;
	for (int i = 0; skip_dirs[i]; i++)
		if (!strncmp(path, skip_dirs[i], strlen(skip_dirs[i])))
			return 0;
	for (int i = 0; keep[i]; i++)
		if (fnmatch(keep[i], base, FNM_NOESCAPE) == 0)
			return 1;
	/* pickled weights only when there is nothing safer */
	return !has_safetensors && fnmatch("*.bin", base, 0) == 0;
}

char *hf_hub_escape(const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(3 * strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' ||
		    *p == '~' || (keep_slash && *p == '/')) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

void hf_hub_etag_norm(char *dst, size_t n, const char *v)
{
	size_t len;

	while (*v == ' ' || *v == '\t')
		v++;
	if (!strncmp(v, "W/", 2))
		v += 2;
	if (*v == '"')
		v++;
	len = strlen(v);
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len && v[len - 1] == '"')
		len--;
	if (len >= n)
		len = n - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

int hf_hub_content_range(const char *v, uint64_t *start, uint64_t *total)
{
	unsigned long long a, b, t;
	int used = 0;

	while (*v == ' ')
		v++;
	if (strncasecmp(v, "bytes ", 6))
		return -1;
	v += 6;
	if (sscanf(v, "%llu-%llu/%n", &a, &b, &used) != 2 || !used || b < a)
		return -1;
	v += used;
	*start = a;
	if (*v == '*') {
		*total = 0;
		return 0;
	}
	if (sscanf(v, "%llu", &t) != 1 || t <= b)
		return -1;
	*total = t;
	return 0;
}

/* delay-seconds (RFC 9110: digits only) at s, capped at HF_HUB_MAX_WAIT;
 * -1 if s does not start with a digit. *end: just after the digits. */
static double delay_seconds(const char *s, const char **end)
{
	double v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++)
		if (v <= HF_HUB_MAX_WAIT)
			v = v * 10 + (*s - '0');
	*end = s;
	return v > HF_HUB_MAX_WAIT ? HF_HUB_MAX_WAIT : v;
}

/* The number after "<key>=" in a "; "-separated list, or -1. */
static double param(const char *s, const char *key)
{
	size_t k = strlen(key);
	const char *end;

	for (const char *p = s; (p = strstr(p, key)); p += k) {
		if ((p == s || p[-1] == ';' || p[-1] == ' ' || p[-1] == ',') &&
		    p[k] == '=')
			return delay_seconds(p + k + 1, &end);
	}
	return -1;
}

double hf_hub_retry_after(const char *retry_after, const char *ratelimit)
{
	if (ratelimit && *ratelimit) {
		double r = param(ratelimit, "r"), t = param(ratelimit, "t");

		if (r == 0 && t >= 0)
			return t;
	}
	if (retry_after && *retry_after) {
		const char *end;
		double s;

		while (*retry_after == ' ')
			retry_after++;
		s = delay_seconds(retry_after, &end);
		/* an HTTP-date (or anything else) is ignored as upstream does */
		if (s >= 0 && (*end == '\0' || *end == ' '))
			return s;
	}
	return -1;
}

double hf_hub_backoff(int attempt, double u)
{
	double d = 1.0;

	for (int i = 0; i < attempt && d < 8.0; i++)
		d *= 2.0;
	if (d > 8.0)
		d = 8.0;
	return d * (0.5 + 0.5 * u);
}

int hf_hub_truthy(const char *v)
{
	return v && (!strcasecmp(v, "1") || !strcasecmp(v, "on") ||
		     !strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

int hf_hub_valid_repo_id(const char *id)
{
	int slashes = 0;
	size_t n = strlen(id);

	if (!n || n > 200 || id[0] == '/' || id[n - 1] == '/' ||
	    id[0] == '.' || id[0] == '-' || strstr(id, "..") || strstr(id, "--"))
		return 0;
	for (const char *p = id; *p; p++) {
		if (*p == '/') {
			if (++slashes > 1)
				return 0;
		} else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
			     *p == '.')) {
			return 0;
		}
	}
	return 1;
}
