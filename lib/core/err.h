/* lib/core/err.h: the error type every public lib function fills. */
#ifndef HF_CORE_ERR_H
#define HF_CORE_ERR_H

#include <stddef.h>

enum hf_errcode {
	HF_OK = 0,
	HF_EIO,		/* a read, write, open or mmap failed */
	HF_EFORMAT,	/* input is malformed: bad header, bad JSON, bad field */
	HF_ENOMEM,	/* an allocation failed */
	HF_EINVAL,	/* a caller passed a bad argument or option */
	HF_ENOTFOUND,	/* a file, tensor, key, repo or revision does not exist */
	HF_EUNSUPPORTED,/* well-formed, but not something hf handles */
	HF_ERANGE,	/* a value is out of range: ids, lengths, context */
	HF_EUTF8,	/* text is not valid UTF-8 */
	HF_ENET,	/* network failure */
	HF_EAUTH,	/* 401/403: token missing, invalid or gated */
	HF_EINTERNAL,	/* a bug: an invariant did not hold */
};

#define HF_ERR_MSG_MAX 1024

struct hf_err {
	int code;
	char msg[HF_ERR_MSG_MAX];
};

/* Set err (if not NULL) to code and a printf-style message; returns code.
 * Idiom: return hf_err_set(err, HF_EFORMAT, "tensor '%s' ...", name); */
int hf_err_set(struct hf_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend context to an existing message: "<ctx>: <old message>".
 * Returns err->code so it can end a failing path. */
int hf_err_prefix(struct hf_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Set HF_EIO with "<what>: <strerror(errno)>"; returns HF_EIO. */
int hf_err_errno(struct hf_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void hf_err_clear(struct hf_err *err);

/* Short stable name of a code: "io", "format", ... */
const char *hf_err_name(int code);

#endif
