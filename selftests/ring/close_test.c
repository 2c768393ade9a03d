// SPDX-License-Identifier: GPL-2.0
/*
 * bring_close(): graceful for readers, final for writers.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "util.h"

RING_FIXTURE(4096, 0)

TEST_F(ring, push_after_close_is_epipe)
{
	struct bring_resv resv;
	struct bring_msg m = { .data = "x", .len = 1 };

	bring_close(self->r);
	EXPECT_EQ(-EPIPE, bring_push(self->r, "x", 1));
	EXPECT_EQ(-EPIPE, bring_push_timeout(self->r, "x", 1, 0));
	EXPECT_EQ(-EPIPE, bring_push_batch(self->r, &m, 1, -1));
	EXPECT_EQ(-EPIPE, bring_reserve(self->r, 1, &resv, -1));
}

TEST_F(ring, reader_drains_everything_then_gets_epipe)
{
	struct bring_msg msg;
	char buf[8];
	int i;

	for (i = 0; i < 10; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		ASSERT_EQ(0, bring_push(self->r, buf, strlen(buf)));
	}
	bring_close(self->r);
	for (i = 0; i < 10; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		ASSERT_EQ(0, bring_next(self->r, &msg));
		ASSERT_EQ(strlen(buf), msg.len);
		ASSERT_EQ(0, memcmp(buf, msg.data, msg.len));
		ASSERT_EQ(0, bring_shift(self->r));
	}
	EXPECT_EQ(-EPIPE, bring_next(self->r, &msg));
	EXPECT_EQ(-EPIPE, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(-EPIPE, bring_peek(self->r, &msg, 1, 0, -1));
}

TEST_F(ring, close_twice_is_harmless)
{
	struct bring_msg msg;

	ASSERT_EQ(0, bring_push(self->r, "a", 1));
	bring_close(self->r);
	bring_close(self->r);
	ASSERT_EQ(0, bring_next(self->r, &msg));
	ASSERT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(-EPIPE, bring_next(self->r, &msg));
}

struct waiter {
	struct bring *r;
	int ret;
	int done;
};

static void *blocked_reader(void *p)
{
	struct waiter *w = p;
	struct bring_msg msg;

	w->ret = bring_next(w->r, &msg);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *blocked_writer(void *p)
{
	struct waiter *w = p;

	w->ret = bring_push(w->r, "y", 1);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST_F(ring, blocked_reader_wakes_with_epipe)
{
	struct waiter w = { .r = self->r, .ret = 1 };
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, blocked_reader, &w));
	usleep(100 * 1000);
	ASSERT_EQ(0, __atomic_load_n(&w.done, __ATOMIC_ACQUIRE))
		TH_LOG("reader returned before anything happened");
	bring_close(self->r);
	pthread_join(t, NULL);
	EXPECT_EQ(-EPIPE, w.ret);
}

TEST_F(ring, blocked_writer_wakes_with_epipe)
{
	static char big[4096];
	struct waiter w = { .r = self->r, .ret = 1 };
	struct bring_msg msg;
	pthread_t t;

	ASSERT_EQ(0, bring_push(self->r, big, bring_max_msg(self->r)));
	ASSERT_EQ(0, pthread_create(&t, NULL, blocked_writer, &w));
	usleep(100 * 1000);
	ASSERT_EQ(0, __atomic_load_n(&w.done, __ATOMIC_ACQUIRE))
		TH_LOG("writer returned although the ring was full");
	bring_close(self->r);
	pthread_join(t, NULL);
	EXPECT_EQ(-EPIPE, w.ret);
	/* The message pushed before the close is still delivered. */
	ASSERT_EQ(0, bring_next(self->r, &msg));
	EXPECT_EQ(bring_max_msg(self->r), msg.len);
	ASSERT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(-EPIPE, bring_next(self->r, &msg));
}

/* A reservation made before the close may still be committed. */
TEST_F(ring, reservation_before_close_is_delivered)
{
	struct bring_resv resv;
	struct bring_msg msg;
	struct waiter w = { .r = self->r, .ret = 1 };
	pthread_t t;

	ASSERT_EQ(0, bring_reserve(self->r, 4, &resv, 0));
	bring_close(self->r);
	/* The reader must wait for the reservation, not report -EPIPE. */
	ASSERT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
	ASSERT_EQ(0, pthread_create(&t, NULL, blocked_reader, &w));
	usleep(50 * 1000);
	ASSERT_EQ(0, __atomic_load_n(&w.done, __ATOMIC_ACQUIRE));
	memcpy(resv.data, "late", 4);
	ASSERT_EQ(0, bring_commit(self->r, &resv, 4));
	pthread_join(t, NULL);
	EXPECT_EQ(0, w.ret);
	ASSERT_EQ(0, bring_next(self->r, &msg));
	EXPECT_EQ(0, memcmp("late", msg.data, 4));
	ASSERT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(-EPIPE, bring_next(self->r, &msg));
}

TEST_F(ring, aborted_reservation_after_close_ends_in_epipe)
{
	struct bring_resv resv;
	struct bring_msg msg;

	ASSERT_EQ(0, bring_reserve(self->r, 4, &resv, 0));
	bring_close(self->r);
	ASSERT_EQ(0, bring_abort(self->r, &resv));
	EXPECT_EQ(-EPIPE, bring_next(self->r, &msg));
}

TEST_F(ring, named_readers_also_drain_then_epipe)
{
	struct bring_reader *rd = bring_reader_open(self->r, "sink");
	struct bring_msg msg;

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_push(self->r, "m", 1));
	bring_close(self->r);
	ASSERT_EQ(0, bring_reader_next(rd, &msg, -1));
	ASSERT_EQ(0, bring_reader_shift(rd));
	EXPECT_EQ(-EPIPE, bring_reader_next(rd, &msg, -1));
	bring_reader_close(rd);
}

TEST_HARNESS_MAIN
