/* lib/hub/hasher.c: the sha256 of a file being written, on its own
 * thread, from the writer's memory where it can be and from the file
 * where it must be. */
#include "hub/internal.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub/sha256.h"

/* The writer fills a slot, writes it to the file and queues it with its
 * offset (or, started with hub_hasher_start_writing, queues it and a
 * second thread of ours writes it while the hasher hashes it: a slot
 * comes back for filling once both are done with it); the hasher hashes
 * the file in order: from the queued slot when the next bytes are in
 * one, else read back from the file (bytes there before the transfer,
 * after a resume, and slots written while the queue was full). The
 * writer waits for a queue slot only while the hasher is on the queue,
 * which it empties at memory speed; while the hasher is reading back, the
 * writer fills the spare slot and never waits, so a long resumed prefix
 * does not stall the transfer. */
struct hub_hasher {
	pthread_t tid;
	pthread_mutex_t mu;
	/* two, so that neither thread wakes the other for nothing */
	pthread_cond_t work;	/* our threads': a slot queued, reset, stop */
	pthread_cond_t freed;	/* the writer's: a slot hashed or written,
				 * a reset done */
	char *mem;		/* nslots queue slots of slot bytes, then a spare */
	size_t slot;
	unsigned nslots;
	uint64_t *off;		/* [nslots]: where each queued slot's bytes are */
	size_t *len;		/* [nslots]: and how many */
	uint64_t head;		/* slots queued, ever (the writer's) */
	uint64_t tail;		/* slots hashed or dropped, ever */
	int fd;
	uint64_t written;	/* bytes in the file */
	uint64_t hashed;	/* bytes hashed, from the start of the file */
	int reset;		/* the file starts again from byte 0 */
	int stop;		/* nothing more will be written */
	int rerrno;		/* a failed read, or ECANCELED */
	double cpu;		/* seconds of CPU the thread used */
	/* the writing thread, when started writing */
	int writing;
	pthread_t wtid;
	int wfd, wdfd;		/* buffered and O_DIRECT (or -1) */
	uint64_t wtail;		/* slots written or dropped, ever */
	int werr;		/* a failed write (sticky until reset) */
	int wreset;		/* drop the queue, then clear werr */
	int wstop;		/* write what is queued, then end */
	int wdirect;		/* a direct write went through */
	struct hf_sha256 sha;
};

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Read back and hash up to one slot of the file, unlocked. */
static void read_back(struct hub_hasher *hs, char **buf, uint64_t end)
{
	uint64_t off = hs->hashed;
	size_t n = end - off < hs->slot ? (size_t)(end - off) : hs->slot;
	ssize_t r = -1;
	int e = ENOMEM;

	pthread_mutex_unlock(&hs->mu);
	if (!*buf)
		*buf = malloc(hs->slot);
	if (*buf) {
		r = pread(hs->fd, *buf, n, (off_t)off);
		e = r < 0 ? errno : EIO;
	}
	if (r > 0)
		hf_sha256_update(&hs->sha, *buf, (size_t)r);
	pthread_mutex_lock(&hs->mu);
	if (r <= 0)
		hs->rerrno = e;
	else
		hs->hashed += (uint64_t)r;
}

static void *hasher_main(void *arg)
{
	struct hub_hasher *hs = arg;
	char *buf = NULL;	/* for reading back */

	pthread_mutex_lock(&hs->mu);
	for (;;) {
		size_t t = (size_t)(hs->tail % hs->nslots);
		int queued = hs->tail != hs->head;

		/* the queue is in file order, at or after what is hashed */
		assert(!queued || hs->off[t] >= hs->hashed);
		if (hs->reset) {
			hs->tail = hs->head;
			hs->written = hs->hashed = 0;
			hs->rerrno = 0;
			hf_sha256_init(&hs->sha);
			hs->reset = 0;
			pthread_cond_broadcast(&hs->freed);
		} else if (hs->rerrno) {
			/* drop what comes: the writer never waits on us */
			if (queued) {
				hs->tail = hs->head;
				pthread_cond_broadcast(&hs->freed);
			}
			if (hs->stop)
				break;
			pthread_cond_wait(&hs->work, &hs->mu);
		} else if (queued && hs->off[t] == hs->hashed) {
			pthread_mutex_unlock(&hs->mu);
			hf_sha256_update(&hs->sha, hs->mem + t * hs->slot, hs->len[t]);
			pthread_mutex_lock(&hs->mu);
			hs->hashed += hs->len[t];
			hs->tail++;
			pthread_cond_broadcast(&hs->freed);
		} else if (hs->hashed < hs->written) {
			read_back(hs, &buf, queued ? hs->off[t] : hs->written);
		} else if (hs->stop) {
			break;
		} else {
			pthread_cond_wait(&hs->work, &hs->mu);
		}
	}
	hs->cpu = thread_cpu();
	pthread_mutex_unlock(&hs->mu);
	free(buf);
	return NULL;
}

static void hasher_free(struct hub_hasher *hs)
{
	pthread_mutex_destroy(&hs->mu);
	pthread_cond_destroy(&hs->work);
	pthread_cond_destroy(&hs->freed);
	free(hs->mem);
	free(hs->off);
	free(hs->len);
	free(hs);
}

int hub_hasher_start(struct hub_hasher **out, int fd, uint64_t written,
		     size_t slot, unsigned nslots)
{
	struct hub_hasher *hs = calloc(1, sizeof(*hs));

	*out = NULL;
	if (!hs)
		return -1;
	hs->fd = fd;
	hs->written = written;
	hs->slot = slot;
	hs->nslots = nslots;
	/* aligned for O_DIRECT (aligned_alloc wants a multiple of it) */
	hs->mem = aligned_alloc(HUB_DIRECT_ALIGN,
				((nslots + 1) * slot + HUB_DIRECT_ALIGN - 1) &
				~(size_t)(HUB_DIRECT_ALIGN - 1));
	hs->off = calloc(nslots, sizeof(*hs->off));
	hs->len = calloc(nslots, sizeof(*hs->len));
	hf_sha256_init(&hs->sha);
	pthread_mutex_init(&hs->mu, NULL);
	pthread_cond_init(&hs->work, NULL);
	pthread_cond_init(&hs->freed, NULL);
	if (!hs->mem || !hs->off || !hs->len ||
	    pthread_create(&hs->tid, NULL, hasher_main, hs)) {
		hasher_free(hs);
		return -1;
	}
	*out = hs;
	return 0;
}

/* Write n bytes at file offset at: in one O_DIRECT write through *dfd
 * where both are aligned (and p is), else in WRITE_PIECE pieces through
 * fd. *dfd becomes -1 (not closed) if the file system refuses direct
 * writes; *direct is set if one went through. 0 or an errno. */
#define WRITE_PIECE ((size_t)32 << 10)
int hub_write_at(int fd, int *dfd, const char *p, size_t n, uint64_t at,
		 int *direct)
{
	int d = *dfd >= 0 && at % HUB_DIRECT_ALIGN == 0 &&
		n % HUB_DIRECT_ALIGN == 0 &&
		(uintptr_t)p % HUB_DIRECT_ALIGN == 0;
	size_t off = 0;

	while (off < n) {
		size_t k = n - off;
		ssize_t w;

		if (!d && k > WRITE_PIECE)
			k = WRITE_PIECE;
		w = pwrite(d ? *dfd : fd, p + off, k, (off_t)(at + off));
		if (w < 0 && d && errno == EINVAL) {
			/* no direct writes here after all: page cache */
			*dfd = -1;
			d = 0;
			continue;
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (w == 0)
			return EIO;
		off += (size_t)w;
		*direct |= d;
		/* a short direct write leaves the rest unaligned */
		d = d && off % HUB_DIRECT_ALIGN == 0;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct hub_hasher *hs = arg;

	pthread_mutex_lock(&hs->mu);
	for (;;) {
		if (hs->wreset) {
			hs->wtail = hs->head;
			hs->werr = 0;
			hs->wreset = 0;
			pthread_cond_broadcast(&hs->freed);
		} else if (hs->wtail != hs->head && hs->werr) {
			/* drop what comes after a failed write */
			hs->wtail = hs->head;
			pthread_cond_broadcast(&hs->freed);
		} else if (hs->wtail != hs->head) {
			size_t t = (size_t)(hs->wtail % hs->nslots);
			int e, direct = 0, dfd = hs->wdfd;

			pthread_mutex_unlock(&hs->mu);
			e = hub_write_at(hs->wfd, &dfd, hs->mem + t * hs->slot,
					 hs->len[t], hs->off[t], &direct);
			pthread_mutex_lock(&hs->mu);
			if (dfd < 0)
				hs->wdfd = -1;
			hs->wdirect |= direct;
			if (e && !hs->werr)
				hs->werr = e;
			hs->wtail++;
			pthread_cond_broadcast(&hs->freed);
		} else if (hs->wstop) {
			break;
		} else {
			pthread_cond_wait(&hs->work, &hs->mu);
		}
	}
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

int hub_hasher_start_writing(struct hub_hasher **out, int fd, int dfd,
			     uint64_t written, size_t slot, unsigned nslots)
{
	struct hub_hasher *hs;

	if (hub_hasher_start(out, fd, written, slot, nslots))
		return -1;
	hs = *out;
	pthread_mutex_lock(&hs->mu);
	hs->wfd = fd;
	hs->wdfd = dfd;
	hs->writing = 1;
	if (pthread_create(&hs->wtid, NULL, writer_main, hs)) {
		hs->writing = 0;
		pthread_mutex_unlock(&hs->mu);
		hub_hasher_finish(hs, 0, 1, (char[65]){ 0 }, NULL);
		*out = NULL;
		return -1;
	}
	pthread_mutex_unlock(&hs->mu);
	return 0;
}

/* The oldest slot not yet free: hashed, and written when we write. */
static uint64_t oldest(const struct hub_hasher *hs)
{
	return hs->writing && hs->wtail < hs->tail ? hs->wtail : hs->tail;
}

char *hub_hasher_slot(struct hub_hasher *hs)
{
	char *slot;

	pthread_mutex_lock(&hs->mu);
	for (;;) {
		size_t t = (size_t)(hs->tail % hs->nslots);

		if (hs->head - oldest(hs) < hs->nslots) {
			slot = hs->mem + (size_t)(hs->head % hs->nslots) * hs->slot;
			break;
		}
		if (hs->tail != hs->head && hs->off[t] > hs->hashed) {
			/* reading back: it will read this one back too */
			slot = hs->mem + (size_t)hs->nslots * hs->slot;
			break;
		}
		pthread_cond_wait(&hs->freed, &hs->mu);
	}
	pthread_mutex_unlock(&hs->mu);
	return slot;
}

void hub_hasher_wrote(struct hub_hasher *hs, const char *slot, size_t n)
{
	pthread_mutex_lock(&hs->mu);
	if (slot != hs->mem + (size_t)hs->nslots * hs->slot) {
		size_t h = (size_t)(hs->head % hs->nslots);

		assert(slot == hs->mem + h * hs->slot && n <= hs->slot);
		hs->off[h] = hs->written;
		hs->len[h] = n;
		hs->head++;
	}
	hs->written += n;
	pthread_cond_broadcast(&hs->work);
	pthread_mutex_unlock(&hs->mu);
}

int hub_hasher_put(struct hub_hasher *hs, char *slot, size_t n)
{
	int spare = slot == hs->mem + (size_t)hs->nslots * hs->slot;
	int e = 0, direct = 0, dfd = -1;

	if (spare) {
		/* the spare is not queued: it goes to the file now, before
		 * the hasher can read it back */
		uint64_t at;

		pthread_mutex_lock(&hs->mu);
		at = hs->written;
		dfd = hs->wdfd;
		pthread_mutex_unlock(&hs->mu);
		e = hub_write_at(hs->wfd, &dfd, slot, n, at, &direct);
	}
	pthread_mutex_lock(&hs->mu);
	if (spare && dfd < 0)
		hs->wdfd = -1;
	hs->wdirect |= direct;
	if (e && !hs->werr)
		hs->werr = e;
	e = hs->werr;
	pthread_mutex_unlock(&hs->mu);
	if (!e)
		hub_hasher_wrote(hs, slot, n);
	return e;
}

int hub_hasher_sync(struct hub_hasher *hs, int *direct)
{
	int e;

	pthread_mutex_lock(&hs->mu);
	while (hs->writing && hs->wtail != hs->head)
		pthread_cond_wait(&hs->freed, &hs->mu);
	e = hs->werr;
	*direct |= hs->wdirect;
	pthread_mutex_unlock(&hs->mu);
	return e;
}

void hub_hasher_reset(struct hub_hasher *hs)
{
	pthread_mutex_lock(&hs->mu);
	if (hs->writing) {
		/* no write may land after the caller truncates */
		hs->wreset = 1;
		pthread_cond_broadcast(&hs->work);
		while (hs->wreset)
			pthread_cond_wait(&hs->freed, &hs->mu);
	}
	hs->reset = 1;
	pthread_cond_broadcast(&hs->work);
	while (hs->reset)
		pthread_cond_wait(&hs->freed, &hs->mu);
	pthread_mutex_unlock(&hs->mu);
}

int hub_hasher_finish(struct hub_hasher *hs, uint64_t total, int cancel,
		      char out[65], double *cpu)
{
	int e;

	pthread_mutex_lock(&hs->mu);
	if (cancel) {
		hs->rerrno = ECANCELED;
		hs->werr = hs->werr ? hs->werr : ECANCELED;
	}
	hs->stop = 1;
	hs->wstop = 1;
	pthread_cond_broadcast(&hs->work);
	pthread_mutex_unlock(&hs->mu);
	if (hs->writing)
		pthread_join(hs->wtid, NULL);
	pthread_join(hs->tid, NULL);
	e = hs->rerrno;
	if (!e && hs->hashed != total)
		e = EIO;
	if (!e)
		hf_sha256_hex(&hs->sha, out);
	if (cpu)
		*cpu = hs->cpu;
	hasher_free(hs);
	return e;
}
