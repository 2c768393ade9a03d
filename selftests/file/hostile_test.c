// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile and unlucky ring files (Documentation/security.rst): what a
 * process that can write the ring, or an operator's mistake, can do to
 * the other processes that use it.
 *
 *  - a record whose length or footprint was forged is refused at run time
 *    (-EBADMSG, counted, printed once), in memory and file rings; with
 *    BRING_VERIFY_CRC a payload that fails its checksum is refused too;
 *  - after recovery cut a torn tail, nothing of the cut records can be
 *    delivered again;
 *  - a sparse or truncated file fails bring_open() cleanly instead of
 *    raising SIGBUS later;
 *  - a file another user owns, or that others may write, is refused
 *    unless BRING_ALLOW_FOREIGN; a lock holder cannot block bring_open()
 *    forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/falloc.h>

#include "bring.h"
#include "internal.h"
#include "kselftest_harness.h"
#include "util.h"

#define CAP 65536

static int push_str(struct bring *r, const char *s)
{
	return bring_push(r, s, strlen(s));
}

/* The record header at stream position @pos, through the mapping. */
static struct bring_rec *rec_of(struct bring *r, uint64_t pos)
{
	return rec_at(r, pos);
}

/* ------------------------------------------------------------------ */
/* Forged records (issue 13, item 3).                                 */

FIXTURE(forged)
{
	struct tmp t;
	struct bring *r;
	bring_print_fn_t old_print;
};

FIXTURE_VARIANT(forged)
{
	bool file;
};

FIXTURE_VARIANT_ADD(forged, memory)
{
	.file = false,
};

FIXTURE_VARIANT_ADD(forged, file)
{
	.file = true,
};

FIXTURE_SETUP(forged)
{
	self->old_print = capture_start();
	if (variant->file) {
		ASSERT_EQ(0, tmp_make(&self->t));
		self->r = bring_open(self->t.path, CAP, NULL);
	} else {
		self->t.dir[0] = '\0';
		self->r = bring_new(CAP, NULL);
	}
	ASSERT_NE_NULL(self->r);
}

FIXTURE_TEARDOWN(forged)
{
	bring_free(self->r);
	bring_set_print(self->old_print);
	tmp_remove(&self->t);
}

/* Rewrite the commit word of the record at @pos, keeping its checksum. */
static void forge_len(struct bring *r, uint64_t pos, uint32_t len_flags)
{
	struct bring_rec *rec = rec_of(r, pos);

	store_release(&rec->word,
		      rec_word(len_flags, word_crc(load_relaxed(&rec->word))));
}

/* The reproduction: a length of 2^30 - 1, far above max_msg. */
TEST_F(forged, length_above_max_msg_is_refused_not_delivered)
{
	struct bring_reader *rd = bring_default_reader(self->r);
	struct bring_wait w;
	struct bring_msg msg;

	ASSERT_EQ(0, push_str(self->r, "first"));
	ASSERT_EQ(0, push_str(self->r, "second"));
	forge_len(self->r, 0, REC_LEN_MASK);
	msg.len = 0;
	EXPECT_EQ(-EBADMSG, bring_next_timeout(self->r, &msg, 0))
		TH_LOG("len %zu handed out", msg.len);
	/* Neither a wait nor an event loop sleeps in front of it. */
	EXPECT_EQ(-EBADMSG, bring_next_timeout(self->r, &msg, 5000));
	EXPECT_EQ(-EBADMSG, bring_next_timeout(self->r, &msg, -1));
	EXPECT_EQ(1, bring_reader_wait_prepare(rd, &w));
	EXPECT_EQ(-EBADMSG, bring_peek(self->r, &msg, 1, 0, 0));
	/* Counted and printed once, with its position. */
	EXPECT_EQ(1, get_stats(self->r).damaged);
	EXPECT_EQ(1, printed_nr);
	EXPECT_NE_NULL(strstr(printed, "damaged record at position 0"))
		TH_LOG("%s", printed);
}

TEST_F(forged, length_past_head_is_refused)
{
	struct bring_msg msg;

	ASSERT_EQ(0, push_str(self->r, "first"));
	ASSERT_EQ(0, push_str(self->r, "second"));
	/* Below max_msg, but the record would run past everything claimed. */
	forge_len(self->r, 0, 1000);
	EXPECT_EQ(-EBADMSG, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(1, get_stats(self->r).damaged);
}

TEST_F(forged, discard_record_past_head_is_refused)
{
	struct bring_msg msg;

	ASSERT_EQ(0, push_str(self->r, "first"));
	forge_len(self->r, 0, REC_DISCARD | REC_LEN_MASK);
	EXPECT_EQ(-EBADMSG, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(1, get_stats(self->r).damaged);
}

TEST_F(forged, messages_in_front_of_the_damage_are_delivered)
{
	struct bring_msg msgs[4];

	ASSERT_EQ(0, push_str(self->r, "a"));
	ASSERT_EQ(0, push_str(self->r, "bb"));
	ASSERT_EQ(0, push_str(self->r, "ccc"));
	forge_len(self->r, rec_footprint_len(1), REC_LEN_MASK);
	ASSERT_EQ(1, bring_peek(self->r, msgs, 4, 0, 0));
	EXPECT_EQ(1, msgs[0].len);
	EXPECT_EQ(0, memcmp(msgs[0].data, "a", 1));
	EXPECT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(-EBADMSG, bring_peek(self->r, msgs, 4, 0, 0));
	EXPECT_EQ(0, get_stats(self->r).msgs_out - 1);
}

/* Only a file ring carries checksums; BRING_VERIFY_CRC checks them. */
TEST(verify_crc_refuses_a_payload_that_fails_its_checksum)
{
	BRING_OPTS(opts, .flags = BRING_VERIFY_CRC);
	bring_print_fn_t old = capture_start();
	struct bring *r, *r2;
	struct bring_reader *rd;
	struct bring_msg msg;
	struct tmp t;
	char *payload;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_str(r, "payload"));
	payload = (char *)(rec_of(r, 0) + 1);
	payload[3] ^= 0x20;
	/* Without the flag, the bounds hold and the bytes are delivered. */
	ASSERT_EQ(0, bring_next_timeout(r, &msg, 0));
	EXPECT_EQ(0, memcmp(msg.data, "payLoad", 7));
	/* Another open of the file (no recovery: r has it open). */
	r2 = bring_open(t.path, 0, &opts);
	ASSERT_NE_NULL(r2);
	rd = bring_reader_open(r2, "verifier");
	ASSERT_NE_NULL(rd);
	EXPECT_EQ(-EBADMSG, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ(1, get_stats(r2).damaged);
	/* Repaired in place, it is delivered. */
	payload[3] ^= 0x20;
	ASSERT_EQ(0, bring_reader_next(rd, &msg, 0));
	EXPECT_EQ(0, memcmp(msg.data, "payload", 7));
	bring_reader_close(rd);
	bring_free(r);
	bring_free(r2);
	bring_set_print(old);
	tmp_remove(&t);
}

/* The flags that apply to one open are not stored in the file. */
TEST(open_flags_are_not_stored_in_the_file)
{
	BRING_OPTS(opts, .flags = BRING_VERIFY_CRC | BRING_ALLOW_FOREIGN);
	struct bring *r;
	struct tmp t;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, &opts);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(0, r->hdr->c.flags & BRING_OPEN_FLAGS);
	bring_free(r);
	r = bring_open(t.path, 0, NULL);
	EXPECT_NE_NULL(r) TH_LOG("reopen: %s", strerror(errno));
	bring_free(r);
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* The torn tail recovery cuts stays cut (item 6).                     */

/*
 * The crafted reproduction: a committed "good" record, then a torn one
 * (its checksum fails) that recovery cuts off. A writer then claims the
 * same position and stops before it writes its header (head moved, no
 * header): readers must not see the cut record there.
 */
TEST(torn_tail_cut_by_recovery_is_never_delivered)
{
	bring_print_fn_t old = capture_start();
	static const char torn[] = "TORN-GARBAGE";
	uint64_t at = rec_footprint_len(4), pos;
	struct bring_msg msg;
	struct bring *r;
	struct tmp t;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_str(r, "good"));
	ASSERT_EQ(0, bring_push(r, torn, sizeof(torn)));
	bring_free(r);
	/* Torn: the payload did not all reach the file. */
	ASSERT_EQ(0, flip_bit(t.path, BRING_HDR_SIZE + at + REC_HDR_SIZE + 2, 0));

	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_NE_NULL(strstr(printed, "torn tail")) TH_LOG("%s", printed);
	ASSERT_EQ(at, r->hdr->head);
	for (pos = at; pos < at + rec_footprint_len(sizeof(torn)); pos += 8)
		EXPECT_FALSE(tag_matches(rec_of(r, pos)->tag, pos, r->key))
			TH_LOG("a tag at %llu still matches",
			       (unsigned long long)pos);
	/* A claim at the cut position whose writer has not written yet. */
	r->hdr->head = at + rec_footprint_len(sizeof(torn));
	ASSERT_EQ(0, bring_next_timeout(r, &msg, 0));
	EXPECT_EQ(4, msg.len);
	ASSERT_EQ(0, bring_shift(r));
	msg.len = 0;
	EXPECT_EQ(-EAGAIN, bring_next_timeout(r, &msg, 0))
		TH_LOG("delivered %zu bytes: '%.*s'", msg.len, (int)msg.len,
		       (const char *)msg.data);
	bring_free(r);
	bring_set_print(old);
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* Sparse and truncated files (item 5).                               */

/*
 * A tmpfs of @size in a mount namespace of our own (the mount goes with
 * the test process), at a scratch directory in @t: 0, or a SKIP reason.
 */
static const char *small_tmpfs(struct tmp *t, const char *size)
{
	char opts[64];

	if (unshare(CLONE_NEWNS) < 0)
		return "unshare(CLONE_NEWNS) needs CAP_SYS_ADMIN";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return "mount --make-rprivate / failed";
	if (tmp_make(t))
		return "mkdtemp failed";
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (mount("tmpfs", t->dir, "tmpfs", 0, opts) < 0) {
		tmp_remove(t);
		return "mount -t tmpfs failed";
	}
	return NULL;
}

/*
 * The reproduction: a sparse copy of a ring (its header, then a hole)
 * on a file system too small to fill the hole. Opening it must fail
 * with ENOSPC; it used to open, and the first push into the hole died
 * with SIGBUS.
 */
TEST(sparse_copy_on_a_full_disk_fails_at_open_with_enospc)
{
	bring_print_fn_t old;
	char src[160], hdr[BRING_HDR_SIZE];
	static char buf[4096];
	struct bring *r;
	const char *why;
	struct tmp t, big;
	int fd, i;

	ASSERT_EQ(0, tmp_make(&big));
	r = bring_open(big.path, 4 << 20, NULL);
	ASSERT_NE_NULL(r);
	bring_free(r);
	snprintf(src, sizeof(src), "%s", big.path);
	ASSERT_EQ(0, file_read(src, hdr, sizeof(hdr), 0));
	tmp_remove(&big);

	why = small_tmpfs(&t, "1m");
	if (why)
		SKIP(return, "%s", why);
	old = capture_start();
	fd = open(t.path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(sizeof(hdr), pwrite(fd, hdr, sizeof(hdr), 0));
	ASSERT_EQ(0, ftruncate(fd, BRING_HDR_SIZE + (4 << 20)));
	close(fd);

	errno = 0;
	r = bring_open(t.path, 0, NULL);
	EXPECT_NULL(r);
	EXPECT_EQ(ENOSPC, errno) TH_LOG("%s", strerror(errno));
	EXPECT_NE_NULL(strstr(printed, "cannot preallocate"))
		TH_LOG("%s", printed);
	/* Had it opened: fill it (this is where SIGBUS came). */
	for (i = 0; r && i < 1024; i++)
		ASSERT_EQ(0, bring_push(r, buf, sizeof(buf)));
	bring_free(r);
	bring_set_print(old);
	unlink(t.path);
	umount2(t.dir, MNT_DETACH);
	tmp_remove(&t);
}

/* A sparse copy where there is room is filled in and works. */
TEST(sparse_copy_is_preallocated_at_open)
{
	struct bring_msg msg;
	struct bring *r;
	struct stat st;
	struct tmp t;

	ASSERT_EQ(0, tmp_make(&t));
	r = bring_open(t.path, 1 << 20, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_str(r, "kept"));
	bring_free(r);
	/* Punch the data area out: what a sparse copy looks like. */
	{
		int fd = open(t.path, O_RDWR);

		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, fallocate(fd, FALLOC_FL_PUNCH_HOLE |
					       FALLOC_FL_KEEP_SIZE,
				       BRING_HDR_SIZE + 4096, (1 << 20) - 4096));
		close(fd);
	}
	ASSERT_EQ(0, stat(t.path, &st));
	ASSERT_LT((uint64_t)st.st_blocks * 512, (uint64_t)st.st_size);
	r = bring_open(t.path, 0, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, stat(t.path, &st));
	EXPECT_GE((uint64_t)st.st_blocks * 512, (uint64_t)st.st_size);
	ASSERT_EQ(0, bring_next_timeout(r, &msg, 0));
	EXPECT_EQ(0, memcmp(msg.data, "kept", 4));
	bring_free(r);
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* Files other users control (item 4).                                */

/* The library's bound on the open lock (weak: absent in old builds). */
extern unsigned int bring__open_lock_ms __attribute__((weak));

/* A ring at @t->path with one message, closed. */
static void make_ring(struct __test_metadata *_metadata, struct tmp *t)
{
	struct bring *r;

	ASSERT_EQ(0, tmp_make(t));
	r = bring_open(t->path, CAP, NULL);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, push_str(r, "m"));
	bring_free(r);
}

/* bring_open(@path) fails with EPERM and says why; ALLOW_FOREIGN opens. */
static void refused_unless_allowed(struct __test_metadata *_metadata,
				   const char *path, const char *why)
{
	BRING_OPTS(allow, .flags = BRING_ALLOW_FOREIGN);
	bring_print_fn_t old = capture_start();
	struct bring_msg msg;
	struct bring *r;

	errno = 0;
	r = bring_open(path, 0, NULL);
	EXPECT_NULL(r);
	EXPECT_EQ(EPERM, errno) TH_LOG("%s", strerror(errno));
	EXPECT_NE_NULL(strstr(printed, why)) TH_LOG("%s", printed);
	EXPECT_NE_NULL(strstr(printed, path)) TH_LOG("%s", printed);
	bring_free(r);
	/* Creating is no way around it either. */
	errno = 0;
	r = bring_open(path, CAP, NULL);
	EXPECT_NULL(r);
	EXPECT_EQ(EPERM, errno);
	bring_free(r);
	r = bring_open(path, 0, &allow);
	ASSERT_NE_NULL(r) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0, bring_next_timeout(r, &msg, 0));
	bring_free(r);
	bring_set_print(old);
}

TEST(file_of_another_user_is_refused_unless_allowed)
{
	struct tmp t;

	make_ring(_metadata, &t);
	if (chown(t.path, 65534, 65534) < 0) {
		tmp_remove(&t);
		SKIP(return, "chown: %s (needs CAP_CHOWN)", strerror(errno));
	}
	/* Root can open it; the check is about ownership, not access. */
	if (geteuid() == 65534) {
		tmp_remove(&t);
		SKIP(return, "running as uid 65534");
	}
	refused_unless_allowed(_metadata, t.path, "owned by uid 65534");
	tmp_remove(&t);
}

TEST(file_writable_by_group_or_others_is_refused_unless_allowed)
{
	struct bring *r;
	struct tmp t;

	make_ring(_metadata, &t);
	ASSERT_EQ(0, chmod(t.path, 0620));
	refused_unless_allowed(_metadata, t.path, "writable by its group");
	ASSERT_EQ(0, chmod(t.path, 0602));
	refused_unless_allowed(_metadata, t.path, "writable by others");
	/* Readable by others is the owner's business. */
	ASSERT_EQ(0, chmod(t.path, 0644));
	r = bring_open(t.path, 0, NULL);
	EXPECT_NE_NULL(r) TH_LOG("%s", strerror(errno));
	bring_free(r);
	tmp_remove(&t);
}

/* A ring created shared on purpose is shared on purpose by every opener. */
TEST(ring_created_group_writable_needs_allow_foreign_to_reopen)
{
	BRING_OPTS(shared, .mode = 0660);
	BRING_OPTS(both, .mode = 0660, .flags = BRING_ALLOW_FOREIGN);
	bring_print_fn_t old = capture_start();
	struct bring *r;
	struct tmp t;

	ASSERT_EQ(0, tmp_make(&t));
	umask(0);
	r = bring_open(t.path, CAP, &shared);
	ASSERT_NE_NULL(r);
	bring_free(r);
	errno = 0;
	EXPECT_NULL(bring_open(t.path, CAP, &shared));
	EXPECT_EQ(EPERM, errno);
	r = bring_open(t.path, CAP, &both);
	EXPECT_NE_NULL(r);
	bring_free(r);
	bring_set_print(old);
	tmp_remove(&t);
}

/*
 * The reproduction: a process that can only read the file holds an OFD
 * read lock on byte 0. bring_open() used to wait for it forever.
 */
TEST_TIMEOUT(open_lock_held_by_a_reader_times_out_naming_the_file, 20)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 1 };
	bring_print_fn_t old;
	struct bring *r;
	struct tmp t;
	uint64_t t0;
	int fd;

	make_ring(_metadata, &t);
	if (&bring__open_lock_ms)
		bring__open_lock_ms = 300;
	fd = open(t.path, O_RDONLY);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fcntl(fd, F_OFD_SETLK, &fl));
	old = capture_start();
	t0 = now_ns();
	errno = 0;
	r = bring_open(t.path, 0, NULL);
	EXPECT_NULL(r);
	EXPECT_EQ(ETIMEDOUT, errno) TH_LOG("%s", strerror(errno));
	EXPECT_LT(now_ns() - t0, 5000 * MS);
	EXPECT_GE(now_ns() - t0, 300 * MS);
	EXPECT_NE_NULL(strstr(printed, t.path)) TH_LOG("%s", printed);
	EXPECT_NE_NULL(strstr(printed, "open lock")) TH_LOG("%s", printed);
	bring_free(r);
	/* Once the lock is given back, the file opens. */
	close(fd);
	r = bring_open(t.path, 0, NULL);
	EXPECT_NE_NULL(r) TH_LOG("%s", strerror(errno));
	bring_free(r);
	bring_set_print(old);
	tmp_remove(&t);
}

/* ------------------------------------------------------------------ */
/* A head near 2^63 (by reading).                                     */

TEST(recovery_refuses_a_head_beyond_2_62)
{
	bring_print_fn_t old = capture_start();
	uint64_t head = (1ULL << 63) - 4096;
	struct bring *r;
	struct tmp t;

	make_ring(_metadata, &t);
	ASSERT_EQ(0, file_write(t.path, &head, sizeof(head),
				offsetof(struct bring_hdr, head)));
	errno = 0;
	r = bring_open(t.path, 0, NULL);
	EXPECT_NULL(r) TH_LOG("opened with head %llu",
			      (unsigned long long)(r ? r->hdr->head : 0));
	EXPECT_EQ(EBADMSG, errno);
	EXPECT_NE_NULL(strstr(printed, "beyond 2^62")) TH_LOG("%s", printed);
	bring_free(r);
	/* 2^62 itself is a position like any other. */
	head = 1ULL << 62;
	ASSERT_EQ(0, file_write(t.path, &head, sizeof(head),
				offsetof(struct bring_hdr, head)));
	r = bring_open(t.path, 0, &(struct bring_opts){
					   .sz = sizeof(struct bring_opts),
					   .flags = BRING_SKIP_DAMAGED });
	EXPECT_NE_NULL(r) TH_LOG("%s", strerror(errno));
	bring_free(r);
	bring_set_print(old);
	tmp_remove(&t);
}

TEST_HARNESS_MAIN
