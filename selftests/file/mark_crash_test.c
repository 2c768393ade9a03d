// SPDX-License-Identifier: GPL-2.0
/*
 * Marks in file rings and SIGKILL: a named writer's mark is exactly that
 * of its last committed record after any crash, and a reader's mark is
 * that of the shift its cursor resumes after.
 *
 * kill_loop (and kill_loop_long with BRING_MARK_KILLS=N) runs a writer
 * process that resumes after its mark (mark = the sequence number of its
 * last record) and a reader process that resumes after its own mark (the
 * last sequence number it shifted), and SIGKILLs either at random
 * instants, now and then both (the next open recovers the file). The
 * reader checks that every record is the one after the last: a record
 * committed without its mark would come twice, a mark stored without its
 * record would leave a gap, a reader mark out of step with its cursor
 * would do either.
 *
 * The other tests build the state a kill at one chosen instant leaves
 * (between the mark and the commit, halfway through the mark, after the
 * commit with the record consumed and its space reused) and check the
 * run-time takeover, the run-time repair and recovery on it.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "bring.h"
#include "internal.h"
#include "kselftest_harness.h"
#include "util.h"

#define CAP 16384
#define MSG_MAX 200

/* The writer slot called @name, straight from the header. */
static struct bring_wslot *wslot(struct bring *r, const char *name)
{
	int i;

	for (i = 0; i < BRING_WRITERS_MAX; i++)
		if (r->hdr->wslots[i].state == SLOT_ACTIVE &&
		    !strcmp(r->hdr->wslots[i].name, name))
			return &r->hdr->wslots[i];
	return NULL;
}

/* A mark that is a sequence number: 0 when empty, -1 when malformed. */
static int64_t wmark_seq(const struct bring_writer *w)
{
	uint64_t v;
	int n = bring_writer_mark(w, &v, sizeof(v));

	return n == 0 ? 0 : n == (int)sizeof(v) ? (int64_t)v : -1;
}

static int64_t rmark_seq(const struct bring_reader *rd)
{
	uint64_t v;
	int n = bring_reader_mark(rd, &v, sizeof(v));

	return n == 0 ? 0 : n == (int)sizeof(v) ? (int64_t)v : -1;
}

/* Message @seq: the number, then bytes that depend on it. */
static size_t msg_build(char *buf, uint64_t seq)
{
	size_t len = sizeof(seq) + (seq * 7919) % (MSG_MAX - sizeof(seq));
	size_t i;

	memcpy(buf, &seq, sizeof(seq));
	for (i = sizeof(seq); i < len; i++)
		buf[i] = (char)(seq + i);
	return len;
}

static bool msg_ok(const struct bring_msg *m, uint64_t *seq)
{
	char buf[MSG_MAX];

	if (m->len < sizeof(*seq))
		return false;
	memcpy(seq, m->data, sizeof(*seq));
	return msg_build(buf, *seq) == m->len && !memcmp(buf, m->data, m->len);
}

static struct bring *open_ring(const char *path)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);

	return bring_open(path, CAP, &opts);
}

/* ================================================================== */
/* The kill loop.                                                     */

struct shared {
	uint64_t acked; /* writer: last sequence number committed */
	uint64_t shifted; /* reader: last sequence number shifted */
	uint64_t final; /* set by the driver: the reader stops there */
	uint32_t stop; /* writer: stop after the record in hand */
	uint32_t cpu_kill_us; /* writer: SIGKILL after this CPU time, 0: no */
	char err[256];
};

static void fail(struct shared *sh, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sh->err, sizeof(sh->err), fmt, ap);
	va_end(ap);
	_exit(2);
}

/* Pushes, reserve + commit, and short commits in turn. */
static int push_seq(struct bring_writer *w, struct bring *r, uint64_t seq)
{
	char buf[MSG_MAX];
	size_t len = msg_build(buf, seq);
	struct bring_resv resv;
	int err;

	if (seq % 3 == 0)
		return bring_writer_push(w, buf, len, &seq, sizeof(seq), 1000);
	err = bring_reserve(r, seq % 3 == 1 ? len : MSG_MAX, &resv, 1000);
	if (err)
		return err;
	memcpy(resv.data, buf, len);
	return bring_writer_commit(w, &resv, len, &seq, sizeof(seq));
}

static void die(int sig)
{
	kill(getpid(), SIGKILL);
}

/*
 * Die by SIGKILL after @us of user CPU time: the kill lands on whatever
 * instruction runs then, inside the library's commit path as often as
 * that path takes CPU, never only while the writer sleeps.
 */
static void die_after_cpu(unsigned int us)
{
	struct itimerval it = { .it_value = { .tv_usec = us } };

	signal(SIGVTALRM, die);
	setitimer(ITIMER_VIRTUAL, &it, NULL);
}

static void writer_main(const char *path, struct shared *sh)
{
	struct bring *r;

	if (sh->cpu_kill_us)
		die_after_cpu(sh->cpu_kill_us);
	r = open_ring(path);
	struct bring_writer *w;
	int64_t seq;
	int err;

	if (!r)
		fail(sh, "writer: bring_open: %s", strerror(errno));
	w = bring_writer_open(r, "w", NULL);
	if (!w)
		fail(sh, "writer: bring_writer_open: %s", strerror(errno));
	seq = wmark_seq(w);
	if (seq < 0)
		fail(sh, "writer: malformed mark");
	if ((uint64_t)seq < sh->acked)
		fail(sh, "writer: mark %lld behind acknowledged %llu",
		     (long long)seq, (unsigned long long)sh->acked);
	/* One more when the last incarnation died before saying so. */
	if ((uint64_t)seq > sh->acked + 1)
		fail(sh, "writer: mark %lld, acknowledged %llu",
		     (long long)seq, (unsigned long long)sh->acked);
	store_release(&sh->acked, (uint64_t)seq);
	while (!load_acquire(&sh->stop)) {
		err = push_seq(w, r, (uint64_t)seq + 1);
		if (err == -ETIMEDOUT)
			continue;
		if (err)
			fail(sh, "writer: push: %s", strerror(-err));
		store_release(&sh->acked, (uint64_t)++seq);
	}
	bring_writer_close(w);
	bring_free(r);
	_exit(0);
}

static void reader_main(const char *path, struct shared *sh)
{
	struct bring *r = open_ring(path);
	struct bring_msg msgs[16];
	struct bring_reader *rd;
	int64_t last;
	uint64_t seq;
	int i, n;

	if (!r)
		fail(sh, "reader: bring_open: %s", strerror(errno));
	rd = bring_reader_open(r, "r");
	if (!rd)
		fail(sh, "reader: bring_reader_open: %s", strerror(errno));
	last = rmark_seq(rd);
	if (last < 0 || (uint64_t)last < sh->shifted)
		fail(sh, "reader: mark %lld, shifted %llu", (long long)last,
		     (unsigned long long)sh->shifted);
	while (!load_acquire(&sh->final) ||
	       (uint64_t)last < load_acquire(&sh->final)) {
		n = bring_reader_peek(rd, msgs, 16, 0, 1000);
		if (n == -ETIMEDOUT)
			continue;
		if (n < 0)
			fail(sh, "reader: peek: %s", strerror(-n));
		for (i = 0; i < n; i++) {
			if (!msg_ok(&msgs[i], &seq))
				fail(sh, "reader: damaged message at %llu",
				     (unsigned long long)msgs[i].seq);
			if (seq != (uint64_t)last + 1)
				fail(sh, "reader: got %llu after %lld",
				     (unsigned long long)seq, (long long)last);
			last = (int64_t)seq;
		}
		if (bring_reader_shift_mark(rd, &last, sizeof(last)))
			fail(sh, "reader: shift failed");
		store_release(&sh->shifted, (uint64_t)last);
	}
	bring_reader_close(rd);
	bring_free(r);
	_exit(0);
}

static pid_t start(const char *path, struct shared *sh, bool writer)
{
	pid_t pid = fork_child();

	if (pid == 0) {
		if (writer)
			writer_main(path, sh);
		reader_main(path, sh);
	}
	return pid;
}

/* Give @pid up to @ms to end by itself; it is not reaped. */
static int wait_child_exit(pid_t pid, unsigned int ms)
{
	siginfo_t si;
	uint64_t end = now_ns() + ms * MS;

	do {
		si.si_pid = 0;
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT))
			return -errno;
		if (si.si_pid == pid)
			return 0;
		usleep(500);
	} while (now_ns() < end);
	return -ETIMEDOUT;
}

static unsigned int env_kills(void)
{
	const char *s = getenv("BRING_MARK_KILLS");

	return s ? (unsigned int)strtoul(s, NULL, 10) : 0;
}

static void kill_loop(struct __test_metadata *_metadata, unsigned int kills)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t rnd = now_ns() | 1;
	struct bring_reader *rd;
	struct bring_writer *w;
	pid_t pid[2];
	struct bring *r;
	struct tmp t;
	unsigned int k, cpu_kills = 0;
	int st, who;

	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	ASSERT_EQ(0, tmp_make(&t));
	/* The reader exists before the first record. */
	r = open_ring(t.path);
	ASSERT_NE_NULL(r);
	rd = bring_reader_open(r, "r");
	ASSERT_NE_NULL(rd);
	bring_reader_close(rd);
	bring_free(r);
	TH_LOG("seed %#llx, %u kills", (unsigned long long)rnd, kills);
	capture_start(); /* recovery's lines */
	pid[0] = start(t.path, sh, true);
	pid[1] = start(t.path, sh, false);
	for (k = 0; k < kills && !sh->err[0]; k++) {
		/* Every other writer dies by its own CPU timer. */
		sh->cpu_kill_us = k % 2 ? 0 :
				  20 + (uint32_t)(xorshift(&rnd) % 2000);
		usleep((useconds_t)(xorshift(&rnd) % 8000));
		if (sh->cpu_kill_us)
			st = wait_child_exit(pid[0], 100);
		if (waitpid(pid[0], &st, WNOHANG) == pid[0]) {
			if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
				break; /* sh->err says why */
			cpu_kills++;
			pid[0] = start(t.path, sh, true);
			continue;
		}
		who = (int)(xorshift(&rnd) % 2);
		if (k % 16 == 15) {
			/* Both: the next bring_open() recovers. */
			kill_child(pid[0], &st);
			kill_child(pid[1], &st);
			pid[0] = start(t.path, sh, true);
			pid[1] = start(t.path, sh, false);
			continue;
		}
		if (kill_child(pid[who], &st) == -ECHILD)
			break; /* it failed by itself: sh->err says why */
		pid[who] = start(t.path, sh, who == 0);
	}
	sh->cpu_kill_us = 0;
	if (waitpid(pid[0], &st, WNOHANG) == pid[0])
		pid[0] = start(t.path, sh, true);
	store_release(&sh->stop, 1);
	st = wait_child(pid[0], 30000);
	EXPECT_TRUE(exited_ok(st)) TH_LOG("writer: %s", sh->err);
	/* The reader stops at the writer's last mark. */
	r = open_ring(t.path);
	ASSERT_NE_NULL(r);
	w = bring_writer_open(r, "w", NULL);
	ASSERT_NE_NULL(w);
	EXPECT_EQ(sh->acked, (uint64_t)wmark_seq(w));
	store_release(&sh->final, (uint64_t)wmark_seq(w));
	bring_writer_close(w);
	st = wait_child(pid[1], 30000);
	EXPECT_TRUE(exited_ok(st)) TH_LOG("reader: %s", sh->err);
	EXPECT_EQ(sh->final, sh->shifted);
	bring_set_print(NULL);
	if (!sh->err[0])
		TH_LOG("%llu records in order, none twice; %u writers killed "
		       "by their CPU timer", (unsigned long long)sh->shifted,
		       cpu_kills);
	bring_free(r);
	tmp_remove(&t);
	munmap(sh, sizeof(*sh));
}

TEST_TIMEOUT(kill_loop, 120)
{
	if (env_kills())
		SKIP(return, "BRING_MARK_KILLS is set: kill_loop_long runs");
	kill_loop(_metadata, SANITIZED_THREAD || SANITIZED_ADDRESS ? 40 : 120);
}

TEST_TIMEOUT(kill_loop_long, 24 * 3600)
{
	if (!env_kills())
		SKIP(return, "set BRING_MARK_KILLS to run it");
	kill_loop(_metadata, env_kills());
}

/* ================================================================== */
/* States left by a kill at a chosen instant.                         */

FIXTURE(state)
{
	struct tmp t;
	struct bring *r;
	struct bring_reader *rd;
};

FIXTURE_SETUP(state)
{
	ASSERT_EQ(0, tmp_make_shm(&self->t));
	self->r = open_ring(self->t.path);
	ASSERT_NE_NULL(self->r);
	self->rd = bring_reader_open(self->r, "r");
	ASSERT_NE_NULL(self->rd);
}

FIXTURE_TEARDOWN(state)
{
	bring_reader_close(self->rd);
	bring_free(self->r);
	tmp_remove(&self->t);
}

/* Close everything and open the file alone: bring_open() recovers. */
static void reopen_alone(FIXTURE_DATA(state) *self)
{
	bring_reader_close(self->rd);
	bring_free(self->r);
	capture_start();
	self->r = open_ring(self->t.path);
	bring_set_print(NULL);
	self->rd = self->r ? bring_reader_open(self->r, "r") : NULL;
}

enum death {
	DIE_BEFORE_MARK, /* reserved, payload written */
	DIE_AFTER_MARK, /* mark stored, record not committed */
	DIE_TORN_MARK, /* the mark's store cut short */
	DIE_AFTER_COMMIT, /* committed, nothing after */
};

/*
 * A child that opens the ring, commits record 1 with mark 1, then
 * builds record 2 up to @death and dies by SIGKILL.
 */
static void die_at(struct __test_metadata *_metadata,
		   FIXTURE_DATA(state) *self, enum death death)
{
	pid_t pid = fork_child();
	struct bring_resv resv;
	struct bring_writer *w;
	struct bring_cursor *c;
	uint64_t two = 2;
	struct bring *r;
	char buf[MSG_MAX];
	size_t len;
	int st;

	if (pid == 0) {
		r = open_ring(self->t.path);
		CHILD_CHECK(r);
		w = bring_writer_open(r, "w", NULL);
		CHILD_CHECK(w);
		CHILD_CHECK(push_seq(w, r, 1) == 0);
		len = msg_build(buf, 2);
		if (death == DIE_AFTER_COMMIT) {
			CHILD_CHECK(bring_writer_push(w, buf, len, &two,
						      sizeof(two), 0) == 0);
			raise(SIGKILL);
		}
		CHILD_CHECK(bring_reserve(r, len, &resv, 0) == 0);
		memcpy(resv.data, buf, len);
		if (death == DIE_AFTER_MARK)
			cursor_store(wslot(r, "w")->saved, resv.seq, &two,
				     sizeof(two));
		if (death == DIE_TORN_MARK) {
			/* What cursor_store() leaves when cut before its
			 * checksum: the next generation, the new mark. */
			c = (struct bring_cursor *)cursor_latest(
				wslot(r, "w")->saved);
			c = c == &wslot(r, "w")->saved[0] ?
				    &wslot(r, "w")->saved[1] :
				    &wslot(r, "w")->saved[0];
			c->pos = resv.seq;
			c->gen = cursor_latest(wslot(r, "w")->saved)->gen + 1;
			c->mark_len = sizeof(two);
			memcpy(c->mark, &two, sizeof(two));
		}
		raise(SIGKILL);
		_exit(1);
	}
	ASSERT_GT(pid, 0);
	st = wait_child(pid, 10000);
	ASSERT_TRUE(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* What the reader gets: the sequence numbers, up to @max. */
static int read_seqs(struct bring_reader *rd, uint64_t *seqs, int max,
		     int timeout_ms)
{
	struct bring_msg m;
	int n = 0;

	while (n < max && bring_reader_next(rd, &m, timeout_ms) == 0) {
		if (!msg_ok(&m, &seqs[n]))
			return -EBADMSG;
		n++;
		bring_reader_shift(rd);
	}
	return n;
}

/* After a death at @death, where the takeover finds mark @want. */
static void check_takeover(struct __test_metadata *_metadata,
			   FIXTURE_DATA(state) *self, enum death death,
			   bool recover, int64_t want)
{
	struct bring_writer *w;
	uint64_t seqs[4];

	die_at(_metadata, self, death);
	if (recover) {
		reopen_alone(self);
		ASSERT_NE_NULL(self->r);
		ASSERT_NE_NULL(self->rd);
	}
	w = bring_writer_open(self->r, "w", NULL);
	ASSERT_NE_NULL(w);
	EXPECT_EQ(want, wmark_seq(w));
	/* The writer resumes after its mark: nothing twice, no gap. */
	ASSERT_EQ(0, push_seq(w, self->r, (uint64_t)want + 1));
	/* A dead writer's BUSY record costs a reader one 200 ms check. */
	ASSERT_EQ(want + 1, read_seqs(self->rd, seqs, (int)want + 1, 2000));
	EXPECT_EQ(1, seqs[0]);
	EXPECT_EQ((uint64_t)want + 1, seqs[want]);
	EXPECT_EQ(want + 1, wmark_seq(w));
	bring_writer_close(w);
}

TEST_F(state, killed_before_the_mark_resumes_after_the_last_record)
{
	check_takeover(_metadata, self, DIE_BEFORE_MARK, false, 1);
}

TEST_F(state, killed_between_mark_and_commit_takeover_revokes_the_mark)
{
	check_takeover(_metadata, self, DIE_AFTER_MARK, false, 1);
}

TEST_F(state, killed_between_mark_and_commit_recovery_revokes_the_mark)
{
	check_takeover(_metadata, self, DIE_AFTER_MARK, true, 1);
	/* A kill is not damage: recovery says nothing about it. */
	EXPECT_EQ(0, printed_nr) TH_LOG("%s", printed);
}

TEST_F(state, killed_in_the_mark_store_keeps_the_mark_before)
{
	check_takeover(_metadata, self, DIE_TORN_MARK, false, 1);
}

TEST_F(state, killed_in_the_mark_store_recovery_keeps_the_mark_before)
{
	check_takeover(_metadata, self, DIE_TORN_MARK, true, 1);
}

TEST_F(state, killed_after_commit_keeps_record_and_mark)
{
	check_takeover(_metadata, self, DIE_AFTER_COMMIT, false, 2);
}

TEST_F(state, killed_after_commit_recovery_keeps_record_and_mark)
{
	check_takeover(_metadata, self, DIE_AFTER_COMMIT, true, 2);
}

/*
 * A reader stuck at the dead writer's record repairs it before anyone
 * takes the writer over: the repair revokes the mark first.
 */
TEST_F_TIMEOUT(state, reader_repair_revokes_the_mark_of_a_dropped_record, 30)
{
	struct bring_writer *w;
	uint64_t seqs[4];

	die_at(_metadata, self, DIE_AFTER_MARK);
	ASSERT_EQ(1, read_seqs(self->rd, seqs, 4, 1000));
	/* Stuck at record 2 for 200 ms, then past it: nothing more. */
	EXPECT_EQ(-ETIMEDOUT, bring_reader_next(self->rd,
					       &(struct bring_msg){ 0 }, 500));
	EXPECT_EQ(1, cursor_newest(wslot(self->r, "w")->saved)->gen);
	w = bring_writer_open(self->r, "w", NULL);
	ASSERT_NE_NULL(w);
	EXPECT_EQ(1, wmark_seq(w));
	bring_writer_close(w);
}

/*
 * Committed, then consumed by every reader and its space reused by other
 * writers, all before anyone looks at the dead writer's mark.
 */
TEST_F(state, mark_of_a_consumed_and_overwritten_record_stands)
{
	struct bring_writer *w, *o;
	uint64_t seq, seqs[4];
	char buf[MSG_MAX];
	int i;

	die_at(_metadata, self, DIE_AFTER_COMMIT);
	ASSERT_EQ(2, read_seqs(self->rd, seqs, 4, 0));
	o = bring_writer_open(self->r, "other", NULL);
	ASSERT_NE_NULL(o);
	for (i = 0; i < 4 * CAP / MSG_MAX; i++) {
		seq = 1000 + (uint64_t)i;
		ASSERT_EQ(0, bring_writer_push(o, buf, msg_build(buf, seq),
					       &seq, sizeof(seq), 0));
		ASSERT_EQ(1, read_seqs(self->rd, seqs, 1, 0));
	}
	bring_writer_close(o);
	w = bring_writer_open(self->r, "w", NULL);
	ASSERT_NE_NULL(w);
	EXPECT_EQ(2, wmark_seq(w));
	bring_writer_close(w);
	reopen_alone(self);
	ASSERT_NE_NULL(self->r);
	w = bring_writer_open(self->r, "w", NULL);
	ASSERT_NE_NULL(w);
	EXPECT_EQ(2, wmark_seq(w));
	bring_writer_close(w);
}

extern int bring__stall_repair_busy, bring__repair_busy_stalled;

struct takeover {
	struct bring *r;
	struct bring_writer *w;
};

static void *take_over_w(void *arg)
{
	struct takeover *t = arg;

	t->w = bring_writer_open(t->r, "w", NULL);
	return NULL;
}

/* Push fillers until head is exactly at @to (the reader keeps up). */
static int pad_to(struct bring *r, uint64_t to)
{
	char buf[MSG_MAX] = { 0 };
	uint64_t left;
	int err = 0;

	while (!err && (left = head_pos(__atomic_load_n(
				&r->hdr->head, __ATOMIC_ACQUIRE))) < to) {
		left = to - left;
		/* Footprints of 16 + len: never leave less than 24. */
		if (left > 216 + 24)
			err = bring_push(r, buf, 200);
		else if (left >= 48)
			err = bring_push(r, buf, left - 24 - 16);
		else
			err = bring_push(r, buf, left - 16);
	}
	return err;
}

/*
 * "x" commits record 1 (mark 1), pads the ring to @at, reserves record
 * 2 there, stages mark 2 for it and dies: a BUSY record at @at.
 */
static void x_dies_at(struct __test_metadata *_metadata, const char *path,
		      uint64_t at, struct bring_reader *rd)
{
	pid_t pid = fork_child();
	bool exited = false;
	struct bring_msg m;
	int st = -1;

	if (pid == 0) {
		struct bring *r = open_ring(path);
		struct bring_resv resv;
		struct bring_writer *x;
		char buf[MSG_MAX];
		uint64_t two = 2;
		size_t len;

		CHILD_CHECK(r);
		x = bring_writer_open(r, "x", NULL);
		CHILD_CHECK(x);
		CHILD_CHECK(push_seq(x, r, 1) == 0);
		CHILD_CHECK(pad_to(r, at) == 0);
		len = msg_build(buf, 2);
		CHILD_CHECK(bring_reserve(r, len, &resv, 0) == 0);
		CHILD_CHECK(resv.seq == at);
		memcpy(resv.data, buf, len);
		cursor_store(wslot(r, "x")->saved, resv.seq, &two,
			     sizeof(two));
		raise(SIGKILL);
		_exit(1);
	}
	ASSERT_GT(pid, 0);
	/*
	 * Read all before @at, never waiting there (200 ms would repair
	 * x's record), until x is dead.
	 */
	for (;;) {
		if (!exited && waitpid(pid, &st, WNOHANG) == pid)
			exited = true;
		if (rd->pos >= at) {
			if (exited)
				break;
			usleep(1000);
		} else if (bring_reader_next(rd, &m, 50) == 0) {
			ASSERT_EQ(0, bring_reader_shift(rd));
		}
	}
	ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	ASSERT_EQ(at, rd->pos);
}

/*
 * A takeover of "w" (dead with record 2 BUSY and its mark staged) is
 * stopped between its look at the tag and its repair, as a SIGSTOP
 * could stop it. Meanwhile a reader repairs record 2, the ring makes a
 * full lap, and "x" dies the same way with its record at the same
 * offset a lap later. The takeover, let go, must not repair x's record
 * as w's: it would drop it revoking marks at w's position, and x's mark
 * 2 would name a message that was never delivered (the old code: "x"
 * resumed past it). Instead x's record is repaired as x's, its mark
 * revoked: "x" resumes after mark 1.
 */
TEST_F_TIMEOUT(state, a_stopped_takeover_leaves_the_next_laps_record_alone, 30)
{
	struct takeover t = { .r = self->r };
	struct bring_writer *x;
	struct bring_msg m;
	uint64_t seqs[4], at;
	pthread_t th;

	die_at(_metadata, self, DIE_AFTER_MARK);
	at = cursor_newest(wslot(self->r, "w")->saved)->pos + CAP;
	bring__stall_repair_busy = 1;
	ASSERT_EQ(0, pthread_create(&th, NULL, take_over_w, &t));
	while (!__atomic_load_n(&bring__repair_busy_stalled, __ATOMIC_ACQUIRE))
		usleep(100);
	/* Record 1, then w's record 2 repaired by the stuck reader. */
	ASSERT_EQ(1, read_seqs(self->rd, seqs, 4, 1000));
	EXPECT_EQ(-ETIMEDOUT, bring_reader_next(self->rd, &m, 500));
	x_dies_at(_metadata, self->t.path, at, self->rd);
	__atomic_store_n(&bring__stall_repair_busy, 0, __ATOMIC_RELEASE);
	ASSERT_EQ(0, pthread_join(th, NULL));
	bring__repair_busy_stalled = 0;
	ASSERT_NE_NULL(t.w);
	EXPECT_EQ(1, wmark_seq(t.w));
	bring_writer_close(t.w);
	x = bring_writer_open(self->r, "x", NULL);
	ASSERT_NE_NULL(x);
	EXPECT_EQ(1, wmark_seq(x));
	/* x resumes at 2: delivered once, after the repaired record. */
	ASSERT_EQ(0, push_seq(x, self->r, 2));
	ASSERT_EQ(1, read_seqs(self->rd, seqs, 4, 1000));
	EXPECT_EQ(2, seqs[0]);
	bring_writer_close(x);
}

/* A mark whose record was lost (a torn tail after power loss). */
TEST_F(state, recovery_revokes_a_mark_whose_record_is_gone)
{
	struct bring_writer *w;
	uint64_t three = 3;

	die_at(_metadata, self, DIE_AFTER_COMMIT);
	/* A mark naming a record beyond the head: only power loss does it. */
	cursor_store(wslot(self->r, "w")->saved, 1ULL << 20, &three,
		     sizeof(three));
	reopen_alone(self);
	ASSERT_NE_NULL(self->r);
	EXPECT_NE_NULL(strstr(printed, "writer 'w': the record of its mark"))
		TH_LOG("%s", printed);
	w = bring_writer_open(self->r, "w", NULL);
	ASSERT_NE_NULL(w);
	EXPECT_EQ(2, wmark_seq(w));
	bring_writer_close(w);
}

/* The reader's mark and its cursor come from one generation. */
TEST_F(state, reader_mark_goes_with_its_cursor_across_a_torn_save)
{
	struct bring_writer *w = bring_writer_open(self->r, "w", NULL);
	struct bring_slot *sl = self->rd->slot;
	uint64_t seqs[4];
	int64_t one = 1;

	ASSERT_NE_NULL(w);
	ASSERT_EQ(0, push_seq(w, self->r, 1));
	ASSERT_EQ(0, push_seq(w, self->r, 2));
	bring_writer_close(w);
	ASSERT_EQ(0, bring_reader_next(self->rd, &(struct bring_msg){ 0 }, 0));
	ASSERT_EQ(0, bring_reader_shift_mark(self->rd, &one, sizeof(one)));
	ASSERT_EQ(0, bring_reader_next(self->rd, &(struct bring_msg){ 0 }, 0));
	ASSERT_EQ(0, bring_reader_shift_mark(self->rd, &(int64_t){ 2 }, 8));
	/* Tear the newest generation: the one before wins, mark and all. */
	((struct bring_cursor *)cursor_latest(sl->saved))->crc ^= 1;
	reopen_alone(self);
	ASSERT_NE_NULL(self->rd);
	EXPECT_EQ(1, rmark_seq(self->rd));
	ASSERT_EQ(1, read_seqs(self->rd, seqs, 4, 0));
	EXPECT_EQ(2, seqs[0]);
}

TEST(old_layout_is_refused_with_a_clear_message)
{
	struct bring_hdr_const c;
	struct bring *r;
	struct tmp t;
	uint32_t crc;

	ASSERT_EQ(0, tmp_make(&t));
	r = open_ring(t.path);
	ASSERT_NE_NULL(r);
	bring_free(r);
	ASSERT_EQ(0, file_read(t.path, &c, sizeof(c), 0));
	c.version = 1;
	c.hdr_size = 32768;
	crc = bring_crc32c(0, &c, sizeof(c));
	ASSERT_EQ(0, file_write(t.path, &c, sizeof(c), 0));
	ASSERT_EQ(0, file_write(t.path, &crc, sizeof(crc),
				offsetof(struct bring_hdr, c_crc)));
	capture_start();
	errno = 0;
	r = open_ring(t.path);
	bring_set_print(NULL);
	EXPECT_NULL(r);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_NE_NULL(strstr(printed, "layout version 1"))
		TH_LOG("%s", printed);
	bring_free(r);
	tmp_remove(&t);
}

TEST_HARNESS_MAIN
