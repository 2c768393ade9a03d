/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * CRC32C (Castagnoli), as used by iSCSI, ext4 and btrfs: the SSE4.2
 * crc32 instruction where the CPU has it, a slicing table otherwise.
 */
#ifndef BRING_CRC32C_H
#define BRING_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of @len bytes at @buf, continuing from @crc (0 to start). */
uint32_t bring_crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* BRING_CRC32C_H */
