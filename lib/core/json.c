/* lib/core/json.c: jansson helpers. */
#include "core/json.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

static int load_error(const json_error_t *je, const char *name,
		      struct hf_err *err)
{
	return hf_err_set(err, HF_EFORMAT, "'%s': invalid JSON at line %d, "
			  "column %d: %s", name, je->line, je->column,
			  je->text);
}

/* jansson rejects integers beyond int64 ("too big integer"), but Python
 * writes some (model_max_length = 1e30 as an int). Copy buf with ".0"
 * after every integer literal of 19+ digits so it parses as a real. */
static char *widen_big_ints(const char *buf, size_t len, size_t *outlen)
{
	char *o = malloc(len + len / 10 + 16);
	size_t n = 0, i = 0;
	int in_str = 0;

	if (!o)
		return NULL;
	while (i < len) {
		char c = buf[i];

		if (in_str) {
			o[n++] = c;
			i++;
			if (c == '\\' && i < len)
				o[n++] = buf[i++];
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			in_str = 1;
			o[n++] = buf[i++];
			continue;
		}
		if (isdigit((unsigned char)c)) {
			size_t j = i;

			while (j < len && isdigit((unsigned char)buf[j]))
				j++;
			memcpy(o + n, buf + i, j - i);
			n += j - i;
			if (j - i >= 19 && (j >= len || (buf[j] != '.' &&
			    buf[j] != 'e' && buf[j] != 'E'))) {
				o[n++] = '.';
				o[n++] = '0';
			}
			i = j;
			continue;
		}
		o[n++] = buf[i++];
	}
	*outlen = n;
	return o;
}

int hf_json_load_buf(json_t **out, const char *buf, size_t len,
		     const char *name, struct hf_err *err)
{
	const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
	json_error_t je;

	*out = json_loadb(buf, len, flags, &je);
	if (!*out && strstr(je.text, "too big integer")) {
		size_t wlen;
		char *w = widen_big_ints(buf, len, &wlen);

		if (!w)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		*out = json_loadb(w, wlen, flags, &je);
		free(w);
	}
	if (!*out)
		return load_error(&je, name, err);
	return 0;
}

int hf_json_load_file(json_t **out, const char *path, struct hf_err *err)
{
	size_t len;
	char *buf;
	int rc;

	*out = NULL;
	if ((rc = hf_file_read(&buf, &len, path, err)))
		return rc;
	rc = hf_json_load_buf(out, buf, len, path, err);
	free(buf);
	return rc;
}

static int type_error(const char *where, const char *key, const char *want,
		      struct hf_err *err)
{
	return hf_err_set(err, HF_EFORMAT, "%s: key '%s' must be %s", where,
			  key, want);
}

static int missing(const char *where, const char *key, struct hf_err *err)
{
	return hf_err_set(err, HF_EFORMAT, "%s: missing key '%s'", where, key);
}

int hf_json_int(const json_t *obj, const char *key, int64_t def, int64_t *out,
		const char *where, struct hf_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = def;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);

		if (d == floor(d) && fabs(d) < 9.2e18) {
			*out = (int64_t)d;
			return 0;
		}
		if (d >= 9.2e18) {	/* model_max_length = 1e30 and the like */
			*out = INT64_MAX;
			return 0;
		}
	}
	return type_error(where, key, "an integer", err);
}

int hf_json_num(const json_t *obj, const char *key, double def, double *out,
		const char *where, struct hf_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = def;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return type_error(where, key, "a number", err);
	*out = json_number_value(v);
	return 0;
}

int hf_json_bool(const json_t *obj, const char *key, int def, int *out,
		 const char *where, struct hf_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = def;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return type_error(where, key, "true or false", err);
	*out = json_is_true(v);
	return 0;
}

int hf_json_str(const json_t *obj, const char *key, const char *def,
		const char **out, const char *where, struct hf_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = def;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return type_error(where, key, "a string", err);
	*out = json_string_value(v);
	return 0;
}

int hf_json_req_int(const json_t *obj, const char *key, int64_t *out,
		    const char *where, struct hf_err *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return missing(where, key, err);
	return hf_json_int(obj, key, 0, out, where, err);
}

int hf_json_req_num(const json_t *obj, const char *key, double *out,
		    const char *where, struct hf_err *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return missing(where, key, err);
	return hf_json_num(obj, key, 0, out, where, err);
}

int hf_json_req_str(const json_t *obj, const char *key, const char **out,
		    const char *where, struct hf_err *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return missing(where, key, err);
	return hf_json_str(obj, key, NULL, out, where, err);
}

int hf_json_dumpf_line(const json_t *v, FILE *f)
{
	if (json_dumpf(v, f, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
		return -1;
	return fputc('\n', f) == EOF ? -1 : 0;
}
