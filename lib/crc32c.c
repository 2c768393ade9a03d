// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * CRC32C, reflected polynomial 0x82f63b78. The hardware path uses the
 * SSE4.2 crc32 instruction 8 bytes at a time; the software path a
 * byte-wise table. Both give the standard check value 0xe3069283 for
 * "123456789" (selftests/ring/crc32c_test).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY 0x82f63b78U

static uint32_t table[256];
static bool have_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ ((c & 1) ? CRC32C_POLY : 0);
		table[i] = c;
	}
#if defined(__x86_64__)
	have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc, v;

	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	for (; len; len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t bring_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, crc32c_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (have_hw)
		return ~crc32c_hw(crc, buf, len);
#endif
	return ~crc32c_sw(crc, buf, len);
}

/* For the selftest: force the table path. */
uint32_t bring_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t bring_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, crc32c_init);
	return ~crc32c_sw(~crc, buf, len);
}
