// SPDX-License-Identifier: GPL-2.0
/*
 * Readers and writers that wait for each other: what a reader that waits
 * from an event loop (bring_reader_wait_prepare()) owes the writers, in
 * memory and file rings.
 *
 *  - a reader whose wait_prepare skipped DISCARD records (an abort, a
 *    repaired claim) gives their space back at once, so a writer waiting
 *    for that space is not left waiting for a reader that waits for it;
 *  - every reader is visible with bring_get_reader_stats(): name,
 *    position, lag, last activity, owner (dead or alive), and how often
 *    it waited in front of an unfinished record.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "bring.h"
#include "internal.h"
#include "kselftest_harness.h"
#include "util.h"

#define CAP 65536

FIXTURE(stuck)
{
	struct tmp t;
	struct bring *r;
};

FIXTURE_VARIANT(stuck)
{
	bool file;
};

FIXTURE_VARIANT_ADD(stuck, memory)
{
	.file = false,
};

FIXTURE_VARIANT_ADD(stuck, file)
{
	.file = true,
};

FIXTURE_SETUP(stuck)
{
	self->t.dir[0] = '\0';
	if (variant->file) {
		ASSERT_EQ(0, tmp_make(&self->t));
		self->r = bring_open(self->t.path, CAP, NULL);
	} else {
		self->r = bring_new(CAP, NULL);
	}
	ASSERT_NE_NULL(self->r);
}

FIXTURE_TEARDOWN(stuck)
{
	bring_free(self->r);
	tmp_remove(&self->t);
}

/*
 * The reproduction: another party reserves 60,000 bytes of a 64 KiB ring
 * and aborts; the event loop's reader prepares its wait (nothing to
 * read) and a push of 10,000 bytes must find the aborted space free.
 */
TEST_F(stuck, wait_prepare_gives_back_the_space_of_skipped_discards)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	static char big[10000];
	struct bring_resv resv;
	struct bring_wait w;
	struct bring_msg msg;

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_reserve(self->r, 60000, &resv, 0));
	ASSERT_EQ(0, bring_abort(self->r, &resv));
	ASSERT_EQ(0, bring_reader_wait_prepare(rd, &w));
	/* The cursor moved past the discard and is published. */
	EXPECT_EQ(0, get_stats(self->r).used);
	EXPECT_EQ(0, bring_push_timeout(self->r, big, sizeof(big), 1000))
		TH_LOG("used %llu of %llu with nothing to read",
		       (unsigned long long)get_stats(self->r).used,
		       (unsigned long long)bring_capacity(self->r));
	bring_reader_wait_finish(rd, &w);
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ(sizeof(big), msg.len);
}

/* The same when the wait is not needed: a message behind the discard. */
TEST_F(stuck, wait_prepare_that_finds_a_message_gives_back_the_discard)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct bring_resv resv;
	struct bring_wait w;

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_reserve(self->r, 60000, &resv, 0));
	ASSERT_EQ(0, bring_abort(self->r, &resv));
	ASSERT_EQ(0, bring_push(self->r, "m", 1));
	ASSERT_EQ(1, bring_reader_wait_prepare(rd, &w));
	EXPECT_EQ(rec_footprint_len(1), get_stats(self->r).used);
}

/* The slot index of the reader called @name, or -1. */
static int reader_idx(struct bring *r, const char *name,
		      struct bring_reader_stats *st)
{
	unsigned int i;

	for (i = 0; i <= BRING_READERS_MAX; i++) {
		st->sz = sizeof(*st);
		if (bring_get_reader_stats(r, i, st) == 0 &&
		    !strcmp(st->name, name))
			return (int)i;
	}
	return -1;
}

TEST_F(stuck, reader_stats_show_name_position_lag_and_owner)
{
	struct bring_reader_stats st;
	struct bring_reader *rd;
	struct bring_msg msg;
	time_t t0 = time(NULL);
	int idx;

	ASSERT_EQ(0, bring_push(self->r, "one", 3));
	ASSERT_EQ(0, bring_push(self->r, "two", 3));
	rd = bring_reader_open(self->r, "audit");
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	ASSERT_EQ(0, bring_reader_shift(rd));
	idx = reader_idx(self->r, "audit", &st);
	ASSERT_GT(idx, 0);
	EXPECT_EQ(sizeof(st), st.sz);
	EXPECT_EQ(rec_footprint_len(3), st.pos);
	EXPECT_EQ(rec_footprint_len(3), st.lag);
	EXPECT_EQ(1, st.msgs_out);
	EXPECT_EQ(3, st.bytes_out);
	EXPECT_EQ(getpid(), st.owner);
	EXPECT_EQ(1, st.owner_alive);
	EXPECT_GE(st.last_active + 2, (uint64_t)t0);
	EXPECT_LE(st.last_active, (uint64_t)time(NULL) + 1);
	EXPECT_EQ(0, st.stuck);
	/* The default reader is slot 0 and holds both messages. */
	st.sz = sizeof(st);
	ASSERT_EQ(0, bring_get_reader_stats(self->r, 0, &st));
	EXPECT_STREQ("", st.name);
	EXPECT_EQ(2 * rec_footprint_len(3), st.lag);
	/* Closed: no owner; it still holds its place. */
	bring_reader_close(rd);
	ASSERT_EQ(idx, reader_idx(self->r, "audit", &st));
	EXPECT_EQ(0, st.owner);
	EXPECT_EQ(0, st.owner_alive);
	EXPECT_EQ(rec_footprint_len(3), st.lag);
	/* Removed: gone from the table. */
	ASSERT_EQ(0, bring_reader_remove(self->r, "audit"));
	st.sz = sizeof(st);
	EXPECT_EQ(-ENOENT, bring_get_reader_stats(self->r, idx, &st));
	EXPECT_EQ(-EINVAL, bring_get_reader_stats(self->r, BRING_READERS_MAX + 1,
						  &st));
	EXPECT_EQ(-EINVAL, bring_get_reader_stats(NULL, 0, &st));
	st.sz = 0;
	EXPECT_EQ(-EINVAL, bring_get_reader_stats(self->r, 0, &st));
}

/* A reader whose process died holding it shows a dead owner and its lag. */
TEST_F(stuck, reader_of_a_dead_process_shows_its_dead_owner)
{
	struct bring_reader_stats st;
	pid_t pid;
	int status;

	ASSERT_EQ(0, bring_push(self->r, "held", 4));
	pid = fork_child();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct bring *r = self->r;

		if (variant->file)
			r = bring_open(self->t.path, 0, NULL);
		CHILD_CHECK(r && bring_reader_open(r, "orphan"));
		_exit(0); /* no close: it dies holding the reader */
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(exited_ok(status));
	ASSERT_GT(reader_idx(self->r, "orphan", &st), 0);
	EXPECT_EQ(pid, st.owner);
	EXPECT_EQ(0, st.owner_alive);
	EXPECT_EQ(rec_footprint_len(4), st.lag);
}

/*
 * A reader in front of a record a writer claimed and has not finished
 * counts its 200 ms waits: in a memory ring shared across fork, a writer
 * dead mid-claim looked like an empty ring.
 */
TEST_F(stuck, waits_in_front_of_an_unfinished_record_are_counted)
{
	struct bring_reader_stats st;
	struct bring_resv resv;
	struct bring_msg msg;

	ASSERT_EQ(0, bring_reserve(self->r, 10, &resv, 0));
	ASSERT_EQ(0, bring_push(self->r, "behind", 6));
	EXPECT_EQ(-ETIMEDOUT, bring_next_timeout(self->r, &msg, 700));
	st.sz = sizeof(st);
	ASSERT_EQ(0, bring_get_reader_stats(self->r, 0, &st));
	EXPECT_GE(st.stuck, 2);
	EXPECT_LE(st.stuck, 4);
	ASSERT_EQ(0, bring_commit(self->r, &resv, 10));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(10, msg.len);
}

/*
 * The eventcount's epoch must not come back to the value a sleeper saw
 * while it is preempted (or stopped) between registering and its
 * FUTEX_WAIT: with a 16-bit epoch, 65,536 wake cycles brought it back
 * and the sleeper slept through a wake that had already dropped it from
 * the count. Driven by hand: sleeper A registers, is woken, and before
 * it reaches its wait 65,536 more sleepers register and are woken.
 */
TEST(eventcount_epoch_does_not_come_back_to_a_sleepers_value)
{
	typeof(((struct bring_hdr *)0)->data_seq) word = 0;
	struct evc_ticket a = { 0 }, b;
	struct bring_deadline dl;
	unsigned int i;

	evc_prepare(&word, &a);
	ASSERT_TRUE(evc_sleepers(&word));
	for (i = 0; i < 65536; i++) {
		ASSERT_EQ(1, evc_signal(&word));
		b = (struct evc_ticket){ 0 };
		evc_prepare(&word, &b); /* the next sleeper, as many as A */
	}
	/* A reaches its FUTEX_WAIT only now: it must not sleep. */
	bring_deadline_init(&dl, 200);
	EXPECT_EQ(-EAGAIN, evc_wait(&word, &a, &dl));
	EXPECT_EQ(0, a.registered);
}

TEST_HARNESS_MAIN
