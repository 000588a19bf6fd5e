/* lib/core/utf8.h: UTF-8 validation, decoding and encoding. */
#ifndef HF_CORE_UTF8_H
#define HF_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF);
 * else 0 and *bad (optional) gets the byte offset of the first bad
 * sequence. */
int hf_utf8_valid(const char *s, size_t len, size_t *bad);

/* Decode one code point at s (len bytes available). Returns its length
 * (1..4) and sets *cp; on an invalid sequence returns 0. */
int hf_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Encode cp into out (4 bytes room); returns 1..4, or 0 for an invalid cp. */
int hf_utf8_encode(uint32_t cp, char *out);

/* Copy s with each invalid sequence replaced by U+FFFD (as Python's
 * errors="replace" does: one U+FFFD per maximal invalid subpart).
 * Returns a malloc'd NUL-terminated string (NULL on ENOMEM); *outlen
 * optional. */
char *hf_utf8_lossy(const char *s, size_t len, size_t *outlen);

/* Number of code points in valid UTF-8 s[0..len). */
size_t hf_utf8_count(const char *s, size_t len);

#endif
