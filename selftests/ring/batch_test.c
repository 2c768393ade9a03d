// SPDX-License-Identifier: GPL-2.0
/*
 * Batches: bring_push_batch() and bring_peek() + one bring_shift().
 */
#include <errno.h>
#include <string.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "util.h"

RING_FIXTURE(4096, 0)

static void make_batch(struct bring_msg *m, char (*bufs)[16], int n)
{
	int i;

	for (i = 0; i < n; i++) {
		m[i].len = snprintf(bufs[i], 16, "batch-%d", i);
		m[i].data = bufs[i];
	}
}

TEST_F(ring, push_batch_delivers_all_in_order)
{
	struct bring_msg in[10], out;
	char bufs[10][16];
	int i;

	make_batch(in, bufs, 10);
	ASSERT_EQ(10, bring_push_batch(self->r, in, 10, 0));
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(0, bring_next_timeout(self->r, &out, 0));
		ASSERT_EQ(in[i].len, out.len);
		ASSERT_EQ(0, memcmp(in[i].data, out.data, out.len));
		ASSERT_EQ(0, bring_shift(self->r));
	}
}

TEST_F(ring, push_batch_of_zero_is_zero)
{
	EXPECT_EQ(0, bring_push_batch(self->r, NULL, 0, 0));
	EXPECT_EQ(-EINVAL, bring_push_batch(self->r, NULL, 1, 0));
}

/* Like writev: the prefix that fits goes in, the count says how much. */
TEST_F(ring, push_batch_pushes_the_prefix_that_fits)
{
	static char big[1024];
	struct bring_msg in[8];
	int i;

	for (i = 0; i < 8; i++) {
		in[i].data = big;
		in[i].len = 1000; /* footprint 1016: four fit in 4096 */
	}
	ASSERT_EQ(4, bring_push_batch(self->r, in, 8, 0));
	EXPECT_EQ(-EAGAIN, bring_push_batch(self->r, in + 4, 4, 0));
	EXPECT_EQ(-ETIMEDOUT, bring_push_batch(self->r, in + 4, 4, 10));
}

TEST_F(ring, push_batch_stops_before_an_oversized_message)
{
	static char big[8192];
	struct bring_msg in[3] = {
		{ .data = "a", .len = 1 },
		{ .data = big, .len = 8000 },
		{ .data = "c", .len = 1 },
	};
	struct bring_msg out;

	EXPECT_EQ(1, bring_push_batch(self->r, in, 3, 0));
	EXPECT_EQ(-EMSGSIZE, bring_push_batch(self->r, in + 1, 2, 0));
	EXPECT_EQ(1, bring_push_batch(self->r, in + 2, 1, 0));
	ASSERT_EQ(0, bring_next(self->r, &out));
	EXPECT_EQ('a', *(const char *)out.data);
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(0, bring_next(self->r, &out));
	EXPECT_EQ('c', *(const char *)out.data);
}

TEST_F(ring, push_batch_null_data_is_einval)
{
	struct bring_msg in[2] = { { .data = NULL, .len = 3 } };

	EXPECT_EQ(-EINVAL, bring_push_batch(self->r, in, 1, 0));
}

TEST_F(ring, peek_returns_up_to_nr_and_shift_removes_them_all)
{
	struct bring_msg in[10], out[4];
	char bufs[10][16];
	int i, n;

	make_batch(in, bufs, 10);
	ASSERT_EQ(10, bring_push_batch(self->r, in, 10, 0));
	n = bring_peek(self->r, out, 4, 0, 0);
	ASSERT_EQ(4, n);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, memcmp(in[i].data, out[i].data, in[i].len));
	/* Peek again without shift: the same four. */
	ASSERT_EQ(4, bring_peek(self->r, out, 4, 0, 0));
	EXPECT_EQ(0, memcmp(in[0].data, out[0].data, in[0].len));
	ASSERT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(-ENODATA, bring_shift(self->r));
	ASSERT_EQ(4, bring_peek(self->r, out, 4, 0, 0));
	EXPECT_EQ(0, memcmp(in[4].data, out[0].data, in[4].len));
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(2, bring_peek(self->r, out, 4, 0, 0));
	ASSERT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(-EAGAIN, bring_peek(self->r, out, 4, 0, 0));
}

TEST_F(ring, peek_honours_max_bytes_but_returns_at_least_one)
{
	static char big[2000];
	struct bring_msg out[8];

	ASSERT_EQ(0, bring_push(self->r, big, 1500));
	ASSERT_EQ(0, bring_push(self->r, "ab", 2));
	ASSERT_EQ(0, bring_push(self->r, "cd", 2));
	ASSERT_EQ(0, bring_push(self->r, "ef", 2));
	/* First message is larger than max_bytes: alone, but returned. */
	ASSERT_EQ(1, bring_peek(self->r, out, 8, 100, 0));
	EXPECT_EQ(1500, out[0].len);
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(2, bring_peek(self->r, out, 8, 4, 0));
	EXPECT_EQ(0, memcmp("ab", out[0].data, 2));
	EXPECT_EQ(0, memcmp("cd", out[1].data, 2));
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(1, bring_peek(self->r, out, 8, 0, 0));
	EXPECT_EQ(0, memcmp("ef", out[0].data, 2));
}

/* A batch is contiguous in memory: one pointer range for writev. */
TEST_F(ring, peeked_batch_is_contiguous)
{
	struct bring_msg in[5], out[5];
	char bufs[5][16];
	int i;

	make_batch(in, bufs, 5);
	ASSERT_EQ(5, bring_push_batch(self->r, in, 5, 0));
	ASSERT_EQ(5, bring_peek(self->r, out, 5, 0, 0));
	for (i = 1; i < 5; i++)
		EXPECT_EQ(out[i - 1].seq + 16 + ((out[i - 1].len + 7) & ~7UL),
			  out[i].seq);
}

TEST_F(ring, peek_bad_arguments_are_einval)
{
	struct bring_msg out;

	EXPECT_EQ(-EINVAL, bring_peek(self->r, NULL, 1, 0, 0));
	EXPECT_EQ(-EINVAL, bring_peek(self->r, &out, 0, 0, 0));
}

TEST_F(ring, peek_timeout_on_empty_ring)
{
	struct bring_msg out[2];

	EXPECT_EQ(-EAGAIN, bring_peek(self->r, out, 2, 0, 0));
	EXPECT_EQ(-ETIMEDOUT, bring_peek(self->r, out, 2, 0, 20));
}

TEST_HARNESS_MAIN
