// SPDX-License-Identifier: GPL-2.0
/*
 * Recovery of a file ring: what the first process to open a file that
 * nobody has open finds after crashes and damage, and what readers get
 * afterwards. The tests write the damage into the file by hand (through
 * the layout in lib/internal.h) or kill writers with SIGKILL:
 *
 *  - a torn tail is cut off at the last valid record;
 *  - a damaged record inside committed data (flipped bits, zeroed
 *    pages) fails the open with EBADMSG and leaves the file untouched,
 *    or with BRING_SKIP_DAMAGED is dropped and counted;
 *  - a damaged saved cursor falls back to its other generation, both
 *    damaged is EBADMSG unless BRING_SKIP_DAMAGED;
 *  - records of dead writers (BUSY, or claimed and never tagged, as the
 *    writer's intent slot says) are dropped, at recovery and at run time;
 *  - random damage never crashes, hangs or delivers a record that fails
 *    its checksum.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include <sys/wait.h>

#include "bring.h"
#include "internal.h"
#include "kselftest_harness.h"
#include "util.h"

#define CAP 65536
#define WAIT_MS 5000	/* how long something that must happen may take */
#define LEN 40		/* payload of the records most tests write */
#define FP 56		/* their footprint: 16 + 40 */

_Static_assert(FP == REC_HDR_SIZE + LEN, "records of LEN bytes take FP");

/* ------------------------------------------------------------------ */
/* Captured diagnostics, the file as bytes.                           */

/* Does the captured text hold the number @n, not as part of another? */
static bool printed_number(uint64_t n)
{
	char num[24];
	const char *p = printed;
	size_t len;

	len = (size_t)snprintf(num, sizeof(num), "%llu", (unsigned long long)n);
	while ((p = strstr(p, num))) {
		bool before = p > printed && p[-1] >= '0' && p[-1] <= '9';
		bool after = p[len] >= '0' && p[len] <= '9';

		if (!before && !after)
			return true;
		p++;
	}
	return false;
}

/* File offset of stream position @pos in a ring of @cap bytes. */
static off_t data_off(uint64_t cap, uint64_t pos)
{
	return (off_t)(BRING_HDR_SIZE + (pos & (cap - 1)));
}

static int zero_range(const char *path, off_t off, size_t len)
{
	void *zeros = calloc(1, len);
	int err;

	if (!zeros)
		return -1;
	err = file_write(path, zeros, len, off);
	free(zeros);
	return err;
}

static int read_rec(const char *path, uint64_t cap, uint64_t pos,
		    struct bring_rec *rec)
{
	return file_read(path, rec, sizeof(*rec), data_off(cap, pos));
}

static int write_rec(const char *path, uint64_t cap, uint64_t pos,
		     const struct bring_rec *rec)
{
	return file_write(path, rec, sizeof(*rec), data_off(cap, pos));
}

/* The whole header, to look at or change (nobody has the file open). */
static struct bring_hdr hdr_buf;

static struct bring_hdr *read_hdr(const char *path)
{
	return file_read(path, &hdr_buf, sizeof(hdr_buf), 0) ? NULL : &hdr_buf;
}

static int write_hdr(const char *path)
{
	return file_write(path, &hdr_buf, sizeof(hdr_buf), 0);
}

/* ------------------------------------------------------------------ */
/* Messages that say which they are.                                  */

struct tag_hdr {
	uint32_t idx;
	uint32_t len;
};

static uint8_t pattern(uint32_t idx, size_t j)
{
	return (uint8_t)((idx * 131U + (uint32_t)j * 7U) ^ 0x5a);
}

/* Message @idx of @len bytes (>= 8): its number and length, a pattern. */
static void make_msg(uint8_t *buf, size_t len, uint32_t idx)
{
	struct tag_hdr th = { .idx = idx, .len = (uint32_t)len };
	size_t j;

	memcpy(buf, &th, sizeof(th));
	for (j = sizeof(th); j < len; j++)
		buf[j] = pattern(idx, j);
}

/* The message's number, or -1 if its bytes are not what was pushed. */
static long msg_idx(const struct bring_msg *msg)
{
	const uint8_t *p = msg->data;
	struct tag_hdr th;
	size_t j;

	if (msg->len < sizeof(th))
		return -1;
	memcpy(&th, p, sizeof(th));
	if (th.len != msg->len)
		return -1;
	for (j = sizeof(th); j < msg->len; j++)
		if (p[j] != pattern(th.idx, j))
			return -1;
	return th.idx;
}

static int push_msg_timeout(struct bring *r, uint32_t idx, size_t len,
			    int timeout_ms)
{
	uint8_t *buf = malloc(len);
	int err;

	if (!buf)
		return -ENOMEM;
	make_msg(buf, len, idx);
	err = bring_push_timeout(r, buf, len, timeout_ms);
	free(buf);
	return err;
}

/* Never waits: a test ring that is full is a failure, not a hang. */
static int push_msg(struct bring *r, uint32_t idx, size_t len)
{
	return push_msg_timeout(r, idx, len, 0);
}

/*
 * Take every message @rd has now (waiting @timeout_ms for each): their
 * numbers go to @idx, at most @max. A message whose bytes are wrong ends
 * the drain and counts in *@bad.
 */
static int drain(struct bring_reader *rd, long *idx, int max, int timeout_ms,
		 int *bad)
{
	struct bring_msg msg;
	int n = 0;

	while (n < max && !bring_reader_next(rd, &msg, timeout_ms)) {
		idx[n] = msg_idx(&msg);
		if (idx[n] < 0) {
			(*bad)++;
			break;
		}
		n++;
		if (bring_reader_shift(rd))
			break;
	}
	return n;
}

/* Is @idx[0..n) exactly @want[0..nw)? Logs the difference if not. */
static bool same_list(struct __test_metadata *_metadata, const long *idx,
		      int n, const long *want, int nw)
{
	char buf[512];
	size_t off = 0;
	int i;

	if (n == nw && !memcmp(idx, want, (size_t)n * sizeof(*idx)))
		return true;
	for (i = 0; i < n && off < sizeof(buf) - 16; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, " %ld",
					idx[i]);
	buf[off] = '\0';
	TH_LOG("got %d messages:%s", n, n ? buf : " none");
	off = 0;
	for (i = 0; i < nw && off < sizeof(buf) - 16; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, " %ld",
					want[i]);
	buf[off] = '\0';
	TH_LOG("want %d messages:%s", nw, nw ? buf : " none");
	return false;
}

/* A new ring at @path with messages [0, @nr) of @len bytes. */
static int make_ring(const char *path, uint64_t cap, unsigned int flags,
		     int nr, size_t len)
{
	BRING_OPTS(opts, .flags = flags);
	struct bring *r = bring_open(path, cap, &opts);
	int i, err = 0;

	if (!r)
		return -errno;
	for (i = 0; i < nr && !err; i++)
		err = push_msg(r, (uint32_t)i, len);
	bring_free(r);
	return err;
}

/* Open with @flags; NULL with errno as bring_open() left it. */
static struct bring *open_flags(const char *path, unsigned int flags)
{
	BRING_OPTS(opts, .flags = flags);

	return bring_open(path, 0, &opts);
}

FIXTURE(rec)
{
	struct tmp t;
};

FIXTURE_SETUP(rec)
{
	ASSERT_EQ(0, tmp_make(&self->t));
	capture_start();
}

FIXTURE_TEARDOWN(rec)
{
	bring_set_print(NULL);
	tmp_remove(&self->t);
}

/*
 * The open fails with @err and the file stays byte for byte the same,
 * with and without a capacity.
 */
static void check_refused(struct __test_metadata *_metadata,
			  const char *path, unsigned int flags, int err)
{
	BRING_OPTS(opts, .flags = flags);
	size_t len;
	void *bytes = read_all(path, &len);
	struct bring *r;

	ASSERT_NE_NULL(bytes);
	errno = 0;
	r = bring_open(path, 0, &opts);
	EXPECT_NULL(r);
	EXPECT_EQ(err, errno) TH_LOG("%s", strerror(errno));
	bring_free(r);
	errno = 0;
	r = bring_open(path, CAP, &opts);
	EXPECT_NULL(r);
	EXPECT_EQ(err, errno) TH_LOG("%s", strerror(errno));
	bring_free(r);
	EXPECT_TRUE(file_is(path, bytes, len)) TH_LOG("the file was changed");
	free(bytes);
}

/* ------------------------------------------------------------------ */
/* Torn tails.                                                        */

static void check_torn_tail(struct __test_metadata *_metadata,
			    const char *path, int survivors)
{
	static const long all[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	const long after[] = { 100 };
	struct bring *r;
	long idx[16];
	int n, bad = 0;

	r = bring_open(path, 0, NULL);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_NE_NULL(strstr(printed, "torn tail"));
	/* The cut-off bytes are free again. */
	EXPECT_EQ((uint64_t)survivors * FP, get_stats(r).used);
	EXPECT_EQ(0, get_stats(r).damaged);
	n = drain(bring_default_reader(r), idx, 16, 0, &bad);
	EXPECT_EQ(0, bad);
	EXPECT_TRUE(same_list(_metadata, idx, n, all, survivors));
	ASSERT_EQ(0, push_msg(r, 100, LEN));
	n = drain(bring_default_reader(r), idx, 16, 0, &bad);
	EXPECT_TRUE(same_list(_metadata, idx, n, after, 1));
	bring_free(r);

	/* Repaired for good: the next open finds nothing to say. */
	capture_start();
	r = bring_open(path, 0, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(0, printed_len) TH_LOG("%s", printed);
	EXPECT_EQ(0, drain(bring_default_reader(r), idx, 16, 0, &bad));
	bring_free(r);
}

TEST_F(rec, torn_tail_with_a_bad_tag_is_cut_off)
{
	struct bring_rec rec;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 5, LEN));
	ASSERT_EQ(0, read_rec(self->t.path, CAP, 4 * FP, &rec));
	rec.tag ^= 1ULL << 20;
	ASSERT_EQ(0, write_rec(self->t.path, CAP, 4 * FP, &rec));
	check_torn_tail(_metadata, self->t.path, 4);
}

TEST_F(rec, torn_tail_with_a_bad_payload_is_cut_off)
{
	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 5, LEN));
	ASSERT_EQ(0, flip_bit(self->t.path, data_off(CAP, 4 * FP) + 16 + 20,
			      3));
	check_torn_tail(_metadata, self->t.path, 4);
}

TEST_F(rec, torn_tail_of_several_records_is_cut_off)
{
	/* Record 3 half written, 4 and 5 never reached the disk. */
	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 6, LEN));
	ASSERT_EQ(0, flip_bit(self->t.path, data_off(CAP, 3 * FP) + 16, 0));
	ASSERT_EQ(0, zero_range(self->t.path, data_off(CAP, 4 * FP), 2 * FP));
	check_torn_tail(_metadata, self->t.path, 3);
}

/* ------------------------------------------------------------------ */
/* Damage inside committed data.                                      */

TEST_F(rec, damaged_record_fails_with_ebadmsg_and_names_its_offset)
{
	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 5, LEN));
	ASSERT_EQ(0, flip_bit(self->t.path, data_off(CAP, 2 * FP) + 16 + 5,
			      6));
	check_refused(_metadata, self->t.path, 0, EBADMSG);
	/* The stream position or the file offset of the damaged record. */
	EXPECT_TRUE(printed_number(2 * FP) ||
		    printed_number((uint64_t)data_off(CAP, 2 * FP)))
		TH_LOG("printed: %s", printed);
}

TEST_F(rec, damaged_record_is_dropped_with_skip_damaged)
{
	static const long want[] = { 0, 1, 3, 4 };
	struct bring *r;
	long idx[16];
	int n, bad = 0;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 5, LEN));
	ASSERT_EQ(0, flip_bit(self->t.path, data_off(CAP, 2 * FP) + 16 + 5,
			      6));
	r = open_flags(self->t.path, BRING_SKIP_DAMAGED);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_TRUE(printed_number(2 * FP) ||
		    printed_number((uint64_t)data_off(CAP, 2 * FP)))
		TH_LOG("printed: %s", printed);
	EXPECT_EQ(1, get_stats(r).damaged);
	n = drain(bring_default_reader(r), idx, 16, 0, &bad);
	EXPECT_EQ(0, bad);
	EXPECT_TRUE(same_list(_metadata, idx, n, want, 4));
	bring_free(r);

	/* The damage was turned into a skipped record: no flag needed now. */
	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(1, get_stats(r).damaged);
	EXPECT_EQ(0, get_stats(r).used);
	bring_free(r);
}

#define PAGE_MSGS 60
#define PAGE_LEN 304	/* 320-byte records */
#define PAGE_FP 320

/* Records [first, last] overlap data page 2 ([8192, 12288)). */
static bool in_zeroed_page(int i)
{
	uint64_t start = (uint64_t)i * PAGE_FP, end = start + PAGE_FP;

	return end > 8192 && start < 12288;
}

static int zero_page_2(const char *path)
{
	return zero_range(path, data_off(CAP, 8192), 4096);
}

TEST_F(rec, zeroed_page_fails_with_ebadmsg)
{
	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, PAGE_MSGS, PAGE_LEN));
	ASSERT_EQ(0, zero_page_2(self->t.path));
	check_refused(_metadata, self->t.path, 0, EBADMSG);
	EXPECT_NE_NULL(strstr(printed, "damaged")) TH_LOG("%s", printed);
}

TEST_F(rec, zeroed_page_is_dropped_with_skip_damaged)
{
	long idx[PAGE_MSGS + 1], want[PAGE_MSGS];
	int i, n, nw = 0, bad = 0;
	struct bring *r;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, PAGE_MSGS, PAGE_LEN));
	ASSERT_EQ(0, zero_page_2(self->t.path));
	r = open_flags(self->t.path, BRING_SKIP_DAMAGED);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_GE(get_stats(r).damaged, 1);
	for (i = 0; i < PAGE_MSGS; i++)
		if (!in_zeroed_page(i))
			want[nw++] = i;
	n = drain(bring_default_reader(r), idx, PAGE_MSGS + 1, 0, &bad);
	EXPECT_EQ(0, bad);
	EXPECT_TRUE(same_list(_metadata, idx, n, want, nw));
	bring_free(r);
}

/*
 * A zeroed page that ends inside a record header, 8 bytes in: the
 * record's length and checksum are zero, its tag (in the next page) is
 * intact. That is damage, not an empty message.
 */
TEST_F(rec, zeroed_page_ending_in_a_record_header_is_no_message)
{
	static const long want[] = { 0, 3 };
	struct bring_msg msg;
	struct bring *r;
	long idx[16];
	int n = 0;

	r = bring_open(self->t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_msg(r, 0, LEN));
	/* Message 1 ends, and message 2's header starts, at 8192 - 8. */
	ASSERT_EQ(0, push_msg(r, 1, 8192 - 8 - FP - REC_HDR_SIZE));
	ASSERT_EQ(0, push_msg(r, 2, LEN));
	ASSERT_EQ(0, push_msg(r, 3, LEN));
	bring_free(r);
	ASSERT_EQ(0, zero_range(self->t.path, data_off(CAP, 4096), 4096));

	check_refused(_metadata, self->t.path, 0, EBADMSG);
	r = open_flags(self->t.path, BRING_SKIP_DAMAGED);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_GE(get_stats(r).damaged, 1);
	while (n < 16 && !bring_next_timeout(r, &msg, 0)) {
		idx[n] = msg_idx(&msg);
		if (idx[n] < 0)
			TH_LOG("a message never sent: %zu bytes at %llu",
			       msg.len, (unsigned long long)msg.seq);
		n++;
		ASSERT_EQ(0, bring_shift(r));
	}
	EXPECT_TRUE(same_list(_metadata, idx, n, want, 2));
	bring_free(r);
}

/*
 * A reader whose saved place is a record boundary inside the zeroed
 * page: the records there are gone, so it goes on with the first one
 * after the damage, like every other reader.
 */
TEST_F(rec, reader_inside_damage_resumes_after_it)
{
	struct bring_reader *a;
	struct bring_msg msg;
	long idx[PAGE_MSGS + 1];
	int i, n, bad = 0;
	struct bring *r;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, PAGE_MSGS, PAGE_LEN));
	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	/* Record 30 starts at 9600, inside the page. */
	for (i = 0; i < 30; i++) {
		ASSERT_EQ(0, bring_reader_next(a, &msg, 0));
		ASSERT_EQ(0, bring_reader_shift(a));
	}
	ASSERT_TRUE(in_zeroed_page(30));
	bring_reader_close(a);
	bring_free(r);
	ASSERT_EQ(0, zero_page_2(self->t.path));

	r = open_flags(self->t.path, BRING_SKIP_DAMAGED);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	n = drain(a, idx, PAGE_MSGS + 1, 1000, &bad);
	EXPECT_EQ(0, bad);
	ASSERT_GT(n, 0) TH_LOG("reader 'a' is stuck at its saved place");
	EXPECT_EQ(39, idx[0]);
	EXPECT_EQ(PAGE_MSGS - 39, n);
	bring_reader_close(a);
	bring_free(r);
}

/*
 * Two damaged records in a row, a reader saved at the second: it must
 * never be handed that record, whose checksum fails.
 */
TEST_F(rec, reader_at_a_damaged_record_never_gets_it)
{
	struct bring_reader *a;
	struct bring_msg msg;
	long idx[16];
	int i, n, bad = 0;
	struct bring *r;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 8, LEN));
	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, bring_reader_next(a, &msg, 0));
		ASSERT_EQ(0, bring_reader_shift(a));
	}
	bring_reader_close(a);
	bring_free(r);
	ASSERT_EQ(0, flip_bit(self->t.path, data_off(CAP, 2 * FP) + 16 + 9, 1));
	ASSERT_EQ(0, flip_bit(self->t.path, data_off(CAP, 3 * FP) + 16 + 9, 1));

	r = open_flags(self->t.path, BRING_SKIP_DAMAGED);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	n = drain(a, idx, 16, 0, &bad);
	EXPECT_EQ(0, bad) TH_LOG("reader 'a' got record 3, which fails its "
				 "checksum");
	if (!bad) {
		static const long want[] = { 4, 5, 6, 7 };

		EXPECT_TRUE(same_list(_metadata, idx, n, want, 4));
	}
	bring_reader_close(a);
	bring_free(r);
}

/*
 * A committed record whose header says "skip me" (one flipped bit) is
 * damage like any other: it must not vanish without a word.
 */
TEST_F(rec, flipped_discard_bit_in_committed_record_is_damage)
{
	struct bring_rec rec;
	long idx[16];
	int n, bad = 0;
	struct bring *r;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 5, LEN));
	ASSERT_EQ(0, read_rec(self->t.path, CAP, 2 * FP, &rec));
	rec.len_flags |= REC_DISCARD;
	ASSERT_EQ(0, write_rec(self->t.path, CAP, 2 * FP, &rec));
	errno = 0;
	r = bring_open(self->t.path, 0, NULL);
	EXPECT_NULL(r);
	EXPECT_EQ(EBADMSG, errno) TH_LOG("%s", strerror(errno));
	if (r) {
		n = drain(bring_default_reader(r), idx, 16, 0, &bad);
		TH_LOG("opened silently, %d of 5 messages delivered, damaged "
		       "%llu", n, (unsigned long long)get_stats(r).damaged);
	}
	bring_free(r);
}

/* ------------------------------------------------------------------ */
/* Saved cursors.                                                     */

#define CUR_MSGS 10
#define CUR_SHIFTS 3

/*
 * A ring of @nr messages whose only reader "a" shifted the first @shifts
 * one at a time: its two saved generations say @shifts (newer) and
 * @shifts - 1 (older). With @pushed, then more messages until the ring
 * is full (*@pushed: how many in all). All in one session: a reopen
 * would recover the file and save both generations anew. Returns a's
 * slot index.
 */
static int cursor_ring(const char *path, uint64_t cap, size_t len, int nr,
		       int shifts, int *pushed)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);
	struct bring_reader *a;
	struct bring_msg msg;
	struct bring_hdr *h;
	struct bring *r;
	int i;

	unlink(path);
	r = bring_open(path, cap, &opts);
	if (!r)
		return -1;
	a = bring_reader_open(r, "a");
	for (i = 0; a && i < nr; i++)
		if (push_msg(r, (uint32_t)i, len))
			break;
	for (i = 0; a && i < shifts; i++)
		if (bring_reader_next(a, &msg, 0) || bring_reader_shift(a))
			break;
	if (pushed) {
		for (i = nr; !push_msg(r, (uint32_t)i, len); i++)
			;
		*pushed = i;
	}
	bring_reader_close(a);
	bring_free(r);
	h = read_hdr(path);
	if (!h)
		return -1;
	for (i = 0; i < BRING_SLOTS; i++)
		if (h->slots[i].state == SLOT_ACTIVE &&
		    !strcmp(h->slots[i].name, "a"))
			return i;
	return -1;
}

/* File offset of field @field_off of generation @g of slot @slot. */
static off_t cursor_off(int slot, int g, size_t field_off)
{
	return (off_t)(offsetof(struct bring_hdr, slots) +
		       (size_t)slot * sizeof(struct bring_slot) +
		       offsetof(struct bring_slot, saved) +
		       (size_t)g * sizeof(struct bring_cursor) + field_off);
}

/* Which of the slot's two generations is the newer one. */
static int newer_gen(const char *path, int slot)
{
	struct bring_hdr *h = read_hdr(path);

	if (!h)
		return -1;
	return h->slots[slot].saved[0].gen > h->slots[slot].saved[1].gen ? 0 :
									   1;
}

static const size_t cursor_fields[] = {
	offsetof(struct bring_cursor, pos),
	offsetof(struct bring_cursor, gen),
	offsetof(struct bring_cursor, crc),
};

/* Reader "a" gets @first, then every message after it up to @nr - 1. */
static void check_reader_from(struct __test_metadata *_metadata,
			      struct bring *r, long first, int nr)
{
	struct bring_reader *a = bring_reader_open(r, "a");
	long idx[64], want[64];
	int i, n, bad = 0;

	ASSERT_NE_NULL(a);
	n = drain(a, idx, 64, 0, &bad);
	EXPECT_EQ(0, bad);
	for (i = 0; i < nr - first; i++)
		want[i] = first + i;
	EXPECT_TRUE(same_list(_metadata, idx, n, want, (int)(nr - first)));
	bring_reader_close(a);
}

/*
 * In turn for each of the cursor_fields of the newer (@newer) or the
 * older generation of reader "a": a cursor_ring() with bit @bit of that
 * field flipped opens, and "a" gets every message from @first on.
 */
static void check_damaged_cursor(struct __test_metadata *_metadata,
				 const char *path, bool newer, int bit,
				 long first)
{
	struct bring *r;
	size_t f;
	int slot, g;
	off_t off;

	for (f = 0; f < sizeof(cursor_fields) / sizeof(cursor_fields[0]); f++) {
		slot = cursor_ring(path, CAP, LEN, CUR_MSGS, CUR_SHIFTS, NULL);
		ASSERT_GE(slot, 0);
		g = newer_gen(path, slot);
		ASSERT_GE(g, 0);
		off = cursor_off(slot, newer ? g : !g, cursor_fields[f]);
		ASSERT_EQ(0, flip_bit(path, off, bit));
		r = bring_open(path, 0, NULL);
		ASSERT_NE_NULL(r) TH_LOG("field %zu: %s: %s", f,
					 strerror(errno), printed);
		check_reader_from(_metadata, r, first, CUR_MSGS);
		bring_free(r);
	}
}

TEST_F(rec, damaged_newer_cursor_falls_back_to_the_older)
{
	/* Back one message: delivered again, nothing lost. */
	check_damaged_cursor(_metadata, self->t.path, true, 2, CUR_SHIFTS - 1);
}

TEST_F(rec, damaged_older_cursor_keeps_the_newer)
{
	check_damaged_cursor(_metadata, self->t.path, false, 5, CUR_SHIFTS);
}

/*
 * The same in a full ring, where writers have reused the space of the
 * message the older generation points at: the reader resumes no later
 * than its newer place, and nothing after it is lost.
 */
TEST_F(rec, damaged_newer_cursor_in_a_full_ring_loses_nothing)
{
	const uint64_t cap = 4096;
	const size_t len = 104;	/* 120-byte records */
	struct bring_reader *a;
	long idx[64];
	int slot, g, i, n, bad = 0, pushed;
	struct bring *r;

	/* Filled: writers reused the space of message 4 for message 34. */
	slot = cursor_ring(self->t.path, cap, len, 30, 5, &pushed);
	ASSERT_GE(slot, 0);
	ASSERT_GT(pushed, 34);
	g = newer_gen(self->t.path, slot);
	ASSERT_GE(g, 0);
	ASSERT_EQ(0, flip_bit(self->t.path, cursor_off(slot, g, 0), 2));

	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	n = drain(a, idx, 64, 0, &bad);
	EXPECT_EQ(0, bad);
	ASSERT_GT(n, 0);
	EXPECT_LE(idx[0], 5);
	for (i = 1; i < n; i++)
		EXPECT_EQ(idx[i - 1] + 1, idx[i]);
	EXPECT_EQ(pushed - 1, idx[n - 1]);
	bring_reader_close(a);
	bring_free(r);
}

static void damage_both_cursors(struct __test_metadata *_metadata,
				const char *path, int slot)
{
	ASSERT_EQ(0, flip_bit(path, cursor_off(slot, 0, 0), 1));
	ASSERT_EQ(0, flip_bit(path, cursor_off(slot, 1, 0), 1));
}

TEST_F(rec, both_cursors_damaged_fail_with_ebadmsg)
{
	int slot;

	slot = cursor_ring(self->t.path, CAP, LEN, CUR_MSGS, CUR_SHIFTS,
			   NULL);
	ASSERT_GE(slot, 0);
	damage_both_cursors(_metadata, self->t.path, slot);
	check_refused(_metadata, self->t.path, 0, EBADMSG);
	EXPECT_NE_NULL(strstr(printed, "'a'")) TH_LOG("%s", printed);
}

/*
 * With BRING_SKIP_DAMAGED the reader whose place is lost starts again
 * from the oldest message the ring still holds: duplicates, no loss.
 */
TEST_F(rec, both_cursors_damaged_with_skip_damaged_lose_nothing)
{
	struct bring_reader *a;
	long idx[64];
	int slot, i, n, bad = 0;
	struct bring *r;

	slot = cursor_ring(self->t.path, CAP, LEN, CUR_MSGS, CUR_SHIFTS,
			   NULL);
	ASSERT_GE(slot, 0);
	damage_both_cursors(_metadata, self->t.path, slot);
	r = open_flags(self->t.path, BRING_SKIP_DAMAGED);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	n = drain(a, idx, 64, 0, &bad);
	EXPECT_EQ(0, bad);
	ASSERT_GT(n, 0) TH_LOG("reader 'a' lost messages %d to %d",
			       CUR_SHIFTS, CUR_MSGS - 1);
	EXPECT_LE(idx[0], CUR_SHIFTS);
	for (i = 1; i < n; i++)
		EXPECT_EQ(idx[i - 1] + 1, idx[i]);
	EXPECT_EQ(CUR_MSGS - 1, idx[n - 1]);
	bring_reader_close(a);
	bring_free(r);
}

/*
 * Readers "a" (shifted CUR_SHIFTS) and "b" (shifted 2), then b's slot
 * renamed "a" by hand: two slots claim one name.
 */
static void make_duplicate_reader(struct __test_metadata *_metadata,
				  const char *path, int *renamed_slot)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);
	struct bring_reader *a, *b;
	struct bring_msg msg;
	struct bring_hdr *h;
	struct bring *r;
	int i, renamed = 0;

	unlink(path);
	r = bring_open(path, CAP, &opts);
	ASSERT_NE_NULL(r);
	a = bring_reader_open(r, "a");
	b = bring_reader_open(r, "b");
	ASSERT_NE_NULL(a);
	ASSERT_NE_NULL(b);
	for (i = 0; i < CUR_MSGS; i++)
		ASSERT_EQ(0, push_msg(r, (uint32_t)i, LEN));
	for (i = 0; i < CUR_SHIFTS; i++) {
		ASSERT_EQ(0, bring_reader_next(a, &msg, 0));
		ASSERT_EQ(0, bring_reader_shift(a));
	}
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, bring_reader_next(b, &msg, 0));
		ASSERT_EQ(0, bring_reader_shift(b));
	}
	bring_reader_close(a);
	bring_reader_close(b);
	bring_free(r);
	h = read_hdr(path);
	ASSERT_NE_NULL(h);
	for (i = 0; i < BRING_SLOTS; i++) {
		if (h->slots[i].state == SLOT_ACTIVE &&
		    !strcmp(h->slots[i].name, "b")) {
			strcpy(h->slots[i].name, "a");
			renamed++;
			if (renamed_slot)
				*renamed_slot = i;
		}
	}
	ASSERT_EQ(1, renamed);
	ASSERT_EQ(0, write_hdr(path));
}

TEST_F(rec, duplicate_reader_names_fail_with_ebadmsg)
{
	make_duplicate_reader(_metadata, self->t.path, NULL);
	check_refused(_metadata, self->t.path, 0, EBADMSG);
	EXPECT_NE_NULL(strstr(printed, "both 'a'")) TH_LOG("%s", printed);
}

/*
 * With BRING_SKIP_DAMAGED one reader "a" remains, at the older of the
 * two places: duplicates, no loss, and no second slot pinning space.
 */
TEST_F(rec, duplicate_reader_names_with_skip_damaged_keep_the_older_place)
{
	struct bring_reader *a;
	struct bring_hdr *h;
	struct bring *r;
	long idx[64], want[64];
	int i, n, bad = 0, active = 0;

	make_duplicate_reader(_metadata, self->t.path, NULL);
	r = open_flags(self->t.path, BRING_SKIP_DAMAGED);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_EQ(1, get_stats(r).damaged);
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	n = drain(a, idx, 64, 0, &bad);
	EXPECT_EQ(0, bad);
	for (i = 0; i < CUR_MSGS - 2; i++)
		want[i] = 2 + i;
	EXPECT_TRUE(same_list(_metadata, idx, n, want, CUR_MSGS - 2));
	bring_reader_close(a);
	bring_free(r);
	h = read_hdr(self->t.path);
	ASSERT_NE_NULL(h);
	for (i = 0; i < BRING_SLOTS; i++)
		active += h->slots[i].state == SLOT_ACTIVE;
	EXPECT_EQ(1, active);
}

/*
 * A duplicate whose both cursor copies are damaged counts as the oldest
 * place of all: with BRING_SKIP_DAMAGED the merged reader starts at the
 * oldest message, not at the other slot's place.
 */
TEST_F(rec, duplicate_reader_with_a_lost_cursor_restarts_at_the_oldest)
{
	struct bring_reader *a;
	struct bring *r;
	long idx[64], want[64];
	int i, n, bad = 0, slot = -1;

	make_duplicate_reader(_metadata, self->t.path, &slot);
	ASSERT_GE(slot, 0);
	damage_both_cursors(_metadata, self->t.path, slot);
	r = open_flags(self->t.path, BRING_SKIP_DAMAGED);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	a = bring_reader_open(r, "a");
	ASSERT_NE_NULL(a);
	n = drain(a, idx, 64, 0, &bad);
	EXPECT_EQ(0, bad);
	for (i = 0; i < CUR_MSGS; i++)
		want[i] = i;
	EXPECT_TRUE(same_list(_metadata, idx, n, want, CUR_MSGS));
	bring_reader_close(a);
	bring_free(r);
}

/* ------------------------------------------------------------------ */
/* Records of writers that died.                                      */

/*
 * A child that opens the ring, reserves LEN bytes and never commits;
 * returns its pid once the reservation exists.
 */
static pid_t start_reserving_child(struct __test_metadata *_metadata,
				   const char *path)
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe(ready))
		return -1;
	pid = fork_child();
	if (pid < 0)
		return -1;
	if (!pid) {
		struct bring_resv resv;
		struct bring *r = bring_open(path, 0, NULL);

		CHILD_CHECK(r);
		CHILD_CHECK(!bring_reserve(r, LEN, &resv, 0));
		memset(resv.data, 'X', LEN);
		CHILD_CHECK(write(ready[1], "", 1) == 1);
		for (;;)
			pause();
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		pid = -1;
	close(ready[0]);
	return pid;
}

TEST_F(rec, busy_record_of_a_killed_writer_is_dropped_at_recovery)
{
	static const long want[] = { 0, 2, 3 };
	struct bring *r;
	long idx[16];
	int n, bad = 0;
	pid_t child;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 1, LEN));
	child = start_reserving_child(_metadata, self->t.path);
	ASSERT_GT(child, 0);
	/* The child holds the file: this open recovers nothing. */
	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_msg(r, 2, LEN));
	bring_free(r);
	kill_child(child, NULL);

	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_EQ(0, get_stats(r).damaged);
	ASSERT_EQ(0, push_msg(r, 3, LEN));
	n = drain(bring_default_reader(r), idx, 16, 0, &bad);
	EXPECT_EQ(0, bad);
	EXPECT_TRUE(same_list(_metadata, idx, n, want, 3));
	bring_free(r);
}

static const long NONE[1]; /* check_recovers_to(): no message left */

/* Recovery opens @path without damage; its messages are @want[0..nw). */
static void check_recovers_to(struct __test_metadata *_metadata,
			      const char *path, const long *want, int nw)
{
	struct bring *r = bring_open(path, 0, NULL);
	long idx[16];
	int n, bad = 0;

	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_EQ(0, get_stats(r).damaged);
	n = drain(bring_default_reader(r), idx, 16, 0, &bad);
	EXPECT_EQ(0, bad);
	EXPECT_TRUE(same_list(_metadata, idx, n, want, nw));
	bring_free(r);
}

TEST_F(rec, busy_record_written_by_hand_is_dropped_at_recovery)
{
	static const long want[] = { 0, 2 };
	struct bring_rec rec;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 3, LEN));
	ASSERT_EQ(0, read_rec(self->t.path, CAP, FP, &rec));
	rec.len_flags |= REC_BUSY;
	rec.crc = 0x7ffffff0; /* no such writer */
	ASSERT_EQ(0, write_rec(self->t.path, CAP, FP, &rec));
	check_recovers_to(_metadata, self->t.path, want, 2);
}

TEST_F(rec, busy_record_of_a_killed_writer_is_skipped_at_run_time)
{
	struct bring_msg msg;
	struct bring *r;
	long idx[16];
	int bad = 0;
	pid_t child;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 1, LEN));
	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	child = start_reserving_child(_metadata, self->t.path);
	ASSERT_GT(child, 0);
	ASSERT_EQ(0, push_msg(r, 2, LEN));
	EXPECT_EQ(1, drain(bring_default_reader(r), idx, 16, 0, &bad));
	EXPECT_EQ(0, idx[0]);
	/* The reservation holds readers up while its writer lives. */
	EXPECT_EQ(-EAGAIN, bring_next_timeout(r, &msg, 0));
	kill_child(child, NULL);
	ASSERT_EQ(0, bring_next_timeout(r, &msg, WAIT_MS))
		TH_LOG("still stuck behind the dead writer's record");
	EXPECT_EQ(2, msg_idx(&msg));
	EXPECT_EQ(0, bring_shift(r));
	bring_free(r);
}

/* Make record 1 of 3 a claim that was never tagged. */
static void untag_record_1(struct __test_metadata *_metadata,
			   const char *path)
{
	struct bring_rec rec;

	ASSERT_EQ(0, make_ring(path, CAP, 0, 3, LEN));
	ASSERT_EQ(0, read_rec(path, CAP, FP, &rec));
	rec.tag = 0;
	rec.len_flags = 0;
	ASSERT_EQ(0, write_rec(path, CAP, FP, &rec));
}

TEST_F(rec, claimed_hole_in_an_intent_is_dropped_at_recovery)
{
	static const long want[] = { 0, 2 };
	struct bring_intent *in;
	struct bring_hdr *h;
	struct bring *r;
	long idx[16];
	int n, bad = 0;

	untag_record_1(_metadata, self->t.path);
	h = read_hdr(self->t.path);
	ASSERT_NE_NULL(h);
	in = &h->intents[BRING_INTENTS - 1];
	in->pos = FP | (1ULL << 63);
	in->need = FP;
	in->pid = 0x7ffffff0;
	in->tid = 0x7ffffff0;
	ASSERT_EQ(0, write_hdr(self->t.path));

	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_EQ(0, get_stats(r).damaged);
	EXPECT_NULL(strstr(printed, "damaged")) TH_LOG("%s", printed);
	n = drain(bring_default_reader(r), idx, 16, 0, &bad);
	EXPECT_EQ(0, bad);
	EXPECT_TRUE(same_list(_metadata, idx, n, want, 2));
	bring_free(r);
}

/*
 * Messages 0..4, record 1 ([FP, 2 * FP)) a claimed hole: its intent and
 * another dead one, [@start, @start + @need). Recovery keeps the rest.
 */
static void two_intents_over_a_hole(struct __test_metadata *_metadata,
				    const char *path, uint64_t start,
				    uint64_t need)
{
	static const long want[] = { 0, 2, 3, 4 };
	struct bring_rec rec;
	struct bring_hdr *h;

	ASSERT_EQ(0, make_ring(path, CAP, 0, 5, LEN));
	ASSERT_EQ(0, read_rec(path, CAP, FP, &rec));
	rec.tag = 0;
	rec.len_flags = 0;
	ASSERT_EQ(0, write_rec(path, CAP, FP, &rec));
	h = read_hdr(path);
	ASSERT_NE_NULL(h);
	h->intents[0] = (struct bring_intent){ .pos = start | INTENT_VALID,
					       .need = need,
					       .pid = 0x7ffffff0,
					       .tid = 0x7ffffff0 };
	h->intents[1] = (struct bring_intent){ .pos = FP | INTENT_VALID,
					       .need = FP,
					       .pid = 0x7ffffff1,
					       .tid = 0x7ffffff1 };
	ASSERT_EQ(0, write_hdr(path));
	check_recovers_to(_metadata, path, want, 4);
}

/*
 * A stale intent (its writer killed before its CAS, or after losing it)
 * starts at a head value at or before the dead claim's start and may end
 * anywhere: here [0, 104) over the dead claim [56, 112). A hole cut at
 * its end left [104, 112), 8 bytes, no header: the scan lost its way
 * and refused the file.
 */
TEST_F(rec, stale_intent_over_a_claimed_hole_does_not_split_it)
{
	two_intents_over_a_hole(_metadata, self->t.path, 0, 2 * FP - 8);
}

/*
 * Two intents from one head over the claimed hole [56, 112): one claim
 * made it, one did not. The hole ends where the next record starts
 * (112), not at the other intent's end 8 bytes before (104), which left
 * 8 bytes no header fits in, and the open failed.
 */
TEST_F(rec, two_intents_from_one_head_end_the_hole_at_the_next_record)
{
	two_intents_over_a_hole(_metadata, self->t.path, FP, FP - 8);
}

TEST_F(rec, untagged_record_without_an_intent_is_damage)
{
	untag_record_1(_metadata, self->t.path);
	check_refused(_metadata, self->t.path, 0, EBADMSG);
}

TEST_F(rec, claimed_hole_of_a_dead_thread_is_skipped_at_run_time)
{
	struct bring_intent *in;
	struct bring_msg msg;
	uint64_t head;
	struct bring *r;
	pid_t dead;

	r = bring_open(self->t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_msg(r, 0, LEN));
	dead = dead_pid();
	ASSERT_GT(dead, 0);

	/* A thread of @dead claimed FP bytes at head, then died. */
	in = &r->hdr->intents[BRING_INTENTS - 1];
	head = __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE);
	ASSERT_EQ(FP, head);
	in->need = FP;
	in->pid = dead;
	in->tid = dead;
	__atomic_store_n(&in->pos, head | (1ULL << 63), __ATOMIC_RELEASE);
	ASSERT_TRUE(__atomic_compare_exchange_n(&r->hdr->head, &head,
						head + FP, false,
						__ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST));
	ASSERT_EQ(0, push_msg(r, 2, LEN));

	ASSERT_EQ(0, bring_next_timeout(r, &msg, 0));
	EXPECT_EQ(0, msg_idx(&msg));
	ASSERT_EQ(0, bring_shift(r));
	EXPECT_EQ(-EAGAIN, bring_next_timeout(r, &msg, 0));
	ASSERT_EQ(0, bring_next_timeout(r, &msg, WAIT_MS))
		TH_LOG("still stuck at the dead thread's claim");
	EXPECT_EQ(2, msg_idx(&msg));
	EXPECT_EQ(0, bring_shift(r));
	bring_free(r);

	/* And the repaired file recovers cleanly, everything read. */
	check_recovers_to(_metadata, self->t.path, NONE, 0);
}

static void *push_msg_4(void *arg)
{
	return (void *)(intptr_t)push_msg(arg, 4, LEN);
}

/*
 * A dead thread's claim of two records: it tagged the first header
 * (BUSY, naming it) and died before the second. Readers repair the
 * first, stand inside the claim, and need its intent for the rest. A
 * writer thread that takes its first intent slot meanwhile must not
 * take that one: once cleared, the untagged rest is damage nobody can
 * explain, and the readers stay stuck in front of it.
 */
TEST_F(rec, claim_half_tagged_by_a_dead_thread_keeps_its_intent_until_passed)
{
	struct bring_intent *in;
	struct bring_rec *rec;
	struct bring_msg msg;
	uint64_t head;
	struct bring *r;
	pthread_t t;
	void *ret;
	pid_t dead;

	r = bring_open(self->t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_msg(r, 0, LEN)); /* this thread: its own slot */
	dead = dead_pid();
	ASSERT_GT(dead, 0);

	/* Slot 1: held by nobody, so its thread is dead. */
	in = &r->hdr->intents[1];
	ASSERT_EQ(0, in->tid);
	head = __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE);
	in->need = 2 * FP;
	in->pid = dead;
	in->tid = dead;
	__atomic_store_n(&in->pos, head | INTENT_VALID, __ATOMIC_RELEASE);
	ASSERT_TRUE(__atomic_compare_exchange_n(&r->hdr->head, &head,
						head + 2 * FP, false,
						__ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST));
	rec = rec_at(r, head);
	rec->word = rec_word(LEN | REC_BUSY, in->gen << 6 | 1);
	__atomic_store_n(&rec->tag, head ^ r->key, __ATOMIC_RELEASE);
	ASSERT_EQ(0, push_msg(r, 3, LEN));

	ASSERT_EQ(0, bring_next_timeout(r, &msg, 0));
	EXPECT_EQ(0, msg_idx(&msg));
	ASSERT_EQ(0, bring_shift(r));
	/* The first record is repaired; the reader stops at the second. */
	EXPECT_TRUE(file_repair_stuck(r, head));
	EXPECT_EQ(-EAGAIN, bring_next_timeout(r, &msg, 0));
	ASSERT_EQ(head + FP, ring_min_reader_pos(r));

	ASSERT_EQ(0, pthread_create(&t, NULL, push_msg_4, r));
	ASSERT_EQ(0, pthread_join(t, &ret));
	ASSERT_EQ(NULL, ret);
	EXPECT_EQ(head | INTENT_VALID, in->pos)
		TH_LOG("the dead claim's intent was taken over");

	ASSERT_EQ(0, bring_next_timeout(r, &msg, WAIT_MS))
		TH_LOG("stuck inside the dead thread's claim");
	EXPECT_EQ(3, msg_idx(&msg));
	ASSERT_EQ(0, bring_shift(r));
	ASSERT_EQ(0, bring_next_timeout(r, &msg, 0));
	EXPECT_EQ(4, msg_idx(&msg));
	ASSERT_EQ(0, bring_shift(r));
	bring_free(r);

	check_recovers_to(_metadata, self->t.path, NONE, 0);
}

/* ------------------------------------------------------------------ */
/* Only the first process to open a file recovers it.                 */

TEST_F(rec, recovery_waits_until_nobody_has_the_file_open)
{
	static const long first[] = { 0, 1, 2, 3 };
	static const long after[] = { 5 };
	struct bring_rec rec;
	struct bring *r;
	int ready[2], n, bad = 0;
	long idx[16];
	pid_t child;
	char c;

	ASSERT_EQ(0, make_ring(self->t.path, CAP, 0, 5, LEN));
	ASSERT_EQ(0, pipe(ready));
	child = fork_child();
	ASSERT_GE(child, 0);
	if (!child) {
		r = bring_open(self->t.path, 0, NULL);
		CHILD_CHECK(r);
		CHILD_CHECK(write(ready[1], "", 1) == 1);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	ASSERT_EQ(0, read_rec(self->t.path, CAP, 4 * FP, &rec));
	rec.tag ^= 1ULL << 20;
	ASSERT_EQ(0, write_rec(self->t.path, CAP, 4 * FP, &rec));

	capture_start();
	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(0, printed_len) TH_LOG("%s", printed);
	EXPECT_EQ(5 * FP, get_stats(r).used);
	n = drain(bring_default_reader(r), idx, 16, 0, &bad);
	EXPECT_TRUE(same_list(_metadata, idx, n, first, 4));
	bring_free(r);
	kill_child(child, NULL);

	r = bring_open(self->t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_NE_NULL(strstr(printed, "torn tail")) TH_LOG("%s", printed);
	EXPECT_EQ(0, get_stats(r).used);
	ASSERT_EQ(0, push_msg(r, 5, LEN));
	n = drain(bring_default_reader(r), idx, 16, 0, &bad);
	EXPECT_EQ(0, bad);
	EXPECT_TRUE(same_list(_metadata, idx, n, after, 1));
	bring_free(r);
	close(ready[0]);
	close(ready[1]);
}

/* ------------------------------------------------------------------ */
/* Never a crash, a hang or a bad record.                             */

#define FUZZ_CAP 16384
#define FUZZ_MSGS 100
#define FUZZ_ROUNDS 300

static size_t fuzz_len(int i)
{
	return 8 + (size_t)(i * 37) % 150;
}

/* Pushes every message; "a" and the default reader each shift some. */
static int fuzz_ring(const char *path, uint64_t *used)
{
	struct bring_reader *a, *b;
	struct bring_msg msg;
	struct bring *r;
	int i, err = 0;

	r = bring_open(path, FUZZ_CAP, NULL);
	if (!r)
		return -1;
	a = bring_reader_open(r, "a");
	b = bring_reader_open(r, "b");
	if (!a || !b)
		err = -1;
	for (i = 0; i < FUZZ_MSGS && !err; i++)
		err = push_msg(r, (uint32_t)i, fuzz_len(i));
	for (i = 0; i < 60 && !err; i++)
		err = bring_reader_next(a, &msg, 0) ?: bring_reader_shift(a);
	for (i = 0; i < 30 && !err; i++)
		err = bring_next_timeout(r, &msg, 0) ?: bring_shift(r);
	bring_reader_close(a);
	bring_reader_close(b);
	bring_free(r);
	for (i = 0, *used = 0; i < FUZZ_MSGS; i++)
		*used += rec_footprint_len(fuzz_len(i));
	return err;
}

/* Some random damage to @buf, a copy of the ring file. */
static void fuzz_damage(uint8_t *buf, uint64_t used, unsigned int *seed)
{
	int k, n = 1 + (int)(rand_r(seed) % 4);
	size_t off, len, j;

	for (k = 0; k < n; k++) {
		switch (rand_r(seed) % 5) {
		case 0: /* a bit in the data */
		case 1:
			off = BRING_HDR_SIZE + rand_r(seed) % used;
			buf[off] ^= (uint8_t)(1U << (rand_r(seed) % 8));
			break;
		case 2: /* a bit anywhere in the header */
			off = rand_r(seed) % sizeof(struct bring_hdr);
			buf[off] ^= (uint8_t)(1U << (rand_r(seed) % 8));
			break;
		case 3: /* a zeroed run of the data */
			off = BRING_HDR_SIZE + (rand_r(seed) % used & ~255UL);
			len = 256 << (rand_r(seed) % 4);
			if (off + len > BRING_HDR_SIZE + FUZZ_CAP)
				len = BRING_HDR_SIZE + FUZZ_CAP - off;
			memset(buf + off, 0, len);
			break;
		default: /* random bytes over some 16 aligned ones */
			off = BRING_HDR_SIZE + (rand_r(seed) % used & ~7UL);
			for (j = 0; j < 16 && off + j < BRING_HDR_SIZE +
						      FUZZ_CAP; j++)
				buf[off + j] = (uint8_t)rand_r(seed);
			break;
		}
	}
}

/* Every reader of @r gets only messages it was sent, in order. */
static int fuzz_read(struct __test_metadata *_metadata, struct bring *r,
		     int *delivered, int round)
{
	static const char *const names[] = { "a", "b", "(default)" };
	struct bring_reader *rd;
	long idx[FUZZ_MSGS + 1];
	int i, k, n, bad, all_bad = 0;

	for (k = 0; k < 3; k++) {
		rd = k < 2 ? bring_reader_open(r, names[k]) :
			     bring_default_reader(r);
		if (!rd)
			continue;
		bad = 0;
		n = drain(rd, idx, FUZZ_MSGS + 1, 0, &bad);
		if (bad)
			TH_LOG("round %d: reader %s: message %d fails its "
			       "check", round, names[k], n);
		for (i = 1; i < n; i++) {
			if (idx[i] > idx[i - 1] && idx[i] < FUZZ_MSGS)
				continue;
			TH_LOG("round %d: reader %s: %ld after %ld", round,
			       names[k], idx[i], idx[i - 1]);
			bad++;
		}
		if (bad)
			TH_LOG("round %d: the library said: %s", round,
			       printed);
		*delivered += n;
		all_bad += bad;
		if (k < 2)
			bring_reader_close(rd);
	}
	return all_bad;
}

TEST_TIMEOUT(random_damage_never_crashes_hangs_or_delivers_a_bad_record,
	     120)
{
	static const unsigned int flags[] = { 0, BRING_SKIP_DAMAGED };
	int round, f, bad, delivered = 0, opened = 0, refused = 0;
	uint8_t *pristine, *damaged;
	unsigned int seed;
	uint64_t used = 0;
	struct bring *r;
	struct tmp t;
	size_t len;

	ASSERT_EQ(0, tmp_make(&t));
	capture_start();
	ASSERT_EQ(0, fuzz_ring(t.path, &used));
	ASSERT_GT(used, 0);
	pristine = read_all(t.path, &len);
	ASSERT_NE_NULL(pristine);
	damaged = malloc(len);
	ASSERT_NE_NULL(damaged);
	for (round = 0; round < FUZZ_ROUNDS; round++) {
		seed = (unsigned int)round + 1;
		memcpy(damaged, pristine, len);
		fuzz_damage(damaged, used, &seed);
		for (f = 0; f < 2; f++) {
			ASSERT_EQ(0, write_all(t.path, damaged, len));
			printed_len = 0;
			errno = 0;
			r = open_flags(t.path, flags[f]);
			if (!r) {
				refused++;
				EXPECT_TRUE(errno == EBADMSG || errno == EINVAL)
					TH_LOG("round %d flags %u: %s", round,
					       flags[f], strerror(errno));
				EXPECT_TRUE(file_is(t.path, damaged, len))
					TH_LOG("round %d flags %u: refused, "
					       "but changed", round, flags[f]);
				continue;
			}
			opened++;
			bad = fuzz_read(_metadata, r, &delivered, round);
			EXPECT_EQ(0, bad) TH_LOG("round %d flags %u: a message "
						 "that was never sent", round,
						 flags[f]);
			/* Still a ring that takes messages. */
			EXPECT_EQ(0, bring_push_timeout(r, "new", 3, 0))
				TH_LOG("round %d flags %u", round, flags[f]);
			bring_free(r);
		}
	}
	TH_LOG("%d rounds: %d opens, %d refused, %d messages delivered",
	       FUZZ_ROUNDS, opened, refused, delivered);
	EXPECT_GT(opened, 0);
	EXPECT_GT(refused, 0);
	free(damaged);
	free(pristine);
	bring_set_print(NULL);
	tmp_remove(&t);
}

#define KW_WRITERS 2
#define KW_ROUNDS 6
#define KW_IDS (KW_WRITERS * KW_ROUNDS)
#define KW_SEQ_BITS 20

/* A writer process: pushes its messages until it is killed. */
static void __attribute__((noreturn)) kw_writer(const char *path, int id,
						uint32_t *acked)
{
	struct bring *r = bring_open(path, 0, NULL);
	uint32_t seq;

	CHILD_CHECK(r);
	for (seq = 0; seq < (1U << KW_SEQ_BITS); seq++) {
		CHILD_CHECK(!push_msg_timeout(r, (uint32_t)id << KW_SEQ_BITS |
						 seq, 8 + seq % 200, -1));
		__atomic_store_n(&acked[id], seq + 1, __ATOMIC_RELEASE);
	}
	_exit(0);
}

/* One message from the reader: in each writer's order, none skipped. */
static int kw_take(struct __test_metadata *_metadata, struct bring *r,
		   uint32_t *next, int timeout_ms)
{
	struct bring_msg msg;
	long idx;
	int err, id;

	err = bring_next_timeout(r, &msg, timeout_ms);
	if (err)
		return err;
	idx = msg_idx(&msg);
	EXPECT_GE(idx, 0) TH_LOG("a message that was never sent");
	if (idx < 0)
		return -EBADMSG;
	id = (int)(idx >> KW_SEQ_BITS);
	EXPECT_LT(id, KW_IDS);
	if (id >= KW_IDS)
		return -EBADMSG;
	EXPECT_EQ(next[id], idx & ((1 << KW_SEQ_BITS) - 1))
		TH_LOG("writer %d", id);
	next[id] = (uint32_t)(idx & ((1 << KW_SEQ_BITS) - 1)) + 1;
	return bring_shift(r);
}

/*
 * Writer processes killed with SIGKILL at random instants while a reader
 * keeps reading: the reader gets every message whose push returned, in
 * order, nothing twice and nothing damaged, then the file recovers.
 */
TEST_TIMEOUT(killed_writers_never_leave_a_bad_record, 120)
{
	uint32_t next[KW_IDS] = { 0 }, *acked;
	pid_t pids[KW_WRITERS];
	unsigned int seed = 7;
	struct bring_msg msg;
	uint64_t deadline;
	int round, w, id, err;
	struct bring *r;
	struct tmp t;

	ASSERT_EQ(0, tmp_make(&t));
	capture_start();
	acked = mmap(NULL, KW_IDS * sizeof(*acked), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, acked);
	r = bring_open(t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	for (round = 0; round < KW_ROUNDS; round++) {
		for (w = 0; w < KW_WRITERS; w++) {
			pids[w] = fork_child();
			ASSERT_GE(pids[w], 0);
			if (!pids[w])
				kw_writer(t.path, round * KW_WRITERS + w,
					  acked);
		}
		deadline = now_ns() + (20 + rand_r(&seed) % 80) * MS;
		while (now_ns() < deadline) {
			err = kw_take(_metadata, r, next, 250);
			ASSERT_TRUE(!err || err == -ETIMEDOUT)
				TH_LOG("round %d: %s", round, strerror(-err));
		}
		for (w = 0; w < KW_WRITERS; w++)
			kill_child(pids[w], NULL);
	}
	/* Dead writers' records are skipped after STUCK_CHECK_MS. */
	while (!(err = kw_take(_metadata, r, next, 1000)))
		;
	EXPECT_EQ(-ETIMEDOUT, err);
	for (id = 0; id < KW_IDS; id++) {
		uint32_t done = __atomic_load_n(&acked[id], __ATOMIC_ACQUIRE);

		EXPECT_GE(next[id], done)
			TH_LOG("writer %d: %u pushed, %u read", id, done,
			       next[id]);
		EXPECT_LE(next[id], done + 1) TH_LOG("writer %d", id);
	}
	bring_free(r);

	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r) TH_LOG("%s: %s", strerror(errno), printed);
	EXPECT_EQ(0, get_stats(r).damaged);
	EXPECT_EQ(-EAGAIN, bring_next_timeout(r, &msg, 0));
	EXPECT_EQ(0, bring_push_timeout(r, "after", 5, 0));
	bring_free(r);
	munmap(acked, KW_IDS * sizeof(*acked));
	bring_set_print(NULL);
	tmp_remove(&t);
}

TEST_HARNESS_MAIN
