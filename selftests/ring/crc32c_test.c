// SPDX-License-Identifier: GPL-2.0
/*
 * CRC32C: the standard check value, and each fast path (the crc32
 * instruction on three streams merged with shift tables; VPCLMULQDQ
 * folding) against the table path for every length up to a few blocks
 * and every alignment.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "kselftest_harness.h"

TEST(check_value_is_e3069283)
{
	EXPECT_EQ(0xe3069283U, bring_crc32c(0, "123456789", 9));
	EXPECT_EQ(0xe3069283U, crc32c_by(CRC32C_TABLE, 0, "123456789", 9));
	EXPECT_EQ(0, bring_crc32c(0, "", 0));
}

FIXTURE(path)
{
	uint8_t buf[16384 + 64];
};

FIXTURE_VARIANT(path)
{
	enum crc32c_path path;
	const char *needs;
};

FIXTURE_VARIANT_ADD(path, sse42) { CRC32C_SSE42, "SSE4.2" };
FIXTURE_VARIANT_ADD(path, fold) { CRC32C_FOLD, "VPCLMULQDQ and AVX2" };

FIXTURE_SETUP(path)
{
	size_t i;

	if (!crc32c_has(variant->path))
		SKIP(return, "the CPU lacks %s", variant->needs);
	srand(1);
	for (i = 0; i < sizeof(self->buf); i++)
		self->buf[i] = (uint8_t)rand();
}

FIXTURE_TEARDOWN(path)
{
}

TEST_F(path, matches_table_for_all_lengths_and_offsets)
{
	uint32_t seed;
	size_t len, off;

	for (off = 0; off < 8; off++) {
		for (len = 0; len <= 16384; len += (len < 1100 ? 1 : 61)) {
			seed = (uint32_t)(len * 2654435761U);
			ASSERT_EQ(crc32c_by(CRC32C_TABLE, seed, self->buf + off,
					    len),
				  crc32c_by(variant->path, seed,
					    self->buf + off, len))
				TH_LOG("len %zu off %zu", len, off);
		}
	}
}

TEST_F(path, dispatcher_agrees)
{
	size_t len;

	for (len = 0; len <= 4096; len += 7)
		ASSERT_EQ(crc32c_by(CRC32C_TABLE, 0, self->buf, len),
			  bring_crc32c(0, self->buf, len))
			TH_LOG("len %zu", len);
}

/* The push path copies and checksums in one pass. */
TEST(copy_and_crc_equal_memcpy_and_table)
{
	static uint8_t src[8192 + 64], dst[8192 + 64], want[8192 + 64];
	size_t len, off, i;

	srand(2);
	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)rand();
	for (off = 0; off < 8; off += 3) {
		for (len = 0; len <= 8192; len += (len < 600 ? 1 : 37)) {
			memset(dst, 0xa5, sizeof(dst));
			memset(want, 0xa5, sizeof(want));
			memcpy(want + off, src + 1, len);
			ASSERT_EQ(crc32c_by(CRC32C_TABLE, 7, src + 1, len),
				  bring_crc32c_copy(7, dst + off, src + 1, len))
				TH_LOG("len %zu off %zu", len, off);
			ASSERT_EQ(0, memcmp(dst, want, sizeof(dst)))
				TH_LOG("len %zu off %zu: copy differs", len,
				       off);
		}
	}
}

TEST(crc_continues_across_calls)
{
	static uint8_t buf[3000];
	size_t i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7);
	EXPECT_EQ(bring_crc32c(0, buf, sizeof(buf)),
		  bring_crc32c(bring_crc32c(0, buf, 1234), buf + 1234,
			       sizeof(buf) - 1234));
}

TEST_HARNESS_MAIN
