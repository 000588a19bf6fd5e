/* lib/hub/internal.h: what the hub files share. The pure helpers (util.c)
 * are unit-tested in test/unit/hub. */
#ifndef HF_HUB_INTERNAL_H
#define HF_HUB_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>

#include "core/err.h"
#include "hub/hub.h"

struct hf_hub {
	char *endpoint;		/* no trailing "/" */
	char *origin;		/* "scheme://host[:port]" of endpoint: gets the token */
	char *cache;		/* the hub cache directory */
	char *token;		/* NULL: none */
	int offline;
	int jobs;
	int quiet;
	int retries;		/* retries after a transient failure */
	long etag_timeout;	/* seconds, the metadata HEAD and API calls */
	long dl_timeout;	/* seconds without a byte before a GET gives up */
	int hash_thread;	/* LFS sha256 on a second thread: 1, 0, -1 auto */
	long direct_mib;	/* blobs this big (MiB) written O_DIRECT; 0 never */
};

/* --- util.c: pure helpers ---------------------------------------------- */

int hf_hub_is_commit(const char *rev);	/* 40 lowercase hex digits */
int hf_hub_is_sha256(const char *s);	/* 64 lowercase hex digits */
const char *hf_hub_type_name(enum hf_hub_repo_type t);	/* "model" */
/* "models--org--name" (malloc'd) */
char *hf_hub_repo_folder(enum hf_hub_repo_type t, const char *repo_id);
/* "" / "datasets/" / "spaces/": the prefix of resolve URLs */
const char *hf_hub_url_prefix(enum hf_hub_repo_type t);
/* The relative symlink target from snapshots/<commit>/<path> to
 * blobs/<etag>: "../../blobs/<etag>" plus one "../" per "/" in path. */
char *hf_hub_blob_target(const char *path, const char *etag);
/* huggingface_hub's validate_repo_id: "name" or "org/name" of letters,
 * digits, "-", "_", "."; no "--" or ".."; at most 200 characters. */
int hf_hub_valid_repo_id(const char *id);
/* A repo path hf will write: relative, no "." or ".." or empty parts. */
int hf_hub_safe_path(const char *path);
/* fnmatchcase on the whole path: "*" crosses "/"; a pattern ending in
 * "/" matches everything below it. */
int hf_hub_glob_match(const char *pattern, const char *path);
/* The default selection for models (see hub.h). */
int hf_hub_default_file(const char *path, int has_safetensors);
/* Percent-encode s (RFC 3986 unreserved kept, and "/" if keep_slash). */
char *hf_hub_escape(const char *s, int keep_slash);

/* Headers. An ETag without W/ and quotes, into dst (n bytes). */
void hf_hub_etag_norm(char *dst, size_t n, const char *v);
/* "bytes a-b/total": 0 and *start, *total (total 0 if "*"); -1 if not. */
int hf_hub_content_range(const char *v, uint64_t *start, uint64_t *total);
/* Seconds a 429 asks to wait: from RateLimit ("...;r=0;t=55") when r is 0,
 * else Retry-After (delay-seconds only); -1 when neither says. At most
 * HF_HUB_MAX_WAIT: the Hub's rate-limit window is 300 s, and a server
 * asking for more (or for "inf") gets its retry then, not never. */
#define HF_HUB_MAX_WAIT 300.0
double hf_hub_retry_after(const char *retry_after, const char *ratelimit);
/* Wait before retry number attempt (0-based): 1 s doubling to at most 8 s,
 * scaled by 0.5 + 0.5 u for jitter, u uniform in [0, 1). */
double hf_hub_backoff(int attempt, double u);
/* A value from an environment variable "1", "ON", "YES", "TRUE". */
int hf_hub_truthy(const char *v);

/* --- http.c ------------------------------------------------------------ */

struct hub_resp {
	long status;			/* 0: no response */
	CURLcode curl;			/* CURLE_OK or why the transfer failed */
	char curl_msg[CURL_ERROR_SIZE];
	char etag[160];
	char linked_etag[160];
	char commit[64];		/* X-Repo-Commit */
	char location[2048];
	char error_code[64];		/* X-Error-Code */
	char error_msg[512];		/* X-Error-Message */
	char content_range[128];
	char retry_after[64];
	char ratelimit[128];
	char encoding[32];		/* Content-Encoding */
	int64_t linked_size;		/* X-Linked-Size; -1 absent */
	int64_t length;			/* Content-Length; -1 absent */
	char *body;			/* non-2xx bodies, and bodies w/o sink */
	size_t body_len;
	int sink_failed;		/* the sink stopped the transfer */
};

/* Body bytes of a 2xx response go to write(); nonzero stops the transfer. */
struct hub_sink {
	int (*write)(void *ctx, const struct hub_resp *rs, const char *buf,
		     size_t n);
	void *ctx;
};

/* Take one raw header line ("Name: value\r\n", or a status line, which
 * forgets the headers of an earlier response) into rs. */
void hub_header_line(struct hub_resp *rs, const char *buf, size_t n);
/* One request, no retry; a GET follows redirects, a HEAD does not (its
 * Location is the metadata). range_from > 0 asks
 * "Range: bytes=<range_from>-". The token goes only to the endpoint's
 * origin. sink NULL collects the body in rs->body. Fills rs (freed with
 * hub_resp_free); returns HF_ENOMEM or 0 whatever the HTTP outcome. */
int hub_request(CURL *c, const struct hf_hub *h, const char *method,
		const char *url, uint64_t range_from,
		const struct hub_sink *sink, struct hub_resp *rs);
void hub_resp_free(struct hub_resp *rs);
/* A connection error, timeout, 408, 429 or 5xx. */
int hub_retryable(const struct hub_resp *rs);
/* How long to wait before retry attempt: backoff, or what a 429 asks. */
double hub_retry_delay(const struct hub_resp *rs, int attempt);
void hub_sleep(double seconds);
/* Turn a failed response into an error naming repo, revision and file
 * (either may be NULL). Returns the code set. */
int hub_error(struct hf_err *err, const struct hf_hub *h,
	      const struct hub_resp *rs, const char *url, const char *repo,
	      const char *rev, const char *file, int attempts);
/* GET url and parse the JSON answer, retrying transient failures up to
 * retries times. HF_ENET: the request failed, rs says how (hub_error). */
int hub_get_json(struct hf_hub *h, CURL *c, const char *url, int retries,
		 json_t **out, struct hub_resp *rs, int *attempts,
		 struct hf_err *err);
CURL *hub_curl_new(void);

/* --- hasher.c ---------------------------------------------------------- */

/* The sha256 of a file as a writer appends to it, on a second thread that
 * hashes the writer's slots from memory (reading the file back only where
 * it must), so the hash costs one pass over the bytes and overlaps the
 * transfer. The writer: hub_hasher_slot(), fill it (up to slot bytes),
 * write it to the file, hub_hasher_wrote(); repeat. One writer thread. */
struct hub_hasher;

/* Start hashing fd, whose first written bytes are already there, with
 * nslots queue slots of slot bytes (and a spare). -1: no memory or no
 * thread. */
int hub_hasher_start(struct hub_hasher **out, int fd, uint64_t written,
		     size_t slot, unsigned nslots);
/* The slot to fill next; may wait briefly for the hasher. Valid until
 * the hub_hasher_wrote() that passes it back. */
char *hub_hasher_slot(struct hub_hasher *hs);
/* The n bytes of slot are now in the file, after all written before. */
void hub_hasher_wrote(struct hub_hasher *hs, const char *slot, size_t n);
/* The same, and the hasher writes the slots too, on a thread of its own,
 * at their place in the file: through dfd (opened O_DIRECT, or -1) where
 * hub_write_at can, else through fd. The writer then calls
 * hub_hasher_put() instead of writing and calling hub_hasher_wrote().
 * The slots are aligned for O_DIRECT. */
int hub_hasher_start_writing(struct hub_hasher **out, int fd, int dfd,
			     uint64_t written, size_t slot, unsigned nslots);
/* Pass back a filled slot of n bytes to be written and hashed. 0, or the
 * errno of a failed write so far (then nothing more is written). */
int hub_hasher_put(struct hub_hasher *hs, char *slot, size_t n);
/* Wait until every slot put is in the file: 0 or the errno of a failed
 * write. Sets *direct if a direct write went through. */
int hub_hasher_sync(struct hub_hasher *hs, int *direct);
/* Write n bytes of p at offset at of the file: see hasher.c. */
#define HUB_DIRECT_ALIGN 4096
int hub_write_at(int fd, int *dfd, const char *p, size_t n, uint64_t at,
		 int *direct);
/* Forget all hashed and queued bytes: the file starts again at byte 0.
 * Returns once the hasher has stopped reading, so the file may then be
 * truncated. */
void hub_hasher_reset(struct hub_hasher *hs);
/* Wait for the hash of the whole file, which must come to total bytes,
 * and free hs: 0 and out, or an errno (EIO: the count differs). cancel:
 * stop at once, nobody needs the hash. cpu (may be NULL): the seconds of
 * CPU the thread used. */
int hub_hasher_finish(struct hub_hasher *hs, uint64_t total, int cancel,
		      char out[65], double *cpu);

/* --- cache.c ----------------------------------------------------------- */

/* mkdir -p of the directory part of path (or of path if dir is set). */
int hub_mkdirs(const char *path, int dir, struct hf_err *err);
/* Write data to path through a temp file and rename, unless path already
 * holds exactly data. */
int hub_write_if_changed(const char *path, const char *data,
			 struct hf_err *err);
/* Make link (a symlink) point at target, replacing what is there. */
int hub_symlink(const char *target, const char *link, struct hf_err *err);
/* Open and flock (exclusive, waiting) path; returns the fd or -1. */
int hub_lock(const char *path, struct hf_err *err);
void hub_unlock(int fd);
/* Read refs/<rev> of a repo folder into a malloc'd commit (NULL if none). */
char *hub_read_ref(const char *repo_dir, const char *rev);

/* --- plan.c ------------------------------------------------------------ */

/* The Hub's answer to /api/<type>s/<repo>/revision/<rev> (info, from url)
 * into p->commit and the files req picks into p->files: what the server
 * says, checked (a 40-hex commit; safe relative paths only, the rest
 * skipped with a warning; sha256 only when it is one). */
int hub_plan_answer(struct hf_hub_plan *p, const struct hf_hub_request *req,
		    json_t *info, const char *url, struct hf_err *err);

#endif
