// SPDX-License-Identifier: GPL-2.0
/*
 * bring_get_stats(): exact counters after known operations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bring.h"
#include "kselftest_harness.h"

TEST(counters_follow_pushes_and_shifts)
{
	struct bring *r = bring_new(4096, NULL);
	struct bring_stats st = { .sz = sizeof(st) };
	struct bring_resv resv;
	struct bring_msg msg, batch[2] = {
		{ .data = "ab", .len = 2 }, { .data = "cde", .len = 3 }
	};

	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, bring_push(r, "hello", 5));
	ASSERT_EQ(2, bring_push_batch(r, batch, 2, 0));
	ASSERT_EQ(0, bring_reserve(r, 100, &resv, 0));
	ASSERT_EQ(0, bring_commit(r, &resv, 10));
	ASSERT_EQ(0, bring_reserve(r, 50, &resv, 0));
	ASSERT_EQ(0, bring_abort(r, &resv));
	ASSERT_EQ(0, bring_get_stats(r, &st));
	EXPECT_EQ(4, st.msgs_in);
	EXPECT_EQ(5 + 2 + 3 + 10, st.bytes_in);
	EXPECT_EQ(0, st.msgs_out);
	EXPECT_EQ(4096, st.capacity);
	EXPECT_EQ(4096 - 16, st.max_msg);
	EXPECT_EQ(1, st.readers);
	/* 5->24, 2->24, 3->24, reservation of 100: 120 (10 used + pad), 50->72 */
	EXPECT_EQ(24 + 24 + 24 + 120 + 72, st.used);

	ASSERT_EQ(0, bring_next(r, &msg));
	ASSERT_EQ(0, bring_shift(r));
	ASSERT_EQ(2, bring_peek(r, batch, 2, 0, 0));
	ASSERT_EQ(0, bring_shift(r));
	ASSERT_EQ(0, bring_get_stats(r, &st));
	EXPECT_EQ(3, st.msgs_out);
	EXPECT_EQ(10, st.bytes_out);
	EXPECT_EQ(120 + 72, st.used);
	ASSERT_EQ(0, bring_next(r, &msg));
	ASSERT_EQ(0, bring_shift(r));
	/* The aborted record is skipped on the way to an empty ring. */
	EXPECT_EQ(-EAGAIN, bring_next_timeout(r, &msg, 0));
	ASSERT_EQ(0, bring_get_stats(r, &st));
	EXPECT_EQ(4, st.msgs_out);
	EXPECT_EQ(20, st.bytes_out);
	EXPECT_EQ(0, st.used);
	EXPECT_EQ(0, st.write_waits);
	EXPECT_EQ(0, st.futex_waits);
	EXPECT_EQ(0, st.futex_wakes);
	bring_free(r);
}

TEST(named_reader_counters_are_summed)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);
	struct bring *r = bring_new(4096, &opts);
	struct bring_stats st = { .sz = sizeof(st) };
	struct bring_reader *a, *b;
	struct bring_msg msg;

	ASSERT_NE_NULL(r);
	a = bring_reader_open(r, "a");
	b = bring_reader_open(r, "b");
	ASSERT_NE_NULL(a);
	ASSERT_NE_NULL(b);
	ASSERT_EQ(0, bring_push(r, "xyz", 3));
	ASSERT_EQ(0, bring_reader_next(a, &msg, 0));
	ASSERT_EQ(0, bring_reader_shift(a));
	ASSERT_EQ(0, bring_reader_next(b, &msg, 0));
	ASSERT_EQ(0, bring_reader_shift(b));
	ASSERT_EQ(0, bring_get_stats(r, &st));
	EXPECT_EQ(2, st.readers);
	EXPECT_EQ(2, st.msgs_out);
	EXPECT_EQ(6, st.bytes_out);
	bring_reader_close(a);
	bring_reader_close(b);
	bring_free(r);
}

TEST(read_wait_is_counted_once_per_block)
{
	struct bring *r = bring_new(4096, NULL);
	struct bring_stats st = { .sz = sizeof(st) };
	struct bring_msg msg;

	ASSERT_NE_NULL(r);
	ASSERT_EQ(-ETIMEDOUT, bring_next_timeout(r, &msg, 30));
	ASSERT_EQ(0, bring_get_stats(r, &st));
	EXPECT_EQ(1, st.read_waits);
	EXPECT_GE(st.read_wait_ns, 30 * 1000000ULL);
	EXPECT_GE(st.futex_waits, 1);
	/* Timeout 0 never waits, so it is not a wait. */
	ASSERT_EQ(-EAGAIN, bring_next_timeout(r, &msg, 0));
	ASSERT_EQ(0, bring_get_stats(r, &st));
	EXPECT_EQ(1, st.read_waits);
	bring_free(r);
}

/* Older callers pass a shorter struct: only that much is written. */
TEST(short_stats_struct_is_filled_up_to_sz)
{
	struct bring *r = bring_new(4096, NULL);
	struct bring_stats st;

	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, bring_push(r, "abc", 3));
	memset(&st, 0xff, sizeof(st));
	st.sz = offsetof(struct bring_stats, bytes_in);
	ASSERT_EQ(0, bring_get_stats(r, &st));
	EXPECT_EQ(1, st.msgs_in);
	EXPECT_EQ(UINT64_MAX, st.bytes_in);
	EXPECT_EQ(offsetof(struct bring_stats, bytes_in), st.sz);
	bring_free(r);
}

TEST(bad_stats_arguments_are_einval)
{
	struct bring *r = bring_new(4096, NULL);
	struct bring_stats st = { .sz = 0 };

	ASSERT_NE_NULL(r);
	EXPECT_EQ(-EINVAL, bring_get_stats(r, &st));
	EXPECT_EQ(-EINVAL, bring_get_stats(r, NULL));
	bring_free(r);
}

/* id tells rings apart and stays with a file; file and durability say what it is. */
TEST(id_file_and_durability)
{
	struct bring_stats a = { .sz = sizeof(a) }, b = { .sz = sizeof(b) };
	BRING_OPTS(o, .durability = BRING_DURABLE_INTERVAL);
	char path[] = "/tmp/stats_test.XXXXXX";
	struct bring *r = bring_new(4096, NULL), *s = bring_new(4096, NULL);
	int fd = mkstemp(path);

	ASSERT_NE_NULL(r);
	ASSERT_NE_NULL(s);
	ASSERT_LE(0, fd);
	close(fd);
	unlink(path);
	ASSERT_EQ(0, bring_get_stats(r, &a));
	ASSERT_EQ(0, bring_get_stats(s, &b));
	EXPECT_NE(0, a.id);
	EXPECT_NE(a.id, b.id);
	EXPECT_EQ(0, a.file);
	EXPECT_EQ(BRING_DURABLE_NONE, a.durability);
	bring_free(r);
	bring_free(s);
	r = bring_open(path, 4096, &o);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, bring_get_stats(r, &a));
	EXPECT_EQ(1, a.file);
	EXPECT_EQ(BRING_DURABLE_INTERVAL, a.durability);
	bring_free(r);
	/* Opened again: the same id (and the file's mode). */
	r = bring_open(path, 4096, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, bring_get_stats(r, &b));
	EXPECT_EQ(a.id, b.id);
	EXPECT_EQ(BRING_DURABLE_INTERVAL, b.durability);
	bring_free(r);
	/* Made again at the same path: another id. */
	unlink(path);
	r = bring_open(path, 4096, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, bring_get_stats(r, &b));
	EXPECT_NE(a.id, b.id);
	bring_free(r);
	unlink(path);
}

TEST_HARNESS_MAIN
