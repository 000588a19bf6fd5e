/* lib/hub/http.c: one HTTP request on libcurl, its headers, its errors. */
#include "hub/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/json.h"

#define ERROR_BODY_MAX (64 * 1024)	/* of an error page we keep */
#define JSON_BODY_MAX (256u << 20)	/* an API answer larger is refused */

struct xfer {
	struct hub_resp *rs;
	const struct hub_sink *sink;
	CURL *c;
	int got_status;
};

static void copy_value(char *dst, size_t n, const char *v, size_t len)
{
	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
		       v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= n)
		len = n - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static void reset_headers(struct hub_resp *rs)
{
	rs->etag[0] = rs->linked_etag[0] = rs->commit[0] = '\0';
	rs->location[0] = rs->error_code[0] = rs->error_msg[0] = '\0';
	rs->content_range[0] = rs->retry_after[0] = rs->ratelimit[0] = '\0';
	rs->encoding[0] = '\0';
	rs->linked_size = rs->length = -1;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct xfer *x = ctx;

	hub_header_line(x->rs, buf, size * nitems);
	return size * nitems;
}

void hub_header_line(struct hub_resp *rs, const char *buf, size_t n)
{
	const char *colon = memchr(buf, ':', n);
	size_t klen;
	const char *v;
	size_t vlen;
	char tmp[64];

	if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {
		/* a new response (after a 100 Continue): forget the last */
		reset_headers(rs);
		return;
	}
	if (!colon)
		return;
	klen = (size_t)(colon - buf);
	v = colon + 1;
	vlen = n - klen - 1;
#define IS(name) (klen == strlen(name) && !strncasecmp(buf, name, klen))
	if (IS("etag")) {
		copy_value(rs->etag, sizeof(rs->etag), v, vlen);
	} else if (IS("x-linked-etag")) {
		copy_value(rs->linked_etag, sizeof(rs->linked_etag), v, vlen);
	} else if (IS("x-repo-commit")) {
		copy_value(rs->commit, sizeof(rs->commit), v, vlen);
	} else if (IS("location")) {
		copy_value(rs->location, sizeof(rs->location), v, vlen);
	} else if (IS("x-error-code")) {
		copy_value(rs->error_code, sizeof(rs->error_code), v, vlen);
	} else if (IS("x-error-message")) {
		copy_value(rs->error_msg, sizeof(rs->error_msg), v, vlen);
	} else if (IS("content-range")) {
		copy_value(rs->content_range, sizeof(rs->content_range), v, vlen);
	} else if (IS("retry-after")) {
		copy_value(rs->retry_after, sizeof(rs->retry_after), v, vlen);
	} else if (IS("ratelimit")) {
		copy_value(rs->ratelimit, sizeof(rs->ratelimit), v, vlen);
	} else if (IS("content-encoding")) {
		copy_value(rs->encoding, sizeof(rs->encoding), v, vlen);
	} else if (IS("x-linked-size") || IS("content-length")) {
		char *end;
		long long val;

		copy_value(tmp, sizeof(tmp), v, vlen);
		errno = 0;
		val = strtoll(tmp, &end, 10);
		if (!errno && end != tmp && !*end && val >= 0) {
			if (IS("x-linked-size"))
				rs->linked_size = val;
			else
				rs->length = val;
		}
	}
#undef IS
}

static int append_body(struct hub_resp *rs, const char *buf, size_t n,
		       size_t max)
{
	char *p;

	if (rs->body_len + n > max)
		return -1;
	p = realloc(rs->body, rs->body_len + n + 1);
	if (!p)
		return -1;
	memcpy(p + rs->body_len, buf, n);
	rs->body = p;
	rs->body_len += n;
	p[rs->body_len] = '\0';
	return 0;
}

static size_t on_body(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct xfer *x = ctx;
	struct hub_resp *rs = x->rs;
	size_t n = size * nitems;

	if (!x->got_status) {
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &rs->status);
		x->got_status = 1;
	}
	if (rs->status < 200 || rs->status >= 300 || !x->sink) {
		size_t max = x->sink ? ERROR_BODY_MAX : JSON_BODY_MAX;

		if (append_body(rs, buf, n, max)) {
			/* keep the head of an error page; refuse a huge answer */
			if (x->sink)
				return n;
			rs->sink_failed = 1;
			return 0;
		}
		return n;
	}
	if (x->sink->write(x->sink->ctx, rs, buf, n)) {
		rs->sink_failed = 1;
		return 0;
	}
	return n;
}

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURL *hub_curl_new(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, global_init);
	return curl_easy_init();
}

static int same_origin(const struct hf_hub *h, const char *url)
{
	size_t n = strlen(h->origin);

	return !strncmp(url, h->origin, n) &&
	       (url[n] == '/' || url[n] == '\0' || url[n] == '?');
}

int hub_request(CURL *c, const struct hf_hub *h, const char *method,
		const char *url, uint64_t range_from,
		const struct hub_sink *sink, struct hub_resp *rs)
{
	struct curl_slist *hdrs = NULL, *t;
	struct xfer x = { rs, sink, c, 0 };
	char line[4200];
	int head = !strcmp(method, "HEAD");

	free(rs->body);
	memset(rs, 0, sizeof(*rs));
	reset_headers(rs);
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, rs->curl_msg);
	curl_easy_setopt(c, CURLOPT_USERAGENT,
			 "hf/0.1; hf_hub/compatible; libcurl");
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->etag_timeout);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	if (head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, h->etag_timeout);
	} else if (sink) {
		/* a stalled transfer: under 1 byte/s for dl_timeout seconds */
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->dl_timeout);
	} else {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->etag_timeout);
	}
	if (!head) {
		/* a renamed repo's API answer or a storage URL may redirect;
		 * libcurl (>= 7.83) drops the Authorization header when host,
		 * port or scheme change */
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
		curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
	}
	/* identity: sizes and Range offsets are those of the stored bytes */
	t = curl_slist_append(hdrs, "Accept-Encoding: identity");
	if (!t)
		goto nomem;
	hdrs = t;
	if (h->token && same_origin(h, url)) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", h->token);
		if (!(t = curl_slist_append(hdrs, line)))
			goto nomem;
		hdrs = t;
	}
	if (range_from) {
		snprintf(line, sizeof(line), "Range: bytes=%llu-",
			 (unsigned long long)range_from);
		if (!(t = curl_slist_append(hdrs, line)))
			goto nomem;
		hdrs = t;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	rs->curl = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
	if (rs->curl != CURLE_OK && !rs->curl_msg[0])
		snprintf(rs->curl_msg, sizeof(rs->curl_msg), "%s",
			 curl_easy_strerror(rs->curl));
	curl_slist_free_all(hdrs);
	return 0;
nomem:
	curl_slist_free_all(hdrs);
	return HF_ENOMEM;
}

void hub_resp_free(struct hub_resp *rs)
{
	free(rs->body);
	rs->body = NULL;
	rs->body_len = 0;
}

int hub_retryable(const struct hub_resp *rs)
{
	if (rs->sink_failed)
		return 0;
	switch (rs->curl) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
	return rs->status == 408 || rs->status == 429 || rs->status >= 500;
}

static double uniform(void)
{
	static __thread unsigned int seed;

	if (!seed)
		seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)&seed;
	return rand_r(&seed) / ((double)RAND_MAX + 1.0);
}

double hub_retry_delay(const struct hub_resp *rs, int attempt)
{
	double d = hf_hub_backoff(attempt, uniform());

	if (rs->status == 429) {
		double ra = hf_hub_retry_after(rs->retry_after, rs->ratelimit);

		/* what the server asks, plus up to a second of jitter */
		if (ra >= 0)
			d = ra + uniform();
	}
	return d;
}

void hub_sleep(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The server's explanation: X-Error-Message, else {"error": ...}. */
static void server_message(const struct hub_resp *rs, char *buf, size_t n)
{
	json_t *j, *e;

	buf[0] = '\0';
	if (rs->error_msg[0]) {
		snprintf(buf, n, "%s", rs->error_msg);
		return;
	}
	if (!rs->body)
		return;
	j = json_loadb(rs->body, rs->body_len, 0, NULL);
	if (!j)
		return;
	e = json_object_get(j, "error");
	if (json_is_array(e))
		e = json_array_get(e, 0);
	if (json_is_string(e))
		snprintf(buf, n, "%s", json_string_value(e));
	json_decref(j);
}

/* "host:port" of a URL, for messages. */
static void url_host(const char *url, char *buf, size_t n)
{
	const char *p = strstr(url, "://"), *e;

	p = p ? p + 3 : url;
	e = p + strcspn(p, "/?#");
	snprintf(buf, n, "%.*s", (int)(e - p), p);
}

int hub_error(struct hf_err *err, const struct hf_hub *h,
	      const struct hub_resp *rs, const char *url, const char *repo,
	      const char *rev, const char *file, int attempts)
{
	char msg[600], host[256], tries[64] = "";
	const char *code = rs->error_code;

	url_host(url, host, sizeof(host));
	if (attempts > 1)
		snprintf(tries, sizeof(tries), " (after %d attempts)", attempts);
	if (rs->curl != CURLE_OK) {
		if (rs->curl == CURLE_OPERATION_TIMEDOUT)
			return hf_err_set(err, HF_ENET,
					  "timed out talking to %s%s: %s", host,
					  tries, rs->curl_msg);
		return hf_err_set(err, HF_ENET, "cannot reach %s%s: %s", host,
				  tries, rs->curl_msg);
	}
	server_message(rs, msg, sizeof(msg));
	if (!strcmp(code, "RevisionNotFound"))
		return hf_err_set(err, HF_ENOTFOUND,
				  "revision '%s' not found in '%s'", rev, repo);
	if (!strcmp(code, "EntryNotFound"))
		return hf_err_set(err, HF_ENOTFOUND,
				  "file '%s' not found in '%s' at revision '%s'",
				  file ? file : "?", repo, rev);
	if (!strcmp(code, "GatedRepo"))
		return hf_err_set(err, HF_EAUTH, "'%s' is gated (%ld): %s", repo,
				  rs->status, msg[0] ? msg : "access refused");
	if (!strcmp(msg, "Access to this resource is disabled."))
		return hf_err_set(err, HF_EAUTH, "'%s' is disabled: %s", repo, msg);
	if (!strcmp(code, "RepoNotFound") ||
	    (rs->status == 401 &&
	     strcmp(msg, "Invalid credentials in Authorization header"))) {
		if (h->token)
			return hf_err_set(err, HF_ENOTFOUND,
					  "repository '%s' not found, or the token "
					  "cannot read it (%ld: %s)", repo,
					  rs->status, msg[0] ? msg : "no message");
		return hf_err_set(err, HF_ENOTFOUND,
				  "repository '%s' not found, or private and no "
				  "token was given (set HF_TOKEN) (%ld: %s)", repo,
				  rs->status, msg[0] ? msg : "no message");
	}
	if (rs->status == 401)
		return hf_err_set(err, HF_EAUTH, "invalid token (401 from %s): %s",
				  host, msg);
	if (rs->status == 403)
		return hf_err_set(err, HF_EAUTH, "access to '%s' forbidden (403): %s",
				  repo, msg[0] ? msg : "no message");
	if (rs->status == 404) {
		if (file)
			return hf_err_set(err, HF_ENOTFOUND,
					  "file '%s' not found in '%s' at revision "
					  "'%s' (404)", file, repo, rev);
		return hf_err_set(err, HF_ENOTFOUND, "'%s' not found (404 from %s)",
				  repo, host);
	}
	if (rs->status == 429) {
		double ra = hf_hub_retry_after(rs->retry_after, rs->ratelimit);

		if (ra >= 0)
			return hf_err_set(err, HF_ENET,
					  "rate limited by %s (429)%s; it asks to "
					  "wait %.0f s", host, tries, ra);
		return hf_err_set(err, HF_ENET, "rate limited by %s (429)%s",
				  host, tries);
	}
	if (rs->status >= 500)
		return hf_err_set(err, HF_ENET, "server error %ld from %s%s%s%s",
				  rs->status, host, tries, msg[0] ? ": " : "", msg);
	return hf_err_set(err, HF_ENET, "unexpected HTTP %ld from %s%s%s",
			  rs->status, host, msg[0] ? ": " : "", msg);
}

int hub_get_json(struct hf_hub *h, CURL *c, const char *url, int retries,
		 json_t **out, struct hub_resp *rs, int *attempts,
		 struct hf_err *err)
{
	json_error_t je;
	int attempt = 0;

	for (;;) {
		if (hub_request(c, h, "GET", url, 0, NULL, rs))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		attempt++;
		if (rs->curl == CURLE_OK && rs->status >= 200 && rs->status < 300)
			break;
		if (!hub_retryable(rs) || attempt > retries) {
			*attempts = attempt;
			return HF_ENET;	/* the caller classifies rs */
		}
		hub_sleep(hub_retry_delay(rs, attempt - 1));
	}
	*attempts = attempt;
	*out = json_loadb(rs->body ? rs->body : "", rs->body_len, 0, &je);
	if (!*out)
		return hf_err_set(err, HF_EFORMAT, "bad JSON from %s: %s at line %d",
				  url, je.text, je.line);
	return 0;
}
