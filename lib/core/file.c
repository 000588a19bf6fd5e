/* lib/core/file.c: mmap'd files, whole-file reads and atomic writes. */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int hf_map_open(struct hf_map *m, const char *path, struct hf_err *err)
{
	struct stat st;
	void *p;
	int fd;

	m->data = NULL;
	m->size = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hf_err_errno(err, "cannot open '%s'", path);
	if (fstat(fd, &st) < 0) {
		hf_err_errno(err, "cannot stat '%s'", path);
		close(fd);
		return HF_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return hf_err_set(err, HF_EIO, "'%s' is not a regular file",
				  path);
	}
	if (st.st_size == 0) {
		close(fd);
		return 0;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return hf_err_errno(err, "cannot map '%s'", path);
	m->data = p;
	m->size = (size_t)st.st_size;
	return 0;
}

void hf_map_close(struct hf_map *m)
{
	if (m && m->data)
		munmap((void *)m->data, m->size);
	if (m) {
		m->data = NULL;
		m->size = 0;
	}
}

void hf_map_prefetch(const void *p, size_t len)
{
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)p, b;

	if (!p || !len || pg <= 0)
		return;
	b = a + len;
	a &= ~((uintptr_t)pg - 1);
	if (madvise((void *)a, b - a, MADV_POPULATE_READ) < 0)
		madvise((void *)a, b - a, MADV_WILLNEED);
}

int hf_stream_read(char **out, size_t *len, FILE *f, const char *name,
		   struct hf_err *err)
{
	size_t cap = 65536, n = 0, got;
	char *buf = malloc(cap), *nb;

	if (!buf)
		return hf_err_set(err, HF_ENOMEM, "out of memory reading '%s'",
				  name);
	while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return hf_err_set(err, HF_ENOMEM,
						  "out of memory reading '%s'",
						  name);
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		free(buf);
		return hf_err_errno(err, "cannot read '%s'", name);
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int hf_file_read(char **out, size_t *len, const char *path, struct hf_err *err)
{
	FILE *f = fopen(path, "rb");
	int rc;

	if (!f)
		return hf_err_errno(err, "cannot open '%s'", path);
	rc = hf_stream_read(out, len, f, path, err);
	fclose(f);
	return rc;
}

int hf_file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int hf_dir_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *hf_path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *s = malloc(a + b + 2);

	if (!s)
		return NULL;
	memcpy(s, dir, a);
	if (a && dir[a - 1] != '/')
		s[a++] = '/';
	memcpy(s + a, name, b + 1);
	return s;
}

int hf_atomic_open(struct hf_atomic *a, const char *path, struct hf_err *err)
{
	int fd;

	memset(a, 0, sizeof(*a));
	if (!strcmp(path, "-")) {
		a->f = stdout;
		return 0;
	}
	a->path = strdup(path);
	a->tmp = malloc(strlen(path) + 32);
	if (!a->path || !a->tmp) {
		free(a->path);
		free(a->tmp);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	sprintf(a->tmp, "%s.tmp.%ld", path, (long)getpid());
	fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(a->f = fdopen(fd, "wb"))) {
		hf_err_errno(err, "cannot create '%s'", a->tmp);
		if (fd >= 0)
			close(fd);
		free(a->path);
		free(a->tmp);
		memset(a, 0, sizeof(*a));
		return HF_EIO;
	}
	return 0;
}

int hf_atomic_commit(struct hf_atomic *a, struct hf_err *err)
{
	int rc = 0;

	if (!a->f)
		return hf_err_set(err, HF_EINTERNAL, "atomic file not open");
	if (!a->tmp) {
		if (fflush(a->f) != 0 || ferror(a->f))
			rc = hf_err_errno(err, "cannot write to stdout");
		a->f = NULL;
		return rc;
	}
	if (fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0)
		rc = hf_err_errno(err, "cannot write '%s'", a->path);
	if (fclose(a->f) != 0 && !rc)
		rc = hf_err_errno(err, "cannot write '%s'", a->path);
	a->f = NULL;
	if (!rc && rename(a->tmp, a->path) != 0)
		rc = hf_err_errno(err, "cannot rename '%s' to '%s'", a->tmp,
				  a->path);
	if (rc)
		unlink(a->tmp);
	free(a->tmp);
	free(a->path);
	a->tmp = a->path = NULL;
	return rc;
}

void hf_atomic_abort(struct hf_atomic *a)
{
	if (a->f && a->tmp)
		fclose(a->f);
	if (a->tmp)
		unlink(a->tmp);
	free(a->tmp);
	free(a->path);
	memset(a, 0, sizeof(*a));
}
