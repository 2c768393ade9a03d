// SPDX-License-Identifier: GPL-2.0
/*
 * The zero-copy writer path: bring_reserve(), bring_commit(), bring_abort().
 */
#include <errno.h>
#include <string.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "util.h"

RING_FIXTURE(4096, 0)

TEST_F(ring, reserve_fill_commit_delivers_in_place)
{
	struct bring_resv resv;
	struct bring_msg msg;

	ASSERT_EQ(0, bring_reserve(self->r, 5, &resv, 0));
	ASSERT_EQ(5, resv.len);
	memcpy(resv.data, "hello", 5);
	ASSERT_EQ(0, bring_commit(self->r, &resv, 5));
	ASSERT_EQ(0, bring_next(self->r, &msg));
	EXPECT_EQ(resv.data, msg.data);
	EXPECT_EQ(resv.seq, msg.seq);
	EXPECT_EQ(5, msg.len);
	EXPECT_EQ(0, memcmp("hello", msg.data, 5));
}

TEST_F(ring, uncommitted_reservation_is_invisible)
{
	struct bring_resv resv;
	struct bring_msg msg;

	ASSERT_EQ(0, bring_reserve(self->r, 8, &resv, 0));
	EXPECT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
	ASSERT_EQ(0, bring_commit(self->r, &resv, 8));
	EXPECT_EQ(0, bring_next_timeout(self->r, &msg, 0));
}

/* Readers keep push order: a later commit waits behind an earlier one. */
TEST_F(ring, later_commit_waits_for_earlier_reservation)
{
	struct bring_resv a, b;
	struct bring_msg msg;

	ASSERT_EQ(0, bring_reserve(self->r, 1, &a, 0));
	ASSERT_EQ(0, bring_reserve(self->r, 1, &b, 0));
	memcpy(b.data, "b", 1);
	ASSERT_EQ(0, bring_commit(self->r, &b, 1));
	EXPECT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
	memcpy(a.data, "a", 1);
	ASSERT_EQ(0, bring_commit(self->r, &a, 1));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ('a', *(const char *)msg.data);
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ('b', *(const char *)msg.data);
}

TEST_F(ring, abort_is_never_delivered)
{
	struct bring_resv a, b;
	struct bring_msg msg;

	ASSERT_EQ(0, bring_reserve(self->r, 100, &a, 0));
	ASSERT_EQ(0, bring_reserve(self->r, 3, &b, 0));
	memcpy(b.data, "yes", 3);
	ASSERT_EQ(0, bring_commit(self->r, &b, 3));
	ASSERT_EQ(0, bring_abort(self->r, &a));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(3, msg.len);
	EXPECT_EQ(0, memcmp("yes", msg.data, 3));
	ASSERT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
}

/* Every amount of unused tail: 0, 8 (slack) and >= 16 (a skipped pad). */
TEST_F(ring, shorter_commit_delivers_only_what_was_used)
{
	size_t used;

	for (used = 0; used <= 64; used++) {
		struct bring_resv resv;
		struct bring_msg msg;

		ASSERT_EQ(0, bring_reserve(self->r, 64, &resv, 0));
		memset(resv.data, 'q', used);
		ASSERT_EQ(0, bring_commit(self->r, &resv, used));
		ASSERT_EQ(0, bring_push(self->r, "next", 4));
		ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
		ASSERT_EQ(used, msg.len) TH_LOG("used %zu", used);
		ASSERT_EQ(0, bring_shift(self->r));
		ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0))
			TH_LOG("used %zu", used);
		ASSERT_EQ(4, msg.len) TH_LOG("used %zu", used);
		ASSERT_EQ(0, memcmp("next", msg.data, 4));
		ASSERT_EQ(0, bring_shift(self->r));
		ASSERT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
	}
}

TEST_F(ring, commit_longer_than_reserved_is_einval)
{
	struct bring_resv resv;

	ASSERT_EQ(0, bring_reserve(self->r, 4, &resv, 0));
	EXPECT_EQ(-EINVAL, bring_commit(self->r, &resv, 5));
	EXPECT_EQ(0, bring_commit(self->r, &resv, 4));
}

TEST_F(ring, double_commit_and_abort_after_commit_are_einval)
{
	struct bring_resv resv;

	ASSERT_EQ(0, bring_reserve(self->r, 4, &resv, 0));
	ASSERT_EQ(0, bring_commit(self->r, &resv, 4));
	EXPECT_EQ(-EINVAL, bring_commit(self->r, &resv, 4));
	EXPECT_EQ(-EINVAL, bring_abort(self->r, &resv));
	ASSERT_EQ(0, bring_reserve(self->r, 4, &resv, 0));
	ASSERT_EQ(0, bring_abort(self->r, &resv));
	EXPECT_EQ(-EINVAL, bring_abort(self->r, &resv));
	EXPECT_EQ(-EINVAL, bring_commit(self->r, &resv, 0));
}

TEST_F(ring, forged_reservation_is_einval)
{
	struct bring_resv resv;

	memset(&resv, 0, sizeof(resv));
	EXPECT_EQ(-EINVAL, bring_commit(self->r, &resv, 0));
	EXPECT_EQ(-EINVAL, bring_abort(self->r, &resv));
	EXPECT_EQ(-EINVAL, bring_commit(self->r, NULL, 0));
	EXPECT_EQ(-EINVAL, bring_reserve(self->r, 1, NULL, 0));
}

TEST_F(ring, reserve_checks_size_and_space)
{
	struct bring_resv resv, more;

	EXPECT_EQ(-EMSGSIZE,
		  bring_reserve(self->r, bring_max_msg(self->r) + 1, &resv, 0));
	ASSERT_EQ(0, bring_reserve(self->r, bring_max_msg(self->r), &resv, 0));
	EXPECT_EQ(-EAGAIN, bring_reserve(self->r, 0, &more, 0));
	EXPECT_EQ(-ETIMEDOUT, bring_reserve(self->r, 0, &more, 20));
	ASSERT_EQ(0, bring_abort(self->r, &resv));
}

/* Aborted space is given back once the reader passes it. */
TEST_F(ring, aborted_space_is_reclaimed)
{
	struct bring_resv resv;
	struct bring_msg msg;

	ASSERT_EQ(0, bring_reserve(self->r, bring_max_msg(self->r), &resv, 0));
	ASSERT_EQ(0, bring_abort(self->r, &resv));
	EXPECT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
	ASSERT_EQ(0, bring_push_timeout(self->r, "x", 1, 0));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(1, msg.len);
}

/*
 * A reader that finds only an aborted record frees its space at once,
 * without a shift: a sink whose source aborted its last reservation (a
 * read that met EOF) gets no further message to shift, and the bytes
 * stayed held from writers and counted as its lag.
 */
TEST_F(ring, reader_passing_an_abort_frees_its_space)
{
	struct bring_stats st = { .sz = sizeof(st) };
	struct bring_resv resv;
	struct bring_msg msg;

	ASSERT_EQ(0, bring_reserve(self->r, 1000, &resv, 0));
	ASSERT_EQ(0, bring_abort(self->r, &resv));
	ASSERT_EQ(0, bring_get_stats(self->r, &st));
	EXPECT_LT(1000, st.used); /* no reader has passed it yet */
	EXPECT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
	ASSERT_EQ(0, bring_get_stats(self->r, &st));
	EXPECT_EQ(0, st.used);
}

TEST_HARNESS_MAIN
