// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * CRC32C, reflected polynomial 0x82f63b78. The hardware path uses the
 * SSE4.2 crc32 instruction on three interleaved streams; the software
 * path a byte-wise table. Both give the standard check value 0xe3069283 for
 * "123456789" (selftests/ring/crc32c_test).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY 0x82f63b78U

static uint32_t table[256];
#if defined(__x86_64__)
static void shift_init(void);
#endif
static bool have_hw;

/* Tables and CPU features once, before main(): no check per call. */
__attribute__((constructor)) static void crc32c_init(void)
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
	shift_init();
#endif
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
/*
 * The crc32 instruction has a latency of three cycles and a throughput
 * of one, so the hardware path runs three streams at once over blocks of
 * 3 x SHORT bytes and merges them: the CRC of A followed by B is the CRC
 * of A shifted over len(B) zero bytes, xor the CRC of B (started from 0).
 * "Shifting over n zero bytes" is multiplication by x^(8n) modulo the
 * polynomial, done with four byte-indexed tables built at start-up.
 * (The technique is Mark Adler's, from his public-domain crc32c.c.)
 */
#define SHORT 256

static uint32_t shift_short[4][256];

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
	int n;

	for (n = 0; n < 32; n++)
		square[n] = gf2_times(mat, mat[n]);
}

/* The operator that appends @len zero bytes, in @even. */
static void zeros_op(uint32_t *even, size_t len)
{
	uint32_t odd[32], row = 1;
	int n;

	odd[0] = CRC32C_POLY; /* one zero bit */
	for (n = 1; n < 32; n++, row <<= 1)
		odd[n] = row;
	gf2_square(even, odd); /* two zero bits */
	gf2_square(odd, even); /* four */
	for (;;) {
		gf2_square(even, odd); /* one zero byte, then doubling */
		len >>= 1;
		if (!len)
			return;
		gf2_square(odd, even);
		len >>= 1;
		if (!len)
			break;
	}
	memcpy(even, odd, sizeof(odd));
}

static void shift_init(void)
{
	uint32_t op[32];
	uint32_t n;

	zeros_op(op, SHORT);
	for (n = 0; n < 256; n++) {
		shift_short[0][n] = gf2_times(op, n);
		shift_short[1][n] = gf2_times(op, n << 8);
		shift_short[2][n] = gf2_times(op, n << 16);
		shift_short[3][n] = gf2_times(op, n << 24);
	}
}

static uint32_t shift(uint32_t crc)
{
	return shift_short[0][crc & 0xff] ^ shift_short[1][(crc >> 8) & 0xff] ^
	       shift_short[2][(crc >> 16) & 0xff] ^ shift_short[3][crc >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c0 = crc, c1, c2, a, b, c;
	const uint8_t *end;

	for (; len >= 3 * SHORT; len -= 3 * SHORT, p += 2 * SHORT) {
		c1 = c2 = 0;
		for (end = p + SHORT; p < end; p += 8) {
			memcpy(&a, p, 8);
			memcpy(&b, p + SHORT, 8);
			memcpy(&c, p + 2 * SHORT, 8);
			c0 = __builtin_ia32_crc32di(c0, a);
			c1 = __builtin_ia32_crc32di(c1, b);
			c2 = __builtin_ia32_crc32di(c2, c);
		}
		c0 = shift((uint32_t)c0) ^ (uint32_t)c1;
		c0 = shift((uint32_t)c0) ^ (uint32_t)c2;
	}
	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&a, p, 8);
		c0 = __builtin_ia32_crc32di(c0, a);
	}
	crc = (uint32_t)c0;
	for (; len; len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t bring_crc32c(uint32_t crc, const void *buf, size_t len)
{
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
	return ~crc32c_sw(~crc, buf, len);
}
