/* test/fuzz/hub_answers.c: libFuzzer harness for what a Hub server (or a
 * mirror named by HF_ENDPOINT) sends and hf reads: the repo-info JSON that
 * becomes the list of files to write, and the Content-Range, ETag,
 * Retry-After and RateLimit headers. The first byte picks which. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "hub/internal.h"

static char *cstr(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, d, n);
	s[n] = '\0';
	return s;
}

/* Whatever the answer, the plan holds a commit, safe paths, real sha256s. */
static void repo_info(int sel, const uint8_t *d, size_t n)
{
	json_t *j = json_loadb((const char *)d, n, 0, NULL);
	struct hf_hub_request req = { 0 };
	struct hf_hub_plan *p = calloc(1, sizeof(*p));
	struct hf_err err = { 0 };

	if (!p || !(p->repo_id = strdup("org/name")) ||
	    !(p->revision = strdup("main")))
		abort();
	req.type = sel & 1 ? HF_HUB_DATASET : HF_HUB_MODEL;
	if (j && !hub_plan_answer(p, &req, j, "http://hub/api", &err)) {
		if (!p->commit || !hf_hub_is_commit(p->commit))
			abort();
		for (size_t i = 0; i < p->nfiles; i++)
			if (!hf_hub_safe_path(p->files[i].path) ||
			    (p->files[i].sha256 &&
			     !hf_hub_is_sha256(p->files[i].sha256)))
				abort();
	} else if (j && !err.msg[0]) {
		abort();	/* a refusal says why */
	}
	json_decref(j);
	hf_hub_plan_free(p);
}

static void headers(const uint8_t *d, size_t n)
{
	char *s = cstr(d, n), *nl = strchr(s, '\n'), etag[128];
	uint64_t start, total;
	double w;

	if (!hf_hub_content_range(s, &start, &total) && total && total <= start)
		abort();
	hf_hub_etag_norm(etag, sizeof(etag), s);
	if (strlen(etag) >= sizeof(etag))
		abort();
	if (nl)
		*nl++ = '\0';
	w = hf_hub_retry_after(s, nl);
	if (w != -1 && !(w >= 0 && w <= HF_HUB_MAX_WAIT))
		abort();
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hf_log_set_level(HF_LOG_ERROR);	/* skipped paths warn */
	if (size < 1)
		return 0;
	if (data[0] & 2)
		headers(data + 1, size - 1);
	else
		repo_info(data[0], data + 1, size - 1);
	return 0;
}
