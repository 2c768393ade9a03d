// SPDX-License-Identifier: GPL-2.0
/*
 * bring_notify_fd(): event loops that cannot wait on a futex (io_uring
 * before Linux 6.7, epoll) poll an eventfd instead, one each. It becomes
 * readable exactly when the handle wakes a prepared wait: a push for a
 * waiting reader, a shift for a waiting writer, a close for both; every
 * consumer's eventfd alike; and stays quiet while nobody waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bring.h"
#include "kselftest_harness.h"

#define WAIT_MS 5000 /* what must happen may take this long */
#define QUIET_MS 100 /* what must not happen is given this long */

/* 1 when @fd became readable within @ms (and is reset), 0 if not. */
static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	eventfd_t v;
	int n = poll(&p, 1, ms);

	if (n <= 0)
		return n;
	return eventfd_read(fd, &v) ? -errno : 1;
}

struct later {
	struct bring *r;
	struct bring_reader *rd;
	int what; /* 0: push, 1: shift, 2: close */
};

static void *act_later(void *p)
{
	struct later *l = p;
	struct bring_msg msg;

	usleep(20000);
	if (l->what == 0)
		bring_push(l->r, "x", 1);
	else if (l->what == 1 && !bring_reader_next(l->rd, &msg, 0))
		bring_reader_shift(l->rd);
	else if (l->what == 2)
		bring_close(l->r);
	return NULL;
}

FIXTURE(notify)
{
	struct bring *r;
	struct bring_reader *rd;
	int fd;
};

FIXTURE_VARIANT(notify)
{
	bool file;
};

FIXTURE_VARIANT_ADD(notify, memory) { .file = false };
FIXTURE_VARIANT_ADD(notify, file) { .file = true };

FIXTURE_SETUP(notify)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER, .max_msg = 3000);
	char path[64];

	if (variant->file) {
		snprintf(path, sizeof(path), "/tmp/notify_test.%d", getpid());
		unlink(path);
		self->r = bring_open(path, 4096, &opts);
		unlink(path);
	} else {
		self->r = bring_new(4096, &opts);
	}
	ASSERT_NE_NULL(self->r);
	self->rd = bring_reader_open(self->r, "rd");
	ASSERT_NE_NULL(self->rd);
	self->fd = bring_notify_fd(self->r);
	ASSERT_GE(self->fd, 0) TH_LOG("%s", strerror(-self->fd));
}

FIXTURE_TEARDOWN(notify)
{
	bring_reader_close(self->rd);
	bring_free(self->r);
}

TEST_F(notify, each_call_is_a_nonblocking_cloexec_eventfd_of_its_own)
{
	int fd2 = bring_notify_fd(self->r);
	int fl = fcntl(fd2, F_GETFL), fdfl = fcntl(fd2, F_GETFD);

	ASSERT_GE(fd2, 0);
	EXPECT_NE(self->fd, fd2);
	EXPECT_TRUE(fl & O_NONBLOCK);
	EXPECT_TRUE(fdfl & FD_CLOEXEC);
	EXPECT_EQ(-EINVAL, bring_notify_fd(NULL));
}

/* Two loops, each with its own eventfd: one wake reaches both. */
TEST_F(notify, a_wake_reaches_every_consumer)
{
	struct later l = { self->r, self->rd, 0 };
	struct bring_reader *rd2 = bring_reader_open(self->r, "rd2");
	struct bring_wait w, w2;
	int fd2 = bring_notify_fd(self->r);
	pthread_t t;

	ASSERT_NE_NULL(rd2);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, bring_reader_wait_prepare(self->rd, &w));
	ASSERT_EQ(0, bring_reader_wait_prepare(rd2, &w2));
	ASSERT_EQ(0, pthread_create(&t, NULL, act_later, &l));
	EXPECT_EQ(1, readable(self->fd, WAIT_MS));
	EXPECT_EQ(1, readable(fd2, WAIT_MS));
	pthread_join(t, NULL);
	bring_reader_wait_finish(self->rd, &w);
	bring_reader_wait_finish(rd2, &w2);
	bring_reader_close(rd2);
}

/* Eight per handle (the fixture took one); the ninth is refused. */
TEST_F(notify, ninth_consumer_is_refused)
{
	int i;

	for (i = 1; i < 8; i++)
		ASSERT_GE(bring_notify_fd(self->r), 0);
	EXPECT_EQ(-EMFILE, bring_notify_fd(self->r));
}

TEST_F(notify, push_wakes_a_prepared_reader)
{
	struct later l = { self->r, self->rd, 0 };
	struct bring_msg msg;
	struct bring_wait w;
	pthread_t t;

	ASSERT_EQ(0, bring_reader_wait_prepare(self->rd, &w));
	EXPECT_EQ(0, readable(self->fd, QUIET_MS));
	ASSERT_EQ(0, pthread_create(&t, NULL, act_later, &l));
	EXPECT_EQ(1, readable(self->fd, WAIT_MS));
	pthread_join(t, NULL);
	bring_reader_wait_finish(self->rd, &w);
	ASSERT_EQ(0, bring_reader_next(self->rd, &msg, 0));
	EXPECT_EQ(1, msg.len);
}

TEST_F(notify, shift_wakes_a_prepared_writer)
{
	struct later l = { self->r, self->rd, 1 };
	static char big[2500];
	struct bring_wait w;
	pthread_t t;

	ASSERT_EQ(0, bring_push(self->r, big, sizeof(big)));
	ASSERT_EQ(0, bring_write_wait_prepare(self->r, sizeof(big), &w));
	EXPECT_EQ(0, readable(self->fd, QUIET_MS));
	ASSERT_EQ(0, pthread_create(&t, NULL, act_later, &l));
	EXPECT_EQ(1, readable(self->fd, WAIT_MS));
	pthread_join(t, NULL);
	bring_write_wait_finish(self->r, &w);
	EXPECT_EQ(0, bring_push_timeout(self->r, big, sizeof(big), 0));
}

TEST_F(notify, close_wakes_a_prepared_reader)
{
	struct later l = { self->r, self->rd, 2 };
	struct bring_msg msg;
	struct bring_wait w;
	pthread_t t;

	ASSERT_EQ(0, bring_reader_wait_prepare(self->rd, &w));
	ASSERT_EQ(0, pthread_create(&t, NULL, act_later, &l));
	EXPECT_EQ(1, readable(self->fd, WAIT_MS));
	pthread_join(t, NULL);
	bring_reader_wait_finish(self->rd, &w);
	EXPECT_EQ(-EPIPE, bring_reader_next(self->rd, &msg, 0));
}

/* No prepared wait, no write: the fast path stays free of syscalls. */
TEST_F(notify, quiet_while_nobody_waits)
{
	struct bring_msg msg;
	int i;

	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, bring_push(self->r, "y", 1));
		ASSERT_EQ(0, bring_reader_next(self->rd, &msg, 0));
		ASSERT_EQ(0, bring_reader_shift(self->rd));
	}
	EXPECT_EQ(0, readable(self->fd, 0));
}

/* A finished wait is no longer counted: later pushes stay quiet. */
TEST_F(notify, finished_wait_is_forgotten)
{
	struct bring_msg msg;
	struct bring_wait w;

	ASSERT_EQ(0, bring_reader_wait_prepare(self->rd, &w));
	bring_reader_wait_finish(self->rd, &w);
	ASSERT_EQ(0, bring_push(self->r, "z", 1));
	EXPECT_EQ(0, readable(self->fd, 0));
	ASSERT_EQ(0, bring_reader_next(self->rd, &msg, 0));
}

TEST_HARNESS_MAIN
