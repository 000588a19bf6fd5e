/* lib/core/json.h: jansson helpers with errors that name the file and key. */
#ifndef HF_CORE_JSON_H
#define HF_CORE_JSON_H

#include <jansson.h>
#include <stdint.h>

#include "core/err.h"

/* Parse a JSON file; errors name the file, line and column. The top level
 * may be any JSON value; *out is a new reference the caller decrefs. */
int hf_json_load_file(json_t **out, const char *path, struct hf_err *err);

/* Parse a buffer (not NUL-terminated necessarily); name is used in errors. */
int hf_json_load_buf(json_t **out, const char *buf, size_t len,
		     const char *name, struct hf_err *err);

/* Typed lookups of obj[key]. Absent or JSON null: *out = def and return 0.
 * Present with the wrong type: HF_EFORMAT naming "<where>: key '<key>'".
 * Integers accept JSON integers and integral reals. */
int hf_json_int(const json_t *obj, const char *key, int64_t def, int64_t *out,
		const char *where, struct hf_err *err);
int hf_json_num(const json_t *obj, const char *key, double def, double *out,
		const char *where, struct hf_err *err);
int hf_json_bool(const json_t *obj, const char *key, int def, int *out,
		 const char *where, struct hf_err *err);
/* Borrowed string, valid while obj lives; def may be NULL. */
int hf_json_str(const json_t *obj, const char *key, const char *def,
		const char **out, const char *where, struct hf_err *err);

/* Like the above but absent is an error ("<where>: missing key '<key>'"). */
int hf_json_req_int(const json_t *obj, const char *key, int64_t *out,
		    const char *where, struct hf_err *err);
int hf_json_req_num(const json_t *obj, const char *key, double *out,
		    const char *where, struct hf_err *err);
int hf_json_req_str(const json_t *obj, const char *key, const char **out,
		    const char *where, struct hf_err *err);

/* Write a JSON value compactly on one line with no escaping of non-ASCII
 * (UTF-8 passes through), as JSON Lines records want. Returns 0 or -1. */
int hf_json_dumpf_line(const json_t *v, FILE *f);

#endif
