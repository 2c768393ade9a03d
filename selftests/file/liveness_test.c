// SPDX-License-Identifier: GPL-2.0
/*
 * "Is the writer of this unfinished record dead?" must be answered
 * right across PID namespaces and after PID reuse (issue 13, item 9):
 *
 *  - a live writer in another PID namespace, slow between reserve and
 *    commit, is not repaired, whatever its PID means in ours;
 *  - a dead writer whose PID (in its namespace) is that of a live
 *    process in ours is repaired within the documented ~200 ms;
 *  - a dead writer's intent slot, taken over by a live writer, does not
 *    make the dead writer's record look alive;
 *  - named readers and writers: a restarted owner with its dead
 *    predecessor's PID takes them over, and a live owner in another PID
 *    namespace keeps them.
 *
 * The writers run as `unshare --pid --fork` would run them: a process
 * that called unshare(CLONE_NEWPID) forks the namespace's init, which
 * forks the writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "util.h"

#define CAP 65536
#define SLOW_MS 1500 /* a live writer's pause between reserve and commit */
#define WAIT_MS 5000

static const char payload[] = "from another namespace";

/* What the writer in the namespace does once it has the ring. */
enum writer_act {
	WRITER_SLOW_COMMIT, /* reserve, tell, pause SLOW_MS, commit */
	WRITER_DIES, /* reserve, tell, exit without a commit */
	OWNER_DIES, /* open reader and writer OWNER, tell, exit: a crash */
	OWNER_OPENS, /* open both, tell; exit 0 if both opened, 3 if busy */
	OWNER_HOLDS, /* open both, tell, hold them SLOW_MS, exit: a crash */
};

#define OWNER "shipper"

/*
 * Open the named reader and writer OWNER: 0, or -errno of the first that
 * failed. With @close, close what opened (a child that crashes keeps
 * them).
 */
static int open_owner(struct bring *r, bool close)
{
	struct bring_reader *rd = bring_reader_open(r, OWNER);
	struct bring_writer *w;
	int err = 0;

	if (!rd)
		return -errno;
	w = bring_writer_open(r, OWNER, NULL);
	if (!w)
		err = -errno;
	if (close) {
		bring_writer_close(w);
		bring_reader_close(rd);
	}
	return err;
}

static void __attribute__((noreturn))
owner(const char *path, enum writer_act act, int tell)
{
	struct bring *r = bring_open(path, 0, NULL);
	int err;

	CHILD_CHECK(r != NULL);
	err = open_owner(r, false);
	CHILD_CHECK(write(tell, "o", 1) == 1);
	if (act == OWNER_OPENS)
		_exit(err == -EBUSY ? 3 : err ? 4 : 0);
	CHILD_CHECK(err == 0);
	if (act == OWNER_HOLDS)
		usleep(SLOW_MS * 1000);
	_exit(0); /* nothing closed: a crash */
}

static void __attribute__((noreturn))
writer(const char *path, enum writer_act act, int tell)
{
	struct bring_resv resv;
	struct bring *r;

	r = bring_open(path, 0, NULL);
	CHILD_CHECK(r != NULL);
	CHILD_CHECK(bring_reserve(r, sizeof(payload), &resv, 0) == 0);
	memcpy(resv.data, payload, sizeof(payload));
	CHILD_CHECK(write(tell, "r", 1) == 1);
	if (act == WRITER_DIES)
		_exit(0); /* no commit, no bring_free: a crash */
	usleep(SLOW_MS * 1000);
	CHILD_CHECK(bring_commit(r, &resv, sizeof(payload)) == 0);
	bring_free(r);
	_exit(0);
}

/*
 * Run writer() in a new PID namespace with PID @ns_pid there (0: the
 * first free one, 2). Returns the pid of the outer child (which waits
 * for the namespace to end), or -1; "r" on *@ready once reserved.
 */
static pid_t writer_in_pid_namespace(const char *path, enum writer_act act,
				     pid_t ns_pid, int *ready)
{
	int fds[2];
	pid_t outer;

	if (pipe(fds) < 0)
		return -1;
	outer = fork_child();
	if (outer == 0) {
		pid_t init, w;
		int st;

		close(fds[0]);
		CHILD_CHECK(unshare(CLONE_NEWPID) == 0);
		init = fork_child();
		CHILD_CHECK(init >= 0);
		if (init == 0) {
			/* PID 1 of the namespace: place the writer's PID. */
			if (ns_pid > 1) {
				FILE *f = fopen("/proc/sys/kernel/ns_last_pid",
						"w");

				CHILD_CHECK(f != NULL);
				fprintf(f, "%d", (int)ns_pid - 1);
				CHILD_CHECK(fclose(f) == 0);
			}
			w = fork_child();
			CHILD_CHECK(w >= 0);
			if (w == 0 && act >= OWNER_DIES)
				owner(path, act, fds[1]);
			if (w == 0)
				writer(path, act, fds[1]);
			CHILD_CHECK(ns_pid <= 1 || w == ns_pid);
			CHILD_CHECK(waitpid(w, &st, 0) == w);
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 2);
		}
		CHILD_CHECK(waitpid(init, &st, 0) == init);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 2);
	}
	close(fds[1]);
	*ready = fds[0];
	return outer;
}

static bool can_unshare_pid(void)
{
	pid_t pid = fork_child();
	int st;

	if (pid == 0)
		_exit(unshare(CLONE_NEWPID) == 0 ? 0 : 1);
	return pid > 0 && waitpid(pid, &st, 0) == pid && exited_ok(st);
}

FIXTURE(ns)
{
	struct tmp t;
	struct bring *r;
};

FIXTURE_SETUP(ns)
{
	self->r = NULL;
	self->t.dir[0] = '\0';
	if (!can_unshare_pid())
		SKIP(return, "unshare(CLONE_NEWPID) needs CAP_SYS_ADMIN");
	ASSERT_EQ(0, tmp_make(&self->t));
	self->r = bring_open(self->t.path, CAP, NULL);
	ASSERT_NE_NULL(self->r);
}

FIXTURE_TEARDOWN(ns)
{
	bring_free(self->r);
	tmp_remove(&self->t);
}

/*
 * The reproduction: the writer's PID in its namespace is one that is
 * dead in ours. The PID test called it dead after 200 ms, repaired its
 * record, and its commit failed with -EINVAL: the message was lost.
 */
TEST_F_TIMEOUT(ns, live_writer_in_another_pid_namespace_is_not_repaired, 30)
{
	struct bring_msg msg;
	pid_t outer, gone = dead_pid();
	int ready, status;
	char c;

	ASSERT_GT(gone, 1);
	outer = writer_in_pid_namespace(self->t.path, WRITER_SLOW_COMMIT,
					gone, &ready);
	ASSERT_GT(outer, 0);
	ASSERT_EQ(1, read(ready, &c, 1));
	/* Traffic behind the slow record; the reader waits in front of it. */
	ASSERT_EQ(0, bring_push(self->r, "behind", 6));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, WAIT_MS));
	EXPECT_EQ(sizeof(payload), msg.len);
	EXPECT_EQ(0, memcmp(msg.data, payload, msg.len < sizeof(payload) ?
						       msg.len :
						       sizeof(payload)))
		TH_LOG("got '%.*s' first", (int)msg.len,
		       (const char *)msg.data);
	status = wait_child(outer, WAIT_MS);
	EXPECT_TRUE(exited_ok(status)) TH_LOG("the writer's commit failed");
	close(ready);
}

/*
 * The writer's PID in its namespace is 2, which in ours is a live
 * process (kthreadd): the PID test never called it dead and readers
 * stayed stuck in front of its record.
 */
TEST_F_TIMEOUT(ns, dead_writer_whose_pid_lives_here_is_repaired, 30)
{
	struct bring_msg msg;
	int ready, status;
	uint64_t t0;
	pid_t outer;
	char c;

	outer = writer_in_pid_namespace(self->t.path, WRITER_DIES, 0, &ready);
	ASSERT_GT(outer, 0);
	ASSERT_EQ(1, read(ready, &c, 1));
	status = wait_child(outer, WAIT_MS);
	ASSERT_TRUE(exited_ok(status));
	ASSERT_EQ(0, kill(2, 0)) TH_LOG("PID 2 is not alive here");
	ASSERT_EQ(0, bring_push(self->r, "behind", 6));
	t0 = now_ns();
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, WAIT_MS));
	EXPECT_EQ(6, msg.len);
	EXPECT_EQ(0, memcmp(msg.data, "behind", 6));
	TH_LOG("repaired in %llu ms", (unsigned long long)((now_ns() - t0) / MS));
	close(ready);
}

/*
 * A dead writer's slot taken over by a live one (here: this process)
 * must not make the dead writer's record look alive: the slot's
 * generation moved.
 */
TEST_F_TIMEOUT(ns, slot_taken_over_does_not_revive_a_dead_writers_record, 30)
{
	struct bring_msg msg;
	struct bring *r2;
	int ready, status;
	pid_t outer;
	char c;

	outer = writer_in_pid_namespace(self->t.path, WRITER_DIES, 0, &ready);
	ASSERT_GT(outer, 0);
	ASSERT_EQ(1, read(ready, &c, 1));
	status = wait_child(outer, WAIT_MS);
	ASSERT_TRUE(exited_ok(status));
	/* Our writer thread takes the first free slot: the dead one's. */
	r2 = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r2);
	ASSERT_EQ(0, bring_push(r2, "behind", 6));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, WAIT_MS));
	EXPECT_EQ(6, msg.len);
	bring_free(r2);
	close(ready);
}

/*
 * A shipper killed in a container and restarted in a new one gets the
 * PID its predecessor had (here: this test's own PID, in a new PID
 * namespace each time, so that it is also alive here). Named readers and
 * writers were held by a PID: the restarted one found its own PID alive
 * and got -EBUSY for its own reader and writer, for good, and so did any
 * process here. The slots are held by OFD locks now, which die with
 * their process.
 */
TEST_F_TIMEOUT(ns, a_restarted_owner_with_its_dead_predecessors_pid_takes_over, 30)
{
	pid_t outer, same = getpid();
	int ready, status;
	char c;

	outer = writer_in_pid_namespace(self->t.path, OWNER_DIES, same, &ready);
	ASSERT_GT(outer, 0);
	ASSERT_EQ(1, read(ready, &c, 1));
	ASSERT_TRUE(exited_ok(wait_child(outer, WAIT_MS)));
	close(ready);
	/* The restart: the same PID again, in a namespace of its own. */
	outer = writer_in_pid_namespace(self->t.path, OWNER_OPENS, same, &ready);
	ASSERT_GT(outer, 0);
	ASSERT_EQ(1, read(ready, &c, 1));
	status = wait_child(outer, WAIT_MS);
	EXPECT_TRUE(exited_ok(status))
		TH_LOG("the restarted owner could not open its reader and writer (exit %d: 3 is EBUSY)",
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	close(ready);
	/* And from here, where that PID is ours: it died, so both are free. */
	outer = writer_in_pid_namespace(self->t.path, OWNER_DIES, same, &ready);
	ASSERT_GT(outer, 0);
	ASSERT_EQ(1, read(ready, &c, 1));
	ASSERT_TRUE(exited_ok(wait_child(outer, WAIT_MS)));
	close(ready);
	EXPECT_EQ(0, open_owner(self->r, true));
}

/*
 * A live owner keeps its slots whatever PID namespace it runs in: -EBUSY
 * while it lives, free once it died without closing them.
 */
TEST_F_TIMEOUT(ns, a_live_owner_in_another_pid_namespace_keeps_its_slots, 30)
{
	struct bring_reader *rd;
	struct bring_writer *w;
	int ready;
	pid_t outer;
	char c;

	outer = writer_in_pid_namespace(self->t.path, OWNER_HOLDS, dead_pid(),
					&ready);
	ASSERT_GT(outer, 0);
	ASSERT_EQ(1, read(ready, &c, 1));
	/* Its PID is dead here: only the lock says it lives. */
	EXPECT_NULL(bring_reader_open(self->r, OWNER));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_NULL(bring_writer_open(self->r, OWNER, NULL));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-EBUSY, bring_reader_remove(self->r, OWNER));
	EXPECT_EQ(-EBUSY, bring_writer_remove(self->r, OWNER));
	ASSERT_TRUE(exited_ok(wait_child(outer, WAIT_MS)));
	close(ready);
	rd = bring_reader_open(self->r, OWNER);
	EXPECT_NE_NULL(rd);
	w = bring_writer_open(self->r, OWNER, NULL);
	EXPECT_NE_NULL(w);
	/* Closed, they are free again, and nobody else holds them. */
	bring_writer_close(w);
	bring_reader_close(rd);
	EXPECT_EQ(0, bring_reader_remove(self->r, OWNER));
	EXPECT_EQ(0, bring_writer_remove(self->r, OWNER));
}

TEST_HARNESS_MAIN
