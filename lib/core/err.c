/* lib/core/err.c: filling struct hf_err. */
#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int hf_err_set(struct hf_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int hf_err_prefix(struct hf_err *err, const char *fmt, ...)
{
	char ctx[HF_ERR_MSG_MAX / 2], old[HF_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return HF_EINTERNAL;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %.*s", ctx,
		 (int)(sizeof(err->msg) - strlen(ctx) - 3), old);
	return err->code;
}

int hf_err_errno(struct hf_err *err, const char *fmt, ...)
{
	char what[HF_ERR_MSG_MAX];
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return hf_err_set(err, HF_EIO, "%s: %s", what, strerror(e));
}

void hf_err_clear(struct hf_err *err)
{
	if (err) {
		err->code = HF_OK;
		err->msg[0] = '\0';
	}
}

const char *hf_err_name(int code)
{
	static const char *const names[] = {
		[HF_OK] = "ok",
		[HF_EIO] = "io",
		[HF_EFORMAT] = "format",
		[HF_ENOMEM] = "nomem",
		[HF_EINVAL] = "invalid",
		[HF_ENOTFOUND] = "notfound",
		[HF_EUNSUPPORTED] = "unsupported",
		[HF_ERANGE] = "range",
		[HF_EUTF8] = "utf8",
		[HF_ENET] = "network",
		[HF_EAUTH] = "auth",
		[HF_EINTERNAL] = "internal",
	};

	if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]) ||
	    !names[code])
		return "unknown";
	return names[code];
}
