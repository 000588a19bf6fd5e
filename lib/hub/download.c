/* lib/hub/download.c: fetching a plan: per-file HEAD, blob download with
 * resume, verification and locking, several files at once. */
#define _GNU_SOURCE	/* asprintf */
#include "hub/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/progress.h"
#include "hub/sha256.h"

struct fetch {
	struct hf_hub *h;
	const struct hf_hub_plan *p;
	char *folder;		/* models--org--name */
	char *repo_dir;		/* cache/folder */
	pthread_mutex_t mu;	/* guards what follows, but done */
	const struct hf_hub_file **order;	/* still to fetch, largest first */
	size_t norder;
	size_t next;		/* next of order to take */
	int failed;
	struct hf_err err;	/* the first failure */
	struct hf_progress bar;
	uint64_t done;		/* bytes in place or received (atomic) */
};

/* Count n more bytes (negative after a restart). Writers never wait on
 * the bar: if another thread is drawing, this one skips its turn. */
static void progress_add(struct fetch *f, int64_t n)
{
	uint64_t done = __atomic_add_fetch(&f->done, (uint64_t)n,
					   __ATOMIC_RELAXED);

	if (!f->bar.enabled || pthread_mutex_trylock(&f->mu))
		return;
	hf_progress_update(&f->bar, done);
	pthread_mutex_unlock(&f->mu);
}

/* --- one blob -------------------------------------------------------- */

/* The body reaches the file through slots of SLOT bytes, each then hashed
 * from memory (inline, or by a hub_hasher while the receiving thread fills
 * the next ones) rather than read back from the page cache. libcurl hands
 * the write callback 16 KiB at a time (CURL_MAX_WRITE_SIZE, whatever
 * CURLOPT_BUFFERSIZE says); a slot is written in 32 KiB pieces
 * (hub_write_at), half the calls. Not more: on kernels with large page-cache folios a write
 * of more than 32 KiB takes its pages from the buddy allocator rather
 * than the per-CPU lists (orders above PAGE_ALLOC_COSTLY_ORDER), and in a
 * VM that returns free memory to its host those pages fault in again one
 * by one: 1 MiB writes cost 2-4x the CPU of 32 KiB ones on the 2-CPU
 * KVM guest of BENCHMARKS.md.
 *
 * Big blobs (HF_HUB_DIRECT_IO MiB and up, 64 by default) skip the page
 * cache: a whole slot goes down in one O_DIRECT write, from memory aligned
 * for it, where its place in the file is aligned too (everywhere but
 * after a resume at an odd offset, and the tail). The copy into the page
 * cache was the receiving thread's largest cost, 1-3 CPU s/GiB there
 * against 0.1-0.2 for a direct write, and it put hf-pull behind `curl -o`
 * on a 2-CPU machine, where the hash thread needs the other CPU. The price:
 * the blob is not in the page cache when a model is first loaded. File
 * systems without O_DIRECT (tmpfs) get the buffered writes. */
#define SLOT ((size_t)512 << 10)
/* With a hash thread: how far the hash and the direct writes may lag the
 * transfer. A direct write waits for the disk, one at a time, and a VM's
 * disk (1.3-1.5 GB/s, about the hash's speed) stalls now and then, the
 * ring fills, the transfer stops and then the hash runs dry: with 8 slots
 * the hash thread sat idle 0.07-0.23 s per GiB, with 16 mostly under
 * 0.03 s (and 1.02x against 0.94x curl in the same ABBA rounds). */
#define NSLOTS 16

/* CPU seconds of the calling thread. */
static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct blob_dl {
	struct fetch *f;
	int fd;
	int dfd;		/* the same file opened O_DIRECT, or -1 */
	int direct;		/* a direct write went through */
	const char *tmp;	/* for messages */
	uint64_t size;		/* expected */
	uint64_t have;		/* bytes received: in the file, then in slot */
	uint64_t range_from;	/* of the current request */
	int first;		/* no body byte of this response seen yet */
	char *mem;		/* the one slot without a hash thread */
	char *slot;		/* being filled; NULL: take the next one */
	size_t fill;		/* bytes in slot */
	struct hub_hasher *hs;	/* hashing on a second thread */
	int inl;		/* hashing in the receiving thread */
	struct hf_sha256 isha;	/* of the inline hash */
	int werrno;		/* a failed write */
	int overflow;		/* the server sent more than size */
	int bad_range;		/* 206 for another offset */
};

static void close_direct(struct blob_dl *b)
{
	if (b->dfd >= 0)
		close(b->dfd);
	b->dfd = -1;
}

/* Write the slot being filled and pass it to the hash (with a hash
 * thread, pass it to the thread that writes and hashes it); -1 and werrno
 * if a write failed. */
static int flush(struct blob_dl *b)
{
	uint64_t at = b->have - b->fill;	/* the slot's place in the file */
	int e, dfd = b->dfd;

	if (!b->fill)
		return 0;
	if (b->hs) {
		e = hub_hasher_put(b->hs, b->slot, b->fill);
	} else {
		e = hub_write_at(b->fd, &dfd, b->slot, b->fill, at, &b->direct);
		if (dfd < 0)
			close_direct(b);
		if (!e && b->inl)
			hf_sha256_update(&b->isha, b->slot, b->fill);
	}
	if (e) {
		b->werrno = e;
		return -1;
	}
	progress_add(b->f, (int64_t)b->fill);
	b->fill = 0;
	b->slot = NULL;
	return 0;
}

static int restart(struct blob_dl *b)
{
	b->have -= b->fill;	/* never written, never counted */
	b->fill = 0;
	b->slot = NULL;
	if (b->hs)
		hub_hasher_reset(b->hs);
	if (ftruncate(b->fd, 0) && errno != EINVAL) {
		b->werrno = errno;
		return -1;
	}
	lseek(b->fd, 0, SEEK_SET);
	progress_add(b->f, -(int64_t)b->have);
	b->have = 0;
	if (b->inl)
		hf_sha256_init(&b->isha);
	return 0;
}

static int blob_write(void *ctx, const struct hub_resp *rs, const char *buf,
		      size_t n)
{
	struct blob_dl *b = ctx;
	size_t off = 0;

	if (b->first) {
		b->first = 0;
		if (b->range_from && rs->status == 200) {
			/* the Range was ignored: the body starts at 0 */
			if (restart(b))
				return -1;
		} else if (rs->status == 206) {
			uint64_t start, total;

			if (hf_hub_content_range(rs->content_range, &start, &total) ||
			    start != b->range_from) {
				b->bad_range = 1;
				return -1;
			}
		}
	}
	if (b->have + n > b->size) {
		b->overflow = 1;
		return -1;
	}
	while (off < n) {
		size_t take = SLOT - b->fill;

		if (!b->slot)
			b->slot = b->hs ? hub_hasher_slot(b->hs) : b->mem;
		if (take > n - off)
			take = n - off;
		memcpy(b->slot + b->fill, buf + off, take);
		b->fill += take;
		b->have += take;
		off += take;
		if (b->fill == SLOT && flush(b))
			return -1;
	}
	return 0;
}

/* Hash the bytes already in a partial file, for the inline hash. */
static int hash_existing(struct blob_dl *b, struct hf_err *err)
{
	uint64_t off = 0;

	while (off < b->have) {
		size_t want = b->have - off < SLOT ? (size_t)(b->have - off) : SLOT;
		ssize_t r = pread(b->fd, b->mem, want, (off_t)off);

		if (r <= 0)
			return hf_err_errno(err, "cannot read '%s'", b->tmp);
		hf_sha256_update(&b->isha, b->mem, (size_t)r);
		off += (uint64_t)r;
	}
	return 0;
}

/* Whether to hash on a second thread: when there is a CPU to run it. */
static int hash_thread(const struct hf_hub *h)
{
	cpu_set_t set;

	if (h->hash_thread >= 0)
		return h->hash_thread;
	if (sched_getaffinity(0, sizeof(set), &set))
		return hf_cpu_count() > 1;
	return CPU_COUNT(&set) > 1;
}

/* Download url into tmp (resuming what is there), verify it against size
 * and, for a sha256 etag, its hash, and rename it to final. The caller
 * holds the lock. */
static int download_blob(struct fetch *f, CURL *c, const char *url,
			 const char *tmp, const char *final, uint64_t size,
			 const char *etag, const char *name, struct hf_err *err)
{
	struct blob_dl b = { 0 };
	struct hub_sink sink = { blob_write, &b };
	struct hub_resp rs = { 0 };
	struct stat st;
	int sha = hf_hub_is_sha256(etag);
	int threaded = sha && hash_thread(f->h);
	int attempt = 0, tries = 0, bad_sha = 0, rc = 0, e;
	double t0 = hf_now(), cpu0 = thread_cpu();

	b.f = f;
	b.tmp = tmp;
	b.size = size;
	b.fd = -1;
	b.dfd = -1;
	if (hub_mkdirs(tmp, 0, err))
		return err->code;
	if (!threaded && !(b.mem = aligned_alloc(HUB_DIRECT_ALIGN, SLOT)))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
again:
	b.slot = NULL;
	b.fill = 0;
	b.fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (b.fd < 0) {
		rc = hf_err_errno(err, "cannot open '%s'", tmp);
		goto out;
	}
	b.dfd = f->h->direct_mib && size >= (uint64_t)f->h->direct_mib << 20 ?
		open(tmp, O_WRONLY | O_DIRECT | O_CLOEXEC) : -1;
	if (fstat(b.fd, &st)) {
		rc = hf_err_errno(err, "cannot stat '%s'", tmp);
		goto out;
	}
	b.have = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	if (b.have > size) {
		b.have = 0;
		if (ftruncate(b.fd, 0)) {
			rc = hf_err_errno(err, "cannot truncate '%s'", tmp);
			goto out;
		}
	}
	/* claim the space now: a full disk shows before the transfer, not
	 * gigabytes into it (a hint only; sizes stay as written) */
	if (size > b.have && fallocate(b.fd, FALLOC_FL_KEEP_SIZE, (off_t)b.have,
				       (off_t)(size - b.have)) &&
	    (errno == ENOSPC || errno == EDQUOT)) {
		rc = hf_err_set(err, HF_EIO, "disk full: '%s' needs %llu more "
				"bytes", tmp, (unsigned long long)(size - b.have));
		goto out;
	}
	if (b.have) {
		hf_log_info("resuming '%s' at byte %llu of %llu", name,
			    (unsigned long long)b.have, (unsigned long long)size);
		progress_add(f, (int64_t)b.have);
	}
	if (threaded) {
		if (hub_hasher_start_writing(&b.hs, b.fd, b.dfd, b.have, SLOT,
					     NSLOTS)) {
			rc = hf_err_set(err, HF_ENOMEM, "cannot start a thread");
			goto out;
		}
	} else if (sha) {
		b.inl = 1;
		hf_sha256_init(&b.isha);
		if (b.have && (rc = hash_existing(&b, err)))
			goto out;
	}
	lseek(b.fd, (off_t)b.have, SEEK_SET);
	while (b.have < size) {
		uint64_t before = b.have;

		b.range_from = b.have;
		b.first = 1;
		b.werrno = b.overflow = b.bad_range = 0;
		if (hub_request(c, f->h, "GET", url, b.have, &sink, &rs)) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		tries++;
		/* from here to the next request, the file holds all of have */
		if (!b.werrno && !b.overflow && !b.bad_range)
			flush(&b);
		if (b.hs && !b.werrno && (e = hub_hasher_sync(b.hs, &b.direct)))
			b.werrno = e;
		if (b.werrno) {
			if (b.werrno == ENOSPC || b.werrno == EDQUOT)
				rc = hf_err_set(err, HF_EIO, "disk full writing '%s'",
						tmp);
			else
				rc = hf_err_set(err, HF_EIO, "cannot write '%s': %s",
						tmp, strerror(b.werrno));
			goto out;
		}
		if (b.overflow) {
			rc = hf_err_set(err, HF_EFORMAT, "'%s': the server sent "
					"more than the %llu bytes announced", name,
					(unsigned long long)size);
			unlink(tmp);
			goto out;
		}
		if (rs.curl == CURLE_OK && rs.status == 416 && b.have) {
			/* the partial file is not a prefix of this object */
			if (restart(&b)) {
				rc = hf_err_errno(err, "cannot truncate '%s'", tmp);
				goto out;
			}
			continue;
		}
		if (rs.curl == CURLE_OK && rs.status >= 200 && rs.status < 300 &&
		    !b.bad_range) {
			if (b.have >= size)
				break;
			/* a clean end short of the size: resume like a drop */
		} else if (b.bad_range) {
			rc = hf_err_set(err, HF_EFORMAT, "'%s': asked for bytes from "
					"%llu, got Content-Range '%s'", name,
					(unsigned long long)b.range_from,
					rs.content_range);
			goto out;
		} else if (!hub_retryable(&rs)) {
			rc = hub_error(err, f->h, &rs, url, f->p->repo_id,
				       f->p->revision, name, tries);
			goto out;
		}
		if (b.have > before)
			attempt = 0;	/* progress: the budget starts again */
		if (attempt >= f->h->retries) {
			if (rs.curl == CURLE_OK && rs.status >= 200 && rs.status < 300)
				rc = hf_err_set(err, HF_ENET, "'%s': the connection "
						"ended at byte %llu of %llu (after %d "
						"attempts)", name,
						(unsigned long long)b.have,
						(unsigned long long)size, tries);
			else
				rc = hub_error(err, f->h, &rs, url, f->p->repo_id,
					       f->p->revision, name, tries);
			goto out;
		}
		{
			double d = hub_retry_delay(&rs, attempt);

			hf_log_info("'%s': %s at byte %llu; retrying in %.1f s",
				    name, rs.curl != CURLE_OK ? rs.curl_msg :
				    "HTTP error", (unsigned long long)b.have, d);
			hub_sleep(d);
		}
		attempt++;
	}
	if (b.hs || b.inl) {
		char got[65];
		double hcpu = 0;

		e = 0;
		if (b.inl)
			hf_sha256_hex(&b.isha, got);
		else
			e = hub_hasher_finish(b.hs, b.have, 0, got, &hcpu);
		hf_log_debug("'%s': %llu bytes in %.3f s%s; CPU: receiving "
			     "thread %.3f s, hash thread %.3f s", name,
			     (unsigned long long)b.have, hf_now() - t0,
			     b.direct ? ", direct I/O" : "",
			     thread_cpu() - cpu0, hcpu);
		b.hs = NULL;
		b.inl = 0;
		if (e) {
			rc = hf_err_set(err, HF_EIO, "cannot read '%s' back: %s", tmp,
					strerror(e));
			goto out;
		}
		if (strcmp(got, etag)) {
			/* never keep corrupt bytes, not even to resume from */
			close_direct(&b);
			close(b.fd);
			b.fd = -1;
			unlink(tmp);
			progress_add(f, -(int64_t)b.have);
			if (!bad_sha++) {
				hf_log_warn("'%s': sha256 %s, expected %s; downloading "
					    "it again", name, got, etag);
				goto again;
			}
			rc = hf_err_set(err, HF_EFORMAT, "'%s': sha256 of the "
					"download is %s, expected %s (removed)",
					name, got, etag);
			goto out;
		}
	}
	close_direct(&b);
	if (close(b.fd)) {
		b.fd = -1;
		rc = hf_err_errno(err, "cannot write '%s'", tmp);
		goto out;
	}
	b.fd = -1;
	if (rename(tmp, final)) {
		rc = hf_err_errno(err, "cannot rename '%s' to '%s'", tmp, final);
		goto out;
	}
out:
	if (b.hs) {
		char unused[65];

		hub_hasher_finish(b.hs, 0, 1, unused, NULL);
	}
	close_direct(&b);
	if (b.fd >= 0)
		close(b.fd);
	free(b.mem);
	hub_resp_free(&rs);
	return rc;
}

/* --- one file -------------------------------------------------------- */

struct meta {
	char commit[64];
	char etag[160];
	uint64_t size;
	char url[2048];		/* where the bytes are */
};

/* HEAD the resolve URL, following relative (renamed repo) redirects but
 * not absolute ones (the CDN), as huggingface_hub does. */
static int head(struct fetch *f, CURL *c, const char *path, struct meta *m,
		struct hf_err *err)
{
	const struct hf_hub_plan *p = f->p;
	struct hub_resp rs = { 0 };
	char *esc_path = hf_hub_escape(path, 1);
	char *url = NULL;
	int rc = 0, attempt = 0, hops = 0;

	if (!esc_path || asprintf(&url, "%s/%s%s/resolve/%s/%s", f->h->endpoint,
				  hf_hub_url_prefix(p->type), p->repo_id,
				  p->commit, esc_path) < 0) {
		free(esc_path);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	free(esc_path);
	for (;;) {
		if (hub_request(c, f->h, "HEAD", url, 0, NULL, &rs)) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		attempt++;
		if (rs.curl == CURLE_OK && rs.status >= 300 && rs.status < 400 &&
		    rs.location[0] == '/' && hops++ < 5) {
			char *next;

			if (asprintf(&next, "%s%s", f->h->origin, rs.location) < 0) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				goto out;
			}
			free(url);
			url = next;
			continue;
		}
		if (rs.curl == CURLE_OK && rs.status >= 200 && rs.status < 400)
			break;
		if (!hub_retryable(&rs) || attempt > f->h->retries) {
			if (!strcmp(rs.error_code, "EntryNotFound") &&
			    !p->local_dir) {
				/* remember it, as huggingface_hub does */
				char *ne;

				if (asprintf(&ne, "%s/.no_exist/%s/%s", f->repo_dir,
					     p->commit, path) >= 0) {
					if (!hub_mkdirs(ne, 0, NULL))
						close(open(ne, O_WRONLY | O_CREAT, 0666));
					free(ne);
				}
			}
			rc = hub_error(err, f->h, &rs, url, p->repo_id, p->revision,
				       path, attempt);
			goto out;
		}
		hub_sleep(hub_retry_delay(&rs, attempt - 1));
	}
	hf_hub_etag_norm(m->etag, sizeof(m->etag),
			 rs.linked_etag[0] ? rs.linked_etag : rs.etag);
	snprintf(m->commit, sizeof(m->commit), "%s", rs.commit);
	if (rs.linked_size >= 0)
		m->size = (uint64_t)rs.linked_size;
	else if (rs.status < 300 && rs.length >= 0)
		m->size = (uint64_t)rs.length;
	else
		m->size = UINT64_MAX;
	if (!m->commit[0] || !m->etag[0] || m->size == UINT64_MAX) {
		rc = hf_err_set(err, HF_EFORMAT, "%s answered without %s for '%s': "
				"is HF_ENDPOINT ('%s') a Hub?", url,
				!m->commit[0] ? "X-Repo-Commit" :
				!m->etag[0] ? "an ETag" : "a size", path,
				f->h->endpoint);
		goto out;
	}
	if (strchr(m->etag, '/') || m->etag[0] == '.') {
		rc = hf_err_set(err, HF_EFORMAT, "%s: ETag '%s' cannot name a blob",
				url, m->etag);
		goto out;
	}
	snprintf(m->url, sizeof(m->url), "%s",
		 rs.status >= 300 && rs.location[0] ? rs.location : url);
out:
	hub_resp_free(&rs);
	free(url);
	return rc;
}

static int fetch_cache(struct fetch *f, CURL *c, const struct hf_hub_file *hf,
		       const struct meta *m, struct hf_err *err)
{
	char *blob = NULL, *tmp = NULL, *lock = NULL, *link = NULL;
	char *target = NULL;
	int rc = 0, fd = -1;

	if (asprintf(&blob, "%s/blobs/%s", f->repo_dir, m->etag) < 0 ||
	    asprintf(&tmp, "%s.incomplete", blob) < 0 ||
	    asprintf(&lock, "%s/.locks/%s/%s.lock", f->h->cache, f->folder,
		     m->etag) < 0 ||
	    asprintf(&link, "%s/%s", f->p->dir, hf->path) < 0 ||
	    !(target = hf_hub_blob_target(hf->path, m->etag))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if (!hf_file_exists(blob)) {
		if ((fd = hub_lock(lock, err)) < 0) {
			rc = err->code;
			goto out;
		}
		/* another process may have finished it while we waited */
		if (!hf_file_exists(blob))
			rc = download_blob(f, c, m->url, tmp, blob, m->size, m->etag,
					   hf->path, err);
		else
			progress_add(f, (int64_t)m->size);
		hub_unlock(fd);
		if (rc)
			goto out;
	} else {
		progress_add(f, (int64_t)m->size);
	}
	rc = hub_symlink(target, link, err);
out:
	free(blob);
	free(tmp);
	free(lock);
	free(link);
	free(target);
	return rc;
}

/* --local-dir: real files, metadata under DIR/.cache/huggingface/download
 * as huggingface_hub's _local_folder.py lays it out. */
static int fetch_local(struct fetch *f, CURL *c, const struct hf_hub_file *hf,
		       const struct meta *m, struct hf_err *err)
{
	const char *dir = f->p->local_dir;
	char *dest = NULL, *base = NULL, *meta = NULL, *lock = NULL;
	char *tmp = NULL, line[512];
	int rc = 0, fd = -1;
	struct timespec ts;

	if (asprintf(&dest, "%s/%s", dir, hf->path) < 0 ||
	    asprintf(&base, "%s/.cache/huggingface/download/%s", dir,
		     hf->path) < 0 ||
	    asprintf(&meta, "%s.metadata", base) < 0 ||
	    asprintf(&lock, "%s.lock", base) < 0 ||
	    asprintf(&tmp, "%s.%s.incomplete", base, m->etag) < 0) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = hub_mkdirs(dest, 0, err)))
		goto out;
	if ((fd = hub_lock(lock, err)) < 0) {
		rc = err->code;
		goto out;
	}
	rc = download_blob(f, c, m->url, tmp, dest, m->size, m->etag, hf->path,
			   err);
	if (!rc) {
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(line, sizeof(line), "%s\n%s\n%.6f\n", m->commit, m->etag,
			 ts.tv_sec + ts.tv_nsec * 1e-9);
		rc = hub_write_if_changed(meta, line, err);
	}
	hub_unlock(fd);
out:
	free(dest);
	free(base);
	free(meta);
	free(lock);
	free(tmp);
	return rc;
}

static int fetch_file(struct fetch *f, CURL *c, const struct hf_hub_file *hf,
		      struct hf_err *err)
{
	struct meta m;
	int rc;

	if ((rc = head(f, c, hf->path, &m, err)))
		return rc;
	if (strcmp(m.commit, f->p->commit))
		hf_log_warn("'%s': the server answered commit %s for %s", hf->path,
			    m.commit, f->p->commit);
	if (f->p->local_dir)
		return fetch_local(f, c, hf, &m, err);
	return fetch_cache(f, c, hf, &m, err);
}

static void *worker(void *arg)
{
	struct fetch *f = arg;
	CURL *c = hub_curl_new();
	struct hf_err err = { 0 };

	for (;;) {
		const struct hf_hub_file *hf = NULL;

		pthread_mutex_lock(&f->mu);
		if (!f->failed && f->next < f->norder)
			hf = f->order[f->next++];
		if (!c && !f->failed && hf) {
			f->failed = 1;
			hf_err_set(&f->err, HF_ENOMEM, "cannot start libcurl");
			hf = NULL;
		}
		pthread_mutex_unlock(&f->mu);
		if (!hf)
			break;
		if (fetch_file(f, c, hf, &err)) {
			pthread_mutex_lock(&f->mu);
			if (!f->failed) {
				f->failed = 1;
				f->err = err;
			}
			pthread_mutex_unlock(&f->mu);
			break;
		}
	}
	if (c)
		curl_easy_cleanup(c);
	return NULL;
}

static int larger_first(const void *a, const void *b)
{
	const struct hf_hub_file *x = *(const struct hf_hub_file *const *)a;
	const struct hf_hub_file *y = *(const struct hf_hub_file *const *)b;

	return x->size < y->size ? 1 : x->size > y->size ? -1 :
	       strcmp(x->path, y->path);
}

int hf_hub_fetch(struct hf_hub *h, const struct hf_hub_plan *p,
		 struct hf_err *err)
{
	struct fetch f = { 0 };
	pthread_t tids[64];
	size_t nmissing = 0;
	int n, started = 0, rc = 0;

	if (p->from_cache)
		return 0;
	for (size_t i = 0; i < p->nfiles; i++)
		nmissing += !p->files[i].cached;
	f.h = h;
	f.p = p;
	f.folder = hf_hub_repo_folder(p->type, p->repo_id);
	f.repo_dir = f.folder ? hf_path_join(h->cache, f.folder) : NULL;
	/* largest first: with -j the last file to start is a small one, so
	 * the workers finish close together */
	f.order = calloc(nmissing ? nmissing : 1, sizeof(*f.order));
	if (!f.repo_dir || !f.order) {
		free(f.folder);
		free(f.repo_dir);
		free(f.order);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->nfiles; i++)
		if (!p->files[i].cached)
			f.order[f.norder++] = &p->files[i];
	qsort(f.order, f.norder, sizeof(*f.order), larger_first);
	if (!p->local_dir && !hf_hub_is_commit(p->revision)) {
		char *ref;

		if (asprintf(&ref, "%s/refs/%s", f.repo_dir, p->revision) < 0) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		rc = hub_write_if_changed(ref, p->commit, err);
		free(ref);
		if (rc)
			goto out;
	}
	if (!p->local_dir && (rc = hub_mkdirs(p->dir, 1, err)))
		goto out;
	if (p->local_dir) {
		/* once, before the workers: they would race on its temp name */
		char *ign;

		if (asprintf(&ign, "%s/.cache/huggingface/.gitignore",
			     p->local_dir) < 0) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto out;
		}
		rc = hub_write_if_changed(ign, "*\n", err);
		free(ign);
		if (rc)
			goto out;
	}
	if (!nmissing)
		goto out;
	pthread_mutex_init(&f.mu, NULL);
	{
		char label[64];

		snprintf(label, sizeof(label), "Fetching %zu file%s", nmissing,
			 nmissing == 1 ? "" : "s");
		hf_progress_init(&f.bar, label, p->bytes, 1);
	}
	if (h->quiet)
		f.bar.enabled = 0;
	n = h->jobs < (int)nmissing ? h->jobs : (int)nmissing;
	if (n > 64)
		n = 64;
	for (int i = 1; i < n; i++) {
		if (pthread_create(&tids[i], NULL, worker, &f))
			break;
		started++;
	}
	worker(&f);
	for (int i = 1; i <= started; i++)
		pthread_join(tids[i], NULL);
	if (!f.failed) {
		f.bar.done = f.done;
		hf_progress_finish(&f.bar);
	}
	else if (f.bar.enabled)
		fputc('\n', stderr);
	pthread_mutex_destroy(&f.mu);
	if (f.failed) {
		*err = f.err;
		rc = f.err.code;
	}
out:
	free(f.order);
	free(f.folder);
	free(f.repo_dir);
	return rc;
}
