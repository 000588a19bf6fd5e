/* lib/hub/cache.c: the file-system side of the cache: directories, refs,
 * symlinks and locks. */
#define _GNU_SOURCE	/* asprintf */
#include "hub/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"

int hub_mkdirs(const char *path, int dir, struct hf_err *err)
{
	char *p = strdup(path);
	char *slash;

	if (!p)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (!dir) {
		slash = strrchr(p, '/');
		if (!slash) {
			free(p);
			return 0;
		}
		*slash = '\0';
	}
	for (char *s = p + 1; ; s++) {
		int end = *s == '\0';

		if (*s != '/' && !end)
			continue;
		*s = '\0';
		if (mkdir(p, 0777) && errno != EEXIST) {
			hf_err_errno(err, "cannot create directory '%s'", p);
			free(p);
			return HF_EIO;
		}
		if (end)
			break;
		*s = '/';
	}
	free(p);
	return 0;
}

int hub_write_if_changed(const char *path, const char *data,
			 struct hf_err *err)
{
	char *old = NULL, *tmp;
	size_t len = strlen(data);
	int fd;

	if (!hf_file_read(&old, NULL, path, NULL) && !strcmp(old, data)) {
		free(old);
		return 0;
	}
	free(old);
	if (hub_mkdirs(path, 0, err))
		return err->code;
	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd)) {
		hf_err_errno(err, "cannot write '%s'", tmp);
		if (fd >= 0)
			unlink(tmp);
		free(tmp);
		return HF_EIO;
	}
	if (rename(tmp, path)) {
		hf_err_errno(err, "cannot rename '%s' to '%s'", tmp, path);
		unlink(tmp);
		free(tmp);
		return HF_EIO;
	}
	free(tmp);
	return 0;
}

int hub_symlink(const char *target, const char *link, struct hf_err *err)
{
	char cur[4096], *tmp;
	ssize_t n = readlink(link, cur, sizeof(cur) - 1);

	if (n >= 0) {
		cur[n] = '\0';
		if (!strcmp(cur, target))
			return 0;
	}
	if (hub_mkdirs(link, 0, err))
		return err->code;
	/* a new link under a temporary name renamed over the old: readers
	 * never see the path missing */
	if (asprintf(&tmp, "%s.tmp.%ld", link, (long)getpid()) < 0)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	unlink(tmp);
	if (symlink(target, tmp)) {
		hf_err_errno(err, "cannot create symlink '%s'", link);
		free(tmp);
		return HF_EIO;
	}
	if (rename(tmp, link)) {
		hf_err_errno(err, "cannot rename '%s' to '%s'", tmp, link);
		unlink(tmp);
		free(tmp);
		return HF_EIO;
	}
	free(tmp);
	return 0;
}

int hub_lock(const char *path, struct hf_err *err)
{
	int fd;

	if (hub_mkdirs(path, 0, err))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0) {
		hf_err_errno(err, "cannot open lock '%s'", path);
		return -1;
	}
	while (flock(fd, LOCK_EX)) {
		if (errno == EINTR)
			continue;
		hf_err_errno(err, "cannot lock '%s'", path);
		close(fd);
		return -1;
	}
	return fd;
}

void hub_unlock(int fd)
{
	if (fd >= 0) {
		flock(fd, LOCK_UN);
		close(fd);
	}
}

char *hub_read_ref(const char *repo_dir, const char *rev)
{
	char *path, *data = NULL;
	size_t len;

	if (asprintf(&path, "%s/refs/%s", repo_dir, rev) < 0)
		return NULL;
	if (hf_file_read(&data, &len, path, NULL)) {
		free(path);
		return NULL;
	}
	free(path);
	while (len && (data[len - 1] == '\n' || data[len - 1] == ' '))
		data[--len] = '\0';
	if (!hf_hub_is_commit(data)) {
		free(data);
		return NULL;
	}
	return data;
}
