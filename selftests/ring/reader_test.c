// SPDX-License-Identifier: GPL-2.0
/*
 * Named readers: fan-out, space behind the slowest, close/resume, remove,
 * and rings without a default reader.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "util.h"

RING_FIXTURE(4096, BRING_NO_DEFAULT_READER)

static int read_one(struct bring_reader *rd, char *out, size_t size)
{
	struct bring_msg msg;
	int err = bring_reader_next(rd, &msg, 0);

	if (err)
		return err;
	snprintf(out, size, "%.*s", (int)msg.len, (const char *)msg.data);
	return bring_reader_shift(rd);
}

TEST_F(ring, every_reader_sees_every_message)
{
	struct bring_reader *a = bring_reader_open(self->r, "a");
	struct bring_reader *b = bring_reader_open(self->r, "b");
	char buf[16], want[16];
	int i;

	ASSERT_NE_NULL(a);
	ASSERT_NE_NULL(b);
	for (i = 0; i < 5; i++) {
		snprintf(buf, sizeof(buf), "m%d", i);
		ASSERT_EQ(0, bring_push(self->r, buf, strlen(buf)));
	}
	for (i = 0; i < 5; i++) {
		snprintf(want, sizeof(want), "m%d", i);
		ASSERT_EQ(0, read_one(a, buf, sizeof(buf)));
		EXPECT_STREQ(want, buf);
	}
	EXPECT_EQ(-EAGAIN, read_one(a, buf, sizeof(buf)));
	for (i = 0; i < 5; i++) {
		snprintf(want, sizeof(want), "m%d", i);
		ASSERT_EQ(0, read_one(b, buf, sizeof(buf)));
		EXPECT_STREQ(want, buf);
	}
	bring_reader_close(a);
	bring_reader_close(b);
}

TEST_F(ring, space_is_reclaimed_only_behind_the_slowest)
{
	struct bring_reader *fast = bring_reader_open(self->r, "fast");
	struct bring_reader *slow = bring_reader_open(self->r, "slow");
	static char big[2048];
	char buf[2048];

	ASSERT_NE_NULL(fast);
	ASSERT_NE_NULL(slow);
	/* Two 2000-byte messages fill the 4096-byte ring. */
	ASSERT_EQ(0, bring_push_timeout(self->r, big, 2000, 0));
	ASSERT_EQ(0, bring_push_timeout(self->r, big, 2000, 0));
	ASSERT_EQ(0, read_one(fast, buf, sizeof(buf)));
	ASSERT_EQ(0, read_one(fast, buf, sizeof(buf)));
	EXPECT_EQ(-EAGAIN, bring_push_timeout(self->r, big, 2000, 0));
	ASSERT_EQ(0, read_one(slow, buf, sizeof(buf)));
	EXPECT_EQ(0, bring_push_timeout(self->r, big, 2000, 0));
	bring_reader_close(fast);
	bring_reader_close(slow);
}

TEST_F(ring, closed_reader_resumes_after_its_last_shift)
{
	struct bring_reader *rd = bring_reader_open(self->r, "sink");
	struct bring_msg msg;
	char buf[16];

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_push(self->r, "one", 3));
	ASSERT_EQ(0, bring_push(self->r, "two", 3));
	ASSERT_EQ(0, read_one(rd, buf, sizeof(buf)));
	/* "two" is returned but not shifted: delivered again on reopen. */
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	bring_reader_close(rd);
	rd = bring_reader_open(self->r, "sink");
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, read_one(rd, buf, sizeof(buf)));
	EXPECT_STREQ("two", buf);
	bring_reader_close(rd);
}

TEST_F(ring, closed_reader_still_holds_space)
{
	struct bring_reader *rd = bring_reader_open(self->r, "sink");
	static char big[4096];

	ASSERT_NE_NULL(rd);
	bring_reader_close(rd);
	ASSERT_EQ(0, bring_push_timeout(self->r, big,
					bring_max_msg(self->r), 0));
	EXPECT_EQ(-EAGAIN, bring_push_timeout(self->r, "x", 1, 0));
}

TEST_F(ring, removed_reader_frees_its_space)
{
	struct bring_reader *rd = bring_reader_open(self->r, "sink");
	struct bring_reader *other = bring_reader_open(self->r, "other");
	static char big[4096];
	char buf[16];

	ASSERT_NE_NULL(rd);
	ASSERT_NE_NULL(other);
	ASSERT_EQ(0, bring_push_timeout(self->r, big,
					bring_max_msg(self->r), 0));
	ASSERT_EQ(0, read_one(other, buf, sizeof(buf)));
	EXPECT_EQ(-EAGAIN, bring_push_timeout(self->r, "x", 1, 0));
	EXPECT_EQ(-EBUSY, bring_reader_remove(self->r, "sink"));
	bring_reader_close(rd);
	ASSERT_EQ(0, bring_reader_remove(self->r, "sink"));
	EXPECT_EQ(-ENOENT, bring_reader_remove(self->r, "sink"));
	/* Nobody holds the old message any more. */
	EXPECT_EQ(0, bring_push_timeout(self->r, big,
					bring_max_msg(self->r), 0));
	bring_reader_close(other);
}

/* Without any reader the ring keeps its messages for the next one. */
TEST_F(ring, removing_the_last_reader_keeps_its_backlog)
{
	struct bring_reader *rd = bring_reader_open(self->r, "sink");
	char buf[16];

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_push(self->r, "kept", 4));
	bring_reader_close(rd);
	ASSERT_EQ(0, bring_reader_remove(self->r, "sink"));
	rd = bring_reader_open(self->r, "next");
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, read_one(rd, buf, sizeof(buf)));
	EXPECT_STREQ("kept", buf);
	bring_reader_close(rd);
}

struct pusher {
	struct bring *r;
	int ret;
	int done;
};

static void *push_big(void *p)
{
	static char big[4096];
	struct pusher *w = p;

	w->ret = bring_push(w->r, big, 3000);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST_F(ring, removing_the_slowest_reader_wakes_blocked_writers)
{
	struct bring_reader *rd = bring_reader_open(self->r, "sink");
	struct bring_reader *fast = bring_reader_open(self->r, "fast");
	struct pusher w = { .r = self->r, .ret = 1 };
	static char big[4096];
	char buf[3001];
	pthread_t t;

	ASSERT_NE_NULL(rd);
	ASSERT_NE_NULL(fast);
	ASSERT_EQ(0, bring_push_timeout(self->r, big, 3000, 0));
	ASSERT_EQ(0, read_one(fast, buf, sizeof(buf)));
	ASSERT_EQ(0, pthread_create(&t, NULL, push_big, &w));
	usleep(50 * 1000);
	ASSERT_EQ(0, __atomic_load_n(&w.done, __ATOMIC_ACQUIRE));
	bring_reader_close(rd);
	ASSERT_EQ(0, bring_reader_remove(self->r, "sink"));
	pthread_join(t, NULL);
	EXPECT_EQ(0, w.ret);
	bring_reader_close(fast);
}

TEST_F(ring, new_reader_starts_at_oldest_held_message)
{
	struct bring_reader *old = bring_reader_open(self->r, "old");
	struct bring_reader *late;
	char buf[16];

	ASSERT_NE_NULL(old);
	ASSERT_EQ(0, bring_push(self->r, "1", 1));
	ASSERT_EQ(0, bring_push(self->r, "2", 1));
	ASSERT_EQ(0, read_one(old, buf, sizeof(buf)));
	late = bring_reader_open(self->r, "late");
	ASSERT_NE_NULL(late);
	ASSERT_EQ(0, read_one(late, buf, sizeof(buf)));
	EXPECT_STREQ("2", buf);
	bring_reader_close(old);
	bring_reader_close(late);
}

/* Messages pushed before any reader exists are kept for the first one. */
TEST_F(ring, messages_wait_for_the_first_reader)
{
	struct bring_reader *rd;
	char buf[16];

	ASSERT_EQ(0, bring_push(self->r, "early", 5));
	rd = bring_reader_open(self->r, "shipper");
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, read_one(rd, buf, sizeof(buf)));
	EXPECT_STREQ("early", buf);
	bring_reader_close(rd);
}

TEST_F(ring, no_default_reader_means_next_is_enoent)
{
	struct bring_msg msg;

	EXPECT_EQ(-ENOENT, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(-ENOENT, bring_peek(self->r, &msg, 1, 0, 0));
	EXPECT_EQ(-ENOENT, bring_shift(self->r));
}

TEST(default_reader_holds_space_until_removed)
{
	struct bring *r = bring_new(4096, NULL);
	struct bring_reader *rd;
	static char big[4096];
	struct bring_msg msg;
	char buf[16];

	ASSERT_NE_NULL(r);
	rd = bring_reader_open(r, "sink");
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_push_timeout(r, big, 2000, 0));
	ASSERT_EQ(0, read_one(rd, buf, sizeof(buf)));
	ASSERT_EQ(0, bring_push_timeout(r, big, 2000, 0));
	ASSERT_EQ(0, read_one(rd, buf, sizeof(buf)));
	/* The unused default reader still holds both messages. */
	EXPECT_EQ(-EAGAIN, bring_push_timeout(r, big, 2000, 0));
	ASSERT_EQ(0, bring_reader_remove(r, BRING_DEFAULT_READER));
	EXPECT_EQ(0, bring_push_timeout(r, big, 2000, 0));
	EXPECT_EQ(-ENOENT, bring_next_timeout(r, &msg, 0));
	bring_reader_close(rd);
	bring_free(r);
}

TEST_F(ring, reader_names_are_checked)
{
	char name[BRING_NAME_MAX + 1];

	memset(name, 'x', BRING_NAME_MAX);
	name[BRING_NAME_MAX] = '\0';
	errno = 0;
	EXPECT_NULL(bring_reader_open(self->r, name));
	EXPECT_EQ(ENAMETOOLONG, errno);
	errno = 0;
	EXPECT_NULL(bring_reader_open(self->r, ""));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_NULL(bring_reader_open(self->r, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-ENAMETOOLONG, bring_reader_remove(self->r, name));
	EXPECT_EQ(-EINVAL, bring_reader_remove(self->r, NULL));
	EXPECT_EQ(-ENOENT, bring_reader_remove(self->r, "nobody"));
}

TEST_F(ring, reader_open_twice_is_ebusy)
{
	struct bring_reader *a = bring_reader_open(self->r, "dup");

	ASSERT_NE_NULL(a);
	errno = 0;
	EXPECT_NULL(bring_reader_open(self->r, "dup"));
	EXPECT_EQ(EBUSY, errno);
	bring_reader_close(a);
	a = bring_reader_open(self->r, "dup");
	EXPECT_NE_NULL(a);
	bring_reader_close(a);
}

TEST_F(ring, reader_table_full_is_enospc)
{
	struct bring_reader *rd[BRING_READERS_MAX];
	char name[16];
	int i;

	for (i = 0; i < BRING_READERS_MAX; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		rd[i] = bring_reader_open(self->r, name);
		ASSERT_NE_NULL(rd[i]) TH_LOG("reader %d", i);
	}
	errno = 0;
	EXPECT_NULL(bring_reader_open(self->r, "one-too-many"));
	EXPECT_EQ(ENOSPC, errno);
	bring_reader_close(rd[5]);
	ASSERT_EQ(0, bring_reader_remove(self->r, "r5"));
	rd[5] = bring_reader_open(self->r, "one-too-many");
	EXPECT_NE_NULL(rd[5]);
	for (i = 0; i < BRING_READERS_MAX; i++)
		bring_reader_close(rd[i]);
}

TEST_F(ring, reader_shift_without_next_is_enodata)
{
	struct bring_reader *rd = bring_reader_open(self->r, "s");

	ASSERT_NE_NULL(rd);
	EXPECT_EQ(-ENODATA, bring_reader_shift(rd));
	bring_reader_close(rd);
}

struct blocked_read {
	struct bring_reader *rd;
	char got[16];
	int ret;
};

static void *reader_thread(void *p)
{
	struct blocked_read *b = p;
	struct bring_msg msg;

	b->ret = bring_reader_next(b->rd, &msg, -1);
	if (!b->ret)
		snprintf(b->got, sizeof(b->got), "%.*s", (int)msg.len,
			 (const char *)msg.data);
	return NULL;
}

TEST_F(ring, all_blocked_readers_wake_on_one_push)
{
	struct blocked_read b[3];
	pthread_t t[3];
	char name[8];
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		b[i].rd = bring_reader_open(self->r, name);
		ASSERT_NE_NULL(b[i].rd);
		b[i].ret = 1;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, reader_thread, &b[i]));
	}
	usleep(50 * 1000);
	ASSERT_EQ(0, bring_push(self->r, "wake", 4));
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, b[i].ret);
		EXPECT_STREQ("wake", b[i].got);
		bring_reader_close(b[i].rd);
	}
}

TEST_HARNESS_MAIN
