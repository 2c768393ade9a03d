/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * CRC32C (Castagnoli), as used by iSCSI, ext4 and btrfs: the SSE4.2
 * crc32 instruction where the CPU has it, a slicing table otherwise.
 */
#ifndef BRING_CRC32C_H
#define BRING_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC32C of @len bytes at @buf, continuing from @crc (0 to start). */
uint32_t bring_crc32c(uint32_t crc, const void *buf, size_t len);
/* memcpy(@dst, @src, @len) and the CRC32C of the bytes, in one pass. */
uint32_t bring_crc32c_copy(uint32_t crc, void *dst, const void *src,
			   size_t len);

/* Set before main() when the CPU has the crc32 instruction (SSE4.2). */
extern bool crc32c_hw_ok;

/*
 * CRC32C of the 12 bytes of @a then @b (little endian), continuing from
 * @crc: a record header's share of its checksum, inline on the push path.
 */
static inline uint32_t crc32c_u64_u32(uint32_t crc, uint64_t a, uint32_t b)
{
#if defined(__x86_64__)
	if (crc32c_hw_ok) {
		uint64_t c = (uint32_t)~crc;
		uint32_t c32;

		__asm__("crc32q %1, %0" : "+r"(c) : "rm"(a));
		c32 = (uint32_t)c;
		__asm__("crc32l %1, %0" : "+r"(c32) : "rm"(b));
		return ~c32;
	}
#endif
	{
		struct {
			uint64_t a;
			uint32_t b;
		} __attribute__((packed)) w = { a, b };

		return bring_crc32c(crc, &w, sizeof(w));
	}
}

/* For the selftests: each implementation by itself. */
enum crc32c_path {
	CRC32C_TABLE, /* byte-wise table, everywhere */
	CRC32C_SSE42, /* crc32 instruction, three streams */
	CRC32C_FOLD, /* VPCLMULQDQ folding, 128 bytes and more */
};

bool crc32c_has(enum crc32c_path path);
uint32_t crc32c_by(enum crc32c_path path, uint32_t crc, const void *buf,
		   size_t len);

#endif /* BRING_CRC32C_H */
