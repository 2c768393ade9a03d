// SPDX-License-Identifier: GPL-2.0
/*
 * Lap jumps (Documentation/ring.rst, "Lap jumps"): a ring whose readers
 * keep up is written only in its first working set W, not end to end;
 * a reader that stops still gets the whole capacity. Jumps are made by
 * the reader whose shift empties the ring past W, or else by the claim
 * that finds it empty there (no_reader_jumps() leaves them to writers).
 *
 *  - a writer/reader pair that keeps up stays within W of each lap (the
 *    positions say so, and mincore() says the far end of a memory ring
 *    was never touched);
 *  - a reader that stops right at a jump holds the full capacity, lag
 *    and used bytes count no skipped byte;
 *  - a reader asleep at the jump's start (blocking, or an event loop's
 *    prepared wait) is woken and goes on at the next lap;
 *  - a reader still at the jump's start reads none of the bytes there
 *    once writers wrote the next lap over them (TSan's test);
 *  - a reservation in flight keeps the ring from counting as empty;
 *  - named readers that are not open follow the jump when they open
 *    again, readers opened later start past it, and a reader still at
 *    an old jump's start prevents a second jump;
 *  - file rings: the jump survives reopening (recovery) even when the
 *    writers wrote a whole capacity past it, and a writer or a reader
 *    killed at each step of a jump loses only the writer's own message,
 *    repaired at run time and by recovery;
 *  - escapes (a claim that does not fit behind a reader stopped before
 *    a slack jump goes on over that reader's bytes), in memory and file
 *    rings: the ring keeps its capacity, an escape not yet published
 *    holds the next jump, and (file rings) an escaper killed at each
 *    step loses only its own message, repaired by publishing its escape
 *    at run time and by recovery;
 *  - a stress run: writers pushing, batching and reserving, readers
 *    keeping up and lagging, every message once and in order.
 *
 * Every test fails on the code before lap jumps (positions run to the
 * end of each lap); the full-capacity, named-reader and file-recovery
 * ones also fail when writers do not count a cursor at a jump's start
 * as being at its end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "bring.h"
#include "internal.h"
#include "kselftest_harness.h"
#include "util.h"

#define CAP (8ULL << 20) /* working set: CAP / 8 */
#define WSET (CAP / 8)
#define MSG 4000 /* payload of the pump's messages */
#define FP_OF(len) (16 + (((len) + 7) & ~7ULL))
#define FP FP_OF(MSG)

extern int bring__fault_jump, bring__fault_escape;

FIXTURE(lap)
{
	struct tmp t;
	struct bring *r;
	char buf[MSG];
};

FIXTURE_VARIANT(lap)
{
	bool file;
};

FIXTURE_VARIANT_ADD(lap, memory)
{
	.file = false,
};

FIXTURE_VARIANT_ADD(lap, file)
{
	.file = true,
};

static struct bring *lap_ring(struct tmp *t, bool file, unsigned int flags)
{
	BRING_OPTS(o, .flags = flags);

	if (file)
		return bring_open(t->path, CAP, &o);
	return bring_new(CAP, &o);
}

FIXTURE_SETUP(lap)
{
	self->t.dir[0] = '\0';
	if (variant->file)
		ASSERT_EQ(0, tmp_make_shm(&self->t));
	self->r = lap_ring(&self->t, variant->file, 0);
	ASSERT_NE_NULL(self->r);
	memset(self->buf, 'x', sizeof(self->buf));
}

FIXTURE_TEARDOWN(lap)
{
	bring_free(self->r);
	bring__fault_jump = 0;
	bring__fault_escape = 0;
	tmp_remove(&self->t);
}

static uint64_t head_of(const struct bring *r)
{
	return __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE) & ~HEAD_CLOSED;
}

/* What a pump saw: how far into a lap records went, and the jumps. */
struct pump {
	uint64_t max_end; /* largest offset in its lap a record ended at */
	uint64_t last_end; /* position after the last record read */
	unsigned int jumps; /* records that did not follow the one before */
	unsigned int msgs;
	unsigned int sent; /* pump_behind(): pushed, not all read yet */
};

/*
 * Push and read (through @rds, @nrd readers, each shifting) one message
 * at a time while head is below @until; message i carries i.
 */
static int pump(struct bring *r, struct bring_reader **rds, int nrd,
		uint64_t until, struct pump *p)
{
	char buf[MSG];
	int i, err;

	memset(buf, 'p', sizeof(buf));
	while (head_of(r) < until) {
		memcpy(buf, &p->msgs, sizeof(p->msgs));
		err = bring_push_timeout(r, buf, sizeof(buf), 0);
		if (err)
			return err;
		for (i = 0; i < nrd; i++) {
			struct bring_msg m;

			err = bring_reader_next(rds[i], &m, 0);
			if (err)
				return err;
			if (m.len != MSG || memcmp(m.data, &p->msgs, 4))
				return -EBADMSG;
			if (!i) {
				if (p->msgs && m.seq != p->last_end)
					p->jumps++;
				p->last_end = m.seq + FP;
				if (((m.seq & (CAP - 1)) + FP) > p->max_end)
					p->max_end = (m.seq & (CAP - 1)) + FP;
			}
			err = bring_reader_shift(rds[i]);
			if (err)
				return err;
		}
		p->msgs++;
	}
	return 0;
}

/* Pump until head is at least @off into its lap (below the jump). */
static int pump_to_offset(struct bring *r, struct bring_reader **rds,
			  int nrd, uint64_t off, struct pump *p)
{
	uint64_t h = head_of(r);

	return pump(r, rds, nrd, (h & ~(CAP - 1)) + off, p);
}

/*
 * Pump until head is just below W into its lap, then one message more,
 * read and shifted by every reader: head is then at or past W, and the
 * last reader's shift finds the ring empty there and jumps it (unless
 * no_reader_jumps() turned that off). *@from: head before that jump.
 */
/* Pump until head is less than one message below W into its lap. */
static int pump_below_w(struct bring *r, struct bring_reader **rds, int nrd,
			struct pump *p)
{
	return pump(r, rds, nrd, (head_of(r) & ~(CAP - 1)) + WSET - FP, p);
}

static int pump_to_jump(struct bring *r, struct bring_reader **rds, int nrd,
			struct pump *p, uint64_t *from)
{
	int err = pump_below_w(r, rds, nrd, p);

	if (err)
		return err;
	*from = head_of(r) + FP;
	return pump(r, rds, nrd, head_of(r) + 1, p);
}

/* Leave jumps to the writers: this reader's shifts never look. */
static void no_reader_jumps(struct bring_reader *rd)
{
	rd->jump_look = UINT64_MAX;
}

TEST_F(lap, keeping_up_stays_in_the_working_set)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct pump p = { 0 };
	struct bring_msg m;
	unsigned char vec[CAP / 4096];
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *base;
	size_t i, touched = 0;

	ASSERT_NE_NULL(rd);
	/* The reader's shift to head past W jumps the ring. */
	ASSERT_EQ(0, pump(self->r, &rd, 1, 3 * CAP, &p));
	TH_LOG("reader jumps: %u messages, %u jumps, records ended at most %llu bytes into a lap",
	       p.msgs, p.jumps, (unsigned long long)p.max_end);
	EXPECT_LE(p.max_end, WSET + FP);
	EXPECT_GE(p.jumps, 2);
	/* Without: a claim at W or further finds the ring empty and jumps. */
	no_reader_jumps(rd);
	p.jumps = 0;
	ASSERT_EQ(0, pump(self->r, &rd, 1, 6 * CAP, &p));
	TH_LOG("writer jumps: %u messages, %u jumps, records ended at most %llu bytes into a lap",
	       p.msgs, p.jumps, (unsigned long long)p.max_end);
	EXPECT_LE(p.max_end, WSET + FP);
	EXPECT_GE(p.jumps, 2);
	EXPECT_EQ(0, get_stats(self->r).used);
	EXPECT_EQ(0, bring_reader_lag(rd));
	if (variant->file)
		return; /* the file's pages were written when it was made */
	/* The far end of the memfd was never touched, not even faulted. */
	ASSERT_EQ(0, bring_push(self->r, self->buf, 16));
	ASSERT_EQ(0, bring_next(self->r, &m));
	base = (uint8_t *)m.data - 16 - (m.seq & (CAP - 1));
	ASSERT_EQ(0, mincore(base, CAP, vec));
	for (i = (WSET + FP + page - 1) / page; i < CAP / page; i++)
		touched += vec[i] & 1;
	EXPECT_EQ(0, touched);
}

/*
 * A reader that stops in front of a jump: the writers may fill the whole
 * capacity (the skipped bytes are free), and nothing skipped counts as
 * lag or as used.
 */
TEST_F(lap, a_reader_that_stops_at_a_jump_still_gets_the_full_capacity)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct bring_reader_stats rs = { .sz = sizeof(rs) };
	struct pump p = { 0 };
	uint64_t from, n, got;
	struct bring_msg m;
	int err, side;

	/* 0: the reader's last shift jumps; 1: the writer's next claim. */
	for (side = 0; side < 2; side++) {
		if (side)
			no_reader_jumps(rd);
		n = got = 0;
		ASSERT_EQ(0, pump_to_jump(self->r, &rd, 1, &p, &from));
		EXPECT_EQ(side ? from : (from | (CAP - 1)) + 1, head_of(self->r));
		/* The reader stops; writers go on until the ring is full. */
		while ((err = bring_push_timeout(self->r, self->buf, MSG, 0)) == 0)
			n++;
		ASSERT_EQ(-EAGAIN, err);
		TH_LOG("%s jump from %llu; %llu messages (%llu bytes) fit behind the stopped reader",
		       side ? "writer" : "reader", (unsigned long long)from,
		       (unsigned long long)n, (unsigned long long)(n * FP));
		EXPECT_EQ(CAP / FP, n);
		EXPECT_EQ(n * FP, get_stats(self->r).used);
		EXPECT_EQ(n * FP, bring_reader_lag(rd));
		ASSERT_EQ(0, bring_get_reader_stats(self->r, 0, &rs));
		EXPECT_EQ(n * FP, rs.lag);
		EXPECT_EQ(from | (CAP - 1), rs.pos - 1); /* where it goes on */
		/* All of them come out, the first at the start of the next lap. */
		while (bring_next_timeout(self->r, &m, 0) == 0) {
			if (!got)
				EXPECT_EQ(0, m.seq & (CAP - 1));
			ASSERT_EQ(MSG, m.len);
			ASSERT_EQ(0, bring_shift(self->r));
			got++;
		}
		EXPECT_EQ(n, got);
		EXPECT_EQ(0, get_stats(self->r).used);
	}
}

struct sleeper {
	struct bring_reader *rd;
	struct bring_msg m;
	uint64_t t_wait;
	int err;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;

	s->err = bring_reader_next(s->rd, &s->m, 10000);
	return NULL;
}

TEST_F(lap, a_blocked_reader_wakes_and_follows_the_jump)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct sleeper s = { .rd = rd, .err = 1 };
	struct pump p = { 0 };
	struct bring_stats st;
	pthread_t t;
	uint64_t waits, from;

	no_reader_jumps(rd);
	ASSERT_EQ(0, pump_to_jump(self->r, &rd, 1, &p, &from));
	ASSERT_EQ(from, head_of(self->r));
	waits = get_stats(self->r).futex_waits;
	ASSERT_EQ(0, pthread_create(&t, NULL, sleeper_main, &s));
	/* Until the reader sleeps in the futex (bounded: 5 s). */
	for (int i = 0; i < 5000; i++) {
		st = get_stats(self->r);
		if (st.futex_waits > waits)
			break;
		usleep(1000);
	}
	usleep(20000);
	ASSERT_EQ(0, bring_push(self->r, self->buf, 100));
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(0, s.err);
	EXPECT_EQ(100, s.m.len);
	EXPECT_EQ(0, s.m.seq & (CAP - 1)); /* it jumped */
	EXPECT_LT(waits, get_stats(self->r).futex_waits);
	EXPECT_EQ(0, bring_shift(self->r));
}

/*
 * A writer thread fills the next lap past the offset of a reader's
 * cursor at a jump's start (the cursor counts at the jump's end); its
 * last message, copied in after its claim, covers the bytes at that
 * offset. Set once it is done: a relaxed flag, no happens-before.
 */
struct overwriter {
	struct bring *r;
	uint64_t upto; /* until head is past this position */
	uint32_t len;
	int err;
	int done;
};

static void *overwriter_main(void *arg)
{
	struct overwriter *o = arg;
	char buf[MSG];

	memset(buf, 'n', sizeof(buf));
	while (!o->err && head_of(o->r) <= o->upto)
		o->err = bring_push_timeout(o->r, buf, o->len, 0);
	__atomic_store_n(&o->done, 1, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * A reader still at a published jump's start must not read the bytes
 * there: writers count it at the jump's end and may already be writing
 * the next lap's records over them. It looks for the jump first (under
 * TSan, the old reader's tag load at its cursor raced with the writer's
 * copy), and goes on at the next lap with every message.
 */
TEST_F(lap, a_reader_at_a_jump_reads_none_of_the_next_laps_bytes)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct overwriter o = { .r = self->r };
	struct pump p = { 0 };
	uint64_t from, off, n = 0;
	struct bring_msg m;
	pthread_t t;

	ASSERT_EQ(0, pump_to_jump(self->r, &rd, 1, &p, &from));
	off = from & (CAP - 1);
	/* A length whose records put payload, not a header, at @off. */
	for (o.len = MSG; off % FP_OF(o.len) < 32; o.len -= 8)
		;
	o.upto = from + CAP + 8;
	ASSERT_EQ(0, pthread_create(&t, NULL, overwriter_main, &o));
	/* Until it is done (bounded: 10 s); no synchronisation on purpose. */
	for (int i = 0; i < 10000 && !__atomic_load_n(&o.done, __ATOMIC_RELAXED);
	     i++)
		usleep(1000);
	ASSERT_EQ(0, bring_reader_next(rd, &m, 0));
	EXPECT_EQ(0, m.seq & (CAP - 1)); /* it jumped */
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(0, o.err);
	do {
		ASSERT_EQ(o.len, m.len);
		ASSERT_EQ('n', ((const char *)m.data)[o.len - 1]);
		ASSERT_EQ(0, bring_reader_shift(rd));
		n++;
	} while (bring_reader_next(rd, &m, 0) == 0);
	EXPECT_EQ((o.upto - (from | (CAP - 1))) / FP_OF(o.len) + 1, n);
}

/* The same for an event loop's prepared wait on the futex word. */
TEST_F(lap, a_prepared_wait_is_woken_by_the_jump)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct pump p = { 0 };
	struct bring_wait w;
	struct bring_msg m;
	uint64_t from;

	no_reader_jumps(rd);
	ASSERT_EQ(0, pump_to_jump(self->r, &rd, 1, &p, &from));
	ASSERT_EQ(from, head_of(self->r));
	ASSERT_EQ(0, bring_reader_wait_prepare(rd, &w));
	ASSERT_EQ(w.val, __atomic_load_n(w.uaddr, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, bring_push(self->r, self->buf, 100));
	/* The word moved: a futex wait on it ends (or never starts). */
	EXPECT_NE(w.val, __atomic_load_n(w.uaddr, __ATOMIC_ACQUIRE));
	bring_reader_wait_finish(rd, &w);
	ASSERT_EQ(0, bring_reader_next(rd, &m, 0));
	EXPECT_EQ(100, m.len);
	EXPECT_EQ(0, m.seq & (CAP - 1));
	EXPECT_EQ(0, bring_reader_shift(rd));
}

/*
 * Pump (through @rd) to one message below W, reserve a message there
 * that ends past W, then push 100 bytes behind it, the reservation still
 * open. *@h: the reservation's position; 0 when a step failed.
 */
static void reserve_across_w_then_push(struct __test_metadata *_metadata,
				       struct bring *r, struct bring_reader *rd,
				       struct bring_resv *resv, uint64_t *h)
{
	struct pump p = { 0 };
	char buf[100];

	*h = 0;
	memset(buf, 'x', sizeof(buf));
	ASSERT_EQ(0, pump_to_offset(r, &rd, 1, WSET - FP, &p));
	ASSERT_LT(head_of(r) & (CAP - 1), WSET);
	ASSERT_EQ(0, bring_reserve(r, MSG, resv, 0));
	ASSERT_EQ(head_of(r) - FP, resv->seq);
	ASSERT_GE(head_of(r) & (CAP - 1), WSET);
	ASSERT_EQ(0, bring_push(r, buf, sizeof(buf)));
	*h = resv->seq;
}

/*
 * Readers stop at an uncommitted reservation, so while one is in flight
 * the ring is not empty: a claim past W behind it must not jump (the
 * reservation would be skipped), and the first claim once it is read
 * does.
 */
TEST_F(lap, a_reservation_in_flight_keeps_the_ring_from_jumping)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct pump p = { 0 };
	struct bring_resv resv;
	struct bring_msg m;
	uint64_t h;

	no_reader_jumps(rd); /* the writers' side; the reader's is the same */
	reserve_across_w_then_push(_metadata, self->r, rd, &resv, &h);
	if (!h)
		return;
	/* Another writer past W, the reservation still open: no jump. */
	ASSERT_EQ(-EAGAIN, bring_next_timeout(self->r, &m, 0));
	memset(resv.data, 'r', MSG);
	ASSERT_EQ(0, bring_commit(self->r, &resv, MSG));
	ASSERT_EQ(0, bring_next(self->r, &m));
	EXPECT_EQ(h, m.seq);
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(0, bring_next(self->r, &m));
	EXPECT_EQ(h + FP, m.seq);
	EXPECT_EQ(100, m.len);
	ASSERT_EQ(0, bring_shift(self->r));
	/*
	 * Empty now: a claim jumps, once the writer looks again (a claim
	 * that found the ring not empty makes the next W/16 bytes of
	 * claims skip the look).
	 */
	h = head_of(self->r);
	p.jumps = 0;
	p.last_end = h;
	ASSERT_EQ(0, pump(self->r, &rd, 1, h + WSET / 16 + FP, &p));
	EXPECT_EQ(1, p.jumps);
	EXPECT_EQ(FP, head_of(self->r) & (CAP - 1));
	/* An aborted reservation leaves nothing in the way of a jump. */
	ASSERT_EQ(0, pump_to_offset(self->r, &rd, 1, WSET, &p));
	ASSERT_EQ(0, bring_reserve(self->r, 50, &resv, 0));
	EXPECT_EQ(0, resv.seq & (CAP - 1));
	ASSERT_EQ(0, bring_abort(self->r, &resv));
	ASSERT_EQ(0, bring_push(self->r, self->buf, 10));
	ASSERT_EQ(0, bring_next(self->r, &m));
	EXPECT_EQ(10, m.len);
	EXPECT_EQ(0, bring_shift(self->r));
}

/*
 * With a slack (bring_set_jump_slack()), a claim past W with a
 * reservation in flight just behind it jumps (the readers are close
 * behind), but the reservation is read first, then the jumped message
 * at the next lap's start.
 */
TEST_F(lap, with_a_slack_a_reservation_in_flight_is_read_before_the_jump)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct bring_resv resv;
	struct bring_msg m;
	uint64_t h;

	ASSERT_EQ(0, bring_set_jump_slack(self->r, WSET / 2));
	no_reader_jumps(rd); /* the writers' side */
	reserve_across_w_then_push(_metadata, self->r, rd, &resv, &h);
	if (!h)
		return;
	/* Another writer past W, the reservation still open: it jumps. */
	EXPECT_EQ(h + FP, self->r->hdr->jump_from);
	ASSERT_EQ(-EAGAIN, bring_next_timeout(self->r, &m, 0));
	/* Skipped bytes are nobody's lag: the reservation and the 100. */
	EXPECT_EQ(FP + FP_OF(100), bring_reader_lag(rd));
	memset(resv.data, 'r', MSG);
	ASSERT_EQ(0, bring_commit(self->r, &resv, MSG));
	ASSERT_EQ(0, bring_next(self->r, &m));
	EXPECT_EQ(h, m.seq);
	EXPECT_EQ('r', ((const char *)m.data)[MSG - 1]);
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(0, bring_next(self->r, &m));
	EXPECT_EQ(0, m.seq & (CAP - 1));
	EXPECT_EQ(100, m.len);
	ASSERT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(0, get_stats(self->r).used);
}

/*
 * Push while head is below @until; the reader reads and shifts only
 * while it is more than @behind messages behind, so the ring is never
 * empty at a claim or at a shift. Checks every message's number.
 */
static int pump_behind(struct bring *r, struct bring_reader *rd,
		       uint64_t until, unsigned int behind, struct pump *p)
{
	struct bring_msg m;
	char buf[MSG];
	int err;

	memset(buf, 'p', sizeof(buf));
	while (head_of(r) < until) {
		memcpy(buf, &p->sent, sizeof(p->sent));
		err = bring_push_timeout(r, buf, sizeof(buf), 0);
		if (err)
			return err;
		for (p->sent++; p->sent - p->msgs > behind; p->msgs++) {
			err = bring_reader_next(rd, &m, 0);
			if (err)
				return err;
			if (m.len != MSG || memcmp(m.data, &p->msgs, 4))
				return -EBADMSG;
			if (p->msgs && m.seq != p->last_end)
				p->jumps++;
			p->last_end = m.seq + FP;
			if (((m.seq & (CAP - 1)) + FP) > p->max_end)
				p->max_end = (m.seq & (CAP - 1)) + FP;
			err = bring_reader_shift(rd);
			if (err)
				return err;
		}
	}
	return 0;
}

/*
 * A pipelined shipper always has a chunk or two in flight: its ring is
 * never empty when a writer claims or a reader shifts. With a slack
 * (writers that can wait), a reader a few messages behind does not keep
 * them walking the whole ring; without, it does (a reader stopping just
 * behind a jump would hold them to about W).
 */
TEST_F(lap, with_a_slack_a_reader_close_behind_does_not_stop_the_jumps)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct pump p = { 0 };

	ASSERT_NE_NULL(rd);
	/* By default only an empty ring jumps: a stopped reader keeps all. */
	ASSERT_EQ(0, pump_behind(self->r, rd, CAP, 8, &p));
	EXPECT_EQ(0, p.jumps);
	ASSERT_EQ(0, bring_set_jump_slack(self->r, 16 * FP));
	ASSERT_EQ(0, pump_behind(self->r, rd, 2 * CAP, 8, &p));
	p.max_end = 0; /* the laps from here on */
	ASSERT_EQ(0, pump_behind(self->r, rd, 5 * CAP, 8, &p));
	TH_LOG("8 messages behind, slack 16: %u messages, %u jumps, records ended at most %llu bytes into a lap",
	       p.msgs, p.jumps, (unsigned long long)p.max_end);
	EXPECT_LE(p.max_end, WSET + FP);
	EXPECT_GE(p.jumps, 3);
	/* A slack smaller than the lag: no jump. */
	ASSERT_EQ(0, bring_set_jump_slack(self->r, 4 * FP));
	ASSERT_EQ(0, pump_behind(self->r, rd, head_of(self->r) + 16 * FP, 8,
				 &p)); /* past what the last jump left */
	p.jumps = 0;
	ASSERT_EQ(0, pump_behind(self->r, rd, head_of(self->r) + CAP, 8, &p));
	EXPECT_EQ(0, p.jumps);
	EXPECT_EQ(-EINVAL, bring_set_jump_slack(NULL, 1));
	EXPECT_EQ(8 * FP, bring_reader_lag(rd));
	EXPECT_EQ(8 * FP, get_stats(self->r).used);
}

/*
 * With a slack, a reader that stops a little before a jump's start,
 * another reader keeping up: the jump comes anyway; its skipped bytes
 * stay out of the stopped reader's lag and of used. The next lap's
 * claims fill the room behind the stopped reader's physical cursor; then
 * a memory ring's claims escape over its bytes into the range the jump
 * skipped (Documentation/ring.rst, "Escape jumps") and the ring holds its
 * whole capacity but less than two records. A file ring does not escape
 * (the trap of bring_set_jump_slack()): its writers stop behind the
 * reader. The stopped reader then reads every message, in order, across
 * both jumps.
 */
TEST_F(lap, with_a_slack_a_reader_stopped_before_a_jump_reads_across_it)
{
	struct bring_reader *rds[2];
	struct pump p = { 0 }, q = { 0 };
	uint64_t jf, to, n = 0, stop, held, esc = 0;
	unsigned int pumped;
	struct bring_msg m;
	int err;

	ASSERT_EQ(0, bring_reader_remove(self->r, BRING_DEFAULT_READER));
	rds[0] = bring_reader_open(self->r, "fast");
	rds[1] = bring_reader_open(self->r, "slow");
	ASSERT_NE_NULL(rds[0]);
	ASSERT_NE_NULL(rds[1]);
	no_reader_jumps(rds[0]);
	ASSERT_EQ(0, bring_set_jump_slack(self->r, WSET / 2));
	/* Both keep up to just below W; then "slow" stops. */
	ASSERT_EQ(0, pump_below_w(self->r, rds, 2, &p));
	stop = head_of(self->r);
	q.msgs = p.msgs;
	q.last_end = stop;
	/* One message to W, then the next claim jumps. */
	ASSERT_EQ(0, pump(self->r, rds, 1, stop + 2 * FP, &q));
	jf = self->r->hdr->jump_from;
	to = (jf | (CAP - 1)) + 1;
	pumped = q.msgs;
	EXPECT_EQ(1, q.jumps);
	EXPECT_EQ(stop + FP, jf);
	held = (jf - stop) + (head_of(self->r) - to);
	EXPECT_EQ(held, bring_reader_lag(rds[1]));
	EXPECT_EQ(held, get_stats(self->r).used);
	/* Room: the skipped bytes are not free while "slow" is before them. */
	EXPECT_EQ(CAP - (head_of(self->r) - stop), get_stats(self->r).room);
	while ((err = bring_push_timeout(self->r, self->buf, MSG, 0)) == 0)
		n++;
	ASSERT_EQ(-EAGAIN, err);
	/*
	 * Up to "slow"'s physical cursor, then from the jump's start a lap
	 * later to the lap's end: the capacity but for the bytes before
	 * "slow" the escape could not use (less than a record) and the end
	 * of the lap (less than a record). File rings too (layout 3).
	 */
	esc = self->r->hdr->escape_from;
	EXPECT_LE(esc, stop + CAP);
	EXPECT_GT(esc + FP, stop + CAP);
	EXPECT_LE(head_of(self->r), to + CAP);
	EXPECT_GT(head_of(self->r) + FP, to + CAP);
	held = (jf - stop) + (esc - to) + (head_of(self->r) - jf - CAP);
	EXPECT_GE(held, CAP - 2 * FP);
	EXPECT_LT(get_stats(self->r).room, FP);
	EXPECT_EQ(held, bring_reader_lag(rds[1]));
	EXPECT_EQ(held, get_stats(self->r).used);
	/* "slow": every message, in order, across the jumps once. */
	q = (struct pump){ .msgs = p.msgs, .last_end = stop };
	while (bring_reader_next(rds[1], &m, 0) == 0) {
		ASSERT_EQ(MSG, m.len);
		if (q.msgs < pumped) /* then the fill's */
			ASSERT_EQ(0, memcmp(m.data, &q.msgs, 4));
		if (m.seq != q.last_end)
			q.jumps++;
		q.last_end = m.seq + FP;
		q.msgs++;
		ASSERT_EQ(0, bring_reader_shift(rds[1]));
	}
	EXPECT_EQ(2, q.jumps);
	EXPECT_EQ(pumped + n, q.msgs);
	/*
	 * "fast" stands before the escape: its skipped bytes count as used
	 * for the writers until it passes them, as a lap jump's do.
	 */
	EXPECT_EQ(CAP - get_stats(self->r).used - (esc ? jf + CAP - esc : 0),
		  get_stats(self->r).room);
	EXPECT_EQ(head_of(self->r), q.last_end);
	TH_LOG("slow reader: %u messages after its stop, %llu of them pushed once fast stopped too; held %llu of %llu bytes",
	       q.msgs - p.msgs, (unsigned long long)n,
	       (unsigned long long)held, (unsigned long long)CAP);
	bring_reader_close(rds[1]);
	bring_reader_close(rds[0]);
}

/*
 * The trap seen from an event loop: a writer that finds no room behind a
 * reader stopped before a slack jump and asks bring_write_wait_prepare()
 * is told to push now, where its claim escapes. A wait there would never
 * end: the only reader that could free room is stopped.
 */
TEST_F(lap, with_a_slack_a_prepared_write_wait_in_the_trap_escapes)
{
	struct bring_reader *rds[2];
	struct pump p = { 0 }, q = { 0 };
	struct bring_wait w;
	uint64_t stop, at;

	ASSERT_EQ(0, bring_reader_remove(self->r, BRING_DEFAULT_READER));
	rds[0] = bring_reader_open(self->r, "fast");
	rds[1] = bring_reader_open(self->r, "slow");
	ASSERT_NE_NULL(rds[0]);
	ASSERT_NE_NULL(rds[1]);
	no_reader_jumps(rds[0]);
	ASSERT_EQ(0, bring_set_jump_slack(self->r, WSET / 2));
	ASSERT_EQ(0, pump_below_w(self->r, rds, 2, &p));
	stop = head_of(self->r);
	q.msgs = p.msgs;
	ASSERT_EQ(0, pump(self->r, rds, 1, stop + 2 * FP, &q));
	ASSERT_EQ(stop + FP, self->r->hdr->jump_from);
	/* Fill the room behind "slow", not one claim more. */
	while (head_of(self->r) + FP <= stop + CAP)
		ASSERT_EQ(0, bring_push_timeout(self->r, self->buf, MSG, 0));
	ASSERT_EQ(0, self->r->hdr->escape_from);
	at = head_of(self->r);
	/* A drain wait ends by readers only: not here. */
	ASSERT_EQ(0, bring_drain_wait_prepare(self->r, MSG, &w));
	bring_write_wait_finish(self->r, &w);
	EXPECT_EQ(1, bring_write_wait_prepare(self->r, MSG, &w));
	EXPECT_EQ(0, bring_push_timeout(self->r, self->buf, MSG, 0));
	EXPECT_EQ(at, self->r->hdr->escape_from);
	EXPECT_EQ(stop + FP + CAP + FP, head_of(self->r));
	bring_reader_close(rds[1]);
	bring_reader_close(rds[0]);
}

extern int bring__stall_escape, bring__escape_stalled;

struct push_arg {
	struct bring *r;
	const char *buf;
};

/* One MSG-byte push from another thread; its result. */
static void *push_one(void *arg)
{
	const struct push_arg *a = arg;

	return (void *)(intptr_t)bring_push_timeout(a->r, a->buf, MSG, 0);
}

/*
 * An escaper preempted between its claim and the store of escape_from
 * (held there by a test hook): the reader reads up to the escape's start
 * and stops there, close enough behind head for a slack jump. No writer
 * may jump now: a new jump_from would leave the escape, once stored,
 * naming nothing, and the reader would wait at its start for good while
 * the writers filled the ring behind it (found by review).
 */
TEST_F(lap, an_escape_not_yet_published_holds_the_next_jump)
{
	struct push_arg arg = { self->r, self->buf };
	struct bring_reader *rd;
	uint64_t stop, jf, esc_at, n = 0;
	struct bring_msg m;
	pthread_t t;
	void *ret;
	int err;

	ASSERT_EQ(0, bring_reader_remove(self->r, BRING_DEFAULT_READER));
	rd = bring_reader_open(self->r, "slow");
	ASSERT_NE_NULL(rd);
	no_reader_jumps(rd);
	ASSERT_EQ(0, bring_set_jump_slack(self->r, WSET / 2));
	while (head_of(self->r) < WSET - FP) {
		ASSERT_EQ(0, bring_push_timeout(self->r, self->buf, MSG, 0));
		ASSERT_EQ(0, bring_reader_next(rd, &m, 0));
		ASSERT_EQ(0, bring_reader_shift(rd));
	}
	stop = head_of(self->r);
	while (!self->r->hdr->jump_from)
		ASSERT_EQ(0, bring_push_timeout(self->r, self->buf, MSG, 0));
	jf = self->r->hdr->jump_from;
	while (head_of(self->r) + FP <= stop + CAP)
		ASSERT_EQ(0, bring_push_timeout(self->r, self->buf, MSG, 0));
	esc_at = head_of(self->r);
	/* The escaper claims, then waits before its store. */
	bring__stall_escape = 1;
	ASSERT_EQ(0, pthread_create(&t, NULL, push_one, &arg));
	while (!__atomic_load_n(&bring__escape_stalled, __ATOMIC_ACQUIRE))
		usleep(100);
	ASSERT_EQ(jf + CAP + FP, head_of(self->r));
	/* The reader catches up to the escape's start. */
	while (bring_reader_next(rd, &m, 0) == 0)
		ASSERT_EQ(0, bring_reader_shift(rd));
	ASSERT_EQ(esc_at, rd->slot->pos);
	/* Writers with room (counted from the reader) do not jump. */
	for (n = 0; n < 64; n++)
		ASSERT_EQ(0, bring_push_timeout(self->r, self->buf, MSG, 0));
	EXPECT_EQ(jf, self->r->hdr->jump_from);
	__atomic_store_n(&bring__stall_escape, 0, __ATOMIC_RELEASE);
	ASSERT_EQ(0, pthread_join(t, &ret));
	EXPECT_EQ(0, (int)(intptr_t)ret);
	EXPECT_EQ(esc_at, self->r->hdr->escape_from);
	EXPECT_EQ(0, self->r->hdr->escaping);
	/* The reader follows the escape and reads all 65 messages. */
	for (n = 0; (err = bring_reader_next(rd, &m, 0)) == 0; n++)
		ASSERT_EQ(0, bring_reader_shift(rd));
	EXPECT_EQ(-EAGAIN, err);
	EXPECT_EQ(65, n);
	EXPECT_EQ(0, bring_reader_lag(rd));
	bring__escape_stalled = 0;
	bring_reader_close(rd);
}

/*
 * Named readers: "a" closes right before a jump and is not open while
 * the writers fill the whole capacity behind it; a second jump must not
 * happen while it sits at the first one's start (it would hide the
 * first). A reader opened later starts past the jump. "a" opens again
 * and gets everything.
 */
TEST_F(lap, named_readers_that_are_not_open_follow_the_jump)
{
	struct bring_reader *rds[2], *c;
	struct bring_reader_stats rs = { .sz = sizeof(rs) };
	struct pump p = { 0 }, q = { 0 };
	uint64_t from, to, n = 0, got = 0, next;
	struct bring_msg m;
	int err, ia;

	ASSERT_EQ(0, bring_reader_remove(self->r, BRING_DEFAULT_READER));
	rds[0] = bring_reader_open(self->r, "b");
	rds[1] = bring_reader_open(self->r, "a");
	ASSERT_NE_NULL(rds[0]);
	ASSERT_NE_NULL(rds[1]);
	ASSERT_EQ(0, pump_to_jump(self->r, rds, 2, &p, &from));
	to = (from | (CAP - 1)) + 1;
	ASSERT_EQ(to, head_of(self->r));
	bring_reader_close(rds[1]);
	for (ia = 0; ia <= BRING_READERS_MAX; ia++)
		if (!bring_get_reader_stats(self->r, ia, &rs) &&
		    !strcmp(rs.name, "a"))
			break;
	ASSERT_LE(ia, BRING_READERS_MAX);
	/* "b" keeps up for two laps' worth of W; "a" holds everything. */
	q.msgs = p.msgs;
	q.last_end = to;
	no_reader_jumps(rds[0]); /* would it jump? the writers would not */
	ASSERT_EQ(0, pump(self->r, rds, 1, to + 2 * WSET, &q));
	EXPECT_EQ(0, q.jumps);
	ASSERT_EQ(0, bring_get_reader_stats(self->r, ia, &rs));
	EXPECT_EQ(to, rs.pos);
	EXPECT_EQ(head_of(self->r) - to, rs.lag);
	EXPECT_EQ(head_of(self->r) - to, get_stats(self->r).used);
	/* A reader opened now starts at the oldest message, past the jump. */
	c = bring_reader_open(self->r, "c");
	ASSERT_NE_NULL(c);
	ASSERT_EQ(0, bring_reader_next(c, &m, 0));
	EXPECT_EQ(to, m.seq);
	bring_reader_close(c);
	ASSERT_EQ(0, bring_reader_remove(self->r, "c"));
	/* Fill up behind "a": the whole capacity from the jump's end. */
	while ((err = bring_push_timeout(self->r, self->buf, MSG, 0)) == 0)
		n++;
	ASSERT_EQ(-EAGAIN, err);
	EXPECT_EQ(to + CAP / FP * FP, head_of(self->r));
	/* "a" again: every message from the jump's end on, in order. */
	rds[1] = bring_reader_open(self->r, "a");
	ASSERT_NE_NULL(rds[1]);
	next = to;
	while (bring_reader_next(rds[1], &m, 0) == 0) {
		ASSERT_EQ(next, m.seq);
		next += 16 + ((m.len + 7) & ~7ULL);
		ASSERT_EQ(0, bring_reader_shift(rds[1]));
		got++;
	}
	EXPECT_EQ(head_of(self->r), next);
	EXPECT_EQ(q.msgs - p.msgs + n, got);
	bring_reader_close(rds[1]);
	bring_reader_close(rds[0]);
}

/*
 * File rings keep the jump in the header. "a" is not open, at the jump's
 * start, while a whole capacity is written past it; the file is closed
 * and opened again (recovery): "a" resumes at the jump's end with every
 * message, and a reader that keeps up goes on jumping.
 */
TEST_F(lap, a_file_ring_recovers_a_jump_with_a_full_capacity_behind_it)
{
	struct bring_reader *rd;
	struct pump p = { 0 };
	uint64_t from, to, n = 0, got = 0;
	struct bring_msg m;
	int err;

	if (!variant->file)
		SKIP(return, "file rings only");
	rd = bring_default_reader(self->r);
	ASSERT_EQ(0, pump_to_jump(self->r, &rd, 1, &p, &from));
	to = (from | (CAP - 1)) + 1;
	while ((err = bring_push_timeout(self->r, self->buf, MSG, 0)) == 0)
		n++;
	ASSERT_EQ(-EAGAIN, err);
	EXPECT_EQ(from, self->r->hdr->jump_from);
	EXPECT_EQ(CAP / FP, n);
	bring_free(self->r);
	self->r = bring_open(self->t.path, CAP, NULL);
	ASSERT_NE_NULL(self->r);
	EXPECT_EQ(n * FP, get_stats(self->r).used);
	while (bring_next_timeout(self->r, &m, 0) == 0) {
		ASSERT_EQ(to + got * FP, m.seq);
		ASSERT_EQ(MSG, m.len);
		ASSERT_EQ(0, bring_shift(self->r));
		got++;
	}
	EXPECT_EQ(n, got);
	rd = bring_default_reader(self->r);
	p.msgs = 0;
	p.jumps = 0;
	ASSERT_EQ(0, pump(self->r, &rd, 1, head_of(self->r) + 3 * CAP, &p));
	EXPECT_GE(p.jumps, 2);
	EXPECT_LT(from, self->r->hdr->jump_from);
}

/*
 * A jumper killed at each step of a jump: 1, after its CAS on head and
 * before the jump is published; 2, after publishing (a writer: before
 * its record's header is written); 3, not killed. The jumper is a
 * writer whose claim jumps, or a reader ("k", in another process) whose
 * shift to head jumps. A reader that shares the file repairs the claim
 * at run time (after its 200 ms liveness check) and gets the next
 * message; a fresh open recovers the file. Nothing but the killed
 * writer's message is lost.
 */
static void kill_jumper(struct __test_metadata *_metadata, const char *path,
			int step, bool reader)
{
	pid_t pid = fork_child();
	int status;

	ASSERT_GE(pid, 0);
	if (!pid) {
		struct bring *r = bring_open(path, CAP, NULL);
		char buf[100] = "killed";
		struct bring_reader *k;
		struct bring_msg m;

		CHILD_CHECK(r);
		bring__fault_jump = step;
		if (reader) {
			k = bring_reader_open(r, "k");
			CHILD_CHECK(k);
			CHILD_CHECK(bring_reader_next(k, &m, 0) == 0);
			CHILD_CHECK(bring_reader_shift(k) == 0);
		} else {
			CHILD_CHECK(bring_push(r, buf, sizeof(buf)) == 0);
		}
		_exit(step == 3 ? 0 : 1); /* steps 1, 2: SIGKILL first */
	}
	status = wait_child(pid, 10000);
	if (step == 3)
		ASSERT_TRUE(exited_ok(status));
	else
		ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void jumper_killed(struct __test_metadata *_metadata,
			  struct bring **rp, const char *path, int step,
			  bool reopen, bool reader)
{
	struct bring_reader *rds[2] = { bring_default_reader(*rp) };
	struct pump p = { 0 };
	struct bring_msg m;
	uint64_t from;

	no_reader_jumps(rds[0]);
	if (reader) {
		rds[1] = bring_reader_open(*rp, "k");
		ASSERT_NE_NULL(rds[1]);
		no_reader_jumps(rds[1]);
	}
	if (reader) {
		/*
		 * Below W, then one more message, past W, that only "k"
		 * (closed here, read in the child) has not read: its shift
		 * finds the ring empty past W.
		 */
		ASSERT_EQ(0, pump_below_w(*rp, rds, 2, &p));
		bring_reader_close(rds[1]);
		ASSERT_EQ(0, pump(*rp, rds, 1, head_of(*rp) + 1, &p));
		from = head_of(*rp);
	} else {
		ASSERT_EQ(0, pump_to_jump(*rp, rds, 1, &p, &from));
	}
	ASSERT_EQ(from, head_of(*rp));
	ASSERT_LE(WSET, from & (CAP - 1));
	kill_jumper(_metadata, path, step, reader);
	if (step >= 2)
		EXPECT_EQ(from, (*rp)->hdr->jump_from);
	else
		EXPECT_NE(from, (*rp)->hdr->jump_from);
	if (reopen) {
		bring_free(*rp);
		*rp = bring_open(path, CAP, NULL);
		ASSERT_NE_NULL(*rp);
	}
	ASSERT_EQ(0, bring_push(*rp, "after", 5));
	if (step == 3 && !reader) {
		ASSERT_EQ(0, bring_next_timeout(*rp, &m, 0));
		EXPECT_EQ(100, m.len);
		EXPECT_EQ(0, strcmp(m.data, "killed"));
		EXPECT_EQ(0, m.seq & (CAP - 1));
		ASSERT_EQ(0, bring_shift(*rp));
	}
	/* At run time, through the stuck reader's repair (200 ms). */
	ASSERT_EQ(0, bring_next_timeout(*rp, &m, 3000));
	EXPECT_EQ(5, m.len);
	EXPECT_EQ(0, memcmp(m.data, "after", 5));
	EXPECT_EQ((from | (CAP - 1)) + 1 + (reader ? 0 : FP_OF(100)), m.seq);
	ASSERT_EQ(0, bring_shift(*rp));
	EXPECT_EQ(-EAGAIN, bring_next_timeout(*rp, &m, 0));
	if (reader) {
		/* "k" follows the jump (or the repaired claim) as well. */
		rds[1] = bring_reader_open(*rp, "k");
		ASSERT_NE_NULL(rds[1]);
		ASSERT_EQ(0, bring_reader_next(rds[1], &m, 0));
		EXPECT_EQ(5, m.len);
		bring_reader_close(rds[1]);
		ASSERT_EQ(0, bring_reader_remove(*rp, "k"));
	}
	EXPECT_EQ(0, get_stats(*rp).used);
	/* And the ring goes on jumping. */
	rds[0] = bring_default_reader(*rp);
	rds[0]->jump_look = 0;
	p.msgs = 0;
	p.jumps = 0;
	ASSERT_EQ(0, pump(*rp, rds, 1, head_of(*rp) + CAP + WSET, &p));
	EXPECT_GE(p.jumps, 1);
	EXPECT_LE(p.max_end, WSET + FP);
}

static void kill_steps(struct __test_metadata *_metadata, struct bring **rp,
		       const char *path, bool reopen, bool reader)
{
	int step;

	for (step = 1; step <= 3; step++) {
		TH_LOG("%s killed at step %d", reader ? "reader" : "writer",
		       step);
		jumper_killed(_metadata, rp, path, step, reopen, reader);
	}
}

TEST_F(lap, a_jumper_killed_while_jumping_is_repaired_at_run_time)
{
	if (!variant->file)
		SKIP(return, "file rings only (memory rings have no repair)");
	kill_steps(_metadata, &self->r, self->t.path, false, false);
	kill_steps(_metadata, &self->r, self->t.path, false, true);
}

TEST_F(lap, a_jumper_killed_while_jumping_is_recovered_at_open)
{
	if (!variant->file)
		SKIP(return, "file rings only");
	kill_steps(_metadata, &self->r, self->t.path, true, false);
	kill_steps(_metadata, &self->r, self->t.path, true, true);
}

/*
 * A dead lap jump from inside a lap, after a jump from deeper in the lap
 * before: the claim from H (offset W) to the next lap crosses the old
 * jump_from plus the capacity (offset about 3W), so the repair takes it
 * for an escape (dead_escape() in lib/file.c; recovery likewise). That
 * is harmless: no cursor is before the old jump, the readers at H go on
 * at jump_from plus the capacity, inside the dead claim, whose rest is
 * discarded, and the next message arrives where it would have. Found in
 * review.
 */
static void dead_jump_inside_lap(struct __test_metadata *_metadata,
				 struct bring **rp, const char *path,
				 bool reopen)
{
	struct bring_reader *rds[1] = { bring_default_reader(*rp) };
	struct bring_reader *hold;
	struct pump p = { 0 };
	struct bring_msg m;
	uint64_t j, from;

	no_reader_jumps(rds[0]);
	hold = bring_reader_open(*rp, "hold");
	ASSERT_NE_NULL(hold);
	/* "hold" keeps the ring from jumping until about 3W. */
	ASSERT_EQ(0, pump_to_offset(*rp, rds, 1, 3 * WSET, &p));
	bring_reader_close(hold);
	ASSERT_EQ(0, bring_reader_remove(*rp, "hold"));
	/* The next claims jump, once past the look hint "hold" caused. */
	while (!(*rp)->hdr->jump_from && head_of(*rp) & (CAP - 1))
		ASSERT_EQ(0, pump(*rp, rds, 1, head_of(*rp) + 1, &p));
	j = (*rp)->hdr->jump_from;
	ASSERT_LE(3 * WSET, j & (CAP - 1));
	/* Into the next lap, to W: the child's claim jumps, and dies. */
	ASSERT_EQ(0, pump_to_jump(*rp, rds, 1, &p, &from));
	ASSERT_EQ(from, head_of(*rp));
	ASSERT_LT(from, j + CAP);
	kill_jumper(_metadata, path, 1, false);
	EXPECT_EQ(j, (*rp)->hdr->jump_from);
	if (reopen) {
		bring_free(*rp);
		*rp = bring_open(path, CAP, NULL);
		ASSERT_NE_NULL(*rp);
	} else {
		/* The stuck reader's repair: at H, then at J + capacity. */
		EXPECT_EQ(-ETIMEDOUT, bring_next_timeout(*rp, &m, 1000));
	}
	EXPECT_EQ(from, (*rp)->hdr->escape_from);
	ASSERT_EQ(0, bring_push(*rp, "after", 5));
	ASSERT_EQ(0, bring_next_timeout(*rp, &m, 3000));
	EXPECT_EQ(5, m.len);
	EXPECT_EQ(0, memcmp(m.data, "after", 5));
	EXPECT_EQ((from | (CAP - 1)) + 1 + FP_OF(100), m.seq);
	ASSERT_EQ(0, bring_shift(*rp));
	EXPECT_EQ(0, get_stats(*rp).used);
	/* And the ring goes on jumping. */
	rds[0] = bring_default_reader(*rp);
	rds[0]->jump_look = 0;
	p.msgs = 0;
	p.jumps = 0;
	ASSERT_EQ(0, pump(*rp, rds, 1, head_of(*rp) + CAP + WSET, &p));
	EXPECT_GE(p.jumps, 1);
	EXPECT_LT(j, (*rp)->hdr->jump_from);
}

TEST_F(lap, a_dead_lap_jump_from_inside_the_lap_is_repaired)
{
	if (!variant->file)
		SKIP(return, "file rings only (memory rings have no repair)");
	dead_jump_inside_lap(_metadata, &self->r, self->t.path, false);
}

TEST_F(lap, a_dead_lap_jump_from_inside_the_lap_is_recovered)
{
	if (!variant->file)
		SKIP(return, "file rings only");
	dead_jump_inside_lap(_metadata, &self->r, self->t.path, true);
}

/*
 * An escaper killed at each step of an escape (file rings): 1, after its
 * intent and before its CAS on head; 2, after the CAS and before
 * escape_from is stored; 3, after the store and before its record's
 * header is written; 4, not killed. "slow" stopped right after a slack
 * jump, the writers filled the room behind it, and "fast" read all of
 * it: it stands at the escape's start X. The escaper is another
 * process. Then "fast" is repaired at run time (the escape is published
 * for the dead escaper; a DISCARD header at X would lie on "slow"'s
 * record), or the file is opened again (recovery finds the escape,
 * stored or in the dead escaper's intent, and keeps "slow"'s bytes, more
 * than a capacity behind head). Nothing but the killed writer's message
 * is lost, and the ring goes on jumping.
 */
static void kill_escaper(struct __test_metadata *_metadata, const char *path,
			 int step)
{
	pid_t pid = fork_child();
	int status;

	ASSERT_GE(pid, 0);
	if (!pid) {
		struct bring *r = bring_open(path, CAP, NULL);
		char buf[100] = "killed";

		CHILD_CHECK(r);
		bring__fault_escape = step;
		CHILD_CHECK(bring_push(r, buf, sizeof(buf)) == 0);
		_exit(step == 4 ? 0 : 1); /* steps 1-3: SIGKILL first */
	}
	status = wait_child(pid, 10000);
	if (step == 4)
		ASSERT_TRUE(exited_ok(status));
	else
		ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/*
 * Everything @rd holds, in order: pumped messages numbered from @first,
 * then (@killed) the escaper's, then "after". Returns the pumped ones.
 */
static unsigned int read_escaped(struct __test_metadata *_metadata,
				 struct bring_reader *rd, unsigned int first,
				 bool killed, uint64_t after_at)
{
	unsigned int n = 0;
	struct bring_msg m;

	while (bring_reader_next(rd, &m, 3000) == 0 && m.len == MSG) {
		EXPECT_EQ(0, memcmp(m.data, &(unsigned int){ first + n }, 4));
		n++;
		ASSERT_EQ(0, bring_reader_shift(rd));
	}
	if (!killed) {
		EXPECT_EQ(100, m.len);
		EXPECT_EQ(0, strcmp(m.data, "killed"));
		ASSERT_EQ(0, bring_reader_shift(rd));
		ASSERT_EQ(0, bring_reader_next(rd, &m, 3000));
	}
	EXPECT_EQ(5, m.len);
	EXPECT_EQ(0, memcmp(m.data, "after", 5));
	EXPECT_EQ(after_at, m.seq);
	ASSERT_EQ(0, bring_reader_shift(rd));
	EXPECT_EQ(-EAGAIN, bring_reader_next(rd, &m, 0));
	return n;
}

/* The escape from the last jump, if any (the field keeps older ones). */
static uint64_t escape_of(const struct bring *r)
{
	struct ring_jumps j;

	ring_jumps_load(r, &j);
	return j.esc;
}

/* The trap of the escape tests, and where its messages are. */
struct trap {
	struct bring_reader *rds[2]; /* "fast", "slow" */
	unsigned int first; /* the first message "slow" has not read */
	unsigned int msgs; /* the next message number */
	uint64_t jf, esc_at; /* the jump; head, where a claim escapes */
};

/*
 * "fast" and "slow" keep up to just below W; "slow" stops; the next
 * claim jumps with "slow" a record behind; the writers fill the room
 * behind "slow", which "fast" reads: "fast" stands at head, X, where
 * the next claim escapes.
 */
static void trap_set(struct __test_metadata *_metadata, struct bring *r,
		     struct trap *t)
{
	struct pump p = { 0 }, q = { 0 };
	struct bring_msg m;
	char buf[MSG];
	uint64_t stop;

	memset(buf, 'f', sizeof(buf));
	t->rds[0] = bring_reader_open(r, "fast");
	t->rds[1] = bring_reader_open(r, "slow");
	ASSERT_NE_NULL(t->rds[0]);
	ASSERT_NE_NULL(t->rds[1]);
	no_reader_jumps(t->rds[0]);
	no_reader_jumps(t->rds[1]);
	ASSERT_EQ(0, bring_set_jump_slack(r, WSET / 2));
	ASSERT_EQ(0, pump_below_w(r, t->rds, 2, &p));
	stop = head_of(r);
	t->first = p.msgs;
	q.msgs = p.msgs;
	ASSERT_EQ(0, pump(r, t->rds, 1, stop + 2 * FP, &q));
	t->jf = r->hdr->jump_from;
	ASSERT_EQ(stop + FP, t->jf);
	t->msgs = q.msgs;
	while (head_of(r) + FP <= stop + CAP) {
		memcpy(buf, &t->msgs, sizeof(t->msgs));
		ASSERT_EQ(0, bring_push_timeout(r, buf, MSG, 0));
		t->msgs++;
	}
	while (bring_reader_next(t->rds[0], &m, 0) == 0)
		ASSERT_EQ(0, bring_reader_shift(t->rds[0]));
	t->esc_at = head_of(r);
	ASSERT_EQ(t->esc_at, t->rds[0]->pos);
}

static void trap_close(struct __test_metadata *_metadata, struct bring *r,
		       struct trap *t)
{
	bring_reader_close(t->rds[1]);
	bring_reader_close(t->rds[0]);
	ASSERT_EQ(0, bring_reader_remove(r, "slow"));
	ASSERT_EQ(0, bring_reader_remove(r, "fast"));
}

static void escaper_killed(struct __test_metadata *_metadata,
			   struct bring **rp, const char *path, int step,
			   bool reopen)
{
	struct trap t;
	struct pump p = { 0 };
	struct bring_msg m;
	/* Killed before its CAS, the escape is the next claim's. */
	uint64_t claimed = step == 1 ? 0 : FP_OF(100), after_at;

	trap_set(_metadata, *rp, &t);
	after_at = t.jf + CAP + claimed;
	kill_escaper(_metadata, path, step);
	EXPECT_EQ(step == 1 ? t.esc_at : t.jf + CAP + FP_OF(100),
		  head_of(*rp));
	EXPECT_EQ(step >= 3 ? t.esc_at : 0, escape_of(*rp));
	if (reopen) {
		bring_reader_close(t.rds[1]);
		bring_reader_close(t.rds[0]);
		bring_free(*rp);
		*rp = bring_open(path, CAP, NULL);
		ASSERT_NE_NULL(*rp);
		EXPECT_EQ(step >= 2 ? t.esc_at : 0, escape_of(*rp));
		t.rds[0] = bring_reader_open(*rp, "fast");
		t.rds[1] = bring_reader_open(*rp, "slow");
		ASSERT_NE_NULL(t.rds[0]);
		ASSERT_NE_NULL(t.rds[1]);
	} else {
		/*
		 * The writers wait (in the trap, the escape not published)
		 * until a reader stuck at X repairs it (200 ms): "fast"
		 * first. Killed before its CAS: nothing to repair.
		 */
		ASSERT_EQ(step < 4 ? -ETIMEDOUT : 0,
			  bring_reader_next(t.rds[0], &m, 1000));
		EXPECT_EQ(step >= 2 ? t.esc_at : 0, escape_of(*rp));
	}
	ASSERT_EQ(0, bring_push(*rp, "after", 5));
	EXPECT_EQ(t.esc_at, escape_of(*rp));
	/* "fast": through the repair at run time, or recovered. */
	EXPECT_EQ(0, read_escaped(_metadata, t.rds[0], t.msgs, step < 4,
				  after_at));
	/* "slow": every message from its stop, across jump and escape. */
	EXPECT_EQ(t.msgs - t.first,
		  read_escaped(_metadata, t.rds[1], t.first, step < 4,
			       after_at));
	EXPECT_EQ(0, get_stats(*rp).used);
	/* And the ring goes on jumping. */
	bring_reader_close(t.rds[1]);
	ASSERT_EQ(0, bring_reader_remove(*rp, "slow"));
	t.rds[0]->jump_look = 0;
	/* From the next lap on: this one's look hint may be past W. */
	ASSERT_EQ(0, pump(*rp, t.rds, 1, (head_of(*rp) | (CAP - 1)) + 1, &p));
	p.max_end = 0;
	p.jumps = 0;
	ASSERT_EQ(0, pump(*rp, t.rds, 1, head_of(*rp) + CAP + WSET, &p));
	EXPECT_GE(p.jumps, 1);
	EXPECT_LE(p.max_end, WSET + FP);
	bring_reader_close(t.rds[0]);
	ASSERT_EQ(0, bring_reader_remove(*rp, "fast"));
}

/*
 * A dead escaper's claim, its escape not published: "slow" reads on up
 * to X too, so close behind head that the writers' claims could make a
 * slack jump. None may jump before the repair published the escape (a
 * new jump_from would leave it naming nothing, and readers at X would
 * wait there for good): the dead owner's intent, with no record at its
 * start, holds the jumps as a live escaper's does. Then both readers
 * get every message. Found in review.
 */
TEST_F(lap, a_dead_escapers_claim_holds_the_next_jump_until_repaired)
{
	struct bring **rp = &self->r;
	struct bring_msg m;
	struct trap t;
	unsigned int n;

	if (!variant->file)
		SKIP(return, "file rings only (memory rings have no repair)");
	ASSERT_EQ(0, bring_reader_remove(*rp, BRING_DEFAULT_READER));
	trap_set(_metadata, *rp, &t);
	kill_escaper(_metadata, self->t.path, 2);
	/* "slow" reads up to X, never waiting there (200 ms: repair). */
	while (t.rds[1]->pos < t.esc_at) {
		ASSERT_EQ(0, bring_reader_next(t.rds[1], &m, 0));
		ASSERT_EQ(0, bring_reader_shift(t.rds[1]));
	}
	for (n = 0; n < 64; n++)
		ASSERT_EQ(0, bring_push_timeout(*rp, self->buf, MSG, 0));
	EXPECT_EQ(t.jf, (*rp)->hdr->jump_from);
	EXPECT_EQ(0, escape_of(*rp));
	for (n = 0; bring_reader_next(t.rds[0], &m, 1000) == 0; n++)
		ASSERT_EQ(0, bring_reader_shift(t.rds[0]));
	EXPECT_EQ(64, n);
	EXPECT_EQ(t.esc_at, escape_of(*rp));
	for (n = 0; bring_reader_next(t.rds[1], &m, 1000) == 0; n++)
		ASSERT_EQ(0, bring_reader_shift(t.rds[1]));
	EXPECT_EQ(64, n);
	trap_close(_metadata, *rp, &t);
}

static void escape_kill_steps(struct __test_metadata *_metadata,
			      struct bring **rp, const char *path, bool reopen)
{
	int step;

	ASSERT_EQ(0, bring_reader_remove(*rp, BRING_DEFAULT_READER));
	for (step = 1; step <= 4; step++) {
		TH_LOG("escaper killed at step %d", step);
		escaper_killed(_metadata, rp, path, step, reopen);
	}
}

TEST_F(lap, an_escaper_killed_while_escaping_is_repaired_at_run_time)
{
	if (!variant->file)
		SKIP(return, "file rings only (memory rings have no repair)");
	escape_kill_steps(_metadata, &self->r, self->t.path, false);
}

TEST_F(lap, an_escaper_killed_while_escaping_is_recovered_at_open)
{
	if (!variant->file)
		SKIP(return, "file rings only");
	escape_kill_steps(_metadata, &self->r, self->t.path, true);
}

/* ------------------------------------------------------------------ */
/*
 * The two stress tests' common parts: the first failure and why, a
 * writer's push (alone or in a batch of four), and the reader's checks.
 */
struct stress_fail {
	int fail;
	char why[160];
};

static void stress_fail(struct stress_fail *f, const char *why)
{
	if (!__atomic_exchange_n(&f->fail, 1, __ATOMIC_SEQ_CST))
		snprintf(f->why, sizeof(f->why), "%s", why);
}

static bool stress_failed(struct stress_fail *f)
{
	return __atomic_load_n(&f->fail, __ATOMIC_RELAXED);
}

/*
 * Writer @id's messages from @seq, @len bytes each, built in @buf (4 x
 * 2048 bytes): one bring_push(), or (@batch) a bring_push_batch() of up
 * to four, none at or past @limit. Returns how many it pushed, or, when
 * that failed, how many it tried (the caller's rounds stay in step).
 */
static int stress_push(struct bring *r, struct stress_fail *f, uint8_t *buf,
		       unsigned int id, uint32_t seq, size_t len, bool batch,
		       uint32_t limit)
{
	struct bring_msg msgs[4];
	int n, k;

	if (!batch) {
		tmsg_build(buf, len, id, seq);
		if (bring_push(r, buf, len))
			stress_fail(f, "push");
		return 1;
	}
	for (k = 0; k < 4 && seq + k < limit; k++) {
		msgs[k].data = buf + k * 2048;
		msgs[k].len = len;
		tmsg_build(buf + k * 2048, len, id, seq + k);
	}
	n = bring_push_batch(r, msgs, k, -1);
	if (n <= 0) {
		stress_fail(f, "push_batch");
		n = k;
	}
	return n;
}

/* A stress reader's view: each writer's next message, and the jumps. */
struct stress_check {
	uint32_t next[4];
	unsigned int writers;
	uint64_t cap; /* a power of two */
	uint64_t end; /* where the last message's record ended */
	uint64_t jumps, escapes;
};

/*
 * Check @n peeked messages: every writer's in order, each once. A record
 * not where the last one ended is past a lap jump (at a lap's start) or
 * an escape (elsewhere). NULL, or what is wrong.
 */
static const char *stress_check(struct stress_check *c,
				const struct bring_msg *msgs, int n)
{
	const char *why;
	struct tmsg h;
	int i;

	for (i = 0; i < n; i++) {
		why = tmsg_check(&msgs[i], &h);
		if (!why && (h.id >= c->writers || h.seq != c->next[h.id]))
			why = "out of order or duplicated";
		if (why)
			return why;
		c->next[h.id]++;
		if (c->end && msgs[i].seq != c->end) {
			if (msgs[i].seq & (c->cap - 1))
				c->escapes++;
			else
				c->jumps++;
		}
		c->end = msgs[i].seq + 16 + ((msgs[i].len + 7) & ~7ULL);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Stress: writers of three kinds, a reader that keeps up, one that lags */

#define ST_WRITERS 3
#define ST_CAP (2ULL << 20)

#define ST_ROUND 64 /* messages per writer between two empty rings */

struct stress {
	struct bring *r;
	uint32_t per_writer; /* a multiple of ST_ROUND */
	pthread_barrier_t round;
	struct stress_fail f;
	uint64_t jumps[2];
};

struct st_arg {
	struct stress *s;
	unsigned int id;
	struct bring_reader *rd;
	unsigned int ridx;
};

/*
 * Between rounds the writers wait until the readers have read all:
 * the first claim of the next round finds the ring empty and jumps when
 * head is past the working set.
 */
static void st_round_end(struct stress *s, unsigned int id)
{
	uint64_t t0 = now_ns();

	pthread_barrier_wait(&s->round);
	while (!id && get_stats(s->r).used && !stress_failed(&s->f)) {
		if (now_ns() - t0 > 10000 * MS) {
			stress_fail(&s->f, "readers did not catch up in 10 s");
			break;
		}
		usleep(100);
	}
	pthread_barrier_wait(&s->round);
}

static void *st_writer(void *arg)
{
	struct st_arg *a = arg;
	struct stress *s = a->s;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (a->id + 1);
	uint8_t buf[4 * 2048];
	uint32_t seq = 0;

	while (seq < s->per_writer) {
		size_t len = 16 + xorshift(&seed) % 2000;
		uint32_t round_end = (seq / ST_ROUND + 1) * ST_ROUND;
		struct bring_resv resv;

		switch (a->id) {
		case 0:
		case 1:
			seq += (uint32_t)stress_push(s->r, &s->f, buf, a->id,
						     seq, len, a->id,
						     round_end);
			break;
		default:
			/* Reserve, hold it a little, then commit. */
			if (bring_reserve(s->r, len, &resv, -1)) {
				stress_fail(&s->f, "reserve");
				seq++;
				break;
			}
			tmsg_build(resv.data, len, a->id, seq++);
			if (!(seq & 63))
				usleep(50);
			if (bring_commit(s->r, &resv, len))
				stress_fail(&s->f, "commit");
			break;
		}
		if (seq == round_end)
			st_round_end(s, a->id);
	}
	return NULL;
}

static void *st_reader(void *arg)
{
	struct st_arg *a = arg;
	struct stress *s = a->s;
	struct stress_check c = { .writers = ST_WRITERS, .cap = ST_CAP };
	uint64_t total = 0, want = (uint64_t)ST_WRITERS * s->per_writer;
	struct bring_msg msgs[16];
	const char *why;
	int n;

	while (total < want && !stress_failed(&s->f)) {
		n = bring_reader_peek(a->rd, msgs, 16, 0, 5000);
		if (n < 0) {
			stress_fail(&s->f, "peek failed or timed out");
			break;
		}
		why = stress_check(&c, msgs, n);
		if (why) {
			stress_fail(&s->f, why);
			break;
		}
		total += (uint64_t)n;
		if (a->ridx && (total & 63) == 0)
			usleep(20); /* the lagging reader */
		if (bring_reader_shift(a->rd))
			stress_fail(&s->f, "shift");
	}
	s->jumps[a->ridx] = c.jumps;
	return NULL;
}

TEST(stress_writers_reservations_and_readers_across_jumps)
{
	struct stress s = { .per_writer = SANITIZED_THREAD ? 64 * ST_ROUND :
					 SANITIZED_ADDRESS ? 160 * ST_ROUND :
							     640 * ST_ROUND };
	BRING_OPTS(o, .flags = BRING_NO_DEFAULT_READER);
	pthread_t tw[ST_WRITERS], tr[2];
	struct st_arg aw[ST_WRITERS], ar[2];
	int i;

	s.r = bring_new(ST_CAP, &o);
	ASSERT_NE_NULL(s.r);
	ASSERT_EQ(0, pthread_barrier_init(&s.round, NULL, ST_WRITERS));
	for (i = 0; i < 2; i++) {
		ar[i] = (struct st_arg){ .s = &s, .ridx = (unsigned int)i };
		ar[i].rd = bring_reader_open(s.r, i ? "slow" : "fast");
		ASSERT_NE_NULL(ar[i].rd);
		ASSERT_EQ(0, pthread_create(&tr[i], NULL, st_reader, &ar[i]));
	}
	for (i = 0; i < ST_WRITERS; i++) {
		aw[i] = (struct st_arg){ .s = &s, .id = (unsigned int)i };
		ASSERT_EQ(0, pthread_create(&tw[i], NULL, st_writer, &aw[i]));
	}
	for (i = 0; i < ST_WRITERS; i++)
		pthread_join(tw[i], NULL);
	for (i = 0; i < 2; i++)
		pthread_join(tr[i], NULL);
	TH_LOG("%u messages per writer; jumps seen by the readers: %llu, %llu",
	       s.per_writer, (unsigned long long)s.jumps[0],
	       (unsigned long long)s.jumps[1]);
	EXPECT_EQ(0, s.f.fail) TH_LOG("%s", s.f.why);
	EXPECT_EQ(s.jumps[0], s.jumps[1]);
	/*
	 * A round writes about 200 KB, W is 256 KiB: the ring is empty past
	 * W every second round, and the round after it starts with a jump.
	 */
	EXPECT_GE(s.jumps[0], s.per_writer / ST_ROUND / 4);
	pthread_barrier_destroy(&s.round);
	EXPECT_EQ(0, get_stats(s.r).used);
	for (i = 0; i < 2; i++)
		bring_reader_close(ar[i].rd);
	bring_free(s.r);
}

/* ------------------------------------------------------------------ */
/*
 * Stress, escapes: two writers pushing without pause, a reader keeping up
 * and one that often stops for a while and, when it finds itself before
 * a lap jump nothing escaped from yet, stands there until the claims
 * behind it escape (or 50 ms pass: a jump that skipped fewer bytes than a
 * claim needs cannot be escaped). The writers go on past their share
 * until the readers have followed SE_ESCAPES escapes, within a bound, and
 * the ring is closed: both readers follow every jump and escape with
 * every message once, in order.
 */
#define SE_CAP (2ULL << 20)
#define SE_WRITERS 2
#define SE_ESCAPES 3
#define SE_SECONDS 20

struct se {
	struct bring *r;
	uint32_t per_writer;
	struct stress_fail f;
	int writers_done;
	uint32_t pushed[SE_WRITERS];
	uint64_t jumps[2], escapes[2];
	time_t deadline;
};

struct se_arg {
	struct se *s;
	unsigned int id;
	struct bring_reader *rd;
};

/* Past its share, a writer goes on until both readers saw the escapes. */
static bool se_writer_done(struct se *s, uint32_t seq)
{
	if (seq < s->per_writer)
		return false;
	if (stress_failed(&s->f))
		return true;
	if (__atomic_load_n(&s->escapes[0], __ATOMIC_RELAXED) >= SE_ESCAPES &&
	    __atomic_load_n(&s->escapes[1], __ATOMIC_RELAXED) >= SE_ESCAPES)
		return true;
	return time(NULL) > s->deadline;
}

static void *se_writer(void *arg)
{
	struct se_arg *a = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (a->id + 1);
	uint8_t buf[4 * 2048];
	uint32_t seq = 0;

	while (!se_writer_done(a->s, seq)) {
		size_t len = 16 + xorshift(&seed) % 2000;

		seq += (uint32_t)stress_push(a->s->r, &a->s->f, buf, a->id, seq,
					     len, a->id, UINT32_MAX);
	}
	a->s->pushed[a->id] = seq;
	/* The last writer closes: the readers drain, then get -EPIPE. */
	if (__atomic_add_fetch(&a->s->writers_done, 1, __ATOMIC_SEQ_CST) ==
	    SE_WRITERS)
		bring_close(a->s->r);
	return NULL;
}

/*
 * The slow reader, at @end: before a lap jump with no escape from it yet,
 * it stands until one is published, or 50 ms pass.
 */
static void se_hold_before_jump(struct se *s, uint64_t end)
{
	struct ring_jumps j;
	int i;

	for (i = 0; i < 250; i++) {
		ring_jumps_load(s->r, &j);
		if (!j.from || end >= j.from || j.esc)
			return;
		usleep(200);
	}
}

static void *se_reader(void *arg)
{
	struct se_arg *a = arg;
	struct se *s = a->s;
	struct stress_check c = { .writers = SE_WRITERS, .cap = SE_CAP };
	uint64_t seed = 0x2545f4914f6cdd1dULL * (a->id + 1);
	struct bring_msg msgs[16];
	const char *why;
	int n, i;

	while (!stress_failed(&s->f)) {
		n = bring_reader_peek(a->rd, msgs, 16, 0, 5000);
		if (n == -EPIPE)
			break;
		if (n < 0) {
			stress_fail(&s->f, "peek failed or timed out");
			break;
		}
		why = stress_check(&c, msgs, n);
		if (why) {
			stress_fail(&s->f, why);
			return NULL;
		}
		/* Read by the writers, who go on until both saw enough. */
		__atomic_store_n(&s->escapes[a->id], c.escapes,
				 __ATOMIC_RELAXED);
		/* "slow": before the last jump, stop a while, often, and hold
		 * there while nothing escaped from it. */
		if (a->id && c.end < __atomic_load_n(&s->r->hdr->jump_from,
						     __ATOMIC_RELAXED)) {
			if (!(xorshift(&seed) & 3))
				usleep(300);
			se_hold_before_jump(s, c.end);
		}
		if (bring_reader_shift(a->rd))
			stress_fail(&s->f, "shift");
	}
	s->jumps[a->id] = c.jumps;
	for (i = 0; i < SE_WRITERS && !stress_failed(&s->f); i++)
		if (c.next[i] != s->pushed[i])
			stress_fail(&s->f, "a reader missed messages");
	return NULL;
}

static void se_run(struct __test_metadata *_metadata, struct bring *r)
{
	struct se s = { .per_writer = SANITIZED_THREAD ? 20000 :
				      SANITIZED_ADDRESS ? 60000 : 200000,
			.deadline = time(NULL) + SE_SECONDS, .r = r };
	pthread_t tw[SE_WRITERS], tr[2];
	struct se_arg aw[SE_WRITERS], ar[2];
	int i;

	ASSERT_EQ(0, bring_set_jump_slack(s.r, SE_CAP / 16));
	for (i = 0; i < 2; i++) {
		ar[i] = (struct se_arg){ .s = &s, .id = (unsigned int)i };
		ar[i].rd = bring_reader_open(s.r, i ? "slow" : "fast");
		ASSERT_NE_NULL(ar[i].rd);
		ASSERT_EQ(0, pthread_create(&tr[i], NULL, se_reader, &ar[i]));
	}
	for (i = 0; i < SE_WRITERS; i++) {
		aw[i] = (struct se_arg){ .s = &s, .id = (unsigned int)i };
		ASSERT_EQ(0, pthread_create(&tw[i], NULL, se_writer, &aw[i]));
	}
	for (i = 0; i < SE_WRITERS; i++)
		pthread_join(tw[i], NULL);
	for (i = 0; i < 2; i++)
		pthread_join(tr[i], NULL);
	TH_LOG("%u, %u messages; jumps %llu, %llu; escapes %llu, %llu",
	       s.pushed[0], s.pushed[1], (unsigned long long)s.jumps[0],
	       (unsigned long long)s.jumps[1],
	       (unsigned long long)s.escapes[0],
	       (unsigned long long)s.escapes[1]);
	EXPECT_EQ(0, s.f.fail) TH_LOG("%s", s.f.why);
	EXPECT_EQ(s.jumps[0], s.jumps[1]);
	EXPECT_EQ(s.escapes[0], s.escapes[1]);
	EXPECT_GE(s.escapes[0], SE_ESCAPES);
	EXPECT_EQ(0, get_stats(s.r).used);
	for (i = 0; i < 2; i++)
		bring_reader_close(ar[i].rd);
}

TEST_TIMEOUT(stress_escapes_keep_every_message_once, 60)
{
	BRING_OPTS(o, .flags = BRING_NO_DEFAULT_READER);
	struct bring *r = bring_new(SE_CAP, &o);

	ASSERT_NE_NULL(r);
	se_run(_metadata, r);
	bring_free(r);
}

/* The same in a file ring (layout 3): its escapers are known by intents. */
TEST_TIMEOUT(stress_escapes_in_a_file_ring_keep_every_message_once, 60)
{
	BRING_OPTS(o, .flags = BRING_NO_DEFAULT_READER);
	struct tmp t;
	struct bring *r;

	ASSERT_EQ(0, tmp_make_shm(&t));
	r = bring_open(t.path, SE_CAP, &o);
	ASSERT_NE_NULL(r);
	se_run(_metadata, r);
	bring_free(r);
	tmp_remove(&t);
}

TEST_HARNESS_MAIN
