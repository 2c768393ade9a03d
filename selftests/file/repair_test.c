// SPDX-License-Identifier: GPL-2.0
/*
 * repair_test - run-time crash repair of a file ring against live
 * writers: a repairer must never mistake a live writer's record or claim
 * for a dead one's, however the two interleave.
 *
 * These tests call the library's internal repair entry point
 * (file_repair_stuck()) directly, far more often than a stuck reader
 * would, to make the races they guard against likely.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "bring.h"
#include "internal.h"
#include "kselftest_harness.h"
#include "util.h"

static unsigned int rounds(unsigned int plain)
{
	/* Sanitized runs are 5-20x slower; keep their wall time alike. */
	return getenv("BRING_SANITIZED") ? plain / 10 : plain;
}

FIXTURE(repair)
{
	char path[64];
	struct bring *r;
};

FIXTURE_SETUP(repair)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);

	snprintf(self->path, sizeof(self->path), "/tmp/repair_test.%d",
		 getpid());
	unlink(self->path);
	self->r = bring_open(self->path, 1 << 20, &opts);
	ASSERT_NE_NULL(self->r) TH_LOG("bring_open: %s", strerror(errno));
}

FIXTURE_TEARDOWN(repair)
{
	bring_free(self->r);
	unlink(self->path);
}

/* ------------------------------------------------------------------ */

struct race {
	struct bring *r;
	uint64_t pos; /* the record under repair plus 1, 0: none */
	uint64_t round; /* the writer's round, repairer acks it in done */
	uint64_t done;
	uint64_t stop;
	uint64_t calls; /* repair attempts made */
};

/*
 * Hammer the current record with repair attempts until the writer moves
 * on; the writer's process is alive throughout, so none may change it.
 */
static void *repairer(void *arg)
{
	struct race *x = arg;
	uint64_t seen = 0;

	for (;; sched_yield()) {
		uint64_t round = __atomic_load_n(&x->round, __ATOMIC_ACQUIRE);
		uint64_t pos = __atomic_load_n(&x->pos, __ATOMIC_RELAXED);

		if (round != seen && pos) {
			file_repair_stuck(x->r, pos - 1);
			__atomic_fetch_add(&x->calls, 1, __ATOMIC_RELEASE);
		}
		if (__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE))
			break;
		if (round != seen && !pos) {
			seen = round;
			__atomic_store_n(&x->done, seen, __ATOMIC_RELEASE);
		}
	}
	return NULL;
}

/*
 * Let the repairer make two more calls at the round's record, then end
 * the round (a new @round number with no record) and wait until it says
 * it has stopped.
 */
static void race_end_round(struct race *x, uint64_t round)
{
	uint64_t calls = __atomic_load_n(&x->calls, __ATOMIC_ACQUIRE);

	while (__atomic_load_n(&x->calls, __ATOMIC_ACQUIRE) < calls + 2)
		sched_yield();
	__atomic_store_n(&x->pos, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&x->round, round, __ATOMIC_RELEASE);
	while (__atomic_load_n(&x->done, __ATOMIC_ACQUIRE) != round)
		sched_yield();
}

/*
 * A commit racing a repair attempt: before the commit word held length
 * and checksum together, a repairer could read BUSY, then the
 * committed checksum, take it for a dead pid and overwrite it, leaving
 * a committed record that fails its check.
 */
TEST_F(repair, repair_never_overwrites_a_live_commit)
{
	unsigned int i, n = rounds(20000), bad = 0;
	struct bring_reader *rd = bring_reader_open(self->r, "rd");
	struct race x = { .r = self->r };
	struct bring_msg msg;
	struct bring_resv resv;
	struct bring_rec *rec;
	uint64_t w, calls;
	pthread_t t;

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, pthread_create(&t, NULL, repairer, &x));
	for (i = 1; i <= n; i++) {
		ASSERT_EQ(0, bring_reserve(self->r, 64, &resv, -1));
		memset(resv.data, (int)i, 64);
		__atomic_store_n(&x.pos, resv.seq + 1, __ATOMIC_RELAXED);
		calls = __atomic_load_n(&x.calls, __ATOMIC_ACQUIRE);
		__atomic_store_n(&x.round, i, __ATOMIC_RELEASE);
		/* Commit while the repairer is at it. */
		while (__atomic_load_n(&x.calls, __ATOMIC_ACQUIRE) == calls)
			sched_yield();
		ASSERT_EQ(0, bring_commit(self->r, &resv, 64));
		__atomic_store_n(&x.pos, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&x.round, i + n, __ATOMIC_RELEASE);
		while (__atomic_load_n(&x.done, __ATOMIC_ACQUIRE) != i + n)
			sched_yield();
		rec = rec_at(self->r, resv.seq);
		w = __atomic_load_n(&rec->word, __ATOMIC_ACQUIRE);
		if (w != rec_word(64, rec_crc(rec->tag, 64, rec + 1, 64)) &&
		    !bad++)
			TH_LOG("round %u: commit word %#llx, want length 64 "
			       "and its checksum",
			       i, (unsigned long long)w);
		ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
		ASSERT_EQ(64, msg.len);
		ASSERT_EQ(0, bring_reader_shift(rd));
	}
	__atomic_store_n(&x.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	EXPECT_EQ(0, bad);
	bring_reader_close(rd);
}

/*
 * A dead writer's intent that outlived a claim it never made (killed
 * between storing it and its CAS) covers bytes that live writers claim
 * next. Plant one in slot 0, ahead of everything, before our own first
 * claim takes another slot.
 */
static struct bring_intent *plant_dead_intent(struct bring *r, uint64_t pos)
{
	struct bring_intent *stale = &r->hdr->intents[0];

	stale->pid = dead_pid();
	stale->tid = stale->pid;
	stale->need = 4096;
	__atomic_store_n(&stale->pos, pos | INTENT_VALID, __ATOMIC_RELEASE);
	return stale;
}

/*
 * Bytes nobody claimed yet are never repaired: a header written at head
 * would tell a reader to skip the next writer's record while that writer
 * is between its claim and its own header.
 */
TEST_F(repair, repair_writes_nothing_where_no_claim_was_made)
{
	uint64_t head = __atomic_load_n(&self->r->hdr->head, __ATOMIC_ACQUIRE);
	struct bring_rec *rec = rec_at(self->r, head);

	ASSERT_GT(plant_dead_intent(self->r, head)->pid, 0);
	EXPECT_FALSE(file_repair_stuck(self->r, head));
	EXPECT_EQ(0, rec->tag);
	EXPECT_EQ(0, rec->word);
}

/*
 * A live writer claims bytes the dead intent covers, and between our tag
 * load and our look at the intents, tags its header and clears its own
 * intent: the dead intent alone then covers the record. This writer does
 * what a push does, with a pause between the claim and the header that
 * the repairer's calls (about a microsecond each) fall into.
 */
TEST_F(repair, a_dead_intent_over_a_live_claim_repairs_nothing)
{
	unsigned int i, spin, n = rounds(20000), hit = 0;
	struct bring *r = self->r;
	struct race x = { .r = r };
	struct bring_intent *in;
	struct bring_rec *rec;
	uint64_t head, busy, calls;
	pthread_t t;

	ASSERT_GT(plant_dead_intent(r, 0)->pid, 0);
	in = file_intent_slot(r);
	ASSERT_NE_NULL(in);
	ASSERT_NE(r->hdr->intents, in);
	ASSERT_EQ(0, pthread_create(&t, NULL, repairer, &x));
	for (i = 1; i <= n; i++) {
		head = __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE);
		__atomic_store_n(&r->hdr->intents[0].pos, head | INTENT_VALID,
				 __ATOMIC_RELAXED);
		rec = rec_at(r, head);
		file_set_intent(in, head, 64);
		ASSERT_TRUE(__atomic_compare_exchange_n(&r->hdr->head, &head,
							head + 64, false,
							__ATOMIC_RELEASE,
							__ATOMIC_RELAXED));
		__atomic_store_n(&x.pos, head + 1, __ATOMIC_RELAXED);
		calls = __atomic_load_n(&x.calls, __ATOMIC_ACQUIRE);
		__atomic_store_n(&x.round, i, __ATOMIC_RELEASE);
		while (__atomic_load_n(&x.calls, __ATOMIC_ACQUIRE) == calls)
			sched_yield();
		for (spin = (i * 7919U) % 4096; spin; spin--)
			__asm__ volatile("" ::: "memory");
		busy = rec_word(48 | REC_BUSY, file_busy_mark(r, in));
		__atomic_store_n(&rec->word, busy, __ATOMIC_RELAXED);
		__atomic_store_n(&rec->tag, head ^ r->key, __ATOMIC_RELEASE);
		file_clear_intent(in);
		/* Let a few more calls look at the tagged header. */
		race_end_round(&x, i + n);
		if (__atomic_load_n(&rec->word, __ATOMIC_ACQUIRE) != busy &&
		    !hit++)
			TH_LOG("round %u: the live record became %#llx", i,
			       (unsigned long long)rec->word);
		/* Give the record up, as an abort does, for the next round. */
		__atomic_store_n(&rec->word,
				 rec_word(48 | REC_DISCARD,
					  rec_crc(rec->tag, 48 | REC_DISCARD,
						  NULL, 0)),
				 __ATOMIC_RELEASE);
	}
	__atomic_store_n(&x.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	EXPECT_EQ(0, hit) TH_LOG("%u of %u live records overwritten", hit, n);
}

/*
 * Stale intents next to a dead claim. A writer killed between its intent
 * and its CAS (or after losing the CAS) leaves an intent that starts at
 * a value head held and covers whatever others claimed there later. Its
 * end, not the dead claim's, must not decide where the repair ends:
 * cut at it, the claim's rest can be 8 bytes, too short for a header,
 * and readers stand in front of it for good.
 */
static void plant_intent(struct bring *r, int slot, pid_t dead, uint64_t pos,
			 uint64_t need)
{
	struct bring_intent *in = &r->hdr->intents[slot];

	in->pid = dead;
	in->tid = dead;
	in->need = need;
	__atomic_store_n(&in->pos, pos | INTENT_VALID, __ATOMIC_RELEASE);
}

/* Claimed bytes up to @head (nothing tagged in them), as the writers did. */
static void claim_to(struct bring *r, uint64_t head)
{
	__atomic_store_n(&r->hdr->head, head, __ATOMIC_RELEASE);
}

/*
 * Two intents of dead writers, [@a, @a + @a_need) in slot 62 and
 * [@b, @b + @b_need) in slot 63, and head at @head. 0, or -1.
 */
static int dead_pair(struct bring *r, uint64_t a, uint64_t a_need,
		     uint64_t b, uint64_t b_need, uint64_t head)
{
	pid_t dead = dead_pid();

	if (dead <= 0)
		return -1;
	plant_intent(r, 62, dead, a, a_need);
	plant_intent(r, 63, dead, b, b_need);
	claim_to(r, head);
	return 0;
}

/* The record at @pos is a DISCARD record of @fp bytes, correctly made. */
static void check_discard(struct __test_metadata *_metadata, struct bring *r,
			  uint64_t pos, uint64_t fp)
{
	struct bring_rec *rec = rec_at(r, pos);
	uint32_t lf = word_lf(rec->word);

	ASSERT_TRUE(tag_matches(rec->tag, pos, r->key));
	EXPECT_EQ(REC_DISCARD, lf & ~REC_LEN_MASK);
	EXPECT_EQ(fp, rec_footprint(lf, rec->tag));
	EXPECT_EQ(rec_crc(rec->tag, lf, NULL, 0), word_crc(rec->word));
}

/*
 * Head went 48 -> 72 in a claim whose intent remained (its writer died
 * before the CAS, or lost it); another writer claimed [48, 64), a third
 * [64, 128) and died before tagging it. The stale intent ends 8 bytes
 * into the dead claim: no record can end there.
 */
TEST_F(repair, a_stale_intent_ending_inside_a_header_is_passed_over)
{
	ASSERT_EQ(0, dead_pair(self->r, 48, 24, 64, 64, 128));
	EXPECT_TRUE(file_repair_stuck(self->r, 64))
		TH_LOG("the reader stays in front of the dead claim");
	check_discard(_metadata, self->r, 64, 64);
}

/*
 * The stale intent [8, 96) covers most of the dead claim [64, 104):
 * a repair to its end left [96, 104), 8 bytes no header fits in.
 */
TEST_F(repair, a_stale_intent_does_not_split_a_dead_claim)
{
	ASSERT_EQ(0, dead_pair(self->r, 8, 88, 64, 40, 160));
	ASSERT_TRUE(file_repair_stuck(self->r, 64));
	check_discard(_metadata, self->r, 64, 40);
	EXPECT_FALSE(tag_matches(rec_at(self->r, 96)->tag, 96, self->r->key));
}

/*
 * Two attempts from the same head, both dead: one CAS succeeded, the
 * other was lost (or never made). The claim's end is where the next
 * claim starts: at head here, or at a tagged header, or where another
 * intent starts; the other end lies inside the claim. Before, the
 * shorter one was taken: [64, 96) here, then [96, 144) at the next look;
 * with a shorter one 8 bytes short of the claim's end, that rest was too
 * small for a header and readers stayed in front of it for good.
 */
TEST_F(repair, two_dead_intents_from_one_head_end_where_head_is)
{
	ASSERT_EQ(0, dead_pair(self->r, 64, 80, 64, 32, 144));
	ASSERT_TRUE(file_repair_stuck(self->r, 64));
	check_discard(_metadata, self->r, 64, 80);
}

TEST_F(repair, two_dead_intents_from_one_head_end_at_the_next_header)
{
	struct bring_rec *next = rec_at(self->r, 104);
	uint32_t lf = 8 | REC_DISCARD;

	ASSERT_EQ(0, dead_pair(self->r, 64, 40, 64, 32, 128));
	next->word = rec_word(lf, rec_crc(104 ^ self->r->key, lf, NULL, 0));
	__atomic_store_n(&next->tag, 104 ^ self->r->key, __ATOMIC_RELEASE);
	ASSERT_TRUE(file_repair_stuck(self->r, 64));
	check_discard(_metadata, self->r, 64, 40);
}

TEST_F(repair, two_dead_intents_from_one_head_end_where_an_intent_starts)
{
	ASSERT_EQ(0, dead_pair(self->r, 64, 32, 64, 40, 256));
	/* The claim after it, untagged, its writer dead too. */
	plant_intent(self->r, 61, self->r->hdr->intents[62].pid, 104, 48);
	ASSERT_TRUE(file_repair_stuck(self->r, 64));
	check_discard(_metadata, self->r, 64, 40);
	ASSERT_TRUE(file_repair_stuck(self->r, 104));
	check_discard(_metadata, self->r, 104, 48);
}

/*
 * A live writer stopped (SIGSTOP, a debugger, a frozen cgroup) between
 * its intent and its CAS, with a head value loaded long before: its
 * intent [0, 256) covers a dead claim [64, 128) made since. Its CAS can
 * never succeed (head is past its start for good), so it is not the
 * claim's writer, and the repair does not wait for it: readers used to
 * stay in front of the dead claim for as long as it was stopped.
 */
TEST_F(repair, a_stopped_writers_stale_intent_does_not_hold_up_a_repair)
{
	struct bring_intent *own = file_intent_slot(self->r);
	pid_t dead = dead_pid();

	ASSERT_NE_NULL(own);
	ASSERT_GT(dead, 0);
	plant_intent(self->r, 63, dead, 64, 64);
	claim_to(self->r, 256);
	file_set_intent(own, 0, 256);
	EXPECT_TRUE(file_repair_stuck(self->r, 64))
		TH_LOG("the repair waits for a writer whose claim must fail");
	check_discard(_metadata, self->r, 64, 64);
	/* One from the claim's own head may be the claim's: wait for it. */
	file_set_intent(own, 128, 64);
	plant_intent(self->r, 62, dead, 128, 32);
	EXPECT_FALSE(file_repair_stuck(self->r, 128));
	EXPECT_FALSE(tag_matches(rec_at(self->r, 128)->tag, 128, self->r->key));
	file_clear_intent(own);
}

/*
 * A thread caches its intent slot for a few rings and gives the oldest
 * back when it writes to one more. The slot's lock is what says that the
 * writer of a BUSY record lives: given back while a reservation made
 * through it is open, a stuck reader took the live reservation for a
 * dead writer's and discarded it; the commit that followed was lost.
 */
TEST(an_open_reservation_keeps_its_writer_alive)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);
	char path[8][64];
	struct bring *r[8];
	struct bring_reader *rd;
	struct bring_resv resv;
	struct bring_msg msg;
	struct bring_rec *rec;
	int i;

	for (i = 0; i < 8; i++) {
		snprintf(path[i], sizeof(path[i]), "/tmp/repair_test_evict.%d.%d",
			 getpid(), i);
		unlink(path[i]);
		r[i] = bring_open(path[i], 4096, &opts);
		ASSERT_NE_NULL(r[i]);
	}
	rd = bring_reader_open(r[0], "rd");
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, bring_reserve(r[0], 8, &resv, 0));
	memcpy(resv.data, "reserved", 8);
	/* More rings than a thread caches slots for. */
	for (i = 1; i < 8; i++)
		ASSERT_EQ(0, bring_push(r[i], "x", 1));
	rec = rec_at(r[0], resv.seq);
	EXPECT_FALSE(file_repair_stuck(r[0], resv.seq));
	EXPECT_TRUE(word_lf(rec->word) & REC_BUSY)
		TH_LOG("a live reservation was repaired: %#llx",
		       (unsigned long long)rec->word);
	ASSERT_EQ(0, bring_commit(r[0], &resv, 8));
	/* The last open reservation gave the orphaned slot back. */
	EXPECT_EQ(0, r[0]->own_slots);
	EXPECT_EQ(0, r[0]->orphan_slots);
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ(8, msg.len);
	EXPECT_EQ(0, memcmp(msg.data, "reserved", 8));
	/* The next claim in r[0] still works (a slot is taken again). */
	ASSERT_EQ(0, bring_reader_shift(rd));
	ASSERT_EQ(0, bring_push(r[0], "y", 1));
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ(1, msg.len);
	bring_reader_close(rd);
	for (i = 0; i < 8; i++) {
		bring_free(r[i]);
		unlink(path[i]);
	}
}

static void *reserve_and_exit(void *arg)
{
	struct bring_resv *resv = arg;
	struct bring *r = (struct bring *)resv->data;

	if (bring_reserve(r, 16, resv, 0))
		resv->data = NULL;
	return NULL;
}

/*
 * A thread that exits gives its slot back; a reservation it made and
 * another thread commits keeps the slot, and so its writer, alive.
 */
TEST_F(repair, a_reservation_outlives_its_thread)
{
	struct bring_resv resv = { .data = self->r };
	struct bring_reader *rd = bring_reader_open(self->r, "rd");
	struct bring_msg msg;
	pthread_t t;

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, pthread_create(&t, NULL, reserve_and_exit, &resv));
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_NE_NULL(resv.data);
	EXPECT_FALSE(file_repair_stuck(self->r, resv.seq));
	memset(resv.data, 7, 16);
	ASSERT_EQ(0, bring_commit(self->r, &resv, 16));
	EXPECT_EQ(0, self->r->own_slots);
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ(16, msg.len);
	bring_reader_close(rd);
}

/*
 * A named writer died between storing the mark of its record and the
 * commit. The repair revokes that mark before the record becomes
 * DISCARD, whatever the writer slot's owner pid now names: the pid may
 * have been reused, and a writer in another PID namespace stored a pid
 * that names some other process here (pid 1 stands for both). Left in
 * place, the mark named a record no reader ever gets, and the source
 * resumed after a line the ring never held.
 */
TEST_F(repair, a_dead_named_writers_mark_is_revoked_whatever_its_pid_names)
{
	struct bring_writer *w = bring_writer_open(self->r, "src", NULL);
	const struct bring_cursor *c;
	struct bring_wslot *ws = NULL;
	struct bring_resv resv;
	struct bring_rec *rec;
	uint64_t word;
	int i;

	ASSERT_NE_NULL(w);
	for (i = 0; i < BRING_WRITERS_MAX; i++)
		if (!strcmp(self->r->hdr->wslots[i].name, "src"))
			ws = &self->r->hdr->wslots[i];
	ASSERT_NE_NULL(ws);
	ASSERT_EQ(0, bring_reserve(self->r, 8, &resv, 0));
	/* What bring_writer_commit() stores just before the commit. */
	cursor_store(ws->saved, resv.seq, "m1", 2);
	/* The record names another owner of its slot: a gone writer. */
	rec = rec_at(self->r, resv.seq);
	word = rec->word;
	__atomic_store_n(&rec->word,
			 rec_word(word_lf(word), word_crc(word) ^ BRING_INTENTS),
			 __ATOMIC_RELEASE);
	ws->owner = 1;
	ASSERT_TRUE(file_repair_stuck(self->r, resv.seq));
	ASSERT_TRUE(word_lf(rec->word) & REC_DISCARD);
	c = cursor_newest(ws->saved);
	EXPECT_TRUE(!c || c->pos != resv.seq)
		TH_LOG("the mark names the discarded record at %llu",
		       (unsigned long long)resv.seq);
	bring_writer_close(w);
}

/*
 * A shift stores the saved cursor generation (position and mark), then
 * the live cursor. A reader killed in between leaves the saved one a
 * shift ahead; the process that takes the reader over while others keep
 * the file open (no recovery) resumed at the live one, with the saved
 * generation's mark: the sink's output already held the message it got
 * again, a duplicate.
 */
TEST_F(repair, a_reader_killed_inside_its_shift_resumes_with_its_mark)
{
	struct bring_reader *rd;
	struct bring_msg msg;
	char mark[8] = { 0 };
	int status;
	pid_t pid;

	ASSERT_EQ(0, bring_push(self->r, "message0", 8));
	ASSERT_EQ(0, bring_push(self->r, "message1", 8));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		rd = bring_reader_open(self->r, "sink");
		if (!rd || bring_reader_next(rd, &msg, 0) || msg.len != 8)
			_exit(1);
		/* bring_reader_shift_mark()'s first store, then killed. */
		cursor_store(rd->slot->saved, msg.seq + rec_footprint_len(8),
			     "out+8", 5);
		raise(SIGKILL);
		_exit(1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	rd = bring_reader_open(self->r, "sink");
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(5, bring_reader_mark(rd, mark, sizeof(mark)));
	EXPECT_STREQ("out+8", mark);
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ(0, memcmp(msg.data, "message1", 8))
		TH_LOG("got %.8s again after the mark that counts it",
		       (const char *)msg.data);
	bring_reader_close(rd);
}

/*
 * After @spin empty loops: another reader repaired the record, every
 * reader passed it, writers lapped: the next lap's record (@word, @tag)
 * is at @rec now.
 */
static void lap_over(struct bring_rec *rec, uint64_t word, uint64_t tag,
		     unsigned int spin)
{
	for (; spin; spin--)
		__asm__ volatile("" ::: "memory");
	__atomic_store_n(&rec->word, word, __ATOMIC_RELAXED);
	__atomic_store_n(&rec->tag, tag, __ATOMIC_RELEASE);
}

static void stop_and_join(uint64_t *stop, pthread_t t)
{
	__atomic_store_n(stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
}

/* After round @i: is the next lap's record untouched? Logs the first. */
static unsigned int lap_changed(struct __test_metadata *_metadata,
				const struct bring_rec *rec, uint64_t word,
				uint64_t tag, unsigned int i, unsigned int hit)
{
	if (rec->tag == tag && rec->word == word)
		return 0;
	if (!hit)
		TH_LOG("round %u: the next lap's record became %#llx/%#llx", i,
		       (unsigned long long)rec->word,
		       (unsigned long long)rec->tag);
	return 1;
}

/*
 * A repair that is not made by a reader standing at the record (a named
 * writer's takeover settles the last record of the dead holder) is not
 * protected by its own cursor: while it runs, another reader may repair
 * the record, every reader pass it and writers lap over its bytes. Its
 * stores must then fail, not land on the next lap's record. Emulated:
 * a dead writer's BUSY record with the slack bit, then, while the
 * repairer is at it, the committed record of the next lap at the same
 * bytes, also with its slack bit. The repair used to clear the slack bit
 * with a plain store before its CAS: the new record lost 8 bytes of its
 * footprint, and readers lost their way behind it.
 */
TEST_F(repair, a_late_repair_never_changes_the_next_laps_record)
{
	unsigned int i, n = rounds(20000), hit = 0;
	struct bring *r = self->r;
	uint64_t pos = 4096, cap = r->capacity, tag, word;
	struct bring_rec *rec = rec_at(r, pos);
	struct race x = { .r = r };
	pthread_t t;

	claim_to(r, pos + cap + 4096);
	/* Alone, the repair skips the whole reservation, slack included. */
	rec->word = rec_word(24 | REC_BUSY, 63);
	__atomic_store_n(&rec->tag, (pos ^ r->key) | TAG_SLACK8,
			 __ATOMIC_RELEASE);
	ASSERT_TRUE(file_repair_stuck(r, pos));
	check_discard(_metadata, r, pos, rec_footprint_len(24));
	ASSERT_EQ(0, pthread_create(&t, NULL, repairer, &x));
	tag = ((pos + cap) ^ r->key) | TAG_SLACK8;
	word = rec_word(24, rec_crc(tag, 24, NULL, 0));
	for (i = 1; i <= n; i++) {
		/* Slot 63, generation 0: nobody holds its lock. */
		__atomic_store_n(&rec->word, rec_word(24 | REC_BUSY, 63),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&rec->tag, (pos ^ r->key) | TAG_SLACK8,
				 __ATOMIC_RELEASE);
		__atomic_store_n(&x.pos, pos + 1, __ATOMIC_RELAXED);
		__atomic_store_n(&x.round, i, __ATOMIC_RELEASE);
		/* Into the repairer's first call, or not yet, or past it. */
		lap_over(rec, word, tag, (i * 7919U) % 8192);
		race_end_round(&x, i + n);
		hit += lap_changed(_metadata, rec, word, tag, i, hit);
	}
	stop_and_join(&x.stop, t);
	EXPECT_EQ(0, hit) TH_LOG("%u of %u records changed", hit, n);
}

/*
 * A reservation of 1 to 8 bytes committed with none is 16 bytes of
 * record and 8 of slack: a writer that died between marking the slack
 * and its commit left a BUSY record of length 1..8 with the slack bit.
 * The repair's DISCARD record is 8 bytes shorter than the reservation's
 * payload; for these lengths that is 0, not a length below zero (which
 * set BUSY and DISCARD and a length of 2^30 - 5 at once).
 */
TEST_F(repair, a_dead_short_reservation_with_slack_is_skipped_whole)
{
	struct bring *r = self->r;
	uint64_t pos = 4096, len;

	claim_to(r, pos + 4096);
	for (len = 1; len <= 8; len++) {
		struct bring_rec *rec = rec_at(r, pos);

		/* Slot 63, generation 0: nobody holds its lock. */
		rec->word = rec_word((uint32_t)len | REC_BUSY, 63);
		__atomic_store_n(&rec->tag, (pos ^ r->key) | TAG_SLACK8,
				 __ATOMIC_RELEASE);
		ASSERT_TRUE(file_repair_stuck(r, pos));
		check_discard(_metadata, r, pos, rec_footprint_len(len));
		pos += rec_footprint_len(len);
	}
}

struct takeover {
	struct bring *r;
	uint64_t round, started, done, stop;
};

/* Take the named writer "src" over, again and again. */
static void *take_over(void *arg)
{
	struct takeover *x = arg;
	uint64_t seen = 0;

	while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
		uint64_t round = __atomic_load_n(&x->round, __ATOMIC_ACQUIRE);
		struct bring_writer *w;

		if (round == seen) {
			sched_yield();
			continue;
		}
		__atomic_store_n(&x->started, round, __ATOMIC_RELEASE);
		w = bring_writer_open(x->r, "src", NULL);
		bring_writer_close(w);
		seen = round;
		__atomic_store_n(&x->done, seen, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * The takeover of a named writer whose holder died settles the holder's
 * last record: it looks, under the ring lock, whether the record is
 * still BUSY, and repairs it after the unlock. Meanwhile another reader
 * may repair it, readers pass it and writers lap over its bytes. The
 * repair then finds no record of its position there, and must not take
 * the bytes for a hole: with a stale dead intent covering the position
 * (slots of dead claims are taken again only when a thread needs one),
 * it wrote a DISCARD header over the next lap's record.
 */
TEST_F(repair, a_takeover_never_repairs_a_hole_behind_the_readers)
{
	unsigned int i, n = rounds(20000), hit = 0, spins;
	struct bring *r = self->r;
	uint64_t pos = 4096, cap = r->capacity, tag, word;
	struct bring_rec *rec = rec_at(r, pos);
	struct takeover x = { .r = r };
	struct bring_writer *w = bring_writer_open(r, "src", NULL);
	struct bring_wslot *ws = NULL;
	pid_t dead = dead_pid();
	pthread_t t;

	ASSERT_NE_NULL(w);
	ASSERT_GT(dead, 0);
	bring_writer_close(w);
	for (i = 0; i < BRING_WRITERS_MAX; i++)
		if (!strcmp(r->hdr->wslots[i].name, "src"))
			ws = &r->hdr->wslots[i];
	ASSERT_NE_NULL(ws);
	plant_intent(r, 62, dead, pos - 64, 256);
	claim_to(r, pos + cap + 4096);
	tag = (pos + cap) ^ r->key;
	word = rec_word(24, rec_crc(tag, 24, NULL, 0));
	ASSERT_EQ(0, pthread_create(&t, NULL, take_over, &x));
	for (i = 1; i <= n; i++) {
		/* The dead holder's last record, its mark naming it. */
		__atomic_store_n(&rec->word, rec_word(24 | REC_BUSY, 63),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&rec->tag, pos ^ r->key, __ATOMIC_RELEASE);
		cursor_store(ws->saved, pos, "m", 1);
		ws->owner = dead;
		__atomic_store_n(&x.round, i, __ATOMIC_RELEASE);
		/*
		 * Spin, so the lap races the takeover; yield now and then,
		 * or on a busy machine a takeover thread waiting for our
		 * CPU costs a whole time slice per round (a TIMEOUT).
		 */
		for (spins = 0;
		     __atomic_load_n(&x.started, __ATOMIC_ACQUIRE) != i;
		     spins++)
			if (spins % 4096 == 4095)
				sched_yield();
		lap_over(rec, word, tag, (i * 7919U) % 4096);
		while (__atomic_load_n(&x.done, __ATOMIC_ACQUIRE) != i)
			sched_yield(); /* its takeover ended */
		hit += lap_changed(_metadata, rec, word, tag, i, hit);
	}
	stop_and_join(&x.stop, t);
	EXPECT_EQ(0, hit) TH_LOG("%u of %u records changed", hit, n);
}

/* ------------------------------------------------------------------ */

struct contender {
	struct bring *r;
	uint64_t *start; /* round to run, set by the test */
	uint64_t *finished; /* pushes returned */
	unsigned int rounds;
	size_t len;
	int pushed;
};

/*
 * Spin (not a barrier: its wake-ups come microseconds apart) until the
 * round starts, so that both pushes load head at about the same time.
 */
static void *contend(void *arg)
{
	struct contender *c = arg;
	char buf[4096] = { 0 };
	unsigned int i;

	for (i = 1; i <= c->rounds; i++) {
		while (__atomic_load_n(c->start, __ATOMIC_ACQUIRE) < i)
			sched_yield();
		c->pushed += !bring_push_timeout(c->r, buf, c->len, 0);
		__atomic_fetch_add(c->finished, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static int valid_intents(const struct bring *r)
{
	int i, n = 0;

	for (i = 0; i < BRING_INTENTS; i++)
		n += !!(__atomic_load_n(&r->hdr->intents[i].pos,
					__ATOMIC_ACQUIRE) &
			INTENT_VALID);
	return n;
}

/*
 * Two writers race for room for one message: one wins the claim, the
 * other loses its CAS, finds no room and returns -EAGAIN. The loser's
 * claim intent must not outlive the call: left in place it names the
 * winner's claim, and would make it look alive to a repairer if the
 * winner died before tagging its header.
 */
TEST(a_lost_claim_leaves_no_intent)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);
	unsigned int i, n = rounds(20000), stale = 0;
	uint64_t start = 0, finished = 0;
	struct contender c[2];
	struct bring_reader *rd;
	struct bring_msg msg;
	char path[64];
	struct bring *r;
	pthread_t t[2];

	snprintf(path, sizeof(path), "/tmp/repair_test_lost.%d", getpid());
	unlink(path);
	r = bring_open(path, 4096, &opts);
	ASSERT_NE_NULL(r);
	rd = bring_reader_open(r, "rd");
	ASSERT_NE_NULL(rd);
	for (i = 0; i < 2; i++) {
		/* 2,216-byte records: the 4 KiB ring holds one. */
		c[i] = (struct contender){ r, &start, &finished, n, 2200, 0 };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, contend, &c[i]));
	}
	for (i = 1; i <= n; i++) {
		__atomic_store_n(&start, i, __ATOMIC_RELEASE);
		while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < 2 * i)
			sched_yield();
		stale += valid_intents(r) != 0;
		ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
		ASSERT_EQ(0, bring_reader_shift(rd));
		ASSERT_EQ(-EAGAIN, bring_reader_next(rd, &msg, 0));
	}
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(n, (unsigned int)(c[0].pushed + c[1].pushed));
	EXPECT_EQ(0, stale) TH_LOG("%u of %u rounds left a claim intent", stale,
				   n);
	bring_reader_close(rd);
	bring_free(r);
	unlink(path);
}

TEST_HARNESS_MAIN
