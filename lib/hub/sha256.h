/* lib/hub/sha256.h: SHA-256 (FIPS 180-4), to check LFS downloads. */
#ifndef HF_HUB_SHA256_H
#define HF_HUB_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct hf_sha256 {
	uint32_t h[8];
	uint64_t len;		/* bytes hashed so far */
	unsigned char buf[64];
	size_t nbuf;
};

void hf_sha256_init(struct hf_sha256 *s);
void hf_sha256_update(struct hf_sha256 *s, const void *data, size_t n);
void hf_sha256_final(struct hf_sha256 *s, unsigned char out[32]);
/* Finish into 64 lowercase hex digits and a NUL. */
void hf_sha256_hex(struct hf_sha256 *s, char out[65]);

/* Tests: on != 0 forces the portable code even where SHA-NI exists. */
void hf_sha256_use_ref(int on);

#endif
