// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * reader.c - readers: the default one and named ones.
 *
 * A reader is a cursor in a slot of the shared header. Readers never take
 * the ring lock on the data path: they read head and record headers with
 * acquire loads, hand out pointers into the ring, and on shift publish the
 * new cursor with a release store. Writers reclaim space only behind the
 * smallest cursor of all active slots. Opening, closing and removing a
 * reader change the slot table and take the lock.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "probes.h"

static int find_slot(const struct bring_hdr *h, const char *name)
{
	int i;

	for (i = 0; i < BRING_SLOTS; i++)
		if (h->slots[i].state == SLOT_ACTIVE &&
		    !strncmp(h->slots[i].name, name, BRING_NAME_MAX))
			return i;
	return -ENOENT;
}

static void slot_reset_counters(struct bring_slot *sl)
{
	store_relaxed(&sl->msgs_out, 0);
	store_relaxed(&sl->bytes_out, 0);
	store_relaxed(&sl->read_waits, 0);
	store_relaxed(&sl->read_wait_ns, 0);
	store_relaxed(&sl->stuck_waits, 0);
}

/* The reader was used: for operators looking for abandoned readers. */
static void slot_touch(struct bring_slot *sl)
{
	struct timespec ts;

	/* The coarse clock is a vDSO read of a few ns; seconds suffice. */
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (load_relaxed(&sl->last_active) != (uint64_t)ts.tv_sec)
		store_relaxed(&sl->last_active, (uint64_t)ts.tv_sec);
}

/* Under lock: a free slot for a new reader (slot 0 is the default's). */
static int new_slot(struct bring *r, const char *name)
{
	struct bring_hdr *h = r->hdr;
	struct bring_slot *sl;
	int i = name[0] ? 1 : 0;

	for (; i < BRING_SLOTS && h->slots[i].state != SLOT_FREE; i++)
		;
	if (i == BRING_SLOTS || (!name[0] && i))
		return -ENOSPC;
	sl = &h->slots[i];
	/*
	 * Writers that loaded readers_mask before the bit of a removed
	 * reader was cleared may still read this slot's pos: every field a
	 * lock-free reader touches is written atomically.
	 */
	slot_reset_counters(sl);
	memset(sl->name, 0, sizeof(sl->name));
	strcpy(sl->name, name);
	sl->locked = 0;
	/* No mark of a removed reader survives into a new one. */
	memset(sl->saved, 0, sizeof(sl->saved));
	/* File rings: a valid saved cursor before the slot counts as active,
	 * so that a process dying here leaves nothing damaged. */
	if (r->file)
		file_save_cursor(sl, ring_min_reader_pos(r));
	sl->state = SLOT_ACTIVE;
	/*
	 * A new reader starts at the oldest message the ring still holds.
	 * Writers claim without our lock, so: join at a cursor no larger
	 * than anything a writer may have computed, then move up to the
	 * minimum taken after joining. A writer that missed our bit used
	 * cursors older than that minimum; one that sees it sees a smaller
	 * or equal cursor.
	 */
	store_release(&sl->pos, ring_min_reader_pos(r));
	/* Release: pos before the bit; the fence orders the bit before the
	 * cursor reads below (pairs with the acquire in ring_min_reader_pos).
	 */
	store_release(&h->readers_mask,
		      load_relaxed(&h->readers_mask) | (1ULL << i));
	smp_mb();
	store_release(&sl->pos, ring_refresh_tail(r));
	if (r->file)
		file_save_cursor(sl, sl->pos);
	return i;
}

/*
 * A shift stores the saved generation (position and mark), then the live
 * cursor (reader_publish_mark()). An owner killed in between left the
 * saved one a shift ahead, with the mark of that shift: resume there, as
 * recovery would, so that the position and the mark bring_reader_mark()
 * returns are those of one shift. Under the lock; a cursor only grows,
 * so writers reading it without the lock see an older one or this.
 */
static void slot_resume_saved(struct bring *r, struct bring_slot *sl)
{
	const struct bring_cursor *c = cursor_newest(sl->saved);

	/* Acquire: pairs with the claim CAS; no cursor goes past head. */
	if (c && c->pos > load_relaxed(&sl->pos) &&
	    c->pos <= head_pos(load_acquire(&r->hdr->head)))
		/* Pairs with the acquire load in ring_min_reader_pos(). */
		store_release(&sl->pos, c->pos);
}

struct bring_reader *reader_attach(struct bring *r, const char *name,
				   int *err)
{
	struct bring_hdr *h = r->hdr;
	struct bring_reader *rd;
	int i;

	rd = zalloc_aligned(sizeof(*rd));
	if (!rd) {
		*err = -ENOMEM;
		return NULL;
	}
	ring_lock(r);
	i = find_slot(h, name);
	if (i >= 0 && slot_owner_alive(r, OWNER_READER, (unsigned int)i))
		i = -EBUSY;
	else if (i == -ENOENT)
		i = new_slot(r, name);
	if (i >= 0) {
		int err2 = slot_owner_take(r, OWNER_READER, (unsigned int)i);

		if (err2) {
			ring_unlock(r);
			free(rd);
			*err = err2;
			return NULL;
		}
		h->slots[i].owner = getpid();
		/* A save torn by a dead owner is never taken for the newest. */
		cursor_settle(h->slots[i].saved);
		if (r->file)
			slot_resume_saved(r, &h->slots[i]);
		slot_touch(&h->slots[i]);
	}
	ring_unlock(r);
	if (i < 0) {
		free(rd);
		*err = i;
		return NULL;
	}
	rd->ring = r;
	rd->idx = (unsigned int)i;
	rd->slot = &h->slots[i];
	rd->pos = load_relaxed(&rd->slot->pos);
	rd->head_cache = rd->pos;
	return rd;
}

void reader_detach(struct bring_reader *rd)
{
	ring_lock(rd->ring);
	rd->slot->owner = 0;
	slot_owner_release(rd->ring, OWNER_READER, rd->idx);
	ring_unlock(rd->ring);
	free(rd);
}

/**
 * bring_reader_open() - open a named reader
 * @r: the ring
 * @name: 1 to BRING_NAME_MAX - 1 bytes
 *
 * Opens the reader called @name, creating it if it does not exist. A new
 * reader starts at the oldest message the ring holds; an existing one
 * resumes after the last message it shifted. Each reader sees every
 * message, and writers reuse space only behind the slowest reader. A
 * reader is used by one thread at a time.
 *
 * Return: the reader, or NULL with errno set: EINVAL (@name NULL or
 * empty), ENAMETOOLONG, EBUSY (@name is open already), ENOSPC (all
 * BRING_READERS_MAX named readers exist), ENOMEM.
 */
struct bring_reader *bring_reader_open(struct bring *r, const char *name)
{
	struct bring_reader *rd;
	int err = r ? check_name(name) : -EINVAL;

	if (err) {
		errno = -err;
		return NULL;
	}
	rd = reader_attach(r, name, &err);
	if (!rd)
		errno = -err;
	return rd;
}

/**
 * bring_reader_close() - close a reader handle, keeping its cursor
 * @rd: the reader, or NULL
 *
 * The reader keeps its place and keeps holding the messages it has not
 * shifted: bring_reader_open() with the same name resumes there. Messages
 * returned by next or peek but not shifted are delivered again. To stop
 * holding space, use bring_reader_remove().
 */
void bring_reader_close(struct bring_reader *rd)
{
	if (rd)
		reader_detach(rd);
}

/**
 * bring_reader_remove() - delete a reader and free the space it holds
 * @r: the ring
 * @name: a named reader, or BRING_DEFAULT_READER for the default one
 *
 * Return: 0; -ENOENT if there is no such reader; -EBUSY if a handle on it
 * is open (close it first; the default reader's handle is the ring's own
 * and is closed by this call); -EINVAL, -ENAMETOOLONG for bad names.
 */
int bring_reader_remove(struct bring *r, const char *name)
{
	struct bring_hdr *h;
	int i, err;

	if (!r || !name)
		return -EINVAL;
	err = name[0] ? check_name(name) : 0;
	if (err)
		return err;
	if (!name[0] && r->def) {
		reader_detach(r->def);
		r->def = NULL;
	}
	h = r->hdr;
	ring_lock(r);
	i = find_slot(h, name);
	if (i >= 0 && slot_owner_alive(r, OWNER_READER, (unsigned int)i))
		i = -EBUSY;
	if (i >= 0) {
		/* Without readers, the ring keeps what the oldest still held. */
		ring_refresh_tail(r);
		store_release(&h->readers_mask,
			      load_relaxed(&h->readers_mask) & ~(1ULL << i));
		/* pos stays: a writer that saw the bit may still read it. */
		h->slots[i].state = SLOT_FREE;
		h->slots[i].owner = 0;
		h->slots[i].locked = 0;
		memset(h->slots[i].name, 0, sizeof(h->slots[i].name));
	}
	ring_unlock(r);
	if (i < 0)
		return i;
	/* Space behind the removed cursor may now fit a sleeping writer. */
	ring_wake_writers(r);
	return 0;
}

/* Where collecting stopped when it found no message. */
enum collect_stop {
	STOP_NOT_READY, /* at a record not written or not committed yet */
	STOP_EMPTY, /* at head */
	STOP_CLOSED, /* at head, and the ring is closed: nothing will come */
	STOP_DAMAGED, /* at a committed record that fails its checks */
};

/*
 * Is the committed record at @pos, with commit word @lf, tag @tag and
 * footprint @fp, one that can be handed out? Everything in it may have
 * been written by a process that shares the file: a length past max_msg,
 * a footprint past head, or a checksum that fails (file rings opened
 * with BRING_VERIFY_CRC) is damage, never a message.
 */
static bool record_sound(struct bring_reader *rd, const struct bring_rec *rec,
			 uint64_t pos, uint32_t lf, uint64_t tag, uint64_t fp)
{
	struct bring *r = rd->ring;
	uint32_t len = lf & REC_LEN_MASK;

	if (fp > r->capacity || (!(lf & REC_DISCARD) && len > r->max_msg))
		return false;
	if (pos + fp > rd->head_cache) {
		/* Pairs with the claim CAS: the claim covered the record. */
		rd->head_cache = load_acquire(&r->hdr->head) & ~HEAD_CLOSED;
		if (pos + fp > rd->head_cache)
			return false;
	}
	if (!r->file || !r->verify_crc)
		return true;
	return word_crc(load_relaxed(&rec->word)) ==
	       rec_crc(tag, lf, rec + 1, lf & REC_DISCARD ? 0 : len);
}

/*
 * Say once per reader and position that a record was refused, and count
 * it; the reader stays in front of it (-EBADMSG) until an exclusive open
 * recovers the file (Documentation/file-format.rst).
 */
static void reader_report_damage(struct bring_reader *rd, uint32_t lf)
{
	struct bring *r = rd->ring;

	if (rd->damaged_pos == rd->pos + 1)
		return;
	rd->damaged_pos = rd->pos + 1;
	add_relaxed(&r->hdr->damaged, 1);
	file_printf("bring: %s: reader '%s': damaged record at position %llu "
		    "(length %u, max_msg %llu): refused\n",
		    r->name, rd->slot->name, (unsigned long long)rd->pos,
		    lf & REC_LEN_MASK, (unsigned long long)r->max_msg);
}

static void reader_publish(struct bring_reader *rd);

/*
 * A published jump starts where the reader stands: go on at @pos, its
 * end; in front (@n messages collected so far: none) the cursor moves
 * too.
 */
static uint64_t reader_jump(struct bring_reader *rd, uint64_t pos,
			    unsigned int n)
{
	/* The jump's claim moved head past pos (the jump was acquired
	 * after it, see publish_jump() and publish_escape()); head_cache
	 * may predate it. */
	rd->head_cache = load_acquire(&rd->ring->hdr->head) & ~HEAD_CLOSED;
	if (!n)
		rd->pos = pos; /* jumped, in front */
	return pos;
}

/*
 * Collect up to @nr committed messages from rd->pos, at most @max_bytes
 * of payload (0: no limit) unless it is the first message. Returns how
 * many it found; *@stop says why it found none. Moves rd->pos past
 * discards and jumps in front, publishes nothing (reader_collect() does).
 */
static unsigned int reader_scan(struct bring_reader *rd,
				struct bring_msg *msgs, unsigned int nr,
				size_t max_bytes, enum collect_stop *stop)
{
	struct bring *r = rd->ring;
	uint64_t pos = rd->pos, bytes = 0, head, to;
	/* Only this thread stores it. */
	uint64_t published = load_relaxed(&rd->slot->pos);
	struct ring_jumps j;
	unsigned int n = 0;

	*stop = STOP_NOT_READY;
	rd->busy_len = 0;
	while (n < nr) {
		struct bring_rec *rec;
		uint64_t tag, fp;
		uint32_t lf, len;

		if (pos == rd->head_cache) {
			/* Pairs with the claim CAS and bring_close(). */
			head = load_acquire(&r->hdr->head);
			rd->head_cache = head_pos(head);
			if (pos == rd->head_cache) {
				*stop = head & HEAD_CLOSED ? STOP_CLOSED :
							     STOP_EMPTY;
				break;
			}
		}
		/*
		 * Writers count our cursor at a published jump's end when
		 * our *published* cursor is at its start, and may be writing
		 * the next lap's records over the bytes at pos already: the
		 * tag there is not ours to read (Documentation/ring.rst,
		 * step 4). So at our published cursor, look for a published
		 * jump before the record. Past it, writers stay a capacity
		 * behind our published cursor: the bytes at pos are safe.
		 */
		if (pos == published) {
			ring_jumps_load(r, &j);
			to = jump_cursor(r, &j, pos);
			if (to != pos) {
				pos = reader_jump(rd, to, n);
				continue;
			}
		}
		rec = rec_at(r, pos);
		/* Pairs with the release store of the tag: header written. */
		if (!tag_matches(load_acquire(&rec->tag), pos, r->key)) {
			/*
			 * Not written yet, or a jump starts here: past our
			 * published cursor (a jump with readers behind,
			 * the slack), or at it, published since we looked.
			 */
			ring_jumps_load(r, &j);
			to = jump_cursor(r, &j, pos);
			if (to == pos)
				break;
			pos = reader_jump(rd, to, n);
			continue;
		}
		/* Pairs with the release store in commit_record(). */
		lf = word_lf(load_acquire(&rec->word));
		if (lf & REC_BUSY) {
			rd->busy_len = lf & REC_LEN_MASK; /* for reader_spin() */
			break;
		}
		/* The slack bit is set before the commit we acquired. */
		tag = load_relaxed(&rec->tag);
		fp = rec_footprint(lf, tag);
		if (!record_sound(rd, rec, pos, lf, tag, fp)) {
			if (!n) {
				*stop = STOP_DAMAGED;
				reader_report_damage(rd, lf);
			}
			break;
		}
		len = lf & REC_LEN_MASK;
		if (!(lf & REC_DISCARD)) {
			if (n && max_bytes && bytes + len > max_bytes)
				break;
			msgs[n].data = rec + 1;
			msgs[n].len = len;
			msgs[n].seq = pos;
			bytes += len;
			n++;
		}
		pos += fp;
		if (!n)
			rd->pos = pos; /* skipped a discard in front */
	}
	rd->pend_end = pos;
	rd->pend_msgs = n;
	rd->pend_bytes = bytes;
	return n;
}

/* reader_scan() from the reader's cursor, publishing what it skipped. */
static unsigned int reader_collect(struct bring_reader *rd,
				   struct bring_msg *msgs, unsigned int nr,
				   size_t max_bytes, enum collect_stop *stop)
{
	uint64_t start = rd->pos;
	unsigned int n = reader_scan(rd, msgs, nr, max_bytes, stop);

	/*
	 * Discards (aborted reservations) in front and nothing after them:
	 * publish the cursor past them now. No shift would come before more
	 * data, and until then their bytes would stay held from writers and
	 * counted as this reader's lag while it sleeps.
	 */
	if (!n && rd->pos != start)
		reader_publish(rd);
	return n;
}

/*
 * Publish the cursor: the bytes before rd->pos may be overwritten. With
 * @ms, the reader's mark is stored in the same saved generation.
 */
static void reader_publish_mark(struct bring_reader *rd,
				const struct mark_stage *ms)
{
	/* File rings: the persisted copy first, so it never runs ahead. */
	if (ms)
		cursor_store(rd->slot->saved, rd->pos, ms->mark, ms->mark_len);
	else if (rd->ring->file)
		file_save_cursor(rd->slot, rd->pos);
	/* Pairs with the acquire load in ring_min_reader_pos(). */
	store_release(&rd->slot->pos, rd->pos);
	ring_wake_writers(rd->ring);
	/* Caught up with the head we saw: the ring may be empty. */
	if (rd->pos == rd->head_cache)
		ring_jump_empty(rd->ring, rd->pos, &rd->jump_look);
}

static void reader_publish(struct bring_reader *rd)
{
	reader_publish_mark(rd, NULL);
}

#define STUCK_CHECK_MS 200

/*
 * Sleep on data_seq. In a file ring a reader stopped at a record that is
 * not written yet may wait for a writer that died between its claim and
 * its commit: it sleeps at most STUCK_CHECK_MS at a time and then asks
 * file_repair_stuck() whether the record's writer is dead (which turns
 * the record into one that readers skip). Only a reader stuck at an
 * unfinished record does this; an empty ring sleeps until woken. A memory
 * ring's reader wakes the same way to count the wait (stuck_waits, for
 * bring_get_reader_stats()), but cannot repair: nothing records who
 * writes.
 */
static bool reader_check_stuck(struct bring_reader *rd, enum collect_stop stop)
{
	struct bring *r = rd->ring;
	uint64_t now;

	if (stop != STOP_NOT_READY) {
		rd->stuck_since = 0;
		return false;
	}
	now = bring_now_ns();
	if (!rd->stuck_since || rd->stuck_pos != rd->pos) {
		rd->stuck_pos = rd->pos;
		rd->stuck_since = now;
		return false;
	}
	if (now - rd->stuck_since < STUCK_CHECK_MS * 1000000ULL)
		return false;
	rd->stuck_since = now;
	add_relaxed(&rd->slot->stuck_waits, 1);
	/* A memory ring has no record of who writes: counted, not repaired. */
	return r->file && file_repair_stuck(r, rd->pos);
}

/* Milliseconds (>= 1) until the stuck reader's next liveness check. */
static uint32_t reader_stuck_check_ms(const struct bring_reader *rd)
{
	uint64_t due = rd->stuck_since + STUCK_CHECK_MS * 1000000ULL;
	uint64_t now = bring_now_ns();

	if (due <= now)
		return 1;
	return (uint32_t)((due - now + 999999) / 1000000);
}

static int reader_sleep(struct bring_reader *rd, struct evc_ticket *ticket,
			const struct bring_deadline *dl, enum collect_stop stop)
{
	struct bring *r = rd->ring;
	struct bring_deadline check = { .forever = 0 };
	uint64_t due;
	int err;

	if (stop != STOP_NOT_READY)
		return evc_wait(&r->hdr->data_seq, ticket, dl);
	reader_check_stuck(rd, stop);
	due = rd->stuck_since + STUCK_CHECK_MS * 1000000ULL;
	check.ts.tv_sec = (time_t)(due / 1000000000ULL);
	check.ts.tv_nsec = (long)(due % 1000000000ULL);
	if (!dl->forever && (dl->ts.tv_sec < check.ts.tv_sec ||
			     (dl->ts.tv_sec == check.ts.tv_sec &&
			      dl->ts.tv_nsec < check.ts.tv_nsec)))
		return evc_wait(&r->hdr->data_seq, ticket, dl);
	err = evc_wait(&r->hdr->data_seq, ticket, &check);
	if (err == -ETIMEDOUT) {
		reader_check_stuck(rd, stop);
		err = 0;
	}
	return err;
}

/* Sleep until messages arrive, the ring closes or the deadline passes. */
static int reader_wait(struct bring_reader *rd, struct bring_msg *msgs,
		       unsigned int nr, size_t max_bytes, int timeout_ms)
{
	struct bring *r = rd->ring;
	struct bring_hdr *h = r->hdr;
	struct evc_ticket ticket = { 0 };
	struct bring_deadline dl;
	uint64_t t0 = bring_now_ns();
	enum collect_stop stop;
	unsigned int n;
	int err = 0;

	bring_deadline_init(&dl, timeout_ms);
	BRING_PROBE4(read_wait_start, r, r->name, 0ULL, rd->slot->name);
	for (;;) {
		/* Fences: counted before we look at head and records again. */
		evc_prepare(&h->data_seq, &ticket);
		n = reader_collect(rd, msgs, nr, max_bytes, &stop);
		if (n || stop == STOP_CLOSED || stop == STOP_DAMAGED ||
		    err == -ETIMEDOUT)
			break;
		/* Woken by an abort: reader_collect() gave the space back. */
		ring_count_futex_wait(r);
		err = reader_sleep(rd, &ticket, &dl, stop);
	}
	evc_cancel(&h->data_seq, &ticket);
	if (n)
		err = 0;
	else if (stop == STOP_CLOSED)
		err = -EPIPE;
	else if (stop == STOP_DAMAGED)
		err = -EBADMSG;
	store_relaxed(&rd->slot->read_waits,
		      load_relaxed(&rd->slot->read_waits) + 1);
	store_relaxed(&rd->slot->read_wait_ns,
		      load_relaxed(&rd->slot->read_wait_ns) + bring_now_ns() - t0);
	BRING_PROBE5(read_wait_end, r, r->name, err, 0ULL, rd->slot->name);
	return err ? err : (int)n;
}

/*
 * A writer's copy into a record the reader is about to read runs at a
 * few GB/s when the reader pulls each line to its own CPU: with the 8
 * bytes per ns that a writer allows for a reader's copy (lib/ring.c), 10
 * of 20 runs at 64 KiB stayed below 0.45 M msgs/s, with 1 byte per ns 1
 * (Documentation/benchmarks.rst, session 12). Bounded as a writer's
 * re-wait spin is.
 */
#define READ_SPIN_BYTES_PER_US 1000
#define READ_SPIN_MAX_NS 50000ULL

/*
 * How long reader_spin() looks, given why the last look found nothing.
 * In front of a record that a writer claimed and is still filling, as
 * long as a copy of its length takes: a streaming writer of large
 * records is mid-copy nearly all the time, and a reader that caught up
 * with it and slept after a bare spin_ns made it pay a FUTEX_WAKE for
 * almost every record, a mode that keeps itself up (the reader, woken
 * late, catches up again at once): 64 KiB SPSC ran 0.08-0.36 M msgs/s
 * in that mode against 0.55 streaming, in 9 of 20 runs. A reservation
 * held for long (bring_reserve() before a read(2)) costs the bounded
 * spin of READ_SPIN_MAX_NS per wait, as a stopped reader costs a writer.
 * A memory ring's batch (bring_push_batch()) keeps its first record BUSY
 * until every record is copied; the spin allows for the first one only.
 */
static uint64_t reader_spin_ns(const struct bring_reader *rd,
			       enum collect_stop stop)
{
	if (stop != STOP_NOT_READY || !rd->busy_len)
		return rd->ring->spin_ns;
	return spin_budget(rd->ring, rd->busy_len, READ_SPIN_BYTES_PER_US,
			   READ_SPIN_MAX_NS);
}

/*
 * Re-check before sleeping, for reader_spin_ns(): a writer that is a
 * moment away costs no system call on either side.
 */
static unsigned int reader_spin(struct bring_reader *rd, struct bring_msg *msgs,
				unsigned int nr, size_t max_bytes,
				enum collect_stop *stop)
{
	struct bring *r = rd->ring;
	unsigned int n = 0;
	uint64_t t0;

	if (!r->spin_ns)
		return 0;
	t0 = bring_now_ns();
	do {
		spin_pause();
		n = reader_collect(rd, msgs, nr, max_bytes, stop);
	} while (!n && *stop != STOP_CLOSED && *stop != STOP_DAMAGED &&
		 bring_now_ns() - t0 < reader_spin_ns(rd, *stop));
	return n;
}

static int reader_peek(struct bring_reader *rd, struct bring_msg *msgs,
		       unsigned int nr, size_t max_bytes, int timeout_ms)
{
	enum collect_stop stop;
	unsigned int n;

	if (!rd || !msgs || !nr)
		return -EINVAL;
	n = reader_collect(rd, msgs, nr, max_bytes, &stop);
	if (!n && stop != STOP_CLOSED && stop != STOP_DAMAGED && timeout_ms)
		n = reader_spin(rd, msgs, nr, max_bytes, &stop);
	/* A polling reader repairs too; a waiting one does in reader_sleep(). */
	if (!n && !timeout_ms && reader_check_stuck(rd, stop))
		n = reader_collect(rd, msgs, nr, max_bytes, &stop);
	/* Skipped discards in front of nothing: reader_collect() published. */
	if (n)
		return (int)n;
	if (stop == STOP_CLOSED)
		return -EPIPE;
	if (stop == STOP_DAMAGED)
		return -EBADMSG;
	if (timeout_ms == 0)
		return -EAGAIN;
	return reader_wait(rd, msgs, nr, max_bytes, timeout_ms);
}

/**
 * bring_reader_peek() - look at up to @nr messages at once
 * @rd: the reader
 * @msgs: array of @nr messages to fill
 * @nr: at most this many messages (>= 1)
 * @max_bytes: at most this much payload in all, 0 for no limit; the first
 *             message is returned even if it is larger
 * @timeout_ms: <0 waits forever, 0 never waits, >0 at most that long
 *
 * Like bring_reader_next() for a batch: the messages are consecutive, in
 * push order, point into the ring and stay valid until the reader shifts
 * them; bring_reader_shift() then removes all of them at once. Peeking
 * again without shifting starts again from the first unshifted message.
 *
 * Return: the number of messages (>= 1); -EAGAIN (@timeout_ms == 0) or
 * -ETIMEDOUT when there is nothing to read; -EPIPE when the ring is closed
 * and every message was read; -EBADMSG when the next record is damaged (a
 * length past max_msg or past what was claimed, or with BRING_VERIFY_CRC a
 * failing checksum: it is counted in bring_stats.damaged, printed once and
 * never handed out; the reader stays in front of it, see
 * Documentation/security.rst); -EINVAL for bad arguments.
 */
int bring_reader_peek(struct bring_reader *rd, struct bring_msg *msgs,
		      unsigned int nr, size_t max_bytes, int timeout_ms)
{
	return reader_peek(rd, msgs, nr, max_bytes, timeout_ms);
}

/**
 * bring_reader_next() - look at the oldest unshifted message
 * @rd: the reader
 * @msg: filled with the message; @msg->data points into the ring and is
 *       valid until the reader shifts it
 * @timeout_ms: <0 waits forever, 0 never waits, >0 at most that long
 *
 * Does not remove the message: calling it again returns the same message
 * until bring_reader_shift().
 *
 * Return: 0; -EAGAIN (@timeout_ms == 0) or -ETIMEDOUT when there is
 * nothing to read; -EPIPE when the ring is closed and every message was
 * read; -EBADMSG when the next record is damaged (as bring_reader_peek());
 * -EINVAL for bad arguments.
 */
int bring_reader_next(struct bring_reader *rd, struct bring_msg *msg,
		      int timeout_ms)
{
	int n = reader_peek(rd, msg, 1, 0, timeout_ms);

	return n < 0 ? n : 0;
}

static int reader_shift(struct bring_reader *rd, const struct mark_stage *ms);

/**
 * bring_reader_shift() - remove what the last next or peek returned
 * @rd: the reader
 *
 * Moves the reader past the messages its last bring_reader_next() or
 * bring_reader_peek() returned; their space is reused once every reader
 * has moved past them, and writers waiting for it wake up.
 *
 * Return: 0; -ENODATA if nothing was returned since the last shift;
 * -EINVAL if @rd is NULL.
 */
int bring_reader_shift(struct bring_reader *rd)
{
	return reader_shift(rd, NULL);
}

static int reader_shift(struct bring_reader *rd, const struct mark_stage *ms)
{
	struct bring_slot *sl;

	if (!rd)
		return -EINVAL;
	if (!rd->pend_msgs)
		return -ENODATA;
	sl = rd->slot;
	/* Only this reader writes its counters; stats readers race. */
	store_relaxed(&sl->msgs_out, load_relaxed(&sl->msgs_out) + rd->pend_msgs);
	store_relaxed(&sl->bytes_out,
		      load_relaxed(&sl->bytes_out) + rd->pend_bytes);
	rd->pos = rd->pend_end;
	rd->pend_msgs = 0;
	reader_publish_mark(rd, ms);
	slot_touch(sl);
	return 0;
}

/**
 * bring_reader_shift_mark() - shift, and store a mark with the cursor
 * @rd: the reader
 * @mark: the reader's mark, opaque bytes (may be NULL when @mark_len is 0)
 * @mark_len: 0 to BRING_MARK_MAX bytes; 0 stores the empty mark
 *
 * As bring_reader_shift(), and @mark replaces the reader's mark in the
 * same cursor update: in a file ring, in the same checksummed generation
 * of the saved cursor, so that after any crash the reader's position and
 * its mark are those of one shift. Plain shifts keep the mark.
 *
 * Return: 0; -ENODATA if nothing was returned since the last shift (the
 * mark is not stored); -EMSGSIZE if @mark_len > BRING_MARK_MAX; -EINVAL
 * for a NULL @rd, or a NULL @mark with a non-zero @mark_len.
 */
int bring_reader_shift_mark(struct bring_reader *rd, const void *mark,
			    size_t mark_len)
{
	struct mark_stage ms = { .mark = mark, .mark_len = (uint32_t)mark_len };
	int err = rd ? mark_check(mark, mark_len) : -EINVAL;

	return err ? err : reader_shift(rd, &ms);
}

/**
 * bring_reader_set_mark() - store a reader's mark without shifting
 * @rd: the reader
 * @mark: the mark (may be NULL when @mark_len is 0)
 * @mark_len: 0 to BRING_MARK_MAX bytes
 *
 * Stores @mark with the reader's cursor as it is: for a reader that must
 * state where it is before it consumes anything (a sink recording how
 * long its output was when it started). Messages returned by next or
 * peek and not shifted stay so.
 *
 * Return: 0; -EMSGSIZE if @mark_len > BRING_MARK_MAX; -EINVAL for a NULL
 * @rd, or a NULL @mark with a non-zero @mark_len.
 */
int bring_reader_set_mark(struct bring_reader *rd, const void *mark,
			  size_t mark_len)
{
	struct mark_stage ms = { .mark = mark, .mark_len = (uint32_t)mark_len };
	int err = rd ? mark_check(mark, mark_len) : -EINVAL;

	if (!err)
		reader_publish_mark(rd, &ms);
	return err;
}

/**
 * bring_reader_mark() - the mark stored by the reader's last marked shift
 * @rd: the reader
 * @buf: where to copy the mark
 * @size: bytes at @buf
 *
 * The mark survives bring_reader_close() and, in a file ring, crashes:
 * it is the one stored with the cursor the reader resumes at.
 *
 * Return: the mark's length (0 when the reader never stored one, or
 * stored the empty mark); -ENOSPC if @size is smaller than the mark;
 * -EINVAL if @rd is NULL.
 */
int bring_reader_mark(const struct bring_reader *rd, void *buf, size_t size)
{
	if (!rd)
		return -EINVAL;
	return cursor_copy_mark(rd->slot->saved, buf, size);
}

/*
 * The default reader's handle. A file ring attaches it on first use, so
 * that processes that only write never hold it; -EBUSY if another live
 * process has it.
 */
static struct bring_reader *default_reader(struct bring *r)
{
	int err;

	if (r && !r->def && r->file) {
		ring_lock(r);
		err = find_slot(r->hdr, BRING_DEFAULT_READER);
		ring_unlock(r);
		if (err >= 0)
			r->def = reader_attach(r, BRING_DEFAULT_READER, &err);
	}
	return r ? r->def : NULL;
}

/* Why there is no default reader: none exists, or another process has it. */
static int default_reader_error(struct bring *r)
{
	int i;

	ring_lock(r);
	i = find_slot(r->hdr, BRING_DEFAULT_READER);
	ring_unlock(r);
	return i < 0 ? -ENOENT : -EBUSY;
}

/**
 * bring_default_reader() - the default reader as a reader handle
 * @r: the ring
 *
 * For calls that take a reader, such as bring_reader_wait_prepare(). The
 * handle belongs to the ring: do not close it.
 *
 * Return: the handle, or NULL if the ring has no default reader.
 */
struct bring_reader *bring_default_reader(struct bring *r)
{
	return default_reader(r);
}

/**
 * bring_reader_lag() - how far a reader is behind the writers
 * @rd: the reader
 *
 * Bytes between what @rd shifted last and the ring's head: what it still
 * has to read (framing included, as &struct bring_stats.used counts),
 * plus what it read and did not shift yet; the end of a lap that a lap
 * jump skipped (Documentation/ring.rst) is not counted. Any thread may
 * ask, while the reader's owner reads on.
 *
 * Return: the lag in bytes; 0 for a NULL reader.
 */
uint64_t bring_reader_lag(const struct bring_reader *rd)
{
	struct ring_jumps j;
	uint64_t head, pos;

	if (!rd)
		return 0;
	/*
	 * pos first: head only grows, so the lag is never negative. A
	 * cursor at a lap jump's start is at its end, and one before it
	 * does not count the skipped bytes: they are not the reader's to
	 * read (and the jump is loaded before head, so head covers the
	 * jump's claim).
	 */
	pos = load_acquire(&rd->slot->pos);
	ring_jumps_load(rd->ring, &j);
	pos = jump_cursor(rd->ring, &j, pos);
	head = load_acquire(&rd->ring->hdr->head) & ~HEAD_CLOSED;
	return ring_held(rd->ring, &j, pos, head);
}

/*
 * @rd's own state back to @saved, taken before a look: not ring, slot and
 * idx, which never change and which other threads read while the owner
 * reads on (bring_reader_lag(), e.g. bring_io's sources): a store of the
 * whole struct, the same values or not, races with those reads.
 */
static void reader_restore(struct bring_reader *rd,
			   const struct bring_reader *saved)
{
	const size_t from = offsetof(struct bring_reader, pos);

	memcpy((char *)rd + from, (const char *)saved + from,
	       sizeof(*rd) - from);
}

/*
 * Both wait prepares end here. No need to wait (@ready): the ticket taken
 * on the data word goes back, 1. Else it is handed out in @w, with the
 * stuck check's time limit when the reader stands before an unfinished
 * record of a file ring, 0.
 */
static int reader_wait_ticket(struct bring_reader *rd, struct bring_wait *w,
			      struct evc_ticket *ticket, bool ready,
			      enum collect_stop stop)
{
	uint64_t *word = &rd->ring->hdr->data_seq;

	if (ready) {
		evc_cancel(word, ticket);
		return 1;
	}
	wait_ticket_save(w, word, ticket, 0);
	if (rd->ring->file && stop == STOP_NOT_READY)
		w->__priv[2] = reader_stuck_check_ms(rd);
	return 0;
}

/**
 * bring_reader_wait_prepare() - get a futex word to wait on for data
 * @rd: the reader
 * @w: filled with the word and the value to wait on
 *
 * For event loops: register as a sleeping reader and return the word, so
 * that the loop can wait on it with IORING_OP_FUTEX_WAIT (flags
 * FUTEX2_SIZE_U32, not private), futex(2) or a helper thread. Whatever
 * ends the wait, call bring_reader_wait_finish(), then bring_reader_next()
 * or bring_reader_peek() with a timeout of 0. Records that readers skip
 * (aborted reservations, dead writers' claims) in front of the reader are
 * passed and their space given back, waking writers that wait for it.
 *
 * Return: 0 to wait on @w; 1 when there is no need to wait (a message is
 * ready, the ring is closed or the next record is damaged: nothing was
 * registered and @w must not be finished); -EINVAL for bad arguments.
 */
int bring_reader_wait_prepare(struct bring_reader *rd, struct bring_wait *w)
{
	struct evc_ticket ticket = { 0 };
	struct bring_reader saved;
	enum collect_stop stop;
	struct bring_msg msg;
	uint64_t *word;
	bool ready;

	if (!rd || !w)
		return -EINVAL;
	word = &rd->ring->hdr->data_seq;
	evc_prepare(word, &ticket);
	/* Look without handing anything out: what shift would do stays. */
	saved = *rd;
	ready = reader_collect(rd, &msg, 1, 0, &stop) ||
		stop == STOP_CLOSED || stop == STOP_DAMAGED;
	rd->pend_end = saved.pend_end;
	rd->pend_msgs = saved.pend_msgs;
	rd->pend_bytes = saved.pend_bytes;
	/*
	 * Skipped discards (an abort, a repaired claim): give their space
	 * back now, as a blocking wait does, or a writer waiting for it and
	 * this reader waiting for the writer wait for each other. In front
	 * of nothing reader_collect() did; in front of a message (ready) it
	 * does not, and the loop may hold that message a long time.
	 */
	if (ready && rd->pos != load_relaxed(&rd->slot->pos))
		reader_publish(rd);
	/* In front of an unfinished record for long enough: repair now. */
	if (!ready && reader_check_stuck(rd, stop))
		ready = true;
	if (reader_wait_ticket(rd, w, &ticket, ready, stop))
		return 1;
	/* An event loop's wait: told apart from others in its thread by @w. */
	BRING_PROBE4(read_wait_start, rd->ring, rd->ring->name,
		     (uint64_t)(uintptr_t)w, rd->slot->name);
	return 0;
}

/**
 * bring_reader_wait_more_prepare() - wait for messages past those peeked
 * @rd: the reader
 * @w: filled with the word and the value to wait on
 *
 * For a reader that holds the messages its last bring_reader_peek() or
 * bring_reader_next() returned, unshifted (a sink waiting for them to be
 * acknowledged), and has sent them all: bring_reader_wait_prepare()
 * would say "ready" at once, for the messages it holds. This one looks
 * past them: it returns 1 when a message after the last one handed out
 * is there (or the ring is closed, or that record is damaged), else
 * registers on the same word as bring_reader_wait_prepare() and
 * returns 0; finish with bring_reader_wait_finish(). Nothing is shifted
 * or handed out; the next peek starts again from the first unshifted
 * message, as always. Holding nothing, it is bring_reader_wait_prepare().
 *
 * Return: 0 to wait on @w; 1 when there is no need to wait; -EINVAL.
 */
int bring_reader_wait_more_prepare(struct bring_reader *rd,
				   struct bring_wait *w)
{
	struct evc_ticket ticket = { 0 };
	struct bring_reader saved;
	enum collect_stop stop;
	struct bring_msg msg;
	uint64_t *word;
	bool ready;

	if (!rd || !w)
		return -EINVAL;
	if (!rd->pend_msgs)
		return bring_reader_wait_prepare(rd, w);
	word = &rd->ring->hdr->data_seq;
	/* Registered before the look: a commit after it moves the word. */
	evc_prepare(word, &ticket);
	/* A look from the end of what was handed out; nothing of it stays. */
	saved = *rd;
	rd->pos = rd->pend_end;
	ready = reader_scan(rd, &msg, 1, 0, &stop) || stop == STOP_CLOSED ||
		stop == STOP_DAMAGED;
	reader_restore(rd, &saved);
	if (reader_wait_ticket(rd, w, &ticket, ready, stop))
		return 1;
	BRING_PROBE4(read_wait_start, rd->ring, rd->ring->name,
		     (uint64_t)(uintptr_t)w, rd->slot->name);
	return 0;
}

/**
 * bring_wait_timeout() - how long an event loop may wait on a prepared word
 * @w: as filled by bring_reader_wait_prepare() or bring_write_wait_prepare()
 *
 * A file ring's reader stopped in front of a record that is not finished
 * yet must look again every 200 ms, to find out whether the record's
 * writer died (and then skip the record): a loop that waits on @w must
 * end the wait after at most this long (e.g. with a timeout linked to its
 * IORING_OP_FUTEX_WAIT), finish it and peek with a timeout of 0, which
 * does the repair. A reader in front of an empty ring, and a writer, may
 * wait as long as they like.
 *
 * Return: -1 to wait without a time limit, else milliseconds (>= 1);
 * -EINVAL if @w is NULL.
 */
int bring_wait_timeout(const struct bring_wait *w)
{
	if (!w)
		return -EINVAL;
	return w->__priv[2] ? (int)w->__priv[2] : -1;
}

/**
 * bring_reader_wait_finish() - end a wait begun with bring_reader_wait_prepare()
 * @rd: the reader
 * @w: as filled by bring_reader_wait_prepare()
 */
void bring_reader_wait_finish(struct bring_reader *rd, struct bring_wait *w)
{
	struct evc_ticket ticket;

	if (!rd || !w)
		return;
	wait_ticket_load(w, &ticket);
	/* A waker that moved the epoch dropped us from the count already. */
	evc_cancel(&rd->ring->hdr->data_seq, &ticket);
	BRING_PROBE5(read_wait_end, rd->ring, rd->ring->name, 0,
		     (uint64_t)(uintptr_t)w, rd->slot->name);
}

/**
 * bring_next_timeout() - bring_reader_next() on the default reader
 * @r: the ring
 * @msg: filled with the oldest unshifted message
 * @timeout_ms: <0 waits forever, 0 never waits, >0 at most that long
 *
 * Return: as bring_reader_next(), and -ENOENT when the ring has no
 * default reader (BRING_NO_DEFAULT_READER, or it was removed).
 */
int bring_next_timeout(struct bring *r, struct bring_msg *msg, int timeout_ms)
{
	struct bring_reader *rd = default_reader(r);

	if (r && !rd)
		return default_reader_error(r);
	return bring_reader_next(rd, msg, timeout_ms);
}

/**
 * bring_next() - wait for and return the oldest unshifted message
 * @r: the ring
 * @msg: filled with the message
 *
 * Return: as bring_next_timeout() with a timeout of -1.
 */
int bring_next(struct bring *r, struct bring_msg *msg)
{
	return bring_next_timeout(r, msg, -1);
}

/**
 * bring_peek() - bring_reader_peek() on the default reader
 * @r: the ring
 * @msgs: array to fill
 * @nr: its size
 * @max_bytes: payload limit, 0 for none
 * @timeout_ms: <0 waits forever, 0 never waits, >0 at most that long
 *
 * Return: as bring_reader_peek(), and -ENOENT without a default reader.
 */
int bring_peek(struct bring *r, struct bring_msg *msgs, unsigned int nr,
	       size_t max_bytes, int timeout_ms)
{
	struct bring_reader *rd = default_reader(r);

	if (r && !rd)
		return default_reader_error(r);
	return bring_reader_peek(rd, msgs, nr, max_bytes, timeout_ms);
}

/**
 * bring_shift() - bring_reader_shift() on the default reader
 * @r: the ring
 *
 * Return: as bring_reader_shift(), and -ENOENT without a default reader.
 */
int bring_shift(struct bring *r)
{
	struct bring_reader *rd = default_reader(r);

	if (r && !rd)
		return default_reader_error(r);
	return bring_reader_shift(rd);
}

/**
 * bring_get_reader_stats() - one reader's place and counters
 * @r: the ring
 * @idx: 0 .. BRING_READERS_MAX: which slot of the reader table (0 is the
 *       default reader's); loop over all of them to list the readers
 * @st: filled up to @st->sz bytes; set @st->sz = sizeof(*st) first
 *
 * For operators: which readers exist, how far behind each is, whether a
 * process has it open and when it last read. A reader that no process
 * reads any more holds its messages until bring_reader_remove(); a
 * growing @st->stuck says a writer claimed space and did not finish.
 * The fields are read without stopping anyone, each exact but not a
 * snapshot of one instant.
 *
 * Return: 0; -ENOENT when slot @idx holds no reader; -EINVAL if @r or
 * @st is NULL, @st->sz is too small or @idx > BRING_READERS_MAX.
 */
int bring_get_reader_stats(const struct bring *r, unsigned int idx,
			   struct bring_reader_stats *st)
{
	struct bring_reader_stats s = { 0 };
	const struct bring_slot *sl;
	const struct bring_hdr *h;
	struct ring_jumps j;
	size_t sz;

	if (!r || !st || st->sz < sizeof(size_t) || idx >= BRING_SLOTS)
		return -EINVAL;
	h = r->hdr;
	sl = &h->slots[idx];
	/* Pairs with the release stores of readers_mask in reader.c. */
	if (!(load_acquire(&h->readers_mask) & (1ULL << idx)))
		return -ENOENT;
	sz = st->sz;
	memcpy(s.name, sl->name, sizeof(s.name));
	s.name[sizeof(s.name) - 1] = '\0';
	/* Pairs with the release store in reader_publish(). */
	s.pos = load_acquire(&sl->pos);
	/* Where the reader goes on: past a lap jump (bring_reader_lag()). */
	ring_jumps_load(r, &j);
	s.pos = jump_cursor(r, &j, s.pos);
	s.lag = ring_held(r, &j, s.pos, load_acquire(&h->head) & ~HEAD_CLOSED);
	s.msgs_out = load_relaxed(&sl->msgs_out);
	s.bytes_out = load_relaxed(&sl->bytes_out);
	s.last_active = load_relaxed(&sl->last_active);
	s.owner = load_relaxed(&sl->owner);
	s.owner_alive = slot_owner_alive(r, OWNER_READER, idx);
	s.stuck = load_relaxed(&sl->stuck_waits);
	if (s.lag > r->capacity) /* a hostile file; never more than it holds */
		s.lag = r->capacity;
	if (sz > sizeof(s)) {
		memset((char *)st + sizeof(s), 0, sz - sizeof(s));
		sz = sizeof(s);
	}
	memcpy(st, &s, sz);
	st->sz = sz;
	return 0;
}
