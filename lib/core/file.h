/* lib/core/file.h: mmap'd read-only files, whole-file reads, atomic writes. */
#ifndef HF_CORE_FILE_H
#define HF_CORE_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/err.h"

/* A read-only mapping of a whole file. An empty file maps to data == NULL,
 * size == 0. */
struct hf_map {
	const unsigned char *data;
	size_t size;
};

int hf_map_open(struct hf_map *m, const char *path, struct hf_err *err);
void hf_map_close(struct hf_map *m);	/* zeroed or closed map is fine */

/* Maps in the pages of [p, p + len) of a mapping now (reading them from
 * disk if needed), so that later reads take no page faults: for weights a
 * CPU computes on in place. Best effort: where the kernel lacks
 * MADV_POPULATE_READ (before Linux 5.14), only asks for read-ahead. */
void hf_map_prefetch(const void *p, size_t len);

/* Read a whole file into a NUL-terminated malloc'd buffer (caller frees);
 * *len (optional) gets the size without the NUL. */
int hf_file_read(char **out, size_t *len, const char *path, struct hf_err *err);

/* Read all of a stream (stdin) the same way. */
int hf_stream_read(char **out, size_t *len, FILE *f, const char *name,
		   struct hf_err *err);

int hf_file_exists(const char *path);
int hf_dir_exists(const char *path);

/* "dir" + "/" + "name" into a malloc'd string (NULL on ENOMEM). */
char *hf_path_join(const char *dir, const char *name);

/* Atomic output: writes go to "<path>.tmp.<pid>" in the same directory,
 * renamed over path by hf_atomic_commit(); hf_atomic_abort() removes it.
 * path "-" writes to stdout directly (commit flushes it). */
struct hf_atomic {
	FILE *f;
	char *path;
	char *tmp;	/* NULL for stdout */
};

int hf_atomic_open(struct hf_atomic *a, const char *path, struct hf_err *err);
int hf_atomic_commit(struct hf_atomic *a, struct hf_err *err);
void hf_atomic_abort(struct hf_atomic *a);	/* safe after commit */

#endif
