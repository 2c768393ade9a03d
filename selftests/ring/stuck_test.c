// SPDX-License-Identifier: GPL-2.0
/*
 * Readers and writers that wait for each other: what a reader that waits
 * from an event loop (bring_reader_wait_prepare()) owes the writers, in
 * memory and file rings.
 *
 *  - a reader whose wait_prepare skipped DISCARD records (an abort, a
 *    repaired claim) gives their space back at once, so a writer waiting
 *    for that space is not left waiting for a reader that waits for it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

TEST_HARNESS_MAIN
