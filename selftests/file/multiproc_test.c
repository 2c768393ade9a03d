// SPDX-License-Identifier: GPL-2.0
/*
 * File rings shared by processes that each open the file with
 * bring_open(): four writer processes and two named readers in two more
 * processes exchange a million messages, each reader sees every message
 * exactly once and in each writer's order, and writers and readers block
 * on each other across the process boundary. Processes racing to create
 * the same file all end up with one ring.
 *
 * BRING_MULTIPROC_MSGS overrides the number of messages (default
 * 1,000,000, divided by the sanitizer slowdown in sanitized builds).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "util.h"

#define SANITIZER_SLOWDOWN (SANITIZED_THREAD ? 4 : 1)

#define NR_WRITERS 4
#define NR_READERS 2
#define RING_CAP 65536
#define MSG_MIN ((uint32_t)sizeof(struct tmsg))
#define MSG_MAX 200
#define PEEK_MAX 16
#define WAIT_MS 20000		/* no message for this long is a failure */
#define SLEEP_WAIT_MS 10000	/* for a process to fall asleep */

static const char *const reader_names[NR_READERS] = { "next", "peek" };

static unsigned int total_msgs(void)
{
	const char *s = getenv("BRING_MULTIPROC_MSGS");
	unsigned long n;

	if (s && *s) {
		n = strtoul(s, NULL, 0);
		return n < NR_WRITERS ? NR_WRITERS :
		       n > 100000000 ? 100000000 : (unsigned int)n;
	}
	return 1000000 / SANITIZER_SLOWDOWN;
}

/* ------------------------------------------------------------------ */
/* Messages: struct tmsg, id the writer, seq counting its messages.  */

static size_t msg_len(uint32_t writer, uint32_t seq)
{
	uint32_t x = (seq * 2654435761U) ^ (writer * 40503U);

	return MSG_MIN + (x >> 7) % (MSG_MAX - MSG_MIN + 1);
}

/* 0, or why @msg is not the intact message @seq of its writer. */
static const char *msg_check(const struct bring_msg *msg, uint32_t *writer,
			     uint32_t *seq)
{
	struct tmsg h;
	const char *why = tmsg_check(msg, &h);

	if (why)
		return why;
	if (h.id >= NR_WRITERS || msg->len != msg_len(h.id, h.seq))
		return "bad header";
	*writer = h.id;
	*seq = h.seq;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Processes.                                                         */

/* What each child reports back, in a shared mapping. */
struct report {
	uint64_t msgs;
	uint64_t waits;		/* calls that had to wait */
	char err[256];
};

struct shared {
	struct report writers[NR_WRITERS];
	struct report readers[NR_READERS];
};

static void __attribute__((format(printf, 2, 3)))
child_fail(struct report *rep, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep->err, sizeof(rep->err), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# child %d: %s\n", (int)getpid(), rep->err);
	_exit(1);
}

/* Writer @id: push its share of the messages, one process, own handle. */
static void __attribute__((noreturn))
writer_main(const char *path, unsigned int id, unsigned int nr, int go_fd,
	    struct report *rep)
{
	static uint8_t buf[MSG_MAX];
	struct bring *r = bring_open(path, 0, NULL);
	uint32_t seq;
	char c;
	int err;

	if (!r)
		child_fail(rep, "writer %u: bring_open: %s", id,
			   strerror(errno));
	/* Start together with the other writers. */
	if (read(go_fd, &c, 1) != 1)
		child_fail(rep, "writer %u: no start signal", id);
	for (seq = 0; seq < nr; seq++) {
		tmsg_build(buf, msg_len(id, seq), id, seq);
		/* Every other writer uses the zero-copy path. */
		if (id & 1) {
			struct bring_resv resv;

			err = bring_reserve(r, msg_len(id, seq), &resv,
					    WAIT_MS);
			if (!err) {
				memcpy(resv.data, buf, resv.len);
				err = bring_commit(r, &resv, resv.len);
			}
		} else {
			err = bring_push_timeout(r, buf, msg_len(id, seq),
						 WAIT_MS);
		}
		if (err)
			child_fail(rep, "writer %u: push of seq %u: %s", id,
				   seq, strerror(-err));
	}
	rep->msgs = seq;
	bring_free(r);
	_exit(0);
}

/*
 * Reader @id: the named reader reader_names[@id], opened by name in this
 * process; next + shift or peek + shift until every writer's @nr
 * messages arrived, in order, once.
 */
static void __attribute__((noreturn))
reader_main(const char *path, unsigned int id, unsigned int total,
	    unsigned int per_writer, struct report *rep)
{
	uint32_t expect[NR_WRITERS] = { 0 };
	struct bring_msg msgs[PEEK_MAX];
	struct bring_reader *rd;
	struct bring *r = bring_open(path, 0, NULL);
	unsigned int got = 0, pauses = 0;
	uint64_t t0;
	int n, i;

	if (!r)
		child_fail(rep, "reader %u: bring_open: %s", id,
			   strerror(errno));
	rd = bring_reader_open(r, reader_names[id]);
	if (!rd)
		child_fail(rep, "reader %u: bring_reader_open: %s", id,
			   strerror(errno));
	while (got < total) {
		/* A pause now and then makes the writers wait for space. */
		if (got >= (pauses + 1) * (total / 4) && pauses < 3) {
			pauses++;
			usleep(20000);
		}
		t0 = now_ns();
		if (id == 0) {
			n = bring_reader_next(rd, msgs, WAIT_MS);
			n = n ? n : 1;
		} else {
			n = bring_reader_peek(rd, msgs, PEEK_MAX, 0, WAIT_MS);
		}
		if (n < 0)
			child_fail(rep, "reader %s: after %u messages: %s",
				   reader_names[id], got, strerror(-n));
		if (now_ns() - t0 > 1000000)
			rep->waits++;
		for (i = 0; i < n; i++) {
			const char *why;
			uint32_t w, seq;

			why = msg_check(&msgs[i], &w, &seq);
			if (why)
				child_fail(rep, "reader %s: message %u at ring position %llu: %s",
					   reader_names[id], got + i,
					   (unsigned long long)msgs[i].seq,
					   why);
			if (seq != expect[w])
				child_fail(rep, "reader %s: writer %u: seq %u, expected %u (%s)",
					   reader_names[id], w, seq, expect[w],
					   seq < expect[w] ? "duplicate or reordered" :
							     "lost messages");
			if (++expect[w] > per_writer)
				child_fail(rep, "reader %s: writer %u: more than %u messages",
					   reader_names[id], w, per_writer);
		}
		got += (unsigned int)n;
		n = bring_reader_shift(rd);
		if (n)
			child_fail(rep, "reader %s: shift: %s",
				   reader_names[id], strerror(-n));
	}
	n = bring_reader_next(rd, msgs, 0);
	if (n != -EAGAIN)
		child_fail(rep, "reader %s: after the last message: %d",
			   reader_names[id], n);
	rep->msgs = got;
	bring_reader_close(rd);
	bring_free(r);
	_exit(0);
}

struct ring_setup {
	unsigned int flags;
	bool remove_default;
};

/*
 * Create the ring without a default reader (at creation, or removed
 * afterwards) and create both named readers, so that every message
 * pushed from now on is kept for them.
 */
static struct bring *create_ring(const char *path, const struct ring_setup *s)
{
	BRING_OPTS(opts, .name = "multiproc", .flags = s->flags);
	struct bring_reader *rd;
	struct bring *r = bring_open(path, RING_CAP, &opts);
	unsigned int i;

	if (!r)
		return NULL;
	if (s->remove_default && bring_reader_remove(r, BRING_DEFAULT_READER))
		goto err;
	for (i = 0; i < NR_READERS; i++) {
		rd = bring_reader_open(r, reader_names[i]);
		if (!rd)
			goto err;
		bring_reader_close(rd);
	}
	return r;
err:
	bring_free(r);
	return NULL;
}

FIXTURE(exchange)
{
	struct tmp t;
	struct shared *sh;
	struct bring *r;
};

FIXTURE_VARIANT(exchange)
{
	struct ring_setup setup;
};

FIXTURE_VARIANT_ADD(exchange, no_default_reader)
{
	.setup = { .flags = BRING_NO_DEFAULT_READER },
};

FIXTURE_VARIANT_ADD(exchange, default_reader_removed)
{
	.setup = { .remove_default = true },
};

FIXTURE_SETUP(exchange)
{
	ASSERT_EQ(0, tmp_make_shm(&self->t));
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	self->r = create_ring(self->t.path, &variant->setup);
	ASSERT_NE_NULL(self->r) TH_LOG("bring_open: %s", strerror(errno));
}

FIXTURE_TEARDOWN(exchange)
{
	bring_free(self->r);
	munmap(self->sh, sizeof(*self->sh));
	tmp_remove(&self->t);
}

TEST_F_TIMEOUT(exchange, every_reader_sees_every_message_once_in_writer_order,
	       120)
{
	unsigned int total = total_msgs(), per_writer = total / NR_WRITERS;
	pid_t readers[NR_READERS], writers[NR_WRITERS];
	struct bring_stats st = { .sz = sizeof(st) };
	int go[2], status, failed = 0;
	char starts[NR_WRITERS];
	unsigned int i;
	uint64_t t0;

	total = per_writer * NR_WRITERS;
	/* The readers first, asleep on the empty ring before any push. */
	for (i = 0; i < NR_READERS; i++) {
		readers[i] = fork_child();
		ASSERT_GE(readers[i], 0);
		if (readers[i] == 0)
			reader_main(self->t.path, i, total, per_writer,
				    &self->sh->readers[i]);
	}
	for (i = 0; i < NR_READERS; i++)
		ASSERT_TRUE(wait_proc_in_futex(readers[i], SLEEP_WAIT_MS))
			TH_LOG("reader %u never slept on the empty ring", i);
	ASSERT_EQ(0, pipe(go));
	for (i = 0; i < NR_WRITERS; i++) {
		writers[i] = fork_child();
		ASSERT_GE(writers[i], 0);
		if (writers[i] == 0) {
			close(go[1]);
			writer_main(self->t.path, i, per_writer, go[0],
				    &self->sh->writers[i]);
		}
	}
	close(go[0]);
	t0 = now_ns();
	memset(starts, 'g', sizeof(starts));
	ASSERT_EQ(NR_WRITERS, write(go[1], starts, sizeof(starts)));
	close(go[1]);

	for (i = 0; i < NR_WRITERS; i++) {
		status = wait_child(writers[i], 100000);
		EXPECT_TRUE(exited_ok(status))
			TH_LOG("writer %u: %s", i, self->sh->writers[i].err);
		failed |= !exited_ok(status);
	}
	for (i = 0; i < NR_READERS; i++) {
		status = wait_child(readers[i], failed ? 1000 : 100000);
		EXPECT_TRUE(exited_ok(status))
			TH_LOG("reader %s: %s", reader_names[i],
			       self->sh->readers[i].err);
		EXPECT_EQ(total, self->sh->readers[i].msgs);
	}
	ASSERT_EQ(0, bring_get_stats(self->r, &st));
	TH_LOG("%u messages from %d writer processes to %d reader processes in %.2f s; write waits %llu, read waits %llu, futex waits %llu, wakes %llu",
	       total, NR_WRITERS, NR_READERS, (now_ns() - t0) / 1e9,
	       (unsigned long long)st.write_waits,
	       (unsigned long long)st.read_waits,
	       (unsigned long long)st.futex_waits,
	       (unsigned long long)st.futex_wakes);
	EXPECT_EQ(total, st.msgs_in);
	EXPECT_EQ((uint64_t)total * NR_READERS, st.msgs_out);
	EXPECT_EQ(0, st.used);
	EXPECT_EQ(NR_READERS, st.readers);
	/* Both sides slept and were woken from another process. */
	EXPECT_GE(st.write_waits, 1);
	EXPECT_GE(st.read_waits, NR_READERS);
	EXPECT_GE(st.futex_wakes, 2);
}

/*
 * Processes that call bring_open() with a capacity on a path that does
 * not exist yet, all at once: one of them creates the file, the others
 * open it, and a message pushed by each arrives in the one ring.
 */
TEST(processes_racing_to_create_a_file_share_one_ring)
{
	enum { RACERS = 8, ROUNDS = 20 };
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned int round, i, seen;
	pid_t pids[RACERS];
	struct bring_msg msg;
	struct bring *r;
	struct tmp t;
	int go[2];

	ASSERT_NE(MAP_FAILED, sh);
	ASSERT_EQ(0, tmp_make_shm(&t));
	for (round = 0; round < ROUNDS; round++) {
		ASSERT_EQ(0, pipe(go));
		for (i = 0; i < RACERS; i++) {
			pids[i] = fork_child();
			ASSERT_GE(pids[i], 0);
			if (pids[i] == 0) {
				BRING_OPTS(opts, .name = "race");
				uint32_t v = i;
				char c;

				close(go[1]);
				if (read(go[0], &c, 1) != 0)
					_exit(2);
				r = bring_open(t.path, 4096, &opts);
				if (!r)
					child_fail(&sh->writers[0],
						   "racer %u: bring_open: %s",
						   i, strerror(errno));
				if (bring_push(r, &v, sizeof(v)))
					_exit(3);
				bring_free(r);
				_exit(0);
			}
		}
		close(go[0]);
		/* Closing the pipe releases all racers at once. */
		close(go[1]);
		for (i = 0; i < RACERS; i++)
			ASSERT_TRUE(exited_ok(wait_child(pids[i], 20000)))
				TH_LOG("round %u, racer %u: %s", round, i,
				       sh->writers[0].err);
		r = bring_open(t.path, 0, NULL);
		ASSERT_NE_NULL(r) TH_LOG("reopen: %s", strerror(errno));
		seen = 0;
		while (bring_next_timeout(r, &msg, 0) == 0) {
			uint32_t v;

			ASSERT_EQ(sizeof(v), msg.len);
			memcpy(&v, msg.data, sizeof(v));
			ASSERT_LT(v, RACERS);
			EXPECT_FALSE(seen & (1U << v))
				TH_LOG("round %u: racer %u twice", round, v);
			seen |= 1U << v;
			ASSERT_EQ(0, bring_shift(r));
		}
		EXPECT_EQ((1U << RACERS) - 1, seen)
			TH_LOG("round %u: messages of racers %#x missing",
			       round, ~seen & ((1U << RACERS) - 1));
		bring_free(r);
		ASSERT_EQ(0, unlink(t.path));
	}
	tmp_remove(&t);
	munmap(sh, sizeof(*sh));
}

TEST_HARNESS_MAIN
