// SPDX-License-Identifier: GPL-2.0
/*
 * File rings, opened with bring_open(): creating and reopening, racing
 * creators, the same calls and error codes as a memory ring (the api
 * fixture runs each sequence on both), readers that persist their place,
 * durability (none, interval, always, group commit, poisoning after a
 * failed flush), and what an open refuses before it trusts a file:
 * symbolic links, directories and other non-regular files, a disk that
 * is too small, and headers that do not validate (left untouched).
 *
 * Every test works in a fresh mkdtemp() directory that it removes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "bring.h"
#include "crc32c.h"
#include "internal.h"
#include "kselftest_harness.h"
#include "util.h"

/* Fault injection in lib/file.c: non-zero makes every flush fail. */
extern int bring__fault_flush;
extern unsigned long bring__flush_missed_wakes;

#define CAP 4096
#define FILE_SIZE (BRING_HDR_SIZE + CAP)
#define WAIT_MS 5000	/* how long something that must happen may take */

/* ------------------------------------------------------------------ */
/* The scratch directory (struct tmp in util.h).                      */

static void tmp_path(const struct tmp *t, const char *name, char *out,
		     size_t size)
{
	snprintf(out, size, "%s/%s", t->dir, name);
}

/* Entries in the directory, "." and ".." not counted. */
static int tmp_entries(const struct tmp *t)
{
	struct dirent *de;
	DIR *d = opendir(t->dir);
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------ */
/* Messages.                                                          */

static int push_str(struct bring *r, const char *s)
{
	return bring_push(r, s, strlen(s));
}

static int next_str(struct bring *r, char *out, size_t size, int timeout_ms)
{
	struct bring_msg msg;
	int err = bring_next_timeout(r, &msg, timeout_ms);

	if (err)
		return err;
	snprintf(out, size, "%.*s", (int)msg.len, (const char *)msg.data);
	return 0;
}

/* Next message of the default reader, shifted. */
static int take_str(struct bring *r, char *out, size_t size, int timeout_ms)
{
	int err = next_str(r, out, size, timeout_ms);

	return err ? err : bring_shift(r);
}

static int reader_str(struct bring_reader *rd, char *out, size_t size,
		      int timeout_ms)
{
	struct bring_msg msg;
	int err = bring_reader_next(rd, &msg, timeout_ms);

	if (err)
		return err;
	snprintf(out, size, "%.*s", (int)msg.len, (const char *)msg.data);
	return 0;
}

static int reader_take(struct bring_reader *rd, char *out, size_t size,
		       int timeout_ms)
{
	int err = reader_str(rd, out, size, timeout_ms);

	return err ? err : bring_reader_shift(rd);
}

/* Push "m<i>" for i in [from, to). */
static int push_range(struct bring *r, int from, int to)
{
	char buf[16];
	int i, err;

	for (i = from; i < to; i++) {
		snprintf(buf, sizeof(buf), "m%d", i);
		err = push_str(r, buf);
		if (err)
			return err;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Creating and opening.                                              */

TEST(created_file_reopens_with_its_messages)
{
	struct tmp t;
	struct bring *r;
	struct stat st;
	char buf[16];

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, NULL);
	ASSERT_NE_NULL(r) TH_LOG("bring_open: %s", strerror(errno));
	EXPECT_EQ(CAP, bring_capacity(r));
	EXPECT_EQ(0, push_range(r, 0, 3));
	bring_free(r);

	ASSERT_EQ(0, stat(t.path, &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(FILE_SIZE, st.st_size);

	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r) TH_LOG("reopen: %s", strerror(errno));
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m0", buf);
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m1", buf);
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m2", buf);
	EXPECT_EQ(-EAGAIN, next_str(r, buf, sizeof(buf), 0));
	bring_free(r);
	/* Nothing but the ring: no temporary file left beside it. */
	EXPECT_EQ(1, tmp_entries(&t));
	tmp_remove(&t);
}

TEST(capacity_zero_needs_an_existing_file)
{
	struct tmp t;

	ASSERT_EQ(0, tmp_make(&t));
	errno = 0;
	EXPECT_NULL(bring_open(t.path, 0, NULL));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, tmp_entries(&t));
	tmp_remove(&t);
}

TEST(bad_arguments_fail_with_einval)
{
	BRING_OPTS(bad_flags, .flags = 1U << 7);
	BRING_OPTS(bad_durability, .durability = 3);
	BRING_OPTS(long_name, .name = "a-name-of-thirty-two-bytes-long!");
	struct tmp t;

	ASSERT_EQ(0, tmp_make(&t));
	errno = 0;
	EXPECT_NULL(bring_open(NULL, CAP, NULL));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_NULL(bring_open(t.path, CAP, &bad_flags));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_NULL(bring_open(t.path, CAP, &bad_durability));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_NULL(bring_open(t.path, CAP, &long_name));
	EXPECT_EQ(ENAMETOOLONG, errno);
	errno = 0;
	EXPECT_NULL(bring_open(t.path, BRING_CAPACITY_MAX + 1, NULL));
	EXPECT_EQ(EINVAL, errno);
	/* None of them created anything. */
	EXPECT_EQ(0, tmp_entries(&t));
	tmp_remove(&t);
}

TEST(creation_options_are_kept_by_the_file)
{
	BRING_OPTS(create, .name = "kept", .max_msg = 100);
	BRING_OPTS(other, .name = "other", .max_msg = 50, .mode = 0666);
	struct tmp t;
	struct bring *r;
	struct stat st;
	static char big[101];

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, &create);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(-EMSGSIZE, bring_push(r, big, 101));
	bring_free(r);

	/* A capacity, name, max_msg or mode at reopen changes nothing. */
	r = bring_open(t.path, 16 * CAP, &other);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(CAP, bring_capacity(r));
	EXPECT_STREQ("kept", bring_name(r));
	EXPECT_EQ(100, bring_max_msg(r));
	EXPECT_EQ(0, bring_push(r, big, 100));
	EXPECT_EQ(-EMSGSIZE, bring_push(r, big, 101));
	bring_free(r);
	ASSERT_EQ(0, stat(t.path, &st));
	EXPECT_EQ(FILE_SIZE, st.st_size);
	EXPECT_EQ(0600, st.st_mode & 07777);
	tmp_remove(&t);
}

#define RACERS 8
#define RACE_ROUNDS 6

/* A child: wait for the start, open (or create) the ring, push once. */
static void __attribute__((noreturn)) racer(const char *path, int go_fd,
					    int round, int id)
{
	struct bring *r;
	char msg[32], c;

	CHILD_CHECK(read(go_fd, &c, 1) == 0);
	r = bring_open(path, CAP, NULL);
	CHILD_CHECK(r != NULL);
	snprintf(msg, sizeof(msg), "r%d c%d", round, id);
	CHILD_CHECK(push_str(r, msg) == 0);
	bring_free(r);
	_exit(0);
}

/*
 * RACERS processes open the same path at once: in even rounds the file
 * does not exist (they race to create it), in odd rounds it does (they
 * race to open it, one of them recovering it). Either way all of them
 * push into the one ring.
 */
TEST(racing_creators_share_one_ring)
{
	int round, i, go[2], status, seen[RACERS], r_no, c_no;
	pid_t pids[RACERS];
	struct bring *r;
	struct tmp t;
	char buf[32];

	ASSERT_EQ(0, tmp_make(&t));
	for (round = 0; round < RACE_ROUNDS; round++) {
		if (!(round & 1))
			unlink(t.path);
		ASSERT_EQ(0, pipe(go));
		for (i = 0; i < RACERS; i++) {
			pids[i] = fork_child();
			ASSERT_GE(pids[i], 0);
			if (!pids[i]) {
				close(go[1]);
				racer(t.path, go[0], round, i);
			}
		}
		close(go[0]);
		close(go[1]); /* go */
		for (i = 0; i < RACERS; i++) {
			ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
			EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
				TH_LOG("round %d: racer %d failed", round, i);
		}

		r = bring_open(t.path, 0, NULL);
		ASSERT_NE_NULL(r) TH_LOG("round %d: %s", round,
					 strerror(errno));
		memset(seen, 0, sizeof(seen));
		for (i = 0; i <= RACERS; i++) {
			if (take_str(r, buf, sizeof(buf), 0))
				break;
			ASSERT_EQ(2, sscanf(buf, "r%d c%d", &r_no, &c_no))
				TH_LOG("round %d: '%s'", round, buf);
			ASSERT_EQ(round, r_no);
			ASSERT_TRUE(c_no >= 0 && c_no < RACERS);
			seen[c_no]++;
		}
		EXPECT_EQ(RACERS, i) TH_LOG("round %d", round);
		for (i = 0; i < RACERS; i++)
			EXPECT_EQ(1, seen[i]) TH_LOG("round %d racer %d",
						     round, i);
		bring_free(r);
		/* One file, no losers' temporary files. */
		EXPECT_EQ(1, tmp_entries(&t)) TH_LOG("round %d", round);
	}
	tmp_remove(&t);
}

/*
 * bring_free() and put an inaccessible mapping where the ring was, so
 * that the library touching a freed ring's memory faults at once instead
 * of scribbling on whatever is mapped there next.
 */
static int free_and_guard(struct bring *r)
{
	void *map = r->map, *guard;
	size_t len = r->map_len;

	bring_free(r);
	guard = mmap(map, len, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	return guard == map ? 0 : -1;
}

/* Open, push to and free rings ring0..ring7 in @dir, in turn. */
static void __attribute__((noreturn)) rings_in_turn(const char *dir)
{
	struct bring *r;
	char path[160];
	int i;

	for (i = 0; i < 8; i++) {
		snprintf(path, sizeof(path), "%s/ring%d", dir, i);
		r = bring_open(path, CAP, NULL);
		CHILD_CHECK(r);
		CHILD_CHECK(!push_str(r, "x"));
		CHILD_CHECK(!free_and_guard(r));
	}
	_exit(0);
}

static void *open_push_free(void *arg)
{
	struct bring *r = bring_open(arg, CAP, NULL);

	if (!r || push_str(r, "from a thread") || free_and_guard(r))
		return arg;
	return NULL;
}

/* A thread opens, pushes to and frees a ring, then exits. */
static void __attribute__((noreturn)) ring_in_a_thread(const char *path)
{
	pthread_t th;
	void *ret = &ret;

	CHILD_CHECK(!pthread_create(&th, NULL, open_push_free, (void *)path));
	CHILD_CHECK(!pthread_join(th, &ret));
	CHILD_CHECK(!ret);
	_exit(0);
}

/*
 * Run @fn in a child, so that a crash still lets the test clean up.
 * Returns whether the child exited with status 0.
 */
static bool run_child(struct __test_metadata *_metadata,
		      void (*fn)(const char *), const char *arg)
{
	int status;
	pid_t pid;

	pid = fork_child();
	if (!pid)
		fn(arg);
	EXPECT_GE(pid, 0);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	EXPECT_FALSE(WIFSIGNALED(status))
		TH_LOG("killed by signal %d (%s)", WTERMSIG(status),
		       strsignal(WTERMSIG(status)));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

/*
 * A process that opens, uses and frees file rings in turn, or a thread
 * that does so and then exits, goes on running, and the library never
 * touches the memory of a ring it freed.
 */
TEST(rings_opened_and_freed_in_turn)
{
	struct bring *r;
	struct tmp t;
	char path[160];
	bool ok;
	int i;

	ASSERT_EQ(0, tmp_make(&t));
	ok = run_child(_metadata, rings_in_turn, t.dir);
	for (i = 0; ok && i < 8; i++) {
		snprintf(path, sizeof(path), "%s/ring%d", t.dir, i);
		r = bring_open(path, 0, NULL);
		EXPECT_NE_NULL(r) TH_LOG("ring %d: %s", i, strerror(errno));
		if (r)
			EXPECT_EQ(1, get_stats(r).msgs_in);
		bring_free(r);
	}
	tmp_remove(&t);
}

TEST(thread_that_freed_its_ring_exits_cleanly)
{
	struct tmp t;
	struct bring *r;
	char buf[32];

	ASSERT_EQ(0, tmp_make(&t));
	if (run_child(_metadata, ring_in_a_thread, t.path)) {
		r = bring_open(t.path, 0, NULL);
		EXPECT_NE_NULL(r);
		if (r) {
			EXPECT_EQ(0, take_str(r, buf, sizeof(buf), 0));
			EXPECT_STREQ("from a thread", buf);
		}
		bring_free(r);
	}
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* The same calls on a memory ring and on a file ring.                */

FIXTURE(api)
{
	struct tmp t;
	struct bring *r;
};

FIXTURE_VARIANT(api)
{
	bool file;
};

FIXTURE_VARIANT_ADD(api, memory)
{
	.file = false,
};

FIXTURE_VARIANT_ADD(api, file)
{
	.file = true,
};

static struct bring *api_ring(const FIXTURE_VARIANT(api) *variant,
			      const char *path, size_t capacity,
			      const struct bring_opts *opts)
{
	return variant->file ? bring_open(path, capacity, opts) :
			       bring_new(capacity, opts);
}

FIXTURE_SETUP(api)
{
	ASSERT_EQ(0, tmp_make(&self->t));
	self->r = api_ring(variant, self->t.path, CAP, NULL);
	ASSERT_NE_NULL(self->r) TH_LOG("%s", strerror(errno));
}

FIXTURE_TEARDOWN(api)
{
	bring_free(self->r);
	tmp_remove(&self->t);
}

TEST_F(api, next_returns_the_oldest_until_shifted)
{
	struct bring_msg first, again, msgs[4];
	struct bring_stats st;
	uint64_t t0;

	ASSERT_EQ(0, push_str(self->r, "one"));
	ASSERT_EQ(0, bring_push_timeout(self->r, "two", 3, 0));
	ASSERT_EQ(0, bring_next(self->r, &first));
	EXPECT_EQ(3, first.len);
	EXPECT_EQ(0, memcmp(first.data, "one", 3));
	ASSERT_EQ(0, bring_next(self->r, &again));
	EXPECT_EQ(first.seq, again.seq);
	EXPECT_EQ(first.data, again.data);
	EXPECT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(-ENODATA, bring_shift(self->r));

	ASSERT_EQ(1, bring_peek(self->r, msgs, 4, 0, 0));
	EXPECT_EQ(3, msgs[0].len);
	EXPECT_EQ(0, memcmp(msgs[0].data, "two", 3));
	EXPECT_GT(msgs[0].seq, first.seq);
	EXPECT_EQ(0, bring_shift(self->r));

	EXPECT_EQ(-EAGAIN, bring_next_timeout(self->r, &again, 0));
	t0 = now_ns();
	EXPECT_EQ(-ETIMEDOUT, bring_next_timeout(self->r, &again, 50));
	EXPECT_GE(now_ns() - t0, 45 * MS);
	EXPECT_EQ(-EAGAIN, bring_peek(self->r, msgs, 4, 0, 0));

	st = get_stats(self->r);
	EXPECT_EQ(2, st.msgs_in);
	EXPECT_EQ(6, st.bytes_in);
	EXPECT_EQ(2, st.msgs_out);
	EXPECT_EQ(0, st.used);
	EXPECT_EQ(1, st.readers);
	EXPECT_EQ(CAP, st.capacity);
	EXPECT_EQ(CAP - 16, st.max_msg);
	EXPECT_NE_NULL(bring_default_reader(self->r));
}

TEST_F(api, batch_reserve_commit_and_abort)
{
	struct bring_msg batch[3] = {
		{ .data = "a", .len = 1 },
		{ .data = "bb", .len = 2 },
		{ .data = "ccc", .len = 3 },
	};
	static const char *const want[] = { "a", "bb", "ccc", "hello", "z" };
	struct bring_resv resv, gone, big;
	struct bring_msg msgs[8];
	int i;

	ASSERT_EQ(3, bring_push_batch(self->r, batch, 3, 0));
	ASSERT_EQ(0, bring_reserve(self->r, 100, &resv, 0));
	EXPECT_EQ(100, resv.len);
	memcpy(resv.data, "hello", 5);
	EXPECT_EQ(-EINVAL, bring_commit(self->r, &resv, 101));
	EXPECT_EQ(0, bring_commit(self->r, &resv, 5));
	EXPECT_EQ(-EINVAL, bring_commit(self->r, &resv, 5));
	ASSERT_EQ(0, bring_reserve(self->r, 10, &gone, 0));
	EXPECT_EQ(0, bring_abort(self->r, &gone));
	EXPECT_EQ(-EINVAL, bring_abort(self->r, &gone));
	EXPECT_EQ(-EINVAL, bring_commit(self->r, &gone, 1));
	EXPECT_EQ(-EMSGSIZE,
		  bring_reserve(self->r, bring_max_msg(self->r) + 1, &big, 0));
	ASSERT_EQ(0, push_str(self->r, "z"));

	ASSERT_EQ(5, bring_peek(self->r, msgs, 8, 0, 0));
	for (i = 0; i < 5; i++) {
		EXPECT_EQ(strlen(want[i]), msgs[i].len) TH_LOG("msg %d", i);
		EXPECT_EQ(0, memcmp(msgs[i].data, want[i], msgs[i].len));
		if (i)
			EXPECT_GT(msgs[i].seq, msgs[i - 1].seq);
	}
	EXPECT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(5, get_stats(self->r).msgs_in);
	EXPECT_EQ(0, get_stats(self->r).used);
}

TEST_F(api, full_ring_fails_with_eagain_or_etimedout)
{
	static char big[1000];
	struct bring_msg msg;
	struct bring_resv resv;
	uint64_t t0;
	int i;

	/* 1016-byte records: four fill the 4096-byte ring. */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, bring_push_timeout(self->r, big, sizeof(big), 0));
	EXPECT_EQ(-EAGAIN, bring_push_timeout(self->r, big, sizeof(big), 0));
	EXPECT_EQ(-EAGAIN, bring_reserve(self->r, sizeof(big), &resv, 0));
	t0 = now_ns();
	EXPECT_EQ(-ETIMEDOUT,
		  bring_push_timeout(self->r, big, sizeof(big), 50));
	EXPECT_GE(now_ns() - t0, 45 * MS);
	/* A message too large for any ring fails at once, full or not. */
	EXPECT_EQ(-EMSGSIZE, bring_push(self->r, big,
					bring_max_msg(self->r) + 1));
	ASSERT_EQ(0, bring_next(self->r, &msg));
	ASSERT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(0, bring_push_timeout(self->r, big, sizeof(big), 0));
	EXPECT_EQ(CAP - 32, get_stats(self->r).used);
}

TEST_F(api, oversized_messages_fail_with_emsgsize)
{
	BRING_OPTS(opts, .max_msg = 100);
	static char buf[200];
	struct bring_msg batch[2] = {
		{ .data = buf, .len = 100 },
		{ .data = buf, .len = 101 },
	};
	struct bring_msg msg;
	struct tmp t;
	struct bring *r;

	ASSERT_EQ(0, tmp_make(&t));
	r = api_ring(variant, t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(100, bring_max_msg(r));
	EXPECT_EQ(-EMSGSIZE, bring_push(r, buf, 101));
	EXPECT_EQ(-EMSGSIZE, bring_push_batch(r, &batch[1], 1, 0));
	EXPECT_EQ(1, bring_push_batch(r, batch, 2, 0));
	EXPECT_EQ(0, bring_push(r, buf, 100));
	EXPECT_EQ(-EINVAL, bring_push(r, NULL, 1));
	EXPECT_EQ(0, bring_push(r, NULL, 0));
	EXPECT_EQ(3, get_stats(r).msgs_in);
	ASSERT_EQ(0, bring_next(r, &msg));
	EXPECT_EQ(100, msg.len);
	bring_free(r);
	tmp_remove(&t);
}

TEST_F(api, close_drains_then_fails_with_epipe)
{
	struct bring_msg batch[1] = { { .data = "b", .len = 1 } };
	struct bring_resv before, after;
	struct bring_msg msg;
	char buf[16];

	ASSERT_EQ(0, push_str(self->r, "x"));
	ASSERT_EQ(0, bring_reserve(self->r, 8, &before, 0));
	bring_close(self->r);
	bring_close(self->r);
	EXPECT_EQ(-EPIPE, push_str(self->r, "y"));
	EXPECT_EQ(-EPIPE, bring_push_timeout(self->r, "y", 1, 0));
	EXPECT_EQ(-EPIPE, bring_push_batch(self->r, batch, 1, 0));
	EXPECT_EQ(-EPIPE, bring_reserve(self->r, 8, &after, 0));
	memcpy(before.data, "reserved", 8);
	EXPECT_EQ(0, bring_commit(self->r, &before, 8));

	ASSERT_EQ(0, take_str(self->r, buf, sizeof(buf), 0));
	EXPECT_STREQ("x", buf);
	ASSERT_EQ(0, take_str(self->r, buf, sizeof(buf), 0));
	EXPECT_STREQ("reserved", buf);
	EXPECT_EQ(-EPIPE, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(-EPIPE, bring_next(self->r, &msg));
}

TEST_F(api, named_readers_open_close_and_remove)
{
	char name[BRING_NAME_MAX + 1];
	struct bring_reader *a, *b;
	char buf[16];

	ASSERT_EQ(0, push_range(self->r, 0, 2));
	a = bring_reader_open(self->r, "a");
	ASSERT_NE_NULL(a);
	errno = 0;
	EXPECT_NULL(bring_reader_open(self->r, "a"));
	EXPECT_EQ(EBUSY, errno);
	errno = 0;
	EXPECT_NULL(bring_reader_open(self->r, ""));
	EXPECT_EQ(EINVAL, errno);
	memset(name, 'n', BRING_NAME_MAX);
	name[BRING_NAME_MAX] = '\0';
	errno = 0;
	EXPECT_NULL(bring_reader_open(self->r, name));
	EXPECT_EQ(ENAMETOOLONG, errno);
	EXPECT_EQ(2, get_stats(self->r).readers);

	/* A new reader starts at the oldest message the ring holds. */
	ASSERT_EQ(0, reader_take(a, buf, sizeof(buf), 0));
	EXPECT_STREQ("m0", buf);
	ASSERT_EQ(0, reader_str(a, buf, sizeof(buf), 0));
	EXPECT_STREQ("m1", buf);
	EXPECT_EQ(-EBUSY, bring_reader_remove(self->r, "a"));
	bring_reader_close(a);
	/* Not shifted: delivered again. */
	a = bring_reader_open(self->r, "a");
	ASSERT_NE_NULL(a);
	ASSERT_EQ(0, reader_take(a, buf, sizeof(buf), 0));
	EXPECT_STREQ("m1", buf);
	EXPECT_EQ(-EAGAIN, reader_str(a, buf, sizeof(buf), 0));
	bring_reader_close(a);

	/* The default reader still has both. */
	ASSERT_EQ(0, take_str(self->r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m0", buf);

	b = bring_reader_open(self->r, "b");
	ASSERT_NE_NULL(b);
	ASSERT_EQ(0, reader_str(b, buf, sizeof(buf), 0));
	EXPECT_STREQ("m1", buf);
	bring_reader_close(b);

	EXPECT_EQ(0, bring_reader_remove(self->r, "a"));
	EXPECT_EQ(-ENOENT, bring_reader_remove(self->r, "a"));
	EXPECT_EQ(0, bring_reader_remove(self->r, "b"));
	EXPECT_EQ(-EINVAL, bring_reader_remove(self->r, NULL));
	EXPECT_EQ(1, get_stats(self->r).readers);

	/* Removing the default reader: bring_next() has none any more. */
	EXPECT_EQ(0, bring_reader_remove(self->r, BRING_DEFAULT_READER));
	EXPECT_EQ(-ENOENT, next_str(self->r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, get_stats(self->r).readers);
}

TEST_F(api, no_default_reader_means_enoent)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);
	struct bring_reader *rd;
	struct bring_msg msg;
	struct tmp t;
	struct bring *r;
	char buf[16];

	ASSERT_EQ(0, tmp_make(&t));
	r = api_ring(variant, t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(0, get_stats(r).readers);
	rd = bring_reader_open(r, "only");
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, push_str(r, "m"));
	EXPECT_EQ(-ENOENT, bring_next(r, &msg));
	EXPECT_EQ(-ENOENT, bring_next_timeout(r, &msg, 0));
	EXPECT_EQ(-ENOENT, bring_peek(r, &msg, 1, 0, 0));
	EXPECT_EQ(-ENOENT, bring_shift(r));
	EXPECT_NULL(bring_default_reader(r));
	ASSERT_EQ(0, reader_take(rd, buf, sizeof(buf), 0));
	EXPECT_STREQ("m", buf);
	bring_reader_close(rd);
	bring_free(r);
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* Readers persist their place.                                       */

TEST(default_reader_is_persisted)
{
	struct tmp t;
	struct bring *r;
	char buf[16];

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_range(r, 0, 3));
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m0", buf);
	ASSERT_EQ(0, next_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m1", buf);
	bring_free(r);

	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	/* m1 was returned but not shifted: it comes again. */
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m1", buf);
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m2", buf);
	EXPECT_EQ(-EAGAIN, next_str(r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, get_stats(r).used);
	bring_free(r);
	tmp_remove(&t);
}

TEST(removed_default_reader_stays_removed)
{
	struct tmp t;
	struct bring *r;
	char buf[16];

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_range(r, 0, 1));
	EXPECT_EQ(0, bring_reader_remove(r, BRING_DEFAULT_READER));
	bring_free(r);
	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(-ENOENT, next_str(r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, get_stats(r).readers);
	bring_free(r);
	tmp_remove(&t);
}

/* A ring without the default reader, with named readers "a" and "b". */
static struct bring *two_reader_ring(const char *path)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);
	struct bring *r = bring_open(path, CAP, &opts);

	if (!r)
		return NULL;
	bring_reader_close(bring_reader_open(r, "a"));
	bring_reader_close(bring_reader_open(r, "b"));
	return r;
}

#define A_MSGS 6	/* messages m0..m5 for reader "a" */

/*
 * A two_reader_ring() at @path with A_MSGS messages, of which "a" takes
 * @taken (next and shift) and then reads one more without shifting it;
 * then the ring is freed again.
 */
static void a_takes_and_reads_one(struct __test_metadata *_metadata,
				  const char *path, int taken)
{
	struct bring_reader *a;
	struct bring *r = two_reader_ring(path);
	char buf[16], want[16];
	int i;

	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_range(r, 0, A_MSGS));
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	for (i = 0; i <= taken; i++) {
		snprintf(want, sizeof(want), "m%d", i);
		if (i < taken)
			ASSERT_EQ(0, reader_take(a, buf, sizeof(buf), 0));
		else
			ASSERT_EQ(0, reader_str(a, buf, sizeof(buf), 0));
		EXPECT_STREQ(want, buf);
	}
	bring_reader_close(a);
	bring_free(r);
}

/* Reader "a" of @r takes m<from>..m5, and then there is no more. */
static void a_takes_the_rest(struct __test_metadata *_metadata, struct bring *r,
			     int from)
{
	struct bring_reader *a = bring_reader_open(r, "a");
	char buf[16], want[16];
	int i;

	ASSERT_NE_NULL(a) TH_LOG("%s", strerror(errno));
	for (i = from; i < A_MSGS; i++) {
		snprintf(want, sizeof(want), "m%d", i);
		ASSERT_EQ(0, reader_take(a, buf, sizeof(buf), 0));
		EXPECT_STREQ(want, buf);
	}
	EXPECT_EQ(-EAGAIN, reader_str(a, buf, sizeof(buf), 0));
	bring_reader_close(a);
}

TEST(named_reader_resumes_after_reopen)
{
	struct bring_reader *a;
	struct tmp t;
	struct bring *r;
	char buf[16];

	ASSERT_EQ(0, tmp_make(&t));
	a_takes_and_reads_one(_metadata, t.path, 2);

	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(2, get_stats(r).readers);
	a_takes_the_rest(_metadata, r, 2);
	/* "b" never read: it still starts at the first message. */
	a = bring_reader_open(r, "b");
	ASSERT_NE_NULL(a);
	ASSERT_EQ(0, reader_str(a, buf, sizeof(buf), 0));
	EXPECT_STREQ("m0", buf);
	bring_reader_close(a);
	bring_free(r);
	tmp_remove(&t);
}

TEST(named_reader_resumes_in_another_process)
{
	struct bring_reader *a;
	struct tmp t;
	struct bring *r;
	char buf[16];
	int status;
	pid_t pid;

	ASSERT_EQ(0, tmp_make(&t));
	a_takes_and_reads_one(_metadata, t.path, 1);

	pid = fork_child();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* Takes m1 and m2, then dies without closing anything. */
		r = bring_open(t.path, 0, NULL);
		CHILD_CHECK(r);
		a = bring_reader_open(r, "a");
		CHILD_CHECK(a);
		CHILD_CHECK(!reader_take(a, buf, sizeof(buf), 0));
		CHILD_CHECK(!strcmp(buf, "m1"));
		CHILD_CHECK(!reader_take(a, buf, sizeof(buf), 0));
		CHILD_CHECK(!strcmp(buf, "m2"));
		CHILD_CHECK(!reader_str(a, buf, sizeof(buf), 0));
		CHILD_CHECK(!strcmp(buf, "m3"));
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));

	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	a_takes_the_rest(_metadata, r, 3);
	bring_free(r);
	tmp_remove(&t);
}

TEST(reader_held_by_another_process_is_busy)
{
	struct bring_reader *a;
	int ready[2];
	struct tmp t;
	struct bring *r;
	char buf[16], c;
	pid_t pid;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_range(r, 0, 2));
	bring_free(r);
	ASSERT_EQ(0, pipe(ready));

	pid = fork_child();
	ASSERT_GE(pid, 0);
	if (!pid) {
		r = bring_open(t.path, 0, NULL);
		CHILD_CHECK(r);
		CHILD_CHECK(bring_reader_open(r, "a"));
		CHILD_CHECK(!next_str(r, buf, sizeof(buf), 0));
		CHILD_CHECK(write(ready[1], "", 1) == 1);
		pause();
		_exit(0);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	errno = 0;
	EXPECT_NULL(bring_reader_open(r, "a"));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-EBUSY, next_str(r, buf, sizeof(buf), 0));
	EXPECT_EQ(-EBUSY, bring_reader_remove(r, "a"));

	ASSERT_EQ(0, kill_child(pid, NULL));
	/* Its holder is dead: both can be taken over. */
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, reader_str(a, buf, sizeof(buf), 0));
	EXPECT_STREQ("m0", buf);
	bring_reader_close(a);
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m0", buf);
	bring_free(r);
	close(ready[0]);
	close(ready[1]);
	tmp_remove(&t);
}

TEST(persisted_reader_holds_space_until_it_reads)
{
	static char big[1000];
	struct bring_msg msg;
	struct bring_reader *a, *b;
	struct tmp t;
	struct bring *r;
	int i;

	ASSERT_EQ(0, tmp_make(&t));
	r = two_reader_ring(t.path);
	ASSERT_NE_NULL(r);
	bring_free(r);

	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	/* "a" reads everything; "b", closed, holds it all. */
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, bring_push_timeout(r, big, sizeof(big), 0));
		ASSERT_EQ(0, bring_reader_next(a, &msg, 0));
		ASSERT_EQ(0, bring_reader_shift(a));
	}
	EXPECT_EQ(-EAGAIN, bring_push_timeout(r, big, sizeof(big), 0));
	bring_reader_close(a);
	bring_free(r);

	/* Still so after a reopen, which recovers the file. */
	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(-EAGAIN, bring_push_timeout(r, big, sizeof(big), 0));
	EXPECT_EQ(4 * 1016, get_stats(r).used);
	b = bring_reader_open(r, "b");
	ASSERT_NE_NULL(b);
	ASSERT_EQ(0, bring_reader_next(b, &msg, 0));
	EXPECT_EQ(sizeof(big), msg.len);
	ASSERT_EQ(0, bring_reader_shift(b));
	EXPECT_EQ(0, bring_push_timeout(r, big, sizeof(big), 0));
	bring_reader_close(b);
	bring_free(r);
	tmp_remove(&t);
}

TEST(removed_reader_stays_removed)
{
	static char big[1000];
	struct bring_reader *a;
	struct tmp t;
	struct bring *r;
	int i;

	ASSERT_EQ(0, tmp_make(&t));
	r = two_reader_ring(t.path);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(0, bring_reader_remove(r, "b"));
	EXPECT_EQ(1, get_stats(r).readers);
	bring_free(r);

	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(1, get_stats(r).readers);
	EXPECT_EQ(-ENOENT, bring_reader_remove(r, "b"));
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	/* Only "a" holds space: it reads, so the ring never fills. */
	for (i = 0; i < 20; i++) {
		struct bring_msg msg;

		ASSERT_EQ(0, bring_push_timeout(r, big, sizeof(big), 0))
			TH_LOG("push %d", i);
		ASSERT_EQ(0, bring_reader_next(a, &msg, 0));
		ASSERT_EQ(0, bring_reader_shift(a));
	}
	bring_reader_close(a);
	bring_free(r);
	tmp_remove(&t);
}

#define PIPE_MSGS 3000
#define PIPE_LEN 100

/*
 * A ring without the default reader: a process that only writes and one
 * that reads with a named reader pass far more than the capacity through
 * it; nothing that nobody reads holds space.
 */
TEST_TIMEOUT(writer_process_and_reader_process_never_fill_up, 60)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);
	pid_t writer, reader;
	struct tmp t;
	struct bring *r;
	int status;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	bring_reader_close(bring_reader_open(r, "logs"));
	bring_free(r);

	writer = fork_child();
	ASSERT_GE(writer, 0);
	if (!writer) {
		char buf[PIPE_LEN];
		struct bring_msg msg;
		int i;

		r = bring_open(t.path, 0, NULL);
		CHILD_CHECK(r);
		for (i = 0; i < PIPE_MSGS; i++) {
			memset(buf, i & 0xff, sizeof(buf));
			memcpy(buf, &i, sizeof(i));
			CHILD_CHECK(!bring_push_timeout(r, buf, sizeof(buf),
							WAIT_MS));
		}
		CHILD_CHECK(bring_next_timeout(r, &msg, 0) == -ENOENT);
		bring_free(r);
		_exit(0);
	}
	reader = fork_child();
	ASSERT_GE(reader, 0);
	if (!reader) {
		struct bring_reader *rd;
		struct bring_msg msg;
		int i, got;

		r = bring_open(t.path, 0, NULL);
		CHILD_CHECK(r);
		rd = bring_reader_open(r, "logs");
		CHILD_CHECK(rd);
		for (i = 0; i < PIPE_MSGS; i++) {
			CHILD_CHECK(!bring_reader_next(rd, &msg, WAIT_MS));
			CHILD_CHECK(msg.len == PIPE_LEN);
			memcpy(&got, msg.data, sizeof(got));
			CHILD_CHECK(got == i);
			CHILD_CHECK(((const unsigned char *)msg.data)[99] ==
				    (i & 0xff));
			CHILD_CHECK(!bring_reader_shift(rd));
		}
		bring_reader_close(rd);
		bring_free(r);
		_exit(0);
	}
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	ASSERT_EQ(reader, waitpid(reader, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(PIPE_MSGS, get_stats(r).msgs_in);
	EXPECT_EQ(0, get_stats(r).used);
	bring_free(r);
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* Durability.                                                        */

/* Wait up to @ms for stats.durable >= @end. */
static bool wait_durable(const struct bring *r, uint64_t end, int ms)
{
	uint64_t deadline = now_ns() + (uint64_t)ms * MS;

	while (get_stats(r).durable < end) {
		if (now_ns() > deadline)
			return false;
		usleep(1000);
	}
	return true;
}

/* End of the @n-th record of @len bytes in a ring written from 0. */
static uint64_t end_of(int n, size_t len)
{
	return (uint64_t)n * rec_footprint_len(len);
}

TEST(durability_none_never_flushes)
{
	struct tmp t;
	struct bring *r;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_range(r, 0, 10));
	usleep(50000);
	EXPECT_EQ(0, get_stats(r).flushes);
	bring_free(r);
	tmp_remove(&t);
}

TEST(durability_interval_flushes_every_flush_ms)
{
	BRING_OPTS(opts, .durability = BRING_DURABLE_INTERVAL, .flush_ms = 20);
	uint64_t flushes = 0, t0, took;
	struct bring_stats st;
	struct tmp t;
	struct bring *r;
	int i;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	for (i = 1; i <= 5; i++) {
		ASSERT_EQ(0, push_str(r, "12345678"));
		t0 = now_ns();
		ASSERT_TRUE(wait_durable(r, end_of(i, 8), WAIT_MS))
			TH_LOG("push %d never became durable", i);
		took = now_ns() - t0;
		/* Every flush_ms, not at once and not much later. */
		EXPECT_LT(took, 1000 * MS);
		st = get_stats(r);
		EXPECT_EQ(end_of(i, 8), st.durable);
		EXPECT_GT(st.flushes, flushes);
		flushes = st.flushes;
	}
	bring_free(r);
	tmp_remove(&t);
}

/*
 * durability and flush_ms of the process that opens an existing file
 * apply to it (bring_open() says so).
 */
TEST(durability_interval_of_the_opener_uses_its_flush_ms)
{
	BRING_OPTS(create, .durability = BRING_DURABLE_INTERVAL,
		   .flush_ms = 60000);
	BRING_OPTS(opts, .durability = BRING_DURABLE_INTERVAL, .flush_ms = 20);
	struct tmp t;
	struct bring *r;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, &create);
	ASSERT_NE_NULL(r);
	bring_free(r);

	r = bring_open(t.path, 0, &opts);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_str(r, "12345678"));
	EXPECT_TRUE(wait_durable(r, end_of(1, 8), 2000))
		TH_LOG("not flushed within 2 s with flush_ms 20 (durable %llu)",
		       (unsigned long long)get_stats(r).durable);
	bring_free(r);
	tmp_remove(&t);
}

TEST(durability_always_is_durable_when_push_returns)
{
	BRING_OPTS(opts, .durability = BRING_DURABLE_ALWAYS);
	struct bring_msg batch[2] = {
		{ .data = "12345678", .len = 8 },
		{ .data = "12345678", .len = 8 },
	};
	struct bring_resv resv;
	struct tmp t;
	struct bring *r;
	int i;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	for (i = 1; i <= 5; i++) {
		ASSERT_EQ(0, push_str(r, "12345678"));
		EXPECT_GE(get_stats(r).durable, end_of(i, 8))
			TH_LOG("push %d", i);
	}
	EXPECT_GE(get_stats(r).flushes, 1);
	ASSERT_EQ(2, bring_push_batch(r, batch, 2, 0));
	EXPECT_GE(get_stats(r).durable, end_of(7, 8));
	ASSERT_EQ(0, bring_reserve(r, 8, &resv, 0));
	memcpy(resv.data, "12345678", 8);
	ASSERT_EQ(0, bring_commit(r, &resv, 8));
	EXPECT_GE(get_stats(r).durable, end_of(8, 8));
	bring_free(r);

	/* The durability was stored: an opener without options gets it. */
	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_str(r, "12345678"));
	EXPECT_GE(get_stats(r).durable, end_of(9, 8));
	bring_free(r);
	tmp_remove(&t);
}

/*
 * A reservation made before a flush and committed after it is not
 * covered by that flush: the commit must flush again.
 */
TEST(durability_always_flushes_a_commit_made_after_the_last_flush)
{
	BRING_OPTS(opts, .durability = BRING_DURABLE_ALWAYS);
	struct bring_resv resv;
	uint64_t flushes;
	struct tmp t;
	struct bring *r;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, bring_reserve(r, 8, &resv, 0));
	ASSERT_EQ(0, push_str(r, "pushed"));
	flushes = get_stats(r).flushes;
	EXPECT_GE(flushes, 1);
	memcpy(resv.data, "reserved", 8);
	ASSERT_EQ(0, bring_commit(r, &resv, 8));
	EXPECT_GT(get_stats(r).flushes, flushes)
		TH_LOG("the commit returned without a flush after it");
	bring_free(r);
	tmp_remove(&t);
}

#define GROUP_THREADS 4
#define GROUP_PUSHES 200

struct pusher {
	struct bring *r;
	int pushes;
	int err;
};

static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	int i;

	for (i = 0; i < p->pushes && !p->err; i++)
		p->err = push_str(p->r, "12345678");
	return NULL;
}

/* GROUP_THREADS threads push @pushes messages each: 0 or the first error. */
static int run_pushers(struct bring *r, int pushes)
{
	struct pusher p[GROUP_THREADS];
	pthread_t th[GROUP_THREADS];
	int i, n, err = 0;

	for (n = 0; n < GROUP_THREADS; n++) {
		p[n] = (struct pusher){ .r = r, .pushes = pushes };
		err = -pthread_create(&th[n], NULL, pusher_main, &p[n]);
		if (err)
			break;
	}
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		err = err ?: p[i].err;
	}
	return err;
}

/* A durability "always" ring without readers that holds @cap bytes. */
static struct bring *open_always(struct tmp *t, size_t cap)
{
	BRING_OPTS(opts, .durability = BRING_DURABLE_ALWAYS);
	struct bring *r;

	if (tmp_make(t))
		return NULL;
	r = bring_open(t->path, cap, &opts);
	if (r && bring_reader_remove(r, BRING_DEFAULT_READER)) {
		bring_free(r);
		r = NULL;
	}
	if (!r)
		tmp_remove(t);
	return r;
}

TEST_TIMEOUT(durability_always_groups_concurrent_commits, 120)
{
	struct bring_msg msg;
	struct bring_stats st;
	struct tmp t;
	struct bring *r = open_always(&t, 1 << 16);

	ASSERT_NE_NULL(r);
	EXPECT_EQ(0, run_pushers(r, GROUP_PUSHES));
	st = get_stats(r);
	EXPECT_EQ(GROUP_THREADS * GROUP_PUSHES, st.msgs_in);
	EXPECT_GE(st.durable, end_of(GROUP_THREADS * GROUP_PUSHES, 8));
	EXPECT_GE(st.flushes, 1);
	EXPECT_LT(st.flushes, st.msgs_in) TH_LOG("no commit was grouped");
	TH_LOG("%llu pushes, %llu flushes", (unsigned long long)st.msgs_in,
	       (unsigned long long)st.flushes);
	EXPECT_EQ(-ENOENT, bring_next_timeout(r, &msg, 0));
	bring_free(r);
	tmp_remove(&t);
}

/*
 * Each writer has one message in flight, so a flusher that started at
 * once would cover the one or two writers that are back already; it
 * waits for the batch instead (up to half a flush). Four writers without
 * that pause got 2.3 messages per flush here, with it 3.9.
 */
#define BATCH_FLUSH_MIN_US 50

TEST_TIMEOUT(durability_always_waits_for_the_batch_to_fill, 120)
{
	struct bring_stats st;
	struct tmp t;
	struct bring *r = open_always(&t, 1 << 16);
	uint64_t t0, flush_us;

	ASSERT_NE_NULL(r);
	/*
	 * How full a batch gets is timing: sanitized pushers are too slow
	 * to fill one within the pause (CI's TSan leg failed on it once).
	 */
	if (getenv("BRING_SANITIZED")) {
		bring_free(r);
		tmp_remove(&t);
		SKIP(return, "batch filling is timing: the unsanitized run checks it");
	}
	/* The pause is half a flush: with flushes of a few µs, none. */
	t0 = now_ns();
	ASSERT_EQ(0, push_str(r, "12345678"));
	flush_us = (now_ns() - t0) / 1000;
	if (flush_us < BATCH_FLUSH_MIN_US) {
		bring_free(r);
		tmp_remove(&t);
		SKIP(return, "a flush takes %llu us in /tmp: nothing to batch",
		     (unsigned long long)flush_us);
	}
	EXPECT_EQ(0, run_pushers(r, GROUP_PUSHES));
	st = get_stats(r);
	ASSERT_EQ(GROUP_THREADS * GROUP_PUSHES + 1, st.msgs_in);
	/* At least three messages per flush (without the pause: two). */
	EXPECT_LE(3 * st.flushes, st.msgs_in)
		TH_LOG("%llu pushes took %llu flushes: batches did not fill",
		       (unsigned long long)st.msgs_in,
		       (unsigned long long)st.flushes);
	bring_free(r);
	tmp_remove(&t);
}

#define WAKE_ROUNDS 40
#define WAKE_PUSHES 300

/*
 * A writer that needs the next flush and finds the flush lock taken
 * sleeps on flush_seq. The flusher must wake it after dropping the
 * lock: woken before, it finds the lock still held, sleeps again and
 * only its 100 ms poll brings it back (about one push in 400 here when
 * the wake came first). The library counts polls that ended with the
 * lock free or the record covered: there must be none.
 */
TEST_TIMEOUT(durability_always_wakes_writers_waiting_for_the_next_flush, 300)
{
	unsigned long missed;
	struct tmp t;
	/* No reader: the ring holds every message of every round. */
	struct bring *r = open_always(&t, 1 << 22);
	int round;

	ASSERT_NE_NULL(r);
	missed = __atomic_load_n(&bring__flush_missed_wakes, __ATOMIC_RELAXED);
	for (round = 0; round < WAKE_ROUNDS; round++)
		EXPECT_EQ(0, run_pushers(r, WAKE_PUSHES));
	EXPECT_EQ(missed, __atomic_load_n(&bring__flush_missed_wakes,
					  __ATOMIC_RELAXED))
		TH_LOG("writers waited for their poll timeout, not a wake-up");
	EXPECT_EQ(WAKE_ROUNDS * GROUP_THREADS * WAKE_PUSHES,
		  get_stats(r).msgs_in);
	bring_free(r);
	tmp_remove(&t);
}

#define LONE_PUSHES 20
#define LONE_PUSH_MAX_MS 500

/*
 * The batch a flusher waits for is the size of the last one. When the
 * crowd stops, the lone writer left pays one bounded pause (at most
 * 1 ms), then its batches are of one and nobody waits: no push takes
 * anywhere near LONE_PUSH_MAX_MS, which only a wait for writers that
 * never come would reach.
 */
TEST_TIMEOUT(durability_always_lone_writer_is_not_held_for_a_crowd, 120)
{
	uint64_t t0, took, worst = 0;
	struct tmp t;
	struct bring *r = open_always(&t, 1 << 16);
	int i;

	ASSERT_NE_NULL(r);
	EXPECT_EQ(0, run_pushers(r, GROUP_PUSHES));
	for (i = 0; i < LONE_PUSHES; i++) {
		t0 = now_ns();
		ASSERT_EQ(0, push_str(r, "12345678"));
		took = now_ns() - t0;
		worst = took > worst ? took : worst;
	}
	EXPECT_LT(worst, LONE_PUSH_MAX_MS * MS)
		TH_LOG("a lone push took %llu ms", (unsigned long long)(worst / MS));
	EXPECT_GE(get_stats(r).durable,
		  end_of(GROUP_THREADS * GROUP_PUSHES + LONE_PUSHES, 8));
	bring_free(r);
	tmp_remove(&t);
}

#define LONE_COMMITS 20

/*
 * Group commit costs a lone writer nothing: each of its commits (a push,
 * a batch, a reservation's commit) is one flush, one fdatasync(), with
 * no pause for a batch that cannot come.
 */
TEST(durability_always_lone_writer_flushes_once_per_commit)
{
	struct bring_msg batch[16];
	struct bring_resv resv;
	uint64_t flushes;
	struct tmp t;
	struct bring *r = open_always(&t, 1 << 16);
	int i;

	ASSERT_NE_NULL(r);
	for (i = 0; i < 16; i++)
		batch[i] = (struct bring_msg){ .data = "12345678", .len = 8 };
	flushes = get_stats(r).flushes;
	for (i = 1; i <= LONE_COMMITS; i++) {
		ASSERT_EQ(0, push_str(r, "12345678"));
		EXPECT_EQ(flushes + i, get_stats(r).flushes)
			TH_LOG("push %d", i);
	}
	ASSERT_EQ(16, bring_push_batch(r, batch, 16, 0));
	EXPECT_EQ(flushes + LONE_COMMITS + 1, get_stats(r).flushes)
		TH_LOG("a batch of 16 is one commit, one flush");
	ASSERT_EQ(0, bring_reserve(r, 8, &resv, 0));
	memcpy(resv.data, "12345678", 8);
	ASSERT_EQ(0, bring_commit(r, &resv, 8));
	EXPECT_EQ(flushes + LONE_COMMITS + 2, get_stats(r).flushes);
	EXPECT_GE(get_stats(r).durable, end_of(LONE_COMMITS + 17, 8));
	bring_free(r);
	tmp_remove(&t);
}

#define SHARE_WRITERS 8

struct sharer {
	struct bring *r;
	int err;
};

static void *sharer_main(void *arg)
{
	struct sharer *s = arg;

	s->err = push_str(s->r, "12345678");
	return NULL;
}

/*
 * Writers that commit while a flush runs all join the next flush: one
 * fdatasync() for all of them, whatever order they wake in. The test is
 * the flusher: it holds flush_lock while SHARE_WRITERS threads commit
 * (each counts itself in sync_asked after its commit), then ends "its
 * flush" as flush_unlock() does. Exactly one flush must follow.
 */
TEST_TIMEOUT(durability_always_writers_arriving_during_a_flush_share_the_next,
	     60)
{
	struct sharer s[SHARE_WRITERS];
	pthread_t th[SHARE_WRITERS];
	uint64_t asked, flushes, t0;
	struct bring_stats st;
	struct bring_hdr *h;
	struct tmp t;
	struct bring *r = open_always(&t, 1 << 16);
	int i, n;

	ASSERT_NE_NULL(r);
	h = r->hdr;
	ASSERT_EQ(0, push_str(r, "12345678"));
	flushes = get_stats(r).flushes;
	asked = __atomic_load_n(&h->sync_asked, __ATOMIC_ACQUIRE);
	ASSERT_EQ(0, pthread_mutex_lock(&h->flush_lock));
	for (n = 0; n < SHARE_WRITERS; n++) {
		s[n] = (struct sharer){ .r = r };
		if (pthread_create(&th[n], NULL, sharer_main, &s[n]))
			break;
	}
	t0 = now_ns();
	while (__atomic_load_n(&h->sync_asked, __ATOMIC_ACQUIRE) - asked <
		       (uint64_t)n &&
	       now_ns() - t0 < WAIT_MS * MS)
		usleep(1000);
	EXPECT_EQ(asked + n, __atomic_load_n(&h->sync_asked, __ATOMIC_ACQUIRE))
		TH_LOG("not every writer committed within %d ms", WAIT_MS);
	EXPECT_EQ(flushes, get_stats(r).flushes)
		TH_LOG("a writer flushed while the flush lock was held");
	pthread_mutex_unlock(&h->flush_lock);
	evc_signal(&h->flush_seq);
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, s[i].err);
	}
	ASSERT_EQ(SHARE_WRITERS, n);
	st = get_stats(r);
	EXPECT_EQ(flushes + 1, st.flushes)
		TH_LOG("%d writers that committed during one flush took %llu flushes",
		       n, (unsigned long long)(st.flushes - flushes));
	EXPECT_GE(st.durable, end_of(1 + SHARE_WRITERS, 8));
	bring_free(r);
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* Writer threads: BRING_INTENTS of them at a time.                   */

struct holder {
	struct bring *r;
	pthread_barrier_t *start; /* NULL: push at once */
	pthread_barrier_t *pushed;
	pthread_barrier_t *release;
	int err;
};

/* Push once (taking an intent slot), then hold the slot until released. */
static void *holder_main(void *arg)
{
	struct holder *h = arg;

	if (h->start)
		pthread_barrier_wait(h->start);
	h->err = push_str(h->r, "1234567");
	pthread_barrier_wait(h->pushed);
	pthread_barrier_wait(h->release);
	return NULL;
}

/*
 * Each writer thread of a file ring holds one of BRING_INTENTS claim
 * intents (crash repair needs to know every claim in flight). One thread
 * more gets -EUSERS, but only once its message could go in: a full ring
 * still says -EAGAIN and a closed one -EPIPE. A thread that exits gives
 * its slot back.
 */
TEST_TIMEOUT(writer_thread_past_the_intent_slots_gets_eusers, 60)
{
	pthread_barrier_t pushed, release;
	struct holder h[BRING_INTENTS];
	pthread_t th[BRING_INTENTS];
	char big[3000] = { 0 };
	struct tmp t;
	struct bring *r;
	int i;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, pthread_barrier_init(&pushed, NULL, BRING_INTENTS + 1));
	ASSERT_EQ(0, pthread_barrier_init(&release, NULL, BRING_INTENTS + 1));
	for (i = 0; i < BRING_INTENTS; i++) {
		h[i] = (struct holder){ .r = r, .pushed = &pushed,
					.release = &release };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, holder_main, &h[i]));
	}
	pthread_barrier_wait(&pushed);
	for (i = 0; i < BRING_INTENTS; i++)
		ASSERT_EQ(0, h[i].err) TH_LOG("holder %d", i);

	/* 64 records of 24 bytes are in: 3000 more bytes do not fit. */
	EXPECT_EQ(-EAGAIN, bring_push_timeout(r, big, sizeof(big), 0));
	EXPECT_EQ(-EUSERS, bring_push_timeout(r, "x", 1, 0));
	EXPECT_EQ(-EUSERS, bring_push_timeout(r, "x", 1, 100));

	pthread_barrier_wait(&release);
	for (i = 0; i < BRING_INTENTS; i++)
		pthread_join(th[i], NULL);
	/* The holders exited: their slots are free again. */
	EXPECT_EQ(0, bring_push_timeout(r, "x", 1, 0));
	bring_close(r);
	EXPECT_EQ(-EPIPE, bring_push_timeout(r, "x", 1, 0));
	EXPECT_EQ(BRING_INTENTS + 1, get_stats(r).msgs_in);
	pthread_barrier_destroy(&pushed);
	pthread_barrier_destroy(&release);
	bring_free(r);
	tmp_remove(&t);
}

/*
 * The threads of one process share the lock descriptor, whose lock does
 * not conflict with itself: BRING_INTENTS threads that all take their
 * first slot at the same moment must still get one each, or a thread
 * more would find a slot free.
 */
TEST_TIMEOUT(writer_threads_starting_together_never_share_a_slot, 120)
{
	pthread_barrier_t start, pushed, release;
	struct holder h[BRING_INTENTS];
	pthread_t th[BRING_INTENTS];
	struct bring *r;
	struct tmp t;
	int round, i;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, 1 << 20, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, pthread_barrier_init(&start, NULL, BRING_INTENTS));
	ASSERT_EQ(0, pthread_barrier_init(&pushed, NULL, BRING_INTENTS + 1));
	ASSERT_EQ(0, pthread_barrier_init(&release, NULL, BRING_INTENTS + 1));
	for (round = 0; round < 20; round++) {
		for (i = 0; i < BRING_INTENTS; i++) {
			h[i] = (struct holder){ .r = r, .start = &start,
						.pushed = &pushed,
						.release = &release };
			ASSERT_EQ(0, pthread_create(&th[i], NULL, holder_main,
						    &h[i]));
		}
		pthread_barrier_wait(&pushed);
		for (i = 0; i < BRING_INTENTS; i++)
			ASSERT_EQ(0, h[i].err) TH_LOG("round %d holder %d",
						      round, i);
		ASSERT_EQ(-EUSERS, bring_push_timeout(r, "x", 1, 0))
			TH_LOG("round %d: a slot was shared", round);
		pthread_barrier_wait(&release);
		for (i = 0; i < BRING_INTENTS; i++)
			pthread_join(th[i], NULL);
	}
	EXPECT_EQ(20 * BRING_INTENTS, get_stats(r).msgs_in);
	pthread_barrier_destroy(&start);
	pthread_barrier_destroy(&pushed);
	pthread_barrier_destroy(&release);
	bring_free(r);
	tmp_remove(&t);
}

TEST(failed_flush_poisons_the_ring)
{
	BRING_OPTS(opts, .durability = BRING_DURABLE_ALWAYS);
	struct bring_msg batch[1] = { { .data = "b", .len = 1 } };
	struct bring_resv resv, early;
	uint64_t flushes, durable;
	struct bring *other;
	struct tmp t;
	struct bring *r;
	int i;

	ASSERT_EQ(0, tmp_make(&t));
	capture_start();
	r = bring_open(t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_str(r, "12345678"));
	ASSERT_EQ(0, bring_reserve(r, 8, &early, 0));
	durable = get_stats(r).durable;

	__atomic_store_n(&bring__fault_flush, 1, __ATOMIC_RELAXED);
	EXPECT_EQ(-EIO, push_str(r, "12345678"));
	EXPECT_EQ(durable, get_stats(r).durable);
	EXPECT_NE_NULL(strstr(printed, "poisoned"));
	__atomic_store_n(&bring__fault_flush, 0, __ATOMIC_RELAXED);
	flushes = get_stats(r).flushes;

	/* Never retried, never a success again. */
	for (i = 0; i < 3; i++)
		EXPECT_EQ(-EIO, push_str(r, "12345678"));
	EXPECT_EQ(-EIO, bring_push_timeout(r, "x", 1, 0));
	EXPECT_EQ(-EIO, bring_push_batch(r, batch, 1, 0));
	EXPECT_EQ(-EIO, bring_reserve(r, 8, &resv, 0));
	memcpy(early.data, "reserved", 8);
	EXPECT_EQ(-EIO, bring_commit(r, &early, 8));
	EXPECT_EQ(flushes, get_stats(r).flushes);
	EXPECT_EQ(durable, get_stats(r).durable);

	/* Another handle on the open file sees the same dead ring. */
	other = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(other);
	EXPECT_EQ(-EIO, push_str(other, "12345678"));
	bring_free(other);
	EXPECT_EQ(-EIO, push_str(r, "12345678"));
	bring_free(r);
	bring_set_print(NULL);
	tmp_remove(&t);
}

TEST(failed_interval_flush_poisons_the_ring)
{
	BRING_OPTS(opts, .durability = BRING_DURABLE_INTERVAL, .flush_ms = 10);
	uint64_t flushes, deadline;
	struct tmp t;
	struct bring *r;

	ASSERT_EQ(0, tmp_make(&t));
	capture_start();
	r = bring_open(t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_str(r, "12345678"));
	ASSERT_TRUE(wait_durable(r, end_of(1, 8), WAIT_MS));

	__atomic_store_n(&bring__fault_flush, 1, __ATOMIC_RELAXED);
	flushes = get_stats(r).flushes;
	/* With "interval" the push itself does not flush. */
	ASSERT_EQ(0, push_str(r, "12345678"));
	deadline = now_ns() + WAIT_MS * MS;
	while (get_stats(r).flushes == flushes && now_ns() < deadline)
		usleep(1000);
	ASSERT_GT(get_stats(r).flushes, flushes)
		TH_LOG("the flusher never ran");
	__atomic_store_n(&bring__fault_flush, 0, __ATOMIC_RELAXED);
	EXPECT_EQ(-EIO, push_str(r, "12345678"));
	usleep(50000);
	EXPECT_EQ(-EIO, push_str(r, "12345678"));
	EXPECT_EQ(end_of(1, 8), get_stats(r).durable);
	bring_free(r);
	bring_set_print(NULL);
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* What an open refuses.                                              */

static void check_new_file_mode(struct __test_metadata *_metadata,
				mode_t umask_val, unsigned int opts_mode,
				mode_t want)
{
	BRING_OPTS(opts, .mode = opts_mode);
	struct stat st;
	struct tmp t;
	struct bring *r;

	ASSERT_EQ(0, tmp_make(&t));
	umask(umask_val);
	r = bring_open(t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, stat(t.path, &st));
	EXPECT_EQ(want, st.st_mode & 07777)
		TH_LOG("umask %03o, opts.mode %03o", umask_val, opts_mode);
	bring_free(r);
	tmp_remove(&t);
}

TEST(new_file_is_private_by_default)
{
	check_new_file_mode(_metadata, 0, 0, 0600);
	check_new_file_mode(_metadata, 022, 0, 0600);
	check_new_file_mode(_metadata, 077, 0, 0600);
}

TEST(new_file_takes_its_mode_from_opts)
{
	check_new_file_mode(_metadata, 0, 0640, 0640);
	check_new_file_mode(_metadata, 077, 0640, 0640);
	check_new_file_mode(_metadata, 077, 0604, 0604);
	check_new_file_mode(_metadata, 022, 0660, 0660);
}

TEST(symbolic_link_is_refused_and_its_target_untouched)
{
	char target[160], link[160], dangling[160], missing[160];
	size_t len;
	struct tmp t;
	struct bring *r;
	void *bytes;

	ASSERT_EQ(0, tmp_make(&t));
	tmp_path(&t, "target", target, sizeof(target));
	tmp_path(&t, "link", link, sizeof(link));
	tmp_path(&t, "dangling", dangling, sizeof(dangling));
	tmp_path(&t, "missing", missing, sizeof(missing));
	r = bring_open(target, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_str(r, "m"));
	bring_free(r);
	bytes = read_all(target, &len);
	ASSERT_NE_NULL(bytes);
	ASSERT_EQ(0, symlink("target", link));
	ASSERT_EQ(0, symlink("missing", dangling));

	errno = 0;
	EXPECT_NULL(bring_open(link, 0, NULL));
	EXPECT_EQ(ELOOP, errno);
	errno = 0;
	EXPECT_NULL(bring_open(link, CAP, NULL));
	EXPECT_EQ(ELOOP, errno);
	EXPECT_TRUE(file_is(target, bytes, len));
	/* A dangling link is not followed to create its target. */
	errno = 0;
	EXPECT_NULL(bring_open(dangling, CAP, NULL));
	EXPECT_EQ(ELOOP, errno);
	EXPECT_EQ(-1, access(missing, F_OK));
	EXPECT_EQ(3, tmp_entries(&t));
	free(bytes);
	tmp_remove(&t);
}

TEST(space_is_preallocated)
{
	struct stat st;
	struct tmp t;
	struct bring *r;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, 1 << 20, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, stat(t.path, &st));
	EXPECT_EQ(BRING_HDR_SIZE + (1 << 20), st.st_size);
	EXPECT_GE((uint64_t)st.st_blocks * 512, (uint64_t)st.st_size);
	bring_free(r);
	tmp_remove(&t);
}

TEST(full_filesystem_fails_at_open_with_enospc)
{
	struct tmp t;
	struct bring *r;

	/* A mount namespace of our own: the mount goes with the test. */
	if (unshare(CLONE_NEWNS) < 0)
		SKIP(return, "unshare(CLONE_NEWNS): %s (needs CAP_SYS_ADMIN)",
		     strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		SKIP(return, "mount --make-rprivate /: %s", strerror(errno));
	ASSERT_EQ(0, tmp_make(&t));
	if (mount("tmpfs", t.dir, "tmpfs", 0, "size=1m,mode=0700") < 0) {
		SKIP(tmp_remove(&t); return, "mount -t tmpfs: %s",
		     strerror(errno));
	}
	errno = 0;
	r = bring_open(t.path, 4 << 20, NULL);
	EXPECT_NULL(r);
	EXPECT_EQ(ENOSPC, errno);
	EXPECT_EQ(0, tmp_entries(&t));
	bring_free(r);
	/* What fits, works. */
	r = bring_open(t.path, 256 << 10, NULL);
	EXPECT_NE_NULL(r) TH_LOG("%s", strerror(errno));
	bring_free(r);
	unlink(t.path);
	umount2(t.dir, MNT_DETACH);
	tmp_remove(&t);
}

TEST(directory_is_refused_with_einval)
{
	struct stat st;
	struct tmp t;

	ASSERT_EQ(0, tmp_make(&t));
	ASSERT_EQ(0, mkdir(t.path, 0700));
	errno = 0;
	EXPECT_NULL(bring_open(t.path, 0, NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("%s", strerror(errno));
	errno = 0;
	EXPECT_NULL(bring_open(t.path, CAP, NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, stat(t.path, &st));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	tmp_remove(&t);
}

TEST(non_regular_files_are_refused_with_einval)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char fifo[160], sock[160];
	struct tmp t;
	int s;

	ASSERT_EQ(0, tmp_make(&t));
	capture_start();
	tmp_path(&t, "fifo", fifo, sizeof(fifo));
	tmp_path(&t, "sock", sock, sizeof(sock));
	ASSERT_EQ(0, mkfifo(fifo, 0600));
	errno = 0;
	EXPECT_NULL(bring_open(fifo, 0, NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("fifo: %s", strerror(errno));
	errno = 0;
	EXPECT_NULL(bring_open(fifo, CAP, NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("fifo: %s", strerror(errno));

	errno = 0;
	EXPECT_NULL(bring_open("/dev/null", 0, NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("/dev/null: %s", strerror(errno));

	s = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_GE(s, 0);
	ASSERT_LT(strlen(sock), sizeof(sun.sun_path));
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	ASSERT_EQ(0, bind(s, (struct sockaddr *)&sun, sizeof(sun)));
	errno = 0;
	EXPECT_NULL(bring_open(sock, CAP, NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("socket: %s", strerror(errno));
	close(s);
	bring_set_print(NULL);
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* Headers that do not validate are refused and left as they are.    */

FIXTURE(bad)
{
	struct tmp t;
};

FIXTURE_SETUP(bad)
{
	struct bring *r;

	ASSERT_EQ(0, tmp_make(&self->t));
	capture_start();
	r = bring_open(self->t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_range(r, 0, 3));
	bring_free(r);
}

FIXTURE_TEARDOWN(bad)
{
	bring_set_print(NULL);
	tmp_remove(&self->t);
}

/*
 * bring_open() of the file, with and without a capacity, fails with @err
 * and leaves the file byte for byte as it was.
 */
static void check_refused(struct __test_metadata *_metadata,
			  const char *path, int err, const char *what)
{
	size_t len;
	void *bytes = read_all(path, &len);
	struct bring *r;

	ASSERT_NE_NULL(bytes);
	errno = 0;
	r = bring_open(path, 0, NULL);
	EXPECT_NULL(r) TH_LOG("%s: opened", what);
	EXPECT_EQ(err, errno) TH_LOG("%s: %s", what, strerror(errno));
	bring_free(r);
	errno = 0;
	r = bring_open(path, CAP, NULL);
	EXPECT_NULL(r) TH_LOG("%s: opened with a capacity", what);
	EXPECT_EQ(err, errno) TH_LOG("%s: %s", what, strerror(errno));
	bring_free(r);
	EXPECT_TRUE(file_is(path, bytes, len)) TH_LOG("%s: file changed", what);
	free(bytes);
}

TEST_F(bad, wrong_magic_fails_with_einval)
{
	ASSERT_EQ(0, file_write(self->t.path, "NOTARING", 8, 0));
	check_refused(_metadata, self->t.path, EINVAL, "wrong magic");
	EXPECT_NE_NULL(strstr(printed, "magic"));
}

/*
 * Every single flipped bit of the constant header and of its checksum:
 * EBADMSG, except in the magic, which makes it no ring file (EINVAL).
 */
TEST_F(bad, flipped_bit_in_constant_header_fails_with_ebadmsg)
{
	const size_t end = offsetofend(struct bring_hdr, c_crc);
	size_t off, len, wrong = 0;
	void *bytes;
	struct bring *r;
	int bit, want;

	for (off = 0; off < end; off++) {
		for (bit = 0; bit < 8; bit++) {
			want = off < sizeof(uint64_t) ? EINVAL : EBADMSG;
			ASSERT_EQ(0, flip_bit(self->t.path, (off_t)off, bit));
			bytes = read_all(self->t.path, &len);
			ASSERT_NE_NULL(bytes);
			errno = 0;
			r = bring_open(self->t.path, 0, NULL);
			if (r || errno != want ||
			    !file_is(self->t.path, bytes, len)) {
				if (wrong++ < 8)
					TH_LOG("byte %zu bit %d: %s, errno %d "
					       "(%s), want %d", off, bit,
					       r ? "opened" : "refused", errno,
					       strerror(errno), want);
			}
			bring_free(r);
			free(bytes);
			ASSERT_EQ(0, flip_bit(self->t.path, (off_t)off, bit));
		}
	}
	EXPECT_EQ(0, wrong) TH_LOG("%zu of %zu flipped bits handled wrongly",
				   wrong, end * 8);
	/* All flipped back: the file opens. */
	r = bring_open(self->t.path, 0, NULL);
	EXPECT_NE_NULL(r);
	bring_free(r);
}

/* Make the file say layout @version, with a valid checksum. */
static int set_layout(const char *path, uint32_t version)
{
	struct bring_hdr_const c;
	uint32_t crc;
	int err;

	err = file_read(path, &c, sizeof(c), 0);
	if (err)
		return err;
	c.version = version;
	crc = bring_crc32c(0, &c, sizeof(c));
	err = file_write(path, &c, sizeof(c), 0);
	return err ? err : file_write(path, &crc, sizeof(crc),
				      offsetof(struct bring_hdr, c_crc));
}

static uint32_t layout_of(const char *path)
{
	struct bring_hdr_const c = { 0 };

	file_read(path, &c, sizeof(c), 0);
	return c.version;
}

/*
 * Layout 2 (bring 0.3 to 0.5) differs only in that its processes do not
 * follow a file ring's escapes: the first exclusive open upgrades the
 * file to layout 3 (which those libraries refuse) after recovery, with
 * the messages kept.
 */
TEST_F(bad, a_layout_2_file_is_upgraded_by_its_first_exclusive_open)
{
	struct bring *r;
	char buf[16];

	ASSERT_EQ(0, set_layout(self->t.path, 2));
	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_EQ(BRING_LAYOUT_VERSION, layout_of(self->t.path));
	EXPECT_EQ(3, layout_of(self->t.path));
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m0", buf);
	bring_free(r);
	/* The upgraded header is valid: it opens again. */
	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m1", buf);
	bring_free(r);
}

/*
 * A layout 2 file that another process has open (an older bring's: this
 * library's first open would have upgraded it) is refused with EBUSY and
 * a message saying what to do, and is left as it was; once that process
 * is gone it opens and is upgraded.
 */
TEST_F(bad, a_layout_2_file_open_elsewhere_is_refused_with_ebusy)
{
	struct bring *r;
	char buf[16];
	int fd;

	ASSERT_EQ(0, set_layout(self->t.path, 2));
	/* What a process of bring 0.5 holds while it has the file open. */
	fd = open(self->t.path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, flock(fd, LOCK_SH));
	check_refused(_metadata, self->t.path, EBUSY, "layout 2 shared");
	EXPECT_NE_NULL(strstr(printed, "layout version 2, open in a process "
				       "of an older bring"))
		TH_LOG("%s", printed);
	EXPECT_EQ(2, layout_of(self->t.path));
	close(fd);
	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_EQ(3, layout_of(self->t.path));
	ASSERT_EQ(0, take_str(r, buf, sizeof(buf), 0));
	EXPECT_STREQ("m0", buf);
	bring_free(r);
}

/* A valid checksum over values this library does not support: EINVAL. */
TEST_F(bad, unsupported_header_values_fail_with_einval)
{
	struct bring_hdr_const c, orig;
	uint32_t crc;

	ASSERT_EQ(0, file_read(self->t.path, &orig, sizeof(orig), 0));
	c = orig;
	c.version = BRING_LAYOUT_VERSION + 1;
	crc = bring_crc32c(0, &c, sizeof(c));
	ASSERT_EQ(0, file_write(self->t.path, &c, sizeof(c), 0));
	ASSERT_EQ(0, file_write(self->t.path, &crc, sizeof(crc),
				offsetof(struct bring_hdr, c_crc)));
	check_refused(_metadata, self->t.path, EINVAL, "version 2");

	c = orig;
	c.capacity = 3 * CAP;
	crc = bring_crc32c(0, &c, sizeof(c));
	ASSERT_EQ(0, file_write(self->t.path, &c, sizeof(c), 0));
	ASSERT_EQ(0, file_write(self->t.path, &crc, sizeof(crc),
				offsetof(struct bring_hdr, c_crc)));
	check_refused(_metadata, self->t.path, EINVAL, "capacity 12288");
}

TEST_F(bad, truncated_file_fails_with_einval)
{
	ASSERT_EQ(0, truncate(self->t.path, FILE_SIZE - 1));
	check_refused(_metadata, self->t.path, EINVAL, "one byte short");
	ASSERT_EQ(0, truncate(self->t.path, BRING_HDR_SIZE));
	check_refused(_metadata, self->t.path, EINVAL, "header only");
	ASSERT_EQ(0, truncate(self->t.path, 100));
	check_refused(_metadata, self->t.path, EINVAL, "100 bytes");
}

TEST_F(bad, extended_file_fails_with_einval)
{
	ASSERT_EQ(0, truncate(self->t.path, FILE_SIZE + 1));
	check_refused(_metadata, self->t.path, EINVAL, "one byte more");
	ASSERT_EQ(0, truncate(self->t.path, FILE_SIZE + CAP));
	check_refused(_metadata, self->t.path, EINVAL, "a page more");
}

TEST_F(bad, zero_length_file_fails_with_einval)
{
	ASSERT_EQ(0, truncate(self->t.path, 0));
	check_refused(_metadata, self->t.path, EINVAL, "empty");
}

TEST_F(bad, random_bytes_fail_with_einval)
{
	static unsigned char junk[FILE_SIZE];
	size_t i;

	srand(1);
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)rand();
	ASSERT_EQ(0, write_all(self->t.path, junk, sizeof(junk)));
	check_refused(_metadata, self->t.path, EINVAL, "random, ring size");
	ASSERT_EQ(0, write_all(self->t.path, junk, 1000));
	check_refused(_metadata, self->t.path, EINVAL, "random, 1000 bytes");
}

TEST_HARNESS_MAIN
