// SPDX-License-Identifier: GPL-2.0
/*
 * CRC32C: the standard check value, and the hardware path (three
 * interleaved streams merged with shift tables) against the table path
 * for every length up to a few blocks and every alignment.
 */
#include <stdint.h>
#include <stdlib.h>

#include "crc32c.h"
#include "kselftest_harness.h"

uint32_t bring_crc32c_sw(uint32_t crc, const void *buf, size_t len);

TEST(check_value_is_e3069283)
{
	EXPECT_EQ(0xe3069283U, bring_crc32c(0, "123456789", 9));
	EXPECT_EQ(0xe3069283U, bring_crc32c_sw(0, "123456789", 9));
	EXPECT_EQ(0, bring_crc32c(0, "", 0));
}

TEST(fast_path_matches_table_for_all_lengths_and_offsets)
{
	static uint8_t buf[4096 + 64];
	size_t len, off;

	srand(1);
	for (len = 0; len < sizeof(buf); len++)
		buf[len] = (uint8_t)rand();
	for (off = 0; off < 8; off++)
		for (len = 0; len <= 4096; len += (len < 800 ? 1 : 61))
			ASSERT_EQ(bring_crc32c_sw(0, buf + off, len),
				  bring_crc32c(0, buf + off, len))
				TH_LOG("len %zu off %zu", len, off);
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
