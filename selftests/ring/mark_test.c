// SPDX-License-Identifier: GPL-2.0
/*
 * Marks on a memory ring: named writers whose mark is that of their last
 * committed record, reader marks stored with the shift, and every error
 * path of the calls. File rings and crashes: selftests/file/mark_crash_test.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "util.h"

RING_FIXTURE(4096, BRING_NO_DEFAULT_READER)

/* The writer's mark as a string ("" when empty), or "<err N>". */
static const char *mark_str(const struct bring_writer *w, char *buf,
			    size_t size)
{
	int n = bring_writer_mark(w, buf, size - 1);

	if (n < 0)
		snprintf(buf, size, "<err %d>", n);
	else
		buf[n] = '\0';
	return buf;
}

static const char *rmark_str(const struct bring_reader *rd, char *buf,
			     size_t size)
{
	int n = bring_reader_mark(rd, buf, size - 1);

	if (n < 0)
		snprintf(buf, size, "<err %d>", n);
	else
		buf[n] = '\0';
	return buf;
}

static int wpush(struct bring_writer *w, const char *msg, const char *mark)
{
	return bring_writer_push(w, msg, strlen(msg), mark, strlen(mark), 0);
}

TEST_F(ring, new_writer_has_no_mark)
{
	struct bring_writer *w = bring_writer_open(self->r, "src", NULL);
	char buf[BRING_MARK_MAX + 1];

	ASSERT_NE_NULL(w);
	EXPECT_EQ(0, bring_writer_mark(w, buf, sizeof(buf)));
	EXPECT_EQ(0, bring_writer_mark(w, NULL, 0));
	bring_writer_close(w);
}

TEST_F(ring, mark_is_that_of_the_last_commit)
{
	struct bring_writer *w = bring_writer_open(self->r, "src", NULL);
	struct bring_reader *rd = bring_reader_open(self->r, "rd");
	char buf[BRING_MARK_MAX + 1];
	struct bring_msg msg;

	ASSERT_NE_NULL(w);
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, wpush(w, "one", "off=4"));
	EXPECT_STREQ("off=4", mark_str(w, buf, sizeof(buf)));
	ASSERT_EQ(0, wpush(w, "two", "off=8"));
	EXPECT_STREQ("off=8", mark_str(w, buf, sizeof(buf)));
	/* The records are ordinary messages. */
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ(3, msg.len);
	EXPECT_EQ(0, memcmp(msg.data, "one", 3));
	/* The empty mark is stored, not "no change". */
	ASSERT_EQ(0, wpush(w, "three", ""));
	EXPECT_EQ(0, bring_writer_mark(w, buf, sizeof(buf)));
	/* The longest mark. */
	memset(buf, 'x', BRING_MARK_MAX);
	ASSERT_EQ(0, bring_writer_push(w, "m", 1, buf, BRING_MARK_MAX, 0));
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(BRING_MARK_MAX, bring_writer_mark(w, buf, BRING_MARK_MAX));
	EXPECT_EQ('x', buf[BRING_MARK_MAX - 1]);
	EXPECT_EQ(-ENOSPC, bring_writer_mark(w, buf, BRING_MARK_MAX - 1));
	bring_writer_close(w);
	bring_reader_close(rd);
}

TEST_F(ring, mark_survives_close_and_reopen)
{
	struct bring_writer *w = bring_writer_open(self->r, "src", NULL);
	char buf[BRING_MARK_MAX + 1];

	ASSERT_NE_NULL(w);
	ASSERT_EQ(0, wpush(w, "one", "inode:42@100"));
	bring_writer_close(w);
	w = bring_writer_open(self->r, "src", NULL);
	ASSERT_NE_NULL(w);
	EXPECT_STREQ("inode:42@100", mark_str(w, buf, sizeof(buf)));
	bring_writer_close(w);
}

TEST_F(ring, one_handle_per_name)
{
	struct bring_writer *w = bring_writer_open(self->r, "src", NULL);
	struct bring_writer *w2;

	ASSERT_NE_NULL(w);
	errno = 0;
	EXPECT_NULL(bring_writer_open(self->r, "src", NULL));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-EBUSY, bring_writer_remove(self->r, "src"));
	/* Another name is another writer. */
	w2 = bring_writer_open(self->r, "src2", NULL);
	EXPECT_NE_NULL(w2);
	bring_writer_close(w2);
	bring_writer_close(w);
}

TEST_F(ring, commit_of_a_reservation_carries_the_mark)
{
	struct bring_writer *w = bring_writer_open(self->r, "src", NULL);
	struct bring_reader *rd = bring_reader_open(self->r, "rd");
	char buf[BRING_MARK_MAX + 1];
	struct bring_resv resv;
	struct bring_msg msg;

	ASSERT_NE_NULL(w);
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_reserve(self->r, 100, &resv, 0));
	memcpy(resv.data, "hello", 5);
	/* A short commit: the rest of the reservation is given back. */
	ASSERT_EQ(0, bring_writer_commit(w, &resv, 5, "m1", 2));
	EXPECT_STREQ("m1", mark_str(w, buf, sizeof(buf)));
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ(5, msg.len);
	EXPECT_EQ(0, memcmp(msg.data, "hello", 5));
	/* Committing it again fails and leaves the mark alone. */
	EXPECT_EQ(-EINVAL, bring_writer_commit(w, &resv, 5, "m2", 2));
	EXPECT_STREQ("m1", mark_str(w, buf, sizeof(buf)));
	/* So does a length beyond the reservation. */
	ASSERT_EQ(0, bring_reserve(self->r, 8, &resv, 0));
	EXPECT_EQ(-EINVAL, bring_writer_commit(w, &resv, 9, "m3", 2));
	EXPECT_STREQ("m1", mark_str(w, buf, sizeof(buf)));
	/* An abort stores no mark. */
	ASSERT_EQ(0, bring_abort(self->r, &resv));
	EXPECT_STREQ("m1", mark_str(w, buf, sizeof(buf)));
	bring_writer_close(w);
	bring_reader_close(rd);
}

TEST_F(ring, failed_push_stores_no_mark)
{
	struct bring_writer *w = bring_writer_open(self->r, "src", NULL);
	struct bring_reader *rd = bring_reader_open(self->r, "rd");
	static char big[2048];
	char buf[BRING_MARK_MAX + 1];

	ASSERT_NE_NULL(w);
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_writer_push(w, big, 2000, "a", 1, 0));
	ASSERT_EQ(0, bring_writer_push(w, big, 2000, "b", 1, 0));
	/* Full. */
	EXPECT_EQ(-EAGAIN, bring_writer_push(w, big, 2000, "c", 1, 0));
	EXPECT_EQ(-ETIMEDOUT, bring_writer_push(w, big, 2000, "d", 1, 10));
	EXPECT_STREQ("b", mark_str(w, buf, sizeof(buf)));
	EXPECT_EQ(-EMSGSIZE, bring_writer_push(w, big, 5000, "e", 1, 0));
	EXPECT_STREQ("b", mark_str(w, buf, sizeof(buf)));
	bring_close(self->r);
	EXPECT_EQ(-EPIPE, bring_writer_push(w, "x", 1, "f", 1, 0));
	EXPECT_STREQ("b", mark_str(w, buf, sizeof(buf)));
	bring_writer_close(w);
	bring_reader_close(rd);
}

TEST_F(ring, bad_arguments_are_refused)
{
	BRING_DECLARE_OPTS(bring_writer_opts, flagged, .flags = 1);
	struct {
		struct bring_writer_opts o;
		uint64_t more;
	} bigger = { .o.sz = sizeof(bigger), .more = 1 };
	struct bring_writer *w;
	char name[BRING_NAME_MAX + 1], mark[BRING_MARK_MAX + 1] = { 0 };
	struct bring_resv resv;

	errno = 0;
	EXPECT_NULL(bring_writer_open(NULL, "w", NULL));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_NULL(bring_writer_open(self->r, NULL, NULL));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_NULL(bring_writer_open(self->r, "", NULL));
	EXPECT_EQ(EINVAL, errno);
	memset(name, 'n', BRING_NAME_MAX);
	name[BRING_NAME_MAX] = '\0';
	errno = 0;
	EXPECT_NULL(bring_writer_open(self->r, name, NULL));
	EXPECT_EQ(ENAMETOOLONG, errno);
	errno = 0;
	EXPECT_NULL(bring_writer_open(self->r, "w", &flagged));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_NULL(bring_writer_open(self->r, "w", &bigger.o));
	EXPECT_EQ(EINVAL, errno);
	/* The longest name is fine. */
	name[BRING_NAME_MAX - 1] = '\0';
	w = bring_writer_open(self->r, name, NULL);
	ASSERT_NE_NULL(w);
	EXPECT_EQ(-EMSGSIZE,
		  bring_writer_push(w, "x", 1, mark, BRING_MARK_MAX + 1, 0));
	EXPECT_EQ(-EINVAL, bring_writer_push(w, "x", 1, NULL, 1, 0));
	EXPECT_EQ(-EINVAL, bring_writer_push(w, NULL, 1, "m", 1, 0));
	EXPECT_EQ(-EINVAL, bring_writer_push(NULL, "x", 1, "m", 1, 0));
	ASSERT_EQ(0, bring_reserve(self->r, 8, &resv, 0));
	EXPECT_EQ(-EMSGSIZE,
		  bring_writer_commit(w, &resv, 8, mark, BRING_MARK_MAX + 1));
	EXPECT_EQ(-EINVAL, bring_writer_commit(w, &resv, 8, NULL, 1));
	EXPECT_EQ(-EINVAL, bring_writer_commit(NULL, &resv, 8, "m", 1));
	EXPECT_EQ(-EINVAL, bring_writer_commit(w, NULL, 8, "m", 1));
	EXPECT_EQ(0, bring_abort(self->r, &resv));
	EXPECT_EQ(-EINVAL, bring_writer_mark(NULL, mark, sizeof(mark)));
	EXPECT_EQ(-EINVAL, bring_writer_remove(NULL, "w"));
	EXPECT_EQ(-EINVAL, bring_writer_remove(self->r, ""));
	name[BRING_NAME_MAX - 1] = 'n';
	EXPECT_EQ(-ENAMETOOLONG, bring_writer_remove(self->r, name));
	bring_writer_close(w);
	bring_writer_close(NULL);
}

TEST_F(ring, at_most_writers_max)
{
	struct bring_writer *w[BRING_WRITERS_MAX];
	char name[16];
	int i;

	for (i = 0; i < BRING_WRITERS_MAX; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		w[i] = bring_writer_open(self->r, name, NULL);
		ASSERT_NE_NULL(w[i]);
	}
	errno = 0;
	EXPECT_NULL(bring_writer_open(self->r, "one-more", NULL));
	EXPECT_EQ(ENOSPC, errno);
	/* Removing one makes room. */
	bring_writer_close(w[3]);
	EXPECT_EQ(0, bring_writer_remove(self->r, "w3"));
	w[3] = bring_writer_open(self->r, "one-more", NULL);
	EXPECT_NE_NULL(w[3]);
	for (i = 0; i < BRING_WRITERS_MAX; i++)
		bring_writer_close(w[i]);
}

TEST_F(ring, remove_forgets_the_mark)
{
	struct bring_writer *w = bring_writer_open(self->r, "src", NULL);
	char buf[BRING_MARK_MAX + 1];

	ASSERT_NE_NULL(w);
	EXPECT_EQ(-ENOENT, bring_writer_remove(self->r, "nobody"));
	ASSERT_EQ(0, wpush(w, "one", "m1"));
	bring_writer_close(w);
	EXPECT_EQ(0, bring_writer_remove(self->r, "src"));
	EXPECT_EQ(-ENOENT, bring_writer_remove(self->r, "src"));
	w = bring_writer_open(self->r, "src", NULL);
	ASSERT_NE_NULL(w);
	EXPECT_STREQ("", mark_str(w, buf, sizeof(buf)));
	bring_writer_close(w);
}

TEST_F(ring, reader_mark_is_stored_with_the_shift)
{
	struct bring_reader *rd = bring_reader_open(self->r, "sink");
	char buf[BRING_MARK_MAX + 1];
	struct bring_msg msg;

	ASSERT_NE_NULL(rd);
	EXPECT_STREQ("", rmark_str(rd, buf, sizeof(buf)));
	ASSERT_EQ(0, bring_push(self->r, "a", 1));
	ASSERT_EQ(0, bring_push(self->r, "b", 1));
	ASSERT_EQ(0, bring_push(self->r, "c", 1));
	/* Nothing to shift: nothing stored. */
	EXPECT_EQ(-ENODATA, bring_reader_shift_mark(rd, "len=0", 5));
	EXPECT_STREQ("", rmark_str(rd, buf, sizeof(buf)));
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	ASSERT_EQ(0, bring_reader_shift_mark(rd, "len=1", 5));
	EXPECT_STREQ("len=1", rmark_str(rd, buf, sizeof(buf)));
	/* A plain shift keeps it. */
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	ASSERT_EQ(0, bring_reader_shift(rd));
	EXPECT_STREQ("len=1", rmark_str(rd, buf, sizeof(buf)));
	EXPECT_EQ(-ENOSPC, bring_reader_mark(rd, buf, 4));
	/* Kept across close and reopen, with the cursor. */
	bring_reader_close(rd);
	rd = bring_reader_open(self->r, "sink");
	ASSERT_NE_NULL(rd);
	EXPECT_STREQ("len=1", rmark_str(rd, buf, sizeof(buf)));
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ('c', *(const char *)msg.data);
	ASSERT_EQ(0, bring_reader_shift_mark(rd, "", 0));
	EXPECT_STREQ("", rmark_str(rd, buf, sizeof(buf)));
	EXPECT_EQ(-EINVAL, bring_reader_shift_mark(NULL, "x", 1));
	EXPECT_EQ(-EINVAL, bring_reader_shift_mark(rd, NULL, 1));
	EXPECT_EQ(-EMSGSIZE,
		  bring_reader_shift_mark(rd, buf, BRING_MARK_MAX + 1));
	EXPECT_EQ(-EINVAL, bring_reader_mark(NULL, buf, sizeof(buf)));
	bring_reader_close(rd);
}

TEST_F(ring, reader_mark_can_be_set_without_a_shift)
{
	struct bring_reader *rd = bring_reader_open(self->r, "sink");
	char buf[BRING_MARK_MAX + 1];
	struct bring_msg msg;

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_push(self->r, "a", 1));
	ASSERT_EQ(0, bring_push(self->r, "b", 1));
	/* Nothing consumed yet: the mark says where the reader starts. */
	ASSERT_EQ(0, bring_reader_set_mark(rd, "len=0", 5));
	EXPECT_STREQ("len=0", rmark_str(rd, buf, sizeof(buf)));
	/* Pending messages stay pending. */
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	ASSERT_EQ(0, bring_reader_set_mark(rd, "len=9", 5));
	ASSERT_EQ(0, bring_reader_shift(rd));
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ('b', *(const char *)msg.data);
	EXPECT_STREQ("len=9", rmark_str(rd, buf, sizeof(buf)));
	EXPECT_EQ(-EINVAL, bring_reader_set_mark(NULL, "x", 1));
	EXPECT_EQ(-EINVAL, bring_reader_set_mark(rd, NULL, 1));
	EXPECT_EQ(-EMSGSIZE, bring_reader_set_mark(rd, buf, BRING_MARK_MAX + 1));
	/* Kept across close and reopen. */
	bring_reader_close(rd);
	rd = bring_reader_open(self->r, "sink");
	ASSERT_NE_NULL(rd);
	EXPECT_STREQ("len=9", rmark_str(rd, buf, sizeof(buf)));
	bring_reader_close(rd);
}

TEST_F(ring, removed_reader_leaves_no_mark_behind)
{
	struct bring_reader *rd = bring_reader_open(self->r, "old");
	char buf[BRING_MARK_MAX + 1];
	struct bring_msg msg;

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_push(self->r, "a", 1));
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	ASSERT_EQ(0, bring_reader_shift_mark(rd, "old-mark", 8));
	bring_reader_close(rd);
	ASSERT_EQ(0, bring_reader_remove(self->r, "old"));
	/* The new reader gets the freed slot. */
	rd = bring_reader_open(self->r, "new");
	ASSERT_NE_NULL(rd);
	EXPECT_STREQ("", rmark_str(rd, buf, sizeof(buf)));
	bring_reader_close(rd);
}

/* Writers in threads: each one's mark is its own last sequence number. */
struct wthread {
	struct bring *r;
	int id, n, err;
};

static void *writer_main(void *arg)
{
	struct wthread *t = arg;
	struct bring_writer *w;
	char name[16], msg[32], mark[16];
	int i;

	snprintf(name, sizeof(name), "w%d", t->id);
	w = bring_writer_open(t->r, name, NULL);
	if (!w) {
		t->err = -errno;
		return NULL;
	}
	for (i = 1; i <= t->n && !t->err; i++) {
		snprintf(msg, sizeof(msg), "%d:%d", t->id, i);
		snprintf(mark, sizeof(mark), "%d", i);
		t->err = bring_writer_push(w, msg, strlen(msg), mark,
					   strlen(mark), -1);
	}
	bring_writer_close(w);
	return NULL;
}

TEST_F(ring, concurrent_writers_keep_their_own_marks)
{
	enum { NW = 4 };
	struct wthread t[NW];
	pthread_t th[NW];
	struct bring_reader *rd = bring_reader_open(self->r, "rd");
	struct bring_writer *w;
	int next[NW] = { 0 }, i, id, seq, got = 0;
	int n = SANITIZED_THREAD ? 2000 : 20000;
	char buf[BRING_MARK_MAX + 1], name[16];
	struct bring_msg msg;

	ASSERT_NE_NULL(rd);
	for (i = 0; i < NW; i++) {
		t[i] = (struct wthread){ .r = self->r, .id = i, .n = n };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, writer_main, &t[i]));
	}
	while (got < NW * n) {
		ASSERT_EQ(0, bring_reader_next(rd, &msg, 5000));
		snprintf(buf, sizeof(buf), "%.*s", (int)msg.len,
			 (const char *)msg.data);
		ASSERT_EQ(2, sscanf(buf, "%d:%d", &id, &seq));
		ASSERT_EQ(next[id] + 1, seq);
		next[id] = seq;
		got++;
		ASSERT_EQ(0, bring_reader_shift(rd));
	}
	for (i = 0; i < NW; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, t[i].err);
		snprintf(name, sizeof(name), "w%d", i);
		w = bring_writer_open(self->r, name, NULL);
		ASSERT_NE_NULL(w);
		snprintf(name, sizeof(name), "%d", n);
		EXPECT_STREQ(name, mark_str(w, buf, sizeof(buf)));
		bring_writer_close(w);
	}
	bring_reader_close(rd);
}

TEST_HARNESS_MAIN
