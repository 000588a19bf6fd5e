/* lib/hub/hub.c: client settings from the environment, repo specs, and
 * -m resolution for the other commands. */
#define _GNU_SOURCE	/* asprintf */
#include "hub/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "core/log.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* "~/x" -> "$HOME/x"; other paths copied. */
static char *expand(const char *path)
{
	const char *home = env("HOME");
	char *out;

	if (path[0] == '~' && (path[1] == '/' || !path[1]) && home) {
		if (asprintf(&out, "%s%s", home, path + 1) < 0)
			return NULL;
		return out;
	}
	return strdup(path);
}

static char *hf_home(void)
{
	const char *v = env("HF_HOME");
	char *out;

	if (v)
		return expand(v);
	if ((v = env("XDG_CACHE_HOME")))
		return asprintf(&out, "%s/huggingface", v) < 0 ? NULL : out;
	return expand("~/.cache/huggingface");
}

/* Token precedence: option, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, token file. */
static int load_token(struct hf_hub *h, const char *opt, const char *home,
		      struct hf_err *err)
{
	const char *v = opt;
	char *path = NULL, *data = NULL, *s, *e;

	if (!v && !hf_hub_truthy(getenv("HF_HUB_DISABLE_IMPLICIT_TOKEN"))) {
		v = env("HF_TOKEN");
		if (!v)
			v = env("HUGGING_FACE_HUB_TOKEN");
		if (!v) {
			const char *tp = env("HF_TOKEN_PATH");

			path = tp ? expand(tp) : hf_path_join(home, "token");
			if (!path)
				return hf_err_set(err, HF_ENOMEM, "out of memory");
			if (hf_file_read(&data, NULL, path, NULL))
				data = NULL;
			free(path);
			v = data;
		}
	}
	if (!v)
		return 0;
	/* strip whitespace and any \r \n inside, as upstream does */
	s = strdup(v);
	free(data);
	if (!s)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	e = s;
	for (char *p = s; *p; p++)
		if (*p != '\r' && *p != '\n' && *p != ' ' && *p != '\t')
			*e++ = *p;
	*e = '\0';
	if (!*s) {
		free(s);
		return 0;
	}
	h->token = s;
	return 0;
}

static long env_long(const char *name, long def, long min, long max)
{
	const char *v = env(name);
	char *end;
	long x;

	if (!v)
		return def;
	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || *end || x < min || x > max) {
		hf_log_warn("ignoring %s='%s': not an integer in [%ld, %ld]", name,
			    v, min, max);
		return def;
	}
	return x;
}

int hf_hub_open(struct hf_hub **out, const struct hf_hub_opts *opts,
		struct hf_err *err)
{
	struct hf_hub_opts none = { 0 };
	struct hf_hub *h = calloc(1, sizeof(*h));
	const char *ep, *v, *host;
	char *home = NULL;
	size_t n;
	int rc;

	*out = NULL;
	if (!opts)
		opts = &none;
	if (!h)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	ep = opts->endpoint ? opts->endpoint : env("HF_ENDPOINT");
	if (!ep)
		ep = "https://huggingface.co";
	h->endpoint = strdup(ep);
	home = hf_home();
	if (!h->endpoint || !home)
		goto nomem;
	n = strlen(h->endpoint);
	while (n && h->endpoint[n - 1] == '/')
		h->endpoint[--n] = '\0';
	host = strstr(h->endpoint, "://");
	if (!host || !host[3]) {
		rc = hf_err_set(err, HF_EINVAL,
				"endpoint '%s' is not an http(s) URL", ep);
		goto fail;
	}
	host += 3;
	h->origin = strndup(h->endpoint,
			    (size_t)(host - h->endpoint) + strcspn(host, "/"));
	if (!h->origin)
		goto nomem;
	if (opts->cache_dir)
		h->cache = expand(opts->cache_dir);
	else if ((v = env("HF_HUB_CACHE")) || (v = env("HUGGINGFACE_HUB_CACHE")))
		h->cache = expand(v);
	else
		h->cache = hf_path_join(home, "hub");
	if (!h->cache)
		goto nomem;
	if ((rc = load_token(h, opts->token, home, err)))
		goto fail;
	h->offline = opts->offline || hf_hub_truthy(getenv("HF_HUB_OFFLINE")) ||
		     hf_hub_truthy(getenv("TRANSFORMERS_OFFLINE"));
	h->jobs = opts->jobs > 0 ? opts->jobs : 4;
	h->quiet = opts->quiet;
	h->retries = (int)env_long("HF_HUB_RETRIES", 5, 0, 100);
	h->etag_timeout = env_long("HF_HUB_ETAG_TIMEOUT", 10, 1, 3600);
	h->dl_timeout = env_long("HF_HUB_DOWNLOAD_TIMEOUT", 10, 1, 3600);
	h->hash_thread = (int)env_long("HF_HUB_HASH_THREAD", -1, -1, 1);
	h->direct_mib = env_long("HF_HUB_DIRECT_IO", 64, 0, 1 << 20);
	free(home);
	*out = h;
	return 0;
nomem:
	rc = hf_err_set(err, HF_ENOMEM, "out of memory");
fail:
	free(home);
	hf_hub_free(h);
	return rc;
}

void hf_hub_free(struct hf_hub *h)
{
	if (!h)
		return;
	free(h->endpoint);
	free(h->origin);
	free(h->cache);
	free(h->token);
	free(h);
}

const char *hf_hub_cache_dir(const struct hf_hub *h)
{
	return h->cache;
}

const char *hf_hub_endpoint(const struct hf_hub *h)
{
	return h->endpoint;
}
int hf_hub_parse_spec(char **repo_id, char **revision, const char *spec,
		      struct hf_err *err)
{
	const char *at = strchr(spec, '@');
	char *id = at ? strndup(spec, (size_t)(at - spec)) : strdup(spec);

	*repo_id = *revision = NULL;
	if (!id)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (!hf_hub_valid_repo_id(id) || (at && !at[1])) {
		free(id);
		return hf_err_set(err, HF_EINVAL,
				  "'%s' is not a repo id (org/name[@revision])",
				  spec);
	}
	if (at && !(*revision = strdup(at + 1))) {
		free(id);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	*repo_id = id;
	return 0;
}

int hf_hub_resolve_model(char **dir_out, const char *spec, struct hf_err *err)
{
	struct hf_hub_request req = { 0 };
	struct hf_hub_plan *p = NULL;
	struct hf_hub *h = NULL;
	char *id = NULL, *rev = NULL;
	int rc;

	*dir_out = NULL;
	if (hf_dir_exists(spec)) {
		if (!(*dir_out = strdup(spec)))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		return 0;
	}
	if (hf_hub_parse_spec(&id, &rev, spec, err))
		return hf_err_set(err, err->code, "'%s' is neither a directory nor "
				  "a Hub repo id (org/name[@revision])", spec);
	req.type = HF_HUB_MODEL;
	req.repo_id = id;
	req.revision = rev;
	if ((rc = hf_hub_open(&h, NULL, err)))
		goto out;
	if ((rc = hf_hub_plan(&p, h, &req, err)))
		goto out;
	if ((rc = hf_hub_fetch(h, p, err)))
		goto out;
	if (!(*dir_out = strdup(p->dir)))
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
out:
	hf_hub_plan_free(p);
	hf_hub_free(h);
	free(id);
	free(rev);
	return rc;
}
