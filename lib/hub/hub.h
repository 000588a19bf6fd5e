/* lib/hub/hub.h: a Hugging Face Hub client sharing huggingface_hub's cache.
 *
 * The cache is huggingface_hub's: $HF_HUB_CACHE (default $HF_HOME/hub) holds
 * models--org--name/{blobs/<etag>, refs/<rev>, snapshots/<commit>/<path>}
 * with relative symlinks from snapshots into blobs, so Python and hf share
 * downloads. Blobs are fetched to blobs/<etag>.incomplete under a flock on
 * .locks/<folder>/<etag>.lock, resumed with Range, checked (size, sha256 for
 * LFS files) and only then renamed into place. */
#ifndef HF_HUB_HUB_H
#define HF_HUB_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum hf_hub_repo_type {
	HF_HUB_MODEL = 0,
	HF_HUB_DATASET,
	HF_HUB_SPACE,
};

/* Client settings; zero or NULL fields take the environment's value
 * (HF_ENDPOINT, HF_HUB_CACHE / HF_HOME, HF_TOKEN / token file,
 * HF_HUB_OFFLINE) or the default. */
struct hf_hub_opts {
	const char *endpoint;	/* "http://127.0.0.1:8080" */
	const char *cache_dir;
	const char *token;
	int offline;		/* 1: answer from the cache alone */
	int jobs;		/* parallel downloads; 0: 4 */
	int quiet;		/* no progress bar */
};

struct hf_hub;	/* opaque */

int hf_hub_open(struct hf_hub **out, const struct hf_hub_opts *opts,
		struct hf_err *err);
void hf_hub_free(struct hf_hub *h);	/* NULL is fine */

/* Borrowed, valid until hf_hub_free(). */
const char *hf_hub_cache_dir(const struct hf_hub *h);
const char *hf_hub_endpoint(const struct hf_hub *h);

/* What to fetch. files, include and exclude are arrays of n strings.
 * With files: exactly those (each must exist). Else include (fnmatch
 * globs on the whole path, "*" crossing "/") or, without it, the files a
 * model needs to run (config and tokenizer files, safetensors weights and
 * index, .bin weights only where no safetensors exist; everything for
 * datasets and spaces); minus what matches exclude. */
struct hf_hub_request {
	enum hf_hub_repo_type type;
	const char *repo_id;	/* "org/name" or "name" */
	const char *revision;	/* branch, tag or commit; NULL: "main" */
	const char *const *files;
	size_t nfiles;
	const char *const *include;
	size_t ninclude;
	const char *const *exclude;
	size_t nexclude;
	const char *local_dir;	/* real files there instead of the cache */
};

struct hf_hub_file {
	char *path;		/* in the repo, "/"-separated */
	uint64_t size;		/* bytes; 0 when unknown */
	char *blob_id;		/* git blob sha1; NULL when unknown */
	char *sha256;		/* LFS files; NULL otherwise */
	int cached;		/* already in place: fetch skips it */
};

struct hf_hub_plan {
	enum hf_hub_repo_type type;
	char *repo_id;
	char *revision;		/* as asked */
	char *commit;		/* the 40-hex commit it resolved to */
	char *dir;		/* snapshots/<commit> or the local dir */
	char *local_dir;	/* NULL: the cache */
	struct hf_hub_file *files;
	size_t nfiles;
	uint64_t bytes;		/* sum of sizes still to fetch */
	int from_cache;		/* offline, or the Hub was unreachable */
};

/* Resolve the revision and pick the files (one API call, or none from the
 * cache when offline or when the Hub cannot be reached but a snapshot is
 * cached). Writes nothing. */
int hf_hub_plan(struct hf_hub_plan **out, struct hf_hub *h,
		const struct hf_hub_request *req, struct hf_err *err);
void hf_hub_plan_free(struct hf_hub_plan *p);	/* NULL is fine */

/* Download what the plan lacks (opts.jobs at once, one progress bar on a
 * terminal), write refs/<revision> and link the snapshot. On success every
 * planned file is complete and verified under plan->dir. */
int hf_hub_fetch(struct hf_hub *h, const struct hf_hub_plan *p,
		 struct hf_err *err);

/* Split "org/name[@rev]" into malloc'd repo id and revision (NULL when
 * absent). HF_EINVAL when spec is not a repo id. */
int hf_hub_parse_spec(char **repo_id, char **revision, const char *spec,
		      struct hf_err *err);

/* -m for every command: an existing directory is returned as is (copied);
 * else spec is "org/name[@rev]", pulled with the default selection (from
 * the cache alone when HF_HUB_OFFLINE is set) and *dir_out is the snapshot
 * directory. The caller frees *dir_out. */
int hf_hub_resolve_model(char **dir_out, const char *spec, struct hf_err *err);

#endif
